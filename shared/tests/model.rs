//! Model-based tests of the lifecycle: generated histories run through the four real services
//! over the in-memory doubles, then a small reference model checks what a user relies on.
//!
//! A history: a few employees (namesakes among them), a sequence of HR joins, leaves, cancels and
//! future-dated events with source times out of order, interleaved with deliveries (possibly
//! repeated; reordered on a standard queue; back after the visibility timeout when failed),
//! reconciler runs, the clock moving in random steps, a crash injected after any number of port
//! calls, throttling and per-item failures from WorkSpaces, WorkSpaces ending in ERROR, creations
//! and directory users refused for good, administrators deleting a WorkSpace in use behind the
//! pipeline's back, and drift audits acting on what they find (every action on: a lost WorkSpace
//! requested again, a profile re-applied, a managed orphan terminated). Then faults stop, the clock passes every effective date, and the world runs until
//! it settles. The invariants:
//! - at most one live WorkSpace per user name (and so per employee);
//! - each employee ends as its last effective event (by `occurred_at`, then event id) says: a
//!   joiner with exactly one AVAILABLE WorkSpace and an `active` record that points at it, a
//!   leaver, or a joiner refused (the name another employee's, the user refused by the
//!   directory), with none; a held event cancelled does not count;
//! - every HR event is accounted for exactly once: applied, skipped or rejected with a reason,
//!   or scheduled and then cancelled;
//! - no WorkSpace exists that no employee wants;
//! - the lifecycle events of every record write (`events_of` over the store's stream) give each
//!   id one event, and announce each employee's final state.
//!
//! `MODEL_HISTORIES` (default 10,000) histories, split over two threads; `MODEL_SEED` repeats a
//! run. A failure is shrunk to a minimal history and printed as a scenario; it then becomes a
//! named regression below.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use shared::domain::audit::{AuditActions, AuditRules, OnMismatched, OnMissing, OnOrphaned, Remedy};
use shared::domain::employee::{EmployeeState, EventOutcome};
use shared::domain::lifecycle::LOST_PREFIX;
use shared::domain::lifecycle_events::{Kind as EventKind, LifecycleEvent, events_of};
use shared::domain::profile::Profiles;
use shared::domain::time::Timestamp;
use shared::domain::workspace::MANAGED_TAG_KEY;
use shared::domain::workspace::WorkspaceState;
use shared::ports::Outgoing;
use shared::services::audit::{AuditConfig, Auditor};
use shared::services::guard::GuardOperator;
use shared::services::intake::{Intake, IntakeConfig};
use shared::services::provisioner::{Provisioner, ProvisionerConfig};
use shared::services::reconciler::{Reconciler, ReconcilerConfig};
use shared::services::terminator::{GuardConfig, Terminator, TerminatorConfig};
use shared::services::{BatchContext, QueueRecord, SqsHandler};
use shared::testing::{
    FakeDirectory, FakeWorkspaces, Faults, Lifecycle, ManualClock, MemoryBus, MemoryQueue, MemoryStore,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// Movers go to Engineering (another bundle: MigrateWorkspace), to Remote (another directory: a
/// new WorkSpace there, the old one terminated), or ask for a bigger user volume
/// (ModifyWorkspaceProperties).
const PROFILES: &str = r#"{"default_profile":"standard","profiles":{"standard":{"directory_id":"d-9067a1b2c3","bundle_id":"wsb-stdwin2022"},"power":{"directory_id":"d-9067a1b2c3","bundle_id":"wsb-perfwin2022"},"remote":{"directory_id":"d-90670000ff","bundle_id":"wsb-stdwin2022"}},"departments":{"Engineering":"power","Remote":"remote"}}"#;
const STANDARD_BUNDLE: &str = "wsb-stdwin2022";
const POWER_BUNDLE: &str = "wsb-perfwin2022";
const REMOTE_DIRECTORY: &str = "d-90670000ff";
const STANDARD_DIRECTORY: &str = "d-9067a1b2c3";
/// 2026-11-02T00:00:00Z: source times lie before the world's clock starts.
const EPOCH: i64 = 1_793_577_600_000;
const START: i64 = EPOCH + 86_400_000;
const NAMES: [&str; 3] = ["ann", "bob", "cy"];
const DAY: i64 = 86_400_000;

// ---------------------------------------------------------------- scenarios

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Join,
    Leave,
    Cancel,
    /// To Engineering (another bundle).
    MoveDepartment,
    /// A 100 GiB user volume, the profile kept.
    MoveVolume,
    /// To Remote (another directory).
    MoveDirectory,
}

impl Kind {
    fn is_move(self) -> bool {
        matches!(self, Kind::MoveDepartment | Kind::MoveVolume | Kind::MoveDirectory)
    }
}

