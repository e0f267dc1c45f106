//! Native: explain a decision, and who can do an action on a resource (JSON or CSV).

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, QueryArgs};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::policy::Outcome;
use algohub_core::services::ExplainAnswer;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// One rule the decision went through.
#[derive(Serialize, ToSchema)]
struct TraceStep {
    rule: &'static str,
    /// allow, deny, pass or no_match.
    outcome: &'static str,
    detail: String,
}

/// A decision and how it was reached.
#[derive(Serialize, ToSchema)]
struct Explanation {
    principal: String,
    action: String,
    resource: String,
    allow: bool,
    /// The rule that decided.
    decided_by: &'static str,
    chain: Vec<TraceStep>,
}

impl From<ExplainAnswer> for Explanation {
    fn from(a: ExplainAnswer) -> Self {
        Self {
            principal: a.principal,
            action: a.action,
            resource: a.resource,
            allow: a.explanation.allow,
            decided_by: a.explanation.decided_by.as_str(),
            chain: a
                .explanation
                .chain
                .into_iter()
                .map(|t| TraceStep {
                    rule: t.rule.as_str(),
                    outcome: match t.outcome {
                        Outcome::Allow => "allow",
                        Outcome::Deny => "deny",
                        Outcome::Pass => "pass",
                        Outcome::NoMatch => "no_match",
                    },
                    detail: t.detail,
                })
                .collect(),
        }
    }
}

/// Who may do something, and by which rule.
#[derive(Serialize, ToSchema)]
struct WhoCanEntry {
    username: String,
    rule: &'static str,
}

/// The answer of `/v1/authz/who` (`format=json`).
#[derive(Serialize, ToSchema)]
struct WhoCan {
    action: String,
    resource: String,
    results: Vec<WhoCanEntry>,
}

/// `principal` (a username or key:ID), `action`, `resource`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExplainArgs {
    principal: Option<String>,
    action: Option<String>,
    resource: Option<String>,
}

/// `action`, `resource`, `format=json|csv`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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

#[utoipa::path(get, path = "/v1/authz/explain", tag = "authz", summary = "Explain a decision: ?principal=NAME|key:ID&action=&resource=", params(ExplainArgs), responses((status = 200, body = Explanation)))]
async fn explain(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<ExplainArgs>,
) -> ApiResult<Json<Explanation>> {
    let principal = required(q.principal, "principal")?;
    let action = required(q.action, "action")?;
    let resource = required(q.resource, "resource")?;
    let answer = s
        .hub
        .access
        .explain(&c, &principal, &action, &resource)
        .await?;
    Ok(Json(answer.into()))
}

#[utoipa::path(get, path = "/v1/authz/who", tag = "authz", summary = "Who can do an action on a resource, and why: ?action=&resource=&format=json|csv", params(WhoArgs), responses((status = 200, content((WhoCan = "application/json"), (String = "text/csv")))))]
async fn who(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<WhoArgs>,
) -> ApiResult<Response> {
    let action = required(q.action, "action")?;
    let resource = required(q.resource, "resource")?;
    let rows = s.hub.access.who_can(&c, &action, &resource).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(WhoCan {
            action,
            resource,
            results: rows
                .into_iter()
                .map(|r| WhoCanEntry {
                    username: r.username,
                    rule: r.rule.as_str(),
                })
                .collect(),
        })
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
    r.typed(routes!(explain)).typed(routes!(who))
}
