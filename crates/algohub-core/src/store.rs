//! Store traits: narrow, named after what they hold, gathered in `Store`.
//!
//! An operation that must be atomic is one method named after it
//! (`accept_invitation`, `transfer_app`), and the backend owns the transaction.
//! Every method that changes what the policy engine knows appends a policy change
//! (`PolicyChange`) in the same transaction, which is how other nodes learn of it;
//! what the policy engine reads back (`PolicyFeed` and its rows) is in `store/feed.rs`.

use crate::audit::AuditContext;
use crate::model::*;
use crate::roles::{AppRole, OrgRole};
use async_trait::async_trait;

mod feed;
pub use feed::*;

mod algorithms;
mod error;
mod usage;
pub use algorithms::*;
pub use error::*;
pub use usage::*;

/// One account as the export reads it, borrowed from the database row.
#[derive(Debug, Clone, Copy)]
pub struct ExportUser<'a> {
    pub uuid: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    pub full_name: &'a str,
    pub status: &'a str,
    pub cluster_admin: bool,
    pub sudo_user: bool,
    pub work_limit: Option<i64>,
    pub created_at: Millis,
    pub last_login_at: Option<Millis>,
}

/// Appends one exported account to a chunk (e.g. as a CSV row).
pub type ExportRender = Box<dyn FnMut(&ExportUser<'_>, &mut Vec<u8>) + Send>;

/// Makes a renderer; the export may render on several threads, one each.
pub type MakeExportRender = std::sync::Arc<dyn Fn() -> ExportRender + Send + Sync>;

/// Where exported chunks go: a bounded channel, so the export runs in
/// constant memory at the pace of its reader.
pub type ExportSink = tokio::sync::mpsc::Sender<Result<Vec<u8>, String>>;

/// About how many bytes an export chunk holds.
pub const EXPORT_CHUNK_BYTES: usize = 64 * 1024;

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_user(&self, ctx: &AuditContext, user: &NewUser) -> StoreResult<Written<User>>;
    async fn get_user(&self, id: AccountId) -> StoreResult<User>;
    async fn get_user_by_name(&self, name: &str) -> StoreResult<User>;
    async fn get_user_by_uuid(&self, uuid: &str) -> StoreResult<User>;
    /// Finds a live (not deleted) user by email.
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    /// Users ordered by name, after `marker` (exclusive), deleted ones excluded.
    async fn list_users(&self, page: &Page) -> StoreResult<Vec<User>>;
    async fn update_user(
        &self,
        ctx: &AuditContext,
        id: AccountId,
        update: &UserUpdate,
    ) -> StoreResult<Written<User>>;
    /// Users whose name or email starts with `prefix` (lowercase), ordered by
    /// name after `marker`, deleted ones excluded.
    async fn search_users(&self, prefix: &str, page: &Page) -> StoreResult<Vec<User>>;
    /// Grants or removes the cluster admin and sudo roles; records an event
    /// naming `actor` (`None` for the command line).
    async fn set_user_flags(
        &self,
        ctx: &AuditContext,
        actor: Option<AccountId>,
        id: AccountId,
        cluster_admin: Option<bool>,
        sudo_user: Option<bool>,
    ) -> StoreResult<Written<User>>;
    /// Suspends (`Suspended`) or reinstates (`Active`) a live account; records
    /// an event. A suspended account's credentials stop working at once.
    async fn set_account_status(
        &self,
        ctx: &AuditContext,
        actor: AccountId,
        id: AccountId,
        status: AccountStatus,
    ) -> StoreResult<Written<()>>;
    /// Tombstones the user (name and email stay taken forever) and removes their
    /// memberships, team seats, keys and pending invitations, in one transaction.
    /// Refused with `Conflict { constraint: "last_admin:<org>" }` when the user is
    /// the only admin of an org.
    async fn delete_user(
        &self,
        ctx: &AuditContext,
        id: AccountId,
        actor: AccountId,
    ) -> StoreResult<Written<DeletionReceipt>>;
    /// Resolves a name in the shared namespace (live or tombstoned).
    async fn get_account_by_name(&self, name: &str) -> StoreResult<AccountRef>;
    async fn get_account(&self, id: AccountId) -> StoreResult<AccountRef>;
    async fn count_users(&self) -> StoreResult<i64>;
    /// Every live user, oldest first, rendered by renderers from `render` into chunks of
    /// about `EXPORT_CHUNK_BYTES` sent to `sink`, in one consistent read and
    /// constant memory. Stops early (with `Ok`) when the receiver is gone.
    /// Returns how many users were rendered.
    async fn export_users(&self, render: MakeExportRender, sink: ExportSink) -> StoreResult<u64>;
}

