//! Calling an algorithm: resolve the version, authorize, run, report.
//!
//! Version forms: exact `1.2.3`, `1.2.*`, `1.*`, a 40-character hash (a build,
//! published or not), `latestPrivate`, or none (the latest public version).
//! Published public versions may be called by any authenticated caller
//! (`algo.call_public`); everything else (private or pending versions, hashes,
//! `latestPrivate`) needs `algo.call` on the algorithm (its owner's side).

use super::Hub;
use super::admission::SlotGuard;
use super::algorithms::no_such_algorithm;
use super::call_cache::CallTarget;
use super::executor::{ContentKind, ExecError, ExecInput, ExecOutput};
use crate::error::{Code, Error, Result};
use crate::model::{
    Algorithm, AlgorithmError, ErrorScope, SemVer, UsageRecord, UsageStatus, Version,
    VersionStatus, Via,
};
use crate::policy::{Action, Principal, PrincipalKind, Resource};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct CallRequest {
    pub owner: String,
    pub name: String,
    pub version: Option<String>,
    pub input: ExecInput,
    pub timeout: Duration,
    /// `?sudo=true`: run as the algorithm's owner (sudo users only).
    pub sudo: bool,
}

/// What a call produced: the run's outcome (an algorithm error is an outcome,
/// not a request error), and facts for the response and for metering.
pub struct CallOutcome {
    pub result: std::result::Result<ExecOutput, ExecError>,
    pub duration: Duration,
    pub algorithm: Algorithm,
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
    caller: crate::model::AccountId,
    /// `req-<uuid>`, reported in the response and in the error listing.
    pub request_id: String,
    pub algorithm: Algorithm,
    pub version: String,
    pub stdout_allowed: bool,
    usage: UsageRecord,
    started: Instant,
    slot: SlotGuard,
}

/// What a call resolved to, before admission.
struct Resolved {
    digest: String,
    label: String,
    algorithm: Algorithm,
    private_ok: bool,
}

/// How long failed calls stay in the error listing (7 days), and how many it shows.
pub(crate) const ERROR_RETENTION_MILLIS: i64 = 7 * 24 * 3600 * 1000;
pub const ERROR_LIST_LIMIT: i64 = 200;
/// Characters of a failed call's input kept with its error.
const ERROR_INPUT_CHARS: usize = 1000;

/// The largest timeout a caller may ask for, in seconds.
pub const MAX_TIMEOUT_SECS: f64 = 3000.0;

enum Spec {
    LatestPublic,
    LatestPrivate,
    Exact(SemVer),
    Minor(i64, i64),
    Major(i64),
    Hash(String),
}

fn parse_spec(raw: Option<&str>) -> Result<Spec> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(Spec::LatestPublic);
    };
    if raw == "latestPrivate" {
        return Ok(Spec::LatestPrivate);
    }
    if raw.len() == 40 && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(Spec::Hash(raw.to_ascii_lowercase()));
    }
    let bad = || {
        Error::new(
            Code::VersionNotFound,
            format!(
                "invalid version {raw:?}: use 1.2.3, 1.2.*, 1.*, a 40-character hash or latestPrivate"
            ),
        )
    };
    let parts: Vec<&str> = raw.split('.').collect();
    let num = |s: &str| s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(bad);
    match parts.as_slice() {
        [ma, "*"] => Ok(Spec::Major(num(ma)?)),
        [ma, mi, "*"] => Ok(Spec::Minor(num(ma)?, num(mi)?)),
        [ma, mi, pa] => Ok(Spec::Exact(SemVer {
            major: num(ma)?,
            minor: num(mi)?,
            patch: num(pa)?,
        })),
        _ => Err(bad()),
    }
}

impl Hub {
    /// Resolves, authorizes and runs a call. `Err` means the request was refused
    /// (no such algorithm or version, not allowed); an algorithm failure is `Ok`
    /// with `result: Err`.
    pub async fn call_algorithm(
        &self,
        caller: &Principal,
        req: CallRequest,
    ) -> Result<CallOutcome> {
        let (call, input) = self.prepare_call(caller, req).await?;
        self.run_call(call, input).await
    }

    /// For the by-id call form: the owner and name of the algorithm with this
    /// UUID, if the caller may read it or it has a published public version
    /// (otherwise the segment is taken as an owner name, which fails as usual).
    pub async fn algorithm_name_by_uuid(
        &self,
        caller: &Principal,
        uuid: &str,
    ) -> Option<(String, String)> {
        if uuid.len() != 36 || uuid::Uuid::parse_str(uuid).is_err() {
            return None;
        }
        let algo = self.store.get_algorithm_by_uuid(uuid).await.ok()?;
        let visible = self.can(caller, Action::AlgoRead, Resource::Algorithm(algo.id))
            || self
                .store
                .list_versions(algo.id)
                .await
                .ok()?
                .iter()
                .any(|v| v.status == VersionStatus::Published && v.callability == "public");
        visible.then_some((algo.owner_name, algo.name))
    }

