//! Native: an algorithm's source, by version and by build
//! (`.../versions/{version}/source`, `.../builds/{build_id}/source`), for
//! those the policy lets read it (`AlgorithmService::version_source`): the wasm module as
//! stored (`application/wasm`), or as WAT text with `?format=wat`; an http
//! definition as JSON with its secrets redacted (`X-Algohub-Redacted: true`
//! says that something was). Never cached: the answer may be private.

use super::algorithms::AlgoPath;
use crate::error::ApiResult;
use crate::extract::{Caller, QueryArgs};
use crate::{AppState, routes::Routes};
use algohub_core::services::{AlgorithmSource, SourceForm};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

/// An http algorithm's definition; every header value, the url's query
/// values, user info and fragment, and any unknown field read "[redacted]"
/// (the X-Algohub-Redacted: true header says something was).
#[derive(ToSchema)]
#[schema(as = AlgorithmSource)]
#[allow(dead_code)]
struct HttpDefinition {
    runtime: Option<String>,
    url: Option<String>,
    /// Seconds.
    timeout: Option<f64>,
    headers: Option<std::collections::BTreeMap<String, String>>,
}

/// `format=wat`: the wasm module printed as WAT text.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SourceArgs {
    format: Option<String>,
}

fn answer(src: AlgorithmSource) -> Response {
    let mut resp = src.bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(src.media_type),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(hash) = HeaderValue::from_str(&src.hash) {
        h.insert("x-algohub-version-hash", hash);
    }
    if src.redacted {
        h.insert("x-algohub-redacted", HeaderValue::from_static("true"));
    }
    resp
}

#[utoipa::path(get, path = "/v1/algorithms/{owner}/{algo}/versions/{version}/source", tag = "algorithms", summary = "A version's source ({version}: 1.2.3 or a version hash): the wasm module (application/wasm; ?format=wat for text) or the http definition (JSON, secrets redacted). For the owner and members with rights on it; for anyone who may read the algorithm when its source_visibility is open; for cluster admins with super powers (audited)", params(SourceArgs), responses((status = 200, description = "the wasm module as stored (a WAT upload is kept compiled), or with ?format=wat printed as WAT text; or an http definition", content((String = "application/wasm"), (String = "text/plain"), (HttpDefinition = "application/json")))))]
async fn version_source(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
    QueryArgs(q): QueryArgs<SourceArgs>,
) -> ApiResult<Response> {
    let form = SourceForm::parse(q.format.as_deref())?;
    let a = target.load(&s, &c).await?;
    let src = s
        .hub
        .algorithms
        .version_source(&c, &a, target.param("version"), form)
        .await?;
    Ok(answer(src))
}

#[utoipa::path(get, path = "/v1/algorithms/{owner}/{algo}/builds/{build_id}/source", tag = "algorithms", summary = "A build's source, as for a version's", params(SourceArgs), responses((status = 200, description = "the wasm module as stored (a WAT upload is kept compiled), or with ?format=wat printed as WAT text; or an http definition", content((String = "application/wasm"), (String = "text/plain"), (HttpDefinition = "application/json")))))]
async fn build_source(
    State(s): State<AppState>,
    Caller(c): Caller,
    target: AlgoPath,
    QueryArgs(q): QueryArgs<SourceArgs>,
) -> ApiResult<Response> {
    let form = SourceForm::parse(q.format.as_deref())?;
    let a = target.load(&s, &c).await?;
    let src = s
        .hub
        .algorithms
        .build_source(&c, &a, target.param("build_id"), form)
        .await?;
    Ok(answer(src))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(version_source))
        .typed(routes!(build_source))
}
