//! The transition table, one GIVEN/WHEN/THEN per cell that matters.

use super::*;
use crate::domain::employee::EmployeeState::{self, *};

const NOW: i64 = 1_000_000_000;
const DIR: &str = "d-1234567890";

fn profile() -> Profile {
    serde_json::from_value(serde_json::json!({ "directory_id": DIR, "bundle_id": "wsb-12345678" })).unwrap()
}

/// An employee who joined with `j1` as `jdoe`, now in `state`, last written at version 3.
fn employee(state: EmployeeState) -> EmployeeRecord {
    let mut e = EmployeeRecord::new("E1", NOW - 10_000);
    e.state = state;
    e.version = 3;
    e.last_event_id = "j1".into();
    e.last_event_ms = NOW - 10_000;
    e.username = Some("jdoe".into());
    e.given_name = Some("J".into());
    e.surname = Some("Doe".into());
    e.email = Some("jdoe@example.com".into());
    e.profile_name = Some("standard".into());
    e.profile = Some(profile());
    e.request_event_id = Some("j1".into());
    e.note_seen(NOW - 10_000, "j1", true);
    if matches!(state, Pending | Active | Terminating) {
        e.workspace_id = Some("ws-1".into());
    }
    if state.is_leaving() || state == Terminated {
        e.leave_event_id = Some("l1".into());
        e.last_event_id = "l1".into();
        e.note_seen(NOW - 10_000, "l1", false);
    }
    if state == Terminating {
        e.terminate_requested_ms = Some(NOW - 5_000);
    }
    e
}

fn joiner(name: NameStatus) -> Joiner {
    Joiner {
        user: NewUser {
            directory_id: DIR.into(),
            user_name: "jdoe".into(),
            given_name: "J".into(),
            surname: "Doe".into(),
            email: "jdoe@example.com".into(),
            client_token: "hr-x".into(),
        },
        department: None,
        profile_name: "standard".into(),
        profile: profile(),
        name,
    }
}

fn hr(event_id: &str, kind: HrKind) -> HrInput {
    HrInput {
        employee_id: "E1".into(),
        event_id: event_id.into(),
        occurred_ms: NOW - 1_000,
        effective_ms: None,
        clock_skew_ms: 300_000,
        kind,
    }
}

fn join(event_id: &str) -> Input {
    Input::Hr(hr(event_id, HrKind::Join(Ok(Box::new(joiner(NameStatus::Free))))))
}

fn leave(event_id: &str) -> Input {
    Input::Hr(hr(event_id, HrKind::Leave { disable_user: true, grace_ms: 0 }))
}

fn outcome(d: &Decision) -> EventOutcome {
    match &d.verdict {
        Verdict::Event(outcome, _) => *outcome,
        Verdict::Note(note) => panic!("expected an event outcome, got the note {note}"),
    }
}

/// The steps by kind, in order.
fn kinds(d: &Decision) -> Vec<&'static str> {
    d.steps
        .iter()
        .map(|s| match s {
            Step::EnsureUser(_) => "ensure user",
            Step::DisableUser { .. } => "disable user",
            Step::EnableUser { .. } => "enable user",
            Step::Save { claim: Some(_), .. } => "save + name",
            Step::Save { .. } => "save",
            Step::RequestWorkspace(_) => "request WorkSpace",
            Step::RequestTermination(_) => "request termination",
            Step::Hold { .. } => "hold",
            Step::Unschedule { .. } => "unschedule",
            Step::Post(_) => "post",
            Step::Move(_) => "move call",
        })
        .collect()
}

fn saved(d: &Decision) -> &EmployeeRecord {
    d.saved().expect("the decision writes the record")
}

fn state_after(current: Option<&EmployeeRecord>, input: &Input) -> (Option<EmployeeState>, Vec<&'static str>) {
    let d = decide(current, input, NOW);
    (d.saved().map(|r| r.state), kinds(&d).into_iter().collect())
}

#[test]
fn a_new_joiner_gets_a_user_then_a_record_with_its_name_then_a_workspace_request() {
    // GIVEN no record WHEN a join arrives
    let d = decide(None, &join("j1"), NOW);
    // THEN the user is ensured, the record written with the name claim, then the WorkSpace asked
    assert_eq!(outcome(&d), EventOutcome::Applied);
    assert_eq!(kinds(&d), ["ensure user", "save + name", "request WorkSpace"]);
    let next = saved(&d);
    assert_eq!((next.state, next.version, next.state_since_ms, next.updated_ms), (Requested, 1, NOW, NOW));
    assert_eq!(next.request_event_id.as_deref(), Some("j1"));
}

#[test]
fn a_failed_or_terminated_employee_joining_again_starts_over_keeping_the_past() {
    for state in [Failed, Terminated] {
        let mut current = employee(state);
        current.previous_workspaces.push(PastWorkspace { workspace_id: "ws-0".into(), terminated_ms: 1 });
        let d = decide(Some(&current), &join("j2"), NOW);
        assert_eq!(kinds(&d), ["ensure user", "save + name", "request WorkSpace"], "{state:?}");
        let next = saved(&d);
        assert_eq!((next.state, next.version, next.workspace_id.as_deref()), (Requested, 4, None));
        assert_eq!(next.previous_workspaces.len(), 1);
        assert!(next.leave_event_id.is_none() && next.terminated_ms.is_none());
    }
}

#[test]
fn a_rehire_while_the_old_workspace_is_going_waits_for_its_confirmation() {
    for state in [Leaving, Terminating] {
        // GIVEN a leaver WHEN a new join arrives
        let d = decide(Some(&employee(state)), &join("j2"), NOW);
        // THEN the name and details are kept but no WorkSpace is asked for yet (a termination
        // still to be asked for is asked again: the leave's own redelivery is now stale)
        let mut steps = vec!["ensure user", "save + name"];
        if state == Leaving {
            steps.push("request termination");
        }
        assert_eq!(kinds(&d), steps, "{state:?}");
        let next = saved(&d);
        assert_eq!((next.state, next.rehire_pending), (state, true));
        assert_eq!(next.state_since_ms, NOW - 10_000, "the state did not change");
        assert!(matches!(&d.verdict, Verdict::Event(EventOutcome::Applied, r) if r == REHIRE_WAITS));
    }
}

#[test]
fn a_join_for_someone_already_joined_is_skipped_but_recorded_as_the_latest_event() {
    for state in [Requested, Pending, Active] {
        // GIVEN a joined employee WHEN a newer join arrives
        let d = decide(Some(&employee(state)), &join("j2"), NOW);
        // THEN nothing changes but which event is the latest: an older leave arriving later is stale
        let asks_again = if state == Requested { vec!["save", "request WorkSpace"] } else { vec!["save"] };
        assert_eq!((outcome(&d), kinds(&d)), (EventOutcome::Skipped, asks_again), "{state:?}");
        assert_eq!((saved(&d).state, saved(&d).last_event_id.as_str()), (state, "j2"));
        let mut older_leave = hr("l0", HrKind::Leave { disable_user: false, grace_ms: 0 });
        older_leave.occurred_ms = NOW - 2_000;
        let after = decide(Some(saved(&d)), &Input::Hr(older_leave), NOW);
        assert!(matches!(&after.verdict, Verdict::Event(EventOutcome::Skipped, r) if r.starts_with("stale")));
    }
}

#[test]
fn a_redelivered_join_whose_record_was_written_sends_its_request_again() {
    let d = decide(Some(&employee(Requested)), &join("j1"), NOW);
    assert_eq!((outcome(&d), kinds(&d)), (EventOutcome::Applied, vec!["request WorkSpace"]));
}

#[test]
fn a_join_for_a_name_another_employee_holds_is_rejected_and_changes_nothing() {
    let input = Input::Hr(hr("j1", HrKind::Join(Ok(Box::new(joiner(NameStatus::Held { holder: "E9".into() }))))));
    let d = decide(None, &input, NOW);
    assert_eq!((outcome(&d), kinds(&d).len()), (EventOutcome::Rejected, 0));
    assert!(matches!(&d.verdict, Verdict::Event(_, r) if r.contains("E9") && r.contains("[name-held]")));
}

#[test]
fn a_name_released_by_a_terminated_holder_is_taken_over_from_the_record_as_read() {
    let name = NameStatus::Releasable { holder: "E9".into(), version: Some(7) };
    let d = decide(None, &Input::Hr(hr("j1", HrKind::Join(Ok(Box::new(joiner(name)))))), NOW);
    let Some(Step::Save { claim: Some(claim), .. }) = d.steps.get(1) else { panic!("{d:?}") };
    assert_eq!(claim.take_over_from, Some(("E9".into(), Some(7))));
}

#[test]
fn a_join_that_cannot_be_applied_is_rejected_with_its_reason() {
    let input = Input::Hr(hr("j1", HrKind::Join(Err("invalid WorkSpace choice: x".into()))));
    let d = decide(None, &input, NOW);
    assert!(matches!(&d.verdict, Verdict::Event(EventOutcome::Rejected, r) if r.contains("invalid WorkSpace")));
    assert!(d.steps.is_empty());
}

#[test]
fn a_user_the_directory_refuses_fails_the_joiner_and_a_rehire_keeps_leaving() {
    let Input::Hr(join) = rehire(joiner(NameStatus::Free)) else { unreachable!() };
    let refused = Input::UserRefused { join, code: "EntityAlreadyExists".into(), message: "m".into() };
    // GIVEN a new joiner WHEN the directory refuses the user THEN the joiner failed, with the code
    let d = decide(None, &refused, NOW);
    assert_eq!((outcome(&d), kinds(&d)), (EventOutcome::Rejected, vec!["save"]));
    assert_eq!((saved(&d).state, saved(&d).failure_code.as_deref()), (Failed, Some("EntityAlreadyExists")));
    // GIVEN a leaver being rehired THEN the rehire is dropped and the termination goes on
    let d = decide(Some(&employee(Terminating)), &refused, NOW);
    assert_eq!((saved(&d).state, saved(&d).rehire_pending), (Terminating, false));
}

