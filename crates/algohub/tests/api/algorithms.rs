//! Algorithms: management, builds, versions and approval over the real
//! server (calls through the runtimes are in `calls.rs`), and the helpers
//! both use.

use crate::support::{Db, TestApp, error_reason};
use reqwest::Method;
use serde_json::{Value, json};

pub(crate) fn create_body(name: &str) -> Value {
    json!({
        "name": name,
        "details": {"label": "Echo", "summary": "returns its input"},
        "settings": {"source_visibility": "open", "license": "apache2", "network_access": "isolated",
                     "pipeline_enabled": false, "royalty_microcredits": 5, "language": "rust", "environment": "cpu",
                     "package_set": "wasm32-wasi"}
    })
}

pub(crate) async fn create(app: &TestApp, key: &str, owner: &str, name: &str) -> Value {
    let (s, b) = app
        .post(&format!("/v1/algorithms/{owner}"), key, create_body(name))
        .await;
    assert_eq!(s, 200, "create {owner}/{name}: {b}");
    b
}

pub(crate) async fn compile(app: &TestApp, key: &str, algo: &str) -> Value {
    let (s, b) = app
        .post(&format!("/v1/algorithms/{algo}/compile"), key, json!({}))
        .await;
    assert_eq!(s, 200, "compile {algo}: {b}");
    b
}

pub(crate) async fn publish(
    app: &TestApp,
    key: &str,
    algo: &str,
    version_type: &str,
    callability: &str,
) -> (u16, Value) {
    app.post(
        &format!("/v1/algorithms/{algo}/versions"),
        key,
        json!({"details": {}, "settings": {"algorithm_callability": callability}, "version_info": {"version_type": version_type, "release_notes": "notes"}, "source": {}, "scmsCredentials": {}}),
    )
    .await
}

