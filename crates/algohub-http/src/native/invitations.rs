//! Native: invitations (by name or email, single-use token), roles and role changes.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{Invitation, Membership, format_millis};
use algohub_core::roles::{AppRole, OrgRole};
use algohub_core::services::{InviteTarget, parse_expiry};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// An invitation to an organization.
#[derive(Serialize, ToSchema)]
#[schema(as = Invitation)]
pub struct InvitationShape {
    id: String,
    org: String,
    username: Option<String>,
    email: Option<String>,
    /// viewer, team_contributor, contributor or admin.
    role: &'static str,
    /// pending, accepted, declined, rescinded or expired.
    status: &'static str,
    created_at: String,
    expires_at: String,
    decided_at: Option<String>,
    accepted_tos_version: Option<i64>,
}

pub fn invitation(i: &Invitation) -> InvitationShape {
    InvitationShape {
        id: i.id.clone(),
        org: i.org_name.clone(),
        username: i.invitee_username.clone(),
        email: i.invitee_email.clone(),
        role: i.role.as_str(),
        status: i.status.as_str(),
        created_at: format_millis(i.created_at),
        expires_at: format_millis(i.expires_at),
        decided_at: i.decided_at.map(format_millis),
        accepted_tos_version: i.accepted_tos_version,
    }
}

/// A membership of an organization.
#[derive(Serialize, ToSchema)]
#[schema(as = Membership)]
pub struct MembershipShape {
    org: String,
    username: String,
    role: &'static str,
    expires_at: Option<String>,
}

pub fn membership(m: &Membership) -> MembershipShape {
    MembershipShape {
        org: m.org_name.clone(),
        username: m.username.clone(),
        role: m.role.as_str(),
        expires_at: m.expires_at.map(format_millis),
    }
}

/// An org role.
#[derive(Serialize, ToSchema)]
struct OrgRoleInfo {
    name: &'static str,
    rank: i64,
    /// `owner` or `member`: the v1 role it shows as.
    v1_name: &'static str,
    description: &'static str,
}

/// An app role.
#[derive(Serialize, ToSchema)]
struct AppRoleInfo {
    name: &'static str,
    rank: i64,
    description: &'static str,
}

/// The org roles and app roles, lowest first.
#[derive(Serialize, ToSchema)]
struct Roles {
    org_roles: Vec<OrgRoleInfo>,
    app_roles: Vec<AppRoleInfo>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = InvitationCreate)]
struct InviteBody {
    username: Option<String>,
    email: Option<String>,
    role: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = InvitationToken)]
struct TokenBody {
    token: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = RoleChange)]
struct RoleBody {
    role: String,
    expires_at: Option<String>,
}

#[utoipa::path(post, path = "/v1/organizations/{org}/invitations", tag = "invitations", summary = "Invite by username or email (org admins)", request_body = InviteBody, responses((status = 201, body = InvitationShape)))]
async fn invite(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
    JsonBody(b): JsonBody<InviteBody>,
) -> ApiResult<(StatusCode, Json<InvitationShape>)> {
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
    let inv = s.hub.invitations.invite(&c, &org, target, role).await?;
    Ok((StatusCode::CREATED, Json(invitation(&inv))))
}

