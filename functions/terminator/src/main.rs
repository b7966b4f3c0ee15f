//! The terminator Lambda: access changes of leavers → TerminateWorkspaces (25 per call) or
//! ModifyWorkspaceState (revoke, restore).

use lambda_runtime::Error;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::tagging::{AwsWorkspaceTags, workspace_arn_prefix_problem};
use shared::adapters::workspaces::AwsWorkspaces;
use shared::config::{ConfigError, EnvReader};
use shared::services::terminator::{GuardConfig, Terminator, TerminatorConfig};

struct Config {
    table_name: String,
    workspace_requests_queue_url: String,
    termination_requests_queue_url: String,
    max_attempts: u32,
    terminate_unmanaged: bool,
    guard: Option<GuardConfig>,
    workspace_arn_prefix: String,
}

impl Config {
    fn from_env() -> Result<Config, ConfigError> {
        let mut env = EnvReader::from_env();
        let table_name: String = env.required("TABLE_NAME");
        let workspace_requests_queue_url: String = env.required("WORKSPACE_REQUESTS_QUEUE_URL");
        let termination_requests_queue_url: String = env.required("TERMINATION_REQUESTS_QUEUE_URL");
        let max_attempts: u32 = env.optional("MAX_ATTEMPTS", 4);
        env.check(
            "MAX_ATTEMPTS",
            (1..=20).contains(&max_attempts),
            "must be 1-20 (and below the queue's maxReceiveCount)",
        );
        let terminate_unmanaged: bool = env.optional("TERMINATE_UNMANAGED", false);
        let guard = env.termination_guard();
        // The WorkSpaces' ARNs, for reading many WorkSpaces' tags in one call.
        let workspace_arn_prefix: String = env.required("WORKSPACE_ARN_PREFIX");
        let problem = workspace_arn_prefix_problem(&workspace_arn_prefix);
        env.check("WORKSPACE_ARN_PREFIX", problem.is_none(), problem.as_deref().unwrap_or_default());
        env.finish(Config {
            table_name,
            workspace_requests_queue_url,
            termination_requests_queue_url,
            max_attempts,
            terminate_unmanaged,
            guard,
            workspace_arn_prefix,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::load_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let terminator = Terminator {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name),
        workspaces: AwsWorkspaces::new(shared::aws::workspaces_client(&sdk)),
        tags: AwsWorkspaceTags::new(aws_sdk_resourcegroupstagging::Client::new(&sdk), config.workspace_arn_prefix),
        requests: SqsQueue::new(sqs.clone(), config.workspace_requests_queue_url),
        terminations: SqsQueue::new(sqs, config.termination_requests_queue_url),
        clock: std::sync::Arc::new(shared::ports::SystemClock),
        config: TerminatorConfig {
            max_attempts: config.max_attempts,
            terminate_unmanaged: config.terminate_unmanaged,
            guard: config.guard,
        },
    };
    shared::lambda::serve_sqs(&terminator).await
}
