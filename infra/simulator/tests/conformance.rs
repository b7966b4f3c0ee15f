//! Conformance: the real AWS SDK clients against the simulator. Every operation and every error
//! the simulator returns must parse as the real service's would.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_workspaces::config::Credentials;
use aws_sdk_workspaces::error::ProvideErrorMetadata;
use aws_sdk_workspaces::operation::create_tags::CreateTagsError;
use aws_sdk_workspaces::operation::delete_tags::DeleteTagsError;
use aws_sdk_workspaces::operation::describe_tags::DescribeTagsError;
use aws_sdk_workspaces::operation::migrate_workspace::MigrateWorkspaceError;
use aws_sdk_workspaces::operation::modify_workspace_properties::ModifyWorkspacePropertiesError;
use aws_sdk_workspaces::operation::modify_workspace_state::ModifyWorkspaceStateError;
use aws_sdk_workspaces::types::{
    Compute, ModificationResourceEnum, ModificationStateEnum, RunningMode, Tag, TargetWorkspaceState, TerminateRequest,
    WorkspaceProperties, WorkspaceRequest, WorkspaceState,
};
use aws_simulator::{Simulator, config::SimConfig, world::Seed};
use aws_smithy_types::retry::RetryConfig;
use serde_json::{Value, json};
use std::time::Duration;

const DIR: &str = "d-9067a1b2c3";
const CONNECTOR: &str = "d-90670c0ffe";
const BUNDLE: &str = "wsb-stdwin2022";

struct Sim {
    url: String,
    http: reqwest::Client,
}

impl Sim {
    async fn start(config: Value) -> Sim {
        let seed: Seed = serde_json::from_str(include_str!("../../local/seed.json")).unwrap();
        let config: SimConfig = serde_json::from_value(config).unwrap();
        let sim = Simulator::new(config, seed).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(aws_simulator::serve(listener, sim));
        Sim { url, http: reqwest::Client::new() }
    }

    async fn sdk(&self, max_attempts: u32) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.url)
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .retry_config(
                RetryConfig::standard().with_max_attempts(max_attempts).with_initial_backoff(Duration::from_millis(50)),
            )
            .load()
            .await
    }

    async fn workspaces(&self) -> aws_sdk_workspaces::Client {
        aws_sdk_workspaces::Client::new(&self.sdk(1).await)
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let res = self.http.request(method, format!("{}/_sim/{path}", self.url)).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "admin {path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    async fn calls(&self) -> Value {
        self.admin(reqwest::Method::GET, "calls", Value::Null).await
    }

    async fn fault(&self, fault: Value) {
        self.admin(reqwest::Method::POST, "faults", fault).await;
    }

    /// Polls DescribeWorkspaces by id until `done` says so, returning every state seen.
    async fn watch(
        &self,
        ws: &aws_sdk_workspaces::Client,
        id: &str,
        done: impl Fn(Option<&WorkspaceState>) -> bool,
    ) -> Vec<Option<WorkspaceState>> {
        let mut seen: Vec<Option<WorkspaceState>> = Vec::new();
        for _ in 0..400 {
            let out = ws.describe_workspaces().workspace_ids(id).send().await.unwrap();
            let state = out.workspaces().first().and_then(|w| w.state().cloned());
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            if done(state.as_ref()) {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{id} never reached the expected state; saw {seen:?}");
    }
}

/// No rate limit and fast lifecycles unless a test asks otherwise.
fn fast() -> Value {
    json!({
        "lifecycle": { "create_ms": 300, "invisible_ms": 100, "terminate_ms": 200, "terminated_visible_ms": 150 },
        "rate_limits": {
            "WorkSpaces": { "rate": 10000.0, "burst": 10000.0 },
            "WorkDocs": { "rate": 10000.0, "burst": 10000.0 },
            "DirectoryServiceData": { "rate": 10000.0, "burst": 10000.0 },
            "DirectoryService": { "rate": 10000.0, "burst": 10000.0 }
        }
    })
}

fn request(user: &str) -> WorkspaceRequest {
    WorkspaceRequest::builder().directory_id(CONNECTOR).user_name(user).bundle_id(BUNDLE).build().unwrap()
}

#[tokio::test]
async fn create_with_26_requests_is_a_validation_exception() {
    let sim = Sim::start(fast()).await;
    let ws = sim.workspaces().await;
    let requests: Vec<_> = (0..26).map(|i| request(&format!("user{i}"))).collect();
    let err = ws.create_workspaces().set_workspaces(Some(requests)).send().await.unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    assert!(err.message().unwrap_or_default().contains("less than or equal to 25"), "{err:?}");
    // Refused calls are counted, but carry no items.
    let calls = sim.calls().await;
    assert_eq!(calls["WorkSpaces.CreateWorkspaces"]["calls"], 1);
    assert_eq!(calls["WorkSpaces.CreateWorkspaces"]["items"], json!([]));
}

#[tokio::test]
async fn bad_ids_and_missing_members_are_validation_exceptions() {
    let sim = Sim::start(fast()).await;
    let ws = sim.workspaces().await;
    let bad_dir =
        WorkspaceRequest::builder().directory_id("d-XYZ").user_name("alee").bundle_id(BUNDLE).build().unwrap();
    let err = ws.create_workspaces().workspaces(bad_dir).send().await.unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));
    assert!(err.message().unwrap_or_default().contains("workspaces.1.member.directoryId"), "{err:?}");

    let err = ws
        .terminate_workspaces()
        .terminate_workspace_requests(TerminateRequest::builder().workspace_id("i-123").build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));

    let err = ws.describe_workspaces().limit(26).send().await.unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));
}

