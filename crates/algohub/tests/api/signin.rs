//! Signing in with a password over the real server: the session cookie and
//! its attributes, what it may do (CSRF: the token and the same-site check for
//! requests that change something), signing out, one answer for every wrong
//! name or password, and the audit trail (never the password).

use crate::support::{Db, TestApp, audit_records, error_reason};
use algohub_core::services::CreateUser;
use reqwest::Method;
use serde_json::{Value, json};

pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A user with a password (and no key).
pub(crate) async fn user_with_password(app: &TestApp, name: &str) {
    app.hub()
        .accounts
        .create_user_unchecked(
            &algohub_core::audit::AuditContext::cli(),
            CreateUser {
                username: name.into(),
                email: format!("{name}@example.com"),
                full_name: name.into(),
                password: Some(PASSWORD.into()),
                ..Default::default()
            },
        )
        .await
        .expect("user created");
}

/// A request with the session cookie `cookie` and the extra `headers`; answers
/// status, `Set-Cookie` headers and the JSON body.
pub(crate) async fn with_cookie(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Vec<String>, Value) {
    let mut req = app.client.request(method, format!("{}{path}", app.base));
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("algohub_session={c}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let cookies = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect();
    let v = resp.json().await.unwrap_or(Value::Null);
    (status, cookies, v)
}

/// Signs in; answers the session token (the cookie's value) and the CSRF token.
async fn sign_in(app: &TestApp, login: Value) -> (String, String) {
    let (s, cookies, v) =
        with_cookie(app, Method::POST, "/v1/session", None, &[], Some(login)).await;
    assert_eq!(s, 200, "{v}");
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("algohub_session="))
        .unwrap_or_else(|| panic!("a session cookie in {cookies:?}"));
    let token = cookie["algohub_session=".len()..]
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    (
        token,
        v["csrf_token"].as_str().unwrap_or_default().to_string(),
    )
}

