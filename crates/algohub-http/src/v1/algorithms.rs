//! `/v1/algorithms`: algorithm management (create, get, update, delete), builds
//! (compile, list, get, logs) and versions (publish, list, get by hash), in the
//! v1 shapes (`HashResponse`, `VersionResponse`, `Build`, paged lists), plus the
//! native artifact upload and approval routes.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, QueryArgs, RawBody, parse_bool, parse_json};
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{Algorithm, Build, RuntimeKind, Version, format_millis};
use algohub_core::services::{PublishRequest, VersionEntry};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest artifact upload (a wasm module).
pub const MAX_ARTIFACT_BYTES: usize = 32 << 20;

fn self_link(s: &AppState, a: &Algorithm) -> String {
    format!("{}/v1/algorithms/{}/{}", s.base_url, a.owner_name, a.name)
}

fn version_info(entry: Option<&VersionEntry>) -> Value {
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

fn build_json(b: &Build) -> Value {
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
fn algorithm_json(s: &AppState, a: &Algorithm, latest: Option<&VersionEntry>) -> Value {
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
fn version_json(s: &AppState, a: &Algorithm, e: &VersionEntry) -> Value {
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

#[derive(Deserialize, Default)]
struct PublishBody {
    #[serde(default)]
    details: Value,
    #[serde(default)]
    settings: Value,
    #[serde(default)]
    version_info: Option<PublishInfo>,
}

#[derive(Deserialize, Default)]
struct PublishInfo {
    version_type: Option<String>,
    release_notes: Option<String>,
    sample_input: Option<Value>,
    sample_output: Option<Value>,
}

fn sample(v: Option<Value>) -> Option<String> {
    v.map(|x| match x {
        Value::String(s) => s,
        other => other.to_string(),
    })
}

#[derive(Deserialize)]
struct ListArgs {
    limit: Option<String>,
    marker: Option<String>,
    published: Option<String>,
    callable: Option<String>,
}

#[derive(Deserialize)]
struct DecisionBody {
    #[serde(default)]
    reason: String,
}

fn offset_page(
    limit: Option<&str>,
    marker: Option<&str>,
    default: usize,
) -> ApiResult<(usize, usize)> {
    let limit = match limit {
        None | Some("") => default,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiError::new(Code::InvalidInput, format!("invalid limit {l:?}")))?,
    };
    let offset = match marker {
        None | Some("") => 0,
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| ApiError::new(Code::InvalidInput, format!("invalid marker {m:?}")))?,
    };
    Ok((limit.min(1000), offset))
}

fn paged(results: Vec<Value>, total: usize, offset: usize, limit: usize, next_base: &str) -> Value {
    let next = offset + results.len();
    let marker = (next < total).then(|| next.to_string());
    let next_link = marker
        .as_ref()
        .map(|m| format!("{next_base}?limit={limit}&marker={m}"));
    json!({"results": results, "marker": marker, "next_link": next_link})
}

/// The algorithm a route names: `{owner}/{algo}`, or on the by-id routes
/// (`/v1/algorithms/{id}/...`, reference §1.5) `{owner}` holding its UUID.
/// Other path parameters (`build_id`, `hash`) ride along.
struct AlgoPath {
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
    fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }

    async fn load(
        &self,
        s: &AppState,
        c: &algohub_core::policy::Principal,
    ) -> ApiResult<Algorithm> {
        match self.params.get("algo") {
            Some(name) => load(s, c, self.param("owner"), name).await,
            None => Ok(s.hub.get_algorithm_by_uuid(c, self.param("owner")).await?),
        }
    }
}

async fn load(
    s: &AppState,
    c: &algohub_core::policy::Principal,
    owner: &str,
    name: &str,
) -> ApiResult<Algorithm> {
    Ok(s.hub.get_algorithm(c, owner, name).await?)
}

async fn latest(
    s: &AppState,
    c: &algohub_core::policy::Principal,
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
    Ok(Json(json!(
        algos
            .iter()
            .map(|a| json!({"id": a.uuid, "algoname": a.name, "username": a.owner_name}))
            .collect::<Vec<_>>()
    )))
}

async fn compile(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
) -> ApiResult<Json<Value>> {
    let a = target.load(&s, &c).await?;
    let build = s.hub.compile(&c, &a).await?;
    Ok(Json(version_json(
        &s,
        &a,
        &VersionEntry {
            build,
            version: None,
        },
    )))
}

async fn publish(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
    RawBody(body): RawBody,
) -> ApiResult<Json<Value>> {
    let b: PublishBody = if body.iter().all(|x| x.is_ascii_whitespace()) {
        PublishBody::default()
    } else {
        parse_json(&body)?
    };
    let a = target.load(&s, &c).await?;
    let info = b.version_info.unwrap_or_default();
    let req = PublishRequest {
        version_type: info.version_type,
        release_notes: info.release_notes,
        sample_input: sample(info.sample_input),
        sample_output: sample(info.sample_output),
        details: b.details,
        settings: b.settings,
    };
    let v = s.hub.publish(&c, &a, req).await?;
    let a = target.load(&s, &c).await?;
    let entry = s.hub.get_version_by_hash(&c, &a, &v.git_hash).await?;
    let entry = if entry.version.as_ref().map(|x| x.id) == Some(v.id) {
        entry
    } else {
        VersionEntry {
            build: entry.build,
            version: Some(v),
        }
    };
    Ok(Json(version_json(&s, &a, &entry)))
}

async fn versions(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Value>> {
    let a = target.load(&s, &c).await?;
    let (limit, offset) = offset_page(q.limit.as_deref(), q.marker.as_deref(), 10)?;
    let published = parse_bool(q.published.as_deref())?;
    let callable = parse_bool(q.callable.as_deref())?;
    let all: Vec<VersionEntry> = s
        .hub
        .list_versions(&c, &a)
        .await?
        .into_iter()
        .filter(|e| published.is_none_or(|p| e.version.is_some() == p))
        .filter(|e| {
            callable.is_none_or(|want| {
                e.version
                    .as_ref()
                    .is_some_and(|v| v.callability == "public")
                    == want
            })
        })
        .collect();
    let total = all.len();
    let results = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|e| version_json(&s, &a, e))
        .collect();
    Ok(Json(paged(
        results,
        total,
        offset,
        limit,
        &format!("{}/versions", self_link(&s, &a)),
    )))
}

async fn version_by_hash(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
) -> ApiResult<Json<Value>> {
    let a = target.load(&s, &c).await?;
    let e = s
        .hub
        .get_version_by_hash(&c, &a, target.param("hash"))
        .await?;
    Ok(Json(version_json(&s, &a, &e)))
}

async fn builds(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Value>> {
    let a = target.load(&s, &c).await?;
    let (limit, offset) = offset_page(q.limit.as_deref(), q.marker.as_deref(), 56)?;
    let all = s.hub.list_builds(&c, &a).await?;
    let total = all.len();
    let results = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(build_json)
        .collect();
    Ok(Json(paged(
        results,
        total,
        offset,
        limit,
        &format!("{}/builds", self_link(&s, &a)),
    )))
}

async fn build_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
) -> ApiResult<Json<Value>> {
    let a = target.load(&s, &c).await?;
    Ok(Json(build_json(
        &s.hub.get_build(&c, &a, target.param("build_id")).await?,
    )))
}

async fn build_logs(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
) -> ApiResult<Json<Value>> {
    let a = target.load(&s, &c).await?;
    Ok(Json(
        json!({"logs": s.hub.get_build(&c, &a, target.param("build_id")).await?.logs}),
    ))
}

/// Failed calls of the last 7 days (at most 200), newest first.
async fn errors(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
) -> ApiResult<Json<Value>> {
    let a = target.load(&s, &c).await?;
    let list = s.hub.list_algorithm_errors(&c, &a).await?;
    Ok(Json(json!(
        list.iter()
            .map(|e| json!({
                "created_at": e.created_at,
                "request_id": e.request_id,
                "username": e.caller_name,
                "algoname": a.name,
                "algoversion": e.version,
                "algorithm_owner": a.owner_name,
                "input": e.input,
                "error": e.error,
                "error_type": e.error_type,
                "billable_to": e.caller_name,
                "worker": "algohub",
            }))
            .collect::<Vec<_>>()
    )))
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

async fn decide(
    s: AppState,
    c: algohub_core::policy::Principal,
    owner: String,
    name: String,
    version: String,
    approve: bool,
    reason: String,
) -> ApiResult<Json<Value>> {
    let a = load(&s, &c, &owner, &name).await?;
    let v = s
        .hub
        .decide_version(&c, &a, &version, approve, &reason)
        .await?;
    Ok(Json(
        json!({"algorithm": format!("{}/{}", a.owner_name, a.name), "version": v.semver.to_string(), "status": v.status.as_str(), "reason": v.decision_reason, "approved_digest": v.approved_digest}),
    ))
}

async fn approve(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name, v)): Path<(String, String, String)>,
    RawBody(body): RawBody,
) -> ApiResult<Json<Value>> {
    let b: DecisionBody = if body.iter().all(|x| x.is_ascii_whitespace()) {
        DecisionBody {
            reason: String::new(),
        }
    } else {
        parse_json(&body)?
    };
    decide(s, c, owner, name, v, true, b.reason).await
}