#[derive(Clone, Debug)]
struct Event {
    employee: usize,
    kind: Kind,
    /// Source time, milliseconds after EPOCH (out of order across events).
    occurred: i64,
    /// Days after the world's start it takes effect (future-dated).
    effective_days: Option<i64>,
    /// For a cancel: the index of the event withdrawn.
    target: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Queue {
    Hr,
    Requests,
    Terminations,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Breakage {
    ErrorState,
    CreateRefused,
    DirectoryRefused,
}

#[derive(Clone, Debug)]
enum Action {
    /// The HR system sends its next event.
    Send,
    /// One batch of up to `max` messages; `repeat`: one delivered message comes again (at least once).
    Deliver {
        queue: Queue,
        max: usize,
        repeat: bool,
    },
    Reconcile,
    Tick(i64),
    /// The process running the next delivery or run dies after `after` port calls.
    Crash {
        after: u64,
    },
    /// The next `times` WorkSpaces calls of an operation (an index into `THROTTLED`) are throttled.
    Throttle {
        op: usize,
        times: u32,
    },
    /// CreateWorkspaces fails one user's item `times` times with a retryable code.
    ItemFailure {
        name: usize,
        times: u32,
    },
    /// Something permanent goes wrong for one user name: WorkSpaces made for it from now on end
    /// in ERROR, its next CreateWorkspaces item fails for good, or the directory refuses it once.
    Break {
        name: usize,
        how: Breakage,
    },
    /// An operator releases every termination the guard holds (`hrws guard release`).
    Release,
    /// An administrator deletes an active employee's WorkSpace in the console.
    Delete {
        employee: usize,
    },
    /// The drift audit runs, with every action on.
    Audit,
    /// A WorkSpace the pipeline once made for an employee (managed tag, their user name), left
    /// behind (a crash, an older version): only for an employee the table knows.
    Stray {
        employee: usize,
    },
}

#[derive(Clone)]
struct Scenario {
    fifo: bool,
    /// Each employee's user name (an index into NAMES: namesakes are common).
    names: Vec<usize>,
    events: Vec<Event>,
    actions: Vec<Action>,
    /// Chooses what a standard queue delivers and which message repeats.
    seed: u64,
    /// Leaves keep the WorkSpace for `GRACE_MS`, access revoked, before terminating it.
    grace: bool,
    /// The mass-termination guard admits one termination per hour; an operator releases the rest.
    guard: bool,
    /// Once the world has settled, an administrator deletes this employee's WorkSpace (if active).
    late_delete: Option<usize>,
}

/// The WorkSpaces operations a history throttles: (the fault point, the API name).
const THROTTLED: [(&str, &str); 6] = [
    ("workspaces.create_workspaces", "CreateWorkspaces"),
    ("workspaces.terminate_workspaces", "TerminateWorkspaces"),
    ("workspaces.modify_properties", "ModifyWorkspaceProperties"),
    ("workspaces.migrate", "MigrateWorkspace"),
    ("workspaces.tags", "DescribeTags"),
    ("tagging.tags_of", "GetResources"),
];

/// The grace period of histories with one: within reach of their clock steps and cancels.
const GRACE_MS: i64 = 1_800_000;

/// Up to this many employees per history.
const EMPLOYEES: usize = 4;

/// Flat strategies (no `prop_flat_map`), so that a failure shrinks well: whole actions and events
/// go, numbers get smaller.
fn scenario() -> impl Strategy<Value = Scenario> {
    let names = prop::collection::vec(0..NAMES.len(), EMPLOYEES);
    let event =
        (0..EMPLOYEES, 0u8..21, -120i64..120, prop::option::weighted(0.15, 20i64..60), any::<prop::sample::Index>());
    let events = prop::collection::vec(event, 1..=10);
    let action = prop_oneof![
        6 => Just(Action::Send),
        8 => (prop_oneof![Just(Queue::Hr), Just(Queue::Requests), Just(Queue::Terminations)], 1usize..=10, prop::bool::weighted(0.2))
            .prop_map(|(queue, max, repeat)| Action::Deliver { queue, max, repeat }),
        3 => Just(Action::Reconcile),
        3 => (1i64..600).prop_map(|s| Action::Tick(s * 1000)),
        2 => (0u64..25).prop_map(|after| Action::Crash { after }),
        1 => (0..THROTTLED.len(), 1u32..4).prop_map(|(op, times)| Action::Throttle { op, times }),
        1 => (0..NAMES.len(), 1u32..4).prop_map(|(name, times)| Action::ItemFailure { name, times }),
        1 => (0..NAMES.len(), prop_oneof![Just(Breakage::ErrorState), Just(Breakage::CreateRefused), Just(Breakage::DirectoryRefused)])
            .prop_map(|(name, how)| Action::Break { name, how }),
        1 => Just(Action::Release),
        1 => (0..EMPLOYEES).prop_map(|employee| Action::Delete { employee }),
        2 => Just(Action::Audit),
        1 => (0..EMPLOYEES).prop_map(|employee| Action::Stray { employee }),
    ];
    let actions = prop::collection::vec(action, 0..60);
    let late_delete = prop::option::weighted(0.3, 0..EMPLOYEES);
    (any::<bool>(), any::<u64>(), names, events, actions, any::<bool>(), any::<bool>(), late_delete).prop_map(
        |(fifo, seed, names, events, actions, grace, guard, late_delete)| Scenario {
            fifo,
            grace,
            guard,
            late_delete,
            names,
            events: events
                .into_iter()
                .enumerate()
                .map(|(i, (employee, kind, jitter_s, effective_days, target))| Event {
                    employee,
                    kind: match kind {
                        0..=8 => Kind::Join,
                        9..=14 => Kind::Leave,
                        15 => Kind::MoveDepartment,
                        16 => Kind::MoveVolume,
                        17 => Kind::MoveDirectory,
                        _ => Kind::Cancel,
                    },
                    occurred: i as i64 * 60_000 + jitter_s * 1000 + 3_600_000,
                    effective_days,
                    target: if i == 0 { 0 } else { target.index(i) },
                })
                .collect(),
            actions,
            seed,
        },
    )
}

impl Scenario {
    fn event_id(i: usize) -> String {
        format!("e{i}")
    }

    fn employee_id(e: usize) -> String {
        format!("E{e}")
    }

    fn body(&self, i: usize) -> String {
        let ev = &self.events[i];
        let at = |ms: i64| Timestamp::from_millis(ms).to_rfc3339();
        let employee = Self::employee_id(ev.employee);
        let mut body = serde_json::json!({
            "schema_version": "1",
            "event_id": Self::event_id(i),
            "occurred_at": at(EPOCH + ev.occurred),
            "employee": { "employee_id": employee },
        });
        match ev.kind {
            Kind::Join => {
                let name = NAMES[self.names[ev.employee]];
                body["type"] = "join".into();
                body["employee"] = serde_json::json!({
                    "employee_id": employee, "username": name, "given_name": "Given", "surname": "Sur",
                    // each person has their own address: a namesake is another person
                    "email": format!("{name}.{}@example.com", employee.to_lowercase()),
                });
            }
            Kind::Leave => body["type"] = "leave".into(),
            Kind::MoveDepartment => {
                body["type"] = "move".into();
                body["employee"]["department"] = "Engineering".into();
            }
            Kind::MoveVolume => {
                body["type"] = "move".into();
                body["workspace"] = serde_json::json!({ "user_volume_gib": 100 });
            }
            Kind::MoveDirectory => {
                body["type"] = "move".into();
                body["employee"]["department"] = "Remote".into();
            }
            Kind::Cancel => {
                body["type"] = "cancel".into();
                body["cancels"] = Self::event_id(ev.target).into();
            }
        }
        if let Some(days) = ev.effective_days.filter(|_| ev.kind != Kind::Cancel) {
            body["effective_at"] = at(START + days * DAY).into();
        }
        body.to_string()
    }
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let queue = if self.fifo { "FIFO" } else { "standard (reordering)" };
        let grace =
            if self.grace { format!(", leaves keep the WorkSpace {} s", GRACE_MS / 1000) } else { String::new() };
        let guard = if self.guard { ", the guard admits 1 termination an hour" } else { "" };
        let late = self
            .late_delete
            .map(|e| format!(", once quiet an administrator deletes {}'s WorkSpace", Scenario::employee_id(e)))
            .unwrap_or_default();
        writeln!(f, "\n  {queue} HR queue, delivery seed {}{grace}{guard}{late}", self.seed)?;
        for (e, name) in self.names.iter().enumerate() {
            if self.events.iter().any(|ev| ev.employee == e) {
                writeln!(f, "  employee E{e} is {}", NAMES[*name])?;
            }
        }
        let mut sent = 0;
        let describe = |i: usize| {
            let ev = &self.events[i];
            let what = match ev.kind {
                Kind::Join => format!("join as {}", NAMES[self.names[ev.employee]]),
                Kind::Leave => "leave".to_owned(),
                Kind::MoveDepartment => "move to Engineering (another bundle)".to_owned(),
                Kind::MoveVolume => "move to a 100 GiB user volume".to_owned(),
                Kind::MoveDirectory => "move to Remote (another directory)".to_owned(),
                Kind::Cancel => format!("cancel e{}", ev.target),
            };
            let effective = match ev.effective_days {
                Some(d) if ev.kind != Kind::Cancel => format!(", effective in {d} days"),
                _ => String::new(),
            };
            format!("HR sends e{i}: E{} {what}, occurred at +{}s{effective}", ev.employee, ev.occurred / 1000)
        };
        for (n, action) in self.actions.iter().enumerate() {
            let line = match action {
                Action::Send if sent < self.events.len() => {
                    sent += 1;
                    describe(sent - 1)
                }
                Action::Send => "(nothing left to send)".into(),
                Action::Deliver { queue, max, repeat } => {
                    format!("deliver up to {max} from {queue:?}{}", if *repeat { ", one delivered again" } else { "" })
                }
                Action::Reconcile => "reconciler runs".into(),
                Action::Tick(ms) => format!("{} s pass", ms / 1000),
                Action::Crash { after } => format!("the next run crashes after {after} port calls"),
                Action::Throttle { op, times } => format!("{times} {} calls throttled", THROTTLED[*op].1),
                Action::ItemFailure { name, times } => {
                    format!("CreateWorkspaces fails {}'s item {times} times (ResourceLimitExceeded)", NAMES[*name])
                }
                Action::Break { name, how } => match how {
                    Breakage::ErrorState => format!("WorkSpaces made for {} from now on end in ERROR", NAMES[*name]),
                    Breakage::CreateRefused => {
                        format!(
                            "CreateWorkspaces refuses {}'s next item for good (ResourceNotFound.User)",
                            NAMES[*name]
                        )
                    }
                    Breakage::DirectoryRefused => format!("the directory refuses {} once", NAMES[*name]),
                },
                Action::Release => "an operator releases what the guard holds".into(),
                Action::Delete { employee } => {
                    format!("an administrator deletes {}'s WorkSpace if active", Scenario::employee_id(*employee))
                }
                Action::Audit => "the drift audit runs, every action on".into(),
                Action::Stray { employee } => format!(
                    "a managed WorkSpace made for {} ({}) is left behind, if the table knows them",
                    Scenario::employee_id(*employee),
                    NAMES[self.names[*employee]]
                ),
            };
            writeln!(f, "  {:>2}. {line}", n + 1)?;
        }
        for i in sent..self.events.len() {
            writeln!(f, "   -. {}", describe(i))?;
        }
        write!(f, "  then: faults stop, every effective date passes, the world runs until it settles")
    }
}

// ---------------------------------------------------------------- the world

struct Message {
    id: String,
    body: String,
    group: Option<String>,
    receives: u32,
    /// A message that failed or was lost in a crash comes back after the visibility timeout.
    visible_at: i64,
}

/// The queues' visibility timeouts in the template: HR events 180 s, WorkSpace requests 400 s,
/// termination requests 1,100 s.
fn visibility_ms(queue: Queue) -> i64 {
    match queue {
        Queue::Hr => 180_000,
        Queue::Requests => 400_000,
        Queue::Terminations => 1_100_000,
    }
}

type Store = Arc<MemoryStore>;
type Queues = Arc<MemoryQueue>;

struct World {
    clock: ManualClock,
    faults: Faults,
    store: Store,
    workspaces: Arc<FakeWorkspaces>,
    requests_out: Queues,
    terminations_out: Queues,
    hr_out: Queues,
    intake: Intake<Store, Arc<FakeDirectory>, Queues>,
    provisioner: Provisioner<Store, Arc<FakeWorkspaces>, Queues>,
    terminator: Terminator<Store, Arc<FakeWorkspaces>, Arc<FakeWorkspaces>, Queues>,
    reconciler: Reconciler<Store, Arc<FakeWorkspaces>, Queues>,
    operator: GuardOperator<Store, Queues>,
    auditor: Auditor<Store, Arc<FakeWorkspaces>, Arc<MemoryBus>, Queues>,
    /// Missing, orphaned and mismatched WorkSpaces the last audit that completed found (`None`:
    /// none since the settling began).
    drift_left: Option<usize>,
    queues: BTreeMap<&'static str, Vec<Message>>,
    fifo: bool,
    rng: u64,
    next_message: u64,
    stats: Stats,
}

#[derive(Default, Clone, Copy)]
struct Stats {
    histories: u64,
    events: u64,
    deliveries: u64,
    crashes: u64,
    /// Requests handed back for want of time (a throttled WorkSpaces call), sent again delayed.
    handed_back: u64,
    reconciler_runs: u64,
    /// Leaves that revoked access for a grace period, and of those, leaves given back.
    revoked: u64,
    restored: u64,
    /// Moves applied; WorkSpaces migrated and user volumes grown by them (live at the end).
    moves: u64,
    migrated: u64,
    grown: u64,
    relocated: u64,
    /// Audits run, and WorkSpaces an administrator deleted behind the pipeline's back.
    audits: u64,
    deleted: u64,
    /// What the audits did: WorkSpaces requested again, profiles re-applied, orphans terminated.
    requested_again: u64,
    reapplied: u64,
    orphans_terminated: u64,
}

impl Stats {
    fn add(&mut self, o: Stats) {
        self.histories += o.histories;
        self.events += o.events;
        self.deliveries += o.deliveries;
        self.crashes += o.crashes;
        self.handed_back += o.handed_back;
        self.reconciler_runs += o.reconciler_runs;
        self.revoked += o.revoked;
        self.restored += o.restored;
        self.moves += o.moves;
        self.migrated += o.migrated;
        self.grown += o.grown;
        self.relocated += o.relocated;
        self.audits += o.audits;
        self.deleted += o.deleted;
        self.requested_again += o.requested_again;
        self.reapplied += o.reapplied;
        self.orphans_terminated += o.orphans_terminated;
    }
}

fn key(q: Queue) -> &'static str {
    match q {
        Queue::Hr => "hr",
        Queue::Requests => "requests",
        Queue::Terminations => "terminations",
    }
}

