//! `AppStore`: apps owned by an account (user or org), and users' pins.
//!
//! Design choice: app names are unique per owner case-insensitively through a
//! stored `name_lower` column; searching is a substring match on it (`LIKE` with
//! the pattern lowercased and its wildcards escaped), which behaves the same on
//! both dialects. Apps are deleted for real (they are not part of the account
//! namespace); their grants and pins go with them. A transferred app takes its
//! live algorithms along (same rows, new owner), in the same transaction,
//! holding the app row (PostgreSQL, READ COMMITTED) so that concurrent
//! transfers of one app run one after the other, and a write putting an
//! algorithm into the app (which share-locks it) is ordered before or after.

use crate::SqlStore;
use crate::accounts::{require_live, require_live_account};
use crate::algorithms::{algorithm_in, version_in};
use crate::db::{AnyQuery, RowLock, WriteTx, col, conflict, db_err, flag, new_uuid};
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::store::Constraint;
use algohub_core::store::Written;
use algohub_core::store::{AppStore, ChangeKind, StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::any::AnyRow;

macro_rules! app_select {
    () => {
        "SELECT p.id, p.uuid, p.owner_id, o.name AS owner_name, p.name, p.description, p.created_by, \
         p.created_at, p.updated_at FROM apps p JOIN accounts o ON o.id = p.owner_id"
    };
}

macro_rules! app_list {
    ($order:literal) => {
        concat!(
            app_select!(),
            " WHERE p.owner_id = $1 AND p.name_lower LIKE $2 ESCAPE '!' ORDER BY ",
            $order,
            " LIMIT $3 OFFSET $4"
        )
    };
}

fn app_from_row(r: &AnyRow) -> StoreResult<App> {
    Ok(App {
        id: col(r, "id")?,
        uuid: col(r, "uuid")?,
        owner_id: col(r, "owner_id")?,
        owner_name: col(r, "owner_name")?,
        name: col(r, "name")?,
        description: col(r, "description")?,
        created_by: col(r, "created_by")?,
        created_at: col(r, "created_at")?,
        updated_at: col(r, "updated_at")?,
    })
}

/// A `LIKE` pattern matching `needle` anywhere, with `!` as the escape character.
fn contains_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}

