//! One benchmark run: a fresh moto, simulator and local stack; N joiners posted to the HR events
//! queue and followed until every employee is active; then the same N leavers until every one is
//! confirmed terminated. Counters are taken before and after each phase.

use crate::proxy::CountingProxy;
use crate::report::{self, AuditCost, PhaseReport, RunReport, Snapshot};
use anyhow::{Context, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::{LocalStack, Options, stack::StackDefinition};
use serde_json::{Value, json};
use shared::domain::workspace::MAX_PER_CALL;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const REGION: &str = "us-east-1";
const HR_QUEUE: &str = "hr-events.fifo";
const WORKSPACES_OPS: [&str; 3] = ["CreateWorkspaces", "TerminateWorkspaces", "DescribeWorkspaces"];

#[derive(Debug, Clone)]
pub struct Settings {
    pub root: PathBuf,
    pub bin_dir: PathBuf,
    pub stack: StackDefinition,
    /// The simulator's configuration (`infra/local/simulator.json`, time factor applied).
    pub sim_config: Value,
    pub seed: Value,
    pub reconcile_every: Duration,
    /// Longest a phase may take before the run is reported incomplete.
    pub phase_timeout: Duration,
    pub function_log_level: String,
    /// HR events posted per second (none: as fast as the queue takes them).
    pub post_rate: Option<f64>,
    /// Posting waits while more than this many events wait in the HR queue: moto's FIFO queue
    /// slows down as it grows, an HR system's feed does not arrive all at once, and the wall time
    /// still runs from the first event posted.
    pub max_backlog: Option<usize>,
    /// The local DynamoDB (SQS is moto's in every run).
    pub store: Store,
}

impl Settings {
    fn workspaces_rate(&self) -> f64 {
        let factor = self.sim_config["time_factor"].as_f64().unwrap_or(1.0);
        self.sim_config["rate_limits"]["WorkSpaces"]["rate"].as_f64().unwrap_or(2.0) * factor
    }

    fn workspaces_burst(&self) -> f64 {
        self.sim_config["rate_limits"]["WorkSpaces"]["burst"].as_f64().unwrap_or(5.0)
    }

    /// The simulator's `rate_scope` (`service` when not set, as the simulator defaults).
    fn rate_scope(&self) -> &str {
        self.sim_config["rate_scope"].as_str().unwrap_or("service")
    }
}

/// The local DynamoDB the functions use: moto (Python, the tests' store), or dynoxide (Rust,
/// SQLite in memory), installed by `make bench-tools`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Store {
    Moto,
    Dynoxide,
}

impl Store {
    pub fn name(self) -> &'static str {
        match self {
            Store::Moto => "moto",
            Store::Dynoxide => "dynoxide",
        }
    }
}

/// Where `make bench-tools` installs dynoxide.
pub const DYNOXIDE: &str = ".tools/bin/dynoxide";

/// An emulator in a child process that dies with the benchmark: moto_server (SQS, DynamoDB) or
/// dynoxide (DynamoDB).
pub struct Emulator {
    pub url: String,
    /// For its CPU time.
    pub pid: Option<u32>,
    _child: tokio::process::Child,
}

impl Emulator {
    /// moto, for SQS (and DynamoDB).
    pub async fn moto(root: &Path) -> anyhow::Result<Emulator> {
        Self::start(root, Store::Moto).await
    }

    /// `Store::Moto` serves SQS too.
    pub async fn start(root: &Path, store: Store) -> anyhow::Result<Emulator> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = match store {
            Store::Moto => {
                let python = root.join(".venv/bin/python");
                if !python.is_file() {
                    bail!("{} is missing: run `make setup`", python.display());
                }
                // moto with its TransactWriteItems backing up only the items it names.
                let mut command = tokio::process::Command::new(python);
                command.arg(root.join("infra/local/moto_server.py")).args(["-H", "127.0.0.1", "-p", &port.to_string()]);
                command
            }
            Store::Dynoxide => {
                let binary = root.join(DYNOXIDE);
                if !binary.is_file() {
                    bail!("{} is missing: run `make bench-tools`", binary.display());
                }
                let mut command = tokio::process::Command::new(binary);
                command.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--log", "quiet"]);
                command
            }
        };
        command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).kill_on_drop(true);
        local_stack::process::die_with_parent(&mut command);
        let child = command.spawn().with_context(|| format!("starting {}", store.name()))?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if Instant::now() > deadline {
                bail!("{} did not start within 60 s", store.name());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Emulator { url: format!("http://127.0.0.1:{port}"), pid: child.id(), _child: child })
    }
}

