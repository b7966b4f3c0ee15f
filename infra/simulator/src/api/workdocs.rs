//! Amazon WorkDocs (restJson1): CreateUser and DescribeUsers. The organization is the directory:
//! users created here are directory users that WorkSpaces can then be created for.

use super::{Fields, next_token, parse_body, parse_token};
use crate::config::Service;
use crate::error::{ApiError, Protocol};
use crate::world::{DirectoryKind, User};
use crate::{OpResult, Simulator, ids};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

const SVC: Service = Service::WorkDocs;

fn user_json(directory_id: &str, user: &User) -> Value {
    json!({
        "Id": user.id,
        "Username": user.username,
        "EmailAddress": user.email,
        "GivenName": user.given_name,
        "Surname": user.surname,
        "OrganizationId": directory_id,
        "RootFolderId": format!("root-{}", user.id),
        "RecycleBinFolderId": format!("bin-{}", user.id),
        "Status": if user.enabled { "ACTIVE" } else { "INACTIVE" },
        "Type": "USER",
        "TimeZoneId": "UTC",
        "CreatedTimestamp": 1.7e9,
        "ModifiedTimestamp": 1.7e9,
    })
}

fn workdocs_username_ok(s: &str) -> bool {
    // [\w\-+.]+(@[a-zA-Z0-9.\-]+\.[a-zA-Z]+)?
    let (local, domain) = match s.split_once('@') {
        Some((l, d)) => (l, Some(d)),
        None => (s, None),
    };
    let local_ok =
        !local.is_empty() && local.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'));
    let domain_ok = domain.is_none_or(|d| {
        d.rsplit_once('.').is_some_and(|(host, tld)| {
            !host.is_empty()
                && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
                && !tld.is_empty()
                && tld.chars().all(|c| c.is_ascii_alphabetic())
        })
    });
    local_ok && domain_ok
}

pub async fn create_user(State(sim): State<Simulator>, body: Bytes) -> Response {
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return e.render(Protocol::RestJson),
    };
    sim.call(Protocol::RestJson, SVC, "CreateUser", |inner, _| -> OpResult {
        let f = Fields::new(&body, "");
        let org = f.str("OrganizationId")?;
        let username = f.str_len("Username", 1, 256)?;
        f.check_pattern(
            "Username",
            username,
            workdocs_username_ok(username),
            "[\\w\\-+.]+(@[a-zA-Z0-9.\\-]+\\.[a-zA-Z]+)?",
        )?;
        let given_name = f.str_len("GivenName", 1, 64)?;
        let surname = f.str_len("Surname", 1, 64)?;
        // Never logged, never kept.
        f.str_len("Password", 4, 32)?;
        let email = f.opt_str("EmailAddress")?;
        if let Some(e) = email {
            f.check_len("EmailAddress", e, 1, 256)?;
        }
        inner.record_items(SVC, "CreateUser", 1);
        let directory = inner.world.directories.get_mut(org).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "UnauthorizedResourceAccessException",
                format!("Organization {org} is not accessible."),
            )
        })?;
        if directory.kind == DirectoryKind::AdConnector {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "UnauthorizedOperationException",
                "Users of an AD Connector directory are managed on premises.",
            ));
        }
        let key = username.to_lowercase();
        if directory.users.contains_key(&key) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "EntityAlreadyExistsException",
                format!("The user {username} already exists."),
            ));
        }
        let user = User {
            username: username.to_owned(),
            given_name: Some(given_name.to_owned()),
            surname: Some(surname.to_owned()),
            email: email.map(str::to_owned),
            enabled: true,
            created_by: "WorkDocs".into(),
            password_set: true,
            id: ids::user_id(),
        };
        let out = json!({ "User": user_json(org, &user) });
        directory.users.insert(key, user);
        Ok((StatusCode::CREATED, out))
    })
    .await
}

#[derive(Deserialize)]
pub struct DescribeUsersQuery {
    #[serde(rename = "organizationId")]
    organization_id: Option<String>,
    #[serde(rename = "userIds")]
    user_ids: Option<String>,
    query: Option<String>,
    marker: Option<String>,
    limit: Option<usize>,
}

pub async fn describe_users(State(sim): State<Simulator>, Query(q): Query<DescribeUsersQuery>) -> Response {
    sim.call(Protocol::RestJson, SVC, "DescribeUsers", |inner, _| -> OpResult {
        let org = q
            .organization_id
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("InvalidArgumentException", "organizationId is required."))?;
        let limit = q.limit.unwrap_or(50);
        if !(1..=999).contains(&limit) {
            return Err(ApiError::bad_request("InvalidArgumentException", "limit must be between 1 and 999."));
        }
        inner.record_items(SVC, "DescribeUsers", 1);
        let directory = inner.world.directories.get(org).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "EntityNotExistsException",
                format!("Organization {org} does not exist."),
            )
        })?;
        let ids: Option<Vec<&str>> = q.user_ids.as_deref().map(|s| s.split(',').collect());
        let needle = q.query.as_deref().map(str::to_lowercase);
        let users: Vec<Value> = directory
            .users
            .values()
            .filter(|u| ids.as_ref().is_none_or(|ids| ids.contains(&u.id.as_str())))
            .filter(|u| {
                needle.as_ref().is_none_or(|n| {
                    [Some(&u.username), u.given_name.as_ref(), u.surname.as_ref(), u.email.as_ref()]
                        .into_iter()
                        .flatten()
                        .any(|field| field.to_lowercase().contains(n.as_str()))
                })
            })
            .map(|u| user_json(org, u))
            .collect();
        let offset = parse_token(q.marker.as_deref())?;
        let end = (offset + limit).min(users.len());
        let mut out = json!({
            "Users": users.get(offset..end).unwrap_or_default(),
            "TotalNumberOfUsers": users.len(),
        });
        if let Some(marker) = next_token(end, users.len()) {
            out["Marker"] = json!(marker);
        }
        Ok((StatusCode::OK, out))
    })
    .await
}