#[test]
fn a_leave_disables_the_user_writes_then_asks_for_the_termination() {
    for state in [Requested, Pending, Active] {
        let mut current = employee(state);
        current.leave_event_id = None;
        let d = decide(Some(&current), &leave("l1"), NOW);
        assert_eq!(kinds(&d), ["disable user", "save", "request termination"], "{state:?}");
        assert_eq!((saved(&d).state, saved(&d).leave_event_id.as_deref()), (Leaving, Some("l1")));
    }
    // A failed employee with a WorkSpace (it went to ERROR) has it terminated too.
    let mut failed = employee(Failed);
    failed.workspace_id = Some("ws-err".into());
    let (state, steps) = state_after(Some(&failed), &leave("l1"));
    assert_eq!((state, steps), (Some(Leaving), vec!["disable user", "save", "request termination"]));
}

#[test]
fn a_leave_without_a_workspace_ends_at_once() {
    // never joined: the record makes a later, older join stale
    let d = decide(None, &leave("l1"), NOW);
    assert_eq!((saved(&d).state, kinds(&d)), (Terminated, vec!["save"]));
    // onboarding had failed
    let (state, steps) = state_after(Some(&employee(Failed)), &leave("l1"));
    assert_eq!((state, steps), (Some(Terminated), vec!["disable user", "save"]));
}

#[test]
fn a_leave_withdraws_a_pending_rehire() {
    let mut current = employee(Terminating);
    current.rehire_pending = true;
    current.request_event_id = Some("j2".into());
    current.last_event_id = "j2".into();
    let d = decide(Some(&current), &leave("l2"), NOW);
    assert_eq!(outcome(&d), EventOutcome::Applied);
    let next = saved(&d);
    assert_eq!((next.state, next.rehire_pending, next.request_event_id.as_deref()), (Terminating, false, None));
    // the termination under way stays the first leave's (its request in flight carries that id)
    assert_eq!((next.leave_event_id.as_deref(), next.last_event_id.as_str()), (Some("l1"), "l2"));
}

#[test]
fn a_second_leave_is_skipped_and_a_redelivered_one_asks_again() {
    for state in [Leaving, Terminating, Terminated] {
        let d = decide(Some(&employee(state)), &leave("l2"), NOW);
        let asks_again = if state == Leaving { vec!["save", "request termination"] } else { vec!["save"] };
        assert_eq!((outcome(&d), kinds(&d)), (EventOutcome::Skipped, asks_again), "{state:?}");
        assert_eq!((saved(&d).state, saved(&d).last_event_id.as_str()), (state, "l2"), "the latest event");
    }
    let d = decide(Some(&employee(Leaving)), &leave("l1"), NOW);
    assert_eq!((outcome(&d), kinds(&d)), (EventOutcome::Applied, vec!["request termination"]));
}

#[test]
fn an_event_older_than_the_last_applied_is_stale_whatever_its_kind() {
    let mut old = hr("j0", HrKind::Leave { disable_user: false, grace_ms: 0 });
    old.occurred_ms = NOW - 20_000;
    let d = decide(Some(&employee(Active)), &Input::Hr(old.clone()), NOW);
    assert!(matches!(&d.verdict, Verdict::Event(EventOutcome::Skipped, r) if r.starts_with("stale")));
    assert_eq!(kinds(&d), ["save"], "only noted as seen");
    assert_eq!(saved(&d).state, Active);
    // a record waiting on a request gets it asked again (lost in a crash after its write?)
    assert_eq!(kinds(&decide(Some(&employee(Requested)), &Input::Hr(old.clone()), NOW)), ["save", "request WorkSpace"]);
    // and noted as seen (what a rescinded leave leaves standing), asking again all the same
    let d = decide(Some(&employee(Leaving)), &Input::Hr(old), NOW);
    assert_eq!(kinds(&d), ["save", "request termination"]);
    assert!(saved(&d).has_seen("j0"));
}

#[test]
fn a_cancel_gives_nothing_back_while_another_leave_stands_and_a_rescind_orders_against_the_join_again() {
    let cancel =
        Input::Cancel { employee_id: "E1".into(), event_id: "c1".into(), target: Some("l1".into()), held: false };
    // GIVEN revoked by l1, and an older leave l0 (after the join) arriving late
    let mut r = revoked();
    r.seen.retain(|e| e.event_id != "j1");
    r.note_seen(NOW - 50_000, "j1", true);
    let mut l0 = hr("l0", HrKind::Leave { disable_user: false, grace_ms: GRACE });
    l0.occurred_ms = NOW - 30_000;
    let with_l0 = saved(&decide(Some(&r), &Input::Hr(l0.clone()), NOW)).clone();
    // WHEN l1 is cancelled THEN nothing is given back: l0 still says the employee leaves
    let d = decide(Some(&with_l0), &cancel, NOW + 1);
    assert_eq!((outcome(&d), d.steps.len()), (EventOutcome::Rejected, 0));
    // GIVEN only l1 WHEN cancelled THEN the order goes back to the join: l0 arriving later applies
    let restoring = saved(&decide(Some(&r), &cancel, NOW + 1)).clone();
    assert_eq!((restoring.last_event_ms, restoring.last_event_id.as_str()), (NOW - 50_000, "j1"));
    let active =
        saved(&decide(Some(&restoring), &Input::AccessRestored { restore_event_id: "c1".into() }, NOW + 2)).clone();
    let d = decide(Some(&active), &Input::Hr(l0), NOW + 3);
    assert_eq!((outcome(&d), saved(&d).state), (EventOutcome::Applied, Leaving));
}

#[test]
fn a_future_dated_event_is_held_until_it_takes_effect() {
    let mut later = hr("l1", HrKind::Leave { disable_user: false, grace_ms: 0 });
    later.effective_ms = Some(NOW + 86_400_000);
    let d = decide(Some(&employee(Active)), &Input::Hr(later), NOW);
    assert_eq!(outcome(&d), EventOutcome::Scheduled);
    assert_eq!(d.steps, [Step::Hold { effective_ms: NOW + 86_400_000 }]);
}

#[test]
fn a_cancel_removes_a_held_event_or_says_there_is_none() {
    let cancel =
        |held| Input::Cancel { employee_id: "E1".into(), event_id: "c1".into(), target: Some("l1".into()), held };
    let d = decide(None, &cancel(true), NOW);
    assert_eq!((outcome(&d), kinds(&d).len()), (EventOutcome::Applied, 0));
    let d = decide(None, &cancel(false), NOW);
    assert_eq!((outcome(&d), kinds(&d).len()), (EventOutcome::Rejected, 0));
}

#[test]
fn a_created_workspace_makes_the_joiner_pending_or_active() {
    let created = |state| Input::Created { request_event_id: "j1".into(), workspace_id: "ws-9".into(), state };
    let (state, steps) = state_after(Some(&employee(Requested)), &created(WorkspaceState::Pending));
    assert_eq!((state, steps), (Some(Pending), vec!["save"]));
    let (state, _) = state_after(Some(&employee(Requested)), &created(WorkspaceState::Available));
    assert_eq!(state, Some(Active));
    // for another request: nothing
    let other =
        Input::Created { request_event_id: "j0".into(), workspace_id: "ws-9".into(), state: WorkspaceState::Pending };
    assert_eq!(state_after(Some(&employee(Requested)), &other), (None, vec![]));
}

#[test]
fn a_workspace_created_after_the_leave_is_attached_and_its_termination_asked() {
    for state in [Leaving, Terminated] {
        let mut current = employee(state);
        current.workspace_id = None;
        let input = Input::Created {
            request_event_id: "j1".into(),
            workspace_id: "ws-late".into(),
            state: WorkspaceState::Pending,
        };
        let d = decide(Some(&current), &input, NOW);
        assert_eq!(kinds(&d), ["save", "request termination"], "{state:?}");
        assert_eq!((saved(&d).state, saved(&d).workspace_id.as_deref()), (Leaving, Some("ws-late")));
    }
}

#[test]
fn a_stray_workspace_of_a_failed_employee_is_attached_and_terminated() {
    // GIVEN an employee who left and then failed (a rejoin the directory refused), no leave open
    let mut failed = employee(Failed);
    failed.leave_event_id = None;
    failed.request_event_id = None;
    // WHEN a WorkSpace made for their earlier request turns up (a crash after its create)
    let input = Input::Created {
        request_event_id: "j1".into(),
        workspace_id: "ws-stray".into(),
        state: WorkspaceState::Available,
    };
    let d = decide(Some(&failed), &input, NOW);
    // THEN it is attached and its termination asked, keyed by the stray WorkSpace
    assert_eq!(kinds(&d), ["save", "request termination"]);
    let next = saved(&d);
    assert_eq!((next.state, next.workspace_id.as_deref()), (Leaving, Some("ws-stray")));
    assert_eq!(next.leave_event_id.as_deref(), Some("stray-ws-stray"));
    let Step::RequestTermination(request) = &d.steps[1] else { unreachable!() };
    assert_eq!(request.event_id, "stray-ws-stray");
}

#[test]
fn a_creation_failure_fails_the_joiner() {
    let input = Input::CreateFailed {
        request_event_id: "j1".into(),
        code: "ResourceNotFound.User".into(),
        message: "m".into(),
    };
    let d = decide(Some(&employee(Requested)), &input, NOW);
    assert_eq!((saved(&d).state, saved(&d).failure_code.as_deref()), (Failed, Some("ResourceNotFound.User")));
}

#[test]
fn termination_results_move_the_leaver_on() {
    let accepted = Input::TerminationAccepted { leave_event_id: "l1".into(), workspace_id: "ws-1".into() };
    let d = decide(Some(&employee(Leaving)), &accepted, NOW);
    assert_eq!((saved(&d).state, saved(&d).terminate_requested_ms), (Terminating, Some(NOW)));
    let nothing = Input::NothingToTerminate { leave_event_id: "l1".into() };
    assert_eq!(state_after(Some(&employee(Leaving)), &nothing), (Some(Terminated), vec!["save"]));
    let failed = Input::TerminationFailed { leave_event_id: "l1".into(), code: "X".into(), message: "m".into() };
    assert_eq!(state_after(Some(&employee(Leaving)), &failed).0, Some(Failed));
    // a result for another leave changes nothing
    let other = Input::NothingToTerminate { leave_event_id: "l0".into() };
    assert_eq!(state_after(Some(&employee(Leaving)), &other), (None, vec![]));
}