#[tokio::test]
async fn create_answers_per_item() {
    let sim = Sim::start(fast()).await;
    sim.fault(
        json!({ "kind": "create_failure", "usernames": ["cnovak"], "code": "ResourceLimitExceeded", "count": 1 }),
    )
    .await;
    let ws = sim.workspaces().await;
    let other_dir =
        WorkspaceRequest::builder().directory_id("d-0000000000").user_name("alee").bundle_id(BUNDLE).build().unwrap();
    let bad_bundle = WorkspaceRequest::builder()
        .directory_id(CONNECTOR)
        .user_name("bkumar")
        .bundle_id("wsb-doesnotexist")
        .build()
        .unwrap();
    let out = ws
        .create_workspaces()
        .workspaces(request("ALee")) // user names are not case-sensitive
        .workspaces(request("nobody"))
        .workspaces(other_dir)
        .workspaces(bad_bundle)
        .workspaces(request("alee"))
        .workspaces(request("cnovak"))
        .send()
        .await
        .unwrap();
    let pending = out.pending_requests();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].user_name(), Some("ALee"));
    assert_eq!(pending[0].state(), Some(&WorkspaceState::Pending));
    assert!(pending[0].workspace_id().unwrap().starts_with("ws-"));
    let failed: Vec<(&str, &str)> = out
        .failed_requests()
        .iter()
        .map(|f| (f.workspace_request().unwrap().user_name(), f.error_code().unwrap()))
        .collect();
    assert_eq!(
        failed,
        vec![
            ("nobody", "ResourceNotFound.User"),
            ("alee", "ResourceNotFound.Directory"),
            ("bkumar", "ResourceNotFound.Bundle"),
            ("alee", "ResourceExists.WorkSpace"),
            ("cnovak", "ResourceLimitExceeded"),
        ]
    );
    assert_eq!(sim.calls().await["WorkSpaces.CreateWorkspaces"]["items"], json!([6]));
}

#[tokio::test]
async fn properties_are_checked_per_item() {
    let sim = Sim::start(fast()).await;
    let ws = sim.workspaces().await;
    let with = |user: &str, mode: RunningMode, minutes: Option<i32>| {
        WorkspaceRequest::builder()
            .directory_id(CONNECTOR)
            .user_name(user)
            .bundle_id(BUNDLE)
            .workspace_properties(
                WorkspaceProperties::builder()
                    .running_mode(mode)
                    .set_running_mode_auto_stop_timeout_in_minutes(minutes)
                    .build(),
            )
            .build()
            .unwrap()
    };
    let out = ws
        .create_workspaces()
        .workspaces(with("alee", RunningMode::AlwaysOn, Some(60)))
        .workspaces(with("bkumar", RunningMode::AutoStop, Some(45)))
        .workspaces(with("cnovak", RunningMode::AutoStop, Some(120)))
        .send()
        .await
        .unwrap();
    let codes: Vec<_> = out.failed_requests().iter().map(|f| f.error_code().unwrap()).collect();
    assert_eq!(codes, vec!["AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace", "InvalidParameterValuesException"]);
    let created = &out.pending_requests()[0];
    let props = created.workspace_properties().unwrap();
    assert_eq!(props.running_mode(), Some(&RunningMode::AutoStop));
    assert_eq!(props.running_mode_auto_stop_timeout_in_minutes(), Some(120));
}

