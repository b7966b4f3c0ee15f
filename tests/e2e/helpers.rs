//! Test helpers: one moto server per test binary, and per test its own simulator and local
//! stack (with its own queue and table names), talking through the real SDK clients.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::config::Credentials;
use local_stack::{LocalStack, Options, stack::StackDefinition};
use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How many moto servers the tests of this binary share (`TEST_MOTO_SERVERS`, default 3): moto
/// answers one request at a time per process, and the tests run several at once.
fn moto_servers() -> usize {
    std::env::var("TEST_MOTO_SERVERS").ok().and_then(|n| n.parse().ok()).filter(|n| *n > 0).unwrap_or(3)
}

/// A moto server for the next test's stack, in turn from the shared pool (`TEST_MOTO_URL`: one
/// already running, for every test). Each is started from a thread that lives as long as the
/// process, with PDEATHSIG, so it dies with the test binary.
pub fn moto_url() -> &'static str {
    static POOL: OnceLock<Vec<String>> = OnceLock::new();
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let pool = POOL.get_or_init(|| match std::env::var("TEST_MOTO_URL") {
        Ok(url) => vec![url],
        Err(_) => {
            // All started first, then waited for: they boot side by side.
            let ports: Vec<u16> = (0..moto_servers()).map(|_| start_moto()).collect();
            ports.into_iter().map(wait_for_moto).collect()
        }
    });
    &pool[NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % pool.len()]
}

fn start_moto() -> u16 {
    let python = repo_root().join(".venv/bin/python");
    assert!(python.is_file(), "{} is missing: run `make setup` (or `make test`)", python.display());
    // moto with its TransactWriteItems backing up only the items it names (infra/local/moto_server.py).
    let launcher = repo_root().join("infra/local/moto_server.py");
    let port = free_port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut command = std::process::Command::new(python);
        command
            .arg(launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        die_with_parent(&mut command);
        let child = command.spawn();
        tx.send(child.map(|_| ()).map_err(|e| e.to_string())).unwrap();
        loop {
            std::thread::park();
        }
    });
    rx.recv().unwrap().expect("starting moto_server");
    port
}

fn wait_for_moto(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("http://127.0.0.1:{port}")
}

#[allow(unsafe_code)]
fn die_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The test's own WorkSpaces client. It shares the simulator's 2 calls/s with the pipeline, so it
/// waits its turn (up to 10 attempts on throttling) instead of failing the test: a look of the
/// test's was throttled in CI while the pipeline had done its part.
pub async fn observer_workspaces_client(endpoint: &str) -> aws_sdk_workspaces::Client {
    let retries = aws_config::retry::RetryConfig::standard().with_max_attempts(10);
    let config = aws_sdk_workspaces::config::Builder::from(&sdk_config(endpoint).await).retry_config(retries).build();
    aws_sdk_workspaces::Client::from_conf(config)
}

pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

/// A test's own stack: a simulator, and a runner with its own resource names.
pub struct TestStack {
    pub stack: LocalStack,
    pub sim_url: String,
    /// The moto server this stack's table and queues live on.
    pub moto_url: &'static str,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub http: reqwest::Client,
}

/// How a test wants its stack.
pub struct TestOptions {
    pub sim_config: Value,
    pub seed: Value,
    pub duplicate_deliveries: bool,
    pub max_visibility_timeout_s: Option<u32>,
    pub schedule_every: Duration,
    /// Functions whose event source mappings start disabled; see [`TestStack::enable_when_queued`].
    pub disabled_mappings: Vec<&'static str>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            sim_config: Value::Null,
            seed: Value::Null,
            duplicate_deliveries: false,
            max_visibility_timeout_s: None,
            schedule_every: Duration::from_millis(300),
            disabled_mappings: Vec::new(),
        }
    }
}

impl TestStack {
    pub async fn start(def: Value) -> TestStack {
        Self::start_with(def, TestOptions::default()).await
    }

