//! The lifecycle events the pipeline tells the systems around it (issue 15: an HR or ticketing
//! system learns what became of its events without asking `hrws`). Pure: what one change of an
//! employee record means to them, derived from the record before and after the change.
//!
//! One logical event per change: its id is the employee, the record's version after the change
//! and the kind, so a change published twice (a retry, a redelivery) carries the same id and a
//! subscriber keeps the first. The events are derived from what was written, not from what a
//! service meant to write: a change that lost its conditional write announces nothing.
//! `events/lifecycle-event.schema.json` is the subscriber's contract for them.

use crate::domain::audit::{Finding, Subject};
use crate::domain::employee::{EmployeeRecord, EmployeeState};
use crate::domain::lifecycle::REAPPLY_PREFIX;
use crate::domain::time::Timestamp;
use crate::domain::validation;
use serde::Serialize;

/// The `source` of every lifecycle event on the bus.
pub const SOURCE: &str = "hr-workspaces";

/// What happened, as the event's `detail-type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Kind {
    /// A join (or a rehire) was applied: the WorkSpace is requested.
    #[serde(rename = "WorkSpace Requested")]
    Requested,
    /// The WorkSpace is AVAILABLE: the employee can log in.
    #[serde(rename = "WorkSpace Available")]
    Available,
    /// The WorkSpace could not be made (or a leave could not terminate it): a person must look.
    #[serde(rename = "WorkSpace Failed")]
    Failed,
    /// A leave with a grace period: no one can log in any more; the WorkSpace is kept until then.
    #[serde(rename = "Access Revoked")]
    AccessRevoked,
    /// A rescinded leave or a rehire within the grace period: the same WorkSpace is back.
    #[serde(rename = "Access Restored")]
    AccessRestored,
    /// A move reached the new profile (or stopped short of it: the reason says).
    #[serde(rename = "WorkSpace Modified")]
    Modified,
    /// The leaver's WorkSpace is confirmed gone.
    #[serde(rename = "WorkSpace Terminated")]
    Terminated,
    /// The mass-termination guard holds the termination until an operator releases it.
    #[serde(rename = "Held by Guard")]
    HeldByGuard,
    /// The drift audit found a WorkSpace and the table disagreeing (not on the stream: the
    /// auditor publishes it).
    #[serde(rename = "Drift Found")]
    DriftFound,
}

impl Kind {
    /// The `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            Kind::Requested => "WorkSpace Requested",
            Kind::Available => "WorkSpace Available",
            Kind::Failed => "WorkSpace Failed",
            Kind::AccessRevoked => "Access Revoked",
            Kind::AccessRestored => "Access Restored",
            Kind::Modified => "WorkSpace Modified",
            Kind::Terminated => "WorkSpace Terminated",
            Kind::HeldByGuard => "Held by Guard",
            Kind::DriftFound => "Drift Found",
        }
    }

    /// The kind in an event id: the detail-type without spaces, lower case.
    fn slug(self) -> String {
        self.detail_type().to_ascii_lowercase().replace(' ', "-")
    }
}

/// An event's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    /// The same for every publication of one change: `<employee>/<version>/<kind>`.
    pub id: String,
    /// `None` only for drift about a WorkSpace no employee owns.
    pub employee_id: Option<String>,
    /// The HR event the change came from, when one did (not for a confirmation the reconciler saw).
    pub hr_event_id: Option<String>,
    pub workspace_id: Option<String>,
    /// The employee's state after the change (`None`: drift about a WorkSpace no one owns).
    pub state: Option<&'static str>,
    pub reason: Option<String>,
    /// When the change was written (RFC 3339, UTC).
    pub time: String,
    /// The record's version after the change (`None` for drift).
    pub version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LifecycleEvent {
    pub kind: Kind,
    pub detail: Detail,
}

/// The lifecycle events one change of an employee's record makes: `before` as it was (`None`:
/// the first write), `after` as written. No change of what the events cover, no event.
pub fn events_of(before: Option<&EmployeeRecord>, after: &EmployeeRecord) -> Vec<LifecycleEvent> {
    use EmployeeState as S;
    if before.is_some_and(|b| b.version >= after.version) {
        return Vec::new(); // not a newer write: nothing happened since
    }
    let was = before.map(|b| b.state);
    let now = after.state;
    let entered = |state: EmployeeState| now == state && was != Some(state);
    // A WorkSpace the employee can use: active, or moving (a move keeps the WorkSpace in use).
    let usable = |state: EmployeeState| matches!(state, S::Active | S::Moving);
    let mut kinds = Vec::new();
    // A rehire waits for the leave to finish (or a restore finds the WorkSpace gone): the write
    // that confirms the old WorkSpace gone, or that there was none, makes the employee requested
    // at once, never terminated.
    // So does a WorkSpace deleted behind the pipeline's back (found gone by the drift audit, or
    // by a move): a new one is requested in its place.
    if matches!(was, Some(S::Leaving | S::Terminating | S::Restoring | S::Active | S::Moving)) && now == S::Requested {
        kinds.push(Kind::Terminated);
    }
    if entered(S::Requested) {
        kinds.push(Kind::Requested);
    }
    if usable(now) && !was.is_some_and(usable) {
        // A WorkSpace that became available while a move waited goes straight to moving.
        kinds.push(if was == Some(S::Restoring) { Kind::AccessRestored } else { Kind::Available });
    }
    if now == S::Active && was == Some(S::Moving) {
        kinds.push(Kind::Modified);
    }
    if entered(S::Failed) {
        kinds.push(Kind::Failed);
    }
    if entered(S::Revoked) {
        kinds.push(Kind::AccessRevoked);
    }
    if after.held_since_ms.is_some() && before.is_none_or(|b| b.held_since_ms.is_none()) {
        kinds.push(Kind::HeldByGuard);
    }
    if entered(S::Terminated) && was.is_some() {
        kinds.push(Kind::Terminated);
    }
    kinds.into_iter().map(|kind| event(kind, before, after)).collect()
}

