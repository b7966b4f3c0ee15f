//! WorkSpaces in memory, with the simulator's behaviour (`infra/simulator/src/api/workspaces.rs`):
//! the same validation and codes, per-item answers, and the asynchronous lifecycle on a clock
//! the test can move. The contract suite ([`super::contract::workspaces`]) runs on this fake and
//! on the simulator through the real adapter.

use super::directory::DirectoryBook;
use super::{Faults, lock};
use crate::domain::profile::RunningMode;
use crate::domain::workspace::{
    AUTO_STOP_STEP_MINUTES, DEFAULT_AUTO_STOP_MINUTES, GROWTH_COOLDOWN_MS, MAX_PER_CALL, MAX_TAG_KEY, MAX_TAG_VALUE,
    MAX_TAGS, PROTECT_TAG_KEY, PropertyChange, RESERVED_TAG_PREFIX, SHRINK_COOLDOWN_MS, UNDEFINED_USER,
    WorkspaceProperties, WorkspaceState, compute_change, tag_text_problem, volumes_allowed,
};
use crate::ports::{
    Clock, CreateItem, CreateResponse, FailedCreate, FailedTerminate, MAX_TAGGED_PER_READ, SystemClock, WorkspaceInfo,
    WorkspacePage, WorkspaceTags, WorkspacesApi, WorkspacesError,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Delays of the lifecycle in milliseconds of the fake's clock; the simulator's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// PENDING → AVAILABLE (or ERROR).
    pub create_ms: i64,
    /// How long a new id is missing from DescribeWorkspaces (eventual consistency).
    pub invisible_ms: i64,
    /// TERMINATING → TERMINATED.
    pub terminate_ms: i64,
    /// How long TERMINATED stays visible before the id disappears.
    pub terminated_visible_ms: i64,
    /// UPDATING after ModifyWorkspaceProperties, then back with the change.
    pub update_ms: i64,
    /// MigrateWorkspace: the target is PENDING this long, then AVAILABLE, and the source gone.
    pub migrate_ms: i64,
    /// Between two volume growths, and from launch to the first one.
    pub volume_cooldown_ms: i64,
    /// Between two compute-type increases, and from launch to the first one.
    pub compute_up_cooldown_ms: i64,
    /// Between two compute-type decreases.
    pub compute_down_cooldown_ms: i64,
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
            volume_cooldown_ms: GROWTH_COOLDOWN_MS,
            compute_up_cooldown_ms: GROWTH_COOLDOWN_MS,
            compute_down_cooldown_ms: SHRINK_COOLDOWN_MS,
        }
    }
}

/// A bundle's compute type and root and user volume sizes (GiB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleSpec {
    pub compute_type: String,
    pub root_gib: i32,
    pub user_gib: i32,
}

/// The bundles of the local seed (`infra/local/seed.json`), which the fake knows by default.
fn seed_bundles() -> BTreeMap<String, BundleSpec> {
    let spec = |c: &str, root_gib, user_gib| BundleSpec { compute_type: c.into(), root_gib, user_gib };
    BTreeMap::from([
        (DEFAULT_BUNDLE.to_owned(), spec("STANDARD", 80, 50)),
        ("wsb-perfwin2022".to_owned(), spec("PERFORMANCE", 175, 100)),
    ])
}

/// The bundle of seeded WorkSpaces, and what a bundle the fake does not know is taken to be.
const DEFAULT_BUNDLE: &str = "wsb-stdwin2022";

/// Properties as the fake keeps them.
#[derive(Debug, Clone, PartialEq)]
struct Props {
    mode: String,
    auto_stop: Option<i32>,
    root: i32,
    user: i32,
    compute: String,
}

/// A property change under way.
#[derive(Debug, Clone)]
struct Pending {
    props: Props,
    done_at: i64,
}

/// One call the fake received: the operation, how many items (requests or ids) it carried, and
/// whether it was served (not throttled, crashed or refused as invalid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsCall {
    pub operation: &'static str,
    pub items: usize,
    pub accepted: bool,
}

#[derive(Debug, Clone)]
struct Ws {
    id: String,
    directory_id: String,
    user_name: String,
    workspace_name: Option<String>,
    visible_at: i64,
    /// PENDING until then.
    ready_at: i64,
    /// The state after PENDING: AVAILABLE, ERROR, or a seeded one.
    end: WorkspaceState,
    error: Option<(String, String)>,
    terminated_at: Option<i64>,
    gone_at: Option<i64>,
    bundle_id: String,
    tags: BTreeMap<String, String>,
    props: Props,
    update: Option<Pending>,
    /// Cooldowns of volume growth and compute increase start at launch.
    launched_at: i64,
    last_volume: Option<i64>,
    last_compute_up: Option<i64>,
    last_compute_down: Option<i64>,
}

impl Ws {
    /// `None` once the id has disappeared.
    fn state(&self, now: i64) -> Option<WorkspaceState> {
        if let (Some(terminated), Some(gone)) = (self.terminated_at, self.gone_at) {
            return if now >= gone {
                None
            } else if now >= terminated {
                Some(WorkspaceState::Terminated)
            } else {
                Some(WorkspaceState::Terminating)
            };
        }
        Some(if now < self.ready_at {
            WorkspaceState::Pending
        } else if self.update.as_ref().is_some_and(|u| now < u.done_at) {
            WorkspaceState::Updating
        } else {
            self.end.clone()
        })
    }

    /// Applies a property change whose time has come.
    fn settle(&mut self, now: i64) {
        if let Some(update) = self.update.take_if(|u| now >= u.done_at) {
            self.props = update.props;
        }
    }

    fn visible(&self, now: i64) -> bool {
        now >= self.visible_at && self.state(now).is_some()
    }

    fn info(&self, state: WorkspaceState) -> WorkspaceInfo {
        let error = self.error.clone().filter(|_| state == WorkspaceState::Error);
        WorkspaceInfo {
            workspace_id: self.id.clone(),
            directory_id: self.directory_id.clone(),
            user_name: self.user_name.clone(),
            workspace_name: self.workspace_name.clone(),
            state,
            error_code: error.as_ref().map(|e| e.0.clone()),
            error_message: error.map(|e| e.1),
            bundle_id: Some(self.bundle_id.clone()),
            properties: Some(WorkspaceProperties {
                running_mode: Some(self.props.mode.clone()),
                auto_stop_minutes: self.props.auto_stop,
                root_volume_gib: Some(self.props.root),
                user_volume_gib: Some(self.props.user),
                compute_type: Some(self.props.compute.clone()),
            }),
        }
    }

    fn terminate(&mut self, now: i64, lifecycle: &Lifecycle) {
        if self.terminated_at.is_none() {
            let terminated = now + lifecycle.terminate_ms;
            self.terminated_at = Some(terminated);
            self.gone_at = Some(terminated + lifecycle.terminated_visible_ms);
        }
    }
}

#[derive(Debug, Clone)]
struct ItemFault {
    code: String,
    message: String,
    /// `None`: every call.
    remaining: Option<u32>,
}

/// Takes one use of the fault for this user, if any.
fn take_fault(faults: &mut BTreeMap<String, ItemFault>, user_lower: &str) -> Option<(String, String)> {
    let fault = faults.get_mut(user_lower)?;
    let hit = (fault.code.clone(), fault.message.clone());
    match &mut fault.remaining {
        None => {}
        Some(n) if *n > 1 => *n -= 1,
        Some(_) => {
            faults.remove(user_lower);
        }
    }
    Some(hit)
}

