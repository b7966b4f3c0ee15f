//! The terminator Lambda: access changes of leavers → TerminateWorkspaces (25 per call) or
//! ModifyWorkspaceState (revoke, restore).

use lambda_runtime::Error;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::workspaces::AwsWorkspaces;
use shared::config::{ConfigError, EnvReader};
use shared::services::terminator::{Terminator, TerminatorConfig};

struct Config {
    table_name: String,
    workspace_requests_queue_url: String,
    termination_requests_queue_url: String,
    max_attempts: u32,
    terminate_unmanaged: bool,
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
        env.finish(Config {
            table_name,
            workspace_requests_queue_url,
            termination_requests_queue_url,
            max_attempts,
            terminate_unmanaged,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let terminator = Terminator {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name),
        workspaces: AwsWorkspaces::new(shared::aws::workspaces_client(&sdk)),
        requests: SqsQueue::new(sqs.clone(), config.workspace_requests_queue_url),
        terminations: SqsQueue::new(sqs, config.termination_requests_queue_url),
        clock: std::sync::Arc::new(shared::ports::SystemClock),
        config: TerminatorConfig { max_attempts: config.max_attempts, terminate_unmanaged: config.terminate_unmanaged },
    };
    shared::lambda::serve_sqs(&terminator).await
}
