//! The provisioner: WorkSpace requests → CreateWorkspaces, 25 per call, as few calls as the
//! batch allows; each result mapped back to its employee and decided by the lifecycle.

use super::{
    BatchContext, BatchOutcome, Deadline, Delivery, Outbox, QueueRecord, SqsHandler, before_deadline,
    name_held_by_other, send_hand_backs, settle,
};
use crate::domain::employee::EmployeeRecord;
use crate::domain::lifecycle::{Input, RequestStatus, request_status};
use crate::domain::messages::WorkspaceRequest;
use crate::domain::workspace::{
    Call, Disposition, MANAGED_TAG_KEY, MAX_PER_CALL, UNDEFINED_USER, UNMANAGED, WorkspaceState, classify,
};
use crate::ports::{
    Clock, CreateItem, CreateResponse, MessageQueue, PortError as _, StateStore, USER_NAME_TAKEN, WorkspaceInfo,
    WorkspacesApi, WorkspacesError,
};
use std::collections::HashMap;
use std::sync::Arc;
use tracing::{info, warn};

/// A permanent refusal after a delivery that may have made the WorkSpace is asked again while
/// the attempt is below this one (see `settle`).
const UNLISTED_RETRIES_UNTIL: u32 = 3;

/// Time one chunk may need: a CreateWorkspaces call (with the SDK's retries) and 25 writes.
const CHUNK_BUDGET_MS: i64 = 10_000;

/// Time one lookup of a user's WorkSpace may need (a DescribeWorkspaces call, with retries).
const LOOKUP_BUDGET_MS: i64 = 5_000;

/// Time kept, after a WorkSpaces call, to write what it answered (25 records, with retries).
const SETTLE_BUDGET_MS: i64 = 4_000;

/// How long after its request a leaver's WorkSpace that an unanswered create may have made is
/// looked for again when not listed (a new id is missing from DescribeWorkspaces for a while; AWS
/// does not say how long): about the old visibility-timeout retry, with margin.
const ORPHAN_LISTING_WAIT_MS: i64 = 15 * 60 * 1000;

/// What looking for a leaver's orphan WorkSpace found.
enum Orphan {
    /// Handed over for termination, or none to find.
    Checked,
    /// None listed, while one may still appear: look again later.
    NotListedYet,
}

#[derive(Debug, Clone)]
pub struct ProvisionerConfig {
    /// Deliveries after which a retryable failure becomes permanent.
    pub max_attempts: u32,
    /// Adopt a user's existing WorkSpace that lacks the managed tag (one the pipeline did not
    /// create); otherwise the employee fails with `UnmanagedWorkspace`.
    pub adopt_unmanaged: bool,
}

pub struct Provisioner<S, W, Q> {
    pub store: S,
    pub workspaces: W,
    /// Its own queue: requests handed back for want of time.
    pub requests: Q,
    /// For a WorkSpace that turns out to belong to someone who has left meanwhile.
    pub terminations: Q,
    pub config: ProvisionerConfig,
    pub clock: Arc<dyn Clock>,
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
    Created(Box<WorkspaceInfo>),
    Failed {
        code: String,
        message: String,
    },
    /// No answer for this item (the call failed, or the response missed it): an attempt spent.
    NoAnswer(String),
    /// Not answered, or not looked for, for want of time (the deadline near, the API
    /// throttling), after a create that went out: handed back without spending an attempt, and
    /// looked for before creating again (a WorkSpace may exist). Requests never sent are handed
    /// back before they get here.
    HandBack(String),
}

/// A failed WorkSpaces call: throttling is the API busy (nothing done, no attempt spent);
/// anything else retryable is an attempt.
fn unanswered(e: &WorkspacesError) -> ItemResult {
    match e {
        WorkspacesError::Throttled(_) => ItemResult::HandBack(e.to_string()),
        _ => ItemResult::NoAnswer(e.to_string()),
    }
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
                ItemResult::Created(Box::new(ws.clone()))
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
    delivery: Delivery,
}

impl<S: StateStore, W: WorkspacesApi, Q: MessageQueue> SqsHandler for Provisioner<S, W, Q> {
    async fn handle_batch(&self, records: &[QueueRecord], context: BatchContext) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        // A rehire's request may come ahead of the confirmation that makes it wanted: later.
        let same = super::SameEmployee::Later;
        let read = super::requests_with_employees::<WorkspaceRequest>(
            &self.store,
            records,
            "WorkSpace request",
            same,
            &mut outcome,
        );
        if let Some(requests) = read.await {
            self.handle_requests(requests, context, &mut outcome).await;
        }
        send_hand_backs(&self.requests, &mut outcome).await;
        outcome
    }
}

