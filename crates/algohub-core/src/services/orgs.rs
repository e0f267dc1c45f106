//! Organizations, org types and memberships.

use super::conflict;
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{Membership, Org, OrgType, OrgUpdate, Page};
use crate::names::{AccountName, Email};
use crate::policy::{Action, Resource};
use crate::roles::OrgRole;
use serde::Serialize;

#[derive(Debug, Clone, Default)]
pub struct CreateOrg {
    pub name: String,
    pub label: String,
    pub contact_name: String,
    pub email: String,
    pub url: Option<String>,
    pub type_id: String,
}

/// An org as the caller may see it: contact details only for members and admins.
#[derive(Debug, Clone, Serialize)]
pub struct OrgView {
    pub org: Org,
    pub private_visible: bool,
    pub my_role: Option<OrgRole>,
}

fn limit(field: &str, v: &str, max: usize) -> Result<()> {
    if v.chars().count() > max {
        Err(Error::invalid(format!(
            "{field} is longer than {max} characters"
        )))
    } else {
        Ok(())
    }
}

super::service! {
    /// Organizations, their types and their members.
    pub struct OrgService { store, policy, settings, authz, directory, index }
}

impl OrgService {
    pub async fn list_org_types(&self) -> Result<Vec<OrgType>> {
        Ok(self.store.list_org_types().await?)
    }

    pub async fn create_org_type(&self, ctx: &RequestCtx, name: &str) -> Result<OrgType> {
        self.authz
            .authorize(ctx, Action::AdminOrgTypesManage, Resource::Cluster)?;
        let name = AccountName::parse(name)?;
        self.index
            .applied(self.store.create_org_type(&ctx.audit, name.as_str()))
            .await
            .map_err(|e| conflict(e, "that org type name"))
    }

