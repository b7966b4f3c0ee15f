//! AWS Directory Service Data (restJson1): CreateUser, DescribeUser, DisableUser.

use super::{Fields, parse_body};
use crate::config::Service;
use crate::error::{ApiError, Protocol};
use crate::world::{DirectoryKind, User};
use crate::{Inner, OpResult, Simulator, ids};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

const SVC: Service = Service::DirectoryServiceData;
/// ClientToken idempotency window of the real service.
const TOKEN_WINDOW_MS: f64 = 8.0 * 3600.0 * 1000.0;

#[derive(Deserialize)]
pub struct DirectoryQuery {
    #[serde(rename = "DirectoryId")]
    directory_id: Option<String>,
}

async fn handle(
    sim: Simulator,
    op: &'static str,
    query: DirectoryQuery,
    body: Bytes,
    run: fn(&mut Inner, f64, &str, &Value) -> OpResult,
) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e.render(Protocol::RestJson),
    };
    sim.call(Protocol::RestJson, SVC, op, |inner, now| {
        let directory_id = query.directory_id.as_deref().ok_or_else(|| {
            validation(
                "Value null at 'directoryId' failed to satisfy constraint: Member must not be null",
                "MISSING_ATTRIBUTE",
            )
        })?;
        if !ids::is_directory_id(directory_id) {
            return Err(validation(
                &format!("DirectoryId {directory_id:?} must satisfy regular expression pattern: ^d-[0-9a-f]{{10}}$"),
                "INVALID_ATTRIBUTE_VALUE",
            ));
        }
        inner.record_items(SVC, op, 1);
        run(inner, now, directory_id, &body)
    })
    .await
}

pub async fn create_user(State(sim): State<Simulator>, Query(q): Query<DirectoryQuery>, body: Bytes) -> Response {
    handle(sim, "CreateUser", q, body, create).await
}

pub async fn describe_user(State(sim): State<Simulator>, Query(q): Query<DirectoryQuery>, body: Bytes) -> Response {
    handle(sim, "DescribeUser", q, body, describe).await
}

pub async fn disable_user(State(sim): State<Simulator>, Query(q): Query<DirectoryQuery>, body: Bytes) -> Response {
    handle(sim, "DisableUser", q, body, disable).await
}

fn validation(message: &str, reason: &str) -> ApiError {
    ApiError::bad_request("ValidationException", message).with("Reason", reason)
}

fn not_found(message: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
}

/// `^[\w\-.]+$`, 1–20 characters: the sAMAccountName rules DS Data enforces.
fn check_sam(f: &Fields) -> Result<String, ApiError> {
    let sam = f.str("SAMAccountName").map_err(|e| validation(&e.message, "MISSING_ATTRIBUTE"))?;
    let len = sam.chars().count();
    let chars_ok = sam.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.');
    if !(1..=20).contains(&len) || !chars_ok {
        return Err(validation(
            &format!("SAMAccountName {sam:?} must be 1-20 characters matching ^[\\w\\-.]+$"),
            "INVALID_ATTRIBUTE_VALUE",
        ));
    }
    Ok(sam.to_owned())
}

fn managed_directory<'a>(
    inner: &'a mut Inner,
    directory_id: &str,
) -> Result<&'a mut crate::world::Directory, ApiError> {
    let directory = inner
        .world
        .directories
        .get_mut(directory_id)
        .ok_or_else(|| not_found(format!("Directory {directory_id} was not found.")))?;
    if directory.kind != DirectoryKind::MicrosoftAd {
        return Err(validation(
            "Directory Service Data supports AWS Managed Microsoft AD directories only.",
            "INVALID_DIRECTORY_TYPE",
        ));
    }
    Ok(directory)
}

fn create(inner: &mut Inner, now: f64, directory_id: &str, body: &Value) -> OpResult {
    let f = Fields::new(body, "");
    let sam = check_sam(&f)?;
    let token = f.opt_str("ClientToken")?.map(str::to_owned);
    let given_name = f.opt_str("GivenName")?.map(str::to_owned);
    let surname = f.opt_str("Surname")?.map(str::to_owned);
    let email = f.opt_str("EmailAddress")?.map(str::to_owned);
    // What makes two requests "the same" for ClientToken purposes.
    let fingerprint = json!([sam.to_lowercase(), given_name, surname, email]).to_string();
    if let Some(token) = &token {
        let key = (directory_id.to_owned(), token.clone());
        if let Some((earlier_sam, earlier_fp, at)) = inner.world.client_tokens.get(&key)
            && now - at < TOKEN_WINDOW_MS
        {
            if *earlier_fp != fingerprint {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "ConflictException",
                    "The ClientToken was already used with different parameters.",
                ));
            }
            let sid = inner.world.user(directory_id, earlier_sam).map(|u| u.id.clone()).unwrap_or_default();
            return Ok((
                StatusCode::OK,
                json!({ "DirectoryId": directory_id, "SAMAccountName": earlier_sam, "SID": sid }),
            ));
        }
    }
    let directory = managed_directory(inner, directory_id)?;
    let key = sam.to_lowercase();
    if directory.users.contains_key(&key) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ConflictException",
            format!("A user with SAMAccountName {sam} already exists."),
        ));
    }
    let user = User {
        username: sam.clone(),
        given_name,
        surname,
        email,
        enabled: true,
        created_by: "DirectoryServiceData".into(),
        password_set: false,
        id: ids::user_id(),
    };
    let sid = user.id.clone();
    directory.users.insert(key, user);
    if let Some(token) = token {
        inner.world.client_tokens.insert((directory_id.to_owned(), token), (sam.clone(), fingerprint, now));
    }
    Ok((StatusCode::OK, json!({ "DirectoryId": directory_id, "SAMAccountName": sam, "SID": sid })))
}

fn describe(inner: &mut Inner, _now: f64, directory_id: &str, body: &Value) -> OpResult {
    let sam = check_sam(&Fields::new(body, ""))?;
    let directory = managed_directory(inner, directory_id)?;
    let realm = directory.name.to_uppercase();
    let dn_base = directory.name.split('.').map(|p| format!("DC={p}")).collect::<Vec<_>>().join(",");
    let user =
        directory.users.get(&sam.to_lowercase()).ok_or_else(|| not_found(format!("User {sam} was not found.")))?;
    let mut out = json!({
        "DirectoryId": directory_id,
        "SAMAccountName": user.username,
        "SID": user.id,
        "Enabled": user.enabled,
        "Realm": realm,
        "UserPrincipalName": format!("{}@{}", user.username, realm),
        "DistinguishedName": format!("CN={},OU=Users,{dn_base}", user.username),
    });
    for (key, value) in [("GivenName", &user.given_name), ("Surname", &user.surname), ("EmailAddress", &user.email)] {
        if let Some(v) = value {
            out[key] = json!(v);
        }
    }
    Ok((StatusCode::OK, out))
}

fn disable(inner: &mut Inner, _now: f64, directory_id: &str, body: &Value) -> OpResult {
    let sam = check_sam(&Fields::new(body, ""))?;
    let directory = managed_directory(inner, directory_id)?;
    let user =
        directory.users.get_mut(&sam.to_lowercase()).ok_or_else(|| not_found(format!("User {sam} was not found.")))?;
    user.enabled = false;
    Ok((StatusCode::OK, json!({})))
}
