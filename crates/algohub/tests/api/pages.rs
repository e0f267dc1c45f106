//! The pages over the real server (without a browser: `algohub-browser` has
//! those tests): the sign-in page and its labels, the CSP and the stylesheet,
//! a wrong password, a cross-site post, the dashboard, signing out.

use crate::signin::{PASSWORD, user_with_password, with_cookie};
use crate::support::{Db, TestApp};
use reqwest::Method;
use serde_json::json;

/// A page request (no redirects followed): status, headers and body text.
async fn page(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    headers: &[(&str, &str)],
    form: Option<&[(&str, &str)]>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut req = client.request(method, format!("{}{path}", app.base));
    if let Some(c) = cookie {
        req = req.header("Cookie", format!("algohub_session={c}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(f) = form {
        let body = f
            .iter()
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        req = req
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap_or_default())
}

fn url_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) async fn pages_sign_in_show_the_dashboard_and_sign_out(db: Db) {
    let owned = TestApp::new(&db).await;
    let app = &owned;
    user_with_password(app, "frank").await;
    // Signed out, / is the sign-in page, with its labels and a strict CSP.
    let (s, h, html) = page(app, Method::GET, "/", None, &[], None).await;
    assert_eq!(s, 200, "{html}");
    assert!(
        h["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    let csp = h["content-security-policy"].to_str().unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    for text in [
        ">Username or email</label>",
        ">Password</label>",
        ">Sign in</button>",
    ] {
        assert!(html.contains(text), "{text} in {html}");
    }
    // The stylesheet, under its content-hashed name, cached for long.
    let css = html
        .split("href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    assert!(
        css.starts_with("/assets/app-") && css.ends_with(".css"),
        "{css}"
    );
    let (s, h, body) = page(app, Method::GET, &css, None, &[], None).await;
    assert_eq!(s, 200);
    assert!(
        h["cache-control"]
            .to_str()
            .unwrap_or_default()
            .contains("immutable")
    );
    assert!(body.contains(":root"), "{body}");
    let (s, _, _) = page(
        app,
        Method::GET,
        "/assets/app-000000000000.css",
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(s, 404);

    // A wrong password: the form again, with the reason and the name as
    // typed (escaped), never the password.
    let typed = "frank<script>x</script>";
    let (s, _, html) = page(
        app,
        Method::POST,
        "/login",
        None,
        &[],
        Some(&[("login", typed), ("password", "wrong wrong wrong")]),
    )
    .await;
    assert_eq!(s, 401, "{html}");
    assert!(html.contains("do not match an account"), "{html}");
    assert!(
        html.contains("frank&#60;script&#62;") || html.contains("frank&lt;script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert!(!html.contains("wrong wrong wrong"), "{html}");

    // A post from another site is refused.
    let (s, _, html) = page(
        app,
        Method::POST,
        "/login",
        None,
        &[("Sec-Fetch-Site", "cross-site")],
        Some(&[("login", "frank"), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(s, 403, "{html}");

    // The right one: to the dashboard, with the session cookie.
    let (s, h, _) = page(
        app,
        Method::POST,
        "/login",
        None,
        &[("Sec-Fetch-Site", "same-origin")],
        Some(&[("login", "frank"), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(s, 303);
    assert_eq!(h["location"], "/");
    let cookie = h["set-cookie"].to_str().unwrap_or_default();
    let token = cookie["algohub_session=".len()..]
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let t = Some(token.as_str());
    // The dashboard lists what is theirs.
    let (_, _, v) = with_cookie(app, Method::GET, "/v1/session", t, &[], None).await;
    let csrf = v["csrf_token"].as_str().unwrap_or_default().to_string();
    let algo = json!({"name": "greeter", "details": {"label": "Greeter"},
        "settings": {"source_visibility": "closed", "license": "apl", "network_access": "isolated", "pipeline_enabled": false}});
    let (s, _, v) = with_cookie(
        app,
        Method::POST,
        "/v1/algorithms/frank",
        t,
        &[("X-CSRF-Token", csrf.as_str())],
        Some(algo),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _, html) = page(app, Method::GET, "/", t, &[], None).await;
    assert_eq!(s, 200, "{html}");
    for text in [
        "Dashboard",
        "frank",
        "frank/greeter",
        "Greeter",
        "Your apps",
        "Your organizations",
        ">Sign out</button>",
    ] {
        assert!(html.contains(text), "{text} in {html}");
    }
    assert!(
        html.contains(&format!("name=\"csrf_token\" value=\"{csrf}\"")),
        "{html}"
    );
    // Signed in, /login goes to the dashboard.
    let (s, h, _) = page(app, Method::GET, "/login", t, &[], None).await;
    assert_eq!((s, h["location"].to_str().unwrap_or_default()), (303, "/"));

    // Signing out needs the session's CSRF token.
    let (s, _, _) = page(
        app,
        Method::POST,
        "/logout",
        t,
        &[],
        Some(&[("csrf_token", "nope")]),
    )
    .await;
    assert_eq!(s, 403);
    let (s, h, _) = page(
        app,
        Method::POST,
        "/logout",
        t,
        &[],
        Some(&[("csrf_token", csrf.as_str())]),
    )
    .await;
    assert_eq!(
        (s, h["location"].to_str().unwrap_or_default()),
        (303, "/login")
    );
    assert!(
        h["set-cookie"]
            .to_str()
            .unwrap_or_default()
            .contains("Max-Age=0")
    );
    // The session is over: / offers to sign in again.
    let (s, _, html) = page(app, Method::GET, "/", t, &[], None).await;
    assert_eq!(s, 200);
    assert!(html.contains(">Sign in</button>"), "{html}");
    owned.stop().await;
}
