//! Storage quotas for data files: each account's files may take at most its
//! quota (a cluster admin's override, else the cluster's `data_quota_mib`).
//!
//! Design: the node keeps each account's usage in memory once it has summed
//! the account's files (`DataStorage::usage`, on the first write that needs
//! it). A write first reserves what it adds (its size less the size of the
//! file it replaces) under a lock, so parallel writes cannot together pass
//! the quota; a failed write gives its reservation back, a write that shrank
//! a file or a deletion lowers the count, and a recursive deletion makes the
//! node sum the account again next time. Summing holds the account's
//! counting lock, which every counted write and deletion also takes, so none
//! is lost between a sum and its use. Replacements and deletions of one
//! file racing each other can leave the count off by that file's size; the
//! count is summed afresh before any write is refused, so a refusal is never
//! a stale count's.
//!
//! Cluster admins read and set an account's quota (`get_storage_quota`,
//! `set_storage_quota`; the change is audited with its old and new value).

use super::data::{DataEntry, DataService, DataStorage, StorageError};
use crate::RequestCtx;
use crate::error::{Code, Error, LimitInfo, Result};
use crate::model::AccountId;
use crate::policy::{Action, Resource};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// The cluster's default quota unless configured otherwise: 10 GiB.
pub const DEFAULT_DATA_QUOTA_MIB: u64 = 10 * 1024;

const MIB: u64 = 1 << 20;

/// Per-account usage as this node counts it.
#[derive(Default)]
pub(crate) struct Quotas {
    used: Mutex<FxHashMap<AccountId, Usage>>,
}

#[derive(Debug, Default)]
struct Usage {
    /// The bytes of the account's files, as last summed and kept since.
    settled: u64,
    /// Reserved by writes under way.
    pending: u64,
    /// Sum the files again before relying on `settled` (never summed, or
    /// after a recursive deletion, whose bytes are not counted).
    stale: bool,
    /// Held while the files are summed and while a write or deletion is
    /// counted, so that no count lands between a sum and its use (it would
    /// be lost). Reservations do not take it.
    counting: Arc<tokio::sync::Mutex<()>>,
}

/// What a write reserved; settle it with the write's outcome.
#[must_use]
pub(crate) struct Reservation {
    owner: AccountId,
    added: u64,
    /// The size of the file the write replaces.
    replaced: u64,
    new_size: u64,
    counted: bool,
}

impl Quotas {
    /// Reserves room for writing `new_size` bytes at `segments` of `owner`,
    /// whose quota is `quota_bytes` (`None`: unlimited, nothing counted).
    pub(crate) async fn reserve(
        &self,
        storage: &dyn DataStorage,
        owner: AccountId,
        segments: &[String],
        new_size: u64,
        quota_bytes: Option<u64>,
    ) -> std::result::Result<Reservation, Refused> {
        let Some(quota) = quota_bytes else {
            // Not counted while unlimited: summed again if a quota comes back.
            self.recount(owner);
            return Ok(Reservation {
                owner,
                added: 0,
                replaced: 0,
                new_size,
                counted: false,
            });
        };
        let replaced = match storage.stat(owner, segments).await {
            Ok(DataEntry::File { size, .. }) => size,
            _ => 0,
        };
        let added = new_size.saturating_sub(replaced);
        let reservation = Reservation {
            owner,
            added,
            replaced,
            new_size,
            counted: true,
        };
        if self.try_take(owner, added, quota) == Some(true) {
            return Ok(reservation);
        }
        // Unknown, stale or (perhaps) over: sum the account's files, keep
        // the reservations under way, and decide on that.
        let counting = self.counting(owner);
        let summed = {
            let _counting = counting.lock().await;
            let summed = storage
                .usage(owner)
                .await
                .map_err(|e| Refused::Failed(storage_failed(e)))?;
            let mut map = self.used.lock();
            let usage = map.entry(owner).or_default();
            usage.settled = summed;
            usage.stale = false;
            summed
        };
        match self.try_take(owner, added, quota) {
            Some(true) => Ok(reservation),
            _ => Err(Refused::Over {
                used: summed,
                added,
                quota,
            }),
        }
    }

    /// Takes `bytes` of the account's room if its usage is known and they
    /// fit: `Some(true)` taken, `Some(false)` they do not fit, `None` unknown.
    fn try_take(&self, owner: AccountId, bytes: u64, quota: u64) -> Option<bool> {
        let mut map = self.used.lock();
        let usage = map.get_mut(&owner).filter(|u| !u.stale)?;
        if usage
            .settled
            .saturating_add(usage.pending)
            .saturating_add(bytes)
            > quota
        {
            return Some(false);
        }
        usage.pending += bytes;
        Some(true)
    }

