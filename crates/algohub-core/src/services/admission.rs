//! Admission: the per-account concurrent-call limit ("work limit").
//!
//! Design: every node counts its own running calls per account in memory, so a
//! call over the limit on this node is refused without I/O. When nodes share a
//! PostgreSQL database the count must hold cluster-wide, so each admitted call
//! also holds a slot row (see `UsageStore::acquire_call_slots`). Slot requests
//! and releases from concurrent calls go through one background task that
//! decides a whole batch in one transaction, so under load a call costs a
//! fraction of a round trip. A slot is freed when its `SlotGuard` drops: when
//! the call finishes, fails, times out, or its request future is dropped
//! (client disconnect). Slots carry a lease that this node renews every third
//! of the lease; a killed node's slots expire within one lease (30 s default).

use crate::error::{Error, LimitInfo, Result};
use crate::model::{AccountId, CallSettings, SlotRequest, now_millis};
use crate::store::Store;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The cluster default work limit.
pub const DEFAULT_WORK_LIMIT: i64 = 80;
/// Requests decided in one transaction at most.
const MAX_BATCH: usize = 512;

enum SlotOp {
    /// The reply is `None` when the store failed.
    Acquire(SlotRequest, oneshot::Sender<Option<bool>>),
    Release(String),
}

/// Admits calls within their account's work limit (see the module header).
pub struct Admission {
    store: Arc<dyn Store>,
    default_limit: i64,
    /// Running calls on this node, per account.
    running: Mutex<FxHashMap<AccountId, i64>>,
    /// Account settings as stored.
    settings: AccountCache<CallSettings>,
    /// Account names for refusals (a burst of 429s reads no store).
    names: AccountCache<Arc<str>>,
    /// Moves on whenever an account changes (see `AccountCache`).
    generation: AtomicU64,
    /// Set when the database is shared by several nodes.
    shared: Option<mpsc::UnboundedSender<SlotOp>>,
    /// Store transactions the batcher ran (acquires and releases).
    batches: AtomicU64,
}

/// A held slot; dropping it frees the slot.
pub struct SlotGuard {
    admission: Arc<Admission>,
    account: AccountId,
    /// The slot row's id, when the slot is held in the shared database.
    shared_id: Option<String>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        {
            let mut running = self.admission.running.lock();
            if let Some(n) = running.get_mut(&self.account) {
                *n -= 1;
                if *n <= 0 {
                    running.remove(&self.account);
                }
            }
        }
        if let (Some(id), Some(tx)) = (self.shared_id.take(), &self.admission.shared) {
            // The batcher processes this after the matching acquire (one queue).
            let _ = tx.send(SlotOp::Release(id));
        }
    }
}

impl Admission {
    /// A node-local admission, or a shared one whose batcher and lease renewer
    /// run as background tasks (they stop when the admission is dropped).
    pub(crate) fn new(
        store: Arc<dyn Store>,
        default_limit: i64,
        shared_lease: Option<Duration>,
    ) -> Arc<Self> {
        let admission = |shared| Self {
            store: store.clone(),
            default_limit,
            running: Default::default(),
            settings: Default::default(),
            names: Default::default(),
            generation: AtomicU64::new(0),
            shared,
            batches: AtomicU64::new(0),
        };
        let Some(lease) = shared_lease else {
            return Arc::new(admission(None));
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let admission = Arc::new(admission(Some(tx)));
        let node = format!("node-{}", uuid::Uuid::new_v4());
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        tokio::spawn(run_batcher(
            store.clone(),
            node.clone(),
            lease_ms,
            rx,
            Arc::downgrade(&admission),
        ));
        tokio::spawn(renew_leases(store, node, lease, Arc::downgrade(&admission)));
        admission
    }

    pub(crate) fn forget_limits(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.settings.clear();
        self.names.clear();
    }
}

/// Accounts a cache holds at most (it starts over past that).
const CACHED_ACCOUNTS: usize = 100_000;

/// Per-account values read from the store, kept until an account changes.
/// `Admission::forget_limits` moves the generation on before it clears, and
/// `put` keeps a value only while the generation is the one read before the
/// store was asked: a read that raced a change never caches what it read.
struct AccountCache<V> {
    map: Mutex<FxHashMap<AccountId, V>>,
}

impl<V> Default for AccountCache<V> {
    fn default() -> Self {
        Self {
            map: Default::default(),
        }
    }
}

impl<V: Clone> AccountCache<V> {
    fn get(&self, account: AccountId) -> Option<V> {
        self.map.lock().get(&account).cloned()
    }

    fn put(&self, account: AccountId, value: V, read_at: u64, generation: &AtomicU64) {
        let mut map = self.map.lock();
        if generation.load(Ordering::Acquire) == read_at {
            if map.len() > CACHED_ACCOUNTS {
                map.clear();
            }
            map.insert(account, value);
        }
    }

