//! Authorization: `decide(principal, action, resource)` over an in-memory index.
//!
//! Design choice: the rules are written once as the reference
//! (`rules::evaluate`), generic over a tracer. `explain` uses a tracer that
//! records every rule consulted; keys, member keys and impersonation sessions
//! are decided by it with a tracer that records nothing (compiled away). A
//! user's own session, the common case, is decided by `fast::decide_user`,
//! the same rules computed with few branches; a test holds it to the
//! reference's decision (rule included) over generated directories. No
//! decision does I/O: the index is fed from the store (snapshot at start, then
//! incremental changes, see `PolicyEngine::apply`).

mod clock;
mod entry;
mod fast;
mod index;
mod lookups;
mod rules;
mod table;

pub use clock::{coarse_now_millis, tick as tick_coarse_clock};
pub use index::{Index, IndexStats};

impl Index {
    /// A decision straight from an index (no lock): what `PolicyEngine`
    /// answers, for an index the caller holds.
    #[inline]
    pub fn decide(
        &self,
        principal: &Principal,
        action: Action,
        resource: Resource,
        now: Millis,
    ) -> Decision {
        match *principal {
            Principal {
                kind: PrincipalKind::User { user },
                key: None,
                impersonator: None,
                call: None,
                ..
            } => fast::decide_user(self, user, action, resource, now),
            _ => rules::evaluate(self, principal, action, resource, now, &mut rules::NoTrace),
        }
    }
}
pub use rules::{Outcome, Rule, TraceStep};

use crate::model::{AccountId, AlgoId, AppId, KeyId, Millis, Scopes, SessionId, TeamId};
use crate::store::{ChangeKind, PolicySnapshot, PolicySubject};
use algohub_sync::ReadMostly;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// What the credential may be used for (`Scopes::ALL` for a full session).
    pub scopes: Scopes,
    /// The API key used, if any.
    pub key: Option<KeyId>,
    /// The session used, if any (an impersonation session).
    pub session: Option<SessionId>,
    /// Under impersonation: the cluster admin really acting.
    pub impersonator: Option<AccountId>,
    /// An algorithm acting during a call (a call token): whose algorithm it
    /// is. Such a principal is limited to its scopes, as a key is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<CallGrant>,
}

/// What marks an algorithm acting during a call, and the credential of the
/// call it came from (which must stay live for the grant to hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallGrant {
    /// The account that owns the running algorithm (collections with the
    /// `my_algos` ACL are readable by that account's algorithms).
    pub algorithm_owner: AccountId,
    /// Who made the call: the account, and the key or impersonation session
    /// used, if any.
    pub caller: AccountId,
    pub caller_key: Option<KeyId>,
    pub caller_session: Option<SessionId>,
    /// A sudo call: the caller must still hold the sudo role.
    pub sudo: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A user acting as themself.
    User { user: AccountId },
    /// An organization's own key: acts as the organization.
    OrgKey { org: AccountId },
    /// A member key: acts as the user, limited to one organization.
    MemberKey { user: AccountId, org: AccountId },
}

impl Principal {
    pub fn user(user: AccountId) -> Self {
        Self {
            kind: PrincipalKind::User { user },
            scopes: Scopes::ALL,
            key: None,
            session: None,
            impersonator: None,
            call: None,
        }
    }
    /// The human behind the principal, if there is one.
    pub fn user_id(&self) -> Option<AccountId> {
        match self.kind {
            PrincipalKind::User { user } | PrincipalKind::MemberKey { user, .. } => Some(user),
            PrincipalKind::OrgKey { .. } => None,
        }
    }
    /// The account the principal acts as.
    pub fn account_id(&self) -> AccountId {
        match self.kind {
            PrincipalKind::User { user } | PrincipalKind::MemberKey { user, .. } => user,
            PrincipalKind::OrgKey { org } => org,
        }
    }
    /// Whether this is an algorithm of `owner` acting during a call (what the
    /// `my_algos` data ACL lets read).
    pub fn is_algorithm_of(&self, owner: AccountId) -> bool {
        self.call.is_some_and(|c| c.algorithm_owner == owner)
    }
}

