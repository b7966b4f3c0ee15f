//! Movers: a `move` event changes the profile an employee's WorkSpace should have; the reconciler
//! then changes the WorkSpace one call at a time ([`crate::domain::mover::next_step`] plans each)
//! until it matches, and the employee is active again.
//!
//! | state | stimulus | next | steps |
//! |---|---|---|---|
//! | active, moving | move | moving (the reconciler looks at the next run) | save |
//! | requested, pending, restoring | move | same, the move kept: moving once AVAILABLE | save (, request WorkSpace again if requested) |
//! | leaving, terminating, revoked with a rehire pending | move | same, the rehire's profile changed | save |
//! | leaving, revoked, terminating, terminated, failed, none | move | rejected, with the reason | |
//! | active, moving (nothing migrating) | move to another directory | moving, relocating | ensure the user there, save + name there, request a WorkSpace there |
//! | pending, requested, restoring, migrating | move to another directory | rejected (`move-directory`): once AVAILABLE | |
//! | relocating | move to the same new directory | the new WorkSpace's profile changed | save |
//! | relocating | move to a third directory | rejected (`move-directory`): one at a time | |
//! | relocating | its WorkSpace created | moving, the new id noted (the record keeps the old one) | save |
//! | relocating | its creation failed for good | active on the old WorkSpace, the move stopped with the reason | save |
//! | relocating | the new WorkSpace AVAILABLE | moving on the new one (its profile), the old one dropped | save, request termination (keyed by the move) |
//! | relocating | the new WorkSpace in ERROR | moving on the old one, the new one dropped | save, request termination |
//! | relocating, dropping one | termination accepted | waiting for it to be gone | save |
//! | relocating, dropping one | gone | the relocation over (the move goes on; active if the new one was dropped) | save |
//! | relocating, dropping one | termination refused (protected, unmanaged) | kept, the reason in `move_note` | save |
//! | any | move older than the last move, or than the last join or leave | skipped (stale) | |
//! | moving | WorkSpace seen, a step planned | moving | one WorkSpaces call, then save what it changed |
//! | moving | WorkSpace matches the profile | active | save |
//! | moving | cooldown, or a state that takes no change | moving, waiting (until the cooldown ends) | save when what it waits on changes |
//! | moving | migration's new WorkSpace AVAILABLE | moving, re-keyed to the new id | save |
//! | moving | migration failed (the service keeps the original) | active, the move stopped with the reason | save |
//! | moving | a call refused for good, or the profile unreachable | active, the move stopped with the reason | save |
//! | moving | the WorkSpace gone, the user's other WorkSpace found | moving, re-keyed | save |
//! | moving | the WorkSpace gone, none found | requested, keyed by the lost id, with the move's profile | save, request WorkSpace |
//! | leaving, terminating, migrating or relocating | WorkSpace gone | leaving, the migration's or relocation's other WorkSpace next | save, request termination |

use super::{Decision, HrInput, Input, NameStatus, STILL_STUCK, STUCK, Step, save, stamp};
use crate::domain::employee::{
    EmployeeRecord, EmployeeState, EventOutcome, MoveWork, NameClaim, NewUser, PastWorkspace, Relocation, SeenEvent,
    WorkspaceClocks,
};
use crate::domain::messages::{TerminationRequest, WorkspaceRequest};
use crate::domain::mover::{Current, MoveStep, next_step_with};
use crate::domain::profile::Profile;
use crate::domain::time::Timestamp;
use crate::domain::workspace::{Cooldowns, PropertyChange, WorkspaceProperties, WorkspaceState, compute_change};
use std::collections::BTreeMap;

/// A move, with the profile the intake resolved for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mover {
    /// The new department, if the move names one (else the employee keeps theirs).
    pub department: Option<String>,
    pub profile_name: String,
    pub profile: Profile,
    /// For a move to another directory: the user's creation there is idempotent by this token.
    pub client_token: String,
    /// Who holds the user name in the profile's directory (for a move to another directory).
    pub name: NameStatus,
}

/// A WorkSpace as the reconciler saw it for a move.
#[derive(Debug, Clone, PartialEq)]
pub struct SeenWorkspace {
    pub workspace_id: String,
    pub directory_id: String,
    pub state: WorkspaceState,
    pub bundle_id: Option<String>,
    pub properties: WorkspaceProperties,
}

/// What the reconciler read for a moving employee.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MoveSight {
    /// The record's WorkSpace; `None`: not listed.
    pub workspace: Option<SeenWorkspace>,
    /// A migration's new WorkSpace; `None`: not listed (or no migration).
    pub target: Option<SeenWorkspace>,
    /// DescribeTags of the record's WorkSpace; `None`: not read.
    pub tags: Option<BTreeMap<String, String>>,
    /// The record's WorkSpace not listed: the user's WorkSpace in the profile's directory, if
    /// another one is (a migration whose answer was lost in a crash).
    pub found: Option<SeenWorkspace>,
}

/// A mover's decision made without its WorkSpace's tags (`MoveSight::tags` unread): whether
/// the tags could change it. A tag step or the move's end could (the profile's tags may be
/// there already; the old profile's may need removing); a property change, a migration or a
/// wait would be the same, since tags wait for nothing and nothing waits for them. Reading
/// them only then saves a DescribeTags (one WorkSpaces call) on most of a mover's runs.
pub fn needs_tags(decision: &super::Decision) -> bool {
    decision.steps.iter().any(|step| match step {
        Step::Move(MoveCall::Tag { .. }) => true,
        Step::Save { record, .. } => record.moving.is_none(),
        _ => false,
    })
}

