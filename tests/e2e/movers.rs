//! Movers end to end: a `move` HR event changes the WorkSpace an active employee has, one
//! WorkSpaces call per reconciler run (ModifyWorkspaceProperties per property group,
//! MigrateWorkspace for another bundle, tags), until it matches the new profile; a move to
//! another directory gets a new WorkSpace there and the old one terminated; a move for someone
//! who is not there is rejected and calls nothing; a leave in the middle of a move still takes
//! the WorkSpaces away.
//!
//! The cooldowns are ten times shorter than the local stack's (the reconciler's
//! WORKSPACES_COOLDOWN_DIVISOR 7200 instead of 720, and the simulator's cooldowns to match): a
//! volume growth or a larger compute type may come 3 s after launch, a migration 6 s. The
//! reconciler runs every second (as in the other modules), so the waits are short, not skipped.

use crate::helpers::{TestOptions, TestStack, eventually, observer_workspaces_client};
use crate::onboarding::{all_in, employee, ids, join, project_stack, set_env, start_def};
use aws_sdk_workspaces::types::Workspace;
use serde_json::{Value, json};
use shared::domain::employee::{EmployeeRecord, EmployeeState, EventOutcome};
use shared::ports::StateStore;

const STANDARD_BUNDLE: &str = "wsb-stdwin2022";
const PERFORMANCE_BUNDLE: &str = "wsb-perfwin2022";

/// The WorkSpaces calls a move makes (and nothing else in these tests does).
const MOVE_CALLS: [&str; 4] = ["ModifyWorkspaceProperties", "MigrateWorkspace", "CreateTags", "DeleteTags"];

/// The project's stack with the reconciler's cooldowns divided by 7200.
fn movers_def() -> Value {
    let mut def = project_stack(1);
    set_env(&mut def, "reconciler", "WORKSPACES_COOLDOWN_DIVISOR", "7200");
    def
}

/// `def` on a simulator whose cooldowns are divided likewise (and quick to update and migrate).
async fn start_movers(def: Value, tweak: impl FnOnce(&mut TestOptions)) -> TestStack {
    start_def(def, |o| {
        let lifecycle = &mut o.sim_config["lifecycle"];
        lifecycle["update_ms"] = json!(1500);
        lifecycle["migrate_ms"] = json!(3000);
        lifecycle["volume_cooldown_ms"] = json!(3000);
        lifecycle["compute_up_cooldown_ms"] = json!(3000);
        tweak(o);
    })
    .await
}

fn move_event(i: usize, event_id: &str, occurred_at: &str, to: Value) -> Value {
    let mut event = json!({
        "schema_version": "1", "event_id": event_id, "type": "move", "occurred_at": occurred_at,
        "employee": { "employee_id": format!("E{i:04}") }
    });
    for (k, v) in to.as_object().unwrap() {
        match k.as_str() {
            "department" => event["employee"]["department"] = v.clone(),
            _ => event[k] = v.clone(),
        }
    }
    event
}

fn leave(i: usize, event_id: &str) -> Value {
    json!({
        "schema_version": "1", "event_id": event_id, "type": "leave",
        "occurred_at": "2026-11-25T17:00:00Z",
        "employee": { "employee_id": format!("E{i:04}") }
    })
}

/// A Sales joiner (the standard profile: AUTO_STOP 60 min, STANDARD, the bundle's volumes).
fn sales_join(i: usize) -> Value {
    let mut e = join(i);
    e["employee"]["department"] = json!("Sales");
    e
}

async fn workspaces_client(t: &TestStack) -> aws_sdk_workspaces::Client {
    observer_workspaces_client(&t.sim_url).await
}

/// The WorkSpace as DescribeWorkspaces reports it (`None`: not listed).
async fn described(client: &aws_sdk_workspaces::Client, id: &str) -> Option<Workspace> {
    let out = client.describe_workspaces().workspace_ids(id).send().await.unwrap();
    out.workspaces().iter().find(|w| w.workspace_id() == Some(id)).cloned()
}

