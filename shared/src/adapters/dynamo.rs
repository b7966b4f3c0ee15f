//! The state store on one DynamoDB table (`pk`, `sk`; sparse GSI `work-index` on
//! `work_shard`/`work_due`; TTL on `expires_at`):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | idempotency record of an HR event | `EVENT#<event_id>` | `IDEMPOTENCY` |
//! | employee lifecycle record | `EMP#<employee_id>` | `STATE` |
//! | future-dated event, held | `EMP#<employee_id>` | `SCHEDULED#<event_id>` (in `work-index` as `scheduled#n`) |
//! | history line | `EMP#<employee_id>` (`REJECTED` without one) | `EVENT#<occurred ms>#<event_id>#<recorded ms>#<message id>#<outcome or duplicate>` |
//! | user-name claim | `NAME#<directory_id>#<user name, lower case>` | `OWNER` |
//! | the termination guard (latch and window count; never expires) | `GUARD#terminations` | `STATE` |
//!
//! A part of a key that is not a valid id (it can only come from a bug: the intake records
//! rejected events under valid ids only) is replaced by a hash, so no input can make a key pass
//! DynamoDB's limits (partition key 2,048 bytes, sort key 1,024).

use super::describe_sdk_error;
use crate::domain::audit::{AuditSnapshot, AuditState, Drift, Subject};
use crate::domain::employee::{EmployeeRecord, EmployeeState, EventOutcome};
use crate::domain::names::{EmployeeId, EventId};
use crate::ports::{
    AuditStore, Claim, ClaimOutcome, DueCursor, DuePage, GuardStatus, HistoryEntry, MAX_TERMINATIONS_PER_WINDOW,
    NameClaim, ScheduledEvent, StateStore, StoreError, guard_window_start,
};
use crate::services::publisher::{Change, StreamChange};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnValuesOnConditionCheckFailure};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const WORK_INDEX: &str = "work-index";
/// Watched employees are spread over this many index partitions (no hot key).
pub const WORK_SHARDS: u32 = 4;
const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

type Item = HashMap<String, AttributeValue>;

pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn unavailable<E, R>(
    operation: &'static str,
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> StoreError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error,
    R: std::fmt::Debug,
{
    let (code, message, _) = describe_sdk_error(err);
    let message = crate::domain::validation::reason(&format!("{code}: {message}"));
    // DynamoDB's ValidationException: the request itself is wrong (an item over 400 KB, a key
    // over its limit). Retrying the same request cannot succeed.
    if code == "ValidationException" {
        StoreError::Invalid { operation, message }
    } else {
        StoreError::Unavailable { operation, message }
    }
}

/// DynamoDB's limits, from its documentation.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
pub const MAX_SORT_KEY_BYTES: usize = 1024;

/// An id as a part of a key: itself when it is a plain id of at most `max` bytes, otherwise
/// `#` and a hash of it (bounded, and never equal to a plain id).
fn key_part(id: &str, max: usize) -> String {
    let plain = !id.is_empty()
        && id.len() <= max
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if plain {
        id.to_owned()
    } else {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(id.as_bytes());
        format!("#{}", digest.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>())
    }
}

/// The size DynamoDB counts for an item: attribute names plus values (strings and binary by
/// their bytes, numbers by about one byte per two digits plus one, documents recursively).
pub fn item_size(item: &Item) -> usize {
    fn value_size(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.len().div_ceil(2) + 1,
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::Ss(l) => l.iter().map(String::len).sum(),
            AttributeValue::Ns(l) => l.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
            AttributeValue::Bs(l) => l.iter().map(|b| b.as_ref().len()).sum(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
            AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// The history item of an entry, keys included (what `record_history` writes).
pub fn history_item(entry: &HistoryEntry) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(entry)
        .map_err(|e| StoreError::Malformed { key: entry.message_id.clone(), detail: e.to_string() })?;
    let pk = entry
        .employee_id
        .as_ref()
        .map_or_else(|| "REJECTED".to_owned(), |id| format!("EMP#{}", key_part(id, EmployeeId::MAX)));
    // One line per delivery and outcome: a duplicate never overwrites the line of the delivery
    // that applied the event, even when SQS delivers the same message twice in one millisecond.
    let sk = format!(
        "EVENT#{:013}#{}#{:013}#{}#{}",
        entry.occurred_ms.unwrap_or(entry.recorded_ms),
        entry.event_id.as_deref().map_or_else(|| "-".to_owned(), |id| key_part(id, EventId::MAX)),
        entry.recorded_ms,
        key_part(&entry.message_id, 128),
        entry.kind_of_line()
    );
    item.insert("pk".into(), s(pk));
    item.insert("sk".into(), s(sk));
    Ok(item)
}

fn name_key(directory_id: &str, user_name: &str) -> Item {
    HashMap::from([
        (
            "pk".to_owned(),
            s(format!("NAME#{}#{}", key_part(directory_id, 64), key_part(&user_name.to_ascii_lowercase(), 64))),
        ),
        ("sk".to_owned(), s("OWNER")),
    ])
}

fn employee_key(id: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("EMP#{}", key_part(id, EmployeeId::MAX)))),
        ("sk".to_owned(), s("STATE")),
    ])
}

