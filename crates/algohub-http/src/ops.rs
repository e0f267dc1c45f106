//! Operations: health, readiness, Prometheus metrics, the OpenAPI document, and
//! the request middleware (path normalization, request id, metrics, logs).

use crate::AppState;
use crate::error::ApiResult;
use crate::routes::Routes;
use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::time::Instant;
use utoipa::ToSchema;
use utoipa_axum::routes;

/// Liveness or readiness.
#[derive(Serialize, ToSchema)]
struct Health {
    /// ok (liveness), ready or unavailable (readiness).
    status: &'static str,
    /// The store's backend (readiness).
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<&'static str>,
}

#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "Liveness: the process answers", security(()), responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        store: None,
    })
}

#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "Readiness: the store answers", security(()), responses((status = 200, body = Health)))]
async fn readyz(State(s): State<AppState>) -> Response {
    match s.hub.store.ping().await {
        Ok(()) => Json(Health {
            status: "ready",
            store: Some(s.hub.store.backend().as_str()),
        })
        .into_response(),
        Err(e) => {
            metrics::counter!("algohub_store_errors_total").increment(1);
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                    store: Some(s.hub.store.backend().as_str()),
                }),
            )
                .into_response()
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics", security(()), responses((status = 200, content((String = "text/plain")))))]
async fn prometheus(State(s): State<AppState>) -> Response {
    let stats = s.hub.policy.stats();
    metrics::gauge!("algohub_policy_index_users").set(stats.users as f64);
    metrics::gauge!("algohub_policy_index_keys").set(stats.keys as f64);
    metrics::gauge!("algohub_policy_seq").set(s.hub.policy.seq() as f64);
    let body = s.metrics.as_ref().map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations", summary = "This OpenAPI document", security(()), responses((status = 200, body = Object)))]
async fn openapi(State(s): State<AppState>) -> ApiResult<Json<utoipa::openapi::OpenApi>> {
    Ok(Json(s.openapi.clone()))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(healthz))
        .typed(routes!(readyz))
        .typed(routes!(prometheus))
        .typed(routes!(openapi))
}

/// Collapses repeated slashes and drops a trailing slash, before routing
/// (`//v1/users/` is `/v1/users`).
pub fn normalize_path(mut req: Request) -> Request {
    let path = req.uri().path();
    let needs = path.contains("//") || (path.len() > 1 && path.ends_with('/'));
    if needs {
        let mut clean = String::with_capacity(path.len());
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            clean.push('/');
            clean.push_str(seg);
        }
        if clean.is_empty() {
            clean.push('/');
        }
        if let Some(q) = req.uri().query() {
            clean.push('?');
            clean.push_str(q);
        }
        let mut parts = req.uri().clone().into_parts();
        if let Ok(pq) = clean.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(uri) = Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

/// Refuses a NUL byte (`%00`) anywhere in the path or query: no name, id or
/// search contains one, and some databases reject it outright.
fn nul_refusal(req: &Request) -> Option<Response> {
    let raw = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
    // `%00` has no letters, so no case to fold.
    raw.contains("%00").then(|| {
        crate::error::ApiError::new(
            algohub_core::Code::InvalidInput,
            "the URL may not contain NUL characters",
        )
        .into_response()
    })
}

/// Marks a response whose non-JSON error body is intended (e.g. `output=raw`).
#[derive(Clone, Copy)]
pub struct RawErrorBody;

/// Every `/v1/admin` route is for cluster admins: the caller is checked (and
/// a refusal audited) here, before the route reads its path or body, so a
/// malformed request from a non-admin is refused (and recorded) too. The
/// routes still decide their own actions.
async fn admin_gate(state: &AppState, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path != "/v1/admin" && !path.starts_with("/v1/admin/") {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let caller = match <crate::extract::Caller as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, state).await {
        Ok(c) => c.0,
        Err(e) => return e.into_response(),
    };
    // The route's own `Caller` reuses this authentication.
    parts
        .extensions
        .insert(crate::extract::Caller(caller.clone()));
    // Impersonating from inside an impersonation is for the route to handle:
    // it ends the session.
    if caller.principal.impersonator.is_some() && parts.uri.path().ends_with("/impersonate") {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let admin = state.hub.authz.authorize(
        &caller,
        algohub_core::policy::Action::AdminUsersRead,
        algohub_core::policy::Resource::Cluster,
    );
    match admin {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

/// A safety net: any 4xx/5xx whose body is not JSON (a rejection from a library
/// extractor, say) is rewritten into the common error shape.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error())
        || is_json
        || resp.extensions().get::<RawErrorBody>().is_some()
    {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let (code, message) = match status.as_u16() {
        413 => (
            algohub_core::Code::PayloadTooLarge,
            "the request body is too large".to_string(),
        ),
        404 => (
            algohub_core::Code::RouteNotFound,
            if message.is_empty() {
                "not found".into()
            } else {
                message
            },
        ),
        s if s >= 500 => (algohub_core::Code::Internal, "internal error".to_string()),
        _ => (
            algohub_core::Code::InvalidInput,
            if message.is_empty() {
                status.to_string()
            } else {
                message
            },
        ),
    };
    let body = crate::error::ErrorBody::new(code, message);
    let mut out = (parts.status, Json(body)).into_response();
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}

/// Whether the request authenticates with a session token (`Bearer
/// ahs_...`, or the token alone, as `Caller` accepts it).
fn presents_session(req: &Request) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .is_some_and(|v| {
            let token = v.split_once(' ').map_or(v, |(_, token)| token.trim());
            algohub_core::secrets::SessionSecret::looks_valid(token)
        })
}

/// The one middleware every route runs behind (one layer rather than a
/// stack of them: each layer costs every request a boxed future and a clone
/// of the route): request id, metrics and (with `access_log`) one log line
/// per request around the NUL check, the admin gate and the JSON error net.
pub async fn front(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    // One id per request, always made here: it keys the call's usage record,
    // so a client cannot choose it (a repeated id would collide with a
    // record already kept). A client's own `x-request-id` is logged beside it.
    let request_id = algohub_core::context::new_request_id();
    let client_request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64)
        .map(str::to_string);
    req.extensions_mut()
        .insert(crate::extract::RequestId(request_id.clone()));
    // A request with a session token may be an impersonation's: `Caller`
    // leaves its context here, to be put on record with its outcome.
    let impersonated = presents_session(&req).then(|| {
        let slot = crate::extract::ImpersonatedRequest::default();
        req.extensions_mut().insert(slot.clone());
        (slot, req.uri().path().to_string())
    });
    let mut resp = match nul_refusal(&req) {
        Some(refused) => refused,
        None => json_errors(admin_gate(&state, req, next).await).await,
    };
    let status = resp.status().as_u16();
    if let Some((slot, path)) = impersonated
        && let Some(ctx) = slot.0.get()
    {
        state.hub.audit.record_impersonated_request(
            ctx,
            method.as_str(),
            &path,
            algohub_core::services::outcome_of_status(status),
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    state
        .request_metrics
        .observe(&method, route, status, elapsed);
    if state.access_log {
        tracing::info!(request_id = %request_id, client_request_id = client_request_id.as_deref(), method = %method, route = %route, status, duration_ms = elapsed * 1000.0, "request");
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}
