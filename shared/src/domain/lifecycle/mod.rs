//! The employee lifecycle as one pure function: [`decide`] takes the record as read, one stimulus
//! and the time, and returns the next record (version and timestamps stamped here, and only
//! here), the side effects to perform in order, and what became of the stimulus. The services
//! are shells around it: read, decide, perform the steps in order, write conditionally.
//!
//! The order of the steps is part of the decision, because a crash can fall between any two:
//! - a join ensures the directory user, then writes the record (with its user-name claim), then
//!   sends the WorkSpace request: a redelivery finds the record and sends the request again;
//! - a leave disables the user, writes, then sends the termination request (same reason);
//! - a rehire's WorkSpace request goes out before the write that makes the employee `requested`:
//!   should the write fail, the provisioner sees the request ahead of its confirmation and
//!   retries it, and the confirmation is decided again.
//!
//! The transitions, one per line (also drawn in the README):
//!
//! | state | stimulus | next | steps |
//! |---|---|---|---|
//! | none, failed, terminated | join | requested | ensure user, save + name, request WorkSpace |
//! | leaving, terminating (and revoked for another directory or user name) | join | leaving or terminating, rehire pending | ensure user, save + name (, request termination again if leaving) |
//! | requested, pending, active, restoring | join | skipped (already joined), recorded as the latest event | save (, request WorkSpace again if requested) |
//! | requested (same join) | join again | requested | request WorkSpace again |
//! | requested | WorkSpace created | pending or active | save |
//! | requested | creation failed | failed | save |
//! | requested, pending, active, failed with a WorkSpace | leave | leaving | disable user, save, request termination |
//! | active, restoring | leave with a grace period | leaving until the grace ends | disable user, save, request (the terminator revokes access) |
//! | leaving with a grace period | access revoked | revoked | save |
//! | leaving with a grace period | revoking failed for good | leaving, grace cut short | save, request termination |
//! | revoked | grace period over | revoked (nothing written: asked at every run until accepted) | request termination |
//! | revoked, grace period over | termination accepted | terminating | save |
//! | leaving with a grace period, revoked | rehire (same directory and user name), or a cancel of that leave | restoring | ensure user, save + name, enable user, request restore |
//! | restoring | access restored | active | save |
//! | restoring | restoring failed | failed | save |
//! | restoring, active | access revoked after a restore was decided | restoring | (save,) request restore |
//! | none | leave | terminated (never joined) | save |
//! | failed without a WorkSpace | leave | terminated | disable user, save |
//! | leaving, terminating with rehire pending | leave | same, rehire withdrawn | save (, request termination again if leaving) |
//! | leaving, terminating, terminated | leave | skipped, recorded as the latest event | save (, request termination again if leaving) |
//! | leaving (same leave) | leave again | leaving | request termination again |
//! | leaving, terminated, no WorkSpace id | WorkSpace created after the leave | leaving, with its id | save, request termination |
//! | leaving | termination accepted | terminating | save |
//! | leaving | nothing to terminate | terminated (or requested if rehired) | (request WorkSpace,) save |
//! | leaving | termination failed | failed | save |
//! | pending | AVAILABLE | active | save |
//! | pending | ERROR | failed | save |
//! | terminating | gone | terminated (or requested if rehired) | (request WorkSpace,) save |
//! | pending, terminating | still waiting past the deadline | same, flagged stuck | save |
//! | active on the WorkSpace | WorkSpace lost (drift audit, `request-again`) | requested, keyed by the lost id | save, request WorkSpace |
//! | requested for that lost WorkSpace | WorkSpace lost again | requested (nothing written) | request WorkSpace |
//! | active on the WorkSpace, not moving | profile re-applied (drift audit, `reapply`) | moving (the mover path; no HR ordering) | save |
//! | any | event older than the last applied | skipped (stale) | (request again what a requested or leaving record waits on) |
//! | any | effective_at in the future | scheduled | hold |

use super::employee::{EmployeeRecord, EmployeeState, EventOutcome, NameClaim, NewUser, PastWorkspace, ScheduledEvent};
use super::messages::{TerminationRequest, WorkspaceRequest};
use super::profile::Profile;
use super::time::Timestamp;
use super::validation;
use super::workspace::{Call, Cooldowns, Disposition, WorkspaceState, classify};

mod moves;
use moves::relocation_discard;
pub use moves::{CallFailure, Cooldown, MoveCall, MoveSight, Mover, SeenWorkspace, needs_tags};

/// Every stimulus the lifecycle answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A valid join or leave, claimed (a first delivery, or a redelivery after a crash).
    Hr(HrInput),
    /// A cancel (`event_id`) of `target`; `held` is whether the target was waiting when read. A
    /// target not held may be a leave within its grace period, which the cancel rescinds.
    Cancel { employee_id: String, event_id: String, target: Option<String>, held: bool },
    /// A held event has come due: it is posted to the HR queue again.
    Due(ScheduledEvent),
    /// The directory refused the joiner's user for good (the join as it was decided).
    UserRefused { join: HrInput, code: String, message: String },
    /// CreateWorkspaces made (or the provisioner adopted) this WorkSpace for a join's request.
    Created { request_event_id: String, workspace_id: String, state: WorkspaceState },
    /// CreateWorkspaces failed for good for a join's request.
    CreateFailed { request_event_id: String, code: String, message: String },
    /// TerminateWorkspaces accepted the termination of a leave's WorkSpace.
    TerminationAccepted { leave_event_id: String, workspace_id: String },
    /// The leave has no WorkSpace to terminate (none was ever made, or it is someone else's).
    NothingToTerminate { leave_event_id: String },
    /// TerminateWorkspaces failed for good.
    TerminationFailed { leave_event_id: String, code: String, message: String },
    /// ModifyWorkspaceState put the leave's WorkSpace in ADMIN_MAINTENANCE.
    AccessRevoked { leave_event_id: String, workspace_id: String },
    /// Access could not be revoked, for good: the grace period is cut short.
    RevokeFailed { leave_event_id: String, code: String, message: String },
    /// The reconciler found the grace period of a revoked employee over.
    GraceOver { leave_event_id: String },
    /// ModifyWorkspaceState put the WorkSpace back to AVAILABLE for a rehire or cancel.
    AccessRestored { restore_event_id: String },
    /// The WorkSpace could not be given back, for good.
    RestoreFailed { restore_event_id: String, code: String, message: String },
    /// The mass-termination guard refused this leave's termination (`reason`: its limit).
    TerminationHeld { leave_event_id: String, workspace_id: String, reason: String },
    /// An operator released the employee's held termination.
    Released,
    /// What DescribeWorkspaces says of the employee's WorkSpace; `stuck_after_ms` is how long the
    /// employee may wait in its state.
    Observed { workspace_id: String, seen: Seen, stuck_after_ms: i64 },
    /// The drift audit found the active employee's WorkSpace no longer listed
    /// (`AUDIT_ON_MISSING=request-again`): a new one is requested, keyed by [`lost_request_id`].
    /// Decided again on a record already requested for it, it asks again.
    WorkspaceLost { workspace_id: String },
    /// The drift audit found the active employee's WorkSpace differing from their profile
    /// (`AUDIT_ON_MISMATCHED=reapply`): the profile is applied again through the mover path, as
    /// a move (`event_id`, [`REAPPLY_PREFIX`]) that is not an HR event (no HR ordering changes).
    Reapply { event_id: String, workspace_id: String },
    /// What the reconciler read of a moving employee's WorkSpace (`event_id`: the move).
    MoveObserved { event_id: String, sight: Box<MoveSight>, stuck_after_ms: i64, cooldowns: Cooldowns },
    /// A move's WorkSpaces call answered: `Ok` with a migration's new id, or the failure.
    MoveCalled { event_id: String, call: MoveCall, result: Result<Option<String>, CallFailure> },
}

/// A WorkSpace as the reconciler sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    State(WorkspaceState),
    Error {
        code: Option<String>,
        message: Option<String>,
    },
    /// DescribeWorkspaces does not list the id.
    Gone,
}

