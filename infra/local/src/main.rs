//! `local-stack`: runs the pipeline's local stack against already-running emulators (moto for
//! SQS and DynamoDB, the simulator for WorkSpaces and directories), whose endpoints come from the
//! SDK's own `AWS_ENDPOINT_URL_<SERVICE>` variables.

use anyhow::Context;
use clap::Parser;
use local_stack::{Options, env_stem, stack::StackDefinition};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Runs the functions, event source mappings and schedules of the local stack")]
struct Args {
    /// The stack definition (queues, table, functions).
    #[arg(long, default_value = "infra/local/stack.json")]
    stack: PathBuf,
    /// Directory holding the function binaries.
    #[arg(long, default_value = "target/debug")]
    bin_dir: PathBuf,
    #[arg(long, default_value = "")]
    prefix: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Fire scheduled functions every this many seconds instead of their deployed rate.
    #[arg(long)]
    schedule_every_s: Option<f64>,
    /// Cap queue visibility timeouts (seconds) so failed messages come back sooner.
    #[arg(long)]
    max_visibility_timeout_s: Option<u32>,
    #[arg(long, default_value = "127.0.0.1:0")]
    invoke_addr: String,
    /// Deliver every SQS batch twice, to watch idempotency at work.
    #[arg(long)]
    duplicate_deliveries: bool,
    /// Write `export` lines for the whole stack here once it is up.
    #[arg(long)]
    env_file: Option<PathBuf>,
    /// Record the AWS operations each function calls into this JSON file (for the IAM check:
    /// `infra/check_template.py --calls`).
    #[arg(long)]
    record_calls: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init();
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.stack).with_context(|| format!("reading {}", args.stack.display()))?;
    let def: StackDefinition =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", args.stack.display()))?;
    let options = Options {
        prefix: args.prefix.clone(),
        bin_dir: args.bin_dir.clone(),
        region: args.region.clone(),
        schedule_every: args.schedule_every_s.map(Duration::from_secs_f64),
        max_visibility_timeout_s: args.max_visibility_timeout_s,
        invoke_addr: args.invoke_addr.clone(),
        // Recording puts a pass-through in front of each endpoint the functions inherit.
        extra_env: match args.record_calls {
            Some(_) => std::env::vars().filter(|(k, _)| k.starts_with("AWS_ENDPOINT_URL_")).collect(),
            None => Default::default(),
        },
        duplicate_deliveries: args.duplicate_deliveries,
        disabled_mappings: Default::default(),
        record_calls: args.record_calls.clone(),
        chaos: None,
    };
    let sdk = aws_config::load_from_env().await;
    let stack = local_stack::start(&def, &options, &sdk).await?;
    tracing::info!(invoke_url = %stack.invoke_url, functions = stack.functions.len(), queues = stack.resources.queues.len(), "local stack up");
    if let Some(path) = &args.env_file {
        std::fs::write(path, env_file(&stack, &args.region)).with_context(|| format!("writing {}", path.display()))?;
    }
    shared::telemetry::shutdown_signal().await;
    tracing::info!("stopping");
    drop(stack);
    Ok(())
}

/// `export` lines: region, credentials, every endpoint, the table, the event bus and the queues.
fn env_file(stack: &local_stack::LocalStack, region: &str) -> String {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_ENDPOINT_URL_")
                || k == "AWS_ACCESS_KEY_ID"
                || k == "AWS_SECRET_ACCESS_KEY"
                || k.starts_with("SIM_")
        })
        .collect();
    vars.push(("AWS_REGION".into(), region.into()));
    vars.push(("AWS_DEFAULT_REGION".into(), region.into()));
    vars.push(("AWS_ENDPOINT_URL_LAMBDA".into(), stack.invoke_url.clone()));
    vars.push(("LOCAL_LAMBDA_PORT".into(), stack.invoke_url.rsplit(':').next().unwrap_or_default().into()));
    vars.push(("TABLE_NAME".into(), stack.resources.table_name.clone()));
    if let Some(bus) = &stack.resources.event_bus {
        vars.push(("EVENT_BUS_NAME".into(), bus.clone()));
    }
    for queue in stack.resources.queues.values() {
        let stem = env_stem(&queue.name);
        vars.push((format!("{stem}_QUEUE_URL"), queue.url.clone()));
        if let Some(dlq) = &queue.dlq_url {
            vars.push((format!("{stem}_DLQ_URL"), dlq.clone()));
        }
    }
    vars.sort();
    vars.dedup_by(|a, b| a.0 == b.0);
    let mut out = String::from("# Written by local-stack: `source` it to reach the local stack.\n");
    for (k, v) in vars {
        let _ = writeln!(out, "export {k}='{v}'");
    }
    out
}
