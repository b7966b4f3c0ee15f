//! The HR event contract, version 1: what the HR system posts to the HR events queue.
//! Parsing validates every field and reports each violation with its field and rule.

use super::names::{
    EmailAddress, EmployeeId, EventId, PersonName, ProfileName, UserName, UserNameRules, Violations, plain_text,
};
use super::profile::COMPUTE_TYPES;
use super::time::Timestamp;
use super::validation::{FieldError, InvalidEvent, MAX_BODY_BYTES, Rule, echo};
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
    /// A change of department and/or WorkSpace: the same person keeps their user and data.
    Move,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Join => "join",
            EventKind::Leave => "leave",
            EventKind::Cancel => "cancel",
            EventKind::Move => "move",
        }
    }
}

/// Who the event is about. For `leave`, `cancel` and `move` only the id is required.
#[derive(Debug, Clone, PartialEq)]
pub struct Employee {
    pub employee_id: EmployeeId,
    pub username: Option<UserName>,
    pub given_name: Option<PersonName>,
    pub surname: Option<PersonName>,
    pub email: Option<EmailAddress>,
    pub department: Option<String>,
}

/// Per-event WorkSpace choices that override the department's profile (for a move: the new ones).
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
    /// For `leave`: hours between cutting access and terminating the WorkSpace (0: at once);
    /// `None`: the deployment's default.
    pub grace_ms: Option<i64>,
    /// SHA-256 of the canonical JSON of the event: tells a redelivery from a reused event id.
    pub payload_hash: String,
}

/// The rules that depend on the deployment and on the time the event is read.
#[derive(Debug, Clone, Copy)]
pub struct EventRules {
    /// The directory backend's user-name rules.
    pub username: UserNameRules,
    /// When the event is read: `occurred_at` and `effective_at` are bounded relative to it.
    pub now: Timestamp,
    /// How far `occurred_at` may lie in the future (clocks disagree a little).
    pub clock_skew_ms: i64,
    /// How far `effective_at` may lie in the future.
    pub effective_horizon_ms: i64,
}

impl EventRules {
    pub const DEFAULT_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
    pub const DEFAULT_HORIZON_MS: i64 = 400 * 86_400 * 1000;

    /// The default bounds at `now`, for a backend's user names.
    pub fn at(now: Timestamp, username: UserNameRules) -> Self {
        Self {
            username,
            now,
            clock_skew_ms: Self::DEFAULT_CLOCK_SKEW_MS,
            effective_horizon_ms: Self::DEFAULT_HORIZON_MS,
        }
    }
}

