//! The Users page API (cluster admins): search, a streamed CSV export of every
//! account, and the per-account actions (cluster admin and sudo roles,
//! suspension). The work limit lives in `v1/usage.rs`; deletion is
//! `DELETE /v1/users/{username}`.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, QueryArgs};
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{Page, User, format_millis};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

/// A user as the admin pages show them; the sudo role only where it exists.
fn admin_user(u: &User, sudo_enabled: bool) -> Value {
    let mut v = json!({
        "id": u.uuid,
        "username": u.username,
        "email": u.email,
        "fullname": u.full_name,
        "status": u.status.as_str(),
        "cluster_admin": u.cluster_admin,
        "work_limit": u.work_limit,
        "created_at": format_millis(u.created_at),
        "last_login_at": u.last_login_at.map(format_millis),
    });
    if sudo_enabled {
        v["sudo_user"] = json!(u.sudo_user);
    }
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    search: Option<String>,
    limit: Option<String>,
    marker: Option<String>,
}

async fn search(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<SearchArgs>,
) -> ApiResult<Json<Value>> {
    let limit = match q.limit.as_deref() {
        None | Some("") => 50,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidInput,
                    format!("invalid limit {raw:?}: use 1 to 1000"),
                )
            })?,
    };
    let page = Page {
        limit,
        marker: q.marker.filter(|m| !m.is_empty()),
    };
    let users = s
        .hub
        .search_users(&c, q.search.as_deref().unwrap_or(""), &page)
        .await?;
    let sudo = s.hub.settings.sudo_users_enabled;
    let mut body =
        json!({"results": users.iter().map(|u| admin_user(u, sudo)).collect::<Vec<_>>()});
    if users.len() as i64 == limit
        && let Some(last) = users.last()
    {
        body["marker"] = json!(last.username);
    }
    Ok(Json(body))
}

/// Streams every account as CSV as the store reads it (constant memory).
async fn export(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Response> {
    let chunks = s.hub.export_users_csv(&c).await?.chunks;
    // A failure midway ends the body with an error (the status is already sent).
    let stream = futures_util::stream::unfold(chunks, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item.map(Bytes::from).map_err(std::io::Error::other), rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"accounts.csv\"",
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn role_change(
    s: &AppState,
    c: &algohub_core::RequestCtx,
    username: &str,
    role: &str,
    on: bool,
) -> ApiResult<Json<Value>> {
    let user = match role {
        "admin" => s.hub.set_cluster_admin(c, username, on).await?,
        "sudo" => s.hub.set_sudo_user(c, username, on).await?,
        "suspension" => s.hub.set_suspended(c, username, on).await?,
        _ => return Err(ApiError::new(Code::RouteNotFound, "no such account action")),
    };
    Ok(Json(admin_user(&user, s.hub.settings.sudo_users_enabled)))
}

async fn add_admin(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<Value>> {
    role_change(&s, &c, &u, "admin", true).await
}
async fn remove_admin(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<Value>> {
    role_change(&s, &c, &u, "admin", false).await
}
async fn add_sudo(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<Value>> {
    role_change(&s, &c, &u, "sudo", true).await
}
async fn remove_sudo(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<Value>> {
    role_change(&s, &c, &u, "sudo", false).await
}
async fn suspend(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<Value>> {
    role_change(&s, &c, &u, "suspension", true).await
}
async fn unsuspend(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<Value>> {
    role_change(&s, &c, &u, "suspension", false).await
}

/// Deletes a user and answers with the receipt of everything revoked.
async fn delete_user(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.hub.delete_user(&c, &u).await?)))
}

pub fn routes(r: Routes) -> Routes {
    r.add(op!(GET "/v1/admin/users", "admin", "Search accounts by username or email prefix (case-insensitive): ?search&limit&marker (cluster admins)", response = "AdminUserList"), get(search))
        .add(op!(GET "/v1/admin/users/export", "admin", "Every account as CSV, streamed (cluster admins)"), get(export))
        .add_many(
            &[
                op!(PUT "/v1/admin/users/{username}/admin", "admin", "Add a user to the cluster admins", response = "AdminUser"),
                op!(DELETE "/v1/admin/users/{username}/admin", "admin", "Remove a user from the cluster admins (not yourself)", response = "AdminUser"),
            ],
            put(add_admin).delete(remove_admin),
        )
        .add_many(
            &[
                op!(PUT "/v1/admin/users/{username}/sudo", "admin", "Add a user to the sudo users (refused when the role is disabled)", response = "AdminUser"),
                op!(DELETE "/v1/admin/users/{username}/sudo", "admin", "Remove a user from the sudo users", response = "AdminUser"),
            ],
            put(add_sudo).delete(remove_sudo),
        )
        .add(op!(DELETE "/v1/admin/users/{username}", "admin", "Delete a user (name and email tombstoned forever) and list every key, membership, team seat and pending invitation revoked", response = "DeletionReceipt"), axum::routing::delete(delete_user))
        .add(op!(POST "/v1/admin/users/{username}/suspend", "admin", "Suspend a user: their keys stop working", response = "AdminUser"), post(suspend))
        .add(op!(POST "/v1/admin/users/{username}/unsuspend", "admin", "Reinstate a suspended user", response = "AdminUser"), post(unsuspend))
}
