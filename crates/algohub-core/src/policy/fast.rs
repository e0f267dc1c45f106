//! The decision for the common principal, a user acting as themself (no key,
//! no impersonation), computed with few branches. `rules::evaluate` consults
//! its rules one after another, and which one decides depends on the data, so
//! its branches are hard to predict; here every rule that would decide is a
//! bit in one mask, set in the order `evaluate` consults them, and the lowest
//! bit decides. What each action needs comes from a table built at compile
//! time from the same functions `evaluate` uses. Team grants and super powers
//! (lookups beside the entries) are consulted only when no earlier rule
//! decided.
//!
//! `rules::evaluate` stays the reference and is what `explain` traces; the
//! tests check that both give the same decision for every action, resource
//! and user of generated directories.

use super::entry::{EXPIRES, MORE_ORGS, UserEntry};
use super::index::Index;
use super::rules::{
    Rule, app_role_from_org_role, cluster_admin_may, elevated_read, own_account_action,
    required_app_role, required_org_role,
};
use super::{Action, Decision, Resource};
use crate::model::{AccountId, AppId, Millis};
use crate::roles::OrgRole;

/// Resource kinds as bits.
const CLUSTER: u8 = 1;
const USER: u8 = 1 << 1;
const ORG: u8 = 1 << 2;
const ACCOUNT: u8 = 1 << 3;
const APP: u8 = 1 << 4;
const TEAM: u8 = 1 << 5;
const ALGORITHM: u8 = 1 << 6;
const ANY: u8 = 0x7f;

/// What an action needs, as `evaluate` reads it. Roles are their `u8`
/// values (1 = lowest); `NONE` never compares as met.
#[derive(Clone, Copy)]
struct Plan {
    cluster_admin: bool,
    sudo: bool,
    elevated: bool,
    /// Resource kinds on which every user may do it.
    authenticated: u8,
    /// Resource kinds on which a user may do it to their own account.
    own_account: u8,
    /// Resource kinds on which the org role decides, and the role needed.
    org_kinds: u8,
    org_need: u8,
    /// Resource kinds on which app roles decide, and the app role needed.
    app_kinds: u8,
    app_need: u8,
}

const NONE: u8 = u8::MAX;

const fn plan(a: Action) -> Plan {
    let authenticated = match a {
        Action::OrgRead | Action::OrgCreate => ANY,
        Action::AlgoCallPublic => ALGORITHM,
        Action::DataReadPublic => ACCOUNT,
        _ => 0,
    };
    let own_account = if own_account_action(a) {
        USER | ACCOUNT
    } else {
        0
    };
    let (org_kinds, org_need) = match required_org_role(a) {
        Some(r) if matches!(a, Action::VersionApprove) => (ANY, r as u8),
        Some(r) => (ORG | TEAM | ACCOUNT, r as u8),
        None => (0, NONE),
    };
    let (app_kinds, app_need) = match required_app_role(a) {
        Some(r) => (APP | ALGORITHM, r as u8),
        None => (0, NONE),
    };
    Plan {
        cluster_admin: cluster_admin_may(a),
        sudo: matches!(a, Action::AlgoCallSudo),
        elevated: elevated_read(a),
        authenticated,
        own_account,
        org_kinds,
        org_need,
        app_kinds,
        app_need,
    }
}

const PLANS: [Plan; Action::ALL.len()] = {
    let mut t = [plan(Action::OrgRead); Action::ALL.len()];
    let mut i = 0;
    while i < Action::ALL.len() {
        let a = Action::ALL[i];
        t[a as usize] = plan(a);
        i += 1;
    }
    t
};

/// The app role (as `u8`, 0 for none) each org role (as `u8`) gives.
const APP_ROLE_OF_ORG_ROLE: [u8; 5] = {
    let mut t = [0; 5];
    let mut i = 0;
    while i < OrgRole::ALL.len() {
        let r = OrgRole::ALL[i];
        if let Some(app) = app_role_from_org_role(r) {
            t[r as usize] = app as u8;
        }
        i += 1;
    }
    t
};

/// The rules that can decide before team grants, in `evaluate`'s order:
/// bit `i` of the mask is `DECIDING[i]`.
const DECIDING: [Rule; 8] = [
    Rule::ResourceExists,
    Rule::ClusterAdmin,
    Rule::SudoUser,
    Rule::Authenticated,
    Rule::AccountSelf,
    Rule::OrgRole,
    Rule::AppOwner,
    Rule::AppOrgRole,
];

/// `DECIDING`, then the default deny (index `DEFAULT_DENY`, for no bit set).
const DECIDED_BY: [Rule; 9] = {
    let mut t = [Rule::DefaultDeny; 9];
    let mut i = 0;
    while i < DECIDING.len() {
        t[i] = DECIDING[i];
        i += 1;
    }
    t
};
const DEFAULT_DENY: usize = DECIDING.len();

/// Whether each of `DECIDED_BY` allows (`SudoUser`: as the user's sudo role
/// says, added at run time).
const ALLOWS: [bool; 9] = {
    let mut t = [true; 9];
    let mut i = 0;
    while i < DECIDED_BY.len() {
        t[i] = !matches!(
            DECIDED_BY[i],
            Rule::ResourceExists | Rule::SudoUser | Rule::DefaultDeny
        );
        i += 1;
    }
    t
};

/// Where `SudoUser` is in `DECIDED_BY`.
const SUDO: usize = {
    let mut i = 0;
    while !matches!(DECIDED_BY[i], Rule::SudoUser) {
        i += 1;
    }
    i
};

