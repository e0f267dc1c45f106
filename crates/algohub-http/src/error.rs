//! One error renderer: `{"error": {"message", "code", "reason"}}` with the status
//! from the code table. 5xx bodies carry a fixed message; the cause is logged.

use algohub_core::{Code, Error, ErrorKind};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error as the HTTP layer returns it.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self(Error::new(code, message))
    }
}

/// The body of every error answer (`Error` in the document).
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub message: String,
    pub code: u32,
    pub reason: &'static str,
    /// With `Retry-After`, on a refusal by a limit: `concurrency`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_kind: Option<&'static str>,
    /// What the limit applies to, e.g. `account:alice`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Seconds after which a retry may succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// On a refused data delete: how many entries were deleted (0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted: Option<u64>,
}

impl ErrorBody {
    pub fn new(code: Code, message: String) -> Self {
        Self {
            error: ErrorDetail {
                message,
                code: code.number(),
                reason: code.slug(),
                limit_kind: None,
                scope: None,
                retry_after: None,
                deleted: None,
            },
        }
    }
}

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = status_of(self.0.kind());
        let message = if status.is_server_error() {
            tracing::error!(code = self.0.code.slug(), error = %self.0.message, "request failed");
            if status == StatusCode::SERVICE_UNAVAILABLE {
                "the service is temporarily unavailable; try again".to_string()
            } else {
                "internal error".to_string()
            }
        } else {
            self.0.message
        };
        let mut body = ErrorBody::new(self.0.code, message);
        let Some(limit) = self.0.limit else {
            return (status, axum::Json(body)).into_response();
        };
        body.error.limit_kind = Some(limit.limit_kind);
        body.error.scope = Some(limit.scope);
        if limit.retry_after == 0 {
            // A limit that waiting does not lift (a storage quota).
            return (status, axum::Json(body)).into_response();
        }
        body.error.retry_after = Some(limit.retry_after);
        (
            status,
            [(header::RETRY_AFTER, limit.retry_after.to_string())],
            axum::Json(body),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(Code::RouteNotFound, format!("no route for {}", uri.path()))
}

pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    let mut r = ApiError::new(
        Code::MethodNotAllowed,
        format!("{method} is not allowed on {}", uri.path()),
    )
    .into_response();
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}
