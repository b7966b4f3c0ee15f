//! Facts about WorkSpaces the whole pipeline shares: the states DescribeWorkspaces reports, the
//! per-call limit, and what each per-item error code means for the employee.

use serde::{Deserialize, Serialize};

/// CreateWorkspaces, TerminateWorkspaces and DescribeWorkspaces (by id) take at most 25 items
/// per call (the WorkSpaces API reference, `Workspaces`, `TerminateWorkspaceRequests`,
/// `WorkspaceIds`: "Array Members: Minimum number of 1 item. Maximum number of 25 items").
pub const MAX_PER_CALL: usize = 25;

/// The user name of a user-decoupled WorkSpace (the WorkSpace name then identifies it).
pub const UNDEFINED_USER: &str = "[UNDEFINED]";

/// A WorkSpace's state (`WorkspaceState` in the service model). A state the model adds later is
/// kept as `Other`, never an error: the pipeline waits on it as on any transitional state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WorkspaceState {
    Pending,
    Available,
    Impaired,
    Unhealthy,
    Rebooting,
    Starting,
    Rebuilding,
    Restoring,
    Maintenance,
    AdminMaintenance,
    Terminating,
    Terminated,
    Suspended,
    Updating,
    Stopping,
    Stopped,
    Error,
    Other(String),
}

impl WorkspaceState {
    const NAMES: [(&'static str, WorkspaceState); 17] = [
        ("PENDING", WorkspaceState::Pending),
        ("AVAILABLE", WorkspaceState::Available),
        ("IMPAIRED", WorkspaceState::Impaired),
        ("UNHEALTHY", WorkspaceState::Unhealthy),
        ("REBOOTING", WorkspaceState::Rebooting),
        ("STARTING", WorkspaceState::Starting),
        ("REBUILDING", WorkspaceState::Rebuilding),
        ("RESTORING", WorkspaceState::Restoring),
        ("MAINTENANCE", WorkspaceState::Maintenance),
        ("ADMIN_MAINTENANCE", WorkspaceState::AdminMaintenance),
        ("TERMINATING", WorkspaceState::Terminating),
        ("TERMINATED", WorkspaceState::Terminated),
        ("SUSPENDED", WorkspaceState::Suspended),
        ("UPDATING", WorkspaceState::Updating),
        ("STOPPING", WorkspaceState::Stopping),
        ("STOPPED", WorkspaceState::Stopped),
        ("ERROR", WorkspaceState::Error),
    ];

    /// The state as the API spells it.
    pub fn parse(s: &str) -> WorkspaceState {
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == s)
            .map_or_else(|| WorkspaceState::Other(s.to_owned()), |(_, st)| st.clone())
    }

    pub fn as_str(&self) -> &str {
        match self {
            WorkspaceState::Other(s) => s,
            known => Self::NAMES.iter().find(|(_, st)| st == known).map_or("", |(name, _)| name),
        }
    }
}

impl std::fmt::Display for WorkspaceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a per-item error code (CreateWorkspaces or TerminateWorkspaces `FailedRequests`) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The user already has a WorkSpace in the directory: find and adopt it (creation only).
    Adopt,
    /// The WorkSpace is not known any more (termination only): the reconciler confirms it gone.
    Gone,
    /// Retrying cannot help: record the failure on the employee.
    Permanent,
    /// Try again later, a bounded number of times.
    Retry,
}

/// The call a per-item error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Create,
    Terminate,
}

/// What a per-item error code means. The documented codes are decided; anything unknown (the
/// API reference does not list every code) is retried a bounded number of times.
pub fn classify(call: Call, code: &str) -> Disposition {
    match (call, code) {
        (Call::Create, "ResourceExists.WorkSpace") => Disposition::Adopt,
        // Termination only asks; DescribeWorkspaces confirms the absence before anyone relies on it.
        (Call::Terminate, c) if c.starts_with("ResourceNotFound") => Disposition::Gone,
        // Another employee's user name: never adopted, and retrying will not change whose it is.
        (_, super::employee::USER_NAME_TAKEN) => Disposition::Permanent,
        (_, c) if c.starts_with("ResourceNotFound.") => Disposition::Permanent,
        (
            _,
            "InvalidParameterValuesException"
            | "InvalidParameterValues"
            | "AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace"
            | "ValidationException"
            | "UnsupportedWorkspaceConfiguration"
            | "OperationNotSupportedException"
            | "AccessDeniedException",
        ) => Disposition::Permanent,
        // Throttling, capacity, limits, a SUSPENDED WorkSpace and anything unknown: retry, bounded.
        _ => Disposition::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_as_the_api_spells_them_and_unknown_ones_are_kept() {
        assert_eq!(WorkspaceState::parse("ADMIN_MAINTENANCE"), WorkspaceState::AdminMaintenance);
        assert_eq!(WorkspaceState::parse("AVAILABLE").as_str(), "AVAILABLE");
        assert_eq!(WorkspaceState::parse("HIBERNATING"), WorkspaceState::Other("HIBERNATING".into()));
        assert_eq!(WorkspaceState::parse("HIBERNATING").to_string(), "HIBERNATING");
        for (name, state) in WorkspaceState::NAMES {
            assert_eq!(state.as_str(), name);
        }
    }

    #[test]
    fn error_codes_are_classified_by_the_call_they_came_from() {
        use Call::{Create, Terminate};
        assert_eq!(classify(Create, "ResourceExists.WorkSpace"), Disposition::Adopt);
        assert_eq!(classify(Create, "ResourceNotFound.User"), Disposition::Permanent);
        assert_eq!(classify(Create, crate::domain::employee::USER_NAME_TAKEN), Disposition::Permanent);
        assert_eq!(classify(Create, "ResourceNotFound.Directory"), Disposition::Permanent);
        assert_eq!(classify(Create, "AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace"), Disposition::Permanent);
        assert_eq!(classify(Create, "ResourceLimitExceeded"), Disposition::Retry);
        assert_eq!(classify(Create, "SomethingNew.Unheard"), Disposition::Retry);
        assert_eq!(classify(Terminate, "ResourceNotFound.WorkSpace"), Disposition::Gone);
        assert_eq!(classify(Terminate, "ResourceNotFoundException"), Disposition::Gone);
        assert_eq!(classify(Terminate, "OperationNotSupportedException"), Disposition::Permanent);
        assert_eq!(classify(Terminate, "InvalidResourceStateException"), Disposition::Retry);
    }
}
