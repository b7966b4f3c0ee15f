//! A counting pass-through in front of moto: the functions reach DynamoDB and SQS through it, so
//! every call they make is counted by operation (and by item, for batch operations), without
//! touching their code. It also routes by service, so that DynamoDB and SQS can each have their
//! own moto process (moto answers one request at a time per process).

use local_stack::passthrough::{Operation, Passthrough};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Calls of one operation, the items they carried (a batch call carries several), and how long
/// moto took to answer them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct OpCount {
    pub calls: u64,
    pub items: u64,
    pub total_ms: f64,
    pub max_ms: f64,
}

pub type Counts = BTreeMap<String, OpCount>;

pub struct CountingProxy {
    pub url: String,
    counts: Arc<Mutex<Counts>>,
    _server: Passthrough,
}

impl CountingProxy {
    /// Forwards DynamoDB calls to `dynamodb` and everything else to `sqs`.
    pub async fn start(dynamodb: &str, sqs: &str) -> std::io::Result<CountingProxy> {
        let counts = Arc::new(Mutex::new(Counts::new()));
        let (dynamodb, sqs) = (dynamodb.trim_end_matches('/').to_owned(), sqs.trim_end_matches('/').to_owned());
        let route =
            Arc::new(move |op: &Operation| if op.service == "dynamodb" { dynamodb.clone() } else { sqs.clone() });
        let counted = counts.clone();
        let observe = Arc::new(
            move |op: &Operation, body: &[u8], _: Option<axum::http::StatusCode>, took: std::time::Duration| {
                let name = operation(op);
                let carried = items(&name, body);
                let took = took.as_secs_f64() * 1000.0;
                let mut counts = counted.lock().unwrap_or_else(PoisonError::into_inner);
                let entry = counts.entry(name).or_default();
                entry.calls += 1;
                entry.items += carried;
                entry.total_ms += took;
                entry.max_ms = entry.max_ms.max(took);
            },
        );
        let server = Passthrough::start(route, observe).await?;
        Ok(CountingProxy { url: server.url.clone(), counts, _server: server })
    }

    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// `DynamoDB.PutItem`, `SQS.SendMessageBatch`: the names the bench's report uses.
pub fn operation(op: &Operation) -> String {
    let service = match op.service.as_str() {
        "dynamodb" => "DynamoDB",
        "sqs" => "SQS",
        other => other,
    };
    format!("{service}.{}", op.name)
}

/// Items a request carries: keys or writes of a batch, entries of a message batch; 1 otherwise.
pub fn items(operation: &str, body: &[u8]) -> u64 {
    let count = |v: &Value| v.as_array().map_or(0, |a| a.len() as u64);
    let per_table = |body: &Value, inner: Option<&str>| -> u64 {
        body["RequestItems"]
            .as_object()
            .map_or(0, |tables| tables.values().map(|t| inner.map_or_else(|| count(t), |k| count(&t[k]))).sum())
    };
    let Ok(body) = serde_json::from_slice::<Value>(body) else { return 1 };
    match operation {
        "DynamoDB.BatchGetItem" => per_table(&body, Some("Keys")),
        "DynamoDB.BatchWriteItem" => per_table(&body, None),
        "DynamoDB.TransactWriteItems" | "DynamoDB.TransactGetItems" => count(&body["TransactItems"]),
        "SQS.SendMessageBatch" | "SQS.DeleteMessageBatch" | "SQS.ChangeMessageVisibilityBatch" | "events.PutEvents" => {
            count(&body["Entries"])
        }
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_by_service_and_batches_counted_by_item() {
        let op = |service: &str, name: &str| Operation { service: service.into(), name: name.into() };
        assert_eq!(operation(&op("dynamodb", "BatchGetItem")), "DynamoDB.BatchGetItem");
        assert_eq!(operation(&op("sqs", "SendMessageBatch")), "SQS.SendMessageBatch");
        let get = br#"{"RequestItems":{"t":{"Keys":[{"pk":{"S":"a"}},{"pk":{"S":"b"}}],"ConsistentRead":true}}}"#;
        assert_eq!(items("DynamoDB.BatchGetItem", get), 2);
        let write = br#"{"RequestItems":{"t":[{"PutRequest":{}},{"PutRequest":{}},{"DeleteRequest":{}}]}}"#;
        assert_eq!(items("DynamoDB.BatchWriteItem", write), 3);
        assert_eq!(items("SQS.SendMessageBatch", br#"{"Entries":[{},{}]}"#), 2);
        assert_eq!(items("DynamoDB.PutItem", br#"{"Item":{}}"#), 1);
    }
}
