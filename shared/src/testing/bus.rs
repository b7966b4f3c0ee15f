//! An event bus that keeps what was published, publishing the way the EventBridge adapter does:
//! ten entries a call, each call one `bus.put_events` that faults can fail, so a failure
//! part-way leaves the earlier calls' events published.

use super::{Faults, lock};
use crate::domain::lifecycle_events::LifecycleEvent;
use crate::ports::{EventBus, MAX_EVENTS_PER_PUT, PublishError};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct MemoryBus {
    pub published: Mutex<Vec<LifecycleEvent>>,
    /// Injected failures and counters: `bus.put_events`, one a call of up to ten events.
    pub faults: Faults,
}

impl MemoryBus {
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Everything published so far, in order (duplicates included).
    pub fn events(&self) -> Vec<LifecycleEvent> {
        lock(&self.published).clone()
    }
}

impl EventBus for MemoryBus {
    async fn publish(&self, events: &[LifecycleEvent]) -> Result<(), PublishError> {
        for chunk in events.chunks(MAX_EVENTS_PER_PUT) {
            let fail = || PublishError::Refused {
                bus: "bus".into(),
                code: "InternalFailure".into(),
                message: "injected: PutEvents failed".into(),
                retryable: true,
            };
            self.faults.guard("bus", "put_events", fail, || {
                lock(&self.published).extend_from_slice(chunk);
                Ok(())
            })?;
        }
        Ok(())
    }
}
