//! Reading and verifying the audit trail (cluster admins), and recording the
//! privileged acts that change nothing: refused admin requests.

use crate::RequestCtx;
use crate::audit::{AuditBreak, AuditQuery, AuditRecord, ChainVerifier};
use crate::error::Result;
use crate::policy::{Action, Resource, Rule};
use crate::store::Store;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Records verified per store read.
const VERIFY_PAGE: i64 = 5_000;
/// Refused admin requests recorded per second on one node at most; beyond
/// that they are counted (`algohub_audit_denied_dropped_total`) and logged,
/// so a flood of refused requests cannot flood the trail; maintenance puts
/// how many were dropped on record (`authz.denied_dropped`).
const DENIED_PER_SECOND: u64 = 50;

/// The per-second budget of refused-request records: (second, used), and
/// how many were dropped since the last summary.
#[derive(Default)]
pub(crate) struct DeniedBudget(parking_lot::Mutex<(i64, u64)>, AtomicU64);

impl DeniedBudget {
    fn take(&self) -> bool {
        self.take_at(crate::model::now_millis() / 1000)
    }

    fn take_at(&self, second: i64) -> bool {
        let mut b = self.0.lock();
        if b.0 != second {
            *b = (second, 0);
        }
        b.1 += 1;
        let within = b.1 <= DENIED_PER_SECOND;
        if !within {
            self.1.fetch_add(1, Ordering::Relaxed);
        }
        within
    }

    /// The records dropped since the last call.
    fn take_dropped(&self) -> u64 {
        self.1.swap(0, Ordering::Relaxed)
    }
}

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, Serialize)]
pub struct AuditVerdict {
    pub ok: bool,
    /// Hashed records that matched before the first break (or all of them).
    pub checked: u64,
    pub first_bad: Option<AuditBreak>,
}

super::service! {
    /// Reading and verifying the audit trail (cluster admins).
    pub struct AuditService { store, authz, directory, recorder }
}
impl AuditService {
    /// Puts on record how many refusal records the per-second budget
    /// dropped since the last summary, if any (maintenance calls it).
    pub async fn summarize_dropped_denials(
        &self,
        audit: &crate::audit::AuditContext,
    ) -> Result<()> {
        let dropped = self.recorder.denied_budget.take_dropped();
        if dropped == 0 {
            return Ok(());
        }
        let recorded = self
            .store
            .record_audit(
                audit,
                crate::audit::EventKind::AuthzDeniedDropped,
                None,
                "cluster",
                serde_json::json!({ "dropped": dropped, "per_second": DENIED_PER_SECOND }),
                "ok",
            )
            .await;
        if let Err(e) = recorded {
            // Counted again next time rather than lost.
            self.recorder
                .denied_budget
                .1
                .fetch_add(dropped, Ordering::Relaxed);
            return Err(e.into());
        }
        Ok(())
    }

    /// Puts a request made with an impersonation session on record, with
    /// what became of it (see `AuditRecorder::audit_impersonated_request`).
    pub fn record_impersonated_request(
        &self,
        ctx: &RequestCtx,
        method: &str,
        path: &str,
        outcome: &'static str,
    ) {
        self.recorder
            .audit_impersonated_request(ctx, method, path, outcome);
    }

    /// Audit records matching the query (cluster admins).
    pub async fn audit_log(&self, ctx: &RequestCtx, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        self.authz
            .authorize(ctx, Action::AdminUsersRead, Resource::Cluster)?;
        Ok(self.store.list_audit(q).await?)
    }

    /// The id of an account named in an audit query (cluster admins).
    pub async fn account_id_for_admin(
        &self,
        ctx: &RequestCtx,
        name: &str,
    ) -> Result<crate::model::AccountId> {
        self.authz
            .authorize(ctx, Action::AdminUsersRead, Resource::Cluster)?;
        Ok(self.directory.account(name).await?.id)
    }

    /// Names of the given accounts (deleted ones included), for display.
    pub async fn account_names(
        &self,
        ids: impl IntoIterator<Item = crate::model::AccountId>,
    ) -> Result<std::collections::HashMap<crate::model::AccountId, String>> {
        self.directory.account_names(ids).await
    }

    /// Verifies the hash chain (cluster admins).
    pub async fn verify_audit(&self, ctx: &RequestCtx) -> Result<AuditVerdict> {
        self.authz
            .authorize(ctx, Action::AdminUsersRead, Resource::Cluster)?;
        self.verify_audit_unchecked().await
    }

    /// For `algohub audit verify` (direct database access).
    pub async fn verify_audit_unchecked(&self) -> Result<AuditVerdict> {
        let mut v = ChainVerifier::default();
        let mut after_id = 0;
        loop {
            let page = self
                .store
                .list_audit(&AuditQuery {
                    after_id,
                    limit: VERIFY_PAGE,
                    ..Default::default()
                })
                .await?;
            for r in &page {
                if let Err(b) = v.check(r) {
                    return Ok(AuditVerdict {
                        ok: false,
                        checked: v.checked,
                        first_bad: Some(b),
                    });
                }
            }
            match page.last() {
                Some(last) if page.len() as i64 == VERIFY_PAGE => after_id = last.id,
                _ => {
                    return Ok(AuditVerdict {
                        ok: true,
                        checked: v.checked,
                        first_bad: None,
                    });
                }
            }
        }
    }
}

