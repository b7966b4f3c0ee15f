//! The drift audit's decision: where the table and the WorkSpaces listed in the managed
//! directories disagree. Pure: the audit reads every employee record and lists every WorkSpace of
//! the managed directories, calls [`audit`], then records and reports what it returns.
//!
//! Findings (issue 15): an active employee whose WorkSpace is gone or now another user's
//! (**missing**); a WorkSpace no record wants (**orphaned**); an active employee's WorkSpace whose
//! bundle, running mode, compute type or volumes differ from the profile (**mismatched**); a
//! WorkSpace in ERROR, UNHEALTHY or SUSPENDED for longer than allowed (**unhealthy**). The audit
//! only reports: what is done about a finding is the caller's configured choice, and never the
//! termination of a WorkSpace the audit merely failed to account for.

use crate::domain::employee::{EmployeeRecord, EmployeeState};
use crate::domain::profile::Profile;
use crate::domain::workspace::{UNDEFINED_USER, WorkspaceState};
use crate::ports::WorkspaceInfo;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the audit allows before it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRules {
    /// How long a WorkSpace may stay ERROR, UNHEALTHY or SUSPENDED before it is a finding.
    pub unhealthy_after_ms: i64,
}

/// Why an active employee's WorkSpace is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Missing {
    /// Not listed any more (deleted in the console, or by another record's leave).
    Gone,
    /// Listed, but for another user.
    OtherUser { user_name: String },
}

/// A property of a WorkSpace the profile sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Property {
    Bundle,
    RunningMode,
    AutoStopMinutes,
    ComputeType,
    RootVolumeGib,
    UserVolumeGib,
}

/// A property whose value differs from the profile's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub property: Property,
    pub wanted: String,
    pub found: String,
}

/// One disagreement between the table and the WorkSpaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    Missing {
        employee_id: String,
        workspace_id: String,
        #[serde(flatten)]
        why: Missing,
        /// The WorkSpace now listed for the employee's user name in that directory, if any (a
        /// WorkSpace rebuilt or recreated by hand).
        listed_for_user: Option<String>,
    },
    Orphaned {
        workspace_id: String,
        directory_id: String,
        user_name: String,
        state: String,
        /// The employee whose user name it carries, if any (one with a WorkSpace of their own, or
        /// none wanted): a WorkSpace no record refers to either way.
        user_of: Option<String>,
    },
    Mismatched {
        employee_id: String,
        workspace_id: String,
        differences: Vec<Difference>,
    },
    Unhealthy {
        workspace_id: String,
        employee_id: Option<String>,
        state: String,
        since_ms: i64,
    },
}

impl Finding {
    /// The finding's kind as the report and the metric name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::Missing { .. } => "missing",
            Finding::Orphaned { .. } => "orphaned",
            Finding::Mismatched { .. } => "mismatched",
            Finding::Unhealthy { .. } => "unhealthy",
        }
    }
}

/// What one audit found, and what the next one needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditOutcome {
    pub findings: Vec<Finding>,
    /// WorkSpaces in an unhealthy state now, and since when they have been seen so: kept by the
    /// caller and given to the next audit, so "for long" counts across runs.
    pub unhealthy_since: BTreeMap<String, i64>,
    /// Employee records compared (in the audited directories, not terminated).
    pub employees_checked: usize,
    pub workspaces_listed: usize,
}

/// States a WorkSpace can stay in without the pipeline moving it on.
fn unhealthy(state: &WorkspaceState) -> bool {
    matches!(state, WorkspaceState::Error | WorkspaceState::Unhealthy | WorkspaceState::Suspended)
}

/// The user a WorkSpace belongs to: its user name, or for a user-decoupled one its name.
fn owner_of(info: &WorkspaceInfo) -> String {
    let user = if info.user_name == UNDEFINED_USER {
        info.workspace_name.as_deref().unwrap_or(UNDEFINED_USER)
    } else {
        &info.user_name
    };
    user.to_lowercase()
}

/// The directory an employee's WorkSpace is in: the profile's.
fn directory_of(employee: &EmployeeRecord) -> Option<&str> {
    employee.profile.as_ref().map(|p| p.directory_id.as_str())
}

/// Every WorkSpace id a record wants kept: its own, and the other one of a move under way.
fn wanted_ids(employee: &EmployeeRecord) -> impl Iterator<Item = &str> {
    let moving = employee.moving.as_ref();
    employee
        .workspace_id
        .as_deref()
        .into_iter()
        .chain(moving.and_then(|m| m.other_workspace()))
        .chain(moving.and_then(|m| m.relocation.as_ref()).and_then(|r| r.discard.as_deref()))
}

/// The profile's properties against the WorkSpace's, as DescribeWorkspaces reports them. A
/// property the profile leaves to the bundle, or the service does not report, is not compared.
pub fn differences(profile: &Profile, info: &WorkspaceInfo) -> Vec<Difference> {
    let mut found = Vec::new();
    let mut compare = |property: Property, wanted: Option<String>, seen: Option<String>| {
        if let (Some(wanted), Some(seen)) = (wanted, seen)
            && !wanted.eq_ignore_ascii_case(&seen)
        {
            found.push(Difference { property, wanted, found: seen });
        }
    };
    compare(Property::Bundle, Some(profile.bundle_id.clone()), info.bundle_id.clone());
    let props = info.properties.clone().unwrap_or_default();
    compare(Property::RunningMode, Some(profile.running_mode.as_str().to_owned()), props.running_mode);
    compare(
        Property::AutoStopMinutes,
        profile.auto_stop_minutes.map(|m| m.to_string()),
        props.auto_stop_minutes.map(|m| m.to_string()),
    );
    compare(Property::ComputeType, profile.compute_type.clone(), props.compute_type);
    compare(
        Property::RootVolumeGib,
        profile.root_volume_gib.map(|g| g.to_string()),
        props.root_volume_gib.map(|g| g.to_string()),
    );
    compare(
        Property::UserVolumeGib,
        profile.user_volume_gib.map(|g| g.to_string()),
        props.user_volume_gib.map(|g| g.to_string()),
    );
    found
}