/// One WorkSpaces call a move makes.
#[derive(Debug, Clone, PartialEq)]
pub enum MoveCall {
    Modify { workspace_id: String, change: PropertyChange, cooldown: Cooldown },
    Migrate { workspace_id: String, bundle_id: String },
    Tag { workspace_id: String, add: BTreeMap<String, String>, remove: Vec<String> },
}

impl MoveCall {
    pub fn workspace_id(&self) -> &str {
        match self {
            MoveCall::Modify { workspace_id, .. }
            | MoveCall::Migrate { workspace_id, .. }
            | MoveCall::Tag { workspace_id, .. } => workspace_id,
        }
    }

    fn describe(&self) -> String {
        match self {
            MoveCall::Modify { change, .. } => format!("ModifyWorkspaceProperties {}", describe_change(change)),
            MoveCall::Migrate { bundle_id, .. } => format!("MigrateWorkspace to bundle {bundle_id}"),
            MoveCall::Tag { add, remove, .. } => {
                format!("tags: {} set, {} removed", add.len(), remove.len())
            }
        }
    }
}

fn describe_change(change: &PropertyChange) -> String {
    match change {
        PropertyChange::RunningMode { mode, auto_stop_minutes: Some(m) } => {
            format!("running mode {} ({m} min)", mode.as_str())
        }
        PropertyChange::RunningMode { mode, auto_stop_minutes: None } => format!("running mode {}", mode.as_str()),
        PropertyChange::ComputeType(c) => format!("compute type {c}"),
        PropertyChange::RootVolume(g) => format!("root volume {g} GiB"),
        PropertyChange::UserVolume(g) => format!("user volume {g} GiB"),
    }
}

/// Which cooldown a property change starts (WORKSPACES-FACTS §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cooldown {
    None,
    Volume,
    ComputeUp,
    ComputeDown,
}

/// A WorkSpaces call that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFailure {
    pub code: String,
    pub message: String,
    /// Asking again later can succeed (throttled, the WorkSpace busy with another change).
    pub retryable: bool,
}

/// How long a migration may show no new WorkSpace before it counts as failed: "If the WorkSpace
/// bundle remains the same one hour after attempting migration, the migration is unsuccessful"
/// (WORKSPACES-FACTS §2).
pub const MIGRATION_SILENT_MS: i64 = 60 * 60 * 1000;

fn rejected(why: String) -> Decision {
    Decision::event(EventOutcome::Rejected, why, vec![])
}

/// A move event (after the stale and future-dated checks every HR event gets).
pub(super) fn move_event(
    current: Option<&EmployeeRecord>,
    hr: &HrInput,
    mover: Result<&Mover, &String>,
    now: i64,
) -> Decision {
    let Some(c) = current else {
        return rejected("not onboarded: a move applies to an employee the pipeline has onboarded (no record)".into());
    };
    if c.moved_by(&hr.event_id) {
        return Decision::event(EventOutcome::Applied, "move already applied", vec![]);
    }
    if let Some(last) = &c.last_move
        && (last.occurred_ms, last.event_id.as_str()) > (hr.occurred_ms, hr.event_id.as_str())
    {
        return super::stale(hr, "move", &last.event_id, last.occurred_ms);
    }
    let mover = match mover {
        Ok(m) => m,
        Err(why) => return rejected(why.clone()),
    };
    let leave = c.leave_event_id.as_deref().unwrap_or("?");
    let waits_for_rehire = c.rehire_pending && c.state.is_leaving();
    match c.state {
        _ if waits_for_rehire => {}
        EmployeeState::Failed => {
            return rejected(format!(
                "onboarding failed ({}): a move changes no WorkSpace; send a join to onboard again",
                c.failure_code.as_deref().unwrap_or("?")
            ));
        }
        EmployeeState::Leaving | EmployeeState::Revoked | EmployeeState::Terminating | EmployeeState::Terminated => {
            return rejected(format!(
                "employee is {} (leave {leave}): a move applies to someone who stays",
                c.state.as_str()
            ));
        }
        _ => {}
    }
    if let Some(r) = c.moving.as_ref().and_then(|m| m.relocation.as_ref()).filter(|r| r.discard.is_none()) {
        return onto_relocation(c, hr, mover, r, now);
    }
    if let Some(profile) = &c.profile
        && profile.directory_id != mover.profile.directory_id
    {
        return relocate(c, hr, mover, &profile.directory_id, now);
    }
    let next = stamp(c, now, |n| {
        n.last_move =
            Some(SeenEvent { occurred_ms: hr.occurred_ms, event_id: hr.event_id.clone(), join: false, moved: true });
        if mover.department.is_some() {
            n.department = mover.department.clone();
        }
        n.profile_name = Some(mover.profile_name.clone());
        n.profile = Some(mover.profile.clone());
        n.move_note = None;
        if waits_for_rehire {
            return;
        }
        // A migration in flight goes on; the rest is planned again against the new profile.
        // (A relocation's old WorkSpace being terminated goes on too, under the move that asked.)
        let migrating = n.moving.take().filter(|m| m.other_workspace().is_some());
        n.moving = Some(match migrating {
            Some(m) if m.relocation.is_some() => MoveWork { due_ms: None, waiting: None, waiting_since_ms: None, ..m },
            m => MoveWork {
                event_id: hr.event_id.clone(),
                migrating_to: m.as_ref().and_then(|m| m.migrating_to.clone()),
                migrate_asked_ms: m.as_ref().and_then(|m| m.migrate_asked_ms),
                ..MoveWork::new(&hr.event_id)
            },
        });
        if n.state == EmployeeState::Active {
            n.state = EmployeeState::Moving;
            if n.clocks.launched_ms.is_none() {
                // From before moves: the time it became active stands in for its launch (later, so
                // no cooldown is cut short).
                n.clocks.launched_ms = Some(c.state_since_ms);
            }
        }
    });
    let reason = match c.state {
        _ if waits_for_rehire => format!("applied to the pending rehire: profile {}", mover.profile_name),
        EmployeeState::Active | EmployeeState::Moving => format!(
            "WorkSpace {} to be changed to profile {}",
            c.workspace_id.as_deref().unwrap_or("?"),
            mover.profile_name
        ),
        state => {
            format!("profile {}: applied once the WorkSpace ({}) is AVAILABLE", mover.profile_name, state.as_str())
        }
    };
    Decision::event(EventOutcome::Applied, reason, super::with_outstanding(save(c, next.clone()), &next, now))
}

