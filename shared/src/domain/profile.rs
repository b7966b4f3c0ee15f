//! WorkSpace profiles: which directory, bundle and properties a department's joiners get.
//! Loaded once at cold start and validated with errors that name the profile and field.

use super::event::WorkspaceOverrides;
use super::validation::{FieldError, Rule, echo};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunningMode {
    AutoStop,
    AlwaysOn,
    /// WorkSpaces Core only; refused unless the configuration allows it.
    Manual,
}

impl RunningMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunningMode::AutoStop => "AUTO_STOP",
            RunningMode::AlwaysOn => "ALWAYS_ON",
            RunningMode::Manual => "MANUAL",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "AUTO_STOP" => Some(RunningMode::AutoStop),
            "ALWAYS_ON" => Some(RunningMode::AlwaysOn),
            "MANUAL" => Some(RunningMode::Manual),
            _ => None,
        }
    }
}

pub const COMPUTE_TYPES: &[&str] = &[
    "VALUE",
    "STANDARD",
    "PERFORMANCE",
    "POWER",
    "GRAPHICS",
    "POWERPRO",
    "GENERALPURPOSE_4XLARGE",
    "GENERALPURPOSE_8XLARGE",
    "GRAPHICSPRO",
    "GRAPHICS_G4DN",
    "GRAPHICSPRO_G4DN",
];
const PROTOCOLS: &[&str] = &["PCOIP", "WSP"];

fn auto_stop() -> RunningMode {
    RunningMode::AutoStop
}

/// Everything of a CreateWorkspaces request that is chosen by configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub directory_id: String,
    pub bundle_id: String,
    #[serde(default = "auto_stop")]
    pub running_mode: RunningMode,
    /// Only for AUTO_STOP, in steps of 60.
    #[serde(default)]
    pub auto_stop_minutes: Option<i32>,
    #[serde(default)]
    pub compute_type: Option<String>,
    #[serde(default)]
    pub root_volume_gib: Option<i32>,
    #[serde(default)]
    pub user_volume_gib: Option<i32>,
    #[serde(default)]
    pub root_volume_encrypted: bool,
    #[serde(default)]
    pub user_volume_encrypted: bool,
    /// Symmetric KMS key (id, ARN or alias) for volume encryption; set at launch only.
    #[serde(default)]
    pub kms_key: Option<String>,
    #[serde(default)]
    pub protocols: Vec<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// User-decoupled WorkSpace: `UserName` is `[UNDEFINED]` and `WorkspaceName` carries the user.
    #[serde(default)]
    pub user_decoupled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesConfig {
    pub default_profile: String,
    pub profiles: BTreeMap<String, Profile>,
    /// Department → profile name; departments are matched case-insensitively.
    #[serde(default)]
    pub departments: BTreeMap<String, String>,
    #[serde(default)]
    pub allow_manual_running_mode: bool,
}

/// Validated profiles, ready to resolve.
#[derive(Debug, Clone, PartialEq)]
pub struct Profiles {
    config: ProfilesConfig,
    departments: BTreeMap<String, String>,
}

fn is_hex_id(s: &str, prefix: &str, hex_only: bool) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        (8..=63).contains(&rest.len())
            && rest.chars().all(|c| c.is_ascii_digit() || c.is_ascii_lowercase() && (!hex_only || c <= 'f'))
    })
}

impl Profile {
    /// Checks the rules WorkSpaces would otherwise refuse per item, with the field named.
    pub fn validate(&self, at: &str, allow_manual: bool) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, rule: Rule, message: String| {
            errors.push(FieldError::new(format!("{at}.{field}"), rule, message))
        };
        if !is_hex_id(&self.directory_id, "d-", true) {
            fail(
                "directory_id",
                Rule::Pattern,
                format!("must match ^d-[0-9a-f]{{8,63}}$ (got {:?})", self.directory_id),
            );
        }
        if !is_hex_id(&self.bundle_id, "wsb-", false) {
            fail("bundle_id", Rule::Pattern, format!("must match ^wsb-[0-9a-z]{{8,63}}$ (got {:?})", self.bundle_id));
        }
        if self.running_mode == RunningMode::Manual && !allow_manual {
            fail(
                "running_mode",
                Rule::Enum,
                "MANUAL is for WorkSpaces Core only; set allow_manual_running_mode to use it".into(),
            );
        }
        if let Some(minutes) = self.auto_stop_minutes {
            if self.running_mode != RunningMode::AutoStop {
                fail(
                    "auto_stop_minutes",
                    Rule::Enum,
                    format!("applies only to AUTO_STOP (running_mode is {})", self.running_mode.as_str()),
                );
            } else if minutes <= 0 || minutes % 60 != 0 {
                fail(
                    "auto_stop_minutes",
                    Rule::MultipleOf,
                    format!("must be a positive multiple of 60 (got {minutes})"),
                );
            }
        }
        if let Some(c) = &self.compute_type
            && !COMPUTE_TYPES.contains(&c.as_str())
        {
            fail("compute_type", Rule::Enum, format!("must be one of {} (got {c:?})", COMPUTE_TYPES.join(", ")));
        }
        if let Some(g) = self.root_volume_gib
            && !(80..=2000).contains(&g)
        {
            fail("root_volume_gib", Rule::Range, format!("must be 80-2000 (got {g})"));
        }
        if let Some(g) = self.user_volume_gib
            && !(10..=2000).contains(&g)
        {
            fail("user_volume_gib", Rule::Range, format!("must be 10-2000 (got {g})"));
        }
        if (self.root_volume_encrypted || self.user_volume_encrypted)
            && self.kms_key.as_deref().is_none_or(str::is_empty)
        {
            fail(
                "kms_key",
                Rule::Required,
                "is required when a volume is encrypted (a symmetric KMS key id, ARN or alias)".into(),
            );
        }
        for p in &self.protocols {
            if !PROTOCOLS.contains(&p.as_str()) {
                fail("protocols", Rule::Enum, format!("must contain only PCOIP or WSP (got {p:?})"));
            }
        }
        if self.tags.len() > 50 {
            fail("tags", Rule::Length, format!("at most 50 tags (got {})", self.tags.len()));
        }
        for (k, v) in &self.tags {
            if k.is_empty() || k.chars().count() > 127 || k.to_lowercase().starts_with("aws:") {
                fail("tags", Rule::Length, format!("key {k:?} must be 1-127 characters and not start with aws:"));
            }
            if v.chars().count() > 255 {
                fail("tags", Rule::Length, format!("value of {k:?} must be at most 255 characters"));
            }
        }
        errors
    }
}

