//! The intake Lambda: HR events queue → directory user → WorkSpace request.

mod config;

use config::{Backend, Config};
use lambda_runtime::Error;
use shared::adapters::directory::{Directory, DsDataUsers, WorkDocsUsers};
use shared::adapters::dynamo::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::services::coalesce::Coalescing;
use shared::services::intake::{Intake, IntakeConfig};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::load_config().await;
    let directory = match config.backend {
        Backend::WorkDocs => Directory::WorkDocs(WorkDocsUsers { client: aws_sdk_workdocs::Client::new(&sdk) }),
        Backend::DsData => Directory::DsData(DsDataUsers {
            data: aws_sdk_directoryservicedata::Client::new(&sdk),
            ds: aws_sdk_directory::Client::new(&sdk),
        }),
        Backend::Existing => Directory::Existing,
    };
    let intake = Intake {
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name),
        directory,
        // The records of a batch run at once: their requests go out together, 10 per call.
        requests: Coalescing::new(SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), config.workspace_requests_queue_url)),
        terminations: Coalescing::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(&sdk),
            config.termination_requests_queue_url,
        )),
        profiles: config.profiles,
        clock: std::sync::Arc::new(shared::ports::SystemClock),
        config: IntakeConfig {
            idempotency_ttl_s: config.idempotency_ttl_s,
            fallback_claim_ms: config.fallback_claim_ms,
            disable_user_on_leave: config.disable_user_on_leave,
            leave_grace_ms: config.leave_grace_ms,
            clock_skew_ms: config.clock_skew_ms,
            effective_horizon_ms: config.effective_horizon_ms,
            claim_wait_ms: shared::services::intake::CLAIM_WAIT_MS,
        },
    };
    shared::lambda::serve_sqs(&intake).await
}
