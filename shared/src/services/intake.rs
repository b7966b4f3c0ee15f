//! The intake: HR events → validated, deduplicated, ordered → directory user → WorkSpace request.

use super::{BatchOutcome, QueueRecord};
use crate::domain::employee::{EmployeeRecord, EmployeeState, EventOutcome};
use crate::domain::event::{EventKind, EventRules, HrEvent};
use crate::domain::messages::{TerminationRequest, WorkspaceRequest};
use crate::domain::profile::Profiles;
use crate::domain::time::Timestamp;
use crate::domain::validation::{self, InvalidEvent};
use crate::ports::PortError as _;
use crate::ports::{
    Claim, ClaimOutcome, DirectoryError, DirectoryUsers, HistoryEntry, MessageQueue, NameClaim, NewUser, Outgoing,
    ScheduledEvent, StateStore, StoreError,
};
use tracing::{error, info, warn};

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// How long an event id is remembered (duplicates within it are recognised).
    pub idempotency_ttl_s: i64,
    /// Claim lifetime when the invocation's deadline is unknown.
    pub fallback_claim_ms: i64,
    /// On leave, disable the directory user (where the backend can); otherwise keep it.
    pub disable_user_on_leave: bool,
    /// How far `occurred_at` may lie in the future.
    pub clock_skew_ms: i64,
    /// How far `effective_at` may lie in the future.
    pub effective_horizon_ms: i64,
}

pub struct Intake<S, D, Q> {
    pub store: S,
    pub directory: D,
    pub requests: Q,
    pub terminations: Q,
    pub profiles: Profiles,
    pub config: IntakeConfig,
}

/// How one record ended, for the batch response.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordResult {
    /// Applied, skipped or rejected, and recorded: delete the message.
    Done(EventOutcome),
    /// Could not finish now (throttling, a concurrent attempt): deliver again.
    Retry(String),
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(DirectoryError),
    #[error("sending the WorkSpace request: {0}")]
    Queue(#[from] crate::ports::QueueError),
}

impl Failure {
    fn is_retryable(&self) -> bool {
        match self {
            Failure::Store(e) => e.is_retryable(),
            Failure::Directory(e) => e.is_retryable(),
            Failure::Queue(_) => true,
        }
    }
}

impl<S: StateStore, D: DirectoryUsers, Q: MessageQueue> Intake<S, D, Q> {
    /// The contract's rules at `now`, for this deployment's directory.
    pub fn rules(&self, now: Timestamp) -> EventRules {
        EventRules {
            username: self.directory.user_name_rules(),
            now,
            clock_skew_ms: self.config.clock_skew_ms,
            effective_horizon_ms: self.config.effective_horizon_ms,
        }
    }

