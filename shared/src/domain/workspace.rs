//! Facts about WorkSpaces the whole pipeline shares: the states DescribeWorkspaces reports, the
//! per-call limit, and what each per-item error code means for the employee.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// CreateWorkspaces, TerminateWorkspaces and DescribeWorkspaces (by id) take at most 25 items
/// per call (the WorkSpaces API reference, `Workspaces`, `TerminateWorkspaceRequests`,
/// `WorkspaceIds`: "Array Members: Minimum number of 1 item. Maximum number of 25 items").
pub const MAX_PER_CALL: usize = 25;

/// The user name of a user-decoupled WorkSpace (the WorkSpace name then identifies it).
pub const UNDEFINED_USER: &str = "[UNDEFINED]";

/// A WorkSpace's state (`WorkspaceState` in the service model). A state the model adds later is
/// kept as `Other`, never an error: the pipeline waits on it as on any transitional state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WorkspaceState {
    Pending,
    Available,
    Impaired,
    Unhealthy,
    Rebooting,
    Starting,
    Rebuilding,
    Restoring,
    Maintenance,
    AdminMaintenance,
    Terminating,
    Terminated,
    Suspended,
    Updating,
    Stopping,
    Stopped,
    Error,
    Other(String),
}

impl WorkspaceState {
    const NAMES: [(&'static str, WorkspaceState); 17] = [
        ("PENDING", WorkspaceState::Pending),
        ("AVAILABLE", WorkspaceState::Available),
        ("IMPAIRED", WorkspaceState::Impaired),
        ("UNHEALTHY", WorkspaceState::Unhealthy),
        ("REBOOTING", WorkspaceState::Rebooting),
        ("STARTING", WorkspaceState::Starting),
        ("REBUILDING", WorkspaceState::Rebuilding),
        ("RESTORING", WorkspaceState::Restoring),
        ("MAINTENANCE", WorkspaceState::Maintenance),
        ("ADMIN_MAINTENANCE", WorkspaceState::AdminMaintenance),
        ("TERMINATING", WorkspaceState::Terminating),
        ("TERMINATED", WorkspaceState::Terminated),
        ("SUSPENDED", WorkspaceState::Suspended),
        ("UPDATING", WorkspaceState::Updating),
        ("STOPPING", WorkspaceState::Stopping),
        ("STOPPED", WorkspaceState::Stopped),
        ("ERROR", WorkspaceState::Error),
    ];

    /// The state as the API spells it.
    pub fn parse(s: &str) -> WorkspaceState {
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == s)
            .map_or_else(|| WorkspaceState::Other(s.to_owned()), |(_, st)| st.clone())
    }

    pub fn as_str(&self) -> &str {
        match self {
            WorkspaceState::Other(s) => s,
            known => Self::NAMES.iter().find(|(_, st)| st == known).map_or("", |(name, _)| name),
        }
    }
}

impl std::fmt::Display for WorkspaceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WorkSpace's properties as DescribeWorkspaces reports them (`WorkspaceProperties`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceProperties {
    /// `AUTO_STOP`, `ALWAYS_ON` or `MANUAL`, as the service spells it (kept as text so a mode the
    /// model adds later is not an error).
    pub running_mode: Option<String>,
    pub auto_stop_minutes: Option<i32>,
    pub root_volume_gib: Option<i32>,
    pub user_volume_gib: Option<i32>,
    pub compute_type: Option<String>,
}

/// One ModifyWorkspaceProperties call changes one property group: the service refuses a compute
/// type with a volume size, or both volumes at once (admin guide, "Modify WorkSpaces"), and
/// Terraform sends one property per call. The running mode travels with its AutoStop timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyChange {
    RunningMode {
        mode: super::profile::RunningMode,
        auto_stop_minutes: Option<i32>,
    },
    /// A `Compute` value (`STANDARD`, `PERFORMANCE`, ...).
    ComputeType(String),
    /// Root volume size in GiB; it can only grow.
    RootVolume(i32),
    /// User volume size in GiB; it can only grow.
    UserVolume(i32),
}

