//! `make chaos`: N employees through the real local stack (function binaries, the runner's event
//! source mappings, moto, the simulator) while faults hit it from every side at once:
//! - every batch delivered up to three times, and function processes killed mid-invocation
//!   (the runner's [`local_stack::chaos`]);
//! - the store and the queues: throttling, HTTP 500s, latency spikes and replies lost after the
//!   write was made (a pass-through in front of moto, [`store_faults`]);
//! - WorkSpaces and DS Data: throttling and HTTP 500s on top of the rate limit, WorkSpaces that
//!   end in ERROR, WorkSpaces SUSPENDED when their leave comes (the simulator's faults).
//!
//! Then the faults stop, the world settles, and an independent [`oracle`] reads only the outside
//! world (the table, the simulator, the queues and DLQs, the feed that was posted) and checks the
//! invariants.

pub mod feed;
pub mod oracle;

use crate::scenario::{Emulator, REGION, function_env, messages_in, sdk_config, start_simulator};
use anyhow::Context;
use local_stack::chaos::{Hits, employee_ids_in, record_hit};
use local_stack::passthrough::{Injection, Injector, Operation, Passthrough};
use local_stack::{LocalStack, Options};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Faults on the functions' DynamoDB and SQS calls, as shares of the calls.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StoreFaults {
    pub throttle: f64,
    pub server_error: f64,
    pub latency: f64,
    pub lost_reply: f64,
}

/// Faults of the simulated services.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ServiceFaults {
    /// WorkSpaces calls answered ThrottlingException (on top of the 2 calls/s limit).
    pub workspaces_throttle: f64,
    /// WorkSpaces calls answered HTTP 500.
    pub workspaces_server_error: f64,
    /// DS Data calls answered ThrottlingException.
    pub directory_throttle: f64,
    /// Employees whose WorkSpace ends in ERROR.
    pub workspace_error: f64,
    /// Leavers whose WorkSpace is SUSPENDED when their leave comes.
    pub suspended: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChaosSettings {
    pub employees: usize,
    pub seed: u64,
    /// The HR events queue is a standard queue (events out of order, duplicated by SQS itself).
    pub standard_queue: bool,
    pub store: StoreFaults,
    pub services: ServiceFaults,
    pub kill_probability: f64,
    pub max_extra_deliveries: u8,
    /// How long the world has to settle once the faults stop.
    pub settle_timeout_s: u64,
    #[serde(skip)]
    pub root: PathBuf,
    #[serde(skip)]
    pub bin_dir: PathBuf,
    #[serde(skip)]
    pub stack: Value,
    #[serde(skip)]
    pub sim_config: Value,
    #[serde(skip)]
    pub sim_seed: Value,
    /// Record the functions' AWS calls here (for `check_template.py --calls`).
    #[serde(skip)]
    pub record_calls: Option<PathBuf>,
}

/// Store faults injected, by kind.
#[derive(Debug, Default, Serialize)]
pub struct StoreFaultCounts {
    pub calls: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub delayed: AtomicU64,
    pub replies_lost: AtomicU64,
}

/// The pass-through's fault plan: one seeded draw per call; each fault counted against the
/// employees its request names.
pub fn store_faults(rates: StoreFaults, seed: u64, counts: Arc<StoreFaultCounts>, hits: Arc<Mutex<Hits>>) -> Injector {
    let rng = Mutex::new(StdRng::seed_from_u64(seed ^ 0x5709e));
    Arc::new(move |op: &Operation, body: &[u8]| {
        let injection = store_fault(&rates, op, &rng, &counts);
        let kind = match &injection {
            Injection::Forward => return injection,
            Injection::Refuse { status: 500, .. } => "store HTTP 500",
            Injection::Refuse { .. } => "store throttled",
            Injection::Delay(_) => "store latency spike",
            Injection::LoseReply(_) => "store reply lost after the write",
        };
        record_hit(&hits, employee_ids_in(body), kind, 1);
        injection
    })
}

fn store_fault(rates: &StoreFaults, op: &Operation, rng: &Mutex<StdRng>, counts: &StoreFaultCounts) -> Injection {
    let mut rng = rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    counts.calls.fetch_add(1, Relaxed);
    let draw: f64 = rng.random();
    let mut edge = rates.throttle;
    if draw < edge {
        counts.throttled.fetch_add(1, Relaxed);
        let code = if op.service == "dynamodb" {
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
        } else {
            "com.amazonaws.sqs#ThrottlingException"
        };
        return Injection::Refuse { status: 400, code: code.into() };
    }
    edge += rates.server_error;
    if draw < edge {
        counts.server_errors.fetch_add(1, Relaxed);
        return Injection::Refuse { status: 500, code: "InternalServerError".into() };
    }
    edge += rates.latency;
    if draw < edge {
        counts.delayed.fetch_add(1, Relaxed);
        return Injection::Delay(Duration::from_millis(rng.random_range(300..1_500)));
    }
    edge += rates.lost_reply;
    if draw < edge {
        counts.replies_lost.fetch_add(1, Relaxed);
        // Longer than the functions' attempt timeout: they give up and call again.
        return Injection::LoseReply(shared::aws::ATTEMPT_TIMEOUT + Duration::from_secs(1));
    }
    Injection::Forward
}