    /// Processes a batch. From a FIFO queue, a record that must be retried is reported with the
    /// later records of its own message group (so that person's order holds); the other groups'
    /// records are processed as usual, so one bad record never costs another employee's event.
    pub async fn handle_batch(&self, records: &[QueueRecord], deadline_ms: Option<i64>, fifo: bool) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let mut held_groups: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut rejected = 0;
        for (i, record) in records.iter().enumerate() {
            // Hand the rest back rather than be killed at the timeout part-way through a record:
            // what is done stays done, and no instance is lost to a cold start.
            if i > 0 && out_of_time(deadline_ms, Timestamp::now().millis()) {
                warn!(
                    unprocessed = records.len() - i,
                    "invocation deadline near; the rest of the batch is handed back"
                );
                outcome.failed_message_ids.extend(records[i..].iter().map(|r| r.message_id.clone()));
                emit_rejected_metric(rejected);
                return outcome;
            }
            // Without a group id (never seen on FIFO) every record counts as one group.
            let group = if fifo { record.group_id.as_deref().unwrap_or("") } else { "" };
            if fifo && held_groups.contains(group) {
                outcome.failed_message_ids.push(record.message_id.clone());
                continue;
            }
            match self.handle(record, deadline_ms).await {
                RecordResult::Done(EventOutcome::Rejected) => rejected += 1,
                RecordResult::Done(_) => {}
                RecordResult::Retry(reason) => {
                    warn!(message_id = %record.message_id, group_id = ?record.group_id, %reason, "record will be retried");
                    if fifo {
                        held_groups.insert(group);
                    }
                    outcome.failed_message_ids.push(record.message_id.clone());
                }
            }
        }
        emit_rejected_metric(rejected);
        outcome
    }

    pub async fn handle(&self, record: &QueueRecord, deadline_ms: Option<i64>) -> RecordResult {
        let now_ts = Timestamp::now();
        let now = now_ts.millis();
        let event = match HrEvent::parse(&record.body, self.rules(now_ts)) {
            Ok(event) => event,
            Err(invalid) => {
                let entry = rejection_entry(record, &invalid, now);
                warn!(message_id = %record.message_id, event_id = ?invalid.event_id, employee_id = ?invalid.employee_id, reason = %entry.reason, "rejected");
                return self.write_history(entry).await;
            }
        };
        let claim = Claim {
            event_id: event.event_id.to_string(),
            payload_hash: event.payload_hash.clone(),
            owner: uuid::Uuid::new_v4().to_string(),
            now_ms: now,
            in_progress_until_ms: claim_until(deadline_ms, now, self.config.fallback_claim_ms),
            expires_at_s: now / 1000 + self.config.idempotency_ttl_s,
        };
        match self.store.claim(&claim).await {
            Err(e) if e.is_retryable() => return RecordResult::Retry(e.to_string()),
            Err(e) => {
                let why = format!("cannot be recorded: {e}");
                return self.record(&event, record, EventOutcome::Rejected, &why, now).await;
            }
            Ok(ClaimOutcome::InProgress) => {
                return RecordResult::Retry("another invocation is processing this event".into());
            }
            Ok(ClaimOutcome::Completed { same_payload, outcome, reason }) => {
                let (result, why) = if same_payload {
                    let before = outcome.map_or("processed", EventOutcome::as_str);
                    (
                        EventOutcome::Skipped,
                        format!("duplicate: event already {before} ({})", reason.unwrap_or_default()),
                    )
                } else {
                    (
                        EventOutcome::Rejected,
                        "event_id reused with different content: conflicts with the event already processed".to_owned(),
                    )
                };
                info!(event_id = %event.event_id, employee_id = %event.employee.employee_id, message_id = %record.message_id, outcome = result.as_str(), reason = %why);
                return self.record(&event, record, result, &why, now).await;
            }
            Ok(ClaimOutcome::Claimed) => {}
        }
        match self.apply(&event, record, now).await {
            Ok((outcome, reason)) => {
                let settled = if outcome == EventOutcome::Scheduled {
                    // Held events are processed again when due: leave the event id free for that.
                    self.store.release(&claim.event_id, &claim.owner).await
                } else {
                    self.store.complete(&claim.event_id, &claim.owner, outcome, &validation::reason(&reason)).await
                };
                if let Err(e) = settled {
                    // The effects are in place and idempotent; a redelivery finds them.
                    return RecordResult::Retry(format!("completing the claim: {e}"));
                }
                info!(event_id = %event.event_id, employee_id = %event.employee.employee_id, message_id = %record.message_id, kind = event.kind.as_str(), outcome = outcome.as_str(), %reason, "event processed");
                match self.record(&event, record, outcome, &reason, now).await {
                    RecordResult::Done(_) => RecordResult::Done(outcome),
                    retry => retry,
                }
            }
            Err(failure) if failure.is_retryable() => {
                if let Err(e) = self.store.release(&claim.event_id, &claim.owner).await {
                    warn!(event_id = %claim.event_id, error = %e, "releasing the claim failed; it expires at the deadline");
                }
                RecordResult::Retry(failure.to_string())
            }
            Err(failure) => {
                // Retrying cannot help (the store refused the request itself): reject, recorded.
                let why = validation::reason(&format!("cannot be applied: {failure}"));
                if let Err(e) = self.store.complete(&claim.event_id, &claim.owner, EventOutcome::Rejected, &why).await {
                    warn!(event_id = %claim.event_id, error = %e, "completing the claim failed");
                }
                warn!(event_id = %event.event_id, employee_id = %event.employee.employee_id, reason = %why, "rejected");
                self.record(&event, record, EventOutcome::Rejected, &why, now).await
            }
        }
    }

    async fn record(
        &self,
        event: &HrEvent,
        record: &QueueRecord,
        outcome: EventOutcome,
        reason: &str,
        now: i64,
    ) -> RecordResult {
        self.write_history(event_entry(event, record, outcome, reason, now)).await
    }

    /// Writes a history line. A write DynamoDB refuses outright is not retried (it could never
    /// succeed, and retrying would only carry the message to the DLQ): a minimal line says so
    /// under `REJECTED`, and the message is done.
    async fn write_history(&self, entry: HistoryEntry) -> RecordResult {
        let outcome = entry.outcome;
        match self.store.record_history(&entry).await {
            Ok(()) => RecordResult::Done(outcome),
            Err(e) if e.is_retryable() => RecordResult::Retry(e.to_string()),
            Err(e) => {
                error!(message_id = %entry.message_id, error = %e, "history line refused by the store; recording a minimal one");
                let minimal = HistoryEntry {
                    employee_id: None,
                    event_id: None,
                    kind: None,
                    occurred_ms: None,
                    outcome: EventOutcome::Rejected,
                    reason: validation::reason(&format!(
                        "could not be recorded ({e}); was {}: {}",
                        outcome.as_str(),
                        validation::bounded(&entry.reason, 200)
                    )),
                    ..entry
                };
                if let Err(e) = self.store.record_history(&minimal).await {
                    if e.is_retryable() {
                        return RecordResult::Retry(e.to_string());
                    }
                    error!(message_id = %minimal.message_id, error = %e, "minimal history line refused too");
                }
                RecordResult::Done(EventOutcome::Rejected)
            }
        }
    }

    /// Applies a claimed event. Every step is idempotent so a retry after a crash resumes.
    async fn apply(&self, event: &HrEvent, record: &QueueRecord, now: i64) -> Result<(EventOutcome, String), Failure> {
        if event.kind == EventKind::Cancel {
            return self.cancel(event).await;
        }
        let employee_id = event.employee.employee_id.as_str();
        let current = self.store.employee(employee_id).await?;
        if let Some(current) = &current
            && current.last_event_id != event.event_id.as_str()
            && (current.order_ms(self.config.clock_skew_ms), current.last_event_id.as_str())
                > (event.occurred_at.millis(), event.event_id.as_str())
        {
            return Ok((
                EventOutcome::Skipped,
                format!(
                    "stale: occurred at {} but event {} from {} was already applied",
                    event.occurred_at,
                    current.last_event_id,
                    Timestamp::from_millis(current.last_event_ms)
                ),
            ));
        }
        if let Some(effective) = event.effective_at
            && effective.millis() > now
        {
            return self.hold(event, record, effective).await;
        }
        match event.kind {
            EventKind::Join => self.join(event, current, now).await,
            EventKind::Leave => self.leave(event, current, now).await,
            EventKind::Cancel => self.cancel(event).await,
        }
    }

    /// A future-dated event waits in the table; the reconciler posts it again when due. SQS
    /// cannot hold a message for more than 15 minutes.
    async fn hold(
        &self,
        event: &HrEvent,
        record: &QueueRecord,
        effective: Timestamp,
    ) -> Result<(EventOutcome, String), Failure> {
        let held = ScheduledEvent {
            employee_id: event.employee.employee_id.to_string(),
            event_id: event.event_id.to_string(),
            kind: event.kind.as_str().to_owned(),
            occurred_ms: event.occurred_at.millis(),
            effective_ms: effective.millis(),
            body: record.body.clone(),
        };
        self.store.schedule(&held).await?;
        Ok((EventOutcome::Scheduled, format!("held until it takes effect at {effective}")))
    }

    async fn cancel(&self, event: &HrEvent) -> Result<(EventOutcome, String), Failure> {
        let Some(target) = &event.cancels else {
            return Ok((EventOutcome::Rejected, "cancels is required".into()));
        };
        if self.store.unschedule(event.employee.employee_id.as_str(), target.as_str()).await? {
            Ok((EventOutcome::Applied, format!("cancelled {target} before it took effect")))
        } else {
            Ok((
                EventOutcome::Rejected,
                format!(
                    "nothing to cancel: {target} is not waiting to take effect (already applied, cancelled or unknown)"
                ),
            ))
        }
    }

    async fn join(
        &self,
        event: &HrEvent,
        current: Option<EmployeeRecord>,
        now: i64,
    ) -> Result<(EventOutcome, String), Failure> {
        let event_id = event.event_id.as_str();
        let mut rehire = false;
        if let Some(c) = &current {
            let resuming = c.request_event_id.as_deref() == Some(event_id);
            match c.state {
                EmployeeState::Requested if resuming => {
                    // A previous attempt wrote the record; make sure the request went out.
                    self.send_request(c, now).await?;
                    return Ok((EventOutcome::Applied, "WorkSpace requested".into()));
                }
                EmployeeState::Leaving | EmployeeState::Terminating if resuming && c.rehire_pending => {
                    return Ok((EventOutcome::Applied, REHIRE_WAITS.into()));
                }
                EmployeeState::Requested | EmployeeState::Pending | EmployeeState::Active => {
                    return Ok((
                        EventOutcome::Skipped,
                        format!(
                            "already joined: employee is {} (event {})",
                            c.state.as_str(),
                            c.request_event_id.as_deref().unwrap_or("?")
                        ),
                    ));
                }
                EmployeeState::Leaving | EmployeeState::Terminating => rehire = true,
                // A new join retries a failed onboarding, or rehires after a confirmed termination.
                EmployeeState::Failed | EmployeeState::Terminated => {}
            }
        }
        let emp = &event.employee;
        let (Some(user_name), Some(given_name), Some(surname), Some(email)) =
            (&emp.username, &emp.given_name, &emp.surname, &emp.email)
        else {
            return Ok((EventOutcome::Rejected, "a join needs username, given_name, surname and email".into()));
        };
        let (profile_name, profile) = match self.profiles.resolve(emp.department.as_deref(), &event.workspace) {
            Ok(p) => p,
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                return Ok((EventOutcome::Rejected, format!("invalid WorkSpace choice: {}", text.join("; "))));
            }
        };
        let mut next = match &current {
            Some(c) => c.clone(),
            None => EmployeeRecord::new(emp.employee_id.as_str(), now),
        };
        next.version += 1;
        next.last_event_ms = event.occurred_at.millis();
        next.last_event_id = event_id.to_owned();
        next.username = Some(user_name.to_string());
        next.given_name = Some(given_name.to_string());
        next.surname = Some(surname.to_string());
        next.email = Some(email.to_string());
        next.department = emp.department.clone();
        next.profile_name = Some(profile_name.clone());
        next.profile = Some(profile.clone());
        next.request_event_id = Some(event_id.to_owned());
        next.failure_code = None;
        next.failure_message = None;
        next.stuck_since_ms = None;
        next.updated_ms = now;
        if rehire {
            // The previous WorkSpace must be gone first: the reconciler sends the request when
            // it confirms the termination.
            next.rehire_pending = true;
        } else {
            next.state = EmployeeState::Requested;
            next.state_since_ms = now;
            next.workspace_id = None;
            next.leave_event_id = None;
            next.terminate_requested_ms = None;
            next.terminated_ms = None;
            next.rehire_pending = false;
        }
        // One owner per user name: a name held by someone else is refused before the directory
        // is touched; a holder confirmed terminated gives it up.
        let mut take_over_from = None;
        if let Some(holder) = self.store.name_holder(&profile.directory_id, user_name.as_str()).await?
            && holder != emp.employee_id.as_str()
        {
            match self.releasable(&holder).await? {
                Some(version) => take_over_from = Some((holder, version)),
                None => {
                    return Ok((EventOutcome::Rejected, name_held(user_name.as_str(), &profile.directory_id, &holder)));
                }
            }
        }
        let name_claim = NameClaim {
            directory_id: profile.directory_id.clone(),
            user_name: user_name.to_string(),
            employee_id: emp.employee_id.to_string(),
            take_over_from,
        };
        let new_user = NewUser {
            directory_id: profile.directory_id.clone(),
            user_name: user_name.to_string(),
            given_name: given_name.to_string(),
            surname: surname.to_string(),
            email: email.to_string(),
            client_token: format!("hr-{}", event.payload_hash.get(..32).unwrap_or(&event.payload_hash)),
        };
        match self.directory.ensure_user(&new_user).await {
            Ok(outcome) => {
                info!(employee_id = %next.employee_id, user = %new_user.user_name, ?outcome, "directory user ready")
            }
            Err(e) if e.is_retryable() => return Err(Failure::Directory(e)),
            Err(e) => {
                if !rehire {
                    next.state = EmployeeState::Failed;
                    next.state_since_ms = now;
                }
                next.rehire_pending = false;
                next.request_event_id = None;
                next.failure_code = Some(e.code().to_owned());
                next.failure_message = Some(e.to_string());
                self.store.save_employee(&next, current.as_ref().map(|c| c.version)).await?;
                return Ok((EventOutcome::Rejected, format!("directory user not created: {e}")));
            }
        }
        match self.store.save_joiner(&next, current.as_ref().map(|c| c.version), &name_claim).await {
            Ok(()) => {}
            Err(StoreError::NameHeld { holder }) => {
                return Ok((EventOutcome::Rejected, name_held(user_name.as_str(), &profile.directory_id, &holder)));
            }
            Err(e) => return Err(e.into()),
        }
        if rehire {
            return Ok((EventOutcome::Applied, REHIRE_WAITS.into()));
        }
        self.send_request(&next, now).await?;
        Ok((EventOutcome::Applied, format!("WorkSpace requested with profile {profile_name}")))
    }

    async fn leave(
        &self,
        event: &HrEvent,
        current: Option<EmployeeRecord>,
        now: i64,
    ) -> Result<(EventOutcome, String), Failure> {
        let event_id = event.event_id.as_str();
        let Some(current) = current else {
            // Nothing to terminate; the record makes an older join that arrives later stale.
            let mut next = EmployeeRecord::new(event.employee.employee_id.as_str(), now);
            next.version = 1;
            next.state = EmployeeState::Terminated;
            next.last_event_ms = event.occurred_at.millis();
            next.last_event_id = event_id.to_owned();
            next.leave_event_id = Some(event_id.to_owned());
            next.terminated_ms = Some(now);
            self.store.save_employee(&next, None).await?;
            return Ok((EventOutcome::Applied, "no WorkSpace to terminate: the employee never joined".into()));
        };
        let resuming = current.leave_event_id.as_deref() == Some(event_id);
        let mut next = current.clone();
        next.version += 1;
        next.last_event_ms = event.occurred_at.millis();
        next.last_event_id = event_id.to_owned();
        next.updated_ms = now;
        let reason = match current.state {
            EmployeeState::Leaving if resuming => {
                self.send_termination(&current, now).await?;
                return Ok((EventOutcome::Applied, "termination requested".into()));
            }
            EmployeeState::Leaving | EmployeeState::Terminating if current.rehire_pending => {
                next.rehire_pending = false;
                next.request_event_id = None;
                next.leave_event_id = Some(event_id.to_owned());
                self.store.save_employee(&next, Some(current.version)).await?;
                return Ok((EventOutcome::Applied, "pending rehire withdrawn; the termination goes on".into()));
            }
            EmployeeState::Leaving | EmployeeState::Terminating | EmployeeState::Terminated => {
                return Ok((
                    EventOutcome::Skipped,
                    format!(
                        "already {}: leave {} applied",
                        current.state.as_str(),
                        current.leave_event_id.as_deref().unwrap_or("?")
                    ),
                ));
            }
            EmployeeState::Failed if current.workspace_id.is_none() => {
                next.state = EmployeeState::Terminated;
                next.terminated_ms = Some(now);
                "no WorkSpace to terminate: onboarding had failed"
            }
            EmployeeState::Requested | EmployeeState::Pending | EmployeeState::Active | EmployeeState::Failed => {
                next.state = EmployeeState::Leaving;
                "termination requested"
            }
        };
        next.state_since_ms = now;
        next.leave_event_id = Some(event_id.to_owned());
        next.stuck_since_ms = None;
        self.disable_user(&current).await?;
        self.store.save_employee(&next, Some(current.version)).await?;
        if next.state == EmployeeState::Leaving {
            self.send_termination(&next, now).await?;
        }
        Ok((EventOutcome::Applied, reason.into()))
    }

    /// Whether a name's holder has given it up: confirmed terminated (and not being rehired), or
    /// without a record. `Some(version read)` if so.
    async fn releasable(&self, holder: &str) -> Result<Option<Option<u64>>, Failure> {
        Ok(match self.store.employee(holder).await? {
            None => Some(None),
            Some(h) if h.state == EmployeeState::Terminated && !h.rehire_pending => Some(Some(h.version)),
            Some(_) => None,
        })
    }

    /// Blocks sign-in where configured and possible; the account and its data stay.
    async fn disable_user(&self, employee: &EmployeeRecord) -> Result<(), Failure> {
        if !self.config.disable_user_on_leave || !self.directory.can_disable() {
            return Ok(());
        }
        let (Some(profile), Some(user)) = (&employee.profile, &employee.username) else { return Ok(()) };
        match self.directory.disable_user(&profile.directory_id, user).await {
            Ok(_) => {
                info!(employee_id = %employee.employee_id, %user, "directory user disabled");
                Ok(())
            }
            Err(e) if e.is_retryable() => Err(Failure::Directory(e)),
            Err(e) => {
                warn!(employee_id = %employee.employee_id, %user, error = %e, "directory user not disabled");
                Ok(())
            }
        }
    }

    async fn send_termination(&self, employee: &EmployeeRecord, now: i64) -> Result<(), Failure> {
        let request = termination_request(employee, now);
        send_json(&self.terminations, employee, request, "leaving employee without leave event, user or profile").await
    }

    async fn send_request(&self, employee: &EmployeeRecord, now: i64) -> Result<(), Failure> {
        let request = workspace_request(employee, now);
        send_json(&self.requests, employee, request, "requested employee without request, user or profile").await
    }
}