#[test]
fn the_reconciler_confirms_what_it_sees() {
    let seen = |s| Input::Observed { workspace_id: "ws-1".into(), seen: s, stuck_after_ms: 60_000 };
    let available = seen(Seen::State(WorkspaceState::Available));
    assert_eq!(state_after(Some(&employee(Pending)), &available), (Some(Active), vec!["save"]));
    let error = seen(Seen::Error { code: Some("E".into()), message: None });
    assert_eq!(state_after(Some(&employee(Pending)), &error).0, Some(Failed));
    let d = decide(Some(&employee(Terminating)), &seen(Seen::Gone), NOW);
    let next = saved(&d);
    assert_eq!((next.state, next.workspace_id.as_deref(), next.terminated_ms), (Terminated, None, Some(NOW)));
    assert_eq!(next.previous_workspaces, [PastWorkspace { workspace_id: "ws-1".into(), terminated_ms: NOW }]);
    // gone before the termination was asked (a new id can lag): still waiting
    let mut unasked = employee(Terminating);
    unasked.terminate_requested_ms = None;
    assert_eq!(state_after(Some(&unasked), &seen(Seen::Gone)), (None, vec![]));
    // another WorkSpace id than the employee's: nothing
    let other = Input::Observed { workspace_id: "ws-2".into(), seen: Seen::Gone, stuck_after_ms: 0 };
    assert_eq!(state_after(Some(&employee(Terminating)), &other), (None, vec![]));
}

#[test]
fn a_confirmed_termination_sends_a_waiting_rehires_request_before_its_write() {
    let mut current = employee(Terminating);
    current.rehire_pending = true;
    current.request_event_id = Some("j2".into());
    let input = Input::Observed { workspace_id: "ws-1".into(), seen: Seen::Gone, stuck_after_ms: 60_000 };
    let d = decide(Some(&current), &input, NOW);
    assert_eq!(kinds(&d), ["request WorkSpace", "save"]);
    let next = saved(&d);
    assert_eq!((next.state, next.rehire_pending, next.leave_event_id.as_deref()), (Requested, false, None));
    let Step::RequestWorkspace(request) = &d.steps[0] else { unreachable!() };
    assert_eq!(request.event_id, "j2");
    // the same when the leave had nothing to terminate
    let mut leaving = employee(Leaving);
    leaving.rehire_pending = true;
    let nothing = Input::NothingToTerminate { leave_event_id: "l1".into() };
    assert_eq!(state_after(Some(&leaving), &nothing), (Some(Requested), vec!["request WorkSpace", "save"]));
}

#[test]
fn waiting_past_the_deadline_is_flagged_once() {
    let waiting = Input::Observed {
        workspace_id: "ws-1".into(),
        seen: Seen::State(WorkspaceState::Pending),
        stuck_after_ms: 5_000,
    };
    let d = decide(Some(&employee(Pending)), &waiting, NOW);
    let next = saved(&d);
    assert_eq!((next.state, next.stuck_since_ms, next.state_since_ms), (Pending, Some(NOW), NOW - 10_000));
    let d = decide(Some(next), &waiting, NOW + 1);
    assert_eq!(d.verdict, Verdict::Note(STILL_STUCK.into()));
    assert!(d.steps.is_empty());
    // within the deadline: nothing
    let patient = Input::Observed {
        workspace_id: "ws-1".into(),
        seen: Seen::State(WorkspaceState::Pending),
        stuck_after_ms: 60_000,
    };
    assert_eq!(decide(Some(&employee(Pending)), &patient, NOW).verdict, Verdict::Note(STILL_WAITING.into()));
}

#[test]
fn a_change_of_state_clears_the_stuck_flag() {
    let mut stuck = employee(Pending);
    stuck.stuck_since_ms = Some(NOW - 1);
    let available = Input::Observed {
        workspace_id: "ws-1".into(),
        seen: Seen::State(WorkspaceState::Available),
        stuck_after_ms: 0,
    };
    assert_eq!(saved(&decide(Some(&stuck), &available, NOW)).stuck_since_ms, None);
}

#[test]
fn requests_are_wanted_only_by_the_join_they_came_from() {
    assert_eq!(request_status(Some(&employee(Requested)), "j1"), RequestStatus::Wanted);
    assert_eq!(request_status(Some(&employee(Requested)), "j0"), RequestStatus::Unwanted { left: false });
    let mut rehire = employee(Terminating);
    rehire.rehire_pending = true;
    assert_eq!(request_status(Some(&rehire), "j1"), RequestStatus::AheadOfConfirmation);
    let mut left = employee(Leaving);
    left.workspace_id = None;
    assert_eq!(request_status(Some(&left), "j1"), RequestStatus::Unwanted { left: true });
    assert_eq!(access_action(Some(&employee(Leaving)), "l1", NOW), Some(Access::Terminate));
    assert_eq!(access_action(Some(&employee(Terminating)), "l1", NOW), None);
    assert!(releases_name(None) && releases_name(Some(&employee(Terminated))));
    assert!(!releases_name(Some(&employee(Active))));
}

#[test]
fn a_due_event_is_posted_then_unscheduled() {
    let due = ScheduledEvent {
        employee_id: "E1".into(),
        event_id: "l1".into(),
        kind: "leave".into(),
        occurred_ms: 1,
        effective_ms: 2,
        body: "{}".into(),
    };
    assert_eq!(kinds(&decide(None, &Input::Due(due), NOW)), ["post", "unschedule"]);
}

// ---------------------------------------------------------------- leave with a grace period

const GRACE: i64 = 72 * 3_600_000;

/// A join `j2` that happened after the leave.
fn rehire(joiner: Joiner) -> Input {
    let mut j2 = hr("j2", HrKind::Join(Ok(Box::new(joiner))));
    j2.occurred_ms = NOW;
    Input::Hr(j2)
}

fn leave_with_grace(event_id: &str) -> Input {
    Input::Hr(hr(event_id, HrKind::Leave { disable_user: true, grace_ms: GRACE }))
}

/// An employee whose leave `l1` (with a grace period) has revoked access to `ws-1`.
fn revoked() -> EmployeeRecord {
    let d = decide(Some(&employee(Active)), &leave_with_grace("l1"), NOW);
    let leaving = saved(&d).clone();
    let revoke = Input::AccessRevoked { leave_event_id: "l1".into(), workspace_id: "ws-1".into() };
    saved(&decide(Some(&leaving), &revoke, NOW + 1)).clone()
}

#[test]
fn a_leave_with_a_grace_period_disables_the_user_and_asks_for_access_to_be_revoked_not_the_workspace_terminated() {
    // GIVEN an active employee WHEN a leave with a 72-hour grace period arrives
    let d = decide(Some(&employee(Active)), &leave_with_grace("l1"), NOW);
    // THEN the user is disabled, the record says until when the WorkSpace is kept, and the
    // terminator is asked to revoke (not terminate)
    assert_eq!(kinds(&d), ["disable user", "save", "request termination"]);
    let next = saved(&d);
    assert_eq!((next.state, next.grace_until_ms, next.user_disabled), (Leaving, Some(NOW + GRACE), true));
    assert_eq!(access_action(Some(next), "l1", NOW), Some(Access::Revoke));
    assert_eq!(access_action(Some(next), "l1", NOW + GRACE), Some(Access::Terminate), "grace over before revoking");
    let Verdict::Event(EventOutcome::Applied, reason) = &d.verdict else { panic!("{:?}", d.verdict) };
    assert!(reason.contains("access revoked") && reason.contains("terminated then"), "{reason}");
}

#[test]
fn a_workspace_that_was_never_available_is_terminated_at_once_despite_a_grace_period() {
    // Nothing of the user's can be on it: the grace period keeps data, not WorkSpaces.
    for state in [Requested, Pending, Failed] {
        let mut current = employee(state);
        current.workspace_id = Some("ws-1".into());
        let next = saved(&decide(Some(&current), &leave_with_grace("l1"), NOW)).clone();
        assert_eq!((next.state, next.grace_until_ms), (Leaving, None), "{state:?}");
        assert_eq!(access_action(Some(&next), "l1", NOW), Some(Access::Terminate));
    }
}

#[test]
fn access_revoked_makes_the_employee_revoked_until_the_grace_period_ends_then_terminating_is_asked() {
    let r = revoked();
    assert_eq!((r.state, r.access_revoked_ms, r.watch_due_ms()), (Revoked, Some(NOW + 1), Some(NOW + GRACE)));
    assert_eq!(access_action(Some(&r), "l1", NOW), None, "nothing for the terminator while revoked");
    // WHEN the reconciler finds the grace period over
    let over = Input::GraceOver { leave_event_id: "l1".into() };
    assert_eq!(state_after(Some(&r), &over), (None, vec![]), "not before its time");
    let d = decide(Some(&r), &over, NOW + GRACE);
    // THEN the termination is asked (nothing written: asked again at every run until accepted)
    assert_eq!(kinds(&d), ["request termination"]);
    assert_eq!(access_action(Some(&r), "l1", NOW + GRACE), Some(Access::Terminate));
    let accepted = Input::TerminationAccepted { leave_event_id: "l1".into(), workspace_id: "ws-1".into() };
    assert_eq!(state_after(Some(&r), &accepted), (None, vec![]), "not accepted before the grace ends");
    let d = decide(Some(&r), &accepted, NOW + GRACE);
    assert_eq!(saved(&d).state, Terminating);
}

#[test]
fn access_that_cannot_be_revoked_cuts_the_grace_period_short_and_says_why() {
    let leaving = saved(&decide(Some(&employee(Active)), &leave_with_grace("l1"), NOW)).clone();
    let failed = Input::RevokeFailed {
        leave_event_id: "l1".into(),
        code: "InvalidResourceStateException".into(),
        message: "stopped".into(),
    };
    let d = decide(Some(&leaving), &failed, NOW + 1);
    assert_eq!(kinds(&d), ["save", "request termination"]);
    let next = saved(&d);
    assert_eq!((next.state, next.grace_until_ms), (Leaving, None));
    assert!(next.grace_note.as_deref().is_some_and(|n| n.contains("InvalidResourceStateException")));
}

