//! `KeyStore`: API keys (user keys, org keys, member keys), stored by digest only.
//!
//! Design choice: revoking sets `revoked_at` instead of deleting, so the key's
//! record (label, mask, who made it) stays for the audit trail; listings and the
//! policy snapshot leave revoked keys out. The algorithm ACL is a JSON array in a
//! TEXT column, since neither dialect's array type is shared.

use crate::SqlStore;
use crate::accounts::require_live_account;
use crate::db::{AnyQuery, col, db_err, flag};
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::store::Written;
use algohub_core::store::{ChangeKind, KeyStore, StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::any::AnyRow;

macro_rules! key_select {
    () => {
        "SELECT k.id, k.uuid, k.kind, k.owner_id, o.name AS owner_name, k.org_id, g.name AS org_name, k.label, \
         k.key_type, k.mask, k.digest, k.scopes, k.allow_web_algo, k.referer_host, k.algo_acl, k.created_by, \
         k.created_at, k.expires_at, k.last_used_at, k.revoked_at, k.minted_reason FROM api_keys k \
         JOIN accounts o ON o.id = k.owner_id LEFT JOIN accounts g ON g.id = k.org_id"
    };
}

fn key_from_row(r: &AnyRow) -> StoreResult<ApiKey> {
    let acl: String = col(r, "algo_acl")?;
    Ok(ApiKey {
        id: col(r, "id")?,
        uuid: col(r, "uuid")?,
        kind: KeyKind::parse(&col::<String>(r, "kind")?),
        owner_id: col(r, "owner_id")?,
        owner_name: col(r, "owner_name")?,
        org_id: col(r, "org_id")?,
        org_name: col(r, "org_name")?,
        label: col(r, "label")?,
        key_type: col(r, "key_type")?,
        mask: col(r, "mask")?,
        digest: col(r, "digest")?,
        scopes: Scopes(col(r, "scopes")?),
        allow_web_algo: flag(r, "allow_web_algo")?,
        referer_host: col(r, "referer_host")?,
        algo_acl: serde_json::from_str(&acl)
            .map_err(|e| StoreError::Other(format!("bad algo_acl JSON: {e}")))?,
        created_by: col(r, "created_by")?,
        created_at: col(r, "created_at")?,
        expires_at: col(r, "expires_at")?,
        last_used_at: col(r, "last_used_at")?,
        revoked_at: col(r, "revoked_at")?,
        minted_reason: col(r, "minted_reason")?,
    })
}

impl SqlStore {
    async fn keys(&self, q: AnyQuery<'_>) -> StoreResult<Vec<ApiKey>> {
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(key_from_row).collect()
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    /// `NotFound` if the owner (or, for member keys, the org) is not a live account.
    async fn create_key(&self, ctx: &AuditContext, key: &NewKey) -> StoreResult<Written<ApiKey>> {
        if key.kind == KeyKind::Member && key.org_id.is_none() {
            return Err(StoreError::Other(
                "a member key needs an org_id".to_string(),
            ));
        }
        let acl =
            serde_json::to_string(&key.algo_acl).map_err(|e| StoreError::Other(e.to_string()))?;
        let mut tx = self.write(ctx).await?;
        require_live_account(&mut tx, key.owner_id).await?;
        if let Some(org) = key.org_id {
            require_live_account(&mut tx, org).await?;
            if key.kind == KeyKind::Member {
                // Member keys exist only for members; checked under the org lock
                // that `remove_member` also takes, so removal revokes every key.
                tx.lock_account(org).await?;
                sqlx::query("SELECT user_id FROM memberships WHERE org_id = $1 AND user_id = $2")
                    .bind(org)
                    .bind(key.owner_id)
                    .fetch_optional(tx.conn())
                    .await
                    .map_err(db_err)?
                    .ok_or(StoreError::NotFound)?;
            }
        }
        let row = sqlx::query(
            "INSERT INTO api_keys (uuid, kind, owner_id, org_id, label, key_type, mask, digest, scopes, allow_web_algo, \
             referer_host, algo_acl, created_by, created_at, expires_at, minted_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
        )
        .bind(&key.uuid)
        .bind(key.kind.as_str())
        .bind(key.owner_id)
        .bind(key.org_id)
        .bind(&key.label)
        .bind(&key.key_type)
        .bind(&key.mask)
        .bind(&key.digest)
        .bind(key.scopes.0)
        .bind(i64::from(key.allow_web_algo))
        .bind(&key.referer_host)
        .bind(acl)
        .bind(key.created_by)
        .bind(now_millis())
        .bind(key.expires_at)
        .bind(&key.minted_reason)
        .fetch_one(tx.conn())
        .await
        .map_err(db_err)?;
        let id: KeyId = col(&row, "id")?;
        let mut detail = serde_json::json!({ "kind": key.kind.as_str(), "owner_id": key.owner_id, "org_id": key.org_id });
        if let Some(reason) = &key.minted_reason {
            detail["minted_reason"] = reason.clone().into();
            detail["expires_at"] = key.expires_at.into();
        }
        tx.event(
            EventKind::KeyCreated,
            Some(key.created_by),
            &format!("key:{}", key.uuid),
            detail,
        )
        .await?;
        tx.change(ChangeKind::Key, id);
        let created = sqlx::query(concat!(key_select!(), " WHERE k.id = $1"))
            .bind(id)
            .fetch_one(tx.conn())
            .await
            .map_err(db_err)?;
        tx.finish(key_from_row(&created)?).await
    }

    async fn get_key(&self, id: KeyId) -> StoreResult<ApiKey> {
        self.keys(sqlx::query(concat!(key_select!(), " WHERE k.id = $1")).bind(id))
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    async fn get_key_by_uuid(&self, uuid: &str) -> StoreResult<ApiKey> {
        let q = sqlx::query(concat!(key_select!(), " WHERE k.uuid = $1")).bind(uuid.to_string());
        self.keys(q).await?.pop().ok_or(StoreError::NotFound)
    }

    async fn list_keys(&self, owner: AccountId, kind: KeyKind) -> StoreResult<Vec<ApiKey>> {
        self.keys(
            sqlx::query(concat!(
                key_select!(),
                " WHERE k.owner_id = $1 AND k.kind = $2 AND k.revoked_at IS NULL ORDER BY k.created_at, k.id"
            ))
            .bind(owner)
            .bind(kind.as_str()),
        )
        .await
    }

    async fn list_member_keys(&self, org: AccountId) -> StoreResult<Vec<ApiKey>> {
        self.keys(
            sqlx::query(concat!(
                key_select!(),
                " WHERE k.org_id = $1 AND k.kind = 'member' AND k.revoked_at IS NULL ORDER BY k.created_at, k.id"
            ))
            .bind(org),
        )
        .await
    }

    /// Idempotent: revoking a revoked key changes nothing; `NotFound` if no such key.
    async fn revoke_key(
        &self,
        ctx: &AuditContext,
        id: KeyId,
        now: Millis,
    ) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        let row = sqlx::query("SELECT uuid, revoked_at FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        if col::<Option<Millis>>(&row, "revoked_at")?.is_some() {
            return Ok(Written::unchanged(()));
        }
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        let uuid: String = col(&row, "uuid")?;
        tx.event(
            EventKind::KeyRevoked,
            None,
            &format!("key:{uuid}"),
            serde_json::json!({}),
        )
        .await?;
        tx.change(ChangeKind::Key, id);
        tx.finish(()).await
    }

    /// Records use times in one transaction; a time never moves backwards.
    async fn touch_keys(&self, used: &[(KeyId, Millis)]) -> StoreResult<()> {
        if used.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_unaudited().await?;
        for (id, at) in used {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)")
                .bind(*at)
                .bind(*id)
                .execute(tx.conn())
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map(drop)
    }
}
