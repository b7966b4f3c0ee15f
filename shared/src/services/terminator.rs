//! The terminator: requests to change a leaver's access, each handled as the employee's record
//! says when read (`lifecycle::access_action`):
//! - terminate: TerminateWorkspaces, 25 per call (terminating, nothing to terminate, failed);
//!   the reconciler confirms when the id is gone;
//! - revoke (a leave with a grace period): ModifyWorkspaceState ADMIN_MAINTENANCE, one WorkSpace
//!   per call: no one can log in, the data is kept;
//! - restore (a rescinded leave or a rehire within the grace period): back to AVAILABLE.

use super::{
    BatchContext, BatchOutcome, Deadline, Delivery, Outbox, QueueRecord, SqsHandler, before_deadline,
    name_held_by_other, send_hand_backs, settle,
};
use crate::domain::employee::{EmployeeRecord, EmployeeState};
use crate::domain::lifecycle::{Access, Input, access_action, termination_target};
use crate::domain::messages::TerminationRequest;
use crate::domain::workspace::{Call, Disposition, MAX_PER_CALL, WorkspaceState, classify, tag_refusal};
use crate::ports::{
    Clock, FailedTerminate, MessageQueue, PortError, StateStore, WorkspaceTags, WorkspacesApi, WorkspacesError,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tracing::{info, warn};

/// The metric (and alarm) of terminations the guard held.
pub const TERMINATIONS_HELD: &str = "TerminationsHeld";

/// Time one chunk may need at worst: its tags read one WorkSpace at a time (25 DescribeTags at
/// the API's 2 calls/s: the read of many at once failed, or left them out), a TerminateWorkspaces
/// call (with the SDK's retries) and 25 writes.
const CHUNK_BUDGET_MS: i64 = 30_000;

/// Time kept, after a WorkSpaces call, to write what it answered (25 records, with retries).
const SETTLE_BUDGET_MS: i64 = 4_000;

#[derive(Debug, Clone)]
pub struct TerminatorConfig {
    /// Deliveries after which a retryable failure (a SUSPENDED WorkSpace) becomes permanent.
    pub max_attempts: u32,
    /// Terminate a WorkSpace without the managed tag (one the pipeline did not create).
    pub terminate_unmanaged: bool,
    /// The mass-termination guard; `None`: off.
    pub guard: Option<GuardConfig>,
}

pub use crate::ports::GuardConfig;

pub struct Terminator<S, W, T, Q> {
    pub store: S,
    pub workspaces: W,
    /// The chunk's tags in one call before it is terminated (DescribeTags reads one WorkSpace).
    pub tags: T,
    /// For a rehire waiting on a leave that turns out to have nothing to terminate.
    pub requests: Q,
    /// Its own queue: a termination that follows a revoke that failed, a restore asked again, a
    /// request handed back for want of time.
    pub terminations: Q,
    pub config: TerminatorConfig,
    pub clock: Arc<dyn Clock>,
}

/// How one termination ended.
#[derive(Debug, Clone, PartialEq)]
enum Ended {
    /// TerminateWorkspaces accepted it (or the service no longer knows the id).
    Terminating(String),
    /// There is no WorkSpace to terminate.
    NothingToTerminate,
    Failed {
        code: String,
        message: String,
    },
    /// An attempt spent: asked again on the message's next delivery.
    Retry(String),
    /// Not asked, or not answered, for want of time (the deadline near, the API throttling):
    /// handed back without spending an attempt.
    HandBack(String),
    Revoked(String),
    RevokeFailed {
        code: String,
        message: String,
    },
    Restored,
    /// The guard refused it: held, access revoked meanwhile.
    Held(String),
    RestoreFailed {
        code: String,
        message: String,
    },
}

/// How a chunk's tags are read before it is terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagRead {
    /// In one call for the chunk's first deliveries (DescribeTags for what it leaves out).
    Together,
    /// One DescribeTags per WorkSpace: after IAM refused a call the read together allowed.
    OneByOne,
}

/// The code of a call IAM refused.
const ACCESS_DENIED: &str = "AccessDeniedException";

struct Job<'a> {
    record: &'a QueueRecord,
    request: TerminationRequest,
    employee: EmployeeRecord,
    delivery: Delivery,
}

/// A failed WorkSpaces call: throttling is the API busy (nothing done, no attempt spent);
/// anything else is an attempt.
fn unanswered(e: &WorkspacesError) -> Ended {
    match e {
        WorkspacesError::Throttled(_) => Ended::HandBack(e.to_string()),
        _ => Ended::Retry(e.to_string()),
    }
}

