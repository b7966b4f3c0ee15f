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

/// The process's EMF collector (`metrics_cloudwatch_embedded`, the `metrics` facade's global
/// recorder), made on first use; `None` if another recorder was installed first.
fn collector() -> Option<&'static metrics_cloudwatch_embedded::Collector> {
    static COLLECTOR: std::sync::OnceLock<Option<&'static metrics_cloudwatch_embedded::Collector>> =
        std::sync::OnceLock::new();
    *COLLECTOR.get_or_init(|| {
        metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(METRICS_NAMESPACE)
            // A count of 0 is written too: an alarm then sees "none", not missing data.
            .emit_zeros(true)
            .init()
            .map_err(|e| tracing::warn!(error = %e, "no CloudWatch metrics: the recorder could not be installed"))
            .ok()
    })
}

/// One embedded-metric-format document with these counts (and 0 for every other count this
/// process has emitted before), as the line CloudWatch Logs extracts the metrics from.
pub fn emf_document(counts: &[(&str, usize)]) -> Option<String> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let collector = collector()?;
    // Counting and flushing together: a flush takes every count made since the last one.
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for (name, count) in counts {
        let name = (*name).to_owned();
        metrics::describe_counter!(name.clone(), metrics::Unit::Count, "");
        metrics::counter!(name).increment(*count as u64);
    }
    let mut out = Vec::new();
    collector.flush(&mut out).ok()?;
    String::from_utf8(out).ok()
}

/// Writes counts as CloudWatch metrics in embedded metric format: one JSON line on stdout,
/// which Lambda passes to CloudWatch Logs, where the metrics are extracted (no API call).
pub fn emit_counts(counts: &[(&str, usize)]) {
    if METRICS_MUTED.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    if let Some(document) = emf_document(counts) {
        print!("{document}");
    }
}

#[cfg(test)]
mod tests;
