//! Native: apps (create, get, list with search and sort, delete, duplicate,
//! transfer to an org, pins).

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, QueryArgs};
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{App, AppSort, format_millis};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn app(a: &App) -> Value {
    json!({
        "id": a.uuid,
        "owner": a.owner_name,
        "name": a.name,
        "description": a.description,
        "created_at": format_millis(a.created_at),
        "updated_at": format_millis(a.updated_at),
    })
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
struct ListArgs {
    search: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

#[derive(Deserialize)]
struct DuplicateBody {
    name: String,
}

#[derive(Deserialize)]
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

async fn create(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(owner): Path<String>,
    JsonBody(b): JsonBody<CreateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let a = s
        .hub
        .create_app(&c, &owner, &b.name, &b.description)
        .await?;
    Ok((StatusCode::CREATED, Json(app(&a))))
}

async fn list(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(owner): Path<String>,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Value>> {
    let sort = AppSort::parse(q.sort.as_deref(), q.order.as_deref())?;
    let limit = number(q.limit.as_deref(), 50, "limit")?;
    let offset = number(q.offset.as_deref(), 0, "offset")?;
    let apps = s
        .hub
        .list_apps(
            &c,
            &owner,
            q.search.as_deref().filter(|x| !x.is_empty()),
            sort,
            limit,
            offset,
        )
        .await?;
    Ok(Json(json!(apps.iter().map(app).collect::<Vec<_>>())))
}

async fn get_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(app(&s.hub.get_app(&c, &owner, &name).await?)))
}

async fn remove(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.delete_app(&c, &owner, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn duplicate(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(b): JsonBody<DuplicateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let a = s.hub.duplicate_app(&c, &owner, &name, &b.name).await?;
    Ok((StatusCode::CREATED, Json(app(&a))))
}

async fn transfer(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
    JsonBody(b): JsonBody<TransferBody>,
) -> ApiResult<Json<Value>> {
    let a = s
        .hub
        .transfer_app(&c, &owner, &name, &b.to, b.name.as_deref())
        .await?;
    Ok(Json(app(&a)))
}

async fn pin(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.pin_app(&c, &owner, &name, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unpin(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.pin_app(&c, &owner, &name, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pins(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Value>> {
    let apps = s.hub.pinned_apps(&c).await?;
    Ok(Json(json!(apps.iter().map(app).collect::<Vec<_>>())))
}

pub fn routes(r: Routes) -> Routes {
    r.add(op!(POST "/v1/apps/{owner}", "apps", "Create an app in a user or org account", body = "AppCreate", response = "App", status = 201), post(create))
        .add(op!(GET "/v1/apps/{owner}", "apps", "List readable apps: ?search=&sort=updated|name&order=asc|desc&limit=&offset=", response = "AppList"), get(list))
        .add(op!(GET "/v1/apps/{owner}/{app}", "apps", "Get an app", response = "App"), get(get_one))
        .add(op!(DELETE "/v1/apps/{owner}/{app}", "apps", "Delete an app (app admins)", status = 204), delete(remove))
        .add(op!(POST "/v1/apps/{owner}/{app}/duplicate", "apps", "Duplicate an app under a new name", body = "AppDuplicate", response = "App", status = 201), post(duplicate))
        .add(op!(POST "/v1/apps/{owner}/{app}/transfer", "apps", "Transfer a personal app to an org, optionally renamed", body = "AppTransfer", response = "App"), post(transfer))
        .add(op!(PUT "/v1/apps/{owner}/{app}/pin", "apps", "Pin an app for the caller", status = 204), put(pin))
        .add(op!(DELETE "/v1/apps/{owner}/{app}/pin", "apps", "Unpin an app", status = 204), delete(unpin))
        .add(op!(GET "/v1/pins", "apps", "The caller's pinned apps", response = "AppList"), get(pins))
}