fn event(kind: Kind, before: Option<&EmployeeRecord>, after: &EmployeeRecord) -> LifecycleEvent {
    use EmployeeState as S;
    // What the write may have cleared is read from before it.
    let either = |field: fn(&EmployeeRecord) -> &Option<String>| {
        field(after).clone().or_else(|| before.and_then(|b| field(b).clone()))
    };
    let leave = either(|r| &r.leave_event_id);
    let hr_event_id = match kind {
        Kind::Requested => after.request_event_id.clone().or_else(|| Some(after.last_event_id.clone())),
        // A WorkSpace lost behind the pipeline's back: the request made in its place.
        Kind::Terminated if lost(before, after) => after.request_event_id.clone(),
        Kind::AccessRevoked | Kind::HeldByGuard | Kind::Terminated => leave,
        Kind::AccessRestored => either(|r| &r.restore_event_id),
        // The HR move, not a profile the drift audit applied again (no HR event asked for it).
        Kind::Modified => match before.and_then(|b| b.moving.as_ref()) {
            Some(m) if m.event_id.starts_with(REAPPLY_PREFIX) => None,
            _ => after.last_move.as_ref().map(|m| m.event_id.clone()),
        },
        // A failure is of what was under way: a leave's termination, a restore, or the join's create.
        Kind::Failed => match before.map(|b| b.state) {
            Some(S::Leaving | S::Terminating | S::Revoked) => leave,
            Some(S::Restoring) => either(|r| &r.restore_event_id),
            _ => either(|r| &r.request_event_id),
        },
        Kind::Available | Kind::DriftFound => either(|r| &r.request_event_id),
    };
    let reason = match kind {
        Kind::Failed => Some(match (&after.failure_code, &after.failure_message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.clone(),
            _ => "failed".to_owned(),
        }),
        Kind::HeldByGuard => after.hold_reason.clone(),
        Kind::Terminated if lost(before, after) => {
            Some("deleted outside the pipeline (the employee stays): a new WorkSpace requested in its place".into())
        }
        Kind::Modified => after.move_note.clone(),
        _ => None,
    }
    // Bounded whatever a service stored: an entry over PutEvents' size would hold the stream.
    .map(|text| validation::reason(&text));
    let workspace_id = match kind {
        // The WorkSpace this write saw go: the one the record had, or the one it just moved to
        // its past WorkSpaces; none when there was nothing to terminate.
        Kind::Terminated => before.and_then(|b| b.workspace_id.clone()).or_else(|| {
            let grew = after.previous_workspaces.len() > before.map_or(0, |b| b.previous_workspaces.len());
            after.previous_workspaces.last().filter(|_| grew).map(|p| p.workspace_id.clone())
        }),
        _ => after.workspace_id.clone(),
    };
    LifecycleEvent {
        kind,
        detail: Detail {
            id: format!("{}/{}/{}", after.employee_id, after.version, kind.slug()),
            employee_id: Some(after.employee_id.clone()),
            hr_event_id,
            workspace_id,
            state: Some(after.state.as_str()),
            reason,
            time: Timestamp::from_millis(after.updated_ms).to_rfc3339(),
            version: Some(after.version),
        },
    }
}

/// A write that replaces a WorkSpace lost behind the pipeline's back: a staying employee
/// (active or moving) made requested again.
fn lost(before: Option<&EmployeeRecord>, after: &EmployeeRecord) -> bool {
    matches!(before.map(|b| b.state), Some(EmployeeState::Active | EmployeeState::Moving))
        && after.state == EmployeeState::Requested
}

/// A finding an audit opened, as a `Drift Found` event. An audit announces it before it keeps
/// the finding, so an audit that fails after announcing (or runs beside another) announces it
/// again: its id is the finding's subject, kind and WorkSpace with the time of the last audit
/// that completed (`since_ms`), the same for every audit until one keeps the finding.
pub fn drift_found(
    finding: &Finding,
    employee: Option<&EmployeeRecord>,
    since_ms: i64,
    audited_ms: i64,
) -> LifecycleEvent {
    let subject = match finding.subject() {
        Subject::Employee(id) => format!("employee:{id}"),
        Subject::Workspace(id) => format!("workspace:{id}"),
    };
    LifecycleEvent {
        kind: Kind::DriftFound,
        detail: Detail {
            id: format!("drift/{subject}/{}/{}/{since_ms}", finding.kind(), finding.workspace_id()),
            employee_id: match finding.subject() {
                Subject::Employee(id) => Some(id),
                Subject::Workspace(_) => None,
            },
            hr_event_id: None,
            workspace_id: Some(finding.workspace_id().to_owned()),
            state: employee.map(|e| e.state.as_str()),
            // The summary begins with the kind.
            reason: Some(validation::reason(&finding.summary())),
            time: Timestamp::from_millis(audited_ms).to_rfc3339(),
            version: employee.map(|e| e.version),
        },
    }
}

impl LifecycleEvent {
    /// The event's `Detail`, as PutEvents takes it.
    pub fn detail_json(&self) -> String {
        // A struct of strings and numbers always serialises.
        serde_json::to_string(&self.detail).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
