//! The audit trail (cluster admins): query by actor, target, action and time
//! range as JSON or JSON lines, and verify the hash chain.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, QueryArgs};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::audit::{AuditQuery, AuditRecord};
use algohub_core::model::{format_millis, parse_time};
use algohub_core::services::AuditVerdict;
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;

/// An audit record, with account names for ids.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditRecord)]
struct AuditRecordShape {
    id: i64,
    at: String,
    /// What happened, e.g. `user.roles_set`, `authz.denied`.
    action: String,
    /// Who acted (the real actor), if known.
    actor: Option<String>,
    /// The account the act was done as (differs under impersonation).
    effective_account: Option<String>,
    target: String,
    detail: Value,
    outcome: String,
    request_id: String,
    auth_method: String,
    token_sha256: Option<String>,
    source: Option<String>,
    hash: Option<String>,
}

/// A page of audit records; `next` (pass it as `after`) while more may follow.
#[derive(Serialize, ToSchema)]
struct AuditList {
    results: Vec<AuditRecordShape>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Where verification stopped.
#[derive(Serialize, ToSchema)]
struct AuditBreak {
    /// The first record that does not match.
    id: i64,
    reason: String,
}

/// The outcome of walking the whole chain.
#[derive(Serialize, ToSchema)]
#[schema(as = AuditVerdict)]
struct AuditVerdictShape {
    ok: bool,
    /// Hashed records that matched before the first break (or all of them).
    checked: u64,
    first_bad: Option<AuditBreak>,
}

impl From<AuditVerdict> for AuditVerdictShape {
    fn from(v: AuditVerdict) -> Self {
        Self {
            ok: v.ok,
            checked: v.checked,
            first_bad: v.first_bad.map(|b| AuditBreak {
                id: b.id,
                reason: b.reason,
            }),
        }
    }
}

/// Filters (`actor`, `target`, `action`, `from`/`to` in RFC 3339), paging
/// (`after` an id, `limit` 0 to 10000) and `format=json|jsonl`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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

fn record_json(
    r: &AuditRecord,
    names: &std::collections::HashMap<i64, String>,
) -> AuditRecordShape {
    let name = |id: Option<i64>| id.and_then(|i| names.get(&i).cloned());
    AuditRecordShape {
        id: r.id,
        at: format_millis(r.at),
        action: r.action.clone(),
        actor: name(r.actor_id),
        effective_account: name(r.effective_id),
        target: r.target.clone(),
        detail: r.detail.clone(),
        outcome: r.outcome.clone(),
        request_id: r.request_id.clone(),
        auth_method: r.auth_method.clone(),
        token_sha256: r.token_sha256.clone(),
        source: r.source.clone(),
        hash: r.hash.clone(),
    }
}

#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", summary = "Audit records, oldest first: ?actor&target&action&from&to&after&limit&format=json|jsonl (cluster admins)", params(AuditArgs), responses((status = 200, content((AuditList = "application/json"), (String = "application/x-ndjson")))))]
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
        Some(name) => Some(s.hub.audit.account_id_for_admin(&c, name).await?),
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
    let records = s.hub.audit.audit_log(&c, &query).await?;
    let ids: Vec<i64> = records
        .iter()
        .flat_map(|r| [r.actor_id, r.effective_id])
        .flatten()
        .collect();
    let names = s.hub.audit.account_names(ids).await?;
    match q.format.as_deref() {
        None | Some("json") => {
            let next = records
                .last()
                .filter(|_| records.len() as i64 == query.limit)
                .map(|last| last.id.to_string());
            Ok(Json(AuditList {
                results: records.iter().map(|r| record_json(r, &names)).collect(),
                next,
            })
            .into_response())
        }
        Some("jsonl") => {
            let mut out = String::new();
            for r in &records {
                let line = serde_json::to_string(&record_json(r, &names))
                    .map_err(|e| ApiError::new(Code::Internal, format!("jsonl: {e}")))?;
                out.push_str(&line);
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

#[utoipa::path(get, path = "/v1/admin/audit/verify", tag = "admin", summary = "Verify the audit hash chain; names the first record that does not match (cluster admins)", responses((status = 200, body = AuditVerdictShape)))]
async fn verify(
    State(s): State<AppState>,
    Caller(c): Caller,
) -> ApiResult<Json<AuditVerdictShape>> {
    Ok(Json(s.hub.audit.verify_audit(&c).await?.into()))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(list)).typed(routes!(verify))
}
