//! The intake: HR events → validated, deduplicated, ordered → the lifecycle's decision → directory
//! user, record, WorkSpace or termination request. One file per use case: this one takes a
//! delivery from parsing to its history line; `apply` decides and performs; `join` and `cancel`
//! read what their decisions need.

mod apply;
mod cancel;
mod join;

use super::{BatchContext, BatchOutcome, Deadline, QueueRecord, SqsHandler};
use crate::domain::employee::EventOutcome;
use crate::domain::event::{EventRules, HrEvent};
use crate::domain::profile::Profiles;
use crate::domain::time::Timestamp;
use crate::domain::validation::{self, InvalidEvent, MAX_BODY_BYTES};
use crate::ports::{
    Claim, ClaimOutcome, Clock, DUPLICATE, DirectoryUsers, HistoryEntry, MessageQueue, PortError as _, StateStore,
};
use futures_util::stream::{self, StreamExt};
use std::sync::Arc;
use tracing::{error, info, warn};

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// How long an event id is remembered (duplicates within it are recognised).
    pub idempotency_ttl_s: i64,
    /// Claim lifetime when the invocation's deadline is unknown.
    pub fallback_claim_ms: i64,
    /// On leave, disable the directory user (where the backend can); otherwise keep it.
    pub disable_user_on_leave: bool,
    /// How long a leaver's WorkSpace is kept, access revoked, before it is terminated (0: at
    /// once).
    pub leave_grace_ms: i64,
    /// How far `occurred_at` may lie in the future.
    pub clock_skew_ms: i64,
    /// How far `effective_at` may lie in the future.
    pub effective_horizon_ms: i64,
    /// How long a record waits for another invocation that holds its event (a duplicate
    /// delivered at the same time) before handing it back: a wait that sees the other finish
    /// records a duplicate instead of spending one of the message's receives.
    pub claim_wait_ms: u64,
}

#[cfg(test)]
impl IntakeConfig {
    /// The unit tests' settings: no grace, no wait for a held event.
    pub(crate) fn for_tests() -> Self {
        IntakeConfig {
            idempotency_ttl_s: 86_400,
            fallback_claim_ms: 900_000,
            disable_user_on_leave: false,
            leave_grace_ms: 0,
            clock_skew_ms: 300_000,
            effective_horizon_ms: 400 * 86_400_000,
            claim_wait_ms: 0,
        }
    }
}

/// The unit tests' profiles: one, `standard`.
#[cfg(test)]
pub(crate) const TEST_PROFILES: &str = r#"{"default_profile":"standard","profiles":{"standard":{"directory_id":"d-9067a1b2c3","bundle_id":"wsb-stdwin2022"}}}"#;

/// What production waits for a held event ([`IntakeConfig::claim_wait_ms`]): about one record's
/// work, so a duplicate delivered at the same time finds the first delivery done.
pub const CLAIM_WAIT_MS: u64 = 3_000;

/// At most this many message groups (FIFO) or employees (standard queue) of a batch are handled
/// at once; each one's records run in order.
pub const LANES_AT_ONCE: usize = 10;

pub struct Intake<S, D, Q> {
    pub store: S,
    pub directory: D,
    pub requests: Q,
    pub terminations: Q,
    pub profiles: Profiles,
    pub config: IntakeConfig,
    pub clock: Arc<dyn Clock>,
}

/// How one record ended, for the batch response.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordResult {
    /// Applied, skipped or rejected, and recorded: delete the message.
    Done(EventOutcome),
    /// Could not finish now (throttling, a concurrent attempt): deliver again.
    Retry(String),
}

