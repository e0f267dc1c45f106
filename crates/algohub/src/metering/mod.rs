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
//!   file (`journal.rs`). A call appends its own record there (a copy into the
//!   mapped file costs less than a hop to a writer task and back); only
//!   when each write waits for the disk (`metering_fsync`) do calls share
//!   writes through the writer task. A loader task then moves the
//!   journaled records into the store in large batches behind the calls, and
//!   reads of usage first wait until it has caught up (`UsageSink::settle`), so a
//!   caller reads its own calls made through this node. Files rotate and go
//!   once stored. Journals a killed process left behind are loaded at the next
//!   start (before the node serves) and now and then
//!   (`usage_journal_rescan`) by running nodes that share the directory. While the store is unreachable, at most
//!   `metering_max_backlog` records wait; then calls commit to the store
//!   directly (and are refused while it stays down).
//! - Without one, in the store: one transaction per batch.
//!
//! Records are keyed by request id and inserted with `ON CONFLICT DO NOTHING`,
//! so a retried batch or a journal loaded twice never counts a call twice.

mod journal;
mod load;

use algohub_core::error::{Code, Error, Result};
use algohub_core::model::UsageRecord;
use algohub_core::services::{Settings, UsageSink};
use algohub_core::store::Store;
use journal::Journal;
use load::{load_batches, load_orphans, rescan};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
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

/// How long a usage read waits for the journaled records to reach the store.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

type Ack = oneshot::Sender<bool>;
/// What the writer task gets: a record, who waits for it, and whether it may
/// go to the journal (not if the journal already refused it).
type Queued = (UsageRecord, Ack, bool);

/// The journal takes records.
const OPEN: u8 = 0;
/// The journal failed (a write or a new file): records go to the store.
const FAILED: u8 = 1;
/// Shut down with everything stored: records go to the store.
const RETIRED: u8 = 2;

/// This node's usage writer (see the module header).
pub struct Meter {
    /// The writer task: store commits without a journal; with one, the
    /// batches of cancelled calls, and every batch when writes wait for the disk.
    tx: mpsc::UnboundedSender<Queued>,
    journal: Option<Arc<Journaled>>,
}

/// The usage journal of this node, with where its records stand.
struct Journaled {
    dir: PathBuf,
    /// A file this big is sealed and a new one started; a sealed file is
    /// removed once all its records are in the store.
    rotate_bytes: u64,
    files: Mutex<Files>,
    /// Each journal write waits for the disk: calls then share writes
    /// through the writer task (group commit) instead of writing their own.
    fsync: bool,
    /// `OPEN`, `FAILED` or `RETIRED`: once not open, records go to the
    /// store (until the next start).
    state: AtomicU8,
    /// Journaled records, for the loader.
    load: mpsc::UnboundedSender<UsageRecord>,
    progress: Arc<Progress>,
    /// Journaled records the store has not taken yet beyond which records
    /// go to the store directly (`Settings::metering_max_backlog`).
    max_backlog: u64,
    /// Whether the backlog is over its cap (logged when it gets there).
    backlogged: AtomicBool,
    /// Whether the loader was found gone (logged once).
    loader_gone: AtomicBool,
}

/// The file being written, and sealed ones with the count of records
/// journaled when each was sealed (all its records are in the store once
/// `stored` reaches that count).
struct Files {
    current: Journal,
    sealed: VecDeque<(Journal, u64)>,
    /// The size at which to start a new file (raised after a failed try, so
    /// a failure is not retried on every append).
    rotate_at: u64,
}

/// Records counted since start: journaled (counted under the files' lock,
/// in the order the loader receives them), and of those, stored.
struct Progress {
    journaled: AtomicU64,
    stored: watch::Sender<u64>,
}