/// Sends one message built from the employee record; `None` means the record lacks what it needs.
async fn send_json<T: serde::Serialize>(
    queue: &impl MessageQueue,
    employee: &EmployeeRecord,
    message: Option<T>,
    missing: &str,
) -> Result<(), Failure> {
    let malformed =
        |detail: String| Failure::Store(StoreError::Malformed { key: employee.employee_id.clone(), detail });
    let message = message.ok_or_else(|| malformed(missing.to_owned()))?;
    let body = serde_json::to_string(&message).map_err(|e| malformed(e.to_string()))?;
    queue.send(&[Outgoing::plain(body)]).await?;
    Ok(())
}

/// Until when a claim holds: the invocation's deadline. An unknown (absent, zero or past)
/// deadline must not make a claim anyone could take over at once.
/// Time one record may need (about ten calls to DynamoDB, the directory and SQS, with retries).
const RECORD_BUDGET_MS: i64 = 5_000;

/// Whether too little of the invocation is left to start another record.
pub fn out_of_time(deadline_ms: Option<i64>, now: i64) -> bool {
    deadline_ms.is_some_and(|d| d - now < RECORD_BUDGET_MS)
}

pub fn claim_until(deadline_ms: Option<i64>, now: i64, fallback_ms: i64) -> i64 {
    deadline_ms.filter(|d| *d > now).unwrap_or(now + fallback_ms)
}

