//! A local simulator of the AWS services that no emulator covers offline: WorkSpaces, WorkDocs,
//! Directory Service Data and Directory Service. It answers on their real wire protocols so the
//! real `aws-sdk-*` clients talk to it, keeps one directory model shared by all four, runs the
//! WorkSpace lifecycle on a (possibly accelerated) clock, enforces per-service rate limits, and
//! has an admin API under `/_sim/` to seed, configure, inject faults and read call counters.

pub mod api;
pub mod clock;
pub mod config;
pub mod error;
pub mod gate;
pub mod ids;
pub mod world;

use crate::clock::SimClock;
use crate::config::{ConfigPatch, Service, SimConfig};
use crate::error::{ApiError, Protocol};
use crate::gate::Gate;
use crate::world::{Seed, World};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Everything the simulator knows, behind one lock: operations are short and never await
/// while holding it.
#[derive(Debug)]
pub struct Inner {
    pub clock: SimClock,
    pub config: SimConfig,
    pub gate: Gate,
    pub world: World,
    /// What `reset` goes back to.
    initial: (SimConfig, Seed),
}

#[derive(Debug, Clone)]
pub struct Simulator {
    inner: Arc<Mutex<Inner>>,
}

/// The outcome of an operation: a status and a JSON body.
pub type OpResult = Result<(StatusCode, Value), ApiError>;

impl Simulator {
    pub fn new(config: SimConfig, seed: Seed) -> Result<Self, String> {
        seed.validate()?;
        let mut inner = Inner {
            clock: SimClock::new(config.time_factor),
            config: config.clone(),
            gate: Gate::default(),
            world: World::default(),
            initial: (config, seed),
        };
        inner.reset();
        Ok(Self { inner: Arc::new(Mutex::new(inner)) })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock is a simulator bug; keep serving with the state as is.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one API operation the way the service would: count it, apply injected faults and
    /// the rate limit, then run `op` against the model at the current simulated time.
    pub async fn call(
        &self,
        protocol: Protocol,
        service: Service,
        op: &str,
        run: impl FnOnce(&mut Inner, f64) -> OpResult,
    ) -> Response {
        let key = format!("{}.{op}", service.name());
        let admission = {
            let mut inner = self.lock();
            let now = inner.clock.now_ms();
            inner.gate.admit(service, &key, now)
        };
        let admission = match admission {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(op = %key, code = %e.code, "refused");
                return e.render(protocol);
            }
        };
        if admission.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(admission.latency_ms)).await;
        }
        let response = {
            let mut inner = self.lock();
            let now = inner.clock.now_ms();
            inner.world.collect_gone(now);
            match run(&mut inner, now) {
                Ok((status, body)) => error::ok(protocol, status, body),
                Err(e) => {
                    tracing::debug!(op = %key, code = %e.code, message = %e.message, "error");
                    e.render(protocol)
                }
            }
        };
        if admission.delay_after_ms > 0 {
            tokio::time::sleep(Duration::from_millis(admission.delay_after_ms)).await;
        }
        response
    }
}

impl Inner {
    pub fn op_key(service: Service, op: &str) -> String {
        format!("{}.{op}", service.name())
    }

    pub fn record_items(&mut self, service: Service, op: &str, items: usize) {
        self.gate.record_items(&Self::op_key(service, op), items);
    }

    pub fn apply_config(&mut self, patch: ConfigPatch) {
        if let Some(f) = patch.time_factor {
            self.clock.set_factor(f);
            self.config.time_factor = f;
        }
        if let Some(l) = patch.lifecycle {
            self.config.lifecycle = l;
        }
        if let Some(m) = patch.max_workspaces {
            self.config.max_workspaces = m;
        }
        if let Some(scope) = patch.rate_scope {
            self.config.rate_scope = scope;
            self.gate.set_scope(scope);
        }
        for (service, limit) in patch.rate_limits {
            self.config.rate_limits.insert(service, limit);
            self.gate.set_limit(service, limit);
        }
    }

    /// Back to the startup seed and configuration: no WorkSpaces, no created users, no faults,
    /// no counters.
    pub fn reset(&mut self) {
        let (config, seed) = self.initial.clone();
        self.clock = SimClock::new(config.time_factor);
        self.gate = Gate::default();
        for (service, limit) in &config.rate_limits {
            self.gate.set_limit(*service, *limit);
        }
        self.gate.set_scope(config.rate_scope);
        self.config = config;
        self.world = World::default();
        seed.apply(&mut self.world);
    }
}

/// The router serving every simulated service and the admin API on one port.
pub fn router(sim: Simulator) -> axum::Router {
    api::router(sim)
}

/// Serves the simulator on `listener` until the future is dropped.
pub async fn serve(listener: tokio::net::TcpListener, sim: Simulator) -> std::io::Result<()> {
    axum::serve(listener, router(sim)).await
}
