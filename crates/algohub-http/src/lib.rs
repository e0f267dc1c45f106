#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
#![recursion_limit = "256"]
//! algohub-http: the HTTP API on axum.
//!
//! - `v1`: the Algorithmia v1 compatible routes; `native`: what v1 lacks.
//! - `routes`: the route table that also generates the OpenAPI document.
//! - `extract`: authentication (`Caller`) and body parsing; `error`: one renderer.
//! - `ops`: health, readiness, metrics, middleware.

pub mod cookie;
pub mod error;
pub mod extract;
pub mod native;
pub mod ops;
mod request_metrics;
pub mod routes;
pub mod schemas;
pub mod ui;
pub mod v1;

use algohub_core::services::Hub;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// Shared state of every handler: one `Arc`, as middleware and extractors
/// clone it for every request.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What `AppState` shares.
pub struct Shared {
    pub hub: Arc<Hub>,
    /// Base URL used in `self_link`s (`http://127.0.0.1:8080`).
    pub base_url: String,
    pub metrics: Option<PrometheusHandle>,
    /// The document `/openapi.json` serves (without the sudo role when the
    /// cluster has none).
    pub openapi: utoipa::openapi::OpenApi,
    /// Whether `front` logs every request (at info).
    pub access_log: bool,
    /// The per-request metrics' handles (`front`).
    pub request_metrics: request_metrics::RequestMetrics,
    /// The pages' static files.
    pub assets: ui::Assets,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Largest accepted request body on management routes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Every route and its documentation.
pub fn route_table() -> routes::Routes {
    ui::routes(ops::routes(native::routes(v1::routes(
        routes::Routes::new(),
    ))))
}

/// The OpenAPI document of all routes, derived from the handlers and types.
pub fn openapi_document() -> serde_json::Value {
    let (_, doc) = route_table().into_parts();
    serde_json::to_value(&doc).unwrap_or_default()
}

/// Builds the application: routes, fallbacks, middleware; with `access_log`,
/// one info line per request.
pub fn app(
    hub: Arc<Hub>,
    base_url: String,
    metrics: Option<PrometheusHandle>,
    access_log: bool,
) -> Router {
    let (router, mut openapi) = route_table().into_parts();
    if !hub.settings.sudo_users_enabled {
        without_sudo_role(&mut openapi);
    }
    let state = AppState(Arc::new(Shared {
        hub,
        base_url,
        metrics,
        openapi,
        access_log,
        request_metrics: Default::default(),
        assets: Default::default(),
    }));
    router
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::front,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// With the sudo-user role disabled, the document does not describe it: no
/// `sudo_user` field on admin users, no routes that grant or remove it, no
/// `sudo` call option. The derived document, filtered.
fn without_sudo_role(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, schema::Schema};
    doc.paths.paths.retain(|path, _| !path.ends_with("/sudo"));
    for item in doc.paths.paths.values_mut() {
        for (_, op) in schemas::operations_mut(item) {
            if let Some(summary) = op
                .summary
                .as_mut()
                .filter(|t| t.contains(v1::calls::SUDO_OPTION))
            {
                *summary = summary.replace(v1::calls::SUDO_OPTION, "");
            }
            if let Some(params) = op.parameters.as_mut() {
                params.retain(|p| !matches!(p, RefOr::T(p) if p.name == "sudo"));
            }
        }
    }
    if let Some(components) = doc.components.as_mut() {
        for schema in components.schemas.values_mut() {
            if let RefOr::T(Schema::Object(o)) = schema {
                o.properties.remove("sudo_user");
                o.required.retain(|r| r != "sudo_user");
            }
        }
    }
}

/// Serves until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use tower::Layer;
    let app = tower::util::MapRequestLayer::new(ops::normalize_path).layer(app);
    axum::serve(
        listener,
        axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
            std::net::SocketAddr,
        >(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