/// What is being done. Names are stable (`as_str`) and used by explain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Action {
    AdminUsersManage,
    AdminUsersRead,
    AdminOrgTypesManage,
    UserRead,
    UserUpdate,
    UserKeysManage,
    OrgCreate,
    OrgRead,
    OrgReadPrivate,
    OrgUpdate,
    OrgDelete,
    OrgMembersRead,
    OrgMembersManage,
    /// Leave an org (end one's own membership): any member, with their own
    /// credentials; not an impersonation session (a membership outlives it).
    OrgLeave,
    OrgKeysManage,
    OrgTeamsRead,
    OrgTeamsManage,
    AppCreate,
    AppRead,
    AppContribute,
    AppWrite,
    AppDelete,
    AppManage,
    AlgoCreate,
    AlgoRead,
    AlgoUpdate,
    AlgoDelete,
    AlgoPublish,
    /// Read an algorithm's uploaded source (its wasm module or http
    /// definition) whatever its `source_visibility`: those with rights on it
    /// (app role write), or a cluster admin with super powers. Where the
    /// source is `open`, `AlgoRead` is enough (see `services::source`).
    AlgoSourceRead,
    /// Call any version the principal may see (private ones included).
    AlgoCall,
    /// Call a published public version.
    AlgoCallPublic,
    /// `?sudo=true`: call any version as the algorithm's owner (sudo users).
    AlgoCallSudo,
    VersionApprove,
    /// Read an account's data collections (files, listings, ACLs).
    DataRead,
    /// Create, replace and delete an account's data, and change ACLs.
    DataWrite,
    /// Read a collection whose ACL makes it public.
    DataReadPublic,
    /// Read an account's usage reports, balance and earnings.
    AccountBillingRead,
}

