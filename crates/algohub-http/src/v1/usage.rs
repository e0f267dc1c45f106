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
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{AccountKind, AlgorithmError, ReportGroup, ReportRow, ReportSide};
use algohub_core::services::{WorkLimitView, parse_day};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;

/// An account's work limit (`WorkLimit`).
#[derive(Serialize, ToSchema)]
#[schema(as = WorkLimit)]
struct WorkLimitShape {
    account: String,
    /// The limit in force.
    work_limit: i64,
    /// Whether it is the cluster default (no limit of its own).
    is_default: bool,
    /// Calls of this account running on this node now.
    running_here: i64,
}

/// One row of a usage report; the grouping decides which of `member`,
/// `algorithm`, `version` and `day` it has.
#[derive(Serialize, ToSchema)]
struct UsageRow {
    calls: i64,
    errors: i64,
    refused: i64,
    compute_units: i64,
    duration_seconds: f64,
    error_duration_seconds: f64,
    credits_microcredits: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    member: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    day: Option<Option<String>>,
}

/// A usage report (`format=json`).
#[derive(Serialize, ToSchema)]
struct UsageReport {
    account: String,
    start_date: Option<String>,
    end_date: Option<String>,
    group_by: String,
    side: String,
    results: Vec<UsageRow>,
}

/// Royalties an account earned and spent.
#[derive(Serialize, ToSchema)]
struct Balance {
    account: String,
    balance_microcredits: i64,
    earned_microcredits: i64,
    spent_microcredits: i64,
}

/// One failed call.
#[derive(Serialize, ToSchema)]
#[schema(as = AlgorithmError)]
pub struct AlgorithmErrorShape {
    /// Milliseconds since the epoch.
    created_at: i64,
    request_id: String,
    username: String,
    algoname: String,
    algoversion: String,
    algorithm_owner: String,
    input: String,
    error: String,
    error_type: String,
    billable_to: String,
    /// Always `algohub`.
    worker: &'static str,
}

/// A row of `/v1/admin/usage/algorithms` (and, with `caller`, of `/v1/admin/usage`).
#[derive(Serialize, ToSchema)]
struct AlgorithmUsageRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    caller: Option<String>,
    algorithm_called: String,
    algorithm_owner: String,
    algorithm_version: String,
    total_calls: i64,
    total_errors: i64,
    total_error_duration: f64,
    total_duration: f64,
    /// Always `cpu`.
    machine_type: &'static str,
}

/// A row of `/v1/admin/usage/users`.
#[derive(Serialize, ToSchema)]
struct UserUsageRow {
    caller: String,
    total_calls: i64,
    total_errors: i64,
    total_error_duration: f64,
    total_duration: f64,
}

/// A page of cluster usage; `next_marker` while more follow.
#[derive(Serialize, ToSchema)]
struct UsagePage<T: ToSchema> {
    results: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

/// One call's usage record.
#[derive(Serialize, ToSchema)]
#[schema(as = UsageRecord)]
struct UsageRecordShape {
    request_id: String,
    started_at: String,
    duration_seconds: f64,
    caller: String,
    acting_as: String,
    payer: String,
    /// direct, org_key, member_key, sudo or impersonation.
    via: &'static str,
    algorithm_owner: String,
    algorithm_name: String,
    version: String,
    /// ok, error, refused or limited.
    status: &'static str,
    error_code: Option<String>,
    compute_units: i64,
    royalty_microcredits: i64,
}

fn limit_json(v: &WorkLimitView) -> WorkLimitShape {
    WorkLimitShape {
        account: v.account.clone(),
        work_limit: v.work_limit,
        is_default: v.is_default,
        running_here: v.running_here,
    }
}

#[utoipa::path(get, path = "/v1/admin/accounts/{account}/work-limit", tag = "usage", summary = "An account's concurrent call limit (cluster admins)", responses((status = 200, body = WorkLimitShape)))]
async fn get_limit(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(account): Path<String>,
) -> ApiResult<Json<WorkLimitShape>> {
    Ok(Json(limit_json(&s.hub.get_work_limit(&c, &account).await?)))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = WorkLimitUpdate)]
#[serde(deny_unknown_fields)]
struct LimitBody {
    /// A positive integer, or null for the cluster default.
    #[schema(value_type = Option<i64>, minimum = 1)]
    work_limit: Option<Value>,
}

