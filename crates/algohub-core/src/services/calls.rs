//! Calling an algorithm: resolve the version, authorize, run, report.
//!
//! Version forms: exact `1.2.3`, `1.2.*`, `1.*`, a 40-character hash (a build,
//! published or not), `latestPrivate`, or none (the latest public version).
//! Published public versions may be called by any authenticated caller
//! (`algo.call_public`); everything else (private or pending versions, hashes,
//! `latestPrivate`) needs `algo.call` on the algorithm (its owner's side).
//! Resolution (cache, version forms, who may call) is in `calls/resolve.rs`.

use super::admission::SlotGuard;
use super::executor::{ContentKind, ExecError, ExecInput, ExecOutput, RunContext};
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{
    Algorithm, AlgorithmError, ErrorScope, UsageRecord, UsageStatus, VersionStatus, Via,
};
use crate::policy::{Action, PrincipalKind, Resource};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) mod credits;
mod limits;
mod metrics;
mod resolve;

use limits::call_limits;
pub use limits::{
    DEFAULT_CALL_TIMEOUT_SECS, DEFAULT_WASM_FUEL_PER_SEC, MAX_TIMEOUT_SECS, fuel_budget,
    parse_timeout,
};
pub(crate) use limits::{MAX_FUEL_SETTING, MAX_TIMEOUT_SETTING};
pub(crate) use metrics::CallMetrics;

pub struct CallRequest {
    pub owner: String,
    pub name: String,
    pub version: Option<String>,
    pub input: ExecInput,
    /// `?timeout=`; `None`: the cluster's `call_timeout`. Cut to the
    /// algorithm's and the cluster's caps (`CallService::call_limits`).
    pub timeout: Option<Duration>,
    /// `?sudo=true`: run as the algorithm's owner (sudo users only).
    pub sudo: bool,
    /// `?data=none`: the algorithm gets no data API access during the call
    /// (by default it acts with the caller's data scopes: README).
    pub no_data: bool,
}

/// What a call produced: the run's outcome (an algorithm error is an outcome,
/// not a request error), and facts for the response and for metering.
pub struct CallOutcome {
    pub result: std::result::Result<ExecOutput, ExecError>,
    pub duration: Duration,
    pub algorithm: Arc<Algorithm>,
    /// The semantic version called, or the build hash for an unpublished build.
    pub version: String,
    /// Whether the caller may see the algorithm's printed output (owner side).
    pub stdout_allowed: bool,
}

/// A call that passed every check (authorization and admission) and is ready
/// to run. It holds a concurrency slot until it is run or dropped.
pub struct PreparedCall {
    artifact: Arc<crate::model::Artifact>,
    timeout: Duration,
    /// The wasm fuel budget (`CallService::call_limits`).
    fuel: u64,
    caller: crate::model::AccountId,
    /// The person the call counts for when instances are shared.
    person: crate::model::AccountId,
    /// `req-<uuid>`, reported in the response and in the error listing.
    pub request_id: String,
    pub algorithm: Arc<Algorithm>,
    pub version: String,
    pub stdout_allowed: bool,
    usage: UsageRecord,
    started: Instant,
    slot: SlotGuard,
    /// Whom the algorithm acts as toward the data API during the call, with
    /// the facts of the request that made the call (its audit records).
    acting: RequestCtx,
    /// `?data=none`: no data API access at all during the call.
    no_data: bool,
    /// The algorithm's call metrics (`calls/metrics.rs`).
    metrics: Arc<CallMetrics>,
    /// The price held against the credit floor (a paid call).
    credit: Option<credits::CreditHold>,
}

/// How long failed calls stay in the error listing (7 days), and how many it shows.
pub(crate) const ERROR_RETENTION_MILLIS: i64 = 7 * 24 * 3600 * 1000;
pub const ERROR_LIST_LIMIT: i64 = 200;
/// Characters of a failed call's input kept with its error.
const ERROR_INPUT_CHARS: usize = 1000;

