//! Amazon WorkSpaces (`WorkspacesService`, awsJson1_1).

use super::{Fields, next_token, parse_token};
use crate::config::Service;
use crate::error::{ApiError, Protocol};
use crate::ids;
use crate::world::{Properties, Update, Workspace, WsState};
use crate::{Inner, OpResult, Simulator};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use shared::domain::workspace::{
    AUTO_STOP_STEP_MINUTES, DEFAULT_AUTO_STOP_MINUTES, MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS, RESERVED_TAG_PREFIX,
    compute_change, tag_text_problem, volumes_allowed,
};

const SVC: Service = Service::WorkSpaces;
const RUNNING_MODES: &[&str] = &["AUTO_STOP", "ALWAYS_ON", "MANUAL"];

pub async fn dispatch(sim: &Simulator, op: &str, body: Value) -> Response {
    let run: fn(&mut Inner, f64, &Value) -> OpResult = match op {
        "CreateWorkspaces" => create_workspaces,
        "TerminateWorkspaces" => terminate_workspaces,
        "DescribeWorkspaces" => describe_workspaces,
        "DescribeWorkspaceDirectories" => describe_directories,
        "DescribeWorkspaceBundles" => describe_bundles,
        "CreateTags" => create_tags,
        "DeleteTags" => delete_tags,
        "DescribeTags" => describe_tags,
        "ModifyWorkspaceState" => modify_workspace_state,
        "ModifyWorkspaceProperties" => modify_workspace_properties,
        "MigrateWorkspace" => migrate_workspace,
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

/// A WorkSpace made outside the pipeline (in the console, by an older tool): a
/// `CreateWorkspaces` request's item, AVAILABLE and listed at once. The admin API's; the code and
/// message of the refusal a real create would give.
pub fn create_by_hand(inner: &mut Inner, now: f64, request: &Value) -> Result<String, (String, String)> {
    let ws = create_one(inner, now, request).map_err(|ItemFailure(code, message)| (code, message))?;
    let made = inner.world.workspace_by_id_mut(&ws.id).ok_or_else(|| ("InternalError".to_owned(), ws.id.clone()))?;
    made.visible_at_ms = now;
    made.ready_at_ms = now;
    Ok(ws.id)
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
        for k in ["DirectoryId", "UserName", "BundleId", "Tags", "WorkspaceProperties"] {
            map.remove(k);
        }
    }
    let Some(bundle) = inner.world.bundles.get(&bundle_id) else {
        return Err(fail("ResourceNotFound.Bundle", format!("The bundle {bundle_id} could not be found.")));
    };
    let properties = initial_properties(request, bundle);
    let tags = request
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let value = t.get("Value").and_then(Value::as_str).unwrap_or_default();
            Some((t.get("Key")?.as_str()?.to_owned(), value.to_owned()))
        })
        .collect();
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
        tags,
        properties,
        update: None,
        admin_maintenance: false,
        launched_at_ms: now,
        last_volume_change_ms: None,
        last_compute_up_ms: None,
        last_compute_down_ms: None,
    };
    inner.world.insert_workspace(ws.clone());
    Ok(ws)
}

/// The bundle's compute type and volumes, overridden by the request's `WorkspaceProperties`.
/// Without a running mode the WorkSpace is ALWAYS_ON [UNKNOWN: the model documents no default;
/// the adapter always sends one]; AUTO_STOP without a timeout gets the console's 60 minutes.
fn initial_properties(request: &Value, bundle: &crate::world::Bundle) -> Properties {
    let props = request.get("WorkspaceProperties");
    let get = |k: &str| props.and_then(|p| p.get(k));
    let running_mode = get("RunningMode").and_then(Value::as_str).unwrap_or("ALWAYS_ON").to_owned();
    let auto_stop_minutes = get("RunningModeAutoStopTimeoutInMinutes")
        .and_then(Value::as_i64)
        .or((running_mode == "AUTO_STOP").then_some(i64::from(DEFAULT_AUTO_STOP_MINUTES)));
    Properties {
        running_mode,
        auto_stop_minutes,
        root_gib: get("RootVolumeSizeGib").and_then(Value::as_i64).unwrap_or(i64::from(bundle.root_gib)),
        user_gib: get("UserVolumeSizeGib").and_then(Value::as_i64).unwrap_or(i64::from(bundle.user_gib)),
        compute_type: get("ComputeTypeName").and_then(Value::as_str).unwrap_or(&bundle.compute_type).to_owned(),
    }
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
    if let Some(d) = directory {
        f.check_pattern("DirectoryId", d, ids::is_directory_id(d), "^d-[0-9a-f]{8,63}$")?;
    }
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
    let p = &ws.properties;
    out["WorkspaceProperties"] = json!({
        "RunningMode": p.running_mode,
        "RootVolumeSizeGib": p.root_gib,
        "UserVolumeSizeGib": p.user_gib,
        "ComputeTypeName": p.compute_type,
    });
    if let Some(minutes) = p.auto_stop_minutes {
        out["WorkspaceProperties"]["RunningModeAutoStopTimeoutInMinutes"] = json!(minutes);
    }
    if let (WsState::Updating, Some(update)) = (state, &ws.update) {
        let states: Vec<Value> =
            update.resources.iter().map(|r| json!({ "Resource": r, "State": "UPDATE_IN_PROGRESS" })).collect();
        out["ModificationStates"] = json!(states);
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

// ---------------------------------------------------------------- tags

/// The `ResourceId` of a tag operation: only WorkSpaces are simulated, so any other resource
/// (directory, image, bundle, ...) is not found.
fn tagged<'a>(inner: &'a mut Inner, f: &Fields, op: &str, items: usize) -> Result<&'a mut Workspace, ApiError> {
    let id = f.str_len("ResourceId", 1, usize::MAX)?.to_owned();
    inner.record_items(SVC, op, items);
    inner.world.workspace_by_id_mut(&id).ok_or_else(|| not_found(&id))
}