/// The moving employee's WorkSpace disappeared and the user has no other: requested again,
/// keyed by the lost id, with the record's profile (the move's); failed only if the record
/// cannot ask (no user or profile).
fn lost_during_move(c: &EmployeeRecord, gone: &str, event_id: &str, now: i64) -> Decision {
    let next = stamp(c, now, |n| super::requested_in_place_of(n, gone, now));
    match WorkspaceRequest::for_employee(&next, now) {
        // The request first (held by the provisioner until the write lands): a crash between
        // the two leaves the employee moving, and the reconciler's next run decides this again.
        Some(request) => Decision::note(
            format!("WorkSpace {gone} disappeared during move {event_id}: a new one requested with the profile"),
            vec![Step::RequestWorkspace(request), save(c, next)],
        ),
        None => {
            let failed = stamp(c, now, |n| {
                n.state = EmployeeState::Failed;
                n.moving = None;
                n.failure_code = Some("WorkspaceGone".into());
                n.failure_message = Some(format!("WorkSpace {gone} disappeared during move {event_id}"));
            });
            Decision::note("the WorkSpace disappeared during the move", vec![save(c, failed)])
        }
    }
}

/// A moving employee, by this move.
fn moving_for<'a>(current: Option<&'a EmployeeRecord>, event_id: &str) -> Option<(&'a EmployeeRecord, &'a MoveWork)> {
    let c = current.filter(|c| c.state == EmployeeState::Moving)?;
    let work = c.moving.as_ref().filter(|m| m.event_id == event_id)?;
    Some((c, work))
}

/// The move ends (reached, or stopped with `stopped`): active again.
fn finish(c: &EmployeeRecord, now: i64, stopped: Option<String>) -> EmployeeRecord {
    let event_id = c.moving.as_ref().map(|m| m.event_id.clone()).unwrap_or_default();
    stamp(c, now, |n| {
        n.state = EmployeeState::Active;
        n.moving = None;
        // A note written on the way (the old WorkSpace of a relocation kept) stays.
        if let Some(why) = stopped {
            n.move_note = Some(format!("move {event_id} stopped: {why}"));
        }
    })
}

/// The move waits (`why`), until `due_ms` or the next run; written only when that changes.
fn wait(c: &EmployeeRecord, work: &MoveWork, why: String, due_ms: Option<i64>, for_state: bool, now: i64) -> Decision {
    let since = if for_state { work.waiting_since_ms.or(Some(now)) } else { None };
    if work.waiting.as_deref() == Some(why.as_str()) && work.due_ms == due_ms && work.waiting_since_ms == since {
        return Decision::note(format!("moving: {why}"), vec![]);
    }
    let next = stamp(c, now, |n| {
        if let Some(m) = n.moving.as_mut() {
            m.waiting = Some(why.clone());
            m.due_ms = due_ms;
            m.waiting_since_ms = since;
        }
    });
    Decision::note(format!("moving: {why}"), vec![save(c, next)])
}

/// The WorkSpace is now `to` (a migration's): the record follows it.
fn rekey(c: &EmployeeRecord, to: &SeenWorkspace, launched_ms: i64, now: i64, why: &str) -> Decision {
    let next = stamp(c, now, |n| {
        if let Some(from) = n.workspace_id.replace(to.workspace_id.clone())
            && from != to.workspace_id
        {
            n.previous_workspaces
                .push(crate::domain::employee::PastWorkspace { workspace_id: from, terminated_ms: now });
        }
        n.clocks = WorkspaceClocks { launched_ms: Some(launched_ms), ..WorkspaceClocks::default() };
        if let Some(m) = n.moving.as_mut() {
            m.migrating_to = None;
            m.migrate_asked_ms = None;
            m.waiting = None;
            m.due_ms = None;
            m.waiting_since_ms = None;
        }
    });
    Decision::note(format!("{why}: now WorkSpace {}", to.workspace_id), vec![save(c, next)])
}

