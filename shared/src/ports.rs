//! The ports the services talk through. Each has an AWS adapter in `adapters` and, in tests, an
//! in-memory double.

use crate::domain::audit::{AuditSnapshot, AuditState, Drift, Subject};
use crate::domain::employee::{EmployeeRecord, EmployeeState, EventOutcome};
pub use crate::domain::employee::{NameClaim, NewUser, ScheduledEvent, USER_NAME_TAKEN};
use crate::domain::lifecycle_events::LifecycleEvent;
use crate::domain::profile::Profile;
use crate::domain::workspace::{PropertyChange, WorkspaceProperties, WorkspaceState};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

// ---------------------------------------------------------------- errors and time

/// The one rule every port's error follows: whether trying again later can succeed, and the
/// Lambda `errorType` it is reported under (readable in metrics and alarms).
pub trait PortError: std::error::Error {
    fn is_retryable(&self) -> bool;
    /// `<Port>.<What>`, e.g. `Store.Conflict`, `WorkSpaces.Throttled`.
    fn error_type(&self) -> String;
}

/// Where the services read the time: the system clock in Lambda, a manual one in tests.
pub trait Clock: Send + Sync {
    /// UTC milliseconds.
    fn now_ms(&self) -> i64;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::domain::time::Timestamp::now().millis()
    }
}

// ---------------------------------------------------------------- WorkSpaces

/// One item of a CreateWorkspaces call.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateItem {
    pub directory_id: String,
    /// The directory user, or `[UNDEFINED]` for a user-decoupled WorkSpace.
    pub user_name: String,
    pub workspace_name: Option<String>,
    pub profile: Profile,
}

/// A WorkSpace as DescribeWorkspaces (or CreateWorkspaces' PendingRequests) shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceInfo {
    pub workspace_id: String,
    pub directory_id: String,
    pub user_name: String,
    pub workspace_name: Option<String>,
    pub state: WorkspaceState,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The bundle it runs (a migration changes it).
    pub bundle_id: Option<String>,
    /// Current properties; a modification in progress shows once it is done.
    pub properties: Option<WorkspaceProperties>,
}

/// A `FailedRequests` item: the request's directory and user, the code and message verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedCreate {
    pub directory_id: String,
    pub user_name: String,
    pub workspace_name: Option<String>,
    pub code: String,
    pub message: String,
}

/// A TerminateWorkspaces `FailedRequests` item.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedTerminate {
    pub workspace_id: String,
    pub code: String,
    pub message: String,
}

