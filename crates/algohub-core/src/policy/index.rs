//! The policy index: who is in which org and team with which role, which team
//! holds which app, who owns each app, and every live key. Built from a store
//! snapshot, patched one entity at a time as changes arrive.

use crate::model::{AccountId, AppId, KeyId, KeyKind, Millis, Scopes, SessionId, TeamId};
use crate::roles::OrgRole;
use crate::store::{ChangeKind, PolicyKeyRow, PolicySessionRow, PolicySnapshot, PolicySubject};
use rustc_hash::FxHashMap;
use serde::Serialize;
use slab::Slab;
use smallvec::SmallVec;

use super::entry::{
    AppEntry, AppGrants, EXPIRES, Grants, MORE_ORGS, MORE_SEATS, Memberships, NO_GRANTS, OrgSeat,
    Seats, TEAM_SEAT, TeamGrant, TeamSeats, UserEntry, add_seat, inline_orgs, live, org_seat,
    release_slots, set_team_seats, slot, user_entry,
};
use super::table::IdTable;
use super::{Principal, PrincipalKind};

#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    pub kind: KeyKind,
    pub owner: AccountId,
    pub org: Option<AccountId>,
    pub created_by: AccountId,
    /// Made by a cluster admin (`created_by`) for someone else.
    pub minted: bool,
    pub scopes: Scopes,
    pub expires_at: Option<Millis>,
    pub digest: String,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionEntry {
    pub kind: crate::model::SessionKind,
    pub user: AccountId,
    pub actor: AccountId,
    pub expires_at: Millis,
    /// When it was last used as the store knew it when loaded.
    pub last_seen: Millis,
    pub digest: String,
}

