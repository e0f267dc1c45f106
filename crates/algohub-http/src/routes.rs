//! The route table. Handlers are annotated with `#[utoipa::path]` and
//! registered through `Routes::typed` (utoipa-axum's `OpenApiRouter`), which
//! puts each in the axum router *and* derives its operation, with the schemas
//! of its body types, into the OpenAPI document, so the two cannot drift.
//! (The route × role matrix test checks the document against its own list.)

use crate::AppState;
use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

pub struct Routes {
    router: OpenApiRouter<AppState>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Self {
            router: OpenApiRouter::default(),
        }
    }

    /// Registers handlers annotated with `#[utoipa::path]` (`routes!(a, b)`,
    /// all on one path): the route and its operation come from the handler.
    pub fn typed(mut self, r: UtoipaMethodRouter<AppState>) -> Self {
        self.router = self.router.routes(r);
        self
    }

    /// As `typed`, with a larger request body limit than the default.
    pub fn typed_with_limit(
        self,
        (schemas, paths, handler): UtoipaMethodRouter<AppState>,
        max: usize,
    ) -> Self {
        self.typed((
            schemas,
            paths,
            handler.layer(axum::extract::DefaultBodyLimit::max(max)),
        ))
    }

    /// As `typed`, for a route whose axum template differs from the
    /// documented one (a wildcard: `/v1/data/{*path}` is documented as
    /// `/v1/data/{path}`).
    pub fn typed_at(
        mut self,
        axum_path: &str,
        (schemas, paths, handler): UtoipaMethodRouter<AppState>,
    ) -> Self {
        self.router = self.router.route(axum_path, handler);
        let api = self.router.get_openapi_mut();
        api.paths.merge(paths);
        api.components
            .get_or_insert_with(Default::default)
            .schemas
            .extend(schemas);
        self
    }

    /// Registers a page route: it answers HTML and is not in the OpenAPI
    /// document.
    pub fn page(mut self, path: &str, handler: axum::routing::MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, handler);
        self
    }

    /// The router, and the document derived from its handlers, completed
    /// by `crate::schemas::complete`.
    pub fn into_parts(self) -> (Router<AppState>, OpenApi) {
        let (router, mut api) = self.router.split_for_parts();
        crate::schemas::complete(&mut api);
        (router, api)
    }
}
