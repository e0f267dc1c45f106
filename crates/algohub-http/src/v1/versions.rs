//! Builds, versions, approvals and the error listing under `/v1/algorithms`:
//! compile, publish, version and build listings (by name and by algorithm id),
//! approve / reject and the org's pending list, failed calls of the last 7 days.

use super::algorithms::{
    AlgoPath, BuildShape, VersionShape, build_json, load, self_link, version_json,
};
use super::shapes::Paged;
use super::usage::AlgorithmErrorShape;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, QueryArgs, RawBody, parse_bool, parse_json};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::model::format_millis;
use algohub_core::services::{PublishRequest, VersionEntry};
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;

/// A decision on a pending version.
#[derive(Serialize, ToSchema)]
#[schema(as = Decision)]
struct DecisionShape {
    /// owner/name.
    algorithm: String,
    version: String,
    /// published, pending or rejected.
    status: &'static str,
    reason: Option<String>,
    approved_digest: Option<String>,
}

/// A version waiting for approval.
#[derive(Serialize, ToSchema)]
struct PendingVersion {
    /// owner/name.
    algorithm: String,
    version: String,
    git_hash: String,
    artifact_digest: String,
    /// The publisher's account id.
    published_by: i64,
    created_at: String,
}

/// A build's logs.
#[derive(Serialize, ToSchema)]
struct BuildLogs {
    logs: String,
}

#[derive(Deserialize, Default, ToSchema)]
#[schema(as = VersionRequest)]
struct PublishBody {
    #[serde(default)]
    details: Value,
    #[serde(default)]
    settings: Value,
    #[serde(default)]
    version_info: Option<PublishInfo>,
}

#[derive(Deserialize, Default, ToSchema)]
#[schema(as = VersionRequestInfo)]
struct PublishInfo {
    /// major, minor, revision or patch.
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

/// Offset paging (`marker` is the offset the previous page gave) and filters.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListArgs {
    limit: Option<String>,
    marker: Option<String>,
    published: Option<String>,
    callable: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DecisionRequest)]
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

fn paged<T: ToSchema>(
    results: Vec<T>,
    total: usize,
    offset: usize,
    limit: usize,
    next_base: &str,
) -> Paged<T> {
    let next = offset + results.len();
    let marker = (next < total).then(|| next.to_string());
    let next_link = marker
        .as_ref()
        .map(|m| format!("{next_base}?limit={limit}&marker={m}"));
    Paged {
        results,
        marker,
        next_link,
    }
}

#[utoipa::path(post, path = "/v1/algorithms/{owner}/{algo}/compile", tag = "algorithms", summary = "Build the current artifact: a new immutable build", responses((status = 200, body = VersionShape)))]
async fn compile(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
) -> ApiResult<Json<VersionShape>> {
    let a = target.load(&s, &c).await?;
    let build = s.hub.algorithms.compile(&c, &a).await?;
    Ok(Json(version_json(
        &s,
        &a,
        &VersionEntry {
            build,
            version: None,
        },
    )))
}

