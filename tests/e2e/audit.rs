//! The drift audit end to end: the auditor function, invoked as its schedule would, lists the
//! simulator's WorkSpaces and compares them with the table; finds nothing on a clean stack, then
//! each kind of drift made behind the pipeline's back, each kept with its employee; and clears
//! what is resolved.

use crate::helpers::{TestStack, eventually, observer_workspaces_client};
use crate::onboarding::{MANAGED_AD, all_in, ids, join, project_stack, set_env, start, start_def};
use aws_sdk_workspaces::types::{RunningMode, Tag, WorkspaceProperties, WorkspaceRequest};
use serde_json::{Value, json};
use shared::domain::audit::Subject;
use shared::domain::employee::{EmployeeState, EventOutcome};
use shared::ports::{AuditStore, StateStore};

/// One run of the auditor, as its schedule invokes it: its answer.
async fn audit(t: &TestStack) -> Value {
    let url = format!("{}/2015-03-31/functions/auditor/invocations", t.stack.invoke_url);
    let scheduled = json!({ "source": "aws.events", "detail-type": "Scheduled Event", "detail": {} });
    let res = t.http.post(&url).json(&scheduled).send().await.unwrap();
    assert!(res.headers().get("x-amz-function-error").is_none(), "the audit failed: {}", res.text().await.unwrap());
    res.json().await.unwrap()
}

fn counts(report: &Value) -> [u64; 4] {
    ["missing", "orphaned", "mismatched", "unhealthy"].map(|k| report["counts"][k].as_u64().unwrap())
}

/// The kinds found, each with its employee or WorkSpace.
fn found(report: &Value) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let who = f["employee_id"].as_str().unwrap_or_else(|| f["workspace_id"].as_str().unwrap());
            (f["kind"].as_str().unwrap().to_owned(), who.to_owned())
        })
        .collect();
    found.sort();
    found
}

