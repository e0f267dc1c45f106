//! `/v1/admin/invites`: sign-up invite codes (cluster admins), with the v1
//! camelCase fields. Codes are listed back to admins, so they are stored as
//! given (they grant nothing until self-service sign-up exists).

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody};
use crate::{AppState, routes::Routes};
use algohub_core::model::format_millis;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// A sign-up invite code, with the v1 camelCase fields.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct InviteCode {
    invite_code: String,
    signup_credits: i64,
    comments: String,
    expires_at: Option<String>,
    created_at: String,
    created_by: String,
}

#[utoipa::path(get, path = "/v1/admin/invites", tag = "admin", summary = "Sign-up invite codes, newest first (cluster admins)", responses((status = 200, body = Vec<InviteCode>)))]
async fn list(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Vec<InviteCode>>> {
    let codes = s.hub.admin.list_invite_codes(&c).await?;
    Ok(Json(
        codes
            .into_iter()
            .map(|i| InviteCode {
                invite_code: i.code,
                signup_credits: i.signup_credits,
                comments: i.comments,
                expires_at: i.expires_at.map(format_millis),
                created_at: format_millis(i.created_at),
                created_by: i.created_by,
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewInviteCode {
    #[serde(rename = "inviteCode")]
    invite_code: String,
    #[serde(rename = "signupCredits", default)]
    signup_credits: Option<i64>,
    #[serde(default)]
    comments: Option<String>,
    #[serde(rename = "expiresAt", default)]
    expires_at: Option<String>,
}

#[utoipa::path(post, path = "/v1/admin/invites", tag = "admin", summary = "Create a sign-up invite code (cluster admins)", request_body = NewInviteCode, responses((status = 201)))]
async fn create(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(b): JsonBody<NewInviteCode>,
) -> ApiResult<StatusCode> {
    s.hub
        .admin
        .create_invite_code(
            &c,
            &b.invite_code,
            b.signup_credits.unwrap_or(0),
            b.comments.as_deref().unwrap_or(""),
            b.expires_at.as_deref(),
        )
        .await?;
    Ok(StatusCode::CREATED)
}

#[utoipa::path(delete, path = "/v1/admin/invites/{invite_code}", tag = "admin", summary = "Delete a sign-up invite code (cluster admins)", responses((status = 204)))]
async fn remove(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(code): Path<String>,
) -> ApiResult<StatusCode> {
    s.hub.admin.delete_invite_code(&c, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(list, create)).typed(routes!(remove))
}
