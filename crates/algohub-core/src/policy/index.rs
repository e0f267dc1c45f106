//! The policy index: who is in which org and team with which role, which team
//! holds which app, who owns each app, and every live key. Built from a store
//! snapshot, patched one entity at a time as changes arrive.

use crate::model::{AccountId, AppId, KeyId, KeyKind, Millis, Scopes, SessionId, TeamId};
use crate::roles::{AppRole, OrgRole};
use crate::store::{
    ChangeKind, PolicyKeyRow, PolicyMembershipRow, PolicySessionRow, PolicySnapshot, PolicySubject,
    PolicyUserRow,
};
use rustc_hash::FxHashMap;
use serde::Serialize;
use smallvec::SmallVec;

use super::table::IdTable;
use super::{Principal, PrincipalKind};

/// One of a user's org memberships as the decision path reads it. Expiring
/// memberships are rare: their time lives in `Index::member_expiry`, so that a
/// user's entry fits one cache line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrgSeat {
    pub org: AccountId,
    pub role: OrgRole,
    /// The membership has an `expires_at` (in `Index::member_expiry`).
    pub expires: bool,
}

/// A user's memberships; most users are in at most two orgs, so they are kept
/// inline in the user's entry (no pointer to follow on the decision path).
pub(crate) type Memberships = SmallVec<[OrgSeat; 2]>;
/// A user's team seats: (team, expires_at).
pub(crate) type Seats = SmallVec<[(TeamId, Option<Millis>); 1]>;
/// A team's app grants: (app, role, expires_at); teams hold a few apps.
pub(crate) type Grants = SmallVec<[(AppId, AppRole, Option<Millis>); 4]>;

/// What a decision reads about an app: its owner, and the team grants on it
/// (a copy of the teams' grants, kept by app so that the team-grant rule
/// reads the app it already loaded and the user's seats, not every team the
/// user sits in).
#[derive(Debug, Clone)]
pub(crate) struct AppEntry {
    pub owner: AccountId,
    pub grants: SmallVec<[TeamGrant; 1]>,
}

/// A team's grant on an app, as the app's entry holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TeamGrant {
    pub team: TeamId,
    /// The team's org (a team never moves).
    pub org: AccountId,
    pub role: AppRole,
    /// When the grant ends (`Millis::MAX`: never).
    pub until: Millis,
}