/// Calls: resolve, authorize, admit, run and meter one call.
pub struct CallService {
    pub(super) store: Arc<dyn crate::store::Store>,
    pub(super) policy: Arc<crate::policy::PolicyEngine>,
    pub(super) settings: Arc<super::Settings>,
    pub(super) authz: Arc<super::Authorizer>,
    pub(super) index: Arc<super::IndexSync>,
    pub(super) recorder: super::AuditRecorder,
    pub(super) algorithms: Arc<super::AlgorithmService>,
    /// What an in-process algorithm uses for the data API (`call_data`).
    pub(super) data: Arc<super::DataService>,
    pub(super) admission: Arc<super::Admission>,
    /// Prices of paid calls under way, against the credit floor.
    pub(super) credits: Arc<credits::CreditHolds>,
    pub(super) metering: Arc<super::Metering>,
    pub(super) call_tokens: Arc<super::CallTokens>,
    pub(super) call_cache: Arc<super::call_cache::CallCache>,
    /// Call metrics of refusals before a call named an algorithm
    /// (`algorithm=""`); each algorithm's are in its call-cache entry.
    pub(super) unresolved_calls: CallMetrics,
}

impl CallService {
    /// Resolves, authorizes and runs a call. `Err` means the request was refused
    /// (no such algorithm or version, not allowed); an algorithm failure is `Ok`
    /// with `result: Err`.
    pub async fn call_algorithm(&self, ctx: &RequestCtx, req: CallRequest) -> Result<CallOutcome> {
        let (call, input) = self.prepare_call(ctx, req).await?;
        self.run_call(call, input).await
    }

    /// For the by-id call form: the owner and name of the algorithm with this
    /// UUID, if the caller may read it or it has a published public version
    /// (otherwise the segment is taken as an owner name, which fails as usual).
    pub async fn algorithm_name_by_uuid(
        &self,
        ctx: &RequestCtx,
        uuid: &str,
    ) -> Option<(String, String)> {
        if uuid.len() != 36 || uuid::Uuid::parse_str(uuid).is_err() {
            return None;
        }
        let algo = self.store.get_algorithm_by_uuid(uuid).await.ok()?;
        self.algorithms.index_algorithm(&algo).await;
        let visible = self
            .authz
            .can(ctx, Action::AlgoRead, Resource::Algorithm(algo.id))
            || self
                .store
                .list_versions(algo.id)
                .await
                .ok()?
                .iter()
                .any(|v| {
                    v.status == VersionStatus::Published
                        && v.callability == crate::model::Callability::Public
                });
        visible.then_some((algo.owner_name, algo.name))
    }

    /// Failed calls of the last 7 days, newest first (the owner's side: those
    /// who may update the algorithm, since the entries carry callers' inputs).
    pub async fn list_algorithm_errors(
        &self,
        ctx: &RequestCtx,
        algo: &Algorithm,
    ) -> Result<Vec<AlgorithmError>> {
        self.authz
            .authorize(ctx, Action::AlgoUpdate, Resource::Algorithm(algo.id))?;
        let since = crate::model::now_millis() - ERROR_RETENTION_MILLIS;
        Ok(self
            .store
            .list_algorithm_errors(ErrorScope::Algorithm(algo.id), since, ERROR_LIST_LIMIT)
            .await?)
    }

