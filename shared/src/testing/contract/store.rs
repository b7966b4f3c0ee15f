//! The [`StateStore`] contract: what the services rely on from DynamoDB, held by the memory store
//! too.

use super::ok;
use crate::domain::audit::{AuditState, Difference, Drift, Finding, Missing, Property, Subject};
use crate::domain::employee::HELD_DUE_MS;
use crate::domain::employee::{EmployeeRecord, EmployeeState, EventOutcome};
use crate::ports::{
    AuditStore, Claim, ClaimOutcome, DueCursor, GuardStatus, HistoryEntry, MAX_TERMINATIONS_PER_WINDOW, NameClaim,
    ScheduledEvent, StateStore, StoreError,
};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn joiner(id: &str, version: u64) -> EmployeeRecord {
    let mut record = EmployeeRecord::new(id, 1_000);
    record.version = version;
    record
}

fn claim(employee: &str, directory: &str, user: &str, take_over_from: Option<(&str, Option<u64>)>) -> NameClaim {
    NameClaim {
        directory_id: directory.into(),
        user_name: user.into(),
        employee_id: employee.into(),
        take_over_from: take_over_from.map(|(h, v)| (h.to_owned(), v)),
    }
}

async fn holder<S: StateStore>(store: &S, directory: &str, user: &str) -> Option<String> {
    ok("name_holder", store.name_holder(directory, user).await)
}

/// A user name has one owner: claimed with the joiner's record in one write, held against
/// other employees whatever the case, kept by its owner, taken over only from the holder's
/// record as it was read.
pub async fn user_name_claims<S: StateStore>(store: &S) {
    let (dir, other_dir) = ("d-1234567890", "d-0987654321");
    // GIVEN E1 claims jdoe with its first record
    assert!(matches!(store.save_joiner(&joiner("E1", 1), None, &claim("E1", dir, "jdoe", None)).await, Ok(())));
    assert_eq!(holder(store, dir, "JDOE").await.as_deref(), Some("E1"), "names compare without case");
    // WHEN E2 asks for JDoe, THEN it is held by E1 and nothing of E2 is written
    match store.save_joiner(&joiner("E2", 1), None, &claim("E2", dir, "JDoe", None)).await {
        Err(StoreError::NameHeld { holder }) => assert_eq!(holder, "E1"),
        other => panic!("expected NameHeld, got {other:?}"),
    }
    assert!(matches!(store.employee("E2").await, Ok(None)), "no record for the refused joiner");
    // The owner keeps its name across its own writes; a stale version is a conflict.
    assert!(matches!(store.save_joiner(&joiner("E1", 2), Some(1), &claim("E1", dir, "jdoe", None)).await, Ok(())));
    let stale = store.save_joiner(&joiner("E1", 3), Some(1), &claim("E1", dir, "jdoe", None)).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    // Taking over from the record as it was read: a holder that changed since is a conflict.
    let mut terminated = joiner("E1", 3);
    terminated.state = EmployeeState::Terminated;
    assert!(matches!(store.save_employee(&terminated, Some(2)).await, Ok(())));
    let late = store.save_joiner(&joiner("E2", 1), None, &claim("E2", dir, "jdoe", Some(("E1", Some(2))))).await;
    assert!(matches!(late, Err(StoreError::Conflict(_))), "{late:?}");
    assert_eq!(holder(store, dir, "jdoe").await.as_deref(), Some("E1"));
    assert!(matches!(store.employee("E2").await, Ok(None)));
    let taken = store.save_joiner(&joiner("E2", 1), None, &claim("E2", dir, "jdoe", Some(("E1", Some(3))))).await;
    assert!(matches!(taken, Ok(())), "{taken:?}");
    assert_eq!(holder(store, dir, "jdoe").await.as_deref(), Some("E2"));
    // Taking over a name the claimant holds already (a repeated take-over) is a conflict, not NameHeld.
    let again = store.save_joiner(&joiner("E2", 2), Some(1), &claim("E2", dir, "jdoe", Some(("E1", Some(3))))).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    // Names are per directory.
    assert!(matches!(store.save_joiner(&joiner("E3", 1), None, &claim("E3", other_dir, "jdoe", None)).await, Ok(())));
    assert_eq!(holder(store, other_dir, "jdoe").await.as_deref(), Some("E3"));
    assert_eq!(holder(store, dir, "nobody").await, None);
}

/// Everything else the services rely on: claims, conditional saves, history, held events and
/// the watched index. Uses employee ids starting with `C-` and event ids starting with `c-`.
pub async fn state_store<S: StateStore>(store: &S) {
    claims(store).await;
    completion_with_its_line(store).await;
    conditional_saves(store).await;
    history(store).await;
    held_events(store).await;
    held_events_in_pages(store).await;
    held_events_shards_take_turns(store).await;
    watched(store).await;
}

const T: i64 = 1_790_000_000_000;