/// (running mode, auto-stop minutes, compute type, root GiB, user GiB) of a described WorkSpace.
fn properties(ws: &Workspace) -> (String, Option<i32>, String, Option<i32>, Option<i32>) {
    let p = ws.workspace_properties().unwrap();
    (
        p.running_mode().map(|m| m.as_str().to_owned()).unwrap_or_default(),
        p.running_mode_auto_stop_timeout_in_minutes(),
        p.compute_type_name().map(|c| c.as_str().to_owned()).unwrap_or_default(),
        p.root_volume_size_gib(),
        p.user_volume_size_gib(),
    )
}

/// Waits until the employee's move `event_id` is over: active again, no move under way.
async fn moved(t: &TestStack, id: &str, event_id: &str, secs: u64) -> EmployeeRecord {
    eventually(secs, &format!("{id} done with {event_id}"), || async {
        employee(t, id).await.filter(|e| {
            e.state == EmployeeState::Active
                && e.moving.is_none()
                && e.last_move.as_ref().is_some_and(|m| m.event_id == event_id)
        })
    })
    .await
}

/// The history line of `event_id`, once recorded.
async fn line(t: &TestStack, id: &str, event_id: &str) -> (EventOutcome, String) {
    let store = t.store();
    eventually(30, &format!("{event_id} recorded"), || async {
        let history = store.history(id).await.unwrap();
        history.into_iter().find(|h| h.event_id.as_deref() == Some(event_id)).map(|h| (h.outcome, h.reason))
    })
    .await
}

