//! The one directory model behind all simulated services: directories, bundles, users and
//! WorkSpaces, with the WorkSpace lifecycle driven by simulated time.

use crate::config::Lifecycle;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryKind {
    /// AWS Managed Microsoft AD: users can be created (DS Data, WorkDocs).
    MicrosoftAd,
    SimpleAd,
    /// Users live on premises and already exist; nothing can create them here.
    AdConnector,
}

impl DirectoryKind {
    /// The `DirectoryType` WorkSpaces reports.
    pub fn workspaces_type(self) -> &'static str {
        match self {
            DirectoryKind::MicrosoftAd | DirectoryKind::SimpleAd => "SIMPLE_AD",
            DirectoryKind::AdConnector => "AD_CONNECTOR",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Which API created the user (`seed` for users that already existed).
    #[serde(default = "seeded")]
    pub created_by: String,
    /// Whether a password was ever set. The simulator never keeps passwords themselves.
    #[serde(default)]
    pub password_set: bool,
    #[serde(default)]
    pub id: String,
}

fn yes() -> bool {
    true
}
fn seeded() -> String {
    "seed".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Directory {
    pub id: String,
    pub name: String,
    pub kind: DirectoryKind,
    /// Registered with WorkSpaces (CreateWorkspaces accepts it).
    #[serde(default = "yes")]
    pub registered: bool,
    /// Users by lower-cased user name: directory user names are not case-sensitive.
    #[serde(default)]
    pub users: BTreeMap<String, User>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    pub id: String,
    pub name: String,
    #[serde(default = "default_compute")]
    pub compute_type: String,
    #[serde(default = "default_root")]
    pub root_gib: u32,
    #[serde(default = "default_user")]
    pub user_gib: u32,
}
fn default_compute() -> String {
    "STANDARD".into()
}
fn default_root() -> u32 {
    80
}
fn default_user() -> u32 {
    50
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WsState {
    Pending,
    Available,
    Error,
    Suspended,
    Terminating,
    Terminated,
    Updating,
    AdminMaintenance,
}

impl WsState {
    pub fn as_str(self) -> &'static str {
        match self {
            WsState::Pending => "PENDING",
            WsState::Available => "AVAILABLE",
            WsState::Error => "ERROR",
            WsState::Suspended => "SUSPENDED",
            WsState::Terminating => "TERMINATING",
            WsState::Terminated => "TERMINATED",
            WsState::Updating => "UPDATING",
            WsState::AdminMaintenance => "ADMIN_MAINTENANCE",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Workspace {
    pub id: String,
    pub directory_id: String,
    pub user_name: String,
    pub bundle_id: String,
    /// The request's optional members, echoed back as the service does.
    pub request: Value,
    pub computer_name: String,
    pub ip_address: String,
    pub visible_at_ms: f64,
    pub ready_at_ms: f64,
    /// Final state after PENDING: AVAILABLE, or ERROR with code and message.
    pub failure: Option<(String, String)>,
    pub suspended: bool,
    pub terminated_at_ms: Option<f64>,
    pub gone_at_ms: Option<f64>,
    /// Tags by key (CreateWorkspaces' `Tags`, CreateTags, DeleteTags).
    pub tags: BTreeMap<String, String>,
    pub properties: Properties,
    /// A ModifyWorkspaceProperties in progress.
    pub update: Option<Update>,
    /// ModifyWorkspaceState ADMIN_MAINTENANCE.
    pub admin_maintenance: bool,
    /// When the WorkSpace was launched: the cooldowns of volume growth and compute increase
    /// start then.
    pub launched_at_ms: f64,
    pub last_volume_change_ms: Option<f64>,
    pub last_compute_up_ms: Option<f64>,
    pub last_compute_down_ms: Option<f64>,
}

/// `WorkspaceProperties` as DescribeWorkspaces reports them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Properties {
    pub running_mode: String,
    pub auto_stop_minutes: Option<i64>,
    pub root_gib: i64,
    pub user_gib: i64,
    pub compute_type: String,
}

/// A property change under way: what the WorkSpace will have at `done_at_ms`, and the
/// `ModificationStates` resources it touches.
#[derive(Debug, Clone, Serialize)]
pub struct Update {
    pub properties: Properties,
    pub resources: Vec<&'static str>,
    pub done_at_ms: f64,
}

impl Workspace {
    /// State at `now`; `None` once the id has disappeared.
    pub fn state(&self, now: f64) -> Option<WsState> {
        if let (Some(terminated), Some(gone)) = (self.terminated_at_ms, self.gone_at_ms) {
            return if now >= gone {
                None
            } else if now >= terminated {
                Some(WsState::Terminated)
            } else {
                Some(WsState::Terminating)
            };
        }
        if now < self.ready_at_ms {
            Some(WsState::Pending)
        } else if self.failure.is_some() {
            Some(WsState::Error)
        } else if self.suspended {
            Some(WsState::Suspended)
        } else if self.update.as_ref().is_some_and(|u| now < u.done_at_ms) {
            Some(WsState::Updating)
        } else if self.admin_maintenance {
            Some(WsState::AdminMaintenance)
        } else {
            Some(WsState::Available)
        }
    }

    /// Applies a property change whose time has come.
    pub fn settle(&mut self, now: f64) {
        if let Some(update) = self.update.take_if(|u| now >= u.done_at_ms) {
            self.properties = update.properties;
        }
    }

    pub fn visible(&self, now: f64) -> bool {
        now >= self.visible_at_ms && self.state(now).is_some()
    }

    pub fn terminate(&mut self, now: f64, lifecycle: &Lifecycle) {
        if self.terminated_at_ms.is_none() {
            let terminated = now + lifecycle.terminate_ms as f64;
            self.terminated_at_ms = Some(terminated);
            self.gone_at_ms = Some(terminated + lifecycle.terminated_visible_ms as f64);
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct World {
    pub directories: BTreeMap<String, Directory>,
    pub bundles: BTreeMap<String, Bundle>,
    /// In creation order of their ids' sequence, which DescribeWorkspaces pages follow.
    pub workspaces: BTreeMap<u64, Workspace>,
    next_seq: u64,
    /// DS Data ClientTokens: (directory, token) → (SAMAccountName, request fingerprint, time).
    #[serde(skip)]
    pub client_tokens: BTreeMap<(String, String), (String, String, f64)>,
}

impl World {
    /// Drops WorkSpaces whose ids have disappeared.
    pub fn collect_gone(&mut self, now: f64) {
        self.workspaces.retain(|_, ws| ws.state(now).is_some());
        for ws in self.workspaces.values_mut() {
            ws.settle(now);
        }
    }

    pub fn insert_workspace(&mut self, ws: Workspace) {
        self.next_seq += 1;
        self.workspaces.insert(self.next_seq, ws);
    }

    pub fn workspace_by_id(&self, id: &str) -> Option<&Workspace> {
        self.workspaces.values().find(|ws| ws.id == id)
    }

    pub fn workspace_by_id_mut(&mut self, id: &str) -> Option<&mut Workspace> {
        self.workspaces.values_mut().find(|ws| ws.id == id)
    }

    /// The WorkSpace a user still has in a directory, in any state until its id disappears.
    pub fn workspace_of(&self, directory_id: &str, user_lower: &str, now: f64) -> Option<&Workspace> {
        self.workspaces.values().find(|ws| {
            ws.directory_id == directory_id && ws.user_name.to_lowercase() == user_lower && ws.state(now).is_some()
        })
    }

    pub fn live_workspaces(&self, now: f64) -> usize {
        self.workspaces.values().filter(|ws| ws.state(now).is_some()).count()
    }

    pub fn user(&self, directory_id: &str, username: &str) -> Option<&User> {
        self.directories.get(directory_id)?.users.get(&username.to_lowercase())
    }
}

/// Seed data loaded at startup or through the admin API; merged into the world.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Seed {
    pub directories: Vec<SeedDirectory>,
    pub bundles: Vec<Bundle>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedDirectory {
    pub id: String,
    pub name: String,
    pub kind: DirectoryKind,
    #[serde(default = "yes")]
    pub registered: bool,
    #[serde(default)]
    pub users: Vec<User>,
}

impl Seed {
    pub fn validate(&self) -> Result<(), String> {
        for d in &self.directories {
            if !crate::ids::is_directory_id(&d.id) {
                return Err(format!("directories[].id {:?} must match ^d-[0-9a-f]{{8,63}}$", d.id));
            }
        }
        for b in &self.bundles {
            if !crate::ids::is_bundle_id(&b.id) {
                return Err(format!("bundles[].id {:?} must match ^wsb-[0-9a-z]{{8,63}}$", b.id));
            }
        }
        Ok(())
    }

    pub fn apply(&self, world: &mut World) {
        for d in &self.directories {
            let dir = world.directories.entry(d.id.clone()).or_insert_with(|| Directory {
                id: d.id.clone(),
                name: d.name.clone(),
                kind: d.kind,
                registered: d.registered,
                users: BTreeMap::new(),
            });
            dir.name = d.name.clone();
            dir.kind = d.kind;
            dir.registered = d.registered;
            for u in &d.users {
                let mut user = u.clone();
                if user.id.is_empty() {
                    user.id = crate::ids::user_id();
                }
                dir.users.insert(u.username.to_lowercase(), user);
            }
        }
        for b in &self.bundles {
            world.bundles.insert(b.id.clone(), b.clone());
        }
    }
}
