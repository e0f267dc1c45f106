//! `NotificationStore`: in-app notifications, and their delivery from the
//! outbox inside the enqueuing transaction.

use crate::SqlStore;
use crate::db::{WriteTx, col, db_err, json, new_uuid, page_limit};
use algohub_core::model::*;
use algohub_core::store::{NotificationStore, StoreError, StoreResult};
use async_trait::async_trait;

const COLUMNS: &str = "id, uuid, user_id, kind, text, url, context, sender_id, created_at, read_at";

fn notification(r: &sqlx::any::AnyRow) -> StoreResult<Notification> {
    Ok(Notification {
        id: col(r, "id")?,
        uuid: col(r, "uuid")?,
        user_id: col(r, "user_id")?,
        kind: col(r, "kind")?,
        text: col(r, "text")?,
        url: col(r, "url")?,
        context: json(r, "context")?,
        sender_id: col(r, "sender_id")?,
        created_at: col(r, "created_at")?,
        read_at: col(r, "read_at")?,
    })
}

/// Inserts one notification in `tx` and returns it.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_notification(
    tx: &mut WriteTx<'_>,
    user: AccountId,
    kind: &str,
    text: &str,
    url: Option<&str>,
    context: &serde_json::Value,
    sender: Option<AccountId>,
    now: Millis,
) -> StoreResult<Notification> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO notifications (uuid, user_id, kind, text, url, context, sender_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    )))
    .bind(new_uuid())
    .bind(user)
    .bind(kind)
    .bind(text)
    .bind(url)
    .bind(context.to_string())
    .bind(sender)
    .bind(now)
    .fetch_one(tx.conn())
    .await
    .map_err(db_err)?;
    notification(&row)
}

#[async_trait]
impl NotificationStore for SqlStore {
    async fn send_notifications(
        &self,
        sender: AccountId,
        users: &[AccountId],
        text: &str,
        url: Option<&str>,
    ) -> StoreResult<Vec<Notification>> {
        let now = now_millis();
        let mut tx = self.write().await?;
        let mut sent = Vec::with_capacity(users.len());
        for u in users {
            crate::accounts::require_live(&mut tx, *u, AccountKind::User).await?;
            let context = serde_json::json!({});
            sent.push(
                insert_notification(
                    &mut tx,
                    *u,
                    "message",
                    text,
                    url,
                    &context,
                    Some(sender),
                    now,
                )
                .await?,
            );
        }
        tx.event(
            "notification.sent",
            Some(sender),
            "users",
            serde_json::json!({"recipients": users, "url": url, "chars": text.chars().count()}),
        )
        .await?;
        tx.commit().await?;
        Ok(sent)
    }

    async fn list_notifications(
        &self,
        user: AccountId,
        before_id: Option<i64>,
        since: Option<Millis>,
        limit: i64,
    ) -> StoreResult<Vec<Notification>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = $1 AND ($2 IS NULL OR id < $2) \
             AND ($3 IS NULL OR created_at >= $3) ORDER BY id DESC LIMIT $4"
        )))
        .bind(user)
        .bind(before_id)
        .bind(since)
        .bind(page_limit(limit))
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(notification).collect()
    }

    async fn count_unread_notifications(&self, user: AccountId) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM notifications WHERE user_id = $1 AND read_at IS NULL",
        )
        .bind(user)
        .fetch_one(self.pool())
        .await
        .map_err(db_err)?;
        col(&row, "n")
    }

    async fn mark_notifications_read(
        &self,
        user: AccountId,
        id: Option<i64>,
        now: Millis,
    ) -> StoreResult<u64> {
        let mut tx = self.write().await?;
        if let Some(id) = id {
            sqlx::query("SELECT id FROM notifications WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user)
                .fetch_optional(tx.conn())
                .await
                .map_err(db_err)?
                .ok_or(StoreError::NotFound)?;
        }
        let done = sqlx::query(
            "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL \
             AND ($3 IS NULL OR id = $3)",
        )
        .bind(now)
        .bind(user)
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
