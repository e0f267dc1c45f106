//! Route × role matrix: every documented route has a row saying which roles may
//! use it, and the test fails if a route has no row (or a row no route).
//!
//! Roles: N anonymous, E outsider (erin), D viewer (dave), T team contributor
//! (carol, seat in team ml which holds acme/vision), B contributor (bob),
//! A org admin (alice), R cluster admin (root). Cluster admins do not see into
//! accounts' algorithms or orgs' teams without super powers (off here; see
//! `elevated.rs`). "Allowed" means the answer is not
//! 401/403/404; "refused" means it is one of those. Nothing may answer 5xx.

mod accounts;
mod apps;
mod operations;

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
    let mut rows = accounts::rows();
    rows.extend(apps::rows());
    rows.extend(operations::rows());
    rows
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
