//! In-memory doubles of the ports, for unit tests of the services' logic and for model-based
//! tests of whole histories, and the contracts a double and the adapter it stands for must both
//! pass ([`contract`]: run on the doubles here, on DynamoDB (moto) by the end-to-end tests and
//! on the simulator through the WorkSpaces adapter by the simulator's tests). The end-to-end
//! path (real SDK clients against moto and the simulator) is tested in `tests/`.
//!
//! The doubles behave as the adapters do, not as the services would like: conditional writes
//! fail, claims are held, WorkSpaces take time to appear and to go. They share a [`Faults`] plan
//! (injected retryable failures, a process that dies after a number of calls, call counters) and
//! a [`ManualClock`]. Every double built with `Default` has no faults.

mod bus;
mod clock;
pub mod contract;
mod directory;
mod faults;
mod queue;
mod store;
mod workspaces;

pub use bus::MemoryBus;
pub use clock::ManualClock;
pub use directory::{DirectoryBook, DirectoryUser, FakeDirectory};
pub use faults::Faults;
pub use queue::MemoryQueue;
pub use store::{IdempotencyRecord, MemoryStore};
pub use workspaces::{FakeWorkspaces, Lifecycle, WsCall};

use std::sync::Mutex;

/// A reconciler over the doubles, with deadlines that never pass, the documented cooldowns and
/// the system clock; its queues start empty.
pub fn reconciler(
    store: MemoryStore,
    workspaces: FakeWorkspaces,
) -> crate::services::reconciler::Reconciler<MemoryStore, FakeWorkspaces, MemoryQueue> {
    crate::services::reconciler::Reconciler {
        store,
        workspaces,
        requests: MemoryQueue::default(),
        hr_events: MemoryQueue::default(),
        terminations: MemoryQueue::default(),
        config: crate::services::reconciler::ReconcilerConfig {
            create_deadline_ms: i64::MAX / 2,
            terminate_deadline_ms: i64::MAX / 2,
            create_first_look_ms: 0,
            terminate_first_look_ms: 0,
            cooldowns: crate::domain::workspace::Cooldowns::DOCUMENTED,
        },
        clock: std::sync::Arc::new(crate::ports::SystemClock),
    }
}

/// Locks, ignoring poisoning: a panicking test must not turn every later assertion into a
/// poisoned-lock panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