impl<S: StateStore, D: DirectoryUsers, Q: MessageQueue> SqsHandler for Intake<S, D, Q> {
    /// The records of one lane (a FIFO message group, or one employee on a standard queue) run
    /// in order; lanes run at once, up to [`LANES_AT_ONCE`]. From a FIFO queue a record that must
    /// be retried is reported with the later records of its lane (so that person's order holds);
    /// other lanes go on, so one bad record never costs another employee's event.
    async fn handle_batch(&self, records: &[QueueRecord], context: BatchContext) -> BatchOutcome {
        let lanes = lanes(records, context.fifo);
        let ran: Vec<LaneOutcome> = stream::iter(lanes.into_iter().enumerate())
            .map(|(position, lane)| self.run_lane(records, lane, position < LANES_AT_ONCE, context))
            .buffer_unordered(LANES_AT_ONCE)
            .collect()
            .await;
        let mut failed: Vec<usize> = ran.iter().flat_map(|lane| lane.failed.iter().copied()).collect();
        failed.sort_unstable();
        let handed_back: usize = ran.iter().map(|lane| lane.handed_back).sum();
        if handed_back > 0 {
            warn!(unprocessed = handed_back, "invocation deadline near; the rest of the batch is handed back");
        }
        emit_outcome_metrics(
            ran.iter().map(|lane| lane.outcomes).fold([0; 4], |a, b| std::array::from_fn(|i| a[i] + b[i])),
        );
        BatchOutcome {
            failed_message_ids: failed.into_iter().map(|i| records[i].message_id.clone()).collect(),
            ..BatchOutcome::default()
        }
    }
}

/// What became of one lane's records.
#[derive(Debug, Default)]
struct LaneOutcome {
    /// Batch positions to report as failed.
    failed: Vec<usize>,
    /// Of those, records not started because the deadline was near.
    handed_back: usize,
    /// Records done, by outcome: applied, skipped, rejected, scheduled.
    outcomes: [usize; 4],
}

/// The batch's records by lane, each lane in batch order: by message group from a FIFO queue
/// (SQS's unit of order), by employee from a standard queue (a person's records would only
/// contend on the same items at once); a body whose employee cannot be read is a lane of its own.
fn lanes(records: &[QueueRecord], fifo: bool) -> Vec<Vec<usize>> {
    #[derive(serde::Deserialize)]
    struct Probe {
        employee: Option<ProbeEmployee>,
    }
    #[derive(serde::Deserialize)]
    struct ProbeEmployee {
        employee_id: Option<serde_json::Value>,
    }
    let mut order: Vec<String> = Vec::new();
    let mut by_key: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
    for (i, record) in records.iter().enumerate() {
        let key = if fifo {
            // Without a group id (never seen on FIFO) the records share one lane.
            format!("g:{}", record.group_id.as_deref().unwrap_or(""))
        } else {
            // A body over the contract's limit is rejected unread: not read for a lane either.
            let probe = (record.body.len() <= MAX_BODY_BYTES)
                .then(|| serde_json::from_str::<Probe>(&record.body).ok())
                .flatten();
            match probe.and_then(|p| p.employee?.employee_id) {
                Some(serde_json::Value::String(id)) => format!("e:{id}"),
                _ => format!("m:{i}"),
            }
        };
        let lane = by_key.entry(key.clone()).or_default();
        if lane.is_empty() {
            order.push(key);
        }
        lane.push(i);
    }
    order.into_iter().filter_map(|key| by_key.remove(&key)).collect()
}