/// A join or a leave, with what the shell read and resolved for it.
#[derive(Debug, Clone, PartialEq)]
pub struct HrInput {
    pub employee_id: String,
    pub event_id: String,
    pub occurred_ms: i64,
    pub effective_ms: Option<i64>,
    /// How far a stored event time may run ahead of its write (see `EmployeeRecord::order_ms`).
    pub clock_skew_ms: i64,
    pub kind: HrKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HrKind {
    /// The joiner, or why the join cannot be applied (a missing field, an unknown profile).
    Join(Result<Box<Joiner>, String>),
    /// `disable_user`: disable the directory user where configured and possible. `grace_ms`:
    /// how long a WorkSpace that has been AVAILABLE is kept, access revoked, before it is
    /// terminated (0: terminated at once).
    Leave { disable_user: bool, grace_ms: i64 },
    /// The mover's new profile, or why the move cannot be applied (an unknown profile, an
    /// override the service would refuse).
    Move(Result<Box<Mover>, String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Joiner {
    pub user: NewUser,
    pub department: Option<String>,
    pub profile_name: String,
    pub profile: Profile,
    /// Who holds the user name, as read.
    pub name: NameStatus,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NameStatus {
    /// No one, or this employee.
    Free,
    /// An employee confirmed terminated (or without a record): the name may be taken over from
    /// the holder's record as read (its version; `None`: no record).
    Releasable { holder: String, version: Option<u64> },
    /// Another employee who still has, or is getting, a WorkSpace.
    Held { holder: String },
}

/// What to do, in order. `Save` writes `record` if the stored version is still
/// `expected_version` (`None`: no record yet), with the user-name claim if there is one.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    EnsureUser(NewUser),
    DisableUser {
        directory_id: String,
        user_name: String,
    },
    /// Enable a directory user a leave disabled (a rehire, a rescinded leave).
    EnableUser {
        directory_id: String,
        user_name: String,
    },
    Save {
        record: Box<EmployeeRecord>,
        expected_version: Option<u64>,
        claim: Option<NameClaim>,
    },
    RequestWorkspace(WorkspaceRequest),
    RequestTermination(TerminationRequest),
    /// Hold the HR event until `effective_ms` (SQS cannot hold a message beyond 15 minutes).
    Hold {
        effective_ms: i64,
    },
    Unschedule {
        employee_id: String,
        event_id: String,
    },
    /// Post a due event to the HR queue again.
    Post(ScheduledEvent),
    /// One WorkSpaces call toward a mover's profile (the reconciler makes it, then decides
    /// `Input::MoveCalled` on its answer).
    Move(MoveCall),
}

/// What became of the stimulus.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// An HR event's outcome, recorded in the employee's history.
    Event(EventOutcome, String),
    /// A result or an observation handled (with or without a change); why, for the log.
    Note(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub steps: Vec<Step>,
    pub verdict: Verdict,
}

impl Decision {
    fn event(outcome: EventOutcome, reason: impl Into<String>, steps: Vec<Step>) -> Self {
        Decision { steps, verdict: Verdict::Event(outcome, reason.into()) }
    }

    fn note(reason: impl Into<String>, steps: Vec<Step>) -> Self {
        Decision { steps, verdict: Verdict::Note(reason.into()) }
    }

    /// The record this decision writes, if it writes one.
    pub fn saved(&self) -> Option<&EmployeeRecord> {
        self.steps.iter().find_map(|s| match s {
            Step::Save { record, .. } => Some(record.as_ref()),
            _ => None,
        })
    }
}

pub const REHIRE_WAITS: &str = "rehire: a new WorkSpace is requested once the previous one is confirmed terminated";

/// The lifecycle: the next record, the steps and the verdict for one stimulus.
pub fn decide(current: Option<&EmployeeRecord>, input: &Input, now: i64) -> Decision {
    // A relocation's results are keyed by its move: its new WorkSpace, the old one's termination.
    if let Some(decision) = moves::relocation_result(current, input, now) {
        return decision;
    }
    match input {
        Input::Hr(hr) => hr_event(current, hr, now),
        Input::Cancel { event_id, target, held, .. } => cancel(current, event_id, target.as_deref(), *held, now),
        Input::Due(event) => Decision::note(
            format!("{} due at {}", event.event_id, Timestamp::from_millis(event.effective_ms)),
            vec![
                Step::Post(event.clone()),
                Step::Unschedule { employee_id: event.employee_id.clone(), event_id: event.event_id.clone() },
            ],
        ),
        Input::UserRefused { join, code, message } => user_refused(current, join, code, message, now),
        Input::Created { request_event_id, workspace_id, state } => {
            created(current, request_event_id, workspace_id, state, now)
        }
        Input::CreateFailed { request_event_id, code, message } => match current {
            Some(c) if c.state == EmployeeState::Requested && c.request_event_id.as_ref() == Some(request_event_id) => {
                let next = stamp(c, now, |n| {
                    n.state = EmployeeState::Failed;
                    n.failure_code = Some(code.clone());
                    n.failure_message = Some(message.clone());
                });
                Decision::note(format!("WorkSpace creation failed ({code})"), vec![save(c, next)])
            }
            _ => Decision::note("creation failure of a request no longer wanted", vec![]),
        },
        Input::TerminationAccepted { leave_event_id, workspace_id } => {
            match terminating_for(current, leave_event_id, now) {
                Some(c) => {
                    let next = stamp(c, now, |n| {
                        n.state = EmployeeState::Terminating;
                        n.workspace_id = Some(workspace_id.clone());
                        n.terminate_requested_ms = Some(now);
                    });
                    Decision::note("termination requested", vec![save(c, next)])
                }
                // The terminator read the record before a rehire (or cancel) made it restoring,
                // and its call went through: the WorkSpace to give back is going, whether or not
                // the restore has finished meanwhile. The employee gets a new one once it is
                // confirmed gone (found by the chaos run: otherwise the restore fails on a
                // WorkSpace that no longer exists, or the record says active with it gone).
                None => match restored_workspace(current, workspace_id) {
                    Some(c) => {
                        let next = stamp(c, now, |n| {
                            lost_to_termination(n, leave_event_id);
                            n.state = EmployeeState::Terminating;
                            n.terminate_requested_ms = Some(now);
                        });
                        let why = "the WorkSpace to give back was being terminated: a new one once it is gone";
                        Decision::note(why, vec![save(c, next)])
                    }
                    None => Decision::note("termination of a leave no longer wanted", vec![]),
                },
            }
        }
        Input::NothingToTerminate { leave_event_id } => match terminating_for(current, leave_event_id, now) {
            Some(c) => confirmed_gone(c, now, "no WorkSpace to terminate"),
            None => Decision::note("termination of a leave no longer wanted", vec![]),
        },
        Input::TerminationFailed { leave_event_id, code, message } => {
            match terminating_for(current, leave_event_id, now) {
                Some(c) => {
                    let next = stamp(c, now, |n| {
                        n.state = EmployeeState::Failed;
                        n.failure_code = Some(code.clone());
                        n.failure_message = Some(message.clone());
                    });
                    Decision::note(format!("termination failed ({code})"), vec![save(c, next)])
                }
                None => Decision::note("termination of a leave no longer wanted", vec![]),
            }
        }
        Input::Observed { workspace_id, seen, stuck_after_ms } => {
            observed(current, workspace_id, seen, *stuck_after_ms, now)
        }
        Input::WorkspaceLost { workspace_id } => workspace_lost(current, workspace_id, now),
        Input::Reapply { event_id, workspace_id } => reapply(current, event_id, workspace_id, now),
        Input::MoveObserved { event_id, sight, stuck_after_ms, cooldowns } => {
            moves::move_observed(current, event_id, sight, *stuck_after_ms, cooldowns, now)
        }
        Input::MoveCalled { event_id, call, result } => moves::move_called(current, event_id, call, result, now),
        Input::AccessRevoked { leave_event_id, workspace_id } => {
            access_revoked(current, leave_event_id, workspace_id, now)
        }
        Input::RevokeFailed { leave_event_id, code, message } => match leaving_for(current, leave_event_id) {
            // Held by the guard: nothing is asked again (it would fail again); the operator sees
            // that this leaver may still log in.
            Some(c) if c.held_since_ms.is_some() => {
                let next = stamp(c, now, |n| {
                    n.grace_until_ms = None;
                    n.grace_note = Some(format!(
                        "access could not be revoked ({code}: {message}) and the termination is held by the guard: the leaver may still log in until it is released (hrws guard release --employee {}) or the WorkSpace fixed",
                        c.employee_id
                    ));
                });
                Decision::note(format!("revoking access failed ({code}) while held"), vec![save(c, next)])
            }
            Some(c) if c.grace_until_ms.is_some() => {
                let next = stamp(c, now, |n| {
                    n.grace_until_ms = None;
                    n.grace_note = Some(format!(
                        "access could not be revoked ({code}: {message}): terminated without the grace period"
                    ));
                });
                Decision::note(
                    format!("revoking access failed ({code}): terminating"),
                    with_outstanding(save(c, next.clone()), &next, now),
                )
            }
            _ => Decision::note("revoking access of a leave no longer wanted", vec![]),
        },
        // Nothing is written: a revoked employee whose grace is over wants the termination, and
        // is asked for it at every run until the terminator has it accepted (so a request lost
        // in a crash is sent again, and there is no write for it to be lost after).
        Input::GraceOver { leave_event_id } => match current {
            Some(c) if grace_over(c, leave_event_id, now) => Decision::note(
                "grace period over: termination requested",
                TerminationRequest::for_employee(c, now).map(Step::RequestTermination).into_iter().collect(),
            ),
            _ => Decision::note("grace period not over, or no longer wanted", vec![]),
        },
        Input::TerminationHeld { leave_event_id, workspace_id, reason } => {
            match terminating_for(current, leave_event_id, now) {
                Some(c) if c.held_since_ms.is_none() => {
                    let next = stamp(c, now, |n| {
                        n.held_since_ms = Some(now);
                        n.hold_reason = Some(reason.clone());
                        n.workspace_id.get_or_insert_with(|| workspace_id.clone());
                    });
                    // Still leaving: the request goes again, now to revoke access while held.
                    Decision::note(
                        format!("termination held by the guard: {reason}"),
                        with_outstanding(save(c, next.clone()), &next, now),
                    )
                }
                Some(_) => Decision::note("termination held by the guard already", vec![]),
                None => Decision::note("hold of a termination no longer wanted", vec![]),
            }
        }
        Input::Released => match current.filter(|c| c.held_since_ms.is_some()) {
            Some(c) => {
                let next = stamp(c, now, |n| {
                    n.held_since_ms = None;
                    n.hold_reason = None;
                    n.guard_released = true;
                });
                // Revoked: the grace period, if any is left, still runs (the reconciler asks).
                let leave = next.leave_event_id.clone().unwrap_or_default();
                let request = match next.state {
                    EmployeeState::Revoked if !grace_over(&next, &leave, now) => None,
                    _ => TerminationRequest::for_employee(&next, now).map(Step::RequestTermination),
                };
                let mut steps = vec![save(c, next)];
                steps.extend(request);
                Decision::note("released by an operator: termination requested", steps)
            }
            None => Decision::note("not held by the guard", vec![]),
        },
        Input::AccessRestored { restore_event_id } => match restoring_for(current, restore_event_id) {
            Some(c) => {
                let next = stamp(c, now, |n| {
                    // A move (or a rehire's other profile) waiting for the WorkSpace goes on.
                    n.state = if n.moving.is_some() { EmployeeState::Moving } else { EmployeeState::Active };
                    n.restore_event_id = None;
                    n.access_revoked_ms = None;
                    n.user_disabled = false;
                });
                Decision::note("access restored", vec![save(c, next)])
            }
            None => Decision::note("restore no longer wanted", vec![]),
        },
        Input::RestoreFailed { restore_event_id, code, message } => match restoring_for(current, restore_event_id) {
            // Gone (terminated by a termination that raced the restore): a new one is made.
            Some(c) if classify(Call::Terminate, code) == Disposition::Gone => {
                let mut lost = c.clone();
                let leave = lost.restore_event_id.clone().unwrap_or_default();
                lost_to_termination(&mut lost, &leave);
                confirmed_gone(&lost, now, "the WorkSpace to give back no longer exists")
            }
            Some(c) => {
                let next = stamp(c, now, |n| {
                    n.state = EmployeeState::Failed;
                    n.failure_code = Some(code.clone());
                    n.failure_message = Some(format!("the WorkSpace could not be given back: {message}"));
                });
                Decision::note(format!("restoring access failed ({code})"), vec![save(c, next)])
            }
            None => Decision::note("restore no longer wanted", vec![]),
        },
    }
}

/// What the terminator does for a request, by the record as read: revoke access (a leave within
/// its grace period), terminate, or give the WorkSpace back (a rescinded leave, a rehire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Revoke,
    Terminate,
    Restore,
}

/// The WorkSpace a termination asked by `event_id` acts on: a relocation's dropped one, else the
/// employee's (`None`: not known yet; the terminator looks it up by user name).
pub fn termination_target(c: &EmployeeRecord, event_id: &str) -> Option<String> {
    relocation_discard(c, event_id).or_else(|| c.workspace_id.clone())
}

/// The action a terminator request (keyed by `event_id`) still calls for; `None`: no longer
/// wanted.
pub fn access_action(current: Option<&EmployeeRecord>, event_id: &str, now: i64) -> Option<Access> {
    let c = current?;
    match c.state {
        EmployeeState::Leaving if c.leave_event_id.as_deref() == Some(event_id) => {
            // Held by the guard: access is revoked until an operator releases the termination.
            let keeps = c.grace_until_ms.is_some_and(|t| t > now) || c.held_since_ms.is_some();
            match (keeps, c.workspace_id.is_some()) {
                (true, true) => Some(Access::Revoke),
                (true, false) if c.held_since_ms.is_some() => None,
                _ => Some(Access::Terminate),
            }
        }
        EmployeeState::Restoring if c.restore_event_id.as_deref() == Some(event_id) => Some(Access::Restore),
        // A relocation drops the WorkSpace it left (or a new one in ERROR).
        EmployeeState::Moving if moves::relocation_discard(c, event_id).is_some() => Some(Access::Terminate),
        EmployeeState::Revoked if grace_over(c, event_id, now) => Some(Access::Terminate),
        _ => None,
    }
}

/// A revoked employee whose grace period for this leave is over.
fn grace_over(c: &EmployeeRecord, leave_event_id: &str, now: i64) -> bool {
    c.state == EmployeeState::Revoked
        && c.leave_event_id.as_deref() == Some(leave_event_id)
        && c.grace_until_ms.is_none_or(|t| t <= now)
        && c.held_since_ms.is_none()
}

/// The employee a termination's result is about: leaving by this leave, or revoked with its
/// grace period over (see `GraceOver`).
fn terminating_for<'a>(
    current: Option<&'a EmployeeRecord>,
    leave_event_id: &str,
    now: i64,
) -> Option<&'a EmployeeRecord> {
    leaving_for(current, leave_event_id).or(current.filter(|c| grace_over(c, leave_event_id, now)))
}

