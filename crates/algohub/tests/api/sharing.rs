//! Fair sharing of a node's wasm instances and its memory budget (issue 22
//! item 1): one person flooding a node with sleeping calls, through his own
//! key and the keys of orgs he made, holds at most his share of the pool
//! while another user's calls start at once; guests that fill their memory
//! keep the node's process within its budget, and the calls the budget
//! cannot hold are refused with `limit_kind: "memory"`.

use crate::algorithms::{call, compile, create, publish, upload};
use crate::nodes::{cli_user, start_node};
use crate::support::{Db, TestApp, error_reason};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Sleeps (WASI `poll_oneoff`, no fuel spent) for the milliseconds its input
/// names in decimal.
pub(crate) const SLEEP_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $n i32) (local $i i32) (local $c i32) (local $ms i64)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 32))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $n (i32.load (i32.const 8)))
    (block $done (loop $digit
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $c (i32.sub (i32.load8_u (i32.add (i32.const 16) (local.get $i))) (i32.const 48)))
      (br_if $done (i32.gt_u (local.get $c) (i32.const 9)))
      (local.set $ms (i64.add (i64.mul (local.get $ms) (i64.const 10)) (i64.extend_i32_u (local.get $c))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $digit)))
    ;; One relative clock subscription at 256: tag 0 (clock), id 1 (monotonic).
    (i32.store8 (i32.const 264) (i32.const 0))
    (i32.store (i32.const 272) (i32.const 1))
    (i64.store (i32.const 280) (i64.mul (local.get $ms) (i64.const 1000000)))
    (drop (call $poll (i32.const 256) (i32.const 320) (i32.const 1) (i32.const 400)))))"#;