#[derive(Debug, Default)]
pub struct Index {
    pub(crate) users: IdTable<UserEntry>,
    /// All memberships of users whose seats are not inline, at the slot
    /// their entry names.
    pub(crate) more_orgs: Slab<Memberships>,
    /// (user, org) → expiry, for the memberships that have one.
    pub(crate) member_expiry: FxHashMap<(AccountId, AccountId), Millis>,
    /// user → when super powers end (only users who switched them on).
    pub(crate) super_until: FxHashMap<AccountId, Millis>,
    /// Team seats of users whose seats are not inline, at the slot their
    /// entry names.
    pub(crate) seats: Slab<Seats>,
    /// org id → active
    pub(crate) orgs: IdTable<bool>,
    /// org id → how many of its admins have active accounts (orgs with none
    /// are absent): an org's own keys work only while it has one.
    pub(crate) active_admins: FxHashMap<AccountId, u32>,
    /// team id → its org
    pub(crate) teams: IdTable<AccountId>,
    /// team id → its app grants (read when a team changes, not by decisions)
    pub(crate) team_grants: FxHashMap<TeamId, Grants>,
    /// app id → owner account, and where its team grants are
    pub(crate) apps: IdTable<AppEntry>,
    /// The team grants on apps that have any, at the slot the app's entry names.
    pub(crate) app_grants: Slab<AppGrants>,
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

impl Index {
    pub fn build(s: &PolicySnapshot) -> Self {
        let mut users = IdTable::build(s.users.iter().map(|u| (u.id, user_entry(u))));
        let super_until = s
            .users
            .iter()
            .filter_map(|u| Some((u.id, u.super_powers_until.filter(|t| *t > 0)?)))
            .collect();
        let mut more_orgs = Slab::new();
        let mut member_expiry = FxHashMap::default();
        for m in &s.memberships {
            if let Some(u) = users.get_mut(&m.user_id) {
                add_seat(&mut more_orgs, u, org_seat(m));
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
        let mut seats = Slab::new();
        for (user, list) in by_user {
            if let Some(e) = users.get_mut(&user) {
                set_team_seats(&mut seats, e, list);
            }
        }
        let orgs = IdTable::build(s.orgs.iter().copied());
        let teams = IdTable::build(s.teams.iter().copied());
        let mut team_grants: FxHashMap<TeamId, Grants> = FxHashMap::default();
        let mut apps = IdTable::build(
            s.apps
                .iter()
                .map(|(id, owner)| (*id, AppEntry::new(*owner))),
        );
        let mut app_grants = Slab::new();
        for g in &s.team_apps {
            let Some(org) = teams.get(&g.team_id) else {
                continue;
            };
            team_grants
                .entry(g.team_id)
                .or_default()
                .push((g.app_id, g.role, g.expires_at));
            if let Some(app) = apps.get_mut(&g.app_id) {
                add_grant(
                    &mut app_grants,
                    app,
                    TeamGrant {
                        team: g.team_id,
                        org: *org,
                        role: g.role,
                        until: g.expires_at.unwrap_or(Millis::MAX),
                    },
                );
            }
        }
        let mut active_admins: FxHashMap<AccountId, u32> = FxHashMap::default();
        for m in &s.memberships {
            if m.role == OrgRole::Admin && users.get(&m.user_id).is_some_and(UserEntry::active) {
                *active_admins.entry(m.org_id).or_default() += 1;
            }
        }
        let mut index = Index {
            active_admins,
            users,
            more_orgs,
            member_expiry,
            super_until,
            seats,
            orgs,
            teams,
            team_grants,
            apps,
            app_grants,
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
    #[inline(always)]
    pub(crate) fn org_role(
        &self,
        user: AccountId,
        entry: &UserEntry,
        org: AccountId,
        now: Millis,
    ) -> Option<OrgRole> {
        let (role, expires) = if entry.flags & MORE_ORGS == 0 {
            let org = u32::try_from(org).ok()?;
            let i = (0..usize::from(entry.len)).find(|i| entry.orgs[*i] == org)?;
            (entry.roles[i], entry.flags & (EXPIRES << i) != 0)
        } else {
            let m = self.more_orgs_of(entry).iter().find(|m| m.org == org)?;
            (m.role, m.expires)
        };
        if expires && !live(self.member_expiry.get(&(user, org)).copied(), now) {
            return None;
        }
        Some(role)
    }

    /// A user's memberships (live or not).
    pub(crate) fn memberships<'a>(
        &'a self,
        entry: &'a UserEntry,
    ) -> impl Iterator<Item = OrgSeat> + 'a {
        inline_orgs(entry).chain(self.more_orgs_of(entry).iter().copied())
    }

    /// The memberships of a user whose seats are not inline (else none).
    #[inline]
    fn more_orgs_of(&self, e: &UserEntry) -> &[OrgSeat] {
        match e.flags & MORE_ORGS {
            0 => &[],
            _ => self
                .more_orgs
                .get(e.orgs[0] as usize)
                .map_or(&[], |m| &m[..]),
        }
    }

    /// A user's team seats, looked up once for a decision.
    #[inline(always)]
    pub(crate) fn team_seats(&self, e: &UserEntry) -> TeamSeats<'_> {
        if e.flags & MORE_SEATS != 0 {
            TeamSeats::Many(self.seats.get(e.team as usize).map_or(&[][..], |s| &s[..]))
        } else if e.flags & TEAM_SEAT != 0 {
            TeamSeats::One(TeamId::from(e.team))
        } else {
            TeamSeats::Many(&[])
        }
    }

    /// When a user's super powers end (0: never switched on).
    #[inline]
    pub(crate) fn super_until(&self, user: AccountId) -> Millis {
        self.super_until.get(&user).copied().unwrap_or(0)
    }

    /// The team grants on an app (empty unless its entry says it has any).
    #[inline]
    pub(crate) fn app_grants(&self, entry: &AppEntry) -> &[TeamGrant] {
        if !entry.granted() {
            return &[];
        }
        self.app_grants
            .get(entry.grants as usize)
            .map_or(&[][..], |g| &g[..])
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
                kind: s.kind,
                user: s.user_id,
                actor: s.actor_id,
                expires_at: s.expires_at,
                last_seen: s.last_seen,
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
                created_by: k.created_by,
                minted: k.minted,
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
                    self.count_admin_seats(&old, false);
                    let expiring: SmallVec<[AccountId; 4]> = self
                        .memberships(&old)
                        .filter(|m| m.expires)
                        .map(|m| m.org)
                        .collect();
                    for org in expiring {
                        self.member_expiry.remove(&(id, org));
                    }
                    release_slots(Some(&mut self.more_orgs), Some(&mut self.seats), &old);
                }
                self.super_until.remove(&id);
                if let Some(u) = &s.user {
                    let mut entry = user_entry(u);
                    for m in &s.memberships {
                        add_seat(&mut self.more_orgs, &mut entry, org_seat(m));
                        if let Some(t) = m.expires_at {
                            self.member_expiry.insert((id, m.org_id), t);
                        }
                    }
                    if let Some(t) = u.super_powers_until.filter(|t| *t > 0) {
                        self.super_until.insert(id, t);
                    }
                    let seats = s
                        .team_seats
                        .iter()
                        .map(|t| (t.team_id, t.expires_at))
                        .collect();
                    set_team_seats(&mut self.seats, &mut entry, seats);
                    self.count_admin_seats(&entry, true);
                    self.users.insert(id, entry);
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
                self.teams.remove(&id);
                for (app, _, _) in self.team_grants.remove(&id).unwrap_or_default() {
                    self.drop_team_grants(app, id);
                }
                if let Some(org) = s.team_org {
                    let mut apps = Grants::new();
                    for g in &s.team_apps {
                        apps.push((g.app_id, g.role, g.expires_at));
                        if let Some(a) = self.apps.get_mut(&g.app_id) {
                            add_grant(
                                &mut self.app_grants,
                                a,
                                TeamGrant {
                                    team: id,
                                    org,
                                    role: g.role,
                                    until: g.expires_at.unwrap_or(Millis::MAX),
                                },
                            );
                        }
                    }
                    self.teams.insert(id, org);
                    if !apps.is_empty() {
                        self.team_grants.insert(id, apps);
                    }
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
                        self.apps.insert(id, AppEntry::new(owner));
                    }
                },
                None => {
                    if let Some(a) = self.apps.remove(&id)
                        && a.granted()
                    {
                        self.app_grants.try_remove(a.grants as usize);
                    }
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

    /// Counts (or, leaving, uncounts) an active user's admin seats in
    /// `active_admins`; an inactive user's count for nothing.
    fn count_admin_seats(&mut self, entry: &UserEntry, joining: bool) {
        if !entry.active() {
            return;
        }
        let orgs: SmallVec<[AccountId; 4]> = self
            .memberships(entry)
            .filter(|m| m.role == OrgRole::Admin)
            .map(|m| m.org)
            .collect();
        for org in orgs {
            if joining {
                *self.active_admins.entry(org).or_default() += 1;
            } else if let Some(n) = self.active_admins.get_mut(&org) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.active_admins.remove(&org);
                }
            }
        }
    }

