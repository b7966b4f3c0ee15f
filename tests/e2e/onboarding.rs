//! Onboarding end to end: HR join events → directory users → CreateWorkspaces 25 per call →
//! AVAILABLE confirmed by the reconciler; idempotent however often things are delivered.

use crate::helpers::{TestOptions, TestStack, eventually};
use serde_json::{Value, json};
use shared::domain::employee::{EmployeeRecord, EmployeeState, EventOutcome};
use shared::ports::StateStore;

pub const MANAGED_AD: &str = "d-9067a1b2c3";

/// The project's stack with test-sized timings: a short batching window and fast lifecycles.
pub fn project_stack(window_s: u64) -> Value {
    let mut def: Value = serde_json::from_str(include_str!("../../infra/local/stack.json")).unwrap();
    for f in def["functions"].as_array_mut().unwrap() {
        if f["name"] == "provisioner" || f["name"] == "terminator" {
            f["sqs"][0]["batching_window_s"] = json!(window_s);
        }
        // The first look at a WorkSpace when `fast_sim`'s lifecycles are likely done.
        if f["name"] == "reconciler" {
            f["environment"]["CREATE_FIRST_LOOK_SECONDS"] = json!("2");
            f["environment"]["TERMINATE_FIRST_LOOK_SECONDS"] = json!("2");
        }
    }
    def
}

/// Sets one environment variable of one function of a stack definition.
pub fn set_env(def: &mut Value, function: &str, name: &str, value: &str) {
    for f in def["functions"].as_array_mut().unwrap() {
        if f["name"] == function {
            f["environment"][name] = json!(value);
        }
    }
}

pub fn fast_sim() -> Value {
    json!({
        "lifecycle": { "create_ms": 1500, "invisible_ms": 300, "terminate_ms": 800, "terminated_visible_ms": 500 },
        "rate_limits": {
            "WorkSpaces": { "rate": 2.0, "burst": 5.0 },
            "WorkDocs": { "rate": 200.0, "burst": 200.0 },
            "DirectoryServiceData": { "rate": 200.0, "burst": 200.0 },
            "DirectoryService": { "rate": 200.0, "burst": 200.0 }
        }
    })
}

pub fn seed() -> Value {
    serde_json::from_str(include_str!("../../infra/local/seed.json")).unwrap()
}

pub async fn start(window_s: u64, tweak: impl FnOnce(&mut TestOptions)) -> TestStack {
    start_def(project_stack(window_s), tweak).await
}

pub async fn start_def(def: Value, tweak: impl FnOnce(&mut TestOptions)) -> TestStack {
    let mut options = TestOptions {
        sim_config: fast_sim(),
        seed: seed(),
        max_visibility_timeout_s: Some(5),
        schedule_every: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    tweak(&mut options);
    TestStack::start_with(def, options).await
}

pub fn join(i: usize) -> Value {
    json!({
        "schema_version": "1",
        "event_id": format!("evt-join-{i:04}"),
        "type": "join",
        "occurred_at": "2026-11-02T09:00:00Z",
        "employee": {
            "employee_id": format!("E{i:04}"),
            "username": format!("user{i:04}"),
            "given_name": "Given",
            "surname": format!("Surname{i}"),
            "email": format!("user{i:04}@example.com"),
            "department": if i.is_multiple_of(5) { "Engineering" } else { "Sales" }
        }
    })
}

pub async fn employee(t: &TestStack, id: &str) -> Option<EmployeeRecord> {
    t.store().employee(id).await.unwrap()
}

/// Waits until every listed employee is in `state`.
pub async fn all_in(t: &TestStack, ids: &[String], state: EmployeeState, secs: u64) -> Vec<EmployeeRecord> {
    let store = t.store();
    eventually(secs, &format!("{} employees {}", ids.len(), state.as_str()), || async {
        let records = store.employees(ids).await.unwrap();
        (records.len() == ids.len() && records.iter().all(|r| r.state == state)).then_some(records)
    })
    .await
}

pub fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("E{i:04}")).collect()
}

/// Users the directory really has, created by DS Data.
pub async fn created_users(t: &TestStack) -> usize {
    let state = t.sim_state().await;
    state["directories"][MANAGED_AD]["users"]
        .as_object()
        .map(|u| u.values().filter(|u| u["created_by"] == "DirectoryServiceData").count())
        .unwrap_or(0)
}

