//! `/v1/organization/types` and `/v1/organizations`: orgs and their members.
//!
//! A v1 member PUT by a cluster admin adds the member at once as `contributor`;
//! by an org admin it sends an invitation, listed as `invited` until accepted.

use super::shapes;
use super::users::PageArgs;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, QueryArgs, page};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::model::OrgType;
use algohub_core::model::OrgUpdate;
use algohub_core::policy::{Action, Resource};
use algohub_core::roles::OrgRole;
use algohub_core::services::{CreateOrg, InviteTarget};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// An organization type.
#[derive(Serialize, ToSchema)]
#[schema(as = OrganizationType)]
struct OrgTypeShape {
    id: String,
    name: String,
}

impl From<OrgType> for OrgTypeShape {
    fn from(t: OrgType) -> Self {
        Self {
            id: t.id,
            name: t.name,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(as = OrganizationTypeCreate)]
struct OrgTypeBody {
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = OrganizationCreate)]
struct OrgBody {
    org_name: String,
    #[serde(default)]
    org_label: Option<String>,
    #[serde(default)]
    org_contact_name: Option<String>,
    org_email: String,
    #[serde(default)]
    org_url: Option<String>,
    type_id: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = OrganizationUpdate)]
struct OrgUpdateBody {
    #[serde(default)]
    org_name: Option<String>,
    #[serde(default)]
    org_label: Option<String>,
    #[serde(default)]
    org_contact_name: Option<String>,
    #[serde(default)]
    org_email: Option<String>,
    #[serde(default)]
    org_url: Option<String>,
    #[serde(default)]
    type_id: Option<String>,
    #[serde(default)]
    require_approval: Option<bool>,
    #[serde(default)]
    allow_self_approval: Option<bool>,
    #[serde(default)]
    consolidated_billing: Option<bool>,
}

#[utoipa::path(get, path = "/v1/organization/types", tag = "organizations", summary = "List organization types", responses((status = 200, body = Vec<OrgTypeShape>)))]
async fn list_types(
    State(s): State<AppState>,
    Caller(_): Caller,
) -> ApiResult<Json<Vec<OrgTypeShape>>> {
    let types = s.hub.orgs.list_org_types().await?;
    Ok(Json(types.into_iter().map(OrgTypeShape::from).collect()))
}

#[utoipa::path(post, path = "/v1/organization/types", tag = "organizations", summary = "Create an organization type (cluster admins)", request_body = OrgTypeBody, responses((status = 200, body = OrgTypeShape)))]
async fn create_type(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(b): JsonBody<OrgTypeBody>,
) -> ApiResult<Json<OrgTypeShape>> {
    Ok(Json(s.hub.orgs.create_org_type(&c, &b.name).await?.into()))
}

