//! Telemetry: logging for the command-line tools of the project (the Lambdas use
//! `lambda_runtime::tracing::init_default_subscriber`, which follows the Lambda log format), and the
//! pipeline's own CloudWatch metrics in embedded metric format.

use tracing_subscriber::EnvFilter;

static METRICS_MUTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops metric lines for the rest of the process: the model tests run services thousands of
/// times, where the lines would only drown the figures.
pub fn mute_metrics() {
    METRICS_MUTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Plain text logs on stderr, filtered by `RUST_LOG` (default `info`); JSON when
/// `LOG_FORMAT=json`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The namespace of the pipeline's own CloudWatch metrics.
pub const METRICS_NAMESPACE: &str = "HrWorkspaces";

/// Writes counts as CloudWatch metrics in embedded metric format: one JSON line on stdout,
/// which Lambda passes to CloudWatch Logs, where the metrics are extracted (no API call).
pub fn emit_counts(counts: &[(&str, usize)]) {
    if METRICS_MUTED.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": crate::domain::time::Timestamp::now().millis(),
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [[]],
                "Metrics": counts.iter().map(|(name, _)| serde_json::json!({ "Name": name, "Unit": "Count" })).collect::<Vec<_>>()
            }]
        }
    });
    for (name, count) in counts {
        line[*name] = serde_json::json!(count);
    }
    println!("{line}");
}
