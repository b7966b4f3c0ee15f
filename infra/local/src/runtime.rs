//! Runs a function's real binary as Lambda does: N instances, each a process talking to its own
//! Lambda Runtime API endpoint served here. An invocation that times out kills its instance, and
//! a crashed instance is restarted, as the Lambda service would.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{Notify, mpsc, oneshot};

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The handler's response payload.
    Response(Bytes),
    /// The handler reported an error (`errorType`, `errorMessage`).
    FunctionError(Value),
    /// No response within the function's timeout: the instance was stopped.
    Timeout,
    /// The process exited while handling the invocation.
    Crashed,
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Response(_))
    }
}

/// What a function was asked and how it did, for benchmarks and the status output.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FunctionStats {
    pub invocations: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub crashes: u64,
    /// Per instance start: milliseconds from process start to its first Runtime API poll.
    pub init_ms: Vec<f64>,
    /// Handler time of each invocation, in milliseconds.
    pub duration_ms: Vec<f64>,
    /// Records per SQS batch delivered.
    pub batch_sizes: Vec<usize>,
    /// Handler time of each SQS batch, in the order of `batch_sizes`.
    pub batch_duration_ms: Vec<f64>,
    /// Highest resident set size (VmHWM) seen of any instance, in KiB.
    pub peak_rss_kib: u64,
    /// Sums of the metrics the function wrote in CloudWatch embedded metric format (stdout
    /// lines with an `_aws.CloudWatchMetrics` directive), by metric name, as CloudWatch would
    /// collect them.
    pub metrics: BTreeMap<String, f64>,
}

struct Invocation {
    payload: Bytes,
    reply: oneshot::Sender<Outcome>,
    started: oneshot::Sender<(usize, Instant)>,
}

struct InFlight {
    instance: usize,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Clone)]
struct Shared {
    name: String,
    arn: String,
    timeout: Duration,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Invocation>>>,
    in_flight: Arc<Mutex<HashMap<String, InFlight>>>,
    stats: Arc<Mutex<FunctionStats>>,
    /// When each instance's process started, until its first poll.
    booting: Arc<Mutex<BTreeMap<usize, Instant>>>,
    /// Process id of each running instance, to read its peak memory.
    pids: Arc<Mutex<BTreeMap<usize, u32>>>,
}

#[derive(Clone)]
struct InstanceState {
    shared: Shared,
    index: usize,
}

/// A running function: its instances and the queue of invocations they take from.
pub struct FunctionPool {
    shared: Shared,
    sender: mpsc::Sender<Invocation>,
    kills: Vec<Arc<Notify>>,
    shutdown: Arc<Notify>,
    chaos: Option<Arc<crate::chaos::Chaos>>,
}

