#![allow(clippy::unwrap_used)] // test code: a panic is a failed test

use super::*;
use crate::domain::audit::{OnMismatched, OnMissing, OnOrphaned};
use crate::domain::employee::EmployeeState;
use crate::domain::messages::WorkspaceRequest;
use crate::domain::profile::{Profile, RunningMode};
use crate::domain::workspace::WorkspaceState;
use crate::domain::workspace::{MANAGED_TAG_KEY, PROTECT_TAG_KEY};
use crate::ports::CreateItem;
use crate::testing::{FakeWorkspaces, ManualClock, MemoryBus, MemoryQueue, MemoryStore};

const DIR: &str = "d-9067a1b2c3";
const HOUR: i64 = 3_600_000;

fn profile() -> Profile {
    Profile {
        directory_id: DIR.into(),
        bundle_id: "wsb-stdwin2022".into(),
        running_mode: RunningMode::AutoStop,
        auto_stop_minutes: Some(60),
        compute_type: Some("STANDARD".into()),
        root_volume_gib: None,
        user_volume_gib: None,
        root_volume_encrypted: false,
        user_volume_encrypted: false,
        kms_key: None,
        protocols: Vec::new(),
        tags: Default::default(),
        user_decoupled: false,
    }
}

struct World {
    clock: ManualClock,
    store: Arc<MemoryStore>,
    workspaces: Arc<FakeWorkspaces>,
    bus: Arc<MemoryBus>,
    requests: Arc<MemoryQueue>,
}

impl World {
    fn new() -> Self {
        let clock = ManualClock::new(1_800_000_000_000);
        let workspaces = Arc::new(FakeWorkspaces::new(clock.clone()));
        Self {
            clock,
            store: Arc::new(MemoryStore::default()),
            workspaces,
            bus: Arc::new(MemoryBus::default()),
            requests: Arc::new(MemoryQueue::named("requests")),
        }
    }

    fn auditor(&self) -> TestAuditor {
        self.acting(AuditActions::REPORT_ONLY)
    }

    fn acting(&self, actions: AuditActions) -> TestAuditor {
        Auditor {
            store: self.store.clone(),
            workspaces: self.workspaces.clone(),
            events: self.bus.clone(),
            requests: self.requests.clone(),
            clock: Arc::new(self.clock.clone()),
            config: AuditConfig {
                directories: [DIR.to_owned()].into(),
                rules: AuditRules { unhealthy_after_ms: HOUR },
                call_interval_ms: 0,
                actions,
                guard: Some(GuardConfig { limit: 50, window_ms: HOUR }),
            },
        }
    }

    /// An employee who has left (terminated, no WorkSpace).
    async fn leaver(&self, employee_id: &str) {
        let mut leaver = EmployeeRecord::new(employee_id, 0);
        leaver.state = EmployeeState::Terminated;
        leaver.username = Some(format!("{}-user", employee_id.to_lowercase()));
        leaver.profile = Some(profile());
        self.store.save_employee(&leaver, None).await.unwrap();
    }

    async fn record(&self, employee_id: &str) -> EmployeeRecord {
        self.store.employee(employee_id).await.unwrap().unwrap()
    }

    /// A WorkSpace made outside the pipeline, with these tags.
    async fn by_hand(&self, user: &str, tags: &[(&str, &str)]) -> String {
        let id = self.workspaces.seed(DIR, user, WorkspaceState::Available);
        let tags: BTreeMap<String, String> = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if !tags.is_empty() {
            self.workspaces.create_tags(&id, &tags).await.unwrap();
        }
        id
    }
}

type TestAuditor = Auditor<Arc<MemoryStore>, Arc<FakeWorkspaces>, Arc<MemoryBus>, Arc<MemoryQueue>>;

