//! Native: explain a decision, and who can do an action on a resource (JSON or CSV).

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, QueryArgs};
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct ExplainArgs {
    principal: Option<String>,
    action: Option<String>,
    resource: Option<String>,
}

#[derive(Deserialize)]
struct WhoArgs {
    action: Option<String>,
    resource: Option<String>,
    format: Option<String>,
}

fn required(v: Option<String>, name: &str) -> ApiResult<String> {
    v.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::new(
            Code::MissingField,
            format!("query parameter {name} is required"),
        )
    })
}

async fn explain(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<ExplainArgs>,
) -> ApiResult<Json<serde_json::Value>> {
    let principal = required(q.principal, "principal")?;
    let action = required(q.action, "action")?;
    let resource = required(q.resource, "resource")?;
    let answer = s.hub.explain(&c, &principal, &action, &resource).await?;
    Ok(Json(json!(answer)))
}

async fn who(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<WhoArgs>,
) -> ApiResult<Response> {
    let action = required(q.action, "action")?;
    let resource = required(q.resource, "resource")?;
    let rows = s.hub.who_can(&c, &action, &resource).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(
            json!({"action": action, "resource": resource, "results": rows}),
        )
        .into_response()),
        Some("csv") => {
            let write = || -> Result<Vec<u8>, Box<dyn std::error::Error>> {
                let mut w = csv::Writer::from_writer(Vec::new());
                w.write_record(["username", "action", "resource", "rule"])?;
                for r in &rows {
                    w.write_record([
                        r.username.as_str(),
                        action.as_str(),
                        resource.as_str(),
                        r.rule.as_str(),
                    ])?;
                }
                Ok(w.into_inner()?)
            };
            let body = write().map_err(|e| ApiError::new(Code::Internal, format!("csv: {e}")))?;
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
        }
        Some(other) => Err(ApiError::new(
            Code::InvalidInput,
            format!("unknown format {other:?}: use json or csv"),
        )),
    }
}

pub fn routes(r: Routes) -> Routes {
    r.add(op!(GET "/v1/authz/explain", "authz", "Explain a decision: ?principal=NAME|key:ID&action=&resource=", response = "Explanation"), get(explain))
        .add(op!(GET "/v1/authz/who", "authz", "Who can do an action on a resource, and why: ?action=&resource=&format=json|csv", response = "WhoCan"), get(who))
}
