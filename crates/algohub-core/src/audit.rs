//! The audit trail: who did what, how they authenticated, from where, with
//! what outcome, as a tamper-evident hash chain.
//!
//! Design: every domain event the store writes inside a business transaction
//! is an audit record (so the record commits exactly when the change does).
//! The request's facts (request id, authentication method, a SHA-256 of the
//! token, source address) reach the store through a task-local set by the HTTP
//! layer, so no store signature has to carry them. Each record stores the hash
//! of the record before it and its own hash over its fields and that link:
//! editing a record breaks its hash, deleting or reordering records breaks the
//! links. (Truncating the newest records is not visible in the chain alone;
//! compare the head hash with a copy kept elsewhere for that.)

use crate::model::{AccountId, Millis};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Facts about the request an audit record is written for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    pub request_id: String,
    /// `key` (bare), `simple`, `bearer`, `none`, or `cli`.
    pub auth_method: String,
    /// Hex SHA-256 of the presented token (never the token itself).
    pub token_sha256: Option<String>,
    /// The client's address.
    pub source: Option<String>,
    /// Under impersonation: (the admin really acting, the account acted as),
    /// set once the caller is known.
    pub impersonation: std::sync::Arc<std::sync::OnceLock<(AccountId, AccountId)>>,
}

impl AuditContext {
    /// Who really acted and which account the act was done as, given the
    /// account the service named.
    pub fn actors(&self, named: Option<AccountId>) -> (Option<AccountId>, Option<AccountId>) {
        match self.impersonation.get() {
            Some((real, acting)) => (Some(*real), Some(*acting)),
            None => (named, named),
        }
    }
}

tokio::task_local! {
    /// The audit context of the request this task serves.
    pub static AUDIT_CONTEXT: AuditContext;
}

/// The current request's audit context (`cli` when there is no request).
pub fn current_context() -> AuditContext {
    AUDIT_CONTEXT
        .try_with(Clone::clone)
        .unwrap_or_else(|_| AuditContext {
            request_id: String::new(),
            auth_method: "cli".into(),
            ..Default::default()
        })
}

/// An audit record as stored (an event with its request facts and links).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: Millis,
    /// What happened, e.g. `user.roles_set`, `authz.denied`.
    pub action: String,
    /// Who acted (the real actor), if known.
    pub actor_id: Option<AccountId>,
    /// The account the act was done as (differs under impersonation).
    pub effective_id: Option<AccountId>,
    /// What it was done to.
    pub target: String,
    pub detail: serde_json::Value,
    pub outcome: String,
    pub request_id: String,
    pub auth_method: String,
    pub token_sha256: Option<String>,
    pub source: Option<String>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// A query over the audit trail: every filter optional; records after
/// `after_id`, oldest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor_id: Option<AccountId>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub after_id: i64,
    pub limit: i64,
}

/// The hash of a record given the previous record's hash: SHA-256 over every
/// field, each length-prefixed (so no two field lists hash alike).
#[allow(clippy::too_many_arguments)]
pub fn chain_hash(
    prev: &str,
    at: Millis,
    action: &str,
    actor_id: Option<AccountId>,
    effective_id: Option<AccountId>,
    target: &str,
    detail: &str,
    outcome: &str,
    ctx: &AuditContext,
) -> String {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    let id = |v: Option<AccountId>| v.map(|x| x.to_string()).unwrap_or_default();
    field(prev.as_bytes());
    field(at.to_string().as_bytes());
    field(action.as_bytes());
    field(id(actor_id).as_bytes());
    field(id(effective_id).as_bytes());
    field(target.as_bytes());
    field(detail.as_bytes());
    field(outcome.as_bytes());
    field(ctx.request_id.as_bytes());
    field(ctx.auth_method.as_bytes());
    field(ctx.token_sha256.as_deref().unwrap_or("").as_bytes());
    field(ctx.source.as_deref().unwrap_or("").as_bytes());
    hex::encode(h.finalize())
}

