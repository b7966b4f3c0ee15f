//! AWS Directory Service (`DirectoryService_20150416`, awsJson1_1): ResetUserPassword, which is
//! how a password is set for a user created through DS Data.

use super::Fields;
use crate::config::Service;
use crate::error::{ApiError, Protocol};
use crate::world::DirectoryKind;
use crate::{Inner, OpResult, Simulator};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

const SVC: Service = Service::DirectoryService;

pub async fn dispatch(sim: &Simulator, op: &str, body: Value) -> Response {
    match op {
        "ResetUserPassword" => sim.call(Protocol::AwsJson, SVC, op, |inner, _| reset_user_password(inner, &body)).await,
        _ => ApiError::bad_request("UnknownOperationException", format!("Directory Service has no simulated {op}"))
            .render(Protocol::AwsJson),
    }
}

fn reset_user_password(inner: &mut Inner, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let directory_id = f.str("DirectoryId")?;
    let user_name = f.str_len("UserName", 1, 64)?;
    // Never logged, never kept: only its complexity is checked.
    let password = f.str_len("NewPassword", 1, 127)?;
    inner.record_items(SVC, "ResetUserPassword", 1);
    let directory = inner.world.directories.get_mut(directory_id).ok_or_else(|| {
        ApiError::bad_request("EntityDoesNotExistException", format!("Directory {directory_id} does not exist."))
    })?;
    if directory.kind == DirectoryKind::AdConnector {
        return Err(ApiError::bad_request(
            "UnsupportedOperationException",
            "ResetUserPassword is not supported for AD Connector directories.",
        ));
    }
    let user = directory.users.get_mut(&user_name.to_lowercase()).ok_or_else(|| {
        ApiError::bad_request("UserDoesNotExistException", format!("User {user_name} does not exist."))
    })?;
    if !meets_ad_complexity(password) {
        return Err(ApiError::bad_request(
            "InvalidPasswordException",
            "The new password does not meet the directory's complexity requirements.",
        ));
    }
    user.password_set = true;
    // "Disabled users will become enabled and can be authenticated following the API call."
    user.enabled = true;
    Ok((StatusCode::OK, json!({})))
}

/// Active Directory's default policy: 8+ characters from at least three of upper case, lower
/// case, digits and symbols.
pub fn meets_ad_complexity(password: &str) -> bool {
    let classes = [
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    password.chars().count() >= 8 && classes.iter().filter(|c| **c).count() >= 3
}

#[cfg(test)]
mod tests {
    #[test]
    fn complexity() {
        assert!(super::meets_ad_complexity("Abcdef1!"));
        assert!(super::meets_ad_complexity("abcdefg1!"));
        assert!(!super::meets_ad_complexity("abcdefgh1"));
        assert!(!super::meets_ad_complexity("Ab1!"));
    }
}