/// A restoring employee whose WorkSpace to give back is `workspace_id`, or one it was given back
/// to (active on it again).
fn restored_workspace<'a>(current: Option<&'a EmployeeRecord>, workspace_id: &str) -> Option<&'a EmployeeRecord> {
    current.filter(|c| {
        matches!(c.state, EmployeeState::Restoring | EmployeeState::Active)
            && c.workspace_id.as_deref() == Some(workspace_id)
    })
}

/// A restore overtaken by the termination of its WorkSpace (by `leave_event_id`): the rehire
/// (or the cancelled leave) waits for it to be gone, then gets a new WorkSpace of the record's
/// profile, as a rehire after a leave does.
fn lost_to_termination(n: &mut EmployeeRecord, leave_event_id: &str) {
    n.restore_event_id = None;
    n.leave_event_id = Some(leave_event_id.to_owned());
    n.rehire_pending = true;
    // The new WorkSpace is made with the record's profile: nothing left to move.
    n.moving = None;
}

fn restoring_for<'a>(current: Option<&'a EmployeeRecord>, restore_event_id: &str) -> Option<&'a EmployeeRecord> {
    current.filter(|c| c.state == EmployeeState::Restoring && c.restore_event_id.as_deref() == Some(restore_event_id))
}

/// The restore id when a revoke lands after the restore completed (no rehire or cancel left to
/// key it by).
pub const RESTORE_PREFIX: &str = "restore-";

fn access_revoked(current: Option<&EmployeeRecord>, leave_event_id: &str, workspace_id: &str, now: i64) -> Decision {
    let Some(c) = current else { return Decision::note("access revoked for an unknown employee", vec![]) };
    if let Some(c) = leaving_for(current, leave_event_id) {
        let next = stamp(c, now, |n| {
            n.state = EmployeeState::Revoked;
            n.workspace_id = Some(workspace_id.to_owned());
            n.access_revoked_ms = Some(now);
        });
        let until = c.grace_until_ms.map(Timestamp::from_millis).map(|t| t.to_string()).unwrap_or_default();
        return Decision::note(format!("access revoked; terminated after {until}"), vec![save(c, next)]);
    }
    // The revoke raced a restore (decided after the terminator read the leave): the WorkSpace the
    // employee should have is un-loggable now, so it is given back again.
    let ours = c.workspace_id.as_deref() == Some(workspace_id);
    match c.state {
        EmployeeState::Restoring if ours => Decision::note(
            "access revoked after the restore was decided: restore requested again",
            outstanding(c, now).into_iter().collect(),
        ),
        EmployeeState::Active if ours => {
            let next = stamp(c, now, |n| {
                n.state = EmployeeState::Restoring;
                n.restore_event_id = Some(format!("{RESTORE_PREFIX}{leave_event_id}"));
            });
            Decision::note(
                "access revoked after the restore: restore requested again",
                with_outstanding(save(c, next.clone()), &next, now),
            )
        }
        _ => Decision::note("access revoked for a leave no longer wanted", vec![]),
    }
}

