//! API keys: user keys, org keys and member keys (v1 shapes), and revocation.

use super::shapes;
use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, RawBody, parse_json};
use crate::{AppState, routes::Routes};
use algohub_core::model::Scopes;
use algohub_core::services::{CreateKey, parse_expiry};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

/// The answer to a revocation.
#[derive(Serialize, ToSchema)]
struct Revoked {
    /// The revoked key's id.
    revoked: String,
}

/// v1 permissions of a new key.
#[derive(Deserialize, Default, ToSchema)]
#[schema(as = AuthPermissionsRequest)]
struct Permissions {
    allow_algo: Option<bool>,
    allow_data: Option<bool>,
    allow_data_write: Option<bool>,
    allow_algo_management: Option<bool>,
    #[serde(default)]
    allow_web_algo: bool,
    #[serde(default)]
    algo_acl: Option<Vec<String>>,
    #[serde(default)]
    referer_host: Option<String>,
}

#[derive(Deserialize, Default, ToSchema)]
#[schema(as = ApiKeyCreation)]
pub(crate) struct KeyBody {
    #[serde(default)]
    key_label: Option<String>,
    #[serde(default)]
    key_type: Option<String>,
    #[serde(default)]
    permissions: Option<Permissions>,
    /// Native: scopes by name, instead of v1 permissions.
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    expires_at: Option<String>,
    /// Required when a cluster admin creates a key for someone else: why
    /// (the owner is told; such a key expires within a day by default).
    #[serde(default)]
    reason: Option<String>,
}

impl KeyBody {
    pub(crate) fn into_request(self, default_type: &str) -> algohub_core::Result<CreateKey> {
        let key_type = self.key_type.unwrap_or_else(|| default_type.to_string());
        let mut req = CreateKey {
            label: self.key_label.unwrap_or_default(),
            key_type: key_type.clone(),
            reason: self.reason,
            ..Default::default()
        };
        req.expires_at = parse_expiry(self.expires_at.as_deref())?;
        req.scopes = if let Some(names) = &self.scopes {
            Scopes::parse_names(names.iter().map(String::as_str))?
        } else if let Some(p) = &self.permissions {
            let mut bits = 0;
            for (flag, bit) in [
                (p.allow_algo, Scopes::ALGO_CALL),
                (p.allow_data, Scopes::DATA_READ),
                (p.allow_data_write, Scopes::DATA_WRITE),
                (p.allow_algo_management, Scopes::MANAGEMENT),
            ] {
                if flag.unwrap_or(false) {
                    bits |= bit;
                }
            }
            Scopes(bits)
        } else if key_type == "AlgorithmKey" {
            Scopes(Scopes::ALGO_CALL | Scopes::DATA_READ)
        } else {
            Scopes::ALL
        };
        if let Some(p) = self.permissions {
            req.allow_web_algo = p.allow_web_algo;
            req.referer_host = p.referer_host;
            if let Some(acl) = p.algo_acl {
                req.algo_acl = acl;
            }
        }
        Ok(req)
    }
}

/// The header that carries the reason for a key a cluster admin creates for
/// someone else, for clients that send no body (the v1 admin route).
pub const REASON_HEADER: &str = "x-algohub-reason";

/// The request's reason: the body's `reason`, else the `X-Algohub-Reason` header.
fn with_reason(mut req: CreateKey, headers: &HeaderMap) -> CreateKey {
    if req.reason.is_none() {
        req.reason = headers
            .get(REASON_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    req
}

/// Key bodies are optional (the admin key route sends none).
fn optional_body(bytes: &Bytes) -> ApiResult<KeyBody> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        Ok(KeyBody::default())
    } else {
        parse_json(bytes)
    }
}

