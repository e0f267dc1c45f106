//! The command-line flags that override settings, and the figment provider
//! that layers the flags given (and only those) over the other sources.
//!
//! Each flag is named after its setting (`--default-work-limit` sets
//! `default_work_limit`); the defaults and the documentation of every setting
//! are in `algohub config print-default`, and each setting is also an
//! `ALGOHUB_<SETTING>` environment variable (read by figment, not by clap).

use super::LogFormat;
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};
use serde::Serialize;
use std::path::PathBuf;

/// Flags every command takes.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct Overrides {
    /// Configuration file (default: ./algohub.toml if present).
    #[arg(long, env = "ALGOHUB_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Database URL (sqlite:PATH or postgres://...); default a SQLite file in the data directory.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Data directory (default ./algohub-data/).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true)]
    pub log_format: Option<LogFormat>,
    /// Log level filter, e.g. info or algohub=debug.
    #[arg(long, global = true)]
    pub log_level: Option<String>,
}

/// Flags that only `serve` takes.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct ServeOverrides {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<String>,
    /// Public base URL used in self links.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Log every HTTP request at info.
    #[arg(long)]
    pub access_log: Option<bool>,
    /// Organizations one user may belong to (0 = unlimited).
    #[arg(long)]
    pub max_orgs_per_user: Option<u32>,
    /// Days before an invitation expires.
    #[arg(long)]
    pub invitation_ttl_days: Option<u32>,
    /// Whether the sudo-user role exists.
    #[arg(long)]
    pub sudo_users_enabled: Option<bool>,
    /// Milliseconds between reads of other nodes' policy changes.
    #[arg(long)]
    pub policy_poll_ms: Option<u64>,
    /// Let http-runtime algorithms call loopback and private addresses.
    #[arg(long)]
    pub http_upstream_allow_private: Option<bool>,
    /// Make each usage-journal write wait for the disk, so usage records survive
    /// an operating-system crash too, not only a killed process.
    #[arg(long)]
    pub metering_fsync: Option<bool>,
    /// Journaled usage records that wait for the database at most while it cannot
    /// take them; beyond that, calls are refused until it is back.
    #[arg(long)]
    pub metering_max_backlog: Option<u64>,
    /// Concurrent calls per account unless an admin set another limit.
    #[arg(long)]
    pub default_work_limit: Option<u32>,
    /// Seconds a running call's slot is leased on PostgreSQL; a killed node's
    /// slots come back after at most this.
    #[arg(long)]
    pub call_slot_lease_secs: Option<u32>,
    /// The longest an admin's impersonation session may last, in minutes.
    #[arg(long)]
    pub max_impersonation_minutes: Option<u32>,
    /// The longest an admin's super powers may stay on, in minutes.
    #[arg(long)]
    pub max_super_powers_minutes: Option<u32>,
    /// Let cluster admins impersonate other cluster admins.
    #[arg(long)]
    pub allow_impersonating_admins: Option<bool>,
    /// The lowest balance (microcredits) a paid call may leave its payer with
    /// (0: calls are paid for with credits the payer has; negative: credit).
    #[arg(long)]
    pub credit_floor_microcredits: Option<i64>,
    /// The highest price (royalty, in microcredits) an algorithm version may
    /// charge a call.
    #[arg(long)]
    pub max_royalty_microcredits: Option<i64>,
    /// The storage quota of an account's data files in MiB unless a cluster
    /// admin set its own (0: unlimited).
    #[arg(long)]
    pub data_quota_mib: Option<u64>,
    /// The longest a key a cluster admin creates for someone else may live,
    /// in hours (such keys live a day unless asked for less).
    #[arg(long)]
    pub max_minted_key_hours: Option<u32>,
    /// Seconds a call may run when it sets no ?timeout=.
    #[arg(long)]
    pub call_timeout_secs: Option<u32>,
    /// The longest a call may run, in seconds: a longer ?timeout= is cut to
    /// this (at most 3000).
    #[arg(long)]
    pub max_call_timeout_secs: Option<u32>,
    /// Wasm fuel a call gets per second of its timeout.
    #[arg(long)]
    pub wasm_fuel_per_sec: Option<u64>,
    /// Wasm instances that may run at once on this node (the pool size).
    #[arg(long)]
    pub wasm_instances: Option<u32>,
    /// Instances one person's calls may hold at once (his own and those made
    /// with the org keys he created); his further calls wait.
    #[arg(long)]
    pub wasm_instances_per_caller: Option<u32>,
    /// Linear memory one wasm instance may have, in MiB.
    #[arg(long)]
    pub wasm_max_memory_mib: Option<u32>,
    /// Memory all running wasm instances may reserve together, in MiB
    /// (0: half of the machine's memory).
    #[arg(long)]
    pub wasm_memory_budget_mib: Option<u64>,
    /// SMTP server for invitation emails: smtp://host:25 (add ?tls=required for
    /// STARTTLS) or smtps://user:password@host:465. Unset: emails wait in the outbox.
    #[arg(long)]
    pub smtp_url: Option<String>,
    /// The From address of emails.
    #[arg(long)]
    pub smtp_from: Option<String>,
}

/// The flags given on the command line, as a figment layer (flags not given
/// leave the lower layers' values).
pub(super) struct Flags<'a>(pub &'a Overrides, pub &'a ServeOverrides);

impl Provider for Flags<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named("command-line flags")
    }

    fn data(&self) -> figment::Result<Map<Profile, Dict>> {
        let mut given = Dict::new();
        for flags in [Value::serialize(self.0)?, Value::serialize(self.1)?] {
            if let Value::Dict(_, flags) = flags {
                given.extend(
                    flags
                        .into_iter()
                        .filter(|(_, value)| !matches!(value, Value::Empty(..))),
                );
            }
        }
        Ok(Profile::Default.collect(given))
    }
}