#[utoipa::path(get, path = "/v1/organizations/{org}/invitations", tag = "invitations", summary = "Pending invitations (org admins)", responses((status = 200, body = Vec<InvitationShape>)))]
async fn pending(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<InvitationShape>>> {
    let list = s.hub.invitations.list_pending_invitations(&c, &org).await?;
    Ok(Json(list.iter().map(invitation).collect()))
}

#[utoipa::path(delete, path = "/v1/organizations/{org}/invitations/{invitation_id}", tag = "invitations", summary = "Rescind a pending invitation (org admins)", responses((status = 200, body = InvitationShape)))]
async fn rescind(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<Json<InvitationShape>> {
    Ok(Json(invitation(
        &s.hub.invitations.rescind_invitation(&c, &org, &id).await?,
    )))
}

#[utoipa::path(get, path = "/v1/invitations", tag = "invitations", summary = "Pending invitations addressed to the caller", responses((status = 200, body = Vec<InvitationShape>)))]
async fn mine(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<Vec<InvitationShape>>> {
    let list = s.hub.invitations.my_invitations(&c).await?;
    Ok(Json(list.iter().map(invitation).collect()))
}

#[utoipa::path(post, path = "/v1/invitations/{invitation_id}/accept", tag = "invitations", summary = "Accept an invitation (records the Terms of Use version)", responses((status = 200, body = MembershipShape)))]
async fn accept(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<MembershipShape>> {
    Ok(Json(membership(
        &s.hub.invitations.accept_invitation(&c, &id).await?,
    )))
}

#[utoipa::path(post, path = "/v1/invitations/{invitation_id}/decline", tag = "invitations", summary = "Decline an invitation", responses((status = 200, body = InvitationShape)))]
async fn decline(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<InvitationShape>> {
    Ok(Json(invitation(
        &s.hub.invitations.decline_invitation(&c, &id).await?,
    )))
}

#[utoipa::path(post, path = "/v1/invitation-tokens/accept", tag = "invitations", summary = "Accept with the single-use token from an invitation email", request_body = TokenBody, responses((status = 200, body = MembershipShape)))]
async fn accept_token(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(b): JsonBody<TokenBody>,
) -> ApiResult<Json<MembershipShape>> {
    Ok(Json(membership(
        &s.hub
            .invitations
            .accept_invitation_token(&c, &b.token)
            .await?,
    )))
}

#[utoipa::path(put, path = "/v1/organizations/{org}/members/{username}/role", tag = "roles", summary = "Change a member's role and optional expiry (org admins)", request_body = RoleBody, responses((status = 200, body = MembershipShape)))]
async fn set_role(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, user)): Path<(String, String)>,
    JsonBody(b): JsonBody<RoleBody>,
) -> ApiResult<Json<MembershipShape>> {
    let role = OrgRole::parse(&b.role)?;
    let expires = parse_expiry(b.expires_at.as_deref())?;
    Ok(Json(membership(
        &s.hub
            .orgs
            .set_member_role(&c, &org, &user, role, expires)
            .await?,
    )))
}

#[utoipa::path(get, path = "/v1/roles", tag = "roles", summary = "The org roles and app roles, in order", responses((status = 200, body = Roles)))]
async fn roles(Caller(_): Caller) -> Json<Roles> {
    let org = |r: OrgRole, description: &'static str| OrgRoleInfo {
        name: r.as_str(),
        rank: r as i64,
        v1_name: r.v1_name(),
        description,
    };
    let app = |r: AppRole, description: &'static str| AppRoleInfo {
        name: r.as_str(),
        rank: r as i64,
        description,
    };
    Json(Roles {
        org_roles: vec![
            org(
                OrgRole::Viewer,
                "read-only access to the organization and its apps",
            ),
            org(OrgRole::TeamContributor, "only the apps their teams grant"),
            org(
                OrgRole::Contributor,
                "all apps and algorithms of the organization",
            ),
            org(
                OrgRole::Admin,
                "everything in the organization: members, teams, settings, approvals, billing, reporting",
            ),
        ],
        app_roles: vec![
            app(AppRole::Read, "read the app and its resources"),
            app(
                AppRole::Contributor,
                "create resources, edit only what they created",
            ),
            app(AppRole::Write, "edit everything in the app"),
            app(AppRole::Admin, "manage the app"),
        ],
    })
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(invite, pending))
        .typed(routes!(rescind))
        .typed(routes!(mine))
        .typed(routes!(accept))
        .typed(routes!(decline))
        .typed(routes!(accept_token))
        .typed(routes!(set_role))
        .typed(routes!(roles))
}
