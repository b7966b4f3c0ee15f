//! The reconciler: on a schedule, confirms what WorkSpaces only reports when asked, and releases
//! future-dated events that have come due.
//!
//! - Employees whose WorkSpace is PENDING or TERMINATING are found through the sparse index;
//!   their WorkSpaces are described 25 ids per call (ceil(M/25) calls for M), and the outcome is
//!   recorded with a conditional write after a consistent read: AVAILABLE → active, ERROR →
//!   failed, id gone after termination was asked → terminated (then a pending rehire is sent).
//! - Employees in a state past its deadline are flagged as stuck: a log line, a metric, and
//!   `stuck_since_ms` on the record.
//! - Held events whose `effective_at` has come are posted to the HR events queue again.
//! - At 2 DescribeWorkspaces calls/s a run covers about 50 WorkSpaces a second: a large backlog
//!   takes several runs, each writing as it goes and stopping before its deadline.

use crate::domain::employee::{EmployeeRecord, EmployeeState, PastWorkspace};
use crate::domain::time::Timestamp;
use crate::ports::{
    MessageQueue, Outgoing, QueueError, StateStore, StoreError, WorkspaceInfo, WorkspacesApi, WorkspacesError,
};
use crate::services::intake::workspace_request;
use std::collections::HashMap;
use tracing::{info, warn};

