//! Guarantees README makes that no other test reaches: the last cluster
//! admin, the metering backlog, call tokens checked on another node, and an
//! admin's impersonation sessions ending with the admin's suspension.

use crate::governance::published_upstream;
use crate::support::{Backend, Db, TestApp, audit_records, config_for, error_reason};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The refusal of a change that would leave the cluster without an active admin.
const LAST_ADMIN_MESSAGE: &str = "this is the only active cluster admin; add another admin first";

/// A request to `base` (a node other than a `TestApp`); (status, JSON body).
async fn request(
    client: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = client
        .request(method, format!("{base}{path}"))
        .header("Authorization", key);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let resp = r.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// The active cluster admins, read from the database itself.
async fn active_admins(database_url: &str) -> Vec<String> {
    let store = algohub_store::connect(database_url).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT a.name FROM users u JOIN accounts a ON a.id = u.account_id \
         WHERE u.cluster_admin = 1 AND a.status = 'active' ORDER BY a.name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    store.pool().close().await;
    names
}

/// A node on a shared database that never reads the other nodes' changes:
/// the server's hub and routes without its background tasks (policy poll,
/// maintenance), so its policy index stays as it was at start, as a node's
/// does between two polls.
struct StaleNode {
    base: String,
    client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl StaleNode {
    async fn start(database_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = config_for(dir.path(), database_url.to_string());
        let store = algohub::open_store(database_url).await.unwrap();
        let hub = algohub_core::services::Hub::start(store.clone(), config.settings())
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = algohub_http::app(hub, base.clone(), None, false);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            algohub_http::serve(listener, app, shutdown).await.unwrap();
            store.close().await;
        });
        Self {
            base,
            client: reqwest::Client::new(),
            stop,
            task,
            _dir: dir,
        }
    }

    async fn call(&self, method: Method, path: &str, key: &str) -> (u16, Value) {
        let body = (method == Method::POST).then(|| json!({}));
        request(&self.client, &self.base, method, path, key, body).await
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Asserts that `(status, body)` is the refusal to leave no active admin.
fn assert_last_admin_refusal(what: &str, (s, v): (u16, Value)) {
    assert_eq!(s, 409, "{what} was not refused: {v}");
    assert_eq!(
        (error_reason(&v).as_str(), v["error"]["message"].as_str()),
        ("conflict", Some(LAST_ADMIN_MESSAGE)),
        "{what}: {v}"
    );
}

/// The last active cluster admin cannot lose the role, be suspended or be
/// deleted, even by an admin whose own demotion, suspension or deletion the
/// node it asks has not seen yet (the store checks, not the node's index).
pub(crate) async fn the_last_cluster_admin_stays(db: Db) {
    let app = TestApp::new(&db).await;
    let ops = app.make_user("ops", true).await;
    // Node B knows ops as an active admin from now on.
    let stale = StaleNode::start(&app.database_url).await;
    let (s, v) = stale.call(Method::GET, "/v1/admin/users", &ops).await;
    assert_eq!(s, 200, "ops administers through node B: {v}");

    let actions = [
        (Method::DELETE, "/v1/admin/users/root/admin"),
        (Method::POST, "/v1/admin/users/root/suspend"),
        (Method::DELETE, "/v1/admin/users/root"),
    ];
    // ops, in turn suspended, demoted and deleted through node A, where root
    // is then the only active admin; node B still lets ops act as an admin.
    let steps: [&[(Method, &str)]; 3] = [
        &[(Method::POST, "/v1/admin/users/ops/suspend")],
        &[
            (Method::POST, "/v1/admin/users/ops/unsuspend"),
            (Method::DELETE, "/v1/admin/users/ops/admin"),
        ],
        &[(Method::DELETE, "/v1/admin/users/ops")],
    ];
    for (flavor, step) in ["suspended", "demoted", "deleted"].iter().zip(steps) {
        for (method, path) in step {
            let body = (*method == Method::POST).then(|| json!({}));
            let (s, v) = app.call(method.clone(), path, Some(&app.root), body).await;
            assert_eq!(s, 200, "{path}: {v}");
        }
        assert_eq!(active_admins(&app.database_url).await, ["root"]);
        for (method, path) in &actions {
            let answer = stale.call(method.clone(), path, &ops).await;
            assert_last_admin_refusal(&format!("{method} {path} by a {flavor} ops"), answer);
            assert_eq!(
                active_admins(&app.database_url).await,
                ["root"],
                "after {method} {path} by a {flavor} ops"
            );
        }
    }
    // root still administers.
    let (s, v) = app.get("/v1/admin/users?search=root", &app.root).await;
    assert_eq!(s, 200, "{v}");
    let root = &v["results"][0];
    assert_eq!(
        (root["status"].as_str(), root["cluster_admin"].as_bool()),
        (Some("active"), Some(true)),
        "{v}"
    );
    stale.stop().await;
}

/// Two admins, the only active ones, demote, suspend or delete each other at
/// the same time, each request having passed the node's checks before either
/// change is committed: exactly one succeeds and the other is refused, so an
/// admin remains. The test holds the tables both changes write until both
/// requests wait in the database, so that their checks run concurrently.
pub(crate) async fn admins_acting_on_each_other_at_once_leave_one(db: Db) {
    assert_eq!(db.backend(), Backend::Postgres);
    let app = TestApp::new(&db).await;
    let store = algohub_store::connect(&app.database_url).await.unwrap();
    let pool = store.pool();
    let kinds = [
        ("demote", Method::DELETE, "/admin"),
        ("suspend", Method::POST, "/suspend"),
        ("delete", Method::DELETE, ""),
    ];
    // Who is the only other active admin when a round starts.
    let mut survivor = ("root".to_string(), app.root.clone());
    let mut round = 0;
    for (kind, method, suffix) in &kinds {
        for _ in 0..3 {
            round += 1;
            let (x, y) = (format!("x{round}"), format!("y{round}"));
            let x_key = app.make_user(&x, true).await;
            let y_key = app.make_user(&y, true).await;
            let (s, v) = app
                .delete(&format!("/v1/admin/users/{}/admin", survivor.0), &x_key)
                .await;
            assert_eq!(s, 200, "{v}");
            assert_eq!(
                active_admins(&app.database_url).await,
                [x.clone(), y.clone()]
            );

            let mut hold = pool.begin().await.unwrap();
            sqlx::query("LOCK TABLE users, accounts IN SHARE MODE")
                .execute(&mut *hold)
                .await
                .unwrap();
            let act = |actor: &str, target: &str| {
                let client = app.client.clone();
                let url = format!("{}/v1/admin/users/{target}{suffix}", app.base);
                let key = actor.to_string();
                let method = method.clone();
                tokio::spawn(async move {
                    let mut r = client
                        .request(method.clone(), url)
                        .header("Authorization", key);
                    if method == Method::POST {
                        r = r.json(&json!({}));
                    }
                    let resp = r.send().await.unwrap();
                    let status = resp.status().as_u16();
                    (status, resp.json::<Value>().await.unwrap_or(Value::Null))
                })
            };
            let x_acts = act(&x_key, &y);
            let y_acts = act(&y_key, &x);
            // Both requests are in the database: the first waits for the
            // tables, the second for the first (or, without the store's
            // serialization, for the tables too).
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .fetch_one(pool)
                .await
                .unwrap();
                if waiting >= 2 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{kind} round {round}: the requests never reached the database"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            hold.commit().await.unwrap();
            let (x_answer, y_answer) = (x_acts.await.unwrap(), y_acts.await.unwrap());
            let (winner, loser_answer) = match (x_answer.0, y_answer.0) {
                (200, _) => ((x.clone(), x_key), y_answer),
                (_, 200) => ((y.clone(), y_key), x_answer),
                _ => panic!("{kind} round {round}: neither succeeded: {x_answer:?} {y_answer:?}"),
            };
            assert_last_admin_refusal(&format!("{kind} round {round}"), loser_answer);
            assert_eq!(
                active_admins(&app.database_url).await,
                [winner.0.as_str()],
                "{kind} round {round}: one admin remains"
            );
            survivor = winner;
        }
    }
    pool.close().await;
}

/// An upstream that keeps the call token (`X-Algohub-Api-Key`) of each call
/// and answers once `release` is set.
struct HeldUpstream {
    url: String,
    tokens: Arc<Mutex<Vec<String>>>,
    release: tokio::sync::watch::Sender<bool>,
}

async fn held_upstream() -> HeldUpstream {
    use axum::extract::State;
    use axum::http::HeaderMap;
    type Shared = (Arc<Mutex<Vec<String>>>, tokio::sync::watch::Sender<bool>);
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let release = tokio::sync::watch::Sender::new(false);
    let app = axum::Router::new()
        .route(
            "/held",
            axum::routing::post(
                |State((tokens, release)): State<Shared>, headers: HeaderMap| async move {
                    let token = headers
                        .get("x-algohub-api-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    tokens.lock().unwrap().push(token);
                    let _ = release.subscribe().wait_for(|r| *r).await;
                    axum::Json(json!({"released": true}))
                },
            ),
        )
        .with_state((tokens.clone(), release.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    HeldUpstream {
        url: format!("http://{addr}/held"),
        tokens,
        release,
    }
}

/// A call token handed out by node A works on node B, which checks the
/// call's slot in the shared database, while the call runs; once the call
/// has returned, node B refuses it.
pub(crate) async fn call_tokens_are_checked_on_another_node(db: Db) {
    let a = TestApp::new(&db).await;
    let alice = a.make_user("alice", false).await;
    let upstream = held_upstream().await;
    published_upstream(&a, &alice, "alice", "held", &upstream.url).await;
    // Node B, on the same database (files are node-local: alice's file is
    // written through node B).
    let dir_b = tempfile::tempdir().unwrap();
    let b = algohub::Server::start(&config_for(dir_b.path(), a.database_url.clone()), None)
        .await
        .expect("node b");
    let base_b = format!("http://{}", b.addr);
    let client = reqwest::Client::new();
    let (s, v) = request(
        &client,
        &base_b,
        Method::POST,
        "/v1/data/.my",
        &alice,
        Some(json!({"name": "notes"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let put = client
        .put(format!("{base_b}/v1/data/.my/notes/hello.txt"))
        .header("Authorization", &alice)
        .body("alice's notes")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let read_on_b = |token: String| {
        let client = client.clone();
        let url = format!("{base_b}/v1/data/.my/notes/hello.txt");
        async move {
            let resp = client
                .get(url)
                .header("Authorization", token)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };

    // A call through node A, held open by its upstream.
    let call = {
        let (client, url, key) = (
            a.client.clone(),
            format!("{}/v1/algo/alice/held", a.base),
            alice.clone(),
        );
        tokio::spawn(async move {
            let resp = client
                .post(url)
                .header("Authorization", key)
                .header("Content-Type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let token = loop {
        if let Some(t) = upstream.tokens.lock().unwrap().first().cloned() {
            break format!("Simple {t}");
        }
        assert!(Instant::now() < deadline, "the upstream was never called");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        read_on_b(token.clone()).await,
        (200, "alice's notes".to_string()),
        "node B takes the token of node A's running call"
    );
    upstream.release.send_replace(true);
    let (s, v) = call.await.unwrap();
    assert_eq!((s, v.get("error")), (200, None), "{v}");

    // The call has returned: node B refuses its token (once the slot is
    // freed, which node A does in a batch right behind the call).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, body) = read_on_b(token.clone()).await;
        if s == 401 {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(error_reason(&v), "invalid_key", "{v}");
            let message = v["error"]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("ended call token"), "{v}");
            break;
        }
        assert_eq!(s, 200, "{body}");
        assert!(
            Instant::now() < deadline,
            "node B still takes the token of a call that returned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.stop().await.unwrap();
}

/// Makes the database refuse usage records (as a store that is down would)
/// until `store_back`.
async fn store_down(pool: &sqlx::AnyPool, backend: Backend) {
    let sql = match backend {
        Backend::Sqlite => {
            "CREATE TRIGGER usage_down BEFORE INSERT ON usage_records \
             BEGIN SELECT RAISE(ABORT, 'the usage store is down (test)'); END"
        }
        Backend::Postgres => {
            "CREATE FUNCTION usage_down() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'the usage store is down (test)'; END $$; \
             CREATE TRIGGER usage_down BEFORE INSERT ON usage_records \
             FOR EACH ROW EXECUTE FUNCTION usage_down()"
        }
    };
    sqlx::raw_sql(sql).execute(pool).await.unwrap();
}

async fn store_back(pool: &sqlx::AnyPool, backend: Backend) {
    let sql = match backend {
        Backend::Sqlite => "DROP TRIGGER usage_down",
        Backend::Postgres => "DROP TRIGGER usage_down ON usage_records; DROP FUNCTION usage_down()",
    };
    sqlx::raw_sql(sql).execute(pool).await.unwrap();
}

/// While the store takes no usage records, calls are answered (their
/// records wait in the journal) until `metering_max_backlog` records wait;
/// then calls are refused with `metering_failed`, and answered again once
/// the store is back. Every answered call then has its record, once.
pub(crate) async fn calls_are_refused_once_the_usage_backlog_is_full(db: Db) {
    const BACKLOG: usize = 3;
    let app = TestApp::with(&db, |c| c.metering_max_backlog = BACKLOG as u64).await;
    let (upstream, _) = crate::governance::gauged_upstream().await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    published_upstream(
        &app,
        &alice,
        "alice",
        "quick",
        &format!("{upstream}/hold?ms=1"),
    )
    .await;
    let call = async || {
        app.send_json("/v1/algo/alice/quick", &bob, Some("text/plain"), "x")
            .await
    };
    let mut answered = Vec::new();
    let answer = |answered: &mut Vec<String>, (s, v): (u16, Value), what: &str| {
        assert_eq!((s, v.get("error")), (200, None), "{what}: {v}");
        answered.push(v["request_id"].as_str().unwrap().to_string());
    };
    answer(&mut answered, call().await, "with the store up");
    // Its record is in the store (a usage read waits for the journal's loader).
    let (s, v) = app
        .get(&format!("/v1/admin/usage/calls/{}", answered[0]), &app.root)
        .await;
    assert_eq!(s, 200, "{v}");

    let store = algohub_store::connect(&app.database_url).await.unwrap();
    let pool = store.pool();
    store_down(pool, db.backend()).await;
    for i in 0..BACKLOG {
        answer(&mut answered, call().await, &format!("backlog call {i}"));
    }
    let (s, v) = call().await;
    assert_eq!(
        s, 503,
        "the backlog is full, yet the call was answered: {v}"
    );
    assert_eq!(error_reason(&v), "metering_failed", "{v}");

    store_back(pool, db.backend()).await;
    for i in 0..BACKLOG + 2 {
        answer(
            &mut answered,
            call().await,
            &format!("store back, call {i}"),
        );
    }
    // Every answered call has exactly one record; the refused one has none.
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored: Vec<String> = loop {
        let ids: Vec<String> = sqlx::query_scalar("SELECT request_id FROM usage_records")
            .fetch_all(pool)
            .await
            .unwrap();
        if ids.len() >= answered.len() || Instant::now() > deadline {
            break ids;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stored = stored;
    stored.sort();
    answered.sort();
    assert_eq!(stored, answered);
    pool.close().await;
}

/// Suspending an admin ends their impersonation sessions: the token is
/// refused at once, and stays refused once the admin is reinstated.
pub(crate) async fn an_admins_suspension_ends_their_impersonation_sessions(db: Db) {
    let app = TestApp::new(&db).await;
    app.make_user("alice", false).await;
    let ops = app.make_user("ops", true).await;
    let (s, v) = app
        .post(
            "/v1/admin/users/alice/impersonate",
            &ops,
            json!({"reason": "ticket 9", "duration_minutes": 30}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let token = format!("Bearer {}", v["token"].as_str().unwrap());
    let session_id = v["impersonation"]["session_id"].clone();
    let (s, me) = app.get("/v1/session", &token).await;
    assert_eq!(
        (
            s,
            me["account"].as_str(),
            me["impersonation"]["real_user"].as_str()
        ),
        (200, Some("alice"), Some("ops")),
        "{me}"
    );

    let (s, v) = app
        .post("/v1/admin/users/ops/suspend", &app.root, json!({}))
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("suspended")), "{v}");
    for path in ["/v1/session", "/v1/users/alice"] {
        let (s, v) = app.get(path, &token).await;
        assert_eq!(s, 401, "{path} with the session of a suspended admin: {v}");
        assert_eq!(error_reason(&v), "invalid_key", "{v}");
    }
    let (s, v) = app
        .post("/v1/admin/users/ops/unsuspend", &app.root, json!({}))
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("active")), "{v}");
    let (s, _) = app.get("/v1/admin/users", &ops).await;
    assert_eq!(s, 200, "ops administers again");
    let (s, v) = app.get("/v1/session", &token).await;
    assert_eq!(
        s, 401,
        "reinstating the admin does not revive the session: {v}"
    );
    assert_eq!(error_reason(&v), "invalid_key", "{v}");
    // The suspension ended it (on record, by root).
    let ended = audit_records(&app, "impersonation.ended", 1).await;
    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(
        (
            ended[0]["actor"].as_str(),
            ended[0]["detail"]["reason"].as_str(),
            &ended[0]["detail"]["session"]
        ),
        (Some("root"), Some("revoked"), &session_id),
        "{ended:?}"
    );

    // A new session works.
    let (s, v) = app
        .post(
            "/v1/admin/users/alice/impersonate",
            &ops,
            json!({"reason": "ticket 10"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let again = format!("Bearer {}", v["token"].as_str().unwrap());
    let (s, me) = app.get("/v1/session", &again).await;
    assert_eq!((s, me["account"].as_str()), (200, Some("alice")), "{me}");
}
