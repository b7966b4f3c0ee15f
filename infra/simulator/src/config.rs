//! Runtime settings of the simulator, readable and changeable through the admin API.

use serde::{Deserialize, Serialize};
use shared::domain::workspace::{GROWTH_COOLDOWN_MS, SHRINK_COOLDOWN_MS};
use std::collections::BTreeMap;

/// Delays of the WorkSpace lifecycle, in simulated milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Lifecycle {
    /// PENDING → AVAILABLE (or ERROR). The real service takes ~20 min.
    pub create_ms: u64,
    /// How long a new WorkSpace id is missing from DescribeWorkspaces (eventual consistency).
    pub invisible_ms: u64,
    /// TERMINATING → TERMINATED.
    pub terminate_ms: u64,
    /// How long TERMINATED stays visible before the id disappears.
    pub terminated_visible_ms: u64,
    /// UPDATING after ModifyWorkspaceProperties, then AVAILABLE with the change (the real
    /// service: up to an hour for compute, two for volumes).
    pub update_ms: u64,
    /// MigrateWorkspace: the target is PENDING this long, then AVAILABLE, and the source gone.
    pub migrate_ms: u64,
    /// Between two volume growths, and from launch to the first one.
    pub volume_cooldown_ms: u64,
    /// Between two compute-type increases, and from launch to the first one.
    pub compute_up_cooldown_ms: u64,
    /// Between two compute-type decreases.
    pub compute_down_cooldown_ms: u64,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            create_ms: 3_000,
            invisible_ms: 500,
            terminate_ms: 2_000,
            terminated_visible_ms: 1_000,
            update_ms: 2_000,
            migrate_ms: 3_000,
            volume_cooldown_ms: GROWTH_COOLDOWN_MS as u64,
            compute_up_cooldown_ms: GROWTH_COOLDOWN_MS as u64,
            compute_down_cooldown_ms: SHRINK_COOLDOWN_MS as u64,
        }
    }
}

/// A token bucket: `rate` calls per simulated second, up to `burst` at once.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub rate: f64,
    pub burst: f64,
}

/// What one rate limit counts: every operation of the service together, or each operation on
/// its own. AWS does not publish which holds for WorkSpaces ("about 2 calls/s per account"), so
/// both are simulated; a pipeline's ceiling differs by a factor of two between them (README).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateScope {
    /// One bucket per service: CreateWorkspaces and DescribeWorkspaces draw on the same tokens.
    #[default]
    Service,
    /// One bucket per operation, each with the service's rate and burst.
    Operation,
}

/// The simulated services, each with its own rate limit and call counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Service {
    WorkSpaces,
    WorkDocs,
    DirectoryServiceData,
    DirectoryService,
    /// The Resource Groups Tagging API (GetResources: many WorkSpaces' tags in one call).
    ResourceGroupsTagging,
}

impl Service {
    pub const ALL: [Service; 5] = [
        Service::WorkSpaces,
        Service::WorkDocs,
        Service::DirectoryServiceData,
        Service::DirectoryService,
        Service::ResourceGroupsTagging,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::WorkSpaces => "WorkSpaces",
            Service::WorkDocs => "WorkDocs",
            Service::DirectoryServiceData => "DirectoryServiceData",
            Service::DirectoryService => "DirectoryService",
            Service::ResourceGroupsTagging => "ResourceGroupsTagging",
        }
    }

    fn default_rate(self) -> RateLimit {
        match self {
            // The documented WorkSpaces API rate: ~2 calls/s sustained, burst 5, per account.
            Service::WorkSpaces => RateLimit { rate: 2.0, burst: 5.0 },
            Service::WorkDocs | Service::DirectoryServiceData => RateLimit { rate: 10.0, burst: 20.0 },
            Service::DirectoryService => RateLimit { rate: 5.0, burst: 10.0 },
            // [INFER] AWS publishes no GetResources rate; a cautious guess, its own bucket.
            Service::ResourceGroupsTagging => RateLimit { rate: 5.0, burst: 10.0 },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Simulated time runs this many times faster than real time (lifecycle and rate limits).
    pub time_factor: f64,
    pub lifecycle: Lifecycle,
    pub rate_limits: BTreeMap<Service, RateLimit>,
    /// Whether each rate limit is per service or per operation.
    pub rate_scope: RateScope,
    /// WorkSpaces quota per account; beyond it CreateWorkspaces fails.
    pub max_workspaces: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            time_factor: 1.0,
            lifecycle: Lifecycle::default(),
            rate_limits: Service::ALL.iter().map(|s| (*s, s.default_rate())).collect(),
            rate_scope: RateScope::default(),
            max_workspaces: 50_000,
        }
    }
}

/// A partial update of [`SimConfig`] (admin `PATCH /_sim/config`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    pub time_factor: Option<f64>,
    pub lifecycle: Option<Lifecycle>,
    #[serde(default)]
    pub rate_limits: BTreeMap<Service, RateLimit>,
    pub rate_scope: Option<RateScope>,
    pub max_workspaces: Option<usize>,
}

impl ConfigPatch {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(f) = self.time_factor
            && !(f.is_finite() && f > 0.0)
        {
            return Err(format!("time_factor must be a positive number, got {f}"));
        }
        for (service, limit) in &self.rate_limits {
            if !(limit.rate > 0.0 && limit.burst >= 1.0) {
                return Err(format!("rate_limits.{}: rate must be > 0 and burst >= 1", service.name()));
            }
        }
        Ok(())
    }
}
