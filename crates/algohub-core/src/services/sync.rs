//! Keeping the policy index current: after every local write, and every few
//! hundred milliseconds for writes made by other nodes sharing the database.

use super::Hub;
use crate::error::Result;
use crate::store::ChangeKind;

impl Hub {
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

    /// Brings this node's index up to date after a committed write. A failure
    /// here must not turn a committed write into an error: it is logged and the
    /// background poller applies the change on its next round.
    pub(crate) async fn after_write(&self) {
        if let Err(e) = self.sync().await {
            metrics::counter!("algohub_store_errors_total").increment(1);
            tracing::warn!(error = %e, "policy sync after a write failed; the poller will retry");
        }
    }

    /// Notes that a key was used; written to the store in batches.
    pub fn record_key_use(&self, key: crate::model::KeyId) {
        self.key_uses
            .lock()
            .insert(key, crate::policy::coarse_now_millis());
    }

    pub async fn flush_key_uses(&self) -> Result<()> {
        let used: Vec<_> = self.key_uses.lock().drain().collect();
        if !used.is_empty() {
            self.store.touch_keys(&used).await?;
        }
        Ok(())
    }

    /// Housekeeping: expires invitations and grants, then syncs.
    /// Its audit records say `auth_method: system` (no request, no person).
    pub async fn run_maintenance(&self) -> Result<()> {
        let ctx = crate::audit::AuditContext {
            auth_method: "system".into(),
            ..Default::default()
        };
        crate::audit::AUDIT_CONTEXT
            .scope(ctx, async {
                let now = crate::model::now_millis();
                self.store.expire_invitations(now).await?;
                self.store.expire_grants(now).await?;
                self.store.expire_sessions(now).await?;
                self.store.expire_super_powers(now).await?;
                self.flush_key_uses().await?;
                self.after_write().await;
                Ok(())
            })
            .await
    }
}
