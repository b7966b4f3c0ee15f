//! In-memory doubles of the ports, for unit tests of the services' logic, and the contracts a
//! double and the adapter it stands for must both pass ([`contract`]: run on the doubles here and
//! on DynamoDB by the end-to-end tests). The end-to-end path (real SDK clients against moto and
//! the simulator) is tested in `tests/`.

use crate::domain::employee::{EmployeeRecord, EmployeeState, EventOutcome};
use crate::domain::names::UserNameRules;
use crate::ports::{
    Claim, ClaimOutcome, CreateItem, CreateResponse, DirectoryError, DirectoryUsers, FailedTerminate, HistoryEntry,
    MessageQueue, NameClaim, NewUser, Outgoing, QueueError, ScheduledEvent, StateStore, StoreError, UserOutcome,
    WorkspaceInfo, WorkspacesApi, WorkspacesError,
};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Employees and user-name claims: what the reconciler and the name rules read and write. The
/// other operations hold nothing.
#[derive(Default)]
pub struct MemoryStore {
    pub employees: Mutex<BTreeMap<String, EmployeeRecord>>,
    /// (directory, lower-case user name) → employee.
    pub names: Mutex<BTreeMap<(String, String), String>>,
    /// Employees whose record cannot be read (the store answers `Unavailable`).
    pub unreadable: Mutex<std::collections::BTreeSet<String>>,
}

impl MemoryStore {
    pub fn with(records: impl IntoIterator<Item = EmployeeRecord>) -> Self {
        let store = Self::default();
        lock(&store.employees).extend(records.into_iter().map(|r| (r.employee_id.clone(), r)));
        store
    }

    pub fn get(&self, id: &str) -> Option<EmployeeRecord> {
        lock(&self.employees).get(id).cloned()
    }

    pub fn count(&self, state: EmployeeState) -> usize {
        lock(&self.employees).values().filter(|e| e.state == state).count()
    }
}

impl StateStore for MemoryStore {
    async fn claim(&self, _claim: &Claim) -> Result<ClaimOutcome, StoreError> {
        Ok(ClaimOutcome::Claimed)
    }
    async fn complete(&self, _: &str, _: &str, _: EventOutcome, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn release(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn employee(&self, employee_id: &str) -> Result<Option<EmployeeRecord>, StoreError> {
        if lock(&self.unreadable).contains(employee_id) {
            return Err(StoreError::Unavailable { operation: "GetItem", message: "injected".into() });
        }
        Ok(self.get(employee_id))
    }
    async fn employees(&self, ids: &[String]) -> Result<Vec<EmployeeRecord>, StoreError> {
        let map = lock(&self.employees);
        Ok(ids.iter().filter_map(|id| map.get(id).cloned()).collect())
    }
    async fn save_employee(&self, record: &EmployeeRecord, expected_version: Option<u64>) -> Result<(), StoreError> {
        let mut map = lock(&self.employees);
        if map.get(&record.employee_id).map(|r| r.version) != expected_version {
            return Err(StoreError::Conflict(record.employee_id.clone()));
        }
        map.insert(record.employee_id.clone(), record.clone());
        Ok(())
    }
    async fn save_joiner(
        &self,
        record: &EmployeeRecord,
        expected_version: Option<u64>,
        claim: &NameClaim,
    ) -> Result<(), StoreError> {
        let mut employees = lock(&self.employees);
        let mut names = lock(&self.names);
        if employees.get(&record.employee_id).map(|r| r.version) != expected_version {
            return Err(StoreError::Conflict(record.employee_id.clone()));
        }
        let key = (claim.directory_id.clone(), claim.user_name.to_ascii_lowercase());
        let allowed = claim.take_over_from.as_ref().map_or(claim.employee_id.as_str(), |(h, _)| h.as_str());
        if let Some(holder) = names.get(&key).filter(|h| h.as_str() != allowed) {
            return Err(StoreError::NameHeld { holder: holder.clone() });
        }
        if let Some((holder, version)) = &claim.take_over_from
            && employees.get(holder).map(|r| r.version) != *version
        {
            return Err(StoreError::Conflict(holder.clone()));
        }
        names.insert(key, claim.employee_id.clone());
        employees.insert(record.employee_id.clone(), record.clone());
        Ok(())
    }
    async fn name_holder(&self, directory_id: &str, user_name: &str) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.names).get(&(directory_id.to_owned(), user_name.to_ascii_lowercase())).cloned())
    }
    async fn record_history(&self, _: &HistoryEntry) -> Result<(), StoreError> {
        Ok(())
    }
    async fn history(&self, _: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(Vec::new())
    }
    async fn watched(&self, state: EmployeeState) -> Result<Vec<String>, StoreError> {
        Ok(lock(&self.employees).values().filter(|e| e.state == state).map(|e| e.employee_id.clone()).collect())
    }
    async fn schedule(&self, _: &ScheduledEvent) -> Result<(), StoreError> {
        Ok(())
    }
    async fn due(&self, _: i64) -> Result<Vec<ScheduledEvent>, StoreError> {
        Ok(Vec::new())
    }
    async fn unschedule(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn scheduled_for(&self, _: &str) -> Result<Vec<ScheduledEvent>, StoreError> {
        Ok(Vec::new())
    }
}

