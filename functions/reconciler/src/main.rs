//! The reconciler Lambda, on an EventBridge schedule: confirms WorkSpaces that became AVAILABLE
//! or ERROR.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::workspaces::AwsWorkspaces;
use shared::config::{ConfigError, EnvReader};
use shared::services::reconciler::Reconciler;

struct Config {
    table_name: String,
}

impl Config {
    fn from_env() -> Result<Config, ConfigError> {
        let mut env = EnvReader::from_env();
        let table_name: String = env.required("TABLE_NAME");
        env.finish(Config { table_name })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = aws_config::load_from_env().await;
    let reconciler = Reconciler {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name),
        workspaces: AwsWorkspaces::new(shared::aws::workspaces_client(&sdk)),
    };
    let reconciler = &reconciler;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let report = reconciler.run().await?;
        tracing::info!(?report, "reconciled");
        Ok::<Value, Error>(serde_json::to_value(report)?)
    }))
    .await
}
