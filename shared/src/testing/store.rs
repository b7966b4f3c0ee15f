//! The state store in memory, with the DynamoDB adapter's semantics (`adapters::dynamo`): the
//! same conditions decide the same outcomes, so a service tested here behaves the same on the
//! table. The contract suite ([`super::contract::state_store`]) runs on both.

use super::{Faults, lock};
use crate::adapters::dynamo::{
    MAX_ITEM_BYTES, WORK_SHARDS, check_guard_arguments, guard_member, history_item, item_size, shard_of,
};
use crate::domain::audit::{AuditSnapshot, AuditState, Drift, Subject};
use crate::domain::employee::{EmployeeRecord, EmployeeState, EventOutcome};
use crate::ports::{
    AuditStore, Claim, ClaimOutcome, DueCursor, DuePage, GuardStatus, HistoryEntry, NameClaim, ScheduledEvent,
    StateStore, StoreError, guard_window_start,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// An HR event's idempotency record as the table holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub payload_hash: String,
    pub owner: String,
    /// `COMPLETED`; otherwise `INPROGRESS`.
    pub completed: bool,
    /// Removed on completion.
    pub in_progress_until_ms: Option<i64>,
    /// Epoch seconds; past it the record counts as absent (TTL deletes it later, or never).
    pub expires_at_s: i64,
    pub outcome: Option<EventOutcome>,
    pub reason: Option<String>,
}

/// Employees, user-name claims, idempotency records, history and held events. Reads are strongly
/// consistent, `watched` and `due` included (the table's index is only eventually so).
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub employees: Mutex<BTreeMap<String, EmployeeRecord>>,
    /// (directory, lower-case user name) → employee.
    pub names: Mutex<BTreeMap<(String, String), String>>,
    /// Employees whose record cannot be read (the store answers `Unavailable`).
    pub unreadable: Mutex<BTreeSet<String>>,
    /// Injected failures and call counters (`store.<method>`).
    pub faults: Faults,
    idempotency: Mutex<BTreeMap<String, IdempotencyRecord>>,
    /// By employee (`None`: rejected events without one), then by the table's sort key.
    history: Mutex<BTreeMap<Option<String>, BTreeMap<String, HistoryEntry>>>,
    /// By (employee, event).
    scheduled: Mutex<BTreeMap<(String, String), ScheduledEvent>>,
    /// The index as `watched` and `due` read it while frozen (see [`MemoryStore::freeze_index`]).
    frozen_index: Mutex<Option<Index>>,
    termination_guard: Mutex<TerminationGuard>,
    drift: Mutex<BTreeMap<Subject, Drift>>,
    audit_state: Mutex<Option<AuditState>>,
    /// Every write of an employee record, as the table's stream shows it: before and after.
    stream: Mutex<Vec<(Option<EmployeeRecord>, EmployeeRecord)>>,
}

/// The termination guard as its one item holds it: the status, and the keys the window admitted.
#[derive(Debug, Default)]
struct TerminationGuard {
    status: GuardStatus,
    admitted: BTreeSet<String>,
}

/// What the sparse index held at one moment.
#[derive(Debug, Clone)]
struct Index {
    employees: BTreeMap<String, EmployeeRecord>,
    scheduled: BTreeMap<(String, String), ScheduledEvent>,
}

const PORT: &str = "store";

/// The DynamoDB operation each method makes (what an `Unavailable` names).
fn dynamo_operation(method: &str) -> &'static str {
    match method {
        "claim" | "save_employee" | "record_history" | "schedule" => "PutItem",
        "complete" | "admit_terminations" | "reset_guard" => "UpdateItem",
        "release" | "unschedule" | "clear_drift" => "DeleteItem",
        "save_drift" | "save_audit_state" => "PutItem",
        "audit_snapshot" => "Scan",
        "employees" => "BatchGetItem",
        "save_joiner" => "TransactWriteItems",
        "history" | "watched" | "due" | "scheduled_for" => "Query",
        _ => "GetItem",
    }
}

