//! Services: the use cases, one service per area of use (accounts, orgs,
//! apps, teams, keys, algorithms, calls, data, usage, admin, audit, ...),
//! each a struct holding what it needs, composed by `Hub::start_with`; and
//! the components they are handed (`Authorizer`, `Directory`, `IndexSync`,
//! `Admission`, `Metering`, `CallTokens`, the call cache).
//!
//! Style: the request context comes first, then load, authorize (always
//! through `Authorizer::authorize`, i.e. the policy engine), change (one store
//! call per atomic operation), record (the store writes events and policy
//! changes in the same transaction). An audited store write returns its
//! value wrapped in `Written`, with the changes it recorded; the service
//! gets the value only through `IndexSync::applied`, which refreshes this
//! node's index first, so a change is visible to the next request.

/// Declares a service that holds the named parts of `Base` (each field of
/// the type it has there), and its constructor `new(&Base)`. A service that
/// needs more (a component of its own) is written out instead.
macro_rules! service {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:ident),+ $(,)? }) => {
        $(#[$meta])*
        pub struct $name {
            $(pub(super) $field: $crate::services::base_part!($field),)+
        }

        impl $name {
            pub(super) fn new(base: &$crate::services::Base) -> Self {
                Self {
                    $($field: base.$field.clone(),)+
                }
            }
        }
    };
}

/// The type of a `Base` part, by name (for `service!`).
macro_rules! base_part {
    (store) => { std::sync::Arc<dyn $crate::store::Store> };
    (policy) => { std::sync::Arc<$crate::policy::PolicyEngine> };
    (settings) => { std::sync::Arc<$crate::services::Settings> };
    (authz) => { std::sync::Arc<$crate::services::Authorizer> };
    (recorder) => { $crate::services::AuditRecorder };
    (directory) => { $crate::services::Directory };
    (index) => { std::sync::Arc<$crate::services::IndexSync> };
}

pub(crate) use {base_part, service};

mod accounts;
mod admin;
mod admission;
mod algorithm_settings;
mod algorithms;
mod apps;
mod audit;
mod authenticate;
mod authorizer;
mod authz;
mod call_cache;
mod call_tokens;
mod calls;
mod data;
mod data_quota;
mod directory;
mod elevated;
mod executor;
mod invitations;
mod keys;
mod mail;
mod metering;
mod notifications;
mod orgs;
mod signin;
mod source;
mod sync;
mod teams;
mod usage;
mod versions;

pub use accounts::{AccountService, CreateUser};
pub use admin::{AdminService, UserExport};
pub use admission::{Admission, DEFAULT_WORK_LIMIT, SharedSlots, SlotGuard};
pub use algorithms::{AlgorithmService, artifact_digest};
pub use apps::AppService;
pub(crate) use audit::AuditRecorder;
pub use audit::{AuditService, AuditVerdict, outcome_of_status};
pub use authenticate::{Authenticator, SessionActivity};
pub use authorizer::Authorizer;
pub use authz::{AccessService, ExplainAnswer, WhoCanRow};
pub(crate) use call_tokens::CallTokens;
pub use calls::{
    CallOutcome, CallRequest, CallService, DEFAULT_CALL_TIMEOUT_SECS, DEFAULT_WASM_FUEL_PER_SEC,
    MAX_TIMEOUT_SECS, PreparedCall, fuel_budget, parse_timeout,
};
pub use data::{
    DataAcl, DataEntry, DataListItem, DataListing, DataPath, DataService, DataStorage,
    RESERVED_PREFIX, StorageError, split_path,
};
pub use data_quota::{DEFAULT_DATA_QUOTA_MIB, StorageQuotaView};

/// The highest royalty a version may charge per call unless the cluster says
/// otherwise: a thousand credits (10^9 microcredits). Sums of such prices
/// stay far inside 64 bits: 9 billion calls at the maximum.
pub const DEFAULT_MAX_ROYALTY_MICROCREDITS: i64 = 1_000_000_000;
pub(crate) use directory::Directory;
pub use elevated::{
    ImpersonationView, MAX_REASON_CHARS, SessionService, SessionView, SuperPowersView,
};
pub use executor::{CallData, ContentKind, ExecError, ExecInput, ExecOutput, Executor, RunContext};
pub use invitations::{InvitationService, InviteTarget};
pub use keys::{CreateKey, DEFAULT_MAX_MINTED_KEY_HOURS, KeyService};
pub use mail::{Email, MailError, Mailer, render_email};
pub use metering::{DEFAULT_MAX_BACKLOG, Metering, UsageSink};
pub use notifications::{MAX_NOTIFICATION_CHARS, MAX_RECIPIENTS, NotificationService};
pub use orgs::{CreateOrg, OrgService, OrgView};
pub use signin::{
    DEFAULT_SESSION_IDLE_MINUTES, DEFAULT_SESSION_LIFETIME_HOURS, MAX_PASSWORD_BYTES, SignIn,
    SignInService, SignedIn,
};
pub use source::{AlgorithmSource, REDACTED, SourceForm, source_is_open};
pub use sync::IndexSync;
pub use teams::TeamService;
pub use usage::{MAX_REPORT_DAYS, UsageService, WorkLimitView, check_range, parse_day};
pub use versions::{PublishRequest, VersionEntry};

