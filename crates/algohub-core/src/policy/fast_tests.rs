//! The branch-light decision for users (`fast::decide_user`) against the
//! reference (`rules::evaluate`): the same decision, rule included, for every
//! user, action and resource of seeded random directories, before and after
//! memberships, seats, grants and super powers end.

use super::fast::decide_user;
use super::rules::{NoTrace, evaluate};
use super::*;
use crate::roles::{AppRole, OrgRole};
use crate::store::*;

/// xorshift64*: enough randomness for a test, no dependency on an RNG's API.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const T0: Millis = 1_000;
const ENDS: Millis = 5_000;
const T1: Millis = 9_000;
const USERS: i64 = 40;
const BIG_ORG: AccountId = u32::MAX as AccountId + 5;
const BIG_TEAM: TeamId = u32::MAX as TeamId + 9;

fn directory(seed: u64) -> PolicySnapshot {
    let mut r = Rng(seed | 1);
    let mut s = PolicySnapshot::default();
    let ends = |r: &mut Rng, percent| r.chance(percent).then_some(ENDS);
    for id in 1..=USERS {
        s.users.push(PolicyUserRow {
            id,
            cluster_admin: r.chance(15),
            sudo_user: r.chance(10),
            active: r.chance(90),
            super_powers_until: [None, Some(0), Some(ENDS)][r.below(3) as usize],
        });
    }
    let mut orgs: Vec<AccountId> = (100..108).collect();
    orgs.push(BIG_ORG);
    for (i, o) in orgs.iter().enumerate() {
        s.orgs.push((*o, i != 3));
    }
    for u in 1..=USERS {
        // Up to four orgs: inline, spilled, and past 32 bits.
        let mut mine: Vec<AccountId> = Vec::new();
        for _ in 0..r.below(5) {
            let o = orgs[r.below(orgs.len() as u64) as usize];
            if !mine.contains(&o) {
                mine.push(o);
                s.memberships.push(PolicyMembershipRow {
                    user_id: u,
                    org_id: o,
                    role: OrgRole::ALL[r.below(4) as usize],
                    expires_at: ends(&mut r, 20),
                });
            }
        }
    }
    let mut teams: Vec<TeamId> = (1..=12).collect();
    teams.push(BIG_TEAM);
    for t in &teams {
        s.teams
            .push((*t, orgs[r.below(orgs.len() as u64) as usize]));
    }
    for u in 1..=USERS {
        let mut mine: Vec<TeamId> = Vec::new();
        for _ in 0..r.below(4) {
            let t = teams[r.below(teams.len() as u64) as usize];
            if !mine.contains(&t) {
                mine.push(t);
                s.team_members.push(PolicyTeamMemberRow {
                    team_id: t,
                    user_id: u,
                    expires_at: ends(&mut r, 20),
                });
            }
        }
    }
    let accounts = |r: &mut Rng| -> AccountId {
        if r.chance(60) {
            orgs[r.below(orgs.len() as u64) as usize]
        } else {
            1 + r.below(USERS as u64) as AccountId
        }
    };
    for app in 1..=30 {
        s.apps.push((app, accounts(&mut r)));
    }
    for _ in 0..40 {
        let team_id = teams[r.below(teams.len() as u64) as usize];
        let app_id = 1 + r.below(30) as AppId;
        if !s
            .team_apps
            .iter()
            .any(|g| g.team_id == team_id && g.app_id == app_id)
        {
            s.team_apps.push(PolicyTeamAppRow {
                team_id,
                app_id,
                role: AppRole::ALL[r.below(4) as usize],
                expires_at: ends(&mut r, 20),
            });
        }
    }
    for id in 1..=20 {
        s.algorithms.push(PolicyAlgorithmRow {
            id,
            owner_id: accounts(&mut r),
            app_id: r.chance(70).then(|| 1 + r.below(32) as AppId),
        });
    }
    s
}

fn resources() -> Vec<Resource> {
    let mut v = vec![Resource::Cluster];
    let accounts = (0..=USERS + 2).chain(99..=108).chain([BIG_ORG]);
    for id in accounts {
        v.extend([Resource::User(id), Resource::Org(id), Resource::Account(id)]);
    }
    v.extend((0..=32).map(Resource::App));
    v.extend((0..=14).chain([BIG_TEAM]).map(Resource::Team));
    v.extend((0..=22).map(Resource::Algorithm));
    v
}

#[test]
fn the_fast_path_decides_as_the_rules_do() {
    let resources = resources();
    let mut rules_seen = std::collections::HashSet::new();
    for seed in [1, 7, 42, 2024] {
        let ix = Index::build(&directory(seed));
        let mut allowed = 0usize;
        for user in 0..=USERS + 1 {
            let p = Principal::user(user);
            for action in Action::ALL {
                for &resource in &resources {
                    for now in [T0, T1] {
                        let want = evaluate(&ix, &p, action, resource, now, &mut NoTrace);
                        let got = decide_user(&ix, user, action, resource, now);
                        assert_eq!(
                            got, want,
                            "seed {seed}: user {user} {action:?} {resource:?} at {now}"
                        );
                        allowed += usize::from(got.allow);
                        rules_seen.insert(got.rule);
                    }
                }
            }
        }
        assert!(allowed > 1000, "seed {seed}: only {allowed} allowed");
    }
    // The directories reach every rule a user's decision can end in.
    for rule in [
        Rule::PrincipalActive,
        Rule::ResourceExists,
        Rule::ClusterAdmin,
        Rule::SudoUser,
        Rule::Authenticated,
        Rule::AccountSelf,
        Rule::OrgRole,
        Rule::AppOwner,
        Rule::AppOrgRole,
        Rule::TeamAppGrant,
        Rule::SuperPowers,
        Rule::DefaultDeny,
    ] {
        assert!(rules_seen.contains(&rule), "{rule:?} never decided");
    }
}

#[test]
fn index_decide_takes_the_fast_path_only_for_a_users_own_session() {
    let s = directory(3);
    let ix = Index::build(&s);
    let user = s.users.iter().find(|u| u.active).map(|u| u.id).unwrap();
    // A key, an impersonation and a member key go through every rule: the
    // scope, the impersonation limit and the org limit still apply.
    let mut keyed = Principal::user(user);
    keyed.key = Some(1);
    keyed.scopes = Scopes(0);
    assert_eq!(
        ix.decide(&keyed, Action::OrgRead, Resource::Org(100), T0)
            .rule,
        Rule::KeyScope
    );
    let mut impersonated = Principal::user(user);
    impersonated.impersonator = Some(1);
    assert_eq!(
        ix.decide(
            &impersonated,
            Action::UserKeysManage,
            Resource::User(user),
            T0
        )
        .rule,
        Rule::ImpersonationLimit
    );
}