fn unavailable(method: &str) -> StoreError {
    StoreError::Unavailable { operation: dynamo_operation(method), message: "injected: service unavailable".into() }
}

/// DynamoDB refuses an item over 400 KB.
fn check_size(method: &str, bytes: usize) -> Result<(), StoreError> {
    if bytes > MAX_ITEM_BYTES {
        return Err(StoreError::Invalid {
            operation: dynamo_operation(method),
            message: "ValidationException: Item size has exceeded the maximum allowed size".into(),
        });
    }
    Ok(())
}

/// The size of a record's item, keys and index attributes included (close to what DynamoDB counts).
fn stored_size<T: serde::Serialize>(value: &T, key: &str) -> Result<usize, StoreError> {
    let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> = serde_dynamo::to_item(value)
        .map_err(|e| StoreError::Malformed { key: key.to_owned(), detail: e.to_string() })?;
    // pk, sk, work_shard, work_due: names and values.
    Ok(item_size(&item) + 2 + 2 + 10 + 8 + key.len() * 2 + 40)
}

impl MemoryStore {
    pub fn with(records: impl IntoIterator<Item = EmployeeRecord>) -> Self {
        let store = Self::default();
        lock(&store.employees).extend(records.into_iter().map(|r| (r.employee_id.clone(), r)));
        store
    }

    /// Calls go through `faults` (shared with the other doubles of the test).
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    pub fn get(&self, id: &str) -> Option<EmployeeRecord> {
        lock(&self.employees).get(id).cloned()
    }

    pub fn count(&self, state: EmployeeState) -> usize {
        lock(&self.employees).values().filter(|e| e.state == state).count()
    }

    pub fn records(&self) -> Vec<EmployeeRecord> {
        lock(&self.employees).values().cloned().collect()
    }

    pub fn idempotency_record(&self, event_id: &str) -> Option<IdempotencyRecord> {
        lock(&self.idempotency).get(event_id).cloned()
    }

    /// Every idempotency record by event id, expired ones included (nothing deletes them).
    pub fn idempotency_records(&self) -> BTreeMap<String, IdempotencyRecord> {
        lock(&self.idempotency).clone()
    }

    /// Every history line: employees' (by employee, then in the table's order), then the
    /// rejected events without an employee.
    pub fn all_history(&self) -> Vec<HistoryEntry> {
        let history = lock(&self.history);
        let employees = history.iter().filter(|(k, _)| k.is_some()).flat_map(|(_, lines)| lines.values());
        let rejected = history.get(&None).into_iter().flat_map(BTreeMap::values);
        employees.chain(rejected).cloned().collect()
    }

    /// The rejected events recorded without an employee (the table's `REJECTED` partition, which
    /// no port method reads).
    pub fn rejected_without_employee(&self) -> Vec<HistoryEntry> {
        lock(&self.history).get(&None).map(|l| l.values().cloned().collect()).unwrap_or_default()
    }

    /// Every held event, by employee and event id.
    pub fn scheduled_events(&self) -> Vec<ScheduledEvent> {
        lock(&self.scheduled).values().cloned().collect()
    }

    /// Every user-name claim: (directory, lower-case user name) → employee.
    pub fn name_claims(&self) -> BTreeMap<(String, String), String> {
        lock(&self.names).clone()
    }

    /// The keys the termination guard's window admitted (as set members: see `guard_member`).
    pub fn guard_admitted(&self) -> BTreeSet<String> {
        lock(&self.termination_guard).admitted.clone()
    }

    /// From now on `watched` and `due` answer from the index as it is now, until
    /// [`catch_up_index`](Self::catch_up_index): the table's index is eventually consistent, so a
    /// service must decide on a consistent read, not on what the index says.
    pub fn freeze_index(&self) {
        let employees = lock(&self.employees)
            .iter()
            .filter(|(_, r)| r.state.needs_watching())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let scheduled = lock(&self.scheduled).clone();
        *lock(&self.frozen_index) = Some(Index { employees, scheduled });
    }

