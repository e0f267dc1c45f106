//! casbin: RBAC with domains (domain = the resource's home account).
//!
//! Request `(sub, dom, obj, kind, act)`: the user, the home account the request
//! path names (the app's owner, the team's org, the org, the namespace), the
//! resource, its kind and the action. Policy lines `p = sub, kind, act, arg` grant
//! actions to org roles (one line per role that meets the threshold, since the
//! org-role → app-role mapping is not monotone: team_contributor outranks viewer
//! but gives no app role), to cluster admins, to the account itself ("self":
//! namespace owner, app owner) and to team grants.
//!
//! Groupings (casbin-rs keeps every `g*` in one role manager; 2-field ones in its
//! default domain, 3-field ones per domain, so names are prefixed to stay apart):
//! - `g, a<user>, role:<r>, a<org>` per membership, and `g, role:<r>, member, a<org>`.
//! - `g, a<user>, team:<t>, a<org>` per seat; `g, team:<t>, app:<id>/<r>, a<org>`
//!   per grant for every app role `r` up to the granted one (so a grant in another
//!   org's domain can never count).
//! - `g2, a<user>, active`, `g2, a<user>, cluster_admin`.
//! - `g2, <obj>, a<home>`: the resource lives in that account (orgs only when
//!   active). This is also the existence check: a forged domain gives nothing.
//!
//! The matcher checks kind and action first so that most policy lines are
//! rejected before any role lookup.

use super::Contender;
use crate::generate::{Directory, Question};
use algohub_core::policy::Resource;
use algohub_core::roles::{AppRole, OrgRole};
use casbin::{CoreApi, DefaultModel, Enforcer, MgmtApi, NullAdapter};

pub const MODEL: &str = r#"
[request_definition]
r = sub, dom, obj, kind, act

[policy_definition]
p = sub, kind, act, arg

[role_definition]
g = _, _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.kind == p.kind && r.act == p.act && g2(r.sub, "active") && (r.kind == "acct" || g2(r.obj, r.dom)) && ((p.arg == "role" && g(r.sub, p.sub, r.dom)) || (p.sub == "self" && r.sub == r.dom) || (p.sub == "cluster_admin" && g2(r.sub, "cluster_admin")) || (p.sub == "team_grant" && g(r.sub, "member", r.dom) && g(r.sub, r.obj + "/" + p.arg, r.dom)))
"#;

const ORG_ACTIONS: [(&str, &str, OrgRole); 6] = [
    ("org", "org.members.read", OrgRole::Viewer),
    ("org", "org.read_private", OrgRole::Viewer),
    ("org", "org.members.manage", OrgRole::Admin),
    ("org", "org.teams.manage", OrgRole::Admin),
    ("team", "org.teams.read", OrgRole::Viewer),
    ("team", "org.teams.manage", OrgRole::Admin),
];

const APP_ACTIONS: [(&str, AppRole); 5] = [
    ("app.read", AppRole::Read),
    ("app.contribute", AppRole::Contributor),
    ("app.write", AppRole::Write),
    ("app.delete", AppRole::Admin),
    ("app.manage", AppRole::Admin),
];

fn app_role_of(r: OrgRole) -> Option<AppRole> {
    match r {
        OrgRole::Admin => Some(AppRole::Admin),
        OrgRole::Contributor => Some(AppRole::Write),
        OrgRole::Viewer => Some(AppRole::Read),
        OrgRole::TeamContributor => None,
    }
}

fn line(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|x| x.to_string()).collect()
}

/// The policy lines (`p`).
fn policy_lines() -> Vec<Vec<String>> {
    let mut p = Vec::new();
    // Org roles, one line per role that meets the threshold.
    for (kind, act, need) in ORG_ACTIONS {
        for r in OrgRole::ALL.into_iter().filter(|r| *r >= need) {
            p.push(line(&[&format!("role:{}", r.as_str()), kind, act, "role"]));
        }
    }
    for r in [OrgRole::Contributor, OrgRole::Admin] {
        p.push(line(&[
            &format!("role:{}", r.as_str()),
            "acct",
            "app.create",
            "role",
        ]));
    }
    for (act, need) in APP_ACTIONS {
        for r in OrgRole::ALL
            .into_iter()
            .filter(|r| app_role_of(*r).is_some_and(|a| a >= need))
        {
            p.push(line(&[&format!("role:{}", r.as_str()), "app", act, "role"]));
        }
    }
    // The account itself: its namespace and the apps it owns.
    p.push(line(&["self", "acct", "app.create", "-"]));
    for (act, _) in APP_ACTIONS {
        p.push(line(&["self", "app", act, "-"]));
    }
    // Team grants: the app role needed, as the grant node suffix.
    for (act, need) in APP_ACTIONS {
        p.push(line(&["team_grant", "app", act, need.as_str()]));
    }
    // Cluster admins: every non-app action but reading the private side of
    // orgs (that needs super powers).
    for (kind, act, _) in ORG_ACTIONS {
        if !matches!(act, "org.read_private" | "org.teams.read") {
            p.push(line(&["cluster_admin", kind, act, "-"]));
        }
    }
    p
}

