//! The OpenAPI document's frame: what `complete` adds to the operations and
//! schemas derived from the handlers (info, security, the error answer,
//! operation ids, path parameters).

use utoipa::openapi::path::{Operation, Parameter, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, InfoBuilder, ObjectBuilder, OpenApi, Ref, RefOr, Required, Type};

/// Fills in what every operation shares: the API key security scheme (routes
/// that need none say `security(())`), the `Error` answer as the `default`
/// response, an operation id made from the method and path, and any path
/// parameter of the template that the handler does not describe.
pub fn complete(api: &mut OpenApi) {
    api.info = InfoBuilder::new()
        .title("algohub API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some("Algorithmia v1 compatible routes plus algohub's native routes. Authenticate with `Authorization: <key>`, `Simple <key>` or `Bearer <key>`; an http algorithm uses the call token it gets in `X-Algohub-Api-Key` the same way, for the data API during its call."))
        .build();
    let components = api.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "ApiKey",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("Authorization"))),
    );
    let mut error_schemas = Vec::new();
    <crate::error::ErrorBody as utoipa::ToSchema>::schemas(&mut error_schemas);
    error_schemas.push((
        <crate::error::ErrorBody as utoipa::ToSchema>::name().to_string(),
        <crate::error::ErrorBody as utoipa::PartialSchema>::schema(),
    ));
    components.schemas.extend(error_schemas);
    api.security = Some(vec![SecurityRequirement::new(
        "ApiKey",
        Vec::<String>::new(),
    )]);
    for (path, item) in api.paths.paths.iter_mut() {
        for (method, op) in operations_mut(item) {
            op.operation_id = Some(format!(
                "{method}_{}",
                path.trim_start_matches('/')
                    .replace(['/', '{', '}', '-', '*', '.'], "_")
            ));
            op.responses
                .responses
                .entry("default".to_string())
                .or_insert_with(|| {
                    ResponseBuilder::new()
                        .description("error")
                        .content(
                            "application/json",
                            Content::new(Some(Ref::from_schema_name("Error"))),
                        )
                        .build()
                        .into()
                });
            for (status, response) in op.responses.responses.iter_mut() {
                if let RefOr::T(r) = response
                    && r.description.is_empty()
                {
                    r.description = if status == "204" {
                        "done (no body)"
                    } else {
                        "success"
                    }
                    .into();
                }
            }
            let params = op.parameters.get_or_insert_with(Vec::new);
            for name in path
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            {
                let described = params.iter().any(|p| {
                    matches!(p, RefOr::T(p) if p.name == name && p.parameter_in == ParameterIn::Path)
                });
                if !described {
                    let mut p = Parameter::new(name);
                    p.parameter_in = ParameterIn::Path;
                    p.required = Required::True;
                    p.schema = Some(ObjectBuilder::new().schema_type(Type::String).into());
                    params.push(RefOr::T(p));
                }
            }
            if params.is_empty() {
                op.parameters = None;
            }
        }
    }
}

/// The operations of a path, with their methods' names.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|o| (m, o)))
}
