//! `/v1/algorithms`: algorithm management (create, get, update, delete, list)
//! in the v1 shapes (`HashResponse`), the native artifact upload, and the
//! helpers the builds and versions routes (`versions.rs`) share: the
//! [`AlgoPath`] extractor (by name or, on the by-id routes, by UUID) and the
//! JSON shapes of algorithms, builds and versions.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, RawBody};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{
    Algorithm, AlgorithmSettings, Build, RuntimeKind, Version, format_millis,
};
use algohub_core::services::VersionEntry;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;

/// Largest artifact upload (a wasm module).
pub const MAX_ARTIFACT_BYTES: usize = 32 << 20;

pub(super) fn self_link(s: &AppState, a: &Algorithm) -> String {
    format!("{}/v1/algorithms/{}/{}", s.base_url, a.owner_name, a.name)
}

/// A version's facts (`version_info`); only `insights_enabled` when the
/// algorithm has no build yet, only the build's hash while unpublished.
#[derive(Serialize, ToSchema)]
pub(super) struct VersionInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    git_hash: Option<String>,
    insights_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    semantic_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    release_notes: Option<String>,
    /// published, pending or rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'static str>,
    /// public or private.
    #[serde(skip_serializing_if = "Option::is_none")]
    callability: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_output: Option<String>,
    /// What a call of this version pays the owner, fixed when it was
    /// published (a new price needs a new version).
    #[serde(skip_serializing_if = "Option::is_none")]
    royalty_microcredits: Option<i64>,
}

pub(super) fn version_info(entry: Option<&VersionEntry>) -> VersionInfo {
    let mut vi = VersionInfo {
        git_hash: entry.map(|e| e.build.commit_sha.clone()),
        insights_enabled: false,
        semantic_version: None,
        version_uuid: None,
        release_notes: None,
        status: None,
        callability: None,
        sample_input: None,
        sample_output: None,
        royalty_microcredits: None,
    };
    if let Some(v) = entry.and_then(|e| e.version.as_ref()) {
        vi.semantic_version = Some(v.semver.to_string());
        vi.version_uuid = Some(v.uuid.clone());
        vi.release_notes = Some(v.release_notes.clone());
        vi.status = Some(v.status.as_str());
        vi.callability = Some(v.callability.as_str().to_string());
        vi.sample_input = v.sample_input.clone();
        vi.sample_output = v.sample_output.clone();
        vi.royalty_microcredits = Some(v.settings.royalty_microcredits.unwrap_or(0));
    }
    vi
}

/// The semantic version published from a build.
#[derive(Serialize, ToSchema)]
pub(super) struct BuildVersion {
    semantic_version: String,
}

/// A build (`Build`).
#[derive(Serialize, ToSchema)]
#[schema(as = Build)]
pub(super) struct BuildShape {
    build_id: String,
    commit_sha: String,
    started_at: String,
    finished_at: Option<String>,
    /// in-progress, succeeded or failed.
    status: String,
    /// Always `algorithm_build`.
    resource_type: &'static str,
    /// Only for a build a version was published from.
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<BuildVersion>,
}

pub(super) fn build_json(b: &Build) -> BuildShape {
    BuildShape {
        build_id: b.uuid.clone(),
        commit_sha: b.commit_sha.clone(),
        started_at: format_millis(b.started_at),
        finished_at: b.finished_at.map(format_millis),
        status: b.status.clone(),
        resource_type: "algorithm_build",
        version_info: b.semantic_version.clone().map(|sv| BuildVersion {
            semantic_version: sv,
        }),
    }
}

/// The algorithm object (`HashResponse` + `version_info` of the latest version).
#[derive(Serialize, ToSchema)]
#[schema(as = Algorithm)]
pub(super) struct AlgorithmShape {
    id: String,
    name: String,
    owner: String,
    /// The v1 details object, as stored.
    details: Value,
    /// The v1 settings object, as stored.
    #[schema(value_type = Object)]
    settings: AlgorithmSettings,
    /// wasm or http.
    runtime: &'static str,
    version_info: VersionInfo,
    self_link: String,
    /// Always `algorithm`.
    resource_type: &'static str,
}

pub(super) fn algorithm_json(
    s: &AppState,
    a: &Algorithm,
    latest: Option<&VersionEntry>,
) -> AlgorithmShape {
    AlgorithmShape {
        id: a.uuid.clone(),
        name: a.name.clone(),
        owner: a.owner_name.clone(),
        details: a.details.clone(),
        settings: a.settings.clone(),
        runtime: a.runtime.as_str(),
        version_info: version_info(latest),
        self_link: self_link(s, a),
        resource_type: "algorithm",
    }
}

/// Whether a build compiled, and its output.
#[derive(Serialize, ToSchema)]
pub(super) struct Compilation {
    successful: bool,
    output: String,
}

