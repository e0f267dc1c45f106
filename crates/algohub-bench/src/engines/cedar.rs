//! cedar-policy: the same model as entities and a policy set.
//!
//! Entities (built once per scale; cedar computes the transitive closure of the
//! `in` hierarchy when the `Entities` store is made):
//! - `Account::"<id>"` for users and orgs (they share one id space, as in algohub).
//!   A user has `active` and `cluster_admin`, and as parents its org role groups
//!   and its teams. An org has `active` and four group attributes.
//! - `Role::"<org>/<role>"`: six groups per org, nested so `in` answers the role
//!   thresholds: admin ∈ contributor ∈ {member, reader}; team_contributor ∈ member;
//!   viewer ∈ {member, reader}. `member` is "any role", `reader` is "an org role
//!   that gives app read" (every role but team_contributor).
//! - `Team::"<id>"` with its `org`.
//! - `App::"<id>"` with its `owner` and, when teams hold it, the sets of teams
//!   whose grant reaches each app role (`read_teams` ⊇ `contribute_teams` ⊇
//!   `write_teams` ⊇ `admin_teams`).
//!
//! Org questions (`Resource::Org`) and namespace questions (`Resource::Account`)
//! both use `Account` resources; they differ by action (org.* vs app.create),
//! which is how the question stream uses them.

use super::Contender;
use crate::generate::{Directory, Question};
use algohub_core::policy::Resource;
use algohub_core::roles::{AppRole, OrgRole};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    PolicySet, Request, RestrictedExpression,
};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

pub const POLICIES: &str = r#"
// Cluster admins: every non-app action on an existing (active) org, or a
// team, except reading an org's private side (that needs super powers).
permit (
  principal is Account,
  action in [Action::"org.members.read", Action::"org.members.manage", Action::"org.teams.manage"],
  resource is Account
) when { principal.active && principal.cluster_admin && resource has members && resource.active };
permit (
  principal is Account,
  action in [Action::"org.teams.manage"],
  resource is Team
) when { principal.active && principal.cluster_admin };

// A user creates apps in their own namespace.
permit (principal is Account, action == Action::"app.create", resource is Account)
when { principal.active && principal == resource };

// Org roles on the org (which must be active), its teams and its namespace.
permit (principal is Account, action in [Action::"org.members.read", Action::"org.read_private"], resource is Account)
when { principal.active && resource has members && resource.active && principal in resource.members };
permit (principal is Account, action in [Action::"org.members.manage", Action::"org.teams.manage"], resource is Account)
when { principal.active && resource has admins && resource.active && principal in resource.admins };
permit (principal is Account, action == Action::"org.teams.read", resource is Team)
when { principal.active && principal in resource.org.members };
permit (principal is Account, action == Action::"org.teams.manage", resource is Team)
when { principal.active && principal in resource.org.admins };
permit (principal is Account, action == Action::"app.create", resource is Account)
when { principal.active && resource has contributors && principal in resource.contributors };

// Apps: the owner may do everything.
permit (
  principal is Account,
  action in [Action::"app.read", Action::"app.contribute", Action::"app.write", Action::"app.delete", Action::"app.manage"],
  resource is App
) when { principal.active && resource.owner == principal };

// Apps: the owning org's roles (admin → admin, contributor → write, viewer → read).
permit (principal is Account, action == Action::"app.read", resource is App)
when { principal.active && resource.owner has readers && principal in resource.owner.readers };
permit (principal is Account, action in [Action::"app.contribute", Action::"app.write"], resource is App)
when { principal.active && resource.owner has contributors && principal in resource.owner.contributors };
permit (principal is Account, action in [Action::"app.delete", Action::"app.manage"], resource is App)
when { principal.active && resource.owner has admins && principal in resource.owner.admins };

// Apps: team grants, for members of the owning org.
permit (principal is Account, action == Action::"app.read", resource is App)
when { principal.active && resource has read_teams && principal in resource.read_teams && principal in resource.owner.members };
permit (principal is Account, action == Action::"app.contribute", resource is App)
when { principal.active && resource has contribute_teams && principal in resource.contribute_teams && principal in resource.owner.members };
permit (principal is Account, action == Action::"app.write", resource is App)
when { principal.active && resource has write_teams && principal in resource.write_teams && principal in resource.owner.members };
permit (principal is Account, action in [Action::"app.delete", Action::"app.manage"], resource is App)
when { principal.active && resource has admin_teams && principal in resource.admin_teams && principal in resource.owner.members };
"#;

struct Types {
    account: EntityTypeName,
    role: EntityTypeName,
    team: EntityTypeName,
    app: EntityTypeName,
    action: EntityTypeName,
}

impl Types {
    fn new() -> Self {
        let t =
            |s: &str| EntityTypeName::from_str(s).unwrap_or_else(|e| panic!("type name {s}: {e}"));
        Self {
            account: t("Account"),
            role: t("Role"),
            team: t("Team"),
            app: t("App"),
            action: t("Action"),
        }
    }
    fn uid(&self, ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
    fn account(&self, id: i64) -> EntityUid {
        self.uid(&self.account, &id.to_string())
    }
    fn role(&self, org: i64, role: &str) -> EntityUid {
        self.uid(&self.role, &format!("{org}/{role}"))
    }
    fn team(&self, id: i64) -> EntityUid {
        self.uid(&self.team, &id.to_string())
    }
    fn app(&self, id: i64) -> EntityUid {
        self.uid(&self.app, &id.to_string())
    }
}

fn org_role_group(r: OrgRole) -> &'static str {
    match r {
        OrgRole::Admin => "admin",
        OrgRole::Contributor => "contributor",
        OrgRole::TeamContributor => "team_contributor",
        OrgRole::Viewer => "viewer",
    }
}

