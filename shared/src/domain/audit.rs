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
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the audit allows before it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRules {
    /// How long a WorkSpace may stay ERROR, UNHEALTHY or SUSPENDED before it is a finding.
    pub unhealthy_after_ms: i64,
}

/// What the audit does about a missing WorkSpace (`AUDIT_ON_MISSING`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnMissing {
    #[default]
    Report,
    /// A WorkSpace no longer listed: a new one is requested (the provisioner adopts one listed
    /// for the user meanwhile, by its rule).
    RequestAgain,
}

/// What the audit does about a WorkSpace that differs from its employee's profile
/// (`AUDIT_ON_MISMATCHED`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnMismatched {
    #[default]
    Report,
    /// The profile is applied again through the mover path.
    Reapply,
}

/// What the audit does about an orphaned WorkSpace (`AUDIT_ON_ORPHANED`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnOrphaned {
    #[default]
    Report,
    /// Terminated, if it was orphaned at the audit before too, carries the managed tag, lacks the
    /// protect tag, and the mass-termination guard admits it. Never a WorkSpace made by hand.
    TerminateManaged,
}

/// What the audit does about its findings: report only unless configured (the safe default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AuditActions {
    pub on_missing: OnMissing,
    pub on_mismatched: OnMismatched,
    pub on_orphaned: OnOrphaned,
    /// How long an orphan must have been found (by audits since) before it may be terminated:
    /// the time an operator has, with its `Drift Found` event, to tag it protected.
    pub orphan_after_ms: i64,
}

/// [`AuditActions::orphan_after_ms`] unless set: a day, the audit's default interval.
pub const ORPHAN_AFTER_MS: i64 = 24 * 3_600_000;

impl AuditActions {
    pub const REPORT_ONLY: AuditActions = AuditActions {
        on_missing: OnMissing::Report,
        on_mismatched: OnMismatched::Report,
        on_orphaned: OnOrphaned::Report,
        orphan_after_ms: ORPHAN_AFTER_MS,
    };
}

impl Default for AuditActions {
    fn default() -> Self {
        Self::REPORT_ONLY
    }
}

/// A setting's value among its `values` (name, value), or the error naming them.
fn setting<T: Copy>(text: &str, values: &[(&str, T)]) -> Result<T, String> {
    values.iter().find(|(name, _)| *name == text.trim()).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
        format!("{text:?} is not one of {}", names.join(", "))
    })
}

impl std::str::FromStr for OnMissing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        setting(s, &[("report", OnMissing::Report), ("request-again", OnMissing::RequestAgain)])
    }
}

impl std::str::FromStr for OnMismatched {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        setting(s, &[("report", OnMismatched::Report), ("reapply", OnMismatched::Reapply)])
    }
}

impl std::str::FromStr for OnOrphaned {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        setting(s, &[("report", OnOrphaned::Report), ("terminate-managed", OnOrphaned::TerminateManaged)])
    }
}

/// One thing the audit does about a confirmed finding, under its settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Remedy {
    /// A new WorkSpace for an active employee whose WorkSpace is gone.
    RequestAgain { employee_id: String, workspace_id: String },
    /// The employee's profile applied again to their WorkSpace.
    Reapply { employee_id: String, workspace_id: String },
    /// An orphan terminated (after its tags are read and the guard admits it).
    Terminate { workspace_id: String, directory_id: String, user_of: Option<String> },
}

impl Remedy {
    pub fn workspace_id(&self) -> &str {
        match self {
            Remedy::RequestAgain { workspace_id, .. }
            | Remedy::Reapply { workspace_id, .. }
            | Remedy::Terminate { workspace_id, .. } => workspace_id,
        }
    }
}

