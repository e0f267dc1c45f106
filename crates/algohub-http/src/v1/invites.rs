//! `/v1/admin/invites`: sign-up invite codes (cluster admins), with the v1
//! camelCase fields. Codes are listed back to admins, so they are stored as
//! given (they grant nothing until self-service sign-up exists).

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody};
use crate::{AppState, op, routes::Routes};
use algohub_core::model::format_millis;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};

async fn list(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Value>> {
    let codes = s.hub.list_invite_codes(&c).await?;
    Ok(Json(json!(
        codes
            .iter()
            .map(|i| json!({
                "inviteCode": i.code,
                "signupCredits": i.signup_credits,
                "comments": i.comments,
                "expiresAt": i.expires_at.map(format_millis),
                "createdAt": format_millis(i.created_at),
                "createdBy": i.created_by,
            }))
            .collect::<Vec<_>>()
    )))
}

#[derive(Deserialize)]
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

async fn create(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(b): JsonBody<NewInviteCode>,
) -> ApiResult<StatusCode> {
    s.hub
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

async fn remove(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(code): Path<String>,
) -> ApiResult<StatusCode> {
    s.hub.delete_invite_code(&c, &code).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(r: Routes) -> Routes {
    r.add_many(
        &[
            op!(GET "/v1/admin/invites", "admin", "Sign-up invite codes, newest first (cluster admins)", response = "InviteCodeList"),
            op!(POST "/v1/admin/invites", "admin", "Create a sign-up invite code (cluster admins)", body = "NewInviteCode", status = 201),
        ],
        get(list).post(create),
    )
    .add(op!(DELETE "/v1/admin/invites/{invite_code}", "admin", "Delete a sign-up invite code (cluster admins)", status = 204), delete(remove))
}