#[test]
fn a_cancel_of_the_leave_within_the_grace_period_gives_the_same_workspace_back() {
    for current in [revoked(), saved(&decide(Some(&employee(Active)), &leave_with_grace("l1"), NOW)).clone()] {
        // GIVEN access revoked (or being revoked) WHEN HR cancels the leave
        let cancel =
            Input::Cancel { employee_id: "E1".into(), event_id: "c1".into(), target: Some("l1".into()), held: false };
        let d = decide(Some(&current), &cancel, NOW + 2);
        // THEN written first, then the user enabled, then the same WorkSpace given back
        assert_eq!(outcome(&d), EventOutcome::Applied);
        assert_eq!(kinds(&d), ["save", "enable user", "request termination"]);
        let next = saved(&d);
        assert_eq!(
            (next.state, next.workspace_id.as_deref(), next.leave_event_id.as_deref()),
            (Restoring, Some("ws-1"), None)
        );
        assert_eq!(access_action(Some(next), "c1", NOW + 2), Some(Access::Restore));
        assert_eq!(access_action(Some(next), "l1", NOW + 2), None, "the revoke in flight is dropped");
        // a redelivery of the cancel asks again
        assert_eq!(kinds(&decide(Some(next), &cancel, NOW + 3)), ["enable user", "request termination"]);
        // AND once restored the employee is active, the user no longer marked disabled
        let restored = decide(Some(next), &Input::AccessRestored { restore_event_id: "c1".into() }, NOW + 4);
        let active = saved(&restored);
        assert_eq!((active.state, active.user_disabled, active.workspace_id.as_deref()), (Active, false, Some("ws-1")));
    }
}

#[test]
fn a_cancel_too_late_or_of_a_superseded_leave_is_rejected_with_the_reason() {
    let cancel =
        Input::Cancel { employee_id: "E1".into(), event_id: "c1".into(), target: Some("l1".into()), held: false };
    // terminating: cannot be undone
    let d = decide(Some(&employee(Terminating)), &cancel, NOW);
    assert_eq!(outcome(&d), EventOutcome::Rejected);
    assert!(matches!(&d.verdict, Verdict::Event(_, r) if r.contains("cannot be undone")), "{:?}", d.verdict);
    // a later leave followed: the latest word stands
    let mut r = revoked();
    r.last_event_id = "l2".into();
    let d = decide(Some(&r), &cancel, NOW);
    assert_eq!((outcome(&d), d.steps.len()), (EventOutcome::Rejected, 0));
}

#[test]
fn a_rehire_within_the_grace_period_restores_the_workspace_and_elsewhere_terminates_it_now() {
    // same directory and user name: the same WorkSpace back
    let d = decide(Some(&revoked()), &rehire(joiner(NameStatus::Free)), NOW + 2);
    assert_eq!(kinds(&d), ["ensure user", "save + name", "enable user", "request termination"]);
    let next = saved(&d);
    assert_eq!(
        (next.state, next.restore_event_id.as_deref(), next.request_event_id.as_deref()),
        (Restoring, Some("j2"), Some("j2"))
    );
    // another user name: the kept WorkSpace goes now, the new one follows its confirmation
    let mut renamed = joiner(NameStatus::Free);
    renamed.user.user_name = "jdoe2".into();
    let d = decide(Some(&revoked()), &rehire(renamed), NOW + 2);
    let next = saved(&d);
    assert_eq!((next.state, next.rehire_pending, next.grace_until_ms), (Leaving, true, None));
    assert_eq!(access_action(Some(next), "l1", NOW + 2), Some(Access::Terminate));
    assert!(kinds(&d).contains(&"request termination"));
}

#[test]
fn a_revoke_that_lands_after_a_restore_asks_for_the_restore_again() {
    let cancel =
        Input::Cancel { employee_id: "E1".into(), event_id: "c1".into(), target: Some("l1".into()), held: false };
    let leaving = saved(&decide(Some(&employee(Active)), &leave_with_grace("l1"), NOW)).clone();
    let restoring = saved(&decide(Some(&leaving), &cancel, NOW + 1)).clone();
    let late = Input::AccessRevoked { leave_event_id: "l1".into(), workspace_id: "ws-1".into() };
    assert_eq!(kinds(&decide(Some(&restoring), &late, NOW + 2)), ["request termination"]);
    let active =
        saved(&decide(Some(&restoring), &Input::AccessRestored { restore_event_id: "c1".into() }, NOW + 2)).clone();
    let d = decide(Some(&active), &late, NOW + 3);
    let next = saved(&d);
    assert_eq!(next.state, Restoring);
    let key = next.restore_event_id.clone().unwrap();
    assert_eq!(access_action(Some(next), &key, NOW + 3), Some(Access::Restore));
}

#[test]
fn a_second_leave_while_revoked_is_skipped_and_a_refused_rehire_keeps_the_grace_period() {
    let d = decide(Some(&revoked()), &leave_with_grace("l2"), NOW + 2);
    assert_eq!(outcome(&d), EventOutcome::Skipped);
    assert_eq!(saved(&d).state, Revoked);
    let Input::Hr(join) = rehire(joiner(NameStatus::Free)) else { unreachable!() };
    let refused = Input::UserRefused { join, code: "X".into(), message: "no".into() };
    let next = saved(&decide(Some(&revoked()), &refused, NOW + 2)).clone();
    assert_eq!((next.state, next.grace_until_ms), (Revoked, Some(NOW + GRACE)));
}

#[test]
fn a_rehire_after_termination_enables_the_user_the_leave_disabled() {
    let mut gone = employee(Terminated);
    gone.user_disabled = true;
    let d = decide(Some(&gone), &join("j2"), NOW);
    assert_eq!(kinds(&d), ["ensure user", "enable user", "save + name", "request WorkSpace"]);
    assert!(!saved(&d).user_disabled);
}

#[test]
fn a_rescinded_leave_delivered_again_after_a_crash_is_skipped_not_applied_again() {
    // Found by the model: the leave's line was lost to a crash, its claim expired, the cancel
    // rescinded it; then the leave came back.
    let cancel =
        Input::Cancel { employee_id: "E1".into(), event_id: "c1".into(), target: Some("l1".into()), held: false };
    let leaving = saved(&decide(Some(&employee(Active)), &leave_with_grace("l1"), NOW)).clone();
    let restoring = saved(&decide(Some(&leaving), &cancel, NOW + 1)).clone();
    let d = decide(Some(&restoring), &leave_with_grace("l1"), NOW + 2);
    assert_eq!(outcome(&d), EventOutcome::Skipped);
    assert_eq!(kinds(&d), ["request termination"], "only the restore asked again");
    assert_eq!(access_action(Some(&restoring), "c1", NOW + 2), Some(Access::Restore));
}

// ---------------------------------------------------------------- the mass-termination guard

fn held(current: &EmployeeRecord) -> EmployeeRecord {
    let input =
        Input::TerminationHeld { leave_event_id: "l1".into(), workspace_id: "ws-1".into(), reason: "over 3".into() };
    saved(&decide(Some(current), &input, NOW + 5)).clone()
}

#[test]
fn a_held_termination_revokes_access_instead_and_waits_for_the_operator() {
    // GIVEN a leave without a grace period WHEN the guard holds its termination
    let leaving = saved(&decide(Some(&employee(Active)), &leave("l1"), NOW)).clone();
    let d = decide(
        Some(&leaving),
        &Input::TerminationHeld { leave_event_id: "l1".into(), workspace_id: "ws-1".into(), reason: "over 3".into() },
        NOW + 5,
    );
    // THEN the record says so and the terminator is asked again, now to revoke access
    assert_eq!(kinds(&d), ["save", "request termination"]);
    let h = saved(&d).clone();
    assert_eq!((h.state, h.held_since_ms, h.hold_reason.as_deref()), (Leaving, Some(NOW + 5), Some("over 3")));
    assert_eq!(access_action(Some(&h), "l1", NOW + 5), Some(Access::Revoke));
    assert_eq!(h.watch_due_ms(), Some(crate::domain::employee::HELD_DUE_MS), "listed for the operator");
    // AND once revoked nothing more happens: no termination, not even when a grace would be over
    let revoked = saved(&decide(
        Some(&h),
        &Input::AccessRevoked { leave_event_id: "l1".into(), workspace_id: "ws-1".into() },
        NOW + 6,
    ))
    .clone();
    assert_eq!((revoked.state, revoked.held_since_ms), (Revoked, Some(NOW + 5)));
    assert_eq!(access_action(Some(&revoked), "l1", NOW + GRACE), None);
    assert_eq!(state_after(Some(&revoked), &Input::GraceOver { leave_event_id: "l1".into() }), (None, vec![]));
    // WHEN an operator releases it THEN the termination is requested and not counted again
    let d = decide(Some(&revoked), &Input::Released, NOW + 7);
    assert_eq!(kinds(&d), ["save", "request termination"]);
    let released = saved(&d);
    assert!(released.guard_released && released.held_since_ms.is_none());
    assert_eq!(access_action(Some(released), "l1", NOW + 7), Some(Access::Terminate));
}

#[test]
fn a_held_leaver_whose_access_cannot_be_revoked_is_flagged_for_the_operator_not_retried() {
    let leaving = saved(&decide(Some(&employee(Active)), &leave("l1"), NOW)).clone();
    let h = held(&leaving);
    let failed = Input::RevokeFailed {
        leave_event_id: "l1".into(),
        code: "InvalidResourceStateException".into(),
        message: "STOPPED".into(),
    };
    let d = decide(Some(&h), &failed, NOW + 6);
    assert_eq!(kinds(&d), ["save"], "not asked again");
    let next = saved(&d);
    assert_eq!((next.state, next.held_since_ms), (Leaving, Some(NOW + 5)), "still held, still listed");
    assert!(next.grace_note.as_deref().is_some_and(|n| n.contains("may still log in")), "{next:?}");
}

#[test]
fn a_cancel_of_a_held_leave_gives_the_workspace_back_and_a_second_hold_writes_nothing() {
    let leaving = saved(&decide(Some(&employee(Active)), &leave("l1"), NOW)).clone();
    let h = held(&leaving);
    let again = Input::TerminationHeld { leave_event_id: "l1".into(), workspace_id: "ws-1".into(), reason: "x".into() };
    assert_eq!(state_after(Some(&h), &again), (None, vec![]));
    let cancel =
        Input::Cancel { employee_id: "E1".into(), event_id: "c1".into(), target: Some("l1".into()), held: false };
    let d = decide(Some(&h), &cancel, NOW + 6);
    assert_eq!(outcome(&d), EventOutcome::Applied);
    let next = saved(&d);
    assert_eq!((next.state, next.held_since_ms), (Restoring, None));
    assert_eq!(state_after(Some(next), &Input::Released), (None, vec![]), "nothing held any more");
}

// ---------------------------------------------------------------- movers

fn mover(change: impl FnOnce(&mut Profile)) -> Mover {
    let mut p = profile();
    change(&mut p);
    Mover {
        department: Some("Sales".into()),
        profile_name: "sales".into(),
        profile: p,
        client_token: "hr-m".into(),
        name: NameStatus::Free,
    }
}

