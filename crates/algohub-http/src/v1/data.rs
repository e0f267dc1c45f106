//! `/v1/data/...` and `/v1/connector/data/...`: the Algorithmia data API.
//!
//! Design: one handler per method serves both prefixes, files and
//! directories alike (the path decides); the wildcard is percent-decoded by
//! the router, so `%2F` inside a segment is a separator, and the service checks
//! the decoded segments (no `..`, no reserved names). Status codes follow the
//! clients: exactly 200 for directory create, PATCH and GET; HEAD answers with
//! an `X-Error-Message` header on failure; `last_modified` is
//! `%Y-%m-%dT%H:%M:%S.%3fZ`.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, QueryArgs, RawBody, parse_bool};
use crate::ops::RawErrorBody;
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use algohub_core::services::{DataAcl, DataEntry};
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{TimeZone, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

/// Largest file a PUT may store.
pub const MAX_FILE_BYTES: usize = 64 << 20;

#[derive(Deserialize)]
struct ListArgs {
    marker: Option<String>,
    acl: Option<String>,
    force: Option<String>,
}

#[derive(Deserialize)]
struct AclBody {
    read: Vec<String>,
}

#[derive(Deserialize)]
struct CreateDir {
    name: String,
    #[serde(default)]
    acl: Option<AclBody>,
}

#[derive(Deserialize)]
struct PatchDir {
    acl: AclBody,
}

fn last_modified(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn data_type(kind: &'static str) -> (header::HeaderName, HeaderValue) {
    (
        header::HeaderName::from_static("x-data-type"),
        HeaderValue::from_static(kind),
    )
}

async fn root(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Response> {
    let names = s.hub.data_root(&c).await?;
    let folders: Vec<Value> = names.into_iter().map(|n| json!({"name": n})).collect();
    Ok(([data_type("directory")], Json(json!({"folders": folders}))).into_response())
}

async fn get_path(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Response> {
    let path = s.hub.data_path(&c, &raw).await?;
    match s.hub.data_stat(&c, &path).await? {
        DataEntry::File { .. } => {
            let bytes = s.hub.data_read_file(&c, &path).await?;
            Ok((
                [
                    data_type("file"),
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        DataEntry::Dir => {
            let with_acl = parse_bool(q.acl.as_deref())?.unwrap_or(false);
            let page = s
                .hub
                .data_list(
                    &c,
                    &path,
                    q.marker.as_deref().filter(|m| !m.is_empty()),
                    with_acl,
                )
                .await?;
            let mut body = json!({
                "folders": page.folders.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
                "files": page.files.iter().map(|(n, size, m)| json!({"filename": n, "size": size, "last_modified": last_modified(*m)})).collect::<Vec<_>>(),
                "marker": page.marker,
            });
            if let Some(acl) = page.acl {
                body["acl"] = json!({"read": acl.to_read_list()});
            }
            Ok(([data_type("directory")], Json(body)).into_response())
        }
    }
}

async fn head_path(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
) -> Response {
    let found = match s.hub.data_path(&c, &raw).await {
        Ok(path) => s.hub.data_stat(&c, &path).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(DataEntry::File { size, modified }) => {
            let mut r = [data_type("file")].into_response();
            if let Ok(v) = HeaderValue::from_str(&size.to_string()) {
                r.headers_mut()
                    .insert(header::HeaderName::from_static("x-data-size"), v);
            }
            if let Ok(v) = HeaderValue::from_str(&last_modified(modified)) {
                r.headers_mut()
                    .insert(header::HeaderName::from_static("x-last-modified"), v);
            }
            r
        }
        Ok(DataEntry::Dir) => [data_type("directory")].into_response(),
        Err(e) => {
            let status = crate::error::status_of(e.kind());
            let mut r = status.into_response();
            // Server faults keep their cause for the logs, as the JSON renderer does.
            let message = if status.is_server_error() {
                tracing::error!(error = %e.message, "data HEAD failed");
                "internal error".to_string()
            } else {
                e.message.replace(['\r', '\n'], " ")
            };
            if let Ok(v) = HeaderValue::from_str(&message) {
                r.headers_mut()
                    .insert(header::HeaderName::from_static("x-error-message"), v);
            }
            r.extensions_mut().insert(RawErrorBody);
            r
        }
    }
}

async fn put_file(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<Json<Value>> {
    let path = s.hub.data_path(&c, &raw).await?;
    s.hub.data_write_file(&c, &path, body.to_vec()).await?;
    Ok(Json(json!({"result": path.uri()})))
}

async fn create_dir(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
    JsonBody(b): JsonBody<CreateDir>,
) -> ApiResult<Json<Value>> {
    let parent = s.hub.data_path(&c, &raw).await?;
    let acl = b
        .acl
        .map(|a| DataAcl::from_read_list(&a.read))
        .transpose()?;
    let made = s.hub.data_create_dir(&c, &parent, &b.name, acl).await?;
    Ok(Json(json!({"result": made.uri()})))
}

async fn patch_dir(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
    JsonBody(b): JsonBody<PatchDir>,
) -> ApiResult<Json<Value>> {
    let path = s.hub.data_path(&c, &raw).await?;
    let acl = DataAcl::from_read_list(&b.acl.read)?;
    s.hub.data_set_acl(&c, &path, acl).await?;
    Ok(Json(
        json!({"result": path.uri(), "acl": {"read": acl.to_read_list()}}),
    ))
}

async fn delete_path(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Response> {
    let force = parse_bool(q.force.as_deref())?.unwrap_or(false);
    let path = s.hub.data_path(&c, &raw).await?;
    match s.hub.data_delete(&c, &path, force).await {
        Ok(n) => Ok(Json(json!({"result": {"deleted": n}})).into_response()),
        // The clients read `error.deleted` on a failed directory delete.
        Err(e) if e.code == Code::DataConflict => {
            let status = crate::error::status_of(e.kind());
            let body = json!({"error": {"message": e.message, "code": e.code.number(), "reason": e.code.slug(), "deleted": 0}});
            Ok((status, Json(body)).into_response())
        }
        Err(e) => Err(ApiError::from(e)),
    }
}

/// A wildcard route for one prefix, with every method.
fn path_routes(r: Routes, prefix: &'static str) -> Routes {
    let limit = || DefaultBodyLimit::max(MAX_FILE_BYTES);
    let (g, h, p, po, pa, d) = match prefix {
        "data" => (
            op!(GET "/v1/data/{*path}", "data", "A file's bytes, or a directory listing (?marker, ?acl=true)"),
            op!(HEAD "/v1/data/{*path}", "data", "Whether a file or directory exists (X-Error-Message on failure)"),
            op!(PUT "/v1/data/{*path}", "data", "Store a file (the body, verbatim); replaces an existing one"),
            op!(POST "/v1/data/{*path}", "data", "Create a directory inside this one: {name, acl?}", body = "DataCreateDirectory"),
            op!(PATCH "/v1/data/{*path}", "data", "Change a collection's ACL: {acl: {read: [...]}}", body = "DataAclUpdate"),
            op!(DELETE "/v1/data/{*path}", "data", "Delete a file, or a directory (?force=true when not empty)"),
        ),
        _ => (
            op!(GET "/v1/connector/data/{*path}", "data", "Same as GET /v1/data/{path}"),
            op!(HEAD "/v1/connector/data/{*path}", "data", "Same as HEAD /v1/data/{path}"),
            op!(PUT "/v1/connector/data/{*path}", "data", "Same as PUT /v1/data/{path}"),
            op!(POST "/v1/connector/data/{*path}", "data", "Same as POST /v1/data/{path}", body = "DataCreateDirectory"),
            op!(PATCH "/v1/connector/data/{*path}", "data", "Same as PATCH /v1/data/{path}", body = "DataAclUpdate"),
            op!(DELETE "/v1/connector/data/{*path}", "data", "Same as DELETE /v1/data/{path}"),
        ),
    };
    // All methods share one path: register one MethodRouter, document each op.
    let router = get(get_path)
        .head(head_path)
        .put(put_file)
        .post(create_dir)
        .patch(patch_dir)
        .delete(delete_path)
        .layer(limit());
    r.add_many(&[g, h, p, po, pa, d], router)
}

pub fn routes(r: Routes) -> Routes {
    let r = r
        .add(
            op!(GET "/v1/data", "data", "The caller's data namespaces; the first folder is the caller's username"),
            get(root),
        )
        .add(
            op!(GET "/v1/connector/data", "data", "Same as GET /v1/data"),
            get(root),
        );
    path_routes(path_routes(r, "data"), "connector")
}

#[cfg(test)]
mod tests {
    #[test]
    fn last_modified_has_the_client_format() {
        assert_eq!(
            super::last_modified(1_616_407_872_123),
            "2021-03-22T10:11:12.123Z"
        );
        assert_eq!(
            super::last_modified(1_616_407_872_000),
            "2021-03-22T10:11:12.000Z"
        );
    }
}