#[derive(Debug, Default)]
struct World {
    /// In creation order, which DescribeWorkspaces follows.
    workspaces: BTreeMap<u64, Ws>,
    by_id: HashMap<String, u64>,
    next: u64,
    create_failures: BTreeMap<String, ItemFault>,
    terminate_failures: BTreeMap<String, ItemFault>,
    /// Users whose new WorkSpaces end in ERROR: code and message.
    errors: BTreeMap<String, (String, String)>,
    log: Vec<WsCall>,
    describe_calls: Vec<Vec<String>>,
    bucket: Option<Bucket>,
    /// What a read of many WorkSpaces' tags shows for these (a change it does not show yet).
    bulk_view: HashMap<String, BTreeMap<String, String>>,
}

/// The account's API rate as the simulator enforces it: `rate` calls per second of the fake's
/// clock, up to `burst` at once.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last_ms: i64,
}

impl Bucket {
    fn try_take(&mut self, now_ms: i64) -> bool {
        let elapsed_s = (now_ms - self.last_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed_s * self.rate).min(self.burst);
        self.last_ms = now_ms;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl World {
    fn collect_gone(&mut self, now: i64) {
        let gone: Vec<u64> =
            self.workspaces.iter().filter(|(_, ws)| ws.state(now).is_none()).map(|(seq, _)| *seq).collect();
        for seq in gone {
            if let Some(ws) = self.workspaces.remove(&seq) {
                self.by_id.remove(&ws.id);
            }
        }
        for ws in self.workspaces.values_mut() {
            ws.settle(now);
        }
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Ws> {
        let seq = self.by_id.get(id)?;
        self.workspaces.get_mut(seq)
    }

    fn insert(&mut self, ws: Ws) {
        self.next += 1;
        self.by_id.insert(ws.id.clone(), self.next);
        self.workspaces.insert(self.next, ws);
    }

    fn new_id(&self) -> String {
        format!("ws-f{:08}", self.next + 1)
    }

    fn of_user(&self, directory_id: &str, user_lower: &str, now: i64) -> Option<&Ws> {
        self.workspaces.values().find(|ws| {
            ws.directory_id == directory_id && ws.user_name.to_lowercase() == user_lower && ws.state(now).is_some()
        })
    }

    fn live(&self, now: i64) -> usize {
        self.workspaces.values().filter(|ws| ws.state(now).is_some()).count()
    }
}

/// WorkSpaces on a clock: a new WorkSpace is invisible to DescribeWorkspaces for
/// `invisible_ms`, PENDING until `create_ms`, then AVAILABLE (or ERROR for users given to
/// [`end_in_error`](Self::end_in_error)); a terminated one is TERMINATING for `terminate_ms`,
/// TERMINATED for `terminated_visible_ms`, then gone. Whole-call failures (throttling, a dead
/// process) come from [`Faults`] (`workspaces.<method>`); per-item ones from
/// [`fail_create`](Self::fail_create) and [`fail_terminate`](Self::fail_terminate).
pub struct FakeWorkspaces {
    /// Time each call takes (slept before it is served), to spend a run's budget.
    pub latency: Duration,
    pub faults: Faults,
    clock: Arc<dyn Clock>,
    lifecycle: Lifecycle,
    /// Call-counting mode ([`all`](Self::all)): ids the fake does not know describe in this state.
    unknown_ids_as: Option<WorkspaceState>,
    /// When set, CreateWorkspaces needs the user in this directory book (`ResourceNotFound.User`).
    users: Option<DirectoryBook>,
    max_workspaces: usize,
    bundles: BTreeMap<String, BundleSpec>,
    /// TerminateWorkspaces naming a WorkSpace with the protect tag is refused whole, as the
    /// template's IAM deny would refuse it ([`deny_terminating_protected`](Self::deny_terminating_protected)).
    deny_protected: bool,
    world: Mutex<World>,
}

impl Default for FakeWorkspaces {
    fn default() -> Self {
        Self::new(SystemClock)
    }
}

const PORT: &str = "workspaces";

impl FakeWorkspaces {
    /// WorkSpaces on `clock` (a [`ManualClock`](super::ManualClock) the test moves).
    pub fn new(clock: impl Clock + 'static) -> Self {
        Self {
            latency: Duration::ZERO,
            faults: Faults::default(),
            clock: Arc::new(clock),
            lifecycle: Lifecycle::default(),
            unknown_ids_as: None,
            users: None,
            max_workspaces: 50_000,
            bundles: seed_bundles(),
            deny_protected: false,
            world: Mutex::default(),
        }
    }

    /// Call-counting mode: every id DescribeWorkspaces is asked for exists in `state` (ids it
    /// created or seeded follow their lifecycle), and TerminateWorkspaces accepts any id. For
    /// tests that count calls and items, not for behaviour.
    pub fn all(state: &str) -> Self {
        Self { unknown_ids_as: Some(WorkspaceState::parse(state)), ..Self::default() }
    }

    pub fn with_lifecycle(mut self, lifecycle: Lifecycle) -> Self {
        self.lifecycle = lifecycle;
        self
    }

    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// CreateWorkspaces answers `ResourceNotFound.User` for users not in `book` (as the service
    /// does for users missing from the directory); without it every user exists.
    pub fn requiring_users(mut self, book: DirectoryBook) -> Self {
        self.users = Some(book);
        self
    }

    /// Throttles calls beyond `rate` per second (of the fake's clock), `burst` at once, as the
    /// simulator does (the real service: about 2/s, burst 5). Every call counts, as every call
    /// takes a token; the SDK's own retries are not modelled: a throttled call fails at once.
    pub fn with_rate_limit(self, rate: f64, burst: f64) -> Self {
        let now = self.now();
        lock(&self.world).bucket = Some(Bucket { rate, burst, tokens: burst, last_ms: now });
        self
    }

    /// The account's WorkSpaces quota (50,000 by default, as the simulator's).
    pub fn with_max_workspaces(mut self, max: usize) -> Self {
        self.max_workspaces = max;
        self
    }

    /// A bundle MigrateWorkspace can move to (the local seed's bundles are known already).
    pub fn with_bundle(mut self, bundle_id: &str, spec: BundleSpec) -> Self {
        self.bundles.insert(bundle_id.into(), spec);
        self
    }

    /// The properties a new WorkSpace of `bundle_id` starts with, before the request's own.
    fn bundle_props(&self, bundle_id: &str) -> Props {
        let spec = self.bundles.get(bundle_id).or_else(|| self.bundles.get(DEFAULT_BUNDLE));
        Props {
            mode: RunningMode::AlwaysOn.as_str().into(),
            auto_stop: None,
            root: spec.map_or(80, |b| b.root_gib),
            user: spec.map_or(50, |b| b.user_gib),
            compute: spec.map_or_else(|| "STANDARD".into(), |b| b.compute_type.clone()),
        }
    }

    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// CreateWorkspaces puts `user` (any case) in `FailedRequests` with this code and message,
    /// `times` times (`None`: always).
    pub fn fail_create(&self, user: &str, code: &str, message: &str, times: Option<u32>) {
        let fault = ItemFault { code: code.into(), message: message.into(), remaining: times };
        lock(&self.world).create_failures.insert(user.to_lowercase(), fault);
    }

    /// TerminateWorkspaces fails the WorkSpaces of `user` with this code and message, `times`
    /// times (`None`: always).
    pub fn fail_terminate(&self, user: &str, code: &str, message: &str, times: Option<u32>) {
        let fault = ItemFault { code: code.into(), message: message.into(), remaining: times };
        lock(&self.world).terminate_failures.insert(user.to_lowercase(), fault);
    }

    /// TerminateWorkspaces naming a WorkSpace that carries the protect tag fails whole with
    /// AccessDeniedException, as the deployed template's IAM deny makes it fail (whether IAM
    /// refuses the whole call or the one item, AWS does not say: the whole call is the worse).
    pub fn deny_terminating_protected(mut self) -> Self {
        self.deny_protected = true;
        self
    }

    /// A read of many WorkSpaces' tags ([`WorkspaceTags::tags_of`]) shows `tags` for this
    /// WorkSpace until told otherwise: a tag change it does not show yet.
    pub fn bulk_read_shows(&self, workspace_id: &str, tags: BTreeMap<String, String>) {
        lock(&self.world).bulk_view.insert(workspace_id.to_owned(), tags);
    }

    /// WorkSpaces created for `user` from now on end in ERROR with this code and message.
    pub fn end_in_error(&self, user: &str, code: &str, message: &str) {
        lock(&self.world).errors.insert(user.to_lowercase(), (code.into(), message.into()));
    }

    /// Puts a WorkSpace in `state`, visible at once; returns its id. PENDING goes on to
    /// AVAILABLE, TERMINATING and TERMINATED go on to gone, ERROR carries the user's configured
    /// error (or `InternalError`); any other state stays until the WorkSpace is terminated.
    pub fn seed(&self, directory_id: &str, user_name: &str, state: WorkspaceState) -> String {
        let now = self.now();
        let l = self.lifecycle;
        let mut world = lock(&self.world);
        let error = world.errors.get(&user_name.to_lowercase()).cloned();
        let mut ws = Ws {
            id: world.new_id(),
            directory_id: directory_id.into(),
            user_name: user_name.into(),
            workspace_name: None,
            visible_at: now,
            ready_at: now,
            end: state.clone(),
            error: None,
            terminated_at: None,
            gone_at: None,
            bundle_id: DEFAULT_BUNDLE.into(),
            tags: BTreeMap::new(),
            props: self.bundle_props(DEFAULT_BUNDLE),
            update: None,
            launched_at: now,
            last_volume: None,
            last_compute_up: None,
            last_compute_down: None,
        };
        match state {
            WorkspaceState::Pending => {
                ws.ready_at = now + l.create_ms;
                ws.end = if error.is_some() { WorkspaceState::Error } else { WorkspaceState::Available };
                ws.error = error;
            }
            WorkspaceState::Error => {
                ws.error = Some(error.unwrap_or_else(|| ("InternalError".into(), "seeded in ERROR".into())));
            }
            WorkspaceState::Terminating => ws.terminate(now, &l),
            WorkspaceState::Terminated => {
                ws.terminated_at = Some(now);
                ws.gone_at = Some(now + l.terminated_visible_ms);
            }
            _ => {}
        }
        let id = ws.id.clone();
        world.insert(ws);
        id
    }

    /// What an administrator does in the console: terminates a WorkSpace outside the pipeline (no
    /// fault injected, no call counted). `false`: no such WorkSpace, or already going.
    pub fn delete_by_hand(&self, id: &str) -> bool {
        let now = self.now();
        let lifecycle = self.lifecycle;
        match lock(&self.world).get_mut(id) {
            Some(ws) if ws.terminated_at.is_none() => {
                ws.terminate(now, &lifecycle);
                true
            }
            _ => false,
        }
    }

    /// Tags set outside the pipeline (no fault injected, no call counted).
    pub fn create_tags_by_hand(&self, id: &str, tags: BTreeMap<String, String>) {
        if let Some(ws) = lock(&self.world).get_mut(id) {
            ws.tags.extend(tags);
        }
    }

    /// The ids of each DescribeWorkspaces call by ids that was served.
    pub fn calls(&self) -> Vec<Vec<String>> {
        lock(&self.world).describe_calls.clone()
    }

    /// Every call received, in order.
    pub fn log(&self) -> Vec<WsCall> {
        lock(&self.world).log.clone()
    }

    /// Served calls of one operation (`CreateWorkspaces`, `DescribeWorkspaces`, ...).
    pub fn call_count(&self, operation: &str) -> usize {
        lock(&self.world).log.iter().filter(|c| c.accepted && c.operation == operation).count()
    }

    /// Every WorkSpace whose id still exists, visible or not yet, as it is now.
    pub fn workspaces(&self) -> Vec<WorkspaceInfo> {
        let now = self.now();
        let mut world = lock(&self.world);
        world.collect_gone(now);
        world.workspaces.values().filter_map(|ws| ws.state(now).map(|s| ws.info(s))).collect()
    }

    /// One WorkSpace as it is now, visible or not yet.
    pub fn workspace(&self, id: &str) -> Option<WorkspaceInfo> {
        let now = self.now();
        let mut world = lock(&self.world);
        world.collect_gone(now);
        let ws = world.by_id.get(id).and_then(|seq| world.workspaces.get(seq))?;
        ws.state(now).map(|s| ws.info(s))
    }

    /// How many WorkSpaces exist (in any state) for `user` in `directory_id`, now.
    pub fn count_for(&self, directory_id: &str, user_name: &str) -> usize {
        let now = self.now();
        let user = user_name.to_lowercase();
        lock(&self.world)
            .workspaces
            .values()
            .filter(|ws| ws.directory_id == directory_id && ws.user_name.to_lowercase() == user)
            .filter(|ws| ws.state(now).is_some())
            .count()
    }

    /// Sleeps the latency, then runs one call under the fault plan and logs it.
    async fn serve<T>(
        &self,
        operation: &'static str,
        method: &'static str,
        items: usize,
        run: impl FnOnce(&mut World, i64) -> Result<T, WorkspacesError>,
    ) -> Result<T, WorkspacesError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let throttled = || WorkspacesError::Throttled(format!("{operation}: Rate exceeded"));
        let mut accepted = false;
        let result = self.faults.guard(PORT, method, throttled, || {
            let now = self.now();
            let mut world = lock(&self.world);
            if world.bucket.as_mut().is_some_and(|b| !b.try_take(now)) {
                return Err(WorkspacesError::Throttled(format!("{operation}: Rate exceeded")));
            }
            world.collect_gone(now);
            let result = run(&mut world, now);
            accepted =
                !matches!(result, Err(WorkspacesError::Service { ref code, .. }) if code == "ValidationException");
            result
        });
        lock(&self.world).log.push(WsCall { operation, items, accepted });
        result
    }
}

// ---------------------------------------------------------------- the service's validation

fn validation(
    operation: &'static str,
    field: &str,
    value: impl std::fmt::Display,
    constraint: &str,
) -> WorkspacesError {
    WorkspacesError::Service {
        operation,
        code: "ValidationException".into(),
        message: format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ),
        retryable: false,
    }
}

/// 1 to 25 members, as the model says.
fn check_count(operation: &'static str, field: &str, n: usize) -> Result<(), WorkspacesError> {
    if n < 1 {
        return Err(validation(
            operation,
            field,
            format!("[{n} items]"),
            "Member must have length greater than or equal to 1",
        ));
    }
    if n > MAX_PER_CALL {
        return Err(validation(
            operation,
            field,
            format!("[{n} items]"),
            &format!("Member must have length less than or equal to {MAX_PER_CALL}"),
        ));
    }
    Ok(())
}

fn prefixed(s: &str, prefix: &str, min: usize, max: usize, ok: fn(char) -> bool) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| (min..=max).contains(&rest.len()) && rest.chars().all(ok))
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_digit() || c.is_ascii_lowercase()
}

