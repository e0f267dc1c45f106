//! `/v1/users`: create, list (marker paging), get, update, delete.

use super::shapes;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, QueryArgs, page};
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use algohub_core::model::UserUpdate;
use algohub_core::services::CreateUser;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
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

#[derive(Deserialize)]
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

#[derive(Deserialize)]
pub(crate) struct PageArgs {
    pub limit: Option<String>,
    pub marker: Option<String>,
}

async fn create(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(b): JsonBody<UserBody>,
) -> ApiResult<Json<Value>> {
    let req = CreateUser {
        username: b.username,
        email: b.email,
        full_name: b.fullname.unwrap_or_default(),
        company_name: b.company_name,
        company_role: b.company_role,
        password: b.password,
        cluster_admin: false,
    };
    let u = s.hub.create_user(&c, req).await?;
    Ok(Json(shapes::user(&u, &s.base_url)))
}

async fn list(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<PageArgs>,
) -> ApiResult<Json<Value>> {
    let p = page(q.limit.as_deref(), q.marker, 50)?;
    let users = s.hub.list_users(&c, &p).await?;
    let last = users.last().map(|u| u.username.clone());
    let results = users.iter().map(|u| shapes::user(u, &s.base_url)).collect();
    Ok(Json(shapes::paged(
        results,
        last,
        p.limit,
        &format!("{}/v1/users", s.base_url),
    )))
}

async fn get_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let u = s.hub.get_user(&c, &name).await?;
    Ok(Json(shapes::user(&u, &s.base_url)))
}

async fn update(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    JsonBody(b): JsonBody<UserUpdateBody>,
) -> ApiResult<Json<Value>> {
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
    let u = s.hub.update_user(&c, &name, update).await?;
    Ok(Json(shapes::user(&u, &s.base_url)))
}

async fn remove(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    s.hub.delete_user(&c, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(r: Routes) -> Routes {
    r.add(op!(POST "/v1/users", "users", "Create a user (cluster admins)", body = "User", response = "User"), post(create))
        .add(op!(GET "/v1/users", "users", "List users with marker paging (cluster admins)", response = "PagedResultList"), get(list))
        .add(op!(GET "/v1/users/{username}", "users", "Get a user (the user or a cluster admin)", response = "User"), get(get_one))
        .add(op!(PUT "/v1/users/{username}", "users", "Update a user (the username cannot change)", body = "User", response = "User"), put(update))
        .add(op!(DELETE "/v1/users/{username}", "users", "Delete a user (tombstones the name and email)", status = 204), delete(remove))
}
