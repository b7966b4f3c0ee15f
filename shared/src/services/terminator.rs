//! The terminator: termination requests → TerminateWorkspaces, 25 per call, each employee
//! recorded as terminating with the time asked. The reconciler confirms when the id is gone.

use super::provisioner::{Disposition, classify};
use super::{BatchOutcome, QueueRecord};
use crate::domain::employee::{EmployeeRecord, EmployeeState};
use crate::domain::messages::TerminationRequest;
use crate::domain::time::Timestamp;
use crate::ports::{MessageQueue, Outgoing, StateStore, WorkspacesApi};
use crate::services::intake::workspace_request;
use std::collections::HashMap;
use tracing::{info, warn};

/// TerminateWorkspaces takes at most 25 ids.
pub const MAX_PER_CALL: usize = 25;

#[derive(Debug, Clone)]
pub struct TerminatorConfig {
    /// Deliveries after which a retryable failure (a SUSPENDED WorkSpace) becomes permanent.
    pub max_attempts: u32,
}

pub struct Terminator<S, W, Q> {
    pub store: S,
    pub workspaces: W,
    /// For a rehire waiting on a leave that turns out to have nothing to terminate.
    pub requests: Q,
    pub config: TerminatorConfig,
}

/// How one termination ended.
#[derive(Debug, Clone, PartialEq)]
enum Ended {
    /// TerminateWorkspaces accepted it (or the service no longer knows the id).
    Terminating(String),
    /// There is no WorkSpace to terminate.
    NothingToTerminate,
    Failed {
        code: String,
        message: String,
    },
    Retry(String),
}

struct Job<'a> {
    record: &'a QueueRecord,
    employee: EmployeeRecord,
}

impl<S: StateStore, W: WorkspacesApi, Q: MessageQueue> Terminator<S, W, Q> {
    pub async fn handle_batch(&self, records: &[QueueRecord]) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let Some(requests) = super::requests_with_employees::<TerminationRequest>(
            &self.store,
            records,
            "termination request",
            &mut outcome,
        )
        .await
        else {
            return outcome;
        };
        let mut with_id: Vec<(Job, String)> = Vec::new();
        for (record, request, employee) in requests {
            let employee_id = request.employee_id.clone();
            let Some(employee) = employee else { continue };
            if employee.state != EmployeeState::Leaving
                || employee.leave_event_id.as_deref() != Some(request.event_id.as_str())
            {
                info!(%employee_id, state = employee.state.as_str(), "termination no longer wanted; dropped");
                continue;
            }
            let job = Job { record, employee };
            match job.employee.workspace_id.clone() {
                Some(id) => with_id.push((job, id)),
                // The leave came before the WorkSpace id was known: look it up, if the user name
                // is this employee's (another employee's WorkSpace is never terminated).
                None => {
                    match super::name_held_by_other(&self.store, &employee_id, &request.directory_id, &request.username)
                        .await
                    {
                        Err(e) => self.settle(&job, Ended::Retry(e.to_string()), &mut outcome).await,
                        Ok(Some(holder)) => {
                            info!(%employee_id, %holder, "the user name belongs to another employee: nothing of ours to terminate");
                            self.settle(&job, Ended::NothingToTerminate, &mut outcome).await;
                        }
                        Ok(None) => {
                            match self.workspaces.find_user_workspace(&request.directory_id, &request.username).await {
                                Ok(Some(ws)) => with_id.push((job, ws.workspace_id)),
                                Ok(None) => self.settle(&job, Ended::NothingToTerminate, &mut outcome).await,
                                Err(e) => self.settle(&job, Ended::Retry(e.to_string()), &mut outcome).await,
                            }
                        }
                    }
                }
            }
        }
        for chunk in with_id.chunks(MAX_PER_CALL) {
            let ids: Vec<String> = chunk.iter().map(|(_, id)| id.clone()).collect();
            let failures = match self.workspaces.terminate_workspaces(&ids).await {
                Ok(f) => f,
                Err(e) => {
                    for (job, _) in chunk {
                        self.settle(job, Ended::Retry(e.to_string()), &mut outcome).await;
                    }
                    continue;
                }
            };
            let failures: HashMap<&str, (&str, &str)> =
                failures.iter().map(|f| (f.workspace_id.as_str(), (f.code.as_str(), f.message.as_str()))).collect();
            for (job, id) in chunk {
                let ended = match failures.get(id.as_str()) {
                    None => Ended::Terminating(id.clone()),
                    // Gone already: the reconciler confirms the absence.
                    Some((code, _)) if code.starts_with("ResourceNotFound") => Ended::Terminating(id.clone()),
                    Some((code, message)) => {
                        let attempts_left = job.record.receive_count < self.config.max_attempts;
                        match classify(code) {
                            Disposition::Permanent => {
                                Ended::Failed { code: (*code).into(), message: (*message).into() }
                            }
                            _ if attempts_left => Ended::Retry(format!("{code}: {message}")),
                            _ => Ended::Failed {
                                code: (*code).into(),
                                message: format!("{message} (gave up after {} attempts)", job.record.receive_count),
                            },
                        }
                    }
                };
                self.settle(job, ended, &mut outcome).await;
            }
        }
        outcome
    }

    async fn settle(&self, job: &Job<'_>, ended: Ended, outcome: &mut BatchOutcome) {
        let employee_id = &job.employee.employee_id;
        let now = Timestamp::now().millis();
        let mut next = job.employee.clone();
        next.version += 1;
        next.updated_ms = now;
        next.state_since_ms = now;
        match ended {
            Ended::Retry(why) => {
                warn!(%employee_id, reason = %why, "termination will be retried");
                outcome.failed_message_ids.push(job.record.message_id.clone());
                return;
            }
            Ended::Terminating(id) => {
                info!(%employee_id, workspace_id = %id, "termination requested");
                next.state = EmployeeState::Terminating;
                next.workspace_id = Some(id);
                next.terminate_requested_ms = Some(now);
            }
            Ended::NothingToTerminate => {
                info!(%employee_id, "no WorkSpace to terminate");
                next.state = EmployeeState::Terminated;
                next.terminated_ms = Some(now);
                if next.rehire_pending {
                    next.state = EmployeeState::Requested;
                    next.rehire_pending = false;
                    next.leave_event_id = None;
                }
            }
            Ended::Failed { code, message } => {
                warn!(%employee_id, %code, %message, "termination failed");
                next.state = EmployeeState::Failed;
                next.failure_code = Some(code);
                next.failure_message = Some(message);
            }
        }
        if next.state == EmployeeState::Requested {
            // A rehire whose leave had nothing to terminate: its request goes out before the
            // write, so a failure on either side is retried with this message.
            let sent = match workspace_request(&next, now).map(|r| serde_json::to_string(&r)) {
                Some(Ok(body)) => self.requests.send(&[Outgoing::plain(body)]).await.map_err(|e| e.to_string()),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("rehire without request, user or profile".into()),
            };
            if let Err(e) = sent {
                warn!(%employee_id, error = %e, "rehire request not sent; retrying");
                outcome.failed_message_ids.push(job.record.message_id.clone());
                return;
            }
            info!(%employee_id, "rehire: WorkSpace requested");
        }
        if let Err(e) = self.store.save_employee(&next, Some(job.employee.version)).await {
            warn!(%employee_id, error = %e, "saving the termination failed; retrying");
            outcome.failed_message_ids.push(job.record.message_id.clone());
        }
    }
}
