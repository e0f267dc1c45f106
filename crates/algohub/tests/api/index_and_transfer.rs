//! Issue 21: what the policy index does not know yet is looked up in the store
//! before a request is refused (a key made by the command line, an algorithm
//! published or a session started through another node), and a transferred
//! app takes its algorithms along.
//!
//! The nodes here poll for other nodes' changes once an hour (`NEVER`), so
//! only the look-up can explain that a request succeeds at once.

use crate::algorithms::{call, compile, create, create_body, publish};
use crate::support::{Db, TestApp, audit_records, config_for, error_reason};
use algohub::Server;
use serde_json::{Value, json};

/// A policy poll that does not come during a test.
const NEVER: u64 = 3_600_000;

/// A second node on a test app's database, polling once an hour.
struct Node {
    server: Option<Server>,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(database_url: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config_for(dir.path(), database_url.to_string());
        config.policy_poll_ms = NEVER;
        let server = Server::start(&config, None).await.expect("node b starts");
        Self {
            base: format!("http://{}", server.addr),
            server: Some(server),
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", key);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, key, None).await
    }

    /// Calls an algorithm with a text input.
    async fn call(&self, path: &str, key: &str, input: &str) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}/v1/algo/{path}", self.base))
            .header("Authorization", key)
            .header("Content-Type", "text/plain")
            .body(input.to_string())
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("clean stop");
        }
    }
}

