//! The provisioner: WorkSpace requests → CreateWorkspaces, 25 per call, as few calls as the
//! batch allows; results mapped back to employees; errors classified.

use super::{BatchOutcome, QueueRecord};
use crate::domain::employee::{EmployeeRecord, EmployeeState};
use crate::domain::messages::WorkspaceRequest;
use crate::domain::time::Timestamp;
use crate::ports::PortError as _;
use crate::ports::{
    CreateItem, CreateResponse, MessageQueue, Outgoing, StateStore, StoreError, WorkspaceInfo, WorkspacesApi,
    WorkspacesError,
};
use crate::services::intake::termination_request;
use std::collections::HashMap;
use tracing::{info, warn};

/// CreateWorkspaces takes at most 25 requests.
pub const MAX_PER_CALL: usize = 25;
const UNDEFINED_USER: &str = "[UNDEFINED]";

#[derive(Debug, Clone)]
pub struct ProvisionerConfig {
    /// Deliveries after which a retryable failure becomes permanent.
    pub max_attempts: u32,
}

pub struct Provisioner<S, W, Q> {
    pub store: S,
    pub workspaces: W,
    /// For a WorkSpace that turns out to belong to someone who has left meanwhile.
    pub terminations: Q,
    pub config: ProvisionerConfig,
}

/// How WorkSpaces' per-item error codes are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The user already has a WorkSpace in the directory: find and adopt it.
    Adopt,
    /// Retrying cannot help: record the failure on the employee.
    Permanent,
    /// Try again later, a bounded number of times.
    Retry,
}

pub fn classify(code: &str) -> Disposition {
    match code {
        "ResourceExists.WorkSpace" => Disposition::Adopt,
        // Another employee's user name: never adopted, and retrying will not change whose it is.
        crate::ports::USER_NAME_TAKEN => Disposition::Permanent,
        c if c.starts_with("ResourceNotFound.") => Disposition::Permanent,
        "InvalidParameterValuesException"
        | "InvalidParameterValues"
        | "AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace"
        | "ValidationException"
        | "UnsupportedWorkspaceConfiguration"
        | "OperationNotSupportedException"
        | "AccessDeniedException" => Disposition::Permanent,
        // Throttling, capacity, limits and anything unknown: retry, bounded.
        _ => Disposition::Retry,
    }
}

/// Identifies an item across request and response: directory plus user name (not case-sensitive),
/// or the WorkSpace name for user-decoupled WorkSpaces.
fn item_key(directory_id: &str, user_name: &str, workspace_name: Option<&str>) -> (String, String) {
    let who = if user_name == UNDEFINED_USER { workspace_name.unwrap_or(user_name) } else { user_name };
    (directory_id.to_owned(), who.to_lowercase())
}

/// What to do with one request after the call.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemResult {
    Created(WorkspaceInfo),
    Failed {
        code: String,
        message: String,
    },
    /// No answer for this item (the call failed, or the response missed it).
    NoAnswer(String),
}

/// Maps a CreateWorkspaces response back to the items sent, in order.
pub fn match_response(items: &[CreateItem], response: &CreateResponse) -> Vec<ItemResult> {
    let mut created: HashMap<(String, String), &WorkspaceInfo> = HashMap::new();
    for ws in &response.pending {
        created.insert(item_key(&ws.directory_id, &ws.user_name, ws.workspace_name.as_deref()), ws);
    }
    let mut failed: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
    for f in &response.failed {
        failed
            .entry(item_key(&f.directory_id, &f.user_name, f.workspace_name.as_deref()))
            .or_default()
            .push((f.code.clone(), f.message.clone()));
    }
    items
        .iter()
        .map(|item| {
            let key = item_key(&item.directory_id, &item.user_name, item.workspace_name.as_deref());
            if let Some(ws) = created.remove(&key) {
                ItemResult::Created(ws.clone())
            } else if let Some((code, message)) = failed.get_mut(&key).and_then(Vec::pop) {
                ItemResult::Failed { code, message }
            } else {
                ItemResult::NoAnswer("CreateWorkspaces did not mention this request".into())
            }
        })
        .collect()
}

struct Job<'a> {
    record: &'a QueueRecord,
    request: WorkspaceRequest,
    employee: EmployeeRecord,
}