async fn move_calls(t: &TestStack) -> Vec<(&'static str, u64)> {
    let mut calls = Vec::new();
    for op in MOVE_CALLS {
        calls.push((op, t.call_items(op).await.iter().sum()));
    }
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_with_a_bigger_user_volume_and_compute_changes_only_those_on_the_same_workspace() {
    // GIVEN an active Sales employee on the standard profile
    let t = start_movers(movers_def(), |_| {}).await;
    t.post_events(&[sales_join(10)]).await;
    let ws = all_in(&t, &ids(10..11), EmployeeState::Active, 60).await.remove(0).workspace_id.unwrap();
    let client = workspaces_client(&t).await;
    let (mode, auto_stop, compute, root, user) = properties(&described(&client, &ws).await.unwrap());
    assert_eq!((mode.as_str(), auto_stop, compute.as_str()), ("AUTO_STOP", Some(60), "STANDARD"));
    assert!(user.unwrap() < 100, "the bundle's user volume is smaller than the move's: {user:?}");
    // WHEN HR moves them to a 100 GiB user volume and the PERFORMANCE compute type
    let to = json!({ "workspace": { "user_volume_gib": 100, "compute_type": "PERFORMANCE" } });
    t.post_events(&[move_event(10, "evt-move-0010", "2026-11-10T09:00:00Z", to)]).await;
    let (outcome, reason) = line(&t, "E0010", "evt-move-0010").await;
    assert_eq!(outcome, EventOutcome::Applied, "{reason}");
    // THEN once the reconciler has made its calls the employee is active again, same WorkSpace
    let done = moved(&t, "E0010", "evt-move-0010", 60).await;
    assert_eq!(done.workspace_id.as_deref(), Some(ws.as_str()), "modified in place, not replaced");
    assert_eq!(done.move_note, None, "the move reached its profile");
    assert!(done.previous_workspaces.is_empty());
    // AND the WorkSpace has exactly the new properties, the others as they were
    let now = described(&client, &ws).await.unwrap();
    assert_eq!(now.state().map(|s| s.as_str()), Some("AVAILABLE"));
    assert_eq!(properties(&now), ("AUTO_STOP".into(), Some(60), "PERFORMANCE".into(), root, Some(100)));
    assert_eq!(now.bundle_id(), Some(STANDARD_BUNDLE), "no migration");
    // one call per property group (compute and volume never together), no migration
    assert_eq!(t.call_items("ModifyWorkspaceProperties").await.len(), 2);
    assert!(t.call_items("MigrateWorkspace").await.is_empty());
    assert_eq!(t.call_items("CreateWorkspaces").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_to_a_department_on_another_bundle_migrates_to_a_new_workspace_with_its_profile() {
    // GIVEN an active Sales employee on the standard bundle
    let t = start_movers(movers_def(), |_| {}).await;
    t.post_events(&[sales_join(20)]).await;
    let old = all_in(&t, &ids(20..21), EmployeeState::Active, 60).await.remove(0).workspace_id.unwrap();
    // WHEN HR moves them to Engineering (its profile: the performance bundle, ALWAYS_ON, a 100 GiB
    // user volume, the Team tag)
    let to = json!({ "department": "Engineering" });
    t.post_events(&[move_event(20, "evt-move-0020", "2026-11-10T09:00:00Z", to)]).await;
    // THEN the employee ends active on a new WorkSpace with the new bundle and profile
    let done = moved(&t, "E0020", "evt-move-0020", 90).await;
    let new = done.workspace_id.clone().unwrap();
    assert_ne!(new, old, "MigrateWorkspace gives a new WorkSpace id");
    assert_eq!(done.move_note, None, "the move reached its profile");
    assert_eq!((done.profile_name.as_deref(), done.department.as_deref()), (Some("engineering"), Some("Engineering")));
    assert_eq!(
        done.previous_workspaces.iter().map(|p| p.workspace_id.as_str()).collect::<Vec<_>>(),
        vec![old.as_str()]
    );
    let client = workspaces_client(&t).await;
    let ws = described(&client, &new).await.unwrap();
    assert_eq!(ws.bundle_id(), Some(PERFORMANCE_BUNDLE));
    assert_eq!(ws.user_name(), Some("user0020"), "the same user");
    assert_eq!(ws.state().map(|s| s.as_str()), Some("AVAILABLE"));
    let (mode, auto_stop, compute, _, user) = properties(&ws);
    assert_eq!((mode.as_str(), auto_stop, compute.as_str(), user), ("ALWAYS_ON", None, "PERFORMANCE", Some(100)));
    let tags = client.describe_tags().resource_id(&new).send().await.unwrap();
    let team = tags.tag_list().iter().find(|tag| tag.key() == "Team").and_then(|tag| tag.value());
    assert_eq!(team, Some("engineering"));
    // AND the old WorkSpace is gone, after one migration
    eventually(30, "the old WorkSpace gone", || async { described(&client, &old).await.is_none().then_some(()) }).await;
    assert_eq!(t.call_items("MigrateWorkspace").await, vec![1]);
    assert!(t.call_items("TerminateWorkspaces").await.is_empty(), "the service retires the source, not the pipeline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_to_a_profile_without_a_pipeline_tag_removes_it_keeps_the_others_and_changes_the_running_mode() {
    // GIVEN a Design profile that also sets a tag of the pipeline's own (`hr-pipeline:` prefix),
    // and an active Design employee (the standard bundle, ALWAYS_ON, tags Team and that one)
    let mut def = movers_def();
    let intake = def["functions"].as_array().unwrap().iter().find(|f| f["name"] == "intake").unwrap();
    let mut profiles: Value =
        serde_json::from_str(intake["environment"]["WORKSPACE_PROFILES"].as_str().unwrap()).unwrap();
    profiles["profiles"]["design"]["tags"]["hr-pipeline:team"] = json!("design");
    set_env(&mut def, "intake", "WORKSPACE_PROFILES", &profiles.to_string());
    let t = start_movers(def, |_| {}).await;
    let mut design = join(25);
    design["employee"]["department"] = json!("Design");
    t.post_events(&[design]).await;
    let ws = all_in(&t, &ids(25..26), EmployeeState::Active, 60).await.remove(0).workspace_id.unwrap();
    let client = workspaces_client(&t).await;
    let tag = |tags: &aws_sdk_workspaces::operation::describe_tags::DescribeTagsOutput, key: &str| {
        tags.tag_list().iter().find(|tag| tag.key() == key).and_then(|tag| tag.value()).map(str::to_owned)
    };
    let before = client.describe_tags().resource_id(&ws).send().await.unwrap();
    assert_eq!(
        (tag(&before, "Team"), tag(&before, "hr-pipeline:team")),
        (Some("design".into()), Some("design".into()))
    );
    // WHEN HR moves them to Sales (the standard profile: AUTO_STOP 60 min, neither tag)
    let to = json!({ "department": "Sales" });
    t.post_events(&[move_event(25, "evt-move-0025", "2026-11-10T09:00:00Z", to)]).await;
    // THEN the same WorkSpace runs AUTO_STOP and has lost the pipeline's tag; tags it does not
    // own (Team might be an administrator's) and the managed tag stay
    let done = moved(&t, "E0025", "evt-move-0025", 60).await;
    assert_eq!(done.workspace_id.as_deref(), Some(ws.as_str()), "modified in place, not replaced");
    assert_eq!(done.move_note, None, "the move reached its profile");
    let (mode, auto_stop, ..) = properties(&described(&client, &ws).await.unwrap());
    assert_eq!((mode.as_str(), auto_stop), ("AUTO_STOP", Some(60)));
    let after = client.describe_tags().resource_id(&ws).send().await.unwrap();
    assert_eq!(tag(&after, "hr-pipeline:team"), None, "the pipeline's tag the new profile does not set");
    assert_eq!(tag(&after, "Team").as_deref(), Some("design"), "not the pipeline's to remove");
    assert_eq!(tag(&after, shared::domain::workspace::MANAGED_TAG_KEY).as_deref(), Some("E0025"), "still managed");
    assert_eq!(
        move_calls(&t).await,
        [("ModifyWorkspaceProperties", 1), ("MigrateWorkspace", 0), ("CreateTags", 0), ("DeleteTags", 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_for_someone_not_there_is_rejected_and_calls_nothing() {
    // GIVEN an employee who left, and one who never joined
    let t = start_movers(movers_def(), |_| {}).await;
    t.post_events(&[sales_join(30)]).await;
    all_in(&t, &ids(30..31), EmployeeState::Active, 60).await;
    t.post_events(&[leave(30, "evt-leave-0030")]).await;
    all_in(&t, &ids(30..31), EmployeeState::Terminated, 60).await;
    // WHEN HR sends a move for each
    let bigger = json!({ "workspace": { "user_volume_gib": 100 } });
    t.post_events(&[
        move_event(30, "evt-move-0030", "2026-11-26T09:00:00Z", bigger.clone()),
        move_event(32, "evt-move-0032", "2026-11-26T09:00:00Z", bigger),
    ])
    .await;
    // THEN each is rejected, with the reason in the history
    let (outcome, reason) = line(&t, "E0030", "evt-move-0030").await;
    assert_eq!(outcome, EventOutcome::Rejected, "{reason}");
    assert!(reason.contains("terminated") && reason.contains("evt-leave-0030"), "{reason}");
    let (outcome, reason) = line(&t, "E0032", "evt-move-0032").await;
    assert_eq!(outcome, EventOutcome::Rejected, "{reason}");
    assert!(reason.contains("not onboarded"), "{reason}");
    // AND nothing changed: no record for the one who never joined, the leaver as they were
    assert!(employee(&t, "E0032").await.is_none());
    let left = employee(&t, "E0030").await.unwrap();
    assert_eq!((left.state, left.moving, left.last_move), (EmployeeState::Terminated, None, None));
    // AND no WorkSpaces call was made for a move
    assert!(move_calls(&t).await.iter().all(|(_, n)| *n == 0), "{:?}", move_calls(&t).await);
}

/// A second Managed AD directory (DS Data creates users only there), registered with WorkSpaces.
const FIELD_DIRECTORY: &str = "d-9067f1e1d0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_to_another_directory_gets_a_new_workspace_there_then_the_old_one_is_terminated() {
    // GIVEN a Field department whose profile is in another directory, and an active Sales employee
    let mut def = movers_def();
    let intake = def["functions"].as_array().unwrap().iter().find(|f| f["name"] == "intake").unwrap();
    let mut profiles: Value =
        serde_json::from_str(intake["environment"]["WORKSPACE_PROFILES"].as_str().unwrap()).unwrap();
    let mut field = profiles["profiles"]["standard"].clone();
    field["directory_id"] = json!(FIELD_DIRECTORY);
    profiles["profiles"]["field"] = field;
    profiles["departments"]["Field"] = json!("field");
    set_env(&mut def, "intake", "WORKSPACE_PROFILES", &profiles.to_string());
    let t = start_movers(def, |o| {
        o.seed["directories"].as_array_mut().unwrap().push(json!({
            "id": FIELD_DIRECTORY, "name": "field.example.com", "kind": "MicrosoftAd", "registered": true
        }));
    })
    .await;
    t.post_events(&[sales_join(50)]).await;
    let old = all_in(&t, &ids(50..51), EmployeeState::Active, 60).await.remove(0).workspace_id.unwrap();
    // WHEN HR moves them to Field
    t.post_events(&[move_event(50, "evt-move-0050", "2026-11-10T09:00:00Z", json!({ "department": "Field" }))]).await;
    let (outcome, reason) = line(&t, "E0050", "evt-move-0050").await;
    assert_eq!(outcome, EventOutcome::Applied, "{reason}");
    assert!(reason.contains(FIELD_DIRECTORY), "{reason}");
    // THEN the employee ends active on a new WorkSpace in the Field directory, with its profile
    let done = moved(&t, "E0050", "evt-move-0050", 90).await;
    let new = done.workspace_id.clone().unwrap();
    assert_ne!(new, old);
    assert_eq!(done.move_note, None, "the move reached its profile");
    assert_eq!(done.profile.as_ref().map(|p| p.directory_id.as_str()), Some(FIELD_DIRECTORY));
    assert_eq!(done.department.as_deref(), Some("Field"));
    let client = workspaces_client(&t).await;
    let ws = described(&client, &new).await.unwrap();
    assert_eq!((ws.directory_id(), ws.user_name()), (Some(FIELD_DIRECTORY), Some("user0050")));
    assert_eq!(ws.state().map(|s| s.as_str()), Some("AVAILABLE"));
    // AND the user exists in the Field directory, the name is claimed there for this employee
    let store = t.store();
    assert_eq!(store.name_holder(FIELD_DIRECTORY, "user0050").await.unwrap().as_deref(), Some("E0050"));
    // AND the old WorkSpace was terminated by the pipeline, once, and is gone
    eventually(30, "the old WorkSpace gone", || async { described(&client, &old).await.is_none().then_some(()) }).await;
    assert_eq!(t.call_items("TerminateWorkspaces").await, vec![1]);
    assert_eq!(t.call_items("CreateWorkspaces").await, vec![1, 1]);
    let past: Vec<&str> = done.previous_workspaces.iter().map(|p| p.workspace_id.as_str()).collect();
    assert_eq!(past, vec![old.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leave_during_a_migration_terminates_both_workspaces() {
    // GIVEN an active Sales employee whose move to Engineering is migrating their WorkSpace (the
    // migration takes 8 s, as on the local stack)
    let t = start_movers(movers_def(), |o| o.sim_config["lifecycle"]["migrate_ms"] = json!(8000)).await;
    t.post_events(&[sales_join(40)]).await;
    let old = all_in(&t, &ids(40..41), EmployeeState::Active, 60).await.remove(0).workspace_id.unwrap();
    t.post_events(&[move_event(40, "evt-move-0040", "2026-11-10T09:00:00Z", json!({ "department": "Engineering" }))])
        .await;
    let new = eventually(60, "the migration under way", || async {
        employee(&t, "E0040").await.and_then(|e| e.moving.and_then(|m| m.migrating_to))
    })
    .await;
    // WHEN the employee leaves
    t.post_events(&[leave(40, "evt-leave-0040")]).await;
    // THEN the leave is applied, the employee ends terminated and no WorkSpace of theirs is left
    let (outcome, reason) = line(&t, "E0040", "evt-leave-0040").await;
    assert_eq!(outcome, EventOutcome::Applied, "{reason}");
    let gone = all_in(&t, &ids(40..41), EmployeeState::Terminated, 60).await.remove(0);
    assert_eq!(gone.moving, None);
    let client = workspaces_client(&t).await;
    eventually(30, "both WorkSpaces gone", || async {
        let (a, b) = (described(&client, &old).await, described(&client, &new).await);
        (a.is_none() && b.is_none()).then_some(())
    })
    .await;
    let state = t.sim_state().await;
    let left: Vec<&Value> = state["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["UserName"] == "user0040" && w["State"] != "TERMINATED")
        .collect();
    assert!(left.is_empty(), "the leaver keeps no WorkSpace: {left:?}");
    let past: Vec<&str> = gone.previous_workspaces.iter().map(|p| p.workspace_id.as_str()).collect();
    assert!(past.contains(&old.as_str()) && past.contains(&new.as_str()), "both accounted for: {past:?}");
}
