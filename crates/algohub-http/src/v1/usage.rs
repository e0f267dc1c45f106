//! Call governance routes: work limits (cluster admins), usage reports and
//! balances (users for themselves, org admins for their org), per-account
//! error listings (the v1 admin usage routes are in `admin_usage.rs`).
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
    /// Earned plus granted minus spent; a paid call may not take it below
    /// the cluster's credit_floor_microcredits.
    balance_microcredits: i64,
    earned_microcredits: i64,
    spent_microcredits: i64,
    /// Credits cluster admins granted (less what they took back).
    granted_microcredits: i64,
}

fn balance_json(account: String, b: &algohub_core::model::Balance) -> Balance {
    Balance {
        account,
        balance_microcredits: b.balance,
        earned_microcredits: b.earned,
        spent_microcredits: b.spent,
        granted_microcredits: b.granted,
    }
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
    Ok(Json(limit_json(
        &s.hub.usage.get_work_limit(&c, &account).await?,
    )))
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
    let limit = crate::extract::whole_or_null(
        b.work_limit,
        "work_limit",
        "use a positive whole number, or null for the cluster default",
    )?;
    Ok(Json(limit_json(
        &s.hub.usage.set_work_limit(&c, &account, limit).await?,
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
pub(super) fn day_range(start: Option<&str>, end: Option<&str>) -> ApiResult<(i64, i64)> {
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

pub(super) fn secs(us: i64) -> f64 {
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
    let rows = s
        .hub
        .usage
        .usage_report(&c, &name, side, from, to, group)
        .await?;
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
    let (account, b) = s.hub.usage.balance(&c, &name).await?;
    Ok(Json(balance_json(account.name, &b)))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CreditGrant)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    /// Credits to add (negative: to take back), in microcredits.
    microcredits: i64,
    /// Why (on the audit trail).
    reason: String,
}

#[utoipa::path(post, path = "/v1/admin/accounts/{account}/credits", tag = "usage", summary = "Grant an account credits, or take them back with a negative amount; a reason is required (cluster admins)", request_body = GrantBody, responses((status = 200, body = Balance)))]
async fn grant_credits(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(account): Path<String>,
    JsonBody(b): JsonBody<GrantBody>,
) -> ApiResult<Json<Balance>> {
    let (account, balance) = s
        .hub
        .usage
        .grant_credits(&c, &account, b.microcredits, &b.reason)
        .await?;
    Ok(Json(balance_json(account.name, &balance)))
}

#[utoipa::path(get, path = "/v1/organizations/{org_name}/balance", tag = "usage", summary = "Royalties an org earned (its algorithms) and spent (org keys, consolidated billing)", responses((status = 200, body = Balance)))]
async fn org_balance(
    s: State<AppState>,
    c: Caller,
    name: Path<String>,
) -> ApiResult<Json<Balance>> {
    balance(s, c, name).await
}

/// Error entries in the v1 shape (shared with the per-algorithm listing).
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
    let list = s
        .hub
        .usage
        .account_errors(&c, &name, AccountKind::User)
        .await?;
    Ok(Json(error_entries(&list)))
}

#[utoipa::path(get, path = "/v1/organizations/{org_name}/errors", tag = "usage", summary = "Failed calls of the last 7 days to an org's algorithms (org admins)", responses((status = 200, body = Vec<AlgorithmErrorShape>)))]
async fn org_errors(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<AlgorithmErrorShape>>> {
    let list = s
        .hub
        .usage
        .account_errors(&c, &name, AccountKind::Org)
        .await?;
    Ok(Json(error_entries(&list)))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(get_limit, set_limit))
        .typed(routes!(user_report))
        .typed(routes!(org_report))
        .typed(routes!(balance))
        .typed(routes!(org_balance))
        .typed(routes!(grant_credits))
        .typed(routes!(user_errors))
        .typed(routes!(org_errors))
}
