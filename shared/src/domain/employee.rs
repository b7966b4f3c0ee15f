//! An employee's lifecycle record: one per employee, changed only by conditional writes.

use super::profile::Profile;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmployeeState {
    /// Join applied: directory user ensured, WorkSpace request queued.
    Requested,
    /// CreateWorkspaces accepted the request; waiting for AVAILABLE.
    Pending,
    /// The WorkSpace is AVAILABLE.
    Active,
    /// Permanently failed; `failure_code` and `failure_message` say why.
    Failed,
    /// Leave applied; the termination request is queued (the WorkSpace id may not be known yet).
    /// With a grace period (`grace_until_ms`), the request revokes access first.
    Leaving,
    /// Access revoked: the WorkSpace is in ADMIN_MAINTENANCE (no one can log in) and the
    /// directory user disabled where the backend can; terminated once `grace_until_ms` passes.
    Revoked,
    /// A rescinded leave or a rehire within the grace period: the same WorkSpace is being given
    /// back (AVAILABLE again, the directory user enabled).
    Restoring,
    /// A move applied: the WorkSpace is being changed, one call at a time, toward `profile`
    /// (`moving` says which move and what it waits on); active again once it matches.
    Moving,
    /// TerminateWorkspaces accepted; waiting for the id to disappear.
    Terminating,
    /// The WorkSpace is confirmed gone (or there never was one).
    Terminated,
}

impl EmployeeState {
    /// Every state, in the order of the lifecycle.
    pub const ALL: [EmployeeState; 10] = [
        EmployeeState::Requested,
        EmployeeState::Pending,
        EmployeeState::Active,
        EmployeeState::Failed,
        EmployeeState::Leaving,
        EmployeeState::Revoked,
        EmployeeState::Restoring,
        EmployeeState::Moving,
        EmployeeState::Terminating,
        EmployeeState::Terminated,
    ];

