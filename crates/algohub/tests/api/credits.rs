//! Prices and credits (issue 22 item 2): a call pays the price its version
//! was published with, prices are capped, overflowed ledgers are repaired,
//! and a paid call may not take its payer below the credit floor.

use crate::algorithms::{create, publish};
use crate::support::{Db, TestApp, error_reason};
use serde_json::json;

/// Royalties could not break the ledger before (issue 22 item 2): any price
/// up to i64::MAX, changed at once under a published version, summed until
/// SQLite's SUM overflowed and every balance answered 503 for good. Now a
/// version's price is fixed when it is published (shown in its
/// `version_info`), the cluster caps prices, and the migration repairs
/// ledgers that already overflowed.
pub(crate) async fn royalties_are_fixed_per_version_capped_and_repaired(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    create(&app, &alice, "alice", "echo").await;
    crate::algorithms::compile(&app, &alice, "alice/echo").await;
    let (s, v) = publish(&app, &alice, "alice/echo", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version_info"]["royalty_microcredits"], 5, "{v}");
    let call = async |path: &str| {
        let (s, r) = app
            .send_json(&format!("/v1/algo/{path}"), &bob, Some("text/plain"), "x")
            .await;
        assert_eq!((s, &r["result"]), (200, &json!("x")), "{r}");
    };
    let spent = async || {
        let (s, b) = app.get("/v1/users/bob/balance", &bob).await;
        assert_eq!(s, 200, "{b}");
        b["spent_microcredits"].as_i64().unwrap()
    };

    // A new price in the settings waits for the next version.
    let (s, v) = app
        .put(
            "/v1/algorithms/alice/echo",
            &alice,
            json!({"settings": {"royalty_microcredits": 9}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    call("alice/echo").await;
    assert_eq!(spent().await, 5, "the published version's price");
    crate::algorithms::compile(&app, &alice, "alice/echo").await;
    let (s, v) = publish(&app, &alice, "alice/echo", "minor", "public").await;
    assert_eq!(
        (s, &v["version_info"]["royalty_microcredits"]),
        (200, &json!(9)),
        "{v}"
    );
    call("alice/echo").await;
    call("alice/echo/0.1.0").await;
    assert_eq!(spent().await, 5 + 9 + 5);

    // The cluster's cap (max_royalty_microcredits, 10^9 by default).
    for price in [json!(1_000_000_001_i64), json!(i64::MAX)] {
        let (s, v) = app
            .put(
                "/v1/algorithms/alice/echo",
                &alice,
                json!({"settings": {"royalty_microcredits": price}}),
            )
            .await;
        assert_eq!(
            (s, error_reason(&v).as_str()),
            (400, "invalid_input"),
            "{v}"
        );
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains("max_royalty_microcredits"), "{message}");
    }

    // A ledger that overflowed before the cap (two postings of i64::MAX)
    // breaks the balances; the migration repairs it.
    let ids = (
        crate::governance::account_id(&app, "alice").await,
        crate::governance::account_id(&app, "bob").await,
    );
    let store = algohub_store::connect(&app.database_url).await.unwrap();
    for n in 0..2 {
        let sql = format!(
            "INSERT INTO ledger_entries (request_id, account_id, kind, amount_microcredits, at) \
             VALUES ('req-old-{n}', {}, 'royalty_debit', -9223372036854775807, 0), \
             ('req-old-{n}', {}, 'royalty_credit', 9223372036854775807, 0)",
            ids.1, ids.0
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .unwrap();
    }
    let (s, b) = app.get("/v1/users/bob/balance", &bob).await;
    assert!(
        s >= 500 || b["spent_microcredits"].as_i64() != Some(19),
        "{s} {b}"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(
        "DELETE FROM _sqlx_migrations WHERE version = 13".to_string(),
    ))
    .execute(store.pool())
    .await
    .unwrap();
    drop(store);
    let stopped = app.stop_keeping_data().await;
    let app = stopped.start_copy(&db).await;
    let (s, b) = app.get("/v1/users/bob/balance", &bob).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        b["spent_microcredits"].as_i64(),
        Some(19 + 2_000_000_000),
        "{b}"
    );
    assert_eq!(app.hub().store.ledger_total().await.unwrap(), 0);
    app.stop_and_drop(&db).await;
    stopped.drop_database(&db).await;
}

/// Callers were charged without a balance check (issue 22 item 2): now a
/// paid call may not take its payer below the cluster's credit floor (0 by
/// default), parallel calls included; it is refused with `limit_kind:
/// "credits"`. Free calls and calls of one's own algorithms need no credits.
/// Cluster admins grant credits (on the audit trail).
pub(crate) async fn calls_need_credits_above_the_floor(db: Db) {
    let app = TestApp::with(&db, |c| c.credit_floor_microcredits = 0).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    create(&app, &alice, "alice", "echo").await;
    crate::algorithms::compile(&app, &alice, "alice/echo").await;
    let (s, v) = publish(&app, &alice, "alice/echo", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    let call = async |key: &str| {
        app.send_json("/v1/algo/alice/echo", key, Some("text/plain"), "x")
            .await
    };

    // bob has no credits: refused, and it says why; alice calls her own.
    let (s, v) = call(&bob).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["error"]["limit_kind"], "credits", "{v}");
    assert_eq!(v["error"]["scope"], "account:bob", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("costs 5"),
        "{v}"
    );
    assert_eq!(call(&alice).await.0, 200);

    // A grant: two calls of 5 fit in 12, the third does not.
    let grant = |amount: i64, reason: &str| json!({"microcredits": amount, "reason": reason});
    let (s, v) = app
        .post("/v1/admin/accounts/bob/credits", &bob, grant(12, "me"))
        .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = app
        .post("/v1/admin/accounts/bob/credits", &app.root, grant(12, " "))
        .await;
    assert_eq!(
        (s, error_reason(&v).as_str()),
        (400, "invalid_input"),
        "{v}"
    );
    let (s, v) = app
        .post(
            "/v1/admin/accounts/bob/credits",
            &app.root,
            grant(12, "trial"),
        )
        .await;
    assert_eq!(
        (s, &v["balance_microcredits"], &v["granted_microcredits"]),
        (200, &json!(12), &json!(12)),
        "{v}"
    );
    assert_eq!(call(&bob).await.0, 200);
    assert_eq!(call(&bob).await.0, 200);
    assert_eq!(call(&bob).await.0, 429);

    // Twenty parallel calls with 52 left: at most 10 get through.
    let (s, _) = app
        .post(
            "/v1/admin/accounts/bob/credits",
            &app.root,
            grant(50, "more"),
        )
        .await;
    assert_eq!(s, 200);
    let paid_call = |_| {
        app.client
            .post(format!("{}/v1/algo/alice/echo", app.base))
            .header("Authorization", &bob)
            .header("Content-Type", "text/plain")
            .body("x")
    };
    let ok = crate::support::count_at_once(20, paid_call, 200, 429).await;
    assert!(
        (1..=10).contains(&ok),
        "{ok} paid calls with 52 microcredits"
    );
    let (_, b) = app.get("/v1/users/bob/balance", &bob).await;
    let left = b["balance_microcredits"].as_i64().unwrap();
    assert!(left >= 0, "{b}");
    assert_eq!(left, 62 - 10 - 5 * ok as i64, "{b}");
    assert_eq!(app.hub().store.ledger_total().await.unwrap(), 0);
    let records = crate::support::audit_records(&app, "credits.granted", 2).await;
    assert_eq!(records[0]["detail"]["reason"], "trial", "{records:?}");
    assert_eq!(
        records[0]["detail"]["new"],
        json!({"balance_microcredits": 12}),
        "{records:?}"
    );
    app.stop().await;
}
