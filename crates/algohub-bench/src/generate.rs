//! A deterministic, seeded directory (users, orgs, memberships, teams, team seats,
//! apps, team app grants, cluster admins) and a seeded question stream over it.
//!
//! Proportions (per `n` users): one org per 50 users, 3–5 teams per org, one app per
//! 5 users (70% org-owned, 30% user-owned). Users are in 0–3 orgs (10/60/25/5%)
//! with roles 5% admin, 50% contributor, 25% team_contributor, 20% viewer; every
//! org has an admin (its creator). A fifth of memberships and org apps go to the
//! 2% most popular orgs, so a few orgs are large. Team seats go mostly to
//! team_contributors; each team holds 1–4 of its org's apps with a mix of app
//! roles. 1% of users are suspended and 1% of orgs are inactive; a few users are
//! cluster admins. No expiry and no API keys.
//!
//! Questions are (user, action, resource) with the resource's home account (the
//! owner of an app, the org of a team), as a request path would carry it
//! (`/apps/{owner}/{name}`, `/orgs/{org}/teams/{team}`).

use algohub_core::model::{AccountId, AppId, TeamId};
use algohub_core::policy::{Action, Resource};
use algohub_core::roles::{AppRole, OrgRole};
use algohub_core::store::{
    PolicyMembershipRow, PolicySnapshot, PolicyTeamAppRow, PolicyTeamMemberRow, PolicyUserRow,
};

/// SplitMix64: tiny, fast and deterministic across platforms.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
    /// Uniform in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    /// Picks from `(weight, value)` pairs (weights sum to 1).
    pub fn weighted<T: Copy>(&mut self, xs: &[(f64, T)]) -> T {
        let mut x = self.unit();
        for (w, v) in xs {
            if x < *w {
                return *v;
            }
            x -= w;
        }
        xs[xs.len() - 1].1
    }
}

/// The generated directory: the snapshot our engine loads, plus the same facts in
/// shapes that make the other encodings and the question stream easy to build.
pub struct Directory {
    pub snapshot: PolicySnapshot,
    pub n_users: usize,
    /// Org account ids are `first_org .. first_org + n_orgs`.
    pub first_org: AccountId,
    pub n_orgs: usize,
    /// Per org (by index): its members and their roles.
    pub org_members: Vec<Vec<(AccountId, OrgRole)>>,
    /// Per org (by index): its teams.
    pub org_teams: Vec<Vec<TeamId>>,
    /// Per org (by index): the apps it owns.
    pub org_apps: Vec<Vec<AppId>>,
    /// Per team (id - 1): its org and the users holding a seat.
    pub team_org: Vec<AccountId>,
    pub team_seats: Vec<Vec<AccountId>>,
    /// Per app (id - 1): owner account and the teams granted it.
    pub app_owner: Vec<AccountId>,
    pub app_grants: Vec<Vec<(TeamId, AppRole)>>,
    pub cluster_admins: Vec<AccountId>,
}

impl Directory {
    pub fn org_index(&self, org: AccountId) -> Option<usize> {
        let i = org - self.first_org;
        (i >= 0 && (i as usize) < self.n_orgs).then_some(i as usize)
    }
}

const ORG_ROLES: [(f64, OrgRole); 4] = [
    (0.05, OrgRole::Admin),
    (0.50, OrgRole::Contributor),
    (0.25, OrgRole::TeamContributor),
    (0.20, OrgRole::Viewer),
];
const APP_ROLES: [(f64, AppRole); 4] = [
    (0.30, AppRole::Read),
    (0.20, AppRole::Contributor),
    (0.40, AppRole::Write),
    (0.10, AppRole::Admin),
];

