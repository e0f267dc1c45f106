//! Call governance records: usage records, their daily rollups, ledger
//! postings, and the concurrency slots calls hold while they run.

use super::{AccountId, AlgoId, Millis};
use serde::{Deserialize, Serialize};

/// How a call reached the hub, as recorded in its usage record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// A user's own key or session.
    Direct,
    /// An organization's key: the org is the caller.
    OrgKey,
    /// A member key: the user, limited to one organization.
    MemberKey,
    /// `?sudo=true`: run as the algorithm's owner by a sudo user.
    Sudo,
    /// A cluster admin acting as the caller (an impersonation session).
    Impersonation,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::OrgKey => "org_key",
            Self::MemberKey => "member_key",
            Self::Sudo => "sudo",
            Self::Impersonation => "impersonation",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "direct" => Self::Direct,
            "org_key" => Self::OrgKey,
            "member_key" => Self::MemberKey,
            "sudo" => Self::Sudo,
            "impersonation" => Self::Impersonation,
            _ => return None,
        })
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageStatus {
    /// The algorithm ran and returned a result.
    Ok,
    /// The algorithm ran and failed (its error, a timeout, a runtime fault).
    Error,
    /// Refused before running: not found, not allowed, invalid version.
    Refused,
    /// Refused by the account's concurrency limit.
    Limited,
}

impl UsageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Refused => "refused",
            Self::Limited => "limited",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => Self::Ok,
            "error" => Self::Error,
            "refused" => Self::Refused,
            "limited" => Self::Limited,
            _ => return None,
        })
    }
}

/// One call, as metered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub request_id: String,
    pub started_at: Millis,
    pub duration_us: i64,
    /// Who authenticated: the user, or the org for an org key.
    pub caller_id: AccountId,
    /// Whose rights the call ran with (the algorithm's owner for sudo calls).
    pub acting_as_id: AccountId,
    /// Who pays (an org with consolidated billing for its member keys).
    pub payer_id: AccountId,
    pub via: Via,
    /// `None` when the algorithm did not resolve.
    pub algorithm_id: Option<AlgoId>,
    pub owner_id: Option<AccountId>,
    /// The owner and name as requested (or resolved).
    pub algo_owner: String,
    pub algo_name: String,
    /// Semantic version, build hash, or what was asked for when refused.
    pub version: String,
    pub status: UsageStatus,
    /// The error code of a refusal or the error type of a failed run.
    pub error_code: Option<String>,
    pub compute_units: i64,
    /// Charged to the payer and credited to the owner (0 when not charged).
    pub royalty_microcredits: i64,
}

/// A usage record's fields as stored, in declaration order (the column
/// order of `usage_records`, and of a usage journal line).
pub type UsageColumns<'a> = (
    &'a str,
    Millis,
    i64,
    AccountId,
    AccountId,
    AccountId,
    &'static str,
    Option<AlgoId>,
    Option<AccountId>,
    &'a str,
    &'a str,
    &'a str,
    &'static str,
    Option<&'a str>,
    i64,
    i64,
);

impl UsageRecord {
    /// The record's fields as stored (see `UsageColumns`).
    pub fn columns(&self) -> UsageColumns<'_> {
        (
            &self.request_id,
            self.started_at,
            self.duration_us,
            self.caller_id,
            self.acting_as_id,
            self.payer_id,
            self.via.as_str(),
            self.algorithm_id,
            self.owner_id,
            &self.algo_owner,
            &self.algo_name,
            &self.version,
            self.status.as_str(),
            self.error_code.as_deref(),
            self.compute_units,
            self.royalty_microcredits,
        )
    }
}

/// Days since 1970-01-01 (UTC) of a time in milliseconds.
pub fn day_of(t: Millis) -> i64 {
    t.div_euclid(86_400_000)
}

/// What a report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportGroup {
    Member,
    Algorithm,
    Version,
    Day,
    /// Caller × algorithm × version (the v1 admin usage rows).
    CallerVersion,
}

impl ReportGroup {
    /// The names users pass (`group_by=`); `CallerVersion` is internal.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "member" => Self::Member,
            "algorithm" => Self::Algorithm,
            "version" => Self::Version,
            "day" => Self::Day,
            _ => return None,
        })
    }
}

/// Which side of the calls a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportSide {
    /// Calls the account paid for (its consumption).
    Payer,
    /// Calls to the account's algorithms (its earnings side).
    Owner,
    /// Every call on the cluster (cluster admin usage).
    All,
}

