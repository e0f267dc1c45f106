//! API keys: user keys, org keys and member keys (v1 shapes), and revocation.

use super::shapes;
use crate::error::ApiResult;
use crate::extract::{Caller, JsonBody, RawBody, parse_json};
use crate::{AppState, op, routes::Routes};
use algohub_core::model::Scopes;
use algohub_core::services::{CreateKey, parse_expiry};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize, Default)]
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

#[derive(Deserialize, Default)]
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
}

impl KeyBody {
    pub(crate) fn into_request(self, default_type: &str) -> algohub_core::Result<CreateKey> {
        let key_type = self.key_type.unwrap_or_else(|| default_type.to_string());
        let mut req = CreateKey {
            label: self.key_label.unwrap_or_default(),
            key_type: key_type.clone(),
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

/// Key bodies are optional (the admin key route sends none).
fn optional_body(bytes: &Bytes) -> ApiResult<KeyBody> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        Ok(KeyBody::default())
    } else {
        parse_json(bytes)
    }
}

async fn list_user_keys(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<Value>> {
    let keys = s.hub.list_user_keys(&c, &user).await?;
    Ok(Json(json!(
        keys.iter()
            .map(|k| shapes::key(k, None))
            .collect::<Vec<_>>()
    )))
}

async fn create_user_key(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<Json<Value>> {
    let req = optional_body(&body)?.into_request("ManagementKey")?;
    let (k, secret) = s.hub.create_user_key(&c, &user, req).await?;
    Ok(Json(shapes::key(&k, Some(secret.expose()))))
}

async fn admin_create_user_key(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(user): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<Json<Value>> {
    let req = optional_body(&body)?.into_request("ManagementKey")?;
    let (k, secret) = s.hub.admin_create_user_key(&c, &user, req).await?;
    Ok(Json(shapes::key(&k, Some(secret.expose()))))
}

async fn list_org_keys(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
) -> ApiResult<Json<Value>> {
    let keys = s.hub.list_org_keys(&c, &org).await?;
    Ok(Json(json!(
        keys.iter()
            .map(|k| shapes::key(k, None))
            .collect::<Vec<_>>()
    )))
}

async fn create_org_key(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(org): Path<String>,
    JsonBody(b): JsonBody<KeyBody>,
) -> ApiResult<Json<Value>> {
    let req = b.into_request("AlgorithmKey")?;
    let (k, secret) = s.hub.create_org_key(&c, &org, req).await?;
    Ok(Json(shapes::key(&k, Some(secret.expose()))))
}

async fn create_member_key(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path((org, user)): Path<(String, String)>,
    RawBody(body): RawBody,
) -> ApiResult<Json<Value>> {
    let req = optional_body(&body)?.into_request("ManagementKey")?;
    let (k, secret) = s.hub.create_member_key(&c, &org, &user, req).await?;
    Ok(Json(shapes::key(&k, Some(secret.expose()))))
}

async fn revoke(
    State(s): State<AppState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let k = s.hub.revoke_key(&c, &id).await?;
    Ok(Json(json!({"revoked": k.uuid})))
}

pub fn routes(r: Routes) -> Routes {
    r.add(op!(GET "/v1/users/{username}/keys", "keys", "List a user's keys (masked)", response = "ApiKeyList"), get(list_user_keys))
        .add(op!(POST "/v1/users/{username}/keys", "keys", "Create a user key; the secret is shown once", body = "ApiKeyCreation", response = "ApiKey"), post(create_user_key))
        .add(op!(POST "/v1/admin/users/{username}/keys", "keys", "A cluster admin creates a key for a user (no body needed)", response = "ApiKey"), post(admin_create_user_key))
        .add(op!(GET "/v1/organizations/{org}/keys", "keys", "List org keys and member keys (org admins)", response = "ApiKeyList"), get(list_org_keys))
        .add(op!(POST "/v1/organizations/{org}/keys", "keys", "Create an org-owned key (org admins)", body = "ApiKeyCreation", response = "ApiKey"), post(create_org_key))
        .add(op!(POST "/v1/organizations/{org}/members/{username}/keys", "keys", "Create a member key limited to the org (org admins)", body = "ApiKeyCreation", response = "ApiKey"), post(create_member_key))
        .add(op!(DELETE "/v1/keys/{key_id}", "keys", "Revoke a key (its owner or an org admin)"), delete(revoke))
}