/// Builds the directory for `n_users` users.
pub fn directory(n_users: usize, seed: u64) -> Directory {
    let mut rng = Rng::new(seed);
    let n_orgs = (n_users / 50).max(2);
    let n_popular = (n_orgs / 50).max(1);
    let first_org = n_users as AccountId + 1;
    let pick_org = |rng: &mut Rng| -> usize {
        if rng.chance(0.2) {
            rng.below(n_popular)
        } else {
            rng.below(n_orgs)
        }
    };

    let mut s = PolicySnapshot {
        seq: 1,
        ..Default::default()
    };
    s.users = (1..=n_users as AccountId)
        .map(|id| PolicyUserRow {
            id,
            cluster_admin: false,
            sudo_user: false,
            active: true,
            super_powers_until: None,
        })
        .collect();
    for u in &mut s.users {
        if rng.chance(0.01) {
            u.active = false;
        }
    }
    let n_admins = 3 + n_users / 50_000;
    let mut cluster_admins = Vec::with_capacity(n_admins);
    while cluster_admins.len() < n_admins {
        let id = rng.below(n_users) as AccountId + 1;
        let row = &mut s.users[id as usize - 1];
        if !row.cluster_admin && row.active {
            row.cluster_admin = true;
            cluster_admins.push(id);
        }
    }
    s.orgs = (0..n_orgs)
        .map(|i| (first_org + i as AccountId, !rng.chance(0.01)))
        .collect();

    // Memberships: every org's creator is its admin, then 0–3 orgs per user.
    let mut user_orgs: Vec<Vec<(usize, OrgRole)>> = vec![Vec::new(); n_users + 1];
    for o in 0..n_orgs {
        let creator = rng.below(n_users) + 1;
        user_orgs[creator].push((o, OrgRole::Admin));
    }
    for (u, orgs) in user_orgs.iter_mut().enumerate().skip(1) {
        let _ = u;
        let k = rng.weighted(&[(0.10, 0usize), (0.60, 1), (0.25, 2), (0.05, 3)]);
        let mut tries = 0;
        while orgs.len() < k && tries < 10 {
            tries += 1;
            let o = pick_org(&mut rng);
            if orgs.iter().all(|(x, _)| *x != o) {
                orgs.push((o, rng.weighted(&ORG_ROLES)));
            }
        }
    }
    let mut org_members: Vec<Vec<(AccountId, OrgRole)>> = vec![Vec::new(); n_orgs];
    for (u, orgs) in user_orgs.iter().enumerate() {
        for (o, role) in orgs {
            org_members[*o].push((u as AccountId, *role));
            s.memberships.push(PolicyMembershipRow {
                user_id: u as AccountId,
                org_id: first_org + *o as AccountId,
                role: *role,
                expires_at: None,
            });
        }
    }

    // Teams and seats.
    let mut org_teams: Vec<Vec<TeamId>> = vec![Vec::new(); n_orgs];
    let mut team_org = Vec::new();
    for (o, teams) in org_teams.iter_mut().enumerate() {
        for _ in 0..3 + rng.below(3) {
            team_org.push(first_org + o as AccountId);
            let id = team_org.len() as TeamId;
            teams.push(id);
            s.teams.push((id, first_org + o as AccountId));
        }
    }
    let mut team_seats: Vec<Vec<AccountId>> = vec![Vec::new(); team_org.len()];
    for (o, members) in org_members.iter().enumerate() {
        let teams = &org_teams[o];
        for (u, role) in members {
            let seats = match role {
                OrgRole::TeamContributor => 1 + usize::from(rng.chance(0.3)),
                OrgRole::Contributor => usize::from(rng.chance(0.2)),
                OrgRole::Admin => usize::from(rng.chance(0.1)),
                OrgRole::Viewer => usize::from(rng.chance(0.05)),
            };
            let first = rng.below(teams.len());
            for k in 0..seats.min(teams.len()) {
                let t = teams[(first + k) % teams.len()];
                team_seats[t as usize - 1].push(*u);
                s.team_members.push(PolicyTeamMemberRow {
                    team_id: t,
                    user_id: *u,
                    expires_at: None,
                });
            }
        }
    }

    // Apps: 70% owned by orgs (skewed to popular ones), 30% by users.
    let n_apps = (n_users / 5).max(1);
    let mut org_apps: Vec<Vec<AppId>> = vec![Vec::new(); n_orgs];
    let mut app_owner = Vec::with_capacity(n_apps);
    for i in 0..n_apps {
        let id = i as AppId + 1;
        let owner = if rng.chance(0.7) {
            let o = pick_org(&mut rng);
            org_apps[o].push(id);
            first_org + o as AccountId
        } else {
            rng.below(n_users) as AccountId + 1
        };
        app_owner.push(owner);
        s.apps.push((id, owner));
    }

    // Team grants: each team holds 1–4 of its org's apps.
    let mut app_grants: Vec<Vec<(TeamId, AppRole)>> = vec![Vec::new(); n_apps];
    for (o, teams) in org_teams.iter().enumerate() {
        let apps = &org_apps[o];
        if apps.is_empty() {
            continue;
        }
        for &t in teams {
            let k = (1 + rng.below(4)).min(apps.len());
            let first = rng.below(apps.len());
            for j in 0..k {
                let app = apps[(first + j) % apps.len()];
                let role = rng.weighted(&APP_ROLES);
                app_grants[app as usize - 1].push((t, role));
                s.team_apps.push(PolicyTeamAppRow {
                    team_id: t,
                    app_id: app,
                    role,
                    expires_at: None,
                });
            }
        }
    }

    Directory {
        snapshot: s,
        n_users,
        first_org,
        n_orgs,
        org_members,
        org_teams,
        org_apps,
        team_org,
        team_seats,
        app_owner,
        app_grants,
        cluster_admins,
    }
}

/// One authorization question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Question {
    pub user: AccountId,
    pub action: Action,
    pub resource: Resource,
    /// The resource's home account as the request path names it (0 when the
    /// resource does not exist).
    pub home: AccountId,
}

