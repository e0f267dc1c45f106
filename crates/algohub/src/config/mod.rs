//! Configuration: defaults → `algohub.toml` → `ALGOHUB_*` environment → flags.
//!
//! Design: one serde [`Config`] whose `Default` (the `#[default(..)]` beside
//! each field) is the single source of the defaults, layered by figment: the
//! defaults, then the file (`--config`/`ALGOHUB_CONFIG`, else `./algohub.toml`
//! if it exists), then `ALGOHUB_<SETTING>` variables, then flags. A new
//! setting is a field here, a flag in `flags.rs` and an entry in
//! `default.toml` (tests check that file against the defaults). Errors name
//! the setting and where its value came from. Secrets (passwords in the
//! database and SMTP URLs) are redacted in `Debug` and so in logs.

mod flags;
mod redact;
#[cfg(test)]
mod tests;

pub use flags::{Overrides, ServeOverrides};
pub use redact::redact_url;

use crate::BoxError;
use algohub_core::services::{
    DEFAULT_CALL_TIMEOUT_SECS, DEFAULT_MAX_BACKLOG, DEFAULT_WASM_FUEL_PER_SEC, DEFAULT_WORK_LIMIT,
    MAX_TIMEOUT_SECS,
};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};
use smart_default::SmartDefault;
use std::path::PathBuf;

/// The documented default configuration file (`algohub config print-default`).
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// The file read when no `--config` names one (if it exists).
const DEFAULT_FILE: &str = "algohub.toml";

/// Environment variables `ALGOHUB_<SETTING>` set settings (other `ALGOHUB_*`
/// variables, such as `ALGOHUB_CONFIG`, are not settings and are ignored here).
const ENV_PREFIX: &str = "ALGOHUB_";

/// Settings whose values may hold a password (redacted in `Debug`).
const SECRET_URLS: [&str; 2] = ["database_url", "smtp_url"];

/// The largest `wasm_fuel_per_sec` (a million times what ordinary code
/// burns; 3000 s of it still fit in 64 bits).
pub const MAX_WASM_FUEL_PER_SEC: u64 = 1_000_000_000_000_000;

/// The largest `max_royalty_microcredits`: a million credits a call (sums
/// of 9 million such calls still fit in 64 bits).
pub const MAX_ROYALTY_CAP: i64 = 1_000_000_000_000;

/// The widest `credit_floor_microcredits` either way (a billion credits).
pub const MOST_CREDITS: i64 = 1_000_000_000_000_000;

/// The largest `wasm_instances` (each reserves about 4 GiB of address space).
pub const MAX_WASM_INSTANCES: u32 = 4096;

/// The largest `wasm_max_memory_mib`: 4 GiB, all a 32-bit wasm memory can address.
pub const MAX_WASM_MEMORY_MIB: u32 = 4096;

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text for people (coloured only when standard error is a terminal).
    #[default]
    Human,
    /// One JSON object a line.
    Json,
}

