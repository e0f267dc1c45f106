//! Notifications: `GET /v1/users/{userId}/notifications` in the v1 shape
//! (every element also carries the `NotificationContext` fields the generated
//! client requires), unread count, mark read, and the admin's send route.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, QueryArgs};
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{Notification, format_millis, parse_time};
use axum::Json;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

fn notification_json(n: &Notification, recipient: &str) -> Value {
    let algorithm = n.context["algorithm"].as_str().unwrap_or("");
    let (owner, algoname) = algorithm.split_once('/').unwrap_or((recipient, ""));
    json!({
        "notification_id": n.uuid,
        "id": n.id,
        "notification_type": n.kind,
        "created_at": format_millis(n.created_at),
        "read_at": n.read_at.map(format_millis),
        "text": n.text,
        "url": n.url,
        "notification_context": n.context,
        "algorithm_id": n.context["algorithm_id"].as_str().unwrap_or(""),
        "username": owner,
        "algoname": algoname,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    limit: Option<String>,
    since: Option<String>,
    before: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Value>> {
    let limit = match q.limit.as_deref() {
        None | Some("") => 50,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidInput,
                    format!("invalid limit {raw:?}: use 1 to 100"),
                )
            })?,
    };
    let since = match q.since.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(raw) => Some(parse_time(raw).ok_or_else(|| {
            ApiError::new(
                Code::InvalidInput,
                format!("invalid since {raw:?}: use RFC 3339"),
            )
        })?),
    };
    let before = match q.before.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
            ApiError::new(
                Code::InvalidInput,
                format!("invalid before {raw:?}: pass a notification id"),
            )
        })?),
    };
    let list = s
        .hub
        .list_notifications(&c, &user, before, since, limit)
        .await?;
    Ok(Json(json!(
        list.iter()
            .map(|n| notification_json(n, &user))
            .collect::<Vec<_>>()
    )))
}

async fn unread(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({"unread": s.hub.unread_notifications(&c, &user).await?}),
    ))
}

async fn read_all(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({"marked": s.hub.mark_notifications_read(&c, &user, None).await?}),
    ))
}

async fn read_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((user, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let id = id
        .parse::<i64>()
        .map_err(|_| ApiError::new(Code::NotFound, "no such notification"))?;
    Ok(Json(
        json!({"marked": s.hub.mark_notifications_read(&c, &user, Some(id)).await?}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    /// Comma-separated usernames.
    usernames: String,
    text: String,
    url: Option<String>,
}

async fn send(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(b): JsonBody<SendBody>,
) -> ApiResult<Json<Value>> {
    let sent = s
        .hub
        .send_notification(&c, &b.usernames, &b.text, b.url.as_deref())
        .await?;
    Ok(Json(json!({
        "sent": sent.len(),
        "results": sent.iter().map(|(name, n)| json!({"username": name, "notification_id": n.uuid})).collect::<Vec<_>>(),
    })))
}

pub fn routes(r: Routes) -> Routes {
    r.add(op!(GET "/v1/users/{username}/notifications", "notifications", "A user's notifications, newest first: ?limit=1-100&since=RFC3339&before=id (the user or a cluster admin; a username or the user's UUID)", response = "NotificationList"), get(list))
        .add(op!(GET "/v1/users/{username}/notifications/unread", "notifications", "How many notifications are unread", response = "UnreadCount"), get(unread))
        .add(op!(POST "/v1/users/{username}/notifications/read", "notifications", "Mark every notification read", response = "Marked"), post(read_all))
        .add(op!(POST "/v1/users/{username}/notifications/{id}/read", "notifications", "Mark one notification read (by its id)", response = "Marked"), post(read_one))
        .add(op!(POST "/v1/admin/notifications", "notifications", "Send a message (text, optional url) to comma-separated usernames; unknown names are reported and nothing is sent (cluster admins)", body = "NotificationSend", response = "NotificationSent"), post(send))
}