/// The hash a stored record should have, recomputed from its fields.
pub fn record_hash(r: &AuditRecord, prev: &str) -> String {
    let ctx = AuditContext {
        request_id: r.request_id.clone(),
        auth_method: r.auth_method.clone(),
        token_sha256: r.token_sha256.clone(),
        source: r.source.clone(),
        ..Default::default()
    };
    chain_hash(
        prev,
        r.at,
        &r.action,
        r.actor_id,
        r.effective_id,
        &r.target,
        &r.detail.to_string(),
        &r.outcome,
        &ctx,
    )
}

/// Where verification stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditBreak {
    /// The first record that does not match.
    pub id: i64,
    pub reason: String,
}

/// Walks records in id order, carrying the chain across calls (pages).
#[derive(Debug, Default)]
pub struct ChainVerifier {
    /// The hash the next record must link to (`None` before the first
    /// hashed record; records from before the audit chain have no hash).
    expected_prev: Option<String>,
    pub checked: u64,
}

impl ChainVerifier {
    /// Checks the next record; the first mismatch is returned.
    pub fn check(&mut self, r: &AuditRecord) -> Result<(), AuditBreak> {
        let bad = |reason: &str| AuditBreak {
            id: r.id,
            reason: reason.to_string(),
        };
        let Some(hash) = &r.hash else {
            return if self.expected_prev.is_none() {
                Ok(()) // a record from before the chain began
            } else {
                Err(bad("record has no hash inside the chain"))
            };
        };
        let prev = r.prev_hash.as_deref().unwrap_or("");
        let expected = self.expected_prev.as_deref().unwrap_or("");
        if prev != expected {
            return Err(bad(
                "link to the previous record does not match (a record was deleted, inserted or moved)",
            ));
        }
        if record_hash(r, prev) != *hash {
            return Err(bad(
                "contents do not match the record's hash (the record was edited)",
            ));
        }
        self.expected_prev = Some(hash.clone());
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, prev: &str, action: &str) -> AuditRecord {
        let mut r = AuditRecord {
            id,
            at: 1000 + id,
            action: action.into(),
            actor_id: Some(1),
            effective_id: Some(1),
            target: "7".into(),
            detail: serde_json::json!({"k": id}),
            outcome: "ok".into(),
            request_id: format!("req-{id}"),
            auth_method: "key".into(),
            token_sha256: Some("ab".into()),
            source: Some("127.0.0.1".into()),
            prev_hash: Some(prev.into()),
            hash: None,
        };
        r.hash = Some(record_hash(&r, prev));
        r
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 1..=n {
            let prev = out.last().and_then(|r| r.hash.clone()).unwrap_or_default();
            out.push(rec(i, &prev, "x"));
        }
        out
    }

    fn verify(rs: &[AuditRecord]) -> Result<u64, AuditBreak> {
        let mut v = ChainVerifier::default();
        for r in rs {
            v.check(r)?;
        }
        Ok(v.checked)
    }

    #[test]
    fn intact_edited_deleted_reordered() {
        let good = chain(5);
        assert_eq!(verify(&good), Ok(5));
        let mut edited = good.clone();
        edited[2].detail = serde_json::json!({"k": 99});
        assert_eq!(verify(&edited).unwrap_err().id, 3);
        let mut deleted = good.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted).unwrap_err().id, 3);
        let mut swapped = good.clone();
        swapped.swap(1, 2);
        assert_eq!(verify(&swapped).unwrap_err().id, 3);
        let mut unhashed = good.clone();
        unhashed[3].hash = None;
        assert_eq!(verify(&unhashed).unwrap_err().id, 4);
        // Records from before the chain are skipped.
        let mut legacy = vec![AuditRecord {
            hash: None,
            prev_hash: None,
            ..rec(0, "", "old")
        }];
        legacy.extend(good);
        assert_eq!(verify(&legacy), Ok(5));
    }
}