/// `^d-[0-9a-f]{8,63}$`
fn is_directory_id(s: &str) -> bool {
    prefixed(s, "d-", 8, 63, |c| c.is_ascii_digit() || matches!(c, 'a'..='f'))
}

/// `^wsb-[0-9a-z]{8,63}$`
fn is_bundle_id(s: &str) -> bool {
    prefixed(s, "wsb-", 8, 63, lower_alnum)
}

/// `^ws-[0-9a-z]{8,63}$`
fn is_workspace_id(s: &str) -> bool {
    prefixed(s, "ws-", 8, 63, lower_alnum)
}

const CREATE: &str = "CreateWorkspaces";
const DESCRIBE: &str = "DescribeWorkspaces";
const TERMINATE: &str = "TerminateWorkspaces";

/// What fails the whole CreateWorkspaces call before any item is looked at.
fn validate_create(i: usize, item: &CreateItem) -> Result<(), WorkspacesError> {
    let field = |m: &str| format!("workspaces.{}.member.{m}", i + 1);
    if !is_directory_id(&item.directory_id) {
        return Err(validation(
            CREATE,
            &field("directoryId"),
            &item.directory_id,
            "Member must satisfy regular expression pattern: ^d-[0-9a-f]{8,63}$",
        ));
    }
    let len = item.user_name.chars().count();
    if !(1..=63).contains(&len) {
        let constraint = if len < 1 {
            "Member must have length greater than or equal to 1"
        } else {
            "Member must have length less than or equal to 63"
        };
        return Err(validation(CREATE, &field("userName"), &item.user_name, constraint));
    }
    if !is_bundle_id(&item.profile.bundle_id) {
        return Err(validation(
            CREATE,
            &field("bundleId"),
            &item.profile.bundle_id,
            "Member must satisfy regular expression pattern: ^wsb-[0-9a-z]{8,63}$",
        ));
    }
    if let Some(name) = &item.workspace_name {
        let len = name.chars().count();
        if !(1..=64).contains(&len) {
            let constraint = if len < 1 {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 64"
            };
            return Err(validation(CREATE, &field("workspaceName"), name, constraint));
        }
    }
    if item.profile.tags.len() > 50 {
        return Err(validation(
            CREATE,
            &field("tags"),
            format!("[{} items]", item.profile.tags.len()),
            "Member must have length less than or equal to 50",
        ));
    }
    if let Some((key, _)) = item.profile.tags.iter().find(|(k, _)| !(1..=127).contains(&k.chars().count())) {
        return Err(validation(CREATE, &field("tags.key"), key, "Member must have length less than or equal to 127"));
    }
    Ok(())
}