/// What the drift audit keeps: one pass over the table gives every employee record (and nothing
/// else of the table as a record), each subject's open drift and the last audit's state; drift is
/// replaced, read and cleared per subject, for an employee and for a WorkSpace no one owns.
pub async fn audit_store<S: StateStore + AuditStore>(store: &S) {
    let empty = ok("snapshot of an empty table", store.audit_snapshot().await);
    assert!(empty.employees.is_empty() && empty.drift.is_empty() && empty.state.is_none(), "{empty:?}");
    assert_eq!(ok("audit state before any", store.audit_state().await), None);
    // Records, and beside them the other items of an employee and of the table.
    for id in ["A1", "A2"] {
        ok("save", store.save_employee(&record(id, 0, EmployeeState::Active, T), None).await);
        ok("history", store.record_history(&entry(Some(id), Some(&format!("{id}-e")), "m", Some(T), T)).await);
        ok("schedule", store.schedule(&held(id, &format!("{id}-later"), T + 60_000)).await);
    }
    ok("guard", store.admit_terminations(T, 60_000, 5, &keys(&["A1-leave"])).await);
    let missing = Finding::Missing {
        employee_id: "A1".into(),
        workspace_id: "ws-a1000000".into(),
        why: Missing::Gone,
        listed_for_user: None,
    };
    let orphan = Finding::Orphaned {
        workspace_id: "ws-0rphan00".into(),
        directory_id: "d-9067a1b2c3".into(),
        user_name: "nobody".into(),
        workspace_name: None,
        state: "AVAILABLE".into(),
        user_of: None,
    };
    let drift = |finding: &Finding| Drift {
        subject: finding.subject(),
        findings: vec![finding.clone()],
        since_ms: T,
        found_ms: T,
    };
    // Every kind of finding reads back as written (nested and flattened enums, numbers).
    let all_kinds = Drift {
        subject: Subject::Employee("A2".into()),
        findings: vec![
            Finding::Missing {
                employee_id: "A2".into(),
                workspace_id: "ws-a2000000".into(),
                why: Missing::OtherUser { user_name: "someone".into() },
                listed_for_user: Some("ws-a2000001".into()),
            },
            Finding::Mismatched {
                employee_id: "A2".into(),
                workspace_id: "ws-a2000000".into(),
                differences: vec![Difference {
                    property: Property::UserVolumeGib,
                    wanted: "100".into(),
                    found: "50".into(),
                }],
            },
            Finding::Unhealthy {
                workspace_id: "ws-a2000000".into(),
                employee_id: Some("A2".into()),
                state: "ERROR".into(),
                since_ms: T - 1,
            },
        ],
        since_ms: T - 5,
        found_ms: T,
    };
    ok("save drift of every kind", store.save_drift(&all_kinds).await);
    assert_eq!(ok("drift of A2", store.drift_of(&all_kinds.subject).await), Some(all_kinds.clone()));
    ok("clear", store.clear_drift(&all_kinds.subject).await);
    ok("save drift", store.save_drift(&drift(&missing)).await);
    ok("save drift", store.save_drift(&drift(&orphan)).await);
    let state = AuditState {
        audited_ms: T,
        directories: ["d-9067a1b2c3".to_owned()].into(),
        unhealthy_since: [("ws-sick0000".to_owned(), T - 1)].into(),
        counts: [("missing".to_owned(), 1), ("orphaned".to_owned(), 1)].into(),
        employees_checked: 2,
        workspaces_listed: 3,
        describe_calls: 1,
    };
    ok("save state", store.save_audit_state(&state).await);

    let snapshot = ok("snapshot", store.audit_snapshot().await);
    let mut ids: Vec<&str> = snapshot.employees.iter().map(|e| e.employee_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["A1", "A2"], "the records and nothing else of the table");
    let mut subjects: Vec<Subject> = snapshot.drift.iter().map(|d| d.subject.clone()).collect();
    subjects.sort();
    assert_eq!(subjects, [Subject::Employee("A1".into()), Subject::Workspace("ws-0rphan00".into())]);
    assert!(snapshot.drift.contains(&drift(&missing)) && snapshot.drift.contains(&drift(&orphan)), "{snapshot:?}");
    assert_eq!(snapshot.state, Some(state.clone()));
    assert_eq!(ok("audit state", store.audit_state().await), Some(state));
    assert_eq!(ok("drift of A1", store.drift_of(&missing.subject()).await), Some(drift(&missing)));
    assert_eq!(ok("drift of A2", store.drift_of(&Subject::Employee("A2".into())).await), None);

    // Replaced, then cleared; the record beside it stays.
    let mut later = drift(&missing);
    later.found_ms = T + 1;
    ok("replace drift", store.save_drift(&later).await);
    assert_eq!(ok("drift of A1", store.drift_of(&missing.subject()).await), Some(later));
    ok("clear", store.clear_drift(&missing.subject()).await);
    ok("clear what is not there", store.clear_drift(&Subject::Employee("A2".into())).await);
    assert_eq!(ok("drift of A1", store.drift_of(&missing.subject()).await), None);
    assert!(ok("record", store.employee("A1").await).is_some(), "clearing drift leaves the record");
    let snapshot = ok("snapshot", store.audit_snapshot().await);
    assert_eq!(snapshot.drift, vec![drift(&orphan)]);
}

fn event_claim(event: &str, owner: &str, hash: &str, now_ms: i64, until_ms: i64) -> Claim {
    Claim {
        event_id: event.into(),
        payload_hash: hash.into(),
        owner: owner.into(),
        now_ms,
        in_progress_until_ms: until_ms,
        expires_at_s: T / 1000 + 3600,
    }
}

