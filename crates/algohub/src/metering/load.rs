//! The loader side of the usage journal: moving journaled records into the
//! store behind the calls, and loading the journals of stopped processes.

use super::{ATTEMPTS, Journaled, LOAD_LINGER, MAX_LOAD, Progress, commit, journal};
use algohub_core::error::{Code, Error, Result};
use algohub_core::model::UsageRecord;
use algohub_core::store::Store;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// Loads the journals of processes that are gone into the store and removes
/// them, one file at a time (a file holds about `usage_journal_rotate_bytes`).
/// A file with unreadable lines is loaded as far as it can be and set aside
/// for an operator; a file that cannot be read, or of another format
/// version, is logged and left. An error means the store refused records
/// (the file stays for the next try).
pub(super) async fn load_orphans(
    store: &Arc<dyn Store>,
    dir: &Path,
    own: Vec<PathBuf>,
) -> Result<()> {
    let unavailable = |what: String| Error::new(Code::Unavailable, what);
    let dir_owned = dir.to_path_buf();
    let found = tokio::task::spawn_blocking(move || journal::orphans(&dir_owned, &own))
        .await
        .map_err(|e| unavailable(format!("usage journal: {e}")))?
        .map_err(|e| {
            unavailable(format!(
                "cannot list usage journals in {}: {e}",
                dir.display()
            ))
        })?;
    for orphan in found {
        let (orphan, contents) = match tokio::task::spawn_blocking(move || {
            let contents = orphan.read();
            (orphan, contents)
        })
        .await
        {
            Ok((orphan, Ok(contents))) => (orphan, contents),
            Ok((orphan, Err(e))) => {
                tracing::error!(path = %orphan.path.display(), error = %e, "cannot read a usage journal; left for the next try");
                continue;
            }
            Err(e) => return Err(unavailable(format!("usage journal: {e}"))),
        };
        let path = orphan.path.clone();
        if contents.foreign {
            tracing::error!(path = %path.display(), "a usage journal of another format version; left for that version");
            continue;
        }
        for chunk in contents.records.chunks(MAX_LOAD) {
            if !commit(store, chunk, ATTEMPTS).await {
                return Err(unavailable(format!(
                    "cannot store the usage records of journal {}; it is kept for the next try",
                    path.display()
                )));
            }
        }
        let records = contents.records.len();
        if contents.torn {
            tracing::warn!(path = %path.display(),
                "a usage journal ended in a write cut short; its calls got no answer");
        }
        if contents.unreadable > 0 {
            match orphan.set_aside() {
                Ok(to) => {
                    tracing::error!(path = %to.display(), records, lines = contents.unreadable,
                    "a usage journal had unreadable lines: its readable records are stored, the file is kept")
                }
                Err(e) => tracing::error!(path = %path.display(), error = %e,
                    "a usage journal had unreadable lines and could not be set aside"),
            }
            continue;
        }
        tracing::info!(path = %path.display(), records, "loaded the usage journal of a stopped process");
        if let Err(e) = orphan.remove() {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a loaded usage journal");
        }
    }
    Ok(())
}

/// Now and then, loads the journals other processes sharing the directory
/// left behind (nodes that were killed); stops with the journal.
pub(super) async fn rescan(store: Arc<dyn Store>, journal: Weak<Journaled>, every: Duration) {
    let every = every.max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        let Some((dir, own)) = journal.upgrade().map(|j| (j.dir.clone(), j.own_paths())) else {
            return;
        };
        if let Err(e) = load_orphans(&store, &dir, own).await {
            tracing::warn!(error = %e, "could not load a usage journal left behind");
        }
    }
}

/// The loader: moves journaled records into the store in large batches, in
/// order, retrying until the store takes them (they were acknowledged). It
/// stops when the journal is dropped.
pub(super) async fn load_batches(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<UsageRecord>,
    progress: Arc<Progress>,
) {
    let mut pending: Vec<UsageRecord> = Vec::with_capacity(MAX_LOAD);
    loop {
        if rx.recv_many(&mut pending, MAX_LOAD).await == 0 {
            return;
        }
        // Fill the batch: per-transaction costs (commit, WAL frames) are
        // paid per batch, so under load a few milliseconds buy large batches.
        // The loader sleeps through them rather than waiting on the channel,
        // which would wake it (and often a parked worker thread) for nearly
        // every record a call sends.
        if pending.len() < MAX_LOAD {
            tokio::time::sleep(LOAD_LINGER).await;
            while pending.len() < MAX_LOAD {
                match rx.try_recv() {
                    Ok(record) => pending.push(record),
                    Err(_) => break,
                }
            }
        }
        // Shared with the store's writer (which may run on another thread)
        // rather than copied; kept here for retries.
        let batch: Arc<[UsageRecord]> = std::mem::take(&mut pending).into();
        let mut attempt: u32 = 0;
        loop {
            match store.record_usage_shared(batch.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    metrics::counter!("algohub_metering_errors_total").increment(1);
                    tracing::warn!(error = %e, attempt, records = batch.len(),
                        "could not load journaled usage records into the store; retrying");
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(8))).await;
                    attempt += 1;
                }
            }
        }
        let n = batch.len() as u64;
        progress.stored.send_modify(|stored| *stored += n);
        pending.reserve(MAX_LOAD);
    }
}
