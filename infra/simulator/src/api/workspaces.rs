//! Amazon WorkSpaces (`WorkspacesService`, awsJson1_1).

use super::{Fields, next_token, parse_token};
use crate::config::Service;
use crate::error::{ApiError, Protocol};
use crate::ids;
use crate::world::{Workspace, WsState};
use crate::{Inner, OpResult, Simulator};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

const SVC: Service = Service::WorkSpaces;
const RUNNING_MODES: &[&str] = &["AUTO_STOP", "ALWAYS_ON", "MANUAL"];

pub async fn dispatch(sim: &Simulator, op: &str, body: Value) -> Response {
    let run: fn(&mut Inner, f64, &Value) -> OpResult = match op {
        "CreateWorkspaces" => create_workspaces,
        "TerminateWorkspaces" => terminate_workspaces,
        "DescribeWorkspaces" => describe_workspaces,
        "DescribeWorkspaceDirectories" => describe_directories,
        "DescribeWorkspaceBundles" => describe_bundles,
        _ => {
            return ApiError::bad_request("UnknownOperationException", format!("WorkSpaces has no simulated {op}"))
                .render(Protocol::AwsJson);
        }
    };
    sim.call(Protocol::AwsJson, SVC, op, |inner, now| run(inner, now, &body)).await
}

/// A per-item failure of CreateWorkspaces: error code and message.
struct ItemFailure(String, String);

fn fail(code: &str, message: impl Into<String>) -> ItemFailure {
    ItemFailure(code.to_owned(), message.into())
}

fn create_workspaces(inner: &mut Inner, now: f64, body: &Value) -> OpResult {
    let requests = Fields::new(body, "").list("Workspaces", 1, 25)?;
    for (i, request) in requests.iter().enumerate() {
        validate_request(&Fields::new(request, format!("workspaces.{}.member.", i + 1)))?;
    }
    inner.record_items(SVC, "CreateWorkspaces", requests.len());
    let quota = inner.config.max_workspaces;
    if inner.world.live_workspaces(now) >= quota {
        return Err(ApiError::bad_request(
            "ResourceLimitExceededException",
            format!("Your account has reached its WorkSpaces limit of {quota}."),
        ));
    }
    let mut pending = Vec::new();
    let mut failed = Vec::new();
    for request in requests {
        match create_one(inner, now, request) {
            Ok(ws) => pending.push(workspace_json(&ws, WsState::Pending)),
            Err(ItemFailure(code, message)) => failed.push(json!({
                "WorkspaceRequest": request, "ErrorCode": code, "ErrorMessage": message,
            })),
        }
    }
    Ok((StatusCode::OK, json!({ "FailedRequests": failed, "PendingRequests": pending })))
}

/// What the service validates before the operation runs: a violation fails the whole call.
fn validate_request(f: &Fields) -> Result<(), ApiError> {
    let directory = f.str("DirectoryId")?;
    f.check_pattern("DirectoryId", directory, ids::is_directory_id(directory), "^d-[0-9a-f]{8,63}$")?;
    f.str_len("UserName", 1, 63)?;
    let bundle = f.str("BundleId")?;
    f.check_pattern("BundleId", bundle, ids::is_bundle_id(bundle), "^wsb-[0-9a-z]{8,63}$")?;
    if let Some(name) = f.opt_str("WorkspaceName")? {
        f.check_len("WorkspaceName", name, 1, 64)?;
    }
    if let Some(props) = f.body.get("WorkspaceProperties") {
        let p = Fields::new(props, format!("{}workspaceProperties.", f.path));
        if let Some(mode) = p.opt_str("RunningMode")? {
            p.check_enum("RunningMode", mode, RUNNING_MODES)?;
        }
        p.opt_i64("RunningModeAutoStopTimeoutInMinutes")?;
    }
    f.opt_bool("UserVolumeEncryptionEnabled")?;
    f.opt_bool("RootVolumeEncryptionEnabled")?;
    if let Some(tags) = f.opt_list("Tags", 0, 50)? {
        for (i, tag) in tags.iter().enumerate() {
            Fields::new(tag, format!("{}tags.{}.member.", f.path, i + 1)).str_len("Key", 1, 127)?;
        }
    }
    Ok(())
}

