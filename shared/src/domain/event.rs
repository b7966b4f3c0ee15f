//! The HR event contract, version 1: what the HR system posts to the HR events queue.
//! Parsing validates every field and reports each violation with its field and rule.

use super::names::{EmailAddress, EmployeeId, EventId, PersonName, UserName};
use super::time::Timestamp;
use super::validation::{FieldError, InvalidEvent};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub const SCHEMA_VERSION: &str = "1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A new hire (or rehire): directory user and WorkSpace.
    Join,
    /// A leaver: WorkSpace terminated.
    Leave,
    /// Withdraws a future-dated event that has not taken effect (a rescinded hire or leave).
    Cancel,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::Cancel => "cancel",
        }
    }
}

/// Who the event is about. For `leave` only the id is required.
#[derive(Debug, Clone, PartialEq)]
pub struct Employee {
    pub employee_id: EmployeeId,
    pub username: Option<UserName>,
    pub given_name: Option<PersonName>,
    pub surname: Option<PersonName>,
    pub email: Option<EmailAddress>,
    pub department: Option<String>,
}

/// Per-event WorkSpace choices that override the department's profile.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceOverrides {
    /// Use this profile instead of the department's.
    pub profile: Option<String>,
    pub bundle_id: Option<String>,
    pub running_mode: Option<String>,
    pub auto_stop_minutes: Option<i32>,
    pub compute_type: Option<String>,
    pub root_volume_gib: Option<i32>,
    pub user_volume_gib: Option<i32>,
}

impl WorkspaceOverrides {
    /// The rules that hold whatever the profile (the rest is checked once the profile is known).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(b) = &self.bundle_id
            && !(b.starts_with("wsb-")
                && (12..=67).contains(&b.len())
                && b[4..].chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()))
        {
            errors
                .push(FieldError::new("workspace.bundle_id", format!("must match ^wsb-[0-9a-z]{{8,63}}$ (got {b:?})")));
        }
        if let Some(m) = &self.running_mode
            && m != "AUTO_STOP"
            && m != "ALWAYS_ON"
        {
            errors
                .push(FieldError::new("workspace.running_mode", format!("must be AUTO_STOP or ALWAYS_ON (got {m:?})")));
        }
        if let Some(minutes) = self.auto_stop_minutes
            && (minutes <= 0 || minutes % 60 != 0)
        {
            errors.push(FieldError::new(
                "workspace.auto_stop_minutes",
                format!("must be a positive multiple of 60 (got {minutes})"),
            ));
        }
        if let Some(g) = self.root_volume_gib
            && !(80..=2000).contains(&g)
        {
            errors.push(FieldError::new("workspace.root_volume_gib", format!("must be 80-2000 (got {g})")));
        }
        if let Some(g) = self.user_volume_gib
            && !(10..=2000).contains(&g)
        {
            errors.push(FieldError::new("workspace.user_volume_gib", format!("must be 10-2000 (got {g})")));
        }
        errors
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HrEvent {
    pub event_id: EventId,
    pub kind: EventKind,
    pub occurred_at: Timestamp,
    pub effective_at: Option<Timestamp>,
    pub employee: Employee,
    pub workspace: WorkspaceOverrides,
    /// For `cancel`: the event withdrawn.
    pub cancels: Option<EventId>,
    /// SHA-256 of the canonical JSON of the event: tells a redelivery from a reused event id.
    pub payload_hash: String,
}

/// Rules that depend on the deployment (the directory backend's user-name limit).
#[derive(Debug, Clone, Copy)]
pub struct EventRules {
    pub username_max_len: usize,
}

impl Default for EventRules {
    fn default() -> Self {
        Self { username_max_len: UserName::WORKSPACES_MAX }
    }
}

const TOP_FIELDS: &[&str] =
    &["schema_version", "event_id", "type", "occurred_at", "effective_at", "employee", "workspace", "cancels"];
const EMPLOYEE_FIELDS: &[&str] = &["employee_id", "username", "given_name", "surname", "email", "department"];

