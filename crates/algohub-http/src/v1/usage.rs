//! Call governance routes: work limits (cluster admins), usage reports and
//! balances (users for themselves, org admins for their org), per-account
//! error listings, and the v1 admin usage routes.
//!
//! Native: `/v1/admin/accounts/{account}/work-limit`, `/v1/{users|organizations}/
//! {name}/usage`, `.../balance`, `/v1/admin/usage/calls/{request_id}`.
//! Algorithmia v1: `/v1/admin/usage[/users|/algorithms]`, `/v1/users/{u}/errors` (`{u}`
//! a username or the user's UUID),
//! `/v1/organizations/{org}/errors`. Every report reads the daily rollups.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, JsonBody, QueryArgs};
use crate::{AppState, op, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{AccountKind, AlgorithmError, ReportGroup, ReportRow, ReportSide};
use algohub_core::services::{WorkLimitView, parse_day};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

fn limit_json(v: &WorkLimitView) -> Value {
    json!(v)
}

async fn get_limit(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(account): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(limit_json(&s.hub.get_work_limit(&c, &account).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitBody {
    /// A positive integer, or null for the cluster default.
    work_limit: Option<Value>,
}

async fn set_limit(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(account): Path<String>,
    JsonBody(b): JsonBody<LimitBody>,
) -> ApiResult<Json<Value>> {
    let limit = match b.work_limit {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(other) => {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "invalid work_limit {other}: use a positive whole number, or null for the cluster default"
                ),
            ));
        }
    };
    Ok(Json(limit_json(
        &s.hub.set_work_limit(&c, &account, limit).await?,
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportArgs {
    start_date: Option<String>,
    end_date: Option<String>,
    group_by: Option<String>,
    side: Option<String>,
    format: Option<String>,
}

/// `[start, end]` in days; both required.
fn day_range(start: Option<&str>, end: Option<&str>) -> ApiResult<(i64, i64)> {
    fn need<'a>(v: Option<&'a str>, name: &str) -> ApiResult<&'a str> {
        v.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            ApiError::new(
                Code::MissingField,
                format!("{name} is required (a date such as 2026-11-01)"),
            )
        })
    }
    Ok((
        parse_day(need(start, "start_date")?, "start_date")?,
        parse_day(need(end, "end_date")?, "end_date")?,
    ))
}

fn secs(us: i64) -> f64 {
    us as f64 / 1e6
}

fn row_json(group: ReportGroup, r: &ReportRow) -> Value {
    let mut v = json!({
        "calls": r.calls,
        "errors": r.errors,
        "refused": r.refused,
        "compute_units": r.compute_units,
        "duration_seconds": secs(r.duration_us),
        "error_duration_seconds": secs(r.error_duration_us),
        "credits_microcredits": r.credits,
    });
    match group {
        ReportGroup::Member => v["member"] = json!(r.caller),
        ReportGroup::Algorithm => v["algorithm"] = json!(algorithm_path(r)),
        ReportGroup::Version | ReportGroup::CallerVersion => {
            v["algorithm"] = json!(algorithm_path(r));
            v["version"] = json!(r.version);
            if group == ReportGroup::CallerVersion {
                v["member"] = json!(r.caller);
            }
        }
        ReportGroup::Day => v["day"] = json!(r.day),
    }
    v
}

/// `owner/name`, or `(unresolved)` for refused calls to unknown algorithms.
fn algorithm_path(r: &ReportRow) -> String {
    match (&r.owner, &r.algorithm) {
        (Some(o), Some(a)) => format!("{o}/{a}"),
        _ => "(unresolved)".to_string(),
    }
}

fn csv_report(group: ReportGroup, rows: &[ReportRow]) -> ApiResult<Response> {
    let write = || -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let key = match group {
            ReportGroup::Member | ReportGroup::CallerVersion => "member",
            ReportGroup::Algorithm => "algorithm",
            ReportGroup::Version => "algorithm_version",
            ReportGroup::Day => "day",
        };
        w.write_record([
            key,
            "calls",
            "errors",
            "refused",
            "compute_units",
            "duration_seconds",
            "error_duration_seconds",
            "credits_microcredits",
        ])?;
        for r in rows {
            let k = match group {
                ReportGroup::Member | ReportGroup::CallerVersion => {
                    r.caller.clone().unwrap_or_default()
                }
                ReportGroup::Algorithm => algorithm_path(r),
                ReportGroup::Version => {
                    format!(
                        "{}/{}",
                        algorithm_path(r),
                        r.version.as_deref().unwrap_or("")
                    )
                }
                ReportGroup::Day => r.day.clone().unwrap_or_default(),
            };
            w.write_record([
                k,
                r.calls.to_string(),
                r.errors.to_string(),
                r.refused.to_string(),
                r.compute_units.to_string(),
                secs(r.duration_us).to_string(),
                secs(r.error_duration_us).to_string(),
                r.credits.to_string(),
            ])?;
        }
        Ok(w.into_inner()?)
    };
    let body = write().map_err(|e| ApiError::new(Code::Internal, format!("csv: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
}

async fn report(
    s: AppState,
    c: algohub_core::RequestCtx,
    name: String,
    q: ReportArgs,
) -> ApiResult<Response> {
    let (from, to) = day_range(q.start_date.as_deref(), q.end_date.as_deref())?;
    let group_name = q.group_by.as_deref().unwrap_or("member");
    let group = ReportGroup::parse(group_name).ok_or_else(|| {
        ApiError::new(
            Code::InvalidInput,
            format!("invalid group_by {group_name:?}: use member, algorithm, version or day"),
        )
    })?;
    let side_name = q.side.as_deref().unwrap_or("payer");
    let side = match side_name {
        "payer" => ReportSide::Payer,
        "owner" => ReportSide::Owner,
        other => {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!(
                    "invalid side {other:?}: use payer (calls the account paid for) or owner (calls to its algorithms)"
                ),
            ));
        }
    };
    let rows = s.hub.usage_report(&c, &name, side, from, to, group).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(json!({
            "account": name,
            "start_date": q.start_date,
            "end_date": q.end_date,
            "group_by": group_name,
            "side": side_name,
            "results": rows.iter().map(|r| row_json(group, r)).collect::<Vec<_>>(),
        }))
        .into_response()),
        Some("csv") => csv_report(group, &rows),
        Some(other) => Err(ApiError::new(
            Code::InvalidInput,
            format!("unknown format {other:?}: use json or csv"),
        )),
    }
}

