//! Messages sent at about the same time by the records of one batch, sent together: the intake
//! handles up to [`super::intake::LANES_AT_ONCE`] employees at once, and each used to make its
//! own SendMessageBatch call of one message. Gathered, ten records cost one call.
//!
//! Each caller still learns whether its own messages were accepted: a call that fails fails
//! exactly the callers whose messages it carried, and they retry as before (a message may then
//! be sent twice, which SQS's at-least-once delivery means every consumer handles already).

use crate::ports::{MAX_MESSAGES_PER_SEND, MessageQueue, Outgoing, QueueError};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

/// How long the first message of a call waits for others: about the spread of the concurrent
/// records' store round trips, small against a record's time.
pub const GATHER_WAIT: Duration = Duration::from_millis(20);

/// A [`MessageQueue`] that gathers the messages of concurrent `send`s into calls of up to
/// [`MAX_MESSAGES_PER_SEND`] on the queue it wraps.
pub struct Coalescing<Q> {
    inner: Q,
    wait: Duration,
    gathering: Mutex<Gathering>,
    /// Wakes the gatherer when a call's worth has arrived.
    full: Notify,
}

/// Where a waiting caller's result goes.
type Reply = oneshot::Sender<Result<(), QueueError>>;

#[derive(Default)]
struct Gathering {
    /// Whether a caller is waiting to send what has gathered.
    gatherer: bool,
    /// Each waiting caller's messages, and where its result goes.
    waiting: Vec<(Vec<Outgoing>, Reply)>,
}

impl Gathering {
    fn count(&self) -> usize {
        self.waiting.iter().map(|(m, _)| m.len()).sum()
    }
}

impl<Q: MessageQueue> Coalescing<Q> {
    pub fn new(inner: Q) -> Self {
        Self::with_wait(inner, GATHER_WAIT)
    }

    pub fn with_wait(inner: Q, wait: Duration) -> Self {
        Coalescing { inner, wait, gathering: Mutex::default(), full: Notify::new() }
    }

    pub fn inner(&self) -> &Q {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gathering> {
        self.gathering.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends everything gathered so far, in calls of whole callers' messages (so a failed call
    /// fails only the callers it carried), and tells each caller its result.
    async fn send_gathered(&self) {
        let waiting = {
            let mut gathering = self.lock();
            gathering.gatherer = false;
            std::mem::take(&mut gathering.waiting)
        };
        let mut call: Vec<Outgoing> = Vec::new();
        let mut callers = Vec::new();
        for (messages, reply) in waiting {
            if !call.is_empty() && call.len() + messages.len() > MAX_MESSAGES_PER_SEND {
                self.send_call(std::mem::take(&mut call), std::mem::take(&mut callers)).await;
            }
            call.extend(messages);
            callers.push(reply);
        }
        if !call.is_empty() {
            self.send_call(call, callers).await;
        }
    }

    async fn send_call(&self, call: Vec<Outgoing>, callers: Vec<Reply>) {
        let result = self.inner.send(&call).await;
        for reply in callers {
            // A caller that has gone (its invocation ended) needs no answer.
            let _ = reply.send(result.clone());
        }
    }
}

/// Hands what has gathered to the next caller if the gatherer's future is dropped before it sent
/// (the waiting callers then send their own messages: nothing waits forever).
struct GathererGuard<'a, Q: MessageQueue> {
    queue: &'a Coalescing<Q>,
    sent: bool,
}

impl<Q: MessageQueue> Drop for GathererGuard<'_, Q> {
    fn drop(&mut self) {
        if !self.sent {
            let mut gathering = self.queue.lock();
            gathering.gatherer = false;
            // Dropping the senders tells each waiting caller to send on its own.
            gathering.waiting.clear();
        }
    }
}