const REQUEST_AGAIN: AuditActions = AuditActions { on_missing: OnMissing::RequestAgain, ..AuditActions::REPORT_ONLY };
const REAPPLY: AuditActions = AuditActions { on_mismatched: OnMismatched::Reapply, ..AuditActions::REPORT_ONLY };
/// Orphans terminated once found by an audit an hour before.
const TERMINATE: AuditActions =
    AuditActions { on_orphaned: OnOrphaned::TerminateManaged, orphan_after_ms: HOUR, ..AuditActions::REPORT_ONLY };

impl World {
    /// `n` active employees, each with the WorkSpace their profile makes.
    async fn active(&self, n: usize) -> Vec<(String, String)> {
        let items: Vec<CreateItem> = (0..n)
            .map(|i| CreateItem {
                directory_id: DIR.into(),
                user_name: format!("user{i:03}"),
                workspace_name: None,
                profile: profile(),
            })
            .collect();
        let mut made = Vec::new();
        for chunk in items.chunks(MAX_PER_CALL) {
            made.extend(self.workspaces.create_workspaces(chunk).await.unwrap().pending);
        }
        self.clock.advance(10_000);
        let mut pairs = Vec::new();
        for (i, ws) in made.iter().enumerate() {
            let mut e = EmployeeRecord::new(&format!("E{i:03}"), 0);
            e.state = EmployeeState::Active;
            e.username = Some(ws.user_name.clone());
            e.profile = Some(profile());
            e.profile_name = Some("standard".into());
            e.workspace_id = Some(ws.workspace_id.clone());
            self.store.save_employee(&e, None).await.unwrap();
            pairs.push((e.employee_id, ws.workspace_id.clone()));
        }
        pairs
    }

    fn drift_lines(&self, employee_id: &str) -> Vec<String> {
        self.store
            .all_history()
            .into_iter()
            .filter(|h| h.employee_id.as_deref() == Some(employee_id) && h.outcome == EventOutcome::Drift)
            .map(|h| h.reason)
            .collect()
    }
}

#[tokio::test]
async fn a_stack_without_drift_costs_one_call_per_page_and_writes_nothing_but_the_audit_state() {
    // GIVEN 30 active employees with their WorkSpaces
    let w = World::new();
    w.active(30).await;
    // WHEN audited
    let report = w.auditor().run().await.unwrap();
    // THEN nothing is found, two pages were listed, and no drift is kept
    assert_eq!(report.findings, vec![]);
    assert_eq!(report.counts.values().sum::<usize>(), 0);
    assert_eq!(report.counts.len(), 4, "every kind counted, 0 included: {:?}", report.counts);
    assert_eq!((report.employees_checked, report.workspaces_listed, report.describe_calls), (30, 30, 2));
    assert!(w.store.drift().is_empty());
    assert_eq!(w.store.audit_snapshot().await.unwrap().state.unwrap().describe_calls, 2);
}

