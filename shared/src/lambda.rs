//! Between Lambda's SQS events and the services: the one entry point of the SQS functions.

use crate::ports::{EventBus, MessageQueue};
use crate::services::publisher::Publisher;
use crate::services::{BatchContext, BatchOutcome, Deadline, QueueRecord, SqsHandler};
use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{LambdaEvent, service_fn};

/// Runs an SQS-triggered function: each batch to the handler with its deadline and queue kind,
/// the unfinished records back to SQS as `batchItemFailures` (partial batch response).
pub async fn serve_sqs(handler: &impl SqsHandler) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let context = BatchContext {
            deadline: Deadline::from_lambda(event.context.deadline),
            fifo: from_fifo_queue(&event.payload),
        };
        let outcome = handler.handle_batch(&records(&event.payload), context).await;
        Ok::<SqsBatchResponse, lambda_runtime::Error>(batch_response(outcome))
    }))
    .await
}

/// Runs the publisher on the table's stream: each batch's records in the stream's order, the
/// first one not fully published named in the answer (Lambda retries the batch from it).
pub async fn serve_stream<B: EventBus, Q: MessageQueue>(
    publisher: &Publisher<B, Q>,
) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(move |event: LambdaEvent<DynamoDbEvent>| async move {
        let changes: Vec<_> = event.payload.records.iter().map(crate::adapters::dynamo::stream_change).collect();
        let report = publisher.publish(&changes).await;
        crate::telemetry::emit_counts(&report.metrics());
        let mut response = DynamoDbEventResponse::default();
        if let Some(sequence_number) = report.retry_from {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence_number);
            response.batch_item_failures.push(failure);
        }
        Ok::<DynamoDbEventResponse, lambda_runtime::Error>(response)
    }))
    .await
}

pub fn records(event: &SqsEvent) -> Vec<QueueRecord> {
    event
        .records
        .iter()
        .map(|r| QueueRecord {
            message_id: r.message_id.clone().unwrap_or_default(),
            body: r.body.clone().unwrap_or_default(),
            receive_count: r.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1),
            group_id: r.attributes.get("MessageGroupId").cloned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_sqs_events_parse_as_lambda_delivers_them() {
        for file in
            ["intake/join.json", "intake/mixed-batch.json", "provisioner/request.json", "terminator/request.json"]
        {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(file);
            let event: SqsEvent = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let records = records(&event);
            assert!(!records.is_empty(), "{file}");
            assert!(records.iter().all(|r| !r.message_id.is_empty() && r.receive_count == 1), "{file}");
            assert_eq!(from_fifo_queue(&event), file.starts_with("intake/"), "{file}");
            // FIFO records carry their message group: a retry holds back only that group.
            assert_eq!(records.iter().all(|r| r.group_id.is_some()), file.starts_with("intake/"), "{file}");
        }
    }

    #[test]
    fn sample_requests_are_the_messages_the_functions_read() {
        use crate::domain::messages::{TerminationRequest, WorkspaceRequest};
        let read = |file: &str| -> SqsEvent {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(file);
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        let body = |e: &SqsEvent| e.records[0].body.clone().unwrap();
        serde_json::from_str::<WorkspaceRequest>(&body(&read("provisioner/request.json"))).unwrap();
        serde_json::from_str::<TerminationRequest>(&body(&read("terminator/request.json"))).unwrap();
    }

    #[test]
    fn failures_become_item_identifiers() {
        let response = batch_response(BatchOutcome {
            failed_message_ids: vec!["a".into(), "b".into()],
            ..BatchOutcome::default()
        });
        let json = serde_json::to_value(response).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "batchItemFailures": [{ "itemIdentifier": "a" }, { "itemIdentifier": "b" }] })
        );
    }
}
