//! The mover's planner, rule by rule (each with its source in WORKSPACES-FACTS.md), whole moves
//! with their exact times, a move through the fake WorkSpaces service, and a property test.

use super::*;
use crate::domain::profile::COMPUTE_TYPES;
use crate::domain::workspace::{
    DEFAULT_AUTO_STOP_MINUTES, GROWTH_COOLDOWN_MS, MIGRATE_MIN_AGE_MS, SHRINK_COOLDOWN_MS, is_gpu,
};
use MoveStep::{Done, Impossible, Migrate, Modify, Relocate, Tag, WaitForState, WaitUntil};
use PropertyChange::{ComputeType, RootVolume, UserVolume};

const DIR: &str = "d-9067a1b2c3";
const OTHER_DIR: &str = "d-90670000ff";
const STD: &str = "wsb-stdwin2022";
const PERF: &str = "wsb-perfwin2022";
const G4DN: &str = "wsb-g4dnwin2022";
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// When the WorkSpace of the examples was launched.
const LAUNCH: i64 = 1_000 * DAY;
/// How long a WorkSpace of the model stays UPDATING or PENDING.
const SETTLE: i64 = 20 * MINUTE;

/// The bundles of the model: compute type and root volume a migration brings (the simulator's).
fn bundle(id: &str) -> (&'static str, i32) {
    match id {
        PERF => ("PERFORMANCE", 175),
        G4DN => ("GRAPHICS_G4DN", 100),
        _ => ("STANDARD", 80),
    }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A WorkSpace as the service has it and as its caller knows it.
#[derive(Debug, Clone)]
struct Ws {
    directory_id: String,
    bundle_id: Option<String>,
    state: WorkspaceState,
    properties: WorkspaceProperties,
    /// The service's tags; the caller passes them once it has read them.
    tags: BTreeMap<String, String>,
    tags_read: bool,
    launched_ms: i64,
    last_volume_ms: Option<i64>,
    last_compute_up_ms: Option<i64>,
    last_compute_down_ms: Option<i64>,
}

impl Ws {
    fn current(&self) -> Current<'_> {
        Current {
            directory_id: &self.directory_id,
            bundle_id: self.bundle_id.as_deref(),
            state: &self.state,
            properties: &self.properties,
            tags: self.tags_read.then_some(&self.tags),
            launched_ms: self.launched_ms,
            last_volume_ms: self.last_volume_ms,
            last_compute_up_ms: self.last_compute_up_ms,
            last_compute_down_ms: self.last_compute_down_ms,
        }
    }

    fn volumes(&self) -> (i32, i32) {
        (self.properties.root_volume_gib.unwrap_or(0), self.properties.user_volume_gib.unwrap_or(0))
    }
}

/// A STANDARD WorkSpace of the seed bundle, [80, 50] GiB, ALWAYS_ON, AVAILABLE, launched at LAUNCH.
fn ws() -> Ws {
    Ws {
        directory_id: DIR.into(),
        bundle_id: Some(STD.into()),
        state: WorkspaceState::Available,
        properties: WorkspaceProperties {
            running_mode: Some("ALWAYS_ON".into()),
            auto_stop_minutes: None,
            root_volume_gib: Some(80),
            user_volume_gib: Some(50),
            compute_type: Some("STANDARD".into()),
        },
        tags: BTreeMap::new(),
        tags_read: true,
        launched_ms: LAUNCH,
        last_volume_ms: None,
        last_compute_up_ms: None,
        last_compute_down_ms: None,
    }
}

/// The profile `ws()` already matches: its directory and bundle, ALWAYS_ON, nothing else set.
fn profile() -> Profile {
    Profile {
        directory_id: DIR.into(),
        bundle_id: STD.into(),
        running_mode: RunningMode::AlwaysOn,
        auto_stop_minutes: None,
        compute_type: None,
        root_volume_gib: None,
        user_volume_gib: None,
        root_volume_encrypted: false,
        user_volume_encrypted: false,
        kms_key: None,
        protocols: Vec::new(),
        tags: BTreeMap::new(),
        user_decoupled: false,
    }
}

fn volumes(root: Option<i32>, user: Option<i32>) -> Profile {
    Profile { root_volume_gib: root, user_volume_gib: user, ..profile() }
}

fn compute(c: &str) -> Profile {
    Profile { compute_type: Some(c.into()), ..profile() }
}

fn with_compute(c: &str) -> Ws {
    let mut w = ws();
    w.properties.compute_type = Some(c.into());
    if is_gpu(c) {
        (w.properties.root_volume_gib, w.properties.user_volume_gib) = (Some(100), Some(100));
    }
    w
}

fn with_volumes(root: i32, user: i32) -> Ws {
    let mut w = ws();
    (w.properties.root_volume_gib, w.properties.user_volume_gib) = (Some(root), Some(user));
    w
}

fn in_state(state: WorkspaceState) -> Ws {
    Ws { state, ..ws() }
}

fn auto_stop(minutes: Option<i32>) -> PropertyChange {
    PropertyChange::RunningMode { mode: RunningMode::AutoStop, auto_stop_minutes: minutes }
}

fn wait_until(step: &MoveStep) -> i64 {
    match step {
        WaitUntil { at_ms, .. } => *at_ms,
        other => panic!("expected a wait, got {other:?}"),
    }
}

fn is_impossible(step: &MoveStep, containing: &str) -> bool {
    matches!(step, Impossible { why } if why.contains(containing))
}

fn ready(state: &WorkspaceState) -> bool {
    matches!(state, WorkspaceState::Available | WorkspaceState::Stopped)
}