/// A `VersionResponse` for one build (published or not).
#[derive(Serialize, ToSchema)]
#[schema(as = VersionResponse)]
pub(super) struct VersionShape {
    id: String,
    name: String,
    details: Value,
    #[schema(value_type = Object)]
    settings: AlgorithmSettings,
    version_info: VersionInfo,
    build: BuildShape,
    compilation: Compilation,
    self_link: String,
    /// Always `algorithm`.
    resource_type: &'static str,
}

pub(super) fn version_json(s: &AppState, a: &Algorithm, e: &VersionEntry) -> VersionShape {
    let settings = e
        .version
        .as_ref()
        .map_or(&a.settings, |v: &Version| &v.settings);
    VersionShape {
        id: a.uuid.clone(),
        name: a.name.clone(),
        details: a.details.clone(),
        settings: settings.clone(),
        version_info: version_info(Some(e)),
        build: build_json(&e.build),
        compilation: Compilation {
            successful: e.build.status == "succeeded",
            output: e.build.logs.clone(),
        },
        self_link: format!("{}/versions/{}", self_link(s, a), e.build.commit_sha),
        resource_type: "algorithm",
    }
}

/// An algorithm in a list (`UtilityAlgorithm`).
#[derive(Serialize, ToSchema)]
struct UtilityAlgorithm {
    id: String,
    algoname: String,
    username: String,
}

/// The answer to an artifact upload.
#[derive(Serialize, ToSchema)]
struct ArtifactUploaded {
    /// owner/name.
    algorithm: String,
    runtime: &'static str,
    artifact_digest: String,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AlgorithmCreate)]
struct CreateBody {
    name: String,
    #[serde(default)]
    details: Value,
    #[serde(default)]
    settings: Value,
    /// Native: put the algorithm in one of the owner's apps.
    #[serde(default)]
    app: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = AlgorithmUpdate)]
struct UpdateBody {
    #[serde(default)]
    details: Value,
    #[serde(default)]
    settings: Value,
    /// Native: move into an app (a name) or out of any (null).
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<String>)]
    app: Option<Option<String>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// The algorithm a route names: `{owner}/{algo}`, or on the by-id routes
/// (`/v1/algorithms/{id}/...`, reference §1.5) `{owner}` holding its UUID.
/// Other path parameters (`build_id`, `hash`) ride along.
pub(super) struct AlgoPath {
    params: std::collections::HashMap<String, String>,
}

impl axum::extract::FromRequestParts<AppState> for AlgoPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Path(params) =
            Path::<std::collections::HashMap<String, String>>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::new(Code::InvalidInput, format!("invalid path: {e}")))?;
        Ok(Self { params })
    }
}

impl AlgoPath {
    pub(super) fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }

    pub(super) async fn load(
        &self,
        s: &AppState,
        c: &algohub_core::RequestCtx,
    ) -> ApiResult<Algorithm> {
        match self.params.get("algo") {
            Some(name) => load(s, c, self.param("owner"), name).await,
            None => Ok(s
                .hub
                .algorithms
                .get_algorithm_by_uuid(c, self.param("owner"))
                .await?),
        }
    }
}

pub(super) async fn load(
    s: &AppState,
    c: &algohub_core::RequestCtx,
    owner: &str,
    name: &str,
) -> ApiResult<Algorithm> {
    Ok(s.hub.algorithms.get_algorithm(c, owner, name).await?)
}

pub(super) async fn latest(
    s: &AppState,
    c: &algohub_core::RequestCtx,
    a: &Algorithm,
) -> ApiResult<Option<VersionEntry>> {
    let entries = s.hub.algorithms.list_versions(c, a).await?;
    Ok(entries.into_iter().find(|e| e.version.is_some()))
}

#[utoipa::path(post, path = "/v1/algorithms/{owner}", tag = "algorithms", summary = "Create an algorithm (starts from the echo template)", request_body = CreateBody, responses((status = 200, body = AlgorithmShape)))]
async fn create(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(owner): Path<String>,
    JsonBody(b): JsonBody<CreateBody>,
) -> ApiResult<Json<AlgorithmShape>> {
    let a = s
        .hub
        .algorithms
        .create_algorithm(
            &c,
            &owner,
            &b.name,
            &b.details,
            &b.settings,
            b.app.as_deref(),
        )
        .await?;
    Ok(Json(algorithm_json(&s, &a, None)))
}

#[utoipa::path(get, path = "/v1/algorithms/{owner}/{algo}", tag = "algorithms", summary = "Get an algorithm", responses((status = 200, body = AlgorithmShape)))]
async fn get_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<Json<AlgorithmShape>> {
    let a = load(&s, &c, &owner, &name).await?;
    let l = latest(&s, &c, &a).await?;
    Ok(Json(algorithm_json(&s, &a, l.as_ref())))
}

