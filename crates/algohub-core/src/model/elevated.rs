//! Elevated access: impersonation sessions and super powers.

use super::{AccountId, Millis};
use serde::Serialize;

pub type SessionId = i64;

/// A session credential. Today every session is an impersonation: a cluster
/// admin (`actor_id`) acting as another user (`user_id`) for a stated reason
/// until `expires_at`, or until stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub id: SessionId,
    pub kind: String,
    /// The account the session acts as.
    pub user_id: AccountId,
    /// The person behind it.
    pub actor_id: AccountId,
    pub reason: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub ended_at: Option<Millis>,
    /// Why it ended: `stopped`, `expired`, `nested` (an impersonation attempted
    /// from inside it), `revoked` (an account behind it was deleted).
    pub end_reason: Option<String>,
}

/// What a new session needs; the secret's digest only, never the secret.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub digest: String,
    pub user_id: AccountId,
    pub actor_id: AccountId,
    pub reason: String,
    pub expires_at: Millis,
}

/// A cluster admin's super powers, while on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuperPowers {
    pub reason: String,
    pub started_at: Millis,
    pub until: Millis,
}
