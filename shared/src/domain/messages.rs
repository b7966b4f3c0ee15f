//! Messages the functions pass each other through SQS. Never carry secrets.

use super::employee::{EmployeeRecord, EmployeeState};
use super::profile::Profile;
use serde::{Deserialize, Serialize};

/// Intake → provisioner: create a WorkSpace for this employee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceRequest {
    pub employee_id: String,
    /// The join event this request comes from; the employee record must still point at it.
    pub event_id: String,
    pub username: String,
    pub profile_name: String,
    pub profile: Profile,
    pub requested_ms: i64,
    /// Its deliveries before the message carrying it (absent on the first message).
    #[serde(default, skip_serializing_if = "Redelivery::is_first")]
    pub redelivery: Redelivery,
}

/// Intake, provisioner (a WorkSpace created after the leave) or reconciler (a grace period
/// over) → terminator: change a WorkSpace's access. What to do (revoke, terminate, restore) is
/// the employee record's to say when the request is handled (`lifecycle::access_action`), so a
/// request that outlives its purpose does nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminationRequest {
    pub employee_id: String,
    /// The leave event (or, restoring, the rehire or cancel); the record must still point at it.
    pub event_id: String,
    /// Unknown when the leave came before the WorkSpace was created.
    pub workspace_id: Option<String>,
    pub directory_id: String,
    pub username: String,
    pub requested_ms: i64,
    /// Its deliveries before the message carrying it (absent on the first message).
    #[serde(default, skip_serializing_if = "Redelivery::is_first")]
    pub redelivery: Redelivery,
}

impl WorkspaceRequest {
    /// The request of an employee whose join is being provisioned; `None` if the record lacks
    /// the join's details.
    pub fn for_employee(employee: &EmployeeRecord, now: i64) -> Option<WorkspaceRequest> {
        Some(WorkspaceRequest {
            employee_id: employee.employee_id.clone(),
            event_id: employee.request_event_id.clone()?,
            username: employee.username.clone()?,
            profile_name: employee.profile_name.clone()?,
            profile: employee.profile.clone()?,
            requested_ms: now,
            redelivery: Redelivery::default(),
        })
    }
}

impl TerminationRequest {
    /// The request of a leaving (or restoring) employee; `None` if the record lacks the leave
    /// (the restore) or the user.
    pub fn for_employee(employee: &EmployeeRecord, now: i64) -> Option<TerminationRequest> {
        let event_id = match employee.state {
            EmployeeState::Restoring => employee.restore_event_id.clone()?,
            _ => employee.leave_event_id.clone()?,
        };
        Some(TerminationRequest {
            employee_id: employee.employee_id.clone(),
            event_id,
            workspace_id: employee.workspace_id.clone(),
            directory_id: employee.profile.as_ref()?.directory_id.clone(),
            username: employee.username.clone()?,
            requested_ms: now,
            redelivery: Redelivery::default(),
        })
    }
}

/// What came before a request handed back for want of time (the deadline near, the WorkSpaces
/// API busy): it is sent again as a new message, whose receive count starts again at 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redelivery {
    /// Deliveries of the request before this message.
    pub deliveries: u32,
    /// How many of them handed it back: they spent no attempt.
    pub handed_back: u32,
    /// Whether one of them may have made its WorkSpaces call (sent, never answered): the next
    /// one looks for what it made before calling again.
    pub call_unanswered: bool,
}

impl Redelivery {
    pub fn is_first(&self) -> bool {
        *self == Redelivery::default()
    }
}