    /// The refusal half of a call: resolves the algorithm and version,
    /// authorizes the caller and admits the call under the caller's work
    /// limit, without running anything (so `output=void` can answer at once
    /// and run the call afterwards). A refusal is metered before it returns.
    pub async fn prepare_call(
        &self,
        ctx: &RequestCtx,
        req: CallRequest,
    ) -> Result<(PreparedCall, ExecInput)> {
        let started = Instant::now();
        let mut usage = self
            .usage_template(ctx, &req.owner, &req.name, req.version.as_deref(), req.sudo)
            .await?;
        let resolved = match self.resolve_call(ctx, &req).await {
            Ok(r) => r,
            Err(e) => {
                let unresolved = &self.unresolved_calls;
                return Err(self.meter_refusal(usage, started, e, unresolved).await);
            }
        };
        let algo = &resolved.algorithm;
        usage.algorithm_id = Some(algo.id);
        usage.owner_id = Some(algo.owner_id);
        usage.algo_owner.clone_from(&algo.owner_name);
        usage.algo_name.clone_from(&algo.name);
        usage.version.clone_from(&resolved.label);
        if req.sudo {
            usage.acting_as_id = algo.owner_id;
        } else {
            // Prices published before the cluster lowered its maximum are
            // charged at the maximum.
            usage.royalty_microcredits = resolved.price.min(self.settings.max_royalty_microcredits);
        }
        let slot = match self
            .admission
            .admit(ctx.account_id(), &usage.request_id)
            .await
        {
            Ok(slot) => slot,
            Err(e) => {
                return Err(self
                    .meter_refusal(usage, started, e, &resolved.metrics)
                    .await);
            }
        };
        let paid = !req.sudo
            && usage.royalty_microcredits > 0
            && usage.owner_id.is_some_and(|owner| owner != usage.payer_id);
        let credit = if paid {
            match self
                .credits
                .hold(usage.payer_id, usage.royalty_microcredits)
                .await
            {
                Ok(hold) => Some(hold),
                Err(e) => {
                    return Err(self
                        .meter_refusal(usage, started, e, &resolved.metrics)
                        .await);
                }
            }
        } else {
            None
        };
        if req.sudo {
            // A privileged act: on the audit trail once admitted, before it runs.
            let detail =
                serde_json::json!({"version": resolved.label, "request_id": usage.request_id});
            let target = format!("algorithm:{}/{}", algo.owner_name, algo.name);
            if let Err(e) = self
                .store
                .record_audit(
                    &ctx.audit,
                    crate::audit::EventKind::CallSudo,
                    Some(ctx.account_id()),
                    &target,
                    detail,
                    "ok",
                )
                .await
            {
                return Err(self
                    .meter_refusal(usage, started, e.into(), &resolved.metrics)
                    .await);
            }
        }
        let artifact = match self.call_artifact(&resolved.digest).await {
            Ok(a) => a,
            Err(e) => {
                return Err(self
                    .meter_refusal(usage, started, e, &resolved.metrics)
                    .await);
            }
        };
        let acting = ctx.acting_as(self.call_principal(ctx, &resolved.algorithm, req.sudo));
        let (timeout, fuel) = self.call_limits(&resolved.algorithm, req.timeout);
        Ok((
            PreparedCall {
                artifact,
                timeout,
                fuel,
                caller: ctx.account_id(),
                person: self.policy.person_behind(&ctx.principal),
                request_id: usage.request_id.clone(),
                algorithm: resolved.algorithm,
                version: resolved.label,
                stdout_allowed: resolved.private_ok,
                acting,
                no_data: req.no_data,
                metrics: resolved.metrics,
                usage,
                started,
                slot,
                credit,
            },
            req.input,
        ))
    }

    /// A call's timeout and wasm fuel budget (see the function `call_limits`).
    pub(crate) fn call_limits(&self, algo: &Algorithm, asked: Option<Duration>) -> (Duration, u64) {
        call_limits(&self.settings, &algo.settings, asked)
    }

