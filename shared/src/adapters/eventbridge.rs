//! The lifecycle events' port on EventBridge: PutEvents, ten entries a call, the entries it
//! refuses sent again.

use crate::domain::lifecycle_events::{LifecycleEvent, SOURCE};
use crate::domain::time::Timestamp;
use crate::ports::{EventBus, MAX_EVENTS_PER_PUT, PublishError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use std::time::Duration;

/// How often entries PutEvents refused are sent again before the call fails (the SDK retries a
/// failed call on its own; a refused entry comes back in a successful answer).
const ENTRY_ATTEMPTS: u32 = 4;

/// Entry error codes worth sending again [UNKNOWN beyond these: the API reference lists
/// `InternalFailure` and `ThrottlingException` as transient; any other code is taken as final].
const TRANSIENT_CODES: &[&str] = &["InternalFailure", "ThrottlingException", "InternalException"];

pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: String) -> Self {
        Self { client, bus }
    }

    fn entry(&self, event: &LifecycleEvent) -> PutEventsRequestEntry {
        let time =
            Timestamp::parse(&event.detail.time).map(|t| aws_smithy_types::DateTime::from_millis(t.millis())).ok();
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(event.kind.detail_type())
            .detail(event.detail_json())
            .set_time(time)
            .build()
    }

    fn refused(&self, code: impl Into<String>, message: impl Into<String>, retryable: bool) -> PublishError {
        PublishError::Refused { bus: self.bus.clone(), code: code.into(), message: message.into(), retryable }
    }

    /// One chunk: sent, then what was refused sent again, a little later each time.
    async fn put_chunk(&self, chunk: &[LifecycleEvent]) -> Result<(), PublishError> {
        let mut pending: Vec<PutEventsRequestEntry> = chunk.iter().map(|e| self.entry(e)).collect();
        for attempt in 1..=ENTRY_ATTEMPTS {
            // The SDK has retried what it knows to be transient. What is left (the bus missing, the
            // grant missing) a retry can still cure once the deployment is fixed: the stream
            // mapping retries, then keeps the records in its failure destination.
            let out = self
                .client
                .put_events()
                .set_entries(Some(pending.clone()))
                .send()
                .await
                .map_err(|e| self.refused("PutEvents", aws_sdk_eventbridge::Error::from(e).to_string(), true))?;
            if out.failed_entry_count() == 0 {
                return Ok(());
            }
            // The answer's entries are in the request's order: those with an error code failed.
            // A count of failures they do not account for says nothing of what went through: the
            // whole chunk is sent again (the ids make it harmless).
            let named = out.entries().iter().filter(|e| e.error_code().is_some()).count();
            let (again, code, message) = if out.entries().len() != pending.len() || named == 0 {
                let message =
                    format!("{} entries failed, {named} of them named in the answer", out.failed_entry_count());
                (pending.clone(), "PutEvents".to_owned(), message)
            } else {
                let mut again = Vec::new();
                let mut last = (String::new(), String::new());
                for (entry, result) in pending.iter().zip(out.entries()) {
                    if let Some(code) = result.error_code() {
                        let message = result.error_message().unwrap_or_default();
                        if !TRANSIENT_CODES.contains(&code) {
                            return Err(self.refused(code, message, false));
                        }
                        last = (code.to_owned(), message.to_owned());
                        again.push(entry.clone());
                    }
                }
                let message = format!("{} entries still refused: {}", again.len(), last.1);
                (again, last.0, message)
            };
            if attempt == ENTRY_ATTEMPTS {
                return Err(self.refused(code, message, true));
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            pending = again;
        }
        Ok(())
    }
}

impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[LifecycleEvent]) -> Result<(), PublishError> {
        for chunk in events.chunks(MAX_EVENTS_PER_PUT) {
            self.put_chunk(chunk).await?;
        }
        Ok(())
    }
}