/// What the service does with a step at `now`, as the fake and the simulator do it, and what
/// its caller then knows; `Err` names a rule the step breaks (the service would refuse it, or
/// the step breaks a promise of the planner).
fn apply(ws: &mut Ws, target: &Profile, step: &MoveStep, now: i64) -> Result<(), String> {
    let since = |last: Option<i64>, launched: i64| now - last.map_or(launched, |t| t.max(launched));
    match step {
        // One variant is one group: a compute type never travels with a volume, nor two volumes.
        Modify(change) => {
            if !ready(&ws.state) {
                return Err(format!("{change:?} asked of a WorkSpace in {}", ws.state));
            }
            let launched = ws.launched_ms;
            let p = &mut ws.properties;
            match change {
                PropertyChange::RunningMode { mode, auto_stop_minutes } => {
                    if *mode == RunningMode::Manual {
                        return Err("MANUAL asked".into());
                    }
                    if let Some(m) = auto_stop_minutes
                        && (*mode != RunningMode::AutoStop || *m <= 0 || m % AUTO_STOP_STEP_MINUTES != 0)
                    {
                        return Err(format!("AutoStop timeout {m} with {mode:?}"));
                    }
                    p.running_mode = Some(mode.as_str().into());
                    p.auto_stop_minutes = if *mode == RunningMode::AutoStop {
                        auto_stop_minutes.or(p.auto_stop_minutes).or(Some(DEFAULT_AUTO_STOP_MINUTES))
                    } else {
                        None
                    };
                }
                ComputeType(to) => {
                    let from = p.compute_type.clone().ok_or("compute change of an unknown type")?;
                    if compute_change(&from, to)? {
                        if since(ws.last_compute_up_ms, launched) < GROWTH_COOLDOWN_MS {
                            return Err(format!("larger compute {to} within 6 hours at {now}"));
                        }
                        ws.last_compute_up_ms = Some(now);
                    } else {
                        if ws.last_compute_down_ms.is_some_and(|t| now - t < SHRINK_COOLDOWN_MS) {
                            return Err(format!("smaller compute {to} within 30 days at {now}"));
                        }
                        ws.last_compute_down_ms = Some(now);
                    }
                    p.compute_type = Some(to.clone());
                }
                RootVolume(gib) | UserVolume(gib) => {
                    let (root, user) = (p.root_volume_gib.unwrap_or(0), p.user_volume_gib.unwrap_or(0));
                    let next = if matches!(change, RootVolume(_)) { (*gib, user) } else { (root, *gib) };
                    if next.0 < root || next.1 < user {
                        return Err(format!("shrink [{root}, {user}] → {next:?}"));
                    }
                    if next == (root, user) {
                        return Err(format!("{change:?} changes nothing"));
                    }
                    let c = p.compute_type.clone().unwrap_or_default();
                    if !volumes_allowed(&c, i64::from(next.0), i64::from(next.1)) {
                        return Err(format!("[{}, {}] is outside the groups for {c}", next.0, next.1));
                    }
                    if since(ws.last_volume_ms, launched) < GROWTH_COOLDOWN_MS {
                        return Err(format!("volume growth within 6 hours at {now}"));
                    }
                    (p.root_volume_gib, p.user_volume_gib) = (Some(next.0), Some(next.1));
                    ws.last_volume_ms = Some(now);
                }
            }
            ws.state = WorkspaceState::Updating;
        }
        Migrate { bundle_id } => {
            if !matches!(ws.state, WorkspaceState::Available | WorkspaceState::Stopped | WorkspaceState::Error) {
                return Err(format!("migration asked of a WorkSpace in {}", ws.state));
            }
            if ws.bundle_id.as_deref() == Some(bundle_id.as_str()) || *bundle_id != target.bundle_id {
                return Err(format!("migration to {bundle_id} from {:?}", ws.bundle_id));
            }
            if now - ws.launched_ms < MIGRATE_MIN_AGE_MS {
                return Err("migration of a WorkSpace younger than 12 hours".into());
            }
            let (c, root) = bundle(bundle_id);
            // The simulator's migration: the bundle's compute and root, the rest kept, a new launch.
            ws.bundle_id = Some(bundle_id.clone());
            ws.properties.compute_type = Some(c.into());
            ws.properties.root_volume_gib = Some(root);
            (ws.launched_ms, ws.last_volume_ms, ws.last_compute_up_ms, ws.last_compute_down_ms) =
                (now, None, None, None);
            ws.state = WorkspaceState::Pending;
        }
        Tag { add, remove } => {
            for key in remove {
                if !key.starts_with(PIPELINE_TAG_PREFIX) || is_guard_tag(key) {
                    return Err(format!("removes the tag {key:?}, which is not the pipeline's to remove"));
                }
                if target.tags.contains_key(key) {
                    return Err(format!("removes the profile's own tag {key:?}"));
                }
                ws.tags.remove(key);
            }
            for (key, value) in add {
                if let Some(problem) = tag_problem(key, value) {
                    return Err(problem);
                }
                if target.tags.get(key) != Some(value) {
                    return Err(format!("sets {key:?}, which the profile does not"));
                }
                if is_guard_tag(key) && ws.tags.get(key).is_some_and(|v| v != value) {
                    return Err(format!("overwrites the guard tag {key:?}"));
                }
                ws.tags.insert(key.clone(), value.clone());
            }
            if ws.tags.len() > MAX_TAGS {
                return Err(format!("{} tags", ws.tags.len()));
            }
            // The caller reads them back (DescribeTags) after setting them.
            ws.tags_read = true;
        }
        WaitForState => {
            if ready(&ws.state) && ws.bundle_id.as_deref().is_none_or(|b| b == target.bundle_id) {
                return Err(format!("waits though the WorkSpace is {}", ws.state));
            }
            ws.state = WorkspaceState::Available;
        }
        WaitUntil { at_ms, why } => {
            if *at_ms <= now || why.is_empty() {
                return Err(format!("waits until {at_ms} at {now} ({why:?})"));
            }
        }
        Relocate => {
            if ws.directory_id == target.directory_id {
                return Err("relocates within its directory".into());
            }
        }
        Done | Impossible { .. } => {}
    }
    Ok(())
}

/// Asks, applies, asks again (at once after a change; after SETTLE when waiting for a state; at
/// the time given when waiting for a cooldown) until Done, Impossible or Relocate: the steps
/// with the time each was given.
fn walk(ws: &mut Ws, target: &Profile, mut now: i64, max_steps: usize) -> Result<Vec<(i64, MoveStep)>, String> {
    let mut taken = Vec::new();
    for _ in 0..max_steps {
        let step = next_step(&ws.current(), target, now);
        apply(ws, target, &step, now).map_err(|e| format!("{e}\n  after {taken:?}"))?;
        taken.push((now, step.clone()));
        match step {
            Done | Impossible { .. } | Relocate => return Ok(taken),
            WaitUntil { at_ms, .. } => now = at_ms,
            WaitForState => now += SETTLE,
            Modify(_) | Migrate { .. } | Tag { .. } => {}
        }
    }
    Err(format!("no end within {max_steps} steps: {taken:?}"))
}

