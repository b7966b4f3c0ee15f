//! A cancel: withdraws a future-dated event while it is still held.

use super::Intake;
use crate::domain::event::HrEvent;
use crate::domain::lifecycle::Input;
use crate::ports::{DirectoryUsers, MessageQueue, StateStore};
use crate::services::StepError;

impl<S: StateStore, D: DirectoryUsers, Q: MessageQueue> Intake<S, D, Q> {
    /// The cancel as the lifecycle sees it: whether its target is held, as read.
    pub(super) async fn cancel_input(&self, event: &HrEvent) -> Result<Input, StepError> {
        let employee_id = event.employee.employee_id.as_str();
        let target = event.cancels.as_ref().map(ToString::to_string);
        let held = match &target {
            Some(target) => self.store.scheduled_for(employee_id).await?.iter().any(|e| &e.event_id == target),
            None => false,
        };
        Ok(Input::Cancel { employee_id: employee_id.to_owned(), target, held })
    }
}
