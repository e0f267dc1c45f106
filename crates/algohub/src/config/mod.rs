//! Configuration: defaults → `algohub.toml` → `ALGOHUB_*` environment → flags.
//!
//! The file is read from `--config`/`ALGOHUB_CONFIG`, else `./algohub.toml` if it
//! exists. Clap merges environment and flags (a flag wins); those override the file.
//! Secrets (the database URL's password) are redacted in `Debug` and in logs.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The documented default configuration file (`algohub config print-default`).
pub const DEFAULT_TOML: &str = r#"# algohub configuration. Every key can also be set as an ALGOHUB_* environment
# variable (e.g. ALGOHUB_LISTEN) or a command-line flag (e.g. --listen); a flag
# wins over the environment, which wins over this file.

# Address to listen on.
listen = "127.0.0.1:8080"

# Directory for the embedded SQLite database and local files.
data_dir = "./algohub-data"

# Database URL: sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DB.
# Default: a SQLite file algohub.db under data_dir. PostgreSQL over TLS:
# ?sslmode=require, or ?sslmode=verify-full&sslrootcert=/path/to/ca.pem.
# database_url = "postgres://algohub@127.0.0.1:5432/algohub"

# Public base URL used in self links (default: http://<listen>).
# base_url = "https://algohub.example.com"

# Logs: "human" or "json"; level as a tracing filter ("info", "algohub=debug").
log_format = "human"
log_level = "info"
# One info line per HTTP request (request id, method, route, status, duration). At
# tens of thousands of calls a second it costs a noticeable share of the call path's
# throughput; the Prometheus metrics count requests either way.
access_log = true

# How many organizations one user may belong to (0 = unlimited; 1 = one org only).
max_orgs_per_user = 0

# Days before an invitation expires.
invitation_ttl_days = 7

# Whether the sudo-user role exists on this cluster.
sudo_users_enabled = true

# How often (milliseconds) this node reads policy changes made by other nodes.
policy_poll_ms = 250

# Concurrent calls per account unless a cluster admin set another limit.
default_work_limit = 80

# With PostgreSQL, each running call holds a slot row leased for this many seconds
# (renewed while the node lives): a killed node's slots come back after at most this.
call_slot_lease_secs = 30

# A call is answered only once its usage record is durable: written to this node's
# usage journal (data_dir/usage-journal, on a local disk), from which records reach
# the database in large batches. The journal survives a killed process; with
# metering_fsync = true each write also waits for the disk (and SQLite commits usage
# batches with synchronous = FULL), so records survive an operating-system crash too.
metering_fsync = false

# While the database cannot take usage records, at most this many journaled records
# wait in memory (about 200 bytes each) for it; beyond that, records go to the
# database directly, so calls are refused (metering_failed) until it is back.
metering_max_backlog = 1000000

# Calls: the wall-clock limit (seconds) of a call that sets no ?timeout=, and the
# longest any call may run (a longer ?timeout= is cut to it; at most 3000). An
# algorithm's settings may lower both for its calls (max_timeout_secs).
call_timeout_secs = 300
max_call_timeout_secs = 3000

# Wasm fuel (about one unit per wasm instruction) a call gets per second of its
# timeout: 300 s give 30 trillion units. A busy loop burns about 1 billion units
# a second, loops of loads and stores about 15 billion (docs/guest-abi.md), so a
# runaway call is stopped by its deadline, not its fuel; the fuel a call used is
# its compute_units. An algorithm's settings may lower it (max_fuel_per_call).
wasm_fuel_per_sec = 100000000000

# Elevated access for cluster admins: the longest an impersonation session and
# super powers may last (minutes), and whether admins may impersonate other admins.
max_impersonation_minutes = 60
max_super_powers_minutes = 60
allow_impersonating_admins = false

# Invitation emails go out through this SMTP server: smtp://host:25 (plain; add
# ?tls=required for STARTTLS) or smtps://user:password@host:465. Unset: emails wait
# in the outbox (the invitation itself works; its token is in the API's outbox only).
# smtp_url = "smtp://127.0.0.1:25"
smtp_from = "algohub <algohub@localhost>"

