//! The mover's planner: from the WorkSpace as it is and the profile its employee moves to, the
//! next single step toward that profile, under the service's rules. Pure: the caller performs
//! the step, reads the WorkSpace again and asks again, until [`MoveStep::Done`] (or
//! [`MoveStep::Impossible`]).
//!
//! The rules and their sources are in `infra/simulator/WORKSPACES-FACTS.md` ("FACTS" below:
//! §1 ModifyWorkspaceProperties, §2 MigrateWorkspace, §4 tags); the constants and checks they
//! became are in [`super::workspace`], and the fake and the simulator refuse what they refuse.
//!
//! The order: another directory → a new WorkSpace there ([`MoveStep::Relocate`]); another bundle
//! → [`MoveStep::Migrate`] (a new WorkSpace id, whose properties are compared again); then one
//! ModifyWorkspaceProperties per property group (FACTS §1: volume and compute never together,
//! nor both volumes): compute type, running mode with its AutoStop timeout, the volumes (each
//! step landing on a documented [root, user] group); then the tags. A property step held by its
//! cooldown does not hold back the groups after it (a smaller compute type may wait 30 days,
//! the user volume need not); when every remaining step waits, the earliest time is given.
//! Only what the profile specifies is compared: `None` there is the bundle's default, left as is.

use super::profile::{Profile, RunningMode};
use super::workspace::{
    AUTO_STOP_STEP_MINUTES, Cooldowns, MANAGED_TAG_KEY, MAX_TAG_KEY, MAX_TAG_VALUE, MAX_TAGS, PIPELINE_TAG_PREFIX,
    PROTECT_TAG_KEY, PropertyChange, WorkspaceProperties, WorkspaceState, compute_change, tag_text_problem,
    volumes_allowed,
};
use std::collections::BTreeMap;

/// Guard tags: a move never removes or overwrites them (a profile may only add one that is
/// missing). They say whether the pipeline may destroy the WorkSpace; a move is not the place to
/// change that.
const GUARD_TAG_KEYS: [&str; 2] = [MANAGED_TAG_KEY, PROTECT_TAG_KEY];

/// The WorkSpace as DescribeWorkspaces (and DescribeTags) report it, with the times of the
/// changes the caller made to it (the service does not report them; its cooldowns count from
/// them, FACTS §1).
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    pub directory_id: &'a str,
    /// `None`: not reported. No migration is planned on a guess: it recreates the system drive.
    pub bundle_id: Option<&'a str>,
    pub state: &'a WorkspaceState,
    pub properties: &'a WorkspaceProperties,
    /// DescribeTags' answer (DescribeWorkspaces has no tags). `None`: not read; then the
    /// profile's tags are set (CreateTags overwrites, so again is harmless) and none removed.
    pub tags: Option<&'a BTreeMap<String, String>>,
    /// When this WorkSpace id was launched (a migration launches a new one): volume growth and
    /// a larger compute type wait 6 hours from it.
    pub launched_ms: i64,
    /// The last volume growth asked of this WorkSpace.
    pub last_volume_ms: Option<i64>,
    /// The last larger compute type asked.
    pub last_compute_up_ms: Option<i64>,
    /// The last smaller compute type asked.
    pub last_compute_down_ms: Option<i64>,
}

/// The next single step toward the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveStep {
    /// The WorkSpace is as the profile asks.
    Done,
    /// Another directory: a WorkSpace never changes directory, so a new one is created there
    /// from the profile; the old one is terminated only once the new one is AVAILABLE.
    Relocate,
    /// Another bundle: MigrateWorkspace. A new WorkSpace id (launched now), the user volume
    /// kept, the system drive recreated from the bundle (FACTS §2).
    Migrate { bundle_id: String },
    /// One ModifyWorkspaceProperties call, one property group.
    Modify(PropertyChange),
    /// DeleteTags `remove` first, then CreateTags `add`; either may be empty.
    Tag { add: BTreeMap<String, String>, remove: Vec<String> },
    /// The WorkSpace is in no state the next step accepts (UPDATING, PENDING, STARTING,
    /// ADMIN_MAINTENANCE, ...): ask again later.
    WaitForState,
    /// A cooldown: ask again at `at_ms`.
    WaitUntil { at_ms: i64, why: String },
    /// The profile cannot be reached from here by these steps: an operator decides.
    Impossible { why: String },
}

