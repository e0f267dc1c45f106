//! API keys: user keys, org keys and member keys. The secret is returned once,
//! at creation; the store keeps its SHA-256 digest.

use super::Hub;
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{ApiKey, KeyKind, Millis, NewKey, Scopes};
use crate::policy::{Action, Principal, Resource};
use crate::secrets::ApiKeySecret;
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct CreateKey {
    pub label: String,
    pub key_type: String,
    pub scopes: Scopes,
    pub allow_web_algo: bool,
    pub referer_host: Option<String>,
    pub algo_acl: Vec<String>,
    pub expires_at: Option<Millis>,
}

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
        }
    }
}

impl Hub {
    async fn issue_key(
        &self,
        ctx: &RequestCtx,
        kind: KeyKind,
        owner: crate::model::AccountId,
        org: Option<crate::model::AccountId>,
        req: CreateKey,
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
        };
        let key = self.store.create_key(&ctx.audit, &new).await?;
        self.after_write().await;
        Ok((key, secret))
    }

    pub async fn create_user_key(
        &self,
        ctx: &RequestCtx,
        username: &str,
        req: CreateKey,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        let user = self.user_account(username).await?;
        self.authorize(ctx, Action::UserKeysManage, Resource::User(user.id))?;
        self.issue_key(ctx, KeyKind::User, user.id, None, req).await
    }

    /// A cluster admin issues a key for a user (v1 `POST /v1/admin/users/{u}/keys`).
    pub async fn admin_create_user_key(
        &self,
        ctx: &RequestCtx,
        username: &str,
        req: CreateKey,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        self.authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        let user = self.user_account(username).await?;
        self.issue_key(ctx, KeyKind::User, user.id, None, req).await
    }

    /// For the CLI bootstrap (direct database access, no ctx).
    pub async fn create_user_key_unchecked(
        &self,
        username: &str,
        label: &str,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        let user = self.user_account(username).await?;
        let system = RequestCtx::cli(Principal::user(user.id));
        let req = CreateKey {
            label: label.to_string(),
            ..Default::default()
        };
        self.issue_key(&system, KeyKind::User, user.id, None, req)
            .await
    }

    pub async fn list_user_keys(&self, ctx: &RequestCtx, username: &str) -> Result<Vec<ApiKey>> {
        let user = self.user_account(username).await?;
        self.authorize(ctx, Action::UserKeysManage, Resource::User(user.id))?;
        Ok(self.store.list_keys(user.id, KeyKind::User).await?)
    }

    pub async fn create_org_key(
        &self,
        ctx: &RequestCtx,
        org: &str,
        req: CreateKey,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        let org_acc = self.org_account(org).await?;
        self.authorize(ctx, Action::OrgKeysManage, Resource::Org(org_acc.id))?;
        self.issue_key(ctx, KeyKind::Org, org_acc.id, None, req)
            .await
    }

    pub async fn create_member_key(
        &self,
        ctx: &RequestCtx,
        org: &str,
        username: &str,
        req: CreateKey,
    ) -> Result<(ApiKey, ApiKeySecret)> {
        let org_acc = self.org_account(org).await?;
        self.authorize(ctx, Action::OrgKeysManage, Resource::Org(org_acc.id))?;
        let user = self.user_account(username).await?;
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
        self.issue_key(ctx, KeyKind::Member, user.id, Some(org_acc.id), req)
            .await
    }

    /// Org keys and member keys of an org.
    pub async fn list_org_keys(&self, ctx: &RequestCtx, org: &str) -> Result<Vec<ApiKey>> {
        let org_acc = self.org_account(org).await?;
        self.authorize(ctx, Action::OrgKeysManage, Resource::Org(org_acc.id))?;
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
            KeyKind::User => self.can(ctx, Action::UserKeysManage, Resource::User(key.owner_id)),
            KeyKind::Org => self.can(ctx, Action::OrgKeysManage, Resource::Org(key.owner_id)),
            KeyKind::Member => {
                self.can(ctx, Action::UserKeysManage, Resource::User(key.owner_id))
                    || key
                        .org_id
                        .is_some_and(|o| self.can(ctx, Action::OrgKeysManage, Resource::Org(o)))
            }
        };
        if !allowed {
            return Err(Error::new(Code::KeyNotFound, "key not found"));
        }
        self.store
            .revoke_key(&ctx.audit, key.id, crate::model::now_millis())
            .await?;
        self.after_write().await;
        Ok(key)
    }

    /// Authenticates a presented API key from the index; a well-formed key it
    /// does not know is looked up again after the index caught up with the
    /// store (a key made a moment ago by the command line or another node),
    /// see `look_up_unknown_credential`. A key the index knows costs no I/O.
    pub(crate) async fn authenticate_key_or_catch_up(
        &self,
        raw: &str,
        digest: &str,
    ) -> Result<Principal> {
        match self.authenticate_key_digest(raw, digest) {
            Err(e) if e.code == Code::InvalidKey && ApiKeySecret::looks_valid(raw) => {
                match self
                    .look_up_unknown_credential(digest, |d| self.policy.authenticate_key(d))
                    .await
                {
                    Some(_) => self.authenticate_key_digest(raw, digest),
                    None => Err(e),
                }
            }
            answer => answer,
        }
    }

    /// Authenticates a presented API key (no I/O: answered from the index).
    pub fn authenticate_key(&self, raw: &str) -> Result<Principal> {
        self.authenticate_key_digest(raw, &crate::secrets::digest_hex(raw))
    }

    /// `authenticate_key` given the key's SHA-256 (`digest_hex`), which the
    /// HTTP layer computes once per request.
    fn authenticate_key_digest(&self, raw: &str, digest: &str) -> Result<Principal> {
        if !ApiKeySecret::looks_valid(raw) {
            return Err(Error::new(Code::InvalidKey, "invalid API key"));
        }
        let p = self
            .policy
            .authenticate_key(digest)
            .ok_or_else(|| Error::new(Code::InvalidKey, "invalid, expired or revoked API key"))?;
        if !self.policy.principal_active(&p) {
            return Err(Error::new(
                Code::AccountSuspended,
                "this key's account is suspended; ask a cluster admin",
            ));
        }
        Ok(p)
    }
}