/// The canonical form of a JSON value: object keys sorted, no insignificant whitespace.
pub fn canonical_hash(value: &Value) -> String {
    // serde_json's Map keeps keys sorted (no preserve_order feature), so to_string is canonical.
    let digest = Sha256::digest(value.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

struct Reader<'a> {
    errors: Vec<FieldError>,
    object: &'a Map<String, Value>,
    prefix: &'static str,
}

impl<'a> Reader<'a> {
    fn field(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn fail(&mut self, name: &str, rule: impl Into<String>) {
        let field = self.field(name);
        self.errors.push(FieldError::new(field, rule));
    }

    fn unknown(&mut self, allowed: &[&str]) {
        let unknown: Vec<String> = self.object.keys().filter(|k| !allowed.contains(&k.as_str())).cloned().collect();
        for key in unknown {
            self.fail(&key, "is not a field of the v1 contract");
        }
    }

    fn string(&mut self, name: &str, required: bool) -> Option<&'a str> {
        match self.object.get(name) {
            None | Some(Value::Null) => {
                if required {
                    self.fail(name, "is required");
                }
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.fail(name, "must be a string");
                None
            }
        }
    }

    fn parsed<T>(&mut self, name: &str, required: bool, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let raw = self.string(name, required)?;
        match parse(raw) {
            Ok(v) => Some(v),
            Err(rule) => {
                self.fail(name, rule);
                None
            }
        }
    }
}

impl HrEvent {
    /// Parses an SQS message body.
    pub fn parse(body: &str, rules: EventRules) -> Result<HrEvent, InvalidEvent> {
        let value: Value = serde_json::from_str(body)
            .map_err(|e| InvalidEvent::single(FieldError::new("(body)", format!("must be a JSON object: {e}"))))?;
        Self::from_value(&value, rules)
    }

    pub fn from_value(value: &Value, rules: EventRules) -> Result<HrEvent, InvalidEvent> {
        let Value::Object(object) = value else {
            return Err(InvalidEvent::single(FieldError::new("(body)", "must be a JSON object")));
        };
        let mut r = Reader { errors: Vec::new(), object, prefix: "" };
        r.unknown(TOP_FIELDS);
        match object.get("schema_version") {
            Some(Value::String(v)) if v == SCHEMA_VERSION => {}
            Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
            None | Some(Value::Null) => r.fail("schema_version", "is required (\"1\")"),
            Some(other) => r.fail("schema_version", format!("must be \"1\", got {other}")),
        }
        let event_id = r.parsed("event_id", true, EventId::parse);
        let kind = r.parsed("type", true, |s| match s {
            "join" => Ok(EventKind::Join),
            "leave" => Ok(EventKind::Leave),
            "cancel" => Ok(EventKind::Cancel),
            other => Err(format!("must be one of join, leave, cancel (got {other:?})")),
        });
        let occurred_at = r.parsed("occurred_at", true, Timestamp::parse);
        let effective_at = r.parsed("effective_at", false, Timestamp::parse);
        let cancels = r.parsed("cancels", kind == Some(EventKind::Cancel), EventId::parse);
        let mut errors = std::mem::take(&mut r.errors);

        let employee = match object.get("employee") {
            Some(Value::Object(emp)) => {
                let is_join = kind == Some(EventKind::Join);
                let mut e = Reader { errors: Vec::new(), object: emp, prefix: "employee." };
                e.unknown(EMPLOYEE_FIELDS);
                let employee_id = e.parsed("employee_id", true, EmployeeId::parse);
                let username = e.parsed("username", is_join, |s| UserName::parse(s, rules.username_max_len));
                let given_name = e.parsed("given_name", is_join, PersonName::parse);
                let surname = e.parsed("surname", is_join, PersonName::parse);
                let email = e.parsed("email", is_join, EmailAddress::parse);
                let department = e.parsed("department", false, |s| {
                    let s = s.trim();
                    if s.is_empty() || s.chars().count() > 128 || s.chars().any(char::is_control) {
                        Err("must be 1-128 characters without control characters".into())
                    } else {
                        Ok(s.to_owned())
                    }
                });
                errors.append(&mut e.errors);
                employee_id.map(|employee_id| Employee {
                    employee_id,
                    username,
                    given_name,
                    surname,
                    email,
                    department,
                })
            }
            None | Some(Value::Null) => {
                errors.push(FieldError::new("employee", "is required"));
                None
            }
            Some(_) => {
                errors.push(FieldError::new("employee", "must be an object"));
                None
            }
        };

        let workspace = match object.get("workspace") {
            None | Some(Value::Null) => WorkspaceOverrides::default(),
            Some(v) => match serde_json::from_value::<WorkspaceOverrides>(v.clone()) {
                Ok(w) => {
                    errors.extend(w.validate());
                    w
                }
                Err(e) => {
                    errors.push(FieldError::new("workspace", format!("is invalid: {e}")));
                    WorkspaceOverrides::default()
                }
            },
        };

        match (event_id, kind, occurred_at, employee) {
            (Some(event_id), Some(kind), Some(occurred_at), Some(employee)) if errors.is_empty() => Ok(HrEvent {
                event_id,
                kind,
                occurred_at,
                effective_at,
                employee,
                workspace,
                cancels,
                payload_hash: canonical_hash(value),
            }),
            _ => Err(InvalidEvent {
                event_id: object.get("event_id").and_then(Value::as_str).map(str::to_owned),
                employee_id: object
                    .get("employee")
                    .and_then(|e| e.get("employee_id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                errors,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn events_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
    }

    #[test]
    fn the_sample_files_are_valid_or_invalid_as_named() {
        let mut seen = 0;
        for entry in std::fs::read_dir(events_dir().join("hr")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let parsed = HrEvent::parse(&std::fs::read_to_string(&path).unwrap(), EventRules::default());
            if name.starts_with("valid-") {
                assert!(parsed.is_ok(), "{name}: {parsed:?}");
            } else {
                let err = parsed.expect_err(&name);
                assert!(!err.errors.is_empty());
                assert_eq!(err.event_id.as_deref(), Some(format!("hr-{}", name.trim_end_matches(".json")).as_str()));
            }
            seen += 1;
        }
        assert!(seen >= 12);
    }

    fn join() -> serde_json::Value {
        serde_json::from_str(include_str!("../../../events/hr/valid-join.json")).unwrap()
    }

    #[test]
    fn every_violation_is_named_with_its_rule() {
        let mut e = join();
        e["type"] = "promote".into();
        e["occurred_at"] = "tomorrow".into();
        e["employee"]["username"] = "x".repeat(21).into();
        e["employee"]["email"] = "nope".into();
        e["employee"]["badge"] = "7".into();
        let err = HrEvent::from_value(&e, EventRules { username_max_len: 20 }).unwrap_err();
        let fields: Vec<&str> = err.errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, vec!["type", "occurred_at", "employee.badge", "employee.username", "employee.email"]);
        assert!(err.to_string().contains("employee.username must be 1-20 characters (got 21)"), "{err}");
        assert_eq!(err.employee_id.as_deref(), Some("E1001"));
    }

    #[test]
    fn leave_needs_only_the_employee_id_and_hash_ignores_key_order() {
        let leave = r#"{"type":"leave","schema_version":"1","event_id":"x1","occurred_at":"2026-01-01T00:00:00Z","employee":{"employee_id":"E1"}}"#;
        let reordered = r#"{"employee":{"employee_id":"E1"},"event_id":"x1","occurred_at":"2026-01-01T00:00:00Z","schema_version":"1","type":"leave"}"#;
        let a = HrEvent::parse(leave, EventRules::default()).unwrap();
        let b = HrEvent::parse(reordered, EventRules::default()).unwrap();
        assert_eq!(a.kind, EventKind::Leave);
        assert_eq!(a.payload_hash, b.payload_hash);
        let changed = leave.replace("E1", "E2");
        assert_ne!(HrEvent::parse(&changed, EventRules::default()).unwrap().payload_hash, a.payload_hash);
    }

    #[test]
    fn not_json_is_rejected_not_a_panic() {
        let err = HrEvent::parse("{ nope", EventRules::default()).unwrap_err();
        assert_eq!(err.errors[0].field, "(body)");
        assert!(HrEvent::parse("[1,2]", EventRules::default()).is_err());
    }
}