async fn claim_as<S: StateStore>(store: &S, c: &Claim) -> ClaimOutcome {
    ok(&format!("claim {} by {}", c.event_id, c.owner), store.claim(c).await)
}

fn lost(result: Result<(), StoreError>, what: &str) {
    assert!(matches!(result, Err(StoreError::LostClaim(_))), "{what}: expected LostClaim, got {result:?}");
}

/// The idempotency record: a conditional put claims; an in-progress claim holds until its
/// deadline (exclusive); a completed one answers with its outcome and whether the payload is the
/// same; an expired one is forgotten; only the owner of an in-progress claim settles it.
async fn claims<S: StateStore>(store: &S) {
    let until = T + 60_000;
    assert_eq!(claim_as(store, &event_claim("c-1", "a", "h1", T, until)).await, ClaimOutcome::Claimed);
    assert_eq!(claim_as(store, &event_claim("c-1", "b", "h1", T + 1_000, until)).await, ClaimOutcome::InProgress);
    assert_eq!(
        claim_as(store, &event_claim("c-1", "b", "h1", until, until + 60_000)).await,
        ClaimOutcome::InProgress,
        "held up to its deadline, inclusive"
    );
    // A claim made again by its owner (the SDK retrying a put whose reply was lost) is still its.
    assert_eq!(claim_as(store, &event_claim("c-1", "a", "h1", T + 2_000, until)).await, ClaimOutcome::Claimed);
    lost(store.complete("c-1", "b", EventOutcome::Applied, "x", None).await, "complete by a non-owner");
    lost(store.release("c-1", "b").await, "release by a non-owner");
    // Past its deadline it is taken over; the late owner can no longer settle.
    let later = until + 1;
    assert_eq!(claim_as(store, &event_claim("c-1", "c", "h1", later, later + 60_000)).await, ClaimOutcome::Claimed);
    lost(store.complete("c-1", "a", EventOutcome::Applied, "late", None).await, "complete by the former owner");
    lost(store.release("c-1", "a").await, "release by the former owner");
    ok("complete by the owner", store.complete("c-1", "c", EventOutcome::Applied, "done", None).await);
    // Completing again with the same outcome is a retry whose reply was lost: done already.
    ok("complete retried by the owner", store.complete("c-1", "c", EventOutcome::Applied, "done", None).await);
    lost(store.complete("c-1", "c", EventOutcome::Skipped, "twice", None).await, "complete of a completed record");
    lost(store.release("c-1", "c").await, "release of a completed record");
    // Completed: no deadline any more; the outcome comes back, with whether the payload matches.
    let much_later = later + 3_000_000;
    assert_eq!(
        claim_as(store, &event_claim("c-1", "d", "h1", much_later, much_later + 60_000)).await,
        ClaimOutcome::Completed {
            same_payload: true,
            outcome: Some(EventOutcome::Applied),
            reason: Some("done".into())
        }
    );
    assert_eq!(
        claim_as(store, &event_claim("c-1", "e", "h2", much_later, much_later + 60_000)).await,
        ClaimOutcome::Completed {
            same_payload: false,
            outcome: Some(EventOutcome::Applied),
            reason: Some("done".into())
        }
    );
    // Released by its owner, the event can be claimed again (a retry after a failure).
    assert_eq!(claim_as(store, &event_claim("c-2", "f", "h3", T, until)).await, ClaimOutcome::Claimed);
    ok("release by the owner", store.release("c-2", "f").await);
    ok("release retried by the owner: nothing is held", store.release("c-2", "f").await);
    assert_eq!(claim_as(store, &event_claim("c-2", "g", "h3", T, until)).await, ClaimOutcome::Claimed);
    // Nothing to settle for an event never claimed.
    lost(store.complete("c-never", "a", EventOutcome::Applied, "x", None).await, "complete of an unknown event");
    ok("release of an unknown event: nothing is held", store.release("c-never", "a").await);
    // Expiry (seconds, exclusive) forgets a completed record before TTL deletes it...
    let mut short = event_claim("c-3", "h", "h4", T, until);
    short.expires_at_s = T / 1000 + 5;
    assert_eq!(claim_as(store, &short).await, ClaimOutcome::Claimed);
    ok("complete c-3", store.complete("c-3", "h", EventOutcome::Rejected, "bad", None).await);
    let at_expiry = event_claim("c-3", "i", "h4", T + 5_000, T + 65_000);
    assert!(matches!(claim_as(store, &at_expiry).await, ClaimOutcome::Completed { .. }), "not expired at expires_at");
    let after_expiry = event_claim("c-3", "i", "h4", T + 6_000, T + 66_000);
    assert_eq!(claim_as(store, &after_expiry).await, ClaimOutcome::Claimed, "expired");
    // ...and an in-progress one, whatever its deadline.
    let mut held = event_claim("c-4", "j", "h5", T, T + 36_000_000);
    held.expires_at_s = T / 1000 + 1;
    assert_eq!(claim_as(store, &held).await, ClaimOutcome::Claimed);
    assert_eq!(claim_as(store, &event_claim("c-4", "k", "h5", T + 2_000, T + 62_000)).await, ClaimOutcome::Claimed);
    lost(store.complete("c-4", "j", EventOutcome::Applied, "late", None).await, "complete by the expired owner");
    // Completion does not look at the deadline: a late owner still holding its claim settles it.
    assert_eq!(claim_as(store, &event_claim("c-5", "l", "h6", T, T + 1)).await, ClaimOutcome::Claimed);
    ok(
        "complete past the deadline, not taken over",
        store.complete("c-5", "l", EventOutcome::Skipped, "dup", None).await,
    );
    assert_eq!(
        claim_as(store, &event_claim("c-5", "m", "h6", T + 10, T + 60_000)).await,
        ClaimOutcome::Completed {
            same_payload: true,
            outcome: Some(EventOutcome::Skipped),
            reason: Some("dup".into())
        }
    );
}