impl<S: StateStore, W: WorkspacesApi, T: WorkspaceTags, Q: MessageQueue> SqsHandler for Terminator<S, W, T, Q> {
    async fn handle_batch(&self, records: &[QueueRecord], context: BatchContext) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let read = super::requests_with_employees::<TerminationRequest>(
            &self.store,
            records,
            "termination request",
            // A revoke and the restore that overtook it: the record says which one stands.
            super::SameEmployee::Together,
            &mut outcome,
        );
        if let Some(requests) = read.await {
            self.handle_requests(requests, context, &mut outcome).await;
        }
        send_hand_backs(&self.terminations, &mut outcome).await;
        outcome
    }
}

impl<S: StateStore, W: WorkspacesApi, T: WorkspaceTags, Q: MessageQueue> Terminator<S, W, T, Q> {
    async fn handle_requests(
        &self,
        requests: Vec<(&QueueRecord, TerminationRequest, Option<EmployeeRecord>)>,
        context: BatchContext,
        outcome: &mut BatchOutcome,
    ) {
        let mut with_id: Vec<(Job, String)> = Vec::new();
        let mut changes: Vec<(Job, Access)> = Vec::new();
        let now = self.clock.now_ms();
        for (record, request, employee) in requests {
            let Some(employee) = employee else {
                info!(employee_id = %request.employee_id, event_id = %request.event_id, "no such employee; dropped");
                continue;
            };
            let action = access_action(Some(&employee), &request.event_id, now);
            let delivery = Delivery::of(record, &request);
            let job = Job { record, request, employee, delivery };
            let Some(action) = action else {
                self.drop_unless_terminated_meanwhile(&job, outcome).await;
                continue;
            };
            if action != Access::Terminate {
                changes.push((job, action));
                continue;
            }
            match termination_target(&job.employee, &job.request.event_id) {
                Some(id) => with_id.push((job, id)),
                // The leave came before the WorkSpace id was known: look it up, if the user name
                // is this employee's (another employee's WorkSpace is never terminated).
                None => match self.look_up(&job).await {
                    Ok(Some(id)) => with_id.push((job, id)),
                    Ok(None) => self.settle(&job, Ended::NothingToTerminate, outcome).await,
                    Err(why) => self.settle(&job, Ended::Retry(why), outcome).await,
                },
            }
        }
        for (i, (job, action)) in changes.iter().enumerate() {
            if context.deadline.too_close(self.clock.now_ms(), CHUNK_BUDGET_MS) {
                let left = changes[i..].iter().map(|(job, _)| job).chain(with_id.iter().map(|(job, _)| job));
                warn!(
                    unprocessed = changes.len() - i + with_id.len(),
                    "invocation deadline near; the rest of the batch is handed back"
                );
                for job in left {
                    outcome.hand_back(job.record, &job.request, "not done with the deadline near", false);
                }
                return;
            }
            let ended = self.change_access(job, *action).await;
            self.settle(job, ended, outcome).await;
        }
        let mut chunks = with_id.chunks(MAX_PER_CALL).enumerate();
        while let Some((i, chunk)) = chunks.next() {
            if i > 0 && context.deadline.too_close(self.clock.now_ms(), CHUNK_BUDGET_MS) {
                let left: Vec<_> = chunk.iter().chain(chunks.flat_map(|(_, c)| c.iter())).collect();
                warn!(unprocessed = left.len(), "invocation deadline near; the rest of the batch is handed back");
                for (job, _) in left {
                    outcome.hand_back(job.record, &job.request, "not terminated with the deadline near", false);
                }
                break;
            }
            let deadline = context.deadline;
            let chunk = self.only_what_it_may_terminate(chunk.iter().collect(), TagRead::Together, deadline, outcome);
            let mut chunk = self.admitted_by_the_guard(chunk.await, outcome).await;
            if chunk.is_empty() {
                continue;
            }
            let mut answer = self.terminate(&chunk, deadline).await;
            if matches!(&answer, Some(Err(e)) if e.code() == ACCESS_DENIED) {
                // IAM refused the call: the template denies terminating a WorkSpace with the
                // protect tag, which a read of many WorkSpaces' tags may show late. Each one's
                // tags are read again on its own, and the others terminated.
                warn!(workspaces = chunk.len(), "TerminateWorkspaces refused; each WorkSpace's tags read on its own");
                chunk = self.only_what_it_may_terminate(chunk, TagRead::OneByOne, deadline, outcome).await;
                if chunk.is_empty() {
                    continue;
                }
                answer = self.terminate(&chunk, deadline).await;
            }
            let failures = match answer {
                Some(Ok(f)) => f,
                // Not answered before the deadline (the SDK waiting its turn at the API's rate):
                // asked again (terminating twice is harmless).
                None => {
                    for (job, _) in chunk {
                        let why = "TerminateWorkspaces not answered before the invocation's deadline".to_owned();
                        self.settle(job, Ended::HandBack(why), outcome).await;
                    }
                    continue;
                }
                Some(Err(e)) => {
                    for (job, _) in chunk {
                        self.settle(job, unanswered(&e), outcome).await;
                    }
                    continue;
                }
            };
            let failures: HashMap<&str, (&str, &str)> =
                failures.iter().map(|f| (f.workspace_id.as_str(), (f.code.as_str(), f.message.as_str()))).collect();
            for (job, id) in chunk {
                let ended = match failures.get(id.as_str()) {
                    None => Ended::Terminating(id.clone()),
                    Some((code, message)) => {
                        let attempt = job.delivery.attempt;
                        let attempts_left = attempt < self.config.max_attempts;
                        match classify(Call::Terminate, code) {
                            // Gone already: the reconciler confirms the absence.
                            Disposition::Gone => Ended::Terminating(id.clone()),
                            Disposition::Permanent => {
                                Ended::Failed { code: (*code).into(), message: (*message).into() }
                            }
                            _ if attempts_left => Ended::Retry(format!("{code}: {message}")),
                            _ => Ended::Failed {
                                code: (*code).into(),
                                message: format!("{message} (gave up after {attempt} attempts)"),
                            },
                        }
                    }
                };
                self.settle(job, ended, outcome).await;
            }
        }
    }