/// The steps of a walk from `from` at `now` that do something (waits left out).
fn changes(mut from: Ws, target: &Profile, now: i64) -> Vec<MoveStep> {
    let walked = walk(&mut from, target, now, 40).unwrap();
    walked.into_iter().map(|(_, s)| s).filter(|s| !matches!(s, WaitForState | WaitUntil { .. })).collect()
}

const LATER: i64 = LAUNCH + 40 * DAY;

// ---------------------------------------------------------------- where the WorkSpace lives

#[test]
fn given_the_workspace_as_the_profile_asks_when_asked_then_done() {
    assert_eq!(next_step(&ws().current(), &profile(), LATER), Done);
    // Only what the profile sets is compared: a POWER [175, 300] WorkSpace is left as it is.
    let mut bigger = with_volumes(175, 300);
    bigger.properties.compute_type = Some("POWER".into());
    assert_eq!(next_step(&bigger.current(), &profile(), LATER), Done);
}

#[test]
fn given_another_directory_when_asked_then_relocate_before_anything_else() {
    // A WorkSpace never changes directory: a new one there, whatever this one's state or bundle.
    let mut w = in_state(WorkspaceState::Updating);
    w.bundle_id = Some(PERF.into());
    let target = Profile { directory_id: OTHER_DIR.into(), compute_type: Some("GRAPHICS_G4DN".into()), ..profile() };
    assert_eq!(next_step(&w.current(), &target, LAUNCH), Relocate);
}

#[test]
fn given_a_workspace_being_terminated_when_asked_then_impossible() {
    for state in [WorkspaceState::Terminating, WorkspaceState::Terminated] {
        let step = next_step(&in_state(state).current(), &compute("POWER"), LATER);
        assert!(is_impossible(&step, "nothing left to move"), "{step:?}");
    }
}

// ---------------------------------------------------------------- bundle (FACTS §2)

#[test]
fn given_another_bundle_when_asked_then_migrate_before_any_property_change() {
    let target =
        Profile { bundle_id: PERF.into(), compute_type: Some("POWER".into()), ..volumes(Some(175), Some(100)) };
    assert_eq!(next_step(&ws().current(), &target, LATER), Migrate { bundle_id: PERF.into() });
    // MigrateWorkspace takes AVAILABLE, STOPPED or ERROR.
    for state in [WorkspaceState::Stopped, WorkspaceState::Error] {
        assert_eq!(next_step(&in_state(state).current(), &target, LATER), Migrate { bundle_id: PERF.into() });
    }
}

#[test]
fn given_another_bundle_and_a_workspace_in_admin_maintenance_or_updating_when_asked_then_wait_for_state() {
    // "WorkSpaces cannot be migrated when they are in ADMIN_MAINTENANCE mode" (AG-migrate-workspaces).
    let target = Profile { bundle_id: PERF.into(), ..profile() };
    for state in [WorkspaceState::AdminMaintenance, WorkspaceState::Updating, WorkspaceState::Pending] {
        assert_eq!(next_step(&in_state(state).current(), &target, LATER), WaitForState);
    }
}

#[test]
fn given_another_bundle_and_a_workspace_younger_than_12_hours_when_asked_then_wait_until_it_is_12_hours_old() {
    // "at least 12 hours old, to ensure that a snapshot of the user volume has been created".
    let target = Profile { bundle_id: PERF.into(), ..profile() };
    let step = next_step(&ws().current(), &target, LAUNCH + HOUR);
    assert_eq!(wait_until(&step), LAUNCH + 12 * HOUR);
    assert_eq!(next_step(&ws().current(), &target, LAUNCH + 12 * HOUR), Migrate { bundle_id: PERF.into() });
}

#[test]
fn given_an_unreported_bundle_when_asked_then_no_migration_is_guessed() {
    let mut w = ws();
    w.bundle_id = None;
    assert_eq!(next_step(&w.current(), &Profile { bundle_id: PERF.into(), ..profile() }, LATER), Done);
}

#[test]
fn given_a_migration_when_applied_then_the_new_workspace_is_compared_again() {
    // GIVEN a STANDARD [80, 50] WorkSpace moving to the PERFORMANCE bundle with a larger user volume
    let target = Profile { bundle_id: PERF.into(), ..volumes(None, Some(100)) };
    // WHEN walked THEN it migrates, waits for the new WorkSpace, then grows the user volume
    // 6 hours after the new launch (the migration brought the bundle's 175 GiB root).
    let mut w = ws();
    let walked = walk(&mut w, &target, LATER, 20).unwrap();
    let steps: Vec<&MoveStep> = walked.iter().map(|(_, s)| s).collect();
    assert_eq!(steps[0], &Migrate { bundle_id: PERF.into() });
    assert_eq!(steps[1], &WaitForState);
    assert_eq!(walked[2], (LATER + SETTLE, WaitUntil { at_ms: LATER + 6 * HOUR, why: VOLUME_COOLDOWN.into() }));
    // (the model shows a change at once: Done while UPDATING; the service shows it once made)
    assert_eq!(steps[3..], [&Modify(UserVolume(100)), &Done]);
    assert_eq!((w.bundle_id.as_deref(), w.volumes()), (Some(PERF), (175, 100)));
}

// ---------------------------------------------------------------- compute type (FACTS §1)

#[test]
fn given_a_larger_compute_type_when_six_hours_have_passed_since_launch_then_modify_it() {
    assert_eq!(
        next_step(&ws().current(), &compute("PERFORMANCE"), LAUNCH + 6 * HOUR),
        Modify(ComputeType("PERFORMANCE".into()))
    );
}

#[test]
fn given_a_larger_compute_type_within_six_hours_of_launch_or_of_the_last_increase_when_asked_then_wait_until_then() {
    // "For a newly launched WorkSpace, you must wait 6 hours before requesting a larger bundle."
    let step = next_step(&ws().current(), &compute("POWER"), LAUNCH + HOUR);
    assert_eq!(step, WaitUntil { at_ms: LAUNCH + 6 * HOUR, why: COMPUTE_UP_COOLDOWN.into() });
    // "You can request a larger bundle once in a 6-hour period."
    let mut w = ws();
    w.last_compute_up_ms = Some(LAUNCH + 10 * DAY);
    assert_eq!(
        wait_until(&next_step(&w.current(), &compute("POWER"), LAUNCH + 10 * DAY + HOUR)),
        LAUNCH + 10 * DAY + 6 * HOUR
    );
    // A decrease does not hold back an increase.
    w.last_compute_up_ms = None;
    w.last_compute_down_ms = Some(LAUNCH + 10 * DAY);
    assert_eq!(
        next_step(&w.current(), &compute("POWER"), LAUNCH + 10 * DAY + HOUR),
        Modify(ComputeType("POWER".into()))
    );
}

