//! Apps: workspaces inside an account. Unreadable apps answer "not found", so
//! their existence does not leak.

use super::conflict;
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{AccountKind, App, AppSort};
use crate::names::ResourceName;
use crate::policy::{Action, Resource};
use crate::store::{Constraint, StoreError};

fn app_not_found(owner: &str, name: &str) -> Error {
    Error::new(Code::AppNotFound, format!("app {owner}/{name} not found"))
}

super::service! {
    /// Apps: create, list, pin, duplicate, transfer, delete.
    pub struct AppService { store, policy, authz, directory, index }
}

impl AppService {
    /// Loads an app the caller may at least read.
    async fn readable_app(&self, ctx: &RequestCtx, owner: &str, name: &str) -> Result<App> {
        let acc = self
            .directory
            .account(owner)
            .await
            .map_err(|_| app_not_found(owner, name))?;
        let app = match self.store.get_app(acc.id, &name.to_ascii_lowercase()).await {
            Ok(a) => a,
            Err(StoreError::NotFound) => return Err(app_not_found(owner, name)),
            Err(e) => return Err(e.into()),
        };
        // Made or moved a moment ago through another node? The index catches up first.
        self.index
            .catch_up_with(self.policy.app_owner(app.id), app.owner_id)
            .await;
        if !self.authz.can(ctx, Action::AppRead, Resource::App(app.id)) {
            return Err(app_not_found(owner, name));
        }
        Ok(app)
    }

    pub async fn create_app(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        name: &str,
        description: &str,
    ) -> Result<App> {
        let acc = self.directory.account(owner).await?;
        self.authz
            .authorize(ctx, Action::AppCreate, Resource::Account(acc.id))?;
        let name = ResourceName::parse(name)?;
        if description.chars().count() > 1000 {
            return Err(Error::invalid("description is longer than 1000 characters"));
        }
        let creator = ctx.account_id();
        let app = self
            .index
            .applied(
                self.store
                    .create_app(&ctx.audit, acc.id, name.as_str(), description, creator),
            )
            .await
            .map_err(|e| conflict(e, "that app name"))?;
        Ok(app)
    }

    pub async fn get_app(&self, ctx: &RequestCtx, owner: &str, name: &str) -> Result<App> {
        self.readable_app(ctx, owner, name).await
    }

