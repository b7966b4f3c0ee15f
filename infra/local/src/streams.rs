//! Plays the DynamoDB stream event source mapping: reads each shard of the table's stream in
//! order, keeps the records the filter matches, makes batches (batch size, batching window),
//! invokes the function one batch at a time per shard, and settles each batch as Lambda does:
//! from the partial batch response's first failed record; a batch that failed as a whole is
//! split in two (bisect) and retried; after the retries, or past the records' maximum age, a
//! description of the records given up on goes to the failure destination and the shard moves
//! on.
//!
//! Not played: shard splits' parent-before-child order (moto and dynoxide keep one shard per
//! table).

use crate::provision::QueueInfo;
use crate::runtime::{FunctionPool, Outcome};
use crate::stack::StreamMapping;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How the mapping concluded a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSettlement {
    AllSucceeded,
    /// The records before this index succeeded; the batch is retried from it.
    RetryFrom(usize),
    /// Nothing of the batch counts as done.
    BatchFailed(String),
}

/// Reads the function's outcome as Lambda does for a stream: the lowest sequence number named in
/// `batchItemFailures` is where the retry starts; a missing, empty or unknown identifier fails
/// the whole batch.
pub fn settle(outcome: &Outcome, sequence_numbers: &[String], report_batch_item_failures: bool) -> StreamSettlement {
    let failures = match crate::esm::item_failures(outcome, report_batch_item_failures) {
        Ok(failures) => failures,
        Err(reason) => return StreamSettlement::BatchFailed(reason),
    };
    let mut first: Option<usize> = None;
    for (id, item) in failures {
        match sequence_numbers.iter().position(|s| *s == id) {
            Some(i) if !id.is_empty() => first = Some(first.map_or(i, |f| f.min(i))),
            _ => return StreamSettlement::BatchFailed(format!("invalid itemIdentifier in {item}")),
        }
    }
    first.map_or(StreamSettlement::AllSucceeded, StreamSettlement::RetryFrom)
}

/// Whether a record passes the mapping's filter (the template's FilterCriteria on the keys).
pub fn matches(record: &Record, mapping: &StreamMapping) -> bool {
    let key = |name: &str| {
        record.dynamodb().and_then(|d| d.keys()).and_then(|k| k.get(name)).and_then(|v| v.as_s().ok()).cloned()
    };
    let sort_ok = mapping.filter_sort_key.as_ref().is_none_or(|want| key("sk").as_ref() == Some(want));
    let prefix_ok = mapping.filter_pk_prefix.as_ref().is_none_or(|p| key("pk").is_some_and(|pk| pk.starts_with(p)));
    sort_ok && prefix_ok
}

/// A stream record as Lambda delivers it (DynamoDB JSON images).
pub fn record_json(record: &Record, stream_arn: &str, region: &str) -> Value {
    let mut dynamodb = Map::new();
    if let Some(d) = record.dynamodb() {
        if let Some(at) = d.approximate_creation_date_time() {
            dynamodb.insert("ApproximateCreationDateTime".into(), json!(at.as_secs_f64().floor()));
        }
        for (name, image) in [("Keys", d.keys()), ("NewImage", d.new_image()), ("OldImage", d.old_image())] {
            if let Some(image) = image {
                dynamodb
                    .insert(name.into(), Value::Object(image.iter().map(|(k, v)| (k.clone(), attribute(v))).collect()));
            }
        }
        dynamodb.insert("SequenceNumber".into(), json!(d.sequence_number()));
        dynamodb.insert("SizeBytes".into(), json!(d.size_bytes().unwrap_or_default()));
        dynamodb.insert("StreamViewType".into(), json!(d.stream_view_type().map(|v| v.as_str())));
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

/// An attribute value in DynamoDB's JSON (`{"S": "..."}`).
fn attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": crate::esm::base64(b.as_ref()) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(n) => json!({ "NULL": n }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::Bs(v) => json!({ "BS": v.iter().map(|b| crate::esm::base64(b.as_ref())).collect::<Vec<_>>() }),
        AttributeValue::L(items) => json!({ "L": items.iter().map(attribute).collect::<Vec<_>>() }),
        AttributeValue::M(map) => {
            json!({ "M": map.iter().map(|(k, v)| (k.clone(), attribute(v))).collect::<Map<String, Value>>() })
        }
        _ => Value::Null,
    }
}

/// Everything one shard's poller needs.
#[derive(Clone)]
pub struct StreamSource {
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub stream_arn: String,
    pub mapping: StreamMapping,
    pub failures: QueueInfo,
    pub pool: Arc<FunctionPool>,
    pub region: String,
}

/// How often the stream is described again for new shards, and an idle shard read again.
const DESCRIBE_EVERY: Duration = Duration::from_secs(5);
const IDLE_POLL: Duration = Duration::from_millis(250);