    /// The index has caught up with the table again.
    pub fn catch_up_index(&self) {
        *lock(&self.frozen_index) = None;
    }

    fn guard<T>(&self, method: &'static str, op: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.faults.guard(PORT, method, || unavailable(method), op)
    }

    fn read_one(&self, employee_id: &str) -> Result<Option<EmployeeRecord>, StoreError> {
        if lock(&self.unreadable).contains(employee_id) {
            return Err(StoreError::Unavailable { operation: "GetItem", message: "injected: unreadable".into() });
        }
        Ok(self.get(employee_id))
    }
}

impl MemoryStore {
    /// Every write of an employee record so far, in order, as a DynamoDB stream with new and
    /// old images would deliver it.
    pub fn stream(&self) -> Vec<(Option<EmployeeRecord>, EmployeeRecord)> {
        lock(&self.stream).clone()
    }

    /// The open drift, by subject.
    pub fn drift(&self) -> BTreeMap<Subject, Drift> {
        lock(&self.drift).clone()
    }
}

impl AuditStore for MemoryStore {
    async fn audit_snapshot(&self) -> Result<AuditSnapshot, StoreError> {
        self.guard("audit_snapshot", || {
            Ok(AuditSnapshot {
                employees: self.records(),
                drift: lock(&self.drift).values().cloned().collect(),
                state: lock(&self.audit_state).clone(),
            })
        })
    }

    async fn save_drift(&self, drift: &Drift) -> Result<(), StoreError> {
        self.guard("save_drift", || {
            check_size("save_drift", stored_size(drift, "DRIFT")?)?;
            lock(&self.drift).insert(drift.subject.clone(), drift.clone());
            Ok(())
        })
    }

    async fn clear_drift(&self, subject: &Subject) -> Result<(), StoreError> {
        self.guard("clear_drift", || {
            lock(&self.drift).remove(subject);
            Ok(())
        })
    }

    async fn drift_of(&self, subject: &Subject) -> Result<Option<Drift>, StoreError> {
        self.guard("drift_of", || Ok(lock(&self.drift).get(subject).cloned()))
    }

    async fn save_audit_state(&self, state: &AuditState) -> Result<(), StoreError> {
        self.guard("save_audit_state", || {
            check_size("save_audit_state", stored_size(state, "AUDIT")?)?;
            *lock(&self.audit_state) = Some(state.clone());
            Ok(())
        })
    }

    async fn audit_state(&self) -> Result<Option<AuditState>, StoreError> {
        self.guard("audit_state", || Ok(lock(&self.audit_state).clone()))
    }
}

/// The conditional put `save_employee` and `save_joiner` make on the record.
fn version_matches(map: &BTreeMap<String, EmployeeRecord>, id: &str, expected: Option<u64>) -> bool {
    match (map.get(id), expected) {
        (None, None) => true,
        (Some(stored), Some(v)) => stored.version == v,
        _ => false,
    }
}

impl StateStore for MemoryStore {
    async fn claim(&self, claim: &Claim) -> Result<ClaimOutcome, StoreError> {
        self.guard("claim", || {
            let mut records = lock(&self.idempotency);
            let fresh = IdempotencyRecord {
                payload_hash: claim.payload_hash.clone(),
                owner: claim.owner.clone(),
                completed: false,
                in_progress_until_ms: Some(claim.in_progress_until_ms),
                expires_at_s: claim.expires_at_s,
                outcome: None,
                reason: None,
            };
            // attribute_not_exists(pk) OR expires_at < :now_s
            //   OR (status = INPROGRESS AND in_progress_until_ms < :now_ms)
            let outcome = match records.get(&claim.event_id) {
                None => None,
                Some(old) if old.expires_at_s < claim.now_ms / 1000 => None,
                Some(old) if !old.completed && old.in_progress_until_ms.is_some_and(|u| u < claim.now_ms) => None,
                Some(old) if old.completed => Some(ClaimOutcome::Completed {
                    same_payload: old.payload_hash == claim.payload_hash,
                    outcome: old.outcome,
                    reason: old.reason.clone(),
                }),
                // The owner's own claim, made again (its first reply was lost).
                Some(old) if old.owner == claim.owner => None,
                Some(_) => Some(ClaimOutcome::InProgress),
            };
            Ok(outcome.unwrap_or_else(|| {
                records.insert(claim.event_id.clone(), fresh);
                ClaimOutcome::Claimed
            }))
        })
    }

