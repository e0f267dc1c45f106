//! The matrix's fixture: the accounts, org, team, app, keys, algorithms,
//! builds, invitation and call that the rows' paths name (the `{...}`
//! substitutions), each made through the API as a user would.

use crate::support::{Db, TestApp};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;

pub(super) struct Fixture {
    pub(super) keys: HashMap<char, String>,
    pub(super) subs: Vec<(&'static str, String)>,
}

/// A setup request that must answer `want`; returns the answer's body.
async fn setup(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Value,
    want: u16,
) -> Value {
    let (status, resp) = app.call(method.clone(), path, Some(key), Some(body)).await;
    assert_eq!(
        status, want,
        "matrix fixture: {method} {path} answered {status}, expected {want}: {resp}"
    );
    resp
}

/// A string field of a setup answer.
fn field(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("matrix fixture: no string at {pointer} in {v}"))
        .to_string()
}

pub(super) async fn fixture(db: &Db) -> (TestApp, Fixture) {
    let app = TestApp::new(db).await;
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
    // frank is in no org and invited to none (a member to add).
    app.make_user("frank", false).await;
    let alice = keys[&'A'].clone();
    let bob = keys[&'B'].clone();
    let root = app.root.clone();
    app.make_org("acme", &alice).await;
    app.add_member("acme", "dave", "viewer").await;
    app.add_member("acme", "carol", "team_contributor").await;
    app.add_member("acme", "bob", "contributor").await;
    // Apps vision (acme) and sketch (bob), team ml holding vision with carol
    // in it, and a spare org type.
    for (method, path, key, body, want) in [
        (
            Method::POST,
            "/v1/apps/acme",
            &alice,
            json!({"name": "vision"}),
            201,
        ),
        (
            Method::POST,
            "/v1/apps/bob",
            &bob,
            json!({"name": "sketch"}),
            201,
        ),
        (
            Method::POST,
            "/v1/organizations/acme/teams",
            &alice,
            json!({"name": "ml"}),
            201,
        ),
        (
            Method::PUT,
            "/v1/organizations/acme/teams/ml/members/carol",
            &alice,
            json!({}),
            204,
        ),
        (
            Method::PUT,
            "/v1/organizations/acme/teams/ml/apps/vision",
            &alice,
            json!({"role": "write"}),
            204,
        ),
        (
            Method::POST,
            "/v1/organization/types",
            &root,
            json!({"name": "spare"}),
            200,
        ),
    ] {
        setup(&app, method, path, key, body, want).await;
    }
    let inv = setup(
        &app,
        Method::POST,
        "/v1/organizations/acme/invitations",
        &alice,
        json!({"username": "erin"}),
        201,
    )
    .await;
    setup(
        &app,
        Method::POST,
        "/v1/organizations/acme/invitations",
        &alice,
        json!({"email": "tok@example.com"}),
        201,
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
        .expect("matrix fixture: an invitation email in the outbox")
        .payload["token"]
        .as_str()
        .unwrap()
        .to_string();
    let orgkey = setup(
        &app,
        Method::POST,
        "/v1/organizations/acme/keys",
        &alice,
        json!({"key_label": "shared", "permissions": {}}),
        200,
    )
    .await;
    // Algorithms: bob's acme/model in app vision with a pending 0.1.0 and a
    // newer unpublished build, and bob's own bob/pub with a public 0.1.0.
    let settings = json!({"source_visibility": "open", "license": "mit", "network_access": "isolated", "pipeline_enabled": false});
    let model = setup(
        &app,
        Method::POST,
        "/v1/algorithms/acme",
        &bob,
        json!({"name": "model", "app": "vision", "details": {"label": "M"}, "settings": settings}),
        200,
    )
    .await;
    setup(
        &app,
        Method::POST,
        "/v1/algorithms/bob",
        &bob,
        json!({"name": "pub", "details": {"label": "P"}, "settings": settings}),
        200,
    )
    .await;
    let built = setup(
        &app,
        Method::POST,
        "/v1/algorithms/acme/model/compile",
        &bob,
        json!({}),
        200,
    )
    .await;
    let publish = json!({"settings": {"algorithm_callability": "public"}, "version_info": {"version_type": "minor"}});
    let v = setup(
        &app,
        Method::POST,
        "/v1/algorithms/acme/model/versions",
        &bob,
        publish.clone(),
        200,
    )
    .await;
    assert_eq!(
        v["version_info"]["status"], "pending",
        "matrix fixture: {v}"
    );
    // A newer build of acme/model, so that there is something to publish.
    setup(
        &app,
        Method::POST,
        "/v1/algorithms/acme/model/compile",
        &bob,
        json!({}),
        200,
    )
    .await;
    setup(
        &app,
        Method::POST,
        "/v1/algorithms/bob/pub/compile",
        &bob,
        json!({}),
        200,
    )
    .await;
    setup(
        &app,
        Method::POST,
        "/v1/algorithms/bob/pub/versions",
        &bob,
        publish,
        200,
    )
    .await;
    // A sign-up invite code.
    setup(
        &app,
        Method::POST,
        "/v1/admin/invites",
        &root,
        json!({"inviteCode": "fixture-code"}),
        201,
    )
    .await;
    // A notification for dave (its numeric id is not in the API's answer).
    let root_id = app
        .hub()
        .store
        .get_account_by_name("root")
        .await
        .unwrap()
        .id;
    let sent = app
        .hub()
        .notifications
        .send_notification(
            &algohub_core::RequestCtx::cli(algohub_core::policy::Principal::user(root_id)),
            "dave",
            "hello",
            None,
        )
        .await
        .expect("matrix fixture: notification for dave");
    let davenote = sent[0].1.id.to_string();
    // One call, so that a usage record exists.
    let (s, called) = app
        .send_json("/v1/algo/bob/pub", &bob, Some("text/plain"), b"hi".to_vec())
        .await;
    assert_eq!(
        s, 200,
        "matrix fixture: POST /v1/algo/bob/pub answered {s}: {called}"
    );
    // Data: acme's private collection `files` with one file.
    setup(
        &app,
        Method::POST,
        "/v1/data/acme",
        &alice,
        json!({"name": "files", "acl": {"read": []}}),
        200,
    )
    .await;
    setup(
        &app,
        Method::PUT,
        "/v1/data/acme/files/f.txt",
        &alice,
        json!("x"),
        200,
    )
    .await;
    // acme/sealed in app vision: closed source (its source is for those with
    // rights on it), built once.
    setup(
        &app,
        Method::POST,
        "/v1/algorithms/acme",
        &bob,
        json!({"name": "sealed", "app": "vision", "details": {"label": "S"},
               "settings": {"source_visibility": "closed", "license": "apl", "network_access": "isolated", "pipeline_enabled": false}}),
        200,
    )
    .await;
    let sealed = setup(
        &app,
        Method::POST,
        "/v1/algorithms/acme/sealed/compile",
        &bob,
        json!({}),
        200,
    )
    .await;
    let subs = vec![
        ("{algoid}", field(&model, "/id")),
        ("{hash}", field(&built, "/version_info/git_hash")),
        ("{build}", field(&built, "/build/build_id")),
        ("{sealedbuild}", field(&sealed, "/build/build_id")),
        ("{sealedhash}", field(&sealed, "/version_info/git_hash")),
        ("{inv}", field(&inv, "/id")),
        ("{orgkey}", field(&orgkey, "/id")),
        ("{token}", token),
        ("{rid}", field(&called, "/request_id")),
        ("{davenote}", davenote),
    ];
    (app, Fixture { keys, subs })
}