    /// The account's counting lock (its entry made, to be summed, if new).
    /// Held across a deletion or a shrinking write and its count, so that a
    /// sum taken in between cannot count it twice.
    pub(crate) fn counting(&self, owner: AccountId) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.used.lock();
        let usage = map.entry(owner).or_insert_with(|| Usage {
            stale: true,
            ..Default::default()
        });
        usage.counting.clone()
    }

    /// Whether the write replaces a larger file (its count goes down: the
    /// write and its settling hold the counting lock).
    pub(crate) fn shrinks(&self, r: &Reservation) -> bool {
        r.counted && r.new_size < r.replaced
    }

    /// Settles a reservation with its write's outcome.
    pub(crate) async fn settle(&self, r: Reservation, written: bool) {
        if !r.counted {
            return;
        }
        let counting = self.counting(r.owner);
        let _counting = counting.lock().await;
        self.settle_counted(r, written);
    }

    /// `settle`, for a caller that holds the account's counting lock.
    pub(crate) fn settle_counted(&self, r: Reservation, written: bool) {
        if !r.counted {
            return;
        }
        let mut map = self.used.lock();
        if let Some(usage) = map.get_mut(&r.owner) {
            usage.pending = usage.pending.saturating_sub(r.added);
            if written {
                usage.settled = usage.settled.saturating_add(r.added);
                if r.new_size < r.replaced {
                    usage.settled = usage.settled.saturating_sub(r.replaced - r.new_size);
                }
            }
        }
    }

    /// A file of `bytes` was deleted (the caller holds the account's
    /// counting lock, taken before the deletion).
    pub(crate) fn deleted(&self, owner: AccountId, bytes: u64) {
        if let Some(usage) = self.used.lock().get_mut(&owner) {
            usage.settled = usage.settled.saturating_sub(bytes);
        }
    }

    /// Files of the account went uncounted (a directory deleted with its
    /// contents): sum them again when next needed.
    pub(crate) fn recount(&self, owner: AccountId) {
        if let Some(usage) = self.used.lock().get_mut(&owner) {
            usage.stale = true;
        }
    }
}

/// Why a write could not reserve room.
pub(crate) enum Refused {
    /// The account's files and this one would pass its quota.
    Over { used: u64, added: u64, quota: u64 },
    /// The account's files could not be counted.
    Failed(Error),
}

impl Refused {
    /// The error for the account named `owner_name`.
    pub(crate) fn into_error(self, owner_name: &str) -> Error {
        let (used, added, quota) = match self {
            Refused::Over { used, added, quota } => (used, added, quota),
            Refused::Failed(e) => return e,
        };
        Error {
            code: Code::QuotaExceeded,
            message: format!(
                "{owner_name}'s data files take {} and this file would add {}, over its storage \
                 quota of {}: delete files, or ask a cluster admin for a larger quota",
                show(used),
                show(added),
                show(quota)
            ),
            limit: Some(Box::new(LimitInfo {
                limit_kind: "storage",
                scope: format!("account:{owner_name}"),
                retry_after: 0,
            })),
        }
    }
}

/// Bytes for people: `1.5 MiB`, `300 KiB`, `12 bytes`.
fn show(bytes: u64) -> String {
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= 1024 {
        format!("{} KiB", bytes.div_ceil(1024))
    } else {
        format!("{bytes} bytes")
    }
}

fn storage_failed(e: StorageError) -> Error {
    Error::new(
        Code::Unavailable,
        format!("could not count the account's data files: {e}"),
    )
}

/// An account's storage quota in bytes: its own (MiB, set by a cluster
/// admin; 0 means unlimited), else the cluster's (`None`: unlimited).
pub(crate) fn quota_bytes(own_mib: Option<i64>, default_mib: Option<u64>) -> Option<u64> {
    match own_mib {
        Some(0) => None,
        Some(mib) => Some(u64::try_from(mib).unwrap_or(0).saturating_mul(MIB)),
        None => default_mib.map(|mib| mib.saturating_mul(MIB)),
    }
}

/// The largest quota a cluster admin may set, in MiB (1 PiB).
const MAX_QUOTA_MIB: i64 = 1 << 30;

/// An account's storage quota as cluster admins see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageQuotaView {
    pub account: String,
    /// The quota in force, in MiB (`None`: unlimited).
    pub quota_mib: Option<u64>,
    /// Whether it is the cluster's default (no quota of its own).
    pub is_default: bool,
    /// The bytes of the account's files, summed now.
    pub used_bytes: u64,
}

impl DataService {
    /// The account's storage quota in bytes (`None`: unlimited).
    pub(super) async fn quota_bytes(&self, owner: AccountId) -> Result<Option<u64>> {
        let own = self.store.get_storage_quota(owner).await?;
        Ok(quota_bytes(own, self.settings.data_quota_mib))
    }

    async fn quota_view(&self, account: &crate::model::AccountRef) -> Result<StorageQuotaView> {
        let own = self.store.get_storage_quota(account.id).await?;
        let used_bytes = self
            .storage()?
            .usage(account.id)
            .await
            .map_err(storage_failed)?;
        Ok(StorageQuotaView {
            account: account.name.clone(),
            quota_mib: quota_bytes(own, self.settings.data_quota_mib).map(|b| b / MIB),
            is_default: own.is_none(),
            used_bytes,
        })
    }

    /// An account's storage quota and usage (cluster admins).
    pub async fn get_storage_quota(
        &self,
        ctx: &RequestCtx,
        name: &str,
    ) -> Result<StorageQuotaView> {
        self.authz
            .authorize(ctx, Action::AdminUsersRead, Resource::Cluster)?;
        let account = self.directory.account(name).await?;
        self.quota_view(&account).await
    }

    /// Sets an account's storage quota in MiB (0: unlimited), or clears it
    /// back to the cluster default with `None` (cluster admins). Files
    /// already stored stay; writes that would pass the new quota are refused.
    pub async fn set_storage_quota(
        &self,
        ctx: &RequestCtx,
        name: &str,
        quota_mib: Option<i64>,
    ) -> Result<StorageQuotaView> {
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        if let Some(q) = quota_mib
            && !(0..=MAX_QUOTA_MIB).contains(&q)
        {
            return Err(Error::invalid(format!(
                "invalid storage_quota_mib {q}: use a whole number of MiB from 0 (unlimited) to \
                 {MAX_QUOTA_MIB}, or null for the cluster default"
            )));
        }
        let account = self.directory.account(name).await?;
        let actor = super::require_user(ctx)?;
        self.store
            .set_storage_quota(&ctx.audit, actor, account.id, quota_mib)
            .await?;
        self.quota_view(&account).await
    }
}
