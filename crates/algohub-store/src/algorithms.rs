//! `AlgorithmStore`: content-addressed artifacts, algorithms, builds, versions
//! and publish approval.
//!
//! Design choice: artifacts are stored once per digest (a wasm module or an http
//! upstream definition), and builds and versions point at a digest, so an approval
//! is bound to exactly the bytes that were reviewed. Algorithms are soft-deleted:
//! the row stays so history resolves, and its name stays taken in the owner's
//! namespace. `create_version` checks "newest build, not yet published" inside
//! the transaction, so a retried publish cannot make two versions.
//!
//! An app transfer moves the app's algorithms with it (`apps.rs`), so writes
//! that depend on an algorithm's owner decide inside their transaction, with
//! the rows locked on PostgreSQL (READ COMMITTED): a version's status comes
//! from the owner the algorithm has then, and an algorithm is put into an app
//! only while the app belongs to the algorithm's owner.

use crate::SqlStore;
use crate::accounts::require_live_account;
use crate::algorithm_rows::{
    algo_select, algorithm_from_row, build_from_row, build_select, version_from_row, version_select,
};
use crate::db::{RowLock, WriteTx, col, conflict, db_err, json_text};
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::store::Constraint;
use algohub_core::store::Written;
use algohub_core::store::{AlgorithmStore, ChangeKind, StoreError, StoreResult};
use async_trait::async_trait;

