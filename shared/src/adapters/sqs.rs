//! The message queue port on SQS.

use crate::ports::{MAX_MESSAGES_PER_SEND, MessageQueue, Outgoing, QueueError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: String) -> Self {
        Self { client, url }
    }

    /// FIFO queues' names end in `.fifo` (SQS requires it). A standard queue refuses a message
    /// deduplication id, so the HR events queue deployed as a standard queue (README) gets the
    /// due events the reconciler posts without one (and without a group: nothing orders them).
    fn fifo(&self) -> bool {
        self.url.ends_with(".fifo")
    }
}

impl MessageQueue for SqsQueue {
    async fn send(&self, bodies: &[Outgoing]) -> Result<(), QueueError> {
        let fail = |message: String| QueueError { queue: self.url.clone(), message };
        for chunk in bodies.chunks(MAX_MESSAGES_PER_SEND) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&m.body)
                        .set_message_group_id(m.group_id.clone().filter(|_| self.fifo()))
                        .set_message_deduplication_id(m.deduplication_id.clone().filter(|_| self.fifo()))
                        .set_delay_seconds(m.delay_seconds.and_then(|s| i32::try_from(s).ok()))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(e.to_string()))?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| fail(format!("{}", aws_sdk_sqs::Error::from(e))))?;
            if let Some(f) = out.failed().first() {
                return Err(fail(format!(
                    "{} of {} messages refused: {} {}",
                    out.failed().len(),
                    chunk.len(),
                    f.code(),
                    f.message().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }
}
