#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use super::*;
use crate::domain::employee::PastWorkspace;

fn record(state: EmployeeState, version: u64) -> EmployeeRecord {
    let mut r = EmployeeRecord::new("E1", 0);
    r.state = state;
    r.version = version;
    r.last_event_id = "hr-join-1".into();
    r.request_event_id = Some("hr-join-1".into());
    r.workspace_id = Some("ws-1".into());
    r.updated_ms = 1_800_000_000_000;
    r
}

fn kinds(before: Option<&EmployeeRecord>, after: &EmployeeRecord) -> Vec<Kind> {
    events_of(before, after).into_iter().map(|e| e.kind).collect()
}

#[test]
fn each_step_of_a_joiner_and_a_leaver_is_one_event_and_the_steps_between_are_none() {
    // GIVEN a joiner's record through its life, each write one version later
    let requested = record(EmployeeState::Requested, 1);
    let pending = record(EmployeeState::Pending, 2);
    let active = record(EmployeeState::Active, 3);
    let mut leaving = record(EmployeeState::Leaving, 4);
    leaving.leave_event_id = Some("hr-leave-1".into());
    let mut terminating = leaving.clone();
    terminating.state = EmployeeState::Terminating;
    terminating.version = 5;
    let mut terminated = terminating.clone();
    terminated.state = EmployeeState::Terminated;
    terminated.version = 6;
    terminated.workspace_id = None;
    terminated.previous_workspaces = vec![PastWorkspace { workspace_id: "ws-1".into(), terminated_ms: 0 }];
    // THEN requested, available and terminated are announced, nothing between
    assert_eq!(kinds(None, &requested), [Kind::Requested]);
    assert_eq!(kinds(Some(&requested), &pending), []);
    assert_eq!(kinds(Some(&pending), &active), [Kind::Available]);
    assert_eq!(kinds(Some(&active), &leaving), []);
    assert_eq!(kinds(Some(&leaving), &terminating), []);
    let gone = events_of(Some(&terminating), &terminated);
    assert_eq!(gone.iter().map(|e| e.kind).collect::<Vec<_>>(), [Kind::Terminated]);
    assert_eq!(gone[0].detail.workspace_id.as_deref(), Some("ws-1"), "the WorkSpace that went");
    assert_eq!(gone[0].detail.hr_event_id.as_deref(), Some("hr-leave-1"));
}

#[test]
fn the_same_change_seen_twice_is_the_same_event_and_an_older_write_is_none() {
    let pending = record(EmployeeState::Pending, 2);
    let active = record(EmployeeState::Active, 3);
    let first = events_of(Some(&pending), &active);
    assert_eq!(first, events_of(Some(&pending), &active));
    assert_eq!(first[0].detail.id, "E1/3/workspace-available");
    assert_eq!(events_of(Some(&active), &active), vec![], "no newer write");
}

#[test]
fn failures_revocations_restorations_moves_and_guard_holds_are_each_announced_with_their_reason() {
    let active = record(EmployeeState::Active, 3);
    let mut failed = record(EmployeeState::Failed, 3);
    failed.failure_code = Some("InsufficientCapacity".into());
    failed.failure_message = Some("no capacity".into());
    let pending = record(EmployeeState::Pending, 2);
    let failure = events_of(Some(&pending), &failed);
    assert_eq!(failure[0].kind, Kind::Failed);
    assert_eq!(failure[0].detail.reason.as_deref(), Some("InsufficientCapacity: no capacity"));

    let mut revoked = record(EmployeeState::Revoked, 4);
    revoked.held_since_ms = Some(1);
    revoked.hold_reason = Some("over 12 terminations this window".into());
    assert_eq!(kinds(Some(&active), &revoked), [Kind::AccessRevoked, Kind::HeldByGuard]);
    let mut still_held = revoked.clone();
    still_held.version = 5;
    assert_eq!(kinds(Some(&revoked), &still_held), [], "held once, announced once");

    let restoring = record(EmployeeState::Restoring, 6);
    let restored = record(EmployeeState::Active, 7);
    assert_eq!(kinds(Some(&restoring), &restored), [Kind::AccessRestored]);
    let moving = record(EmployeeState::Moving, 8);
    let moved = record(EmployeeState::Active, 9);
    assert_eq!(kinds(Some(&moving), &moved), [Kind::Modified]);
}

#[test]
fn an_event_reads_as_the_schema_says() {
    let event = events_of(Some(&record(EmployeeState::Pending, 2)), &record(EmployeeState::Active, 3)).remove(0);
    assert_eq!(event.kind.detail_type(), "WorkSpace Available");
    let detail = serde_json::to_value(&event.detail).unwrap();
    assert_eq!(
        detail,
        serde_json::json!({
            "id": "E1/3/workspace-available", "employee_id": "E1", "hr_event_id": "hr-join-1",
            "workspace_id": "ws-1", "state": "active", "reason": null,
            "time": "2027-01-15T08:00:00.000Z", "version": 3
        })
    );
}

#[test]
fn the_schema_lists_every_kind_and_every_field_of_the_detail() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../../events/lifecycle-event.schema.json")).unwrap();
    let all = [
        Kind::Requested,
        Kind::Available,
        Kind::Failed,
        Kind::AccessRevoked,
        Kind::AccessRestored,
        Kind::Modified,
        Kind::Terminated,
        Kind::HeldByGuard,
    ];
    let listed: Vec<&str> =
        schema["properties"]["detail-type"]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(listed, all.map(Kind::detail_type));
    assert_eq!(schema["properties"]["source"]["const"], SOURCE);
    let event = events_of(None, &record(EmployeeState::Requested, 1)).remove(0);
    let detail = serde_json::to_value(&event.detail).unwrap();
    let mut fields: Vec<&str> = detail.as_object().unwrap().keys().map(String::as_str).collect();
    let mut required: Vec<&str> =
        schema["properties"]["detail"]["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    fields.sort_unstable();
    required.sort_unstable();
    assert_eq!(fields, required);
    let states: Vec<&str> = schema["properties"]["detail"]["properties"]["state"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(states.contains(&event.detail.state));
}