/// WorkSpaces that all describe in one state; records the ids of every DescribeWorkspaces call.
pub struct FakeWorkspaces {
    pub state: crate::domain::workspace::WorkspaceState,
    /// Time each call takes, to spend a run's budget.
    pub latency: Duration,
    pub describe_calls: Mutex<Vec<Vec<String>>>,
}

impl FakeWorkspaces {
    pub fn all(state: &str) -> Self {
        Self {
            state: crate::domain::workspace::WorkspaceState::parse(state),
            latency: Duration::ZERO,
            describe_calls: Mutex::default(),
        }
    }

    pub fn calls(&self) -> Vec<Vec<String>> {
        lock(&self.describe_calls).clone()
    }
}

impl WorkspacesApi for FakeWorkspaces {
    async fn create_workspaces(&self, _: &[CreateItem]) -> Result<CreateResponse, WorkspacesError> {
        Ok(CreateResponse::default())
    }
    async fn describe_workspaces(&self, ids: &[String]) -> Result<Vec<WorkspaceInfo>, WorkspacesError> {
        assert!((1..=25).contains(&ids.len()), "DescribeWorkspaces takes 1 to 25 ids, got {}", ids.len());
        lock(&self.describe_calls).push(ids.to_vec());
        tokio::time::sleep(self.latency).await;
        Ok(ids
            .iter()
            .map(|id| WorkspaceInfo {
                workspace_id: id.clone(),
                directory_id: "d-1234567890".into(),
                user_name: String::new(),
                workspace_name: None,
                state: self.state.clone(),
                error_code: None,
                error_message: None,
            })
            .collect())
    }
    async fn terminate_workspaces(&self, _: &[String]) -> Result<Vec<FailedTerminate>, WorkspacesError> {
        Ok(Vec::new())
    }
    async fn find_user_workspace(&self, _: &str, _: &str) -> Result<Option<WorkspaceInfo>, WorkspacesError> {
        Ok(None)
    }
}

/// Keeps what was sent.
#[derive(Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<Outgoing>>,
}

impl MessageQueue for MemoryQueue {
    async fn send(&self, messages: &[Outgoing]) -> Result<(), QueueError> {
        lock(&self.sent).extend_from_slice(messages);
        Ok(())
    }
}

/// A directory where every user can be created (AD rules, DS Data's user names).
#[derive(Default)]
pub struct FakeDirectory {
    pub created: Mutex<Vec<String>>,
}

impl DirectoryUsers for FakeDirectory {
    async fn ensure_user(&self, user: &NewUser) -> Result<UserOutcome, DirectoryError> {
        lock(&self.created).push(user.user_name.clone());
        Ok(UserOutcome::Created)
    }
    fn user_name_rules(&self) -> UserNameRules {
        UserNameRules::DS_DATA
    }
    async fn disable_user(&self, _: &str, _: &str) -> Result<UserOutcome, DirectoryError> {
        Ok(UserOutcome::Disabled)
    }
    fn can_disable(&self) -> bool {
        false
    }
}

/// Behaviour every [`StateStore`] must show, the in-memory one and DynamoDB's alike.
pub mod contract {
    use crate::domain::employee::{EmployeeRecord, EmployeeState};
    use crate::ports::{NameClaim, StateStore, StoreError};

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
        match store.name_holder(directory, user).await {
            Ok(holder) => holder,
            Err(e) => panic!("name_holder: {e}"),
        }
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
        // Names are per directory.
        assert!(matches!(
            store.save_joiner(&joiner("E3", 1), None, &claim("E3", other_dir, "jdoe", None)).await,
            Ok(())
        ));
        assert_eq!(holder(store, other_dir, "jdoe").await.as_deref(), Some("E3"));
        assert_eq!(holder(store, dir, "nobody").await, None);
    }

    #[cfg(test)]
    mod tests {
        #[tokio::test]
        async fn the_memory_store_keeps_the_user_name_contract() {
            super::user_name_claims(&super::super::MemoryStore::default()).await;
        }
    }
}