impl World {
    fn new(fifo: bool, seed: u64, grace: bool, guard: bool) -> World {
        let clock = ManualClock::new(START);
        let faults = Faults::new();
        let store = Arc::new(MemoryStore::default().with_faults(faults.clone()));
        // WorkSpaces' own pace (creation takes about 20 minutes, termination a few): the windows
        // in which events overtake each other are as wide as in production.
        // With a grace period, creation is quicker: more joiners are active (the only WorkSpaces a
        // grace period keeps) by the time their leave comes.
        let lifecycle = Lifecycle {
            create_ms: if grace { 60_000 } else { 1_200_000 },
            invisible_ms: 5_000,
            terminate_ms: 300_000,
            terminated_visible_ms: 60_000,
            ..Lifecycle::default()
        };
        let workspaces =
            Arc::new(FakeWorkspaces::new(clock.clone()).with_lifecycle(lifecycle).with_faults(faults.clone()));
        let directory = Arc::new(FakeDirectory::default().with_faults(faults.clone()).with_clock(clock.clone()));
        let queue = |name: &str| Arc::new(MemoryQueue::named(name).with_faults(faults.clone()));
        let (requests_out, terminations_out, hr_out) = (queue("requests"), queue("terminations"), queue("hr_events"));
        let clock_port: Arc<dyn shared::ports::Clock> = Arc::new(clock.clone());
        World {
            intake: Intake {
                store: store.clone(),
                directory,
                requests: requests_out.clone(),
                terminations: terminations_out.clone(),
                profiles: Profiles::from_json(PROFILES).unwrap(),
                config: IntakeConfig {
                    leave_grace_ms: if grace { GRACE_MS } else { 0 },
                    // Longer than any message lives in the model (SQS keeps one 14 days at most).
                    idempotency_ttl_s: 120 * 86_400,
                    fallback_claim_ms: 900_000,
                    disable_user_on_leave: false,
                    clock_skew_ms: 300_000,
                    effective_horizon_ms: 400 * DAY,
                    // Waiting takes real time; the model's clock is simulated.
                    claim_wait_ms: 0,
                },
                clock: clock_port.clone(),
            },
            provisioner: Provisioner {
                store: store.clone(),
                workspaces: workspaces.clone(),
                requests: requests_out.clone(),
                terminations: terminations_out.clone(),
                // Retryable failures are retried here until they pass: giving up is tested apart.
                config: ProvisionerConfig { max_attempts: 10_000, adopt_unmanaged: false },
                clock: clock_port.clone(),
            },
            terminator: Terminator {
                store: store.clone(),
                workspaces: workspaces.clone(),
                tags: workspaces.clone(),
                requests: requests_out.clone(),
                terminations: terminations_out.clone(),
                config: TerminatorConfig {
                    max_attempts: 10_000,
                    terminate_unmanaged: false,
                    guard: guard.then_some(GuardConfig { limit: 1, window_ms: 3_600_000 }),
                },
                clock: clock_port.clone(),
            },
            reconciler: Reconciler {
                store: store.clone(),
                workspaces: workspaces.clone(),
                requests: requests_out.clone(),
                hr_events: hr_out.clone(),
                terminations: terminations_out.clone(),
                config: ReconcilerConfig {
                    create_deadline_ms: 90 * DAY,
                    terminate_deadline_ms: 90 * DAY,
                    create_first_look_ms: 0,
                    terminate_first_look_ms: 0,
                    cooldowns: shared::domain::workspace::Cooldowns::DOCUMENTED,
                },
                clock: clock_port.clone(),
            },
            operator: GuardOperator {
                store: store.clone(),
                terminations: terminations_out.clone(),
                clock: clock_port.clone(),
            },
            auditor: Auditor {
                store: store.clone(),
                workspaces: workspaces.clone(),
                events: Arc::new(MemoryBus::default().with_faults(faults.clone())),
                requests: requests_out.clone(),
                clock: clock_port,
                config: AuditConfig {
                    directories: Profiles::from_json(PROFILES).unwrap().directories(),
                    rules: AuditRules { unhealthy_after_ms: 90 * DAY },
                    call_interval_ms: 0,
                    actions: AuditActions {
                        on_missing: OnMissing::RequestAgain,
                        on_mismatched: OnMismatched::Reapply,
                        on_orphaned: OnOrphaned::TerminateManaged,
                        // Found by the audit before (the model's audits run as if daily).
                        orphan_after_ms: 0,
                    },
                    // The terminate-managed action needs the guard on: without the scenario's, one that
                    // admits any number.
                    guard: Some(GuardConfig { limit: if guard { 1 } else { 1_000 }, window_ms: 3_600_000 }),
                },
            },
            clock,
            faults,
            store,
            workspaces,
            requests_out,
            terminations_out,
            hr_out,
            drift_left: None,
            queues: [("hr", Vec::new()), ("requests", Vec::new()), ("terminations", Vec::new())].into(),
            fifo,
            rng: seed | 1,
            next_message: 0,
            stats: Stats::default(),
        }
    }