/// Rejected events of a batch, as a CloudWatch metric (embedded metric format, on stdout): a
/// rejection is an integration problem someone must look at, and a rejected leave means a
/// leaver keeps access until it is fixed.
fn emit_rejected_metric(rejected: usize) {
    if rejected > 0 {
        crate::telemetry::emit_counts(&[("EventsRejected", rejected)]);
    }
}

/// Why a join is refused when its user name belongs to another employee.
fn name_held(user_name: &str, directory_id: &str, holder: &str) -> String {
    format!(
        "employee.username {} is held by employee {holder} in directory {directory_id} [name-held]: a user name has one owner until that employee is confirmed terminated (a re-keyed person: send the leave of the old employee_id first)",
        validation::echo(user_name)
    )
}

/// The history line of a valid event's delivery, its reason bounded.
pub fn event_entry(
    event: &HrEvent,
    record: &QueueRecord,
    outcome: EventOutcome,
    reason: &str,
    now: i64,
) -> HistoryEntry {
    HistoryEntry {
        employee_id: Some(event.employee.employee_id.to_string()),
        event_id: Some(event.event_id.to_string()),
        message_id: validation::bounded(&record.message_id, 128),
        kind: Some(event.kind.as_str().to_owned()),
        occurred_ms: Some(event.occurred_at.millis()),
        outcome,
        reason: validation::reason(reason),
        recorded_ms: now,
    }
}