fn record(id: &str, version: u64, state: EmployeeState, since: i64) -> EmployeeRecord {
    let mut r = EmployeeRecord::new(id, since);
    r.version = version;
    r.state = state;
    r
}

/// Writes are conditional on the version read (`None`: the record must not exist).
async fn conditional_saves<S: StateStore>(store: &S) {
    let first = record("C-S1", 1, EmployeeState::Requested, T);
    ok("create", store.save_employee(&first, None).await);
    let again = store.save_employee(&first, None).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a second create: {again:?}");
    let mut second = record("C-S1", 2, EmployeeState::Pending, T + 1);
    second.username = Some("sone".into());
    ok("update from the version read", store.save_employee(&second, Some(1)).await);
    let stale = store.save_employee(&record("C-S1", 3, EmployeeState::Active, T + 2), Some(1)).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "a stale version: {stale:?}");
    let missing = store.save_employee(&record("C-S2", 5, EmployeeState::Active, T), Some(4)).await;
    assert!(matches!(missing, Err(StoreError::Conflict(_))), "an update of nothing: {missing:?}");
    assert_eq!(ok("read", store.employee("C-S1").await), Some(second.clone()));
    assert_eq!(ok("read a missing one", store.employee("C-S2").await), None);
    ok("create C-S3", store.save_employee(&record("C-S3", 1, EmployeeState::Active, T), None).await);
    let ids = ["C-S3", "C-S2", "C-S1", "C-S3"].map(String::from);
    let mut read: Vec<String> =
        ok("batch read", store.employees(&ids).await).into_iter().map(|r| r.employee_id).collect();
    read.sort();
    assert_eq!(read, ["C-S1", "C-S3"], "each existing record once, missing ones absent");
    // More than one BatchGetItem holds (100 keys).
    let many: Vec<String> = (0..105).map(|i| format!("C-B{i:03}")).collect();
    for id in &many {
        ok("create", store.save_employee(&record(id, 1, EmployeeState::Active, T), None).await);
    }
    let mut asked = many.clone();
    asked.push("C-B999".into());
    let mut read: Vec<String> =
        ok("batch read of 106", store.employees(&asked).await).into_iter().map(|r| r.employee_id).collect();
    read.sort();
    assert_eq!(read, many);
}

fn entry(
    employee: Option<&str>,
    event: Option<&str>,
    message: &str,
    occurred: Option<i64>,
    recorded: i64,
) -> HistoryEntry {
    HistoryEntry {
        employee_id: employee.map(str::to_owned),
        event_id: event.map(str::to_owned),
        message_id: message.into(),
        kind: Some("join".into()),
        occurred_ms: occurred,
        outcome: EventOutcome::Applied,
        reason: String::new(),
        recorded_ms: recorded,
    }
}

/// History lines come back in event time order (the record time without one); one line per
/// delivery; rejected events without an employee go to no employee's history.
async fn history<S: StateStore>(store: &S) {
    let late = entry(Some("C-H1"), Some("c-h-b"), "m-2", Some(T + 3_000), T + 10);
    let early = entry(Some("C-H1"), Some("c-h-a"), "m-1", Some(T + 1_000), T + 20);
    let mut undated = entry(Some("C-H1"), None, "m-3", None, T + 2_000);
    undated.outcome = EventOutcome::Rejected;
    undated.reason = "occurred_at: missing".into();
    undated.kind = None;
    let redelivered = entry(Some("C-H1"), Some("c-h-a"), "m-4", Some(T + 1_000), T + 30);
    for e in [&late, &early, &undated, &redelivered, &early] {
        ok("record_history", store.record_history(e).await);
    }
    let mut rejected = entry(None, None, "m-5", None, T);
    rejected.outcome = EventOutcome::Rejected;
    rejected.reason = "employee.employee_id: missing".into();
    ok("record a rejected event without an employee", store.record_history(&rejected).await);
    let lines = ok("history", store.history("C-H1").await);
    assert_eq!(lines, vec![early, redelivered, undated, late], "event time order, one line per delivery");
    assert_eq!(ok("history of nobody", store.history("C-H9").await), Vec::new());
    assert_eq!(ok("history of REJECTED", store.history("REJECTED").await), Vec::new());
}