fn event_key(id: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("EVENT#{}", key_part(id, EventId::MAX)))),
        ("sk".to_owned(), s("IDEMPOTENCY")),
    ])
}

/// A stable small hash: which index partition an employee's work entry lives in.
pub fn shard_of(employee_id: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in employee_id.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h % WORK_SHARDS
}

fn work_shard(state: EmployeeState, shard: u32) -> String {
    format!("{}#{shard}", state.as_str())
}

const SCHEDULED: &str = "scheduled";

fn scheduled_key(employee_id: &str, event_id: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), s(format!("EMP#{}", key_part(employee_id, EmployeeId::MAX)))),
        ("sk".to_owned(), s(format!("SCHEDULED#{}", key_part(event_id, EventId::MAX)))),
    ])
}

fn text(item: &Item, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

// ---------------------------------------------------------------- the table's stream

/// The key prefix and sort key of employee records: what the publisher's stream mapping filters
/// on (the template's FilterCriteria and the local stack's mapping name the same two).
pub const EMPLOYEE_PK_PREFIX: &str = "EMP#";
pub const EMPLOYEE_SK: &str = "STATE";

/// A record of the table's stream (new and old images) as the publisher reads it: an employee
/// record's change, or anything else (another item, a removal), or an image that cannot be read.
pub fn stream_change(record: &aws_lambda_events::event::dynamodb::EventRecord) -> StreamChange {
    use serde_dynamo::AttributeValue as Value;
    let change = &record.change;
    let key_text = |name: &str| match change.keys.get(name) {
        Some(Value::S(text)) => text.clone(),
        _ => String::new(),
    };
    let (pk, sk) = (key_text("pk"), key_text("sk"));
    let sequence_number = change.sequence_number.clone().unwrap_or_default();
    let employee = pk.starts_with(EMPLOYEE_PK_PREFIX) && sk == EMPLOYEE_SK;
    // Employee records are never removed (only their history expires): a removal is nothing to
    // announce.
    if !employee || record.event_name == "REMOVE" {
        return StreamChange { sequence_number, change: Change::Other };
    }
    // A write without the images the stream's view promises cannot be read for what changed.
    let missing = if change.new_image.is_empty() {
        Some("the stream record has no new image")
    } else if record.event_name == "MODIFY" && change.old_image.is_empty() {
        Some("a modification without its old image (is the stream's view NEW_AND_OLD_IMAGES?)")
    } else {
        None
    };
    if let Some(detail) = missing {
        return StreamChange { sequence_number, change: Change::Unreadable { key: pk, detail: detail.to_owned() } };
    }
    let read = |image: &serde_dynamo::Item| serde_dynamo::from_item::<_, EmployeeRecord>(image.clone());
    let before = if change.old_image.is_empty() { Ok(None) } else { read(&change.old_image).map(Some) };
    let change = match (before, read(&change.new_image)) {
        (Ok(before), Ok(after)) => Change::Employee { before: before.map(Box::new), after: Box::new(after) },
        (Err(e), _) | (_, Err(e)) => Change::Unreadable { key: pk, detail: e.to_string() },
    };
    StreamChange { sequence_number, change }
}

// ---------------------------------------------------------------- termination guard
//
// The guard is one item that never expires (no `expires_at`: a tripped guard must outlive any
// TTL), `GUARD#terminations` / `STATE`:
// - `window_start_ms`, `window_ms`: the fixed window being counted;
// - `admitted`: a string set of the keys admitted in that window (absent when there are none:
//   DynamoDB has no empty sets), so a retried key is found and not counted twice;
// - `tripped_since_ms`, `tripped_by`, `held`, `last_held_ms`: the latch and what it has held;
// - `last_reset_ms`; `version`: bumped by every write that changes the window, the set or the latch.
//
// One item, not an item per window plus a latch item: the latch and the count are then checked
// together by a single conditional UpdateItem, with no transaction (TransactWriteItems with a
// ConditionCheck on a latch item would cost twice the write units and read a second item on
// every call). A new window replaces the set in the same item; the keys of past windows are not
// kept (the employees' history says what was terminated). The set holds at most the limit's
// keys (`MAX_TERMINATIONS_PER_WINDOW`), so the item stays far below 400 KB.
//
// Requests per call: one UpdateItem when the keys fit in the window as it stands and the guard
// is not tripped (the fast path). Otherwise that write's failed condition returns the item as it
// was (ALL_OLD), the call is decided on it (`plan_admission`), and one more UpdateItem,
// conditional on the version read, makes the decision: the first call of a new window, the call
// that trips the guard, and every call while it is tripped (the held count) cost two. A
// concurrent write makes it fail and return the item again: decide again on that.

const GUARD_PK: &str = "GUARD#terminations";
const GUARD_SK: &str = "STATE";
/// Conditional writes one call may lose to concurrent calls (each loss means another call's write
/// went through) before it answers `Conflict`.
const GUARD_ATTEMPTS: usize = 20;

fn guard_key() -> Item {
    HashMap::from([("pk".to_owned(), s(GUARD_PK)), ("sk".to_owned(), s(GUARD_SK))])
}

/// A key of the guard (a leave event id or an employee id; the longer is an event id) as a member
/// of its set of admitted keys: bounded as a part of a key is.
pub fn guard_member(key: &str) -> String {
    key_part(key, EventId::MAX)
}

/// What `admit_terminations` accepts, checked before anything is read or written.
pub fn check_guard_arguments(window_ms: i64, limit: u32) -> Result<(), StoreError> {
    if window_ms > 0 && limit <= MAX_TERMINATIONS_PER_WINDOW {
        return Ok(());
    }
    Err(StoreError::Invalid {
        operation: "UpdateItem",
        message: format!(
            "termination guard: a window of {window_ms} ms (must be positive) and a limit of {limit} \
             (at most {MAX_TERMINATIONS_PER_WINDOW})"
        ),
    })
}

/// The guard item as read: its version, what it says, and the keys its window admitted.
#[derive(Debug, Default)]
struct GuardItem {
    version: Option<u64>,
    status: GuardStatus,
    admitted: BTreeSet<String>,
}

fn guard_malformed(attribute: &str) -> StoreError {
    StoreError::Malformed { key: format!("{GUARD_PK}/{GUARD_SK}"), detail: format!("{attribute} has the wrong type") }
}

fn number<T: std::str::FromStr>(item: &Item, attribute: &str) -> Result<Option<T>, StoreError> {
    match item.get(attribute) {
        None => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| guard_malformed(attribute)),
        Some(_) => Err(guard_malformed(attribute)),
    }
}

