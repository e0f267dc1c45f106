//! Team app grants and the expiry of time-limited grants (the grant half of
//! `TeamStore`; the trait impl in `teams.rs` calls these).
//!
//! Design choice: expiry removes each expired row in one transaction and writes
//! one `grant.expired` event per row, so the audit trail says exactly what went.
//! An expired membership is removed like `remove_member` (team seats in the org
//! and member keys for the org go too). The last-admin rule wins over expiry: if
//! removing an expired admin membership would leave its org without any admin,
//! the membership is kept, its expiry is cleared, and a `grant.expiry_cleared`
//! event says why — an org nobody can administer helps no one.

use crate::SqlStore;
use crate::db::{app_role, col, db_err, org_role};
use crate::members::{other_admins, remove_membership};
use crate::teams::team_org;
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::roles::{AppRole, OrgRole};
use algohub_core::store::Written;
use algohub_core::store::{ChangeKind, StoreError, StoreResult};

impl SqlStore {
    pub(crate) async fn team_app_grants(&self, team: TeamId) -> StoreResult<Vec<TeamAppGrant>> {
        let rows = sqlx::query(
            "SELECT g.team_id, g.app_id, p.name AS app_name, o.name AS owner_name, g.role, g.expires_at \
             FROM team_apps g JOIN apps p ON p.id = g.app_id JOIN accounts o ON o.id = p.owner_id \
             WHERE g.team_id = $1 ORDER BY p.name_lower",
        )
        .bind(team)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(TeamAppGrant {
                    team_id: col(r, "team_id")?,
                    app_id: col(r, "app_id")?,
                    app_name: col(r, "app_name")?,
                    owner_name: col(r, "owner_name")?,
                    role: app_role(r, "role")?,
                    expires_at: col(r, "expires_at")?,
                })
            })
            .collect()
    }

    /// Grants (or re-grants, replacing role and expiry) an app of the team's org.
    /// `NotFound` unless both exist and the app belongs to the team's org.
    pub(crate) async fn upsert_team_app(
        &self,
        ctx: &AuditContext,
        team: TeamId,
        app: AppId,
        role: AppRole,
        expires_at: Option<Millis>,
    ) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        let org = team_org(&mut tx, team).await?;
        sqlx::query("SELECT id FROM apps WHERE id = $1 AND owner_id = $2")
            .bind(app)
            .bind(org)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        sqlx::query(
            "INSERT INTO team_apps (team_id, app_id, role, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (team_id, app_id) DO UPDATE SET role = excluded.role, expires_at = excluded.expires_at",
        )
        .bind(team)
        .bind(app)
        .bind(role as i64)
        .bind(expires_at)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        tx.event(
            EventKind::TeamAppGranted,
            None,
            &format!("team_app:{team}:{app}"),
            serde_json::json!({ "role": role.as_str() }),
        )
        .await?;
        tx.change(ChangeKind::Team, team);
        tx.finish(()).await
    }

    pub(crate) async fn delete_team_app(
        &self,
        ctx: &AuditContext,
        team: TeamId,
        app: AppId,
    ) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        let done = sqlx::query("DELETE FROM team_apps WHERE team_id = $1 AND app_id = $2")
            .bind(team)
            .bind(app)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.event(
            EventKind::TeamAppRevoked,
            None,
            &format!("team_app:{team}:{app}"),
            serde_json::json!({}),
        )
        .await?;
        tx.change(ChangeKind::Team, team);
        tx.finish(()).await
    }

    pub(crate) async fn expire_grants_at(
        &self,
        ctx: &AuditContext,
        now: Millis,
    ) -> StoreResult<Written<u64>> {
        let mut tx = self.write(ctx).await?;
        let mut removed = 0u64;

        let expired = sqlx::query(
            "SELECT org_id, user_id, role, expires_at FROM memberships WHERE expires_at IS NOT NULL AND expires_at <= $1 \
             ORDER BY org_id, expires_at, user_id",
        )
        .bind(now)
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
        let mut locked = None;
        for r in &expired {
            let (org, user): (AccountId, AccountId) = (col(r, "org_id")?, col(r, "user_id")?);
            if locked != Some(org) {
                tx.lock_account(org).await?;
                locked = Some(org);
            }
            let subject = format!("membership:{org}:{user}");
            // Re-read under the org lock: a role change may have extended or
            // cleared the expiry since the scan, or another node swept it.
            let Some(r) = sqlx::query(
                "SELECT role, expires_at FROM memberships WHERE org_id = $1 AND user_id = $2 \
                 AND expires_at IS NOT NULL AND expires_at <= $3",
            )
            .bind(org)
            .bind(user)
            .bind(now)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_err)?
            else {
                continue;
            };
            let r = &r;
            let expires_at: Option<Millis> = col(r, "expires_at")?;
            if org_role(r, "role")? == OrgRole::Admin
                && other_admins(&mut tx, org, user).await? == 0
            {
                sqlx::query(
                    "UPDATE memberships SET expires_at = NULL WHERE org_id = $1 AND user_id = $2",
                )
                .bind(org)
                .bind(user)
                .execute(tx.conn())
                .await
                .map_err(db_err)?;
                tx.change(ChangeKind::User, user);
                let detail =
                    serde_json::json!({ "reason": "last_admin", "expires_at": expires_at });
                tx.event(EventKind::GrantExpiryCleared, None, &subject, detail)
                    .await?;
                continue;
            }
            remove_membership(&mut tx, org, user, now).await?;
            tx.event(
                EventKind::GrantExpired,
                None,
                &subject,
                serde_json::json!({ "expires_at": expires_at }),
            )
            .await?;
            removed += 1;
        }

        let seats = sqlx::query(
            "DELETE FROM team_members WHERE expires_at IS NOT NULL AND expires_at <= $1 RETURNING team_id, user_id, expires_at",
        )
        .bind(now)
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
        for r in &seats {
            let (team, user): (TeamId, AccountId) = (col(r, "team_id")?, col(r, "user_id")?);
            let detail =
                serde_json::json!({ "expires_at": col::<Option<Millis>>(r, "expires_at")? });
            tx.event(
                EventKind::GrantExpired,
                None,
                &format!("team_member:{team}:{user}"),
                detail,
            )
            .await?;
            tx.change(ChangeKind::User, user);
            removed += 1;
        }

        let grants = sqlx::query(
            "DELETE FROM team_apps WHERE expires_at IS NOT NULL AND expires_at <= $1 RETURNING team_id, app_id, expires_at",
        )
        .bind(now)
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
        for r in &grants {
            let (team, app): (TeamId, AppId) = (col(r, "team_id")?, col(r, "app_id")?);
            let detail =
                serde_json::json!({ "expires_at": col::<Option<Millis>>(r, "expires_at")? });
            tx.event(
                EventKind::GrantExpired,
                None,
                &format!("team_app:{team}:{app}"),
                detail,
            )
            .await?;
            tx.change(ChangeKind::Team, team);
            removed += 1;
        }

        tx.finish(removed).await
    }
}
