//! Requests that race: an app transfer against a publish, another transfer
//! of the same app, or a write putting an algorithm into the app; refused
//! calls arriving together; and leaving an org as a decision of its own.
//!
//! The PostgreSQL cases make the race happen every time: the test holds a
//! lock that one request needs (a table, or a row it must lock or reference)
//! until the requests are where the race is decided, waiting in the database
//! (`pg_stat_activity`), and then lets them go.

use crate::algorithms::{call, compile, create, create_body, publish};
use crate::support::{Backend, Db, TestApp, error_reason};
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::AnyPool;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A request sent in its own task, to await later: (status, JSON body).
fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> JoinHandle<(u16, Value)> {
    let request = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header("Authorization", key);
    let request = match body {
        Some(b) => request.json(&b),
        None => request,
    };
    tokio::spawn(async move {
        let resp = request.send().await.expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.unwrap_or(Value::Null))
    })
}

/// What `algorithms::publish` sends, for a public minor version.
fn publish_body() -> Value {
    json!({"details": {}, "settings": {"algorithm_callability": "public"},
           "version_info": {"version_type": "minor", "release_notes": "notes"},
           "source": {}, "scmsCredentials": {}})
}

/// Backends of this test's database waiting for a lock.
async fn lock_waits(pool: &AnyPool) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Waits until `n` requests wait for a lock, or until `finished` (a request
/// that needs no lock the others hold may simply be done).
async fn until_waiting(pool: &AnyPool, n: i64, finished: impl Fn() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while lock_waits(pool).await < n && !finished() {
        assert!(
            Instant::now() < deadline,
            "{what}: the requests never reached the database"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Live algorithms in an app that belongs to another owner (one left behind
/// by a transfer, or put into an app just moved away).
async fn algorithms_outside_their_owners_apps(pool: &AnyPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT g.name FROM algorithms g JOIN apps p ON p.id = g.app_id \
         WHERE g.owner_id <> p.owner_id AND g.deleted_at IS NULL ORDER BY g.name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Versions live in an org that requires approval without an admin's approval.
async fn unapproved_live_versions(pool: &AnyPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT g.name FROM versions v JOIN algorithms g ON g.id = v.algorithm_id \
         JOIN orgs o ON o.account_id = g.owner_id \
         WHERE o.require_approval <> 0 AND v.status = 'published' AND v.decided_by IS NULL \
         ORDER BY g.name",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn id_of(pool: &AnyPool, sql: &'static str, name: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(name.to_string())
        .fetch_one(pool)
        .await
        .unwrap()
}

/// bob's app `app` (in his account) holding a new algorithm `algo`, compiled
/// (a build nobody published yet).
async fn app_with_algorithm(app: &TestApp, bob: &str, app_name: &str, algo: &str) {
    let (s, b) = app
        .post("/v1/apps/bob", bob, json!({"name": app_name}))
        .await;
    assert_eq!(s, 201, "{b}");
    let mut body = create_body(algo);
    body["app"] = json!(app_name);
    let (s, b) = app.post("/v1/algorithms/bob", bob, body).await;
    assert_eq!(s, 200, "{b}");
    compile(app, bob, &format!("bob/{algo}")).await;
}

/// alice's org acme (requiring approval, the default) with bob a contributor,
/// who may move his apps into it.
async fn acme_with_bob(app: &TestApp) -> (String, String) {
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "bob", "contributor").await;
    (alice, bob)
}

/// A publish and a transfer of the algorithm's app into an org that requires
/// approval, at once, in both orders: the version never goes live there
/// without an admin's approval, and the org's admins are asked.
///
/// First the publish holds the algorithm when the transfer comes (the test
/// holds the build row, which the version's insert references, so the
/// publish waits there after deciding its status); then the transfer holds
/// it when the publish comes (the test holds `versions`, which the transfer
/// writes after moving the algorithm).
pub(crate) async fn a_publish_racing_a_transfer_waits_for_approval(db: Db) {
    assert_eq!(db.backend(), Backend::Postgres);
    let app = TestApp::new(&db).await;
    let (alice, bob) = acme_with_bob(&app).await;
    let erin = app.make_user("erin", false).await;
    let store = algohub_store::connect(&app.database_url).await.unwrap();
    let pool = store.pool();

    // 1. The publish is between its decision and its insert when the
    // transfer starts.
    app_with_algorithm(&app, &bob, "sketch", "echo").await;
    let build = id_of(
        pool,
        "SELECT b.id FROM builds b JOIN algorithms g ON g.id = b.algorithm_id \
         WHERE g.name = $1 ORDER BY b.id DESC LIMIT 1",
        "echo",
    )
    .await;
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM builds WHERE id = $1 FOR UPDATE")
        .bind(build)
        .fetch_one(&mut *hold)
        .await
        .unwrap();
    let publishing = send(
        &app,
        Method::POST,
        "/v1/algorithms/bob/echo/versions",
        &bob,
        Some(publish_body()),
    );
    until_waiting(pool, 1, || publishing.is_finished(), "publish").await;
    let transfer = send(
        &app,
        Method::POST,
        "/v1/apps/bob/sketch/transfer",
        &bob,
        Some(json!({"to": "acme"})),
    );
    until_waiting(pool, 2, || transfer.is_finished(), "publish, then transfer").await;
    hold.commit().await.unwrap();
    let (s, v) = publishing.await.unwrap();
    assert_eq!(s, 200, "{v}");
    let (s, b) = transfer.await.unwrap();
    assert_eq!((s, b["owner"].as_str()), (200, Some("acme")), "{b}");
    assert_eq!(unapproved_live_versions(pool).await, Vec::<String>::new());
    let (s, r) = call(&app, &erin, "acme/echo", Some("text/plain"), b"x").await;
    assert_eq!(s, 404, "not live before approval: {r}");
    let (s, p) = app
        .get("/v1/organizations/acme/pending-versions", &alice)
        .await;
    assert_eq!((s, p[0]["version"].as_str()), (200, Some("0.1.0")), "{p}");

    // 2. The transfer has moved the algorithm (uncommitted) when the
    // publish starts.
    app_with_algorithm(&app, &bob, "draft", "later").await;
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE versions IN SHARE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let transfer = send(
        &app,
        Method::POST,
        "/v1/apps/bob/draft/transfer",
        &bob,
        Some(json!({"to": "acme"})),
    );
    until_waiting(pool, 1, || transfer.is_finished(), "transfer").await;
    let publishing = send(
        &app,
        Method::POST,
        "/v1/algorithms/bob/later/versions",
        &bob,
        Some(publish_body()),
    );
    until_waiting(
        pool,
        2,
        || publishing.is_finished(),
        "transfer, then publish",
    )
    .await;
    hold.commit().await.unwrap();
    let (s, b) = transfer.await.unwrap();
    assert_eq!(s, 200, "{b}");
    let (s, v) = publishing.await.unwrap();
    assert_eq!(
        (s, v["version_info"]["status"].as_str()),
        (200, Some("pending")),
        "published after the move: {v}"
    );
    assert_eq!(unapproved_live_versions(pool).await, Vec::<String>::new());
    let (s, r) = call(&app, &erin, "acme/later", Some("text/plain"), b"x").await;
    assert_eq!(s, 404, "not live before approval: {r}");
    // acme's admin is asked, about the algorithm where it is now.
    let alice_id = app
        .hub()
        .store
        .get_account_by_name("alice")
        .await
        .unwrap()
        .id;
    let asked: Vec<_> = app
        .hub()
        .store
        .list_outbox(false, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "notification.approval_requested")
        .map(|m| (m.recipient_user_id, m.payload["algorithm"].clone()))
        .collect();
    assert!(
        asked.contains(&(Some(alice_id), json!("acme/later"))),
        "{asked:?}"
    );
    pool.close().await;
    app.stop().await;
}

/// Two transfers of one app to two orgs at once (both past their checks
/// before either moves anything): one moves the app with its algorithms,
/// the other is refused with a 409, and nothing is split between them.
pub(crate) async fn transfers_of_one_app_at_once_move_it_whole(db: Db) {
    assert_eq!(db.backend(), Backend::Postgres);
    let app = TestApp::new(&db).await;
    let (alice, bob) = acme_with_bob(&app).await;
    app.make_org("beta", &alice).await;
    app.add_member("beta", "bob", "contributor").await;
    let store = algohub_store::connect(&app.database_url).await.unwrap();
    let pool = store.pool();
    app_with_algorithm(&app, &bob, "sketch", "echo").await;

    // Both wait in the database before their first write (dropping the
    // app's team grants), or for the app the first one holds.
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE team_apps IN SHARE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let to = |org: &str| {
        send(
            &app,
            Method::POST,
            "/v1/apps/bob/sketch/transfer",
            &bob,
            Some(json!({"to": org})),
        )
    };
    let (to_acme, to_beta) = (to("acme"), to("beta"));
    until_waiting(pool, 2, || false, "two transfers").await;
    hold.commit().await.unwrap();
    let answers = [
        ("acme", to_acme.await.unwrap()),
        ("beta", to_beta.await.unwrap()),
    ];
    let moved: Vec<_> = answers.iter().filter(|(_, (s, _))| *s == 200).collect();
    assert_eq!(moved.len(), 1, "exactly one transfer succeeds: {answers:?}");
    let winner = moved[0].0;
    let (_, (s, refused)) = answers.iter().find(|(org, _)| *org != winner).unwrap();
    assert_eq!(
        (*s, error_reason(refused).as_str()),
        (409, "conflict"),
        "{refused}"
    );
    let (s, g) = app
        .get(&format!("/v1/algorithms/{winner}/echo"), &alice)
        .await;
    assert_eq!((s, g["owner"].as_str()), (200, Some(winner)), "{g}");
    let (s, a) = app.get(&format!("/v1/apps/{winner}/sketch"), &alice).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(
        algorithms_outside_their_owners_apps(pool).await,
        Vec::<String>::new()
    );
    pool.close().await;
    app.stop().await;
}

/// An algorithm created in an app, or moved into it, while the app is being
/// transferred never stays behind with the old owner: the write is ordered
/// before the transfer (and moves with the app) or after it (and is refused:
/// the app is no longer in the owner's account).
pub(crate) async fn an_algorithm_put_into_an_app_during_its_transfer_goes_with_it(db: Db) {
    assert_eq!(db.backend(), Backend::Postgres);
    let app = TestApp::new(&db).await;
    let (alice, bob) = acme_with_bob(&app).await;
    let store = algohub_store::connect(&app.database_url).await.unwrap();
    let pool = store.pool();

    // 1. Created in the app: held after the app was found in bob's account,
    // before the algorithm is written (the test holds `artifacts`, which
    // the creation reads first and the transfer not at all).
    app_with_algorithm(&app, &bob, "sketch", "echo").await;
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE artifacts IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let mut body = create_body("late");
    body["app"] = json!("sketch");
    let creating = send(&app, Method::POST, "/v1/algorithms/bob", &bob, Some(body));
    until_waiting(pool, 1, || creating.is_finished(), "create").await;
    let transfer = send(
        &app,
        Method::POST,
        "/v1/apps/bob/sketch/transfer",
        &bob,
        Some(json!({"to": "acme"})),
    );
    until_waiting(pool, 2, || transfer.is_finished(), "create, then transfer").await;
    hold.commit().await.unwrap();
    let (s, b) = transfer.await.unwrap();
    assert_eq!(s, 200, "{b}");
    let (s, c) = creating.await.unwrap();
    match s {
        200 => {
            let (s, g) = app.get("/v1/algorithms/acme/late", &alice).await;
            assert_eq!((s, g["owner"].as_str()), (200, Some("acme")), "{g}");
        }
        _ => assert_eq!(
            (s, error_reason(&c).as_str()),
            (404, "app_not_found"),
            "{c}"
        ),
    }
    assert_eq!(
        algorithms_outside_their_owners_apps(pool).await,
        Vec::<String>::new()
    );

    // 2. Moved into the app: held at the algorithm's row (the test holds
    // it), after the app was found in bob's account.
    create(&app, &bob, "bob", "solo").await;
    let (s, b) = app
        .post("/v1/apps/bob", &bob, json!({"name": "tools"}))
        .await;
    assert_eq!(s, 201, "{b}");
    let solo = id_of(pool, "SELECT id FROM algorithms WHERE name = $1", "solo").await;
    let mut hold = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM algorithms WHERE id = $1 FOR UPDATE")
        .bind(solo)
        .fetch_one(&mut *hold)
        .await
        .unwrap();
    let moving = send(
        &app,
        Method::PUT,
        "/v1/algorithms/bob/solo",
        &bob,
        Some(json!({"app": "tools"})),
    );
    until_waiting(pool, 1, || moving.is_finished(), "move").await;
    let transfer = send(
        &app,
        Method::POST,
        "/v1/apps/bob/tools/transfer",
        &bob,
        Some(json!({"to": "acme"})),
    );
    until_waiting(pool, 2, || transfer.is_finished(), "move, then transfer").await;
    hold.commit().await.unwrap();
    let (s, b) = transfer.await.unwrap();
    assert_eq!(s, 200, "{b}");
    let (s, m) = moving.await.unwrap();
    match s {
        200 => {
            let (s, g) = app.get("/v1/algorithms/acme/solo", &alice).await;
            assert_eq!((s, g["owner"].as_str()), (200, Some("acme")), "{g}");
        }
        _ => assert_eq!((s, error_reason(&m).as_str()), (409, "conflict"), "{m}"),
    }
    assert_eq!(
        algorithms_outside_their_owners_apps(pool).await,
        Vec::<String>::new()
    );
    pool.close().await;
    app.stop().await;
}

/// Refused calls on a cached algorithm each ask to catch up with the store
/// (a version published through another node?), but many at once share the
/// reads: while one is in flight (the test holds the change feed) twenty
/// refusals cost two reads, not twenty.
pub(crate) async fn refused_calls_share_their_store_reads(db: Db) {
    assert_eq!(db.backend(), Backend::Postgres);
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    create(&app, &alice, "alice", "secret").await;
    compile(&app, &alice, "alice/secret").await;
    let (s, v) = publish(&app, &alice, "alice/secret", "minor", "private").await;
    assert_eq!(s, 200, "{v}");
    // Refused (as missing, it is private); the later ones from the cache.
    for _ in 0..3 {
        let (s, r) = call(&app, &bob, "alice/secret", Some("text/plain"), b"x").await;
        assert_eq!(
            (s, error_reason(&r).as_str()),
            (404, "algorithm_not_found"),
            "{r}"
        );
    }
    let store = algohub_store::connect(&app.database_url).await.unwrap();
    let pool = store.pool();
    let (asked, reads) = app.hub().index.refusal_catch_ups();
    assert!(
        asked >= 1 && reads >= 1,
        "a refusal from the cache catches up"
    );

    let mut hold = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE policy_changes IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let request = app
                .client
                .post(format!("{}/v1/algo/alice/secret", app.base))
                .header("Authorization", &bob)
                .header("Content-Type", "text/plain")
                .body("x");
            tokio::spawn(async move { request.send().await.expect("sent").status().as_u16() })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.hub().index.refusal_catch_ups().0 < asked + 20 {
        assert!(
            Instant::now() < deadline,
            "the calls never asked to catch up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    hold.commit().await.unwrap();
    for c in calls {
        assert_eq!(c.await.unwrap(), 404);
    }
    let (now_asked, now_reads) = app.hub().index.refusal_catch_ups();
    assert_eq!(now_asked, asked + 20);
    assert!(
        now_reads - reads <= 2,
        "{} store reads for 20 refusals at once",
        now_reads - reads
    );
    pool.close().await;
    app.stop().await;
}

/// Leaving an org is the policy's `org.leave`: every member may, with their
/// own key; an impersonation session may not (it still reads the members).
pub(crate) async fn leaving_an_org_is_its_own_decision(db: Db) {
    let app = TestApp::new(&db).await;
    let (_alice, bob) = acme_with_bob(&app).await;
    let dave = app.make_user("dave", false).await;
    app.add_member("acme", "dave", "viewer").await;
    let (s, v) = app
        .post(
            "/v1/admin/users/bob/impersonate",
            &app.root,
            json!({"reason": "ticket 7", "duration_minutes": 10}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let session = format!("Bearer {}", v["token"].as_str().unwrap());
    let (s, m) = app.get("/v1/organizations/acme/members", &session).await;
    assert_eq!(s, 200, "the session reads the members: {m}");
    let (s, v) = app
        .delete("/v1/organizations/acme/members/bob", &session)
        .await;
    assert_eq!((s, error_reason(&v).as_str()), (403, "forbidden"), "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("org.leave") && message.contains("impersonation.limit"),
        "{v}"
    );
    let (s, v) = app.delete("/v1/organizations/acme/members/bob", &bob).await;
    assert!((200..300).contains(&s), "bob leaves with his own key: {v}");
    let (s, v) = app
        .delete("/v1/organizations/acme/members/dave", &dave)
        .await;
    assert!((200..300).contains(&s), "a viewer leaves too: {v}");
    let (s, v) = app
        .delete("/v1/organizations/acme/members/dave", &dave)
        .await;
    assert_eq!(s, 403, "no longer a member: {v}");
    app.stop().await;
}

/// Twenty identical invitations at once (by name, and by email) leave one
/// pending invitation each: the first is created, the others are refused
/// as conflicts (the database holds one pending invitation per invitee).
pub(crate) async fn identical_invitations_at_once_leave_one(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    app.make_user("bob", false).await;
    app.make_org("acme", &alice).await;
    for invitee in [
        json!({"username": "bob"}),
        json!({"email": "new@example.com"}),
    ] {
        let sent: Vec<_> = (0..20)
            .map(|_| {
                send(
                    &app,
                    Method::POST,
                    "/v1/organizations/acme/invitations",
                    &alice,
                    Some(invitee.clone()),
                )
            })
            .collect();
        let mut statuses = Vec::new();
        for s in sent {
            let (status, body) = s.await.unwrap();
            if status != 201 {
                assert_eq!(
                    (status, error_reason(&body).as_str()),
                    (409, "conflict"),
                    "{body}"
                );
            }
            statuses.push(status);
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "{invitee}: {statuses:?}"
        );
    }
    let (_, pending) = app.get("/v1/organizations/acme/invitations", &alice).await;
    assert_eq!(pending.as_array().map(Vec::len), Some(2), "{pending}");
    app.stop().await;
}