    /// The algorithm, versions and build hashes a call resolves against, from
    /// the call cache (filled from the store on a miss).
    async fn call_target(&self, owner: &str, name: &str) -> Result<Arc<CallTarget>> {
        let owner_key = owner.to_ascii_lowercase();
        if let Some(t) = self.call_cache.target(&owner_key, name) {
            return Ok(t);
        }
        let generation = self.call_cache.generation();
        let algorithm = self.find_algorithm(owner, name).await?;
        let versions = self.store.list_versions(algorithm.id).await?;
        let builds = self
            .all_builds(algorithm.id)
            .await?
            .into_iter()
            .map(|b| (b.commit_sha, b.artifact_digest))
            .collect();
        let target = Arc::new(CallTarget {
            algorithm,
            versions,
            builds,
        });
        self.call_cache
            .insert_target(generation, &owner_key, name, target.clone());
        Ok(target)
    }

    async fn call_artifact(&self, digest: &str) -> Result<Arc<crate::model::Artifact>> {
        if let Some(a) = self.call_cache.artifact(digest) {
            return Ok(a);
        }
        let a = Arc::new(self.store.get_artifact(digest).await?);
        self.call_cache.insert_artifact(a.clone());
        Ok(a)
    }

    /// Failed calls of the last 7 days, newest first (the owner's side: those
    /// who may update the algorithm, since the entries carry callers' inputs).
    pub async fn list_algorithm_errors(
        &self,
        caller: &Principal,
        algo: &Algorithm,
    ) -> Result<Vec<AlgorithmError>> {
        self.authorize(caller, Action::AlgoUpdate, Resource::Algorithm(algo.id))?;
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
        caller: &Principal,
        req: CallRequest,
    ) -> Result<(PreparedCall, ExecInput)> {
        let started = Instant::now();
        let mut usage = self
            .usage_template(
                caller,
                &req.owner,
                &req.name,
                req.version.as_deref(),
                req.sudo,
            )
            .await?;
        let resolved = match self.resolve_call(caller, &req).await {
            Ok(r) => r,
            Err(e) => return Err(self.meter_refusal(usage, started, e).await),
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
            usage.royalty_microcredits = algo.settings["royalty_microcredits"]
                .as_i64()
                .unwrap_or(0)
                .max(0);
        }
        let slot = match self.admit(caller.account_id(), &usage.request_id).await {
            Ok(slot) => slot,
            Err(e) => return Err(self.meter_refusal(usage, started, e).await),
        };
        if req.sudo {
            // A privileged act: on the audit trail once admitted, before it runs.
            let detail =
                serde_json::json!({"version": resolved.label, "request_id": usage.request_id});
            let target = format!("algorithm:{}/{}", algo.owner_name, algo.name);
            if let Err(e) = self
                .store
                .record_audit(
                    "call.sudo",
                    Some(caller.account_id()),
                    &target,
                    detail,
                    "ok",
                )
                .await
            {
                return Err(self.meter_refusal(usage, started, e.into()).await);
            }
        }
        let artifact = match self.call_artifact(&resolved.digest).await {
            Ok(a) => a,
            Err(e) => return Err(self.meter_refusal(usage, started, e).await),
        };
        Ok((
            PreparedCall {
                artifact,
                timeout: req.timeout,
                caller: caller.account_id(),
                request_id: usage.request_id.clone(),
                algorithm: resolved.algorithm,
                version: resolved.label,
                stdout_allowed: resolved.private_ok,
                usage,
                started,
                slot,
            },
            req.input,
        ))
    }