struct Running {
    stack: LocalStack,
    proxy: CountingProxy,
    sim_url: String,
    simulator: tokio::task::AbortHandle,
    http: reqwest::Client,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    emulators: [Emulator; 2],
    store: Store,
    _runner_route: CountingProxy,
}

fn epoch_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The simulator in this process, on a free port: its URL, and the handle that stops it.
pub async fn start_simulator(config: &Value, seed: &Value) -> anyhow::Result<(String, tokio::task::AbortHandle)> {
    let sim = aws_simulator::Simulator::new(
        serde_json::from_value(config.clone()).context("simulator configuration")?,
        serde_json::from_value(seed.clone()).context("simulator seed")?,
    )
    .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((url, tokio::spawn(aws_simulator::serve(listener, sim)).abort_handle()))
}

/// What the functions get on top of their own variables: the emulators' endpoints (the store's
/// through `store_url`), the region and the log level.
pub fn function_env(store_url: &str, sim_url: &str, log_level: &str) -> BTreeMap<String, String> {
    let mut env = local_stack::emulator_env(store_url, sim_url);
    env.insert("AWS_REGION".into(), REGION.into());
    env.insert("AWS_LAMBDA_LOG_LEVEL".into(), log_level.into());
    env
}

pub fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

pub fn join_event(i: usize) -> Value {
    json!({
        "schema_version": "1",
        "event_id": format!("bench-join-{i:05}"),
        "type": "join",
        "occurred_at": "2026-11-02T09:00:00Z",
        "employee": {
            "employee_id": format!("E{i:05}"),
            "username": format!("bench{i:05}"),
            "given_name": "Bench",
            "surname": format!("User{i:05}"),
            "email": format!("bench{i:05}@example.com"),
            // One in five gets the engineering profile: two bundles in every batch.
            "department": if i.is_multiple_of(5) { "Engineering" } else { "Sales" }
        }
    })
}

pub fn leave_event(i: usize) -> Value {
    json!({
        "schema_version": "1",
        "event_id": format!("bench-leave-{i:05}"),
        "type": "leave",
        "occurred_at": "2026-11-20T17:00:00Z",
        "employee": { "employee_id": format!("E{i:05}") }
    })
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("bench", "bench", None, None, "bench"))
        .load()
        .await
}

/// The simulator stops with its run (moto, the proxies and the local stack stop on their own drop).
impl Drop for Running {
    fn drop(&mut self) {
        self.simulator.abort();
    }
}