async fn reject(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name, v)): Path<(String, String, String)>,
    JsonBody(b): JsonBody<DecisionBody>,
) -> ApiResult<Json<Value>> {
    decide(s, c, owner, name, v, false, b.reason).await
}

async fn pending(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Value>> {
    let list = s.hub.list_pending_versions(&c, &org).await?;
    Ok(Json(json!(list
        .iter()
        .map(|(a, v)| json!({"algorithm": format!("{}/{}", a.owner_name, a.name), "version": v.semver.to_string(), "git_hash": v.git_hash, "artifact_digest": v.artifact_digest, "published_by": v.published_by, "created_at": format_millis(v.created_at)}))
        .collect::<Vec<_>>())))
}

pub fn routes(r: Routes) -> Routes {
    r.add(op!(POST "/v1/algorithms/{owner}", "algorithms", "Create an algorithm (starts from the echo template)", body = "AlgorithmCreate", response = "Algorithm"), post(create))
        .add(op!(GET "/v1/algorithms/{owner}", "algorithms", "Get an algorithm by its id (the segment is the algorithm's UUID)", response = "Algorithm"), get(get_by_id))
        .add(op!(PUT "/v1/algorithms/{owner}", "algorithms", "Update an algorithm by its id ({owner} is the algorithm's UUID)", body = "AlgorithmUpdate", response = "Algorithm"), put(update_by_id))
        .add(op!(POST "/v1/algorithms/{owner}/compile", "algorithms", "Compile by algorithm id ({owner} is the UUID)", response = "VersionResponse"), post(compile))
        .add(op!(POST "/v1/algorithms/{owner}/versions", "algorithms", "Publish by algorithm id ({owner} is the UUID)", body = "VersionRequest", response = "VersionResponse"), post(publish).get(versions))
        .add_documented(op!(GET "/v1/algorithms/{owner}/versions", "algorithms", "Versions by algorithm id ({owner} is the UUID)", response = "PagedList"))
        .add(op!(GET "/v1/algorithms/{owner}/builds", "algorithms", "Builds by algorithm id ({owner} is the UUID)", response = "PagedList"), get(builds))
        .add(op!(GET "/v1/algorithms/{owner}/builds/{build_id}", "algorithms", "One build by algorithm id", response = "Build"), get(build_one))
        .add(op!(GET "/v1/algorithms/{owner}/builds/{build_id}/logs", "algorithms", "A build's logs by algorithm id", response = "BuildLogs"), get(build_logs))
        .add(op!(GET "/v1/algorithms/{owner}/errors", "algorithms", "Failed calls of the last 7 days by algorithm id", response = "AlgorithmErrors"), get(errors))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/errors", "algorithms", "Failed calls of the last 7 days (at most 200), newest first", response = "AlgorithmErrors"), get(errors))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}", "algorithms", "Get an algorithm", response = "Algorithm"), get(get_one))
        .add(op!(PUT "/v1/algorithms/{owner}/{algo}", "algorithms", "Update details and settings", body = "AlgorithmUpdate", response = "Algorithm"), put(update))
        .add(op!(DELETE "/v1/algorithms/{owner}/{algo}", "algorithms", "Delete an algorithm (its name stays taken)", status = 204), axum::routing::delete(remove))
        .add(op!(POST "/v1/algorithms/{owner}/{algo}/compile", "algorithms", "Build the current artifact: a new immutable build", response = "VersionResponse"), post(compile))
        .add(op!(POST "/v1/algorithms/{owner}/{algo}/versions", "algorithms", "Publish the newest build with the next semantic version", body = "VersionRequest", response = "VersionResponse"), post(publish))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/versions", "algorithms", "Builds and versions: ?limit&marker&published&callable", response = "PagedList"), get(versions))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/versions/{hash}", "algorithms", "A build or version by its version hash", response = "VersionResponse"), get(version_by_hash))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/builds", "algorithms", "Builds, newest first: ?limit&marker", response = "PagedList"), get(builds))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/builds/{build_id}", "algorithms", "One build", response = "Build"), get(build_one))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/builds/{build_id}/logs", "algorithms", "A build's logs", response = "BuildLogs"), get(build_logs))
        .add(op!(PUT "/v1/algorithms/{owner}/{algo}/artifact", "algorithms", "Upload an artifact: wasm binary or WAT text; or JSON {runtime: http, url, timeout, headers}"), put(upload).layer(axum::extract::DefaultBodyLimit::max(MAX_ARTIFACT_BYTES)))
        .add(op!(POST "/v1/algorithms/{owner}/{algo}/versions/{version}/approve", "approvals", "Approve a pending version (org admins)", body = "Decision"), post(approve))
        .add(op!(POST "/v1/algorithms/{owner}/{algo}/versions/{version}/reject", "approvals", "Reject a pending version with a reason (org admins)", body = "Decision"), post(reject))
        .add(op!(GET "/v1/organizations/{org}/pending-versions", "approvals", "Versions waiting for approval (org admins)"), get(pending))
        .add(op!(GET "/v1/users/{username}/algorithms", "algorithms", "Algorithms of an account that the caller may read"), get(list_for_account))
}