#[test]
fn given_a_smaller_compute_type_when_asked_then_once_every_30_days_and_not_held_by_the_launch() {
    // "... or a smaller bundle once every 30 days."
    let power = with_compute("POWER");
    assert_eq!(next_step(&power.current(), &compute("VALUE"), LAUNCH + HOUR), Modify(ComputeType("VALUE".into())));
    let mut w = power;
    w.last_compute_down_ms = Some(LAUNCH + DAY);
    let step = next_step(&w.current(), &compute("VALUE"), LAUNCH + 2 * DAY);
    assert_eq!(step, WaitUntil { at_ms: LAUNCH + 31 * DAY, why: COMPUTE_DOWN_COOLDOWN.into() });
    assert_eq!(next_step(&w.current(), &compute("VALUE"), LAUNCH + 31 * DAY), Modify(ComputeType("VALUE".into())));
}

#[test]
fn given_a_compute_change_across_gpu_without_a_bundle_change_when_asked_then_impossible() {
    // "You cannot change the compute type of Graphics.g4dn and GraphicsPro.g4dn to any other value."
    for (from, to) in [("STANDARD", "GRAPHICS_G4DN"), ("GRAPHICS_G4DN", "POWER"), ("GRAPHICS", "GRAPHICSPRO")] {
        let step = next_step(&with_compute(from).current(), &compute(to), LATER);
        assert!(is_impossible(&step, "migrate to another bundle"), "{from} → {to}: {step:?}");
    }
    // "You can change the compute type from Graphics.g4dn to GraphicsPro.g4dn and vice versa."
    let g4dn = with_compute("GRAPHICS_G4DN");
    assert_eq!(
        next_step(&g4dn.current(), &compute("GRAPHICSPRO_G4DN"), LATER),
        Modify(ComputeType("GRAPHICSPRO_G4DN".into()))
    );
}

// ---------------------------------------------------------------- running mode (FACTS §1)

#[test]
fn given_another_running_mode_when_asked_then_modify_it_at_any_time_with_the_profiles_timeout() {
    // "You can switch between running modes at any time" (AG-running-mode): no cooldown, even at launch.
    let target = Profile { running_mode: RunningMode::AutoStop, auto_stop_minutes: Some(120), ..profile() };
    assert_eq!(next_step(&ws().current(), &target, LAUNCH), Modify(auto_stop(Some(120))));
    let mut w = ws();
    w.properties.running_mode = Some("AUTO_STOP".into());
    w.properties.auto_stop_minutes = Some(60);
    assert_eq!(next_step(&w.current(), &target, LAUNCH), Modify(auto_stop(Some(120))), "the timeout alone");
    // ALWAYS_ON carries no timeout ("AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace").
    let always_on = PropertyChange::RunningMode { mode: RunningMode::AlwaysOn, auto_stop_minutes: None };
    assert_eq!(next_step(&w.current(), &profile(), LAUNCH), Modify(always_on));
}

#[test]
fn given_an_auto_stop_profile_without_a_timeout_when_the_workspace_is_auto_stop_then_its_timeout_is_left_as_is() {
    let mut w = ws();
    w.properties.running_mode = Some("AUTO_STOP".into());
    w.properties.auto_stop_minutes = Some(180);
    let target = Profile { running_mode: RunningMode::AutoStop, ..profile() };
    assert_eq!(next_step(&w.current(), &target, LAUNCH), Done);
}

#[test]
fn given_a_running_mode_the_service_refuses_when_asked_then_impossible() {
    // MANUAL "is only supported by Amazon WorkSpaces Core"; the timeout is "Configured in 60-minute intervals".
    let manual = Profile { running_mode: RunningMode::Manual, ..profile() };
    assert!(is_impossible(&next_step(&ws().current(), &manual, LATER), "MANUAL"));
    let odd = Profile { running_mode: RunningMode::AutoStop, auto_stop_minutes: Some(90), ..profile() };
    assert!(is_impossible(&next_step(&ws().current(), &odd, LATER), "60-minute intervals"));
}

// ---------------------------------------------------------------- volumes (FACTS §1)

#[test]
fn given_80_50_and_a_target_of_175_100_when_planned_then_user_100_first_then_root_175() {
    // "To increase the root volume, you must first change the user volume to 100 GB."
    assert_eq!(volume_path("STANDARD", (80, 50), (175, 100)), Ok(vec![UserVolume(100), RootVolume(175)]));
    assert_eq!(
        changes(with_volumes(80, 50), &volumes(Some(175), Some(100)), LATER),
        [Modify(UserVolume(100)), Modify(RootVolume(175)), Done]
    );
}

#[test]
fn given_80_10_and_a_target_of_175_500_when_planned_then_user_100_root_175_then_user_500() {
    // "... After the root volume has been changed ..., you can then update the user volume further."
    assert_eq!(
        volume_path("STANDARD", (80, 10), (175, 500)),
        Ok(vec![UserVolume(100), RootVolume(175), UserVolume(500)])
    );
}

#[test]
fn given_volumes_within_one_group_when_planned_then_the_shortest_path_root_first() {
    assert_eq!(volume_path("STANDARD", (80, 10), (80, 50)), Ok(vec![UserVolume(50)]));
    assert_eq!(volume_path("STANDARD", (80, 100), (175, 100)), Ok(vec![RootVolume(175)]));
    assert_eq!(volume_path("STANDARD", (175, 100), (300, 200)), Ok(vec![RootVolume(300), UserVolume(200)]));
    // GPU bundles: both 100-2000, any order; no small group.
    assert_eq!(volume_path("GRAPHICS_G4DN", (100, 100), (150, 300)), Ok(vec![RootVolume(150), UserVolume(300)]));
    assert_eq!(volume_path("STANDARD", (175, 100), (175, 100)), Ok(vec![]));
}

#[test]
fn given_a_smaller_volume_when_asked_then_impossible() {
    // "you cannot decrease the size of the root or user volumes after you launch a WorkSpace".
    let step = next_step(&with_volumes(175, 200).current(), &volumes(None, Some(100)), LATER);
    assert!(is_impossible(&step, "volumes only grow"), "{step:?}");
    assert!(volume_path("STANDARD", (175, 100), (80, 100)).is_err());
}