impl<Q: MessageQueue> MessageQueue for Coalescing<Q> {
    async fn send(&self, messages: &[Outgoing]) -> Result<(), QueueError> {
        if messages.is_empty() {
            return Ok(());
        }
        if messages.len() >= MAX_MESSAGES_PER_SEND {
            return self.inner.send(messages).await;
        }
        let (reply, answer) = oneshot::channel();
        let gatherer = {
            let mut gathering = self.lock();
            gathering.waiting.push((messages.to_vec(), reply));
            if gathering.count() >= MAX_MESSAGES_PER_SEND {
                self.full.notify_one();
            }
            !std::mem::replace(&mut gathering.gatherer, true)
        };
        if gatherer {
            let mut guard = GathererGuard { queue: self, sent: false };
            // Until a call's worth has gathered or the wait is over (a wake-up may be left over
            // from an earlier call's gathering: the count decides).
            let until = tokio::time::Instant::now() + self.wait;
            while self.lock().count() < MAX_MESSAGES_PER_SEND && tokio::time::Instant::now() < until {
                let _ = tokio::time::timeout_at(until, self.full.notified()).await;
            }
            guard.sent = true;
            self.send_gathered().await;
        }
        match answer.await {
            Ok(result) => result,
            // The gatherer went away before sending: send these alone.
            Err(_) => self.inner.send(messages).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryQueue;
    use futures_util::future::join_all;

    fn message(i: usize) -> Vec<Outgoing> {
        vec![Outgoing::plain(format!("m{i}"))]
    }

    #[tokio::test]
    async fn ten_records_sending_at_once_cost_one_call_and_each_is_told_it_was_sent() {
        // GIVEN ten records that each send one message at about the same time
        let queue = Coalescing::new(MemoryQueue::named("requests"));
        let messages: Vec<Vec<Outgoing>> = (0..10).map(message).collect();
        // WHEN they send
        let results = join_all(messages.iter().map(|m| queue.send(m))).await;
        // THEN all ten went in one call, and each caller got its own success
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(queue.inner().faults.calls("requests.send"), 1);
        assert_eq!(queue.inner().len(), 10);
    }

    #[tokio::test]
    async fn twenty_three_at_once_take_three_calls_and_a_lone_one_is_sent_after_the_wait() {
        let queue = Coalescing::new(MemoryQueue::named("requests"));
        let messages: Vec<Vec<Outgoing>> = (0..23).map(message).collect();
        let results = join_all(messages.iter().map(|m| queue.send(m))).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!((queue.inner().faults.calls("requests.send"), queue.inner().len()), (3, 23));
        // One alone waits for company, then goes.
        let started = std::time::Instant::now();
        queue.send(&message(99)).await.unwrap();
        assert!(started.elapsed() >= GATHER_WAIT, "waited {:?}", started.elapsed());
        assert_eq!((queue.inner().faults.calls("requests.send"), queue.inner().len()), (4, 24));
    }

    #[tokio::test]
    async fn a_refused_call_fails_exactly_the_callers_it_carried() {
        // GIVEN the first call will be refused
        let queue = Coalescing::new(MemoryQueue::named("requests"));
        queue.inner().faults.fail_next("requests.send", 1);
        // WHEN 15 callers send one message each and 1 caller sends 2
        let mut messages: Vec<Vec<Outgoing>> = (0..15).map(message).collect();
        messages.insert(9, vec![Outgoing::plain("a".into()), Outgoing::plain("b".into())]);
        let results = join_all(messages.iter().map(|m| queue.send(m))).await;
        // THEN the first call carried the first 9 callers (the pair would have made 11): they
        // fail; the pair and the other 6 went in the second call and succeed
        let failed: Vec<bool> = results.iter().map(Result::is_err).collect();
        assert_eq!(failed, [vec![true; 9], vec![false; 7]].concat());
        assert_eq!(queue.inner().len(), 8);
    }

    #[tokio::test]
    async fn a_send_of_a_call_s_worth_goes_at_once() {
        let queue = Coalescing::new(MemoryQueue::named("requests"));
        let many: Vec<Outgoing> = (0..12).map(|i| Outgoing::plain(format!("m{i}"))).collect();
        let started = std::time::Instant::now();
        queue.send(&many).await.unwrap();
        assert!(started.elapsed() < GATHER_WAIT);
        assert_eq!((queue.inner().faults.calls("requests.send"), queue.inner().len()), (2, 12));
    }

    #[tokio::test]
    async fn callers_whose_gatherer_goes_away_send_their_own_messages() {
        // GIVEN a gatherer that is cancelled while it waits, with another caller waiting on it
        let queue = Coalescing::with_wait(MemoryQueue::named("requests"), Duration::from_secs(1));
        let first = message(1);
        let second = message(2);
        let gatherer = queue.send(&first);
        let follower = queue.send(&second);
        let cancelled = async {
            tokio::select! {
                _ = gatherer => unreachable!("the gatherer waits a second"),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        };
        // WHEN the gatherer is dropped, THEN the follower sends its own message, at once
        let (_, sent) = tokio::join!(cancelled, tokio::time::timeout(Duration::from_millis(500), follower));
        sent.expect("the follower did not wait for the gone gatherer").unwrap();
        assert_eq!(queue.inner().bodies(), ["m2"]);
        // and the next caller gathers anew
        let results = join_all([message(3), message(4)].iter().map(|m| queue.send(m))).await;
        assert!(results.iter().all(Result::is_ok));
    }
}