    fn random(&mut self, below: usize) -> usize {
        // xorshift64: deterministic per scenario, so a failure shrinks and replays
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % below.max(1) as u64) as usize
    }

    fn enqueue(&mut self, queue: &'static str, out: Outgoing) {
        self.next_message += 1;
        let id = format!("m{}", self.next_message);
        // A delayed message (a request handed back) is not received before its delay is over.
        let visible_at = out.delay_seconds.map_or(0, |s| self.clock.now_ms() + i64::from(s) * 1_000);
        self.stats.handed_back += u64::from(out.delay_seconds.is_some());
        let message = Message { id, body: out.body, group: out.group_id, receives: 0, visible_at };
        self.queues.get_mut(queue).unwrap().push(message);
    }

    /// What the services sent reaches the queues.
    fn collect(&mut self) {
        for out in self.requests_out.take() {
            self.enqueue("requests", out);
        }
        for out in self.terminations_out.take() {
            self.enqueue("terminations", out);
        }
        for out in self.hr_out.take() {
            self.enqueue("hr", out);
        }
    }

    fn send_hr(&mut self, body: String, employee: String) {
        self.enqueue("hr", Outgoing { group_id: Some(employee), ..Outgoing::plain(body) });
    }

    /// One batch from a queue to its function; what fails (or is lost in a crash) comes back.
    async fn deliver(&mut self, queue: Queue, max: usize, repeat: bool) {
        let name = key(queue);
        let now = self.clock.now_ms();
        let fifo = self.fifo && queue == Queue::Hr;
        // What SQS may hand out now: visible messages; on FIFO, not behind an invisible one of
        // the same group.
        let mut blocked = BTreeSet::new();
        let mut eligible = Vec::new();
        for (at, m) in self.queues[name].iter().enumerate() {
            let group = m.group.clone().unwrap_or_default();
            if m.visible_at > now {
                blocked.insert(group);
            } else if !(fifo && blocked.contains(&group)) {
                eligible.push(at);
            }
        }
        if eligible.is_empty() {
            return;
        }
        let n = max.min(10).min(eligible.len());
        let mut picked: Vec<usize> = if fifo {
            eligible[..n].to_vec()
        } else {
            (0..n).map(|_| eligible.swap_remove(self.random(eligible.len()))).collect()
        };
        let order = picked.clone();
        picked.sort_unstable();
        let mut taken_at: BTreeMap<usize, Message> = BTreeMap::new();
        for at in picked.into_iter().rev() {
            taken_at.insert(at, self.queues.get_mut(name).unwrap().remove(at));
        }
        let mut taken: Vec<Message> = order.iter().filter_map(|at| taken_at.remove(at)).collect();
        for m in &mut taken {
            m.receives += 1;
        }
        let records: Vec<QueueRecord> = taken
            .iter()
            .map(|m| QueueRecord {
                message_id: m.id.clone(),
                body: m.body.clone(),
                receive_count: m.receives,
                group_id: m.group.clone(),
            })
            .collect();
        let context = BatchContext { fifo, ..BatchContext::default() };
        let outcome = match queue {
            Queue::Hr => self.intake.handle_batch(&records, context).await,
            Queue::Requests => self.provisioner.handle_batch(&records, context).await,
            Queue::Terminations => self.terminator.handle_batch(&records, context).await,
        };
        self.stats.deliveries += 1;
        let crashed = self.faults.is_dead();
        self.faults.revive();
        self.collect();
        if std::env::var_os("MODEL_TRACE").is_some() {
            eprintln!(
                "deliver {queue:?} {:?} crashed={crashed} failed={:?}",
                records.iter().map(|r| (&r.message_id, r.receive_count, &r.body)).collect::<Vec<_>>(),
                outcome.failed_message_ids
            );
        }
        let failed: BTreeSet<String> = outcome.failed_message_ids.into_iter().collect();
        let mut back = Vec::new();
        let mut done = Vec::new();
        for mut m in taken {
            if crashed || failed.contains(&m.id) {
                m.visible_at = now + visibility_ms(queue);
                back.push(m);
            } else {
                done.push(m);
            }
        }
        if crashed {
            self.stats.crashes += 1;
        }
        if repeat && !done.is_empty() {
            let again = done.swap_remove(self.random(done.len()));
            back.push(again);
        }
        let q = self.queues.get_mut(name).unwrap();
        if fifo {
            // Back at the head, in order: the group's order holds.
            back.append(q);
            *q = back;
        } else {
            q.extend(back);
        }
    }

    async fn release(&mut self) {
        if let Err(e) = self.operator.release_all().await
            && std::env::var_os("MODEL_TRACE").is_some()
        {
            eprintln!("release failed: {e}");
        }
        if self.faults.is_dead() {
            self.stats.crashes += 1;
        }
        self.faults.revive();
        self.collect();
    }

    async fn audit(&mut self) {
        match self.auditor.run().await {
            Ok(report) => {
                self.drift_left =
                    Some(report.counts["missing"] + report.counts["orphaned"] + report.counts["mismatched"]);
                for action in report.actions.iter().filter(|a| a.done) {
                    match action.remedy {
                        Remedy::RequestAgain { .. } => self.stats.requested_again += 1,
                        Remedy::Reapply { .. } => self.stats.reapplied += 1,
                        Remedy::Terminate { .. } => self.stats.orphans_terminated += 1,
                    }
                }
            }
            Err(e) if std::env::var_os("MODEL_TRACE").is_some() => eprintln!("audit failed: {e}"),
            Err(_) => {}
        }
        self.stats.audits += 1;
        if self.faults.is_dead() {
            self.stats.crashes += 1;
        }
        self.faults.revive();
        self.collect();
    }

    /// An administrator deletes the employee's WorkSpace in the console, if they are active.
    fn delete(&mut self, employee: usize) {
        let id = Scenario::employee_id(employee);
        let record = self.store.records().into_iter().find(|r| r.employee_id == id);
        if let Some(ws) = record.filter(|r| r.state == EmployeeState::Active).and_then(|r| r.workspace_id)
            && self.workspaces.delete_by_hand(&ws)
        {
            self.stats.deleted += 1;
        }
    }

    async fn reconcile(&mut self) {
        let _ = self.reconciler.run(None).await;
        self.stats.reconciler_runs += 1;
        if self.faults.is_dead() {
            self.stats.crashes += 1;
        }
        self.faults.revive();
        self.collect();
    }

    fn settled(&self) -> bool {
        let busy = [
            EmployeeState::Requested,
            EmployeeState::Pending,
            EmployeeState::Leaving,
            EmployeeState::Revoked,
            EmployeeState::Restoring,
            EmployeeState::Moving,
            EmployeeState::Terminating,
        ];
        // The audits have repaired what they act on: nothing missing, mismatched or orphaned.
        self.drift_left == Some(0)
            && self.queues.values().all(Vec::is_empty)
            && self.store.records().iter().all(|e| !busy.contains(&e.state))
            && self.store.scheduled_events().iter().all(|e| e.effective_ms > self.clock.now_ms())
            && self.workspaces.workspaces().iter().all(|w| {
                matches!(w.state, WorkspaceState::Available | WorkspaceState::Terminated | WorkspaceState::Error)
            })
            // An active employee's WorkSpace deleted behind the pipeline's back waits for an audit.
            && self.store.records().iter().filter(|e| e.state == EmployeeState::Active).all(|e| {
                e.workspace_id
                    .as_ref()
                    .and_then(|id| self.workspaces.workspace(id))
                    .is_some_and(|w| w.state == WorkspaceState::Available)
            })
    }
}

// ---------------------------------------------------------------- running a history