impl Journaled {
    /// Appends records and hands them to the loader, all under the files'
    /// lock; gives the records back if the journal cannot take them.
    fn append(
        &self,
        records: Vec<UsageRecord>,
    ) -> std::result::Result<(), (std::io::Error, Vec<UsageRecord>)> {
        let lines = match journal::encode(&records) {
            Ok(lines) => lines,
            Err(e) => return Err((e, records)),
        };
        let mut files = self.files.lock();
        if self.state.load(Ordering::Relaxed) != OPEN {
            return Err((std::io::Error::other("the journal is off"), records));
        }
        let journaled = self.progress.journaled.load(Ordering::Relaxed);
        let stored = *self.progress.stored.borrow();
        if journaled - stored >= self.max_backlog {
            if !self.backlogged.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    waiting = journaled - stored,
                    "usage records wait for the store: new records go to the store directly"
                );
            }
            return Err((std::io::Error::other("usage journal backlog"), records));
        }
        self.backlogged.store(false, Ordering::Relaxed);
        if files.current.len() >= files.rotate_at {
            match Journal::create(&self.dir, self.fsync) {
                Ok(next) => {
                    let full = std::mem::replace(&mut files.current, next);
                    files.sealed.push_back((full, journaled));
                    files.rotate_at = self.rotate_bytes;
                }
                Err(e) => {
                    files.rotate_at = files.current.len() + self.rotate_bytes;
                    tracing::warn!(error = %e, "could not start a new usage journal file; the current one grows");
                }
            }
        }
        while files
            .sealed
            .front()
            .is_some_and(|(_, upto)| stored >= *upto)
        {
            if let Some((done, _)) = files.sealed.pop_front()
                && let Err(e) = done.remove()
            {
                tracing::warn!(error = %e, journal = ?done, "could not remove a loaded usage journal");
            }
        }
        if let Err(e) = files.current.append_encoded(&lines) {
            // Whatever failed (a full disk, say), the file may end in part
            // of a line: give the journal up rather than write after it.
            self.state.store(FAILED, Ordering::Relaxed);
            tracing::error!(error = %e, journal = ?files.current,
                "cannot write the usage journal; records go to the store until the next start");
            return Err((e, records));
        }
        self.progress
            .journaled
            .fetch_add(records.len() as u64, Ordering::Release);
        for r in records {
            if self.load.send(r).is_err() && !self.loader_gone.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    "the usage loader stopped; journaled records wait for the next start"
                );
            }
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

    /// Counts records the journal refused (not after retiring at shutdown;
    /// `append` logs why).
    fn refused(&self) {
        if self.state.load(Ordering::Relaxed) != RETIRED {
            metrics::counter!("algohub_metering_errors_total").increment(1);
        }
    }

    /// The paths of this node's own files (never loaded as orphans).
    fn own_paths(&self) -> Vec<PathBuf> {
        let files = self.files.lock();
        files
            .sealed
            .iter()
            .map(|(j, _)| j)
            .chain([&files.current])
            .map(|j| j.path().to_path_buf())
            .collect()
    }

    /// At shutdown, once everything journaled is stored: removes the files
    /// and turns the journal off (a record that still comes goes to the store).
    fn retire(&self) {
        let files = self.files.lock();
        let journaled = self.progress.journaled.load(Ordering::Relaxed);
        if *self.progress.stored.borrow() != journaled {
            return;
        }
        self.state.store(RETIRED, Ordering::Relaxed);
        for j in files.sealed.iter().map(|(j, _)| j).chain([&files.current]) {
            if let Err(e) = j.remove() {
                tracing::warn!(error = %e, journal = ?j, "could not remove a usage journal at shutdown");
            }
        }
    }
}

impl Meter {
    /// Starts the writer task (it stops when the meter is dropped), journaling
    /// into `journal_dir` when given: first the journals of processes that are
    /// gone are loaded into the store.
    pub async fn start(store: Arc<dyn Store>, settings: &Settings) -> Result<Self> {
        let (journal_dir, fsync) = (
            settings.usage_journal.as_deref(),
            settings.usage_journal_fsync,
        );
        let (tx, rx) = mpsc::unbounded_channel();
        let Some(dir) = journal_dir else {
            tokio::spawn(write_batches(store, rx, None));
            return Ok(Self { tx, journal: None });
        };
        load_orphans(&store, dir, Vec::new()).await?;
        let file = Journal::create(dir, fsync).map_err(|e| {
            Error::new(
                Code::Unavailable,
                format!("cannot create a usage journal in {}: {e}", dir.display()),
            )
        })?;
        let (load, load_rx) = mpsc::unbounded_channel();
        let progress = Arc::new(Progress {
            journaled: AtomicU64::new(0),
            stored: watch::Sender::new(0),
        });
        let journal = Arc::new(Journaled {
            dir: dir.to_path_buf(),
            rotate_bytes: settings.usage_journal_rotate_bytes.max(1),
            files: Mutex::new(Files {
                current: file,
                sealed: VecDeque::new(),
                rotate_at: settings.usage_journal_rotate_bytes.max(1),
            }),
            fsync,
            state: AtomicU8::new(OPEN),
            load,
            progress: progress.clone(),
            max_backlog: settings.metering_max_backlog,
            backlogged: AtomicBool::new(false),
            loader_gone: AtomicBool::new(false),
        });
        tokio::spawn(load_batches(store.clone(), load_rx, progress));
        tokio::spawn(rescan(
            store.clone(),
            Arc::downgrade(&journal),
            settings.usage_journal_rescan,
        ));
        tokio::spawn(write_batches(store, rx, Some(journal.clone())));
        Ok(Self {
            tx,
            journal: Some(journal),
        })
    }
}

