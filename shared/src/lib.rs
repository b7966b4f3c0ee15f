//! What the pipeline's Lambdas share: configuration, telemetry, the domain, the ports the logic
//! talks through, their AWS adapters, and the services each function runs.

pub mod adapters;
pub mod aws;
pub mod config;
pub mod domain;
pub mod lambda;
pub mod ports;
pub mod services;
pub mod telemetry;
/// In-memory doubles beside the adapters, and the contracts both pass (always built: a feature
/// only for the tests would make every switch between test runs rebuild the crate).
pub mod testing;