    /// The CloudWatch metric of how many employees are in the state (the auditor counts them).
    pub fn metric_name(self) -> &'static str {
        match self {
            EmployeeState::Requested => "EmployeesRequested",
            EmployeeState::Pending => "EmployeesPending",
            EmployeeState::Active => "EmployeesActive",
            EmployeeState::Failed => "EmployeesFailed",
            EmployeeState::Leaving => "EmployeesLeaving",
            EmployeeState::Revoked => "EmployeesRevoked",
            EmployeeState::Restoring => "EmployeesRestoring",
            EmployeeState::Moving => "EmployeesMoving",
            EmployeeState::Terminating => "EmployeesTerminating",
            EmployeeState::Terminated => "EmployeesTerminated",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EmployeeState::Requested => "requested",
            EmployeeState::Pending => "pending",
            EmployeeState::Active => "active",
            EmployeeState::Failed => "failed",
            EmployeeState::Leaving => "leaving",
            EmployeeState::Revoked => "revoked",
            EmployeeState::Restoring => "restoring",
            EmployeeState::Moving => "moving",
            EmployeeState::Terminating => "terminating",
            EmployeeState::Terminated => "terminated",
        }
    }

    /// States the reconciler watches through the sparse work index.
    pub fn needs_watching(self) -> bool {
        matches!(
            self,
            EmployeeState::Pending | EmployeeState::Terminating | EmployeeState::Revoked | EmployeeState::Moving
        )
    }

    /// States in which the employee has (or is getting) their WorkSpace and keeps it.
    pub fn stays(self) -> bool {
        matches!(
            self,
            EmployeeState::Requested
                | EmployeeState::Pending
                | EmployeeState::Active
                | EmployeeState::Restoring
                | EmployeeState::Moving
        )
    }

    /// States in which a leave is under way.
    pub fn is_leaving(self) -> bool {
        matches!(self, EmployeeState::Leaving | EmployeeState::Terminating | EmployeeState::Revoked)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmployeeRecord {
    pub employee_id: String,
    pub state: EmployeeState,
    /// Incremented by every write; writes are conditional on the version read.
    pub version: u64,
    /// Source time of the last event applied: older events are stale.
    pub last_event_ms: i64,
    pub last_event_id: String,
    pub username: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    pub department: Option<String>,
    pub profile_name: Option<String>,
    pub profile: Option<Profile>,
    /// The join event whose WorkSpace is being provisioned.
    pub request_event_id: Option<String>,
    pub workspace_id: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub state_since_ms: i64,
    pub updated_ms: i64,
    /// The leave event being applied.
    #[serde(default)]
    pub leave_event_id: Option<String>,
    #[serde(default)]
    pub terminate_requested_ms: Option<i64>,
    #[serde(default)]
    pub terminated_ms: Option<i64>,
    /// A rehire that waits for the previous WorkSpace to be confirmed gone.
    #[serde(default)]
    pub rehire_pending: bool,
    /// Left while a move was under way whose new WorkSpace the record does not know (a
    /// migration's answer lost in a crash or a failed write): once the leave's WorkSpace is gone,
    /// the user name's WorkSpace is looked up and terminated too, so no migration's target
    /// outlives its leaver.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sweep_when_gone: bool,
    /// WorkSpaces this employee had before, confirmed terminated.
    #[serde(default)]
    pub previous_workspaces: Vec<PastWorkspace>,
    /// Set when the employee has been in its state past the deadline.
    #[serde(default)]
    pub stuck_since_ms: Option<i64>,
    /// A leave with a grace period: access is revoked at once, the WorkSpace terminated after
    /// this time. `None`: terminated at once.
    #[serde(default)]
    pub grace_until_ms: Option<i64>,
    /// When the WorkSpace was put in ADMIN_MAINTENANCE for this leave.
    #[serde(default)]
    pub access_revoked_ms: Option<i64>,
    /// The leave disabled the directory user: a restore enables it again.
    #[serde(default)]
    pub user_disabled: bool,
    /// The rehire or cancel that is restoring access within the grace period.
    #[serde(default)]
    pub restore_event_id: Option<String>,
    /// The mass-termination guard holds this leaver's termination (access is revoked meanwhile)
    /// until an operator releases it (`hrws guard release`) or HR cancels the leave.
    #[serde(default)]
    pub held_since_ms: Option<i64>,
    #[serde(default)]
    pub hold_reason: Option<String>,
    /// Released by an operator: the guard does not count this termination.
    #[serde(default)]
    pub guard_released: bool,
    /// The joins and leaves seen (applied or skipped), by HR's time, the latest `SEEN_KEPT`:
    /// what the employee's latest word is once a leave is rescinded.
    #[serde(default)]
    pub seen: Vec<SeenEvent>,
    /// The leave a cancel rescinded: a redelivery of it (its line lost to a crash) is skipped.
    #[serde(default)]
    pub rescinded_event_id: Option<String>,
    /// Why a grace period was cut short (access could not be revoked, so the WorkSpace went).
    #[serde(default)]
    pub grace_note: Option<String>,
    /// The move being applied (state `moving`, or waiting for the WorkSpace being created or
    /// given back to be AVAILABLE).
    #[serde(default)]
    pub moving: Option<MoveWork>,
    /// The last move applied (HR's time and id): an older move is stale. Moves have their own
    /// clock so that no move ever makes a leave stale.
    #[serde(default)]
    pub last_move: Option<SeenEvent>,
    /// How the last move ended when it did not reach its profile (kept for the operator).
    #[serde(default)]
    pub move_note: Option<String>,
    /// The changes made to the WorkSpace that its cooldowns count from.
    #[serde(default)]
    pub clocks: WorkspaceClocks,
    /// Directories the employee moved away from, where their user still exists: a leave
    /// disables it there too.
    #[serde(default)]
    pub former_directories: Vec<String>,
}

/// A move under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MoveWork {
    pub event_id: String,
    /// When the reconciler next looks (a cooldown ends); `None`: at every run.
    #[serde(default)]
    pub due_ms: Option<i64>,
    /// What it waits on, as the operator reads it.
    #[serde(default)]
    pub waiting: Option<String>,
    /// MigrateWorkspace accepted: the new WorkSpace id. The record keeps the source id until
    /// the target is AVAILABLE (if the migration fails, the service keeps the source).
    #[serde(default)]
    pub migrating_to: Option<String>,
    #[serde(default)]
    pub migrate_asked_ms: Option<i64>,
    /// Since when it waits for the WorkSpace's state (flagged stuck past the deadline).
    #[serde(default)]
    pub waiting_since_ms: Option<i64>,
    /// A move to another directory: a new WorkSpace there, the old one terminated once the new
    /// one is AVAILABLE.
    #[serde(default)]
    pub relocation: Option<Relocation>,
}