/// The per-item checks of properties and encryption the service makes.
fn check_properties(item: &CreateItem) -> Result<(), (String, String)> {
    let p = &item.profile;
    let fail = |code: &str, message: String| Err((code.to_owned(), message));
    if p.running_mode == RunningMode::Manual {
        return fail(
            "InvalidParameterValuesException",
            "RunningMode MANUAL is only supported for WorkSpaces Core.".into(),
        );
    }
    if let Some(minutes) = p.auto_stop_minutes {
        if p.running_mode == RunningMode::AlwaysOn {
            return fail(
                "AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace",
                "RunningModeAutoStopTimeoutInMinutes applies only to AUTO_STOP WorkSpaces.".into(),
            );
        }
        if minutes <= 0 || minutes % 60 != 0 {
            return fail(
                "InvalidParameterValuesException",
                format!("RunningModeAutoStopTimeoutInMinutes must be a multiple of 60, got {minutes}."),
            );
        }
    }
    // The adapter sends the key only with encryption on.
    if (p.root_volume_encrypted || p.user_volume_encrypted) && p.kms_key.is_none() {
        return fail(
            "InvalidParameterValuesException",
            "Volume encryption requires a VolumeEncryptionKey (a symmetric KMS key).".into(),
        );
    }
    Ok(())
}

impl FakeWorkspaces {
    fn create_one(&self, world: &mut World, now: i64, item: &CreateItem) -> Result<WorkspaceInfo, (String, String)> {
        let user_lower = item.user_name.to_lowercase();
        check_properties(item)?;
        let decoupled = item.user_name == UNDEFINED_USER;
        if decoupled {
            if item.workspace_name.is_none() {
                return Err((
                    "InvalidParameterValuesException".into(),
                    "WorkspaceName is required when UserName is [UNDEFINED].".into(),
                ));
            }
        } else if self.users.as_ref().is_some_and(|book| !book.contains(&item.directory_id, &item.user_name)) {
            return Err((
                "ResourceNotFound.User".into(),
                format!("The user {} could not be found in the directory {}.", item.user_name, item.directory_id),
            ));
        }
        if let Some(failure) = take_fault(&mut world.create_failures, &user_lower) {
            return Err(failure);
        }
        if !decoupled && world.of_user(&item.directory_id, &user_lower, now).is_some() {
            return Err((
                "ResourceExists.WorkSpace".into(),
                format!("The user {} already has a WorkSpace in the directory {}.", item.user_name, item.directory_id),
            ));
        }
        if world.live(now) >= self.max_workspaces {
            return Err(("ResourceLimitExceeded".into(), "The WorkSpaces limit of the account is reached.".into()));
        }
        let error = world.errors.get(&user_lower).cloned();
        let p = &item.profile;
        let base = self.bundle_props(&p.bundle_id);
        let props = Props {
            mode: p.running_mode.as_str().into(),
            auto_stop: p
                .auto_stop_minutes
                .or((p.running_mode == RunningMode::AutoStop).then_some(DEFAULT_AUTO_STOP_MINUTES)),
            root: p.root_volume_gib.unwrap_or(base.root),
            user: p.user_volume_gib.unwrap_or(base.user),
            compute: p.compute_type.clone().unwrap_or(base.compute),
        };
        let ws = Ws {
            id: world.new_id(),
            directory_id: item.directory_id.clone(),
            user_name: item.user_name.clone(),
            workspace_name: item.workspace_name.clone(),
            visible_at: now + self.lifecycle.invisible_ms,
            ready_at: now + self.lifecycle.create_ms,
            end: if error.is_some() { WorkspaceState::Error } else { WorkspaceState::Available },
            error,
            terminated_at: None,
            gone_at: None,
            bundle_id: p.bundle_id.clone(),
            tags: p.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            props,
            update: None,
            launched_at: now,
            last_volume: None,
            last_compute_up: None,
            last_compute_down: None,
        };
        let info = ws.info(WorkspaceState::Pending);
        world.insert(ws);
        Ok(info)
    }
}

impl WorkspacesApi for FakeWorkspaces {
    async fn create_workspaces(&self, items: &[CreateItem]) -> Result<CreateResponse, WorkspacesError> {
        self.serve(CREATE, "create_workspaces", items.len(), |world, now| {
            check_count(CREATE, "workspaces", items.len())?;
            for (i, item) in items.iter().enumerate() {
                validate_create(i, item)?;
            }
            if world.live(now) >= self.max_workspaces {
                return Err(WorkspacesError::Service {
                    operation: CREATE,
                    code: "ResourceLimitExceededException".into(),
                    message: format!("Your account has reached its WorkSpaces limit of {}.", self.max_workspaces),
                    retryable: false,
                });
            }
            let mut response = CreateResponse::default();
            for item in items {
                match self.create_one(world, now, item) {
                    Ok(info) => response.pending.push(info),
                    Err((code, message)) => response.failed.push(FailedCreate {
                        directory_id: item.directory_id.clone(),
                        user_name: item.user_name.clone(),
                        workspace_name: item.workspace_name.clone(),
                        code,
                        message,
                    }),
                }
            }
            Ok(response)
        })
        .await
    }

