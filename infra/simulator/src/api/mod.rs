//! HTTP routing: awsJson1_1 services share `POST /` and are told apart by `X-Amz-Target`;
//! restJson1 services have their own paths; the admin API lives under `/_sim/`.

pub mod admin;
pub mod directory;
pub mod dsdata;
pub mod tagging;
pub mod workdocs;
pub mod workspaces;

use crate::Simulator;
use crate::error::{ApiError, Protocol};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::Value;

pub fn router(sim: Simulator) -> Router {
    Router::new()
        .route("/", post(json_rpc))
        .route("/api/v1/users", post(workdocs::create_user).get(workdocs::describe_users))
        .route("/Users/CreateUser", post(dsdata::create_user))
        .route("/Users/DescribeUser", post(dsdata::describe_user))
        .route("/Users/DisableUser", post(dsdata::disable_user))
        .nest("/_sim", admin::router())
        .fallback(get(not_found).post(not_found))
        .with_state(sim)
}

async fn not_found() -> Response {
    ApiError::new(axum::http::StatusCode::NOT_FOUND, "UnknownOperationException", "no such route")
        .render(Protocol::RestJson)
}

async fn json_rpc(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let body = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return e.render(Protocol::AwsJson),
    };
    if let Some(op) = target.strip_prefix("WorkspacesService.") {
        workspaces::dispatch(&sim, op, body).await
    } else if let Some(op) = target.strip_prefix("DirectoryService_20150416.") {
        directory::dispatch(&sim, op, body).await
    } else if let Some(op) = target.strip_prefix("ResourceGroupsTaggingAPI_20170126.") {
        tagging::dispatch(&sim, op, body).await
    } else {
        ApiError::bad_request("UnknownOperationException", format!("unknown target {target:?}"))
            .render(Protocol::AwsJson)
    }
}

/// A JSON object body; an empty body counts as `{}` as it does for the services.
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::bad_request("SerializationException", "body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request("SerializationException", format!("invalid JSON: {e}"))),
    }
}

/// Reading members of a request body, with the service's validation messages.
pub struct Fields<'a> {
    pub body: &'a Value,
    /// Prefix of the member path in messages, e.g. `workspaces.1.member.`.
    pub path: String,
}

impl<'a> Fields<'a> {
    pub fn new(body: &'a Value, path: impl Into<String>) -> Self {
        Self { body, path: path.into() }
    }

    fn name(&self, member: &str) -> String {
        let mut chars = member.chars();
        let camel = match chars.next() {
            Some(c) => c.to_lowercase().chain(chars).collect::<String>(),
            None => String::new(),
        };
        format!("{}{camel}", self.path)
    }

    pub fn opt_str(&self, member: &str) -> Result<Option<&'a str>, ApiError> {
        match self.body.get(member) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ApiError::bad_request(
                "SerializationException",
                format!("{} must be a string, got {other}", self.name(member)),
            )),
        }
    }

    pub fn str(&self, member: &str) -> Result<&'a str, ApiError> {
        self.opt_str(member)?.ok_or_else(|| ApiError::validation(&self.name(member), "null", "Member must not be null"))
    }

    /// A required string whose length is within `min..=max`.
    pub fn str_len(&self, member: &str, min: usize, max: usize) -> Result<&'a str, ApiError> {
        let s = self.str(member)?;
        self.check_len(member, s, min, max)?;
        Ok(s)
    }

    pub fn check_len(&self, member: &str, s: &str, min: usize, max: usize) -> Result<(), ApiError> {
        let len = s.chars().count();
        if len < min {
            return Err(ApiError::validation(
                &self.name(member),
                s,
                &format!("Member must have length greater than or equal to {min}"),
            ));
        }
        if len > max {
            return Err(ApiError::validation(
                &self.name(member),
                s,
                &format!("Member must have length less than or equal to {max}"),
            ));
        }
        Ok(())
    }

    pub fn check_pattern(&self, member: &str, s: &str, ok: bool, pattern: &str) -> Result<(), ApiError> {
        if ok {
            Ok(())
        } else {
            Err(ApiError::validation(
                &self.name(member),
                s,
                &format!("Member must satisfy regular expression pattern: {pattern}"),
            ))
        }
    }

    /// An optional list whose length, when present, is within `min..=max`.
    pub fn opt_list(&self, member: &str, min: usize, max: usize) -> Result<Option<&'a Vec<Value>>, ApiError> {
        let list = match self.body.get(member) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Array(a)) => a,
            Some(other) => {
                return Err(ApiError::bad_request(
                    "SerializationException",
                    format!("{} must be a list, got {other}", self.name(member)),
                ));
            }
        };
        let shown = || format!("[{} items]", list.len());
        if list.len() < min {
            return Err(ApiError::validation(
                &self.name(member),
                shown(),
                &format!("Member must have length greater than or equal to {min}"),
            ));
        }
        if list.len() > max {
            return Err(ApiError::validation(
                &self.name(member),
                shown(),
                &format!("Member must have length less than or equal to {max}"),
            ));
        }
        Ok(Some(list))
    }

    pub fn list(&self, member: &str, min: usize, max: usize) -> Result<&'a Vec<Value>, ApiError> {
        self.opt_list(member, min, max)?
            .ok_or_else(|| ApiError::validation(&self.name(member), "null", "Member must not be null"))
    }

    pub fn opt_i64(&self, member: &str) -> Result<Option<i64>, ApiError> {
        match self.body.get(member) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                ApiError::bad_request(
                    "SerializationException",
                    format!("{} must be an integer, got {v}", self.name(member)),
                )
            }),
        }
    }

    pub fn opt_bool(&self, member: &str) -> Result<Option<bool>, ApiError> {
        match self.body.get(member) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_bool().map(Some).ok_or_else(|| {
                ApiError::bad_request(
                    "SerializationException",
                    format!("{} must be a boolean, got {v}", self.name(member)),
                )
            }),
        }
    }

    pub fn check_enum(&self, member: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
        if allowed.contains(&value) {
            Ok(())
        } else {
            Err(ApiError::validation(
                &self.name(member),
                value,
                &format!("Member must satisfy enum value set: [{}]", allowed.join(", ")),
            ))
        }
    }
}

/// Pagination tokens: opaque to clients, an offset to us.
pub fn next_token(offset: usize, total: usize) -> Option<String> {
    (offset < total).then(|| format!("sim-{offset}"))
}

pub fn parse_token(token: Option<&str>) -> Result<usize, ApiError> {
    match token {
        None => Ok(0),
        Some(t) => t
            .strip_prefix("sim-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::bad_request("InvalidParameterValuesException", "The NextToken is not valid.")),
    }
}
