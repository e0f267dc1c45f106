//! The account export: every live user, oldest first, rendered into chunks
//! and sent through bounded queues (constant memory).
//!
//! Design choice: on a SQLite file the export reads through its own
//! read-only rusqlite connections, borrowing each row's text in place (the
//! pool's async driver copies every value and hands rows between threads one
//! by one, which costs more than the read itself). Two threads each read and
//! render alternate blocks of account ids, and a third forwards their chunks
//! block by block, so the output keeps id order. Their snapshots are opened
//! while this process's write lock is held, so they see the same database,
//! and writers go on meanwhile (WAL). PostgreSQL (and an in-memory SQLite)
//! stream one query through sqlx.

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
        render: MakeExportRender,
        sink: ExportSink,
    ) -> StoreResult<u64> {
        match self.sqlite_file.clone() {
            Some(path) => {
                let conns = self.export_snapshots(&path).await?;
                let renders = (0..conns.len()).map(|_| render()).collect();
                tokio::task::spawn_blocking(move || export_sqlite(conns, renders, &sink))
                    .await
                    .map_err(|e| StoreError::Other(format!("the export thread failed: {e}")))?
            }
            None => self.export_streamed(render, sink).await,
        }
    }

    async fn export_streamed(
        &self,
        render: MakeExportRender,
        sink: ExportSink,
    ) -> StoreResult<u64> {
        let mut chunker = Chunker::new(render());
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

/// Account ids per block: the unit of work of one export thread.
const BLOCK_IDS: i64 = 4_096;
/// Chunks an export thread may queue: more than one block's worth (a block of
/// accounts renders to about 9 chunks), so a thread can finish its block
/// while the merge still forwards the other thread's.
const QUEUE_CHUNKS: usize = 16;
/// Threads reading and rendering blocks (the merge is a third, light one).
const WORKERS: usize = 2;

/// What an export thread sends: rendered rows, then the end of its block.
enum Piece {
    Chunk(Vec<u8>),
    EndOfBlock(u64),
}

/// A read-only connection with its read transaction begun (its snapshot).
fn open_snapshot(path: &std::path::Path) -> StoreResult<rusqlite::Connection> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite_err)?;
    conn.execute_batch("BEGIN; SELECT 1 FROM accounts LIMIT 1")
        .map_err(sqlite_err)?;
    Ok(conn)
}

impl SqlStore {
    /// Opens one snapshot per export thread while holding this process's
    /// write lock, so no write of ours lands between them: every thread sees
    /// the same database.
    pub(crate) async fn export_snapshots(
        &self,
        path: &std::path::Path,
    ) -> StoreResult<Vec<rusqlite::Connection>> {
        let _quiet = self.write_lock.lock().await;
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || (0..WORKERS).map(|_| open_snapshot(&path)).collect())
            .await
            .map_err(|e| StoreError::Other(format!("the export thread failed: {e}")))?
    }
}

/// Reads and renders the blocks `first, first + WORKERS, ...` in order.
fn export_blocks(
    conn: &rusqlite::Connection,
    first: i64,
    (lo, hi): (i64, i64),
    mut render: ExportRender,
    out: &std::sync::mpsc::SyncSender<StoreResult<Piece>>,
) -> StoreResult<()> {
    let sql = format!(
        "{} ",
        EXPORT_SQL.replace("ORDER BY", "AND a.id >= ?1 AND a.id < ?2 ORDER BY")
    );
    let mut stmt = conn.prepare(&sql).map_err(sqlite_err)?;
    let mut block = first;
    let mut buf = Vec::with_capacity(EXPORT_CHUNK_BYTES + 1024);
    while lo + block * BLOCK_IDS <= hi {
        let start = lo + block * BLOCK_IDS;
        let mut rows = stmt.query([start, start + BLOCK_IDS]).map_err(sqlite_err)?;
        let mut n = 0u64;
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
            render(&u, &mut buf);
            n += 1;
            if buf.len() >= EXPORT_CHUNK_BYTES {
                let chunk =
                    std::mem::replace(&mut buf, Vec::with_capacity(EXPORT_CHUNK_BYTES + 1024));
                if out.send(Ok(Piece::Chunk(chunk))).is_err() {
                    return Ok(());
                }
            }
        }
        if !buf.is_empty() {
            let chunk = std::mem::replace(&mut buf, Vec::with_capacity(EXPORT_CHUNK_BYTES + 1024));
            if out.send(Ok(Piece::Chunk(chunk))).is_err() {
                return Ok(());
            }
        }
        if out.send(Ok(Piece::EndOfBlock(n))).is_err() {
            return Ok(());
        }
        block += WORKERS as i64;
    }
    Ok(())
}

/// The export on a SQLite file: `WORKERS` threads read and render
/// alternate blocks of ids from the same snapshot; this thread forwards
/// their chunks block by block, so the output keeps id order. Every queue is
/// bounded, so memory stays constant.
pub(crate) fn export_sqlite(
    conns: Vec<rusqlite::Connection>,
    renders: Vec<ExportRender>,
    sink: &ExportSink,
) -> StoreResult<u64> {
    let (lo, hi): (i64, i64) = conns[0]
        .query_row(
            "SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), -1) FROM accounts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sqlite_err)?;
    if hi < lo {
        return Ok(0);
    }
    let blocks = (hi - lo) / BLOCK_IDS + 1;
    std::thread::scope(|scope| {
        let mut queues = Vec::new();
        for (k, (conn, render)) in conns.into_iter().zip(renders).enumerate() {
            let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_CHUNKS);
            scope.spawn(move || {
                if let Err(e) = export_blocks(&conn, k as i64, (lo, hi), render, &tx) {
                    let _ = tx.send(Err(e));
                }
            });
            queues.push(rx);
        }
        let mut total = 0u64;
        for block in 0..blocks {
            let queue = &queues[(block as usize) % queues.len()];
            loop {
                match queue.recv() {
                    Ok(Ok(Piece::Chunk(chunk))) => {
                        if sink.blocking_send(Ok(chunk)).is_err() {
                            // The reader went away: dropping the queues stops the threads.
                            return Ok(total);
                        }
                    }
                    Ok(Ok(Piece::EndOfBlock(n))) => {
                        total += n;
                        break;
                    }
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(StoreError::Other("an export thread ended early".into())),
                }
            }
        }
        Ok(total)
    })
}