/// A claim completed with its delivery's history line writes both or neither: a non-owner
/// writes nothing; the owner's retry (its reply lost) is done already, with one line.
async fn completion_with_its_line<S: StateStore>(store: &S) {
    let line = entry(Some("C-L1"), Some("c-l-1"), "m-l1", Some(T), T + 5);
    assert_eq!(claim_as(store, &event_claim("c-l-1", "a", "h1", T, T + 60_000)).await, ClaimOutcome::Claimed);
    lost(
        store.complete("c-l-1", "b", EventOutcome::Applied, "", Some(&line)).await,
        "complete with a line by a non-owner",
    );
    assert_eq!(ok("history", store.history("C-L1").await), Vec::new(), "no line without the completion");
    ok("complete with its line", store.complete("c-l-1", "a", EventOutcome::Applied, "", Some(&line)).await);
    ok("the same, retried", store.complete("c-l-1", "a", EventOutcome::Applied, "", Some(&line)).await);
    assert_eq!(ok("history", store.history("C-L1").await), vec![line.clone()], "the line, once");
    assert_eq!(
        claim_as(store, &event_claim("c-l-1", "c", "h1", T + 1, T + 60_000)).await,
        ClaimOutcome::Completed {
            same_payload: true,
            outcome: Some(EventOutcome::Applied),
            reason: Some(String::new())
        }
    );
    let mut other = line.clone();
    other.message_id = "m-l2".into();
    lost(
        store.complete("c-l-1", "a", EventOutcome::Skipped, "", Some(&other)).await,
        "complete again with another outcome",
    );
    assert_eq!(ok("history", store.history("C-L1").await), vec![line], "still the one line");
}

fn held(employee: &str, event: &str, effective: i64) -> ScheduledEvent {
    ScheduledEvent {
        employee_id: employee.into(),
        event_id: event.into(),
        kind: "leave".into(),
        occurred_ms: T,
        effective_ms: effective,
        body: format!("{{\"event_id\":\"{event}\"}}"),
    }
}

/// Ours among the events due at `now`, read in pages of `page` events: each page holds at most
/// that many, and no event comes twice.
async fn due_ids_paged<S: StateStore>(store: &S, now: i64, page: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut from = Some(DueCursor::default());
    while let Some(cursor) = from {
        let read = ok("due", store.due(now, &cursor, page).await);
        assert!(read.events.len() <= page, "a page of {} holds {}", page, read.events.len());
        ids.extend(read.events.into_iter().filter(|e| e.employee_id.starts_with("C-D")).map(|e| e.event_id));
        from = read.next;
    }
    ids
}

