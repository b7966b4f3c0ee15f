//! A counting pass-through in front of moto: the functions reach DynamoDB and SQS through it, so
//! every call they make is counted by operation (and by item, for batch operations), without
//! touching their code. It also routes by service, so that DynamoDB and SQS can each have their
//! own moto process (moto answers one request at a time per process).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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

#[derive(Clone)]
struct Proxy {
    dynamodb: String,
    sqs: String,
    client: reqwest::Client,
    counts: Arc<Mutex<Counts>>,
}

pub struct CountingProxy {
    pub url: String,
    counts: Arc<Mutex<Counts>>,
    server: tokio::task::AbortHandle,
}

/// The server stops with its run; the next run starts its own.
impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl CountingProxy {
    /// Forwards DynamoDB calls to `dynamodb` and everything else to `sqs`.
    pub async fn start(dynamodb: &str, sqs: &str) -> std::io::Result<CountingProxy> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let counts = Arc::new(Mutex::new(Counts::new()));
        let proxy = Proxy {
            dynamodb: dynamodb.trim_end_matches('/').to_owned(),
            sqs: sqs.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            counts: counts.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(proxy);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "counting proxy stopped");
            }
        })
        .abort_handle();
        Ok(CountingProxy { url, counts, server })
    }

    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// `DynamoDB.PutItem`, `SQS.SendMessageBatch`: the service's short name and the operation, from
/// the JSON protocols' `X-Amz-Target`.
pub fn operation(headers: &HeaderMap) -> String {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("unknown.unknown");
    let (service, op) = target.split_once('.').unwrap_or(("unknown", target));
    let service = if service.starts_with("DynamoDB") {
        "DynamoDB"
    } else if service.starts_with("AmazonSQS") {
        "SQS"
    } else {
        service
    };
    format!("{service}.{op}")
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
        "SQS.SendMessageBatch" | "SQS.DeleteMessageBatch" | "SQS.ChangeMessageVisibilityBatch" => {
            count(&body["Entries"])
        }
        _ => 1,
    }
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let op = operation(&parts.headers);
    let carried = items(&op, &body);
    let started = std::time::Instant::now();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let base = if op.starts_with("DynamoDB.") { &proxy.dynamodb } else { &proxy.sqs };
    let mut upstream = proxy.client.request(parts.method, format!("{base}{path}"));
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    let answer = async {
        let answer = upstream.body(body).send().await?;
        let (status, headers) = (answer.status(), answer.headers().clone());
        Ok::<_, reqwest::Error>((status, headers, answer.bytes().await?))
    }
    .await;
    {
        let took = started.elapsed().as_secs_f64() * 1000.0;
        let mut counts = proxy.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = counts.entry(op).or_default();
        entry.calls += 1;
        entry.items += carried;
        entry.total_ms += took;
        entry.max_ms = entry.max_ms.max(took);
    }
    match answer {
        Ok((status, headers, bytes)) => {
            let mut response = Response::new(Body::from(bytes));
            *response.status_mut() = status;
            for (name, value) in &headers {
                if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("counting proxy: {e}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_by_service_and_batches_counted_by_item() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", "DynamoDB_20120810.BatchGetItem".parse().unwrap());
        assert_eq!(operation(&headers), "DynamoDB.BatchGetItem");
        headers.insert("x-amz-target", "AmazonSQS.SendMessageBatch".parse().unwrap());
        assert_eq!(operation(&headers), "SQS.SendMessageBatch");
        let get = br#"{"RequestItems":{"t":{"Keys":[{"pk":{"S":"a"}},{"pk":{"S":"b"}}],"ConsistentRead":true}}}"#;
        assert_eq!(items("DynamoDB.BatchGetItem", get), 2);
        let write = br#"{"RequestItems":{"t":[{"PutRequest":{}},{"PutRequest":{}},{"DeleteRequest":{}}]}}"#;
        assert_eq!(items("DynamoDB.BatchWriteItem", write), 3);
        assert_eq!(items("SQS.SendMessageBatch", br#"{"Entries":[{},{}]}"#), 2);
        assert_eq!(items("DynamoDB.PutItem", br#"{"Item":{}}"#), 1);
    }
}