/// The next step from `current` toward `target` at `now_ms` (see the module's documentation for
/// the order). Applying it and asking again moves on; at the target the answer is `Done`.
pub fn next_step(current: &Current<'_>, target: &Profile, now_ms: i64) -> MoveStep {
    next_step_with(current, target, now_ms, &Cooldowns::DOCUMENTED)
}

/// [`next_step`] with these cooldowns (a local stack's, divided as its simulator's are).
pub fn next_step_with(current: &Current<'_>, target: &Profile, now_ms: i64, cooldowns: &Cooldowns) -> MoveStep {
    if current.directory_id != target.directory_id {
        return MoveStep::Relocate;
    }
    if matches!(current.state, WorkspaceState::Terminating | WorkspaceState::Terminated) {
        return impossible(format!("the WorkSpace is {}: there is nothing left to move", current.state));
    }
    if let Some(bundle) = current.bundle_id
        && bundle != target.bundle_id
    {
        return migrate(current, &target.bundle_id, now_ms, cooldowns);
    }
    let planned = match property_steps(current, target, cooldowns) {
        Ok(planned) => planned,
        Err(why) => return MoveStep::Impossible { why },
    };
    let tags = match tag_step(current.tags, &target.tags) {
        Ok(tags) => tags,
        Err(why) => return MoveStep::Impossible { why },
    };
    // FACTS §1: "If you want to modify a WorkSpace, it must have a status of AVAILABLE or STOPPED."
    let modifiable = matches!(current.state, WorkspaceState::Available | WorkspaceState::Stopped);
    if !planned.is_empty() {
        if *current.state == WorkspaceState::Error {
            return impossible(format!(
                "ModifyWorkspaceProperties needs AVAILABLE or STOPPED, and a WorkSpace in {} stays there: rebuild or replace it",
                current.state
            ));
        }
        if modifiable && let Some(ready) = planned.iter().find(|p| p.ready_at <= now_ms) {
            return MoveStep::Modify(ready.change.clone());
        }
    }
    // Tags have no state or cooldown of their own (FACTS §4): they need not wait for the rest.
    if let Some(tags) = tags {
        return tags;
    }
    match planned.iter().min_by_key(|p| p.ready_at) {
        None => MoveStep::Done,
        Some(_) if !modifiable => MoveStep::WaitForState,
        Some(next) => MoveStep::WaitUntil { at_ms: next.ready_at, why: next.why.to_owned() },
    }
}

/// The volume changes from [root, user] `from` to `to`, in order: each grows one volume, and
/// every pair on the way is a documented group for `compute` (FACTS §1: "To increase the root
/// volume, you must first change the user volume to 100 GB. After that change is made, you can
/// then update the root volume ... After the root volume has been changed ..., you can then
/// update the user volume further"). `Err` says why there is no such path.
pub fn volume_path(compute: &str, from: (i32, i32), to: (i32, i32)) -> Result<Vec<PropertyChange>, String> {
    let ((root, user), (want_root, want_user)) = (from, to);
    if want_root < root || want_user < user {
        return Err(format!(
            "volumes only grow (FACTS §1): [{root}, {user}] GiB cannot become [{want_root}, {want_user}] GiB"
        ));
    }
    if !allowed(compute, to) {
        return Err(format!(
            "[{want_root}, {want_user}] GiB is not a documented [root, user] group for {compute} (FACTS §1: [80, 10], [80, 50], [80, 100], [175-2000, 100-2000]; GPU bundles both 100-2000)"
        ));
    }
    shortest_path(compute, from, to, MAX_VOLUME_STEPS).ok_or_else(|| {
        format!("no growth one volume at a time through documented groups leads from [{root}, {user}] GiB to [{want_root}, {want_user}] GiB")
    })
}

/// The longest volume path: user to the bridge, root, user further.
const MAX_VOLUME_STEPS: usize = 3;

fn allowed(compute: &str, (root, user): (i32, i32)) -> bool {
    volumes_allowed(compute, i64::from(root), i64::from(user))
}

