//! Usage metering with group commit.
//!
//! Design: a call's usage record is durable before its response goes out, so
//! a response the client received always has its record, even if the process
//! is killed right after. Where durability costs a disk wait or a transaction,
//! calls hand their records to one background writer, which takes everything
//! queued while its previous write ran and makes it durable as one batch
//! (group commit), so metering costs one wait per batch, not per call.
//!
//! Where a batch becomes durable:
//! - With a usage journal (the server's default), in a node-local append-only
//!   file (`journal.rs`). A call appends its own record there (a `write` to
//!   the page cache costs less than a hop to a writer task and back); only
//!   when each write waits for the disk (`metering_fsync`) do calls share
//!   writes through the writer task. A loader task then moves the
//!   journaled records into the store in large batches behind the calls, and
//!   reads of usage first wait until it has caught up (`settle_usage`), so a
//!   caller always reads its own calls. Journals a killed process left behind
//!   are loaded at the next start, before the node serves.
//! - Without one, in the store: one transaction per batch.
//!
//! Records are keyed by request id and inserted with `ON CONFLICT DO NOTHING`,
//! so a retried batch or a journal loaded twice never counts a call twice.

use super::Hub;
use super::journal::{self, Journal};
use crate::error::{Code, Error, Result};
use crate::model::UsageRecord;
use crate::store::Store;
use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// Records committed in one transaction at most.
const MAX_BATCH: usize = 1000;
/// Records the loader moves from the journal into the store in one transaction at most.
const MAX_LOAD: usize = 4000;
/// Attempts per batch before its calls are answered with an error.
const ATTEMPTS: u32 = 4;
/// How long the loader waits for more records to fill a batch (a usage read
/// may wait this much longer for its own calls).
const LOAD_LINGER: Duration = Duration::from_millis(5);
/// A journal whose records are all in the store is emptied once it is this big.
const CLEAR_BYTES: u64 = 8 << 20;
/// How long a usage read waits for the journaled records to reach the store.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

type Ack = oneshot::Sender<bool>;

pub(crate) struct Meter {
    /// The writer task: store commits without a journal; with one, the
    /// batches of cancelled calls, and every batch when writes wait for the disk.
    tx: mpsc::UnboundedSender<(UsageRecord, Ack)>,
    journal: Option<Arc<Journaled>>,
}

/// The usage journal of this node, with where its records stand.
struct Journaled {
    file: Mutex<Journal>,
    /// Each journal write waits for the disk: calls then share writes
    /// through the writer task (group commit) instead of writing their own.
    fsync: bool,
    /// Cleared when the journal failed: records go to the store from then on
    /// (until the next start).
    usable: AtomicBool,
    /// Journaled records, for the loader.
    load: mpsc::UnboundedSender<UsageRecord>,
    /// Records journaled since start (counted under the file's lock)...
    journaled: AtomicU64,
    /// ... and of those, stored by the loader (in order).
    stored: watch::Sender<u64>,
}

impl Journaled {
    /// Appends records and hands them to the loader, all under the file's
    /// lock; gives the records back if the journal cannot take them.
    fn append(
        &self,
        records: Vec<UsageRecord>,
    ) -> std::result::Result<(), (std::io::Error, Vec<UsageRecord>)> {
        if !self.usable.load(Ordering::Relaxed) {
            return Err((std::io::Error::other("the journal failed earlier"), records));
        }
        let mut file = self.file.lock();
        let journaled = self.journaled.load(Ordering::Relaxed);
        let loaded = file.len() >= CLEAR_BYTES && *self.stored.borrow() == journaled;
        if let Err(e) = if loaded { file.clear() } else { Ok(()) } {
            self.usable.store(false, Ordering::Relaxed);
            return Err((e, records));
        }
        if let Err(e) = file.append(&records) {
            // Whatever failed (a full disk, say), the file may end in part
            // of a line: give the journal up rather than write after it.
            self.usable.store(false, Ordering::Relaxed);
            return Err((e, records));
        }
        self.journaled
            .fetch_add(records.len() as u64, Ordering::Release);
        for r in records {
            let _ = self.load.send(r);
        }
        Ok(())
    }

    /// `append` off the async workers when it waits for the disk.
    async fn append_async(
        self: &Arc<Self>,
        records: Vec<UsageRecord>,
    ) -> std::result::Result<(), (std::io::Error, Vec<UsageRecord>)> {
        if !self.fsync {
            return self.append(records);
        }
        let this = self.clone();
        match tokio::task::spawn_blocking(move || this.append(records)).await {
            Ok(done) => done,
            // The blocking pool is shutting down: the records went with it.
            Err(e) => Err((std::io::Error::other(e.to_string()), Vec::new())),
        }
    }
}

