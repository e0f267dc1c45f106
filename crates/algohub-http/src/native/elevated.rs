//! Elevated access: impersonation sessions, super powers, and `/v1/session`
//! (what the caller's credential acts as, for the UI's banner).

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, RawBody, SessionCookie, parse_json};
use crate::{AppState, routes::Routes};
use algohub_core::audit::CredentialKind;
use algohub_core::model::SessionKind;
use algohub_core::services::{ImpersonationView, SessionView, SuperPowersView};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// An impersonation session.
#[derive(Serialize, ToSchema)]
#[schema(as = Impersonation)]
struct ImpersonationShape {
    session_id: i64,
    /// The admin really acting.
    real_user: String,
    user: String,
    reason: String,
    started_at: String,
    expires_at: String,
    ended_at: Option<String>,
    end_reason: Option<String>,
}

impl From<ImpersonationView> for ImpersonationShape {
    fn from(v: ImpersonationView) -> Self {
        Self {
            session_id: v.session_id,
            real_user: v.real_user,
            user: v.user,
            reason: v.reason,
            started_at: v.started_at,
            expires_at: v.expires_at,
            ended_at: v.ended_at,
            end_reason: v.end_reason,
        }
    }
}

/// Super powers that are on.
#[derive(Serialize, ToSchema)]
#[schema(as = SuperPowers)]
struct SuperPowersShape {
    reason: String,
    started_at: String,
    until: String,
}

impl From<SuperPowersView> for SuperPowersShape {
    fn from(v: SuperPowersView) -> Self {
        Self {
            reason: v.reason,
            started_at: v.started_at,
            until: v.until,
        }
    }
}

/// The caller's super powers: null when off.
#[derive(Serialize, ToSchema)]
struct SuperPowersState {
    super_powers: Option<SuperPowersShape>,
}

/// What the credential acts as.
#[derive(Serialize, ToSchema)]
struct SessionInfo {
    /// The account requests act as.
    account: String,
    account_type: &'static str,
    /// api_key, session (an impersonation), browser_session (the session
    /// cookie) or call_token.
    credential: &'static str,
    scopes: Vec<&'static str>,
    cluster_admin: bool,
    impersonation: Option<ImpersonationShape>,
    super_powers: Option<SuperPowersShape>,
    /// With the session cookie: the token requests that change something
    /// send as `X-CSRF-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
}

impl From<SessionView> for SessionInfo {
    fn from(v: SessionView) -> Self {
        Self {
            account: v.account,
            account_type: v.account_type,
            credential: v.credential,
            scopes: v.scopes,
            cluster_admin: v.cluster_admin,
            impersonation: v.impersonation.map(Into::into),
            super_powers: v.super_powers.map(Into::into),
            csrf_token: None,
        }
    }
}

/// The session that ended.
#[derive(Serialize, ToSchema)]
struct SessionEnded {
    ended: bool,
    /// The impersonation stopped (absent when signing out).
    #[serde(skip_serializing_if = "Option::is_none")]
    impersonation: Option<ImpersonationShape>,
}

/// A new impersonation session; the token is shown only once.
#[derive(Serialize, ToSchema)]
struct ImpersonationStarted {
    token: String,
    impersonation: ImpersonationShape,
    usage: &'static str,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ElevateRequest {
    reason: String,
    /// Minutes; default 30, at most the cluster's maximum.
    duration_minutes: Option<i64>,
}

#[utoipa::path(get, path = "/v1/session", tag = "session", summary = "What the credential acts as: account, credential kind, scopes, and any impersonation or super powers (for the UI's banner); with the session cookie, its CSRF token", responses((status = 200, body = SessionInfo)))]
async fn session(
    State(s): State<AppState>,
    Caller(c): Caller,
    SessionCookie(cookie): SessionCookie,
) -> ApiResult<Json<SessionInfo>> {
    let mut info: SessionInfo = s.hub.sessions.session_view(&c).await?.into();
    if c.audit.credential == CredentialKind::Cookie {
        info.csrf_token = cookie.as_deref().map(crate::cookie::csrf_token);
    }
    Ok(Json(info))
}

#[utoipa::path(delete, path = "/v1/session", tag = "session", summary = "Stop: end the impersonation session this request is made with; or sign out: end the browser session (and clear its cookie)", responses((status = 200, body = SessionEnded)))]
async fn stop_session(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Response> {
    let ended = s.hub.sessions.stop_session(&c).await?;
    let impersonation = match ended.kind {
        SessionKind::Impersonation => Some(s.hub.sessions.impersonation_view(&ended).await?.into()),
        SessionKind::Browser => None,
    };
    let mut resp = Json(SessionEnded {
        ended: true,
        impersonation,
    })
    .into_response();
    if ended.kind == SessionKind::Browser {
        resp.headers_mut()
            .append(header::SET_COOKIE, crate::cookie::clear(&s.base_url));
    }
    Ok(resp)
}

#[utoipa::path(post, path = "/v1/admin/users/{username}/impersonate", tag = "admin", summary = "Start impersonating a user, with a reason and duration_minutes (cluster admins; the user is notified; the session token is shown once)", request_body = ElevateRequest, responses((status = 201, body = ImpersonationStarted)))]
async fn impersonate(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(username): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<(StatusCode, Json<ImpersonationStarted>)> {
    // From inside an impersonation the attempt ends the session whatever the
    // body says, so it is not parsed first.
    let req = if c.principal.impersonator.is_some() {
        ElevateRequest {
            reason: String::new(),
            duration_minutes: None,
        }
    } else {
        parse_json::<ElevateRequest>(&body)?
    };
    let (secret, session) = s
        .hub
        .sessions
        .start_impersonation(&c, &username, &req.reason, req.duration_minutes)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ImpersonationStarted {
            token: secret.expose().to_string(),
            impersonation: s.hub.sessions.impersonation_view(&session).await?.into(),
            usage: "send Authorization: Bearer <token> to act as the user; DELETE /v1/session stops it; the token is shown only once",
        }),
    ))
}

#[utoipa::path(get, path = "/v1/admin/super-powers", tag = "admin", summary = "The caller's super powers, if on (cluster admins)", responses((status = 200, body = SuperPowersState)))]
async fn super_powers(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<SuperPowersState>> {
    let on = s.hub.sessions.super_powers(&c).await?;
    Ok(Json(SuperPowersState {
        super_powers: on.as_ref().map(|p| SuperPowersView::from(p).into()),
    }))
}

#[utoipa::path(post, path = "/v1/admin/super-powers", tag = "admin", summary = "Turn on super powers (elevated reads of private algorithms, apps and orgs; every read audited) with a reason and duration_minutes", request_body = ElevateRequest, responses((status = 201, body = SuperPowersState)))]
async fn start_super_powers(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(req): JsonBody<ElevateRequest>,
) -> ApiResult<(StatusCode, Json<SuperPowersState>)> {
    let on = s
        .hub
        .sessions
        .start_super_powers(&c, &req.reason, req.duration_minutes)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(SuperPowersState {
            super_powers: Some(SuperPowersView::from(&on).into()),
        }),
    ))
}

#[utoipa::path(delete, path = "/v1/admin/super-powers", tag = "admin", summary = "Turn super powers off", responses((status = 200, body = SuperPowersState)))]
async fn stop_super_powers(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<SuperPowersState>> {
    s.hub.sessions.stop_super_powers(&c).await?;
    Ok(Json(SuperPowersState { super_powers: None }))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(session, stop_session))
        .typed(routes!(impersonate))
        .typed(routes!(super_powers, start_super_powers, stop_super_powers))
}