fn decode_guard(item: &Item) -> Result<GuardItem, StoreError> {
    let admitted: BTreeSet<String> = match item.get("admitted") {
        None => BTreeSet::new(),
        Some(AttributeValue::Ss(members)) => members.iter().cloned().collect(),
        Some(_) => return Err(guard_malformed("admitted")),
    };
    Ok(GuardItem {
        version: number(item, "version")?,
        status: GuardStatus {
            tripped_since_ms: number(item, "tripped_since_ms")?,
            tripped_by: text(item, "tripped_by"),
            held: number(item, "held")?.unwrap_or(0),
            last_held_ms: number(item, "last_held_ms")?,
            window_start_ms: number(item, "window_start_ms")?,
            window_ms: number(item, "window_ms")?,
            admitted_in_window: u32::try_from(admitted.len()).unwrap_or(u32::MAX),
            last_reset_ms: number(item, "last_reset_ms")?,
        },
        admitted,
    })
}

/// What a call does to the guard as it was read: the answer per key, and what the one write that
/// makes it so changes.
#[derive(Debug, Default)]
struct GuardPlan {
    answers: Vec<bool>,
    /// The window starts afresh here (none was stored, or the stored one has ended).
    rollover: Option<i64>,
    /// Keys new to the window's set.
    admit: Vec<String>,
    /// Keys refused.
    refused: u64,
    /// The refused key that trips the guard (`None` when it was tripped already, or nothing is refused).
    trips_on: Option<String>,
}

impl GuardPlan {
    fn changes_nothing(&self) -> bool {
        self.rollover.is_none() && self.admit.is_empty() && self.refused == 0
    }
}

/// The guard's rule, applied to the item as read.
fn plan_admission(read: &GuardItem, window_start: i64, limit: u32, members: &[String]) -> GuardPlan {
    let mut plan = GuardPlan::default();
    let empty = BTreeSet::new();
    let admitted = match read.status.window_start_ms {
        // An invocation whose clock lags counts in the newer window: no way around the limit.
        Some(start) if start >= window_start => &read.admitted,
        _ if read.status.is_tripped() => &read.admitted,
        _ => {
            plan.rollover = Some(window_start);
            &empty
        }
    };
    let mut tripped = read.status.is_tripped();
    let mut new = BTreeSet::new();
    for member in members {
        let admit = if tripped {
            false
        } else if admitted.contains(member) || new.contains(member) {
            true
        } else if admitted.len() + new.len() < limit as usize {
            new.insert(member);
            plan.admit.push(member.clone());
            true
        } else {
            tripped = true;
            plan.trips_on = Some(member.clone());
            false
        };
        if !admit {
            plan.refused += 1;
        }
        plan.answers.push(admit);
    }
    plan
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }

    /// An employee record as stored: keys, and the work index's keys while it is watched.
    fn employee_item(&self, record: &EmployeeRecord) -> Result<Item, StoreError> {
        let mut item: Item = serde_dynamo::to_item(record)
            .map_err(|e| StoreError::Malformed { key: record.employee_id.clone(), detail: e.to_string() })?;
        item.extend(employee_key(&record.employee_id));
        if let Some(due) = record.watch_due_ms() {
            item.insert("work_shard".into(), s(work_shard(record.state, shard_of(&record.employee_id))));
            item.insert("work_due".into(), s(format!("{:013}", due.max(0))));
        }
        Ok(item)
    }

    fn decode_employee(item: Item) -> Result<EmployeeRecord, StoreError> {
        let key = text(&item, "pk").unwrap_or_default();
        serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed { key, detail: e.to_string() })
    }
}