    /// The usage record of a call before it resolves: who calls, how, who pays.
    async fn usage_template(
        &self,
        caller: &Principal,
        owner: &str,
        name: &str,
        version: Option<&str>,
        sudo: bool,
    ) -> Result<UsageRecord> {
        let account = caller.account_id();
        // Consolidated billing: an org that pays for its members pays for
        // their direct calls (the oldest such org if there are several) and
        // for calls made with its member keys.
        let (via, payer) = match caller.kind {
            _ if sudo => (Via::Sudo, account),
            PrincipalKind::User { user } => {
                let mut payer = user;
                for org in self.policy.user_orgs(user) {
                    if self.call_settings(org).await?.consolidated_billing {
                        payer = org;
                        break;
                    }
                }
                let via = if caller.impersonator.is_some() {
                    Via::Impersonation
                } else {
                    Via::Direct
                };
                (via, payer)
            }
            PrincipalKind::OrgKey { org } => (Via::OrgKey, org),
            PrincipalKind::MemberKey { user, org } => {
                let org_pays = self.call_settings(org).await?.consolidated_billing;
                (Via::MemberKey, if org_pays { org } else { user })
            }
        };
        Ok(UsageRecord {
            request_id: format!("req-{}", uuid::Uuid::now_v7()),
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
        caller: &Principal,
        owner: &str,
        name: &str,
        version: Option<&str>,
        sudo: bool,
        e: Error,
    ) -> Error {
        let started = Instant::now();
        match self
            .usage_template(caller, owner, name, version, sudo)
            .await
        {
            Ok(usage) => self.meter_refusal(usage, started, e).await,
            Err(_) => e,
        }
    }

    /// Meters a refused call and returns the refusal (or, if the record could
    /// not be stored, the metering error: no answer goes out unrecorded).
    async fn meter_refusal(&self, mut usage: UsageRecord, started: Instant, e: Error) -> Error {
        usage.status = if e.code == Code::LimitExceeded {
            UsageStatus::Limited
        } else {
            UsageStatus::Refused
        };
        usage.error_code = Some(e.code.slug().to_string());
        usage.royalty_microcredits = 0;
        usage.duration_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        match self.meter(usage).await {
            Ok(()) => e,
            Err(metering) => metering,
        }
    }

    /// Resolves the algorithm and version and authorizes the caller.
    async fn resolve_call(&self, caller: &Principal, req: &CallRequest) -> Result<Resolved> {
        self.executor()?;
        if req.sudo && !self.settings.sudo_users_enabled {
            return Err(Error::new(
                Code::SudoDisabled,
                "sudo calls are disabled on this cluster",
            ));
        }
        let target = self.call_target(&req.owner, &req.name).await?;
        let algo = &target.algorithm;
        if !self.policy.account_exists(algo.owner_id) {
            // Said only of what the caller could see: a public version, or
            // (super powers) the algorithm itself.
            let public = target
                .versions
                .iter()
                .any(|v| v.status == VersionStatus::Published && v.callability == "public");
            if !public && !self.can(caller, Action::AlgoRead, Resource::Algorithm(algo.id)) {
                return Err(super::algorithms::no_such_algorithm(&req.owner, &req.name));
            }
            return Err(Error::new(
                Code::OwnerDeleted,
                format!(
                    "{}/{} belongs to a deleted account: it stays on record for history but can no longer be called",
                    algo.owner_name, algo.name
                ),
            ));
        }
        if req.sudo && !self.can(caller, Action::AlgoCallSudo, Resource::Algorithm(algo.id)) {
            return Err(Error::new(
                Code::NotSudoUser,
                "sudo=true needs a sudo user's own credentials",
            ));
        }
        let private_ok =
            req.sudo || self.can(caller, Action::AlgoCall, Resource::Algorithm(algo.id));
        let spec = parse_spec(req.version.as_deref())?;
        let versions = &target.versions;
        let published_public =
            |v: &&Version| v.status == VersionStatus::Published && v.callability == "public";
        let not_found = |what: String| {
            if private_ok || versions.iter().any(|v| published_public(&v)) {
                Error::new(Code::VersionNotFound, what)
            } else {
                no_such_algorithm(&req.owner, &req.name)
            }
        };
        // (artifact digest, version label, whether it is a published public version)
        let (digest, label, public) = match spec {
            Spec::LatestPublic => {
                let v = versions.iter().find(published_public).ok_or_else(|| {
                    not_found(format!(
                        "{}/{} has no published public version; call an exact version or latestPrivate",
                        req.owner, req.name
                    ))
                })?;
                (v.artifact_digest.clone(), v.semver.to_string(), true)
            }
            Spec::Major(ma) => {
                let v = versions
                    .iter()
                    .filter(published_public)
                    .find(|v| v.semver.major == ma)
                    .ok_or_else(|| not_found(format!("no public version {ma}.*")))?;
                (v.artifact_digest.clone(), v.semver.to_string(), true)
            }
            Spec::Minor(ma, mi) => {
                let v = versions
                    .iter()
                    .filter(published_public)
                    .find(|v| v.semver.major == ma && v.semver.minor == mi)
                    .ok_or_else(|| not_found(format!("no public version {ma}.{mi}.*")))?;
                (v.artifact_digest.clone(), v.semver.to_string(), true)
            }
            Spec::Exact(sv) => {
                let v = versions
                    .iter()
                    .find(|v| v.semver == sv && v.status != VersionStatus::Rejected)
                    .ok_or_else(|| not_found(format!("no version {sv}")))?;
                (
                    v.artifact_digest.clone(),
                    v.semver.to_string(),
                    published_public(&v),
                )
            }
            Spec::LatestPrivate => {
                let v = versions
                    .iter()
                    .find(|v| v.status == VersionStatus::Published)
                    .ok_or_else(|| not_found("no published version".to_string()))?;
                (v.artifact_digest.clone(), v.semver.to_string(), false)
            }
            Spec::Hash(h) => {
                let (_, digest) = target
                    .builds
                    .iter()
                    .find(|(sha, _)| *sha == h)
                    .ok_or_else(|| not_found(format!("no build with hash {h}")))?;
                (digest.clone(), h, false)
            }
        };
        if req.sudo {
            // Authorized above: a sudo call runs with the owner's rights.
        } else if public {
            self.authorize(caller, Action::AlgoCallPublic, Resource::Algorithm(algo.id))?;
        } else if !private_ok {
            // Not the owner's side: a private or pending version answers as
            // a missing one, so its existence is not revealed.
            return Err(not_found(format!(
                "no public version {label} of {}/{}",
                req.owner, req.name
            )));
        } else {
            self.authorize(caller, Action::AlgoCall, Resource::Algorithm(algo.id))?;
        }
        Ok(Resolved {
            digest,
            label,
            algorithm: algo.clone(),
            private_ok,
        })
    }

    /// Runs a prepared call, frees its slot and meters it; the outcome is
    /// returned once its usage record is committed. A failed run is also
    /// recorded for the owner's error listing (best effort).
    pub async fn run_call(&self, call: PreparedCall, input: ExecInput) -> Result<CallOutcome> {
        let start = Instant::now();
        let excerpt = match input.content_type {
            ContentKind::Text | ContentKind::Json => {
                let text = String::from_utf8_lossy(&input.data);
                text.chars().take(ERROR_INPUT_CHARS).collect()
            }
            ContentKind::Binary | ContentKind::Void => String::new(),
        };
        let mut unmetered = super::metering::Unmetered {
            hub: self,
            record: Some(call.usage),
            started: call.started,
            ran: false,
        };
        let result = self
            .executor()?
            .execute(&call.artifact, input, call.timeout)
            .await;
        drop(call.slot);
        let duration = start.elapsed();
        // The record stays with `unmetered` until it is handed to the meter, so
        // a client that goes away during the awaits below still gets it metered.
        let Some(usage) = unmetered.record.as_mut() else {
            return Err(Error::internal("usage record taken twice"));
        };
        usage.duration_us = i64::try_from(call.started.elapsed().as_micros()).unwrap_or(i64::MAX);
        match &result {
            Ok(out) => {
                usage.status = UsageStatus::Ok;
                usage.compute_units = i64::try_from(out.compute_units).unwrap_or(i64::MAX);
            }
            Err(e) => {
                usage.status = UsageStatus::Error;
                usage.royalty_microcredits = 0;
                usage.error_code = Some(record_text(&e.describe().1));
                if let ExecError::Algorithm { compute_units, .. } = e {
                    usage.compute_units = i64::try_from(*compute_units).unwrap_or(i64::MAX);
                }
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
                input: excerpt,
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
        self.meter(usage).await?;
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
    raw.chars()
        .take(100)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Parses the `timeout` option (seconds, a float; default 300, at most 3000).
pub fn parse_timeout(raw: Option<&str>) -> Result<Duration> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(Duration::from_secs(300)),
        Some(s) => match s.parse::<f64>() {
            Ok(t) if t > 0.0 && t.is_finite() => {
                Ok(Duration::from_secs_f64(t.min(MAX_TIMEOUT_SECS)))
            }
            _ => Err(Error::invalid(format!(
                "invalid timeout {s:?}: use a number of seconds above 0 (at most 3000)"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_specs() {
        assert!(matches!(parse_spec(None), Ok(Spec::LatestPublic)));
        assert!(matches!(parse_spec(Some("")), Ok(Spec::LatestPublic)));
        assert!(matches!(
            parse_spec(Some("latestPrivate")),
            Ok(Spec::LatestPrivate)
        ));
        assert!(matches!(parse_spec(Some("1.*")), Ok(Spec::Major(1))));
        assert!(matches!(parse_spec(Some("10.2.*")), Ok(Spec::Minor(10, 2))));
        assert!(matches!(
            parse_spec(Some("1.2.3")),
            Ok(Spec::Exact(SemVer {
                major: 1,
                minor: 2,
                patch: 3
            }))
        ));
        assert!(matches!(
            parse_spec(Some(&"a".repeat(40))),
            Ok(Spec::Hash(_))
        ));
        for bad in ["1", "1.2", "x.y.z", "1.2.3.4", "-1.0.0", "*"] {
            assert!(parse_spec(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout(None).unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_timeout(Some("1.5")).unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_timeout(Some("99999")).unwrap(),
            Duration::from_secs(3000)
        );
        for bad in ["0", "-1", "abc", "NaN", "inf"] {
            assert!(parse_timeout(Some(bad)).is_err(), "{bad}");
        }
    }
}
