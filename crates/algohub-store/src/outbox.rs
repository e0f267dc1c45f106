//! `OutboxStore`: messages waiting for delivery, and the domain event log.
//!
//! Design choice: both are plain append-only tables written inside the business
//! transaction that caused them (see `db::WriteTx::event` and
//! `invitations::insert_outbox`), so a message or event exists exactly when its
//! change committed. Payloads and details are JSON in TEXT columns.

use crate::SqlStore;
use crate::db::{WriteTx, col, db_err, json, page_limit};
use algohub_core::audit::{AuditContext, EventKind};
use algohub_core::audit::{AuditQuery, AuditRecord};
use algohub_core::model::*;
use algohub_core::store::{OutboxStore, StoreError, StoreResult};
use async_trait::async_trait;

/// Marks a message done (delivered, or no longer to be sent) with its payload.
async fn set_done(
    tx: &mut WriteTx<'_>,
    id: i64,
    payload: &serde_json::Value,
    now: Millis,
) -> StoreResult<()> {
    sqlx::query("UPDATE outbox SET delivered_at = $1, payload = $2 WHERE id = $3")
        .bind(now)
        .bind(payload.to_string())
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Withdraws the unsent emails of invitations that can no longer be accepted
/// (accepted, declined, rescinded or expired): their token leaves the outbox
/// and they are marked done with `"withdrawn": true`, never to be sent. So an
/// invitation's secret waits in the database only while it can be used, also
/// when no mail server is configured and nothing is ever sent. Runs in the
/// transaction that closes invitations.
pub(crate) async fn withdraw_closed_invitation_emails(
    tx: &mut WriteTx<'_>,
    now: Millis,
) -> StoreResult<()> {
    let rows = sqlx::query(
        "SELECT id, payload FROM outbox WHERE kind = 'email.invitation_token' AND delivered_at IS NULL",
    )
    .fetch_all(tx.conn())
    .await
    .map_err(db_err)?;
    for row in rows {
        let id: i64 = col(&row, "id")?;
        let mut payload: serde_json::Value = json(&row, "payload")?;
        let invitation = payload
            .get("invitation_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let usable = sqlx::query(
            "SELECT 1 FROM invitations WHERE id = $1 AND status = 'pending' AND expires_at > $2",
        )
        .bind(&invitation)
        .bind(now)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?;
        if usable.is_some() {
            continue;
        }
        if let Some(obj) = payload.as_object_mut() {
            obj.remove("token");
            obj.insert("withdrawn".into(), serde_json::Value::Bool(true));
        }
        set_done(tx, id, &payload, now).await?;
    }
    Ok(())
}

fn outbox_row(r: &sqlx::any::AnyRow) -> StoreResult<OutboxMessage> {
    Ok(OutboxMessage {
        id: col(r, "id")?,
        kind: col(r, "kind")?,
        recipient_user_id: col(r, "recipient_user_id")?,
        recipient_email: col(r, "recipient_email")?,
        payload: json(r, "payload")?,
        created_at: col(r, "created_at")?,
        delivered_at: col(r, "delivered_at")?,
    })
}

#[async_trait]
impl OutboxStore for SqlStore {
    async fn enqueue(&self, messages: &[NewOutboxMessage]) -> StoreResult<()> {
        let mut tx = self.write_unaudited().await?;
        crate::invitations::insert_outbox(&mut tx, messages, now_millis()).await?;
        tx.commit().await.map(drop)
    }

    /// Oldest first, so delivery follows creation order.
    async fn list_outbox(
        &self,
        undelivered_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let rows = sqlx::query(
            "SELECT id, kind, recipient_user_id, recipient_email, payload, created_at, delivered_at FROM outbox \
             WHERE $1 = 0 OR delivered_at IS NULL ORDER BY id LIMIT $2",
        )
        .bind(i64::from(undelivered_only))
        .bind(page_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(outbox_row).collect()
    }

    async fn claim_outbox(
        &self,
        prefix: &str,
        now: Millis,
        until: Millis,
        limit: i64,
    ) -> StoreResult<Vec<OutboxMessage>> {
        // Placeholders first appear in order ($1, $2, ...), as SQLite numbers them.
        let free = "delivered_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2) \
                    AND substr(kind, 1, CAST($3 AS INTEGER)) = $4";
        let mut tx = self.write_unaudited().await?;
        // The condition is repeated outside the subquery: on PostgreSQL a
        // row another node claimed meanwhile is re-checked and skipped.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox SET claimed_until = $1 WHERE {free} AND id IN \
             (SELECT id FROM outbox WHERE {free} ORDER BY id LIMIT $5) \
             RETURNING id, kind, recipient_user_id, recipient_email, payload, created_at, delivered_at"
        )))
        .bind(until)
        .bind(now)
        .bind(prefix.len() as i64)
        .bind(prefix)
        .bind(page_limit(limit))
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
        tx.commit().await?;
        let mut out = rows
            .iter()
            .map(outbox_row)
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    async fn mark_delivered(&self, id: i64, now: Millis) -> StoreResult<()> {
        let mut tx = self.write_unaudited().await?;
        let row = sqlx::query("SELECT payload FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        // A delivered message keeps no secret: an invitation token lives in the
        // outbox only until its email has gone out.
        let mut payload: serde_json::Value = json(&row, "payload")?;
        if let Some(obj) = payload.as_object_mut() {
            obj.remove("token");
        }
        set_done(&mut tx, id, &payload, now).await?;
        tx.commit().await.map(drop)
    }

    /// Newest first.
    async fn record_audit(
        &self,
        ctx: &AuditContext,
        action: EventKind,
        actor: Option<AccountId>,
        target: &str,
        detail: serde_json::Value,
        outcome: &'static str,
    ) -> StoreResult<()> {
        let mut tx = self.write(ctx).await?;
        tx.audit(action, actor, target, detail, outcome);
        tx.commit().await.map(drop)
    }

    async fn list_audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, kind, actor_id, subject, detail, at, effective_id, outcome, request_id, auth_method, \
             token_sha256, source, prev_hash, hash FROM events \
             WHERE id > $1 AND ($2 IS NULL OR actor_id = $2) AND ($3 IS NULL OR subject = $3) \
             AND ($4 IS NULL OR kind = $4) AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at < $6) \
             ORDER BY id LIMIT $7",
        )
        .bind(q.after_id)
        .bind(q.actor_id)
        .bind(q.target.as_deref())
        .bind(q.action.as_deref())
        .bind(q.from)
        .bind(q.to)
        .bind(page_limit(q.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: col(r, "id")?,
                    at: col(r, "at")?,
                    action: col(r, "kind")?,
                    actor_id: col(r, "actor_id")?,
                    effective_id: col(r, "effective_id")?,
                    target: col(r, "subject")?,
                    detail: json(r, "detail")?,
                    outcome: col(r, "outcome")?,
                    request_id: col(r, "request_id")?,
                    auth_method: col(r, "auth_method")?,
                    token_sha256: col(r, "token_sha256")?,
                    source: col(r, "source")?,
                    prev_hash: col(r, "prev_hash")?,
                    hash: col(r, "hash")?,
                })
            })
            .collect()
    }

    async fn list_events(&self, kind: Option<&str>, limit: i64) -> StoreResult<Vec<Event>> {
        let rows = sqlx::query(
            "SELECT id, kind, actor_id, subject, detail, at FROM events WHERE $1 IS NULL OR kind = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(kind.map(str::to_string))
        .bind(page_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(Event {
                    id: col(r, "id")?,
                    kind: col(r, "kind")?,
                    actor_id: col(r, "actor_id")?,
                    subject: col(r, "subject")?,
                    detail: json(r, "detail")?,
                    at: col(r, "at")?,
                })
            })
            .collect()
    }
}