/// What the reconciler saw of a moving employee's WorkSpace: the next call, a wait, or the end.
pub(super) fn move_observed(
    current: Option<&EmployeeRecord>,
    event_id: &str,
    sight: &MoveSight,
    stuck_after_ms: i64,
    cooldowns: &Cooldowns,
    now: i64,
) -> Decision {
    let Some((c, work)) = moving_for(current, event_id) else {
        return Decision::note("move no longer under way", vec![]);
    };
    let Some(profile) = c.profile.as_ref() else {
        return save_finish(c, now, "the record has no profile".into());
    };
    if let Some(target_id) = &work.migrating_to {
        return migration_seen(c, work, target_id, sight, now);
    }
    if let Some(relocation) = &work.relocation {
        let decision = relocation_seen(c, work, relocation, sight, now);
        return flag_if_stuck(c, work, decision, stuck_after_ms, now);
    }
    let going = sight
        .workspace
        .as_ref()
        .filter(|ws| matches!(ws.state, WorkspaceState::Terminating | WorkspaceState::Terminated));
    if let Some(ws) = going {
        // Not terminated by the pipeline (the employee is not leaving): replaced by a migration
        // whose answer was lost in a crash, most likely.
        return match &sight.found {
            Some(found) => rekey(c, found, now, now, "the WorkSpace was replaced (a migration whose answer was lost)"),
            None => wait(
                c,
                work,
                format!("the WorkSpace is {}: looking for the one replacing it", ws.state),
                None,
                true,
                now,
            ),
        };
    }
    let Some(ws) = &sight.workspace else {
        return match &sight.found {
            Some(found) => rekey(c, found, now, now, "the WorkSpace was replaced (a migration whose answer was lost)"),
            // Deleted behind the pipeline's back (the employee stays): a new WorkSpace with the
            // profile the move wants, as the drift audit asks for a lost one (found by the model:
            // failing here left a mover without a WorkSpace the audit would not give back).
            // A migration asked recently may have replaced it with one not listed yet.
            None if work.migrate_asked_ms.is_some_and(|asked| now - asked < MIGRATION_SILENT_MS) => wait(
                c,
                work,
                "the WorkSpace is not listed: looking for the migration's new one".into(),
                None,
                true,
                now,
            ),
            None => match c.workspace_id.as_deref() {
                Some(gone) => lost_during_move(c, gone, event_id, now),
                None => Decision::note("moving without a WorkSpace id", vec![]),
            },
        };
    };
    let current = Current {
        directory_id: &ws.directory_id,
        bundle_id: ws.bundle_id.as_deref(),
        state: &ws.state,
        properties: &ws.properties,
        tags: sight.tags.as_ref(),
        launched_ms: c.clocks.launched_ms.unwrap_or(c.state_since_ms),
        last_volume_ms: c.clocks.last_volume_ms,
        last_compute_up_ms: c.clocks.last_compute_up_ms,
        last_compute_down_ms: c.clocks.last_compute_down_ms,
    };
    let workspace_id = ws.workspace_id.clone();
    match next_step_with(&current, profile, now, cooldowns) {
        MoveStep::Done => {
            let next = finish(c, now, None);
            Decision::note(format!("the WorkSpace matches profile {}", profile_name(c)), vec![save(c, next)])
        }
        MoveStep::Relocate => save_finish(
            c,
            now,
            "the WorkSpace is in another directory than the profile's, and a WorkSpace never changes directory".into(),
        ),
        MoveStep::Migrate { bundle_id } => {
            if let Some(asked) = work.migrate_asked_ms
                && now < asked.saturating_add(MIGRATION_SILENT_MS)
            {
                // Asked, and its answer lost: another call would start a second migration.
                return wait(c, work, "a migration asked: waiting for its new WorkSpace".into(), None, true, now);
            }
            Decision::note(
                format!("migrating to bundle {bundle_id}"),
                vec![Step::Move(MoveCall::Migrate { workspace_id, bundle_id })],
            )
        }
        MoveStep::Modify(change) => {
            let cooldown = match &change {
                PropertyChange::RootVolume(_) | PropertyChange::UserVolume(_) => Cooldown::Volume,
                PropertyChange::ComputeType(to) => {
                    let from = ws.properties.compute_type.as_deref().unwrap_or_default();
                    if compute_change(from, to).unwrap_or(true) { Cooldown::ComputeUp } else { Cooldown::ComputeDown }
                }
                PropertyChange::RunningMode { .. } => Cooldown::None,
            };
            let call = MoveCall::Modify { workspace_id, change, cooldown };
            Decision::note(call.describe(), vec![Step::Move(call)])
        }
        MoveStep::Tag { add, remove } => {
            let call = MoveCall::Tag { workspace_id, add, remove };
            Decision::note(call.describe(), vec![Step::Move(call)])
        }
        MoveStep::WaitForState => {
            let why = format!("the WorkSpace is {}: no change until it is AVAILABLE or STOPPED", ws.state);
            let decision = wait(c, work, why, None, true, now);
            flag_if_stuck(c, work, decision, stuck_after_ms, now)
        }
        MoveStep::WaitUntil { at_ms, why } => {
            wait(c, work, format!("until {}: {why}", Timestamp::from_millis(at_ms)), Some(at_ms), false, now)
        }
        MoveStep::Impossible { why } => save_finish(c, now, why),
    }
}

fn profile_name(c: &EmployeeRecord) -> &str {
    c.profile_name.as_deref().unwrap_or("?")
}

fn save_finish(c: &EmployeeRecord, now: i64, why: String) -> Decision {
    let next = finish(c, now, Some(why.clone()));
    Decision::note(format!("move stopped: {why}"), vec![save(c, next)])
}