    /// The usage record of a call before it resolves: who calls, how, who pays.
    async fn usage_template(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        name: &str,
        version: Option<&str>,
        sudo: bool,
    ) -> Result<UsageRecord> {
        let account = ctx.account_id();
        // Consolidated billing: an org that pays for its members pays for
        // their direct calls (the oldest such org if there are several) and
        // for calls made with its member keys.
        let (via, payer) = match ctx.principal.kind {
            _ if sudo => (Via::Sudo, account),
            PrincipalKind::User { user } => {
                let mut payer = user;
                for org in self.policy.user_orgs(user) {
                    if self
                        .admission
                        .call_settings(org)
                        .await?
                        .consolidated_billing
                    {
                        payer = org;
                        break;
                    }
                }
                let via = if ctx.principal.impersonator.is_some() {
                    Via::Impersonation
                } else {
                    Via::Direct
                };
                (via, payer)
            }
            PrincipalKind::OrgKey { org } => (Via::OrgKey, org),
            PrincipalKind::MemberKey { user, org } => {
                let org_pays = self
                    .admission
                    .call_settings(org)
                    .await?
                    .consolidated_billing;
                (Via::MemberKey, if org_pays { org } else { user })
            }
        };
        Ok(UsageRecord {
            // One id per request: the call's usage record, its response's
            // `request_id` and `x-request-id`, and its audit records.
            request_id: if ctx.request_id().is_empty() {
                crate::context::new_request_id()
            } else {
                ctx.request_id().to_string()
            },
            started_at: crate::model::now_millis(),
            duration_us: 0,
            caller_id: account,
            acting_as_id: account,
            payer_id: payer,
            via,
            algorithm_id: None,
            owner_id: None,
            algo_owner: record_text(owner),
            algo_name: record_text(name),
            version: record_text(version.unwrap_or_default()),
            status: UsageStatus::Refused,
            error_code: None,
            compute_units: 0,
            royalty_microcredits: 0,
        })
    }

    /// Meters a call refused before it could be prepared (bad options or
    /// input, found by the HTTP layer) and returns the refusal.
    pub async fn refuse_call(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        name: &str,
        version: Option<&str>,
        sudo: bool,
        e: Error,
    ) -> Error {
        let started = Instant::now();
        match self.usage_template(ctx, owner, name, version, sudo).await {
            Ok(usage) => {
                self.meter_refusal(usage, started, e, &self.unresolved_calls)
                    .await
            }
            Err(_) => e,
        }
    }

    /// Meters (and counts in `metrics`) a refused call and returns the
    /// refusal (or, if the record could not be stored, the metering error: no
    /// answer goes out unrecorded).
    async fn meter_refusal(
        &self,
        mut usage: UsageRecord,
        started: Instant,
        e: Error,
        metrics: &CallMetrics,
    ) -> Error {
        metrics.refused(e.code);
        usage.status = if e.code == Code::LimitExceeded {
            UsageStatus::Limited
        } else {
            UsageStatus::Refused
        };
        usage.error_code = Some(e.code.slug().to_string());
        usage.royalty_microcredits = 0;
        usage.duration_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        match self.metering.meter(usage).await {
            Ok(()) => e,
            Err(metering) => metering,
        }
    }