fn not_found(id: &str) -> ApiError {
    ApiError::bad_request("ResourceNotFoundException", format!("The resource {id} could not be found."))
        .with("ResourceId", id)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("InvalidParameterValuesException", message)
}

/// A tag key or value the admin guide's rules refuse.
fn check_tag_text(what: &str, s: &str) -> Result<(), ApiError> {
    tag_text_problem(what, s).map_or(Ok(()), |problem| Err(invalid(problem)))
}

fn create_tags(inner: &mut Inner, _now: f64, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let list = f.list("Tags", 0, usize::MAX)?;
    let mut tags = Vec::with_capacity(list.len());
    for (i, tag) in list.iter().enumerate() {
        let t = Fields::new(tag, format!("tags.{}.member.", i + 1));
        let key = t.str_len("Key", 1, MAX_TAG_KEY)?;
        let value = t.opt_str("Value")?.unwrap_or_default();
        t.check_len("Value", value, 0, MAX_TAG_VALUE)?;
        tags.push((key.to_owned(), value.to_owned()));
    }
    for (key, value) in &tags {
        check_tag_text("key", key)?;
        if !value.is_empty() {
            check_tag_text("value", value)?;
        }
    }
    let ws = tagged(inner, &f, "CreateTags", tags.len())?;
    let mut merged = ws.tags.clone();
    merged.extend(tags);
    if merged.len() > MAX_TAGS {
        return Err(ApiError::bad_request(
            "ResourceLimitExceededException",
            format!("A WorkSpaces resource can have at most {MAX_TAGS} tags; this would make {}.", merged.len()),
        ));
    }
    ws.tags = merged;
    Ok((StatusCode::OK, json!({})))
}

fn delete_tags(inner: &mut Inner, _now: f64, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let keys: Vec<String> =
        f.list("TagKeys", 0, usize::MAX)?.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    if let Some(key) = keys.iter().find(|k| k.to_lowercase().starts_with(RESERVED_TAG_PREFIX)) {
        return Err(invalid(format!("The tag key {key:?} is reserved for AWS and cannot be deleted.")));
    }
    let ws = tagged(inner, &f, "DeleteTags", keys.len())?;
    // Keys the resource does not have are ignored [UNKNOWN: not documented; the tolerant reading].
    for key in &keys {
        ws.tags.remove(key);
    }
    Ok((StatusCode::OK, json!({})))
}

fn describe_tags(inner: &mut Inner, _now: f64, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let ws = tagged(inner, &f, "DescribeTags", 1)?;
    let list: Vec<Value> = ws.tags.iter().map(|(k, v)| json!({ "Key": k, "Value": v })).collect();
    Ok((StatusCode::OK, json!({ "TagList": list })))
}

// ---------------------------------------------------------------- state, properties, migration

fn workspace_id<'a>(f: &Fields<'a>, member: &str) -> Result<&'a str, ApiError> {
    let id = f.str(member)?;
    f.check_pattern(member, id, ids::is_workspace_id(id), "^ws-[0-9a-z]{8,63}$")?;
    Ok(id)
}

fn wrong_state(id: &str, state: Option<WsState>, what: &str) -> ApiError {
    ApiError::bad_request(
        "InvalidResourceStateException",
        format!("The WorkSpace {id} is {} and {what}.", state.map_or("gone", WsState::as_str)),
    )
}

