//! `NotificationStore`: in-app notifications, and their delivery from the
//! outbox inside the enqueuing transaction.

use crate::SqlStore;
use crate::db::{WriteTx, col, db_err, json, new_uuid, page_limit};
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::store::Constraint;
use algohub_core::store::Written;
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
        ctx: &AuditContext,
        sender: AccountId,
        users: &[AccountId],
        text: &str,
        url: Option<&str>,
    ) -> StoreResult<Written<Vec<Notification>>> {
        let now = now_millis();
        let mut tx = self.write(ctx).await?;
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
            EventKind::NotificationSent,
            Some(sender),
            "users",
            serde_json::json!({"recipients": users, "url": url, "chars": text.chars().count()}),
        )
        .await?;
        tx.finish(sent).await
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

    async fn create_invite_code(
        &self,
        ctx: &AuditContext,
        actor: AccountId,
        code: &str,
        signup_credits: i64,
        comments: &str,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        let exists = sqlx::query("SELECT code FROM invite_codes WHERE code = $1")
            .bind(code)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_err)?;
        if exists.is_some() {
            return Err(crate::db::conflict(Constraint::InviteCode));
        }
        sqlx::query(
            "INSERT INTO invite_codes (code, signup_credits, comments, expires_at, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(code)
        .bind(signup_credits)
        .bind(comments)
        .bind(expires_at)
        .bind(now_millis())
        .bind(actor)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        tx.event(
            EventKind::InviteCodeCreated,
            Some(actor),
            "invite_codes",
            serde_json::json!({"signup_credits": signup_credits, "expires_at": expires_at}),
        )
        .await?;
        tx.finish(()).await
    }

    async fn list_invite_codes(&self) -> StoreResult<Vec<InviteCode>> {
        let rows = sqlx::query(
            "SELECT i.code, i.signup_credits, i.comments, i.expires_at, i.created_at, a.name AS created_by \
             FROM invite_codes i JOIN accounts a ON a.id = i.created_by ORDER BY i.created_at DESC, i.code",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(InviteCode {
                    code: col(r, "code")?,
                    signup_credits: col(r, "signup_credits")?,
                    comments: col(r, "comments")?,
                    expires_at: col(r, "expires_at")?,
                    created_at: col(r, "created_at")?,
                    created_by: col(r, "created_by")?,
                })
            })
            .collect()
    }

    async fn delete_invite_code(
        &self,
        ctx: &AuditContext,
        actor: AccountId,
        code: &str,
    ) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        let done = sqlx::query("DELETE FROM invite_codes WHERE code = $1")
            .bind(code)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.event(
            EventKind::InviteCodeDeleted,
            Some(actor),
            "invite_codes",
            serde_json::json!({}),
        )
        .await?;
        tx.finish(()).await
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
        let mut tx = self.write_unaudited().await?;
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
