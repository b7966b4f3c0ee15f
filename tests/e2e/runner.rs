//! The local runner plays Lambda's SQS event source mapping and schedules faithfully.

use crate::helpers::{TestStack, eventually};
use serde_json::{Value, json};

fn table() -> Value {
    json!({ "name": "probe", "partition_key": "pk", "sort_key": "sk", "ttl_attribute": "expires_at" })
}

fn standard_stack(batch_size: usize, window_s: u64, timeout_s: u64) -> Value {
    json!({
        "table": table(),
        "queues": [{
            "name": "work", "visibility_timeout_s": timeout_s + window_s + 1,
            "dlq": { "name": "work-dlq", "max_receive_count": 2 }
        }],
        "functions": [{
            "name": "probe", "binary": "probe-lambda", "timeout_s": timeout_s,
            "environment": { "TABLE_NAME": "${table}" },
            "sqs": [{ "queue": "work", "batch_size": batch_size, "batching_window_s": window_s, "max_concurrency": 2 }]
        }]
    })
}

fn bodies(prefix: &str, n: usize, action: &str) -> Vec<Value> {
    (0..n).map(|i| json!({ "id": format!("{prefix}{i}"), "action": action })).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_aggregate_up_to_batch_size_within_the_window() {
    let t = TestStack::start(standard_stack(25, 2, 3)).await;
    t.send("work", &bodies("m", 60, "ok"), None).await;
    for i in 0..60 {
        eventually(30, "every message handled", || async { (t.deliveries(&format!("m{i}")).await >= 1).then_some(()) })
            .await;
    }
    let sizes = t.stats("probe").batch_sizes;
    assert_eq!(sizes.iter().sum::<usize>(), 60, "each message delivered once: {sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 25), "{sizes:?}");
    assert!(sizes.len() <= 4, "60 messages sent together arrive in few batches, got {sizes:?}");
    for i in 0..60 {
        assert_eq!(t.deliveries(&format!("m{i}")).await, 1);
    }
    let queue = t.queue_url("work");
    eventually(10, "queue drained", || async { (t.depth(&queue).await == 0).then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_batch_failure_retries_only_the_failed_record_then_dead_letters_it() {
    let t = TestStack::start(standard_stack(10, 1, 2)).await;
    let mut messages = bodies("ok", 9, "ok");
    messages.push(json!({ "id": "poison", "action": "fail" }));
    t.send("work", &messages, None).await;
    let dlq = t.dlq_url("work");
    eventually(60, "poison message in the DLQ", || async { (t.depth(&dlq).await == 1).then_some(()) }).await;
    assert_eq!(t.deliveries("poison").await, 2, "maxReceiveCount 2: delivered twice, then dead-lettered");
    for i in 0..9 {
        assert_eq!(t.deliveries(&format!("ok{i}")).await, 1, "ok{i} must not be redelivered");
    }
    assert_eq!(t.depth(&t.queue_url("work")).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_item_identifier_fails_the_whole_batch() {
    let t = TestStack::start(standard_stack(10, 1, 2)).await;
    let mut messages = bodies("b", 4, "ok");
    messages.push(json!({ "id": "liar", "action": "bad_identifier" }));
    t.send("work", &messages, None).await;
    let dlq = t.dlq_url("work");
    eventually(60, "whole batch dead-lettered", || async { (t.depth(&dlq).await == 5).then_some(()) }).await;
    for i in 0..4 {
        assert_eq!(t.deliveries(&format!("b{i}")).await, 2, "b{i} was retried with its batch");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_fails_the_batch_and_the_instance_is_replaced() {
    let t = TestStack::start(standard_stack(1, 0, 1)).await;
    t.send("work", &[json!({ "id": "slow", "action": "sleep", "ms": 5000 })], None).await;
    let dlq = t.dlq_url("work");
    eventually(40, "slow message dead-lettered", || async { (t.depth(&dlq).await == 1).then_some(()) }).await;
    assert!(t.stats("probe").timeouts >= 2, "{:?}", t.stats("probe"));
    // Fresh instances still serve.
    t.send("work", &[json!({ "id": "after", "action": "ok" })], None).await;
    eventually(20, "message after the timeouts handled", || async { (t.deliveries("after").await == 1).then_some(()) })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_batch_is_recovered_by_redelivery() {
    let t = TestStack::start(standard_stack(1, 0, 2)).await;
    t.send("work", &[json!({ "id": "crashy", "action": "crash_first" })], None).await;
    eventually(30, "redelivered after the crash", || async { (t.deliveries("crashy").await == 2).then_some(()) }).await;
    let queue = t.queue_url("work");
    eventually(10, "queue drained", || async { (t.depth(&queue).await == 0).then_some(()) }).await;
    assert!(t.stats("probe").crashes >= 1);
    assert!(t.stats("probe").init_ms.len() >= 2, "the crashed instance was restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_keeps_order_within_a_message_group() {
    let def = json!({
        "table": table(),
        "queues": [{
            "name": "events.fifo", "fifo": true, "visibility_timeout_s": 11,
            "dlq": { "name": "events-dlq.fifo", "max_receive_count": 3 }
        }],
        "functions": [{
            "name": "probe", "binary": "probe-lambda", "timeout_s": 10,
            "environment": { "TABLE_NAME": "${table}" },
            "sqs": [{ "queue": "events.fifo", "batch_size": 3, "max_concurrency": 2 }]
        }]
    });
    let t = TestStack::start(def).await;
    let a: Vec<Value> = bodies("a", 12, "ok");
    let b: Vec<Value> = bodies("b", 12, "ok");
    t.send("events.fifo", &a, Some("emp-a")).await;
    t.send("events.fifo", &b, Some("emp-b")).await;
    for group in ["emp-a", "emp-b"] {
        let seen = eventually(30, "both groups handled", || async {
            let item = t.probe(&format!("probe-group#{group}")).await?;
            let seen: Vec<String> =
                item.get("seen")?.as_l().ok()?.iter().filter_map(|v| v.as_s().ok().cloned()).collect();
            (seen.len() == 12).then_some(seen)
        })
        .await;
        let prefix = &group[4..];
        let expected: Vec<String> = (0..12).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(seen, expected, "order within {group}");
    }
    assert!(t.stats("probe").batch_sizes.iter().all(|s| *s <= 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_fire_and_the_invoke_api_answers() {
    let def = json!({
        "table": table(),
        "queues": [],
        "functions": [{
            "name": "probe", "binary": "probe-lambda", "timeout_s": 5,
            "environment": { "TABLE_NAME": "${table}" },
            "schedule": { "rate_s": 300 }
        }]
    });
    let t = TestStack::start(def).await;
    eventually(20, "three scheduled runs", || async { (t.deliveries("schedule").await >= 3).then_some(()) }).await;

    let url = format!("{}/2015-03-31/functions/probe/invocations", t.stack.invoke_url);
    let event = json!({ "Records": [{ "messageId": "x1", "body": "{\"id\":\"direct\",\"action\":\"fail\"}", "attributes": {}, "messageAttributes": {} }] });
    let res = t.http.post(&url).json(&event).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body, json!({ "batchItemFailures": [{ "itemIdentifier": "x1" }] }));
    assert_eq!(t.deliveries("direct").await, 1);

    let res = t.http.post(&url).body("not json").send().await.unwrap();
    assert_eq!(res.headers().get("x-amz-function-error").map(|v| v.to_str().unwrap()), Some("Unhandled"));
    let res =
        t.http.post(format!("{}/2015-03-31/functions/nope/invocations", t.stack.invoke_url)).send().await.unwrap();
    assert_eq!(res.status(), 404);
}
