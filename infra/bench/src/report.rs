//! What a benchmark run reports, computed from counters taken before and after each phase. Pure:
//! no I/O here, so the arithmetic is unit-tested.

use crate::proxy::{Counts, OpCount};
use local_stack::runtime::FunctionStats;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Items per CreateWorkspaces / TerminateWorkspaces / DescribeWorkspaces(ids) call.
pub const WORKSPACES_PER_CALL: usize = 25;

const READS: [&str; 5] =
    ["DynamoDB.GetItem", "DynamoDB.BatchGetItem", "DynamoDB.Query", "DynamoDB.Scan", "DynamoDB.TransactGetItems"];
const WRITES: [&str; 5] = [
    "DynamoDB.PutItem",
    "DynamoDB.UpdateItem",
    "DynamoDB.DeleteItem",
    "DynamoDB.BatchWriteItem",
    "DynamoDB.TransactWriteItems",
];

/// Counters at one moment: the simulator's per-operation stats (`GET /_sim/calls`), the calls
/// the functions made to the emulators, the runner's per-function stats, and CPU time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub sim_calls: Value,
    pub moto_calls: Counts,
    pub functions: BTreeMap<String, FunctionStats>,
    /// CPU seconds used so far, by process: `store` (the DynamoDB emulator), `queue` (SQS),
    /// `harness` (this process: the simulator, the runner, the counting proxies); and `machine`,
    /// every core's busy time.
    pub cpu_s: BTreeMap<String, f64>,
}