impl<S: StateStore, W: WorkspacesApi, Q: MessageQueue> Provisioner<S, W, Q> {
    async fn handle_requests(
        &self,
        requests: Vec<(&QueueRecord, WorkspaceRequest, Option<EmployeeRecord>)>,
        context: BatchContext,
        outcome: &mut BatchOutcome,
    ) {
        let mut jobs = Vec::new();
        for (record, request, employee) in requests {
            let employee_id = request.employee_id.clone();
            let delivery = Delivery::of(record, &request);
            match (request_status(employee.as_ref(), &request.event_id), employee) {
                (RequestStatus::Wanted, Some(employee)) => jobs.push(Job { record, request, employee, delivery }),
                (RequestStatus::AheadOfConfirmation, _) => {
                    // Sent just before the old WorkSpace's confirmation was written: come back in
                    // a moment, no attempt spent (nothing was tried).
                    let why = "rehire request ahead of its confirmation";
                    outcome.hand_back(record, &request, why, delivery.call_maybe_made);
                }
                // A redelivery may follow a crash after CreateWorkspaces: a WorkSpace made for
                // someone who has left since must not stay behind.
                (RequestStatus::Unwanted { left: true }, Some(employee)) if delivery.call_maybe_made => {
                    match self.hand_over_orphan(&request, employee, context.deadline).await {
                        Ok(Orphan::Checked) => {}
                        // A new WorkSpace is missing from DescribeWorkspaces for a while: looked
                        // for again, later, until the request is old enough to trust the absence.
                        Ok(Orphan::NotListedYet) => {
                            let why = "a WorkSpace made for a leaver may not be listed yet";
                            outcome.hand_back(record, &request, why, true);
                        }
                        Err(why) => {
                            warn!(%employee_id, reason = %why, "could not check for an orphan WorkSpace; retrying");
                            outcome.failed_message_ids.push(record.message_id.clone());
                        }
                    }
                }
                (_, employee) => {
                    let state = employee.map(|e| e.state.as_str());
                    info!(%employee_id, event_id = %request.event_id, ?state, "request no longer wanted; dropped");
                }
            }
        }

        // A redelivered request may have created its WorkSpace before a crash: look first. Each
        // look is a WorkSpaces call (2 a second for the account): with the deadline near, the
        // requests not yet looked at go back, so a large redelivered batch makes progress at
        // every delivery instead of timing out whole.
        let mut to_create = Vec::new();
        let mut looked = 0;
        for (i, job) in jobs.iter().enumerate() {
            if job.delivery.call_maybe_made {
                if looked > 0 && context.deadline.too_close(self.clock.now_ms(), CHUNK_BUDGET_MS) {
                    warn!(unprocessed = jobs.len() - i, "invocation deadline near; requests not yet looked for");
                    for job in &jobs[i..] {
                        outcome.hand_back(job.record, &job.request, "not looked for with the deadline near", false);
                    }
                    break;
                }
                looked += 1;
                match self.find_own_workspace(job, context.deadline).await {
                    Ok(Some(ws)) => {
                        self.settle(job, ItemResult::Created(Box::new(ws)), context.deadline, outcome).await;
                        continue;
                    }
                    Ok(None) => {}
                    Err(result) => {
                        self.settle(job, result, context.deadline, outcome).await;
                        continue;
                    }
                }
            }
            to_create.push(job);
        }

        for (i, chunk) in to_create.chunks(MAX_PER_CALL).enumerate() {
            if i > 0 && context.deadline.too_close(self.clock.now_ms(), CHUNK_BUDGET_MS) {
                let left = &to_create[i * MAX_PER_CALL..];
                warn!(unprocessed = left.len(), "invocation deadline near; the rest of the batch is handed back");
                for job in left {
                    outcome.hand_back(job.record, &job.request, "not asked for with the deadline near", false);
                }
                return;
            }
            let items: Vec<CreateItem> = chunk.iter().map(|job| create_item(&job.request)).collect();
            let answer = before_deadline(
                context.deadline,
                self.clock.as_ref(),
                SETTLE_BUDGET_MS,
                self.workspaces.create_workspaces(&items),
            )
            .await;
            // No answer before the deadline (the SDK waiting its turn at the API's rate): the call
            // may have been made, so the next delivery looks for its WorkSpaces first.
            let Some(answer) = answer else {
                for job in chunk {
                    let why = "CreateWorkspaces not answered before the invocation's deadline".to_owned();
                    self.settle(job, ItemResult::HandBack(why), context.deadline, outcome).await;
                }
                continue;
            };
            let results = match answer {
                Ok(response) => match_response(&items, &response),
                // Throttled, but the SDK's earlier attempts may have timed out after the service
                // took the call: the next delivery looks first.
                Err(e) if e.is_retryable() => vec![unanswered(&e); items.len()],
                Err(e) => {
                    let (code, message) = match &e {
                        WorkspacesError::Service { code, message, .. } => (code.clone(), message.clone()),
                        WorkspacesError::Throttled(m) => ("ThrottlingException".into(), m.clone()),
                    };
                    vec![ItemResult::Failed { code, message }; items.len()]
                }
            };
            for (job, result) in chunk.iter().zip(results) {
                self.settle(job, result, context.deadline, outcome).await;
            }
        }
    }