/// The run's stack: moto, the simulator, the runner with its faults, the store's pass-through.
pub struct World {
    pub stack: LocalStack,
    pub sim_url: String,
    pub http: reqwest::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub store_faults: Arc<StoreFaultCounts>,
    /// The store faults, per employee they hit.
    pub store_hits: Arc<Mutex<Hits>>,
    /// Off once the faults stop: the pass-through forwards everything again.
    faults_on: Arc<std::sync::atomic::AtomicBool>,
    simulator: tokio::task::AbortHandle,
    _proxy: Passthrough,
    _runner_route: Passthrough,
    _motos: [Emulator; 2],
}

impl Drop for World {
    fn drop(&mut self) {
        self.simulator.abort();
    }
}

impl World {
    pub async fn start(settings: &ChaosSettings) -> anyhow::Result<World> {
        // One moto for DynamoDB and one for SQS, as in the bench: moto answers one request at a
        // time per process, and thousands of employees' index queries would hold up every queue.
        let (moto_dynamodb, moto_sqs) =
            tokio::try_join!(Emulator::moto(&settings.root), Emulator::moto(&settings.root))?;
        let (dynamodb_url, sqs_url) = (moto_dynamodb.url.clone(), moto_sqs.url.clone());
        let by_service = move || {
            let (dynamodb, sqs) = (dynamodb_url.clone(), sqs_url.clone());
            Arc::new(move |op: &Operation| if op.service == "dynamodb" { dynamodb.clone() } else { sqs.clone() })
        };
        let counts = Arc::new(StoreFaultCounts::default());
        let faults_on = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let store_hits = Arc::new(Mutex::new(Hits::new()));
        let plan = store_faults(settings.store, settings.seed, counts.clone(), store_hits.clone());
        let on = faults_on.clone();
        let inject: Injector = Arc::new(
            move |op: &Operation, body: &[u8]| if on.load(Relaxed) { plan(op, body) } else { Injection::Forward },
        );
        let proxy =
            Passthrough::start_with(by_service(), Arc::new(|_: &Operation, _: &[u8], _, _| {}), Some(inject)).await?;
        // The runner's own polling (Lambda's event source mappings) is not faulted.
        let runner_route = Passthrough::start(by_service(), Arc::new(|_: &Operation, _: &[u8], _, _| {})).await?;
        let (sim_url, simulator) = start_simulator(&settings.sim_config, &settings.sim_seed).await?;
        let extra_env = function_env(&proxy.url, &sim_url, "WARN");
        let options = Options {
            prefix: format!("chaos{}-", &uuid::Uuid::new_v4().simple().to_string()[..6]),
            bin_dir: settings.bin_dir.clone(),
            region: REGION.into(),
            schedule_every: Some(Duration::from_secs(2)),
            max_visibility_timeout_s: Some(20),
            invoke_addr: "127.0.0.1:0".into(),
            extra_env,
            duplicate_deliveries: false,
            disabled_mappings: Default::default(),
            record_calls: settings.record_calls.clone(),
            chaos: Some(local_stack::chaos::ChaosOptions {
                seed: settings.seed,
                max_extra_deliveries: settings.max_extra_deliveries,
                kill_probability: settings.kill_probability,
                kill_within: Duration::from_millis(1_500),
            }),
        };
        let definition = serde_json::from_value(settings.stack.clone()).context("stack definition")?;
        let stack = local_stack::start(&definition, &options, &sdk_config(&runner_route.url).await).await?;
        Ok(World {
            stack,
            sim_url,
            http: reqwest::Client::new(),
            sqs: aws_sdk_sqs::Client::new(&sdk_config(&moto_sqs.url).await),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk_config(&moto_dynamodb.url).await),
            store_faults: counts,
            store_hits,
            faults_on,
            simulator,
            _proxy: proxy,
            _runner_route: runner_route,
            _motos: [moto_dynamodb, moto_sqs],
        })
    }

    pub async fn sim(&self, method: reqwest::Method, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self.http.request(method, format!("{}/_sim/{path}", self.sim_url)).json(&body).send().await?;
        anyhow::ensure!(response.status().is_success(), "simulator {path}: {}", response.status());
        Ok(response.json().await.unwrap_or(Value::Null))
    }

    /// The simulator's faults for the run.
    async fn inject_service_faults(&self, settings: &ChaosSettings, feed: &feed::Feed) -> anyhow::Result<()> {
        let s = settings.services;
        const WORKSPACES_OPS: [&str; 9] = [
            "CreateWorkspaces",
            "DescribeWorkspaces",
            "TerminateWorkspaces",
            "DescribeTags",
            "CreateTags",
            "DeleteTags",
            "ModifyWorkspaceState",
            "ModifyWorkspaceProperties",
            "MigrateWorkspace",
        ];
        let mut faults = Vec::new();
        // The terminator's read of many WorkSpaces' tags: failing, it falls back to DescribeTags.
        let tag_reads = ["ResourceGroupsTagging.GetResources".to_owned()];
        for op in WORKSPACES_OPS.iter().map(|op| format!("WorkSpaces.{op}")).chain(tag_reads) {
            faults.push((op.clone(), "throttle", s.workspaces_throttle));
            faults.push((op, "http_error", s.workspaces_server_error));
        }
        for op in ["CreateUser", "DescribeUser", "DisableUser"] {
            faults.push((format!("DirectoryServiceData.{op}"), "throttle", s.directory_throttle));
        }
        for (operation, kind, probability) in faults {
            if probability > 0.0 {
                self.sim(
                    reqwest::Method::POST,
                    "faults",
                    json!({ "kind": kind, "operation": operation, "probability": probability }),
                )
                .await?;
            }
        }
        let failing: Vec<&str> =
            feed.people.iter().filter(|p| p.workspace_fails).map(|p| p.username.as_str()).collect();
        if !failing.is_empty() {
            self.sim(
                reqwest::Method::POST,
                "faults",
                json!({ "kind": "workspace_error", "usernames": failing, "code": "ChaosError",
                        "message": "made to fail by the chaos run" }),
            )
            .await?;
        }
        Ok(())
    }

    async fn stop_faults(&self) -> anyhow::Result<()> {
        self.faults_on.store(false, Relaxed);
        self.sim(reqwest::Method::DELETE, "faults", Value::Null).await?;
        Ok(())
    }

    /// The HR events queue: FIFO, or standard in the standard-queue run.
    fn hr_queue(&self) -> anyhow::Result<&local_stack::provision::QueueInfo> {
        let queues = &self.stack.resources.queues;
        queues.get("hr-events.fifo").or_else(|| queues.get("hr-events")).context("no HR events queue")
    }

    /// Posts one wave, 10 per SendMessageBatch; on FIFO each employee its own message group.
    async fn post(&self, postings: &[&feed::Posting]) -> anyhow::Result<()> {
        let queue = self.hr_queue()?;
        let (url, fifo) = (queue.url.clone(), queue.name.ends_with(".fifo"));
        for (n, chunk) in postings.chunks(10).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                        .id(format!("m{i}"))
                        .message_body(feed::dated(p, shared::domain::time::Timestamp::now().millis()))
                        .set_message_group_id(
                            fifo.then(|| p.employee_id.clone().unwrap_or_else(|| format!("invalid-{n}-{i}"))),
                        )
                        .set_message_deduplication_id(
                            fifo.then(|| format!("{n}-{i}-{}", p.event_id.as_deref().unwrap_or("none"))),
                        )
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self.sqs.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await?;
            anyhow::ensure!(out.failed().is_empty(), "SendMessageBatch refused entries: {:?}", out.failed());
        }
        Ok(())
    }

    /// SUSPENDED, as the service may leave it, for the leavers picked, just before their leaves.
    async fn suspend(&self, feed: &feed::Feed) -> anyhow::Result<usize> {
        let wanted: std::collections::BTreeSet<String> =
            feed.people.iter().filter(|p| p.suspend_before_leave).map(|p| p.username.to_lowercase()).collect();
        let state = self.sim(reqwest::Method::GET, "state", Value::Null).await?;
        let mut suspended = 0;
        for ws in state["workspaces"].as_array().into_iter().flatten() {
            let user = ws["UserName"].as_str().unwrap_or_default().to_lowercase();
            if wanted.contains(&user) && ws["State"] == "AVAILABLE" {
                let id = ws["WorkspaceId"].as_str().unwrap_or_default();
                self.sim(reqwest::Method::PUT, &format!("workspaces/{id}/state"), json!({ "state": "SUSPENDED" }))
                    .await?;
                suspended += 1;
            }
        }
        Ok(suspended)
    }

    /// Messages in the three queues, waiting or in flight.
    async fn in_queues(&self) -> anyhow::Result<i64> {
        let mut total = 0;
        for queue in self.stack.resources.queues.values() {
            total += messages_in(&self.sqs, &queue.url).await?;
        }
        Ok(total)
    }
}

