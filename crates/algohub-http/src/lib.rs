#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
#![recursion_limit = "256"]
//! algohub-http: the HTTP API on axum.
//!
//! - `v1`: the Algorithmia v1 compatible routes; `native`: what v1 lacks.
//! - `routes`: the route table that also generates the OpenAPI document.
//! - `extract`: authentication (`Caller`) and body parsing; `error`: one renderer.
//! - `ops`: health, readiness, metrics, middleware.

pub mod error;
pub mod extract;
pub mod native;
pub mod ops;
pub mod routes;
pub mod schemas;
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
    pub openapi: serde_json::Value,
    /// Whether `observe` logs every request (at info).
    pub access_log: bool,
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
    ops::routes(native::routes(v1::routes(routes::Routes::new())))
}

/// The OpenAPI document of all routes.
pub fn openapi_document() -> serde_json::Value {
    let (_, ops) = route_table().into_parts();
    routes::openapi(&ops)
}

/// Builds the application: routes, fallbacks, middleware; with `access_log`,
/// one info line per request.
pub fn app(
    hub: Arc<Hub>,
    base_url: String,
    metrics: Option<PrometheusHandle>,
    access_log: bool,
) -> Router {
    let (router, ops) = route_table().into_parts();
    let mut openapi = routes::openapi(&ops);
    if !hub.settings.sudo_users_enabled {
        without_sudo_role(&mut openapi);
    }
    let state = AppState(Arc::new(Shared {
        hub,
        base_url,
        metrics,
        openapi,
        access_log,
    }));
    router
        .fallback(error::route_not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::admin_gate,
        ))
        .layer(axum::middleware::from_fn(ops::json_errors))
        .layer(axum::middleware::from_fn(ops::reject_nul))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ops::observe,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// With the sudo-user role disabled, the document does not describe it: no
/// `sudo_user` field on admin users, no routes that grant or remove it.
fn without_sudo_role(doc: &mut serde_json::Value) {
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.retain(|path, _| !path.ends_with("/sudo"));
        // The call option, from the call route's summary.
        for op in paths.values_mut().filter_map(|p| p.as_object_mut()) {
            for summary in op.values_mut().map(|o| &mut o["summary"]) {
                if let Some(text) = summary
                    .as_str()
                    .filter(|t| t.contains(v1::calls::SUDO_OPTION))
                {
                    *summary = text.replace(v1::calls::SUDO_OPTION, "").into();
                }
            }
        }
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        for schema in schemas.values_mut() {
            if let Some(props) = schema["properties"].as_object_mut() {
                props.remove("sudo_user");
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
