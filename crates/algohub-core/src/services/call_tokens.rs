//! Call tokens: the credential an algorithm holds for the length of one call,
//! so that it can use the data API as the account the call acts as.
//!
//! Design: a token carries the principal it stands for, already narrowed to
//! the data scopes and marked with the algorithm's owner (`CallGrant`), the
//! request id and an expiry (the call's deadline plus a little slack), all
//! signed with the cluster's call-token key. A token is good only while its
//! call runs: the node running the call knows it (`CallTokens::live`, kept
//! until the call's run returns or is dropped); any other node asks the
//! shared database whether the call still holds its concurrency slot (slots
//! live there exactly when nodes share a database). The policy engine then
//! decides every use like any other request (the acting account must still
//! be active, a key it came from still live).
//! `.my` in a data path means the principal's account: the caller's for a
//! plain call, the algorithm owner's for a sudo call.
//!
//! In-process runtimes (wasm) get the same principal without a token:
//! `call_data` hands the executor a `CallData` bound to it.

use super::executor::CallData;
use super::{AuditRecorder, CallService, DataService};
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{Algorithm, Millis, Scopes};
use crate::policy::{CallGrant, PolicyEngine, Principal, PrincipalKind};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// What a call token may be used for: reading and writing data.
const CALL_TOKEN_SCOPES: i64 = Scopes::DATA_READ | Scopes::DATA_WRITE;
/// How long a token outlives its call's deadline (clock skew between nodes,
/// an upstream finishing its last request).
const CALL_TOKEN_SLACK_MILLIS: Millis = 1_000;

#[derive(Serialize, Deserialize)]
struct Claims {
    principal: Principal,
    request_id: String,
    expires_at: Millis,
}

impl CallService {
    /// Whom an algorithm acts as during a call: the caller, limited to the
    /// data scopes the caller's credential has; with `sudo`, the algorithm's
    /// owner (a user, or an organization as its own key would).
    pub(crate) fn call_principal(
        &self,
        ctx: &RequestCtx,
        algorithm: &Algorithm,
        sudo: bool,
    ) -> Principal {
        // The call's credential is kept in the grant (checked on every use),
        // not as the principal's own key or session: the algorithm cannot use
        // routes that act on them (e.g. end an impersonation session).
        let call = Some(CallGrant {
            algorithm_owner: algorithm.owner_id,
            caller: ctx.account_id(),
            caller_key: ctx.principal.key,
            caller_session: ctx.principal.session,
            sudo,
        });
        let scopes = Scopes(ctx.principal.scopes.0 & CALL_TOKEN_SCOPES);
        if !sudo {
            return Principal {
                scopes,
                key: None,
                session: None,
                call,
                ..ctx.principal
            };
        }
        let owner = algorithm.owner_id;
        let kind = if self.policy.is_org(owner) {
            PrincipalKind::OrgKey { org: owner }
        } else {
            PrincipalKind::User { user: owner }
        };
        Principal {
            kind,
            scopes,
            key: None,
            session: None,
            impersonator: None,
            call,
        }
    }
}

/// Issues and checks call tokens (see the module header).
pub(crate) struct CallTokens {
    key: crate::secrets::CallTokenKey,
    store: Arc<dyn Store>,
    policy: Arc<PolicyEngine>,
    admission: Arc<super::Admission>,
    /// Request ids of this node's running calls that were handed a call
    /// token: a token is good only while its call runs.
    live: parking_lot::Mutex<rustc_hash::FxHashSet<String>>,
}

impl CallTokens {
    pub(crate) fn new(
        secret: &str,
        store: Arc<dyn Store>,
        policy: Arc<PolicyEngine>,
        admission: Arc<super::Admission>,
    ) -> Self {
        Self {
            key: crate::secrets::CallTokenKey::new(secret),
            store,
            policy,
            admission,
            live: Default::default(),
        }
    }