fn move_event(event_id: &str, occurred_ms: i64, m: Mover) -> Input {
    let mut h = hr(event_id, HrKind::Move(Ok(Box::new(m))));
    h.occurred_ms = occurred_ms;
    Input::Hr(h)
}

fn bigger_user_volume(p: &mut Profile) {
    p.user_volume_gib = Some(100);
}

/// An active employee's WorkSpace as described: the profile's bundle, [80, 50] GiB, STANDARD.
fn seen_ws(id: &str, state: WorkspaceState) -> SeenWorkspace {
    SeenWorkspace {
        workspace_id: id.into(),
        directory_id: DIR.into(),
        state,
        bundle_id: Some("wsb-12345678".into()),
        properties: crate::domain::workspace::WorkspaceProperties {
            running_mode: Some("AUTO_STOP".into()),
            auto_stop_minutes: Some(60),
            root_volume_gib: Some(80),
            user_volume_gib: Some(50),
            compute_type: Some("STANDARD".into()),
        },
    }
}

fn sight(ws: Option<SeenWorkspace>) -> Input {
    Input::MoveObserved {
        event_id: "m1".into(),
        sight: Box::new(MoveSight { workspace: ws, tags: Some(Default::default()), ..Default::default() }),
        stuck_after_ms: 3_600_000,
        cooldowns: Cooldowns::DOCUMENTED,
    }
}

fn moving_employee(m: Mover) -> EmployeeRecord {
    let mut e = employee(Active);
    e.clocks.launched_ms = Some(0);
    let d = decide(Some(&e), &move_event("m1", NOW - 500, m), NOW);
    saved(&d).clone()
}

fn without_tags(input: Input) -> Input {
    match input {
        Input::MoveObserved { event_id, mut sight, stuck_after_ms, cooldowns } => {
            sight.tags = None;
            Input::MoveObserved { event_id, sight, stuck_after_ms, cooldowns }
        }
        other => other,
    }
}

#[test]
fn a_movers_tags_are_read_only_when_the_decision_could_turn_on_them() {
    let e = moving_employee(mover(bigger_user_volume));
    // A property step ready, or a wait: the same decision with or without the tags; not read.
    for state in [WorkspaceState::Available, WorkspaceState::Updating] {
        let observed = sight(Some(seen_ws("ws-1", state.clone())));
        let blind = decide(Some(&e), &without_tags(observed.clone()), NOW);
        assert!(!needs_tags(&blind), "{state:?}: {:?}", kinds(&blind));
        assert_eq!(blind, decide(Some(&e), &observed, NOW), "{state:?}");
    }
    // At the profile: the move would end, but the old profile's tags may need removing: read.
    let mut done = seen_ws("ws-1", WorkspaceState::Available);
    done.properties.user_volume_gib = Some(100);
    let blind = decide(Some(&e), &without_tags(sight(Some(done.clone()))), NOW);
    assert!(needs_tags(&blind), "{:?}", kinds(&blind));
    let read = decide(Some(&e), &sight(Some(done)), NOW);
    assert!(read.saved().is_some_and(|r| r.moving.is_none()), "with no tags to change, the move ends");
    // A profile that sets tags: its tag step is planned blind, and read before it is made.
    let tagged = moving_employee(mover(|p| {
        p.tags.insert("hr-pipeline:team".into(), "sales".into());
    }));
    let blind = decide(Some(&tagged), &without_tags(sight(Some(seen_ws("ws-1", WorkspaceState::Available)))), NOW);
    assert!(needs_tags(&blind), "{:?}", kinds(&blind));
}

#[test]
fn a_move_for_an_active_employee_makes_them_moving_with_the_new_profile_and_never_touches_leaves() {
    let e = employee(Active);
    let d = decide(Some(&e), &move_event("m1", NOW - 500, mover(bigger_user_volume)), NOW);
    assert_eq!(outcome(&d), EventOutcome::Applied);
    assert_eq!(kinds(&d), ["save"]);
    let next = saved(&d);
    assert_eq!(next.state, Moving);
    assert_eq!(next.profile.as_ref().unwrap().user_volume_gib, Some(100));
    assert_eq!((next.department.as_deref(), next.profile_name.as_deref()), (Some("Sales"), Some("sales")));
    assert_eq!(next.moving.as_ref().unwrap().event_id, "m1");
    // The join/leave clock is untouched: a leave that occurred before the move still applies.
    assert_eq!((next.last_event_id.as_str(), next.last_event_ms), ("j1", e.last_event_ms));
    let mut late_leave = hr("l9", HrKind::Leave { disable_user: false, grace_ms: 0 });
    late_leave.occurred_ms = NOW - 800;
    let d = decide(Some(next), &Input::Hr(late_leave), NOW);
    assert_eq!((outcome(&d), saved(&d).state), (EventOutcome::Applied, Leaving));
    assert!(saved(&d).moving.is_none(), "a leave ends the move");
}

#[test]
fn moves_are_ordered_among_themselves_and_a_redelivery_changes_nothing() {
    let e = moving_employee(mover(bigger_user_volume));
    let again = decide(Some(&e), &move_event("m1", NOW - 500, mover(bigger_user_volume)), NOW);
    assert_eq!((outcome(&again), kinds(&again).len()), (EventOutcome::Applied, 0));
    let older = decide(Some(&e), &move_event("m0", NOW - 900, mover(|_| {})), NOW);
    assert_eq!((outcome(&older), kinds(&older).len()), (EventOutcome::Skipped, 0));
    // Older than the join: stale as any event.
    let before_join = decide(Some(&e), &move_event("m-1", NOW - 20_000, mover(|_| {})), NOW);
    assert_eq!(outcome(&before_join), EventOutcome::Skipped);
}

#[test]
fn a_move_for_someone_leaving_failed_unknown_or_to_another_directory_is_rejected_with_the_reason() {
    for state in [Leaving, Revoked, Terminating, Terminated, Failed] {
        let d = decide(Some(&employee(state)), &move_event("m1", NOW - 500, mover(bigger_user_volume)), NOW);
        assert_eq!(outcome(&d), EventOutcome::Rejected, "{state:?}");
        assert!(d.saved().is_none(), "{state:?}: nothing written");
        // A leaver's termination is asked again (as by any event that asks for nothing).
        assert!(kinds(&d).iter().all(|k| *k == "request termination"), "{state:?}: {:?}", kinds(&d));
    }
    let d = decide(None, &move_event("m1", NOW - 500, mover(bigger_user_volume)), NOW);
    assert_eq!(outcome(&d), EventOutcome::Rejected);
    // To another directory: only from a WorkSpace AVAILABLE.
    let mut pending = employee(Pending);
    pending.workspace_id = Some("ws-1".into());
    let d = decide(Some(&pending), &move_event("m1", NOW - 500, mover(|p| p.directory_id = OTHER_DIR.into())), NOW);
    assert_eq!(outcome(&d), EventOutcome::Rejected);
    assert!(reason(&d).contains("[move-directory]"), "{}", reason(&d));
}

fn reason(d: &Decision) -> String {
    match &d.verdict {
        Verdict::Event(_, r) | Verdict::Note(r) => r.clone(),
    }
}

#[test]
fn a_move_while_the_workspace_is_created_waits_for_it_then_changes_it() {
    let mut pending = employee(Pending);
    pending.workspace_id = Some("ws-1".into());
    let d = decide(Some(&pending), &move_event("m1", NOW - 500, mover(bigger_user_volume)), NOW);
    let next = saved(&d).clone();
    assert_eq!((next.state, next.moving.is_some()), (Pending, true));
    let seen = Input::Observed {
        workspace_id: "ws-1".into(),
        seen: Seen::State(WorkspaceState::Available),
        stuck_after_ms: 3_600_000,
    };
    assert_eq!(saved(&decide(Some(&next), &seen, NOW)).state, Moving);
}

#[test]
fn a_moving_employee_gets_one_call_per_run_then_is_active_when_the_workspace_matches() {
    let e = moving_employee(mover(bigger_user_volume));
    // Launched long ago: no cooldown.
    let d = decide(Some(&e), &sight(Some(seen_ws("ws-1", WorkspaceState::Available))), NOW);
    let Some(Step::Move(call)) = d.steps.first() else { panic!("a call: {d:?}") };
    let MoveCall::Modify { change, cooldown, .. } = call else { panic!("{call:?}") };
    assert_eq!((change, *cooldown), (&crate::domain::workspace::PropertyChange::UserVolume(100), Cooldown::Volume));
    // The answer starts the volume cooldown.
    let answered = Input::MoveCalled { event_id: "m1".into(), call: call.clone(), result: Ok(None) };
    let after = saved(&decide(Some(&e), &answered, NOW)).clone();
    assert_eq!(after.clocks.last_volume_ms, Some(NOW));
    // While UPDATING it waits; written once, not at every run.
    let updating = decide(Some(&after), &sight(Some(seen_ws("ws-1", WorkspaceState::Updating))), NOW + 60_000);
    let waiting = saved(&updating).clone();
    let again = decide(Some(&waiting), &sight(Some(seen_ws("ws-1", WorkspaceState::Updating))), NOW + 120_000);
    assert!(again.steps.is_empty(), "{again:?}");
    // Done: active, the move over.
    let mut done = seen_ws("ws-1", WorkspaceState::Available);
    done.properties.user_volume_gib = Some(100);
    let d = decide(Some(&waiting), &sight(Some(done)), NOW + 180_000);
    assert_eq!((saved(&d).state, saved(&d).moving.is_none(), saved(&d).move_note.is_none()), (Active, true, true));
}

#[test]
fn a_cooldown_is_waited_for_and_the_reconciler_looks_again_only_when_it_ends() {
    let mut e = moving_employee(mover(bigger_user_volume));
    e.clocks.last_volume_ms = Some(NOW - 1_000);
    let d = decide(Some(&e), &sight(Some(seen_ws("ws-1", WorkspaceState::Available))), NOW);
    let next = saved(&d);
    let due = next.moving.as_ref().unwrap().due_ms.unwrap();
    assert_eq!(due, NOW - 1_000 + crate::domain::workspace::GROWTH_COOLDOWN_MS);
    assert_eq!(next.watch_due_ms(), Some(due), "the work index holds it until then");
}