use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{AccountId, Millis};
use crate::policy::PolicyEngine;
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
    /// (PostgreSQL): a killed node's slots come back after at most this long
    /// (read by the node, `algohub::slots`).
    pub call_slot_lease: std::time::Duration,
    /// Whether a node meters its calls (always on in service; the benchmark
    /// turns it off to measure what metering costs): read by the node when it
    /// builds its usage writer (`algohub::start_hub`).
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
    /// The longest a key a cluster admin creates for someone else may live,
    /// in hours (such keys live a day unless asked for less).
    pub max_minted_key_hours: u32,
    /// The storage quota of an account's data files unless a cluster admin
    /// set its own, in MiB (`None`: unlimited).
    pub data_quota_mib: Option<u64>,
    /// The highest price (royalty) an algorithm version may charge a call.
    pub max_royalty_microcredits: i64,
    /// The lowest balance a paid call may leave its payer with.
    pub credit_floor_microcredits: i64,
    /// A browser session unused this long has ended.
    pub session_idle_minutes: u32,
    /// A browser session ends this long after sign-in, used or not.
    pub session_lifetime_hours: u32,
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
            max_minted_key_hours: keys::DEFAULT_MAX_MINTED_KEY_HOURS,
            data_quota_mib: Some(data_quota::DEFAULT_DATA_QUOTA_MIB),
            max_royalty_microcredits: DEFAULT_MAX_ROYALTY_MICROCREDITS,
            credit_floor_microcredits: 0,
            session_idle_minutes: signin::DEFAULT_SESSION_IDLE_MINUTES,
            session_lifetime_hours: signin::DEFAULT_SESSION_LIFETIME_HOURS,
        }
    }
}

/// What every service is handed: the store, the policy index, the settings,
/// and the components each use case goes through (authorize, look accounts
/// up, keep the index current after a write).
#[derive(Clone)]
pub(crate) struct Base {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) policy: Arc<PolicyEngine>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) authz: Arc<Authorizer>,
    pub(crate) recorder: AuditRecorder,
    pub(crate) directory: Directory,
    pub(crate) index: Arc<IndexSync>,
}

/// What a node hands the hub at start: the machinery that lives outside the
/// core (running algorithms, holding files, making usage durable). A part
/// left out is a feature this process does not serve: commands that never
/// call algorithms start with none.
#[derive(Default)]
pub struct NodeParts {
    pub executor: Option<Arc<dyn Executor>>,
    pub files: Option<Arc<dyn DataStorage>>,
    /// `None`: calls are not metered.
    pub usage: Option<Arc<dyn UsageSink>>,
    /// Call slots in the database several nodes share (PostgreSQL), so that
    /// work limits hold cluster-wide; `None`: this node counts alone.
    pub shared_slots: Option<Arc<dyn SharedSlots>>,
}

/// The application, composed at start: one service per area of use, and the
/// components (machinery) they share. Handlers call a service by its area:
/// `hub.orgs.set_member_role(&ctx, ...)`, `hub.calls.call_algorithm(&ctx, ...)`.
pub struct Hub {
    pub store: Arc<dyn Store>,
    pub policy: Arc<PolicyEngine>,
    pub settings: Arc<Settings>,
    /// Every permission decision.
    pub authz: Arc<Authorizer>,
    /// Keeps the policy index current (after writes, and for other nodes' writes).
    pub index: Arc<IndexSync>,
    /// Turns a presented credential into a principal.
    pub authenticator: Authenticator,
    /// The per-account concurrent-call limit.
    pub admission: Arc<Admission>,
    /// Durable usage records.
    pub metering: Arc<Metering>,
    pub accounts: AccountService,
    pub admin: AdminService,
    /// Who may do what: explain a decision, list who can.
    pub access: AccessService,
    pub algorithms: Arc<AlgorithmService>,
    pub apps: AppService,
    pub audit: AuditService,
    pub calls: CallService,
    pub data: Arc<DataService>,
    pub invitations: InvitationService,
    pub keys: Arc<KeyService>,
    pub notifications: NotificationService,
    pub orgs: OrgService,
    /// Impersonation and super powers; ending a session (Stop, sign out).
    pub sessions: SessionService,
    /// Signing in with a password (browser sessions).
    pub sign_in: SignInService,
    pub teams: TeamService,
    pub usage: UsageService,
}

