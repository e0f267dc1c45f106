//! The rules, in the order they are consulted:
//! principal active → impersonation limit → key scope → resource exists →
//! member-key org limit → cluster admin → sudo user → authenticated → account
//! self → org role → app owner → app org role → team app grant → super powers →
//! default deny.

use super::entry::UserEntry;
use super::index::Index;
use super::{Action, Decision, Principal, PrincipalKind, Resource};
use crate::model::{AccountId, Millis};
use crate::roles::{AppRole, OrgRole};
use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    PrincipalActive,
    KeyScope,
    ResourceExists,
    KeyOrgLimit,
    ClusterAdmin,
    SudoUser,
    Authenticated,
    AccountSelf,
    OrgRole,
    AppOwner,
    AppOrgRole,
    TeamAppGrant,
    SuperPowers,
    ImpersonationLimit,
    DefaultDeny,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::PrincipalActive => "principal.active",
            Rule::KeyScope => "key.scope",
            Rule::ResourceExists => "resource.exists",
            Rule::KeyOrgLimit => "key.org_limit",
            Rule::ClusterAdmin => "cluster.admin",
            Rule::SudoUser => "sudo.user",
            Rule::Authenticated => "authenticated",
            Rule::AccountSelf => "account.self",
            Rule::OrgRole => "org.role",
            Rule::AppOwner => "app.owner",
            Rule::AppOrgRole => "app.org_role",
            Rule::TeamAppGrant => "team.app_grant",
            Rule::SuperPowers => "super_powers.read",
            Rule::ImpersonationLimit => "impersonation.limit",
            Rule::DefaultDeny => "default.deny",
        }
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// This rule granted the request.
    Allow,
    /// This rule refused the request.
    Deny,
    /// A precondition that held; evaluation went on.
    Pass,
    /// A grant rule that did not apply; evaluation went on.
    NoMatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceStep {
    pub rule: Rule,
    pub outcome: Outcome,
    pub detail: String,
}

pub(crate) trait Trace {
    fn step(&mut self, rule: Rule, outcome: Outcome, detail: impl FnOnce() -> String);
}

pub(crate) struct NoTrace;
impl Trace for NoTrace {
    #[inline(always)]
    fn step(&mut self, _: Rule, _: Outcome, _: impl FnOnce() -> String) {}
}

#[derive(Default)]
pub(crate) struct VecTrace {
    pub steps: Vec<TraceStep>,
}
impl Trace for VecTrace {
    fn step(&mut self, rule: Rule, outcome: Outcome, detail: impl FnOnce() -> String) {
        self.steps.push(TraceStep {
            rule,
            outcome,
            detail: detail(),
        });
    }
}

#[inline]
fn finish<T: Trace>(
    t: &mut T,
    rule: Rule,
    allow: bool,
    detail: impl FnOnce() -> String,
) -> Decision {
    t.step(
        rule,
        if allow { Outcome::Allow } else { Outcome::Deny },
        detail,
    );
    Decision { allow, rule }
}

/// Actions a cluster admin may take on any account. App contents and the
/// private side of orgs (profile details, teams) are not among them: reading
/// those needs super powers. Member lists stay readable: admins manage them.
pub(super) const fn cluster_admin_may(a: Action) -> bool {
    !matches!(
        a,
        Action::OrgReadPrivate
            | Action::OrgTeamsRead
            | Action::AppRead
            | Action::AppContribute
            | Action::AppWrite
            | Action::AppDelete
            | Action::AppManage
            | Action::AppCreate
            | Action::AlgoCreate
            | Action::AlgoRead
            | Action::AlgoUpdate
            | Action::AlgoDelete
            | Action::AlgoPublish
            | Action::AlgoSourceRead
            | Action::AlgoCall
            | Action::AlgoCallPublic
            | Action::AlgoCallSudo
            | Action::VersionApprove
            | Action::DataRead
            | Action::DataWrite
    )
}

/// What a user may do to their own account.
pub(super) const fn own_account_action(a: Action) -> bool {
    matches!(
        a,
        Action::UserRead
            | Action::UserUpdate
            | Action::UserKeysManage
            | Action::AppCreate
            | Action::AlgoCreate
            | Action::DataRead
            | Action::DataWrite
            | Action::AccountBillingRead
    )
}

