//! `/v1/users`: create, list (marker paging), get, update, delete.

use super::shapes;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, QueryArgs, page};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::model::UserUpdate;
use algohub_core::services::CreateUser;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

#[derive(Deserialize, ToSchema)]
#[schema(as = UserCreate)]
struct UserBody {
    username: String,
    email: String,
    #[serde(default)]
    fullname: Option<String>,
    #[serde(default)]
    company_name: Option<String>,
    #[serde(default)]
    company_role: Option<String>,
    /// Plain-text password; stored as an argon2id hash. (`passwordHash` from
    /// Algorithmia exports uses an unknown scheme and is ignored.)
    #[serde(default)]
    password: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = UserUpdate)]
struct UserUpdateBody {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    fullname: Option<String>,
    #[serde(default)]
    company_name: Option<String>,
    #[serde(default)]
    company_role: Option<String>,
}

/// Marker paging: `limit`, and the `marker` of the previous page.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageArgs {
    pub limit: Option<String>,
    pub marker: Option<String>,
}

#[utoipa::path(post, path = "/v1/users", tag = "users", summary = "Create a user (cluster admins)", request_body = UserBody, responses((status = 200, body = shapes::UserShape)))]
async fn create(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(b): JsonBody<UserBody>,
) -> ApiResult<Json<shapes::UserShape>> {
    let req = CreateUser {
        username: b.username,
        email: b.email,
        full_name: b.fullname.unwrap_or_default(),
        company_name: b.company_name,
        company_role: b.company_role,
        password: b.password,
        cluster_admin: false,
    };
    let u = s.hub.accounts.create_user(&c, req).await?;
    Ok(Json(shapes::user(&u, &s.base_url)))
}

#[utoipa::path(get, path = "/v1/users", tag = "users", summary = "List users with marker paging (cluster admins)", params(PageArgs), responses((status = 200, body = shapes::Paged<shapes::UserShape>)))]
async fn list(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<PageArgs>,
) -> ApiResult<Json<shapes::Paged<shapes::UserShape>>> {
    let p = page(q.limit.as_deref(), q.marker, 50)?;
    let users = s.hub.accounts.list_users(&c, &p).await?;
    let last = users.last().map(|u| u.username.clone());
    let results = users.iter().map(|u| shapes::user(u, &s.base_url)).collect();
    Ok(Json(shapes::paged(
        results,
        last,
        p.limit,
        &format!("{}/v1/users", s.base_url),
    )))
}

#[utoipa::path(get, path = "/v1/users/{username}", tag = "users", summary = "Get a user (the user or a cluster admin)", responses((status = 200, body = shapes::UserShape)))]
async fn get_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<shapes::UserShape>> {
    let u = s.hub.accounts.get_user(&c, &name).await?;
    Ok(Json(shapes::user(&u, &s.base_url)))
}

#[utoipa::path(put, path = "/v1/users/{username}", tag = "users", summary = "Update a user (the username cannot change)", request_body = UserUpdateBody, responses((status = 200, body = shapes::UserShape)))]
async fn update(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<UserUpdateBody>,
) -> ApiResult<Json<shapes::UserShape>> {
    if let Some(u) = &b.username
        && !u.eq_ignore_ascii_case(&name)
    {
        return Err(ApiError::new(
            Code::InvalidInput,
            "the username cannot be changed",
        ));
    }
    let update = UserUpdate {
        email: b.email,
        full_name: b.fullname,
        company_name: b.company_name,
        company_role: b.company_role,
    };
    let u = s.hub.accounts.update_user(&c, &name, update).await?;
    Ok(Json(shapes::user(&u, &s.base_url)))
}

#[utoipa::path(delete, path = "/v1/users/{username}", tag = "users", summary = "Delete a user (tombstones the name and email)", responses((status = 204)))]
async fn remove(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.hub.accounts.delete_user(&c, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(create, list))
        .typed(routes!(get_one, update, remove))
}
