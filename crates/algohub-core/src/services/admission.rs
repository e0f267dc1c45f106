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
use crate::model::{AccountId, CallSettings, SlotRequest};
use crate::store::Store;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// The cluster default work limit.
pub const DEFAULT_WORK_LIMIT: i64 = 80;

/// Call slots held in a database several nodes share (PostgreSQL). The node
/// runs this machinery (`algohub::slots`): it decides queued requests in
/// batches, one transaction per batch, and renews the leases of the slots it
/// holds in the background.
pub trait SharedSlots: Send + Sync {
    /// Queues a request for a slot; the answer comes on the receiver:
    /// `Some(true)` granted, `Some(false)` refused (the account is at its
    /// limit cluster-wide), `None` the store failed. `None` here: the node
    /// is shutting down. Requests and releases are decided in queue order.
    fn acquire(&self, request: SlotRequest) -> Option<oneshot::Receiver<Option<bool>>>;

    /// Queues the release of the slot of call `id` (after its acquire).
    fn release(&self, id: String);

    /// Store transactions run for slots so far.
    fn transactions(&self) -> u64;
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
    shared: Option<Arc<dyn SharedSlots>>,
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
        if let (Some(id), Some(shared)) = (self.shared_id.take(), &self.admission.shared) {
            // Decided after the matching acquire (one queue).
            shared.release(id);
        }
    }
}

impl Admission {
    /// A node-local admission, or a shared one when `shared` is given.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        default_limit: i64,
        shared: Option<Arc<dyn SharedSlots>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            default_limit,
            running: Default::default(),
            settings: Default::default(),
            names: Default::default(),
            generation: AtomicU64::new(0),
            shared,
        })
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
        if let Some(shared) = &self.shared {
            let req = SlotRequest {
                id: request_id.to_string(),
                account_id: account,
                limit,
            };
            let Some(granted) = shared.acquire(req) else {
                return Err(Error::new(
                    crate::Code::Unavailable,
                    "call admission is shutting down",
                ));
            };
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
        self.shared.as_ref().map_or(0, |s| s.transactions())
    }

    /// Calls running on this node for `account` (for tests and metrics).
    pub fn running_calls(&self, account: AccountId) -> i64 {
        self.running.lock().get(&account).copied().unwrap_or(0)
    }
}