async fn run(s: &Scenario) -> Result<Stats, String> {
    let mut w = World::new(s.fifo, s.seed, s.grace, s.guard);
    let mut sent = 0;
    let mut refused = BTreeSet::new();
    for action in &s.actions {
        match action {
            Action::Send => {
                if sent < s.events.len() {
                    w.send_hr(s.body(sent), Scenario::employee_id(s.events[sent].employee));
                    sent += 1;
                }
            }
            Action::Deliver { queue, max, repeat } => w.deliver(*queue, *max, *repeat).await,
            Action::Reconcile => w.reconcile().await,
            Action::Tick(ms) => {
                w.clock.advance(*ms);
            }
            Action::Crash { after } => w.faults.crash_after(*after),
            Action::Throttle { op, times } => w.faults.fail_next(THROTTLED[*op].0, *times),
            Action::ItemFailure { name, times } => {
                w.workspaces.fail_create(NAMES[*name], "ResourceLimitExceeded", "injected", Some(*times));
            }
            Action::Release => w.release().await,
            Action::Delete { employee } => w.delete(*employee),
            Action::Audit => w.audit().await,
            // Not for a name whose creation was refused for good: CreateWorkspaces would answer
            // that the user has one (as the refusal is only set up for a name without one).
            Action::Stray { employee } if !refused.contains(&s.names[*employee]) => {
                let owner = Scenario::employee_id(*employee);
                if w.store.records().iter().any(|r| r.employee_id == owner) {
                    let name = NAMES[s.names[*employee]];
                    let id = w.workspaces.seed(STANDARD_DIRECTORY, name, WorkspaceState::Available);
                    w.workspaces.create_tags_by_hand(&id, BTreeMap::from([(MANAGED_TAG_KEY.to_owned(), owner)]));
                }
            }
            Action::Stray { .. } => {}
            Action::Break { name, how } => match how {
                Breakage::ErrorState => w.workspaces.end_in_error(NAMES[*name], "InternalError", "injected"),
                // Only for a name without a WorkSpace: for one it has, CreateWorkspaces answers
                // that it exists (adopted). Otherwise a create made by an attempt that crashed
                // before its write, not listed yet when a re-request is refused for good, is left
                // to the drift audit (issue 15): the provisioner asks a redelivered request again
                // once, but cannot tell a re-request from a first one.
                Breakage::CreateRefused => {
                    let has_one = w.workspaces.workspaces().iter().any(|ws| {
                        ws.user_name.eq_ignore_ascii_case(NAMES[*name]) && ws.state != WorkspaceState::Terminated
                    });
                    if !has_one {
                        w.workspaces.fail_create(NAMES[*name], "ResourceNotFound.User", "injected", Some(1));
                        refused.insert(*name);
                    }
                }
                Breakage::DirectoryRefused => {
                    w.intake.directory.refuse(NAMES[*name], "InvalidParameterException", "injected", Some(1));
                }
            },
        }
    }
    while sent < s.events.len() {
        w.send_hr(s.body(sent), Scenario::employee_id(s.events[sent].employee));
        sent += 1;
    }
    // Faults stop; every effective date passes; the world runs until it settles.
    w.faults.clear();
    w.clock.advance(61 * DAY);
    let mut rounds = 0;
    let mut late_delete = s.late_delete;
    // Each round ends with an audit: an orphan is terminated by the second audit that finds it.
    w.drift_left = None;
    while !w.settled() {
        if w.settled()
            && let Some(employee) = late_delete.take()
        {
            // Once all is quiet, an administrator deletes a WorkSpace in use: the audits repair it.
            w.delete(employee);
        }
        rounds += 1;
        if rounds > 200 {
            return Err(format!("the world did not settle after {rounds} rounds:\n{}", dump(&w)));
        }
        for queue in [Queue::Hr, Queue::Requests, Queue::Terminations] {
            loop {
                let before = w.stats.deliveries;
                w.deliver(queue, 10, false).await;
                if w.stats.deliveries == before {
                    break; // nothing visible
                }
                if w.stats.deliveries > 100_000 {
                    return Err(format!("deliveries never end:\n{}", dump(&w)));
                }
            }
        }
        w.reconcile().await;
        // The operator has confirmed the leaves.
        w.release().await;
        // The drift audit repairs what an administrator broke (every run, as if daily).
        w.audit().await;
        // Past the visibility timeouts, any claim left in progress by a crash, and the
        // WorkSpaces' own delays.
        w.clock.advance(1_120_000);
    }
    check(s, &w)?;
    w.stats.histories = 1;
    w.stats.events = s.events.len() as u64;
    let lines = w.store.all_history();
    let applied = |needle: &str| {
        lines.iter().filter(|h| h.outcome == EventOutcome::Applied && h.reason.contains(needle)).count() as u64
    };
    w.stats.revoked = applied("access revoked");
    w.stats.restored = applied(shared::domain::lifecycle::RESTORING);
    w.stats.moves = s
        .events
        .iter()
        .enumerate()
        .filter(|(i, ev)| {
            ev.kind.is_move()
                && lines.iter().any(|h| {
                    h.event_id.as_deref() == Some(Scenario::event_id(*i).as_str()) && h.outcome == EventOutcome::Applied
                })
        })
        .count() as u64;
    let live = w.workspaces.workspaces();
    w.stats.migrated = live.iter().filter(|ws| ws.bundle_id.as_deref() == Some(POWER_BUNDLE)).count() as u64;
    w.stats.relocated = live.iter().filter(|ws| ws.directory_id == REMOTE_DIRECTORY).count() as u64;
    w.stats.grown =
        live.iter().filter(|ws| ws.properties.as_ref().and_then(|p| p.user_volume_gib) == Some(100)).count() as u64;
    Ok(w.stats)
}

fn dump(w: &World) -> String {
    let mut out = String::new();
    for e in w.store.records() {
        out += &format!(
            "  record {} {} v{} ws={:?} rehire={} request={:?} leave={:?} last={} grace={:?} held={:?} released={} moving={:?} move_note={:?} bundle={:?}\n",
            e.employee_id,
            e.state.as_str(),
            e.version,
            e.workspace_id,
            e.rehire_pending,
            e.request_event_id,
            e.leave_event_id,
            e.last_event_id,
            e.grace_until_ms,
            e.held_since_ms,
            e.guard_released,
            e.moving,
            e.move_note,
            e.profile.as_ref().map(|p| (&p.bundle_id, p.user_volume_gib))
        );
    }
    for ws in w.workspaces.workspaces() {
        out += &format!(
            "  WorkSpace {} {} {} {:?} {:?}\n",
            ws.workspace_id,
            ws.user_name,
            ws.state,
            ws.bundle_id,
            ws.properties.as_ref().map(|p| (p.root_volume_gib, p.user_volume_gib))
        );
    }
    for h in w.store.all_history() {
        out += &format!(
            "  history {} {:?} {} {}\n",
            h.employee_id.as_deref().unwrap_or("-"),
            h.event_id,
            h.outcome.as_str(),
            h.reason
        );
    }
    for (q, msgs) in &w.queues {
        for m in msgs {
            out += &format!("  queued {q} {} (received {}): {}\n", m.id, m.receives, m.body);
        }
    }
    out
}

