//! `/v1/algorithms`: algorithm management (create, get, update, delete, list)
//! in the v1 shapes (`HashResponse`), the native artifact upload, and the
//! helpers the builds and versions routes (`versions.rs`) share: the
//! [`AlgoPath`] extractor (by name or, on the by-id routes, by UUID) and the
//! JSON shapes of algorithms, builds and versions.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, RawBody};
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{Algorithm, Build, RuntimeKind, Version, format_millis};
use algohub_core::services::VersionEntry;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest artifact upload (a wasm module).
pub const MAX_ARTIFACT_BYTES: usize = 32 << 20;

pub(super) fn self_link(s: &AppState, a: &Algorithm) -> String {
    format!("{}/v1/algorithms/{}/{}", s.base_url, a.owner_name, a.name)
}

pub(super) fn version_info(entry: Option<&VersionEntry>) -> Value {
    match entry {
        None => json!({"insights_enabled": false}),
        Some(e) => {
            let mut vi = json!({"git_hash": e.build.commit_sha, "insights_enabled": false});
            if let Some(v) = &e.version {
                vi["semantic_version"] = json!(v.semver.to_string());
                vi["version_uuid"] = json!(v.uuid);
                vi["release_notes"] = json!(v.release_notes);
                vi["status"] = json!(v.status.as_str());
                vi["callability"] = json!(v.callability);
                if let Some(si) = &v.sample_input {
                    vi["sample_input"] = json!(si);
                }
                if let Some(so) = &v.sample_output {
                    vi["sample_output"] = json!(so);
                }
            }
            vi
        }
    }
}

pub(super) fn build_json(b: &Build) -> Value {
    let mut v = json!({
        "build_id": b.uuid,
        "commit_sha": b.commit_sha,
        "started_at": format_millis(b.started_at),
        "finished_at": b.finished_at.map(format_millis),
        "status": b.status,
        "resource_type": "algorithm_build",
    });
    if let Some(sv) = &b.semantic_version {
        v["version_info"] = json!({"semantic_version": sv});
    }
    v
}

/// The algorithm object (`HashResponse` + `version_info` of the latest version).
pub(super) fn algorithm_json(s: &AppState, a: &Algorithm, latest: Option<&VersionEntry>) -> Value {
    json!({
        "id": a.uuid,
        "name": a.name,
        "owner": a.owner_name,
        "details": a.details,
        "settings": a.settings,
        "runtime": a.runtime.as_str(),
        "version_info": version_info(latest),
        "self_link": self_link(s, a),
        "resource_type": "algorithm",
    })
}

/// A `VersionResponse` for one build (published or not).
pub(super) fn version_json(s: &AppState, a: &Algorithm, e: &VersionEntry) -> Value {
    let settings = e
        .version
        .as_ref()
        .map_or(&a.settings, |v: &Version| &v.settings);
    json!({
        "id": a.uuid,
        "name": a.name,
        "details": a.details,
        "settings": settings,
        "version_info": version_info(Some(e)),
        "build": build_json(&e.build),
        "compilation": {"successful": e.build.status == "succeeded", "output": e.build.logs},
        "self_link": format!("{}/versions/{}", self_link(s, a), e.build.commit_sha),
        "resource_type": "algorithm",
    })
}

#[derive(Deserialize)]
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

#[derive(Deserialize)]
struct UpdateBody {
    #[serde(default)]
    details: Value,
    #[serde(default)]
    settings: Value,
    /// Native: move into an app (a name) or out of any (null).
    #[serde(default, with = "double_option")]
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
            None => Ok(s.hub.get_algorithm_by_uuid(c, self.param("owner")).await?),
        }
    }
}

pub(super) async fn load(
    s: &AppState,
    c: &algohub_core::RequestCtx,
    owner: &str,
    name: &str,
) -> ApiResult<Algorithm> {
    Ok(s.hub.get_algorithm(c, owner, name).await?)
}

pub(super) async fn latest(
    s: &AppState,
    c: &algohub_core::RequestCtx,
    a: &Algorithm,
) -> ApiResult<Option<VersionEntry>> {
    let entries = s.hub.list_versions(c, a).await?;
    Ok(entries.into_iter().find(|e| e.version.is_some()))
}