async fn user_report(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    QueryArgs(q): QueryArgs<ReportArgs>,
) -> ApiResult<Response> {
    report(s, c, name, q).await
}

async fn org_report(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    QueryArgs(q): QueryArgs<ReportArgs>,
) -> ApiResult<Response> {
    report(s, c, name, q).await
}

async fn balance(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let (account, b) = s.hub.balance(&c, &name).await?;
    Ok(Json(json!({
        "account": account.name,
        "balance_microcredits": b.balance,
        "earned_microcredits": b.earned,
        "spent_microcredits": b.spent,
    })))
}

/// Error entries in the v1 shape (shared with the per-algorithm listing).
pub fn error_entries(list: &[AlgorithmError]) -> Value {
    json!(
        list.iter()
            .map(|e| json!({
                "created_at": e.created_at,
                "request_id": e.request_id,
                "username": e.caller_name,
                "algoname": e.algorithm_name,
                "algoversion": e.version,
                "algorithm_owner": e.owner_name,
                "input": e.input,
                "error": e.error,
                "error_type": e.error_type,
                "billable_to": e.caller_name,
                "worker": "algohub",
            }))
            .collect::<Vec<_>>()
    )
}

async fn user_errors(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let list = s.hub.account_errors(&c, &name, AccountKind::User).await?;
    Ok(Json(error_entries(&list)))
}

async fn org_errors(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let list = s.hub.account_errors(&c, &name, AccountKind::Org).await?;
    Ok(Json(error_entries(&list)))
}

/// The v1 admin usage query: `start_date`, `end_date`, `page_size` required;
/// `user` repeated; `marker` (an offset this server issued).
struct AdminUsageArgs {
    from: i64,
    to: i64,
    page_size: usize,
    users: Vec<String>,
    offset: usize,
}

fn admin_usage_args(pairs: Vec<(String, String)>) -> ApiResult<AdminUsageArgs> {
    let mut start = None;
    let mut end = None;
    let mut page_size = None;
    let mut users = Vec::new();
    let mut offset = 0;
    for (k, v) in pairs {
        match k.as_str() {
            "start_date" => start = Some(v),
            "end_date" => end = Some(v),
            "page_size" => {
                page_size = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=10_000).contains(n))
                        .ok_or_else(|| {
                            ApiError::new(
                                Code::InvalidInput,
                                format!("invalid page_size {v:?}: use 1 to 10000"),
                            )
                        })?,
                )
            }
            "user" => users.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(String::from),
            ),
            "marker" => {
                offset = v.parse::<usize>().map_err(|_| {
                    ApiError::new(
                        Code::InvalidInput,
                        format!("invalid marker {v:?}: pass the next_marker of the previous page"),
                    )
                })?
            }
            other => {
                return Err(ApiError::new(
                    Code::InvalidInput,
                    format!(
                        "unknown query parameter {other:?}: use start_date, end_date, page_size, user, marker"
                    ),
                ));
            }
        }
    }
    let (from, to) = day_range(start.as_deref(), end.as_deref())?;
    let page_size =
        page_size.ok_or_else(|| ApiError::new(Code::MissingField, "page_size is required"))?;
    Ok(AdminUsageArgs {
        from,
        to,
        page_size,
        users,
        offset,
    })
}