/// The configuration. `Config::default()` holds the defaults; [`Config::resolve`]
/// layers the file, the environment and flags over them and checks the result.
/// `default.toml` documents each setting.
#[derive(Clone, PartialEq, SmartDefault, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    #[default("127.0.0.1:8080".into())]
    pub listen: String,
    #[default("./algohub-data".into())]
    pub data_dir: PathBuf,
    /// Empty in a file or the defaults: a SQLite file `algohub.db` under
    /// `data_dir` (filled in by `resolve`).
    pub database_url: String,
    /// Empty in a file or the defaults: `http://<listen>` (filled in by `resolve`).
    pub base_url: String,
    pub log_format: LogFormat,
    #[default("info".into())]
    pub log_level: String,
    /// Whether every HTTP request is logged (at info).
    #[default(true)]
    pub access_log: bool,
    /// `None` (0 in a file): unlimited.
    #[serde(with = "zero_is_unlimited")]
    pub max_orgs_per_user: Option<u32>,
    #[default(7)]
    pub invitation_ttl_days: u32,
    #[default(true)]
    pub sudo_users_enabled: bool,
    #[default(250)]
    pub policy_poll_ms: u64,
    pub http_upstream_allow_private: bool,
    /// Whether usage-journal writes wait for the disk.
    pub metering_fsync: bool,
    /// Journaled usage records waiting for the database at most; beyond that,
    /// records go to the database directly (refused calls while it is down).
    #[default(DEFAULT_MAX_BACKLOG)]
    pub metering_max_backlog: u64,
    #[default(DEFAULT_WORK_LIMIT as u32)]
    pub default_work_limit: u32,
    #[default(30)]
    pub call_slot_lease_secs: u32,
    #[default(60)]
    pub max_impersonation_minutes: u32,
    #[default(60)]
    pub max_super_powers_minutes: u32,
    pub allow_impersonating_admins: bool,
    /// The storage quota of an account's data files unless a cluster admin
    /// set its own, in MiB (0: unlimited).
    #[default(algohub_core::services::DEFAULT_DATA_QUOTA_MIB)]
    pub data_quota_mib: u64,
    /// The lowest balance (microcredits) a paid call may leave its payer with.
    pub credit_floor_microcredits: i64,
    /// The highest price (royalty, microcredits) a version may charge a call.
    #[default(algohub_core::services::DEFAULT_MAX_ROYALTY_MICROCREDITS)]
    pub max_royalty_microcredits: i64,
    /// The longest a key a cluster admin creates for someone else may live, in hours.
    #[default(algohub_core::services::DEFAULT_MAX_MINTED_KEY_HOURS)]
    pub max_minted_key_hours: u32,
    /// A browser session unused this many minutes has ended.
    #[default(algohub_core::services::DEFAULT_SESSION_IDLE_MINUTES)]
    pub session_idle_minutes: u32,
    /// A browser session ends this many hours after sign-in, used or not.
    #[default(algohub_core::services::DEFAULT_SESSION_LIFETIME_HOURS)]
    pub session_lifetime_hours: u32,
    /// The timeout of a call that sets no `?timeout=`, in seconds.
    #[default(DEFAULT_CALL_TIMEOUT_SECS as u32)]
    pub call_timeout_secs: u32,
    /// The longest any call may run, in seconds (at most 3000).
    #[default(MAX_TIMEOUT_SECS as u32)]
    pub max_call_timeout_secs: u32,
    /// Wasm fuel a call gets per second of its timeout.
    #[default(DEFAULT_WASM_FUEL_PER_SEC)]
    pub wasm_fuel_per_sec: u64,
    /// Wasm instances that may run at once on this node (the pool size).
    #[default(algohub_runtime::DEFAULT_MAX_INSTANCES)]
    pub wasm_instances: u32,
    /// Instances one person's calls may hold at once (with the orgs whose
    /// keys he made); the rest of the pool stays for others.
    #[default(algohub_runtime::DEFAULT_INSTANCES_PER_CALLER)]
    pub wasm_instances_per_caller: u32,
    /// Linear memory one wasm instance may have, in MiB.
    #[default((algohub_runtime::DEFAULT_MAX_MEMORY_BYTES >> 20) as u32)]
    pub wasm_max_memory_mib: u32,
    /// Memory all running wasm instances may have together, in MiB; 0: half
    /// of the machine's memory (or of the control group's limit).
    pub wasm_memory_budget_mib: u64,
    /// SMTP server for invitation emails (`None`: emails stay in the outbox).
    pub smtp_url: Option<String>,
    #[default("algohub <algohub@localhost>".into())]
    pub smtp_from: String,
}

impl std::fmt::Debug for Config {
    /// Every setting, with the passwords in URLs hidden.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let serde_json::Value::Object(fields) =
            serde_json::to_value(self).map_err(|_| std::fmt::Error)?
        else {
            return Err(std::fmt::Error);
        };
        let mut out = f.debug_struct("Config");
        for (name, value) in &fields {
            match value {
                serde_json::Value::String(url) if SECRET_URLS.contains(&name.as_str()) => {
                    out.field(name, &redact_url(url))
                }
                value => out.field(name, &format_args!("{value}")),
            };
        }
        out.finish()
    }
}

impl Config {
    /// The configuration from the defaults, the file, the environment and
    /// `flags`, checked, with the derived defaults filled in.
    pub fn resolve(global: &Overrides, serve: &ServeOverrides) -> Result<Self, BoxError> {
        let config: Self = Self::figment(global, serve)?
            .extract()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        config.finish()
    }

