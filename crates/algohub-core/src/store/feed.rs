//! What the policy engine loads from the store: a snapshot at start, then
//! the rows of each changed entity (`PolicyFeed`).

use super::StoreResult;
use crate::model::*;
use crate::roles::{AppRole, OrgRole};
use async_trait::async_trait;

/// What changed, for the policy index to reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    User,
    Org,
    Team,
    App,
    Key,
    Algorithm,
    Session,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Org => "org",
            Self::Team => "team",
            Self::App => "app",
            Self::Key => "key",
            Self::Algorithm => "algorithm",
            Self::Session => "session",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => Self::User,
            "org" => Self::Org,
            "team" => Self::Team,
            "app" => Self::App,
            "key" => Self::Key,
            "algorithm" => Self::Algorithm,
            "session" => Self::Session,
            _ => return None,
        })
    }
}

/// What an audited store write returns: its value and the entities whose
/// policy rows it changed (recorded in the write's own transaction). Only
/// `IndexSync::applied` hands a service the value, after this node's policy
/// index has taken the changes, so no use case can forget to refresh it;
/// tools that run without an index (the store's own tests, benchmarks'
/// fixtures) take the value with `unindexed`.
#[derive(Debug)]
#[must_use = "a write's changes must reach the policy index: pass it through IndexSync::applied"]
pub struct Written<T> {
    value: T,
    changes: Vec<(ChangeKind, i64)>,
}

impl<T> Written<T> {
    pub fn new(value: T, changes: Vec<(ChangeKind, i64)>) -> Self {
        Self { value, changes }
    }

    /// A write that changed nothing the policy reads.
    pub fn unchanged(value: T) -> Self {
        Self::new(value, Vec::new())
    }

    /// The entities whose policy rows the write changed.
    pub fn changes(&self) -> &[(ChangeKind, i64)] {
        &self.changes
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Written<U> {
        Written::new(f(self.value), self.changes)
    }

    pub(crate) fn into_parts(self) -> (T, Vec<(ChangeKind, i64)>) {
        (self.value, self.changes)
    }

    /// The value, without refreshing any index: for code that has none.
    pub fn unindexed(self) -> T {
        self.value
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyChange {
    pub seq: i64,
    pub kind: ChangeKind,
    pub id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyUserRow {
    pub id: AccountId,
    pub cluster_admin: bool,
    pub sudo_user: bool,
    pub active: bool,
    /// While set and in the future, a cluster admin's super powers are on.
    pub super_powers_until: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyMembershipRow {
    pub user_id: AccountId,
    pub org_id: AccountId,
    pub role: OrgRole,
    pub expires_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyTeamMemberRow {
    pub team_id: TeamId,
    pub user_id: AccountId,
    pub expires_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyTeamAppRow {
    pub team_id: TeamId,
    pub app_id: AppId,
    pub role: AppRole,
    pub expires_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyKeyRow {
    pub id: KeyId,
    pub digest: String,
    pub kind: KeyKind,
    pub owner_id: AccountId,
    pub org_id: Option<AccountId>,
    /// Who made the key (for an org key: the person behind its calls).
    pub created_by: AccountId,
    /// A cluster admin made it for someone else: it acts as an impersonation
    /// by `created_by`.
    pub minted: bool,
    pub scopes: Scopes,
    pub expires_at: Option<Millis>,
    pub revoked: bool,
}

/// A session credential (an impersonation) as the policy index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySessionRow {
    pub id: SessionId,
    pub kind: crate::model::SessionKind,
    pub digest: String,
    pub user_id: AccountId,
    pub actor_id: AccountId,
    pub expires_at: Millis,
    pub ended: bool,
    /// When it was last used as the store knows it (its start if never).
    pub last_seen: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyAlgorithmRow {
    pub id: AlgoId,
    pub owner_id: AccountId,
    pub app_id: Option<AppId>,
}

/// Everything the policy index holds, as loaded from the store.
#[derive(Debug, Clone, Default)]
pub struct PolicySnapshot {
    /// The highest change sequence included in this snapshot.
    pub seq: i64,
    pub users: Vec<PolicyUserRow>,
    /// (org id, active)
    pub orgs: Vec<(AccountId, bool)>,
    pub memberships: Vec<PolicyMembershipRow>,
    /// (team id, org id)
    pub teams: Vec<(TeamId, AccountId)>,
    pub team_members: Vec<PolicyTeamMemberRow>,
    pub team_apps: Vec<PolicyTeamAppRow>,
    /// (app id, owner account id)
    pub apps: Vec<(AppId, AccountId)>,
    pub keys: Vec<PolicyKeyRow>,
    /// Live (not deleted) algorithms.
    pub algorithms: Vec<PolicyAlgorithmRow>,
    /// Sessions not ended.
    pub sessions: Vec<PolicySessionRow>,
}

/// The current rows of one changed entity. `None` parts mean "gone".
#[derive(Debug, Clone, Default)]
pub struct PolicySubject {
    pub user: Option<PolicyUserRow>,
    pub memberships: Vec<PolicyMembershipRow>,
    pub team_seats: Vec<PolicyTeamMemberRow>,
    pub org_active: Option<bool>,
    pub team_org: Option<AccountId>,
    pub team_apps: Vec<PolicyTeamAppRow>,
    pub app_owner: Option<AccountId>,
    pub key: Option<PolicyKeyRow>,
    pub algorithm: Option<PolicyAlgorithmRow>,
    pub session: Option<PolicySessionRow>,
}

#[async_trait]
pub trait PolicyFeed: Send + Sync {
    async fn load_policy_snapshot(&self) -> StoreResult<PolicySnapshot>;
    /// Changes after `seq`, oldest first.
    async fn policy_changes_since(&self, seq: i64, limit: i64) -> StoreResult<Vec<PolicyChange>>;
    async fn load_policy_subject(&self, kind: ChangeKind, id: i64) -> StoreResult<PolicySubject>;
}
