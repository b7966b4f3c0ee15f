//! What each function does: shells around the lifecycle ([`crate::domain::lifecycle::decide`]),
//! written against the ports so they run without AWS in unit and model tests. Each shell reads,
//! decides, performs the decision's steps in order and writes conditionally. The shells are
//! peers: what they share is here (records, deadlines, performing steps) or in the domain.

pub mod audit;
pub mod coalesce;
pub mod guard;
pub mod intake;
pub mod provisioner;
pub mod publisher;
pub mod reconciler;
pub mod terminator;

use crate::domain::employee::{EmployeeRecord, ScheduledEvent};
use crate::domain::lifecycle::{Decision, Input, Step, decide};
use crate::domain::messages::Redelivery;
use crate::ports::{Clock, MessageQueue, Outgoing, PortError, QueueError, StateStore, StoreError};
use std::future::Future;

/// One SQS record as the services need it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRecord {
    pub message_id: String,
    pub body: String,
    /// How many times SQS has delivered it (1 on the first delivery).
    pub receive_count: u32,
    /// The FIFO message group (`MessageGroupId`); `None` from a standard queue.
    pub group_id: Option<String>,
}

/// The ids of the records to report in `batchItemFailures`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    pub failed_message_ids: Vec<String>,
    /// Requests handed back for want of time, to send again before the batch is answered
    /// ([`send_hand_backs`]): each with the id of the message it replaces.
    pub(crate) hand_backs: Vec<(String, Outgoing)>,
}

/// How many times one request may be handed back for want of time before its deliveries count
/// as attempts again: with the delays of [`hand_back_delay_s`], about a day of a busy API.
pub const MAX_HAND_BACKS: u32 = 100;

/// From this many hand-backs of one request (about 5 minutes of delays) each is logged as a warning.
const HAND_BACKS_WORTH_A_WARNING: u32 = 5;

/// The delay before a request handed back `handed_back` times before comes again: 5 s, doubling,
/// at most SQS's 15 minutes (a failed delivery waits its queue's visibility timeout instead).
pub fn hand_back_delay_s(handed_back: u32) -> u32 {
    const MAX_DELAY_S: u32 = 900;
    5u32.saturating_mul(1 << handed_back.min(8)).min(MAX_DELAY_S)
}

/// Where a request stands across the messages that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// 1 on the request's first delivery.
    pub number: u32,
    /// The deliveries that spent an attempt (not handed back for want of time), this one included.
    pub attempt: u32,
    /// An earlier delivery may have made the call (a redelivery after a crash, a failure or an
    /// unanswered call): look for what it made before calling again.
    pub call_maybe_made: bool,
    before: Redelivery,
}

impl Delivery {
    pub(crate) fn of(record: &QueueRecord, request: &impl EmployeeRequest) -> Self {
        let before = request.redelivery();
        let number = before.deliveries.saturating_add(record.receive_count);
        Delivery {
            number,
            attempt: number.saturating_sub(before.handed_back).max(1),
            call_maybe_made: before.call_unanswered || record.receive_count > 1,
            before,
        }
    }
}

