//! Where algorithms live: their rows, content-addressed artifacts, builds,
//! versions and the record of failed calls.

use super::*;

#[async_trait]
pub trait AlgorithmStore: Send + Sync {
    /// Stores an artifact under its digest (a no-op if it is already there).
    async fn put_artifact(&self, artifact: &Artifact) -> StoreResult<()>;
    async fn get_artifact(&self, digest: &str) -> StoreResult<Artifact>;
    /// `Conflict{"algorithm_name"}` on a name clash in the owner's namespace;
    /// `Conflict{"app_owner"}` when `app_id` names an app that is not (or no
    /// longer, after a transfer) the owner's.
    async fn create_algorithm(
        &self,
        ctx: &AuditContext,
        algo: &NewAlgorithm,
    ) -> StoreResult<Written<Algorithm>>;
    async fn get_algorithm(&self, owner: AccountId, name: &str) -> StoreResult<Algorithm>;
    async fn get_algorithm_by_uuid(&self, uuid: &str) -> StoreResult<Algorithm>;
    async fn get_algorithm_by_id(&self, id: AlgoId) -> StoreResult<Algorithm>;
    /// Live algorithms of an owner, by name.
    async fn list_algorithms(&self, owner: AccountId) -> StoreResult<Vec<Algorithm>>;
    /// `app_id`: `None` keeps the app, `Some(None)` takes the algorithm out
    /// of it, `Some(Some(app))` moves it into an app, refused with
    /// `Conflict{"app_owner"}` unless the app belongs to the algorithm's owner.
    async fn update_algorithm(
        &self,
        ctx: &AuditContext,
        id: AlgoId,
        details: &serde_json::Value,
        settings: &AlgorithmSettings,
        app_id: Option<Option<AppId>>,
    ) -> StoreResult<Written<Algorithm>>;
    /// Points the algorithm at a new artifact (the next compile builds it).
    async fn set_algorithm_artifact(
        &self,
        ctx: &AuditContext,
        id: AlgoId,
        digest: &str,
        runtime: RuntimeKind,
    ) -> StoreResult<Written<Algorithm>>;
    /// Soft-deletes: the algorithm stays resolvable for history, its name stays taken.
    async fn delete_algorithm(&self, ctx: &AuditContext, id: AlgoId) -> StoreResult<Written<()>>;
    /// Records a finished build of the algorithm's current artifact.
    async fn create_build(
        &self,
        algo: AlgoId,
        uuid: &str,
        commit_sha: &str,
        digest: &str,
        logs: &str,
        by: AccountId,
    ) -> StoreResult<Build>;
    /// Newest first; `before` pages by build id.
    async fn list_builds(
        &self,
        algo: AlgoId,
        limit: i64,
        before: Option<i64>,
    ) -> StoreResult<Vec<Build>>;
    async fn get_build(&self, algo: AlgoId, uuid: &str) -> StoreResult<Build>;
    /// Atomically: refuses with `Conflict{"no_new_build"}` unless `build_id` is the
    /// algorithm's newest build and has no version yet, and with
    /// `Conflict{"version_exists"}` if the semantic version is taken. The
    /// version is pending when the algorithm's owner, as this transaction
    /// sees it, is an org that requires approval, and published otherwise: an
    /// app transfer moving the algorithm meanwhile is ordered before it (the
    /// new owner decides) or after it (the transfer submits it again).
    async fn create_version(
        &self,
        ctx: &AuditContext,
        v: &NewVersion,
    ) -> StoreResult<Written<Version>>;
    /// All versions, newest semantic version first.
    async fn list_versions(&self, algo: AlgoId) -> StoreResult<Vec<Version>>;
    async fn get_version_by_uuid(&self, uuid: &str) -> StoreResult<Version>;
    /// Approves or rejects a pending version, binding the approval to `digest`.
    /// `Conflict{"not_pending"}` unless it is pending.
    async fn decide_version(
        &self,
        ctx: &AuditContext,
        version: i64,
        approve: bool,
        by: AccountId,
        reason: &str,
        digest: &str,
    ) -> StoreResult<Written<Version>>;
    /// Pending versions of algorithms owned by this org, oldest first.
    async fn list_pending_versions(
        &self,
        owner: AccountId,
    ) -> StoreResult<Vec<(Algorithm, Version)>>;
    /// Records a failed call; errors older than `keep_after` are dropped.
    async fn record_algorithm_error(
        &self,
        e: &AlgorithmError,
        keep_after: Millis,
    ) -> StoreResult<()>;
    /// Newest first, at most `limit`, none older than `since`.
    async fn list_algorithm_errors(
        &self,
        scope: ErrorScope,
        since: Millis,
        limit: i64,
    ) -> StoreResult<Vec<AlgorithmError>>;
}