async fn due_ids<S: StateStore>(store: &S, now: i64) -> BTreeSet<String> {
    let ids = due_ids_paged(store, now, 1000).await;
    let distinct: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(distinct.len(), ids.len(), "an event listed twice: {ids:?}");
    distinct
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

/// Held events: scheduling is idempotent per event, due at their effective time (inclusive),
/// removed once (`false` the second time).
async fn held_events<S: StateStore>(store: &S) {
    let (a, b, c) =
        (held("C-D1", "c-d-a", T + 10_000), held("C-D1", "c-d-b", T + 20_000), held("C-D2", "c-d-c", T + 5_000));
    for e in [&a, &b, &c, &a] {
        ok("schedule", store.schedule(e).await);
    }
    let mut for_d1 = ok("scheduled_for", store.scheduled_for("C-D1").await);
    for_d1.sort_by(|x, y| x.event_id.cmp(&y.event_id));
    assert_eq!(for_d1, vec![a.clone(), b.clone()], "scheduled twice, held once");
    eventually("due events", || async {
        due_ids(store, T).await.is_empty()
            && due_ids(store, T + 10_000).await == set(&["c-d-a", "c-d-c"])
            && due_ids(store, T + 30_000).await == set(&["c-d-a", "c-d-b", "c-d-c"])
    })
    .await;
    assert!(ok("unschedule", store.unschedule("C-D1", "c-d-a").await), "held, so removed");
    assert!(!ok("unschedule again", store.unschedule("C-D1", "c-d-a").await), "no longer held");
    assert!(!ok("unschedule unknown", store.unschedule("C-D9", "c-d-z").await), "never held");
    assert_eq!(ok("scheduled_for", store.scheduled_for("C-D1").await), vec![b]);
    assert_eq!(ok("scheduled_for nobody", store.scheduled_for("C-D9").await), Vec::new());
    eventually("due after unschedule", || async { due_ids(store, T + 30_000).await == set(&["c-d-b", "c-d-c"]) }).await;
}

/// Held events read a page at a time: every due event comes once, whatever the page size, pages
/// never hold more than asked, and the pages go on across the index's shards.
async fn held_events_in_pages<S: StateStore>(store: &S) {
    let events: Vec<ScheduledEvent> =
        (0..9).map(|i| held(&format!("C-DP{i}"), &format!("c-dp-{i}"), T + 40_000 + i64::from(i % 3))).collect();
    for e in &events {
        ok("schedule", store.schedule(e).await);
    }
    let ours = |ids: Vec<String>| -> Vec<String> { ids.into_iter().filter(|id| id.starts_with("c-dp-")).collect() };
    let mut want: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    want.sort();
    for page in [1, 2, 4, 100] {
        eventually("due in pages", || async {
            let mut read = ours(due_ids_paged(store, T + 50_000, page).await);
            read.sort();
            read == want
        })
        .await;
    }
    for e in &events {
        ok("unschedule", store.unschedule(&e.employee_id, &e.event_id).await);
    }
}

/// Shards take turns: an event due in one shard is listed before the events due earlier in
/// another are all listed, however many those are.
async fn held_events_shards_take_turns<S: StateStore>(store: &S) {
    use crate::adapters::dynamo::{WORK_SHARDS, shard_of};
    let in_shard = |shard: u32| (0..).map(|i| format!("C-DT{i}")).filter(move |id| shard_of(id) == shard);
    let early: Vec<ScheduledEvent> =
        in_shard(0).take(12).enumerate().map(|(i, id)| held(&id, &format!("c-dt-{i}"), T + 60_000)).collect();
    let late = held(&in_shard(WORK_SHARDS - 1).next().unwrap_or_default(), "c-dt-late", T + 61_000);
    for e in early.iter().chain([&late]) {
        ok("schedule", store.schedule(e).await);
    }
    eventually("the late event within the first turns", || async {
        let ids = due_ids_paged(store, T + 70_000, 2).await;
        let ours: Vec<&String> = ids.iter().filter(|id| id.starts_with("c-dt-")).collect();
        let late_at = ours.iter().position(|id| *id == "c-dt-late");
        // Pages of 2: the late event's shard has its turn after one page of the first shard
        // (two pages if the store holds others' events due in its shard before it).
        ours.len() == early.len() + 1 && late_at.is_some_and(|at| at <= 4)
    })
    .await;
    for e in early.iter().chain([&late]) {
        ok("unschedule", store.unschedule(&e.employee_id, &e.event_id).await);
    }
}

async fn watched_has<S: StateStore>(store: &S, state: EmployeeState, id: &str) -> bool {
    watched_by(store, state, id, T + 1_000).await
}

async fn watched_by<S: StateStore>(store: &S, state: EmployeeState, id: &str, due_by_ms: i64) -> bool {
    ok("watched", store.watched(state, due_by_ms).await).iter().any(|w| w == id)
}

/// The reconciler finds PENDING and TERMINATING employees, and only while they are.
async fn watched<S: StateStore>(store: &S) {
    for (id, state) in [
        ("C-W1", EmployeeState::Pending),
        ("C-W2", EmployeeState::Active),
        ("C-W3", EmployeeState::Terminating),
        ("C-W4", EmployeeState::Requested),
    ] {
        ok("save", store.save_employee(&record(id, 1, state, T), None).await);
    }
    eventually("watched", || async {
        watched_has(store, EmployeeState::Pending, "C-W1").await
            && watched_has(store, EmployeeState::Terminating, "C-W3").await
    })
    .await;
    assert!(!watched_has(store, EmployeeState::Pending, "C-W3").await, "by state");
    assert!(!watched_has(store, EmployeeState::Active, "C-W2").await, "ACTIVE is not watched");
    assert!(!watched_has(store, EmployeeState::Requested, "C-W4").await, "REQUESTED is not watched");
    ok("settle", store.save_employee(&record("C-W1", 2, EmployeeState::Active, T + 1), Some(1)).await);
    eventually("no longer watched", || async { !watched_has(store, EmployeeState::Pending, "C-W1").await }).await;

    // Access revoked: listed only once its grace period is over.
    let mut revoked = record("C-W5", 1, EmployeeState::Revoked, T);
    revoked.grace_until_ms = Some(T + 3_600_000);
    ok("save", store.save_employee(&revoked, None).await);
    eventually("revoked, due", || async { watched_by(store, EmployeeState::Revoked, "C-W5", T + 3_600_000).await })
        .await;
    assert!(!watched_by(store, EmployeeState::Revoked, "C-W5", T + 3_599_999).await, "not before its grace ends");

    // Leaving with its termination held by the guard: listed for the operator only.
    let mut held = record("C-W6", 1, EmployeeState::Leaving, T);
    held.held_since_ms = Some(T);
    ok("save", store.save_employee(&held, None).await);
    eventually("held, listed", || async { watched_by(store, EmployeeState::Leaving, "C-W6", HELD_DUE_MS).await }).await;
    assert!(!watched_by(store, EmployeeState::Leaving, "C-W6", T + 86_400_000).await, "never due for the reconciler");
}

const HOUR: i64 = 3_600_000;
/// The start of an hour-long window, some time after `T`.
const W0: i64 = (T / HOUR + 1) * HOUR;

fn keys(names: &[&str]) -> Vec<String> {
    names.iter().map(|k| (*k).to_owned()).collect()
}

/// Asks the guard (windows of an hour) and returns its answers.
async fn admit<S: StateStore>(store: &S, now: i64, limit: u32, names: &[&str]) -> Vec<bool> {
    ok(&format!("admit {names:?} at {now}"), store.admit_terminations(now, HOUR, limit, &keys(names)).await)
}

async fn status<S: StateStore>(store: &S) -> GuardStatus {
    ok("guard_status", store.guard_status().await)
}

/// The mass-termination guard: up to the limit per window admitted, a retried key admitted again
/// without counting twice, the key past the limit refused and the guard tripped, nothing admitted
/// while tripped (in any window) until an operator resets it, a new window counted afresh, and
/// never more than the limit admitted in a window by concurrent calls. Takes the store shared so
/// that tasks can call it at once; expects the guard never used.
pub async fn termination_guard<S: StateStore + 'static>(store: Arc<S>) {
    let s = &*store;
    guard_arguments(s).await;
    guard_counts_and_trips(s).await;
    guard_holds_until_reset(s).await;
    guard_windows(s).await;
    guard_concurrent_calls(&store).await;
}

