//! Faults the runner itself can inject, for the chaos run (`make chaos`): messages delivered more
//! than once, and function processes killed in the middle of an invocation, so that every "after
//! the call, before the write" window is hit. Seeded: a seed repeats a run's choices (as far as
//! the timing of the processes lets it).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct ChaosOptions {
    pub seed: u64,
    /// Each batch is delivered up to this many extra times before the delivery that settles it
    /// (0–`max_extra_deliveries`, uniformly).
    pub max_extra_deliveries: u8,
    /// The share of invocations whose process is killed, at a uniform point within
    /// `kill_within` of the invocation's start (if it has not answered by then).
    pub kill_probability: f64,
    pub kill_within: Duration,
}

/// Duplicates of a batch start within this of the delivery that settles it.
pub const DUPLICATE_SPREAD: Duration = Duration::from_millis(1_500);

/// What the runner injected, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChaosCounts {
    pub extra_deliveries: u64,
    pub kills_planned: u64,
    /// Kills that hit a process still handling its invocation.
    pub kills: u64,
}

/// Faults by kind, per employee they hit.
pub type Hits = BTreeMap<String, BTreeMap<String, u64>>;

#[derive(Debug)]
pub struct Chaos {
    options: ChaosOptions,
    rng: Mutex<StdRng>,
    extra_deliveries: AtomicU64,
    kills_planned: AtomicU64,
    kills: AtomicU64,
    hits: Mutex<Hits>,
}

impl Chaos {
    pub fn new(options: ChaosOptions) -> Chaos {
        Chaos {
            rng: Mutex::new(StdRng::seed_from_u64(options.seed)),
            options,
            extra_deliveries: AtomicU64::new(0),
            kills_planned: AtomicU64::new(0),
            kills: AtomicU64::new(0),
            hits: Mutex::new(Hits::new()),
        }
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, StdRng> {
        self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The extra deliveries of the next batch (its message bodies: whom they hit), each as the
    /// delay after which it starts beside the delivery that settles the batch. Duplicates arrive
    /// as if another poller had received the same messages: at the same time, within
    /// [`DUPLICATE_SPREAD`], each with its own instance, so none holds the batch past its
    /// visibility timeout.
    pub fn extra_deliveries<'a>(&self, bodies: impl IntoIterator<Item = &'a str>) -> Vec<Duration> {
        let mut rng = self.rng();
        let extra = rng.random_range(0..=self.options.max_extra_deliveries);
        let starts = (0..extra).map(|_| DUPLICATE_SPREAD.mul_f64(rng.random::<f64>())).collect();
        drop(rng);
        self.extra_deliveries.fetch_add(u64::from(extra), Relaxed);
        if extra > 0 {
            for body in bodies {
                record_hit(&self.hits, employee_ids_in(body.as_bytes()), "extra deliveries", u64::from(extra));
            }
        }
        starts
    }

    /// Each batch can be in this many invocations at once (itself and its duplicates).
    pub fn deliveries_at_once(&self) -> usize {
        1 + usize::from(self.options.max_extra_deliveries)
    }

    /// When to kill the process of the next invocation, if it is to be killed.
    pub fn kill_after(&self) -> Option<Duration> {
        let mut rng = self.rng();
        if self.options.kill_probability <= 0.0 || rng.random::<f64>() >= self.options.kill_probability {
            return None;
        }
        self.kills_planned.fetch_add(1, Relaxed);
        Some(self.options.kill_within.mul_f64(rng.random::<f64>()))
    }

    /// A process was killed handling `payload` (an SQS event names the employees it hit).
    pub fn killed(&self, function: &str, payload: &[u8]) {
        self.kills.fetch_add(1, Relaxed);
        record_hit(&self.hits, employee_ids_in(payload), &format!("{function} killed mid-invocation"), 1);
    }

    /// The faults so far, per employee they hit.
    pub fn hits(&self) -> Hits {
        self.hits.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn counts(&self) -> ChaosCounts {
        ChaosCounts {
            extra_deliveries: self.extra_deliveries.load(Relaxed),
            kills_planned: self.kills_planned.load(Relaxed),
            kills: self.kills.load(Relaxed),
        }
    }
}

/// Counts `times` faults of `kind` against each of `employees`.
pub fn record_hit(hits: &Mutex<Hits>, employees: BTreeSet<String>, kind: &str, times: u64) {
    let mut hits = hits.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for employee in employees {
        *hits.entry(employee).or_default().entry(kind.to_owned()).or_default() += times;
    }
}

/// The employee ids a request or an event names, read as text (a DynamoDB key `EMP#<id>`, a
/// field `employee_id` however deeply its JSON is quoted): whom a fault on it hit.
pub fn employee_ids_in(bytes: &[u8]) -> BTreeSet<String> {
    let text = String::from_utf8_lossy(bytes);
    let id_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let take = |rest: &str| rest.chars().take_while(|c| id_char(*c)).collect::<String>();
    let mut ids = BTreeSet::new();
    for (at, _) in text.match_indices("EMP#") {
        ids.insert(take(&text[at + 4..]));
    }
    for (at, key) in text.match_indices("employee_id") {
        let rest = text[at + key.len()..].trim_start_matches(['\\', '"', ':', ' ']);
        ids.insert(take(rest));
    }
    ids.retain(|id| !id.is_empty());
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_employees_a_request_or_an_event_names() {
        let dynamodb = br#"{"Key":{"pk":{"S":"EMP#C00042"},"sk":{"S":"STATE"}}}"#;
        assert_eq!(employee_ids_in(dynamodb), BTreeSet::from(["C00042".to_owned()]));
        // An SQS event: each record's body is JSON inside a JSON string.
        let event = br#"{"Records":[{"body":"{\"employee\":{\"employee_id\":\"C00007\"}}"},{"body":"{\"employee_id\": \"C00100\"}"}]}"#;
        assert_eq!(employee_ids_in(event), BTreeSet::from(["C00007".to_owned(), "C00100".to_owned()]));
        assert!(employee_ids_in(br#"{"source":"aws.events"}"#).is_empty());
    }

    #[test]
    fn a_seed_repeats_the_choices_and_the_rates_hold() {
        let options = ChaosOptions {
            seed: 7,
            max_extra_deliveries: 2,
            kill_probability: 0.1,
            kill_within: Duration::from_millis(500),
        };
        let (a, b) = (Chaos::new(options.clone()), Chaos::new(options));
        let draws = |c: &Chaos| (0..1000).map(|_| (c.extra_deliveries(["{}"]), c.kill_after())).collect::<Vec<_>>();
        let (first, second) = (draws(&a), draws(&b));
        assert_eq!(first, second, "the same seed, the same faults");
        let kills = first.iter().filter(|(_, k)| k.is_some()).count();
        assert!((60..140).contains(&kills), "about 10 % killed: {kills}");
        assert!(
            first.iter().all(|(extra, kill)| extra.len() <= 2 && kill.is_none_or(|d| d < Duration::from_millis(500)))
        );
        assert!(first.iter().flat_map(|(extra, _)| extra).all(|start| *start < DUPLICATE_SPREAD));
        assert_eq!(a.counts().extra_deliveries, first.iter().map(|(e, _)| e.len() as u64).sum::<u64>());
    }
}
