//! `POST /v1/session`: signing in with a password, for a browser session
//! (the session cookie). `GET /v1/session` and `DELETE /v1/session` (sign
//! out) are in `elevated.rs`, beside impersonation, which they also serve.

use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, request_id, source_address};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::audit::AuditContext;
use algohub_core::services::SignIn;
use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// Sign in: a username or an email, and the password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignInRequest {
    username: Option<String>,
    email: Option<String>,
    password: String,
    /// A code from the account's authenticator app (accounts with MFA).
    totp: Option<String>,
}

/// A new browser session; the session itself is in the cookie.
#[derive(Serialize, ToSchema)]
struct SignedInShape {
    /// The account signed in.
    account: String,
    /// Send it as `X-CSRF-Token` with every request that changes something.
    csrf_token: String,
    /// When the session ends whatever happens.
    expires_at: String,
    /// Minutes without a request after which the session ends.
    idle_timeout_minutes: u32,
}

/// What a sign-in request names and where it came from, for the service.
pub(crate) struct Attempt {
    pub login: String,
    pub password: String,
    pub audit: AuditContext,
    pub source: Option<String>,
    pub user_agent: Option<String>,
}

impl Attempt {
    pub(crate) fn new(parts: &Parts, login: String, password: String) -> Self {
        let source = source_address(parts);
        Self {
            login,
            password,
            audit: AuditContext {
                request_id: request_id(parts),
                source: source.clone(),
                ..AuditContext::default()
            },
            source,
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }
}

/// Signs in (a sign-in from another site is refused) and answers with the
/// session cookie set; `ok` renders the answer.
pub(crate) async fn sign_in(
    s: &AppState,
    parts: &Parts,
    attempt: Attempt,
    ok: impl FnOnce(&algohub_core::services::SignedIn, String) -> Response,
) -> ApiResult<Response> {
    crate::cookie::same_site(&parts.headers, &s.base_url)?;
    let signed = s
        .hub
        .sign_in
        .sign_in(
            &attempt.audit,
            SignIn {
                login: attempt.login,
                password: attempt.password,
                source: attempt.source,
                user_agent: attempt.user_agent,
            },
        )
        .await?;
    let token = signed.secret.expose();
    let max_age = (signed.session.expires_at - algohub_core::model::now_millis()) / 1000;
    let mut resp = ok(&signed, crate::cookie::csrf_token(token));
    let headers = resp.headers_mut();
    headers.append(
        header::SET_COOKIE,
        crate::cookie::set(&s.base_url, token, max_age.max(1)),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[utoipa::path(post, path = "/v1/session", tag = "session", summary = "Sign in with {\"username\" or \"email\", \"password\"}: sets the session cookie (HttpOnly, SameSite=Lax) and answers with the CSRF token that requests changing something must send as X-CSRF-Token. A wrong name or password is one answer (401 sign_in_failed)", security(()), request_body = SignInRequest, responses((status = 200, body = SignedInShape)))]
async fn post_session(
    State(s): State<AppState>,
    parts: Parts,
    JsonBody(req): JsonBody<SignInRequest>,
) -> ApiResult<Response> {
    let login = match (req.username, req.email) {
        (Some(u), None) => u,
        (None, Some(e)) => e,
        _ => {
            return Err(ApiError::new(
                Code::InvalidInput,
                "give either a username or an email, and the password",
            ));
        }
    };
    // No account has a second factor yet: a code is not asked for, and one
    // sent is not needed.
    let _ = req.totp;
    let idle = s.hub.settings.session_idle_minutes;
    let attempt = Attempt::new(&parts, login, req.password);
    sign_in(&s, &parts, attempt, |signed, csrf_token| {
        Json(SignedInShape {
            account: signed.account.clone(),
            csrf_token,
            expires_at: algohub_core::model::format_millis(signed.session.expires_at),
            idle_timeout_minutes: idle,
        })
        .into_response()
    })
    .await
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(post_session))
}