/// What the settings call for about the confirmed `findings` at `now_ms`; `previous`: the drift
/// open before this audit. Only what can be done safely:
/// - a missing WorkSpace is requested again only once it is no longer listed (one still
///   TERMINATING waits for the next audit; one listed for another user is for a person to look
///   at); a WorkSpace listed for the user meanwhile is then the provisioner's to adopt or refuse,
///   by its own rule (adopted if it carries the managed tag, or with ADOPT_UNMANAGED; otherwise
///   the employee fails with `UnmanagedWorkspace`);
/// - an orphan is a candidate for termination only if an earlier audit found it orphaned at
///   least `orphan_after_ms` ago, and every audit since: an operator has had that long, and its
///   `Drift Found` event, to tag it `hr-pipeline:protect` (what must still hold just before it is
///   terminated, the audit checks then).
pub fn remedies(findings: &[Finding], previous: &[Drift], actions: AuditActions, now_ms: i64) -> Vec<Remedy> {
    let open_since: BTreeMap<_, i64> =
        previous.iter().flat_map(|d| d.findings.iter().map(move |f| (f.key(), d.since_ms))).collect();
    let old_enough =
        |f: &Finding| open_since.get(&f.key()).is_some_and(|since| now_ms - since >= actions.orphan_after_ms);
    findings
        .iter()
        .filter_map(|finding| match finding {
            Finding::Missing { employee_id, workspace_id, why: Missing::Gone, .. }
                if actions.on_missing == OnMissing::RequestAgain =>
            {
                Some(Remedy::RequestAgain { employee_id: employee_id.clone(), workspace_id: workspace_id.clone() })
            }
            Finding::Mismatched { employee_id, workspace_id, .. } if actions.on_mismatched == OnMismatched::Reapply => {
                Some(Remedy::Reapply { employee_id: employee_id.clone(), workspace_id: workspace_id.clone() })
            }
            Finding::Orphaned { workspace_id, directory_id, user_of, .. }
                if actions.on_orphaned == OnOrphaned::TerminateManaged && old_enough(finding) =>
            {
                Some(Remedy::Terminate {
                    workspace_id: workspace_id.clone(),
                    directory_id: directory_id.clone(),
                    user_of: user_of.clone(),
                })
            }
            _ => None,
        })
        .collect()
}

/// Why an active employee's WorkSpace is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Missing {
    /// Not listed any more (deleted in the console, or by another record's leave).
    Gone,
    /// Listed TERMINATING or TERMINATED: being deleted behind the pipeline's back (the pipeline
    /// terminates an employee's WorkSpace only once the record says they are leaving).
    Terminating,
    /// Listed, but for another user.
    OtherUser { user_name: String },
}

/// A property of a WorkSpace the profile sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub property: Property,
    pub wanted: String,
    pub found: String,
}

/// One disagreement between the table and the WorkSpaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        /// A user-decoupled WorkSpace's name (its user name is `[UNDEFINED]`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace_name: Option<String>,
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

    /// Every kind, in the order the report and the metrics list them.
    pub const KINDS: [&'static str; 4] = ["missing", "orphaned", "mismatched", "unhealthy"];

    /// The WorkSpace the finding is about.
    pub fn workspace_id(&self) -> &str {
        match self {
            Finding::Missing { workspace_id, .. }
            | Finding::Orphaned { workspace_id, .. }
            | Finding::Mismatched { workspace_id, .. }
            | Finding::Unhealthy { workspace_id, .. } => workspace_id,
        }
    }

    /// The employee the finding is kept with, or the WorkSpace when no employee owns it.
    pub fn subject(&self) -> Subject {
        match self {
            Finding::Missing { employee_id, .. }
            | Finding::Mismatched { employee_id, .. }
            | Finding::Unhealthy { employee_id: Some(employee_id), .. } => Subject::Employee(employee_id.clone()),
            Finding::Orphaned { workspace_id, .. } | Finding::Unhealthy { workspace_id, employee_id: None, .. } => {
                Subject::Workspace(workspace_id.clone())
            }
        }
    }

    /// What stays the same while the finding does: its kind, subject and WorkSpace (not the
    /// details, which a later run may see differently, e.g. another property).
    pub fn key(&self) -> (&'static str, Subject, String) {
        (self.kind(), self.subject(), self.workspace_id().to_owned())
    }

    /// One line for people: the report, the history.
    pub fn summary(&self) -> String {
        match self {
            Finding::Missing { workspace_id, why, listed_for_user, .. } => {
                let why = match why {
                    Missing::Gone => "is no longer listed".to_owned(),
                    Missing::Terminating => "is being terminated".to_owned(),
                    Missing::OtherUser { user_name } => format!("is listed for user {user_name}"),
                };
                let other =
                    listed_for_user.as_ref().map(|id| format!("; {id} is listed for the user")).unwrap_or_default();
                format!("missing: the employee's WorkSpace {workspace_id} {why}{other}")
            }
            Finding::Orphaned { workspace_id, directory_id, user_name, workspace_name, state, user_of } => {
                let of = user_of.as_ref().map(|e| format!(", the user name of employee {e}")).unwrap_or_default();
                let whose = match workspace_name {
                    Some(name) if user_name == UNDEFINED_USER => format!("named {name}, no user"),
                    _ => format!("user {user_name}"),
                };
                format!("orphaned: {workspace_id} ({state}, {whose} in {directory_id}{of}) is wanted by no employee")
            }
            Finding::Mismatched { workspace_id, differences, .. } => {
                let parts: Vec<String> = differences
                    .iter()
                    .map(|d| format!("{} {} (profile {})", property_name(d.property), d.found, d.wanted))
                    .collect();
                format!("mismatched: {workspace_id} has {}", parts.join(", "))
            }
            Finding::Unhealthy { workspace_id, state, since_ms, .. } => {
                let since = crate::domain::time::Timestamp::from_millis(*since_ms);
                format!("unhealthy: {workspace_id} has been {state} since {since}")
            }
        }
    }
}