    async fn describe_workspaces(&self, ids: &[String]) -> Result<Vec<WorkspaceInfo>, WorkspacesError> {
        self.serve(DESCRIBE, "describe_workspaces", ids.len(), |world, now| {
            check_count(DESCRIBE, "workspaceIds", ids.len())?;
            for (i, id) in ids.iter().enumerate() {
                if !is_workspace_id(id) {
                    return Err(validation(
                        DESCRIBE,
                        &format!("WorkspaceIds.{}.member", i + 1),
                        id,
                        "Member must satisfy regular expression pattern: ^ws-[0-9a-z]{8,63}$",
                    ));
                }
            }
            world.describe_calls.push(ids.to_vec());
            let mut seqs: Vec<u64> = ids.iter().filter_map(|id| world.by_id.get(id).copied()).collect();
            seqs.sort_unstable();
            seqs.dedup();
            let mut listed: Vec<WorkspaceInfo> = seqs
                .iter()
                .filter_map(|seq| world.workspaces.get(seq))
                .filter(|ws| ws.visible(now))
                .filter_map(|ws| ws.state(now).map(|s| ws.info(s)))
                .collect();
            if let Some(state) = &self.unknown_ids_as {
                let mut seen = std::collections::BTreeSet::new();
                for id in ids.iter().filter(|id| !world.by_id.contains_key(*id)) {
                    if seen.insert(id) {
                        listed.push(WorkspaceInfo {
                            workspace_id: id.clone(),
                            directory_id: "d-1234567890".into(),
                            user_name: String::new(),
                            workspace_name: None,
                            state: state.clone(),
                            error_code: None,
                            error_message: None,
                            bundle_id: None,
                            properties: None,
                        });
                    }
                }
            }
            Ok(listed)
        })
        .await
    }

    async fn terminate_workspaces(&self, ids: &[String]) -> Result<Vec<FailedTerminate>, WorkspacesError> {
        self.serve(TERMINATE, "terminate_workspaces", ids.len(), |world, now| {
            check_count(TERMINATE, "terminateWorkspaceRequests", ids.len())?;
            for (i, id) in ids.iter().enumerate() {
                if !is_workspace_id(id) {
                    return Err(validation(
                        TERMINATE,
                        &format!("terminateWorkspaceRequests.{}.member.workspaceId", i + 1),
                        id,
                        "Member must satisfy regular expression pattern: ^ws-[0-9a-z]{8,63}$",
                    ));
                }
            }
            if self.deny_protected
                && let Some(id) =
                    ids.iter().find(|id| world.get_mut(id).is_some_and(|ws| ws.tags.contains_key(PROTECT_TAG_KEY)))
            {
                return Err(refused(
                    TERMINATE,
                    "AccessDeniedException",
                    format!("not authorized to perform workspaces:TerminateWorkspaces on {id} with an explicit deny"),
                ));
            }
            let mut failed = Vec::new();
            for id in ids {
                let fail = |code: &str, message: String| FailedTerminate {
                    workspace_id: id.clone(),
                    code: code.to_owned(),
                    message,
                };
                let Some(seq) = world.by_id.get(id).copied() else {
                    if self.unknown_ids_as.is_none() {
                        failed.push(fail(
                            "ResourceNotFound.WorkSpace",
                            format!("The WorkSpace {id} could not be found."),
                        ));
                    }
                    continue;
                };
                let user_lower = world.workspaces.get(&seq).map(|ws| ws.user_name.to_lowercase()).unwrap_or_default();
                if let Some((code, message)) = take_fault(&mut world.terminate_failures, &user_lower) {
                    failed.push(fail(&code, message));
                    continue;
                }
                let lifecycle = self.lifecycle;
                if let Some(ws) = world.workspaces.get_mut(&seq) {
                    if ws.state(now) == Some(WorkspaceState::Suspended) {
                        failed.push(fail(
                            "InvalidResourceState",
                            format!("The WorkSpace {id} is SUSPENDED and cannot be terminated."),
                        ));
                    } else {
                        ws.terminate(now, &lifecycle);
                    }
                }
            }
            Ok(failed)
        })
        .await
    }

    async fn list_workspaces(
        &self,
        directory_id: &str,
        next_token: Option<&str>,
    ) -> Result<WorkspacePage, WorkspacesError> {
        self.serve(DESCRIBE, "list_workspaces", 0, |world, now| {
            if !is_directory_id(directory_id) {
                return Err(validation(
                    DESCRIBE,
                    "directoryId",
                    directory_id,
                    "Member must satisfy regular expression pattern: ^d-[0-9a-f]{8,63}$",
                ));
            }
            // The token is the creation sequence of the page's first WorkSpace: a WorkSpace that
            // goes between two pages moves no other one across them.
            let from: u64 = match next_token {
                None => 0,
                Some(token) => token.strip_prefix("fake-").and_then(|n| n.parse().ok()).ok_or_else(|| {
                    WorkspacesError::Service {
                        operation: DESCRIBE,
                        code: "InvalidParameterValuesException".into(),
                        message: "The NextToken is not valid.".into(),
                        retryable: false,
                    }
                })?,
            };
            let mut listed = world
                .workspaces
                .range(from..)
                .filter(|(_, ws)| ws.directory_id == directory_id && ws.visible(now))
                .filter_map(|(seq, ws)| ws.state(now).map(|state| (*seq, ws.info(state))));
            let workspaces: Vec<WorkspaceInfo> = listed.by_ref().take(MAX_PER_CALL).map(|(_, info)| info).collect();
            let next_token = listed.next().map(|(seq, _)| format!("fake-{seq}"));
            Ok(WorkspacePage { workspaces, next_token })
        })
        .await
    }

    async fn find_user_workspace(
        &self,
        directory_id: &str,
        user_name: &str,
    ) -> Result<Option<WorkspaceInfo>, WorkspacesError> {
        self.serve(DESCRIBE, "find_user_workspace", 0, |world, now| {
            let user = user_name.to_lowercase();
            Ok(world
                .workspaces
                .values()
                .filter(|ws| ws.visible(now))
                .find(|ws| ws.directory_id == directory_id && ws.user_name.to_lowercase() == user)
                .and_then(|ws| ws.state(now).map(|s| ws.info(s))))
        })
        .await
    }

