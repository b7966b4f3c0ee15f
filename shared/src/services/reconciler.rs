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
    pub async fn run(&self) -> Result<ReconcileReport, ReconcileError> {
        let mut report = ReconcileReport::default();
        let now = Timestamp::now().millis();
        self.release_due(now, &mut report).await?;

        let mut ids = self.store.watched(EmployeeState::Pending).await?;
        ids.extend(self.store.watched(EmployeeState::Terminating).await?);
        // The index is eventually consistent: decide on strongly consistent reads.
        let employees: Vec<EmployeeRecord> = self
            .store
            .employees(&ids)
            .await?
            .into_iter()
            .filter(|e| e.state.needs_watching() && e.workspace_id.is_some())
            .collect();
        report.checked = employees.len();
        let ws_ids: Vec<String> = employees.iter().filter_map(|e| e.workspace_id.clone()).collect();
        let mut seen: HashMap<String, WorkspaceInfo> = HashMap::new();
        for chunk in ws_ids.chunks(IDS_PER_CALL) {
            report.describe_calls += 1;
            for ws in self.workspaces.describe_workspaces(chunk).await? {
                seen.insert(ws.workspace_id.clone(), ws);
            }
        }
        for employee in employees {
            let ws = employee.workspace_id.as_ref().and_then(|id| seen.get(id));
            // Decided now, not when the run began: a confirmation never predates what it confirms.
            self.decide(employee, ws, Timestamp::now().millis(), &mut report).await?;
        }
        emit_stuck_metric(&report);
        Ok(report)
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
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": Timestamp::now().millis(),
            "CloudWatchMetrics": [{
                "Namespace": "HrWorkspaces",
                "Dimensions": [[]],
                "Metrics": [
                    { "Name": "StuckPending", "Unit": "Count" },
                    { "Name": "StuckTerminating", "Unit": "Count" }
                ]
            }]
        },
        "StuckPending": report.stuck_pending,
        "StuckTerminating": report.stuck_terminating,
    });
    // EMF is read from the function's stdout, one JSON object per line.
    println!("{line}");
}
