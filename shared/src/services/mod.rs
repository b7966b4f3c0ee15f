//! What each function does, written against the ports so it runs without AWS in unit tests.

pub mod intake;
pub mod provisioner;
pub mod reconciler;
pub mod terminator;

/// One SQS record as the services need it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRecord {
    pub message_id: String,
    pub body: String,
    /// How many times SQS has delivered it (1 on the first delivery).
    pub receive_count: u32,
}

/// The ids of the records to report in `batchItemFailures`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    pub failed_message_ids: Vec<String>,
}
