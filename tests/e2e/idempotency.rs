//! The idempotency record's semantics on the real adapter and DynamoDB (moto): a conditional
//! put claims, an in-progress claim holds until its deadline, a payload hash tells a duplicate
//! from a reused event id, and only the owner completes or releases. The state store's contract
//! suites on DynamoDB, and the termination guard's cost in requests and its survival of a restart.

use crate::helpers::TestStack;
use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use serde_json::json;
use shared::adapters::dynamo::DynamoStore;
use shared::domain::employee::EventOutcome;
use shared::domain::time::Timestamp;
use shared::ports::{Claim, ClaimOutcome, StateStore, StoreError};
use std::sync::{Arc, Mutex};

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
    assert!(matches!(
        store.complete("evt-1", "b", EventOutcome::Applied, "x", None).await,
        Err(StoreError::LostClaim(_))
    ));
    assert!(matches!(store.release("evt-1", "b").await, Err(StoreError::LostClaim(_))));

    // Past its deadline the claim can be taken over; the late owner can then no longer settle.
    let later = now + 61_000;
    assert_eq!(store.claim(&claim("c", "h1", later, later + 60_000)).await.unwrap(), ClaimOutcome::Claimed);
    assert!(matches!(
        store.complete("evt-1", "a", EventOutcome::Applied, "late", None).await,
        Err(StoreError::LostClaim(_))
    ));
    store.complete("evt-1", "c", EventOutcome::Applied, "done", None).await.unwrap();

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
    store.complete("evt-3", "h", EventOutcome::Applied, "long ago", None).await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_termination_guard_contract_the_memory_store_keeps() {
    let t = TestStack::start(json!({ "table": { "name": "guard", "partition_key": "pk", "sort_key": "sk", "indexes": [{ "name": "work-index", "partition_key": "work_shard", "sort_key": "work_due" }] }, "queues": [] })).await;
    shared::testing::contract::termination_guard(Arc::new(t.store())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_keeps_the_audit_store_contract_the_memory_store_keeps() {
    let t = TestStack::start(json!({ "table": { "name": "audit", "partition_key": "pk", "sort_key": "sk", "indexes": [{ "name": "work-index", "partition_key": "work_shard", "sort_key": "work_due" }] }, "queues": [] })).await;
    shared::testing::contract::audit_store(&t.store()).await;
}

/// Records the DynamoDB operation of every request sent (retries included).
#[derive(Debug, Clone, Default)]
struct Requests(Arc<Mutex<Vec<String>>>);

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or_default();
        self.0.lock().unwrap().push(target.rsplit('.').next().unwrap_or_default().to_owned());
        Ok(())
    }
}

impl Requests {
    /// The operations sent since the last call.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_costs_one_request_per_chunk_of_25_and_a_trip_survives_a_restart() {
    let t = TestStack::start(json!({ "table": { "name": "guard-cost", "partition_key": "pk", "sort_key": "sk", "indexes": [{ "name": "work-index", "partition_key": "work_shard", "sort_key": "work_due" }] }, "queues": [] })).await;
    let requests = Requests::default();
    let client =
        aws_sdk_dynamodb::Client::from_conf(t.dynamodb.config().to_builder().interceptor(requests.clone()).build());
    let store = DynamoStore::new(client, t.stack.resources.table_name.clone());
    let hour = 3_600_000;
    let start = 1_790_002_800_000; // a window's start
    let chunk = |n: usize| -> Vec<String> { (0..25).map(|i| format!("lv-{n}-{i}")).collect() };
    let (update, get) = ("UpdateItem", "GetItem");

    // GIVEN a limit of 60 an hour, WHEN the first chunk of 25 of the window arrives,
    // THEN two UpdateItems admit it (the fast path's condition fails on the new window)
    assert_eq!(store.admit_terminations(start, hour, 60, &chunk(0)).await.unwrap(), [true; 25]);
    assert_eq!(requests.take(), [update, update]);
    // WHEN the next chunk arrives in the same window, THEN one UpdateItem admits it
    assert_eq!(store.admit_terminations(start + 1, hour, 60, &chunk(1)).await.unwrap(), [true; 25]);
    assert_eq!(requests.take(), [update]);
    // WHEN a chunk is retried at 50 of 60, THEN one request finds it admitted and writes nothing
    assert_eq!(store.admit_terminations(start + 2, hour, 60, &chunk(1)).await.unwrap(), [true; 25]);
    assert_eq!(requests.take(), [update]);
    // WHEN a chunk crosses the limit, THEN two: the fast path, then the write that admits 10 and trips
    let crossing = store.admit_terminations(start + 3, hour, 60, &chunk(2)).await.unwrap();
    assert_eq!(crossing.iter().filter(|a| **a).count(), 10);
    assert_eq!(requests.take(), [update, update]);
    // WHEN a chunk arrives while tripped, THEN two: the fast path, then the held count
    assert_eq!(store.admit_terminations(start + 4, hour, 60, &chunk(3)).await.unwrap(), [false; 25]);
    assert_eq!(requests.take(), [update, update]);
    // WHEN a batch larger than the limit arrives, THEN one consistent read and one write
    let large: Vec<String> = (0..61).map(|i| format!("lv-big-{i}")).collect();
    assert_eq!(store.admit_terminations(start + 5, hour, 60, &large).await.unwrap(), vec![false; 61]);
    assert_eq!(requests.take(), [get, update]);
    // AND a new adapter (a new invocation, after a restart) finds the guard tripped, in one GetItem
    let restarted = t.store();
    let status = restarted.guard_status().await.unwrap();
    assert_eq!((status.tripped_since_ms, status.held, status.admitted_in_window), (Some(start + 3), 15 + 25 + 61, 60));
    assert_eq!(restarted.admit_terminations(start + 6, hour, 60, &chunk(0)).await.unwrap(), [false; 25]);
    store.guard_status().await.unwrap();
    assert_eq!(requests.take(), [get]);
}