/// Profiles failed validation; every problem is listed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid WorkSpace profiles: {}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InvalidProfiles {
    pub errors: Vec<FieldError>,
}

impl Profiles {
    pub fn from_json(json: &str) -> Result<Profiles, InvalidProfiles> {
        let config: ProfilesConfig = serde_json::from_str(json).map_err(|e| InvalidProfiles {
            errors: vec![FieldError::new(
                "profiles",
                Rule::Json,
                format!("is not valid JSON for the profiles schema: {e}"),
            )],
        })?;
        Self::new(config)
    }

    pub fn new(config: ProfilesConfig) -> Result<Profiles, InvalidProfiles> {
        let mut errors = Vec::new();
        if !config.profiles.contains_key(&config.default_profile) {
            errors.push(FieldError::new(
                "default_profile",
                Rule::UnknownProfile,
                format!("names no profile ({:?})", config.default_profile),
            ));
        }
        for (name, profile) in &config.profiles {
            errors.extend(profile.validate(&format!("profiles.{name}"), config.allow_manual_running_mode));
        }
        for (department, profile) in &config.departments {
            if !config.profiles.contains_key(profile) {
                errors.push(FieldError::new(
                    format!("departments.{department}"),
                    Rule::UnknownProfile,
                    format!("names no profile ({profile:?})"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(InvalidProfiles { errors });
        }
        let departments = config.departments.iter().map(|(d, p)| (d.to_lowercase(), p.clone())).collect();
        Ok(Profiles { config, departments })
    }

    /// The KMS keys the profiles encrypt volumes with, each with the first profile naming it.
    /// The directories the profiles put WorkSpaces in: the ones the drift audit lists.
    pub fn directories(&self) -> std::collections::BTreeSet<String> {
        self.config.profiles.values().map(|p| p.directory_id.clone()).collect()
    }

    pub fn volume_keys(&self) -> BTreeMap<&str, &str> {
        let mut keys = BTreeMap::new();
        for (name, profile) in &self.config.profiles {
            if let Some(key) = profile.kms_key.as_deref().filter(|k| !k.is_empty()) {
                keys.entry(key).or_insert(name.as_str());
            }
        }
        keys
    }

    /// The profile for a joiner: the event's explicit profile, else the department's, else the
    /// default; then the event's overrides, validated like a profile.
    pub fn resolve(
        &self,
        department: Option<&str>,
        overrides: &WorkspaceOverrides,
    ) -> Result<(String, Profile), Vec<FieldError>> {
        let name = match &overrides.profile {
            Some(p) if self.config.profiles.contains_key(p) => p.clone(),
            Some(p) => {
                return Err(vec![FieldError::new(
                    "workspace.profile",
                    Rule::UnknownProfile,
                    format!("names no profile ({})", echo(p)),
                )]);
            }
            None => department
                .and_then(|d| self.departments.get(&d.to_lowercase()))
                .cloned()
                .unwrap_or_else(|| self.config.default_profile.clone()),
        };
        let profile = self
            .config
            .profiles
            .get(&name)
            .cloned()
            .ok_or_else(|| vec![FieldError::new("workspace.profile", Rule::UnknownProfile, "names no profile")])?;
        self.overridden(name, profile, overrides)
    }

    /// The profile a mover moves to: a move naming a department or a profile resolves as a
    /// join does; one with WorkSpace fields only changes those of the employee's profile as it
    /// is (`current`: its name and profile), so what an earlier event chose is kept.
    pub fn resolve_move(
        &self,
        current: Option<(&str, &Profile)>,
        department: Option<&str>,
        overrides: &WorkspaceOverrides,
    ) -> Result<(String, Profile), Vec<FieldError>> {
        match current {
            Some((name, profile)) if department.is_none() && overrides.profile.is_none() => {
                self.overridden(name.to_owned(), profile.clone(), overrides)
            }
            _ => self.resolve(department, overrides),
        }
    }

    /// `profile` with the event's overrides, validated like a profile.
    fn overridden(
        &self,
        name: String,
        mut profile: Profile,
        overrides: &WorkspaceOverrides,
    ) -> Result<(String, Profile), Vec<FieldError>> {
        let mut errors = Vec::new();
        if let Some(b) = &overrides.bundle_id {
            profile.bundle_id = b.clone();
        }
        if let Some(m) = &overrides.running_mode {
            match RunningMode::parse(m) {
                Some(mode) => {
                    profile.running_mode = mode;
                    if mode != RunningMode::AutoStop {
                        profile.auto_stop_minutes = None;
                    }
                }
                None => errors.push(FieldError::new(
                    "workspace.running_mode",
                    Rule::Enum,
                    format!("must be AUTO_STOP or ALWAYS_ON (got {m:?})"),
                )),
            }
        }
        if overrides.auto_stop_minutes.is_some() {
            profile.auto_stop_minutes = overrides.auto_stop_minutes;
        }
        if overrides.compute_type.is_some() {
            profile.compute_type = overrides.compute_type.clone();
        }
        if overrides.root_volume_gib.is_some() {
            profile.root_volume_gib = overrides.root_volume_gib;
        }
        if overrides.user_volume_gib.is_some() {
            profile.user_volume_gib = overrides.user_volume_gib;
        }
        errors.extend(profile.validate("workspace", self.config.allow_manual_running_mode));
        if errors.is_empty() { Ok((name, profile)) } else { Err(errors) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> serde_json::Value {
        serde_json::json!({
            "default_profile": "standard",
            "profiles": {
                "standard": { "directory_id": "d-9067a1b2c3", "bundle_id": "wsb-stdwin2022", "auto_stop_minutes": 60 },
                "power": { "directory_id": "d-9067a1b2c3", "bundle_id": "wsb-perfwin2022", "running_mode": "ALWAYS_ON",
                           "compute_type": "POWER", "user_volume_encrypted": true, "kms_key": "alias/ws", "tags": { "Team": "eng" } }
            },
            "departments": { "Engineering": "power" }
        })
    }

    #[test]
    fn departments_pick_profiles_case_insensitively() {
        let p = Profiles::from_json(&config().to_string()).unwrap();
        let none = WorkspaceOverrides::default();
        assert_eq!(p.resolve(Some("engineering"), &none).unwrap().0, "power");
        assert_eq!(p.resolve(Some("Sales"), &none).unwrap().0, "standard");
        assert_eq!(p.resolve(None, &none).unwrap().0, "standard");
        let explicit = WorkspaceOverrides { profile: Some("power".into()), ..Default::default() };
        assert_eq!(p.resolve(None, &explicit).unwrap().1.compute_type.as_deref(), Some("POWER"));
    }

    #[test]
    fn every_problem_is_named() {
        let mut c = config();
        c["profiles"]["standard"]["running_mode"] = "MANUAL".into();
        c["profiles"]["power"]["auto_stop_minutes"] = 60.into();
        c["profiles"]["power"]["kms_key"] = serde_json::Value::Null;
        c["departments"]["Sales"] = "nope".into();
        let err = Profiles::from_json(&c.to_string()).unwrap_err();
        let text = err.to_string();
        for expected in [
            "profiles.standard.running_mode MANUAL is for WorkSpaces Core only",
            "profiles.power.auto_stop_minutes applies only to AUTO_STOP",
            "profiles.power.kms_key is required",
            "departments.Sales names no profile",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
        c["allow_manual_running_mode"] = true.into();
        c["profiles"]["standard"]["auto_stop_minutes"] = serde_json::Value::Null;
        assert!(!Profiles::from_json(&c.to_string()).unwrap_err().to_string().contains("MANUAL"));
    }

    #[test]
    fn overrides_are_validated() {
        let p = Profiles::from_json(&config().to_string()).unwrap();
        let bad = WorkspaceOverrides { auto_stop_minutes: Some(45), ..Default::default() };
        let errors = p.resolve(None, &bad).unwrap_err();
        assert_eq!(errors[0].field, "workspace.auto_stop_minutes");
        let always_on = WorkspaceOverrides { running_mode: Some("ALWAYS_ON".into()), ..Default::default() };
        let (_, profile) = p.resolve(None, &always_on).unwrap();
        assert_eq!((profile.running_mode, profile.auto_stop_minutes), (RunningMode::AlwaysOn, None));
    }
}
