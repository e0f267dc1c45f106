//! The Users page API: search, streamed CSV export, roles and suspension.

use crate::support::{Db, TestApp, error_reason};
use serde_json::json;

pub(crate) async fn search_and_page(db: Db) {
    let app = TestApp::new(&db).await;
    let bob = app.make_user("bob", false).await;
    for name in ["alice", "alfred", "albert", "carol"] {
        app.make_user(name, false).await;
    }
    let (s, v) = app.get("/v1/admin/users?search=AL", &app.root).await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["albert", "alfred", "alice"]);
    // By email prefix, and the sudo role shown where it exists.
    let (_, v) = app
        .get("/v1/admin/users?search=carol%40exa", &app.root)
        .await;
    assert_eq!(v["results"][0]["username"], "carol", "{v}");
    assert_eq!(v["results"][0]["sudo_user"], false);
    // Paging: limit 2, then the marker.
    let (_, p1) = app
        .get("/v1/admin/users?search=al&limit=2", &app.root)
        .await;
    assert_eq!(p1["results"].as_array().unwrap().len(), 2);
    let marker = p1["marker"].as_str().unwrap().to_string();
    let (_, p2) = app
        .get(
            &format!("/v1/admin/users?search=al&limit=2&marker={marker}"),
            &app.root,
        )
        .await;
    assert_eq!(p2["results"][0]["username"], "alice", "{p2}");
    assert!(p2.get("marker").is_none(), "{p2}");
    // An underscore is a character, not a wildcard.
    let (_, v) = app.get("/v1/admin/users?search=a_", &app.root).await;
    assert!(v["results"].as_array().unwrap().is_empty(), "{v}");
    for bad in ["limit=0", "limit=x", "limit=5000", "color=red"] {
        let (s, v) = app.get(&format!("/v1/admin/users?{bad}"), &app.root).await;
        assert_eq!(s, 400, "{bad}: {v}");
        error_reason(&v);
    }
    let (s, _) = app.get("/v1/admin/users?search=al", &bob).await;
    assert_eq!(s, 403);
    // Admin routes check the caller before anything else: a malformed
    // request from a non-admin is refused (and recorded), not parsed.
    let (s, v) = app
        .post(
            "/v1/admin/notifications",
            &bob,
            json!(["not", "a", "message"]),
        )
        .await;
    assert_eq!((s, error_reason(&v)), (403, "forbidden".into()), "{v}");
    let (s, _) = app
        .call(
            reqwest::Method::POST,
            "/v1/admin/notifications",
            None,
            Some(json!(1)),
        )
        .await;
    assert_eq!(s, 401);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, v) = app
            .get("/v1/admin/audit?action=authz.denied", &app.root)
            .await;
        let n = v["results"].as_array().map_or(0, Vec::len);
        if n >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refusals recorded: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub(crate) async fn export_streams_every_account_as_csv(db: Db) {
    let app = TestApp::new(&db).await;
    let bob = app.make_user("bob", false).await;
    // Several export chunks (each about 64 KiB, a few hundred rows).
    let rows_per_chunk = algohub_core::store::EXPORT_CHUNK_BYTES / 100;
    let n = 3 * rows_per_chunk + 3;
    let store = &app.hub().store;
    for i in 0..n {
        store
            .create_user(
                &algohub_core::audit::AuditContext::cli(),
                &algohub_core::model::NewUser {
                    username: format!("user{i:05}"),
                    email: format!("user{i:05}@example.com"),
                    full_name: "A, \"quoted\" name".into(),
                    company_name: None,
                    company_role: None,
                    password_hash: None,
                    cluster_admin: false,
                },
            )
            .await
            .map(algohub_core::store::Written::unindexed)
            .unwrap();
    }
    let (s, ct, body) = app
        .send_raw(
            reqwest::Method::GET,
            "/v1/admin/users/export",
            &app.root,
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    let mut r = csv::Reader::from_reader(body.as_slice());
    let headers = r.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [
            "id",
            "username",
            "email",
            "fullname",
            "status",
            "cluster_admin",
            "sudo_user",
            "work_limit",
            "created_at",
            "last_login_at"
        ]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(
        rows.len(),
        n + 2,
        "every account once (root, bob and the rest)"
    );
    let mut names: Vec<&str> = rows.iter().map(|r| &r[1]).collect();
    names.dedup();
    assert_eq!(names.len(), n + 2, "no account twice");
    let u = rows.iter().find(|r| &r[1] == "user00042").unwrap();
    assert_eq!(
        (&u[2], &u[3], &u[4]),
        ("user00042@example.com", "A, \"quoted\" name", "active")
    );
    // The export of every account is on record, naming who took it.
    let (_, v) = app
        .get("/v1/admin/audit?action=users.export", &app.root)
        .await;
    let records = v["results"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{v}");
    assert_eq!(
        (records[0]["actor"].as_str(), records[0]["target"].as_str()),
        (Some("root"), Some("cluster")),
        "{v}"
    );
    let (s, _, _) = app
        .send_raw(
            reqwest::Method::GET,
            "/v1/admin/users/export",
            &bob,
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(s, 403);
}

pub(crate) async fn roles_and_suspension(db: Db) {
    let app = TestApp::new(&db).await;
    let bob = app.make_user("bob", false).await;
    let (s, v) = app
        .put("/v1/admin/users/bob/admin", &app.root, json!({}))
        .await;
    assert_eq!((s, v["cluster_admin"].as_bool()), (200, Some(true)), "{v}");
    let (s, _) = app.get("/v1/admin/users", &bob).await;
    assert_eq!(s, 200, "bob administers now");
    let (s, v) = app.delete("/v1/admin/users/root/admin", &app.root).await;
    assert_eq!(s, 409, "not yourself: {v}");
    let (s, v) = app.delete("/v1/admin/users/bob/admin", &app.root).await;
    assert_eq!((s, v["cluster_admin"].as_bool()), (200, Some(false)), "{v}");
    let (s, _) = app.get("/v1/admin/users", &bob).await;
    assert_eq!(s, 403);
    let (s, v) = app
        .put("/v1/admin/users/nobody/admin", &app.root, json!({}))
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, _) = app.put("/v1/admin/users/root/sudo", &bob, json!({})).await;
    assert_eq!(s, 403);

    let (s, v) = app
        .put("/v1/admin/users/bob/sudo", &app.root, json!({}))
        .await;
    assert_eq!((s, v["sudo_user"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = app.delete("/v1/admin/users/bob/sudo", &app.root).await;
    assert_eq!((s, v["sudo_user"].as_bool()), (200, Some(false)), "{v}");

    // Suspension: the key stops working at once, and comes back.
    let (s, v) = app
        .post("/v1/admin/users/bob/suspend", &app.root, json!({}))
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("suspended")), "{v}");
    let (s, v) = app.get("/v1/users/bob", &bob).await;
    assert_eq!(
        (s, error_reason(&v)),
        (401, "account_suspended".to_string()),
        "{v}"
    );
    let (s, v) = app
        .post("/v1/admin/users/root/suspend", &app.root, json!({}))
        .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = app
        .post("/v1/admin/users/bob/unsuspend", &app.root, json!({}))
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("active")), "{v}");
    let (s, _) = app.get("/v1/users/bob", &bob).await;
    assert_eq!(s, 200);
    // Every change is on record with the admin who made it.
    let events = app.hub().store.list_events(None, 100).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"user.roles_set") && kinds.contains(&"account.status_set"),
        "{kinds:?}"
    );

    // Without the sudo role, it is gone from answers and its routes refuse.
    let off = TestApp::with(&db, |c| c.sudo_users_enabled = false).await;
    off.make_user("bob", false).await;
    let (s, v) = off
        .put("/v1/admin/users/bob/sudo", &off.root, json!({}))
        .await;
    assert_eq!(
        (s, error_reason(&v)),
        (403, "sudo_disabled".to_string()),
        "{v}"
    );
    let (_, v) = off.get("/v1/admin/users?search=bob", &off.root).await;
    assert!(v["results"][0].get("sudo_user").is_none(), "{v}");
    let (_, _, csv) = off
        .send_raw(
            reqwest::Method::GET,
            "/v1/admin/users/export",
            &off.root,
            None,
            Vec::new(),
        )
        .await;
    assert!(
        !String::from_utf8(csv).unwrap().contains("sudo"),
        "no sudo column"
    );
}