    async fn modify_properties(&self, workspace_id: &str, change: &PropertyChange) -> Result<(), WorkspacesError> {
        self.serve(MODIFY, "modify_properties", 1, |world, now| {
            check_id(MODIFY, "workspaceId", workspace_id)?;
            check_change(change)?;
            let l = self.lifecycle;
            let ws = world.get_mut(workspace_id).ok_or_else(|| not_found(MODIFY, workspace_id))?;
            match ws.state(now) {
                Some(WorkspaceState::Updating) => return Err(in_progress(MODIFY)),
                Some(WorkspaceState::Available | WorkspaceState::Stopped) => {}
                other => return Err(wrong_state(MODIFY, workspace_id, other.as_ref())),
            }
            let mut next = ws.props.clone();
            let since = |last: Option<i64>| now - last.unwrap_or(ws.launched_at).max(ws.launched_at);
            let cooldown = |what: &str| {
                refused(
                    MODIFY,
                    "InvalidResourceStateException",
                    format!("The {what} of WorkSpace {workspace_id} was changed too recently (or it is too new)."),
                )
            };
            match change {
                PropertyChange::RunningMode { mode, auto_stop_minutes } => {
                    next.mode = mode.as_str().into();
                    if *mode == RunningMode::AlwaysOn {
                        if auto_stop_minutes.is_some() {
                            return Err(invalid_values(
                                MODIFY,
                                "RunningModeAutoStopTimeoutInMinutes applies only to AUTO_STOP WorkSpaces.",
                            ));
                        }
                        next.auto_stop = None;
                    } else {
                        next.auto_stop = auto_stop_minutes.or(next.auto_stop).or(Some(DEFAULT_AUTO_STOP_MINUTES));
                    }
                }
                PropertyChange::RootVolume(gib) | PropertyChange::UserVolume(gib) => {
                    let (root, user) = match change {
                        PropertyChange::RootVolume(_) => (*gib, next.user),
                        _ => (next.root, *gib),
                    };
                    if root < next.root || user < next.user {
                        return Err(invalid_values(MODIFY, "The volumes of a WorkSpace cannot be decreased."));
                    }
                    if !volumes_allowed(&next.compute, i64::from(root), i64::from(user)) {
                        return Err(invalid_values(
                            MODIFY,
                            &format!("[{root}, {user}] GB is not an allowed [root, user] volume combination."),
                        ));
                    }
                    if since(ws.last_volume) < l.volume_cooldown_ms {
                        return Err(cooldown("volume size"));
                    }
                    (next.root, next.user) = (root, user);
                    ws.last_volume = Some(now);
                }
                PropertyChange::ComputeType(to) => {
                    let larger = compute_change(&next.compute, to)
                        .map_err(|m| refused(MODIFY, "UnsupportedWorkspaceConfigurationException", m))?;
                    if larger {
                        if since(ws.last_compute_up) < l.compute_up_cooldown_ms {
                            return Err(cooldown("compute type"));
                        }
                        ws.last_compute_up = Some(now);
                    } else {
                        if ws.last_compute_down.is_some_and(|t| now - t < l.compute_down_cooldown_ms) {
                            return Err(cooldown("compute type"));
                        }
                        ws.last_compute_down = Some(now);
                    }
                    next.compute.clone_from(to);
                }
            }
            ws.update = Some(Pending { props: next, done_at: now + l.update_ms });
            Ok(())
        })
        .await
    }

    async fn migrate(&self, workspace_id: &str, bundle_id: &str) -> Result<String, WorkspacesError> {
        self.serve(MIGRATE, "migrate", 1, |world, now| {
            check_id(MIGRATE, "sourceWorkspaceId", workspace_id)?;
            if !is_bundle_id(bundle_id) {
                return Err(validation(
                    MIGRATE,
                    "bundleId",
                    bundle_id,
                    "Member must satisfy regular expression pattern: ^wsb-[0-9a-z]{8,63}$",
                ));
            }
            let bundle = self.bundles.get(bundle_id).ok_or_else(|| not_found(MIGRATE, bundle_id))?;
            let l = self.lifecycle;
            let target_id = world.new_id();
            let source = world.get_mut(workspace_id).ok_or_else(|| not_found(MIGRATE, workspace_id))?;
            if source.bundle_id == bundle_id {
                return Err(invalid_values(
                    MIGRATE,
                    "The target bundle is the WorkSpace's bundle; rebuild it instead.",
                ));
            }
            match source.state(now) {
                Some(WorkspaceState::Available | WorkspaceState::Stopped | WorkspaceState::Error) => {}
                Some(WorkspaceState::Updating) => return Err(in_progress(MIGRATE)),
                other => return Err(wrong_state(MIGRATE, workspace_id, other.as_ref())),
            }
            let ready = now + l.migrate_ms;
            let target = Ws {
                id: target_id.clone(),
                visible_at: now + l.invisible_ms,
                ready_at: ready,
                end: WorkspaceState::Available,
                error: None,
                terminated_at: None,
                gone_at: None,
                bundle_id: bundle_id.into(),
                props: Props { compute: bundle.compute_type.clone(), root: bundle.root_gib, ..source.props.clone() },
                update: None,
                launched_at: now,
                last_volume: None,
                last_compute_up: None,
                last_compute_down: None,
                ..source.clone()
            };
            source.terminated_at = Some(ready);
            source.gone_at = Some(ready);
            world.insert(target);
            Ok(target_id)
        })
        .await
    }

    async fn set_admin_maintenance(&self, workspace_id: &str, on: bool) -> Result<(), WorkspacesError> {
        self.serve(MODIFY_STATE, "set_admin_maintenance", 1, |world, now| {
            check_id(MODIFY_STATE, "workspaceId", workspace_id)?;
            let ws = world.get_mut(workspace_id).ok_or_else(|| not_found(MODIFY_STATE, workspace_id))?;
            match ws.state(now) {
                Some(WorkspaceState::Available | WorkspaceState::AdminMaintenance) => {
                    ws.end = if on { WorkspaceState::AdminMaintenance } else { WorkspaceState::Available };
                    Ok(())
                }
                other => Err(wrong_state(MODIFY_STATE, workspace_id, other.as_ref())),
            }
        })
        .await
    }

    async fn tags(&self, workspace_id: &str) -> Result<BTreeMap<String, String>, WorkspacesError> {
        self.serve(DESCRIBE_TAGS, "tags", 1, |world, _| {
            check_resource_id(DESCRIBE_TAGS, workspace_id)?;
            Ok(world.get_mut(workspace_id).ok_or_else(|| not_found(DESCRIBE_TAGS, workspace_id))?.tags.clone())
        })
        .await
    }

    async fn create_tags(&self, workspace_id: &str, tags: &BTreeMap<String, String>) -> Result<(), WorkspacesError> {
        self.serve(CREATE_TAGS, "create_tags", tags.len(), |world, _| {
            check_resource_id(CREATE_TAGS, workspace_id)?;
            for (i, (key, value)) in tags.iter().enumerate() {
                let field = |m: &str| format!("tags.{}.member.{m}", i + 1);
                if !(1..=MAX_TAG_KEY).contains(&key.chars().count()) {
                    return Err(validation(CREATE_TAGS, &field("key"), key, &too_long(MAX_TAG_KEY)));
                }
                if value.chars().count() > MAX_TAG_VALUE {
                    return Err(validation(CREATE_TAGS, &field("value"), value, &too_long(MAX_TAG_VALUE)));
                }
            }
            for (key, value) in tags {
                let problem = tag_text_problem("key", key)
                    .or_else(|| tag_text_problem("value", value).filter(|_| !value.is_empty()));
                if let Some(problem) = problem {
                    return Err(invalid_values(CREATE_TAGS, &problem));
                }
            }
            let ws = world.get_mut(workspace_id).ok_or_else(|| not_found(CREATE_TAGS, workspace_id))?;
            let mut merged = ws.tags.clone();
            merged.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            if merged.len() > MAX_TAGS {
                return Err(refused(
                    CREATE_TAGS,
                    "ResourceLimitExceededException",
                    format!(
                        "A WorkSpaces resource can have at most {MAX_TAGS} tags; this would make {}.",
                        merged.len()
                    ),
                ));
            }
            ws.tags = merged;
            Ok(())
        })
        .await
    }

    async fn delete_tags(&self, workspace_id: &str, keys: &[String]) -> Result<(), WorkspacesError> {
        self.serve(DELETE_TAGS, "delete_tags", keys.len(), |world, _| {
            check_resource_id(DELETE_TAGS, workspace_id)?;
            if let Some(key) = keys.iter().find(|k| k.to_lowercase().starts_with(RESERVED_TAG_PREFIX)) {
                return Err(invalid_values(
                    DELETE_TAGS,
                    &format!("The tag key {key:?} is reserved for AWS and cannot be deleted."),
                ));
            }
            let ws = world.get_mut(workspace_id).ok_or_else(|| not_found(DELETE_TAGS, workspace_id))?;
            for key in keys {
                ws.tags.remove(key);
            }
            Ok(())
        })
        .await
    }
}

