//! The intake's configuration, from its environment.

use shared::config::{ConfigError, EnvReader};
use shared::domain::event::MAX_GRACE_HOURS;
use shared::domain::profile::Profiles;

/// How directory users come to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// WorkDocs CreateUser (the original design; WorkDocs was shut down on 2025-04-25).
    WorkDocs,
    /// Directory Service Data CreateUser + Directory Service ResetUserPassword.
    DsData,
    /// Users already exist (AD Connector): nothing is created.
    Existing,
}

impl Backend {
    fn parse(s: &str) -> Result<Backend, String> {
        match s {
            "workdocs" => Ok(Backend::WorkDocs),
            "ds-data" => Ok(Backend::DsData),
            "existing" => Ok(Backend::Existing),
            other => Err(format!("must be workdocs, ds-data or existing (got {other:?})")),
        }
    }
}

#[derive(Debug)]
pub struct Config {
    pub table_name: String,
    pub workspace_requests_queue_url: String,
    pub termination_requests_queue_url: String,
    pub backend: Backend,
    pub disable_user_on_leave: bool,
    pub leave_grace_ms: i64,
    pub profiles: Profiles,
    pub idempotency_ttl_s: i64,
    pub fallback_claim_ms: i64,
    pub clock_skew_ms: i64,
    pub effective_horizon_ms: i64,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::read(EnvReader::from_env())
    }

    pub fn read<F: Fn(&str) -> Option<String>>(mut env: EnvReader<F>) -> Result<Config, ConfigError> {
        let table_name: String = env.required("TABLE_NAME");
        let workspace_requests_queue_url: String = env.required("WORKSPACE_REQUESTS_QUEUE_URL");
        let termination_requests_queue_url: String = env.required("TERMINATION_REQUESTS_QUEUE_URL");
        let backend = env.required_with("DIRECTORY_BACKEND", Backend::parse);
        let on_leave: String = env.optional("ON_LEAVE_DIRECTORY_USER", "keep".to_owned());
        env.check("ON_LEAVE_DIRECTORY_USER", on_leave == "keep" || on_leave == "disable", "must be keep or disable");
        env.check(
            "ON_LEAVE_DIRECTORY_USER",
            on_leave != "disable" || backend == Some(Backend::DsData),
            "disable needs DIRECTORY_BACKEND=ds-data (DS Data DisableUser); other backends keep the user",
        );
        // Hours, fractions allowed (the local stack runs a grace period of seconds).
        let grace_hours: f64 = env.optional("LEAVE_GRACE_HOURS", 0.0);
        env.check(
            "LEAVE_GRACE_HOURS",
            (0.0..=f64::from(MAX_GRACE_HOURS)).contains(&grace_hours),
            "must be 0-2160 (90 days; 0 terminates at once)",
        );
        let profiles = env.required_with("WORKSPACE_PROFILES", |s| Profiles::from_json(s).map_err(|e| e.to_string()));
        // The template grants the provisioner KMS on these keys only (VolumeEncryptionKeyArns): a
        // profile naming another would fail at every CreateWorkspaces, so it is refused here.
        let granted_keys: String = env.optional("VOLUME_ENCRYPTION_KEY_ARNS", String::new());
        if let Some(profiles) = &profiles {
            let granted: Vec<&str> = granted_keys.split(',').map(str::trim).filter(|k| !k.is_empty()).collect();
            for (key, profile) in profiles.volume_keys() {
                env.check(
                    "VOLUME_ENCRYPTION_KEY_ARNS",
                    granted.contains(&key),
                    &format!("must list {key:?}, the kms_key of profile {profile:?} (as the profile names it)"),
                );
            }
        }
        let ttl_days: i64 = env.optional("IDEMPOTENCY_TTL_DAYS", 30);
        env.check("IDEMPOTENCY_TTL_DAYS", (1..=365).contains(&ttl_days), "must be 1-365");
        let fallback_s: i64 = env.optional("CLAIM_FALLBACK_SECONDS", 900);
        let skew_s: i64 = env.optional("CLOCK_SKEW_SECONDS", 300);
        env.check("CLOCK_SKEW_SECONDS", (0..=3600).contains(&skew_s), "must be 0-3600");
        let horizon_days: i64 = env.optional("EFFECTIVE_HORIZON_DAYS", 400);
        env.check("EFFECTIVE_HORIZON_DAYS", (1..=3650).contains(&horizon_days), "must be 1-3650");
        env.finish_with(|| {
            Some(Config {
                table_name,
                workspace_requests_queue_url,
                termination_requests_queue_url,
                backend: backend?,
                disable_user_on_leave: on_leave == "disable",
                leave_grace_ms: (grace_hours * 3_600_000.0).round() as i64,
                profiles: profiles?,
                idempotency_ttl_s: ttl_days * 86_400,
                fallback_claim_ms: fallback_s * 1000,
                clock_skew_ms: skew_s * 1000,
                effective_horizon_ms: horizon_days * 86_400_000,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn names_every_missing_or_bad_variable() {
        let env: HashMap<&str, &str> = [("DIRECTORY_BACKEND", "ldap"), ("WORKSPACE_PROFILES", "{}")].into();
        let err = Config::read(EnvReader::new(|k| env.get(k).map(|v| v.to_string()))).unwrap_err().to_string();
        for name in [
            "TABLE_NAME is not set",
            "WORKSPACE_REQUESTS_QUEUE_URL is not set",
            "DIRECTORY_BACKEND is invalid",
            "WORKSPACE_PROFILES is invalid",
        ] {
            assert!(err.contains(name), "{name} missing from {err}");
        }
    }

    #[test]
    fn a_profile_encrypting_with_a_key_the_template_does_not_grant_is_refused() {
        let profiles = r#"{"default_profile":"std","profiles":{"std":{"directory_id":"d-1234567890",
            "bundle_id":"wsb-1234567890","user_volume_encrypted":true,
            "kms_key":"arn:aws:kms:us-east-1:111122223333:key/1"}}}"#;
        let read = |granted: &'static str| {
            let env: HashMap<&str, &str> = [
                ("TABLE_NAME", "t"),
                ("WORKSPACE_REQUESTS_QUEUE_URL", "q"),
                ("TERMINATION_REQUESTS_QUEUE_URL", "q"),
                ("DIRECTORY_BACKEND", "existing"),
                ("WORKSPACE_PROFILES", profiles),
                ("VOLUME_ENCRYPTION_KEY_ARNS", granted),
            ]
            .into();
            Config::read(EnvReader::new(move |k| env.get(k).map(|v| v.to_string())))
        };
        let err = read("").unwrap_err().to_string();
        assert!(err.contains("VOLUME_ENCRYPTION_KEY_ARNS") && err.contains(r#"profile "std""#), "{err}");
        assert!(read("arn:aws:kms:us-east-1:111122223333:key/2").is_err(), "another key");
        let both = "arn:aws:kms:us-east-1:111122223333:key/2, arn:aws:kms:us-east-1:111122223333:key/1";
        assert!(read(both).is_ok());
    }
}
