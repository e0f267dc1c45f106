//! The Algorithmia v1 JSON shapes (field names and quirks from the reference).

use algohub_core::model::{ApiKey, Invitation, Membership, Org, Scopes, User, format_millis};
use serde_json::{Value, json};

pub fn user(u: &User, base: &str) -> Value {
    let mut v = json!({
        "id": u.uuid,
        "username": u.username,
        "email": u.email,
        "fullname": u.full_name,
        "self_link": format!("{base}/v1/users/{}", u.username),
        "resource_type": "user",
    });
    if let Some(c) = &u.company_name {
        v["company_name"] = json!(c);
    }
    if let Some(c) = &u.company_role {
        v["company_role"] = json!(c);
    }
    v
}

/// An organization; contact details only when the caller may see them.
pub fn org(o: &Org, private_visible: bool, base: &str) -> Value {
    let mut v = json!({
        "id": o.uuid,
        "org_name": o.name,
        "org_label": o.label,
        "type_id": o.type_id,
        "self_link": format!("{base}/v1/organizations/{}", o.name),
        "resource_type": "organization",
    });
    if private_visible {
        v["org_email"] = json!(o.email);
        v["org_contact_name"] = json!(o.contact_name);
        v["require_approval"] = json!(o.require_approval);
        v["allow_self_approval"] = json!(o.allow_self_approval);
        v["consolidated_billing"] = json!(o.consolidated_billing);
        v["tos_version"] = json!(o.tos_version);
    }
    if let Some(u) = &o.url {
        v["org_url"] = json!(u);
    }
    v
}

pub fn member(m: &Membership, base: &str) -> Value {
    json!({
        "username": m.username,
        "role": m.role.v1_name(),
        "algohub_role": m.role.as_str(),
        "expires_at": m.expires_at.map(format_millis),
        "user_link": format!("{base}/v1/users/{}", m.username),
        "resource_type": "organization_member",
    })
}

pub fn invited_member(i: &Invitation, base: &str) -> Value {
    let name = i
        .invitee_username
        .clone()
        .or_else(|| i.invitee_email.clone())
        .unwrap_or_default();
    json!({
        "username": name,
        "role": "invited",
        "algohub_role": i.role.as_str(),
        "user_link": format!("{base}/v1/users/{name}"),
        "resource_type": "organization_member",
    })
}

pub fn permissions(k: &ApiKey) -> Value {
    json!({
        "allow_algo": k.scopes.has(Scopes::ALGO_CALL),
        "allow_data": k.scopes.has(Scopes::DATA_READ),
        "allow_data_write": k.scopes.has(Scopes::DATA_WRITE),
        "allow_algo_management": k.scopes.has(Scopes::MANAGEMENT),
        "allow_web_algo": k.allow_web_algo,
        "algo_acl": k.algo_acl,
        "referer_host": k.referer_host,
    })
}

/// A key; `secret` only at creation. Listings put the mask in `api_key`, which
/// the generated client requires to be non-null.
pub fn key(k: &ApiKey, secret: Option<&str>) -> Value {
    json!({
        "id": k.uuid,
        "username": k.owner_name,
        "owner_name": k.org_name.clone().unwrap_or_else(|| k.owner_name.clone()),
        "key_label": k.label,
        "key_type": k.key_type,
        "kind": k.kind.as_str(),
        "created_at": format_millis(k.created_at),
        "api_key_mask": k.mask,
        "api_key": secret.unwrap_or(&k.mask),
        "permissions": permissions(k),
        "scopes": k.scopes.names(),
        "expires_at": k.expires_at.map(format_millis),
        "last_used_at": k.last_used_at.map(format_millis),
    })
}

/// `{"results", "marker", "next_link"}` with a marker while more may follow.
pub fn paged(results: Vec<Value>, last_name: Option<String>, limit: i64, next_base: &str) -> Value {
    let more = results.len() as i64 >= limit;
    let marker = if more { last_name } else { None };
    let next_link = marker
        .as_ref()
        .map(|m| format!("{next_base}?limit={limit}&marker={m}"));
    json!({"results": results, "marker": marker, "next_link": next_link})
}
