//! Authentication: a presented credential (API key, impersonation session
//! token or call token) becomes a principal, answered from the policy index
//! without I/O when the index knows it; one it does not know is looked up
//! again after the index caught up with the store.

use super::{CallTokens, IndexSync};
use crate::error::{Code, Error, Result};
use crate::policy::{PolicyEngine, Principal};
use crate::secrets::{ApiKeySecret, SessionSecret};
use std::sync::Arc;

pub struct Authenticator {
    policy: Arc<PolicyEngine>,
    index: Arc<IndexSync>,
    call_tokens: Arc<CallTokens>,
}

impl Authenticator {
    pub(super) fn new(base: &super::Base, call_tokens: Arc<CallTokens>) -> Self {
        Self {
            policy: base.policy.clone(),
            index: base.index.clone(),
            call_tokens,
        }
    }

    /// Authenticates a presented credential: an impersonation session token
    /// (`ahs_...`), a call token (`ahc1.`...) or an API key.
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
        let p = known.ok_or_else(|| {
            Error::new(
                Code::InvalidKey,
                "invalid, expired or ended session; use your own credentials",
            )
        })?;
        if !self.policy.principal_active(&p) {
            return Err(Error::new(
                Code::AccountSuspended,
                "the impersonated account is suspended",
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