#[utoipa::path(get, path = "/v1/algorithms/{owner}", tag = "algorithms", summary = "Get an algorithm by its id (the segment is the algorithm's UUID)", responses((status = 200, body = AlgorithmShape)))]
async fn get_by_id(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AlgorithmShape>> {
    let a = s.hub.algorithms.get_algorithm_by_uuid(&c, &id).await?;
    let l = latest(&s, &c, &a).await?;
    Ok(Json(algorithm_json(&s, &a, l.as_ref())))
}

#[utoipa::path(put, path = "/v1/algorithms/{owner}/{algo}", tag = "algorithms", summary = "Update details and settings", request_body = UpdateBody, responses((status = 200, body = AlgorithmShape)))]
async fn update(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
    JsonBody(b): JsonBody<UpdateBody>,
) -> ApiResult<Json<AlgorithmShape>> {
    let a = target.load(&s, &c).await?;
    let app = b.app.as_ref().map(|o| o.as_deref());
    let a = s
        .hub
        .algorithms
        .update_algorithm(&c, &a, &b.details, &b.settings, app)
        .await?;
    Ok(Json(algorithm_json(&s, &a, None)))
}

#[utoipa::path(delete, path = "/v1/algorithms/{owner}/{algo}", tag = "algorithms", summary = "Delete an algorithm (its name stays taken)", responses((status = 204)))]
async fn remove(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.algorithms.delete_algorithm(&c, &owner, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/users/{username}/algorithms", tag = "algorithms", summary = "Algorithms of an account that the caller may read", responses((status = 200, body = Vec<UtilityAlgorithm>)))]
async fn list_for_account(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(owner): Path<String>,
) -> ApiResult<Json<Vec<UtilityAlgorithm>>> {
    let algos = s.hub.algorithms.list_algorithms(&c, &owner).await?;
    Ok(utility_algorithms(&algos))
}

#[utoipa::path(get, path = "/v1/organizations/{org}/utility-algorithms", tag = "algorithms", summary = "Algorithms of an organization that the caller may read", responses((status = 200, body = Vec<UtilityAlgorithm>)))]
async fn list_for_org(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<UtilityAlgorithm>>> {
    let algos = s.hub.algorithms.list_org_algorithms(&c, &org).await?;
    Ok(utility_algorithms(&algos))
}

/// The v1 `[UtilityAlgorithm]` list shape.
fn utility_algorithms(algos: &[Algorithm]) -> Json<Vec<UtilityAlgorithm>> {
    Json(
        algos
            .iter()
            .map(|a| UtilityAlgorithm {
                id: a.uuid.clone(),
                algoname: a.name.clone(),
                username: a.owner_name.clone(),
            })
            .collect(),
    )
}

#[utoipa::path(put, path = "/v1/algorithms/{owner}", tag = "algorithms", summary = "Update an algorithm by its id ({owner} is the algorithm's UUID)", request_body = UpdateBody, responses((status = 200, body = AlgorithmShape)))]
async fn update_by_id(
    s: State<AppState>,
    c: Caller,
    target: AlgoPath,
    b: JsonBody<UpdateBody>,
) -> ApiResult<Json<AlgorithmShape>> {
    update(s, c, target, b).await
}

/// Native: upload an artifact. `application/json` with `{"runtime": "http", ...}`
/// is an upstream definition; anything else is a wasm binary or WAT text.
#[utoipa::path(put, path = "/v1/algorithms/{owner}/{algo}/artifact", tag = "algorithms", summary = "Upload an artifact: wasm binary or WAT text; or JSON {runtime: http, url, timeout, headers}", request_body(content((Vec<u8> = "application/wasm"), (String = "text/plain"), (Object = "application/json"))), responses((status = 200, body = ArtifactUploaded)))]
async fn upload(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<ArtifactUploaded>> {
    if body.is_empty() {
        return Err(ApiError::new(
            Code::MissingField,
            "the request body must be the artifact (wasm binary, WAT text, or an http definition)",
        ));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let kind = if is_json {
        RuntimeKind::Http
    } else {
        RuntimeKind::Wasm
    };
    let a = s
        .hub
        .algorithms
        .upload_artifact(&c, &owner, &name, kind, &body)
        .await?;
    Ok(Json(ArtifactUploaded {
        algorithm: format!("{}/{}", a.owner_name, a.name),
        runtime: a.runtime.as_str(),
        artifact_digest: a.artifact_digest,
    }))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(create, get_by_id, update_by_id))
        .typed(routes!(get_one, update, remove))
        .typed_with_limit(routes!(upload), MAX_ARTIFACT_BYTES)
        .typed(routes!(list_for_account))
        .typed(routes!(list_for_org))
}