#[tokio::test]
async fn lifecycle_pending_available_then_terminating_gone() {
    let sim = Sim::start(fast()).await;
    let ws = sim.workspaces().await;
    let out = ws.create_workspaces().workspaces(request("alee")).send().await.unwrap();
    let id = out.pending_requests()[0].workspace_id().unwrap().to_owned();

    let seen = sim.watch(&ws, &id, |s| s == Some(&WorkspaceState::Available)).await;
    // Invisible for a moment, then PENDING, then AVAILABLE.
    assert_eq!(seen, vec![None, Some(WorkspaceState::Pending), Some(WorkspaceState::Available)]);
    let by_user = ws.describe_workspaces().directory_id(CONNECTOR).user_name("ALEE").send().await.unwrap();
    assert_eq!(by_user.workspaces()[0].workspace_id(), Some(id.as_str()));
    assert!(by_user.workspaces()[0].ip_address().is_some());

    let out = ws
        .terminate_workspaces()
        .terminate_workspace_requests(TerminateRequest::builder().workspace_id(&id).build().unwrap())
        .send()
        .await
        .unwrap();
    assert!(out.failed_requests().is_empty());
    let seen = sim.watch(&ws, &id, |s| s.is_none()).await;
    assert_eq!(seen, vec![Some(WorkspaceState::Terminating), Some(WorkspaceState::Terminated), None]);

    // Gone: the service no longer knows the id, and the user may have a new WorkSpace.
    let out = ws
        .terminate_workspaces()
        .terminate_workspace_requests(TerminateRequest::builder().workspace_id(&id).build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_requests()[0].error_code(), Some("ResourceNotFound.WorkSpace"));
    let again = ws.create_workspaces().workspaces(request("alee")).send().await.unwrap();
    assert_eq!(again.pending_requests().len(), 1);
}

#[tokio::test]
async fn rehire_is_refused_until_the_old_workspace_is_gone() {
    let sim = Sim::start(fast()).await;
    let ws = sim.workspaces().await;
    let out = ws.create_workspaces().workspaces(request("bkumar")).send().await.unwrap();
    let id = out.pending_requests()[0].workspace_id().unwrap().to_owned();
    ws.terminate_workspaces()
        .terminate_workspace_requests(TerminateRequest::builder().workspace_id(&id).build().unwrap())
        .send()
        .await
        .unwrap();
    let out = ws.create_workspaces().workspaces(request("bkumar")).send().await.unwrap();
    assert_eq!(out.failed_requests()[0].error_code(), Some("ResourceExists.WorkSpace"));
}

#[tokio::test]
async fn injected_error_state_shows_code_and_message() {
    let sim = Sim::start(fast()).await;
    sim.fault(json!({ "kind": "workspace_error", "usernames": ["CNOVAK"], "code": "InsufficientCapacity", "message": "no capacity" })).await;
    let ws = sim.workspaces().await;
    let out = ws.create_workspaces().workspaces(request("cnovak")).send().await.unwrap();
    let id = out.pending_requests()[0].workspace_id().unwrap().to_owned();
    sim.watch(&ws, &id, |s| s == Some(&WorkspaceState::Error)).await;
    let out = ws.describe_workspaces().workspace_ids(&id).send().await.unwrap();
    let w = &out.workspaces()[0];
    assert_eq!((w.error_code(), w.error_message()), (Some("InsufficientCapacity"), Some("no capacity")));
}

#[tokio::test]
async fn suspended_workspace_cannot_be_terminated() {
    let sim = Sim::start(fast()).await;
    let ws = sim.workspaces().await;
    let out = ws.create_workspaces().workspaces(request("alee")).send().await.unwrap();
    let id = out.pending_requests()[0].workspace_id().unwrap().to_owned();
    sim.watch(&ws, &id, |s| s == Some(&WorkspaceState::Available)).await;
    sim.admin(reqwest::Method::PUT, &format!("workspaces/{id}/state"), json!({ "state": "SUSPENDED" })).await;
    let out = ws
        .terminate_workspaces()
        .terminate_workspace_requests(TerminateRequest::builder().workspace_id(&id).build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_requests()[0].workspace_id(), Some(id.as_str()));
    assert_eq!(out.failed_requests()[0].error_code(), Some("InvalidResourceState"));
}

#[tokio::test]
async fn describe_filters_and_pagination() {
    let sim = Sim::start(fast()).await;
    let ws = sim.workspaces().await;
    let users: Vec<Value> = (0..30).map(|i| json!({ "username": format!("pager{i:02}") })).collect();
    sim.admin(
        reqwest::Method::POST,
        "seed",
        json!({ "directories": [{ "id": CONNECTOR, "name": "onprem.example.com", "kind": "AdConnector", "users": users }] }),
    )
    .await;
    for chunk in (0..30).collect::<Vec<_>>().chunks(25) {
        let requests = chunk.iter().map(|i| request(&format!("pager{i:02}"))).collect();
        let out = ws.create_workspaces().set_workspaces(Some(requests)).send().await.unwrap();
        assert!(out.failed_requests().is_empty());
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let pages: Vec<usize> = ws
        .describe_workspaces()
        .directory_id(CONNECTOR)
        .limit(10)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap()
        .iter()
        .map(|p| p.workspaces().len())
        .collect();
    assert_eq!(pages, vec![10, 10, 10]);

    let err = ws.describe_workspaces().directory_id(CONNECTOR).bundle_id(BUNDLE).send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_parameter_values_exception(), "{err:?}");
    let err = ws.describe_workspaces().user_name("pager01").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_parameter_values_exception(), "{err:?}");
    let ids: Vec<String> = (0..26).map(|i| format!("ws-{i:09}")).collect();
    let err = ws.describe_workspaces().set_workspace_ids(Some(ids)).send().await.unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));
}