#[test]
fn a_refused_call_stops_the_move_with_its_code_unless_asking_again_can_succeed() {
    let e = moving_employee(mover(bigger_user_volume));
    let call = MoveCall::Modify {
        workspace_id: "ws-1".into(),
        change: crate::domain::workspace::PropertyChange::UserVolume(100),
        cooldown: Cooldown::Volume,
    };
    let busy = CallFailure { code: "OperationInProgressException".into(), message: "busy".into(), retryable: true };
    let d = decide(Some(&e), &Input::MoveCalled { event_id: "m1".into(), call: call.clone(), result: Err(busy) }, NOW);
    assert!(d.steps.is_empty(), "asked again at the next run");
    let refused =
        CallFailure { code: "InvalidParameterValuesException".into(), message: "no".into(), retryable: false };
    let d = decide(Some(&e), &Input::MoveCalled { event_id: "m1".into(), call, result: Err(refused) }, NOW);
    let next = saved(&d);
    assert_eq!(next.state, Active);
    assert!(next.move_note.as_deref().unwrap().contains("InvalidParameterValuesException"), "{:?}", next.move_note);
}

#[test]
fn a_migration_keeps_the_source_until_the_new_workspace_is_available_then_re_keys() {
    let e = moving_employee(mover(|p| p.bundle_id = "wsb-87654321".into()));
    let d = decide(Some(&e), &sight(Some(seen_ws("ws-1", WorkspaceState::Available))), NOW);
    let Some(Step::Move(call @ MoveCall::Migrate { .. })) = d.steps.first() else { panic!("{d:?}") };
    let answered = Input::MoveCalled { event_id: "m1".into(), call: call.clone(), result: Ok(Some("ws-2".into())) };
    let migrating = saved(&decide(Some(&e), &answered, NOW)).clone();
    assert_eq!(migrating.workspace_id.as_deref(), Some("ws-1"), "the source until the target is AVAILABLE");
    assert_eq!(migrating.moving.as_ref().unwrap().migrating_to.as_deref(), Some("ws-2"));
    let mut target = seen_ws("ws-2", WorkspaceState::Pending);
    target.bundle_id = Some("wsb-87654321".into());
    let observe = |t: Option<SeenWorkspace>, source: Option<SeenWorkspace>| Input::MoveObserved {
        event_id: "m1".into(),
        sight: Box::new(MoveSight { workspace: source, target: t, ..Default::default() }),
        stuck_after_ms: 3_600_000,
        cooldowns: Cooldowns::DOCUMENTED,
    };
    let d = decide(Some(&migrating), &observe(Some(target.clone()), None), NOW + 60_000);
    assert_eq!(saved(&d).workspace_id.as_deref(), Some("ws-1"), "still migrating");
    target.state = WorkspaceState::Available;
    let d = decide(Some(&migrating), &observe(Some(target), None), NOW + 120_000);
    let rekeyed = saved(&d);
    assert_eq!((rekeyed.state, rekeyed.workspace_id.as_deref()), (Moving, Some("ws-2")));
    assert_eq!(rekeyed.clocks.launched_ms, Some(NOW), "the new WorkSpace's cooldowns count from the migration");
    assert_eq!(rekeyed.previous_workspaces.last().unwrap().workspace_id, "ws-1");
    // A failed migration (the target in ERROR, the source kept) stops the move.
    let mut broken = seen_ws("ws-2", WorkspaceState::Error);
    broken.bundle_id = Some("wsb-87654321".into());
    let d = decide(Some(&migrating), &observe(Some(broken), Some(seen_ws("ws-1", WorkspaceState::Available))), NOW);
    assert_eq!((saved(&d).state, saved(&d).workspace_id.as_deref()), (Active, Some("ws-1")));
}

#[test]
fn a_leave_during_a_migration_terminates_both_workspaces_without_a_grace_period() {
    let mut e = moving_employee(mover(|p| p.bundle_id = "wsb-87654321".into()));
    e.moving.as_mut().unwrap().migrating_to = Some("ws-2".into());
    let d = decide(Some(&e), &leave_with_grace("l2"), NOW);
    let leaving = saved(&d).clone();
    assert_eq!((leaving.state, leaving.grace_until_ms), (Leaving, None));
    // The source confirmed gone: the migration's WorkSpace is terminated next.
    let accepted = Input::TerminationAccepted { leave_event_id: "l2".into(), workspace_id: "ws-1".into() };
    let terminating = saved(&decide(Some(&leaving), &accepted, NOW)).clone();
    let gone = Input::Observed { workspace_id: "ws-1".into(), seen: Seen::Gone, stuck_after_ms: 3_600_000 };
    let d = decide(Some(&terminating), &gone, NOW + 1_000);
    assert_eq!(kinds(&d), ["save", "request termination"]);
    let next = saved(&d);
    assert_eq!((next.state, next.workspace_id.as_deref()), (Leaving, Some("ws-2")));
    let Some(Step::RequestTermination(r)) = d.steps.get(1) else { panic!() };
    assert_eq!((r.event_id.as_str(), r.workspace_id.as_deref()), ("l2", Some("ws-2")));
}

#[test]
fn a_leave_during_a_migration_whose_answer_was_lost_looks_up_the_user_names_workspace_once_gone() {
    // GIVEN a mover whose migration may have been made without the record learning its new
    // WorkSpace (the reconciler crashed after MigrateWorkspace, or its write failed)
    let e = moving_employee(mover(|p| p.bundle_id = "wsb-87654321".into()));
    assert_eq!(e.moving.as_ref().and_then(|m| m.other_workspace()), None);
    // WHEN the employee leaves, and the source WorkSpace is terminated and confirmed gone
    let leaving = saved(&decide(Some(&e), &leave("l2"), NOW)).clone();
    assert!(leaving.sweep_when_gone);
    let accepted = Input::TerminationAccepted { leave_event_id: "l2".into(), workspace_id: "ws-1".into() };
    let terminating = saved(&decide(Some(&leaving), &accepted, NOW)).clone();
    let gone = Input::Observed { workspace_id: "ws-1".into(), seen: Seen::Gone, stuck_after_ms: 3_600_000 };
    let d = decide(Some(&terminating), &gone, NOW + 1_000);
    // THEN the user name's WorkSpace is asked to be terminated (looked up: no id), before the write
    assert_eq!(kinds(&d), ["request termination", "save"]);
    let Some(Step::RequestTermination(r)) = d.steps.first() else { panic!() };
    assert_eq!((r.event_id.as_str(), r.workspace_id.as_deref()), ("sweep-l2", None));
    let sweeping = saved(&d).clone();
    assert_eq!((sweeping.state, sweeping.workspace_id.as_deref(), sweeping.sweep_when_gone), (Leaving, None, false));
    assert_eq!(access_action(Some(&sweeping), "sweep-l2", NOW + 1_000), Some(Access::Terminate));
    // AND with nothing found, the leaver ends terminated
    let nothing = Input::NothingToTerminate { leave_event_id: "sweep-l2".into() };
    assert_eq!(saved(&decide(Some(&sweeping), &nothing, NOW + 2_000)).state, Terminated);
    // AND a leaver with no move under way ends terminated at once, as before
    let plain = saved(&decide(Some(&employee(Active)), &leave("l2"), NOW)).clone();
    assert!(!plain.sweep_when_gone);
}

#[test]
fn a_workspace_gone_during_a_move_is_followed_to_the_users_other_one_or_requested_again_with_the_new_profile() {
    let e = moving_employee(mover(|p| p.bundle_id = "wsb-87654321".into()));
    let found = Input::MoveObserved {
        event_id: "m1".into(),
        sight: Box::new(MoveSight { found: Some(seen_ws("ws-9", WorkspaceState::Available)), ..Default::default() }),
        stuck_after_ms: 3_600_000,
        cooldowns: Cooldowns::DOCUMENTED,
    };
    assert_eq!(saved(&decide(Some(&e), &found, NOW)).workspace_id.as_deref(), Some("ws-9"));
    // GIVEN no other WorkSpace for the user (deleted in the console) THEN a new one is requested,
    // keyed by the lost id, with the profile the move wants (not a failure: the employee stays)
    let d = decide(Some(&e), &sight(None), NOW);
    assert_eq!(kinds(&d), ["request WorkSpace", "save"]);
    let next = saved(&d);
    assert_eq!((next.state, next.moving.is_none(), next.workspace_id.as_deref()), (Requested, true, None));
    assert_eq!(next.request_event_id.as_deref(), Some("lost-ws-1"));
    let Some(Step::RequestWorkspace(request)) = d.steps.first() else { panic!("{:?}", d.steps) };
    assert_eq!(request.profile.bundle_id, "wsb-87654321");
    // AND a migration asked within the hour may have replaced it with one not listed yet: waited for
    let mut migrating = e.clone();
    migrating.moving.as_mut().unwrap().migrate_asked_ms = Some(NOW - 60_000);
    let d = decide(Some(&migrating), &sight(None), NOW);
    assert!(saved(&d).state == Moving && !kinds(&d).contains(&"request WorkSpace"), "{:?}", d.steps);
    // AND a record that could not ask (no user name) fails, with the reason
    let mut nameless = e.clone();
    nameless.username = None;
    let d = decide(Some(&nameless), &sight(None), NOW);
    assert_eq!((saved(&d).state, saved(&d).failure_code.as_deref()), (Failed, Some("WorkspaceGone")));
}

#[test]
fn a_rehire_within_the_grace_period_with_another_profile_gets_the_workspace_back_then_moved() {
    let mut e = employee(Revoked);
    e.workspace_id = Some("ws-1".into());
    e.grace_until_ms = Some(NOW + 1_000_000);
    let mut j = joiner(NameStatus::Free);
    j.profile.user_volume_gib = Some(100);
    let d = decide(Some(&e), &rehire(j), NOW);
    let restoring = saved(&d).clone();
    assert_eq!((restoring.state, restoring.moving.is_some()), (Restoring, true));
    let restored = Input::AccessRestored { restore_event_id: restoring.restore_event_id.clone().unwrap() };
    assert_eq!(saved(&decide(Some(&restoring), &restored, NOW)).state, Moving);
}

// ---------------------------------------------------------------- moves to another directory

const OTHER_DIR: &str = "d-0000000009";

fn relocating_employee() -> EmployeeRecord {
    let mut e = employee(Active);
    e.clocks.launched_ms = Some(0);
    let d = decide(Some(&e), &move_event("m1", NOW - 500, mover(|p| p.directory_id = OTHER_DIR.into())), NOW);
    assert_eq!(kinds(&d), ["ensure user", "save + name", "request WorkSpace"], "{d:?}");
    saved(&d).clone()
}

