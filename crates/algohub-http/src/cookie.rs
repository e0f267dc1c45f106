//! The browser session cookie and the checks a request authenticated by it
//! must pass (CSRF).
//!
//! The cookie holds the session token (`ahs_...`, stored only as a digest);
//! it is `HttpOnly` and `SameSite=Lax`, and, when the cluster's `base_url` is
//! `https://` (served over TLS, or behind a TLS proxy), `Secure` with the
//! `__Host-` prefix. A request it authenticates with an unsafe method must
//! carry the session's CSRF token (header `X-CSRF-Token`, or the form field
//! `csrf_token` on the pages' forms) and must not come from another site
//! (`Sec-Fetch-Site`, else `Origin`). The CSRF token is derived from the
//! session token, so nothing more is stored and it changes with the session.

use crate::error::ApiError;
use algohub_core::Code;
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};

/// The cookie's name over plain HTTP.
pub const PLAIN_NAME: &str = "algohub_session";
/// The cookie's name over HTTPS: the prefix makes browsers insist on
/// `Secure`, `Path=/` and no `Domain`.
pub const SECURE_NAME: &str = "__Host-algohub_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Whether the cluster is reached over HTTPS (its `base_url`).
pub fn secure(base_url: &str) -> bool {
    base_url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

fn name(base_url: &str) -> &'static str {
    if secure(base_url) {
        SECURE_NAME
    } else {
        PLAIN_NAME
    }
}

/// The session token in the request's cookie, if any.
pub fn token<'a>(headers: &'a HeaderMap, base_url: &str) -> Option<&'a str> {
    let name = name(base_url);
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session, kept by the browser for `max_age_secs`.
pub fn set(base_url: &str, token: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if secure(base_url) { "; Secure" } else { "" };
    let value = format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}",
        name(base_url)
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear(base_url: &str) -> HeaderValue {
    let secure = if secure(base_url) { "; Secure" } else { "" };
    let value = format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        name(base_url)
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The CSRF token of the session whose token is `session_token`.
pub fn csrf_token(session_token: &str) -> String {
    algohub_core::secrets::digest_hex(&format!("algohub-csrf:{session_token}"))
}

/// Whether the method changes nothing (and so needs no CSRF token).
pub fn safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn refused(why: &str) -> ApiError {
    ApiError::new(Code::CsrfRefused, why.to_string())
}

/// Refuses a request sent from another site: by `Sec-Fetch-Site` when the
/// browser sends it, else by `Origin` (which must be this cluster's, as its
/// `base_url` or the request's `Host` names it). A request with neither (not
/// from a browser's page) passes this check.
pub fn same_site(headers: &HeaderMap, base_url: &str) -> Result<(), ApiError> {
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.to_str() {
            Ok("same-origin" | "none") => Ok(()),
            _ => Err(refused(
                "this request came from another site; a request with the session cookie must \
                 come from algohub's own pages",
            )),
        };
    }
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let base = base_url.trim_end_matches('/');
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    let ours = origin.eq_ignore_ascii_case(base)
        || host.is_some_and(|h| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(h))
        });
    if ours {
        Ok(())
    } else {
        Err(refused(
            "this request came from another origin; a request with the session cookie must \
             come from algohub's own pages",
        ))
    }
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The CSRF checks of a request authenticated by the session cookie whose
/// token is `session_token`: an unsafe method needs the session's token in
/// `X-CSRF-Token` (or `form_token`, a page form's field) and must come from
/// this site.
pub fn check(
    parts: &Parts,
    base_url: &str,
    session_token: &str,
    form_token: Option<&str>,
) -> Result<(), ApiError> {
    if safe(&parts.method) {
        return Ok(());
    }
    same_site(&parts.headers, base_url)?;
    let presented = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(form_token);
    match presented {
        Some(t) if same(t.trim(), &csrf_token(session_token)) => Ok(()),
        Some(_) => Err(refused(
            "the CSRF token does not match this session: reload the page and try again",
        )),
        None => Err(refused(
            "a request with the session cookie that changes something must carry the session's \
             CSRF token (header X-CSRF-Token; GET /v1/session gives it)",
        )),
    }
}
