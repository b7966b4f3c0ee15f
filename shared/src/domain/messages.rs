//! Messages the functions pass each other through SQS. Never carry secrets.

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
}

/// Intake (or provisioner, for a WorkSpace created after the leave) → terminator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TerminationRequest {
    pub employee_id: String,
    /// The leave event; the employee record must still point at it.
    pub event_id: String,
    /// Unknown when the leave came before the WorkSpace was created.
    pub workspace_id: Option<String>,
    pub directory_id: String,
    pub username: String,
    pub requested_ms: i64,
}