#[test]
fn given_a_pair_outside_the_documented_groups_when_asked_then_impossible() {
    // "If the root volume is 80 GB, the user volume can only be 10, 50, or 100 GB": a profile
    // that grows the user volume past 100 GiB and leaves the root as it is cannot be reached.
    let step = next_step(&ws().current(), &volumes(None, Some(500)), LATER);
    assert!(is_impossible(&step, "[80, 500] GiB is not a documented"), "{step:?}");
    // "the root volume cannot be less than 175 GB when the user volume is 100 GB" (non-GPU).
    assert!(volume_path("STANDARD", (80, 100), (100, 100)).is_err());
    assert!(volume_path("GRAPHICS_G4DN", (100, 100), (100, 2001)).is_err());
}

#[test]
fn given_volume_growth_within_six_hours_of_launch_or_the_last_growth_when_asked_then_wait_until_then() {
    // "When you launch a WorkSpace, you must wait 6 hours before you can modify the sizes of its volumes."
    let target = volumes(None, Some(100));
    assert_eq!(
        next_step(&ws().current(), &target, LAUNCH + 5 * HOUR),
        WaitUntil { at_ms: LAUNCH + 6 * HOUR, why: VOLUME_COOLDOWN.into() }
    );
    // "you can expand both volumes once in a 6-hour period"
    let mut w = ws();
    w.last_volume_ms = Some(LATER);
    assert_eq!(wait_until(&next_step(&w.current(), &target, LATER + HOUR)), LATER + 6 * HOUR);
    assert_eq!(next_step(&w.current(), &target, LATER + 6 * HOUR), Modify(UserVolume(100)));
}

#[test]
fn given_unreported_properties_that_the_profile_sets_when_asked_then_impossible_until_read_again() {
    let mut w = ws();
    w.properties.root_volume_gib = None;
    assert!(is_impossible(&next_step(&w.current(), &volumes(Some(175), Some(100)), LATER), "read the WorkSpace again"));
    assert_eq!(next_step(&w.current(), &profile(), LATER), Done, "not compared when the profile leaves it");
}

// ---------------------------------------------------------------- state (FACTS §1)

#[test]
fn given_a_property_change_and_a_workspace_neither_available_nor_stopped_when_asked_then_wait_for_state() {
    // "If you want to modify a WorkSpace, it must have a status of AVAILABLE or STOPPED."
    let target = compute("PERFORMANCE");
    for state in
        [WorkspaceState::Updating, WorkspaceState::Pending, WorkspaceState::Starting, WorkspaceState::AdminMaintenance]
    {
        assert_eq!(next_step(&in_state(state).current(), &target, LATER), WaitForState);
    }
    assert_eq!(
        next_step(&in_state(WorkspaceState::Stopped).current(), &target, LATER),
        Modify(ComputeType("PERFORMANCE".into()))
    );
}

#[test]
fn given_a_property_change_and_a_workspace_in_error_when_asked_then_impossible() {
    let step = next_step(&in_state(WorkspaceState::Error).current(), &compute("PERFORMANCE"), LATER);
    assert!(is_impossible(&step, "ERROR"), "{step:?}");
}

// ---------------------------------------------------------------- tags (FACTS §4)

#[test]
fn given_the_profiles_tags_missing_or_different_when_asked_then_they_are_set_and_the_pipelines_stale_ones_removed() {
    let mut w = ws();
    w.tags =
        tags(&[("CostCenter", "IT"), ("owner", "it-ops"), ("hr-pipeline:dept", "sales"), ("hr-pipeline:tier", "gold")]);
    let target = Profile { tags: tags(&[("CostCenter", "ENG"), ("hr-pipeline:dept", "eng")]), ..profile() };
    assert_eq!(
        next_step(&w.current(), &target, LATER),
        Tag {
            add: tags(&[("CostCenter", "ENG"), ("hr-pipeline:dept", "eng")]),
            remove: vec!["hr-pipeline:tier".into()]
        }
    );
}

#[test]
fn given_tags_the_pipeline_does_not_own_or_guard_tags_when_asked_then_they_are_never_removed_nor_overwritten() {
    let mut w = ws();
    w.tags = tags(&[("owner", "it-ops"), (PROTECT_TAG_KEY, "true"), (MANAGED_TAG_KEY, "true")]);
    assert_eq!(next_step(&w.current(), &profile(), LATER), Done, "nothing of theirs is removed");
    let target = Profile { tags: tags(&[(PROTECT_TAG_KEY, "false"), (MANAGED_TAG_KEY, "no")]), ..profile() };
    assert_eq!(next_step(&w.current(), &target, LATER), Done, "nor overwritten");
    w.tags.remove(MANAGED_TAG_KEY);
    assert_eq!(
        next_step(&w.current(), &target, LATER),
        Tag { add: tags(&[(MANAGED_TAG_KEY, "no")]), remove: vec![] },
        "added when missing"
    );
}

#[test]
fn given_tags_not_read_when_asked_then_the_profiles_are_set_and_none_removed() {
    let mut w = ws();
    w.tags_read = false;
    let target = Profile { tags: tags(&[("CostCenter", "ENG"), (PROTECT_TAG_KEY, "false")]), ..profile() };
    assert_eq!(next_step(&w.current(), &target, LATER), Tag { add: tags(&[("CostCenter", "ENG")]), remove: vec![] });
}

#[test]
fn given_tags_the_service_refuses_when_asked_then_impossible() {
    // "Each WorkSpaces resource can have a maximum of 50 tags."
    let mut w = ws();
    w.tags = (0..49).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let target = Profile { tags: tags(&[("a", "1"), ("b", "2")]), ..profile() };
    assert!(is_impossible(&next_step(&w.current(), &target, LATER), "at most 50"));
    // Letters, numbers, spaces and + - = . _ : / @ only; no aws: prefix.
    let odd = Profile { tags: tags(&[("cost*center", "x")]), ..profile() };
    assert!(is_impossible(&next_step(&ws().current(), &odd, LATER), "not allowed"));
}

#[test]
fn given_tags_and_a_property_change_waiting_for_its_state_when_asked_then_the_tags_go_first() {
    let target = Profile { tags: tags(&[("hr-pipeline:dept", "eng")]), ..compute("PERFORMANCE") };
    let updating = in_state(WorkspaceState::Updating);
    assert_eq!(
        next_step(&updating.current(), &target, LATER),
        Tag { add: tags(&[("hr-pipeline:dept", "eng")]), remove: vec![] }
    );
}