    /// Decides one request's result on its employee, or marks the message for retry.
    async fn settle(&self, job: &Job<'_>, result: ItemResult, deadline: Deadline, outcome: &mut BatchOutcome) {
        let employee_id = &job.employee.employee_id;
        let message_id = &job.record.message_id;
        let attempt = job.delivery.attempt;
        let attempts_left = attempt < self.config.max_attempts;
        // Looking a WorkSpace up is a WorkSpaces call (2 a second for the account): not with
        // the deadline near, when it would cost the whole batch a timeout.
        let no_time = || deadline.too_close(self.clock.now_ms(), LOOKUP_BUDGET_MS);
        let result = match result {
            ItemResult::Failed { code, message } => match classify(Call::Create, &code) {
                // Made by another delivery of this request that has settled it since (a
                // duplicate running beside it): the record says so, without a WorkSpaces call.
                Disposition::Adopt if self.settled_meanwhile(job).await => {
                    info!(%employee_id, %message_id, "{code}: the request was settled meanwhile by another delivery");
                    return;
                }
                Disposition::Adopt | Disposition::Permanent if no_time() => {
                    ItemResult::HandBack(format!("{code}: not looked for with the deadline near"))
                }
                Disposition::Adopt => {
                    match self.find_own_workspace(job, deadline).await {
                        Ok(Some(ws)) => ItemResult::Created(Box::new(ws)),
                        // Not visible yet (new ids lag): look again on the next delivery.
                        Ok(None) => ItemResult::NoAnswer(format!("{code} but no WorkSpace listed yet")),
                        Err(result) => result,
                    }
                }
                Disposition::Retry | Disposition::Gone if attempts_left => {
                    ItemResult::NoAnswer(format!("{code}: {message}"))
                }
                Disposition::Retry | Disposition::Gone => {
                    ItemResult::Failed { code, message: format!("{message} (gave up after {attempt} attempts)") }
                }
                // A WorkSpace the user already has (made by an attempt that crashed before its
                // write, then asked for again) is adopted rather than left behind untracked.
                Disposition::Permanent => match self.find_own_workspace(job, deadline).await {
                    Ok(Some(ws)) => ItemResult::Created(Box::new(ws)),
                    // An earlier delivery may have made one that is not listed yet (a new id is
                    // missing from DescribeWorkspaces for a moment): asked once more, after the
                    // visibility timeout, before the employee is failed and it left untracked.
                    Ok(None) if job.delivery.call_maybe_made && attempt < UNLISTED_RETRIES_UNTIL => {
                        ItemResult::NoAnswer(format!(
                            "{code}: {message}; an earlier attempt's WorkSpace may not be listed yet"
                        ))
                    }
                    Ok(None) => ItemResult::Failed { code, message },
                    Err(result) => result,
                },
            },
            ItemResult::NoAnswer(why) if !attempts_left => ItemResult::Failed {
                code: "RetriesExhausted".into(),
                message: format!("{why} (gave up after {attempt} attempts)"),
            },
            other => other,
        };
        let request_event_id = job.request.event_id.clone();
        let input = match result {
            ItemResult::NoAnswer(why) => {
                warn!(%employee_id, %message_id, reason = %why, "WorkSpace request will be retried");
                outcome.failed_message_ids.push(message_id.clone());
                return;
            }
            ItemResult::HandBack(why) => {
                outcome.hand_back(job.record, &job.request, &why, true);
                return;
            }
            ItemResult::Created(ws) => {
                Input::Created { request_event_id, workspace_id: ws.workspace_id, state: ws.state }
            }
            ItemResult::Failed { code, message } => Input::CreateFailed { request_event_id, code, message },
        };
        let outbox = Outbox { requests: None, terminations: Some(&self.terminations) };
        let current = Some(job.employee.clone());
        match settle(&self.store, &outbox, self.clock.as_ref(), employee_id, current, &input).await {
            Ok((_, decision)) => {
                info!(%employee_id, %message_id, verdict = ?decision.verdict, "WorkSpace request settled")
            }
            Err(e) => {
                warn!(%employee_id, error = %e, "settling the WorkSpace request failed; retrying");
                outcome.failed_message_ids.push(message_id.clone());
            }
        }
    }

