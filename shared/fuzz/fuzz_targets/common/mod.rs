//! What both targets share: the clocks an input is read at, the backends' rules, and the
//! invariants of a parse result.

use shared::domain::event::{EventKind, EventRules, HrEvent};
use shared::domain::names::UserNameRules;
use shared::domain::validation::{InvalidEvent, MAX_BODY_BYTES, MAX_REASON_CHARS};
use std::borrow::Cow;

/// 2026-11-02T12:00:00Z, the `now` of `events/hr/cases.json`: the sample events are read as the
/// corpus means them.
pub const FIXED_NOW_MS: i64 = 1_793_620_800_000;

/// Both directory backends' user-name rules.
pub const BACKENDS: [UserNameRules; 2] = [UserNameRules::DS_DATA, UserNameRules::WORKSPACES];

/// Longest `FieldError.field` allowed (the library cuts at 80).
pub const MAX_FIELD_CHARS: usize = 100;

/// Bytes as an SQS body: UTF-8 as it is, anything else with U+FFFD for the bad bytes (a body
/// that reaches the intake is always a string).
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The clocks and backends an input is parsed with, two parses an input: the fixed clock, and a
/// clock taken from the input's last 8 bytes (as a little-endian i64 `raw`); one with each
/// backend, `raw` picking which. Even `raw`: a clock within a little more than the effective
/// horizon either side of the fixed one, so the `future` and `horizon` boundaries are reachable
/// from the sample timestamps; odd `raw`: `raw` itself, any i64 with the extremes, so the
/// arithmetic on `now` is fuzzed too.
pub fn clocks(data: &[u8]) -> [(i64, UserNameRules); 2] {
    let mut last = [0u8; 8];
    let tail = &data[data.len().saturating_sub(8)..];
    last[..tail.len()].copy_from_slice(tail);
    let raw = i64::from_le_bytes(last);
    let window = 2 * (EventRules::DEFAULT_HORIZON_MS + 86_400_000);
    let derived = if raw & 1 == 0 {
        FIXED_NOW_MS - EventRules::DEFAULT_HORIZON_MS - 86_400_000 + raw.rem_euclid(window)
    } else {
        raw
    };
    let pick = usize::from(raw & 2 != 0);
    [(FIXED_NOW_MS, BACKENDS[pick]), (derived, BACKENDS[1 - pick])]
}

/// `^[A-Za-z0-9._:-]{1,max}$`: an id that may become part of a DynamoDB key.
pub fn assert_id(what: &str, id: &str, max: usize) {
    assert!(
        !id.is_empty()
            && id.len() <= max
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')),
        "{what} is not a valid id (1-{max} of A-Za-z0-9._:-): {id:?}"
    );
}

/// The invariants of a rejection.
pub fn check_invalid(body: &str, invalid: &InvalidEvent) {
    let reason = invalid.to_string();
    let chars = reason.chars().count();
    assert!(chars <= MAX_REASON_CHARS, "reason of {chars} characters (max {MAX_REASON_CHARS}): {reason:?}");
    assert!(!invalid.errors.is_empty(), "a rejection without an error");
    for error in &invalid.errors {
        let n = error.field.chars().count();
        assert!(n <= MAX_FIELD_CHARS, "field name of {n} characters: {:?}", error.field);
    }
    if let Some(id) = &invalid.event_id {
        assert_id("event_id", id, 128);
    }
    if let Some(id) = &invalid.employee_id {
        assert_id("employee_id", id, 64);
    }
    for raw in [&invalid.raw_event_id, &invalid.raw_employee_id].into_iter().flatten() {
        let n = raw.chars().count();
        assert!(n <= 200, "echo of an invalid id of {n} characters: {raw:?}");
    }
    if body.len() > MAX_BODY_BYTES {
        assert_eq!(invalid.errors.len(), 1, "an oversized body is refused before it is parsed");
    }
}

/// The invariants of an accepted event.
pub fn check_event(body: &str, event: &HrEvent, rules: EventRules) {
    assert!(body.len() <= MAX_BODY_BYTES, "a body of {} bytes accepted", body.len());
    assert_id("event_id", event.event_id.as_str(), 128);
    assert_id("employee_id", event.employee.employee_id.as_str(), 64);
    if let Some(cancels) = &event.cancels {
        assert_id("cancels", cancels.as_str(), 128);
    }
    assert!(event.kind != EventKind::Cancel || event.cancels.is_some(), "a cancel without cancels");
    assert!(
        event.occurred_at <= rules.now.plus_millis(rules.clock_skew_ms),
        "occurred_at {} accepted beyond now {} plus the clock skew",
        event.occurred_at.millis(),
        rules.now.millis()
    );
    if let Some(effective) = event.effective_at {
        assert!(
            effective <= rules.now.plus_millis(rules.effective_horizon_ms),
            "effective_at {} accepted beyond the horizon from now {}",
            effective.millis(),
            rules.now.millis()
        );
    }
    assert!(
        event.payload_hash.len() == 64 && event.payload_hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "payload hash {:?}",
        event.payload_hash
    );
}