    /// The layers, lowest first.
    fn figment(global: &Overrides, serve: &ServeOverrides) -> Result<Figment, BoxError> {
        let mut figment = Figment::new();
        match &global.config {
            Some(path) => {
                // Named explicitly, so it must be there.
                std::fs::metadata(path)
                    .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                figment = figment.merge(Toml::file_exact(path));
            }
            // Only in the working directory (`Toml::file` would also look in
            // its parents).
            None if std::path::Path::new(DEFAULT_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_FILE));
            }
            None => {}
        }
        Ok(figment
            .merge(Environment::new())
            .merge(flags::Flags(global, serve)))
    }

    /// Fills in the defaults derived from other settings and checks values
    /// (each error names its setting).
    fn finish(mut self) -> Result<Self, BoxError> {
        if self.database_url.is_empty() {
            self.database_url = format!("sqlite:{}", self.data_dir.join("algohub.db").display());
        }
        if self.base_url.is_empty() {
            self.base_url = format!("http://{}", self.listen);
        }
        self.base_url = self.base_url.trim_end_matches('/').to_string();
        self.smtp_url = self.smtp_url.filter(|u| !u.trim().is_empty());
        self.policy_poll_ms = self.policy_poll_ms.max(10);
        if self.invitation_ttl_days == 0 {
            return Err("invitation_ttl_days must be at least 1".into());
        }
        if self.default_work_limit == 0 {
            return Err("default_work_limit must be at least 1".into());
        }
        if self.call_slot_lease_secs < 3 {
            return Err("call_slot_lease_secs must be at least 3".into());
        }
        if self.metering_max_backlog == 0 {
            return Err("metering_max_backlog must be at least 1".into());
        }
        for (name, minutes) in [
            ("max_impersonation_minutes", self.max_impersonation_minutes),
            ("max_super_powers_minutes", self.max_super_powers_minutes),
        ] {
            match minutes {
                0 => return Err(format!("{name} must be at least 1").into()),
                m if m > 24 * 60 => return Err(format!("{name} is at most 1440 (a day)").into()),
                _ => {}
            }
        }
        if !(0..=MAX_ROYALTY_CAP).contains(&self.max_royalty_microcredits) {
            return Err(format!(
                "max_royalty_microcredits must be from 0 to {MAX_ROYALTY_CAP} (a million credits)"
            )
            .into());
        }
        if !(-MOST_CREDITS..=MOST_CREDITS).contains(&self.credit_floor_microcredits) {
            return Err(format!(
                "credit_floor_microcredits must be from -{MOST_CREDITS} to {MOST_CREDITS}"
            )
            .into());
        }
        if !(1..=24 * 365).contains(&self.max_minted_key_hours) {
            return Err("max_minted_key_hours must be from 1 to 8760 (a year)".into());
        }
        if !(1..=24 * 30).contains(&self.session_lifetime_hours) {
            return Err("session_lifetime_hours must be from 1 to 720 (30 days)".into());
        }
        if !(1..=self.session_lifetime_hours.saturating_mul(60))
            .contains(&self.session_idle_minutes)
        {
            return Err(
                "session_idle_minutes must be from 1 to session_lifetime_hours × 60".into(),
            );
        }
        let most = MAX_TIMEOUT_SECS as u32;
        if !(1..=most).contains(&self.max_call_timeout_secs) {
            return Err(format!("max_call_timeout_secs must be from 1 to {most} (seconds)").into());
        }
        if !(1..=self.max_call_timeout_secs).contains(&self.call_timeout_secs) {
            return Err(format!(
                "call_timeout_secs must be from 1 to max_call_timeout_secs ({})",
                self.max_call_timeout_secs
            )
            .into());
        }
        if !(1..=MAX_WASM_INSTANCES).contains(&self.wasm_instances) {
            return Err(format!("wasm_instances must be from 1 to {MAX_WASM_INSTANCES}").into());
        }
        if !(1..=self.wasm_instances).contains(&self.wasm_instances_per_caller) {
            return Err(format!(
                "wasm_instances_per_caller must be from 1 to wasm_instances ({})",
                self.wasm_instances
            )
            .into());
        }
        if !(1..=MAX_WASM_MEMORY_MIB).contains(&self.wasm_max_memory_mib) {
            return Err(
                format!("wasm_max_memory_mib must be from 1 to {MAX_WASM_MEMORY_MIB}").into(),
            );
        }
        if !(1..=MAX_WASM_FUEL_PER_SEC).contains(&self.wasm_fuel_per_sec) {
            return Err(
                format!("wasm_fuel_per_sec must be from 1 to {MAX_WASM_FUEL_PER_SEC}").into(),
            );
        }
        Ok(self)
    }

    /// The wasm runtime's pool, share and memory settings.
    pub fn runtime(&self) -> algohub_runtime::RuntimeConfig {
        let budget = match self.wasm_memory_budget_mib {
            0 => algohub_runtime::default_memory_budget(),
            mib => mib.saturating_mul(1 << 20),
        };
        algohub_runtime::RuntimeConfig {
            max_instances: self.wasm_instances,
            instances_per_caller: self.wasm_instances_per_caller,
            max_memory_bytes: (self.wasm_max_memory_mib as usize) << 20,
            memory_budget_bytes: budget,
            ..Default::default()
        }
    }

    /// Settings for one-shot commands (`admin`, `export`, `audit`): they run
    /// no algorithms, so they keep no usage journal (the server's is left to it).
    pub fn command_settings(&self) -> algohub_core::services::Settings {
        algohub_core::services::Settings {
            metering: false,
            usage_journal: None,
            ..self.settings()
        }
    }

    pub fn settings(&self) -> algohub_core::services::Settings {
        algohub_core::services::Settings {
            max_orgs_per_user: self.max_orgs_per_user,
            invitation_ttl_millis: i64::from(self.invitation_ttl_days) * 24 * 3600 * 1000,
            sudo_users_enabled: self.sudo_users_enabled,
            default_work_limit: i64::from(self.default_work_limit),
            call_slot_lease: std::time::Duration::from_secs(u64::from(self.call_slot_lease_secs)),
            metering: true,
            usage_journal: Some(self.data_dir.join("usage-journal")),
            usage_journal_fsync: self.metering_fsync,
            metering_max_backlog: self.metering_max_backlog,
            max_impersonation_minutes: self.max_impersonation_minutes,
            max_super_powers_minutes: self.max_super_powers_minutes,
            allow_impersonating_admins: self.allow_impersonating_admins,
            max_minted_key_hours: self.max_minted_key_hours,
            session_idle_minutes: self.session_idle_minutes,
            session_lifetime_hours: self.session_lifetime_hours,
            data_quota_mib: (self.data_quota_mib > 0).then_some(self.data_quota_mib),
            max_royalty_microcredits: self.max_royalty_microcredits,
            credit_floor_microcredits: self.credit_floor_microcredits,
            call_timeout: std::time::Duration::from_secs(u64::from(self.call_timeout_secs)),
            max_call_timeout: std::time::Duration::from_secs(u64::from(self.max_call_timeout_secs)),
            wasm_fuel_per_sec: self.wasm_fuel_per_sec,
            ..Default::default()
        }
    }
}