fn property_name(property: Property) -> &'static str {
    match property {
        Property::Bundle => "bundle",
        Property::RunningMode => "running mode",
        Property::AutoStopMinutes => "AutoStop minutes",
        Property::ComputeType => "compute type",
        Property::RootVolumeGib => "root volume GiB",
        Property::UserVolumeGib => "user volume GiB",
    }
}

/// Who a finding is kept with: an employee (their record and history), or a WorkSpace no
/// employee owns (the list of unowned WorkSpaces).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "subject", content = "id", rename_all = "snake_case")]
pub enum Subject {
    Employee(String),
    Workspace(String),
}

/// The findings open about one subject, as the table keeps them between audits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub subject: Subject,
    pub findings: Vec<Finding>,
    /// When an audit first found drift on this subject (kept while some finding stays open).
    pub since_ms: i64,
    /// The audit that last changed these findings.
    pub found_ms: i64,
}

/// What one audit leaves for the next, and for `hrws audit --last`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditState {
    pub audited_ms: i64,
    /// The directories this audit listed: the next one lists them before it reads the table,
    /// even those only records name.
    #[serde(default)]
    pub directories: BTreeSet<String>,
    /// Unhealthy WorkSpaces and since when they have been seen so.
    pub unhealthy_since: BTreeMap<String, i64>,
    /// Open findings per kind after the audit.
    pub counts: BTreeMap<String, usize>,
    pub employees_checked: usize,
    pub workspaces_listed: usize,
    /// DescribeWorkspaces calls the audit made (listing and rechecks).
    pub describe_calls: usize,
}

/// The most unhealthy WorkSpaces the audit state remembers (one DynamoDB item, 400 KB): beyond
/// it the oldest are kept and the newest forgotten, their time starting again at each audit
/// until fewer are unhealthy (a warning says so).
pub const MAX_UNHEALTHY_REMEMBERED: usize = 5_000;

/// What the table holds for an audit: every employee record, the open drift, the last state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditSnapshot {
    pub employees: Vec<EmployeeRecord>,
    pub drift: Vec<Drift>,
    pub state: Option<AuditState>,
}

/// How the table's drift changes with an audit's findings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriftChanges {
    /// Subjects whose findings changed: written as they are now.
    pub write: Vec<Drift>,
    /// Subjects with drift before and none now.
    pub clear: Vec<Drift>,
    /// Findings not open before (a history line each, for an employee).
    pub opened: Vec<Finding>,
}

/// Compares the open drift with an audit's `findings` at `now_ms`: only what changed is written.
pub fn drift_changes(previous: &[Drift], findings: &[Finding], now_ms: i64) -> DriftChanges {
    let before: BTreeMap<&Subject, &Drift> = previous.iter().map(|d| (&d.subject, d)).collect();
    let mut now: BTreeMap<Subject, Vec<Finding>> = BTreeMap::new();
    for finding in findings {
        now.entry(finding.subject()).or_default().push(finding.clone());
    }
    let mut changes = DriftChanges::default();
    for (subject, findings) in &now {
        let old = before.get(subject);
        let open_keys: BTreeSet<_> = old.map(|d| d.findings.iter().map(Finding::key).collect()).unwrap_or_default();
        changes.opened.extend(findings.iter().filter(|f| !open_keys.contains(&f.key())).cloned());
        if old.is_none_or(|d| d.findings != *findings) {
            changes.write.push(Drift {
                subject: subject.clone(),
                findings: findings.clone(),
                since_ms: old.map_or(now_ms, |d| d.since_ms),
                found_ms: now_ms,
            });
        }
    }
    changes.clear = previous.iter().filter(|d| !now.contains_key(&d.subject)).cloned().collect();
    changes
}

