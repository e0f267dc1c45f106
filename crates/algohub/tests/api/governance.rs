//! Call governance over the real server: work limits (429s, slots freed on
//! every ending, client disconnect included), usage records, royalties in a
//! balanced ledger, consolidated billing, reports, sudo calls.

use crate::algorithms::{build_upstream, create, publish};
use crate::support::{TestApp, error_reason};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// How many upstream requests run now, and the most that ever ran at once.
#[derive(Default)]
pub(crate) struct Gauge {
    now: AtomicI64,
    max: AtomicI64,
    total: AtomicI64,
}

impl Gauge {
    pub(crate) fn max(&self) -> i64 {
        self.max.load(Ordering::SeqCst)
    }
    pub(crate) fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
    pub(crate) fn total(&self) -> i64 {
        self.total.load(Ordering::SeqCst)
    }
}

/// An upstream whose `/hold?ms=N` answers after N milliseconds, counting
/// how many requests it serves at once.
pub(crate) async fn gauged_upstream() -> (String, Arc<Gauge>) {
    use axum::extract::{Query, State};
    use axum::routing::post;
    let gauge = Arc::new(Gauge::default());
    let app = axum::Router::new()
        .route(
            "/hold",
            post(
                |State(g): State<Arc<Gauge>>,
                 Query(q): Query<std::collections::HashMap<String, u64>>| async move {
                    let n = g.now.fetch_add(1, Ordering::SeqCst) + 1;
                    g.max.fetch_max(n, Ordering::SeqCst);
                    g.total.fetch_add(1, Ordering::SeqCst);
                    struct Leave(Arc<Gauge>);
                    impl Drop for Leave {
                        fn drop(&mut self) {
                            self.0.now.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let _leave = Leave(g.clone());
                    let ms = q.get("ms").copied().unwrap_or(100);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    axum::Json(json!({"held_ms": ms}))
                },
            ),
        )
        .with_state(gauge.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), gauge)
}

/// Creates `owner/name` forwarding to `url`, published public with the
/// royalty `create_body` sets (5 microcredits).
pub(crate) async fn published_upstream(
    app: &TestApp,
    key: &str,
    owner: &str,
    name: &str,
    url: &str,
) {
    create(app, key, owner, name).await;
    let def = json!({"runtime": "http", "url": url, "timeout": 60});
    build_upstream(app, key, &format!("{owner}/{name}"), def).await;
    let (s, v) = publish(app, key, &format!("{owner}/{name}"), "minor", "public").await;
    assert_eq!(s, 200, "{v}");
}

pub(crate) async fn account_id(app: &TestApp, name: &str) -> i64 {
    app.hub().store.get_account_by_name(name).await.unwrap().id
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

async fn work_limits_hold_and_every_call_is_metered(app: TestApp) {
    let (base, gauge) = gauged_upstream().await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    published_upstream(
        &app,
        &alice,
        "alice",
        "hold",
        &format!("{base}/hold?ms=300"),
    )
    .await;
    published_upstream(
        &app,
        &alice,
        "alice",
        "hang",
        &format!("{base}/hold?ms=20000"),
    )
    .await;

    // The limit routes: cluster admins only, positive integers only.
    let path = "/v1/admin/accounts/bob/work-limit";
    let (s, v) = app.get(path, &app.root).await;
    assert_eq!(
        (s, v["work_limit"].as_i64(), v["is_default"].as_bool()),
        (200, Some(80), Some(true)),
        "{v}"
    );
    let (s, v) = app.put(path, &bob, json!({"work_limit": 1000})).await;
    assert_eq!(s, 403, "{v}");
    for bad in [
        json!({"work_limit": 0}),
        json!({"work_limit": -3}),
        json!({"work_limit": "7"}),
        json!({"work_limit": 2.5}),
        json!({"limit": 3}),
    ] {
        let (s, v) = app.put(path, &app.root, bad.clone()).await;
        assert_eq!(s, 400, "{bad}: {v}");
        error_reason(&v);
    }
    let (s, v) = app
        .put(
            "/v1/admin/accounts/nobody/work-limit",
            &app.root,
            json!({"work_limit": 3}),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = app.put(path, &app.root, json!({"work_limit": 3})).await;
    assert_eq!(
        (s, v["work_limit"].as_i64(), v["is_default"].as_bool()),
        (200, Some(3), Some(false)),
        "{v}"
    );

    // Twelve concurrent calls with a limit of 3: never more than 3 run.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let client = app.client.clone();
        let url = format!("{}/v1/algo/alice/hold", app.base);
        let key = bob.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("Authorization", key)
                .header("Content-Type", "text/plain")
                .body("x")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let body: Value = r.json().await.unwrap();
            (status, retry, body)
        }));
    }
    let mut ok = Vec::new();
    let mut limited = 0;
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            200 => ok.push(body["request_id"].as_str().unwrap().to_string()),
            429 => {
                limited += 1;
                let e = &body["error"];
                assert_eq!(error_reason(&body), "limit_exceeded");
                assert_eq!(e["limit_kind"], "concurrency", "{body}");
                assert_eq!(e["scope"], "account:bob", "{body}");
                assert_eq!(e["retry_after"], 1, "{body}");
                assert_eq!(retry.as_deref(), Some("1"));
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        gauge.max() <= 3,
        "at most 3 ran at once, saw {}",
        gauge.max()
    );
    assert!(
        ok.len() >= 3 && limited >= 1,
        "{} ok, {limited} limited",
        ok.len()
    );
    let bob_id = account_id(&app, "bob").await;
    assert_eq!(
        app.hub().running_calls(bob_id),
        0,
        "every finished call freed its slot"
    );

    // A client that goes away frees its slot, and the call is still metered.
    let short = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let gone = short
        .post(format!("{}/v1/algo/alice/hang", app.base))
        .header("Authorization", &bob)
        .body("x")
        .send()
        .await;
    assert!(gone.is_err(), "the client gave up");
    let start = Instant::now();
    while app.hub().running_calls(bob_id) != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the disconnected call's slot came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Every answered call has its record; royalties moved once per success.
    for rid in &ok {
        let (s, r) = app
            .get(&format!("/v1/admin/usage/calls/{rid}"), &app.root)
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(
            (
                r["status"].as_str(),
                r["via"].as_str(),
                r["caller"].as_str(),
                r["payer"].as_str()
            ),
            (Some("ok"), Some("direct"), Some("bob"), Some("bob")),
            "{r}"
        );
        assert_eq!(
            (
                r["algorithm_owner"].as_str(),
                r["algorithm_name"].as_str(),
                r["version"].as_str()
            ),
            (Some("alice"), Some("hold"), Some("0.1.0"))
        );
        assert_eq!(r["royalty_microcredits"], 5);
        assert!(r["compute_units"].as_i64().unwrap() >= 300, "{r}");
    }
    let (s, r) = app.get("/v1/admin/usage/calls/req-nope", &app.root).await;
    assert_eq!(s, 404, "{r}");
    let (s, r) = app
        .get(&format!("/v1/admin/usage/calls/{}", ok[0]), &bob)
        .await;
    assert_eq!(s, 403, "{r}");
    let n_ok = ok.len() as i64;
    let (_, b) = app.get("/v1/users/bob/balance", &bob).await;
    assert_eq!(
        (
            b["spent_microcredits"].as_i64(),
            b["balance_microcredits"].as_i64()
        ),
        (Some(5 * n_ok), Some(-5 * n_ok)),
        "{b}"
    );
    let (_, a) = app.get("/v1/users/alice/balance", &alice).await;
    assert_eq!(a["earned_microcredits"].as_i64(), Some(5 * n_ok), "{a}");
    let (s, _) = app.get("/v1/users/alice/balance", &bob).await;
    assert_eq!(s, 403);
    assert_eq!(
        app.hub().store.ledger_total().await.unwrap(),
        0,
        "the books balance"
    );

    // Reports from the rollups; the cancelled call shows as an error.
    let day = today();
    let start = Instant::now();
    let report = loop {
        let (s, v) = app
            .get(
                &format!("/v1/users/bob/usage?start_date={day}&end_date={day}&group_by=algorithm"),
                &bob,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let hang_metered = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["algorithm"] == "alice/hang");
        if hang_metered || start.elapsed() > Duration::from_secs(5) {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let rows = report["results"].as_array().unwrap();
    let hold = rows
        .iter()
        .find(|r| r["algorithm"] == "alice/hold")
        .expect("hold row");
    assert_eq!(
        (
            hold["calls"].as_i64(),
            hold["refused"].as_i64(),
            hold["errors"].as_i64()
        ),
        (Some(n_ok), Some(limited), Some(0)),
        "{report}"
    );
    assert_eq!(hold["credits_microcredits"].as_i64(), Some(5 * n_ok));
    let hang = rows
        .iter()
        .find(|r| r["algorithm"] == "alice/hang")
        .expect("the cancelled call is metered");
    assert_eq!(
        (
            hang["calls"].as_i64(),
            hang["errors"].as_i64(),
            hang["credits_microcredits"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "{report}"
    );
    let (s, owner) = app
        .get(
            &format!(
                "/v1/users/alice/usage?start_date={day}&end_date={day}&group_by=version&side=owner"
            ),
            &alice,
        )
        .await;
    assert_eq!(s, 200, "{owner}");
    let v = owner["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["algorithm"] == "alice/hold")
        .unwrap();
    assert_eq!(
        (v["version"].as_str(), v["calls"].as_i64()),
        (Some("0.1.0"), Some(n_ok)),
        "{owner}"
    );
    for bad in [
        format!("/v1/users/bob/usage?end_date={day}"),
        format!("/v1/users/bob/usage?start_date=tomorrow&end_date={day}"),
        format!("/v1/users/bob/usage?start_date={day}&end_date=2000-01-01"),
        format!("/v1/users/bob/usage?start_date={day}&end_date={day}&group_by=planet"),
        format!("/v1/users/bob/usage?start_date={day}&end_date={day}&side=moon"),
        format!("/v1/users/bob/usage?start_date={day}&end_date={day}&format=xml"),
    ] {
        let (s, v) = app.get(&bad, &bob).await;
        assert_eq!(s, 400, "{bad}: {v}");
        error_reason(&v);
    }

    // The v1 admin usage routes, paged.
    let q = format!("start_date={day}&end_date={day}&page_size=1");
    let (s, full) = app.get(&format!("/v1/admin/usage?{q}"), &app.root).await;
    assert_eq!(s, 200, "{full}");
    assert_eq!(full["results"].as_array().unwrap().len(), 1);
    let marker = full["next_marker"]
        .as_str()
        .expect("a second page")
        .to_string();
    let (_, page2) = app
        .get(&format!("/v1/admin/usage?{q}&marker={marker}"), &app.root)
        .await;
    assert_ne!(page2["results"][0], full["results"][0], "{page2}");
    let (_, users) = app
        .get(
            &format!("/v1/admin/usage/users?start_date={day}&end_date={day}&page_size=50&user=bob"),
            &app.root,
        )
        .await;
    let rows = users["results"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{users}");
    assert_eq!(
        (rows[0]["caller"].as_str(), rows[0]["total_calls"].as_i64()),
        (Some("bob"), Some(n_ok + 1)),
        "{users}"
    );
    assert!(users.get("next_marker").is_none());
    let (_, algos) = app
        .get(
            &format!("/v1/admin/usage/algorithms?start_date={day}&end_date={day}&page_size=50"),
            &app.root,
        )
        .await;
    assert!(
        algos["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["algorithm_called"] == "hold"
                && r["algorithm_owner"] == "alice"
                && r["machine_type"] == "cpu"),
        "{algos}"
    );
    let (s, v) = app
        .get(
            &format!("/v1/admin/usage?start_date={day}&end_date={day}"),
            &app.root,
        )
        .await;
    assert_eq!((s, error_reason(&v)), (400, "missing_field".to_string()));
    let (s, _) = app.get(&format!("/v1/admin/usage?{q}"), &bob).await;
    assert_eq!(s, 403);

    // Back to the default limit.
    let (s, v) = app.put(path, &app.root, json!({"work_limit": null})).await;
    assert_eq!(
        (s, v["work_limit"].as_i64(), v["is_default"].as_bool()),
        (200, Some(80), Some(true)),
        "{v}"
    );
}

async fn consolidated_billing_and_org_reports(app: TestApp) {
    let (base, _) = gauged_upstream().await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let carol = app.make_user("carol", false).await;
    let dave = app.make_user("dave", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "bob", "contributor").await;
    app.add_member("acme", "dave", "viewer").await;
    published_upstream(&app, &carol, "carol", "tool", &format!("{base}/hold?ms=1")).await;

    // Without consolidated billing bob pays himself.
    let (s, _) = app
        .send_json("/v1/algo/carol/tool", &bob, Some("text/plain"), "x")
        .await;
    assert_eq!(s, 200);
    let (s, v) = app
        .put(
            "/v1/organizations/acme",
            &alice,
            json!({"consolidated_billing": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    for _ in 0..2 {
        let (s, r) = app
            .send_json("/v1/algo/carol/tool", &bob, Some("text/plain"), "x")
            .await;
        assert_eq!(s, 200, "{r}");
        let rid = r["request_id"].as_str().unwrap();
        let (_, rec) = app
            .get(&format!("/v1/admin/usage/calls/{rid}"), &app.root)
            .await;
        assert_eq!(
            (rec["caller"].as_str(), rec["payer"].as_str()),
            (Some("bob"), Some("acme")),
            "{rec}"
        );
    }
    let (_, b) = app.get("/v1/organizations/acme/balance", &alice).await;
    assert_eq!(b["spent_microcredits"].as_i64(), Some(10), "{b}");
    let (_, b) = app.get("/v1/users/bob/balance", &bob).await;
    assert_eq!(b["spent_microcredits"].as_i64(), Some(5), "{b}");
    let (_, b) = app.get("/v1/users/carol/balance", &carol).await;
    assert_eq!(b["earned_microcredits"].as_i64(), Some(15), "{b}");
    assert_eq!(app.hub().store.ledger_total().await.unwrap(), 0);

    // The org's report breaks the bill down per member; viewers cannot read it.
    let day = today();
    let q = format!("start_date={day}&end_date={day}");
    let (s, r) = app
        .get(&format!("/v1/organizations/acme/usage?{q}"), &alice)
        .await;
    assert_eq!(s, 200, "{r}");
    let rows = r["results"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{r}");
    assert_eq!(
        (
            rows[0]["member"].as_str(),
            rows[0]["calls"].as_i64(),
            rows[0]["credits_microcredits"].as_i64()
        ),
        (Some("bob"), Some(2), Some(10))
    );
    let (s, _, csv) = app
        .send_raw(
            reqwest::Method::GET,
            &format!("/v1/organizations/acme/usage?{q}&format=csv"),
            &alice,
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(s, 200);
    let csv = String::from_utf8(csv).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "member,calls,errors,refused,compute_units,duration_seconds,error_duration_seconds,credits_microcredits"
        )
    );
    assert!(lines.next().unwrap().starts_with("bob,2,0,0,"), "{csv}");
    let (_, by_day) = app
        .get(
            &format!("/v1/organizations/acme/usage?{q}&group_by=day"),
            &alice,
        )
        .await;
    assert_eq!(
        by_day["results"][0]["day"].as_str(),
        Some(day.as_str()),
        "{by_day}"
    );
    for who in [&dave, &bob] {
        let (s, v) = app
            .get(&format!("/v1/organizations/acme/usage?{q}"), who)
            .await;
        assert_eq!(s, 403, "{v}");
    }
    let (s, _) = app.get("/v1/organizations/acme/balance", &dave).await;
    assert_eq!(s, 403);
}

async fn sudo_calls_run_as_the_owner_and_are_not_attributed_to_it(app: TestApp) {
    let (base, _) = gauged_upstream().await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let sue = app.make_user("sue", false).await;
    create(&app, &alice, "alice", "secret").await;
    let def = json!({"runtime": "http", "url": format!("{base}/hold?ms=1"), "timeout": 60});
    build_upstream(&app, &alice, "alice/secret", def).await;
    let (s, v) = publish(&app, &alice, "alice/secret", "minor", "private").await;
    assert_eq!(s, 200, "{v}");
    let sue_id = account_id(&app, "sue").await;
    app.hub()
        .store
        .set_user_flags(None, sue_id, None, Some(true))
        .await
        .unwrap();
    app.hub().sync().await.unwrap();

    // Not a sudo call: the private version does not exist for sue.
    let (s, v) = app
        .send_json("/v1/algo/alice/secret/0.1.0", &sue, Some("text/plain"), "x")
        .await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = app
        .send_json(
            "/v1/algo/alice/secret/0.1.0?sudo=true",
            &sue,
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
        (
            rec["via"].as_str(),
            rec["caller"].as_str(),
            rec["acting_as"].as_str(),
            rec["payer"].as_str(),
            rec["royalty_microcredits"].as_i64()
        ),
        (
            Some("sudo"),
            Some("sue"),
            Some("alice"),
            Some("sue"),
            Some(0)
        ),
        "{rec}"
    );
    let (s, v) = app
        .send_json(
            "/v1/algo/alice/secret/0.1.0?sudo=true",
            &bob,
            Some("text/plain"),
            "x",
        )
        .await;
    assert_eq!(
        (s, error_reason(&v)),
        (403, "not_sudo_user".to_string()),
        "{v}"
    );
    let (s, v) = app
        .send_json(
            "/v1/algo/alice/secret/0.1.0?sudo=maybe",
            &sue,
            Some("text/plain"),
            "x",
        )
        .await;
    assert_eq!(s, 400, "{v}");
    // Not the owner's usage, and no royalty.
    let day = today();
    let (_, owner) = app
        .get(&format!("/v1/users/alice/usage?start_date={day}&end_date={day}&side=owner&group_by=algorithm"), &alice)
        .await;
    assert!(owner["results"].as_array().unwrap().is_empty(), "{owner}");
    let (_, b) = app.get("/v1/users/alice/balance", &alice).await;
    assert_eq!(b["earned_microcredits"].as_i64(), Some(0), "{b}");

    // With the role switched off, sudo calls are refused outright.
    let off = TestApp::with(|c| c.sudo_users_enabled = false).await;
    let k = off.make_user("sue", false).await;
    let (s, v) = off
        .send_json(
            "/v1/algo/anyone/anything?sudo=true",
            &k,
            Some("text/plain"),
            "x",
        )
        .await;
    assert_eq!(
        (s, error_reason(&v)),
        (403, "sudo_disabled".to_string()),
        "{v}"
    );
}

async fn refused_calls_are_metered_and_account_errors_are_listed(app: TestApp) {
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let (s, v) = app
        .send_json("/v1/algo/alice/missing", &bob, Some("text/plain"), "x")
        .await;
    assert_eq!(s, 404, "{v}");
    let day = today();
    let (_, r) = app
        .get(
            &format!("/v1/users/bob/usage?start_date={day}&end_date={day}&group_by=algorithm"),
            &bob,
        )
        .await;
    let rows = r["results"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{r}");
    assert_eq!(
        (
            rows[0]["algorithm"].as_str(),
            rows[0]["refused"].as_i64(),
            rows[0]["calls"].as_i64()
        ),
        (Some("(unresolved)"), Some(1), Some(0)),
        "{r}"
    );
    app.hub().settle_usage().await.unwrap();
    let records = app
        .hub()
        .store
        .list_usage_records(0, i64::MAX, &[], 0, 10)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        (
            records[0].algo_owner.as_str(),
            records[0].algo_name.as_str(),
            records[0].error_code.as_deref()
        ),
        ("alice", "missing", Some("algorithm_not_found"))
    );

    // Control characters in a requested name are cleaned in the record.
    let (s, v) = app
        .send_json("/v1/algo/alice/x%01y", &bob, Some("text/plain"), "x")
        .await;
    assert_eq!(s, 404, "{v}");
    app.hub().settle_usage().await.unwrap();
    let cleaned = app
        .hub()
        .store
        .list_usage_records(0, i64::MAX, &[], 0, 10)
        .await
        .unwrap();
    assert!(
        cleaned.iter().any(|r| r.algo_name == "x\u{fffd}y"),
        "{cleaned:?}"
    );
    // Bad options are refused, and metered too.
    let (s, v) = app
        .send_json(
            "/v1/algo/alice/missing?timeout=soon",
            &bob,
            Some("text/plain"),
            "x",
        )
        .await;
    assert_eq!(s, 400, "{v}");
    app.hub().settle_usage().await.unwrap();
    let records = app
        .hub()
        .store
        .list_usage_records(0, i64::MAX, &[], 0, 10)
        .await
        .unwrap();
    assert_eq!(records.len(), 3);
    assert!(
        records
            .iter()
            .any(|r| r.error_code.as_deref() == Some("invalid_input")
                && r.status == algohub_core::model::UsageStatus::Refused),
        "{records:?}"
    );

    // A failing algorithm: its error is listed for the owner's account.
    create(&app, &alice, "alice", "broken").await;
    let (s, _) = crate::algorithms::upload(
        &app,
        &alice,
        "alice/broken",
        "text/plain",
        include_str!("../../../../examples/fail.wat").as_bytes(),
    )
    .await;
    assert_eq!(s, 200);
    crate::algorithms::compile(&app, &alice, "alice/broken").await;
    let (s, v) = publish(&app, &alice, "alice/broken", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app
        .send_json("/v1/algo/alice/broken", &bob, Some("text/plain"), "boom")
        .await;
    assert_eq!((s, v["error"].is_object()), (200, true), "{v}");
    let (s, list) = app.get("/v1/users/alice/errors", &alice).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(
        (
            list[0]["algoname"].as_str(),
            list[0]["algorithm_owner"].as_str(),
            list[0]["username"].as_str()
        ),
        (Some("broken"), Some("alice"), Some("bob")),
        "{list}"
    );
    let (s, _) = app.get("/v1/users/alice/errors", &bob).await;
    assert_eq!(s, 403);
    let (s, _) = app.get("/v1/organizations/nope/errors", &alice).await;
    assert_eq!(s, 404);
}

/// A test app on a fresh PostgreSQL database, when `ALGOHUB_TEST_DATABASE_URL` is set.
pub(crate) async fn postgres_app() -> Option<TestApp> {
    let Some(admin) = std::env::var("ALGOHUB_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("ALGOHUB_TEST_DATABASE_URL not set: PostgreSQL test not run");
        return None;
    };
    let url = crate::multinode::fresh_pg_database(&admin).await;
    Some(TestApp::with(|c| c.database_url = url).await)
}

macro_rules! on_both_backends {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test]
        async fn $sqlite() {
            $case(TestApp::new().await).await;
        }
        #[tokio::test]
        async fn $postgres() {
            if let Some(app) = postgres_app().await {
                $case(app).await;
            }
        }
    )*};
}

on_both_backends! {
    work_limits_hold_and_every_call_is_metered => work_limits_and_metering_sqlite, work_limits_and_metering_postgres;
    consolidated_billing_and_org_reports => consolidated_billing_sqlite, consolidated_billing_postgres;
    sudo_calls_run_as_the_owner_and_are_not_attributed_to_it => sudo_calls_sqlite, sudo_calls_postgres;
    refused_calls_are_metered_and_account_errors_are_listed => refused_calls_and_errors_sqlite, refused_calls_and_errors_postgres;
}

/// With `metering_fsync`, calls share journal writes through the writer task
/// (group commit with a disk wait) instead of writing their own records.
#[tokio::test]
async fn metering_with_fsync_sqlite() {
    let app = TestApp::with(|c| c.metering_fsync = true).await;
    work_limits_hold_and_every_call_is_metered(app).await;
}