// ---------------------------------------------------------------- whole moves

#[test]
fn given_a_workspace_differing_in_everything_when_walked_then_each_group_in_order_at_its_exact_time() {
    // GIVEN a STANDARD [80, 50] ALWAYS_ON WorkSpace launched an hour ago, with a stale pipeline
    // tag, someone else's tag and a protect tag
    let mut w = ws();
    w.tags =
        tags(&[("CostCenter", "IT"), ("owner", "it-ops"), ("hr-pipeline:team", "sales"), (PROTECT_TAG_KEY, "true")]);
    let target = Profile {
        running_mode: RunningMode::AutoStop,
        auto_stop_minutes: Some(120),
        compute_type: Some("PERFORMANCE".into()),
        root_volume_gib: Some(175),
        user_volume_gib: Some(200),
        tags: tags(&[("CostCenter", "ENG"), ("hr-pipeline:dept", "eng")]),
        ..profile()
    };
    let t = LAUNCH + HOUR;
    // WHEN walked
    let walked = walk(&mut w, &target, t, 40).unwrap();
    // THEN the running mode at once (the compute type waits for 6 h from launch), the tags while
    // it updates, then compute, user 100, root 175, user 200, each 6 hours after the last growth
    let up = LAUNCH + 6 * HOUR;
    assert_eq!(
        walked,
        vec![
            (t, Modify(auto_stop(Some(120)))),
            (
                t,
                Tag {
                    add: tags(&[("CostCenter", "ENG"), ("hr-pipeline:dept", "eng")]),
                    remove: vec!["hr-pipeline:team".into()]
                }
            ),
            (t, WaitForState),
            (t + SETTLE, WaitUntil { at_ms: up, why: COMPUTE_UP_COOLDOWN.into() }),
            (up, Modify(ComputeType("PERFORMANCE".into()))),
            (up, WaitForState),
            (up + SETTLE, Modify(UserVolume(100))),
            (up + SETTLE, WaitForState),
            (up + 2 * SETTLE, WaitUntil { at_ms: up + SETTLE + 6 * HOUR, why: VOLUME_COOLDOWN.into() }),
            (up + SETTLE + 6 * HOUR, Modify(RootVolume(175))),
            (up + SETTLE + 6 * HOUR, WaitForState),
            (up + 2 * SETTLE + 6 * HOUR, WaitUntil { at_ms: up + SETTLE + 12 * HOUR, why: VOLUME_COOLDOWN.into() }),
            (up + SETTLE + 12 * HOUR, Modify(UserVolume(200))),
            (up + SETTLE + 12 * HOUR, Done),
        ]
    );
    // and someone else's tag and the protect tag are still there
    assert_eq!(
        w.tags,
        tags(&[("CostCenter", "ENG"), ("hr-pipeline:dept", "eng"), ("owner", "it-ops"), (PROTECT_TAG_KEY, "true")])
    );
}

#[test]
fn given_a_smaller_compute_type_held_for_30_days_when_asked_then_the_volumes_do_not_wait_for_it() {
    let mut w = with_compute("POWER");
    w.last_compute_down_ms = Some(LATER - DAY);
    let target = Profile { compute_type: Some("STANDARD".into()), ..volumes(None, Some(100)) };
    assert_eq!(next_step(&w.current(), &target, LATER), Modify(UserVolume(100)));
    let mut done = w.clone();
    apply(&mut done, &target, &Modify(UserVolume(100)), LATER).unwrap();
    done.state = WorkspaceState::Available;
    assert_eq!(
        next_step(&done.current(), &target, LATER + HOUR),
        WaitUntil { at_ms: LATER + 29 * DAY, why: COMPUTE_DOWN_COOLDOWN.into() }
    );
}

#[test]
fn given_a_step_applied_when_asked_again_then_the_plan_moves_on_and_at_the_target_says_done() {
    let target = volumes(Some(175), Some(100));
    let mut w = with_volumes(80, 50);
    let first = next_step(&w.current(), &target, LATER);
    assert_eq!(first, next_step(&w.current(), &target, LATER), "the same question, the same answer");
    apply(&mut w, &target, &first, LATER).unwrap();
    w.state = WorkspaceState::Available;
    let second = next_step(&w.current(), &target, LATER + 6 * HOUR);
    assert_eq!(second, Modify(RootVolume(175)));
    apply(&mut w, &target, &second, LATER + 6 * HOUR).unwrap();
    w.state = WorkspaceState::Available;
    assert_eq!(next_step(&w.current(), &target, LATER + 6 * HOUR), Done);
    assert_eq!(next_step(&w.current(), &target, LATER + 100 * DAY), Done, "and stays done");
}

// ---------------------------------------------------------------- through the fake service

mod through_the_fake {
    use super::*;
    use crate::ports::WorkspacesApi;
    use crate::testing::{FakeWorkspaces, ManualClock};

    /// Performs each step on the fake WorkSpaces service (which refuses what the service
    /// refuses), keeping the times the planner needs, until Done: every call must be accepted.
    async fn move_on_the_fake(target: &Profile, max_steps: usize) -> (FakeWorkspaces, String, Vec<MoveStep>) {
        let clock = ManualClock::new(LAUNCH);
        let fake = FakeWorkspaces::new(clock.clone());
        let lifecycle = fake.lifecycle();
        let mut id = fake.seed(DIR, "jdoe", WorkspaceState::Available);
        let (mut launched, mut last_volume, mut last_up, mut last_down) = (LAUNCH, None, None, None);
        let mut taken = Vec::new();
        for _ in 0..max_steps {
            let info = fake.workspace(&id).unwrap();
            let properties = info.properties.clone().unwrap();
            let read_tags = fake.tags(&id).await.unwrap();
            let current = Current {
                directory_id: &info.directory_id,
                bundle_id: info.bundle_id.as_deref(),
                state: &info.state,
                properties: &properties,
                tags: Some(&read_tags),
                launched_ms: launched,
                last_volume_ms: last_volume,
                last_compute_up_ms: last_up,
                last_compute_down_ms: last_down,
            };
            let now = clock.now_ms();
            let step = next_step(&current, target, now);
            taken.push(step.clone());
            match &step {
                Done => return (fake, id, taken),
                Modify(change) => {
                    fake.modify_properties(&id, change).await.unwrap_or_else(|e| panic!("{change:?} refused: {e}"));
                    match change {
                        RootVolume(_) | UserVolume(_) => last_volume = Some(now),
                        ComputeType(to) if compute_change(properties.compute_type.as_deref().unwrap(), to).unwrap() => {
                            last_up = Some(now)
                        }
                        ComputeType(_) => last_down = Some(now),
                        PropertyChange::RunningMode { .. } => {}
                    }
                }
                Migrate { bundle_id } => {
                    id = fake.migrate(&id, bundle_id).await.unwrap();
                    (launched, last_volume, last_up, last_down) = (now, None, None, None);
                }
                Tag { add, remove } => {
                    if !remove.is_empty() {
                        fake.delete_tags(&id, remove).await.unwrap();
                    }
                    if !add.is_empty() {
                        fake.create_tags(&id, add).await.unwrap();
                    }
                }
                WaitForState => {
                    clock.advance(lifecycle.update_ms.max(lifecycle.migrate_ms));
                }
                WaitUntil { at_ms, .. } => clock.set(*at_ms),
                Relocate | Impossible { .. } => panic!("{step:?} after {taken:?}"),
            }
        }
        panic!("not done within {max_steps} steps: {taken:?}")
    }

