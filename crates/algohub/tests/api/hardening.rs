//! Defects found by the black-box probe of the security-hardening issue
//! (22), each pinned by a case that failed before its fix.

use crate::algorithms::{call, compile, create, publish};
use crate::support::{Db, TestApp, audit_records, error_reason};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// A JSON result nested too deep for the envelope came back as `"result":
/// null` with success.
pub(crate) async fn deep_json_results_are_algorithm_errors(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    create(&app, &alice, "alice", "echo").await;
    compile(&app, &alice, "alice/echo").await;
    let (s, v) = publish(&app, &alice, "alice/echo", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    // A JSON result nested deeper than a parser of the envelope accepts
    // (serde_json stops at 128 levels, the envelope adds one) is an
    // algorithm error that says why, never a silent `null`; one level less
    // comes back whole.
    let deep = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    let (_, r) = call(
        &app,
        &bob,
        "alice/echo",
        Some("application/json"),
        deep(127).as_bytes(),
    )
    .await;
    assert!(r.get("result").is_none(), "{r}");
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nested 127 levels deep"), "{r}");
    let (_, r) = call(
        &app,
        &bob,
        "alice/echo",
        Some("application/json"),
        deep(126).as_bytes(),
    )
    .await;
    assert!(r.get("error").is_none(), "{r}");
    assert!(r["result"].is_array(), "{r}");
    app.stop().await;
}

/// An impersonation session could delete the org, change its governance
/// settings and hand out team seats and app grants; its refusals were not
/// on record as denials, and its refused requests were recorded as `ok`.
pub(crate) async fn impersonation_keeps_to_its_limits(db: Db) {
    let owned = TestApp::new(&db).await;
    let app = &owned;
    let alice = app.make_user("alice", false).await;
    app.make_user("bob", false).await;
    app.make_org("acme", &alice).await;
    let (s, v) = app
        .post(
            "/v1/admin/users/alice/impersonate",
            &app.root,
            json!({"reason": "ticket 9", "duration_minutes": 5}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let token = format!("Bearer {}", v["token"].as_str().unwrap());
    // What the session may do, it does.
    let (s, v) = app
        .post("/v1/apps/acme", &token, json!({"name": "support"}))
        .await;
    assert_eq!(s, 201, "{v}");
    // Nor what outlives the session or changes who may do what in alice's
    // org: its settings, deleting it, teams, seats and app grants; each
    // refusal says it is the impersonation's limit.
    let (s, v) = app
        .post(
            "/v1/organizations/acme/teams",
            &alice,
            json!({"name": "ml"}),
        )
        .await;
    assert_eq!(s, 201, "alice herself manages teams: {v}");
    let (s, v) = app
        .post("/v1/apps/acme", &alice, json!({"name": "vision"}))
        .await;
    assert_eq!(s, 201, "{v}");
    app.add_member("acme", "bob", "contributor").await;
    let (_, before) = app.get("/v1/organizations/acme", &alice).await;
    for (method, path, body) in [
        (
            Method::PUT,
            "/v1/organizations/acme",
            Some(json!({"require_approval": !before["require_approval"].as_bool().unwrap()})),
        ),
        (
            Method::PUT,
            "/v1/organizations/acme",
            Some(json!({"consolidated_billing": true})),
        ),
        (Method::DELETE, "/v1/organizations/acme", None),
        (
            Method::POST,
            "/v1/organizations/acme/teams",
            Some(json!({"name": "support"})),
        ),
        (
            Method::PUT,
            "/v1/organizations/acme/teams/ml/members/bob",
            Some(json!({})),
        ),
        (
            Method::PUT,
            "/v1/organizations/acme/teams/ml/apps/vision",
            Some(json!({"role": "read"})),
        ),
        (Method::DELETE, "/v1/organizations/acme/teams/ml", None),
    ] {
        let (s, v) = app.call(method.clone(), path, Some(&token), body).await;
        assert_eq!(
            (s, error_reason(&v)),
            (403, "forbidden".into()),
            "{method} {path}: {v}"
        );
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("impersonation.limit"),
            "{method} {path}: {v}"
        );
    }
    let (_, after) = app.get("/v1/organizations/acme", &alice).await;
    assert_eq!(after, before, "nothing changed");
    // Each refusal is on record twice: as a denial naming the rule, and as a
    // request of the session whose outcome says it was denied.
    // These seven (recorded in the background: wait for them).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let limited: Vec<Value> = loop {
        let limited: Vec<Value> = audit_records(app, "authz.denied", 1)
            .await
            .into_iter()
            .filter(|r| r["detail"]["rule"] == "impersonation.limit")
            .collect();
        if limited.len() >= 7 || std::time::Instant::now() > deadline {
            break limited;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(limited.len(), 7, "{limited:?}");
    let actions: Vec<&str> = limited
        .iter()
        .filter_map(|r| r["detail"]["action"].as_str())
        .collect();
    for action in ["org.update", "org.delete", "org.teams.manage"] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
    assert!(
        limited.iter().all(|r| r["actor"] == "root"
            && r["effective_account"] == "alice"
            && r["outcome"] == "denied"),
        "{limited:?}"
    );
    // (Recorded in the background: wait for the last refusal's record.)
    let outcome = async |method: &str, path: &str| -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let requests = audit_records(app, "impersonation.request", 1).await;
            let found: Vec<String> = requests
                .iter()
                .filter(|r| r["detail"]["method"] == method && r["detail"]["path"] == path)
                .map(|r| r["outcome"].as_str().unwrap_or_default().to_string())
                .collect();
            if !found.is_empty() || std::time::Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(
        outcome("DELETE", "/v1/organizations/acme/teams/ml").await,
        ["denied"]
    );
    assert_eq!(
        outcome("DELETE", "/v1/organizations/acme").await,
        ["denied"]
    );
    assert_eq!(outcome("POST", "/v1/apps/acme").await, ["ok"]);
    // The token alone (no scheme) is the same session, recorded alike.
    let bare = token.trim_start_matches("Bearer ");
    let (s, _) = app.get("/v1/organizations/acme/teams/nope", bare).await;
    assert_eq!(s, 404);
    assert_eq!(
        outcome("GET", "/v1/organizations/acme/teams/nope").await,
        ["refused"]
    );
    let (s, team) = app.get("/v1/organizations/acme/teams/ml", &alice).await;
    assert_eq!(
        (s, &team["members"], &team["apps"]),
        (200, &json!([]), &json!([])),
        "{team}"
    );
    // Explained inside the session, the session's user is explained with
    // the session's limits; alice's own key is not limited.
    let explain = "/v1/authz/explain?principal=alice&action=org.delete&resource=org:acme";
    let (s, x) = app.get(explain, &token).await;
    assert_eq!(s, 200, "{x}");
    assert_eq!(
        (x["allow"].as_bool(), x["decided_by"].as_str()),
        (Some(false), Some("impersonation.limit")),
        "{x}"
    );
    let (_, x) = app.get(explain, &alice).await;
    assert_eq!(x["allow"], true, "{x}");

    owned.stop().await;
}