fn create_one(inner: &mut Inner, now: f64, request: &Value) -> Result<Workspace, ItemFailure> {
    let s = |k: &str| request.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (directory_id, user_name, bundle_id) = (s("DirectoryId"), s("UserName"), s("BundleId"));
    let user_lower = user_name.to_lowercase();
    let world = &inner.world;
    if !world.directories.get(&directory_id).is_some_and(|d| d.registered) {
        return Err(fail(
            "ResourceNotFound.Directory",
            format!("The directory {directory_id} could not be found or is not registered with WorkSpaces."),
        ));
    }
    if !world.bundles.contains_key(&bundle_id) {
        return Err(fail("ResourceNotFound.Bundle", format!("The bundle {bundle_id} could not be found.")));
    }
    check_properties(request)?;
    let decoupled = user_name == "[UNDEFINED]";
    if decoupled {
        if request.get("WorkspaceName").and_then(Value::as_str).is_none() {
            return Err(fail(
                "InvalidParameterValuesException",
                "WorkspaceName is required when UserName is [UNDEFINED].",
            ));
        }
    } else if world.user(&directory_id, &user_name).is_none() {
        return Err(fail(
            "ResourceNotFound.User",
            format!("The user {user_name} could not be found in the directory {directory_id}."),
        ));
    }
    if let Some((code, message)) = inner.gate.create_failure(&user_lower) {
        return Err(ItemFailure(code, message));
    }
    let world = &inner.world;
    if !decoupled && world.workspace_of(&directory_id, &user_lower, now).is_some() {
        return Err(fail(
            "ResourceExists.WorkSpace",
            format!("The user {user_name} already has a WorkSpace in the directory {directory_id}."),
        ));
    }
    if world.live_workspaces(now) >= inner.config.max_workspaces {
        return Err(fail("ResourceLimitExceeded", "The WorkSpaces limit of the account is reached."));
    }
    let lifecycle = inner.config.lifecycle;
    let mut echoed = request.clone();
    if let Value::Object(map) = &mut echoed {
        for k in ["DirectoryId", "UserName", "BundleId", "Tags"] {
            map.remove(k);
        }
    }
    let ws = Workspace {
        id: ids::workspace_id(),
        directory_id,
        user_name,
        bundle_id,
        request: echoed,
        computer_name: ids::computer_name(),
        ip_address: format!("10.0.{}.{}", rand_octet(), rand_octet()),
        visible_at_ms: now + lifecycle.invisible_ms as f64,
        ready_at_ms: now + lifecycle.create_ms as f64,
        failure: inner.gate.workspace_error(&user_lower),
        suspended: false,
        terminated_at_ms: None,
        gone_at_ms: None,
    };
    inner.world.insert_workspace(ws.clone());
    Ok(ws)
}

fn rand_octet() -> u8 {
    rand::random::<u8>().max(1)
}

/// Per-item checks of `WorkspaceProperties` and encryption the service makes.
fn check_properties(request: &Value) -> Result<(), ItemFailure> {
    let props = request.get("WorkspaceProperties");
    let get = |k: &str| props.and_then(|p| p.get(k));
    let mode = get("RunningMode").and_then(Value::as_str);
    let timeout = get("RunningModeAutoStopTimeoutInMinutes").and_then(Value::as_i64);
    if mode == Some("MANUAL") {
        return Err(fail(
            "InvalidParameterValuesException",
            "RunningMode MANUAL is only supported for WorkSpaces Core.",
        ));
    }
    if let Some(minutes) = timeout {
        if mode == Some("ALWAYS_ON") {
            return Err(fail(
                "AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace",
                "RunningModeAutoStopTimeoutInMinutes applies only to AUTO_STOP WorkSpaces.",
            ));
        }
        if minutes <= 0 || minutes % 60 != 0 {
            return Err(fail(
                "InvalidParameterValuesException",
                format!("RunningModeAutoStopTimeoutInMinutes must be a multiple of 60, got {minutes}."),
            ));
        }
    }
    let encrypted = ["RootVolumeEncryptionEnabled", "UserVolumeEncryptionEnabled"]
        .iter()
        .any(|k| request.get(*k).and_then(Value::as_bool) == Some(true));
    if encrypted && request.get("VolumeEncryptionKey").and_then(Value::as_str).is_none() {
        return Err(fail(
            "InvalidParameterValuesException",
            "Volume encryption requires a VolumeEncryptionKey (a symmetric KMS key).",
        ));
    }
    Ok(())
}