/// The history line of a delivery that breaks the contract. It is filed under the employee and
/// event ids only when they are valid (they become parts of keys); ids that are not valid are
/// echoed in the reason, bounded.
pub fn rejection_entry(record: &QueueRecord, invalid: &InvalidEvent, now: i64) -> HistoryEntry {
    let mut sent = Vec::new();
    if let Some(raw) = &invalid.raw_event_id {
        sent.push(format!("event_id {raw}"));
    }
    if let Some(raw) = &invalid.raw_employee_id {
        sent.push(format!("employee_id {raw}"));
    }
    let sent = if sent.is_empty() { String::new() } else { format!(" ({})", sent.join(", ")) };
    HistoryEntry {
        employee_id: invalid.employee_id.clone(),
        event_id: invalid.event_id.clone(),
        message_id: validation::bounded(&record.message_id, 128),
        kind: None,
        occurred_ms: None,
        outcome: EventOutcome::Rejected,
        reason: validation::reason(&format!("invalid event{sent}: {invalid}")),
        recorded_ms: now,
    }
}

const REHIRE_WAITS: &str = "rehire: a new WorkSpace is requested once the previous one is confirmed terminated";

/// The WorkSpace request for an employee whose join is being provisioned.
pub fn workspace_request(employee: &EmployeeRecord, now: i64) -> Option<WorkspaceRequest> {
    Some(WorkspaceRequest {
        employee_id: employee.employee_id.clone(),
        event_id: employee.request_event_id.clone()?,
        username: employee.username.clone()?,
        profile_name: employee.profile_name.clone()?,
        profile: employee.profile.clone()?,
        requested_ms: now,
    })
}