    /// Runs a prepared call, frees its slot and meters it; the outcome is
    /// returned once its usage record is committed. A failed run is also
    /// recorded for the owner's error listing (best effort).
    pub async fn run_call(&self, call: PreparedCall, input: ExecInput) -> Result<CallOutcome> {
        let start = Instant::now();
        // Released (once the record is stored) after the call is metered.
        let credit = call.credit;
        // The start of a text input, for the error listing if the run fails
        // (made into text only then): at most 4 bytes per character.
        let excerpt = match input.content_type {
            ContentKind::Text | ContentKind::Json => {
                input.data[..input.data.len().min(4 * ERROR_INPUT_CHARS)].to_vec()
            }
            ContentKind::Binary | ContentKind::Void => Vec::new(),
        };
        let mut unmetered = super::metering::Unmetered {
            metering: &self.metering,
            record: Some(call.usage),
            started: call.started,
            ran: false,
            metrics: call.metrics,
        };
        // The algorithm's data API access: a call token for an upstream (http),
        // good while the call runs; direct access for an in-process guest (wasm).
        let mut token_call = None;
        let (api_key, data) = match call.artifact.kind {
            _ if call.no_data => (None, None),
            crate::model::RuntimeKind::Http => {
                token_call = Some(self.call_tokens.running(&call.request_id));
                (
                    Some(self.call_tokens.issue(
                        call.acting.principal,
                        &call.request_id,
                        call.timeout,
                    )),
                    None,
                )
            }
            crate::model::RuntimeKind::Wasm => (None, self.call_data(call.acting)),
        };
        let run = RunContext {
            timeout: call.timeout,
            person: call.person,
            fuel: call.fuel,
            request_id: &call.request_id,
            api_key: api_key.as_deref(),
            data,
        };
        let result = self
            .algorithms
            .executor()?
            .execute(&call.artifact, input, &run)
            .await;
        drop(token_call);
        drop(call.slot);
        let duration = start.elapsed();
        // The record stays with `unmetered` until it is handed to the meter, so
        // a client that goes away during the awaits below still gets it metered.
        let Some(usage) = unmetered.record.as_mut() else {
            return Err(Error::internal("usage record taken twice"));
        };
        let took = call.started.elapsed();
        usage.duration_us = i64::try_from(took.as_micros()).unwrap_or(i64::MAX);
        unmetered.metrics.ran(&result, took);
        match &result {
            Ok(out) => {
                usage.status = UsageStatus::Ok;
                usage.compute_units = i64::try_from(out.compute_units).unwrap_or(i64::MAX);
            }
            Err(e) => {
                usage.status = UsageStatus::Error;
                usage.royalty_microcredits = 0;
                usage.error_code = Some(record_text(&e.describe().1));
                // What the run used before it failed (timed out, out of
                // fuel, crashed) is on record as for a run that succeeded.
                usage.compute_units = i64::try_from(e.compute_units()).unwrap_or(i64::MAX);
            }
        }
        unmetered.ran = true;
        if let Err(e) = &result {
            if let ExecError::Internal(cause) = e {
                tracing::error!(request_id = %call.request_id, error = %cause, "algorithm runtime failed");
            }
            let (message, error_type, _) = e.describe();
            let now = crate::model::now_millis();
            let record = AlgorithmError {
                algorithm_id: call.algorithm.id,
                created_at: now,
                request_id: call.request_id.clone(),
                caller_id: call.caller,
                caller_name: String::new(),
                owner_name: String::new(),
                algorithm_name: String::new(),
                version: call.version.clone(),
                input: String::from_utf8_lossy(&excerpt)
                    .chars()
                    .take(ERROR_INPUT_CHARS)
                    .collect(),
                error: message,
                error_type,
            };
            if let Err(err) = self
                .store
                .record_algorithm_error(&record, now - ERROR_RETENTION_MILLIS)
                .await
            {
                tracing::warn!(error = %err, "could not record an algorithm error");
            }
        }
        let Some(usage) = unmetered.record.take() else {
            return Err(Error::internal("usage record taken twice"));
        };
        self.metering.meter(usage).await?;
        drop(credit);
        if let Err(ExecError::NodeMemory { message, .. }) = &result {
            return Err(Error::limited(
                message.clone(),
                crate::error::LimitInfo {
                    limit_kind: "memory",
                    scope: "node".into(),
                    retry_after: 1,
                },
            ));
        }
        Ok(CallOutcome {
            result,
            duration,
            algorithm: call.algorithm,
            version: call.version,
            stdout_allowed: call.stdout_allowed,
        })
    }
}

/// Text from a request as a usage record keeps it: control characters
/// replaced and at most 100 characters, so no request can make a record the
/// store refuses (which would fail its whole group-commit batch).
fn record_text(raw: &str) -> String {
    // Most names are short and plain: copied as they are.
    if raw.len() <= 100 && !raw.chars().any(char::is_control) {
        return raw.to_string();
    }
    raw.chars()
        .take(100)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
