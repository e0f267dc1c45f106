//! README promises that had no test of their own (continued from
//! `promises.rs`): running algorithms (wasm fuel and memory limits, http
//! upstreams kept from internal addresses) and governing them (authors'
//! self-approval, no email for a declined invitation).

use crate::algorithms::{call, compile, create, publish, upload};
use crate::governance::{gauged_upstream, published_upstream};
use crate::invitations::Outgoing;
use crate::support::{Db, TestApp, config_for, error_reason};
use serde_json::{Value, json};

/// A guest that loops for ever, burning `per_turn` fuel units a turn (each
/// `i32.const` costs one; `drop` and the loop itself cost none, and the
/// compiler folds the pairs away), so that it reaches the fuel of a call with
/// the default timeout (30 000 000 000 000 units) within moments.
fn fuel_burner(per_turn: usize) -> String {
    format!(
        "(module (memory (export \"memory\") 1)\n  (func (export \"_start\")\n    (loop $forever\n{}      (br $forever))))\n",
        "      (drop (i32.const 0))\n".repeat(per_turn)
    )
}

/// A guest that grows its memory by `pages` (64 KiB each) from one page and
/// then writes to the last byte it would then have: a guest that ignores a
/// failed `memory.grow` (-1) and uses the memory anyway, as a naive
/// allocator would.
fn memory_grower(pages: u32) -> String {
    let last = u64::from(pages + 1) * 65536 - 1;
    format!(
        "(module (memory (export \"memory\") 1)\n  (func (export \"_start\")\n    (drop (memory.grow (i32.const {pages})))\n    (i32.store8 (i32.const {last}) (i32.const 1))))\n"
    )
}

/// Uploads `wat` as a new build of `alice/limits` and returns its hash.
async fn build_wat(app: &TestApp, key: &str, wat: &str) -> String {
    let (s, b) = upload(app, key, "alice/limits", "text/plain", wat.as_bytes()).await;
    assert_eq!(s, 200, "{b}");
    let c = compile(app, key, "alice/limits").await;
    c["version_info"]["git_hash"].as_str().unwrap().to_string()
}

