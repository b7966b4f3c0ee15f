//! What stands between a request and its operation: call counters, injected faults and the
//! per-service rate limit.

use crate::config::{RateLimit, RateScope, Service};
use crate::error::ApiError;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Counters of one operation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpStats {
    /// Every request received, including those refused.
    pub calls: u64,
    /// Requests answered with ThrottlingException (rate limit or injected).
    pub throttled: u64,
    /// Requests answered with an injected HTTP error.
    pub injected_errors: u64,
    /// Number of items each accepted call carried (requests, ids), in call order.
    pub items: Vec<usize>,
    /// When each of those calls was answered (Unix time, ms): a run's timeline of the API.
    pub at_ms: Vec<u64>,
}

/// Faults injected through the admin API. `count` limits how many requests a fault hits
/// (absent: every request until cleared).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Answer ThrottlingException (to a share `probability` of the requests, if given).
    Throttle {
        operation: Option<String>,
        count: Option<u32>,
        #[serde(default)]
        probability: Option<f64>,
    },
    /// Answer an HTTP error (500 by default) with an InternalServerError body.
    HttpError {
        operation: Option<String>,
        status: Option<u16>,
        count: Option<u32>,
        #[serde(default)]
        probability: Option<f64>,
    },
    /// Delay the answer: before the operation runs, or with `after` once it has run (what a
    /// caller that times out sees as "the call happened but I never heard back").
    Latency {
        operation: Option<String>,
        ms: u64,
        count: Option<u32>,
        #[serde(default)]
        after: bool,
        #[serde(default)]
        probability: Option<f64>,
    },
    /// CreateWorkspaces puts these users in `FailedRequests` with this code.
    CreateFailure { usernames: BTreeSet<String>, code: String, message: Option<String>, count: Option<u32> },
    /// WorkSpaces created for these users end in ERROR instead of AVAILABLE.
    WorkspaceError { usernames: BTreeSet<String>, code: String, message: Option<String> },
}

impl Fault {
    fn matches_op(&self, op: &str) -> bool {
        match self {
            Fault::Throttle { operation, .. }
            | Fault::HttpError { operation, .. }
            | Fault::Latency { operation, .. } => operation.as_deref().is_none_or(|o| o == op),
            Fault::CreateFailure { .. } | Fault::WorkspaceError { .. } => false,
        }
    }

    fn probability(&self) -> Option<f64> {
        match self {
            Fault::Throttle { probability, .. }
            | Fault::HttpError { probability, .. }
            | Fault::Latency { probability, .. } => *probability,
            Fault::CreateFailure { .. } | Fault::WorkspaceError { .. } => None,
        }
    }

    pub fn normalise(mut self) -> Self {
        if let Fault::CreateFailure { usernames, .. } | Fault::WorkspaceError { usernames, .. } = &mut self {
            *usernames = usernames.iter().map(|u| u.to_lowercase()).collect();
        }
        self
    }
}

#[derive(Debug)]
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    last_ms: f64,
}

impl Bucket {
    fn new(limit: RateLimit, now_ms: f64) -> Self {
        Self { limit, tokens: limit.burst, last_ms: now_ms }
    }

