//! Route × role matrix: every documented route has a row saying which roles may
//! use it, and the test fails if a route has no row (or a row no route).
//!
//! Roles: N anonymous, E outsider (erin), D viewer (dave), T team contributor
//! (carol, seat in team ml which holds acme/vision), B contributor (bob),
//! A org admin (alice), R cluster admin (root). Cluster admins do not see into
//! accounts' algorithms or orgs' teams without super powers (off here; see
//! `elevated.rs`). "Allowed" means the answer is not
//! 401/403/404; "refused" means it is one of those. Nothing may answer 5xx.

use crate::support::TestApp;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

const ROLES: [char; 7] = ['N', 'E', 'D', 'T', 'B', 'A', 'R'];
const AUTHENTICATED: &str = "EDTBAR";

struct Row {
    method: &'static str,
    template: &'static str,
    path: &'static str,
    body: Option<Value>,
    allowed: &'static str,
    mutates: bool,
}

fn row(
    method: &'static str,
    template: &'static str,
    path: &'static str,
    body: Option<Value>,
    allowed: &'static str,
) -> Row {
    Row {
        method,
        template,
        path,
        body,
        allowed,
        mutates: method != "GET",
    }
}

fn rows() -> Vec<Row> {
    let org = json!({"org_name": "neworg", "org_email": "o@neworg.test", "type_id": "basic"});
    vec![
        row("GET", "/healthz", "/healthz", None, "NEDTBAR"),
        row("GET", "/readyz", "/readyz", None, "NEDTBAR"),
        row("GET", "/metrics", "/metrics", None, "NEDTBAR"),
        row("GET", "/openapi.json", "/openapi.json", None, "NEDTBAR"),
        row(
            "POST",
            "/v1/users",
            "/v1/users",
            Some(json!({"username": "newbie", "email": "newbie@example.com"})),
            "R",
        ),
        row("GET", "/v1/users", "/v1/users", None, "R"),
        row("GET", "/v1/users/{username}", "/v1/users/dave", None, "DR"),
        row(
            "PUT",
            "/v1/users/{username}",
            "/v1/users/dave",
            Some(json!({"username": "dave", "email": "dave@example.com", "fullname": "D"})),
            "DR",
        ),
        row(
            "DELETE",
            "/v1/users/{username}",
            "/v1/users/erin",
            None,
            "R",
        ),
        row(
            "GET",
            "/v1/organization/types",
            "/v1/organization/types",
            None,
            AUTHENTICATED,
        ),
        row(
            "POST",
            "/v1/organization/types",
            "/v1/organization/types",
            Some(json!({"name": "edu"})),
            "R",
        ),
        row(
            "DELETE",
            "/v1/organization/types/{name}",
            "/v1/organization/types/spare",
            None,
            "R",
        ),
        row(
            "POST",
            "/v1/organizations",
            "/v1/organizations",
            Some(org),
            AUTHENTICATED,
        ),
        row(
            "GET",
            "/v1/organizations",
            "/v1/organizations",
            None,
            AUTHENTICATED,
        ),
        row(
            "GET",
            "/v1/organizations/{org}",
            "/v1/organizations/acme",
            None,
            AUTHENTICATED,
        ),
        row(
            "PUT",
            "/v1/organizations/{org}",
            "/v1/organizations/acme",
            Some(json!({"org_label": "X"})),
            "AR",
        ),
        row(
            "DELETE",
            "/v1/organizations/{org}",
            "/v1/organizations/acme",
            None,
            "AR",
        ),
        row(
            "GET",
            "/v1/organizations/{org}/members",
            "/v1/organizations/acme/members",
            None,
            "DTBAR",
        ),
        row(
            "PUT",
            "/v1/organizations/{org}/members/{username}",
            "/v1/organizations/acme/members/erin",
            None,
            "AR",
        ),
        row(
            "DELETE",
            "/v1/organizations/{org}/members/{username}",
            "/v1/organizations/acme/members/dave",
            None,
            "DAR",
        ),
        row(
            "GET",
            "/v1/users/{username}/keys",
            "/v1/users/dave/keys",
            None,
            "DR",
        ),
        row(
            "POST",
            "/v1/users/{username}/keys",
            "/v1/users/dave/keys",
            Some(json!({"key_label": "k"})),
            "DR",
        ),
        row(
            "POST",
            "/v1/admin/users/{username}/keys",
            "/v1/admin/users/dave/keys",
            None,
            "R",
        ),
        row(
            "GET",
            "/v1/organizations/{org}/keys",
            "/v1/organizations/acme/keys",
            None,
            "AR",
        ),
        row(
            "POST",
            "/v1/organizations/{org}/keys",
            "/v1/organizations/acme/keys",
            Some(json!({"key_label": "k", "permissions": {}})),
            "AR",
        ),
        row(
            "POST",
            "/v1/organizations/{org}/members/{username}/keys",
            "/v1/organizations/acme/members/bob/keys",
            Some(json!({})),
            "AR",
        ),
        row(
            "DELETE",
            "/v1/keys/{key_id}",
            "/v1/keys/{orgkey}",
            None,
            "AR",
        ),
        row(
            "POST",
            "/v1/organizations/{org}/invitations",
            "/v1/organizations/acme/invitations",
            Some(json!({"email": "x@example.com"})),
            "AR",
        ),
        row(
            "GET",
            "/v1/organizations/{org}/invitations",
            "/v1/organizations/acme/invitations",
            None,
            "AR",
        ),
        row(
            "DELETE",
            "/v1/organizations/{org}/invitations/{invitation_id}",
            "/v1/organizations/acme/invitations/{inv}",
            None,
            "AR",
        ),
        row(
            "GET",
            "/v1/invitations",
            "/v1/invitations",
            None,
            AUTHENTICATED,
        ),
        row(
            "POST",
            "/v1/invitations/{invitation_id}/accept",
            "/v1/invitations/{inv}/accept",
            Some(json!({})),
            "E",
        ),
        row(
            "POST",
            "/v1/invitations/{invitation_id}/decline",
            "/v1/invitations/{inv}/decline",
            Some(json!({})),
            "E",
        ),
        row(
            "POST",
            "/v1/invitation-tokens/accept",
            "/v1/invitation-tokens/accept",
            Some(json!({"token": "{token}"})),
            AUTHENTICATED,
        ),
        row(
            "PUT",
            "/v1/organizations/{org}/members/{username}/role",
            "/v1/organizations/acme/members/bob/role",
            Some(json!({"role": "viewer"})),
            "AR",
        ),
        row("GET", "/v1/roles", "/v1/roles", None, AUTHENTICATED),
        row(
            "POST",
            "/v1/organizations/{org}/teams",
            "/v1/organizations/acme/teams",
            Some(json!({"name": "newteam"})),
            "AR",
        ),
        row(
            "GET",
            "/v1/organizations/{org}/teams",
            "/v1/organizations/acme/teams",
            None,
            "DTBA",
        ),
        row(
            "GET",
            "/v1/organizations/{org}/teams/{team}",
            "/v1/organizations/acme/teams/ml",
            None,
            "DTBA",
        ),
        row(
            "DELETE",
            "/v1/organizations/{org}/teams/{team}",
            "/v1/organizations/acme/teams/ml",
            None,
            "AR",
        ),
        row(
            "PUT",
            "/v1/organizations/{org}/teams/{team}/members/{username}",
            "/v1/organizations/acme/teams/ml/members/bob",
            Some(json!({})),
            "AR",
        ),
        row(
            "DELETE",
            "/v1/organizations/{org}/teams/{team}/members/{username}",
            "/v1/organizations/acme/teams/ml/members/carol",
            None,
            "AR",
        ),
        row(
            "PUT",
            "/v1/organizations/{org}/teams/{team}/apps/{app}",
            "/v1/organizations/acme/teams/ml/apps/vision",
            Some(json!({"role": "read"})),
            "AR",
        ),
        row(
            "DELETE",
            "/v1/organizations/{org}/teams/{team}/apps/{app}",
            "/v1/organizations/acme/teams/ml/apps/vision",
            None,
            "AR",
        ),
        row(
            "POST",
            "/v1/apps/{owner}",
            "/v1/apps/acme",
            Some(json!({"name": "fresh"})),
            "BA",
        ),
        row(
            "GET",
            "/v1/apps/{owner}",
            "/v1/apps/acme",
            None,
            AUTHENTICATED,
        ),
        row(
            "GET",
            "/v1/apps/{owner}/{app}",
            "/v1/apps/acme/vision",
            None,
            "DTBA",
        ),
        row(
            "DELETE",
            "/v1/apps/{owner}/{app}",
            "/v1/apps/acme/vision",
            None,
            "A",
        ),
        row(
            "POST",
            "/v1/apps/{owner}/{app}/duplicate",
            "/v1/apps/acme/vision/duplicate",
            Some(json!({"name": "vision-copy"})),
            "BA",
        ),
        row(
            "POST",
            "/v1/apps/{owner}/{app}/transfer",
            "/v1/apps/bob/sketch/transfer",
            Some(json!({"to": "acme", "name": "sketch2"})),
            "B",
        ),
        row(
            "PUT",
            "/v1/apps/{owner}/{app}/pin",
            "/v1/apps/acme/vision/pin",
            None,
            "DTBA",
        ),
        row(
            "DELETE",
            "/v1/apps/{owner}/{app}/pin",
            "/v1/apps/acme/vision/pin",
            None,
            "DTBA",
        ),
        row("GET", "/v1/pins", "/v1/pins", None, AUTHENTICATED),
        row(
            "GET",
            "/v1/authz/explain",
            "/v1/authz/explain?principal=dave&action=app.read&resource=app:acme/vision",
            None,
            "DAR",
        ),
        row(
            "GET",
            "/v1/authz/who",
            "/v1/authz/who?action=app.read&resource=app:acme/vision",
            None,
            "AR",
        ),
        row(
            "POST",
            "/v1/algorithms/{owner}",
            "/v1/algorithms/acme",
            Some(
                json!({"name": "fresh", "details": {"label": "F"}, "settings": {"source_visibility": "open", "license": "mit", "network_access": "isolated", "pipeline_enabled": false}}),
            ),
            "BA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}",
            "/v1/algorithms/{algoid}",
            None,
            "DTBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/{algo}",
            "/v1/algorithms/acme/model",
            None,
            "DTBA",
        ),
        row(
            "PUT",
            "/v1/algorithms/{owner}/{algo}",
            "/v1/algorithms/acme/model",
            Some(json!({"details": {"summary": "s"}})),
            "TBA",
        ),
        row(
            "DELETE",
            "/v1/algorithms/{owner}/{algo}",
            "/v1/algorithms/acme/model",
            None,
            "A",
        ),
        row(
            "POST",
            "/v1/algorithms/{owner}/{algo}/compile",
            "/v1/algorithms/acme/model/compile",
            Some(json!({})),
            "TBA",
        ),
        row(
            "POST",
            "/v1/algorithms/{owner}/{algo}/versions",
            "/v1/algorithms/acme/model/versions",
            Some(json!({"version_info": {"version_type": "minor"}})),
            "TBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/{algo}/versions",
            "/v1/algorithms/acme/model/versions",
            None,
            "DTBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/{algo}/versions/{hash}",
            "/v1/algorithms/acme/model/versions/{hash}",
            None,
            "DTBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/{algo}/builds",
            "/v1/algorithms/acme/model/builds",
            None,
            "DTBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/{algo}/builds/{build_id}",
            "/v1/algorithms/acme/model/builds/{build}",
            None,
            "DTBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/{algo}/builds/{build_id}/logs",
            "/v1/algorithms/acme/model/builds/{build}/logs",
            None,
            "DTBA",
        ),
        row(
            "PUT",
            "/v1/algorithms/{owner}/{algo}/artifact",
            "/v1/algorithms/acme/model/artifact",
            Some(json!({"url": "http://example.com/predict"})),
            "TBA",
        ),
        row(
            "POST",
            "/v1/algorithms/{owner}/{algo}/versions/{version}/approve",
            "/v1/algorithms/acme/model/versions/0.1.0/approve",
            Some(json!({})),
            "A",
        ),
        row(
            "POST",
            "/v1/algorithms/{owner}/{algo}/versions/{version}/reject",
            "/v1/algorithms/acme/model/versions/0.1.0/reject",
            Some(json!({"reason": "no"})),
            "A",
        ),
        row(
            "GET",
            "/v1/organizations/{org}/pending-versions",
            "/v1/organizations/acme/pending-versions",
            None,
            "A",
        ),
        row(
            "GET",
            "/v1/users/{username}/algorithms",
            "/v1/users/bob/algorithms",
            None,
            AUTHENTICATED,
        ),
        row(
            "POST",
            "/v1/algo/{owner}/{algo}",
            "/v1/algo/bob/pub",
            Some(json!("x")),
            AUTHENTICATED,
        ),
        row(
            "POST",
            "/v1/algo/{owner}/{algo}/{version}",
            "/v1/algo/acme/model/0.1.0",
            Some(json!("x")),
            "DTBA",
        ),
        row(
            "PUT",
            "/v1/algorithms/{owner}",
            "/v1/algorithms/{algoid}",
            Some(json!({"details": {"summary": "by id"}})),
            "TBA",
        ),
        row(
            "POST",
            "/v1/algorithms/{owner}/compile",
            "/v1/algorithms/{algoid}/compile",
            Some(json!("{}")),
            "TBA",
        ),
        row(
            "POST",
            "/v1/algorithms/{owner}/versions",
            "/v1/algorithms/{algoid}/versions",
            Some(json!({"version_info": {"version_type": "minor"}})),
            "TBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/versions",
            "/v1/algorithms/{algoid}/versions",
            None,
            "DTBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/builds",
            "/v1/algorithms/{algoid}/builds",
            None,
            "DTBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/builds/{build_id}",
            "/v1/algorithms/{algoid}/builds/{build}",
            None,
            "DTBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/builds/{build_id}/logs",
            "/v1/algorithms/{algoid}/builds/{build}/logs",
            None,
            "DTBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/errors",
            "/v1/algorithms/{algoid}/errors",
            None,
            "TBA",
        ),
        row(
            "GET",
            "/v1/algorithms/{owner}/{algo}/errors",
            "/v1/algorithms/acme/model/errors",
            None,
            "TBA",
        ),
        row(
            "GET",
            "/v1/users/{username}/notifications",
            "/v1/users/dave/notifications",
            None,
            "DR",
        ),
        row(
            "GET",
            "/v1/users/{username}/notifications/unread",
            "/v1/users/dave/notifications/unread",
            None,
            "DR",
        ),
        row(
            "POST",
            "/v1/users/{username}/notifications/read",
            "/v1/users/dave/notifications/read",
            Some(json!({})),
            "DR",
        ),
        row(
            "POST",
            "/v1/users/{username}/notifications/{id}/read",
            "/v1/users/dave/notifications/{davenote}/read",
            Some(json!({})),
            "DR",
        ),
        row(
            "POST",
            "/v1/admin/notifications",
            "/v1/admin/notifications",
            Some(json!({"usernames": "dave", "text": "hello"})),
            "R",
        ),
        row(
            "GET",
            "/v1/admin/audit",
            "/v1/admin/audit?limit=5",
            None,
            "R",
        ),
        row("GET", "/v1/session", "/v1/session", None, AUTHENTICATED),
        // An API key has no session to stop: 400, not a refusal.
        row("DELETE", "/v1/session", "/v1/session", None, AUTHENTICATED),
        row(
            "POST",
            "/v1/admin/users/{username}/impersonate",
            "/v1/admin/users/dave/impersonate",
            Some(json!({"reason": "matrix"})),
            "R",
        ),
        row(
            "GET",
            "/v1/admin/super-powers",
            "/v1/admin/super-powers",
            None,
            "R",
        ),
        row(
            "POST",
            "/v1/admin/super-powers",
            "/v1/admin/super-powers",
            Some(json!({"reason": "matrix"})),
            "R",
        ),
        row(
            "DELETE",
            "/v1/admin/super-powers",
            "/v1/admin/super-powers",
            None,
            "R",
        ),
        row(
            "GET",
            "/v1/admin/audit/verify",
            "/v1/admin/audit/verify",
            None,
            "R",
        ),
        row("GET", "/v1/admin/invites", "/v1/admin/invites", None, "R"),
        row(
            "POST",
            "/v1/admin/invites",
            "/v1/admin/invites",
            Some(json!({"inviteCode": "matrix-code"})),
            "R",
        ),
        row(
            "DELETE",
            "/v1/admin/invites/{invite_code}",
            "/v1/admin/invites/fixture-code",
            None,
            "R",
        ),
        row(
            "DELETE",
            "/v1/admin/users/{username}",
            "/v1/admin/users/erin",
            None,
            "R",
        ),
        row(
            "GET",
            "/v1/admin/users",
            "/v1/admin/users?search=b",
            None,
            "R",
        ),
        row(
            "GET",
            "/v1/admin/users/export",
            "/v1/admin/users/export",
            None,
            "R",
        ),
        row(
            "PUT",
            "/v1/admin/users/{username}/admin",
            "/v1/admin/users/erin/admin",
            Some(json!({})),
            "R",
        ),
        row(
            "DELETE",
            "/v1/admin/users/{username}/admin",
            "/v1/admin/users/erin/admin",
            None,
            "R",
        ),
        row(
            "PUT",
            "/v1/admin/users/{username}/sudo",
            "/v1/admin/users/erin/sudo",
            Some(json!({})),
            "R",
        ),
        row(
            "DELETE",
            "/v1/admin/users/{username}/sudo",
            "/v1/admin/users/erin/sudo",
            None,
            "R",
        ),
        row(
            "POST",
            "/v1/admin/users/{username}/suspend",
            "/v1/admin/users/dave/suspend",
            Some(json!({})),
            "R",
        ),
        row(
            "POST",
            "/v1/admin/users/{username}/unsuspend",
            "/v1/admin/users/dave/unsuspend",
            Some(json!({})),
            "R",
        ),
        row(
            "GET",
            "/v1/admin/accounts/{account}/work-limit",
            "/v1/admin/accounts/bob/work-limit",
            None,
            "R",
        ),
        row(
            "PUT",
            "/v1/admin/accounts/{account}/work-limit",
            "/v1/admin/accounts/bob/work-limit",
            Some(json!({"work_limit": 5})),
            "R",
        ),
        row(
            "GET",
            "/v1/users/{username}/usage",
            "/v1/users/dave/usage?start_date=2026-01-01&end_date=2026-12-31",
            None,
            "DR",
        ),
        row(
            "GET",
            "/v1/organizations/{org_name}/usage",
            "/v1/organizations/acme/usage?start_date=2026-01-01&end_date=2026-12-31&group_by=day",
            None,
            "AR",
        ),
        row(
            "GET",
            "/v1/users/{username}/balance",
            "/v1/users/dave/balance",
            None,
            "DR",
        ),
        row(
            "GET",
            "/v1/organizations/{org_name}/balance",
            "/v1/organizations/acme/balance",
            None,
            "AR",
        ),
        row(
            "GET",
            "/v1/users/{username}/errors",
            "/v1/users/bob/errors",
            None,
            "BR",
        ),
        row(
            "GET",
            "/v1/organizations/{org_name}/errors",
            "/v1/organizations/acme/errors",
            None,
            "AR",
        ),
        row(
            "GET",
            "/v1/admin/usage",
            "/v1/admin/usage?start_date=2026-01-01&end_date=2026-12-31&page_size=10",
            None,
            "R",
        ),
        row(
            "GET",
            "/v1/admin/usage/algorithms",
            "/v1/admin/usage/algorithms?start_date=2026-01-01&end_date=2026-12-31&page_size=10",
            None,
            "R",
        ),
        row(
            "GET",
            "/v1/admin/usage/users",
            "/v1/admin/usage/users?start_date=2026-01-01&end_date=2026-12-31&page_size=10&user=bob",
            None,
            "R",
        ),
        row(
            "GET",
            "/v1/admin/usage/calls/{request_id}",
            "/v1/admin/usage/calls/{rid}",
            None,
            "R",
        ),
        row("GET", "/v1/data", "/v1/data", None, AUTHENTICATED),
        row(
            "GET",
            "/v1/connector/data",
            "/v1/connector/data",
            None,
            AUTHENTICATED,
        ),
        row(
            "GET",
            "/v1/data/{path}",
            "/v1/data/acme/files/f.txt",
            None,
            "DTBA",
        ),
        row(
            "HEAD",
            "/v1/data/{path}",
            "/v1/data/acme/files/f.txt",
            None,
            "DTBA",
        ),
        row(
            "PUT",
            "/v1/data/{path}",
            "/v1/data/acme/files/new.txt",
            Some(json!({"any": "bytes"})),
            "BA",
        ),
        row(
            "POST",
            "/v1/data/{path}",
            "/v1/data/acme/files",
            Some(json!({"name": "sub"})),
            "BA",
        ),
        row(
            "PATCH",
            "/v1/data/{path}",
            "/v1/data/acme/files",
            Some(json!({"acl": {"read": []}})),
            "BA",
        ),
        row(
            "DELETE",
            "/v1/data/{path}",
            "/v1/data/acme/files/f.txt",
            None,
            "BA",
        ),
        row(
            "GET",
            "/v1/connector/data/{path}",
            "/v1/connector/data/acme%2Ffiles%2Ff.txt",
            None,
            "DTBA",
        ),
        row(
            "HEAD",
            "/v1/connector/data/{path}",
            "/v1/connector/data/acme%2Ffiles%2Ff.txt",
            None,
            "DTBA",
        ),
        row(
            "PUT",
            "/v1/connector/data/{path}",
            "/v1/connector/data/acme%2Ffiles%2Fnew.txt",
            Some(json!({"any": "bytes"})),
            "BA",
        ),
        row(
            "POST",
            "/v1/connector/data/{path}",
            "/v1/connector/data/acme%2Ffiles",
            Some(json!({"name": "sub"})),
            "BA",
        ),
        row(
            "PATCH",
            "/v1/connector/data/{path}",
            "/v1/connector/data/acme%2Ffiles",
            Some(json!({"acl": {"read": []}})),
            "BA",
        ),
        row(
            "DELETE",
            "/v1/connector/data/{path}",
            "/v1/connector/data/acme%2Ffiles%2Ff.txt",
            None,
            "BA",
        ),
    ]
}

