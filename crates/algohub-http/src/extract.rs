//! Extractors. They authenticate (`Caller`) and parse (`JsonBody`, `QueryArgs`);
//! they never decide permissions: that is the policy engine's job.

use crate::AppState;
use crate::error::ApiError;
use algohub_core::audit::{AuditContext, CredentialKind};
use algohub_core::secrets::{CallTokenKey, SessionSecret, digest_hex};
use algohub_core::{Code, RequestCtx};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The request's id, set by the `front` middleware before any extractor
/// runs (`x-request-id`, the log line, audit and usage records).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Where `Caller` leaves an impersonation session's request context, so that
/// `front` puts the request on record once its outcome is known (set by
/// `front` on requests that present a session token).
#[derive(Debug, Clone, Default)]
pub struct ImpersonatedRequest(pub std::sync::Arc<std::sync::OnceLock<RequestCtx>>);

/// An authenticated caller: the request context (`RequestCtx`) built once per
/// request. Accepts `Authorization: <key>`, `Simple <key>` and
/// `Bearer <token>` (a personal access token is an API key; an `ahs_` token
/// is an impersonation session; an `ahc1.` token is an algorithm's call
/// token), or, without `Authorization`, the browser session cookie (whose
/// unsafe requests pass the CSRF checks, `cookie.rs`). The header is parsed
/// once and the token hashed once; the digest serves both the lookup and the
/// audit records.
#[derive(Debug, Clone)]
pub struct Caller(pub RequestCtx);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Already authenticated by a middleware (the admin gate).
        if let Some(done) = parts.extensions.get::<Caller>() {
            return Ok(done.clone());
        }
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            // No Authorization: a browser's session cookie, if it sent one.
            let token = crate::cookie::token(&parts.headers, &state.base_url).ok_or_else(|| {
                ApiError::new(
                    Code::Unauthenticated,
                    "authentication required: send an API key in the Authorization header, \
                     or sign in (POST /v1/session)",
                )
            })?;
            if !SessionSecret::looks_valid(token) {
                return Err(ApiError::new(
                    Code::InvalidKey,
                    "the session cookie is not valid: sign in again",
                ));
            }
            crate::cookie::check(parts, &state.base_url, token, None)?;
            let token = token.to_string();
            return authenticated(parts, state, CredentialKind::Cookie, &token).await;
        };
        let raw = header
            .to_str()
            .map_err(|_| {
                ApiError::new(
                    Code::InvalidKey,
                    "the Authorization header is not valid text",
                )
            })?
            .trim();
        let (scheme, token) = match raw.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("simple") => {
                (CredentialKind::Simple, rest.trim())
            }
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
                (CredentialKind::Bearer, rest.trim())
            }
            Some(_) => {
                return Err(ApiError::new(
                    Code::InvalidKey,
                    "unsupported Authorization scheme: use Simple or Bearer",
                ));
            }
            None => (CredentialKind::Key, raw),
        };
        let credential = if SessionSecret::looks_valid(token) {
            CredentialKind::Session
        } else if CallTokenKey::looks_like(token) {
            CredentialKind::CallToken
        } else {
            scheme
        };
        authenticated(parts, state, credential, token).await
    }
}

/// The request context of a presented credential, once it authenticates.
async fn authenticated(
    parts: &Parts,
    state: &AppState,
    credential: CredentialKind,
    token: &str,
) -> Result<Caller, ApiError> {
    let digest = digest_hex(token);
    let principal = state.hub.authenticator.authenticate(token, &digest).await?;
    // A browser session's token works only as its cookie, and the cookie
    // holds only a browser session's token.
    let browser = principal.session.is_some() && principal.impersonator.is_none();
    if principal.session.is_some() && browser != (credential == CredentialKind::Cookie) {
        return Err(ApiError::new(
            Code::InvalidKey,
            if browser {
                "a browser session's token works only as the session cookie"
            } else {
                "an impersonation session's token goes in the Authorization header"
            },
        ));
    }
    if let Some(k) = principal.key {
        state.hub.keys.record_key_use(k);
    }
    let audit = AuditContext {
        request_id: request_id(parts),
        credential,
        token_sha256: Some(digest),
        source: source_address(parts),
        acting_as: None,
        actor: None,
    };
    let ctx = RequestCtx::new(principal, audit);
    if ctx.principal.impersonator.is_some() {
        // Every request of an impersonation session is on record: with
        // its outcome once it is answered (`front`), or at once when
        // the router runs without `front`.
        match parts.extensions.get::<ImpersonatedRequest>() {
            Some(slot) => {
                let _ = slot.0.set(ctx.clone());
            }
            None => state.hub.audit.record_impersonated_request(
                &ctx,
                parts.method.as_str(),
                parts.uri.path(),
                "ok",
            ),
        }
    }
    Ok(Caller(ctx))
}

