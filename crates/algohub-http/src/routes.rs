//! The route table. Every route is registered through `Routes::add`, which puts
//! it in the axum router *and* in the OpenAPI document, so the two cannot drift.
//! (The route × role matrix test checks the document against its own list.)

use crate::AppState;
use axum::Router;
use axum::http::Method;
use axum::routing::MethodRouter;
use serde_json::{Map, Value, json};

/// One operation as documented.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: Method,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Whether the route needs an API key.
    pub auth: bool,
    /// Name of the request body schema in `components.schemas`, if any.
    pub body: Option<&'static str>,
    /// Name of the success response schema, if any.
    pub response: Option<&'static str>,
    pub success: u16,
}

pub struct Routes {
    router: Router<AppState>,
    ops: Vec<Operation>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            ops: Vec::new(),
        }
    }

    pub fn add(mut self, op: Operation, handler: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(op.path, handler);
        self.ops.push(op);
        self
    }

    /// Registers one handler for several documented operations on one path
    /// (one method router per path, as axum requires).
    pub fn add_many(mut self, ops: &[Operation], handler: MethodRouter<AppState>) -> Self {
        if let Some(first) = ops.first() {
            self.router = self.router.route(first.path, handler);
        }
        self.ops.extend_from_slice(ops);
        self
    }

    /// Documents an operation whose handler was registered with another one on
    /// the same path (one method router per path).
    pub fn add_documented(mut self, op: Operation) -> Self {
        self.ops.push(op);
        self
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<Operation>) {
        (self.router, self.ops)
    }
}

/// Shorthand for building an `Operation`.
#[macro_export]
macro_rules! op {
    ($method:ident $path:literal, $tag:literal, $summary:literal $(, body = $body:literal)? $(, response = $resp:literal)? $(, status = $status:literal)? $(, public = $public:literal)?) => {{
        #[allow(unused_mut, unused_assignments)]
        let mut op = $crate::routes::Operation {
            method: axum::http::Method::$method,
            path: $path,
            tag: $tag,
            summary: $summary,
            auth: true,
            body: None,
            response: None,
            success: 200,
        };
        $( op.body = Some($body); )?
        $( op.response = Some($resp); )?
        $( op.success = $status; )?
        $( op.auth = !$public; )?
        op
    }};
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| name.trim_start_matches('*'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// Builds the OpenAPI 3 document for the given operations.
pub fn openapi(ops: &[Operation]) -> Value {
    let mut paths = Map::new();
    for op in ops {
        let entry = paths
            .entry(op.path.replace("{*", "{"))
            .or_insert_with(|| json!({}));
        let mut o = json!({
            "tags": [op.tag],
            "summary": op.summary,
            "operationId": format!("{}_{}", op.method.as_str().to_ascii_lowercase(), op.path.trim_start_matches('/').replace(['/', '{', '}', '-', '*'], "_")),
            "parameters": path_params(op.path),
            "responses": {
                op.success.to_string(): match op.response {
                    Some(r) => json!({"description": "success", "content": crate::schemas::response_content(r)}),
                    None => json!({"description": "success"}),
                },
                "default": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if let Some(b) = op.body {
            o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
        }
        if !op.auth {
            o["security"] = json!([]);
        }
        entry[op.method.as_str().to_ascii_lowercase()] = o;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "algohub API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Algorithmia v1 compatible routes plus algohub's native routes. Authenticate with `Authorization: <key>`, `Simple <key>` or `Bearer <key>`; an http algorithm uses the call token it gets in `X-Algohub-Api-Key` the same way, for the data API during its call."
        },
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "Authorization"}},
            "schemas": crate::schemas::all(),
        },
        "security": [{"ApiKey": []}],
        "paths": paths,
    })
}
