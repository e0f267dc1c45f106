//! Native: invitations (by name or email, single-use token), roles and role changes.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody};
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{Invitation, Membership, format_millis};
use algohub_core::roles::{AppRole, OrgRole};
use algohub_core::services::{InviteTarget, parse_expiry};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn invitation(i: &Invitation) -> Value {
    json!({
        "id": i.id,
        "org": i.org_name,
        "username": i.invitee_username,
        "email": i.invitee_email,
        "role": i.role.as_str(),
        "status": i.status.as_str(),
        "created_at": format_millis(i.created_at),
        "expires_at": format_millis(i.expires_at),
        "decided_at": i.decided_at.map(format_millis),
        "accepted_tos_version": i.accepted_tos_version,
    })
}

pub fn membership(m: &Membership) -> Value {
    json!({"org": m.org_name, "username": m.username, "role": m.role.as_str(), "expires_at": m.expires_at.map(format_millis)})
}

#[derive(Deserialize)]
struct InviteBody {
    username: Option<String>,
    email: Option<String>,
    role: Option<String>,
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

#[derive(Deserialize)]
struct RoleBody {
    role: String,
    expires_at: Option<String>,
}

async fn invite(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
    JsonBody(b): JsonBody<InviteBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let role = OrgRole::parse(b.role.as_deref().unwrap_or("contributor"))?;
    let target = match (b.username, b.email) {
        (Some(u), None) => InviteTarget::Username(u),
        (None, Some(e)) => InviteTarget::Email(e),
        _ => {
            return Err(ApiError::new(
                Code::MissingField,
                "give exactly one of username or email",
            ));
        }
    };
    let inv = s.hub.invite(&c, &org, target, role).await?;
    Ok((StatusCode::CREATED, Json(invitation(&inv))))
}

async fn pending(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Value>> {
    let list = s.hub.list_pending_invitations(&c, &org).await?;
    Ok(Json(json!(list.iter().map(invitation).collect::<Vec<_>>())))
}

async fn rescind(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(invitation(
        &s.hub.rescind_invitation(&c, &org, &id).await?,
    )))
}

async fn mine(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Value>> {
    let list = s.hub.my_invitations(&c).await?;
    Ok(Json(json!(list.iter().map(invitation).collect::<Vec<_>>())))
}

async fn accept(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(membership(&s.hub.accept_invitation(&c, &id).await?)))
}

async fn decline(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(invitation(&s.hub.decline_invitation(&c, &id).await?)))
}

async fn accept_token(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(b): JsonBody<TokenBody>,
) -> ApiResult<Json<Value>> {
    Ok(Json(membership(
        &s.hub.accept_invitation_token(&c, &b.token).await?,
    )))
}

async fn set_role(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, user)): Path<(String, String)>,
    JsonBody(b): JsonBody<RoleBody>,
) -> ApiResult<Json<Value>> {
    let role = OrgRole::parse(&b.role)?;
    let expires = parse_expiry(b.expires_at.as_deref())?;
    Ok(Json(membership(
        &s.hub
            .set_member_role(&c, &org, &user, role, expires)
            .await?,
    )))
}

async fn roles(Caller(_): Caller) -> Json<Value> {
    let org = |r: OrgRole, d: &str| json!({"name": r.as_str(), "rank": r as i64, "v1_name": r.v1_name(), "description": d});
    let app = |r: AppRole, d: &str| json!({"name": r.as_str(), "rank": r as i64, "description": d});
    Json(json!({
        "org_roles": [
            org(OrgRole::Viewer, "read-only access to the organization and its apps"),
            org(OrgRole::TeamContributor, "only the apps their teams grant"),
            org(OrgRole::Contributor, "all apps and algorithms of the organization"),
            org(OrgRole::Admin, "everything in the organization: members, teams, settings, approvals, billing, reporting"),
        ],
        "app_roles": [
            app(AppRole::Read, "read the app and its resources"),
            app(AppRole::Contributor, "create resources, edit only what they created"),
            app(AppRole::Write, "edit everything in the app"),
            app(AppRole::Admin, "manage the app"),
        ],
    }))
}

pub fn routes(r: Routes) -> Routes {
    r.add(op!(POST "/v1/organizations/{org}/invitations", "invitations", "Invite by username or email (org admins)", body = "InvitationCreate", response = "Invitation", status = 201), post(invite))
        .add(op!(GET "/v1/organizations/{org}/invitations", "invitations", "Pending invitations (org admins)", response = "InvitationList"), get(pending))
        .add(op!(DELETE "/v1/organizations/{org}/invitations/{invitation_id}", "invitations", "Rescind a pending invitation (org admins)", response = "Invitation"), delete(rescind))
        .add(op!(GET "/v1/invitations", "invitations", "Pending invitations addressed to the caller", response = "InvitationList"), get(mine))
        .add(op!(POST "/v1/invitations/{invitation_id}/accept", "invitations", "Accept an invitation (records the Terms of Use version)", response = "Membership"), post(accept))
        .add(op!(POST "/v1/invitations/{invitation_id}/decline", "invitations", "Decline an invitation", response = "Invitation"), post(decline))
        .add(op!(POST "/v1/invitation-tokens/accept", "invitations", "Accept with the single-use token from an invitation email", body = "InvitationToken", response = "Membership"), post(accept_token))
        .add(op!(PUT "/v1/organizations/{org}/members/{username}/role", "roles", "Change a member's role and optional expiry (org admins)", body = "RoleChange", response = "Membership"), put(set_role))
        .add(op!(GET "/v1/roles", "roles", "The org roles and app roles, in order", response = "Roles"), get(roles))
}
