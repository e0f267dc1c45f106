//! The audit trail (cluster admins): query by actor, target, action and time
//! range as JSON or JSON lines, and verify the hash chain.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, QueryArgs};
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use algohub_core::audit::{AuditQuery, AuditRecord};
use algohub_core::model::{format_millis, parse_time};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditArgs {
    actor: Option<String>,
    target: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
    limit: Option<String>,
    format: Option<String>,
}

fn record_json(r: &AuditRecord, names: &std::collections::HashMap<i64, String>) -> Value {
    let name = |id: Option<i64>| id.and_then(|i| names.get(&i).cloned());
    json!({
        "id": r.id,
        "at": format_millis(r.at),
        "action": r.action,
        "actor": name(r.actor_id),
        "effective_account": name(r.effective_id),
        "target": r.target,
        "detail": r.detail,
        "outcome": r.outcome,
        "request_id": r.request_id,
        "auth_method": r.auth_method,
        "token_sha256": r.token_sha256,
        "source": r.source,
        "hash": r.hash,
    })
}

async fn list(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<AuditArgs>,
) -> ApiResult<Response> {
    let time = |raw: &Option<String>, what: &str| -> ApiResult<Option<i64>> {
        raw.as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| {
                parse_time(t).ok_or_else(|| {
                    ApiError::new(
                        Code::InvalidInput,
                        format!("invalid {what} {t:?}: use RFC 3339, e.g. 2026-11-30T00:00:00Z"),
                    )
                })
            })
            .transpose()
    };
    let number = |raw: &Option<String>, what: &str, max: i64, default: i64| -> ApiResult<i64> {
        match raw.as_deref() {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::new(
                        Code::InvalidInput,
                        format!("invalid {what} {v:?}: use 0 to {max}"),
                    )
                }),
        }
    };
    let actor_id = match q.actor.as_deref().filter(|a| !a.is_empty()) {
        Some(name) => Some(s.hub.account_id_for_admin(&c, name).await?),
        None => None,
    };
    let query = AuditQuery {
        actor_id,
        target: q.target.filter(|t| !t.is_empty()),
        action: q.action.filter(|a| !a.is_empty()),
        from: time(&q.from, "from")?,
        to: time(&q.to, "to")?,
        after_id: number(&q.after, "after", i64::MAX, 0)?,
        limit: number(&q.limit, "limit", 10_000, 100)?.max(1),
    };
    let records = s.hub.audit_log(&c, &query).await?;
    let ids: Vec<i64> = records
        .iter()
        .flat_map(|r| [r.actor_id, r.effective_id])
        .flatten()
        .collect();
    let names = s.hub.account_names(ids).await?;
    match q.format.as_deref() {
        None | Some("json") => {
            let mut body = json!({"results": records.iter().map(|r| record_json(r, &names)).collect::<Vec<_>>()});
            if records.len() as i64 == query.limit
                && let Some(last) = records.last()
            {
                body["next"] = json!(last.id.to_string());
            }
            Ok(Json(body).into_response())
        }
        Some("jsonl") => {
            let mut out = String::new();
            for r in &records {
                out.push_str(&record_json(r, &names).to_string());
                out.push('\n');
            }
            Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response())
        }
        Some(other) => Err(ApiError::new(
            Code::InvalidInput,
            format!("unknown format {other:?}: use json or jsonl"),
        )),
    }
}

async fn verify(State(s): State<AppState>, Caller(c): Caller) -> ApiResult<Json<Value>> {
    Ok(Json(json!(s.hub.verify_audit(&c).await?)))
}

pub fn routes(r: Routes) -> Routes {
    r.add(op!(GET "/v1/admin/audit", "admin", "Audit records, oldest first: ?actor&target&action&from&to&after&limit&format=json|jsonl (cluster admins)", response = "AuditList"), get(list))
        .add(op!(GET "/v1/admin/audit/verify", "admin", "Verify the audit hash chain; names the first record that does not match (cluster admins)", response = "AuditVerdict"), get(verify))
}
