//! The reconciler: on a schedule, confirms what WorkSpaces only reports when asked, and releases
//! future-dated events that have come due.
//!
//! - Employees whose WorkSpace is PENDING or TERMINATING are found through the sparse index once
//!   their WorkSpace is likely done (created, or gone: [`ReconcilerConfig::create_first_look_ms`]);
//!   their WorkSpaces are described 25 ids per call, oldest first, a partial call held for the
//!   next run while full ones are made (ceil(M/25) calls for M), and the outcome is
//!   recorded with a conditional write after a consistent read: AVAILABLE → active, ERROR →
//!   failed, id gone after termination was asked → terminated (then a pending rehire is sent).
//! - Employees in a state past its deadline are flagged as stuck: a log line, a metric, and
//!   `stuck_since_ms` on the record.
//! - Held events whose `effective_at` has come are posted to the HR events queue again.
//! - Leavers whose grace period is over (access revoked, the WorkSpace kept) are found through
//!   the same index, by the time their grace ends, and their termination is requested.
//! - Movers (state `moving`, found through the same index, by when their next step is due) get
//!   their WorkSpace described (and its tags read), and one call toward their profile each run
//!   (`mover::next_step` plans it): ModifyWorkspaceProperties, MigrateWorkspace, tags.
//! - At 2 DescribeWorkspaces calls/s a run covers about 50 WorkSpaces a second: a large backlog
//!   takes several runs, each writing as it goes and stopping before its deadline.

use super::{Outbox, StepError, settle};
use crate::domain::employee::{EmployeeRecord, EmployeeState};
use crate::domain::lifecycle::{self, CallFailure, Input, MoveCall, MoveSight, Seen, SeenWorkspace, Step};
use crate::domain::time::Timestamp;
use crate::domain::workspace::{Cooldowns, MAX_PER_CALL, WorkspaceState};
use crate::ports::{
    Clock, DueCursor, MessageQueue, PortError, StateStore, WorkspaceInfo, WorkspacesApi, WorkspacesError,
};
use std::collections::HashMap;
use std::sync::Arc;
use tracing::{info, warn};