/// DescribeWorkspaces takes at most 25 ids.
pub const IDS_PER_CALL: usize = 25;
/// Employees read per consistent batch read (BatchGetItem takes up to 100 keys).
const READ_PAGE: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    pub checked: usize,
    pub describe_calls: usize,
    pub became_active: usize,
    pub failed: usize,
    pub terminated: usize,
    pub rehires_requested: usize,
    pub still_waiting: usize,
    pub stuck_pending: usize,
    pub stuck_terminating: usize,
    pub released: usize,
    /// Left for the next run because this one's time budget was spent.
    pub deferred: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Workspaces(#[from] WorkspacesError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl ReconcileError {
    /// The Lambda `errorType` of a failed run: what failed, readable in metrics and alarms.
    pub fn error_type(&self) -> String {
        match self {
            ReconcileError::Store(StoreError::Conflict(_)) => "Store.Conflict".into(),
            ReconcileError::Store(StoreError::LostClaim(_)) => "Store.LostClaim".into(),
            ReconcileError::Store(StoreError::Malformed { .. }) => "Store.Malformed".into(),
            ReconcileError::Store(StoreError::Unavailable { .. }) => "Store.Unavailable".into(),
            ReconcileError::Store(StoreError::Invalid { .. }) => "Store.Invalid".into(),
            ReconcileError::Store(StoreError::NameHeld { .. }) => "Store.NameHeld".into(),
            ReconcileError::Workspaces(WorkspacesError::Throttled(_)) => "WorkSpaces.Throttled".into(),
            ReconcileError::Workspaces(WorkspacesError::Service { code, .. }) => format!("WorkSpaces.{code}"),
            ReconcileError::Queue(_) => "Queue.SendFailed".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// PENDING longer than this is stuck (creation takes ~20 min, up to an hour encrypted).
    pub create_deadline_ms: i64,
    /// TERMINATING longer than this is stuck.
    pub terminate_deadline_ms: i64,
}

pub struct Reconciler<S, W, Q> {
    pub store: S,
    pub workspaces: W,
    /// Where a rehire's WorkSpace request goes once the old WorkSpace is gone.
    pub requests: Q,
    /// Where due events are posted again (the HR events queue).
    pub hr_events: Q,
    pub config: ReconcilerConfig,
}

impl<S: StateStore, W: WorkspacesApi, Q: MessageQueue> Reconciler<S, W, Q> {
    /// One pass. Decisions are written chunk by chunk, so a run that stops early (its budget
    /// spent, or killed at the Lambda timeout) keeps what it confirmed; `stop_at_ms` is when to
    /// stop starting new DescribeWorkspaces calls, and what is left waits for the next run.
    pub async fn run(&self, stop_at_ms: Option<i64>) -> Result<ReconcileReport, ReconcileError> {
        let mut report = ReconcileReport::default();
        let now = Timestamp::now().millis();
        self.release_due(now, &mut report).await?;

        let mut ids = self.store.watched(EmployeeState::Pending).await?;
        ids.extend(self.store.watched(EmployeeState::Terminating).await?);
        // An eventually consistent index can list one employee under both states.
        let mut listed = std::collections::HashSet::new();
        ids.retain(|id| listed.insert(id.clone()));
        let mut queued: Vec<EmployeeRecord> = Vec::new();
        let mut unread = ids.len();
        'pages: for page in ids.chunks(READ_PAGE) {
            unread -= page.len();
            // The index is eventually consistent: decide on strongly consistent reads.
            let read = self.store.employees(page).await?;
            queued.extend(read.into_iter().filter(|e| e.state.needs_watching() && e.workspace_id.is_some()));
            // Full chunks only until the last page, so M WorkSpaces take ceil(M/25) calls.
            while queued.len() >= IDS_PER_CALL || (unread == 0 && !queued.is_empty()) {
                if stop_at_ms.is_some_and(|stop| Timestamp::now().millis() >= stop) {
                    report.deferred = queued.len() + unread;
                    warn!(
                        deferred = report.deferred,
                        checked = report.checked,
                        "run budget spent; the rest waits for the next run"
                    );
                    break 'pages;
                }
                let chunk: Vec<EmployeeRecord> = queued.drain(..queued.len().min(IDS_PER_CALL)).collect();
                self.describe_and_decide(chunk, &mut report).await?;
            }
        }
        emit_stuck_metric(&report);
        Ok(report)
    }

    async fn describe_and_decide(
        &self,
        employees: Vec<EmployeeRecord>,
        report: &mut ReconcileReport,
    ) -> Result<(), ReconcileError> {
        let ws_ids: Vec<String> = employees.iter().filter_map(|e| e.workspace_id.clone()).collect();
        report.describe_calls += 1;
        report.checked += employees.len();
        let seen: HashMap<String, WorkspaceInfo> = self
            .workspaces
            .describe_workspaces(&ws_ids)
            .await?
            .into_iter()
            .map(|ws| (ws.workspace_id.clone(), ws))
            .collect();
        for employee in employees {
            let ws = employee.workspace_id.as_ref().and_then(|id| seen.get(id));
            // Decided now, not when the run began: a confirmation never predates what it confirms.
            self.decide(employee, ws, Timestamp::now().millis(), report).await?;
        }
        Ok(())
    }

    async fn decide(
        &self,
        employee: EmployeeRecord,
        ws: Option<&WorkspaceInfo>,
        now: i64,
        report: &mut ReconcileReport,
    ) -> Result<(), ReconcileError> {
        let mut next = employee.clone();
        next.version += 1;
        next.updated_ms = now;
        let mut rehire = false;
        match (employee.state, ws.map(|w| w.state.as_str())) {
            (EmployeeState::Pending, Some("AVAILABLE")) => {
                next.state = EmployeeState::Active;
                report.became_active += 1;
            }
            (EmployeeState::Pending, Some("ERROR")) => {
                next.state = EmployeeState::Failed;
                next.failure_code = Some(ws.and_then(|w| w.error_code.clone()).unwrap_or_else(|| "ERROR".into()));
                next.failure_message = Some(ws.and_then(|w| w.error_message.clone()).unwrap_or_default());
                report.failed += 1;
            }
            // Absent only counts once termination was asked; a new id can be missing briefly.
            (EmployeeState::Terminating, None) if employee.terminate_requested_ms.is_some() => {
                next.state = EmployeeState::Terminated;
                next.terminated_ms = Some(now);
                if let Some(id) = next.workspace_id.take() {
                    next.previous_workspaces.push(PastWorkspace { workspace_id: id, terminated_ms: now });
                }
                report.terminated += 1;
                if employee.rehire_pending {
                    next.state = EmployeeState::Requested;
                    next.rehire_pending = false;
                    next.leave_event_id = None;
                    next.terminate_requested_ms = None;
                    rehire = true;
                }
            }
            (state, _) => {
                report.still_waiting += 1;
                let (deadline, stuck) = match state {
                    EmployeeState::Pending => (self.config.create_deadline_ms, &mut report.stuck_pending),
                    _ => (self.config.terminate_deadline_ms, &mut report.stuck_terminating),
                };
                if now - employee.state_since_ms <= deadline {
                    return Ok(());
                }
                *stuck += 1;
                warn!(
                    employee_id = %employee.employee_id,
                    state = state.as_str(),
                    workspace_id = ?employee.workspace_id,
                    workspace_state = ?ws.map(|w| w.state.clone()),
                    since = %Timestamp::from_millis(employee.state_since_ms),
                    "stuck past its deadline"
                );
                if employee.stuck_since_ms.is_some() {
                    return Ok(());
                }
                next.stuck_since_ms = Some(now);
                return self.save(&next, &employee).await;
            }
        }
        next.state_since_ms = now;
        next.stuck_since_ms = None;
        if rehire && let Some(request) = workspace_request(&next, now) {
            // Sent before the write: should the write fail, the provisioner drops the request
            // (the employee is not requested yet) and the next run sends it again.
            let body = serde_json::to_string(&request)
                .map_err(|e| StoreError::Malformed { key: next.employee_id.clone(), detail: e.to_string() })?;
            self.requests.send(&[Outgoing::plain(body)]).await?;
            report.rehires_requested += 1;
        }
        self.save(&next, &employee).await?;
        info!(employee_id = %next.employee_id, state = next.state.as_str(), workspace_id = ?employee.workspace_id, error_code = ?next.failure_code, "confirmed");
        Ok(())
    }

    async fn save(&self, next: &EmployeeRecord, read: &EmployeeRecord) -> Result<(), ReconcileError> {
        match self.store.save_employee(next, Some(read.version)).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(_)) => {
                warn!(employee_id = %next.employee_id, "changed meanwhile; the next run decides");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Posts held events that are due; the intake then applies them. A crash between posting
    /// and removing posts again, which the intake sees as a duplicate.
    async fn release_due(&self, now: i64, report: &mut ReconcileReport) -> Result<(), ReconcileError> {
        for event in self.store.due(now).await? {
            let message = Outgoing {
                body: event.body.clone(),
                group_id: Some(event.employee_id.clone()),
                deduplication_id: Some(format!("release-{}", event.event_id)),
            };
            self.hr_events.send(&[message]).await?;
            self.store.unschedule(&event.employee_id, &event.event_id).await?;
            info!(employee_id = %event.employee_id, event_id = %event.event_id, effective = %Timestamp::from_millis(event.effective_ms), "due event released");
            report.released += 1;
        }
        Ok(())
    }
}

/// CloudWatch embedded metric format: the alarm on stuck employees reads this.
fn emit_stuck_metric(report: &ReconcileReport) {
    crate::telemetry::emit_counts(&[
        ("StuckPending", report.stuck_pending),
        ("StuckTerminating", report.stuck_terminating),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeWorkspaces, MemoryQueue, MemoryStore};
    use std::time::Duration;

    fn employee(i: usize, state: EmployeeState) -> EmployeeRecord {
        let mut e = EmployeeRecord::new(&format!("E{i:05}"), 0);
        e.state = state;
        e.version = 1;
        e.workspace_id = Some(format!("ws-{i:09}"));
        e
    }

    fn reconciler(
        store: MemoryStore,
        workspaces: FakeWorkspaces,
    ) -> Reconciler<MemoryStore, FakeWorkspaces, MemoryQueue> {
        Reconciler {
            store,
            workspaces,
            requests: MemoryQueue::default(),
            hr_events: MemoryQueue::default(),
            config: ReconcilerConfig { create_deadline_ms: i64::MAX / 2, terminate_deadline_ms: i64::MAX / 2 },
        }
    }

    #[test]
    fn a_failed_run_names_what_failed_as_its_error_type() {
        let store = ReconcileError::from(StoreError::Unavailable { operation: "Query", message: "timed out".into() });
        assert_eq!(store.error_type(), "Store.Unavailable");
        let service = ReconcileError::from(WorkspacesError::Service {
            operation: "DescribeWorkspaces",
            code: "InvalidParameterValuesException".into(),
            message: "bad id".into(),
            retryable: false,
        });
        assert_eq!(service.error_type(), "WorkSpaces.InvalidParameterValuesException");
        let queue = ReconcileError::from(QueueError { queue: "q".into(), message: "down".into() });
        assert_eq!(queue.error_type(), "Queue.SendFailed");
    }

    #[tokio::test]
    async fn m_workspaces_take_ceil_m_over_25_describe_calls_across_read_pages() {
        // 240 pending and 20 active among them: the active ones are read and dropped, so full
        // chunks have to span read pages to stay at ceil(240/25) = 10 calls.
        let records =
            (0..260).map(|i| employee(i, if i % 13 == 0 { EmployeeState::Active } else { EmployeeState::Pending }));
        let r = reconciler(MemoryStore::with(records), FakeWorkspaces::all("AVAILABLE"));
        let report = r.run(None).await.unwrap();
        assert_eq!(report.checked, 240);
        assert_eq!(report.describe_calls, 10);
        assert_eq!(r.workspaces.calls().iter().map(Vec::len).collect::<Vec<_>>(), [vec![25; 9], vec![15]].concat());
        assert_eq!(report.became_active, 240);
        assert_eq!(r.store.count(EmployeeState::Active), 260);
        assert_eq!(report.deferred, 0);
    }

    #[tokio::test]
    async fn a_run_out_of_budget_keeps_what_it_confirmed_and_the_next_run_does_the_rest() {
        let records = (0..250).map(|i| employee(i, EmployeeState::Pending));
        let mut workspaces = FakeWorkspaces::all("AVAILABLE");
        workspaces.latency = Duration::from_millis(60);
        let r = reconciler(MemoryStore::with(records), workspaces);
        let stop_at = Timestamp::now().millis() + 100;
        let first = r.run(Some(stop_at)).await.unwrap();
        assert!((1..10).contains(&first.describe_calls), "stopped part-way: {first:?}");
        assert_eq!(first.checked + first.deferred, 250);
        assert_eq!(r.store.count(EmployeeState::Active), first.became_active, "written as it went");
        assert_eq!(first.became_active, first.checked);

        let second = r.run(None).await.unwrap();
        assert_eq!(second.checked, first.deferred, "the next run picks up only what is left");
        assert_eq!(r.store.count(EmployeeState::Active), 250);
        assert_eq!(r.workspaces.calls().len(), 10, "no WorkSpace described twice");
    }

    #[tokio::test]
    async fn a_spent_budget_describes_nothing_and_defers_everything() {
        let r = reconciler(
            MemoryStore::with((0..30).map(|i| employee(i, EmployeeState::Terminating))),
            FakeWorkspaces::all("TERMINATED"),
        );
        let report = r.run(Some(0)).await.unwrap();
        assert_eq!((report.describe_calls, report.deferred), (0, 30));
    }
}