/// A wait for the WorkSpace's state that has lasted past the deadline is flagged stuck.
/// Its other steps (a request asked again) stay.
fn flag_if_stuck(c: &EmployeeRecord, work: &MoveWork, decision: Decision, stuck_after_ms: i64, now: i64) -> Decision {
    let since = work.waiting_since_ms.unwrap_or(now);
    if now - since <= stuck_after_ms {
        return decision;
    }
    if c.stuck_since_ms.is_some() {
        return Decision::note(STILL_STUCK, decision.steps);
    }
    let flagged = stamp(c, now, |n| {
        if let Some(waiting) = decision.saved() {
            *n = waiting.clone();
        }
        n.stuck_since_ms = Some(now);
    });
    let mut steps = vec![save(c, flagged)];
    steps.extend(decision.steps.into_iter().filter(|s| !matches!(s, Step::Save { .. })));
    Decision::note(format!("{STUCK}: moving, waiting for the WorkSpace's state past its deadline"), steps)
}

/// A migration under way: its new WorkSpace AVAILABLE re-keys the record; gone or in ERROR with
/// the original back, the move stops.
fn migration_seen(c: &EmployeeRecord, work: &MoveWork, target_id: &str, sight: &MoveSight, now: i64) -> Decision {
    let asked = work.migrate_asked_ms.unwrap_or(c.updated_ms);
    match &sight.target {
        Some(t) if matches!(t.state, WorkspaceState::Available | WorkspaceState::Stopped) => {
            rekey(c, t, asked, now, "migrated")
        }
        Some(t) if t.state != WorkspaceState::Error => {
            wait(c, work, format!("migrating to WorkSpace {target_id} ({}; up to an hour)", t.state), None, false, now)
        }
        failed => {
            let why = match failed {
                Some(_) => format!("the migration's WorkSpace {target_id} is in ERROR"),
                None if now < asked.saturating_add(MIGRATION_SILENT_MS) => {
                    // A new id can be missing from DescribeWorkspaces for a while.
                    return wait(
                        c,
                        work,
                        format!("migrating to WorkSpace {target_id} (not listed yet)"),
                        None,
                        false,
                        now,
                    );
                }
                None => format!("the migration's WorkSpace {target_id} is not listed an hour after it was asked"),
            };
            match &sight.workspace {
                Some(_) => save_finish(c, now, format!("{why}: the service keeps the original WorkSpace")),
                None => {
                    let next = stamp(c, now, |n| {
                        n.state = EmployeeState::Failed;
                        n.moving = None;
                        n.failure_code = Some("MigrationFailed".into());
                        n.failure_message = Some(format!("{why}, and the original WorkSpace is gone"));
                    });
                    Decision::note("the migration failed and left no WorkSpace", vec![save(c, next)])
                }
            }
        }
    }
}

/// A move's WorkSpaces call answered: what it changed is written (the cooldown it starts, a
/// migration's new id), or the move stops on a refusal that asking again cannot change.
pub(super) fn move_called(
    current: Option<&EmployeeRecord>,
    event_id: &str,
    call: &MoveCall,
    result: &Result<Option<String>, CallFailure>,
    now: i64,
) -> Decision {
    let Some((c, _)) = moving_for(current, event_id) else {
        // A migration answered after a leave that came meanwhile: its WorkSpace goes too.
        if let (MoveCall::Migrate { .. }, Ok(Some(target)), Some(c)) = (call, result, current)
            && let Some(decision) = super::made_after_leave(c, target, event_id, now)
        {
            return decision;
        }
        return Decision::note("move no longer under way", vec![]);
    };
    if c.workspace_id.as_deref() != Some(call.workspace_id()) {
        return Decision::note("the move's WorkSpace changed meanwhile", vec![]);
    }
    let failure = match result {
        Ok(answer) => {
            let what = call.describe();
            let next = stamp(c, now, |n| {
                let asked = Some(now);
                match call {
                    MoveCall::Modify { cooldown: Cooldown::Volume, .. } => n.clocks.last_volume_ms = asked,
                    MoveCall::Modify { cooldown: Cooldown::ComputeUp, .. } => n.clocks.last_compute_up_ms = asked,
                    MoveCall::Modify { cooldown: Cooldown::ComputeDown, .. } => n.clocks.last_compute_down_ms = asked,
                    MoveCall::Modify { cooldown: Cooldown::None, .. } | MoveCall::Tag { .. } => {}
                    MoveCall::Migrate { .. } => {
                        if let Some(m) = n.moving.as_mut() {
                            m.migrating_to = answer.clone();
                            m.migrate_asked_ms = asked;
                        }
                    }
                }
                if let Some(m) = n.moving.as_mut() {
                    m.waiting = Some(format!("{what} asked"));
                    m.due_ms = None;
                    m.waiting_since_ms = None;
                }
            });
            return Decision::note(format!("{what} asked"), vec![save(c, next)]);
        }
        Err(failure) => failure,
    };
    let what = format!("{} refused ({}: {})", call.describe(), failure.code, failure.message);
    if failure.retryable {
        return Decision::note(format!("{what}: asked again at the next run"), vec![]);
    }
    save_finish(c, now, what)
}

