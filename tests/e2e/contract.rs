//! The contract under hostile input, end to end: event times in the future never outrank a real
//! leave; a user name has one owner, so a namesake is refused and never gets (or terminates)
//! someone else's WorkSpace; oversized and malformed events are rejected and recorded in bounded
//! size, never dead-lettered, and never cost another event of their batch.

use crate::helpers::{TestStack, eventually};
use crate::onboarding::{MANAGED_AD, all_in, employee, join, live_workspaces, set_env, start, start_def};
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use shared::domain::employee::{EmployeeState, EventOutcome};
use shared::domain::time::Timestamp;
use shared::ports::{HistoryEntry, StateStore};

fn leave(i: usize, event_id: &str, occurred_at: &str) -> Value {
    json!({
        "schema_version": "1",
        "event_id": event_id,
        "type": "leave",
        "occurred_at": occurred_at,
        "employee": { "employee_id": format!("E{i:04}") }
    })
}

fn now() -> String {
    Timestamp::now().to_rfc3339()
}

/// The history of an employee once it has at least `n` lines.
async fn history(t: &TestStack, id: &str, n: usize) -> Vec<HistoryEntry> {
    let store = t.store();
    eventually(60, &format!("{n} history lines for {id}"), || async {
        let h = store.history(id).await.unwrap();
        (h.len() >= n).then_some(h)
    })
    .await
}