impl Action {
    pub const ALL: [Action; 37] = [
        Action::AdminUsersManage,
        Action::AdminUsersRead,
        Action::AdminOrgTypesManage,
        Action::UserRead,
        Action::UserUpdate,
        Action::UserKeysManage,
        Action::OrgCreate,
        Action::OrgRead,
        Action::OrgReadPrivate,
        Action::OrgUpdate,
        Action::OrgDelete,
        Action::OrgMembersRead,
        Action::OrgMembersManage,
        Action::OrgLeave,
        Action::OrgKeysManage,
        Action::OrgTeamsRead,
        Action::OrgTeamsManage,
        Action::AppCreate,
        Action::AppRead,
        Action::AppContribute,
        Action::AppWrite,
        Action::AppDelete,
        Action::AppManage,
        Action::AlgoCreate,
        Action::AlgoRead,
        Action::AlgoUpdate,
        Action::AlgoDelete,
        Action::AlgoPublish,
        Action::AlgoSourceRead,
        Action::AlgoCall,
        Action::AlgoCallPublic,
        Action::AlgoCallSudo,
        Action::VersionApprove,
        Action::DataRead,
        Action::DataWrite,
        Action::DataReadPublic,
        Action::AccountBillingRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::AdminUsersManage => "admin.users.manage",
            Action::AdminUsersRead => "admin.users.read",
            Action::AdminOrgTypesManage => "admin.org_types.manage",
            Action::UserRead => "user.read",
            Action::UserUpdate => "user.update",
            Action::UserKeysManage => "user.keys.manage",
            Action::OrgCreate => "org.create",
            Action::OrgRead => "org.read",
            Action::OrgReadPrivate => "org.read_private",
            Action::OrgUpdate => "org.update",
            Action::OrgDelete => "org.delete",
            Action::OrgMembersRead => "org.members.read",
            Action::OrgMembersManage => "org.members.manage",
            Action::OrgLeave => "org.leave",
            Action::OrgKeysManage => "org.keys.manage",
            Action::OrgTeamsRead => "org.teams.read",
            Action::OrgTeamsManage => "org.teams.manage",
            Action::AppCreate => "app.create",
            Action::AppRead => "app.read",
            Action::AppContribute => "app.contribute",
            Action::AppWrite => "app.write",
            Action::AppDelete => "app.delete",
            Action::AppManage => "app.manage",
            Action::AlgoCreate => "algo.create",
            Action::AlgoRead => "algo.read",
            Action::AlgoUpdate => "algo.update",
            Action::AlgoDelete => "algo.delete",
            Action::AlgoPublish => "algo.publish",
            Action::AlgoSourceRead => "algo.source.read",
            Action::AlgoCall => "algo.call",
            Action::AlgoCallPublic => "algo.call_public",
            Action::AlgoCallSudo => "algo.call_sudo",
            Action::VersionApprove => "version.approve",
            Action::DataRead => "data.read",
            Action::DataWrite => "data.write",
            Action::DataReadPublic => "data.read_public",
            Action::AccountBillingRead => "account.billing.read",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The key scope a credential needs for this action.
    pub fn required_scope(self) -> i64 {
        match self {
            Action::AlgoCall | Action::AlgoCallPublic | Action::AlgoCallSudo => Scopes::ALGO_CALL,
            Action::DataRead | Action::DataReadPublic => Scopes::DATA_READ,
            Action::DataWrite => Scopes::DATA_WRITE,
            _ => Scopes::MANAGEMENT,
        }
    }
}

/// What it is done to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Resource {
    Cluster,
    /// A user account (profile, keys).
    User(AccountId),
    Org(AccountId),
    /// An account namespace (user or org), e.g. to create an app in it.
    Account(AccountId),
    App(AppId),
    Team(TeamId),
    Algorithm(AlgoId),
}

/// The answer: allowed or not, and the rule that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allow: bool,
    pub rule: Rule,
}

/// A decision with the ordered chain of rules consulted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub allow: bool,
    pub decided_by: Rule,
    pub chain: Vec<TraceStep>,
}

/// The policy engine: the index behind a read-mostly lock (readers, every
/// decision, do no atomic read-modify-write; see `algohub_sync`), plus the
/// sequence number of the last store change applied.
pub struct PolicyEngine {
    index: ReadMostly<Index>,
    seq: AtomicI64,
}

impl PolicyEngine {
    pub fn new(snapshot: &PolicySnapshot) -> Self {
        Self {
            index: ReadMostly::new(Index::build(snapshot)),
            seq: AtomicI64::new(snapshot.seq),
        }
    }

    pub fn decide(&self, principal: &Principal, action: Action, resource: Resource) -> Decision {
        self.decide_at(principal, action, resource, coarse_now_millis())
    }

    #[inline]
    pub fn decide_at(
        &self,
        principal: &Principal,
        action: Action,
        resource: Resource,
        now: Millis,
    ) -> Decision {
        self.index.read().decide(principal, action, resource, now)
    }

    pub fn explain(
        &self,
        principal: &Principal,
        action: Action,
        resource: Resource,
    ) -> Explanation {
        let index = self.index.read();
        let mut trace = rules::VecTrace::default();
        let d = rules::evaluate(
            &index,
            principal,
            action,
            resource,
            coarse_now_millis(),
            &mut trace,
        );
        Explanation {
            allow: d.allow,
            decided_by: d.rule,
            chain: trace.steps,
        }
    }

    /// Every user who may do `action` on `resource`, with the deciding rule.
    pub fn who_can(&self, action: Action, resource: Resource) -> Vec<(AccountId, Rule)> {
        let index = self.index.read();
        let now = coarse_now_millis();
        let mut out: Vec<(AccountId, Rule)> = index
            .user_ids()
            .filter_map(|u| {
                let p = Principal::user(u);
                let d = rules::evaluate(&index, &p, action, resource, now, &mut rules::NoTrace);
                d.allow.then_some((u, d.rule))
            })
            .collect();
        out.sort_unstable_by_key(|(u, _)| *u);
        out
    }