/// What to look at again before reporting candidate findings: the employees they name (read
/// again, consistently) and the WorkSpaces they name (described by id). The listing is paged
/// over minutes and the table read after it, so a leave, a move or a join that ran meanwhile can
/// look like drift; what it really is shows on a second look.
pub fn recheck_targets(findings: &[Finding]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut employees = BTreeSet::new();
    let mut workspaces = BTreeSet::new();
    for finding in findings {
        workspaces.insert(finding.workspace_id().to_owned());
        match finding {
            Finding::Missing { employee_id, listed_for_user, .. } => {
                employees.insert(employee_id.clone());
                workspaces.extend(listed_for_user.clone());
            }
            Finding::Mismatched { employee_id, .. } => {
                employees.insert(employee_id.clone());
            }
            Finding::Orphaned { user_of, .. } => employees.extend(user_of.clone()),
            Finding::Unhealthy { employee_id, .. } => employees.extend(employee_id.clone()),
        }
    }
    (employees, workspaces)
}

/// The findings of the second look that the first one made too (by [`Finding::key`]), as the
/// second look sees them.
pub fn confirmed(first: &[Finding], second: Vec<Finding>) -> Vec<Finding> {
    let keys: BTreeSet<_> = first.iter().map(Finding::key).collect();
    second.into_iter().filter(|f| keys.contains(&f.key())).collect()
}

/// The WorkSpace ids a record wants kept, for a second look at them.
pub fn wanted_by(employee: &EmployeeRecord) -> Vec<String> {
    wanted_ids(employee).map(str::to_owned).collect()
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
    // A WorkSpace a paged listing showed twice (its pages shifted under it) is one WorkSpace.
    let mut seen = BTreeSet::new();
    let listed: Vec<&WorkspaceInfo> = listed.iter().filter(|w| seen.insert(w.workspace_id.as_str())).collect();
    let audited: Vec<&EmployeeRecord> = employees
        .iter()
        .filter(|e| e.state != EmployeeState::Terminated)
        .filter(|e| directory_of(e).is_some_and(|d| directories.contains(d)))
        .collect();
    let by_id: HashMap<&str, &WorkspaceInfo> = listed.iter().map(|w| (w.workspace_id.as_str(), *w)).collect();
    let by_user: HashMap<(String, String), &WorkspaceInfo> =
        listed.iter().map(|w| ((w.directory_id.to_lowercase(), owner_of(w)), *w)).collect();
    let wanted: HashMap<&str, &EmployeeRecord> =
        audited.iter().flat_map(|e| wanted_ids(e).map(move |id| (id, *e))).collect();
    let user_key = |e: &EmployeeRecord| -> Option<(String, String)> {
        Some((directory_of(e)?.to_lowercase(), e.username.as_deref()?.to_lowercase()))
    };
    // Whose user name a WorkSpace carries: a leaver's too (a leaver's WorkSpace still listed is
    // the drift that matters most), the employee not terminated first when a name was reused.
    let leavers = employees.iter().filter(|e| e.state == EmployeeState::Terminated);
    let users: HashMap<(String, String), &EmployeeRecord> = leavers
        .filter(|e| directory_of(e).is_some_and(|d| directories.contains(d)))
        .chain(audited.iter().copied())
        .filter_map(|e| Some((user_key(e)?, e)))
        .collect();

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
            Some(info) if matches!(info.state, WorkspaceState::Terminating | WorkspaceState::Terminated) => findings
                .push(Finding::Missing {
                    employee_id,
                    workspace_id: workspace_id.to_owned(),
                    why: Missing::Terminating,
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
    for info in listed.iter().copied() {
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
                workspace_name: info.workspace_name.clone(),
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
