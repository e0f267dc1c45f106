//! The account export: every live user in one consistent read, rendered into
//! chunks and sent through a bounded channel (constant memory).
//!
//! Design choice: on a SQLite file the export reads through its own read-only
//! rusqlite connection on a blocking thread, borrowing each row's text in
//! place; going through the pool's async driver copies every value and hands
//! rows over between threads one by one, which costs more than the read
//! itself. The connection sees a WAL snapshot, so writers go on meanwhile.
//! PostgreSQL (and an in-memory SQLite) stream the same query through sqlx.

use crate::SqlStore;
use crate::db::{col, db_err, flag};
use algohub_core::store::*;
use futures_util::TryStreamExt;

/// Live users, oldest first (the export's order), with the exported columns.
const EXPORT_SQL: &str = "SELECT a.uuid, a.name, u.email, u.full_name, a.status, u.cluster_admin, \
     u.sudo_user, u.work_limit, a.created_at, u.last_login_at \
     FROM accounts a JOIN users u ON u.account_id = a.id \
     WHERE a.kind = 'user' AND a.status <> 'deleted' ORDER BY a.id";

/// Collects rendered rows into chunks and sends each full one.
struct Chunker {
    render: ExportRender,
    buf: Vec<u8>,
    rows: u64,
}

impl Chunker {
    fn new(render: ExportRender) -> Self {
        Self {
            render,
            buf: Vec::with_capacity(EXPORT_CHUNK_BYTES + 1024),
            rows: 0,
        }
    }

    /// Renders one row; returns a full chunk to send, if there is one.
    fn push(&mut self, u: &ExportUser<'_>) -> Option<Vec<u8>> {
        (self.render)(u, &mut self.buf);
        self.rows += 1;
        (self.buf.len() >= EXPORT_CHUNK_BYTES).then(|| {
            std::mem::replace(&mut self.buf, Vec::with_capacity(EXPORT_CHUNK_BYTES + 1024))
        })
    }
}

impl SqlStore {
    pub(crate) async fn export_users_impl(
        &self,
        render: ExportRender,
        sink: ExportSink,
    ) -> StoreResult<u64> {
        match self.sqlite_file.clone() {
            Some(path) => tokio::task::spawn_blocking(move || export_sqlite(&path, render, &sink))
                .await
                .map_err(|e| StoreError::Other(format!("the export thread failed: {e}")))?,
            None => self.export_streamed(render, sink).await,
        }
    }

    async fn export_streamed(&self, render: ExportRender, sink: ExportSink) -> StoreResult<u64> {
        let mut chunker = Chunker::new(render);
        let mut rows = sqlx::query(EXPORT_SQL).fetch(&self.pool);
        while let Some(r) = rows.try_next().await.map_err(db_err)? {
            let (uuid, name, email, full_name, status): (String, String, String, String, String) = (
                col(&r, "uuid")?,
                col(&r, "name")?,
                col(&r, "email")?,
                col(&r, "full_name")?,
                col(&r, "status")?,
            );
            let u = ExportUser {
                uuid: &uuid,
                username: &name,
                email: &email,
                full_name: &full_name,
                status: &status,
                cluster_admin: flag(&r, "cluster_admin")?,
                sudo_user: flag(&r, "sudo_user")?,
                work_limit: col(&r, "work_limit")?,
                created_at: col(&r, "created_at")?,
                last_login_at: col(&r, "last_login_at")?,
            };
            if let Some(chunk) = chunker.push(&u)
                && sink.send(Ok(chunk)).await.is_err()
            {
                return Ok(chunker.rows);
            }
        }
        if !chunker.buf.is_empty() {
            let _ = sink.send(Ok(std::mem::take(&mut chunker.buf))).await;
        }
        Ok(chunker.rows)
    }
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    StoreError::Other(format!("sqlite export: {e}"))
}

fn export_sqlite(
    path: &std::path::Path,
    render: ExportRender,
    sink: &ExportSink,
) -> StoreResult<u64> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite_err)?;
    let mut stmt = conn.prepare(EXPORT_SQL).map_err(sqlite_err)?;
    let mut rows = stmt.query([]).map_err(sqlite_err)?;
    let mut chunker = Chunker::new(render);
    while let Some(r) = rows.next().map_err(sqlite_err)? {
        let text = |i: usize| -> StoreResult<&str> {
            r.get_ref(i)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(sqlite_err)
        };
        let u = ExportUser {
            uuid: text(0)?,
            username: text(1)?,
            email: text(2)?,
            full_name: text(3)?,
            status: text(4)?,
            cluster_admin: r.get::<_, i64>(5).map_err(sqlite_err)? != 0,
            sudo_user: r.get::<_, i64>(6).map_err(sqlite_err)? != 0,
            work_limit: r.get(7).map_err(sqlite_err)?,
            created_at: r.get(8).map_err(sqlite_err)?,
            last_login_at: r.get(9).map_err(sqlite_err)?,
        };
        if let Some(chunk) = chunker.push(&u)
            && sink.blocking_send(Ok(chunk)).is_err()
        {
            return Ok(chunker.rows);
        }
    }
    if !chunker.buf.is_empty() {
        let _ = sink.blocking_send(Ok(std::mem::take(&mut chunker.buf)));
    }
    Ok(chunker.rows)
}
