//! Faults the runner itself can inject, for the chaos run (`make chaos`): messages delivered more
//! than once, and function processes killed in the middle of an invocation, so that every "after
//! the call, before the write" window is hit. Seeded: a seed repeats a run's choices (as far as
//! the timing of the processes lets it).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
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

/// What the runner injected, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChaosCounts {
    pub extra_deliveries: u64,
    pub kills_planned: u64,
    /// Kills that hit a process still handling its invocation.
    pub kills: u64,
}

#[derive(Debug)]
pub struct Chaos {
    options: ChaosOptions,
    rng: Mutex<StdRng>,
    extra_deliveries: AtomicU64,
    kills_planned: AtomicU64,
    kills: AtomicU64,
}

impl Chaos {
    pub fn new(options: ChaosOptions) -> Chaos {
        Chaos {
            rng: Mutex::new(StdRng::seed_from_u64(options.seed)),
            options,
            extra_deliveries: AtomicU64::new(0),
            kills_planned: AtomicU64::new(0),
            kills: AtomicU64::new(0),
        }
    }

    fn rng(&self) -> std::sync::MutexGuard<'_, StdRng> {
        self.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many extra times to deliver the next batch.
    pub fn extra_deliveries(&self) -> u8 {
        let extra = self.rng().random_range(0..=self.options.max_extra_deliveries);
        self.extra_deliveries.fetch_add(u64::from(extra), Relaxed);
        extra
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

    pub fn killed(&self) {
        self.kills.fetch_add(1, Relaxed);
    }

    pub fn counts(&self) -> ChaosCounts {
        ChaosCounts {
            extra_deliveries: self.extra_deliveries.load(Relaxed),
            kills_planned: self.kills_planned.load(Relaxed),
            kills: self.kills.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_the_choices_and_the_rates_hold() {
        let options = ChaosOptions {
            seed: 7,
            max_extra_deliveries: 2,
            kill_probability: 0.1,
            kill_within: Duration::from_millis(500),
        };
        let (a, b) = (Chaos::new(options.clone()), Chaos::new(options));
        let draws = |c: &Chaos| (0..1000).map(|_| (c.extra_deliveries(), c.kill_after())).collect::<Vec<_>>();
        let (first, second) = (draws(&a), draws(&b));
        assert_eq!(first, second, "the same seed, the same faults");
        let kills = first.iter().filter(|(_, k)| k.is_some()).count();
        assert!((60..140).contains(&kills), "about 10 % killed: {kills}");
        assert!(first.iter().all(|(extra, kill)| *extra <= 2 && kill.is_none_or(|d| d < Duration::from_millis(500))));
        assert_eq!(a.counts().extra_deliveries, first.iter().map(|(e, _)| u64::from(*e)).sum::<u64>());
    }
}