/// The shortest growth path within `steps` (ties: root first, as the guide grows it before the
/// user volume "further").
fn shortest_path(compute: &str, at: (i32, i32), to: (i32, i32), steps: usize) -> Option<Vec<PropertyChange>> {
    if at == to {
        return Some(Vec::new());
    }
    if steps == 0 {
        return None;
    }
    let (root, user) = at;
    let mut nexts = Vec::new();
    if root < to.0 {
        nexts.push((to.0, user));
        if !allowed(compute, (to.0, user)) {
            // The bridge: the smallest user volume that lets the root grow (100 GiB, documented).
            let bridge = (user + 1..to.1).find(|v| allowed(compute, (root, *v)) && allowed(compute, (to.0, *v)));
            nexts.extend(bridge.map(|v| (root, v)));
        }
    }
    if user < to.1 {
        nexts.push((root, to.1));
    }
    nexts
        .into_iter()
        .filter(|next| allowed(compute, *next))
        .filter_map(|next| {
            let change =
                if next.0 != root { PropertyChange::RootVolume(next.0) } else { PropertyChange::UserVolume(next.1) };
            let mut path = vec![change];
            path.extend(shortest_path(compute, next, to, steps - 1)?);
            Some(path)
        })
        .min_by_key(Vec::len)
}

/// A property change the profile asks for, and from when the service takes it.
struct Planned {
    change: PropertyChange,
    ready_at: i64,
    why: &'static str,
}

const VOLUME_COOLDOWN: &str =
    "the volumes grow once in 6 hours, and not in the first 6 hours after launch (FACTS §1, AG-modify-workspaces)";
const COMPUTE_UP_COOLDOWN: &str =
    "a larger compute type once in 6 hours, and not in the first 6 hours after launch (FACTS §1, AG-modify-workspaces)";
const COMPUTE_DOWN_COOLDOWN: &str = "a smaller compute type once every 30 days (FACTS §1, AG-modify-workspaces)";

fn impossible(why: String) -> MoveStep {
    MoveStep::Impossible { why }
}

/// From when a growth is taken: 6 hours after the last one, and after launch.
fn growth_ready(launched_ms: i64, last_ms: Option<i64>, cooldowns: &Cooldowns) -> i64 {
    last_ms.map_or(launched_ms, |t| t.max(launched_ms)).saturating_add(cooldowns.growth_ms)
}

fn migrate(current: &Current<'_>, bundle_id: &str, now_ms: i64, cooldowns: &Cooldowns) -> MoveStep {
    match current.state {
        // FACTS §2: "a status of AVAILABLE, STOPPED, or ERROR"; ADMIN_MAINTENANCE and the
        // transitional states wait.
        WorkspaceState::Available | WorkspaceState::Stopped | WorkspaceState::Error => {}
        _ => return MoveStep::WaitForState,
    }
    let old_enough = current.launched_ms.saturating_add(cooldowns.migrate_min_age_ms);
    if now_ms < old_enough {
        return MoveStep::WaitUntil {
            at_ms: old_enough,
            why: "MigrateWorkspace restores the user volume from a snapshot: the WorkSpace must be at least 12 hours old (FACTS §2, AG-migrate-workspaces)".into(),
        };
    }
    MoveStep::Migrate { bundle_id: bundle_id.to_owned() }
}

fn known<T>(value: Option<T>, what: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("DescribeWorkspaces did not report the {what}: read the WorkSpace again"))
}

/// The first change of each property group that differs, in order, each with its cooldown; or
/// why the profile cannot be reached.
fn property_steps(current: &Current<'_>, target: &Profile, cooldowns: &Cooldowns) -> Result<Vec<Planned>, String> {
    let have = current.properties;
    let mut planned = Vec::new();
    if let Some(want) = target.compute_type.as_deref() {
        let from = known(have.compute_type.as_deref(), "compute type")?;
        if from != want {
            let change = PropertyChange::ComputeType(want.to_owned());
            planned.push(if compute_change(from, want)? {
                Planned {
                    change,
                    ready_at: growth_ready(current.launched_ms, current.last_compute_up_ms, cooldowns),
                    why: COMPUTE_UP_COOLDOWN,
                }
            } else {
                Planned {
                    change,
                    ready_at: current.last_compute_down_ms.map_or(i64::MIN, |t| t.saturating_add(cooldowns.shrink_ms)),
                    why: COMPUTE_DOWN_COOLDOWN,
                }
            });
        }
    }
    if let Some(change) = running_mode_change(have, target)? {
        // "You can switch between running modes at any time" (FACTS §1, AG-running-mode).
        planned.push(Planned { change, ready_at: i64::MIN, why: "" });
    }
    if target.root_volume_gib.is_some() || target.user_volume_gib.is_some() {
        let root = known(have.root_volume_gib, "root volume size")?;
        let user = known(have.user_volume_gib, "user volume size")?;
        let want = (target.root_volume_gib.unwrap_or(root), target.user_volume_gib.unwrap_or(user));
        if want != (root, user) {
            // A compute change never crosses GPU and non-GPU, so today's type decides the groups.
            let compute = known(have.compute_type.as_deref(), "compute type")?;
            if let Some(change) = volume_path(compute, (root, user), want)?.into_iter().next() {
                planned.push(Planned {
                    change,
                    ready_at: growth_ready(current.launched_ms, current.last_volume_ms, cooldowns),
                    why: VOLUME_COOLDOWN,
                });
            }
        }
    }
    Ok(planned)
}

