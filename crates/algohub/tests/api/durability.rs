//! Call governance across processes: usage records survive `kill -9` (every
//! answered call has exactly one record, rollups and ledger agree), and on
//! PostgreSQL the work limit holds across three nodes, with a killed node's
//! slots coming back after the lease. Nodes are real `algohub serve`
//! processes, so a kill is a real SIGKILL.
//!
//! Correctness only: every wait is for an event (a node up, calls answered, a
//! change applied, slots back), polled with a generous `DEADLINE`, so a slow,
//! shared machine makes the tests longer, never wrong. Throughput is measured
//! by the benchmarks (algohub-bench), not here.

use crate::governance::gauged_upstream;
use crate::nodes::{DEADLINE, cli_user, start_node};
use crate::support::Db;
use algohub_core::store::UsageStore;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Slots of a killed node come back after this lease.
const LEASE: &[(&str, &str)] = &[("ALGOHUB_CALL_SLOT_LEASE_SECS", "3")];

/// The sequence number of the newest policy change in the database.
async fn newest_change(url: &str) -> i64 {
    let store = algohub_store::connect(url).await.expect("store");
    let row = sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM policy_changes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    sqlx::Row::get::<i64, _>(&row, 0)
}

/// Waits until the node at `base` has applied every policy change up to
/// `seq` (its `algohub_policy_seq` metric).
async fn until_applied(base: &str, seq: i64) {
    let start = Instant::now();
    loop {
        let metrics = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let applied = metrics
            .lines()
            .find_map(|l| l.strip_prefix("algohub_policy_seq "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        if applied >= seq as f64 {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{base} applied changes up to {applied}, not {seq}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Value,
) -> (u16, Value) {
    let r = client
        .request(method, format!("{base}{path}"))
        .header("Authorization", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// `owner/name` published public: the default echo artifact, or an upstream.
async fn publish_algorithm(base: &str, key: &str, owner: &str, name: &str, upstream: Option<&str>) {
    let c = reqwest::Client::new();
    let post = reqwest::Method::POST;
    let (s, v) = send(
        &c,
        base,
        post.clone(),
        &format!("/v1/algorithms/{owner}"),
        key,
        crate::algorithms::create_body(name),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    if let Some(url) = upstream {
        let def = json!({"runtime": "http", "url": url, "timeout": 300});
        let r = c
            .put(format!("{base}/v1/algorithms/{owner}/{name}/artifact"))
            .header("Authorization", key)
            .header("Content-Type", "application/json")
            .body(def.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let (s, v) = send(
        &c,
        base,
        post.clone(),
        &format!("/v1/algorithms/{owner}/{name}/compile"),
        key,
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let publish = json!({"settings": {"algorithm_callability": "public"}, "version_info": {"version_type": "minor"}});
    let (s, v) = send(
        &c,
        base,
        post,
        &format!("/v1/algorithms/{owner}/{name}/versions"),
        key,
        publish,
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

/// A pseudo-random number in `0..n` (time-seeded; the kill moments only
/// need to differ between rounds and runs).
fn random_below(n: u64) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    u64::from(t.wrapping_mul(2_654_435_761)) % n
}

async fn records_survive_kill_9(url: String, dir: &std::path::Path) {
    let root = cli_user(dir, &url, "root", true);
    let alice = cli_user(dir, &url, "alice", false);
    let bob = cli_user(dir, &url, "bob", false);
    let node = start_node(dir, &url, LEASE).await;
    publish_algorithm(&node.base, &alice, "alice", "echo", None).await;
    drop(node);

    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    // Each round is killed only after it has answered this many calls.
    let per_round = 10;
    for round in 0..3 {
        let before = answered.lock().unwrap().len();
        let node = start_node(dir, &url, LEASE).await;
        let mut clients = Vec::new();
        for _ in 0..8 {
            let base = node.base.clone();
            let key = bob.clone();
            let answered = answered.clone();
            clients.push(tokio::spawn(async move {
                let c = reqwest::Client::new();
                loop {
                    let r = c
                        .post(format!("{base}/v1/algo/alice/echo"))
                        .header("Authorization", &key)
                        .header("Content-Type", "text/plain")
                        .body("hello")
                        .send()
                        .await;
                    let Ok(r) = r else { return };
                    let Ok(v) = r.json::<Value>().await else {
                        return;
                    };
                    if let Some(rid) = v["request_id"].as_str() {
                        answered.lock().unwrap().push(rid.to_string());
                    }
                }
            }));
        }
        // Some load first, however slow the machine; then a moment that
        // differs between rounds and runs.
        let start = Instant::now();
        while answered.lock().unwrap().len() < before + per_round {
            assert!(
                start.elapsed() < DEADLINE,
                "round {round}: fewer than {per_round} calls answered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(random_below(700))).await;
        drop(node); // SIGKILL, mid-load
        for c in clients {
            c.await.unwrap();
        }
        eprintln!(
            "round {round}: {} answered so far",
            answered.lock().unwrap().len()
        );
    }

    let _node = start_node(dir, &url, LEASE).await;
    let store = algohub_store::connect(&url).await.expect("store");
    let answered = answered.lock().unwrap().clone();
    for rid in &answered {
        let r = store.get_usage_record(rid).await.unwrap();
        assert!(r.is_some(), "answered call {rid} has its record");
    }
    let pool = store.pool();
    let one = |sql: &'static str| async move {
        let row = sqlx::query(sql).fetch_one(pool).await.unwrap();
        sqlx::Row::get::<i64, _>(&row, 0)
    };
    let records = one("SELECT COUNT(*) FROM usage_records").await;
    let distinct = one("SELECT COUNT(DISTINCT request_id) FROM usage_records").await;
    let rolled =
        one("SELECT CAST(COALESCE(SUM(calls + refused), 0) AS BIGINT) FROM usage_daily").await;
    let charged = one("SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_entries").await;
    let ok = one("SELECT COUNT(*) FROM usage_records WHERE status = 'ok'").await;
    assert!(
        records >= answered.len() as i64,
        "{records} records for {} answers",
        answered.len()
    );
    assert_eq!(records, distinct, "no record doubled");
    assert_eq!(rolled, records, "rollups count every record once");
    assert_eq!(
        charged,
        2 * ok,
        "one debit and one credit per successful call"
    );
    assert_eq!(
        store.ledger_total().await.unwrap(),
        0,
        "the ledger balances"
    );
    let _ = root;
}

pub(crate) async fn usage_records_survive_kill_9(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    records_survive_kill_9(db.fresh_url().await, dir.path()).await;
}

/// Calls `alice/hold` until one is admitted; returns how many 429s it took.
async fn call_until_admitted(c: &reqwest::Client, base: &str, key: &str) -> u32 {
    let mut refused = 0;
    loop {
        let r = c
            .post(format!("{base}/v1/algo/alice/hold"))
            .header("Authorization", key)
            .header("Content-Type", "text/plain")
            .body("x")
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => return refused,
            429 => {
                refused += 1;
                // Back off 20-50 ms, as a client would: ~290 waiting callers
                // retrying every 10 ms (each refusal metered) kept both cores of
                // a slow CI machine busy refusing, starving the admitted calls.
                let pause = 20 + 10 * u64::from(refused % 4);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
}

/// PostgreSQL only: nodes share call slots only through PostgreSQL.
pub(crate) async fn work_limit_holds_across_three_nodes(db: Db) {
    let (upstream, gauge) = gauged_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url().await;
    let root = cli_user(dir.path(), &url, "root", true);
    let alice = cli_user(dir.path(), &url, "alice", false);
    let bob = cli_user(dir.path(), &url, "bob", false);
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(start_node(dir.path(), &url, LEASE).await);
    }
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let hold_ms = 100;
    publish_algorithm(
        &bases[0],
        &alice,
        "alice",
        "hold",
        Some(&format!("{upstream}/hold?ms={hold_ms}")),
    )
    .await;
    publish_algorithm(
        &bases[0],
        &alice,
        "alice",
        "hang",
        Some(&format!("{upstream}/hold?ms=300000")),
    )
    .await;
    let c = reqwest::Client::new();
    let (s, v) = send(
        &c,
        &bases[0],
        reqwest::Method::PUT,
        "/v1/admin/accounts/bob/work-limit",
        &root,
        json!({"work_limit": 10}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // Every node has applied the change (not merely had time to).
    let seq = newest_change(&url).await;
    for base in &bases {
        until_applied(base, seq).await;
    }

    // 300 concurrent calls for bob, spread over the three nodes, each retried
    // on 429 until admitted.
    let calls = 300;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..calls {
        let base = bases[i % 3].clone();
        let key = bob.clone();
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            call_until_admitted(&c, &base, &key).await
        }));
    }
    let all_admitted = async {
        let mut refusals = 0;
        for t in tasks {
            refusals += t.await.unwrap();
        }
        refusals
    };
    // A liveness bound, not a throughput floor: at the limit the calls take
    // 3 s; only calls that are never admitted (a slot leak) reach it.
    let refusals = tokio::time::timeout(Duration::from_secs(600), all_admitted)
        .await
        .expect("every call admitted in the end");
    // For the log only: how long is the benchmarks' business.
    eprintln!(
        "3 nodes, limit 10: {calls} calls of {hold_ms} ms in {:.2}s, {refusals} refusals, max {} at once",
        start.elapsed().as_secs_f64(),
        gauge.max()
    );
    assert_eq!(gauge.total(), calls as i64, "every call ran once");
    assert!(
        gauge.max() <= 10,
        "never more than 10 at once cluster-wide, saw {}",
        gauge.max()
    );

    // A node killed with slots held: they come back after the lease (3 s
    // here). Ten calls that hang hold all ten slots on node 3 (retried while
    // the slots of the calls above are still being released).
    let mut hung = Vec::new();
    for _ in 0..10 {
        let base = bases[2].clone();
        let key = bob.clone();
        let c = c.clone();
        hung.push(tokio::spawn(async move {
            // Admitted, it hangs until its node is killed.
            loop {
                let r = c
                    .post(format!("{base}/v1/algo/alice/hang"))
                    .header("Authorization", &key)
                    .header("Content-Type", "text/plain")
                    .body("x")
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 429 => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    _ => return,
                }
            }
        }));
    }
    let start = Instant::now();
    while gauge.now() < 10 {
        assert!(
            start.elapsed() < DEADLINE,
            "the hanging calls never all reached the upstream ({} did)",
            gauge.now()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = c
        .post(format!("{}/v1/algo/alice/hold", bases[0]))
        .header("Authorization", &bob)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        429,
        "the dying node's slots still count"
    );
    let killed = nodes.pop().unwrap();
    drop(killed); // SIGKILL with 10 slots held
    let start = Instant::now();
    tokio::time::timeout(DEADLINE, call_until_admitted(&c, &bases[0], &bob))
        .await
        .expect("the killed node's slots came back");
    eprintln!(
        "slots of the killed node came back after {:.2}s (lease 3 s)",
        start.elapsed().as_secs_f64()
    );
    for h in hung {
        h.abort();
    }
}
