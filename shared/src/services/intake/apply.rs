//! A claimed event: read the employee, decide, perform the decision's steps in order.

use super::Intake;
use crate::domain::employee::{EventOutcome, ScheduledEvent};
use crate::domain::event::{EventKind, HrEvent};
use crate::domain::lifecycle::{self, HrInput, HrKind, Input, NameStatus, Step, Verdict};
use crate::ports::{Claim, DirectoryUsers, MessageQueue, PortError as _, StateStore, StoreError};
use crate::services::{Outbox, QueueRecord, StepError, perform};
use tracing::{info, warn};

/// What performing a decision's steps came to.
pub(super) enum Performed {
    Done,
    /// A step found the world other than read: decide again on this input.
    DecideAgain(Box<Input>),
}

/// A decision is made at most this many times per delivery (a name taken meanwhile, a held
/// event released meanwhile); then the delivery is retried.
const DECISIONS_PER_DELIVERY: usize = 3;

impl<S: StateStore, D: DirectoryUsers, Q: MessageQueue> Intake<S, D, Q> {
    /// Applies a claimed event. Every step is idempotent, so a redelivery after a crash resumes.
    pub(super) async fn apply(
        &self,
        event: &HrEvent,
        record: &QueueRecord,
        claim: &Claim,
        now: i64,
    ) -> Result<(EventOutcome, String), StepError> {
        let employee_id = event.employee.employee_id.as_str();
        // The employee as read, and the event as the lifecycle takes it (a cancel is answered
        // before anything is read).
        let (current, kind) = match event.kind {
            EventKind::Cancel => return self.cancel(event, claim, record, now).await,
            EventKind::Join => (self.store.employee(employee_id).await?, HrKind::Join(self.joiner(event).await?)),
            EventKind::Move => {
                let current = self.store.employee(employee_id).await?;
                let mover = self.mover(event, current.as_ref()).await?;
                (current, HrKind::Move(mover))
            }
            // The event's own grace period, or the deployment's.
            EventKind::Leave => (
                self.store.employee(employee_id).await?,
                HrKind::Leave {
                    disable_user: self.config.disable_user_on_leave && self.directory.can_disable(),
                    grace_ms: event.grace_ms.unwrap_or(self.config.leave_grace_ms),
                },
            ),
        };
        let mut input = Input::Hr(HrInput {
            employee_id: employee_id.to_owned(),
            event_id: event.event_id.to_string(),
            occurred_ms: event.occurred_at.millis(),
            effective_ms: event.effective_at.map(|t| t.millis()),
            clock_skew_ms: self.config.clock_skew_ms,
            kind,
        });
        for _ in 0..DECISIONS_PER_DELIVERY {
            let decision = lifecycle::decide(current.as_ref(), &input, now);
            match self.perform_all(&decision.steps, &input, event, record).await? {
                Performed::Done => {
                    return Ok(match decision.verdict {
                        Verdict::Event(outcome, reason) => (outcome, reason),
                        Verdict::Note(note) => (EventOutcome::Applied, note),
                    });
                }
                Performed::DecideAgain(next) => input = *next,
            }
        }
        Err(StepError::Store(StoreError::Conflict(employee_id.to_owned())))
    }

    pub(super) async fn perform_all(
        &self,
        steps: &[Step],
        input: &Input,
        event: &HrEvent,
        record: &QueueRecord,
    ) -> Result<Performed, StepError> {
        let outbox = Outbox { requests: Some(&self.requests), terminations: Some(&self.terminations) };
        let employee_id = event.employee.employee_id.as_str();
        for step in steps {
            match step {
                Step::EnsureUser(user) => match self.directory.ensure_user(user).await {
                    Ok(outcome) => info!(%employee_id, user = %user.user_name, ?outcome, "directory user ready"),
                    Err(e) if e.is_retryable() => return Err(e.into()),
                    Err(e) => {
                        let Input::Hr(join) = input else { return Err(e.into()) };
                        let refused = Input::UserRefused {
                            join: join.clone(),
                            code: e.code().to_owned(),
                            message: e.to_string(),
                        };
                        return Ok(Performed::DecideAgain(Box::new(refused)));
                    }
                },
                Step::DisableUser { directory_id, user_name } => {
                    match self.directory.disable_user(directory_id, user_name).await {
                        Ok(_) => info!(%employee_id, user = %user_name, "directory user disabled"),
                        Err(e) if e.is_retryable() => return Err(e.into()),
                        Err(e) => warn!(%employee_id, user = %user_name, error = %e, "directory user not disabled"),
                    }
                }
                Step::EnableUser { directory_id, user_name } => {
                    match self.directory.enable_user(directory_id, user_name).await {
                        Ok(outcome) => info!(%employee_id, user = %user_name, ?outcome, "directory user enabled"),
                        Err(e) if e.is_retryable() => return Err(e.into()),
                        // The WorkSpace is given back all the same; an administrator enables the user.
                        Err(e) => warn!(%employee_id, user = %user_name, error = %e, "directory user not enabled"),
                    }
                }
                Step::Hold { effective_ms } => {
                    let held = ScheduledEvent {
                        employee_id: employee_id.to_owned(),
                        event_id: event.event_id.to_string(),
                        kind: event.kind.as_str().to_owned(),
                        occurred_ms: event.occurred_at.millis(),
                        effective_ms: *effective_ms,
                        body: record.body.clone(),
                    };
                    self.store.schedule(&held).await?;
                }
                Step::Save { record, expected_version, claim: Some(claim) } => {
                    match self.store.save_joiner(record, *expected_version, claim).await {
                        Ok(()) => {}
                        // Claimed by another joiner between the read and the write.
                        Err(StoreError::NameHeld { holder }) => {
                            return Ok(Performed::DecideAgain(Box::new(name_now_held(input, holder))));
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                step => perform(step, &self.store, &outbox).await?,
            }
        }
        Ok(Performed::Done)
    }
}

fn name_now_held(input: &Input, holder: String) -> Input {
    let mut input = input.clone();
    match &mut input {
        Input::Hr(HrInput { kind: HrKind::Join(Ok(joiner)), .. }) => joiner.name = NameStatus::Held { holder },
        Input::Hr(HrInput { kind: HrKind::Move(Ok(mover)), .. }) => mover.name = NameStatus::Held { holder },
        _ => {}
    }
    input
}
