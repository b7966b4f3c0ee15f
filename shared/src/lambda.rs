//! Between Lambda's SQS events and the services.

use crate::services::{BatchOutcome, QueueRecord};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

pub fn records(event: &SqsEvent) -> Vec<QueueRecord> {
    event
        .records
        .iter()
        .map(|r| QueueRecord {
            message_id: r.message_id.clone().unwrap_or_default(),
            body: r.body.clone().unwrap_or_default(),
            receive_count: r.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1),
        })
        .collect()
}

/// Whether the batch came from a FIFO queue (its ARN ends in `.fifo`).
pub fn from_fifo_queue(event: &SqsEvent) -> bool {
    event.records.first().and_then(|r| r.event_source_arn.as_deref()).is_some_and(|arn| arn.ends_with(".fifo"))
}

pub fn batch_response(outcome: BatchOutcome) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for id in outcome.failed_message_ids {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    response
}