#[utoipa::path(get, path = "/v1/users/{username}/keys", tag = "keys", summary = "List a user's keys (masked)", responses((status = 200, body = Vec<shapes::ApiKeyShape>)))]
async fn list_user_keys(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<Vec<shapes::ApiKeyShape>>> {
    let keys = s.hub.keys.list_user_keys(&c, &user).await?;
    Ok(Json(keys.iter().map(|k| shapes::key(k, None)).collect()))
}

#[utoipa::path(post, path = "/v1/users/{username}/keys", tag = "keys", summary = "Create a user key; the secret is shown once", request_body(content = Option<KeyBody>, description = "optional"), responses((status = 200, body = shapes::ApiKeyShape)))]
async fn create_user_key(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<shapes::ApiKeyShape>> {
    let req = with_reason(
        optional_body(&body)?.into_request("ManagementKey")?,
        &headers,
    );
    let (k, secret) = s.hub.keys.create_user_key(&c, &user, req).await?;
    Ok(Json(shapes::key(&k, Some(secret.expose()))))
}

#[utoipa::path(post, path = "/v1/admin/users/{username}/keys", tag = "keys", summary = "A cluster admin creates a key for a user: for someone else, a reason is required (body {\"reason\"} or header X-Algohub-Reason), the key expires (a day by default, at most max_minted_key_hours), the user is told, and every request made with it is recorded as an impersonation", request_body(content = Option<KeyBody>, description = "optional"), responses((status = 200, body = shapes::ApiKeyShape)))]
async fn admin_create_user_key(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<shapes::ApiKeyShape>> {
    let req = with_reason(
        optional_body(&body)?.into_request("ManagementKey")?,
        &headers,
    );
    let (k, secret) = s.hub.keys.admin_create_user_key(&c, &user, req).await?;
    Ok(Json(shapes::key(&k, Some(secret.expose()))))
}

#[utoipa::path(get, path = "/v1/organizations/{org}/keys", tag = "keys", summary = "List org keys and member keys (org admins)", responses((status = 200, body = Vec<shapes::ApiKeyShape>)))]
async fn list_org_keys(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<shapes::ApiKeyShape>>> {
    let keys = s.hub.keys.list_org_keys(&c, &org).await?;
    Ok(Json(keys.iter().map(|k| shapes::key(k, None)).collect()))
}

#[utoipa::path(post, path = "/v1/organizations/{org}/keys", tag = "keys", summary = "Create an org-owned key (org admins)", request_body = KeyBody, responses((status = 200, body = shapes::ApiKeyShape)))]
async fn create_org_key(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<KeyBody>,
) -> ApiResult<Json<shapes::ApiKeyShape>> {
    let req = with_reason(b.into_request("AlgorithmKey")?, &headers);
    let (k, secret) = s.hub.keys.create_org_key(&c, &org, req).await?;
    Ok(Json(shapes::key(&k, Some(secret.expose()))))
}

#[utoipa::path(post, path = "/v1/organizations/{org}/members/{username}/keys", tag = "keys", summary = "Create a member key limited to the org (org admins)", request_body(content = Option<KeyBody>, description = "optional"), responses((status = 200, body = shapes::ApiKeyShape)))]
async fn create_member_key(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, user)): Path<(String, String)>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> ApiResult<Json<shapes::ApiKeyShape>> {
    let req = with_reason(
        optional_body(&body)?.into_request("ManagementKey")?,
        &headers,
    );
    let (k, secret) = s.hub.keys.create_member_key(&c, &org, &user, req).await?;
    Ok(Json(shapes::key(&k, Some(secret.expose()))))
}

#[utoipa::path(delete, path = "/v1/keys/{key_id}", tag = "keys", summary = "Revoke a key (its owner or an org admin)", responses((status = 200, body = Revoked)))]
async fn revoke(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Revoked>> {
    let k = s.hub.keys.revoke_key(&c, &id).await?;
    Ok(Json(Revoked { revoked: k.uuid }))
}

pub fn routes(r: Routes) -> Routes {
    r.typed(routes!(list_user_keys, create_user_key))
        .typed(routes!(admin_create_user_key))
        .typed(routes!(list_org_keys, create_org_key))
        .typed(routes!(create_member_key))
        .typed(routes!(revoke))
}
