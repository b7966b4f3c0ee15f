//! Offboarding end to end, and the lifecycle's hard cases: leave before the WorkSpace exists,
//! rehire, duplicates and disorder, future-dated events, the directory user on leave, a
//! SUSPENDED WorkSpace, employees stuck past their deadline.

use crate::helpers::{TestStack, eventually};
use crate::onboarding::{
    MANAGED_AD, all_in, employee, ids, join, live_workspaces, project_stack, set_env, start, start_def,
};
use serde_json::{Value, json};
use shared::domain::employee::{EmployeeState, EventOutcome};
use shared::domain::time::Timestamp;
use shared::ports::StateStore;

fn leave(i: usize, occurred_at: &str) -> Value {
    json!({
        "schema_version": "1",
        "event_id": format!("evt-leave-{i:04}"),
        "type": "leave",
        "occurred_at": occurred_at,
        "employee": { "employee_id": format!("E{i:04}") }
    })
}

fn at(offset_ms: i64) -> String {
    Timestamp::from_millis(Timestamp::now().millis() + offset_ms).to_rfc3339()
}

async fn outcomes(t: &TestStack, id: &str) -> Vec<(String, EventOutcome)> {
    t.store().history(id).await.unwrap().into_iter().map(|h| (h.event_id.unwrap_or_default(), h.outcome)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_leavers_take_three_terminate_calls_and_are_confirmed_gone() {
    // The terminator's mapping is enabled once all 60 requests are queued (see the onboarding twin).
    // 60 leavers within the hour: over the guard's default, so its limit is raised here.
    let mut def = project_stack(15);
    set_env(&mut def, "terminator", "TERMINATION_GUARD_LIMIT", "100");
    let t = start_def(def, |o| o.disabled_mappings = vec!["terminator"]).await;
    t.post_events(&(0..60).map(join).collect::<Vec<_>>()).await;
    all_in(&t, &ids(0..60), EmployeeState::Active, 180).await;
    t.post_events(&(0..60).map(|i| leave(i, "2026-11-20T17:00:00Z")).collect::<Vec<_>>()).await;
    t.enable_when_queued("terminator", "termination-requests", 60, 180).await;
    // A liveness bound, not a timing: the 15 s window, then 3 tag reads and 3 TerminateWorkspaces
    // (20-30 s alone on 2 cores; with a DescribeTags per WorkSpace at 2 calls/s it was 50-70 s,
    // and CI, with a second test beside it, once took over 120 s).
    let records = all_in(&t, &ids(0..60), EmployeeState::Terminated, 300).await;

    let mut items = t.call_items("TerminateWorkspaces").await;
    items.sort_unstable();
    assert_eq!(items, vec![10, 25, 25], "ceil(60/25) = 3 TerminateWorkspaces calls");
    // The tags were read a chunk at a time, not one WorkSpace per WorkSpaces call.
    let mut tag_reads = t.service_call_items("ResourceGroupsTagging", "GetResources").await;
    tag_reads.sort_unstable();
    assert_eq!(tag_reads, vec![10, 25, 25], "one tag read per chunk");
    assert!(t.call_items("DescribeTags").await.is_empty(), "no DescribeTags for WorkSpaces the pipeline made");
    assert_eq!(live_workspaces(&t).await, 0, "no WorkSpace left");
    for r in &records {
        assert!(r.terminated_ms.unwrap() > r.terminate_requested_ms.unwrap_or(0), "confirmed after it was asked");
        assert_eq!(r.previous_workspaces.len(), 1);
    }
    // How many ids each DescribeWorkspaces carries depends on how far the terminator's writes
    // have got when the reconciler runs (every second here): never more than 25, and together,
    // not one by one.
    let described = t.call_items("DescribeWorkspaces").await;
    assert!(described.iter().all(|n| *n <= 25), "{described:?}");
    let mean = described.iter().sum::<u64>() as f64 / described.len().max(1) as f64;
    assert!(mean >= 5.0, "ids are described together, not one by one: {described:?}");
    let state = t.sim_state().await;
    assert_eq!(state["directories"][MANAGED_AD]["users"]["user0001"]["enabled"], true, "the user is kept by default");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_before_the_workspace_exists_leaves_nothing_running() {
    let t = start(3, |o| o.sim_config["lifecycle"]["create_ms"] = json!(15000)).await;
    // Request still queued: the leave arrives right behind the join.
    t.post_events(&[join(1), leave(1, "2026-11-02T10:00:00Z")]).await;
    // WorkSpace PENDING: the leave arrives while it is being created.
    t.post_events(&[join(2)]).await;
    let pending = eventually(60, "E0002 pending", || async {
        employee(&t, "E0002").await.filter(|e| e.state == EmployeeState::Pending)
    })
    .await;
    assert!(pending.workspace_id.is_some());
    t.post_events(&[leave(2, "2026-11-02T10:00:00Z")]).await;
    all_in(&t, &ids(1..3), EmployeeState::Terminated, 90).await;
    eventually(30, "no WorkSpace left", || async { (live_workspaces(&t).await == 0).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehire_gets_a_new_workspace_once_the_old_one_is_gone() {
    let t = start(2, |o| o.sim_config["lifecycle"]["terminate_ms"] = json!(4000)).await;
    t.post_events(&[join(7)]).await;
    let first = all_in(&t, &ids(7..8), EmployeeState::Active, 60).await.remove(0);
    let mut rejoin = join(7);
    rejoin["event_id"] = json!("evt-rejoin-0007");
    rejoin["occurred_at"] = json!("2026-11-21T09:00:00Z");
    t.post_events(&[leave(7, "2026-11-20T17:00:00Z"), rejoin]).await;
    let second = eventually(90, "rehired and active", || async {
        employee(&t, "E0007").await.filter(|e| e.state == EmployeeState::Active && e.workspace_id != first.workspace_id)
    })
    .await;
    assert_eq!(second.previous_workspaces.len(), 1);
    assert_eq!(Some(&second.previous_workspaces[0].workspace_id), first.workspace_id.as_ref());
    assert_eq!(live_workspaces(&t).await, 1);
    let history = outcomes(&t, "E0007").await;
    let applied: Vec<&str> =
        history.iter().filter(|(_, o)| *o == EventOutcome::Applied).map(|(e, _)| e.as_str()).collect();
    assert_eq!(applied, vec!["evt-join-0007", "evt-leave-0007", "evt-rejoin-0007"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_terminate_once_and_disorder_follows_the_source_timestamps() {
    let t = start(3, |o| o.duplicate_deliveries = true).await;
    t.post_events(&(0..10).map(join).collect::<Vec<_>>()).await;
    all_in(&t, &ids(0..10), EmployeeState::Active, 90).await;
    let leaves: Vec<Value> = (0..10).map(|i| leave(i, "2026-11-20T17:00:00Z")).collect();
    t.post_events(&leaves).await;
    t.post_events(&leaves).await;
    all_in(&t, &ids(0..10), EmployeeState::Terminated, 90).await;
    let terminated: u64 = t.call_items("TerminateWorkspaces").await.iter().sum();
    assert_eq!(terminated, 10, "one termination per employee");

    // A leave that arrives before its join: the older join wins nothing.
    t.post_events(&[leave(50, "2026-11-20T17:00:00Z")]).await;
    eventually(30, "leave applied", || async { employee(&t, "E0050").await }).await;
    t.post_events(&[join(50)]).await;
    let store = t.store();
    eventually(30, "the late join recorded as stale", || async {
        let h = store.history("E0050").await.unwrap();
        h.iter().find(|e| e.event_id.as_deref() == Some("evt-join-0050") && e.outcome == EventOutcome::Skipped).cloned()
    })
    .await;
    assert_eq!(employee(&t, "E0050").await.unwrap().state, EmployeeState::Terminated);
    assert_eq!(live_workspaces(&t).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_dated_events_wait_for_their_time_and_can_be_cancelled() {
    let t = start(2, |_| {}).await;
    let mut hire = join(20);
    hire["effective_at"] = json!(at(6000));
    t.post_events(&[hire]).await;
    let store = t.store();
    eventually(20, "the hire held", || async {
        let h = store.history("E0020").await.unwrap();
        h.iter().any(|e| e.outcome == EventOutcome::Scheduled).then_some(())
    })
    .await;
    assert!(employee(&t, "E0020").await.is_none(), "nothing happens before the effective time");
    all_in(&t, &ids(20..21), EmployeeState::Active, 60).await;

    // A termination dated in the future, then rescinded.
    let mut later = leave(20, "2026-11-20T17:00:00Z");
    later["effective_at"] = json!(at(8000));
    let cancel = json!({
        "schema_version": "1", "event_id": "evt-cancel-0020", "type": "cancel",
        "occurred_at": "2026-11-21T08:00:00Z", "cancels": "evt-leave-0020",
        "employee": { "employee_id": "E0020" }
    });
    t.post_events(&[later]).await;
    eventually(20, "the leave held", || async {
        (store.scheduled_for("E0020").await.unwrap().len() == 1).then_some(())
    })
    .await;
    t.post_events(&[cancel]).await;
    eventually(20, "the cancel applied", || async {
        let h = outcomes(&t, "E0020").await;
        h.contains(&("evt-cancel-0020".to_owned(), EventOutcome::Applied)).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    assert_eq!(employee(&t, "E0020").await.unwrap().state, EmployeeState::Active, "the rescinded leave never happened");
    assert_eq!(live_workspaces(&t).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_user_is_disabled_on_leave_when_configured() {
    let mut def = project_stack(2);
    set_env(&mut def, "intake", "ON_LEAVE_DIRECTORY_USER", "disable");
    let t = start_def(def, |_| {}).await;
    t.post_events(&[join(30)]).await;
    all_in(&t, &ids(30..31), EmployeeState::Active, 60).await;
    t.post_events(&[leave(30, "2026-11-20T17:00:00Z")]).await;
    all_in(&t, &ids(30..31), EmployeeState::Terminated, 60).await;
    let state = t.sim_state().await;
    let user = &state["directories"][MANAGED_AD]["users"]["user0030"];
    assert_eq!(user["enabled"], false, "disabled, not deleted: {user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_workspace_is_retried_then_failed_with_the_code() {
    let mut def = project_stack(1);
    for f in def["functions"].as_array_mut().unwrap() {
        if f["name"] == "terminator" {
            f["timeout_s"] = json!(3);
            f["environment"]["MAX_ATTEMPTS"] = json!("2");
        }
    }
    let t = start_def(def, |_| {}).await;
    t.post_events(&[join(40)]).await;
    let active = all_in(&t, &ids(40..41), EmployeeState::Active, 60).await.remove(0);
    let id = active.workspace_id.unwrap();
    t.sim(reqwest::Method::PUT, &format!("workspaces/{id}/state"), json!({ "state": "SUSPENDED" })).await;
    t.post_events(&[leave(40, "2026-11-20T17:00:00Z")]).await;
    let failed = eventually(60, "failed after bounded retries", || async {
        employee(&t, "E0040").await.filter(|e| e.state == EmployeeState::Failed)
    })
    .await;
    assert_eq!(failed.failure_code.as_deref(), Some("InvalidResourceState"));
    assert!(failed.failure_message.unwrap().contains("gave up after 2 attempts"));
    assert_eq!(t.call_items("TerminateWorkspaces").await, vec![1, 1], "tried twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_employee_pending_past_the_deadline_is_flagged_stuck() {
    let mut def = project_stack(1);
    set_env(&mut def, "reconciler", "CREATE_DEADLINE_SECONDS", "2");
    let t = start_def(def, |o| o.sim_config["lifecycle"]["create_ms"] = json!(600_000)).await;
    t.post_events(&[join(60)]).await;
    let stuck = eventually(60, "flagged stuck", || async {
        employee(&t, "E0060").await.filter(|e| e.stuck_since_ms.is_some())
    })
    .await;
    assert_eq!(stuck.state, EmployeeState::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_reconciler_run_names_what_failed_as_its_error_type() {
    // No such table: the run fails, and its errorType is one an alarm or a reader can match.
    let mut def = project_stack(1);
    set_env(&mut def, "reconciler", "TABLE_NAME", "no-such-table");
    let t = start_def(def, |_| {}).await;
    let url = format!("{}/2015-03-31/functions/reconciler/invocations", t.stack.invoke_url);
    let scheduled = json!({ "source": "aws.events", "detail-type": "Scheduled Event", "detail": {} });
    let res = t.http.post(&url).json(&scheduled).send().await.unwrap();
    assert_eq!(res.headers().get("x-amz-function-error").map(|v| v.to_str().unwrap()), Some("Unhandled"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errorType"], "Store.Unavailable", "{body}");
    assert!(body["errorMessage"].as_str().unwrap().contains("DynamoDB"), "{body}");
}
