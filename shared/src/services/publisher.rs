//! The publisher: the table's stream in, lifecycle events out. Each change of an employee record
//! (the stream's old and new images) becomes the events [`events_of`] derives from it, published
//! in the stream's order; no other service knows it exists.
//!
//! At least once: a batch that fails part-way is answered with the first record not fully
//! published, and Lambda delivers the batch again from there (the events of the records after it
//! that did go out go out again, with the same ids); the mapping retries until the records are a
//! day old. A record that cannot be read would fail every retry and hold the shard: it is set
//! aside instead, its key, sequence number and the reason sent to the failure queue (the same
//! the mapping gives up to), and the batch goes on. Never skipped silently.

use crate::domain::employee::EmployeeRecord;
use crate::domain::lifecycle_events::{LifecycleEvent, events_of};
use crate::domain::validation;
use crate::ports::{EventBus, MAX_EVENTS_PER_PUT, MessageQueue, Outgoing, PortError as _};
use tracing::{error, info, warn};

/// One record of the table's stream, as the publisher reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamChange {
    /// The stream record's sequence number: what a partial batch response names.
    pub sequence_number: String,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// An employee record written: as it was (`None`: the first write), and as written.
    Employee { before: Option<Box<EmployeeRecord>>, after: Box<EmployeeRecord> },
    /// Another item of the table, or an employee record removed: nothing to announce.
    Other,
    /// An employee record's image the code cannot read.
    Unreadable { key: String, detail: String },
}

/// What one batch came to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishReport {
    pub published: usize,
    /// Unreadable records described in the failure queue.
    pub set_aside: usize,
    /// The first record not fully published: Lambda retries the batch from it.
    pub retry_from: Option<String>,
}

impl PublishReport {
    /// The publisher's CloudWatch metrics.
    pub fn metrics(&self) -> Vec<(&'static str, usize)> {
        vec![
            ("LifecycleEventsPublished", self.published),
            ("LifecycleRecordsSetAside", self.set_aside),
            ("LifecycleBatchesRetried", usize::from(self.retry_from.is_some())),
        ]
    }
}

pub struct Publisher<B, Q> {
    pub events: B,
    /// Where an unreadable record is described (the mapping's failure destination).
    pub failures: Q,
}

impl<B: EventBus, Q: MessageQueue> Publisher<B, Q> {
    pub async fn publish(&self, changes: &[StreamChange]) -> PublishReport {
        let mut report = PublishReport::default();
        // Every event of the records up to the first one that could not be set aside.
        let mut pending: Vec<(usize, LifecycleEvent)> = Vec::new();
        let mut stop = None;
        for (i, record) in changes.iter().enumerate() {
            match &record.change {
                Change::Employee { before, after } => {
                    pending.extend(events_of(before.as_deref(), after).into_iter().map(|e| (i, e)));
                }
                Change::Other => {}
                Change::Unreadable { key, detail } => {
                    error!(sequence_number = %record.sequence_number, key, detail,
                           "an employee record on the stream cannot be read: set aside in the failure queue");
                    let description = serde_json::json!({
                        "condition": "UnreadableRecord",
                        "sequence_number": record.sequence_number,
                        "key": validation::reason(key),
                        "reason": validation::reason(detail),
                    });
                    if let Err(e) = self.failures.send(&[Outgoing::plain(description.to_string())]).await {
                        warn!(error = %e, "the failure queue refused the description; the batch is retried from it");
                        stop = Some(i);
                        break;
                    }
                    report.set_aside += 1;
                }
            }
        }
        for chunk in pending.chunks(MAX_EVENTS_PER_PUT) {
            let events: Vec<LifecycleEvent> = chunk.iter().map(|(_, e)| e.clone()).collect();
            if let Err(e) = self.events.publish(&events).await {
                let first = chunk[0].0;
                warn!(error = %e, retryable = e.is_retryable(), sequence_number = %changes[first].sequence_number,
                      "publishing failed; the batch is retried from this record");
                stop = Some(stop.map_or(first, |s| s.min(first)));
                break;
            }
            for (_, event) in chunk {
                info!(event_id = %event.detail.id, detail_type = event.kind.detail_type(),
                      employee_id = event.detail.employee_id.as_deref().unwrap_or_default(), "lifecycle event published");
            }
            report.published += chunk.len();
        }
        report.retry_from = stop.map(|i| changes[i].sequence_number.clone());
        report
    }
}

#[cfg(test)]
mod tests;
