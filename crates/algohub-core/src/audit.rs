//! The audit trail: who did what, how they authenticated, from where, with
//! what outcome, as a tamper-evident hash chain.
//!
//! Design: every domain event the store writes inside a business transaction
//! is an audit record (so the record commits exactly when the change does).
//! The request's facts (request id, authentication method, a SHA-256 of the
//! token, source address, who acts as whom) are an `AuditContext` that every
//! audited store write takes as its first argument: nothing carries identity
//! implicitly, so a task spawned for a request audits as that request. Each record stores the hash
//! of the record before it and its own hash over its fields and that link:
//! editing a record breaks its hash, deleting or reordering records breaks the
//! links. (Truncating the newest records is not visible in the chain alone;
//! compare the head hash with a copy kept elsewhere for that.)

use crate::model::{AccountId, Millis};
use serde::Serialize;
use sha2::{Digest, Sha256};

macro_rules! event_kinds {
    ($( $(#[$doc:meta])* $name:ident = $text:literal ),* $(,)?) => {
        /// What an audit record says happened (its `action`). The names are
        /// stable: records keep them, and queries filter by them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventKind { $( $(#[$doc])* $name ),* }

        impl EventKind {
            /// Every kind, in table order.
            pub const ALL: &'static [EventKind] = &[ $( EventKind::$name ),* ];

            /// The stored name, e.g. `org.created`.
            pub fn as_str(self) -> &'static str {
                match self { $( EventKind::$name => $text ),* }
            }
        }
    };
}

event_kinds! {
    UserCreated = "user.created",
    UserUpdated = "user.updated",
    UserDeleted = "user.deleted",
    UserRolesSet = "user.roles_set",
    UsersExport = "users.export",
    AccountStatusSet = "account.status_set",
    AccountWorkLimitSet = "account.work_limit_set",
    AccountStorageQuotaSet = "account.storage_quota_set",
    CreditsGranted = "credits.granted",
    OrgCreated = "org.created",
    OrgUpdated = "org.updated",
    OrgTypeCreated = "org_type.created",
    OrgTypeDeleted = "org_type.deleted",
    OrgDeleted = "org.deleted",
    MemberAdded = "member.added",
    MemberRemoved = "member.removed",
    MemberRoleChanged = "member.role_changed",
    InvitationCreated = "invitation.created",
    InvitationAccepted = "invitation.accepted",
    InvitationDeclined = "invitation.declined",
    InvitationRescinded = "invitation.rescinded",
    InvitationExpired = "invitation.expired",
    InviteCodeCreated = "invite_code.created",
    InviteCodeDeleted = "invite_code.deleted",
    NotificationSent = "notification.sent",
    DataAclSet = "data.acl_set",
    TeamCreated = "team.created",
    TeamDeleted = "team.deleted",
    TeamMemberAdded = "team.member_added",
    TeamMemberRemoved = "team.member_removed",
    TeamAppGranted = "team.app_granted",
    TeamAppRevoked = "team.app_revoked",
    GrantExpired = "grant.expired",
    GrantExpiryCleared = "grant.expiry_cleared",
    AppCreated = "app.created",
    AppDeleted = "app.deleted",
    AppDuplicated = "app.duplicated",
    AppTransferred = "app.transferred",
    KeyCreated = "key.created",
    KeyRevoked = "key.revoked",
    AlgorithmCreated = "algorithm.created",
    AlgorithmUpdated = "algorithm.updated",
    AlgorithmDeleted = "algorithm.deleted",
    AlgorithmTransferred = "algorithm.transferred",
    AlgorithmArtifactUploaded = "algorithm.artifact_uploaded",
    VersionSubmitted = "version.submitted",
    VersionPublished = "version.published",
    VersionApproved = "version.approved",
    VersionRejected = "version.rejected",
    CallSudo = "call.sudo",
    ImpersonationStarted = "impersonation.started",
    ImpersonationEnded = "impersonation.ended",
    ImpersonationRequest = "impersonation.request",
    SignedIn = "auth.signed_in",
    SignInFailed = "auth.sign_in_failed",
    /// A browser session ended (signed out, expired, revoked).
    SessionEnded = "session.ended",
    SuperPowersStarted = "super_powers.started",
    SuperPowersEnded = "super_powers.ended",
    SuperPowersRead = "super_powers.read",
    AuthzDenied = "authz.denied",
    /// How many refusal records the per-second budget dropped since the
    /// last such summary (written by maintenance).
    AuthzDeniedDropped = "authz.denied_dropped",
    ClusterSecretCreated = "cluster_secret.created",
}

impl EventKind {
    /// The record of an invitation closing with `status` (`None` for
    /// `pending`, which closes nothing).
    pub fn invitation_closed(status: crate::model::InvitationStatus) -> Option<Self> {
        use crate::model::InvitationStatus as S;
        match status {
            S::Accepted => Some(EventKind::InvitationAccepted),
            S::Declined => Some(EventKind::InvitationDeclined),
            S::Rescinded => Some(EventKind::InvitationRescinded),
            S::Expired => Some(EventKind::InvitationExpired),
            S::Pending => None,
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a request authenticated, as audit records name it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// No credential (a refused request, or a route open to anyone).
    #[default]
    None,
    /// An API key sent bare (`Authorization: <key>`).
    Key,
    /// `Authorization: Simple <key>`.
    Simple,
    /// `Authorization: Bearer <key>` (a personal access token is a key).
    Bearer,
    /// An impersonation session (`ahs_...`).
    Session,
    /// A browser session: the session cookie.
    Cookie,
    /// An algorithm's call token (`ahc1....`) during a call.
    CallToken,
    /// An `algohub admin ...` command on the server's machine.
    Cli,
    /// The node itself (maintenance: expiries), no person.
    System,
}

impl CredentialKind {
    /// The name stored in audit records (`auth_method`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Key => "key",
            Self::Simple => "simple",
            Self::Bearer => "bearer",
            Self::Session => "session",
            Self::Cookie => "cookie",
            Self::CallToken => "call_token",
            Self::Cli => "cli",
            Self::System => "system",
        }
    }
}

/// Facts about the request an audit record is written for. Built once per
/// request (see `RequestCtx`) and handed to every store write of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditContext {
    pub request_id: String,
    pub credential: CredentialKind,
    /// Hex SHA-256 of the presented token (never the token itself).
    pub token_sha256: Option<String>,
    /// The client's address.
    pub source: Option<String>,
    /// Under impersonation: (the admin really acting, the account acted as).
    pub acting_as: Option<(AccountId, AccountId)>,
    /// The account the request acts as (its principal's), for records whose
    /// writer names no actor: so every change a request makes names one.
    pub actor: Option<AccountId>,
}

