//! The chaos run's HR feed: N employees with a realistic mix of joins, movers, leaves with and
//! without a grace period, rehires, future-dated events and cancels, invalid events and
//! namesakes, in three waves. Seeded: a seed gives the same feed. Each employee's intent is kept
//! for the oracle, which never asks the pipeline what it meant to do.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// What the feed asks for an employee in the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Employed at the end: one WorkSpace (unless it is made to fail).
    Employed,
    /// Left at the end: no WorkSpace anyone can log in to, none running.
    Left,
    /// Its end depends on a race the feed makes on purpose (a cancel against its held event's
    /// due time): either end is right, as long as it is consistent.
    Either,
    /// A namesake: someone else holds the user name, so it must get nothing.
    Refused,
}

#[derive(Debug, Clone)]
pub struct Person {
    pub employee_id: String,
    pub username: String,
    pub intent: Intent,
    /// The feed makes its WorkSpace end in ERROR.
    pub workspace_fails: bool,
    /// Its WorkSpace is SUSPENDED just before its leave is posted.
    pub suspend_before_leave: bool,
}

/// One event to post, in the wave it belongs to.
#[derive(Debug, Clone)]
pub struct Posting {
    pub wave: usize,
    pub body: String,
    /// A future-dated event takes effect this long after it is posted (`effective_at` is set
    /// then: how long a wave takes to post and handle depends on the machine).
    pub effective_in_ms: Option<i64>,
    /// Its `event_id`, when it has one the contract accepts.
    pub event_id: Option<String>,
    /// The held event a cancel withdraws.
    pub cancels: Option<String>,
    pub employee_id: Option<String>,
    pub valid: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Feed {
    pub people: Vec<Person>,
    pub postings: Vec<Posting>,
}

/// Shares of the mix, out of 1.
const MOVERS: f64 = 0.25;
const LEAVERS: f64 = 0.35;
const GRACE_OF_LEAVERS: f64 = 0.4;
const REHIRES_OF_LEAVERS: f64 = 0.12;
const HELD_LEAVES: f64 = 0.05;
const HELD_JOINS: f64 = 0.03;
const NAMESAKES: f64 = 0.02;
const INVALID: f64 = 0.03;
const DEPARTMENTS: [&str; 3] = ["Sales", "Engineering", "Design"];

fn iso(ms: i64) -> String {
    shared::domain::time::Timestamp::from_millis(ms).to_string()
}

/// `now_ms`: when the run starts; events happened before it (held ones are dated when posted).
pub fn generate(n: usize, seed: u64, now_ms: i64, workspace_error_share: f64, suspended_share: f64) -> Feed {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut feed = Feed::default();
    let base = now_ms - 86_400_000;
    for i in 0..n {
        let employee_id = format!("C{i:05}");
        let username = format!("chaos{i:05}");
        let department = DEPARTMENTS[rng.random_range(0..DEPARTMENTS.len())];
        let at = |step: i64| iso(base + i as i64 * 10 + step * 3_600_000);
        let mut person = Person {
            employee_id: employee_id.clone(),
            username: username.clone(),
            intent: Intent::Employed,
            workspace_fails: rng.random::<f64>() < workspace_error_share,
            suspend_before_leave: false,
        };
        let mut post = |wave: usize, event: Value, effective_in_ms: Option<i64>| {
            feed.postings.push(Posting {
                wave,
                body: event.to_string(),
                effective_in_ms,
                cancels: event["cancels"].as_str().map(str::to_owned),
                event_id: event["event_id"].as_str().map(str::to_owned),
                employee_id: Some(employee_id.clone()),
                valid: true,
            });
        };
        let employee = json!({
            "employee_id": employee_id, "username": username, "given_name": "Chaos",
            "surname": format!("Person{i:05}"), "email": format!("{username}@example.com"), "department": department
        });
        let join = json!({ "schema_version": "1", "event_id": format!("{employee_id}-join"), "type": "join",
                           "occurred_at": at(0), "employee": employee });
        let held_join = (rng.random::<f64>() < HELD_JOINS).then(|| rng.random_range(20_000..60_000));
        post(1, join, held_join);
        if rng.random::<f64>() < MOVERS {
            let to = DEPARTMENTS.iter().find(|d| **d != department).copied().unwrap_or("Sales");
            post(
                2,
                json!({ "schema_version": "1", "event_id": format!("{employee_id}-move"), "type": "move",
                            "occurred_at": at(1), "employee": { "employee_id": employee_id, "department": to } }),
                None,
            );
        }
        if rng.random::<f64>() < LEAVERS {
            person.intent = Intent::Left;
            person.suspend_before_leave = rng.random::<f64>() < suspended_share;
            let leave_id = format!("{employee_id}-leave");
            let mut leave = json!({ "schema_version": "1", "event_id": leave_id, "type": "leave",
                                    "occurred_at": at(2), "employee": { "employee_id": employee_id } });
            if rng.random::<f64>() < GRACE_OF_LEAVERS {
                leave["grace_hours"] = json!(0.005); // 18 seconds
            }
            // Due well after the last wave is posted, so that most cancels come in time.
            let held = (rng.random::<f64>() < HELD_LEAVES / LEAVERS).then(|| rng.random_range(150_000..240_000));
            post(2, leave, held);
            let held = held.is_some();
            if held && rng.random::<bool>() {
                // Posted in the last wave, well before the leave is due: usually in time.
                person.intent = Intent::Either;
                post(
                    3,
                    json!({ "schema_version": "1", "event_id": format!("{employee_id}-cancel"), "type": "cancel",
                                "cancels": leave_id, "occurred_at": at(3), "employee": { "employee_id": employee_id } }),
                    None,
                );
            } else if rng.random::<f64>() < REHIRES_OF_LEAVERS {
                person.intent = Intent::Employed;
                person.suspend_before_leave = false;
                post(
                    3,
                    json!({ "schema_version": "1", "event_id": format!("{employee_id}-rehire"), "type": "join",
                                "occurred_at": at(4), "employee": employee }),
                    None,
                );
            }
        }
        feed.people.push(person);
    }
    // Namesakes: someone new with the user name of someone already there.
    for k in 0..((n as f64 * NAMESAKES).round() as usize) {
        let original = &feed.people[rng.random_range(0..n)];
        let (employee_id, username) = (format!("N{k:05}"), original.username.clone());
        let event = json!({ "schema_version": "1", "event_id": format!("{employee_id}-join"), "type": "join",
                            "occurred_at": iso(base + 7_200_000), "employee": {
                                "employee_id": employee_id, "username": username, "given_name": "Name",
                                "surname": "Sake", "email": format!("{employee_id}@example.com") } });
        feed.postings.push(Posting {
            wave: 1,
            body: event.to_string(),
            effective_in_ms: None,
            cancels: None,
            event_id: Some(format!("{employee_id}-join")),
            employee_id: Some(employee_id.clone()),
            valid: true,
        });
        feed.people.push(Person {
            employee_id,
            username,
            intent: Intent::Refused,
            workspace_fails: false,
            suspend_before_leave: false,
        });
    }
    // Invalid events, as a careless integrator sends them.
    for k in 0..((n as f64 * INVALID).round() as usize) {
        let body = match k % 5 {
            0 => json!({ "schema_version": "1", "event_id": format!("bad-{k}"), "type": "join",
                         "occurred_at": iso(base), "employee": { "username": "nobody" } })
            .to_string(),
            1 => json!({ "schema_version": "1", "event_id": format!("bad-{k}"), "type": "promote",
                         "occurred_at": iso(base), "employee": { "employee_id": format!("C{k:05}") } })
            .to_string(),
            2 => json!({ "schema_version": "1", "event_id": format!("bad-{k}"), "type": "leave",
                         "occurred_at": "yesterday", "employee": { "employee_id": format!("C{k:05}") } })
            .to_string(),
            3 => format!("{{\"schema_version\":\"1\",\"event_id\":\"bad-{k}\",\"type\":\"join\""),
            _ => json!({ "schema_version": "1", "event_id": format!("bad-{k}"), "type": "leave",
                         "occurred_at": iso(now_ms + 86_400_000), "employee": { "employee_id": format!("C{k:05}") } })
            .to_string(),
        };
        feed.postings.push(Posting {
            wave: 1 + k % 3,
            body,
            effective_in_ms: None,
            cancels: None,
            event_id: None,
            employee_id: None,
            valid: false,
        });
    }
    feed
}

/// The body to post now: a future-dated event gets its `effective_at`.
pub fn dated(posting: &Posting, now_ms: i64) -> String {
    match posting.effective_in_ms {
        None => posting.body.clone(),
        Some(after) => match serde_json::from_str::<Value>(&posting.body) {
            Ok(mut event) => {
                event["effective_at"] = json!(iso(now_ms + after));
                event.to_string()
            }
            Err(_) => posting.body.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_feed_with_every_kind_in_it() {
        let (a, b) = (generate(400, 3, 1_800_000_000_000, 0.02, 0.05), generate(400, 3, 1_800_000_000_000, 0.02, 0.05));
        let bodies = |f: &Feed| f.postings.iter().map(|p| p.body.clone()).collect::<Vec<_>>();
        assert_eq!(bodies(&a), bodies(&b));
        for kind in ["\"join\"", "\"leave\"", "\"move\"", "\"cancel\"", "grace_hours", "-rehire"] {
            assert!(a.postings.iter().any(|p| p.body.contains(kind)), "no {kind} in the feed");
        }
        assert!(a.postings.iter().any(|p| p.effective_in_ms.is_some()), "no future-dated event");
        assert!(a.people.iter().any(|p| p.intent == Intent::Refused));
        assert!(a.postings.iter().any(|p| !p.valid));
        let leavers = a.people.iter().filter(|p| p.intent == Intent::Left).count();
        assert!((80..180).contains(&leavers), "about a third leave: {leavers}");
    }
}