/// README line 5 and docs/guest-abi.md, Limits: wasm runs "with fuel,
/// memory and time limits"; a guest over its fuel (`wasm_fuel_per_sec` times
/// its timeout: 30 000 000 000 000 units for the default 300 s) or its linear
/// memory (256 MiB) fails with a `ResourceLimitError`, and neither affects
/// the server or other calls.
pub(crate) async fn wasm_fuel_and_memory_limits(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    create(&app, &alice, "alice", "limits").await;

    // Fuel: the loop never ends by itself; its fuel ends it, well before the
    // call's deadline (the default, 300 s).
    let hash = build_wat(&app, &alice, &fuel_burner(20_000)).await;
    let (s, r) = call(
        &app,
        &alice,
        &format!("alice/limits/{hash}"),
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!(s, 200, "an algorithm error is HTTP 200: {r}");
    assert_eq!(
        r["error"]["error_type"].as_str(),
        Some("ResourceLimitError"),
        "{r}"
    );
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("used up its fuel"), "{r}");
    assert!(r.get("result").is_none(), "{r}");
    // All of the budget of a call with the default timeout was used.
    let budget = algohub_core::services::DEFAULT_WASM_FUEL_PER_SEC * 300;
    assert_eq!(r["metadata"]["compute_units"].as_u64(), Some(budget), "{r}");
    // On record as a failed call, with that fuel.
    let rid = r["request_id"].as_str().unwrap();
    let (s, rec) = app
        .get(&format!("/v1/admin/usage/calls/{rid}"), &app.root)
        .await;
    assert_eq!(
        (
            s,
            rec["status"].as_str(),
            rec["error_code"].as_str(),
            rec["compute_units"].as_u64()
        ),
        (200, Some("error"), Some("ResourceLimitError"), Some(budget)),
        "{rec}"
    );

    // Memory: growing to exactly 256 MiB works...
    let hash = build_wat(&app, &alice, &memory_grower(4095)).await;
    let (s, r) = call(
        &app,
        &alice,
        &format!("alice/limits/{hash}"),
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!((s, r.get("error")), (200, None), "{r}");
    // ...one page more is refused, and the guest that goes on regardless
    // fails with the limit as the cause (not as a crash).
    let hash = build_wat(&app, &alice, &memory_grower(4096)).await;
    let (s, r) = call(
        &app,
        &alice,
        &format!("alice/limits/{hash}"),
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (
            r["error"]["error_type"].as_str(),
            r["error"]["message"].as_str()
        ),
        (
            Some("ResourceLimitError"),
            Some("the algorithm exceeded its memory limit")
        ),
        "{r}"
    );
    // A module that asks for more than the limit up front is refused when
    // it is uploaded, and the algorithm keeps its artifact.
    let too_big = "(module (memory (export \"memory\") 4097) (func (export \"_start\")))";
    let (s, b) = upload(
        &app,
        &alice,
        "alice/limits",
        "text/plain",
        too_big.as_bytes(),
    )
    .await;
    assert_eq!(
        (s, error_reason(&b).as_str()),
        (400, "invalid_artifact"),
        "{b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("memory"),
        "{b}"
    );
    let c = compile(&app, &alice, "alice/limits").await;
    assert_eq!(c["version_info"]["git_hash"], hash.as_str(), "{c}");

    // The server and other calls go on.
    create(&app, &alice, "alice", "echo").await;
    compile(&app, &alice, "alice/echo").await;
    let (s, v) = publish(&app, &alice, "alice/echo", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    let (s, r) = call(&app, &alice, "alice/echo", Some("text/plain"), b"fine").await;
    assert_eq!((s, r["result"].as_str()), (200, Some("fine")), "{r}");
    app.stop().await;
}

async fn decide(app: &TestApp, key: &str, version: &str, verb: &str) -> (u16, Value) {
    app.post(
        &format!("/v1/algorithms/acme/model/versions/{version}/{verb}"),
        key,
        json!({"reason": "checked"}),
    )
    .await
}

async fn set_self_approval(app: &TestApp, key: &str, allow: bool) {
    let (s, v) = app
        .put(
            "/v1/organizations/acme",
            key,
            json!({"allow_self_approval": allow}),
        )
        .await;
    assert_eq!(
        (s, v["allow_self_approval"].as_bool()),
        (200, Some(allow)),
        "{v}"
    );
}

/// README, approval: "nobody approves their own version unless the org
/// allows it". Where it does, an admin approves (or rejects) their own
/// versions; it gives nobody approval rights they lacked.
pub(crate) async fn authors_approve_their_own_versions_where_the_org_allows_it(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let erin = app.make_user("erin", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "bob", "contributor").await;
    create(&app, &alice, "acme", "model").await;
    let publish_one = async |key: &str, version: &str| {
        compile(&app, key, "acme/model").await;
        let (s, v) = publish(&app, key, "acme/model", "minor", "public").await;
        assert_eq!(
            (
                s,
                v["version_info"]["semantic_version"].as_str(),
                v["version_info"]["status"].as_str()
            ),
            (200, Some(version), Some("pending")),
            "{v}"
        );
    };

    // Not allowed (the default): alice cannot approve her own version.
    publish_one(&alice, "0.1.0").await;
    let (s, v) = decide(&app, &alice, "0.1.0", "approve").await;
    assert_eq!((s, error_reason(&v)), (403, "self_approval".into()), "{v}");

    // Allowed: she can, and the version goes live.
    set_self_approval(&app, &alice, true).await;
    let (s, v) = decide(&app, &alice, "0.1.0", "approve").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("published")), "{v}");
    let (s, r) = call(&app, &erin, "acme/model", Some("text/plain"), b"live").await;
    assert_eq!((s, r["result"].as_str()), (200, Some("live")), "{r}");
    // Rejecting her own is a decision she may take too.
    publish_one(&alice, "0.2.0").await;
    let (s, v) = decide(&app, &alice, "0.2.0", "reject").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("rejected")), "{v}");
    // A version published with an org key counts as its creator's own.
    let (s, k) = app
        .post(
            "/v1/organizations/acme/keys",
            &alice,
            json!({"key_label": "ci", "scopes": ["management", "algo_call"]}),
        )
        .await;
    assert_eq!(s, 200, "{k}");
    publish_one(k["api_key"].as_str().unwrap(), "0.3.0").await;
    let (s, v) = decide(&app, &alice, "0.3.0", "approve").await;
    assert_eq!((s, v["status"].as_str()), (200, Some("published")), "{v}");
    // It does not make an author who is not an org admin an approver.
    publish_one(&bob, "0.4.0").await;
    let (s, v) = decide(&app, &bob, "0.4.0", "approve").await;
    assert_eq!((s, error_reason(&v)), (403, "forbidden".into()), "{v}");

    // Allowed no longer: refused again.
    set_self_approval(&app, &alice, false).await;
    publish_one(&alice, "0.5.0").await;
    let (s, v) = decide(&app, &alice, "0.5.0", "approve").await;
    assert_eq!((s, error_reason(&v)), (403, "self_approval".into()), "{v}");
    let (_, r) = call(&app, &erin, "acme/model", Some("text/plain"), b"x").await;
    assert_eq!(r["metadata"]["version"], "0.3.0", "{r}");
    app.stop().await;
}

