//! `make bench`: the pipeline's cost and speed on the local stack, measured, not assumed.

pub mod chaos;
pub mod proxy;
pub mod report;
pub mod scenario;
