//! End-to-end tests: real function binaries behind the local runner's Runtime API, moto for
//! SQS and DynamoDB, the simulator for WorkSpaces and the directories, real SDK clients.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod audit;
mod contract;
mod grace;
mod guard;
mod helpers;
mod idempotency;
mod lifecycle_events;
mod movers;
mod offboarding;
mod onboarding;
mod runner;
mod stack;
mod tags;