/// A leaver's WorkSpace is confirmed gone while a migration of it was under way: the
/// migration's WorkSpace is terminated next, so no leaver keeps one.
pub(super) fn migration_left_behind(c: &EmployeeRecord, now: i64) -> Option<Decision> {
    let target = c.moving.as_ref()?.other_workspace()?.to_owned();
    if c.workspace_id.as_deref() == Some(target.as_str()) {
        return None;
    }
    let next = stamp(c, now, |n| {
        if let Some(from) = n.workspace_id.replace(target.clone()) {
            n.previous_workspaces
                .push(crate::domain::employee::PastWorkspace { workspace_id: from, terminated_ms: now });
        }
        n.moving = None;
        n.state = EmployeeState::Leaving;
        n.terminate_requested_ms = None;
        n.grace_until_ms = None;
        if n.leave_event_id.is_none() {
            n.leave_event_id = Some(format!("{}{target}", super::STRAY_PREFIX));
        }
    });
    let termination = TerminationRequest::for_employee(&next, now);
    let mut steps = vec![save(c, next)];
    steps.extend(termination.map(Step::RequestTermination));
    Some(Decision::note(format!("gone; the WorkSpace {target} its migration made is terminated next"), steps))
}

// ---------------------------------------------------------------- moves to another directory

/// A move to another directory: the user made there and the name claimed there, the record
/// written (the old WorkSpace and profile kept until the new one is AVAILABLE), then the new
/// WorkSpace requested.
fn relocate(c: &EmployeeRecord, hr: &HrInput, mover: &Mover, from: &str, now: i64) -> Decision {
    let to = &mover.profile.directory_id;
    let busy = c.moving.as_ref().is_some_and(|m| m.other_workspace().is_some());
    if !matches!(c.state, EmployeeState::Active | EmployeeState::Moving) || busy || c.workspace_id.is_none() {
        return rejected(format!(
            "a move to another directory ({from} to {to}) [move-directory] applies to an employee whose WorkSpace is AVAILABLE and not being migrated (employee is {}): send it again then",
            c.state.as_str()
        ));
    }
    let take_over_from = match &mover.name {
        NameStatus::Free => None,
        NameStatus::Releasable { holder, version } => Some((holder.clone(), *version)),
        NameStatus::Held { holder } => {
            return rejected(super::name_held(c.username.as_deref().unwrap_or("?"), to, holder));
        }
    };
    let (Some(user_name), Some(given_name), Some(surname), Some(email)) =
        (c.username.clone(), c.given_name.clone(), c.surname.clone(), c.email.clone())
    else {
        return rejected("the record lacks the employee's name or email, which the new directory's user needs".into());
    };
    let relocation = Relocation {
        from_directory_id: from.to_owned(),
        profile_name: mover.profile_name.clone(),
        profile: mover.profile.clone(),
        department: mover.department.clone(),
        workspace_id: None,
        discard: None,
        discard_terminating: false,
    };
    let next = stamp(c, now, |n| {
        n.last_move =
            Some(SeenEvent { occurred_ms: hr.occurred_ms, event_id: hr.event_id.clone(), join: false, moved: true });
        n.move_note = None;
        n.state = EmployeeState::Moving;
        if n.clocks.launched_ms.is_none() {
            n.clocks.launched_ms = Some(c.state_since_ms);
        }
        n.moving = Some(MoveWork { relocation: Some(relocation), ..MoveWork::new(&hr.event_id) });
    });
    let user = NewUser {
        directory_id: to.clone(),
        user_name: user_name.clone(),
        given_name,
        surname,
        email,
        client_token: mover.client_token.clone(),
    };
    let claim = NameClaim { directory_id: to.clone(), user_name, employee_id: c.employee_id.clone(), take_over_from };
    let mut steps = vec![
        Step::EnsureUser(user),
        Step::Save { record: Box::new(next.clone()), expected_version: Some(c.version), claim: Some(claim) },
    ];
    steps.extend(relocation_request(&next, now).map(Step::RequestWorkspace));
    Decision::event(
        EventOutcome::Applied,
        format!(
            "a new WorkSpace requested in directory {to} (profile {}); {} is terminated once it is AVAILABLE",
            mover.profile_name,
            c.workspace_id.as_deref().unwrap_or("?")
        ),
        steps,
    )
}

/// A move while a relocation's new WorkSpace is being made: to the same new directory, it changes
/// the profile the new WorkSpace is brought to; elsewhere, it waits for the relocation to end.
fn onto_relocation(c: &EmployeeRecord, hr: &HrInput, mover: &Mover, r: &Relocation, now: i64) -> Decision {
    let event_id = c.moving.as_ref().map(|m| m.event_id.as_str()).unwrap_or("?");
    if r.profile.directory_id != mover.profile.directory_id {
        return rejected(format!(
            "move {event_id} to directory {} is under way [move-directory]: send this one again once it is done",
            r.profile.directory_id
        ));
    }
    let next = stamp(c, now, |n| {
        n.last_move =
            Some(SeenEvent { occurred_ms: hr.occurred_ms, event_id: hr.event_id.clone(), join: false, moved: true });
        if let Some(r) = n.moving.as_mut().and_then(|m| m.relocation.as_mut()) {
            r.profile_name = mover.profile_name.clone();
            r.profile = mover.profile.clone();
            if mover.department.is_some() {
                r.department = mover.department.clone();
            }
        }
    });
    Decision::event(
        EventOutcome::Applied,
        format!(
            "profile {}: applied to the WorkSpace being made in directory {}",
            mover.profile_name, r.profile.directory_id
        ),
        vec![save(c, next)],
    )
}

