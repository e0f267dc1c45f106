//! Native: teams, their seats and their app grants.

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, RawBody, parse_json};
use crate::{AppState, op, routes::Routes};
use algohub_core::model::{Team, format_millis};
use algohub_core::roles::AppRole;
use algohub_core::services::parse_expiry;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

fn team(t: &Team, org: &str) -> Value {
    json!({"id": t.uuid, "org": org, "name": t.name, "created_at": format_millis(t.created_at)})
}

#[derive(Deserialize)]
struct TeamBody {
    name: String,
}

#[derive(Deserialize, Default)]
struct SeatBody {
    expires_at: Option<String>,
}

#[derive(Deserialize)]
struct GrantBody {
    role: String,
    expires_at: Option<String>,
}

async fn create(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
    JsonBody(b): JsonBody<TeamBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let t = s.hub.create_team(&c, &org, &b.name).await?;
    Ok((StatusCode::CREATED, Json(team(&t, &org))))
}

async fn list(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Value>> {
    let teams = s.hub.list_teams(&c, &org).await?;
    Ok(Json(json!(
        teams.iter().map(|t| team(t, &org)).collect::<Vec<_>>()
    )))
}

async fn get_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (t, members, apps) = s.hub.get_team(&c, &org, &name).await?;
    let mut v = team(&t, &org);
    v["members"] = json!(
        members
            .iter()
            .map(|m| json!({"username": m.username, "expires_at": m.expires_at.map(format_millis)}))
            .collect::<Vec<_>>()
    );
    v["apps"] = json!(apps
        .iter()
        .map(|g| json!({"app": format!("{}/{}", g.owner_name, g.app_name), "role": g.role.as_str(), "expires_at": g.expires_at.map(format_millis)}))
        .collect::<Vec<_>>());
    Ok(Json(v))
}

async fn remove(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.delete_team(&c, &org, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

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
        .add_team_member(&c, &org, &name, &user, expires)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_seat(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, name, user)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.remove_team_member(&c, &org, &name, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn grant(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, name, app)): Path<(String, String, String)>,
    JsonBody(b): JsonBody<GrantBody>,
) -> ApiResult<StatusCode> {
    let role = AppRole::parse(&b.role)?;
    let expires = parse_expiry(b.expires_at.as_deref())?;
    s.hub
        .grant_team_app(&c, &org, &name, &app, role, expires)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn revoke(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, name, app)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.revoke_team_app(&c, &org, &name, &app).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(r: Routes) -> Routes {
    r.add(op!(POST "/v1/organizations/{org}/teams", "teams", "Create a team (org admins)", body = "TeamCreate", response = "Team", status = 201), post(create))
        .add(op!(GET "/v1/organizations/{org}/teams", "teams", "List teams (members)", response = "TeamList"), get(list))
        .add(op!(GET "/v1/organizations/{org}/teams/{team}", "teams", "A team with its members and app grants (members)", response = "Team"), get(get_one))
        .add(op!(DELETE "/v1/organizations/{org}/teams/{team}", "teams", "Delete a team (org admins)", status = 204), delete(remove))
        .add(op!(PUT "/v1/organizations/{org}/teams/{team}/members/{username}", "teams", "Give an org member a seat, with optional expiry (org admins)", body = "TeamSeat", status = 204), put(add_seat))
        .add(op!(DELETE "/v1/organizations/{org}/teams/{team}/members/{username}", "teams", "Remove a seat (org admins)", status = 204), delete(remove_seat))
        .add(op!(PUT "/v1/organizations/{org}/teams/{team}/apps/{app}", "teams", "Grant one of the org's apps to the team with an app role (org admins)", body = "TeamAppGrant", status = 204), put(grant))
        .add(op!(DELETE "/v1/organizations/{org}/teams/{team}/apps/{app}", "teams", "Revoke a team's app grant (org admins)", status = 204), delete(revoke))
}
