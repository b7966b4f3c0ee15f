//! The WorkSpaces contract (`shared::testing::contract::workspaces`) on the real adapter
//! (`AwsWorkspaces`, the real SDK client) against the simulator: the same suite the in-memory
//! fake passes in `shared`, so the fake and the simulator cannot drift apart unnoticed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use aws_config::{BehaviorVersion, Region};
use aws_sdk_workspaces::config::Credentials;
use aws_simulator::{Simulator, config::SimConfig, world::Seed};
use aws_smithy_types::retry::RetryConfig;
use serde_json::json;
use shared::adapters::workspaces::AwsWorkspaces;
use shared::testing::contract::{Passage, WorkspacesSetup, workspaces};
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

#[tokio::test]
async fn the_adapter_on_the_simulator_keeps_the_workspaces_contract() {
    let factor = 4.0;
    let config: SimConfig = serde_json::from_value(json!({
        "time_factor": factor,
        "lifecycle": { "create_ms": 1_200, "invisible_ms": 400, "terminate_ms": 800, "terminated_visible_ms": 600 },
        "rate_limits": { "WorkSpaces": { "rate": 10000.0, "burst": 10000.0 } }
    }))
    .unwrap();
    let seed: Seed = serde_json::from_str(include_str!("../../local/seed.json")).unwrap();
    let sim = Simulator::new(config, seed).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(aws_simulator::serve(listener, sim));
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&url)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .load()
        .await;
    let api = AwsWorkspaces::new(aws_sdk_workspaces::Client::new(&sdk));
    // The AD Connector directory of the seed, whose users exist.
    let setup = WorkspacesSetup {
        directory_id: "d-90670c0ffe".into(),
        bundle_id: "wsb-stdwin2022".into(),
        users: ["alee".into(), "bkumar".into(), "cnovak".into()],
        poll_ms: 100,
        max_polls: 200,
    };
    workspaces(&api, &Wait { factor }, &setup).await;
}
