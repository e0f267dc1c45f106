//! algohub-store: the `algohub_core::store` traits on SQLite and PostgreSQL.
//!
//! Design choice: one implementation, [`SqlStore`], over sqlx's `Any` driver, so
//! every query is written once in the SQL both dialects accept (`$1, $2, ...`
//! placeholders numbered in order of first appearance, integers for times and
//! booleans, `RETURNING`, `ON CONFLICT`). The few true differences (how a
//! transaction starts, row locks, the advisory lock that orders policy changes)
//! branch on [`Dialect`] in `db.rs` and nowhere else.
//!
//! Files: `connect.rs` (URLs, pools, pragmas, migrations), `db.rs` (transactions,
//! error mapping, row decoding, policy-change and event recording), then one file
//! per trait area: `accounts.rs`, `orgs.rs`, `members.rs`, `invitations.rs`,
//! `teams.rs`, `grants.rs`, `apps.rs`, `keys.rs`, `outbox.rs`, `policy.rs`,
//! `algorithms.rs`, `usage.rs`, `notifications.rs`, `elevated.rs`.

mod accounts;
mod algorithm_rows;
mod algorithms;
mod apps;
mod changes;
mod connect;
mod credits;
mod db;
mod elevated;
mod export;
mod grants;
mod invitations;
mod keys;
mod members;
mod notifications;
mod orgs;
mod outbox;
mod policy;
mod teams;
mod usage;
mod usage_sqlite;
mod usage_write;

pub use connect::{Dialect, connect, io_error_text};

use algohub_core::audit::EventKind;
use algohub_core::store::{Store, StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::AnyPool;

/// The store on one database (SQLite file or PostgreSQL), shared as `Arc<SqlStore>`.
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite allows one writer at a time: write transactions take this lock first,
    /// so concurrent writers in this process queue here instead of failing with
    /// "database is locked". Unused on PostgreSQL.
    write_lock: tokio::sync::Mutex<()>,
    /// Organizations one user may belong to; 0 = unlimited.
    max_orgs_per_user: std::sync::atomic::AtomicU32,
    /// The database file of a SQLite store (not in memory): the account
    /// export reads it through its own read-only connection.
    sqlite_file: Option<std::path::PathBuf>,
    /// SQLite's usage writer connection (`usage_sqlite.rs`), opened on first use.
    usage_conn: usage_sqlite::UsageConn,
    /// The usage writer commits with `synchronous = FULL` (see
    /// `Store::set_durable_usage_commits`).
    durable_usage: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &self.dialect)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Which SQL dialect this store speaks.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The underlying pool, for tests and admin tooling (e.g. reading pragmas).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

#[async_trait]
impl Store for SqlStore {
    fn set_max_orgs_per_user(&self, max: Option<u32>) {
        self.max_orgs_per_user
            .store(max.unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
    }

    fn set_durable_usage_commits(&self, on: bool) {
        self.durable_usage
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    fn backend(&self) -> algohub_core::store::Backend {
        match self.dialect {
            Dialect::Sqlite => algohub_core::store::Backend::Sqlite,
            Dialect::Postgres => algohub_core::store::Backend::Postgres,
        }
    }

    async fn cluster_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        let read = || async {
            sqlx::query("SELECT secret FROM cluster_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(db::db_err)?
                .map(|row| db::col::<String>(&row, "secret"))
                .transpose()
        };
        if let Some(secret) = read().await? {
            return Ok(secret);
        }
        let mut tx = self.write_unaudited().await?;
        let created = sqlx::query(
            "INSERT INTO cluster_secrets (name, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(algohub_core::model::now_millis())
        .execute(tx.conn())
        .await
        .map_err(db::db_err)?
        .rows_affected();
        if created == 1 {
            tx.event(
                EventKind::ClusterSecretCreated,
                None,
                &format!("cluster_secret:{name}"),
                serde_json::json!({}),
            )
            .await?;
        }
        tx.commit().await?;
        read().await?.ok_or(StoreError::NotFound)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db::db_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
