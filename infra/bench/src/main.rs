//! `bench`: N joiners then N leavers through the local stack (real function binaries, moto, the
//! simulator with the WorkSpaces rate limit), for each N asked; prints a table per N and writes
//! every figure, with the machine and the settings, to a JSON file.

use anyhow::Context;
use bench::report::{self, Artefact, RunReport};
use bench::scenario::{self, Settings, read_json};
use clap::Parser;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(about = "N joiners then N leavers through the local stack; prints and writes the figures")]
struct Args {
    /// Employees per run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    sizes: Vec<usize>,
    /// Where the function binaries to run are (release for figures worth quoting).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Simulated time runs this many times faster (lifecycles and rate limits alike).
    #[arg(long, default_value_t = 1.0)]
    time_factor: f64,
    /// How often the reconciler runs (deployed: every 5 minutes, for 20-minute lifecycles).
    #[arg(long, default_value_t = 5.0)]
    reconcile_every_s: f64,
    /// Longest a phase may take; past it the run is reported incomplete and the bench fails.
    #[arg(long)]
    phase_timeout_s: Option<u64>,
    /// Release arm64 binaries (`cargo lambda build --release --arm64`), for their sizes.
    #[arg(long)]
    arm64_dir: Option<PathBuf>,
    /// cargo lambda's output (`target/lambda/<function>/bootstrap.zip`), for the zip sizes.
    #[arg(long)]
    lambda_dir: Option<PathBuf>,
    /// HR events posted per second, as a feed that trickles rather than bursts (default: as fast
    /// as the queue takes them).
    #[arg(long)]
    post_rate: Option<f64>,
    /// Posting holds back while more than this many events wait in the HR queue (0: never);
    /// moto's FIFO queue slows down as it grows, so 10,000 at once would measure moto.
    #[arg(long, default_value_t = 300)]
    max_backlog: usize,
    /// What the WorkSpaces rate limit counts: `service` (every operation together) or
    /// `operation` (each on its own); AWS does not say, and the ceiling differs by two.
    #[arg(long, default_value = "service", value_parser = ["service", "operation"])]
    rate_scope: String,
    /// The local DynamoDB of each run, comma-separated: every size runs on each, one after the
    /// other, so the figures compare on one machine (`dynoxide` needs `make bench-tools`).
    #[arg(long, value_delimiter = ',', default_value = "moto")]
    stores: Vec<scenario::Store>,
    /// A function's MaximumConcurrency other than the stack's, as `function=N` (repeatable): to
    /// measure what another setting would give.
    #[arg(long = "max-concurrency", value_parser = parse_concurrency)]
    max_concurrency: Vec<(String, usize)>,
    /// The functions' `AWS_LAMBDA_LOG_LEVEL`.
    #[arg(long, default_value = "WARN")]
    function_log_level: String,
    #[arg(long, default_value = "target/bench/report.json")]
    out: PathBuf,
    #[arg(long, default_value = "infra/local/stack.json")]
    stack: PathBuf,
    #[arg(long, default_value = "infra/local/simulator.json")]
    simulator: PathBuf,
    #[arg(long, default_value = "infra/local/seed.json")]
    seed: PathBuf,
}

fn parse_concurrency(text: &str) -> Result<(String, usize), String> {
    let (function, n) = text.split_once('=').ok_or("expected function=N")?;
    let n: usize = n.parse().map_err(|e| format!("{n}: {e}"))?;
    if n < 2 {
        return Err("MaximumConcurrency is at least 2".into());
    }
    Ok((function.to_owned(), n))
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().filter(|m| m.is_file()).map(|m| m.len())
}

/// What the figures were measured on.
fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()));
    let meminfo = read("/proc/meminfo");
    let mem_kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "memory_gib": mem_kib.map(|k| (k as f64 / 1048576.0 * 10.0).round() / 10.0),
        "os": read("/proc/sys/kernel/osrelease").trim(),
        "rustc": rustc,
    })
}

