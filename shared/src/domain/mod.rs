//! The pipeline's domain: the HR event contract, profiles, employees, the messages between the
//! functions, the mover's planner and the drift audit's decision. Pure logic, no AWS.

pub mod audit;
pub mod employee;
pub mod event;
pub mod lifecycle;
pub mod lifecycle_events;
pub mod messages;
pub mod mover;
pub mod names;
pub mod profile;
pub mod time;
pub mod validation;
pub mod workspace;
