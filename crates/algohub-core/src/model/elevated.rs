//! Elevated access: impersonation sessions and super powers.

use super::{AccountId, Millis};
use serde::Serialize;

pub type SessionId = i64;

/// What a session is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// A cluster admin acting as another user, with a bearer token.
    Impersonation,
    /// A person signed in with a password, in a browser (the session cookie).
    Browser,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Impersonation => "impersonation",
            Self::Browser => "browser",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "impersonation" => Some(Self::Impersonation),
            "browser" => Some(Self::Browser),
            _ => None,
        }
    }
}

/// A session credential: an impersonation (a cluster admin, `actor_id`,
/// acting as another user, `user_id`, for a stated reason) or a browser
/// sign-in (`actor_id` is `user_id`), live until `expires_at` or until
/// ended; a browser session also ends after a while without use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub id: SessionId,
    pub kind: SessionKind,
    /// The account the session acts as.
    pub user_id: AccountId,
    /// The person behind it.
    pub actor_id: AccountId,
    pub reason: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub ended_at: Option<Millis>,
    /// Why it ended: `stopped`, `expired`, `nested` (an impersonation attempted
    /// from inside it), `revoked` (an account behind it was deleted),
    /// `signed_out`.
    pub end_reason: Option<String>,
    /// When it was last used, as far as the store knows (browser sessions:
    /// nodes write their uses now and then, not on every request).
    pub last_seen_at: Option<Millis>,
    /// The address it was started from, and the browser (browser sessions).
    pub source: Option<String>,
    pub user_agent: Option<String>,
}

/// What a new session needs; the secret's digest only, never the secret.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub kind: SessionKind,
    pub digest: String,
    pub user_id: AccountId,
    pub actor_id: AccountId,
    pub reason: String,
    pub expires_at: Millis,
    pub source: Option<String>,
    pub user_agent: Option<String>,
}

/// A cluster admin's super powers, while on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuperPowers {
    pub reason: String,
    pub started_at: Millis,
    pub until: Millis,
}