/// A usage report query over the daily rollups; days are inclusive.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    pub side: ReportSide,
    pub account_id: AccountId,
    pub from_day: i64,
    pub to_day: i64,
    pub group: ReportGroup,
    /// Only these callers (empty = all).
    pub callers: Vec<AccountId>,
}

/// One row of a usage report: the grouped-by fields (the others are `None`)
/// and the totals. Calls whose algorithm did not resolve have no owner/name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    /// The calling account (`Member`, `CallerVersion`).
    pub caller: Option<String>,
    /// `Algorithm`, `Version`, `CallerVersion`.
    pub owner: Option<String>,
    pub algorithm: Option<String>,
    /// `Version`, `CallerVersion`.
    pub version: Option<String>,
    /// `Day`: `YYYY-MM-DD`.
    pub day: Option<String>,
    pub calls: i64,
    pub errors: i64,
    pub refused: i64,
    pub compute_units: i64,
    pub duration_us: i64,
    pub error_duration_us: i64,
    pub credits: i64,
}

/// An account's ledger totals, in microcredits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Balance {
    /// Earned plus granted minus spent.
    pub balance: i64,
    /// Royalties credited for calls to the account's algorithms.
    pub earned: i64,
    /// Royalties debited for calls the account paid for.
    pub spent: i64,
    /// Credits cluster admins granted (less what they took back).
    pub granted: i64,
}

/// An account's call governance settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallSettings {
    /// The account's own work limit (`None` = the cluster default).
    pub work_limit: Option<i64>,
    /// An org that pays for its members' calls (made with member keys).
    pub consolidated_billing: bool,
}

/// A request for one concurrency slot of `account_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRequest {
    pub id: String,
    pub account_id: AccountId,
    pub limit: i64,
}

/// An in-app notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub id: i64,
    pub uuid: String,
    pub user_id: AccountId,
    /// `message` (from a cluster admin) or a system kind: `invitation`,
    /// `approval_requested`, `version_approved`, `version_rejected`,
    /// `work_limit_changed`.
    pub kind: String,
    pub text: String,
    pub url: Option<String>,
    /// The facts behind a system notification (algorithm, version, org...).
    pub context: serde_json::Value,
    pub sender_id: Option<AccountId>,
    pub created_at: Millis,
    pub read_at: Option<Millis>,
}

/// The text of a system notification from its outbox payload.
pub fn notification_text(kind: &str, p: &serde_json::Value) -> String {
    let s = |k: &str| p[k].as_str().unwrap_or("").to_string();
    match kind {
        "invitation" => format!(
            "You are invited to join {} as {}",
            if s("org_label").is_empty() {
                s("org")
            } else {
                s("org_label")
            },
            s("role")
        ),
        "approval_requested" => format!(
            "{} {} is waiting for your approval",
            s("algorithm"),
            s("version")
        ),
        "version_approved" => format!(
            "{} {} was approved and is live",
            s("algorithm"),
            s("version")
        ),
        "version_rejected" => {
            let reason = s("reason");
            if reason.is_empty() {
                format!("{} {} was rejected", s("algorithm"), s("version"))
            } else {
                format!("{} {} was rejected: {reason}", s("algorithm"), s("version"))
            }
        }
        "work_limit_changed" => match p["work_limit"].as_i64() {
            Some(n) => format!("Your concurrent call limit is now {n}"),
            None => "Your concurrent call limit is back to the cluster default".to_string(),
        },
        other => other.replace('_', " "),
    }
}

/// What deleting a user revoked, item by item.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DeletionReceipt {
    pub username: String,
    /// `uuid (label)` of every API key revoked.
    pub keys: Vec<String>,
    /// Organizations the user left.
    pub memberships: Vec<String>,
    /// `org/team` seats removed.
    pub team_seats: Vec<String>,
    /// Ids of pending invitations rescinded (to the account or its email).
    pub invitations: Vec<String>,
    /// Ids of impersonation sessions ended (acting as the user, or by them).
    pub sessions: Vec<String>,
}

/// A sign-up invite code (the v1 `/v1/admin/invites` routes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InviteCode {
    pub code: String,
    pub signup_credits: i64,
    pub comments: String,
    pub expires_at: Option<Millis>,
    pub created_at: Millis,
    /// The admin who created it.
    pub created_by: String,
}