impl Meter {
    /// Starts the writer task (it stops when the meter is dropped), journaling
    /// into `journal_dir` when given: first the journals of processes that are
    /// gone are loaded into the store.
    pub(crate) async fn start(
        store: Arc<dyn Store>,
        journal_dir: Option<&Path>,
        fsync: bool,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let Some(dir) = journal_dir else {
            tokio::spawn(write_batches(store, rx, None));
            return Ok(Self { tx, journal: None });
        };
        load_orphans(&store, dir).await?;
        let file = Journal::create(dir, fsync).map_err(|e| {
            Error::new(
                Code::Unavailable,
                format!("cannot create a usage journal in {}: {e}", dir.display()),
            )
        })?;
        let (load, load_rx) = mpsc::unbounded_channel();
        let journal = Arc::new(Journaled {
            file: Mutex::new(file),
            fsync,
            usable: AtomicBool::new(true),
            load,
            journaled: AtomicU64::new(0),
            stored: watch::Sender::new(0),
        });
        tokio::spawn(load_batches(store.clone(), load_rx, journal.clone()));
        tokio::spawn(write_batches(store, rx, Some(journal.clone())));
        Ok(Self {
            tx,
            journal: Some(journal),
        })
    }
}

/// Loads the journals of processes that are gone into the store and removes them.
async fn load_orphans(store: &Arc<dyn Store>, dir: &Path) -> Result<()> {
    let dir_owned = dir.to_path_buf();
    let found = tokio::task::spawn_blocking(move || journal::orphans(&dir_owned))
        .await
        .map_err(|e| Error::new(Code::Unavailable, format!("usage journal: {e}")))?
        .map_err(|e| {
            Error::new(
                Code::Unavailable,
                format!("cannot read usage journals in {}: {e}", dir.display()),
            )
        })?;
    for orphan in found {
        if orphan.skipped > 0 {
            tracing::warn!(path = %orphan.path.display(), lines = orphan.skipped,
                "skipped unreadable lines of a usage journal (a write cut short; its calls got no answer)");
        }
        for chunk in orphan.records.chunks(MAX_LOAD) {
            if !commit(store, chunk, ATTEMPTS).await {
                return Err(Error::new(
                    Code::Unavailable,
                    format!(
                        "cannot store the usage records of journal {}; it is kept for the next start",
                        orphan.path.display()
                    ),
                ));
            }
        }
        tracing::info!(path = %orphan.path.display(), records = orphan.records.len(),
            "loaded the usage journal of a stopped process");
        let path = orphan.path.clone();
        if let Err(e) = orphan.remove() {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a loaded usage journal");
        }
    }
    Ok(())
}

/// The loader: moves journaled records into the store in large batches, in
/// order, retrying until the store takes them (they were acknowledged).
async fn load_batches(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<UsageRecord>,
    journal: Arc<Journaled>,
) {
    let mut pending: Vec<UsageRecord> = Vec::with_capacity(MAX_LOAD);
    loop {
        if rx.recv_many(&mut pending, MAX_LOAD).await == 0 {
            return;
        }
        // Fill the batch: per-transaction costs (commit, WAL frames) are
        // paid per batch, so under load a few milliseconds buy large batches.
        let linger = tokio::time::Instant::now() + LOAD_LINGER;
        while pending.len() < MAX_LOAD {
            let room = MAX_LOAD - pending.len();
            match tokio::time::timeout_at(linger, rx.recv_many(&mut pending, room)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let mut attempt: u32 = 0;
        loop {
            match store.record_usage(&pending).await {
                Ok(()) => break,
                Err(e) => {
                    metrics::counter!("algohub_metering_errors_total").increment(1);
                    tracing::warn!(error = %e, attempt, records = pending.len(),
                        "could not load journaled usage records into the store; retrying");
                    tokio::time::sleep(Duration::from_millis(20 << attempt.min(8))).await;
                    attempt += 1;
                }
            }
        }
        let n = pending.len() as u64;
        journal.stored.send_modify(|stored| *stored += n);
        pending.clear();
    }
}

/// The writer task: appends each batch to the journal when there is one
/// (one write per batch: group commit), else or if the journal cannot take
/// it, commits it to the store; then answers its calls.
async fn write_batches(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<(UsageRecord, Ack)>,
    journal: Option<Arc<Journaled>>,
) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut queued, MAX_BATCH).await > 0 {
        let (mut records, acks): (Vec<_>, Vec<_>) = queued.drain(..).unzip();
        metrics::histogram!("algohub_metering_batch_size").record(records.len() as f64);
        if let Some(journal) = &journal {
            match journal.append_async(records).await {
                Ok(()) => {
                    for ack in acks {
                        let _ = ack.send(true);
                    }
                    continue;
                }
                Err((e, back)) => {
                    journal_failed(&e);
                    records = back;
                }
            }
        }
        if records.len() != acks.len() {
            // Lost with a blocking task at shutdown: the calls get an error.
            for ack in acks {
                let _ = ack.send(false);
            }
            continue;
        }
        commit_batch(&store, records, acks).await;
    }
}

