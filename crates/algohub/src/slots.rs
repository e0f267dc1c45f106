//! Call slots in a database several nodes share (PostgreSQL): the machinery
//! behind `algohub_core::services::SharedSlots`.
//!
//! Design: slot requests and releases from concurrent calls go through one
//! background task that decides a whole batch in one transaction
//! (`UsageStore::acquire_call_slots`), so under load a call costs a fraction
//! of a round trip. Slots carry a lease that this node renews every third of
//! the lease; a killed node's slots expire within one lease (30 s default).
//! Both tasks stop when the `SlotBatcher` is dropped.

use algohub_core::model::{SlotRequest, now_millis};
use algohub_core::services::SharedSlots;
use algohub_core::store::Store;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Requests decided in one transaction at most.
const MAX_BATCH: usize = 512;

enum SlotOp {
    /// The reply is `None` when the store failed.
    Acquire(SlotRequest, oneshot::Sender<Option<bool>>),
    Release(String),
}

/// This node's queue of slot requests and releases (see the module header).
pub struct SlotBatcher {
    tx: mpsc::UnboundedSender<SlotOp>,
    /// Store transactions the batcher ran (acquires and releases); the
    /// tasks hold it weakly, and stop once it is gone.
    batches: Arc<AtomicU64>,
}

impl SlotBatcher {
    /// Starts the batcher and the lease renewer as background tasks, with a
    /// node id of its own.
    pub fn start(store: Arc<dyn Store>, lease: Duration) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let batches = Arc::new(AtomicU64::new(0));
        let node = format!("node-{}", uuid::Uuid::new_v4());
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        tokio::spawn(run_batcher(
            store.clone(),
            node.clone(),
            lease_ms,
            rx,
            Arc::downgrade(&batches),
        ));
        tokio::spawn(renew_leases(store, node, lease, Arc::downgrade(&batches)));
        Arc::new(Self { tx, batches })
    }
}

impl SharedSlots for SlotBatcher {
    fn acquire(&self, request: SlotRequest) -> Option<oneshot::Receiver<Option<bool>>> {
        let (reply, granted) = oneshot::channel();
        self.tx.send(SlotOp::Acquire(request, reply)).ok()?;
        Some(granted)
    }

    fn release(&self, id: String) {
        let _ = self.tx.send(SlotOp::Release(id));
    }

    fn transactions(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }
}

/// Decides queued slot requests in batches, one transaction per batch: the
/// batch's releases first (so its requests can take the slots just freed),
/// then its requests. A release always follows its acquire in the queue; if
/// both are in one batch, the request is decided and keeps no slot.
async fn run_batcher(
    store: Arc<dyn Store>,
    node: String,
    lease_ms: i64,
    mut rx: mpsc::UnboundedReceiver<SlotOp>,
    batches: Weak<AtomicU64>,
) {
    let mut ops = Vec::with_capacity(MAX_BATCH);
    // Slots whose release failed: retried with every later batch (and at
    // least every second), never forgotten while this node lives, since the
    // node keeps renewing every slot row it holds.
    let mut unreleased: Vec<String> = Vec::new();
    loop {
        let received = if unreleased.is_empty() {
            rx.recv_many(&mut ops, MAX_BATCH).await
        } else {
            match tokio::time::timeout(Duration::from_secs(1), rx.recv_many(&mut ops, MAX_BATCH))
                .await
            {
                Ok(n) => n,
                Err(_) => usize::MAX, // timed out: retry the releases
            }
        };
        if received == 0 {
            return;
        }
        let mut requests = Vec::new();
        let mut waiters = Vec::new();
        let mut releases = std::mem::take(&mut unreleased);
        for op in ops.drain(..) {
            match op {
                SlotOp::Acquire(req, tx) => {
                    requests.push(req);
                    waiters.push(tx);
                }
                SlotOp::Release(id) => releases.push(id),
            }
        }
        if requests.is_empty() && releases.is_empty() {
            continue;
        }
        if let Some(batches) = batches.upgrade() {
            batches.fetch_add(1, Ordering::Relaxed);
        }
        let now = now_millis();
        let granted: Vec<Option<bool>> = match store
            .acquire_call_slots(&node, &requests, &releases, now, now + lease_ms)
            .await
        {
            Ok(g) => g.into_iter().map(Some).collect(),
            Err(e) => {
                tracing::warn!(error = %e, requests = requests.len(), releases = releases.len(),
                    "could not update call slots; refusing the requests and retrying the releases");
                unreleased = releases;
                vec![None; requests.len()]
            }
        };
        // A waiter that went away still owns a guard whose release is queued.
        for (tx, ok) in waiters.into_iter().zip(granted) {
            let _ = tx.send(ok);
        }
    }
}

async fn renew_leases(
    store: Arc<dyn Store>,
    node: String,
    lease: Duration,
    alive: Weak<AtomicU64>,
) {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let mut tick = tokio::time::interval(lease / 3);
    loop {
        tick.tick().await;
        if alive.upgrade().is_none() {
            return;
        }
        let now = now_millis();
        if let Err(e) = store.renew_call_slots(&node, now, now + lease_ms).await {
            tracing::warn!(error = %e, "could not renew call slot leases");
        }
    }
}
