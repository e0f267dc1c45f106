//! Defects found when the project was tried as a new user would (issue 21),
//! each pinned by a case that failed before its fix.

use crate::algorithms::{compile, create, publish, upload};
use crate::support::{Db, TestApp, error_reason};
use serde_json::json;

/// `/v1/users/{userId}/errors` and `/notifications...` take the user's UUID
/// (the Algorithmia client passes it: reference §1.5), and still the
/// username. A UUID names the user who has it even when another account's
/// username is spelled like it; a deleted user's UUID names nobody.
pub(crate) async fn user_routes_take_the_users_uuid(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;

    // A failing call of alice's algorithm, listed in her account's errors.
    create(&app, &alice, "alice", "broken").await;
    let (s, v) = upload(
        &app,
        &alice,
        "alice/broken",
        "text/plain",
        include_str!("../../../../examples/fail.wat").as_bytes(),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    compile(&app, &alice, "alice/broken").await;
    let (s, v) = publish(&app, &alice, "alice/broken", "minor", "public").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = app
        .send_json("/v1/algo/alice/broken", &bob, Some("text/plain"), "boom")
        .await;
    assert_eq!((s, v["error"].is_object()), (200, true), "{v}");

    let (s, me) = app.get("/v1/users/alice", &alice).await;
    assert_eq!(s, 200, "{me}");
    let uuid = me["id"].as_str().unwrap().to_string();
    assert_eq!(uuid.len(), 36, "{me}");

    // By UUID (as the client sends it, and in capitals, which §1.5 allows) and by name.
    for who in [uuid.clone(), uuid.to_ascii_uppercase(), "alice".to_string()] {
        let (s, list) = app.get(&format!("/v1/users/{who}/errors"), &alice).await;
        assert_eq!(s, 200, "errors of {who}: {list}");
        assert_eq!(
            (
                list[0]["algoname"].as_str(),
                list[0]["algorithm_owner"].as_str(),
                list[0]["username"].as_str()
            ),
            (Some("broken"), Some("alice"), Some("bob")),
            "errors of {who}: {list}"
        );
    }
    // Another user may not read them by UUID either; an unknown UUID is no user.
    let (s, v) = app.get(&format!("/v1/users/{uuid}/errors"), &bob).await;
    assert_eq!(s, 403, "{v}");
    let unknown = uuid::Uuid::new_v4();
    let (s, v) = app
        .get(&format!("/v1/users/{unknown}/errors"), &alice)
        .await;
    assert_eq!(
        (s, error_reason(&v).as_str()),
        (404, "user_not_found"),
        "{v}"
    );

    // Notifications: listed, counted and marked read by UUID.
    let (s, v) = app
        .post(
            "/v1/admin/notifications",
            &app.root,
            json!({"usernames": "alice", "text": "hello"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, n) = app
        .get(&format!("/v1/users/{uuid}/notifications/unread"), &alice)
        .await;
    assert_eq!((s, n["unread"].as_i64()), (200, Some(1)), "{n}");
    let (s, n) = app
        .post(
            &format!("/v1/users/{uuid}/notifications/read"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!((s, n["marked"].as_i64()), (200, Some(1)), "{n}");

    // A user whose name is spelled like alice's UUID does not take her routes.
    let shadow = app.make_user(&uuid, false).await;
    let (s, list) = app.get(&format!("/v1/users/{uuid}/errors"), &alice).await;
    assert_eq!(
        (s, list[0]["algoname"].as_str()),
        (200, Some("broken")),
        "{list}"
    );
    let (s, list) = app
        .get(&format!("/v1/users/{uuid}/notifications"), &alice)
        .await;
    assert_eq!(
        (s, list[0]["text"].as_str()),
        (200, Some("hello")),
        "{list}"
    );
    let (s, v) = app.get(&format!("/v1/users/{uuid}/errors"), &shadow).await;
    assert_eq!(s, 403, "{v}");

    // A deleted user's UUID names nobody, as their name does.
    let (s, v) = app.delete("/v1/users/alice", &app.root).await;
    assert_eq!(s, 204, "{v}");
    for route in ["errors", "notifications", "notifications/unread"] {
        let (s, v) = app
            .get(&format!("/v1/users/{uuid}/{route}"), &app.root)
            .await;
        assert_eq!(
            (s, error_reason(&v).as_str()),
            (404, "user_not_found"),
            "{route}: {v}"
        );
    }
}