impl AuditContext {
    /// An `algohub admin ...` command (no request id, no token).
    pub fn cli() -> Self {
        Self {
            credential: CredentialKind::Cli,
            ..Default::default()
        }
    }

    /// The node's own housekeeping (no person, no request).
    pub fn system() -> Self {
        Self {
            credential: CredentialKind::System,
            ..Default::default()
        }
    }

    /// Who really acted and which account the act was done as, given the
    /// account the service named (else the request's own account).
    pub fn actors(&self, named: Option<AccountId>) -> (Option<AccountId>, Option<AccountId>) {
        match self.acting_as {
            Some((real, acting)) => (Some(real), Some(acting)),
            None => {
                let actor = named.or(self.actor);
                (actor, actor)
            }
        }
    }

    /// The request facts as an audit record stores them.
    pub fn facts(&self) -> RecordFacts<'_> {
        RecordFacts {
            request_id: &self.request_id,
            auth_method: self.credential.as_str(),
            token_sha256: self.token_sha256.as_deref(),
            source: self.source.as_deref(),
        }
    }
}

/// The request facts of one audit record, as stored (and hashed).
#[derive(Debug, Clone, Copy)]
pub struct RecordFacts<'a> {
    pub request_id: &'a str,
    pub auth_method: &'a str,
    pub token_sha256: Option<&'a str>,
    pub source: Option<&'a str>,
}

/// An audit record as stored (an event with its request facts and links).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: Millis,
    /// What happened, e.g. `user.roles_set`, `authz.denied`.
    pub action: String,
    /// Who acted (the real actor), if known.
    pub actor_id: Option<AccountId>,
    /// The account the act was done as (differs under impersonation).
    pub effective_id: Option<AccountId>,
    /// What it was done to.
    pub target: String,
    pub detail: serde_json::Value,
    pub outcome: String,
    pub request_id: String,
    pub auth_method: String,
    pub token_sha256: Option<String>,
    pub source: Option<String>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// A query over the audit trail: every filter optional; records after
/// `after_id`, oldest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor_id: Option<AccountId>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub after_id: i64,
    pub limit: i64,
}

/// The hash of a record given the previous record's hash: SHA-256 over every
/// field, each length-prefixed (so no two field lists hash alike).
#[allow(clippy::too_many_arguments)]
pub fn chain_hash(
    prev: &str,
    at: Millis,
    action: &str,
    actor_id: Option<AccountId>,
    effective_id: Option<AccountId>,
    target: &str,
    detail: &str,
    outcome: &str,
    facts: RecordFacts<'_>,
) -> String {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    let id = |v: Option<AccountId>| v.map(|x| x.to_string()).unwrap_or_default();
    field(prev.as_bytes());
    field(at.to_string().as_bytes());
    field(action.as_bytes());
    field(id(actor_id).as_bytes());
    field(id(effective_id).as_bytes());
    field(target.as_bytes());
    field(detail.as_bytes());
    field(outcome.as_bytes());
    field(facts.request_id.as_bytes());
    field(facts.auth_method.as_bytes());
    field(facts.token_sha256.unwrap_or("").as_bytes());
    field(facts.source.unwrap_or("").as_bytes());
    hex::encode(h.finalize())
}