/// Held events read per page: the most event bodies a run holds at once, however many are due.
pub const DUE_PAGE: usize = 100;
/// Held events released per run at most (about 100 SendMessageBatch and 1,000 DeleteItem calls):
/// a flood of events dated for one day goes over a few runs, and each run still confirms
/// WorkSpaces and advances movers. The oldest of each index shard go first.
pub const RELEASES_PER_RUN: usize = 1_000;
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
    /// More held events were due than one run releases ([`RELEASES_PER_RUN`]): the next run goes on.
    pub releases_left: bool,
    /// Grace periods found over: terminations requested.
    pub grace_over: usize,
    /// Left for the next run because this one's time budget was spent.
    pub deferred: usize,
    /// Due a look, but fewer than a call's worth after this run's full calls: held for the next
    /// run, whose first call they fill (held at most until they have waited another first-look
    /// time), so a flood costs ceil(M/25) calls, not one more a run.
    pub held_for_a_full_call: usize,
    /// Movers looked at, WorkSpaces calls made for them, moves that reached their profile.
    pub moves_checked: usize,
    pub move_calls: usize,
    pub moves_done: usize,
    /// Moves stopped short of their profile (the reason is on the record).
    pub moves_stopped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Step(#[from] StepError),
    #[error(transparent)]
    Workspaces(#[from] WorkspacesError),
}

impl From<crate::ports::StoreError> for ReconcileError {
    fn from(e: crate::ports::StoreError) -> Self {
        ReconcileError::Step(e.into())
    }
}

impl PortError for ReconcileError {
    fn is_retryable(&self) -> bool {
        match self {
            ReconcileError::Step(e) => e.is_retryable(),
            ReconcileError::Workspaces(e) => e.is_retryable(),
        }
    }
    /// The Lambda `errorType` of a failed run: what failed, readable in metrics and alarms.
    fn error_type(&self) -> String {
        match self {
            ReconcileError::Step(e) => e.error_type(),
            ReconcileError::Workspaces(e) => e.error_type(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// PENDING longer than this is stuck (creation takes ~20 min, up to an hour encrypted).
    pub create_deadline_ms: i64,
    /// TERMINATING longer than this is stuck.
    pub terminate_deadline_ms: i64,
    /// A WorkSpace is first described this long after its create was answered (creation takes
    /// about 20 minutes): describing earlier spends the API's rate on WorkSpaces still PENDING.
    pub create_first_look_ms: i64,
    /// A terminated WorkSpace is first looked for this long after its termination was answered.
    pub terminate_first_look_ms: i64,
    /// The service's cooldowns movers are planned with (the documented ones in AWS).
    pub cooldowns: Cooldowns,
}

pub struct Reconciler<S, W, Q> {
    pub store: S,
    pub workspaces: W,
    /// Where a rehire's WorkSpace request goes once the old WorkSpace is gone.
    pub requests: Q,
    /// Where due events are posted again (the HR events queue).
    pub hr_events: Q,
    /// Where a leaver's termination goes once the grace period is over.
    pub terminations: Q,
    pub config: ReconcilerConfig,
    pub clock: Arc<dyn Clock>,
}

impl<S: StateStore, W: WorkspacesApi, Q: MessageQueue> Reconciler<S, W, Q> {
    /// One pass. Decisions are written chunk by chunk, so a run that stops early (its budget
    /// spent, or killed at the Lambda timeout) keeps what it confirmed; `stop_at_ms` is when to
    /// stop starting new DescribeWorkspaces calls, and what is left waits for the next run.
    pub async fn run(&self, stop_at_ms: Option<i64>) -> Result<ReconcileReport, ReconcileError> {
        let mut report = ReconcileReport::default();
        let now = self.clock.now_ms();
        self.release_due(now, &mut report).await?;
        self.end_grace(now, &mut report).await?;
        // Confirmations first: one DescribeWorkspaces per 25, and a leaver's termination or a
        // joiner's WorkSpace must not wait behind movers, whose steps each read tags (found by
        // the chaos run: 27 movers spent a run's budget and 69 terminations waited unconfirmed).
        self.confirm_watched(now, stop_at_ms, &mut report).await?;
        self.advance_moves(now, stop_at_ms, &mut report).await?;
        emit_stuck_metric(&report);
        Ok(report)
    }

    /// Employees `pending` or `terminating` whose WorkSpace is likely done: described 25 ids per
    /// call, oldest first, each decided as seen. While this run makes full calls, the last
    /// partial one waits for the next run, where its WorkSpaces are the oldest and go first.
    async fn confirm_watched(
        &self,
        now: i64,
        stop_at_ms: Option<i64>,
        report: &mut ReconcileReport,
    ) -> Result<(), ReconcileError> {
        let mut ids = self.store.watched(EmployeeState::Pending, now - self.config.create_first_look_ms).await?;
        ids.extend(self.store.watched(EmployeeState::Terminating, now - self.config.terminate_first_look_ms).await?);
        // An eventually consistent index can list one employee under both states.
        let mut listed = std::collections::HashSet::new();
        ids.retain(|id| listed.insert(id.clone()));
        let mut due: Vec<EmployeeRecord> = Vec::new();
        for page in ids.chunks(READ_PAGE) {
            // The index is eventually consistent: decide on strongly consistent reads.
            let read = self.store.employees(page).await?;
            due.extend(read.into_iter().filter(|e| {
                matches!(e.state, EmployeeState::Pending | EmployeeState::Terminating) && e.workspace_id.is_some()
            }));
        }
        due.sort_by_key(|e| e.state_since_ms);
        // Held no longer than one more first-look time: WorkSpaces that stay PENDING are
        // described at every run, and would otherwise keep the newest out of every full call.
        let first_look = |e: &EmployeeRecord| match e.state {
            EmployeeState::Pending => self.config.create_first_look_ms,
            _ => self.config.terminate_first_look_ms,
        };
        let rest = due.get(due.len() - due.len() % MAX_PER_CALL..).unwrap_or_default();
        let rest_waited = rest.iter().any(|e| now - e.state_since_ms >= 2 * first_look(e));
        let chunks = plan_looks(due.len(), rest_waited);
        report.held_for_a_full_call = due.len() - chunks.iter().sum::<usize>();
        let mut due = due.into_iter();
        for (n, size) in chunks.iter().enumerate() {
            if stop_at_ms.is_some_and(|stop| self.clock.now_ms() >= stop) {
                report.deferred = chunks[n..].iter().sum();
                warn!(
                    deferred = report.deferred,
                    checked = report.checked,
                    "run budget spent; the rest waits for the next run"
                );
                return Ok(());
            }
            match self.describe_and_decide(due.by_ref().take(*size).collect(), report).await {
                // The API's rate is taken by the other callers (a flood of creates): the rest
                // waits for the next run, as with a spent budget, instead of failing this one.
                Err(e) if throttled(&e) => {
                    report.deferred = chunks[n..].iter().sum();
                    warn!(deferred = report.deferred, checked = report.checked, error = %e, "DescribeWorkspaces throttled past its retries; the rest waits for the next run");
                    return Ok(());
                }
                result => result?,
            }
        }
        Ok(())
    }

    /// One DescribeWorkspaces call (up to 25 ids): the WorkSpaces listed, by id.
    async fn describe(
        &self,
        ids: &[String],
        report: &mut ReconcileReport,
    ) -> Result<HashMap<String, WorkspaceInfo>, ReconcileError> {
        report.describe_calls += 1;
        let listed = self.workspaces.describe_workspaces(ids).await?;
        Ok(listed.into_iter().map(|ws| (ws.workspace_id.clone(), ws)).collect())
    }

    async fn describe_and_decide(
        &self,
        employees: Vec<EmployeeRecord>,
        report: &mut ReconcileReport,
    ) -> Result<(), ReconcileError> {
        let ws_ids: Vec<String> = employees.iter().filter_map(|e| e.workspace_id.clone()).collect();
        report.checked += employees.len();
        let seen = self.describe(&ws_ids, report).await?;
        for employee in employees {
            let ws = employee.workspace_id.as_ref().and_then(|id| seen.get(id));
            // Decided now, not when the run began: a confirmation never predates what it confirms.
            self.decide(employee, ws, report).await?;
        }
        Ok(())
    }

    async fn decide(
        &self,
        employee: EmployeeRecord,
        ws: Option<&WorkspaceInfo>,
        report: &mut ReconcileReport,
    ) -> Result<(), ReconcileError> {
        let (Some(workspace_id), state) = (employee.workspace_id.clone(), employee.state) else { return Ok(()) };
        let seen = match ws {
            None => Seen::Gone,
            Some(w) if w.state == WorkspaceState::Error => {
                Seen::Error { code: w.error_code.clone(), message: w.error_message.clone() }
            }
            Some(w) => Seen::State(w.state.clone()),
        };
        let stuck_after_ms = match state {
            EmployeeState::Pending => self.config.create_deadline_ms,
            _ => self.config.terminate_deadline_ms,
        };
        let input = Input::Observed { workspace_id: workspace_id.clone(), seen, stuck_after_ms };
        // Terminations too: a leaver's WorkSpace gone while a migration of it was under way has
        // the migration's WorkSpace terminated next.
        let outbox = Outbox { requests: Some(&self.requests), terminations: Some(&self.terminations) };
        let employee_id = employee.employee_id.clone();
        // Decided when seen, not when the run began: a confirmation never predates what it confirms.
        let (read, decision) =
            settle(&self.store, &outbox, self.clock.as_ref(), &employee_id, Some(employee), &input).await?;
        let before = read.as_ref().map(|e| e.state);
        match (before, decision.saved().map(|e| (e.state, e.stuck_since_ms.is_some()))) {
            (Some(EmployeeState::Pending), Some((EmployeeState::Active, _))) => report.became_active += 1,
            (Some(EmployeeState::Pending), Some((EmployeeState::Failed, _))) => report.failed += 1,
            (Some(EmployeeState::Terminating), Some((EmployeeState::Terminated, _))) => report.terminated += 1,
            (Some(EmployeeState::Terminating), Some((EmployeeState::Requested, _))) => {
                report.terminated += 1;
                report.rehires_requested += 1;
            }
            (Some(s), saved) if s.needs_watching() && saved.is_none_or(|(after, _)| after == s) => {
                report.still_waiting += 1;
                let flagged = saved.is_some_and(|(_, stuck)| stuck);
                if flagged || decision.verdict == lifecycle::Verdict::Note(lifecycle::STILL_STUCK.into()) {
                    match s {
                        EmployeeState::Pending => report.stuck_pending += 1,
                        _ => report.stuck_terminating += 1,
                    }
                    warn!(%employee_id, state = s.as_str(), %workspace_id, workspace_state = ?ws.map(|w| w.state.to_string()), "stuck past its deadline");
                }
            }
            _ => {}
        }
        info!(%employee_id, %workspace_id, verdict = ?decision.verdict, "observed");
        Ok(())
    }

    /// Requests the termination of leavers whose grace period is over (no WorkSpaces call: the
    /// terminator terminates them).
    async fn end_grace(&self, now: i64, report: &mut ReconcileReport) -> Result<(), ReconcileError> {
        let ids = self.store.watched(EmployeeState::Revoked, now).await?;
        let outbox = Outbox { requests: None, terminations: Some(&self.terminations) };
        for page in ids.chunks(READ_PAGE) {
            for employee in self.store.employees(page).await? {
                let Some(leave_event_id) = employee.leave_event_id.clone() else { continue };
                let employee_id = employee.employee_id.clone();
                let input = Input::GraceOver { leave_event_id };
                let (_, decision) =
                    settle(&self.store, &outbox, self.clock.as_ref(), &employee_id, Some(employee), &input).await?;
                if decision.steps.iter().any(|s| matches!(s, Step::RequestTermination(_))) {
                    report.grace_over += 1;
                }
                info!(%employee_id, verdict = ?decision.verdict, "grace period checked");
            }
        }
        Ok(())
    }

    /// One step for each mover whose next step is due: their WorkSpaces described (25 ids per
    /// call, a migration's new one with the old), their tags read, then the call the lifecycle
    /// plans, and its answer written.
    async fn advance_moves(
        &self,
        now: i64,
        stop_at_ms: Option<i64>,
        report: &mut ReconcileReport,
    ) -> Result<(), ReconcileError> {
        let ids = self.store.watched(EmployeeState::Moving, now).await?;
        for page in ids.chunks(READ_PAGE) {
            let movers: Vec<EmployeeRecord> = self
                .store
                .employees(page)
                .await?
                .into_iter()
                .filter(|e| e.state == EmployeeState::Moving && e.moving.is_some() && e.workspace_id.is_some())
                .collect();
            // At most two ids each (the WorkSpace, a migration's or relocation's other one): 12
            // movers per call.
            for chunk in movers.chunks(MAX_PER_CALL / 2) {
                if stop_at_ms.is_some_and(|stop| self.clock.now_ms() >= stop) {
                    report.deferred += chunk.len();
                    return Ok(());
                }
                let ws_ids: Vec<String> = chunk
                    .iter()
                    .flat_map(|e| {
                        let other = e.moving.as_ref().and_then(|m| m.other_workspace()).map(str::to_owned);
                        [e.workspace_id.clone(), other]
                    })
                    .flatten()
                    .collect();
                let seen = match self.describe(&ws_ids, report).await {
                    Err(e) if throttled(&e) => {
                        report.deferred += chunk.len();
                        warn!(error = %e, "DescribeWorkspaces throttled past its retries; movers wait for the next run");
                        return Ok(());
                    }
                    seen => seen?,
                };
                for employee in chunk {
                    report.moves_checked += 1;
                    self.move_one(employee.clone(), &seen, report).await?;
                }
            }
        }
        Ok(())
    }

    async fn move_one(
        &self,
        employee: EmployeeRecord,
        seen: &HashMap<String, WorkspaceInfo>,
        report: &mut ReconcileReport,
    ) -> Result<(), ReconcileError> {
        let employee_id = employee.employee_id.clone();
        let Some(work) = employee.moving.clone() else { return Ok(()) };
        let (mut sight, tagged) = match self.move_sight(&employee, seen).await {
            Ok(sight) => sight,
            // Throttled or refused: this mover waits for the next run; the others go on.
            Err(e) => {
                warn!(%employee_id, error = %e, "mover's WorkSpace not read; asked again at the next run");
                return Ok(());
            }
        };
        let observed = |sight: &MoveSight| Input::MoveObserved {
            event_id: work.event_id.clone(),
            sight: Box::new(sight.clone()),
            stuck_after_ms: self.config.create_deadline_ms,
            cooldowns: self.config.cooldowns,
        };
        let mut input = observed(&sight);
        let mut decision = lifecycle::decide(Some(&employee), &input, self.clock.now_ms());
        // Decided without the tags first: most runs of a move need none.
        if let Some(workspace_id) = tagged
            && lifecycle::needs_tags(&decision)
        {
            match self.workspaces.tags(&workspace_id).await {
                Ok(tags) => sight.tags = Some(tags),
                Err(e) => {
                    warn!(%employee_id, error = %e, "mover's tags not read; asked again at the next run");
                    return Ok(());
                }
            }
            input = observed(&sight);
            decision = lifecycle::decide(Some(&employee), &input, self.clock.now_ms());
        }
        let outbox = Outbox { requests: Some(&self.requests), terminations: Some(&self.terminations) };
        let call = decision.steps.iter().find_map(|s| match s {
            Step::Move(call) => Some(call.clone()),
            _ => None,
        });
        let Some(call) = call else {
            // A wait or the end: written (deciding again if the record changed meanwhile).
            let (_, decision) =
                settle(&self.store, &outbox, self.clock.as_ref(), &employee_id, Some(employee), &input).await?;
            count_move_end(&decision, report);
            info!(%employee_id, move_event_id = %work.event_id, verdict = ?decision.verdict, "mover checked");
            return Ok(());
        };
        report.move_calls += 1;
        let result = self.call(&call).await;
        if let Err(failure) = &result {
            warn!(%employee_id, move_event_id = %work.event_id, code = %failure.code, message = %failure.message, "move call refused");
        }
        let answered = Input::MoveCalled { event_id: work.event_id.clone(), call, result };
        let (_, decision) =
            settle(&self.store, &outbox, self.clock.as_ref(), &employee_id, Some(employee), &answered).await?;
        count_move_end(&decision, report);
        info!(%employee_id, move_event_id = %work.event_id, verdict = ?decision.verdict, "move call made");
        Ok(())
    }

    /// What the lifecycle needs to plan a mover's next step: the WorkSpace (and a migration's
    /// new one) as described, and, if it is not listed, the user's other WorkSpace; with the
    /// WorkSpace whose tags the plan may need (read only if it does: `lifecycle::needs_tags`).
    async fn move_sight(
        &self,
        employee: &EmployeeRecord,
        seen: &HashMap<String, WorkspaceInfo>,
    ) -> Result<(MoveSight, Option<String>), WorkspacesError> {
        let workspace = employee.workspace_id.as_ref().and_then(|id| seen.get(id)).map(seen_workspace);
        // A migration's new WorkSpace, or a relocation's new or dropped one: what the lifecycle
        // waits on first (no tags needed until it is done).
        let other = employee.moving.as_ref().and_then(|m| m.other_workspace());
        let target = other.and_then(|id| seen.get(id)).map(seen_workspace);
        let mut sight = MoveSight { workspace, target, tags: None, found: None };
        let relocating = employee.moving.as_ref().is_some_and(|m| m.relocation.is_some());
        if other.is_some() || relocating {
            return Ok((sight, None));
        }
        match &sight.workspace {
            Some(ws) if !matches!(ws.state, WorkspaceState::Terminating | WorkspaceState::Terminated) => {
                let tagged = Some(ws.workspace_id.clone());
                return Ok((sight, tagged));
            }
            // Going, or gone, while the employee stays: replaced by a migration whose answer was
            // lost, most likely: the user's other WorkSpace is looked for.
            _ => {
                let (Some(profile), Some(user)) = (&employee.profile, &employee.username) else {
                    return Ok((sight, None));
                };
                sight.found = self
                    .workspaces
                    .find_user_workspace(&profile.directory_id, user)
                    .await?
                    .filter(|ws| Some(&ws.workspace_id) != employee.workspace_id.as_ref())
                    .filter(|ws| !matches!(ws.state, WorkspaceState::Terminating | WorkspaceState::Terminated))
                    .as_ref()
                    .map(seen_workspace);
            }
        }
        Ok((sight, None))
    }

    /// Makes one move call; a migration answers with its new WorkSpace id.
    async fn call(&self, call: &MoveCall) -> Result<Option<String>, CallFailure> {
        let result = match call {
            MoveCall::Modify { workspace_id, change, .. } => {
                self.workspaces.modify_properties(workspace_id, change).await.map(|()| None)
            }
            MoveCall::Migrate { workspace_id, bundle_id } => {
                self.workspaces.migrate(workspace_id, bundle_id).await.map(Some)
            }
            MoveCall::Tag { workspace_id, add, remove } => {
                let removed =
                    if remove.is_empty() { Ok(()) } else { self.workspaces.delete_tags(workspace_id, remove).await };
                match removed {
                    Ok(()) if !add.is_empty() => self.workspaces.create_tags(workspace_id, add).await.map(|()| None),
                    other => other.map(|()| None),
                }
            }
        };
        result.map_err(|e| CallFailure {
            code: e.code().to_owned(),
            message: e.to_string(),
            // Busy with another change: asked again at the next run (WORKSPACES-FACTS §1).
            retryable: e.is_retryable() || e.code() == OPERATION_IN_PROGRESS,
        })
    }

    /// Posts held events that are due; the intake then applies them. A page at a time, each
    /// page's events posted together before any is removed: a crash between posting and
    /// removing posts again, which the intake sees as a duplicate. At most [`RELEASES_PER_RUN`]
    /// per run, so a flood of due events leaves the run time for its other work.
    async fn release_due(&self, now: i64, report: &mut ReconcileReport) -> Result<(), ReconcileError> {
        let mut from = Some(DueCursor::default());
        while let Some(cursor) = from.take() {
            if report.released >= RELEASES_PER_RUN {
                report.releases_left = true;
                break;
            }
            let page = self.store.due(now, &cursor, DUE_PAGE.min(RELEASES_PER_RUN - report.released)).await?;
            let (mut posts, mut removals) = (Vec::new(), Vec::new());
            for event in &page.events {
                for step in lifecycle::decide(None, &Input::Due(event.clone()), now).steps {
                    match step {
                        Step::Post(event) => posts.push(super::due_message(&event)),
                        Step::Unschedule { employee_id, event_id } => removals.push((employee_id, event_id)),
                        _ => return Err(StepError::NotHere("a release takes only Post and Unschedule").into()),
                    }
                }
            }
            self.hr_events.send(&posts).await.map_err(StepError::from)?;
            for (employee_id, event_id) in &removals {
                self.store.unschedule(employee_id, event_id).await?;
            }
            for event in &page.events {
                info!(employee_id = %event.employee_id, event_id = %event.event_id, effective = %Timestamp::from_millis(event.effective_ms), "due event released");
            }
            report.released += page.events.len();
            from = page.next;
        }
        Ok(())
    }
}

/// A DescribeWorkspaces still throttled after the SDK's retries (the call was not made).
fn throttled(e: &ReconcileError) -> bool {
    matches!(e, ReconcileError::Workspaces(WorkspacesError::Throttled(_)))
}

/// The DescribeWorkspaces calls for `due` WorkSpaces, oldest first: full calls of 25, and the
/// rest in one more call when there is no full one or the rest has waited long enough (a run
/// that makes full calls is part of a flood, and the next run's oldest fill its first call).
fn plan_looks(due: usize, rest_waited: bool) -> Vec<usize> {
    let mut calls = vec![MAX_PER_CALL; due / MAX_PER_CALL];
    let rest = due % MAX_PER_CALL;
    if rest > 0 && (calls.is_empty() || rest_waited) {
        calls.push(rest);
    }
    calls
}

/// A move that ended in this decision: reached its profile, or stopped (the reason on the record).
fn count_move_end(decision: &lifecycle::Decision, report: &mut ReconcileReport) {
    if let Some(saved) = decision.saved().filter(|s| s.state != EmployeeState::Moving) {
        if saved.move_note.is_some() || saved.state == EmployeeState::Failed {
            report.moves_stopped += 1;
        } else {
            report.moves_done += 1;
        }
    }
}

/// The WorkSpace is busy with another change (FACTS §1): not a refusal of this one.
const OPERATION_IN_PROGRESS: &str = "OperationInProgressException";

fn seen_workspace(ws: &WorkspaceInfo) -> SeenWorkspace {
    SeenWorkspace {
        workspace_id: ws.workspace_id.clone(),
        directory_id: ws.directory_id.clone(),
        state: ws.state.clone(),
        bundle_id: ws.bundle_id.clone(),
        properties: ws.properties.clone().unwrap_or_default(),
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
    use crate::testing::{FakeWorkspaces, MemoryStore, reconciler};
    use std::time::Duration;

    fn employee(i: usize, state: EmployeeState) -> EmployeeRecord {
        let mut e = EmployeeRecord::new(&format!("E{i:05}"), 0);
        e.state = state;
        e.version = 1;
        e.workspace_id = Some(format!("ws-{i:09}"));
        e
    }

    #[test]
    fn a_failed_run_names_what_failed_as_its_error_type() {
        use crate::ports::{QueueError, StoreError};
        let store = ReconcileError::from(StoreError::Unavailable { operation: "Query", message: "timed out".into() });
        assert_eq!(store.error_type(), "Store.Unavailable");
        let service = ReconcileError::from(WorkspacesError::Service {
            operation: "DescribeWorkspaces",
            code: "InvalidParameterValuesException".into(),
            message: "bad id".into(),
            retryable: false,
        });
        assert_eq!(service.error_type(), "WorkSpaces.InvalidParameterValuesException");
        let queue = ReconcileError::from(StepError::from(QueueError { queue: "q".into(), message: "down".into() }));
        assert_eq!(queue.error_type(), "Queue.SendFailed");
    }

    #[tokio::test]
    async fn a_flood_of_due_events_is_released_a_page_at_a_time_over_runs_each_once() {
        // GIVEN 2,500 events held and due (a reorganisation dated for one day)
        let store = MemoryStore::default();
        for i in 0..2_500 {
            let event = crate::ports::ScheduledEvent {
                employee_id: format!("E{i:05}"),
                event_id: format!("ev-{i}"),
                kind: "leave".into(),
                occurred_ms: 0,
                effective_ms: 1_000 + i64::from(i % 7),
                body: format!("{{\"event_id\":\"ev-{i}\"}}"),
            };
            store.schedule(&event).await.unwrap();
        }
        let r = reconciler(store, FakeWorkspaces::all("AVAILABLE"));
        // WHEN the reconciler runs three times
        let runs = [r.run(None).await.unwrap(), r.run(None).await.unwrap(), r.run(None).await.unwrap()];
        // THEN each run releases at most its share and says when more are left, and every event
        // is posted exactly once, in pages (SendMessageBatch takes 10: one send per page)
        let released: Vec<(usize, bool)> = runs.iter().map(|run| (run.released, run.releases_left)).collect();
        assert_eq!(released, [(RELEASES_PER_RUN, true), (RELEASES_PER_RUN, true), (500, false)]);
        let posted = r.hr_events.take();
        let ids: std::collections::BTreeSet<&str> =
            posted.iter().filter_map(|m| m.deduplication_id.as_deref()).collect();
        assert_eq!((posted.len(), ids.len()), (2_500, 2_500), "every event once");
        let mut left = 0;
        for id in (0..2_500).map(|i| format!("E{i:05}")) {
            left += r.store.scheduled_for(&id).await.unwrap().len();
        }
        assert_eq!(left, 0, "none held");
    }

    #[tokio::test]
    async fn a_due_leave_is_released_in_the_first_run_however_many_are_due_before_it_in_another_shard() {
        use crate::adapters::dynamo::{WORK_SHARDS, shard_of};
        let in_shard = |shard: u32| (0..).map(|i| format!("E{i:05}")).filter(move |id| shard_of(id) == shard);
        let held = |employee_id: String, event_id: String, effective_ms: i64| crate::ports::ScheduledEvent {
            body: format!("{{\"event_id\":\"{event_id}\"}}"),
            employee_id,
            event_id,
            kind: "leave".into(),
            occurred_ms: 0,
            effective_ms,
        };
        // GIVEN 1,500 events due since t=1,000 in the first shard (more than a run releases), and
        // a leave due since t=5,000 in the last
        let store = MemoryStore::default();
        for (i, id) in in_shard(0).take(1_500).enumerate() {
            store.schedule(&held(id, format!("ev-{i}"), 1_000)).await.unwrap();
        }
        let leaver = in_shard(WORK_SHARDS - 1).next().unwrap();
        store.schedule(&held(leaver, "the-leave".into(), 5_000)).await.unwrap();
        let r = reconciler(store, FakeWorkspaces::all("AVAILABLE"));
        // WHEN the reconciler runs once
        let report = r.run(None).await.unwrap();
        // THEN it released its share, and the leave among them: shards take turns
        assert_eq!((report.released, report.releases_left), (RELEASES_PER_RUN, true));
        let posted = r.hr_events.take();
        assert!(posted.iter().any(|m| m.deduplication_id.as_deref() == Some("release-the-leave")), "the leave waited");
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
    async fn workspaces_are_described_once_likely_done_and_a_flood_in_full_calls() {
        // GIVEN 60 WorkSpaces requested a minute ago and 10 just now; creation takes about 40 s
        let now = Timestamp::now().millis();
        let records = (0..70).map(|i| {
            let mut e = employee(i, EmployeeState::Pending);
            e.state_since_ms = if i < 60 { now - 60_000 + i as i64 } else { now };
            e
        });
        let mut r = reconciler(MemoryStore::with(records), FakeWorkspaces::all("AVAILABLE"));
        r.config.create_first_look_ms = 40_000;
        r.config.create_deadline_ms = 3_600_000;
        // WHEN the reconciler runs
        let report = r.run(None).await.unwrap();
        // THEN the 60 are described in two full calls, oldest first; the other 10 of them wait
        // for the next run's first call, and the 10 just requested are not described at all
        assert_eq!(r.workspaces.calls().iter().map(Vec::len).collect::<Vec<_>>(), [25, 25]);
        assert_eq!((report.checked, report.held_for_a_full_call, report.became_active), (50, 10, 50));
        let first: Vec<String> = (0..25).map(|i| format!("ws-{i:09}")).collect();
        assert_eq!(r.workspaces.calls()[0], first, "oldest first");
        // WHEN it runs again with nothing more due, THEN the 10 go in one call
        let report = r.run(None).await.unwrap();
        assert_eq!((report.checked, report.held_for_a_full_call, r.workspaces.calls().len()), (10, 0, 3));
        assert_eq!(r.store.count(EmployeeState::Active), 60);
        assert_eq!(r.store.count(EmployeeState::Pending), 10, "not yet likely done");
    }

    #[tokio::test]
    async fn workspaces_that_stay_pending_never_keep_newer_ones_from_being_described() {
        // GIVEN 30 WorkSpaces PENDING for an hour (described at every run, oldest first) and 10
        // that became due a first-look time ago
        let now = Timestamp::now().millis();
        let records = (0..40).map(|i| {
            let mut e = employee(i, EmployeeState::Pending);
            e.state_since_ms = if i < 30 { now - 3_600_000 } else { now - 40_000 };
            e
        });
        let mut r = reconciler(MemoryStore::with(records), FakeWorkspaces::all("PENDING"));
        r.config.create_first_look_ms = 20_000;
        r.config.create_deadline_ms = 7_200_000;
        // WHEN the reconciler runs, THEN all 40 are described: the rest has waited long enough
        let report = r.run(None).await.unwrap();
        assert_eq!(r.workspaces.calls().iter().map(Vec::len).collect::<Vec<_>>(), [25, 15]);
        assert_eq!((report.checked, report.held_for_a_full_call), (40, 0));
    }

    #[test]
    fn looks_are_full_calls_and_a_partial_one_only_alone_or_once_waited() {
        assert_eq!(plan_looks(0, false), Vec::<usize>::new());
        assert_eq!(plan_looks(7, false), [7]);
        assert_eq!(plan_looks(50, false), [25, 25]);
        assert_eq!(plan_looks(60, false), [25, 25]);
        assert_eq!(plan_looks(60, true), [25, 25, 10]);
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
    async fn a_describe_throttled_past_its_retries_defers_the_rest_instead_of_failing_the_run() {
        // GIVEN 60 pending, and the API throttling the first DescribeWorkspaces past its retries
        let faults = crate::testing::Faults::new();
        let r = reconciler(
            MemoryStore::with((0..60).map(|i| employee(i, EmployeeState::Pending))),
            FakeWorkspaces::all("AVAILABLE").with_faults(faults.clone()),
        );
        faults.fail_next("workspaces.describe_workspaces", 1);
        // WHEN the reconciler runs, THEN the run succeeds and leaves all 60 for the next run,
        // which confirms them
        let report = r.run(None).await.unwrap();
        assert_eq!((report.became_active, report.deferred), (0, 60));
        let next = r.run(None).await.unwrap();
        assert_eq!((next.became_active, r.store.count(EmployeeState::Active)), (60, 60));
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
