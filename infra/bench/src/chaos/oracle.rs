//! The chaos run's oracle. It reads only the outside world at the end: the table (every item, as
//! an operator's scan would), the simulator's WorkSpaces and directory users, the queues and
//! their DLQs, and the feed that was posted. It uses none of the pipeline's code to decide what
//! is right.

use super::World;
use super::feed::{Feed, Intent};
use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::chaos::Hits;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// An employee's record as the table holds it.
#[derive(Debug, Clone, Default)]
pub struct Record {
    pub state: String,
    pub workspace_id: Option<String>,
    pub failure: Option<String>,
}

/// A history line: the event it is about and what became of it.
#[derive(Debug, Clone)]
pub struct Line {
    pub employee: String,
    pub event_id: Option<String>,
    pub outcome: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Table {
    pub records: BTreeMap<String, Record>,
    pub lines: Vec<Line>,
    /// Future-dated events still held.
    pub held: usize,
}

fn text(item: &HashMap<String, AttributeValue>, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

impl Table {
    pub async fn read(world: &World) -> anyhow::Result<Table> {
        let mut table = Table::default();
        let mut start = None;
        loop {
            let page = world
                .dynamodb
                .scan()
                .table_name(&world.stack.resources.table_name)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items() {
                let (pk, sk) = (text(item, "pk").unwrap_or_default(), text(item, "sk").unwrap_or_default());
                let employee = pk.strip_prefix("EMP#").unwrap_or(&pk).to_owned();
                if sk == "STATE" {
                    let failure = text(item, "failure_code")
                        .map(|code| format!("{code}: {}", text(item, "failure_message").unwrap_or_default()));
                    let record = Record {
                        state: text(item, "state").unwrap_or_default(),
                        workspace_id: text(item, "workspace_id"),
                        failure,
                    };
                    table.records.insert(text(item, "employee_id").unwrap_or(employee), record);
                } else if sk.starts_with("EVENT#") {
                    table.lines.push(Line {
                        employee,
                        event_id: text(item, "event_id"),
                        outcome: text(item, "outcome").unwrap_or_default(),
                        reason: text(item, "reason").unwrap_or_default(),
                    });
                } else if sk.starts_with("SCHEDULED#") {
                    table.held += 1;
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(table);
            }
        }
    }
}

/// What the oracle found. Every list is of employees (or WorkSpaces, or events) with the reason.
#[derive(Debug, Default, Serialize)]
pub struct Findings {
    /// Invariants: each must be empty.
    pub more_than_one_live_workspace: Vec<String>,
    pub user_name_on_two_live_workspaces: Vec<String>,
    pub leavers_who_can_log_in: Vec<String>,
    pub workspaces_nobody_wants: Vec<String>,
    pub events_unaccounted: Vec<String>,
    pub namesakes_given_something: Vec<String>,
    pub joiners_without_a_workspace: Vec<String>,
    /// Employees whose final state no lifecycle event the subscriber received announced, and
    /// event ids that arrived with two different contents.
    pub changes_not_announced: Vec<String>,
    /// Reported, not violations: what the pipeline left for an operator, with its reason.
    pub failed: BTreeMap<String, String>,
    pub held_by_guard: Vec<String>,
    pub workspaces_kept_for_the_operator: Vec<String>,
    pub dlq: BTreeMap<String, Vec<String>>,
    pub outcomes: BTreeMap<String, usize>,
    pub employees_by_state: BTreeMap<String, usize>,
    /// WorkSpaces calls by operation, against the floor of ceil(employees / 25) per phase.
    pub workspaces_calls: BTreeMap<String, u64>,
    pub create_floor: usize,
}

impl Findings {
    pub fn violations(&self) -> usize {
        self.more_than_one_live_workspace.len()
            + self.user_name_on_two_live_workspaces.len()
            + self.leavers_who_can_log_in.len()
            + self.workspaces_nobody_wants.len()
            + self.events_unaccounted.len()
            + self.namesakes_given_something.len()
            + self.joiners_without_a_workspace.len()
            + self.changes_not_announced.len()
    }

    /// Each broken invariant with its first stories: what a failed run says last, where a
    /// truncated CI log still shows it.
    pub fn broken(&self) -> String {
        let mut out = String::new();
        for (name, list) in self.invariants() {
            if !list.is_empty() {
                out.push_str(&format!("\n  {name}: {}", list.len()));
                for story in list.iter().take(3) {
                    let end = story.char_indices().nth(2_000).map_or(story.len(), |(at, _)| at);
                    out.push_str(&format!("\n    {}", &story[..end]));
                }
            }
        }
        out
    }

    /// The invariants by the name a reader sees, each with what broke it.
    pub fn invariants(&self) -> [(&'static str, &Vec<String>); 8] {
        [
            ("employees with more than one live WorkSpace", &self.more_than_one_live_workspace),
            ("user names on two live WorkSpaces", &self.user_name_on_two_live_workspaces),
            ("leavers with a WorkSpace that allows log-in", &self.leavers_who_can_log_in),
            ("WorkSpaces no employee wants", &self.workspaces_nobody_wants),
            ("events not accounted for", &self.events_unaccounted),
            ("namesakes given a user or a WorkSpace", &self.namesakes_given_something),
            ("joiners left without a WorkSpace, unexplained", &self.joiners_without_a_workspace),
            ("final states no lifecycle event announced", &self.changes_not_announced),
        ]
    }
}

/// Alive: not gone and not on its way out.
fn live(state: &str) -> bool {
    !matches!(state, "TERMINATING" | "TERMINATED")
}

/// Someone can log in to it: live, not in maintenance, not suspended, not failed.
fn allows_log_in(state: &str) -> bool {
    live(state) && !matches!(state, "ADMIN_MAINTENANCE" | "SUSPENDED" | "ERROR")
}

/// Reads the outside world and judges it.
pub async fn check(world: &World, feed: &Feed, hits: &Hits) -> anyhow::Result<Findings> {
    let table = Table::read(world).await?;
    let state = world.sim(reqwest::Method::GET, "state", Value::Null).await?;
    let mut dlq = BTreeMap::new();
    for queue in world.stack.resources.queues.values() {
        let Some(url) = &queue.dlq_url else { continue };
        let messages = world.sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await?;
        let bodies: Vec<String> = messages.messages().iter().filter_map(|m| m.body().map(str::to_owned)).collect();
        if !bodies.is_empty() {
            dlq.insert(queue.name.clone(), bodies);
        }
    }
    if let Some(failures) = world.stack.resources.queues.get("lifecycle-publisher-failures") {
        let bodies = receive_all(world, &failures.url).await?;
        if !bodies.is_empty() {
            dlq.insert(failures.name.clone(), bodies.iter().map(Value::to_string).collect());
        }
    }
    let calls = world.sim(reqwest::Method::GET, "calls", Value::Null).await?;
    let mut found = judge(&table, &state, &dlq, &calls, feed, hits);
    if let Some(subscriber) = world.stack.resources.queues.get("lifecycle-events") {
        let events = receive_all(world, &subscriber.url).await?;
        found.changes_not_announced = unannounced(&table, &events);
    }
    Ok(found)
}

/// Every message in a queue, as JSON: received until the queue stays empty for 5 s (the stream's
/// last changes are still being published when the pipeline comes to rest).
async fn receive_all(world: &World, url: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut quiet_since = std::time::Instant::now();
    while quiet_since.elapsed() < std::time::Duration::from_secs(5) {
        let out = world
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .send()
            .await?;
        if out.messages().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        }
        quiet_since = std::time::Instant::now();
        all.extend(out.messages().iter().filter_map(|m| m.body()).filter_map(|b| serde_json::from_str(b).ok()));
    }
    Ok(all)
}

/// The lifecycle events against the table: an employee at rest in a state a change announces
/// (active, failed, revoked; terminated after a WorkSpace was requested) must have an event
/// saying so (active: with the WorkSpace the record names), and an id always carries the same
/// event. Reads the events as a subscriber would, nothing of the pipeline's code.
pub fn unannounced(table: &Table, events: &[Value]) -> Vec<String> {
    let mut found = Vec::new();
    let mut by_id: BTreeMap<&str, &Value> = BTreeMap::new();
    let mut of: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    // The drift audit's findings are not changes of a record (and carry its state): left out.
    for e in events.iter().filter(|e| e["detail-type"] != "Drift Found") {
        let id = e["detail"]["id"].as_str().unwrap_or_default();
        match by_id.get(id) {
            Some(first) if first["detail"] != e["detail"] || first["detail-type"] != e["detail-type"] => {
                found.push(format!("event id {id} arrived as {first} and as {e}"));
            }
            Some(_) => {}
            None => {
                by_id.insert(id, e);
                of.entry(e["detail"]["employee_id"].as_str().unwrap_or_default()).or_default().push(e);
            }
        }
    }
    for (employee, record) in &table.records {
        let theirs = of.get(employee.as_str()).cloned().unwrap_or_default();
        let said = |state: &str| theirs.iter().any(|e| e["detail"]["state"] == state);
        let announced = match record.state.as_str() {
            "active" => theirs.iter().any(|e| {
                e["detail"]["state"] == "active"
                    && e["detail"]["workspace_id"].as_str() == record.workspace_id.as_deref()
            }),
            "failed" | "revoked" => said(&record.state),
            "terminated" => said("terminated") || !theirs.iter().any(|e| e["detail-type"] == "WorkSpace Requested"),
            _ => true,
        };
        if !announced {
            let told: Vec<String> = theirs
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        e["detail-type"].as_str().unwrap_or_default(),
                        e["detail"]["id"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            found.push(format!("{employee}: {} ({:?}), events received {told:?}", record.state, record.workspace_id));
        }
    }
    found
}

/// The verdict on what the world looks like at the end: the table as read, the simulator's
/// state and counters, the DLQs' messages (by queue), and the feed posted; `hits` (the faults
/// injected, per employee they hit) only tells the stories.
pub fn judge(
    table: &Table,
    state: &Value,
    dlq: &BTreeMap<String, Vec<String>>,
    calls: &Value,
    feed: &Feed,
    hits: &Hits,
) -> Findings {
    let mut found = Findings::default();
    // Live WorkSpaces by user name (lower case), with their id and state.
    let mut by_user: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for ws in state["workspaces"].as_array().into_iter().flatten() {
        let ws_state = ws["State"].as_str().unwrap_or_default().to_owned();
        if live(&ws_state) {
            let user = ws["UserName"].as_str().unwrap_or_default().to_lowercase();
            let directory = ws["DirectoryId"].as_str().unwrap_or_default();
            by_user
                .entry(format!("{directory}/{user}"))
                .or_default()
                .push((ws["WorkspaceId"].as_str().unwrap_or_default().to_owned(), ws_state));
        }
    }
    for (user, workspaces) in &by_user {
        if workspaces.len() > 1 {
            found.user_name_on_two_live_workspaces.push(format!("{user}: {workspaces:?}"));
        }
    }
    // A user name has one owner: of the employees whose joins name it, the one whose join the
    // pipeline applied first (the contract's rule). A namesake races its original (another FIFO
    // group, retries, a held join), so either may win; the other must be refused for the name
    // (`[name-held]`) and given nothing.
    let refused: BTreeSet<&str> = table
        .lines
        .iter()
        .filter(|l| l.outcome == "rejected" && l.reason.contains("[name-held]"))
        .map(|l| l.employee.as_str())
        .collect();
    let refused_for_the_name = |id: &str| refused.contains(id);
    let mut claimants: BTreeMap<String, Vec<&super::feed::Person>> = BTreeMap::new();
    for p in &feed.people {
        claimants.entry(p.username.to_lowercase()).or_default().push(p);
    }
    let intent_of = |p: &super::feed::Person| -> Intent {
        let others = &claimants[&p.username.to_lowercase()];
        if others.len() > 1 && refused_for_the_name(&p.employee_id) {
            Intent::Refused
        } else if p.intent == Intent::Refused
            && others.iter().all(|o| o.employee_id == p.employee_id || refused_for_the_name(&o.employee_id))
        {
            // The namesake's join came first: it owns the name, and its joiner wants a WorkSpace.
            Intent::Employed
        } else {
            p.intent
        }
    };
    let owner: BTreeMap<String, &super::feed::Person> = feed
        .people
        .iter()
        .filter(|p| intent_of(p) != Intent::Refused)
        .map(|p| (p.username.to_lowercase(), p))
        .collect();
    let mut live_of: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    for (key, workspaces) in &by_user {
        let user = key.split_once('/').map_or(key.as_str(), |(_, u)| u);
        match owner.get(user) {
            Some(person) => live_of.entry(person.employee_id.as_str()).or_default().extend(workspaces.iter().cloned()),
            None => found.workspaces_nobody_wants.push(format!("{key}: {workspaces:?} (no employee has the name)")),
        }
    }
    for person in &feed.people {
        let record = table.records.get(&person.employee_id);
        let rec_state = record.map_or("none", |r| r.state.as_str());
        *found.employees_by_state.entry(rec_state.to_owned()).or_default() += 1;
        if let Some(failure) = record.and_then(|r| r.failure.clone()).filter(|_| rec_state == "failed") {
            found.failed.insert(person.employee_id.clone(), failure);
        }
        if rec_state == "revoked" {
            found.held_by_guard.push(person.employee_id.clone());
        }
        let theirs = live_of.get(person.employee_id.as_str()).cloned().unwrap_or_default();
        // The employee's whole story, as `hrws employee` tells it: record, WorkSpaces, history.
        let story = || {
            let lines: Vec<String> = table
                .lines
                .iter()
                .filter(|l| l.employee == person.employee_id)
                .map(|l| {
                    format!(
                        "{} {}: {}",
                        l.event_id.as_deref().unwrap_or("-"),
                        l.outcome,
                        l.reason.chars().take(120).collect::<String>()
                    )
                })
                .collect();
            format!(
                "{} ({}): record {rec_state}, live {theirs:?}; history {lines:?}; faults that hit it {:?}",
                person.employee_id,
                person.username,
                hits.get(&person.employee_id).cloned().unwrap_or_default()
            )
        };
        if theirs.len() > 1 {
            found.more_than_one_live_workspace.push(story());
        }
        let failed = rec_state == "failed";
        match intent_of(person) {
            Intent::Refused => {
                // An original that lost its name may still have a record from its later events
                // (a leave): terminated, with nothing.
                let nothing = matches!(rec_state, "failed" | "none")
                    || (person.intent != Intent::Refused
                        && rec_state == "terminated"
                        && record.is_some_and(|r| r.workspace_id.is_none()));
                if !nothing || !theirs.is_empty() {
                    found.namesakes_given_something.push(story());
                }
            }
            Intent::Left => {
                if theirs.iter().any(|(_, s)| allows_log_in(s)) {
                    found.leavers_who_can_log_in.push(story());
                } else if !theirs.is_empty() {
                    // Kept, no one able to log in: it must be the operator's, with a reason.
                    if failed {
                        found.workspaces_kept_for_the_operator.push(story());
                    } else {
                        found.workspaces_nobody_wants.push(story());
                    }
                }
            }
            Intent::Employed => {
                let available = theirs.iter().filter(|(_, s)| s == "AVAILABLE").count();
                if available != 1 && !failed && !person.workspace_fails {
                    found.joiners_without_a_workspace.push(story());
                }
            }
            Intent::Either => {
                if rec_state == "terminated" && theirs.iter().any(|(_, s)| allows_log_in(s)) {
                    found.leavers_who_can_log_in.push(story());
                }
            }
        }
    }
    // Every valid event posted has a line that says what became of it (or is in a DLQ).
    let dlq_bodies: Vec<&String> = dlq.values().flatten().collect();
    for (queue, bodies) in dlq {
        // Why it is there: the faults that hit the employees it names.
        let told = |body: &String| {
            let whom: BTreeMap<String, BTreeMap<String, u64>> = local_stack::chaos::employee_ids_in(body.as_bytes())
                .into_iter()
                .map(|id| {
                    let faults = hits.get(&id).cloned().unwrap_or_default();
                    (id, faults)
                })
                .collect();
            format!("{}; faults that hit {whom:?}", body.chars().take(200).collect::<String>())
        };
        found.dlq.insert(queue.clone(), bodies.iter().map(told).collect());
    }
    let accounted: BTreeSet<&str> = table
        .lines
        .iter()
        .filter(|l| !l.reason.starts_with("duplicate:") && l.outcome != "scheduled")
        .filter_map(|l| l.event_id.as_deref())
        .collect();
    for line in &table.lines {
        *found.outcomes.entry(line.outcome.clone()).or_default() += 1;
    }
    let applied =
        |event_id: &str| table.lines.iter().any(|l| l.event_id.as_deref() == Some(event_id) && l.outcome == "applied");
    // A held event withdrawn by its cancel ends with the cancel's line, not one of its own.
    let held: BTreeSet<&str> =
        table.lines.iter().filter(|l| l.outcome == "scheduled").filter_map(|l| l.event_id.as_deref()).collect();
    let withdrawn: BTreeSet<&str> = feed
        .postings
        .iter()
        .filter(|p| p.event_id.as_deref().is_some_and(&applied))
        .filter_map(|p| p.cancels.as_deref())
        .filter(|target| held.contains(target))
        .collect();
    for posting in feed.postings.iter().filter(|p| p.valid) {
        let Some(event_id) = posting.event_id.as_deref() else { continue };
        if !accounted.contains(event_id)
            && !withdrawn.contains(event_id)
            && !dlq_bodies.iter().any(|b| b.contains(event_id))
        {
            let lines: Vec<String> = table
                .lines
                .iter()
                .filter(|l| posting.employee_id.as_deref() == Some(l.employee.as_str()))
                .map(|l| format!("{:?} {} {}", l.event_id, l.outcome, l.reason))
                .collect();
            found.events_unaccounted.push(format!("{event_id}: lines of the employee {lines:?}"));
        }
    }
    let invalid = feed.postings.iter().filter(|p| !p.valid).count();
    let rejected = table.lines.iter().filter(|l| l.outcome == "rejected").count();
    if rejected < invalid {
        found.events_unaccounted.push(format!("{invalid} invalid events posted, {rejected} rejected lines"));
    }
    for (op, stats) in calls.as_object().into_iter().flatten() {
        if op.starts_with("WorkSpaces.") {
            found.workspaces_calls.insert(op.clone(), stats["calls"].as_u64().unwrap_or(0));
        }
    }
    found.create_floor = feed.people.len().div_ceil(25);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::feed::{Person, Posting};
    use serde_json::json;

    fn person(id: &str, intent: Intent) -> Person {
        Person {
            employee_id: id.into(),
            username: format!("user-{id}"),
            intent,
            workspace_fails: false,
            suspend_before_leave: false,
        }
    }

    fn record(state: &str) -> Record {
        Record { state: state.into(), workspace_id: None, failure: None }
    }

    fn ws(id: &str, user: &str, state: &str) -> Value {
        json!({ "WorkspaceId": id, "DirectoryId": "d-1", "UserName": user, "State": state })
    }

    fn applied(employee: &str, event: &str) -> Line {
        Line {
            employee: employee.into(),
            event_id: Some(event.into()),
            outcome: "applied".into(),
            reason: String::new(),
        }
    }

    fn posting(employee: &str, event: &str) -> Posting {
        Posting {
            wave: 1,
            body: String::new(),
            effective_in_ms: None,
            cancels: None,
            event_id: Some(event.into()),
            employee_id: Some(employee.into()),
            valid: true,
        }
    }

    #[test]
    fn a_world_where_every_invariant_holds_is_judged_clean() {
        let feed = Feed {
            people: vec![person("A", Intent::Employed), person("B", Intent::Left)],
            postings: vec![posting("A", "a-join"), posting("B", "b-join"), posting("B", "b-leave")],
        };
        let table = Table {
            records: [("A".to_owned(), record("active")), ("B".to_owned(), record("terminated"))].into(),
            lines: vec![applied("A", "a-join"), applied("B", "b-join"), applied("B", "b-leave")],
            held: 0,
        };
        let state = json!({ "workspaces": [ws("ws-a", "user-A", "AVAILABLE"), ws("ws-b", "user-B", "TERMINATED")] });
        let found = judge(&table, &state, &BTreeMap::new(), &json!({}), &feed, &Hits::new());
        assert_eq!(found.violations(), 0, "{found:?}");
    }

    #[test]
    fn each_broken_invariant_is_found_and_named_with_the_employee() {
        // GIVEN a joiner with two live WorkSpaces, a leaver who can still log in, a WorkSpace of
        // no one, a namesake with a record, and an event with no line
        let feed = Feed {
            people: vec![
                person("A", Intent::Employed),
                person("B", Intent::Left),
                Person { username: "user-A".into(), ..person("N", Intent::Refused) },
            ],
            postings: vec![posting("A", "a-join"), posting("B", "b-leave")],
        };
        let table = Table {
            records: [
                ("A".to_owned(), record("active")),
                ("B".to_owned(), record("terminated")),
                ("N".to_owned(), record("active")),
            ]
            .into(),
            lines: vec![applied("A", "a-join")],
            held: 0,
        };
        let state = json!({ "workspaces": [
            ws("ws-a1", "user-A", "AVAILABLE"), ws("ws-a2", "USER-A", "PENDING"),
            ws("ws-b", "user-B", "STOPPED"), ws("ws-x", "stranger", "AVAILABLE")
        ] });
        let hits = Hits::from([("B".to_owned(), BTreeMap::from([("terminator killed mid-invocation".to_owned(), 2)]))]);
        let found = judge(&table, &state, &BTreeMap::new(), &json!({}), &feed, &hits);
        // THEN each is counted, with who it is about and the faults that hit them
        assert_eq!(found.more_than_one_live_workspace.len(), 1);
        assert!(found.more_than_one_live_workspace[0].starts_with("A (user-A)"));
        assert_eq!(found.user_name_on_two_live_workspaces.len(), 1, "names compare without case");
        assert_eq!(found.leavers_who_can_log_in.len(), 1);
        assert!(found.leavers_who_can_log_in[0].starts_with("B (user-B): record terminated"));
        assert!(
            found.leavers_who_can_log_in[0].ends_with(r#"faults that hit it {"terminator killed mid-invocation": 2}"#)
        );
        assert_eq!(found.workspaces_nobody_wants.len(), 1);
        assert_eq!(found.namesakes_given_something.len(), 1);
        assert_eq!(found.events_unaccounted.len(), 1);
        assert!(found.events_unaccounted[0].starts_with("b-leave"));
        assert_eq!(found.violations(), 6);
        // AND an event in a DLQ is accounted for there
        let dlq = BTreeMap::from([(
            "hr-events-dlq.fifo".to_owned(),
            vec![r#"{"event_id":"b-leave","employee":{"employee_id":"B"}}"#.to_owned()],
        )]);
        let found = judge(&table, &state, &dlq, &json!({}), &feed, &hits);
        assert!(found.events_unaccounted.is_empty());
        // with why it may be there
        assert!(
            found.dlq["hr-events-dlq.fifo"][0]
                .contains(r#"faults that hit {"B": {"terminator killed mid-invocation": 2}}"#)
        );
    }

    #[test]
    fn a_held_event_is_accounted_for_by_its_own_final_line_or_by_the_cancel_that_withdrew_it() {
        let line = |event: &str, outcome: &str| Line {
            employee: "A".into(),
            event_id: Some(event.into()),
            outcome: outcome.into(),
            reason: String::new(),
        };
        let cancel = Posting { cancels: Some("a-leave".into()), ..posting("A", "a-cancel") };
        let feed = Feed {
            people: vec![person("A", Intent::Either)],
            postings: vec![posting("A", "a-join"), posting("A", "a-leave"), cancel],
        };
        let mut table = Table {
            records: [("A".to_owned(), record("active"))].into(),
            lines: vec![line("a-join", "applied"), line("a-leave", "scheduled"), line("a-cancel", "applied")],
            held: 0,
        };
        let state = json!({ "workspaces": [ws("ws-a", "user-A", "AVAILABLE")] });
        assert!(judge(&table, &state, &BTreeMap::new(), &json!({}), &feed, &Hits::new()).events_unaccounted.is_empty());
        // A hold with nothing after it is an event lost.
        table.lines.pop();
        let found = judge(&table, &state, &BTreeMap::new(), &json!({}), &feed, &Hits::new());
        assert_eq!(found.events_unaccounted.len(), 2, "the leave and its cancel: {:?}", found.events_unaccounted);
    }

    #[test]
    fn a_namesake_whose_join_came_first_owns_the_name_and_the_original_is_refused() {
        // GIVEN an original whose join was held (or retried) while a namesake's came first
        let rejected = Line {
            employee: "A".into(),
            event_id: Some("a-join".into()),
            outcome: "rejected".into(),
            reason: "employee.username \"user-A\" is held by employee N [name-held]".into(),
        };
        let feed = Feed {
            people: vec![
                person("A", Intent::Left),
                Person { username: "user-A".into(), ..person("N", Intent::Refused) },
            ],
            postings: vec![posting("A", "a-join"), posting("N", "n-join")],
        };
        let table = Table {
            records: [("A".to_owned(), record("terminated")), ("N".to_owned(), record("active"))].into(),
            lines: vec![rejected, applied("N", "n-join")],
            held: 0,
        };
        let state = json!({ "workspaces": [ws("ws-n", "user-A", "AVAILABLE")] });
        // THEN the namesake's WorkSpace is its own (not the leaver's), and nothing is broken
        let found = judge(&table, &state, &BTreeMap::new(), &json!({}), &feed, &Hits::new());
        assert_eq!(found.violations(), 0, "{found:?}");
        // AND both given something is still found: the original applied too
        let mut both = table;
        both.lines.retain(|l| l.outcome != "rejected");
        both.lines.push(applied("A", "a-join"));
        let found = judge(&both, &state, &BTreeMap::new(), &json!({}), &feed, &Hits::new());
        assert_eq!(found.namesakes_given_something.len(), 1, "{found:?}");
    }

    #[test]
    fn a_final_state_no_event_announced_and_an_id_with_two_contents_are_found() {
        let event = |employee: &str, kind: &str, state: &str, ws: Option<&str>, version: u64| {
            json!({ "detail-type": kind, "detail": {
                "id": format!("{employee}/{version}/{kind}"), "employee_id": employee, "state": state,
                "workspace_id": ws, "version": version } })
        };
        let mut active = record("active");
        active.workspace_id = Some("ws-a".into());
        let table = Table {
            records: [
                ("A".to_owned(), active.clone()),
                ("B".to_owned(), record("terminated")),
                ("C".to_owned(), record("terminated")),
                ("D".to_owned(), active),
            ]
            .into(),
            lines: vec![],
            held: 0,
        };
        let events = vec![
            event("A", "WorkSpace Requested", "requested", None, 1),
            event("A", "WorkSpace Available", "active", Some("ws-a"), 3),
            event("A", "WorkSpace Available", "active", Some("ws-a"), 3),
            event("B", "WorkSpace Requested", "requested", None, 1),
            // C never asked for a WorkSpace (its join refused): nothing to announce at its end.
            event("D", "WorkSpace Available", "active", Some("ws-old"), 3),
        ];
        // A is announced (twice, the same event); B's termination and D's WorkSpace are not
        let found = unannounced(&table, &events);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("B: terminated") && found[1].starts_with("D: active"), "{found:?}");
        // AND an id that arrives with other content is found
        let mut twice = events[..2].to_vec();
        twice.push(event("A", "WorkSpace Available", "active", Some("ws-other"), 3));
        let found = unannounced(&Table { records: BTreeMap::new(), lines: vec![], held: 0 }, &twice);
        assert_eq!(found.len(), 1, "{found:?}");
    }
}