/// The request of a WorkSpace in place of `workspace_id`, lost behind the pipeline's back: one
/// id per lost WorkSpace, so the audits that find it (and their retries) ask for one WorkSpace.
pub fn lost_request_id(workspace_id: &str) -> String {
    format!("{LOST_PREFIX}{workspace_id}")
}

/// The prefix of [`lost_request_id`].
pub const LOST_PREFIX: &str = "lost-";

/// The prefix of the id of a profile re-applied by the drift audit (followed by the audit time).
pub const REAPPLY_PREFIX: &str = "reapply-";

/// The record of a staying employee whose WorkSpace `gone` was lost behind the pipeline's back:
/// requested again, keyed by [`lost_request_id`], the lost one kept among the past WorkSpaces.
fn requested_in_place_of(n: &mut EmployeeRecord, gone: &str, now: i64) {
    n.state = EmployeeState::Requested;
    n.moving = None;
    n.request_event_id = Some(lost_request_id(gone));
    n.workspace_id = None;
    n.previous_workspaces.push(PastWorkspace { workspace_id: gone.to_owned(), terminated_ms: now });
    n.clocks = Default::default();
    n.failure_code = None;
    n.failure_message = None;
}

fn workspace_lost(current: Option<&EmployeeRecord>, workspace_id: &str, now: i64) -> Decision {
    let request_id = lost_request_id(workspace_id);
    match current {
        // Only the employee as the audit saw them: active on that WorkSpace, nothing under way.
        Some(c) if c.state == EmployeeState::Active && c.workspace_id.as_deref() == Some(workspace_id) => {
            let next = stamp(c, now, |n| {
                requested_in_place_of(n, workspace_id, now);
                n.move_note = None;
            });
            // A record without the join's details could not ask: left as it is, reported.
            let Some(request) = WorkspaceRequest::for_employee(&next, now) else {
                return Decision::note(
                    format!(
                        "WorkSpace {workspace_id} no longer exists, but the record lacks the user or profile to request another"
                    ),
                    vec![],
                );
            };
            // The request goes first, as a rehire's does: the provisioner holds it while the
            // record is not yet requested ([`request_status`]), and a crash before the write
            // leaves the employee active on the lost id, which the next audit finds again.
            Decision::note(
                format!("WorkSpace {workspace_id} no longer exists (drift audit): a new one requested"),
                vec![Step::RequestWorkspace(request), save(c, next)],
            )
        }
        Some(c)
            if c.state == EmployeeState::Requested && c.request_event_id.as_deref() == Some(request_id.as_str()) =>
        {
            Decision::note(
                format!("still waiting for the WorkSpace in place of {workspace_id}: requested again"),
                outstanding(c, now).into_iter().collect(),
            )
        }
        _ => Decision::note(format!("WorkSpace {workspace_id} no longer wanted in place of a lost one"), vec![]),
    }
}

/// Whether the record's last move was a re-apply of the drift audit that stopped short (its note
/// is the mover's `move <id> stopped: ...`).
fn reapply_stopped(c: &EmployeeRecord) -> bool {
    c.move_note.as_deref().is_some_and(|note| note.starts_with(&format!("move {REAPPLY_PREFIX}")))
}

fn reapply(current: Option<&EmployeeRecord>, event_id: &str, workspace_id: &str, now: i64) -> Decision {
    match current {
        // Once a re-apply has stopped short (the profile unreachable from this WorkSpace), the
        // audits leave it reported, not tried again daily: the note says why, until HR's next move.
        Some(c) if reapply_stopped(c) => Decision::note(
            format!(
                "re-applying the profile to {workspace_id}: not again, the last re-apply stopped ({})",
                c.move_note.as_deref().unwrap_or_default()
            ),
            vec![],
        ),
        Some(c)
            if c.state == EmployeeState::Active
                && c.moving.is_none()
                && c.workspace_id.as_deref() == Some(workspace_id)
                && c.profile.is_some() =>
        {
            let next = stamp(c, now, |n| {
                n.moving = Some(crate::domain::employee::MoveWork::new(event_id));
                n.state = EmployeeState::Moving;
                if n.clocks.launched_ms.is_none() {
                    n.clocks.launched_ms = Some(c.state_since_ms);
                }
            });
            let profile = c.profile_name.as_deref().unwrap_or("?");
            Decision::note(
                format!(
                    "WorkSpace {workspace_id} differs from profile {profile} (drift audit): the profile applied again"
                ),
                vec![save(c, next)],
            )
        }
        _ => Decision::note(format!("re-applying the profile to {workspace_id}: no longer wanted"), vec![]),
    }
}

/// Whether a WorkSpace request is still wanted by the employee as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    Wanted,
    /// A rehire's request sent just before the confirmation that makes it wanted was written (or
    /// a lost WorkSpace's, before the write that makes the employee requested).
    AheadOfConfirmation,
    /// Not wanted; `left` if the employee has left without a WorkSpace id known, in which case
    /// a WorkSpace a crashed attempt made may be theirs to terminate.
    Unwanted {
        left: bool,
    },
}

pub fn request_status(current: Option<&EmployeeRecord>, request_event_id: &str) -> RequestStatus {
    let Some(c) = current else { return RequestStatus::Unwanted { left: false } };
    let ours = c.request_event_id.as_deref() == Some(request_event_id);
    // A request for a lost WorkSpace, sent before the write that makes the employee requested.
    let lost_ahead = matches!(c.state, EmployeeState::Active | EmployeeState::Moving)
        && c.workspace_id.as_deref().is_some_and(|id| lost_request_id(id) == request_event_id);
    if c.state == EmployeeState::Requested && ours || moves::relocation_wants(c, request_event_id) {
        RequestStatus::Wanted
    } else if ours && c.rehire_pending && c.state.is_leaving() || lost_ahead {
        RequestStatus::AheadOfConfirmation
    } else {
        RequestStatus::Unwanted { left: has_left(c) && c.workspace_id.is_none() }
    }
}

/// The upgrade to user-name claims (`hrws claim-names`): a live employee's record, unchanged but
/// stamped, written with the claim of its user name. `None` for a record without a name.
pub fn claim_existing_name(current: &EmployeeRecord, now: i64) -> Option<Step> {
    let (Some(user_name), Some(profile)) = (&current.username, &current.profile) else { return None };
    let claim = NameClaim {
        directory_id: profile.directory_id.clone(),
        user_name: user_name.clone(),
        employee_id: current.employee_id.clone(),
        take_over_from: None,
    };
    let next = stamp(current, now, |_| {});
    Some(Step::Save { record: Box::new(next), expected_version: Some(current.version), claim: Some(claim) })
}

/// Whether a user name's holder has given it up: confirmed terminated and not being rehired.
pub fn releases_name(holder: Option<&EmployeeRecord>) -> bool {
    holder.is_none_or(|h| h.state == EmployeeState::Terminated && !h.rehire_pending)
}

/// Whether the employee wants no WorkSpace now: left, leaving, or failed (a WorkSpace made for an
/// earlier request of theirs, by an attempt that crashed before its write, is a stray).
fn has_left(c: &EmployeeRecord) -> bool {
    c.state.is_leaving() || matches!(c.state, EmployeeState::Terminated | EmployeeState::Failed)
}

/// The leave id a stray WorkSpace's termination is keyed by when the record has no leave (a
/// failed employee): the termination request and the record must name the same one.
pub const STRAY_PREFIX: &str = "stray-";

/// The leave id of the look-up a leaver's record asks once its WorkSpace is gone
/// (`sweep_when_gone`), followed by the leave's own.
pub const SWEEP_PREFIX: &str = "sweep-";

fn leaving_for<'a>(current: Option<&'a EmployeeRecord>, leave_event_id: &str) -> Option<&'a EmployeeRecord> {
    current.filter(|c| c.state == EmployeeState::Leaving && c.leave_event_id.as_deref() == Some(leave_event_id))
}

/// The one place a record changes: `change` says what, and the stamp follows: the version goes
/// up by one, `updated_ms` is now, and a change of state restarts `state_since_ms` and clears
/// the stuck flag.
fn stamp(current: &EmployeeRecord, now: i64, change: impl FnOnce(&mut EmployeeRecord)) -> EmployeeRecord {
    let mut next = current.clone();
    change(&mut next);
    next.version = current.version + 1;
    next.updated_ms = now;
    if next.state != current.state {
        next.state_since_ms = now;
        next.stuck_since_ms = None;
    }
    next
}

/// A record's first write.
fn first(employee_id: &str, now: i64, change: impl FnOnce(&mut EmployeeRecord)) -> EmployeeRecord {
    let mut next = EmployeeRecord::new(employee_id, now);
    change(&mut next);
    next.version = 1;
    next.updated_ms = now;
    next.state_since_ms = now;
    next
}

