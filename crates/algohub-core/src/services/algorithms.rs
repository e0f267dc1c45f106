//! Algorithms: create, read, update, delete, artifacts, compile (builds).
//!
//! Details and settings keep the v1 JSON shapes; `check_settings` validates every
//! known key and refuses unknown ones, so a typo is a clear 400, not silence.
//! Unreadable algorithms answer "No such algorithm", the message the clients
//! look for, so private algorithms do not leak their existence.

use super::Authorizer;
use super::Base;
use super::Directory;
use super::IndexSync;
use super::Settings;
use super::algorithm_settings::{check_details, check_settings};
use super::conflict;
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{
    AccountId, Algorithm, AlgorithmSettings, Artifact, Build, NewAlgorithm, RuntimeKind,
};
use crate::policy::PolicyEngine;
use crate::policy::{Action, Resource};
use crate::store::Store;
use crate::store::{Constraint, StoreError};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub(crate) fn no_such_algorithm(owner: &str, name: &str) -> Error {
    Error::new(
        Code::AlgorithmNotFound,
        format!("No such algorithm: {owner}/{name}"),
    )
}

/// The store's refusal to create an algorithm in an app that is no longer
/// its owner's (transferred after the request found it there): what the
/// request would have met a moment later, the app missing from the account.
fn app_moved(owner: &str, app: &str) -> Error {
    Error::new(
        Code::AppNotFound,
        format!("app {owner}/{app} not found (it was moved to another owner meanwhile)"),
    )
}

/// Names that would collide with the by-id routes (`/v1/algorithms/{id}/compile`, ...).
const RESERVED_ALGORITHM_NAMES: [&str; 7] = [
    "compile", "versions", "builds", "errors", "secrets", "scm", "artifact",
];

fn check_algorithm_name(name: &str) -> Result<()> {
    if RESERVED_ALGORITHM_NAMES.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(Error::new(
            Code::InvalidName,
            format!("{name:?} is reserved (it names a route); choose another algorithm name"),
        ));
    }
    crate::names::check_identifier(name, 64, "algorithm")
}

