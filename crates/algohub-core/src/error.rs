//! One error type for the domain, with a stable machine code per variant.
//!
//! Design choice (as meilisearch's `error.rs`): every error maps through a single
//! table to `(code, http status)`, so adding an error means adding one row. The
//! numeric codes are inside the ranges the Algorithmia generated client accepts.

use std::fmt;

/// What kind of failure this is; decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    /// It existed and is gone for good (410).
    Gone,
    Conflict,
    PayloadTooLarge,
    TooManyRequests,
    Unavailable,
    Internal,
}

/// A domain error: a code from the table, a human message, and its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// For limit refusals: which limit, on what, and when to retry.
    pub limit: Option<Box<LimitInfo>>,
}

/// Why a limit refused a request, in machine-readable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitInfo {
    /// `concurrency` (the account's work limit).
    pub limit_kind: &'static str,
    /// What the limit applies to, e.g. `account:alice`.
    pub scope: String,
    /// Seconds after which a retry may succeed.
    pub retry_after: u64,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

macro_rules! codes {
    ($( $name:ident = ($num:expr, $kind:ident, $slug:expr) ),* $(,)?) => {
        /// Stable error codes. `number()` is what the v1 API sends as `code`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code { $( $name ),* }
        impl Code {
            /// Every code, in table order (generated with the table, so a new
            /// row is in it: the uniqueness test covers every code).
            pub const ALL: &'static [Code] = &[ $( Code::$name ),* ];
            pub fn number(self) -> u32 { match self { $( Code::$name => $num ),* } }
            pub fn kind(self) -> ErrorKind { match self { $( Code::$name => ErrorKind::$kind ),* } }
            /// A short machine-readable name (`invalid_name`, ...).
            pub fn slug(self) -> &'static str { match self { $( Code::$name => $slug ),* } }
        }
    };
}

codes! {
    InvalidInput = (1000, BadRequest, "invalid_input"),
    InvalidName = (1001, BadRequest, "invalid_name"),
    InvalidEmail = (1002, BadRequest, "invalid_email"),
    InvalidRole = (1003, BadRequest, "invalid_role"),
    MalformedJson = (1004, BadRequest, "malformed_json"),
    MissingField = (1005, BadRequest, "missing_field"),
    PayloadTooLarge = (1006, PayloadTooLarge, "payload_too_large"),
    InvalidToken = (1007, BadRequest, "invalid_token"),
    InvalidPath = (1008, BadRequest, "invalid_path"),
    NotASession = (1009, BadRequest, "not_a_session"),
    Unauthenticated = (2001, Unauthorized, "unauthenticated"),
    InvalidKey = (2002, Unauthorized, "invalid_key"),
    AccountSuspended = (2011, Unauthorized, "account_suspended"),
    ImpersonationEnded = (2012, Unauthorized, "impersonation_ended"),
    SignInFailed = (2013, Unauthorized, "sign_in_failed"),
    Forbidden = (3000, Forbidden, "forbidden"),
    RoleAboveOwn = (3001, Forbidden, "role_above_own"),
    KeyScope = (3003, Forbidden, "key_scope"),
    LastAdmin = (3004, Conflict, "last_admin"),
    OrgLimit = (3005, Conflict, "org_limit"),
    NotFound = (4001, NotFound, "not_found"),
    UserNotFound = (4002, NotFound, "user_not_found"),
    OrgNotFound = (4003, NotFound, "org_not_found"),
    AppNotFound = (4004, NotFound, "app_not_found"),
    TeamNotFound = (4005, NotFound, "team_not_found"),
    KeyNotFound = (4006, NotFound, "key_not_found"),
    InvitationNotFound = (4007, NotFound, "invitation_not_found"),
    OrgTypeNotFound = (4008, NotFound, "org_type_not_found"),
    AlgorithmNotFound = (4080, NotFound, "algorithm_not_found"),
    VersionNotFound = (4081, NotFound, "version_not_found"),
    BuildNotFound = (4082, NotFound, "build_not_found"),
    NothingToPublish = (4083, Conflict, "nothing_to_publish"),
    InvalidArtifact = (4084, BadRequest, "invalid_artifact"),
    OwnerDeleted = (4086, Gone, "owner_deleted"),
    NotPending = (4070, Conflict, "not_pending"),
    SelfApproval = (3007, Forbidden, "self_approval"),
    RouteNotFound = (4009, NotFound, "route_not_found"),
    NameTaken = (4020, Conflict, "name_taken"),
    EmailTaken = (4021, Conflict, "email_taken"),
    AlreadyMember = (4040, Conflict, "already_member"),
    NotMember = (4041, BadRequest, "not_member"),
    InvitationClosed = (4042, Conflict, "invitation_closed"),
    InvitationExpired = (4043, Conflict, "invitation_expired"),
    Conflict = (4044, Conflict, "conflict"),
    MethodNotAllowed = (4045, BadRequest, "method_not_allowed"),
    DataNotFound = (4050, NotFound, "data_not_found"),
    DataConflict = (4051, Conflict, "data_conflict"),
    LimitExceeded = (3100, TooManyRequests, "limit_exceeded"),
    QuotaExceeded = (3101, PayloadTooLarge, "quota_exceeded"),
    SudoDisabled = (3008, Forbidden, "sudo_disabled"),
    NotSudoUser = (3009, Forbidden, "not_sudo_user"),
    ImpersonationRefused = (3010, Forbidden, "impersonation_refused"),
    CsrfRefused = (3011, Forbidden, "csrf_refused"),
    MeteringFailed = (5003, Unavailable, "metering_failed"),
    Unavailable = (5001, Unavailable, "unavailable"),
    Internal = (5002, Internal, "internal"),
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            limit: None,
        }
    }
    /// A refusal by a limit (HTTP 429 with `limit_kind`, `scope`, `retry_after`).
    pub fn limited(message: impl Into<String>, info: LimitInfo) -> Self {
        Self {
            code: Code::LimitExceeded,
            message: message.into(),
            limit: Some(Box::new(info)),
        }
    }
    pub fn kind(&self) -> ErrorKind {
        self.code.kind()
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidInput, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }
    pub fn not_found(code: Code, what: impl fmt::Display) -> Self {
        Self::new(code, format!("{what} not found"))
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NotFound => Error::new(Code::NotFound, "not found"),
            StoreError::Conflict { constraint } => Error::new(
                Code::Conflict,
                format!("conflicts with existing data ({constraint})"),
            ),
            StoreError::Other(msg) => {
                metrics::counter!("algohub_store_errors_total").increment(1);
                tracing::error!(error = %msg, "store error");
                Error::new(Code::Unavailable, "the store failed; try again")
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn codes_are_unique() {
        let all = Code::ALL;
        assert!(all.len() > 40, "the table has every code");
        let mut nums: Vec<u32> = all.iter().map(|c| c.number()).collect();
        nums.sort();
        nums.dedup();
        assert_eq!(nums.len(), all.len());
        let mut slugs: Vec<&str> = all.iter().map(|c| c.slug()).collect();
        slugs.sort();
        slugs.dedup();
        assert_eq!(slugs.len(), all.len());
    }
}