    /// Whether the employee's record has moved past this request since the batch was read, for
    /// a reason other than a leave (a leaver's WorkSpace made meanwhile must still be found).
    async fn settled_meanwhile(&self, job: &Job<'_>) -> bool {
        match self.store.employee(&job.employee.employee_id).await {
            Ok(fresh) => {
                request_status(fresh.as_ref(), &job.request.event_id) == RequestStatus::Unwanted { left: false }
            }
            Err(_) => false,
        }
    }

    /// The WorkSpace the job's user already has in its directory, to adopt, if the user name is
    /// this employee's. A name that belongs to another employee is a failure (`UserNameTaken`):
    /// that WorkSpace is theirs and is never adopted.
    async fn find_own_workspace(&self, job: &Job<'_>, deadline: Deadline) -> Result<Option<WorkspaceInfo>, ItemResult> {
        let directory_id = &job.request.profile.directory_id;
        let employee_id = &job.employee.employee_id;
        match name_held_by_other(&self.store, employee_id, directory_id, &job.request.username).await {
            Ok(None) => {}
            Ok(Some(holder)) => {
                return Err(ItemResult::Failed {
                    code: USER_NAME_TAKEN.into(),
                    message: format!(
                        "user name {} in directory {directory_id} belongs to employee {holder}: its WorkSpace is not adopted",
                        job.request.username
                    ),
                });
            }
            Err(e) => return Err(ItemResult::NoAnswer(e.to_string())),
        }
        // DescribeWorkspaces, then DescribeTags: both given up with the deadline near.
        let lookup = self.workspace_to_adopt(directory_id, &job.request.username);
        before_deadline(deadline, self.clock.as_ref(), SETTLE_BUDGET_MS, lookup).await.unwrap_or_else(|| {
            let why = "the lookup was not answered before the deadline".to_owned();
            Err(ItemResult::HandBack(why))
        })
    }

    /// The user's live WorkSpace in the directory, if it is one the pipeline may adopt.
    async fn workspace_to_adopt(
        &self,
        directory_id: &str,
        user_name: &str,
    ) -> Result<Option<WorkspaceInfo>, ItemResult> {
        let found = self.workspaces.find_user_workspace(directory_id, user_name).await.map_err(|e| unanswered(&e))?;
        // One being terminated (a rehire's old WorkSpace, still listed for a while) is no one's to
        // adopt: the request waits until it is gone (found by the model).
        let found = found.filter(|ws| !matches!(ws.state, WorkspaceState::Terminating | WorkspaceState::Terminated));
        let Some(ws) = found else { return Ok(None) };
        if self.config.adopt_unmanaged {
            return Ok(Some(ws));
        }
        // Ours if it carries the managed tag (one a crashed attempt made does).
        let tags = self.workspaces.tags(&ws.workspace_id).await.map_err(|e| unanswered(&e))?;
        if !tags.contains_key(MANAGED_TAG_KEY) {
            return Err(ItemResult::Failed {
                code: UNMANAGED.into(),
                message: format!(
                    "the user already has WorkSpace {} without the tag {MANAGED_TAG_KEY} (not made by the pipeline): not adopted; tag it, or set ADOPT_UNMANAGED=true",
                    ws.workspace_id
                ),
            });
        }
        Ok(Some(ws))
    }