#[utoipa::path(delete, path = "/v1/organization/types/{name}", tag = "organizations", summary = "Delete an unused organization type (cluster admins)", responses((status = 204)))]
async fn delete_type(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.hub.orgs.delete_org_type(&c, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/organizations", tag = "organizations", summary = "Create an organization; the caller becomes its admin", request_body = OrgBody, responses((status = 200, body = shapes::OrganizationShape)))]
async fn create(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(b): JsonBody<OrgBody>,
) -> ApiResult<Json<shapes::OrganizationShape>> {
    let req = CreateOrg {
        name: b.org_name,
        label: b.org_label.unwrap_or_default(),
        contact_name: b.org_contact_name.unwrap_or_default(),
        email: b.org_email,
        url: b.org_url,
        type_id: b.type_id,
    };
    let o = s.hub.orgs.create_org(&c, req).await?;
    Ok(Json(shapes::org(&o, true, &s.base_url)))
}

#[utoipa::path(get, path = "/v1/organizations", tag = "organizations", summary = "List organizations (all for cluster admins, else the caller's)", params(PageArgs), responses((status = 200, body = shapes::Paged<shapes::OrganizationShape>)))]
async fn list(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<PageArgs>,
) -> ApiResult<Json<shapes::Paged<shapes::OrganizationShape>>> {
    let p = page(q.limit.as_deref(), q.marker, 10)?;
    let orgs = s.hub.orgs.list_orgs(&c, &p).await?;
    let last = orgs.last().map(|o| o.name.clone());
    let results = orgs
        .iter()
        .map(|o| shapes::org(o, true, &s.base_url))
        .collect();
    Ok(Json(shapes::paged(
        results,
        last,
        p.limit,
        &format!("{}/v1/organizations", s.base_url),
    )))
}

#[utoipa::path(get, path = "/v1/organizations/{org}", tag = "organizations", summary = "Get an organization (contact details for members)", responses((status = 200, body = shapes::OrganizationShape)))]
async fn get_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<shapes::OrganizationShape>> {
    let v = s.hub.orgs.get_org(&c, &name).await?;
    let mut body = shapes::org(&v.org, v.private_visible, &s.base_url);
    body.my_role = v.my_role.map(|role| role.as_str());
    Ok(Json(body))
}

#[utoipa::path(put, path = "/v1/organizations/{org}", tag = "organizations", summary = "Update an organization (org admins)", request_body = OrgUpdateBody, responses((status = 200, body = shapes::OrganizationShape)))]
async fn update(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<OrgUpdateBody>,
) -> ApiResult<Json<shapes::OrganizationShape>> {
    if let Some(n) = &b.org_name
        && !n.eq_ignore_ascii_case(&name)
    {
        return Err(ApiError::new(
            Code::InvalidInput,
            "an organization's name cannot be changed",
        ));
    }
    let update = OrgUpdate {
        label: b.org_label,
        contact_name: b.org_contact_name,
        email: b.org_email,
        url: b.org_url.map(|u| if u.is_empty() { None } else { Some(u) }),
        type_id: b.type_id,
        require_approval: b.require_approval,
        allow_self_approval: b.allow_self_approval,
        consolidated_billing: b.consolidated_billing,
    };
    let o = s.hub.orgs.update_org(&c, &name, update).await?;
    Ok(Json(shapes::org(&o, true, &s.base_url)))
}

#[utoipa::path(delete, path = "/v1/organizations/{org}", tag = "organizations", summary = "Delete an organization (org admins)", responses((status = 204)))]
async fn remove(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.hub.orgs.delete_org(&c, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Members, then (for admins) pending invitations shown as `invited`.
#[utoipa::path(get, path = "/v1/organizations/{org}/members", tag = "organizations", summary = "List members (and pending invitations as invited)", params(PageArgs), responses((status = 200, body = shapes::Paged<shapes::OrganizationMember>)))]
async fn members(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
    QueryArgs(q): QueryArgs<PageArgs>,
) -> ApiResult<Json<shapes::Paged<shapes::OrganizationMember>>> {
    let p = page(q.limit.as_deref(), q.marker, 100)?;
    let list = s.hub.orgs.list_members(&c, &org, &p).await?;
    let last = list.last().map(|m| m.username.clone());
    let full_page = list.len() as i64 >= p.limit;
    let mut results: Vec<shapes::OrganizationMember> = list
        .iter()
        .map(|m| shapes::member(m, &s.base_url))
        .collect();
    if !full_page && p.marker.is_none() {
        // Pending invitations are appended on the first and only page.
        if let Ok(pending) = s.hub.invitations.list_pending_invitations(&c, &org).await {
            results.extend(
                pending
                    .iter()
                    .map(|i| shapes::invited_member(i, &s.base_url)),
            );
        }
    }
    let limit = if full_page { p.limit } else { i64::MAX };
    Ok(Json(shapes::paged(
        results,
        last,
        limit,
        &format!("{}/v1/organizations/{org}/members", s.base_url),
    )))
}

#[utoipa::path(put, path = "/v1/organizations/{org}/members/{username}", tag = "organizations", summary = "Add a member (cluster admins) or invite one (org admins)", responses((status = 204)))]
async fn add_member(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    if s.hub
        .authz
        .can(&c, Action::AdminUsersManage, Resource::Cluster)
    {
        s.hub
            .orgs
            .add_member_direct(&c, &org, &user, OrgRole::Contributor)
            .await?;
    } else {
        s.hub
            .invitations
            .invite(&c, &org, InviteTarget::Username(user), OrgRole::Contributor)
            .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/organizations/{org}/members/{username}", tag = "organizations", summary = "Remove a member, or leave the organization", responses((status = 204)))]
async fn remove_member(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.orgs.remove_member(&c, &org, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(list_types, create_type))
        .typed(routes!(delete_type))
        .typed(routes!(create, list))
        .typed(routes!(get_one, update, remove))
        .typed(routes!(members))
        .typed(routes!(add_member, remove_member))
}