#[tokio::test]
async fn drift_is_kept_with_its_employee_or_its_workspace_lined_once_in_history_and_resolved() {
    // GIVEN two active employees; one's WorkSpace is deleted behind the pipeline's back, and a
    // WorkSpace is made by hand for a user no one in the table has
    let w = World::new();
    let pairs = w.active(2).await;
    let (gone_employee, gone_ws) = pairs[0].clone();
    w.workspaces.terminate_workspaces(std::slice::from_ref(&gone_ws)).await.unwrap();
    let by_hand = w.workspaces.seed(DIR, "contractor", WorkspaceState::Available);
    w.clock.advance(10_000);
    // WHEN audited twice
    let first = w.auditor().run().await.unwrap();
    let second = w.auditor().run().await.unwrap();
    // THEN each drift is found, kept with its subject, and lined in the employee's history once
    let kinds: Vec<(&str, String)> = first.findings.iter().map(|f| (f.kind(), f.workspace_id().to_owned())).collect();
    assert_eq!(kinds, vec![("missing", gone_ws.clone()), ("orphaned", by_hand.clone())]);
    assert_eq!((first.opened, second.opened), (2, 0));
    assert_eq!(second.findings, first.findings);
    let kept: Vec<Subject> = w.store.drift().into_keys().collect();
    assert_eq!(kept, vec![Subject::Employee(gone_employee.clone()), Subject::Workspace(by_hand.clone())]);
    let lines = w.drift_lines(&gone_employee);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("drift found: missing") && lines[0].contains(&gone_ws), "{lines:?}");
    // AND each finding was announced once, when it opened: the employee's with their state
    let announced: Vec<(String, Option<String>, Option<&str>)> = w
        .bus
        .events()
        .into_iter()
        .map(|e| (e.kind.detail_type().to_owned(), e.detail.employee_id, e.detail.state))
        .collect();
    assert_eq!(
        announced,
        vec![
            ("Drift Found".to_owned(), Some(gone_employee.clone()), Some("active")),
            ("Drift Found".to_owned(), None, None)
        ]
    );

    // WHEN the employee leaves (their record no longer wants the WorkSpace) and the hand-made
    // WorkSpace is terminated, then the audit runs again
    let mut record = w.store.get(&gone_employee).unwrap();
    record.state = EmployeeState::Terminated;
    let version = record.version;
    record.version += 1;
    w.store.save_employee(&record, Some(version)).await.unwrap();
    w.workspaces.terminate_workspaces(std::slice::from_ref(&by_hand)).await.unwrap();
    let third = w.auditor().run().await.unwrap();
    // THEN both are resolved, the drift cleared, and the employee's history says so
    assert_eq!(third.findings, vec![]);
    assert_eq!(third.resolved, 2);
    assert!(w.store.drift().is_empty());
    let lines = w.drift_lines(&gone_employee);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1], "drift resolved: no longer missing");
}