pub(crate) async fn upload(
    app: &TestApp,
    key: &str,
    algo: &str,
    ct: &str,
    body: &[u8],
) -> (u16, Value) {
    let (s, _, b) = app
        .send_raw(
            Method::PUT,
            &format!("/v1/algorithms/{algo}/artifact"),
            key,
            Some(ct),
            body.to_vec(),
        )
        .await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// Uploads an http upstream definition, compiles it and returns the build hash.
pub(crate) async fn build_upstream(app: &TestApp, key: &str, algo: &str, def: Value) -> String {
    let (s, b) = upload(
        app,
        key,
        algo,
        "application/json",
        def.to_string().as_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let c = compile(app, key, algo).await;
    c["version_info"]["git_hash"].as_str().unwrap().to_string()
}

pub(crate) async fn call(
    app: &TestApp,
    key: &str,
    path: &str,
    ct: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    app.send_json(&format!("/v1/algo/{path}"), key, ct, body.to_vec())
        .await
}

pub(crate) async fn create_compile_publish_and_versions(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let a = create(&app, &alice, "alice", "echo").await;
    let id = a["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(a["settings"]["royalty_microcredits"], 5);
    assert_eq!(a["settings"]["algorithm_callability"], "private");
    assert!(a.get("error").is_none());
    // Settings round-trip through get, by name and by id.
    let (s, g) = app.get("/v1/algorithms/alice/echo", &alice).await;
    assert_eq!(s, 200);
    assert_eq!(g["settings"], a["settings"]);
    assert_eq!(g["details"]["summary"], "returns its input");
    assert_eq!(g["version_info"]["insights_enabled"], false);
    let (s, g2) = app.get(&format!("/v1/algorithms/{id}"), &alice).await;
    assert_eq!((s, g2["name"].as_str()), (200, Some("echo")));
    // Update; unknown settings and a taken name are refused.
    let (s, u) = app
        .put(
            "/v1/algorithms/alice/echo",
            &alice,
            json!({"details": {"label": "Echo 2"}, "settings": {"license": "mit"}}),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(
        (
            u["details"]["label"].as_str(),
            u["settings"]["license"].as_str()
        ),
        (Some("Echo 2"), Some("mit"))
    );
    let (s, b) = app
        .put(
            "/v1/algorithms/alice/echo",
            &alice,
            json!({"settings": {"colour": "red"}}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = app
        .post("/v1/algorithms/alice", &alice, create_body("echo"))
        .await;
    assert_eq!(s, 409, "{b}");
    let (s, b) = app
        .post(
            "/v1/algorithms/alice",
            &alice,
            json!({"name": "bad name", "details": {"label": "x"}, "settings": {}}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (400, "invalid_name"));
    let (s, b) = app
        .post(
            "/v1/algorithms/alice",
            &alice,
            json!({"name": "nosettings", "details": {"label": "x"}}),
        )
        .await;
    assert_eq!(s, 400, "{b}");

    // Nothing compiled yet: publish is refused.
    let (s, _) = publish(&app, &alice, "alice/echo", "minor", "public").await;
    assert!((400..500).contains(&s));
    let c1 = compile(&app, &alice, "alice/echo").await;
    let hash = c1["version_info"]["git_hash"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 40);
    assert_eq!(c1["build"]["commit_sha"], hash.as_str());
    assert_eq!(c1["compilation"]["successful"], true);
    let c2 = compile(&app, &alice, "alice/echo").await;
    assert_eq!(
        c2["version_info"]["git_hash"],
        hash.as_str(),
        "same artifact, same hash"
    );
    assert_ne!(
        c2["build"]["build_id"], c1["build"]["build_id"],
        "but a new build"
    );

    let (s, v) = publish(&app, &alice, "alice/echo", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version_info"]["semantic_version"], "0.1.0");
    assert_eq!(v["version_info"]["status"], "published");
    // Publishing again without a compile is refused (and the client's retry too).
    for _ in 0..2 {
        let (s, b) = publish(&app, &alice, "alice/echo", "minor", "public").await;
        assert_eq!(
            (s, error_reason(&b).as_str()),
            (409, "nothing_to_publish"),
            "{b}"
        );
    }
    compile(&app, &alice, "alice/echo").await;
    let (_, v) = publish(&app, &alice, "alice/echo", "major", "public").await;
    assert_eq!(v["version_info"]["semantic_version"], "1.0.0");
    compile(&app, &alice, "alice/echo").await;
    let (_, v) = publish(&app, &alice, "alice/echo", "patch", "private").await;
    assert_eq!(v["version_info"]["semantic_version"], "1.0.1");
    compile(&app, &alice, "alice/echo").await;
    let (s, b) = publish(&app, &alice, "alice/echo", "giant", "public").await;
    assert_eq!(s, 400, "{b}");

    // Version lists and filters.
    let (_, all) = app
        .get("/v1/algorithms/alice/echo/versions?limit=50", &alice)
        .await;
    assert_eq!(all["results"].as_array().unwrap().len(), 5, "{all}");
    let (_, published) = app
        .get(
            "/v1/algorithms/alice/echo/versions?limit=50&published=True",
            &alice,
        )
        .await;
    assert_eq!(published["results"].as_array().unwrap().len(), 3);
    let (_, public) = app
        .get(
            "/v1/algorithms/alice/echo/versions?limit=50&callable=true",
            &alice,
        )
        .await;
    assert_eq!(public["results"].as_array().unwrap().len(), 2);
    let (_, private) = app
        .get(
            "/v1/algorithms/alice/echo/versions?limit=50&callable=false",
            &alice,
        )
        .await;
    assert_eq!(
        private["results"].as_array().unwrap().len(),
        3,
        "the private version and the unpublished builds"
    );
    let (_, page) = app
        .get("/v1/algorithms/alice/echo/versions?limit=1", &alice)
        .await;
    assert_eq!(page["marker"], "1");
    let (s, one) = app
        .get(
            &format!("/v1/algorithms/alice/echo/versions/{hash}"),
            &alice,
        )
        .await;
    assert_eq!(
        (s, one["version_info"]["git_hash"].as_str()),
        (200, Some(hash.as_str()))
    );
    // Builds.
    let (_, builds) = app
        .get("/v1/algorithms/alice/echo/builds?limit=56", &alice)
        .await;
    let builds = builds["results"].as_array().unwrap().clone();
    assert_eq!(builds.len(), 5);
    let bid = builds[0]["build_id"].as_str().unwrap();
    let (s, b) = app
        .get(&format!("/v1/algorithms/alice/echo/builds/{bid}"), &alice)
        .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("succeeded")));
    let (s, l) = app
        .get(
            &format!("/v1/algorithms/alice/echo/builds/{bid}/logs"),
            &alice,
        )
        .await;
    assert_eq!(s, 200);
    assert!(l["logs"].as_str().is_some());

    // The by-id routes (reference §1.5) reach the same algorithm.
    let (s, u) = app
        .put(
            &format!("/v1/algorithms/{id}"),
            &alice,
            json!({"details": {"tagline": "by id"}}),
        )
        .await;
    assert_eq!(
        (s, u["details"]["tagline"].as_str()),
        (200, Some("by id")),
        "{u}"
    );
    let (s, c) = app
        .post(&format!("/v1/algorithms/{id}/compile"), &alice, json!("{}"))
        .await;
    assert_eq!(s, 200, "{c}");
    let (s, v) = app
        .post(
            &format!("/v1/algorithms/{id}/versions"),
            &alice,
            json!({"version_info": {"version_type": "revision"}}),
        )
        .await;
    assert_eq!(
        (s, v["version_info"]["semantic_version"].as_str()),
        (200, Some("1.0.2")),
        "{v}"
    );
    let (s, l) = app
        .get(&format!("/v1/algorithms/{id}/versions?limit=50"), &alice)
        .await;
    assert_eq!(
        (s, l["results"].as_array().map(Vec::len)),
        (200, Some(6)),
        "{l}"
    );
    let (s, b) = app
        .get(&format!("/v1/algorithms/{id}/builds"), &alice)
        .await;
    assert_eq!(s, 200);
    let bid = b["results"][0]["build_id"].as_str().unwrap().to_string();
    let (s, _) = app
        .get(&format!("/v1/algorithms/{id}/builds/{bid}"), &alice)
        .await;
    assert_eq!(s, 200);
    let (s, l) = app
        .get(&format!("/v1/algorithms/{id}/builds/{bid}/logs"), &alice)
        .await;
    assert_eq!((s, l["logs"].is_string()), (200, true));
    let (s, b) = app
        .post("/v1/algorithms/alice", &alice, create_body("versions"))
        .await;
    assert_eq!(
        (s, error_reason(&b).as_str()),
        (400, "invalid_name"),
        "reserved names"
    );

    // Outsiders: a private algorithm does not exist for them.
    let erin = app.make_user("erin", false).await;
    let (s, b) = app.get("/v1/algorithms/alice/echo/versions", &erin).await;
    assert!(s == 404 || s == 403, "{s} {b}");
    let (s, b) = app.get("/v1/algorithms/alice/nosuch", &alice).await;
    assert_eq!(s, 404);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("No such algorithm")
    );
    // Delete: gone, and the name stays taken.
    let (s, _) = app.delete("/v1/algorithms/alice/echo", &erin).await;
    assert!((400..500).contains(&s));
    let (s, _) = app.delete("/v1/algorithms/alice/echo", &alice).await;
    assert_eq!(s, 204);
    let (s, _) = app.get("/v1/algorithms/alice/echo", &alice).await;
    assert_eq!(s, 404);
    app.stop().await;
}

pub(crate) async fn account_and_org_algorithm_lists(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let erin = app.make_user("erin", false).await;
    app.make_org("acme", &alice).await;
    create(&app, &alice, "acme", "model").await;
    create(&app, &alice, "alice", "mine").await;
    let names = |v: &Value| -> Vec<String> {
        let list = v.as_array().expect("a list");
        list.iter()
            .map(|a| format!("{}/{}", a["username"], a["algoname"]).replace('"', ""))
            .collect()
    };
    let (s, v) = app
        .get("/v1/organizations/acme/utility-algorithms", &alice)
        .await;
    assert_eq!((s, names(&v)), (200, vec!["acme/model".to_string()]), "{v}");
    assert_eq!(v[0]["id"].as_str().map(str::len), Some(36), "{v}");
    // The account route lists the same; an outsider sees no private algorithm.
    let (_, same) = app.get("/v1/users/acme/algorithms", &alice).await;
    assert_eq!(same, v);
    let (s, v) = app
        .get("/v1/organizations/acme/utility-algorithms", &erin)
        .await;
    assert_eq!((s, names(&v)), (200, Vec::<String>::new()), "{v}");
    // A user's name, or no account's, is not an organization.
    for org in ["alice", "nosuch"] {
        let (s, v) = app
            .get(
                &format!("/v1/organizations/{org}/utility-algorithms"),
                &alice,
            )
            .await;
        assert_eq!((s, error_reason(&v)), (404, "org_not_found".into()), "{v}");
    }
}

pub(crate) async fn org_versions_need_approval(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let carl = app.make_user("carl", false).await;
    let erin = app.make_user("erin", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "bob", "contributor").await;
    app.add_member("acme", "carl", "admin").await;
    create(&app, &bob, "acme", "model").await;
    let (s, b) = app
        .post("/v1/algorithms/acme", &erin, create_body("intruder"))
        .await;
    assert!((400..500).contains(&s), "{b}");
    compile(&app, &bob, "acme/model").await;
    let (s, v) = publish(&app, &bob, "acme/model", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version_info"]["status"], "pending");
    // Pending: not callable by outsiders; the author's side may try it.
    let (s, _) = call(&app, &erin, "acme/model", Some("text/plain"), b"x").await;
    assert_eq!(s, 404);
    let (s, r) = call(&app, &bob, "acme/model/0.1.0", Some("text/plain"), b"x").await;
    assert_eq!((s, r["result"].as_str()), (200, Some("x")), "{r}");
    // Admins see it; others do not.
    let (s, p) = app
        .get("/v1/organizations/acme/pending-versions", &alice)
        .await;
    assert_eq!(s, 200);
    assert_eq!(p[0]["version"], "0.1.0");
    let (s, _) = app
        .get("/v1/organizations/acme/pending-versions", &bob)
        .await;
    assert!((400..500).contains(&s));
    // The author cannot approve; rejecting needs a reason.
    let (s, _) = app
        .post(
            "/v1/algorithms/acme/model/versions/0.1.0/approve",
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, b) = app
        .post(
            "/v1/algorithms/acme/model/versions/0.1.0/reject",
            &alice,
            json!({"reason": " "}),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, d) = app
        .post(
            "/v1/algorithms/acme/model/versions/0.1.0/approve",
            &carl,
            json!({"reason": "looks good"}),
        )
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["status"], "published");
    assert!(d["approved_digest"].as_str().unwrap().len() == 64);
    let (s, _) = app
        .post(
            "/v1/algorithms/acme/model/versions/0.1.0/approve",
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(s, 409, "decided once");
    let (s, r) = call(&app, &erin, "acme/model", Some("text/plain"), b"now public").await;
    assert_eq!((s, r["result"].as_str()), (200, Some("now public")), "{r}");
    // Each version is approved on its own; a rejected one is never callable.
    compile(&app, &bob, "acme/model").await;
    let (_, v) = publish(&app, &bob, "acme/model", "minor", "public").await;
    assert_eq!(v["version_info"]["status"], "pending");
    let (s, d) = app
        .post(
            "/v1/algorithms/acme/model/versions/0.2.0/reject",
            &alice,
            json!({"reason": "no tests"}),
        )
        .await;
    assert_eq!(
        (s, d["status"].as_str(), d["reason"].as_str()),
        (200, Some("rejected"), Some("no tests"))
    );
    let (s, _) = call(&app, &bob, "acme/model/0.2.0", Some("text/plain"), b"x").await;
    assert_eq!(s, 404);
    let (_, r) = call(&app, &erin, "acme/model", Some("text/plain"), b"latest").await;
    assert_eq!(r["metadata"]["version"], "0.1.0");
    // An org key does not launder self-approval: a version published with it
    // counts as published by the key's creator.
    let (s, k) = app
        .post(
            "/v1/organizations/acme/keys",
            &alice,
            json!({"key_label": "ci", "scopes": ["management", "algo_call"]}),
        )
        .await;
    assert_eq!(s, 200, "{k}");
    let org_key = k["api_key"].as_str().unwrap().to_string();
    compile(&app, &org_key, "acme/model").await;
    let (s, v) = publish(&app, &org_key, "acme/model", "minor", "public").await;
    assert_eq!(
        (s, v["version_info"]["status"].as_str()),
        (200, Some("pending")),
        "{v}"
    );
    let (s, b) = app
        .post(
            "/v1/algorithms/acme/model/versions/0.3.0/approve",
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, error_reason(&b).as_str()),
        (403, "self_approval"),
        "{b}"
    );
    let (s, _) = app
        .post(
            "/v1/algorithms/acme/model/versions/0.3.0/approve",
            &carl,
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    // An outsider asking for a version that is not public learns nothing more
    // than for one that does not exist.
    compile(&app, &bob, "acme/model").await;
    publish(&app, &bob, "acme/model", "minor", "private").await;
    let (s1, r1) = call(&app, &erin, "acme/model/0.4.0", Some("text/plain"), b"x").await;
    let (s2, r2) = call(&app, &erin, "acme/model/9.9.9", Some("text/plain"), b"x").await;
    assert_eq!((s1, error_reason(&r1)), (s2, error_reason(&r2)));
    // The decisions went through the outbox, delivered as in-app notifications.
    let kinds: Vec<String> = app
        .hub()
        .store
        .list_outbox(false, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.kind)
        .collect();
    for k in [
        "notification.approval_requested",
        "notification.version_approved",
        "notification.version_rejected",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    app.stop().await;
}

/// Builds are read in pages of 1000: a hash older than the newest 1000 builds
/// still resolves, for calls and for the build listing.
pub(crate) async fn more_than_a_thousand_builds(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    create(&app, &alice, "alice", "busy").await;
    let hub = app.hub().clone();
    let me = algohub_core::RequestCtx::cli(hub.authenticator.authenticate_key(&alice).unwrap());
    let (s, b) = upload(
        &app,
        &alice,
        "alice/busy",
        "text/plain",
        include_bytes!("../../../../examples/fail.wat"),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let algo = hub
        .algorithms
        .get_algorithm(&me, "alice", "busy")
        .await
        .unwrap();
    let first = hub.algorithms.compile(&me, &algo).await.unwrap().commit_sha;
    let (s, b) = upload(
        &app,
        &alice,
        "alice/busy",
        "text/plain",
        include_bytes!("../../../../examples/echo.wat"),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let algo = hub
        .algorithms
        .get_algorithm(&me, "alice", "busy")
        .await
        .unwrap();
    for _ in 0..1001 {
        hub.algorithms.compile(&me, &algo).await.unwrap();
    }
    let (s, r) = call(
        &app,
        &alice,
        &format!("alice/busy/{first}"),
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!(
        (s, r["error"]["error_type"].as_str()),
        (200, Some("ValueError")),
        "the oldest build runs: {r}"
    );
    let (s, l) = app
        .get(
            "/v1/algorithms/alice/busy/builds?limit=5&marker=1000",
            &alice,
        )
        .await;
    assert_eq!(
        (s, l["results"].as_array().map(Vec::len)),
        (200, Some(2)),
        "{l}"
    );
    app.stop().await;
}