    #[tokio::test]
    async fn given_a_move_to_another_bundle_and_properties_when_performed_on_the_fake_then_every_call_is_accepted_and_it_ends_done()
     {
        // GIVEN the seed's STANDARD [80, 50] ALWAYS_ON WorkSpace, just launched
        let target = Profile {
            bundle_id: PERF.into(),
            running_mode: RunningMode::AutoStop,
            compute_type: Some("POWER".into()),
            user_volume_gib: Some(300),
            tags: tags(&[("hr-pipeline:dept", "eng")]),
            ..profile()
        };
        // WHEN each step is performed on the fake
        let (fake, id, taken) = move_on_the_fake(&target, 40).await;
        // THEN it migrated once, to the PERFORMANCE bundle, and ended as the profile asks
        assert_eq!(taken.iter().filter(|s| matches!(s, Migrate { .. })).count(), 1, "{taken:?}");
        assert!(matches!(taken[0], WaitUntil { .. }), "12 hours before the migration: {taken:?}");
        let info = fake.workspace(&id).unwrap();
        let p = info.properties.unwrap();
        assert_eq!(info.bundle_id.as_deref(), Some(PERF));
        assert_eq!(p.compute_type.as_deref(), Some("POWER"));
        assert_eq!(
            (p.running_mode.as_deref(), p.auto_stop_minutes),
            (Some("AUTO_STOP"), Some(DEFAULT_AUTO_STOP_MINUTES))
        );
        assert_eq!((p.root_volume_gib, p.user_volume_gib), (Some(175), Some(300)));
        assert_eq!(fake.tags(&id).await.unwrap(), tags(&[("hr-pipeline:dept", "eng")]));
    }

    #[tokio::test]
    async fn given_the_documented_volume_bridge_when_performed_on_the_fake_then_every_call_is_accepted() {
        // GIVEN [80, 50] on STANDARD WHEN moved to [175, 100] THEN user 100, then root 175, accepted
        let (fake, id, taken) = move_on_the_fake(&volumes(Some(175), Some(100)), 20).await;
        let modified: Vec<&MoveStep> = taken.iter().filter(|s| matches!(s, Modify(_))).collect();
        assert_eq!(modified, [&Modify(UserVolume(100)), &Modify(RootVolume(175))]);
        let p = fake.workspace(&id).unwrap().properties.unwrap();
        assert_eq!((p.root_volume_gib, p.user_volume_gib), (Some(175), Some(100)));
    }
}

// ---------------------------------------------------------------- property test

mod property {
    use super::*;
    use proptest::prelude::*;

    const CURRENT_TAG_KEYS: [&str; 6] =
        ["CostCenter", "owner", "hr-pipeline:team", "hr-pipeline:tier", MANAGED_TAG_KEY, PROTECT_TAG_KEY];
    const PROFILE_TAG_KEYS: [&str; 4] = ["CostCenter", "hr-pipeline:team", "hr-pipeline:dept", MANAGED_TAG_KEY];
    const TAG_VALUES: [&str; 3] = ["IT", "ENG", "true"];
    const BUNDLES: [&str; 3] = [STD, PERF, G4DN];

    /// A [root, user] pair the documented groups allow for `compute`.
    fn allowed_pair(compute: &str) -> BoxedStrategy<(i32, i32)> {
        if is_gpu(compute) {
            (100..=2000, 100..=2000).boxed()
        } else {
            prop_oneof![prop::sample::select(vec![10, 50, 100]).prop_map(|u| (80, u)), (175..=2000, 100..=2000)].boxed()
        }
    }