#[tokio::test]
async fn an_unhealthy_workspace_is_reported_once_it_has_been_so_longer_than_allowed_across_runs() {
    // GIVEN an active employee whose WorkSpace is SUSPENDED
    let w = World::new();
    let mut record = EmployeeRecord::new("E-SICK", 0);
    record.state = EmployeeState::Active;
    record.username = Some("sick".into());
    record.profile = Some(profile());
    let id = w.workspaces.seed(DIR, "sick", WorkspaceState::Suspended);
    record.workspace_id = Some(id.clone());
    w.store.save_employee(&record, None).await.unwrap();
    // WHEN audited now and again after the allowed hour
    let first = w.auditor().run().await.unwrap();
    w.clock.advance(HOUR + 1);
    let later = w.auditor().run().await.unwrap();
    // THEN only the later audit reports it, with when it was first seen so
    assert_eq!(first.counts["unhealthy"], 0, "{:?}", first.findings);
    let unhealthy: Vec<&Finding> = later.findings.iter().filter(|f| f.kind() == "unhealthy").collect();
    assert_eq!(unhealthy.len(), 1, "{:?}", later.findings);
    match unhealthy[0] {
        Finding::Unhealthy { employee_id, since_ms, state, .. } => {
            assert_eq!(employee_id.as_deref(), Some("E-SICK"));
            assert_eq!(*since_ms, first.audited_ms);
            assert_eq!(state, "SUSPENDED");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn drift_the_bus_refuses_is_not_kept_so_the_next_audit_announces_it() {
    // GIVEN a WorkSpace made by hand, and a bus that refuses the first call
    let w = World::new();
    w.active(1).await;
    let by_hand = w.workspaces.seed(DIR, "contractor", WorkspaceState::Available);
    w.bus.faults.fail_next("bus.put_events", 1);
    // WHEN audited, then audited again
    let failed = w.auditor().run().await;
    // THEN the first audit fails, keeping nothing, and the second announces and keeps the finding
    assert!(matches!(failed, Err(AuditError::Events(_))), "{failed:?}");
    assert!(w.store.drift().is_empty());
    let second = w.auditor().run().await.unwrap();
    assert_eq!(second.opened, 1);
    let announced: Vec<Option<String>> = w.bus.events().into_iter().map(|e| e.detail.workspace_id).collect();
    assert_eq!(announced, vec![Some(by_hand)]);
}

#[tokio::test]
async fn a_listing_that_fails_records_nothing_and_says_whether_to_retry() {
    // GIVEN a drift that would be found, and DescribeWorkspaces throttled past its retries
    let w = World::new();
    w.workspaces.seed(DIR, "contractor", WorkspaceState::Available);
    w.workspaces.faults.fail_next("workspaces.list_workspaces", 1);
    // WHEN audited
    let failed = w.auditor().run().await.unwrap_err();
    // THEN nothing is recorded and the error says to retry
    assert!(failed.is_retryable(), "{failed:?}");
    assert_eq!(failed.error_type(), "WorkSpaces.Throttled");
    assert!(w.store.drift().is_empty());
    assert_eq!(w.store.audit_snapshot().await.unwrap().state, None);
}

type Change = std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>;

/// The fake WorkSpaces, with something done behind the audit's back right after its first page,
/// or just before it reads a WorkSpace's tags (before it would terminate it).
struct Meanwhile {
    inner: Arc<FakeWorkspaces>,
    after_first_page: Change,
    before_tags: Change,
}

impl Meanwhile {
    fn run(change: &Change) {
        let change = change.lock().unwrap().take();
        if let Some(change) = change {
            change();
        }
    }
}

impl WorkspacesApi for Meanwhile {
    async fn create_workspaces(&self, items: &[CreateItem]) -> Result<crate::ports::CreateResponse, WorkspacesError> {
        self.inner.create_workspaces(items).await
    }
    async fn describe_workspaces(&self, ids: &[String]) -> Result<Vec<WorkspaceInfo>, WorkspacesError> {
        self.inner.describe_workspaces(ids).await
    }
    async fn terminate_workspaces(
        &self,
        ids: &[String],
    ) -> Result<Vec<crate::ports::FailedTerminate>, WorkspacesError> {
        self.inner.terminate_workspaces(ids).await
    }
    async fn list_workspaces(
        &self,
        directory_id: &str,
        next_token: Option<&str>,
    ) -> Result<crate::ports::WorkspacePage, WorkspacesError> {
        let page = self.inner.list_workspaces(directory_id, next_token).await;
        Self::run(&self.after_first_page);
        page
    }
    async fn find_user_workspace(&self, d: &str, u: &str) -> Result<Option<WorkspaceInfo>, WorkspacesError> {
        self.inner.find_user_workspace(d, u).await
    }
    async fn modify_properties(
        &self,
        id: &str,
        change: &crate::domain::workspace::PropertyChange,
    ) -> Result<(), WorkspacesError> {
        self.inner.modify_properties(id, change).await
    }
    async fn migrate(&self, id: &str, bundle_id: &str) -> Result<String, WorkspacesError> {
        self.inner.migrate(id, bundle_id).await
    }
    async fn set_admin_maintenance(&self, id: &str, on: bool) -> Result<(), WorkspacesError> {
        self.inner.set_admin_maintenance(id, on).await
    }
    async fn tags(&self, id: &str) -> Result<BTreeMap<String, String>, WorkspacesError> {
        Self::run(&self.before_tags);
        self.inner.tags(id).await
    }
    async fn create_tags(&self, id: &str, tags: &BTreeMap<String, String>) -> Result<(), WorkspacesError> {
        self.inner.create_tags(id, tags).await
    }
    async fn delete_tags(&self, id: &str, keys: &[String]) -> Result<(), WorkspacesError> {
        self.inner.delete_tags(id, keys).await
    }
}

#[tokio::test]
async fn a_leave_that_runs_while_the_audit_lists_is_not_reported_as_an_orphan() {
    // GIVEN an active employee, who leaves (WorkSpace terminated, record terminated) just after
    // the audit listed their WorkSpace AVAILABLE and before it reads the table
    let w = World::new();
    let (employee_id, workspace_id) = w.active(1).await.remove(0);
    let (store, fake, id) = (w.store.clone(), w.workspaces.clone(), workspace_id.clone());
    let leave: Box<dyn FnOnce() + Send> = Box::new(move || {
        let mut employees = store.employees.lock().unwrap();
        let record = employees.get_mut(&employee_id).unwrap();
        record.state = EmployeeState::Terminated;
        record.workspace_id = None;
        record.version += 1;
        drop(employees);
        let terminated = futures_util::FutureExt::now_or_never(fake.terminate_workspaces(&[id]));
        assert_eq!(terminated.map(|r| r.unwrap()), Some(vec![]));
    });
    let auditor = Auditor {
        store: w.store.clone(),
        workspaces: Meanwhile {
            inner: w.workspaces.clone(),
            after_first_page: std::sync::Mutex::new(Some(leave)),
            before_tags: Default::default(),
        },
        events: w.bus.clone(),
        requests: w.requests.clone(),
        clock: Arc::new(w.clock.clone()),
        config: w.auditor().config,
    };
    // WHEN audited
    let report = auditor.run().await.unwrap();
    // THEN the first look's orphan is seen TERMINATING on the second and not reported
    assert_eq!(report.findings, vec![]);
    assert_eq!(report.dropped_on_second_look, 1);
    assert_eq!(report.describe_calls, 2, "the page, and one describe of the candidate");
    assert!(w.store.drift().is_empty());
    assert_eq!(w.workspaces.workspace(&workspace_id).map(|ws| ws.state), Some(WorkspaceState::Terminating));
}

#[tokio::test]
async fn a_directory_only_old_records_name_that_cannot_be_listed_is_left_out_without_resolving_its_drift() {
    // GIVEN an active employee in the configured directory, one whose record names a directory
    // WorkSpaces refuses (a profile long removed), and that employee's drift from before
    let w = World::new();
    w.active(1).await;
    let mut old = EmployeeRecord::new("E-OLD", 0);
    old.state = EmployeeState::Active;
    old.username = Some("old".into());
    old.profile = Some(Profile { directory_id: "corp-legacy".into(), ..profile() });
    old.workspace_id = Some("ws-legacy00".into());
    w.store.save_employee(&old, None).await.unwrap();
    let before = Drift {
        subject: Subject::Employee("E-OLD".into()),
        findings: vec![Finding::Missing {
            employee_id: "E-OLD".into(),
            workspace_id: "ws-legacy00".into(),
            why: crate::domain::audit::Missing::Gone,
            listed_for_user: None,
        }],
        since_ms: 1,
        found_ms: 1,
    };
    w.store.save_drift(&before).await.unwrap();
    // WHEN audited twice (the second lists it before the table, as the first recorded)
    let first = w.auditor().run().await.unwrap();
    let second = w.auditor().run().await.unwrap();
    // THEN the directory is left out of both, its employee is not called missing again, and
    // the drift it had stays open
    for report in [&first, &second] {
        assert_eq!(report.directories, vec![DIR.to_owned()]);
        assert_eq!((report.findings.clone(), report.resolved), (vec![], 0));
    }
    assert_eq!(w.store.drift().into_values().collect::<Vec<_>>(), vec![before]);
    let state = w.store.audit_state().await.unwrap().unwrap();
    assert!(state.directories.contains("corp-legacy"), "still tried at the next audit: {state:?}");
}

#[tokio::test]
async fn a_configured_directory_that_cannot_be_listed_fails_the_audit() {
    let w = World::new();
    let mut auditor = w.auditor();
    auditor.config.directories.insert("corp-legacy".into());
    let failed = auditor.run().await.unwrap_err();
    assert!(!failed.is_retryable(), "{failed:?}");
    assert!(w.store.audit_state().await.unwrap().is_none(), "nothing recorded");
}

// ---------------------------------------------------------------- actions (off by default)

#[tokio::test]
async fn a_missing_workspace_is_only_reported_by_default_and_requested_again_when_set() {
    // GIVEN two active employees; E000's WorkSpace is deleted behind the pipeline's back
    let w = World::new();
    let pairs = w.active(2).await;
    let (employee, lost) = pairs[0].clone();
    w.workspaces.terminate_workspaces(std::slice::from_ref(&lost)).await.unwrap();
    w.clock.advance(HOUR);
    // WHEN audited with the default settings THEN it is reported and nothing is done
    let report = w.auditor().run().await.unwrap();
    assert_eq!(report.counts["missing"], 1);
    assert_eq!(report.actions, vec![]);
    assert_eq!(w.record(&employee).await.state, EmployeeState::Active);
    assert!(w.requests.is_empty());

    // WHEN audited with AUDIT_ON_MISSING=request-again
    let before = w.record(&employee).await.version;
    let report = w.acting(REQUEST_AGAIN).run().await.unwrap();
    // THEN the employee is requested again, keyed by the lost WorkSpace, the provisioner asked,
    // and the history says why
    assert_eq!(report.actions.len(), 1, "{:?}", report.actions);
    assert!(report.actions[0].done, "{:?}", report.actions[0]);
    assert_eq!(
        report.actions[0].remedy,
        Remedy::RequestAgain { employee_id: employee.clone(), workspace_id: lost.clone() }
    );
    let record = w.record(&employee).await;
    assert_eq!((record.state, record.workspace_id.as_deref()), (EmployeeState::Requested, None));
    assert_eq!(record.request_event_id, Some(format!("lost-{lost}")));
    assert_eq!(record.version, before + 1);
    assert_eq!(record.previous_workspaces.last().map(|p| p.workspace_id.as_str()), Some(lost.as_str()));
    let sent: Vec<WorkspaceRequest> = w.requests.bodies().iter().map(|b| serde_json::from_str(b).unwrap()).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].employee_id.as_str(), sent[0].event_id.clone()), (employee.as_str(), format!("lost-{lost}")));
    assert!(w.drift_lines(&employee).iter().any(|l| l.contains("no longer exists") && l.contains("new one requested")));

    // WHEN audited again THEN nothing more: the employee is requested, not missing
    w.requests.take();
    let report = w.acting(REQUEST_AGAIN).run().await.unwrap();
    assert_eq!(report.actions, vec![]);
    assert!(w.requests.is_empty());
    assert_eq!(w.record(&employee).await.version, before + 1);
}