impl WorkspaceTags for FakeWorkspaces {
    /// GetResources by ARN: its own service, so not the WorkSpaces rate the fake's bucket keeps.
    async fn tags_of(
        &self,
        workspace_ids: &[String],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, WorkspacesError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let throttled = || WorkspacesError::Throttled(format!("{GET_RESOURCES}: Rate exceeded"));
        let result = self.faults.guard(TAGGING_PORT, "tags_of", throttled, || {
            if !(1..=MAX_TAGGED_PER_READ).contains(&workspace_ids.len()) {
                let constraint = format!("Member must have length between 1 and {MAX_TAGGED_PER_READ}");
                return Err(validation(GET_RESOURCES, "resourceARNList", workspace_ids.len(), &constraint));
            }
            let now = self.now();
            let mut world = lock(&self.world);
            world.collect_gone(now);
            let mut found = BTreeMap::new();
            for id in workspace_ids {
                let Some(tags) = world.get_mut(id).map(|ws| ws.tags.clone()) else { continue };
                let tags = world.bulk_view.get(id).cloned().unwrap_or(tags);
                if !tags.is_empty() {
                    found.insert(id.clone(), tags);
                }
            }
            Ok(found)
        });
        let accepted = result.is_ok();
        lock(&self.world).log.push(WsCall { operation: GET_RESOURCES, items: workspace_ids.len(), accepted });
        result
    }
}

const TAGGING_PORT: &str = "tagging";
const GET_RESOURCES: &str = "GetResources";
const MODIFY: &str = "ModifyWorkspaceProperties";
const MIGRATE: &str = "MigrateWorkspace";
const MODIFY_STATE: &str = "ModifyWorkspaceState";
const DESCRIBE_TAGS: &str = "DescribeTags";
const CREATE_TAGS: &str = "CreateTags";
const DELETE_TAGS: &str = "DeleteTags";

/// An error of the service (not a validation of the model): never retryable by the SDK.
fn refused(operation: &'static str, code: &str, message: impl Into<String>) -> WorkspacesError {
    WorkspacesError::Service { operation, code: code.into(), message: message.into(), retryable: false }
}

fn invalid_values(operation: &'static str, message: &str) -> WorkspacesError {
    refused(operation, "InvalidParameterValuesException", message)
}

fn not_found(operation: &'static str, id: &str) -> WorkspacesError {
    refused(operation, "ResourceNotFoundException", format!("The resource {id} could not be found."))
}

fn in_progress(operation: &'static str) -> WorkspacesError {
    refused(
        operation,
        "OperationInProgressException",
        "The properties of this WorkSpace are currently under modification. Please try again in a moment.",
    )
}

fn wrong_state(operation: &'static str, id: &str, state: Option<&WorkspaceState>) -> WorkspacesError {
    refused(
        operation,
        "InvalidResourceStateException",
        format!("The WorkSpace {id} is {} and the operation is not allowed.", state.map_or("gone", |s| s.as_str())),
    )
}

fn too_long(max: usize) -> String {
    format!("Member must have length less than or equal to {max}")
}

fn check_id(operation: &'static str, field: &str, id: &str) -> Result<(), WorkspacesError> {
    if is_workspace_id(id) {
        Ok(())
    } else {
        Err(validation(operation, field, id, "Member must satisfy regular expression pattern: ^ws-[0-9a-z]{8,63}$"))
    }
}

/// `ResourceId` is any non-empty string (directories, images and bundles can be tagged too).
fn check_resource_id(operation: &'static str, id: &str) -> Result<(), WorkspacesError> {
    if id.is_empty() {
        Err(validation(operation, "resourceId", id, "Member must have length greater than or equal to 1"))
    } else {
        Ok(())
    }
}

