//! The request context: who is asking, and the facts of the request that
//! audit records carry, built once per request and passed explicitly.
//!
//! Design: services take `&RequestCtx` first (`orgs.create_org(&ctx, ...)`)
//! and hand `ctx.audit` to the store writes they make, which put it in the
//! audit records. Nothing carries identity implicitly (no task-locals), so a
//! task spawned for a request (an `output=void` call, a background audit
//! record) is handed the context it needs as an argument.

use crate::audit::{AuditContext, CredentialKind};
use crate::model::AccountId;
use crate::policy::Principal;

/// One request's caller and facts. Cheap to clone (a few short strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCtx {
    /// Who is asking (after authentication).
    pub principal: Principal,
    /// The request's id, credential kind, token digest, source address and,
    /// under impersonation, the admin really acting.
    pub audit: AuditContext,
}

impl RequestCtx {
    /// The context of a request made by `principal` with the given facts;
    /// under impersonation the facts name the admin as the real actor.
    pub fn new(principal: Principal, mut audit: AuditContext) -> Self {
        audit.acting_as = principal
            .impersonator
            .map(|admin| (admin, principal.account_id()));
        audit.actor = Some(principal.account_id());
        Self { principal, audit }
    }

    /// An `algohub admin ...` command acting as `principal`.
    pub fn cli(principal: Principal) -> Self {
        Self::new(principal, AuditContext::cli())
    }

    /// The node's own housekeeping, acting as `principal`.
    pub fn system(principal: Principal) -> Self {
        Self::new(principal, AuditContext::system())
    }

    /// The request's id (`x-request-id`, a call's `request_id`, its usage
    /// record and every audit record of the request).
    pub fn request_id(&self) -> &str {
        &self.audit.request_id
    }

    /// The same request, acting as another principal (an algorithm acting
    /// during the call this request made): its acts are on record with this
    /// request's id and, under impersonation, the admin really acting.
    pub fn acting_as(&self, principal: Principal) -> Self {
        let mut ctx = Self::new(principal, self.audit.clone());
        if ctx.audit.acting_as.is_none() {
            ctx.audit.acting_as = self.audit.acting_as;
        }
        ctx
    }

    /// How the request authenticated.
    pub fn credential(&self) -> CredentialKind {
        self.audit.credential
    }

    /// The account the request acts as.
    pub fn account_id(&self) -> AccountId {
        self.principal.account_id()
    }

    /// The human behind the request, if there is one (not an org key).
    pub fn user_id(&self) -> Option<AccountId> {
        self.principal.user_id()
    }
}

/// A new request id: `req-` and a UUIDv7 (time-ordered, so usage records
/// and audit records of one period sort together).
pub fn new_request_id() -> String {
    format!("req-{}", uuid::Uuid::now_v7())
}