/// One resource's use over a phase: `share` is its busy fraction of what it can give (1.0:
/// saturated), from measurements.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ResourceUse {
    pub resource: String,
    pub share: f64,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ApiUse {
    pub calls: u64,
    /// ceil(N/25): the fewest calls N WorkSpaces can take.
    pub floor: u64,
    pub items: u64,
    pub items_per_call: f64,
    pub max_items: u64,
    /// ThrottlingException answers (rate limit), all retried by the SDK or the queue.
    pub throttled: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoreUse {
    pub read_requests: u64,
    /// Items read (a BatchGetItem of 25 keys is 25).
    pub read_items: u64,
    pub write_requests: u64,
    pub write_items: u64,
    pub read_items_per_employee: f64,
    pub write_items_per_employee: f64,
    /// SendMessage(Batch) entries the functions sent, per employee.
    pub messages_sent_per_employee: f64,
    /// Lifecycle events the publisher and the auditor put on the bus: PutEvents calls, their
    /// entries, and entries per employee (each employee's changes over the run).
    pub put_events_calls: u64,
    pub lifecycle_events: u64,
    pub lifecycle_events_per_employee: f64,
    /// moto's mean answer time over the functions' DynamoDB and SQS calls: the local stack's
    /// floor under every handler time.
    pub emulator_ms_per_call: f64,
    pub by_operation: Counts,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Invocations {
    pub invocations: u64,
    /// SQS records delivered (0 for scheduled functions).
    pub messages: u64,
    pub messages_per_invocation: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: String,
    pub employees: usize,
    /// Reached the phase's end state (active; terminated).
    pub completed: usize,
    pub failed: usize,
    /// First event posted → last employee confirmed, from the records' own timestamps.
    pub wall_s: f64,
    pub workspaces_per_s: f64,
    /// The most WorkSpaces a second the API rate allows a phase (its rate model's
    /// [`ceiling_per_s`]).
    pub ceiling_per_s: f64,
    /// The least time the phase's WorkSpaces calls at the floor need at the sustained rate.
    pub api_floor_s: f64,
    /// `service` (one bucket for every WorkSpaces operation) or `operation` (a bucket each).
    pub rate_scope: String,
    pub api: BTreeMap<String, ApiUse>,
    pub directory_calls: BTreeMap<String, u64>,
    pub store: StoreUse,
    pub invocations: BTreeMap<String, Invocations>,
    /// Every resource's use, the busiest first: it bounded the phase.
    pub resources: Vec<ResourceUse>,
    /// When each WorkSpaces operation's accepted calls ran, in seconds from the first event
    /// posted: the lead-in before the API is used, and the tail after it.
    pub timeline: BTreeMap<String, Span>,
}

/// The first and last accepted call of an operation in a phase, seconds from the phase's start.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Span {
    pub first_s: f64,
    pub last_s: f64,
    pub calls: u64,
}

/// The span of `op`'s calls accepted between two snapshots, from `start_ms` (Unix ms).
pub fn span(before: &Snapshot, after: &Snapshot, op: &str, start_ms: i64) -> Option<Span> {
    let times = |s: &Snapshot| -> Vec<u64> {
        s.sim_calls[op]["at_ms"].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default()
    };
    let earlier = times(before).len();
    let during: Vec<u64> = times(after).get(earlier..).unwrap_or_default().to_vec();
    let from_start = |ms: u64| (ms as f64 - start_ms as f64) / 1000.0;
    Some(Span {
        first_s: from_start(*during.iter().min()?),
        last_s: from_start(*during.iter().max()?),
        calls: during.len() as u64,
    })
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunctionCost {
    pub cold_starts: usize,
    /// Process start to its first Runtime API poll.
    pub init_ms_p50: f64,
    pub init_ms_max: f64,
    pub handler_ms_p50: f64,
    pub handler_ms_p99: f64,
    /// The largest batch seen, the number of batches of that size and their handler times.
    pub full_batch_size: usize,
    pub full_batches: usize,
    pub full_batch_ms_p50: f64,
    pub full_batch_ms_p99: f64,
    pub handler_ms_per_message: f64,
    pub peak_rss_mib: f64,
    pub errors: u64,
}

pub fn ceil_div(n: usize, d: usize) -> u64 {
    n.div_ceil(d) as u64
}

/// WorkSpaces calls a phase makes per 25 employees at the floor: one CreateWorkspaces (or
/// TerminateWorkspaces) and one DescribeWorkspaces to confirm them. Against one shared bucket
/// both count; with a bucket per operation each draws on its own, and one bounds the phase.
pub fn calls_per_chunk(per_operation: bool) -> f64 {
    if per_operation { 1.0 } else { 2.0 }
}

/// The most WorkSpaces a second a phase can reach at `rate` calls a second: rate × 25 ÷ the
/// calls per 25 (25 shared, 50 per operation, at 2 calls/s).
pub fn ceiling_per_s(rate: f64, per_operation: bool) -> f64 {
    rate * WORKSPACES_PER_CALL as f64 / calls_per_chunk(per_operation)
}

/// The least time `n` employees' WorkSpaces calls need at the floor.
pub fn api_floor_s(n: usize, rate: f64, per_operation: bool) -> f64 {
    ceil_div(n, WORKSPACES_PER_CALL) as f64 * calls_per_chunk(per_operation) / rate
}

/// Nearest-rank percentile (`p` in 0..=1); 0 for no samples.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (p * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

/// Items of each accepted call, and the throttled answers, of one simulator operation.
fn sim_op(snapshot: &Snapshot, op: &str) -> (Vec<u64>, u64) {
    let stats = &snapshot.sim_calls[op];
    let items = stats["items"].as_array().map(|a| a.iter().filter_map(Value::as_u64).collect()).unwrap_or_default();
    (items, stats["throttled"].as_u64().unwrap_or(0))
}

/// WorkSpaces use between two snapshots, next to ceil(N/25).
pub fn api_use(before: &Snapshot, after: &Snapshot, op: &str, employees: usize) -> ApiUse {
    let (items0, throttled0) = sim_op(before, op);
    let (items1, throttled1) = sim_op(after, op);
    let items: Vec<u64> = items1.get(items0.len()..).unwrap_or_default().to_vec();
    let accepted = items.len() as u64;
    let total: u64 = items.iter().sum();
    ApiUse {
        calls: accepted,
        floor: ceil_div(employees, WORKSPACES_PER_CALL),
        items: total,
        items_per_call: ratio(total as f64, accepted as f64),
        max_items: items.iter().copied().max().unwrap_or(0),
        throttled: throttled1.saturating_sub(throttled0),
    }
}

/// Accepted calls of every simulator operation outside WorkSpaces (directory users, passwords).
pub fn directory_calls(before: &Snapshot, after: &Snapshot) -> BTreeMap<String, u64> {
    let Some(ops) = after.sim_calls.as_object() else { return BTreeMap::new() };
    ops.keys()
        .filter(|op| !op.starts_with("WorkSpaces."))
        .map(|op| {
            let accepted = |s: &Snapshot| s.sim_calls[op]["items"].as_array().map_or(0, |a| a.len() as u64);
            (op.clone(), accepted(after).saturating_sub(accepted(before)))
        })
        .filter(|(_, n)| *n > 0)
        .collect()
}

pub fn moto_delta(before: &Counts, after: &Counts) -> Counts {
    after
        .iter()
        .map(|(op, c)| {
            let b = before.get(op).copied().unwrap_or_default();
            let delta = OpCount {
                calls: c.calls.saturating_sub(b.calls),
                items: c.items.saturating_sub(b.items),
                total_ms: (c.total_ms - b.total_ms).max(0.0),
                // A running maximum cannot be split by phase: the run's maximum so far.
                max_ms: c.max_ms,
            };
            (op.clone(), delta)
        })
        .filter(|(_, c)| c.calls > 0)
        .collect()
}

pub fn store_use(delta: Counts, employees: usize) -> StoreUse {
    let sum = |ops: &[&str], f: fn(&OpCount) -> u64| -> u64 { ops.iter().filter_map(|op| delta.get(*op)).map(f).sum() };
    let read_items = sum(&READS, |c| c.items);
    let write_items = sum(&WRITES, |c| c.items);
    let sent = sum(&["SQS.SendMessage", "SQS.SendMessageBatch"], |c| c.items);
    let events = sum(&["events.PutEvents"], |c| c.items);
    let n = employees.max(1) as f64;
    let calls: u64 = delta.values().map(|c| c.calls).sum();
    let total_ms: f64 = delta.values().map(|c| c.total_ms).sum();
    StoreUse {
        emulator_ms_per_call: ratio(total_ms, calls as f64),
        read_requests: sum(&READS, |c| c.calls),
        read_items,
        write_requests: sum(&WRITES, |c| c.calls),
        write_items,
        read_items_per_employee: read_items as f64 / n,
        write_items_per_employee: write_items as f64 / n,
        messages_sent_per_employee: sent as f64 / n,
        put_events_calls: sum(&["events.PutEvents"], |c| c.calls),
        lifecycle_events: events,
        lifecycle_events_per_employee: events as f64 / n,
        by_operation: delta,
    }
}

/// What each resource gave a phase of `wall_s`, the busiest first:
/// - the WorkSpaces API: calls accepted against what its bucket(s) admit (burst + rate × wall);
/// - each SQS-triggered function: handler time against its MaximumConcurrency × wall;
/// - the emulators (single-threaded moto saturates at one core), this harness, the machine's
///   `cores`: CPU time against wall time.
pub fn resource_use(
    before: &Snapshot,
    after: &Snapshot,
    wall_s: f64,
    (rate, burst, per_operation): (f64, f64, bool),
    concurrency: &BTreeMap<String, usize>,
    cores: usize,
) -> Vec<ResourceUse> {
    let mut out = Vec::new();
    let wall_s = wall_s.max(f64::MIN_POSITIVE);
    let admitted = burst + rate * wall_s;
    let accepted: Vec<(String, u64)> =
        ["CreateWorkspaces", "TerminateWorkspaces", "DescribeWorkspaces", "DescribeTags"]
            .iter()
            .map(|op| {
                let key = format!("WorkSpaces.{op}");
                let (calls0, _) = sim_op(before, &key);
                let (calls1, _) = sim_op(after, &key);
                (op.to_string(), calls1.len().saturating_sub(calls0.len()) as u64)
            })
            .collect();
    if per_operation {
        if let Some((op, calls)) = accepted.iter().max_by_key(|(_, c)| *c) {
            let detail = format!("{op}: {calls} calls, its bucket admits {admitted:.0}");
            out.push(ResourceUse { resource: "WorkSpaces API".into(), share: *calls as f64 / admitted, detail });
        }
    } else {
        let calls: u64 = accepted.iter().map(|(_, c)| c).sum();
        let detail = format!("{calls} calls, the shared bucket admits {admitted:.0}");
        out.push(ResourceUse { resource: "WorkSpaces API".into(), share: calls as f64 / admitted, detail });
    }
    for (name, stats) in &after.functions {
        let Some(&slots) = concurrency.get(name) else { continue };
        let done = before.functions.get(name).map_or(0, |b| b.batch_duration_ms.len());
        let busy_ms: f64 = stats.batch_duration_ms.get(done..).unwrap_or_default().iter().sum();
        if busy_ms <= 0.0 {
            // Not part of this phase.
            continue;
        }
        let share = busy_ms / 1000.0 / (slots as f64 * wall_s);
        let detail = format!("{:.0} s of handler time in {slots} concurrent slots", busy_ms / 1000.0);
        out.push(ResourceUse { resource: format!("function {name}"), share, detail });
    }
    let cpu = |key: &str| after.cpu_s.get(key).map(|a| a - before.cpu_s.get(key).copied().unwrap_or(0.0));
    for (key, what, of) in [
        ("store", "DynamoDB emulator", 1.0),
        ("queue", "SQS emulator", 1.0),
        ("harness", "bench harness (simulator, runner, proxies)", cores as f64),
        ("machine", "machine CPU", cores as f64),
    ] {
        if let Some(used) = cpu(key) {
            let detail = format!("{used:.0} CPU s in {wall_s:.0} s ({:.0} % of a core)", 100.0 * used / wall_s);
            out.push(ResourceUse { resource: what.into(), share: used / wall_s / of, detail });
        }
    }
    out.sort_by(|a, b| b.share.total_cmp(&a.share));
    out
}

/// Invocations and SQS records per function between two snapshots.
pub fn invocations(before: &Snapshot, after: &Snapshot) -> BTreeMap<String, Invocations> {
    after
        .functions
        .iter()
        .map(|(name, a)| {
            let b = before.functions.get(name).cloned().unwrap_or_default();
            let invocations = a.invocations.saturating_sub(b.invocations);
            let messages: u64 =
                a.batch_sizes.get(b.batch_sizes.len()..).unwrap_or_default().iter().map(|s| *s as u64).sum();
            let per = ratio(messages as f64, invocations as f64);
            (name.clone(), Invocations { invocations, messages, messages_per_invocation: per })
        })
        .collect()
}

/// A function's cost over the whole run.
pub fn function_cost(stats: &FunctionStats) -> FunctionCost {
    let full = stats.batch_sizes.iter().copied().max().unwrap_or(0);
    let full_ms: Vec<f64> = stats
        .batch_sizes
        .iter()
        .zip(&stats.batch_duration_ms)
        .filter(|(size, _)| **size == full && full > 0)
        .map(|(_, ms)| *ms)
        .collect();
    let messages: usize = stats.batch_sizes.iter().sum();
    let batch_ms: f64 = stats.batch_duration_ms.iter().sum();
    FunctionCost {
        cold_starts: stats.init_ms.len(),
        init_ms_p50: percentile(&stats.init_ms, 0.5),
        init_ms_max: stats.init_ms.iter().copied().fold(0.0, f64::max),
        handler_ms_p50: percentile(&stats.duration_ms, 0.5),
        handler_ms_p99: percentile(&stats.duration_ms, 0.99),
        full_batch_size: full,
        full_batches: full_ms.len(),
        full_batch_ms_p50: percentile(&full_ms, 0.5),
        full_batch_ms_p99: percentile(&full_ms, 0.99),
        handler_ms_per_message: ratio(batch_ms, messages as f64),
        peak_rss_mib: stats.peak_rss_kib as f64 / 1024.0,
        errors: stats.errors + stats.timeouts + stats.crashes,
    }
}

/// Release arm64 artefacts of one function.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Artefact {
    pub bootstrap_bytes: Option<u64>,
    pub zip_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub employees: usize,
    /// The local DynamoDB it ran on (`moto`, `dynoxide`).
    pub store: String,
    pub phases: Vec<PhaseReport>,
    /// The drift audit run once between the phases, over the N active employees.
    pub audit: Option<AuditCost>,
    /// Join and leave together.
    pub lifecycle_store: StoreUse,
    pub functions: BTreeMap<String, FunctionCost>,
    /// WorkSpaces still in the simulator after the leavers, and messages in any DLQ.
    pub workspaces_left: usize,
    pub dlq_messages: i64,
    /// Lifecycle events in the example subscriber's queue at the end, and how long after the
    /// last leaver's confirmation the publisher's last PutEvents went out.
    pub events_received: i64,
    pub events_caught_up_s: Option<f64>,
}

/// What one drift audit of N active employees and their WorkSpaces cost.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditCost {
    pub wall_s: f64,
    pub employees_checked: u64,
    pub workspaces_listed: u64,
    /// Findings reported (0 on the bench's stack, where nothing drifts).
    pub findings: u64,
    /// DescribeWorkspaces calls the simulator served during the audit (the audit's own count
    /// beside it: they must agree), and the floor ceil(N/25).
    pub describe_calls: u64,
    pub describe_calls_reported: u64,
    pub describe_floor: u64,
    /// The audit's calls a second (paced by AUDIT_CALLS_PER_SECOND).
    pub calls_per_s: f64,
    /// The Scan's pages, and the items of the table it read through (every item, not only the
    /// records: history, claims, name owners).
    pub scan_requests: u64,
    pub table_items: u64,
    /// Every function's DynamoDB requests during the audit (the reconciler's idle runs too).
    pub store: StoreUse,
    /// The auditor's peak memory, as the runner measured it.
    pub peak_rss_mib: Option<f64>,
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-".into(), |b| format!("{:.2}", b as f64 / 1048576.0))
}

