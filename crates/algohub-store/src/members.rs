//! Memberships: the member half of `OrgStore` (the trait impl in `orgs.rs` calls
//! these).
//!
//! Design choice: the "an org keeps at least one admin" rule is checked inside the
//! write transaction, after locking the org row on PostgreSQL (SQLite write
//! transactions are already exclusive), so two concurrent demotions cannot both
//! pass the check.

use crate::SqlStore;
use crate::accounts::require_live;
use crate::db::{WriteTx, col, conflict, db_err, org_role, page_limit};
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::roles::OrgRole;
use algohub_core::store::Constraint;
use algohub_core::store::Written;
use algohub_core::store::{ChangeKind, StoreError, StoreResult};
use sqlx::any::AnyRow;

macro_rules! membership_select {
    () => {
        "SELECT m.org_id, o.name AS org_name, m.user_id, u.name AS username, m.role, m.expires_at, m.created_at \
         FROM memberships m JOIN accounts o ON o.id = m.org_id JOIN accounts u ON u.id = m.user_id"
    };
}

pub(crate) fn membership_from_row(r: &AnyRow) -> StoreResult<Membership> {
    Ok(Membership {
        org_id: col(r, "org_id")?,
        org_name: col(r, "org_name")?,
        user_id: col(r, "user_id")?,
        username: col(r, "username")?,
        role: org_role(r, "role")?,
        expires_at: col(r, "expires_at")?,
        created_at: col(r, "created_at")?,
    })
}

/// The membership row inside a write transaction.
pub(crate) async fn membership_in(
    tx: &mut WriteTx<'_>,
    org: AccountId,
    user: AccountId,
) -> StoreResult<Option<Membership>> {
    let row = sqlx::query(concat!(
        membership_select!(),
        " WHERE m.org_id = $1 AND m.user_id = $2"
    ))
    .bind(org)
    .bind(user)
    .fetch_optional(tx.conn())
    .await
    .map_err(db_err)?;
    row.as_ref().map(membership_from_row).transpose()
}

/// How many admins without an expiry the org has besides `user`. An org must
/// always keep one such admin, so that expiry alone can never leave it without one.
pub(crate) async fn other_admins(
    tx: &mut WriteTx<'_>,
    org: AccountId,
    user: AccountId,
) -> StoreResult<i64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM memberships WHERE org_id = $1 AND role = $2 AND user_id <> $3 \
         AND expires_at IS NULL",
    )
    .bind(org)
    .bind(OrgRole::Admin as i64)
    .bind(user)
    .fetch_one(tx.conn())
    .await
    .map_err(db_err)?;
    col(&row, "n")
}

/// Inserts a membership (`Conflict{"membership"}` if there is one) and records the change.
pub(crate) async fn insert_membership(
    tx: &mut WriteTx<'_>,
    org: AccountId,
    user: AccountId,
    role: OrgRole,
    expires_at: Option<Millis>,
) -> StoreResult<()> {
    if tx.max_orgs_per_user > 0 {
        // Lock the user's row so concurrent adds for this user queue here and the
        // count below cannot be outdated by the time this transaction commits.
        tx.lock_account(user).await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM memberships WHERE user_id = $1 AND org_id <> $2",
        )
        .bind(user)
        .bind(org)
        .fetch_one(tx.conn())
        .await
        .map_err(db_err)?;
        let n: i64 = col(&row, "n")?;
        if n >= i64::from(tx.max_orgs_per_user) {
            return Err(StoreError::conflict(Constraint::OrgLimit));
        }
    }
    sqlx::query("INSERT INTO memberships (org_id, user_id, role, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(org)
        .bind(user)
        .bind(role as i64)
        .bind(expires_at)
        .bind(now_millis())
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
    tx.change(ChangeKind::User, user);
    Ok(())
}

/// Deletes a membership with the user's seats in the org's teams and their member
/// keys for the org, recording the policy changes.
pub(crate) async fn remove_membership(
    tx: &mut WriteTx<'_>,
    org: AccountId,
    user: AccountId,
    now: Millis,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org)
        .bind(user)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
    sqlx::query("DELETE FROM team_members WHERE user_id = $1 AND team_id IN (SELECT id FROM teams WHERE org_id = $2)")
        .bind(user)
        .bind(org)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
    let revoked = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE kind = 'member' AND owner_id = $2 AND org_id = $3 \
         AND revoked_at IS NULL RETURNING id",
    )
    .bind(now)
    .bind(user)
    .bind(org)
    .fetch_all(tx.conn())
    .await
    .map_err(db_err)?;
    for r in &revoked {
        tx.change(ChangeKind::Key, col(r, "id")?);
    }
    tx.change(ChangeKind::User, user);
    Ok(())
}