impl Running {
    async fn start(settings: &Settings) -> anyhow::Result<Running> {
        // DynamoDB and SQS each in a process of their own: moto is single-threaded in effect, and
        // the two services' calls would otherwise queue behind each other.
        let (moto_dynamodb, moto_sqs) =
            tokio::try_join!(Emulator::start(&settings.root, settings.store), Emulator::moto(&settings.root))?;
        // The functions' calls are counted; the runner's (event source polling) go through an
        // uncounted route of their own.
        let proxy = CountingProxy::start(&moto_dynamodb.url, &moto_sqs.url).await?;
        let runner_route = CountingProxy::start(&moto_dynamodb.url, &moto_sqs.url).await?;
        let (sim_url, simulator) = start_simulator(&settings.sim_config, &settings.seed).await?;
        // Thousands of invocations: the functions' warnings and errors are what to see.
        let extra_env = function_env(&proxy.url, &sim_url, &settings.function_log_level);
        let options = Options {
            prefix: format!("bench{}-", &uuid::Uuid::new_v4().simple().to_string()[..6]),
            bin_dir: settings.bin_dir.clone(),
            region: REGION.into(),
            schedule_every: Some(settings.reconcile_every),
            max_visibility_timeout_s: None,
            invoke_addr: "127.0.0.1:0".into(),
            extra_env,
            duplicate_deliveries: false,
            disabled_mappings: Default::default(),
            record_calls: None,
            chaos: None,
        };
        let stack = local_stack::start(&settings.stack, &options, &sdk_config(&runner_route.url).await).await?;
        Ok(Running {
            stack,
            proxy,
            sim_url,
            simulator,
            http: reqwest::Client::new(),
            sqs: aws_sdk_sqs::Client::new(&sdk_config(&moto_sqs.url).await),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk_config(&moto_dynamodb.url).await),
            emulators: [moto_dynamodb, moto_sqs],
            store: settings.store,
            _runner_route: runner_route,
        })
    }

    async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let sim_calls = self.http.get(format!("{}/_sim/calls", self.sim_url)).send().await?.json().await?;
        let functions = self.stack.functions.iter().map(|(name, pool)| (name.clone(), pool.stats())).collect();
        let [store, queue] = &self.emulators;
        let cpu_s = [("store", store.pid), ("queue", queue.pid), ("harness", Some(std::process::id()))]
            .into_iter()
            .filter_map(|(key, pid)| Some((key.to_owned(), process_cpu_s(pid?)?)))
            .chain(machine_cpu_s().map(|busy| ("machine".to_owned(), busy)))
            .collect();
        Ok(Snapshot { sim_calls, moto_calls: self.proxy.counts(), functions, cpu_s })
    }

    /// Posts the events 10 per SendMessageBatch from two senders, each employee its own message
    /// group, at most `rate` events a second if given, holding back while the queue has more than
    /// `max_backlog` waiting. (More senders only queue up in moto, whose FIFO sends slow down as
    /// the queue grows, and starve the functions' calls.)
    async fn post(&self, events: Vec<Value>, rate: Option<f64>, max_backlog: Option<usize>) -> anyhow::Result<()> {
        const SENDERS: usize = 2;
        // Looking at the backlog before every send would double the senders' calls; a look every
        // few chunks lets the queue overshoot by at most a quarter of the limit.
        let check_every = max_backlog.map(|max| (max / (4 * 10 * SENDERS)).max(1));
        let url = self.stack.resources.queues[HR_QUEUE].url.clone();
        let chunks: Vec<Vec<Value>> = events.chunks(10).map(<[Value]>::to_vec).collect();
        let mut lanes: Vec<Vec<Vec<Value>>> = vec![Vec::new(); SENDERS];
        for (i, chunk) in chunks.into_iter().enumerate() {
            lanes[i % SENDERS].push(chunk);
        }
        let pace = rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(10.0 * SENDERS as f64 / r));
        let mut tasks = tokio::task::JoinSet::new();
        for lane in lanes {
            let (sqs, url) = (self.sqs.clone(), url.clone());
            tasks.spawn(async move {
                let mut ticks = pace.map(tokio::time::interval);
                for (sent, chunk) in lane.into_iter().enumerate() {
                    if let (Some(max), Some(every)) = (max_backlog, check_every)
                        && sent % every == 0
                    {
                        while waiting_messages(&sqs, &url).await? > max {
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                    if let Some(ticks) = ticks.as_mut() {
                        ticks.tick().await;
                    }
                    let entries = chunk
                        .iter()
                        .enumerate()
                        .map(|(i, e)| {
                            aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                                .id(format!("m{i}"))
                                .message_body(e.to_string())
                                .message_group_id(e["employee"]["employee_id"].as_str().unwrap_or("none"))
                                .message_deduplication_id(e["event_id"].as_str().unwrap_or("none"))
                                .build()
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let out = sqs.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await?;
                    if !out.failed().is_empty() {
                        bail!("SendMessageBatch refused entries: {:?}", out.failed());
                    }
                }
                Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        Ok(())
    }

    /// Every employee record: (state, state_since_ms, terminated_ms).
    async fn employees(&self) -> anyhow::Result<Vec<(String, i64, Option<i64>)>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.stack.resources.table_name)
                .filter_expression("sk = :state")
                .expression_attribute_values(":state", AttributeValue::S("STATE".into()))
                .projection_expression("#s, state_since_ms, terminated_ms")
                .expression_attribute_names("#s", "state")
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items() {
                let n = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
                let state = item.get("state").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
                out.push((state, n("state_since_ms").unwrap_or(0), n("terminated_ms")));
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    /// Waits until every one of `n` employees is in `done` or failed; the time the last one got
    /// there, from the records. The table is only scanned once the simulator shows the phase's
    /// WorkSpaces settled: a scan is costly for moto, and moto's time is what the functions need.
    async fn wait_for(&self, n: usize, done: &str, timeout: Duration) -> anyhow::Result<(usize, usize, i64)> {
        let deadline = Instant::now() + timeout;
        let mut last_report = Instant::now();
        loop {
            let workspaces = self.sim_workspaces().await?;
            let settled = if done == "terminated" {
                workspaces.values().sum::<usize>() == 0
            } else {
                workspaces.get("AVAILABLE").copied().unwrap_or(0) + workspaces.get("ERROR").copied().unwrap_or(0) >= n
            };
            let timed_out = Instant::now() > deadline;
            if settled || timed_out {
                let records = self.employees().await?;
                let completed: Vec<&(String, i64, Option<i64>)> = records.iter().filter(|r| r.0 == done).collect();
                let failed = records.iter().filter(|r| r.0 == "failed").count();
                if completed.len() + failed >= n || timed_out {
                    let last =
                        completed.iter().map(|r| if done == "terminated" { r.2.unwrap_or(r.1) } else { r.1 }).max();
                    return Ok((completed.len(), failed, last.unwrap_or(0)));
                }
            }
            if last_report.elapsed() > Duration::from_secs(15) {
                eprintln!("  … WorkSpaces in the simulator: {workspaces:?}");
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// WorkSpaces in the simulator, by state.
    async fn sim_workspaces(&self) -> anyhow::Result<BTreeMap<String, usize>> {
        let state: Value = self.http.get(format!("{}/_sim/state", self.sim_url)).send().await?.json().await?;
        let mut by_state = BTreeMap::new();
        for ws in state["workspaces"].as_array().into_iter().flatten() {
            *by_state.entry(ws["State"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
        }
        Ok(by_state)
    }

    async fn workspaces_left(&self) -> anyhow::Result<usize> {
        let state: Value = self.http.get(format!("{}/_sim/state", self.sim_url)).send().await?.json().await?;
        Ok(state["workspaces"].as_array().map_or(0, Vec::len))
    }

    /// Waits until no PutEvents has gone out for 5 s (at most 2 minutes): the seconds until the
    /// last one.
    async fn events_settled(&self) -> f64 {
        let started = std::time::Instant::now();
        let put = || self.proxy.counts().get("events.PutEvents").map_or(0, |c| c.items);
        let (mut last, mut last_change) = (put(), started);
        while last_change.elapsed() < Duration::from_secs(5) && started.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = put();
            if now != last {
                (last, last_change) = (now, std::time::Instant::now());
            }
        }
        last_change.duration_since(started).as_secs_f64()
    }

    /// What the stack's example subscriber queue holds: the lifecycle events it received.
    async fn events_received(&self) -> anyhow::Result<i64> {
        match self.stack.resources.queues.get("lifecycle-events") {
            Some(queue) => messages_in(&self.sqs, &queue.url).await,
            None => Ok(0),
        }
    }

    async fn dlq_messages(&self) -> anyhow::Result<i64> {
        let mut total = 0;
        for queue in self.stack.resources.queues.values() {
            let Some(dlq) = &queue.dlq_url else { continue };
            total += messages_in(&self.sqs, dlq).await?;
        }
        Ok(total)
    }
}

/// Linux's USER_HZ: /proc reports CPU time in these ticks (100 on every Linux architecture).
const TICKS_PER_S: f64 = 100.0;

/// A process's user + system CPU seconds so far, from /proc (none elsewhere or once it is gone).
fn process_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // utime and stime are the 14th and 15th fields; the 3rd (state) is fields[0].
    Some((ticks(11)? + ticks(12)?) / TICKS_PER_S)
}

/// Every core's busy seconds so far (all but idle and iowait), from /proc/stat.
fn machine_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<f64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: f64 = cpu.iter().take(8).sum();
    Some((total - cpu.get(3)? - cpu.get(4)?) / TICKS_PER_S)
}

/// Messages in a queue, waiting or in flight.
pub async fn messages_in(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<i64> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?;
    Ok(out.attributes().map_or(0, |a| a.values().filter_map(|v| v.parse::<i64>().ok()).sum::<i64>()))
}

/// Messages waiting to be received (not those in flight).
async fn waiting_messages(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<usize> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await?;
    let waiting = out
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
        .and_then(|v| v.parse().ok());
    waiting.context("GetQueueAttributes without ApproximateNumberOfMessages")
}

fn phase_report(
    settings: &Settings,
    phase: &str,
    n: usize,
    (completed, failed, last_ms): (usize, usize, i64),
    posted_ms: i64,
    before: &Snapshot,
    after: &Snapshot,
) -> PhaseReport {
    let wall_s = (last_ms - posted_ms).max(0) as f64 / 1000.0;
    let rate = settings.workspaces_rate();
    let per_operation = settings.rate_scope() == "operation";
    PhaseReport {
        phase: phase.into(),
        employees: n,
        completed,
        failed,
        wall_s,
        workspaces_per_s: if wall_s > 0.0 { completed as f64 / wall_s } else { 0.0 },
        ceiling_per_s: report::ceiling_per_s(rate, per_operation),
        api_floor_s: report::api_floor_s(n, rate, per_operation),
        rate_scope: settings.rate_scope().to_owned(),
        api: WORKSPACES_OPS
            .iter()
            .map(|op| (op.to_string(), report::api_use(before, after, &format!("WorkSpaces.{op}"), n)))
            .filter(|(_, a)| a.calls > 0 || a.throttled > 0)
            .collect(),
        directory_calls: report::directory_calls(before, after),
        store: report::store_use(report::moto_delta(&before.moto_calls, &after.moto_calls), n),
        invocations: report::invocations(before, after),
        resources: report::resource_use(
            before,
            after,
            wall_s,
            (rate, settings.workspaces_burst(), per_operation),
            &settings
                .stack
                .functions
                .iter()
                .filter_map(|f| Some((f.name.clone(), f.sqs.first()?.max_concurrency)))
                .collect(),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        ),
        timeline: WORKSPACES_OPS
            .iter()
            .filter_map(|op| {
                Some((op.to_string(), report::span(before, after, &format!("WorkSpaces.{op}"), posted_ms)?))
            })
            .collect(),
    }
}

impl Running {
    /// The run as far as it went: every phase so far, the functions' figures up to `now`.
    async fn report(
        &self,
        n: usize,
        phases: Vec<PhaseReport>,
        audit: Option<AuditCost>,
        start: &Snapshot,
        now: &Snapshot,
    ) -> anyhow::Result<RunReport> {
        Ok(RunReport {
            employees: n,
            store: self.store.name().to_owned(),
            phases,
            audit,
            lifecycle_store: report::store_use(report::moto_delta(&start.moto_calls, &now.moto_calls), n),
            functions: now.functions.iter().map(|(name, stats)| (name.clone(), report::function_cost(stats))).collect(),
            workspaces_left: self.workspaces_left().await?,
            dlq_messages: self.dlq_messages().await?,
            events_received: self.events_received().await?,
            events_caught_up_s: None,
        })
    }
}

impl Running {
    /// Every item of the table (what a Scan of it reads), counted by a Scan of our own.
    async fn table_items(&self) -> anyhow::Result<u64> {
        let (mut items, mut start) = (0, None);
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&self.stack.resources.table_name)
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            items += page.scanned_count().max(0) as u64;
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// One drift audit, invoked as its schedule would, over what the join phase left: its cost.
    async fn audit(&self, n: usize, before: &Snapshot) -> anyhow::Result<(AuditCost, Snapshot)> {
        let url = format!("{}/2015-03-31/functions/auditor/invocations", self.stack.invoke_url);
        let started = epoch_ms();
        let res = self.http.post(&url).json(&json!({ "source": "aws.events", "detail": {} })).send().await?;
        let failed = res.headers().contains_key("x-amz-function-error");
        let answer: Value = res.json().await?;
        anyhow::ensure!(!failed, "the audit failed: {answer}");
        let wall_s = (epoch_ms() - started) as f64 / 1000.0;
        let after = self.snapshot().await?;
        let describe = report::api_use(before, &after, "WorkSpaces.DescribeWorkspaces", n);
        let number = |key: &str| answer[key].as_u64().unwrap_or_default();
        let findings = answer["counts"].as_object().map_or(0, |c| c.values().filter_map(Value::as_u64).sum());
        let delta = report::moto_delta(&before.moto_calls, &after.moto_calls);
        let cost = AuditCost {
            wall_s,
            scan_requests: delta.get("DynamoDB.Scan").map_or(0, |c| c.calls),
            table_items: self.table_items().await?,
            employees_checked: number("employees_checked"),
            workspaces_listed: number("workspaces_listed"),
            findings,
            describe_calls: describe.calls,
            describe_calls_reported: number("describe_calls"),
            describe_floor: (n as u64).div_ceil(MAX_PER_CALL as u64),
            calls_per_s: if wall_s > 0.0 { describe.calls as f64 / wall_s } else { 0.0 },
            store: report::store_use(delta, n),
            peak_rss_mib: after.functions.get("auditor").map(|f| f.peak_rss_kib as f64 / 1024.0),
        };
        Ok((cost, after))
    }
}

/// Runs N joiners then N leavers. `checkpoint` gets the run as it stands after the join phase,
/// so a long run stopped during its leave phase keeps its join figures.
pub async fn run(
    settings: &Settings,
    n: usize,
    checkpoint: &mut dyn FnMut(&RunReport) -> anyhow::Result<()>,
) -> anyhow::Result<RunReport> {
    eprintln!("-- {n}: starting {} (DynamoDB), moto (SQS), the simulator and the local stack", settings.store.name());
    let running = Running::start(settings).await?;
    let s0 = running.snapshot().await?;

    eprintln!("-- {n}: posting {n} joiners");
    let joined_at = epoch_ms();
    running.post((0..n).map(join_event).collect(), settings.post_rate, settings.max_backlog).await?;
    eprintln!("-- {n}: posted in {:.1} s", (epoch_ms() - joined_at) as f64 / 1000.0);
    let joined = running.wait_for(n, "active", settings.phase_timeout).await?;
    let s1 = running.snapshot().await?;
    eprintln!("-- {n}: {} active, {} failed", joined.0, joined.1);
    let join = phase_report(settings, "join", n, joined, joined_at, &s0, &s1);
    eprintln!("-- {n}: auditing {n} WorkSpaces");
    let (audit, s1) = running.audit(n, &s1).await?;
    eprintln!("-- {n}: audited in {:.1} s, {} DescribeWorkspaces calls", audit.wall_s, audit.describe_calls);
    // A checkpoint that cannot be written costs the checkpoint, not the run.
    match running.report(n, vec![join.clone()], Some(audit.clone()), &s0, &s1).await {
        Ok(so_far) => {
            if let Err(e) = checkpoint(&so_far) {
                eprintln!("-- {n}: the join-phase figures could not be written ({e:#}); carrying on");
            }
        }
        Err(e) => eprintln!("-- {n}: the join-phase figures could not be read ({e:#}); carrying on"),
    }

    eprintln!("-- {n}: posting {n} leavers");
    let left_at = epoch_ms();
    running.post((0..n).map(leave_event).collect(), settings.post_rate, settings.max_backlog).await?;
    eprintln!("-- {n}: posted in {:.1} s", (epoch_ms() - left_at) as f64 / 1000.0);
    let left = running.wait_for(n, "terminated", settings.phase_timeout).await?;
    let s2 = running.snapshot().await?;
    eprintln!("-- {n}: {} terminated, {} failed", left.0, left.1);

    let leave = phase_report(settings, "leave", n, left, left_at, &s1, &s2);
    // The table's stream is read after the writes: the last changes are published a moment later.
    let caught_up_s = running.events_settled().await;
    eprintln!("-- {n}: lifecycle events published {caught_up_s:.1} s after the last leaver was confirmed");
    let s3 = running.snapshot().await?;
    let mut report = running.report(n, vec![join, leave], Some(audit), &s0, &s3).await?;
    report.events_caught_up_s = Some(caught_up_s);
    Ok(report)
}
