//! `ElevatedStore`: impersonation sessions and super powers, each change with
//! its audit record (and policy change) in the same transaction.

use crate::SqlStore;
use crate::db::{WriteTx, col, db_err};
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::store::Written;
use algohub_core::store::*;
use async_trait::async_trait;
use sqlx::any::AnyRow;

const COLUMNS: &str = "id, kind, user_id, actor_id, reason, created_at, expires_at, ended_at, \
     end_reason, last_seen_at, source, user_agent";

pub(crate) fn session_kind(r: &AnyRow) -> StoreResult<SessionKind> {
    let kind: String = col(r, "kind")?;
    SessionKind::parse(&kind)
        .ok_or_else(|| StoreError::Other(format!("unknown session kind {kind:?}")))
}

fn session(r: &AnyRow) -> StoreResult<Session> {
    Ok(Session {
        id: col(r, "id")?,
        kind: session_kind(r)?,
        user_id: col(r, "user_id")?,
        actor_id: col(r, "actor_id")?,
        reason: col(r, "reason")?,
        created_at: col(r, "created_at")?,
        expires_at: col(r, "expires_at")?,
        ended_at: col(r, "ended_at")?,
        end_reason: col(r, "end_reason")?,
        last_seen_at: col(r, "last_seen_at")?,
        source: col(r, "source")?,
        user_agent: col(r, "user_agent")?,
    })
}

async fn name_of(tx: &mut WriteTx<'_>, id: AccountId) -> StoreResult<String> {
    let r = sqlx::query("SELECT name FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_one(tx.conn())
        .await
        .map_err(db_err)?;
    col(&r, "name")
}

/// Ends the live sessions matched by `filter` (an SQL condition on `$3`),
/// recording `impersonation.ended` or `session.ended` for each; returns them.
pub(crate) async fn end_sessions_where(
    tx: &mut WriteTx<'_>,
    filter: &str,
    arg: i64,
    now: Millis,
    by: Option<AccountId>,
    why: &str,
) -> StoreResult<Vec<Session>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE sessions SET ended_at = $1, end_reason = $2 WHERE ended_at IS NULL AND {filter} \
         RETURNING {COLUMNS}"
    )))
    .bind(now)
    .bind(why)
    .bind(arg)
    .fetch_all(tx.conn())
    .await
    .map_err(db_err)?;
    let mut ended = rows.iter().map(session).collect::<StoreResult<Vec<_>>>()?;
    ended.sort_by_key(|s| s.id);
    for s in &ended {
        match s.kind {
            SessionKind::Impersonation => {
                tx.event(
                    EventKind::ImpersonationEnded,
                    by.or(Some(s.actor_id)),
                    &format!("user:{}", s.user_id),
                    serde_json::json!({"session": s.id, "reason": why, "real_actor": s.actor_id}),
                )
                .await?
            }
            SessionKind::Browser => {
                tx.event(
                    EventKind::SessionEnded,
                    by.or(Some(s.user_id)),
                    &format!("user:{}", s.user_id),
                    serde_json::json!({"session": s.id, "reason": why}),
                )
                .await?
            }
        }
        tx.change(ChangeKind::Session, s.id);
    }
    Ok(ended)
}