/// What a decision reads about a user: one cache line (aligned), so that the
/// common decision costs one memory access for the principal.
#[derive(Debug, Clone, Default)]
#[repr(align(64))]
pub(crate) struct UserEntry {
    /// Super powers are on until this time (0: off).
    pub super_until: Millis,
    pub active: bool,
    pub cluster_admin: bool,
    pub sudo_user: bool,
    pub orgs: Memberships,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TeamEntry {
    pub org: AccountId,
    pub apps: Grants,
}

#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    pub kind: KeyKind,
    pub owner: AccountId,
    pub org: Option<AccountId>,
    pub scopes: Scopes,
    pub expires_at: Option<Millis>,
    pub digest: String,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionEntry {
    pub user: AccountId,
    pub actor: AccountId,
    pub expires_at: Millis,
    pub digest: String,
}

#[derive(Debug, Default)]
pub struct Index {
    pub(crate) users: IdTable<UserEntry>,
    /// (user, org) → expiry, for the memberships that have one.
    pub(crate) member_expiry: FxHashMap<(AccountId, AccountId), Millis>,
    /// user → team seats (only users who hold any; read by team app grants).
    pub(crate) seats: IdTable<Seats>,
    /// org id → active
    pub(crate) orgs: IdTable<bool>,
    pub(crate) teams: IdTable<TeamEntry>,
    /// app id → owner account and team grants
    pub(crate) apps: IdTable<AppEntry>,
    pub(crate) keys: FxHashMap<KeyId, KeyEntry>,
    pub(crate) keys_by_digest: FxHashMap<String, KeyId>,
    /// algorithm id → (owner account, app it belongs to)
    pub(crate) algorithms: IdTable<(AccountId, Option<AppId>)>,
    /// Live sessions, and their ids by token digest.
    pub(crate) sessions: FxHashMap<SessionId, SessionEntry>,
    pub(crate) sessions_by_digest: FxHashMap<String, SessionId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IndexStats {
    pub users: usize,
    pub orgs: usize,
    pub memberships: usize,
    pub teams: usize,
    pub team_seats: usize,
    pub team_grants: usize,
    pub apps: usize,
    pub keys: usize,
    pub algorithms: usize,
}

fn user_entry(u: &PolicyUserRow) -> UserEntry {
    UserEntry {
        super_until: u.super_powers_until.unwrap_or(0),
        active: u.active,
        cluster_admin: u.cluster_admin,
        sudo_user: u.sudo_user,
        orgs: Memberships::new(),
    }
}

fn org_seat(m: &PolicyMembershipRow) -> OrgSeat {
    OrgSeat {
        org: m.org_id,
        role: m.role,
        expires: m.expires_at.is_some(),
    }
}

pub(crate) fn live(expires_at: Option<Millis>, now: Millis) -> bool {
    expires_at.is_none_or(|t| t > now)
}

impl Index {
    pub fn build(s: &PolicySnapshot) -> Self {
        let mut users = IdTable::build(s.users.iter().map(|u| (u.id, user_entry(u))));
        let mut member_expiry = FxHashMap::default();
        for m in &s.memberships {
            if let Some(u) = users.get_mut(&m.user_id) {
                u.orgs.push(org_seat(m));
                if let Some(t) = m.expires_at {
                    member_expiry.insert((m.user_id, m.org_id), t);
                }
            }
        }
        let mut by_user: FxHashMap<AccountId, Seats> = FxHashMap::default();
        for t in &s.team_members {
            if users.contains_key(&t.user_id) {
                by_user
                    .entry(t.user_id)
                    .or_default()
                    .push((t.team_id, t.expires_at));
            }
        }
        let seats = IdTable::build(by_user);
        let orgs = IdTable::build(s.orgs.iter().copied());
        let mut teams = IdTable::build(s.teams.iter().map(|(team, org)| {
            (
                *team,
                TeamEntry {
                    org: *org,
                    apps: Grants::new(),
                },
            )
        }));
        for g in &s.team_apps {
            if let Some(t) = teams.get_mut(&g.team_id) {
                t.apps.push((g.app_id, g.role, g.expires_at));
            }
        }
        let mut apps = IdTable::build(s.apps.iter().map(|(id, owner)| {
            (
                *id,
                AppEntry {
                    owner: *owner,
                    grants: SmallVec::new(),
                },
            )
        }));
        for g in &s.team_apps {
            if let (Some(team), Some(app)) = (teams.get(&g.team_id), apps.get_mut(&g.app_id)) {
                app.grants.push(TeamGrant {
                    team: g.team_id,
                    org: team.org,
                    role: g.role,
                    until: g.expires_at.unwrap_or(Millis::MAX),
                });
            }
        }
        let mut index = Index {
            users,
            member_expiry,
            seats,
            orgs,
            teams,
            apps,
            algorithms: IdTable::build(s.algorithms.iter().map(|a| (a.id, (a.owner_id, a.app_id)))),
            ..Default::default()
        };
        index.keys.reserve(s.keys.len());
        index.keys_by_digest.reserve(s.keys.len());
        for k in &s.keys {
            index.put_key(k);
        }
        for session in &s.sessions {
            index.put_session(session);
        }
        index
    }

    /// A user's live role in an org.
    #[inline]
    pub(crate) fn org_role(
        &self,
        user: AccountId,
        entry: &UserEntry,
        org: AccountId,
        now: Millis,
    ) -> Option<OrgRole> {
        let m = entry.orgs.iter().find(|m| m.org == org)?;
        if m.expires && !live(self.member_expiry.get(&(user, org)).copied(), now) {
            return None;
        }
        Some(m.role)
    }

    fn put_session(&mut self, s: &PolicySessionRow) {
        self.remove_session(s.id);
        if s.ended {
            return;
        }
        self.sessions_by_digest.insert(s.digest.clone(), s.id);
        self.sessions.insert(
            s.id,
            SessionEntry {
                user: s.user_id,
                actor: s.actor_id,
                expires_at: s.expires_at,
                digest: s.digest.clone(),
            },
        );
    }

    fn remove_session(&mut self, id: SessionId) {
        if let Some(old) = self.sessions.remove(&id) {
            self.sessions_by_digest.remove(&old.digest);
        }
    }

    fn put_key(&mut self, k: &PolicyKeyRow) {
        if let Some(old) = self.keys.remove(&k.id) {
            self.keys_by_digest.remove(&old.digest);
        }
        if k.revoked {
            return;
        }
        self.keys_by_digest.insert(k.digest.clone(), k.id);
        self.keys.insert(
            k.id,
            KeyEntry {
                kind: k.kind,
                owner: k.owner_id,
                org: k.org_id,
                scopes: k.scopes,
                expires_at: k.expires_at,
                digest: k.digest.clone(),
            },
        );
    }

