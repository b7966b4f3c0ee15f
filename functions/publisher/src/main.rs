//! The publisher Lambda, on the table's DynamoDB stream (employee records only, by the mapping's
//! filter): each change of an employee record becomes the lifecycle events the systems around
//! the pipeline subscribe to, put on the stack's EventBridge bus.

use lambda_runtime::Error;
use shared::adapters::eventbridge::EventBridgeBus;
use shared::adapters::sqs::SqsQueue;
use shared::config::{ConfigError, EnvReader};
use shared::services::publisher::Publisher;

struct Config {
    event_bus_name: String,
    failures_queue_url: String,
}

impl Config {
    fn from_env() -> Result<Config, ConfigError> {
        Self::read(EnvReader::from_env())
    }

    fn read<F: Fn(&str) -> Option<String>>(mut env: EnvReader<F>) -> Result<Config, ConfigError> {
        let event_bus_name: String = env.required("EVENT_BUS_NAME");
        // Where an employee record the code cannot read is described (the mapping's failure
        // destination too).
        let failures_queue_url: String = env.required("PUBLISHER_FAILURES_QUEUE_URL");
        env.finish_with(|| Some(Config { event_bus_name, failures_queue_url }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let sdk = shared::aws::load_config().await;
    let publisher = Publisher {
        events: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), config.event_bus_name),
        failures: SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), config.failures_queue_url),
    };
    shared::lambda::serve_stream(&publisher).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_every_missing_variable() {
        let err = Config::read(EnvReader::new(|_| None)).err().unwrap().to_string();
        assert!(err.contains("EVENT_BUS_NAME is not set"), "{err}");
        assert!(err.contains("PUBLISHER_FAILURES_QUEUE_URL is not set"), "{err}");
    }
}