async fn drift_lines(t: &TestStack, id: &str) -> Vec<String> {
    let history = t.store().history(id).await.unwrap();
    history.into_iter().filter(|h| h.outcome == EventOutcome::Drift).map(|h| h.reason).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_finds_nothing_on_a_clean_stack_then_each_kind_of_drift_and_clears_what_is_resolved() {
    // GIVEN four employees who joined and are active
    let t = start(2, |_| {}).await;
    t.post_events(&(0..4).map(join).collect::<Vec<_>>()).await;
    let records = all_in(&t, &ids(0..4), EmployeeState::Active, 180).await;
    let ws =
        |i: usize| records.iter().find(|r| r.employee_id == format!("E{i:04}")).unwrap().workspace_id.clone().unwrap();

    // WHEN audited THEN nothing is found, in one DescribeWorkspaces page
    let clean = audit(&t).await;
    assert_eq!(counts(&clean), [0, 0, 0, 0], "{clean}");
    assert_eq!((clean["employees_checked"].as_u64(), clean["workspaces_listed"].as_u64()), (Some(4), Some(4)));
    assert_eq!(clean["describe_calls"], 1, "ceil(4/25) pages and no second look: {clean}");

    // GIVEN drift made behind the pipeline's back: E0001's WorkSpace deleted in the console, a
    // WorkSpace made by hand, E0002's running mode changed, E0003's WorkSpace suspended
    let api = observer_workspaces_client(&t.sim_url).await;
    api.terminate_workspaces()
        .terminate_workspace_requests(
            aws_sdk_workspaces::types::TerminateRequest::builder().workspace_id(ws(1)).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    let by_hand = api
        .create_workspaces()
        .workspaces(
            WorkspaceRequest::builder()
                .directory_id(MANAGED_AD)
                .user_name("[UNDEFINED]")
                .workspace_name("made-by-hand")
                .bundle_id("wsb-stdwin2022")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let by_hand = by_hand.pending_requests()[0].workspace_id().unwrap().to_owned();
    api.modify_workspace_properties()
        .workspace_id(ws(2))
        .workspace_properties(WorkspaceProperties::builder().running_mode(RunningMode::AlwaysOn).build())
        .send()
        .await
        .unwrap();
    t.sim(reqwest::Method::PUT, &format!("workspaces/{}/state", ws(3)), json!({ "state": "SUSPENDED" })).await;
    eventually(60, "the deleted WorkSpace gone, the hand-made one listed, the change applied", || async {
        let state = t.sim_state().await;
        let listed = state["workspaces"].as_array().unwrap().clone();
        let find = |id: &str| listed.iter().find(|w| w["WorkspaceId"] == id).cloned();
        let changed = find(&ws(2)).is_some_and(|w| {
            w["State"] == "AVAILABLE" && w["Update"].is_null() && w["Properties"]["running_mode"] == "ALWAYS_ON"
        });
        let made = find(&by_hand).is_some_and(|w| w["State"] == "AVAILABLE" && w["Visible"] == true);
        (find(&ws(1)).is_none() && made && changed).then_some(())
    })
    .await;

    // WHEN audited THEN each kind is found once, kept with its employee (or the WorkSpace), and
    // lined in the employee's history
    let drift = audit(&t).await;
    assert_eq!(counts(&drift), [1, 1, 1, 1], "{drift}");
    let expected =
        [("mismatched", "E0002"), ("missing", "E0001"), ("orphaned", by_hand.as_str()), ("unhealthy", "E0003")];
    assert_eq!(found(&drift), expected.map(|(k, w)| (k.to_owned(), w.to_owned())));
    let mismatched = drift["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "mismatched").unwrap();
    assert_eq!(
        mismatched["differences"],
        json!([{ "property": "running_mode", "wanted": "AUTO_STOP", "found": "ALWAYS_ON" }])
    );
    let store = t.store();
    for (id, kind) in [("E0001", "missing"), ("E0002", "mismatched"), ("E0003", "unhealthy")] {
        let kept = store.drift_of(&Subject::Employee(id.into())).await.unwrap().unwrap();
        assert_eq!(kept.findings.iter().map(|f| f.kind()).collect::<Vec<_>>(), [kind]);
        let lines = drift_lines(&t, id).await;
        assert_eq!(lines.len(), 1, "{id}: {lines:?}");
        assert!(lines[0].starts_with(&format!("drift found: {kind}")), "{id}: {lines:?}");
    }
    let orphan = drift["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "orphaned").unwrap();
    assert_eq!((&orphan["workspace_name"], &orphan["user_of"]), (&json!("made-by-hand"), &Value::Null), "{orphan}");
    assert!(store.drift_of(&Subject::Workspace(by_hand.clone())).await.unwrap().is_some());
    assert_eq!(drift_lines(&t, "E0000").await, Vec::<String>::new(), "nothing about the employee without drift");
    // AND each finding reached the subscriber as a Drift Found event, the orphan's without an employee
    let is_drift = |e: &Value| e["detail-type"] == "Drift Found";
    let announced = t
        .lifecycle_events(30, "four Drift Found events", |events| events.iter().filter(|e| is_drift(e)).count() >= 4)
        .await;
    let mut about: Vec<(String, String)> = announced
        .iter()
        .filter(|e| is_drift(e))
        .map(|e| {
            let d = &e["detail"];
            let kind = d["reason"].as_str().unwrap().split(':').next().unwrap().to_owned();
            (kind, d["employee_id"].as_str().unwrap_or_else(|| d["workspace_id"].as_str().unwrap()).to_owned())
        })
        .collect();
    about.sort();
    assert_eq!(about, expected.map(|(k, w)| (k.to_owned(), w.to_owned())));
    // The records themselves are the pipeline's: the audit only reports.
    let after = all_in(&t, &ids(0..4), EmployeeState::Active, 5).await;
    assert_eq!(
        after.iter().map(|r| r.version).collect::<Vec<_>>(),
        records.iter().map(|r| r.version).collect::<Vec<_>>()
    );

    // GIVEN the hand-made WorkSpace terminated and E0003's resumed
    api.terminate_workspaces()
        .terminate_workspace_requests(
            aws_sdk_workspaces::types::TerminateRequest::builder().workspace_id(&by_hand).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    t.sim(reqwest::Method::PUT, &format!("workspaces/{}/state", ws(3)), json!({ "state": "AVAILABLE" })).await;
    eventually(60, "the hand-made WorkSpace gone", || async {
        let state = t.sim_state().await;
        state["workspaces"].as_array().unwrap().iter().all(|w| w["WorkspaceId"] != by_hand).then_some(())
    })
    .await;
    // WHEN audited again THEN those two are resolved and cleared; the other two stay, not lined again
    let later = audit(&t).await;
    assert_eq!(counts(&later), [1, 0, 1, 0], "{later}");
    assert_eq!((later["opened"].as_u64(), later["resolved"].as_u64()), (Some(0), Some(2)), "{later}");
    assert!(store.drift_of(&Subject::Workspace(by_hand.clone())).await.unwrap().is_none());
    assert!(store.drift_of(&Subject::Employee("E0003".into())).await.unwrap().is_none());
    let lines = drift_lines(&t, "E0003").await;
    assert_eq!(lines.last().map(String::as_str), Some("drift resolved: no longer unhealthy"), "{lines:?}");
    assert_eq!(drift_lines(&t, "E0001").await.len(), 1, "an open finding is lined once");
    // AND a finding still open is not announced again
    let again = t.take_messages("lifecycle-events").await;
    assert!(again.iter().all(|e| e["detail-type"] != "Drift Found"), "{again:?}");
}

/// A WorkSpace made outside the pipeline (user-decoupled, named), with these tags.
async fn made_by_hand(api: &aws_sdk_workspaces::Client, name: &str, tags: &[(&str, &str)]) -> String {
    let mut request = WorkspaceRequest::builder()
        .directory_id(MANAGED_AD)
        .user_name("[UNDEFINED]")
        .workspace_name(name)
        .bundle_id("wsb-stdwin2022");
    for (key, value) in tags {
        request = request.tags(Tag::builder().key(*key).value(*value).build().unwrap());
    }
    let made = api.create_workspaces().workspaces(request.build().unwrap()).send().await.unwrap();
    made.pending_requests()[0].workspace_id().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_set_the_audit_requests_a_lost_workspace_again_reapplies_a_profile_and_terminates_only_a_managed_orphan() {
    // GIVEN the auditor set to act on every kind it can, and three active employees
    let mut def = project_stack(2);
    set_env(&mut def, "auditor", "AUDIT_ON_MISSING", "request-again");
    set_env(&mut def, "auditor", "AUDIT_ON_MISMATCHED", "reapply");
    set_env(&mut def, "auditor", "AUDIT_ON_ORPHANED", "terminate-managed");
    // An orphan may go once an earlier audit found it (a day unless set).
    set_env(&mut def, "auditor", "AUDIT_ORPHAN_AFTER_MINUTES", "0");
    let t = start_def(def, |_| {}).await;
    t.post_events(&(0..3).map(join).collect::<Vec<_>>()).await;
    let records = all_in(&t, &ids(0..3), EmployeeState::Active, 180).await;
    let ws =
        |i: usize| records.iter().find(|r| r.employee_id == format!("E{i:04}")).unwrap().workspace_id.clone().unwrap();
    // AND drift behind the pipeline's back: E0000's WorkSpace deleted, E0001's running mode
    // changed, a second WorkSpace the pipeline once made for E0002 left behind (managed tag
    // naming them) and one made by hand
    let api = observer_workspaces_client(&t.sim_url).await;
    api.terminate_workspaces()
        .terminate_workspace_requests(
            aws_sdk_workspaces::types::TerminateRequest::builder().workspace_id(ws(0)).build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    api.modify_workspace_properties()
        .workspace_id(ws(1))
        .workspace_properties(WorkspaceProperties::builder().running_mode(RunningMode::AlwaysOn).build())
        .send()
        .await
        .unwrap();
    let left_behind = made_by_hand(&api, "left-behind", &[("hr-pipeline:managed", "E0002")]).await;
    let by_hand = made_by_hand(&api, "made-by-hand", &[]).await;
    eventually(60, "the drift in place", || async {
        let state = t.sim_state().await;
        let listed = state["workspaces"].as_array().unwrap().clone();
        let find = |id: &str| listed.iter().find(|w| w["WorkspaceId"] == id).cloned();
        let changed =
            find(&ws(1)).is_some_and(|w| w["State"] == "AVAILABLE" && w["Properties"]["running_mode"] == "ALWAYS_ON");
        let made = [&left_behind, &by_hand]
            .iter()
            .all(|id| find(id).is_some_and(|w| w["State"] == "AVAILABLE" && w["Visible"] == true));
        (find(&ws(0)).is_none() && changed && made).then_some(())
    })
    .await;

    // WHEN audited THEN the lost WorkSpace is requested again and the profile re-applied; the
    // orphans, found for the first time, are only reported
    let first = audit(&t).await;
    assert_eq!(counts(&first), [1, 2, 1, 0], "{first}");
    let actions = first["actions"].as_array().unwrap();
    let done = |report: &Value, action: &str| -> Vec<String> {
        report["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["action"] == action && a["done"] == true)
            .map(|a| a["employee_id"].as_str().or(a["workspace_id"].as_str()).unwrap().to_owned())
            .collect()
    };
    assert_eq!(actions.len(), 2, "{first}");
    assert_eq!(done(&first, "request-again"), ["E0000"]);
    assert_eq!(done(&first, "reapply"), ["E0001"]);
    // AND E0000 gets a new WorkSpace, and E0001's is changed back to the profile's running mode
    let repaired = all_in(&t, &ids(0..2), EmployeeState::Active, 180).await;
    let again = repaired.iter().find(|r| r.employee_id == "E0000").unwrap();
    assert!(again.workspace_id.is_some() && again.workspace_id != Some(ws(0)), "{again:?}");
    assert_eq!(again.request_event_id.as_deref(), Some(format!("lost-{}", ws(0)).as_str()));
    eventually(60, "E0001's running mode back to AUTO_STOP", || async {
        let state = t.sim_state().await;
        let listed = state["workspaces"].as_array().unwrap().clone();
        listed.iter().any(|w| w["WorkspaceId"] == ws(1) && w["Properties"]["running_mode"] == "AUTO_STOP").then_some(())
    })
    .await;
    let lines = drift_lines(&t, "E0000").await;
    assert!(
        lines.iter().any(|l| l.starts_with("drift action: WorkSpace") && l.contains("new one requested")),
        "{lines:?}"
    );

    // WHEN audited again THEN missing and mismatched are resolved, the managed orphan found twice
    // is terminated, and the one made by hand is kept with the reason
    let second = audit(&t).await;
    assert_eq!(counts(&second), [0, 2, 0, 0], "{second}");
    assert_eq!(done(&second, "terminate"), std::slice::from_ref(&left_behind));
    let kept = second["actions"].as_array().unwrap().iter().find(|a| a["workspace_id"] == by_hand.as_str()).unwrap();
    assert_eq!(kept["done"], false);
    assert!(kept["outcome"].as_str().unwrap().contains("hr-pipeline:managed"), "{kept}");
    eventually(60, "the managed orphan gone, the hand-made one still there", || async {
        let state = t.sim_state().await;
        let listed = state["workspaces"].as_array().unwrap().clone();
        let alive = |id: &str| listed.iter().any(|w| w["WorkspaceId"] == id && w["State"] == "AVAILABLE");
        (!listed.iter().any(|w| w["WorkspaceId"] == left_behind.as_str()) && alive(&by_hand)).then_some(())
    })
    .await;
    // AND the subscriber heard that E0000's old WorkSpace went and a new one came
    let events = t
        .lifecycle_events(30, "E0000's new WorkSpace announced", |events| {
            events
                .iter()
                .filter(|e| e["detail"]["employee_id"] == "E0000" && e["detail-type"] == "WorkSpace Available")
                .count()
                >= 2
        })
        .await;
    let terminated = events
        .iter()
        .find(|e| e["detail"]["employee_id"] == "E0000" && e["detail-type"] == "WorkSpace Terminated")
        .unwrap();
    assert_eq!(terminated["detail"]["workspace_id"], json!(ws(0)));
}
