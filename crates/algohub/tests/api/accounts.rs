//! Users and organizations over the v1 routes: shapes, quirks, bad inputs.

use crate::support::{Db, TestApp, error_reason};
use reqwest::Method;
use serde_json::json;

pub(crate) async fn users_lifecycle_and_tombstones(db: Db) {
    let app = TestApp::new(&db).await;
    let root = app.root.clone();
    let (s, u) = app
        .post(
            "/v1/users",
            &root,
            json!({"username": "Alice", "email": "Alice@Example.com", "fullname": "Alice A"}),
        )
        .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["username"], "alice");
    assert_eq!(u["email"], "alice@example.com");
    assert_eq!(u["resource_type"], "user");
    assert_eq!(u["id"].as_str().unwrap().len(), 36);
    assert!(u.get("error").is_none());

    // Case-insensitive uniqueness of names and emails.
    let (s, b) = app
        .post(
            "/v1/users",
            &root,
            json!({"username": "ALICE", "email": "other@example.com"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "name_taken"));
    let (s, b) = app
        .post(
            "/v1/users",
            &root,
            json!({"username": "alice2", "email": "ALICE@example.com"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "email_taken"));

    // Get, update (username cannot change).
    let (s, g) = app.get("/v1/users/alice", &root).await;
    assert_eq!((s, g["fullname"].as_str()), (200, Some("Alice A")));
    let (s, g) = app
        .put(
            "/v1/users/alice",
            &root,
            json!({"username": "alice", "email": "alice@example.com", "fullname": "Alice B"}),
        )
        .await;
    assert_eq!((s, g["fullname"].as_str()), (200, Some("Alice B")));
    let (s, b) = app
        .put(
            "/v1/users/alice",
            &root,
            json!({"username": "bob", "email": "alice@example.com"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (400, "invalid_input"));

    // Delete tombstones the name and the email forever.
    let (s, _) = app.delete("/v1/users/alice", &root).await;
    assert_eq!(s, 204);
    let (s, b) = app.get("/v1/users/alice", &root).await;
    assert_eq!((s, error_reason(&b).as_str()), (404, "user_not_found"));
    let (s, b) = app
        .post(
            "/v1/users",
            &root,
            json!({"username": "alice", "email": "new@example.com"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "name_taken"));
    let (s, b) = app
        .post(
            "/v1/users",
            &root,
            json!({"username": "alicia", "email": "alice@example.com"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "email_taken"));
    // Org names share the namespace with the tombstone too.
    let (s, b) = app
        .post(
            "/v1/organizations",
            &root,
            json!({"org_name": "alice", "org_email": "a@b.co", "type_id": "basic"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "name_taken"));
    app.stop().await;
}

pub(crate) async fn bad_inputs_get_4xx_and_change_nothing(db: Db) {
    let app = TestApp::new(&db).await;
    let root = app.root.clone();
    let cases = vec![
        (
            json!({"username": "a b", "email": "x@example.com"}),
            400,
            "invalid_name",
        ),
        (
            json!({"username": "_x", "email": "x@example.com"}),
            400,
            "invalid_name",
        ),
        (
            json!({"username": "valid", "email": "not-an-email"}),
            400,
            "invalid_email",
        ),
        (json!({"email": "x@example.com"}), 400, "missing_field"),
        (
            json!({"username": 42, "email": "x@example.com"}),
            400,
            "invalid_input",
        ),
        (
            json!({"username": "valid", "email": "x@example.com", "fullname": "x".repeat(101)}),
            400,
            "invalid_input",
        ),
    ];
    for (body, status, reason) in cases {
        let (s, b) = app.post("/v1/users", &root, body.clone()).await;
        assert_eq!((s, error_reason(&b).as_str()), (status, reason), "{body}");
    }
    // Malformed JSON, empty body, form data, oversized body.
    let url = format!("{}/v1/users", app.base);
    let send = |body: Vec<u8>, ct: &'static str| {
        app.client
            .post(&url)
            .header("Authorization", root.clone())
            .header("Content-Type", ct)
            .body(body)
            .send()
    };
    let r = send(b"{\"username\": ".to_vec(), "application/json")
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(error_reason(&r.json().await.unwrap()), "malformed_json");
    let r = send(Vec::new(), "application/json").await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(error_reason(&r.json().await.unwrap()), "missing_field");
    // A field named twice is refused, not taken from its last occurrence
    // (nested objects too), and the refusal names it.
    for body in [
        r#"{"username": "twice", "email": "t@example.com", "username": "other"}"#,
        r#"{"username": "twice", "email": "t@example.com", "details": {"a": 1, "a": 2}}"#,
    ] {
        let r = send(body.as_bytes().to_vec(), "application/json")
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let b: serde_json::Value = r.json().await.unwrap();
        assert_eq!(error_reason(&b), "invalid_input", "{b}");
        assert!(b.to_string().contains("duplicate key"), "{b}");
    }
    let (s, _) = app.get("/v1/users/twice", &root).await;
    assert_eq!(s, 404, "nothing was created");
    let r = send(
        b"details=label".to_vec(),
        "application/x-www-form-urlencoded",
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let big = format!(
        "{{\"username\": \"big\", \"email\": \"big@example.com\", \"fullname\": \"{}\"}}",
        "x".repeat(300 * 1024)
    );
    let r = send(big.into_bytes(), "application/json").await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(error_reason(&r.json().await.unwrap()), "payload_too_large");
    // Unknown routes and methods answer in the error shape too.
    let (s, b) = app.get("/v1/nope", &root).await;
    assert_eq!((s, error_reason(&b).as_str()), (404, "route_not_found"));
    let (s, b) = app
        .call(Method::PATCH, "/v1/users", Some(&root), None)
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (405, "method_not_allowed"));
    // Bad paging.
    let (s, b) = app.get("/v1/users?limit=0", &root).await;
    assert_eq!((s, error_reason(&b).as_str()), (400, "invalid_input"));
    // Nothing was created by any of the above.
    let (_, list) = app.get("/v1/users?limit=100", &root).await;
    let names: Vec<_> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["root"]);
    app.stop().await;
}

pub(crate) async fn authorization_header_forms_and_refusals(db: Db) {
    let app = TestApp::new(&db).await;
    let key = app.root.clone();
    for header in [
        key.clone(),
        format!("Simple {key}"),
        format!("Bearer {key}"),
        format!("simple {key}"),
    ] {
        let (s, b) = app.get("/v1/users/root", &header).await;
        assert_eq!(s, 200, "{header}: {b}");
    }
    let (s, b) = app.call(Method::GET, "/v1/users/root", None, None).await;
    assert_eq!((s, error_reason(&b).as_str()), (401, "unauthenticated"));
    let (s, b) = app
        .get("/v1/users/root", "simAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (401, "invalid_key"));
    let (s, _) = app.get("/v1/users/root", "Basic abc").await;
    assert_eq!(s, 401);
    // Trailing and doubled slashes route the same.
    let (s, _) = app.get("//v1/users/root/", &key).await;
    assert_eq!(s, 200);
    // A non-admin cannot create or list users.
    let bob = app.make_user("bob", false).await;
    let (s, b) = app
        .post(
            "/v1/users",
            &bob,
            json!({"username": "x1", "email": "x1@example.com"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (403, "forbidden"));
    let (s, _) = app.get("/v1/users", &bob).await;
    assert_eq!(s, 403);
    let (s, _) = app.get("/v1/users/root", &bob).await;
    assert_eq!(s, 403);
    app.stop().await;
}

pub(crate) async fn user_listing_pages_with_markers(db: Db) {
    let app = TestApp::new(&db).await;
    for i in 0..7 {
        app.make_user(&format!("user{i}"), false).await;
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let path = match &marker {
            Some(m) => format!("/v1/users?limit=3&marker={m}"),
            None => "/v1/users?limit=3".to_string(),
        };
        let (s, page) = app.get(&path, &app.root).await;
        assert_eq!(s, 200);
        for u in page["results"].as_array().unwrap() {
            seen.push(u["username"].as_str().unwrap().to_string());
        }
        match page["marker"].as_str() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    let mut expected: Vec<String> = (0..7).map(|i| format!("user{i}")).collect();
    expected.insert(0, "root".into());
    expected.sort();
    assert_eq!(seen, expected);
    app.stop().await;
}

pub(crate) async fn organizations_types_members_and_last_admin(db: Db) {
    let app = TestApp::new(&db).await;
    let root = app.root.clone();
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    let erin = app.make_user("erin", false).await;

    let (s, types) = app.get("/v1/organization/types", &alice).await;
    assert_eq!(s, 200);
    let basic = types
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "basic")
        .expect("basic type")
        .clone();

    // type_id by id works; an empty or unknown type is refused.
    let (s, b) = app
        .post(
            "/v1/organizations",
            &alice,
            json!({"org_name": "acme", "org_email": "ops@acme.test", "type_id": ""}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (400, "missing_field"));
    let (s, b) = app
        .post(
            "/v1/organizations",
            &alice,
            json!({"org_name": "acme", "org_email": "ops@acme.test", "type_id": "nope"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (404, "org_type_not_found"));
    let (s, o) = app
        .post("/v1/organizations", &alice, json!({"org_name": "acme", "org_label": "Acme", "org_contact_name": "Ops", "org_email": "ops@acme.test", "type_id": basic["id"]}))
        .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(
        (o["org_name"].as_str(), o["resource_type"].as_str()),
        (Some("acme"), Some("organization"))
    );

    // An outsider sees the profile but not the contact details.
    let (s, o) = app.get("/v1/organizations/acme", &erin).await;
    assert_eq!(s, 200);
    assert!(o.get("org_email").is_none());
    let (_, o) = app.get("/v1/organizations/acme", &alice).await;
    assert_eq!(o["org_email"], "ops@acme.test");
    assert_eq!(o["my_role"], "admin");

    // Org admin's v1 member PUT invites; cluster admin's adds at once.
    let (s, _) = app
        .call(
            Method::PUT,
            "/v1/organizations/acme/members/bob",
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, m) = app.get("/v1/organizations/acme/members", &alice).await;
    let roles: Vec<(String, String)> = m["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["username"].as_str().unwrap().into(),
                x["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        vec![
            ("alice".into(), "owner".into()),
            ("bob".into(), "invited".into())
        ]
    );
    assert!(
        m["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["resource_type"] == "organization_member")
    );
    let (s, _) = app
        .call(
            Method::PUT,
            "/v1/organizations/acme/members/erin",
            Some(&root),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (_, m) = app.get("/v1/organizations/acme/members", &erin).await;
    assert!(
        m["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["username"] == "erin"
                && x["role"] == "member"
                && x["algohub_role"] == "contributor")
    );
    // Removing an `invited` entry rescinds the invitation.
    let (s, _) = app
        .delete("/v1/organizations/acme/members/bob", &alice)
        .await;
    assert_eq!(s, 204);
    let (_, m) = app.get("/v1/organizations/acme/members", &alice).await;
    assert!(
        m["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["username"] != "bob"),
        "{m}"
    );
    let (s, b) = app
        .delete("/v1/organizations/acme/members/bob", &alice)
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (400, "not_member"));
    // A member cannot manage members.
    let (s, _) = app
        .call(
            Method::PUT,
            "/v1/organizations/acme/members/root",
            Some(&erin),
            None,
        )
        .await;
    assert_eq!(s, 403);

    // The last admin cannot leave, be demoted, or be deleted.
    let (s, b) = app
        .delete("/v1/organizations/acme/members/alice", &alice)
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "last_admin"));
    let (s, b) = app
        .put(
            "/v1/organizations/acme/members/alice/role",
            &alice,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "last_admin"));
    let (s, b) = app.delete("/v1/users/alice", &root).await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "last_admin"));
    // Name another admin, then the first may leave.
    let (s, _) = app
        .put(
            "/v1/organizations/acme/members/erin/role",
            &alice,
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = app
        .delete("/v1/organizations/acme/members/alice", &alice)
        .await;
    assert_eq!(s, 204);
    let (s, _) = app
        .put(
            "/v1/organizations/acme/members/erin/role",
            &erin,
            json!({"role": "owner"}),
        )
        .await;
    assert_eq!(s, 400, "unknown role refused");

    // Update and delete.
    let (s, o) = app
        .put(
            "/v1/organizations/acme",
            &erin,
            json!({"org_label": "ACME Corp", "org_url": "https://acme.test"}),
        )
        .await;
    assert_eq!((s, o["org_label"].as_str()), (200, Some("ACME Corp")));
    let (s, _) = app
        .put(
            "/v1/organizations/acme",
            &bob,
            json!({"org_label": "hijack"}),
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = app.delete("/v1/organizations/acme", &erin).await;
    assert_eq!(s, 204);
    let (s, _) = app.get("/v1/organizations/acme", &erin).await;
    assert_eq!(s, 404);
    let (s, _) = app
        .post(
            "/v1/organizations",
            &erin,
            json!({"org_name": "acme", "org_email": "x@acme.test", "type_id": "basic"}),
        )
        .await;
    assert_eq!(s, 409, "org names are tombstoned too");
    app.stop().await;
}

pub(crate) async fn max_orgs_per_user_is_enforced(db: Db) {
    let app = TestApp::with(&db, |c| c.max_orgs_per_user = Some(1)).await;
    let alice = app.make_user("alice", false).await;
    let bob = app.make_user("bob", false).await;
    app.make_org("one", &alice).await;
    let (s, b) = app
        .post(
            "/v1/organizations",
            &alice,
            json!({"org_name": "two", "org_email": "x@two.test", "type_id": "basic"}),
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "org_limit"));
    app.make_org("three", &bob).await;
    let (s, b) = app
        .call(
            Method::PUT,
            "/v1/organizations/three/members/alice",
            Some(&app.root),
            None,
        )
        .await;
    assert_eq!((s, error_reason(&b).as_str()), (409, "org_limit"));
    app.stop().await;
}

pub(crate) async fn org_types_admin_routes(db: Db) {
    let app = TestApp::new(&db).await;
    let bob = app.make_user("bob", false).await;
    let (s, t) = app
        .post("/v1/organization/types", &app.root, json!({"name": "edu"}))
        .await;
    assert_eq!((s, t["name"].as_str()), (200, Some("edu")));
    let (s, _) = app
        .post("/v1/organization/types", &app.root, json!({"name": "EDU"}))
        .await;
    assert_eq!(s, 409);
    let (s, _) = app
        .post("/v1/organization/types", &bob, json!({"name": "gov"}))
        .await;
    assert_eq!(s, 403);
    let (s, _) = app.delete("/v1/organization/types/edu", &app.root).await;
    assert_eq!(s, 204);
    let (s, _) = app.delete("/v1/organization/types/edu", &app.root).await;
    assert_eq!(s, 404);
    app.stop().await;
}
