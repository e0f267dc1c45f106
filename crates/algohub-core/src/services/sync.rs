//! Keeping the policy index current: after every local write, and every few
//! hundred milliseconds for writes made by other nodes sharing the database.

use super::Admission;
use super::call_cache::CallCache;
use crate::error::Result;
use crate::model::AccountId;
use crate::policy::PolicyEngine;
use crate::store::{ChangeKind, Store, StoreResult, Written};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Store reads for unknown credentials that may run at once.
const UNKNOWN_LOOKUPS: usize = 4;
/// Credentials remembered as unknown at most (the set is emptied when full).
const UNKNOWN_REMEMBERED: usize = 4096;

/// What bounds the store reads that unknown credentials cause
/// (`IndexSync::look_up_unknown_credential`).
pub(crate) struct UnknownCredentials {
    lookups: tokio::sync::Semaphore,
    /// The first 128 bits of the digests of credentials found unknown.
    unknown: parking_lot::Mutex<rustc_hash::FxHashSet<u128>>,
}

impl Default for UnknownCredentials {
    fn default() -> Self {
        Self {
            lookups: tokio::sync::Semaphore::new(UNKNOWN_LOOKUPS),
            unknown: Default::default(),
        }
    }
}

impl UnknownCredentials {
    fn known_unknown(&self, tag: u128) -> bool {
        self.unknown.lock().contains(&tag)
    }

    fn remember(&self, tag: u128) {
        let mut unknown = self.unknown.lock();
        if unknown.len() >= UNKNOWN_REMEMBERED {
            unknown.clear();
        }
        unknown.insert(tag);
    }
}

/// The least time between the starts of two catch-ups for refused calls: a
/// small fraction of the poll (250 ms by default), so a flood of refusals
/// costs at most 20 reads of the change feed a second.
const CATCH_UP_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// What bounds the store reads that refused calls cause
/// (`IndexSync::catch_up_before_refusing`): one catch-up at a time, starting no
/// sooner than `CATCH_UP_INTERVAL` after the one before, and a refusal that
/// waited while one began takes that one's answer instead of reading again.
#[derive(Default)]
pub(crate) struct CatchUps {
    /// When the last catch-up began; held while one runs, and by the next
    /// while it waits for its turn.
    last: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    /// Refusals that asked for a catch-up.
    asked: AtomicU64,
    /// Catch-ups that read the store for them.
    reads: AtomicU64,
}

impl CatchUps {
    /// Runs `read` for a refusal seen at `seen`, unless a catch-up that began
    /// after that (so it saw every change committed before the refusal) has
    /// finished meanwhile.
    async fn run<F: std::future::Future<Output = ()>>(
        &self,
        seen: tokio::time::Instant,
        read: impl FnOnce() -> F,
    ) {
        self.asked.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last.lock().await;
        if last.is_some_and(|began| began >= seen) {
            return;
        }
        if let Some(began) = *last {
            tokio::time::sleep_until(began + CATCH_UP_INTERVAL).await;
        }
        *last = Some(tokio::time::Instant::now());
        self.reads.fetch_add(1, Ordering::Relaxed);
        read().await;
    }
}

/// The first 128 bits of a hex SHA-256 digest.
fn credential_tag(digest: &str) -> Option<u128> {
    u128::from_str_radix(digest.get(..32)?, 16).ok()
}

/// Keeps this node's policy index (and what is cached from the same
/// records: call targets, work limits) current with the store.
pub struct IndexSync {
    store: Arc<dyn Store>,
    policy: Arc<PolicyEngine>,
    call_cache: Arc<CallCache>,
    admission: Arc<Admission>,
    sync_lock: tokio::sync::Mutex<()>,
    /// Bounds the store reads that credentials the index does not know cause.
    unknown_credentials: UnknownCredentials,
    /// Bounds the store reads that refused calls cause.
    catch_ups: CatchUps,
}