/// A move to another directory. A WorkSpace never changes directory: a new one is created there
/// (the record keeps the old one, and its profile, until the new one is AVAILABLE), then the
/// record switches to it and the old one is terminated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relocation {
    /// The directory it leaves (the old WorkSpace's).
    pub from_directory_id: String,
    pub profile_name: String,
    pub profile: Profile,
    #[serde(default)]
    pub department: Option<String>,
    /// The new WorkSpace, once CreateWorkspaces made it (until the switch).
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// The WorkSpace to terminate: the old one after the switch, or a new one that ended in
    /// ERROR (the employee then keeps the old one).
    #[serde(default)]
    pub discard: Option<String>,
    /// TerminateWorkspaces accepted `discard`.
    #[serde(default)]
    pub discard_terminating: bool,
}

impl MoveWork {
    /// The other WorkSpace a move has made or is about to drop: a migration's new one, a
    /// relocation's new one, or the one a relocation terminates. A leave terminates it too.
    pub fn other_workspace(&self) -> Option<&str> {
        let relocation = self.relocation.as_ref();
        self.migrating_to
            .as_deref()
            .or(relocation.and_then(|r| r.workspace_id.as_deref()))
            .or(relocation.and_then(|r| r.discard.as_deref()))
    }
}

impl MoveWork {
    pub fn new(event_id: &str) -> Self {
        Self {
            event_id: event_id.to_owned(),
            due_ms: None,
            waiting: None,
            migrating_to: None,
            migrate_asked_ms: None,
            waiting_since_ms: None,
            relocation: None,
        }
    }
}

/// When the WorkSpace was launched and last changed, as the pipeline asked (the service does
/// not report it; its cooldowns count from it, WORKSPACES-FACTS §1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceClocks {
    /// When this WorkSpace id was created (a migration launches a new one). `None` on records
    /// from before moves: the time the employee became active stands in (later, so safe).
    #[serde(default)]
    pub launched_ms: Option<i64>,
    #[serde(default)]
    pub last_volume_ms: Option<i64>,
    #[serde(default)]
    pub last_compute_up_ms: Option<i64>,
    #[serde(default)]
    pub last_compute_down_ms: Option<i64>,
}

impl EmployeeRecord {
    /// The time the last applied event orders by. Event times are bounded when they arrive (never
    /// later than now plus the clock-skew allowance), so a stored time beyond the record's last
    /// write plus that allowance can only come from an earlier version that took times as given
    /// (`occurred_at: 2100-…`): such a time counts only as the last write, so it can never
    /// outrank a later real event, a leave above all.
    pub fn order_ms(&self, clock_skew_ms: i64) -> i64 {
        if self.last_event_ms > self.updated_ms.saturating_add(clock_skew_ms) {
            self.updated_ms
        } else {
            self.last_event_ms
        }
    }

    /// A record not yet written: version 0, no state of its own until the caller sets one.
    pub fn new(employee_id: &str, now: i64) -> Self {
        Self {
            employee_id: employee_id.to_owned(),
            state: EmployeeState::Requested,
            version: 0,
            last_event_ms: 0,
            last_event_id: String::new(),
            username: None,
            given_name: None,
            surname: None,
            email: None,
            department: None,
            profile_name: None,
            profile: None,
            request_event_id: None,
            workspace_id: None,
            failure_code: None,
            failure_message: None,
            state_since_ms: now,
            updated_ms: now,
            leave_event_id: None,
            terminate_requested_ms: None,
            terminated_ms: None,
            rehire_pending: false,
            sweep_when_gone: false,
            previous_workspaces: Vec::new(),
            stuck_since_ms: None,
            grace_until_ms: None,
            access_revoked_ms: None,
            user_disabled: false,
            restore_event_id: None,
            rescinded_event_id: None,
            held_since_ms: None,
            hold_reason: None,
            guard_released: false,
            seen: Vec::new(),
            grace_note: None,
            moving: None,
            last_move: None,
            move_note: None,
            clocks: WorkspaceClocks::default(),
            former_directories: Vec::new(),
        }
    }

    /// When the reconciler next needs to look at this employee (the work index's sort key): at
    /// once while pending or terminating, when the grace period ends while access is revoked.
    pub fn watch_due_ms(&self) -> Option<i64> {
        if self.held_since_ms.is_some() && matches!(self.state, EmployeeState::Leaving | EmployeeState::Revoked) {
            // Listed for the operator (`hrws guard release`), never due for the reconciler.
            return Some(HELD_DUE_MS);
        }
        match self.state {
            EmployeeState::Revoked => Some(self.grace_until_ms.unwrap_or(self.state_since_ms)),
            EmployeeState::Moving => Some(self.moving.as_ref().and_then(|m| m.due_ms).unwrap_or(self.state_since_ms)),
            s if s.needs_watching() => Some(self.state_since_ms),
            _ => None,
        }
    }
}

