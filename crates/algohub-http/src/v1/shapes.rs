//! The Algorithmia v1 JSON shapes (field names and quirks from the reference),
//! as types: what each serializes to is what the document says. A field sent
//! only to some callers is an `Option` skipped when absent, so it is optional
//! in the schema.

use algohub_core::model::{ApiKey, Invitation, Membership, Org, Scopes, User, format_millis};
use serde::Serialize;
use utoipa::ToSchema;

/// A user (`User` in the v1 reference).
#[derive(Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserShape {
    pub id: String,
    pub username: String,
    pub email: String,
    pub fullname: String,
    pub self_link: String,
    /// Always `user`.
    pub resource_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_role: Option<String>,
}

pub fn user(u: &User, base: &str) -> UserShape {
    UserShape {
        id: u.uuid.clone(),
        username: u.username.clone(),
        email: u.email.clone(),
        fullname: u.full_name.clone(),
        self_link: format!("{base}/v1/users/{}", u.username),
        resource_type: "user",
        company_name: u.company_name.clone(),
        company_role: u.company_role.clone(),
    }
}

/// An organization. Contact details and settings are sent only to those who
/// may see them (members and cluster admins); `my_role` only to members.
#[derive(Serialize, ToSchema)]
#[schema(as = Organization)]
pub struct OrganizationShape {
    pub id: String,
    pub org_name: String,
    pub org_label: String,
    pub type_id: String,
    pub self_link: String,
    /// Always `organization`.
    pub resource_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_contact_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require_approval: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_self_approval: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consolidated_billing: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_url: Option<String>,
    /// The caller's role in the organization (single-organization answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub my_role: Option<&'static str>,
}

/// An organization; contact details only when the caller may see them.
pub fn org(o: &Org, private_visible: bool, base: &str) -> OrganizationShape {
    let private = |v| private_visible.then_some(v);
    OrganizationShape {
        id: o.uuid.clone(),
        org_name: o.name.clone(),
        org_label: o.label.clone(),
        type_id: o.type_id.clone(),
        self_link: format!("{base}/v1/organizations/{}", o.name),
        resource_type: "organization",
        org_email: private_visible.then(|| o.email.clone()),
        org_contact_name: private_visible.then(|| o.contact_name.clone()),
        require_approval: private(o.require_approval),
        allow_self_approval: private(o.allow_self_approval),
        consolidated_billing: private(o.consolidated_billing),
        tos_version: private_visible.then_some(o.tos_version),
        org_url: o.url.clone(),
        my_role: None,
    }
}

/// A member, or (`role: invited`) a pending invitation.
#[derive(Serialize, ToSchema)]
pub struct OrganizationMember {
    pub username: String,
    /// `owner` or `member` (v1 names), or `invited`.
    pub role: &'static str,
    /// algohub's role: viewer, team_contributor, contributor or admin.
    pub algohub_role: &'static str,
    /// When the membership ends (members only; null when it does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Option<String>>,
    pub user_link: String,
    /// Always `organization_member`.
    pub resource_type: &'static str,
}

pub fn member(m: &Membership, base: &str) -> OrganizationMember {
    OrganizationMember {
        username: m.username.clone(),
        role: m.role.v1_name(),
        algohub_role: m.role.as_str(),
        expires_at: Some(m.expires_at.map(format_millis)),
        user_link: format!("{base}/v1/users/{}", m.username),
        resource_type: "organization_member",
    }
}

pub fn invited_member(i: &Invitation, base: &str) -> OrganizationMember {
    let name = i
        .invitee_username
        .clone()
        .or_else(|| i.invitee_email.clone())
        .unwrap_or_default();
    OrganizationMember {
        user_link: format!("{base}/v1/users/{name}"),
        username: name,
        role: "invited",
        algohub_role: i.role.as_str(),
        expires_at: None,
        resource_type: "organization_member",
    }
}

/// A key's v1 permissions.
#[derive(Serialize, ToSchema)]
pub struct AuthPermissions {
    pub allow_algo: bool,
    pub allow_data: bool,
    pub allow_data_write: bool,
    pub allow_algo_management: bool,
    pub allow_web_algo: bool,
    pub algo_acl: Vec<String>,
    pub referer_host: Option<String>,
}

pub fn permissions(k: &ApiKey) -> AuthPermissions {
    AuthPermissions {
        allow_algo: k.scopes.has(Scopes::ALGO_CALL),
        allow_data: k.scopes.has(Scopes::DATA_READ),
        allow_data_write: k.scopes.has(Scopes::DATA_WRITE),
        allow_algo_management: k.scopes.has(Scopes::MANAGEMENT),
        allow_web_algo: k.allow_web_algo,
        algo_acl: k.algo_acl.clone(),
        referer_host: k.referer_host.clone(),
    }
}

/// An API key. `api_key` is the secret at creation only; listings put the
/// mask there (the generated client requires it to be non-null).
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKey)]
pub struct ApiKeyShape {
    pub id: String,
    pub username: String,
    pub owner_name: String,
    pub key_label: String,
    /// ManagementKey, PlatformAdminKey or AlgorithmKey.
    pub key_type: String,
    /// user, org or member.
    pub kind: &'static str,
    pub created_at: String,
    pub api_key_mask: String,
    pub api_key: String,
    pub permissions: AuthPermissions,
    pub scopes: Vec<&'static str>,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    /// For a key a cluster admin created for someone else: the reason given
    /// (requests made with it are recorded as that admin's impersonation).
    pub minted_reason: Option<String>,
}

/// A key; `secret` only at creation.
pub fn key(k: &ApiKey, secret: Option<&str>) -> ApiKeyShape {
    ApiKeyShape {
        id: k.uuid.clone(),
        username: k.owner_name.clone(),
        owner_name: k.org_name.clone().unwrap_or_else(|| k.owner_name.clone()),
        key_label: k.label.clone(),
        key_type: k.key_type.clone(),
        kind: k.kind.as_str(),
        created_at: format_millis(k.created_at),
        api_key_mask: k.mask.clone(),
        api_key: secret.unwrap_or(&k.mask).to_string(),
        permissions: permissions(k),
        scopes: k.scopes.names(),
        expires_at: k.expires_at.map(format_millis),
        last_used_at: k.last_used_at.map(format_millis),
        minted_reason: k.minted_reason.clone(),
    }
}

/// `{"results", "marker", "next_link"}`: a page of a list; `marker` and
/// `next_link` are null on the last page.
#[derive(Serialize, ToSchema)]
pub struct Paged<T: ToSchema> {
    pub results: Vec<T>,
    pub marker: Option<String>,
    pub next_link: Option<String>,
}

/// A page with a marker while more may follow.
pub fn paged<T: ToSchema>(
    results: Vec<T>,
    last_name: Option<String>,
    limit: i64,
    next_base: &str,
) -> Paged<T> {
    let more = results.len() as i64 >= limit;
    let marker = if more { last_name } else { None };
    let next_link = marker
        .as_ref()
        .map(|m| format!("{next_base}?limit={limit}&marker={m}"));
    Paged {
        results,
        marker,
        next_link,
    }
}