    /// Revokes or restores access to the employee's WorkSpace with ModifyWorkspaceState. A
    /// retryable failure (throttling; a WorkSpace UPDATING or otherwise busy) is retried up to
    /// `max_attempts` deliveries, then ends the attempt for good, as any other failure does.
    async fn change_access(&self, job: &Job<'_>, action: Access) -> Ended {
        let revoke = action == Access::Revoke;
        let Some(workspace_id) = job.employee.workspace_id.clone() else {
            let (code, message) = ("NoWorkspace".to_owned(), "the record names no WorkSpace".to_owned());
            return if revoke { Ended::RevokeFailed { code, message } } else { Ended::RestoreFailed { code, message } };
        };
        match self.workspaces.set_admin_maintenance(&workspace_id, revoke).await {
            Ok(()) if revoke => Ended::Revoked(workspace_id),
            Ok(()) => Ended::Restored,
            Err(WorkspacesError::Throttled(m)) => Ended::HandBack(m),
            Err(e) => {
                let code = e.code().to_owned();
                let wrong_state = code == "InvalidResourceStateException";
                // A WorkSpace in ERROR stays there: no later attempt can change its access.
                let broken = wrong_state && self.in_error(&workspace_id).await;
                let busy = !broken && (e.is_retryable() || wrong_state || code == "OperationInProgressException");
                let attempt = job.delivery.attempt;
                if busy && attempt < self.config.max_attempts {
                    return Ended::Retry(e.to_string());
                }
                let message = if broken {
                    format!("{e} (the WorkSpace is in ERROR)")
                } else {
                    format!("{e} (after {attempt} attempts)")
                };
                if revoke { Ended::RevokeFailed { code, message } } else { Ended::RestoreFailed { code, message } }
            }
        }
    }

    /// The WorkSpace is listed in ERROR (a failed look says no: the change is tried again).
    async fn in_error(&self, workspace_id: &str) -> bool {
        matches!(self.state_of(workspace_id).await, Ok(Some(WorkspaceState::Error)))
    }

    /// One WorkSpace's state as DescribeWorkspaces lists it (`None`: not listed).
    async fn state_of(&self, workspace_id: &str) -> Result<Option<WorkspaceState>, WorkspacesError> {
        let seen = self.workspaces.describe_workspaces(&[workspace_id.to_owned()]).await?;
        Ok(seen.into_iter().find(|w| w.workspace_id == workspace_id).map(|w| w.state))
    }

