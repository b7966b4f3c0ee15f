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

/// Attempts of one WorkSpaces call before its error reaches the code (which hands a throttled
/// request back to its queue, delayed).
pub const WORKSPACES_MAX_ATTEMPTS: u32 = 25;
/// The longest wait between two attempts: at about 2 calls/s, a few clients backing off longer
/// than this leave the rate unused (measured in `BENCHMARKS.md`).
const WORKSPACES_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// WorkSpaces allows about 2 calls/s per account and Region, shared by every caller. Standard
/// retry with a short, jittered backoff keeps that rate full when the provisioners, terminators
/// and reconciler compete for it: adaptive retry, which slows each client down on its own after
/// a throttle, left a fifth to a quarter of it unused with three of them (BENCHMARKS.md, runs A
/// against C and D). A throttled attempt costs nothing from the SDK's retry quota (its own
/// partition): the quota is for outages, and throttling is this API's normal state at scale;
/// other errors still draw on it.
pub fn workspaces_client(sdk: &aws_config::SdkConfig) -> aws_sdk_workspaces::Client {
    use aws_sdk_workspaces::config::retry::{RetryPartition, TokenBucket};
    let quota = TokenBucket::builder().throttling_retry_cost(0).build();
    let config = aws_sdk_workspaces::config::Builder::from(sdk)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(WORKSPACES_MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(WORKSPACES_MAX_BACKOFF),
        )
        .retry_partition(RetryPartition::custom("workspaces").token_bucket(quota).build())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(3100))
                .operation_attempt_timeout(WORKSPACES_ATTEMPT_TIMEOUT)
                .build(),
        )
        .build();
    aws_sdk_workspaces::Client::from_conf(config)
}