fn entity(
    uid: EntityUid,
    attrs: Vec<(&str, RestrictedExpression)>,
    parents: HashSet<EntityUid>,
) -> Entity {
    let attrs: HashMap<String, RestrictedExpression> =
        attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Entity::new(uid, attrs, parents).unwrap_or_else(|e| panic!("cedar entity: {e}"))
}

pub struct Cedar {
    types: Types,
    entities: Entities,
    policies: PolicySet,
    authorizer: Authorizer,
}

impl Cedar {
    pub fn build(d: &Directory) -> Self {
        let ty = Types::new();
        let s = &d.snapshot;
        let mut parents: Vec<HashSet<EntityUid>> = vec![HashSet::new(); d.n_users + 1];
        for m in &s.memberships {
            parents[m.user_id as usize].insert(ty.role(m.org_id, org_role_group(m.role)));
        }
        for t in &s.team_members {
            parents[t.user_id as usize].insert(ty.team(t.team_id));
        }
        let mut out: Vec<Entity> =
            Vec::with_capacity(d.n_users + d.n_orgs * 7 + s.teams.len() + s.apps.len());
        for (u, p) in s.users.iter().zip(parents.into_iter().skip(1)) {
            out.push(entity(
                ty.account(u.id),
                vec![
                    ("active", RestrictedExpression::new_bool(u.active)),
                    (
                        "cluster_admin",
                        RestrictedExpression::new_bool(u.cluster_admin),
                    ),
                ],
                p,
            ));
        }
        for &(org, active) in &s.orgs {
            let g = |r: &str| RestrictedExpression::new_entity_uid(ty.role(org, r));
            out.push(entity(
                ty.account(org),
                vec![
                    ("active", RestrictedExpression::new_bool(active)),
                    ("members", g("member")),
                    ("readers", g("reader")),
                    ("contributors", g("contributor")),
                    ("admins", g("admin")),
                ],
                HashSet::new(),
            ));
            let group = |r: &str, ps: &[&str]| {
                Entity::new_no_attrs(
                    ty.role(org, r),
                    ps.iter().map(|p| ty.role(org, p)).collect(),
                )
            };
            out.push(group("admin", &["contributor"]));
            out.push(group("contributor", &["member", "reader"]));
            out.push(group("team_contributor", &["member"]));
            out.push(group("viewer", &["member", "reader"]));
            out.push(group("member", &[]));
            out.push(group("reader", &[]));
        }
        for &(team, org) in &s.teams {
            out.push(entity(
                ty.team(team),
                vec![("org", RestrictedExpression::new_entity_uid(ty.account(org)))],
                HashSet::new(),
            ));
        }
        for (i, &(app, owner)) in s.apps.iter().enumerate() {
            let grants = &d.app_grants[i];
            let mut attrs = vec![(
                "owner",
                RestrictedExpression::new_entity_uid(ty.account(owner)),
            )];
            if !grants.is_empty() {
                let teams_at_least = |need: AppRole| {
                    RestrictedExpression::new_set(
                        grants
                            .iter()
                            .filter(|(_, r)| *r >= need)
                            .map(|(t, _)| RestrictedExpression::new_entity_uid(ty.team(*t))),
                    )
                };
                attrs.push(("read_teams", teams_at_least(AppRole::Read)));
                attrs.push(("contribute_teams", teams_at_least(AppRole::Contributor)));
                attrs.push(("write_teams", teams_at_least(AppRole::Write)));
                attrs.push(("admin_teams", teams_at_least(AppRole::Admin)));
            }
            out.push(entity(ty.app(app), attrs, HashSet::new()));
        }
        let entities =
            Entities::from_entities(out, None).unwrap_or_else(|e| panic!("cedar entities: {e}"));
        let policies =
            PolicySet::from_str(POLICIES).unwrap_or_else(|e| panic!("cedar policies: {e}"));
        Self {
            types: ty,
            entities,
            policies,
            authorizer: Authorizer::new(),
        }
    }
}

impl Contender for Cedar {
    type Prepared = Request;

    fn prepare(&self, q: &Question) -> Request {
        let ty = &self.types;
        let resource = match q.resource {
            Resource::Org(id) | Resource::Account(id) => ty.account(id),
            Resource::App(id) => ty.app(id),
            Resource::Team(id) => ty.team(id),
            // The stream never names other resources; no policy matches this type.
            _ => ty.uid(&ty.role, "other"),
        };
        let action = ty.uid(&ty.action, q.action.as_str());
        Request::new(ty.account(q.user), action, resource, Context::empty(), None)
            .unwrap_or_else(|e| panic!("cedar request: {e}"))
    }

    #[inline]
    fn decide(&mut self, r: &Request) -> bool {
        self.authorizer
            .is_authorized(r, &self.policies, &self.entities)
            .decision()
            == Decision::Allow
    }
}