/// An item as a record, or the item's key in the error.
fn decode<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let key = format!("{}/{}", text(&item, "pk").unwrap_or_default(), text(&item, "sk").unwrap_or_default());
    serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed { key, detail: e.to_string() })
}

impl DynamoStore {
    /// Every page of a query.
    async fn query_all(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out =
                query.clone().set_exclusive_start_key(start).send().await.map_err(|e| unavailable("Query", &e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// One employee's items whose sort key starts with `prefix` (consistent read).
    async fn employee_items(&self, employee_id: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(format!("EMP#{}", key_part(employee_id, EmployeeId::MAX))))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true);
        self.query_all(query).await
    }

    /// A conditional write to the guard that returns the item as it was when its condition fails.
    fn guard_request(&self) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(guard_key()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
    }

    /// `None` when the write went through; the item as it was when its condition failed otherwise
    /// (empty when there was none).
    async fn guard_write(&self, request: UpdateItemFluentBuilder) -> Result<Option<Item>, StoreError> {
        match request.send().await {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(Some(c.item().cloned().unwrap_or_default()))
                }
                _ => Err(unavailable("UpdateItem", &e)),
            },
        }
    }

    /// One item by its key, as a consistent read (`None`: there is none).
    async fn item(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", &e))?;
        Ok(out.item)
    }

    /// The guard item (a consistent read).
    async fn guard_item(&self) -> Result<GuardItem, StoreError> {
        self.item(guard_key()).await?.as_ref().map_or_else(|| Ok(GuardItem::default()), decode_guard)
    }

    /// The write that makes `plan` so, conditional on the guard being as `read` (its version).
    fn guard_plan_request(
        &self,
        read: &GuardItem,
        plan: &GuardPlan,
        now_ms: i64,
        window_ms: i64,
    ) -> UpdateItemFluentBuilder {
        let mut request = self.guard_request();
        if read.status.is_tripped() {
            // Tripped: only the held count changes; a reset since the read makes it decide again.
            return request
                .update_expression("SET last_held_ms = :now ADD held :refused")
                .condition_expression("attribute_exists(tripped_since_ms)")
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":refused", n(plan.refused));
        }
        let (mut set, mut remove, mut add) = (Vec::new(), Vec::new(), vec!["version :one"]);
        if let Some(start) = plan.rollover {
            set.extend(["window_start_ms = :window", "window_ms = :length"]);
            request = request
                .expression_attribute_values(":window", n(start))
                .expression_attribute_values(":length", n(window_ms));
            if plan.admit.is_empty() {
                remove.push("admitted");
            } else {
                set.push("admitted = :keys");
            }
        } else if !plan.admit.is_empty() {
            add.push("admitted :keys");
        }
        if !plan.admit.is_empty() {
            request = request.expression_attribute_values(":keys", AttributeValue::Ss(plan.admit.clone()));
        }
        if let Some(key) = &plan.trips_on {
            set.extend(["tripped_since_ms = :now", "tripped_by = :by", "last_held_ms = :now"]);
            add.push("held :refused");
            request = request
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":by", s(key))
                .expression_attribute_values(":refused", n(plan.refused));
        }
        let mut update = Vec::new();
        for (clause, parts) in [("SET", set), ("REMOVE", remove), ("ADD", add)] {
            if !parts.is_empty() {
                update.push(format!("{clause} {}", parts.join(", ")));
            }
        }
        request = request.update_expression(update.join(" ")).expression_attribute_values(":one", n(1));
        match read.version {
            Some(v) => request.condition_expression("version = :version").expression_attribute_values(":version", n(v)),
            None => request.condition_expression("attribute_not_exists(version)"),
        }
    }

    /// Every employee record (a full scan: for status tools, not for the functions).
    pub async fn scan_employees(&self) -> Result<Vec<EmployeeRecord>, StoreError> {
        Ok(self.audit_snapshot().await?.employees)
    }
}

// ---------------------------------------------------------------- drift audit

/// The sort key of a subject's open drift: beside the employee's record, or under the WorkSpace.
const DRIFT_SK: &str = "DRIFT";
const AUDIT_PK: &str = "AUDIT#drift";
const AUDIT_SK: &str = "AUDIT";

fn drift_key(subject: &Subject) -> Item {
    let pk = match subject {
        Subject::Employee(id) => format!("EMP#{}", key_part(id, EmployeeId::MAX)),
        Subject::Workspace(id) => format!("DRIFT#{}", key_part(id, 128)),
    };
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(DRIFT_SK))])
}

fn audit_key() -> Item {
    HashMap::from([("pk".to_owned(), s(AUDIT_PK)), ("sk".to_owned(), s(AUDIT_SK))])
}

impl DynamoStore {
    async fn put(&self, operation_key: String, mut item: Item, key: Item) -> Result<(), StoreError> {
        item.extend(key);
        if item_size(&item) > MAX_ITEM_BYTES {
            return Err(StoreError::Invalid {
                operation: "PutItem",
                message: format!("{operation_key} is over 400 KB"),
            });
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", &e))?;
        Ok(())
    }
}

fn to_item<T: serde::Serialize>(value: &T, key: &str) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Malformed { key: key.to_owned(), detail: e.to_string() })
}

