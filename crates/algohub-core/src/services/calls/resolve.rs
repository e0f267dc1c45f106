//! Resolving a call: the algorithm (from the call cache), the version the
//! caller asked for, and whether the caller may call it.

use super::super::CallService;
use super::super::algorithms::no_such_algorithm;
use super::super::call_cache::CallTarget;
use super::{CallMetrics, CallRequest};
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{Algorithm, SemVer, Version, VersionStatus};
use crate::policy::{Action, Resource};
use std::sync::Arc;

/// What a call resolved to, before admission.
pub(super) struct Resolved {
    pub(super) digest: String,
    pub(super) label: String,
    /// What a call pays its owner: the price fixed when the version was
    /// published (a build called by hash: the algorithm's current price).
    pub(super) price: i64,
    pub(super) algorithm: Arc<Algorithm>,
    pub(super) private_ok: bool,
    pub(super) metrics: Arc<CallMetrics>,
}

#[derive(Clone)]
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
            Code::InvalidInput,
            format!(
                "invalid version {raw:?}: use 1.2.3, 1.2.*, 1.*, a 40-character hash or latestPrivate \
                 (numbers without sign or leading zeros)"
            ),
        )
    };
    let parts: Vec<&str> = raw.split('.').collect();
    // Digits only, and no leading zero (`01.1.0` is not `1.1.0`).
    let num = |s: &str| {
        let canonical = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        canonical
            .then(|| s.parse::<i64>().ok())
            .flatten()
            .ok_or_else(bad)
    };
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

impl CallService {
    /// The algorithm, versions and build hashes a call resolves against, from
    /// the call cache (filled from the store on a miss), and whether it came
    /// from the cache.
    pub(super) async fn call_target(
        &self,
        owner: &str,
        name: &str,
    ) -> Result<(Arc<CallTarget>, bool)> {
        let owner_key = owner.to_ascii_lowercase();
        if let Some(t) = self.call_cache.target(&owner_key, name) {
            return Ok((t, true));
        }
        let generation = self.call_cache.generation();
        let algorithm = self.algorithms.find_algorithm(owner, name).await?;
        let versions = self.store.list_versions(algorithm.id).await?;
        let builds = self
            .algorithms
            .all_builds(algorithm.id)
            .await?
            .into_iter()
            .map(|b| (b.commit_sha, b.artifact_digest))
            .collect();
        let target = Arc::new(CallTarget {
            metrics: Arc::new(CallMetrics::algorithm(
                &algorithm.owner_name,
                &algorithm.name,
            )),
            algorithm: Arc::new(algorithm),
            versions,
            builds,
        });
        self.call_cache
            .insert_target(generation, &owner_key, name, target.clone());
        Ok((target, false))
    }

    pub(super) async fn call_artifact(&self, digest: &str) -> Result<Arc<crate::model::Artifact>> {
        if let Some(a) = self.call_cache.artifact(digest) {
            return Ok(a);
        }
        let a = Arc::new(self.store.get_artifact(digest).await?);
        self.call_cache.insert_artifact(a.clone());
        Ok(a)
    }

    /// Resolves the algorithm and version and authorizes the caller.
    pub(super) async fn resolve_call(
        &self,
        ctx: &RequestCtx,
        req: &CallRequest,
    ) -> Result<Resolved> {
        self.algorithms.executor()?;
        if req.sudo && !self.settings.sudo_users_enabled {
            return Err(Error::new(
                Code::SudoDisabled,
                "sudo calls are disabled on this cluster",
            ));
        }
        // A malformed version is refused before anything is looked up, so
        // the refusal says nothing about the algorithm.
        let spec = parse_spec(req.version.as_deref())?;
        let (target, cached) = self.call_target(&req.owner, &req.name).await?;
        match self.resolve_against(ctx, req, &spec, &target) {
            // A cached target may predate a version published (or a build
            // made) a moment ago through another node, whose change this
            // node's poller has not applied yet: catch up (one read of the
            // change feed when nothing is new, shared by the refusals that
            // wait for it, at most one every 50 ms) and, if anything changed,
            // resolve again. Calls that resolve are not delayed by this.
            Err(e)
                if cached && matches!(e.code, Code::VersionNotFound | Code::AlgorithmNotFound) =>
            {
                if !self.index.catch_up_before_refusing().await {
                    return Err(e);
                }
                let (fresh, _) = self.call_target(&req.owner, &req.name).await?;
                self.resolve_against(ctx, req, &spec, &fresh)
            }
            resolved => resolved,
        }
    }