#[tokio::test]
async fn a_workspace_made_by_hand_for_a_missing_ones_user_is_left_to_the_provisioners_rule() {
    // GIVEN an active employee whose WorkSpace was deleted and another made for their user by
    // hand (no managed tag)
    let w = World::new();
    let (employee, lost) = w.active(1).await[0].clone();
    w.workspaces.terminate_workspaces(std::slice::from_ref(&lost)).await.unwrap();
    w.clock.advance(HOUR);
    let by_hand = w.by_hand("user000", &[]).await;
    // WHEN audited with request-again THEN it is missing (the hand-made one named, not an
    // orphan), and requested again: the provisioner adopts it or refuses it (ADOPT_UNMANAGED)
    let report = w.acting(REQUEST_AGAIN).run().await.unwrap();
    assert_eq!((report.counts["missing"], report.counts["orphaned"]), (1, 0));
    assert!(report.actions[0].done, "{:?}", report.actions);
    assert_eq!(w.record(&employee).await.state, EmployeeState::Requested);
    assert_eq!(w.requests.len(), 1);
    // AND the audit itself never touches the hand-made one
    assert_eq!(w.workspaces.workspace(&by_hand).map(|ws| ws.state), Some(WorkspaceState::Available));
}

#[tokio::test]
async fn a_mismatched_workspace_gets_its_profile_again_through_the_mover_path() {
    // GIVEN an active employee whose WorkSpace's running mode was changed in the console
    let w = World::new();
    let (employee, ws) = w.active(1).await[0].clone();
    let change =
        crate::domain::workspace::PropertyChange::RunningMode { mode: RunningMode::AlwaysOn, auto_stop_minutes: None };
    w.workspaces.modify_properties(&ws, &change).await.unwrap();
    w.clock.advance(HOUR);
    // WHEN audited with AUDIT_ON_MISMATCHED=reapply
    let report = w.acting(REAPPLY).run().await.unwrap();
    // THEN the employee is moving to the same profile, by a move that is no HR event's
    assert_eq!(report.counts["mismatched"], 1);
    assert!(report.actions[0].done, "{:?}", report.actions);
    let record = w.record(&employee).await;
    assert_eq!(record.state, EmployeeState::Moving);
    let work = record.moving.as_ref().unwrap();
    assert!(work.event_id.starts_with("reapply-"), "{}", work.event_id);
    assert_eq!(record.last_move, None, "HR's moves are ordered as before");
    assert_eq!(record.profile, Some(profile()));
    // AND the audit made no WorkSpaces call for it (the reconciler's mover does)
    assert_eq!(w.workspaces.call_count("ModifyWorkspaceProperties"), 1, "only the console's");
    // WHEN audited again while it moves THEN the same finding is not acted on twice
    let report = w.acting(REAPPLY).run().await.unwrap();
    assert!(report.actions.iter().all(|a| !a.done), "{:?}", report.actions);
}