fn journal_failed(e: &std::io::Error) {
    metrics::counter!("algohub_metering_errors_total").increment(1);
    tracing::error!(error = %e, "cannot write the usage journal; records go to the store");
}

/// Commits a batch to the store and answers its calls.
async fn commit_batch(store: &Arc<dyn Store>, records: Vec<UsageRecord>, acks: Vec<Ack>) {
    if commit(store, &records, ATTEMPTS).await {
        for ack in acks {
            let _ = ack.send(true);
        }
        return;
    }
    // The batch keeps failing: commit its records one by one, so a record
    // the store refuses fails only its own call.
    for (record, ack) in records.into_iter().zip(acks) {
        let ok = commit(store, std::slice::from_ref(&record), 2).await;
        if !ok {
            tracing::error!(request_id = %record.request_id, "usage record could not be stored");
        }
        let _ = ack.send(ok);
    }
}

/// Commits records, retrying with a growing pause; whether it succeeded.
async fn commit(store: &Arc<dyn Store>, records: &[UsageRecord], attempts: u32) -> bool {
    for attempt in 0..attempts {
        match store.record_usage(records).await {
            Ok(()) => return true,
            Err(e) => {
                metrics::counter!("algohub_metering_errors_total").increment(1);
                tracing::warn!(error = %e, attempt, records = records.len(), "could not commit usage records");
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
        }
    }
    false
}

/// The usage record of a running call. If the call's future is dropped before
/// it is metered (the client went away, so the run was cancelled), the record
/// is queued as a cancelled call without waiting for its commit.
pub(crate) struct Unmetered<'a> {
    pub(crate) hub: &'a Hub,
    pub(crate) record: Option<UsageRecord>,
    pub(crate) started: std::time::Instant,
    /// Set once the run ended and the record holds its outcome: a drop after
    /// that queues the record as it is, not as cancelled.
    pub(crate) ran: bool,
}

impl Drop for Unmetered<'_> {
    fn drop(&mut self) {
        let (Some(mut record), Some(meter)) = (self.record.take(), &self.hub.meter) else {
            return;
        };
        if !self.ran {
            record.status = crate::model::UsageStatus::Error;
            record.error_code = Some("cancelled".into());
            record.royalty_microcredits = 0;
            record.duration_us =
                i64::try_from(self.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        }
        let (ack, _) = oneshot::channel();
        let _ = meter.tx.send((record, ack));
    }
}

impl Hub {
    /// Commits a usage record (batched with concurrent calls' records) and
    /// returns once it is durable; an error means it could not be stored.
    pub async fn meter(&self, record: UsageRecord) -> Result<()> {
        let Some(meter) = &self.meter else {
            return Ok(());
        };
        let failed = || {
            Error::new(
                Code::MeteringFailed,
                "the call could not be metered, so its result is withheld; try again",
            )
        };
        let mut record = record;
        if let Some(journal) = meter.journal.as_ref().filter(|j| !j.fsync) {
            // A write to the page cache costs less than a hop to the writer
            // task and back, so the call writes its own record.
            match journal.append(vec![record]) {
                Ok(()) => return Ok(()),
                Err((e, mut back)) => {
                    journal_failed(&e);
                    record = back.pop().ok_or_else(failed)?;
                }
            }
        }
        let (ack, committed) = oneshot::channel();
        meter.tx.send((record, ack)).map_err(|_| failed())?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(failed()),
        }
    }

    /// Waits until every usage record acknowledged so far is in the store
    /// (with a journal, the loader may be a batch behind); usage reads call
    /// it first, so a caller always reads its own calls.
    pub async fn settle_usage(&self) -> Result<()> {
        let Some(journal) = self.meter.as_ref().and_then(|m| m.journal.as_ref()) else {
            return Ok(());
        };
        let target = journal.journaled.load(Ordering::Acquire);
        let mut stored = journal.stored.subscribe();
        match tokio::time::timeout(SETTLE_WAIT, stored.wait_for(|n| *n >= target)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::new(
                Code::Unavailable,
                "recent usage records are still on their way to the store; try again shortly",
            )),
        }
    }
}