/// The on-screen table of one run.
pub fn render(run: &RunReport, artefacts: &BTreeMap<String, Artefact>) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "\n== {} joiners, then {} leavers (DynamoDB: {}) ==", run.employees, run.employees, run.store);
    let _ = writeln!(
        out,
        "{:<6} {:>9} {:>8} {:>8} {:>7} | {:<28} | {:<28} | {:<22} | {:>9}",
        "phase",
        "done",
        "wall s",
        "WS/s",
        "ceiling",
        "CreateWorkspaces calls/floor",
        "TerminateWorkspaces",
        "DescribeWorkspaces",
        "throttled"
    );
    for p in &run.phases {
        let api = |op: &str| {
            p.api.get(op).map_or_else(
                || "-".to_owned(),
                |a| format!("{}/{} ({:.1} per call)", a.calls, a.floor, a.items_per_call),
            )
        };
        let throttled: u64 = p.api.values().map(|a| a.throttled).sum();
        let _ = writeln!(
            out,
            "{:<6} {:>9} {:>8.1} {:>8.2} {:>7.1} | {:<28} | {:<28} | {:<22} | {:>9}",
            p.phase,
            format!("{}/{}", p.completed, p.employees),
            p.wall_s,
            p.workspaces_per_s,
            p.ceiling_per_s,
            api("CreateWorkspaces"),
            api("TerminateWorkspaces"),
            api("DescribeWorkspaces"),
            throttled
        );
    }
    if let Some(p) = run.phases.first() {
        let share: Vec<String> = run
            .phases
            .iter()
            .map(|p| {
                format!("{} {:.0} %", p.phase, 100.0 * p.workspaces_per_s / p.ceiling_per_s.max(f64::MIN_POSITIVE))
            })
            .collect();
        let _ = writeln!(
            out,
            "ceiling {:.1} WorkSpaces/s: the WorkSpaces rate per {} ({} call(s) per 25 at the floor); reached: {}",
            p.ceiling_per_s,
            p.rate_scope,
            calls_per_chunk(p.rate_scope == "operation"),
            share.join(", ")
        );
    }
    let throttled: Vec<String> = run
        .phases
        .iter()
        .map(|p| format!("{} {}", p.phase, p.api.values().map(|a| a.throttled).sum::<u64>()))
        .collect();
    let failed: usize = run.phases.iter().map(|p| p.failed).sum();
    let absorbed = failed == 0 && run.dlq_messages == 0 && run.phases.iter().all(|p| p.completed == p.employees);
    let _ = writeln!(
        out,
        "ThrottlingException answers: {}; {}",
        throttled.join(", "),
        if absorbed { "all absorbed (every employee confirmed, none failed, DLQs empty)" } else { "NOT all absorbed" }
    );
    for p in &run.phases {
        let lambdas: Vec<String> = p
            .invocations
            .iter()
            .filter(|(_, i)| i.invocations > 0)
            .map(|(n, i)| {
                if i.messages > 0 {
                    format!("{n} {}×{:.1}", i.invocations, i.messages_per_invocation)
                } else {
                    format!("{n} {}", i.invocations)
                }
            })
            .collect();
        let dir: Vec<String> = p.directory_calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
        let _ = writeln!(
            out,
            "{:<6} DynamoDB per employee: {:.1} items read, {:.1} written; {:.1} messages sent; emulators {:.1} ms/call | Lambda (invocations×messages): {} | directory: {}",
            p.phase,
            p.store.read_items_per_employee,
            p.store.write_items_per_employee,
            p.store.messages_sent_per_employee,
            p.store.emulator_ms_per_call,
            lambdas.join(", "),
            if dir.is_empty() { "-".into() } else { dir.join(", ") }
        );
    }
    for p in &run.phases {
        let spans: Vec<String> = p
            .timeline
            .iter()
            .map(|(op, s)| format!("{op} {} calls from {:.1} s to {:.1} s", s.calls, s.first_s, s.last_s))
            .collect();
        if !spans.is_empty() {
            let _ = writeln!(out, "{:<6} timeline: {}; last confirmed at {:.1} s", p.phase, spans.join(", "), p.wall_s);
        }
    }
    for p in &run.phases {
        let uses: Vec<String> =
            p.resources.iter().map(|r| format!("{} {:.0} % ({})", r.resource, 100.0 * r.share, r.detail)).collect();
        let _ = writeln!(out, "{:<6} bounded by, busiest first: {}", p.phase, uses.join("; "));
    }
    if let Some(a) = &run.audit {
        let _ = writeln!(
            out,
            "audit  {} employees, {} WorkSpaces listed in {:.1} s: {} DescribeWorkspaces calls (floor {}, the audit counted {}), {:.2} calls/s; one Scan of {} pages over the table's {} items; {} findings{}",
            a.employees_checked,
            a.workspaces_listed,
            a.wall_s,
            a.describe_calls,
            a.describe_floor,
            a.describe_calls_reported,
            a.calls_per_s,
            a.scan_requests,
            a.table_items,
            a.findings,
            a.peak_rss_mib.map(|m| format!("; peak RSS {m:.0} MiB")).unwrap_or_default()
        );
    }
    let s = &run.lifecycle_store;
    let _ = writeln!(
        out,
        "lifecycle DynamoDB per employee: {:.1} items read ({} requests), {:.1} items written ({} requests); left in simulator: {}; DLQ messages: {}",
        s.read_items_per_employee,
        s.read_requests,
        s.write_items_per_employee,
        s.write_requests,
        run.workspaces_left,
        run.dlq_messages
    );
    let _ = writeln!(
        out,
        "lifecycle events: {} in {} PutEvents calls ({:.1} a call, at most 10), {:.2} per employee; {} received by the subscriber queue; the last published {} after the last leaver was confirmed",
        s.lifecycle_events,
        s.put_events_calls,
        ratio(s.lifecycle_events as f64, s.put_events_calls as f64),
        s.lifecycle_events_per_employee,
        run.events_received,
        run.events_caught_up_s.map_or("-".to_owned(), |s| format!("{s:.1} s"))
    );
    let _ = writeln!(
        out,
        "{:<12} {:>6} {:>9} {:>9} {:>9} {:>9} {:>17} {:>9} {:>9} {:>8} {:>10} {:>8} {:>6}",
        "function",
        "cold",
        "init p50",
        "init max",
        "p50 ms",
        "p99 ms",
        "full batch (n)",
        "p50 ms",
        "p99 ms",
        "ms/msg",
        "peak MiB",
        "bin MiB",
        "zip MiB"
    );
    for (name, f) in &run.functions {
        let a = artefacts.get(name);
        let _ = writeln!(
            out,
            "{:<12} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>17} {:>9.1} {:>9.1} {:>8.2} {:>10.1} {:>8} {:>6}",
            name,
            f.cold_starts,
            f.init_ms_p50,
            f.init_ms_max,
            f.handler_ms_p50,
            f.handler_ms_p99,
            if f.full_batch_size > 0 { format!("{} ({})", f.full_batch_size, f.full_batches) } else { "-".into() },
            f.full_batch_ms_p50,
            f.full_batch_ms_p99,
            f.handler_ms_per_message,
            f.peak_rss_mib,
            mib(a.and_then(|a| a.bootstrap_bytes)),
            mib(a.and_then(|a| a.zip_bytes))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn api_use_counts_only_the_calls_of_the_phase_against_the_floor() {
        let before = Snapshot {
            sim_calls: json!({ "WorkSpaces.CreateWorkspaces": { "calls": 4, "throttled": 1, "items": [25, 25, 10] } }),
            ..Default::default()
        };
        let after = Snapshot {
            sim_calls: json!({ "WorkSpaces.CreateWorkspaces": { "calls": 9, "throttled": 2, "items": [25, 25, 10, 25, 25, 3] } }),
            ..Default::default()
        };
        let api = api_use(&before, &after, "WorkSpaces.CreateWorkspaces", 53);
        assert_eq!((api.calls, api.floor, api.items, api.max_items, api.throttled), (3, 3, 53, 25, 1));
        assert!((api.items_per_call - 53.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn a_phase_timeline_counts_only_its_own_calls_from_its_start() {
        let calls =
            |at: &[u64]| json!({ "WorkSpaces.TerminateWorkspaces": { "items": vec![25; at.len()], "at_ms": at } });
        let before = Snapshot { sim_calls: calls(&[1_000, 2_000]), ..Default::default() };
        let after = Snapshot { sim_calls: calls(&[1_000, 2_000, 13_500, 12_000, 210_000]), ..Default::default() };
        let found = span(&before, &after, "WorkSpaces.TerminateWorkspaces", 10_000).expect("calls in the phase");
        assert_eq!(found, Span { first_s: 2.0, last_s: 200.0, calls: 3 });
        assert_eq!(span(&after, &after, "WorkSpaces.TerminateWorkspaces", 10_000), None);
        assert_eq!(span(&before, &after, "WorkSpaces.CreateWorkspaces", 10_000), None);
    }

    #[test]
    fn the_busiest_resource_comes_first_and_each_is_measured_against_what_it_can_give() {
        let calls = |n: usize| json!({ "items": vec![25; n], "throttled": 0 });
        let before = Snapshot {
            sim_calls: json!({ "WorkSpaces.CreateWorkspaces": calls(2), "WorkSpaces.DescribeWorkspaces": calls(2) }),
            functions: [("intake".to_owned(), FunctionStats { batch_duration_ms: vec![500.0], ..Default::default() })]
                .into(),
            cpu_s: [("store".to_owned(), 10.0), ("machine".to_owned(), 50.0)].into(),
            ..Default::default()
        };
        // 100 s: 40 creates and 40 describes; the intake busy 60 s of 2 × 100; moto 90 CPU s.
        let after = Snapshot {
            sim_calls: json!({ "WorkSpaces.CreateWorkspaces": calls(42), "WorkSpaces.DescribeWorkspaces": calls(42) }),
            functions: [(
                "intake".to_owned(),
                FunctionStats { batch_duration_ms: vec![500.0, 30_000.0, 30_000.0], ..Default::default() },
            )]
            .into(),
            cpu_s: [("store".to_owned(), 100.0), ("machine".to_owned(), 150.0)].into(),
            ..Default::default()
        };
        let slots: BTreeMap<String, usize> = [("intake".to_owned(), 2)].into();
        let shared = resource_use(&before, &after, 100.0, (2.0, 5.0, false), &slots, 2);
        let shares: Vec<(&str, f64)> = shared.iter().map(|r| (r.resource.as_str(), r.share)).collect();
        let order: Vec<&str> = shares.iter().map(|(r, _)| *r).collect();
        assert_eq!(order, ["DynamoDB emulator", "machine CPU", "WorkSpaces API", "function intake"]);
        let expected = [0.9, 0.5, 80.0 / 205.0, 0.3];
        assert!(shares.iter().zip(expected).all(|((_, got), want)| (got - want).abs() < 1e-9), "{shares:?}");
        // Per operation, the busiest operation's bucket counts alone.
        let own = resource_use(&before, &after, 100.0, (2.0, 5.0, true), &slots, 2);
        let api = own.iter().find(|r| r.resource == "WorkSpaces API").unwrap();
        assert!((api.share - 40.0 / 205.0).abs() < 1e-9);
    }

    #[test]
    fn store_use_is_per_employee_in_items() {
        let before: Counts =
            [("DynamoDB.PutItem".to_owned(), OpCount { calls: 5, items: 5, ..Default::default() })].into();
        let after: Counts = [
            ("DynamoDB.PutItem".to_owned(), OpCount { calls: 25, items: 25, ..Default::default() }),
            ("DynamoDB.BatchGetItem".to_owned(), OpCount { calls: 2, items: 40, ..Default::default() }),
            ("SQS.SendMessageBatch".to_owned(), OpCount { calls: 2, items: 20, ..Default::default() }),
        ]
        .into();
        let s = store_use(moto_delta(&before, &after), 20);
        assert_eq!((s.read_requests, s.read_items, s.write_requests, s.write_items), (2, 40, 20, 20));
        assert_eq!(
            (s.read_items_per_employee, s.write_items_per_employee, s.messages_sent_per_employee),
            (2.0, 1.0, 1.0)
        );
    }

    #[test]
    fn full_batches_are_the_largest_seen() {
        let stats = FunctionStats {
            invocations: 4,
            init_ms: vec![30.0],
            duration_ms: vec![100.0, 40.0, 120.0, 10.0],
            batch_sizes: vec![10, 4, 10, 1],
            batch_duration_ms: vec![100.0, 40.0, 120.0, 10.0],
            peak_rss_kib: 20480,
            ..Default::default()
        };
        let cost = function_cost(&stats);
        assert_eq!((cost.full_batch_size, cost.full_batches), (10, 2));
        assert_eq!((cost.full_batch_ms_p50, cost.full_batch_ms_p99), (100.0, 120.0));
        assert!((cost.handler_ms_per_message - 270.0 / 25.0).abs() < 1e-9);
        assert_eq!(cost.peak_rss_mib, 20.0);
    }
}