#[async_trait]
impl ElevatedStore for SqlStore {
    async fn create_session(
        &self,
        ctx: &AuditContext,
        new: &NewSession,
    ) -> StoreResult<Written<Session>> {
        let now = now_millis();
        let mut tx = self.write(ctx).await?;
        crate::accounts::require_live(&mut tx, new.user_id, AccountKind::User).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO sessions (digest, kind, user_id, actor_id, reason, created_at, expires_at, \
             last_seen_at, source, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8, $9) RETURNING {COLUMNS}"
        )))
        .bind(&new.digest)
        .bind(new.kind.as_str())
        .bind(new.user_id)
        .bind(new.actor_id)
        .bind(&new.reason)
        .bind(now)
        .bind(new.expires_at)
        .bind(&new.source)
        .bind(&new.user_agent)
        .fetch_one(tx.conn())
        .await
        .map_err(db_err)?;
        let s = session(&row)?;
        if new.kind == SessionKind::Browser {
            tx.event(
                EventKind::SignedIn,
                Some(new.user_id),
                &format!("user:{}", new.user_id),
                serde_json::json!({"session": s.id, "expires_at": format_millis(new.expires_at),
                    "user_agent": new.user_agent}),
            )
            .await?;
            tx.change(ChangeKind::Session, s.id);
            return tx.finish(s).await;
        }
        let admin = name_of(&mut tx, new.actor_id).await?;
        let text = format!(
            "Cluster admin {admin} is acting as your account until {} (reason: {}).",
            format_millis(new.expires_at),
            new.reason
        );
        crate::notifications::insert_notification(
            &mut tx,
            new.user_id,
            "impersonation",
            &text,
            None,
            &serde_json::json!({"session": s.id, "admin": admin, "reason": new.reason,
                "expires_at": format_millis(new.expires_at)}),
            Some(new.actor_id),
            now,
        )
        .await?;
        tx.event(
            EventKind::ImpersonationStarted,
            Some(new.actor_id),
            &format!("user:{}", new.user_id),
            serde_json::json!({"session": s.id, "reason": new.reason,
                "expires_at": format_millis(new.expires_at)}),
        )
        .await?;
        tx.change(ChangeKind::Session, s.id);
        tx.finish(s).await
    }

    async fn touch_sessions(&self, used: &[(SessionId, Millis)]) -> StoreResult<()> {
        if used.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_unaudited().await?;
        for (id, at) in used {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND ended_at IS NULL \
                 AND (last_seen_at IS NULL OR last_seen_at < $1)",
            )
            .bind(*at)
            .bind(*id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map(drop)
    }

    async fn get_session(&self, id: SessionId) -> StoreResult<Session> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM sessions WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
        session(&row)
    }

    async fn end_session(
        &self,
        ctx: &AuditContext,
        id: SessionId,
        by: Option<AccountId>,
        why: &str,
    ) -> StoreResult<Written<Session>> {
        let mut tx = self.write(ctx).await?;
        let mut ended = end_sessions_where(&mut tx, "id = $3", id, now_millis(), by, why).await?;
        let s = ended.pop().ok_or(StoreError::NotFound)?;
        tx.finish(s).await
    }

    async fn expire_sessions(&self, ctx: &AuditContext, now: Millis) -> StoreResult<Written<u64>> {
        let mut tx = self.write(ctx).await?;
        let ended =
            end_sessions_where(&mut tx, "expires_at <= $3", now, now, None, "expired").await?;
        tx.finish(ended.len() as u64).await
    }

    async fn set_super_powers(
        &self,
        ctx: &AuditContext,
        user: AccountId,
        on: Option<&SuperPowers>,
    ) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        crate::accounts::require_live(&mut tx, user, AccountKind::User).await?;
        match on {
            Some(p) => {
                sqlx::query(
                    "UPDATE users SET super_powers_until = $1, super_powers_started_at = $2, \
                     super_powers_reason = $3 WHERE account_id = $4",
                )
                .bind(p.until)
                .bind(p.started_at)
                .bind(&p.reason)
                .bind(user)
                .execute(tx.conn())
                .await
                .map_err(db_err)?;
                tx.event(
                    EventKind::SuperPowersStarted,
                    Some(user),
                    &format!("user:{user}"),
                    serde_json::json!({"reason": p.reason, "until": format_millis(p.until)}),
                )
                .await?;
            }
            None => {
                let done = sqlx::query(
                    "UPDATE users SET super_powers_until = NULL, super_powers_started_at = NULL, \
                     super_powers_reason = NULL WHERE account_id = $1 AND super_powers_until > $2",
                )
                .bind(user)
                .bind(now_millis())
                .execute(tx.conn())
                .await
                .map_err(db_err)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                tx.event(
                    EventKind::SuperPowersEnded,
                    Some(user),
                    &format!("user:{user}"),
                    serde_json::json!({"reason": "stopped"}),
                )
                .await?;
            }
        }
        tx.change(ChangeKind::User, user);
        tx.finish(()).await
    }

    async fn get_super_powers(&self, user: AccountId) -> StoreResult<Option<SuperPowers>> {
        let row = sqlx::query(
            "SELECT super_powers_until, super_powers_started_at, super_powers_reason FROM users \
             WHERE account_id = $1",
        )
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
        let until: Option<Millis> = col(&row, "super_powers_until")?;
        Ok(match until {
            Some(until) if until > now_millis() => Some(SuperPowers {
                until,
                started_at: col::<Option<Millis>>(&row, "super_powers_started_at")?.unwrap_or(0),
                reason: col::<Option<String>>(&row, "super_powers_reason")?.unwrap_or_default(),
            }),
            _ => None,
        })
    }

    async fn expire_super_powers(
        &self,
        ctx: &AuditContext,
        now: Millis,
    ) -> StoreResult<Written<u64>> {
        let mut tx = self.write(ctx).await?;
        let rows = sqlx::query(
            "UPDATE users SET super_powers_until = NULL, super_powers_started_at = NULL, \
             super_powers_reason = NULL WHERE super_powers_until <= $1 RETURNING account_id",
        )
        .bind(now)
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
        let mut users = rows
            .iter()
            .map(|r| col::<i64>(r, "account_id"))
            .collect::<StoreResult<Vec<_>>>()?;
        users.sort_unstable();
        for &u in &users {
            tx.event(
                EventKind::SuperPowersEnded,
                Some(u),
                &format!("user:{u}"),
                serde_json::json!({"reason": "expired"}),
            )
            .await?;
            tx.change(ChangeKind::User, u);
        }
        tx.finish(users.len() as u64).await
    }
}
