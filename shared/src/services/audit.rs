//! The drift audit: on a schedule (and on demand, `hrws audit`), lists every WorkSpace of the
//! managed directories, reads the table, and reports where they disagree
//! ([`crate::domain::audit`] decides). By default it only reports; each kind of finding can be
//! acted on by its own setting ([`AuditActions`], [`remedies`] decides what is safe):
//! - `request-again`: an active employee whose WorkSpace is gone gets a new one (the lifecycle's
//!   `WorkspaceLost`: the record back to requested, then the request sent);
//! - `reapply`: an employee whose WorkSpace differs from the profile is moved to the same profile
//!   (the lifecycle's `Reapply`: the reconciler's mover path does the WorkSpaces calls);
//! - `terminate-managed`: an orphan found by two audits in a row is terminated, if DescribeTags
//!   shows the managed tag and not the protect tag (read just before), no employee has come to
//!   want it meanwhile, and the mass-termination guard admits it (its count is the terminator's).
//!
//! - The listing comes first, the table after it: a WorkSpace listed was created before the table
//!   was read, so its joiner's record is in the read. What changed meanwhile (a leave, a move, a
//!   joiner) can still look like drift: every candidate finding is looked at again (its employees
//!   read consistently, its WorkSpaces described by id) and reported only if it is still there.
//! - Its cost is ceil(WorkSpaces/25) DescribeWorkspaces calls per directory, plus
//!   ceil(candidates/25) for the second look, paced by [`AuditConfig::call_interval_ms`] so the
//!   pipeline keeps most of the API's rate; and one Scan of the table.
//! - A finding that opens is announced on the event bus (`Drift Found`) before it is kept.
//! - Each finding is kept with its employee (an item beside the record, and a history line when
//!   it opens and when it resolves) or, for a WorkSpace no one owns, under the WorkSpace; counted
//!   per kind in the report and the metrics.

use super::{Outbox, StepError, settle};
use crate::domain::audit::{
    AuditActions, AuditRules, AuditState, Drift, Finding, MAX_UNHEALTHY_REMEMBERED, Remedy, Subject, audit, confirmed,
    drift_changes, recheck_targets, remedies, wanted_by,
};
use crate::domain::employee::{EmployeeRecord, EmployeeState, EventOutcome};
use crate::domain::lifecycle::{Input, REAPPLY_PREFIX, Step, Verdict};
use crate::domain::lifecycle_events::{LifecycleEvent, drift_found};
use crate::domain::validation::reason;
use crate::domain::workspace::{MANAGED_TAG_KEY, MAX_PER_CALL, tag_refusal};
use crate::ports::{
    AuditStore, Clock, EventBus, GuardConfig, HistoryEntry, MessageQueue, PortError, PublishError, StateStore,
    StoreError, WorkspaceInfo, WorkspacesApi, WorkspacesError,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

#[derive(Debug, Clone, PartialEq)]
pub struct AuditConfig {
    /// The directories of the configured profiles; directories the records name are audited too.
    pub directories: BTreeSet<String>,
    pub rules: AuditRules,
    /// The least time between two of the audit's WorkSpaces calls.
    pub call_interval_ms: u64,
    /// What it does about its findings (report only by default).
    pub actions: AuditActions,
    /// The mass-termination guard an orphan's termination must pass (`None`: off).
    pub guard: Option<GuardConfig>,
}

pub struct Auditor<S, W, B, Q> {
    pub store: S,
    pub workspaces: W,
    /// Where a finding that opens is announced (`Drift Found`), before the table keeps it.
    pub events: B,
    /// The provisioner's queue: a WorkSpace requested again (`request-again` only).
    pub requests: Q,
    pub clock: Arc<dyn Clock>,
    pub config: AuditConfig,
}

/// What one audit found and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditReport {
    pub audited_ms: i64,
    pub directories: Vec<String>,
    pub employees_checked: usize,
    pub workspaces_listed: usize,
    /// Open findings per kind (every kind, 0 included).
    pub counts: BTreeMap<String, usize>,
    pub findings: Vec<Finding>,
    /// Findings not open before this audit, and subjects whose drift it found resolved.
    pub opened: usize,
    pub resolved: usize,
    /// Candidates the second look showed were not drift (a change under way while listing).
    pub dropped_on_second_look: usize,
    /// DescribeWorkspaces calls: the listing's pages and the second look's.
    pub describe_calls: usize,
    /// Every employee of the table by state (terminated included), as the audit read them.
    pub employees_by_state: BTreeMap<String, usize>,
    /// Employees held by the mass-termination guard, and flagged stuck past a deadline.
    pub held: usize,
    pub stuck: usize,
    /// What the audit did about its findings, under its settings (none when it only reports).
    pub actions: Vec<ActionTaken>,
}