impl<S: StateStore, W: WorkspacesApi, Q: MessageQueue> Provisioner<S, W, Q> {
    pub async fn handle_batch(&self, records: &[QueueRecord]) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let Some(requests) =
            super::requests_with_employees::<WorkspaceRequest>(&self.store, records, "WorkSpace request", &mut outcome)
                .await
        else {
            return outcome;
        };
        let mut jobs = Vec::new();
        for (record, request, employee) in requests {
            let employee_id = request.employee_id.clone();
            let Some(employee) = employee else {
                warn!(%employee_id, message_id = %record.message_id, "request for an unknown employee dropped");
                continue;
            };
            let wanted = employee.state == EmployeeState::Requested
                && employee.request_event_id.as_deref() == Some(request.event_id.as_str());
            let rehire_waiting = employee.rehire_pending
                && employee.request_event_id.as_deref() == Some(request.event_id.as_str())
                && employee.state.is_leaving();
            if rehire_waiting {
                // Sent just before the old WorkSpace's confirmation was written: come back later.
                info!(%employee_id, event_id = %request.event_id, "rehire request ahead of its confirmation; retrying");
                outcome.failed_message_ids.push(record.message_id.clone());
                continue;
            }
            if !wanted {
                info!(%employee_id, event_id = %request.event_id, state = employee.state.as_str(), "request no longer wanted; dropped");
                // A redelivery may follow a crash after CreateWorkspaces: a WorkSpace made for
                // someone who has left since must not stay behind.
                let left = employee.state.is_leaving() || employee.state == EmployeeState::Terminated;
                if record.receive_count > 1 && left && employee.workspace_id.is_none() {
                    let directory_id = &request.profile.directory_id;
                    match super::name_held_by_other(&self.store, &employee_id, directory_id, &request.username).await {
                        Ok(None) => {}
                        Ok(Some(holder)) => {
                            info!(%employee_id, %holder, "the user name is someone else's: no orphan of ours to look for");
                            continue;
                        }
                        Err(e) => {
                            warn!(%employee_id, error = %e, "could not check the user name's owner; retrying");
                            outcome.failed_message_ids.push(record.message_id.clone());
                            continue;
                        }
                    }
                    match self.workspaces.find_user_workspace(directory_id, &request.username).await {
                        Ok(Some(ws)) => {
                            if let Err(e) = self.terminate_orphan(&employee_id, &ws).await {
                                warn!(%employee_id, error = %e, "could not hand over the orphan WorkSpace; retrying");
                                outcome.failed_message_ids.push(record.message_id.clone());
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            warn!(%employee_id, error = %e, "could not check for an orphan WorkSpace; retrying");
                            outcome.failed_message_ids.push(record.message_id.clone());
                        }
                    }
                }
                continue;
            }
            jobs.push(Job { record, request, employee });
        }

        // A redelivered request may have created its WorkSpace before a crash: look first.
        let mut to_create = Vec::new();
        for job in jobs {
            if job.record.receive_count > 1 {
                match self.find_own_workspace(&job).await {
                    Ok(Some(ws)) => {
                        self.settle(&job, ItemResult::Created(ws), &mut outcome).await;
                        continue;
                    }
                    Ok(None) => {}
                    Err(result) => {
                        self.settle(&job, result, &mut outcome).await;
                        continue;
                    }
                }
            }
            to_create.push(job);
        }

        for chunk in to_create.chunks(MAX_PER_CALL) {
            let items: Vec<CreateItem> = chunk.iter().map(|job| create_item(&job.request)).collect();
            let results = match self.workspaces.create_workspaces(&items).await {
                Ok(response) => match_response(&items, &response),
                Err(e) if e.is_retryable() => {
                    vec![ItemResult::NoAnswer(e.to_string()); items.len()]
                }
                Err(e) => {
                    let (code, message) = match &e {
                        WorkspacesError::Service { code, message, .. } => (code.clone(), message.clone()),
                        WorkspacesError::Throttled(m) => ("ThrottlingException".into(), m.clone()),
                    };
                    vec![ItemResult::Failed { code, message }; items.len()]
                }
            };
            for (job, result) in chunk.iter().zip(results) {
                self.settle(job, result, &mut outcome).await;
            }
        }
        outcome
    }

