//! `AccountStore`: users and the shared account namespace.
//!
//! Design choice: users and orgs share the `accounts` table, whose unique `name`
//! column is the one namespace. Accounts are tombstoned, never deleted, so a name
//! (and a user's email) stays taken forever. Names and emails are lowercased here
//! as well as at the edge, so uniqueness is case-insensitive by construction.

use crate::SqlStore;
use crate::db::{AnyQuery, WriteTx, col, db_err, flag, page_limit};
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::roles::OrgRole;
use algohub_core::store::Constraint;
use algohub_core::store::Written;
use algohub_core::store::{AccountStore, ChangeKind, StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::any::AnyRow;

macro_rules! user_select {
    () => {
        "SELECT a.id, a.uuid, a.name, a.status, a.created_at, a.updated_at, u.email, u.full_name, \
         u.company_name, u.company_role, u.password_hash, u.cluster_admin, u.sudo_user, u.work_limit, \
         u.last_login_at FROM accounts a JOIN users u ON u.account_id = a.id"
    };
}

macro_rules! account_select {
    () => {
        "SELECT id, uuid, name, kind, status FROM accounts"
    };
}

fn user_from_row(r: &AnyRow) -> StoreResult<User> {
    Ok(User {
        id: col(r, "id")?,
        uuid: col(r, "uuid")?,
        username: col(r, "name")?,
        email: col(r, "email")?,
        full_name: col(r, "full_name")?,
        company_name: col(r, "company_name")?,
        company_role: col(r, "company_role")?,
        password_hash: col(r, "password_hash")?,
        cluster_admin: flag(r, "cluster_admin")?,
        sudo_user: flag(r, "sudo_user")?,
        work_limit: col(r, "work_limit")?,
        status: AccountStatus::parse(&col::<String>(r, "status")?),
        created_at: col(r, "created_at")?,
        updated_at: col(r, "updated_at")?,
        last_login_at: col(r, "last_login_at")?,
    })
}

fn account_from_row(r: &AnyRow) -> StoreResult<AccountRef> {
    let kind: String = col(r, "kind")?;
    Ok(AccountRef {
        id: col(r, "id")?,
        uuid: col(r, "uuid")?,
        name: col(r, "name")?,
        kind: if kind == "org" {
            AccountKind::Org
        } else {
            AccountKind::User
        },
        status: AccountStatus::parse(&col::<String>(r, "status")?),
    })
}

/// Inserts the `accounts` row of a new user or org and returns its id.
pub(crate) async fn insert_account(
    tx: &mut WriteTx<'_>,
    kind: AccountKind,
    name: &str,
    now: Millis,
) -> StoreResult<i64> {
    let kind = match kind {
        AccountKind::User => "user",
        AccountKind::Org => "org",
    };
    let row = sqlx::query(
        "INSERT INTO accounts (uuid, kind, name, status, created_at, updated_at) \
         VALUES ($1, $2, $3, 'active', $4, $4) RETURNING id",
    )
    .bind(crate::db::new_uuid())
    .bind(kind)
    .bind(name.to_lowercase())
    .bind(now)
    .fetch_one(tx.conn())
    .await
    .map_err(db_err)?;
    col(&row, "id")
}

/// Fails with `NotFound` unless `id` is a live (not deleted) account of this kind.
pub(crate) async fn require_live(
    tx: &mut WriteTx<'_>,
    id: AccountId,
    kind: AccountKind,
) -> StoreResult<()> {
    let kind = match kind {
        AccountKind::User => "user",
        AccountKind::Org => "org",
    };
    sqlx::query("SELECT id FROM accounts WHERE id = $1 AND kind = $2 AND status <> 'deleted'")
        .bind(id)
        .bind(kind)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?
        .map(|_| ())
        .ok_or(StoreError::NotFound)
}

/// Fails with `NotFound` unless `id` is a live account of either kind.
pub(crate) async fn require_live_account(tx: &mut WriteTx<'_>, id: AccountId) -> StoreResult<()> {
    sqlx::query("SELECT id FROM accounts WHERE id = $1 AND status <> 'deleted'")
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?
        .map(|_| ())
        .ok_or(StoreError::NotFound)
}

/// Marks the user's unrevoked keys (or the org's) revoked and records a change per key.
pub(crate) async fn revoke_keys_where(
    tx: &mut WriteTx<'_>,
    sql: &'static str,
    now: Millis,
    account: AccountId,
) -> StoreResult<()> {
    let rows = sqlx::query(sql)
        .bind(now)
        .bind(account)
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
    for r in rows {
        tx.change(ChangeKind::Key, col(&r, "id")?);
    }
    Ok(())
}

impl SqlStore {
    async fn one_user(&self, q: AnyQuery<'_>) -> StoreResult<User> {
        let row = q.fetch_optional(&self.pool).await.map_err(db_err)?;
        user_from_row(&row.ok_or(StoreError::NotFound)?)
    }

    async fn one_account(&self, q: AnyQuery<'_>) -> StoreResult<AccountRef> {
        let row = q.fetch_optional(&self.pool).await.map_err(db_err)?;
        account_from_row(&row.ok_or(StoreError::NotFound)?)
    }
}

#[async_trait]
impl AccountStore for SqlStore {
    async fn create_user(&self, ctx: &AuditContext, user: &NewUser) -> StoreResult<Written<User>> {
        let now = now_millis();
        let mut tx = self.write(ctx).await?;
        let id = insert_account(&mut tx, AccountKind::User, &user.username, now).await?;
        sqlx::query(
            "INSERT INTO users (account_id, email, full_name, company_name, company_role, password_hash, \
             cluster_admin, sudo_user) VALUES ($1, $2, $3, $4, $5, $6, $7, 0)",
        )
        .bind(id)
        .bind(user.email.to_lowercase())
        .bind(&user.full_name)
        .bind(&user.company_name)
        .bind(&user.company_role)
        .bind(&user.password_hash)
        .bind(i64::from(user.cluster_admin))
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        tx.event(
            EventKind::UserCreated,
            None,
            &format!("user:{id}"),
            serde_json::json!({ "name": user.username.to_lowercase() }),
        )
        .await?;
        tx.change(ChangeKind::User, id);
        let changes = tx.commit().await?;
        Ok(Written::new(self.get_user(id).await?, changes))
    }

    async fn get_user(&self, id: AccountId) -> StoreResult<User> {
        self.one_user(sqlx::query(concat!(user_select!(), " WHERE a.id = $1")).bind(id))
            .await
    }

    async fn get_user_by_name(&self, name: &str) -> StoreResult<User> {
        self.one_user(
            sqlx::query(concat!(user_select!(), " WHERE a.name = $1")).bind(name.to_lowercase()),
        )
        .await
    }

    async fn get_user_by_uuid(&self, uuid: &str) -> StoreResult<User> {
        self.one_user(
            sqlx::query(concat!(user_select!(), " WHERE a.uuid = $1")).bind(uuid.to_string()),
        )
        .await
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let q = sqlx::query(concat!(
            user_select!(),
            " WHERE u.email = $1 AND a.status <> 'deleted'"
        ));
        match self.one_user(q.bind(email.to_lowercase())).await {
            Ok(u) => Ok(Some(u)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list_users(&self, page: &Page) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(concat!(
            user_select!(),
            " WHERE a.status <> 'deleted' AND a.name > $1 ORDER BY a.name LIMIT $2"
        ))
        .bind(page.marker.clone().unwrap_or_default())
        .bind(page_limit(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn update_user(
        &self,
        ctx: &AuditContext,
        id: AccountId,
        update: &UserUpdate,
    ) -> StoreResult<Written<User>> {
        let mut tx = self.write(ctx).await?;
        let touched = sqlx::query(
            "UPDATE accounts SET updated_at = $1 WHERE id = $2 AND kind = 'user' AND status <> 'deleted'",
        )
        .bind(now_millis())
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        if touched.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let before = crate::changes::user_fields(&mut tx, id).await?;
        sqlx::query(
            "UPDATE users SET email = COALESCE($1, email), full_name = COALESCE($2, full_name), \
             company_name = COALESCE($3, company_name), company_role = COALESCE($4, company_role) \
             WHERE account_id = $5",
        )
        .bind(update.email.as_ref().map(|e| e.to_lowercase()))
        .bind(&update.full_name)
        .bind(&update.company_name)
        .bind(&update.company_role)
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        let after = crate::changes::user_fields(&mut tx, id).await?;
        tx.event(
            EventKind::UserUpdated,
            None,
            &id.to_string(),
            crate::changes::diff(&before, &after),
        )
        .await?;
        let changes = tx.commit().await?;
        Ok(Written::new(self.get_user(id).await?, changes))
    }

    async fn search_users(&self, prefix: &str, page: &Page) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(concat!(
            user_select!(),
            " WHERE a.status <> 'deleted' AND a.name > $1 \
             AND (substr(a.name, 1, CAST($2 AS INTEGER)) = $3 OR substr(u.email, 1, CAST($2 AS INTEGER)) = $3) \
             ORDER BY a.name LIMIT $4"
        ))
        .bind(page.marker.clone().unwrap_or_default())
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(page_limit(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn set_account_status(
        &self,
        ctx: &AuditContext,
        actor: AccountId,
        id: AccountId,
        status: AccountStatus,
    ) -> StoreResult<Written<()>> {
        if status == AccountStatus::Deleted {
            return Err(StoreError::Other("use delete_user or delete_org".into()));
        }
        let mut tx = self.write(ctx).await?;
        let row =
            sqlx::query("SELECT kind, status FROM accounts WHERE id = $1 AND status <> 'deleted'")
                .bind(id)
                .fetch_optional(tx.conn())
                .await
                .map_err(db_err)?
                .ok_or(StoreError::NotFound)?;
        let kind: String = col(&row, "kind")?;
        let before: String = col(&row, "status")?;
        if kind == "user" && status == AccountStatus::Suspended {
            tx.lock_cluster_admins().await?;
            tx.require_other_cluster_admin(id).await?;
        }
        sqlx::query("UPDATE accounts SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now_millis())
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        tx.event(
            EventKind::AccountStatusSet,
            Some(actor),
            &id.to_string(),
            serde_json::json!({"from": before, "to": status.as_str()}),
        )
        .await?;
        if kind == "user" && status == AccountStatus::Suspended {
            // Impersonation sessions of or by a suspended user end for good.
            crate::elevated::end_sessions_where(
                &mut tx,
                "(user_id = $3 OR actor_id = $3)",
                id,
                now_millis(),
                Some(actor),
                "revoked",
            )
            .await?;
        }
        let change = if kind == "org" {
            ChangeKind::Org
        } else {
            ChangeKind::User
        };
        tx.change(change, id);
        tx.finish(()).await
    }

    async fn set_user_flags(
        &self,
        ctx: &AuditContext,
        actor: Option<AccountId>,
        id: AccountId,
        cluster_admin: Option<bool>,
        sudo_user: Option<bool>,
    ) -> StoreResult<Written<User>> {
        let mut tx = self.write(ctx).await?;
        require_live(&mut tx, id, AccountKind::User).await?;
        if cluster_admin == Some(false) {
            tx.lock_cluster_admins().await?;
            tx.require_other_cluster_admin(id).await?;
            // A former admin's impersonation sessions end for good (their
            // own browser sessions go on).
            crate::elevated::end_sessions_where(
                &mut tx,
                "actor_id = $3 AND kind = 'impersonation'",
                id,
                now_millis(),
                actor,
                "revoked",
            )
            .await?;
        }
        tx.event(
            EventKind::UserRolesSet,
            actor,
            &id.to_string(),
            serde_json::json!({"cluster_admin": cluster_admin, "sudo_user": sudo_user}),
        )
        .await?;
        sqlx::query(
            "UPDATE users SET cluster_admin = COALESCE($1, cluster_admin), sudo_user = COALESCE($2, sudo_user) \
             WHERE account_id = $3",
        )
        .bind(cluster_admin.map(i64::from))
        .bind(sudo_user.map(i64::from))
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        sqlx::query("UPDATE accounts SET updated_at = $1 WHERE id = $2")
            .bind(now_millis())
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        tx.change(ChangeKind::User, id);
        let changes = tx.commit().await?;
        Ok(Written::new(self.get_user(id).await?, changes))
    }

    async fn delete_user(
        &self,
        ctx: &AuditContext,
        id: AccountId,
        actor: AccountId,
    ) -> StoreResult<Written<DeletionReceipt>> {
        let now = now_millis();
        let mut tx = self.write(ctx).await?;
        require_live(&mut tx, id, AccountKind::User).await?;
        let admin = OrgRole::Admin as i64;
        // Lock the orgs this user administers, then look for one they are the only admin of.
        let admin_of = sqlx::query(
            "SELECT org_id FROM memberships WHERE user_id = $1 AND role = $2 ORDER BY org_id",
        )
        .bind(id)
        .bind(admin)
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
        for r in &admin_of {
            tx.lock_account(col(r, "org_id")?).await?;
        }
        let sole = sqlx::query(
            "SELECT a.name FROM memberships m JOIN accounts a ON a.id = m.org_id \
             WHERE m.user_id = $1 AND m.role = $2 AND a.status <> 'deleted' AND NOT EXISTS \
             (SELECT 1 FROM memberships o WHERE o.org_id = m.org_id AND o.role = $2 AND o.user_id <> $1) \
             ORDER BY a.name LIMIT 1",
        )
        .bind(id)
        .bind(admin)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?;
        if let Some(r) = sole {
            let org: String = col(&r, "name")?;
            return Err(StoreError::conflict(Constraint::LastAdminOf { org }));
        }
        tx.lock_cluster_admins().await?;
        tx.require_other_cluster_admin(id).await?;
        let email: String = col(
            &sqlx::query("SELECT email FROM users WHERE account_id = $1")
                .bind(id)
                .fetch_one(tx.conn())
                .await
                .map_err(db_err)?,
            "email",
        )?;
        // The receipt: everything about to be revoked, read in this transaction.
        let mut receipt = DeletionReceipt {
            username: col(
                &sqlx::query("SELECT name FROM accounts WHERE id = $1")
                    .bind(id)
                    .fetch_one(tx.conn())
                    .await
                    .map_err(db_err)?,
                "name",
            )?,
            ..Default::default()
        };
        for (sql, out) in [
            (
                "SELECT uuid || ' (' || label || ')' AS item FROM api_keys WHERE owner_id = $1 \
                 AND kind IN ('user', 'member') AND revoked_at IS NULL AND $2 = $2 ORDER BY id",
                &mut receipt.keys,
            ),
            (
                "SELECT a.name AS item FROM memberships m JOIN accounts a ON a.id = m.org_id \
                 WHERE m.user_id = $1 AND $2 = $2 ORDER BY a.name",
                &mut receipt.memberships,
            ),
            (
                "SELECT o.name || '/' || t.name AS item FROM team_members s JOIN teams t ON t.id = s.team_id \
                 JOIN accounts o ON o.id = t.org_id WHERE s.user_id = $1 AND $2 = $2 ORDER BY 1",
                &mut receipt.team_seats,
            ),
            (
                "SELECT id AS item FROM invitations WHERE status = 'pending' \
                 AND (invitee_user_id = $1 OR invitee_email = $2) ORDER BY id",
                &mut receipt.invitations,
            ),
        ] {
            let rows = sqlx::query(sql)
                .bind(id)
                .bind(&email)
                .fetch_all(tx.conn())
                .await
                .map_err(db_err)?;
            for r in &rows {
                out.push(col(r, "item")?);
            }
        }
        sqlx::query("UPDATE accounts SET status = 'deleted', deleted_at = $1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        // The hash is useless to a tombstone and only a liability.
        sqlx::query("UPDATE users SET password_hash = NULL WHERE account_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        for sql in [
            "DELETE FROM memberships WHERE user_id = $1",
            "DELETE FROM team_members WHERE user_id = $1",
            "DELETE FROM app_pins WHERE user_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(tx.conn())
                .await
                .map_err(db_err)?;
        }
        revoke_keys_where(
            &mut tx,
            "UPDATE api_keys SET revoked_at = $1 WHERE owner_id = $2 AND kind IN ('user', 'member') \
             AND revoked_at IS NULL RETURNING id",
            now,
            id,
        )
        .await?;
        let ended = crate::elevated::end_sessions_where(
            &mut tx,
            "(user_id = $3 OR actor_id = $3)",
            id,
            now,
            Some(actor),
            "revoked",
        )
        .await?;
        receipt.sessions = ended.iter().map(|s| s.id.to_string()).collect();
        sqlx::query(
            "UPDATE invitations SET status = 'rescinded', decided_at = $1 \
             WHERE status = 'pending' AND (invitee_user_id = $2 OR invitee_email = $3)",
        )
        .bind(now)
        .bind(id)
        .bind(&email)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        tx.event(
            EventKind::UserDeleted,
            Some(actor),
            &format!("user:{id}"),
            serde_json::json!(receipt),
        )
        .await?;
        tx.change(ChangeKind::User, id);
        tx.finish(receipt).await
    }

    async fn get_account_by_name(&self, name: &str) -> StoreResult<AccountRef> {
        self.one_account(
            sqlx::query(concat!(account_select!(), " WHERE name = $1")).bind(name.to_lowercase()),
        )
        .await
    }

    async fn get_account(&self, id: AccountId) -> StoreResult<AccountRef> {
        self.one_account(sqlx::query(concat!(account_select!(), " WHERE id = $1")).bind(id))
            .await
    }

    async fn export_users(
        &self,
        render: algohub_core::store::MakeExportRender,
        sink: algohub_core::store::ExportSink,
    ) -> StoreResult<u64> {
        self.export_users_impl(render, sink).await
    }

    async fn count_users(&self) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM accounts WHERE kind = 'user' AND status <> 'deleted'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        col(&row, "n")
    }
}
