//! `TeamStore`: teams inside an org and their seats; app grants and grant expiry
//! live in `grants.rs`.
//!
//! Design choice: team names are unique per org case-insensitively through a
//! stored `name_lower` column (the display name is kept as given), which works the
//! same on both dialects without collations or expression indexes.

use crate::SqlStore;
use crate::accounts::require_live;
use crate::db::{AnyQuery, WriteTx, col, db_err, new_uuid};
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::roles::AppRole;
use algohub_core::store::Written;
use algohub_core::store::{ChangeKind, StoreError, StoreResult, TeamStore};
use async_trait::async_trait;
use sqlx::any::AnyRow;

macro_rules! team_select {
    () => {
        "SELECT id, uuid, org_id, name, created_at FROM teams"
    };
}

fn team_from_row(r: &AnyRow) -> StoreResult<Team> {
    Ok(Team {
        id: col(r, "id")?,
        uuid: col(r, "uuid")?,
        org_id: col(r, "org_id")?,
        name: col(r, "name")?,
        created_at: col(r, "created_at")?,
    })
}

/// The org a team belongs to, inside a write transaction (`NotFound` if no team).
pub(crate) async fn team_org(tx: &mut WriteTx<'_>, team: TeamId) -> StoreResult<AccountId> {
    let row = sqlx::query("SELECT org_id FROM teams WHERE id = $1")
        .bind(team)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
    col(&row, "org_id")
}

impl SqlStore {
    async fn teams(&self, q: AnyQuery<'_>) -> StoreResult<Vec<Team>> {
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(team_from_row).collect()
    }
}

#[async_trait]
impl TeamStore for SqlStore {
    async fn create_team(
        &self,
        ctx: &AuditContext,
        org: AccountId,
        name: &str,
    ) -> StoreResult<Written<Team>> {
        let now = now_millis();
        let mut tx = self.write(ctx).await?;
        require_live(&mut tx, org, AccountKind::Org).await?;
        let row = sqlx::query(
            "INSERT INTO teams (uuid, org_id, name, name_lower, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(new_uuid())
        .bind(org)
        .bind(name)
        .bind(name.to_lowercase())
        .bind(now)
        .fetch_one(tx.conn())
        .await
        .map_err(db_err)?;
        let id: TeamId = col(&row, "id")?;
        tx.event(
            EventKind::TeamCreated,
            None,
            &format!("team:{id}"),
            serde_json::json!({ "org_id": org, "name": name }),
        )
        .await?;
        tx.change(ChangeKind::Team, id);
        let team = sqlx::query(concat!(team_select!(), " WHERE id = $1"))
            .bind(id)
            .fetch_one(tx.conn())
            .await
            .map_err(db_err)?;
        tx.finish(team_from_row(&team)?).await
    }

    async fn get_team(&self, org: AccountId, name: &str) -> StoreResult<Team> {
        let q = sqlx::query(concat!(
            team_select!(),
            " WHERE org_id = $1 AND name_lower = $2"
        ));
        self.teams(q.bind(org).bind(name.to_lowercase()))
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    async fn list_teams(&self, org: AccountId) -> StoreResult<Vec<Team>> {
        self.teams(
            sqlx::query(concat!(
                team_select!(),
                " WHERE org_id = $1 ORDER BY name_lower"
            ))
            .bind(org),
        )
        .await
    }

    async fn delete_team(&self, ctx: &AuditContext, id: TeamId) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        let org = team_org(&mut tx, id).await?;
        let seats = sqlx::query("SELECT user_id FROM team_members WHERE team_id = $1")
            .bind(id)
            .fetch_all(tx.conn())
            .await
            .map_err(db_err)?;
        for r in &seats {
            tx.change(ChangeKind::User, col(r, "user_id")?);
        }
        for sql in [
            "DELETE FROM team_members WHERE team_id = $1",
            "DELETE FROM team_apps WHERE team_id = $1",
            "DELETE FROM teams WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(tx.conn())
                .await
                .map_err(db_err)?;
        }
        tx.event(
            EventKind::TeamDeleted,
            None,
            &format!("team:{id}"),
            serde_json::json!({ "org_id": org }),
        )
        .await?;
        tx.change(ChangeKind::Team, id);
        tx.finish(()).await
    }

    async fn list_team_members(&self, team: TeamId) -> StoreResult<Vec<TeamMember>> {
        let rows = sqlx::query(
            "SELECT s.team_id, s.user_id, a.name AS username, s.expires_at FROM team_members s \
             JOIN accounts a ON a.id = s.user_id WHERE s.team_id = $1 ORDER BY a.name",
        )
        .bind(team)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(TeamMember {
                    team_id: col(r, "team_id")?,
                    user_id: col(r, "user_id")?,
                    username: col(r, "username")?,
                    expires_at: col(r, "expires_at")?,
                })
            })
            .collect()
    }

    async fn add_team_member(
        &self,
        ctx: &AuditContext,
        team: TeamId,
        user: AccountId,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        let org = team_org(&mut tx, team).await?;
        // Lock the org so a concurrent `remove_member` cannot slip between the
        // membership check and the insert (it takes the same lock).
        tx.lock_account(org).await?;
        sqlx::query("SELECT user_id FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org)
            .bind(user)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        sqlx::query("INSERT INTO team_members (team_id, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(team)
            .bind(user)
            .bind(expires_at)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        tx.event(
            EventKind::TeamMemberAdded,
            None,
            &format!("team_member:{team}:{user}"),
            serde_json::json!({}),
        )
        .await?;
        tx.change(ChangeKind::User, user);
        tx.finish(()).await
    }

    async fn remove_team_member(
        &self,
        ctx: &AuditContext,
        team: TeamId,
        user: AccountId,
    ) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        let done = sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
            .bind(team)
            .bind(user)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.event(
            EventKind::TeamMemberRemoved,
            None,
            &format!("team_member:{team}:{user}"),
            serde_json::json!({}),
        )
        .await?;
        tx.change(ChangeKind::User, user);
        tx.finish(()).await
    }

    async fn list_team_apps(&self, team: TeamId) -> StoreResult<Vec<TeamAppGrant>> {
        self.team_app_grants(team).await
    }

    async fn grant_team_app(
        &self,
        ctx: &AuditContext,
        team: TeamId,
        app: AppId,
        role: AppRole,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<()>> {
        self.upsert_team_app(ctx, team, app, role, expires_at).await
    }

    async fn revoke_team_app(
        &self,
        ctx: &AuditContext,
        team: TeamId,
        app: AppId,
    ) -> StoreResult<Written<()>> {
        self.delete_team_app(ctx, team, app).await
    }

    async fn expire_grants(&self, ctx: &AuditContext, now: Millis) -> StoreResult<Written<u64>> {
        self.expire_grants_at(ctx, now).await
    }
}