/// What the service refuses in a change before looking at the WorkSpace.
fn check_change(change: &PropertyChange) -> Result<(), WorkspacesError> {
    if let PropertyChange::RunningMode { mode, auto_stop_minutes } = change {
        if *mode == RunningMode::Manual {
            return Err(invalid_values(MODIFY, "RunningMode MANUAL is only supported for WorkSpaces Core."));
        }
        if let Some(minutes) = auto_stop_minutes
            && (*minutes <= 0 || minutes % AUTO_STOP_STEP_MINUTES != 0)
        {
            return Err(invalid_values(
                MODIFY,
                &format!("RunningModeAutoStopTimeoutInMinutes must be a multiple of 60, got {minutes}."),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::profile::Profile;
    use crate::testing::ManualClock;

    const DIR: &str = "d-9067a1b2c3";

    fn item(user: &str) -> CreateItem {
        let profile: Profile =
            serde_json::from_value(serde_json::json!({ "directory_id": DIR, "bundle_id": "wsb-stdwin2022" })).unwrap();
        CreateItem { directory_id: DIR.into(), user_name: user.into(), workspace_name: None, profile }
    }

    fn fake() -> (FakeWorkspaces, ManualClock) {
        let clock = ManualClock::new(0);
        (FakeWorkspaces::new(clock.clone()), clock)
    }

    async fn state(fake: &FakeWorkspaces, id: &str) -> Option<WorkspaceState> {
        fake.describe_workspaces(&[id.to_owned()]).await.unwrap().pop().map(|w| w.state)
    }

    #[tokio::test]
    async fn a_workspace_appears_late_then_becomes_available_or_error_on_the_clock() {
        let (fake, clock) = fake();
        fake.end_in_error("BOB", "InternalError", "the image failed");
        let out = fake.create_workspaces(&[item("ann"), item("bob")]).await.unwrap();
        let (ann, bob) = (out.pending[0].workspace_id.clone(), out.pending[1].workspace_id.clone());
        assert_eq!(state(&fake, &ann).await, None, "invisible at first");
        clock.advance(500);
        assert_eq!(state(&fake, &ann).await, Some(WorkspaceState::Pending));
        clock.advance(2_500);
        assert_eq!(state(&fake, &ann).await, Some(WorkspaceState::Available));
        let bob = fake.describe_workspaces(&[bob]).await.unwrap().pop().unwrap();
        assert_eq!(bob.state, WorkspaceState::Error);
        assert_eq!(
            (bob.error_code.as_deref(), bob.error_message.as_deref()),
            (Some("InternalError"), Some("the image failed"))
        );
    }

    #[tokio::test]
    async fn per_item_failures_are_injected_by_user_for_a_number_of_calls() {
        let (fake, _) = fake();
        fake.fail_create("Ann", "ResourceLimitExceeded", "no capacity", Some(2));
        for _ in 0..2 {
            let out = fake.create_workspaces(&[item("ann")]).await.unwrap();
            assert_eq!(out.failed.iter().map(|f| f.code.as_str()).collect::<Vec<_>>(), ["ResourceLimitExceeded"]);
        }
        let out = fake.create_workspaces(&[item("ann")]).await.unwrap();
        assert_eq!(out.pending.len(), 1);
        fake.fail_terminate("ann", "InvalidResourceState", "busy", None);
        let failed = fake.terminate_workspaces(&[out.pending[0].workspace_id.clone()]).await.unwrap();
        assert_eq!(failed[0].code, "InvalidResourceState");
        assert_eq!(fake.workspace(&out.pending[0].workspace_id).unwrap().state, WorkspaceState::Pending);
    }

    #[tokio::test]
    async fn properties_and_users_are_checked_per_item_and_ids_per_call() {
        let book = DirectoryBook::default();
        book.add_user(DIR, "Ann", "ann@example.com");
        let fake = FakeWorkspaces::new(ManualClock::new(0)).requiring_users(book);
        let mut always_on = item("ann");
        always_on.profile.running_mode = RunningMode::AlwaysOn;
        always_on.profile.auto_stop_minutes = Some(60);
        let out = fake.create_workspaces(&[always_on, item("nobody"), item("ANN")]).await.unwrap();
        let codes: Vec<&str> = out.failed.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["AutoStopTimeoutIsNotApplicableForAnAlwaysOnWorkspace", "ResourceNotFound.User"]);
        assert_eq!(out.pending[0].user_name, "ANN");
        let mut bad = item("ann");
        bad.directory_id = "d-XYZ".into();
        match fake.create_workspaces(&[item("bob"), bad]).await {
            Err(WorkspacesError::Service { code, message, retryable: false, .. }) => {
                assert_eq!(code, "ValidationException");
                assert!(message.contains("workspaces.2.member.directoryId"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(fake.describe_workspaces(&["i-123".into()]).await.is_err());
        let accepted: Vec<bool> = fake.log().iter().map(|c| c.accepted).collect();
        assert_eq!(accepted, [true, false, false]);
    }

    #[tokio::test]
    async fn throttling_and_crashes_come_from_the_shared_fault_plan() {
        let faults = Faults::new();
        let clock = ManualClock::new(0);
        let fake = FakeWorkspaces::new(clock.clone()).with_faults(faults.clone());
        faults.fail_next("workspaces.create_workspaces", 1);
        assert!(matches!(fake.create_workspaces(&[item("ann")]).await, Err(WorkspacesError::Throttled(_))));
        assert!(fake.workspaces().is_empty(), "a throttled call creates nothing");
        // A timeout after the call: the WorkSpace exists, the caller does not know.
        faults.fail_next_after("workspaces", 1);
        assert!(fake.create_workspaces(&[item("ann")]).await.is_err());
        assert_eq!(fake.count_for(DIR, "ANN"), 1);
        faults.crash_after(0);
        assert!(fake.find_user_workspace(DIR, "ann").await.is_err());
        faults.revive();
        clock.advance(500);
        assert!(fake.find_user_workspace(DIR, "ann").await.unwrap().is_some());
        assert_eq!(faults.calls("workspaces.create_workspaces"), 2);
    }

    #[tokio::test]
    async fn seeded_workspaces_take_their_state_and_move_on_from_it() {
        let (fake, clock) = fake();
        let stopped = fake.seed(DIR, "ann", WorkspaceState::Stopped);
        let terminating = fake.seed(DIR, "bob", WorkspaceState::Terminating);
        let suspended = fake.seed(DIR, "cy", WorkspaceState::Suspended);
        assert_eq!(state(&fake, &stopped).await, Some(WorkspaceState::Stopped));
        assert_eq!(state(&fake, &terminating).await, Some(WorkspaceState::Terminating));
        let failed = fake.terminate_workspaces(std::slice::from_ref(&suspended)).await.unwrap();
        assert_eq!(failed[0].code, "InvalidResourceState");
        clock.advance(2_000);
        assert_eq!(state(&fake, &terminating).await, Some(WorkspaceState::Terminated));
        clock.advance(1_000);
        assert_eq!(state(&fake, &terminating).await, None);
        assert_eq!(fake.create_workspaces(&[item("bob")]).await.unwrap().pending.len(), 1, "gone, so free again");
        assert_eq!(fake.create_workspaces(&[item("Ann")]).await.unwrap().failed[0].code, "ResourceExists.WorkSpace");
    }

    #[tokio::test]
    async fn in_call_counting_mode_every_id_exists_in_the_one_state() {
        let fake = FakeWorkspaces::all("TERMINATED");
        let ids: Vec<String> = (0..25).map(|i| format!("ws-{i:09}")).collect();
        let listed = fake.describe_workspaces(&ids).await.unwrap();
        assert_eq!(listed.len(), 25);
        assert!(listed.iter().all(|w| w.state == WorkspaceState::Terminated));
        assert_eq!(fake.terminate_workspaces(&ids).await.unwrap(), Vec::new());
        assert_eq!(fake.calls(), vec![ids]);
        assert_eq!(fake.call_count("DescribeWorkspaces"), 1);
    }

    #[tokio::test]
    async fn calls_beyond_the_rate_are_throttled_until_tokens_come_back() {
        let clock = ManualClock::new(0);
        let fake = FakeWorkspaces::new(clock.clone()).with_rate_limit(2.0, 5.0);
        let ids = vec!["ws-000000001".to_owned()];
        for _ in 0..5 {
            fake.describe_workspaces(&ids).await.unwrap();
        }
        assert!(matches!(fake.describe_workspaces(&ids).await, Err(WorkspacesError::Throttled(_))));
        clock.advance(500);
        fake.describe_workspaces(&ids).await.unwrap();
        assert!(fake.describe_workspaces(&ids).await.is_err());
        assert_eq!(fake.log().iter().filter(|c| c.accepted).count(), 6);
    }

    #[tokio::test]
    async fn new_operations_take_faults_from_the_shared_plan_and_a_stopped_workspace_can_change() {
        let faults = Faults::new();
        let clock = ManualClock::new(0);
        let fake = FakeWorkspaces::new(clock.clone()).with_faults(faults.clone());
        let stopped = fake.seed(DIR, "ann", WorkspaceState::Stopped);
        faults.fail_next("workspaces.migrate", 1);
        assert!(matches!(fake.migrate(&stopped, "wsb-perfwin2022").await, Err(WorkspacesError::Throttled(_))));
        faults.fail_next("workspaces.create_tags", 1);
        assert!(fake.create_tags(&stopped, &BTreeMap::from([("a".into(), "b".into())])).await.is_err());
        assert!(fake.tags(&stopped).await.unwrap().is_empty(), "a throttled call tags nothing");
        let mode = PropertyChange::RunningMode { mode: RunningMode::AutoStop, auto_stop_minutes: Some(120) };
        fake.modify_properties(&stopped, &mode).await.unwrap();
        assert_eq!(state(&fake, &stopped).await, Some(WorkspaceState::Updating));
        clock.advance(fake.lifecycle().update_ms);
        let info = fake.workspace(&stopped).unwrap();
        assert_eq!(info.state, WorkspaceState::Stopped, "back to where it was");
        assert_eq!(info.properties.and_then(|p| p.auto_stop_minutes), Some(120));
        // ADMIN_MAINTENANCE is offered only from AVAILABLE.
        match fake.set_admin_maintenance(&stopped, true).await {
            Err(WorkspacesError::Service { code, .. }) => assert_eq!(code, "InvalidResourceStateException"),
            other => panic!("{other:?}"),
        }
        assert_eq!(faults.calls("workspaces.modify_properties"), 1);
    }

    #[tokio::test]
    async fn the_quota_refuses_the_whole_call_when_reached() {
        let fake = FakeWorkspaces::new(ManualClock::new(0)).with_max_workspaces(1);
        let out = fake.create_workspaces(&[item("ann"), item("bob")]).await.unwrap();
        assert_eq!(out.failed[0].code, "ResourceLimitExceeded");
        match fake.create_workspaces(&[item("cy")]).await {
            Err(WorkspacesError::Service { code, .. }) => assert_eq!(code, "ResourceLimitExceededException"),
            other => panic!("{other:?}"),
        }
    }
}