/// An event that changes nothing (a join for someone joined, a leave for someone leaving) is still
/// the latest word on the employee: recorded as such, so an older event that arrives after it (a
/// standard queue reorders) is stale. Without it, a rehire that overtook its own leave would be
/// skipped, then the older leave applied: the rehired person left without a WorkSpace.
fn latest(c: &EmployeeRecord, hr: &HrInput, now: i64) -> Vec<Step> {
    let next = stamp(c, now, |n| {
        n.last_event_ms = hr.occurred_ms;
        n.last_event_id = hr.event_id.clone();
    });
    with_outstanding(save(c, next.clone()), &next, now)
}

/// The request a record in `requested` or `leaving` is waiting on, asked again. A crash between
/// the write and the request loses it, and once a newer event is applied the redelivery of the
/// one that wrote it is stale: every later decision on the record asks again (both functions
/// drop a request that is no longer wanted, and act once on one that is).
fn outstanding(next: &EmployeeRecord, now: i64) -> Option<Step> {
    match next.state {
        EmployeeState::Requested => WorkspaceRequest::for_employee(next, now).map(Step::RequestWorkspace),
        EmployeeState::Leaving | EmployeeState::Restoring => {
            TerminationRequest::for_employee(next, now).map(Step::RequestTermination)
        }
        EmployeeState::Moving => moves::outstanding(next, now),
        _ => None,
    }
}

fn with_outstanding(save: Step, next: &EmployeeRecord, now: i64) -> Vec<Step> {
    let mut steps = vec![save];
    steps.extend(outstanding(next, now));
    steps
}

fn save(current: &EmployeeRecord, next: EmployeeRecord) -> Step {
    Step::Save { record: Box::new(next), expected_version: Some(current.version), claim: None }
}

fn save_new(next: EmployeeRecord) -> Step {
    Step::Save { record: Box::new(next), expected_version: None, claim: None }
}

fn hr_event(current: Option<&EmployeeRecord>, hr: &HrInput, now: i64) -> Decision {
    let mut decision = hr_event_itself(current, hr, now);
    // A record waiting in `requested` or `leaving` gets what it waits on asked again by any event
    // that asks for nothing itself (stale, a redelivered rehire): the request may have been lost
    // in a crash after the write that made it wait, and that event's redelivery may be stale now.
    let asks = decision.steps.iter().any(|s| {
        matches!(s, Step::Save { .. } | Step::RequestWorkspace(_) | Step::RequestTermination(_) | Step::Hold { .. })
    });
    if !asks && let Some(c) = current {
        decision.steps.extend(outstanding(c, now));
    }
    // Every join and leave applied or skipped is noted as seen (rescinding a leave needs the
    // employee's latest word without it): in the write the decision makes, or in one of its own.
    if matches!(hr.kind, HrKind::Move(_)) {
        // An applied move is noted with its write (a redelivery writes nothing).
        if matches!(decision.verdict, Verdict::Event(EventOutcome::Applied, _))
            && let Some(record) = decision.steps.iter_mut().find_map(|s| match s {
                Step::Save { record, .. } => Some(record),
                _ => None,
            })
        {
            record.note_moved(hr.occurred_ms, &hr.event_id);
        }
        return decision;
    }
    if matches!(decision.verdict, Verdict::Event(EventOutcome::Applied | EventOutcome::Skipped, _)) {
        let join = matches!(hr.kind, HrKind::Join(_));
        let note = |n: &mut EmployeeRecord| {
            // A record from before events were noted: its join is the first one seen.
            if n.seen.is_empty()
                && let Some(c) = current.filter(|c| c.request_event_id.as_ref() == Some(&c.last_event_id))
            {
                n.note_seen(c.last_event_ms, &c.last_event_id, true);
            }
            n.note_seen(hr.occurred_ms, &hr.event_id, join);
        };
        match decision.steps.iter_mut().find_map(|s| match s {
            Step::Save { record, .. } => Some(record),
            _ => None,
        }) {
            Some(record) => note(record),
            None => {
                if let Some(c) = current.filter(|c| !c.has_seen(&hr.event_id)) {
                    decision.steps.insert(0, save(c, stamp(c, now, note)));
                }
            }
        }
    }
    decision
}

/// `hr` occurred before the `what` (an event, or a move) already applied.
fn stale(hr: &HrInput, what: &str, applied_id: &str, applied_ms: i64) -> Decision {
    Decision::event(
        EventOutcome::Skipped,
        format!(
            "stale: occurred at {} but {what} {applied_id} from {} was already applied",
            Timestamp::from_millis(hr.occurred_ms),
            Timestamp::from_millis(applied_ms)
        ),
        vec![],
    )
}

fn hr_event_itself(current: Option<&EmployeeRecord>, hr: &HrInput, now: i64) -> Decision {
    if let Some(c) = current
        && c.rescinded_event_id.as_deref() == Some(hr.event_id.as_str())
    {
        // Applied, then rescinded by a cancel before its own line was written (a crash): the
        // redelivery must not apply it again.
        return Decision::event(
            EventOutcome::Skipped,
            format!("leave {} was rescinded by a cancel", hr.event_id),
            vec![],
        );
    }
    // A move the record shows applied (its line lost to a crash) is not judged again: a join or
    // leave applied since would make its redelivery look stale.
    let applied_move = current.is_some_and(|c| c.moved_by(&hr.event_id));
    if let Some(c) = current
        && c.last_event_id != hr.event_id
        && !applied_move
        && (c.order_ms(hr.clock_skew_ms), c.last_event_id.as_str()) > (hr.occurred_ms, hr.event_id.as_str())
    {
        return stale(hr, "event", &c.last_event_id, c.last_event_ms);
    }
    if let Some(effective) = hr.effective_ms
        && effective > now
    {
        return Decision::event(
            EventOutcome::Scheduled,
            format!("held until it takes effect at {}", Timestamp::from_millis(effective)),
            vec![Step::Hold { effective_ms: effective }],
        );
    }
    match &hr.kind {
        HrKind::Join(joiner) => join(current, hr, joiner.as_deref(), now),
        HrKind::Leave { disable_user, grace_ms } => leave(current, hr, *disable_user, *grace_ms, now),
        HrKind::Move(mover) => moves::move_event(current, hr, mover.as_deref(), now),
    }
}

/// The join's record: the joiner's details, the request it makes, the event it applies.
fn joined(base: EmployeeRecord, hr: &HrInput, joiner: &Joiner, rehire: bool) -> EmployeeRecord {
    let mut next = base;
    next.last_event_ms = hr.occurred_ms;
    next.last_event_id = hr.event_id.clone();
    next.username = Some(joiner.user.user_name.clone());
    next.given_name = Some(joiner.user.given_name.clone());
    next.surname = Some(joiner.user.surname.clone());
    next.email = Some(joiner.user.email.clone());
    // A move that occurred after this join but was applied before it arrived (a standard queue
    // reorders; HR sends late) is the later word on the WorkSpace: its profile stands (in the
    // same directory; a move never changes that).
    let moved_later = next
        .last_move
        .as_ref()
        .is_some_and(|m| (m.occurred_ms, m.event_id.as_str()) > (hr.occurred_ms, hr.event_id.as_str()))
        && next.profile.as_ref().is_some_and(|p| p.directory_id == joiner.profile.directory_id);
    if !moved_later {
        next.department = joiner.department.clone();
        next.profile_name = Some(joiner.profile_name.clone());
        next.profile = Some(joiner.profile.clone());
    }
    next.request_event_id = Some(hr.event_id.clone());
    next.failure_code = None;
    next.failure_message = None;
    if rehire {
        // The previous WorkSpace must be gone first: its confirmation sends the request. One
        // kept for a grace period (another directory or user name: not given back) goes now.
        next.rehire_pending = true;
        next.grace_until_ms = None;
        if next.state == EmployeeState::Revoked {
            next.state = EmployeeState::Leaving;
        }
    } else {
        next.state = EmployeeState::Requested;
        next.workspace_id = None;
        next.leave_event_id = None;
        next.terminate_requested_ms = None;
        next.terminated_ms = None;
        next.rehire_pending = false;
        next.moving = None;
        next.move_note = None;
        next.clocks = Default::default();
    }
    next
}