/// The reference model: what a user relies on, from the scenario and the recorded outcomes.
fn check(s: &Scenario, w: &World) -> Result<(), String> {
    let fail = |what: String| Err(format!("{what}\n{}", dump(w)));
    let history = w.store.all_history();
    let live: Vec<_> =
        w.workspaces.workspaces().into_iter().filter(|ws| ws.state != WorkspaceState::Terminated).collect();

    // At most one live WorkSpace per user name.
    let mut per_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ws in &live {
        per_name.entry(ws.user_name.to_lowercase()).or_default().push(ws.workspace_id.clone());
    }
    if let Some((name, ids)) = per_name.iter().find(|(_, ids)| ids.len() > 1) {
        return fail(format!("user name {name} has {} live WorkSpaces: {ids:?}", ids.len()));
    }

    // Every HR event accounted for exactly once.
    let mut outcome_of: BTreeMap<String, (EventOutcome, String)> = BTreeMap::new();
    for i in 0..s.events.len() {
        let id = Scenario::event_id(i);
        let lines: Vec<_> = history.iter().filter(|h| h.event_id.as_deref() == Some(id.as_str())).collect();
        let finals: Vec<_> = lines.iter().filter(|line| line.is_final()).collect();
        match finals.as_slice() {
            [one] => {
                outcome_of.insert(id, (one.outcome, one.reason.clone()));
            }
            [] => {
                let cancelled = s.events.iter().enumerate().any(|(c, ev)| {
                    ev.kind == Kind::Cancel
                        && ev.target == i
                        && history.iter().any(|h| {
                            h.event_id.as_deref() == Some(Scenario::event_id(c).as_str())
                                && h.outcome == EventOutcome::Applied
                        })
                });
                // Held, then withdrawn: the cancel's line accounts for it (its own `scheduled`
                // line may be lost to a crash after the hold; a redelivery says it was cancelled).
                if !cancelled {
                    let held = lines.iter().any(|h| h.outcome == EventOutcome::Scheduled);
                    return fail(format!("event {id} has no final outcome (scheduled: {held}, not cancelled)"));
                }
            }
            many => return fail(format!("event {id} has {} final outcomes", many.len())),
        }
    }

    // Each employee ends as its last effective event says.
    let records: BTreeMap<String, _> = w.store.records().into_iter().map(|e| (e.employee_id.clone(), e)).collect();
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for e in 0..s.names.len() {
        let employee_id = Scenario::employee_id(e);
        // A leave rescinded within its grace period does not count either.
        let rescinded = |i: usize| {
            s.events.iter().enumerate().any(|(c, ev)| {
                ev.kind == Kind::Cancel
                    && ev.target == i
                    && outcome_of
                        .get(&Scenario::event_id(c))
                        .is_some_and(|(o, reason)| *o == EventOutcome::Applied && reason.contains("rescinded"))
            })
        };
        // A cancelled event never applies (it has no final outcome). A join that is refused (the
        // name held by another employee, or the directory refusing the user) is the latest word,
        // and leaves the employee without a WorkSpace: the name cannot be theirs, and a refusal
        // lost to a crash may have been written before the redelivery was refused for the name.
        let last = s
            .events
            .iter()
            .enumerate()
            .filter(|(i, ev)| {
                ev.employee == e
                    && ev.kind != Kind::Cancel
                    && !ev.kind.is_move()
                    && !rescinded(*i)
                    && outcome_of
                        .get(&Scenario::event_id(*i))
                        .is_some_and(|(_, reason)| !reason.starts_with("cancelled by"))
            })
            .max_by_key(|(i, ev)| (ev.occurred, Scenario::event_id(*i)));
        let refused =
            |i: usize| outcome_of.get(&Scenario::event_id(i)).is_some_and(|(o, _)| *o == EventOutcome::Rejected);
        let record = records.get(&employee_id);
        let name = NAMES[s.names[e]];
        // A name something permanent went wrong for: its joiner may end `failed`, with no
        // WorkSpace or with the one in ERROR it points at.
        let broken = s.actions.iter().any(
            |a| matches!(a, Action::Break { name: n, how } if *n == s.names[e] && *how != Breakage::DirectoryRefused),
        );
        match last {
            Some((i, ev)) if ev.kind == Kind::Join && !refused(i) => {
                if broken && let Some(r) = record.filter(|r| r.state == EmployeeState::Failed) {
                    let theirs = live.iter().filter(|ws| ws.user_name.eq_ignore_ascii_case(name));
                    for ws in theirs.filter(|ws| ws.state == WorkspaceState::Error) {
                        if r.workspace_id.as_ref() == Some(&ws.workspace_id) {
                            wanted.insert(ws.workspace_id.clone());
                        }
                    }
                    continue;
                }
                let Some(r) = record.filter(|r| r.state == EmployeeState::Active) else {
                    return fail(format!("{employee_id}'s last event e{i} is a join, but it is not active"));
                };
                let Some(ws) = live.iter().find(|ws| Some(&ws.workspace_id) == r.workspace_id.as_ref()) else {
                    return fail(format!("{employee_id} is active with {:?}, which is not live", r.workspace_id));
                };
                if ws.state != WorkspaceState::Available || !ws.user_name.eq_ignore_ascii_case(name) {
                    return fail(format!(
                        "{employee_id}'s WorkSpace {} is {} for {}",
                        ws.workspace_id, ws.state, ws.user_name
                    ));
                }
                // Moved as the moves applied since the join that onboarded them (a later join is
                // skipped as already joined) say, in HR's order (an older one is skipped):
                // Engineering's bundle once a department move applies, the 100 GiB user volume
                // when the latest is a volume move.
                // A WorkSpace requested again in place of a lost one (by an audit, or a move that
                // found it gone) carries the profile the record had: the join that onboarded them
                // is the one the record's writes name before the first such request.
                let mut request = r.request_event_id.clone();
                while let Some(lost) = request.clone().filter(|id| id.starts_with(LOST_PREFIX)) {
                    request = w
                        .store
                        .stream()
                        .into_iter()
                        .find(|(_, after)| {
                            after.employee_id == *employee_id
                                && after.request_event_id.as_deref() == Some(lost.as_str())
                        })
                        .and_then(|(before, _)| before?.request_event_id);
                }
                let onboarded = request.as_deref().and_then(|id| id.strip_prefix('e')?.parse::<usize>().ok());
                let Some(j) = onboarded else {
                    return fail(format!("{employee_id} is active without the join that onboarded them"));
                };
                let join_at = (s.events[j].occurred, Scenario::event_id(j));
                let mut moves: Vec<_> = s
                    .events
                    .iter()
                    .enumerate()
                    .filter(|(m, mv)| {
                        mv.employee == e
                            && mv.kind.is_move()
                            && (mv.occurred, Scenario::event_id(*m)) > join_at
                            && outcome_of.get(&Scenario::event_id(*m)).is_some_and(|(o, _)| *o == EventOutcome::Applied)
                    })
                    .map(|(m, mv)| ((mv.occurred, Scenario::event_id(m)), mv.kind))
                    .collect();
                moves.sort_by(|a, b| a.0.cmp(&b.0));
                if r.moving.is_some() || (r.move_note.is_some() && !broken) {
                    return fail(format!(
                        "{employee_id} is still moving ({:?}) or a move stopped ({:?})",
                        r.moving, r.move_note
                    ));
                }
                // A move stopped by a fault on the name (its new WorkSpace in ERROR, say): the
                // WorkSpace is as the move left it, the reason on the record.
                if r.move_note.is_some() && broken {
                    wanted.insert(ws.workspace_id.clone());
                    continue;
                }
                // A move to another directory that arrived before the join it follows (HR sends
                // late; a standard queue reorders) applies to the employment it found: what it
                // ends as depends on the order of arrival, so only consistency is checked.
                if moves.iter().any(|(_, k)| *k == Kind::MoveDirectory) {
                    let p = r.profile.as_ref().unwrap();
                    if ws.directory_id != p.directory_id || ws.bundle_id.as_deref() != Some(p.bundle_id.as_str()) {
                        return fail(format!(
                            "{employee_id}'s WorkSpace {} is in {} running {:?}, but its profile says {} and {}",
                            ws.workspace_id, ws.directory_id, ws.bundle_id, p.directory_id, p.bundle_id
                        ));
                    }
                    wanted.insert(ws.workspace_id.clone());
                    continue;
                }
                let bundle =
                    if moves.iter().any(|(_, k)| *k == Kind::MoveDepartment) { POWER_BUNDLE } else { STANDARD_BUNDLE };
                if ws.bundle_id.as_deref() != Some(bundle) {
                    return fail(format!(
                        "{employee_id}'s WorkSpace {} runs {:?} (moving: {:?}), but the moves applied ({moves:?}) ask for {bundle}",
                        ws.workspace_id, ws.bundle_id, r.moving
                    ));
                }
                let user_volume = ws.properties.as_ref().and_then(|p| p.user_volume_gib);
                if moves.last().is_some_and(|(_, k)| *k == Kind::MoveVolume) && user_volume != Some(100) {
                    return fail(format!(
                        "{employee_id}'s WorkSpace {} has a {user_volume:?} GiB user volume, but the last move asks for 100 ({moves:?}; note: {:?})",
                        ws.workspace_id, r.move_note
                    ));
                }
                wanted.insert(ws.workspace_id.clone());
            }
            last => {
                // A join refused by the directory after a failed onboarding: the WorkSpace in ERROR
                // stays on the failed record (for the operator, and for the leave to terminate).
                let refused_join = last.is_some_and(|(_, ev)| ev.kind == Kind::Join);
                if let Some(r) = record
                    && let Some(id) = &r.workspace_id
                    && let Some(ws) = live.iter().find(|ws| &ws.workspace_id == id)
                {
                    if refused_join && r.state == EmployeeState::Failed && ws.state == WorkspaceState::Error {
                        wanted.insert(id.clone());
                        continue;
                    }
                    let why = last.map_or("no event applies".to_owned(), |(i, _)| {
                        format!("its last event e{i} is a leave or refused")
                    });
                    return fail(format!("{employee_id} keeps WorkSpace {id} but {why}"));
                }
            }
        }
    }

    // No WorkSpace exists that no employee wants.
    if let Some(ws) = live.iter().find(|ws| !wanted.contains(&ws.workspace_id)) {
        return fail(format!(
            "WorkSpace {} ({}, {}) is wanted by no employee",
            ws.workspace_id, ws.user_name, ws.state
        ));
    }

    // The lifecycle events the table's stream makes: one id per event, and each employee's
    // final state announced (active: with the WorkSpace the record names).
    let mut events: BTreeMap<String, LifecycleEvent> = BTreeMap::new();
    for (before, after) in w.store.stream() {
        for event in events_of(before.as_ref(), &after) {
            if let Some(other) = events.insert(event.detail.id.clone(), event.clone())
                && other != event
            {
                return fail(format!("event id {} stands for two events: {other:?} and {event:?}", event.detail.id));
            }
        }
    }
    for record in w.store.records() {
        let theirs: Vec<&LifecycleEvent> =
            events.values().filter(|e| e.detail.employee_id.as_deref() == Some(record.employee_id.as_str())).collect();
        let said = |state: EmployeeState| theirs.iter().any(|e| e.detail.state == Some(state.as_str()));
        let announced = match record.state {
            EmployeeState::Active => {
                theirs.iter().any(|e| e.detail.state == Some("active") && e.detail.workspace_id == record.workspace_id)
            }
            EmployeeState::Failed | EmployeeState::Revoked => said(record.state),
            EmployeeState::Terminated => {
                said(EmployeeState::Terminated) || !theirs.iter().any(|e| e.kind == EventKind::Requested)
            }
            _ => true,
        };
        if !announced {
            let told: Vec<&str> = theirs.iter().map(|e| e.detail.id.as_str()).collect();
            return fail(format!(
                "{} ends {} ({:?}) but no lifecycle event says so: {told:?}",
                record.employee_id,
                record.state.as_str(),
                record.workspace_id
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- the runner

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

/// Named regressions: minimal histories a run once found (each failed before its fix), kept as
/// scenarios.
fn regressions() -> Vec<(&'static str, Scenario)> {
    use Action::{Crash, Deliver, Reconcile, Send, Tick};
    let ev = |kind, occurred_s: i64, effective_days, target| Event {
        employee: 0,
        kind,
        occurred: occurred_s * 1000,
        effective_days,
        target,
    };
    let hr = |max| Deliver { queue: Queue::Hr, max, repeat: false };
    let requests = Deliver { queue: Queue::Requests, max: 10, repeat: false };
    let terminations = Deliver { queue: Queue::Terminations, max: 10, repeat: false };
    let one = |fifo, events, actions| Scenario {
        fifo,
        names: vec![0],
        events,
        actions,
        seed: 1,
        grace: false,
        guard: false,
        late_delete: None,
    };
    let active = vec![Send, hr(1), requests.clone(), Tick(10_000), Reconcile];
    vec![
        (
            "a move delivered before the leave and the rehire that happened before it (found with seed 10)",
            one(
                true,
                vec![
                    ev(Kind::Join, 3600, None, 0),
                    ev(Kind::MoveDepartment, 3900, None, 0),
                    ev(Kind::Leave, 3700, None, 0),
                    ev(Kind::Join, 3800, None, 0),
                ],
                [active.clone(), vec![Send, hr(1), Send, hr(1), Send, hr(1)]].concat(),
            ),
        ),
        (
            "a future-dated leave that applies while a migration is under way (found with seed 5)",
            Scenario {
                grace: true,
                seed: 0,
                ..one(
                    false,
                    vec![
                        ev(Kind::Join, 3660, None, 0),
                        ev(Kind::Leave, 3780, Some(20), 0),
                        ev(Kind::MoveDepartment, 3900, None, 0),
                    ],
                    vec![Send, Send, hr(3), requests.clone(), Tick(60_000), Reconcile],
                )
            },
        ),
        (
            "a move applied, its line lost to a crash, then a newer join skipped (found with seed 33)",
            one(
                false,
                vec![
                    ev(Kind::Join, 3780, None, 0),
                    ev(Kind::MoveDepartment, 3900, None, 0),
                    ev(Kind::Join, 3960, None, 0),
                ],
                [active.clone(), vec![Send, Crash { after: 3 }, hr(1), Send, hr(1)]].concat(),
            ),
        ),
        (
            "a crash between completing the claim and writing the history line",
            one(true, vec![ev(Kind::Join, 3600, None, 0)], vec![Crash { after: 7 }, Send, hr(1)]),
        ),
        (
            "a duplicate delivery in the same millisecond",
            one(
                false,
                vec![ev(Kind::Join, 3600, None, 0)],
                vec![Send, Deliver { queue: Queue::Hr, max: 1, repeat: true }, hr(1)],
            ),
        ),
        (
            "a rehire that overtakes its own leave on a standard queue",
            one(
                false,
                vec![ev(Kind::Join, 3600, None, 0), ev(Kind::Join, 3800, None, 0), ev(Kind::Leave, 3700, None, 0)],
                [active.clone(), vec![Send, hr(1), Send, hr(1)]].concat(),
            ),
        ),
        (
            "a leave that withdraws a pending rehire",
            one(
                true,
                vec![
                    ev(Kind::Join, 3600, None, 0),
                    ev(Kind::Leave, 3700, None, 0),
                    ev(Kind::Join, 3800, None, 0),
                    ev(Kind::Leave, 3900, None, 0),
                ],
                [active.clone(), vec![Send, hr(1), Send, hr(1), Send, hr(1), terminations.clone()]].concat(),
            ),
        ),
        (
            "a crash between the join's write and its request, then a newer join",
            one(
                false,
                vec![ev(Kind::Join, 3600, None, 0), ev(Kind::Join, 3700, None, 0)],
                vec![Send, Crash { after: 3 }, hr(1), Send, hr(1)],
            ),
        ),
        (
            "a crash in the middle of a cancel",
            one(
                false,
                vec![ev(Kind::Join, 3600, Some(20), 0), ev(Kind::Cancel, 3700, None, 0)],
                vec![Send, hr(1), Send, Crash { after: 4 }, hr(1)],
            ),
        ),
        (
            "a leave rescinded within its grace period, a crash among namesakes",
            Scenario {
                fifo: false,
                grace: true,
                guard: false,
                late_delete: None,
                names: vec![0, 0, 0, 1],
                events: [
                    (2, Kind::Join, 3600, 0),
                    (2, Kind::Join, 3660, 0),
                    (0, Kind::Join, 3720, 0),
                    (2, Kind::Leave, 3780, 0),
                    (0, Kind::Join, 3840, 0),
                    (2, Kind::Cancel, 3900, 3),
                    (0, Kind::Join, 3960, 0),
                    (0, Kind::Join, 4020, 0),
                    (3, Kind::Join, 4080, 0),
                ]
                .into_iter()
                .map(|(employee, kind, s, target)| Event { employee, ..ev(kind, s, None, target) })
                .collect(),
                actions: vec![
                    Send,
                    Send,
                    Deliver { queue: Queue::Hr, max: 1, repeat: true },
                    hr(2),
                    Deliver { queue: Queue::Requests, max: 2, repeat: false },
                    Send,
                    Send,
                    Send,
                    Send,
                    Send,
                    Send,
                    Tick(60_000),
                    Reconcile,
                    Send,
                    hr(2),
                    Crash { after: 9 },
                    hr(5),
                    Tick(180_000),
                    Deliver { queue: Queue::Requests, max: 1, repeat: false },
                    hr(3),
                ],
                seed: 18432778064645965400,
            },
        ),
        (
            "a cancel of one of two leaves within the grace period (the other one older and stale)",
            Scenario {
                fifo: false,
                grace: true,
                guard: false,
                late_delete: None,
                names: vec![0, 0],
                events: [
                    (1, Kind::Join, 3600, 0),
                    (0, Kind::Join, 3660, 0),
                    (1, Kind::Leave, 3762, 0),
                    (1, Kind::Leave, 3761, 0),
                    (0, Kind::Join, 3840, 0),
                    (1, Kind::Cancel, 3900, 2),
                ]
                .into_iter()
                .map(|(employee, kind, s, target)| Event { employee, ..ev(kind, s, None, target) })
                .collect(),
                actions: vec![
                    Send,
                    hr(1),
                    Deliver { queue: Queue::Requests, max: 1, repeat: false },
                    Tick(60_000),
                    Send,
                    Send,
                    Reconcile,
                    hr(1),
                ],
                seed: 0,
            },
        ),
        (
            "a rescinded leave with a rejoin skipped as stale behind it and an older leave held",
            Scenario {
                fifo: false,
                grace: true,
                guard: false,
                late_delete: None,
                names: vec![0, 1, 0],
                events: [
                    (1, Kind::Join, 3600, None, 0),
                    (2, Kind::Leave, 3660, None, 0),
                    (0, Kind::Join, 3720, None, 0),
                    (1, Kind::Leave, 3780, Some(20), 0),
                    (1, Kind::Join, 3840, None, 0),
                    (2, Kind::Join, 3900, None, 0),
                    (1, Kind::Leave, 3960, None, 0),
                    (1, Kind::Cancel, 4020, None, 6),
                ]
                .into_iter()
                .map(|(employee, kind, s, days, target)| Event { employee, ..ev(kind, s, days, target) })
                .collect(),
                actions: vec![
                    Send,
                    Send,
                    Send,
                    Send,
                    hr(3),
                    Deliver { queue: Queue::Requests, max: 2, repeat: false },
                    Send,
                    Send,
                    Send,
                    Tick(60_000),
                    Send,
                    Reconcile,
                ],
                seed: 13239785698791732686,
            },
        ),
        (
            "a rehire's request that finds the old WorkSpace still listed while it is terminated",
            Scenario {
                fifo: false,
                grace: false,
                guard: false,
                late_delete: None,
                names: vec![0, 0, 0],
                events: [
                    (2, Kind::Join, 3600),
                    (0, Kind::Join, 3660),
                    (0, Kind::Join, 3720),
                    (2, Kind::Leave, 3780),
                    (0, Kind::Join, 3840),
                    (2, Kind::Join, 3900),
                ]
                .into_iter()
                .map(|(employee, kind, s)| Event { employee, ..ev(kind, s, None, 0) })
                .collect(),
                actions: vec![
                    Send,
                    Send,
                    Send,
                    hr(1),
                    Deliver { queue: Queue::Requests, max: 1, repeat: false },
                    Send,
                    hr(3),
                    Send,
                    Send,
                    Deliver { queue: Queue::Terminations, max: 1, repeat: false },
                    Reconcile,
                    hr(1),
                    Tick(5_000),
                    Deliver { queue: Queue::Requests, max: 1, repeat: false },
                ],
                seed: 0,
            },
        ),
        (
            "a WorkSpace from a crashed create, found after the leave and a refused rejoin",
            Scenario {
                fifo: false,
                grace: false,
                guard: false,
                late_delete: None,
                names: vec![0, 2],
                events: [
                    (0, Kind::Join, 3600),
                    (1, Kind::Join, 3660),
                    (1, Kind::Leave, 3720),
                    (0, Kind::Join, 3780),
                    (1, Kind::Join, 3840),
                ]
                .into_iter()
                .map(|(employee, kind, s)| Event { employee, ..ev(kind, s, None, 0) })
                .collect(),
                actions: vec![
                    Send,
                    Send,
                    hr(1),
                    Crash { after: 2 },
                    Send,
                    Deliver { queue: Queue::Requests, max: 1, repeat: false },
                    Action::Break { name: 2, how: Breakage::DirectoryRefused },
                    hr(1),
                    Deliver { queue: Queue::Terminations, max: 1, repeat: false },
                ],
                seed: 0,
            },
        ),
        ("a cancel naming itself", one(false, vec![ev(Kind::Cancel, 3600, None, 0)], vec![Send, hr(1)])),
        (
            "a leave's termination request and then its rehire's lost to crashes",
            Scenario {
                fifo: false,
                grace: false,
                guard: false,
                late_delete: None,
                names: vec![0, 1],
                events: [
                    (0, Kind::Join, 3600),
                    (1, Kind::Join, 3660),
                    (0, Kind::Join, 3720),
                    (0, Kind::Join, 3780),
                    (1, Kind::Leave, 3840),
                    (0, Kind::Join, 3900),
                    (0, Kind::Join, 3960),
                    (1, Kind::Join, 4020),
                ]
                .into_iter()
                .map(|(employee, kind, s)| Event { employee, ..ev(kind, s, None, 0) })
                .collect(),
                actions: vec![
                    Send,
                    Send,
                    Send,
                    Send,
                    Reconcile,
                    Crash { after: 1 },
                    hr(2),
                    Tick(76_000),
                    Tick(104_000),
                    hr(4),
                    Send,
                    Tick(180_000),
                    Deliver { queue: Queue::Requests, max: 3, repeat: false },
                    Crash { after: 4 },
                    hr(2),
                    Send,
                    Send,
                    Send,
                    Crash { after: 5 },
                    hr(1),
                ],
                seed: 6050653744518293618,
            },
        ),
        (
            "a crash after CreateWorkspaces, then the leave",
            one(
                false,
                vec![ev(Kind::Join, 3600, None, 0), ev(Kind::Leave, 3700, None, 0)],
                vec![Send, hr(1), Crash { after: 2 }, requests.clone(), Send, hr(1), terminations, requests],
            ),
        ),
    ]
}

fn main() {
    shared::telemetry::mute_metrics();
    let started = Instant::now();
    let histories: u32 = std::env::var("MODEL_HISTORIES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let seed: u64 = std::env::var("MODEL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let rt = runtime();
    for (name, s) in regressions() {
        if let Err(e) = rt.block_on(run(&s)) {
            eprintln!("regression {name} failed: {e}\nscenario:{s:?}");
            std::process::exit(1);
        }
    }
    let threads = 2u32;
    let results: Vec<Result<Stats, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let cases = histories / threads + u32::from(t < histories % threads);
                    let mut bytes = [0u8; 32];
                    bytes[..8].copy_from_slice(&seed.to_le_bytes());
                    bytes[8] = t as u8;
                    let config =
                        Config { cases, failure_persistence: None, max_shrink_iters: 5_000, ..Config::default() };
                    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
                    let rt = runtime();
                    let stats = std::cell::Cell::new(Stats::default());
                    let outcome = runner.run(&scenario(), |s| {
                        let result = rt.block_on(run(&s)).map_err(TestCaseError::fail)?;
                        let mut total = stats.get();
                        total.add(result);
                        stats.set(total);
                        Ok(())
                    });
                    match outcome {
                        Ok(()) => Ok(stats.get()),
                        Err(TestError::Fail(reason, s)) => {
                            Err(format!("{reason}\nminimal failing history (seed {seed}):{s:?}"))
                        }
                        Err(TestError::Abort(reason)) => Err(format!("aborted: {reason}")),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a runner panicked".into()))).collect()
    });
    let mut total = Stats::default();
    for result in results {
        match result {
            Ok(stats) => total.add(stats),
            Err(e) => {
                eprintln!("model test failed: {e}");
                std::process::exit(1);
            }
        }
    }
    println!(
        "model: {} histories ({} named regressions), {} HR events ({} leaves with a grace period, {} WorkSpaces given back; {} moves applied, {} WorkSpaces migrated, {} relocated to another directory and {} user volumes grown by them), {} deliveries, {} crashes injected, {} requests handed back, {} reconciler runs; {} audits, {} WorkSpaces deleted by an administrator, {} requested again by an audit, {} profiles re-applied, {} orphans terminated; in {:.1} s (seed {seed})",
        total.histories,
        regressions().len(),
        total.events,
        total.revoked,
        total.restored,
        total.moves,
        total.migrated,
        total.relocated,
        total.grown,
        total.deliveries,
        total.crashes,
        total.handed_back,
        total.reconciler_runs,
        total.audits,
        total.deleted,
        total.requested_again,
        total.reapplied,
        total.orphans_terminated,
        started.elapsed().as_secs_f64()
    );
}
