//! SQLite's usage writer: `record_usage` on a SQLite file through its own
//! connection with prepared statements, one bound row at a time.
//!
//! Design choice: metering loads thousands of records per transaction, and
//! through the pool every statement crosses to sqlx's worker thread and a
//! batch travels as JSON that SQLite parses back, which costs more than the
//! inserts. Here a blocking task binds each record to a prepared statement
//! instead. The transaction runs under this process's write lock and with
//! `BEGIN IMMEDIATE`, like every other write, and follows the same rules as
//! the pool's path (`usage_write.rs`): a record already stored is skipped (its
//! insert changes no row), and only the newly inserted ones reach the rollups
//! and the ledger, so a retried batch never counts twice.

use crate::SqlStore;
use crate::usage_write::{
    LEDGER_INSERT, ROLLUP_CONFLICT, ROLLUP_INSERT, USAGE_COLUMNS, postings, rollups,
};
use algohub_core::model::{UsageRecord, now_millis};
use algohub_core::store::{StoreError, StoreResult};
use rusqlite::{Connection, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The writer's connection, opened on first use.
pub(crate) type UsageConn = Arc<Mutex<Option<Writer>>>;

/// The connection and the `synchronous` level last set on it (set again
/// only when the durability setting changes).
pub(crate) struct Writer {
    conn: Connection,
    full_sync: Option<bool>,
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    StoreError::Other(format!("sqlite usage write: {e}"))
}

fn open(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open(path).map_err(sqlite_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite_err)?;
    // WAL is a property of the file (set by the pool); these are per
    // connection (`synchronous` is set per batch).
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .map_err(sqlite_err)?;
    Ok(conn)
}

impl SqlStore {
    /// The `synchronous` level (1 NORMAL, 2 FULL) of the SQLite usage writer's
    /// connection, once it has written a batch: for tests and diagnostics.
    pub fn usage_writer_synchronous(&self) -> Option<i64> {
        let slot = self.usage_conn.lock().ok()?;
        slot.as_ref()?
            .conn
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .ok()
    }

    /// `record_usage` on a SQLite file (see the module comment).
    pub(crate) async fn record_usage_sqlite(
        &self,
        path: &Path,
        records: Arc<[UsageRecord]>,
    ) -> StoreResult<()> {
        let _writer = self.write_lock.lock().await;
        let conn = self.usage_conn.clone();
        let durable = self
            .durable_usage
            .load(std::sync::atomic::Ordering::Relaxed);
        let path: PathBuf = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut slot = conn
                .lock()
                .map_err(|_| StoreError::Other("the usage writer panicked".into()))?;
            if slot.is_none() {
                *slot = Some(Writer {
                    conn: open(&path)?,
                    full_sync: None,
                });
            }
            let Some(writer) = slot.as_mut() else {
                unreachable!("opened above")
            };
            // Checked per batch, so that a change of mode applies at once.
            if writer.full_sync != Some(durable) {
                let sync = if durable { "FULL" } else { "NORMAL" };
                writer
                    .conn
                    .execute_batch(&format!("PRAGMA synchronous = {sync}"))
                    .map_err(sqlite_err)?;
                writer.full_sync = Some(durable);
            }
            let conn = &mut writer.conn;
            let done = write(conn, &records);
            if done.is_err() {
                // Leave no transaction open behind a failed batch; if even the
                // rollback fails, start over on a new connection next time.
                if conn.execute_batch("ROLLBACK").is_err() && !conn.is_autocommit() {
                    *slot = None;
                }
            }
            done
        })
        .await
        .map_err(|e| StoreError::Other(format!("the usage writer failed: {e}")))?
    }
}

/// One transaction: the new records, their rollups and their postings. The
/// statements are prepared once per connection (rusqlite's statement cache).
fn write(conn: &mut Connection, records: &[UsageRecord]) -> StoreResult<()> {
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut st| st.execute([]))
            .map_err(sqlite_err)
    };
    run("BEGIN IMMEDIATE")?;
    let mut inserted: Vec<&UsageRecord> = Vec::with_capacity(records.len());
    {
        let mut insert = conn
            .prepare_cached(&format!(
                "INSERT INTO usage_records ({USAGE_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
                 ON CONFLICT (request_id) DO NOTHING"
            ))
            .map_err(sqlite_err)?;
        for r in records {
            let added = insert.execute(r.columns()).map_err(sqlite_err)?;
            if added == 1 {
                inserted.push(r);
            }
        }
        let mut upsert = conn
            .prepare_cached(&format!(
                "{ROLLUP_INSERT} VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
                 {ROLLUP_CONFLICT}"
            ))
            .map_err(sqlite_err)?;
        for ((day, payer, caller, algo, version, via), t) in rollups(&inserted)? {
            upsert
                .execute(params![
                    day,
                    payer,
                    caller,
                    algo,
                    version,
                    via,
                    t.owner_id,
                    t.calls,
                    t.errors,
                    t.refused,
                    t.compute_units,
                    t.duration_us,
                    t.error_duration_us,
                    t.credits,
                ])
                .map_err(sqlite_err)?;
        }
        let mut post = conn
            .prepare_cached(&format!("{LEDGER_INSERT} VALUES (?1, ?2, ?3, ?4, ?5)"))
            .map_err(sqlite_err)?;
        let now = now_millis();
        for (request_id, account, kind, amount) in postings(&inserted) {
            post.execute(params![request_id, account, kind, amount, now])
                .map_err(sqlite_err)?;
        }
    }
    run("COMMIT").map(drop)
}