/// No home account (the cluster).
const NO_HOME: AccountId = AccountId::MIN;

/// The user's live role in `org` as `u8` (0: none): branch-free for the two
/// inline memberships without an end, `Index::org_role` otherwise.
#[inline(always)]
fn role_in(ix: &Index, user: AccountId, e: &UserEntry, org: AccountId, now: Millis) -> u8 {
    if e.flags & (MORE_ORGS | EXPIRES | EXPIRES << 1) != 0 {
        return ix.org_role(user, e, org, now).map_or(0, |r| r as u8);
    }
    let fits = u32::try_from(org).is_ok();
    let org = org as u32;
    let m0 = fits & (e.len > 0) & (e.orgs[0] == org);
    let m1 = fits & (e.len > 1) & (e.orgs[1] == org);
    (u8::from(m0) * e.roles[0] as u8) | (u8::from(m1 & !m0) * e.roles[1] as u8)
}

/// `evaluate`'s decision for `Principal::user(me)`.
#[inline]
pub(super) fn decide_user(
    ix: &Index,
    me: AccountId,
    action: Action,
    resource: Resource,
    now: Millis,
) -> Decision {
    let Some(u) = ix.users.get(&me).filter(|u| u.active()) else {
        return Decision {
            allow: false,
            rule: Rule::PrincipalActive,
        };
    };
    let plan = &PLANS[action as usize];
    // The resource: its kind, whether it exists, its home account, and the
    // app whose team grants apply.
    let (kind, exists, home, team_app): (u8, bool, AccountId, Option<AppId>) = match resource {
        Resource::Cluster => (CLUSTER, true, NO_HOME, None),
        Resource::User(id) => (USER, true, id, None),
        Resource::Org(id) => (ORG, ix.orgs.get(&id) == Some(&true), id, None),
        Resource::Account(id) => (ACCOUNT, true, id, None),
        Resource::App(app) => match ix.apps.get(&app) {
            Some(a) => (APP, true, a.owner, a.granted().then_some(app)),
            None => (APP, false, NO_HOME, None),
        },
        Resource::Team(team) => match ix.teams.get(&team) {
            Some(org) => (TEAM, true, *org, None),
            None => (TEAM, false, NO_HOME, None),
        },
        Resource::Algorithm(algo) => match ix.algorithms.get(&algo) {
            Some((owner, app)) => (ALGORITHM, true, *owner, *app),
            None => (ALGORITHM, false, NO_HOME, None),
        },
    };
    let role = if home == NO_HOME {
        0
    } else {
        role_in(ix, me, u, home, now)
    };
    let org_rules = plan.org_kinds & kind != 0;
    let app_rules = plan.app_kinds & kind != 0;
    let fired = u32::from(!exists)
        | u32::from(u.cluster_admin() & plan.cluster_admin) << 1
        | u32::from(plan.sudo) << 2
        | u32::from(plan.authenticated & kind != 0) << 3
        | u32::from((plan.own_account & kind != 0) & (home == me)) << 4
        | u32::from(org_rules & (role >= plan.org_need)) << 5
        | u32::from(app_rules & (home == me)) << 6
        | u32::from(app_rules & (APP_ROLE_OF_ORG_ROLE[usize::from(role)] >= plan.app_need)) << 7;
    // Team grants and super powers are consulted (out of line) only when no
    // earlier rule decided and they could apply. Every other decision is
    // computed below without a branch on the data: whether a rule fired is
    // close to a coin toss, and a mispredicted branch there discarded the
    // loads already under way for the next decision.
    let team_grant_may = app_rules & (role != 0) & u.has_seats() & team_app.is_some();
    let super_may = u.cluster_admin() & plan.elevated;
    if (fired == 0) & (team_grant_may | super_may) {
        return beyond_entries(
            ix,
            me,
            u,
            plan.app_need,
            home,
            team_app,
            team_grant_may,
            super_may,
            now,
        );
    }
    let i = (fired | 1 << DEFAULT_DENY).trailing_zeros() as usize;
    Decision {
        allow: ALLOWS[i] | ((i == SUDO) & u.sudo_user()),
        rule: DECIDED_BY[i],
    }
}

/// The rules after the entries, when no earlier one decided: team grants,
/// then super powers, else the default deny.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn beyond_entries(
    ix: &Index,
    me: AccountId,
    u: &UserEntry,
    app_need: u8,
    home: AccountId,
    team_app: Option<AppId>,
    team_grant_may: bool,
    super_may: bool,
    now: Millis,
) -> Decision {
    // Team grants: for a member of the owning org in some team, on an app
    // some team holds.
    if let (true, Some(app)) = (team_grant_may, team_app) {
        let grants = ix.apps.get(&app).map_or(&[][..], |a| ix.app_grants(a));
        if !grants.is_empty() {
            let seats = ix.team_seats(u);
            let best = grants
                .iter()
                .filter(|g| g.org == home && g.until > now && seats.hold(g.team, now))
                .map(|g| g.role as u8)
                .max()
                .unwrap_or(0);
            if best >= app_need {
                return Decision {
                    allow: true,
                    rule: Rule::TeamAppGrant,
                };
            }
        }
    }
    if super_may && ix.super_until(me) > now {
        return Decision {
            allow: true,
            rule: Rule::SuperPowers,
        };
    }
    Decision {
        allow: false,
        rule: Rule::DefaultDeny,
    }
}