/// The work index's time for an employee whose termination the guard holds: later than any
/// reconciler run (13 digits, as the index's keys).
pub const HELD_DUE_MS: i64 = 9_999_999_999_999;

/// A join or leave seen for an employee: HR's time, its id, and whether it was a join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenEvent {
    pub occurred_ms: i64,
    pub event_id: String,
    pub join: bool,
    /// A move applied (not a join or leave): kept so that its redelivery, its line lost to a
    /// crash, is known as applied even once a later event has made it look stale.
    #[serde(default)]
    pub moved: bool,
}

/// How many seen events a record keeps (the latest): far more than a person's joins and leaves.
pub const SEEN_KEPT: usize = 32;

impl EmployeeRecord {
    /// Notes a join or leave as seen (once), keeping the latest `SEEN_KEPT`.
    pub fn note_seen(&mut self, occurred_ms: i64, event_id: &str, join: bool) {
        if self.seen.iter().any(|e| e.event_id == event_id) {
            return;
        }
        self.seen.push(SeenEvent { occurred_ms, event_id: event_id.to_owned(), join, moved: false });
        self.seen.sort_by(|a, b| (a.occurred_ms, &a.event_id).cmp(&(b.occurred_ms, &b.event_id)));
        if self.seen.len() > SEEN_KEPT {
            self.seen.remove(0);
        }
    }

    pub fn has_seen(&self, event_id: &str) -> bool {
        self.seen.iter().any(|e| e.event_id == event_id)
    }

    /// Notes a move as applied (once), keeping the latest `SEEN_KEPT` events of any kind.
    pub fn note_moved(&mut self, occurred_ms: i64, event_id: &str) {
        if self.has_seen(event_id) {
            return;
        }
        self.seen.push(SeenEvent { occurred_ms, event_id: event_id.to_owned(), join: false, moved: true });
        self.seen.sort_by(|a, b| (a.occurred_ms, &a.event_id).cmp(&(b.occurred_ms, &b.event_id)));
        if self.seen.len() > SEEN_KEPT {
            self.seen.remove(0);
        }
    }

    /// Whether this move was applied (as far as the seen events reach back).
    pub fn moved_by(&self, event_id: &str) -> bool {
        self.last_move.as_ref().is_some_and(|m| m.event_id == event_id)
            || self.seen.iter().any(|e| e.moved && e.event_id == event_id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastWorkspace {
    pub workspace_id: String,
    pub terminated_ms: i64,
}

/// What happened to one HR event, kept in the employee's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    Applied,
    /// Not applied, with a reason: a duplicate, or older than what was applied.
    Skipped,
    /// Breaks the contract or cannot be applied; the reason says which rule.
    Rejected,
    /// Future-dated: held until `effective_at`, then processed again.
    Scheduled,
    /// Not an HR event's outcome: a line of the drift audit (found or resolved), without an event.
    Drift,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Skipped => "skipped",
            EventOutcome::Rejected => "rejected",
            EventOutcome::Scheduled => "scheduled",
            EventOutcome::Drift => "drift",
        }
    }
}

/// The failure code of an employee whose user name belongs to someone else (in the directory,
/// or to another employee of the pipeline).
pub const USER_NAME_TAKEN: &str = "UserNameTaken";

/// A directory user to create. The password is generated by the adapter and never leaves it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUser {
    pub directory_id: String,
    pub user_name: String,
    pub given_name: String,
    pub surname: String,
    pub email: String,
    /// Derived from the HR event: makes the creation idempotent where the API allows it.
    pub client_token: String,
}

/// A user name claimed for an employee: `(directory, user name)`, user names compared without
/// case. At most one employee holds a name; a join writes its record and its claim together.
#[derive(Debug, Clone, PartialEq)]
pub struct NameClaim {
    pub directory_id: String,
    /// As written in the event; the store compares it in lower case.
    pub user_name: String,
    pub employee_id: String,
    /// Taking the name over from an employee confirmed terminated: the holder and the version of
    /// its record that was read (`None`: the holder has no record). The write fails if either
    /// changed meanwhile.
    pub take_over_from: Option<(String, Option<u64>)>,
}

/// A future-dated HR event, held until `effective_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledEvent {
    pub employee_id: String,
    pub event_id: String,
    pub kind: String,
    pub occurred_ms: i64,
    pub effective_ms: i64,
    /// The event as the HR system sent it; posted again when due.
    pub body: String,
}