    /// Applies the fresh rows of one entity (`None`/empty parts mean it is gone).
    pub fn apply(&mut self, kind: ChangeKind, id: i64, s: &PolicySubject) {
        match kind {
            ChangeKind::User => {
                if let Some(old) = self.users.remove(&id) {
                    for m in old.orgs.iter().filter(|m| m.expires) {
                        self.member_expiry.remove(&(id, m.org));
                    }
                }
                self.seats.remove(&id);
                if let Some(u) = &s.user {
                    let mut entry = user_entry(u);
                    for m in &s.memberships {
                        entry.orgs.push(org_seat(m));
                        if let Some(t) = m.expires_at {
                            self.member_expiry.insert((id, m.org_id), t);
                        }
                    }
                    self.users.insert(id, entry);
                    if !s.team_seats.is_empty() {
                        let seats = s
                            .team_seats
                            .iter()
                            .map(|t| (t.team_id, t.expires_at))
                            .collect();
                        self.seats.insert(id, seats);
                    }
                }
            }
            ChangeKind::Org => match s.org_active {
                Some(active) => {
                    self.orgs.insert(id, active);
                }
                None => {
                    self.orgs.remove(&id);
                }
            },
            ChangeKind::Team => {
                if let Some(old) = self.teams.remove(&id) {
                    for (app, _, _) in &old.apps {
                        if let Some(a) = self.apps.get_mut(app) {
                            a.grants.retain(|g| g.team != id);
                        }
                    }
                }
                if let Some(org) = s.team_org {
                    let mut apps = Grants::new();
                    for g in &s.team_apps {
                        apps.push((g.app_id, g.role, g.expires_at));
                        if let Some(a) = self.apps.get_mut(&g.app_id) {
                            a.grants.push(TeamGrant {
                                team: id,
                                org,
                                role: g.role,
                                until: g.expires_at.unwrap_or(Millis::MAX),
                            });
                        }
                    }
                    self.teams.insert(id, TeamEntry { org, apps });
                }
            }
            ChangeKind::App => match s.app_owner {
                Some(owner) => match self.apps.get_mut(&id) {
                    // An app that moves keeps its grants (teams may only
                    // hold apps of their own org; the rule checks it).
                    Some(a) => a.owner = owner,
                    // A new app: no team holds it yet (a grant names an
                    // existing app, and changes apply in order).
                    None => {
                        self.apps.insert(
                            id,
                            AppEntry {
                                owner,
                                grants: SmallVec::new(),
                            },
                        );
                    }
                },
                None => {
                    self.apps.remove(&id);
                }
            },
            ChangeKind::Algorithm => match &s.algorithm {
                Some(a) => {
                    self.algorithms.insert(id, (a.owner_id, a.app_id));
                }
                None => {
                    self.algorithms.remove(&id);
                }
            },
            ChangeKind::Key => match &s.key {
                Some(k) => self.put_key(k),
                None => {
                    if let Some(old) = self.keys.remove(&id) {
                        self.keys_by_digest.remove(&old.digest);
                    }
                }
            },
            ChangeKind::Session => match &s.session {
                Some(row) => self.put_session(row),
                None => self.remove_session(id),
            },
        }
    }

    /// The principal of a live session: the user it acts as, naming the admin
    /// behind it, who must still be an active cluster admin.
    pub fn principal_for_session(&self, digest: &str, now: Millis) -> Option<Principal> {
        let id = *self.sessions_by_digest.get(digest)?;
        let s = self.sessions.get(&id)?;
        if s.expires_at <= now {
            return None;
        }
        let admin = self.users.get(&s.actor)?;
        if !(admin.active && admin.cluster_admin) {
            return None;
        }
        Some(Principal {
            kind: PrincipalKind::User { user: s.user },
            scopes: Scopes::ALL,
            key: None,
            session: Some(id),
            impersonator: Some(s.actor),
        })
    }

    pub fn principal_for_key(&self, digest: &str, now: Millis) -> Option<Principal> {
        let id = *self.keys_by_digest.get(digest)?;
        let k = self.keys.get(&id)?;
        if !live(k.expires_at, now) {
            return None;
        }
        let kind = match (k.kind, k.org) {
            (KeyKind::User, _) => PrincipalKind::User { user: k.owner },
            (KeyKind::Org, _) => PrincipalKind::OrgKey { org: k.owner },
            (KeyKind::Member, Some(org)) => PrincipalKind::MemberKey { user: k.owner, org },
            (KeyKind::Member, None) => return None,
        };
        Some(Principal {
            kind,
            scopes: k.scopes,
            key: Some(id),
            session: None,
            impersonator: None,
        })
    }

    pub fn user_ids(&self) -> impl Iterator<Item = AccountId> + '_ {
        self.users.keys()
    }

    pub fn is_org(&self, id: AccountId) -> bool {
        self.orgs.contains_key(&id)
    }

    pub fn key_kind(&self, id: KeyId) -> Option<KeyKind> {
        self.keys.get(&id).map(|k| k.kind)
    }

    pub fn stats(&self) -> IndexStats {
        IndexStats {
            users: self.users.len(),
            orgs: self.orgs.len(),
            memberships: self.users.values().map(|u| u.orgs.len()).sum(),
            teams: self.teams.len(),
            team_seats: self.seats.values().map(|t| t.len()).sum(),
            team_grants: self.teams.values().map(|t| t.apps.len()).sum(),
            apps: self.apps.len(),
            keys: self.keys.len(),
            algorithms: self.algorithms.len(),
        }
    }
}