#[tokio::test]
async fn only_a_managed_unprotected_orphan_found_twice_is_terminated() {
    // GIVEN orphans: one the pipeline made for a leaver (managed tag), one managed but protected,
    // one made by hand (no managed tag), one whose managed tag names an employee this table does
    // not know (another stack's, or a table restored)
    let w = World::new();
    w.active(1).await;
    w.leaver("E-GONE").await;
    let managed = w.by_hand("stray1", &[(MANAGED_TAG_KEY, "E-GONE")]).await;
    let protected = w.by_hand("stray2", &[(MANAGED_TAG_KEY, "E-GONE"), (PROTECT_TAG_KEY, "legal hold")]).await;
    let by_hand = w.by_hand("someone", &[]).await;
    let foreign = w.by_hand("stray3", &[(MANAGED_TAG_KEY, "E-ELSEWHERE")]).await;
    // WHEN audited once with AUDIT_ON_ORPHANED=terminate-managed THEN nothing is terminated:
    // an orphan is acted on only when the audit before found it too
    let first = w.acting(TERMINATE).run().await.unwrap();
    assert_eq!(first.counts["orphaned"], 4);
    assert_eq!(first.actions, vec![]);
    assert_eq!(w.workspaces.call_count("TerminateWorkspaces"), 0);
    // WHEN audited again before the hour THEN still nothing
    w.clock.advance(HOUR - 1);
    assert_eq!(w.acting(TERMINATE).run().await.unwrap().actions, vec![]);
    // WHEN audited again an hour after it was first found
    w.clock.advance(1);
    let second = w.acting(TERMINATE).run().await.unwrap();
    // THEN only the managed, unprotected one is terminated; the others are kept with the reason
    let outcome = |id: &str| second.actions.iter().find(|a| a.remedy.workspace_id() == id).unwrap().clone();
    assert!(outcome(&managed).done, "{:?}", outcome(&managed));
    assert!(!outcome(&protected).done && outcome(&protected).outcome.contains(PROTECT_TAG_KEY));
    assert!(!outcome(&by_hand).done && outcome(&by_hand).outcome.contains(MANAGED_TAG_KEY));
    let foreign_kept = outcome(&foreign);
    assert!(!foreign_kept.done && foreign_kept.outcome.contains("does not know"), "{foreign_kept:?}");
    assert_eq!(w.workspaces.workspace(&managed).map(|ws| ws.state), Some(WorkspaceState::Terminating));
    assert!(w.drift_lines("E-GONE").iter().any(|l| l.contains("terminated as an orphan")));
    for kept in [&protected, &by_hand, &foreign] {
        assert_eq!(w.workspaces.workspace(kept).map(|ws| ws.state), Some(WorkspaceState::Available));
    }
    assert_eq!(w.workspaces.call_count("TerminateWorkspaces"), 1);
}