    /// Records one request's result on its employee, or marks the message for retry.
    async fn settle(&self, job: &Job<'_>, result: ItemResult, outcome: &mut BatchOutcome) {
        let employee_id = &job.employee.employee_id;
        let message_id = &job.record.message_id;
        let attempts_left = job.record.receive_count < self.config.max_attempts;
        let result = match result {
            ItemResult::Failed { code, message } => match classify(&code) {
                Disposition::Adopt => {
                    match self.find_own_workspace(job).await {
                        Ok(Some(ws)) => ItemResult::Created(ws),
                        // Not visible yet (new ids lag): look again on the next delivery.
                        Ok(None) => ItemResult::NoAnswer(format!("{code} but no WorkSpace listed yet")),
                        Err(result) => result,
                    }
                }
                Disposition::Retry if attempts_left => ItemResult::NoAnswer(format!("{code}: {message}")),
                Disposition::Retry => ItemResult::Failed {
                    code,
                    message: format!("{message} (gave up after {} attempts)", job.record.receive_count),
                },
                Disposition::Permanent => ItemResult::Failed { code, message },
            },
            ItemResult::NoAnswer(why) if !attempts_left => ItemResult::Failed {
                code: "RetriesExhausted".into(),
                message: format!("{why} (gave up after {} attempts)", job.record.receive_count),
            },
            other => other,
        };
        let now = Timestamp::now().millis();
        let mut next = job.employee.clone();
        next.version += 1;
        next.updated_ms = now;
        next.state_since_ms = now;
        let mut created = None;
        match result {
            ItemResult::NoAnswer(why) => {
                warn!(%employee_id, %message_id, reason = %why, "WorkSpace request will be retried");
                outcome.failed_message_ids.push(message_id.clone());
                return;
            }
            ItemResult::Created(ws) => {
                created = Some(ws.clone());
                info!(%employee_id, workspace_id = %ws.workspace_id, state = %ws.state, "WorkSpace created");
                next.state = if ws.state == crate::domain::workspace::WorkspaceState::Available {
                    EmployeeState::Active
                } else {
                    EmployeeState::Pending
                };
                next.workspace_id = Some(ws.workspace_id);
            }
            ItemResult::Failed { code, message } => {
                warn!(%employee_id, %code, %message, "WorkSpace creation failed");
                next.state = EmployeeState::Failed;
                next.failure_code = Some(code);
                next.failure_message = Some(message);
            }
        }
        match self.store.save_employee(&next, Some(job.employee.version)).await {
            Ok(()) => {}
            Err(StoreError::Conflict(key)) => {
                if let Some(ws) = &created {
                    // A leave arrived while the WorkSpace was being created: hand it over.
                    match self.terminate_orphan(employee_id, ws).await {
                        Ok(true) => return,
                        Ok(false) => {}
                        Err(e) => warn!(%employee_id, error = %e, "could not hand over the new WorkSpace"),
                    }
                }
                // Changed meanwhile (another delivery, or a later event): decide again on redelivery.
                warn!(%employee_id, %key, "employee changed while creating; retrying");
                outcome.failed_message_ids.push(message_id.clone());
            }
            Err(e) => {
                warn!(%employee_id, error = %e, "saving the result failed; retrying");
                outcome.failed_message_ids.push(message_id.clone());
            }
        }
    }
}

impl<S: StateStore, W: WorkspacesApi, Q: MessageQueue> Provisioner<S, W, Q> {
    /// The WorkSpace the job's user already has in its directory, to adopt, if the user name is
    /// this employee's. A name that belongs to another employee is a failure (`UserNameTaken`):
    /// that WorkSpace is theirs and is never adopted.
    async fn find_own_workspace(&self, job: &Job<'_>) -> Result<Option<WorkspaceInfo>, ItemResult> {
        let directory_id = &job.request.profile.directory_id;
        let employee_id = &job.employee.employee_id;
        match super::name_held_by_other(&self.store, employee_id, directory_id, &job.request.username).await {
            Ok(None) => {}
            Ok(Some(holder)) => {
                return Err(ItemResult::Failed {
                    code: crate::ports::USER_NAME_TAKEN.into(),
                    message: format!(
                        "user name {} in directory {directory_id} belongs to employee {holder}: its WorkSpace is not adopted",
                        job.request.username
                    ),
                });
            }
            Err(e) => return Err(ItemResult::NoAnswer(e.to_string())),
        }
        self.workspaces
            .find_user_workspace(directory_id, &job.request.username)
            .await
            .map_err(|e| ItemResult::NoAnswer(e.to_string()))
    }

