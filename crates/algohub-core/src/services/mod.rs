//! Services: the use cases, one module per area, all methods on `Hub`.
//!
//! Style: the caller comes first, then load, authorize (always through
//! `Hub::authorize`, i.e. the policy engine), change (one store call per atomic
//! operation), record (the store writes events and policy changes in the same
//! transaction), then `sync` so this node's index reflects the change at once.

mod accounts;
mod admin;
mod admission;
mod algorithm_settings;
mod algorithms;
mod apps;
mod audit;
mod authz;
mod call_cache;
mod call_tokens;
mod calls;
mod data;
mod elevated;
mod executor;
mod invitations;
mod journal;
mod keys;
mod mail;
mod metering;
mod notifications;
mod orgs;
mod source;
mod sync;
mod teams;
mod usage;
mod versions;

pub use accounts::CreateUser;
pub use admin::UserExport;
pub use admission::{DEFAULT_WORK_LIMIT, SlotGuard};
pub use algorithms::artifact_digest;
pub use audit::AuditVerdict;
pub use authz::{ExplainAnswer, WhoCanRow};
pub use calls::{
    CallOutcome, CallRequest, DEFAULT_CALL_TIMEOUT_SECS, DEFAULT_WASM_FUEL_PER_SEC,
    MAX_TIMEOUT_SECS, PreparedCall, fuel_budget, parse_timeout,
};
pub use data::{
    DataAcl, DataEntry, DataListItem, DataListing, DataPath, DataStorage, RESERVED_PREFIX,
    StorageError, split_path,
};
pub use elevated::{ImpersonationView, MAX_REASON_CHARS, SessionView, SuperPowersView};
pub use executor::{CallData, ContentKind, ExecError, ExecInput, ExecOutput, Executor, RunContext};
pub use invitations::InviteTarget;
pub use keys::CreateKey;
pub use mail::{Email, MailError, Mailer, render_email};
pub use metering::DEFAULT_MAX_BACKLOG;
pub use notifications::{MAX_NOTIFICATION_CHARS, MAX_RECIPIENTS};
pub use orgs::{CreateOrg, OrgView};
pub use source::{AlgorithmSource, REDACTED, SourceForm, source_is_open};
pub use usage::{MAX_REPORT_DAYS, WorkLimitView, check_range, parse_day};
pub use versions::{PublishRequest, VersionEntry};

use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{AccountId, AccountKind, AccountRef, Millis};
use crate::policy::{Action, PolicyEngine, Resource};
use crate::store::{Constraint, Store, StoreError};
use std::sync::Arc;

