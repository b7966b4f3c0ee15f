//! The provisioner Lambda: WorkSpace requests → CreateWorkspaces, 25 per call.

use lambda_runtime::Error;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::workspaces::AwsWorkspaces;
use shared::config::{ConfigError, EnvReader};
use shared::services::provisioner::{Provisioner, ProvisionerConfig};

struct Config {
    table_name: String,
    workspace_requests_queue_url: String,
    termination_requests_queue_url: String,
    max_attempts: u32,
    adopt_unmanaged: bool,
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
        let adopt_unmanaged: bool = env.optional("ADOPT_UNMANAGED", false);
        env.finish(Config {
            table_name,
            workspace_requests_queue_url,
            termination_requests_queue_url,
            max_attempts,
            adopt_unmanaged,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::load_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let provisioner = Provisioner {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name),
        workspaces: AwsWorkspaces::new(shared::aws::workspaces_client(&sdk)),
        requests: SqsQueue::new(sqs.clone(), config.workspace_requests_queue_url),
        terminations: SqsQueue::new(sqs, config.termination_requests_queue_url),
        clock: std::sync::Arc::new(shared::ports::SystemClock),
        config: ProvisionerConfig { max_attempts: config.max_attempts, adopt_unmanaged: config.adopt_unmanaged },
    };
    shared::lambda::serve_sqs(&provisioner).await
}
