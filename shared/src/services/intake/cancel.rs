//! A cancel: withdraws a future-dated event while it is still held, or rescinds a leave within
//! its grace period (the kept WorkSpace given back, as the lifecycle decides).
//!
//! The cancel marks its target first, by claiming the target's event id with a marker payload
//! (`cancelled-by:<cancel event id>`); if the target is held it completes the marker, and only
//! then removes the held event. So a crash anywhere in between is recognised on the redelivery
//! (the completed marker says the cancel took effect), and a target posted by the reconciler
//! meanwhile finds the marker when it arrives and is skipped as cancelled.

use super::Intake;
use crate::domain::employee::EventOutcome;
use crate::domain::event::HrEvent;
use crate::domain::lifecycle::{self, Input, Verdict};
use crate::ports::{Claim, ClaimOutcome, DirectoryUsers, MessageQueue, StateStore, StoreError};
use crate::services::{QueueRecord, StepError};

/// How the reason of a cancelled event's line begins (its idempotency record keeps it).
pub const CANCELLED_BY: &str = "cancelled by";

impl<S: StateStore, D: DirectoryUsers, Q: MessageQueue> Intake<S, D, Q> {
    pub(super) async fn cancel(
        &self,
        event: &HrEvent,
        own_claim: &Claim,
        record: &QueueRecord,
        now: i64,
    ) -> Result<(EventOutcome, String), StepError> {
        let employee_id = event.employee.employee_id.to_string();
        let event_id = event.event_id.to_string();
        let Some(target) = event.cancels.as_ref().map(ToString::to_string) else {
            return Ok(verdict(lifecycle::decide(
                None,
                &Input::Cancel { employee_id, event_id, target: None, held: false },
                now,
            )));
        };
        if target == event.event_id.as_str() {
            // Its own claim would hold the marker back for ever.
            return Ok((EventOutcome::Rejected, "cancels names this event itself: nothing to cancel".into()));
        }
        let marker = Claim {
            event_id: target.clone(),
            payload_hash: format!("cancelled-by:{}", event.event_id),
            owner: uuid::Uuid::new_v4().to_string(),
            ..own_claim.clone()
        };
        let input = |held| Input::Cancel {
            employee_id: employee_id.clone(),
            event_id: event_id.clone(),
            target: Some(target.clone()),
            held,
        };
        match self.store.claim(&marker).await? {
            // The target is being applied right now, or a crashed attempt of this cancel holds the
            // marker until its deadline: try again later.
            ClaimOutcome::InProgress => Err(StoreError::Conflict(target.clone()).into()),
            // This cancel marked it before a crash: it took effect; make sure it is not held.
            ClaimOutcome::Completed { same_payload: true, .. } => {
                self.store.unschedule(&employee_id, &target).await?;
                Ok(verdict(lifecycle::decide(None, &input(true), now)))
            }
            // The target was applied, skipped or rejected already (or cancelled by another cancel):
            // a leave within its grace period is rescinded.
            ClaimOutcome::Completed { same_payload: false, .. } => {
                self.rescind(&input(false), event, record, now).await
            }
            ClaimOutcome::Claimed => {
                let held = self.store.scheduled_for(&employee_id).await?.iter().any(|e| e.event_id == target);
                if !held {
                    // Never held, or posted again and applied already: the marker goes.
                    self.store.release(&target, &marker.owner).await?;
                    return self.rescind(&input(false), event, record, now).await;
                }
                // Cancelled from here on, whatever happens next: the marker is completed before
                // the held event is removed, so a crash in between is finished by the redelivery,
                // and the target, should the reconciler post it meanwhile, is skipped on arrival.
                let why = format!("{CANCELLED_BY} {} before it took effect", event.event_id);
                self.store.complete(&target, &marker.owner, EventOutcome::Skipped, &why, None).await?;
                self.store.unschedule(&employee_id, &target).await?;
                Ok(verdict(lifecycle::decide(None, &input(true), now)))
            }
        }
    }
}

impl<S: StateStore, D: DirectoryUsers, Q: MessageQueue> Intake<S, D, Q> {
    /// A cancel whose target is not held: decided on the employee's record, which gives a kept
    /// WorkSpace back if the target is a leave within its grace period.
    async fn rescind(
        &self,
        input: &Input,
        event: &HrEvent,
        record: &QueueRecord,
        now: i64,
    ) -> Result<(EventOutcome, String), StepError> {
        let current = self.store.employee(event.employee.employee_id.as_str()).await?;
        let decision = lifecycle::decide(current.as_ref(), input, now);
        match self.perform_all(&decision.steps, input, event, record).await? {
            super::apply::Performed::Done => Ok(verdict(decision)),
            // Only a join's steps decide again.
            super::apply::Performed::DecideAgain(_) => Err(StepError::NotHere("a cancel decided again")),
        }
    }
}

fn verdict(decision: lifecycle::Decision) -> (EventOutcome, String) {
    match decision.verdict {
        Verdict::Event(outcome, reason) => (outcome, reason),
        Verdict::Note(note) => (EventOutcome::Applied, note),
    }
}
