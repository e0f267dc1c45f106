//! Builds, versions, approvals and the error listing under `/v1/algorithms`:
//! compile, publish, version and build listings (by name and by algorithm id),
//! approve / reject and the org's pending list, failed calls of the last 7 days.

use super::algorithms::{AlgoPath, build_json, load, self_link, version_json};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, QueryArgs, RawBody, parse_bool, parse_json};
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use algohub_core::model::format_millis;
use algohub_core::services::{PublishRequest, VersionEntry};
use axum::Json;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

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
    // Read again by id: an app transfer may have moved it meanwhile, and the
    // committed publish is still answered (from where it is now).
    let a = s.hub.get_algorithm_by_uuid(&c, &a.uuid).await?;
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
    r.add(op!(POST "/v1/algorithms/{owner}/compile", "algorithms", "Compile by algorithm id ({owner} is the UUID)", response = "VersionResponse"), post(compile))
        .add(op!(POST "/v1/algorithms/{owner}/versions", "algorithms", "Publish by algorithm id ({owner} is the UUID)", body = "VersionRequest", response = "VersionResponse"), post(publish).get(versions))
        .add_documented(op!(GET "/v1/algorithms/{owner}/versions", "algorithms", "Versions by algorithm id ({owner} is the UUID)", response = "PagedList"))
        .add(op!(GET "/v1/algorithms/{owner}/builds", "algorithms", "Builds by algorithm id ({owner} is the UUID)", response = "PagedList"), get(builds))
        .add(op!(GET "/v1/algorithms/{owner}/builds/{build_id}", "algorithms", "One build by algorithm id", response = "Build"), get(build_one))
        .add(op!(GET "/v1/algorithms/{owner}/builds/{build_id}/logs", "algorithms", "A build's logs by algorithm id", response = "BuildLogs"), get(build_logs))
        .add(op!(GET "/v1/algorithms/{owner}/errors", "algorithms", "Failed calls of the last 7 days by algorithm id", response = "AlgorithmErrors"), get(errors))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/errors", "algorithms", "Failed calls of the last 7 days (at most 200), newest first", response = "AlgorithmErrors"), get(errors))
        .add(op!(POST "/v1/algorithms/{owner}/{algo}/compile", "algorithms", "Build the current artifact: a new immutable build", response = "VersionResponse"), post(compile))
        .add(op!(POST "/v1/algorithms/{owner}/{algo}/versions", "algorithms", "Publish the newest build with the next semantic version", body = "VersionRequest", response = "VersionResponse"), post(publish))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/versions", "algorithms", "Builds and versions: ?limit&marker&published&callable", response = "PagedList"), get(versions))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/versions/{hash}", "algorithms", "A build or version by its version hash", response = "VersionResponse"), get(version_by_hash))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/builds", "algorithms", "Builds, newest first: ?limit&marker", response = "PagedList"), get(builds))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/builds/{build_id}", "algorithms", "One build", response = "Build"), get(build_one))
        .add(op!(GET "/v1/algorithms/{owner}/{algo}/builds/{build_id}/logs", "algorithms", "A build's logs", response = "BuildLogs"), get(build_logs))
        .add(op!(POST "/v1/algorithms/{owner}/{algo}/versions/{version}/approve", "approvals", "Approve a pending version (org admins)", body = "Decision"), post(approve))
        .add(op!(POST "/v1/algorithms/{owner}/{algo}/versions/{version}/reject", "approvals", "Reject a pending version with a reason (org admins)", body = "Decision"), post(reject))
        .add(op!(GET "/v1/organizations/{org}/pending-versions", "approvals", "Versions waiting for approval (org admins)"), get(pending))
}