/// Tags per WorkSpaces resource (`CreateTags`: "Each WorkSpaces resource can have a maximum of 50 tags").
pub const MAX_TAGS: usize = 50;
/// Longest tag key (model: `TagKey` 1–127).
pub const MAX_TAG_KEY: usize = 127;
/// Longest tag value (model: `TagValue` 0–255).
pub const MAX_TAG_VALUE: usize = 255;
/// Tag keys the pipeline owns begin with this: a move removes such a tag when the new profile
/// no longer sets it. A tag without the prefix is someone else's and is never removed.
pub const PIPELINE_TAG_PREFIX: &str = "hr-pipeline:";
/// Every WorkSpace the pipeline creates carries this tag (the value: the employee id). It
/// adopts or terminates one without it only when configured to (`ADOPT_UNMANAGED`,
/// `TERMINATE_UNMANAGED`).
pub const MANAGED_TAG_KEY: &str = "hr-pipeline:managed";
/// A WorkSpace with this tag (any value) is never terminated by the pipeline.
pub const PROTECT_TAG_KEY: &str = "hr-pipeline:protect";

/// Why the pipeline may not terminate (or adopt) a WorkSpace with these tags, if it may not.
pub fn tag_refusal(tags: &BTreeMap<String, String>, allow_unmanaged: bool) -> Option<(&'static str, String)> {
    if tags.contains_key(PROTECT_TAG_KEY) {
        return Some((
            PROTECTED,
            format!("the WorkSpace carries the tag {PROTECT_TAG_KEY}: the pipeline never terminates it"),
        ));
    }
    if !allow_unmanaged && !tags.contains_key(MANAGED_TAG_KEY) {
        return Some((
            UNMANAGED,
            format!(
                "the WorkSpace lacks the tag {MANAGED_TAG_KEY}: the pipeline did not create it (tag it, or allow unmanaged WorkSpaces)"
            ),
        ));
    }
    None
}

/// Failure codes of an employee whose WorkSpace the pipeline will not terminate or adopt.
pub const PROTECTED: &str = "ProtectedWorkspace";
pub const UNMANAGED: &str = "UnmanagedWorkspace";

/// Tag keys and values with this prefix are AWS's (admin guide, "Tag WorkSpaces resources").
pub const RESERVED_TAG_PREFIX: &str = "aws:";

/// "you can expand both volumes once in a 6-hour period"; "You can request a larger bundle once
/// in a 6-hour period"; both also count from launch (admin guide, "Modify WorkSpaces").
pub const GROWTH_COOLDOWN_MS: i64 = 6 * 3_600_000;
/// "... or a smaller bundle once every 30 days" (admin guide, "Modify WorkSpaces").
pub const SHRINK_COOLDOWN_MS: i64 = 30 * 24 * 3_600_000;
/// MigrateWorkspace: the WorkSpace "at least 12 hours old, to ensure that a snapshot of the user
/// volume has been created" (admin guide, "Migrate a WorkSpace"); the user volume comes from it.
pub const MIGRATE_MIN_AGE_MS: i64 = 12 * 3_600_000;
/// The cooldowns the mover plans with: the documented ones in AWS; a local stack whose simulator
/// runs them faster divides them by the same factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cooldowns {
    pub growth_ms: i64,
    pub shrink_ms: i64,
    pub migrate_min_age_ms: i64,
}

impl Cooldowns {
    pub const DOCUMENTED: Cooldowns = Cooldowns {
        growth_ms: GROWTH_COOLDOWN_MS,
        shrink_ms: SHRINK_COOLDOWN_MS,
        migrate_min_age_ms: MIGRATE_MIN_AGE_MS,
    };

    /// Each documented cooldown divided by `divisor` (at least 1).
    pub fn divided_by(divisor: u32) -> Cooldowns {
        let d = i64::from(divisor.max(1));
        let c = Cooldowns::DOCUMENTED;
        Cooldowns {
            growth_ms: c.growth_ms / d,
            shrink_ms: c.shrink_ms / d,
            migrate_min_age_ms: c.migrate_min_age_ms / d,
        }
    }
}

/// The AutoStop timeout is "Configured in 60-minute intervals" (model, `WorkspaceProperties`).
pub const AUTO_STOP_STEP_MINUTES: i32 = 60;
/// The console's default AutoStop time: one hour.
pub const DEFAULT_AUTO_STOP_MINUTES: i32 = 60;

/// Why a tag key or value is refused beyond the model's lengths (admin guide, "Tag WorkSpaces
/// resources"): the reserved `aws:` prefix (which covers `aws:workspaces:`), characters other
/// than letters, numbers, spaces and `+ - = . _ : / @`, leading or trailing spaces.
pub fn tag_text_problem(what: &str, s: &str) -> Option<String> {
    if s.to_lowercase().starts_with(RESERVED_TAG_PREFIX) {
        return Some(format!("The tag {what} {s:?} uses the reserved prefix {RESERVED_TAG_PREFIX}."));
    }
    let allowed = |c: char| c.is_alphanumeric() || c == ' ' || "+-=._:/@".contains(c);
    if !s.chars().all(allowed) || s.trim() != s {
        return Some(format!("The tag {what} {s:?} contains characters that are not allowed."));
    }
    None
}