struct Fixture {
    app: TestApp,
    keys: HashMap<char, String>,
    subs: Vec<(&'static str, String)>,
}

async fn fixture() -> Fixture {
    let app = TestApp::new().await;
    let mut keys = HashMap::new();
    keys.insert('R', app.root.clone());
    for (c, name) in [
        ('E', "erin"),
        ('D', "dave"),
        ('T', "carol"),
        ('B', "bob"),
        ('A', "alice"),
    ] {
        keys.insert(c, app.make_user(name, false).await);
    }
    let alice = keys[&'A'].clone();
    app.make_org("acme", &alice).await;
    app.add_member("acme", "dave", "viewer").await;
    app.add_member("acme", "carol", "team_contributor").await;
    app.add_member("acme", "bob", "contributor").await;
    app.post("/v1/apps/acme", &alice, json!({"name": "vision"}))
        .await;
    app.post("/v1/apps/bob", &keys[&'B'], json!({"name": "sketch"}))
        .await;
    app.post(
        "/v1/organizations/acme/teams",
        &alice,
        json!({"name": "ml"}),
    )
    .await;
    app.put(
        "/v1/organizations/acme/teams/ml/members/carol",
        &alice,
        json!({}),
    )
    .await;
    app.put(
        "/v1/organizations/acme/teams/ml/apps/vision",
        &alice,
        json!({"role": "write"}),
    )
    .await;
    app.post(
        "/v1/organization/types",
        &app.root,
        json!({"name": "spare"}),
    )
    .await;
    let (_, inv) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"username": "erin"}),
        )
        .await;
    let (_, _) = app
        .post(
            "/v1/organizations/acme/invitations",
            &alice,
            json!({"email": "tok@example.com"}),
        )
        .await;
    let token = app
        .hub()
        .store
        .list_outbox(true, 100)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .find(|m| m.kind == "email.invitation_token")
        .unwrap()
        .payload["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, ok) = app
        .post(
            "/v1/organizations/acme/keys",
            &alice,
            json!({"key_label": "shared", "permissions": {}}),
        )
        .await;
    // Algorithms: bob's acme/model in app vision with a pending 0.1.0, and
    // bob's own bob/pub with a public 0.1.0.
    let bob = keys[&'B'].clone();
    let settings = json!({"source_visibility": "open", "license": "mit", "network_access": "isolated", "pipeline_enabled": false});
    let (_, model) = app
        .post("/v1/algorithms/acme", &bob, json!({"name": "model", "app": "vision", "details": {"label": "M"}, "settings": settings}))
        .await;
    app.post(
        "/v1/algorithms/bob",
        &bob,
        json!({"name": "pub", "details": {"label": "P"}, "settings": settings}),
    )
    .await;
    let (_, built) = app
        .post("/v1/algorithms/acme/model/compile", &bob, json!({}))
        .await;
    let publish = json!({"settings": {"algorithm_callability": "public"}, "version_info": {"version_type": "minor"}});
    let (s, v) = app
        .post("/v1/algorithms/acme/model/versions", &bob, publish.clone())
        .await;
    assert_eq!(
        (s, v["version_info"]["status"].as_str()),
        (200, Some("pending")),
        "{v}"
    );
    app.post("/v1/algorithms/bob/pub/compile", &bob, json!({}))
        .await;
    let (s, v) = app
        .post("/v1/algorithms/bob/pub/versions", &bob, publish)
        .await;
    assert_eq!(s, 200, "{v}");
    // A sign-up invite code.
    let (s, v) = app
        .post(
            "/v1/admin/invites",
            &app.root,
            json!({"inviteCode": "fixture-code"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // A notification for dave.
    let root_id = app
        .hub()
        .store
        .get_account_by_name("root")
        .await
        .unwrap()
        .id;
    let sent = app
        .hub()
        .send_notification(
            &algohub_core::policy::Principal::user(root_id),
            "dave",
            "hello",
            None,
        )
        .await
        .unwrap();
    let davenote = sent[0].1.id.to_string();
    // One call, so that a usage record exists.
    let (s, called) = app
        .send_json("/v1/algo/bob/pub", &bob, Some("text/plain"), b"hi".to_vec())
        .await;
    assert_eq!(s, 200, "{called}");
    // Data: acme's private collection `files` with one file.
    let (s, r) = app
        .post(
            "/v1/data/acme",
            &alice,
            json!({"name": "files", "acl": {"read": []}}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, r) = app
        .put("/v1/data/acme/files/f.txt", &alice, json!("x"))
        .await;
    assert_eq!(s, 200, "{r}");
    let subs = vec![
        ("{algoid}", model["id"].as_str().unwrap().to_string()),
        (
            "{hash}",
            built["version_info"]["git_hash"]
                .as_str()
                .unwrap()
                .to_string(),
        ),
        (
            "{build}",
            built["build"]["build_id"].as_str().unwrap().to_string(),
        ),
        ("{inv}", inv["id"].as_str().unwrap().to_string()),
        ("{orgkey}", ok["id"].as_str().unwrap().to_string()),
        ("{token}", token),
        ("{rid}", called["request_id"].as_str().unwrap().to_string()),
        ("{davenote}", davenote),
    ];
    Fixture { app, keys, subs }
}

async fn check(f: &Fixture, r: &Row, role: char) -> Result<(), String> {
    let mut path = r.path.to_string();
    let mut body = r.body.as_ref().map(|b| b.to_string());
    for (k, v) in &f.subs {
        path = path.replace(k, v);
        body = body.map(|b| b.replace(k, v));
    }
    let key = f.keys.get(&role).map(String::as_str);
    let method = Method::from_bytes(r.method.as_bytes()).unwrap();
    let (status, resp) = f
        .app
        .call(
            method,
            &path,
            key,
            body.map(|b| serde_json::from_str(&b).unwrap()),
        )
        .await;
    if status >= 500 {
        return Err(format!("{} {} as {role}: {status} {resp}", r.method, path));
    }
    let allowed = !matches!(status, 401 | 403 | 404);
    let expected = r.allowed.contains(role);
    if allowed != expected {
        return Err(format!(
            "{} {} as {role}: got {status} ({resp}), expected {}",
            r.method,
            path,
            if expected { "allowed" } else { "refused" }
        ));
    }
    if role == 'N' && !expected && status != 401 {
        return Err(format!(
            "{} {} anonymous: expected 401, got {status}",
            r.method, path
        ));
    }
    Ok(())
}

fn collect(res: Result<Result<(), String>, tokio::task::JoinError>, failures: &mut Vec<String>) {
    match res {
        Ok(Err(e)) => failures.push(e),
        Err(e) => failures.push(format!("task panicked: {e}")),
        Ok(Ok(())) => {}
    }
}

#[tokio::test]
async fn every_route_has_a_row_and_the_document_matches() {
    let doc = algohub_http::openapi_document();
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {p}", m.to_uppercase()))
        })
        .collect();
    let tested: BTreeSet<String> = rows()
        .iter()
        .map(|r| format!("{} {}", r.method, r.template))
        .collect();
    let missing: Vec<_> = documented.difference(&tested).collect();
    let extra: Vec<_> = tested.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without a matrix row: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "matrix rows for routes that do not exist: {extra:?}"
    );
    assert_eq!(doc["openapi"], "3.0.3");
}

#[tokio::test]
async fn route_role_matrix() {
    let mut failures = Vec::new();
    // Read-only rows share one fixture; each mutating (row, role) gets its own.
    let shared = fixture().await;
    for r in rows().iter().filter(|r| !r.mutates) {
        for role in ROLES {
            if let Err(e) = check(&shared, r, role).await {
                failures.push(e);
            }
        }
    }
    shared.app.stop().await;
    let mut set = tokio::task::JoinSet::new();
    let mutating: Vec<usize> = rows()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.mutates)
        .map(|(i, _)| i)
        .collect();
    for i in mutating {
        for role in ROLES {
            set.spawn(async move {
                let f = fixture().await;
                let r = &rows()[i];
                let out = check(&f, r, role).await;
                f.app.stop().await;
                out
            });
            while set.len() >= 4 {
                if let Some(res) = set.join_next().await {
                    collect(res, &mut failures);
                }
            }
        }
    }
    while let Some(res) = set.join_next().await {
        collect(res, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} matrix failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