#[tokio::test]
async fn directories_and_bundles() {
    let sim = Sim::start(fast()).await;
    let ws = sim.workspaces().await;
    let dirs = ws.describe_workspace_directories().send().await.unwrap();
    let mut ids: Vec<_> = dirs.directories().iter().map(|d| d.directory_id().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, vec![CONNECTOR, DIR]);
    let connector = dirs.directories().iter().find(|d| d.directory_id() == Some(CONNECTOR)).unwrap();
    assert_eq!(connector.directory_type().map(|t| t.as_str()), Some("AD_CONNECTOR"));
    let bundles = ws.describe_workspace_bundles().bundle_ids(BUNDLE).send().await.unwrap();
    assert_eq!(bundles.bundles()[0].compute_type().and_then(|c| c.name()).map(|n| n.as_str()), Some("STANDARD"));
    let err = ws.describe_workspace_bundles().bundle_ids(BUNDLE).owner("AMAZON").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_parameter_values_exception());
}

#[tokio::test]
async fn throttling_above_the_rate_and_the_sdk_retry_recovers() {
    let mut config = fast();
    config["rate_limits"]["WorkSpaces"] = json!({ "rate": 2.0, "burst": 2.0 });
    let sim = Sim::start(config).await;

    // Without retries the SDK reports the ThrottlingException.
    let no_retry = sim.workspaces().await;
    let mut throttled = 0;
    for _ in 0..4 {
        if let Err(e) = no_retry.describe_workspace_bundles().send().await {
            assert_eq!(e.code(), Some("ThrottlingException"), "{e:?}");
            throttled += 1;
        }
    }
    assert!(throttled >= 1, "4 calls at burst 2 must be throttled");

    // With the standard retry strategy every call gets through.
    let retrying = aws_sdk_workspaces::Client::new(&sim.sdk(10).await);
    for _ in 0..6 {
        retrying.describe_workspace_bundles().send().await.unwrap();
    }
    let stats = &sim.calls().await["WorkSpaces.DescribeWorkspaceBundles"];
    let (calls, refused) = (stats["calls"].as_u64().unwrap(), stats["throttled"].as_u64().unwrap());
    assert_eq!(calls - refused, 4 - throttled + 6, "every retried call eventually succeeded once");
    assert!(refused > throttled, "the retrying client was throttled too: {stats}");
}

#[tokio::test]
async fn injected_http_500_is_retried_by_the_sdk() {
    let sim = Sim::start(fast()).await;
    sim.fault(json!({ "kind": "http_error", "operation": "WorkSpaces.DescribeWorkspaces", "count": 2 })).await;
    let ws = aws_sdk_workspaces::Client::new(&sim.sdk(3).await);
    ws.describe_workspaces().send().await.unwrap();
    assert_eq!(sim.calls().await["WorkSpaces.DescribeWorkspaces"]["injected_errors"], 2);
    sim.fault(json!({ "kind": "http_error", "count": 5 })).await;
    let err = ws.describe_workspaces().send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
}

#[tokio::test]
async fn workdocs_users_join_the_directory() {
    let sim = Sim::start(fast()).await;
    let config = sim.sdk(1).await;
    let docs = aws_sdk_workdocs::Client::new(&config);
    let create = || {
        docs.create_user()
            .organization_id(DIR)
            .username("jsmith")
            .given_name("Jane")
            .surname("Smith")
            .email_address("jane.smith@example.com")
            .password("Correct-Horse-9")
    };
    let out = create().send().await.unwrap();
    let user = out.user().unwrap();
    assert_eq!((user.username(), user.organization_id()), (Some("jsmith"), Some(DIR)));
    let err = create().username("JSMITH").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_entity_already_exists_exception(), "{err:?}");
    let found = docs.describe_users().organization_id(DIR).query("jane").send().await.unwrap();
    assert_eq!(found.users().len(), 1);
    let err = docs
        .create_user()
        .organization_id("d-0000000000")
        .username("x")
        .given_name("x")
        .surname("x")
        .password("Abcd-1234")
        .send()
        .await
        .unwrap_err();
    assert!(err.as_service_error().unwrap().is_unauthorized_resource_access_exception(), "{err:?}");

    // The user WorkDocs created is a directory user WorkSpaces accepts.
    let ws = aws_sdk_workspaces::Client::new(&config);
    let req = WorkspaceRequest::builder().directory_id(DIR).user_name("jsmith").bundle_id(BUNDLE).build().unwrap();
    let out = ws.create_workspaces().workspaces(req).send().await.unwrap();
    assert_eq!(out.pending_requests().len(), 1, "{out:?}");
}

