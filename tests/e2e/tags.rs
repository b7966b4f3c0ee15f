//! Only what it manages: a WorkSpace with the protect tag is never terminated (its access is
//! revoked and the employee fails naming the tag), and a user's WorkSpace the pipeline did not
//! create (no managed tag) is neither adopted nor terminated.

use crate::helpers::{TestStack, eventually, observer_workspaces_client};
use crate::onboarding::{MANAGED_AD, all_in, employee, ids, join, start};
use serde_json::{Value, json};
use shared::domain::employee::EmployeeState;
use shared::domain::workspace::{MANAGED_TAG_KEY, PROTECT_TAG_KEY, PROTECTED, UNMANAGED};

fn leave(i: usize) -> Value {
    json!({
        "schema_version": "1", "event_id": format!("evt-leave-{i:04}"), "type": "leave",
        "occurred_at": "2026-11-20T17:00:00Z", "employee": { "employee_id": format!("E{i:04}") }
    })
}

async fn workspaces_client(t: &TestStack) -> aws_sdk_workspaces::Client {
    observer_workspaces_client(&t.sim_url).await
}

fn state_of(state: &Value, id: &str) -> Option<String> {
    let ws = state["workspaces"].as_array().unwrap().iter().find(|w| w["WorkspaceId"] == id);
    ws.map(|w| w["State"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protected_workspace_is_never_terminated_and_its_leaver_loses_access() {
    let t = start(1, |_| {}).await;
    t.post_events(&[join(70)]).await;
    let ws = all_in(&t, &ids(70..71), EmployeeState::Active, 60).await.remove(0).workspace_id.unwrap();
    let client = workspaces_client(&t).await;
    let tags = client.describe_tags().resource_id(&ws).send().await.unwrap();
    let managed = tags.tag_list().iter().find(|tag| tag.key() == MANAGED_TAG_KEY).and_then(|tag| tag.value());
    assert_eq!(managed, Some("E0070"), "created WorkSpaces carry the managed tag with the employee id");
    // GIVEN an administrator protects the WorkSpace
    let protect = aws_sdk_workspaces::types::Tag::builder().key(PROTECT_TAG_KEY).value("legal hold").build().unwrap();
    client.create_tags().resource_id(&ws).tags(protect).send().await.unwrap();
    // WHEN the employee leaves
    t.post_events(&[leave(70)]).await;
    // THEN the employee fails naming the tag, the WorkSpace stays, and no one can log in
    let failed =
        eventually(90, "failed", || async { employee(&t, "E0070").await.filter(|e| e.state == EmployeeState::Failed) })
            .await;
    assert_eq!(failed.failure_code.as_deref(), Some(PROTECTED));
    assert!(failed.failure_message.as_deref().unwrap().contains(PROTECT_TAG_KEY), "{failed:?}");
    assert_eq!(state_of(&t.sim_state().await, &ws).as_deref(), Some("ADMIN_MAINTENANCE"));
    assert!(t.call_items("TerminateWorkspaces").await.is_empty(), "never asked to terminate it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_made_by_hand_is_not_adopted() {
    let t = start(1, |o| {
        o.seed["directories"][0]["users"] = json!([
            { "username": "user0071", "given_name": "Given", "surname": "Surname71", "email": "user0071@example.com" }
        ]);
    })
    .await;
    // GIVEN user0071 already has a WorkSpace an administrator made (no managed tag)
    let client = workspaces_client(&t).await;
    let request = aws_sdk_workspaces::types::WorkspaceRequest::builder()
        .directory_id(MANAGED_AD)
        .user_name("user0071")
        .bundle_id("wsb-stdwin2022")
        .build()
        .unwrap();
    let made = client.create_workspaces().workspaces(request).send().await.unwrap();
    let by_hand = made.pending_requests()[0].workspace_id().unwrap().to_owned();
    // WHEN the employee joins
    t.post_events(&[join(71)]).await;
    // THEN that WorkSpace is not taken over: the employee fails saying why
    let failed =
        eventually(90, "failed", || async { employee(&t, "E0071").await.filter(|e| e.state == EmployeeState::Failed) })
            .await;
    assert_eq!(failed.failure_code.as_deref(), Some(UNMANAGED), "{failed:?}");
    assert!(failed.failure_message.as_deref().unwrap().contains(&by_hand));
    assert_eq!(failed.workspace_id, None, "not adopted");
    // AND a leave then terminates nothing
    t.post_events(&[leave(71)]).await;
    all_in(&t, &ids(71..72), EmployeeState::Terminated, 60).await;
    assert!(state_of(&t.sim_state().await, &by_hand).is_some(), "the hand-made WorkSpace is still there");
}
