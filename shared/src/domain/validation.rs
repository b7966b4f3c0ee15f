//! Validation errors that name the field and the rule, in bounded size: a value from the event is
//! only ever echoed truncated and escaped, and a whole reason has a fixed maximum length.

use std::fmt;

/// The rules of the HR contract, by name. The corpus in `events/hr/` names these, and the JSON
/// Schema's checks carry the same names (`x-rule`, or the keyword's own rule), so schema and
/// parser are held to the same verdict case by case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// The body is larger than [`MAX_BODY_BYTES`].
    BodySize,
    /// The body is not a JSON object.
    Json,
    /// A key appears twice in one object.
    DuplicateKey,
    /// A field that is not part of the contract.
    UnknownField,
    Required,
    /// The wrong JSON type (a number where a string is expected, ...).
    Type,
    /// Not one of the allowed values.
    Enum,
    /// Does not match the field's pattern (ids, bundle ids, profile names).
    Pattern,
    /// Too short or too long.
    Length,
    /// A character outside the field's allowed set.
    Charset,
    /// Control, zero-width or other invisible formatting characters.
    Invisible,
    /// A user name that ends with a period.
    TrailingPeriod,
    /// An e-mail address without a local part, an `@` and a domain.
    EmailFormat,
    /// An e-mail domain whose labels break the usual rules (empty, over 63, leading or trailing `-`).
    EmailDomain,
    /// Not an RFC 3339 timestamp with a time zone, or outside the years 2000–2200.
    Timestamp,
    /// `occurred_at` later than now plus the clock-skew allowance.
    Future,
    /// `effective_at` beyond the horizon.
    Horizon,
    /// A number outside its range.
    Range,
    /// A number that must be a multiple of 60.
    MultipleOf,
    /// Does not name a configured profile.
    UnknownProfile,
    /// A move that names neither a new department nor any WorkSpace override: nothing to move to.
    MoveTarget,
    /// A field the event's type does not take (`grace_hours` other than on a leave, `cancels`
    /// on a move).
    NotAllowed,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::BodySize => "body-size",
            Rule::Json => "json",
            Rule::DuplicateKey => "duplicate-key",
            Rule::UnknownField => "unknown-field",
            Rule::Required => "required",
            Rule::Type => "type",
            Rule::Enum => "enum",
            Rule::Pattern => "pattern",
            Rule::Length => "length",
            Rule::Charset => "charset",
            Rule::Invisible => "invisible",
            Rule::TrailingPeriod => "trailing-period",
            Rule::EmailFormat => "email-format",
            Rule::EmailDomain => "email-domain",
            Rule::Timestamp => "timestamp",
            Rule::Future => "future",
            Rule::Horizon => "horizon",
            Rule::Range => "range",
            Rule::MultipleOf => "multiple-of",
            Rule::UnknownProfile => "unknown-profile",
            Rule::MoveTarget => "move-target",
            Rule::NotAllowed => "not-allowed",
        }
    }
}

/// Bodies larger than this are rejected before they are parsed. An HR event is well under 2 KiB;
/// SQS accepts up to 1 MiB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Characters of a value echoed in a reason.
pub const MAX_ECHO_CHARS: usize = 40;
/// Characters of a whole reason (history lines, idempotency records, logs).
pub const MAX_REASON_CHARS: usize = 1000;
/// Violations listed in one reason; the rest are counted.
pub const MAX_ERRORS_LISTED: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub rule: Rule,
    pub message: String,
}

impl FieldError {
    /// The field's path comes from the input (an unknown key's name): escaped, so no newline,
    /// control or bidirectional character reaches a log line or a history reason, then bounded.
    pub fn new(field: impl Into<String>, rule: Rule, message: impl Into<String>) -> Self {
        let field: String = field.into().escape_debug().collect();
        Self { field: bounded(&field, 80), rule, message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} [{}]", self.field, self.message, self.rule.as_str())
    }
}

/// A value from the input as it may appear in a reason: escaped, at most [`MAX_ECHO_CHARS`]
/// characters of it, and how long it was when it was cut.
pub fn echo(value: &str) -> String {
    let total = value.chars().count();
    let head: String = value.chars().take(MAX_ECHO_CHARS).collect();
    let escaped: String = head.escape_debug().take(MAX_ECHO_CHARS * 2).collect();
    if total > MAX_ECHO_CHARS { format!("\"{escaped}\"… ({total} characters)") } else { format!("\"{escaped}\"") }
}

/// Cuts any text to `max` characters (marking the cut).
pub fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A reason as it is stored and logged: at most [`MAX_REASON_CHARS`] characters.
pub fn reason(text: &str) -> String {
    bounded(text, MAX_REASON_CHARS)
}

/// An event that breaks the contract. Keeps what could be read of its identity so the
/// rejection can be recorded against the right event and employee: the ids only when they are
/// valid (they become keys), otherwise a bounded echo of what was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidEvent {
    /// The event id, when it is valid.
    pub event_id: Option<String>,
    /// The employee id, when it is valid.
    pub employee_id: Option<String>,
    /// What was sent as ids that are not valid, echoed in bounded form (never a key).
    pub raw_event_id: Option<String>,
    pub raw_employee_id: Option<String>,
    pub errors: Vec<FieldError>,
}

impl InvalidEvent {
    pub fn single(error: FieldError) -> Self {
        Self { event_id: None, employee_id: None, raw_event_id: None, raw_employee_id: None, errors: vec![error] }
    }

    /// The (field, rule) pairs, in the order found.
    pub fn rules(&self) -> Vec<(&str, Rule)> {
        self.errors.iter().map(|e| (e.field.as_str(), e.rule)).collect()
    }
}

impl fmt::Display for InvalidEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.errors.iter().take(MAX_ERRORS_LISTED).map(ToString::to_string).collect();
        if self.errors.len() > MAX_ERRORS_LISTED {
            parts.push(format!("and {} more", self.errors.len() - MAX_ERRORS_LISTED));
        }
        f.write_str(&reason(&parts.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_and_reasons_are_bounded_whatever_the_input() {
        let del = "\u{7f}".repeat(200 * 1024);
        let e = echo(&del);
        assert!(e.chars().count() < 250, "{} characters", e.chars().count());
        assert!(e.ends_with("(204800 characters)"), "{e}");
        assert_eq!(echo("jdoe"), "\"jdoe\"");
        let injected = FieldError::new("employee.x\n[fake] admin\u{202e}gnp\0", Rule::UnknownField, "x");
        assert_eq!(injected.field, "employee.x\\n[fake] admin\\u{202e}gnp\\0");
        let long = reason(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), MAX_REASON_CHARS);
        let many = InvalidEvent {
            errors: (0..5000).map(|i| FieldError::new(format!("f{i}"), Rule::UnknownField, "x")).collect(),
            ..InvalidEvent::single(FieldError::new("x", Rule::Json, "x"))
        };
        let text = many.to_string();
        assert!(text.contains("and 4990 more"), "{text}");
        assert!(text.chars().count() <= MAX_REASON_CHARS);
    }
}
