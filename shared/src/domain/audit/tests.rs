use super::*;
use crate::domain::workspace::WorkspaceProperties;
use serde_json::json;

const DIR: &str = "d-9067a1b2c3";
const HOUR: i64 = 3_600_000;
const NOW: i64 = 1_800_000_000_000;

fn rules() -> AuditRules {
    AuditRules { unhealthy_after_ms: 24 * HOUR }
}

fn directories() -> BTreeSet<String> {
    [DIR.to_owned()].into()
}

fn profile() -> serde_json::Value {
    json!({
        "directory_id": DIR, "bundle_id": "wsb-stdwin2022", "running_mode": "AUTO_STOP",
        "auto_stop_minutes": 60, "compute_type": "STANDARD", "user_volume_gib": 50
    })
}

fn employee(id: &str, state: &str, workspace_id: Option<&str>) -> EmployeeRecord {
    serde_json::from_value(json!({
        "employee_id": id, "state": state, "version": 3, "last_event_ms": 0, "last_event_id": "e",
        "username": id.to_lowercase(), "profile_name": "standard", "profile": profile(),
        "workspace_id": workspace_id, "state_since_ms": 0, "updated_ms": 0
    }))
    .expect("a valid record")
}

/// A WorkSpace as the profile makes it, for `user`.
fn workspace(id: &str, user: &str) -> WorkspaceInfo {
    WorkspaceInfo {
        workspace_id: id.into(),
        directory_id: DIR.into(),
        user_name: user.into(),
        workspace_name: None,
        state: WorkspaceState::Available,
        error_code: None,
        error_message: None,
        bundle_id: Some("wsb-stdwin2022".into()),
        properties: Some(WorkspaceProperties {
            running_mode: Some("AUTO_STOP".into()),
            auto_stop_minutes: Some(60),
            root_volume_gib: Some(80),
            user_volume_gib: Some(50),
            compute_type: Some("STANDARD".into()),
        }),
    }
}

fn run(employees: &[EmployeeRecord], listed: &[WorkspaceInfo]) -> AuditOutcome {
    audit(employees, listed, &directories(), &BTreeMap::new(), rules(), NOW)
}

#[test]
fn a_table_that_agrees_with_the_workspaces_has_no_finding() {
    // GIVEN two active employees with their WorkSpaces, a leaver on the way out, a joiner pending
    let employees = [
        employee("E1", "active", Some("ws-1")),
        employee("E2", "active", Some("ws-2")),
        employee("E3", "terminating", Some("ws-3")),
        employee("E4", "pending", Some("ws-4")),
    ];
    let mut leaving = workspace("ws-3", "e3");
    leaving.state = WorkspaceState::Terminating;
    let mut pending = workspace("ws-4", "e4");
    pending.state = WorkspaceState::Pending;
    // WHEN audited against what is listed
    let outcome = run(&employees, &[workspace("ws-1", "E1"), workspace("ws-2", "e2"), leaving, pending]);
    // THEN nothing is found (user names compared as the service does: not case-sensitive)
    assert_eq!(outcome.findings, vec![]);
    assert_eq!((outcome.employees_checked, outcome.workspaces_listed), (4, 4));
}

#[test]
fn an_active_employee_whose_workspace_is_gone_is_missing_with_what_is_listed_for_the_user() {
    let employees = [employee("E1", "active", Some("ws-1")), employee("E2", "active", Some("ws-2"))];
    // GIVEN E1's WorkSpace deleted, and E2's deleted and recreated by hand under a new id
    let outcome = run(&employees, &[workspace("ws-9", "e2")]);
    // THEN both are missing; E2's finding names the WorkSpace now listed for the user (which is
    // not reported again as an orphan)
    assert_eq!(
        outcome.findings,
        vec![
            Finding::Missing {
                employee_id: "E1".into(),
                workspace_id: "ws-1".into(),
                why: Missing::Gone,
                listed_for_user: None
            },
            Finding::Missing {
                employee_id: "E2".into(),
                workspace_id: "ws-2".into(),
                why: Missing::Gone,
                listed_for_user: Some("ws-9".into())
            },
        ]
    );
}

#[test]
fn an_active_employee_whose_workspace_id_is_another_users_is_missing() {
    let outcome = run(&[employee("E1", "active", Some("ws-1"))], &[workspace("ws-1", "someone.else")]);
    assert_eq!(
        outcome.findings[0],
        Finding::Missing {
            employee_id: "E1".into(),
            workspace_id: "ws-1".into(),
            why: Missing::OtherUser { user_name: "someone.else".into() },
            listed_for_user: None,
        }
    );
    // AND the WorkSpace itself is wanted by a record: it is not also called an orphan
    assert_eq!(outcome.findings.len(), 1, "{:?}", outcome.findings);
}