#[tokio::test]
async fn orphan_terminations_count_against_the_mass_termination_guard() {
    // GIVEN three managed orphans found by an audit, and a guard that admits two an hour
    let w = World::new();
    w.leaver("E-GONE").await;
    let orphans = [
        w.by_hand("s1", &[(MANAGED_TAG_KEY, "E-GONE")]).await,
        w.by_hand("s2", &[(MANAGED_TAG_KEY, "E-GONE")]).await,
        w.by_hand("s3", &[(MANAGED_TAG_KEY, "E-GONE")]).await,
    ];
    let mut auditor = w.acting(TERMINATE);
    auditor.config.guard = Some(GuardConfig { limit: 2, window_ms: HOUR });
    auditor.run().await.unwrap();
    // WHEN audited again
    w.clock.advance(HOUR);
    let report = auditor.run().await.unwrap();
    // THEN two are terminated and the third held, the guard tripped for everything after
    let done = report.actions.iter().filter(|a| a.done).count();
    assert_eq!(done, 2, "{:?}", report.actions);
    let held: Vec<_> = report.actions.iter().filter(|a| !a.done).collect();
    assert!(held.len() == 1 && held[0].outcome.contains("guard"), "{held:?}");
    assert!(w.store.guard_status().await.unwrap().is_tripped());
    let alive =
        orphans.iter().filter(|id| w.workspaces.workspace(id).is_some_and(|ws| ws.state == WorkspaceState::Available));
    assert_eq!(alive.count(), 1);
}