/// The `ALGOHUB_<SETTING>` variables, as a figment layer whose errors name
/// the variable (figment's own says "DEFAULT_WORK_LIMIT in `ALGOHUB_`").
struct Environment(Env);

impl Environment {
    fn new() -> Self {
        let names = setting_names();
        Self(
            Env::prefixed(ENV_PREFIX)
                .filter(move |key| names.iter().any(|n| key.as_str().eq_ignore_ascii_case(n))),
        )
    }
}

impl figment::Provider for Environment {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named("the environment")
            .interpolater(|_, keys| format!("{ENV_PREFIX}{}", keys.join(".").to_ascii_uppercase()))
    }

    fn data(&self) -> figment::Result<figment::value::Map<figment::Profile, figment::value::Dict>> {
        self.0.data()
    }
}

/// The name of every setting (the fields of [`Config`], as serde sees them).
pub fn setting_names() -> &'static [&'static str] {
    use serde::de::{self, Deserializer, Visitor};
    /// A deserializer that only records the field names it is asked for.
    struct Names(&'static [&'static str]);
    impl<'de> Deserializer<'de> for &mut Names {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only field names"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(de::Error::custom("only field names"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut names = Names(&[]);
    let _ = Config::deserialize(&mut names);
    names.0
}

/// `max_orgs_per_user`: 0 in a file, the environment or a flag means unlimited.
mod zero_is_unlimited {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(v.unwrap_or(0))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        let n = u32::deserialize(d)?;
        Ok((n != 0).then_some(n))
    }
}