    pub async fn start_with(def: Value, test: TestOptions) -> TestStack {
        let def: StackDefinition = serde_json::from_value(def).unwrap();
        let moto = moto_url();
        let sim_config = if test.sim_config.is_null() {
            Default::default()
        } else {
            serde_json::from_value(test.sim_config).unwrap()
        };
        let seed = if test.seed.is_null() { Default::default() } else { serde_json::from_value(test.seed).unwrap() };
        let sim = aws_simulator::Simulator::new(sim_config, seed).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(aws_simulator::serve(listener, sim));
        let prefix = format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        // Every test's calls, for the IAM check that follows the suite (`make check-calls`).
        let record_calls = Some(repo_root().join(format!("target/iam-calls/{prefix}calls.json")));
        let extra_env = local_stack::emulator_env(moto, &sim_url);
        let options = Options {
            prefix,
            bin_dir: PathBuf::from(env!("CARGO_BIN_EXE_probe-lambda")).parent().unwrap().to_owned(),
            region: REGION.into(),
            schedule_every: Some(test.schedule_every),
            max_visibility_timeout_s: test.max_visibility_timeout_s,
            invoke_addr: "127.0.0.1:0".into(),
            extra_env,
            duplicate_deliveries: test.duplicate_deliveries,
            disabled_mappings: test.disabled_mappings.iter().map(|f| (*f).to_owned()).collect(),
            record_calls,
            chaos: None,
        };
        let config = sdk_config(moto).await;
        let stack = local_stack::start(&def, &options, &config).await.unwrap();
        TestStack {
            stack,
            sim_url,
            moto_url: moto,
            sqs: aws_sdk_sqs::Client::new(&config),
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            http: reqwest::Client::new(),
        }
    }

    pub fn queue_url(&self, name: &str) -> String {
        self.stack.resources.queues[name].url.clone()
    }

    pub fn dlq_url(&self, name: &str) -> String {
        self.stack.resources.queues[name].dlq_url.clone().unwrap()
    }

    /// Sends bodies 10 per call; FIFO messages go to `group` with explicit deduplication ids.
    pub async fn send(&self, queue: &str, bodies: &[Value], group: Option<&str>) {
        let url = self.queue_url(queue);
        for (c, chunk) in bodies.chunks(10).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    let mut entry = aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body(body.to_string());
                    if let Some(group) = group {
                        entry = entry.message_group_id(group).message_deduplication_id(format!("{group}-{c}-{i}"));
                    }
                    entry.build().unwrap()
                })
                .collect();
            let out = self.sqs.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.unwrap();
            assert!(out.failed().is_empty(), "{:?}", out.failed());
        }
    }

    /// What the probe recorded for `id`: its item, if any.
    pub async fn probe(&self, id: &str) -> Option<std::collections::HashMap<String, AttributeValue>> {
        self.dynamodb
            .get_item()
            .table_name(&self.stack.resources.table_name)
            .key("pk", AttributeValue::S(id.into()))
            .key("sk", AttributeValue::S("probe".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    pub async fn deliveries(&self, id: &str) -> i64 {
        self.probe(&format!("probe#{id}"))
            .await
            .and_then(|item| item.get("deliveries").and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    }

    /// Approximate number of messages in a queue (visible and in flight).
    pub async fn depth(&self, url: &str) -> i64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes().unwrap();
        [A::ApproximateNumberOfMessages, A::ApproximateNumberOfMessagesNotVisible]
            .iter()
            .map(|a| attrs.get(a).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0))
            .sum()
    }

    /// Waits until the intake has handled every HR event and `queue` holds at least `count`
    /// messages (a retried event may send its request again), then enables `function`'s event
    /// source mapping: the function sees them together, however slowly they were produced.
    pub async fn enable_when_queued(&self, function: &str, queue: &str, count: i64, secs: u64) {
        let (hr_events, url) = (self.queue_url("hr-events.fifo"), self.queue_url(queue));
        eventually(secs, &format!("the HR events handled and {count} messages in {queue}"), || async {
            (self.depth(&hr_events).await == 0 && self.depth(&url).await >= count).then_some(())
        })
        .await;
        assert!(self.stack.set_mapping_enabled(function, true), "no function {function}");
    }

    /// Takes what is in `queue` now: each message's body as JSON, deleted once read.
    pub async fn take_messages(&self, queue: &str) -> Vec<Value> {
        let url = self.queue_url(queue);
        let mut taken = Vec::new();
        loop {
            let out = self.sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return taken;
            }
            for m in messages {
                taken.push(serde_json::from_str(m.body().unwrap_or_default()).unwrap());
                self.sqs.delete_message().queue_url(&url).set_receipt_handle(m.receipt_handle).send().await.unwrap();
            }
        }
    }

    /// The lifecycle events the stack's example subscriber (the queue its rule targets) has
    /// received, once `done` holds of all of them: EventBridge envelopes, in arrival order.
    pub async fn lifecycle_events(&self, secs: u64, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let received = std::sync::Mutex::new(Vec::new());
        eventually(secs, what, || async {
            let taken = self.take_messages("lifecycle-events").await;
            let mut all = received.lock().unwrap();
            all.extend(taken);
            done(&all).then(|| all.clone())
        })
        .await
    }

    pub fn stats(&self, function: &str) -> local_stack::runtime::FunctionStats {
        self.stack.functions[function].stats()
    }
}

