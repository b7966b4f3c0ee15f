//! Behaviour a port's double and its real adapter must both show. Each suite panics on the first
//! difference; it runs on the double as a unit test here, and on the real adapter where that one
//! can run: the store on DynamoDB (moto) in `tests/e2e/idempotency.rs`, the event bus on
//! EventBridge (moto) in `tests/e2e/lifecycle_events.rs`, WorkSpaces and
//! directory users on the simulator in `infra/simulator/tests/adapter_contract.rs`.

mod bus;
mod directory;
mod store;
mod workspaces;

pub use bus::event_bus;
pub use directory::directory_users;
pub use store::{audit_store, state_store, termination_guard, user_name_claims};
pub use workspaces::{Passage, WorkspacesSetup, directory_listing, workspace_operations, workspace_tags, workspaces};

/// The value, or a panic naming the step that failed.
fn ok<T, E: std::fmt::Debug>(step: &str, result: Result<T, E>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{step}: {e:?}"),
    }
}
