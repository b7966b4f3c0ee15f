//! `stack-check`: proves a running local stack answers, with the real SDK clients and the
//! environment of `.local/stack.env`: runner, queues, table, directories, bundles, and one
//! WorkSpace taken through PENDING → AVAILABLE → TERMINATING → gone. Prints the simulator's
//! WorkSpaces call counters at the end. `stack-check calls` prints only the counters.

use anyhow::{Context, bail};
use aws_sdk_workspaces::types::{TerminateRequest, WorkspaceRequest, WorkspaceState};
use serde_json::Value;
use std::time::{Duration, Instant};

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set: source .local/stack.env first"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("calls") => return print_calls(&reqwest::Client::new()).await,
        Some("functions") => return print_functions(&reqwest::Client::new()).await,
        _ => {}
    }
    // WorkSpaces allows ~2 calls/s per account: poll gently and let the SDK absorb throttling.
    let sdk = aws_config::from_env()
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(10))
        .load()
        .await;
    let http = reqwest::Client::new();

    let runner = var("AWS_ENDPOINT_URL_LAMBDA")?;
    let health: Value = http.get(format!("{runner}/_runner/health")).send().await?.json().await?;
    println!("runner      {runner}  health={health}");

    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut queues: Vec<(String, String)> =
        std::env::vars().filter(|(k, _)| k.ends_with("_QUEUE_URL") || k.ends_with("_DLQ_URL")).collect();
    queues.sort();
    for (name, url) in &queues {
        sqs.get_queue_attributes().queue_url(url).send().await.with_context(|| format!("queue {name}"))?;
        println!("queue       {name:<34} ok");
    }
    let table = var("TABLE_NAME")?;
    let described = aws_sdk_dynamodb::Client::new(&sdk).describe_table().table_name(&table).send().await?;
    let status = described.table().and_then(|t| t.table_status()).map(|s| s.as_str().to_owned());
    println!("table       {table:<34} {}", status.unwrap_or_default());

    let ws = aws_sdk_workspaces::Client::new(&sdk);
    let dirs = ws.describe_workspace_directories().send().await?;
    for d in dirs.directories() {
        println!(
            "directory   {:<14} {:<20} {}",
            d.directory_id().unwrap_or_default(),
            d.directory_name().unwrap_or_default(),
            d.directory_type().map(|t| t.as_str()).unwrap_or_default()
        );
    }
    let bundles = ws.describe_workspace_bundles().send().await?;
    let bundle = bundles.bundles().first().and_then(|b| b.bundle_id()).context("no bundle seeded")?.to_owned();
    let connector = dirs
        .directories()
        .iter()
        .find(|d| d.directory_type().map(|t| t.as_str()) == Some("AD_CONNECTOR"))
        .and_then(|d| d.directory_id())
        .context("no AD Connector directory seeded")?
        .to_owned();

    // One WorkSpace through its whole lifecycle, for a user that already exists.
    let user = "alee";
    let request = WorkspaceRequest::builder().directory_id(&connector).user_name(user).bundle_id(&bundle).build()?;
    let created = ws.create_workspaces().workspaces(request).send().await?;
    if let Some(failed) = created.failed_requests().first() {
        bail!("CreateWorkspaces failed for {user}: {:?} {:?}", failed.error_code(), failed.error_message());
    }
    let id = created.pending_requests().first().and_then(|w| w.workspace_id()).context("no WorkSpace id")?.to_owned();
    println!("workspace   {id} created for {user}");
    watch(&ws, &id, |s| s == Some(&WorkspaceState::Available)).await?;
    let terminated = ws
        .terminate_workspaces()
        .terminate_workspace_requests(TerminateRequest::builder().workspace_id(&id).build()?)
        .send()
        .await?;
    if let Some(failed) = terminated.failed_requests().first() {
        bail!("TerminateWorkspaces failed: {:?}", failed.error_code());
    }
    watch(&ws, &id, |s| s.is_none()).await?;

    print_calls(&http).await?;
    println!("\nsmoke check passed");
    Ok(())
}