impl BatchOutcome {
    /// Hands `request` back for want of time (the deadline near, the WorkSpaces API busy): it
    /// spends no attempt nor SQS receive, being sent again, delayed, as a new message that says
    /// what came before (`call_unanswered`: this delivery's call went out without an answer),
    /// and the one received is deleted. Past [`MAX_HAND_BACKS`] it is retried as any failure is
    /// (the message's receive count, then its DLQ).
    pub(crate) fn hand_back<T: EmployeeRequest + serde::Serialize + Clone>(
        &mut self,
        record: &QueueRecord,
        request: &T,
        why: &str,
        call_unanswered: bool,
    ) {
        let delivery = Delivery::of(record, request);
        let employee_id = request.employee_id();
        let message_id = &record.message_id;
        let mut again = request.clone();
        again.set_redelivery(Redelivery {
            deliveries: delivery.number,
            // Saturating: the note comes back in a message body, whatever it says.
            handed_back: delivery.before.handed_back.saturating_add(1),
            call_unanswered: delivery.call_maybe_made || call_unanswered,
        });
        match serde_json::to_string(&again) {
            Ok(body) if delivery.before.handed_back < MAX_HAND_BACKS => {
                let handed_back = delivery.before.handed_back;
                let delay = hand_back_delay_s(handed_back);
                // Often (a few minutes of a busy API): an operator should see it.
                if handed_back >= HAND_BACKS_WORTH_A_WARNING {
                    tracing::warn!(%employee_id, %message_id, reason = %why, delay_s = delay, handed_back, "handed back again for want of time");
                } else {
                    tracing::info!(%employee_id, %message_id, reason = %why, delay_s = delay, "handed back for want of time");
                }
                let message = Outgoing { delay_seconds: Some(delay), ..Outgoing::plain(body) };
                self.hand_backs.push((message_id.clone(), message));
            }
            _ => {
                tracing::warn!(%employee_id, %message_id, reason = %why, "will be retried");
                self.failed_message_ids.push(message_id.clone());
            }
        }
    }
}

/// Sends the requests handed back to `queue` (their own), so their messages can be deleted; if
/// that fails, they are retried as any failure is.
pub(crate) async fn send_hand_backs<Q: MessageQueue>(queue: &Q, outcome: &mut BatchOutcome) {
    let hand_backs = std::mem::take(&mut outcome.hand_backs);
    if hand_backs.is_empty() {
        return;
    }
    let messages: Vec<Outgoing> = hand_backs.iter().map(|(_, m)| m.clone()).collect();
    if let Err(e) = queue.send(&messages).await {
        tracing::warn!(error = %e, count = messages.len(), "requests could not be handed back; retrying them");
        outcome.failed_message_ids.extend(hand_backs.into_iter().map(|(id, _)| id));
    }
}

/// When the invocation ends (Lambda's deadline), if known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadline(Option<i64>);

impl Deadline {
    /// No deadline known (a test, or a context without one).
    pub const NONE: Deadline = Deadline(None);

    pub fn at(ms: i64) -> Self {
        Deadline(Some(ms))
    }

    /// Lambda's context deadline (epoch milliseconds); zero means unknown.
    pub fn from_lambda(ms: u64) -> Self {
        Deadline(i64::try_from(ms).ok().filter(|d| *d > 0))
    }

    pub fn millis(self) -> Option<i64> {
        self.0
    }

    /// Whether less than `budget_ms` is left at `now`: start no more work, hand the rest back
    /// (what is done stays done, and no instance is lost to a timeout part-way through).
    pub fn too_close(self, now: i64, budget_ms: i64) -> bool {
        self.0.is_some_and(|d| d - now < budget_ms)
    }

    /// Until when an idempotency claim holds: the deadline. An unknown (absent or past) deadline
    /// must not make a claim anyone could take over at once.
    pub fn claim_until(self, now: i64, fallback_ms: i64) -> i64 {
        self.0.filter(|d| *d > now).unwrap_or(now + fallback_ms)
    }
}

/// Runs `call` only as long as the invocation has more than `margin_ms` left (at most half of
/// what is left is kept, so a short invocation still gets to call): a call that would outlive
/// it (a WorkSpaces call waiting its turn at 2 a second, with retries) is abandoned and `None`
/// returned, so the batch is settled, what is done staying done, instead of timing out whole
/// and coming back whole. Without a known deadline the call runs to its end.
pub async fn before_deadline<T>(
    deadline: Deadline,
    clock: &dyn Clock,
    margin_ms: i64,
    call: impl Future<Output = T>,
) -> Option<T> {
    let Some(end) = deadline.millis() else { return Some(call.await) };
    let left = end - clock.now_ms();
    let for_the_call = left - margin_ms.min(left / 2);
    if for_the_call <= 0 {
        return None;
    }
    tokio::time::timeout(std::time::Duration::from_millis(for_the_call.unsigned_abs()), call).await.ok()
}

