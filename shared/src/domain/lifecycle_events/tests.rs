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
        Kind::DriftFound,
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
        .filter_map(|v| v.as_str())
        .collect();
    let every_state: Vec<&str> = EmployeeState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(states, every_state, "the schema names every state, in order");
    assert!(states.contains(&event.detail.state.unwrap()));
}

#[test]
fn an_opened_finding_is_one_drift_event_named_by_its_subject_and_the_audit() {
    use crate::domain::audit::Missing;
    // GIVEN an active employee whose WorkSpace is gone, and a WorkSpace nobody owns
    let active = record(EmployeeState::Active, 3);
    let missing = Finding::Missing {
        employee_id: "E1".into(),
        workspace_id: "ws-1".into(),
        why: Missing::Gone,
        listed_for_user: None,
    };
    let orphan = Finding::Orphaned {
        workspace_id: "ws-9".into(),
        directory_id: "d-1".into(),
        user_name: "x".into(),
        workspace_name: None,
        state: "AVAILABLE".into(),
        user_of: None,
    };
    // WHEN an audit announces them, the last complete audit a day before
    let (last, now) = (1_800_000_000_000, 1_800_086_400_000);
    let event = drift_found(&missing, Some(&active), last, now);
    let unowned = drift_found(&orphan, None, last, now);
    // THEN each is a Drift Found event, the employee's with its state, the orphan's with none
    assert_eq!(event.kind.detail_type(), "Drift Found");
    assert_eq!(event.detail.id, "drift/employee:E1/missing/ws-1/1800000000000");
    assert_eq!(event.detail.employee_id.as_deref(), Some("E1"));
    assert_eq!(event.detail.state, Some("active"));
    assert!(event.detail.reason.as_deref().unwrap().starts_with("missing: "));
    assert_eq!(unowned.detail.id, "drift/workspace:ws-9/orphaned/ws-9/1800000000000");
    assert_eq!((unowned.detail.employee_id, unowned.detail.state, unowned.detail.version), (None, None, None));
    assert_eq!(event.detail.time, "2027-01-16T08:00:00.000Z", "when the audit found it");
    let rerun = drift_found(&missing, Some(&active), last, now + 60_000);
    assert_eq!(rerun.detail.id, event.detail.id, "an audit run again before one completes: the same id");
}

#[test]
fn a_rehire_after_the_leave_announces_the_old_workspace_terminated_then_the_new_one_requested() {
    // GIVEN a leaver being terminated, rehired meanwhile (the rehire waits for the leave)
    let mut terminating = record(EmployeeState::Terminating, 5);
    terminating.leave_event_id = Some("hr-leave-1".into());
    // WHEN the write confirming the old WorkSpace gone makes them requested again
    let mut requested = terminating.clone();
    requested.state = EmployeeState::Requested;
    requested.version = 6;
    requested.workspace_id = None;
    requested.previous_workspaces = vec![PastWorkspace { workspace_id: "ws-1".into(), terminated_ms: 0 }];
    requested.request_event_id = Some("hr-rejoin-1".into());
    let events = events_of(Some(&terminating), &requested);
    // THEN the old WorkSpace's end is announced, then the new request, each with its HR event
    let told: Vec<(Kind, Option<&str>, Option<&str>)> =
        events.iter().map(|e| (e.kind, e.detail.workspace_id.as_deref(), e.detail.hr_event_id.as_deref())).collect();
    assert_eq!(
        told,
        [(Kind::Terminated, Some("ws-1"), Some("hr-leave-1")), (Kind::Requested, None, Some("hr-rejoin-1"))]
    );
    // AND a leaver whose WorkSpace never existed, rehired, is terminated with no WorkSpace named
    let mut leaving = record(EmployeeState::Leaving, 2);
    leaving.workspace_id = None;
    let mut again = leaving.clone();
    again.state = EmployeeState::Requested;
    again.version = 3;
    assert_eq!(kinds(Some(&leaving), &again), [Kind::Terminated, Kind::Requested]);
}

