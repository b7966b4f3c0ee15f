//! The mass-termination guard end to end: a burst of leaves over the limit terminates only up
//! to the limit; the rest are held with access revoked, listed by `hrws guard`, given back by a
//! cancel, and terminated once an operator releases them (`hrws guard release`).

use crate::helpers::{TestStack, eventually};
use crate::onboarding::{all_in, employee, ids, join, project_stack, set_env, start_def};
use serde_json::{Value, json};
use shared::domain::employee::EmployeeState;

fn leave(i: usize) -> Value {
    json!({
        "schema_version": "1", "event_id": format!("evt-leave-{i:04}"), "type": "leave",
        "occurred_at": "2026-11-20T17:00:00Z", "employee": { "employee_id": format!("E{i:04}") }
    })
}

fn hrws(t: &TestStack, args: &[&str]) -> String {
    let out = std::process::Command::new(crate::helpers::repo_root().join("target/debug/hrws"))
        .args(args)
        .envs(local_stack::emulator_env(t.moto_url, &t.sim_url))
        .env("AWS_REGION", crate::helpers::REGION)
        .env("TABLE_NAME", &t.stack.resources.table_name)
        .env("TERMINATION_REQUESTS_QUEUE_URL", t.queue_url("termination-requests"))
        .output()
        .unwrap();
    assert!(out.status.success(), "hrws {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_leaves_over_the_limit_is_held_with_access_revoked_until_released() {
    // GIVEN a guard of 3 terminations per hour and 6 active employees
    let mut def = project_stack(2);
    set_env(&mut def, "terminator", "TERMINATION_GUARD_LIMIT", "3");
    let t = start_def(def, |_| {}).await;
    t.post_events(&(80..86).map(join).collect::<Vec<_>>()).await;
    all_in(&t, &ids(80..86), EmployeeState::Active, 90).await;
    // WHEN all six leave at once
    t.post_events(&(80..86).map(leave).collect::<Vec<_>>()).await;
    // THEN three are terminated and three held, their access revoked
    let store = t.store();
    let (gone, held) = eventually(90, "three terminated, three held", || async {
        let records = shared::ports::StateStore::employees(&store, &ids(80..86)).await.unwrap();
        let gone: Vec<_> = records.iter().filter(|e| e.state == EmployeeState::Terminated).cloned().collect();
        let held: Vec<_> = records
            .iter()
            .filter(|e| e.state == EmployeeState::Revoked && e.held_since_ms.is_some())
            .cloned()
            .collect();
        (gone.len() == 3 && held.len() == 3).then_some((gone, held))
    })
    .await;
    let items: u64 = t.call_items("TerminateWorkspaces").await.iter().sum();
    assert_eq!(items, 3, "no more than the limit terminated");
    let state = t.sim_state().await;
    for e in &held {
        let ws = e.workspace_id.as_deref().unwrap();
        let found = state["workspaces"].as_array().unwrap().iter().find(|w| w["WorkspaceId"] == ws).unwrap();
        assert_eq!(found["State"], "ADMIN_MAINTENANCE", "{} can no longer log in", e.employee_id);
        assert!(e.hold_reason.as_deref().unwrap().contains("more than 3 terminations"), "{e:?}");
    }
    assert!(gone.iter().all(|e| e.previous_workspaces.len() == 1));
    let held_metric = t.stats("terminator").metrics.get("TerminationsHeld").copied();
    assert_eq!(held_metric, Some(3.0), "the alarm's metric counts each hold once");
    let listed = hrws(&t, &["guard"]);
    assert!(listed.contains("TRIPPED") && listed.contains("held now   3 employees"), "{listed}");
    // AND a held leave cancelled by HR gets its WorkSpace back
    let undone = held[0].clone();
    let cancel = json!({
        "schema_version": "1", "event_id": "evt-cancel-guard", "type": "cancel",
        "occurred_at": "2026-11-21T08:00:00Z", "cancels": undone.leave_event_id.clone().unwrap(),
        "employee": { "employee_id": undone.employee_id.clone() }
    });
    t.post_events(&[cancel]).await;
    let back = all_in(&t, std::slice::from_ref(&undone.employee_id), EmployeeState::Active, 60).await.remove(0);
    assert_eq!(back.workspace_id, undone.workspace_id, "the same WorkSpace");
    // WHEN an operator releases the rest THEN they are terminated
    let released = hrws(&t, &["guard", "release"]);
    assert!(released.contains("released   2 held terminations"), "{released}");
    let rest: Vec<String> = held[1..].iter().map(|e| e.employee_id.clone()).collect();
    all_in(&t, &rest, EmployeeState::Terminated, 90).await;
    assert_eq!(employee(&t, &undone.employee_id).await.unwrap().state, EmployeeState::Active);
    assert!(!hrws(&t, &["guard"]).contains("TRIPPED"), "the guard is reset");
}