impl SqlStore {
    pub(crate) async fn list_members_page(
        &self,
        org: AccountId,
        page: &Page,
    ) -> StoreResult<Vec<Membership>> {
        let rows = sqlx::query(concat!(
            membership_select!(),
            " WHERE m.org_id = $1 AND u.name > $2 ORDER BY u.name LIMIT $3"
        ))
        .bind(org)
        .bind(page.marker.clone().unwrap_or_default())
        .bind(page_limit(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(membership_from_row).collect()
    }

    pub(crate) async fn membership(
        &self,
        org: AccountId,
        user: AccountId,
    ) -> StoreResult<Option<Membership>> {
        let row = sqlx::query(concat!(
            membership_select!(),
            " WHERE m.org_id = $1 AND m.user_id = $2"
        ))
        .bind(org)
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(membership_from_row).transpose()
    }

    pub(crate) async fn memberships_of_user(
        &self,
        user: AccountId,
    ) -> StoreResult<Vec<Membership>> {
        let rows = sqlx::query(concat!(
            membership_select!(),
            " WHERE m.user_id = $1 AND o.status <> 'deleted' ORDER BY o.name"
        ))
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(membership_from_row).collect()
    }

    pub(crate) async fn insert_member(
        &self,
        ctx: &AuditContext,
        org: AccountId,
        user: AccountId,
        role: OrgRole,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<Membership>> {
        let mut tx = self.write(ctx).await?;
        require_live(&mut tx, org, AccountKind::Org).await?;
        require_live(&mut tx, user, AccountKind::User).await?;
        insert_membership(&mut tx, org, user, role, expires_at).await?;
        tx.event(
            EventKind::MemberAdded,
            None,
            &format!("membership:{org}:{user}"),
            serde_json::json!({ "role": role.as_str() }),
        )
        .await?;
        let m = membership_in(&mut tx, org, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.finish(m).await
    }

    pub(crate) async fn update_member_role(
        &self,
        ctx: &AuditContext,
        org: AccountId,
        user: AccountId,
        role: OrgRole,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<Membership>> {
        let mut tx = self.write(ctx).await?;
        tx.lock_account(org).await?;
        let current = membership_in(&mut tx, org, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        let stays_permanent_admin = role == OrgRole::Admin && expires_at.is_none();
        if current.role == OrgRole::Admin
            && !stays_permanent_admin
            && other_admins(&mut tx, org, user).await? == 0
        {
            return Err(conflict(Constraint::LastAdmin));
        }
        sqlx::query(
            "UPDATE memberships SET role = $1, expires_at = $2 WHERE org_id = $3 AND user_id = $4",
        )
        .bind(role as i64)
        .bind(expires_at)
        .bind(org)
        .bind(user)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        tx.event(
            EventKind::MemberRoleChanged,
            None,
            &format!("membership:{org}:{user}"),
            serde_json::json!({ "from": current.role.as_str(), "to": role.as_str() }),
        )
        .await?;
        tx.change(ChangeKind::User, user);
        let m = membership_in(&mut tx, org, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.finish(m).await
    }

    pub(crate) async fn delete_member(
        &self,
        ctx: &AuditContext,
        org: AccountId,
        user: AccountId,
    ) -> StoreResult<Written<()>> {
        let now = now_millis();
        let mut tx = self.write(ctx).await?;
        tx.lock_account(org).await?;
        let current = membership_in(&mut tx, org, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        if current.role == OrgRole::Admin && other_admins(&mut tx, org, user).await? == 0 {
            return Err(conflict(Constraint::LastAdmin));
        }
        remove_membership(&mut tx, org, user, now).await?;
        tx.event(
            EventKind::MemberRemoved,
            None,
            &format!("membership:{org}:{user}"),
            serde_json::json!({}),
        )
        .await?;
        tx.finish(()).await
    }
}