pub(crate) async fn password_sign_in_sets_a_session_cookie_and_signs_out(db: Db) {
    let owned = TestApp::new(&db).await;
    let app = &owned;
    user_with_password(app, "carol").await;
    let (s, cookies, v) = with_cookie(
        app,
        Method::POST,
        "/v1/session",
        None,
        &[],
        Some(json!({"username": "carol", "password": PASSWORD})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["account"], "carol", "{v}");
    assert_eq!(v["idle_timeout_minutes"], 60, "{v}");
    let cookie = cookies.first().cloned().unwrap_or_default();
    for part in [
        "algohub_session=ahs_",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    // Plain HTTP (the test server's base URL): not Secure, no __Host- prefix.
    assert!(!cookie.contains("Secure"), "{cookie}");
    let csrf = v["csrf_token"].as_str().unwrap_or_default().to_string();
    assert_eq!(csrf.len(), 64, "{v}");

    // The email works as well as the name, in any case; each sign-in is a
    // new session with its own tokens.
    let (token, csrf2) = sign_in(
        app,
        json!({"email": "Carol@Example.com", "password": PASSWORD}),
    )
    .await;
    assert_ne!(csrf, csrf2);
    let t = Some(token.as_str());

    let (s, _, v) = with_cookie(app, Method::GET, "/v1/session", t, &[], None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["account"], "carol", "{v}");
    assert_eq!(v["credential"], "browser_session", "{v}");
    assert_eq!(v["csrf_token"], csrf2.as_str(), "{v}");
    assert!(v["impersonation"].is_null(), "{v}");

    // A request that changes something needs the CSRF token...
    let algo = json!({"name": "hello", "details": {"label": "Hello"},
        "settings": {"source_visibility": "closed", "license": "apl", "network_access": "isolated", "pipeline_enabled": false}});
    let (s, _, v) = with_cookie(
        app,
        Method::POST,
        "/v1/algorithms/carol",
        t,
        &[],
        Some(algo.clone()),
    )
    .await;
    assert_eq!((s, error_reason(&v).as_str()), (403, "csrf_refused"), "{v}");
    let (s, _, v) = with_cookie(
        app,
        Method::POST,
        "/v1/algorithms/carol",
        t,
        &[("X-CSRF-Token", csrf.as_str())],
        Some(algo.clone()),
    )
    .await;
    assert_eq!(
        (s, error_reason(&v).as_str()),
        (403, "csrf_refused"),
        "another session's token: {v}"
    );
    // ... and must come from this site.
    for cross in [
        [
            ("X-CSRF-Token", csrf2.as_str()),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        [
            ("X-CSRF-Token", csrf2.as_str()),
            ("Origin", "http://evil.example"),
        ],
    ] {
        let (s, _, v) = with_cookie(
            app,
            Method::POST,
            "/v1/algorithms/carol",
            t,
            &cross,
            Some(algo.clone()),
        )
        .await;
        assert_eq!(
            (s, error_reason(&v).as_str()),
            (403, "csrf_refused"),
            "{cross:?}: {v}"
        );
    }
    let origin = app.base.clone();
    let (s, _, v) = with_cookie(
        app,
        Method::POST,
        "/v1/algorithms/carol",
        t,
        &[
            ("X-CSRF-Token", csrf2.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
            ("Origin", origin.as_str()),
        ],
        Some(algo.clone()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "hello", "{v}");

    // An API key is not a cookie: no CSRF token, whatever the Origin says.
    let admin = app.root.clone();
    let resp = app
        .client
        .get(format!("{}/v1/session", app.base))
        .header("Authorization", admin.as_str())
        .header("Origin", "http://evil.example")
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 200);

    // The session's token works only as the cookie.
    let resp = app
        .client
        .get(format!("{}/v1/session", app.base))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status().as_u16(), 401);

    // A sign-in from another site is refused (login CSRF).
    let (s, _, v) = with_cookie(
        app,
        Method::POST,
        "/v1/session",
        None,
        &[("Sec-Fetch-Site", "cross-site")],
        Some(json!({"username": "carol", "password": PASSWORD})),
    )
    .await;
    assert_eq!((s, error_reason(&v).as_str()), (403, "csrf_refused"), "{v}");

    // Signing out ends the session and clears the cookie.
    let (s, _, v) = with_cookie(app, Method::DELETE, "/v1/session", t, &[], None).await;
    assert_eq!((s, error_reason(&v).as_str()), (403, "csrf_refused"), "{v}");
    let (s, cookies, v) = with_cookie(
        app,
        Method::DELETE,
        "/v1/session",
        t,
        &[("X-CSRF-Token", csrf2.as_str())],
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ended"], true, "{v}");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("algohub_session=;") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
    let (s, _, v) = with_cookie(app, Method::GET, "/v1/session", t, &[], None).await;
    assert_eq!((s, error_reason(&v).as_str()), (401, "invalid_key"), "{v}");
    // Without any credential the refusal says how to sign in.
    let (s, _, v) = with_cookie(app, Method::GET, "/v1/session", None, &[], None).await;
    assert_eq!(s, 401, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("sign in"),
        "{v}"
    );

    // On the audit trail, without the password.
    let signed_in = audit_records(app, "auth.signed_in", 2).await;
    assert!(
        signed_in.iter().all(|r| r["auth_method"] == "none"),
        "{signed_in:?}"
    );
    let ended = audit_records(app, "session.ended", 1).await;
    assert_eq!(ended[0]["detail"]["reason"], "signed_out", "{ended:?}");
    let created = audit_records(app, "algorithm.created", 1).await;
    assert_eq!(created[0]["auth_method"], "cookie", "{created:?}");
    let (_, all) = app.get("/v1/admin/audit?limit=10000", &app.root).await;
    assert!(
        !all.to_string().contains(PASSWORD),
        "the password is on record"
    );
    owned.stop().await;
}

pub(crate) async fn wrong_names_and_passwords_get_one_answer(db: Db) {
    let owned = TestApp::new(&db).await;
    let app = &owned;
    user_with_password(app, "dave").await;
    // A user without a password (made with a key only) cannot sign in either.
    app.make_user("erin", false).await;
    let attempts = [
        json!({"username": "dave", "password": "not the password"}),
        json!({"username": "nobody", "password": "not the password"}),
        json!({"email": "nobody@example.com", "password": PASSWORD}),
        json!({"username": "erin", "password": PASSWORD}),
    ];
    let mut answers = Vec::new();
    for a in attempts {
        let (s, cookies, v) =
            with_cookie(app, Method::POST, "/v1/session", None, &[], Some(a)).await;
        assert!(cookies.is_empty(), "{cookies:?}");
        answers.push((
            s,
            v["error"]["code"].clone(),
            v["error"]["message"].clone(),
            error_reason(&v),
        ));
    }
    assert_eq!(answers[0].0, 401, "{answers:?}");
    assert_eq!(answers[0].3, "sign_in_failed", "{answers:?}");
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "one answer: {answers:?}"
    );

    // Bad requests say what is wrong.
    for (body, reason) in [
        (json!({"username": "dave"}), "missing_field"),
        (
            json!({"username": "dave", "email": "dave@example.com", "password": PASSWORD}),
            "invalid_input",
        ),
        (json!({"password": PASSWORD}), "invalid_input"),
        (
            json!({"username": " ", "password": PASSWORD}),
            "missing_field",
        ),
        (
            json!({"username": "dave", "password": PASSWORD, "remember": true}),
            "invalid_input",
        ),
    ] {
        let (s, _, v) = with_cookie(
            app,
            Method::POST,
            "/v1/session",
            None,
            &[],
            Some(body.clone()),
        )
        .await;
        assert_eq!((s, error_reason(&v).as_str()), (400, reason), "{body}: {v}");
    }

    // A suspended account with the right password is told it is suspended.
    let (s, v) = app
        .post("/v1/admin/users/dave/suspend", &app.root, json!({}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = with_cookie(
        app,
        Method::POST,
        "/v1/session",
        None,
        &[],
        Some(json!({"username": "dave", "password": PASSWORD})),
    )
    .await;
    assert_eq!(
        (s, error_reason(&v).as_str()),
        (401, "account_suspended"),
        "{v}"
    );

    let failed = audit_records(app, "auth.sign_in_failed", 4).await;
    assert!(
        failed.iter().all(|r| r["outcome"] == "refused"),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|r| r["target"] == "login:nobody"),
        "{failed:?}"
    );
    let (_, all) = app.get("/v1/admin/audit?limit=10000", &app.root).await;
    assert!(
        !all.to_string().contains("not the password"),
        "a password is on record"
    );
    owned.stop().await;
}