    /// One TerminateWorkspaces call for the chunk; `None`: not answered before the deadline.
    async fn terminate(
        &self,
        chunk: &[&(Job<'_>, String)],
        deadline: Deadline,
    ) -> Option<Result<Vec<FailedTerminate>, WorkspacesError>> {
        let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
        let call = self.workspaces.terminate_workspaces(&ids);
        before_deadline(deadline, self.clock.as_ref(), SETTLE_BUDGET_MS, call).await
    }

    /// The chunk's tags in one call (GetResources), for first deliveries: a WorkSpace it leaves
    /// out (no tags, gone, or too new to show) is read with DescribeTags, and so is every one
    /// when the call fails. Empty when everything is read one by one.
    async fn tags_together(
        &self,
        jobs: &[&(Job<'_>, String)],
        read: TagRead,
        deadline: Deadline,
    ) -> BTreeMap<String, BTreeMap<String, String>> {
        // A redelivery may follow a call IAM refused on a tag shown late: read on its own.
        let ids: Vec<String> = jobs
            .iter()
            .filter(|(job, _)| read == TagRead::Together && job.delivery.attempt <= 1)
            .map(|(_, id)| id.clone())
            .collect();
        if ids.is_empty() {
            return BTreeMap::new();
        }
        match before_deadline(deadline, self.clock.as_ref(), SETTLE_BUDGET_MS, self.tags.tags_of(&ids)).await {
            Some(Ok(found)) => found,
            Some(Err(e)) => {
                warn!(error = %e, workspaces = ids.len(), "tags not read together; DescribeTags for each");
                BTreeMap::new()
            }
            None => BTreeMap::new(),
        }
    }

    /// The WorkSpaces the pipeline may terminate: never one with the protect tag, nor one without
    /// the managed tag unless configured (tags can change at any time, so they are read just
    /// before: together, else one WorkSpace per DescribeTags call). A refused one has its access
    /// revoked (ADMIN_MAINTENANCE) and its employee fails with the reason naming the tag.
    async fn only_what_it_may_terminate<'j, 'a>(
        &self,
        jobs: Vec<&'j (Job<'a>, String)>,
        read: TagRead,
        deadline: Deadline,
        outcome: &mut BatchOutcome,
    ) -> Vec<&'j (Job<'a>, String)> {
        let together = self.tags_together(&jobs, read, deadline).await;
        let mut allowed = Vec::with_capacity(jobs.len());
        for pair in jobs {
            let (job, id) = pair;
            // What the read together left out: read just before on its own, and given up with
            // the deadline near (the job is asked again).
            let read = match together.get(id) {
                Some(tags) => Some(Ok(tags.clone())),
                None => {
                    before_deadline(deadline, self.clock.as_ref(), SETTLE_BUDGET_MS, self.workspaces.tags(id)).await
                }
            };
            let Some(read) = read else {
                let why = "DescribeTags not answered before the invocation's deadline".to_owned();
                self.settle(job, Ended::HandBack(why), outcome).await;
                continue;
            };
            let tags = match read {
                Ok(tags) => tags,
                // Gone already (the termination's own rule): TerminateWorkspaces says so, and the
                // reconciler confirms it.
                Err(e) if classify(Call::Terminate, e.code()) == Disposition::Gone => {
                    allowed.push(pair);
                    continue;
                }
                Err(e) => {
                    self.settle(job, unanswered(&e), outcome).await;
                    continue;
                }
            };
            match tag_refusal(&tags, self.config.terminate_unmanaged) {
                None => allowed.push(pair),
                Some((code, why)) => self.refuse(job, id, code, why, outcome).await,
            }
        }
        allowed
    }

    /// A WorkSpace its tags forbid terminating: its access is revoked and the employee fails.
    async fn refuse(&self, job: &Job<'_>, id: &str, code: &str, why: String, outcome: &mut BatchOutcome) {
        let access = match self.workspaces.set_admin_maintenance(id, true).await {
            Ok(()) => "access revoked (ADMIN_MAINTENANCE)".to_owned(),
            Err(e) => format!("access could not be revoked: {e}"),
        };
        warn!(employee_id = %job.employee.employee_id, workspace_id = %id, %code, "not terminated");
        let message = format!("{id}: {why}; {access}");
        self.settle(job, Ended::Failed { code: code.to_owned(), message }, outcome).await;
    }

    /// The terminations the guard admits (an operator's releases always); the others are held.
    /// A retried chunk is admitted again without counting twice (keys: the leave event ids).
    async fn admitted_by_the_guard<'j, 'a>(
        &self,
        jobs: Vec<&'j (Job<'a>, String)>,
        outcome: &mut BatchOutcome,
    ) -> Vec<&'j (Job<'a>, String)> {
        let Some(guard) = self.config.guard else { return jobs };
        let (released, counted): (Vec<_>, Vec<_>) = jobs.into_iter().partition(|(job, _)| job.employee.guard_released);
        if counted.is_empty() {
            return released;
        }
        let keys: Vec<String> = counted.iter().map(|(job, _)| job.request.event_id.clone()).collect();
        let admitted =
            match self.store.admit_terminations(self.clock.now_ms(), guard.window_ms, guard.limit, &keys).await {
                Ok(admitted) => admitted,
                Err(e) => {
                    for (job, _) in &counted {
                        self.settle(job, Ended::Retry(format!("the guard could not be asked: {e}")), outcome).await;
                    }
                    return released;
                }
            };
        let mut allowed = released;
        let mut held = 0;
        for (pair, admitted) in counted.into_iter().zip(admitted) {
            if admitted {
                allowed.push(pair);
                continue;
            }
            held += 1;
            let (job, id) = pair;
            warn!(employee_id = %job.employee.employee_id, workspace_id = %id, "termination held by the guard");
            self.settle(job, Ended::Held(id.clone()), outcome).await;
        }
        if held > 0 {
            crate::telemetry::emit_counts(&[(TERMINATIONS_HELD, held)]);
        }
        allowed
    }

