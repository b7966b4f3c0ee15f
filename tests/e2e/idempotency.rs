//! The idempotency record's semantics on the real adapter and DynamoDB (moto): a conditional
//! put claims, an in-progress claim holds until its deadline, a payload hash tells a duplicate
//! from a reused event id, and only the owner completes or releases.

use crate::helpers::TestStack;
use serde_json::json;
use shared::domain::employee::EventOutcome;
use shared::domain::time::Timestamp;
use shared::ports::{Claim, ClaimOutcome, StateStore, StoreError};

fn claim(owner: &str, hash: &str, now: i64, until: i64) -> Claim {
    Claim {
        event_id: "evt-1".into(),
        payload_hash: hash.into(),
        owner: owner.into(),
        now_ms: now,
        in_progress_until_ms: until,
        expires_at_s: now / 1000 + 3600,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_hold_until_the_deadline_and_only_the_owner_settles() {
    let t = TestStack::start(json!({ "table": { "name": "idem", "partition_key": "pk", "sort_key": "sk", "indexes": [{ "name": "work-index", "partition_key": "work_shard", "sort_key": "work_due" }] }, "queues": [] })).await;
    let store = t.store();
    let now = Timestamp::now().millis();

    assert_eq!(store.claim(&claim("a", "h1", now, now + 60_000)).await.unwrap(), ClaimOutcome::Claimed);
    assert_eq!(store.claim(&claim("b", "h1", now, now + 60_000)).await.unwrap(), ClaimOutcome::InProgress);
    assert!(matches!(store.complete("evt-1", "b", EventOutcome::Applied, "x").await, Err(StoreError::LostClaim(_))));
    assert!(matches!(store.release("evt-1", "b").await, Err(StoreError::LostClaim(_))));

    // Past its deadline the claim can be taken over; the late owner can then no longer settle.
    let later = now + 61_000;
    assert_eq!(store.claim(&claim("c", "h1", later, later + 60_000)).await.unwrap(), ClaimOutcome::Claimed);
    assert!(matches!(store.complete("evt-1", "a", EventOutcome::Applied, "late").await, Err(StoreError::LostClaim(_))));
    store.complete("evt-1", "c", EventOutcome::Applied, "done").await.unwrap();

    let again = store.claim(&claim("d", "h1", later, later + 60_000)).await.unwrap();
    assert_eq!(
        again,
        ClaimOutcome::Completed {
            same_payload: true,
            outcome: Some(EventOutcome::Applied),
            reason: Some("done".into())
        }
    );
    let reused = store.claim(&claim("e", "h2", later, later + 60_000)).await.unwrap();
    assert!(matches!(reused, ClaimOutcome::Completed { same_payload: false, .. }), "{reused:?}");

    // Released by its owner, an event can be claimed again (a retry after a failure).
    let mut other = claim("f", "h3", later, later + 60_000);
    other.event_id = "evt-2".into();
    assert_eq!(store.claim(&other).await.unwrap(), ClaimOutcome::Claimed);
    store.release("evt-2", "f").await.unwrap();
    other.owner = "g".into();
    assert_eq!(store.claim(&other).await.unwrap(), ClaimOutcome::Claimed);

    // An expired record is forgotten even before TTL deletes it.
    let mut old = claim("h", "h4", now, now + 1);
    old.event_id = "evt-3".into();
    old.expires_at_s = now / 1000 - 10;
    store.claim(&old).await.unwrap();
    store.complete("evt-3", "h", EventOutcome::Applied, "long ago").await.unwrap();
    let mut fresh = claim("i", "h4", now, now + 60_000);
    fresh.event_id = "evt-3".into();
    assert_eq!(store.claim(&fresh).await.unwrap(), ClaimOutcome::Claimed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_user_name_contract_the_memory_store_keeps() {
    let t = TestStack::start(json!({ "table": { "name": "names", "partition_key": "pk", "sort_key": "sk", "indexes": [{ "name": "work-index", "partition_key": "work_shard", "sort_key": "work_due" }] }, "queues": [] })).await;
    shared::testing::contract::user_name_claims(&t.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_state_store_contract_the_memory_store_keeps() {
    let t = TestStack::start(json!({ "table": { "name": "contract", "partition_key": "pk", "sort_key": "sk", "indexes": [{ "name": "work-index", "partition_key": "work_shard", "sort_key": "work_due" }] }, "queues": [] })).await;
    shared::testing::contract::state_store(&t.store()).await;
}