/// One action on a finding, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionTaken {
    #[serde(flatten)]
    pub remedy: Remedy,
    /// Whether it was done (written, requested, terminated); otherwise why not.
    pub done: bool,
    pub outcome: String,
}

impl AuditReport {
    /// The audit's CloudWatch metrics: open findings per kind (`DriftMissing`, ...), what it
    /// looked at, and its DescribeWorkspaces calls.
    pub fn metrics(&self) -> Vec<(&'static str, usize)> {
        let count = |kind: &str| self.counts.get(kind).copied().unwrap_or(0);
        vec![
            ("DriftMissing", count("missing")),
            ("DriftOrphaned", count("orphaned")),
            ("DriftMismatched", count("mismatched")),
            ("DriftUnhealthy", count("unhealthy")),
            ("WorkspacesAudited", self.workspaces_listed),
            ("AuditDescribeCalls", self.describe_calls),
            ("EmployeesHeld", self.held),
            ("EmployeesStuck", self.stuck),
            ("AuditActionsDone", self.actions.iter().filter(|a| a.done).count()),
            ("AuditActionsDeclined", self.actions.iter().filter(|a| !a.done).count()),
        ]
        .into_iter()
        .chain(
            EmployeeState::ALL
                .map(|state| (state.metric_name(), self.employees_by_state.get(state.as_str()).copied().unwrap_or(0))),
        )
        .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Workspaces(#[from] WorkspacesError),
    #[error(transparent)]
    Events(#[from] PublishError),
    #[error(transparent)]
    Step(#[from] StepError),
}

impl PortError for AuditError {
    fn is_retryable(&self) -> bool {
        match self {
            AuditError::Store(e) => e.is_retryable(),
            AuditError::Workspaces(e) => e.is_retryable(),
            AuditError::Events(e) => e.is_retryable(),
            AuditError::Step(e) => e.is_retryable(),
        }
    }
    fn error_type(&self) -> String {
        match self {
            AuditError::Store(e) => e.error_type(),
            AuditError::Workspaces(e) => e.error_type(),
            AuditError::Events(e) => e.error_type(),
            AuditError::Step(e) => e.error_type(),
        }
    }
}

/// What the listing found: the WorkSpaces, the directories listed, those left out.
#[derive(Default)]
struct Listing {
    listed: Vec<WorkspaceInfo>,
    audited: BTreeSet<String>,
    skipped: BTreeSet<String>,
}

/// Spaces the audit's calls: the first at once, each next one `interval` after the previous.
struct Pace {
    interval: Duration,
    last: Option<tokio::time::Instant>,
    calls: usize,
}

impl Pace {
    async fn turn(&mut self) {
        if let Some(last) = self.last {
            tokio::time::sleep_until(last + self.interval).await;
        }
        self.last = Some(tokio::time::Instant::now());
        self.calls += 1;
    }
}

impl<S: StateStore + AuditStore, W: WorkspacesApi, B: EventBus, Q: MessageQueue> Auditor<S, W, B, Q> {
    pub async fn run(&self) -> Result<AuditReport, AuditError> {
        // The audit's time is its start: a WorkSpace unhealthy for the allowed time at the last
        // audit's start is reported at this one's, however long the listing takes.
        let now = self.clock.now_ms();
        let mut pace = Pace { interval: Duration::from_millis(self.config.call_interval_ms), last: None, calls: 0 };
        let previous = self.store.audit_state().await?.unwrap_or_default();
        // The configured directories, and those the last audit listed (records name them), are
        // listed before the table is read.
        let mut listing = Listing::default();
        let known = self.config.directories.union(&previous.directories).cloned().collect::<Vec<_>>();
        self.list_into(&known, &mut pace, &mut listing).await?;
        let snapshot = self.store.audit_snapshot().await?;
        // Directories only the records name, new since the last audit (a profile removed from
        // the configuration): listed after the table was read, this once.
        let named: BTreeSet<String> =
            snapshot.employees.iter().filter_map(|e| e.profile.as_ref().map(|p| p.directory_id.clone())).collect();
        let new: Vec<String> =
            named.into_iter().filter(|d| !listing.audited.contains(d) && !listing.skipped.contains(d)).collect();
        self.list_into(&new, &mut pace, &mut listing).await?;
        let Listing { listed, audited: directories, skipped } = listing;
        let rules = self.config.rules;
        let first = audit(&snapshot.employees, &listed, &directories, &previous.unhealthy_since, rules, now);

        // The second look, only at what the first one found.
        let mut outcome = first.clone();
        let mut fresh = Vec::new();
        if !first.findings.is_empty() {
            let (employee_ids, mut workspace_ids) = recheck_targets(&first.findings);
            fresh = self.store.employees(&employee_ids.into_iter().collect::<Vec<_>>()).await?;
            workspace_ids.extend(fresh.iter().flat_map(wanted_by));
            let described = self.describe(&workspace_ids, &mut pace).await?;
            let employees = replaced(snapshot.employees.clone(), fresh.clone());
            let mut relisted: Vec<WorkspaceInfo> =
                listed.iter().filter(|w| !workspace_ids.contains(&w.workspace_id)).cloned().collect();
            relisted.extend(described.into_iter().filter(|w| directories.contains(&w.directory_id)));
            let second = audit(&employees, &relisted, &directories, &previous.unhealthy_since, rules, now);
            outcome.findings = confirmed(&first.findings, second.findings);
            outcome.unhealthy_since = second.unhealthy_since;
        }
        let dropped = first.findings.len() - outcome.findings.len();

        let mut changes = drift_changes(&snapshot.drift, &outcome.findings, now);
        if !skipped.is_empty() {
            // A directory left out says nothing about its drift: none is taken as resolved.
            changes.clear.clear();
            let listed_ids: BTreeSet<&str> = listed.iter().map(|w| w.workspace_id.as_str()).collect();
            for (id, since) in &previous.unhealthy_since {
                if !listed_ids.contains(id.as_str()) {
                    outcome.unhealthy_since.entry(id.clone()).or_insert(*since);
                }
            }
        }
        // Announced before the table keeps them: an audit that fails after this finds them open
        // again next time and announces them again (at least once).
        // The records as the second look read them, where it did.
        let employees: BTreeMap<&str, &EmployeeRecord> =
            snapshot.employees.iter().chain(&fresh).map(|e| (e.employee_id.as_str(), e)).collect();
        let found: Vec<LifecycleEvent> = changes
            .opened
            .iter()
            .map(|finding| {
                let employee = match finding.subject() {
                    Subject::Employee(id) => employees.get(id.as_str()).copied(),
                    Subject::Workspace(_) => None,
                };
                drift_found(finding, employee, previous.audited_ms, now)
            })
            .collect();
        self.events.publish(&found).await?;
        self.record(&changes.opened, &changes.clear, now).await?;
        for drift in &changes.write {
            self.store.save_drift(drift).await?;
        }
        for drift in &changes.clear {
            self.store.clear_drift(&drift.subject).await?;
        }
        // Acted on after the findings are kept: an audit that fails while acting has still
        // reported them, and the next one acts on what is still there.
        let mut actions = Vec::new();
        for remedy in remedies(&outcome.findings, &snapshot.drift, self.config.actions, now) {
            let employee = match &remedy {
                Remedy::RequestAgain { employee_id, .. } | Remedy::Reapply { employee_id, .. } => {
                    employees.get(employee_id.as_str()).map(|e| (*e).clone())
                }
                Remedy::Terminate { .. } => None,
            };
            actions.push(self.act(remedy, employee, &mut pace, now).await);
        }
        let mut counts: BTreeMap<String, usize> = Finding::KINDS.iter().map(|k| ((*k).to_owned(), 0)).collect();
        for finding in &outcome.findings {
            *counts.entry(finding.kind().to_owned()).or_default() += 1;
        }
        let mut unhealthy_since = outcome.unhealthy_since;
        if unhealthy_since.len() > MAX_UNHEALTHY_REMEMBERED {
            warn!(unhealthy = unhealthy_since.len(), "more unhealthy WorkSpaces than the audit remembers");
            let mut by_age: Vec<(String, i64)> = unhealthy_since.into_iter().collect();
            by_age.sort_by_key(|(id, since)| (*since, id.clone()));
            unhealthy_since = by_age.into_iter().take(MAX_UNHEALTHY_REMEMBERED).collect();
        }
        let state = AuditState {
            audited_ms: now,
            directories: directories.iter().chain(&skipped).cloned().collect(),
            unhealthy_since,
            counts: counts.clone(),
            employees_checked: outcome.employees_checked,
            workspaces_listed: outcome.workspaces_listed,
            describe_calls: pace.calls,
        };
        self.store.save_audit_state(&state).await?;
        for finding in &outcome.findings {
            warn!(kind = finding.kind(), subject = ?finding.subject(), workspace_id = finding.workspace_id(),
                  "drift: {}", finding.summary());
        }
        info!(?counts, listed = state.workspaces_listed, calls = pace.calls, dropped, "audited");
        Ok(AuditReport {
            audited_ms: now,
            directories: directories.into_iter().collect(),
            employees_checked: state.employees_checked,
            workspaces_listed: state.workspaces_listed,
            counts,
            findings: outcome.findings,
            opened: changes.opened.len(),
            resolved: changes.clear.len(),
            dropped_on_second_look: dropped,
            describe_calls: pace.calls,
            employees_by_state: EmployeeState::ALL
                .iter()
                .map(|state| {
                    let n = snapshot.employees.iter().filter(|e| e.state == *state).count();
                    (state.as_str().to_owned(), n)
                })
                .collect(),
            held: snapshot.employees.iter().filter(|e| e.held_since_ms.is_some()).count(),
            stuck: snapshot.employees.iter().filter(|e| e.stuck_since_ms.is_some()).count(),
            actions,
        })
    }

    /// Does one remedy: through the lifecycle for an employee (decided on the record as the
    /// second look read it, written only if it has not changed since), or an orphan's
    /// termination.
    /// A failure is the action's outcome, not the audit's: the others are still tried, and the
    /// audit completes (the next one finds what is still there).
    async fn act(&self, remedy: Remedy, employee: Option<EmployeeRecord>, pace: &mut Pace, now: i64) -> ActionTaken {
        let (done, outcome) = match self.try_act(&remedy, employee, pace, now).await {
            Ok(answer) => answer,
            Err(e) => (false, format!("not done: {e}")),
        };
        let whom = match &remedy {
            Remedy::RequestAgain { employee_id, .. } | Remedy::Reapply { employee_id, .. } => employee_id.as_str(),
            Remedy::Terminate { .. } => "",
        };
        info!(employee_id = whom, workspace_id = remedy.workspace_id(), done, "drift action: {outcome}");
        ActionTaken { remedy, done, outcome }
    }

    async fn try_act(
        &self,
        remedy: &Remedy,
        employee: Option<EmployeeRecord>,
        pace: &mut Pace,
        now: i64,
    ) -> Result<(bool, String), AuditError> {
        let (employee_id, input) = match remedy {
            Remedy::RequestAgain { employee_id, workspace_id } => {
                (employee_id.clone(), Input::WorkspaceLost { workspace_id: workspace_id.clone() })
            }
            Remedy::Reapply { employee_id, workspace_id } => (
                employee_id.clone(),
                Input::Reapply { event_id: format!("{REAPPLY_PREFIX}{now}"), workspace_id: workspace_id.clone() },
            ),
            Remedy::Terminate { workspace_id, user_of, .. } => {
                return self.terminate_orphan(workspace_id, user_of.as_deref(), pace, now).await;
            }
        };
        let outbox = Outbox { requests: Some(&self.requests), terminations: None };
        let (_, decision) = settle(&self.store, &outbox, self.clock.as_ref(), &employee_id, employee, &input).await?;
        let done = decision.steps.iter().any(|s| matches!(s, Step::Save { .. }));
        let (Verdict::Note(outcome) | Verdict::Event(_, outcome)) = decision.verdict;
        if done {
            self.store
                .record_history(&audit_line(&employee_id, "action", now, format!("drift action: {outcome}")))
                .await?;
        }
        Ok((done, outcome))
    }

    /// An orphan's termination, if everything that must hold still does just before it:
    /// - its tags, read now: the managed tag, and not the protect tag (never one made by hand,
    ///   whatever TERMINATE_UNMANAGED says for leavers);
    /// - the guard is on and admits it (the terminator's count and window);
    /// - the employee the managed tag names has a record in this table (not: another stack's
    ///   WorkSpace, or a table restored or replaced, where every managed WorkSpace looks orphaned);
    /// - re-read last, neither that employee nor the one whose user name it carries wants it, or
    ///   is in the middle of anything that might come to want it.
    ///
    /// `(terminated, what became of it)`.
    async fn terminate_orphan(
        &self,
        workspace_id: &str,
        user_of: Option<&str>,
        pace: &mut Pace,
        now: i64,
    ) -> Result<(bool, String), AuditError> {
        let Some(guard) = self.config.guard else {
            return Ok((false, "kept: the mass-termination guard is off (TERMINATION_GUARD_LIMIT=0)".into()));
        };
        pace.turn().await;
        let tags = self.workspaces.tags(workspace_id).await?;
        if let Some((code, why)) = tag_refusal(&tags, false) {
            return Ok((false, format!("kept ({code}): {why}")));
        }
        let owner = tags.get(MANAGED_TAG_KEY).cloned().unwrap_or_default();
        let key = format!("orphan-{workspace_id}");
        let admitted = self.store.admit_terminations(now, guard.window_ms, guard.limit, &[key]).await?;
        if admitted.first() != Some(&true) {
            warn!(workspace_id, "orphan's termination held by the mass-termination guard");
            return Ok((false, "kept: held by the mass-termination guard (hrws guard)".into()));
        }
        pace.turn().await;
        let mut ids = vec![owner.clone()];
        ids.extend(user_of.map(str::to_owned));
        let fresh = self.store.employees(&ids).await?;
        if !fresh.iter().any(|e| e.employee_id == owner) {
            return Ok((
                false,
                format!(
                    "kept: its managed tag names employee {owner:?}, whom this table does not know (another stack's, or a table restored)"
                ),
            ));
        }
        if let Some(e) = fresh.iter().find(|e| concerned(e, workspace_id)) {
            return Ok((false, format!("kept: employee {} ({}) may want it", e.employee_id, e.state.as_str())));
        }
        let failed = self.workspaces.terminate_workspaces(&[workspace_id.to_owned()]).await?;
        if let Some(f) = failed.first() {
            return Ok((false, format!("kept: TerminateWorkspaces refused it ({}: {})", f.code, f.message)));
        }
        let line = format!(
            "drift action: WorkSpace {workspace_id} (managed for this employee, wanted by no one) terminated as an orphan"
        );
        self.store.record_history(&audit_line(&owner, "orphan", now, line)).await?;
        Ok((true, format!("terminated: orphaned since an earlier audit, managed for {owner}, not protected")))
    }

    /// Lists each directory into `listing`: its WorkSpaces, and whether it was audited or left
    /// out ([`tolerated`](Self::tolerated)); any other failure fails the audit.
    async fn list_into(
        &self,
        directories: &[String],
        pace: &mut Pace,
        listing: &mut Listing,
    ) -> Result<(), AuditError> {
        for directory in directories {
            match self.list(directory, pace).await {
                Ok(found) => {
                    listing.listed.extend(found);
                    listing.audited.insert(directory.clone());
                }
                Err(e) if self.tolerated(directory, &e) => {
                    warn!(directory, error = %e, "a directory only records name cannot be listed; left out");
                    listing.skipped.insert(directory.clone());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether a listing's failure leaves the directory out instead of failing the audit: only
    /// for a directory no configured profile names (one only old records name), and not for
    /// throttling, which the next run gets past.
    fn tolerated(&self, directory: &str, error: &AuditError) -> bool {
        !self.config.directories.contains(directory) && !error.is_retryable()
    }

    /// Every WorkSpace of a directory, a page per call.
    async fn list(&self, directory_id: &str, pace: &mut Pace) -> Result<Vec<WorkspaceInfo>, AuditError> {
        let (mut listed, mut token) = (Vec::new(), None::<String>);
        loop {
            pace.turn().await;
            let page = self.workspaces.list_workspaces(directory_id, token.as_deref()).await?;
            listed.extend(page.workspaces);
            token = page.next_token;
            if token.is_none() {
                return Ok(listed);
            }
        }
    }

    /// These WorkSpaces as they are now, 25 ids a call (absent: gone).
    async fn describe(&self, ids: &BTreeSet<String>, pace: &mut Pace) -> Result<Vec<WorkspaceInfo>, AuditError> {
        let ids: Vec<String> = ids.iter().cloned().collect();
        let mut described = Vec::new();
        for chunk in ids.chunks(MAX_PER_CALL) {
            pace.turn().await;
            described.extend(self.workspaces.describe_workspaces(chunk).await?);
        }
        Ok(described)
    }

    /// A history line per employee whose drift opened or resolved.
    async fn record(&self, opened: &[Finding], cleared: &[Drift], now: i64) -> Result<(), AuditError> {
        let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for finding in opened {
            if let Subject::Employee(id) = finding.subject() {
                found.entry(id).or_default().push(finding.summary());
            }
        }
        let line = |employee_id: &str, what: &str, text: String| audit_line(employee_id, what, now, text);
        for (employee_id, summaries) in found {
            let text = format!("drift found: {}", summaries.join("; "));
            self.store.record_history(&line(&employee_id, "found", text)).await?;
        }
        for drift in cleared {
            if let Subject::Employee(employee_id) = &drift.subject {
                let kinds: BTreeSet<&str> = drift.findings.iter().map(Finding::kind).collect();
                let kinds: Vec<&str> = kinds.into_iter().collect();
                let text = format!("drift resolved: no longer {}", kinds.join(", "));
                self.store.record_history(&line(employee_id, "resolved", text)).await?;
            }
        }
        Ok(())
    }
}

/// Whether an employee wants the WorkSpace, or is in the middle of something that may come to:
/// a join, rehire or restore (the provisioner adopts the user's WorkSpace), a move (a migration's
/// or relocation's new WorkSpace may not be on the record yet), a leave (the terminator finds it).
fn concerned(e: &EmployeeRecord, workspace_id: &str) -> bool {
    let settled = matches!(e.state, EmployeeState::Terminated | EmployeeState::Failed);
    wanted_by(e).iter().any(|id| id == workspace_id)
        || e.rehire_pending
        || e.sweep_when_gone
        || !settled && (e.state != EmployeeState::Active || e.moving.is_some())
}

/// A line of the audit's in an employee's history (`what`: found, resolved, action).
fn audit_line(employee_id: &str, what: &str, now: i64, text: String) -> HistoryEntry {
    HistoryEntry {
        employee_id: Some(employee_id.to_owned()),
        event_id: None,
        message_id: format!("audit-{now}-{what}"),
        kind: Some("audit".into()),
        occurred_ms: Some(now),
        outcome: EventOutcome::Drift,
        reason: reason(&text),
        recorded_ms: now,
    }
}

/// The records with the fresh ones in place of those read before (a record gone stays gone).
fn replaced(mut records: Vec<EmployeeRecord>, fresh: Vec<EmployeeRecord>) -> Vec<EmployeeRecord> {
    let fresh: BTreeMap<String, EmployeeRecord> = fresh.into_iter().map(|r| (r.employee_id.clone(), r)).collect();
    for record in &mut records {
        if let Some(newer) = fresh.get(&record.employee_id) {
            *record = newer.clone();
        }
    }
    records
}

#[cfg(test)]
mod tests;
