//! API keys: user keys, org keys and member keys. The secret is returned once,
//! at creation; the store keeps its SHA-256 digest.

use super::Authorizer;
use super::Base;
use super::Directory;
use super::IndexSync;
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{ApiKey, KeyKind, Millis, NewKey, Scopes};
use crate::policy::{Action, Principal, Resource, Rule};
use crate::secrets::ApiKeySecret;
use crate::store::Store;
use crate::store::StoreError;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct CreateKey {
    pub label: String,
    pub key_type: String,
    pub scopes: Scopes,
    pub allow_web_algo: bool,
    pub referer_host: Option<String>,
    pub algo_acl: Vec<String>,
    pub expires_at: Option<Millis>,
    /// Why a cluster admin creates a key for someone else (required then,
    /// ignored otherwise).
    pub reason: Option<String>,
}

/// The longest a key a cluster admin creates for someone else may live
/// unless the cluster says otherwise (`max_minted_key_hours`): a week.
pub const DEFAULT_MAX_MINTED_KEY_HOURS: u32 = 7 * 24;
/// How long such a key lives unless a shorter life is asked for: a day.
const MINTED_KEY_DEFAULT_HOURS: u32 = 24;
/// The longest reason accepted.
const MAX_REASON_CHARS: usize = 500;

impl Default for CreateKey {
    fn default() -> Self {
        Self {
            label: String::new(),
            key_type: "ManagementKey".into(),
            scopes: Scopes::ALL,
            allow_web_algo: false,
            referer_host: None,
            algo_acl: vec!["*".into()],
            expires_at: None,
            reason: None,
        }
    }
}

/// API keys: personal, organization and member keys; their last uses.
pub struct KeyService {
    store: Arc<dyn Store>,
    policy: Arc<crate::policy::PolicyEngine>,
    settings: Arc<super::Settings>,
    authz: Arc<Authorizer>,
    directory: Directory,
    index: Arc<IndexSync>,
    /// Key id → last use, flushed to the store by maintenance.
    key_uses: parking_lot::Mutex<rustc_hash::FxHashMap<crate::model::KeyId, Millis>>,
}

impl KeyService {
    pub(super) fn new(base: &Base) -> Self {
        Self {
            store: base.store.clone(),
            policy: base.policy.clone(),
            settings: base.settings.clone(),
            authz: base.authz.clone(),
            directory: base.directory.clone(),
            index: base.index.clone(),
            key_uses: Default::default(),
        }
    }

    /// Notes that a key was used; written to the store in batches
    /// (`flush_key_uses`, run by maintenance), never a write per call.
    pub fn record_key_use(&self, key: crate::model::KeyId) {
        self.key_uses
            .lock()
            .insert(key, crate::policy::coarse_now_millis());
    }

    pub async fn flush_key_uses(&self) -> Result<()> {
        let used: Vec<_> = self.key_uses.lock().drain().collect();
        if !used.is_empty() {
            self.store.touch_keys(&used).await?;
        }
        Ok(())
    }
}

impl KeyService {
    async fn issue_key(
        &self,
        ctx: &RequestCtx,
        kind: KeyKind,
        owner: crate::model::AccountId,
        org: Option<crate::model::AccountId>,
        req: CreateKey,
        minting: bool,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        if req.label.chars().count() > 100 {
            return Err(Error::invalid("key_label is longer than 100 characters"));
        }
        if !matches!(
            req.key_type.as_str(),
            "ManagementKey" | "PlatformAdminKey" | "AlgorithmKey"
        ) {
            return Err(Error::invalid(format!(
                "unknown key_type {:?}: use ManagementKey, PlatformAdminKey or AlgorithmKey",
                req.key_type
            )));
        }
        // A key never carries more than the credential that creates it: not
        // more scopes, and not a longer life.
        let scopes = Scopes(req.scopes.0 & ctx.principal.scopes.0);
        let mut req = req;
        let minted_reason = if minting {
            self.may_mint_for(kind, owner).await?;
            let (reason, expires_at) = self.minted_terms(&req)?;
            req.expires_at = Some(expires_at);
            Some(reason)
        } else {
            None
        };
        if let Some(parent) = ctx.principal.key {
            let parent = self.store.get_key(parent).await?;
            if let Some(limit) = parent.expires_at {
                req.expires_at = Some(req.expires_at.map_or(limit, |t| t.min(limit)));
            }
        }
        let secret = ApiKeySecret::generate();
        let new = NewKey {
            uuid: uuid::Uuid::new_v4().to_string(),
            kind,
            owner_id: owner,
            org_id: org,
            label: req.label,
            key_type: req.key_type,
            mask: secret.mask(),
            digest: secret.digest(),
            scopes,
            allow_web_algo: req.allow_web_algo,
            referer_host: req.referer_host,
            algo_acl: req.algo_acl,
            created_by: ctx.account_id(),
            expires_at: req.expires_at,
            minted_reason,
        };
        let key = self
            .index
            .applied(self.store.create_key(&ctx.audit, &new))
            .await?;
        if key.minted_reason.is_some() {
            self.notice_minted(ctx, &key).await;
        }
        Ok((key, secret))
    }

