//! AWS adapters behind the ports. Endpoints come from the SDK's own configuration
//! (`AWS_ENDPOINT_URL_<SERVICE>`), never from a switch in the code.

pub mod directory;
pub mod dynamo;
pub mod eventbridge;
pub mod password;
pub mod sqs;
pub mod tagging;
pub mod workspaces;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Code, message and whether a retry may help, for any SDK error.
pub(crate) fn describe_sdk_error<E, R>(err: &SdkError<E, R>) -> (String, String, bool)
where
    E: ProvideErrorMetadata + std::error::Error,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown").to_owned();
            let message = e.message().unwrap_or_default().to_owned();
            let retryable = is_throttling(&code)
                || matches!(
                    code.as_str(),
                    "InternalServerError"
                        | "InternalServerException"
                        | "ServiceUnavailable"
                        | "ServiceUnavailableException"
                        | "InternalFailure"
                );
            (code, message, retryable)
        }
        SdkError::TimeoutError(_) => ("Timeout".into(), format!("{err}"), true),
        SdkError::DispatchFailure(_) => ("DispatchFailure".into(), format!("{err:?}"), true),
        SdkError::ResponseError(_) => ("ResponseError".into(), format!("{err:?}"), true),
        _ => ("ConstructionFailure".into(), format!("{err:?}"), false),
    }
}

pub(crate) fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ProvisionedThroughputExceededException"
            // The Resource Groups Tagging API's own spelling.
            | "ThrottledException"
    )
}