#[test]
fn a_workspace_no_record_wants_is_orphaned_whoever_its_user_is() {
    // GIVEN one made by hand for a stranger, and one left behind for a terminated employee
    let employees = [employee("E1", "active", Some("ws-1")), employee("E5", "terminated", None)];
    let outcome = run(&employees, &[workspace("ws-1", "e1"), workspace("ws-x", "stranger"), workspace("ws-5", "e5")]);
    let orphans: Vec<(&str, &Option<String>)> = outcome
        .findings
        .iter()
        .filter_map(|f| match f {
            Finding::Orphaned { workspace_id, user_of, .. } => Some((workspace_id.as_str(), user_of)),
            _ => None,
        })
        .collect();
    // THEN both are orphans (a terminated employee wants no WorkSpace), the leaver's named so
    assert_eq!(orphans, vec![("ws-x", &None), ("ws-5", &Some("E5".to_owned()))]);
}

#[test]
fn a_move_or_a_create_under_way_is_not_an_orphan() {
    // GIVEN a mover migrating to a new WorkSpace, and a joiner whose create went out before the
    // record learnt its id
    let mut mover = employee("E1", "moving", Some("ws-1"));
    mover.moving = Some(serde_json::from_value(json!({ "event_id": "m1", "migrating_to": "ws-1b" })).expect("move"));
    let joiner = employee("E2", "requested", None);
    let outcome = run(&[mover, joiner], &[workspace("ws-1", "e1"), workspace("ws-1b", "e1"), workspace("ws-2", "e2")]);
    assert_eq!(outcome.findings, vec![]);
}

#[test]
fn an_active_employees_workspace_being_terminated_is_missing_not_mismatched() {
    // GIVEN an active employee whose WorkSpace, changed in the console, is then deleted there
    // (listed TERMINATING for a while)
    let mut going = workspace("ws-1", "e1");
    going.state = WorkspaceState::Terminating;
    going.properties.as_mut().unwrap().running_mode = Some("ALWAYS_ON".into());
    let outcome = run(&[employee("E1", "active", Some("ws-1"))], &[going]);
    // THEN it is missing (a profile re-applied to it would fail with it), not mismatched
    assert_eq!(
        outcome.findings,
        vec![Finding::Missing {
            employee_id: "E1".into(),
            workspace_id: "ws-1".into(),
            why: Missing::Terminating,
            listed_for_user: None
        }]
    );
    assert_eq!(outcome.findings[0].summary(), "missing: the employee's WorkSpace ws-1 is being terminated");
}

#[test]
fn an_active_employees_workspace_that_differs_from_the_profile_is_mismatched_property_by_property() {
    let mut changed = workspace("ws-1", "e1");
    changed.bundle_id = Some("wsb-perfwin2022".into());
    if let Some(p) = changed.properties.as_mut() {
        p.compute_type = Some("PERFORMANCE".into());
        p.user_volume_gib = Some(100);
    }
    let outcome = run(&[employee("E1", "active", Some("ws-1"))], &[changed]);
    let d = |property, wanted: &str, found: &str| Difference { property, wanted: wanted.into(), found: found.into() };
    assert_eq!(
        outcome.findings,
        vec![Finding::Mismatched {
            employee_id: "E1".into(),
            workspace_id: "ws-1".into(),
            differences: vec![
                d(Property::Bundle, "wsb-stdwin2022", "wsb-perfwin2022"),
                d(Property::ComputeType, "STANDARD", "PERFORMANCE"),
                d(Property::UserVolumeGib, "50", "100"),
            ],
        }]
    );
}

#[test]
fn a_property_the_profile_leaves_to_the_bundle_or_the_service_does_not_report_is_not_compared() {
    // The profile sets no root volume; the listing reports no compute type.
    let mut info = workspace("ws-1", "e1");
    if let Some(p) = info.properties.as_mut() {
        p.root_volume_gib = Some(175);
        p.compute_type = None;
    }
    assert_eq!(run(&[employee("E1", "active", Some("ws-1"))], &[info]).findings, vec![]);
}

