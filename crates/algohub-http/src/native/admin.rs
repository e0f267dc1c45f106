//! The Users page API (cluster admins): search, a streamed CSV export of every
//! account, and the per-account actions (cluster admin and sudo roles,
//! suspension). The work limit lives in `v1/usage.rs`; deletion is
//! `DELETE /v1/users/{username}`.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, QueryArgs};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::model::DeletionReceipt;
use algohub_core::model::{Page, User, format_millis};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// A user as the admin pages show them.
#[derive(Serialize, ToSchema)]
struct AdminUser {
    id: String,
    username: String,
    email: String,
    fullname: String,
    /// active or suspended.
    status: &'static str,
    cluster_admin: bool,
    /// Only where the cluster has the sudo role.
    #[serde(skip_serializing_if = "Option::is_none")]
    sudo_user: Option<bool>,
    /// The account's own work limit; null for the cluster default.
    work_limit: Option<i64>,
    created_at: String,
    last_login_at: Option<String>,
}

/// A page of accounts; `marker` while more may follow.
#[derive(Serialize, ToSchema)]
struct AdminUserList {
    results: Vec<AdminUser>,
    #[serde(skip_serializing_if = "Option::is_none")]
    marker: Option<String>,
}

/// What deleting a user revoked, item by item.
#[derive(Serialize, ToSchema)]
#[schema(as = DeletionReceipt)]
struct DeletionReceiptShape {
    username: String,
    /// `uuid (label)` of every API key revoked.
    keys: Vec<String>,
    /// Organizations the user left.
    memberships: Vec<String>,
    /// `org/team` seats removed.
    team_seats: Vec<String>,
    /// Ids of pending invitations rescinded.
    invitations: Vec<String>,
    /// Ids of impersonation sessions ended.
    sessions: Vec<String>,
}

impl From<DeletionReceipt> for DeletionReceiptShape {
    fn from(r: DeletionReceipt) -> Self {
        Self {
            username: r.username,
            keys: r.keys,
            memberships: r.memberships,
            team_seats: r.team_seats,
            invitations: r.invitations,
            sessions: r.sessions,
        }
    }
}

/// A user as the admin pages show them; the sudo role only where it exists.
fn admin_user(u: &User, sudo_enabled: bool) -> AdminUser {
    AdminUser {
        id: u.uuid.clone(),
        username: u.username.clone(),
        email: u.email.clone(),
        fullname: u.full_name.clone(),
        status: u.status.as_str(),
        cluster_admin: u.cluster_admin,
        sudo_user: sudo_enabled.then_some(u.sudo_user),
        work_limit: u.work_limit,
        created_at: format_millis(u.created_at),
        last_login_at: u.last_login_at.map(format_millis),
    }
}

/// `search` (a username or email prefix), `limit` (1 to 1000), `marker`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    search: Option<String>,
    limit: Option<String>,
    marker: Option<String>,
}

#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", summary = "Search accounts by username or email prefix (case-insensitive): ?search&limit&marker (cluster admins)", params(SearchArgs), responses((status = 200, body = AdminUserList)))]
async fn search(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<SearchArgs>,
) -> ApiResult<Json<AdminUserList>> {
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
        .admin
        .search_users(&c, q.search.as_deref().unwrap_or(""), &page)
        .await?;
    let sudo = s.hub.settings.sudo_users_enabled;
    let marker = users
        .last()
        .filter(|_| users.len() as i64 == limit)
        .map(|last| last.username.clone());
    Ok(Json(AdminUserList {
        results: users.iter().map(|u| admin_user(u, sudo)).collect(),
        marker,
    }))
}

/// Streams every account as CSV as the store reads it (constant memory).
#[utoipa::path(get, path = "/v1/admin/users/export", tag = "admin", summary = "Every account as CSV, streamed (cluster admins)", responses((status = 200, content((String = "text/csv")))))]
async fn export(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Response> {
    let chunks = s.hub.admin.export_users_csv(&c).await?.chunks;
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
) -> ApiResult<Json<AdminUser>> {
    let user = match role {
        "admin" => s.hub.admin.set_cluster_admin(c, username, on).await?,
        "sudo" => s.hub.admin.set_sudo_user(c, username, on).await?,
        "suspension" => s.hub.admin.set_suspended(c, username, on).await?,
        _ => return Err(ApiError::new(Code::RouteNotFound, "no such account action")),
    };
    Ok(Json(admin_user(&user, s.hub.settings.sudo_users_enabled)))
}

#[utoipa::path(put, path = "/v1/admin/users/{username}/admin", tag = "admin", summary = "Add a user to the cluster admins", responses((status = 200, body = AdminUser)))]
async fn add_admin(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<AdminUser>> {
    role_change(&s, &c, &u, "admin", true).await
}
#[utoipa::path(delete, path = "/v1/admin/users/{username}/admin", tag = "admin", summary = "Remove a user from the cluster admins (not yourself)", responses((status = 200, body = AdminUser)))]
async fn remove_admin(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<AdminUser>> {
    role_change(&s, &c, &u, "admin", false).await
}
#[utoipa::path(put, path = "/v1/admin/users/{username}/sudo", tag = "admin", summary = "Add a user to the sudo users (refused when the role is disabled)", responses((status = 200, body = AdminUser)))]
async fn add_sudo(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<AdminUser>> {
    role_change(&s, &c, &u, "sudo", true).await
}
#[utoipa::path(delete, path = "/v1/admin/users/{username}/sudo", tag = "admin", summary = "Remove a user from the sudo users", responses((status = 200, body = AdminUser)))]
async fn remove_sudo(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<AdminUser>> {
    role_change(&s, &c, &u, "sudo", false).await
}
#[utoipa::path(post, path = "/v1/admin/users/{username}/suspend", tag = "admin", summary = "Suspend a user: their keys stop working", responses((status = 200, body = AdminUser)))]
async fn suspend(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<AdminUser>> {
    role_change(&s, &c, &u, "suspension", true).await
}
#[utoipa::path(post, path = "/v1/admin/users/{username}/unsuspend", tag = "admin", summary = "Reinstate a suspended user", responses((status = 200, body = AdminUser)))]
async fn unsuspend(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<AdminUser>> {
    role_change(&s, &c, &u, "suspension", false).await
}

/// Deletes a user and answers with the receipt of everything revoked.
#[utoipa::path(delete, path = "/v1/admin/users/{username}", tag = "admin", summary = "Delete a user (name and email tombstoned forever) and list every key, membership, team seat and pending invitation revoked", responses((status = 200, body = DeletionReceiptShape)))]
async fn delete_user(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(u): Path<String>,
) -> ApiResult<Json<DeletionReceiptShape>> {
    Ok(Json(s.hub.accounts.delete_user(&c, &u).await?.into()))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(search))
        .typed(routes!(export))
        .typed(routes!(add_admin, remove_admin))
        .typed(routes!(add_sudo, remove_sudo))
        .typed(routes!(delete_user))
        .typed(routes!(suspend))
        .typed(routes!(unsuspend))
}