    /// A token for `principal` (from `call_principal`), valid until `timeout`
    /// (the call's) has passed, plus the slack.
    pub(crate) fn issue(
        &self,
        principal: Principal,
        request_id: &str,
        timeout: Duration,
    ) -> String {
        let valid_for = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            principal,
            request_id: request_id.to_string(),
            expires_at: crate::model::now_millis()
                .saturating_add(valid_for)
                .saturating_add(CALL_TOKEN_SLACK_MILLIS),
        };
        // Serializing plain data to JSON cannot fail.
        let bytes = serde_json::to_vec(&claims).unwrap_or_default();
        self.key.sign(&bytes)
    }

    /// The principal a presented call token stands for, while its call runs.
    pub(crate) async fn authenticate(&self, raw: &str) -> Result<Principal> {
        let refused = |why: &str| {
            Error::new(
                Code::InvalidKey,
                format!("{why} call token: it is valid only while its call runs"),
            )
        };
        let claims: Claims = self
            .key
            .open(raw)
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| refused("invalid"))?;
        // What no token this code issues exceeds, enforced again here, so
        // that even a token signed outside it cannot do more.
        let now = crate::model::now_millis();
        let longest = (super::MAX_TIMEOUT_SECS * 1000.0) as Millis + CALL_TOKEN_SLACK_MILLIS;
        if claims.expires_at <= now || claims.expires_at > now.saturating_add(longest) {
            return Err(refused("expired"));
        }
        // A call of this node is known here; one of another node holds its
        // slot in the shared database until it ends.
        let running = self.live.lock().contains(&claims.request_id)
            || (self.admission.slots_shared()
                && self.store.call_slot_held(&claims.request_id, now).await?);
        if !running {
            return Err(refused("ended"));
        }
        let mut principal = claims.principal;
        principal.scopes = Scopes(principal.scopes.0 & CALL_TOKEN_SCOPES);
        self.require_grant_live(&principal)?;
        Ok(principal)
    }

    /// Marks `request_id` as a running call whose token is good, until the
    /// guard drops (the call returned, failed, timed out or was dropped).
    pub(crate) fn running(&self, request_id: &str) -> TokenCallRunning<'_> {
        self.live.lock().insert(request_id.to_string());
        TokenCallRunning {
            tokens: self,
            request_id: request_id.to_string(),
        }
    }

    /// Refuses an algorithm's principal whose call credential has ended.
    pub(crate) fn require_grant_live(&self, principal: &Principal) -> Result<()> {
        if self.policy.call_grant_live(principal) {
            return Ok(());
        }
        Err(Error::new(
            Code::InvalidKey,
            "the credential of the call this access came from has ended (account suspended \
             or gone, key revoked, session over, or role removed)",
        ))
    }
}

/// A running call whose call token is good (see `CallTokens::running`).
pub(crate) struct TokenCallRunning<'a> {
    tokens: &'a CallTokens,
    request_id: String,
}

impl Drop for TokenCallRunning<'_> {
    fn drop(&mut self) {
        self.tokens.live.lock().remove(&self.request_id);
    }
}

/// The data API for an in-process algorithm during one call.
struct CallDataAccess {
    data: Arc<DataService>,
    tokens: Arc<CallTokens>,
    recorder: AuditRecorder,
    /// The algorithm's principal with the facts of the request that made the
    /// call: each data act is on record with that request's id (and, under
    /// impersonation, the admin really acting), as an `http` algorithm's acts
    /// are as requests made with its call token.
    ctx: RequestCtx,
}

fn for_guest(e: Error) -> String {
    format!("{}: {}", e.code.slug(), e.message)
}

impl CallDataAccess {
    /// Resolves a path for one use, once the call's credential is known to
    /// be live.
    async fn path(&self, raw: &str) -> Result<super::DataPath> {
        self.tokens.require_grant_live(&self.ctx.principal)?;
        self.data.data_path(&self.ctx, raw).await
    }

    /// Puts one use on record under impersonation, with its outcome.
    fn record<T>(&self, method: &str, raw: &str, done: &Result<T>) {
        self.recorder.audit_impersonated_request(
            &self.ctx,
            method,
            raw,
            super::audit::outcome_of(done.as_ref().map(drop).map_err(|e| e.code)),
        );
    }
}

#[async_trait::async_trait]
impl CallData for CallDataAccess {
    async fn read(&self, raw: &str) -> std::result::Result<Vec<u8>, String> {
        let done = match self.path(raw).await {
            Ok(path) => self.data.data_read_file(&self.ctx, &path).await,
            Err(e) => Err(e),
        };
        self.record("GET", raw, &done);
        done.map_err(for_guest)
    }

    async fn write(&self, raw: &str, bytes: Vec<u8>) -> std::result::Result<(), String> {
        let done = match self.path(raw).await {
            Ok(path) => self.data.data_write_file(&self.ctx, &path, bytes).await,
            Err(e) => Err(e),
        };
        self.record("PUT", raw, &done);
        done.map_err(for_guest)
    }
}

impl CallService {
    /// Data API access acting as `ctx.principal` (from `call_principal`), for
    /// an in-process runtime; `None` on nodes that do not serve the data API.
    pub(crate) fn call_data(&self, ctx: RequestCtx) -> Option<Arc<dyn CallData>> {
        if !self.data.serves_files() {
            return None;
        }
        Some(Arc::new(CallDataAccess {
            data: self.data.clone(),
            tokens: self.call_tokens.clone(),
            recorder: self.recorder.clone(),
            ctx,
        }))
    }
}