/// SHA-256 of an artifact, hex.
pub fn artifact_digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Algorithms: their settings, artifacts, builds, versions (publish,
/// approve) and source.
pub struct AlgorithmService {
    pub(super) store: Arc<dyn Store>,
    pub(super) policy: Arc<PolicyEngine>,
    pub(super) settings: Arc<Settings>,
    pub(super) authz: Arc<Authorizer>,
    pub(super) directory: Directory,
    pub(super) index: Arc<IndexSync>,
    /// Runs algorithms; `None` on nodes (or CLI commands) that never call them.
    pub(super) executor: Option<Arc<dyn super::Executor>>,
}

impl AlgorithmService {
    pub(super) fn new(base: &Base, executor: Option<Arc<dyn super::Executor>>) -> Self {
        Self {
            store: base.store.clone(),
            policy: base.policy.clone(),
            settings: base.settings.clone(),
            authz: base.authz.clone(),
            directory: base.directory.clone(),
            index: base.index.clone(),
            executor,
        }
    }
}

impl AlgorithmService {
    pub(crate) fn executor(&self) -> Result<&dyn super::Executor> {
        self.executor
            .as_deref()
            .ok_or_else(|| Error::new(Code::Unavailable, "this node has no algorithm runtime"))
    }

    /// Loads an algorithm the caller may read, or "No such algorithm".
    pub(crate) async fn readable_algorithm(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        name: &str,
    ) -> Result<Algorithm> {
        let algo = self.find_algorithm(owner, name).await?;
        if !self
            .authz
            .can(ctx, Action::AlgoRead, Resource::Algorithm(algo.id))
        {
            return Err(no_such_algorithm(owner, name));
        }
        Ok(algo)
    }

    /// Loads a live algorithm without asking the policy (callers decide next).
    /// A deleted account's algorithms stay resolvable, for history (calls
    /// refuse them).
    pub(crate) async fn find_algorithm(&self, owner: &str, name: &str) -> Result<Algorithm> {
        let Ok(owner_name) = crate::names::AccountName::parse(owner) else {
            return Err(no_such_algorithm(owner, name));
        };
        let acc = match self.store.get_account_by_name(owner_name.as_str()).await {
            Ok(a) => a,
            Err(StoreError::NotFound) => return Err(no_such_algorithm(owner, name)),
            Err(e) => return Err(e.into()),
        };
        match self.store.get_algorithm(acc.id, name).await {
            Ok(a) => {
                self.index_algorithm(&a).await;
                Ok(a)
            }
            Err(StoreError::NotFound) => Err(no_such_algorithm(owner, name)),
            Err(e) => Err(e.into()),
        }
    }

    /// An algorithm read from the store that the index does not know where the
    /// store has it (published or moved a moment ago through another node):
    /// the index catches up first, so the decisions about it go by the store.
    /// Costs nothing when the index knows it (an in-memory look).
    pub(crate) async fn index_algorithm(&self, algo: &Algorithm) {
        self.index
            .catch_up_with(self.policy.algorithm_owner(algo.id), algo.owner_id)
            .await;
    }

    pub async fn create_algorithm(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        name: &str,
        details: &Value,
        settings: &Value,
        app: Option<&str>,
    ) -> Result<Algorithm> {
        let acc = self.directory.account(owner).await?;
        self.authz
            .authorize(ctx, Action::AlgoCreate, Resource::Account(acc.id))?;
        check_algorithm_name(name)?;
        let details = check_details(&Value::Null, details, true)?;
        let settings = check_settings(
            &AlgorithmSettings::default(),
            settings,
            true,
            &self.settings,
        )?;
        let app_id = match app {
            Some(a) => Some(self.app_in_account(ctx, acc.id, owner, a).await?),
            None => None,
        };
        let template = self.executor()?.template();
        self.store.put_artifact(&template).await?;
        let new = NewAlgorithm {
            uuid: uuid::Uuid::new_v4().to_string(),
            owner_id: acc.id,
            name: name.to_string(),
            app_id,
            details,
            settings,
            runtime: template.kind,
            artifact_digest: template.digest,
            created_by: ctx.account_id(),
        };
        let algo = self
            .index
            .applied(self.store.create_algorithm(&ctx.audit, &new))
            .await
            .map_err(|e| match e {
                StoreError::Conflict {
                    constraint: Constraint::AlgorithmName,
                } => Error::new(
                    Code::NameTaken,
                    format!("{owner} already has an algorithm named {name}"),
                ),
                StoreError::Conflict {
                    constraint: Constraint::AppOwner,
                } => app_moved(owner, app.unwrap_or_default()),
                other => conflict(other, "algorithm"),
            })?;
        Ok(algo)
    }

    /// The app `name` in account `owner`, which the caller may write to.
    /// (The store checks again, in its transaction, that the app is still the
    /// algorithm owner's: an app transfer may come in between.)
    async fn app_in_account(
        &self,
        ctx: &RequestCtx,
        owner_id: i64,
        owner: &str,
        name: &str,
    ) -> Result<i64> {
        let app = self
            .store
            .get_app(owner_id, &name.to_ascii_lowercase())
            .await
            .map_err(|_| Error::new(Code::AppNotFound, format!("app {owner}/{name} not found")))?;
        self.authz
            .authorize(ctx, Action::AppContribute, Resource::App(app.id))?;
        Ok(app.id)
    }

    pub async fn get_algorithm(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        name: &str,
    ) -> Result<Algorithm> {
        self.readable_algorithm(ctx, owner, name).await
    }

    pub async fn get_algorithm_by_uuid(&self, ctx: &RequestCtx, uuid: &str) -> Result<Algorithm> {
        let algo = match self.store.get_algorithm_by_uuid(uuid).await {
            Ok(a) => a,
            Err(StoreError::NotFound) => {
                return Err(Error::new(
                    Code::AlgorithmNotFound,
                    format!("No such algorithm: {uuid}"),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        self.index_algorithm(&algo).await;
        if !self
            .authz
            .can(ctx, Action::AlgoRead, Resource::Algorithm(algo.id))
        {
            return Err(Error::new(
                Code::AlgorithmNotFound,
                format!("No such algorithm: {uuid}"),
            ));
        }
        Ok(algo)
    }

    /// The algorithms of an account (user or org) that the caller may read.
    pub async fn list_algorithms(&self, ctx: &RequestCtx, owner: &str) -> Result<Vec<Algorithm>> {
        let acc = self.directory.account(owner).await?;
        self.readable_algorithms(ctx, acc.id).await
    }

    /// The algorithms of an organization that the caller may read; a name
    /// that is not an organization's is `org_not_found`.
    pub async fn list_org_algorithms(&self, ctx: &RequestCtx, org: &str) -> Result<Vec<Algorithm>> {
        let acc = self.directory.org_account(org).await?;
        self.readable_algorithms(ctx, acc.id).await
    }

    async fn readable_algorithms(
        &self,
        ctx: &RequestCtx,
        owner: AccountId,
    ) -> Result<Vec<Algorithm>> {
        let all = self.store.list_algorithms(owner).await?;
        if let Some(unknown) = all
            .iter()
            .find(|a| self.policy.algorithm_owner(a.id) != Some(a.owner_id))
        {
            self.index_algorithm(unknown).await;
        }
        Ok(all
            .into_iter()
            .filter(|a| {
                self.authz
                    .can(ctx, Action::AlgoRead, Resource::Algorithm(a.id))
            })
            .collect())
    }

    pub async fn update_algorithm(
        &self,
        ctx: &RequestCtx,
        algo: &Algorithm,
        details: &Value,
        settings: &Value,
        app: Option<Option<&str>>,
    ) -> Result<Algorithm> {
        self.authz
            .authorize(ctx, Action::AlgoUpdate, Resource::Algorithm(algo.id))?;
        let details = check_details(&algo.details, details, false)?;
        let settings = check_settings(&algo.settings, settings, false, &self.settings)?;
        let app_id = match app {
            None => None,
            Some(None) => Some(None),
            Some(Some(a)) => Some(Some(
                self.app_in_account(ctx, algo.owner_id, &algo.owner_name, a)
                    .await?,
            )),
        };
        let updated = self
            .index
            .applied(
                self.store
                    .update_algorithm(&ctx.audit, algo.id, &details, &settings, app_id),
            )
            .await
            .map_err(|e| match e {
                // The app or the algorithm was transferred after the check.
                StoreError::Conflict {
                    constraint: Constraint::AppOwner,
                } => Error::new(
                    Code::Conflict,
                    format!(
                        "{}/{} and app {} no longer have the same owner (one of them was \
                         transferred meanwhile); nothing was changed",
                        algo.owner_name,
                        algo.name,
                        app.flatten().unwrap_or_default()
                    ),
                ),
                other => other.into(),
            })?;
        Ok(updated)
    }

    pub async fn delete_algorithm(&self, ctx: &RequestCtx, owner: &str, name: &str) -> Result<()> {
        let algo = self.readable_algorithm(ctx, owner, name).await?;
        self.authz
            .authorize(ctx, Action::AlgoDelete, Resource::Algorithm(algo.id))?;
        self.index
            .applied(self.store.delete_algorithm(&ctx.audit, algo.id))
            .await?;
        Ok(())
    }

    /// Uploads a new artifact: a wasm binary or WAT text (`wasm`), or an upstream
    /// definition (`http`). The next compile builds it.
    pub async fn upload_artifact(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        name: &str,
        kind: RuntimeKind,
        bytes: &[u8],
    ) -> Result<Algorithm> {
        let algo = self.readable_algorithm(ctx, owner, name).await?;
        self.authz
            .authorize(ctx, Action::AlgoUpdate, Resource::Algorithm(algo.id))?;
        let prepared = self.executor()?.prepare(kind, bytes).map_err(|e| {
            Error::new(
                Code::InvalidArtifact,
                format!("the artifact was refused: {e}"),
            )
        })?;
        let artifact = Artifact {
            digest: artifact_digest(&prepared),
            kind,
            bytes: prepared,
        };
        self.store.put_artifact(&artifact).await?;
        let algo = self
            .index
            .applied(
                self.store
                    .set_algorithm_artifact(&ctx.audit, algo.id, &artifact.digest, kind),
            )
            .await?;
        Ok(algo)
    }

    /// Makes a new immutable build of the current artifact. Its version hash
    /// (`commit_sha`) is the first 40 hex digits of the artifact's SHA-256, so two
    /// builds of the same artifact share a hash.
    pub async fn compile(&self, ctx: &RequestCtx, algo: &Algorithm) -> Result<Build> {
        self.authz
            .authorize(ctx, Action::AlgoPublish, Resource::Algorithm(algo.id))?;
        let artifact = self.store.get_artifact(&algo.artifact_digest).await?;
        let commit_sha: String = artifact.digest.chars().take(40).collect();
        let logs = format!(
            "Building {}/{} from artifact sha256:{} ({} bytes, runtime {})\nBuild succeeded: version hash {commit_sha}\n",
            algo.owner_name,
            algo.name,
            artifact.digest,
            artifact.bytes.len(),
            artifact.kind.as_str()
        );
        let build_uuid = uuid::Uuid::new_v4().to_string();
        let build = self
            .store
            .create_build(
                algo.id,
                &build_uuid,
                &commit_sha,
                &artifact.digest,
                &logs,
                ctx.account_id(),
            )
            .await?;
        // Calls by hash see the new build on this node at once.
        Ok(build)
    }

    /// Every build of an algorithm, newest first.
    pub async fn list_builds(&self, ctx: &RequestCtx, algo: &Algorithm) -> Result<Vec<Build>> {
        self.authz
            .authorize(ctx, Action::AlgoRead, Resource::Algorithm(algo.id))?;
        self.all_builds(algo.id).await
    }

    /// Every build, newest first, read in pages (the store returns at most
    /// 1000 at a time).
    pub(crate) async fn all_builds(&self, algo: crate::model::AlgoId) -> Result<Vec<Build>> {
        const PAGE: i64 = 1000;
        let mut all: Vec<Build> = Vec::new();
        loop {
            let before = all.last().map(|b| b.id);
            let page = self.store.list_builds(algo, PAGE, before).await?;
            let done = (page.len() as i64) < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    pub async fn get_build(
        &self,
        ctx: &RequestCtx,
        algo: &Algorithm,
        build_id: &str,
    ) -> Result<Build> {
        self.authz
            .authorize(ctx, Action::AlgoRead, Resource::Algorithm(algo.id))?;
        match self.store.get_build(algo.id, build_id).await {
            Ok(b) => Ok(b),
            Err(StoreError::NotFound) => Err(Error::new(
                Code::BuildNotFound,
                format!("build {build_id:?} not found"),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_algorithm_name("Hello_World2").is_ok());
        for bad in ["", "2x", "a-b", "a.b", &"x".repeat(65)] {
            assert!(check_algorithm_name(bad).is_err(), "{bad}");
        }
    }
}