/// Records the privileged acts that change nothing (refused admin requests,
/// reads only super powers allowed, requests under impersonation), in the
/// background with the request's audit context.
#[derive(Clone)]
pub(crate) struct AuditRecorder {
    store: Arc<dyn Store>,
    denied_budget: Arc<DeniedBudget>,
}

impl AuditRecorder {
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            denied_budget: Default::default(),
        }
    }

    /// Records a refused request on an admin route (in the background, with
    /// the request's audit context; a failure to record is logged).
    pub(crate) fn audit_denied(&self, ctx: &RequestCtx, action: Action, rule: Rule) {
        if !self.denied_budget.take() {
            metrics::counter!("algohub_audit_denied_dropped_total").increment(1);
            tracing::warn!(
                action = action.as_str(),
                "refused admin request not recorded: over the per-second budget"
            );
            return;
        }
        let detail = serde_json::json!({"action": action.as_str(), "rule": rule.as_str()});
        self.audit_in_background(
            ctx,
            crate::audit::EventKind::AuthzDenied,
            "cluster".into(),
            detail,
            "denied",
        );
    }

    /// Records a read that only the caller's super powers allowed.
    pub(crate) fn audit_elevated_read(&self, ctx: &RequestCtx, action: Action, resource: Resource) {
        let target = match resource {
            Resource::Cluster => "cluster".to_string(),
            Resource::User(id) => format!("user:{id}"),
            Resource::Org(id) | Resource::Account(id) => format!("account:{id}"),
            Resource::App(id) => format!("app:{id}"),
            Resource::Team(id) => format!("team:{id}"),
            Resource::Algorithm(id) => format!("algorithm:{id}"),
        };
        let detail = serde_json::json!({"action": action.as_str()});
        self.audit_in_background(
            ctx,
            crate::audit::EventKind::SuperPowersRead,
            target,
            detail,
            "ok",
        );
    }

    /// Records a request made with an impersonation session (reads included:
    /// every action in the session is on record, as the user, naming the
    /// admin through the request's audit context).
    /// `outcome`: what became of the request (`ok`, `denied` when it was
    /// refused for want of rights, `refused` for another 4xx, `failed`).
    pub(crate) fn audit_impersonated_request(
        &self,
        ctx: &RequestCtx,
        method: &str,
        path: &str,
        outcome: &'static str,
    ) {
        if ctx.principal.impersonator.is_none() {
            return;
        }
        let detail = serde_json::json!({"method": method, "path": path,
            "session": ctx.principal.session, "key": ctx.principal.key});
        let target = format!("user:{}", ctx.account_id());
        self.audit_in_background(
            ctx,
            crate::audit::EventKind::ImpersonationRequest,
            target,
            detail,
            outcome,
        );
    }

    /// Appends an audit record for an act that changes nothing, in the
    /// background with the request's audit context (a failure is logged).
    fn audit_in_background(
        &self,
        ctx: &RequestCtx,
        kind: crate::audit::EventKind,
        target: String,
        detail: serde_json::Value,
        outcome: &'static str,
    ) {
        let audit = ctx.audit.clone();
        let store = self.store.clone();
        let actor = ctx.user_id().unwrap_or_else(|| ctx.account_id());
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            if let Err(e) = store
                .record_audit(&audit, kind, Some(actor), &target, detail, outcome)
                .await
            {
                tracing::warn!(error = %e, kind = kind.as_str(), "could not record an audit record");
            }
        });
    }
}

/// The outcome an audit record gives a request that ended with `result`:
/// `ok`; `denied` when it was refused for want of rights (or credentials);
/// `refused` for another error of the request; `failed` for the server's own.
pub fn outcome_of(result: std::result::Result<(), crate::error::Code>) -> &'static str {
    use crate::error::ErrorKind;
    match result {
        Ok(()) => "ok",
        Err(code) => match code.kind() {
            ErrorKind::Unauthorized | ErrorKind::Forbidden => "denied",
            ErrorKind::Internal | ErrorKind::Unavailable => "failed",
            _ => "refused",
        },
    }
}

/// The same for an HTTP status.
pub fn outcome_of_status(status: u16) -> &'static str {
    match status {
        401 | 403 => "denied",
        s if s >= 500 => "failed",
        s if s >= 400 => "refused",
        _ => "ok",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_records_have_a_per_second_budget() {
        let b = DeniedBudget::default();
        let taken = (0..DENIED_PER_SECOND + 10).filter(|_| b.take_at(7)).count() as u64;
        assert_eq!(taken, DENIED_PER_SECOND);
        assert!(b.take_at(8), "a new second has a new budget");
        // The dropped ones are counted for the summary, once.
        assert_eq!(b.take_dropped(), 10);
        assert_eq!(b.take_dropped(), 0);
    }
}