    /// Resolves the version the caller asked for in `target` and authorizes
    /// the caller (no I/O).
    fn resolve_against(
        &self,
        ctx: &RequestCtx,
        req: &CallRequest,
        spec: &Spec,
        target: &CallTarget,
    ) -> Result<Resolved> {
        let algo = &target.algorithm;
        if !self.policy.account_exists(algo.owner_id) {
            // Said only of what the caller could see: a public version, or
            // (super powers) the algorithm itself.
            let public = target.versions.iter().any(|v| {
                v.status == VersionStatus::Published
                    && v.callability == crate::model::Callability::Public
            });
            if !public
                && !self
                    .authz
                    .can(ctx, Action::AlgoRead, Resource::Algorithm(algo.id))
            {
                return Err(no_such_algorithm(&req.owner, &req.name));
            }
            return Err(Error::new(
                Code::OwnerDeleted,
                format!(
                    "{}/{} belongs to a deleted account: it stays on record for history but can no longer be called",
                    algo.owner_name, algo.name
                ),
            ));
        }
        if req.sudo
            && !self
                .authz
                .can(ctx, Action::AlgoCallSudo, Resource::Algorithm(algo.id))
        {
            return Err(Error::new(
                Code::NotSudoUser,
                "sudo=true needs a sudo user's own credentials",
            ));
        }
        let private_ok = req.sudo
            || self
                .authz
                .can(ctx, Action::AlgoCall, Resource::Algorithm(algo.id));
        let versions = &target.versions;
        let published_public = |v: &&Version| {
            v.status == VersionStatus::Published
                && v.callability == crate::model::Callability::Public
        };
        let not_found = |what: String| {
            if private_ok || versions.iter().any(|v| published_public(&v)) {
                Error::new(Code::VersionNotFound, what)
            } else {
                no_such_algorithm(&req.owner, &req.name)
            }
        };
        let price = |v: &Version| v.settings.royalty_microcredits.unwrap_or(0).max(0);
        // (artifact digest, version label, whether it is a published public
        // version, the price)
        let (digest, label, public, price) = match spec.clone() {
            Spec::LatestPublic => {
                let v = versions.iter().find(published_public).ok_or_else(|| {
                    not_found(format!(
                        "{}/{} has no published public version; call an exact version or latestPrivate",
                        req.owner, req.name
                    ))
                })?;
                (
                    v.artifact_digest.clone(),
                    v.semver.to_string(),
                    true,
                    price(v),
                )
            }
            Spec::Major(ma) => {
                let v = versions
                    .iter()
                    .filter(published_public)
                    .find(|v| v.semver.major == ma)
                    .ok_or_else(|| not_found(format!("no public version {ma}.*")))?;
                (
                    v.artifact_digest.clone(),
                    v.semver.to_string(),
                    true,
                    price(v),
                )
            }
            Spec::Minor(ma, mi) => {
                let v = versions
                    .iter()
                    .filter(published_public)
                    .find(|v| v.semver.major == ma && v.semver.minor == mi)
                    .ok_or_else(|| not_found(format!("no public version {ma}.{mi}.*")))?;
                (
                    v.artifact_digest.clone(),
                    v.semver.to_string(),
                    true,
                    price(v),
                )
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
                    price(v),
                )
            }
            Spec::LatestPrivate => {
                let v = versions
                    .iter()
                    .find(|v| v.status == VersionStatus::Published)
                    .ok_or_else(|| not_found("no published version".to_string()))?;
                (
                    v.artifact_digest.clone(),
                    v.semver.to_string(),
                    false,
                    price(v),
                )
            }
            Spec::Hash(h) => {
                let (_, digest) = target
                    .builds
                    .iter()
                    .find(|(sha, _)| *sha == h)
                    .ok_or_else(|| not_found(format!("no build with hash {h}")))?;
                let now = algo.settings.royalty_microcredits.unwrap_or(0).max(0);
                (digest.clone(), h, false, now)
            }
        };
        if req.sudo {
            // Authorized above: a sudo call runs with the owner's rights.
        } else if public {
            self.authz
                .authorize(ctx, Action::AlgoCallPublic, Resource::Algorithm(algo.id))?;
        } else if !private_ok {
            // Not the owner's side: a private or pending version answers as
            // a missing one, so its existence is not revealed.
            return Err(not_found(format!(
                "no public version {label} of {}/{}",
                req.owner, req.name
            )));
        } else {
            self.authz
                .authorize(ctx, Action::AlgoCall, Resource::Algorithm(algo.id))?;
        }
        Ok(Resolved {
            digest,
            label,
            price,
            algorithm: algo.clone(),
            private_ok,
            metrics: target.metrics.clone(),
        })
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
        for bad in [
            "1", "1.2", "x.y.z", "1.2.3.4", "-1.0.0", "*", "01.1.0", "1.01.0", "1.0.00", "+1.0.0",
            "1.+2.*", " 1.0.0x",
        ] {
            assert!(parse_spec(Some(bad)).is_err(), "{bad}");
        }
    }
}