/// The org role an org-scoped action needs, if it is one.
pub(super) const fn required_org_role(a: Action) -> Option<OrgRole> {
    Some(match a {
        Action::OrgReadPrivate | Action::OrgMembersRead | Action::OrgTeamsRead => OrgRole::Viewer,
        // Any member may leave (the lowest role is enough).
        Action::OrgLeave => OrgRole::Viewer,
        Action::AppCreate | Action::AlgoCreate | Action::DataWrite => OrgRole::Contributor,
        Action::DataRead => OrgRole::Viewer,
        Action::VersionApprove | Action::AccountBillingRead => OrgRole::Admin,
        Action::OrgUpdate
        | Action::OrgDelete
        | Action::OrgMembersManage
        | Action::OrgKeysManage
        | Action::OrgTeamsManage => OrgRole::Admin,
        _ => return None,
    })
}

pub(super) const fn required_app_role(a: Action) -> Option<AppRole> {
    Some(match a {
        Action::AppRead => AppRole::Read,
        Action::AppContribute => AppRole::Contributor,
        Action::AppWrite => AppRole::Write,
        Action::AppDelete | Action::AppManage => AppRole::Admin,
        Action::AlgoRead | Action::AlgoCall => AppRole::Read,
        // Source: only those with rights on the algorithm (whatever its
        // source_visibility; open source is read with `AlgoRead`).
        Action::AlgoUpdate | Action::AlgoPublish | Action::AlgoSourceRead => AppRole::Write,
        Action::AlgoDelete => AppRole::Admin,
        _ => return None,
    })
}

/// What an org role gives on every app the org owns.
pub(super) const fn app_role_from_org_role(r: OrgRole) -> Option<AppRole> {
    match r {
        OrgRole::Admin => Some(AppRole::Admin),
        OrgRole::Contributor => Some(AppRole::Write),
        OrgRole::Viewer => Some(AppRole::Read),
        OrgRole::TeamContributor => None,
    }
}

/// Reads that super powers open: private algorithms and apps (settings and
/// source, closed source included), and the private side of orgs the admin is
/// not in. Nothing that writes.
pub(super) const fn elevated_read(a: Action) -> bool {
    matches!(
        a,
        Action::AlgoRead
            | Action::AlgoSourceRead
            | Action::AppRead
            | Action::OrgReadPrivate
            | Action::OrgMembersRead
            | Action::OrgTeamsRead
    )
}

/// Super powers: a cluster admin's own credentials (not an impersonation, not
/// a member key), switched on and not yet ended, open elevated reads. Consulted
/// only after every ordinary rule, so a read the admin may do anyway is never
/// counted as elevated.
fn super_powers<T: Trace>(
    ix: &Index,
    user: Option<(AccountId, &UserEntry)>,
    p: &Principal,
    action: Action,
    now: Millis,
    t: &mut T,
) -> Option<Decision> {
    let (id, _) = user.filter(|(_, u)| u.cluster_admin() && elevated_read(action))?;
    if ix.super_until(id) > now
        && p.impersonator.is_none()
        && matches!(p.kind, PrincipalKind::User { .. })
    {
        return Some(finish(t, Rule::SuperPowers, true, || {
            "a cluster admin with super powers on (an elevated read)".into()
        }));
    }
    t.step(Rule::SuperPowers, Outcome::NoMatch, || {
        "super powers are off".into()
    });
    None
}

/// What an impersonation session may not do: anything whose effect would
/// outlive it or reach the admin's own account (keys, the user's profile and
/// email, org memberships, the user's own included), administer the cluster,
/// or make sudo calls.
fn impersonation_forbids(a: Action) -> bool {
    matches!(
        a,
        Action::UserKeysManage
            | Action::UserUpdate
            | Action::OrgMembersManage
            | Action::OrgLeave
            | Action::OrgKeysManage
            // What outlives the session or changes who may do what: the
            // org itself (its profile and governance settings, deleting
            // it), team seats and app grants, app transfers, approvals.
            | Action::OrgUpdate
            | Action::OrgDelete
            | Action::OrgTeamsManage
            | Action::AppManage
            | Action::VersionApprove
            | Action::AdminUsersManage
            | Action::AdminUsersRead
            | Action::AdminOrgTypesManage
            | Action::AlgoCallSudo
    )
}

