//! The reconciler: on a schedule, confirms what WorkSpaces only reports when asked. Employees
//! whose WorkSpace is PENDING are found through the sparse index, their WorkSpaces described 25
//! ids per call, and AVAILABLE / ERROR recorded with a conditional write.

use crate::domain::employee::{EmployeeRecord, EmployeeState};
use crate::domain::time::Timestamp;
use crate::ports::{StateStore, StoreError, WorkspaceInfo, WorkspacesApi, WorkspacesError};
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
    pub still_pending: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Workspaces(#[from] WorkspacesError),
}

pub struct Reconciler<S, W> {
    pub store: S,
    pub workspaces: W,
}

impl<S: StateStore, W: WorkspacesApi> Reconciler<S, W> {
    pub async fn run(&self) -> Result<ReconcileReport, ReconcileError> {
        let mut report = ReconcileReport::default();
        let ids = self.store.watched(EmployeeState::Pending).await?;
        // The index is eventually consistent: decide on a strongly consistent read.
        let employees: Vec<EmployeeRecord> = self
            .store
            .employees(&ids)
            .await?
            .into_iter()
            .filter(|e| e.state == EmployeeState::Pending && e.workspace_id.is_some())
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
        let now = Timestamp::now().millis();
        for employee in employees {
            let Some(ws) = employee.workspace_id.as_ref().and_then(|id| seen.get(id)) else {
                // A new id can be missing for a short while; look again next run.
                report.still_pending += 1;
                continue;
            };
            let mut next = employee.clone();
            match ws.state.as_str() {
                "AVAILABLE" => {
                    next.state = EmployeeState::Active;
                    report.became_active += 1;
                }
                "ERROR" => {
                    next.state = EmployeeState::Failed;
                    next.failure_code = Some(ws.error_code.clone().unwrap_or_else(|| "ERROR".into()));
                    next.failure_message = Some(ws.error_message.clone().unwrap_or_default());
                    report.failed += 1;
                }
                _ => {
                    report.still_pending += 1;
                    continue;
                }
            }
            next.version += 1;
            next.state_since_ms = now;
            next.updated_ms = now;
            match self.store.save_employee(&next, Some(employee.version)).await {
                Ok(()) => {
                    info!(employee_id = %next.employee_id, workspace_id = %ws.workspace_id, state = next.state.as_str(), error_code = ?next.failure_code, "WorkSpace confirmed")
                }
                Err(StoreError::Conflict(_)) => {
                    warn!(employee_id = %next.employee_id, "changed meanwhile; next run decides")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(report)
    }
}