async fn app_in(tx: &mut WriteTx<'_>, id: AppId) -> StoreResult<App> {
    let row = sqlx::query(concat!(app_select!(), " WHERE p.id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?;
    app_from_row(&row.ok_or(StoreError::NotFound)?)
}

async fn insert_app(
    tx: &mut WriteTx<'_>,
    owner: AccountId,
    name: &str,
    description: &str,
    created_by: AccountId,
) -> StoreResult<AppId> {
    let now = now_millis();
    let row = sqlx::query(
        "INSERT INTO apps (uuid, owner_id, name, name_lower, description, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
    )
    .bind(new_uuid())
    .bind(owner)
    .bind(name)
    .bind(name.to_lowercase())
    .bind(description)
    .bind(created_by)
    .bind(now)
    .fetch_one(tx.conn())
    .await
    .map_err(db_err)?;
    let id: AppId = col(&row, "id")?;
    tx.change(ChangeKind::App, id);
    Ok(id)
}

/// Drops every team grant on the app, recording a change per team.
async fn drop_grants(tx: &mut WriteTx<'_>, app: AppId) -> StoreResult<()> {
    let teams = sqlx::query("DELETE FROM team_apps WHERE app_id = $1 RETURNING team_id")
        .bind(app)
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
    for r in &teams {
        tx.change(ChangeKind::Team, col(r, "team_id")?);
    }
    Ok(())
}

impl SqlStore {
    async fn apps(&self, q: AnyQuery<'_>) -> StoreResult<Vec<App>> {
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(app_from_row).collect()
    }
}

#[async_trait]
impl AppStore for SqlStore {
    async fn create_app(
        &self,
        ctx: &AuditContext,
        owner: AccountId,
        name: &str,
        description: &str,
        created_by: AccountId,
    ) -> StoreResult<Written<App>> {
        let mut tx = self.write(ctx).await?;
        require_live_account(&mut tx, owner).await?;
        let id = insert_app(&mut tx, owner, name, description, created_by).await?;
        tx.event(
            EventKind::AppCreated,
            Some(created_by),
            &format!("app:{id}"),
            serde_json::json!({ "owner_id": owner, "name": name }),
        )
        .await?;
        let app = app_in(&mut tx, id).await?;
        tx.finish(app).await
    }

    async fn get_app(&self, owner: AccountId, name: &str) -> StoreResult<App> {
        let q = sqlx::query(concat!(
            app_select!(),
            " WHERE p.owner_id = $1 AND p.name_lower = $2"
        ));
        self.apps(q.bind(owner).bind(name.to_lowercase()))
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    async fn get_app_by_id(&self, id: AppId) -> StoreResult<App> {
        self.apps(sqlx::query(concat!(app_select!(), " WHERE p.id = $1")).bind(id))
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    async fn list_apps(
        &self,
        owner: AccountId,
        search: Option<&str>,
        sort: AppSort,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<App>> {
        let sql = match sort {
            AppSort::UpdatedDesc => app_list!("p.updated_at DESC, p.id DESC"),
            AppSort::UpdatedAsc => app_list!("p.updated_at ASC, p.id ASC"),
            AppSort::NameAsc => app_list!("p.name_lower ASC, p.id ASC"),
            AppSort::NameDesc => app_list!("p.name_lower DESC, p.id DESC"),
        };
        let q = sqlx::query(sql)
            .bind(owner)
            .bind(contains_pattern(search.unwrap_or_default()))
            .bind(crate::db::page_limit(limit))
            .bind(offset.max(0));
        self.apps(q).await
    }

    async fn delete_app(&self, ctx: &AuditContext, id: AppId) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        let app = app_in(&mut tx, id).await?;
        drop_grants(&mut tx, id).await?;
        sqlx::query("DELETE FROM app_pins WHERE app_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM apps WHERE id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        let detail = serde_json::json!({ "owner_id": app.owner_id, "name": app.name });
        tx.event(EventKind::AppDeleted, None, &format!("app:{id}"), detail)
            .await?;
        tx.change(ChangeKind::App, id);
        tx.finish(()).await
    }

    async fn duplicate_app(
        &self,
        ctx: &AuditContext,
        id: AppId,
        new_name: &str,
        created_by: AccountId,
    ) -> StoreResult<Written<App>> {
        let mut tx = self.write(ctx).await?;
        let source = app_in(&mut tx, id).await?;
        let copy = insert_app(
            &mut tx,
            source.owner_id,
            new_name,
            &source.description,
            created_by,
        )
        .await?;
        let detail = serde_json::json!({ "from": id, "name": new_name });
        tx.event(
            EventKind::AppDuplicated,
            Some(created_by),
            &format!("app:{copy}"),
            detail,
        )
        .await?;
        let app = app_in(&mut tx, copy).await?;
        tx.finish(app).await
    }

    async fn transfer_app(
        &self,
        ctx: &AuditContext,
        id: AppId,
        from: AccountId,
        new_owner: AccountId,
        new_name: &str,
        actor: AccountId,
    ) -> StoreResult<Written<AppTransfer>> {
        let mut tx = self.write(ctx).await?;
        tx.lock_app(id, RowLock::Update).await?;
        let app = app_in(&mut tx, id).await?;
        if app.owner_id != from {
            return Err(conflict(Constraint::AppMoved));
        }
        require_live_account(&mut tx, new_owner).await?;
        // The app's live algorithms move with it, under their names: refused
        // before anything changes when one of those names is taken there
        // (a deleted algorithm's name stays taken in its owner's namespace).
        let taken = sqlx::query(
            "SELECT g.name FROM algorithms g JOIN algorithms d \
             ON d.owner_id = $1 AND d.name_lower = g.name_lower AND d.id <> g.id \
             WHERE g.app_id = $2 AND g.owner_id = $3 AND g.deleted_at IS NULL ORDER BY g.name_lower",
        )
        .bind(new_owner)
        .bind(id)
        .bind(app.owner_id)
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
        if !taken.is_empty() {
            let names = taken
                .iter()
                .map(|r| col::<String>(r, "name"))
                .collect::<StoreResult<Vec<_>>>()?;
            return Err(conflict(Constraint::AlgorithmNamesTaken { names }));
        }
        drop_grants(&mut tx, id).await?;
        let now = now_millis();
        sqlx::query("UPDATE apps SET owner_id = $1, name = $2, name_lower = $3, updated_at = $4 WHERE id = $5")
            .bind(new_owner)
            .bind(new_name)
            .bind(new_name.to_lowercase())
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        let moved = sqlx::query(
            "UPDATE algorithms SET owner_id = $1, updated_at = $2 \
             WHERE app_id = $3 AND owner_id = $4 AND deleted_at IS NULL RETURNING id",
        )
        .bind(new_owner)
        .bind(now)
        .bind(id)
        .bind(app.owner_id)
        .fetch_all(tx.conn())
        .await
        .map_err(db_err)?;
        let mut moved = moved
            .iter()
            .map(|r| col::<AlgoId>(r, "id"))
            .collect::<StoreResult<Vec<_>>>()?;
        moved.sort_unstable();
        let detail = serde_json::json!({
            "from_owner": app.owner_id,
            "to_owner": new_owner,
            "name": new_name,
            "algorithms": moved,
        });
        tx.event(
            EventKind::AppTransferred,
            Some(actor),
            &format!("app:{id}"),
            detail,
        )
        .await?;
        tx.change(ChangeKind::App, id);
        // In an org that requires approval, no version is live that its
        // admins did not approve: published versions wait for them again.
        let approval = sqlx::query("SELECT require_approval FROM orgs WHERE account_id = $1")
            .bind(new_owner)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_err)?;
        let requires_approval = match &approval {
            Some(r) => flag(r, "require_approval")?,
            None => false,
        };
        let mut algorithms = Vec::with_capacity(moved.len());
        let mut resubmitted = Vec::new();
        for &algo in &moved {
            let moved_algo = algorithm_in(&mut tx, algo).await?;
            tx.event(
                EventKind::AlgorithmTransferred,
                Some(actor),
                &format!("algorithm:{algo}"),
                serde_json::json!({
                    "app_id": id,
                    "from_owner": app.owner_id,
                    "to_owner": new_owner,
                    "name": moved_algo.name,
                }),
            )
            .await?;
            tx.change(ChangeKind::Algorithm, algo);
            algorithms.push(moved_algo);
            if !requires_approval {
                continue;
            }
            let again = sqlx::query(
                "UPDATE versions SET status = 'pending', decided_by = NULL, decided_at = NULL, \
                 decision_reason = NULL, approved_digest = NULL \
                 WHERE algorithm_id = $1 AND status = 'published' RETURNING id",
            )
            .bind(algo)
            .fetch_all(tx.conn())
            .await
            .map_err(db_err)?;
            let mut ids = again
                .iter()
                .map(|r| col::<i64>(r, "id"))
                .collect::<StoreResult<Vec<_>>>()?;
            ids.sort_unstable();
            for v in ids {
                let version = version_in(&mut tx, v).await?;
                tx.event(
                    EventKind::VersionSubmitted,
                    Some(actor),
                    &format!("version:{v}"),
                    serde_json::json!({
                        "algorithm_id": algo,
                        "version": version.semver.to_string(),
                        "digest": version.artifact_digest,
                        "app_transfer": id,
                    }),
                )
                .await?;
                resubmitted.push(version);
            }
        }
        let moved_app = app_in(&mut tx, id).await?;
        tx.finish(AppTransfer {
            app: moved_app,
            algorithms,
            resubmitted,
        })
        .await
    }

    async fn pin_app(
        &self,
        ctx: &AuditContext,
        user: AccountId,
        app: AppId,
    ) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        require_live(&mut tx, user, AccountKind::User).await?;
        app_in(&mut tx, app).await?;
        sqlx::query("INSERT INTO app_pins (user_id, app_id, pinned_at) VALUES ($1, $2, $3) ON CONFLICT (user_id, app_id) DO NOTHING")
            .bind(user)
            .bind(app)
            .bind(now_millis())
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        tx.finish(()).await
    }

    async fn unpin_app(
        &self,
        ctx: &AuditContext,
        user: AccountId,
        app: AppId,
    ) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        sqlx::query("DELETE FROM app_pins WHERE user_id = $1 AND app_id = $2")
            .bind(user)
            .bind(app)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        tx.finish(()).await
    }

    async fn list_pinned_apps(&self, user: AccountId) -> StoreResult<Vec<App>> {
        self.apps(
            sqlx::query(concat!(
                app_select!(),
                " JOIN app_pins n ON n.app_id = p.id WHERE n.user_id = $1 ORDER BY n.pinned_at, p.id"
            ))
            .bind(user),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(super::contains_pattern("Ab"), "%ab%");
        assert_eq!(super::contains_pattern("a_%!"), "%a!_!%!!%");
        assert_eq!(super::contains_pattern(""), "%%");
    }
}