/// What the run did and found; written as JSON and printed.
#[derive(Debug, Serialize)]
pub struct ChaosReport {
    pub settings: ChaosSettings,
    pub wall_s: f64,
    pub settled: bool,
    pub posted: usize,
    pub injected: BTreeMap<String, u64>,
    pub functions: BTreeMap<String, Value>,
    pub oracle: oracle::Findings,
}

impl ChaosReport {
    pub fn passed(&self) -> bool {
        self.settled && self.oracle.violations() == 0
    }
}

/// The states an employee rests in once nothing is under way.
const AT_REST: [&str; 3] = ["active", "failed", "terminated"];

pub async fn run(settings: ChaosSettings) -> anyhow::Result<ChaosReport> {
    let started = Instant::now();
    eprintln!(
        "chaos: {} employees, seed {}; starting moto, the simulator and the stack",
        settings.employees, settings.seed
    );
    let world = World::start(&settings).await?;
    let now = shared::domain::time::Timestamp::now().millis();
    let feed = feed::generate(
        settings.employees,
        settings.seed,
        now,
        settings.services.workspace_error,
        settings.services.suspended,
    );
    world.inject_service_faults(&settings, &feed).await?;
    let mut suspended = 0;
    for wave in 1..=3 {
        if wave == 2 {
            // The joiners have had time to get their WorkSpaces; some will still be pending.
            wait_quiet(&world, Duration::from_secs(120)).await?;
            suspended = world.suspend(&feed).await?;
        }
        let postings: Vec<&feed::Posting> = feed.postings.iter().filter(|p| p.wave == wave).collect();
        eprintln!("chaos: wave {wave}: posting {} events", postings.len());
        world.post(&postings).await?;
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    wait_quiet(&world, Duration::from_secs(120)).await?;
    eprintln!("chaos: faults stop; letting the world settle (at most {} s)", settings.settle_timeout_s);
    world.stop_faults().await?;
    let settled = settle(&world, &feed, Duration::from_secs(settings.settle_timeout_s)).await?;
    // Whom each fault hit: the store's by the keys and bodies of the calls, the runner's by the
    // messages of the batches (a scheduled run names no one).
    let mut hits = world.store_hits.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    for (employee, faults) in world.stack.chaos.as_ref().map(|c| c.hits()).unwrap_or_default() {
        for (kind, n) in faults {
            *hits.entry(employee.clone()).or_default().entry(kind).or_default() += n;
        }
    }
    let findings = oracle::check(&world, &feed, &hits).await?;
    let mut injected = BTreeMap::new();
    injected.insert("employees hit by at least one fault".to_owned(), hits.len() as u64);
    let c = &world.store_faults;
    for (kind, count) in [
        ("store calls", &c.calls),
        ("store throttled", &c.throttled),
        ("store HTTP 500", &c.server_errors),
        ("store latency spikes", &c.delayed),
        ("store replies lost after the write", &c.replies_lost),
    ] {
        injected.insert(kind.to_owned(), count.load(Relaxed));
    }
    if let Some(chaos) = &world.stack.chaos {
        let counts = chaos.counts();
        injected.insert("extra deliveries".into(), counts.extra_deliveries);
        injected.insert("processes killed mid-invocation".into(), counts.kills);
    }
    injected.insert("WorkSpaces SUSPENDED before the leave".into(), suspended as u64);
    injected.insert(
        "WorkSpaces made to end in ERROR".into(),
        feed.people.iter().filter(|p| p.workspace_fails).count() as u64,
    );
    let calls = world.sim(reqwest::Method::GET, "calls", Value::Null).await?;
    for (op, stats) in calls.as_object().into_iter().flatten() {
        for (field, label) in [("throttled", "throttled"), ("injected_errors", "HTTP 500")] {
            let n = stats[field].as_u64().unwrap_or(0);
            if n > 0 {
                injected.insert(format!("{op} {label}"), n);
            }
        }
    }
    let functions = world
        .stack
        .functions
        .iter()
        .map(|(name, pool)| {
            let s = pool.stats();
            (
                name.clone(),
                json!({ "invocations": s.invocations, "errors": s.errors, "timeouts": s.timeouts,
                        "crashes": s.crashes, "peak_rss_mib": s.peak_rss_kib as f64 / 1024.0 }),
            )
        })
        .collect();
    Ok(ChaosReport {
        wall_s: started.elapsed().as_secs_f64(),
        settled,
        posted: feed.postings.len(),
        injected,
        functions,
        oracle: findings,
        settings,
    })
}

/// Waits until the queues are empty (or `limit` passes): the functions have caught up.
async fn wait_quiet(world: &World, limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && world.in_queues().await? > 0 {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}

/// Waits until every queue is empty, nothing is held, and every employee of the feed is at rest
/// (or `limit` passes; then the run is reported unsettled). The table is scanned when the queues
/// are empty, at most every 15 s, and at least every minute: a scan is costly for moto, and
/// moto's time is what the functions need to settle.
async fn settle(world: &World, feed: &feed::Feed, limit: Duration) -> anyhow::Result<bool> {
    const SCAN_EVERY: Duration = Duration::from_secs(15);
    let deadline = Instant::now() + limit;
    let mut last_said = Instant::now();
    let mut last_scan: Option<Instant> = None;
    let mut seen: Option<(BTreeMap<String, usize>, usize)> = None;
    loop {
        let queued = world.in_queues().await?;
        let since = last_scan.map(|at| at.elapsed());
        // Messages come and go while movers and leavers finish: look at least every minute.
        if since.is_none_or(|t| (queued == 0 && t > SCAN_EVERY) || t > 4 * SCAN_EVERY) {
            let table = oracle::Table::read(world).await?;
            last_scan = Some(Instant::now());
            let mut busy: BTreeMap<String, usize> = BTreeMap::new();
            for record in table.records.values().filter(|r| !AT_REST.contains(&r.state.as_str())) {
                *busy.entry(record.state.clone()).or_default() += 1;
            }
            if busy.is_empty() && table.held == 0 {
                return Ok(true);
            }
            seen = Some((busy, table.held));
        }
        let (busy, held) = seen.clone().unwrap_or_default();
        if Instant::now() > deadline {
            eprintln!(
                "chaos: not settled: {queued} messages queued; at the last look {held} held events, busy {busy:?}"
            );
            return Ok(false);
        }
        if last_said.elapsed() > Duration::from_secs(20) {
            eprintln!(
                "chaos: settling: {queued} messages queued; at the last look {held} held, busy {busy:?} (of {})",
                feed.people.len()
            );
            last_said = Instant::now();
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// The run as a reader wants it: the load, the faults injected, the verdict on each invariant,
/// and the story of every employee that broke one.
pub fn summary(report: &ChaosReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let s = &report.settings;
    let o = &report.oracle;
    let _ = writeln!(
        out,
        "\n== chaos: {} employees, seed {}, {} events posted, {:.0} s, settled: {} ==",
        s.employees, s.seed, report.posted, report.wall_s, report.settled
    );
    let _ = writeln!(out, "faults injected:");
    for (kind, n) in &report.injected {
        let _ = writeln!(out, "  {kind:<48} {n:>8}");
    }
    let _ = writeln!(out, "invariants (each must be 0):");
    for (name, list) in o.invariants() {
        let _ = writeln!(out, "  {name:<48} {:>8}", list.len());
        for story in list.iter().take(10) {
            let _ = writeln!(out, "      {story}");
        }
    }
    let _ = writeln!(out, "left for the operator (reported):");
    let _ = writeln!(out, "  {:<48} {:>8}", "employees failed, with their code", o.failed.len());
    let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
    for failure in o.failed.values() {
        *codes.entry(failure.split(':').next().unwrap_or_default()).or_default() += 1;
    }
    for (code, n) in codes {
        let _ = writeln!(out, "      {code}: {n}");
    }
    let _ = writeln!(
        out,
        "  {:<48} {:>8}",
        "WorkSpaces kept for the operator (no log-in)",
        o.workspaces_kept_for_the_operator.len()
    );
    let _ = writeln!(out, "  {:<48} {:>8}", "employees held by the guard", o.held_by_guard.len());
    let _ = writeln!(out, "  {:<48} {:>8}", "messages in DLQs", o.dlq.values().map(Vec::len).sum::<usize>());
    let _ = writeln!(out, "employees by state: {:?}", o.employees_by_state);
    let _ = writeln!(out, "history lines by outcome: {:?}", o.outcomes);
    let _ = writeln!(out, "WorkSpaces calls: {:?} (floor of CreateWorkspaces: {})", o.workspaces_calls, o.create_floor);
    for (name, f) in &report.functions {
        let _ = writeln!(out, "function {name}: {f}");
    }
    out
}
