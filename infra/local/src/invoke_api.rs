//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`), so that
//! `cargo lambda invoke` and `aws lambda invoke` reach the local functions, plus the runner's
//! own status under `/_runner/`.

use crate::runtime::{FunctionPool, Outcome};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub type Functions = Arc<BTreeMap<String, Arc<FunctionPool>>>;

pub fn router(functions: Functions) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .route("/_runner/health", get(|| async { Json(json!({ "ok": true })) }))
        .route("/_runner/stats", get(stats))
        .with_state(functions)
}

async fn invoke(State(functions): State<Functions>, Path(name): Path<String>, body: Bytes) -> Response {
    // Function names may arrive as ARNs or with a qualifier.
    let short = name.rsplit(':').find(|p| functions.contains_key(*p)).unwrap_or(&name);
    let Some(pool) = functions.get(short) else {
        let error = json!({ "Type": "User", "message": format!("Function not found: {name}") });
        return (StatusCode::NOT_FOUND, [("x-amzn-errortype", "ResourceNotFoundException")], Json(error))
            .into_response();
    };
    let payload = if body.is_empty() { Bytes::from_static(b"{}") } else { body };
    match pool.invoke(payload).await {
        Outcome::Response(out) => (StatusCode::OK, [("content-type", "application/json")], out).into_response(),
        Outcome::FunctionError(error) => function_error(error),
        Outcome::Timeout => {
            function_error(json!({ "errorType": "Sandbox.Timedout", "errorMessage": "Task timed out" }))
        }
        Outcome::Crashed => {
            function_error(json!({ "errorType": "Runtime.ExitError", "errorMessage": "Runtime exited" }))
        }
    }
}

fn function_error(error: Value) -> Response {
    (StatusCode::OK, [("x-amz-function-error", "Unhandled")], Json(error)).into_response()
}

async fn stats(State(functions): State<Functions>) -> Json<Value> {
    Json(json!(functions.iter().map(|(name, pool)| (name.clone(), pool.stats())).collect::<BTreeMap<_, _>>()))
}
