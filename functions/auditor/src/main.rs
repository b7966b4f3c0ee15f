//! The auditor Lambda, on an EventBridge schedule (daily by default): lists every WorkSpace of
//! the managed directories, compares them with the table, and reports the drift (missing,
//! orphaned, mismatched, unhealthy) on each employee, in metrics, on the event bus (Drift Found)
//! and in its answer. Report only, unless AUDIT_ON_MISSING, AUDIT_ON_MISMATCHED or
//! AUDIT_ON_ORPHANED say to act (README, "The drift audit").

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::eventbridge::EventBridgeBus;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::workspaces::AwsWorkspaces;
use shared::config::{ConfigError, EnvReader};
use shared::domain::audit::{AuditActions, AuditRules, ORPHAN_AFTER_MS, OnMismatched, OnMissing, OnOrphaned};
use shared::domain::profile::Profiles;
use shared::ports::GuardConfig;
use shared::ports::PortError as _;
use shared::services::audit::{AuditConfig, Auditor};
use std::collections::BTreeSet;

struct Config {
    table_name: String,
    event_bus_name: String,
    directories: BTreeSet<String>,
    unhealthy_after_minutes: i64,
    calls_per_second: f64,
    actions: AuditActions,
    workspace_requests_queue_url: String,
    guard: Option<GuardConfig>,
}

impl Config {
    fn from_env() -> Result<Config, ConfigError> {
        Self::read(EnvReader::from_env())
    }

    fn read<F: Fn(&str) -> Option<String>>(mut env: EnvReader<F>) -> Result<Config, ConfigError> {
        let table_name: String = env.required("TABLE_NAME");
        // Where a finding that opens is announced (Drift Found).
        let event_bus_name: String = env.required("EVENT_BUS_NAME");
        // The intake's profiles: their directories are the ones audited.
        let profiles = env.required_with("WORKSPACE_PROFILES", |s| Profiles::from_json(s).map_err(|e| e.to_string()));
        let unhealthy_after_minutes: i64 = env.optional("AUDIT_UNHEALTHY_AFTER_MINUTES", 720);
        env.check("AUDIT_UNHEALTHY_AFTER_MINUTES", unhealthy_after_minutes >= 0, "must be at least 0");
        // Half the account's 2 calls/s [UNKNOWN: AWS does not publish the limit; WORKSPACES-FACTS]:
        // the pipeline keeps the rest while the audit lists.
        let calls_per_second: f64 = env.optional("AUDIT_CALLS_PER_SECOND", 1.0);
        env.check(
            "AUDIT_CALLS_PER_SECOND",
            calls_per_second.is_finite() && calls_per_second > 0.0,
            "must be a positive number",
        );
        // What to do about findings: report only unless set (each setting's values: README).
        let on_orphaned: OnOrphaned = env.optional("AUDIT_ON_ORPHANED", OnOrphaned::Report);
        // How long an orphan stays reported before it may be terminated (an operator's time to
        // tag it protected): a day unless set.
        let orphan_after_minutes: i64 = env.optional("AUDIT_ORPHAN_AFTER_MINUTES", ORPHAN_AFTER_MS / 60_000);
        env.check("AUDIT_ORPHAN_AFTER_MINUTES", orphan_after_minutes >= 0, "must be at least 0");
        let actions = AuditActions {
            on_missing: env.optional("AUDIT_ON_MISSING", OnMissing::Report),
            on_mismatched: env.optional("AUDIT_ON_MISMATCHED", OnMismatched::Report),
            on_orphaned,
            orphan_after_ms: orphan_after_minutes * 60_000,
        };
        // Where a WorkSpace requested again goes (the provisioner's queue).
        let workspace_requests_queue_url: String = env.required("WORKSPACE_REQUESTS_QUEUE_URL");
        // The terminator's guard: an orphan's termination counts against the same window.
        let guard = env.termination_guard();
        env.check(
            "AUDIT_ON_ORPHANED",
            on_orphaned == OnOrphaned::Report || guard.is_some(),
            "terminate-managed needs the mass-termination guard on (TERMINATION_GUARD_LIMIT above 0)",
        );
        env.finish_with(|| {
            Some(Config {
                table_name,
                event_bus_name,
                directories: profiles?.directories(),
                unhealthy_after_minutes,
                calls_per_second,
                actions,
                workspace_requests_queue_url,
                guard,
            })
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::load_config().await;
    let auditor = Auditor {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name),
        workspaces: AwsWorkspaces::new(shared::aws::workspaces_client(&sdk)),
        events: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), config.event_bus_name),
        requests: SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), config.workspace_requests_queue_url),
        clock: std::sync::Arc::new(shared::ports::SystemClock),
        config: AuditConfig {
            directories: config.directories,
            rules: AuditRules { unhealthy_after_ms: config.unhealthy_after_minutes * 60_000 },
            call_interval_ms: (1000.0 / config.calls_per_second).ceil() as u64,
            actions: config.actions,
            guard: config.guard,
        },
    };
    let auditor = &auditor;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let report = auditor.run().await.map_err(|e| {
            tracing::error!(error = %e, "audit failed; the next scheduled run audits again");
            Diagnostic { error_type: e.error_type(), error_message: e.to_string() }
        })?;
        shared::telemetry::emit_counts(&report.metrics());
        // The answer: the counts and the first findings (the full list is in the log and on
        // each employee); bounded whatever the drift.
        Ok::<Value, Diagnostic>(json!({
            "audited_ms": report.audited_ms,
            "directories": report.directories,
            "employees_checked": report.employees_checked,
            "workspaces_listed": report.workspaces_listed,
            "counts": report.counts,
            "employees_by_state": report.employees_by_state,
            "opened": report.opened,
            "resolved": report.resolved,
            "dropped_on_second_look": report.dropped_on_second_look,
            "describe_calls": report.describe_calls,
            "findings": report.findings.iter().take(100).collect::<Vec<_>>(),
            "actions": report.actions.iter().take(100).collect::<Vec<_>>(),
        }))
    }))
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn names_every_missing_or_bad_variable() {
        let env: HashMap<&str, &str> = [
            ("WORKSPACE_PROFILES", "{}"),
            ("AUDIT_UNHEALTHY_AFTER_MINUTES", "-1"),
            ("AUDIT_CALLS_PER_SECOND", "0"),
            ("AUDIT_ON_MISSING", "fix"),
            ("AUDIT_ON_ORPHANED", "terminate"),
            ("TERMINATION_GUARD_LIMIT", "5000"),
            ("AUDIT_ORPHAN_AFTER_MINUTES", "-5"),
        ]
        .into();
        let err = Config::read(EnvReader::new(|k| env.get(k).map(|v| v.to_string()))).err().unwrap().to_string();
        for name in [
            "TABLE_NAME is not set",
            "EVENT_BUS_NAME is not set",
            "WORKSPACE_PROFILES is invalid",
            "AUDIT_UNHEALTHY_AFTER_MINUTES",
            "AUDIT_CALLS_PER_SECOND",
            "AUDIT_ON_MISSING is invalid (\"fix\"): \"fix\" is not one of report, request-again",
            "AUDIT_ON_ORPHANED is invalid (\"terminate\"): \"terminate\" is not one of report, terminate-managed",
            "WORKSPACE_REQUESTS_QUEUE_URL is not set",
            "TERMINATION_GUARD_LIMIT",
            "AUDIT_ORPHAN_AFTER_MINUTES",
        ] {
            assert!(err.contains(name), "{name} missing from {err}");
        }
    }
}
