//! The contracts of `shared::testing::contract` on the real adapters (`AwsWorkspaces`, the DS Data
//! `Directory`; real SDK clients) against the simulator: the same suites the in-memory fakes pass
//! in `shared`, so the fakes and the simulator cannot drift apart unnoticed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use aws_config::{BehaviorVersion, Region};
use aws_sdk_workspaces::config::Credentials;
use aws_simulator::{Simulator, config::SimConfig, world::Seed};
use aws_smithy_types::retry::RetryConfig;
use serde_json::json;
use shared::adapters::directory::{Directory, DsDataUsers};
use shared::adapters::tagging::AwsWorkspaceTags;
use shared::adapters::workspaces::AwsWorkspaces;
use shared::testing::contract::{
    Passage, WorkspacesSetup, directory_listing, directory_users, workspace_operations, workspace_tags, workspaces,
};
use std::time::Duration;

/// The simulator's time passes on its own; at `factor` it runs that much faster than ours.
struct Wait {
    factor: f64,
}

impl Passage for Wait {
    async fn pass(&self, ms: i64) {
        tokio::time::sleep(Duration::from_secs_f64(ms as f64 / 1000.0 / self.factor)).await;
    }
}

/// A simulator on the local seed, with no rate limits; SDK configuration for it (no retries).
async fn simulator(config: serde_json::Value) -> aws_config::SdkConfig {
    let config: SimConfig = serde_json::from_value(config).unwrap();
    let seed: Seed = serde_json::from_str(include_str!("../../local/seed.json")).unwrap();
    let sim = Simulator::new(config, seed).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(aws_simulator::serve(listener, sim));
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&url)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

fn unlimited() -> serde_json::Value {
    let limit = json!({ "rate": 10000.0, "burst": 10000.0 });
    json!({ "WorkSpaces": limit, "WorkDocs": limit, "DirectoryServiceData": limit, "DirectoryService": limit,
            "ResourceGroupsTagging": limit })
}

/// The AD Connector directory of the seed, whose users exist.
fn setup() -> WorkspacesSetup {
    WorkspacesSetup {
        directory_id: "d-90670c0ffe".into(),
        bundle_id: "wsb-stdwin2022".into(),
        users: ["alee".into(), "bkumar".into(), "cnovak".into()],
        poll_ms: 100,
        max_polls: 200,
        other_bundle_id: "wsb-perfwin2022".into(),
        growth_cooldown_ms: 4_000,
    }
}

/// A simulator whose WorkSpaces live through their lifecycle `factor` times faster than ours.
async fn fast_simulator(factor: f64) -> aws_config::SdkConfig {
    simulator(json!({
        "time_factor": factor,
        "lifecycle": { "create_ms": 1_200, "invisible_ms": 400, "terminate_ms": 800, "terminated_visible_ms": 600 },
        "rate_limits": unlimited()
    }))
    .await
}

#[tokio::test]
async fn the_adapter_on_the_simulator_keeps_the_workspaces_contract() {
    let factor = 4.0;
    let sdk = fast_simulator(factor).await;
    let api = AwsWorkspaces::new(aws_sdk_workspaces::Client::new(&sdk));
    let setup = setup();
    workspaces(&api, &Wait { factor }, &setup).await;
}

#[tokio::test]
async fn the_adapter_on_the_simulator_keeps_the_contract_of_listing_a_directory() {
    let factor = 4.0;
    let sdk = fast_simulator(factor).await;
    let api = AwsWorkspaces::new(aws_sdk_workspaces::Client::new(&sdk));
    directory_listing(&api, &Wait { factor }, &setup()).await;
}

#[tokio::test]
async fn the_adapter_on_the_simulator_keeps_the_contract_of_the_operations_on_a_workspace() {
    let factor = 4.0;
    let sdk = simulator(json!({
        "time_factor": factor,
        "lifecycle": {
            "create_ms": 1_200, "invisible_ms": 400, "terminate_ms": 800, "terminated_visible_ms": 600,
            "update_ms": 800, "migrate_ms": 1_200, "volume_cooldown_ms": 4_000, "compute_up_cooldown_ms": 4_000
        },
        "rate_limits": unlimited()
    }))
    .await;
    let api = AwsWorkspaces::new(aws_sdk_workspaces::Client::new(&sdk));
    let setup = setup();
    workspace_operations(&api, &Wait { factor }, &setup).await;
}

#[tokio::test]
async fn the_tagging_adapter_on_the_simulator_keeps_the_contract_of_reading_many_workspaces_tags() {
    let factor = 4.0;
    let sdk = fast_simulator(factor).await;
    let api = AwsWorkspaces::new(aws_sdk_workspaces::Client::new(&sdk));
    let prefix = "arn:aws:workspaces:us-east-1:123456789012:workspace/".to_owned();
    let tags = AwsWorkspaceTags::new(aws_sdk_resourcegroupstagging::Client::new(&sdk), prefix);
    let setup = setup();
    workspace_tags(&api, &tags, &Wait { factor }, &setup).await;
}

#[tokio::test]
async fn the_ds_data_adapter_on_the_simulator_keeps_the_directory_contract() {
    let sdk = simulator(json!({ "rate_limits": unlimited() })).await;
    let directory = Directory::DsData(DsDataUsers {
        data: aws_sdk_directoryservicedata::Client::new(&sdk),
        ds: aws_sdk_directory::Client::new(&sdk),
    });
    // The seed's AWS Managed Microsoft AD, where DS Data creates users.
    directory_users(&directory, "d-9067a1b2c3").await;
}