/// How many times its stated bound a wait may take (`E2E_PATIENCE`, default 1). The bounds are
/// liveness bounds, not timings: `make test` sets 2, for there the suite shares the 2 cores with
/// the chaos smoke and the demo.
fn patience() -> u64 {
    std::env::var("E2E_PATIENCE").ok().and_then(|n| n.parse().ok()).filter(|n| *n > 0).unwrap_or(1)
}

/// Polls `check` until it returns `Some`, or fails after `secs` seconds (times the patience).
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let secs = secs * patience();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl TestStack {
    pub async fn sim(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let res = self.http.request(method, format!("{}/_sim/{path}", self.sim_url)).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "simulator admin {path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    pub async fn fault(&self, fault: Value) {
        self.sim(reqwest::Method::POST, "faults", fault).await;
    }

    /// Items carried by each accepted call of a WorkSpaces operation.
    pub async fn call_items(&self, op: &str) -> Vec<u64> {
        self.service_call_items("WorkSpaces", op).await
    }

    /// Items per call of one operation of a simulated service (`ResourceGroupsTagging`).
    pub async fn service_call_items(&self, service: &str, op: &str) -> Vec<u64> {
        let calls = self.sim(reqwest::Method::GET, "calls", Value::Null).await;
        calls[format!("{service}.{op}")]["items"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    }

    pub async fn sim_state(&self) -> Value {
        self.sim(reqwest::Method::GET, "state", Value::Null).await
    }

    /// The project's own store adapter on this test's table.
    pub fn store(&self) -> shared::adapters::dynamo::DynamoStore {
        shared::adapters::dynamo::DynamoStore::new(self.dynamodb.clone(), self.stack.resources.table_name.clone())
    }

    /// Posts HR events to the FIFO HR events queue, grouped by employee, each with a fresh
    /// deduplication id (so a re-post really is delivered again).
    pub async fn post_events(&self, events: &[Value]) {
        let url = self.queue_url("hr-events.fifo");
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let group = e["employee"]["employee_id"].as_str().unwrap_or("unknown").to_owned();
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(format!("e{i}"))
                        .message_body(e.to_string())
                        .message_group_id(group)
                        .message_deduplication_id(uuid::Uuid::new_v4().simple().to_string())
                        .build()
                        .unwrap()
                })
                .collect();
            let out = self.sqs.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.unwrap();
            assert!(out.failed().is_empty(), "{:?}", out.failed());
        }
    }
}