    async fn complete(
        &self,
        event_id: &str,
        owner: &str,
        outcome: EventOutcome,
        reason: &str,
        line: Option<&HistoryEntry>,
    ) -> Result<(), StoreError> {
        self.guard("complete", || {
            // One transaction: the line is checked first, so a refused line changes nothing.
            let line = match line {
                Some(entry) => {
                    let item = history_item(entry)?;
                    check_size("complete", item_size(&item))?;
                    Some((item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(), entry))
                }
                None => None,
            };
            // #owner = :owner AND #status = :in_progress (whatever the deadline or expiry)
            match lock(&self.idempotency).get_mut(event_id) {
                Some(record) if record.owner == owner && !record.completed => {
                    if let Some((sk, entry)) = line {
                        lock(&self.history).entry(entry.employee_id.clone()).or_default().insert(sk, entry.clone());
                    }
                    record.completed = true;
                    record.outcome = Some(outcome);
                    record.reason = Some(reason.to_owned());
                    record.in_progress_until_ms = None;
                    Ok(())
                }
                // Completed already by this owner with this outcome: a retry whose reply was lost.
                Some(record) if record.owner == owner && record.completed && record.outcome == Some(outcome) => Ok(()),
                _ => Err(StoreError::LostClaim(event_id.to_owned())),
            }
        })
    }

    async fn release(&self, event_id: &str, owner: &str) -> Result<(), StoreError> {
        self.guard("release", || {
            let mut records = lock(&self.idempotency);
            match records.get(event_id) {
                Some(record) if record.owner == owner && !record.completed => {
                    records.remove(event_id);
                    Ok(())
                }
                // Nothing is held (released already, or expired and deleted).
                None => Ok(()),
                _ => Err(StoreError::LostClaim(event_id.to_owned())),
            }
        })
    }

    async fn employee(&self, employee_id: &str) -> Result<Option<EmployeeRecord>, StoreError> {
        self.guard("employee", || self.read_one(employee_id))
    }

    async fn employees(&self, ids: &[String]) -> Result<Vec<EmployeeRecord>, StoreError> {
        self.guard("employees", || {
            let unreadable = lock(&self.unreadable);
            if ids.iter().any(|id| unreadable.contains(id)) {
                return Err(StoreError::Unavailable {
                    operation: "BatchGetItem",
                    message: "injected: unreadable".into(),
                });
            }
            drop(unreadable);
            let wanted: BTreeSet<&String> = ids.iter().collect();
            let map = lock(&self.employees);
            Ok(wanted.into_iter().filter_map(|id| map.get(id).cloned()).collect())
        })
    }

    async fn save_employee(&self, record: &EmployeeRecord, expected_version: Option<u64>) -> Result<(), StoreError> {
        self.guard("save_employee", || {
            check_size("save_employee", stored_size(record, &record.employee_id)?)?;
            let mut map = lock(&self.employees);
            if !version_matches(&map, &record.employee_id, expected_version) {
                return Err(StoreError::Conflict(format!("EMP#{}", record.employee_id)));
            }
            let before = map.insert(record.employee_id.clone(), record.clone());
            lock(&self.stream).push((before, record.clone()));
            Ok(())
        })
    }

