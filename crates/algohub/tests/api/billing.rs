//! Billing over the real server: royalties in a balanced ledger,
//! consolidated billing, org reports, sudo calls, refused calls and the
//! account error lists.

use crate::algorithms::{build_upstream, create, publish};
use crate::governance::{account_id, gauged_upstream, published_upstream, report_days};
use crate::support::{Db, TestApp, error_reason};
use serde_json::json;

pub(crate) async fn consolidated_billing_and_org_reports(db: Db) {
    let app = TestApp::new(&db).await;
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
    let q = report_days();
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
    // One row, on the day of the calls (today, or yesterday if the run
    // crossed midnight).
    let rows = by_day["results"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{by_day}");
    let day = rows[0]["day"].as_str().unwrap();
    assert!(
        q.contains(&format!("date={day}")) && rows[0]["calls"] == 2,
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

pub(crate) async fn sudo_calls_run_as_the_owner_and_are_not_attributed_to_it(db: Db) {
    let app = TestApp::new(&db).await;
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
    let days = report_days();
    let (_, owner) = app
        .get(
            &format!("/v1/users/alice/usage?{days}&side=owner&group_by=algorithm"),
            &alice,
        )
        .await;
    assert!(owner["results"].as_array().unwrap().is_empty(), "{owner}");
    let (_, b) = app.get("/v1/users/alice/balance", &alice).await;
    assert_eq!(b["earned_microcredits"].as_i64(), Some(0), "{b}");

    // With the role switched off, sudo calls are refused outright.
    let off = TestApp::with(&db, |c| c.sudo_users_enabled = false).await;
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
    // Nor does explain answer about sudo calls, or list who may make them.
    for path in [
        "/v1/authz/explain?principal=sue&action=algo.call_sudo&resource=cluster",
        "/v1/authz/who?action=algo.call_sudo&resource=cluster",
    ] {
        let (s, v) = off.get(path, &off.root).await;
        let refused = (s, error_reason(&v));
        assert_eq!(refused, (403, "sudo_disabled".to_string()), "{path}: {v}");
    }
    // The OpenAPI document describes no sudo role either (the enabled one does).
    let (_, doc) = app.get("/openapi.json", &app.root).await;
    let (_, doc_off) = off.get("/openapi.json", &off.root).await;
    let sudo_paths = |d: &serde_json::Value| {
        let paths = d["paths"].as_object().expect("paths");
        paths.keys().filter(|p| p.ends_with("/sudo")).count()
    };
    assert_eq!((sudo_paths(&doc) > 0, sudo_paths(&doc_off)), (true, 0));
    assert!(doc.to_string().contains("sudo_user"));
    assert!(!doc_off.to_string().contains("sudo_user"));
    assert!(doc.to_string().contains("sudo=true"));
    assert!(!doc_off.to_string().contains("sudo=true"));
}

pub(crate) async fn refused_calls_are_metered_and_account_errors_are_listed(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let (s, v) = app
        .send_json("/v1/algo/alice/missing", &bob, Some("text/plain"), "x")
        .await;
    assert_eq!(s, 404, "{v}");
    let days = report_days();
    let (_, r) = app
        .get(
            &format!("/v1/users/bob/usage?{days}&group_by=algorithm"),
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
    app.hub().metering.settle_usage().await.unwrap();
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
    app.hub().metering.settle_usage().await.unwrap();
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
    app.hub().metering.settle_usage().await.unwrap();
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

/// Calls made with an org key and with a member key say so in their
/// records; with consolidated billing the org pays for the member key's call.
pub(crate) async fn org_and_member_key_calls_are_recorded_as_such(db: Db) {
    let app = TestApp::new(&db).await;
    let (base, _) = gauged_upstream().await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "bob", "contributor").await;
    let upstream = format!("{base}/hold?ms=1");
    published_upstream(&app, &bob, "acme", "tool", &upstream).await;
    let approve = "/v1/algorithms/acme/tool/versions/0.1.0/approve";
    let (s, v) = app.post(approve, &alice, json!({"reason": "ok"})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app
        .put(
            "/v1/organizations/acme",
            &alice,
            json!({"consolidated_billing": true}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let perms = json!({"allow_algo": true, "allow_data": false, "allow_data_write": false,
                       "allow_web_algo": false, "allow_algo_management": false, "algo_acl": ["*"]});
    let body = json!({"key_label": "shared", "permissions": perms});
    let (s, k) = app.post("/v1/organizations/acme/keys", &alice, body).await;
    assert_eq!(s, 200, "{k}");
    let org_key = k["api_key"].as_str().unwrap().to_string();
    let (s, k) = app
        .post("/v1/organizations/acme/members/bob/keys", &alice, json!({}))
        .await;
    assert_eq!(s, 200, "{k}");
    let member_key = k["api_key"].as_str().unwrap().to_string();
    for (key, via, caller) in [
        (&org_key, "org_key", "acme"),
        (&member_key, "member_key", "bob"),
    ] {
        let (s, r) = app
            .send_json("/v1/algo/acme/tool", key, Some("text/plain"), "x")
            .await;
        assert_eq!((s, r.get("error")), (200, None), "{via}: {r}");
        let rid = r["request_id"].as_str().unwrap();
        let (s, rec) = app
            .get(&format!("/v1/admin/usage/calls/{rid}"), &app.root)
            .await;
        assert_eq!(s, 200, "{rec}");
        assert_eq!(
            (
                rec["via"].as_str(),
                rec["caller"].as_str(),
                rec["payer"].as_str()
            ),
            (Some(via), Some(caller), Some("acme")),
            "{rec}"
        );
    }
}
