//! Elevated access over the real server: super powers open private reads
//! (and nothing else) for a while, each read audited; impersonation sessions
//! act as the user, name the real admin in the audit trail, notify the user,
//! stop, expire, and end when an impersonation is tried from inside one.

use crate::algorithms::{build_upstream, create, publish};
use crate::governance::{account_id, gauged_upstream};
use crate::support::{Db, TestApp, audit_records, error_reason};
use algohub_core::model::{Millis, NewSession, SuperPowers, now_millis};
use serde_json::{Value, json};
use std::time::Duration;

/// Checks that something elevated ends by itself: `begin(until)` turns it on
/// until `until` (written to the store, as the API would), `on()` asks the
/// server whether it is on. It must be on while `until` is ahead, then go off
/// with nothing written in between, not before `until`; maintenance then
/// records that it expired.
///
/// Nothing here depends on how fast the machine is: the "on" answer counts
/// only if it came back before `until` (a later one proves nothing, so the
/// check starts over with twice the time), and the end is waited for by
/// polling, with a generous deadline. Returns how many times it was turned on:
/// each expired once.
async fn ends_by_itself<B, O>(
    app: &TestApp,
    begin: impl Fn(Millis) -> B,
    on: impl Fn() -> O,
) -> usize
where
    B: std::future::Future<Output = ()>,
    O: std::future::Future<Output = bool>,
{
    let mut span: Millis = 1_000;
    let mut begun = 0;
    loop {
        let until = now_millis() + span;
        begin(until).await;
        begun += 1;
        let on_now = on().await;
        let told_in_time = now_millis() < until;
        if told_in_time {
            assert!(on_now, "on while its end is {span} ms ahead");
        }
        while on().await {
            assert!(now_millis() < until + 30_000, "still on 30 s after its end");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(now_millis() >= until, "over before its end");
        app.hub().run_maintenance().await.unwrap();
        if told_in_time {
            return begun;
        }
        span *= 2;
        assert!(span <= 64_000, "the server never answered within {span} ms");
    }
}

async fn super_powers_open_reads_only(app: &TestApp) {
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    create(app, &alice, "alice", "secret").await;
    app.make_org("acme", &alice).await;
    let (s, v) = app
        .post(
            "/v1/organizations/acme/teams",
            &alice,
            json!({"name": "ml"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let algo = "/v1/algorithms/alice/secret";
    let teams = "/v1/organizations/acme/teams";

    // Off: private algorithms and orgs the admin is not in stay closed.
    let (s, _) = app.get(algo, &app.root).await;
    assert_eq!(s, 404);
    let (s, _) = app.get(teams, &app.root).await;
    assert_eq!(s, 403);
    // An org's contact details too (README: members see them, cluster
    // admins with super powers).
    let (s, v) = app.get("/v1/organizations/acme", &app.root).await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("org_email").is_none(), "{v}");
    let (s, v) = app.get("/v1/admin/super-powers", &app.root).await;
    assert_eq!((s, &v["super_powers"]), (200, &Value::Null), "{v}");

    // Bad requests, and non-admins, are refused with clear errors.
    let path = "/v1/admin/super-powers";
    for (body, status, reason) in [
        (json!({}), 400, "missing_field"),
        (json!({"reason": "  "}), 400, "missing_field"),
        (
            json!({"reason": "x", "duration_minutes": 0}),
            400,
            "invalid_input",
        ),
        (
            json!({"reason": "x", "duration_minutes": 61}),
            400,
            "invalid_input",
        ),
        (json!({"reason": "x", "color": 1}), 400, "invalid_input"),
    ] {
        let (s, v) = app.post(path, &app.root, body.clone()).await;
        assert_eq!(
            (s, error_reason(&v)),
            (status, reason.into()),
            "{body}: {v}"
        );
    }
    let (s, _) = app.post(path, &bob, json!({"reason": "curious"})).await;
    assert_eq!(s, 403);

    let (s, v) = app
        .post(
            path,
            &app.root,
            json!({"reason": "ticket 42", "duration_minutes": 10}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["super_powers"]["reason"], "ticket 42");
    let (_, me) = app.get("/v1/session", &app.root).await;
    assert_eq!(me["super_powers"]["reason"], "ticket 42", "{me}");
    assert_eq!(
        (me["account"].as_str(), me["credential"].as_str()),
        (Some("root"), Some("api_key"))
    );

    // On: the reads open...
    let (s, v) = app.get(algo, &app.root).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app.get(teams, &app.root).await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = app.get("/v1/organizations/acme", &app.root).await;
    assert!(v["org_email"].is_string(), "{v}");
    // ...and nothing else: writes still need ordinary rights (a cluster
    // admin's ordinary rights do not reach algorithms).
    let (s, v) = app
        .post(&format!("{algo}/compile"), &app.root, json!({}))
        .await;
    assert_eq!(s, 403, "{v}");
    // Every elevated read is audited, naming what was read.
    let algo_id = app
        .hub()
        .store
        .get_algorithm(account_id(app, "alice").await, "secret")
        .await
        .unwrap()
        .id;
    let reads = audit_records(app, "super_powers.read", 2).await;
    let targets: Vec<&str> = reads
        .iter()
        .map(|r| r["target"].as_str().unwrap())
        .collect();
    assert!(
        targets.contains(&format!("algorithm:{algo_id}").as_str()),
        "{reads:?}"
    );
    assert!(reads.iter().all(|r| r["actor"] == "root"), "{reads:?}");
    // Ordinary reads are not counted as elevated.
    let (s, _) = app.get(algo, &alice).await;
    assert_eq!(s, 200);
    let started = audit_records(app, "super_powers.started", 1).await;
    assert_eq!(started[0]["detail"]["reason"], "ticket 42", "{started:?}");

    // Stop: closed again; stopping twice changes nothing.
    let (s, v) = app.delete(path, &app.root).await;
    assert_eq!((s, &v["super_powers"]), (200, &Value::Null), "{v}");
    let (s, _) = app.get(algo, &app.root).await;
    assert_eq!(s, 404);
    let (s, v) = app.delete(path, &app.root).await;
    assert_eq!((s, &v["super_powers"]), (200, &Value::Null), "{v}");

    // They end by themselves, and maintenance records that they did.
    let root_id = account_id(app, "root").await;
    let begin = |until: Millis| async move {
        let on = SuperPowers {
            reason: "brief".into(),
            started_at: now_millis(),
            until,
        };
        let store = &app.hub().store;
        store
            .set_super_powers(
                &algohub_core::audit::AuditContext::cli(),
                root_id,
                Some(&on),
            )
            .await
            .map(algohub_core::store::Written::unindexed)
            .unwrap();
        app.hub().index.sync().await.unwrap();
    };
    let on = || async move {
        match app.get(algo, &app.root).await {
            (200, _) => true,
            (404, _) => false,
            (s, v) => panic!("{s}: {v}"),
        }
    };
    let expired = ends_by_itself(app, begin, on).await;
    let ended = audit_records(app, "super_powers.ended", 1 + expired).await;
    let reasons: Vec<&str> = ended
        .iter()
        .map(|r| r["detail"]["reason"].as_str().unwrap())
        .collect();
    let mut want = vec!["stopped"];
    want.extend(std::iter::repeat_n("expired", expired));
    assert_eq!(reasons, want, "{ended:?}");
}

async fn impersonation_acts_as_the_user_and_names_the_admin(app: &TestApp) {
    let (base, _) = gauged_upstream().await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let ops = app.make_user("ops", true).await;
    create(app, &alice, "alice", "secret").await;
    let def = json!({"runtime": "http", "url": format!("{base}/hold?ms=1"), "timeout": 60});
    build_upstream(app, &alice, "alice/secret", def).await;
    let (s, v) = publish(app, &alice, "alice/secret", "minor", "private").await;
    assert_eq!(s, 200, "{v}");
    app.make_org("acme", &alice).await;

    let start = |who: &'static str| format!("/v1/admin/users/{who}/impersonate");
    let body = json!({"reason": "support ticket 7", "duration_minutes": 5});
    // Refusals, each with its reason.
    let (s, _) = app.post(&start("alice"), &bob, body.clone()).await;
    assert_eq!(s, 403, "not an admin");
    for (path, b, status, reason) in [
        (start("root"), body.clone(), 403, "impersonation_refused"),
        (start("ops"), body.clone(), 403, "impersonation_refused"),
        (start("nobody"), body.clone(), 404, "user_not_found"),
        (start("alice"), json!({}), 400, "missing_field"),
        (
            start("alice"),
            json!({"reason": "x", "duration_minutes": 61}),
            400,
            "invalid_input",
        ),
    ] {
        let (s, v) = app.post(&path, &app.root, b).await;
        assert_eq!(
            (s, error_reason(&v)),
            (status, reason.into()),
            "{path}: {v}"
        );
    }

    let (s, v) = app.post(&start("alice"), &app.root, body.clone()).await;
    assert_eq!(s, 201, "{v}");
    let token = format!("Bearer {}", v["token"].as_str().unwrap());
    assert_eq!(v["impersonation"]["user"], "alice");
    assert_eq!(v["impersonation"]["real_user"], "root");

    // The session shows who acts and who is behind it (the UI's banner).
    let (s, me) = app.get("/v1/session", &token).await;
    assert_eq!(s, 200, "{me}");
    assert_eq!(
        (me["account"].as_str(), me["credential"].as_str()),
        (Some("alice"), Some("session")),
        "{me}"
    );
    assert_eq!(me["impersonation"]["real_user"], "root");
    assert_eq!(me["impersonation"]["reason"], "support ticket 7");
    // The user is notified.
    let (_, list) = app.get("/v1/users/alice/notifications", &alice).await;
    let n = &list[0];
    assert_eq!(n["notification_type"], "impersonation", "{list}");
    assert!(n["text"].as_str().unwrap().contains("root"), "{n}");
    assert!(
        n["text"].as_str().unwrap().contains("support ticket 7"),
        "{n}"
    );

    // It acts as alice: her private algorithm, her org's apps.
    let (s, v) = app.get("/v1/algorithms/alice/secret", &token).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app
        .post("/v1/apps/acme", &token, json!({"name": "support"}))
        .await;
    assert_eq!(s, 201, "{v}");
    // Every request of the session is on record, reads included.
    let requests = audit_records(app, "impersonation.request", 3).await;
    let paths: Vec<&str> = requests
        .iter()
        .map(|r| r["detail"]["path"].as_str().unwrap())
        .collect();
    assert!(paths.contains(&"/v1/algorithms/alice/secret"), "{paths:?}");
    assert!(
        requests
            .iter()
            .all(|r| r["actor"] == "root" && r["effective_account"] == "alice"),
        "{requests:?}"
    );
    // The audit trail names root as the actor and alice as the account.
    let created = audit_records(app, "app.created", 1).await;
    let r = created.last().unwrap();
    assert_eq!(
        (r["actor"].as_str(), r["effective_account"].as_str()),
        (Some("root"), Some("alice")),
        "{r}"
    );
    assert_eq!(r["auth_method"], "session", "{r}");
    // Calls are metered as made through an impersonation.
    let (s, v) = app
        .send_json(
            "/v1/algo/alice/secret/0.1.0",
            &token,
            Some("text/plain"),
            "x",
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let rid = v["request_id"].as_str().unwrap();
    let (_, rec) = app
        .get(&format!("/v1/admin/usage/calls/{rid}"), &app.root)
        .await;
    assert_eq!(
        (rec["via"].as_str(), rec["caller"].as_str()),
        (Some("impersonation"), Some("alice")),
        "{rec}"
    );
    // Within limits: no keys, no cluster administration.
    let (s, v) = app
        .post(
            "/v1/users/alice/keys",
            &token,
            json!({"key_label": "x", "permissions": {}}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, _) = app.get("/v1/admin/users", &token).await;
    assert_eq!(s, 403);

    // Nor change the user's profile, or mark the user's notifications read.
    let (s, v) = app
        .put(
            "/v1/users/alice",
            &token,
            json!({"username": "alice", "email": "evil@example.com", "fullname": "A"}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = app
        .post("/v1/users/alice/notifications/read", &token, json!({}))
        .await;
    assert_eq!(s, 403, "{v}");

    // Impersonating from inside an impersonation ends the session (whatever
    // the body).
    let (s, v) = app.post(&start("bob"), &token, json!({})).await;
    assert_eq!(
        (s, error_reason(&v)),
        (401, "impersonation_ended".into()),
        "{v}"
    );
    let (s, _) = app.get("/v1/session", &token).await;
    assert_eq!(s, 401, "logged out");
    let ended = audit_records(app, "impersonation.ended", 1).await;
    assert_eq!(ended[0]["detail"]["reason"], "nested", "{ended:?}");

    // Stop ends a session; an API key has no session to stop.
    let (_, v) = app.post(&start("alice"), &ops, body.clone()).await;
    let token2 = format!("Bearer {}", v["token"].as_str().unwrap());
    let (s, v) = app.delete("/v1/session", &token2).await;
    assert_eq!((s, v["ended"].as_bool()), (200, Some(true)), "{v}");
    assert_eq!(v["impersonation"]["end_reason"], "stopped");
    let (s, _) = app.get("/v1/session", &token2).await;
    assert_eq!(s, 401);
    let (s, v) = app.delete("/v1/session", &ops).await;
    assert_eq!((s, error_reason(&v)), (400, "not_a_session".into()), "{v}");

    // A session ends by itself; maintenance records it.
    let (alice_id, root_id) = (
        account_id(app, "alice").await,
        account_id(app, "root").await,
    );
    let short = std::sync::Mutex::new(String::new());
    let short = &short;
    let begin = |until: Millis| async move {
        let secret = algohub_core::secrets::SessionSecret::generate();
        let new = NewSession {
            kind: algohub_core::model::SessionKind::Impersonation,
            digest: secret.digest(),
            user_id: alice_id,
            actor_id: root_id,
            reason: "brief".into(),
            expires_at: until,
            source: None,
            user_agent: None,
        };
        app.hub()
            .store
            .create_session(&algohub_core::audit::AuditContext::cli(), &new)
            .await
            .map(algohub_core::store::Written::unindexed)
            .unwrap();
        app.hub().index.sync().await.unwrap();
        *short.lock().unwrap() = format!("Bearer {}", secret.expose());
    };
    let on = || async move {
        let token = short.lock().unwrap().clone();
        match app.get("/v1/session", &token).await {
            (200, _) => true,
            (401, _) => false,
            (s, v) => panic!("{s}: {v}"),
        }
    };
    let expired = ends_by_itself(app, begin, on).await;
    let ended = audit_records(app, "impersonation.ended", 2 + expired).await;
    let reasons: Vec<&str> = ended
        .iter()
        .map(|r| r["detail"]["reason"].as_str().unwrap())
        .collect();
    let mut want = vec!["nested", "stopped"];
    want.extend(std::iter::repeat_n("expired", expired));
    assert_eq!(reasons, want, "{ended:?}");

    // Deleting the user ends the sessions acting as them (in the receipt).
    let (_, v) = app.post(&start("bob"), &app.root, body.clone()).await;
    let bob_token = format!("Bearer {}", v["token"].as_str().unwrap());
    let session_id = v["impersonation"]["session_id"].as_i64().unwrap();
    let (s, receipt) = app.delete("/v1/admin/users/bob", &app.root).await;
    assert_eq!(s, 200, "{receipt}");
    assert_eq!(
        receipt["sessions"],
        json!([session_id.to_string()]),
        "{receipt}"
    );
    let (s, _) = app.get("/v1/session", &bob_token).await;
    assert_eq!(s, 401);
    // A demoted admin's sessions stop working at once.
    let (_, v) = app.post(&start("alice"), &ops, body.clone()).await;
    let ops_token = format!("Bearer {}", v["token"].as_str().unwrap());
    let (s, _) = app.delete("/v1/admin/users/ops/admin", &app.root).await;
    assert_eq!(s, 200);
    let (s, _) = app.get("/v1/session", &ops_token).await;
    assert_eq!(s, 401);
    // ...and for good: promoting the admin again does not revive them.
    let (s, _) = app
        .put("/v1/admin/users/ops/admin", &app.root, json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = app.get("/v1/session", &ops_token).await;
    assert_eq!(s, 401);
    // Suspending the user ends the sessions acting as them.
    let (_, v) = app.post(&start("alice"), &ops, body.clone()).await;
    let alice_token = format!("Bearer {}", v["token"].as_str().unwrap());
    let (s, _) = app
        .post("/v1/admin/users/alice/suspend", &app.root, json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .post("/v1/admin/users/alice/unsuspend", &app.root, json!({}))
        .await;
    assert_eq!(s, 200);
    let (s, _) = app.get("/v1/session", &alice_token).await;
    assert_eq!(s, 401, "not revived by reinstatement");
}

pub(crate) async fn impersonating_admins_is_a_setting(db: Db) {
    let app = TestApp::with(&db, |c| c.allow_impersonating_admins = true).await;
    app.make_user("ops", true).await;
    let asked = now_millis();
    let (s, v) = app
        .post(
            "/v1/admin/users/ops/impersonate",
            &app.root,
            json!({"reason": "audit"}),
        )
        .await;
    let answered = now_millis();
    assert_eq!(s, 201, "{v}");
    // Default duration: 30 minutes from when the server made the session
    // (between the request and its answer, however long that took).
    let until =
        chrono::DateTime::parse_from_rfc3339(v["impersonation"]["expires_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
    let thirty = 30 * 60_000;
    assert!(
        (asked + thirty..=answered + thirty).contains(&until),
        "{v}: asked at {asked}, answered at {answered}"
    );
    // Even so, the session cannot administer the cluster.
    let token = format!("Bearer {}", v["token"].as_str().unwrap());
    let (s, _) = app.get("/v1/admin/users", &token).await;
    assert_eq!(s, 403);
}

pub(crate) async fn super_powers(db: Db) {
    super_powers_open_reads_only(&TestApp::new(&db).await).await;
}

pub(crate) async fn impersonation(db: Db) {
    impersonation_acts_as_the_user_and_names_the_admin(&TestApp::new(&db).await).await;
}
