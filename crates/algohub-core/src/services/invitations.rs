//! Invitations by account name and by email, with a single-use hashed token.
//!
//! Inviting by email answers the same way whether or not an account uses that
//! address: the invitation is addressed to the email, a token goes to it through
//! the outbox, and nothing in the response or the pending list names an account.

use super::conflict;
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{
    Invitation, InvitationStatus, Membership, NewInvitation, NewOutboxMessage, now_millis,
};
use crate::names::Email;
use crate::policy::{Action, Resource};
use crate::roles::OrgRole;
use crate::secrets::{InviteToken, digest_hex};
use crate::store::StoreError;
use serde_json::json;

#[derive(Debug, Clone)]
pub enum InviteTarget {
    Username(String),
    Email(String),
}

super::service! {
    /// Invitations to organizations, and the emails that carry them.
    pub struct InvitationService { store, policy, settings, authz, directory, index }
}

impl InvitationService {
    pub async fn invite(
        &self,
        ctx: &RequestCtx,
        org: &str,
        target: InviteTarget,
        role: OrgRole,
    ) -> Result<Invitation> {
        let org_acc = self.directory.org_account(org).await?;
        self.authz
            .authorize(ctx, Action::OrgMembersManage, Resource::Org(org_acc.id))?;
        let inviter = super::require_user(ctx)?;
        if !self
            .authz
            .can(ctx, Action::AdminUsersManage, Resource::Cluster)
        {
            let own = self.policy.org_role(inviter, org_acc.id);
            if own.is_none_or(|r| r < role) {
                return Err(Error::new(
                    Code::RoleAboveOwn,
                    format!(
                        "you cannot grant {}: it is above your own role",
                        role.as_str()
                    ),
                ));
            }
        }
        let org_rec = self.store.get_org(org_acc.id).await?;
        let now = now_millis();
        let expires_at = now + self.settings.invitation_ttl_millis;
        let id = uuid::Uuid::new_v4().to_string();
        let (new, outbox) = match target {
            InviteTarget::Username(name) => {
                let user = self.directory.user_account(&name).await?;
                if self
                    .store
                    .get_membership(org_acc.id, user.id)
                    .await?
                    .is_some()
                {
                    return Err(Error::new(
                        Code::AlreadyMember,
                        format!("{name} is already a member of {org}"),
                    ));
                }
                if self
                    .live_pending(&ctx.audit, org_acc.id, Some(user.id), None, now)
                    .await?
                {
                    return Err(Error::new(
                        Code::Conflict,
                        format!("{name} already has a pending invitation to {org}"),
                    ));
                }
                let u = self.store.get_user(user.id).await?;
                let payload = json!({
                    "invitation_id": id, "org": org_rec.name, "org_label": org_rec.label,
                    "role": role.as_str(), "expires_at": expires_at,
                });
                let outbox = vec![
                    NewOutboxMessage {
                        kind: "notification.invitation".into(),
                        recipient_user_id: Some(user.id),
                        recipient_email: None,
                        payload: payload.clone(),
                    },
                    NewOutboxMessage {
                        kind: "email.invitation".into(),
                        recipient_user_id: Some(user.id),
                        recipient_email: Some(u.email),
                        payload,
                    },
                ];
                let new = NewInvitation {
                    id: id.clone(),
                    org_id: org_acc.id,
                    invitee_user_id: Some(user.id),
                    invitee_email: None,
                    role,
                    token_digest: None,
                    invited_by: inviter,
                    created_at: now,
                    expires_at,
                };
                (new, outbox)
            }
            InviteTarget::Email(raw) => {
                let email = Email::parse(&raw)?;
                if self
                    .live_pending(&ctx.audit, org_acc.id, None, Some(email.as_str()), now)
                    .await?
                {
                    return Err(Error::new(
                        Code::Conflict,
                        format!(
                            "{} already has a pending invitation to {org}",
                            email.as_str()
                        ),
                    ));
                }
                let token = InviteToken::generate();
                let payload = json!({
                    "invitation_id": id, "org": org_rec.name, "org_label": org_rec.label,
                    "role": role.as_str(), "expires_at": expires_at, "token": token.expose(),
                });
                let outbox = vec![NewOutboxMessage {
                    kind: "email.invitation_token".into(),
                    recipient_user_id: None,
                    recipient_email: Some(email.as_str().to_string()),
                    payload,
                }];
                let new = NewInvitation {
                    id: id.clone(),
                    org_id: org_acc.id,
                    invitee_user_id: None,
                    invitee_email: Some(email.as_str().to_string()),
                    role,
                    token_digest: Some(token.digest()),
                    invited_by: inviter,
                    created_at: now,
                    expires_at,
                };
                (new, outbox)
            }
        };
        self.index
            .applied(self.store.create_invitation(&ctx.audit, &new, &outbox))
            .await
            .map_err(|e| conflict(e, "invitation"))
    }