/// Nothing asked, nothing counted; arguments the store cannot keep are refused before anything changes.
async fn guard_arguments<S: StateStore>(store: &S) {
    // GIVEN a guard never used, THEN it is not tripped and has counted nothing
    assert_eq!(status(store).await, GuardStatus::default());
    // WHEN nothing is asked, THEN nothing is answered
    assert_eq!(admit(store, W0, 3, &[]).await, Vec::<bool>::new());
    // WHEN the window or the limit cannot be kept, THEN the call is refused for good
    for (window, limit) in [(0, 3), (-HOUR, 3), (HOUR, MAX_TERMINATIONS_PER_WINDOW + 1)] {
        let refused = store.admit_terminations(W0, window, limit, &keys(&["k-x"])).await;
        assert!(matches!(refused, Err(StoreError::Invalid { .. })), "window {window}, limit {limit}: {refused:?}");
    }
    assert_eq!(status(store).await, GuardStatus::default(), "nothing changed");
}

/// Under the limit all admitted; a retry (in the same call too) counted once and admitted again;
/// the key past the limit refused, tripping the guard, and every later key of its call held.
async fn guard_counts_and_trips<S: StateStore>(store: &S) {
    // GIVEN a limit of 3 an hour, WHEN two leaves are asked, THEN both are admitted
    assert_eq!(admit(store, W0 + 10, 3, &["k-a", "k-b"]).await, [true, true]);
    // WHEN the same batch is retried (one key twice in it), THEN it is admitted again, counted once
    assert_eq!(admit(store, W0 + 20, 3, &["k-b", "k-a", "k-b"]).await, [true, true, true]);
    let counted = status(store).await;
    assert_eq!((counted.admitted_in_window, counted.window_start_ms, counted.window_ms), (2, Some(W0), Some(HOUR)));
    // WHEN a third arrives, THEN it is admitted: the limit is reached, not passed
    assert_eq!(admit(store, W0 + 30, 3, &["k-c"]).await, [true]);
    // WHEN a batch at the limit is retried, THEN it is still admitted
    assert_eq!(admit(store, W0 + 40, 3, &["k-a", "k-c"]).await, [true, true]);
    assert!(!status(store).await.is_tripped());
    // WHEN a fourth key comes, between a retried one and another retried one,
    // THEN the retry before it is admitted, it is refused and trips the guard, and the rest of
    // the call is held, the retry after it too
    assert_eq!(admit(store, W0 + 50, 3, &["k-b", "k-d", "k-a", "k-e"]).await, [true, false, false, false]);
    assert_eq!(
        status(store).await,
        GuardStatus {
            tripped_since_ms: Some(W0 + 50),
            tripped_by: Some("k-d".into()),
            held: 3,
            last_held_ms: Some(W0 + 50),
            window_start_ms: Some(W0),
            window_ms: Some(HOUR),
            admitted_in_window: 3,
            last_reset_ms: None,
        }
    );
}

/// Tripped, the guard holds everything, retries and new windows included, and keeps counting what
/// it held, until an operator resets it; the reset starts the window's count afresh.
async fn guard_holds_until_reset<S: StateStore>(store: &S) {
    // GIVEN the guard tripped at W0 + 50 (guard_counts_and_trips)
    // WHEN a key admitted before is retried, THEN it is held
    assert_eq!(admit(store, W0 + 60, 3, &["k-a"]).await, [false]);
    // WHEN the next window comes, THEN its keys are held too
    assert_eq!(admit(store, W0 + HOUR + 10, 3, &["k-f", "k-g"]).await, [false, false]);
    let held = status(store).await;
    assert_eq!(
        (held.tripped_since_ms, held.tripped_by.as_deref(), held.held, held.last_held_ms),
        (Some(W0 + 50), Some("k-d"), 6, Some(W0 + HOUR + 10)),
        "tripped since the first refusal, counting every one since"
    );
    assert_eq!(held.admitted_at(W0 + HOUR + 10), 0, "the window counted last has ended");
    // WHEN an operator resets it, THEN it is no longer tripped and has counted nothing
    ok("reset_guard", store.reset_guard(W0 + HOUR + 20).await);
    let reset = status(store).await;
    assert_eq!(
        (reset.tripped_since_ms, reset.tripped_by, reset.held, reset.last_held_ms, reset.admitted_in_window),
        (None, None, 0, None, 0)
    );
    assert_eq!(reset.last_reset_ms, Some(W0 + HOUR + 20));
    // AND the held keys are admitted again, up to the limit, after which it trips again
    assert_eq!(admit(store, W0 + HOUR + 30, 3, &["k-f", "k-g", "k-a", "k-h"]).await, [true, true, true, false]);
    let again = status(store).await;
    assert_eq!(
        (again.tripped_since_ms, again.tripped_by.as_deref(), again.held),
        (Some(W0 + HOUR + 30), Some("k-h"), 1)
    );
    // WHEN it is reset in the same window, THEN that window counts afresh from the reset
    ok("reset_guard", store.reset_guard(W0 + HOUR + 40).await);
    assert_eq!(admit(store, W0 + HOUR + 50, 3, &["k-h", "k-f"]).await, [true, true]);
    assert_eq!(status(store).await.admitted_at(W0 + HOUR + 50), 2);
    ok("reset_guard", store.reset_guard(W0 + HOUR + 60).await);
}