#[utoipa::path(post, path = "/v1/algorithms/{owner}/{algo}/versions", tag = "algorithms", summary = "Publish the newest build with the next semantic version", request_body(content = Option<PublishBody>, description = "optional"), responses((status = 200, body = VersionShape)))]
async fn publish(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
    RawBody(body): RawBody,
) -> ApiResult<Json<VersionShape>> {
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
    let v = s.hub.algorithms.publish(&c, &a, req).await?;
    // Read again by id: an app transfer may have moved it meanwhile, and the
    // committed publish is still answered (from where it is now).
    let a = s.hub.algorithms.get_algorithm_by_uuid(&c, &a.uuid).await?;
    let entry = s
        .hub
        .algorithms
        .get_version_by_hash(&c, &a, &v.git_hash)
        .await?;
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

#[utoipa::path(get, path = "/v1/algorithms/{owner}/{algo}/versions", tag = "algorithms", summary = "Builds and versions: ?limit&marker&published&callable", params(ListArgs), responses((status = 200, body = Paged<VersionShape>)))]
async fn versions(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Paged<VersionShape>>> {
    let a = target.load(&s, &c).await?;
    let (limit, offset) = offset_page(q.limit.as_deref(), q.marker.as_deref(), 10)?;
    let published = parse_bool(q.published.as_deref())?;
    let callable = parse_bool(q.callable.as_deref())?;
    let all: Vec<VersionEntry> = s
        .hub
        .algorithms
        .list_versions(&c, &a)
        .await?
        .into_iter()
        .filter(|e| published.is_none_or(|p| e.version.is_some() == p))
        .filter(|e| {
            callable.is_none_or(|want| {
                e.version
                    .as_ref()
                    .is_some_and(|v| v.callability == algohub_core::model::Callability::Public)
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

#[utoipa::path(get, path = "/v1/algorithms/{owner}/{algo}/versions/{hash}", tag = "algorithms", summary = "A build or version by its version hash", responses((status = 200, body = VersionShape)))]
async fn version_by_hash(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
) -> ApiResult<Json<VersionShape>> {
    let a = target.load(&s, &c).await?;
    let e = s
        .hub
        .algorithms
        .get_version_by_hash(&c, &a, target.param("hash"))
        .await?;
    Ok(Json(version_json(&s, &a, &e)))
}

#[utoipa::path(get, path = "/v1/algorithms/{owner}/{algo}/builds", tag = "algorithms", summary = "Builds, newest first: ?limit&marker", params(ListArgs), responses((status = 200, body = Paged<BuildShape>)))]
async fn builds(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Json<Paged<BuildShape>>> {
    let a = target.load(&s, &c).await?;
    let (limit, offset) = offset_page(q.limit.as_deref(), q.marker.as_deref(), 56)?;
    let all = s.hub.algorithms.list_builds(&c, &a).await?;
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

#[utoipa::path(get, path = "/v1/algorithms/{owner}/{algo}/builds/{build_id}", tag = "algorithms", summary = "One build", responses((status = 200, body = BuildShape)))]
async fn build_one(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
) -> ApiResult<Json<BuildShape>> {
    let a = target.load(&s, &c).await?;
    Ok(Json(build_json(
        &s.hub
            .algorithms
            .get_build(&c, &a, target.param("build_id"))
            .await?,
    )))
}

#[utoipa::path(get, path = "/v1/algorithms/{owner}/{algo}/builds/{build_id}/logs", tag = "algorithms", summary = "A build's logs", responses((status = 200, body = BuildLogs)))]
async fn build_logs(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
) -> ApiResult<Json<BuildLogs>> {
    let a = target.load(&s, &c).await?;
    let logs = s
        .hub
        .algorithms
        .get_build(&c, &a, target.param("build_id"))
        .await?
        .logs;
    Ok(Json(BuildLogs { logs }))
}

/// Failed calls of the last 7 days (at most 200), newest first.
#[utoipa::path(get, path = "/v1/algorithms/{owner}/{algo}/errors", tag = "algorithms", summary = "Failed calls of the last 7 days (at most 200), newest first", responses((status = 200, body = Vec<AlgorithmErrorShape>)))]
async fn errors(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
) -> ApiResult<Json<Vec<AlgorithmErrorShape>>> {
    let a = target.load(&s, &c).await?;
    let list = s.hub.calls.list_algorithm_errors(&c, &a).await?;
    Ok(Json(super::usage::error_entries(&list)))
}

async fn decide(
    s: AppState,
    c: algohub_core::RequestCtx,
    owner: String,
    name: String,
    version: String,
    approve: bool,
    reason: String,
) -> ApiResult<Json<DecisionShape>> {
    let a = load(&s, &c, &owner, &name).await?;
    let v = s
        .hub
        .algorithms
        .decide_version(&c, &a, &version, approve, &reason)
        .await?;
    Ok(Json(DecisionShape {
        algorithm: format!("{}/{}", a.owner_name, a.name),
        version: v.semver.to_string(),
        status: v.status.as_str(),
        reason: v.decision_reason,
        approved_digest: v.approved_digest,
    }))
}

#[utoipa::path(post, path = "/v1/algorithms/{owner}/{algo}/versions/{version}/approve", tag = "approvals", summary = "Approve a pending version (org admins)", request_body(content = Option<DecisionBody>, description = "optional"), responses((status = 200, body = DecisionShape)))]
async fn approve(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name, v)): Path<(String, String, String)>,
    RawBody(body): RawBody,
) -> ApiResult<Json<DecisionShape>> {
    let b: DecisionBody = if body.iter().all(|x| x.is_ascii_whitespace()) {
        DecisionBody {
            reason: String::new(),
        }
    } else {
        parse_json(&body)?
    };
    decide(s, c, owner, name, v, true, b.reason).await
}

#[utoipa::path(post, path = "/v1/algorithms/{owner}/{algo}/versions/{version}/reject", tag = "approvals", summary = "Reject a pending version with a reason (org admins)", request_body = DecisionBody, responses((status = 200, body = DecisionShape)))]
async fn reject(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((owner, name, v)): Path<(String, String, String)>,
    JsonBody(b): JsonBody<DecisionBody>,
) -> ApiResult<Json<DecisionShape>> {
    decide(s, c, owner, name, v, false, b.reason).await
}

#[utoipa::path(get, path = "/v1/organizations/{org}/pending-versions", tag = "approvals", summary = "Versions waiting for approval (org admins)", responses((status = 200, body = Vec<PendingVersion>)))]
async fn pending(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<PendingVersion>>> {
    let list = s.hub.algorithms.list_pending_versions(&c, &org).await?;
    Ok(Json(
        list.iter()
            .map(|(a, v)| PendingVersion {
                algorithm: format!("{}/{}", a.owner_name, a.name),
                version: v.semver.to_string(),
                git_hash: v.git_hash.clone(),
                artifact_digest: v.artifact_digest.clone(),
                published_by: v.published_by,
                created_at: format_millis(v.created_at),
            })
            .collect(),
    ))
}

// The same routes by algorithm id (`{owner}` is the UUID: reference §1.5).

#[utoipa::path(post, path = "/v1/algorithms/{owner}/compile", tag = "algorithms", summary = "Compile by algorithm id ({owner} is the UUID)", responses((status = 200, body = VersionShape)))]
async fn compile_by_id(
    s: State<AppState>,
    c: Caller,
    target: AlgoPath,
) -> ApiResult<Json<VersionShape>> {
    compile(s, c, target).await
}

#[utoipa::path(post, path = "/v1/algorithms/{owner}/versions", tag = "algorithms", summary = "Publish by algorithm id ({owner} is the UUID)", request_body(content = Option<PublishBody>, description = "optional"), responses((status = 200, body = VersionShape)))]
async fn publish_by_id(
    s: State<AppState>,
    c: Caller,
    target: AlgoPath,
    body: RawBody,
) -> ApiResult<Json<VersionShape>> {
    publish(s, c, target, body).await
}

#[utoipa::path(get, path = "/v1/algorithms/{owner}/versions", tag = "algorithms", summary = "Versions by algorithm id ({owner} is the UUID)", params(ListArgs), responses((status = 200, body = Paged<VersionShape>)))]
async fn versions_by_id(
    s: State<AppState>,
    c: Caller,
    target: AlgoPath,
    q: QueryArgs<ListArgs>,
) -> ApiResult<Json<Paged<VersionShape>>> {
    versions(s, c, target, q).await
}

#[utoipa::path(get, path = "/v1/algorithms/{owner}/builds", tag = "algorithms", summary = "Builds by algorithm id ({owner} is the UUID)", params(ListArgs), responses((status = 200, body = Paged<BuildShape>)))]
async fn builds_by_id(
    s: State<AppState>,
    c: Caller,
    target: AlgoPath,
    q: QueryArgs<ListArgs>,
) -> ApiResult<Json<Paged<BuildShape>>> {
    builds(s, c, target, q).await
}

#[utoipa::path(get, path = "/v1/algorithms/{owner}/builds/{build_id}", tag = "algorithms", summary = "One build by algorithm id", responses((status = 200, body = BuildShape)))]
async fn build_one_by_id(
    s: State<AppState>,
    c: Caller,
    target: AlgoPath,
) -> ApiResult<Json<BuildShape>> {
    build_one(s, c, target).await
}

#[utoipa::path(get, path = "/v1/algorithms/{owner}/builds/{build_id}/logs", tag = "algorithms", summary = "A build's logs by algorithm id", responses((status = 200, body = BuildLogs)))]
async fn build_logs_by_id(
    s: State<AppState>,
    c: Caller,
    target: AlgoPath,
) -> ApiResult<Json<BuildLogs>> {
    build_logs(s, c, target).await
}

#[utoipa::path(get, path = "/v1/algorithms/{owner}/errors", tag = "algorithms", summary = "Failed calls of the last 7 days by algorithm id", responses((status = 200, body = Vec<AlgorithmErrorShape>)))]
async fn errors_by_id(
    s: State<AppState>,
    c: Caller,
    target: AlgoPath,
) -> ApiResult<Json<Vec<AlgorithmErrorShape>>> {
    errors(s, c, target).await
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(compile_by_id))
        .typed(routes!(publish_by_id, versions_by_id))
        .typed(routes!(builds_by_id))
        .typed(routes!(build_one_by_id))
        .typed(routes!(build_logs_by_id))
        .typed(routes!(errors_by_id))
        .typed(routes!(errors))
        .typed(routes!(compile))
        .typed(routes!(publish, versions))
        .typed(routes!(version_by_hash))
        .typed(routes!(builds))
        .typed(routes!(build_one))
        .typed(routes!(build_logs))
        .typed(routes!(approve))
        .typed(routes!(reject))
        .typed(routes!(pending))
}