/// The request for a relocation's new WorkSpace (keyed by the move), while none is made.
fn relocation_request(c: &EmployeeRecord, now: i64) -> Option<WorkspaceRequest> {
    let work = c.moving.as_ref()?;
    let r = work.relocation.as_ref().filter(|r| r.workspace_id.is_none() && r.discard.is_none())?;
    Some(WorkspaceRequest {
        employee_id: c.employee_id.clone(),
        event_id: work.event_id.clone(),
        username: c.username.clone()?,
        profile_name: r.profile_name.clone(),
        profile: r.profile.clone(),
        requested_ms: now,
        redelivery: Default::default(),
    })
}

/// The termination of the WorkSpace a relocation drops (keyed by the move), until accepted.
fn discard_request(c: &EmployeeRecord, now: i64) -> Option<TerminationRequest> {
    let work = c.moving.as_ref()?;
    let r = work.relocation.as_ref().filter(|r| !r.discard_terminating)?;
    let discard = r.discard.clone()?;
    // The directory the dropped WorkSpace is in: the old one's (the record's profile before the
    // switch), or the new one's (a new WorkSpace in ERROR).
    let switched = c.profile.as_ref().is_some_and(|p| p.directory_id == r.profile.directory_id);
    let directory_id = if switched { r.from_directory_id.clone() } else { r.profile.directory_id.clone() };
    Some(TerminationRequest {
        employee_id: c.employee_id.clone(),
        event_id: work.event_id.clone(),
        workspace_id: Some(discard),
        directory_id,
        username: c.username.clone()?,
        requested_ms: now,
        redelivery: Default::default(),
    })
}

/// What a moving record waits on that a crash may have lost: a relocation's request, or the
/// termination of the WorkSpace it drops. Asked again by every later decision, as a requested
/// or leaving record's.
pub(super) fn outstanding(c: &EmployeeRecord, now: i64) -> Option<Step> {
    if c.state != EmployeeState::Moving {
        return None;
    }
    relocation_request(c, now)
        .map(Step::RequestWorkspace)
        .or_else(|| discard_request(c, now).map(Step::RequestTermination))
}

/// Whether a WorkSpace request is a relocation's that is still wanted.
pub(super) fn relocation_wants(c: &EmployeeRecord, request_event_id: &str) -> bool {
    c.state == EmployeeState::Moving
        && c.moving.as_ref().is_some_and(|m| {
            m.event_id == request_event_id
                && m.relocation.as_ref().is_some_and(|r| r.workspace_id.is_none() && r.discard.is_none())
        })
}

/// The relocation under way for this move.
fn relocating<'a>(current: Option<&'a EmployeeRecord>, event_id: &str) -> Option<(&'a EmployeeRecord, &'a Relocation)> {
    let (c, work) = moving_for(current, event_id)?;
    Some((c, work.relocation.as_ref()?))
}

/// A result keyed by a relocation's move: its new WorkSpace created (or not), or the WorkSpace
/// it drops terminated (or not). `None`: not a relocation's.
pub(super) fn relocation_result(current: Option<&EmployeeRecord>, input: &Input, now: i64) -> Option<Decision> {
    match input {
        Input::Created { request_event_id, workspace_id, .. } => {
            let (c, r) = relocating(current, request_event_id)?;
            if r.workspace_id.is_some() || r.discard.is_some() {
                return Some(Decision::note("created for a relocation that has its WorkSpace", vec![]));
            }
            let next = stamp(c, now, |n| {
                if let Some(m) = n.moving.as_mut() {
                    if let Some(r) = m.relocation.as_mut() {
                        r.workspace_id = Some(workspace_id.clone());
                    }
                    m.waiting = Some(format!("the new WorkSpace {workspace_id} is being made"));
                }
            });
            Some(Decision::note(format!("relocation: WorkSpace {workspace_id} created"), vec![save(c, next)]))
        }
        Input::CreateFailed { request_event_id, code, message } => {
            let (c, r) = relocating(current, request_event_id).filter(|(_, r)| r.workspace_id.is_none())?;
            let why = format!(
                "the WorkSpace in directory {} could not be created ({code}: {message}); the employee keeps {}",
                r.profile.directory_id,
                c.workspace_id.as_deref().unwrap_or("?")
            );
            Some(save_finish(c, now, why))
        }
        Input::TerminationAccepted { leave_event_id, workspace_id } => {
            let (c, r) = relocating(current, leave_event_id)?;
            if r.discard.as_ref() != Some(workspace_id) {
                return Some(Decision::note("termination of a WorkSpace the relocation no longer drops", vec![]));
            }
            let next = stamp(c, now, |n| {
                if let Some(m) = n.moving.as_mut() {
                    if let Some(r) = m.relocation.as_mut() {
                        r.discard_terminating = true;
                    }
                    m.waiting = Some(format!("{workspace_id} is being terminated"));
                }
            });
            Some(Decision::note(format!("relocation: {workspace_id} being terminated"), vec![save(c, next)]))
        }
        Input::NothingToTerminate { leave_event_id } => {
            let (c, r) = relocating(current, leave_event_id)?;
            Some(discarded(c, r, now, "gone already"))
        }
        Input::TerminationFailed { leave_event_id, code, message } => {
            let (c, r) = relocating(current, leave_event_id)?;
            let discard = r.discard.as_deref().unwrap_or("?");
            let next = stamp(c, now, |n| {
                if let Some(m) = n.moving.as_mut() {
                    m.relocation = None;
                    m.waiting = None;
                }
                n.move_note = Some(format!("{discard} was not terminated ({code}: {message}): an operator decides"));
            });
            Some(Decision::note(format!("relocation: {discard} not terminated ({code})"), vec![save(c, next)]))
        }
        Input::TerminationHeld { leave_event_id, reason, .. } => {
            let (c, _) = relocating(current, leave_event_id)?;
            let work = c.moving.as_ref()?;
            // Asked again at every run; the guard admits it once an operator resets it.
            Some(wait(c, work, format!("the old WorkSpace's termination is held: {reason}"), None, false, now))
        }
        _ => None,
    }
}

