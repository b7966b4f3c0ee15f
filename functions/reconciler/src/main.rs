//! The reconciler Lambda, on an EventBridge schedule: confirms WorkSpaces that became AVAILABLE,
//! ERROR or gone, flags employees stuck past their deadline, releases future-dated events, and
//! requests the termination of leavers whose grace period is over.

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::workspaces::AwsWorkspaces;
use shared::config::{ConfigError, EnvReader};
use shared::ports::PortError as _;
use shared::services::reconciler::{Reconciler, ReconcilerConfig};

struct Config {
    table_name: String,
    workspace_requests_queue_url: String,
    hr_events_queue_url: String,
    termination_requests_queue_url: String,
    create_deadline_s: i64,
    terminate_deadline_s: i64,
    create_first_look_s: i64,
    terminate_first_look_s: i64,
    cooldown_divisor: u32,
}

impl Config {
    fn from_env() -> Result<Config, ConfigError> {
        let mut env = EnvReader::from_env();
        let table_name: String = env.required("TABLE_NAME");
        let workspace_requests_queue_url: String = env.required("WORKSPACE_REQUESTS_QUEUE_URL");
        let hr_events_queue_url: String = env.required("HR_EVENTS_QUEUE_URL");
        let termination_requests_queue_url: String = env.required("TERMINATION_REQUESTS_QUEUE_URL");
        let create_deadline_s: i64 = env.optional("CREATE_DEADLINE_SECONDS", 5400);
        let terminate_deadline_s: i64 = env.optional("TERMINATE_DEADLINE_SECONDS", 3600);
        env.check("CREATE_DEADLINE_SECONDS", create_deadline_s > 0, "must be positive");
        env.check("TERMINATE_DEADLINE_SECONDS", terminate_deadline_s > 0, "must be positive");
        // Creation takes about 20 minutes in AWS: a first look at 15 spends no call on PENDING.
        let create_first_look_s: i64 = env.optional("CREATE_FIRST_LOOK_SECONDS", 900);
        let terminate_first_look_s: i64 = env.optional("TERMINATE_FIRST_LOOK_SECONDS", 120);
        env.check("CREATE_FIRST_LOOK_SECONDS", create_first_look_s >= 0, "must be at least 0");
        env.check("TERMINATE_FIRST_LOOK_SECONDS", terminate_first_look_s >= 0, "must be at least 0");
        // 1 in AWS. A local stack whose simulator runs the cooldowns N times faster sets N.
        let cooldown_divisor: u32 = env.optional("WORKSPACES_COOLDOWN_DIVISOR", 1);
        env.check("WORKSPACES_COOLDOWN_DIVISOR", cooldown_divisor >= 1, "must be at least 1");
        env.finish(Config {
            table_name,
            workspace_requests_queue_url,
            hr_events_queue_url,
            termination_requests_queue_url,
            create_deadline_s,
            terminate_deadline_s,
            create_first_look_s,
            terminate_first_look_s,
            cooldown_divisor,
        })
    }
}

/// Leaves room before the invocation deadline to finish the chunk in hand (one throttled
/// DescribeWorkspaces with retries and up to 25 writes): 15 s, or a quarter of a short timeout.
fn stop_at(deadline_ms: u64) -> Option<i64> {
    let deadline = i64::try_from(deadline_ms).ok().filter(|d| *d > 0)?;
    let remaining = deadline - shared::domain::time::Timestamp::now().millis();
    Some(deadline - (remaining / 4).clamp(0, 15_000))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::load_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let reconciler = Reconciler {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name),
        workspaces: AwsWorkspaces::new(shared::aws::workspaces_client(&sdk)),
        requests: SqsQueue::new(sqs.clone(), config.workspace_requests_queue_url),
        hr_events: SqsQueue::new(sqs.clone(), config.hr_events_queue_url),
        terminations: SqsQueue::new(sqs, config.termination_requests_queue_url),
        clock: std::sync::Arc::new(shared::ports::SystemClock),
        config: ReconcilerConfig {
            create_deadline_ms: config.create_deadline_s * 1000,
            terminate_deadline_ms: config.terminate_deadline_s * 1000,
            // Never later than the deadline that flags a WorkSpace stuck.
            create_first_look_ms: config.create_first_look_s.min(config.create_deadline_s) * 1000,
            terminate_first_look_ms: config.terminate_first_look_s.min(config.terminate_deadline_s) * 1000,
            cooldowns: shared::domain::workspace::Cooldowns::divided_by(config.cooldown_divisor),
        },
    };
    let reconciler = &reconciler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let report = reconciler.run(stop_at(event.context.deadline)).await.map_err(|e| {
            tracing::error!(error = %e, "reconcile run failed; the next scheduled run retries");
            Diagnostic { error_type: e.error_type(), error_message: e.to_string() }
        })?;
        tracing::info!(?report, "reconciled");
        serde_json::to_value(report)
            .map_err(|e| Diagnostic { error_type: "Report.Serialization".into(), error_message: e.to_string() })
    }))
    .await
}