pub(crate) fn evaluate<T: Trace>(
    ix: &Index,
    p: &Principal,
    action: Action,
    resource: Resource,
    now: Millis,
    t: &mut T,
) -> Decision {
    // 1. The principal must be a live account.
    let (user_id, user): (AccountId, Option<&UserEntry>) = match p.kind {
        PrincipalKind::User { user } | PrincipalKind::MemberKey { user, .. } => {
            match ix.users.get(&user) {
                Some(u) if u.active() => (user, Some(u)),
                _ => {
                    return finish(t, Rule::PrincipalActive, false, || {
                        format!("user {user} is not active")
                    });
                }
            }
        }
        PrincipalKind::OrgKey { org } => {
            if ix.orgs.get(&org) != Some(&true) {
                return finish(t, Rule::PrincipalActive, false, || {
                    format!("org {org} is not active")
                });
            }
            // With no active admin (the last one suspended), nobody could
            // revoke the org's keys: they wait for a cluster admin to name
            // a new admin (or reinstate one).
            if !ix.has_active_admin(org) {
                return finish(t, Rule::PrincipalActive, false, || {
                    format!(
                        "org {org} has no active admin: its keys are suspended until a \
                         cluster admin names a new admin"
                    )
                });
            }
            (org, None)
        }
    };
    t.step(Rule::PrincipalActive, Outcome::Pass, || {
        "principal is active".into()
    });

    // 1b. An impersonation session acts as the user, within limits.
    if let Some(admin) = p.impersonator {
        if impersonation_forbids(action) {
            return finish(t, Rule::ImpersonationLimit, false, || {
                format!("not while impersonating (real actor: {admin})")
            });
        }
        t.step(Rule::ImpersonationLimit, Outcome::Pass, || {
            format!("impersonation by {admin} allows this")
        });
    }

    // 2. A key (or a call token) must carry the scope the action needs.
    if p.key.is_some() || p.call.is_some() {
        let need = action.required_scope();
        if !p.scopes.has(need) {
            return finish(t, Rule::KeyScope, false, || {
                format!(
                    "key scopes {:?} lack {:?}",
                    p.scopes.names(),
                    crate::model::Scopes(need).names()
                )
            });
        }
        t.step(Rule::KeyScope, Outcome::Pass, || {
            format!("key scopes {:?} suffice", p.scopes.names())
        });
    }

    // 3. The resource must exist; find the account it lives in.
    let home: Option<AccountId> = match resource {
        Resource::Cluster => None,
        Resource::User(id) | Resource::Org(id) | Resource::Account(id) => Some(id),
        Resource::App(app) => match ix.apps.get(&app) {
            Some(entry) => Some(entry.owner),
            None => {
                return finish(t, Rule::ResourceExists, false, || {
                    format!("app {app} does not exist")
                });
            }
        },
        Resource::Team(team) => match ix.teams.get(&team) {
            Some(org) => Some(*org),
            None => {
                return finish(t, Rule::ResourceExists, false, || {
                    format!("team {team} does not exist")
                });
            }
        },
        Resource::Algorithm(algo) => match ix.algorithms.get(&algo) {
            Some((owner, _)) => Some(*owner),
            None => {
                return finish(t, Rule::ResourceExists, false, || {
                    format!("algorithm {algo} does not exist")
                });
            }
        },
    };
    if let Resource::Org(org) = resource
        && ix.orgs.get(&org) != Some(&true)
    {
        return finish(t, Rule::ResourceExists, false, || {
            format!("org {org} does not exist")
        });
    }

    // 4. A member key works only inside its org.
    if let PrincipalKind::MemberKey { org, .. } = p.kind {
        if home != Some(org) {
            return finish(t, Rule::KeyOrgLimit, false, || {
                format!("member key is limited to org {org}")
            });
        }
        t.step(Rule::KeyOrgLimit, Outcome::Pass, || {
            format!("resource is inside org {org}")
        });
    }

    // 5. Cluster admins administer accounts (not app contents).
    if let Some(u) = user {
        if u.cluster_admin() && cluster_admin_may(action) {
            return finish(t, Rule::ClusterAdmin, true, || {
                "principal is a cluster admin".into()
            });
        }
        t.step(Rule::ClusterAdmin, Outcome::NoMatch, || {
            if u.cluster_admin() {
                "cluster admins need super powers for app contents".into()
            } else {
                "not a cluster admin".into()
            }
        });
    }

    // 5b. Sudo calls: only a sudo user with their own credentials (not a
    // member key), and nothing else grants them.
    if action == Action::AlgoCallSudo {
        let sudo =
            matches!(p.kind, PrincipalKind::User { .. }) && user.is_some_and(|u| u.sudo_user());
        return finish(t, Rule::SudoUser, sudo, || {
            if sudo {
                "principal is a sudo user".into()
            } else {
                "sudo calls need a sudo user's own credentials".into()
            }
        });
    }

    // 6. What any authenticated principal may do.
    match (action, p.kind) {
        (Action::OrgRead, _) => {
            return finish(t, Rule::Authenticated, true, || {
                "org profiles are visible to every user".into()
            });
        }
        (Action::AlgoCallPublic, _) if matches!(resource, Resource::Algorithm(_)) => {
            return finish(t, Rule::Authenticated, true, || {
                "published public versions may be called by every user".into()
            });
        }
        (Action::DataReadPublic, _) if matches!(resource, Resource::Account(_)) => {
            return finish(t, Rule::Authenticated, true, || {
                "public collections may be read by every user".into()
            });
        }
        (Action::OrgCreate, PrincipalKind::User { .. }) => {
            return finish(t, Rule::Authenticated, true, || {
                "every user may create an organization".into()
            });
        }
        _ => {}
    }

    // 7. A user manages their own account.
    if let PrincipalKind::User { user: me } = p.kind
        && home == Some(me)
        && matches!(resource, Resource::User(_) | Resource::Account(_))
        && own_account_action(action)
    {
        return finish(t, Rule::AccountSelf, true, || {
            "the account is the principal's own".into()
        });
    }

    // 8. Org role, for org-scoped actions on the org, a team, or the org namespace.
    let home_role: Option<OrgRole> = match (p.kind, home) {
        (PrincipalKind::OrgKey { org }, Some(h)) if h == org => Some(OrgRole::Contributor),
        (_, Some(h)) => match user {
            Some(u) => ix.org_role(user_id, u, h, now),
            None => None,
        },
        _ => None,
    };
    if let Some(need) = required_org_role(action)
        && (matches!(
            resource,
            Resource::Org(_) | Resource::Team(_) | Resource::Account(_)
        ) || action == Action::VersionApprove)
    {
        match home_role {
            Some(have) if have >= need => {
                return finish(t, Rule::OrgRole, true, || {
                    format!("org role {} ≥ {}", have.as_str(), need.as_str())
                });
            }
            Some(have) => t.step(Rule::OrgRole, Outcome::NoMatch, || {
                format!("org role {} < {}", have.as_str(), need.as_str())
            }),
            None => t.step(Rule::OrgRole, Outcome::NoMatch, || {
                "not a member of the org".into()
            }),
        }
        if let Some(d) = super_powers(ix, user.map(|u| (user_id, u)), p, action, now, t) {
            return d;
        }
        return finish(t, Rule::DefaultDeny, false, || "no rule grants this".into());
    }

    // 9-11. App roles, for apps and for algorithms (whose team grants come
    // through the app they belong to).
    let team_app = match resource {
        Resource::App(app) => Some(app),
        Resource::Algorithm(algo) => ix.algorithms.get(&algo).and_then(|(_, app)| *app),
        _ => None,
    };
    if let (Some(need), true, Some(owner)) = (
        required_app_role(action),
        matches!(resource, Resource::App(_) | Resource::Algorithm(_)),
        home,
    ) {
        if let PrincipalKind::User { user: me } = p.kind
            && me == owner
        {
            return finish(t, Rule::AppOwner, true, || "the principal owns it".into());
        }
        t.step(Rule::AppOwner, Outcome::NoMatch, || {
            "the principal does not own it".into()
        });

        match home_role.and_then(app_role_from_org_role) {
            Some(have) if have >= need => {
                return finish(t, Rule::AppOrgRole, true, || {
                    format!(
                        "org role {} gives app role {} ≥ {}",
                        home_role.map_or("", |r| r.as_str()),
                        have.as_str(),
                        need.as_str()
                    )
                });
            }
            other => t.step(Rule::AppOrgRole, Outcome::NoMatch, || match other {
                Some(have) => format!(
                    "org role gives app role {} < {}",
                    have.as_str(),
                    need.as_str()
                ),
                None => "org role gives no app role".into(),
            }),
        }

        if let (Some(u), Some(_), Some(app)) = (user, home_role, team_app) {
            let grants = match ix.apps.get(&app) {
                Some(a) => ix.app_grants(a),
                None => &[],
            };
            // The user's seats only if some team holds the app.
            let mut best = None;
            if !grants.is_empty() {
                let seats = ix.team_seats(u);
                for g in grants {
                    if g.org == owner && g.until > now && seats.hold(g.team, now) {
                        best = best.max(Some(g.role));
                    }
                }
            }
            match best {
                Some(have) if have >= need => {
                    return finish(t, Rule::TeamAppGrant, true, || {
                        format!("team grant {} ≥ {}", have.as_str(), need.as_str())
                    });
                }
                Some(have) => t.step(Rule::TeamAppGrant, Outcome::NoMatch, || {
                    format!("team grant {} < {}", have.as_str(), need.as_str())
                }),
                None => t.step(Rule::TeamAppGrant, Outcome::NoMatch, || {
                    "no team grants this app".into()
                }),
            }
        }
    }

    if let Some(d) = super_powers(ix, user.map(|u| (user_id, u)), p, action, now, t) {
        return d;
    }
    finish(t, Rule::DefaultDeny, false, || "no rule grants this".into())
}