    /// Whether a still-valid invitation is pending; one past its expiry that the
    /// sweeper has not reached yet is closed as expired here, so it blocks nothing.
    async fn live_pending(
        &self,
        audit: &crate::audit::AuditContext,
        org: crate::model::AccountId,
        user: Option<crate::model::AccountId>,
        email: Option<&str>,
        now: crate::model::Millis,
    ) -> Result<bool> {
        match self.store.find_pending_invitation(org, user, email).await? {
            Some(inv) if inv.expires_at <= now => {
                self.index
                    .applied(self.store.close_invitation(
                        audit,
                        &inv.id,
                        InvitationStatus::Expired,
                        now,
                    ))
                    .await
                    .map_err(|e| conflict(e, "invitation"))?;
                Ok(false)
            }
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    pub async fn list_pending_invitations(
        &self,
        ctx: &RequestCtx,
        org: &str,
    ) -> Result<Vec<Invitation>> {
        let org_acc = self.directory.org_account(org).await?;
        self.authz
            .authorize(ctx, Action::OrgMembersManage, Resource::Org(org_acc.id))?;
        let now = now_millis();
        Ok(self
            .store
            .list_pending_invitations(org_acc.id)
            .await?
            .into_iter()
            .filter(|i| i.expires_at > now)
            .collect())
    }

    /// Pending invitations addressed to the caller (by account or by their email).
    /// Pending invitations addressed to the caller's account. Invitations sent to
    /// an email address are accepted only with the token from that email: an
    /// account's email is not proof of owning the address.
    pub async fn my_invitations(&self, ctx: &RequestCtx) -> Result<Vec<Invitation>> {
        let me = super::require_user(ctx)?;
        self.authz
            .authorize(ctx, Action::UserRead, Resource::User(me))?;
        let user = self.store.get_user(me).await?;
        let now = now_millis();
        Ok(self
            .store
            .list_invitations_for_user(me, &user.email)
            .await?
            .into_iter()
            .filter(|i| i.invitee_user_id == Some(me) && i.invitee_email.is_none())
            .filter(|i| i.status == InvitationStatus::Pending && i.expires_at > now)
            .collect())
    }

    async fn invitation_for_invitee(
        &self,
        ctx: &RequestCtx,
        id: &str,
    ) -> Result<(Invitation, crate::model::AccountId)> {
        let me = super::require_user(ctx)?;
        self.authz
            .authorize(ctx, Action::UserUpdate, Resource::User(me))?;
        let inv = self.load_invitation(id).await?;
        // By-name invitations only: email invitations need their token.
        let addressed = inv.invitee_user_id == Some(me) && inv.invitee_email.is_none();
        if !addressed {
            // Not the invitee: do not reveal that the invitation exists.
            return Err(Error::new(Code::InvitationNotFound, "invitation not found"));
        }
        Ok((inv, me))
    }

    async fn load_invitation(&self, id: &str) -> Result<Invitation> {
        match self.store.get_invitation(id).await {
            Ok(i) => Ok(i),
            Err(StoreError::NotFound) => {
                Err(Error::new(Code::InvitationNotFound, "invitation not found"))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn accept(
        &self,
        ctx: &RequestCtx,
        inv: Invitation,
        me: crate::model::AccountId,
    ) -> Result<Membership> {
        if self.store.get_membership(inv.org_id, me).await?.is_none()
            && let Some(max) = self.settings.max_orgs_per_user
            && self.store.list_user_memberships(me).await?.len() >= max as usize
        {
            return Err(Error::new(
                Code::OrgLimit,
                format!(
                    "a user may belong to at most {max} organization(s) on this cluster; leave one first"
                ),
            ));
        }
        let org = self.store.get_org(inv.org_id).await?;
        let m = self
            .index
            .applied(self.store.accept_invitation(
                &ctx.audit,
                &inv.id,
                me,
                org.tos_version,
                now_millis(),
            ))
            .await
            .map_err(|e| conflict(e, "invitation"))?;
        Ok(m)
    }

    /// Accepts an invitation addressed to the caller; records the org's Terms of Use version.
    pub async fn accept_invitation(&self, ctx: &RequestCtx, id: &str) -> Result<Membership> {
        let (inv, me) = self.invitation_for_invitee(ctx, id).await?;
        self.accept(ctx, inv, me).await
    }

    /// Accepts with the single-use token from an invitation email.
    pub async fn accept_invitation_token(
        &self,
        ctx: &RequestCtx,
        token: &str,
    ) -> Result<Membership> {
        let me = super::require_user(ctx)?;
        self.authz
            .authorize(ctx, Action::UserUpdate, Resource::User(me))?;
        let inv = match self
            .store
            .find_invitation_by_token(&digest_hex(token.trim()))
            .await
        {
            Ok(i) => i,
            Err(StoreError::NotFound) => {
                return Err(Error::new(
                    Code::InvalidToken,
                    "this invitation token is not valid",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        self.accept(ctx, inv, me).await
    }

    pub async fn decline_invitation(&self, ctx: &RequestCtx, id: &str) -> Result<Invitation> {
        let (inv, _) = self.invitation_for_invitee(ctx, id).await?;
        self.index
            .applied(self.store.close_invitation(
                &ctx.audit,
                &inv.id,
                InvitationStatus::Declined,
                now_millis(),
            ))
            .await
            .map_err(|e| conflict(e, "invitation"))
    }

    pub async fn rescind_invitation(
        &self,
        ctx: &RequestCtx,
        org: &str,
        id: &str,
    ) -> Result<Invitation> {
        let org_acc = self.directory.org_account(org).await?;
        self.authz
            .authorize(ctx, Action::OrgMembersManage, Resource::Org(org_acc.id))?;
        let inv = self.load_invitation(id).await?;
        if inv.org_id != org_acc.id {
            return Err(Error::new(Code::InvitationNotFound, "invitation not found"));
        }
        self.index
            .applied(self.store.close_invitation(
                &ctx.audit,
                &inv.id,
                InvitationStatus::Rescinded,
                now_millis(),
            ))
            .await
            .map_err(|e| conflict(e, "invitation"))
    }
}