fn observe_other(other: Option<SeenWorkspace>) -> Input {
    Input::MoveObserved {
        event_id: "m1".into(),
        sight: Box::new(MoveSight {
            workspace: Some(seen_ws("ws-1", WorkspaceState::Available)),
            target: other,
            ..Default::default()
        }),
        stuck_after_ms: 3_600_000,
        cooldowns: Cooldowns::DOCUMENTED,
    }
}

fn in_other_dir(id: &str, state: WorkspaceState) -> SeenWorkspace {
    SeenWorkspace { directory_id: OTHER_DIR.into(), ..seen_ws(id, state) }
}

#[test]
fn a_move_to_another_directory_makes_a_new_workspace_there_then_terminates_the_old_one() {
    // GIVEN a move to another directory: the user made there, the name claimed, the request sent
    let e = relocating_employee();
    assert_eq!((e.state, e.workspace_id.as_deref()), (Moving, Some("ws-1")));
    assert_eq!(e.profile.as_ref().unwrap().directory_id, DIR, "the record keeps the old WorkSpace's profile");
    assert_eq!(request_status(Some(&e), "m1"), RequestStatus::Wanted);
    // WHEN the new WorkSpace is created, THEN the record notes it and still points at the old one
    let created =
        Input::Created { request_event_id: "m1".into(), workspace_id: "ws-2".into(), state: WorkspaceState::Pending };
    let e = saved(&decide(Some(&e), &created, NOW)).clone();
    assert_eq!(e.workspace_id.as_deref(), Some("ws-1"));
    assert_eq!(request_status(Some(&e), "m1"), RequestStatus::Unwanted { left: false });
    let d = decide(Some(&e), &observe_other(Some(in_other_dir("ws-2", WorkspaceState::Pending))), NOW + 1_000);
    assert_eq!(saved(&d).workspace_id.as_deref(), Some("ws-1"), "still the old one while the new one is PENDING");
    // WHEN it is AVAILABLE, THEN the record switches to it and the old one's termination is asked
    let d = decide(Some(&e), &observe_other(Some(in_other_dir("ws-2", WorkspaceState::Available))), NOW + 2_000);
    assert_eq!(kinds(&d), ["save", "request termination"]);
    let switched = saved(&d).clone();
    assert_eq!(switched.workspace_id.as_deref(), Some("ws-2"));
    assert_eq!(switched.profile.as_ref().unwrap().directory_id, OTHER_DIR);
    let Some(Step::RequestTermination(t)) = d.steps.get(1) else { panic!() };
    assert_eq!((t.event_id.as_str(), t.workspace_id.as_deref(), t.directory_id.as_str()), ("m1", Some("ws-1"), DIR));
    // The terminator terminates the old one, never the new one
    assert_eq!(access_action(Some(&switched), "m1", NOW), Some(Access::Terminate));
    assert_eq!(termination_target(&switched, "m1").as_deref(), Some("ws-1"));
    let accepted = Input::TerminationAccepted { leave_event_id: "m1".into(), workspace_id: "ws-1".into() };
    let terminating = saved(&decide(Some(&switched), &accepted, NOW + 3_000)).clone();
    assert_eq!(access_action(Some(&terminating), "m1", NOW), None, "asked once");
    // WHEN the old one is gone, THEN the relocation is over and the move checks the rest
    let gone = Input::MoveObserved {
        event_id: "m1".into(),
        sight: Box::new(MoveSight {
            workspace: Some(in_other_dir("ws-2", WorkspaceState::Available)),
            tags: Some(Default::default()),
            ..Default::default()
        }),
        stuck_after_ms: 3_600_000,
        cooldowns: Cooldowns::DOCUMENTED,
    };
    let over = saved(&decide(Some(&terminating), &gone, NOW + 4_000)).clone();
    assert!(over.moving.as_ref().unwrap().relocation.is_none());
    assert_eq!(over.previous_workspaces.last().unwrap().workspace_id, "ws-1");
    assert_eq!(over.former_directories, [DIR], "the user left behind is remembered");
    let d = decide(Some(&over), &gone, NOW + 5_000);
    let active = saved(&d).clone();
    assert_eq!((active.state, active.workspace_id.as_deref()), (Active, Some("ws-2")));
    // WHEN they leave, THEN the user is disabled in both directories
    let mut l = hr("l9", HrKind::Leave { disable_user: true, grace_ms: 0 });
    l.occurred_ms = NOW;
    let d = decide(Some(&active), &Input::Hr(l), NOW + 6_000);
    let disabled: Vec<&str> = d
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::DisableUser { directory_id, .. } => Some(directory_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(disabled, [OTHER_DIR, DIR]);
}

#[test]
fn a_new_workspace_in_error_is_dropped_and_the_employee_keeps_the_old_one() {
    let e = relocating_employee();
    let created =
        Input::Created { request_event_id: "m1".into(), workspace_id: "ws-2".into(), state: WorkspaceState::Pending };
    let e = saved(&decide(Some(&e), &created, NOW)).clone();
    let d = decide(Some(&e), &observe_other(Some(in_other_dir("ws-2", WorkspaceState::Error))), NOW + 1_000);
    assert_eq!(kinds(&d), ["save", "request termination"]);
    let Some(Step::RequestTermination(t)) = d.steps.get(1) else { panic!() };
    assert_eq!((t.workspace_id.as_deref(), t.directory_id.as_str()), (Some("ws-2"), OTHER_DIR));
    let dropping = saved(&d).clone();
    assert_eq!(dropping.workspace_id.as_deref(), Some("ws-1"));
    let d = decide(Some(&dropping), &observe_other(None), NOW + 2_000);
    let next = saved(&d).clone();
    assert_eq!((next.state, next.workspace_id.as_deref()), (Moving, Some("ws-1")));
    assert!(next.moving.as_ref().unwrap().relocation.is_none());
    // The move goes on against the old directory's profile: here it matches, so active, the note kept.
    let d = decide(Some(&next), &sight(Some(seen_ws("ws-1", WorkspaceState::Available))), NOW + 3_000);
    let done = saved(&d);
    assert_eq!((done.state, done.workspace_id.as_deref()), (Active, Some("ws-1")));
    assert!(done.move_note.as_deref().unwrap().contains("ERROR"), "{:?}", done.move_note);
}

#[test]
fn a_leave_during_a_relocation_terminates_both_workspaces() {
    let e = relocating_employee();
    let created =
        Input::Created { request_event_id: "m1".into(), workspace_id: "ws-2".into(), state: WorkspaceState::Pending };
    let e = saved(&decide(Some(&e), &created, NOW)).clone();
    let leaving = saved(&decide(Some(&e), &leave_with_grace("l2"), NOW)).clone();
    assert_eq!((leaving.state, leaving.grace_until_ms, leaving.workspace_id.as_deref()), (Leaving, None, Some("ws-1")));
    let accepted = Input::TerminationAccepted { leave_event_id: "l2".into(), workspace_id: "ws-1".into() };
    let terminating = saved(&decide(Some(&leaving), &accepted, NOW)).clone();
    let gone = Input::Observed { workspace_id: "ws-1".into(), seen: Seen::Gone, stuck_after_ms: 3_600_000 };
    let d = decide(Some(&terminating), &gone, NOW + 1_000);
    assert_eq!(kinds(&d), ["save", "request termination"]);
    assert_eq!((saved(&d).state, saved(&d).workspace_id.as_deref()), (Leaving, Some("ws-2")));
}

#[test]
fn a_move_to_a_directory_where_the_name_is_another_employees_is_rejected() {
    let mut m = mover(|p| p.directory_id = OTHER_DIR.into());
    m.name = NameStatus::Held { holder: "E9".into() };
    let d = decide(Some(&employee(Active)), &move_event("m1", NOW - 500, m), NOW);
    assert_eq!((outcome(&d), d.saved().is_none()), (EventOutcome::Rejected, true));
    assert!(reason(&d).contains("[name-held]"), "{}", reason(&d));
}

#[test]
fn a_migration_answered_after_a_leave_that_came_meanwhile_has_its_workspace_terminated_too() {
    // GIVEN a mover whose MigrateWorkspace was asked, then a leave with a grace period applied
    // before the answer was written
    let e = moving_employee(mover(|p| p.bundle_id = "wsb-87654321".into()));
    let revoked = saved(&decide(Some(&e), &leave_with_grace("l2"), NOW)).clone();
    assert!(revoked.grace_until_ms.is_some());
    // WHEN the migration's answer comes
    let call = MoveCall::Migrate { workspace_id: "ws-1".into(), bundle_id: "wsb-87654321".into() };
    let answered = Input::MoveCalled { event_id: "m1".into(), call, result: Ok(Some("ws-2".into())) };
    let d = decide(Some(&revoked), &answered, NOW + 1_000);
    // THEN its WorkSpace is terminated after the leave's, and no grace period keeps either
    let next = saved(&d).clone();
    assert_eq!(next.moving.as_ref().and_then(|m| m.other_workspace()), Some("ws-2"));
    assert_eq!((next.state, next.grace_until_ms), (Leaving, None));
    assert_eq!(access_action(Some(&next), "l2", NOW + 1_000), Some(Access::Terminate));
    let accepted = Input::TerminationAccepted { leave_event_id: "l2".into(), workspace_id: "ws-1".into() };
    let terminating = saved(&decide(Some(&next), &accepted, NOW + 2_000)).clone();
    let gone = Input::Observed { workspace_id: "ws-1".into(), seen: Seen::Gone, stuck_after_ms: 3_600_000 };
    let d = decide(Some(&terminating), &gone, NOW + 3_000);
    assert_eq!(kinds(&d), ["save", "request termination"]);
    assert_eq!(saved(&d).workspace_id.as_deref(), Some("ws-2"));
}

#[test]
fn a_relocations_workspace_created_after_a_leave_is_terminated_too() {
    // GIVEN a relocation whose request is in flight, then a leave
    let e = relocating_employee();
    let leaving = saved(&decide(Some(&e), &leave("l2"), NOW)).clone();
    assert_eq!(leaving.workspace_id.as_deref(), Some("ws-1"));
    // WHEN the new WorkSpace is created all the same
    let created =
        Input::Created { request_event_id: "m1".into(), workspace_id: "ws-2".into(), state: WorkspaceState::Pending };
    let d = decide(Some(&leaving), &created, NOW + 1_000);
    // THEN it is attached, to be terminated once the old one is gone
    assert_eq!(saved(&d).moving.as_ref().and_then(|m| m.other_workspace()), Some("ws-2"));
    // AND one created for someone who stays (another employment's request) is still left alone
    let active = employee(Active);
    let stray =
        Input::Created { request_event_id: "j0".into(), workspace_id: "ws-9".into(), state: WorkspaceState::Pending };
    assert!(decide(Some(&active), &stray, NOW).steps.is_empty());
}

#[test]
fn a_termination_that_raced_a_rehires_restore_gives_the_rehire_a_new_workspace_once_gone() {
    // GIVEN a leaver whose grace period is over (the terminator read the record and terminates),
    // and a rehire that, meanwhile, made the record restoring (the same WorkSpace to give back)
    let restoring = saved(&decide(Some(&revoked()), &rehire(joiner(NameStatus::Free)), NOW + 2)).clone();
    assert_eq!((restoring.state, restoring.workspace_id.as_deref()), (Restoring, Some("ws-1")));
    // WHEN the termination's call is accepted
    let accepted = Input::TerminationAccepted { leave_event_id: "l1".into(), workspace_id: "ws-1".into() };
    let d = decide(Some(&restoring), &accepted, NOW + 3);
    // THEN the record follows the WorkSpace: terminating, the rehire waiting for it to be gone
    let next = saved(&d).clone();
    assert_eq!((next.state, next.rehire_pending, next.restore_event_id.as_deref()), (Terminating, true, None));
    assert_eq!(access_action(Some(&next), "j2", NOW + 3), None, "the restore is not tried any more");
    // AND once confirmed gone, a new WorkSpace is requested for the rehire
    let gone = Input::Observed { workspace_id: "ws-1".into(), seen: Seen::Gone, stuck_after_ms: 0 };
    let d = decide(Some(&next), &gone, NOW + 4);
    assert_eq!(kinds(&d), ["request WorkSpace", "save"]);
    let requested = saved(&d);
    assert_eq!((requested.state, requested.request_event_id.as_deref()), (Requested, Some("j2")));
    assert_eq!(requested.previous_workspaces.last().map(|p| p.workspace_id.as_str()), Some("ws-1"));
}

#[test]
fn a_termination_accepted_after_the_rehires_restore_finished_still_gives_a_new_workspace() {
    // GIVEN a leaver whose grace period is over (the terminator read the record and is calling
    // TerminateWorkspaces), and a rehire whose restore finished meanwhile: active on ws-1 again
    let restoring = saved(&decide(Some(&revoked()), &rehire(joiner(NameStatus::Free)), NOW + 2)).clone();
    let restored = Input::AccessRestored { restore_event_id: "j2".into() };
    let active = saved(&decide(Some(&restoring), &restored, NOW + 3)).clone();
    assert_eq!((active.state, active.workspace_id.as_deref()), (Active, Some("ws-1")));
    // WHEN the termination's call is accepted
    let accepted = Input::TerminationAccepted { leave_event_id: "l1".into(), workspace_id: "ws-1".into() };
    let d = decide(Some(&active), &accepted, NOW + 4);
    // THEN the record follows the WorkSpace instead of saying active on one that is going
    let next = saved(&d).clone();
    assert_eq!((next.state, next.rehire_pending, next.workspace_id.as_deref()), (Terminating, true, Some("ws-1")));
    // AND once confirmed gone, the rehire gets a new WorkSpace
    let gone = Input::Observed { workspace_id: "ws-1".into(), seen: Seen::Gone, stuck_after_ms: 0 };
    let d = decide(Some(&next), &gone, NOW + 5);
    assert_eq!(kinds(&d), ["request WorkSpace", "save"]);
    assert_eq!(saved(&d).state, Requested);
    // AND an active employee on another WorkSpace is not touched by that termination
    let elsewhere = EmployeeRecord { workspace_id: Some("ws-7".into()), ..active };
    assert!(decide(Some(&elsewhere), &accepted, NOW + 4).steps.is_empty());
}

#[test]
fn a_restore_of_a_workspace_gone_meanwhile_requests_a_new_one_instead_of_failing() {
    // GIVEN a rehire restoring the kept WorkSpace
    let restoring = saved(&decide(Some(&revoked()), &rehire(joiner(NameStatus::Free)), NOW + 2)).clone();
    // WHEN giving it back finds it gone (a termination raced the restore)
    let gone = Input::RestoreFailed {
        restore_event_id: "j2".into(),
        code: "ResourceNotFoundException".into(),
        message: "The resource ws-1 could not be found.".into(),
    };
    let d = decide(Some(&restoring), &gone, NOW + 3);
    // THEN a new WorkSpace is requested, not a failure
    assert_eq!(kinds(&d), ["request WorkSpace", "save"]);
    let next = saved(&d);
    assert_eq!((next.state, next.failure_code.as_deref(), next.workspace_id.as_deref()), (Requested, None, None));
    // AND any other refusal still fails the employee with the code
    let refused = Input::RestoreFailed {
        restore_event_id: "j2".into(),
        code: "InvalidResourceStateException".into(),
        message: "busy".into(),
    };
    assert_eq!(saved(&decide(Some(&restoring), &refused, NOW + 3)).state, Failed);
}

// ---------------------------------------------------------------- the drift audit's actions

#[test]
fn a_workspace_the_audit_found_gone_is_requested_again_once_keyed_by_the_lost_id() {
    // GIVEN an active employee on ws-1 WHEN the audit says ws-1 is gone
    let active = employee(Active);
    let lost = Input::WorkspaceLost { workspace_id: "ws-1".into() };
    let d = decide(Some(&active), &lost, NOW);
    // THEN the WorkSpace is asked (held by the provisioner until the write), keyed by ws-1, then
    // the record is requested
    assert_eq!(kinds(&d), ["request WorkSpace", "save"]);
    let next = saved(&d);
    assert_eq!((next.state, next.workspace_id.as_deref()), (Requested, None));
    assert_eq!(next.request_event_id.as_deref(), Some("lost-ws-1"));
    assert_eq!(next.previous_workspaces.last().map(|p| p.workspace_id.as_str()), Some("ws-1"));
    assert_eq!((next.last_event_id.as_str(), next.last_event_ms), ("j1", NOW - 10_000), "no HR ordering changes");
    let Some(Step::RequestWorkspace(request)) = d.steps.first() else { panic!("{:?}", d.steps) };
    assert_eq!((request.event_id.as_str(), request.username.as_str()), ("lost-ws-1", "jdoe"));
    // AND the provisioner holds that request until the write lands, then acts on it
    assert_eq!(request_status(Some(&active), "lost-ws-1"), RequestStatus::AheadOfConfirmation);
    assert_eq!(request_status(Some(next), "lost-ws-1"), RequestStatus::Wanted);
    assert_eq!(request_status(Some(&active), "lost-ws-9"), RequestStatus::Unwanted { left: false });
    // WHEN decided again on the record it wrote THEN the request goes again, nothing written
    assert_eq!(state_after(Some(next), &lost), (None, vec!["request WorkSpace"]));
    // AND the provisioner's answer is taken as for any request
    let created = Input::Created {
        request_event_id: "lost-ws-1".into(),
        workspace_id: "ws-2".into(),
        state: WorkspaceState::Available,
    };
    assert_eq!(
        decide(Some(next), &created, NOW).saved().map(|r| (r.state, r.workspace_id.clone())),
        Some((Active, Some("ws-2".into())))
    );
}

#[test]
fn a_lost_workspace_changes_nothing_once_the_employee_has_moved_on() {
    // GIVEN records the audit's second look no longer matches: another WorkSpace, a leave, a
    // move under way
    let lost = Input::WorkspaceLost { workspace_id: "ws-1".into() };
    let mut other = employee(Active);
    other.workspace_id = Some("ws-9".into());
    let mut moving = employee(Moving);
    moving.workspace_id = Some("ws-1".into());
    let mut leaving = employee(Leaving);
    leaving.workspace_id = Some("ws-1".into());
    for record in [other, moving, leaving, employee(Terminated), employee(Pending)] {
        // WHEN the audit's action is decided THEN nothing is written or asked
        assert_eq!(state_after(Some(&record), &lost), (None, vec![]), "{:?}", record.state);
    }
    assert_eq!(state_after(None, &lost), (None, vec![]));
}

#[test]
fn a_profile_the_audit_reapplies_goes_through_the_mover_path_without_touching_hr_order() {
    // GIVEN an active employee on ws-1 WHEN the audit re-applies the profile
    let active = employee(Active);
    let reapply = Input::Reapply { event_id: "reapply-5".into(), workspace_id: "ws-1".into() };
    let d = decide(Some(&active), &reapply, NOW);
    // THEN the employee is moving, by the re-apply, the profile and HR's last move unchanged
    assert_eq!(kinds(&d), ["save"]);
    let next = saved(&d);
    assert_eq!(next.state, Moving);
    assert_eq!(next.moving.as_ref().map(|m| m.event_id.as_str()), Some("reapply-5"));
    assert_eq!((next.profile.clone(), next.last_move.clone()), (active.profile.clone(), None));
    assert_eq!(next.clocks.launched_ms, Some(active.state_since_ms), "no cooldown cut short");
    // WHEN decided again on the moving record, or on another WorkSpace THEN nothing happens
    assert_eq!(state_after(Some(next), &reapply), (None, vec![]));
    let mut other = employee(Active);
    other.workspace_id = Some("ws-9".into());
    assert_eq!(state_after(Some(&other), &reapply), (None, vec![]));
    // AND an HR move that arrives meanwhile takes over the work (the mover's table)
    let mover = Mover {
        department: None,
        profile_name: "power".into(),
        profile: profile(),
        client_token: "hr-m".into(),
        name: NameStatus::Free,
    };
    let hr_move = Input::Hr(hr("m1", HrKind::Move(Ok(Box::new(mover)))));
    let d = decide(Some(next), &hr_move, NOW);
    assert_eq!(saved(&d).moving.as_ref().map(|m| m.event_id.as_str()), Some("m1"));
    // GIVEN a re-apply that stopped short (the mover's note) WHEN the audit asks again THEN it is
    // not tried again (reported, not retried daily), until HR's next move clears the note
    let mut stopped = employee(Active);
    stopped.move_note = Some("move reapply-5 stopped: the user volume cannot shrink".into());
    assert_eq!(state_after(Some(&stopped), &reapply), (None, vec![]));
}
