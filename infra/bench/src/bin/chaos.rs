//! `chaos`: N employees through the local stack under many faults at once, then an independent
//! oracle's verdict (see `bench::chaos`). Exits non-zero when an invariant fails or the world
//! does not settle. `make chaos` (2,000 employees) and `make chaos-smoke` (200, in CI) run it.

use bench::chaos::{self, ChaosSettings, ServiceFaults, StoreFaults};
use bench::scenario::read_json;
use clap::Parser;
use serde_json::json;
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "N employees through the local stack under injected faults, checked by an independent oracle")]
struct Args {
    #[arg(long, default_value_t = 2000)]
    employees: usize,
    /// Repeats a run's feed and fault draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "target/debug")]
    bin_dir: PathBuf,
    /// Shares of the functions' DynamoDB and SQS calls: throttled, HTTP 500, delayed 0.3-1.5 s,
    /// and answered only after the caller gave up (the write made).
    #[arg(long, default_value_t = 0.05)]
    store_throttle: f64,
    #[arg(long, default_value_t = 0.01)]
    store_server_error: f64,
    #[arg(long, default_value_t = 0.02)]
    store_latency: f64,
    #[arg(long, default_value_t = 0.005)]
    store_lost_reply: f64,
    /// Shares of WorkSpaces calls throttled and answered HTTP 500 (on top of its 2 calls/s).
    #[arg(long, default_value_t = 0.05)]
    workspaces_throttle: f64,
    #[arg(long, default_value_t = 0.01)]
    workspaces_server_error: f64,
    /// Share of DS Data calls throttled.
    #[arg(long, default_value_t = 0.05)]
    directory_throttle: f64,
    /// Share of employees whose WorkSpace ends in ERROR, and of leavers SUSPENDED before leaving.
    #[arg(long, default_value_t = 0.02)]
    workspace_error: f64,
    #[arg(long, default_value_t = 0.05)]
    suspended: f64,
    /// Share of invocations whose process is killed mid-invocation.
    #[arg(long, default_value_t = 0.05)]
    kill: f64,
    /// Each batch delivered up to this many extra times.
    #[arg(long, default_value_t = 2)]
    extra_deliveries: u8,
    #[arg(long, default_value_t = 900)]
    settle_timeout_s: u64,
    /// Run the HR events queue as a standard queue: no order, duplicates of its own.
    #[arg(long)]
    standard_queue: bool,
    /// Record the functions' AWS calls (for `check_template.py --calls`).
    #[arg(long)]
    record_calls: Option<PathBuf>,
    #[arg(long, default_value = "target/chaos/report.json")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init();
    let args = Args::parse();
    let root = std::env::current_dir()?;
    let mut stack = read_json(&root.join("infra/local/stack.json"))?;
    // Hundreds of leaves at once are what the guard is for; it has its own tests. Here it would
    // hold most leavers and the run would test the operator, not the pipeline.
    for f in stack["functions"].as_array_mut().into_iter().flatten() {
        if f["name"] == "terminator" {
            f["environment"]["TERMINATION_GUARD_LIMIT"] = json!("0");
        }
    }
    if args.standard_queue {
        // The README's "a standard queue instead of FIFO", as the template would deploy it.
        let text =
            stack.to_string().replace("hr-events.fifo", "hr-events").replace("hr-events-dlq.fifo", "hr-events-dlq");
        stack = serde_json::from_str(&text)?;
        for q in stack["queues"].as_array_mut().into_iter().flatten() {
            if q["name"] == "hr-events" {
                q["fifo"] = json!(false);
                q["content_based_deduplication"] = json!(false);
            }
        }
    }
    let settings = ChaosSettings {
        employees: args.employees,
        seed: args.seed,
        standard_queue: args.standard_queue,
        store: StoreFaults {
            throttle: args.store_throttle,
            server_error: args.store_server_error,
            latency: args.store_latency,
            lost_reply: args.store_lost_reply,
        },
        services: ServiceFaults {
            workspaces_throttle: args.workspaces_throttle,
            workspaces_server_error: args.workspaces_server_error,
            directory_throttle: args.directory_throttle,
            workspace_error: args.workspace_error,
            suspended: args.suspended,
        },
        kill_probability: args.kill,
        max_extra_deliveries: args.extra_deliveries,
        settle_timeout_s: args.settle_timeout_s,
        root: root.clone(),
        bin_dir: args.bin_dir.clone(),
        stack,
        sim_config: read_json(&root.join("infra/local/simulator.json"))?,
        sim_seed: read_json(&root.join("infra/local/seed.json"))?,
        record_calls: args.record_calls.clone(),
    };
    let report = chaos::run(settings).await?;
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)?;
    print!("{}", chaos::summary(&report));
    eprintln!("chaos: report written to {}", args.out.display());
    anyhow::ensure!(
        report.passed(),
        "chaos: {} invariant violations (settled: {}){}",
        report.oracle.violations(),
        report.settled,
        report.oracle.broken()
    );
    Ok(())
}