    async fn save_joiner(
        &self,
        record: &EmployeeRecord,
        expected_version: Option<u64>,
        claim: &NameClaim,
    ) -> Result<(), StoreError> {
        self.guard("save_joiner", || {
            check_size("save_joiner", stored_size(record, &record.employee_id)?)?;
            let mut employees = lock(&self.employees);
            let mut names = lock(&self.names);
            // The adapter reads the cancellation reasons in this order.
            if !version_matches(&employees, &record.employee_id, expected_version) {
                return Err(StoreError::Conflict(format!("EMP#{}", record.employee_id)));
            }
            if let Some((holder, version)) = &claim.take_over_from
                && !version_matches(&employees, holder, *version)
            {
                return Err(StoreError::Conflict(format!("holder of NAME#{}", claim.user_name)));
            }
            let key = (claim.directory_id.clone(), claim.user_name.to_ascii_lowercase());
            let allowed = claim.take_over_from.as_ref().map_or(claim.employee_id.as_str(), |(h, _)| h.as_str());
            // attribute_not_exists(pk) OR employee_id = :holder; then who holds it now.
            match names.get(&key) {
                Some(holder) if holder != allowed && holder != &claim.employee_id => {
                    return Err(StoreError::NameHeld { holder: holder.clone() });
                }
                Some(holder) if holder != allowed => {
                    return Err(StoreError::Conflict(format!("NAME#{}", claim.user_name)));
                }
                _ => {}
            }
            names.insert(key, claim.employee_id.clone());
            let before = employees.insert(record.employee_id.clone(), record.clone());
            lock(&self.stream).push((before, record.clone()));
            Ok(())
        })
    }

    async fn name_holder(&self, directory_id: &str, user_name: &str) -> Result<Option<String>, StoreError> {
        self.guard("name_holder", || {
            Ok(lock(&self.names).get(&(directory_id.to_owned(), user_name.to_ascii_lowercase())).cloned())
        })
    }

    async fn record_history(&self, entry: &HistoryEntry) -> Result<(), StoreError> {
        self.guard("record_history", || {
            let item = history_item(entry)?;
            check_size("record_history", item_size(&item))?;
            let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            // One line per sort key: the same delivery recorded twice stays one line.
            lock(&self.history).entry(entry.employee_id.clone()).or_default().insert(sk, entry.clone());
            Ok(())
        })
    }

    async fn history(&self, employee_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.guard("history", || {
            let history = lock(&self.history);
            Ok(history.get(&Some(employee_id.to_owned())).map(|l| l.values().cloned().collect()).unwrap_or_default())
        })
    }

    async fn watched(&self, state: EmployeeState, due_by_ms: i64) -> Result<Vec<String>, StoreError> {
        self.guard("watched", || {
            // The sparse index holds only the records with a watch time (`watch_due_ms`), by
            // shard then that time.
            let frozen = lock(&self.frozen_index);
            let live;
            let map = match frozen.as_ref() {
                Some(index) => &index.employees,
                None => {
                    live = lock(&self.employees);
                    &*live
                }
            };
            let mut watched: Vec<(u32, i64, &String)> = map
                .values()
                .filter(|e| e.state == state)
                .filter_map(|e| e.watch_due_ms().filter(|due| *due <= due_by_ms).map(|due| (e, due)))
                .map(|(e, due)| (shard_of(&e.employee_id), due, &e.employee_id))
                .collect();
            watched.sort();
            Ok(watched.into_iter().map(|(_, _, id)| id.clone()).collect())
        })
    }

    async fn schedule(&self, event: &ScheduledEvent) -> Result<(), StoreError> {
        self.guard("schedule", || {
            check_size("schedule", stored_size(event, &event.event_id)?)?;
            lock(&self.scheduled).insert((event.employee_id.clone(), event.event_id.clone()), event.clone());
            Ok(())
        })
    }