/// Cluster settings the services need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How many orgs one user may belong to (`None` = unlimited).
    pub max_orgs_per_user: Option<u32>,
    /// How long an invitation stays valid.
    pub invitation_ttl_millis: Millis,
    /// Whether the sudo-user role exists on this cluster.
    pub sudo_users_enabled: bool,
    /// Concurrent calls per account unless a cluster admin set another limit.
    pub default_work_limit: i64,
    /// How long a call slot outlives its node when the database is shared
    /// (PostgreSQL): a killed node's slots come back after at most this long.
    pub call_slot_lease: std::time::Duration,
    /// Whether calls write usage records (always on in service; the benchmark
    /// turns it off to measure what metering costs).
    pub metering: bool,
    /// Where usage records become durable before a call is answered: a
    /// node-local journal directory (records reach the store in large batches
    /// behind the calls), or `None` to commit each batch to the store.
    pub usage_journal: Option<std::path::PathBuf>,
    /// Whether each journal write also waits for the disk (`fdatasync`):
    /// records then survive an operating-system crash, not only a killed process.
    pub usage_journal_fsync: bool,
    /// How big a journal file grows before the next one is started (the
    /// full one is removed once all its records are in the store).
    pub usage_journal_rotate_bytes: u64,
    /// How often a running node loads the journals that killed processes
    /// sharing its journal directory left behind.
    pub usage_journal_rescan: std::time::Duration,
    /// Journaled usage records the store has not taken yet (held in memory,
    /// about 200 bytes each) beyond which records go to the store directly,
    /// so that while the store is down calls are refused (`metering_failed`).
    pub metering_max_backlog: u64,
    /// The longest an impersonation session may last.
    pub max_impersonation_minutes: u32,
    /// The longest super powers may stay on.
    pub max_super_powers_minutes: u32,
    /// Whether a cluster admin may impersonate another cluster admin.
    pub allow_impersonating_admins: bool,
    /// The wall-clock limit of a call that sets no `?timeout=`.
    pub call_timeout: std::time::Duration,
    /// The longest any call may run: a longer `?timeout=` is cut to it, and
    /// an algorithm's `max_timeout_secs` may not exceed it.
    pub max_call_timeout: std::time::Duration,
    /// Wasm fuel a call gets per second of its timeout (see `fuel_budget`).
    pub wasm_fuel_per_sec: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_orgs_per_user: None,
            invitation_ttl_millis: 7 * 24 * 3600 * 1000,
            sudo_users_enabled: true,
            default_work_limit: admission::DEFAULT_WORK_LIMIT,
            call_slot_lease: std::time::Duration::from_secs(30),
            metering: true,
            usage_journal: None,
            usage_journal_fsync: false,
            usage_journal_rotate_bytes: 8 << 20,
            usage_journal_rescan: std::time::Duration::from_secs(30),
            metering_max_backlog: metering::DEFAULT_MAX_BACKLOG,
            max_impersonation_minutes: 60,
            max_super_powers_minutes: 60,
            allow_impersonating_admins: false,
            call_timeout: std::time::Duration::from_secs(calls::DEFAULT_CALL_TIMEOUT_SECS),
            max_call_timeout: std::time::Duration::from_secs(calls::MAX_TIMEOUT_SECS as u64),
            wasm_fuel_per_sec: calls::DEFAULT_WASM_FUEL_PER_SEC,
        }
    }
}

/// The application: store, policy engine, settings.
pub struct Hub {
    pub store: Arc<dyn Store>,
    pub policy: Arc<PolicyEngine>,
    pub settings: Settings,
    /// Runs algorithms; `None` on nodes (or CLI commands) that never call them.
    pub executor: Option<Arc<dyn Executor>>,
    /// Holds data API files; `None` on nodes (or CLI commands) that never serve them.
    pub files: Option<Arc<dyn DataStorage>>,
    call_cache: call_cache::CallCache,
    /// `algohub_policy_decisions_total` by outcome: [deny, allow].
    decision_counters: [metrics::Counter; 2],
    /// Call metrics of refusals before a call named an algorithm
    /// (`algorithm=""`); each algorithm's are in its call-cache entry.
    unresolved_calls: calls::CallMetrics,
    sync_lock: tokio::sync::Mutex<()>,
    /// Bounds the store reads that credentials the index does not know cause.
    unknown_credentials: sync::UnknownCredentials,
    /// Bounds the store reads that refused calls cause.
    catch_ups: sync::CatchUps,
    /// Key id → last use, flushed to the store by maintenance (no write per call).
    key_uses: parking_lot::Mutex<rustc_hash::FxHashMap<crate::model::KeyId, Millis>>,
    admission: Arc<admission::Admission>,
    /// The usage writer; `None` when metering is off.
    meter: Option<metering::Meter>,
    denied_budget: audit::DeniedBudget,
    /// Signs the tokens algorithms use during a call (`call_token`).
    call_tokens: crate::secrets::CallTokenKey,
    /// Request ids of this node's running calls that were handed a call
    /// token: a token is good only while its call runs (`call_tokens.rs`).
    live_token_calls: parking_lot::Mutex<rustc_hash::FxHashSet<String>>,
    /// This hub, for what a call hands its algorithm (data API access).
    me: std::sync::Weak<Hub>,
}

impl Hub {
    /// Loads the policy index from the store and returns a ready hub.
    pub async fn start(store: Arc<dyn Store>, settings: Settings) -> Result<Arc<Self>> {
        Self::start_with(store, settings, None, None).await
    }