# Whether algorithms of the http runtime may forward calls to loopback, private,
# link-local or otherwise internal addresses (off: such upstreams are refused, so
# a user cannot make the hub reach into its own network).
http_upstream_allow_private = false
"#;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub base_url: Option<String>,
    pub log_format: Option<String>,
    pub log_level: Option<String>,
    pub access_log: Option<bool>,
    pub max_orgs_per_user: Option<u32>,
    pub invitation_ttl_days: Option<u32>,
    pub sudo_users_enabled: Option<bool>,
    pub policy_poll_ms: Option<u64>,
    pub http_upstream_allow_private: Option<bool>,
    pub metering_fsync: Option<bool>,
    pub metering_max_backlog: Option<u64>,
    pub default_work_limit: Option<u32>,
    pub call_slot_lease_secs: Option<u32>,
    pub max_impersonation_minutes: Option<u32>,
    pub max_super_powers_minutes: Option<u32>,
    pub allow_impersonating_admins: Option<bool>,
    pub call_timeout_secs: Option<u32>,
    pub max_call_timeout_secs: Option<u32>,
    pub wasm_fuel_per_sec: Option<u64>,
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
}

impl FileConfig {
    pub fn load(explicit: Option<&Path>) -> anyhow_like::Result<Self> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from("algohub.toml");
                if !p.exists() {
                    return Ok(Self::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| format!("invalid config file {}: {e}", path.display()).into())
    }
}

/// The resolved configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub base_url: String,
    pub log_format: String,
    pub log_level: String,
    /// Whether every HTTP request is logged (at info).
    pub access_log: bool,
    pub max_orgs_per_user: Option<u32>,
    pub invitation_ttl_days: u32,
    pub sudo_users_enabled: bool,
    pub policy_poll_ms: u64,
    pub http_upstream_allow_private: bool,
    /// Whether usage-journal writes wait for the disk.
    pub metering_fsync: bool,
    /// Journaled usage records waiting for the database at most; beyond that,
    /// records go to the database directly (refused calls while it is down).
    pub metering_max_backlog: u64,
    pub default_work_limit: u32,
    pub call_slot_lease_secs: u32,
    pub max_impersonation_minutes: u32,
    pub max_super_powers_minutes: u32,
    pub allow_impersonating_admins: bool,
    /// The timeout of a call that sets no `?timeout=`, in seconds.
    pub call_timeout_secs: u32,
    /// The longest any call may run, in seconds (at most 3000).
    pub max_call_timeout_secs: u32,
    /// Wasm fuel a call gets per second of its timeout.
    pub wasm_fuel_per_sec: u64,
    /// SMTP server for invitation emails (`None`: emails stay in the outbox).
    pub smtp_url: Option<String>,
    pub smtp_from: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("base_url", &self.base_url)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("access_log", &self.access_log)
            .field("max_orgs_per_user", &self.max_orgs_per_user)
            .field("invitation_ttl_days", &self.invitation_ttl_days)
            .field("sudo_users_enabled", &self.sudo_users_enabled)
            .field("policy_poll_ms", &self.policy_poll_ms)
            .field(
                "http_upstream_allow_private",
                &self.http_upstream_allow_private,
            )
            .field("metering_fsync", &self.metering_fsync)
            .field("metering_max_backlog", &self.metering_max_backlog)
            .field("default_work_limit", &self.default_work_limit)
            .field("call_slot_lease_secs", &self.call_slot_lease_secs)
            .field("max_impersonation_minutes", &self.max_impersonation_minutes)
            .field("max_super_powers_minutes", &self.max_super_powers_minutes)
            .field(
                "allow_impersonating_admins",
                &self.allow_impersonating_admins,
            )
            .field("call_timeout_secs", &self.call_timeout_secs)
            .field("max_call_timeout_secs", &self.max_call_timeout_secs)
            .field("wasm_fuel_per_sec", &self.wasm_fuel_per_sec)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("smtp_from", &self.smtp_from)
            .finish()
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; a
/// `password=` query parameter is hidden too.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = redact_userinfo(base);
    match query {
        None => base,
        Some(q) => {
            let q: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{base}?{}", q.join("&"))
        }
    }
}

