//! Call limits (issue 21): the timeout and the wasm fuel budget are cluster
//! settings (`call_timeout_secs`, `max_call_timeout_secs`,
//! `wasm_fuel_per_sec`: a call's fuel is the rate times its timeout), an
//! algorithm's settings may lower them for its calls (`max_timeout_secs`,
//! `max_fuel_per_call`) and a caller's `?timeout=` lowers them further; and a
//! wasm call that times out, runs out of fuel or crashes reports the fuel it
//! used, in its response and in its usage record.
//!
//! Out-of-fuel calls use all of their budget, exactly: their
//! `compute_units` show the budget, and so the timeout it was made from,
//! without measuring any time.

use crate::algorithms::{call, compile, create, upload};
use crate::support::{Db, TestApp, error_reason};
use serde_json::{Value, json};

/// A loop that never ends (`examples/slow.wat`): one fuel unit a turn.
const BUSY_WAT: &str = include_str!("../../../../examples/slow.wat");

/// Counts to 1000 (eight one-unit instructions a turn), then traps.
const CRASH_WAT: &str = r#"(module (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (loop $count
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $count (i32.lt_u (local.get $i) (i32.const 1000))))
    unreachable))"#;

/// Uploads `wat` as the artifact of `alice/limits`, builds it and returns
/// the build's hash (the owner calls builds by hash).
async fn build(app: &TestApp, key: &str, wat: &str) -> String {
    let (s, b) = upload(app, key, "alice/limits", "text/plain", wat.as_bytes()).await;
    assert_eq!(s, 200, "{b}");
    let c = compile(app, key, "alice/limits").await;
    c["version_info"]["git_hash"].as_str().unwrap().to_string()
}

/// Calls `alice/limits/{hash}{query}`; the call must fail with `error_type`.
async fn failing_call(
    app: &TestApp,
    key: &str,
    hash: &str,
    query: &str,
    error_type: &str,
) -> Value {
    let (s, r) = call(
        app,
        key,
        &format!("alice/limits/{hash}{query}"),
        Some("text/plain"),
        b"x",
    )
    .await;
    assert_eq!(s, 200, "an algorithm error is HTTP 200: {r}");
    assert_eq!(r["error"]["error_type"].as_str(), Some(error_type), "{r}");
    r
}

/// The compute units a failed call reports, checked against its usage record.
async fn reported_units(app: &TestApp, r: &Value) -> u64 {
    let units = r["metadata"]["compute_units"]
        .as_u64()
        .unwrap_or_else(|| panic!("no metadata.compute_units: {r}"));
    let rid = r["request_id"].as_str().unwrap();
    let (s, rec) = app
        .get(&format!("/v1/admin/usage/calls/{rid}"), &app.root)
        .await;
    assert_eq!(s, 200, "{rec}");
    assert_eq!(
        (
            rec["status"].as_str(),
            rec["error_code"].as_str(),
            rec["compute_units"].as_u64()
        ),
        (
            Some("error"),
            r["error"]["error_type"].as_str(),
            Some(units)
        ),
        "the usage record has the response's compute units: {rec}"
    );
    units
}

/// Sets (or, with null, removes) settings of `alice/limits`.
async fn set_settings(app: &TestApp, key: &str, settings: Value) -> (u16, Value) {
    app.put(
        "/v1/algorithms/alice/limits",
        key,
        json!({"settings": settings}),
    )
    .await
}

/// The defect found in review: a wasm call stopped by its deadline, by its
/// fuel or by a trap was metered with 0 compute units and its response had
/// no `metadata.compute_units`. The deadline here is the cluster's
/// `call_timeout_secs` (the call sets none), and the fuel for it (the
/// default rate times 1 s) is far more than a busy loop burns in that time.
pub(crate) async fn failed_wasm_calls_report_the_fuel_they_used(db: Db) {
    let app = TestApp::with(&db, |c| c.call_timeout_secs = 1).await;
    let alice = app.make_user("alice", false).await;
    create(&app, &alice, "alice", "limits").await;

    // Stopped by the deadline, with the fuel it burned until then.
    let busy = build(&app, &alice, BUSY_WAT).await;
    let r = failing_call(&app, &alice, &busy, "", "AlgorithmTimeoutError").await;
    assert_eq!(
        r["error"]["message"].as_str(),
        Some("the call exceeded its time limit of 1s"),
        "{r}"
    );
    let burned = reported_units(&app, &r).await;
    assert!(burned > 0, "{r}");
    assert!(
        burned < algohub_core::services::DEFAULT_WASM_FUEL_PER_SEC,
        "a second's fuel outlasts a second of a busy loop: {r}"
    );

    // Stopped by its fuel (the algorithm's cap), having used all of it.
    let (s, b) = set_settings(&app, &alice, json!({"max_fuel_per_call": 1_000_000})).await;
    assert_eq!(s, 200, "{b}");
    let r = failing_call(&app, &alice, &busy, "", "ResourceLimitError").await;
    assert_eq!(reported_units(&app, &r).await, 1_000_000, "{r}");
    let (s, b) = set_settings(&app, &alice, json!({"max_fuel_per_call": null})).await;
    assert_eq!(s, 200, "{b}");

    // Stopped by a trap after counting to 1000.
    let crash = build(&app, &alice, CRASH_WAT).await;
    let r = failing_call(&app, &alice, &crash, "", "AlgorithmCrashError").await;
    assert!(reported_units(&app, &r).await >= 8000, "{r}");
    app.stop().await;
}

