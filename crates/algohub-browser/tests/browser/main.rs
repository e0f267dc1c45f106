//! algohub's pages in a real browser: Debian's chromium, headless, driven
//! over WebDriver (chromedriver) with fantoccini, against the real server on
//! `127.0.0.1:0`. Elements are found by their visible label or text, as a
//! person finds them. Every page visited is saved as a screenshot in
//! `target/ui-screenshots/`.
//!
//! Needs `chromium` and `chromium-driver` (Debian); `.ci/run` installs them.
//! Without them the tests fail, saying so: they are not a default member of
//! the workspace, so the README's `cargo test` does not run them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use fantoccini::Locator;
use support::{Browser, Hub};

const PASSWORD: &str = "a long passphrase for the browser";
const DASHBOARD: &str = "//h1[normalize-space()='Dashboard']";

/// The input a `<label>` with this text names.
fn labelled(text: &str) -> String {
    format!("//input[@id=//label[normalize-space()='{text}']/@for]")
}

fn button(text: &str) -> String {
    format!("//button[normalize-space()='{text}']")
}

async fn fill_in_and_sign_in(b: &Browser, login: &str, password: &str) {
    let name =
        b.c.find(Locator::XPath(&labelled("Username or email")))
            .await
            .unwrap();
    name.clear().await.unwrap();
    name.send_keys(login).await.unwrap();
    let pw =
        b.c.find(Locator::XPath(&labelled("Password")))
            .await
            .unwrap();
    pw.send_keys(password).await.unwrap();
    b.c.find(Locator::XPath(&button("Sign in")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_see_the_dashboard_and_sign_out() {
    let hub = Hub::start().await;
    hub.user_with_password("grace", PASSWORD).await;
    let b = Browser::open().await;

    b.c.goto(&hub.url("/")).await.unwrap();
    assert_eq!(b.c.title().await.unwrap(), "Sign in · algohub");
    b.check_page().await;
    b.screenshot("login").await;

    // A wrong password: the form again, with the reason beside it.
    fill_in_and_sign_in(&b, "grace", "not the password at all").await;
    let alert =
        b.c.wait()
            .for_element(Locator::Css("[role=alert]"))
            .await
            .unwrap();
    let text = alert.text().await.unwrap();
    assert!(text.contains("do not match an account"), "{text}");
    let kept =
        b.c.find(Locator::XPath(&labelled("Username or email")))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
    assert_eq!(kept.as_deref(), Some("grace"), "the name typed stays");
    b.check_page().await;
    b.screenshot("login-error").await;

    // The right one: the dashboard.
    fill_in_and_sign_in(&b, "grace", PASSWORD).await;
    b.c.wait()
        .for_element(Locator::XPath(DASHBOARD))
        .await
        .unwrap();
    let body =
        b.c.find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    for text in [
        "grace",
        "Your algorithms",
        "Your apps",
        "Your organizations",
    ] {
        assert!(body.contains(text), "{text} in {body}");
    }
    b.check_page().await;
    b.screenshot("dashboard").await;

    // Sign out: back to the sign-in page, and / no longer shows the dashboard.
    b.c.find(Locator::XPath(&button("Sign out")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.c.wait()
        .for_element(Locator::XPath(&button("Sign in")))
        .await
        .unwrap();
    assert!(b.c.current_url().await.unwrap().path().ends_with("/login"));
    b.c.goto(&hub.url("/")).await.unwrap();
    assert_eq!(b.c.title().await.unwrap(), "Sign in · algohub");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_posted_from_another_site_is_refused() {
    let hub = Hub::start().await;
    hub.user_with_password("heidi", PASSWORD).await;
    let b = Browser::open().await;
    b.c.goto(&hub.url("/login")).await.unwrap();
    fill_in_and_sign_in(&b, "heidi", PASSWORD).await;
    b.c.wait()
        .for_element(Locator::XPath(DASHBOARD))
        .await
        .unwrap();

    // A page on another origin (same host, another port: the browser sends
    // the session cookie along) posts a sign-out form to algohub.
    let evil = support::serve_page(&format!(
        "<!doctype html><html lang=en><title>elsewhere</title><form method=post action=\"{}\">\
         <input type=hidden name=csrf_token value=guessed><button>Go</button></form></html>",
        hub.url("/logout")
    ))
    .await;
    b.c.goto(&evil).await.unwrap();
    b.c.find(Locator::XPath("//button[normalize-space()='Go']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.c.wait()
        .for_url(&url_of(&hub.url("/logout")))
        .await
        .unwrap();
    let answer = b.c.source().await.unwrap();
    assert!(answer.contains("csrf_refused"), "{answer}");
    b.screenshot("cross-site-refused").await;

    // Still signed in.
    b.c.goto(&hub.url("/")).await.unwrap();
    b.c.wait()
        .for_element(Locator::XPath(DASHBOARD))
        .await
        .unwrap();
    b.close().await;
}

fn url_of(s: &str) -> url::Url {
    s.parse().unwrap()
}