    /// A WorkSpace a crashed attempt made for an employee who has left since: decided as created
    /// (the lifecycle attaches it and asks for its termination), if the user name is theirs.
    async fn hand_over_orphan(
        &self,
        request: &WorkspaceRequest,
        employee: EmployeeRecord,
        deadline: Deadline,
    ) -> Result<Orphan, String> {
        let employee_id = employee.employee_id.clone();
        let directory_id = &request.profile.directory_id;
        if let Some(holder) = name_held_by_other(&self.store, &employee_id, directory_id, &request.username)
            .await
            .map_err(|e| e.to_string())?
        {
            info!(%employee_id, %holder, "the user name is someone else's: no orphan of ours to look for");
            return Ok(Orphan::Checked);
        }
        let lookup = self.workspaces.find_user_workspace(directory_id, &request.username);
        let Some(ws) = before_deadline(deadline, self.clock.as_ref(), SETTLE_BUDGET_MS, lookup)
            .await
            .ok_or("the lookup was not answered before the deadline")?
            .map_err(|e| e.to_string())?
        else {
            let young = self.clock.now_ms() - request.requested_ms < ORPHAN_LISTING_WAIT_MS;
            return Ok(if young { Orphan::NotListedYet } else { Orphan::Checked });
        };
        let input = Input::Created {
            request_event_id: request.event_id.clone(),
            workspace_id: ws.workspace_id,
            state: ws.state,
        };
        let outbox = Outbox { requests: None, terminations: Some(&self.terminations) };
        let (_, decision) = settle(&self.store, &outbox, self.clock.as_ref(), &employee_id, Some(employee), &input)
            .await
            .map_err(|e| e.to_string())?;
        info!(%employee_id, verdict = ?decision.verdict, "orphan WorkSpace checked");
        Ok(Orphan::Checked)
    }
}