fn redact_userinfo(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.rsplit_once('@')
    {
        let user = creds.split(':').next().unwrap_or("");
        if creds.contains(':') {
            return format!("{scheme}://{user}:***@{host}");
        }
    }
    url.to_string()
}

/// Overrides from environment and flags (already merged by clap).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Configuration file (default: ./algohub.toml if present).
    #[arg(long, env = "ALGOHUB_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Database URL (sqlite:PATH or postgres://...); default a SQLite file in the data directory.
    #[arg(
        long,
        env = "ALGOHUB_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Data directory (default ./algohub-data/).
    #[arg(long, env = "ALGOHUB_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Log format: human or json.
    #[arg(long, env = "ALGOHUB_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// Log level filter, e.g. info or algohub=debug.
    #[arg(long, env = "ALGOHUB_LOG_LEVEL", global = true)]
    pub log_level: Option<String>,
}

/// Overrides that only `serve` takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeOverrides {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "ALGOHUB_LISTEN")]
    pub listen: Option<String>,
    /// Public base URL used in self links.
    #[arg(long, env = "ALGOHUB_BASE_URL")]
    pub base_url: Option<String>,
    /// Log every HTTP request at info (default true).
    #[arg(long, env = "ALGOHUB_ACCESS_LOG")]
    pub access_log: Option<bool>,
    /// Organizations one user may belong to (0 = unlimited).
    #[arg(long, env = "ALGOHUB_MAX_ORGS_PER_USER")]
    pub max_orgs_per_user: Option<u32>,
    /// Days before an invitation expires (default 7).
    #[arg(long, env = "ALGOHUB_INVITATION_TTL_DAYS")]
    pub invitation_ttl_days: Option<u32>,
    /// Whether the sudo-user role exists (default true).
    #[arg(long, env = "ALGOHUB_SUDO_USERS_ENABLED")]
    pub sudo_users_enabled: Option<bool>,
    /// Milliseconds between reads of other nodes' policy changes (default 250).
    #[arg(long, env = "ALGOHUB_POLICY_POLL_MS")]
    pub policy_poll_ms: Option<u64>,
    /// Let http-runtime algorithms call loopback and private addresses (default false).
    #[arg(long, env = "ALGOHUB_HTTP_UPSTREAM_ALLOW_PRIVATE")]
    pub http_upstream_allow_private: Option<bool>,
    /// Make each usage-journal write wait for the disk, so usage records survive
    /// an operating-system crash too, not only a killed process (default false).
    #[arg(long, env = "ALGOHUB_METERING_FSYNC")]
    pub metering_fsync: Option<bool>,
    /// Journaled usage records that wait for the database at most while it cannot
    /// take them; beyond that, calls are refused until it is back (default 1000000).
    #[arg(long, env = "ALGOHUB_METERING_MAX_BACKLOG")]
    pub metering_max_backlog: Option<u64>,
    /// Concurrent calls per account unless an admin set another limit (default 80).
    #[arg(long, env = "ALGOHUB_DEFAULT_WORK_LIMIT")]
    pub default_work_limit: Option<u32>,
    /// Seconds a running call's slot is leased on PostgreSQL; a killed node's
    /// slots come back after at most this (default 30).
    #[arg(long, env = "ALGOHUB_CALL_SLOT_LEASE_SECS")]
    pub call_slot_lease_secs: Option<u32>,
    /// The longest an admin's impersonation session may last, in minutes (default 60).
    #[arg(long, env = "ALGOHUB_MAX_IMPERSONATION_MINUTES")]
    pub max_impersonation_minutes: Option<u32>,
    /// The longest an admin's super powers may stay on, in minutes (default 60).
    #[arg(long, env = "ALGOHUB_MAX_SUPER_POWERS_MINUTES")]
    pub max_super_powers_minutes: Option<u32>,
    /// Let cluster admins impersonate other cluster admins (default false).
    #[arg(long, env = "ALGOHUB_ALLOW_IMPERSONATING_ADMINS")]
    pub allow_impersonating_admins: Option<bool>,
    /// Seconds a call may run when it sets no ?timeout= (default 300).
    #[arg(long, env = "ALGOHUB_CALL_TIMEOUT_SECS")]
    pub call_timeout_secs: Option<u32>,
    /// The longest a call may run, in seconds: a longer ?timeout= is cut to
    /// this (default 3000, the most allowed).
    #[arg(long, env = "ALGOHUB_MAX_CALL_TIMEOUT_SECS")]
    pub max_call_timeout_secs: Option<u32>,
    /// Wasm fuel a call gets per second of its timeout (default 100000000000).
    #[arg(long, env = "ALGOHUB_WASM_FUEL_PER_SEC")]
    pub wasm_fuel_per_sec: Option<u64>,
    /// SMTP server for invitation emails: smtp://host:25 (add ?tls=required for
    /// STARTTLS) or smtps://user:password@host:465. Unset: emails wait in the outbox.
    #[arg(long, env = "ALGOHUB_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The From address of emails (default "algohub <algohub@localhost>").
    #[arg(long, env = "ALGOHUB_SMTP_FROM")]
    pub smtp_from: Option<String>,
}

pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

impl Config {
    pub fn resolve(o: &Overrides, s: &ServeOverrides) -> anyhow_like::Result<Self> {
        let f = FileConfig::load(o.config.as_deref())?;
        let data_dir = o
            .data_dir
            .clone()
            .or(f.data_dir)
            .unwrap_or_else(|| PathBuf::from("./algohub-data"));
        let database_url = o
            .database_url
            .clone()
            .or(f.database_url)
            .unwrap_or_else(|| format!("sqlite:{}", data_dir.join("algohub.db").display()));
        let listen = s
            .listen
            .clone()
            .or(f.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let base_url = s
            .base_url
            .clone()
            .or(f.base_url)
            .unwrap_or_else(|| format!("http://{listen}"));
        let log_format = o
            .log_format
            .clone()
            .or(f.log_format)
            .unwrap_or_else(|| "human".into());
        if log_format != "human" && log_format != "json" {
            return Err(format!("invalid log_format {log_format:?}: use human or json").into());
        }
        let max = s.max_orgs_per_user.or(f.max_orgs_per_user).unwrap_or(0);
        let ttl = s.invitation_ttl_days.or(f.invitation_ttl_days).unwrap_or(7);
        if ttl == 0 {
            return Err("invitation_ttl_days must be at least 1".into());
        }
        let work_limit = s.default_work_limit.or(f.default_work_limit).unwrap_or(80);
        if work_limit == 0 {
            return Err("default_work_limit must be at least 1".into());
        }
        let lease = s
            .call_slot_lease_secs
            .or(f.call_slot_lease_secs)
            .unwrap_or(30);
        if lease < 3 {
            return Err("call_slot_lease_secs must be at least 3".into());
        }
        let max_backlog = s
            .metering_max_backlog
            .or(f.metering_max_backlog)
            .unwrap_or(algohub_core::services::DEFAULT_MAX_BACKLOG);
        if max_backlog == 0 {
            return Err("metering_max_backlog must be at least 1".into());
        }
        let (call_timeout, max_call_timeout, fuel_per_sec) = call_limits(
            s.call_timeout_secs.or(f.call_timeout_secs),
            s.max_call_timeout_secs.or(f.max_call_timeout_secs),
            s.wasm_fuel_per_sec.or(f.wasm_fuel_per_sec),
        )?;
        let max_minutes = |name: &str, v: Option<u32>| -> anyhow_like::Result<u32> {
            match v.unwrap_or(60) {
                0 => Err(format!("{name} must be at least 1").into()),
                m if m > 24 * 60 => Err(format!("{name} is at most 1440 (a day)").into()),
                m => Ok(m),
            }
        };
        let max_impersonation = max_minutes(
            "max_impersonation_minutes",
            s.max_impersonation_minutes.or(f.max_impersonation_minutes),
        )?;
        let max_super_powers = max_minutes(
            "max_super_powers_minutes",
            s.max_super_powers_minutes.or(f.max_super_powers_minutes),
        )?;
        Ok(Self {
            listen,
            data_dir,
            database_url,
            base_url: base_url.trim_end_matches('/').to_string(),
            log_format,
            log_level: o
                .log_level
                .clone()
                .or(f.log_level)
                .unwrap_or_else(|| "info".into()),
            access_log: s.access_log.or(f.access_log).unwrap_or(true),
            max_orgs_per_user: if max == 0 { None } else { Some(max) },
            invitation_ttl_days: ttl,
            sudo_users_enabled: s
                .sudo_users_enabled
                .or(f.sudo_users_enabled)
                .unwrap_or(true),
            policy_poll_ms: s.policy_poll_ms.or(f.policy_poll_ms).unwrap_or(250).max(10),
            http_upstream_allow_private: s
                .http_upstream_allow_private
                .or(f.http_upstream_allow_private)
                .unwrap_or(false),
            metering_fsync: s.metering_fsync.or(f.metering_fsync).unwrap_or(false),
            metering_max_backlog: max_backlog,
            default_work_limit: work_limit,
            call_slot_lease_secs: lease,
            max_impersonation_minutes: max_impersonation,
            max_super_powers_minutes: max_super_powers,
            allow_impersonating_admins: s
                .allow_impersonating_admins
                .or(f.allow_impersonating_admins)
                .unwrap_or(false),
            call_timeout_secs: call_timeout,
            max_call_timeout_secs: max_call_timeout,
            wasm_fuel_per_sec: fuel_per_sec,
            smtp_url: s
                .smtp_url
                .clone()
                .or(f.smtp_url)
                .filter(|u| !u.trim().is_empty()),
            smtp_from: s
                .smtp_from
                .clone()
                .or(f.smtp_from)
                .unwrap_or_else(|| "algohub <algohub@localhost>".into()),
        })
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
            call_timeout: std::time::Duration::from_secs(u64::from(self.call_timeout_secs)),
            max_call_timeout: std::time::Duration::from_secs(u64::from(self.max_call_timeout_secs)),
            wasm_fuel_per_sec: self.wasm_fuel_per_sec,
            ..Default::default()
        }
    }
}