/// Grows its memory to 32 MiB (traps if it cannot), writes every byte of it,
/// sleeps 400 ms so that calls overlap, and answers `filled`.
const FILL_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "filled")
  (func (export "_start")
    (if (i32.lt_s (memory.grow (i32.const 511)) (i32.const 0)) (then unreachable))
    (memory.fill (i32.const 1024) (i32.const 0x5a) (i32.const 33553408))
    (i32.store8 (i32.const 264) (i32.const 0))
    (i32.store (i32.const 272) (i32.const 1))
    (i64.store (i32.const 280) (i64.const 400000000))
    (drop (call $poll (i32.const 256) (i32.const 320) (i32.const 1) (i32.const 400)))
    (i32.store (i32.const 0) (i32.const 512))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// `owner/name` with `wat`, built and published public.
async fn publish_wat(app: &TestApp, key: &str, owner: &str, name: &str, wat: &str) {
    create(app, key, owner, name).await;
    let algo = format!("{owner}/{name}");
    let (s, b) = upload(app, key, &algo, "text/plain", wat.as_bytes()).await;
    assert_eq!(s, 200, "{b}");
    compile(app, key, &algo).await;
    let (s, b) = publish(app, key, &algo, "minor", "public").await;
    assert_eq!(s, 200, "{b}");
}

/// An org key (full scopes) of `org`, made by the holder of `key`.
async fn org_key(app: &TestApp, key: &str, org: &str) -> String {
    let (s, k) = app
        .post(
            &format!("/v1/organizations/{org}/keys"),
            key,
            json!({"key_label": "flood", "permissions": {"allow_algo": true, "allow_data": true,
                "allow_data_write": true, "allow_web_algo": false, "algo_acl": ["*"]}}),
        )
        .await;
    assert_eq!(s, 200, "{k}");
    k["api_key"].as_str().unwrap().to_string()
}

/// A node with 8 instances (9 on PostgreSQL: servers of one process with
/// the same settings share a runtime, and the cases of both backends run at
/// once), `per_caller` of them for one person (`None`: all); bob (with two
/// orgs and their keys) and alice, each with a published algorithm:
/// `bob/sleep` and `alice/echo`. Returns (app, bob's three keys, alice's key).
async fn flood_node(db: &Db, per_caller: Option<u32>) -> (TestApp, Vec<String>, String) {
    let instances = match db.backend() {
        crate::harness::Backend::Sqlite => 8,
        crate::harness::Backend::Postgres => 9,
    };
    let app = TestApp::with(db, |c| {
        c.wasm_instances = instances;
        c.wasm_instances_per_caller = per_caller.unwrap_or(instances);
    })
    .await;
    let bob = app.make_user("bob", false).await;
    let alice = app.make_user("alice", false).await;
    publish_wat(&app, &bob, "bob", "sleep", SLEEP_WAT).await;
    create(&app, &alice, "alice", "echo").await;
    compile(&app, &alice, "alice/echo").await;
    let (s, b) = publish(&app, &alice, "alice/echo", "minor", "public").await;
    assert_eq!(s, 200, "{b}");
    let mut keys = vec![bob.clone()];
    for org in ["bobcorp", "bobworks"] {
        app.make_org(org, &bob).await;
        keys.push(org_key(&app, &bob, org).await);
    }
    (app, keys, alice)
}

/// Starts `per_key` calls of `bob/sleep` (sleeping `ms`, with `?timeout=`)
/// with each of `keys`; they answer in the background.
fn flood(
    app: &TestApp,
    keys: &[String],
    per_key: usize,
    ms: u64,
    timeout_secs: f64,
) -> Vec<tokio::task::JoinHandle<Value>> {
    let mut calls = Vec::new();
    for key in keys {
        for _ in 0..per_key {
            let (client, base, key) = (app.client.clone(), app.base.clone(), key.clone());
            calls.push(tokio::spawn(async move {
                let r = client
                    .post(format!("{base}/v1/algo/bob/sleep?timeout={timeout_secs}"))
                    .header("Authorization", key)
                    .header("Content-Type", "text/plain")
                    .body(ms.to_string())
                    .send()
                    .await
                    .expect("sent");
                assert_eq!(r.status().as_u16(), 200);
                r.json::<Value>().await.expect("json")
            }));
        }
    }
    calls
}

/// alice's echo call, with its answer and how long it took.
async fn alices_call(app: &TestApp, alice: &str, timeout: &str) -> (Value, Duration) {
    let started = Instant::now();
    let (s, r) = call(
        app,
        alice,
        &format!("alice/echo?timeout={timeout}"),
        Some("text/plain"),
        b"hi",
    )
    .await;
    assert_eq!(s, 200, "{r}");
    (r, started.elapsed())
}

pub(crate) async fn a_flood_from_one_person_leaves_room_for_others(db: Db) {
    // Without a share per person: bob's sleeping calls take all the
    // instances and alice's call cannot start within its 1.5 s.
    let (app, keys, alice) = flood_node(&db, None).await;
    let held = flood(&app, &keys, 4, 20_000, 20.0);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (r, _) = alices_call(&app, &alice, "1.5").await;
    assert_eq!(r["error"]["error_type"], "AlgorithmTimeoutError", "{r}");
    for c in held {
        c.abort();
    }
    app.stop().await;

    // With 2 instances per person: bob, through his own key and both of his
    // orgs' keys, holds 2; alice's calls start at once.
    let (app, keys, alice) = flood_node(&db, Some(2)).await;
    let started = Instant::now();
    let calls = flood(&app, &keys, 4, 1_000, 3.5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut waits = Vec::new();
    for _ in 0..5 {
        let (r, took) = alices_call(&app, &alice, "3").await;
        assert_eq!(r["result"], "hi", "alice's call ran during the flood: {r}");
        waits.push(took);
    }
    let mut done = 0;
    for c in calls {
        let r = c.await.expect("bob's call");
        match r["error"]["error_type"].as_str() {
            None => done += 1,
            Some("AlgorithmTimeoutError") => {}
            Some(other) => panic!("bob's call failed with {other}: {r}"),
        }
    }
    // 2 at a time for 3.5 s, a second each: at most 6 of bob's 12 ran (his
    // orgs' keys counted as bob; 6 at a time would have run all 12).
    assert!(
        (1..=6).contains(&done),
        "{done} of bob's 12 calls ran in {:?}",
        started.elapsed()
    );
    let slowest = waits.iter().max().copied().unwrap_or_default();
    println!("alice's echo during bob's flood: slowest {slowest:?} of {waits:?}");
    assert!(slowest < Duration::from_secs(2), "{waits:?}");
    app.stop().await;
}

/// The peak resident memory of process `pid` (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

pub(crate) async fn guests_that_fill_their_memory_keep_the_node_within_its_budget(db: Db) {
    const MIB: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url().await;
    let node = start_node(
        dir.path(),
        &url,
        &[
            ("ALGOHUB_WASM_MAX_MEMORY_MIB", "32"),
            ("ALGOHUB_WASM_MEMORY_BUDGET_MIB", "80"),
            // The whole budget for alice (by default one person gets the
            // share of the budget their share of the instances is).
            ("ALGOHUB_WASM_INSTANCES_PER_CALLER", "128"),
        ],
    )
    .await;
    let key = cli_user(dir.path(), &url, "alice", false);
    let app = TestApp::remote(&node.base);
    publish_wat(&app, &key, "alice", "fill", FILL_WAT).await;
    // One call first, so that compiling and first-use allocations are in
    // the baseline.
    let (s, r) = call(&app, &key, "alice/fill", Some("text/plain"), b"x").await;
    assert_eq!((s, r["result"].as_str()), (200, Some("filled")), "{r}");
    let before = peak_rss(node.pid());
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let (client, base, key) = (app.client.clone(), app.base.clone(), key.clone());
            tokio::spawn(async move {
                let r = client
                    .post(format!("{base}/v1/algo/alice/fill"))
                    .header("Authorization", key)
                    .header("Content-Type", "text/plain")
                    .body("x")
                    .send()
                    .await
                    .expect("sent");
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.expect("json"))
            })
        })
        .collect();
    let (mut filled, mut refused) = (0, 0);
    for c in calls {
        let (status, r) = c.await.expect("call");
        match status {
            200 => {
                assert_eq!(r["result"], "filled", "{r}");
                filled += 1;
            }
            429 => {
                assert_eq!(r["error"]["limit_kind"], "memory", "{r}");
                error_reason(&r);
                let message = r["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("memory"), "{r}");
                refused += 1;
            }
            other => panic!("{other}: {r}"),
        }
    }
    let grew = peak_rss(node.pid()).saturating_sub(before);
    println!(
        "12 guests filling 32 MiB under an 80 MiB budget: {filled} ran, {refused} refused, \
         peak resident memory grew {} MiB",
        grew / MIB
    );
    assert!(
        filled >= 1 && refused >= 1,
        "{filled} ran, {refused} refused"
    );
    // 12 x 32 MiB would be 384 MiB; the budget is 80 (plus the server's own
    // buffers for 12 requests).
    assert!(grew < 100 * MIB, "grew {} MiB", grew / MIB);
}