/// The WorkSpace a relocation drops is gone: the relocation is over, and the move goes on
/// against the record's profile (the new directory's; or, if the new WorkSpace was the one
/// dropped, the old one's, which an earlier move may have changed).
fn discarded(c: &EmployeeRecord, r: &Relocation, now: i64, why: &str) -> Decision {
    let discard = r.discard.clone().unwrap_or_default();
    // Switched: the user in the directory left behind stays (its name claimed), and a leave
    // disables it there too.
    let left_behind = c.profile.as_ref().is_some_and(|p| p.directory_id == r.profile.directory_id);
    let next = stamp(c, now, |n| {
        n.previous_workspaces.push(PastWorkspace { workspace_id: discard.clone(), terminated_ms: now });
        if left_behind && !n.former_directories.contains(&r.from_directory_id) {
            n.former_directories.push(r.from_directory_id.clone());
        }
        if let Some(m) = n.moving.as_mut() {
            m.relocation = None;
            m.waiting = None;
            m.due_ms = None;
            m.waiting_since_ms = None;
        }
    });
    Decision::note(format!("relocation: {discard} {why}"), vec![save(c, next)])
}

/// A relocation seen by the reconciler: its new WorkSpace made and AVAILABLE (the record
/// switches to it and the old one is terminated), or in ERROR (dropped), or the dropped one gone.
fn relocation_seen(c: &EmployeeRecord, work: &MoveWork, r: &Relocation, sight: &MoveSight, now: i64) -> Decision {
    if let Some(discard) = &r.discard {
        return match &sight.target {
            None => discarded(c, r, now, "terminated"),
            Some(_) if r.discard_terminating => {
                wait(c, work, format!("{discard} is being terminated"), None, true, now)
            }
            // Asked at every run, writing nothing, until the terminator has it accepted.
            Some(_) => Decision::note(
                format!("relocation: terminating {discard}"),
                discard_request(c, now).map(Step::RequestTermination).into_iter().collect(),
            ),
        };
    }
    let Some(new_id) = &r.workspace_id else {
        let mut decision =
            wait(c, work, format!("a WorkSpace requested in directory {}", r.profile.directory_id), None, true, now);
        decision.steps.extend(relocation_request(c, now).map(Step::RequestWorkspace));
        return decision;
    };
    match &sight.target {
        Some(t) if matches!(t.state, WorkspaceState::Available | WorkspaceState::Stopped) => {
            let old = c.workspace_id.clone();
            let next = stamp(c, now, |n| {
                n.workspace_id = Some(new_id.clone());
                n.profile_name = Some(r.profile_name.clone());
                n.profile = Some(r.profile.clone());
                if r.department.is_some() {
                    n.department = r.department.clone();
                }
                n.clocks = WorkspaceClocks { launched_ms: Some(now), ..WorkspaceClocks::default() };
                if let Some(m) = n.moving.as_mut() {
                    m.waiting = None;
                    m.waiting_since_ms = None;
                    if let Some(r) = m.relocation.as_mut() {
                        r.workspace_id = None;
                        r.discard = old.clone();
                    }
                }
            });
            let mut steps = vec![save(c, next.clone())];
            steps.extend(discard_request(&next, now).map(Step::RequestTermination));
            Decision::note(
                format!("relocated to {new_id}; {} is terminated next", old.as_deref().unwrap_or("?")),
                steps,
            )
        }
        Some(t) if t.state == WorkspaceState::Error => {
            let next = stamp(c, now, |n| {
                if let Some(m) = n.moving.as_mut()
                    && let Some(r) = m.relocation.as_mut()
                {
                    r.workspace_id = None;
                    r.discard = Some(new_id.clone());
                }
                n.move_note = Some(format!(
                    "move {}: the new WorkSpace {new_id} in directory {} ended in ERROR; it is terminated and the employee keeps {}",
                    work.event_id,
                    r.profile.directory_id,
                    c.workspace_id.as_deref().unwrap_or("?")
                ));
            });
            let mut steps = vec![save(c, next.clone())];
            steps.extend(discard_request(&next, now).map(Step::RequestTermination));
            Decision::note(format!("relocation: {new_id} in ERROR, dropped"), steps)
        }
        Some(t) => wait(c, work, format!("the new WorkSpace {new_id} is {}", t.state), None, true, now),
        // A new id can be missing from DescribeWorkspaces for a while.
        None => wait(c, work, format!("the new WorkSpace {new_id} is not listed yet"), None, true, now),
    }
}

/// Whether a terminator request keyed by `event_id` is a relocation's, and the WorkSpace it
/// terminates.
pub(super) fn relocation_discard(c: &EmployeeRecord, event_id: &str) -> Option<String> {
    let work = c.moving.as_ref().filter(|m| m.event_id == event_id && c.state == EmployeeState::Moving)?;
    let r = work.relocation.as_ref().filter(|r| !r.discard_terminating)?;
    r.discard.clone()
}