/// The largest `wasm_fuel_per_sec` (a million times what ordinary code
/// burns; 3000 s of it still fit in 64 bits).
pub const MAX_WASM_FUEL_PER_SEC: u64 = 1_000_000_000_000_000;

/// Checks the call limits (`call_timeout_secs`, `max_call_timeout_secs`,
/// `wasm_fuel_per_sec`) and fills in their defaults.
fn call_limits(
    timeout: Option<u32>,
    max_timeout: Option<u32>,
    fuel_per_sec: Option<u64>,
) -> anyhow_like::Result<(u32, u32, u64)> {
    use algohub_core::services::{
        DEFAULT_CALL_TIMEOUT_SECS, DEFAULT_WASM_FUEL_PER_SEC, MAX_TIMEOUT_SECS,
    };
    let most = MAX_TIMEOUT_SECS as u32;
    let max_timeout = max_timeout.unwrap_or(most);
    if !(1..=most).contains(&max_timeout) {
        return Err(format!("max_call_timeout_secs must be from 1 to {most} (seconds)").into());
    }
    let timeout = timeout.unwrap_or(DEFAULT_CALL_TIMEOUT_SECS as u32);
    if !(1..=max_timeout).contains(&timeout) {
        return Err(format!(
            "call_timeout_secs must be from 1 to max_call_timeout_secs ({max_timeout})"
        )
        .into());
    }
    let fuel_per_sec = fuel_per_sec.unwrap_or(DEFAULT_WASM_FUEL_PER_SEC);
    if !(1..=MAX_WASM_FUEL_PER_SEC).contains(&fuel_per_sec) {
        return Err(format!("wasm_fuel_per_sec must be from 1 to {MAX_WASM_FUEL_PER_SEC}").into());
    }
    Ok((timeout, max_timeout, fuel_per_sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_and_redaction_hides_passwords() {
        let f: FileConfig = toml::from_str(DEFAULT_TOML).expect("default config parses");
        assert_eq!(f.listen.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite:./x.db"), "sqlite:./x.db");
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=pw&x=1"),
            "postgres://h/db?user=u&password=***&x=1"
        );
        let c = Config::resolve(
            &Overrides {
                database_url: Some("postgres://a:pw@h/d".into()),
                ..Default::default()
            },
            &ServeOverrides::default(),
        )
        .expect("resolves");
        assert!(!format!("{c:?}").contains("pw@"));
        // The documented default backlog is the built-in one.
        assert_eq!(
            (f.metering_max_backlog, c.metering_max_backlog),
            (
                Some(algohub_core::services::DEFAULT_MAX_BACKLOG),
                algohub_core::services::DEFAULT_MAX_BACKLOG
            )
        );
        // The access log is on unless switched off.
        assert_eq!(f.access_log, Some(true));
        assert!(c.access_log);
        let quiet = Config::resolve(
            &Overrides::default(),
            &ServeOverrides {
                access_log: Some(false),
                ..Default::default()
            },
        )
        .expect("resolves");
        assert!(!quiet.access_log);
        let no_backlog = Config::resolve(
            &Overrides::default(),
            &ServeOverrides {
                metering_max_backlog: Some(0),
                ..Default::default()
            },
        );
        assert!(no_backlog.is_err(), "a backlog of 0 is refused");
    }

    /// The call limits' documented defaults are the built-in ones, the
    /// runtime's default rate is the hub's, and invalid values are refused
    /// with the setting's name.
    #[test]
    fn call_limits_are_documented_and_checked() {
        let f: FileConfig = toml::from_str(DEFAULT_TOML).expect("default config parses");
        let c = Config::resolve(&Overrides::default(), &ServeOverrides::default()).expect("ok");
        assert_eq!(
            (
                f.call_timeout_secs,
                f.max_call_timeout_secs,
                f.wasm_fuel_per_sec
            ),
            (Some(300), Some(3000), Some(c.wasm_fuel_per_sec))
        );
        assert_eq!((c.call_timeout_secs, c.max_call_timeout_secs), (300, 3000));
        assert_eq!(
            c.wasm_fuel_per_sec,
            algohub_core::services::DEFAULT_WASM_FUEL_PER_SEC
        );
        assert_eq!(c.wasm_fuel_per_sec, algohub_runtime::DEFAULT_FUEL_PER_SEC);
        let settings = c.settings();
        assert_eq!(
            (
                settings.call_timeout,
                settings.max_call_timeout,
                settings.wasm_fuel_per_sec
            ),
            (
                std::time::Duration::from_secs(300),
                std::time::Duration::from_secs(3000),
                c.wasm_fuel_per_sec
            )
        );
        // A call with the default timeout gets the fuel of the runtime's
        // default limits (what the benchmarks' floor runs with).
        assert_eq!(
            algohub_core::services::fuel_budget(settings.call_timeout, settings.wasm_fuel_per_sec),
            algohub_runtime::Limits::default().fuel
        );
        let with = |o: ServeOverrides| Config::resolve(&Overrides::default(), &o);
        let lowered = with(ServeOverrides {
            call_timeout_secs: Some(10),
            max_call_timeout_secs: Some(60),
            wasm_fuel_per_sec: Some(1000),
            ..Default::default()
        })
        .expect("lower limits are fine");
        assert_eq!(
            (
                lowered.call_timeout_secs,
                lowered.max_call_timeout_secs,
                lowered.wasm_fuel_per_sec
            ),
            (10, 60, 1000)
        );
        for (bad, named) in [
            (
                ServeOverrides {
                    call_timeout_secs: Some(0),
                    ..Default::default()
                },
                "call_timeout_secs",
            ),
            (
                ServeOverrides {
                    call_timeout_secs: Some(61),
                    max_call_timeout_secs: Some(60),
                    ..Default::default()
                },
                "call_timeout_secs",
            ),
            (
                ServeOverrides {
                    max_call_timeout_secs: Some(3001),
                    ..Default::default()
                },
                "max_call_timeout_secs",
            ),
            (
                ServeOverrides {
                    max_call_timeout_secs: Some(0),
                    ..Default::default()
                },
                "max_call_timeout_secs",
            ),
            (
                ServeOverrides {
                    wasm_fuel_per_sec: Some(0),
                    ..Default::default()
                },
                "wasm_fuel_per_sec",
            ),
            (
                ServeOverrides {
                    wasm_fuel_per_sec: Some(MAX_WASM_FUEL_PER_SEC + 1),
                    ..Default::default()
                },
                "wasm_fuel_per_sec",
            ),
        ] {
            let err = with(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.starts_with(named), "{named}: {err:?}");
        }
    }
}