    pub async fn delete_org_type(&self, ctx: &RequestCtx, name: &str) -> Result<()> {
        self.authz
            .authorize(ctx, Action::AdminOrgTypesManage, Resource::Cluster)?;
        self.index
            .applied(
                self.store
                    .delete_org_type(&ctx.audit, &name.to_ascii_lowercase()),
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound => Error::new(
                    Code::OrgTypeNotFound,
                    format!("org type {name:?} not found"),
                ),
                other => conflict(other, "org type"),
            })
    }

    /// Resolves an org type given by id or by name (the clients send either).
    async fn resolve_org_type(&self, raw: &str) -> Result<String> {
        if raw.trim().is_empty() {
            return Err(Error::new(
                Code::MissingField,
                "type_id must name an organization type",
            ));
        }
        let types = self.store.list_org_types().await?;
        types
            .iter()
            .find(|t| t.id == raw || t.name.eq_ignore_ascii_case(raw))
            .map(|t| t.id.clone())
            .ok_or_else(|| {
                let names: Vec<_> = types.iter().map(|t| t.name.as_str()).collect();
                Error::new(
                    Code::OrgTypeNotFound,
                    format!(
                        "unknown organization type {raw:?}; known types: {}",
                        names.join(", ")
                    ),
                )
            })
    }

    async fn check_org_limit(&self, user: crate::model::AccountId) -> Result<()> {
        if let Some(max) = self.settings.max_orgs_per_user {
            let count = self.store.list_user_memberships(user).await?.len();
            if count >= max as usize {
                return Err(Error::new(
                    Code::OrgLimit,
                    format!(
                        "a user may belong to at most {max} organization(s) on this cluster; leave one first"
                    ),
                ));
            }
        }
        Ok(())
    }

    pub async fn create_org(&self, ctx: &RequestCtx, req: CreateOrg) -> Result<Org> {
        self.authz
            .authorize(ctx, Action::OrgCreate, Resource::Cluster)?;
        let creator = super::require_user(ctx)?;
        let name = AccountName::parse(&req.name)?;
        let email = Email::parse(&req.email)?;
        limit("org_label", &req.label, 100)?;
        limit("org_contact_name", &req.contact_name, 100)?;
        if let Some(u) = &req.url {
            limit("org_url", u, 100)?;
        }
        let type_id = self.resolve_org_type(&req.type_id).await?;
        self.check_org_limit(creator).await?;
        let new = crate::model::NewOrg {
            name: name.into_string(),
            label: if req.label.trim().is_empty() {
                req.name.clone()
            } else {
                req.label
            },
            contact_name: req.contact_name,
            email: email.as_str().to_string(),
            url: req.url.filter(|u| !u.is_empty()),
            type_id,
        };
        let org = self
            .index
            .applied(self.store.create_org(&ctx.audit, &new, creator))
            .await
            .map_err(|e| conflict(e, "that name"))?;
        Ok(org)
    }

    pub async fn get_org(&self, ctx: &RequestCtx, name: &str) -> Result<OrgView> {
        let account = self.directory.org_account(name).await?;
        self.authz
            .authorize(ctx, Action::OrgRead, Resource::Org(account.id))?;
        let org = self.store.get_org(account.id).await?;
        let private_visible =
            self.authz
                .can(ctx, Action::OrgReadPrivate, Resource::Org(account.id));
        let my_role = match ctx.user_id() {
            Some(u) => self
                .store
                .get_membership(account.id, u)
                .await?
                .map(|m| m.role),
            None => None,
        };
        Ok(OrgView {
            org,
            private_visible,
            my_role,
        })
    }

    /// All orgs for cluster admins; the caller's own orgs for everyone else.
    pub async fn list_orgs(&self, ctx: &RequestCtx, page: &Page) -> Result<Vec<Org>> {
        if self
            .authz
            .can(ctx, Action::AdminUsersRead, Resource::Cluster)
        {
            return Ok(self.store.list_orgs(page).await?);
        }
        self.own_orgs(ctx, page).await
    }

    /// The caller's own orgs (those they are a member of), by name.
    pub async fn own_orgs(&self, ctx: &RequestCtx, page: &Page) -> Result<Vec<Org>> {
        let user = super::require_user(ctx)?;
        let mut out = Vec::new();
        for m in self.store.list_user_memberships(user).await? {
            if page
                .marker
                .as_deref()
                .is_some_and(|mk| m.org_name.as_str() <= mk)
            {
                continue;
            }
            if self
                .authz
                .can(ctx, Action::OrgReadPrivate, Resource::Org(m.org_id))
            {
                out.push(self.store.get_org(m.org_id).await?);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.truncate(page.limit.max(1) as usize);
        Ok(out)
    }

    pub async fn update_org(
        &self,
        ctx: &RequestCtx,
        name: &str,
        mut update: OrgUpdate,
    ) -> Result<Org> {
        let account = self.directory.org_account(name).await?;
        self.authz
            .authorize(ctx, Action::OrgUpdate, Resource::Org(account.id))?;
        if let Some(e) = &update.email {
            update.email = Some(Email::parse(e)?.as_str().to_string());
        }
        if let Some(l) = &update.label {
            limit("org_label", l, 100)?;
        }
        if let Some(c) = &update.contact_name {
            limit("org_contact_name", c, 100)?;
        }
        if let Some(Some(u)) = &update.url {
            limit("org_url", u, 100)?;
        }
        if let Some(t) = &update.type_id {
            update.type_id = Some(self.resolve_org_type(t).await?);
        }
        let org = self
            .index
            .applied(self.store.update_org(&ctx.audit, account.id, &update))
            .await?;
        Ok(org)
    }

    pub async fn delete_org(&self, ctx: &RequestCtx, name: &str) -> Result<()> {
        let account = self.directory.org_account(name).await?;
        self.authz
            .authorize(ctx, Action::OrgDelete, Resource::Org(account.id))?;
        self.index
            .applied(
                self.store
                    .delete_org(&ctx.audit, account.id, ctx.account_id()),
            )
            .await?;
        Ok(())
    }

    pub async fn list_members(
        &self,
        ctx: &RequestCtx,
        org: &str,
        page: &Page,
    ) -> Result<Vec<Membership>> {
        let account = self.directory.org_account(org).await?;
        self.authz
            .authorize(ctx, Action::OrgMembersRead, Resource::Org(account.id))?;
        Ok(self.store.list_members(account.id, page).await?)
    }

    /// The role the caller holds for granting in this org: cluster admins count as
    /// org admins. An admin can never grant a role above their own.
    async fn check_grantable(
        &self,
        ctx: &RequestCtx,
        org: crate::model::AccountId,
        role: OrgRole,
    ) -> Result<()> {
        if self
            .authz
            .can(ctx, Action::AdminUsersManage, Resource::Cluster)
        {
            return Ok(());
        }
        let own = ctx.user_id().and_then(|u| self.policy.org_role(u, org));
        match own {
            Some(have) if have >= role => Ok(()),
            _ => Err(Error::new(
                Code::RoleAboveOwn,
                format!(
                    "you cannot grant {}: it is above your own role",
                    role.as_str()
                ),
            )),
        }
    }

    /// Adds a member directly (cluster admins; used by the v1 member PUT).
    pub async fn add_member_direct(
        &self,
        ctx: &RequestCtx,
        org: &str,
        username: &str,
        role: OrgRole,
    ) -> Result<Membership> {
        let org_acc = self.directory.org_account(org).await?;
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        let user = self.directory.user_account(username).await?;
        self.check_org_limit(user.id).await?;
        let m = self
            .index
            .applied(
                self.store
                    .add_member(&ctx.audit, org_acc.id, user.id, role, None),
            )
            .await
            .map_err(|e| conflict(e, "membership"))?;
        // A pending invitation is moot once the user is a member.
        if let Some(inv) = self
            .store
            .find_pending_invitation(org_acc.id, Some(user.id), None)
            .await?
        {
            self.rescind(ctx, &inv.id).await?;
        }
        Ok(m)
    }

    /// Rescinds a pending invitation (the user became a member, or the
    /// `invited` entry of the v1 member list was removed).
    async fn rescind(&self, ctx: &RequestCtx, invitation: &str) -> Result<()> {
        self.index
            .applied(self.store.close_invitation(
                &ctx.audit,
                invitation,
                crate::model::InvitationStatus::Rescinded,
                crate::model::now_millis(),
            ))
            .await
            .map_err(|e| conflict(e, "invitation"))?;
        Ok(())
    }

    pub async fn set_member_role(
        &self,
        ctx: &RequestCtx,
        org: &str,
        username: &str,
        role: OrgRole,
        expires_at: Option<crate::model::Millis>,
    ) -> Result<Membership> {
        let org_acc = self.directory.org_account(org).await?;
        self.authz
            .authorize(ctx, Action::OrgMembersManage, Resource::Org(org_acc.id))?;
        self.check_grantable(ctx, org_acc.id, role).await?;
        let user = self.directory.user_account(username).await?;
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
        let m = self
            .index
            .applied(
                self.store
                    .set_member_role(&ctx.audit, org_acc.id, user.id, role, expires_at),
            )
            .await
            .map_err(|e| conflict(e, "membership"))?;
        Ok(m)
    }

    /// Removes a member (org admins), or leaves the org (the member themself).
    pub async fn remove_member(&self, ctx: &RequestCtx, org: &str, username: &str) -> Result<()> {
        let org_acc = self.directory.org_account(org).await?;
        let user = self.directory.user_account(username).await?;
        if ctx.user_id() != Some(user.id) {
            self.authz
                .authorize(ctx, Action::OrgMembersManage, Resource::Org(org_acc.id))?;
        } else {
            // Any member may leave, but not through an impersonation session
            // (a membership outlives it): the policy's `org.leave`.
            self.authz
                .authorize(ctx, Action::OrgLeave, Resource::Org(org_acc.id))?;
        }
        if self
            .store
            .get_membership(org_acc.id, user.id)
            .await?
            .is_none()
        {
            // The v1 member list shows pending invitations as `invited`; removing
            // such an entry rescinds the invitation.
            if let Some(inv) = self
                .store
                .find_pending_invitation(org_acc.id, Some(user.id), None)
                .await?
                && self
                    .authz
                    .can(ctx, Action::OrgMembersManage, Resource::Org(org_acc.id))
            {
                self.rescind(ctx, &inv.id).await?;
                return Ok(());
            }
            return Err(Error::new(
                Code::NotMember,
                format!("{username} is not a member of {org}"),
            ));
        }
        self.index
            .applied(self.store.remove_member(&ctx.audit, org_acc.id, user.id))
            .await
            .map_err(|e| conflict(e, "membership"))?;
        Ok(())
    }
}