    /// Like `start`, with an algorithm runtime and data storage.
    pub async fn start_with(
        store: Arc<dyn Store>,
        settings: Settings,
        executor: Option<Arc<dyn Executor>>,
        files: Option<Arc<dyn DataStorage>>,
    ) -> Result<Arc<Self>> {
        store.set_max_orgs_per_user(settings.max_orgs_per_user);
        store.set_durable_usage_commits(settings.usage_journal_fsync);
        let snapshot = store.load_policy_snapshot().await?;
        let policy = Arc::new(PolicyEngine::new(&snapshot));
        // Slots live in the database only when several nodes may share it.
        let shared = (store.backend() == crate::store::Backend::Postgres)
            .then_some(settings.call_slot_lease);
        let admission =
            admission::Admission::new(store.clone(), settings.default_work_limit, shared);
        let meter = if settings.metering {
            Some(metering::Meter::start(store.clone(), &settings).await?)
        } else {
            None
        };
        let call_tokens = crate::secrets::CallTokenKey::new(
            &store
                .cluster_secret(
                    crate::secrets::CallTokenKey::SECRET_NAME,
                    &crate::secrets::CallTokenKey::generate_secret(),
                )
                .await?,
        );
        Ok(Arc::new_cyclic(|me| Self {
            me: me.clone(),
            store,
            policy,
            settings,
            executor,
            files,
            call_cache: Default::default(),
            decision_counters: [
                metrics::counter!("algohub_policy_decisions_total", "outcome" => "deny"),
                metrics::counter!("algohub_policy_decisions_total", "outcome" => "allow"),
            ],
            unresolved_calls: calls::CallMetrics::unresolved(),
            sync_lock: tokio::sync::Mutex::new(()),
            unknown_credentials: Default::default(),
            catch_ups: Default::default(),
            key_uses: Default::default(),
            admission,
            meter,
            denied_budget: Default::default(),
            call_tokens,
            live_token_calls: Default::default(),
        }))
    }

    /// Counts a decision with handles registered at start (a labelled
    /// `counter!` looks its key up in the registry on every use).
    fn count_decision(&self, allow: bool) {
        self.decision_counters[usize::from(allow)].increment(1);
    }

    /// Asks the policy engine; a refusal becomes a `Forbidden` error naming the rule.
    pub fn authorize(&self, ctx: &RequestCtx, action: Action, resource: Resource) -> Result<()> {
        let d = self.decide(ctx, action, resource);
        if d.allow {
            Ok(())
        } else {
            if matches!(
                action,
                Action::AdminUsersManage | Action::AdminUsersRead | Action::AdminOrgTypesManage
            ) {
                self.audit_denied(ctx, action);
            }
            let code = if d.rule == crate::policy::Rule::KeyScope {
                Code::KeyScope
            } else {
                Code::Forbidden
            };
            Err(Error::new(
                code,
                format!(
                    "not allowed to {} (decided by rule {})",
                    action.as_str(),
                    d.rule.as_str()
                ),
            ))
        }
    }

    pub fn can(&self, ctx: &RequestCtx, action: Action, resource: Resource) -> bool {
        self.decide(ctx, action, resource).allow
    }

    /// One decision, counted; a read that only super powers allowed is audited.
    fn decide(
        &self,
        ctx: &RequestCtx,
        action: Action,
        resource: Resource,
    ) -> crate::policy::Decision {
        let d = self.policy.decide(&ctx.principal, action, resource);
        self.count_decision(d.allow);
        if d.rule == crate::policy::Rule::SuperPowers {
            self.audit_elevated_read(ctx, action, resource);
        }
        d
    }

    /// The human user behind the caller, or a refusal for org keys.
    pub(crate) fn require_user(&self, ctx: &RequestCtx) -> Result<AccountId> {
        ctx.user_id().ok_or_else(|| {
            Error::forbidden("this needs a user's credentials, not an organization key")
        })
    }