    /// An access change no longer wanted is dropped. But delivered again, a termination may
    /// have been made by an earlier delivery that crashed before its write, while a rehire's
    /// restore made the record active on that WorkSpace meanwhile: the record would say active on
    /// a WorkSpace that is going. So the WorkSpace is looked at, and if it is going the record
    /// follows it (a new WorkSpace once it is gone).
    async fn drop_unless_terminated_meanwhile(&self, job: &Job<'_>, outcome: &mut BatchOutcome) {
        let (employee_id, event_id) = (&job.employee.employee_id, &job.request.event_id);
        let held = job.request.workspace_id.as_deref().filter(|id| {
            job.employee.workspace_id.as_deref() == Some(*id)
                && matches!(job.employee.state, EmployeeState::Active | EmployeeState::Restoring)
        });
        if let Some(id) = held.filter(|_| job.delivery.call_maybe_made) {
            match self.state_of(id).await {
                Err(e) => return self.settle(job, unanswered(&e), outcome).await,
                Ok(None | Some(WorkspaceState::Terminating | WorkspaceState::Terminated)) => {
                    warn!(%employee_id, %event_id, workspace_id = %id, "an earlier delivery terminated the WorkSpace the record holds");
                    return self.settle(job, Ended::Terminating(id.to_owned()), outcome).await;
                }
                Ok(Some(_)) => {}
            }
        }
        info!(%employee_id, %event_id, "access change no longer wanted; dropped");
    }

    /// The WorkSpace of a leaver whose id was not known, if the user name is theirs.
    async fn look_up(&self, job: &Job<'_>) -> Result<Option<String>, String> {
        let (employee_id, request) = (&job.employee.employee_id, &job.request);
        let holder = name_held_by_other(&self.store, employee_id, &request.directory_id, &request.username)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(holder) = holder {
            info!(%employee_id, %holder, "the user name belongs to another employee: nothing of ours to terminate");
            return Ok(None);
        }
        let found = self.workspaces.find_user_workspace(&request.directory_id, &request.username).await;
        Ok(found.map_err(|e| e.to_string())?.map(|ws| ws.workspace_id))
    }