fn join(current: Option<&EmployeeRecord>, hr: &HrInput, joiner: Result<&Joiner, &String>, now: i64) -> Decision {
    let mut rehire = false;
    if let Some(c) = current {
        let resuming = c.request_event_id.as_deref() == Some(hr.event_id.as_str());
        match c.state {
            EmployeeState::Requested if resuming => {
                // A previous attempt wrote the record; make sure the request went out.
                return match WorkspaceRequest::for_employee(c, now) {
                    Some(request) => Decision::event(
                        EventOutcome::Applied,
                        "WorkSpace requested",
                        vec![Step::RequestWorkspace(request)],
                    ),
                    None => Decision::event(EventOutcome::Rejected, "the record lacks the joiner's details", vec![]),
                };
            }
            EmployeeState::Leaving | EmployeeState::Terminating if resuming && c.rehire_pending => {
                return Decision::event(EventOutcome::Applied, REHIRE_WAITS, vec![]);
            }
            EmployeeState::Restoring if c.restore_event_id.as_deref() == Some(hr.event_id.as_str()) => {
                return Decision::event(EventOutcome::Applied, RESTORING, restore_steps(c, now));
            }
            EmployeeState::Leaving | EmployeeState::Revoked if in_grace(c) => {
                if let Ok(joiner) = joiner
                    && restorable(c, joiner)
                {
                    return restore_for_rehire(c, hr, joiner, now);
                }
                rehire = true;
            }
            EmployeeState::Requested
            | EmployeeState::Pending
            | EmployeeState::Active
            | EmployeeState::Restoring
            | EmployeeState::Moving => {
                return Decision::event(
                    EventOutcome::Skipped,
                    format!(
                        "already joined: employee is {} (event {})",
                        c.state.as_str(),
                        c.request_event_id.as_deref().unwrap_or("?")
                    ),
                    latest(c, hr, now),
                );
            }
            EmployeeState::Leaving | EmployeeState::Terminating | EmployeeState::Revoked => rehire = true,
            // A new join retries a failed onboarding, or rehires after a confirmed termination.
            EmployeeState::Failed | EmployeeState::Terminated => {}
        }
    }
    let joiner = match joiner {
        Ok(j) => j,
        Err(why) => return Decision::event(EventOutcome::Rejected, why.clone(), vec![]),
    };
    let directory_id = &joiner.profile.directory_id;
    let take_over_from = match &joiner.name {
        NameStatus::Free => None,
        NameStatus::Releasable { holder, version } => Some((holder.clone(), *version)),
        NameStatus::Held { holder } => {
            return Decision::event(
                EventOutcome::Rejected,
                name_held(&joiner.user.user_name, directory_id, holder),
                vec![],
            );
        }
    };
    let next = match current {
        Some(c) => stamp(c, now, |n| {
            *n = joined(n.clone(), hr, joiner, rehire);
            if !rehire {
                n.user_disabled = false;
            }
        }),
        None => first(&hr.employee_id, now, |n| *n = joined(n.clone(), hr, joiner, false)),
    };
    let claim = NameClaim {
        directory_id: directory_id.clone(),
        user_name: joiner.user.user_name.clone(),
        employee_id: hr.employee_id.clone(),
        take_over_from,
    };
    let mut steps = vec![Step::EnsureUser(joiner.user.clone())];
    if let Some(c) = current.filter(|c| c.user_disabled && !rehire) {
        // No WorkSpace is left to reach: enabling first is safe, and a redelivery of the join
        // (which only sends the request again) never needs to.
        steps.extend(enable_user(c));
    }
    steps.push(Step::Save {
        record: Box::new(next.clone()),
        expected_version: current.map(|c| c.version),
        claim: Some(claim),
    });
    if rehire {
        // The termination under way is asked again: its request may have been lost in a crash
        // after the leave's write, and the leave's own redelivery is now stale.
        steps.extend(outstanding(&next, now));
        return Decision::event(EventOutcome::Applied, REHIRE_WAITS, steps);
    }
    if let Some(request) = WorkspaceRequest::for_employee(&next, now) {
        steps.push(Step::RequestWorkspace(request));
    }
    Decision::event(EventOutcome::Applied, format!("WorkSpace requested with profile {}", joiner.profile_name), steps)
}

fn user_refused(current: Option<&EmployeeRecord>, hr: &HrInput, code: &str, message: &str, now: i64) -> Decision {
    let HrKind::Join(Ok(joiner)) = &hr.kind else {
        return Decision::event(EventOutcome::Rejected, format!("directory user not created: {message}"), vec![]);
    };
    let rehire = current.is_some_and(|c| c.state.is_leaving());
    // A WorkSpace the employee still has (one in ERROR after a failed onboarding) stays on the
    // record: a later leave terminates it, and it is never left behind untracked.
    let kept_workspace = current.and_then(|c| c.workspace_id.clone());
    // A refused rehire leaves the leave as it was (its grace period included).
    let kept_leave = current.map(|c| (c.state, c.grace_until_ms));
    let refuse = |n: &mut EmployeeRecord| {
        *n = joined(n.clone(), hr, joiner, rehire);
        n.workspace_id = kept_workspace.clone();
        if let (true, Some((state, grace))) = (rehire, kept_leave) {
            n.state = state;
            n.grace_until_ms = grace;
        }
        if !rehire {
            n.state = EmployeeState::Failed;
        }
        n.rehire_pending = false;
        n.request_event_id = None;
        n.failure_code = Some(code.to_owned());
        n.failure_message = Some(message.to_owned());
    };
    let step = match current {
        Some(c) => save(c, stamp(c, now, refuse)),
        None => save_new(first(&hr.employee_id, now, refuse)),
    };
    Decision::event(EventOutcome::Rejected, format!("directory user not created: {message}"), vec![step])
}

fn leave(current: Option<&EmployeeRecord>, hr: &HrInput, disable_user: bool, grace_ms: i64, now: i64) -> Decision {
    let Some(c) = current else {
        // Nothing to terminate; the record makes an older join that arrives later stale.
        let next = first(&hr.employee_id, now, |n| {
            n.state = EmployeeState::Terminated;
            n.last_event_ms = hr.occurred_ms;
            n.last_event_id = hr.event_id.clone();
            n.leave_event_id = Some(hr.event_id.clone());
            n.terminated_ms = Some(now);
        });
        return Decision::event(
            EventOutcome::Applied,
            "no WorkSpace to terminate: the employee never joined",
            vec![save_new(next)],
        );
    };
    let resuming = c.leave_event_id.as_deref() == Some(hr.event_id.as_str());
    let applying = |n: &mut EmployeeRecord| {
        n.last_event_ms = hr.occurred_ms;
        n.last_event_id = hr.event_id.clone();
        n.leave_event_id = Some(hr.event_id.clone());
    };
    let (state, reason) = match c.state {
        EmployeeState::Leaving if resuming => {
            let steps = TerminationRequest::for_employee(c, now).map(Step::RequestTermination).into_iter().collect();
            return Decision::event(EventOutcome::Applied, leave_reason(c), steps);
        }
        EmployeeState::Revoked if resuming => {
            return Decision::event(EventOutcome::Applied, leave_reason(c), vec![]);
        }
        EmployeeState::Leaving | EmployeeState::Terminating if c.rehire_pending => {
            // The termination under way is the earlier leave's: it keeps its id, which the
            // termination request in flight carries.
            let next = stamp(c, now, |n| {
                n.last_event_ms = hr.occurred_ms;
                n.last_event_id = hr.event_id.clone();
                n.rehire_pending = false;
                n.request_event_id = None;
            });
            return Decision::event(
                EventOutcome::Applied,
                "pending rehire withdrawn; the termination goes on",
                with_outstanding(save(c, next.clone()), &next, now),
            );
        }
        EmployeeState::Leaving | EmployeeState::Terminating | EmployeeState::Terminated | EmployeeState::Revoked => {
            return Decision::event(
                EventOutcome::Skipped,
                format!("already {}: leave {} applied", c.state.as_str(), c.leave_event_id.as_deref().unwrap_or("?")),
                latest(c, hr, now),
            );
        }
        EmployeeState::Failed if c.workspace_id.is_none() => {
            (EmployeeState::Terminated, "no WorkSpace to terminate: onboarding had failed")
        }
        EmployeeState::Requested
        | EmployeeState::Pending
        | EmployeeState::Active
        | EmployeeState::Restoring
        | EmployeeState::Moving
        | EmployeeState::Failed => (EmployeeState::Leaving, "termination requested"),
    };
    // A migration or a relocation under way: both WorkSpaces go (this one now, the other once
    // this one is confirmed gone), without a grace period: a WorkSpace being migrated cannot be
    // put in ADMIN_MAINTENANCE (WORKSPACES-FACTS §2), and two are not kept for one leaver.
    let other = c.moving.as_ref().filter(|m| m.other_workspace().is_some()).cloned();
    // Only a WorkSpace that has been AVAILABLE holds anything of the user's worth keeping.
    let keeps = grace_ms > 0
        && matches!(c.state, EmployeeState::Active | EmployeeState::Restoring | EmployeeState::Moving)
        && c.workspace_id.is_some()
        && other.is_none();
    // The user in the WorkSpace's directory, and in those a move to another directory left.
    let disable: Vec<Step> = match (&c.profile, &c.username) {
        (Some(profile), Some(user)) if disable_user => std::iter::once(&profile.directory_id)
            .chain(c.former_directories.iter().filter(|d| **d != profile.directory_id))
            .map(|directory_id| Step::DisableUser { directory_id: directory_id.clone(), user_name: user.clone() })
            .collect(),
        _ => Vec::new(),
    };
    let next = stamp(c, now, |n| {
        applying(n);
        n.state = state;
        if state == EmployeeState::Terminated {
            n.terminated_ms = Some(now);
        }
        n.stuck_since_ms = None;
        n.restore_event_id = None;
        n.grace_note = None;
        n.held_since_ms = None;
        n.hold_reason = None;
        n.guard_released = false;
        n.grace_until_ms = keeps.then(|| now.saturating_add(grace_ms));
        n.user_disabled |= !disable.is_empty();
        n.sweep_when_gone = c.moving.is_some() && other.is_none();
        n.moving = other.clone();
    });
    let reason = if state == EmployeeState::Leaving { leave_reason(&next) } else { reason.to_owned() };
    let mut steps: Vec<Step> = disable;
    let termination = (state == EmployeeState::Leaving).then(|| TerminationRequest::for_employee(&next, now)).flatten();
    steps.push(save(c, next));
    steps.extend(termination.map(Step::RequestTermination));
    Decision::event(EventOutcome::Applied, reason, steps)
}