pub(crate) async fn algorithm_in(tx: &mut WriteTx<'_>, id: AlgoId) -> StoreResult<Algorithm> {
    let row = sqlx::query(concat!(algo_select!(), " WHERE g.id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?;
    algorithm_from_row(&row.ok_or(StoreError::NotFound)?)
}

/// Refuses with `Conflict{"app_owner"}` unless `app` belongs to `owner`
/// (`NotFound` when it is gone). The app row is share-locked first, so a
/// transfer of it either committed before (and its new owner is read here) or
/// waits for this transaction, and then moves what it put into the app.
async fn require_app_of(tx: &mut WriteTx<'_>, app: AppId, owner: AccountId) -> StoreResult<()> {
    tx.lock_app(app, RowLock::Share).await?;
    let row = sqlx::query("SELECT owner_id FROM apps WHERE id = $1")
        .bind(app)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
    if col::<AccountId>(&row, "owner_id")? != owner {
        return Err(conflict(Constraint::AppOwner));
    }
    Ok(())
}

pub(crate) async fn version_in(tx: &mut WriteTx<'_>, id: i64) -> StoreResult<Version> {
    let row = sqlx::query(concat!(version_select!(), " WHERE v.id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?;
    version_from_row(&row.ok_or(StoreError::NotFound)?)
}

impl SqlStore {
    async fn one_algorithm(&self, sql: &'static str, arg: impl ToString) -> StoreResult<Algorithm> {
        let row = sqlx::query(sql)
            .bind(arg.to_string())
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        algorithm_from_row(&row.ok_or(StoreError::NotFound)?)
    }
}

#[async_trait]
impl AlgorithmStore for SqlStore {
    async fn put_artifact(&self, a: &Artifact) -> StoreResult<()> {
        let mut tx = self.write_unaudited().await?;
        let exists = sqlx::query("SELECT digest FROM artifacts WHERE digest = $1")
            .bind(&a.digest)
            .fetch_optional(tx.conn())
            .await
            .map_err(db_err)?;
        if exists.is_none() {
            sqlx::query("INSERT INTO artifacts (digest, kind, bytes, size, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&a.digest)
                .bind(a.kind.as_str())
                .bind(a.bytes.clone())
                .bind(a.bytes.len() as i64)
                .bind(now_millis())
                .execute(tx.conn())
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map(drop)
    }

    async fn get_artifact(&self, digest: &str) -> StoreResult<Artifact> {
        let row = sqlx::query("SELECT digest, kind, bytes FROM artifacts WHERE digest = $1")
            .bind(digest)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?
            .ok_or(StoreError::NotFound)?;
        let kind: String = col(&row, "kind")?;
        Ok(Artifact {
            digest: col(&row, "digest")?,
            kind: RuntimeKind::parse(&kind),
            bytes: col(&row, "bytes")?,
        })
    }

    async fn create_algorithm(
        &self,
        ctx: &AuditContext,
        a: &NewAlgorithm,
    ) -> StoreResult<Written<Algorithm>> {
        let now = now_millis();
        let mut tx = self.write(ctx).await?;
        require_live_account(&mut tx, a.owner_id).await?;
        if let Some(app) = a.app_id {
            require_app_of(&mut tx, app, a.owner_id).await?;
        }
        let row = sqlx::query(
            "INSERT INTO algorithms (uuid, owner_id, name, name_lower, app_id, details, settings, runtime, \
             artifact_digest, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING id",
        )
        .bind(&a.uuid)
        .bind(a.owner_id)
        .bind(&a.name)
        .bind(a.name.to_lowercase())
        .bind(a.app_id)
        .bind(a.details.to_string())
        .bind(json_text(&a.settings)?)
        .bind(a.runtime.as_str())
        .bind(&a.artifact_digest)
        .bind(a.created_by)
        .bind(now)
        .fetch_one(tx.conn())
        .await
        .map_err(db_err)?;
        let id: AlgoId = col(&row, "id")?;
        tx.event(
            EventKind::AlgorithmCreated,
            Some(a.created_by),
            &format!("algorithm:{id}"),
            serde_json::json!({"name": a.name}),
        )
        .await?;
        tx.change(ChangeKind::Algorithm, id);
        let algo = algorithm_in(&mut tx, id).await?;
        tx.finish(algo).await
    }

    async fn get_algorithm(&self, owner: AccountId, name: &str) -> StoreResult<Algorithm> {
        let row = sqlx::query(concat!(
            algo_select!(),
            " WHERE g.owner_id = $1 AND g.name_lower = $2 AND g.deleted_at IS NULL"
        ))
        .bind(owner)
        .bind(name.to_lowercase())
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        algorithm_from_row(&row.ok_or(StoreError::NotFound)?)
    }

    async fn get_algorithm_by_uuid(&self, uuid: &str) -> StoreResult<Algorithm> {
        self.one_algorithm(
            concat!(
                algo_select!(),
                " WHERE g.uuid = $1 AND g.deleted_at IS NULL"
            ),
            uuid,
        )
        .await
    }

    async fn get_algorithm_by_id(&self, id: AlgoId) -> StoreResult<Algorithm> {
        let row = sqlx::query(concat!(algo_select!(), " WHERE g.id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        algorithm_from_row(&row.ok_or(StoreError::NotFound)?)
    }

    async fn list_algorithms(&self, owner: AccountId) -> StoreResult<Vec<Algorithm>> {
        let rows = sqlx::query(concat!(
            algo_select!(),
            " WHERE g.owner_id = $1 AND g.deleted_at IS NULL ORDER BY g.name_lower"
        ))
        .bind(owner)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(algorithm_from_row).collect()
    }

    async fn update_algorithm(
        &self,
        ctx: &AuditContext,
        id: AlgoId,
        details: &serde_json::Value,
        settings: &AlgorithmSettings,
        app_id: Option<Option<AppId>>,
    ) -> StoreResult<Written<Algorithm>> {
        let mut tx = self.write(ctx).await?;
        // The app before the algorithm, in the order a transfer locks them.
        if let Some(Some(app)) = app_id {
            tx.lock_app(app, RowLock::Share).await?;
        }
        tx.lock_algorithm(id, RowLock::Update).await?;
        let current = algorithm_in(&mut tx, id).await?;
        if let Some(Some(app)) = app_id {
            require_app_of(&mut tx, app, current.owner_id).await?;
        }
        let app = app_id.unwrap_or(current.app_id);
        sqlx::query("UPDATE algorithms SET details = $1, settings = $2, app_id = $3, updated_at = $4 WHERE id = $5 AND deleted_at IS NULL")
            .bind(details.to_string())
            .bind(json_text(settings)?)
            .bind(app)
            .bind(now_millis())
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        // Always: the policy index follows the app, the call cache everything.
        tx.change(ChangeKind::Algorithm, id);
        let algo = algorithm_in(&mut tx, id).await?;
        crate::changes::algorithm_updated(&mut tx, &current, &algo).await?;
        tx.finish(algo).await
    }

    async fn set_algorithm_artifact(
        &self,
        ctx: &AuditContext,
        id: AlgoId,
        digest: &str,
        runtime: RuntimeKind,
    ) -> StoreResult<Written<Algorithm>> {
        let mut tx = self.write(ctx).await?;
        let done = sqlx::query("UPDATE algorithms SET artifact_digest = $1, runtime = $2, updated_at = $3 WHERE id = $4 AND deleted_at IS NULL")
            .bind(digest)
            .bind(runtime.as_str())
            .bind(now_millis())
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.event(
            EventKind::AlgorithmArtifactUploaded,
            None,
            &format!("algorithm:{id}"),
            serde_json::json!({"digest": digest}),
        )
        .await?;
        let algo = algorithm_in(&mut tx, id).await?;
        tx.change(ChangeKind::Algorithm, id);
        tx.finish(algo).await
    }

    async fn delete_algorithm(&self, ctx: &AuditContext, id: AlgoId) -> StoreResult<Written<()>> {
        let mut tx = self.write(ctx).await?;
        let done = sqlx::query(
            "UPDATE algorithms SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
        )
        .bind(now_millis())
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.event(
            EventKind::AlgorithmDeleted,
            None,
            &format!("algorithm:{id}"),
            serde_json::json!({}),
        )
        .await?;
        tx.change(ChangeKind::Algorithm, id);
        tx.finish(()).await
    }

    async fn create_build(
        &self,
        algo: AlgoId,
        uuid: &str,
        commit_sha: &str,
        digest: &str,
        logs: &str,
        by: AccountId,
    ) -> StoreResult<Build> {
        let now = now_millis();
        let mut tx = self.write_unaudited().await?;
        sqlx::query(
            "INSERT INTO builds (uuid, algorithm_id, commit_sha, artifact_digest, status, logs, created_by, started_at, finished_at) \
             VALUES ($1, $2, $3, $4, 'succeeded', $5, $6, $7, $7)",
        )
        .bind(uuid)
        .bind(algo)
        .bind(commit_sha)
        .bind(digest)
        .bind(logs)
        .bind(by)
        .bind(now)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        let row = sqlx::query(concat!(build_select!(), " WHERE b.uuid = $1"))
            .bind(uuid)
            .fetch_one(tx.conn())
            .await
            .map_err(db_err)?;
        let build = build_from_row(&row)?;
        // Calls resolve builds and versions from a cache that follows changes.
        tx.change(ChangeKind::Algorithm, algo);
        tx.commit().await?;
        Ok(build)
    }

    async fn list_builds(
        &self,
        algo: AlgoId,
        limit: i64,
        before: Option<i64>,
    ) -> StoreResult<Vec<Build>> {
        let rows = sqlx::query(concat!(
            build_select!(),
            " WHERE b.algorithm_id = $1 AND b.id < $2 ORDER BY b.id DESC LIMIT $3"
        ))
        .bind(algo)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, 1000))
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(build_from_row).collect()
    }

    async fn get_build(&self, algo: AlgoId, uuid: &str) -> StoreResult<Build> {
        let row = sqlx::query(concat!(
            build_select!(),
            " WHERE b.algorithm_id = $1 AND b.uuid = $2"
        ))
        .bind(algo)
        .bind(uuid)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        build_from_row(&row.ok_or(StoreError::NotFound)?)
    }

    async fn create_version(
        &self,
        ctx: &AuditContext,
        v: &NewVersion,
    ) -> StoreResult<Written<Version>> {
        let mut tx = self.write(ctx).await?;
        // The status goes by the owner the algorithm has now: share-locked, so
        // a transfer moving it either committed first (its new owner is read
        // below) or waits, and then finds this version to submit again.
        tx.lock_algorithm(v.algorithm_id, RowLock::Share).await?;
        let owner = sqlx::query(
            "SELECT o.require_approval FROM algorithms g \
             LEFT JOIN orgs o ON o.account_id = g.owner_id WHERE g.id = $1",
        )
        .bind(v.algorithm_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?
        .ok_or(StoreError::NotFound)?;
        let status = match col::<Option<i64>>(&owner, "require_approval")? {
            Some(required) if required != 0 => VersionStatus::Pending,
            _ => VersionStatus::Published,
        };
        let newest = sqlx::query(
            "SELECT b.id, b.commit_sha, b.artifact_digest, v.id AS version_id FROM builds b \
             LEFT JOIN versions v ON v.build_id = b.id WHERE b.algorithm_id = $1 ORDER BY b.id DESC LIMIT 1",
        )
        .bind(v.algorithm_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?
        .ok_or_else(|| conflict(Constraint::NoNewBuild))?;
        let newest_id: i64 = col(&newest, "id")?;
        let published: Option<i64> = col(&newest, "version_id")?;
        if newest_id != v.build_id || published.is_some() {
            return Err(conflict(Constraint::NoNewBuild));
        }
        let git_hash: String = col(&newest, "commit_sha")?;
        let digest: String = col(&newest, "artifact_digest")?;
        let row = sqlx::query(
            "INSERT INTO versions (uuid, algorithm_id, build_id, major, minor, patch, git_hash, artifact_digest, \
             callability, status, release_notes, sample_input, sample_output, settings, published_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
        )
        .bind(&v.uuid)
        .bind(v.algorithm_id)
        .bind(v.build_id)
        .bind(v.semver.major)
        .bind(v.semver.minor)
        .bind(v.semver.patch)
        .bind(&git_hash)
        .bind(&digest)
        .bind(v.callability.as_str())
        .bind(status.as_str())
        .bind(&v.release_notes)
        .bind(v.sample_input.clone())
        .bind(v.sample_output.clone())
        .bind(json_text(&v.settings)?)
        .bind(v.published_by)
        .bind(now_millis())
        .fetch_one(tx.conn())
        .await
        .map_err(db_err)?;
        let id: i64 = col(&row, "id")?;
        tx.event(
            if status == VersionStatus::Pending { EventKind::VersionSubmitted } else { EventKind::VersionPublished },
            Some(v.published_by),
            &format!("version:{id}"),
            serde_json::json!({"algorithm_id": v.algorithm_id, "version": v.semver.to_string(), "digest": digest}),
        )
        .await?;
        let version = version_in(&mut tx, id).await?;
        tx.change(ChangeKind::Algorithm, v.algorithm_id);
        tx.finish(version).await
    }

    async fn list_versions(&self, algo: AlgoId) -> StoreResult<Vec<Version>> {
        let rows = sqlx::query(concat!(
            version_select!(),
            " WHERE v.algorithm_id = $1 ORDER BY v.major DESC, v.minor DESC, v.patch DESC"
        ))
        .bind(algo)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter().map(version_from_row).collect()
    }

    async fn get_version_by_uuid(&self, uuid: &str) -> StoreResult<Version> {
        let row = sqlx::query(concat!(version_select!(), " WHERE v.uuid = $1"))
            .bind(uuid)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        version_from_row(&row.ok_or(StoreError::NotFound)?)
    }

    async fn decide_version(
        &self,
        ctx: &AuditContext,
        version: i64,
        approve: bool,
        by: AccountId,
        reason: &str,
        digest: &str,
    ) -> StoreResult<Written<Version>> {
        let now = now_millis();
        let mut tx = self.write(ctx).await?;
        let done = sqlx::query(
            "UPDATE versions SET status = $1, decided_by = $2, decided_at = $3, decision_reason = $4, approved_digest = $5 \
             WHERE id = $6 AND status = 'pending' AND artifact_digest = $7",
        )
        .bind(if approve { "published" } else { "rejected" })
        .bind(by)
        .bind(now)
        .bind(reason)
        .bind(if approve { Some(digest.to_string()) } else { None })
        .bind(version)
        .bind(digest)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            version_in(&mut tx, version).await?;
            return Err(conflict(Constraint::NotPending));
        }
        tx.event(
            if approve {
                EventKind::VersionApproved
            } else {
                EventKind::VersionRejected
            },
            Some(by),
            &format!("version:{version}"),
            serde_json::json!({"reason": reason, "digest": digest}),
        )
        .await?;
        let v = version_in(&mut tx, version).await?;
        tx.change(ChangeKind::Algorithm, v.algorithm_id);
        tx.finish(v).await
    }

    async fn list_pending_versions(
        &self,
        owner: AccountId,
    ) -> StoreResult<Vec<(Algorithm, Version)>> {
        let rows = sqlx::query(concat!(
            version_select!(),
            " JOIN algorithms g ON g.id = v.algorithm_id WHERE g.owner_id = $1 AND g.deleted_at IS NULL \
             AND v.status = 'pending' ORDER BY v.created_at, v.id"
        ))
        .bind(owner)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let v = version_from_row(r)?;
            out.push((self.get_algorithm_by_id(v.algorithm_id).await?, v));
        }
        Ok(out)
    }

    async fn record_algorithm_error(
        &self,
        e: &AlgorithmError,
        keep_after: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.write_unaudited().await?;
        sqlx::query(
            "INSERT INTO algorithm_errors (algorithm_id, created_at, request_id, caller_id, version, input, error, error_type) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(e.algorithm_id)
        .bind(e.created_at)
        .bind(&e.request_id)
        .bind(e.caller_id)
        .bind(&e.version)
        .bind(&e.input)
        .bind(&e.error)
        .bind(&e.error_type)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM algorithm_errors WHERE algorithm_id = $1 AND created_at < $2")
            .bind(e.algorithm_id)
            .bind(keep_after)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        tx.commit().await.map(drop)
    }

    async fn list_algorithm_errors(
        &self,
        scope: ErrorScope,
        since: Millis,
        limit: i64,
    ) -> StoreResult<Vec<AlgorithmError>> {
        let (filter, id) = match scope {
            ErrorScope::Algorithm(algo) => ("e.algorithm_id = $1", algo),
            ErrorScope::Owner(owner) => ("al.owner_id = $1", owner),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT e.algorithm_id, e.created_at, e.request_id, e.caller_id, a.name AS caller_name, \
             o.name AS owner_name, al.name AS algorithm_name, \
             e.version, e.input, e.error, e.error_type FROM algorithm_errors e \
             JOIN accounts a ON a.id = e.caller_id JOIN algorithms al ON al.id = e.algorithm_id \
             JOIN accounts o ON o.id = al.owner_id \
             WHERE {filter} AND e.created_at >= $2 ORDER BY e.created_at DESC, e.id DESC LIMIT $3"
        )))
        .bind(id)
        .bind(since)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(AlgorithmError {
                    algorithm_id: col(r, "algorithm_id")?,
                    created_at: col(r, "created_at")?,
                    request_id: col(r, "request_id")?,
                    caller_id: col(r, "caller_id")?,
                    caller_name: col(r, "caller_name")?,
                    owner_name: col(r, "owner_name")?,
                    algorithm_name: col(r, "algorithm_name")?,
                    version: col(r, "version")?,
                    input: col(r, "input")?,
                    error: col(r, "error")?,
                    error_type: col(r, "error_type")?,
                })
            })
            .collect()
    }
}