impl Hub {
    /// Loads the policy index from the store and returns a ready hub.
    pub async fn start(store: Arc<dyn Store>, settings: Settings) -> Result<Arc<Self>> {
        Self::start_with(store, settings, NodeParts::default()).await
    }

    /// Like `start`, with the machinery a node runs outside the core.
    pub async fn start_with(
        store: Arc<dyn Store>,
        settings: Settings,
        parts: NodeParts,
    ) -> Result<Arc<Self>> {
        let NodeParts {
            executor,
            files,
            usage,
            shared_slots,
        } = parts;
        store.set_max_orgs_per_user(settings.max_orgs_per_user);
        store.set_durable_usage_commits(settings.usage_journal_fsync);
        let snapshot = store.load_policy_snapshot().await?;
        let policy = Arc::new(PolicyEngine::new(&snapshot));
        let admission = Admission::new(store.clone(), settings.default_work_limit, shared_slots);
        let metering = Arc::new(Metering::new(usage));
        let call_tokens = Arc::new(CallTokens::new(
            &store
                .cluster_secret(
                    crate::secrets::CallTokenKey::SECRET_NAME,
                    &crate::secrets::CallTokenKey::generate_secret(),
                )
                .await?,
            store.clone(),
            policy.clone(),
            admission.clone(),
        ));
        let call_cache = Arc::new(call_cache::CallCache::default());
        let recorder = AuditRecorder::new(store.clone());
        let base = Base {
            store: store.clone(),
            policy: policy.clone(),
            settings: Arc::new(settings),
            authz: Arc::new(Authorizer::new(policy.clone(), recorder.clone())),
            recorder,
            directory: Directory::new(store.clone()),
            index: Arc::new(IndexSync::new(
                store.clone(),
                policy.clone(),
                call_cache.clone(),
                admission.clone(),
            )),
        };
        let algorithms = Arc::new(AlgorithmService::new(&base, executor));
        let data = Arc::new(DataService::new(&base, files));
        let keys = Arc::new(KeyService::new(&base));
        let activity = Arc::new(SessionActivity::default());
        let calls = CallService {
            store: base.store.clone(),
            policy: base.policy.clone(),
            settings: base.settings.clone(),
            authz: base.authz.clone(),
            index: base.index.clone(),
            recorder: base.recorder.clone(),
            algorithms: algorithms.clone(),
            data: data.clone(),
            admission: admission.clone(),
            credits: calls::credits::CreditHolds::new(
                base.store.clone(),
                metering.clone(),
                base.settings.credit_floor_microcredits,
            ),
            metering: metering.clone(),
            call_tokens: call_tokens.clone(),
            call_cache,
            unresolved_calls: calls::CallMetrics::unresolved(),
        };
        Ok(Arc::new(Self {
            store: base.store.clone(),
            policy,
            settings: base.settings.clone(),
            authz: base.authz.clone(),
            index: base.index.clone(),
            authenticator: Authenticator::new(&base, call_tokens, activity.clone()),
            sign_in: SignInService::new(&base, activity),
            accounts: AccountService::new(&base),
            admin: AdminService::new(&base),
            access: AccessService::new(&base),
            apps: AppService::new(&base),
            audit: AuditService::new(&base),
            invitations: InvitationService::new(&base),
            notifications: NotificationService::new(&base),
            orgs: OrgService::new(&base),
            sessions: SessionService::new(&base),
            teams: TeamService::new(&base),
            usage: UsageService::new(&base, admission.clone(), metering.clone()),
            admission,
            metering,
            algorithms,
            calls,
            data,
            keys,
        }))
    }
}

impl Hub {
    /// Housekeeping: expires invitations, grants, sessions and super powers,
    /// writes the keys' last uses, then syncs. Its audit records say
    /// `auth_method: system` (no request, no person).
    pub async fn run_maintenance(&self) -> Result<()> {
        let ctx = crate::audit::AuditContext::system();
        let now = crate::model::now_millis();
        self.index
            .applied(self.store.expire_invitations(&ctx, now))
            .await?;
        self.index
            .applied(self.store.expire_grants(&ctx, now))
            .await?;
        self.index
            .applied(self.store.expire_sessions(&ctx, now))
            .await?;
        self.index
            .applied(self.store.expire_super_powers(&ctx, now))
            .await?;
        self.keys.flush_key_uses().await?;
        self.sign_in.flush_session_uses().await?;
        self.audit.summarize_dropped_denials(&ctx).await?;
        Ok(())
    }
}

/// The human user behind the caller, or a refusal for org keys.
pub(crate) fn require_user(ctx: &RequestCtx) -> Result<AccountId> {
    ctx.user_id()
        .ok_or_else(|| Error::forbidden("this needs a user's credentials, not an organization key"))
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
        Constraint::PendingInvitation => Error::new(
            Code::Conflict,
            "the invitee already has a pending invitation to this organization",
        ),
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