#[tokio::test]
async fn ds_data_create_describe_disable() {
    let sim = Sim::start(fast()).await;
    let config = sim.sdk(1).await;
    let data = aws_sdk_directoryservicedata::Client::new(&config);
    let create = |token: &str, given: &str| {
        data.create_user()
            .directory_id(DIR)
            .sam_account_name("mgarcia")
            .given_name(given)
            .surname("Garcia")
            .client_token(token)
    };
    let first = create("evt-1", "Maria").send().await.unwrap();
    let again = create("evt-1", "Maria").send().await.unwrap();
    assert_eq!(first.sid(), again.sid(), "same ClientToken, same request: the same user");
    let err = create("evt-1", "Mario").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_conflict_exception(), "{err:?}");
    let err = create("evt-2", "Maria").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_conflict_exception(), "an existing user is a conflict");

    let err = data.create_user().directory_id(DIR).sam_account_name("a-name-longer-than-20").send().await.unwrap_err();
    let svc = err.into_service_error();
    let aws_sdk_directoryservicedata::operation::create_user::CreateUserError::ValidationException(v) = svc else {
        panic!("expected ValidationException, got {svc:?}");
    };
    assert_eq!(v.reason().map(|r| r.as_str()), Some("INVALID_ATTRIBUTE_VALUE"));

    let user = data.describe_user().directory_id(DIR).sam_account_name("MGARCIA").send().await.unwrap();
    assert_eq!((user.enabled(), user.given_name()), (Some(true), Some("Maria")));
    data.disable_user().directory_id(DIR).sam_account_name("mgarcia").send().await.unwrap();
    let user = data.describe_user().directory_id(DIR).sam_account_name("mgarcia").send().await.unwrap();
    assert_eq!(user.enabled(), Some(false));
    let err = data.describe_user().directory_id(DIR).sam_account_name("nobody").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_resource_not_found_exception());
    let err = data.create_user().directory_id(CONNECTOR).sam_account_name("x").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_validation_exception(), "AD Connector has no DS Data");

    // Password through Directory Service.
    let ds = aws_sdk_directory::Client::new(&config);
    let reset = |user: &str, password: &str| {
        ds.reset_user_password().directory_id(DIR).user_name(user).new_password(password).send()
    };
    reset("mgarcia", "Str0ng&Secret").await.unwrap();
    let err = reset("mgarcia", "weak").await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_invalid_password_exception());
    let err = reset("nobody", "Str0ng&Secret").await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_user_does_not_exist_exception());
    let state = sim.admin(reqwest::Method::GET, "state", Value::Null).await;
    assert_eq!(state["directories"][DIR]["users"]["mgarcia"]["password_set"], true);
    assert!(!state.to_string().contains("Str0ng&Secret"), "passwords are never kept");
}

#[tokio::test]
async fn ds_data_throttling_is_the_modeled_exception() {
    let sim = Sim::start(fast()).await;
    sim.fault(json!({ "kind": "throttle", "operation": "DirectoryServiceData.DescribeUser", "count": 1 })).await;
    let data = aws_sdk_directoryservicedata::Client::new(&sim.sdk(1).await);
    let err = data.describe_user().directory_id(DIR).sam_account_name("x").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_throttling_exception(), "{err:?}");
}

#[tokio::test]
async fn reset_restores_the_seed() {
    let sim = Sim::start(fast()).await;
    let ws = sim.workspaces().await;
    ws.create_workspaces().workspaces(request("alee")).send().await.unwrap();
    sim.admin(reqwest::Method::POST, "reset", Value::Null).await;
    let state = sim.admin(reqwest::Method::GET, "state", Value::Null).await;
    assert_eq!(state["workspaces"], json!([]));
    assert_eq!(sim.calls().await, json!({}));
    assert!(state["directories"][CONNECTOR]["users"]["alee"].is_object());
}

/// Fast lifecycles plus short property updates, migrations and growth cooldowns.
fn fast_ops() -> Value {
    let mut config = fast();
    let l = &mut config["lifecycle"];
    l["update_ms"] = json!(300);
    l["migrate_ms"] = json!(300);
    l["volume_cooldown_ms"] = json!(400);
    l["compute_up_cooldown_ms"] = json!(400);
    config
}

