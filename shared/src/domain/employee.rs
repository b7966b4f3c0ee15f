//! An employee's lifecycle record: one per employee, changed only by conditional writes.

use super::profile::Profile;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmployeeState {
    /// Join applied: directory user ensured, WorkSpace request queued.
    Requested,
    /// CreateWorkspaces accepted the request; waiting for AVAILABLE.
    Pending,
    /// The WorkSpace is AVAILABLE.
    Active,
    /// Permanently failed; `failure_code` and `failure_message` say why.
    Failed,
}

impl EmployeeState {
    pub fn as_str(self) -> &'static str {
        match self {
            EmployeeState::Requested => "requested",
            EmployeeState::Pending => "pending",
            EmployeeState::Active => "active",
            EmployeeState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "requested" => Some(EmployeeState::Requested),
            "pending" => Some(EmployeeState::Pending),
            "active" => Some(EmployeeState::Active),
            "failed" => Some(EmployeeState::Failed),
            _ => None,
        }
    }

    /// States the reconciler watches through the sparse work index.
    pub fn needs_watching(self) -> bool {
        matches!(self, EmployeeState::Pending)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmployeeRecord {
    pub employee_id: String,
    pub state: EmployeeState,
    /// Incremented by every write; writes are conditional on the version read.
    pub version: u64,
    /// Source time of the last event applied: older events are stale.
    pub last_event_ms: i64,
    pub last_event_id: String,
    pub username: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    pub department: Option<String>,
    pub profile_name: Option<String>,
    pub profile: Option<Profile>,
    /// The join event whose WorkSpace is being provisioned.
    pub request_event_id: Option<String>,
    pub workspace_id: Option<String>,
    /// Set before CreateWorkspaces is called: a redelivery then checks for a WorkSpace first.
    pub create_attempted_ms: Option<i64>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub state_since_ms: i64,
    pub updated_ms: i64,
}

/// What happened to one HR event, kept in the employee's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    Applied,
    /// Not applied, with a reason: a duplicate, or older than what was applied.
    Skipped,
    /// Breaks the contract or cannot be applied; the reason says which rule.
    Rejected,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Applied => "applied",
            EventOutcome::Skipped => "skipped",
            EventOutcome::Rejected => "rejected",
        }
    }
}