/// Polls DescribeWorkspaces and prints each state change until `done`.
async fn watch(
    ws: &aws_sdk_workspaces::Client,
    id: &str,
    done: impl Fn(Option<&WorkspaceState>) -> bool,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut last: Option<Option<WorkspaceState>> = None;
    while start.elapsed() < Duration::from_secs(120) {
        let out = ws.describe_workspaces().workspace_ids(id).send().await?;
        let state = out.workspaces().first().and_then(|w| w.state().cloned());
        if last.as_ref() != Some(&state) {
            let shown = state.as_ref().map_or("(not listed)", |s| s.as_str());
            println!("workspace   {id} {shown:<14} at {:>5.1} s", start.elapsed().as_secs_f64());
            last = Some(state.clone());
        }
        if done(state.as_ref()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    bail!("{id} did not reach the expected state within 120 s")
}

/// The simulator's WorkSpaces counters: calls per operation, throttled answers, items carried.
async fn print_calls(http: &reqwest::Client) -> anyhow::Result<()> {
    let sim = var("SIM_URL")?;
    let calls: Value = http.get(format!("{sim}/_sim/calls")).send().await?.json().await?;
    println!("\nWorkSpaces API calls (simulator counters)");
    println!("{:<44} {:>6} {:>10} {:>6}", "operation", "calls", "throttled", "items");
    if let Value::Object(ops) = calls {
        for (op, s) in ops.iter().filter(|(op, _)| op.starts_with("WorkSpaces.")) {
            let items: u64 = s["items"].as_array().map(|a| a.iter().filter_map(Value::as_u64).sum()).unwrap_or(0);
            let count = |k: &str| s[k].as_u64().unwrap_or(0);
            println!("{op:<44} {:>6} {:>10} {items:>6}", count("calls"), count("throttled"));
        }
    }
    Ok(())
}

/// The runner's measurements per function: invocations, batch sizes, init and handler times,
/// peak memory.
async fn print_functions(http: &reqwest::Client) -> anyhow::Result<()> {
    let runner = var("AWS_ENDPOINT_URL_LAMBDA")?;
    let stats: Value = http.get(format!("{runner}/_runner/stats")).send().await?.json().await?;
    println!("Functions (local runner; debug builds)");
    println!(
        "{:<12} {:>11} {:>7} {:>13} {:>10} {:>12} {:>12} {:>10}",
        "function", "invocations", "errors", "records/batch", "init ms", "handler p50", "handler p99", "peak RSS"
    );
    let Value::Object(functions) = stats else { return Ok(()) };
    for (name, s) in functions {
        let list = |k: &str| -> Vec<f64> {
            let mut v: Vec<f64> =
                s[k].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
            v.sort_by(f64::total_cmp);
            v
        };
        let pct = |v: &[f64], p: f64| -> f64 {
            if v.is_empty() { 0.0 } else { v[((v.len() - 1) as f64 * p).round() as usize] }
        };
        let durations = list("duration_ms");
        let init = list("init_ms");
        let batches = list("batch_sizes");
        let per_batch = if batches.is_empty() { 0.0 } else { batches.iter().sum::<f64>() / batches.len() as f64 };
        let errors = s["errors"].as_u64().unwrap_or(0)
            + s["timeouts"].as_u64().unwrap_or(0)
            + s["crashes"].as_u64().unwrap_or(0);
        println!(
            "{name:<12} {:>11} {errors:>7} {per_batch:>13.1} {:>10.1} {:>12.1} {:>12.1} {:>7} MiB",
            s["invocations"].as_u64().unwrap_or(0),
            pct(&init, 0.5),
            pct(&durations, 0.5),
            pct(&durations, 0.99),
            s["peak_rss_kib"].as_u64().unwrap_or(0) / 1024
        );
    }
    Ok(())
}