/// Each fixed window counts afresh while the guard is not tripped; a call whose clock lags counts
/// in the newest window.
async fn guard_windows<S: StateStore>(store: &S) {
    let w = W0 + 10 * HOUR;
    // GIVEN a window that reached its limit of 2
    assert_eq!(admit(store, w + 1, 2, &["k-a", "k-b"]).await, [true, true]);
    // WHEN the next window begins, THEN it counts afresh, keys of the last one included
    assert_eq!(admit(store, w + HOUR, 2, &["k-a"]).await, [true]);
    let next = status(store).await;
    assert_eq!((next.window_start_ms, next.admitted_in_window, next.is_tripped()), (Some(w + HOUR), 1, false));
    assert_eq!(next.admitted_at(w + HOUR), 1);
    assert_eq!(next.admitted_at(w + 2 * HOUR), 0, "nothing counted yet in the window after");
    // WHEN a call whose clock lags behind (still in the last window) asks, THEN it counts in the
    // newest window: it takes the last place, and the key after it trips the guard
    assert_eq!(admit(store, w + HOUR - 5, 2, &["k-c", "k-b"]).await, [true, false]);
    let late = status(store).await;
    assert_eq!(
        (late.window_start_ms, late.admitted_in_window, late.tripped_by.as_deref()),
        (Some(w + HOUR), 2, Some("k-b"))
    );
    ok("reset_guard", store.reset_guard(w + HOUR + 1).await);
    // A limit of 0 holds everything: the first key trips the guard.
    assert_eq!(admit(store, w + 3 * HOUR, 0, &["k-z"]).await, [false]);
    assert_eq!(status(store).await.tripped_by.as_deref(), Some("k-z"));
    ok("reset_guard", store.reset_guard(w + 3 * HOUR + 1).await);
}

/// Calls at once from several tasks: never more than the limit admitted in a window, every key
/// answered, and a batch retried by several tasks at once admitted in each and counted once.
async fn guard_concurrent_calls<S: StateStore + 'static>(store: &Arc<S>) {
    let w = W0 + 20 * HOUR;
    // GIVEN a limit of 25 and 8 invocations of 10 leaves each, all at once
    let calls = (0..8).map(|task| {
        let store = Arc::clone(store);
        let names: Vec<String> = (0..10).map(|i| format!("k-{task}-{i}")).collect();
        tokio::spawn(async move { store.admit_terminations(w + task, HOUR, 25, &names).await })
    });
    let mut answers = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        answers.push(ok("admit at once", call.await.unwrap_or_else(|e| panic!("task: {e}"))));
    }
    // THEN exactly 25 are admitted in all, the rest held, and the guard tripped
    let admitted: usize = answers.iter().map(|a| a.iter().filter(|x| **x).count()).sum();
    assert_eq!(admitted, 25, "{answers:?}");
    for a in &answers {
        assert_eq!(a.len(), 10);
        assert!(a.iter().skip_while(|x| **x).all(|x| !*x), "nothing admitted after a refusal in a call: {a:?}");
    }
    let tripped = status(store.as_ref()).await;
    assert_eq!((tripped.admitted_in_window, tripped.held, tripped.is_tripped()), (25, 55, true));
    ok("reset_guard", store.reset_guard(w + 100).await);
    // GIVEN a batch of 10 under a limit of 10, WHEN 4 invocations retry it at once,
    // THEN each has it all admitted, and it is counted once
    let calls = (0..4).map(|task| {
        let store = Arc::clone(store);
        let names: Vec<String> = (0..10).map(|i| format!("k-r-{i}")).collect();
        tokio::spawn(async move { store.admit_terminations(w + 200 + task, HOUR, 10, &names).await })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(ok("retry at once", call.await.unwrap_or_else(|e| panic!("task: {e}"))), [true; 10]);
    }
    let retried = status(store.as_ref()).await;
    assert_eq!((retried.admitted_in_window, retried.held, retried.is_tripped()), (10, 0, false));
}

/// Waits (a little, for an eventually consistent index) until `check` holds.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..50 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: never held");
}

#[cfg(test)]
mod tests {
    use crate::testing::MemoryStore;

    #[tokio::test]
    async fn the_memory_store_keeps_the_user_name_contract() {
        super::user_name_claims(&MemoryStore::default()).await;
    }

    #[tokio::test]
    async fn the_memory_store_keeps_the_state_store_contract() {
        super::state_store(&MemoryStore::default()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_memory_store_keeps_the_termination_guard_contract() {
        super::termination_guard(std::sync::Arc::new(MemoryStore::default())).await;
    }

    #[tokio::test]
    async fn the_memory_store_keeps_the_audit_store_contract() {
        super::audit_store(&MemoryStore::default()).await;
    }
}
