//! What the pipeline's binaries share.

pub mod config;
pub mod telemetry;