/// The CreateWorkspaces item a request becomes, with the managed tag (its value the employee).
pub fn create_item(request: &WorkspaceRequest) -> CreateItem {
    let decoupled = request.profile.user_decoupled;
    let mut profile = request.profile.clone();
    profile.tags.insert(MANAGED_TAG_KEY.to_owned(), request.employee_id.clone());
    CreateItem {
        directory_id: request.profile.directory_id.clone(),
        user_name: if decoupled { UNDEFINED_USER.to_owned() } else { request.username.clone() },
        workspace_name: decoupled.then(|| request.username.clone()),
        profile,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::messages::Redelivery;
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
            bundle_id: None,
            properties: None,
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

    #[tokio::test]
    async fn a_throttled_create_is_handed_back_without_an_attempt_and_looked_for_first() {
        // GIVEN a joiner's request, and a provisioner allowed one attempt
        let (store, requests) = joiners(1).await;
        let (provisioner, workspaces, own_queue) = provisioner(&store, 1);
        let record = |id: &str, body: &str| QueueRecord {
            message_id: id.into(),
            body: body.into(),
            receive_count: 1,
            group_id: None,
        };
        // WHEN CreateWorkspaces is throttled (after the SDK's own retries)
        workspaces.faults.fail_next("workspaces.create_workspaces", 1);
        let outcome = provisioner.handle_batch(&[record("m1", &requests[0].body)], BatchContext::default()).await;
        // THEN the request is handed back, saying a call went unanswered (the SDK's earlier
        // attempts may have timed out after the service took it)
        assert!(outcome.failed_message_ids.is_empty(), "{outcome:?}");
        let again = own_queue.take();
        let request: WorkspaceRequest = serde_json::from_str(&again[0].body).unwrap();
        assert_eq!(request.redelivery, Redelivery { deliveries: 1, handed_back: 1, call_unanswered: true });
        // AND its next delivery, still the first attempt, looks for one first, then creates it
        let outcome = provisioner.handle_batch(&[record("m2", &again[0].body)], BatchContext::default()).await;
        assert!(outcome.failed_message_ids.is_empty(), "{outcome:?}");
        assert_eq!(workspaces.count_for("d-9067a1b2c3", "user1"), 1);
        assert_eq!(workspaces.call_count("DescribeWorkspaces"), 1);
        let employee = store.employee("E1").await.unwrap().unwrap();
        assert!(employee.workspace_id.is_some() && employee.failure_code.is_none(), "{employee:?}");
    }

    type TestProvisioner = Provisioner<
        Arc<crate::testing::MemoryStore>,
        Arc<crate::testing::FakeWorkspaces>,
        Arc<crate::testing::MemoryQueue>,
    >;

    /// A provisioner on `store` allowed `max_attempts`, with its WorkSpaces and its own queue.
    fn provisioner(
        store: &Arc<crate::testing::MemoryStore>,
        max_attempts: u32,
    ) -> (TestProvisioner, Arc<crate::testing::FakeWorkspaces>, Arc<crate::testing::MemoryQueue>) {
        let clock = crate::ports::SystemClock;
        let workspaces = Arc::new(crate::testing::FakeWorkspaces::new(clock));
        let own_queue = Arc::new(crate::testing::MemoryQueue::default());
        let provisioner = Provisioner {
            store: store.clone(),
            workspaces: workspaces.clone(),
            requests: own_queue.clone(),
            terminations: Arc::new(crate::testing::MemoryQueue::default()),
            config: ProvisionerConfig { max_attempts, adopt_unmanaged: false },
            clock: Arc::new(clock),
        };
        (provisioner, workspaces, own_queue)
    }

    #[tokio::test]
    async fn a_leavers_request_whose_create_went_unanswered_looks_again_while_its_workspace_may_be_unlisted() {
        use crate::services::intake::{Intake, IntakeConfig, TEST_PROFILES};
        use crate::testing::{FakeDirectory, MemoryQueue};
        // GIVEN a joiner whose CreateWorkspaces went out unanswered, who has left since
        let (store, requests) = joiners(1).await;
        let intake = Intake {
            store: store.clone(),
            directory: FakeDirectory::default(),
            requests: Arc::new(MemoryQueue::default()),
            terminations: Arc::new(MemoryQueue::default()),
            profiles: crate::domain::profile::Profiles::from_json(TEST_PROFILES).unwrap(),
            config: IntakeConfig::for_tests(),
            clock: Arc::new(crate::ports::SystemClock),
        };
        let leave = serde_json::json!({ "schema_version": "1", "event_id": "l1", "type": "leave",
            "occurred_at": "2026-11-03T09:00:00Z", "employee": { "employee_id": "E1" } });
        let hr = QueueRecord { message_id: "hr-l".into(), body: leave.to_string(), receive_count: 1, group_id: None };
        intake.handle(&hr, Deadline::NONE).await;
        let mut request: WorkspaceRequest = serde_json::from_str(&requests[0].body).unwrap();
        request.redelivery = Redelivery { deliveries: 1, handed_back: 1, call_unanswered: true };
        let record = QueueRecord {
            message_id: "m1".into(),
            body: serde_json::to_string(&request).unwrap(),
            receive_count: 1,
            group_id: None,
        };
        let (provisioner, workspaces, own_queue) = provisioner(&store, 4);
        // WHEN its request comes back and no WorkSpace is listed for the user (yet)
        let outcome = provisioner.handle_batch(&[record], BatchContext::default()).await;
        // THEN it is looked for again later (handed back), not dropped, and nothing is created
        assert!(outcome.failed_message_ids.is_empty(), "{outcome:?}");
        assert_eq!(own_queue.take().len(), 1, "handed back to look again");
        assert_eq!(workspaces.call_count("DescribeWorkspaces"), 1);
        assert_eq!(workspaces.call_count("CreateWorkspaces"), 0);
    }

    /// `n` joiners through the intake: the store, and the WorkSpace requests it sent.
    async fn joiners(n: usize) -> (Arc<crate::testing::MemoryStore>, Vec<crate::ports::Outgoing>) {
        use crate::services::intake::{Intake, IntakeConfig, TEST_PROFILES};
        use crate::testing::{FakeDirectory, MemoryQueue, MemoryStore};
        let store = Arc::new(MemoryStore::default());
        let requests = Arc::new(MemoryQueue::default());
        let intake = Intake {
            store: store.clone(),
            directory: FakeDirectory::default(),
            requests: requests.clone(),
            terminations: Arc::new(MemoryQueue::default()),
            profiles: crate::domain::profile::Profiles::from_json(TEST_PROFILES).unwrap(),
            config: IntakeConfig::for_tests(),
            clock: Arc::new(crate::ports::SystemClock),
        };
        for n in 1..=n {
            let body = serde_json::json!({ "schema_version": "1", "event_id": format!("j{n}"), "type": "join",
                "occurred_at": "2026-11-02T09:00:00Z", "employee": { "employee_id": format!("E{n}"),
                "username": format!("user{n}"), "given_name": "G", "surname": "S", "email": format!("u{n}@example.com") } });
            let record =
                QueueRecord { message_id: format!("hr-{n}"), body: body.to_string(), receive_count: 1, group_id: None };
            intake.handle(&record, Deadline::NONE).await;
        }
        (store, requests.take())
    }

    #[tokio::test]
    async fn a_redelivered_batch_hands_back_the_requests_it_has_no_time_to_look_for() {
        // GIVEN three joiners whose WorkSpace requests come back (a crash after the call?)
        let clock = crate::ports::SystemClock;
        let (store, requests) = joiners(3).await;
        let redelivered: Vec<QueueRecord> = requests
            .iter()
            .enumerate()
            .map(|(n, sent)| QueueRecord {
                message_id: format!("req-{n}"),
                body: sent.body.clone(),
                receive_count: 2,
                group_id: None,
            })
            .collect();
        assert_eq!(redelivered.len(), 3);
        let (provisioner, workspaces, own_queue) = provisioner(&store, 4);
        // WHEN they arrive with too little time left to look for all three
        let deadline = Deadline::at(clock.now_ms() + CHUNK_BUDGET_MS - 1);
        let outcome = provisioner.handle_batch(&redelivered, BatchContext { deadline, fifo: false }).await;
        // THEN the first is looked for and created; the other two are handed back unlooked-for:
        // sent again after a delay, saying what came before (two deliveries, one of them handed
        // back, an earlier one perhaps made the WorkSpace), so the next delivery looks first and
        // spends the second attempt, not the third; the messages received are deleted
        assert!(outcome.failed_message_ids.is_empty(), "{outcome:?}");
        let again = own_queue.take();
        assert_eq!(again.len(), 2);
        for (n, sent) in again.iter().enumerate() {
            let request: WorkspaceRequest = serde_json::from_str(&sent.body).unwrap();
            assert_eq!(request.username, format!("user{}", n + 2));
            let before = Redelivery { deliveries: 2, handed_back: 1, call_unanswered: true };
            assert_eq!(request.redelivery, before);
            assert_eq!(sent.delay_seconds, Some(5));
            let next =
                QueueRecord { message_id: "m".into(), body: sent.body.clone(), receive_count: 1, group_id: None };
            let delivery = Delivery::of(&next, &request);
            assert_eq!((delivery.number, delivery.attempt, delivery.call_maybe_made), (3, 2, true));
        }
        assert_eq!(workspaces.call_count("CreateWorkspaces"), 1);
        assert_eq!(workspaces.count_for("d-9067a1b2c3", "user1"), 1);
        assert_eq!(workspaces.count_for("d-9067a1b2c3", "user2"), 0);
    }

    #[tokio::test]
    async fn a_request_handed_back_too_often_is_retried_as_a_failure_is() {
        use crate::services::{MAX_HAND_BACKS, QueueRecord};
        use crate::testing::MemoryQueue;
        // GIVEN a request handed back the most times it may be
        let event: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/provisioner/request.json")).unwrap();
        let mut request: WorkspaceRequest =
            serde_json::from_str(event["Records"][0]["body"].as_str().unwrap()).unwrap();
        request.redelivery =
            Redelivery { deliveries: MAX_HAND_BACKS + 1, handed_back: MAX_HAND_BACKS, call_unanswered: false };
        let record = QueueRecord {
            message_id: "m1".into(),
            body: serde_json::to_string(&request).unwrap(),
            receive_count: 1,
            group_id: None,
        };
        // WHEN it is handed back once more
        let mut outcome = BatchOutcome::default();
        outcome.hand_back(&record, &request, "deadline near", false);
        let queue = MemoryQueue::default();
        crate::services::send_hand_backs(&queue, &mut outcome).await;
        // THEN it is not sent again: its message is retried, spending receives towards its DLQ
        assert!(queue.is_empty());
        assert_eq!(outcome.failed_message_ids, vec!["m1"]);
        // AND a hand-back that cannot be sent is retried likewise
        let mut outcome = BatchOutcome::default();
        request.redelivery = Redelivery::default();
        outcome.hand_back(&record, &request, "deadline near", false);
        let refusing = MemoryQueue::default();
        refusing.faults.fail_next("queue.send", 1);
        crate::services::send_hand_backs(&refusing, &mut outcome).await;
        assert_eq!(outcome.failed_message_ids, vec!["m1"]);
        assert!(refusing.is_empty());
    }
}