#[utoipa::path(put, path = "/v1/admin/accounts/{account}/work-limit", tag = "usage", summary = "Set an account's concurrent call limit: a positive integer, or null for the cluster default (cluster admins)", request_body = LimitBody, responses((status = 200, body = WorkLimitShape)))]
async fn set_limit(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(account): Path<String>,
    JsonBody(b): JsonBody<LimitBody>,
) -> ApiResult<Json<WorkLimitShape>> {
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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

fn row_json(group: ReportGroup, r: &ReportRow) -> UsageRow {
    let mut v = UsageRow {
        calls: r.calls,
        errors: r.errors,
        refused: r.refused,
        compute_units: r.compute_units,
        duration_seconds: secs(r.duration_us),
        error_duration_seconds: secs(r.error_duration_us),
        credits_microcredits: r.credits,
        member: None,
        algorithm: None,
        version: None,
        day: None,
    };
    match group {
        ReportGroup::Member => v.member = Some(r.caller.clone()),
        ReportGroup::Algorithm => v.algorithm = Some(algorithm_path(r)),
        ReportGroup::Version | ReportGroup::CallerVersion => {
            v.algorithm = Some(algorithm_path(r));
            v.version = Some(r.version.clone());
            if group == ReportGroup::CallerVersion {
                v.member = Some(r.caller.clone());
            }
        }
        ReportGroup::Day => v.day = Some(r.day.clone()),
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
        None | Some("json") => Ok(Json(UsageReport {
            account: name,
            start_date: q.start_date,
            end_date: q.end_date,
            group_by: group_name.to_string(),
            side: side_name.to_string(),
            results: rows.iter().map(|r| row_json(group, r)).collect(),
        })
        .into_response()),
        Some("csv") => csv_report(group, &rows),
        Some(other) => Err(ApiError::new(
            Code::InvalidInput,
            format!("unknown format {other:?}: use json or csv"),
        )),
    }
}

#[utoipa::path(get, path = "/v1/users/{username}/usage", tag = "usage", summary = "A user's usage from daily rollups: ?start_date&end_date&group_by=member|algorithm|version|day&side=payer|owner&format=json|csv", params(ReportArgs), responses((status = 200, content((UsageReport = "application/json"), (String = "text/csv")))))]
async fn user_report(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    QueryArgs(q): QueryArgs<ReportArgs>,
) -> ApiResult<Response> {
    report(s, c, name, q).await
}

#[utoipa::path(get, path = "/v1/organizations/{org_name}/usage", tag = "usage", summary = "An org's usage (org admins), per member by default: ?start_date&end_date&group_by=member|algorithm|version|day&side=payer|owner&format=json|csv", params(ReportArgs), responses((status = 200, content((UsageReport = "application/json"), (String = "text/csv")))))]
async fn org_report(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
    QueryArgs(q): QueryArgs<ReportArgs>,
) -> ApiResult<Response> {
    report(s, c, name, q).await
}

#[utoipa::path(get, path = "/v1/users/{username}/balance", tag = "usage", summary = "Royalties a user earned and spent", responses((status = 200, body = Balance)))]
async fn balance(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Balance>> {
    let (account, b) = s.hub.balance(&c, &name).await?;
    Ok(Json(Balance {
        account: account.name,
        balance_microcredits: b.balance,
        earned_microcredits: b.earned,
        spent_microcredits: b.spent,
    }))
}

/// Error entries in the v1 shape (shared with the per-algorithm listing).
#[utoipa::path(get, path = "/v1/organizations/{org_name}/balance", tag = "usage", summary = "Royalties an org earned (its algorithms) and spent (org keys, consolidated billing)", responses((status = 200, body = Balance)))]
async fn org_balance(
    s: State<AppState>,
    c: Caller,
    name: Path<String>,
) -> ApiResult<Json<Balance>> {
    balance(s, c, name).await
}

pub fn error_entries(list: &[AlgorithmError]) -> Vec<AlgorithmErrorShape> {
    list.iter()
        .map(|e| AlgorithmErrorShape {
            created_at: e.created_at,
            request_id: e.request_id.clone(),
            username: e.caller_name.clone(),
            algoname: e.algorithm_name.clone(),
            algoversion: e.version.clone(),
            algorithm_owner: e.owner_name.clone(),
            input: e.input.clone(),
            error: e.error.clone(),
            error_type: e.error_type.clone(),
            billable_to: e.caller_name.clone(),
            worker: "algohub",
        })
        .collect()
}

#[utoipa::path(get, path = "/v1/users/{username}/errors", tag = "usage", summary = "Failed calls of the last 7 days to a user's algorithms (the user or a cluster admin; a username or the user's UUID)", responses((status = 200, body = Vec<AlgorithmErrorShape>)))]
async fn user_errors(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<AlgorithmErrorShape>>> {
    let list = s.hub.account_errors(&c, &name, AccountKind::User).await?;
    Ok(Json(error_entries(&list)))
}

#[utoipa::path(get, path = "/v1/organizations/{org_name}/errors", tag = "usage", summary = "Failed calls of the last 7 days to an org's algorithms (org admins)", responses((status = 200, body = Vec<AlgorithmErrorShape>)))]
async fn org_errors(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<AlgorithmErrorShape>>> {
    let list = s.hub.account_errors(&c, &name, AccountKind::Org).await?;
    Ok(Json(error_entries(&list)))
}

/// The v1 admin usage query: `start_date`, `end_date`, `page_size` required;
/// `user` repeated; `marker` (an offset this server issued).
/// The query of the cluster usage routes (read by `admin_usage_args`, which
/// also takes `user` more than once).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct AdminUsageQuery {
    /// The first day, such as 2026-11-01.
    start_date: String,
    /// The last day.
    end_date: String,
    /// 1 to 10000.
    page_size: u32,
    /// Callers to include (comma-separated).
    user: Option<String>,
    /// The `next_marker` of the previous page.
    marker: Option<String>,
}

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

async fn admin_usage_page<T: ToSchema>(
    s: &AppState,
    c: &algohub_core::RequestCtx,
    pairs: Vec<(String, String)>,
    group: ReportGroup,
    row: fn(&ReportRow) -> T,
) -> ApiResult<Json<UsagePage<T>>> {
    let a = admin_usage_args(pairs)?;
    let rows = s
        .hub
        .cluster_usage(c, a.from, a.to, group, &a.users)
        .await?;
    let page: Vec<T> = rows
        .iter()
        .skip(a.offset)
        .take(a.page_size)
        .map(row)
        .collect();
    let next = a.offset + page.len();
    Ok(Json(UsagePage {
        results: page,
        next_marker: (next < rows.len()).then(|| next.to_string()),
    }))
}

fn algorithm_row(r: &ReportRow) -> AlgorithmUsageRow {
    AlgorithmUsageRow {
        caller: None,
        algorithm_called: r.algorithm.clone().unwrap_or_else(|| "(unresolved)".into()),
        algorithm_owner: r.owner.clone().unwrap_or_default(),
        algorithm_version: r.version.clone().unwrap_or_default(),
        total_calls: r.calls,
        total_errors: r.errors,
        total_error_duration: secs(r.error_duration_us),
        total_duration: secs(r.duration_us),
        machine_type: "cpu",
    }
}

fn full_row(r: &ReportRow) -> AlgorithmUsageRow {
    let mut v = algorithm_row(r);
    v.caller = Some(r.caller.clone().unwrap_or_default());
    v
}

fn user_row(r: &ReportRow) -> UserUsageRow {
    UserUsageRow {
        caller: r.caller.clone().unwrap_or_default(),
        total_calls: r.calls,
        total_errors: r.errors,
        total_error_duration: secs(r.error_duration_us),
        total_duration: secs(r.duration_us),
    }
}

#[utoipa::path(get, path = "/v1/admin/usage", tag = "usage", summary = "Cluster usage per caller, algorithm and version: ?start_date&end_date&page_size&user&marker (cluster admins)", params(AdminUsageQuery), responses((status = 200, body = UsagePage<AlgorithmUsageRow>)))]
async fn admin_usage(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<Vec<(String, String)>>,
) -> ApiResult<Json<UsagePage<AlgorithmUsageRow>>> {
    admin_usage_page(&s, &c, q, ReportGroup::CallerVersion, full_row).await
}

#[utoipa::path(get, path = "/v1/admin/usage/algorithms", tag = "usage", summary = "Cluster usage per algorithm version (cluster admins)", params(AdminUsageQuery), responses((status = 200, body = UsagePage<AlgorithmUsageRow>)))]
async fn admin_usage_algorithms(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<Vec<(String, String)>>,
) -> ApiResult<Json<UsagePage<AlgorithmUsageRow>>> {
    admin_usage_page(&s, &c, q, ReportGroup::Version, algorithm_row).await
}

#[utoipa::path(get, path = "/v1/admin/usage/users", tag = "usage", summary = "Cluster usage per caller (cluster admins)", params(AdminUsageQuery), responses((status = 200, body = UsagePage<UserUsageRow>)))]
async fn admin_usage_users(
    State(s): State<AppState>,
    Caller(c): Caller,
    QueryArgs(q): QueryArgs<Vec<(String, String)>>,
) -> ApiResult<Json<UsagePage<UserUsageRow>>> {
    admin_usage_page(&s, &c, q, ReportGroup::Member, user_row).await
}

#[utoipa::path(get, path = "/v1/admin/usage/calls/{request_id}", tag = "usage", summary = "One call's usage record (cluster admins)", responses((status = 200, body = UsageRecordShape)))]
async fn usage_record(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(request_id): Path<String>,
) -> ApiResult<Json<UsageRecordShape>> {
    let (r, [caller, acting_as, payer]) = s.hub.usage_record(&c, &request_id).await?;
    Ok(Json(UsageRecordShape {
        request_id: r.request_id,
        started_at: algohub_core::model::format_millis(r.started_at),
        duration_seconds: secs(r.duration_us),
        caller,
        acting_as,
        payer,
        via: r.via.as_str(),
        algorithm_owner: r.algo_owner,
        algorithm_name: r.algo_name,
        version: r.version,
        status: r.status.as_str(),
        error_code: r.error_code,
        compute_units: r.compute_units,
        royalty_microcredits: r.royalty_microcredits,
    }))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(get_limit, set_limit))
        .typed(routes!(user_report))
        .typed(routes!(org_report))
        .typed(routes!(balance))
        .typed(routes!(org_balance))
        .typed(routes!(user_errors))
        .typed(routes!(org_errors))
        .typed(routes!(admin_usage))
        .typed(routes!(admin_usage_algorithms))
        .typed(routes!(admin_usage_users))
        .typed(routes!(usage_record))
}