    /// Attaches a WorkSpace created for an employee who has left meanwhile and asks for its
    /// termination. `false` if the employee does not need it (still joining, or has one).
    async fn terminate_orphan(&self, employee_id: &str, ws: &WorkspaceInfo) -> Result<bool, String> {
        let Some(current) = self.store.employee(employee_id).await.map_err(|e| e.to_string())? else {
            return Ok(false);
        };
        let left = current.state.is_leaving() || current.state == EmployeeState::Terminated;
        if !left || current.workspace_id.is_some() {
            return Ok(false);
        }
        let now = Timestamp::now().millis();
        let mut next = current.clone();
        next.version += 1;
        next.workspace_id = Some(ws.workspace_id.clone());
        next.state = EmployeeState::Leaving;
        next.state_since_ms = now;
        next.updated_ms = now;
        next.terminated_ms = None;
        self.store.save_employee(&next, Some(current.version)).await.map_err(|e| e.to_string())?;
        let request = termination_request(&next, now).ok_or("leaving employee without leave event")?;
        let body = serde_json::to_string(&request).map_err(|e| e.to_string())?;
        self.terminations.send(&[Outgoing::plain(body)]).await.map_err(|e| e.to_string())?;
        warn!(%employee_id, workspace_id = %ws.workspace_id, "WorkSpace created after the leave; termination requested");
        Ok(true)
    }
}

/// The CreateWorkspaces item a request becomes.
pub fn create_item(request: &WorkspaceRequest) -> CreateItem {
    let decoupled = request.profile.user_decoupled;
    CreateItem {
        directory_id: request.profile.directory_id.clone(),
        user_name: if decoupled { UNDEFINED_USER.to_owned() } else { request.username.clone() },
        workspace_name: decoupled.then(|| request.username.clone()),
        profile: request.profile.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::FailedCreate;

    fn item(user: &str) -> CreateItem {
        let profile =
            serde_json::from_value(serde_json::json!({ "directory_id": "d-1234567890", "bundle_id": "wsb-12345678" }))
                .unwrap();
        CreateItem { directory_id: "d-1234567890".into(), user_name: user.into(), workspace_name: None, profile }
    }

    fn ws(user: &str, id: &str) -> WorkspaceInfo {
        WorkspaceInfo {
            workspace_id: id.into(),
            directory_id: "d-1234567890".into(),
            user_name: user.into(),
            workspace_name: None,
            state: crate::domain::workspace::WorkspaceState::Pending,
            error_code: None,
            error_message: None,
        }
    }

    #[test]
    fn responses_map_back_by_directory_and_user_ignoring_case() {
        let items = vec![item("Alice"), item("bob"), item("carol")];
        let response = CreateResponse {
            pending: vec![ws("carol", "ws-3"), ws("ALICE", "ws-1")],
            failed: vec![FailedCreate {
                directory_id: "d-1234567890".into(),
                user_name: "Bob".into(),
                workspace_name: None,
                code: "ResourceNotFound.User".into(),
                message: "no bob".into(),
            }],
        };
        let results = match_response(&items, &response);
        assert!(matches!(&results[0], ItemResult::Created(w) if w.workspace_id == "ws-1"));
        assert_eq!(results[1], ItemResult::Failed { code: "ResourceNotFound.User".into(), message: "no bob".into() });
        assert!(matches!(&results[2], ItemResult::Created(w) if w.workspace_id == "ws-3"));
        let missing = match_response(&[item("dave")], &response);
        assert!(matches!(missing[0], ItemResult::NoAnswer(_)));
    }

    #[test]
    fn error_codes_are_classified() {
        assert_eq!(classify("ResourceExists.WorkSpace"), Disposition::Adopt);
        assert_eq!(classify("ResourceNotFound.User"), Disposition::Permanent);
        assert_eq!(classify(crate::ports::USER_NAME_TAKEN), Disposition::Permanent);
        assert_eq!(classify("ResourceNotFound.Directory"), Disposition::Permanent);
        assert_eq!(classify("AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace"), Disposition::Permanent);
        assert_eq!(classify("ResourceLimitExceeded"), Disposition::Retry);
        assert_eq!(classify("SomethingNew.Unheard"), Disposition::Retry);
    }
}
