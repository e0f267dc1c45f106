//! Notifications: admin messages (validated, all or nothing), system
//! notifications from the outbox, the v1 list shape, unread counts, marking read.

use crate::support::{Db, TestApp, error_reason};
use serde_json::json;

async fn notifications_case(app: TestApp) {
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    // Unknown names are all reported and nothing is sent.
    let (s, v) = app
        .post(
            "/v1/admin/notifications",
            &app.root,
            json!({"usernames": "alice, ghost,bob,spectre", "text": "hi"}),
        )
        .await;
    assert_eq!(
        (s, error_reason(&v)),
        (404, "user_not_found".to_string()),
        "{v}"
    );
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("ghost") && msg.contains("spectre"), "{msg}");
    let (_, n) = app
        .get("/v1/users/alice/notifications/unread", &alice)
        .await;
    assert_eq!(n["unread"], 0, "nothing half-sent");
    for bad in [
        json!({"usernames": "alice", "text": "  "}),
        json!({"usernames": " , ", "text": "hi"}),
        json!({"usernames": "alice", "text": "hi", "url": "javascript:alert(1)"}),
        json!({"usernames": "alice", "text": "x".repeat(2001)}),
        json!({"usernames": "alice"}),
    ] {
        let (s, v) = app
            .post("/v1/admin/notifications", &app.root, bad.clone())
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let (s, _) = app
        .post(
            "/v1/admin/notifications",
            &alice,
            json!({"usernames": "bob", "text": "hi"}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, v) = app
        .post("/v1/admin/notifications", &app.root, json!({"usernames": "alice,BOB,alice", "text": "Maintenance tonight", "url": "/status"}))
        .await;
    assert_eq!((s, v["sent"].as_i64()), (200, Some(2)), "{v}");

    // A system notification: a work limit change reaches the user at once.
    let (s, _) = app
        .put(
            "/v1/admin/accounts/alice/work-limit",
            &app.root,
            json!({"work_limit": 7}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, list) = app.get("/v1/users/alice/notifications", &alice).await;
    assert_eq!(s, 200, "{list}");
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(items[0]["notification_type"], "work_limit_changed");
    assert_eq!(items[0]["text"], "Your concurrent call limit is now 7");
    assert_eq!(
        (items[1]["text"].as_str(), items[1]["url"].as_str()),
        (Some("Maintenance tonight"), Some("/status"))
    );
    for field in [
        "notification_id",
        "algorithm_id",
        "username",
        "algoname",
        "created_at",
    ] {
        assert!(items[0][field].is_string(), "{field} in {}", items[0]);
    }
    assert!(items[0]["read_at"].is_null());
    // By UUID too, paged, and only for the user or an admin.
    let (_, me) = app.get("/v1/users/alice", &alice).await;
    let uuid = me["id"].as_str().unwrap();
    let (s, by_id) = app
        .get(&format!("/v1/users/{uuid}/notifications?limit=1"), &alice)
        .await;
    assert_eq!((s, by_id.as_array().unwrap().len()), (200, 1), "{by_id}");
    let before = by_id[0]["id"].as_i64().unwrap();
    let (_, older) = app
        .get(
            &format!("/v1/users/alice/notifications?before={before}"),
            &alice,
        )
        .await;
    assert_eq!(older[0]["text"], "Maintenance tonight", "{older}");
    let (s, _) = app.get("/v1/users/alice/notifications", &bob).await;
    assert_eq!(s, 403);
    let (s, _) = app.get("/v1/users/alice/notifications", &app.root).await;
    assert_eq!(s, 200);
    for bad in ["limit=0", "limit=101", "since=soon", "before=x"] {
        let (s, v) = app
            .get(&format!("/v1/users/alice/notifications?{bad}"), &alice)
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
    }

    // Unread count and marking read.
    let (_, n) = app
        .get("/v1/users/alice/notifications/unread", &alice)
        .await;
    assert_eq!(n["unread"], 2);
    let (s, m) = app
        .post(
            &format!("/v1/users/alice/notifications/{before}/read"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!((s, m["marked"].as_i64()), (200, Some(1)), "{m}");
    let (_, n) = app
        .get("/v1/users/alice/notifications/unread", &alice)
        .await;
    assert_eq!(n["unread"], 1);
    let (_, bobs) = app.get("/v1/users/bob/notifications", &bob).await;
    let bob_note = bobs[0]["id"].as_i64().unwrap();
    let (s, _) = app
        .post(
            &format!("/v1/users/alice/notifications/{bob_note}/read"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(s, 404, "not alice's");
    let (s, m) = app
        .post("/v1/users/alice/notifications/read", &alice, json!({}))
        .await;
    assert_eq!((s, m["marked"].as_i64()), (200, Some(1)));
    let (_, n) = app
        .get("/v1/users/alice/notifications/unread", &alice)
        .await;
    assert_eq!(n["unread"], 0);
    let (_, list) = app.get("/v1/users/alice/notifications", &alice).await;
    assert!(list[0]["read_at"].is_string(), "{list}");
}

pub(crate) async fn notifications(db: Db) {
    notifications_case(TestApp::new(&db).await).await;
}