    fn try_take(&mut self, now_ms: f64) -> bool {
        let elapsed_s = (now_ms - self.last_ms).max(0.0) / 1000.0;
        self.tokens = (self.tokens + elapsed_s * self.limit.rate).min(self.limit.burst);
        self.last_ms = now_ms;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What the gate decided for a request that may go on.
#[derive(Debug, Default)]
pub struct Admission {
    pub latency_ms: u64,
    pub delay_after_ms: u64,
}

#[derive(Debug, Default)]
pub struct Gate {
    limits: BTreeMap<Service, RateLimit>,
    scope: RateScope,
    /// Per service, and per operation when the scope says so (`""` for the whole service).
    buckets: BTreeMap<(Service, String), Bucket>,
    /// Draws for faults with a probability: xorshift64*, deterministic from the first request.
    draws: u64,
    pub faults: Vec<Fault>,
    pub stats: BTreeMap<String, OpStats>,
}

impl Gate {
    /// A new limit for `service`: its buckets start full.
    pub fn set_limit(&mut self, service: Service, limit: RateLimit) {
        self.limits.insert(service, limit);
        self.buckets.retain(|(s, _), _| *s != service);
    }

    /// Per service or per operation: every bucket starts again, full.
    pub fn set_scope(&mut self, scope: RateScope) {
        self.scope = scope;
        self.buckets.clear();
    }

    /// Counts the call and decides whether it may proceed.
    pub fn admit(&mut self, service: Service, op: &str, now_ms: f64) -> Result<Admission, ApiError> {
        let stats = self.stats.entry(op.to_owned()).or_default();
        stats.calls += 1;
        let mut admission = Admission::default();
        let mut refusal = None;
        let draws = &mut self.draws;
        for fault in self.faults.iter_mut().filter(|f| f.matches_op(op)) {
            if !fault.probability().is_none_or(|p| draw(draws) < p) {
                continue;
            }
            match fault {
                Fault::Latency { ms, count, after, .. } => {
                    if take(count) {
                        if *after {
                            admission.delay_after_ms += *ms;
                        } else {
                            admission.latency_ms += *ms;
                        }
                    }
                }
                Fault::Throttle { count, .. } => {
                    if refusal.is_none() && take(count) {
                        refusal = Some(throttling());
                    }
                }
                Fault::HttpError { status, count, .. } => {
                    if refusal.is_none() && take(count) {
                        let status = status
                            .and_then(|s| StatusCode::from_u16(s).ok())
                            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                        refusal = Some(ApiError::new(status, "InternalServerError", "injected fault"));
                    }
                }
                Fault::CreateFailure { .. } | Fault::WorkspaceError { .. } => {}
            }
        }
        self.faults.retain(|f| !exhausted(f));
        if let Some(err) = refusal {
            if err.code == "ThrottlingException" {
                stats.throttled += 1;
            } else {
                stats.injected_errors += 1;
            }
            return Err(err);
        }
        if let Some(limit) = self.limits.get(&service) {
            let key = match self.scope {
                RateScope::Service => String::new(),
                RateScope::Operation => op.to_owned(),
            };
            let bucket = self.buckets.entry((service, key)).or_insert_with(|| Bucket::new(*limit, now_ms));
            if !bucket.try_take(now_ms) {
                stats.throttled += 1;
                return Err(throttling());
            }
        }
        Ok(admission)
    }

    pub fn record_items(&mut self, op: &str, items: usize) {
        let stats = self.stats.entry(op.to_owned()).or_default();
        stats.items.push(items);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        stats.at_ms.push(u64::try_from(now.as_millis()).unwrap_or(u64::MAX));
    }

    /// The injected per-item CreateWorkspaces failure for this user, if any (consumes one use).
    pub fn create_failure(&mut self, user_lower: &str) -> Option<(String, String)> {
        let mut hit = None;
        for fault in &mut self.faults {
            if let Fault::CreateFailure { usernames, code, message, count } = fault
                && usernames.contains(user_lower)
                && take(count)
            {
                let message = message.clone().unwrap_or_else(|| format!("injected {code}"));
                hit = Some((code.clone(), message));
                break;
            }
        }
        self.faults.retain(|f| !exhausted(f));
        hit
    }

    /// The injected final ERROR state for WorkSpaces of this user, if any.
    pub fn workspace_error(&self, user_lower: &str) -> Option<(String, String)> {
        self.faults.iter().find_map(|f| match f {
            Fault::WorkspaceError { usernames, code, message } if usernames.contains(user_lower) => {
                Some((code.clone(), message.clone().unwrap_or_else(|| format!("injected {code}"))))
            }
            _ => None,
        })
    }
}

/// A uniform draw in [0, 1).
fn draw(state: &mut u64) -> f64 {
    if *state == 0 {
        *state = 0x9E37_79B9_7F4A_7C15;
    }
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

fn throttling() -> ApiError {
    ApiError::bad_request("ThrottlingException", "Rate exceeded")
}

/// Uses one of a fault's remaining hits; `None` means unlimited.
fn take(count: &mut Option<u32>) -> bool {
    match count {
        None => true,
        Some(0) => false,
        Some(n) => {
            *n -= 1;
            true
        }
    }
}

fn exhausted(fault: &Fault) -> bool {
    matches!(
        fault,
        Fault::Throttle { count: Some(0), .. }
            | Fault::HttpError { count: Some(0), .. }
            | Fault::Latency { count: Some(0), .. }
            | Fault::CreateFailure { count: Some(0), .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills_at_rate() {
        let mut gate = Gate::default();
        gate.set_limit(Service::WorkSpaces, RateLimit { rate: 2.0, burst: 5.0 });
        let admitted = (0..8).filter(|_| gate.admit(Service::WorkSpaces, "op", 0.0).is_ok()).count();
        assert_eq!(admitted, 5);
        // One simulated second later, two more tokens.
        let admitted = (0..8).filter(|_| gate.admit(Service::WorkSpaces, "op", 1000.0).is_ok()).count();
        assert_eq!(admitted, 2);
        assert_eq!(gate.stats["op"].calls, 16);
        assert_eq!(gate.stats["op"].throttled, 9);
    }

    #[test]
    fn per_operation_each_operation_has_the_whole_rate_and_per_service_they_share_it() {
        let limit = RateLimit { rate: 2.0, burst: 5.0 };
        let admitted = |scope: RateScope| {
            let mut gate = Gate::default();
            gate.set_limit(Service::WorkSpaces, limit);
            gate.set_scope(scope);
            let mut admitted = 0;
            // Ten simulated seconds of Create and Describe asked 4 times a second each.
            for tick in 0..40 {
                let now = f64::from(tick) * 250.0;
                for op in ["WorkSpaces.CreateWorkspaces", "WorkSpaces.DescribeWorkspaces"] {
                    admitted += usize::from(gate.admit(Service::WorkSpaces, op, now).is_ok());
                }
            }
            admitted
        };
        // Shared: the burst once and 2 a second; per operation: twice that.
        assert_eq!(admitted(RateScope::Service), 5 + 19);
        assert_eq!(admitted(RateScope::Operation), 2 * (5 + 19));
    }

    #[test]
    fn counted_fault_expires() {
        let mut gate = Gate::default();
        gate.faults.push(Fault::Throttle { operation: Some("a".into()), count: Some(2), probability: None });
        assert!(gate.admit(Service::WorkSpaces, "b", 0.0).is_ok());
        assert!(gate.admit(Service::WorkSpaces, "a", 0.0).is_err());
        assert!(gate.admit(Service::WorkSpaces, "a", 0.0).is_err());
        assert!(gate.admit(Service::WorkSpaces, "a", 0.0).is_ok());
        assert!(gate.faults.is_empty());
    }

    #[test]
    fn a_fault_with_a_probability_hits_about_that_share_of_the_requests() {
        let mut gate = Gate::default();
        gate.faults.push(Fault::HttpError { operation: None, status: Some(500), count: None, probability: Some(0.05) });
        let refused = (0..4000).filter(|_| gate.admit(Service::WorkDocs, "op", 0.0).is_err()).count();
        assert!((140..260).contains(&refused), "about 5 % of 4,000: {refused}");
        assert_eq!(gate.stats["op"].injected_errors, refused as u64);
    }
}
