//! One fault plan that every double of a test can share: injected retryable failures, a process
//! that dies after a number of port calls, and counters of every call.
//!
//! Operations are named `<port>.<method>` after the port trait's method: `store.claim`,
//! `store.save_employee`, `workspaces.create_workspaces`, `directory.ensure_user`,
//! `queue.send` (a [`MemoryQueue`](super::MemoryQueue) can carry another port name, e.g.
//! `requests.send`). A rule can target one operation or a whole port (`store`).

use super::lock;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Shared by clones: hand the same plan to every double a test builds. `Default` injects nothing.
#[derive(Debug, Clone, Default)]
pub struct Faults(Arc<Mutex<Plan>>);

#[derive(Debug, Default)]
struct Plan {
    failing: Vec<Failing>,
    /// Calls that may still run before the process dies.
    crash_in: Option<u64>,
    dead: bool,
    calls: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct Failing {
    /// An operation (`store.claim`) or a port (`store`).
    target: String,
    remaining: u32,
    /// The call takes effect and only its answer is lost (a timeout after the write).
    after: bool,
}

/// What a double does with the call it is about to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    No,
    /// Fail without any effect.
    Before,
    /// Apply the effect, then fail: the caller cannot tell it happened.
    After,
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` calls of `op` (an operation or a whole port) fail with the port's retryable
    /// error and change nothing.
    pub fn fail_next(&self, op: &str, n: u32) {
        lock(&self.0).failing.push(Failing { target: op.to_owned(), remaining: n, after: false });
    }

    /// The next `n` calls of `op` take effect, then fail with the port's retryable error (the
    /// answer lost on the way back: a timeout after the write).
    pub fn fail_next_after(&self, op: &str, n: u32) {
        lock(&self.0).failing.push(Failing { target: op.to_owned(), remaining: n, after: true });
    }

    /// `k` more port calls (of any double sharing this plan) run; every call after them fails,
    /// as if the process had died, until [`revive`](Self::revive). `crash_after(0)` kills it now.
    pub fn crash_after(&self, k: u64) {
        let mut plan = lock(&self.0);
        if k == 0 {
            plan.dead = true;
            plan.crash_in = None;
        } else {
            plan.crash_in = Some(k);
        }
    }

    /// A new process: calls succeed again (other injected failures are kept).
    pub fn revive(&self) {
        let mut plan = lock(&self.0);
        plan.dead = false;
        plan.crash_in = None;
    }

    pub fn is_dead(&self) -> bool {
        lock(&self.0).dead
    }

    /// Drops every injected failure and revives; the counters are kept.
    pub fn clear(&self) {
        let mut plan = lock(&self.0);
        plan.failing.clear();
        plan.dead = false;
        plan.crash_in = None;
    }

    /// Calls made of `op` (an operation, or a port: the sum of its operations), failed ones included.
    pub fn calls(&self, op: &str) -> u64 {
        let plan = lock(&self.0);
        plan.calls.iter().filter(|(name, _)| targets(op, name)).map(|(_, n)| n).sum()
    }

    /// Every operation called so far and how often.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.0).calls.clone()
    }

    pub fn total_calls(&self) -> u64 {
        lock(&self.0).calls.values().sum()
    }

    pub fn reset_counts(&self) {
        lock(&self.0).calls.clear();
    }

    /// Counts the call and says whether it fails.
    pub(crate) fn enter(&self, port: &str, method: &str) -> Injected {
        let mut plan = lock(&self.0);
        let op = format!("{port}.{method}");
        if let Some(n) = plan.calls.get_mut(&op) {
            *n += 1;
        } else {
            plan.calls.insert(op.clone(), 1);
        }
        if plan.dead {
            return Injected::Before;
        }
        match plan.crash_in {
            Some(0) => {
                plan.dead = true;
                plan.crash_in = None;
                return Injected::Before;
            }
            Some(n) => plan.crash_in = Some(n - 1),
            None => {}
        }
        let hit = plan.failing.iter_mut().find(|f| f.remaining > 0 && targets(&f.target, &op));
        let injected = match hit {
            Some(f) => {
                f.remaining -= 1;
                if f.after { Injected::After } else { Injected::Before }
            }
            None => Injected::No,
        };
        plan.failing.retain(|f| f.remaining > 0);
        injected
    }

    /// Runs `op` under the plan: `fail()` instead of it, or after it, when a fault says so.
    pub(crate) fn guard<T, E>(
        &self,
        port: &str,
        method: &str,
        fail: impl FnOnce() -> E,
        op: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        match self.enter(port, method) {
            Injected::No => op(),
            Injected::Before => Err(fail()),
            Injected::After => {
                let _ = op();
                Err(fail())
            }
        }
    }
}

/// Whether a rule for `target` (operation or port) covers operation `op`.
fn targets(target: &str, op: &str) -> bool {
    op == target || op.strip_prefix(target).is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_hit_the_named_operation_or_port_a_given_number_of_times() {
        let faults = Faults::new();
        faults.fail_next("store.claim", 2);
        faults.fail_next_after("queue", 1);
        assert_eq!(faults.enter("store", "complete"), Injected::No);
        assert_eq!(faults.enter("store", "claim"), Injected::Before);
        assert_eq!(faults.enter("store", "claim"), Injected::Before);
        assert_eq!(faults.enter("store", "claim"), Injected::No);
        assert_eq!(faults.enter("queue", "send"), Injected::After);
        assert_eq!(faults.enter("queue", "send"), Injected::No);
        assert_eq!(faults.enter("queuex", "send"), Injected::No);
        assert_eq!(faults.calls("store.claim"), 3);
        assert_eq!(faults.calls("store"), 4);
        assert_eq!(faults.total_calls(), 7);
    }

    #[test]
    fn a_crash_stops_every_double_until_revived() {
        let faults = Faults::new();
        let other = faults.clone();
        faults.crash_after(2);
        assert_eq!(faults.enter("store", "claim"), Injected::No);
        assert_eq!(other.enter("workspaces", "create_workspaces"), Injected::No);
        assert_eq!(faults.enter("store", "complete"), Injected::Before);
        assert!(other.is_dead());
        assert_eq!(other.enter("queue", "send"), Injected::Before);
        other.revive();
        assert_eq!(faults.enter("queue", "send"), Injected::No);
        faults.crash_after(0);
        assert_eq!(faults.enter("queue", "send"), Injected::Before);
    }
}