/// A run as the report file holds it. The join-phase checkpoint still has its WorkSpaces: it is
/// marked incomplete, not failed.
fn run_entry(run: &RunReport) -> anyhow::Result<Value> {
    let mut entry = serde_json::to_value(run)?;
    entry["complete"] = json!(run.phases.len() == 2);
    Ok(entry)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init();
    let args = Args::parse();
    let root = std::env::current_dir()?;
    let mut definition = read_json(&args.stack)?;
    // N leavers at once is what the mass-termination guard is for; the bench measures the
    // pipeline's throughput, so the guard is off here (it costs one UpdateItem per chunk).
    for f in definition["functions"].as_array_mut().into_iter().flatten() {
        if f["name"] == "terminator" {
            f["environment"]["TERMINATION_GUARD_LIMIT"] = json!("0");
        }
        // The audit runs between the phases, when nothing else calls WorkSpaces: the whole rate.
        if f["name"] == "auditor" {
            f["environment"]["AUDIT_CALLS_PER_SECOND"] = json!("2");
        }
        for (function, n) in &args.max_concurrency {
            if f["name"] == function.as_str() {
                for mapping in f["sqs"].as_array_mut().into_iter().flatten() {
                    mapping["max_concurrency"] = json!(n);
                }
            }
        }
    }
    for (function, _) in &args.max_concurrency {
        let known = definition["functions"].as_array().into_iter().flatten().any(|f| f["name"] == function.as_str());
        anyhow::ensure!(known, "--max-concurrency {function}=…: no such function in {}", args.stack.display());
    }
    let stack: local_stack::stack::StackDefinition = serde_json::from_value(definition).context("stack definition")?;
    let mut sim_config = read_json(&args.simulator)?;
    sim_config["time_factor"] = json!(args.time_factor);
    sim_config["rate_scope"] = json!(args.rate_scope);
    let settings = Settings {
        root: root.clone(),
        bin_dir: args.bin_dir.clone(),
        stack: stack.clone(),
        sim_config: sim_config.clone(),
        seed: read_json(&args.seed)?,
        reconcile_every: Duration::from_secs_f64(args.reconcile_every_s),
        phase_timeout: Duration::from_secs(0),
        function_log_level: args.function_log_level.clone(),
        post_rate: args.post_rate,
        max_backlog: Some(args.max_backlog).filter(|m| *m > 0),
        store: scenario::Store::Moto,
    };
    let artefacts: BTreeMap<String, Artefact> = stack
        .functions
        .iter()
        .map(|f| {
            let artefact = Artefact {
                bootstrap_bytes: args.arm64_dir.as_ref().and_then(|d| file_size(&d.join(&f.binary))),
                zip_bytes: args.lambda_dir.as_ref().and_then(|d| file_size(&d.join(&f.binary).join("bootstrap.zip"))),
            };
            (f.name.clone(), artefact)
        })
        .collect();
    eprintln!(
        "bench: sizes {:?} on {:?}, binaries {}, time factor {}, WorkSpaces {} calls/s burst {} per {} (ceiling {} WorkSpaces/s), lifecycle {}, reconciler every {} s",
        args.sizes,
        args.stores,
        args.bin_dir.display(),
        args.time_factor,
        sim_config["rate_limits"]["WorkSpaces"]["rate"],
        sim_config["rate_limits"]["WorkSpaces"]["burst"],
        args.rate_scope,
        report::ceiling_per_s(
            sim_config["rate_limits"]["WorkSpaces"]["rate"].as_f64().unwrap_or(2.0) * args.time_factor,
            args.rate_scope == "operation"
        ),
        sim_config["lifecycle"],
        args.reconcile_every_s
    );

    let command: Vec<String> = std::env::args().collect();
    let mut document = json!({
        "command": command.join(" "),
        "machine": machine(),
        "settings": {
            "binaries": args.bin_dir,
            "time_factor": args.time_factor,
            "simulator": sim_config,
            "reconcile_every_s": args.reconcile_every_s,
            "post_rate": args.post_rate,
            "max_backlog": args.max_backlog,
            "stores": args.stores,
            "event_source_mappings": stack.functions.iter().filter(|f| !f.sqs.is_empty()).map(|f| {
                (f.name.clone(), json!({ "batch_size": f.sqs[0].batch_size, "batching_window_s": f.sqs[0].batching_window_s, "max_concurrency": f.sqs[0].max_concurrency }))
            }).collect::<BTreeMap<_, _>>(),
            "memory_mb": stack.functions.iter().map(|f| (f.name.clone(), f.memory_mb)).collect::<BTreeMap<_, _>>(),
        },
        "artefacts_arm64": artefacts,
        "runs": [],
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }

    let mut incomplete = Vec::new();
    let runs = args.sizes.iter().flat_map(|&n| args.stores.iter().map(move |&store| (n, store)));
    for (n, store) in runs {
        let timeout = args.phase_timeout_s.unwrap_or(120 + n as u64 / 2);
        let settings = Settings { phase_timeout: Duration::from_secs(timeout), store, ..settings.clone() };
        // Written after every phase: a long run stopped by hand keeps the figures before it.
        let mut write = |run: &RunReport| -> anyhow::Result<()> {
            let mut so_far = document.clone();
            if let Some(runs) = so_far["runs"].as_array_mut() {
                runs.push(run_entry(run)?);
            }
            std::fs::write(&args.out, serde_json::to_string_pretty(&so_far)?)?;
            eprintln!("bench: figures so far written to {}", args.out.display());
            Ok(())
        };
        let run = scenario::run(&settings, n, &mut write)
            .await
            .with_context(|| format!("the run with {n} employees on {}", store.name()))?;
        write(&run)?;
        print!("{}", report::render(&run, &artefacts));
        if run.phases.iter().any(|p| p.completed + p.failed < n) || run.workspaces_left > 0 || run.dlq_messages > 0 {
            incomplete.push(format!("{n} on {}", store.name()));
        }
        if let Some(runs) = document["runs"].as_array_mut() {
            runs.push(run_entry(&run)?);
        }
    }
    if !incomplete.is_empty() {
        anyhow::bail!(
            "runs {incomplete:?} did not complete: employees left unconfirmed, WorkSpaces left, or messages in a DLQ"
        );
    }
    Ok(())
}
