//! Data API access during a call: an `http` algorithm uses the token it is
//! handed (`X-Algohub-Api-Key`), a `wasm` one the `algohub.data_*` imports. `.my` is the caller's account, or
//! the owner's in a sudo call; `my_algos` collections are readable by the
//! owner's algorithms only; the token carries only data scopes the caller had,
//! and is good only while its call runs.

use crate::algorithms::{compile, create, publish, upload};
use crate::governance::{account_id, published_upstream};
use crate::support::{Db, TestApp, error_reason};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An upstream algorithm that uses the data API while it runs. Its input is
/// `{"api": base, "requests": [{"method", "path", "body"?}], "hold"?: n}`
/// (paths under `/v1/data/`); it answers `[{"status", "body"}]`, after
/// `release` reaches `n` when the input says `hold`, and keeps every call
/// token it was handed, in order.
pub(crate) struct Agent {
    pub(crate) base: String,
    tokens: Arc<Mutex<Vec<String>>>,
    release: tokio::sync::watch::Sender<u64>,
    holds: std::sync::atomic::AtomicU64,
}

pub(crate) async fn data_agent() -> Agent {
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::post;
    type Shared = (Arc<Mutex<Vec<String>>>, tokio::sync::watch::Sender<u64>);
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let release = tokio::sync::watch::Sender::new(0);
    let app = axum::Router::new()
        .route(
            "/agent",
            post(
                |State((seen, release)): State<Shared>,
                 headers: HeaderMap,
                 axum::Json(input): axum::Json<Value>| async move {
                    let token = headers
                        .get("x-algohub-api-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    seen.lock().unwrap().push(token.clone());
                    let client = reqwest::Client::new();
                    let mut out = Vec::new();
                    for r in input["requests"].as_array().into_iter().flatten() {
                        let method = Method::from_bytes(r["method"].as_str().unwrap().as_bytes());
                        let url = format!(
                            "{}/v1/data/{}",
                            input["api"].as_str().unwrap(),
                            r["path"].as_str().unwrap()
                        );
                        let resp = client
                            .request(method.unwrap(), url)
                            .header("Authorization", format!("Simple {token}"))
                            .body(r["body"].as_str().unwrap_or_default().to_string())
                            .send()
                            .await
                            .unwrap();
                        let status = resp.status().as_u16();
                        out.push(json!({"status": status, "body": resp.text().await.unwrap()}));
                    }
                    if let Some(n) = input["hold"].as_u64() {
                        let _ = release.subscribe().wait_for(|r| *r >= n).await;
                    }
                    axum::Json(Value::Array(out))
                },
            ),
        )
        .with_state((tokens.clone(), release.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Agent {
        base: format!("http://{addr}"),
        tokens,
        release,
        holds: Default::default(),
    }
}

impl Agent {
    /// The input of a call held until `release` reaches the number returned.
    fn held_input(&self, app: &TestApp) -> (Value, u64) {
        let n = self
            .holds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        (json!({"api": app.base, "requests": [], "hold": n}), n)
    }

    /// The token of the call handed one after the first `before` (as an
    /// `Authorization` value), once the agent has it.
    async fn token_after(&self, before: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let token = self.tokens.lock().unwrap().get(before).cloned();
            if let Some(t) = token {
                return format!("Simple {t}");
            }
            assert!(Instant::now() < deadline, "the agent was never called");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Calls `alice/agent` as `key` (with `query`) and runs `during` with the
    /// call's token while the call is held open; then lets the call answer.
    /// Returns the call's token and what `during` returned.
    pub(crate) async fn during_call<T>(
        &self,
        app: &TestApp,
        key: &str,
        query: &str,
        during: impl AsyncFnOnce(&str) -> T,
    ) -> (String, T) {
        let before = self.tokens.lock().unwrap().len();
        let (input, n) = self.held_input(app);
        let call = async {
            let (s, r) = app
                .send_json(
                    &format!("/v1/algo/alice/agent{query}"),
                    key,
                    Some("application/json"),
                    input.to_string(),
                )
                .await;
            assert_eq!((s, r.get("error")), (200, None), "{r}");
        };
        let checks = async {
            let token = self.token_after(before).await;
            let out = during(&token).await;
            self.release.send_replace(n);
            (token, out)
        };
        tokio::join!(call, checks).1
    }
}

/// Waits (up to 5 s: on a shared database the call's slot is freed by a
/// batch) until `token` is refused as a call token whose call has ended.
async fn refused_once_ended(app: &TestApp, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, r) = app.get("/v1/data/.my/notes/hello.txt", token).await;
        if s == 401 {
            assert_eq!(error_reason(&r), "invalid_key", "{r}");
            let message = r["error"]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("ended call token"), "{r}");
            return;
        }
        assert_eq!(s, 200, "{r}");
        assert!(
            Instant::now() < deadline,
            "the token outlived its call: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn put_file(app: &TestApp, key: &str, path: &str, body: &str) {
    let (s, _, b) = app
        .send_raw(Method::PUT, path, key, None, body.as_bytes().to_vec())
        .await;
    assert_eq!(s, 200, "PUT {path}: {}", String::from_utf8_lossy(&b));
}

async fn collection(app: &TestApp, key: &str, body: Value) {
    let (s, r) = app.post("/v1/data/.my", key, body).await;
    assert_eq!(s, 200, "{r}");
}

/// Calls `alice/agent` (with `query`) as `key`, asking it to make `requests`;
/// returns the (status, body) of each.
async fn agent_call(app: &TestApp, key: &str, query: &str, requests: Value) -> Vec<(u64, String)> {
    let input = json!({"api": app.base, "requests": requests}).to_string();
    let (s, r) = app
        .send_json(
            &format!("/v1/algo/alice/agent{query}"),
            key,
            Some("application/json"),
            input,
        )
        .await;
    assert_eq!((s, r.get("error")), (200, None), "{r}");
    r["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["status"].as_u64().unwrap(),
                x["body"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn get(path: &str) -> Value {
    json!({"method": "GET", "path": path})
}

/// alice (with a private collection `notes` and a `my_algos` one, `shared`),
/// bob (with his own `notes`) and sue, a sudo user; their keys.
pub(crate) async fn people_and_data(app: &TestApp) -> (String, String, String) {
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let sue = app.make_user("sue", false).await;
    let sue_id = account_id(app, "sue").await;
    app.hub()
        .store
        .set_user_flags(
            &algohub_core::audit::AuditContext::cli(),
            None,
            sue_id,
            None,
            Some(true),
        )
        .await
        .map(algohub_core::store::Written::unindexed)
        .unwrap();
    app.hub().index.sync().await.unwrap();
    // alice: a private collection, and one her algorithms may read (the
    // default ACL, my_algos); bob: his own notes.
    collection(app, &alice, json!({"name": "notes", "acl": {"read": []}})).await;
    put_file(app, &alice, "/v1/data/.my/notes/hello.txt", "alice's notes").await;
    collection(app, &alice, json!({"name": "shared"})).await;
    put_file(app, &alice, "/v1/data/.my/shared/model.txt", "weights").await;
    collection(app, &bob, json!({"name": "notes"})).await;
    put_file(app, &bob, "/v1/data/.my/notes/hello.txt", "bob's notes").await;
    (alice, bob, sue)
}

pub(crate) async fn algorithms_use_the_data_api_with_their_call_token(db: Db) {
    let app = TestApp::new(&db).await;
    let agent = data_agent().await;
    let (alice, bob, sue) = people_and_data(&app).await;
    let sue_id = account_id(&app, "sue").await;
    published_upstream(
        &app,
        &alice,
        "alice",
        "agent",
        &format!("{}/agent", agent.base),
    )
    .await;

    // bob's call: `.my` is bob; alice's my_algos collection is readable by
    // her algorithm, her private one is not; the algorithm writes bob's data.
    let got = agent_call(
        &app,
        &bob,
        "",
        json!([
            get(".my/notes/hello.txt"),
            get("alice/shared/model.txt"),
            get("alice/notes/hello.txt"),
            {"method": "PUT", "path": ".my/notes/out.txt", "body": "from the algorithm"},
        ]),
    )
    .await;
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        [200, 200, 404, 200],
        "{got:?}"
    );
    assert_eq!(
        (got[0].1.as_str(), got[1].1.as_str()),
        ("bob's notes", "weights")
    );
    // With `?data=none` the upstream gets no call token: every data request
    // it makes is unauthenticated.
    let got = agent_call(
        &app,
        &bob,
        "?data=none",
        json!([get(".my/notes/hello.txt")]),
    )
    .await;
    assert_eq!(got[0].0, 401, "{got:?}");
    let (s, _, b) = app
        .send_raw(
            Method::GET,
            "/v1/data/.my/notes/out.txt",
            &bob,
            None,
            vec![],
        )
        .await;
    assert_eq!((s, b.as_slice()), (200, &b"from the algorithm"[..]));
    // bob himself may not read alice's my_algos collection.
    let (s, _) = app.get("/v1/data/alice/shared/model.txt", &bob).await;
    assert_eq!(s, 404);

    // A sudo call acts as the owner: `.my` is alice.
    let got = agent_call(
        &app,
        &sue,
        "?sudo=true",
        json!([get(".my/notes/hello.txt")]),
    )
    .await;
    assert_eq!(got, [(200, "alice's notes".to_string())]);

    // The token is for the data API only, and only as issued, while its
    // call runs; once the call has returned it is refused.
    let (bobs, ()) = agent
        .during_call(&app, &bob, "", async |bobs: &str| {
            let (s, _, b) = app
                .send_raw(
                    Method::GET,
                    "/v1/data/.my/notes/hello.txt",
                    bobs,
                    None,
                    vec![],
                )
                .await;
            assert_eq!((s, b.as_slice()), (200, &b"bob's notes"[..]));
            let (s, r) = app
                .send_json("/v1/algo/alice/agent", bobs, Some("application/json"), "{}")
                .await;
            assert_eq!(s, 403, "no calls with a call token: {r}");
            let (s, r) = app.get("/v1/users/bob/keys", bobs).await;
            assert_eq!(s, 403, "no management with a call token: {r}");
            let (s, r) = app.get("/v1/session", bobs).await;
            assert_eq!(
                (s, r["credential"].as_str()),
                (200, Some("call_token")),
                "{r}"
            );
            let (s, r) = app.delete("/v1/session", bobs).await;
            assert_eq!(
                (s, error_reason(&r)),
                (400, "not_a_session".to_string()),
                "{r}"
            );
            let tampered = bobs.replacen("ahc1.", "ahc1.00", 1);
            let (s, r) = app.get("/v1/data/.my/notes/hello.txt", &tampered).await;
            assert_eq!(
                (s, error_reason(&r)),
                (401, "invalid_key".to_string()),
                "{r}"
            );
        })
        .await;
    refused_once_ended(&app, &bobs).await;

    // A caller whose key has no data scope hands the algorithm no data access.
    let perms = json!({"allow_algo": true, "allow_data": false, "allow_data_write": false});
    let call_only = new_key(
        &app,
        "bob",
        &bob,
        json!({"key_label": "calls", "permissions": perms}),
    )
    .await["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let got = agent_call(&app, &call_only, "", json!([get(".my/notes/hello.txt")])).await;
    assert_eq!(got[0].0, 404, "{got:?}");
    // Nor does a sudo user's: a sudo call lends the owner's account, not
    // scopes the sudo user's key lacks.
    let sue_call_only = new_key(
        &app,
        "sue",
        &sue,
        json!({"key_label": "calls", "permissions": perms}),
    )
    .await["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let put = json!({"method": "PUT", "path": ".my/notes/hello.txt", "body": "overwritten"});
    let got = agent_call(&app, &sue_call_only, "?sudo=true", json!([put])).await;
    assert_eq!(got[0].0, 404, "{got:?}");
    let (_, _, b) = app
        .send_raw(
            Method::GET,
            "/v1/data/.my/notes/hello.txt",
            &alice,
            None,
            vec![],
        )
        .await;
    assert_eq!(b, b"alice's notes");

    // A token ends with the credential its call was made with, even while
    // the call runs: a revoked key, or a sudo user who lost the role.
    let k = new_key(&app, "bob", &bob, json!({"key_label": "all"})).await;
    let revocable = k["api_key"].as_str().unwrap().to_string();
    agent
        .during_call(&app, &revocable, "", async |from_key: &str| {
            let (s, _) = app.get("/v1/data/.my/notes/hello.txt", from_key).await;
            assert_eq!(s, 200);
            let (s, r) = app
                .delete(&format!("/v1/keys/{}", k["id"].as_str().unwrap()), &bob)
                .await;
            assert_eq!(s, 200, "{r}");
            let (s, r) = app.get("/v1/data/.my/notes/hello.txt", from_key).await;
            assert_eq!(
                (s, error_reason(&r)),
                (401, "invalid_key".to_string()),
                "{r}"
            );
        })
        .await;
    agent
        .during_call(&app, &sue, "?sudo=true", async |from_sudo: &str| {
            let (s, _) = app.get("/v1/data/.my/notes/hello.txt", from_sudo).await;
            assert_eq!(s, 200);
            app.hub()
                .store
                .set_user_flags(
                    &algohub_core::audit::AuditContext::cli(),
                    None,
                    sue_id,
                    None,
                    Some(false),
                )
                .await
                .map(algohub_core::store::Written::unindexed)
                .unwrap();
            app.hub().index.sync().await.unwrap();
            let (s, r) = app.get("/v1/data/.my/notes/hello.txt", from_sudo).await;
            assert_eq!(
                (s, error_reason(&r)),
                (401, "invalid_key".to_string()),
                "{r}"
            );
        })
        .await;
    app.hub()
        .store
        .set_user_flags(
            &algohub_core::audit::AuditContext::cli(),
            None,
            sue_id,
            None,
            Some(true),
        )
        .await
        .map(algohub_core::store::Written::unindexed)
        .unwrap();
    app.hub().index.sync().await.unwrap();

    // A call that runs out of time ends its token too.
    let before = agent.tokens.lock().unwrap().len();
    let (input, n) = agent.held_input(&app);
    let (s, r) = app
        .send_json(
            "/v1/algo/alice/agent?timeout=0.5",
            &bob,
            Some("application/json"),
            input.to_string(),
        )
        .await;
    assert_eq!(
        (s, r["error"]["error_type"].as_str()),
        (200, Some("AlgorithmTimeoutError")),
        "{r}"
    );
    let timed_out = agent.token_after(before).await;
    refused_once_ended(&app, &timed_out).await;
    agent.release.send_replace(n);
}

/// A wasm algorithm (examples/readfile.wat) reads data through the
/// `algohub.data_*` imports, acting as the call does.
pub(crate) async fn wasm_algorithms_read_data_as_the_call_acts(db: Db) {
    let app = TestApp::new(&db).await;
    let (alice, bob, sue) = people_and_data(&app).await;
    publish_readfile(&app, &alice, "alice").await;
    let read = |key: &str, query: &str, path: &str| {
        let (key, url, path) = (
            key.to_string(),
            format!("/v1/algo/alice/reader{query}"),
            path.to_string(),
        );
        let app = &app;
        async move {
            let (s, r) = app.send_json(&url, &key, Some("text/plain"), path).await;
            assert_eq!(s, 200, "{r}");
            r
        }
    };
    let r = read(&bob, "", "data://.my/notes/hello.txt\n").await;
    assert_eq!(r["result"], "bob's notes", "{r}");
    let r = read(&bob, "", "alice/shared/model.txt").await;
    assert_eq!(r["result"], "weights", "{r}");
    let r = read(&bob, "", ".my/notes/missing.txt").await;
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("data_not_found: "), "{r}");
    let r = read(&bob, "", "alice/notes/hello.txt").await;
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("data_not_found"),
        "{r}"
    );
    let r = read(&sue, "?sudo=true", ".my/notes/hello.txt").await;
    assert_eq!(r["result"], "alice's notes", "{r}");
    // `?data=none`: the guest has no data API access for this call.
    let r = read(&bob, "?data=none", ".my/notes/hello.txt").await;
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no data API access"), "{r}");
    let (s, r) = app
        .send_json(
            "/v1/algo/alice/reader?data=all",
            &bob,
            Some("text/plain"),
            ".my/notes/hello.txt",
        )
        .await;
    assert_eq!(
        (s, error_reason(&r).as_str()),
        (400, "invalid_input"),
        "{r}"
    );

    // An org-owned algorithm in a sudo call acts as the org: `.my` is acme.
    app.make_org("acme", &alice).await;
    let (s, v) = app
        .put(
            "/v1/organizations/acme",
            &alice,
            json!({"require_approval": false}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app
        .post(
            "/v1/data/acme",
            &alice,
            json!({"name": "notes", "acl": {"read": []}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    put_file(
        &app,
        &alice,
        "/v1/data/acme/notes/hello.txt",
        "acme's notes",
    )
    .await;
    publish_readfile(&app, &alice, "acme").await;
    let (s, r) = app
        .send_json(
            "/v1/algo/acme/reader?sudo=true",
            &sue,
            Some("text/plain"),
            ".my/notes/hello.txt",
        )
        .await;
    assert_eq!(
        (s, r["result"].as_str()),
        (200, Some("acme's notes")),
        "{r}"
    );
    // Called plainly by bob, `.my` is bob.
    let (s, r) = app
        .send_json(
            "/v1/algo/acme/reader",
            &bob,
            Some("text/plain"),
            ".my/notes/hello.txt",
        )
        .await;
    assert_eq!((s, r["result"].as_str()), (200, Some("bob's notes")), "{r}");
}

const READFILE_WAT: &[u8] = include_bytes!("../../../../examples/readfile.wat");

/// Publishes `owner/reader` (examples/readfile.wat), public, as `key`.
pub(crate) async fn publish_readfile(app: &TestApp, key: &str, owner: &str) {
    let algo = format!("{owner}/reader");
    create(app, key, owner, "reader").await;
    let (s, b) = upload(app, key, &algo, "text/plain", READFILE_WAT).await;
    assert_eq!(s, 200, "{b}");
    compile(app, key, &algo).await;
    let (s, v) = publish(app, key, &algo, "minor", "public").await;
    assert_eq!(s, 200, "{v}");
}

/// Creates a key for `user` (as `key`) with `body`; the answer.
async fn new_key(app: &TestApp, user: &str, key: &str, body: Value) -> Value {
    let (s, k) = app.post(&format!("/v1/users/{user}/keys"), key, body).await;
    assert_eq!(s, 200, "{k}");
    k
}