async fn available(sim: &Sim, ws: &aws_sdk_workspaces::Client, user: &str, tags: &[Tag]) -> String {
    let request = WorkspaceRequest::builder()
        .directory_id(CONNECTOR)
        .user_name(user)
        .bundle_id(BUNDLE)
        .set_tags(Some(tags.to_vec()))
        .workspace_properties(WorkspaceProperties::builder().running_mode(RunningMode::AutoStop).build())
        .build()
        .unwrap();
    let out = ws.create_workspaces().workspaces(request).send().await.unwrap();
    let id = out.pending_requests()[0].workspace_id().unwrap().to_owned();
    sim.watch(ws, &id, |s| s == Some(&WorkspaceState::Available)).await;
    id
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().unwrap()
}

#[tokio::test]
async fn tags_given_at_creation_then_created_described_and_deleted() {
    let sim = Sim::start(fast_ops()).await;
    let ws = sim.workspaces().await;
    let id = available(&sim, &ws, "alee", &[tag("managed-by", "hr")]).await;
    let listed = |out: &aws_sdk_workspaces::operation::describe_tags::DescribeTagsOutput| -> Vec<(String, String)> {
        out.tag_list().iter().map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned())).collect()
    };
    let out = ws.describe_tags().resource_id(&id).send().await.unwrap();
    assert_eq!(listed(&out), vec![("managed-by".to_owned(), "hr".to_owned())]);
    ws.create_tags().resource_id(&id).tags(tag("owner", "it")).tags(tag("managed-by", "hr2")).send().await.unwrap();
    ws.delete_tags().resource_id(&id).tag_keys("owner").tag_keys("absent").send().await.unwrap();
    let out = ws.describe_tags().resource_id(&id).send().await.unwrap();
    assert_eq!(listed(&out), vec![("managed-by".to_owned(), "hr2".to_owned())], "overwritten, deleted");

    let err = ws.create_tags().resource_id(&id).tags(tag("aws:owner", "x")).send().await.unwrap_err();
    assert!(matches!(err.as_service_error(), Some(CreateTagsError::InvalidParameterValuesException(_))), "{err:?}");
    let err = ws.create_tags().resource_id(&id).tags(tag(&"k".repeat(128), "x")).send().await.unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    let err = ws.create_tags().resource_id(&id).tags(tag("k", &"v".repeat(256))).send().await.unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("t{i}"), "x")).collect();
    let err = ws.create_tags().resource_id(&id).set_tags(Some(fifty)).send().await.unwrap_err();
    assert!(matches!(err.as_service_error(), Some(CreateTagsError::ResourceLimitExceededException(_))), "{err:?}");
    let err = ws.create_tags().resource_id("ws-zz0000000").tags(tag("a", "b")).send().await.unwrap_err();
    match err.as_service_error() {
        Some(CreateTagsError::ResourceNotFoundException(e)) => assert_eq!(e.resource_id(), Some("ws-zz0000000")),
        other => panic!("{other:?}"),
    }
    let err = ws.delete_tags().resource_id(&id).tag_keys("aws:x").send().await.unwrap_err();
    assert!(matches!(err.as_service_error(), Some(DeleteTagsError::InvalidParameterValuesException(_))), "{err:?}");
    let err = ws.delete_tags().resource_id("ws-zz0000000").tag_keys("a").send().await.unwrap_err();
    assert!(matches!(err.as_service_error(), Some(DeleteTagsError::ResourceNotFoundException(_))), "{err:?}");
    let err = ws.describe_tags().resource_id("d-0000000000").send().await.unwrap_err();
    assert!(matches!(err.as_service_error(), Some(DescribeTagsError::ResourceNotFoundException(_))), "{err:?}");

    let state = sim.admin(reqwest::Method::GET, "state", Value::Null).await;
    assert_eq!(state["workspaces"][0]["Tags"], json!({ "managed-by": "hr2" }));
    let calls = sim.calls().await;
    assert_eq!(calls["WorkSpaces.CreateTags"]["items"][0], 2);
}