/// Compares every employee of the audited `directories` with every WorkSpace listed there, at
/// `now_ms`; `unhealthy_since` is what the previous audit returned.
pub fn audit(
    employees: &[EmployeeRecord],
    listed: &[WorkspaceInfo],
    directories: &BTreeSet<String>,
    unhealthy_since: &BTreeMap<String, i64>,
    rules: AuditRules,
    now_ms: i64,
) -> AuditOutcome {
    let audited: Vec<&EmployeeRecord> = employees
        .iter()
        .filter(|e| e.state != EmployeeState::Terminated)
        .filter(|e| directory_of(e).is_some_and(|d| directories.contains(d)))
        .collect();
    let by_id: HashMap<&str, &WorkspaceInfo> = listed.iter().map(|w| (w.workspace_id.as_str(), w)).collect();
    let by_user: HashMap<(String, String), &WorkspaceInfo> =
        listed.iter().map(|w| ((w.directory_id.to_lowercase(), owner_of(w)), w)).collect();
    let wanted: HashMap<&str, &EmployeeRecord> =
        audited.iter().flat_map(|e| wanted_ids(e).map(move |id| (id, *e))).collect();
    let user_key = |e: &EmployeeRecord| -> Option<(String, String)> {
        Some((directory_of(e)?.to_lowercase(), e.username.as_deref()?.to_lowercase()))
    };
    let users: HashMap<(String, String), &EmployeeRecord> =
        audited.iter().filter_map(|e| Some((user_key(e)?, *e))).collect();

    let mut findings = Vec::new();
    for employee in &audited {
        let (Some(workspace_id), EmployeeState::Active) = (employee.workspace_id.as_deref(), employee.state) else {
            continue;
        };
        let employee_id = employee.employee_id.clone();
        let listed_for_user = user_key(employee)
            .and_then(|key| by_user.get(&key))
            .map(|w| w.workspace_id.clone())
            .filter(|id| id != workspace_id);
        let user = employee.username.as_deref().unwrap_or_default().to_lowercase();
        match by_id.get(workspace_id) {
            None => findings.push(Finding::Missing {
                employee_id,
                workspace_id: workspace_id.to_owned(),
                why: Missing::Gone,
                listed_for_user,
            }),
            Some(info) if owner_of(info) != user => findings.push(Finding::Missing {
                employee_id,
                workspace_id: workspace_id.to_owned(),
                why: Missing::OtherUser { user_name: info.user_name.clone() },
                listed_for_user,
            }),
            Some(info) => {
                let differences = employee.profile.as_ref().map(|p| differences(p, info)).unwrap_or_default();
                if !differences.is_empty() {
                    findings.push(Finding::Mismatched {
                        employee_id,
                        workspace_id: workspace_id.to_owned(),
                        differences,
                    });
                }
            }
        }
    }

    // A WorkSpace listed for a missing one's user is named by that finding (adopt it or not), not
    // reported again as an orphan.
    let named: BTreeSet<String> = findings
        .iter()
        .filter_map(|f| match f {
            Finding::Missing { listed_for_user, .. } => listed_for_user.clone(),
            _ => None,
        })
        .collect();
    let mut still_unhealthy = BTreeMap::new();
    for info in listed {
        let id = info.workspace_id.as_str();
        let wanted_by = wanted.get(id);
        if unhealthy(&info.state) {
            let since = unhealthy_since.get(id).copied().unwrap_or(now_ms).min(now_ms);
            still_unhealthy.insert(id.to_owned(), since);
            if now_ms - since >= rules.unhealthy_after_ms {
                findings.push(Finding::Unhealthy {
                    workspace_id: id.to_owned(),
                    employee_id: wanted_by.map(|e| e.employee_id.clone()),
                    state: info.state.to_string(),
                    since_ms: since,
                });
            }
        }
        let going = matches!(info.state, WorkspaceState::Terminating | WorkspaceState::Terminated);
        if wanted_by.is_some() || going || named.contains(id) {
            continue;
        }
        let user_of = users.get(&(info.directory_id.to_lowercase(), owner_of(info))).copied();
        // A joiner whose create went out before the record learnt the id: being provisioned.
        let being_provisioned = user_of.is_some_and(|e| {
            e.workspace_id.is_none() && matches!(e.state, EmployeeState::Requested | EmployeeState::Pending)
        });
        if !being_provisioned {
            findings.push(Finding::Orphaned {
                workspace_id: id.to_owned(),
                directory_id: info.directory_id.clone(),
                user_name: info.user_name.clone(),
                state: info.state.to_string(),
                user_of: user_of.map(|e| e.employee_id.clone()),
            });
        }
    }
    AuditOutcome {
        findings,
        unhealthy_since: still_unhealthy,
        employees_checked: audited.len(),
        workspaces_listed: listed.len(),
    }
}

#[cfg(test)]
mod tests;
