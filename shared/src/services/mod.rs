//! What each function does, written against the ports so it runs without AWS in unit tests.

pub mod intake;
pub mod provisioner;
pub mod reconciler;
pub mod terminator;

/// One SQS record as the services need it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueRecord {
    pub message_id: String,
    pub body: String,
    /// How many times SQS has delivered it (1 on the first delivery).
    pub receive_count: u32,
    /// The FIFO message group (`MessageGroupId`); `None` from a standard queue.
    pub group_id: Option<String>,
}

/// The ids of the records to report in `batchItemFailures`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    pub failed_message_ids: Vec<String>,
}

/// A request about one employee, as the provisioner and terminator receive them.
pub(crate) trait EmployeeRequest: serde::de::DeserializeOwned {
    fn employee_id(&self) -> &str;
}

impl EmployeeRequest for crate::domain::messages::WorkspaceRequest {
    fn employee_id(&self) -> &str {
        &self.employee_id
    }
}

impl EmployeeRequest for crate::domain::messages::TerminationRequest {
    fn employee_id(&self) -> &str {
        &self.employee_id
    }
}

/// Parses a batch of requests (one per employee: a later duplicate adds nothing) and reads
/// their employees with one consistent batch read. A malformed message is failed so it reaches
/// the DLQ, where it is visible; if the read fails, every message is failed and `None` returned.
pub(crate) async fn requests_with_employees<'a, T: EmployeeRequest>(
    store: &impl crate::ports::StateStore,
    records: &'a [QueueRecord],
    what: &str,
    outcome: &mut BatchOutcome,
) -> Option<Vec<(&'a QueueRecord, T, Option<crate::domain::employee::EmployeeRecord>)>> {
    let mut requests: std::collections::BTreeMap<String, (&QueueRecord, T)> = std::collections::BTreeMap::new();
    for record in records {
        match serde_json::from_str::<T>(&record.body) {
            Ok(request) => {
                requests.entry(request.employee_id().to_owned()).or_insert((record, request));
            }
            Err(e) => {
                tracing::warn!(message_id = %record.message_id, error = %e, "malformed {what}");
                outcome.failed_message_ids.push(record.message_id.clone());
            }
        }
    }
    let ids: Vec<String> = requests.keys().cloned().collect();
    let mut employees: std::collections::HashMap<String, crate::domain::employee::EmployeeRecord> =
        match store.employees(&ids).await {
            Ok(list) => list.into_iter().map(|e| (e.employee_id.clone(), e)).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading employees failed; retrying the batch");
                outcome.failed_message_ids.extend(requests.values().map(|(r, _)| r.message_id.clone()));
                return None;
            }
        };
    Some(
        requests
            .into_values()
            .map(|(record, request)| {
                let employee = employees.remove(request.employee_id());
                (record, request, employee)
            })
            .collect(),
    )
}

/// The other employee holding a user name, if it is not `employee_id`'s. A WorkSpace found by
/// directory and user name is taken as this employee's (adopted, or terminated on their leave)
/// only when this returns `None`: the name is theirs, or (records older than name claims) no
/// one's.
pub(crate) async fn name_held_by_other(
    store: &impl crate::ports::StateStore,
    employee_id: &str,
    directory_id: &str,
    user_name: &str,
) -> Result<Option<String>, crate::ports::StoreError> {
    Ok(store.name_holder(directory_id, user_name).await?.filter(|holder| holder != employee_id))
}