/// Compute types without a GPU, smallest first: any of them can change to any other (admin
/// guide, "Modify WorkSpaces").
const COMPUTE_ORDER: &[&str] =
    &["VALUE", "STANDARD", "PERFORMANCE", "POWER", "POWERPRO", "GENERALPURPOSE_4XLARGE", "GENERALPURPOSE_8XLARGE"];
/// "You cannot change the compute type of Graphics and GraphicsPro to any other value."
const FIXED_COMPUTE: &[&str] = &["GRAPHICS", "GRAPHICSPRO"];
/// "You can change the compute type from Graphics.g4dn to GraphicsPro.g4dn and vice versa", and
/// to nothing else.
const G4DN_PAIR: [&str; 2] = ["GRAPHICS_G4DN", "GRAPHICSPRO_G4DN"];

/// Whether a compute type has a GPU (all `Compute` values of GPU bundles begin `GR`).
pub fn is_gpu(compute: &str) -> bool {
    compute.starts_with("GR")
}

/// Whether `from` → `to` is a larger compute type (`Ok(true)`) or a smaller one, or why the
/// service does not make the change (GPU ↔ non-GPU needs MigrateWorkspace). GPU types other than
/// the documented ones may change among GPU types and count as larger [UNKNOWN: undocumented; the
/// tolerant reading, under the shorter cooldown]; so do types this list does not know.
pub fn compute_change(from: &str, to: &str) -> Result<bool, String> {
    let in_pair = |c: &str| G4DN_PAIR.contains(&c);
    if FIXED_COMPUTE.contains(&from) || is_gpu(from) != is_gpu(to) || in_pair(from) != in_pair(to) {
        return Err(format!("The compute type {from} cannot be changed to {to}; migrate to another bundle instead."));
    }
    let rank = |c: &str| COMPUTE_ORDER.iter().position(|x| *x == c).or_else(|| G4DN_PAIR.iter().position(|x| *x == c));
    Ok(match (rank(from), rank(to)) {
        (Some(a), Some(b)) => b >= a,
        _ => true,
    })
}

/// Largest root or user volume ("up to 2000 GB each").
const MAX_VOLUME_GIB: i64 = 2000;
/// The root volume of the small groups.
const SMALL_ROOT_GIB: i64 = 80;
/// "If the root volume is 80 GB, the user volume can only be 10, 50, or 100 GB."
const SMALL_ROOT_USER_GIB: &[i64] = &[10, 50, 100];
/// Past 80 GB the root is 175–2000 GB with a user volume of 100–2000 GB.
const LARGE_ROOT_MIN_GIB: i64 = 175;
const LARGE_USER_MIN_GIB: i64 = 100;
/// GPU bundles: both volumes at least 100 GB.
const GPU_MIN_GIB: i64 = 100;

/// Whether [root, user] is one of the documented groups: [80,10], [80,50], [80,100],
/// [175–2000, 100–2000]; on a GPU compute type, both 100–2000. Any integer inside a range is
/// accepted [UNKNOWN: no granularity documented].
pub fn volumes_allowed(compute: &str, root: i64, user: i64) -> bool {
    let within = |min: i64, v: i64| (min..=MAX_VOLUME_GIB).contains(&v);
    if is_gpu(compute) {
        return within(GPU_MIN_GIB, root) && within(GPU_MIN_GIB, user);
    }
    (root == SMALL_ROOT_GIB && SMALL_ROOT_USER_GIB.contains(&user))
        || (within(LARGE_ROOT_MIN_GIB, root) && within(LARGE_USER_MIN_GIB, user))
}

/// What a per-item error code (CreateWorkspaces or TerminateWorkspaces `FailedRequests`) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The user already has a WorkSpace in the directory: find and adopt it (creation only).
    Adopt,
    /// The WorkSpace is not known any more (termination only): the reconciler confirms it gone.
    Gone,
    /// Retrying cannot help: record the failure on the employee.
    Permanent,
    /// Try again later, a bounded number of times.
    Retry,
}

/// The call a per-item error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Create,
    Terminate,
}

