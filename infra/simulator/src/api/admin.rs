//! The admin API under `/_sim/`: seed, configure, inject faults, read counters, dump and reset.
//! Admin calls are never rate limited nor counted.

use crate::Simulator;
use crate::config::ConfigPatch;
use crate::gate::Fault;
use crate::world::{Seed, WsState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<Simulator> {
    Router::new()
        .route("/health", get(health))
        .route("/seed", post(seed))
        .route("/config", get(get_config).patch(patch_config))
        .route("/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/calls", get(calls).delete(clear_calls))
        .route("/state", get(state))
        .route("/reset", post(reset))
        .route("/workspaces", post(create_workspace))
        .route("/workspaces/{id}", delete(delete_workspace))
        .route("/workspaces/{id}/state", put(set_workspace_state))
}

fn bad(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message.into() }))).into_response()
}

async fn health(State(sim): State<Simulator>) -> Json<Value> {
    let inner = sim.lock();
    Json(json!({ "ok": true, "sim_time_ms": inner.clock.now_ms(), "time_factor": inner.clock.factor() }))
}

async fn seed(State(sim): State<Simulator>, Json(seed): Json<Seed>) -> Response {
    if let Err(e) = seed.validate() {
        return bad(e);
    }
    seed.apply(&mut sim.lock().world);
    StatusCode::NO_CONTENT.into_response()
}

async fn get_config(State(sim): State<Simulator>) -> Json<Value> {
    Json(json!(sim.lock().config))
}

async fn patch_config(State(sim): State<Simulator>, Json(patch): Json<ConfigPatch>) -> Response {
    if let Err(e) = patch.validate() {
        return bad(e);
    }
    let mut inner = sim.lock();
    inner.apply_config(patch);
    Json(json!(inner.config)).into_response()
}

async fn list_faults(State(sim): State<Simulator>) -> Json<Value> {
    Json(json!(sim.lock().gate.faults))
}

async fn add_fault(State(sim): State<Simulator>, Json(fault): Json<Fault>) -> Response {
    sim.lock().gate.faults.push(fault.normalise());
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(sim): State<Simulator>) -> StatusCode {
    sim.lock().gate.faults.clear();
    StatusCode::NO_CONTENT
}

async fn calls(State(sim): State<Simulator>) -> Json<Value> {
    Json(json!(sim.lock().gate.stats))
}

async fn clear_calls(State(sim): State<Simulator>) -> StatusCode {
    sim.lock().gate.stats.clear();
    StatusCode::NO_CONTENT
}

/// Everything the simulator holds, with each WorkSpace's state at this moment.
async fn state(State(sim): State<Simulator>) -> Json<Value> {
    let mut inner = sim.lock();
    let now = inner.clock.now_ms();
    inner.world.collect_gone(now);
    let workspaces: Vec<Value> = inner
        .world
        .workspaces
        .values()
        .map(|ws| {
            json!({
                "WorkspaceId": ws.id,
                "DirectoryId": ws.directory_id,
                "UserName": ws.user_name,
                "BundleId": ws.bundle_id,
                "State": ws.state(now).map(WsState::as_str),
                "Visible": ws.visible(now),
                "Tags": ws.tags,
                "Properties": ws.properties,
                "Update": ws.update,
            })
        })
        .collect();
    Json(json!({
        "sim_time_ms": now,
        "directories": inner.world.directories,
        "bundles": inner.world.bundles,
        "workspaces": workspaces,
    }))
}

async fn reset(State(sim): State<Simulator>) -> StatusCode {
    sim.lock().reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetState {
    state: WsState,
}

/// Suspends or resumes a WorkSpace (what an administrator or the service would do).
async fn set_workspace_state(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    Json(body): Json<SetState>,
) -> Response {
    let mut inner = sim.lock();
    let now = inner.clock.now_ms();
    let Some(ws) = inner.world.workspace_by_id_mut(&id) else {
        return (StatusCode::NOT_FOUND, Json(json!({ "error": format!("no WorkSpace {id}") }))).into_response();
    };
    match (ws.state(now), body.state) {
        (Some(WsState::Available | WsState::Suspended), WsState::Suspended) => ws.suspended = true,
        (Some(WsState::Available | WsState::Suspended), WsState::Available) => ws.suspended = false,
        (current, wanted) => {
            return bad(format!(
                "cannot move {id} from {:?} to {}: only AVAILABLE <-> SUSPENDED is supported",
                current.map(WsState::as_str),
                wanted.as_str()
            ));
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Makes a WorkSpace outside the pipeline, AVAILABLE at once (what an administrator does in the
/// console): the body is one `CreateWorkspaces` item (`DirectoryId`, `UserName`, `BundleId`, ...).
async fn create_workspace(State(sim): State<Simulator>, Json(request): Json<Value>) -> Response {
    let mut inner = sim.lock();
    let now = inner.clock.now_ms();
    match super::workspaces::create_by_hand(&mut inner, now, &request) {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "WorkspaceId": id }))).into_response(),
        Err((code, message)) => bad(format!("{code}: {message}")),
    }
}

/// Deletes a WorkSpace outside the pipeline, gone at once (an administrator's termination in
/// the console, completed).
async fn delete_workspace(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let mut inner = sim.lock();
    let now = inner.clock.now_ms();
    let Some(ws) = inner.world.workspace_by_id_mut(&id) else {
        return (StatusCode::NOT_FOUND, Json(json!({ "error": format!("no WorkSpace {id}") }))).into_response();
    };
    ws.terminated_at_ms = Some(now);
    ws.gone_at_ms = Some(now);
    inner.world.collect_gone(now);
    StatusCode::NO_CONTENT.into_response()
}
