//! Native: teams, their seats and their app grants.

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, RawBody, parse_json};
use crate::{AppState, routes::Routes};
use algohub_core::model::{Team, format_millis};
use algohub_core::roles::AppRole;
use algohub_core::services::parse_expiry;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// A team; one team's answer also lists its seats and app grants.
#[derive(Serialize, ToSchema)]
#[schema(as = Team)]
struct TeamShape {
    id: String,
    org: String,
    name: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<Vec<TeamSeat>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    apps: Option<Vec<TeamAppGrant>>,
}

/// A seat on a team.
#[derive(Serialize, ToSchema)]
struct TeamSeat {
    username: String,
    expires_at: Option<String>,
}

/// An app granted to a team.
#[derive(Serialize, ToSchema)]
struct TeamAppGrant {
    /// owner/app.
    app: String,
    /// read, contributor, write or admin.
    role: &'static str,
    expires_at: Option<String>,
}

fn team(t: &Team, org: &str) -> TeamShape {
    TeamShape {
        id: t.uuid.clone(),
        org: org.to_string(),
        name: t.name.clone(),
        created_at: format_millis(t.created_at),
        members: None,
        apps: None,
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(as = TeamCreate)]
struct TeamBody {
    name: String,
}

#[derive(Deserialize, Default, ToSchema)]
#[schema(as = TeamSeatRequest)]
struct SeatBody {
    expires_at: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = TeamAppGrantRequest)]
struct GrantBody {
    /// read, contributor, write or admin.
    role: String,
    expires_at: Option<String>,
}

#[utoipa::path(post, path = "/v1/organizations/{org}/teams", tag = "teams", summary = "Create a team (org admins)", request_body = TeamBody, responses((status = 201, body = TeamShape)))]
async fn create(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
    JsonBody(b): JsonBody<TeamBody>,
) -> ApiResult<(StatusCode, Json<TeamShape>)> {
    let t = s.hub.teams.create_team(&c, &org, &b.name).await?;
    Ok((StatusCode::CREATED, Json(team(&t, &org))))
}

#[utoipa::path(get, path = "/v1/organizations/{org}/teams", tag = "teams", summary = "List teams (members)", responses((status = 200, body = Vec<TeamShape>)))]
async fn list(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<TeamShape>>> {
    let teams = s.hub.teams.list_teams(&c, &org).await?;
    Ok(Json(teams.iter().map(|t| team(t, &org)).collect()))
}

#[utoipa::path(get, path = "/v1/organizations/{org}/teams/{team}", tag = "teams", summary = "A team with its members and app grants (members)", responses((status = 200, body = TeamShape)))]
async fn get_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<Json<TeamShape>> {
    let (t, members, apps) = s.hub.teams.get_team(&c, &org, &name).await?;
    let mut v = team(&t, &org);
    v.members = Some(
        members
            .iter()
            .map(|m| TeamSeat {
                username: m.username.clone(),
                expires_at: m.expires_at.map(format_millis),
            })
            .collect(),
    );
    v.apps = Some(
        apps.iter()
            .map(|g| TeamAppGrant {
                app: format!("{}/{}", g.owner_name, g.app_name),
                role: g.role.as_str(),
                expires_at: g.expires_at.map(format_millis),
            })
            .collect(),
    );
    Ok(Json(v))
}

#[utoipa::path(delete, path = "/v1/organizations/{org}/teams/{team}", tag = "teams", summary = "Delete a team (org admins)", responses((status = 204)))]
async fn remove(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.teams.delete_team(&c, &org, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/v1/organizations/{org}/teams/{team}/members/{username}", tag = "teams", summary = "Give an org member a seat, with optional expiry (org admins)", request_body(content = Option<SeatBody>, description = "optional"), responses((status = 204)))]
async fn add_seat(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, name, user)): Path<(String, String, String)>,
    RawBody(body): RawBody,
) -> ApiResult<StatusCode> {
    let b: SeatBody = if body.iter().all(|b| b.is_ascii_whitespace()) {
        SeatBody::default()
    } else {
        parse_json(&body)?
    };
    let expires = parse_expiry(b.expires_at.as_deref())?;
    s.hub
        .teams
        .add_team_member(&c, &org, &name, &user, expires)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/organizations/{org}/teams/{team}/members/{username}", tag = "teams", summary = "Remove a seat (org admins)", responses((status = 204)))]
async fn remove_seat(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, name, user)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    s.hub
        .teams
        .remove_team_member(&c, &org, &name, &user)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/v1/organizations/{org}/teams/{team}/apps/{app}", tag = "teams", summary = "Grant one of the org's apps to the team with an app role (org admins)", request_body = GrantBody, responses((status = 204)))]
async fn grant(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, name, app)): Path<(String, String, String)>,
    JsonBody(b): JsonBody<GrantBody>,
) -> ApiResult<StatusCode> {
    let role = AppRole::parse(&b.role)?;
    let expires = parse_expiry(b.expires_at.as_deref())?;
    s.hub
        .teams
        .grant_team_app(&c, &org, &name, &app, role, expires)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/organizations/{org}/teams/{team}/apps/{app}", tag = "teams", summary = "Revoke a team's app grant (org admins)", responses((status = 204)))]
async fn revoke(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, name, app)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.teams.revoke_team_app(&c, &org, &name, &app).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(create, list))
        .typed(routes!(get_one, remove))
        .typed(routes!(add_seat, remove_seat))
        .typed(routes!(grant, revoke))
}