#[test]
fn an_unhealthy_workspace_is_a_finding_only_once_it_has_been_so_for_long() {
    let employees = [employee("E1", "active", Some("ws-1"))];
    let mut broken = workspace("ws-1", "e1");
    broken.state = WorkspaceState::Unhealthy;
    // WHEN first seen UNHEALTHY
    let first = audit(&employees, std::slice::from_ref(&broken), &directories(), &BTreeMap::new(), rules(), NOW);
    // THEN no finding yet, and the time it was first seen is kept for the next audit
    assert_eq!(first.findings, vec![]);
    assert_eq!(first.unhealthy_since, BTreeMap::from([("ws-1".to_owned(), NOW)]));
    // WHEN still UNHEALTHY a day later
    let later = NOW + 24 * HOUR;
    let second = audit(&employees, &[broken], &directories(), &first.unhealthy_since, rules(), later);
    // THEN it is reported, with its employee and since when
    assert_eq!(
        second.findings,
        vec![Finding::Unhealthy {
            workspace_id: "ws-1".into(),
            employee_id: Some("E1".into()),
            state: "UNHEALTHY".into(),
            since_ms: NOW
        }]
    );
    // AND once it is AVAILABLE again, it is forgotten
    let third = audit(&employees, &[workspace("ws-1", "e1")], &directories(), &second.unhealthy_since, rules(), later);
    assert_eq!((third.findings, third.unhealthy_since), (vec![], BTreeMap::new()));
}

#[test]
fn employees_and_workspaces_outside_the_audited_directories_are_left_alone() {
    let mut elsewhere = employee("E1", "active", Some("ws-1"));
    if let Some(p) = elsewhere.profile.as_mut() {
        p.directory_id = "d-0000000000".into();
    }
    let outcome = run(&[elsewhere], &[]);
    assert_eq!((outcome.findings, outcome.employees_checked), (vec![], 0));
}

#[test]
fn a_user_decoupled_workspace_belongs_to_the_user_its_name_carries() {
    let mut decoupled = workspace("ws-1", UNDEFINED_USER);
    decoupled.workspace_name = Some("E1".into());
    assert_eq!(run(&[employee("E1", "active", Some("ws-1"))], &[decoupled]).findings, vec![]);
}

#[test]
fn a_finding_reads_as_flat_json_named_by_its_kind() {
    let finding = Finding::Missing {
        employee_id: "E1".into(),
        workspace_id: "ws-1".into(),
        why: Missing::OtherUser { user_name: "bob".into() },
        listed_for_user: None,
    };
    assert_eq!(finding.kind(), "missing");
    assert_eq!(
        serde_json::to_value(&finding).expect("serialisable"),
        json!({ "kind": "missing", "employee_id": "E1", "workspace_id": "ws-1", "why": "other_user", "user_name": "bob", "listed_for_user": null })
    );
}

fn missing(employee_id: &str, workspace_id: &str) -> Finding {
    Finding::Missing {
        employee_id: employee_id.into(),
        workspace_id: workspace_id.into(),
        why: Missing::Gone,
        listed_for_user: None,
    }
}

fn orphan(workspace_id: &str, user_of: Option<&str>) -> Finding {
    Finding::Orphaned {
        workspace_id: workspace_id.into(),
        directory_id: DIR.into(),
        user_name: "x".into(),
        workspace_name: None,
        state: "AVAILABLE".into(),
        user_of: user_of.map(str::to_owned),
    }
}

fn orphan_of(workspace_id: &str, user_name: &str, employee_id: &str) -> Finding {
    Finding::Orphaned {
        workspace_id: workspace_id.into(),
        directory_id: DIR.into(),
        user_name: user_name.into(),
        workspace_name: None,
        state: "AVAILABLE".into(),
        user_of: Some(employee_id.into()),
    }
}

#[test]
fn every_finding_reads_back_as_it_was_written_and_every_kind_is_listed() {
    let findings = [
        missing("E1", "ws-1"),
        orphan("ws-2", Some("E2")),
        Finding::Mismatched {
            employee_id: "E3".into(),
            workspace_id: "ws-3".into(),
            differences: vec![Difference {
                property: Property::ComputeType,
                wanted: "STANDARD".into(),
                found: "POWER".into(),
            }],
        },
        Finding::Unhealthy { workspace_id: "ws-4".into(), employee_id: None, state: "ERROR".into(), since_ms: NOW },
    ];
    for finding in &findings {
        let text = serde_json::to_string(finding).expect("serialisable");
        assert_eq!(&serde_json::from_str::<Finding>(&text).expect("readable"), finding, "{text}");
        assert!(Finding::KINDS.contains(&finding.kind()));
    }
    let kinds: BTreeSet<&str> = findings.iter().map(Finding::kind).collect();
    assert_eq!(kinds.len(), Finding::KINDS.len());
}