pub(crate) async fn deletion_returns_a_receipt_and_revokes_everything(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "bob", "contributor").await;
    let (s, v) = app
        .post(
            "/v1/organizations/acme/teams",
            &alice,
            json!({"name": "ml"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = app
        .put(
            "/v1/organizations/acme/teams/ml/members/bob",
            &alice,
            json!({}),
        )
        .await;
    assert!(s < 300, "{v}");
    let (s, member_key) = app
        .post(
            "/v1/organizations/acme/members/bob/keys",
            &alice,
            json!({"key_label": "mk", "permissions": {}}),
        )
        .await;
    assert!(s < 300, "{member_key}");
    app.make_org("globex", &alice).await;
    let (s, inv) = app
        .post(
            "/v1/organizations/globex/invitations",
            &alice,
            json!({"username": "bob"}),
        )
        .await;
    assert_eq!(s, 201, "{inv}");

    // bob has a private algorithm, and publishes a public one that alice calls.
    crate::algorithms::create(&app, &bob, "bob", "hidden").await;
    // bob publishes a public algorithm that alice calls.
    crate::algorithms::create(&app, &bob, "bob", "echo").await;
    crate::algorithms::compile(&app, &bob, "bob/echo").await;
    let (s, v) = crate::algorithms::publish(&app, &bob, "bob/echo", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app
        .send_json("/v1/algo/bob/echo/0.1.0", &alice, Some("text/plain"), "hi")
        .await;
    assert_eq!(s, 200, "{v}");

    let (s, r) = app.delete("/v1/admin/users/bob", &bob).await;
    assert_eq!(s, 403, "{r}");
    let (s, receipt) = app.delete("/v1/admin/users/bob", &app.root).await;
    assert_eq!(s, 200, "{receipt}");
    assert_eq!(receipt["username"], "bob");
    assert_eq!(receipt["memberships"], json!(["acme"]), "{receipt}");
    assert_eq!(receipt["team_seats"], json!(["acme/ml"]), "{receipt}");
    assert_eq!(receipt["invitations"], json!([inv["id"]]), "{receipt}");
    let keys = receipt["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the user key and the member key: {receipt}");
    // Every revoked credential is refused with 401.
    for key in [bob.as_str(), member_key["api_key"].as_str().unwrap()] {
        let (s, v) = app.get("/v1/users/alice", key).await;
        assert_eq!(s, 401, "{v}");
    }
    let (s, _) = app.delete("/v1/admin/users/bob", &app.root).await;
    assert_eq!(s, 404, "gone");
    // bob's algorithm stays on record but cannot be called.
    let (s, v) = app
        .send_json("/v1/algo/bob/echo/0.1.0", &alice, Some("text/plain"), "hi")
        .await;
    assert_eq!((s, error_reason(&v)), (410, "owner_deleted".into()), "{v}");
    // A private one is not revealed: still no such algorithm.
    let (s, v) = app
        .send_json("/v1/algo/bob/hidden", &alice, Some("text/plain"), "hi")
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, _) = app
        .post(
            "/v1/admin/super-powers",
            &app.root,
            json!({"reason": "history"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, v) = app.get("/v1/algorithms/bob/echo", &app.root).await;
    assert_eq!(
        (s, v["name"].as_str()),
        (200, Some("echo")),
        "resolvable: {v}"
    );
    // The last admin of an org, and the last cluster admin, cannot be deleted.
    let (s, v) = app.delete("/v1/admin/users/alice", &app.root).await;
    assert_eq!(
        (s, error_reason(&v)),
        (409, "last_admin".to_string()),
        "{v}"
    );
    let other = app.make_user("ops", true).await;
    let (s, v) = app.delete("/v1/admin/users/root", &other).await;
    assert_eq!(s, 200, "another admin remains: {v}");
    let (s, v) = app.delete("/v1/admin/users/ops", &other).await;
    assert_eq!(s, 403, "not yourself: {v}");
}

pub(crate) async fn invite_codes(db: Db) {
    let app = TestApp::new(&db).await;
    let bob = app.make_user("bob", false).await;
    let (s, v) = app
        .post("/v1/admin/invites", &app.root, json!({"inviteCode": "spring-2027", "signupCredits": 500, "comments": "launch", "expiresAt": "2099-01-01T00:00:00Z"}))
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = app
        .post(
            "/v1/admin/invites",
            &app.root,
            json!({"inviteCode": "spring-2027"}),
        )
        .await;
    assert_eq!((s, error_reason(&v)), (409, "conflict".to_string()), "{v}");
    for bad in [
        json!({"inviteCode": "x"}),
        json!({"inviteCode": "has space"}),
        json!({"inviteCode": "fine-code", "signupCredits": -1}),
        json!({"inviteCode": "fine-code", "expiresAt": "2000-01-01T00:00:00Z"}),
        json!({"signupCredits": 5}),
    ] {
        let (s, v) = app.post("/v1/admin/invites", &app.root, bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let (s, list) = app.get("/v1/admin/invites", &app.root).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);
    let i = &list[0];
    assert_eq!(
        (
            i["inviteCode"].as_str(),
            i["signupCredits"].as_i64(),
            i["createdBy"].as_str()
        ),
        (Some("spring-2027"), Some(500), Some("root"))
    );
    assert_eq!(i["expiresAt"], "2099-01-01T00:00:00.000Z");
    let (s, _) = app.get("/v1/admin/invites", &bob).await;
    assert_eq!(s, 403);
    let (s, _) = app.delete("/v1/admin/invites/spring-2027", &bob).await;
    assert_eq!(s, 403);
    let (s, _) = app.delete("/v1/admin/invites/spring-2027", &app.root).await;
    assert_eq!(s, 204);
    let (s, v) = app.delete("/v1/admin/invites/spring-2027", &app.root).await;
    assert_eq!(s, 404, "{v}");
}