    /// Resolves a live account by name in the shared namespace.
    pub(crate) async fn account(&self, name: &str) -> Result<AccountRef> {
        // A name that cannot exist is not looked up (and never reaches SQL).
        let not_found = || Error::new(Code::NotFound, format!("account {name:?} not found"));
        let Ok(valid) = crate::names::AccountName::parse(name) else {
            return Err(not_found());
        };
        match self.store.get_account_by_name(valid.as_str()).await {
            Ok(a) if a.status != crate::model::AccountStatus::Deleted => Ok(a),
            Ok(_) | Err(StoreError::NotFound) => Err(Error::new(
                Code::NotFound,
                format!("account {name:?} not found"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn org_account(&self, name: &str) -> Result<AccountRef> {
        match self.account(name).await {
            Ok(a) if a.kind == AccountKind::Org => Ok(a),
            _ => Err(Error::new(
                Code::OrgNotFound,
                format!("organization {name:?} not found"),
            )),
        }
    }

    pub(crate) async fn user_account(&self, name: &str) -> Result<AccountRef> {
        match self.account(name).await {
            Ok(a) if a.kind == AccountKind::User => Ok(a),
            _ => Err(Error::new(
                Code::UserNotFound,
                format!("user {name:?} not found"),
            )),
        }
    }

    /// A live user named by the user's UUID or by username, for the v1
    /// `/v1/users/{userId}/...` routes (the Algorithmia clients pass the UUID,
    /// people and older callers the name). A UUID-shaped segment that is some
    /// user's UUID names that user, even when an account's name is spelled like
    /// it (names may be, UUIDs are never reused); a deleted user's UUID names
    /// nobody, as their name does.
    pub(crate) async fn user_account_by_uuid_or_name(&self, segment: &str) -> Result<AccountRef> {
        let not_found = || Error::new(Code::UserNotFound, format!("user {segment:?} not found"));
        let uuid = uuid::Uuid::try_parse(segment)
            .ok()
            .filter(|_| segment.len() == 36);
        if let Some(uuid) = uuid {
            match self
                .store
                .get_user_by_uuid(&uuid.hyphenated().to_string())
                .await
            {
                Ok(u) if u.status == crate::model::AccountStatus::Deleted => {
                    return Err(not_found());
                }
                Ok(u) => {
                    return Ok(AccountRef {
                        id: u.id,
                        uuid: u.uuid,
                        name: u.username,
                        kind: AccountKind::User,
                        status: u.status,
                    });
                }
                Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.user_account(segment).await
    }
}

/// Maps a store conflict to a domain error, naming what clashed.
pub(crate) fn conflict(e: StoreError, what: &str) -> Error {
    let StoreError::Conflict { constraint } = e else {
        return e.into();
    };
    match constraint {
        Constraint::LastAdminOf { org } => Error::new(
            Code::LastAdmin,
            format!("this is the only admin of organization {org:?}; name another admin first"),
        ),
        Constraint::OrgLimit => Error::new(
            Code::OrgLimit,
            "this user already belongs to the most organizations this cluster allows; leave one first",
        ),
        Constraint::LastAdmin => Error::new(
            Code::LastAdmin,
            "an organization must keep at least one admin; name another admin first",
        ),
        Constraint::UserEmail => Error::new(
            Code::EmailTaken,
            "that email address is already used by an account",
        ),
        Constraint::AccountName
        | Constraint::OrgTypeName
        | Constraint::AppName
        | Constraint::AlgorithmName
        | Constraint::AlgorithmNamesTaken { .. }
        | Constraint::TeamName => Error::new(Code::NameTaken, format!("{what} is already taken")),
        Constraint::Membership => {
            Error::new(Code::AlreadyMember, "already a member of this organization")
        }
        Constraint::InvitationExpired => {
            Error::new(Code::InvitationExpired, "this invitation has expired")
        }
        Constraint::InvitationId | Constraint::InvitationToken | Constraint::InvitationClosed => {
            Error::new(
                Code::InvitationClosed,
                "this invitation is no longer pending",
            )
        }
        other => Error::new(
            Code::Conflict,
            format!("{what} conflicts with existing data ({other})"),
        ),
    }
}

/// Parses an optional RFC 3339 expiry that must lie in the future.
pub fn parse_expiry(raw: Option<&str>) -> Result<Option<Millis>> {
    match raw {
        None => Ok(None),
        Some(s) => {
            let t = crate::model::parse_time(s).ok_or_else(|| {
                Error::invalid(format!(
                    "invalid time {s:?}: use RFC 3339, e.g. 2030-01-31T00:00:00Z"
                ))
            })?;
            if t <= crate::model::now_millis() {
                return Err(Error::invalid("expires_at must be in the future"));
            }
            Ok(Some(t))
        }
    }
}