/// AVAILABLE ↔ ADMIN_MAINTENANCE. Only an AVAILABLE WorkSpace can be put in ADMIN_MAINTENANCE
/// (the console offers "Modify State" only then; the code for STOPPED and the other states is
/// [INFER] InvalidResourceStateException). Asking for the state it already has is accepted
/// [UNKNOWN: undocumented; the tolerant reading].
fn modify_workspace_state(inner: &mut Inner, now: f64, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let id = workspace_id(&f, "WorkspaceId")?;
    let target = f.str("WorkspaceState")?;
    f.check_enum("WorkspaceState", target, &["AVAILABLE", "ADMIN_MAINTENANCE"])?;
    inner.record_items(SVC, "ModifyWorkspaceState", 1);
    let ws = inner.world.workspace_by_id_mut(id).ok_or_else(|| not_found(id))?;
    match ws.state(now) {
        Some(WsState::Available | WsState::AdminMaintenance) => {
            ws.admin_maintenance = target == "ADMIN_MAINTENANCE";
            Ok((StatusCode::OK, json!({})))
        }
        other => Err(wrong_state(id, other, "its state cannot be modified (it must be AVAILABLE)")),
    }
}

/// One property group per call: a compute type with a volume, or both volumes, is refused (admin
/// guide); the running mode may come with any of them [UNKNOWN: undocumented; tolerant]. The
/// WorkSpace must be AVAILABLE (or STOPPED, not simulated), volumes only grow within the
/// documented groups, and cooldowns run from launch (`Lifecycle`). A cooldown violation answers
/// InvalidResourceStateException [UNKNOWN: AWS does not document the code; a state that passes
/// with time]. The WorkSpace is then UPDATING for `update_ms`.
fn modify_workspace_properties(inner: &mut Inner, now: f64, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let id = workspace_id(&f, "WorkspaceId")?;
    let empty = json!({});
    let p = Fields::new(body.get("WorkspaceProperties").unwrap_or(&empty), "workspaceProperties.");
    let mode = p.opt_str("RunningMode")?;
    if let Some(m) = mode {
        p.check_enum("RunningMode", m, RUNNING_MODES)?;
    }
    let timeout = p.opt_i64("RunningModeAutoStopTimeoutInMinutes")?;
    let root = p.opt_i64("RootVolumeSizeGib")?;
    let user = p.opt_i64("UserVolumeSizeGib")?;
    let compute = p.opt_str("ComputeTypeName")?;
    if mode.is_none() && timeout.is_none() && root.is_none() && user.is_none() && compute.is_none() {
        return Err(invalid("WorkspaceProperties must change at least one property."));
    }
    if compute.is_some() && (root.is_some() || user.is_some()) {
        return Err(invalid("The compute type and a volume size cannot be modified in the same request."));
    }
    if root.is_some() && user.is_some() {
        return Err(invalid("The root and user volumes cannot be modified in the same request."));
    }
    if mode == Some("MANUAL") {
        return Err(invalid("RunningMode MANUAL is only supported for WorkSpaces Core."));
    }
    if let Some(minutes) = timeout
        && (minutes <= 0 || minutes % i64::from(AUTO_STOP_STEP_MINUTES) != 0)
    {
        return Err(invalid(format!("RunningModeAutoStopTimeoutInMinutes must be a multiple of 60, got {minutes}.")));
    }
    inner.record_items(SVC, "ModifyWorkspaceProperties", 1);
    let lifecycle = inner.config.lifecycle;
    let ws = inner.world.workspace_by_id_mut(id).ok_or_else(|| not_found(id))?;
    match ws.state(now) {
        Some(WsState::Updating) => {
            return Err(ApiError::bad_request(
                "OperationInProgressException",
                "The properties of this WorkSpace are currently under modification. Please try again in a moment.",
            ));
        }
        Some(WsState::Available) => {}
        other => return Err(wrong_state(id, other, "cannot be modified (it must be AVAILABLE or STOPPED)")),
    }
    let mut next = ws.properties.clone();
    let mut resources = Vec::new();
    if let Some(m) = mode {
        next.running_mode = m.to_owned();
        if m == "ALWAYS_ON" {
            next.auto_stop_minutes = None;
        } else if next.auto_stop_minutes.is_none() {
            next.auto_stop_minutes = Some(i64::from(DEFAULT_AUTO_STOP_MINUTES));
        }
    }
    if let Some(minutes) = timeout {
        if next.running_mode == "ALWAYS_ON" {
            return Err(invalid("RunningModeAutoStopTimeoutInMinutes applies only to AUTO_STOP WorkSpaces."));
        }
        next.auto_stop_minutes = Some(minutes);
    }
    let since = |last: Option<f64>| now - last.unwrap_or(ws.launched_at_ms).max(ws.launched_at_ms);
    let cooldown = |what: &str| {
        ApiError::bad_request(
            "InvalidResourceStateException",
            format!("The {what} of WorkSpace {id} was changed too recently (or it is too new); try again later."),
        )
    };
    if root.is_some() || user.is_some() {
        let (new_root, new_user) = (root.unwrap_or(next.root_gib), user.unwrap_or(next.user_gib));
        if new_root < next.root_gib || new_user < next.user_gib {
            return Err(invalid("The volumes of a WorkSpace cannot be decreased."));
        }
        if !volumes_allowed(&next.compute_type, new_root, new_user) {
            return Err(invalid(format!(
                "[{new_root}, {new_user}] GB is not an allowed [root, user] volume combination: \
                 [80,10], [80,50], [80,100], [175-2000, 100-2000]."
            )));
        }
        if since(ws.last_volume_change_ms) < lifecycle.volume_cooldown_ms as f64 {
            return Err(cooldown("volume size"));
        }
        resources.push(if root.is_some() { "ROOT_VOLUME" } else { "USER_VOLUME" });
        (next.root_gib, next.user_gib) = (new_root, new_user);
        ws.last_volume_change_ms = Some(now);
    }
    if let Some(to) = compute {
        let larger = compute_change(&next.compute_type, to)
            .map_err(|m| ApiError::bad_request("UnsupportedWorkspaceConfigurationException", m))?;
        if larger {
            if since(ws.last_compute_up_ms) < lifecycle.compute_up_cooldown_ms as f64 {
                return Err(cooldown("compute type"));
            }
            ws.last_compute_up_ms = Some(now);
        } else {
            if ws.last_compute_down_ms.is_some_and(|t| now - t < lifecycle.compute_down_cooldown_ms as f64) {
                return Err(cooldown("compute type"));
            }
            ws.last_compute_down_ms = Some(now);
        }
        resources.push("COMPUTE_TYPE");
        next.compute_type = to.to_owned();
    }
    ws.update = Some(Update { properties: next, resources, done_at_ms: now + lifecycle.update_ms as f64 });
    Ok((StatusCode::OK, json!({})))
}