fn terminate_workspaces(inner: &mut Inner, now: f64, body: &Value) -> OpResult {
    let requests = Fields::new(body, "").list("TerminateWorkspaceRequests", 1, 25)?;
    let mut ids_asked = Vec::with_capacity(requests.len());
    for (i, request) in requests.iter().enumerate() {
        let f = Fields::new(request, format!("terminateWorkspaceRequests.{}.member.", i + 1));
        let id = f.str("WorkspaceId")?;
        f.check_pattern("WorkspaceId", id, ids::is_workspace_id(id), "^ws-[0-9a-z]{8,63}$")?;
        ids_asked.push(id.to_owned());
    }
    inner.record_items(SVC, "TerminateWorkspaces", ids_asked.len());
    let lifecycle = inner.config.lifecycle;
    let mut failed = Vec::new();
    for id in ids_asked {
        let failure = match inner.world.workspace_by_id_mut(&id) {
            None => Some(("ResourceNotFound.WorkSpace", format!("The WorkSpace {id} could not be found."))),
            Some(ws) if ws.state(now) == Some(WsState::Suspended) => {
                Some(("InvalidResourceState", format!("The WorkSpace {id} is SUSPENDED and cannot be terminated.")))
            }
            Some(ws) => {
                ws.terminate(now, &lifecycle);
                None
            }
        };
        if let Some((code, message)) = failure {
            failed.push(json!({ "WorkspaceId": id, "ErrorCode": code, "ErrorMessage": message }));
        }
    }
    Ok((StatusCode::OK, json!({ "FailedRequests": failed })))
}

fn describe_workspaces(inner: &mut Inner, now: f64, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let ids_filter = f.opt_list("WorkspaceIds", 1, 25)?;
    let directory = f.opt_str("DirectoryId")?;
    let user = f.opt_str("UserName")?;
    let bundle = f.opt_str("BundleId")?;
    let name = f.opt_str("WorkspaceName")?;
    let limit = f.opt_i64("Limit")?;
    if let Some(l) = limit
        && !(1..=25).contains(&l)
    {
        let constraint = if l < 1 {
            "Member must have value greater than or equal to 1"
        } else {
            "Member must have value less than or equal to 25"
        };
        return Err(ApiError::validation("limit", l, constraint));
    }
    let filters = [ids_filter.is_some(), directory.is_some(), bundle.is_some(), name.is_some()];
    if filters.iter().filter(|set| **set).count() > 1 {
        return Err(ApiError::bad_request(
            "InvalidParameterValuesException",
            "WorkspaceIds, DirectoryId, BundleId and WorkspaceName cannot be combined.",
        ));
    }
    if user.is_some() && directory.is_none() {
        return Err(ApiError::bad_request(
            "InvalidParameterValuesException",
            "UserName can only be used together with DirectoryId.",
        ));
    }
    let mut wanted_ids = Vec::new();
    for (i, id) in ids_filter.into_iter().flatten().enumerate() {
        let id_str = id.as_str().unwrap_or_default();
        Fields::new(id, "").check_pattern(
            &format!("WorkspaceIds.{}.member", i + 1),
            id_str,
            ids::is_workspace_id(id_str),
            "^ws-[0-9a-z]{8,63}$",
        )?;
        wanted_ids.push(id_str);
    }
    inner.record_items(SVC, "DescribeWorkspaces", wanted_ids.len());
    let user_lower = user.map(str::to_lowercase);
    let matching: Vec<&Workspace> = inner
        .world
        .workspaces
        .values()
        .filter(|ws| ws.visible(now))
        .filter(|ws| wanted_ids.is_empty() || wanted_ids.contains(&ws.id.as_str()))
        .filter(|ws| directory.is_none_or(|d| ws.directory_id == d))
        .filter(|ws| user_lower.as_ref().is_none_or(|u| ws.user_name.to_lowercase() == *u))
        .filter(|ws| bundle.is_none_or(|b| ws.bundle_id == b))
        .filter(|ws| name.is_none_or(|n| ws.request.get("WorkspaceName").and_then(Value::as_str) == Some(n)))
        .collect();
    let offset = parse_token(f.opt_str("NextToken")?)?;
    let page = limit.unwrap_or(25) as usize;
    let end = (offset + page).min(matching.len());
    let listed: Vec<Value> = matching
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .filter_map(|ws| ws.state(now).map(|state| workspace_json(ws, state)))
        .collect();
    let mut out = json!({ "Workspaces": listed });
    if let Some(token) = next_token(end, matching.len()) {
        out["NextToken"] = json!(token);
    }
    Ok((StatusCode::OK, out))
}

