//! Elevated access: impersonation sessions, super powers, and `/v1/session`
//! (what the caller's credential acts as, for the UI's banner).

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, RawBody, parse_json};
use crate::{AppState, op, routes::Routes};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ElevateRequest {
    reason: String,
    /// Minutes; default 30, at most the cluster's maximum.
    duration_minutes: Option<i64>,
}

async fn session(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.hub.session_view(&c).await?)))
}

async fn stop_session(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Value>> {
    let ended = s.hub.stop_session(&c).await?;
    Ok(Json(
        json!({"ended": true, "impersonation": s.hub.impersonation_view(&ended).await?}),
    ))
}

async fn impersonate(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(username): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
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
        .start_impersonation(&c, &username, &req.reason, req.duration_minutes)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": secret.expose(),
            "impersonation": s.hub.impersonation_view(&session).await?,
            "usage": "send Authorization: Bearer <token> to act as the user; DELETE /v1/session stops it; the token is shown only once",
        })),
    ))
}

async fn super_powers(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Value>> {
    let on = s.hub.super_powers(&c).await?;
    Ok(Json(json!({
        "super_powers": on.as_ref().map(algohub_core::services::SuperPowersView::from)
    })))
}

async fn start_super_powers(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(req): JsonBody<ElevateRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let on = s
        .hub
        .start_super_powers(&c, &req.reason, req.duration_minutes)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"super_powers": algohub_core::services::SuperPowersView::from(&on)})),
    ))
}

async fn stop_super_powers(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Value>> {
    s.hub.stop_super_powers(&c).await?;
    Ok(Json(json!({"super_powers": null})))
}

pub fn routes(r: Routes) -> Routes {
    r.add_many(
        &[
            op!(GET "/v1/session", "session", "What the credential acts as: account, credential kind, scopes, and any impersonation or super powers (for the UI's banner)", response = "SessionInfo"),
            op!(DELETE "/v1/session", "session", "Stop: end the impersonation session this request is made with", response = "SessionEnded"),
        ],
        get(session).delete(stop_session),
    )
    .add(op!(POST "/v1/admin/users/{username}/impersonate", "admin", "Start impersonating a user, with a reason and duration_minutes (cluster admins; the user is notified; the session token is shown once)", body = "ElevateRequest", response = "ImpersonationStarted", status = 201), post(impersonate))
    .add_many(
        &[
            op!(GET "/v1/admin/super-powers", "admin", "The caller's super powers, if on (cluster admins)", response = "SuperPowersState"),
            op!(POST "/v1/admin/super-powers", "admin", "Turn on super powers (elevated reads of private algorithms, apps and orgs; every read audited) with a reason and duration_minutes", body = "ElevateRequest", response = "SuperPowersState", status = 201),
            op!(DELETE "/v1/admin/super-powers", "admin", "Turn super powers off", response = "SuperPowersState"),
        ],
        get(super_powers).post(start_super_powers).delete(stop_super_powers),
    )
}
