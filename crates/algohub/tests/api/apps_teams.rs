//! Apps (search, sort, pins, duplicate, transfer) and teams (seats, grants).

use crate::support::{Db, TestApp, error_reason};
use serde_json::{Value, json};

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) async fn apps_search_sort_pin_duplicate_delete(db: Db) {
    let app = TestApp::new(&db).await;
    let bob = app.make_user("bob", false).await;
    let eve = app.make_user("eve", false).await;
    for n in ["beta", "Alpha", "gamma-vision", "delta"] {
        let (s, a) = app
            .post(
                "/v1/apps/bob",
                &bob,
                json!({"name": n, "description": format!("{n} app")}),
            )
            .await;
        assert_eq!(s, 201, "{a}");
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let (s, b) = app
        .post("/v1/apps/bob", &bob, json!({"name": "ALPHA"}))
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "name_taken"));
    let (s, _) = app
        .post("/v1/apps/bob", &bob, json!({"name": "bad/name"}))
        .await;
    assert_eq!(s, 400);
    let (_, l) = app.get("/v1/apps/bob?sort=name", &bob).await;
    assert_eq!(names(&l), vec!["Alpha", "beta", "delta", "gamma-vision"]);
    let (_, l) = app.get("/v1/apps/bob?sort=name&order=desc", &bob).await;
    assert_eq!(names(&l), vec!["gamma-vision", "delta", "beta", "Alpha"]);
    let (_, l) = app.get("/v1/apps/bob", &bob).await;
    assert_eq!(
        names(&l),
        vec!["delta", "gamma-vision", "Alpha", "beta"],
        "default: last updated first"
    );
    let (_, l) = app.get("/v1/apps/bob?search=VIS", &bob).await;
    assert_eq!(names(&l), vec!["gamma-vision"]);
    let (_, l) = app
        .get("/v1/apps/bob?sort=name&limit=2&offset=1", &bob)
        .await;
    assert_eq!(names(&l), vec!["beta", "delta"]);
    let (s, _) = app.get("/v1/apps/bob?sort=size", &bob).await;
    assert_eq!(s, 400);
    // Others see nothing of bob's private apps.
    let (_, l) = app.get("/v1/apps/bob", &eve).await;
    assert!(l.as_array().unwrap().is_empty());
    let (s, _) = app.get("/v1/apps/bob/beta", &eve).await;
    assert_eq!(s, 404);
    // Pins.
    let (s, _) = app
        .call(
            reqwest::Method::PUT,
            "/v1/apps/bob/beta/pin",
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, p) = app.get("/v1/pins", &bob).await;
    assert_eq!(names(&p), vec!["beta"]);
    let (s, _) = app
        .call(
            reqwest::Method::PUT,
            "/v1/apps/bob/beta/pin",
            Some(&eve),
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, _) = app.delete("/v1/apps/bob/beta/pin", &bob).await;
    assert_eq!(s, 204);
    let (_, p) = app.get("/v1/pins", &bob).await;
    assert!(names(&p).is_empty());
    // Duplicate and delete.
    let (s, d) = app
        .post(
            "/v1/apps/bob/beta/duplicate",
            &bob,
            json!({"name": "beta-copy"}),
        )
        .await;
    assert_eq!((s, d["description"].as_str()), (201, Some("beta app")));
    let (s, _) = app
        .post(
            "/v1/apps/bob/beta/duplicate",
            &bob,
            json!({"name": "delta"}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = app.delete("/v1/apps/bob/beta", &eve).await;
    assert_eq!(s, 404);
    let (s, _) = app.delete("/v1/apps/bob/beta", &bob).await;
    assert_eq!(s, 204);
    let (s, _) = app.get("/v1/apps/bob/beta", &bob).await;
    assert_eq!(s, 404);
    app.stop().await;
}

pub(crate) async fn transfer_personal_app_to_org(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let dave = app.make_user("dave", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "bob", "contributor").await;
    app.add_member("acme", "dave", "viewer").await;
    for (who, key) in [("bob", &bob), ("dave", &dave)] {
        let (s, _) = app
            .post(&format!("/v1/apps/{who}"), key, json!({"name": "sketch"}))
            .await;
        assert_eq!(s, 201);
    }
    app.post("/v1/apps/acme", &alice, json!({"name": "sketch"}))
        .await;
    // Name clash refused cleanly; rename works.
    let (s, b) = app
        .post("/v1/apps/bob/sketch/transfer", &bob, json!({"to": "acme"}))
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "name_taken"));
    let (s, moved) = app
        .post(
            "/v1/apps/bob/sketch/transfer",
            &bob,
            json!({"to": "acme", "name": "bob-sketch"}),
        )
        .await;
    assert_eq!(
        (s, moved["owner"].as_str(), moved["name"].as_str()),
        (200, Some("acme"), Some("bob-sketch")),
        "{moved}"
    );
    let (s, _) = app.get("/v1/apps/bob/sketch", &bob).await;
    assert_eq!(s, 404);
    let (s, _) = app.get("/v1/apps/acme/bob-sketch", &alice).await;
    assert_eq!(s, 200, "the org admin now manages it");
    // A viewer may not create apps in the org: transfer refused.
    let (s, b) = app
        .post(
            "/v1/apps/dave/sketch/transfer",
            &dave,
            json!({"to": "acme", "name": "d"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (403, "forbidden"));
    // Org apps cannot be transferred again; unknown orgs are 404.
    let (s, _) = app
        .post(
            "/v1/apps/acme/bob-sketch/transfer",
            &alice,
            json!({"to": "acme", "name": "x"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .post(
            "/v1/apps/dave/sketch/transfer",
            &dave,
            json!({"to": "nowhere"}),
        )
        .await;
    assert_eq!(s, 404);
    app.stop().await;
}

pub(crate) async fn teams_seats_and_app_grants(db: Db) {
    let app = TestApp::new(&db).await;
    let alice = app.make_user("alice", false).await;
    let carol = app.make_user("carol", false).await;
    let erin = app.make_user("erin", false).await;
    app.make_org("acme", &alice).await;
    app.add_member("acme", "carol", "team_contributor").await;
    app.post("/v1/apps/acme", &alice, json!({"name": "vision"}))
        .await;
    app.post("/v1/apps/acme", &alice, json!({"name": "speech"}))
        .await;

    let (s, t) = app
        .post(
            "/v1/organizations/acme/teams",
            &alice,
            json!({"name": "ml"}),
        )
        .await;
    assert_eq!((s, t["name"].as_str()), (201, Some("ml")));
    let (s, _) = app
        .post(
            "/v1/organizations/acme/teams",
            &alice,
            json!({"name": "ML"}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = app
        .post("/v1/organizations/acme/teams", &carol, json!({"name": "x"}))
        .await;
    assert_eq!(s, 403);
    // Seats only for members.
    let (s, b) = app
        .put(
            "/v1/organizations/acme/teams/ml/members/erin",
            &alice,
            json!({}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (400, "not_member"));
    let (s, _) = app
        .call(
            reqwest::Method::PUT,
            "/v1/organizations/acme/teams/ml/members/carol",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 204);
    // Before a grant, a team contributor sees no org app.
    let (s, _) = app.get("/v1/apps/acme/vision", &carol).await;
    assert_eq!(s, 404);
    let (s, _) = app
        .put(
            "/v1/organizations/acme/teams/ml/apps/vision",
            &alice,
            json!({"role": "superuser"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = app
        .put(
            "/v1/organizations/acme/teams/ml/apps/vision",
            &alice,
            json!({"role": "write"}),
        )
        .await;
    assert_eq!(s, 204);
    let (s, _) = app.get("/v1/apps/acme/vision", &carol).await;
    assert_eq!(s, 200);
    let (_, l) = app.get("/v1/apps/acme", &carol).await;
    assert_eq!(names(&l), vec!["vision"]);
    let (s, _) = app.delete("/v1/apps/acme/vision", &carol).await;
    assert_eq!(s, 403, "write is below admin");
    let (_, team) = app.get("/v1/organizations/acme/teams/ml", &carol).await;
    assert_eq!(team["members"][0]["username"], "carol");
    assert_eq!(team["apps"][0]["role"], "write");
    let (s, _) = app.get("/v1/organizations/acme/teams/ml", &erin).await;
    assert_eq!(s, 403);
    // Another team's detail lists only the apps the reader may see: carol
    // reads the team, but not the name of an app she has no grant on.
    let (s, _) = app
        .post(
            "/v1/organizations/acme/teams",
            &alice,
            json!({"name": "audio"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, _) = app
        .put(
            "/v1/organizations/acme/teams/audio/apps/speech",
            &alice,
            json!({"role": "read"}),
        )
        .await;
    assert_eq!(s, 204);
    let (_, l) = app.get("/v1/apps/acme", &carol).await;
    assert_eq!(names(&l), vec!["vision"], "the apps route hides speech");
    let (s, team) = app.get("/v1/organizations/acme/teams/audio", &carol).await;
    assert_eq!(s, 200, "{team}");
    assert_eq!(team["apps"], json!([]), "{team}");
    let (_, team) = app.get("/v1/organizations/acme/teams/audio", &alice).await;
    assert_eq!(team["apps"][0]["app"], "acme/speech", "{team}");
    // Revoke the grant, then the seat; delete the team.
    let (s, _) = app
        .delete("/v1/organizations/acme/teams/ml/apps/vision", &alice)
        .await;
    assert_eq!(s, 204);
    let (s, _) = app.get("/v1/apps/acme/vision", &carol).await;
    assert_eq!(s, 404);
    let (s, _) = app
        .delete("/v1/organizations/acme/teams/ml/members/carol", &alice)
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .delete("/v1/organizations/acme/teams/ml/members/carol", &alice)
        .await;
    assert_eq!(s, 400);
    let (s, _) = app.delete("/v1/organizations/acme/teams/ml", &alice).await;
    assert_eq!(s, 204);
    let (s, _) = app.get("/v1/organizations/acme/teams/ml", &alice).await;
    assert_eq!(s, 404);
    app.stop().await;
}
