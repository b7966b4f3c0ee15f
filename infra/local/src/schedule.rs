//! Plays an EventBridge schedule: invokes the function every `every`, skipping a tick while the
//! previous invocation still runs.

use crate::runtime::FunctionPool;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub fn scheduled_event(function: &str, region: &str) -> Value {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:000000000000:rule/{function}-schedule")],
        "detail": {},
    })
}

/// Invokes the function every `every`, the first time `first` after now.
pub async fn run(pool: Arc<FunctionPool>, every: Duration, first: Duration, region: String) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + first, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let event = scheduled_event(pool.name(), &region).to_string();
        let outcome = pool.invoke(event.into()).await;
        if !outcome.is_ok() {
            tracing::warn!(function = %pool.name(), ?outcome, "scheduled invocation failed");
        }
    }
}