/// One page of the WorkSpaces of a directory, and the token of the next (`None`: the last).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkspacePage {
    pub workspaces: Vec<WorkspaceInfo>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateResponse {
    pub pending: Vec<WorkspaceInfo>,
    pub failed: Vec<FailedCreate>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkspacesError {
    /// Throttled even after the SDK's retries; try the messages again later.
    #[error("WorkSpaces throttled the call: {0}")]
    Throttled(String),
    #[error("WorkSpaces {operation} failed ({code}): {message}")]
    Service { operation: &'static str, code: String, message: String, retryable: bool },
}

impl PortError for WorkspacesError {
    fn is_retryable(&self) -> bool {
        match self {
            WorkspacesError::Throttled(_) => true,
            WorkspacesError::Service { retryable, .. } => *retryable,
        }
    }
    fn error_type(&self) -> String {
        format!("WorkSpaces.{}", self.code())
    }
}

impl WorkspacesError {
    /// The service's error code (`Throttled` once the SDK's retries gave up on throttling).
    pub fn code(&self) -> &str {
        match self {
            WorkspacesError::Throttled(_) => "Throttled",
            WorkspacesError::Service { code, .. } => code,
        }
    }
}

pub trait WorkspacesApi: Send + Sync {
    /// One CreateWorkspaces call with 1 to 25 items.
    fn create_workspaces(
        &self,
        items: &[CreateItem],
    ) -> impl Future<Output = Result<CreateResponse, WorkspacesError>> + Send;
    /// One DescribeWorkspaces call by ids (1 to 25); ids the service does not list are absent.
    fn describe_workspaces(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<WorkspaceInfo>, WorkspacesError>> + Send;
    /// One TerminateWorkspaces call with 1 to 25 ids; the per-item failures.
    fn terminate_workspaces(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<FailedTerminate>, WorkspacesError>> + Send;
    /// One page (up to [`MAX_PER_CALL`](crate::domain::workspace::MAX_PER_CALL)) of the WorkSpaces
    /// of a directory, from `next_token` (`None`: the first page): DescribeWorkspaces by
    /// DirectoryId with Limit and NextToken.
    fn list_workspaces(
        &self,
        directory_id: &str,
        next_token: Option<&str>,
    ) -> impl Future<Output = Result<WorkspacePage, WorkspacesError>> + Send;
    /// The WorkSpace a user has in a directory, if any (DescribeWorkspaces by DirectoryId + UserName).
    fn find_user_workspace(
        &self,
        directory_id: &str,
        user_name: &str,
    ) -> impl Future<Output = Result<Option<WorkspaceInfo>, WorkspacesError>> + Send;
    /// One ModifyWorkspaceProperties call: the WorkSpace is UPDATING for a while, then AVAILABLE
    /// with the change. `OperationInProgressException` while a change runs (retry later).
    fn modify_properties(
        &self,
        workspace_id: &str,
        change: &PropertyChange,
    ) -> impl Future<Output = Result<(), WorkspacesError>> + Send;
    /// One MigrateWorkspace call to another bundle: the id of the WorkSpace that replaces it (the
    /// source id disappears once the target is AVAILABLE).
    fn migrate(
        &self,
        workspace_id: &str,
        bundle_id: &str,
    ) -> impl Future<Output = Result<String, WorkspacesError>> + Send;
    /// ModifyWorkspaceState: ADMIN_MAINTENANCE (`on`, no logins, data kept) or back to AVAILABLE.
    fn set_admin_maintenance(
        &self,
        workspace_id: &str,
        on: bool,
    ) -> impl Future<Output = Result<(), WorkspacesError>> + Send;
    /// DescribeTags of a WorkSpace (DescribeWorkspaces does not return tags).
    fn tags(
        &self,
        workspace_id: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, WorkspacesError>> + Send;
    /// CreateTags: adds or overwrites these tags.
    fn create_tags(
        &self,
        workspace_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), WorkspacesError>> + Send;
    /// DeleteTags: removes these keys (absent ones are ignored).
    fn delete_tags(
        &self,
        workspace_id: &str,
        keys: &[String],
    ) -> impl Future<Output = Result<(), WorkspacesError>> + Send;
}

/// WorkSpaces named in one read of many WorkSpaces' tags ([`WorkspaceTags::tags_of`]): the
/// Resource Groups Tagging API's `ResourceARNListForGet` takes 1 to 100.
pub const MAX_TAGGED_PER_READ: usize = 100;

/// Many WorkSpaces' tags in one call: the Resource Groups Tagging API's GetResources by ARN,
/// where WorkSpaces' own DescribeTags reads one WorkSpace per call against the same 2 calls/s as
/// every other WorkSpaces call. Its own service, with its own rate.
pub trait WorkspaceTags: Send + Sync {
    /// The tags of up to [`MAX_TAGGED_PER_READ`] WorkSpaces, by id. A WorkSpace that does not
    /// exist, or has no tags, is left out (as GetResources leaves it out): one left out is asked
    /// with DescribeTags, which tells the two apart. How soon a tag change shows here AWS does
    /// not say; what must not be missed is checked elsewhere too (README, "Only what it manages").
    fn tags_of(
        &self,
        workspace_ids: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, BTreeMap<String, String>>, WorkspacesError>> + Send;
}

// ---------------------------------------------------------------- directory users

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserOutcome {
    /// The user was disabled (leave, with `disable` configured).
    Disabled,
    /// A disabled user was enabled again.
    Enabled,
    Created,
    /// The user already existed and is the same person (same e-mail / names).
    AlreadyExisted,
    /// Nothing is created: users come from the organisation's directory (AD Connector).
    ManagedElsewhere,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// A different person already holds the user name.
    #[error("user name {user_name} already belongs to someone else ({detail})")]
    NameTaken { user_name: String, detail: String },
    /// The request breaks a rule of the directory; retrying will not help.
    #[error("the directory refused the user ({code}): {message}")]
    Rejected { code: String, message: String },
    /// Throttling, unavailability, network: try again later.
    #[error("the directory is unavailable ({code}): {message}")]
    Unavailable { code: String, message: String },
}

impl PortError for DirectoryError {
    fn is_retryable(&self) -> bool {
        matches!(self, DirectoryError::Unavailable { .. })
    }
    fn error_type(&self) -> String {
        format!("Directory.{}", self.code())
    }
}

impl DirectoryError {
    pub fn code(&self) -> &str {
        match self {
            DirectoryError::NameTaken { .. } => USER_NAME_TAKEN,
            DirectoryError::Rejected { code, .. } | DirectoryError::Unavailable { code, .. } => code,
        }
    }
}

pub trait DirectoryUsers: Send + Sync {
    /// Makes sure the user exists in the directory.
    fn ensure_user(&self, user: &NewUser) -> impl Future<Output = Result<UserOutcome, DirectoryError>> + Send;
    /// The user names the backend accepts (length and characters), checked when an event arrives.
    fn user_name_rules(&self) -> crate::domain::names::UserNameRules;
    /// Disables the user (sign-in blocked, data kept), where the backend can.
    fn disable_user(
        &self,
        directory_id: &str,
        user_name: &str,
    ) -> impl Future<Output = Result<UserOutcome, DirectoryError>> + Send;
    /// Enables a user a leave disabled (a rehire, a rescinded leave). DS Data has no EnableUser:
    /// Directory Service ResetUserPassword enables a disabled user ("Disabled users will become
    /// enabled"), with a new random password no one is told, as a joiner's.
    fn enable_user(
        &self,
        directory_id: &str,
        user_name: &str,
    ) -> impl Future<Output = Result<UserOutcome, DirectoryError>> + Send;
    /// Whether `disable_user` does anything with this backend.
    fn can_disable(&self) -> bool;
}

// ---------------------------------------------------------------- state store

/// A claim on an HR event's idempotency record.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub event_id: String,
    pub payload_hash: String,
    /// Random per attempt: only the owner may complete or release the claim.
    pub owner: String,
    pub now_ms: i64,
    /// The claim may be taken over after this (the invocation's deadline).
    pub in_progress_until_ms: i64,
    /// The record is forgotten after this (epoch seconds; the TTL attribute).
    pub expires_at_s: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    Claimed,
    /// The event was processed before.
    Completed {
        same_payload: bool,
        outcome: Option<EventOutcome>,
        reason: Option<String>,
    },
    /// Another invocation is processing it right now.
    InProgress,
}

/// One line of an employee's history (or of the rejected events without an employee).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    pub employee_id: Option<String>,
    pub event_id: Option<String>,
    pub message_id: String,
    pub kind: Option<String>,
    pub occurred_ms: Option<i64>,
    pub outcome: EventOutcome,
    pub reason: String,
    pub recorded_ms: i64,
}

/// How the reason of a redelivery's history line begins.
pub const DUPLICATE: &str = "duplicate:";

impl HistoryEntry {
    /// Whether the line says what finally became of its event (not a hold, not a redelivery).
    pub fn is_final(&self) -> bool {
        self.outcome != EventOutcome::Scheduled && !self.reason.starts_with(DUPLICATE)
    }

    /// What kind of line this is, as a key part: the outcome, or `duplicate` for a redelivery.
    pub fn kind_of_line(&self) -> &'static str {
        if self.outcome == EventOutcome::Skipped && !self.is_final() { "duplicate" } else { self.outcome.as_str() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item changed: re-read and decide again.
    #[error("conflicting update of {0}")]
    Conflict(String),
    /// Our claim was taken over (we ran past the deadline).
    #[error("lost ownership of event {0}")]
    LostClaim(String),
    #[error("stored item {key} is malformed: {detail}")]
    Malformed { key: String, detail: String },
    #[error("DynamoDB {operation} failed: {message}")]
    Unavailable { operation: &'static str, message: String },
    /// DynamoDB refused the request itself (an item or key over its limits): retrying cannot help.
    #[error("DynamoDB {operation} refused the request: {message}")]
    Invalid { operation: &'static str, message: String },
    /// The user name is held by another employee.
    #[error("user name held by employee {holder}")]
    NameHeld { holder: String },
}

impl PortError for StoreError {
    fn is_retryable(&self) -> bool {
        !matches!(self, StoreError::Invalid { .. } | StoreError::Malformed { .. })
    }
    fn error_type(&self) -> String {
        let what = match self {
            StoreError::Conflict(_) => "Conflict",
            StoreError::LostClaim(_) => "LostClaim",
            StoreError::Malformed { .. } => "Malformed",
            StoreError::Unavailable { .. } => "Unavailable",
            StoreError::Invalid { .. } => "Invalid",
            StoreError::NameHeld { .. } => "NameHeld",
        };
        format!("Store.{what}")
    }
}

// ---------------------------------------------------------------- termination guard

/// The most terminations one window of the guard can admit: the keys it admitted are kept in one
/// DynamoDB item (400 KB), each at most as long as an event id.
pub const MAX_TERMINATIONS_PER_WINDOW: u32 = 1_000;

/// The mass-termination guard's setting, shared by everything that terminates (the terminator,
/// the audit's orphan action): more than `limit` terminations within a window of `window_ms`
/// trips it, and the rest are held until an operator releases them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    pub limit: u32,
    pub window_ms: i64,
}

/// What the mass-termination guard has done (see [`StateStore::admit_terminations`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardStatus {
    /// From the first refusal until an operator resets the guard: every termination is held.
    pub tripped_since_ms: Option<i64>,
    /// The key whose refusal tripped it.
    pub tripped_by: Option<String>,
    /// Terminations refused since it tripped (a refused request asked again counts again).
    pub held: u64,
    /// The latest refusal.
    pub last_held_ms: Option<i64>,
    /// The fixed window the admissions are counted in: its start and length (`None` until the
    /// guard first counts).
    pub window_start_ms: Option<i64>,
    pub window_ms: Option<i64>,
    /// Terminations admitted in that window (since the reset, when one came in it).
    pub admitted_in_window: u32,
    pub last_reset_ms: Option<i64>,
}

impl GuardStatus {
    pub fn is_tripped(&self) -> bool {
        self.tripped_since_ms.is_some()
    }

    /// Admitted in the window that holds `now_ms`: none once the stored window has ended.
    pub fn admitted_at(&self, now_ms: i64) -> u32 {
        match (self.window_start_ms, self.window_ms) {
            (Some(start), Some(length)) if now_ms < start.saturating_add(length) => self.admitted_in_window,
            _ => 0,
        }
    }
}

/// Where a listing of due held events stands. Pages are read from the index's shards in turn,
/// each shard oldest first, so a flood of events due in one shard does not hold back those due in
/// the others. Per shard, the key of the last event read (the store's own, opaque to callers).
/// The default starts every shard at its top.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueCursor {
    /// The shard the next page comes from.
    pub(crate) turn: u32,
    /// Where each started shard stands.
    pub(crate) after: BTreeMap<u32, BTreeMap<String, String>>,
    /// Shards read to their end.
    pub(crate) done: BTreeSet<u32>,
}

impl DueCursor {
    /// After a page from `shard`: where it stands (`None`: read to its end), and the next shard
    /// in turn that is not done (`None` when every one of `shards` is).
    pub(crate) fn advance(mut self, shard: u32, stands: Option<BTreeMap<String, String>>, shards: u32) -> Option<Self> {
        match stands {
            Some(key) => {
                self.after.insert(shard, key);
            }
            None => {
                self.after.remove(&shard);
                self.done.insert(shard);
            }
        }
        let next = (1..=shards).map(|step| (shard + step) % shards).find(|s| !self.done.contains(s))?;
        self.turn = next;
        Some(self)
    }
}

/// One page of due held events, and where the next starts (`None`: nothing more is due).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DuePage {
    pub events: Vec<ScheduledEvent>,
    pub next: Option<DueCursor>,
}

/// The start of the guard's fixed window of `window_ms` (> 0) that holds `now_ms`: windows start
/// at multiples of their length, so every invocation counts in the same one.
pub fn guard_window_start(now_ms: i64, window_ms: i64) -> i64 {
    now_ms.div_euclid(window_ms) * window_ms
}

pub trait StateStore: Send + Sync {
    /// Claims the event, or says who has it. Idempotent for its owner: a claim made again by the
    /// same owner (a retry whose first reply was lost) is `Claimed`.
    fn claim(&self, claim: &Claim) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send;
    /// Marks the claim completed and writes `line` (the delivery's history line), both or
    /// neither: a duplicate that finds the claim completed finds the line too. Only while `owner`
    /// holds the claim (or has completed it with this outcome already: a retry whose reply was
    /// lost).
    fn complete(
        &self,
        event_id: &str,
        owner: &str,
        outcome: EventOutcome,
        reason: &str,
        line: Option<&HistoryEntry>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes the claim so a retry can run; only while `owner` holds it (nothing held is fine).
    fn release(&self, event_id: &str, owner: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A strongly consistent read.
    fn employee(&self, employee_id: &str) -> impl Future<Output = Result<Option<EmployeeRecord>, StoreError>> + Send;
    /// Strongly consistent reads of many employees (missing ones are absent).
    fn employees(&self, ids: &[String]) -> impl Future<Output = Result<Vec<EmployeeRecord>, StoreError>> + Send;
    /// Writes the record if the stored version is `expected_version` (`None`: must not exist).
    fn save_employee(
        &self,
        record: &EmployeeRecord,
        expected_version: Option<u64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Writes a joiner's record and its user-name claim in one transaction: `NameHeld` if another
    /// employee holds the name, `Conflict` if the record's version changed.
    fn save_joiner(
        &self,
        record: &EmployeeRecord,
        expected_version: Option<u64>,
        claim: &NameClaim,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The employee holding a user name in a directory, if any (consistent read).
    fn name_holder(
        &self,
        directory_id: &str,
        user_name: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    fn record_history(&self, entry: &HistoryEntry) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn history(&self, employee_id: &str) -> impl Future<Output = Result<Vec<HistoryEntry>, StoreError>> + Send;
    /// Employees the reconciler watches in `state` that need looking at by `due_by_ms`
    /// (`EmployeeRecord::watch_due_ms`; from the sparse index: eventually consistent).
    fn watched(
        &self,
        state: EmployeeState,
        due_by_ms: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Holds a future-dated event until it is due (idempotent per event).
    fn schedule(&self, event: &ScheduledEvent) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// At most `limit` held events due at `now_ms`, from the shard whose turn `from` says and
    /// where it stands there (the sparse index, eventually consistent). One page at a time, so a
    /// reader holds at most `limit` bodies however many events are due; the page's `next` says
    /// where the following page starts (the next shard's turn). A page may be short, or empty,
    /// with more to come.
    fn due(
        &self,
        now_ms: i64,
        from: &DueCursor,
        limit: usize,
    ) -> impl Future<Output = Result<DuePage, StoreError>> + Send;
    /// Removes a held event; `false` if it was not (or no longer) held.
    fn unschedule(&self, employee_id: &str, event_id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Held events of one employee.
    fn scheduled_for(&self, employee_id: &str) -> impl Future<Output = Result<Vec<ScheduledEvent>, StoreError>> + Send;

    /// The mass-termination guard: asks to terminate the WorkSpaces of these leaves (`keys`: leave
    /// event ids or employee ids) and answers, per key in order, whether it is admitted.
    /// Admissions are counted per fixed window of `window_ms` ([`guard_window_start`]); a key
    /// admitted before in the window is admitted again without counting twice (a retried batch).
    /// A new key when `limit` are admitted in the window is refused and trips the guard: from
    /// then on nothing is admitted, in any window, until [`reset_guard`](Self::reset_guard), and
    /// every later key of the same call is refused too. Safe under concurrent calls: a window
    /// never admits more than `limit` keys; `Conflict` (retryable) if concurrent calls keep
    /// changing the guard under this one. `Invalid` when `window_ms` is not positive or `limit`
    /// is over [`MAX_TERMINATIONS_PER_WINDOW`].
    fn admit_terminations(
        &self,
        now_ms: i64,
        window_ms: i64,
        limit: u32,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;
    /// What the guard has done (a consistent read).
    fn guard_status(&self) -> impl Future<Output = Result<GuardStatus, StoreError>> + Send;
    /// The operator's reset: un-trips the guard (the held count goes back to 0) and starts the
    /// current window's count afresh.
    fn reset_guard(&self, now_ms: i64) -> impl Future<Output = Result<(), StoreError>> + Send;
}

// ---------------------------------------------------------------- drift audit

/// What the drift audit keeps in the table (the same table as [`StateStore`]).
pub trait AuditStore: Send + Sync {
    /// Every employee record, the open drift and the last audit's state: one pass over the table
    /// (a paged Scan; eventually consistent, so the audit looks again before it reports).
    fn audit_snapshot(&self) -> impl Future<Output = Result<AuditSnapshot, StoreError>> + Send;
    /// Writes a subject's open drift (replacing what was there).
    fn save_drift(&self, drift: &Drift) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removes a subject's drift (nothing there is fine).
    fn clear_drift(&self, subject: &Subject) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// An employee's open drift, if any (for `hrws employee`).
    fn drift_of(&self, subject: &Subject) -> impl Future<Output = Result<Option<Drift>, StoreError>> + Send;
    fn save_audit_state(&self, state: &AuditState) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The last audit's state (a consistent read), `None` before the first.
    fn audit_state(&self) -> impl Future<Output = Result<Option<AuditState>, StoreError>> + Send;
}

// ---------------------------------------------------------------- queues

#[derive(Debug, Clone, thiserror::Error)]
#[error("sending to {queue} failed: {message}")]
pub struct QueueError {
    pub queue: String,
    pub message: String,
}

impl PortError for QueueError {
    /// SQS refuses only what is malformed, which the services never build: treated as transient.
    fn is_retryable(&self) -> bool {
        true
    }
    fn error_type(&self) -> String {
        "Queue.SendFailed".into()
    }
}

/// A message to send. FIFO queues need the group and deduplication ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub body: String,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    /// Seconds before the message can be received (SQS `DelaySeconds`, 0-900; standard queues).
    pub delay_seconds: Option<u32>,
}

impl Outgoing {
    pub fn plain(body: String) -> Self {
        Self { body, group_id: None, deduplication_id: None, delay_seconds: None }
    }
}

/// The most messages one SendMessageBatch call carries (SQS's limit).
pub const MAX_MESSAGES_PER_SEND: usize = 10;

pub trait MessageQueue: Send + Sync {
    /// Sends every message; fails unless all were accepted.
    fn send(&self, messages: &[Outgoing]) -> impl Future<Output = Result<(), QueueError>> + Send;
}

// ---------------------------------------------------------------- lifecycle events

/// The most entries one PutEvents call carries (EventBridge's limit).
pub const MAX_EVENTS_PER_PUT: usize = 10;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PublishError {
    /// The call failed, or entries were still refused after the adapter's retries.
    #[error("publishing to {bus}: {code}: {message}")]
    Refused { bus: String, code: String, message: String, retryable: bool },
}

impl PortError for PublishError {
    fn is_retryable(&self) -> bool {
        match self {
            PublishError::Refused { retryable, .. } => *retryable,
        }
    }
    fn error_type(&self) -> String {
        "Events.Refused".into()
    }
}

/// Where the lifecycle events go: an EventBridge bus.
pub trait EventBus: Send + Sync {
    /// Publishes every event (at most [`MAX_EVENTS_PER_PUT`] a call, entries refused retried);
    /// fails unless all were accepted. Some may have been published when it fails: a retry
    /// publishes them again, with the same ids.
    fn publish(&self, events: &[LifecycleEvent]) -> impl Future<Output = Result<(), PublishError>> + Send;
}

// ---------------------------------------------------------------- shared ports

// A port shared behind an `Arc` is the same port: the model tests hand one double to the four
// services, as the deployed functions share one table and one WorkSpaces account.

impl<T: WorkspacesApi> WorkspacesApi for std::sync::Arc<T> {
    fn create_workspaces(
        &self,
        items: &[CreateItem],
    ) -> impl Future<Output = Result<CreateResponse, WorkspacesError>> + Send {
        (**self).create_workspaces(items)
    }
    fn describe_workspaces(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<WorkspaceInfo>, WorkspacesError>> + Send {
        (**self).describe_workspaces(ids)
    }
    fn terminate_workspaces(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<FailedTerminate>, WorkspacesError>> + Send {
        (**self).terminate_workspaces(ids)
    }
    fn list_workspaces(
        &self,
        directory_id: &str,
        next_token: Option<&str>,
    ) -> impl Future<Output = Result<WorkspacePage, WorkspacesError>> + Send {
        (**self).list_workspaces(directory_id, next_token)
    }
    fn find_user_workspace(
        &self,
        directory_id: &str,
        user_name: &str,
    ) -> impl Future<Output = Result<Option<WorkspaceInfo>, WorkspacesError>> + Send {
        (**self).find_user_workspace(directory_id, user_name)
    }
    fn modify_properties(
        &self,
        workspace_id: &str,
        change: &PropertyChange,
    ) -> impl Future<Output = Result<(), WorkspacesError>> + Send {
        (**self).modify_properties(workspace_id, change)
    }
    fn migrate(
        &self,
        workspace_id: &str,
        bundle_id: &str,
    ) -> impl Future<Output = Result<String, WorkspacesError>> + Send {
        (**self).migrate(workspace_id, bundle_id)
    }
    fn set_admin_maintenance(
        &self,
        workspace_id: &str,
        on: bool,
    ) -> impl Future<Output = Result<(), WorkspacesError>> + Send {
        (**self).set_admin_maintenance(workspace_id, on)
    }
    fn tags(
        &self,
        workspace_id: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, WorkspacesError>> + Send {
        (**self).tags(workspace_id)
    }
    fn create_tags(
        &self,
        workspace_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), WorkspacesError>> + Send {
        (**self).create_tags(workspace_id, tags)
    }
    fn delete_tags(
        &self,
        workspace_id: &str,
        keys: &[String],
    ) -> impl Future<Output = Result<(), WorkspacesError>> + Send {
        (**self).delete_tags(workspace_id, keys)
    }
}

impl<T: WorkspaceTags> WorkspaceTags for std::sync::Arc<T> {
    fn tags_of(
        &self,
        workspace_ids: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, BTreeMap<String, String>>, WorkspacesError>> + Send {
        (**self).tags_of(workspace_ids)
    }
}

impl<T: DirectoryUsers> DirectoryUsers for std::sync::Arc<T> {
    fn ensure_user(&self, user: &NewUser) -> impl Future<Output = Result<UserOutcome, DirectoryError>> + Send {
        (**self).ensure_user(user)
    }
    fn user_name_rules(&self) -> crate::domain::names::UserNameRules {
        (**self).user_name_rules()
    }
    fn disable_user(
        &self,
        directory_id: &str,
        user_name: &str,
    ) -> impl Future<Output = Result<UserOutcome, DirectoryError>> + Send {
        (**self).disable_user(directory_id, user_name)
    }
    fn enable_user(
        &self,
        directory_id: &str,
        user_name: &str,
    ) -> impl Future<Output = Result<UserOutcome, DirectoryError>> + Send {
        (**self).enable_user(directory_id, user_name)
    }
    fn can_disable(&self) -> bool {
        (**self).can_disable()
    }
}

impl<T: StateStore> StateStore for std::sync::Arc<T> {
    fn claim(&self, claim: &Claim) -> impl Future<Output = Result<ClaimOutcome, StoreError>> + Send {
        (**self).claim(claim)
    }
    fn complete(
        &self,
        event_id: &str,
        owner: &str,
        outcome: EventOutcome,
        reason: &str,
        line: Option<&HistoryEntry>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).complete(event_id, owner, outcome, reason, line)
    }
    fn release(&self, event_id: &str, owner: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).release(event_id, owner)
    }
    fn employee(&self, employee_id: &str) -> impl Future<Output = Result<Option<EmployeeRecord>, StoreError>> + Send {
        (**self).employee(employee_id)
    }
    fn employees(&self, ids: &[String]) -> impl Future<Output = Result<Vec<EmployeeRecord>, StoreError>> + Send {
        (**self).employees(ids)
    }
    fn save_employee(
        &self,
        record: &EmployeeRecord,
        expected_version: Option<u64>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).save_employee(record, expected_version)
    }
    fn save_joiner(
        &self,
        record: &EmployeeRecord,
        expected_version: Option<u64>,
        claim: &NameClaim,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).save_joiner(record, expected_version, claim)
    }
    fn name_holder(
        &self,
        directory_id: &str,
        user_name: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send {
        (**self).name_holder(directory_id, user_name)
    }
    fn record_history(&self, entry: &HistoryEntry) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).record_history(entry)
    }
    fn history(&self, employee_id: &str) -> impl Future<Output = Result<Vec<HistoryEntry>, StoreError>> + Send {
        (**self).history(employee_id)
    }
    fn watched(
        &self,
        state: EmployeeState,
        due_by_ms: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        (**self).watched(state, due_by_ms)
    }
    fn schedule(&self, event: &ScheduledEvent) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).schedule(event)
    }
    fn due(
        &self,
        now_ms: i64,
        from: &DueCursor,
        limit: usize,
    ) -> impl Future<Output = Result<DuePage, StoreError>> + Send {
        (**self).due(now_ms, from, limit)
    }
    fn unschedule(&self, employee_id: &str, event_id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).unschedule(employee_id, event_id)
    }
    fn scheduled_for(&self, employee_id: &str) -> impl Future<Output = Result<Vec<ScheduledEvent>, StoreError>> + Send {
        (**self).scheduled_for(employee_id)
    }
    fn admit_terminations(
        &self,
        now_ms: i64,
        window_ms: i64,
        limit: u32,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send {
        (**self).admit_terminations(now_ms, window_ms, limit, keys)
    }
    fn guard_status(&self) -> impl Future<Output = Result<GuardStatus, StoreError>> + Send {
        (**self).guard_status()
    }
    fn reset_guard(&self, now_ms: i64) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).reset_guard(now_ms)
    }
}

impl<T: AuditStore> AuditStore for std::sync::Arc<T> {
    fn audit_snapshot(&self) -> impl Future<Output = Result<AuditSnapshot, StoreError>> + Send {
        (**self).audit_snapshot()
    }
    fn save_drift(&self, drift: &Drift) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).save_drift(drift)
    }
    fn clear_drift(&self, subject: &Subject) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).clear_drift(subject)
    }
    fn drift_of(&self, subject: &Subject) -> impl Future<Output = Result<Option<Drift>, StoreError>> + Send {
        (**self).drift_of(subject)
    }
    fn save_audit_state(&self, state: &AuditState) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).save_audit_state(state)
    }
    fn audit_state(&self) -> impl Future<Output = Result<Option<AuditState>, StoreError>> + Send {
        (**self).audit_state()
    }
}

impl<T: MessageQueue> MessageQueue for std::sync::Arc<T> {
    fn send(&self, messages: &[Outgoing]) -> impl Future<Output = Result<(), QueueError>> + Send {
        (**self).send(messages)
    }
}

impl<T: EventBus> EventBus for std::sync::Arc<T> {
    fn publish(&self, events: &[LifecycleEvent]) -> impl Future<Output = Result<(), PublishError>> + Send {
        (**self).publish(events)
    }
}