/// An audit item as read, or `None` with a warning: the next audit rewrites it.
fn readable<T>(found: Result<T, StoreError>) -> Option<T> {
    found.map_err(|e| tracing::warn!(error = %e, "an audit item is unreadable; left out")).ok()
}

impl AuditStore for DynamoStore {
    async fn audit_snapshot(&self) -> Result<AuditSnapshot, StoreError> {
        let mut snapshot = AuditSnapshot::default();
        let mut start = None;
        loop {
            // A Scan is charged for the items it reads, not the ones the filter keeps: one pass
            // over the table gives the records, the open drift and the last state together.
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "(sk = :state AND begins_with(pk, :emp)) OR sk = :drift OR (pk = :audit AND sk = :audit_sk)",
                )
                .expression_attribute_values(":state", s("STATE"))
                .expression_attribute_values(":emp", s("EMP#"))
                .expression_attribute_values(":drift", s(DRIFT_SK))
                .expression_attribute_values(":audit", s(AUDIT_PK))
                .expression_attribute_values(":audit_sk", s(AUDIT_SK))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable("Scan", &e))?;
            for item in out.items.unwrap_or_default() {
                // The audit's own items are rewritten by the next audit: one it cannot read (an
                // older format) is left out with a warning, not a failed audit or `hrws status`.
                match text(&item, "sk").as_deref() {
                    Some(DRIFT_SK) => snapshot.drift.extend(readable(decode(item))),
                    Some(AUDIT_SK) => snapshot.state = readable(decode(item)),
                    _ => snapshot.employees.push(Self::decode_employee(item)?),
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(snapshot);
            }
        }
    }

    async fn save_drift(&self, drift: &Drift) -> Result<(), StoreError> {
        let key = drift_key(&drift.subject);
        let name = format!("{}/{DRIFT_SK}", text(&key, "pk").unwrap_or_default());
        self.put(name.clone(), to_item(drift, &name)?, key).await
    }

    async fn clear_drift(&self, subject: &Subject) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(drift_key(subject)))
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem", &e))?;
        Ok(())
    }

    async fn drift_of(&self, subject: &Subject) -> Result<Option<Drift>, StoreError> {
        self.item(drift_key(subject)).await?.map(decode).transpose()
    }

    async fn save_audit_state(&self, state: &AuditState) -> Result<(), StoreError> {
        let name = format!("{AUDIT_PK}/{AUDIT_SK}");
        self.put(name.clone(), to_item(state, &name)?, audit_key()).await
    }

    async fn audit_state(&self) -> Result<Option<AuditState>, StoreError> {
        self.item(audit_key()).await?.map(decode).transpose()
    }
}

