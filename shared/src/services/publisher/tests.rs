#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use super::*;
use crate::domain::employee::EmployeeState;
use crate::testing::{Faults, MemoryBus, MemoryQueue};
use std::sync::Arc;

fn record(id: &str, state: EmployeeState, version: u64) -> EmployeeRecord {
    let mut r = EmployeeRecord::new(id, 0);
    r.state = state;
    r.version = version;
    r.last_event_id = format!("hr-join-{id}");
    r.request_event_id = Some(format!("hr-join-{id}"));
    r.workspace_id = Some(format!("ws-{id}"));
    r
}

fn written(seq: u32, before: Option<EmployeeRecord>, after: EmployeeRecord) -> StreamChange {
    StreamChange {
        sequence_number: format!("{seq:05}"),
        change: Change::Employee { before: before.map(Box::new), after: Box::new(after) },
    }
}

fn publisher(bus: &Arc<MemoryBus>) -> Publisher<Arc<MemoryBus>, Arc<MemoryQueue>> {
    Publisher { events: bus.clone(), failures: Arc::new(MemoryQueue::named("failures")) }
}

/// Joiners E0..E{n-1}, each requested (a first write) then available.
fn joiners(n: usize) -> Vec<StreamChange> {
    let mut changes = Vec::new();
    for i in 0..n {
        let id = format!("E{i}");
        changes.push(written(2 * i as u32, None, record(&id, EmployeeState::Requested, 1)));
        changes.push(written(
            2 * i as u32 + 1,
            Some(record(&id, EmployeeState::Pending, 2)),
            record(&id, EmployeeState::Active, 3),
        ));
    }
    changes
}

#[tokio::test]
async fn every_change_of_a_batch_is_published_in_order_ten_a_call() {
    // GIVEN 12 joiners' records requested then made available, with other items between
    let bus = Arc::new(MemoryBus::default());
    let mut changes = joiners(12);
    changes.insert(3, StreamChange { sequence_number: "history".into(), change: Change::Other });
    // WHEN the publisher reads the batch
    let report = publisher(&bus).publish(&changes).await;
    // THEN 24 events went out in the stream's order, in 3 calls, and nothing is retried
    assert_eq!(report, PublishReport { published: 24, set_aside: 0, retry_from: None });
    let ids: Vec<String> = bus.events().into_iter().map(|e| e.detail.id).collect();
    assert_eq!(ids[..3], ["E0/1/workspace-requested", "E0/3/workspace-available", "E1/1/workspace-requested"]);
    assert_eq!(bus.faults.calls("bus.put_events"), 3);
}

#[tokio::test]
async fn a_failed_call_retries_the_batch_from_its_first_record_and_the_retry_repeats_ids_only() {
    // GIVEN a bus whose first call takes effect but answers with an error (the answer lost)
    let faults = Faults::new();
    faults.fail_next_after("bus.put_events", 1);
    let bus = Arc::new(MemoryBus::default().with_faults(faults));
    let changes = joiners(12);
    // WHEN the batch is published, then (as Lambda does) retried from the record it names
    let first = publisher(&bus).publish(&changes).await;
    // THEN nothing counts as published and the whole batch is retried
    assert_eq!(first, PublishReport { published: 0, set_aside: 0, retry_from: Some("00000".into()) });
    let from = changes.iter().position(|c| Some(&c.sequence_number) == first.retry_from.as_ref()).unwrap();
    let second = publisher(&bus).publish(&changes[from..]).await;
    assert_eq!(second, PublishReport { published: 24, set_aside: 0, retry_from: None });
    // AND every change is published at least once: 10 twice, each time the same event
    let events = bus.events();
    assert_eq!(events.len(), 34);
    let mut ids: Vec<&str> = events.iter().map(|e| e.detail.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 24);
    for e in &events {
        assert!(events.iter().filter(|o| o.detail.id == e.detail.id).all(|o| o == e));
    }
}

#[tokio::test]
async fn a_call_failing_part_way_retries_from_the_first_record_not_published() {
    // GIVEN a bus that fails after 10 events went out (a crash after one call)
    let faults = Faults::new();
    let bus = Arc::new(MemoryBus::default().with_faults(faults.clone()));
    let changes = joiners(12);
    faults.crash_after(1);
    // WHEN the batch is published
    let report = publisher(&bus).publish(&changes).await;
    // THEN the first ten went out, and the batch is retried from the eleventh event's record
    assert_eq!(report, PublishReport { published: 10, set_aside: 0, retry_from: Some("00010".into()) });
}

#[tokio::test]
async fn an_unreadable_record_is_set_aside_with_its_reason_and_the_batch_goes_on() {
    // GIVEN a batch whose third record cannot be read
    let bus = Arc::new(MemoryBus::default());
    let failures = Arc::new(MemoryQueue::named("failures"));
    let mut changes = joiners(3);
    changes[2] = StreamChange {
        sequence_number: "00002".into(),
        change: Change::Unreadable { key: "EMP#E1".into(), detail: "missing field `state`".into() },
    };
    // WHEN it is published
    let report = Publisher { events: bus.clone(), failures: failures.clone() }.publish(&changes).await;
    // THEN every readable record's events went out, and the unreadable one is described, not lost
    assert_eq!(report, PublishReport { published: 5, set_aside: 1, retry_from: None });
    let described: serde_json::Value = serde_json::from_str(&failures.bodies()[0]).unwrap();
    assert_eq!(described["sequence_number"], "00002");
    assert_eq!(described["key"], "EMP#E1");
    assert!(described["reason"].as_str().unwrap().contains("state"));

    // WHEN the failure queue refuses the description
    failures.faults.fail_next("failures.send", 1);
    let report = Publisher { events: bus.clone(), failures: failures.clone() }.publish(&changes).await;
    // THEN the batch is retried from that record, the records before it published
    assert_eq!(report, PublishReport { published: 2, set_aside: 0, retry_from: Some("00002".into()) });
}

#[tokio::test]
async fn a_write_that_changes_nothing_announced_publishes_nothing() {
    // GIVEN an active employee whose record is written again (a reconciler's look, a claim)
    let bus = Arc::new(MemoryBus::default());
    let active = record("E1", EmployeeState::Active, 3);
    let mut again = active.clone();
    again.version = 4;
    let report = publisher(&bus).publish(&[written(1, Some(active), again)]).await;
    // THEN no event and no call
    assert_eq!(report, PublishReport::default());
    assert_eq!(bus.faults.calls("bus.put_events"), 0);
}