async fn create(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(owner): Path<String>,
    JsonBody(b): JsonBody<CreateBody>,
) -> ApiResult<Json<Value>> {
    let a = s
        .hub
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

async fn get_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let a = load(&s, &c, &owner, &name).await?;
    let l = latest(&s, &c, &a).await?;
    Ok(Json(algorithm_json(&s, &a, l.as_ref())))
}

async fn get_by_id(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let a = s.hub.get_algorithm_by_uuid(&c, &id).await?;
    let l = latest(&s, &c, &a).await?;
    Ok(Json(algorithm_json(&s, &a, l.as_ref())))
}

async fn update(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
    JsonBody(b): JsonBody<UpdateBody>,
) -> ApiResult<Json<Value>> {
    let a = target.load(&s, &c).await?;
    let app = b.app.as_ref().map(|o| o.as_deref());
    let a = s
        .hub
        .update_algorithm(&c, &a, &b.details, &b.settings, app)
        .await?;
    Ok(Json(algorithm_json(&s, &a, None)))
}

async fn remove(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.hub.delete_algorithm(&c, &owner, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_for_account(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(owner): Path<String>,
) -> ApiResult<Json<Value>> {
    let algos = s.hub.list_algorithms(&c, &owner).await?;
    Ok(utility_algorithms(&algos))
}

async fn list_for_org(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Value>> {
    let algos = s.hub.list_org_algorithms(&c, &org).await?;
    Ok(utility_algorithms(&algos))
}

/// The v1 `[UtilityAlgorithm]` list shape.
fn utility_algorithms(algos: &[Algorithm]) -> Json<Value> {
    Json(json!(
        algos
            .iter()
            .map(|a| json!({"id": a.uuid, "algoname": a.name, "username": a.owner_name}))
            .collect::<Vec<_>>()
    ))
}

async fn update_by_id(
    s: State<AppState>,
    c: Caller,
    target: AlgoPath,
    b: JsonBody<UpdateBody>,
) -> ApiResult<Json<Value>> {
    update(s, c, target, b).await
}

/// Native: upload an artifact. `application/json` with `{"runtime": "http", ...}`
/// is an upstream definition; anything else is a wasm binary or WAT text.
async fn upload(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<Value>> {
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
        .upload_artifact(&c, &owner, &name, kind, &body)
        .await?;
    Ok(Json(
        json!({"algorithm": format!("{}/{}", a.owner_name, a.name), "runtime": a.runtime.as_str(), "artifact_digest": a.artifact_digest}),
    ))
}

pub fn routes(r: Routes) -> Routes {
    r.add(op!(POST "/v1/algorithms/{owner}", "algorithms", "Create an algorithm (starts from the echo template)", body = "AlgorithmCreate", response = "Algorithm"), post(create))
        .add(op!(GET "/v1/algorithms/{owner}", "algorithms", "Get an algorithm by its id (the segment is the algorithm's UUID)", response = "Algorithm"), get(get_by_id))
        .add(op!(PUT "/v1/algorithms/{owner}", "algorithms", "Update an algorithm by its id ({owner} is the algorithm's UUID)", body = "AlgorithmUpdate", response = "Algorithm"), put(update_by_id))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}", "algorithms", "Get an algorithm", response = "Algorithm"), get(get_one))
        .add(op!(PUT "/v1/algorithms/{owner}/{algo}", "algorithms", "Update details and settings", body = "AlgorithmUpdate", response = "Algorithm"), put(update))
        .add(op!(DELETE "/v1/algorithms/{owner}/{algo}", "algorithms", "Delete an algorithm (its name stays taken)", status = 204), axum::routing::delete(remove))
        .add(op!(PUT "/v1/algorithms/{owner}/{algo}/artifact", "algorithms", "Upload an artifact: wasm binary or WAT text; or JSON {runtime: http, url, timeout, headers}"), put(upload).layer(axum::extract::DefaultBodyLimit::max(MAX_ARTIFACT_BYTES)))
        .add(op!(GET "/v1/users/{username}/algorithms", "algorithms", "Algorithms of an account that the caller may read"), get(list_for_account))
        .add(op!(GET "/v1/organizations/{org}/utility-algorithms", "algorithms", "Algorithms of an organization that the caller may read"), get(list_for_org))
}