/// The running mode (with the AutoStop timeout the profile sets) when it differs.
fn running_mode_change(have: &WorkspaceProperties, target: &Profile) -> Result<Option<PropertyChange>, String> {
    let mode = target.running_mode;
    // The timeout is AUTO_STOP's only (FACTS §1); `None` keeps the WorkSpace's.
    let minutes = if mode == RunningMode::AutoStop { target.auto_stop_minutes } else { None };
    let same_mode = have.running_mode.as_deref() == Some(mode.as_str());
    if same_mode && minutes.is_none_or(|m| have.auto_stop_minutes == Some(m)) {
        return Ok(None);
    }
    if mode == RunningMode::Manual {
        return Err(
            "running mode MANUAL is for WorkSpaces Core only: ModifyWorkspaceProperties refuses it (FACTS §1)".into()
        );
    }
    if let Some(m) = minutes
        && (m <= 0 || m % AUTO_STOP_STEP_MINUTES != 0)
    {
        return Err(format!("the AutoStop timeout is set in 60-minute intervals (FACTS §1): {m} minutes is not one"));
    }
    Ok(Some(PropertyChange::RunningMode { mode, auto_stop_minutes: minutes }))
}

fn is_guard_tag(key: &str) -> bool {
    GUARD_TAG_KEYS.contains(&key)
}

/// Why CreateTags would refuse a tag (FACTS §4), if it would.
fn tag_problem(key: &str, value: &str) -> Option<String> {
    if key.is_empty() || key.chars().count() > MAX_TAG_KEY {
        return Some(format!("the tag key {key:?} must be 1-{MAX_TAG_KEY} characters"));
    }
    if value.chars().count() > MAX_TAG_VALUE {
        return Some(format!("the value of the tag {key:?} must be at most {MAX_TAG_VALUE} characters"));
    }
    tag_text_problem("key", key).or_else(|| if value.is_empty() { None } else { tag_text_problem("value", value) })
}

/// The tags to set (the profile's, where missing or different) and to remove (the pipeline's own
/// that the profile no longer sets), guard tags never removed nor overwritten; or why not.
fn tag_step(
    have: Option<&BTreeMap<String, String>>,
    want: &BTreeMap<String, String>,
) -> Result<Option<MoveStep>, String> {
    if let Some(problem) = want.iter().find_map(|(k, v)| tag_problem(k, v)) {
        return Err(problem);
    }
    let add: BTreeMap<String, String> = want
        .iter()
        .filter(|(k, v)| match have {
            Some(tags) if is_guard_tag(k) => !tags.contains_key(*k),
            Some(tags) => tags.get(*k) != Some(*v),
            // Not read: a guard tag may be there with another value; leave it.
            None => !is_guard_tag(k),
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let remove: Vec<String> = have
        .into_iter()
        .flat_map(BTreeMap::keys)
        .filter(|k| k.starts_with(PIPELINE_TAG_PREFIX) && !is_guard_tag(k) && !want.contains_key(*k))
        .cloned()
        .collect();
    if let Some(tags) = have {
        let count = tags.len() - remove.len() + add.keys().filter(|k| !tags.contains_key(*k)).count();
        if count > MAX_TAGS {
            return Err(format!(
                "the WorkSpace would carry {count} tags, and a WorkSpaces resource takes at most {MAX_TAGS} (FACTS §4)"
            ));
        }
    }
    Ok((!add.is_empty() || !remove.is_empty()).then_some(MoveStep::Tag { add, remove }))
}

#[cfg(test)]
mod tests;
