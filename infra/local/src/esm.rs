//! Plays the SQS event source mapping: polls a queue, builds batches (batch size, batching
//! window), invokes the function with at most `MaximumConcurrency` batches in flight, and
//! settles each batch from the function's partial batch response.

use crate::provision::QueueInfo;
use crate::runtime::{FunctionPool, Outcome};
use crate::stack::SqsMapping;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// What the mapping concluded for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Delete every message.
    AllSucceeded,
    /// Delete all but these message ids.
    Partial(HashSet<String>),
    /// Delete nothing: the whole batch returns after its visibility timeout.
    BatchFailed(String),
}

/// A partial batch response as Lambda reads it, for SQS and streams alike: `Err` (why) when the
/// whole batch failed; otherwise each `batchItemFailures` entry's identifier (empty if missing)
/// with the entry, none when everything succeeded.
pub(crate) fn item_failures(
    outcome: &Outcome,
    report_batch_item_failures: bool,
) -> Result<Vec<(String, Value)>, String> {
    let payload = match outcome {
        Outcome::Response(p) => p,
        Outcome::FunctionError(e) => return Err(format!("function error: {e}")),
        Outcome::Timeout => return Err("timed out".into()),
        Outcome::Crashed => return Err("runtime exited".into()),
    };
    if !report_batch_item_failures {
        return Ok(Vec::new());
    }
    let response: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    match response.get("batchItemFailures") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items
            .iter()
            .map(|item| {
                (item.get("itemIdentifier").and_then(Value::as_str).unwrap_or_default().to_owned(), item.clone())
            })
            .collect()),
        Some(other) => Err(format!("batchItemFailures is not a list: {other}")),
    }
}

/// Reads the function's outcome as Lambda does for SQS.
pub fn settle(outcome: &Outcome, message_ids: &[String], report_batch_item_failures: bool) -> Settlement {
    let failures = match item_failures(outcome, report_batch_item_failures) {
        Ok(failures) => failures,
        Err(reason) => return Settlement::BatchFailed(reason),
    };
    let known: HashSet<&str> = message_ids.iter().map(String::as_str).collect();
    let mut failed = HashSet::new();
    for (id, item) in failures {
        if id.is_empty() || !known.contains(id.as_str()) {
            // An empty, missing or unknown identifier fails the whole batch.
            return Settlement::BatchFailed(format!("invalid itemIdentifier in {item}"));
        }
        failed.insert(id);
    }
    if failed.is_empty() { Settlement::AllSucceeded } else { Settlement::Partial(failed) }
}