#[test]
fn drift_is_written_only_when_it_changes_lined_when_it_opens_and_cleared_when_it_resolves() {
    // GIVEN E1 missing and an orphan, found an hour ago
    let before = drift_changes(&[], &[missing("E1", "ws-1"), orphan("ws-9", None)], NOW - HOUR);
    assert_eq!(before.opened.len(), 2);
    assert_eq!(before.write.len(), 2);
    // WHEN the same is found again, with E2 now missing too, and the orphan gone
    let now = drift_changes(&before.write, &[missing("E1", "ws-1"), missing("E2", "ws-2")], NOW);
    // THEN only E2 is written and lined; the orphan is cleared; E1 keeps its first sighting
    assert_eq!(now.opened, vec![missing("E2", "ws-2")]);
    assert_eq!(now.write.iter().map(|d| d.subject.clone()).collect::<Vec<_>>(), vec![Subject::Employee("E2".into())]);
    assert_eq!(now.write[0].since_ms, NOW);
    assert_eq!(
        now.clear.iter().map(|d| d.subject.clone()).collect::<Vec<_>>(),
        vec![Subject::Workspace("ws-9".into())]
    );
    // AND a finding whose details change (another property differs) is rewritten, not lined again
    let mismatched = |found: &str| Finding::Mismatched {
        employee_id: "E3".into(),
        workspace_id: "ws-3".into(),
        differences: vec![Difference { property: Property::Bundle, wanted: "wsb-a".into(), found: found.into() }],
    };
    let first = drift_changes(&[], &[mismatched("wsb-b")], NOW - HOUR);
    let second = drift_changes(&first.write, &[mismatched("wsb-c")], NOW);
    assert_eq!((second.opened.len(), second.write.len()), (0, 1));
    assert_eq!(second.write[0].since_ms, NOW - HOUR, "open since the first sighting");
}

#[test]
fn a_second_look_confirms_only_what_the_first_found_and_still_is() {
    // GIVEN a first look that found E1 missing (the WorkSpace listed for another user's name
    // named too) and an orphan carrying E2's user name
    let first = [
        Finding::Missing {
            employee_id: "E1".into(),
            workspace_id: "ws-1".into(),
            why: Missing::Gone,
            listed_for_user: Some("ws-5".into()),
        },
        orphan("ws-2", Some("E2")),
    ];
    // THEN the second look reads E1 and E2 again and describes the three WorkSpaces
    let (employees, workspaces) = recheck_targets(&first);
    assert_eq!(employees, ["E1".to_owned(), "E2".to_owned()].into());
    assert_eq!(workspaces, ["ws-1".to_owned(), "ws-2".to_owned(), "ws-5".to_owned()].into());
    // WHEN the second look no longer sees the orphan (a joiner's, now recorded) but sees a new
    // finding the first did not
    let second = vec![first[0].clone(), orphan("ws-7", None)];
    // THEN only the finding both saw is reported
    assert_eq!(confirmed(&first, second), vec![first[0].clone()]);
}

#[test]
fn a_leaver_terminated_while_the_listing_ran_is_no_orphan_on_the_second_look() {
    // GIVEN the listing saw E1's WorkSpace AVAILABLE, then E1 left and the table says terminated
    let mut left = employee("E1", "terminated", None);
    left.workspace_id = None;
    let listed = [workspace("ws-1", "e1")];
    let first = run(std::slice::from_ref(&left), &listed);
    assert_eq!(first.findings, vec![orphan_of("ws-1", "e1", "E1")], "named as the leaver's");
    // WHEN the second look describes it again: TERMINATING
    let mut now = workspace("ws-1", "e1");
    now.state = WorkspaceState::Terminating;
    let second = run(&[left], &[now]);
    // THEN nothing is confirmed
    assert_eq!(confirmed(&first.findings, second.findings), vec![]);
}

#[test]
fn a_workspace_a_shifting_listing_showed_twice_is_one_workspace() {
    // GIVEN an orphan listed on two pages (the listing shifted between them)
    let outcome = run(&[], &[workspace("ws-9", "x"), workspace("ws-9", "x")]);
    // THEN it is one orphan among one WorkSpace listed
    assert_eq!((outcome.findings.len(), outcome.workspaces_listed), (1, 1));
}

