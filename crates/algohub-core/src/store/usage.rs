//! The store's port for call governance: concurrency slots, usage records,
//! rollups, the ledger, storage quotas.

use super::*;

/// Call governance: concurrency slots, usage records, rollups and the ledger.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// The account's work limit and billing setting.
    async fn get_call_settings(&self, account: AccountId) -> StoreResult<CallSettings>;
    /// Sets or clears the account's work limit; records an event and a policy
    /// change (so every node drops its cached limit).
    async fn set_work_limit(
        &self,
        ctx: &AuditContext,
        actor: AccountId,
        account: AccountId,
        limit: Option<i64>,
    ) -> StoreResult<Written<()>>;
    /// Grants credits to an account (negative: takes them back): a ledger
    /// posting against the cluster's account, recorded with the balance
    /// before and after. Returns the new balance.
    async fn grant_credits(
        &self,
        ctx: &AuditContext,
        actor: AccountId,
        account: AccountId,
        microcredits: i64,
        reason: &str,
    ) -> StoreResult<crate::model::Balance>;
    /// The account's own storage quota for data files (MiB), if a cluster
    /// admin set one.
    async fn get_storage_quota(&self, account: AccountId) -> StoreResult<Option<i64>>;
    /// Sets or clears the account's storage quota (MiB); records an event
    /// with the old and the new value. Returns the old value.
    async fn set_storage_quota(
        &self,
        ctx: &AuditContext,
        actor: AccountId,
        account: AccountId,
        quota_mib: Option<i64>,
    ) -> StoreResult<Option<i64>>;
    /// In one transaction: frees the slots named in `release`, then grants
    /// each request a slot if its account holds fewer than `limit` live slots
    /// (expired ones do not count), atomically across every node sharing the
    /// database. Granted slots live until `lease_until` unless renewed. A
    /// request whose id is also in `release` (its call ended before the batch
    /// ran) is decided like the others but keeps no slot.
    async fn acquire_call_slots(
        &self,
        node: &str,
        requests: &[SlotRequest],
        release: &[String],
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Vec<bool>>;
    /// Extends every slot this node holds; deletes expired slots of any node.
    async fn renew_call_slots(
        &self,
        node: &str,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<()>;
    /// Whether the slot `id` is held (not freed, lease not run out): whether
    /// that call still runs on some node.
    async fn call_slot_held(&self, id: &str, now: Millis) -> StoreResult<bool>;
    /// Writes records in one transaction with their rollups and ledger
    /// postings. A record whose request id is already stored is skipped
    /// (so a retried batch never counts twice).
    async fn record_usage(&self, records: &[UsageRecord]) -> StoreResult<()>;
    /// `record_usage` of a batch the caller shares instead of lending (the
    /// metering loader's large batches): a store that writes on another
    /// thread takes the batch along instead of copying it.
    async fn record_usage_shared(&self, records: std::sync::Arc<[UsageRecord]>) -> StoreResult<()> {
        self.record_usage(&records).await
    }
    async fn get_usage_record(&self, request_id: &str) -> StoreResult<Option<UsageRecord>>;
    /// Records started in `[from, to)`, oldest first (then by request id),
    /// skipping `offset` of them; `callers` empty means every caller.
    async fn list_usage_records(
        &self,
        from: Millis,
        to: Millis,
        callers: &[AccountId],
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<UsageRecord>>;
    /// A report from the daily rollups.
    async fn usage_report(&self, q: &ReportQuery) -> StoreResult<Vec<ReportRow>>;
    async fn balance(&self, account: AccountId) -> StoreResult<Balance>;
    /// The sum of every ledger entry (zero when the books balance).
    async fn ledger_total(&self) -> StoreResult<i64>;
}
