//! The audit trail over the real server: records carry the request's facts
//! (never the token), refused admin requests are recorded, and the hash chain
//! catches records edited, deleted or reordered directly in the database.

use crate::support::{Db, TestApp, error_reason};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn verify(app: &TestApp) -> Value {
    let (s, v) = app.get("/v1/admin/audit/verify", &app.root).await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn exec(pool: &sqlx::AnyPool, sql: String) {
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
        .execute(pool)
        .await
    {
        panic!("{sql}: {e}");
    }
}

/// Tampers with the rows `ids` (saved first), checks that verification
/// names `expect_bad`, then puts the rows back and checks the chain is whole.
async fn tamper(app: &TestApp, pool: &sqlx::AnyPool, ids: &[i64], how: &str, expect_bad: i64) {
    let list = ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    exec(pool, "DROP TABLE IF EXISTS events_saved".into()).await;
    exec(
        pool,
        format!("CREATE TABLE events_saved AS SELECT * FROM events WHERE id IN ({list})"),
    )
    .await;
    exec(pool, how.to_string()).await;
    let v = verify(app).await;
    assert_eq!(v["ok"], false, "{how}: {v}");
    assert_eq!(v["first_bad"]["id"], expect_bad, "{how}: {v}");
    assert!(v["first_bad"]["reason"].as_str().unwrap().len() > 10);
    exec(pool, format!("DELETE FROM events WHERE id IN ({list})")).await;
    exec(pool, "INSERT INTO events SELECT * FROM events_saved".into()).await;
    assert_eq!(verify(app).await["ok"], true, "restored after {how}");
}

async fn audit_case(app: TestApp) {
    let bob = app.make_user("bob", false).await;
    app.make_user("carol", false).await;
    for path in ["/v1/admin/users/bob/admin", "/v1/admin/users/carol/admin"] {
        let (s, v) = app.put(path, &app.root, json!({})).await;
        assert_eq!(s, 200, "{v}");
    }
    app.delete("/v1/admin/users/carol/admin", &app.root).await;
    app.delete("/v1/admin/users/bob/admin", &app.root).await;
    let (s, v) = app
        .post("/v1/admin/users/carol/suspend", &app.root, json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    // A refused admin request is on record too (written in the background).
    let (s, _) = app.get("/v1/admin/users", &bob).await;
    assert_eq!(s, 403);
    let start = Instant::now();
    let denied = loop {
        let (_, v) = app
            .get("/v1/admin/audit?action=authz.denied", &app.root)
            .await;
        if let Some(r) = v["results"].as_array().unwrap().first() {
            break r.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "refusal recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        (denied["actor"].as_str(), denied["outcome"].as_str()),
        (Some("bob"), Some("denied")),
        "{denied}"
    );

    // The request's facts, and a digest of the token, never the token.
    let (s, v) = app
        .get(
            "/v1/admin/audit?action=user.roles_set&actor=root",
            &app.root,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{v}");
    let r = &rows[0];
    assert_eq!(
        (
            r["auth_method"].as_str(),
            r["source"].as_str(),
            r["outcome"].as_str()
        ),
        (Some("key"), Some("127.0.0.1"), Some("ok")),
        "{r}"
    );
    assert_eq!(
        r["token_sha256"].as_str(),
        Some(algohub_core::secrets::digest_hex(&app.root).as_str())
    );
    assert!(r["request_id"].as_str().unwrap().starts_with("req-"), "{r}");
    let raw = v.to_string();
    assert!(!raw.contains(&app.root), "the token itself is never stored");
    // Filters, paging and JSON lines.
    let carol_id = app
        .hub()
        .store
        .get_account_by_name("carol")
        .await
        .unwrap()
        .id;
    let (_, v) = app
        .get(&format!("/v1/admin/audit?target={carol_id}"), &app.root)
        .await;
    let actions: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"account.status_set") && actions.contains(&"user.roles_set"),
        "{actions:?}"
    );
    let (_, p1) = app.get("/v1/admin/audit?limit=2", &app.root).await;
    let next = p1["next"].as_str().unwrap();
    let (_, p2) = app
        .get(&format!("/v1/admin/audit?limit=2&after={next}"), &app.root)
        .await;
    assert!(p2["results"][0]["id"].as_i64() > p1["results"][1]["id"].as_i64());
    let (s, _, body) = app
        .send_raw(
            reqwest::Method::GET,
            "/v1/admin/audit?format=jsonl&limit=3",
            &app.root,
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(s, 200);
    let lines: Vec<Value> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for bad in [
        "from=yesterday",
        "limit=-1",
        "format=xml",
        "actor=nobody",
        "colour=red",
    ] {
        let (s, v) = app.get(&format!("/v1/admin/audit?{bad}"), &app.root).await;
        assert!(s == 400 || s == 404, "{bad}: {s} {v}");
        error_reason(&v);
    }

    // The chain is whole; each kind of tampering is caught at the right record.
    let v = verify(&app).await;
    assert_eq!(v["ok"], true, "{v}");
    let (_, all) = app.get("/v1/admin/audit?limit=1000", &app.root).await;
    let ids: Vec<i64> = all["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(ids.len() >= 6, "{ids:?}");
    assert_eq!(v["checked"].as_u64(), Some(ids.len() as u64));
    // Three records in a row, the middle one with an actor (so that clearing
    // the actor is a change).
    let rows = all["results"].as_array().unwrap();
    let i = (2..ids.len() - 1)
        .find(|&i| rows[i]["actor"].is_string())
        .expect("a record with an actor");
    let (a, b, c) = (ids[i - 1], ids[i], ids[i + 1]);
    let store = algohub_store::connect(&app.database_url).await.unwrap();
    let pool = store.pool();
    tamper(
        &app,
        pool,
        &[b],
        &format!("UPDATE events SET detail = '{{\"cluster_admin\":false}}' WHERE id = {b}"),
        b,
    )
    .await;
    tamper(
        &app,
        pool,
        &[b],
        &format!("UPDATE events SET actor_id = NULL WHERE id = {b}"),
        b,
    )
    .await;
    tamper(
        &app,
        pool,
        &[b],
        &format!("UPDATE events SET at = at + 1 WHERE id = {b}"),
        b,
    )
    .await;
    tamper(
        &app,
        pool,
        &[b],
        &format!("DELETE FROM events WHERE id = {b}"),
        c,
    )
    .await;
    // Reordering: two records trade places (ids swapped).
    tamper(
        &app,
        pool,
        &[a, b],
        &format!(
            "UPDATE events SET id = -1 WHERE id = {a}; UPDATE events SET id = {a} WHERE id = {b}; \
             UPDATE events SET id = {b} WHERE id = -1"
        ),
        a,
    )
    .await;
    // A forged record inserted in the middle.
    exec(pool, "DROP TABLE IF EXISTS events_saved".into()).await;
    let forged = format!(
        "INSERT INTO events (id, kind, actor_id, subject, detail, at, outcome, request_id, auth_method, prev_hash, hash) \
         SELECT {b} * 1000, kind, actor_id, subject, detail, at, outcome, request_id, auth_method, prev_hash, hash FROM events WHERE id = {b}"
    );
    exec(pool, forged).await;
    let v = verify(&app).await;
    assert_eq!(
        (v["ok"].as_bool(), v["first_bad"]["id"].as_i64()),
        (Some(false), Some(b * 1000)),
        "{v}"
    );
    exec(pool, format!("DELETE FROM events WHERE id = {b} * 1000")).await;
    assert_eq!(verify(&app).await["ok"], true);
}

pub(crate) async fn audit_trail(db: Db) {
    audit_case(TestApp::new(&db).await).await;
}

pub(crate) async fn audit_verify_command(db: Db) {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url().await;
    let bin = env!("CARGO_BIN_EXE_algohub");
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .env("ALGOHUB_DATA_DIR", dir.path())
            .env("ALGOHUB_DATABASE_URL", &url)
            .env("ALGOHUB_LOG_LEVEL", "error")
            .output()
            .unwrap()
    };
    for name in ["ann", "ben"] {
        let email = format!("{name}@example.com");
        assert!(
            run(&[
                "admin",
                "create-user",
                "--username",
                name,
                "--email",
                &email,
                "--admin"
            ])
            .status
            .success()
        );
    }
    let ok = run(&["audit", "verify"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("audit chain intact"));
    // Edit the first record directly in the database.
    let store = algohub_store::connect(&url).await.unwrap();
    let first: i64 = sqlx::Row::get(
        &sqlx::query("SELECT MIN(id) FROM events WHERE hash IS NOT NULL")
            .fetch_one(store.pool())
            .await
            .unwrap(),
        0,
    );
    exec(
        store.pool(),
        format!("UPDATE events SET subject = 'someone-else' WHERE id = {first}"),
    )
    .await;
    store.pool().close().await;
    let bad = run(&["audit", "verify"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("audit chain broken at record"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// A flood of refused admin requests is recorded up to the per-second
/// budget; the rest are counted, and maintenance puts the count on record
/// (`authz.denied_dropped`), so recorded plus dropped is every refusal.
pub(crate) async fn dropped_refusal_records_are_summarized(db: Db) {
    let app = TestApp::new(&db).await;
    let bob = app.make_user("bob", false).await;
    const FLOOD: u64 = 200;
    let sent: Vec<_> = (0..FLOOD)
        .map(|_| {
            let request = app
                .client
                .get(format!("{}/v1/admin/users", app.base))
                .header("Authorization", &bob);
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    for s in sent {
        assert_eq!(s.await.unwrap(), 403);
    }
    // Recorded in the background: wait until the records stop coming.
    let mut recorded = 0;
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, v) = app
            .get("/v1/admin/audit?action=authz.denied&limit=1000", &app.root)
            .await;
        let now = v["results"].as_array().unwrap().len();
        if now == recorded && now > 0 {
            break;
        }
        recorded = now;
        assert!(start.elapsed() < Duration::from_secs(60), "{v}");
    }
    assert!((recorded as u64) < FLOOD, "the budget held: {recorded}");
    app.hub().run_maintenance().await.unwrap();
    let (_, v) = app
        .get("/v1/admin/audit?action=authz.denied_dropped", &app.root)
        .await;
    let summaries = v["results"].as_array().unwrap();
    assert_eq!(summaries.len(), 1, "{v}");
    let dropped = summaries[0]["detail"]["dropped"].as_u64().unwrap();
    assert_eq!(recorded as u64 + dropped, FLOOD, "{v}");
    // Nothing more dropped: no new summary.
    app.hub().run_maintenance().await.unwrap();
    let (_, v) = app
        .get("/v1/admin/audit?action=authz.denied_dropped", &app.root)
        .await;
    assert_eq!(v["results"].as_array().unwrap().len(), 1, "{v}");
    app.stop().await;
}

/// Governance changes are recorded with the fields they changed, old and
/// new, and name their actor (issue 22 item 5): an org's settings, an
/// algorithm's settings, a user's profile, a collection's ACL, a work limit.
pub(crate) async fn governance_changes_keep_old_and_new_values(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    app.make_org("acme", &alice).await;
    let last = async |action: &str| -> Value {
        let records = crate::support::audit_records(&app, action, 1).await;
        records.last().cloned().unwrap()
    };

    let (s, v) = app
        .put(
            "/v1/organizations/acme",
            &alice,
            json!({"allow_self_approval": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let r = last("org.updated").await;
    assert_eq!(r["actor"], "alice", "{r}");
    assert_eq!(
        r["detail"],
        json!({"old": {"allow_self_approval": false}, "new": {"allow_self_approval": true}}),
        "{r}"
    );

    crate::algorithms::create(&app, &alice, "alice", "echo").await;
    let (s, v) = app
        .put(
            "/v1/algorithms/alice/echo",
            &alice,
            json!({"settings": {"royalty_microcredits": 7, "algorithm_callability": "public"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let r = last("algorithm.updated").await;
    assert_eq!(r["actor"], "alice", "{r}");
    assert_eq!(
        (
            &r["detail"]["old"]["royalty_microcredits"],
            &r["detail"]["new"]["royalty_microcredits"]
        ),
        (&json!(5), &json!(7)),
        "{r}"
    );
    assert_eq!(r["detail"]["new"]["algorithm_callability"], "public", "{r}");
    assert!(
        r["detail"]["new"].get("license").is_none(),
        "only what changed: {r}"
    );

    let (s, v) = app
        .put(
            "/v1/users/alice",
            &alice,
            json!({"username": "alice", "email": "alice@example.com", "fullname": "Alice New"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let r = last("user.updated").await;
    assert_eq!(r["detail"]["new"], json!({"fullname": "Alice New"}), "{r}");

    let (s, v) = app
        .post("/v1/data/.my", &alice, json!({"name": "coll"}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app
        .call(
            Method::PATCH,
            "/v1/data/.my/coll",
            Some(&alice),
            Some(json!({"acl": {"read": ["user://*"]}})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let r = last("data.acl_set").await;
    assert_eq!(
        (&r["actor"], &r["detail"]),
        (
            &json!("alice"),
            &json!({"old": {"acl": "my_algos"}, "new": {"acl": "public"}})
        ),
        "{r}"
    );

    let (s, v) = app
        .put(
            "/v1/admin/accounts/alice/work-limit",
            &app.root,
            json!({"work_limit": 3}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let r = last("account.work_limit_set").await;
    assert_eq!(
        (&r["actor"], &r["detail"]),
        (
            &json!("root"),
            &json!({"old": {"work_limit": null}, "new": {"work_limit": 3}})
        ),
        "{r}"
    );
    app.stop().await;
}