#[test]
fn by_default_the_audit_only_reports_and_each_setting_acts_only_on_what_is_safe() {
    // GIVEN confirmed findings of every kind, one orphan already open at the audit before
    let gone = Finding::Missing {
        employee_id: "E1".into(),
        workspace_id: "ws-1".into(),
        why: Missing::Gone,
        listed_for_user: None,
    };
    let gone_but_another_listed = Finding::Missing {
        employee_id: "E2".into(),
        workspace_id: "ws-2".into(),
        why: Missing::Gone,
        listed_for_user: Some("ws-22".into()),
    };
    let other_users = Finding::Missing {
        employee_id: "E3".into(),
        workspace_id: "ws-3".into(),
        why: Missing::OtherUser { user_name: "someone".into() },
        listed_for_user: None,
    };
    let mismatched = Finding::Mismatched { employee_id: "E4".into(), workspace_id: "ws-4".into(), differences: vec![] };
    let orphan = |id: &str| Finding::Orphaned {
        workspace_id: id.into(),
        directory_id: DIR.into(),
        user_name: "x".into(),
        workspace_name: None,
        state: "AVAILABLE".into(),
        user_of: None,
    };
    let unhealthy = Finding::Unhealthy {
        workspace_id: "ws-5".into(),
        employee_id: Some("E5".into()),
        state: "ERROR".into(),
        since_ms: 0,
    };
    let findings =
        vec![gone, gone_but_another_listed, other_users, mismatched, orphan("ws-old"), orphan("ws-new"), unhealthy];
    let previous = vec![Drift {
        subject: Subject::Workspace("ws-old".into()),
        findings: vec![orphan("ws-old")],
        since_ms: NOW - 2 * HOUR,
        found_ms: NOW - HOUR,
    }];
    // WHEN the settings are the defaults THEN nothing is done
    assert_eq!(remedies(&findings, &previous, AuditActions::default(), NOW), vec![]);
    // WHEN every action is on THEN: the WorkSpaces gone are requested again (one listed for the
    // user is the provisioner's to adopt or refuse); the mismatched one re-applied; only the
    // orphan open before is terminated; the rest (another user's, unhealthy) stay for a person
    let all = AuditActions {
        on_missing: OnMissing::RequestAgain,
        on_mismatched: OnMismatched::Reapply,
        on_orphaned: OnOrphaned::TerminateManaged,
        orphan_after_ms: 2 * HOUR,
    };
    assert_eq!(
        remedies(&findings, &previous, all, NOW),
        vec![
            Remedy::RequestAgain { employee_id: "E1".into(), workspace_id: "ws-1".into() },
            Remedy::RequestAgain { employee_id: "E2".into(), workspace_id: "ws-2".into() },
            Remedy::Reapply { employee_id: "E4".into(), workspace_id: "ws-4".into() },
            Remedy::Terminate { workspace_id: "ws-old".into(), directory_id: DIR.into(), user_of: None },
        ]
    );
    // AND an orphan found less than `orphan_after_ms` ago (the default: a day) is not yet one
    let day = AuditActions { orphan_after_ms: ORPHAN_AFTER_MS, ..all };
    assert!(remedies(&findings, &previous, day, NOW).iter().all(|r| !matches!(r, Remedy::Terminate { .. })));
    // AND a WorkSpace still TERMINATING waits for the audit that finds it gone
    let terminating = Finding::Missing {
        employee_id: "E6".into(),
        workspace_id: "ws-6".into(),
        why: Missing::Terminating,
        listed_for_user: None,
    };
    assert_eq!(remedies(&[terminating], &[], all, NOW), vec![]);
}

#[test]
fn each_setting_reads_its_documented_values_and_names_them_when_wrong() {
    assert_eq!("request-again".parse::<OnMissing>(), Ok(OnMissing::RequestAgain));
    assert_eq!(" report ".parse::<OnMissing>(), Ok(OnMissing::Report));
    assert_eq!("reapply".parse::<OnMismatched>(), Ok(OnMismatched::Reapply));
    assert_eq!("terminate-managed".parse::<OnOrphaned>(), Ok(OnOrphaned::TerminateManaged));
    assert_eq!("terminate".parse::<OnOrphaned>(), Err("\"terminate\" is not one of report, terminate-managed".into()));
    assert_eq!(serde_json::to_value(OnMissing::RequestAgain).unwrap(), json!("request-again"));
}