impl StateStore for DynamoStore {
    async fn claim(&self, claim: &Claim) -> Result<ClaimOutcome, StoreError> {
        let mut item = event_key(&claim.event_id);
        item.insert("status".into(), s(IN_PROGRESS));
        item.insert("payload_hash".into(), s(&claim.payload_hash));
        item.insert("owner".into(), s(&claim.owner));
        item.insert("in_progress_until_ms".into(), n(claim.in_progress_until_ms));
        item.insert("expires_at".into(), n(claim.expires_at_s));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now_s OR (#status = :in_progress AND in_progress_until_ms < :now_ms)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now_s", n(claim.now_ms / 1000))
            .expression_attribute_values(":now_ms", n(claim.now_ms))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(ClaimOutcome::Claimed),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c)) => {
                    let old = c.item().cloned().unwrap_or_default();
                    let status = text(&old, "status");
                    if status.as_deref() == Some(IN_PROGRESS)
                        && text(&old, "owner").as_deref() == Some(claim.owner.as_str())
                    {
                        // Our own put, retried after its reply was lost.
                        return Ok(ClaimOutcome::Claimed);
                    }
                    if status.as_deref() == Some(COMPLETED) {
                        Ok(ClaimOutcome::Completed {
                            same_payload: text(&old, "payload_hash").as_deref() == Some(claim.payload_hash.as_str()),
                            outcome: text(&old, "outcome")
                                .and_then(|o| serde_json::from_value(serde_json::Value::String(o)).ok()),
                            reason: text(&old, "reason"),
                        })
                    } else {
                        Ok(ClaimOutcome::InProgress)
                    }
                }
                _ => Err(unavailable("PutItem", &e)),
            },
        }
    }

    async fn complete(
        &self,
        event_id: &str,
        owner: &str,
        outcome: EventOutcome,
        reason: &str,
        line: Option<&HistoryEntry>,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
        const SET_COMPLETED: &str =
            "SET #status = :completed, outcome = :outcome, reason = :reason REMOVE in_progress_until_ms";
        const HELD_BY_OWNER: &str = "#owner = :owner AND #status = :in_progress";
        let names =
            HashMap::from([("#status".to_owned(), "status".to_owned()), ("#owner".to_owned(), "owner".to_owned())]);
        let values = HashMap::from([
            (":completed".to_owned(), s(COMPLETED)),
            (":in_progress".to_owned(), s(IN_PROGRESS)),
            (":owner".to_owned(), s(owner)),
            (":outcome".to_owned(), s(outcome.as_str())),
            (":reason".to_owned(), s(reason)),
        ]);
        // The claim as it was when the condition failed: completed by this owner with this
        // outcome means our own write, retried after its reply was lost.
        let ours = |old: Option<&Item>| {
            old.is_some_and(|old| {
                text(old, "owner").as_deref() == Some(owner)
                    && text(old, "status").as_deref() == Some(COMPLETED)
                    && text(old, "outcome").as_deref() == Some(outcome.as_str())
            })
        };
        let settled = |was_ours: bool| if was_ours { Ok(()) } else { Err(StoreError::LostClaim(event_id.to_owned())) };
        let Some(line) = line else {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(event_key(event_id)))
                .update_expression(SET_COMPLETED)
                .condition_expression(HELD_BY_OWNER)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(c)) => settled(ours(c.item())),
                    _ => Err(unavailable("UpdateItem", &e)),
                },
            };
        };
        let malformed = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Malformed {
            key: format!("EVENT#{event_id}"),
            detail: e.to_string(),
        };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(event_key(event_id)))
            .update_expression(SET_COMPLETED)
            .condition_expression(HELD_BY_OWNER)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(malformed)?;
        let put =
            Put::builder().table_name(&self.table).set_item(Some(history_item(line)?)).build().map_err(malformed)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(update).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled))
                    if cancelled.cancellation_reasons().first().and_then(|r| r.code())
                        == Some("ConditionalCheckFailed") =>
                {
                    settled(ours(cancelled.cancellation_reasons().first().and_then(|r| r.item())))
                }
                _ => Err(unavailable("TransactWriteItems", &e)),
            },
        }
    }

    async fn release(&self, event_id: &str, owner: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(event_key(event_id)))
            .condition_expression("#owner = :owner AND #status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(c)) => {
                    // Nothing held (released already, perhaps by our retried call): done.
                    if c.item().is_none_or(|old| old.is_empty()) {
                        Ok(())
                    } else {
                        Err(StoreError::LostClaim(event_id.to_owned()))
                    }
                }
                _ => Err(unavailable("DeleteItem", &e)),
            },
        }
    }

    async fn employee(&self, employee_id: &str) -> Result<Option<EmployeeRecord>, StoreError> {
        self.item(employee_key(employee_id)).await?.map(Self::decode_employee).transpose()
    }

    async fn employees(&self, ids: &[String]) -> Result<Vec<EmployeeRecord>, StoreError> {
        let mut ids: Vec<&String> = ids.iter().collect();
        ids.sort();
        ids.dedup();
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let mut keys = KeysAndAttributes::builder().consistent_read(true);
            for id in chunk {
                keys = keys.keys(employee_key(id));
            }
            let mut pending = Some(HashMap::from([(
                self.table.clone(),
                keys.build().map_err(|e| StoreError::Malformed { key: "batch".into(), detail: e.to_string() })?,
            )]));
            let mut rounds = 0;
            while let Some(request) = pending.take().filter(|p| !p.is_empty()) {
                rounds += 1;
                if rounds > 1 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 * rounds)).await;
                }
                let out = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(request))
                    .send()
                    .await
                    .map_err(|e| unavailable("BatchGetItem", &e))?;
                for item in out.responses.unwrap_or_default().remove(&self.table).unwrap_or_default() {
                    records.push(Self::decode_employee(item)?);
                }
                pending = out.unprocessed_keys;
                if rounds > 10 {
                    return Err(StoreError::Unavailable {
                        operation: "BatchGetItem",
                        message: "keys left unprocessed".into(),
                    });
                }
            }
        }
        Ok(records)
    }

    async fn save_employee(&self, record: &EmployeeRecord, expected_version: Option<u64>) -> Result<(), StoreError> {
        let item = self.employee_item(record)?;
        let mut put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        put = match expected_version {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put.condition_expression("version = :v").expression_attribute_values(":v", n(v)),
        };
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Err(StoreError::Conflict(format!("EMP#{}", record.employee_id)))
            }
            Err(e) => Err(unavailable("PutItem", &e)),
        }
    }

    async fn save_joiner(
        &self,
        record: &EmployeeRecord,
        expected_version: Option<u64>,
        claim: &NameClaim,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem};
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Malformed {
            key: record.employee_id.clone(),
            detail: e.to_string(),
        };
        let record_put = Put::builder().table_name(&self.table).set_item(Some(self.employee_item(record)?));
        let record_put = match expected_version {
            None => record_put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => record_put.condition_expression("version = :v").expression_attribute_values(":v", n(v)),
        };
        let mut name_item = name_key(&claim.directory_id, &claim.user_name);
        name_item.insert("employee_id".into(), s(&claim.employee_id));
        name_item.insert("user_name".into(), s(&claim.user_name));
        name_item.insert("directory_id".into(), s(&claim.directory_id));
        name_item.insert("claimed_ms".into(), n(record.updated_ms));
        let holder = claim.take_over_from.as_ref().map_or(claim.employee_id.as_str(), |(h, _)| h.as_str());
        let name_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(name_item))
            .condition_expression("attribute_not_exists(pk) OR employee_id = :holder")
            .expression_attribute_values(":holder", s(holder));
        let mut items = vec![
            TransactWriteItem::builder().put(record_put.build().map_err(invalid)?).build(),
            TransactWriteItem::builder().put(name_put.build().map_err(invalid)?).build(),
        ];
        if let Some((holder, version)) = &claim.take_over_from {
            // The holder must still be the terminated record that was read.
            let check = ConditionCheck::builder().table_name(&self.table).set_key(Some(employee_key(holder)));
            let check = match version {
                None => check.condition_expression("attribute_not_exists(pk)"),
                Some(v) => check.condition_expression("version = :v").expression_attribute_values(":v", n(*v)),
            };
            items.push(TransactWriteItem::builder().condition_check(check.build().map_err(invalid)?).build());
        }
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let Err(e) = result else { return Ok(()) };
        let Some(
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                cancelled,
            ),
        ) = e.as_service_error()
        else {
            return Err(unavailable("TransactWriteItems", &e));
        };
        let failed =
            |i: usize| cancelled.cancellation_reasons().get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
        if failed(0) {
            return Err(StoreError::Conflict(format!("EMP#{}", record.employee_id)));
        }
        if failed(2) {
            // The terminated holder's record changed (a rehire?): decide again on fresh reads.
            return Err(StoreError::Conflict(format!("holder of NAME#{}", claim.user_name)));
        }
        // The claim (or the holder's record) changed: say who holds the name now.
        match self.name_holder(&claim.directory_id, &claim.user_name).await? {
            Some(holder) if holder != claim.employee_id => Err(StoreError::NameHeld { holder }),
            _ => Err(StoreError::Conflict(format!("NAME#{}", claim.user_name))),
        }
    }

    async fn name_holder(&self, directory_id: &str, user_name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.item(name_key(directory_id, user_name)).await?.as_ref().and_then(|i| text(i, "employee_id")))
    }

    async fn record_history(&self, entry: &HistoryEntry) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(history_item(entry)?))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", &e))?;
        Ok(())
    }

    async fn history(&self, employee_id: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.employee_items(employee_id, "EVENT#").await?.into_iter().map(decode).collect()
    }

    async fn watched(&self, state: EmployeeState, due_by_ms: i64) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        for shard in 0..WORK_SHARDS {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(WORK_INDEX)
                .key_condition_expression("work_shard = :shard AND work_due <= :due")
                .expression_attribute_values(":shard", s(work_shard(state, shard)))
                .expression_attribute_values(":due", s(format!("{:013}", due_by_ms.max(0))))
                .projection_expression("employee_id");
            ids.extend(self.query_all(query).await?.iter().filter_map(|i| text(i, "employee_id")));
        }
        Ok(ids)
    }

    async fn schedule(&self, event: &ScheduledEvent) -> Result<(), StoreError> {
        let mut item: Item = serde_dynamo::to_item(event)
            .map_err(|e| StoreError::Malformed { key: event.event_id.clone(), detail: e.to_string() })?;
        item.extend(scheduled_key(&event.employee_id, &event.event_id));
        item.insert("work_shard".into(), s(format!("{SCHEDULED}#{}", shard_of(&event.employee_id))));
        item.insert("work_due".into(), s(format!("{:013}", event.effective_ms)));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", &e))?;
        Ok(())
    }

    async fn due(&self, now_ms: i64, from: &DueCursor, limit: usize) -> Result<DuePage, StoreError> {
        let shard = from.turn;
        // The shard's own last key, never a fresh query from the top: the index is eventually
        // consistent, so events just released could be listed again by a query that starts over.
        let start =
            from.after.get(&shard).map(|key| key.iter().map(|(k, v)| (k.clone(), s(v.clone()))).collect::<Item>());
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(WORK_INDEX)
            .key_condition_expression("work_shard = :shard AND work_due <= :now")
            .expression_attribute_values(":shard", s(format!("{SCHEDULED}#{shard}")))
            .expression_attribute_values(":now", s(format!("{now_ms:013}")))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| unavailable("Query", &e))?;
        let events = out.items.unwrap_or_default().into_iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let stands = out.last_evaluated_key.map(|key| {
            key.into_iter().filter_map(|(k, v)| v.as_s().ok().cloned().map(|v| (k, v))).collect::<BTreeMap<_, _>>()
        });
        Ok(DuePage { events, next: from.clone().advance(shard, stands, WORK_SHARDS) })
    }

    async fn unschedule(&self, employee_id: &str, event_id: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(scheduled_key(employee_id, event_id)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem", &e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn scheduled_for(&self, employee_id: &str) -> Result<Vec<ScheduledEvent>, StoreError> {
        self.employee_items(employee_id, "SCHEDULED#").await?.into_iter().map(decode).collect()
    }

    async fn admit_terminations(
        &self,
        now_ms: i64,
        window_ms: i64,
        limit: u32,
        keys: &[String],
    ) -> Result<Vec<bool>, StoreError> {
        check_guard_arguments(window_ms, limit)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let members: Vec<String> = keys.iter().map(|k| guard_member(k)).collect();
        let distinct: BTreeSet<&String> = members.iter().collect();
        let window_start = guard_window_start(now_ms, window_ms);
        let mut read = match (limit as usize).checked_sub(distinct.len()) {
            Some(room) => {
                // The fast path: the keys fit even if all are new, in the same window, not tripped.
                let fast = self
                    .guard_request()
                    .update_expression("ADD admitted :keys, version :one")
                    .condition_expression(
                        "window_start_ms = :window AND attribute_not_exists(tripped_since_ms) \
                         AND (attribute_not_exists(admitted) OR size(admitted) <= :room)",
                    )
                    .expression_attribute_values(":keys", AttributeValue::Ss(distinct.into_iter().cloned().collect()))
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":window", n(window_start))
                    .expression_attribute_values(":room", n(room));
                match self.guard_write(fast).await? {
                    None => return Ok(vec![true; members.len()]),
                    Some(old) => decode_guard(&old)?,
                }
            }
            // More distinct keys than the window may hold: some are refused whatever it holds.
            None => self.guard_item().await?,
        };
        for _ in 0..GUARD_ATTEMPTS {
            let plan = plan_admission(&read, window_start, limit, &members);
            if plan.changes_nothing() {
                return Ok(plan.answers);
            }
            match self.guard_write(self.guard_plan_request(&read, &plan, now_ms, window_ms)).await? {
                None => return Ok(plan.answers),
                Some(old) => read = decode_guard(&old)?,
            }
        }
        Err(StoreError::Conflict(GUARD_PK.to_owned()))
    }

    async fn guard_status(&self) -> Result<GuardStatus, StoreError> {
        Ok(self.guard_item().await?.status)
    }

    async fn reset_guard(&self, now_ms: i64) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(guard_key()))
            .update_expression(
                "REMOVE tripped_since_ms, tripped_by, last_held_ms, admitted \
                 SET held = :zero, last_reset_ms = :now ADD version :one",
            )
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| unavailable("UpdateItem", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod stream_tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failed test
    use super::*;
    use serde_json::{Value, json};

    /// An item as the stream's JSON shows it.
    fn image(item: Item) -> Value {
        let item: serde_dynamo::Item = item.into();
        serde_json::to_value(item).unwrap()
    }

    fn record(event_name: &str, keys: Value, old: Option<Value>, new: Option<Value>) -> Value {
        let mut dynamodb =
            json!({ "Keys": keys, "SequenceNumber": "111", "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES" });
        if let Some(old) = old {
            dynamodb["OldImage"] = old;
        }
        if let Some(new) = new {
            dynamodb["NewImage"] = new;
        }
        json!({ "eventID": "1", "eventName": event_name, "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": dynamodb })
    }

    fn change(record: Value) -> Change {
        let event: aws_lambda_events::event::dynamodb::Event =
            serde_json::from_value(json!({ "Records": [record] })).unwrap();
        stream_change(&event.records[0]).change
    }

    #[test]
    fn stream_records_are_read_as_employee_changes_and_nothing_else_is() {
        let store = DynamoStore::new(
            aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::Config::builder()
                    .behavior_version_latest()
                    .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                    .build(),
            ),
            "t".into(),
        );
        let mut before = EmployeeRecord::new("E1", 0);
        before.state = EmployeeState::Pending;
        before.version = 2;
        let mut after = before.clone();
        after.state = EmployeeState::Active;
        after.version = 3;
        let keys = image(employee_key("E1"));
        let (old, new) = (image(store.employee_item(&before).unwrap()), image(store.employee_item(&after).unwrap()));
        // An employee record written: before and after, as the table held them.
        match change(record("MODIFY", keys.clone(), Some(old.clone()), Some(new.clone()))) {
            Change::Employee { before: Some(b), after: a } => {
                assert_eq!((*b, *a), (before, after));
            }
            other => panic!("{other:?}"),
        }
        // The first write has no old image.
        assert!(matches!(
            change(record("INSERT", keys.clone(), None, Some(new.clone()))),
            Change::Employee { before: None, .. }
        ));
        // The guard's item shares the sort key, not the partition key; a history line neither.
        let guard = image(guard_key());
        assert_eq!(change(record("MODIFY", guard.clone(), Some(guard.clone()), Some(guard))), Change::Other);
        assert_eq!(change(record("REMOVE", keys.clone(), Some(old.clone()), None)), Change::Other);
        // A record that cannot be read, or a write without its images, is said to be unreadable.
        let broken = json!({ "pk": { "S": "EMP#E1" }, "sk": { "S": "STATE" }, "state": { "S": "dancing" } });
        assert!(matches!(
            change(record("MODIFY", keys.clone(), Some(old.clone()), Some(broken))),
            Change::Unreadable { .. }
        ));
        assert!(matches!(change(record("MODIFY", keys.clone(), None, Some(new))), Change::Unreadable { .. }));
        assert!(matches!(change(record("INSERT", keys, None, None)), Change::Unreadable { .. }));
    }
}
