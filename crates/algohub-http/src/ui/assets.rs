//! The pages' static files, compiled into the binary and served under
//! content-hashed names (`app-<hash>.css`), so they can be cached for a
//! year: a new build with a changed file has a new name.

use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("../../assets/app.css");

/// The URLs of the pages' files, as templates link them.
pub struct Assets {
    /// `/assets/app-<hash>.css`.
    pub css: String,
}

impl Default for Assets {
    fn default() -> Self {
        Self {
            css: format!("/assets/{}", hashed("app", "css", CSS)),
        }
    }
}

/// `name-<first 12 hex digits of the content's SHA-256>.ext`.
fn hashed(name: &str, ext: &str, content: &str) -> String {
    let digest = algohub_core::secrets::digest_hex(content);
    format!("{name}-{}.{ext}", &digest[..12])
}

/// `/assets/{name}`: a file by its hashed name.
pub async fn serve(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    if s.assets.css.strip_prefix("/assets/") == Some(name.as_str()) {
        return (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/css; charset=utf-8"),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            CSS,
        )
            .into_response();
    }
    crate::error::ApiError::new(
        algohub_core::Code::RouteNotFound,
        format!("no such file: {name}"),
    )
    .into_response()
}