#[async_trait]
pub trait OrgStore: Send + Sync {
    async fn list_org_types(&self) -> StoreResult<Vec<OrgType>>;
    async fn create_org_type(
        &self,
        ctx: &AuditContext,
        name: &str,
    ) -> StoreResult<Written<OrgType>>;
    async fn delete_org_type(&self, ctx: &AuditContext, name: &str) -> StoreResult<Written<()>>;
    /// Creates the org with `creator` as its first admin, in one transaction.
    async fn create_org(
        &self,
        ctx: &AuditContext,
        org: &NewOrg,
        creator: AccountId,
    ) -> StoreResult<Written<Org>>;
    async fn get_org(&self, id: AccountId) -> StoreResult<Org>;
    async fn get_org_by_name(&self, name: &str) -> StoreResult<Org>;
    async fn list_orgs(&self, page: &Page) -> StoreResult<Vec<Org>>;
    async fn update_org(
        &self,
        ctx: &AuditContext,
        id: AccountId,
        update: &OrgUpdate,
    ) -> StoreResult<Written<Org>>;
    /// Tombstones the org and removes its memberships, teams, keys and invitations.
    async fn delete_org(
        &self,
        ctx: &AuditContext,
        id: AccountId,
        actor: AccountId,
    ) -> StoreResult<Written<()>>;