fn a(id: i64) -> String {
    format!("a{id}")
}

pub struct Casbin {
    enforcer: Enforcer,
}

impl Casbin {
    pub fn build(d: &Directory) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("tokio: {e}"));
        rt.block_on(Self::build_async(d))
    }

    async fn build_async(d: &Directory) -> Self {
        let s = &d.snapshot;
        let model = DefaultModel::from_str(MODEL)
            .await
            .unwrap_or_else(|e| panic!("casbin model: {e}"));
        let mut e = Enforcer::new(model, NullAdapter)
            .await
            .unwrap_or_else(|e| panic!("casbin enforcer: {e}"));
        e.enable_auto_save(false);
        e.enable_auto_build_role_links(false);

        let mut g: Vec<Vec<String>> =
            Vec::with_capacity(s.memberships.len() + s.team_members.len() + s.team_apps.len() * 3);
        for m in &s.memberships {
            g.push(vec![
                a(m.user_id),
                format!("role:{}", m.role.as_str()),
                a(m.org_id),
            ]);
        }
        for &(org, _) in &s.orgs {
            for r in OrgRole::ALL {
                g.push(vec![
                    format!("role:{}", r.as_str()),
                    "member".into(),
                    a(org),
                ]);
            }
        }
        for t in &s.team_members {
            g.push(vec![
                a(t.user_id),
                format!("team:{}", t.team_id),
                a(d.team_org[t.team_id as usize - 1]),
            ]);
        }
        for grant in &s.team_apps {
            let org = a(d.team_org[grant.team_id as usize - 1]);
            for r in AppRole::ALL.into_iter().filter(|r| *r <= grant.role) {
                g.push(vec![
                    format!("team:{}", grant.team_id),
                    format!("app:{}/{}", grant.app_id, r.as_str()),
                    org.clone(),
                ]);
            }
        }
        let mut g2: Vec<Vec<String>> =
            Vec::with_capacity(s.users.len() + s.apps.len() + s.teams.len() + s.orgs.len());
        for u in &s.users {
            if u.active {
                g2.push(vec![a(u.id), "active".into()]);
            }
            if u.cluster_admin {
                g2.push(vec![a(u.id), "cluster_admin".into()]);
            }
        }
        for &(org, active) in &s.orgs {
            if active {
                g2.push(vec![format!("org:{org}"), a(org)]);
            }
        }
        for &(team, org) in &s.teams {
            g2.push(vec![format!("team:{team}"), a(org)]);
        }
        for &(app, owner) in &s.apps {
            g2.push(vec![format!("app:{app}"), a(owner)]);
        }
        e.add_named_policies("p", policy_lines())
            .await
            .unwrap_or_else(|e| panic!("casbin p: {e}"));
        e.add_named_grouping_policies("g", g)
            .await
            .unwrap_or_else(|e| panic!("casbin g: {e}"));
        e.add_named_grouping_policies("g2", g2)
            .await
            .unwrap_or_else(|e| panic!("casbin g2: {e}"));
        e.build_role_links()
            .unwrap_or_else(|e| panic!("casbin role links: {e}"));
        Self { enforcer: e }
    }
}

/// `(sub, dom, obj, kind, act)`
pub type CasbinRequest = (String, String, String, &'static str, &'static str);

impl Contender for Casbin {
    type Prepared = CasbinRequest;

    fn prepare(&self, q: &Question) -> CasbinRequest {
        let (kind, obj) = match q.resource {
            Resource::Org(id) => ("org", format!("org:{id}")),
            Resource::Account(id) => ("acct", format!("acct:{id}")),
            Resource::Team(id) => ("team", format!("team:{id}")),
            Resource::App(id) => ("app", format!("app:{id}")),
            // The stream never names other resources; no policy line matches this kind.
            _ => ("other", "other".into()),
        };
        (a(q.user), a(q.home), obj, kind, q.action.as_str())
    }

    #[inline]
    fn decide(&mut self, (sub, dom, obj, kind, act): &CasbinRequest) -> bool {
        match self
            .enforcer
            .enforce((sub.as_str(), dom.as_str(), obj.as_str(), *kind, *act))
        {
            Ok(allow) => allow,
            Err(e) => panic!("casbin enforce failed: {e}"),
        }
    }
}