    /// Authenticates an API key by the digest of its secret.
    pub fn authenticate_key(&self, digest: &str) -> Option<Principal> {
        let index = self.index.read();
        index.principal_for_key(digest, coarse_now_millis())
    }

    /// Authenticates a session token by the digest of its secret: a live
    /// browser session, or an impersonation whose admin is still an active
    /// cluster admin; with when the store last knew it used (for the idle
    /// timeout, which the caller applies).
    pub fn authenticate_session(&self, digest: &str) -> Option<(Principal, Millis)> {
        let index = self.index.read();
        index.principal_for_session(digest, coarse_now_millis())
    }

    /// When a cluster admin's super powers end, if they are on.
    pub fn super_powers_until(&self, user: AccountId) -> Option<Millis> {
        let now = coarse_now_millis();
        let index = self.index.read();
        index
            .users
            .contains_key(&user)
            .then(|| index.super_until(user))
            .filter(|t| *t > now)
    }

    /// Whether the account a principal acts for is live and not suspended.
    pub fn principal_active(&self, p: &Principal) -> bool {
        self.index.read().principal_active(p)
    }

    /// Whether an algorithm's principal during a call (`Principal::call`)
    /// still stands: the account it acts as is active, and so is the call's
    /// own credential (the caller's account, the key or impersonation session
    /// it used, the impersonating admin's role, and for a sudo call the sudo
    /// role). Anything else is not such a principal: `false`.
    pub fn call_grant_live(&self, p: &Principal) -> bool {
        let Some(grant) = p.call else {
            return false;
        };
        let now = coarse_now_millis();
        let index = self.index.read();
        let account_active = |id| {
            index.users.get(&id).is_some_and(|u| u.active()) || index.orgs.get(&id) == Some(&true)
        };
        let key_live = grant.caller_key.is_none_or(|id| {
            index
                .keys
                .get(&id)
                .is_some_and(|k| entry::live(k.expires_at, now))
        });
        let session_live = grant
            .caller_session
            .is_none_or(|id| index.sessions.get(&id).is_some_and(|s| s.expires_at > now));
        let admin_live = p.impersonator.is_none_or(|admin| {
            index
                .users
                .get(&admin)
                .is_some_and(|u| u.active() && u.cluster_admin())
        });
        let sudo_live = !grant.sudo
            || index
                .users
                .get(&grant.caller)
                .is_some_and(|u| u.active() && u.sudo_user());
        index.principal_active(p)
            && account_active(grant.caller)
            && key_live
            && session_live
            && admin_live
            && sudo_live
    }

    /// Replaces the whole index (e.g. after a missed change).
    pub fn rebuild(&self, snapshot: &PolicySnapshot) {
        let fresh = Index::build(snapshot);
        *self.index.write() = fresh;
        self.seq.store(snapshot.seq, Ordering::Release);
    }

    /// Applies the current rows of one changed entity.
    pub fn apply(&self, kind: ChangeKind, id: i64, subject: &PolicySubject) {
        self.index.write().apply(kind, id, subject);
    }

    pub fn seq(&self) -> i64 {
        self.seq.load(Ordering::Acquire)
    }

    pub fn set_seq(&self, seq: i64) {
        self.seq.fetch_max(seq, Ordering::AcqRel);
    }

    pub fn stats(&self) -> IndexStats {
        self.index.read().stats()
    }
}

#[cfg(test)]
mod fast_tests;
#[cfg(test)]
mod layout_tests;
#[cfg(test)]
mod principal_tests;
#[cfg(test)]
mod test_directory;
#[cfg(test)]
mod tests;
