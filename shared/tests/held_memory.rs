//! Bounded memory: the reconciler holds one page of due events at a time, however many are due.
//! A counting allocator measures the heap's peak while it releases 5,000 held events of 16 KiB
//! (80 MiB of bodies); reading them all at once, as it once did, would add at least that much.

#![allow(unsafe_code)] // the counting allocator: GlobalAlloc is an unsafe trait
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use shared::domain::validation::MAX_BODY_BYTES;
use shared::ports::{ScheduledEvent, StateStore};
use shared::services::reconciler::RELEASES_PER_RUN;
use shared::testing::{FakeWorkspaces, MemoryStore};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc`, passed on.
        let block = unsafe { System.alloc(layout) };
        if !block.is_null() {
            let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(live, Relaxed);
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(block, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: usize = 1 << 20;

fn held(i: usize) -> ScheduledEvent {
    let event_id = format!("held-{i:05}");
    let head = format!(r#"{{"event_id":"{event_id}","type":"leave","note":""#);
    ScheduledEvent {
        employee_id: format!("H{i:05}"),
        event_id,
        kind: "leave".into(),
        occurred_ms: 0,
        effective_ms: 1_000 + (i % 50) as i64,
        body: format!("{head}{}\"}}", "x".repeat(MAX_BODY_BYTES - head.len() - 2)),
    }
}

#[tokio::test]
async fn releasing_thousands_of_due_events_holds_one_page_of_them_at_a_time() {
    // GIVEN 5,000 held events of 16 KiB, all due
    const HELD: usize = 5_000;
    let store = MemoryStore::default();
    for i in 0..HELD {
        store.schedule(&held(i)).await.unwrap();
    }
    let reconciler = shared::testing::reconciler(store, FakeWorkspaces::all("AVAILABLE"));
    let baseline = LIVE.load(Relaxed);
    PEAK.store(baseline, Relaxed);
    // WHEN the reconciler runs until none is left, what it posted taken off the queue after each
    // run (SQS holds them, not the function)
    let (mut posted, mut runs) = (0, 0);
    loop {
        let report = reconciler.run(None).await.unwrap();
        posted += reconciler.hr_events.take().len();
        runs += 1;
        if !report.releases_left {
            break;
        }
    }
    let grew = PEAK.load(Relaxed) - baseline;
    eprintln!(
        "{HELD} held events of {} KiB ({} MiB): released in {runs} runs; the heap's peak rose {:.2} MiB above \
         the store's",
        MAX_BODY_BYTES / 1024,
        HELD * MAX_BODY_BYTES / MIB,
        grew as f64 / MIB as f64
    );
    // THEN every event was posted once, in runs of at most RELEASES_PER_RUN, and the heap never
    // held more than a few pages of bodies on top of the store's
    assert_eq!(posted, HELD);
    assert_eq!(runs, HELD.div_ceil(RELEASES_PER_RUN));
    assert!(grew < 8 * MIB, "the peak rose {grew} bytes: the run holds every due event, not a page");
}