    /// A key a cluster admin creates for another person acts as that
    /// person: like an impersonation, refused for another cluster admin
    /// unless the cluster allows impersonating admins.
    async fn may_mint_for(&self, kind: KeyKind, owner: crate::model::AccountId) -> Result<()> {
        if kind == KeyKind::Org || self.settings.allow_impersonating_admins {
            return Ok(());
        }
        let user = self.store.get_user(owner).await?;
        if user.cluster_admin {
            return Err(Error::new(
                Code::ImpersonationRefused,
                format!(
                    "{} is a cluster admin: a key you create for them would act as them, and \
                     impersonating cluster admins is off on this cluster \
                     (allow_impersonating_admins)",
                    user.username
                ),
            ));
        }
        Ok(())
    }

    /// Whether the caller is an admin of `org` in their own right (a cluster
    /// admin who is one makes the org's keys as its admin, not as a minter).
    fn org_admin(&self, ctx: &RequestCtx, org: crate::model::AccountId) -> bool {
        ctx.user_id().is_some_and(|user| {
            self.policy.org_role(user, org) == Some(crate::roles::OrgRole::Admin)
        })
    }

    /// The reason and expiry of a key a cluster admin creates for someone
    /// else: a reason is required, and the key lives a day unless asked for
    /// less, never longer than `max_minted_key_hours`.
    fn minted_terms(&self, req: &CreateKey) -> Result<(String, Millis)> {
        let reason = req.reason.as_deref().map(str::trim).unwrap_or_default();
        if reason.is_empty() {
            return Err(Error::invalid(
                "a cluster admin creating a key for someone else must say why: give a \
                 \"reason\" (the key's owner is told, and every request made with it is on record)",
            ));
        }
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(Error::invalid(format!(
                "reason is longer than {MAX_REASON_CHARS} characters"
            )));
        }
        let now = crate::model::now_millis();
        let hour = 3600 * 1000;
        let cap = self.settings.max_minted_key_hours;
        let latest = now + i64::from(cap) * hour;
        let expires_at = match req.expires_at {
            None => now + i64::from(MINTED_KEY_DEFAULT_HOURS.min(cap)) * hour,
            Some(t) if t > latest => {
                return Err(Error::invalid(format!(
                    "a key a cluster admin creates for someone else expires within {cap} hours \
                     (max_minted_key_hours)"
                )));
            }
            Some(t) => t,
        };
        Ok((reason.to_string(), expires_at))
    }

    /// Tells the key's owner (for an org key: the org's admins) that a
    /// cluster admin created it, why, and until when (best effort: the key
    /// and its audit record stand either way).
    async fn notice_minted(&self, ctx: &RequestCtx, key: &ApiKey) {
        let admin = match self.store.get_account(ctx.account_id()).await {
            Ok(a) => a.name,
            Err(_) => ctx.account_id().to_string(),
        };
        let (recipients, whose) = match key.kind {
            KeyKind::Org => (
                self.policy.org_admins(key.owner_id),
                format!("for the organization {}", key.owner_name),
            ),
            KeyKind::User | KeyKind::Member => (vec![key.owner_id], "for you".to_string()),
        };
        let until = key
            .expires_at
            .map(crate::model::format_millis)
            .unwrap_or_default();
        let text = format!(
            "cluster admin {admin} created an API key {whose} ({}, label {:?}), valid until \
             {until}: {}. Every request made with it is recorded as {admin} acting for you; \
             revoke it at DELETE /v1/keys/{}",
            key.mask,
            key.label,
            key.minted_reason.as_deref().unwrap_or_default(),
            key.uuid
        );
        let sent = self
            .index
            .applied(self.store.send_notifications(
                &ctx.audit,
                ctx.account_id(),
                &recipients,
                &text,
                None,
            ))
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, key = %key.uuid, "could not tell a key's owner that a cluster admin created it");
        }
    }

    pub async fn create_user_key(
        &self,
        ctx: &RequestCtx,
        username: &str,
        req: CreateKey,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        let user = self.directory.user_account(username).await?;
        let rule = self
            .authz
            .authorize_by(ctx, Action::UserKeysManage, Resource::User(user.id))?;
        let minting = rule == Rule::ClusterAdmin && ctx.user_id() != Some(user.id);
        self.issue_key(ctx, KeyKind::User, user.id, None, req, minting)
            .await
    }

    /// A cluster admin issues a key for a user (v1 `POST /v1/admin/users/{u}/keys`).
    pub async fn admin_create_user_key(
        &self,
        ctx: &RequestCtx,
        username: &str,
        req: CreateKey,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        let user = self.directory.user_account(username).await?;
        let minting = ctx.user_id() != Some(user.id);
        self.issue_key(ctx, KeyKind::User, user.id, None, req, minting)
            .await
    }

    /// For the CLI bootstrap (direct database access, no ctx).
    pub async fn create_user_key_unchecked(
        &self,
        username: &str,
        label: &str,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        let user = self.directory.user_account(username).await?;
        let system = RequestCtx::cli(Principal::user(user.id));
        let req = CreateKey {
            label: label.to_string(),
            ..Default::default()
        };
        self.issue_key(&system, KeyKind::User, user.id, None, req, false)
            .await
    }

    pub async fn list_user_keys(&self, ctx: &RequestCtx, username: &str) -> Result<Vec<ApiKey>> {
        let user = self.directory.user_account(username).await?;
        self.authz
            .authorize(ctx, Action::UserKeysManage, Resource::User(user.id))?;
        Ok(self.store.list_keys(user.id, KeyKind::User).await?)
    }

    pub async fn create_org_key(
        &self,
        ctx: &RequestCtx,
        org: &str,
        req: CreateKey,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        let org_acc = self.directory.org_account(org).await?;
        let rule =
            self.authz
                .authorize_by(ctx, Action::OrgKeysManage, Resource::Org(org_acc.id))?;
        let minting = rule == Rule::ClusterAdmin && !self.org_admin(ctx, org_acc.id);
        self.issue_key(ctx, KeyKind::Org, org_acc.id, None, req, minting)
            .await
    }

    pub async fn create_member_key(
        &self,
        ctx: &RequestCtx,
        org: &str,
        username: &str,
        req: CreateKey,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        let org_acc = self.directory.org_account(org).await?;
        let rule =
            self.authz
                .authorize_by(ctx, Action::OrgKeysManage, Resource::Org(org_acc.id))?;
        let user = self.directory.user_account(username).await?;
        let minting = rule == Rule::ClusterAdmin
            && ctx.user_id() != Some(user.id)
            && !self.org_admin(ctx, org_acc.id);
        if self
            .store
            .get_membership(org_acc.id, user.id)
            .await?
            .is_none()
        {
            return Err(Error::new(
                Code::NotMember,
                format!("{username} is not a member of {org}"),
            ));
        }
        self.issue_key(
            ctx,
            KeyKind::Member,
            user.id,
            Some(org_acc.id),
            req,
            minting,
        )
        .await
    }

    /// Org keys and member keys of an org.
    pub async fn list_org_keys(&self, ctx: &RequestCtx, org: &str) -> Result<Vec<ApiKey>> {
        let org_acc = self.directory.org_account(org).await?;
        self.authz
            .authorize(ctx, Action::OrgKeysManage, Resource::Org(org_acc.id))?;
        let mut keys = self.store.list_keys(org_acc.id, KeyKind::Org).await?;
        keys.extend(self.store.list_member_keys(org_acc.id).await?);
        Ok(keys)
    }

    /// Revokes a key: its owner (user keys, own member keys) or an org admin.
    pub async fn revoke_key(&self, ctx: &RequestCtx, key_uuid: &str) -> Result<ApiKey> {
        let key = match self.store.get_key_by_uuid(key_uuid).await {
            Ok(k) if k.revoked_at.is_none() => k,
            Ok(_) | Err(StoreError::NotFound) => {
                return Err(Error::new(Code::KeyNotFound, "key not found"));
            }
            Err(e) => return Err(e.into()),
        };
        let allowed = match key.kind {
            KeyKind::User => {
                self.authz
                    .can(ctx, Action::UserKeysManage, Resource::User(key.owner_id))
            }
            KeyKind::Org => self
                .authz
                .can(ctx, Action::OrgKeysManage, Resource::Org(key.owner_id)),
            KeyKind::Member => {
                self.authz
                    .can(ctx, Action::UserKeysManage, Resource::User(key.owner_id))
                    || key.org_id.is_some_and(|o| {
                        self.authz.can(ctx, Action::OrgKeysManage, Resource::Org(o))
                    })
            }
        };
        if !allowed {
            return Err(Error::new(Code::KeyNotFound, "key not found"));
        }
        self.index
            .applied(
                self.store
                    .revoke_key(&ctx.audit, key.id, crate::model::now_millis()),
            )
            .await?;
        Ok(key)
    }
}