#[tokio::test]
async fn an_orphan_an_employee_has_come_to_want_is_not_terminated() {
    // GIVEN a managed orphan carrying a terminated leaver's user name, found by an audit
    let w = World::new();
    let ws = w.by_hand("user900", &[(MANAGED_TAG_KEY, "E900")]).await;
    let mut leaver = EmployeeRecord::new("E900", 0);
    leaver.state = EmployeeState::Terminated;
    leaver.username = Some("user900".into());
    leaver.profile = Some(profile());
    w.store.save_employee(&leaver, None).await.unwrap();
    let first = w.acting(TERMINATE).run().await.unwrap();
    assert_eq!(first.counts["orphaned"], 1);
    // WHEN the leaver is rehired (requested, the provisioner to adopt the user's WorkSpace) just
    // as the next audit confirms the orphan
    let rehire = move |store: &MemoryStore| {
        let mut employees = store.employees.lock().unwrap();
        let record = employees.get_mut("E900").unwrap();
        record.state = EmployeeState::Requested;
        record.version += 1;
    };
    w.clock.advance(HOUR);
    let auditor = Auditor {
        store: w.store.clone(),
        workspaces: Meanwhile {
            inner: w.workspaces.clone(),
            after_first_page: Default::default(),
            before_tags: std::sync::Mutex::new(Some(Box::new({
                let store = w.store.clone();
                move || rehire(&store)
            }))),
        },
        events: w.bus.clone(),
        requests: w.requests.clone(),
        clock: Arc::new(w.clock.clone()),
        config: w.acting(TERMINATE).config,
    };
    let report = auditor.run().await.unwrap();
    // THEN it is kept, with the reason
    assert_eq!(report.actions.len(), 1);
    assert!(!report.actions[0].done && report.actions[0].outcome.contains("E900"), "{:?}", report.actions);
    assert_eq!(w.workspaces.workspace(&ws).map(|w| w.state), Some(WorkspaceState::Available));
}