impl<S: StateStore, D: DirectoryUsers, Q: MessageQueue> Intake<S, D, Q> {
    /// `first_wave`: the lane starts with the batch, so its first record runs whatever the
    /// deadline (lanes run side by side: that costs about one record's time in all).
    async fn run_lane(
        &self,
        records: &[QueueRecord],
        lane: Vec<usize>,
        first_wave: bool,
        context: BatchContext,
    ) -> LaneOutcome {
        let mut outcome = LaneOutcome::default();
        let mut held = false;
        for (n, &i) in lane.iter().enumerate() {
            let record = &records[i];
            if held {
                outcome.failed.push(i);
                continue;
            }
            if (n > 0 || !first_wave) && context.deadline.too_close(self.clock.now_ms(), RECORD_BUDGET_MS) {
                outcome.handed_back += lane.len() - n;
                outcome.failed.extend(&lane[n..]);
                return outcome;
            }
            match self.handle(record, context.deadline).await {
                RecordResult::Done(done) => outcome.outcomes[outcome_slot(done)] += 1,
                RecordResult::Retry(reason) => {
                    warn!(message_id = %record.message_id, group_id = ?record.group_id, %reason, "record will be retried");
                    outcome.failed.push(i);
                    held = context.fifo;
                }
            }
        }
        outcome
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

    pub async fn handle(&self, record: &QueueRecord, deadline: Deadline) -> RecordResult {
        let now = self.clock.now_ms();
        let event = match HrEvent::parse(&record.body, self.rules(Timestamp::from_millis(now))) {
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
            in_progress_until_ms: deadline.claim_until(now, self.config.fallback_claim_ms),
            expires_at_s: now / 1000 + self.config.idempotency_ttl_s,
        };
        match self.claim_waiting(&claim, deadline).await {
            Err(e) if e.is_retryable() => return RecordResult::Retry(e.to_string()),
            Err(e) => {
                let why = format!("cannot be recorded: {e}");
                return self.record(&event, record, EventOutcome::Rejected, &why, now).await;
            }
            Ok(ClaimOutcome::InProgress) => {
                return RecordResult::Retry("another invocation is processing this event".into());
            }
            Ok(ClaimOutcome::Completed { same_payload, outcome, reason }) => {
                let cancelled = reason.as_deref().filter(|r| r.starts_with(cancel::CANCELLED_BY));
                let (result, why) = if let Some(cancelled) = cancelled.filter(|_| !same_payload) {
                    // A held event delivered again (or posted as it came due) after a cancel
                    // withdrew it: its cancellation is its outcome, recorded with the cancel.
                    (EventOutcome::Skipped, format!("{DUPLICATE} event already {cancelled}"))
                } else if same_payload {
                    let before = outcome.map_or("processed", EventOutcome::as_str);
                    (
                        EventOutcome::Skipped,
                        format!("{DUPLICATE} event already {before} ({})", reason.unwrap_or_default()),
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
        match self.apply(&event, record, &claim, now).await {
            Ok((outcome, reason)) => {
                info!(event_id = %event.event_id, employee_id = %event.employee.employee_id, message_id = %record.message_id, kind = event.kind.as_str(), outcome = outcome.as_str(), %reason, "event processed");
                if outcome != EventOutcome::Scheduled {
                    return self.settle(&event, record, &claim, outcome, &reason, now).await;
                }
                // Held events are processed again when due: leave the event id free for that.
                if let Err(e) = self.store.release(&claim.event_id, &claim.owner).await {
                    // The hold is in place and idempotent; a redelivery finds it.
                    return RecordResult::Retry(format!("releasing the claim: {e}"));
                }
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
                warn!(event_id = %event.event_id, employee_id = %event.employee.employee_id, reason = %why, "rejected");
                self.settle(&event, record, &claim, EventOutcome::Rejected, &why, now).await
            }
        }
    }

    /// Completes the claim and writes the delivery's history line in one write, so a duplicate
    /// that finds the event done finds its line too. A line the store refuses outright (it
    /// could never be written) is replaced by a minimal one, after the claim is completed alone.
    async fn settle(
        &self,
        event: &HrEvent,
        record: &QueueRecord,
        claim: &Claim,
        outcome: EventOutcome,
        reason: &str,
        now: i64,
    ) -> RecordResult {
        let line = event_entry(event, record, outcome, reason, now);
        match self.store.complete(&claim.event_id, &claim.owner, outcome, &line.reason, Some(&line)).await {
            Ok(()) => RecordResult::Done(outcome),
            // The effects are in place and idempotent; a redelivery finds them.
            Err(e) if e.is_retryable() => RecordResult::Retry(format!("completing the claim: {e}")),
            Err(e) => {
                error!(event_id = %claim.event_id, error = %e, "the claim and its line refused together; completing the claim alone");
                if let Err(e) = self.store.complete(&claim.event_id, &claim.owner, outcome, &line.reason, None).await {
                    return RecordResult::Retry(format!("completing the claim: {e}"));
                }
                match self.write_history(line).await {
                    RecordResult::Done(_) => RecordResult::Done(outcome),
                    retry => retry,
                }
            }
        }
    }

    /// Claims the event; if another invocation holds it, waits for that one to finish (up to
    /// [`IntakeConfig::claim_wait_ms`], and while the deadline allows), polling with a backoff.
    async fn claim_waiting(&self, claim: &Claim, deadline: Deadline) -> Result<ClaimOutcome, crate::ports::StoreError> {
        let mut claim = claim.clone();
        let mut waited_ms = 0;
        let mut pause_ms = 100;
        loop {
            let outcome = self.store.claim(&claim).await?;
            let now = self.clock.now_ms();
            let may_wait = waited_ms + pause_ms <= self.config.claim_wait_ms
                && !deadline.too_close(now + pause_ms as i64, RECORD_BUDGET_MS);
            if outcome != ClaimOutcome::InProgress || !may_wait {
                return Ok(outcome);
            }
            tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
            waited_ms += pause_ms;
            pause_ms = (pause_ms * 2).min(1_000);
            claim.now_ms = self.clock.now_ms();
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
}

/// Time one record may need (about ten calls to DynamoDB, the directory and SQS, with retries).
const RECORD_BUDGET_MS: i64 = 5_000;

/// Where an outcome is counted in [`LaneOutcome::outcomes`] (a drift line is never an event's).
fn outcome_slot(outcome: EventOutcome) -> usize {
    match outcome {
        EventOutcome::Applied => 0,
        EventOutcome::Skipped | EventOutcome::Drift => 1,
        EventOutcome::Rejected => 2,
        EventOutcome::Scheduled => 3,
    }
}

/// A batch's events by outcome, as CloudWatch metrics (embedded metric format, on stdout): the
/// dashboard's events by outcome, and `EventsRejected` its alarm (a rejection is an integration
/// problem someone must look at, and a rejected leave means a leaver keeps access until it is
/// fixed).
fn emit_outcome_metrics([applied, skipped, rejected, scheduled]: [usize; 4]) {
    crate::telemetry::emit_counts(&[
        ("EventsApplied", applied),
        ("EventsSkipped", skipped),
        ("EventsRejected", rejected),
        ("EventsScheduled", scheduled),
    ]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::employee::EmployeeState;
    use crate::ports::SystemClock;
    use crate::testing::{FakeDirectory, MemoryQueue, MemoryStore};

    fn intake() -> Intake<MemoryStore, FakeDirectory, MemoryQueue> {
        Intake {
            store: MemoryStore::default(),
            directory: FakeDirectory::default(),
            requests: MemoryQueue::default(),
            terminations: MemoryQueue::default(),
            profiles: Profiles::from_json(TEST_PROFILES).unwrap(),
            clock: Arc::new(SystemClock),
            config: IntakeConfig::for_tests(),
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
        let outcome = intake.handle_batch(&batch, BatchContext { deadline: Deadline::NONE, fifo: true }).await;
        // THEN E1's records come back, in order; E2 and E3 are applied
        assert_eq!(outcome.failed_message_ids, vec!["m-a1", "m-a2"]);
        assert_eq!(intake.store.count(EmployeeState::Requested), 2);
        assert!(intake.store.get("E1").is_none());
        // and a standard queue hands back just the failing records
        let outcome = intake.handle_batch(&batch, BatchContext::default()).await;
        assert_eq!(outcome.failed_message_ids, vec!["m-a1", "m-a2"]);
    }

    #[test]
    fn lanes_are_message_groups_on_fifo_and_employees_on_a_standard_queue() {
        let mut unreadable = join("E9", "x1", "xy");
        unreadable.body = "{not json".into();
        let batch = [join("E1", "a1", "ann"), join("E2", "b1", "bob"), join("E1", "a2", "ann"), unreadable.clone()];
        assert_eq!(lanes(&batch, true), vec![vec![0, 2], vec![1], vec![3]]);
        // Standard: by the employee the body names; an unreadable body is a lane of its own.
        let mut other_group = join("E1", "a3", "ann");
        other_group.group_id = None;
        let batch = [join("E1", "a1", "ann"), other_group, unreadable.clone(), unreadable, join("E2", "b1", "bob")];
        assert_eq!(lanes(&batch, false), vec![vec![0, 1], vec![2], vec![3], vec![4]]);
    }

    fn held_by_another(intake: &Intake<MemoryStore, FakeDirectory, MemoryQueue>, record: &QueueRecord) -> Claim {
        let event = HrEvent::parse(&record.body, intake.rules(Timestamp::from_millis(SystemClock.now_ms()))).unwrap();
        let now = SystemClock.now_ms();
        Claim {
            event_id: event.event_id.to_string(),
            payload_hash: event.payload_hash.clone(),
            owner: "another-invocation".into(),
            now_ms: now,
            in_progress_until_ms: now + 30_000,
            expires_at_s: now / 1000 + 86_400,
        }
    }

    #[tokio::test]
    async fn a_duplicate_delivered_while_the_first_is_at_work_waits_for_it_and_is_recorded_as_a_duplicate() {
        // GIVEN another invocation holds the event, and finishes 300 ms later
        let mut intake = intake();
        intake.config.claim_wait_ms = CLAIM_WAIT_MS;
        let record = join("E1", "j1", "jdoe");
        let claim = held_by_another(&intake, &record);
        assert_eq!(intake.store.claim(&claim).await.unwrap(), ClaimOutcome::Claimed);
        let first_finishes = async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            intake
                .store
                .complete(&claim.event_id, &claim.owner, EventOutcome::Applied, "WorkSpace requested", None)
                .await
        };
        // WHEN the duplicate is delivered meanwhile
        let (result, completed) = tokio::join!(intake.handle(&record, Deadline::NONE), first_finishes);
        completed.unwrap();
        // THEN it waits, and is done as a duplicate instead of coming back
        assert_eq!(result, RecordResult::Done(EventOutcome::Skipped));
        let history = intake.store.history("E1").await.unwrap();
        assert!(history.iter().any(|h| h.reason.starts_with(DUPLICATE)), "{history:?}");
        assert!(intake.directory.created.lock().unwrap().is_empty(), "the duplicate did nothing itself");
    }

    #[tokio::test]
    async fn an_event_held_past_the_wait_is_handed_back_and_the_holder_keeps_it() {
        // GIVEN an invocation that holds the event and never finishes (it was killed)
        let mut intake = intake();
        intake.config.claim_wait_ms = 700;
        let record = join("E1", "j1", "jdoe");
        let claim = held_by_another(&intake, &record);
        intake.store.claim(&claim).await.unwrap();
        // WHEN the event is delivered again, THEN it is handed back after the wait
        let started = std::time::Instant::now();
        assert!(matches!(intake.handle(&record, Deadline::NONE).await, RecordResult::Retry(_)));
        assert!(started.elapsed() >= std::time::Duration::from_millis(700), "waited {:?}", started.elapsed());
        assert_eq!(intake.store.idempotency_record("j1").unwrap().owner, "another-invocation");
        assert!(intake.store.get("E1").is_none());
        // and with the deadline near, it does not wait at all
        let near = Deadline::at(SystemClock.now_ms() + RECORD_BUDGET_MS);
        let started = std::time::Instant::now();
        assert!(matches!(intake.handle(&record, near).await, RecordResult::Retry(_)));
        assert!(started.elapsed() < std::time::Duration::from_millis(100), "waited {:?}", started.elapsed());
    }

    fn lock_insert(set: &std::sync::Mutex<std::collections::BTreeSet<String>>, id: &str) {
        set.lock().unwrap().insert(id.into());
    }

    #[tokio::test]
    async fn a_user_name_has_one_owner_until_that_employee_is_terminated() {
        // GIVEN E1 joined as jdoe
        let intake = intake();
        assert_eq!(
            intake.handle(&join("E1", "j1", "jdoe"), Deadline::NONE).await,
            RecordResult::Done(EventOutcome::Applied)
        );
        // WHEN another employee asks for JDoe
        let refused = intake.handle(&join("E2", "j2", "JDoe"), Deadline::NONE).await;
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
        assert_eq!(
            intake.handle(&join("E2", "j3", "JDoe"), Deadline::NONE).await,
            RecordResult::Done(EventOutcome::Applied)
        );
        assert_eq!(intake.store.name_holder("d-9067a1b2c3", "jdoe").await.unwrap().as_deref(), Some("E2"));
    }

    fn move_to(employee_id: &str, event_id: &str, workspace: serde_json::Value) -> QueueRecord {
        let body = serde_json::json!({ "schema_version": "1", "event_id": event_id, "type": "move",
            "occurred_at": "2026-11-02T10:00:00Z", "employee": { "employee_id": employee_id }, "workspace": workspace });
        QueueRecord { message_id: format!("m-{event_id}"), body: body.to_string(), receive_count: 1, group_id: None }
    }

    #[tokio::test]
    async fn given_a_joiner_being_provisioned_when_a_move_arrives_then_the_request_carries_the_new_profile() {
        // GIVEN E1 joined; the WorkSpace request is in flight
        let intake = intake();
        intake.handle(&join("E1", "j1", "jdoe"), Deadline::NONE).await;
        // WHEN a move asks for a bigger user volume
        let moved = move_to("E1", "m1", serde_json::json!({ "user_volume_gib": 100 }));
        assert_eq!(intake.handle(&moved, Deadline::NONE).await, RecordResult::Done(EventOutcome::Applied));
        // THEN the record has the new profile (the rest kept), the move waits for the WorkSpace,
        // the request goes again with the new profile, and nothing is terminated
        let e1 = intake.store.get("E1").unwrap();
        assert_eq!(e1.state, EmployeeState::Requested);
        let profile = e1.profile.as_ref().unwrap();
        assert_eq!((profile.bundle_id.as_str(), profile.user_volume_gib), ("wsb-stdwin2022", Some(100)));
        assert_eq!(e1.moving.as_ref().map(|m| m.event_id.as_str()), Some("m1"));
        let sent = intake.requests.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 2);
        assert!(sent[1].body.contains("\"user_volume_gib\":100"), "{}", sent[1].body);
        assert!(intake.terminations.sent.lock().unwrap().is_empty(), "a move is never taken for a leave");
        // WHEN a move names a bundle override the profile's validation refuses
        let bad = move_to("E1", "m2", serde_json::json!({ "auto_stop_minutes": 45 }));
        // THEN it is rejected naming the field, and the record is untouched
        assert_eq!(intake.handle(&bad, Deadline::NONE).await, RecordResult::Done(EventOutcome::Rejected));
        assert_eq!(intake.store.get("E1").unwrap(), e1);
        let history = intake.store.history("E1").await.unwrap();
        assert!(history.iter().any(|h| h.reason.contains("workspace.auto_stop_minutes")), "{history:?}");
    }

    #[tokio::test]
    async fn given_no_employee_when_a_move_arrives_then_it_is_rejected_and_nothing_is_written() {
        let intake = intake();
        let moved = move_to("E9", "m1", serde_json::json!({ "user_volume_gib": 100 }));
        assert_eq!(intake.handle(&moved, Deadline::NONE).await, RecordResult::Done(EventOutcome::Rejected));
        assert!(intake.store.get("E9").is_none());
        assert!(intake.requests.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_future_time_stored_by_an_earlier_version_never_makes_a_leave_stale() {
        // GIVEN a record whose last event claims to have happened in 2100
        let intake = intake();
        intake.handle(&join("E1", "j1", "jdoe"), Deadline::NONE).await;
        let mut e1 = intake.store.get("E1").unwrap();
        e1.last_event_ms = Timestamp::parse("2100-01-01T00:00:00Z").unwrap().millis();
        intake.store.employees.lock().unwrap().insert("E1".into(), e1);
        // WHEN a real leave arrives
        let body = serde_json::json!({ "schema_version": "1", "event_id": "l1", "type": "leave",
            "occurred_at": Timestamp::now().to_rfc3339(), "employee": { "employee_id": "E1" } });
        let leave = QueueRecord { message_id: "m-l1".into(), body: body.to_string(), receive_count: 1, group_id: None };
        // THEN it is applied and the termination requested
        assert_eq!(intake.handle(&leave, Deadline::NONE).await, RecordResult::Done(EventOutcome::Applied));
        assert_eq!(intake.store.get("E1").unwrap().state, EmployeeState::Leaving);
        assert_eq!(intake.terminations.sent.lock().unwrap().len(), 1);
    }
}
