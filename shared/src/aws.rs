//! SDK configuration shared by the functions.

use aws_config::retry::RetryConfig;
use std::time::Duration;

/// WorkSpaces allows about 2 calls/s per account and Region. Adaptive retry slows the client
/// down when it is throttled instead of hammering the limit, and gives a throttled call several
/// chances before the message is handed back to SQS.
pub fn workspaces_client(sdk: &aws_config::SdkConfig) -> aws_sdk_workspaces::Client {
    let config = aws_sdk_workspaces::config::Builder::from(sdk)
        .retry_config(RetryConfig::adaptive().with_max_attempts(8).with_initial_backoff(Duration::from_millis(200)))
        .build();
    aws_sdk_workspaces::Client::from_conf(config)
}