/// A new WorkSpace (new id) from the target bundle: PENDING for `migrate_ms`, then AVAILABLE,
/// same user, user volume and running mode, the bundle's compute type and root volume; the
/// source is TERMINATING until then and gone after. Tags are copied [INFER: undocumented]. The
/// source must be AVAILABLE or ERROR (STOPPED is not simulated); any other state, ADMIN_MAINTENANCE
/// included, answers InvalidResourceStateException, which the model does not list for
/// MigrateWorkspace [UNKNOWN: the SDK surfaces it as an unmodeled error with that code].
fn migrate_workspace(inner: &mut Inner, now: f64, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let source_id = workspace_id(&f, "SourceWorkspaceId")?;
    let bundle_id = f.str("BundleId")?;
    f.check_pattern("BundleId", bundle_id, ids::is_bundle_id(bundle_id), "^wsb-[0-9a-z]{8,63}$")?;
    inner.record_items(SVC, "MigrateWorkspace", 1);
    let lifecycle = inner.config.lifecycle;
    let Some(bundle) = inner.world.bundles.get(bundle_id).cloned() else {
        return Err(not_found(bundle_id));
    };
    let source = inner.world.workspace_by_id(source_id).ok_or_else(|| not_found(source_id))?;
    if source.bundle_id == bundle_id {
        return Err(invalid("The target bundle is the WorkSpace's bundle; rebuild it instead."));
    }
    match source.state(now) {
        Some(WsState::Available | WsState::Error) => {}
        Some(WsState::Updating) => {
            return Err(ApiError::bad_request(
                "OperationInProgressException",
                "The properties of this WorkSpace are currently under modification. Please try again in a moment.",
            ));
        }
        other => return Err(wrong_state(source_id, other, "cannot be migrated (AVAILABLE, STOPPED or ERROR)")),
    }
    let ready = now + lifecycle.migrate_ms as f64;
    let properties = Properties {
        compute_type: bundle.compute_type.clone(),
        root_gib: i64::from(bundle.root_gib),
        ..source.properties.clone()
    };
    let target = Workspace {
        id: ids::workspace_id(),
        bundle_id: bundle_id.to_owned(),
        computer_name: ids::computer_name(),
        ip_address: format!("10.0.{}.{}", rand_octet(), rand_octet()),
        visible_at_ms: now + lifecycle.invisible_ms as f64,
        ready_at_ms: ready,
        failure: None,
        suspended: false,
        terminated_at_ms: None,
        gone_at_ms: None,
        properties,
        update: None,
        admin_maintenance: false,
        launched_at_ms: now,
        last_volume_change_ms: None,
        last_compute_up_ms: None,
        last_compute_down_ms: None,
        ..source.clone()
    };
    let target_id = target.id.clone();
    if let Some(source) = inner.world.workspace_by_id_mut(source_id) {
        source.terminated_at_ms = Some(ready);
        source.gone_at_ms = Some(ready);
    }
    inner.world.insert_workspace(target);
    Ok((StatusCode::OK, json!({ "SourceWorkspaceId": source_id, "TargetWorkspaceId": target_id })))
}
