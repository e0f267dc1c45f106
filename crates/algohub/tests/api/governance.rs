//! Call governance over the real server: work limits (429s, slots freed on
//! every ending, client disconnect included) and usage records, and the
//! helpers the other governance tests (`billing.rs`) use.

use crate::algorithms::{build_upstream, create, publish};
use crate::support::{Db, TestApp, error_reason};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// How many upstream requests run now, and the most that ever ran at once;
/// `/gate` requests wait until the gate is opened.
#[derive(Default)]
pub(crate) struct Gauge {
    now: AtomicI64,
    max: AtomicI64,
    total: AtomicI64,
    gate: tokio::sync::Notify,
    open: std::sync::atomic::AtomicBool,
}

impl Gauge {
    /// Lets every waiting and future `/gate` request answer.
    pub(crate) fn open_gate(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.gate.notify_waiters();
    }
    /// Polls until `n` requests run at once (60 s at most).
    pub(crate) async fn until_running(&self, n: i64) {
        let start = Instant::now();
        while self.now() != n {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{n} upstream requests never ran at once (now {})",
                self.now()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
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

/// An upstream whose `/hold?ms=N` answers after N milliseconds, and whose
/// `/gate` answers once the test opens the gate, counting how many requests
/// it serves at once.
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
        .route(
            "/gate",
            post(|State(g): State<Arc<Gauge>>| async move {
                let n = g.now.fetch_add(1, Ordering::SeqCst) + 1;
                g.max.fetch_max(n, Ordering::SeqCst);
                g.total.fetch_add(1, Ordering::SeqCst);
                loop {
                    let opened = g.gate.notified();
                    if g.open.load(Ordering::SeqCst) {
                        break;
                    }
                    opened.await;
                }
                g.now.fetch_sub(1, Ordering::SeqCst);
                axum::Json(json!({"gated": true}))
            }),
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

pub(crate) fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// A usage report's range, `start_date` yesterday and `end_date` today (UTC):
/// a test's database is fresh, so the range holds only the test's own calls,
/// even when a run crosses midnight.
pub(crate) fn report_days() -> String {
    let now = chrono::Utc::now();
    let yesterday = now - chrono::Duration::days(1);
    format!(
        "start_date={}&end_date={}",
        yesterday.format("%Y-%m-%d"),
        now.format("%Y-%m-%d")
    )
}

async fn work_limits_hold_and_every_call_is_metered(app: TestApp) {
    let (base, gauge) = gauged_upstream().await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    published_upstream(&app, &alice, "alice", "hold", &format!("{base}/gate")).await;
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

    // With a limit of 3: three calls held at the upstream, then nine more,
    // each refused while the three run; then the three are let go.
    let send = |n: usize| {
        (0..n)
            .map(|_| {
                let client = app.client.clone();
                let url = format!("{}/v1/algo/alice/hold", app.base);
                let key = bob.clone();
                tokio::spawn(async move {
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
                })
            })
            .collect::<Vec<_>>()
    };
    let held = send(3);
    gauge.until_running(3).await;
    let mut limited = 0;
    for t in send(9) {
        // An admitted call would wait at the closed gate: fail, not hang.
        let (status, retry, body) = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("a call beyond the limit was admitted (it waits at the gate)")
            .unwrap();
        assert_eq!(status, 429, "a fourth call while three run: {body}");
        limited += 1;
        let e = &body["error"];
        assert_eq!(error_reason(&body), "limit_exceeded");
        assert_eq!(e["limit_kind"], "concurrency", "{body}");
        assert_eq!(e["scope"], "account:bob", "{body}");
        assert_eq!(e["retry_after"], 1, "{body}");
        assert_eq!(retry.as_deref(), Some("1"));
    }
    // Held at least 300 ms, so each call's compute units (upstream
    // milliseconds) are at least that.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gauge.open_gate();
    let mut ok = Vec::new();
    for t in held {
        let (status, _, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        ok.push(body["request_id"].as_str().unwrap().to_string());
    }
    assert_eq!(gauge.max(), 3, "never more than 3 at once");
    assert_eq!((ok.len(), limited), (3, 9));
    let bob_id = account_id(&app, "bob").await;
    assert_eq!(
        app.hub().admission.running_calls(bob_id),
        0,
        "every finished call freed its slot"
    );

    // A client that goes away frees its slot, and the call is still metered:
    // the call reaches the upstream (it holds 20 s), then its client gives up.
    let running_before = gauge.now();
    let gone = {
        let client = app.client.clone();
        let url = format!("{}/v1/algo/alice/hang", app.base);
        let key = bob.clone();
        tokio::spawn(async move {
            let _ = client
                .post(url)
                .header("Authorization", key)
                .body("x")
                .send()
                .await;
        })
    };
    gauge.until_running(running_before + 1).await;
    gone.abort();
    let _ = gone.await;
    let start = Instant::now();
    while app.hub().admission.running_calls(bob_id) != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
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
    let days = report_days();
    let start = Instant::now();
    let report = loop {
        let (s, v) = app
            .get(
                &format!("/v1/users/bob/usage?{days}&group_by=algorithm"),
                &bob,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let hang_metered = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["algorithm"] == "alice/hang");
        if hang_metered {
            break v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the cancelled call reached the report: {v}"
        );
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
            &format!("/v1/users/alice/usage?{days}&group_by=version&side=owner"),
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
        format!("/v1/users/bob/usage?{days}&group_by=planet"),
        format!("/v1/users/bob/usage?{days}&side=moon"),
        format!("/v1/users/bob/usage?{days}&format=xml"),
    ] {
        let (s, v) = app.get(&bad, &bob).await;
        assert_eq!(s, 400, "{bad}: {v}");
        error_reason(&v);
    }

    // The v1 admin usage routes, paged.
    let q = format!("{days}&page_size=1");
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
            &format!("/v1/admin/usage/users?{days}&page_size=50&user=bob"),
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
            &format!("/v1/admin/usage/algorithms?{days}&page_size=50"),
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
    let (s, v) = app.get(&format!("/v1/admin/usage?{days}"), &app.root).await;
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

    // A call that times out, and one whose upstream fails, free their slots
    // as soon as they are answered.
    let missing = format!("{base}/no-such-route");
    published_upstream(&app, &alice, "alice", "broken", &missing).await;
    for call in ["alice/hang?timeout=1", "alice/broken"] {
        let (s, v) = app
            .send_json(&format!("/v1/algo/{call}"), &bob, Some("text/plain"), "x")
            .await;
        assert_eq!(s, 200, "{call}: {v}");
        assert!(v["error"]["message"].is_string(), "{call}: {v}");
        assert_eq!(
            app.hub().admission.running_calls(bob_id),
            0,
            "{call} freed its slot"
        );
    }
}

pub(crate) async fn work_limits_and_metering(db: Db) {
    work_limits_hold_and_every_call_is_metered(TestApp::new(&db).await).await;
}

/// With `metering_fsync`, calls share journal writes through the writer task
/// (group commit with a disk wait) instead of writing their own records.
pub(crate) async fn metering_with_fsync(db: Db) {
    let app = TestApp::with(&db, |c| c.metering_fsync = true).await;
    work_limits_hold_and_every_call_is_metered(app).await;
}