    fn tag_map(keys: &'static [&'static str]) -> impl Strategy<Value = BTreeMap<String, String>> {
        prop::collection::btree_map(
            prop::sample::select(keys),
            prop::sample::select(TAG_VALUES.to_vec()),
            0..=keys.len(),
        )
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    fn state() -> impl Strategy<Value = WorkspaceState> {
        prop::sample::select(vec![
            WorkspaceState::Available,
            WorkspaceState::Available,
            WorkspaceState::Available,
            WorkspaceState::Stopped,
            WorkspaceState::Updating,
            WorkspaceState::Pending,
            WorkspaceState::AdminMaintenance,
        ])
    }

    fn mode() -> impl Strategy<Value = (RunningMode, Option<i32>)> {
        prop_oneof![
            Just((RunningMode::AlwaysOn, None)),
            prop::option::of(1..=48i32).prop_map(|h| (RunningMode::AutoStop, h.map(|h| h * AUTO_STOP_STEP_MINUTES))),
        ]
    }

    /// Any allowed WorkSpace: a compute type, a pair of its groups, a mode, a state, a bundle,
    /// tags (read or not) and cooldown times up to 40 days back.
    fn workspace() -> impl Strategy<Value = Ws> {
        prop::sample::select(COMPUTE_TYPES)
            .prop_flat_map(|c| (Just(c), allowed_pair(c)))
            .prop_flat_map(|(c, pair)| {
                (
                    Just((c, pair)),
                    mode(),
                    state(),
                    prop::sample::select(BUNDLES.to_vec()),
                    tag_map(&CURRENT_TAG_KEYS),
                    prop::bool::weighted(0.9),
                    0..40 * DAY,
                    prop::array::uniform3(prop::option::of(0..40 * DAY)),
                )
            })
            .prop_map(|((c, (root, user)), (mode, minutes), state, bundle_id, tags, tags_read, age, lasts)| {
                let launched_ms = LATER - age;
                let [last_volume_ms, last_compute_up_ms, last_compute_down_ms] =
                    lasts.map(|l| l.map(|back| (LATER - back).max(launched_ms)));
                Ws {
                    directory_id: DIR.into(),
                    bundle_id: Some(bundle_id.into()),
                    state,
                    properties: WorkspaceProperties {
                        running_mode: Some(mode.as_str().into()),
                        auto_stop_minutes: if mode == RunningMode::AutoStop { minutes.or(Some(60)) } else { None },
                        root_volume_gib: Some(root),
                        user_volume_gib: Some(user),
                        compute_type: Some(c.into()),
                    },
                    tags,
                    tags_read,
                    launched_ms,
                    last_volume_ms,
                    last_compute_up_ms,
                    last_compute_down_ms,
                }
            })
    }

    /// Any profile: mostly this directory, any bundle, optional compute type, volumes (often an
    /// allowed pair, sometimes anything), a mode and tags.
    fn target() -> impl Strategy<Value = Profile> {
        let volumes =
            prop_oneof![prop::sample::select(COMPUTE_TYPES).prop_flat_map(allowed_pair), (80..=2000, 10..=2000),];
        (
            prop::bool::weighted(0.95),
            prop::sample::select(BUNDLES.to_vec()),
            prop::option::of(prop::sample::select(COMPUTE_TYPES)),
            volumes,
            prop::bool::ANY,
            prop::bool::ANY,
            mode(),
            tag_map(&PROFILE_TAG_KEYS),
        )
            .prop_map(
                |(same_dir, bundle_id, c, (root, user), set_root, set_user, (running_mode, minutes), tags)| Profile {
                    directory_id: if same_dir { DIR.into() } else { OTHER_DIR.into() },
                    bundle_id: bundle_id.into(),
                    running_mode,
                    auto_stop_minutes: minutes,
                    compute_type: c.map(Into::into),
                    root_volume_gib: set_root.then_some(root),
                    user_volume_gib: set_user.then_some(user),
                    tags,
                    ..profile()
                },
            )
    }

    /// Whether the WorkSpace is as the profile asks, for what the profile sets.
    fn at_target(ws: &Ws, target: &Profile) -> bool {
        let p = &ws.properties;
        ws.bundle_id.as_deref() == Some(target.bundle_id.as_str())
            && target.compute_type.as_ref().is_none_or(|c| p.compute_type.as_ref() == Some(c))
            && p.running_mode.as_deref() == Some(target.running_mode.as_str())
            && (target.running_mode != RunningMode::AutoStop
                || target.auto_stop_minutes.is_none_or(|m| p.auto_stop_minutes == Some(m)))
            && target.root_volume_gib.is_none_or(|g| p.root_volume_gib == Some(g))
            && target.user_volume_gib.is_none_or(|g| p.user_volume_gib == Some(g))
            && target.tags.iter().all(|(k, v)| {
                ws.tags.get(k) == Some(v) || is_guard_tag(k) && (ws.tags.contains_key(k) || !ws.tags_read)
            })
            // Tags never read are set, never removed (the documented meaning of `tags: None`).
            && (!ws.tags_read
                || ws.tags.keys().all(|k| !k.starts_with(PIPELINE_TAG_PREFIX) || is_guard_tag(k) || target.tags.contains_key(k)))
    }

    /// Whether the profile can plainly be reached without a migration: no shrink, a compute
    /// change the service makes, an allowed target pair, a mode it takes, at most 50 tags.
    fn plainly_reachable(ws: &Ws, target: &Profile) -> bool {
        let p = &ws.properties;
        let c = p.compute_type.clone().unwrap_or_default();
        let (root, user) = ws.volumes();
        let want = (target.root_volume_gib.unwrap_or(root), target.user_volume_gib.unwrap_or(user));
        let tag_count = ws.tags.keys().chain(target.tags.keys()).collect::<std::collections::BTreeSet<_>>().len();
        ws.bundle_id.as_deref() == Some(target.bundle_id.as_str())
            && target.compute_type.as_deref().is_none_or(|to| compute_change(&c, to).is_ok())
            && want.0 >= root
            && want.1 >= user
            && volumes_allowed(&c, i64::from(want.0), i64::from(want.1))
            && target.running_mode != RunningMode::Manual
            && tag_count <= MAX_TAGS
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn given_any_allowed_workspace_and_profile_when_walked_then_every_step_is_allowed_and_it_ends_within_bounds(
            start in workspace(),
            target in target(),
        ) {
            // WHEN the planner's steps are applied, time moving past its waits
            let mut ws = start.clone();
            let walked = walk(&mut ws, &target, LATER, 40);
            // THEN no step broke a rule (apply refuses shrinks, pairs outside the groups, changes
            // in the wrong state or within a cooldown, foreign or guard tags removed, ...) and the
            // walk ended within 40 steps
            let walked = walked.map_err(TestCaseError::fail)?;
            let (_, last) = walked.last().cloned().unwrap_or((0, Done));
            match &last {
                Done => prop_assert!(at_target(&ws, &target), "done but not there: {ws:?}"),
                Relocate => prop_assert_eq!(walked.len(), 1, "relocating is the first and only step"),
                Impossible { why } => prop_assert!(
                    !plainly_reachable(&ws, &target) || ws.state == WorkspaceState::Error,
                    "impossible ({why}) though plainly reachable: {ws:?}"
                ),
                other => prop_assert!(false, "ended on {other:?}"),
            }
            // and whatever the end, tags the pipeline does not own and guard tags are untouched
            for (k, v) in &start.tags {
                if !k.starts_with(PIPELINE_TAG_PREFIX) || is_guard_tag(k) {
                    let kept = ws.tags.get(k) == Some(v) || target.tags.contains_key(k) && !is_guard_tag(k);
                    prop_assert!(kept, "the tag {k:?} was changed: {:?}", ws.tags);
                }
            }
            // and a walk from where it ended says the same at once
            if matches!(last, Done) {
                prop_assert_eq!(next_step(&ws.current(), &target, LATER + 400 * DAY), Done);
            }
        }
    }
}