/// What a leave does, as its history line says.
fn leave_reason(c: &EmployeeRecord) -> String {
    match c.grace_until_ms {
        Some(until) => {
            format!("access revoked; the WorkSpace is kept until {} and terminated then", Timestamp::from_millis(until))
        }
        None => "termination requested".to_owned(),
    }
}

/// A leave within its grace period: access revoked (or being revoked), the WorkSpace kept.
fn in_grace(c: &EmployeeRecord) -> bool {
    (c.grace_until_ms.is_some() || c.held_since_ms.is_some())
        && c.workspace_id.is_some()
        && matches!(c.state, EmployeeState::Leaving | EmployeeState::Revoked)
}

/// A rehire gets the kept WorkSpace back if it would ask for one in the same directory under the
/// same user name; otherwise the kept one is terminated and a new one made.
fn restorable(c: &EmployeeRecord, joiner: &Joiner) -> bool {
    let same_directory = c.profile.as_ref().is_some_and(|p| p.directory_id == joiner.profile.directory_id);
    let same_name = c.username.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(&joiner.user.user_name));
    same_directory && same_name && matches!(joiner.name, NameStatus::Free)
}

pub const RESTORING: &str = "within the grace period: the same WorkSpace is given back";

/// The steps that give a kept WorkSpace back, after the write that makes the employee
/// `restoring`: the directory user enabled (if the leave disabled it), then the request.
fn restore_steps(next: &EmployeeRecord, now: i64) -> Vec<Step> {
    let mut steps = Vec::new();
    if next.user_disabled {
        steps.extend(enable_user(next));
    }
    steps.extend(outstanding(next, now));
    steps
}

fn enable_user(c: &EmployeeRecord) -> Option<Step> {
    let (profile, user) = (c.profile.as_ref()?, c.username.as_ref()?);
    Some(Step::EnableUser { directory_id: profile.directory_id.clone(), user_name: user.clone() })
}

fn restoring(n: &mut EmployeeRecord, restore_event_id: &str) {
    n.held_since_ms = None;
    n.hold_reason = None;
    n.guard_released = false;
    n.state = EmployeeState::Restoring;
    n.restore_event_id = Some(restore_event_id.to_owned());
    // A move the leave interrupted: the WorkSpace given back is checked against the profile.
    if n.last_move.is_some() && n.moving.is_none() {
        n.moving = Some(crate::domain::employee::MoveWork::new(restore_event_id));
    }
    n.leave_event_id = None;
    n.grace_until_ms = None;
    n.rehire_pending = false;
}

fn restore_for_rehire(c: &EmployeeRecord, hr: &HrInput, joiner: &Joiner, now: i64) -> Decision {
    let next = stamp(c, now, |n| {
        *n = joined(n.clone(), hr, joiner, false);
        restoring(n, &hr.event_id);
        n.workspace_id = c.workspace_id.clone();
        n.clocks = c.clocks;
        // The rehire asks for another profile in the same directory: the WorkSpace given back
        // is then changed to it, as a move.
        if c.profile != n.profile {
            n.moving = Some(crate::domain::employee::MoveWork::new(&hr.event_id));
        }
    });
    let claim = NameClaim {
        directory_id: joiner.profile.directory_id.clone(),
        user_name: joiner.user.user_name.clone(),
        employee_id: hr.employee_id.clone(),
        take_over_from: None,
    };
    // Written before the user is enabled and the WorkSpace given back: should the write fail, no
    // leaver is given access.
    let mut steps = vec![
        Step::EnsureUser(joiner.user.clone()),
        Step::Save { record: Box::new(next.clone()), expected_version: Some(c.version), claim: Some(claim) },
    ];
    steps.extend(restore_steps(&next, now));
    Decision::event(EventOutcome::Applied, format!("rehired {RESTORING}"), steps)
}

/// A cancel of a held event does not touch the record; `held` is whether the intake found its
/// target held and withdrew it (marking it first, so that a crash in between is recognised: see
/// `services::intake::cancel`). A cancel of a leave within its grace period, still the latest
/// word on the employee, gives the kept WorkSpace back.
fn cancel(current: Option<&EmployeeRecord>, event_id: &str, target: Option<&str>, held: bool, now: i64) -> Decision {
    let Some(target) = target else {
        return Decision::event(EventOutcome::Rejected, "cancels is required", vec![]);
    };
    if held {
        return Decision::event(EventOutcome::Applied, format!("cancelled {target} before it took effect"), vec![]);
    }
    let Some(c) = current else { return nothing_to_cancel(target) };
    if c.state == EmployeeState::Restoring && c.restore_event_id.as_deref() == Some(event_id) {
        return Decision::event(
            EventOutcome::Applied,
            format!("leave {target} rescinded: {RESTORING}"),
            restore_steps(c, now),
        );
    }
    if c.leave_event_id.as_deref() != Some(target) {
        return nothing_to_cancel(target);
    }
    if !in_grace(c) {
        let why = match c.state {
            EmployeeState::Leaving | EmployeeState::Terminating | EmployeeState::Terminated => {
                "its WorkSpace is being terminated or gone (a termination cannot be undone)"
            }
            _ => "it kept no WorkSpace",
        };
        return Decision::event(EventOutcome::Rejected, format!("too late to cancel leave {target}: {why}"), vec![]);
    }
    if c.last_event_id != target {
        return Decision::event(
            EventOutcome::Rejected,
            format!("leave {target} is no longer the latest event ({} followed it): cancel that one", c.last_event_id),
            vec![],
        );
    }
    // Without the leave, the employee's latest word is the latest other event seen: a join gives
    // the WorkSpace back; another leave (one skipped as older, say) keeps it revoked.
    let rescinded = c.rescinded_event_id.as_deref();
    let before =
        c.seen.iter().rev().find(|e| !e.moved && e.event_id != target && Some(e.event_id.as_str()) != rescinded);
    let Some(join) = before.filter(|e| e.join) else {
        let why =
            before.map_or("no join of theirs is known".to_owned(), |l| format!("leave {} also stands", l.event_id));
        return Decision::event(
            EventOutcome::Rejected,
            format!(
                "cancelling leave {target} gives nothing back: {why}; the WorkSpace stays revoked (a join within the grace period gives it back)"
            ),
            vec![],
        );
    };
    let next = stamp(c, now, |n| {
        restoring(n, event_id);
        n.rescinded_event_id = Some(target.to_owned());
        // The leave never happened: later events are ordered against that join, so a leave that
        // occurred after it and arrives later still applies.
        n.last_event_ms = join.occurred_ms;
        n.last_event_id = join.event_id.clone();
    });
    let mut steps = vec![save(c, next.clone())];
    steps.extend(restore_steps(&next, now));
    Decision::event(EventOutcome::Applied, format!("leave {target} rescinded: {RESTORING}"), steps)
}

fn nothing_to_cancel(target: &str) -> Decision {
    Decision::event(
        EventOutcome::Rejected,
        format!("nothing to cancel: {target} is not waiting to take effect (already applied, cancelled or unknown)"),
        vec![],
    )
}