    async fn due(&self, now_ms: i64, from: &DueCursor, limit: usize) -> Result<DuePage, StoreError> {
        self.guard("due", || {
            let frozen = lock(&self.frozen_index);
            let live;
            let held = match frozen.as_ref() {
                Some(index) => &index.scheduled,
                None => {
                    live = lock(&self.scheduled);
                    &*live
                }
            };
            // The index's order within a shard: due time, then (here) employee and event.
            let shard = from.turn;
            let position =
                |e: &ScheduledEvent| (format!("{:013}", e.effective_ms), e.employee_id.clone(), e.event_id.clone());
            let start = from.after.get(&shard).map(|key| {
                let part = |name: &str| key.get(name).cloned().unwrap_or_default();
                (part("work_due"), part("employee_id"), part("event_id"))
            });
            let mut due: Vec<_> = held
                .values()
                .filter(|e| e.effective_ms <= now_ms && shard_of(&e.employee_id) == shard)
                .map(|e| (position(e), e))
                .filter(|(at, _)| start.as_ref().is_none_or(|start| at > start))
                .collect();
            due.sort_by(|a, b| a.0.cmp(&b.0));
            let more = due.len() > limit.max(1);
            due.truncate(limit.max(1));
            let stands = match due.last() {
                Some(((work_due, employee_id, event_id), _)) if more => Some(BTreeMap::from([
                    ("work_due".to_owned(), work_due.clone()),
                    ("employee_id".to_owned(), employee_id.clone()),
                    ("event_id".to_owned(), event_id.clone()),
                ])),
                _ => None,
            };
            let events = due.into_iter().map(|(_, e)| e.clone()).collect();
            Ok(DuePage { events, next: from.clone().advance(shard, stands, WORK_SHARDS) })
        })
    }

    async fn unschedule(&self, employee_id: &str, event_id: &str) -> Result<bool, StoreError> {
        self.guard("unschedule", || {
            Ok(lock(&self.scheduled).remove(&(employee_id.to_owned(), event_id.to_owned())).is_some())
        })
    }

    async fn scheduled_for(&self, employee_id: &str) -> Result<Vec<ScheduledEvent>, StoreError> {
        self.guard("scheduled_for", || {
            Ok(lock(&self.scheduled).values().filter(|e| e.employee_id == employee_id).cloned().collect())
        })
    }

    async fn admit_terminations(
        &self,
        now_ms: i64,
        window_ms: i64,
        limit: u32,
        keys: &[String],
    ) -> Result<Vec<bool>, StoreError> {
        self.guard("admit_terminations", || {
            check_guard_arguments(window_ms, limit)?;
            let mut guard = lock(&self.termination_guard);
            let TerminationGuard { status, admitted } = &mut *guard;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            // Tripped: everything is held, and counted; the window is left as it was.
            if !status.is_tripped() {
                let window_start = guard_window_start(now_ms, window_ms);
                // A lagging clock counts in the newer window.
                if status.window_start_ms.is_none_or(|start| start < window_start) {
                    status.window_start_ms = Some(window_start);
                    status.window_ms = Some(window_ms);
                    admitted.clear();
                }
            }
            let mut answers = Vec::with_capacity(keys.len());
            for key in keys {
                let member = guard_member(key);
                let admit = if status.is_tripped() {
                    false
                } else if admitted.contains(&member) {
                    true
                } else if admitted.len() < limit as usize {
                    admitted.insert(member);
                    true
                } else {
                    status.tripped_since_ms = Some(now_ms);
                    status.tripped_by = Some(member);
                    false
                };
                if !admit {
                    status.held += 1;
                    status.last_held_ms = Some(now_ms);
                }
                answers.push(admit);
            }
            status.admitted_in_window = u32::try_from(admitted.len()).unwrap_or(u32::MAX);
            Ok(answers)
        })
    }

    async fn guard_status(&self) -> Result<GuardStatus, StoreError> {
        self.guard("guard_status", || Ok(lock(&self.termination_guard).status.clone()))
    }