/// What a per-item error code means. The documented codes are decided; anything unknown (the
/// API reference does not list every code) is retried a bounded number of times.
pub fn classify(call: Call, code: &str) -> Disposition {
    match (call, code) {
        (Call::Create, "ResourceExists.WorkSpace") => Disposition::Adopt,
        // Termination only asks; DescribeWorkspaces confirms the absence before anyone relies on it.
        (Call::Terminate, c) if c.starts_with("ResourceNotFound") => Disposition::Gone,
        // Another employee's user name: never adopted, and retrying will not change whose it is.
        (_, super::employee::USER_NAME_TAKEN) => Disposition::Permanent,
        (_, c) if c.starts_with("ResourceNotFound.") => Disposition::Permanent,
        (
            _,
            "InvalidParameterValuesException"
            | "InvalidParameterValues"
            | "AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace"
            | "ValidationException"
            | "UnsupportedWorkspaceConfiguration"
            | "OperationNotSupportedException"
            | "AccessDeniedException",
        ) => Disposition::Permanent,
        // Throttling, capacity, limits, a SUSPENDED WorkSpace and anything unknown: retry, bounded.
        _ => Disposition::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_read_as_the_api_spells_them_and_unknown_ones_are_kept() {
        assert_eq!(WorkspaceState::parse("ADMIN_MAINTENANCE"), WorkspaceState::AdminMaintenance);
        assert_eq!(WorkspaceState::parse("AVAILABLE").as_str(), "AVAILABLE");
        assert_eq!(WorkspaceState::parse("HIBERNATING"), WorkspaceState::Other("HIBERNATING".into()));
        assert_eq!(WorkspaceState::parse("HIBERNATING").to_string(), "HIBERNATING");
        for (name, state) in WorkspaceState::NAMES {
            assert_eq!(state.as_str(), name);
        }
    }

    #[test]
    fn volume_groups_and_compute_changes_follow_the_admin_guide() {
        assert!(volumes_allowed("STANDARD", 80, 50) && volumes_allowed("STANDARD", 80, 100));
        assert!(!volumes_allowed("STANDARD", 175, 50), "the user volume goes to 100 first");
        assert!(volumes_allowed("STANDARD", 175, 100) && !volumes_allowed("STANDARD", 100, 100));
        assert!(volumes_allowed("GRAPHICS_G4DN", 100, 100) && !volumes_allowed("STANDARD", 2001, 100));
        assert_eq!(compute_change("STANDARD", "PERFORMANCE"), Ok(true));
        assert_eq!(compute_change("POWER", "VALUE"), Ok(false));
        assert_eq!(compute_change("GRAPHICS_G4DN", "GRAPHICSPRO_G4DN"), Ok(true));
        assert!(compute_change("GRAPHICS", "GRAPHICSPRO").is_err());
        assert!(compute_change("STANDARD", "GRAPHICS_G4DN").is_err());
        assert!(compute_change("GRAPHICS_G4DN", "GRAPHICS_G6_XLARGE").is_err());
        assert!(tag_text_problem("key", "aws:owner").is_some() && tag_text_problem("key", " x").is_some());
        assert_eq!(tag_text_problem("key", "managed-by"), None);
    }

    #[test]
    fn error_codes_are_classified_by_the_call_they_came_from() {
        use Call::{Create, Terminate};
        assert_eq!(classify(Create, "ResourceExists.WorkSpace"), Disposition::Adopt);
        assert_eq!(classify(Create, "ResourceNotFound.User"), Disposition::Permanent);
        assert_eq!(classify(Create, crate::domain::employee::USER_NAME_TAKEN), Disposition::Permanent);
        assert_eq!(classify(Create, "ResourceNotFound.Directory"), Disposition::Permanent);
        assert_eq!(classify(Create, "AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace"), Disposition::Permanent);
        assert_eq!(classify(Create, "ResourceLimitExceeded"), Disposition::Retry);
        assert_eq!(classify(Create, "SomethingNew.Unheard"), Disposition::Retry);
        assert_eq!(classify(Terminate, "ResourceNotFound.WorkSpace"), Disposition::Gone);
        assert_eq!(classify(Terminate, "ResourceNotFoundException"), Disposition::Gone);
        assert_eq!(classify(Terminate, "OperationNotSupportedException"), Disposition::Permanent);
        assert_eq!(classify(Terminate, "InvalidResourceStateException"), Disposition::Retry);
    }
}
