//! Users: create, read, update, list, delete (tombstone).

use super::conflict;
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{Page, User, UserUpdate};
use crate::names::{AccountName, Email};
use crate::policy::{Action, Resource};
use crate::secrets::hash_password;
use crate::store::StoreError;

#[derive(Debug, Clone, Default)]
pub struct CreateUser {
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub company_name: Option<String>,
    pub company_role: Option<String>,
    pub password: Option<String>,
    pub cluster_admin: bool,
}

fn check_len(field: &str, value: &Option<String>, max: usize) -> Result<()> {
    match value {
        Some(v) if v.chars().count() > max => Err(Error::invalid(format!(
            "{field} is longer than {max} characters"
        ))),
        _ => Ok(()),
    }
}

super::service! {
    /// Users: create, read, update, delete.
    pub struct AccountService { store, authz, directory, index }
}

impl AccountService {
    /// Creates a user (cluster admins only).
    pub async fn create_user(&self, ctx: &RequestCtx, req: CreateUser) -> Result<User> {
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        self.create_user_unchecked(&ctx.audit, req).await
    }

    /// Creates a user without asking the policy: for the CLI bootstrap, which runs
    /// with direct access to the database.
    pub async fn create_user_unchecked(
        &self,
        audit: &crate::audit::AuditContext,
        req: CreateUser,
    ) -> Result<User> {
        let username = AccountName::parse(&req.username)?;
        let email = Email::parse(&req.email)?;
        check_len("fullname", &Some(req.full_name.clone()), 100)?;
        check_len("company_name", &req.company_name, 100)?;
        check_len("company_role", &req.company_role, 200)?;
        let password_hash = match req.password.clone() {
            // argon2 is deliberately slow: keep it off the async worker threads.
            Some(p) => Some(
                tokio::task::spawn_blocking(move || hash_password(&p))
                    .await
                    .map_err(|e| Error::internal(format!("password hashing task failed: {e}")))??,
            ),
            None => None,
        };
        let new = crate::model::NewUser {
            username: username.into_string(),
            email: email.as_str().to_string(),
            full_name: req.full_name,
            company_name: req.company_name,
            company_role: req.company_role,
            password_hash,
            cluster_admin: req.cluster_admin,
        };
        let user = self
            .index
            .applied(self.store.create_user(audit, &new))
            .await
            .map_err(|e| conflict(e, "that name"))?;
        Ok(user)
    }

    pub async fn get_user(&self, ctx: &RequestCtx, username: &str) -> Result<User> {
        let account = self.directory.user_account(username).await?;
        self.authz
            .authorize(ctx, Action::UserRead, Resource::User(account.id))?;
        Ok(self.store.get_user(account.id).await?)
    }

    /// Looks a user up by UUID (v1 routes that take `userId`).
    pub async fn get_user_by_uuid(&self, ctx: &RequestCtx, uuid: &str) -> Result<User> {
        let user = match self.store.get_user_by_uuid(uuid).await {
            Ok(u) if u.status != crate::model::AccountStatus::Deleted => u,
            Ok(_) | Err(StoreError::NotFound) => {
                return Err(Error::new(
                    Code::UserNotFound,
                    format!("user {uuid:?} not found"),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        self.authz
            .authorize(ctx, Action::UserRead, Resource::User(user.id))?;
        Ok(user)
    }

    pub async fn list_users(&self, ctx: &RequestCtx, page: &Page) -> Result<Vec<User>> {
        self.authz
            .authorize(ctx, Action::AdminUsersRead, Resource::Cluster)?;
        Ok(self.store.list_users(page).await?)
    }

    pub async fn update_user(
        &self,
        ctx: &RequestCtx,
        username: &str,
        mut update: UserUpdate,
    ) -> Result<User> {
        let account = self.directory.user_account(username).await?;
        self.authz
            .authorize(ctx, Action::UserUpdate, Resource::User(account.id))?;
        if let Some(e) = &update.email {
            let email = Email::parse(e)?.as_str().to_string();
            let current = self.store.get_user(account.id).await?.email;
            // Changing an email address is a cluster admin's act: letting users
            // set any address would let them claim invitations sent to it and
            // probe which addresses have accounts.
            if email != current
                && !self
                    .authz
                    .can(ctx, Action::AdminUsersManage, Resource::Cluster)
            {
                return Err(Error::forbidden(
                    "email addresses are changed by a cluster admin (the address must be verified first)",
                ));
            }
            update.email = Some(email);
        }
        check_len("fullname", &update.full_name, 100)?;
        check_len("company_name", &update.company_name, 100)?;
        check_len("company_role", &update.company_role, 200)?;
        self.index
            .applied(self.store.update_user(&ctx.audit, account.id, &update))
            .await
            .map_err(|e| conflict(e, "that email"))
    }

    /// Tombstones a user (cluster admins only) and returns what it revoked.
    /// Refused while they are the last admin of an organization, or the last
    /// active cluster admin.
    pub async fn delete_user(
        &self,
        ctx: &RequestCtx,
        username: &str,
    ) -> Result<crate::model::DeletionReceipt> {
        let account = self.directory.user_account(username).await?;
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        if ctx.user_id() == Some(account.id) {
            return Err(Error::forbidden(
                "you cannot delete your own account while signed in as it",
            ));
        }
        let receipt = self
            .index
            .applied(
                self.store
                    .delete_user(&ctx.audit, account.id, ctx.account_id()),
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict {
                    constraint: crate::store::Constraint::LastClusterAdmin,
                } => super::admin::last_admin(e),
                e => conflict(e, "user"),
            })?;
        Ok(receipt)
    }

    /// The user record of the caller (for `.my`, `GET /v1/data/`, ...).
    pub async fn me(&self, ctx: &RequestCtx) -> Result<crate::model::AccountRef> {
        Ok(self.store.get_account(ctx.account_id()).await?)
    }
}
