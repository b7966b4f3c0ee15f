//! A join: what its decision needs besides the record: the profile, and who holds the name.

use super::Intake;
use crate::domain::employee::EmployeeRecord;
use crate::domain::event::HrEvent;
use crate::domain::lifecycle::{Joiner, Mover, NameStatus, releases_name};
use crate::ports::{DirectoryUsers, MessageQueue, NewUser, StateStore};
use crate::services::StepError;

impl<S: StateStore, D: DirectoryUsers, Q: MessageQueue> Intake<S, D, Q> {
    /// The joiner as the lifecycle sees it, or why the join cannot be applied.
    pub(super) async fn joiner(&self, event: &HrEvent) -> Result<Result<Box<Joiner>, String>, StepError> {
        let emp = &event.employee;
        let (Some(user_name), Some(given_name), Some(surname), Some(email)) =
            (&emp.username, &emp.given_name, &emp.surname, &emp.email)
        else {
            return Ok(Err("a join needs username, given_name, surname and email".into()));
        };
        let (profile_name, profile) = match self.profiles.resolve(emp.department.as_deref(), &event.workspace) {
            Ok(p) => p,
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                return Ok(Err(format!("invalid WorkSpace choice: {}", text.join("; "))));
            }
        };
        let name = self.name_status(&profile.directory_id, user_name.as_str(), emp.employee_id.as_str()).await?;
        Ok(Ok(Box::new(Joiner {
            user: NewUser {
                directory_id: profile.directory_id.clone(),
                user_name: user_name.to_string(),
                given_name: given_name.to_string(),
                surname: surname.to_string(),
                email: email.to_string(),
                client_token: format!("hr-{}", event.payload_hash.get(..32).unwrap_or(&event.payload_hash)),
            },
            department: emp.department.clone(),
            profile_name,
            profile,
            name,
        })))
    }

    /// The mover as the lifecycle sees it, or why the move cannot be applied: the profile
    /// resolved from the move's department, or the employee's profile with the move's fields.
    pub(super) async fn mover(
        &self,
        event: &HrEvent,
        current: Option<&EmployeeRecord>,
    ) -> Result<Result<Box<Mover>, String>, StepError> {
        let department = event.employee.department.as_deref();
        let now = current.and_then(|c| Some((c.profile_name.as_deref()?, c.profile.as_ref()?)));
        let (profile_name, profile) = match self.profiles.resolve_move(now, department, &event.workspace) {
            Ok(resolved) => resolved,
            Err(errors) => {
                let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
                return Ok(Err(format!("invalid WorkSpace choice: {}", text.join("; "))));
            }
        };
        // Another directory: the user name is claimed there too.
        let name = match current.and_then(|c| Some((c.username.as_deref()?, c.profile.as_ref()?))) {
            Some((user_name, was)) if was.directory_id != profile.directory_id => {
                self.name_status(&profile.directory_id, user_name, event.employee.employee_id.as_str()).await?
            }
            _ => NameStatus::Free,
        };
        Ok(Ok(Box::new(Mover {
            department: event.employee.department.clone(),
            profile_name,
            profile,
            client_token: format!("hr-{}", event.payload_hash.get(..32).unwrap_or(&event.payload_hash)),
            name,
        })))
    }

    /// Who holds a user name, as read: one owner per name; a holder confirmed terminated (and
    /// not being rehired) gives it up, from its record as read.
    async fn name_status(
        &self,
        directory_id: &str,
        user_name: &str,
        employee_id: &str,
    ) -> Result<NameStatus, StepError> {
        let Some(holder) = self.store.name_holder(directory_id, user_name).await?.filter(|h| h != employee_id) else {
            return Ok(NameStatus::Free);
        };
        let record = self.store.employee(&holder).await?;
        Ok(if releases_name(record.as_ref()) {
            NameStatus::Releasable { version: record.map(|r| r.version), holder }
        } else {
            NameStatus::Held { holder }
        })
    }
}
