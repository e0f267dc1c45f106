//! API keys: shown once, stored hashed, scopes, expiry, revocation, org and
//! member keys, and explain.

use crate::support::{Db, TestApp, error_reason};
use reqwest::Method;
use serde_json::{Value, json};

pub(crate) async fn user_keys_are_shown_once_and_scoped(db: Db) {
    let app = TestApp::new(&db).await;
    let bob = app.make_user("bob", false).await;
    let (s, k) = app
        .post(
            "/v1/users/bob/keys",
            &bob,
            json!({"key_label": "ci", "key_type": "ManagementKey"}),
        )
        .await;
    assert_eq!(s, 200, "{k}");
    let secret = k["api_key"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 28);
    assert!(secret.starts_with("sim"));
    for f in [
        "username",
        "key_label",
        "created_at",
        "api_key_mask",
        "api_key",
        "key_type",
    ] {
        assert!(!k[f].is_null(), "{f} present");
    }
    // Listing never shows the secret.
    let (_, list) = app.get("/v1/users/bob/keys", &bob).await;
    let text = list.to_string();
    assert!(!text.contains(&secret));
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|x| x["key_label"] == "ci")
    );
    // The store holds only a digest.
    let stored = app
        .hub()
        .store
        .get_key_by_uuid(k["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_ne!(stored.digest, secret);
    assert_eq!(stored.digest.len(), 64);
    // The new key works; a calls-only key cannot manage.
    let (s, _) = app.get("/v1/users/bob", &secret).await;
    assert_eq!(s, 200);
    let (_, calls) = app.post("/v1/users/bob/keys", &bob, json!({"key_label": "calls", "key_type": "AlgorithmKey", "permissions": {"allow_algo": true, "allow_data": false, "allow_data_write": false, "allow_web_algo": false, "algo_acl": ["*"]}})).await;
    assert_eq!(calls["permissions"]["allow_algo"], true);
    assert_eq!(calls["permissions"]["allow_algo_management"], false);
    let (s, b) = app
        .get("/v1/users/bob", calls["api_key"].as_str().unwrap())
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (403, "key_scope"));
    // A key cannot be made with more scopes than the key that makes it.
    let (s, b) = app
        .post(
            "/v1/users/bob/keys",
            calls["api_key"].as_str().unwrap(),
            json!({}),
        )
        .await;
    assert_eq!(s, 403, "{b}");
    // Expiry: in the past refused; revocation takes effect at once.
    let (s, _) = app
        .post(
            "/v1/users/bob/keys",
            &bob,
            json!({"expires_at": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .post("/v1/users/bob/keys", &bob, json!({"scopes": ["teleport"]}))
        .await;
    assert_eq!(s, 400);
    let (s, r) = app
        .delete(&format!("/v1/keys/{}", k["id"].as_str().unwrap()), &bob)
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, b) = app.get("/v1/users/bob", &secret).await;
    assert_eq!((s, error_reason(&b).as_str()), (401, "invalid_key"));
    // Others cannot see or revoke bob's keys.
    let eve = app.make_user("eve", false).await;
    let (s, _) = app.get("/v1/users/bob/keys", &eve).await;
    assert_eq!(s, 403);
    let (s, _) = app
        .delete(&format!("/v1/keys/{}", calls["id"].as_str().unwrap()), &eve)
        .await;
    assert_eq!(s, 404);
    app.stop().await;
}

pub(crate) async fn key_last_use_is_recorded(db: Db) {
    let app = TestApp::new(&db).await;
    let bob = app.make_user("bob", false).await;
    let (_, _) = app.get("/v1/users/bob", &bob).await;
    app.hub().keys.flush_key_uses().await.unwrap();
    let keys = app
        .hub()
        .keys
        .list_user_keys(
            &algohub_core::RequestCtx::cli(algohub_core::policy::Principal::user(
                app.hub().store.get_user_by_name("bob").await.unwrap().id,
            )),
            "bob",
        )
        .await
        .unwrap();
    assert!(keys[0].last_used_at.is_some());
    app.stop().await;
}

pub(crate) async fn org_keys_and_member_keys(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    app.make_org("acme", &alice).await;
    app.make_org("globex", &bob).await;
    app.add_member("acme", "bob", "contributor").await;

    let (s, ok) = app.post("/v1/organizations/acme/keys", &alice, json!({"key_label": "shared", "permissions": {"allow_algo": true, "allow_data": true, "allow_data_write": false, "allow_web_algo": false, "allow_algo_management": true, "algo_acl": ["*"]}})).await;
    assert_eq!(s, 200, "{ok}");
    assert_eq!(ok["owner_name"], "acme");
    let (s, _) = app
        .post(
            "/v1/organizations/acme/keys",
            &bob,
            json!({"key_label": "x", "permissions": {}}),
        )
        .await;
    assert_eq!(s, 403);
    // The org key acts as the org with a contributor's rights: it reads members
    // and creates apps, but cannot manage members.
    let org_key = ok["api_key"].as_str().unwrap();
    let (s, _) = app.get("/v1/organizations/acme/members", org_key).await;
    assert_eq!(s, 200);
    let (s, _) = app
        .call(
            Method::PUT,
            "/v1/organizations/acme/members/root",
            Some(org_key),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .post("/v1/apps/acme", org_key, json!({"name": "shared-app"}))
        .await;
    assert_eq!(s, 201);

    // Member key: acts as bob, only inside acme.
    let (s, mk) = app
        .call(
            Method::POST,
            "/v1/organizations/acme/members/bob/keys",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 200, "{mk}");
    let member_key = mk["api_key"].as_str().unwrap().to_string();
    let (s, _) = app.get("/v1/organizations/acme/members", &member_key).await;
    assert_eq!(s, 200);
    let (s, b) = app
        .get("/v1/organizations/globex/members", &member_key)
        .await;
    assert_eq!(
        (
            s,
            b["error"]["message"]
                .as_str()
                .unwrap()
                .contains("key.org_limit")
        ),
        (403, true)
    );
    let (_, keys) = app.get("/v1/organizations/acme/keys", &alice).await;
    assert_eq!(keys.as_array().unwrap().len(), 2);
    // Removing bob from acme revokes his member key.
    let (s, _) = app
        .delete("/v1/organizations/acme/members/bob", &alice)
        .await;
    assert_eq!(s, 204);
    let (s, b) = app.get("/v1/apps/acme", &member_key).await;
    assert_eq!((s, error_reason(&b).as_str()), (401, "invalid_key"));
    // A member key for a non-member is refused.
    let (s, _) = app
        .call(
            Method::POST,
            "/v1/organizations/acme/members/bob/keys",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 400);
    app.stop().await;
}

pub(crate) async fn explain_and_who_can(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let dave = app.make_user("dave", false).await;
    let erin = app.make_user("erin", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "dave", "viewer").await;
    let (s, _) = app
        .post("/v1/apps/acme", &alice, json!({"name": "vision"}))
        .await;
    assert_eq!(s, 201);

    let (s, x) = app
        .get(
            "/v1/authz/explain?principal=dave&action=app.write&resource=app:acme/vision",
            &dave,
        )
        .await;
    assert_eq!(s, 200, "{x}");
    assert_eq!(x["allow"], false);
    assert_eq!(x["decided_by"], "default.deny");
    let chain: Vec<&str> = x["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rule"].as_str().unwrap())
        .collect();
    assert!(chain.contains(&"app.org_role"), "{chain:?}");
    let (_, x) = app
        .get(
            "/v1/authz/explain?principal=dave&action=app.read&resource=app:acme/vision",
            &alice,
        )
        .await;
    assert_eq!(
        (x["allow"].as_bool(), x["decided_by"].as_str()),
        (Some(true), Some("app.org_role"))
    );
    // erin may not ask about dave: on an app she cannot see, the answer does not
    // even reveal that it exists; on the (public) org profile it is a refusal.
    let (s, _) = app
        .get(
            "/v1/authz/explain?principal=dave&action=app.read&resource=app:acme/vision",
            &erin,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .get(
            "/v1/authz/explain?principal=dave&action=app.read&resource=app:acme/nosuch",
            &erin,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app
        .get(
            "/v1/authz/explain?principal=dave&action=org.update&resource=org:acme",
            &erin,
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .get(
            "/v1/authz/explain?principal=dave&action=fly&resource=app:acme/vision",
            &alice,
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .get(
            "/v1/authz/explain?principal=dave&action=app.read&resource=planet:mars",
            &alice,
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .get("/v1/authz/explain?action=app.read&resource=cluster", &alice)
        .await;
    assert_eq!(s, 400);

    let (s, who) = app
        .get(
            "/v1/authz/who?action=app.read&resource=app:acme/vision",
            &alice,
        )
        .await;
    assert_eq!(s, 200);
    let names: Vec<&str> = who["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alice", "dave"]);
    let r = app
        .client
        .get(format!(
            "{}/v1/authz/who?action=org.members.manage&resource=org:acme&format=csv",
            app.base
        ))
        .header("Authorization", &alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    assert_eq!(csv.lines().next(), Some("username,action,resource,rule"));
    assert!(csv.contains("alice,org.members.manage,org:acme,org.role"));
    assert!(csv.contains("root,org.members.manage,org:acme,cluster.admin"));
    app.stop().await;
}

pub(crate) async fn cluster_admin_issues_keys_for_users(db: Db) {
    let app = TestApp::new(&db).await;
    let bob = app.make_user("bob", false).await;
    // For someone else, a reason is required (body or X-Algohub-Reason).
    let (s, v) = app
        .call(
            Method::POST,
            "/v1/admin/users/bob/keys",
            Some(&app.root),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("reason"),
        "{v}"
    );
    let r = app
        .client
        .post(format!("{}/v1/admin/users/bob/keys", app.base))
        .header("Authorization", &app.root)
        .header("X-Algohub-Reason", "ticket 7: bob lost his key")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let k: Value = r.json().await.unwrap();
    assert_eq!(k["username"], "bob");
    assert_eq!(k["minted_reason"], "ticket 7: bob lost his key");
    assert!(k["expires_at"].is_string(), "{k}");
    let (s, _) = app
        .get("/v1/users/bob", k["api_key"].as_str().unwrap())
        .await;
    assert_eq!(s, 200);
    // Root's own key needs no reason and does not expire.
    let (s, own) = app
        .call(
            Method::POST,
            "/v1/admin/users/root/keys",
            Some(&app.root),
            None,
        )
        .await;
    assert_eq!(s, 200, "{own}");
    assert!(
        own["expires_at"].is_null() && own["minted_reason"].is_null(),
        "{own}"
    );
    let (s, _) = app
        .call(Method::POST, "/v1/admin/users/root/keys", Some(&bob), None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = app
        .call(
            Method::POST,
            "/v1/admin/users/ghost/keys",
            Some(&app.root),
            None,
        )
        .await;
    assert_eq!(s, 404);
    app.stop().await;
}

/// Suspending an org's last active admin suspends the org's own keys (nobody
/// could revoke them): they answer 401 saying why, the cluster admins are
/// told, and the keys work again once a cluster admin names a new admin.
/// Member keys are their users' and follow their users.
pub(crate) async fn org_keys_wait_for_an_active_admin(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "bob", "contributor").await;
    let (s, ok) = app
        .post(
            "/v1/organizations/acme/keys",
            &alice,
            json!({"key_label": "shared", "permissions": {"allow_algo": true, "allow_data": true, "allow_algo_management": true, "algo_acl": ["*"]}}),
        )
        .await;
    assert_eq!(s, 200, "{ok}");
    let org_key = ok["api_key"].as_str().unwrap().to_string();
    let (s, _) = app.get("/v1/organizations/acme/members", &org_key).await;
    assert_eq!(s, 200);

    let (s, v) = app
        .post("/v1/admin/users/alice/suspend", &app.root, json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.get("/v1/organizations/acme/members", &org_key).await;
    assert_eq!(
        (s, error_reason(&v).as_str()),
        (401, "account_suspended"),
        "{v}"
    );
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no active admin"), "{v}");
    let (s, _) = app.get("/v1/organizations/acme/members", &bob).await;
    assert_eq!(s, 200, "bob's own key still works");
    // The cluster admins are told which org and what to do.
    let (_, notes) = app.get("/v1/users/root/notifications", &app.root).await;
    let text = notes[0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("acme") && text.contains("no active admin") && text.contains("alice"),
        "{notes}"
    );

    // A cluster admin names bob admin: the keys work again.
    let (s, v) = app
        .put(
            "/v1/organizations/acme/members/bob/role",
            &app.root,
            json!({"role": "admin"}),
        )
        .await;
    assert!((200..300).contains(&s), "{v}");
    let (s, v) = app.get("/v1/organizations/acme/members", &org_key).await;
    assert_eq!(s, 200, "{v}");
    // Suspending a user who is not the last active admin leaves them working.
    let (s, _) = app
        .post("/v1/admin/users/alice/unsuspend", &app.root, json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .post("/v1/admin/users/bob/suspend", &app.root, json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, v) = app.get("/v1/organizations/acme/members", &org_key).await;
    assert_eq!(s, 200, "alice is active again: {v}");
    app.stop().await;
}