impl IndexSync {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        policy: Arc<PolicyEngine>,
        call_cache: Arc<CallCache>,
        admission: Arc<Admission>,
    ) -> Self {
        Self {
            store,
            policy,
            call_cache,
            admission,
            sync_lock: Default::default(),
            unknown_credentials: Default::default(),
            catch_ups: Default::default(),
        }
    }

    /// Applies every store change after the index's sequence number. Serialized,
    /// so an older reload never overwrites a newer one.
    pub async fn sync(&self) -> Result<usize> {
        let _guard = self.sync_lock.lock().await;
        let mut applied = 0;
        loop {
            let changes = self
                .store
                .policy_changes_since(self.policy.seq(), 1000)
                .await?;
            if changes.is_empty() {
                return Ok(applied);
            }
            for c in &changes {
                let subject = self.store.load_policy_subject(c.kind, c.id).await?;
                self.policy.apply(c.kind, c.id, &subject);
                match c.kind {
                    ChangeKind::Algorithm => self.call_cache.invalidate_algorithm(c.id),
                    ChangeKind::User | ChangeKind::Org => {
                        self.call_cache.clear();
                        self.admission.forget_limits();
                    }
                    _ => {}
                }
                self.policy.set_seq(c.seq);
                applied += 1;
            }
        }
    }

    /// Brings the index up to date if the store holds changes it has not
    /// applied yet: one indexed read of the change feed when there are none
    /// (the usual case), without waiting for the sync lock. For what a
    /// request names that the index does not know (yet): a credential or an
    /// algorithm made or moved a moment ago through another node or the
    /// command line, which the poller would apply only at its next round.
    /// `Ok(true)` when changes were applied.
    pub(crate) async fn catch_up(&self) -> Result<bool> {
        let pending = self
            .store
            .policy_changes_since(self.policy.seq(), 1)
            .await?;
        if pending.is_empty() {
            return Ok(false);
        }
        self.sync().await?;
        Ok(true)
    }

    /// Before a call is refused because its cached target lacks the
    /// algorithm or version it names (published a moment ago through another
    /// node?): catches up, within the bounds of `CatchUps`, so that refusals
    /// cannot make the store reads unbounded, whoever sends them. `true` when
    /// the index changed since, and the call should be resolved again.
    pub(crate) async fn catch_up_before_refusing(&self) -> bool {
        let seen = tokio::time::Instant::now();
        let seq = self.policy.seq();
        self.catch_ups
            .run(seen, || async {
                if let Err(e) = self.catch_up().await {
                    metrics::counter!("algohub_store_errors_total").increment(1);
                    tracing::warn!(error = %e, "could not catch up with the store before refusing a call");
                }
            })
            .await;
        self.policy.seq() != seq
    }

    /// Refusals that asked to catch up with the store before being given
    /// (`catch_up_before_refusing`), and the reads of the store made for them.
    pub fn refusal_catch_ups(&self) -> (u64, u64) {
        (
            self.catch_ups.asked.load(Ordering::Relaxed),
            self.catch_ups.reads.load(Ordering::Relaxed),
        )
    }

    /// A resource read from the store whose owner the index does not know as
    /// the store does (`known` is what the index says): the index catches up
    /// before the decisions about it. A failure is logged; the decisions then
    /// go by the index as it is.
    pub(crate) async fn catch_up_with(&self, known: Option<AccountId>, owner: AccountId) {
        if known == Some(owner) {
            return;
        }
        if let Err(e) = self.catch_up().await {
            metrics::counter!("algohub_store_errors_total").increment(1);
            tracing::warn!(error = %e, "could not catch up with the store for an unknown resource");
        }
    }

    /// Looks a credential the index does not know up again after catching up
    /// with the store (`look` asks the index by digest). What a flood of
    /// made-up credentials can cost is bounded: at most `UNKNOWN_LOOKUPS`
    /// such store reads run at once (beyond that the credential is refused
    /// as unknown without one, and the poller will bring a real one soon),
    /// and one found unknown is remembered (credentials are random secrets
    /// the hub generates, so one that no live key or session had cannot
    /// become valid later), so presenting it again reads nothing.
    pub(crate) async fn look_up_unknown_credential<T>(
        &self,
        digest: &str,
        look: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let tag = credential_tag(digest)?;
        if self.unknown_credentials.known_unknown(tag) {
            return None;
        }
        let permit = self.unknown_credentials.lookups.try_acquire().ok()?;
        match self.catch_up().await {
            Ok(_) => {}
            Err(e) => {
                metrics::counter!("algohub_store_errors_total").increment(1);
                tracing::warn!(error = %e, "could not look up an unknown credential in the store");
                return None;
            }
        }
        drop(permit);
        let found = look(digest);
        if found.is_none() {
            self.unknown_credentials.remember(tag);
        }
        found
    }

    /// Runs a store write and returns its value once this node's index has taken
    /// the policy changes the write returned (a write that changed none
    /// costs nothing here). Refreshing reads the change feed up to and past
    /// the write's own changes, so changes other nodes committed before are
    /// applied in order too. A failure to refresh must not turn a committed
    /// write into an error: it is logged, and the poller applies the changes
    /// on its next round.
    pub(crate) async fn applied<T>(
        &self,
        write: impl std::future::Future<Output = StoreResult<Written<T>>>,
    ) -> StoreResult<T> {
        let (value, changes) = write.await?.into_parts();
        if !changes.is_empty()
            && let Err(e) = self.sync().await
        {
            metrics::counter!("algohub_store_errors_total").increment(1);
            tracing::warn!(error = %e, "policy sync after a write failed; the poller will retry");
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_credentials_are_remembered_within_a_bound() {
        let digest = crate::secrets::digest_hex("sim0123456789abcdefghijklmno");
        let tag = credential_tag(&digest).unwrap();
        assert_eq!(
            credential_tag("not hex at all, and long enough for 32"),
            None
        );
        assert_eq!(credential_tag("abc"), None);
        let u = UnknownCredentials::default();
        assert!(!u.known_unknown(tag));
        u.remember(tag);
        assert!(u.known_unknown(tag));
        for i in 0..UNKNOWN_REMEMBERED as u128 {
            u.remember(i);
        }
        assert!(u.unknown.lock().len() <= UNKNOWN_REMEMBERED, "bounded");
        assert!(!u.known_unknown(tag), "emptied when full");
        assert_eq!(u.lookups.available_permits(), UNKNOWN_LOOKUPS);
    }

    /// Many refusals at once while a catch-up is in flight cost two reads:
    /// the one in flight, and one after it for those seen after it began. A
    /// later refusal reads again, but not sooner than the interval after the
    /// read before.
    #[test]
    fn refusals_share_catch_ups() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let gate = std::sync::Arc::new(CatchUps::default());
            let release = std::sync::Arc::new(tokio::sync::Notify::new());
            let reads = |gate: &CatchUps| gate.reads.load(Ordering::Relaxed);
            let refuse = |gate: &std::sync::Arc<CatchUps>| {
                let (gate, release) = (gate.clone(), release.clone());
                tokio::spawn(async move {
                    gate.run(tokio::time::Instant::now(), || release.notified())
                        .await;
                })
            };
            let mut tasks = vec![refuse(&gate)];
            while reads(&gate) < 1 {
                tokio::task::yield_now().await;
            }
            // The others are seen after the first read began.
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            for _ in 1..20 {
                tasks.push(refuse(&gate));
            }
            while gate.asked.load(Ordering::Relaxed) < 20 {
                tokio::task::yield_now().await;
            }
            assert_eq!(reads(&gate), 1, "one in flight");
            release.notify_one();
            while reads(&gate) < 2 {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            release.notify_one();
            for t in tasks {
                t.await.unwrap();
            }
            let second = gate.last.lock().await.unwrap();
            assert_eq!(reads(&gate), 2, "the others took the second read's answer");

            gate.run(tokio::time::Instant::now(), || async {}).await;
            assert_eq!(reads(&gate), 3, "a later refusal reads");
            let third = gate.last.lock().await.unwrap();
            assert!(
                third >= second + CATCH_UP_INTERVAL,
                "not sooner than the interval"
            );
        });
    }
}
