//! A queue that keeps what was sent, sending the way the SQS adapter does: batches of 10, each
//! one call, so a failure part-way leaves the earlier batches sent. As a FIFO queue it also drops
//! what SQS drops: a message whose deduplication id was seen in the last five minutes.

use super::{Faults, lock};
use crate::ports::{Clock, MessageQueue, Outgoing, QueueError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// SQS FIFO's deduplication interval.
const DEDUPLICATION_MS: i64 = 5 * 60 * 1000;

pub struct MemoryQueue {
    pub sent: Mutex<Vec<Outgoing>>,
    /// Injected failures and counters, one call per batch of 10: `<name>.send`.
    pub faults: Faults,
    name: String,
    fifo: Option<Fifo>,
}

/// The clock of the deduplication interval, and when each deduplication id was accepted.
struct Fifo {
    clock: Arc<dyn Clock>,
    seen: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for MemoryQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQueue").field("name", &self.name).field("sent", &self.sent).finish_non_exhaustive()
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::named("queue")
    }
}

impl MemoryQueue {
    /// A queue whose calls count (and can be failed) as `<name>.send`, e.g. `requests.send`.
    pub fn named(name: &str) -> Self {
        Self { sent: Mutex::default(), faults: Faults::default(), name: name.to_owned(), fifo: None }
    }

    /// A FIFO queue with content-based deduplication (as the HR events queue): every message
    /// needs a group id (otherwise the send fails, as SQS refuses it), and a message whose
    /// deduplication id (or, without one, body) was accepted within five minutes of `clock` is
    /// accepted again but not kept.
    pub fn fifo(mut self, clock: impl Clock + 'static) -> Self {
        self.fifo = Some(Fifo { clock: Arc::new(clock), seen: Mutex::default() });
        self
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
        for chunk in messages.chunks(crate::ports::MAX_MESSAGES_PER_SEND) {
            let fail = || QueueError { queue: self.name.clone(), message: "injected: SendMessageBatch failed".into() };
            self.faults.guard(&self.name, "send", fail, || {
                let Some(Fifo { clock, seen }) = &self.fifo else {
                    lock(&self.sent).extend_from_slice(chunk);
                    return Ok(());
                };
                if chunk.iter().any(|m| m.group_id.is_none()) {
                    return Err(QueueError {
                        queue: self.name.clone(),
                        message: "MissingParameter: a FIFO message needs a MessageGroupId".into(),
                    });
                }
                let now = clock.now_ms();
                let mut seen = lock(seen);
                let mut sent = lock(&self.sent);
                for m in chunk {
                    // Content-based deduplication (the project's FIFO queue) without an explicit id.
                    let id = m.deduplication_id.clone().unwrap_or_else(|| format!("body:{}", m.body));
                    if seen.get(&id).is_some_and(|at| now - at < DEDUPLICATION_MS) {
                        continue;
                    }
                    seen.insert(id, now);
                    sent.push(m.clone());
                }
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

    #[tokio::test]
    async fn a_fifo_queue_drops_a_deduplication_id_seen_within_five_minutes() {
        let clock = crate::testing::ManualClock::new(0);
        let queue = MemoryQueue::named("hr").fifo(clock.clone());
        let m = |id: &str| Outgoing {
            group_id: Some("E1".into()),
            deduplication_id: Some(id.into()),
            ..Outgoing::plain(id.into())
        };
        queue.send(&[m("a"), m("b"), m("a")]).await.unwrap();
        clock.advance(DEDUPLICATION_MS - 1);
        queue.send(&[m("a")]).await.unwrap();
        assert_eq!(queue.bodies(), ["a", "b"]);
        clock.advance(DEDUPLICATION_MS);
        queue.send(&[m("a")]).await.unwrap();
        assert_eq!(queue.bodies(), ["a", "b", "a"]);
        assert!(queue.send(&[Outgoing::plain("no group".into())]).await.is_err());
        let by_content = Outgoing { group_id: Some("E2".into()), ..Outgoing::plain("c".into()) };
        queue.send(&[by_content.clone(), by_content]).await.unwrap();
        assert_eq!(queue.len(), 4, "the same body once");
    }
}