    async fn reset_guard(&self, now_ms: i64) -> Result<(), StoreError> {
        self.guard("reset_guard", || {
            let mut guard = lock(&self.termination_guard);
            guard.admitted.clear();
            guard.status = GuardStatus {
                window_start_ms: guard.status.window_start_ms,
                window_ms: guard.status.window_ms,
                last_reset_ms: Some(now_ms),
                ..GuardStatus::default()
            };
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(event: &str, owner: &str) -> Claim {
        Claim {
            event_id: event.into(),
            payload_hash: "h".into(),
            owner: owner.into(),
            now_ms: 1_000,
            in_progress_until_ms: 61_000,
            expires_at_s: 3_600,
        }
    }

    #[tokio::test]
    async fn an_injected_failure_changes_nothing_unless_it_hits_after_the_write() {
        let store = MemoryStore::default();
        store.faults.fail_next("store.claim", 1);
        assert!(matches!(
            store.claim(&claim("e1", "a")).await,
            Err(StoreError::Unavailable { operation: "PutItem", .. })
        ));
        assert_eq!(store.idempotency_record("e1"), None);
        store.faults.fail_next_after("store.claim", 1);
        assert!(store.claim(&claim("e1", "a")).await.is_err());
        let record = store.idempotency_record("e1").unwrap();
        assert_eq!((record.owner.as_str(), record.completed), ("a", false), "written, answer lost");
        // The retry finds its own claim and keeps it, as on DynamoDB.
        assert_eq!(store.claim(&claim("e1", "a")).await.unwrap(), ClaimOutcome::Claimed);
        assert_eq!(store.claim(&claim("e1", "b")).await.unwrap(), ClaimOutcome::InProgress);
        store.complete("e1", "a", EventOutcome::Applied, "ok", None).await.unwrap();
        assert!(store.idempotency_records()["e1"].completed);
        assert_eq!(store.faults.calls("store"), 5);
    }

    const HOUR: i64 = 3_600_000;

    #[tokio::test]
    async fn a_guard_admission_whose_answer_is_lost_is_admitted_again_without_counting_twice() {
        let store = MemoryStore::default();
        let leaves: Vec<String> = vec!["lv-1".into(), "lv-2".into()];
        // GIVEN an admission that takes effect but whose answer is lost
        store.faults.fail_next_after("store.admit_terminations", 1);
        assert!(matches!(
            store.admit_terminations(0, HOUR, 2, &leaves).await,
            Err(StoreError::Unavailable { operation: "UpdateItem", .. })
        ));
        // WHEN the batch is retried, THEN it is admitted, counted once: the limit of 2 is not passed
        assert_eq!(store.admit_terminations(1, HOUR, 2, &leaves).await.unwrap(), [true, true]);
        let status = store.guard_status().await.unwrap();
        assert_eq!((status.admitted_in_window, status.is_tripped()), (2, false));
        // A failure before the write changes nothing; a failed reset neither.
        store.faults.fail_next("store.admit_terminations", 1);
        assert!(store.admit_terminations(2, HOUR, 2, &["lv-3".into()]).await.is_err());
        assert!(!store.guard_status().await.unwrap().is_tripped());
        assert_eq!(store.admit_terminations(3, HOUR, 2, &["lv-3".into()]).await.unwrap(), [false]);
        store.faults.fail_next("store.reset_guard", 1);
        assert!(matches!(store.reset_guard(4).await, Err(StoreError::Unavailable { operation: "UpdateItem", .. })));
        assert!(store.guard_status().await.unwrap().is_tripped());
        let counts = store.faults.counts();
        assert_eq!(
            (counts["store.admit_terminations"], counts["store.guard_status"], counts["store.reset_guard"]),
            (4, 3, 1)
        );
    }

    #[tokio::test]
    async fn a_guard_key_that_is_not_a_plain_id_is_kept_bounded() {
        let store = MemoryStore::default();
        let long = "x".repeat(5_000);
        assert_eq!(store.admit_terminations(0, HOUR, 5, &[long.clone(), "lv-1".into()]).await.unwrap(), [true, true]);
        let kept = store.guard_admitted();
        assert!(kept.contains("lv-1"));
        assert!(kept.iter().all(|k| k.len() <= crate::domain::names::EventId::MAX), "{kept:?}");
        assert_eq!(store.admit_terminations(1, HOUR, 5, &[long]).await.unwrap(), [true], "found again");
        assert_eq!(store.guard_status().await.unwrap().admitted_in_window, 2);
    }

    #[tokio::test]
    async fn unreadable_employees_fail_single_and_batch_reads() {
        let store = MemoryStore::with([EmployeeRecord::new("E1", 0), EmployeeRecord::new("E2", 0)]);
        lock(&store.unreadable).insert("E1".into());
        assert!(store.employee("E1").await.is_err());
        assert!(store.employees(&["E2".into(), "E1".into()]).await.is_err());
        assert_eq!(store.employees(&["E2".into(), "E2".into()]).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn history_without_an_employee_is_kept_apart_and_items_keep_dynamodb_limits() {
        let store = MemoryStore::default();
        let entry = HistoryEntry {
            employee_id: None,
            event_id: None,
            message_id: "m1".into(),
            kind: None,
            occurred_ms: None,
            outcome: EventOutcome::Rejected,
            reason: "not JSON".into(),
            recorded_ms: 5,
        };
        store.record_history(&entry).await.unwrap();
        assert_eq!(store.rejected_without_employee(), std::slice::from_ref(&entry));
        assert_eq!(store.all_history(), std::slice::from_ref(&entry));
        let huge = HistoryEntry { reason: "x".repeat(MAX_ITEM_BYTES), ..entry };
        assert!(matches!(store.record_history(&huge).await, Err(StoreError::Invalid { .. })));
        let mut record = EmployeeRecord::new("E1", 0);
        record.failure_message = Some("y".repeat(MAX_ITEM_BYTES));
        assert!(matches!(store.save_employee(&record, None).await, Err(StoreError::Invalid { .. })));
    }

    #[tokio::test]
    async fn a_frozen_index_answers_as_it_was_until_it_catches_up() {
        let mut record = EmployeeRecord::new("E1", 0);
        record.state = EmployeeState::Pending;
        let store = MemoryStore::with([record.clone()]);
        store.freeze_index();
        record.state = EmployeeState::Active;
        store.save_employee(&record, Some(0)).await.unwrap();
        let event = ScheduledEvent {
            employee_id: "E1".into(),
            event_id: "v1".into(),
            kind: "leave".into(),
            occurred_ms: 0,
            effective_ms: 0,
            body: "{}".into(),
        };
        store.schedule(&event).await.unwrap();
        assert_eq!(store.watched(EmployeeState::Pending, i64::MAX).await.unwrap(), ["E1"], "stale");
        assert_eq!(store.employee("E1").await.unwrap().unwrap().state, EmployeeState::Active, "consistent");
        assert!(all_due(&store, 10).await.is_empty());
        store.catch_up_index();
        assert!(store.watched(EmployeeState::Pending, i64::MAX).await.unwrap().is_empty());
        assert_eq!(all_due(&store, 10).await, [event]);
    }

    /// Every page, every shard.
    async fn all_due(store: &MemoryStore, now_ms: i64) -> Vec<ScheduledEvent> {
        let (mut events, mut from) = (Vec::new(), Some(DueCursor::default()));
        while let Some(cursor) = from {
            let page = store.due(now_ms, &cursor, 10).await.unwrap();
            events.extend(page.events);
            from = page.next;
        }
        events
    }

    #[tokio::test]
    async fn watched_follows_the_index_order_shard_then_time() {
        let records = (0..20).map(|i| {
            let mut r = EmployeeRecord::new(&format!("E{i}"), 100 - i);
            r.state = EmployeeState::Pending;
            r
        });
        let store = MemoryStore::with(records);
        let watched = store.watched(EmployeeState::Pending, i64::MAX).await.unwrap();
        let keys: Vec<(u32, i64)> =
            watched.iter().map(|id| (shard_of(id), store.get(id).unwrap().state_since_ms)).collect();
        assert!(keys.is_sorted(), "{keys:?}");
        assert_eq!(keys.len(), 20);
    }
}
