//! Domain records as the services see them. Times are UTC milliseconds since the
//! Unix epoch (`Millis`), which both backends store as a 64-bit integer.

use crate::roles::{AppRole, OrgRole};
use serde::{Deserialize, Serialize};

mod algorithms;
mod elevated;
mod usage;
pub use algorithms::*;
pub use elevated::*;
pub use usage::*;

pub type Millis = i64;
/// Internal numeric id of an account (user or organization).
pub type AccountId = i64;
pub type AppId = i64;
pub type TeamId = i64;
pub type KeyId = i64;

pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Appends times as `format_millis` writes them, without allocating: the
/// date part (by chrono) is kept for the day it was made for, which rows
/// written in order mostly share.
#[derive(Debug, Default)]
pub struct MillisWriter {
    day: Option<i64>,
    date: String,
}

impl MillisWriter {
    pub fn push(&mut self, out: &mut Vec<u8>, ms: Millis) {
        const DAY: i64 = 86_400_000;
        let (day, in_day) = (ms.div_euclid(DAY), ms.rem_euclid(DAY));
        if self.day != Some(day) {
            // "YYYY-MM-DDT" of this day.
            let full = format_millis(day * DAY);
            self.date = full[..full.len() - "00:00:00.000Z".len()].to_string();
            self.day = Some(day);
        }
        out.extend_from_slice(self.date.as_bytes());
        let two = |n: i64| [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        let (h, m, sec, milli) = (
            in_day / 3_600_000,
            in_day / 60_000 % 60,
            in_day / 1000 % 60,
            in_day % 1000,
        );
        out.extend_from_slice(&two(h));
        out.push(b':');
        out.extend_from_slice(&two(m));
        out.push(b':');
        out.extend_from_slice(&two(sec));
        out.push(b'.');
        out.extend_from_slice(&[
            b'0' + (milli / 100) as u8,
            b'0' + (milli / 10 % 10) as u8,
            b'0' + (milli % 10) as u8,
            b'Z',
        ]);
    }
}

/// RFC 3339 with milliseconds and `Z`, e.g. `2021-03-22T10:11:12.000Z`.
pub fn format_millis(ms: Millis) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parse an RFC 3339 time, with or without zone or fraction (a missing zone is UTC).
pub fn parse_time(raw: &str) -> Option<Millis> {
    let raw = raw.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Some(t.timestamp_millis());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(raw, fmt) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    User,
    Org,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    Suspended,
    Deleted,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            _ => Self::Deleted,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: AccountId,
    pub uuid: String,
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub company_name: Option<String>,
    pub company_role: Option<String>,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub cluster_admin: bool,
    pub sudo_user: bool,
    pub work_limit: Option<i64>,
    pub status: AccountStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_login_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub company_name: Option<String>,
    pub company_role: Option<String>,
    pub password_hash: Option<String>,
    pub cluster_admin: bool,
}

#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub company_name: Option<String>,
    pub company_role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Org {
    pub id: AccountId,
    pub uuid: String,
    pub name: String,
    pub label: String,
    pub contact_name: String,
    pub email: String,
    pub url: Option<String>,
    pub type_id: String,
    pub tos_version: i64,
    pub require_approval: bool,
    pub allow_self_approval: bool,
    pub consolidated_billing: bool,
    pub status: AccountStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct NewOrg {
    pub name: String,
    pub label: String,
    pub contact_name: String,
    pub email: String,
    pub url: Option<String>,
    pub type_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct OrgUpdate {
    pub label: Option<String>,
    pub contact_name: Option<String>,
    pub email: Option<String>,
    pub url: Option<Option<String>>,
    pub type_id: Option<String>,
    pub require_approval: Option<bool>,
    pub allow_self_approval: Option<bool>,
    pub consolidated_billing: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgType {
    pub id: String,
    pub name: String,
}

/// Any account by name: resolves the shared namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRef {
    pub id: AccountId,
    pub uuid: String,
    pub name: String,
    pub kind: AccountKind,
    pub status: AccountStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub org_id: AccountId,
    pub org_name: String,
    pub user_id: AccountId,
    pub username: String,
    pub role: OrgRole,
    pub expires_at: Option<Millis>,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Declined,
    Rescinded,
    Expired,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Rescinded => "rescinded",
            Self::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "accepted" => Self::Accepted,
            "declined" => Self::Declined,
            "rescinded" => Self::Rescinded,
            _ => Self::Expired,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitation {
    pub id: String,
    pub org_id: AccountId,
    pub org_name: String,
    pub invitee_user_id: Option<AccountId>,
    pub invitee_username: Option<String>,
    pub invitee_email: Option<String>,
    pub role: OrgRole,
    pub status: InvitationStatus,
    pub invited_by: AccountId,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub decided_at: Option<Millis>,
    pub accepted_tos_version: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub id: String,
    pub org_id: AccountId,
    pub invitee_user_id: Option<AccountId>,
    pub invitee_email: Option<String>,
    pub role: OrgRole,
    pub token_digest: Option<String>,
    pub invited_by: AccountId,
    pub created_at: Millis,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Team {
    pub id: TeamId,
    pub uuid: String,
    pub org_id: AccountId,
    pub name: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamMember {
    pub team_id: TeamId,
    pub user_id: AccountId,
    pub username: String,
    pub expires_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamAppGrant {
    pub team_id: TeamId,
    pub app_id: AppId,
    pub app_name: String,
    pub owner_name: String,
    pub role: AppRole,
    pub expires_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct App {
    pub id: AppId,
    pub uuid: String,
    pub owner_id: AccountId,
    pub owner_name: String,
    pub name: String,
    pub description: String,
    pub created_by: AccountId,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What moving an app to another owner did (`AppStore::transfer_app`).
#[derive(Debug, Clone, PartialEq)]
pub struct AppTransfer {
    /// The app under its new owner.
    pub app: App,
    /// The app's live algorithms, now the new owner's (same ids, so their
    /// builds, versions, usage records and errors stay with them).
    pub algorithms: Vec<Algorithm>,
    /// Versions that were published and now wait for approval again, because
    /// the new owner is an organization that requires it.
    pub resubmitted: Vec<Version>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppSort {
    UpdatedDesc,
    UpdatedAsc,
    NameAsc,
    NameDesc,
}

impl AppSort {
    pub fn parse(sort: Option<&str>, order: Option<&str>) -> crate::Result<Self> {
        let desc = match order.map(|o| o.to_ascii_lowercase()) {
            None => None,
            Some(o) if o == "asc" => Some(false),
            Some(o) if o == "desc" => Some(true),
            Some(o) => {
                return Err(crate::Error::invalid(format!(
                    "unknown order {o:?}: use asc or desc"
                )));
            }
        };
        match sort.map(|s| s.to_ascii_lowercase()).as_deref() {
            None | Some("updated") | Some("last_updated") => Ok(if desc.unwrap_or(true) {
                Self::UpdatedDesc
            } else {
                Self::UpdatedAsc
            }),
            Some("name") => Ok(if desc.unwrap_or(false) {
                Self::NameDesc
            } else {
                Self::NameAsc
            }),
            Some(s) => Err(crate::Error::invalid(format!(
                "unknown sort {s:?}: use updated or name"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Scopes(pub i64);

impl Scopes {
    pub const ALGO_CALL: i64 = 1;
    pub const DATA_READ: i64 = 2;
    pub const DATA_WRITE: i64 = 4;
    pub const MANAGEMENT: i64 = 8;
    pub const ALL: Scopes = Scopes(15);

    pub fn has(self, bit: i64) -> bool {
        self.0 & bit == bit
    }
    pub fn names(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (bit, name) in [
            (Self::ALGO_CALL, "algo_call"),
            (Self::DATA_READ, "data_read"),
            (Self::DATA_WRITE, "data_write"),
            (Self::MANAGEMENT, "management"),
        ] {
            if self.has(bit) {
                v.push(name);
            }
        }
        v
    }
    pub fn parse_names<'a>(names: impl IntoIterator<Item = &'a str>) -> crate::Result<Self> {
        let mut bits = 0;
        for n in names {
            bits |= match n {
                "algo_call" => Self::ALGO_CALL,
                "data_read" => Self::DATA_READ,
                "data_write" => Self::DATA_WRITE,
                "management" => Self::MANAGEMENT,
                other => {
                    return Err(crate::Error::invalid(format!(
                        "unknown scope {other:?}: use algo_call, data_read, data_write or management"
                    )));
                }
            };
        }
        Ok(Scopes(bits))
    }
}

/// Who a key belongs to and how it acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// A user's own key: acts as the user.
    User,
    /// Owned by an organization: acts as the organization.
    Org,
    /// Issued to one member of an organization: acts as that user, limited to the org.
    Member,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Org => "org",
            Self::Member => "member",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "org" => Self::Org,
            "member" => Self::Member,
            _ => Self::User,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: KeyId,
    pub uuid: String,
    pub kind: KeyKind,
    /// The user (user keys, member keys) or org (org keys) the key acts for.
    pub owner_id: AccountId,
    pub owner_name: String,
    /// For member keys: the org the key is limited to.
    pub org_id: Option<AccountId>,
    pub org_name: Option<String>,
    pub label: String,
    pub key_type: String,
    pub mask: String,
    #[serde(skip)]
    pub digest: String,
    pub scopes: Scopes,
    pub allow_web_algo: bool,
    pub referer_host: Option<String>,
    pub algo_acl: Vec<String>,
    pub created_by: AccountId,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    /// For a key a cluster admin created for someone else: the reason given.
    pub minted_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewKey {
    pub uuid: String,
    pub kind: KeyKind,
    pub owner_id: AccountId,
    pub org_id: Option<AccountId>,
    pub label: String,
    pub key_type: String,
    pub mask: String,
    pub digest: String,
    pub scopes: Scopes,
    pub allow_web_algo: bool,
    pub referer_host: Option<String>,
    pub algo_acl: Vec<String>,
    pub created_by: AccountId,
    pub expires_at: Option<Millis>,
    /// Set when a cluster admin creates the key for someone else.
    pub minted_reason: Option<String>,
}

/// A message waiting in the outbox for delivery (email, in-app notification).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub kind: String,
    pub recipient_user_id: Option<AccountId>,
    pub recipient_email: Option<String>,
    pub payload: serde_json::Value,
    pub created_at: Millis,
    pub delivered_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct NewOutboxMessage {
    pub kind: String,
    pub recipient_user_id: Option<AccountId>,
    pub recipient_email: Option<String>,
    pub payload: serde_json::Value,
}

/// A domain event ("audit-ready"): recorded in the same transaction as its change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub id: i64,
    pub kind: String,
    pub actor_id: Option<AccountId>,
    pub subject: String,
    pub detail: serde_json::Value,
    pub at: Millis,
}

/// Paging for listings ordered by name: `marker` is the last name seen.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub limit: i64,
    pub marker: Option<String>,
}

#[cfg(test)]
mod millis_tests {
    use super::*;

    #[test]
    fn millis_writer_matches_format_millis() {
        let mut w = MillisWriter::default();
        let mut x: i64 = 0x9E37_79B9;
        for ms in [
            0,
            1,
            999,
            86_399_999,
            86_400_000,
            -1,
            -86_400_001,
            1_700_000_000_123,
        ]
        .into_iter()
        .chain((0..2000).map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x.rem_euclid(4_000_000_000_000) - 100_000_000_000
        })) {
            let mut out = Vec::new();
            w.push(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), format_millis(ms), "{ms}");
        }
    }
}