/// Sends raw bodies to the HR events queue one by one (a batch call is limited to 256 KiB in
/// all), each message in the given group.
async fn post_raw(t: &TestStack, bodies: &[(&str, String)]) {
    for (group, body) in bodies {
        t.sqs
            .send_message()
            .queue_url(t.queue_url("hr-events.fifo"))
            .message_body(body)
            .message_group_id(*group)
            .message_deduplication_id(uuid::Uuid::new_v4().simple().to_string())
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_event_time_never_keeps_a_leaver_on_a_workspace() {
    let t = start(2, |_| {}).await;
    // An integrator puts the start date in occurred_at: refused, with the field to use instead.
    let mut typo = join(2);
    typo["occurred_at"] = json!("2100-01-01T00:00:00Z");
    t.post_events(&[join(1), typo]).await;
    let refused = history(&t, "E0002", 1).await;
    assert_eq!(refused[0].outcome, EventOutcome::Rejected);
    assert!(refused[0].reason.contains("occurred_at") && refused[0].reason.contains("[future]"), "{refused:?}");
    assert!(refused[0].reason.contains("effective_at"), "tells the integrator what to use: {refused:?}");
    assert!(employee(&t, "E0002").await.is_none());

    // A record written by an earlier version that took 2100 as given: a real leave still applies.
    let mut active = all_in(&t, &["E0001".into()], EmployeeState::Active, 60).await.remove(0);
    let version = active.version;
    active.version += 1;
    active.last_event_ms = Timestamp::parse("2100-01-01T00:00:00Z").unwrap().millis();
    active.updated_ms = Timestamp::now().millis() - 60_000;
    t.store().save_employee(&active, Some(version)).await.unwrap();
    t.post_events(&[leave(1, "evt-leave-0001", &now()), leave(2, "evt-leave-0002", &now())]).await;
    all_in(&t, &["E0001".into(), "E0002".into()], EmployeeState::Terminated, 60).await;
    assert_eq!(live_workspaces(&t).await, 0, "the leaver lost the WorkSpace");
    let lines = history(&t, "E0001", 2).await;
    assert!(
        lines.iter().any(|h| h.event_id.as_deref() == Some("evt-leave-0001") && h.outcome == EventOutcome::Applied)
    );
}

/// The first employee is active; another employee id asks for the same user name (another case).
async fn namesake_is_refused(t: &TestStack, first: Value, mut namesake: Value) -> String {
    let first_id = first["employee"]["employee_id"].as_str().unwrap().to_owned();
    let namesake_id = namesake["employee"]["employee_id"].as_str().unwrap().to_owned();
    t.post_events(&[first]).await;
    let active = all_in(t, std::slice::from_ref(&first_id), EmployeeState::Active, 60).await.remove(0);
    let workspace_id = active.workspace_id.clone().unwrap();
    namesake["employee"]["username"] = json!(active.username.as_deref().unwrap().to_uppercase());
    t.post_events(&[namesake]).await;
    let refused = history(t, &namesake_id, 1).await;
    assert_eq!(refused[0].outcome, EventOutcome::Rejected, "{refused:?}");
    assert!(refused[0].reason.contains(&format!("held by employee {first_id}")), "{refused:?}");
    assert!(employee(t, &namesake_id).await.is_none(), "the namesake gets no record");

    // The namesake's leave terminates nothing.
    let mut leave_event = leave(0, &format!("evt-leave-{namesake_id}"), &now());
    leave_event["employee"]["employee_id"] = json!(namesake_id);
    t.post_events(&[leave_event]).await;
    all_in(t, std::slice::from_ref(&namesake_id), EmployeeState::Terminated, 60).await;
    let still = employee(t, &first_id).await.unwrap();
    assert_eq!((still.state, still.workspace_id.as_deref()), (EmployeeState::Active, Some(workspace_id.as_str())));
    let state = t.sim_state().await;
    let ws = state["workspaces"].as_array().unwrap().iter().find(|w| w["WorkspaceId"] == workspace_id.as_str());
    assert_eq!(ws.map(|w| w["State"].clone()), Some(json!("AVAILABLE")), "the first employee's WorkSpace is untouched");
    workspace_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_existing_users_a_namesake_never_gets_or_terminates_anothers_workspace() {
    let mut def = crate::onboarding::project_stack(2);
    set_env(&mut def, "intake", "DIRECTORY_BACKEND", "existing");
    let t = start_def(def, |o| {
        o.seed["directories"][0]["users"] = json!([
            { "username": "user0001", "given_name": "Given", "surname": "Surname1", "email": "user0001@example.com" }
        ]);
    })
    .await;
    let workspace_id = namesake_is_refused(&t, join(1), join(2)).await;

    // A request for a namesake already queued (by an earlier version): CreateWorkspaces answers
    // ResourceExists.WorkSpace, and the provisioner refuses to adopt another employee's WorkSpace.
    let mut record = employee(&t, "E0001").await.unwrap();
    record.employee_id = "E0003".into();
    record.version = 1;
    record.state = EmployeeState::Requested;
    record.workspace_id = None;
    record.request_event_id = Some("evt-join-0003".into());
    record.last_event_id = "evt-join-0003".into();
    t.store().save_employee(&record, None).await.unwrap();
    let request = shared::domain::messages::WorkspaceRequest::for_employee(&record, Timestamp::now().millis()).unwrap();
    t.send("workspace-requests", &[serde_json::to_value(&request).unwrap()], None).await;
    let failed = eventually(60, "E0003 failed", || async {
        employee(&t, "E0003").await.filter(|e| e.state == EmployeeState::Failed)
    })
    .await;
    assert_eq!(failed.failure_code.as_deref(), Some("UserNameTaken"), "{failed:?}");
    assert!(failed.workspace_id.is_none(), "not adopted");
    t.post_events(&[leave(3, "evt-leave-0003", &now())]).await;
    all_in(&t, &["E0003".into()], EmployeeState::Terminated, 60).await;
    assert_eq!(live_workspaces(&t).await, 1);
    assert_eq!(employee(&t, "E0001").await.unwrap().workspace_id.as_deref(), Some(workspace_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ds_data_a_rekeyed_person_is_refused_until_the_old_id_has_left() {
    let t = start(2, |_| {}).await;
    // HR re-keys a person: a new employee id, the same user name and e-mail.
    let mut rekeyed = join(1);
    rekeyed["event_id"] = json!("evt-join-rekeyed");
    rekeyed["employee"]["employee_id"] = json!("E0101");
    namesake_is_refused(&t, join(1), rekeyed.clone()).await;

    // Once the old id's leave is confirmed, the name is free for the new id.
    t.post_events(&[leave(1, "evt-leave-0001", &now())]).await;
    all_in(&t, &["E0001".into()], EmployeeState::Terminated, 60).await;
    rekeyed["event_id"] = json!("evt-join-rekeyed-2");
    rekeyed["occurred_at"] = json!(now());
    t.post_events(&[rekeyed]).await;
    let active = all_in(&t, &["E0101".into()], EmployeeState::Active, 60).await;
    assert_eq!(active[0].username.as_deref(), Some("user0001"));
    assert_eq!(live_workspaces(&t).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_and_recorded_and_never_costs_a_good_event() {
    // The intake starts once everything is queued, so good and bad events share its batches.
    let t = start(2, |o| o.disabled_mappings = vec!["intake"]).await;
    let body = |v: &Value| v.to_string();
    let mut long_event_id = join(11);
    long_event_id["event_id"] = json!("e".repeat(1100));
    let mut long_employee_id = join(12);
    long_employee_id["employee"]["employee_id"] = json!("E".repeat(2100));
    let mut huge_email = join(13);
    huge_email["employee"]["email"] = json!("\u{7f}".repeat(200 * 1024));
    let mut huge_profile = join(14);
    huge_profile["workspace"] = json!({ "profile": "p".repeat(200 * 1024) });
    let mut long_profile = join(15);
    long_profile["workspace"] = json!({ "profile": "p".repeat(10 * 1024) });
    let mut look_alike = join(16);
    look_alike["employee"]["username"] = json!("\u{41e}lga");
    let padded = format!("{{\"pad\":\"{}\"}}", "x".repeat(250 * 1024));
    let twice =
        body(&join(17)).replacen("\"username\":\"user0017\"", "\"username\":\"user0017\",\"username\":\"root\"", 1);
    assert!(twice.contains("\"root\""));
    // Bad input for E0011 first, then that employee's valid event: same group, applied after.
    let batch = [
        ("E0011", body(&long_event_id)),
        ("E0011", body(&join(11))),
        ("E0012", body(&long_employee_id)),
        ("E0020", body(&join(20))),
        ("E0013", body(&huge_email)),
        ("E0014", body(&huge_profile)),
        ("E0021", body(&join(21))),
        ("E0015", body(&long_profile)),
        ("E0099", padded),
        ("E0022", body(&join(22))),
    ];
    post_raw(&t, &batch).await;
    post_raw(&t, &[("E0016", body(&look_alike)), ("E0017", twice), ("E0023", body(&join(23)))]).await;
    assert!(t.stack.set_mapping_enabled("intake", true));
    let good: Vec<String> = ["E0011", "E0020", "E0021", "E0022", "E0023"].map(String::from).to_vec();
    all_in(&t, &good, EmployeeState::Active, 90).await;

    for (id, rule) in [
        ("E0011", "event_id must be 1-128 characters"),
        ("E0015", "workspace.profile must be 1-64 characters"),
        ("E0016", "employee.username must contain only A-Z a-z 0-9 _ - ."),
        ("E0017", "employee.username appears more than once"),
    ] {
        let lines = history(&t, id, 1).await;
        let rejected =
            lines.iter().find(|h| h.outcome == EventOutcome::Rejected).unwrap_or_else(|| panic!("{id}: {lines:?}"));
        assert!(rejected.reason.contains(rule), "{id}: {:?} should name {rule:?}", rejected.reason);
        assert!(rejected.reason.chars().count() <= 1000, "{id}: bounded reason");
    }
    // Oversized bodies are not parsed at all, so they have no employee: their lines (and the
    // unusable employee id's) are under REJECTED, bounded.
    let rejected = t
        .dynamodb
        .query()
        .table_name(&t.stack.resources.table_name)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("REJECTED".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let reasons: Vec<&str> =
        rejected.items().iter().filter_map(|i| i.get("reason")?.as_s().ok().map(String::as_str)).collect();
    assert!(reasons.iter().any(|r| r.contains("employee_id") && r.contains("(2100 characters)")), "{reasons:?}");
    let oversized = reasons.iter().filter(|r| r.contains("(body) must be at most 16384 bytes")).count();
    assert_eq!(oversized, 3, "the 200 KiB e-mail, the 200 KiB profile and the 250 KiB body: {reasons:?}");
    for item in rejected.items() {
        assert!(item["sk"].as_s().unwrap().len() < 300, "bounded sort key");
    }
    assert!(employee(&t, "E0016").await.is_none() && employee(&t, "E0017").await.is_none());
    let hr_dlq = t.dlq_url("hr-events.fifo");
    let hr_events = t.queue_url("hr-events.fifo");
    eventually(30, "the HR events queue drained", || async { (t.depth(&hr_events).await == 0).then_some(()) }).await;
    assert_eq!(t.depth(&hr_dlq).await, 0, "bad input is recorded, never dead-lettered");
    let intake = t.stats("intake");
    assert_eq!(intake.errors, 0);
    assert_eq!(intake.metrics.get("EventsRejected"), Some(&8.0), "the alarm's metric counts each rejection once");
    let users = t.sim_state().await["directories"][MANAGED_AD]["users"].as_object().map(|u| u.len()).unwrap_or(0);
    assert_eq!(users, good.len(), "a directory user for every valid joiner and no one else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worst_rejection_an_hr_system_can_send_fits_in_dynamodb() {
    use shared::adapters::dynamo::{MAX_ITEM_BYTES, history_item, item_size};
    use shared::domain::event::{EventRules, HrEvent};
    use shared::domain::names::UserNameRules;
    use shared::services::QueueRecord;
    let t = TestStack::start(json!({ "table": { "name": "worst", "partition_key": "pk", "sort_key": "sk", "indexes": [{ "name": "work-index", "partition_key": "work_shard", "sort_key": "work_due" }] }, "queues": [] })).await;
    // moto enforces DynamoDB's key limits: what an unbounded id would have done.
    let refused = t
        .dynamodb
        .put_item()
        .table_name(&t.stack.resources.table_name)
        .item("pk", AttributeValue::S("EMP#x".into()))
        .item("sk", AttributeValue::S(format!("EVENT#{}", "e".repeat(1100))))
        .send()
        .await;
    assert!(refused.is_err(), "a sort key over 1,024 bytes is refused");

    // Just under the body limit: every field wrong, ids far over their limits, thousands of
    // unknown fields with long names, multi-byte characters everywhere.
    let unknown: serde_json::Map<String, Value> =
        (0..600).map(|i| (format!("{}{i}", "\u{1f600}".repeat(3)), json!(null))).collect();
    let mut worst = json!({
        "schema_version": 2, "event_id": "\u{202e}".repeat(400), "type": "\u{7f}".repeat(300),
        "occurred_at": "\u{0}".repeat(200), "employee": { "employee_id": "\u{1f600}".repeat(300), "username": 7 }
    });
    worst.as_object_mut().unwrap().extend(unknown);
    let mut body = worst.to_string();
    while body.len() > 16 * 1024 {
        let cut = worst.as_object().unwrap().keys().next_back().unwrap().clone();
        worst.as_object_mut().unwrap().remove(&cut);
        body = worst.to_string();
    }
    let record = QueueRecord { message_id: "m".repeat(5000), body, receive_count: 1, group_id: None };
    let rules = EventRules::at(Timestamp::now(), UserNameRules::DS_DATA);
    let invalid = HrEvent::parse(&record.body, rules).unwrap_err();
    assert!(invalid.errors.len() > 100, "{} violations", invalid.errors.len());
    let entry = shared::services::intake::rejection_entry(&record, &invalid, Timestamp::now().millis());
    let item = history_item(&entry).unwrap();
    assert!(item_size(&item) < MAX_ITEM_BYTES / 100, "{} bytes", item_size(&item));
    assert!(item["sk"].as_s().unwrap().len() < 200);
    t.store().record_history(&entry).await.expect("the worst rejection is recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrading_gives_each_live_employee_its_user_name_and_lists_the_names_two_ask_for() {
    let t = start(2, |_| {}).await;
    t.post_events(&[join(1)]).await;
    let first = all_in(&t, &["E0001".into()], EmployeeState::Active, 60).await.remove(0);
    // Records as an earlier version left them: no claims, and two employees on one name.
    let directory = first.profile.as_ref().unwrap().directory_id.clone();
    let table = &t.stack.resources.table_name;
    let claim_key = |user: &str| {
        [
            ("pk".to_owned(), AttributeValue::S(format!("NAME#{directory}#{user}"))),
            ("sk".to_owned(), AttributeValue::S("OWNER".into())),
        ]
    };
    t.dynamodb.delete_item().table_name(table).set_key(Some(claim_key("user0001").into())).send().await.unwrap();
    let mut twin = first.clone();
    twin.employee_id = "E0002".into();
    twin.username = Some("USER0001".into());
    t.store().save_employee(&twin, None).await.unwrap();
    let mut other = first.clone();
    other.employee_id = "E0003".into();
    other.username = Some("user0003".into());
    t.store().save_employee(&other, None).await.unwrap();

    let hrws = crate::helpers::repo_root().join("target/debug/hrws");
    let moto = t.moto_url;
    let run = |args: &[&str]| {
        std::process::Command::new(&hrws)
            .args(args)
            .envs(local_stack::emulator_env(moto, &t.sim_url))
            .env("AWS_REGION", crate::helpers::REGION)
            .env("TABLE_NAME", table)
            .output()
            .unwrap()
    };
    let dry = run(&["claim-names", "--dry-run"]);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would claim"), "{dry:?}");
    assert_eq!(t.store().name_holder(&directory, "user0001").await.unwrap(), None, "a dry run writes nothing");
    let out = run(&["claim-names"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a conflict needs a person: {text}");
    assert!(text.contains("conflict   USER0001") && text.contains("held by E0001"), "{text}");
    assert_eq!(t.store().name_holder(&directory, "user0001").await.unwrap().as_deref(), Some("E0001"));
    assert_eq!(t.store().name_holder(&directory, "user0003").await.unwrap().as_deref(), Some("E0003"));
    let shown = run(&["employee", "E0002"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("held by employee E0001"), "{shown:?}");
}