    async fn list_members(&self, org: AccountId, page: &Page) -> StoreResult<Vec<Membership>>;
    async fn get_membership(
        &self,
        org: AccountId,
        user: AccountId,
    ) -> StoreResult<Option<Membership>>;
    async fn list_user_memberships(&self, user: AccountId) -> StoreResult<Vec<Membership>>;
    /// Adds a member; `Conflict{"membership"}` if already one.
    async fn add_member(
        &self,
        ctx: &AuditContext,
        org: AccountId,
        user: AccountId,
        role: OrgRole,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<Membership>>;
    /// Changes a role; refused with `Conflict{"last_admin"}` if it would leave no admin.
    async fn set_member_role(
        &self,
        ctx: &AuditContext,
        org: AccountId,
        user: AccountId,
        role: OrgRole,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<Membership>>;
    /// Removes a member with their team seats and member keys; refused with
    /// `Conflict{"last_admin"}` for the last admin.
    async fn remove_member(
        &self,
        ctx: &AuditContext,
        org: AccountId,
        user: AccountId,
    ) -> StoreResult<Written<()>>;
}

#[async_trait]
pub trait InvitationStore: Send + Sync {
    async fn create_invitation(
        &self,
        ctx: &AuditContext,
        inv: &NewInvitation,
        outbox: &[NewOutboxMessage],
    ) -> StoreResult<Written<Invitation>>;
    async fn get_invitation(&self, id: &str) -> StoreResult<Invitation>;
    async fn find_invitation_by_token(&self, digest: &str) -> StoreResult<Invitation>;
    async fn list_pending_invitations(&self, org: AccountId) -> StoreResult<Vec<Invitation>>;
    async fn list_invitations_for_user(
        &self,
        user: AccountId,
        email: &str,
    ) -> StoreResult<Vec<Invitation>>;
    /// Pending invitation for this user (by id or by email) in this org, if any.
    async fn find_pending_invitation(
        &self,
        org: AccountId,
        user: Option<AccountId>,
        email: Option<&str>,
    ) -> StoreResult<Option<Invitation>>;
    /// Atomically: marks it accepted (only if still pending and unexpired at `now`),
    /// records the Terms of Use version, and adds the membership.
    async fn accept_invitation(
        &self,
        ctx: &AuditContext,
        id: &str,
        user: AccountId,
        tos_version: i64,
        now: Millis,
    ) -> StoreResult<Written<Membership>>;
    /// Moves a pending invitation to `declined`, `rescinded` or `expired`.
    async fn close_invitation(
        &self,
        ctx: &AuditContext,
        id: &str,
        status: InvitationStatus,
        now: Millis,
    ) -> StoreResult<Written<Invitation>>;
    /// Marks every pending invitation past its expiry as expired; returns how many.
    async fn expire_invitations(
        &self,
        ctx: &AuditContext,
        now: Millis,
    ) -> StoreResult<Written<u64>>;
}

#[async_trait]
pub trait TeamStore: Send + Sync {
    async fn create_team(
        &self,
        ctx: &AuditContext,
        org: AccountId,
        name: &str,
    ) -> StoreResult<Written<Team>>;
    async fn get_team(&self, org: AccountId, name: &str) -> StoreResult<Team>;
    async fn list_teams(&self, org: AccountId) -> StoreResult<Vec<Team>>;
    async fn delete_team(&self, ctx: &AuditContext, id: TeamId) -> StoreResult<Written<()>>;
    async fn list_team_members(&self, team: TeamId) -> StoreResult<Vec<TeamMember>>;
    /// Adds a seat; `NotFound` unless the user is a member of the team's org.
    async fn add_team_member(
        &self,
        ctx: &AuditContext,
        team: TeamId,
        user: AccountId,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<()>>;
    async fn remove_team_member(
        &self,
        ctx: &AuditContext,
        team: TeamId,
        user: AccountId,
    ) -> StoreResult<Written<()>>;
    async fn list_team_apps(&self, team: TeamId) -> StoreResult<Vec<TeamAppGrant>>;
    async fn grant_team_app(
        &self,
        ctx: &AuditContext,
        team: TeamId,
        app: AppId,
        role: AppRole,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<()>>;
    async fn revoke_team_app(
        &self,
        ctx: &AuditContext,
        team: TeamId,
        app: AppId,
    ) -> StoreResult<Written<()>>;
    /// Removes memberships and grants whose `expires_at` has passed; each removal
    /// writes a `grant.expired` event. Returns how many were removed.
    async fn expire_grants(&self, ctx: &AuditContext, now: Millis) -> StoreResult<Written<u64>>;
}

#[async_trait]
pub trait AppStore: Send + Sync {
    async fn create_app(
        &self,
        ctx: &AuditContext,
        owner: AccountId,
        name: &str,
        description: &str,
        created_by: AccountId,
    ) -> StoreResult<Written<App>>;
    async fn get_app(&self, owner: AccountId, name: &str) -> StoreResult<App>;
    async fn get_app_by_id(&self, id: AppId) -> StoreResult<App>;
    async fn list_apps(
        &self,
        owner: AccountId,
        search: Option<&str>,
        sort: AppSort,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<App>>;
    async fn delete_app(&self, ctx: &AuditContext, id: AppId) -> StoreResult<Written<()>>;
    async fn duplicate_app(
        &self,
        ctx: &AuditContext,
        id: AppId,
        new_name: &str,
        created_by: AccountId,
    ) -> StoreResult<Written<App>>;
    /// Moves the app and its live algorithms to another owner, optionally
    /// renamed, in one transaction. Team grants are dropped (teams belong to
    /// the old owner). Refused with `Conflict { constraint:
    /// "algorithm_name:<names>" }` (nothing changed) when the new owner already
    /// has algorithms of those names (deleted ones' names stay taken). When the
    /// new owner is an org that requires approval, the moved algorithms'
    /// published versions become pending again.
    /// The audit records (`app.transferred`, one `algorithm.transferred` per
    /// algorithm, `version.submitted` per resubmitted version) name `actor`.
    /// `from` is the owner the caller's rights were checked against: refused
    /// with `Conflict{"app_moved"}` (nothing changed) when the app has
    /// another owner by the time the transfer holds it (moved meanwhile).
    async fn transfer_app(
        &self,
        ctx: &AuditContext,
        id: AppId,
        from: AccountId,
        new_owner: AccountId,
        new_name: &str,
        actor: AccountId,
    ) -> StoreResult<Written<AppTransfer>>;
    async fn pin_app(
        &self,
        ctx: &AuditContext,
        user: AccountId,
        app: AppId,
    ) -> StoreResult<Written<()>>;
    async fn unpin_app(
        &self,
        ctx: &AuditContext,
        user: AccountId,
        app: AppId,
    ) -> StoreResult<Written<()>>;
    async fn list_pinned_apps(&self, user: AccountId) -> StoreResult<Vec<App>>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn create_key(&self, ctx: &AuditContext, key: &NewKey) -> StoreResult<Written<ApiKey>>;
    async fn get_key(&self, id: KeyId) -> StoreResult<ApiKey>;
    async fn get_key_by_uuid(&self, uuid: &str) -> StoreResult<ApiKey>;
    /// Live (unrevoked) keys owned by an account (user keys or org keys).
    async fn list_keys(&self, owner: AccountId, kind: KeyKind) -> StoreResult<Vec<ApiKey>>;
    /// Live member keys issued for this org.
    async fn list_member_keys(&self, org: AccountId) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_key(
        &self,
        ctx: &AuditContext,
        id: KeyId,
        now: Millis,
    ) -> StoreResult<Written<()>>;
    async fn touch_keys(&self, used: &[(KeyId, Millis)]) -> StoreResult<()>;
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Adds messages to the outbox for later delivery.
    async fn enqueue(&self, messages: &[NewOutboxMessage]) -> StoreResult<()>;
    async fn list_outbox(
        &self,
        undelivered_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>>;
    async fn mark_delivered(&self, id: i64, now: Millis) -> StoreResult<()>;
    /// Claims up to `limit` undelivered messages whose kind starts with
    /// `prefix` and that no node holds, until `until`; oldest first. A claim
    /// that lapses (its node died) lets another node take the message.
    async fn claim_outbox(
        &self,
        prefix: &str,
        now: Millis,
        until: Millis,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>>;
    async fn list_events(&self, kind: Option<&str>, limit: i64) -> StoreResult<Vec<Event>>;
    /// Appends one audit record on its own (an act that changes nothing, such
    /// as a refused request or a sudo call).
    async fn record_audit(
        &self,
        ctx: &AuditContext,
        action: crate::audit::EventKind,
        actor: Option<AccountId>,
        target: &str,
        detail: serde_json::Value,
        outcome: &'static str,
    ) -> StoreResult<()>;
    /// Audit records matching the query, oldest first.
    async fn list_audit(
        &self,
        q: &crate::audit::AuditQuery,
    ) -> StoreResult<Vec<crate::audit::AuditRecord>>;
}

/// In-app notifications. System notifications arrive through the outbox
/// (`notification.*` messages for a user become notifications in the
/// transaction that enqueues them).
#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Sends one message to every user in `users`, all or nothing; records an
    /// audit event naming the sender.
    async fn send_notifications(
        &self,
        ctx: &AuditContext,
        sender: AccountId,
        users: &[AccountId],
        text: &str,
        url: Option<&str>,
    ) -> StoreResult<Written<Vec<Notification>>>;
    /// A user's notifications, newest first, older than `before_id` (if
    /// given) and created at or after `since` (if given).
    async fn list_notifications(
        &self,
        user: AccountId,
        before_id: Option<i64>,
        since: Option<Millis>,
        limit: i64,
    ) -> StoreResult<Vec<Notification>>;
    async fn count_unread_notifications(&self, user: AccountId) -> StoreResult<i64>;
    /// Creates a sign-up invite code (`Conflict { constraint: "invite_code" }`
    /// when it exists); records an audit event.
    async fn create_invite_code(
        &self,
        ctx: &AuditContext,
        actor: AccountId,
        code: &str,
        signup_credits: i64,
        comments: &str,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<()>>;
    /// Every invite code, newest first.
    async fn list_invite_codes(&self) -> StoreResult<Vec<InviteCode>>;
    /// Deletes an invite code (`NotFound` when there is none); records an event.
    async fn delete_invite_code(
        &self,
        ctx: &AuditContext,
        actor: AccountId,
        code: &str,
    ) -> StoreResult<Written<()>>;
    /// Marks one notification (or all, with `None`) read; returns how many
    /// changed. `NotFound` when `id` is not the user's.
    async fn mark_notifications_read(
        &self,
        user: AccountId,
        id: Option<i64>,
        now: Millis,
    ) -> StoreResult<u64>;
}

/// Sessions (impersonation and browser sign-ins) and super powers. Each
/// change records its audit event (and, for a new impersonation, the
/// impersonated user's notification) in the same transaction.
#[async_trait]
pub trait ElevatedStore: Send + Sync {
    /// Starts a session: an impersonation (the user is notified) or a
    /// browser sign-in (`auth.signed_in`).
    async fn create_session(
        &self,
        ctx: &AuditContext,
        new: &NewSession,
    ) -> StoreResult<Written<Session>>;
    async fn get_session(&self, id: SessionId) -> StoreResult<Session>;
    /// Ends a live session (`by`: who ended it, `why`: `stopped`, `nested`);
    /// `NotFound` when it has already ended.
    async fn end_session(
        &self,
        ctx: &AuditContext,
        id: SessionId,
        by: Option<AccountId>,
        why: &str,
    ) -> StoreResult<Written<Session>>;
    /// Writes when sessions were last used (not audited: a use is no act);
    /// an ended session is left as it is.
    async fn touch_sessions(&self, used: &[(SessionId, Millis)]) -> StoreResult<()>;
    /// Ends the sessions whose time is up; returns how many.
    async fn expire_sessions(&self, ctx: &AuditContext, now: Millis) -> StoreResult<Written<u64>>;
    /// Turns a user's super powers on (`Some`) or off (`None`); off when they
    /// are already off is `NotFound`.
    async fn set_super_powers(
        &self,
        ctx: &AuditContext,
        user: AccountId,
        on: Option<&SuperPowers>,
    ) -> StoreResult<Written<()>>;
    async fn get_super_powers(&self, user: AccountId) -> StoreResult<Option<SuperPowers>>;
    /// Turns off the super powers whose time is up; returns how many.
    async fn expire_super_powers(
        &self,
        ctx: &AuditContext,
        now: Millis,
    ) -> StoreResult<Written<u64>>;
}

/// The whole store, as held by the services (`Arc<dyn Store>`).
#[async_trait]
pub trait Store:
    AccountStore
    + OrgStore
    + InvitationStore
    + TeamStore
    + AppStore
    + KeyStore
    + OutboxStore
    + PolicyFeed
    + AlgorithmStore
    + UsageStore
    + NotificationStore
    + ElevatedStore
{
    /// Sets how many organizations one user may belong to (`None` = unlimited).
    /// Enforced inside every transaction that adds a membership (the user's row
    /// is locked first), so the limit holds under concurrent accepts and adds;
    /// a refusal is `Conflict { constraint: "org_limit" }`.
    fn set_max_orgs_per_user(&self, max: Option<u32>);
    /// Makes every committed usage batch survive an operating-system crash or
    /// power loss, not only a killed process (`metering_fsync`): the usage
    /// journal drops records once they are committed, so their commit must be
    /// as durable as the journal was. PostgreSQL commits are so already; on a
    /// SQLite file the usage writer commits with `synchronous = FULL`.
    fn set_durable_usage_commits(&self, on: bool);
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// The cluster-wide secret called `name`: the one stored, or, if there is
    /// none yet, `candidate`, stored now (the first node to ask wins, so every
    /// node sharing the database gets the same secret). Creating one records
    /// an event (without the secret).
    async fn cluster_secret(&self, name: &str, candidate: &str) -> StoreResult<String>;
    async fn ping(&self) -> StoreResult<()>;
    async fn close(&self);
}
