//! Authentication: a presented credential (API key, impersonation session
//! token or call token) becomes a principal, answered from the policy index
//! without I/O when the index knows it; one it does not know is looked up
//! again after the index caught up with the store.

use super::{CallTokens, IndexSync};
use crate::error::{Code, Error, Result};
use crate::policy::{PolicyEngine, Principal};
use crate::secrets::{ApiKeySecret, SessionSecret};
use std::sync::Arc;

/// When this node last saw each browser session used: a session unused for
/// longer than the idle timeout is refused. Uses are written to the store
/// now and then (by maintenance), never on every request; a node that has
/// not seen a session goes by what the store last knew.
#[derive(Default)]
pub struct SessionActivity {
    inner: parking_lot::Mutex<Activity>,
}

#[derive(Default)]
struct Activity {
    /// Last use by session, as this node saw it.
    seen: rustc_hash::FxHashMap<crate::model::SessionId, crate::model::Millis>,
    /// Uses not yet written to the store.
    unwritten: rustc_hash::FxHashMap<crate::model::SessionId, crate::model::Millis>,
}

impl SessionActivity {
    /// Whether the session is still in use (used within `idle` of now, by
    /// this node or, as the store knew it, `stored` by any); if so, marks it
    /// used now.
    pub fn seen(
        &self,
        id: crate::model::SessionId,
        stored: crate::model::Millis,
        idle: crate::model::Millis,
    ) -> bool {
        let now = crate::policy::coarse_now_millis();
        let mut a = self.inner.lock();
        let last = a.seen.get(&id).copied().unwrap_or(stored).max(stored);
        if now - last > idle {
            a.seen.remove(&id);
            return false;
        }
        a.seen.insert(id, now);
        a.unwritten.insert(id, now);
        true
    }

    /// The uses seen since the last call, to be written to the store; forgets
    /// sessions idle for longer than `idle` (they stay refused: the store's
    /// last use is as old).
    pub fn take(
        &self,
        idle: crate::model::Millis,
    ) -> Vec<(crate::model::SessionId, crate::model::Millis)> {
        let now = crate::policy::coarse_now_millis();
        let mut a = self.inner.lock();
        a.seen.retain(|_, at| now - *at <= idle);
        a.unwritten.drain().collect()
    }
}

pub struct Authenticator {
    policy: Arc<PolicyEngine>,
    index: Arc<IndexSync>,
    call_tokens: Arc<CallTokens>,
    /// When this node last saw each browser session used (idle timeout).
    activity: Arc<SessionActivity>,
    /// A browser session unused this long has ended.
    session_idle: crate::model::Millis,
}

impl Authenticator {
    pub(super) fn new(
        base: &super::Base,
        call_tokens: Arc<CallTokens>,
        activity: Arc<SessionActivity>,
    ) -> Self {
        Self {
            policy: base.policy.clone(),
            index: base.index.clone(),
            call_tokens,
            activity,
            session_idle: i64::from(base.settings.session_idle_minutes) * 60_000,
        }
    }

    /// Authenticates a presented credential: a session token (`ahs_...`: a
    /// browser sign-in's, from its cookie, or an impersonation's), a call
    /// token (`ahc1.`...) or an API key.
    pub async fn authenticate(&self, raw: &str, digest: &str) -> Result<Principal> {
        if crate::secrets::CallTokenKey::looks_like(raw) {
            return self.call_tokens.authenticate(raw).await;
        }
        if !SessionSecret::looks_valid(raw) {
            return self.authenticate_key_or_catch_up(raw, digest).await;
        }
        let known = match self.policy.authenticate_session(digest) {
            Some(p) => Some(p),
            // Started a moment ago through another node?
            None => {
                self.index
                    .look_up_unknown_credential(digest, |d| self.policy.authenticate_session(d))
                    .await
            }
        };
        let ended = || {
            Error::new(
                Code::InvalidKey,
                "invalid, expired or ended session; sign in again or use your own credentials",
            )
        };
        let (p, last_seen) = known.ok_or_else(ended)?;
        if p.impersonator.is_none()
            && let Some(id) = p.session
            && !self.activity.seen(id, last_seen, self.session_idle)
        {
            return Err(ended());
        }
        if !self.policy.principal_active(&p) {
            return Err(Error::new(
                Code::AccountSuspended,
                if p.impersonator.is_some() {
                    "the impersonated account is suspended"
                } else {
                    "this account is suspended; ask a cluster admin"
                },
            ));
        }
        Ok(p)
    }

    /// Authenticates a presented API key from the index; a well-formed key it
    /// does not know is looked up again after the index caught up with the
    /// store (a key made a moment ago by the command line or another node),
    /// see `look_up_unknown_credential`. A key the index knows costs no I/O.
    pub(crate) async fn authenticate_key_or_catch_up(
        &self,
        raw: &str,
        digest: &str,
    ) -> Result<Principal> {
        match self.authenticate_key_digest(raw, digest) {
            Err(e) if e.code == Code::InvalidKey && ApiKeySecret::looks_valid(raw) => {
                match self
                    .index
                    .look_up_unknown_credential(digest, |d| self.policy.authenticate_key(d))
                    .await
                {
                    Some(_) => self.authenticate_key_digest(raw, digest),
                    None => Err(e),
                }
            }
            answer => answer,
        }
    }

    /// Authenticates a presented API key (no I/O: answered from the index).
    pub fn authenticate_key(&self, raw: &str) -> Result<Principal> {
        self.authenticate_key_digest(raw, &crate::secrets::digest_hex(raw))
    }

    /// `authenticate_key` given the key's SHA-256 (`digest_hex`), which the
    /// HTTP layer computes once per request.
    fn authenticate_key_digest(&self, raw: &str, digest: &str) -> Result<Principal> {
        if !ApiKeySecret::looks_valid(raw) {
            return Err(Error::new(Code::InvalidKey, "invalid API key"));
        }
        let p = self
            .policy
            .authenticate_key(digest)
            .ok_or_else(|| Error::new(Code::InvalidKey, "invalid, expired or revoked API key"))?;
        if !self.policy.principal_active(&p) {
            if let crate::policy::PrincipalKind::OrgKey { org } = p.kind
                && self.policy.is_org(org)
                && !self.policy.org_has_active_admin(org)
            {
                return Err(Error::new(
                    Code::AccountSuspended,
                    "this organization has no active admin (its last one is suspended): its \
                     keys are suspended until a cluster admin names a new admin",
                ));
            }
            return Err(Error::new(
                Code::AccountSuspended,
                "this key's account is suspended; ask a cluster admin",
            ));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::SessionActivity;
    use crate::policy::coarse_now_millis;

    #[test]
    fn a_session_unused_for_longer_than_the_idle_timeout_has_ended() {
        let a = SessionActivity::default();
        let now = coarse_now_millis();
        // Last used (as the store knows it) a minute ago: in use with an
        // idle timeout of two minutes, ended with one of thirty seconds.
        assert!(a.seen(1, now - 60_000, 120_000));
        assert!(!a.seen(2, now - 60_000, 30_000));
        // A use this node saw counts even when the store's is older.
        assert!(a.seen(1, now - 10 * 60_000, 120_000));
        // The uses go to the store once, and an ended session stays ended.
        let used = a.take(120_000);
        assert_eq!(used.iter().map(|u| u.0).collect::<Vec<_>>(), vec![1]);
        assert!(a.take(120_000).is_empty());
        assert!(!a.seen(2, now - 60_000, 30_000));
    }
}