#[test]
fn a_workspace_that_becomes_usable_while_a_move_waits_is_announced_as_available_or_restored() {
    // GIVEN a joiner pending, and a leaver being restored, each with a move waiting
    let pending = record(EmployeeState::Pending, 2);
    let mut moving = record(EmployeeState::Moving, 3);
    moving.workspace_id = Some("ws-1".into());
    let mut restoring = record(EmployeeState::Restoring, 6);
    restoring.restore_event_id = Some("hr-cancel-1".into());
    let mut restored_moving = restoring.clone();
    restored_moving.state = EmployeeState::Moving;
    restored_moving.version = 7;
    // THEN the WorkSpace is announced usable when it is, and the move's end as Modified
    assert_eq!(kinds(Some(&pending), &moving), [Kind::Available]);
    let restored = events_of(Some(&restoring), &restored_moving);
    assert_eq!(restored.iter().map(|e| e.kind).collect::<Vec<_>>(), [Kind::AccessRestored]);
    assert_eq!(restored[0].detail.hr_event_id.as_deref(), Some("hr-cancel-1"));
    let mut active = moving.clone();
    active.state = EmployeeState::Active;
    active.version = 4;
    assert_eq!(kinds(Some(&moving), &active), [Kind::Modified]);
    // AND a restore that finds the WorkSpace gone (a rehire after all) says so, then requests anew
    let mut requested = restoring.clone();
    requested.state = EmployeeState::Requested;
    requested.version = 7;
    requested.workspace_id = None;
    requested.previous_workspaces = vec![PastWorkspace { workspace_id: "ws-1".into(), terminated_ms: 0 }];
    assert_eq!(kinds(Some(&restoring), &requested), [Kind::Terminated, Kind::Requested]);
}

#[test]
fn a_failed_leave_names_the_leave_and_an_end_with_nothing_to_terminate_names_no_old_workspace() {
    // GIVEN a leaver whose termination failed
    let mut terminating = record(EmployeeState::Terminating, 5);
    terminating.leave_event_id = Some("hr-leave-2".into());
    let mut failed = terminating.clone();
    failed.state = EmployeeState::Failed;
    failed.version = 6;
    failed.failure_code = Some("ResourceNotFound".into());
    let told = events_of(Some(&terminating), &failed);
    // THEN the failure is of the leave, not of the join long ago
    assert_eq!(told[0].kind, Kind::Failed);
    assert_eq!(told[0].detail.hr_event_id.as_deref(), Some("hr-leave-2"));
    // AND a leaver with no WorkSpace (but one from an earlier employment) ends naming none
    let mut leaving = record(EmployeeState::Leaving, 8);
    leaving.workspace_id = None;
    leaving.leave_event_id = Some("hr-leave-3".into());
    leaving.previous_workspaces = vec![PastWorkspace { workspace_id: "ws-old".into(), terminated_ms: 0 }];
    let mut gone = leaving.clone();
    gone.state = EmployeeState::Terminated;
    gone.version = 9;
    gone.leave_event_id = None;
    let told = events_of(Some(&leaving), &gone);
    assert_eq!(told.iter().map(|e| e.kind).collect::<Vec<_>>(), [Kind::Terminated]);
    assert_eq!(told[0].detail.workspace_id, None, "ws-old was announced when it went");
    assert_eq!(told[0].detail.hr_event_id.as_deref(), Some("hr-leave-3"), "read from before the write");
}

#[test]
fn the_audits_actions_announce_the_lost_workspace_and_a_reapplied_profile_without_an_hr_event() {
    // GIVEN an active employee whose WorkSpace the audit found gone: requested again
    let active = record(EmployeeState::Active, 3);
    let mut requested = record(EmployeeState::Requested, 4);
    requested.workspace_id = None;
    requested.request_event_id = Some("lost-ws-1".into());
    requested.previous_workspaces = vec![PastWorkspace { workspace_id: "ws-1".into(), terminated_ms: 0 }];
    // THEN the lost one is announced terminated, then the new one requested under its request
    let events = events_of(Some(&active), &requested);
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [Kind::Terminated, Kind::Requested]);
    assert_eq!(events[0].detail.workspace_id.as_deref(), Some("ws-1"));
    assert_eq!(events[0].detail.hr_event_id.as_deref(), Some("lost-ws-1"), "no leave: the request in its place");
    assert!(events[0].detail.reason.as_deref().is_some_and(|r| r.contains("outside the pipeline")));
    assert_eq!(events[1].detail.hr_event_id.as_deref(), Some("lost-ws-1"));
    // AND the same when a move found the WorkSpace gone
    let mut moving = active.clone();
    moving.state = EmployeeState::Moving;
    assert_eq!(kinds(Some(&moving), &requested), [Kind::Terminated, Kind::Requested]);
    // GIVEN a profile the audit re-applied, which reached its WorkSpace
    let mut moving = record(EmployeeState::Moving, 5);
    moving.moving = Some(crate::domain::employee::MoveWork::new("reapply-7"));
    moving.last_move = Some(crate::domain::employee::SeenEvent {
        occurred_ms: 1,
        event_id: "hr-move-1".into(),
        join: false,
        moved: true,
    });
    let mut done = moving.clone();
    done.state = EmployeeState::Active;
    done.moving = None;
    done.version = 6;
    // THEN it is announced modified, with no HR event (not HR's earlier move)
    let modified = events_of(Some(&moving), &done);
    assert_eq!(modified.iter().map(|e| e.kind).collect::<Vec<_>>(), [Kind::Modified]);
    assert_eq!(modified[0].detail.hr_event_id, None);
    assert_eq!(kinds(Some(&active), &moving), [], "starting to re-apply is no change a subscriber sees");
}
