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
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::services::{DataAcl, DataEntry};
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// A directory in a listing.
#[derive(Serialize, ToSchema)]
struct Folder {
    name: String,
}

/// A file in a listing.
#[derive(Serialize, ToSchema)]
struct FileEntry {
    filename: String,
    size: u64,
    /// 2021-03-22T10:11:12.123Z.
    last_modified: String,
}

/// A collection's ACL: `user://*` (public), `algo://...` or nothing (private).
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = DataAcl)]
struct AclBody {
    read: Vec<String>,
}

/// The data namespaces the caller may list (`/v1/data`).
#[derive(Serialize, ToSchema)]
struct DataRoot {
    folders: Vec<Folder>,
}

/// A directory listing; `acl` with `?acl=true`, `marker` while more follow.
#[derive(Serialize, ToSchema)]
struct DataListing {
    folders: Vec<Folder>,
    files: Vec<FileEntry>,
    marker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acl: Option<AclBody>,
}

/// The data URI written or created.
#[derive(Serialize, ToSchema)]
struct DataWritten {
    result: String,
}

/// The collection and its new ACL.
#[derive(Serialize, ToSchema)]
struct DataAclChanged {
    result: String,
    acl: AclBody,
}

#[derive(Serialize, ToSchema)]
struct Deleted {
    deleted: u64,
}

/// How many entries a delete removed.
#[derive(Serialize, ToSchema)]
struct DataDeleted {
    result: Deleted,
}

fn acl_body(acl: DataAcl) -> AclBody {
    AclBody {
        read: acl.to_read_list().into_iter().map(String::from).collect(),
    }
}

/// Largest file a PUT may store.
pub const MAX_FILE_BYTES: usize = 64 << 20;

/// `marker` and `acl=true` (listings), `force=true` (deletes).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListArgs {
    marker: Option<String>,
    acl: Option<String>,
    force: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DataCreateDirectory)]
struct CreateDir {
    name: String,
    #[serde(default)]
    acl: Option<AclBody>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DataAclUpdate)]
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