/// The hash a stored record should have, recomputed from its fields.
pub fn record_hash(r: &AuditRecord, prev: &str) -> String {
    let facts = RecordFacts {
        request_id: &r.request_id,
        auth_method: &r.auth_method,
        token_sha256: r.token_sha256.as_deref(),
        source: r.source.as_deref(),
    };
    chain_hash(
        prev,
        r.at,
        &r.action,
        r.actor_id,
        r.effective_id,
        &r.target,
        &r.detail.to_string(),
        &r.outcome,
        facts,
    )
}

/// Where verification stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditBreak {
    /// The first record that does not match.
    pub id: i64,
    pub reason: String,
}

/// Walks records in id order, carrying the chain across calls (pages).
#[derive(Debug, Default)]
pub struct ChainVerifier {
    /// The hash the next record must link to (`None` before the first
    /// hashed record; records from before the audit chain have no hash).
    expected_prev: Option<String>,
    pub checked: u64,
}

impl ChainVerifier {
    /// Checks the next record; the first mismatch is returned.
    pub fn check(&mut self, r: &AuditRecord) -> Result<(), AuditBreak> {
        let bad = |reason: &str| AuditBreak {
            id: r.id,
            reason: reason.to_string(),
        };
        let Some(hash) = &r.hash else {
            return if self.expected_prev.is_none() {
                Ok(()) // a record from before the chain began
            } else {
                Err(bad("record has no hash inside the chain"))
            };
        };
        let prev = r.prev_hash.as_deref().unwrap_or("");
        let expected = self.expected_prev.as_deref().unwrap_or("");
        if prev != expected {
            return Err(bad(
                "link to the previous record does not match (a record was deleted, inserted or moved)",
            ));
        }
        if record_hash(r, prev) != *hash {
            return Err(bad(
                "contents do not match the record's hash (the record was edited)",
            ));
        }
        self.expected_prev = Some(hash.clone());
        self.checked += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64, prev: &str, action: &str) -> AuditRecord {
        let mut r = AuditRecord {
            id,
            at: 1000 + id,
            action: action.into(),
            actor_id: Some(1),
            effective_id: Some(1),
            target: "7".into(),
            detail: serde_json::json!({"k": id}),
            outcome: "ok".into(),
            request_id: format!("req-{id}"),
            auth_method: "key".into(),
            token_sha256: Some("ab".into()),
            source: Some("127.0.0.1".into()),
            prev_hash: Some(prev.into()),
            hash: None,
        };
        r.hash = Some(record_hash(&r, prev));
        r
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 1..=n {
            let prev = out.last().and_then(|r| r.hash.clone()).unwrap_or_default();
            out.push(rec(i, &prev, "x"));
        }
        out
    }

    fn verify(rs: &[AuditRecord]) -> Result<u64, AuditBreak> {
        let mut v = ChainVerifier::default();
        for r in rs {
            v.check(r)?;
        }
        Ok(v.checked)
    }

    #[test]
    fn event_kinds_have_unique_dotted_names() {
        let mut names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        for n in &names {
            let (area, act) = n.split_once('.').unwrap_or_default();
            assert!(!area.is_empty() && !act.is_empty(), "{n}");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), EventKind::ALL.len());
    }

    #[test]
    fn intact_edited_deleted_reordered() {
        let good = chain(5);
        assert_eq!(verify(&good), Ok(5));
        let mut edited = good.clone();
        edited[2].detail = serde_json::json!({"k": 99});
        assert_eq!(verify(&edited).unwrap_err().id, 3);
        let mut deleted = good.clone();
        deleted.remove(1);
        assert_eq!(verify(&deleted).unwrap_err().id, 3);
        let mut swapped = good.clone();
        swapped.swap(1, 2);
        assert_eq!(verify(&swapped).unwrap_err().id, 3);
        let mut unhashed = good.clone();
        unhashed[3].hash = None;
        assert_eq!(verify(&unhashed).unwrap_err().id, 4);
        // Records from before the chain are skipped.
        let mut legacy = vec![AuditRecord {
            hash: None,
            prev_hash: None,
            ..rec(0, "", "old")
        }];
        legacy.extend(good);
        assert_eq!(verify(&legacy), Ok(5));
    }
}