/// A seeded stream of `n` questions: 25% about orgs, 10% about teams, 10% app
/// creation in an account namespace, 55% about apps; principals are chosen to
/// give a realistic mix of members, owners, team-seat holders, strangers,
/// cluster admins, suspended and unknown users, and a few missing resources.
pub fn questions(d: &Directory, n: usize, seed: u64) -> Vec<Question> {
    let mut rng = Rng::new(seed);
    let n_users = d.n_users;
    let random_user = |rng: &mut Rng| -> AccountId {
        if rng.chance(0.005) {
            // Unknown account id (past every user and org).
            d.first_org + d.n_orgs as AccountId + 1 + rng.below(1000) as AccountId
        } else {
            rng.below(n_users) as AccountId + 1
        }
    };
    let pick_org = |rng: &mut Rng| -> usize {
        if rng.chance(0.2) {
            rng.below((d.n_orgs / 50).max(1))
        } else {
            rng.below(d.n_orgs)
        }
    };
    let member_or_random = |rng: &mut Rng, o: usize, p_member: f64| -> AccountId {
        let members = &d.org_members[o];
        if !members.is_empty() && rng.chance(p_member) {
            rng.pick(members).0
        } else if rng.chance(0.05) {
            rng.pick(&d.cluster_admins)
        } else {
            random_user(rng)
        }
    };
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let kind = rng.unit();
        let q = if kind < 0.25 {
            let action = rng.weighted(&[
                (0.40, Action::OrgMembersRead),
                (0.10, Action::OrgReadPrivate),
                (0.25, Action::OrgMembersManage),
                (0.25, Action::OrgTeamsManage),
            ]);
            let o = pick_org(&mut rng);
            let user = member_or_random(&mut rng, o, 0.6);
            // A few questions name an account that is not an org (a user).
            let org = if rng.chance(0.005) {
                rng.below(n_users) as AccountId + 1
            } else {
                d.first_org + o as AccountId
            };
            Question {
                user,
                action,
                resource: Resource::Org(org),
                home: org,
            }
        } else if kind < 0.35 {
            let action = if rng.chance(0.6) {
                Action::OrgTeamsRead
            } else {
                Action::OrgTeamsManage
            };
            if rng.chance(0.005) {
                let missing = d.team_org.len() as TeamId + 1 + rng.below(100) as TeamId;
                Question {
                    user: random_user(&mut rng),
                    action,
                    resource: Resource::Team(missing),
                    home: 0,
                }
            } else {
                let o = pick_org(&mut rng);
                let team = rng.pick(&d.org_teams[o]);
                let user = member_or_random(&mut rng, o, 0.6);
                Question {
                    user,
                    action,
                    resource: Resource::Team(team),
                    home: d.team_org[team as usize - 1],
                }
            }
        } else if kind < 0.45 {
            let x = rng.unit();
            let (user, account) = if x < 0.3 {
                let u = random_user(&mut rng);
                (u, u)
            } else if x < 0.8 {
                let o = pick_org(&mut rng);
                (
                    member_or_random(&mut rng, o, 0.8),
                    d.first_org + o as AccountId,
                )
            } else {
                let account = if rng.chance(0.5) {
                    rng.below(n_users) as AccountId + 1
                } else {
                    d.first_org + rng.below(d.n_orgs) as AccountId
                };
                (random_user(&mut rng), account)
            };
            Question {
                user,
                action: Action::AppCreate,
                resource: Resource::Account(account),
                home: account,
            }
        } else {
            let action = rng.weighted(&[
                (0.40, Action::AppRead),
                (0.10, Action::AppContribute),
                (0.25, Action::AppWrite),
                (0.05, Action::AppDelete),
                (0.20, Action::AppManage),
            ]);
            if rng.chance(0.005) {
                let missing = d.app_owner.len() as AppId + 1 + rng.below(100) as AppId;
                Question {
                    user: random_user(&mut rng),
                    action,
                    resource: Resource::App(missing),
                    home: 0,
                }
            } else {
                let app = rng.below(d.app_owner.len()) as AppId + 1;
                let owner = d.app_owner[app as usize - 1];
                let grants = &d.app_grants[app as usize - 1];
                let x = rng.unit();
                let user = match d.org_index(owner) {
                    Some(o) if x < 0.4 => member_or_random(&mut rng, o, 1.0),
                    Some(_) if x < 0.6 && !grants.is_empty() => {
                        let (team, _) = rng.pick(grants);
                        let seats = &d.team_seats[team as usize - 1];
                        if seats.is_empty() {
                            random_user(&mut rng)
                        } else {
                            rng.pick(seats)
                        }
                    }
                    None if x < 0.4 => owner,
                    _ if rng.chance(0.03) => rng.pick(&d.cluster_admins),
                    _ => random_user(&mut rng),
                };
                Question {
                    user,
                    action,
                    resource: Resource::App(app),
                    home: owner,
                }
            }
        };
        out.push(q);
    }
    out
}