/// The browser session cookie's token, if the request has one.
pub struct SessionCookie(pub Option<String>);

impl FromRequestParts<AppState> for SessionCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(SessionCookie(
            crate::cookie::token(&parts.headers, &state.base_url).map(str::to_string),
        ))
    }
}

/// The request's Content-Type (without copying the other headers, as a
/// `HeaderMap` extractor would).
pub struct ContentType(pub Option<axum::http::HeaderValue>);

impl<S: Send + Sync> FromRequestParts<S> for ContentType {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ContentType(parts.headers.get(CONTENT_TYPE).cloned()))
    }
}

/// The request id `front` set (a fresh one if the router runs without it,
/// as some tests do).
pub fn request_id(parts: &Parts) -> String {
    parts
        .extensions
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(algohub_core::context::new_request_id)
}

/// The client's address, when the server was started with connect info.
pub fn source_address(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// A JSON body, parsed whatever the Content-Type: `curl -d` labels JSON as form
/// data, so a form Content-Type is accepted when the body is valid JSON (the
/// Algorithmia client's `update()` sends real form data, which is refused).
/// Every failure is a 4xx in the common error shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.starts_with("application/x-www-form-urlencoded") || v.starts_with("multipart/")
            });
        let bytes = RawBody::from_request(req, state).await?.0;
        match parse_json(&bytes) {
            // curl -d sends a form Content-Type; a valid JSON body is still JSON.
            Err(_) if form => Err(ApiError::new(
                Code::MalformedJson,
                "expected a JSON body (Content-Type: application/json), not form data",
            )),
            other => other.map(JsonBody),
        }
    }
}

/// The raw request body, with size and read errors in the common error shape.
pub struct RawBody(pub axum::body::Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(Code::PayloadTooLarge, "the request body is too large")
                } else {
                    ApiError::new(
                        Code::InvalidInput,
                        format!("could not read the request body: {e}"),
                    )
                }
            })
    }
}

fn has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Walks a JSON document and fails on an object that names a key twice
/// (which a `Value` would silently keep the last of).
struct NoDuplicateKeys;

impl<'de> serde::Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<NoDuplicateKeys>()?;
            if let Some(key) = seen.replace(key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {key:?}: name each field once"
                )));
            }
        }
        Ok(self)
    }
}

/// A body field that is a whole number, or null or absent (`None`); anything
/// else is a 400 naming the field and what to send (`hint`).
pub fn whole_or_null(
    value: Option<serde_json::Value>,
    field: &str,
    hint: &str,
) -> Result<Option<i64>, ApiError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(other) => Err(ApiError::new(
            Code::InvalidInput,
            format!("invalid {field} {other}: {hint}"),
        )),
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::new(Code::MissingField, "a JSON body is required"));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(Code::MalformedJson, format!("invalid JSON body: {e}")))?;
    serde_json::from_slice::<NoDuplicateKeys>(bytes)
        .map_err(|e| ApiError::new(Code::InvalidInput, format!("invalid JSON body: {e}")))?;
    if has_nul(&value) {
        return Err(ApiError::new(
            Code::InvalidInput,
            "text may not contain NUL characters",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let code = if inner.to_string().starts_with("missing field") {
            Code::MissingField
        } else {
            Code::InvalidInput
        };
        let msg = if path == "." || path.is_empty() {
            format!("invalid JSON body: {inner}")
        } else {
            format!("invalid JSON body at {path}: {inner}")
        };
        ApiError::new(code, msg)
    })
}

/// Query parameters with errors in the common shape.
pub struct QueryArgs<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q).map(QueryArgs).map_err(|e| {
            ApiError::new(Code::InvalidInput, format!("invalid query parameters: {e}"))
        })
    }
}

/// Parses a boolean the way the clients send it: true/false in any case, 1/0.
pub fn parse_bool(raw: Option<&str>) -> Result<Option<bool>, ApiError> {
    match raw.map(|s| s.to_ascii_lowercase()) {
        None => Ok(None),
        Some(s) if s == "true" || s == "1" => Ok(Some(true)),
        Some(s) if s == "false" || s == "0" => Ok(Some(false)),
        Some(s) => Err(ApiError::new(
            Code::InvalidInput,
            format!("invalid boolean {s:?}: use true or false"),
        )),
    }
}

/// Paging arguments (`limit`, `marker`) with a default and a cap.
pub fn page(
    limit: Option<&str>,
    marker: Option<String>,
    default: i64,
) -> Result<algohub_core::model::Page, ApiError> {
    let limit = match limit {
        None | Some("") => default,
        Some(s) => s.parse::<i64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            ApiError::new(
                Code::InvalidInput,
                format!("invalid limit {s:?}: use a whole number of at least 1"),
            )
        })?,
    };
    Ok(algohub_core::model::Page {
        limit: limit.min(1000),
        marker: marker.filter(|m| !m.is_empty()),
    })
}