async fn admin_usage_page(
    s: &AppState,
    c: &algohub_core::RequestCtx,
    pairs: Vec<(String, String)>,
    group: ReportGroup,
    row: fn(&ReportRow) -> Value,
) -> ApiResult<Json<Value>> {
    let a = admin_usage_args(pairs)?;
    let rows = s
        .hub
        .cluster_usage(c, a.from, a.to, group, &a.users)
        .await?;
    let page: Vec<Value> = rows
        .iter()
        .skip(a.offset)
        .take(a.page_size)
        .map(row)
        .collect();
    let next = a.offset + page.len();
    let mut body = json!({"results": page});
    if next < rows.len() {
        body["next_marker"] = json!(next.to_string());
    }
    Ok(Json(body))
}

fn algorithm_row(r: &ReportRow) -> Value {
    json!({
        "algorithm_called": r.algorithm.clone().unwrap_or_else(|| "(unresolved)".into()),
        "algorithm_owner": r.owner.clone().unwrap_or_default(),
        "algorithm_version": r.version.clone().unwrap_or_default(),
        "total_calls": r.calls,
        "total_errors": r.errors,
        "total_error_duration": secs(r.error_duration_us),
        "total_duration": secs(r.duration_us),
        "machine_type": "cpu",
    })
}

fn full_row(r: &ReportRow) -> Value {
    let mut v = algorithm_row(r);
    v["caller"] = json!(r.caller.clone().unwrap_or_default());
    v
}

fn user_row(r: &ReportRow) -> Value {
    json!({
        "caller": r.caller.clone().unwrap_or_default(),
        "total_calls": r.calls,
        "total_errors": r.errors,
        "total_error_duration": secs(r.error_duration_us),
        "total_duration": secs(r.duration_us),
    })
}

async fn admin_usage(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    admin_usage_page(&s, &c, q, ReportGroup::CallerVersion, full_row).await
}

async fn admin_usage_algorithms(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    admin_usage_page(&s, &c, q, ReportGroup::Version, algorithm_row).await
}

async fn admin_usage_users(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    admin_usage_page(&s, &c, q, ReportGroup::Member, user_row).await
}

async fn usage_record(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(request_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (r, [caller, acting_as, payer]) = s.hub.usage_record(&c, &request_id).await?;
    Ok(Json(json!({
        "request_id": r.request_id,
        "started_at": algohub_core::model::format_millis(r.started_at),
        "duration_seconds": secs(r.duration_us),
        "caller": caller,
        "acting_as": acting_as,
        "payer": payer,
        "via": r.via,
        "algorithm_owner": r.algo_owner,
        "algorithm_name": r.algo_name,
        "version": r.version,
        "status": r.status,
        "error_code": r.error_code,
        "compute_units": r.compute_units,
        "royalty_microcredits": r.royalty_microcredits,
    })))
}

pub fn routes(r: Routes) -> Routes {
    r.add_many(
        &[
            op!(GET "/v1/admin/accounts/{account}/work-limit", "usage", "An account's concurrent call limit (cluster admins)", response = "WorkLimit"),
            op!(PUT "/v1/admin/accounts/{account}/work-limit", "usage", "Set an account's concurrent call limit: a positive integer, or null for the cluster default (cluster admins)", body = "WorkLimitUpdate", response = "WorkLimit"),
        ],
        get(get_limit).put(set_limit),
    )
        .add(op!(GET "/v1/users/{username}/usage", "usage", "A user's usage from daily rollups: ?start_date&end_date&group_by=member|algorithm|version|day&side=payer|owner&format=json|csv", response = "UsageReport"), get(user_report))
        .add(op!(GET "/v1/organizations/{org_name}/usage", "usage", "An org's usage (org admins), per member by default: ?start_date&end_date&group_by=member|algorithm|version|day&side=payer|owner&format=json|csv", response = "UsageReport"), get(org_report))
        .add(op!(GET "/v1/users/{username}/balance", "usage", "Royalties a user earned and spent", response = "Balance"), get(balance))
        .add(op!(GET "/v1/organizations/{org_name}/balance", "usage", "Royalties an org earned (its algorithms) and spent (org keys, consolidated billing)", response = "Balance"), get(balance))
        .add(op!(GET "/v1/users/{username}/errors", "usage", "Failed calls of the last 7 days to a user's algorithms (the user or a cluster admin; a username or the user's UUID)", response = "AlgorithmErrors"), get(user_errors))
        .add(op!(GET "/v1/organizations/{org_name}/errors", "usage", "Failed calls of the last 7 days to an org's algorithms (org admins)", response = "AlgorithmErrors"), get(org_errors))
        .add(op!(GET "/v1/admin/usage", "usage", "Cluster usage per caller, algorithm and version: ?start_date&end_date&page_size&user&marker (cluster admins)", response = "FullUsageResult"), get(admin_usage))
        .add(op!(GET "/v1/admin/usage/algorithms", "usage", "Cluster usage per algorithm version (cluster admins)", response = "AlgorithmUsageResult"), get(admin_usage_algorithms))
        .add(op!(GET "/v1/admin/usage/users", "usage", "Cluster usage per caller (cluster admins)", response = "UserUsageResult"), get(admin_usage_users))
        .add(op!(GET "/v1/admin/usage/calls/{request_id}", "usage", "One call's usage record (cluster admins)", response = "UsageRecord"), get(usage_record))
}
