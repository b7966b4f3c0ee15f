//! Errors as the real services put them on the wire.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The two wire protocols the simulated services speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// awsJson1_1: WorkSpaces, Directory Service. Error code in `__type`.
    AwsJson,
    /// restJson1: WorkDocs, Directory Service Data. Error code in `x-amzn-ErrorType`.
    RestJson,
}

/// An error response of a simulated API.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Extra members of the error shape (DS Data's `Reason`, `RetryAfterSeconds`).
    pub extra: Vec<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { status, code: code.to_owned(), message: message.into(), extra: Vec::new() }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The smithy-style message the services use for a failed model constraint.
    pub fn validation(field: &str, value: impl std::fmt::Display, constraint: &str) -> Self {
        Self::bad_request(
            "ValidationException",
            format!(
                "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
            ),
        )
    }

    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.extra.push((key, value.into()));
        self
    }

    pub fn render(&self, protocol: Protocol) -> Response {
        let mut body = serde_json::Map::new();
        match protocol {
            Protocol::AwsJson => {
                body.insert("__type".into(), json!(self.code));
                body.insert("message".into(), json!(self.message));
            }
            Protocol::RestJson => {
                body.insert("Message".into(), json!(self.message));
            }
        }
        for (k, v) in &self.extra {
            body.insert((*k).into(), v.clone());
        }
        let mut response = (self.status, Value::Object(body).to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static(content_type(protocol)));
        if let Ok(code) = HeaderValue::from_str(&self.code) {
            headers.insert("x-amzn-errortype", code);
        }
        response
    }
}

pub fn content_type(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::AwsJson => "application/x-amz-json-1.1",
        Protocol::RestJson => "application/json",
    }
}

/// A successful response in the protocol's content type.
pub fn ok(protocol: Protocol, status: StatusCode, body: Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert("content-type", HeaderValue::from_static(content_type(protocol)));
    response
}