#[utoipa::path(get, path = "/v1/data", tag = "data", summary = "The caller's data namespaces; the first folder is the caller's username", responses((status = 200, body = DataRoot)))]
async fn root(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Response> {
    let names = s.hub.data.data_root(&c).await?;
    let folders = names.into_iter().map(|name| Folder { name }).collect();
    Ok(([data_type("directory")], Json(DataRoot { folders })).into_response())
}

#[utoipa::path(get, path = "/v1/data/{path}", tag = "data", summary = "A file's bytes, or a directory listing (?marker, ?acl=true)", params(ListArgs), responses((status = 200, description = "a file's bytes (X-Data-Type: file), or a directory listing (X-Data-Type: directory)", headers(("x-data-type" = String, description = "file or directory")), content((String = "application/octet-stream"), (DataListing = "application/json")))))]
async fn get_path(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Response> {
    let path = s.hub.data.data_path(&c, &raw).await?;
    match s.hub.data.data_stat(&c, &path).await? {
        DataEntry::File { .. } => {
            let bytes = s.hub.data.data_read_file(&c, &path).await?;
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
                .data
                .data_list(
                    &c,
                    &path,
                    q.marker.as_deref().filter(|m| !m.is_empty()),
                    with_acl,
                )
                .await?;
            let body = DataListing {
                folders: page
                    .folders
                    .into_iter()
                    .map(|name| Folder { name })
                    .collect(),
                files: page
                    .files
                    .into_iter()
                    .map(|(filename, size, m)| FileEntry {
                        filename,
                        size,
                        last_modified: last_modified(m),
                    })
                    .collect(),
                marker: page.marker,
                acl: page.acl.map(acl_body),
            };
            Ok(([data_type("directory")], Json(body)).into_response())
        }
    }
}

#[utoipa::path(head, path = "/v1/data/{path}", tag = "data", summary = "Whether a file or directory exists (X-Error-Message on failure)", responses((status = 200, description = "it exists", headers(("x-data-type" = String, description = "file or directory"), ("x-data-size" = u64, description = "a file's size in bytes"), ("x-last-modified" = String, description = "a file's last change")))))]
async fn head_path(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
) -> Response {
    let found = match s.hub.data.data_path(&c, &raw).await {
        Ok(path) => s.hub.data.data_stat(&c, &path).await,
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

#[utoipa::path(put, path = "/v1/data/{path}", tag = "data", summary = "Store a file (the body, verbatim); replaces an existing one", request_body(content = String, content_type = "application/octet-stream"), responses((status = 200, body = DataWritten)))]
async fn put_file(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<Json<DataWritten>> {
    let path = s.hub.data.data_path(&c, &raw).await?;
    s.hub.data.data_write_file(&c, &path, body.to_vec()).await?;
    Ok(Json(DataWritten { result: path.uri() }))
}

#[utoipa::path(post, path = "/v1/data/{path}", tag = "data", summary = "Create a directory inside this one: {name, acl?}", request_body = CreateDir, responses((status = 200, body = DataWritten)))]
async fn create_dir(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
    JsonBody(b): JsonBody<CreateDir>,
) -> ApiResult<Json<DataWritten>> {
    let parent = s.hub.data.data_path(&c, &raw).await?;
    let acl = b
        .acl
        .map(|a| DataAcl::from_read_list(&a.read))
        .transpose()?;
    let made = s
        .hub
        .data
        .data_create_dir(&c, &parent, &b.name, acl)
        .await?;
    Ok(Json(DataWritten { result: made.uri() }))
}

#[utoipa::path(patch, path = "/v1/data/{path}", tag = "data", summary = "Change a collection's ACL: {acl: {read: [...]}}", request_body = PatchDir, responses((status = 200, body = DataAclChanged)))]
async fn patch_dir(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
    JsonBody(b): JsonBody<PatchDir>,
) -> ApiResult<Json<DataAclChanged>> {
    let path = s.hub.data.data_path(&c, &raw).await?;
    let acl = DataAcl::from_read_list(&b.acl.read)?;
    s.hub.data.data_set_acl(&c, &path, acl).await?;
    Ok(Json(DataAclChanged {
        result: path.uri(),
        acl: acl_body(acl),
    }))
}

#[utoipa::path(delete, path = "/v1/data/{path}", tag = "data", summary = "Delete a file, or a directory (?force=true when not empty)", params(ListArgs), responses((status = 200, body = DataDeleted)))]
async fn delete_path(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(raw): Path<String>,
    QueryArgs(q): QueryArgs<ListArgs>,
) -> ApiResult<Response> {
    let force = parse_bool(q.force.as_deref())?.unwrap_or(false);
    let path = s.hub.data.data_path(&c, &raw).await?;
    match s.hub.data.data_delete(&c, &path, force).await {
        Ok(n) => Ok(Json(DataDeleted {
            result: Deleted { deleted: n },
        })
        .into_response()),
        // The clients read `error.deleted` on a failed directory delete.
        Err(e) if e.code == Code::DataConflict => {
            let status = crate::error::status_of(e.kind());
            let mut body = crate::error::ErrorBody::new(e.code, e.message);
            body.error.deleted = Some(0);
            Ok((status, Json(body)).into_response())
        }
        Err(e) => Err(ApiError::from(e)),
    }
}

/// A wildcard route for one prefix, with every method.
// The same routes under `/v1/connector/data` (the data connector API).

#[utoipa::path(get, path = "/v1/connector/data", tag = "data", summary = "Same as GET /v1/data", responses((status = 200, body = DataRoot)))]
async fn connector_root(s: State<AppState>, c: Caller) -> ApiResult<Response> {
    root(s, c).await
}

#[utoipa::path(get, path = "/v1/connector/data/{path}", tag = "data", summary = "Same as GET /v1/data/{path}", params(ListArgs), responses((status = 200, description = "a file's bytes (X-Data-Type: file), or a directory listing (X-Data-Type: directory)", headers(("x-data-type" = String, description = "file or directory")), content((String = "application/octet-stream"), (DataListing = "application/json")))))]
async fn connector_get_path(
    s: State<AppState>,
    c: Caller,
    target: Path<String>,
    q: QueryArgs<ListArgs>,
) -> ApiResult<Response> {
    get_path(s, c, target, q).await
}

#[utoipa::path(head, path = "/v1/connector/data/{path}", tag = "data", summary = "Same as HEAD /v1/data/{path}", responses((status = 200, description = "it exists", headers(("x-data-type" = String, description = "file or directory"), ("x-data-size" = u64, description = "a file's size in bytes"), ("x-last-modified" = String, description = "a file's last change")))))]
async fn connector_head_path(s: State<AppState>, c: Caller, target: Path<String>) -> Response {
    head_path(s, c, target).await
}

#[utoipa::path(put, path = "/v1/connector/data/{path}", tag = "data", summary = "Same as PUT /v1/data/{path}", request_body(content = String, content_type = "application/octet-stream"), responses((status = 200, body = DataWritten)))]
async fn connector_put_file(
    s: State<AppState>,
    c: Caller,
    target: Path<String>,
    body: RawBody,
) -> ApiResult<Json<DataWritten>> {
    put_file(s, c, target, body).await
}

#[utoipa::path(post, path = "/v1/connector/data/{path}", tag = "data", summary = "Same as POST /v1/data/{path}", request_body = CreateDir, responses((status = 200, body = DataWritten)))]
async fn connector_create_dir(
    s: State<AppState>,
    c: Caller,
    target: Path<String>,
    body: JsonBody<CreateDir>,
) -> ApiResult<Json<DataWritten>> {
    create_dir(s, c, target, body).await
}

#[utoipa::path(patch, path = "/v1/connector/data/{path}", tag = "data", summary = "Same as PATCH /v1/data/{path}", request_body = PatchDir, responses((status = 200, body = DataAclChanged)))]
async fn connector_patch_dir(
    s: State<AppState>,
    c: Caller,
    target: Path<String>,
    body: JsonBody<PatchDir>,
) -> ApiResult<Json<DataAclChanged>> {
    patch_dir(s, c, target, body).await
}

#[utoipa::path(delete, path = "/v1/connector/data/{path}", tag = "data", summary = "Same as DELETE /v1/data/{path}", params(ListArgs), responses((status = 200, body = DataDeleted)))]
async fn connector_delete_path(
    s: State<AppState>,
    c: Caller,
    target: Path<String>,
    q: QueryArgs<ListArgs>,
) -> ApiResult<Response> {
    delete_path(s, c, target, q).await
}

/// The wildcard routes take any body size up to a file's limit.
fn limited(
    (schemas, paths, handler): utoipa_axum::router::UtoipaMethodRouter<AppState>,
) -> utoipa_axum::router::UtoipaMethodRouter<AppState> {
    (
        schemas,
        paths,
        handler.layer(DefaultBodyLimit::max(MAX_FILE_BYTES)),
    )
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(root))
        .typed(routes!(connector_root))
        .typed_at(
            "/v1/data/{*path}",
            limited(routes!(
                get_path,
                head_path,
                put_file,
                create_dir,
                patch_dir,
                delete_path
            )),
        )
        .typed_at(
            "/v1/connector/data/{*path}",
            limited(routes!(
                connector_get_path,
                connector_head_path,
                connector_put_file,
                connector_create_dir,
                connector_patch_dir,
                connector_delete_path
            )),
        )
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
