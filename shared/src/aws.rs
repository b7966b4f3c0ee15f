//! SDK configuration shared by the functions.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use std::time::Duration;

/// How long one attempt of a call may take before the SDK gives up on it and retries (a timeout
/// is a transient error). Without it a reply lost on the way (the write done, the connection
/// silent) holds the invocation until the Lambda timeout and the whole batch comes back; with it
/// the call is made again, and the conditional writes and idempotency records make the retry
/// harmless. DynamoDB and SQS answer in milliseconds; WorkSpaces gets longer (below).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
const WORKSPACES_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// The functions' SDK configuration: the environment's (region, credentials, endpoints), with
/// [`ATTEMPT_TIMEOUT`].
pub async fn load_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                // The SDK's own default, kept: a config given here replaces the default one.
                .connect_timeout(Duration::from_millis(3100))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// WorkSpaces allows about 2 calls/s per account and Region. Adaptive retry slows the client
/// down when it is throttled instead of hammering the limit, and gives a throttled call several
/// chances before the message is handed back to SQS.
pub fn workspaces_client(sdk: &aws_config::SdkConfig) -> aws_sdk_workspaces::Client {
    let config = aws_sdk_workspaces::config::Builder::from(sdk)
        .retry_config(RetryConfig::adaptive().with_max_attempts(8).with_initial_backoff(Duration::from_millis(200)))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(3100))
                .operation_attempt_timeout(WORKSPACES_ATTEMPT_TIMEOUT)
                .build(),
        )
        .build();
    aws_sdk_workspaces::Client::from_conf(config)
}
