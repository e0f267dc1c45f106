//! Signing in with a password: a browser session.
//!
//! A person names their account (username or email) and gives its password;
//! the password is checked (argon2id) on a bounded pool of blocking threads,
//! so a flood of attempts cannot take every blocking thread or core. An
//! unknown account, one without a password and a wrong password get the same
//! refusal, after the same work (an unknown account's attempt is checked
//! against a stand-in hash). A signed-in session lasts at most
//! `session_lifetime_hours` and ends after `session_idle_minutes` unused
//! (`SessionActivity`); its token is the session cookie's value, stored only
//! as a digest. Signing out is `SessionService::stop_session`.

use super::authenticate::SessionActivity;
use super::{Directory, IndexSync, Settings};
use crate::audit::{AuditContext, EventKind};
use crate::error::{Code, Error, Result};
use crate::model::{AccountStatus, NewSession, Session, SessionKind, now_millis};
use crate::secrets::{SessionSecret, hash_password, verify_password};
use crate::store::Store;
use std::sync::{Arc, LazyLock};

/// `session_idle_minutes` unless configured: an hour.
pub const DEFAULT_SESSION_IDLE_MINUTES: u32 = 60;
/// `session_lifetime_hours` unless configured: half a day.
pub const DEFAULT_SESSION_LIFETIME_HOURS: u32 = 12;

/// The longest username or email accepted at sign-in, in bytes.
const MAX_LOGIN_BYTES: usize = 320;
/// The longest password checked, in bytes (argon2 takes any length; this
/// keeps an attempt's cost bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// What an unknown account's attempt is checked against, so that it costs
/// what a known account's does.
static STAND_IN: LazyLock<String> = LazyLock::new(|| {
    hash_password("stand-in for an account that does not exist").unwrap_or_default()
});

/// A sign-in attempt.
pub struct SignIn {
    /// A username, or an email address (it has an `@`).
    pub login: String,
    pub password: String,
    /// Where the attempt came from and the browser it names (the sessions list).
    pub source: Option<String>,
    pub user_agent: Option<String>,
}

/// A new browser session and its token (the cookie's value, given once).
pub struct SignedIn {
    pub secret: SessionSecret,
    pub session: Session,
    /// The account's name.
    pub account: String,
}

pub struct SignInService {
    store: Arc<dyn Store>,
    settings: Arc<Settings>,
    directory: Directory,
    index: Arc<IndexSync>,
    activity: Arc<SessionActivity>,
    /// Password checks running at once, at most (one per core).
    checks: Arc<tokio::sync::Semaphore>,
}

impl SignInService {
    pub(super) fn new(base: &super::Base, activity: Arc<SessionActivity>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Made now, off the async workers, rather than on the first attempt
        // for an unknown account (which would then take twice as long).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn_blocking(|| LazyLock::force(&STAND_IN));
        }
        Self {
            store: base.store.clone(),
            settings: base.settings.clone(),
            directory: base.directory.clone(),
            index: base.index.clone(),
            activity,
            checks: Arc::new(tokio::sync::Semaphore::new(cores)),
        }
    }

    /// Checks a password against a stored hash on the bounded pool.
    async fn check_password(&self, password: String, hash: Option<String>) -> Result<bool> {
        // The permit goes with the check: a request that goes away does not
        // free it while argon2 still runs.
        let permit = self
            .checks
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::internal("the password checks are shut down"))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| STAND_IN.clone());
            // Always checked, so an unknown account costs what a known one does.
            let matches = verify_password(&password, &hash);
            known && matches
        })
        .await
        .map_err(|e| Error::internal(format!("the password check failed: {e}")))
    }

    /// Signs a person in: a new browser session, or the one refusal for
    /// every wrong name or password (`sign_in_failed`, on the audit trail
    /// without the password).
    pub async fn sign_in(&self, audit: &AuditContext, req: SignIn) -> Result<SignedIn> {
        let login = req.login.trim();
        if login.is_empty() || req.password.is_empty() {
            return Err(Error::new(
                Code::MissingField,
                "give a username or email and a password",
            ));
        }
        if login.len() > MAX_LOGIN_BYTES || req.password.len() > MAX_PASSWORD_BYTES {
            return Err(Error::invalid(format!(
                "a username or email is at most {MAX_LOGIN_BYTES} bytes and a password at most \
                 {MAX_PASSWORD_BYTES}"
            )));
        }
        let user = if login.contains('@') {
            self.store.find_user_by_email(&login.to_lowercase()).await?
        } else {
            match self.directory.user_account(login).await {
                Ok(a) => Some(self.store.get_user(a.id).await?),
                Err(e) if e.code == Code::UserNotFound => None,
                Err(e) => return Err(e),
            }
        };
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        if !self.check_password(req.password, hash).await? {
            let target = match &user {
                Some(u) => format!("user:{}", u.id),
                None => format!("login:{}", login.chars().take(100).collect::<String>()),
            };
            self.store
                .record_audit(
                    audit,
                    EventKind::SignInFailed,
                    user.as_ref().map(|u| u.id),
                    &target,
                    serde_json::json!({"reason": "the name or password does not match"}),
                    "refused",
                )
                .await?;
            return Err(Error::new(
                Code::SignInFailed,
                "the username or email and password do not match an account",
            ));
        }
        let Some(user) = user else {
            return Err(Error::internal("a password matched no account"));
        };
        if user.status != AccountStatus::Active {
            self.store
                .record_audit(
                    audit,
                    EventKind::SignInFailed,
                    Some(user.id),
                    &format!("user:{}", user.id),
                    serde_json::json!({"reason": "the account is suspended"}),
                    "refused",
                )
                .await?;
            return Err(Error::new(
                Code::AccountSuspended,
                "this account is suspended; ask a cluster admin",
            ));
        }
        let secret = SessionSecret::generate();
        let lifetime = i64::from(self.settings.session_lifetime_hours) * 3_600_000;
        let session = self
            .index
            .applied(
                self.store.create_session(
                    audit,
                    &NewSession {
                        kind: SessionKind::Browser,
                        digest: secret.digest(),
                        user_id: user.id,
                        actor_id: user.id,
                        reason: String::new(),
                        expires_at: now_millis() + lifetime,
                        source: req.source,
                        user_agent: req
                            .user_agent
                            .map(|ua| ua.chars().take(300).collect::<String>()),
                    },
                ),
            )
            .await?;
        Ok(SignedIn {
            secret,
            session,
            account: user.username,
        })
    }

    /// Writes when browser sessions were last used (maintenance, and at
    /// shutdown).
    pub async fn flush_session_uses(&self) -> Result<()> {
        let idle = i64::from(self.settings.session_idle_minutes) * 60_000;
        let used = self.activity.take(idle);
        self.store.touch_sessions(&used).await?;
        Ok(())
    }
}