#[tokio::test]
async fn admin_maintenance_from_available_and_back() {
    let sim = Sim::start(fast_ops()).await;
    let ws = sim.workspaces().await;
    let id = available(&sim, &ws, "alee", &[]).await;
    let set = |state: TargetWorkspaceState| ws.modify_workspace_state().workspace_id(&id).workspace_state(state).send();
    set(TargetWorkspaceState::AdminMaintenance).await.unwrap();
    let out = ws.describe_workspaces().workspace_ids(&id).send().await.unwrap();
    assert_eq!(out.workspaces()[0].state(), Some(&WorkspaceState::AdminMaintenance));
    let err = ws.migrate_workspace().source_workspace_id(&id).bundle_id("wsb-perfwin2022").send().await.unwrap_err();
    // Not in MigrateWorkspace's modeled errors: the SDK keeps the code of the unmodeled error.
    assert_eq!(err.code(), Some("InvalidResourceStateException"), "{err:?}");
    set(TargetWorkspaceState::Available).await.unwrap();
    let out = ws.describe_workspaces().workspace_ids(&id).send().await.unwrap();
    assert_eq!(out.workspaces()[0].state(), Some(&WorkspaceState::Available));

    let err = set(TargetWorkspaceState::from("STOPPED")).await.unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"), "{err:?}");
    let err = ws
        .modify_workspace_state()
        .workspace_id("ws-zz0000000")
        .workspace_state(TargetWorkspaceState::AdminMaintenance)
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err.as_service_error(), Some(ModifyWorkspaceStateError::ResourceNotFoundException(_))));
    // Only from AVAILABLE: a terminating WorkSpace cannot.
    ws.terminate_workspaces()
        .terminate_workspace_requests(TerminateRequest::builder().workspace_id(&id).build().unwrap())
        .send()
        .await
        .unwrap();
    let err = set(TargetWorkspaceState::AdminMaintenance).await.unwrap_err();
    assert!(
        matches!(err.as_service_error(), Some(ModifyWorkspaceStateError::InvalidResourceStateException(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn properties_change_one_group_at_a_time_through_updating() {
    let sim = Sim::start(fast_ops()).await;
    let ws = sim.workspaces().await;
    let id = available(&sim, &ws, "alee", &[]).await;
    let modify =
        |p: WorkspaceProperties| ws.modify_workspace_properties().workspace_id(&id).workspace_properties(p).send();
    let props = WorkspaceProperties::builder;
    let out = ws.describe_workspaces().workspace_ids(&id).send().await.unwrap();
    let w = &out.workspaces()[0];
    assert_eq!(w.bundle_id(), Some(BUNDLE));
    let p = w.workspace_properties().unwrap();
    assert_eq!(
        (p.running_mode(), p.running_mode_auto_stop_timeout_in_minutes(), p.root_volume_size_gib()),
        (Some(&RunningMode::AutoStop), Some(60), Some(80))
    );
    assert_eq!((p.user_volume_size_gib(), p.compute_type_name()), (Some(50), Some(&Compute::Standard)));

    let invalid = |e: &ModifyWorkspacePropertiesError| {
        matches!(e, ModifyWorkspacePropertiesError::InvalidParameterValuesException(_))
    };
    let err =
        modify(props().compute_type_name(Compute::Performance).user_volume_size_gib(100).build()).await.unwrap_err();
    assert!(invalid(err.as_service_error().unwrap()), "compute with a volume: {err:?}");
    let err = modify(props().root_volume_size_gib(175).user_volume_size_gib(100).build()).await.unwrap_err();
    assert!(invalid(err.as_service_error().unwrap()), "both volumes: {err:?}");
    let err = modify(props().build()).await.unwrap_err();
    assert!(invalid(err.as_service_error().unwrap()), "nothing: {err:?}");
    let err = modify(props().running_mode_auto_stop_timeout_in_minutes(90).build()).await.unwrap_err();
    assert!(invalid(err.as_service_error().unwrap()), "90 minutes: {err:?}");
    // Within the cooldown from launch (unknown code in AWS; the simulator says InvalidResourceState).
    let err = modify(props().user_volume_size_gib(100).build()).await.unwrap_err();
    assert!(
        matches!(err.as_service_error(), Some(ModifyWorkspacePropertiesError::InvalidResourceStateException(_))),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let err = modify(props().user_volume_size_gib(40).build()).await.unwrap_err();
    assert!(invalid(err.as_service_error().unwrap()), "smaller: {err:?}");
    let err = modify(props().root_volume_size_gib(175).build()).await.unwrap_err();
    assert!(invalid(err.as_service_error().unwrap()), "root before the user volume is 100: {err:?}");
    let err = modify(props().compute_type_name(Compute::GraphicsG4Dn).build()).await.unwrap_err();
    assert!(
        matches!(
            err.as_service_error(),
            Some(ModifyWorkspacePropertiesError::UnsupportedWorkspaceConfigurationException(_))
        ),
        "{err:?}"
    );

    // Running mode with its timeout together is one change; UPDATING shows the resources touched.
    modify(props().user_volume_size_gib(100).running_mode(RunningMode::AutoStop).build()).await.unwrap();
    let out = ws.describe_workspaces().workspace_ids(&id).send().await.unwrap();
    let w = &out.workspaces()[0];
    assert_eq!(w.state(), Some(&WorkspaceState::Updating));
    let m = &w.modification_states()[0];
    assert_eq!(
        (m.resource(), m.state()),
        (Some(&ModificationResourceEnum::UserVolume), Some(&ModificationStateEnum::UpdateInProgress))
    );
    let err = modify(props().running_mode(RunningMode::AlwaysOn).build()).await.unwrap_err();
    assert!(
        matches!(err.as_service_error(), Some(ModifyWorkspacePropertiesError::OperationInProgressException(_))),
        "{err:?}"
    );
    sim.watch(&ws, &id, |s| s == Some(&WorkspaceState::Available)).await;
    let out = ws.describe_workspaces().workspace_ids(&id).send().await.unwrap();
    let w = &out.workspaces()[0];
    assert!(w.modification_states().is_empty());
    assert_eq!(w.workspace_properties().unwrap().user_volume_size_gib(), Some(100));
    let state = sim.admin(reqwest::Method::GET, "state", Value::Null).await;
    assert_eq!(state["workspaces"][0]["Properties"]["user_gib"], 100);

    let err = ws
        .modify_workspace_properties()
        .workspace_id("ws-zz0000000")
        .workspace_properties(props().running_mode(RunningMode::AlwaysOn).build())
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err.as_service_error(), Some(ModifyWorkspacePropertiesError::ResourceNotFoundException(_))));
}

#[tokio::test]
async fn migration_makes_a_new_workspace_and_the_source_disappears() {
    let sim = Sim::start(fast_ops()).await;
    let ws = sim.workspaces().await;
    let id = available(&sim, &ws, "alee", &[tag("managed-by", "hr")]).await;
    let migrate = |bundle: &str| ws.migrate_workspace().source_workspace_id(&id).bundle_id(bundle).send();
    let err = migrate(BUNDLE).await.unwrap_err();
    assert!(matches!(err.as_service_error(), Some(MigrateWorkspaceError::InvalidParameterValuesException(_))));
    let err = migrate("wsb-zz00000000").await.unwrap_err();
    assert!(matches!(err.as_service_error(), Some(MigrateWorkspaceError::ResourceNotFoundException(_))));
    let err = migrate("bundle").await.unwrap_err();
    assert_eq!(err.code(), Some("ValidationException"));

    let out = migrate("wsb-perfwin2022").await.unwrap();
    assert_eq!(out.source_workspace_id(), Some(id.as_str()));
    let target = out.target_workspace_id().unwrap().to_owned();
    assert_ne!(target, id);
    let seen = sim.watch(&ws, &target, |s| s == Some(&WorkspaceState::Available)).await;
    assert_eq!(seen.last(), Some(&Some(WorkspaceState::Available)));
    let seen = sim.watch(&ws, &id, |s| s.is_none()).await;
    assert_eq!(seen.last(), Some(&None), "the source is gone once the target is AVAILABLE");
    let out = ws.describe_workspaces().workspace_ids(&target).send().await.unwrap();
    let w = &out.workspaces()[0];
    assert_eq!((w.bundle_id(), w.user_name()), (Some("wsb-perfwin2022"), Some("alee")));
    let p = w.workspace_properties().unwrap();
    assert_eq!((p.compute_type_name(), p.user_volume_size_gib()), (Some(&Compute::Performance), Some(50)));
    let tags = ws.describe_tags().resource_id(&target).send().await.unwrap();
    assert_eq!(tags.tag_list()[0].key(), "managed-by");
    let err = ws.migrate_workspace().source_workspace_id(&id).bundle_id(BUNDLE).send().await.unwrap_err();
    assert!(matches!(err.as_service_error(), Some(MigrateWorkspaceError::ResourceNotFoundException(_))));
}

#[tokio::test]
async fn a_workspace_made_or_deleted_by_hand_is_listed_or_gone_at_once() {
    // What the drift audit's demo and tests do behind the pipeline's back (admin API).
    let sim = Sim::start(fast()).await;
    let ws = sim.workspaces().await;
    let made = sim
        .admin(
            reqwest::Method::POST,
            "workspaces",
            json!({ "DirectoryId": CONNECTOR, "UserName": "alee", "BundleId": BUNDLE }),
        )
        .await;
    let id = made["WorkspaceId"].as_str().unwrap().to_owned();
    let listed = ws.describe_workspaces().directory_id(CONNECTOR).send().await.unwrap();
    let states: Vec<(Option<&str>, Option<&str>)> =
        listed.workspaces().iter().map(|w| (w.workspace_id(), w.state().map(|s| s.as_str()))).collect();
    assert_eq!(states, vec![(Some(id.as_str()), Some("AVAILABLE"))], "listed AVAILABLE at once");
    // The same user again is refused as CreateWorkspaces would refuse it.
    let again = sim
        .http
        .post(format!("{}/_sim/workspaces", sim.url))
        .json(&json!({ "DirectoryId": CONNECTOR, "UserName": "ALEE", "BundleId": BUNDLE }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(again.text().await.unwrap().contains("ResourceExists.WorkSpace"));
    sim.admin(reqwest::Method::DELETE, &format!("workspaces/{id}"), Value::Null).await;
    let listed = ws.describe_workspaces().workspace_ids(&id).send().await.unwrap();
    assert!(listed.workspaces().is_empty(), "gone at once");
}