    fn clear(&self) {
        self.map.lock().clear();
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
    admission: Weak<Admission>,
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
        if let Some(a) = admission.upgrade() {
            a.batches.fetch_add(1, Ordering::Relaxed);
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
    admission: Weak<Admission>,
) {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    let mut tick = tokio::time::interval(lease / 3);
    loop {
        tick.tick().await;
        if admission.upgrade().is_none() {
            return;
        }
        let now = now_millis();
        if let Err(e) = store.renew_call_slots(&node, now, now + lease_ms).await {
            tracing::warn!(error = %e, "could not renew call slot leases");
        }
    }
}

impl Admission {
    /// `cache`'s value for the account, else what `load` reads from the
    /// store (kept unless an account changed meanwhile).
    async fn cached<V: Clone, E, F: Future<Output = std::result::Result<V, E>>>(
        &self,
        cache: &AccountCache<V>,
        account: AccountId,
        load: impl FnOnce() -> F,
    ) -> std::result::Result<V, E> {
        if let Some(v) = cache.get(account) {
            return Ok(v);
        }
        let generation = &self.generation;
        let read_at = generation.load(Ordering::Acquire);
        let v = load().await?;
        cache.put(account, v.clone(), read_at, generation);
        Ok(v)
    }

    /// The account's call settings, cached until the account changes.
    pub(crate) async fn call_settings(&self, account: AccountId) -> Result<CallSettings> {
        let load = || self.store.get_call_settings(account);
        Ok(self.cached(&self.settings, account, load).await?)
    }

    /// The account's name, cached like its settings (its id if the store
    /// cannot say).
    async fn account_name(&self, account: AccountId) -> Arc<str> {
        let load = || async {
            let stored = self.store.get_account(account).await?;
            Ok::<_, crate::store::StoreError>(Arc::<str>::from(stored.name))
        };
        self.cached(&self.names, account, load)
            .await
            .unwrap_or_else(|_| account.to_string().into())
    }

    /// The account's work limit (its own, else the cluster default).
    pub async fn work_limit(&self, account: AccountId) -> Result<i64> {
        let own = self.call_settings(account).await?.work_limit;
        Ok(own.unwrap_or(self.default_limit))
    }

    /// The 429 for a call over `account`'s work limit.
    async fn over_limit(&self, account: AccountId, limit: i64) -> Error {
        let name = self.account_name(account).await;
        Error::limited(
            format!(
                "{name} already has {limit} calls running, its concurrent call limit; retry when one finishes"
            ),
            LimitInfo {
                limit_kind: "concurrency",
                scope: format!("account:{name}"),
                retry_after: 1,
            },
        )
    }

    /// Takes one of `account`'s concurrency slots for the call `request_id`,
    /// or refuses with a 429 naming the limit. (Calls are admitted by
    /// `prepare_call`; this is public for the benchmark.)
    pub async fn admit(
        self: &Arc<Self>,
        account: AccountId,
        request_id: &str,
    ) -> Result<SlotGuard> {
        let limit = self.work_limit(account).await?;
        let admitted = {
            let mut running = self.running.lock();
            let n = running.entry(account).or_insert(0);
            let ok = *n < limit;
            if ok {
                *n += 1;
            }
            ok
        };
        if !admitted {
            return Err(self.over_limit(account, limit).await);
        }
        let mut guard = SlotGuard {
            admission: self.clone(),
            account,
            shared_id: None,
        };
        if let Some(tx) = &self.shared {
            let (reply, granted) = oneshot::channel();
            let req = SlotRequest {
                id: request_id.to_string(),
                account_id: account,
                limit,
            };
            if tx.send(SlotOp::Acquire(req, reply)).is_err() {
                return Err(Error::new(
                    crate::Code::Unavailable,
                    "call admission is shutting down",
                ));
            }
            // From here on, dropping the guard queues a release of this id.
            guard.shared_id = Some(request_id.to_string());
            match granted.await {
                Ok(Some(true)) => {}
                Ok(Some(false)) => {
                    guard.shared_id = None;
                    drop(guard);
                    return Err(self.over_limit(account, limit).await);
                }
                Ok(None) | Err(_) => {
                    return Err(Error::new(
                        crate::Code::Unavailable,
                        "could not reserve a call slot; try again",
                    ));
                }
            }
        }
        Ok(guard)
    }

    /// Whether call slots are held in a database several nodes share.
    pub(crate) fn slots_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Store transactions run for call slots so far (0 on a node-local
    /// admission): with the number of admitted calls, what slots cost.
    pub fn transactions(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Calls running on this node for `account` (for tests and metrics).
    pub fn running_calls(&self, account: AccountId) -> i64 {
        self.running.lock().get(&account).copied().unwrap_or(0)
    }
}
