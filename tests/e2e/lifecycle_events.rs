//! Lifecycle events end to end: the table's stream, read by the runner's DynamoDB stream
//! mapping, reaches the real publisher binary, which puts the events on moto's EventBridge bus;
//! the stack's rule delivers them to the example subscriber's queue, where the test reads them.

use crate::helpers::eventually;
use crate::onboarding::{all_in, ids, join, project_stack, start, start_def};
use serde_json::{Value, json};
use shared::domain::employee::EmployeeState;
use shared::domain::time::Timestamp;
use std::collections::{BTreeMap, BTreeSet};

fn leave(i: usize) -> Value {
    json!({
        "schema_version": "1",
        "event_id": format!("evt-leave-{i:04}"),
        "type": "leave",
        "occurred_at": Timestamp::now().to_rfc3339(),
        "employee": { "employee_id": format!("E{i:04}") }
    })
}

/// (employee, detail-type) of each distinct event id, and every arrival of each id.
fn by_id(events: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in events {
        by_id.entry(e["detail"]["id"].as_str().unwrap().to_owned()).or_default().push(e.clone());
    }
    by_id
}

fn logical(events: &[Value]) -> BTreeSet<(String, String)> {
    by_id(events)
        .values()
        .map(|arrivals| {
            let e = &arrivals[0];
            (e["detail"]["employee_id"].as_str().unwrap().to_owned(), e["detail-type"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_of_joiners_and_a_leaver_reaches_the_subscriber_once_by_id() {
    // GIVEN a stack whose SQS deliveries all come twice (at-least-once, exaggerated)
    let t = start(2, |o| o.duplicate_deliveries = true).await;
    // WHEN three employees join, and one of them then leaves
    t.post_events(&(0..3).map(join).collect::<Vec<_>>()).await;
    all_in(&t, &ids(0..3), EmployeeState::Active, 180).await;
    t.post_events(&[leave(0)]).await;
    all_in(&t, &ids(0..1), EmployeeState::Terminated, 180).await;
    // THEN the subscriber receives each change as one logical event: requested and available for
    // each joiner, terminated for the leaver, and nothing else
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    for id in ids(0..3) {
        expected.insert((id.clone(), "WorkSpace Requested".into()));
        expected.insert((id, "WorkSpace Available".into()));
    }
    expected.insert(("E0000".into(), "WorkSpace Terminated".into()));
    let events = t.lifecycle_events(60, "every lifecycle event", |events| logical(events) == expected).await;
    // AND one id per change: an id that arrives twice is the same event twice
    let by_id = by_id(&events);
    assert_eq!(by_id.len(), expected.len(), "one id per change: {:?}", by_id.keys());
    for (id, arrivals) in &by_id {
        assert!(arrivals.iter().all(|a| a["detail"] == arrivals[0]["detail"]), "{id}: {arrivals:?}");
    }
    // AND each is what the schema promises, naming the HR event and the WorkSpace
    for e in &events {
        assert_eq!(e["source"], "hr-workspaces");
        let d = &e["detail"];
        for field in ["id", "employee_id", "hr_event_id", "workspace_id", "state", "reason", "time", "version"] {
            assert!(d.get(field).is_some(), "{field} missing from {d}");
        }
        // A WorkSpace is named from the moment it exists: not yet when it is requested.
        let requested = e["detail-type"] == "WorkSpace Requested";
        assert_eq!(d["workspace_id"].as_str().is_some_and(|w| w.starts_with("ws-")), !requested, "{d}");
        assert!(d["hr_event_id"].as_str().is_some_and(|h| h.starts_with("evt-")), "{d}");
    }
    let terminated = events.iter().find(|e| e["detail-type"] == "WorkSpace Terminated").unwrap();
    assert_eq!(terminated["detail"]["hr_event_id"], "evt-leave-0000");
    assert_eq!(terminated["detail"]["state"], "terminated");
    // AND nothing was given up on
    assert_eq!(t.depth(&t.queue_url("lifecycle-publisher-failures")).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_the_bus_refuses_are_retried_then_kept_in_the_failure_destination_with_where_they_are() {
    // GIVEN a publisher pointed at a bus that does not exist, and a mapping that retries twice
    let mut def = project_stack(2);
    for f in def["functions"].as_array_mut().unwrap() {
        if f["name"] == "publisher" {
            f["environment"]["EVENT_BUS_NAME"] = json!("no-such-bus");
            f["dynamodb_stream"]["maximum_retry_attempts"] = json!(2);
        }
    }
    let t = start_def(def, |_| {}).await;
    // WHEN an employee joins
    t.post_events(&[join(0)]).await;
    all_in(&t, &ids(0..1), EmployeeState::Active, 180).await;
    // THEN the records the publisher could not publish are described in the failure destination
    let failures = t.queue_url("lifecycle-publisher-failures");
    eventually(60, "a description in the failure destination", || async {
        (t.depth(&failures).await > 0).then_some(())
    })
    .await;
    let described = t.take_messages("lifecycle-publisher-failures").await;
    let info = &described[0]["DDBStreamBatchInfo"];
    assert_eq!(described[0]["requestContext"]["condition"], "RetryAttemptsExhausted", "{described:?}");
    assert!(info["startSequenceNumber"].as_str().is_some() && info["batchSize"].as_u64() >= Some(1), "{info}");
    assert_eq!(info["streamArn"].as_str(), t.stack.resources.stream_arn.as_deref());
    // AND nothing reached the subscriber, and the pipeline itself went on
    assert!(t.take_messages("lifecycle-events").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_employee_record_that_cannot_be_read_is_set_aside_and_the_changes_after_it_still_arrive() {
    // GIVEN an employee record no code can read, written behind the pipeline's back
    let t = start_def(project_stack(2), |_| {}).await;
    let s = |v: &str| aws_sdk_dynamodb::types::AttributeValue::S(v.into());
    t.dynamodb
        .put_item()
        .table_name(&t.stack.resources.table_name)
        .item("pk", s("EMP#BROKEN"))
        .item("sk", s("STATE"))
        .item("state", s("dancing"))
        .send()
        .await
        .unwrap();
    // WHEN an employee joins after it
    t.post_events(&[join(0)]).await;
    all_in(&t, &ids(0..1), EmployeeState::Active, 180).await;
    // THEN the joiner's changes reach the subscriber
    let wanted: BTreeSet<(String, String)> =
        [("E0000", "WorkSpace Requested"), ("E0000", "WorkSpace Available")].map(|(e, k)| (e.into(), k.into())).into();
    t.lifecycle_events(60, "the joiner's events", |events| logical(events) == wanted).await;
    // AND the unreadable record is described in the failure queue, with why
    let described = t.take_messages("lifecycle-publisher-failures").await;
    assert_eq!(described.len(), 1, "{described:?}");
    assert_eq!((&described[0]["condition"], &described[0]["key"]), (&json!("UnreadableRecord"), &json!("EMP#BROKEN")));
    assert!(described[0]["reason"].as_str().unwrap().contains("dancing"), "{described:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbridge_keeps_the_event_bus_contract_the_memory_bus_keeps() {
    // The adapter on moto's EventBridge, read through the stack's rule and subscriber queue.
    let t = start_def(project_stack(2), |_| {}).await;
    let sdk = crate::helpers::sdk_config(t.moto_url).await;
    let bus = shared::adapters::eventbridge::EventBridgeBus::new(
        aws_sdk_eventbridge::Client::new(&sdk),
        t.stack.resources.event_bus.clone().unwrap(),
    );
    shared::testing::contract::event_bus(&bus, || async {
        t.take_messages("lifecycle-events")
            .await
            .into_iter()
            .map(|e| (e["detail-type"].as_str().unwrap_or_default().to_owned(), e["detail"].clone()))
            .collect()
    })
    .await;
}