/// README, notifications: an invitation email "whose invitation was
/// rescinded, declined, accepted or expired meanwhile is not sent", and "an
/// invitation's token stays there only while the invitation can be used".
/// Declining (only an invitation addressed to an account can be declined;
/// its email carries no token) withdraws its email; the others go out.
pub(crate) async fn a_declined_invitation_sends_no_email(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    app.make_user("carol", false).await;
    app.make_org("acme", &alice).await;
    let mut ids = Vec::new();
    for body in [
        json!({"username": "bob"}),
        json!({"username": "carol"}),
        json!({"email": "dan@example.com"}),
    ] {
        let (s, v) = app
            .post("/v1/organizations/acme/invitations", &alice, body)
            .await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let emails_of = async |id: &str| -> Vec<algohub_core::model::OutboxMessage> {
        let all = app.hub().store.list_outbox(false, 100).await.unwrap();
        all.into_iter()
            .filter(|m| m.kind.starts_with("email.") && m.payload["invitation_id"] == id)
            .collect()
    };
    let bobs = emails_of(&ids[0]).await;
    assert_eq!(bobs.len(), 1, "{bobs:?}");
    assert_eq!(
        bobs[0].recipient_email.as_deref(),
        Some("bob@example.com"),
        "{bobs:?}"
    );
    assert!(bobs[0].payload.get("token").is_none(), "{bobs:?}");
    assert!(bobs[0].delivered_at.is_none(), "{bobs:?}");
    // Email invitations cannot be declined: only accepted with their token.
    let (s, v) = app
        .post(
            &format!("/v1/invitations/{}/decline", ids[2]),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(
        (s, error_reason(&v)),
        (404, "invitation_not_found".into()),
        "{v}"
    );

    let (s, v) = app
        .post(
            &format!("/v1/invitations/{}/decline", ids[0]),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("declined")), "{v}");

    let out = Outgoing::default();
    let sent = app
        .hub()
        .invitations
        .deliver_emails(&out, "http://hub.test")
        .await
        .unwrap();
    let to: Vec<String> = out.0.lock().unwrap().iter().map(|e| e.to.clone()).collect();
    assert_eq!(sent, 2, "{to:?}");
    assert!(
        to.contains(&"carol@example.com".to_string())
            && to.contains(&"dan@example.com".to_string()),
        "{to:?}"
    );
    assert!(!to.contains(&"bob@example.com".to_string()), "{to:?}");
    // bob's email is done with, unsent, and nothing for it is left to send.
    let bobs = emails_of(&ids[0]).await;
    assert!(bobs[0].delivered_at.is_some(), "{bobs:?}");
    assert!(bobs[0].payload.get("token").is_none(), "{bobs:?}");
    assert_eq!(
        app.hub()
            .invitations
            .deliver_emails(&out, "http://hub.test")
            .await
            .unwrap(),
        0
    );
    assert_eq!(out.0.lock().unwrap().len(), 2);
    app.stop().await;
}

/// README configuration: with `http_upstream_allow_private = false` (the
/// default; the tests' own setting is `true`) "http-runtime algorithms may
/// not reach loopback or private addresses"; docs/guest-abi.md: literal
/// addresses and `localhost` are refused when uploaded, and host names each
/// time they are resolved for a call. Node A allows private upstreams, node
/// B on the same database does not: what A published, B will not forward.
pub(crate) async fn http_upstreams_may_not_reach_internal_addresses_by_default(db: Db) {
    let (base, gauge) = gauged_upstream().await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let a = TestApp::new(&db).await;
    let alice = a.make_user("alice", false).await;
    let by_name = format!("http://localhost:{port}/hold?ms=1");
    let by_address = format!("http://127.0.0.1:{port}/hold?ms=1");
    published_upstream(&a, &alice, "alice", "named", &by_name).await;
    published_upstream(&a, &alice, "alice", "literal", &by_address).await;
    // A name no resolver knows (RFC 6761's `.invalid`).
    let unknown = format!("http://no-such-upstream.invalid:{port}/hold?ms=1");
    published_upstream(&a, &alice, "alice", "unknown", &unknown).await;
    for algo in ["alice/named", "alice/literal"] {
        let (s, r) = call(&a, &alice, algo, Some("text/plain"), b"x").await;
        assert_eq!((s, &r["result"]), (200, &json!({"held_ms": 1})), "{r}");
    }
    assert_eq!(gauge.total(), 2, "node A reaches the upstream");
    create(&a, &alice, "alice", "probe").await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path(), a.database_url.clone());
    config.http_upstream_allow_private = false;
    let b = algohub::Server::start(&config, None).await.expect("node b");
    let b_base = format!("http://{}", b.addr);
    let call_b = async |algo: &str| {
        let resp = reqwest::Client::new()
            .post(format!("{b_base}/v1/algo/{algo}"))
            .header("Authorization", &alice)
            .header("Content-Type", "text/plain")
            .body("x")
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    // At call time: the name is refused when it resolves (to 127.0.0.1 or
    // ::1), the literal address before anything is sent; neither says which
    // address a name resolved to.
    for algo in ["alice/named", "alice/literal"] {
        let (s, r) = call_b(algo).await;
        assert_eq!(s, 200, "an algorithm error: {r}");
        assert_eq!(r["error"]["error_type"], "UpstreamError", "{algo}: {r}");
        let message = r["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("internal address") && message.contains("http_upstream_allow_private"),
            "{algo}: {r}"
        );
    }
    let (_, r) = call_b("alice/named").await;
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("localhost") && !message.contains("127.0.0.1") && !message.contains("::1"),
        "{r}"
    );
    // A name that does not resolve gets the same words as one that resolves
    // to an internal address: the answers cannot be used to list the names
    // that exist inside the cluster.
    let (_, unknown) = call_b("alice/unknown").await;
    let unknown = unknown["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(
        unknown.replace("no-such-upstream.invalid", "NAME"),
        message.replace("localhost", "NAME"),
    );
    assert_eq!(gauge.total(), 2, "node B never reached the upstream");

    // At upload time, on B: loopback, private, link-local, shared, unspecified
    // and reserved addresses in any spelling, and local names.
    let upload_b = async |url: &str| {
        let def = json!({"url": url}).to_string();
        let resp = reqwest::Client::new()
            .put(format!("{b_base}/v1/algorithms/alice/probe/artifact"))
            .header("Authorization", &alice)
            .header("Content-Type", "application/json")
            .body(def)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    for url in [
        by_name.as_str(),
        by_address.as_str(),
        "http://LOCALHOST/x",
        "http://api.localhost/x",
        "http://127.1.2.3/x",
        "http://2130706433/x",
        "http://0x7f.1/x",
        "http://0.0.0.0/x",
        "http://10.1.2.3/x",
        "http://172.16.0.1/x",
        "http://192.168.1.1/x",
        "http://100.64.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/x",
        "http://[fd00::1]/x",
        "http://[fe80::1]/x",
    ] {
        let (s, v) = upload_b(url).await;
        assert_eq!(
            (s, error_reason(&v)),
            (400, "invalid_artifact".to_string()),
            "{url}: {v}"
        );
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("internal address"), "{url}: {v}");
    }
    // Public addresses and names are accepted (nothing is resolved on upload).
    for url in [
        "http://93.184.216.34/predict",
        "http://models.example.com:9000/p",
    ] {
        let (s, v) = upload_b(url).await;
        assert_eq!(
            (s, v["runtime"].as_str()),
            (200, Some("http")),
            "{url}: {v}"
        );
    }
    b.stop().await.unwrap();
    a.stop().await;
}
