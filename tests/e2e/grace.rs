//! Leave with a grace period end to end: access revoked at once (the WorkSpace in
//! ADMIN_MAINTENANCE, the directory user disabled), the WorkSpace terminated once the grace
//! period ends; a rescinded leave or a rehire within it gets the same WorkSpace back.

use crate::helpers::{TestStack, eventually};
use crate::onboarding::{MANAGED_AD, all_in, employee, ids, join, project_stack, set_env, start_def};
use serde_json::{Value, json};
use shared::domain::employee::{EmployeeState, EventOutcome};
use shared::ports::StateStore;

fn leave(i: usize, event_id: &str) -> Value {
    json!({
        "schema_version": "1", "event_id": event_id, "type": "leave",
        "occurred_at": "2026-11-20T17:00:00Z",
        "employee": { "employee_id": format!("E{i:04}") }
    })
}

/// The stack with a grace period of `hours` and the directory user disabled on leave.
async fn start_with_grace(hours: &str) -> TestStack {
    let mut def = project_stack(1);
    set_env(&mut def, "intake", "LEAVE_GRACE_HOURS", hours);
    set_env(&mut def, "intake", "ON_LEAVE_DIRECTORY_USER", "disable");
    start_def(def, |_| {}).await
}

/// The simulator's state of a WorkSpace (`None`: gone) and whether its user is enabled.
async fn seen(t: &TestStack, workspace_id: &str, user: &str) -> (Option<String>, bool) {
    let state = t.sim_state().await;
    let ws = state["workspaces"].as_array().unwrap().iter().find(|w| w["WorkspaceId"] == workspace_id);
    let enabled = state["directories"][MANAGED_AD]["users"][user]["enabled"] == json!(true);
    (ws.map(|w| w["State"].as_str().unwrap_or_default().to_owned()), enabled)
}

async fn line(t: &TestStack, id: &str, event_id: &str) -> Option<(EventOutcome, String)> {
    let history = t.store().history(id).await.unwrap();
    history.into_iter().find(|h| h.event_id.as_deref() == Some(event_id)).map(|h| (h.outcome, h.reason))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_with_a_grace_period_revokes_access_at_once_and_terminates_when_it_ends() {
    // GIVEN a grace period of 0.004 h (14.4 s) and an active employee
    let t = start_with_grace("0.004").await;
    t.post_events(&[join(1)]).await;
    let active = all_in(&t, &ids(1..2), EmployeeState::Active, 60).await.remove(0);
    let ws = active.workspace_id.unwrap();
    // WHEN the leave arrives
    t.post_events(&[leave(1, "evt-leave-0001")]).await;
    // THEN access is revoked: no one can log in, the user is disabled, the WorkSpace is kept
    let revoked = all_in(&t, &ids(1..2), EmployeeState::Revoked, 30).await.remove(0);
    assert_eq!(seen(&t, &ws, "user0001").await, (Some("ADMIN_MAINTENANCE".into()), false));
    assert_eq!(revoked.workspace_id.as_deref(), Some(ws.as_str()), "the same WorkSpace, kept");
    let (outcome, reason) = line(&t, "E0001", "evt-leave-0001").await.unwrap();
    assert_eq!(outcome, EventOutcome::Applied);
    assert!(reason.contains("access revoked") && reason.contains("terminated then"), "{reason}");
    assert!(t.call_items("TerminateWorkspaces").await.is_empty(), "nothing terminated within the grace period");
    // AND once the grace period is over the WorkSpace is terminated and confirmed gone
    let gone = all_in(&t, &ids(1..2), EmployeeState::Terminated, 60).await.remove(0);
    assert_eq!(seen(&t, &ws, "user0001").await.0, None);
    let kept_ms = gone.terminated_ms.unwrap() - revoked.access_revoked_ms.unwrap();
    assert!(kept_ms >= 14_000, "kept {kept_ms} ms, at least the grace period");
    assert_eq!(gone.previous_workspaces[0].workspace_id, ws);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_cancelled_within_the_grace_period_gets_the_same_workspace_back() {
    let t = start_with_grace("1").await;
    t.post_events(&[join(2)]).await;
    let ws = all_in(&t, &ids(2..3), EmployeeState::Active, 60).await.remove(0).workspace_id.unwrap();
    t.post_events(&[leave(2, "evt-leave-0002")]).await;
    all_in(&t, &ids(2..3), EmployeeState::Revoked, 30).await;
    // WHEN HR rescinds the leave
    let cancel = json!({
        "schema_version": "1", "event_id": "evt-cancel-0002", "type": "cancel",
        "occurred_at": "2026-11-21T08:00:00Z", "cancels": "evt-leave-0002",
        "employee": { "employee_id": "E0002" }
    });
    t.post_events(&[cancel]).await;
    // THEN the same WorkSpace is AVAILABLE again and the user enabled
    let back = all_in(&t, &ids(2..3), EmployeeState::Active, 30).await.remove(0);
    assert_eq!(back.workspace_id.as_deref(), Some(ws.as_str()), "same id, data intact");
    assert_eq!(seen(&t, &ws, "user0002").await, (Some("AVAILABLE".into()), true));
    let (outcome, reason) = line(&t, "E0002", "evt-cancel-0002").await.unwrap();
    assert_eq!(outcome, EventOutcome::Applied, "{reason}");
    assert!(reason.contains("rescinded"), "{reason}");
    assert_eq!(t.call_items("CreateWorkspaces").await.len(), 1, "no second WorkSpace");
    assert!(t.call_items("TerminateWorkspaces").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehire_within_the_grace_period_gets_the_same_workspace_and_a_cancel_too_late_is_refused() {
    let t = start_with_grace("1").await;
    t.post_events(&[join(3)]).await;
    let ws = all_in(&t, &ids(3..4), EmployeeState::Active, 60).await.remove(0).workspace_id.unwrap();
    t.post_events(&[leave(3, "evt-leave-0003")]).await;
    all_in(&t, &ids(3..4), EmployeeState::Revoked, 30).await;
    let mut rehire = join(3);
    rehire["event_id"] = json!("evt-rehire-0003");
    rehire["occurred_at"] = json!("2026-11-22T09:00:00Z");
    t.post_events(&[rehire]).await;
    let back = all_in(&t, &ids(3..4), EmployeeState::Active, 30).await.remove(0);
    assert_eq!(back.workspace_id.as_deref(), Some(ws.as_str()));
    assert_eq!(seen(&t, &ws, "user0003").await, (Some("AVAILABLE".into()), true));
    assert_eq!(t.call_items("CreateWorkspaces").await.len(), 1, "no second WorkSpace");
    // a cancel of the leave now: the leave is no longer the latest word
    let cancel = json!({
        "schema_version": "1", "event_id": "evt-cancel-0003", "type": "cancel",
        "occurred_at": "2026-11-23T08:00:00Z", "cancels": "evt-leave-0003",
        "employee": { "employee_id": "E0003" }
    });
    t.post_events(&[cancel]).await;
    let (outcome, reason) =
        eventually(30, "the cancel decided", || async { line(&t, "E0003", "evt-cancel-0003").await }).await;
    assert_eq!(outcome, EventOutcome::Rejected, "{reason}");
    assert_eq!(employee(&t, "E0003").await.unwrap().state, EmployeeState::Active);
}