/// How to start a function's processes.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub name: String,
    pub binary: PathBuf,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub instances: usize,
    pub environment: BTreeMap<String, String>,
    pub region: String,
    /// Processes killed mid-invocation at random (the chaos run).
    pub chaos: Option<Arc<crate::chaos::Chaos>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FunctionPool {
    pub async fn start(spec: FunctionSpec) -> std::io::Result<Arc<FunctionPool>> {
        let (sender, receiver) = mpsc::channel(1024);
        let shared = Shared {
            name: spec.name.clone(),
            arn: format!("arn:aws:lambda:{}:000000000000:function:{}", spec.region, spec.name),
            timeout: spec.timeout,
            queue: Arc::new(tokio::sync::Mutex::new(receiver)),
            in_flight: Arc::default(),
            stats: Arc::default(),
            booting: Arc::default(),
            pids: Arc::default(),
        };
        let shutdown = Arc::new(Notify::new());
        let mut kills = Vec::new();
        for index in 0..spec.instances.max(1) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let state = InstanceState { shared: shared.clone(), index };
            let app = axum::Router::new()
                .route("/2018-06-01/runtime/invocation/next", get(next))
                .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
                .route("/2018-06-01/runtime/invocation/{id}/error", post(report_error))
                .route("/2018-06-01/runtime/init/error", post(init_error))
                .with_state(state);
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "runtime API server stopped");
                }
            });
            let kill = Arc::new(Notify::new());
            kills.push(kill.clone());
            tokio::spawn(supervise(spec.clone(), shared.clone(), index, addr.to_string(), kill, shutdown.clone()));
        }
        Ok(Arc::new(FunctionPool { shared, sender, kills, shutdown, chaos: spec.chaos.clone() }))
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn stats(&self) -> FunctionStats {
        let pids: Vec<u32> = lock(&self.shared.pids).values().copied().collect();
        let mut stats = lock(&self.shared.stats);
        for pid in pids {
            stats.peak_rss_kib = stats.peak_rss_kib.max(peak_rss_kib(pid).unwrap_or(0));
        }
        stats.clone()
    }

    /// Invokes the function with an SQS batch of `size` records.
    pub async fn invoke_batch(&self, payload: Bytes, size: usize) -> Outcome {
        self.invoke_recorded(payload, Some(size)).await
    }

    /// Invokes the function and waits for the outcome; the timeout runs from the moment an
    /// instance takes the invocation, as Lambda's does.
    pub async fn invoke(&self, payload: Bytes) -> Outcome {
        self.invoke_recorded(payload, None).await
    }

    async fn invoke_recorded(&self, payload: Bytes, batch_size: Option<usize>) -> Outcome {
        let (reply, answer) = oneshot::channel();
        let (started, taken) = oneshot::channel();
        // Kept to say whom a chaos kill hit (a cheap clone: the bytes are shared).
        let sent = self.chaos.as_ref().map(|_| payload.clone());
        if self.sender.send(Invocation { payload, reply, started }).await.is_err() {
            return Outcome::Crashed;
        }
        let Ok((instance, at)) = taken.await else {
            return Outcome::Crashed;
        };
        // A chaos kill is a timeout that comes early and reads as a crash.
        let kill_at = self.chaos.as_ref().and_then(|c| c.kill_after()).map(|after| at + after);
        let deadline = kill_at.map_or(at + self.shared.timeout, |kill| kill.min(at + self.shared.timeout));
        let outcome = match tokio::time::timeout_at(deadline.into(), answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Outcome::Crashed,
            Err(_) if kill_at == Some(deadline) => {
                tracing::info!(function = %self.shared.name, instance, "chaos: killing the instance mid-invocation");
                lock(&self.shared.in_flight).retain(|_, f| f.instance != instance);
                if let Some(kill) = self.kills.get(instance) {
                    kill.notify_one();
                }
                if let Some(chaos) = &self.chaos {
                    chaos.killed(&self.shared.name, sent.as_deref().unwrap_or_default());
                }
                Outcome::Crashed
            }
            Err(_) => {
                tracing::warn!(function = %self.shared.name, instance, "invocation timed out; stopping the instance");
                lock(&self.shared.in_flight).retain(|_, f| f.instance != instance);
                if let Some(kill) = self.kills.get(instance) {
                    kill.notify_one();
                }
                Outcome::Timeout
            }
        };
        let mut stats = lock(&self.shared.stats);
        let took_ms = at.elapsed().as_secs_f64() * 1000.0;
        stats.invocations += 1;
        stats.duration_ms.push(took_ms);
        if let Some(size) = batch_size {
            stats.batch_sizes.push(size);
            stats.batch_duration_ms.push(took_ms);
        }
        match &outcome {
            Outcome::Response(_) => {}
            Outcome::FunctionError(_) => stats.errors += 1,
            Outcome::Timeout => stats.timeouts += 1,
            Outcome::Crashed => stats.crashes += 1,
        }
        outcome
    }

    /// Stops every instance.
    pub fn stop(&self) {
        self.shutdown.notify_waiters();
    }
}

impl Drop for FunctionPool {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Keeps one instance's process running until shutdown.
async fn supervise(
    spec: FunctionSpec,
    shared: Shared,
    index: usize,
    runtime_api: String,
    kill: Arc<Notify>,
    shutdown: Arc<Notify>,
) {
    let mut restarts = 0u32;
    loop {
        let mut command = Command::new(&spec.binary);
        command
            .envs(&spec.environment)
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", spec.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{index}"))
            .env("AWS_REGION", &spec.region)
            .env("AWS_DEFAULT_REGION", &spec.region)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        crate::process::die_with_parent(&mut command);
        lock(&shared.booting).insert(index, Instant::now());
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                tracing::error!(function = %spec.name, binary = %spec.binary.display(), error = %e, "cannot start function");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = shutdown.notified() => return,
                }
            }
        };
        if let Some(pid) = child.id() {
            lock(&shared.pids).insert(index, pid);
        }
        let tag = format!("{}/{index}", spec.name);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward(tag.clone(), BufReader::new(out), Some(shared.stats.clone())));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward(tag.clone(), BufReader::new(err), None));
        }
        let status = tokio::select! {
            status = child.wait() => Some(status),
            _ = kill.notified() => None,
            _ = shutdown.notified() => {
                let _ = child.kill().await;
                return;
            }
        };
        if let Some(pid) = lock(&shared.pids).remove(&index) {
            // Last chance to read its peak before the process is reaped.
            let peak = peak_rss_kib(pid).unwrap_or(0);
            let mut stats = lock(&shared.stats);
            stats.peak_rss_kib = stats.peak_rss_kib.max(peak);
        }
        if status.is_none() {
            let _ = child.kill().await;
        }
        tracing::warn!(function = %spec.name, instance = index, ?status, "instance stopped; restarting");
        // Whatever it was handling is lost, as when a Lambda sandbox dies.
        let lost: Vec<InFlight> = {
            let mut in_flight = lock(&shared.in_flight);
            let ids: Vec<String> =
                in_flight.iter().filter(|(_, f)| f.instance == index).map(|(id, _)| id.clone()).collect();
            ids.into_iter().filter_map(|id| in_flight.remove(&id)).collect()
        };
        for f in lost {
            let _ = f.reply.send(Outcome::Crashed);
        }
        restarts += 1;
        let backoff = Duration::from_millis(100 * u64::from(restarts.min(20)));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {},
            _ = shutdown.notified() => return,
        }
    }
}