/// What an SQS-triggered function gets besides its records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchContext {
    pub deadline: Deadline,
    /// The batch comes from a FIFO queue: order within a message group must hold.
    pub fifo: bool,
}

/// The one entry point of the three SQS functions (intake, provisioner, terminator).
pub trait SqsHandler: Send + Sync {
    fn handle_batch(&self, records: &[QueueRecord], context: BatchContext)
    -> impl Future<Output = BatchOutcome> + Send;
}

/// Where the steps' messages go; a shell that cannot send a kind of message has `None` there.
pub(crate) struct Outbox<'a, Q> {
    pub requests: Option<&'a Q>,
    pub terminations: Option<&'a Q>,
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Directory(#[from] crate::ports::DirectoryError),
    /// A step this shell does not perform: a bug in the decision, never retried into success.
    #[error("step not performed by this function: {0}")]
    NotHere(&'static str),
}

impl PortError for StepError {
    fn is_retryable(&self) -> bool {
        match self {
            StepError::Store(e) => e.is_retryable(),
            StepError::Queue(e) => e.is_retryable(),
            StepError::Directory(e) => e.is_retryable(),
            StepError::NotHere(_) => false,
        }
    }
    fn error_type(&self) -> String {
        match self {
            StepError::Store(e) => e.error_type(),
            StepError::Queue(e) => e.error_type(),
            StepError::Directory(e) => e.error_type(),
            StepError::NotHere(_) => "Step.NotHere".into(),
        }
    }
}

/// Sends one message.
async fn send<Q: MessageQueue, T: serde::Serialize>(
    queue: Option<&Q>,
    message: &T,
    what: &'static str,
) -> Result<(), StepError> {
    let queue = queue.ok_or(StepError::NotHere(what))?;
    let body = serde_json::to_string(message).map_err(|_| StepError::NotHere(what))?;
    queue.send(&[Outgoing::plain(body)]).await?;
    Ok(())
}

/// Performs one of the steps every shell may take: a plain conditional write, or a message.
/// The other steps are performed by the shells that take them (the intake's directory steps,
/// name claims, holds and cancels; the reconciler's releases), so each function's permissions
/// follow from its own code.
pub(crate) async fn perform<S: StateStore, Q: MessageQueue>(
    step: &Step,
    store: &S,
    outbox: &Outbox<'_, Q>,
) -> Result<(), StepError> {
    match step {
        Step::Save { record, expected_version, claim: None } => store.save_employee(record, *expected_version).await?,
        Step::RequestWorkspace(request) => send(outbox.requests, request, "RequestWorkspace").await?,
        Step::RequestTermination(request) => send(outbox.terminations, request, "RequestTermination").await?,
        Step::Save { claim: Some(_), .. } => return Err(StepError::NotHere("Save with a name claim")),
        Step::Unschedule { .. } => return Err(StepError::NotHere("Unschedule")),
        Step::Post(_) => return Err(StepError::NotHere("Post")),
        Step::EnsureUser(_) => return Err(StepError::NotHere("EnsureUser")),
        Step::DisableUser { .. } => return Err(StepError::NotHere("DisableUser")),
        Step::EnableUser { .. } => return Err(StepError::NotHere("EnableUser")),
        Step::Hold { .. } => return Err(StepError::NotHere("Hold")),
        Step::Move(_) => return Err(StepError::NotHere("Move")),
    }
    Ok(())
}

/// A due event, posted again to the HR queue (FIFO: the employee's group, deduplicated per event).
pub(crate) fn due_message(event: &ScheduledEvent) -> Outgoing {
    Outgoing {
        body: event.body.clone(),
        group_id: Some(event.employee_id.clone()),
        deduplication_id: Some(format!("release-{}", event.event_id)),
        delay_seconds: None,
    }
}

/// How many times a result is decided again on a record that changed meanwhile.
const DECIDE_ATTEMPTS: usize = 3;

/// Decides `input` on the employee as read and performs the steps. A conditional write that
/// finds the record changed (another stimulus got there first) reads it again and decides
/// again: the result may no longer be wanted, or may now mean something else (a WorkSpace
/// created after the leave is handed over for termination). The decision made is returned.
pub(crate) async fn settle<S: StateStore, Q: MessageQueue>(
    store: &S,
    outbox: &Outbox<'_, Q>,
    clock: &dyn Clock,
    employee_id: &str,
    mut current: Option<EmployeeRecord>,
    input: &Input,
) -> Result<(Option<EmployeeRecord>, Decision), StepError> {
    let mut attempt = 0;
    loop {
        let decision = decide(current.as_ref(), input, clock.now_ms());
        let mut result = Ok(());
        for step in &decision.steps {
            if let Err(e) = perform(step, store, outbox).await {
                result = Err(e);
                break;
            }
        }
        match result {
            Ok(()) => return Ok((current, decision)),
            Err(StepError::Store(StoreError::Conflict(_))) if attempt + 1 < DECIDE_ATTEMPTS => {
                attempt += 1;
                tracing::info!(%employee_id, "employee changed meanwhile; deciding again");
                current = store.employee(employee_id).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What a batch does with a second request (another event's) for the same employee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SameEmployee {
    /// Its turn comes later: failed back, delivered again after the visibility timeout.
    Later,
    /// Decided now on the same read: the record says which one (if any) it still wants, and the
    /// others are dropped (whoever writes the record asks again for what it then waits on).
    Together,
}

/// Parses a batch of requests (one per employee and event: a later duplicate adds nothing) and
/// reads their employees with one consistent batch read. A malformed message is failed so it
/// reaches the DLQ, where it is visible; if the read fails, every message is failed and `None`
/// returned.
pub(crate) async fn requests_with_employees<'a, T: EmployeeRequest>(
    store: &impl StateStore,
    records: &'a [QueueRecord],
    what: &str,
    same_employee: SameEmployee,
    outcome: &mut BatchOutcome,
) -> Option<Vec<(&'a QueueRecord, T, Option<EmployeeRecord>)>> {
    let mut requests: std::collections::BTreeMap<String, Vec<(&QueueRecord, T)>> = std::collections::BTreeMap::new();
    for record in records {
        match serde_json::from_str::<T>(&record.body) {
            Ok(request) => {
                let theirs = requests.entry(request.employee_id().to_owned()).or_default();
                if let Some((earlier, _)) = theirs.iter().find(|(_, r)| r.event_id() == request.event_id()) {
                    // A duplicate: settled with the first, it adds nothing.
                    tracing::info!(message_id = %record.message_id, duplicate_of = %earlier.message_id, "duplicate {what}");
                    continue;
                }
                if !theirs.is_empty() && same_employee == SameEmployee::Later {
                    // Another event's request for the same employee: its own turn comes later.
                    outcome.failed_message_ids.push(record.message_id.clone());
                    continue;
                }
                theirs.push((record, request));
            }
            Err(e) => {
                tracing::warn!(message_id = %record.message_id, error = %e, "malformed {what}");
                outcome.failed_message_ids.push(record.message_id.clone());
            }
        }
    }
    let ids: Vec<String> = requests.keys().cloned().collect();
    let employees: std::collections::HashMap<String, EmployeeRecord> = match store.employees(&ids).await {
        Ok(list) => list.into_iter().map(|e| (e.employee_id.clone(), e)).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "reading employees failed; retrying the batch");
            outcome.failed_message_ids.extend(requests.values().flatten().map(|(r, _)| r.message_id.clone()));
            return None;
        }
    };
    Some(
        requests
            .into_values()
            .flatten()
            .map(|(record, request)| {
                let employee = employees.get(request.employee_id()).cloned();
                (record, request, employee)
            })
            .collect(),
    )
}

/// A request about one employee, as the provisioner and terminator receive them.
pub(crate) trait EmployeeRequest: serde::de::DeserializeOwned {
    fn employee_id(&self) -> &str;
    fn event_id(&self) -> &str;
    /// What came before this message.
    fn redelivery(&self) -> Redelivery;
    fn set_redelivery(&mut self, redelivery: Redelivery);
}

impl EmployeeRequest for crate::domain::messages::WorkspaceRequest {
    fn employee_id(&self) -> &str {
        &self.employee_id
    }
    fn event_id(&self) -> &str {
        &self.event_id
    }
    fn redelivery(&self) -> Redelivery {
        self.redelivery
    }
    fn set_redelivery(&mut self, redelivery: Redelivery) {
        self.redelivery = redelivery;
    }
}

impl EmployeeRequest for crate::domain::messages::TerminationRequest {
    fn employee_id(&self) -> &str {
        &self.employee_id
    }
    fn event_id(&self) -> &str {
        &self.event_id
    }
    fn redelivery(&self) -> Redelivery {
        self.redelivery
    }
    fn set_redelivery(&mut self, redelivery: Redelivery) {
        self.redelivery = redelivery;
    }
}

/// The other employee holding a user name, if it is not `employee_id`'s. A WorkSpace found by
/// directory and user name is taken as this employee's (adopted, or terminated on their leave)
/// only when this returns `None`: the name is theirs, or (records older than name claims) no
/// one's.
pub(crate) async fn name_held_by_other(
    store: &impl StateStore,
    employee_id: &str,
    directory_id: &str,
    user_name: &str,
) -> Result<Option<String>, StoreError> {
    Ok(store.name_holder(directory_id, user_name).await?.filter(|holder| holder != employee_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_that_would_outlive_the_invocation_is_abandoned_in_time() {
        let clock = crate::ports::SystemClock;
        let slow = || async {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            "answered"
        };
        let quick = || async { "answered" };
        // No deadline known: it runs to its end.
        assert_eq!(before_deadline(Deadline::NONE, &clock, 1_000, quick()).await, Some("answered"));
        // 300 ms left beyond the margin: a 5 s call is given up after them.
        let started = std::time::Instant::now();
        let deadline = Deadline::at(clock.now_ms() + 2_300);
        assert_eq!(before_deadline(deadline, &clock, 2_000, slow()).await, None);
        let waited = started.elapsed();
        assert!(
            waited >= std::time::Duration::from_millis(250) && waited < std::time::Duration::from_secs(2),
            "{waited:?}"
        );
        // Less left than the margin: half of it is kept, the call gets the other half.
        let started = std::time::Instant::now();
        let deadline = Deadline::at(clock.now_ms() + 1_000);
        assert_eq!(before_deadline(deadline, &clock, 4_000, quick()).await, Some("answered"));
        assert_eq!(before_deadline(deadline, &clock, 4_000, slow()).await, None);
        assert!(started.elapsed() < std::time::Duration::from_millis(900), "{:?}", started.elapsed());
        // Past the deadline: not started.
        let deadline = Deadline::at(clock.now_ms() - 1);
        assert_eq!(before_deadline(deadline, &clock, 1_000, quick()).await, None);
    }

    #[test]
    fn a_record_is_not_started_with_less_than_its_budget_left() {
        assert!(!Deadline::NONE.too_close(1_000_000, 5_000), "no deadline known: keep going");
        assert!(!Deadline::at(30_000).too_close(0, 5_000));
        assert!(!Deadline::at(30_000).too_close(25_000, 5_000));
        assert!(Deadline::at(30_000).too_close(25_001, 5_000));
        assert!(Deadline::at(30_000).too_close(40_000, 5_000));
        assert_eq!(Deadline::from_lambda(0), Deadline::NONE);
    }

    #[test]
    fn an_unknown_deadline_never_makes_a_stealable_claim() {
        assert_eq!(Deadline::at(5_000).claim_until(1_000, 900_000), 5_000);
        for unknown in [Deadline::NONE, Deadline::at(0), Deadline::at(999)] {
            assert_eq!(unknown.claim_until(1_000, 900_000), 901_000, "{unknown:?}");
        }
    }
}
