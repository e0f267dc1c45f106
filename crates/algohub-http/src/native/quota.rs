//! Storage quotas for data files: `GET`/`PUT /v1/admin/accounts/{account}/storage-quota`.

use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, whole_or_null};
use crate::{AppState, routes::Routes};
use algohub_core::services::StorageQuotaView;
use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;

/// An account's storage quota for data files and what its files take.
#[derive(Serialize, ToSchema)]
#[schema(as = StorageQuota)]
struct QuotaShape {
    account: String,
    /// The quota in force, in MiB; null: unlimited.
    storage_quota_mib: Option<u64>,
    /// Whether this is the cluster's default (`data_quota_mib`), not the account's own.
    is_default: bool,
    /// The bytes of the account's data files on this node.
    used_bytes: u64,
}

fn shape(v: StorageQuotaView) -> QuotaShape {
    QuotaShape {
        account: v.account,
        storage_quota_mib: v.quota_mib,
        is_default: v.is_default,
        used_bytes: v.used_bytes,
    }
}

#[utoipa::path(get, path = "/v1/admin/accounts/{account}/storage-quota", tag = "data", summary = "An account's storage quota for data files and its usage (cluster admins)", responses((status = 200, body = QuotaShape)))]
async fn get_quota(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(account): Path<String>,
) -> ApiResult<Json<QuotaShape>> {
    Ok(Json(shape(
        s.hub.data.get_storage_quota(&c, &account).await?,
    )))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = StorageQuotaUpdate)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    /// MiB (0: unlimited), or null for the cluster default.
    #[schema(value_type = Option<i64>, minimum = 0)]
    storage_quota_mib: Option<Value>,
}

#[utoipa::path(put, path = "/v1/admin/accounts/{account}/storage-quota", tag = "data", summary = "Set an account's storage quota for data files: MiB (0: unlimited), or null for the cluster default (cluster admins)", request_body = QuotaBody, responses((status = 200, body = QuotaShape)))]
async fn set_quota(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(account): Path<String>,
    JsonBody(b): JsonBody<QuotaBody>,
) -> ApiResult<Json<QuotaShape>> {
    let quota = whole_or_null(
        b.storage_quota_mib,
        "storage_quota_mib",
        "use a whole number of MiB (0: unlimited), or null for the cluster default",
    )?;
    Ok(Json(shape(
        s.hub.data.set_storage_quota(&c, &account, quota).await?,
    )))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(get_quota, set_quota))
}
