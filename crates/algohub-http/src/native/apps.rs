//! Native: apps (create, get, list with search and sort, delete, duplicate,
//! transfer to an org, pins).

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, QueryArgs};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{App, AppSort, format_millis};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// An app.
#[derive(Serialize, ToSchema)]
#[schema(as = App)]
pub struct AppShape {
    id: String,
    owner: String,
    name: String,
    description: String,
    created_at: String,
    updated_at: String,
}

pub fn app(a: &App) -> AppShape {
    AppShape {
        id: a.uuid.clone(),
        owner: a.owner_name.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        created_at: format_millis(a.created_at),
        updated_at: format_millis(a.updated_at),
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AppCreate)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
}

/// `search`, `sort=updated|name`, `order=asc|desc`, `limit`, `offset`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListArgs {
    search: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AppDuplicate)]
struct DuplicateBody {
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AppTransfer)]
struct TransferBody {
    to: String,
    name: Option<String>,
}

fn number(raw: Option<&str>, default: i64, field: &str) -> algohub_core::Result<i64> {
    match raw {
        None | Some("") => Ok(default),
        Some(s) => s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            algohub_core::Error::new(
                Code::InvalidInput,
                format!("invalid {field} {s:?}: use a whole number"),
            )
        }),
    }
}

#[utoipa::path(post, path = "/v1/apps/{owner}", tag = "apps", summary = "Create an app in a user or org account", request_body = CreateBody, responses((status = 201, body = AppShape)))]
async fn create(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(owner): Path<String>,
    JsonBody(b): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<AppShape>)> {
    let a = s
        .hub
        .apps
        .create_app(&c, &owner, &b.name, &b.description)
        .await?;
    Ok((StatusCode::CREATED, Json(app(&a))))
}

#[utoipa::path(get, path = "/v1/apps/{owner}", tag = "apps", summary = "List readable apps: ?search=&sort=updated|name&order=asc|desc&limit=&offset=", params(ListArgs), responses((status = 200, body = Vec<AppShape>)))]
async fn list(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(owner): Path<String>,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Vec<AppShape>>> {
    let sort = AppSort::parse(q.sort.as_deref(), q.order.as_deref())?;
    let limit = number(q.limit.as_deref(), 50, "limit")?;
    let offset = number(q.offset.as_deref(), 0, "offset")?;
    let apps = s
        .hub
        .apps
        .list_apps(
            &c,
            &owner,
            q.search.as_deref().filter(|x| !x.is_empty()),
            sort,
            limit,
            offset,
        )
        .await?;
    Ok(Json(apps.iter().map(app).collect()))
}

#[utoipa::path(get, path = "/v1/apps/{owner}/{app}", tag = "apps", summary = "Get an app", responses((status = 200, body = AppShape)))]
async fn get_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<Json<AppShape>> {
    Ok(Json(app(&s.hub.apps.get_app(&c, &owner, &name).await?)))
}

#[utoipa::path(delete, path = "/v1/apps/{owner}/{app}", tag = "apps", summary = "Delete an app (app admins)", responses((status = 204)))]
async fn remove(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.apps.delete_app(&c, &owner, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/apps/{owner}/{app}/duplicate", tag = "apps", summary = "Duplicate an app under a new name", request_body = DuplicateBody, responses((status = 201, body = AppShape)))]
async fn duplicate(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(b): JsonBody<DuplicateBody>,
) -> ApiResult<(StatusCode, Json<AppShape>)> {
    let a = s.hub.apps.duplicate_app(&c, &owner, &name, &b.name).await?;
    Ok((StatusCode::CREATED, Json(app(&a))))
}

#[utoipa::path(post, path = "/v1/apps/{owner}/{app}/transfer", tag = "apps", summary = "Transfer a personal app to an org, optionally renamed", request_body = TransferBody, responses((status = 200, body = AppShape)))]
async fn transfer(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(b): JsonBody<TransferBody>,
) -> ApiResult<Json<AppShape>> {
    let a = s
        .hub
        .apps
        .transfer_app(&c, &owner, &name, &b.to, b.name.as_deref())
        .await?;
    Ok(Json(app(&a)))
}

#[utoipa::path(put, path = "/v1/apps/{owner}/{app}/pin", tag = "apps", summary = "Pin an app for the caller", responses((status = 204)))]
async fn pin(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.apps.pin_app(&c, &owner, &name, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/apps/{owner}/{app}/pin", tag = "apps", summary = "Unpin an app", responses((status = 204)))]
async fn unpin(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.apps.pin_app(&c, &owner, &name, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/pins", tag = "apps", summary = "The caller's pinned apps", responses((status = 200, body = Vec<AppShape>)))]
async fn pins(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Vec<AppShape>>> {
    let apps = s.hub.apps.pinned_apps(&c).await?;
    Ok(Json(apps.iter().map(app).collect()))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(create, list))
        .typed(routes!(get_one, remove))
        .typed(routes!(duplicate))
        .typed(routes!(transfer))
        .typed(routes!(pin, unpin))
        .typed(routes!(pins))
}