/// `algohub admin create-key` on the database at `url`, as an operator runs
/// it beside a running server; returns the key it prints.
async fn cli_create_key(url: &str, username: &str) -> String {
    let (url, username) = (url.to_string(), username.to_string());
    let out = tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("temp dir");
        std::process::Command::new(env!("CARGO_BIN_EXE_algohub"))
            .args([
                "admin",
                "create-key",
                "--username",
                &username,
                "--label",
                "cli",
            ])
            .env("ALGOHUB_DATABASE_URL", &url)
            .env("ALGOHUB_DATA_DIR", dir.path())
            .env("ALGOHUB_LOG_LEVEL", "warn")
            .current_dir(dir.path())
            .output()
            .expect("algohub runs")
    })
    .await
    .expect("the command ran");
    assert!(
        out.status.success(),
        "create-key failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// Whether the node's policy index knows the key (without looking anywhere else).
fn index_knows(app: &TestApp, key: &str) -> bool {
    app.hub()
        .policy
        .authenticate_key(&algohub_core::secrets::digest_hex(key))
        .is_some()
}

pub(crate) async fn a_key_made_by_the_command_line_works_at_once(db: Db) {
    let app = TestApp::with(&db, |c| c.policy_poll_ms = NEVER).await;
    let alice = app.make_user("alice", false).await;
    // The running server does not poll during the test (it synced at start,
    // before the key existed): only the look-up can admit the key.
    let key = cli_create_key(&app.database_url, "alice").await;
    let (s, b) = app.get("/v1/users/alice", &key).await;
    assert_eq!(
        s, 200,
        "a key made by the command line is accepted at once: {b}"
    );
    assert!(index_knows(&app, &key), "and the index now knows it");

    // A well-formed key nobody issued stays refused, as before (the second
    // time from the node's memory of unknown keys), and so does a revoked one.
    let bogus = "sim0123456789abcdefghijklmno";
    for _ in 0..2 {
        let (s, b) = app.get("/v1/users/alice", bogus).await;
        assert_eq!((s, error_reason(&b).as_str()), (401, "invalid_key"));
    }
    let (s, keys) = app.get("/v1/users/alice/keys", &alice).await;
    assert_eq!(s, 200, "{keys}");
    let uuid = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_label"] == "cli")
        .and_then(|k| k["id"].as_str())
        .expect("the cli key is listed")
        .to_string();
    let (s, b) = app.delete(&format!("/v1/keys/{uuid}"), &alice).await;
    assert!((200..300).contains(&s), "revoked: {b}");
    let (s, b) = app.get("/v1/users/alice", &key).await;
    assert_eq!((s, error_reason(&b).as_str()), (401, "invalid_key"));
    app.stop().await;
}

pub(crate) async fn algorithms_and_sessions_of_one_node_work_at_once_on_another(db: Db) {
    let a = TestApp::with(&db, |c| c.policy_poll_ms = NEVER).await;
    let alice = a.make_user("alice", false).await;
    let bob = a.make_user("bob", false).await;
    let b = Node::start(&a.database_url).await;

    // Made and published through node A only.
    create(&a, &alice, "alice", "echo").await;
    compile(&a, &alice, "alice/echo").await;
    let (s, v) = publish(&a, &alice, "alice/echo", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    // Node B synced when it started, before the algorithm existed, and does
    // not poll during the test: only the look-up can find the algorithm.
    let (s, r) = b.call("alice/echo", &bob, "hi").await;
    assert_eq!(
        (s, r["result"].as_str()),
        (200, Some("hi")),
        "callable on node B at once: {r}"
    );
    let (s, g) = b.get("/v1/algorithms/alice/echo", &alice).await;
    assert_eq!((s, g["owner"].as_str()), (200, Some("alice")), "{g}");

    // After this call node B holds the algorithm in its call cache (the
    // first call caught up, which keeps what it read out of the cache); a
    // version published through node A afterwards is callable on B at once.
    let (s, r) = b.call("alice/echo", &bob, "cached").await;
    assert_eq!(s, 200, "{r}");
    compile(&a, &alice, "alice/echo").await;
    let (s, v) = publish(&a, &alice, "alice/echo", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    let (s, r) = b.call("alice/echo/0.2.0", &bob, "again").await;
    assert_eq!(
        (s, r["metadata"]["version"].as_str()),
        (200, Some("0.2.0")),
        "{r}"
    );
    // What does not exist is still refused.
    let (s, _) = b.call("alice/echo/9.9.9", &bob, "x").await;
    assert_eq!(s, 404);
    let (s, _) = b.call("alice/nothing", &bob, "x").await;
    assert_eq!(s, 404);

    // An impersonation session started through node A works on B at once.
    let (s, v) = a
        .post(
            "/v1/admin/users/bob/impersonate",
            &a.root,
            json!({"reason": "ticket 21"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let token = format!("Bearer {}", v["token"].as_str().unwrap());
    let (s, me) = b.get("/v1/session", &token).await;
    assert_eq!((s, me["account"].as_str()), (200, Some("bob")), "{me}");
    b.stop().await;
    a.stop().await;
}

pub(crate) async fn a_transferred_app_takes_its_algorithms_along(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let erin = app.make_user("erin", false).await;
    app.make_org("acme", &alice).await;
    app.make_org("beta", &alice).await;
    app.add_member("acme", "bob", "contributor").await;
    app.add_member("beta", "bob", "contributor").await;
    let (s, b) = app
        .put(
            "/v1/organizations/beta",
            &alice,
            json!({"require_approval": false}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // bob's app "sketch" holds "echo"; "solo" is outside any app.
    let (s, b) = app
        .post("/v1/apps/bob", &bob, json!({"name": "sketch"}))
        .await;
    assert_eq!(s, 201, "{b}");
    let mut body = create_body("echo");
    body["app"] = json!("sketch");
    let (s, b) = app.post("/v1/algorithms/bob", &bob, body).await;
    assert_eq!(s, 200, "{b}");
    create(&app, &bob, "bob", "solo").await;
    compile(&app, &bob, "bob/echo").await;
    let (s, v) = publish(&app, &bob, "bob/echo", "minor", "public").await;
    assert_eq!(
        (s, v["version_info"]["status"].as_str()),
        (200, Some("published")),
        "{v}"
    );
    let (s, r) = call(&app, &erin, "bob/echo", Some("text/plain"), b"before").await;
    assert_eq!(s, 200, "{r}");
    let before = r["request_id"].as_str().unwrap().to_string();
    app.hub().metering.settle_usage().await.unwrap();
    let echo_id = app
        .hub()
        .store
        .get_usage_record(&before)
        .await
        .unwrap()
        .expect("the call is on record")
        .algorithm_id
        .expect("with its algorithm");

    // beta already has an "Echo": refused whole, with a 409 naming it.
    create(&app, &alice, "beta", "Echo").await;
    let (s, b) = app
        .post("/v1/apps/bob/sketch/transfer", &bob, json!({"to": "beta"}))
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "name_taken"), "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains("echo"),
        "{b}"
    );
    let (s, _) = app.get("/v1/apps/bob/sketch", &bob).await;
    assert_eq!(s, 200, "the app did not move");
    let (s, _) = call(&app, &erin, "bob/echo", Some("text/plain"), b"x").await;
    assert_eq!(s, 200, "nor did its algorithm");

    // Into acme (which requires approval, the default).
    let (s, moved) = app
        .post("/v1/apps/bob/sketch/transfer", &bob, json!({"to": "acme"}))
        .await;
    assert_eq!((s, moved["owner"].as_str()), (200, Some("acme")), "{moved}");
    let (s, g) = app.get("/v1/algorithms/acme/echo", &alice).await;
    assert_eq!((s, g["owner"].as_str()), (200, Some("acme")), "{g}");
    let (s, b) = app.get("/v1/algorithms/bob/echo", &bob).await;
    assert_eq!((s, error_reason(&b).as_str()), (404, "algorithm_not_found"));
    let (s, b) = call(&app, &erin, "bob/echo", Some("text/plain"), b"x").await;
    assert_eq!(
        (s, error_reason(&b).as_str()),
        (404, "algorithm_not_found"),
        "old path"
    );
    let (s, _) = app.get("/v1/algorithms/bob/solo", &bob).await;
    assert_eq!(s, 200, "algorithms outside the app stay");
    // Same algorithm id: its usage history stays with it.
    assert_eq!(
        app.hub()
            .store
            .get_algorithm(
                app.hub()
                    .store
                    .get_account_by_name("acme")
                    .await
                    .unwrap()
                    .id,
                "echo"
            )
            .await
            .unwrap()
            .id,
        echo_id
    );
    let history = app
        .hub()
        .store
        .get_usage_record(&before)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history.algorithm_id, Some(echo_id));

    // Its published version waits for acme's approval, as a publish there would.
    let (s, r) = call(&app, &erin, "acme/echo", Some("text/plain"), b"x").await;
    assert_eq!(s, 404, "not live before approval: {r}");
    let (s, p) = app
        .get("/v1/organizations/acme/pending-versions", &alice)
        .await;
    assert_eq!((s, p[0]["version"].as_str()), (200, Some("0.1.0")), "{p}");
    let (s, d) = app
        .post(
            "/v1/algorithms/acme/echo/versions/0.1.0/approve",
            &alice,
            json!({"reason": "reviewed"}),
        )
        .await;
    assert_eq!(s, 200, "{d}");
    let (s, r) = call(&app, &erin, "acme/echo", Some("text/plain"), b"after").await;
    assert_eq!((s, r["result"].as_str()), (200, Some("after")), "{r}");
    let after = r["request_id"].as_str().unwrap();
    app.hub().metering.settle_usage().await.unwrap();
    let record = app
        .hub()
        .store
        .get_usage_record(after)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.algorithm_id, Some(echo_id));

    // On the audit trail with the transfer, naming who moved it.
    let records = audit_records(&app, "algorithm.transferred", 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        (
            records[0]["actor"].as_str(),
            records[0]["target"].as_str(),
            records[0]["detail"]["name"].as_str()
        ),
        (
            Some("bob"),
            Some(format!("algorithm:{echo_id}").as_str()),
            Some("echo")
        )
    );
    let records = audit_records(&app, "app.transferred", 1).await;
    assert_eq!(records[0]["detail"]["algorithms"], json!([echo_id]));

    // Into an org that does not require approval, published versions stay live.
    app.post("/v1/apps/bob", &bob, json!({"name": "tools"}))
        .await;
    let mut body = create_body("calc");
    body["app"] = json!("tools");
    let (s, b) = app.post("/v1/algorithms/bob", &bob, body).await;
    assert_eq!(s, 200, "{b}");
    compile(&app, &bob, "bob/calc").await;
    publish(&app, &bob, "bob/calc", "minor", "public").await;
    let (s, b) = app
        .post("/v1/apps/bob/tools/transfer", &bob, json!({"to": "beta"}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, r) = call(&app, &erin, "beta/calc", Some("text/plain"), b"live").await;
    assert_eq!((s, r["result"].as_str()), (200, Some("live")), "{r}");
    app.stop().await;
}