pub async fn live_workspaces(t: &TestStack) -> usize {
    t.sim_state().await["workspaces"].as_array().map(Vec::len).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_joiners_take_three_create_calls_and_all_become_active() {
    // The call count is about requests that arrive together: the provisioner's mapping starts
    // disabled and is enabled once all 60 are queued, so a slow intake cannot split them.
    let t = start(15, |o| o.disabled_mappings = vec!["provisioner"]).await;
    let events: Vec<Value> = (0..60).map(join).collect();
    t.post_events(&events).await;
    t.enable_when_queued("provisioner", "workspace-requests", 60, 180).await;
    let records = all_in(&t, &ids(0..60), EmployeeState::Active, 180).await;

    let mut items = t.call_items("CreateWorkspaces").await;
    items.sort_unstable();
    assert_eq!(items, vec![10, 25, 25], "ceil(60/25) = 3 CreateWorkspaces calls");
    assert_eq!(created_users(&t).await, 60);
    assert_eq!(live_workspaces(&t).await, 60);
    let mut workspace_ids: Vec<_> = records.iter().filter_map(|r| r.workspace_id.clone()).collect();
    workspace_ids.sort();
    workspace_ids.dedup();
    assert_eq!(workspace_ids.len(), 60, "one WorkSpace per employee");
    // The department chose the profile.
    let engineer = records.iter().find(|r| r.employee_id == "E0005").unwrap();
    assert_eq!(engineer.profile_name.as_deref(), Some("engineering"));
    let history = t.store().history("E0007").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome, EventOutcome::Applied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_twice_and_the_feed_reposted_still_one_user_and_one_workspace_each() {
    let t = start(8, |o| o.duplicate_deliveries = true).await;
    let events: Vec<Value> = (0..60).map(join).collect();
    t.post_events(&events).await;
    all_in(&t, &ids(0..60), EmployeeState::Active, 120).await;
    // The HR system re-posts its whole feed.
    t.post_events(&events).await;
    let store = t.store();
    eventually(60, "the re-posted feed recorded as duplicates", || async {
        let h = store.history("E0059").await.unwrap();
        (h.iter().filter(|e| e.outcome == EventOutcome::Skipped).count() >= 1).then_some(())
    })
    .await;
    assert_eq!(created_users(&t).await, 60);
    assert_eq!(live_workspaces(&t).await, 60);
    let created: u64 = t.call_items("CreateWorkspaces").await.iter().sum();
    assert!(created >= 60, "every joiner was asked for");
    let history = store.history("E0001").await.unwrap();
    assert!(history.iter().any(|e| e.outcome == EventOutcome::Applied));
    assert!(
        history.iter().filter(|e| e.outcome == EventOutcome::Skipped).all(|e| e.reason.starts_with("duplicate")),
        "{history:?}"
    );
    all_in(&t, &ids(0..60), EmployeeState::Active, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_mixing_invalid_and_valid_events_applies_the_valid_ones() {
    let t = start(2, |_| {}).await;
    let mut bad_name = join(1);
    bad_name["employee"]["username"] = json!("bad;name");
    let mut no_email = join(2);
    no_email["employee"].as_object_mut().unwrap().remove("email");
    let mut unknown_type = join(3);
    unknown_type["type"] = json!("promote");
    let mut bad_time = join(4);
    bad_time["occurred_at"] = json!("yesterday");
    let mut too_long = join(6);
    too_long["employee"]["username"] = json!("a-username-over-twenty");
    let events = vec![join(0), bad_name, no_email, join(5), unknown_type, bad_time, too_long, join(7)];
    t.post_events(&events).await;
    all_in(&t, &["E0000".into(), "E0005".into(), "E0007".into()], EmployeeState::Active, 60).await;

    let store = t.store();
    for (id, field) in [
        ("E0001", "employee.username must contain only A-Z a-z 0-9 _ - ."),
        ("E0002", "employee.email is required"),
        ("E0003", "type must be one of join, leave"),
        ("E0004", "occurred_at must be an RFC 3339 timestamp"),
        ("E0006", "employee.username must be 1-20 characters"),
    ] {
        let history = eventually(20, "rejection recorded", || async {
            let h = store.history(id).await.unwrap();
            (!h.is_empty()).then_some(h)
        })
        .await;
        assert_eq!(history[0].outcome, EventOutcome::Rejected, "{id}");
        assert!(history[0].reason.contains(field), "{id}: {:?} should name {field:?}", history[0].reason);
        assert!(employee(&t, id).await.is_none(), "{id} must not be onboarded");
    }
    assert_eq!(t.depth(&t.dlq_url("hr-events.fifo")).await, 0, "invalid events are recorded, not dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_user_is_adopted_and_someone_else_holding_the_name_is_a_failure() {
    let t = start(2, |o| {
        o.seed["directories"][0]["users"] = json!([
            { "username": "user0000", "given_name": "Given", "surname": "Surname0", "email": "USER0000@example.com" },
            { "username": "user0001", "given_name": "Other", "surname": "Person", "email": "other.person@example.com" }
        ]);
    })
    .await;
    t.post_events(&[join(0), join(1), join(2)]).await;
    all_in(&t, &["E0000".into(), "E0002".into()], EmployeeState::Active, 60).await;
    let taken = eventually(30, "E0001 failed", || async {
        employee(&t, "E0001").await.filter(|e| e.state == EmployeeState::Failed)
    })
    .await;
    assert_eq!(taken.failure_code.as_deref(), Some("UserNameTaken"));
    let state = t.sim_state().await;
    assert_eq!(state["directories"][MANAGED_AD]["users"]["user0000"]["created_by"], "seed", "adopted, not recreated");
    assert_eq!(
        state["directories"][MANAGED_AD]["users"]["user0000"]["password_set"], false,
        "an existing account's password is never reset"
    );
    assert_eq!(state["directories"][MANAGED_AD]["users"]["user0002"]["password_set"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_not_found_user_fails_one_employee_and_the_other_24_are_created() {
    let t = start(15, |o| o.disabled_mappings = vec!["provisioner"]).await;
    t.fault(json!({ "kind": "create_failure", "usernames": ["user0013"], "code": "ResourceNotFound.User", "message": "The user could not be found." })).await;
    t.post_events(&(0..25).map(join).collect::<Vec<_>>()).await;
    t.enable_when_queued("provisioner", "workspace-requests", 25, 120).await;
    let failed = eventually(120, "E0013 failed", || async {
        employee(&t, "E0013").await.filter(|e| e.state == EmployeeState::Failed)
    })
    .await;
    assert_eq!(failed.failure_code.as_deref(), Some("ResourceNotFound.User"));
    assert_eq!(failed.failure_message.as_deref(), Some("The user could not be found."));
    let others: Vec<String> = ids(0..25).into_iter().filter(|id| id != "E0013").collect();
    all_in(&t, &others, EmployeeState::Active, 120).await;
    assert_eq!(t.call_items("CreateWorkspaces").await, vec![25], "one call carried all 25");
    assert_eq!(live_workspaces(&t).await, 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_answered_after_the_deadline_does_not_make_a_second_workspace() {
    let mut def = project_stack(2);
    assert_eq!(def["functions"][1]["name"], "provisioner");
    def["functions"][1]["timeout_s"] = json!(18);
    // One attempt each: a call given up for want of time is not an attempt (the API was busy,
    // not failing), so it must not fail anyone.
    def["functions"][1]["environment"]["MAX_ATTEMPTS"] = json!("1");
    let options =
        TestOptions { sim_config: fast_sim(), seed: seed(), max_visibility_timeout_s: Some(4), ..Default::default() };
    let t = TestStack::start_with(def, options).await;
    // CreateWorkspaces does its work, and its answer is held back past the provisioner's 18 s
    // deadline: the provisioner gives the call up in time (no timeout) and hands its requests
    // back, nothing written, as after a crash between the call and the write.
    t.fault(json!({ "kind": "latency", "operation": "WorkSpaces.CreateWorkspaces", "ms": 30000, "count": 1, "after": true })).await;
    t.post_events(&(0..5).map(join).collect::<Vec<_>>()).await;
    all_in(&t, &ids(0..5), EmployeeState::Active, 150).await;
    assert_eq!(t.depth(&t.dlq_url("workspace-requests")).await, 0, "nothing dead-lettered");
    // How the five are split across calls depends on when intake hands them over; what matters is
    // that no item was sent twice: a second CreateWorkspaces for the handed-back batch would add items.
    let items = t.call_items("CreateWorkspaces").await;
    assert_eq!(items.iter().sum::<u64>(), 5, "the redelivery adopted instead of creating again: {items:?}");
    assert_eq!(live_workspaces(&t).await, 5);
    assert_eq!(t.stats("provisioner").timeouts, 0, "the call was given up before the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_created_before_a_crash_for_someone_who_left_meanwhile_is_terminated() {
    let mut def = project_stack(1);
    assert_eq!(def["functions"][1]["name"], "provisioner");
    def["functions"][1]["timeout_s"] = json!(18);
    let options =
        TestOptions { sim_config: fast_sim(), seed: seed(), max_visibility_timeout_s: Some(4), ..Default::default() };
    let t = TestStack::start_with(def, options).await;
    // GIVEN a joiner whose CreateWorkspaces makes the WorkSpace only after 12 s, its answer held
    // back past the provisioner's 18 s deadline: the call is given up, nothing written down
    for (ms, after) in [(12_000, false), (30_000, true)] {
        t.fault(json!({ "kind": "latency", "operation": "WorkSpaces.CreateWorkspaces", "ms": ms, "count": 1, "after": after }))
            .await;
    }
    t.post_events(&[join(40)]).await;
    eventually(60, "CreateWorkspaces called", || async {
        let calls = t.sim(reqwest::Method::GET, "calls", Value::Null).await;
        (calls["WorkSpaces.CreateWorkspaces"]["calls"].as_u64() == Some(1)).then_some(())
    })
    .await;
    // WHEN the employee leaves meanwhile, when there is no WorkSpace to find yet
    let leave = json!({
        "schema_version": "1", "event_id": "evt-leave-0040", "type": "leave",
        "occurred_at": "2026-11-20T17:00:00Z", "employee": { "employee_id": "E0040" }
    });
    t.post_events(&[leave]).await;
    let left = eventually(30, "the leave settled", || async {
        employee(&t, "E0040").await.filter(|e| e.state == EmployeeState::Terminated)
    })
    .await;
    assert_eq!((left.workspace_id, live_workspaces(&t).await), (None, 0), "nothing to terminate yet");
    // AND then the WorkSpace is made
    let made = eventually(30, "the WorkSpace made", || async {
        let state = t.sim_state().await;
        let ws = state["workspaces"].as_array().unwrap().iter().find(|w| w["UserName"] == "user0040").cloned();
        ws.and_then(|w| w["WorkspaceId"].as_str().map(str::to_owned))
    })
    .await;
    // THEN the redelivered request finds it made for someone who has left, and it is terminated:
    // the leaver keeps nothing and nothing is left behind
    let terminating = eventually(60, "the orphan attached to the leave", || async {
        employee(&t, "E0040").await.filter(|e| e.workspace_id.as_deref() == Some(made.as_str()))
    })
    .await;
    assert_eq!(terminating.leave_event_id.as_deref(), Some("evt-leave-0040"), "{terminating:?}");
    eventually(60, "the WorkSpace terminated", || async {
        let done = employee(&t, "E0040").await.is_some_and(|e| e.state == EmployeeState::Terminated);
        (done && live_workspaces(&t).await == 0).then_some(())
    })
    .await;
    assert_eq!(t.call_items("CreateWorkspaces").await, vec![1], "never created again");
    assert_eq!(t.call_items("TerminateWorkspaces").await.iter().sum::<u64>(), 1);
    assert_eq!(t.stats("provisioner").timeouts, 0, "the call was given up before the deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_absorbed_and_everything_completes() {
    let t = start(3, |_| {}).await;
    t.fault(json!({ "kind": "throttle", "operation": "WorkSpaces.CreateWorkspaces", "count": 3 })).await;
    t.fault(json!({ "kind": "throttle", "operation": "WorkSpaces.DescribeWorkspaces", "count": 3 })).await;
    t.post_events(&(0..30).map(join).collect::<Vec<_>>()).await;
    // The SDK retries the throttled calls after a jittered backoff; a CreateWorkspaces call that
    // still outlived the provisioner's deadline would be given up and adopted on its redelivery.
    // Everyone ends active, without a failure.
    all_in(&t, &ids(0..30), EmployeeState::Active, 240).await;
    let calls = t.sim(reqwest::Method::GET, "calls", Value::Null).await;
    assert!(calls["WorkSpaces.CreateWorkspaces"]["throttled"].as_u64().unwrap() >= 3);
    assert_eq!(live_workspaces(&t).await, 30);
    for id in ids(0..30) {
        assert!(employee(&t, &id).await.unwrap().failure_code.is_none());
    }
}
