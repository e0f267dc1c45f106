//! The v1 admin usage routes (cluster admins): `/v1/admin/usage[/users|
//! /algorithms]`, paged over the daily rollups, and one call's usage record,
//! `/v1/admin/usage/calls/{request_id}` (the request's `x-request-id`).

use super::usage::{day_range, secs};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Caller, QueryArgs};
use crate::{AppState, routes::Routes};
use algohub_core::Code;
use algohub_core::model::{ReportGroup, ReportRow};
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

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

/// The v1 admin usage query: `start_date`, `end_date`, `page_size` required;
/// `user` repeated; `marker` (an offset this server issued). The query of the cluster usage routes (read by `admin_usage_args`, which
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
        .usage
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
    let (r, [caller, acting_as, payer]) = s.hub.usage.usage_record(&c, &request_id).await?;
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
    r.typed(routes!(admin_usage))
        .typed(routes!(admin_usage_algorithms))
        .typed(routes!(admin_usage_users))
        .typed(routes!(usage_record))
}