    /// Apps of an account the caller may read, filtered by name and sorted.
    pub async fn list_apps(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        search: Option<&str>,
        sort: AppSort,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<App>> {
        let acc = self.directory.account(owner).await?;
        let limit = limit.clamp(1, 500);
        let mut out = Vec::new();
        let mut skipped = 0;
        let mut cursor = 0;
        // Page through the store until `limit` readable apps past `offset` are found.
        loop {
            let batch = self
                .store
                .list_apps(acc.id, search, sort, 500, cursor)
                .await?;
            let n = batch.len() as i64;
            if let Some(unknown) = batch
                .iter()
                .find(|a| self.policy.app_owner(a.id) != Some(a.owner_id))
            {
                self.index
                    .catch_up_with(self.policy.app_owner(unknown.id), unknown.owner_id)
                    .await;
            }
            for app in batch {
                if self.authz.can(ctx, Action::AppRead, Resource::App(app.id)) {
                    if skipped < offset {
                        skipped += 1;
                    } else if (out.len() as i64) < limit {
                        out.push(app);
                    }
                }
            }
            cursor += n;
            if n < 500 || out.len() as i64 >= limit {
                return Ok(out);
            }
        }
    }

    pub async fn delete_app(&self, ctx: &RequestCtx, owner: &str, name: &str) -> Result<()> {
        let app = self.readable_app(ctx, owner, name).await?;
        self.authz
            .authorize(ctx, Action::AppDelete, Resource::App(app.id))?;
        self.index
            .applied(self.store.delete_app(&ctx.audit, app.id))
            .await?;
        Ok(())
    }

    pub async fn duplicate_app(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        name: &str,
        new_name: &str,
    ) -> Result<App> {
        let app = self.readable_app(ctx, owner, name).await?;
        self.authz
            .authorize(ctx, Action::AppCreate, Resource::Account(app.owner_id))?;
        let new_name = ResourceName::parse(new_name)?;
        let copy = self
            .index
            .applied(self.store.duplicate_app(
                &ctx.audit,
                app.id,
                new_name.as_str(),
                ctx.account_id(),
            ))
            .await
            .map_err(|e| conflict(e, "that app name"))?;
        Ok(copy)
    }

    /// Moves a personal app into an org the caller may create apps in, with
    /// its algorithms (PRODUCT §4: the resources move with it). They keep
    /// their ids, so builds, versions, usage records and errors stay theirs;
    /// the old `owner/name` paths stop resolving. In an org that requires
    /// approval their published versions wait for an admin's approval again
    /// (the admins are notified as for a publish).
    pub async fn transfer_app(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        name: &str,
        to_org: &str,
        new_name: Option<&str>,
    ) -> Result<App> {
        let app = self.readable_app(ctx, owner, name).await?;
        self.authz
            .authorize(ctx, Action::AppManage, Resource::App(app.id))?;
        let from = self.store.get_account(app.owner_id).await?;
        if from.kind != AccountKind::User {
            return Err(Error::invalid(
                "only apps in a personal account can be transferred",
            ));
        }
        let dest = self.directory.org_account(to_org).await?;
        self.authz
            .authorize(ctx, Action::AppCreate, Resource::Account(dest.id))?;
        let target_name = ResourceName::parse(new_name.unwrap_or(&app.name))?;
        if let Ok(existing) = self.store.get_app(dest.id, &target_name.lower()).await {
            return Err(Error::new(
                Code::NameTaken,
                format!(
                    "{to_org} already has an app named {}; choose another name",
                    existing.name
                ),
            ));
        }
        let moved = self
            .index
            .applied(self.store.transfer_app(
                &ctx.audit,
                app.id,
                app.owner_id,
                dest.id,
                target_name.as_str(),
                ctx.account_id(),
            ))
            .await
            .map_err(|e| match e {
                // Another transfer of it committed after this one's checks.
                StoreError::Conflict {
                    constraint: Constraint::AppMoved,
                } => Error::new(
                    Code::Conflict,
                    format!(
                        "app {owner}/{name} was moved by another request meanwhile; \
                         nothing was transferred"
                    ),
                ),
                StoreError::Conflict {
                    constraint:
                        constraint
                        @ (Constraint::AlgorithmName | Constraint::AlgorithmNamesTaken { .. }),
                } => {
                    // With the names when the store's check found them; the
                    // unique index (a name taken meanwhile) names none.
                    let taken = match constraint {
                        Constraint::AlgorithmNamesTaken { names } => {
                            format!("algorithms named {}", names.join(", "))
                        }
                        _ => "an algorithm named like one in this app".to_string(),
                    };
                    Error::new(
                        Code::NameTaken,
                        format!(
                            "{to_org} already has {taken} (a deleted algorithm keeps its name); \
                             the app's algorithms move with it, so nothing was transferred"
                        ),
                    )
                }
                other => conflict(other, "that app name"),
            })?;
        for version in &moved.resubmitted {
            let Some(algo) = moved
                .algorithms
                .iter()
                .find(|a| a.id == version.algorithm_id)
            else {
                continue;
            };
            // The transfer is committed: a notification that cannot be
            // queued is logged, not turned into an error.
            if let Err(e) = super::versions::notify_org_admins(&*self.store, algo, version).await {
                tracing::warn!(error = %e, algorithm = algo.id, "could not notify the org's admins of a resubmitted version");
            }
        }
        Ok(moved.app)
    }

    pub async fn pin_app(
        &self,
        ctx: &RequestCtx,
        owner: &str,
        name: &str,
        pinned: bool,
    ) -> Result<()> {
        let me = super::require_user(ctx)?;
        let app = self.readable_app(ctx, owner, name).await?;
        if pinned {
            self.index
                .applied(self.store.pin_app(&ctx.audit, me, app.id))
                .await?
        } else {
            self.index
                .applied(self.store.unpin_app(&ctx.audit, me, app.id))
                .await?
        }
        Ok(())
    }

    /// The caller's pinned apps that they can still read.
    pub async fn pinned_apps(&self, ctx: &RequestCtx) -> Result<Vec<App>> {
        let me = super::require_user(ctx)?;
        Ok(self
            .store
            .list_pinned_apps(me)
            .await?
            .into_iter()
            .filter(|a| self.authz.can(ctx, Action::AppRead, Resource::App(a.id)))
            .collect())
    }
}