/// The SQS event Lambda delivers for a batch.
pub fn sqs_event(messages: &[Message], queue: &QueueInfo, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, Value> = m
                .attributes()
                .map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect())
                .unwrap_or_default();
            let message_attributes: serde_json::Map<String, Value> = m
                .message_attributes()
                .map(|attrs| {
                    attrs
                        .iter()
                        .map(|(name, a)| {
                            (
                                name.clone(),
                                json!({
                                    "stringValue": a.string_value(),
                                    "binaryValue": a.binary_value().map(|b| base64(b.as_ref())),
                                    "stringListValues": [],
                                    "binaryListValues": [],
                                    "dataType": a.data_type(),
                                }),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body().unwrap_or_default(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "md5OfMessageAttributes": m.md5_of_message_attributes(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue.arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Polls `queue` for `pool` while `enabled` is true, until the task is dropped.
/// How many times a batch is delivered before the delivery that settles it.
#[derive(Clone, Default)]
pub struct ExtraDeliveries {
    /// Always once more (the tests' exaggerated at-least-once).
    pub duplicate: bool,
    /// Up to the chaos run's maximum, at random.
    pub chaos: Option<Arc<crate::chaos::Chaos>>,
}

/// The extra deliveries of one batch.
#[derive(Debug, Default)]
struct Extra {
    /// Delivered, one after another, before the delivery that settles the batch.
    before: u8,
    /// Started beside it, each after its delay.
    alongside: Vec<Duration>,
}

impl ExtraDeliveries {
    fn next(&self, batch: &[Message]) -> Extra {
        let bodies = batch.iter().filter_map(Message::body);
        Extra {
            before: u8::from(self.duplicate),
            alongside: self.chaos.as_ref().map(|c| c.extra_deliveries(bodies)).unwrap_or_default(),
        }
    }
}

pub async fn run(
    sqs: aws_sdk_sqs::Client,
    queue: QueueInfo,
    mapping: SqsMapping,
    pool: Arc<FunctionPool>,
    region: String,
    extra: ExtraDeliveries,
    mut enabled: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(mapping.max_concurrency));
    let window = Duration::from_secs(mapping.batching_window_s);
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        // A disabled mapping polls nothing; messages wait in the queue until it is enabled.
        if enabled.wait_for(|on| *on).await.is_err() {
            return;
        }
        let (batch, failure) = collect_batch(&sqs, &queue, &mapping, window, &enabled).await;
        if let Some(e) = failure {
            // What was received before the failure is delivered: dropped, it would stay invisible
            // for the queue's whole visibility timeout (18 minutes for terminations).
            tracing::warn!(queue = %queue.name, error = %e, received = batch.len(), "ReceiveMessage failed; retrying");
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if batch.is_empty() {
            continue;
        }
        let (sqs, queue, pool, region) = (sqs.clone(), queue.clone(), pool.clone(), region.clone());
        let report = mapping.report_batch_item_failures;
        let extra = extra.next(&batch);
        tokio::spawn(async move {
            deliver(&sqs, &queue, &pool, &region, batch, report, extra).await;
            drop(permit);
        });
    }
}

/// Why a receive brought nothing: SQS refused it, or it was not answered in time.
#[derive(Debug, thiserror::Error)]
enum ReceiveFailed {
    #[error("refused: {0}")]
    Refused(Box<dyn std::error::Error + Send + Sync>),
    #[error("no answer within {0:?}")]
    Unanswered(Duration),
}

/// How much longer than its long poll a receive may take: a receive never answered would
/// otherwise stop the mapping for good, with the messages it had collected invisible.
const RECEIVE_GRACE: Duration = Duration::from_secs(10);

/// Receives until the batch is full or the batching window (from the first message) closes.
/// FIFO batches are whatever one receive returns: SQS itself keeps one batch per group in flight.
/// A failed receive ends the batch with what it has, and the failure.
async fn collect_batch(
    sqs: &aws_sdk_sqs::Client,
    queue: &QueueInfo,
    mapping: &SqsMapping,
    window: Duration,
    enabled: &watch::Receiver<bool>,
) -> (Vec<Message>, Option<ReceiveFailed>) {
    let receive = |max: usize, wait: u64| {
        let request = sqs
            .receive_message()
            .queue_url(&queue.url)
            .max_number_of_messages(max.min(10) as i32)
            .wait_time_seconds(wait.min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All");
        async move {
            let out = request.send().await.map_err(|e| ReceiveFailed::Refused(aws_sdk_sqs::Error::from(e).into()))?;
            Ok(out.messages.unwrap_or_default())
        }
    };
    let rules = Batching { size: mapping.batch_size, window, whole_receive: queue.fifo, grace: RECEIVE_GRACE };
    gather(receive, &rules, enabled).await
}

/// How a mapping makes its batches.
struct Batching {
    size: usize,
    window: Duration,
    /// One receive makes the batch (FIFO).
    whole_receive: bool,
    /// See [`RECEIVE_GRACE`].
    grace: Duration,
}

/// The batching loop of [`collect_batch`], over any `receive(max messages, wait seconds)`.
async fn gather<F, Fut>(
    mut receive: F,
    rules: &Batching,
    enabled: &watch::Receiver<bool>,
) -> (Vec<Message>, Option<ReceiveFailed>)
where
    F: FnMut(usize, u64) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Message>, ReceiveFailed>>,
{
    let mut batch: Vec<Message> = Vec::new();
    let mut first_at: Option<Instant> = None;
    loop {
        // Disabled while waiting for a first message: stop polling (a started batch is delivered).
        if batch.is_empty() && !*enabled.borrow() {
            return (batch, None);
        }
        let left = first_at.map_or(rules.window, |t| rules.window.saturating_sub(t.elapsed()));
        if first_at.is_some() && (left.is_zero() || batch.len() >= rules.size) {
            return (batch, None);
        }
        let wait = if batch.is_empty() { 1 } else { left.as_secs().min(20) };
        let limit = Duration::from_secs(wait) + rules.grace;
        let received = match tokio::time::timeout(limit, receive(rules.size - batch.len(), wait)).await {
            Ok(Ok(received)) => received,
            Ok(Err(e)) => return (batch, Some(e)),
            Err(_) => return (batch, Some(ReceiveFailed::Unanswered(limit))),
        };
        if !received.is_empty() && first_at.is_none() {
            first_at = Some(Instant::now());
        }
        let got_none = received.is_empty();
        batch.extend(received);
        if rules.whole_receive && !batch.is_empty() {
            return (batch, None);
        }
        if got_none && !batch.is_empty() && wait == 0 {
            // Less than a second of window left and nothing more came: the window closes.
            tokio::time::sleep(left).await;
        }
    }
}

async fn deliver(
    sqs: &aws_sdk_sqs::Client,
    queue: &QueueInfo,
    pool: &Arc<FunctionPool>,
    region: &str,
    batch: Vec<Message>,
    report_batch_item_failures: bool,
    extra: Extra,
) {
    let ids: Vec<String> = batch.iter().filter_map(|m| m.message_id().map(str::to_owned)).collect();
    let payload = sqs_event(&batch, queue, region).to_string();
    for after in extra.alongside {
        // Another poller got the same messages: a concurrent delivery nobody settles.
        let (pool, payload, size) = (pool.clone(), payload.clone(), batch.len());
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let outcome = pool.invoke_batch(payload.into(), size).await;
            tracing::debug!(function = %pool.name(), ?outcome, "a duplicate delivery");
        });
    }
    for _ in 0..extra.before {
        // At-least-once made visible: the same messages arrive again before they are settled.
        let first = pool.invoke_batch(payload.clone().into(), batch.len()).await;
        tracing::debug!(function = %pool.name(), ?first, "an extra delivery");
    }
    let outcome = pool.invoke_batch(payload.into(), batch.len()).await;
    let settlement = settle(&outcome, &ids, report_batch_item_failures);
    let keep: HashSet<String> = match &settlement {
        Settlement::AllSucceeded => HashSet::new(),
        Settlement::Partial(failed) => failed.clone(),
        Settlement::BatchFailed(reason) => {
            tracing::warn!(function = %pool.name(), queue = %queue.name, records = batch.len(), %reason, "batch failed; messages return after the visibility timeout");
            return;
        }
    };
    if !keep.is_empty() {
        tracing::info!(function = %pool.name(), queue = %queue.name, failed = keep.len(), of = batch.len(), "partial batch failure");
    }
    let done: Vec<&Message> = batch.iter().filter(|m| m.message_id().is_some_and(|id| !keep.contains(id))).collect();
    for chunk in done.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        match sqs.delete_message_batch().queue_url(&queue.url).set_entries(Some(entries)).send().await {
            Ok(out) if !out.failed().is_empty() => {
                tracing::warn!(queue = %queue.name, failed = out.failed().len(), "some deletes failed");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(queue = %queue.name, error = %e, "DeleteMessageBatch failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    fn response(v: Value) -> Outcome {
        Outcome::Response(v.to_string().into())
    }

    #[test]
    fn partial_batch_response_rules() {
        assert_eq!(settle(&response(json!({ "batchItemFailures": [] })), &ids(), true), Settlement::AllSucceeded);
        assert_eq!(settle(&response(Value::Null), &ids(), true), Settlement::AllSucceeded);
        assert_eq!(
            settle(&response(json!({ "batchItemFailures": [{ "itemIdentifier": "b" }] })), &ids(), true),
            Settlement::Partial(["b".to_owned()].into())
        );
        for bad in [json!(""), json!("zzz"), Value::Null] {
            let r = response(json!({ "batchItemFailures": [{ "itemIdentifier": bad }] }));
            assert!(matches!(settle(&r, &ids(), true), Settlement::BatchFailed(_)), "{bad}");
        }
        assert!(matches!(settle(&Outcome::Timeout, &ids(), true), Settlement::BatchFailed(_)));
        let failing = response(json!({ "batchItemFailures": [{ "itemIdentifier": "b" }] }));
        assert_eq!(settle(&failing, &ids(), false), Settlement::AllSucceeded);
    }

    fn messages(n: usize) -> Vec<Message> {
        (0..n).map(|i| Message::builder().message_id(format!("m{i}")).body("{}").build()).collect()
    }

    fn rules() -> Batching {
        Batching {
            size: 100,
            window: Duration::from_millis(900),
            whole_receive: false,
            grace: Duration::from_millis(50),
        }
    }

    #[tokio::test]
    async fn a_receive_that_fails_part_way_delivers_what_was_received() {
        let (_on, enabled) = watch::channel(true);
        let mut calls = 0;
        let receive = |_max: usize, _wait: u64| {
            calls += 1;
            let answer =
                if calls == 1 { Ok(messages(7)) } else { Err(ReceiveFailed::Refused("connection reset".into())) };
            async move { answer }
        };
        let (batch, failure) = gather(receive, &rules(), &enabled).await;
        assert_eq!(batch.len(), 7, "the messages received before the failure are kept");
        assert!(matches!(failure, Some(ReceiveFailed::Refused(_))), "{failure:?}");
    }

    #[tokio::test]
    async fn a_receive_never_answered_ends_the_batch_instead_of_stopping_the_mapping() {
        let (_on, enabled) = watch::channel(true);
        let mut calls = 0;
        let receive = |_max: usize, _wait: u64| {
            calls += 1;
            let first = calls == 1;
            async move {
                if first {
                    return Ok(messages(3));
                }
                std::future::pending::<()>().await;
                Ok(Vec::new())
            }
        };
        let (batch, failure) = gather(receive, &rules(), &enabled).await;
        assert_eq!(batch.len(), 3);
        assert!(matches!(failure, Some(ReceiveFailed::Unanswered(_))), "{failure:?}");
    }

    #[tokio::test]
    async fn a_batch_is_full_at_its_size_and_asks_only_for_what_it_lacks() {
        let (_on, enabled) = watch::channel(true);
        let mut asked = Vec::new();
        let receive = |max: usize, _wait: u64| {
            asked.push(max);
            let n = max.min(10);
            async move { Ok(messages(n)) }
        };
        let rules = Batching { size: 25, ..rules() };
        let (batch, failure) = gather(receive, &rules, &enabled).await;
        assert_eq!(batch.len(), 25);
        assert!(failure.is_none());
        assert_eq!(asked, vec![25, 15, 5]);
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
