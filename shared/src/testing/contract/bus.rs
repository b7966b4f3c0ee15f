//! The event bus: what a subscriber receives is what was published, whole and per event.

use super::ok;
use crate::domain::employee::{EmployeeRecord, EmployeeState};
use crate::domain::lifecycle_events::{LifecycleEvent, events_of};
use crate::ports::EventBus;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;

/// `received` answers what a subscriber of every event has received so far: each event's
/// detail-type and detail, in any order (a bus does not promise one).
pub async fn event_bus<B, R, Fut>(bus: &B, received: R)
where
    B: EventBus,
    R: Fn() -> Fut,
    Fut: Future<Output = Vec<(String, Value)>>,
{
    // Publishing nothing is no call and no event.
    ok("publish nothing", bus.publish(&[]).await);
    // 23 joiners' requests: more than one call's worth of entries.
    let events: Vec<LifecycleEvent> = (0..23)
        .flat_map(|i| {
            let mut r = EmployeeRecord::new(&format!("C{i:03}"), 1_800_000_000_000);
            r.state = EmployeeState::Requested;
            r.version = 1;
            r.last_event_id = format!("contract-join-{i}");
            events_of(None, &r)
        })
        .collect();
    ok("publish 23", bus.publish(&events).await);
    let mut got: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for _ in 0..50 {
        for (detail_type, detail) in received().await {
            let id = detail["id"].as_str().unwrap_or_default().to_owned();
            got.insert(id, (detail_type, detail));
        }
        if got.len() >= events.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(got.len(), events.len(), "every event received once by id: {:?}", got.keys());
    for event in &events {
        let (detail_type, detail) = &got[&event.detail.id];
        assert_eq!(detail_type, event.kind.detail_type());
        assert_eq!(*detail, serde_json::to_value(&event.detail).unwrap_or_default(), "the detail, whole");
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::MemoryBus;

    #[tokio::test]
    async fn the_memory_bus_keeps_the_contract() {
        let bus = MemoryBus::default();
        super::event_bus(&bus, || async {
            bus.events()
                .into_iter()
                .map(|e| (e.kind.detail_type().to_owned(), serde_json::to_value(&e.detail).unwrap_or_default()))
                .collect()
        })
        .await;
        assert_eq!(bus.faults.calls("bus.put_events"), 3, "ten events a call, and no call for none");
    }
}
