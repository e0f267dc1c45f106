//! The credit floor: a paid call is admitted only if its payer's balance,
//! less the prices of the paid calls this node admitted whose usage records
//! are not stored yet, stays at or above the cluster's
//! `credit_floor_microcredits` after the call's price.
//!
//! Design: per payer, an async lock guards reading the stored balance,
//! checking it and holding the price. A held price is released once the
//! call's usage record is in the store (after the call is metered, the
//! node's usage writer is settled), under the same lock; so every admitted
//! price is counted in the stored balance or in the holds (for a moment in
//! both, which errs on the strict side), and parallel calls cannot pass the
//! floor together. A call that fails pays nothing; its hold goes all the
//! same. Several nodes each hold their own calls: a payer calling through
//! several nodes at once can pass the floor by what the other nodes admitted
//! and had not stored yet.

use crate::error::{Error, LimitInfo, Result};
use crate::model::AccountId;
use crate::services::Metering;
use crate::store::Store;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Per payer: the prices held for its calls in flight.
pub(crate) struct CreditHolds {
    store: Arc<dyn Store>,
    metering: Arc<Metering>,
    floor: i64,
    held: Mutex<FxHashMap<AccountId, Arc<tokio::sync::Mutex<i64>>>>,
}

/// A held price; dropping it releases the price once the call's usage
/// record is stored.
pub(crate) struct CreditHold {
    holds: Arc<CreditHolds>,
    payer: AccountId,
    price: i64,
}

impl CreditHolds {
    pub(crate) fn new(store: Arc<dyn Store>, metering: Arc<Metering>, floor: i64) -> Arc<Self> {
        Arc::new(Self {
            store,
            metering,
            floor,
            held: Mutex::default(),
        })
    }

    fn cell(&self, payer: AccountId) -> Arc<tokio::sync::Mutex<i64>> {
        self.held.lock().entry(payer).or_default().clone()
    }

    /// Holds `price` for a call `payer` pays, or refuses it with
    /// `limit_kind: "credits"` when the balance would go below the floor.
    pub(crate) async fn hold(self: &Arc<Self>, payer: AccountId, price: i64) -> Result<CreditHold> {
        let cell = self.cell(payer);
        let mut held = cell.lock().await;
        let stored = self.store.balance(payer).await?.balance;
        let left = stored
            .checked_sub(*held)
            .and_then(|b| b.checked_sub(price))
            .ok_or_else(|| {
                Error::new(
                    crate::Code::Unavailable,
                    "the payer's balance cannot be computed in 64 bits; the call is refused",
                )
            })?;
        if left < self.floor {
            drop(held);
            let name = match self.store.get_account(payer).await {
                Ok(a) => a.name,
                Err(_) => payer.to_string(),
            };
            return Err(Error::limited(
                format!(
                    "{name}'s balance is {stored} microcredits ({} held for calls under way) and \
                     this call costs {price}; balances may not go below {} microcredits: ask a \
                     cluster admin for credits",
                    *cell.lock().await,
                    self.floor
                ),
                LimitInfo {
                    limit_kind: "credits",
                    scope: format!("account:{name}"),
                    retry_after: 0,
                },
            ));
        }
        *held += price;
        Ok(CreditHold {
            holds: self.clone(),
            payer,
            price,
        })
    }
}

impl Drop for CreditHold {
    fn drop(&mut self) {
        let (holds, payer, price) = (self.holds.clone(), self.payer, self.price);
        let release = async move {
            // Whatever the settling says, the hold must go: a store that
            // failed leaves the record unstored, and the call unpaid.
            let _ = holds.metering.settle_usage().await;
            let cell = holds.cell(payer);
            *cell.lock().await -= price;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(release);
        }
    }
}
