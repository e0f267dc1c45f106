//! What services ask of the policy index besides decisions: whether an
//! account exists, who administers an org, whom a call counts for, who owns
//! an algorithm, app or team. Reads only; no I/O.

use super::{PolicyEngine, Principal, PrincipalKind, coarse_now_millis};
use crate::model::{AccountId, AlgoId, AppId, KeyId, KeyKind, TeamId};

impl PolicyEngine {
    /// Whether this account exists (a user or org not deleted; suspended
    /// ones included).
    pub fn account_exists(&self, id: AccountId) -> bool {
        let index = self.index.read();
        index.users.contains_key(&id) || index.orgs.contains_key(&id)
    }

    /// Whether the org has an admin whose account is active (its own keys
    /// work only then).
    pub fn org_has_active_admin(&self, org: AccountId) -> bool {
        self.index.read().has_active_admin(org)
    }

    /// The person a call of `principal` counts for when a node shares its
    /// algorithm instances: the user behind a user's own credential or member
    /// key, and for an org key the user who made the key (so the orgs one
    /// person creates, with keys he makes, share his portion); the org itself
    /// if the key is unknown.
    pub fn person_behind(&self, principal: &Principal) -> AccountId {
        match principal.kind {
            PrincipalKind::User { user } | PrincipalKind::MemberKey { user, .. } => user,
            PrincipalKind::OrgKey { org } => principal
                .key
                .and_then(|key| self.index.read().keys.get(&key).map(|k| k.created_by))
                .unwrap_or(org),
        }
    }

    /// The active admins of an org, as the index knows them (for notices).
    pub fn org_admins(&self, org: AccountId) -> Vec<AccountId> {
        let now = coarse_now_millis();
        let index = self.index.read();
        let mut ids: Vec<AccountId> = index
            .users
            .iter()
            .filter(|(id, u)| {
                u.active() && index.org_role(*id, u, org, now) == Some(crate::roles::OrgRole::Admin)
            })
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Active cluster admins, as the index knows them (for notices).
    pub fn active_cluster_admins(&self) -> Vec<AccountId> {
        let index = self.index.read();
        let mut ids: Vec<AccountId> = index
            .users
            .iter()
            .filter(|(_, u)| u.active() && u.cluster_admin())
            .map(|(id, _)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Whether this account id is an organization the index knows.
    pub fn is_org(&self, id: AccountId) -> bool {
        self.index.read().is_org(id)
    }

    /// Whether this user holds the sudo role (used by sudo calls).
    pub fn is_sudo_user(&self, id: AccountId) -> bool {
        self.index
            .read()
            .users
            .get(&id)
            .is_some_and(|u| u.active() && u.sudo_user())
    }

    /// A user's live role in an org, from the index (no I/O).
    pub fn org_role(&self, user: AccountId, org: AccountId) -> Option<crate::roles::OrgRole> {
        let index = self.index.read();
        let entry = index.users.get(&user)?;
        index.org_role(user, entry, org, coarse_now_millis())
    }

    /// The orgs a user is a live member of, in ascending id (oldest first).
    pub fn user_orgs(&self, user: AccountId) -> Vec<AccountId> {
        let now = coarse_now_millis();
        let index = self.index.read();
        let mut orgs: Vec<AccountId> = index
            .users
            .get(&user)
            .map(|u| {
                index
                    .memberships(u)
                    .filter(|m| index.org_role(user, u, m.org, now).is_some())
                    .map(|m| m.org)
                    .collect()
            })
            .unwrap_or_default();
        orgs.sort_unstable();
        orgs
    }

    /// The owner of an algorithm as the index knows it (`None`: unknown to it).
    pub fn algorithm_owner(&self, id: AlgoId) -> Option<AccountId> {
        self.index
            .read()
            .algorithms
            .get(&id)
            .map(|(owner, _)| *owner)
    }

    /// The owner of an app as the index knows it (`None`: unknown to it).
    pub fn app_owner(&self, id: AppId) -> Option<AccountId> {
        self.index.read().apps.get(&id).map(|a| a.owner)
    }

    /// The org a team belongs to.
    pub fn team_org(&self, team: TeamId) -> Option<AccountId> {
        self.index.read().teams.get(&team).copied()
    }

    pub fn key_kind(&self, id: KeyId) -> Option<KeyKind> {
        self.index.read().key_kind(id)
    }
}