/// The writer task: appends each batch to the journal when there is one
/// (one write per batch: group commit), else or if the journal cannot take
/// it, commits it to the store; then answers its calls.
async fn write_batches(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    journal: Option<Arc<Journaled>>,
) {
    let mut queued = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut queued, MAX_BATCH).await > 0 {
        metrics::histogram!("algohub_metering_batch_size").record(queued.len() as f64);
        // Records the journal refused already go straight to the store.
        let (direct, journalable): (Vec<Queued>, Vec<Queued>) = queued
            .drain(..)
            .partition(|(_, _, journal_ok)| !journal_ok || journal.is_none());
        let (mut records, mut acks): (Vec<_>, Vec<_>) =
            direct.into_iter().map(|(r, a, _)| (r, a)).unzip();
        if let Some(journal) = &journal
            && !journalable.is_empty()
        {
            let (batch, batch_acks): (Vec<_>, Vec<_>) =
                journalable.into_iter().map(|(r, a, _)| (r, a)).unzip();
            match journal.append_async(batch).await {
                Ok(()) => {
                    for ack in batch_acks {
                        let _ = ack.send(true);
                    }
                }
                Err((_, back)) if back.len() == batch_acks.len() => {
                    journal.refused();
                    records.extend(back);
                    acks.extend(batch_acks);
                }
                Err(_) => {
                    // Lost with a blocking task at shutdown: the calls get an error.
                    for ack in batch_acks {
                        let _ = ack.send(false);
                    }
                }
            }
        }
        if !records.is_empty() {
            commit_batch(&store, records, acks).await;
        }
    }
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

#[async_trait::async_trait]
impl UsageSink for Meter {
    /// Commits a usage record (batched with concurrent calls' records) and
    /// returns once it is durable; an error means it could not be stored.
    async fn record(&self, record: UsageRecord) -> Result<()> {
        let meter = self;
        let failed = || {
            Error::new(
                Code::MeteringFailed,
                "the call could not be metered, so its result is withheld; try again",
            )
        };
        let mut record = record;
        let mut journal_ok = true;
        if let Some(journal) = meter.journal.as_ref().filter(|j| !j.fsync) {
            // A copy into the mapped journal costs less than a hop to the writer
            // task and back, so the call writes its own record.
            match journal.append(vec![record]) {
                Ok(()) => return Ok(()),
                Err((_, mut back)) => {
                    journal.refused();
                    record = back.pop().ok_or_else(failed)?;
                    journal_ok = false;
                }
            }
        }
        let (ack, committed) = oneshot::channel();
        meter
            .tx
            .send((record, ack, journal_ok))
            .map_err(|_| failed())?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(failed()),
        }
    }

    /// Waits until every usage record this node acknowledged so far is in
    /// the store (with a journal, the loader may be a batch behind); usage
    /// reads call it first, so a caller reads its own calls made through this
    /// node (another node's are there once its loader stored them, normally
    /// within milliseconds).
    async fn settle(&self) -> Result<()> {
        let Some(journal) = self.journal.as_ref() else {
            return Ok(());
        };
        let target = journal.progress.journaled.load(Ordering::Acquire);
        let mut stored = journal.progress.stored.subscribe();
        match tokio::time::timeout(SETTLE_WAIT, stored.wait_for(|n| *n >= target)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Error::new(
                Code::Unavailable,
                "recent usage records are still on their way to the store; try again shortly",
            )),
        }
    }

    /// At shutdown, after `settle`: removes the usage journal if all
    /// of it is in the store (so the next start has nothing to load); records
    /// that still come go to the store directly.
    fn retire(&self) {
        if let Some(journal) = self.journal.as_ref() {
            journal.retire();
        }
    }

    fn record_detached(&self, record: UsageRecord) {
        let (ack, _) = oneshot::channel();
        let _ = self.tx.send((record, ack, true));
    }
}
