//! A queue that keeps what was sent, sending the way the SQS adapter does: batches of 10, each
//! one call, so a failure part-way leaves the earlier batches sent.

use super::{Faults, lock};
use crate::ports::{MessageQueue, Outgoing, QueueError};
use std::sync::Mutex;

/// SendMessageBatch takes at most 10 entries.
const BATCH: usize = 10;

#[derive(Debug)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<Outgoing>>,
    /// Injected failures and counters, one call per batch of 10: `<name>.send`.
    pub faults: Faults,
    name: String,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::named("queue")
    }
}

impl MemoryQueue {
    /// A queue whose calls count (and can be failed) as `<name>.send`, e.g. `requests.send`.
    pub fn named(name: &str) -> Self {
        Self { sent: Mutex::default(), faults: Faults::default(), name: name.to_owned() }
    }

    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Removes and returns everything sent so far (what a consumer would receive next).
    pub fn take(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *lock(&self.sent))
    }

    pub fn len(&self) -> usize {
        lock(&self.sent).len()
    }

    pub fn is_empty(&self) -> bool {
        lock(&self.sent).is_empty()
    }

    /// The bodies sent so far, without taking them.
    pub fn bodies(&self) -> Vec<String> {
        lock(&self.sent).iter().map(|m| m.body.clone()).collect()
    }
}

impl MessageQueue for MemoryQueue {
    async fn send(&self, messages: &[Outgoing]) -> Result<(), QueueError> {
        for chunk in messages.chunks(BATCH) {
            let fail = || QueueError { queue: self.name.clone(), message: "injected: SendMessageBatch failed".into() };
            self.faults.guard(&self.name, "send", fail, || {
                lock(&self.sent).extend_from_slice(chunk);
                Ok(())
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(n: usize) -> Vec<Outgoing> {
        (0..n).map(|i| Outgoing::plain(format!("m{i}"))).collect()
    }

    #[tokio::test]
    async fn a_failure_part_way_leaves_the_earlier_batches_sent() {
        let faults = Faults::new();
        let queue = MemoryQueue::named("requests").with_faults(faults.clone());
        queue.send(&messages(3)).await.unwrap();
        assert_eq!(queue.take().len(), 3);
        assert!(queue.is_empty());
        faults.crash_after(1);
        let err = queue.send(&messages(25)).await.unwrap_err();
        assert_eq!(err.queue, "requests");
        assert_eq!(queue.len(), 10, "the first batch of 10 went out");
        assert_eq!(faults.calls("requests.send"), 3);
    }
}