/// Reads the stream for the function until the task is dropped: a poller per shard.
pub async fn run(source: StreamSource) {
    let mut started: BTreeSet<String> = BTreeSet::new();
    // Owned by this task: when the stack drops it, its pollers stop with it.
    let mut pollers = tokio::task::JoinSet::new();
    loop {
        match source.streams.describe_stream().stream_arn(&source.stream_arn).send().await {
            Ok(out) => {
                let shards = out.stream_description().map(|d| d.shards().to_vec()).unwrap_or_default();
                for shard in shards {
                    let Some(id) = shard.shard_id().map(str::to_owned) else { continue };
                    if started.insert(id.clone()) {
                        pollers.spawn(poll_shard(source.clone(), id));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %aws_sdk_dynamodbstreams::Error::from(e), "DescribeStream failed"),
        }
        tokio::time::sleep(DESCRIBE_EVERY).await;
    }
}

/// One shard, in order: at most one batch in flight.
async fn poll_shard(source: StreamSource, shard_id: String) {
    let position = ShardIteratorType::from(source.mapping.starting_position.as_str());
    let mut iterator = loop {
        let out = source
            .streams
            .get_shard_iterator()
            .stream_arn(&source.stream_arn)
            .shard_id(&shard_id)
            .shard_iterator_type(position.clone())
            .send()
            .await;
        match out.map(|o| o.shard_iterator().map(str::to_owned)) {
            Ok(Some(iterator)) => break Some(iterator),
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(shard_id, error = %aws_sdk_dynamodbstreams::Error::from(e), "GetShardIterator failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mapping = &source.mapping;
    let window = Duration::from_secs(mapping.batching_window_s);
    let mut buffer: VecDeque<(Record, Instant)> = VecDeque::new();
    // Bisection narrows the batch; retries count against the batch's first record.
    let mut limit = mapping.batch_size;
    let mut attempts: u32 = 0;
    loop {
        // Read until the batch is full, the window since the oldest record closes, or the shard ends.
        while let Some(current) = iterator.clone() {
            let full = buffer.len() >= limit;
            let window_closed = buffer.front().is_some_and(|(_, at)| at.elapsed() >= window);
            if full || window_closed {
                break;
            }
            match source.streams.get_records().shard_iterator(&current).limit(1000).send().await {
                Ok(out) => {
                    iterator = out.next_shard_iterator().map(str::to_owned);
                    let now = Instant::now();
                    let read = out.records().iter().filter(|r| matches(r, mapping)).cloned().map(|r| (r, now));
                    let before = buffer.len();
                    buffer.extend(read);
                    if buffer.len() == before {
                        tokio::time::sleep(IDLE_POLL).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(shard_id, error = %aws_sdk_dynamodbstreams::Error::from(e), "GetRecords failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        if buffer.is_empty() {
            if iterator.is_none() {
                return; // a closed shard, read to its end
            }
            continue;
        }
        give_up_old_records(&source, &shard_id, &mut buffer).await;
        if buffer.is_empty() {
            continue;
        }
        let batch: Vec<Record> = buffer.iter().take(limit).map(|(r, _)| r.clone()).collect();
        let sequence_numbers: Vec<String> = batch
            .iter()
            .map(|r| r.dynamodb().and_then(|d| d.sequence_number()).unwrap_or_default().to_owned())
            .collect();
        let records: Vec<Value> = batch.iter().map(|r| record_json(r, &source.stream_arn, &source.region)).collect();
        let payload = json!({ "Records": records }).to_string();
        let outcome = source.pool.invoke_batch(payload.into(), batch.len()).await;
        // The records of the batch that failed (the head of the buffer).
        let failed = match settle(&outcome, &sequence_numbers, mapping.report_batch_item_failures) {
            StreamSettlement::AllSucceeded => {
                buffer.drain(..batch.len());
                (attempts, limit) = (0, mapping.batch_size);
                continue;
            }
            StreamSettlement::RetryFrom(i) => {
                tracing::info!(function = %source.pool.name(), done = i, of = batch.len(), "stream batch failed part-way; retried from the first failed record");
                buffer.drain(..i);
                attempts = if i == 0 { attempts + 1 } else { 1 };
                batch.len() - i
            }
            StreamSettlement::BatchFailed(reason) => {
                tracing::warn!(function = %source.pool.name(), records = batch.len(), %reason, "stream batch failed");
                attempts += 1;
                if mapping.bisect_on_error && batch.len() > 1 {
                    limit = batch.len().div_ceil(2);
                }
                batch.len()
            }
        };
        if attempts > mapping.maximum_retry_attempts {
            let given_up: Vec<Record> = buffer.drain(..failed).map(|(r, _)| r).collect();
            send_failure(&source, &shard_id, &given_up, "RetryAttemptsExhausted", attempts).await;
            (attempts, limit) = (0, mapping.batch_size);
            continue;
        }
        // Lambda retries a failing batch at once and then backs off; a short pause here.
        tokio::time::sleep(Duration::from_millis(100 * u64::from(attempts.min(20)))).await;
    }
}

/// Records older than the mapping's maximum age go to the failure destination unprocessed.
async fn give_up_old_records(source: &StreamSource, shard_id: &str, buffer: &mut VecDeque<(Record, Instant)>) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
    let too_old = |r: &Record| {
        r.dynamodb()
            .and_then(|d| d.approximate_creation_date_time())
            .is_some_and(|at| now - at.as_secs_f64() > source.mapping.maximum_record_age_s as f64)
    };
    let old = buffer.iter().take_while(|(r, _)| too_old(r)).count();
    if old > 0 {
        let given_up: Vec<Record> = buffer.drain(..old).map(|(r, _)| r).collect();
        send_failure(source, shard_id, &given_up, "RecordAgeExceeded", 0).await;
    }
}

/// What Lambda sends to a stream mapping's on-failure destination: where the records are, not
/// the records (they stay in the stream for 24 hours).
async fn send_failure(source: &StreamSource, shard_id: &str, records: &[Record], condition: &str, invokes: u32) {
    let sequence =
        |r: Option<&Record>| r.and_then(|r| r.dynamodb()).and_then(|d| d.sequence_number()).map(str::to_owned);
    let body = json!({
        "requestContext": {
            "condition": condition,
            "functionArn": format!("arn:aws:lambda:{}:123456789012:function:{}", source.region, source.pool.name()),
            "approximateInvokeCount": invokes,
        },
        "version": "1.0",
        "timestamp": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": sequence(records.first()),
            "endSequenceNumber": sequence(records.last()),
            "batchSize": records.len(),
            "streamArn": source.stream_arn,
        }
    });
    tracing::warn!(function = %source.pool.name(), condition, records = records.len(), "stream records given up: sent to the failure destination");
    if let Err(e) =
        source.sqs.send_message().queue_url(&source.failures.url).message_body(body.to_string()).send().await
    {
        tracing::error!(error = %aws_sdk_sqs::Error::from(e), "the failure destination refused the description");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn seqs() -> Vec<String> {
        ["10", "11", "12"].map(String::from).to_vec()
    }

    fn answer(v: Value) -> Outcome {
        Outcome::Response(v.to_string().into())
    }

    #[test]
    fn a_stream_batch_is_retried_from_its_lowest_failed_sequence_number() {
        let partial = answer(json!({"batchItemFailures": [{"itemIdentifier": "12"}, {"itemIdentifier": "11"}]}));
        assert_eq!(settle(&partial, &seqs(), true), StreamSettlement::RetryFrom(1));
        assert_eq!(settle(&answer(json!({"batchItemFailures": []})), &seqs(), true), StreamSettlement::AllSucceeded);
        assert_eq!(settle(&answer(json!({})), &seqs(), true), StreamSettlement::AllSucceeded);
        let unknown = answer(json!({"batchItemFailures": [{"itemIdentifier": "99"}]}));
        assert!(matches!(settle(&unknown, &seqs(), true), StreamSettlement::BatchFailed(_)));
        assert!(matches!(settle(&Outcome::Timeout, &seqs(), true), StreamSettlement::BatchFailed(_)));
        assert_eq!(settle(&partial, &seqs(), false), StreamSettlement::AllSucceeded);
    }

    #[test]
    fn records_become_lambdas_dynamodb_event_and_the_filter_keeps_employee_records() {
        use aws_sdk_dynamodbstreams::types::StreamRecord;
        let record = |pk: &str, sk: &str| {
            let keys = [("pk", pk), ("sk", sk)].map(|(k, v)| (k.to_owned(), AttributeValue::S(v.to_owned())));
            let mut image: std::collections::HashMap<String, AttributeValue> = keys.clone().into();
            image.insert("version".into(), AttributeValue::N("3".into()));
            image.insert("tags".into(), AttributeValue::M([("Team".to_owned(), AttributeValue::S("x".into()))].into()));
            Record::builder()
                .event_id("e1")
                .event_name(aws_sdk_dynamodbstreams::types::OperationType::Insert)
                .event_version("1.1")
                .dynamodb(
                    StreamRecord::builder()
                        .set_keys(Some(keys.into()))
                        .set_new_image(Some(image))
                        .sequence_number("10")
                        .approximate_creation_date_time(aws_sdk_dynamodbstreams::primitives::DateTime::from_secs(
                            1_800_000_000,
                        ))
                        .build(),
                )
                .build()
        };
        let mapping: StreamMapping = serde_json::from_value(json!({
            "batch_size": 100, "starting_position": "TRIM_HORIZON", "maximum_retry_attempts": 1,
            "maximum_record_age_s": 3600, "filter_sort_key": "STATE", "filter_pk_prefix": "EMP#",
            "on_failure_queue": "q"
        }))
        .unwrap();
        assert!(matches(&record("EMP#E1", "STATE"), &mapping));
        assert!(!matches(&record("GUARD#terminations", "STATE"), &mapping));
        assert!(!matches(&record("EMP#E1", "DRIFT"), &mapping));
        let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(
            json!({ "Records": [record_json(&record("EMP#E1", "STATE"), "arn:s", "us-east-1")] }),
        )
        .unwrap();
        let change = &event.records[0].change;
        assert_eq!(change.sequence_number.as_deref(), Some("10"));
        assert_eq!(change.new_image.get("version"), Some(&serde_dynamo::AttributeValue::N("3".into())));
        assert_eq!(change.approximate_creation_date_time.timestamp(), 1_800_000_000);
        assert!(change.old_image.is_empty());
    }
}