/// Issue 21: the fuel budget is the cluster's `wasm_fuel_per_sec` times the
/// call's timeout, which is the cluster's `call_timeout_secs` unless the
/// caller sets `?timeout=`, cut to the algorithm's `max_timeout_secs` and
/// the cluster's `max_call_timeout_secs`; the algorithm's
/// `max_fuel_per_call` caps the fuel. An algorithm may lower the cluster's
/// limits but not exceed them, and invalid values are a 400.
pub(crate) async fn timeout_and_fuel_are_cluster_settings_an_algorithm_may_lower(db: Db) {
    let app = TestApp::with(&db, |c| {
        c.call_timeout_secs = 2;
        c.max_call_timeout_secs = 5;
        c.wasm_fuel_per_sec = 1000;
    })
    .await;
    let alice = app.make_user("alice", false).await;
    create(&app, &alice, "alice", "limits").await;
    let busy = build(&app, &alice, BUSY_WAT).await;
    // The fuel of a call (all of it used) tells its timeout.
    let budget = |query: &'static str| {
        let (app, alice, busy) = (&app, &alice, &busy);
        async move {
            let r = failing_call(app, alice, busy, query, "ResourceLimitError").await;
            reported_units(app, &r).await
        }
    };
    // The cluster's default timeout, the caller's lower one, and a longer
    // one cut to the cluster's cap.
    assert_eq!(budget("").await, 2000);
    assert_eq!(budget("?timeout=0.5").await, 500);
    assert_eq!(budget("?timeout=3000").await, 5000);

    // An algorithm's caps above the cluster's, or not whole positive
    // numbers, are refused and change nothing.
    for (settings, named) in [
        (
            json!({"max_timeout_secs": 6}),
            "from 1 to 5 (max_call_timeout_secs",
        ),
        (json!({"max_timeout_secs": 0}), "from 1 to 5"),
        (json!({"max_timeout_secs": 2.5}), "from 1 to 5"),
        (json!({"max_timeout_secs": "3"}), "from 1 to 5"),
        (json!({"max_fuel_per_call": 5001}), "from 1 to 5000"),
        (json!({"max_fuel_per_call": -1}), "from 1 to 5000"),
    ] {
        let (s, b) = set_settings(&app, &alice, settings.clone()).await;
        assert_eq!(
            (s, error_reason(&b).as_str()),
            (400, "invalid_input"),
            "{settings}: {b}"
        );
        let message = b["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(named), "{settings}: {b}");
    }
    let (_, g) = app.get("/v1/algorithms/alice/limits", &alice).await;
    assert!(g["settings"].get("max_timeout_secs").is_none(), "{g}");
    assert_eq!(budget("?timeout=3000").await, 5000);

    // Within them, the algorithm's timeout cap binds the default (when it
    // is lower) and the caller, who may still lower it.
    let (s, b) = set_settings(&app, &alice, json!({"max_timeout_secs": 3})).await;
    assert_eq!(
        (s, b["settings"]["max_timeout_secs"].as_u64()),
        (200, Some(3)),
        "{b}"
    );
    assert_eq!(budget("").await, 2000);
    assert_eq!(budget("?timeout=3000").await, 3000);
    assert_eq!(budget("?timeout=1").await, 1000);
    let (s, b) = set_settings(&app, &alice, json!({"max_timeout_secs": 1})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(budget("").await, 1000);

    // The fuel cap binds whatever the timeout; null removes a cap.
    let (s, b) = set_settings(
        &app,
        &alice,
        json!({"max_timeout_secs": null, "max_fuel_per_call": 1500}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["settings"].get("max_timeout_secs").is_none(), "{b}");
    assert_eq!(budget("?timeout=3000").await, 1500);
    assert_eq!(budget("?timeout=1").await, 1000);
    let (s, _) = set_settings(&app, &alice, json!({"max_fuel_per_call": 5000})).await;
    assert_eq!(s, 200);
    assert_eq!(budget("?timeout=3000").await, 5000);

    // A timeout that is not a positive number of seconds is refused.
    for q in ["timeout=0", "timeout=-2", "timeout=soon"] {
        let (s, r) = call(
            &app,
            &alice,
            &format!("alice/limits/{busy}?{q}"),
            Some("text/plain"),
            b"x",
        )
        .await;
        assert_eq!(
            (s, error_reason(&r).as_str()),
            (400, "invalid_input"),
            "{q}: {r}"
        );
        let message = r["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("seconds above 0"), "{q}: {r}");
    }
    app.stop().await;
}

/// The algorithm's timeout cap is the call's deadline too, whatever the
/// caller asks for (fuel here lasts far beyond it).
pub(crate) async fn an_algorithms_timeout_cap_is_its_calls_deadline(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    create(&app, &alice, "alice", "limits").await;
    let busy = build(&app, &alice, BUSY_WAT).await;
    let (s, b) = set_settings(&app, &alice, json!({"max_timeout_secs": 1})).await;
    assert_eq!(s, 200, "{b}");
    let r = failing_call(
        &app,
        &alice,
        &busy,
        "?timeout=3000",
        "AlgorithmTimeoutError",
    )
    .await;
    assert_eq!(
        r["error"]["message"].as_str(),
        Some("the call exceeded its time limit of 1s"),
        "{r}"
    );
    assert!(reported_units(&app, &r).await > 0, "{r}");
    // The cluster's own cap (3000 s by default) is the most an algorithm may set.
    let (s, b) = set_settings(&app, &alice, json!({"max_timeout_secs": 3001})).await;
    assert_eq!(
        (s, error_reason(&b).as_str()),
        (400, "invalid_input"),
        "{b}"
    );
    let (s, b) = set_settings(&app, &alice, json!({"max_timeout_secs": 3000})).await;
    assert_eq!(s, 200, "{b}");
    app.stop().await;
}
