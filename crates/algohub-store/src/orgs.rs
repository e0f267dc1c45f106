//! `OrgStore`: organization types, organizations and (via `members.rs`) their
//! memberships.
//!
//! Design choice: an org is an `accounts` row (the shared namespace) plus an `orgs`
//! row; deleting one tombstones the account and removes everything hanging off it
//! (memberships, teams, pending invitations, keys) in the same transaction, with a
//! policy change for the org, each team and each affected user.

use crate::SqlStore;
use crate::accounts::{insert_account, require_live, revoke_keys_where};
use crate::db::{AnyQuery, col, conflict, db_err, flag, new_uuid, page_limit};
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::roles::OrgRole;
use algohub_core::store::Constraint;
use algohub_core::store::Written;
use algohub_core::store::{ChangeKind, OrgStore, StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::any::AnyRow;

macro_rules! org_select {
    () => {
        "SELECT a.id, a.uuid, a.name, a.status, a.created_at, a.updated_at, o.label, o.contact_name, o.email, \
         o.url, o.type_id, o.tos_version, o.require_approval, o.allow_self_approval, o.consolidated_billing \
         FROM accounts a JOIN orgs o ON o.account_id = a.id"
    };
}

fn org_from_row(r: &AnyRow) -> StoreResult<Org> {
    Ok(Org {
        id: col(r, "id")?,
        uuid: col(r, "uuid")?,
        name: col(r, "name")?,
        label: col(r, "label")?,
        contact_name: col(r, "contact_name")?,
        email: col(r, "email")?,
        url: col(r, "url")?,
        type_id: col(r, "type_id")?,
        tos_version: col(r, "tos_version")?,
        require_approval: flag(r, "require_approval")?,
        allow_self_approval: flag(r, "allow_self_approval")?,
        consolidated_billing: flag(r, "consolidated_billing")?,
        status: AccountStatus::parse(&col::<String>(r, "status")?),
        created_at: col(r, "created_at")?,
        updated_at: col(r, "updated_at")?,
    })
}

impl SqlStore {
    async fn one_org(&self, q: AnyQuery<'_>) -> StoreResult<Org> {
        let row = q.fetch_optional(&self.pool).await.map_err(db_err)?;
        org_from_row(&row.ok_or(StoreError::NotFound)?)
    }
}

async fn require_org_type(tx: &mut crate::db::WriteTx<'_>, type_id: &str) -> StoreResult<()> {
    sqlx::query("SELECT id FROM org_types WHERE id = $1")
        .bind(type_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?
        .map(|_| ())
        .ok_or(StoreError::NotFound)
}

#[async_trait]
impl OrgStore for SqlStore {
    async fn list_org_types(&self) -> StoreResult<Vec<OrgType>> {
        let rows = sqlx::query("SELECT id, name FROM org_types ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(OrgType {
                    id: col(r, "id")?,
                    name: col(r, "name")?,
                })
            })
            .collect()
    }

    async fn create_org_type(
        &self,
        ctx: &AuditContext,
        name: &str,
    ) -> StoreResult<Written<OrgType>> {
        let ty = OrgType {
            id: new_uuid(),
            name: name.to_lowercase(),
        };
        let mut tx = self.write(ctx).await?;
        sqlx::query("INSERT INTO org_types (id, name) VALUES ($1, $2)")
            .bind(&ty.id)
            .bind(&ty.name)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        let detail = serde_json::json!({"id": ty.id, "name": ty.name});
        tx.event(
            EventKind::OrgTypeCreated,
            None,
            &format!("org_type:{}", ty.name),
            detail,
        )
        .await?;
        tx.finish(ty).await
    }

    /// Refused with `Conflict{"org_type_in_use"}` while any org row (tombstones
    /// included, they keep their type) refers to it.
    async fn delete_org_type(&self, ctx: &AuditContext, name: &str) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        let row = sqlx::query("SELECT id FROM org_types WHERE name = $1")
            .bind(name.to_lowercase())
            .fetch_optional(tx.conn())
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        let id: String = col(&row, "id")?;
        let used = sqlx::query("SELECT account_id FROM orgs WHERE type_id = $1 LIMIT 1")
            .bind(&id)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_err)?;
        if used.is_some() {
            return Err(conflict(Constraint::OrgTypeInUse));
        }
        sqlx::query("DELETE FROM org_types WHERE id = $1")
            .bind(&id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        let target = format!("org_type:{}", name.to_lowercase());
        tx.event(
            EventKind::OrgTypeDeleted,
            None,
            &target,
            serde_json::json!({"id": id}),
        )
        .await?;
        tx.finish(()).await
    }

    async fn create_org(
        &self,
        ctx: &AuditContext,
        org: &NewOrg,
        creator: AccountId,
    ) -> StoreResult<Written<Org>> {
        let now = now_millis();
        let mut tx = self.write(ctx).await?;
        require_live(&mut tx, creator, AccountKind::User).await?;
        require_org_type(&mut tx, &org.type_id).await?;
        let id = insert_account(&mut tx, AccountKind::Org, &org.name, now).await?;
        sqlx::query(
            "INSERT INTO orgs (account_id, label, contact_name, email, url, type_id) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(&org.label)
        .bind(&org.contact_name)
        .bind(&org.email)
        .bind(&org.url)
        .bind(&org.type_id)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        crate::members::insert_membership(&mut tx, id, creator, OrgRole::Admin, None).await?;
        tx.event(
            EventKind::OrgCreated,
            Some(creator),
            &format!("org:{id}"),
            serde_json::json!({ "name": org.name.to_lowercase() }),
        )
        .await?;
        tx.change(ChangeKind::Org, id);
        tx.change(ChangeKind::User, creator);
        let changes = tx.commit().await?;
        Ok(Written::new(self.get_org(id).await?, changes))
    }

    async fn get_org(&self, id: AccountId) -> StoreResult<Org> {
        self.one_org(sqlx::query(concat!(org_select!(), " WHERE a.id = $1")).bind(id))
            .await
    }

    async fn get_org_by_name(&self, name: &str) -> StoreResult<Org> {
        self.one_org(
            sqlx::query(concat!(org_select!(), " WHERE a.name = $1")).bind(name.to_lowercase()),
        )
        .await
    }

    async fn list_orgs(&self, page: &Page) -> StoreResult<Vec<Org>> {
        let rows = sqlx::query(concat!(
            org_select!(),
            " WHERE a.status <> 'deleted' AND a.name > $1 ORDER BY a.name LIMIT $2"
        ))
        .bind(page.marker.clone().unwrap_or_default())
        .bind(page_limit(page.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(org_from_row).collect()
    }

    async fn update_org(
        &self,
        ctx: &AuditContext,
        id: AccountId,
        update: &OrgUpdate,
    ) -> StoreResult<Written<Org>> {
        let mut tx = self.write(ctx).await?;
        require_live(&mut tx, id, AccountKind::Org).await?;
        if let Some(type_id) = &update.type_id {
            require_org_type(&mut tx, type_id).await?;
        }
        let before = crate::changes::org_fields(&mut tx, id).await?;
        sqlx::query(
            "UPDATE orgs SET label = COALESCE($1, label), contact_name = COALESCE($2, contact_name), \
             email = COALESCE($3, email), url = CASE WHEN $4 = 1 THEN $5 ELSE url END, \
             type_id = COALESCE($6, type_id), require_approval = COALESCE($7, require_approval), \
             allow_self_approval = COALESCE($8, allow_self_approval), \
             consolidated_billing = COALESCE($9, consolidated_billing) WHERE account_id = $10",
        )
        .bind(&update.label)
        .bind(&update.contact_name)
        .bind(&update.email)
        .bind(i64::from(update.url.is_some()))
        .bind(update.url.clone().flatten())
        .bind(&update.type_id)
        .bind(update.require_approval.map(i64::from))
        .bind(update.allow_self_approval.map(i64::from))
        .bind(update.consolidated_billing.map(i64::from))
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
        if update.consolidated_billing.is_some() {
            // Who pays for calls changes: every node drops its cached settings.
            tx.change(ChangeKind::Org, id);
        }
        let after = crate::changes::org_fields(&mut tx, id).await?;
        tx.event(
            EventKind::OrgUpdated,
            None,
            &format!("org:{id}"),
            crate::changes::diff(&before, &after),
        )
        .await?;
        let changes = tx.commit().await?;
        Ok(Written::new(self.get_org(id).await?, changes))
    }

    async fn delete_org(
        &self,
        ctx: &AuditContext,
        id: AccountId,
        actor: AccountId,
    ) -> StoreResult<Written<()>> {
        let now = now_millis();
        let mut tx = self.write(ctx).await?;
        tx.lock_account(id).await?;
        require_live(&mut tx, id, AccountKind::Org).await?;
        // Everyone whose view changes: members, and seat holders of the org's teams.
        let users = sqlx::query(
            "SELECT user_id FROM memberships WHERE org_id = $1 UNION \
             SELECT s.user_id FROM team_members s JOIN teams t ON t.id = s.team_id WHERE t.org_id = $1",
        )
        .bind(id)
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
        for r in &users {
            tx.change(ChangeKind::User, col(r, "user_id")?);
        }
        let teams = sqlx::query("SELECT id FROM teams WHERE org_id = $1")
            .bind(id)
            .fetch_all(tx.conn())
            .await
            .map_err(db_err)?;
        for r in &teams {
            tx.change(ChangeKind::Team, col(r, "id")?);
        }
        for sql in [
            "DELETE FROM team_members WHERE team_id IN (SELECT id FROM teams WHERE org_id = $1)",
            "DELETE FROM team_apps WHERE team_id IN (SELECT id FROM teams WHERE org_id = $1)",
            "DELETE FROM teams WHERE org_id = $1",
            "DELETE FROM memberships WHERE org_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(tx.conn())
                .await
                .map_err(db_err)?;
        }
        sqlx::query("UPDATE invitations SET status = 'rescinded', decided_at = $1 WHERE org_id = $2 AND status = 'pending'")
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        revoke_keys_where(
            &mut tx,
            "UPDATE api_keys SET revoked_at = $1 WHERE revoked_at IS NULL AND \
             ((kind = 'org' AND owner_id = $2) OR (kind = 'member' AND org_id = $2)) RETURNING id",
            now,
            id,
        )
        .await?;
        sqlx::query("UPDATE accounts SET status = 'deleted', deleted_at = $1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        tx.event(
            EventKind::OrgDeleted,
            Some(actor),
            &format!("org:{id}"),
            serde_json::json!({}),
        )
        .await?;
        tx.change(ChangeKind::Org, id);
        tx.finish(()).await
    }

    async fn list_members(&self, org: AccountId, page: &Page) -> StoreResult<Vec<Membership>> {
        self.list_members_page(org, page).await
    }

    async fn get_membership(
        &self,
        org: AccountId,
        user: AccountId,
    ) -> StoreResult<Option<Membership>> {
        self.membership(org, user).await
    }

    async fn list_user_memberships(&self, user: AccountId) -> StoreResult<Vec<Membership>> {
        self.memberships_of_user(user).await
    }

    async fn add_member(
        &self,
        ctx: &AuditContext,
        org: AccountId,
        user: AccountId,
        role: OrgRole,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<Membership>> {
        self.insert_member(ctx, org, user, role, expires_at).await
    }

    async fn set_member_role(
        &self,
        ctx: &AuditContext,
        org: AccountId,
        user: AccountId,
        role: OrgRole,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<Membership>> {
        self.update_member_role(ctx, org, user, role, expires_at)
            .await
    }

    async fn remove_member(
        &self,
        ctx: &AuditContext,
        org: AccountId,
        user: AccountId,
    ) -> StoreResult<Written<()>> {
        self.delete_member(ctx, org, user).await
    }
}