/// The termination request for a leaving employee.
pub fn termination_request(employee: &EmployeeRecord, now: i64) -> Option<TerminationRequest> {
    Some(TerminationRequest {
        employee_id: employee.employee_id.clone(),
        event_id: employee.leave_event_id.clone()?,
        workspace_id: employee.workspace_id.clone(),
        directory_id: employee.profile.as_ref()?.directory_id.clone(),
        username: employee.username.clone()?,
        requested_ms: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeDirectory, MemoryQueue, MemoryStore};

    const PROFILES: &str = r#"{"default_profile":"standard","profiles":{"standard":{"directory_id":"d-9067a1b2c3","bundle_id":"wsb-stdwin2022"}}}"#;

    fn intake() -> Intake<MemoryStore, FakeDirectory, MemoryQueue> {
        Intake {
            store: MemoryStore::default(),
            directory: FakeDirectory::default(),
            requests: MemoryQueue::default(),
            terminations: MemoryQueue::default(),
            profiles: Profiles::from_json(PROFILES).unwrap(),
            config: IntakeConfig {
                idempotency_ttl_s: 86_400,
                fallback_claim_ms: 900_000,
                disable_user_on_leave: false,
                clock_skew_ms: 300_000,
                effective_horizon_ms: 400 * 86_400_000,
            },
        }
    }

    fn join(employee: &str, event: &str, username: &str) -> QueueRecord {
        let body = serde_json::json!({
            "schema_version": "1", "event_id": event, "type": "join", "occurred_at": "2026-11-02T09:00:00Z",
            "employee": { "employee_id": employee, "username": username, "given_name": "G", "surname": "S",
                          "email": format!("{username}@example.com") }
        });
        QueueRecord {
            message_id: format!("m-{event}"),
            body: body.to_string(),
            receive_count: 1,
            group_id: Some(employee.into()),
        }
    }

    #[tokio::test]
    async fn a_retry_holds_back_only_the_later_records_of_its_own_group() {
        // GIVEN a FIFO batch where one employee's record cannot be read for now
        let intake = intake();
        lock_insert(&intake.store.unreadable, "E1");
        let batch = [join("E1", "a1", "ann"), join("E2", "b1", "bob"), join("E1", "a2", "ann"), join("E3", "c1", "cy")];
        // WHEN the batch is handled
        let outcome = intake.handle_batch(&batch, None, true).await;
        // THEN E1's records come back, in order; E2 and E3 are applied
        assert_eq!(outcome.failed_message_ids, vec!["m-a1", "m-a2"]);
        assert_eq!(intake.store.count(EmployeeState::Requested), 2);
        assert!(intake.store.get("E1").is_none());
        // and a standard queue hands back just the failing records
        let outcome = intake.handle_batch(&batch, None, false).await;
        assert_eq!(outcome.failed_message_ids, vec!["m-a1", "m-a2"]);
    }

    fn lock_insert(set: &std::sync::Mutex<std::collections::BTreeSet<String>>, id: &str) {
        set.lock().unwrap().insert(id.into());
    }

    #[tokio::test]
    async fn a_user_name_has_one_owner_until_that_employee_is_terminated() {
        // GIVEN E1 joined as jdoe
        let intake = intake();
        assert_eq!(intake.handle(&join("E1", "j1", "jdoe"), None).await, RecordResult::Done(EventOutcome::Applied));
        // WHEN another employee asks for JDoe
        let refused = intake.handle(&join("E2", "j2", "JDoe"), None).await;
        // THEN it is refused and gets nothing
        assert_eq!(refused, RecordResult::Done(EventOutcome::Rejected));
        assert!(intake.store.get("E2").is_none());
        assert_eq!(intake.requests.sent.lock().unwrap().len(), 1, "one WorkSpace request, E1's");
        assert_eq!(intake.directory.created.lock().unwrap().as_slice(), ["jdoe"], "the directory is not touched");
        // WHEN E1 is confirmed terminated, THEN the name is free for E2
        let mut e1 = intake.store.get("E1").unwrap();
        e1.state = EmployeeState::Terminated;
        e1.version += 1;
        intake.store.employees.lock().unwrap().insert("E1".into(), e1);
        assert_eq!(intake.handle(&join("E2", "j3", "JDoe"), None).await, RecordResult::Done(EventOutcome::Applied));
        assert_eq!(intake.store.name_holder("d-9067a1b2c3", "jdoe").await.unwrap().as_deref(), Some("E2"));
    }

    #[tokio::test]
    async fn a_future_time_stored_by_an_earlier_version_never_makes_a_leave_stale() {
        // GIVEN a record whose last event claims to have happened in 2100
        let intake = intake();
        intake.handle(&join("E1", "j1", "jdoe"), None).await;
        let mut e1 = intake.store.get("E1").unwrap();
        e1.last_event_ms = Timestamp::parse("2100-01-01T00:00:00Z").unwrap().millis();
        intake.store.employees.lock().unwrap().insert("E1".into(), e1);
        // WHEN a real leave arrives
        let body = serde_json::json!({ "schema_version": "1", "event_id": "l1", "type": "leave",
            "occurred_at": Timestamp::now().to_rfc3339(), "employee": { "employee_id": "E1" } });
        let leave = QueueRecord { message_id: "m-l1".into(), body: body.to_string(), receive_count: 1, group_id: None };
        // THEN it is applied and the termination requested
        assert_eq!(intake.handle(&leave, None).await, RecordResult::Done(EventOutcome::Applied));
        assert_eq!(intake.store.get("E1").unwrap().state, EmployeeState::Leaving);
        assert_eq!(intake.terminations.sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_record_is_not_started_with_less_than_its_budget_left() {
        use super::out_of_time;
        assert!(!out_of_time(None, 1_000_000), "no deadline known: keep going");
        assert!(!out_of_time(Some(30_000), 0));
        assert!(!out_of_time(Some(30_000), 25_000));
        assert!(out_of_time(Some(30_000), 25_001));
        assert!(out_of_time(Some(30_000), 40_000));
    }

    #[test]
    fn an_unknown_deadline_never_makes_a_stealable_claim() {
        assert_eq!(claim_until(Some(5_000), 1_000, 900_000), 5_000);
        for unknown in [None, Some(0), Some(999)] {
            assert_eq!(claim_until(unknown, 1_000, 900_000), 901_000, "{unknown:?}");
        }
    }
}