fn workspace_json(ws: &Workspace, state: WsState) -> Value {
    let mut out = json!({
        "WorkspaceId": ws.id,
        "DirectoryId": ws.directory_id,
        "UserName": ws.user_name,
        "BundleId": ws.bundle_id,
        "State": state.as_str(),
        "SubnetId": "subnet-0sim0000000000001",
    });
    if let Value::Object(echo) = &ws.request {
        for (k, v) in echo {
            out[k] = v.clone();
        }
    }
    if state != WsState::Pending {
        out["ComputerName"] = json!(ws.computer_name);
        out["IpAddress"] = json!(ws.ip_address);
    }
    if let (WsState::Error, Some((code, message))) = (state, &ws.failure) {
        out["ErrorCode"] = json!(code);
        out["ErrorMessage"] = json!(message);
    }
    out
}

fn describe_directories(inner: &mut Inner, _now: f64, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let wanted = f.opt_list("DirectoryIds", 1, 25)?;
    let limit = f.opt_i64("Limit")?.unwrap_or(25).clamp(1, 25) as usize;
    let wanted: Option<Vec<&str>> = wanted.map(|l| l.iter().filter_map(Value::as_str).collect());
    inner.record_items(SVC, "DescribeWorkspaceDirectories", wanted.as_ref().map_or(0, Vec::len));
    let dirs: Vec<Value> = inner
        .world
        .directories
        .values()
        .filter(|d| d.registered)
        .filter(|d| wanted.as_ref().is_none_or(|w| w.contains(&d.id.as_str())))
        .map(|d| {
            json!({
                "DirectoryId": d.id,
                "DirectoryName": d.name,
                "Alias": d.name.split('.').next().unwrap_or(&d.name),
                "DirectoryType": d.kind.workspaces_type(),
                "State": "REGISTERED",
                "RegistrationCode": format!("SLiad+{}", &d.id[2..].to_uppercase()),
                "WorkspaceCreationProperties": { "EnableInternetAccess": false },
            })
        })
        .collect();
    page(dirs, "Directories", parse_token(f.opt_str("NextToken")?)?, limit)
}

fn describe_bundles(inner: &mut Inner, _now: f64, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let wanted = f.opt_list("BundleIds", 1, 25)?;
    let owner = f.opt_str("Owner")?;
    if wanted.is_some() && owner.is_some() {
        return Err(ApiError::bad_request(
            "InvalidParameterValuesException",
            "BundleIds and Owner cannot be combined.",
        ));
    }
    let wanted: Option<Vec<&str>> = wanted.map(|l| l.iter().filter_map(Value::as_str).collect());
    inner.record_items(SVC, "DescribeWorkspaceBundles", wanted.as_ref().map_or(0, Vec::len));
    let bundles: Vec<Value> = inner
        .world
        .bundles
        .values()
        .filter(|b| wanted.as_ref().is_none_or(|w| w.contains(&b.id.as_str())))
        .map(|b| {
            json!({
                "BundleId": b.id,
                "Name": b.name,
                "Owner": "AMAZON",
                "Description": format!("{} (simulated)", b.name),
                "ComputeType": { "Name": b.compute_type },
                "RootStorage": { "Capacity": b.root_gib.to_string() },
                "UserStorage": { "Capacity": b.user_gib.to_string() },
                "State": "AVAILABLE",
                "BundleType": "REGULAR",
            })
        })
        .collect();
    page(bundles, "Bundles", parse_token(f.opt_str("NextToken")?)?, limit_default())
}

fn limit_default() -> usize {
    25
}

fn page(items: Vec<Value>, key: &str, offset: usize, limit: usize) -> OpResult {
    let end = (offset + limit).min(items.len());
    let mut out = json!({ key: items.get(offset..end).unwrap_or_default() });
    if let Some(token) = next_token(end, items.len()) {
        out["NextToken"] = json!(token);
    }
    Ok((StatusCode::OK, out))
}
