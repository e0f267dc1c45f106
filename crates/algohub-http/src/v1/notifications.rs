//! Notifications: `GET /v1/users/{userId}/notifications` in the v1 shape
//! (every element also carries the `NotificationContext` fields the generated
//! client requires), unread count, mark read, and the admin's send route.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, QueryArgs};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{Notification, format_millis, parse_time};
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;

/// A notification, with the `NotificationContext` fields the generated
/// client requires.
#[derive(Serialize, ToSchema)]
#[schema(as = Notification)]
struct NotificationShape {
    notification_id: String,
    id: i64,
    notification_type: String,
    created_at: String,
    read_at: Option<String>,
    text: String,
    url: Option<String>,
    notification_context: Value,
    algorithm_id: String,
    username: String,
    algoname: String,
}

fn notification_json(n: &Notification, recipient: &str) -> NotificationShape {
    let algorithm = n.context["algorithm"].as_str().unwrap_or("");
    let (owner, algoname) = algorithm.split_once('/').unwrap_or((recipient, ""));
    NotificationShape {
        notification_id: n.uuid.clone(),
        id: n.id,
        notification_type: n.kind.clone(),
        created_at: format_millis(n.created_at),
        read_at: n.read_at.map(format_millis),
        text: n.text.clone(),
        url: n.url.clone(),
        notification_context: n.context.clone(),
        algorithm_id: n.context["algorithm_id"].as_str().unwrap_or("").to_string(),
        username: owner.to_string(),
        algoname: algoname.to_string(),
    }
}

/// How many notifications are unread.
#[derive(Serialize, ToSchema)]
struct UnreadCount {
    unread: i64,
}

/// How many notifications were marked read.
#[derive(Serialize, ToSchema)]
struct Marked {
    marked: u64,
}

/// One recipient of a message.
#[derive(Serialize, ToSchema)]
struct SentTo {
    username: String,
    notification_id: String,
}

/// The recipients of a message.
#[derive(Serialize, ToSchema)]
struct NotificationSent {
    sent: usize,
    results: Vec<SentTo>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    limit: Option<String>,
    since: Option<String>,
    before: Option<String>,
}

#[utoipa::path(get, path = "/v1/users/{username}/notifications", tag = "notifications", summary = "A user's notifications, newest first: ?limit=1-100&since=RFC3339&before=id (the user or a cluster admin; a username or the user's UUID)", params(ListArgs), responses((status = 200, body = Vec<NotificationShape>)))]
async fn list(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Vec<NotificationShape>>> {
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
        .notifications
        .list_notifications(&c, &user, before, since, limit)
        .await?;
    Ok(Json(
        list.iter().map(|n| notification_json(n, &user)).collect(),
    ))
}

#[utoipa::path(get, path = "/v1/users/{username}/notifications/unread", tag = "notifications", summary = "How many notifications are unread", responses((status = 200, body = UnreadCount)))]
async fn unread(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<UnreadCount>> {
    let unread = s.hub.notifications.unread_notifications(&c, &user).await?;
    Ok(Json(UnreadCount { unread }))
}

#[utoipa::path(post, path = "/v1/users/{username}/notifications/read", tag = "notifications", summary = "Mark every notification read", responses((status = 200, body = Marked)))]
async fn read_all(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<Marked>> {
    let marked = s
        .hub
        .notifications
        .mark_notifications_read(&c, &user, None)
        .await?;
    Ok(Json(Marked { marked }))
}

#[utoipa::path(post, path = "/v1/users/{username}/notifications/{id}/read", tag = "notifications", summary = "Mark one notification read (by its id)", responses((status = 200, body = Marked)))]
async fn read_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((user, id)): Path<(String, String)>,
) -> ApiResult<Json<Marked>> {
    let id = id
        .parse::<i64>()
        .map_err(|_| ApiError::new(Code::NotFound, "no such notification"))?;
    let marked = s
        .hub
        .notifications
        .mark_notifications_read(&c, &user, Some(id))
        .await?;
    Ok(Json(Marked { marked }))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = NotificationSend)]
#[serde(deny_unknown_fields)]
struct SendBody {
    /// Comma-separated usernames.
    usernames: String,
    text: String,
    url: Option<String>,
}

#[utoipa::path(post, path = "/v1/admin/notifications", tag = "notifications", summary = "Send a message (text, optional url) to comma-separated usernames; unknown names are reported and nothing is sent (cluster admins)", request_body = SendBody, responses((status = 200, body = NotificationSent)))]
async fn send(
    State(s): State<AppState>,
    Caller(c): Caller,
    JsonBody(b): JsonBody<SendBody>,
) -> ApiResult<Json<NotificationSent>> {
    let sent = s
        .hub
        .notifications
        .send_notification(&c, &b.usernames, &b.text, b.url.as_deref())
        .await?;
    Ok(Json(NotificationSent {
        sent: sent.len(),
        results: sent
            .iter()
            .map(|(name, n)| SentTo {
                username: name.clone(),
                notification_id: n.uuid.clone(),
            })
            .collect(),
    }))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(list))
        .typed(routes!(unread))
        .typed(routes!(read_all))
        .typed(routes!(read_one))
        .typed(routes!(send))
}