    async fn settle(&self, job: &Job<'_>, ended: Ended, outcome: &mut BatchOutcome) {
        let employee_id = &job.employee.employee_id;
        let leave_event_id = job.request.event_id.clone();
        let input = match ended {
            Ended::Retry(why) => {
                warn!(%employee_id, reason = %why, "termination will be retried");
                outcome.failed_message_ids.push(job.record.message_id.clone());
                return;
            }
            Ended::HandBack(why) => {
                outcome.hand_back(job.record, &job.request, &why, false);
                return;
            }
            Ended::Terminating(workspace_id) => Input::TerminationAccepted { leave_event_id, workspace_id },
            Ended::NothingToTerminate => Input::NothingToTerminate { leave_event_id },
            Ended::Failed { code, message } => Input::TerminationFailed { leave_event_id, code, message },
            Ended::Revoked(workspace_id) => Input::AccessRevoked { leave_event_id, workspace_id },
            Ended::RevokeFailed { code, message } => Input::RevokeFailed { leave_event_id, code, message },
            Ended::Restored => Input::AccessRestored { restore_event_id: leave_event_id },
            Ended::Held(workspace_id) => {
                let reason = match self.config.guard {
                    Some(g) => format!(
                        "more than {} terminations within {} minutes: the guard holds the rest until an operator releases them (hrws guard release) or HR cancels the leave",
                        g.limit,
                        g.window_ms / 60_000
                    ),
                    None => "held by the guard".to_owned(),
                };
                Input::TerminationHeld { leave_event_id, workspace_id, reason }
            }
            Ended::RestoreFailed { code, message } => {
                Input::RestoreFailed { restore_event_id: leave_event_id, code, message }
            }
        };
        let outbox = Outbox { requests: Some(&self.requests), terminations: Some(&self.terminations) };
        let current = Some(job.employee.clone());
        match settle(&self.store, &outbox, self.clock.as_ref(), employee_id, current, &input).await {
            Ok((_, decision)) => info!(%employee_id, verdict = ?decision.verdict, "termination settled"),
            Err(e) => {
                warn!(%employee_id, error = %e, "settling the termination failed; retrying");
                outcome.failed_message_ids.push(job.record.message_id.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workspace::{MANAGED_TAG_KEY, PROTECT_TAG_KEY};
    use crate::services::intake::{Intake, IntakeConfig, TEST_PROFILES};
    use crate::services::provisioner::{Provisioner, ProvisionerConfig};
    use crate::testing::{FakeDirectory, FakeWorkspaces, MemoryQueue, MemoryStore};

    fn record(message_id: &str, body: &str) -> QueueRecord {
        QueueRecord { message_id: message_id.into(), body: body.into(), receive_count: 1, group_id: None }
    }

    #[tokio::test]
    async fn a_throttled_termination_is_handed_back_without_spending_an_attempt() {
        // GIVEN a joiner with a WorkSpace who leaves, and a terminator allowed one attempt
        let clock = crate::ports::SystemClock;
        let store = Arc::new(MemoryStore::default());
        let (requests, terminations) = (Arc::new(MemoryQueue::default()), Arc::new(MemoryQueue::default()));
        let workspaces = Arc::new(FakeWorkspaces::new(clock));
        let intake = Intake {
            store: store.clone(),
            directory: FakeDirectory::default(),
            requests: requests.clone(),
            terminations: terminations.clone(),
            profiles: crate::domain::profile::Profiles::from_json(TEST_PROFILES).unwrap(),
            config: IntakeConfig::for_tests(),
            clock: Arc::new(clock),
        };
        let provisioner = Provisioner {
            store: store.clone(),
            workspaces: workspaces.clone(),
            requests: requests.clone(),
            terminations: terminations.clone(),
            config: ProvisionerConfig { max_attempts: 1, adopt_unmanaged: false },
            clock: Arc::new(clock),
        };
        let terminator = Terminator {
            store: store.clone(),
            workspaces: workspaces.clone(),
            tags: workspaces.clone(),
            requests: requests.clone(),
            terminations: terminations.clone(),
            config: TerminatorConfig { max_attempts: 1, terminate_unmanaged: false, guard: None },
            clock: Arc::new(clock),
        };
        let join = serde_json::json!({ "schema_version": "1", "event_id": "j1", "type": "join",
            "occurred_at": "2026-11-02T09:00:00Z", "employee": { "employee_id": "E1", "username": "user1",
            "given_name": "G", "surname": "S", "email": "u1@example.com" } });
        intake.handle(&record("hr-1", &join.to_string()), Deadline::NONE).await;
        let request = requests.take().remove(0).body;
        provisioner.handle_batch(&[record("req-1", &request)], BatchContext::default()).await;
        let leave = serde_json::json!({ "schema_version": "1", "event_id": "l1", "type": "leave",
            "occurred_at": "2026-11-03T09:00:00Z", "employee": { "employee_id": "E1" } });
        intake.handle(&record("hr-2", &leave.to_string()), Deadline::NONE).await;
        let termination = terminations.take().remove(0).body;
        // WHEN TerminateWorkspaces is throttled (after the SDK's own retries)
        workspaces.faults.fail_next("workspaces.terminate_workspaces", 1);
        let outcome = terminator.handle_batch(&[record("term-1", &termination)], BatchContext::default()).await;
        // THEN the request is handed back: sent again delayed, its message deleted, no attempt spent
        assert!(outcome.failed_message_ids.is_empty(), "{outcome:?}");
        let again = terminations.take();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].delay_seconds, Some(5));
        let leaving = store.employee("E1").await.unwrap().unwrap();
        assert_eq!(leaving.state, EmployeeState::Leaving, "nothing decided yet");
        // AND its next delivery is still the first attempt: the WorkSpace is terminated
        let outcome = terminator.handle_batch(&[record("term-2", &again[0].body)], BatchContext::default()).await;
        assert!(outcome.failed_message_ids.is_empty(), "{outcome:?}");
        let terminating = store.employee("E1").await.unwrap().unwrap();
        assert_eq!(terminating.state, EmployeeState::Terminating, "{terminating:?}");
        // (the throttled call was refused: one call accepted)
        assert_eq!(workspaces.call_count("TerminateWorkspaces"), 1);
    }

    type TestTerminator = Terminator<Arc<MemoryStore>, Arc<FakeWorkspaces>, Arc<FakeWorkspaces>, Arc<MemoryQueue>>;

    /// A terminator (5 attempts, no guard) on these doubles, reading tags from the same fake.
    fn on_doubles(store: Arc<MemoryStore>, workspaces: Arc<FakeWorkspaces>) -> TestTerminator {
        Terminator {
            store,
            tags: workspaces.clone(),
            workspaces,
            requests: Arc::new(MemoryQueue::default()),
            terminations: Arc::new(MemoryQueue::default()),
            config: TerminatorConfig { max_attempts: 5, terminate_unmanaged: false, guard: None },
            clock: Arc::new(crate::ports::SystemClock),
        }
    }

    /// The request to terminate (or revoke, restore) `workspace_id` for `event_id`.
    fn request_for(employee_id: &str, event_id: &str, workspace_id: &str, user: &str) -> TerminationRequest {
        TerminationRequest {
            employee_id: employee_id.into(),
            event_id: event_id.into(),
            workspace_id: Some(workspace_id.into()),
            directory_id: "d-1".into(),
            username: user.into(),
            requested_ms: 0,
            redelivery: Default::default(),
        }
    }

    /// A terminator over doubles, and an employee `E1` saved in `state` on a WorkSpace seeded in
    /// `ws_state`, whose request (keyed by `event_id`) names that WorkSpace.
    async fn restored_employee(
        state: EmployeeState,
        ws_state: WorkspaceState,
        event_id: &str,
    ) -> (TestTerminator, String, String) {
        let clock = crate::ports::SystemClock;
        let store = Arc::new(MemoryStore::default());
        let workspaces = Arc::new(FakeWorkspaces::new(clock));
        let ws = workspaces.seed("d-1", "user1", ws_state);
        let mut e = EmployeeRecord::new("E1", clock.now_ms() - 60_000);
        e.state = state;
        e.username = Some("user1".into());
        e.workspace_id = Some(ws.clone());
        e.request_event_id = Some("j2".into());
        if state == EmployeeState::Restoring {
            e.restore_event_id = Some(event_id.into());
        }
        store.save_employee(&e, None).await.unwrap();
        let terminator = on_doubles(store, workspaces);
        let request = request_for("E1", event_id, &ws, "user1");
        (terminator, ws, serde_json::to_string(&request).unwrap())
    }

    #[tokio::test]
    async fn a_restore_of_a_workspace_in_error_fails_at_once_with_the_reason() {
        // GIVEN a rehire restoring a WorkSpace that went into ERROR meanwhile
        let (terminator, _, body) = restored_employee(EmployeeState::Restoring, WorkspaceState::Error, "j2").await;
        // WHEN the restore is handled (ModifyWorkspaceState refuses: InvalidResourceState)
        let outcome = terminator.handle_batch(&[record("m1", &body)], BatchContext::default()).await;
        // THEN it is not retried (no later attempt can succeed) but fails, saying why
        assert!(outcome.failed_message_ids.is_empty(), "{outcome:?}");
        let e = terminator.store.employee("E1").await.unwrap().unwrap();
        assert_eq!(e.state, EmployeeState::Failed);
        assert!(e.failure_message.as_deref().unwrap_or_default().contains("in ERROR"), "{e:?}");
    }

    #[tokio::test]
    async fn a_redelivered_termination_that_went_through_before_a_restore_is_followed_not_dropped() {
        // GIVEN an employee active again after a rehire's restore, on a WorkSpace an earlier
        // delivery of the leave's termination terminated (that delivery crashed before its write)
        let (terminator, ws, body) = restored_employee(EmployeeState::Active, WorkspaceState::Terminating, "l1").await;
        // WHEN the termination request comes again (a second receive)
        let again = QueueRecord { receive_count: 2, ..record("m1", &body) };
        let outcome = terminator.handle_batch(&[again], BatchContext::default()).await;
        // THEN the record follows the WorkSpace: terminating, a new WorkSpace once it is gone
        assert!(outcome.failed_message_ids.is_empty(), "{outcome:?}");
        let e = terminator.store.employee("E1").await.unwrap().unwrap();
        assert_eq!(
            (e.state, e.rehire_pending, e.workspace_id.as_deref()),
            (EmployeeState::Terminating, true, Some(ws.as_str()))
        );
        // AND on a first delivery (no earlier call) with the WorkSpace available, it is dropped
        let (terminator, _, body) = restored_employee(EmployeeState::Active, WorkspaceState::Available, "l1").await;
        let again = QueueRecord { receive_count: 2, ..record("m1", &body) };
        terminator.handle_batch(&[again], BatchContext::default()).await;
        assert_eq!(terminator.store.employee("E1").await.unwrap().unwrap().state, EmployeeState::Active);
        assert_eq!(terminator.workspaces.call_count("TerminateWorkspaces"), 0);
    }

    /// A terminator over doubles, and leavers `E1`..`En` (`user1`..), each on a WorkSpace the
    /// pipeline made (managed tag), plus each one's termination request as a queue record.
    async fn leavers(workspaces: FakeWorkspaces, n: usize) -> (TestTerminator, Vec<QueueRecord>) {
        let clock = crate::ports::SystemClock;
        let store = Arc::new(MemoryStore::default());
        let workspaces = Arc::new(workspaces);
        let mut records = Vec::new();
        for i in 1..=n {
            let (employee_id, user) = (format!("E{i}"), format!("user{i}"));
            let ws = workspaces.seed("d-1", &user, WorkspaceState::Available);
            let managed = BTreeMap::from([(MANAGED_TAG_KEY.to_owned(), employee_id.clone())]);
            workspaces.create_tags(&ws, &managed).await.unwrap();
            let mut e = EmployeeRecord::new(&employee_id, clock.now_ms() - 60_000);
            e.state = EmployeeState::Leaving;
            e.username = Some(user.clone());
            e.workspace_id = Some(ws.clone());
            e.leave_event_id = Some(format!("l{i}"));
            store.save_employee(&e, None).await.unwrap();
            let request = request_for(&employee_id, &format!("l{i}"), &ws, &user);
            records.push(record(&format!("m{i}"), &serde_json::to_string(&request).unwrap()));
        }
        let terminator = on_doubles(store, workspaces);
        (terminator, records)
    }

    async fn state_of(terminator: &TestTerminator, id: &str) -> EmployeeRecord {
        terminator.store.employee(id).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn a_chunk_of_leavers_has_its_tags_read_in_one_call_not_one_per_workspace() {
        // GIVEN 25 leavers on WorkSpaces the pipeline made
        let (terminator, records) = leavers(FakeWorkspaces::default(), 25).await;
        // WHEN their terminations are handled
        let outcome = terminator.handle_batch(&records, BatchContext::default()).await;
        // THEN one GetResources read the 25 WorkSpaces' tags, no DescribeTags was needed, and one
        // TerminateWorkspaces terminated them all
        assert!(outcome.failed_message_ids.is_empty(), "{outcome:?}");
        let w = &terminator.workspaces;
        assert_eq!((w.call_count("GetResources"), w.call_count("DescribeTags")), (1, 0));
        assert_eq!(w.call_count("TerminateWorkspaces"), 1);
        for i in 1..=25 {
            assert_eq!(state_of(&terminator, &format!("E{i}")).await.state, EmployeeState::Terminating);
        }
    }

    #[tokio::test]
    async fn what_the_read_together_leaves_out_or_fails_to_read_is_read_with_describe_tags() {
        // GIVEN three leavers: one on a WorkSpace made by hand (no tags), one whose WorkSpace is
        // gone already, one on a WorkSpace the pipeline made
        let clock = crate::testing::ManualClock::new(1_790_000_000_000);
        let (terminator, records) = leavers(FakeWorkspaces::new(clock.clone()), 3).await;
        let w = &terminator.workspaces;
        let by_hand = state_of(&terminator, "E1").await.workspace_id.unwrap();
        w.delete_tags(&by_hand, &[MANAGED_TAG_KEY.to_owned()]).await.unwrap();
        let gone = state_of(&terminator, "E2").await.workspace_id.unwrap();
        w.terminate_workspaces(std::slice::from_ref(&gone)).await.unwrap();
        clock.advance(3_600_000);
        // WHEN their terminations are handled
        terminator.handle_batch(&records, BatchContext::default()).await;
        // THEN GetResources left the first two out, and DescribeTags told them apart: the one
        // made by hand is not terminated (access revoked), the gone one is confirmed as gone
        assert_eq!((w.call_count("GetResources"), w.call_count("DescribeTags")), (1, 2));
        let e1 = state_of(&terminator, "E1").await;
        assert_eq!((e1.state, e1.failure_code.as_deref()), (EmployeeState::Failed, Some("UnmanagedWorkspace")));
        assert_eq!(state_of(&terminator, "E2").await.state, EmployeeState::Terminating);
        assert_eq!(state_of(&terminator, "E3").await.state, EmployeeState::Terminating);

        // AND when GetResources fails, each WorkSpace is read on its own and still terminated
        let (terminator, records) = leavers(FakeWorkspaces::default(), 2).await;
        terminator.workspaces.faults.fail_next("tagging.tags_of", 1);
        let outcome = terminator.handle_batch(&records, BatchContext::default()).await;
        assert!(outcome.failed_message_ids.is_empty(), "{outcome:?}");
        assert_eq!(terminator.workspaces.call_count("DescribeTags"), 2);
        assert_eq!(state_of(&terminator, "E2").await.state, EmployeeState::Terminating);
    }

    #[tokio::test]
    async fn a_protect_tag_the_read_together_shows_late_is_refused_by_iam_and_the_others_terminated() {
        // GIVEN three leavers, one WorkSpace just tagged protect, which GetResources does not
        // show yet; IAM denies terminating a protected WorkSpace (the deployed template)
        let (terminator, records) = leavers(FakeWorkspaces::default().deny_terminating_protected(), 3).await;
        let w = &terminator.workspaces;
        let protected = state_of(&terminator, "E2").await.workspace_id.unwrap();
        let before = BTreeMap::from([(MANAGED_TAG_KEY.to_owned(), "E2".to_owned())]);
        w.create_tags(&protected, &BTreeMap::from([(PROTECT_TAG_KEY.to_owned(), "legal hold".to_owned())]))
            .await
            .unwrap();
        w.bulk_read_shows(&protected, before);
        // WHEN their terminations are handled
        let outcome = terminator.handle_batch(&records, BatchContext::default()).await;
        // THEN the refused call is followed by each WorkSpace's own tags: the protected one is
        // kept, its access revoked, its employee failed naming the tag; the others terminated
        assert!(outcome.failed_message_ids.is_empty(), "{outcome:?}");
        assert_eq!(w.call_count("DescribeTags"), 3);
        let e2 = state_of(&terminator, "E2").await;
        assert_eq!((e2.state, e2.failure_code.as_deref()), (EmployeeState::Failed, Some("ProtectedWorkspace")));
        let kept = w.describe_workspaces(std::slice::from_ref(&protected)).await.unwrap();
        assert_eq!(kept[0].state, WorkspaceState::AdminMaintenance, "kept, nobody can log in");
        for id in ["E1", "E3"] {
            assert_eq!(state_of(&terminator, id).await.state, EmployeeState::Terminating);
        }
    }
}