/// The process's peak resident set size (VmHWM), from /proc.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Echoes a function's output, tagged; from stdout, also collects its embedded metrics.
async fn forward<R: tokio::io::AsyncRead + Unpin>(
    tag: String,
    reader: BufReader<R>,
    metrics: Option<Arc<Mutex<FunctionStats>>>,
) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(stats) = &metrics {
            for (name, value) in embedded_metrics(&line) {
                *lock(stats).metrics.entry(name).or_default() += value;
            }
        }
        eprintln!("[{tag}] {line}");
    }
}

/// The metrics of one line in CloudWatch embedded metric format: each name its directive lists,
/// with the line's value for it.
fn embedded_metrics(line: &str) -> Vec<(String, f64)> {
    if !line.starts_with('{') || !line.contains("\"_aws\"") {
        return Vec::new();
    }
    let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else { return Vec::new() };
    let directives = value.pointer("/_aws/CloudWatchMetrics").and_then(|d| d.as_array()).cloned().unwrap_or_default();
    directives
        .iter()
        .filter_map(|d| d.get("Metrics").and_then(|m| m.as_array()))
        .flatten()
        .filter_map(|m| m.get("Name").and_then(|n| n.as_str()))
        .filter_map(|name| value.get(name).and_then(serde_json::Value::as_f64).map(|v| (name.to_owned(), v)))
        .collect()
}

async fn next(State(state): State<InstanceState>) -> Response {
    let shared = &state.shared;
    if let Some(started) = lock(&shared.booting).remove(&state.index) {
        lock(&shared.stats).init_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let invocation = {
        let mut queue = shared.queue.lock().await;
        queue.recv().await
    };
    let Some(invocation) = invocation else {
        // The stack is stopping and the process is about to be killed: leave it waiting.
        return std::future::pending().await;
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let now = Instant::now();
    let deadline = SystemTime::now()
        .checked_add(shared.timeout)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis());
    lock(&shared.in_flight).insert(request_id.clone(), InFlight { instance: state.index, reply: invocation.reply });
    let _ = invocation.started.send((state.index, now));
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", request_id.clone());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set("lambda-runtime-invoked-function-arn", shared.arn.clone());
    set(
        "lambda-runtime-trace-id",
        format!("Root=1-{:08x}-{}", deadline / 1000, request_id.replace('-', "")[..24].to_owned()),
    );
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, invocation.payload).into_response()
}

fn finish(state: &InstanceState, id: &str, outcome: Outcome) -> StatusCode {
    match lock(&state.shared.in_flight).remove(id) {
        Some(f) => {
            let _ = f.reply.send(outcome);
            StatusCode::ACCEPTED
        }
        // Too late (timed out) or unknown: Lambda answers the same way.
        None => StatusCode::BAD_REQUEST,
    }
}

async fn respond(State(state): State<InstanceState>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&state, &id, Outcome::Response(body))
}

async fn report_error(State(state): State<InstanceState>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    let error = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    tracing::warn!(function = %state.shared.name, request_id = %id, %error, "function error");
    finish(&state, &id, Outcome::FunctionError(error))
}

async fn init_error(State(state): State<InstanceState>, body: Bytes) -> StatusCode {
    tracing::error!(function = %state.shared.name, error = %String::from_utf8_lossy(&body), "init error");
    StatusCode::ACCEPTED
}

#[cfg(test)]
mod tests {
    use super::embedded_metrics;

    #[test]
    fn embedded_metric_lines_are_read_as_cloudwatch_would() {
        let line = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[[]],"Metrics":[{"Name":"EventsRejected","Unit":"Count"}]}]},"EventsRejected":3,"Other":9}"#;
        assert_eq!(embedded_metrics(line), vec![("EventsRejected".to_owned(), 3.0)]);
        assert!(embedded_metrics(r#"{"level":"INFO","fields":{"_aws":1}}"#).is_empty());
        assert!(embedded_metrics("not json").is_empty());
    }
}