fn created(
    current: Option<&EmployeeRecord>,
    request_event_id: &str,
    workspace_id: &str,
    state: &WorkspaceState,
    now: i64,
) -> Decision {
    let Some(c) = current else { return Decision::note("WorkSpace created for an unknown employee", vec![]) };
    match request_status(Some(c), request_event_id) {
        RequestStatus::Wanted => {
            let next = stamp(c, now, |n| {
                n.state = match state {
                    WorkspaceState::Available if n.moving.is_some() => EmployeeState::Moving,
                    WorkspaceState::Available => EmployeeState::Active,
                    _ => EmployeeState::Pending,
                };
                n.workspace_id = Some(workspace_id.to_owned());
                n.clocks = crate::domain::employee::WorkspaceClocks { launched_ms: Some(now), ..Default::default() };
            });
            Decision::note(format!("WorkSpace {workspace_id} created ({state})"), vec![save(c, next)])
        }
        // Created after the leave (a relocation's request among them), or for an earlier request
        // of someone who wants none now (found on a redelivery after a crash that followed the
        // create): the WorkSpace is attached and its termination asked.
        RequestStatus::Unwanted { .. } => made_after_leave(c, workspace_id, request_event_id, now)
            .unwrap_or_else(|| no_longer_wanted(c, workspace_id)),
        // A rehire's, ahead of the confirmation that makes it wanted: the provisioner asks again.
        RequestStatus::AheadOfConfirmation => no_longer_wanted(c, workspace_id),
    }
}

fn no_longer_wanted(c: &EmployeeRecord, workspace_id: &str) -> Decision {
    Decision::note(
        format!("WorkSpace {workspace_id} created for a request no longer wanted (employee is {})", c.state.as_str()),
        vec![],
    )
}

/// A WorkSpace made for someone who has left (created after the leave, or by a migration or a
/// relocation asked just before it, whose answer comes after): attached and terminated, so no
/// leaver keeps one and none is left behind. With no WorkSpace on the record, it becomes the one
/// the leave terminates; with one being terminated, it is terminated next (as a migration's),
/// and the grace period, if any, ends: a leaver is not left with a WorkSpace to log into.
/// `None`: not a leaver's, or already theirs.
pub(super) fn made_after_leave(c: &EmployeeRecord, workspace_id: &str, key: &str, now: i64) -> Option<Decision> {
    if !has_left(c) || c.workspace_id.as_deref() == Some(workspace_id) {
        return None;
    }
    if c.workspace_id.is_none() {
        let next = stamp(c, now, |n| {
            n.workspace_id = Some(workspace_id.to_owned());
            n.state = EmployeeState::Leaving;
            n.terminated_ms = None;
            if n.leave_event_id.is_none() {
                n.leave_event_id = Some(format!("{STRAY_PREFIX}{workspace_id}"));
            }
        });
        let termination = TerminationRequest::for_employee(&next, now);
        let mut steps = vec![save(c, next)];
        steps.extend(termination.map(Step::RequestTermination));
        return Some(Decision::note(
            format!("WorkSpace {workspace_id} created after the leave: termination requested"),
            steps,
        ));
    }
    let other = c.moving.as_ref().and_then(|m| m.other_workspace());
    if other == Some(workspace_id) {
        return Some(Decision::note(format!("WorkSpace {workspace_id} is terminated after the leave's"), vec![]));
    }
    // A failed record is not followed to a second WorkSpace, nor is a third one: the drift audit's.
    if other.is_some() || !c.state.is_leaving() {
        return None;
    }
    let next = stamp(c, now, |n| {
        n.moving = Some(crate::domain::employee::MoveWork {
            migrating_to: Some(workspace_id.to_owned()),
            ..crate::domain::employee::MoveWork::new(key)
        });
        if n.grace_until_ms.take().is_some() {
            n.grace_note = Some(format!("WorkSpace {workspace_id} was made as the leave came: no grace period"));
        }
    });
    Some(Decision::note(
        format!("WorkSpace {workspace_id} made as the leave came: terminated after the leave's"),
        with_outstanding(save(c, next.clone()), &next, now),
    ))
}

/// The WorkSpace is confirmed gone (or there was none): terminated, or a waiting rehire's
/// WorkSpace is requested, the request before the write.
fn confirmed_gone(c: &EmployeeRecord, now: i64, why: &str) -> Decision {
    if let Some(decision) = moves::migration_left_behind(c, now) {
        return decision;
    }
    if c.sweep_when_gone {
        return sweep(c, now, why);
    }
    let next = stamp(c, now, |n| {
        n.state = EmployeeState::Terminated;
        n.terminated_ms = Some(now);
        n.grace_until_ms = None;
        n.access_revoked_ms = None;
        if let Some(id) = n.workspace_id.take() {
            n.previous_workspaces.push(PastWorkspace { workspace_id: id, terminated_ms: now });
        }
        if n.rehire_pending {
            n.state = EmployeeState::Requested;
            n.rehire_pending = false;
            n.leave_event_id = None;
            n.terminate_requested_ms = None;
        }
    });
    if next.state == EmployeeState::Requested
        && let Some(request) = WorkspaceRequest::for_employee(&next, now)
    {
        return Decision::note(
            format!("{why}; rehire: WorkSpace requested"),
            vec![Step::RequestWorkspace(request), save(c, next)],
        );
    }
    Decision::note(why.to_owned(), vec![save(c, next)])
}

/// The leave's WorkSpace is gone, but a move under way at the leave may have made another one
/// the record never learnt of: the user name's WorkSpace, if any, is terminated too (the
/// terminator looks it up by name, and only if the name is this employee's).
fn sweep(c: &EmployeeRecord, now: i64, why: &str) -> Decision {
    let next = stamp(c, now, |n| {
        if let Some(from) = n.workspace_id.take() {
            n.previous_workspaces.push(PastWorkspace { workspace_id: from, terminated_ms: now });
        }
        n.sweep_when_gone = false;
        n.state = EmployeeState::Leaving;
        n.terminate_requested_ms = None;
        n.grace_until_ms = None;
        let leave = n.leave_event_id.take().unwrap_or_default();
        n.leave_event_id = Some(format!("{SWEEP_PREFIX}{leave}"));
    });
    // Asked before the write, as a rehire's request is: a crash between them would otherwise
    // leave the record leaving with nothing asked (a request the write did not follow is dropped
    // by the terminator, and the next observation asks again).
    let mut steps: Vec<Step> =
        TerminationRequest::for_employee(&next, now).map(Step::RequestTermination).into_iter().collect();
    steps.push(save(c, next));
    Decision::note(
        format!("{why}; a move was under way: any other WorkSpace of the user name is looked up and terminated"),
        steps,
    )
}

fn observed(
    current: Option<&EmployeeRecord>,
    workspace_id: &str,
    seen: &Seen,
    stuck_after_ms: i64,
    now: i64,
) -> Decision {
    let Some(c) = current.filter(|c| c.state.needs_watching() && c.workspace_id.as_deref() == Some(workspace_id))
    else {
        return Decision::note("no longer watched", vec![]);
    };
    match (c.state, seen) {
        (EmployeeState::Pending, Seen::State(WorkspaceState::Available)) => {
            // A move applied while it was being created: changed to the move's profile next.
            let next = stamp(c, now, |n| {
                n.state = if n.moving.is_some() { EmployeeState::Moving } else { EmployeeState::Active };
            });
            Decision::note("AVAILABLE", vec![save(c, next)])
        }
        (EmployeeState::Pending, Seen::Error { code, message }) => {
            let next = stamp(c, now, |n| {
                n.state = EmployeeState::Failed;
                n.failure_code = Some(code.clone().unwrap_or_else(|| "ERROR".into()));
                n.failure_message = Some(message.clone().unwrap_or_default());
            });
            Decision::note("ERROR", vec![save(c, next)])
        }
        // Kept for its grace period: `GraceOver` ends it, not an observation.
        (EmployeeState::Revoked, _) => Decision::note("access revoked, within the grace period", vec![]),
        // Absent only counts once termination was asked; a new id can be missing briefly.
        (EmployeeState::Terminating, Seen::Gone) if c.terminate_requested_ms.is_some() => {
            confirmed_gone(c, now, "confirmed terminated")
        }
        (state, _) => {
            if now - c.state_since_ms <= stuck_after_ms || c.stuck_since_ms.is_some() {
                let stuck = c.stuck_since_ms.is_some();
                return Decision::note(if stuck { STILL_STUCK } else { STILL_WAITING }, vec![]);
            }
            let next = stamp(c, now, |n| n.stuck_since_ms = Some(now));
            Decision::note(format!("{STUCK}: {} past its deadline", state.as_str()), vec![save(c, next)])
        }
    }
}

pub const STILL_WAITING: &str = "still waiting";
pub const STILL_STUCK: &str = "stuck, already flagged";
pub const STUCK: &str = "stuck";

/// Why a join is refused when its user name belongs to another employee.
fn name_held(user_name: &str, directory_id: &str, holder: &str) -> String {
    format!(
        "employee.username {} is held by employee {holder} in directory {directory_id} [name-held]: a user name has one owner until that employee is confirmed terminated (a re-keyed person: send the leave of the old employee_id first)",
        validation::echo(user_name)
    )
}

#[cfg(test)]
mod tests;