const TOP_FIELDS: &[&str] = &[
    "schema_version",
    "event_id",
    "type",
    "occurred_at",
    "effective_at",
    "employee",
    "workspace",
    "cancels",
    "grace_hours",
];
const EMPLOYEE_FIELDS: &[&str] = &["employee_id", "username", "given_name", "surname", "email", "department"];
const WORKSPACE_FIELDS: &[&str] = &[
    "profile",
    "bundle_id",
    "running_mode",
    "auto_stop_minutes",
    "compute_type",
    "root_volume_gib",
    "user_volume_gib",
];
pub const DEPARTMENT_MAX: usize = 128;
/// Longest grace period a leave may ask for: 90 days.
pub const MAX_GRACE_HOURS: u32 = 90 * 24;

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
    fn new(object: &'a Map<String, Value>, prefix: &'static str, allowed: &[&str]) -> Self {
        let mut reader = Reader { errors: Vec::new(), object, prefix };
        let unknown: Vec<&String> = object.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
        for key in unknown {
            reader.fail(key, Rule::UnknownField, "is not a field of the v1 contract".into());
        }
        reader
    }

    fn fail(&mut self, name: &str, rule: Rule, message: String) {
        self.errors.push(FieldError::new(format!("{}{name}", self.prefix), rule, message));
    }

    fn violations(&mut self, name: &str, violations: Violations) {
        for (rule, message) in violations {
            self.fail(name, rule, message);
        }
    }

    /// The field's JSON value; `null` is a value (of the wrong type), not an absent field.
    fn value(&mut self, name: &str, required: bool) -> Option<&'a Value> {
        let value = self.object.get(name);
        if value.is_none() && required {
            self.fail(name, Rule::Required, "is required".into());
        }
        value
    }

    fn string(&mut self, name: &str, required: bool) -> Option<&'a str> {
        match self.value(name, required)? {
            Value::String(s) => Some(s),
            other => {
                self.fail(name, Rule::Type, format!("must be a string (got {})", json_type(other)));
                None
            }
        }
    }

    fn parsed<T>(
        &mut self,
        name: &str,
        required: bool,
        parse: impl FnOnce(&str) -> Result<T, Violations>,
    ) -> Option<T> {
        let raw = self.string(name, required)?;
        match parse(raw) {
            Ok(v) => Some(v),
            Err(violations) => {
                self.violations(name, violations);
                None
            }
        }
    }

    /// A number of hours within 0..=`max` (fractions allowed: 0.25 is 15 minutes), in
    /// milliseconds.
    fn hours(&mut self, name: &str, max: u32) -> Option<i64> {
        let value = self.value(name, false)?;
        let Some(hours) = value.as_f64().filter(|h| h.is_finite()) else {
            self.fail(name, Rule::Type, format!("must be a number of hours (got {})", json_type(value)));
            return None;
        };
        if !(0.0..=f64::from(max)).contains(&hours) {
            // 1e308 would print as 309 digits: a huge value is echoed in exponent form.
            let shown = if hours.abs() < 1e9 { hours.to_string() } else { format!("{hours:e}") };
            self.fail(name, Rule::Range, format!("must be 0-{max} (got {shown})"));
            return None;
        }
        Some((hours * 3_600_000.0).round() as i64)
    }

    /// An integer (JSON Schema's sense: `80` and `80.0` alike) within `range`, optionally a
    /// multiple of `step` (of the number as read, not as saturated for the range check).
    fn integer(&mut self, name: &str, range: std::ops::RangeInclusive<i64>, step: Option<i64>) -> Option<i32> {
        let value = self.value(name, false)?;
        let Some(number) = as_integer(value) else {
            self.fail(name, Rule::Type, format!("must be an integer (got {})", json_type(value)));
            return None;
        };
        let mut ok = true;
        if !range.contains(&number) {
            let (low, high) = (range.start(), range.end());
            let rule = if *high == i64::MAX { format!("{low} or more") } else { format!("{low}-{high}") };
            self.fail(name, Rule::Range, format!("must be {rule} (got {number})"));
            ok = false;
        }
        if let Some(step) = step
            && !is_multiple(value, step)
        {
            self.fail(name, Rule::MultipleOf, format!("must be a multiple of {step} (got {number})"));
            ok = false;
        }
        ok.then(|| i32::try_from(number).ok()).flatten()
    }

    fn one_of(&mut self, name: &str, allowed: &[&str]) -> Option<String> {
        let value = self.value(name, false)?;
        match value.as_str().filter(|s| allowed.contains(s)) {
            Some(s) => Some(s.to_owned()),
            None => {
                let got = value.as_str().map_or_else(|| json_type(value).to_owned(), echo);
                self.fail(name, Rule::Enum, format!("must be one of {} (got {got})", allowed.join(", ")));
                None
            }
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether a JSON number is a multiple of `step`, as JSON Schema's `multipleOf` sees the number
/// read: exactly for 64-bit integers, by the exact remainder for a double (a number beyond them).
fn is_multiple(value: &Value, step: i64) -> bool {
    let Some(n) = value.as_number() else { return false };
    if let Some(i) = n.as_i64() {
        return i % step == 0;
    }
    if let Some(u) = n.as_u64() {
        return u % step.unsigned_abs() == 0;
    }
    n.as_f64().is_some_and(|f| f % step as f64 == 0.0)
}

/// A JSON number with an integral value, saturated to i64 (a huge one then fails its range).
fn as_integer(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.as_u64().is_some() {
        return Some(i64::MAX);
    }
    n.as_f64().filter(|f| f.is_finite() && f.fract() == 0.0).map(|f| f as i64)
}

impl WorkspaceOverrides {
    fn read(value: &Value, errors: &mut Vec<FieldError>) -> WorkspaceOverrides {
        let Value::Object(object) = value else {
            errors.push(FieldError::new(
                "workspace",
                Rule::Type,
                format!("must be an object (got {})", json_type(value)),
            ));
            return WorkspaceOverrides::default();
        };
        let mut w = Reader::new(object, "workspace.", WORKSPACE_FIELDS);
        let overrides = WorkspaceOverrides {
            profile: w.parsed("profile", false, |s| ProfileName::parse(s).map(|p| p.to_string())),
            bundle_id: w.parsed("bundle_id", false, |b| {
                let ok = b.strip_prefix("wsb-").is_some_and(|rest| {
                    (8..=63).contains(&rest.len()) && rest.chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
                });
                if ok {
                    Ok(b.to_owned())
                } else {
                    Err(vec![(Rule::Pattern, format!("must match ^wsb-[0-9a-z]{{8,63}}$ (got {})", echo(b)))])
                }
            }),
            running_mode: w.one_of("running_mode", &["AUTO_STOP", "ALWAYS_ON"]),
            // WorkSpaces' RunningModeAutoStopTimeoutInMinutes is a 32-bit integer.
            auto_stop_minutes: w.integer("auto_stop_minutes", 60..=i64::from(i32::MAX), Some(60)),
            compute_type: w.one_of("compute_type", COMPUTE_TYPES),
            root_volume_gib: w.integer("root_volume_gib", 80..=2000, None),
            user_volume_gib: w.integer("user_volume_gib", 10..=2000, None),
        };
        errors.append(&mut w.errors);
        overrides
    }
}

impl HrEvent {
    /// Parses an SQS message body: its size first, then strict JSON (a key given twice is an
    /// error, not "the last one wins"), then every field.
    pub fn parse(body: &str, rules: EventRules) -> Result<HrEvent, InvalidEvent> {
        if body.len() > MAX_BODY_BYTES {
            return Err(InvalidEvent::single(FieldError::new(
                "(body)",
                Rule::BodySize,
                format!("must be at most {MAX_BODY_BYTES} bytes (got {})", body.len()),
            )));
        }
        match strict_json::parse(body) {
            Ok(value) => Self::from_value(&value, rules),
            Err(error) => {
                let mut invalid = InvalidEvent::single(error);
                if invalid.errors[0].rule == Rule::DuplicateKey
                    && let Ok(lenient) = serde_json::from_str::<Value>(body)
                {
                    // Filed under the event and employee it names, where those ids are valid,
                    // so "what happened to this person?" finds it.
                    let (event_id, _, employee_id, _) = identity(&lenient);
                    invalid.event_id = event_id;
                    invalid.employee_id = employee_id;
                }
                Err(invalid)
            }
        }
    }

    pub fn from_value(value: &Value, rules: EventRules) -> Result<HrEvent, InvalidEvent> {
        let Value::Object(object) = value else {
            return Err(InvalidEvent::single(FieldError::new(
                "(body)",
                Rule::Json,
                format!("must be a JSON object (got {})", json_type(value)),
            )));
        };
        let mut r = Reader::new(object, "", TOP_FIELDS);
        match r.value("schema_version", true) {
            None => {}
            Some(Value::String(v)) if v == SCHEMA_VERSION => {}
            Some(Value::Number(n)) if n.as_f64() == Some(1.0) => {}
            Some(other) => {
                r.fail("schema_version", Rule::Enum, format!("must be \"1\" (got {})", echo(&other.to_string())));
            }
        }
        let event_id = r.parsed("event_id", true, EventId::parse);
        let kind = match r.value("type", true) {
            None => None,
            Some(v) => match v.as_str() {
                Some("join") => Some(EventKind::Join),
                Some("leave") => Some(EventKind::Leave),
                Some("cancel") => Some(EventKind::Cancel),
                Some("move") => Some(EventKind::Move),
                _ => {
                    let got = v.as_str().map_or_else(|| json_type(v).to_owned(), echo);
                    r.fail("type", Rule::Enum, format!("must be one of join, leave, cancel, move (got {got})"));
                    None
                }
            },
        };
        let latest_occurred = rules.now.plus_millis(rules.clock_skew_ms);
        let occurred_at = r.parsed("occurred_at", true, |s| {
            let t = Timestamp::parse(s)?;
            if t > latest_occurred {
                return Err(vec![(
                    Rule::Future,
                    format!(
                        "must not be later than now plus {} s of clock skew (got {t}, now is {}): occurred_at is when the change was made in HR; put a future start or leave date in effective_at",
                        rules.clock_skew_ms / 1000,
                        rules.now
                    ),
                )]);
            }
            Ok(t)
        });
        let latest_effective = rules.now.plus_millis(rules.effective_horizon_ms);
        let effective_at = r.parsed("effective_at", false, |s| {
            let t = Timestamp::parse(s)?;
            if t > latest_effective {
                return Err(vec![(
                    Rule::Horizon,
                    format!(
                        "must be at most {} days ahead (got {t}, now is {})",
                        rules.effective_horizon_ms / 86_400_000,
                        rules.now
                    ),
                )]);
            }
            Ok(t)
        });
        let cancels = r.parsed("cancels", kind == Some(EventKind::Cancel), EventId::parse);
        if kind == Some(EventKind::Move) && object.contains_key("cancels") {
            r.fail("cancels", Rule::NotAllowed, "is not taken by a move (only a cancel withdraws an event)".into());
        }
        let grace_ms = r.hours("grace_hours", MAX_GRACE_HOURS);
        // An unreadable type says nothing of what the event takes: only its own error then.
        if let Some(kind) = kind.filter(|k| *k != EventKind::Leave)
            && object.contains_key("grace_hours")
        {
            r.fail("grace_hours", Rule::NotAllowed, format!("applies only to a leave (type is {})", kind.as_str()));
        }
        if kind == Some(EventKind::Move) && !names_a_move_target(object) {
            r.fail(
                "(body)",
                Rule::MoveTarget,
                "a move must name where to: employee.department, or a workspace with at least one field".into(),
            );
        }
        let mut errors = std::mem::take(&mut r.errors);

        let employee = match r.value("employee", true) {
            None => {
                errors.append(&mut r.errors);
                None
            }
            Some(Value::Object(emp)) => {
                let is_join = kind == Some(EventKind::Join);
                let mut e = Reader::new(emp, "employee.", EMPLOYEE_FIELDS);
                let employee_id = e.parsed("employee_id", true, EmployeeId::parse);
                let username = e.parsed("username", is_join, |s| UserName::parse(s, rules.username));
                let given_name = e.parsed("given_name", is_join, PersonName::parse);
                let surname = e.parsed("surname", is_join, PersonName::parse);
                let email = e.parsed("email", is_join, EmailAddress::parse);
                let department = e.parsed("department", false, |s| plain_text(s, DEPARTMENT_MAX));
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
            Some(other) => {
                errors.push(FieldError::new(
                    "employee",
                    Rule::Type,
                    format!("must be an object (got {})", json_type(other)),
                ));
                None
            }
        };

        let workspace = match object.get("workspace") {
            None => WorkspaceOverrides::default(),
            Some(v) => WorkspaceOverrides::read(v, &mut errors),
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
                grace_ms,
                payload_hash: canonical_hash(value),
            }),
            _ => {
                let (event_id, raw_event_id, employee_id, raw_employee_id) = identity(value);
                Err(InvalidEvent { event_id, employee_id, raw_event_id, raw_employee_id, errors })
            }
        }
    }
}

/// Whether a move names where to: a department, or a workspace with at least one field. Read
/// as the JSON Schema's `anyOf` reads it: a present `employee` or `workspace` of the wrong type
/// counts (its own `type` error is the one to report), and so does a field that breaks its rules.
fn names_a_move_target(object: &Map<String, Value>) -> bool {
    let department = match object.get("employee") {
        None => false,
        Some(Value::Object(employee)) => employee.contains_key("department"),
        Some(_) => true,
    };
    let workspace = match object.get("workspace") {
        None => false,
        Some(Value::Object(workspace)) => !workspace.is_empty(),
        Some(_) => true,
    };
    department || workspace
}

/// What an invalid event says of its identity: each id when it is valid, otherwise what was
/// sent, echoed in bounded form (`event_id`, its echo, `employee_id`, its echo).
fn identity(value: &Value) -> (Option<String>, Option<String>, Option<String>, Option<String>) {
    fn split<T: ToString>(
        raw: Option<&str>,
        parse: impl Fn(&str) -> Result<T, Violations>,
    ) -> (Option<String>, Option<String>) {
        match raw.map(|id| (id, parse(id))) {
            Some((_, Ok(id))) => (Some(id.to_string()), None),
            Some((id, Err(_))) => (None, Some(echo(id))),
            None => (None, None),
        }
    }
    let (event_id, raw_event_id) = split(value.get("event_id").and_then(Value::as_str), EventId::parse);
    let (employee_id, raw_employee_id) =
        split(value.get("employee").and_then(|e| e.get("employee_id")).and_then(Value::as_str), EmployeeId::parse);
    (event_id, raw_event_id, employee_id, raw_employee_id)
}

/// JSON as the contract reads it: like `serde_json`, but a key given twice in one object is an
/// error naming the key's path (`serde_json::Value` would keep the last value silently). A body
/// that is not JSON at all is a `json` error even when a key was given twice before the fault.
mod strict_json {
    use super::{FieldError, Rule, echo};
    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};
    use std::cell::RefCell;
    use std::fmt;

    pub fn parse(body: &str) -> Result<Value, FieldError> {
        let duplicate = RefCell::new(None);
        let mut de = serde_json::Deserializer::from_str(body);
        let parsed = Seed { path: String::new(), duplicate: &duplicate }
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| {
                FieldError::new("(body)", Rule::Json, format!("must be a JSON object: {}", echo(&e.to_string())))
            })?;
        match duplicate.into_inner() {
            Some(path) => Err(FieldError::new(path, Rule::DuplicateKey, "appears more than once in its object")),
            None => Ok(parsed),
        }
    }

    /// Where a value is, and the path of the first key found twice (in document order).
    struct Seed<'a> {
        path: String,
        duplicate: &'a RefCell<Option<String>>,
    }

    impl Seed<'_> {
        fn child(&self, key: &str) -> Self {
            let path = if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) };
            Seed { path, duplicate: self.duplicate }
        }
    }

    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Value;
        fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }
        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }
        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(self.child(&format!("[{}]", items.len())))? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut object = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let child = self.child(&key);
                if object.contains_key(&key) {
                    self.duplicate.borrow_mut().get_or_insert_with(|| child.path.clone());
                }
                let value = map.next_value_seed(child)?;
                object.insert(key, value);
            }
            Ok(Value::Object(object))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> EventRules {
        EventRules::at(Timestamp::parse("2026-11-02T12:00:00Z").unwrap(), UserNameRules::DS_DATA)
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
        let err = HrEvent::from_value(&e, rules()).unwrap_err();
        assert_eq!(
            err.rules(),
            vec![
                ("type", Rule::Enum),
                ("occurred_at", Rule::Timestamp),
                ("employee.badge", Rule::UnknownField),
                ("employee.username", Rule::Length),
                ("employee.email", Rule::EmailFormat),
            ]
        );
        assert!(err.to_string().contains("employee.username must be 1-20 characters (got 21)"), "{err}");
        assert_eq!(err.employee_id.as_deref(), Some("E1001"));
    }

    #[test]
    fn leave_needs_only_the_employee_id_and_hash_ignores_key_order() {
        let leave = r#"{"type":"leave","schema_version":"1","event_id":"x1","occurred_at":"2026-01-01T00:00:00Z","employee":{"employee_id":"E1"}}"#;
        let reordered = r#"{"employee":{"employee_id":"E1"},"event_id":"x1","occurred_at":"2026-01-01T00:00:00Z","schema_version":"1","type":"leave"}"#;
        let a = HrEvent::parse(leave, rules()).unwrap();
        let b = HrEvent::parse(reordered, rules()).unwrap();
        assert_eq!(a.kind, EventKind::Leave);
        assert_eq!(a.payload_hash, b.payload_hash);
        let changed = leave.replace("E1", "E2");
        assert_ne!(HrEvent::parse(&changed, rules()).unwrap().payload_hash, a.payload_hash);
    }

    fn event(body: serde_json::Value) -> Result<HrEvent, InvalidEvent> {
        HrEvent::from_value(&body, rules())
    }

    fn move_to(extra: serde_json::Value) -> serde_json::Value {
        let mut e = serde_json::json!({"schema_version": "1", "event_id": "m1", "type": "move",
            "occurred_at": "2026-11-02T09:00:00Z", "employee": {"employee_id": "E1"}});
        for (key, value) in extra.as_object().unwrap() {
            e[key] = value.clone();
        }
        e
    }

    #[test]
    fn given_a_move_with_a_department_or_workspace_when_parsed_then_it_is_a_move_with_them() {
        let to_sales = event(move_to(serde_json::json!({"employee": {"employee_id": "E1", "department": "Sales"}})));
        let to_sales = to_sales.unwrap();
        assert_eq!((to_sales.kind, to_sales.employee.department.as_deref()), (EventKind::Move, Some("Sales")));
        let bigger = event(move_to(serde_json::json!({"workspace": {"user_volume_gib": 100}}))).unwrap();
        assert_eq!(bigger.workspace.user_volume_gib, Some(100));
        let later = event(move_to(serde_json::json!({"effective_at": "2026-12-01T00:00:00Z",
            "workspace": {"profile": "engineering"}})));
        assert_eq!(later.unwrap().effective_at, Some(Timestamp::parse("2026-12-01T00:00:00Z").unwrap()));
    }

    #[test]
    fn given_a_move_naming_nowhere_when_parsed_then_it_breaks_move_target() {
        assert_eq!(event(move_to(serde_json::json!({}))).unwrap_err().rules(), vec![("(body)", Rule::MoveTarget)]);
        let empty = event(move_to(serde_json::json!({"workspace": {}}))).unwrap_err();
        assert_eq!(empty.rules(), vec![("(body)", Rule::MoveTarget)]);
        assert!(empty.to_string().contains("employee.department"), "says what to add: {empty}");
        // A workspace of the wrong type is its own error, as the schema's anyOf sees it.
        let wrong = event(move_to(serde_json::json!({"workspace": "big"}))).unwrap_err();
        assert_eq!(wrong.rules(), vec![("workspace", Rule::Type)]);
    }

    #[test]
    fn given_a_move_with_cancels_or_grace_hours_when_parsed_then_each_is_not_allowed() {
        let e = move_to(serde_json::json!({"cancels": "x1", "grace_hours": 24,
            "employee": {"employee_id": "E1", "department": "Sales"}}));
        assert_eq!(
            event(e).unwrap_err().rules(),
            vec![("cancels", Rule::NotAllowed), ("grace_hours", Rule::NotAllowed)]
        );
        let mut j = join();
        j["grace_hours"] = 24.into();
        let err = event(j).unwrap_err();
        assert_eq!(err.rules(), vec![("grace_hours", Rule::NotAllowed)]);
        assert!(err.to_string().contains("applies only to a leave (type is join)"), "{err}");
    }

    #[test]
    fn given_a_leave_with_grace_hours_when_parsed_then_they_are_kept_within_0_to_90_days() {
        let leave = |grace: serde_json::Value| {
            event(serde_json::json!({"schema_version": "1", "event_id": "l1", "type": "leave",
                "occurred_at": "2026-11-02T09:00:00Z", "employee": {"employee_id": "E1"}, "grace_hours": grace}))
        };
        const HOUR: i64 = 3_600_000;
        assert_eq!(leave(72.into()).unwrap().grace_ms, Some(72 * HOUR));
        assert_eq!(leave(0.into()).unwrap().grace_ms, Some(0), "0 terminates at once");
        assert_eq!(leave(serde_json::json!(2160.0)).unwrap().grace_ms, Some(i64::from(MAX_GRACE_HOURS) * HOUR));
        assert_eq!(leave(serde_json::json!(0.25)).unwrap().grace_ms, Some(HOUR / 4), "fractions: 15 minutes");
        assert_eq!(leave(serde_json::json!(2160.5)).unwrap_err().rules(), vec![("grace_hours", Rule::Range)]);
        assert_eq!(leave((-1).into()).unwrap_err().rules(), vec![("grace_hours", Rule::Range)]);
        let huge = leave(serde_json::json!(1e308)).unwrap_err().to_string();
        assert!(huge.contains("got 1e308") && huge.len() < 300, "echoed bounded: {huge}");
        assert_eq!(leave("72".into()).unwrap_err().rules(), vec![("grace_hours", Rule::Type)]);
        let without = event(serde_json::json!({"schema_version": "1", "event_id": "l1", "type": "leave",
            "occurred_at": "2026-11-02T09:00:00Z", "employee": {"employee_id": "E1"}}));
        assert_eq!(without.unwrap().grace_ms, None, "the deployment's default");
        // An event id sent again with another grace period is other content: a conflict.
        assert_ne!(leave(72.into()).unwrap().payload_hash, leave(24.into()).unwrap().payload_hash);
    }

    #[test]
    fn not_json_is_rejected_not_a_panic() {
        let err = HrEvent::parse("{ nope", rules()).unwrap_err();
        assert_eq!(err.rules(), vec![("(body)", Rule::Json)]);
        assert_eq!(HrEvent::parse("[1,2]", rules()).unwrap_err().rules(), vec![("(body)", Rule::Json)]);
        let deep = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
        assert_eq!(HrEvent::parse(&deep, rules()).unwrap_err().rules(), vec![("(body)", Rule::Json)]);
    }

    #[test]
    fn a_key_given_twice_is_rejected_with_its_path() {
        let body = r#"{"schema_version":"1","event_id":"x1","type":"join","occurred_at":"2026-01-01T00:00:00Z",
            "employee":{"employee_id":"E1","username":"jdoe","username":"root","given_name":"J","surname":"D","email":"j@x.com"}}"#;
        let err = HrEvent::parse(body, rules()).unwrap_err();
        assert_eq!(err.rules(), vec![("employee.username", Rule::DuplicateKey)]);
    }

    #[test]
    fn times_are_bounded_relative_to_now() {
        let mut e = join();
        e["occurred_at"] = "2026-11-02T12:04:59Z".into();
        assert!(HrEvent::from_value(&e, rules()).is_ok(), "within the clock-skew allowance");
        e["occurred_at"] = "2100-01-01T00:00:00Z".into();
        let err = HrEvent::from_value(&e, rules()).unwrap_err();
        assert_eq!(err.rules(), vec![("occurred_at", Rule::Future)]);
        assert!(err.to_string().contains("effective_at"), "tells the integrator what to use: {err}");
        e["occurred_at"] = "2026-11-02T09:00:00Z".into();
        e["effective_at"] = "2020-01-01T00:00:00Z".into();
        assert!(HrEvent::from_value(&e, rules()).is_ok(), "a backdated change applies at once");
        e["effective_at"] = "2027-12-08T00:00:00Z".into();
        assert_eq!(HrEvent::from_value(&e, rules()).unwrap_err().rules(), vec![("effective_at", Rule::Horizon)]);
    }

    #[test]
    fn oversized_bodies_and_ids_never_become_keys_or_long_reasons() {
        let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        assert_eq!(HrEvent::parse(&huge, rules()).unwrap_err().rules(), vec![("(body)", Rule::BodySize)]);
        let mut e = join();
        e["event_id"] = "e".repeat(1100).into();
        e["employee"]["employee_id"] = "E".repeat(2100).into();
        e["employee"]["email"] = "\u{7f}".repeat(5000).into();
        let err = HrEvent::from_value(&e, rules()).unwrap_err();
        assert_eq!((err.event_id.as_deref(), err.employee_id.as_deref()), (None, None));
        assert!(err.raw_event_id.as_ref().unwrap().contains("(1100 characters)"));
        assert!(err.to_string().chars().count() <= crate::domain::validation::MAX_REASON_CHARS);
    }
}
