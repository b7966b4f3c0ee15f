//! The operator's side of the mass-termination guard (`hrws guard`): the employees whose
//! termination it holds, and releasing them, one or all (which also un-trips the guard). A
//! released termination is requested again and the guard does not count it.

use super::{Outbox, StepError, settle};
use crate::domain::employee::{EmployeeRecord, EmployeeState, HELD_DUE_MS};
use crate::domain::lifecycle::{Decision, Input};
use crate::ports::{Clock, GuardStatus, MessageQueue, StateStore};
use std::sync::Arc;

pub struct GuardOperator<S, Q> {
    pub store: S,
    /// The termination requests queue: a released termination is requested again.
    pub terminations: Q,
    pub clock: Arc<dyn Clock>,
}

impl<S: StateStore, Q: MessageQueue> GuardOperator<S, Q> {
    pub async fn status(&self) -> Result<GuardStatus, StepError> {
        Ok(self.store.guard_status().await?)
    }

    /// The employees whose termination the guard holds (from the work index, then read
    /// consistently).
    pub async fn held(&self) -> Result<Vec<EmployeeRecord>, StepError> {
        let mut ids = self.store.watched(EmployeeState::Leaving, HELD_DUE_MS).await?;
        ids.extend(self.store.watched(EmployeeState::Revoked, HELD_DUE_MS).await?);
        ids.sort();
        ids.dedup();
        Ok(self.store.employees(&ids).await?.into_iter().filter(|e| e.held_since_ms.is_some()).collect())
    }

    /// Releases one employee's held termination (the guard stays as it is).
    pub async fn release(&self, employee_id: &str) -> Result<Decision, StepError> {
        let current = self.store.employee(employee_id).await?;
        let outbox = Outbox { requests: None, terminations: Some(&self.terminations) };
        let (_, decision) =
            settle(&self.store, &outbox, self.clock.as_ref(), employee_id, current, &Input::Released).await?;
        Ok(decision)
    }

    /// Un-trips the guard and releases every held termination; how many were released.
    pub async fn release_all(&self) -> Result<usize, StepError> {
        self.store.reset_guard(self.clock.now_ms()).await?;
        let held = self.held().await?;
        for employee in &held {
            self.release(&employee.employee_id).await?;
        }
        Ok(held.len())
    }
}
