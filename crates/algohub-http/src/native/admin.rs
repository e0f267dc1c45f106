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

/// A cell as it is safe to open in a spreadsheet: text that would start a
/// formula (`= + - @`, tab, carriage return) gets a leading apostrophe.
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// CSV rows of `users` (with the header row first when `header`). Shared by
/// the export route and `algohub export users --csv`.
pub fn users_csv(users: &[User], sudo_enabled: bool, header: bool) -> Result<Vec<u8>, String> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(users.len() * 96));
    let e = |e: csv::Error| e.to_string();
    if header {
        let mut h = vec![
            "id",
            "username",
            "email",
            "fullname",
            "status",
            "cluster_admin",
        ];
        if sudo_enabled {
            h.push("sudo_user");
        }
        h.extend(["work_limit", "created_at", "last_login_at"]);
        w.write_record(&h).map_err(e)?;
    }
    for u in users {
        let flag = |b: bool| if b { "true" } else { "false" };
        let limit = u.work_limit.map(|l| l.to_string()).unwrap_or_default();
        let created = format_millis(u.created_at);
        let login = u.last_login_at.map(format_millis).unwrap_or_default();
        w.write_field(&u.uuid).map_err(e)?;
        w.write_field(&u.username).map_err(e)?;
        w.write_field(cell(&u.email).as_ref()).map_err(e)?;
        w.write_field(cell(&u.full_name).as_ref()).map_err(e)?;
        w.write_field(u.status.as_str()).map_err(e)?;
        w.write_field(flag(u.cluster_admin)).map_err(e)?;
        if sudo_enabled {
            w.write_field(flag(u.sudo_user)).map_err(e)?;
        }
        w.write_field(&limit).map_err(e)?;
        w.write_field(&created).map_err(e)?;
        w.write_field(&login).map_err(e)?;
        w.write_record(None::<&[u8]>).map_err(e)?;
    }
    w.into_inner().map_err(|e| e.to_string())
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

/// Streams every account as CSV, one store page at a time (constant memory).
async fn export(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Response> {
    // The first page is read before answering, so a refusal is a clean 403.
    let first = s.hub.export_users_page(&c, None).await?;
    let sudo = s.hub.settings.sudo_users_enabled;
    let hub = s.hub.clone();
    let stream = futures_util::stream::unfold(
        (Some(first), true, c, false),
        move |(page, header, caller, done)| {
            let hub = hub.clone();
            async move {
                if done {
                    return None;
                }
                let users = match page {
                    Some(p) => p,
                    None => {
                        return None;
                    }
                };
                let chunk = users_csv(&users, sudo, header).map_err(std::io::Error::other);
                let next = if (users.len() as i64) < algohub_core::services::EXPORT_PAGE {
                    None
                } else {
                    let marker = users.last().map(|u| u.username.clone());
                    match hub.export_users_page(&caller, marker).await {
                        Ok(p) if !p.is_empty() => Some(p),
                        Ok(_) => None,
                        Err(e) => {
                            // The status is already sent: end the body with an error.
                            let err = std::io::Error::other(e.to_string());
                            return Some((Err(err), (None, false, caller, true)));
                        }
                    }
                };
                Some((chunk.map(Bytes::from), (next, false, caller, false)))
            }
        },
    );
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
    c: &algohub_core::policy::Principal,
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
