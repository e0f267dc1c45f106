//! Elevated access for cluster admins: impersonation sessions and super powers.
//!
//! Impersonation: an admin starts a session acting as a user, with a reason and
//! a duration (capped by `max_impersonation_minutes`). The session's token is
//! shown once; requests made with it act as the user, and their audit records
//! name the admin as the real actor. The user is notified. Stop (`DELETE
//! /v1/session`) ends it; so does its time running out. Trying to impersonate
//! again from inside a session ends that session, and the attempt is refused.
//!
//! Super powers: an admin turns on elevated reads (private algorithms and apps,
//! orgs they are not in) with a reason, for at most `max_super_powers_minutes`.
//! The policy engine opens those reads only (every write still needs ordinary
//! rights) and each read they open is audited (`super_powers.read`).

use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{
    AccountStatus, Millis, NewSession, Session, SuperPowers, format_millis, now_millis,
};
use crate::policy::{Action, PrincipalKind, Resource};
use crate::secrets::SessionSecret;
use crate::store::StoreError;
use serde::Serialize;

/// The longest reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 500;
/// The duration used when none is given (capped by the cluster's maximum).
const DEFAULT_MINUTES: u32 = 30;

/// What `GET /v1/session` answers: who the credential acts as, and any
/// elevated state the UI shows as a banner.
#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    /// The account requests act as.
    pub account: String,
    pub account_type: &'static str,
    /// `api_key`, `session` (an impersonation), `browser_session` (signed
    /// in with a password: the session cookie) or `call_token`.
    pub credential: &'static str,
    pub scopes: Vec<&'static str>,
    pub cluster_admin: bool,
    pub impersonation: Option<ImpersonationView>,
    pub super_powers: Option<SuperPowersView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImpersonationView {
    pub session_id: i64,
    /// The admin really acting.
    pub real_user: String,
    pub user: String,
    pub reason: String,
    pub started_at: String,
    pub expires_at: String,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SuperPowersView {
    pub reason: String,
    pub started_at: String,
    pub until: String,
}

impl From<&SuperPowers> for SuperPowersView {
    fn from(p: &SuperPowers) -> Self {
        Self {
            reason: p.reason.clone(),
            started_at: format_millis(p.started_at),
            until: format_millis(p.until),
        }
    }
}

fn check_reason(reason: &str) -> Result<String> {
    let r = reason.trim();
    if r.is_empty() {
        return Err(Error::new(Code::MissingField, "a reason is required"));
    }
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(Error::invalid(format!(
            "the reason is at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(r.to_string())
}

fn check_minutes(minutes: Option<i64>, max: u32) -> Result<Millis> {
    let m = minutes.unwrap_or(i64::from(DEFAULT_MINUTES.min(max)));
    if m < 1 || m > i64::from(max) {
        return Err(Error::invalid(format!(
            "duration_minutes must be a whole number from 1 to {max} (this cluster's maximum)"
        )));
    }
    Ok(m * 60_000)
}

super::service! {
    /// Elevated sessions: impersonation and super powers.
    pub struct SessionService { store, settings, authz, directory, index }
}

impl SessionService {
    /// The admin's own user id: elevated access needs a cluster admin's own
    /// credentials (not an org key, member key or impersonation session).
    fn elevated_admin(&self, ctx: &RequestCtx) -> Result<crate::model::AccountId> {
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        match ctx.principal.kind {
            PrincipalKind::User { user } => Ok(user),
            _ => Err(Error::forbidden(
                "this needs a cluster admin's own credentials, not an org or member key",
            )),
        }
    }

    /// Starts impersonating `username`: returns the session's token (shown
    /// once) and the session.
    pub async fn start_impersonation(
        &self,
        ctx: &RequestCtx,
        username: &str,
        reason: &str,
        minutes: Option<i64>,
    ) -> Result<(SessionSecret, Session)> {
        if let (Some(session), Some(admin)) = (ctx.principal.session, ctx.principal.impersonator) {
            // Impersonating from inside an impersonation ends the session.
            match self
                .index
                .applied(
                    self.store
                        .end_session(&ctx.audit, session, Some(admin), "nested"),
                )
                .await
            {
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
            return Err(Error::new(
                Code::ImpersonationEnded,
                "impersonating from inside an impersonation is not allowed: this impersonation \
                 session has ended and its token no longer works; use your own credentials",
            ));
        }
        let admin = self.elevated_admin(ctx)?;
        let reason = check_reason(reason)?;
        let span = check_minutes(minutes, self.settings.max_impersonation_minutes)?;
        let target = self
            .store
            .get_user(self.directory.user_account(username).await?.id)
            .await?;
        if target.id == admin {
            return Err(Error::new(
                Code::ImpersonationRefused,
                "you cannot impersonate yourself",
            ));
        }
        if target.status != AccountStatus::Active {
            return Err(Error::new(
                Code::ImpersonationRefused,
                format!(
                    "{} is suspended; reinstate the account first",
                    target.username
                ),
            ));
        }
        if target.cluster_admin && !self.settings.allow_impersonating_admins {
            return Err(Error::new(
                Code::ImpersonationRefused,
                format!(
                    "{} is a cluster admin; impersonating cluster admins is off on this cluster \
                     (allow_impersonating_admins)",
                    target.username
                ),
            ));
        }
        let secret = SessionSecret::generate();
        let session = self
            .index
            .applied(self.store.create_session(
                &ctx.audit,
                &NewSession {
                    kind: crate::model::SessionKind::Impersonation,
                    digest: secret.digest(),
                    user_id: target.id,
                    actor_id: admin,
                    reason,
                    expires_at: now_millis() + span,
                    source: ctx.audit.source.clone(),
                    user_agent: None,
                },
            ))
            .await?;
        Ok((secret, session))
    }

    /// Ends the session the caller used: Stop for an impersonation, sign
    /// out for a browser session.
    pub async fn stop_session(&self, ctx: &RequestCtx) -> Result<Session> {
        let Some(id) = ctx.principal.session else {
            return Err(Error::new(
                Code::NotASession,
                "this request did not use a session token; an API key is revoked instead \
                 (DELETE /v1/keys/{id})",
            ));
        };
        let (by, why) = match ctx.principal.impersonator {
            Some(admin) => (Some(admin), "stopped"),
            None => (ctx.user_id(), "signed_out"),
        };
        let s = match self
            .index
            .applied(self.store.end_session(&ctx.audit, id, by, why))
            .await
        {
            Err(StoreError::NotFound) => {
                return Err(Error::new(Code::NotFound, "this session has already ended"));
            }
            other => other?,
        };
        Ok(s)
    }

    /// Who the caller's credential acts as, and its elevated state.
    pub async fn session_view(&self, ctx: &RequestCtx) -> Result<SessionView> {
        let account = self.store.get_account(ctx.account_id()).await?;
        let impersonation = match ctx
            .principal
            .session
            .filter(|_| ctx.principal.impersonator.is_some())
        {
            Some(id) => Some(
                self.impersonation_view(&self.store.get_session(id).await?)
                    .await?,
            ),
            None => None,
        };
        let (cluster_admin, super_powers) = match (ctx.principal.kind, ctx.principal.impersonator) {
            (PrincipalKind::User { user }, None) => {
                let u = self.store.get_user(user).await?;
                let p = if u.cluster_admin {
                    self.store.get_super_powers(user).await?
                } else {
                    None
                };
                (u.cluster_admin, p.as_ref().map(SuperPowersView::from))
            }
            _ => (false, None),
        };
        Ok(SessionView {
            account: account.name,
            account_type: match account.kind {
                crate::model::AccountKind::User => "user",
                crate::model::AccountKind::Org => "organization",
            },
            credential: if ctx.principal.call.is_some() {
                "call_token"
            } else if ctx.principal.session.is_some() {
                if ctx.principal.impersonator.is_some() {
                    "session"
                } else {
                    "browser_session"
                }
            } else {
                "api_key"
            },
            scopes: ctx.principal.scopes.names(),
            cluster_admin,
            impersonation,
            super_powers,
        })
    }

    pub async fn impersonation_view(&self, s: &Session) -> Result<ImpersonationView> {
        let names = self
            .directory
            .account_names([s.actor_id, s.user_id])
            .await?;
        let name = |id| names.get(&id).cloned().unwrap_or_default();
        Ok(ImpersonationView {
            session_id: s.id,
            real_user: name(s.actor_id),
            user: name(s.user_id),
            reason: s.reason.clone(),
            started_at: format_millis(s.created_at),
            expires_at: format_millis(s.expires_at),
            ended_at: s.ended_at.map(format_millis),
            end_reason: s.end_reason.clone(),
        })
    }

    /// Turns the caller's super powers on.
    pub async fn start_super_powers(
        &self,
        ctx: &RequestCtx,
        reason: &str,
        minutes: Option<i64>,
    ) -> Result<SuperPowers> {
        let admin = self.elevated_admin(ctx)?;
        let reason = check_reason(reason)?;
        let span = check_minutes(minutes, self.settings.max_super_powers_minutes)?;
        let now = now_millis();
        let on = SuperPowers {
            reason,
            started_at: now,
            until: now + span,
        };
        self.index
            .applied(self.store.set_super_powers(&ctx.audit, admin, Some(&on)))
            .await?;
        Ok(on)
    }

    /// Turns the caller's super powers off (nothing to do when they are off).
    pub async fn stop_super_powers(&self, ctx: &RequestCtx) -> Result<()> {
        let admin = self.elevated_admin(ctx)?;
        match self
            .index
            .applied(self.store.set_super_powers(&ctx.audit, admin, None))
            .await
        {
            Err(StoreError::NotFound) => Ok(()),
            other => {
                other?;
                Ok(())
            }
        }
    }

    /// The caller's super powers, if on.
    pub async fn super_powers(&self, ctx: &RequestCtx) -> Result<Option<SuperPowers>> {
        let admin = self.elevated_admin(ctx)?;
        Ok(self.store.get_super_powers(admin).await?)
    }
}