    /// Whether the org has an admin whose account is active.
    pub(crate) fn has_active_admin(&self, org: AccountId) -> bool {
        self.active_admins.contains_key(&org)
    }

    /// Removes a team's grants from an app's.
    fn drop_team_grants(&mut self, app: AppId, team: TeamId) {
        let Some(a) = self.apps.get_mut(&app).filter(|a| a.granted()) else {
            return;
        };
        let Some(grants) = self.app_grants.get_mut(a.grants as usize) else {
            return;
        };
        grants.retain(|g| g.team != team);
        if grants.is_empty() {
            self.app_grants.try_remove(a.grants as usize);
            a.grants = NO_GRANTS;
        }
    }

    /// The principal of a live session, with when the store last knew it
    /// used: a browser session acts as its user; an impersonation acts as
    /// the user it impersonates, naming the admin behind it, who must still
    /// be an active cluster admin.
    pub fn principal_for_session(&self, digest: &str, now: Millis) -> Option<(Principal, Millis)> {
        let id = *self.sessions_by_digest.get(digest)?;
        let s = self.sessions.get(&id)?;
        if s.expires_at <= now {
            return None;
        }
        let impersonator = match s.kind {
            crate::model::SessionKind::Browser => None,
            crate::model::SessionKind::Impersonation => {
                let admin = self.users.get(&s.actor)?;
                if !(admin.active() && admin.cluster_admin()) {
                    return None;
                }
                Some(s.actor)
            }
        };
        let principal = Principal {
            kind: PrincipalKind::User { user: s.user },
            scopes: Scopes::ALL,
            key: None,
            session: Some(id),
            impersonator,
            call: None,
        };
        Some((principal, s.last_seen))
    }

    /// Whether the account a principal acts for is live and not suspended.
    pub(crate) fn principal_active(&self, p: &Principal) -> bool {
        match p.kind {
            PrincipalKind::User { user } | PrincipalKind::MemberKey { user, .. } => {
                self.users.get(&user).is_some_and(|u| u.active())
            }
            PrincipalKind::OrgKey { org } => {
                self.orgs.get(&org) == Some(&true) && self.has_active_admin(org)
            }
        }
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
        // A key a cluster admin made for someone else is that admin acting
        // as its owner: an impersonation, while the admin still is one.
        let impersonator = if k.minted {
            let admin = self.users.get(&k.created_by)?;
            if !(admin.active() && admin.cluster_admin()) {
                return None;
            }
            Some(k.created_by)
        } else {
            None
        };
        Some(Principal {
            kind,
            scopes: k.scopes,
            key: Some(id),
            session: None,
            impersonator,
            call: None,
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
            memberships: self
                .users
                .values()
                .map(|u| usize::from(u.len))
                .sum::<usize>()
                + self.more_orgs.iter().map(|(_, m)| m.len()).sum::<usize>(),
            teams: self.teams.len(),
            team_seats: self
                .users
                .values()
                .filter(|u| u.flags & TEAM_SEAT != 0)
                .count()
                + self.seats.iter().map(|(_, t)| t.len()).sum::<usize>(),
            team_grants: self.team_grants.values().map(|g| g.len()).sum(),
            apps: self.apps.len(),
            keys: self.keys.len(),
            algorithms: self.algorithms.len(),
        }
    }
}

/// Adds a team's grant to an app's, giving the app a slot for its first.
fn add_grant(grants: &mut Slab<AppGrants>, app: &mut AppEntry, g: TeamGrant) {
    if !app.granted() {
        app.grants = slot(grants.insert(AppGrants::new()));
    }
    if let Some(list) = grants.get_mut(app.grants as usize) {
        list.push(g);
    }
}
