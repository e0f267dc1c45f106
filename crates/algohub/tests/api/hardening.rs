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

/// A cluster admin could mint a full, never-expiring key for anyone, with no
/// reason, no notice and no per-request audit. Now such a key needs a
/// reason, expires (a day by default, at most `max_minted_key_hours`), its
/// owner (an org's admins for an org key) is told, and it acts as an
/// impersonation by the admin: every request on record, the same limits,
/// and it stops when its creator is no longer a cluster admin.
pub(crate) async fn keys_an_admin_mints_are_impersonations(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    app.make_user("bob", false).await;
    let admin2 = app.make_user("admin2", true).await;
    app.make_org("acme", &alice).await;
    let now = algohub_core::model::now_millis();
    let day = 24 * 3600 * 1000;

    // No reason: refused, whichever route.
    for path in [
        "/v1/admin/users/bob/keys",
        "/v1/users/bob/keys",
        "/v1/organizations/acme/keys",
    ] {
        let (s, v) = app.post(path, &app.root, json!({"key_label": "k"})).await;
        assert_eq!(s, 400, "{path}: {v}");
        assert_eq!(error_reason(&v), "invalid_input", "{path}: {v}");
    }
    // Longer than max_minted_key_hours (168): refused.
    let too_late = algohub_core::model::format_millis(now + 8 * day);
    let (s, v) = app
        .post(
            "/v1/admin/users/bob/keys",
            &app.root,
            json!({"reason": "debugging", "expires_at": too_late}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("168 hours"),
        "{v}"
    );

    // A cluster admin's own keys, and the keys of an org they administer,
    // are ordinary keys; another cluster admin's are refused (impersonating
    // admins is off).
    let (s, own) = app.post("/v1/users/root/keys", &app.root, json!({})).await;
    assert_eq!(s, 200, "{own}");
    assert!(
        own["minted_reason"].is_null() && own["expires_at"].is_null(),
        "{own}"
    );
    app.make_org("rootorg", &app.root).await;
    let (s, own) = app
        .post(
            "/v1/organizations/rootorg/keys",
            &app.root,
            json!({"key_label": "ops", "permissions": {}}),
        )
        .await;
    assert_eq!(s, 200, "{own}");
    assert!(own["minted_reason"].is_null(), "{own}");
    let (s, v) = app
        .post(
            "/v1/admin/users/admin2/keys",
            &app.root,
            json!({"reason": "look around"}),
        )
        .await;
    assert_eq!(
        (s, error_reason(&v).as_str()),
        (403, "impersonation_refused"),
        "{v}"
    );

    // With a reason: a day's key, the reason on it, bob told.
    let (s, k) = app
        .post(
            "/v1/admin/users/bob/keys",
            &admin2,
            json!({"reason": "ticket 9: reproduce bob's failing call"}),
        )
        .await;
    assert_eq!(s, 200, "{k}");
    let minted = k["api_key"].as_str().unwrap().to_string();
    let expires = chrono::DateTime::parse_from_rfc3339(k["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    assert!(
        (now + day - 60_000..now + day + 60_000).contains(&expires),
        "{k}"
    );
    let bobs_view = app.get("/v1/users/bob/notifications", &minted).await;
    assert_eq!(bobs_view.0, 200, "{}", bobs_view.1);
    let text = bobs_view.1[0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        text.contains("admin2") && text.contains("ticket 9"),
        "{}",
        bobs_view.1
    );

    // Its requests are on record as admin2 acting as bob, and it is held to
    // the impersonation limits (no new keys, no profile changes).
    let (s, v) = app.get("/v1/users/bob", &minted).await;
    assert_eq!(s, 200, "{v}");
    // The notifications read above and this read: two records.
    let records = audit_records(&app, "impersonation.request", 2).await;
    let seen = records
        .iter()
        .find(|r| r["detail"]["path"] == "/v1/users/bob" && r["detail"]["key"].is_number())
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(seen["actor"], "admin2", "{seen}");
    let (s, v) = app.post("/v1/users/bob/keys", &minted, json!({})).await;
    assert_eq!((s, error_reason(&v)), (403, "forbidden".to_string()), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("impersonation"),
        "{v}"
    );

    // An org key minted by a cluster admin: the org's admins are told.
    let (s, ok) = app
        .post(
            "/v1/organizations/acme/keys",
            &app.root,
            json!({"key_label": "ops", "permissions": {"allow_algo": true}, "reason": "incident 3"}),
        )
        .await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["minted_reason"], "incident 3");
    let (_, notes) = app.get("/v1/users/alice/notifications", &alice).await;
    let text = notes[0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("acme") && text.contains("incident 3"),
        "{notes}"
    );
    // alice's own org key needs no reason and is hers, not an impersonation.
    let (s, own) = app
        .post(
            "/v1/organizations/acme/keys",
            &alice,
            json!({"key_label": "mine", "permissions": {}}),
        )
        .await;
    assert_eq!(s, 200, "{own}");
    assert!(
        own["minted_reason"].is_null() && own["expires_at"].is_null(),
        "{own}"
    );

    // Once admin2 is no longer a cluster admin, the key it minted stops.
    let (s, v) = app
        .call(
            Method::DELETE,
            "/v1/admin/users/admin2/admin",
            Some(&app.root),
            None,
        )
        .await;
    assert!(s == 200 || s == 204, "{s} {v}");
    let (s, v) = app.get("/v1/users/bob", &minted).await;
    assert_eq!(s, 401, "{v}");
    app.stop().await;
}

/// Writes `len` bytes to `/v1/data/.my/coll/{name}` with `key`.
async fn put_bytes(app: &TestApp, key: &str, name: &str, len: usize) -> (u16, Value) {
    let (s, _, b) = app
        .send_raw(
            Method::PUT,
            &format!("/v1/data/.my/coll/{name}"),
            key,
            None,
            vec![b'x'; len],
        )
        .await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// There was no storage quota: one account could fill the node's disk. Now
/// an account's files may take at most its quota (the cluster's
/// `data_quota_mib`, or a cluster admin's per-account override), parallel
/// writes included, and a write past it is a 413 with `limit_kind: "storage"`.
pub(crate) async fn data_files_keep_to_the_storage_quota(db: Db) {
    let app = TestApp::with(&db, |c| c.data_quota_mib = 1).await;
    let alice = app.make_user("alice", false).await;
    let (s, v) = app
        .post("/v1/data/.my", &alice, json!({"name": "coll"}))
        .await;
    assert_eq!(s, 200, "{v}");
    let kib = 1024;
    assert_eq!(put_bytes(&app, &alice, "a", 600 * kib).await.0, 200);
    let (s, v) = put_bytes(&app, &alice, "b", 500 * kib).await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(error_reason(&v), "quota_exceeded", "{v}");
    assert_eq!(v["error"]["limit_kind"], "storage", "{v}");
    assert_eq!(v["error"]["scope"], "account:alice", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("quota of 1.0 MiB"), "{message}");
    // Replacing a file counts only what it adds; deleting gives room back.
    assert_eq!(put_bytes(&app, &alice, "a", 900 * kib).await.0, 200);
    assert_eq!(put_bytes(&app, &alice, "b", 200 * kib).await.0, 413);
    let (s, _) = app.delete("/v1/data/.my/coll/a", &alice).await;
    assert_eq!(s, 200);
    assert_eq!(put_bytes(&app, &alice, "b", 200 * kib).await.0, 200);

    // Twenty parallel writes of 100 KiB into the 824 KiB left: at most 8 fit.
    let write = |i| {
        app.client
            .put(format!("{}/v1/data/.my/coll/p{i}", app.base))
            .header("Authorization", &alice)
            .body(vec![b'y'; 100 * 1024])
    };
    let ok = crate::support::count_at_once(20, write, 200, 413).await;
    assert!((1..=8).contains(&ok), "{ok} parallel writes stored");

    // A cluster admin raises alice's quota (recorded with old and new), and
    // it is hers alone; a plain user may not.
    let path = "/v1/admin/accounts/alice/storage-quota";
    let (s, v) = app
        .put(path, &alice, json!({"storage_quota_mib": 100}))
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = app
        .put(path, &app.root, json!({"storage_quota_mib": -1}))
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = app
        .put(path, &app.root, json!({"storage_quota_mib": 3}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["storage_quota_mib"], &v["is_default"]),
        (&json!(3), &json!(false)),
        "{v}"
    );
    let used = v["used_bytes"].as_u64().unwrap();
    assert_eq!(used, (200 + ok as u64 * 100) * 1024, "{v}");
    assert_eq!(put_bytes(&app, &alice, "big", 1500 * kib).await.0, 200);
    let records = audit_records(&app, "account.storage_quota_set", 1).await;
    assert_eq!(
        (&records[0]["detail"]["old"], &records[0]["detail"]["new"]),
        (
            &json!({"storage_quota_mib": null}),
            &json!({"storage_quota_mib": 3})
        ),
        "{records:?}"
    );
    let (s, v) = app.get(path, &app.root).await;
    assert_eq!((s, &v["storage_quota_mib"]), (200, &json!(3)), "{v}");
    let (s, v) = app
        .put(path, &app.root, json!({"storage_quota_mib": null}))
        .await;
    assert_eq!((s, &v["is_default"]), (200, &json!(true)), "{v}");
    app.stop().await;
}
