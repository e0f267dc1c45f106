//! regorus (Rego): the same model as one Rego module and one data document,
//! loaded once; per question `set_input` and `eval_rule("data.algohub.allow")`.
//!
//! Data: `users[id] = {active, cluster_admin, orgs: {org: role}, teams: [team]}`,
//! `orgs[id] = active`, `teams[id] = {org, apps: {app: rank}}`, `apps[id] = owner`
//! (ids as strings, as JSON would have them). The data `Value` is built directly
//! rather than parsed from JSON text, which only flatters regorus' load time.

use super::Contender;
use crate::generate::{Directory, Question};
use algohub_core::policy::Resource;
use regorus::{Engine, Value};
use std::collections::BTreeMap;

pub const POLICY: &str = r#"
package algohub

import rego.v1

default allow := false

user := data.users[input.user]

app_actions := {"app.create", "app.read", "app.contribute", "app.write", "app.delete", "app.manage"}

# Reads of an org's private side: cluster admins need super powers for them.
super_power_reads := {"org.read_private", "org.teams.read"}

# The resource's home account; undefined when the resource does not exist
# (an org must be active; an account namespace is not checked).
home := input.id if {
	input.kind == "org"
	data.orgs[input.id] == true
}

home := input.id if input.kind == "acct"

home := data.teams[input.id].org if input.kind == "team"

home := data.apps[input.id] if input.kind == "app"

role := user.orgs[home]

org_rank := {"viewer": 1, "team_contributor": 2, "contributor": 3, "admin": 4}

org_need := {
	"org.members.read": 1, "org.read_private": 1, "org.teams.read": 1,
	"app.create": 3,
	"org.members.manage": 4, "org.teams.manage": 4,
}

app_need := {"app.read": 1, "app.contribute": 2, "app.write": 3, "app.delete": 4, "app.manage": 4}

# What an org role gives on the org's apps (team_contributor: nothing).
org_app_rank := {"viewer": 1, "contributor": 3, "admin": 4}

# Cluster admins: every non-app action on an existing resource, but the
# private side of orgs.
allow if {
	user.active
	user.cluster_admin
	not app_actions[input.action]
	not super_power_reads[input.action]
	home
}

# A user creates apps in their own namespace.
allow if {
	user.active
	input.kind == "acct"
	input.action == "app.create"
	input.id == input.user
}

# Org role on the org, its teams and its namespace.
allow if {
	user.active
	input.kind != "app"
	org_rank[role] >= org_need[input.action]
}

# The app's owner.
allow if {
	user.active
	input.kind == "app"
	home == input.user
	app_need[input.action]
}

# The owning org's role, mapped to an app role.
allow if {
	user.active
	input.kind == "app"
	org_app_rank[role] >= app_need[input.action]
}

# Team grants in the owning org, for its members.
allow if {
	user.active
	input.kind == "app"
	role
	some t in user.teams
	data.teams[t].org == home
	data.teams[t].apps[input.id] >= app_need[input.action]
}
"#;

fn s(id: i64) -> Value {
    Value::from(id.to_string())
}

pub struct Rego {
    engine: Engine,
    query: String,
}

impl Rego {
    pub fn build(d: &Directory) -> Self {
        let snap = &d.snapshot;
        let mut orgs_of: Vec<BTreeMap<Value, Value>> = vec![BTreeMap::new(); d.n_users + 1];
        for m in &snap.memberships {
            orgs_of[m.user_id as usize].insert(s(m.org_id), Value::from(m.role.as_str()));
        }
        let mut teams_of: Vec<Vec<Value>> = vec![Vec::new(); d.n_users + 1];
        for t in &snap.team_members {
            teams_of[t.user_id as usize].push(s(t.team_id));
        }
        let mut users = BTreeMap::new();
        for ((u, orgs), teams) in snap
            .users
            .iter()
            .zip(orgs_of.into_iter().skip(1))
            .zip(teams_of.into_iter().skip(1))
        {
            let mut o = BTreeMap::new();
            o.insert(Value::from("active"), Value::from(u.active));
            o.insert(Value::from("cluster_admin"), Value::from(u.cluster_admin));
            o.insert(Value::from("orgs"), Value::from(orgs));
            o.insert(Value::from("teams"), Value::from(teams));
            users.insert(s(u.id), Value::from(o));
        }
        let orgs: BTreeMap<Value, Value> = snap
            .orgs
            .iter()
            .map(|(id, active)| (s(*id), Value::from(*active)))
            .collect();
        let mut team_apps: Vec<BTreeMap<Value, Value>> =
            vec![BTreeMap::new(); snap.teams.len() + 1];
        for g in &snap.team_apps {
            team_apps[g.team_id as usize].insert(s(g.app_id), Value::from(g.role as i64));
        }
        let mut teams = BTreeMap::new();
        for (&(team, org), apps) in snap.teams.iter().zip(team_apps.into_iter().skip(1)) {
            let mut o = BTreeMap::new();
            o.insert(Value::from("org"), s(org));
            o.insert(Value::from("apps"), Value::from(apps));
            teams.insert(s(team), Value::from(o));
        }
        let apps: BTreeMap<Value, Value> = snap
            .apps
            .iter()
            .map(|(id, owner)| (s(*id), s(*owner)))
            .collect();
        let mut data = BTreeMap::new();
        data.insert(Value::from("users"), Value::from(users));
        data.insert(Value::from("orgs"), Value::from(orgs));
        data.insert(Value::from("teams"), Value::from(teams));
        data.insert(Value::from("apps"), Value::from(apps));

        let mut engine = Engine::new();
        engine
            .add_policy("algohub.rego".into(), POLICY.into())
            .unwrap_or_else(|e| panic!("rego policy: {e}"));
        engine
            .add_data(Value::from(data))
            .unwrap_or_else(|e| panic!("rego data: {e}"));
        let mut me = Self {
            engine,
            query: "data.algohub.allow".into(),
        };
        // The first evaluation prepares the engine (analysis, scheduling): part of loading.
        me.engine.set_input(Value::new_object());
        let _ = me.engine.eval_rule(me.query.clone());
        me
    }
}

impl Contender for Rego {
    type Prepared = Value;

    fn prepare(&self, q: &Question) -> Value {
        let (kind, id) = match q.resource {
            Resource::Org(id) => ("org", id),
            Resource::Account(id) => ("acct", id),
            Resource::Team(id) => ("team", id),
            Resource::App(id) => ("app", id),
            // The stream never names other resources; no rule matches this kind.
            _ => ("other", 0),
        };
        let mut o = BTreeMap::new();
        o.insert(Value::from("user"), s(q.user));
        o.insert(Value::from("action"), Value::from(q.action.as_str()));
        o.insert(Value::from("kind"), Value::from(kind));
        o.insert(Value::from("id"), s(id));
        Value::from(o)
    }

    #[inline]
    fn decide(&mut self, input: &Value) -> bool {
        self.engine.set_input(input.clone());
        match self.engine.eval_rule(self.query.clone()) {
            Ok(v) => v == Value::from(true),
            Err(e) => panic!("rego evaluation failed: {e}"),
        }
    }
}
