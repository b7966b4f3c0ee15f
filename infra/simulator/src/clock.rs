//! Simulated time: real time multiplied by an acceleration factor, so lifecycles and rate limits
//! can run faster than life while keeping their proportions.

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct SimClock {
    origin: Instant,
    /// Simulated milliseconds at `origin`.
    base_ms: f64,
    factor: f64,
}

impl SimClock {
    pub fn new(factor: f64) -> Self {
        Self { origin: Instant::now(), base_ms: 0.0, factor }
    }

    /// Milliseconds of simulated time since the simulator started.
    pub fn now_ms(&self) -> f64 {
        self.base_ms + self.origin.elapsed().as_secs_f64() * 1000.0 * self.factor
    }

    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// Changes the factor from now on; time already elapsed keeps its value.
    pub fn set_factor(&mut self, factor: f64) {
        self.base_ms = self.now_ms();
        self.origin = Instant::now();
        self.factor = factor;
    }

    /// Real wall-clock milliseconds that `sim_ms` of simulated time take.
    pub fn real_ms(&self, sim_ms: f64) -> f64 {
        sim_ms / self.factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_change_keeps_elapsed_time() {
        let mut clock = SimClock::new(1000.0);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let before = clock.now_ms();
        assert!(before >= 5000.0, "5 ms at x1000 is at least 5 simulated seconds, got {before}");
        clock.set_factor(1.0);
        let after = clock.now_ms();
        assert!(after >= before && after < before + 1000.0);
    }
}
