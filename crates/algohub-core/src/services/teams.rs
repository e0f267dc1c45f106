//! Teams inside an organization: seats for members, app grants with app roles.

use super::conflict;
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{Millis, Team, TeamAppGrant, TeamMember};
use crate::names::ResourceName;
use crate::policy::{Action, Resource};
use crate::roles::AppRole;
use crate::store::StoreError;

super::service! {
    /// Teams inside organizations and the apps granted to them.
    pub struct TeamService { store, authz, directory, index }
}

impl TeamService {
    async fn team(&self, org: &str, team: &str) -> Result<(crate::model::AccountRef, Team)> {
        let org_acc = self.directory.org_account(org).await?;
        match self
            .store
            .get_team(org_acc.id, &team.to_ascii_lowercase())
            .await
        {
            Ok(t) => Ok((org_acc, t)),
            Err(StoreError::NotFound) => Err(Error::new(
                Code::TeamNotFound,
                format!("team {team:?} not found in {org}"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn create_team(&self, ctx: &RequestCtx, org: &str, name: &str) -> Result<Team> {
        let org_acc = self.directory.org_account(org).await?;
        self.authz
            .authorize(ctx, Action::OrgTeamsManage, Resource::Org(org_acc.id))?;
        let name = ResourceName::parse(name)?;
        let team = self
            .index
            .applied(
                self.store
                    .create_team(&ctx.audit, org_acc.id, name.as_str()),
            )
            .await
            .map_err(|e| conflict(e, "that team name"))?;
        Ok(team)
    }

    pub async fn list_teams(&self, ctx: &RequestCtx, org: &str) -> Result<Vec<Team>> {
        let org_acc = self.directory.org_account(org).await?;
        self.authz
            .authorize(ctx, Action::OrgTeamsRead, Resource::Org(org_acc.id))?;
        Ok(self.store.list_teams(org_acc.id).await?)
    }

    pub async fn get_team(
        &self,
        ctx: &RequestCtx,
        org: &str,
        team: &str,
    ) -> Result<(Team, Vec<TeamMember>, Vec<TeamAppGrant>)> {
        let (_, t) = self.team(org, team).await?;
        self.authz
            .authorize(ctx, Action::OrgTeamsRead, Resource::Team(t.id))?;
        let members = self.store.list_team_members(t.id).await?;
        // Only the apps the caller may see (a team contributor sees the apps
        // of their own teams, not every app a team holds).
        let apps = self
            .store
            .list_team_apps(t.id)
            .await?
            .into_iter()
            .filter(|g| {
                self.authz
                    .can(ctx, Action::AppRead, Resource::App(g.app_id))
            })
            .collect();
        Ok((t, members, apps))
    }

    pub async fn delete_team(&self, ctx: &RequestCtx, org: &str, team: &str) -> Result<()> {
        let (_, t) = self.team(org, team).await?;
        self.authz
            .authorize(ctx, Action::OrgTeamsManage, Resource::Team(t.id))?;
        self.index
            .applied(self.store.delete_team(&ctx.audit, t.id))
            .await?;
        Ok(())
    }

    pub async fn add_team_member(
        &self,
        ctx: &RequestCtx,
        org: &str,
        team: &str,
        username: &str,
        expires_at: Option<Millis>,
    ) -> Result<()> {
        let (org_acc, t) = self.team(org, team).await?;
        self.authz
            .authorize(ctx, Action::OrgTeamsManage, Resource::Team(t.id))?;
        let user = self.directory.user_account(username).await?;
        if self
            .store
            .get_membership(org_acc.id, user.id)
            .await?
            .is_none()
        {
            return Err(Error::new(
                Code::NotMember,
                format!("{username} is not a member of {org}; only members can join its teams"),
            ));
        }
        self.index
            .applied(
                self.store
                    .add_team_member(&ctx.audit, t.id, user.id, expires_at),
            )
            .await
            .map_err(|e| conflict(e, "team seat"))?;
        Ok(())
    }

    pub async fn remove_team_member(
        &self,
        ctx: &RequestCtx,
        org: &str,
        team: &str,
        username: &str,
    ) -> Result<()> {
        let (_, t) = self.team(org, team).await?;
        self.authz
            .authorize(ctx, Action::OrgTeamsManage, Resource::Team(t.id))?;
        let user = self.directory.user_account(username).await?;
        match self
            .index
            .applied(self.store.remove_team_member(&ctx.audit, t.id, user.id))
            .await
        {
            Err(StoreError::NotFound) => {
                return Err(Error::new(
                    Code::NotMember,
                    format!("{username} is not in team {team}"),
                ));
            }
            other => other?,
        }
        Ok(())
    }

    /// Grants an app owned by the org to a team with an app role.
    pub async fn grant_team_app(
        &self,
        ctx: &RequestCtx,
        org: &str,
        team: &str,
        app: &str,
        role: AppRole,
        expires_at: Option<Millis>,
    ) -> Result<()> {
        let (org_acc, t) = self.team(org, team).await?;
        self.authz
            .authorize(ctx, Action::OrgTeamsManage, Resource::Team(t.id))?;
        let app = match self
            .store
            .get_app(org_acc.id, &app.to_ascii_lowercase())
            .await
        {
            Ok(a) => a,
            Err(StoreError::NotFound) => {
                return Err(Error::new(
                    Code::AppNotFound,
                    format!("app {app:?} not found in {org}; teams hold only their org's apps"),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        self.index
            .applied(
                self.store
                    .grant_team_app(&ctx.audit, t.id, app.id, role, expires_at),
            )
            .await
            .map_err(|e| conflict(e, "grant"))?;
        Ok(())
    }

    pub async fn revoke_team_app(
        &self,
        ctx: &RequestCtx,
        org: &str,
        team: &str,
        app: &str,
    ) -> Result<()> {
        let (org_acc, t) = self.team(org, team).await?;
        self.authz
            .authorize(ctx, Action::OrgTeamsManage, Resource::Team(t.id))?;
        let app_rec = self
            .store
            .get_app(org_acc.id, &app.to_ascii_lowercase())
            .await
            .map_err(|_| {
                Error::new(Code::AppNotFound, format!("app {app:?} not found in {org}"))
            })?;
        match self
            .index
            .applied(self.store.revoke_team_app(&ctx.audit, t.id, app_rec.id))
            .await
        {
            Err(StoreError::NotFound) => {
                return Err(Error::new(
                    Code::NotFound,
                    format!("team {team} holds no grant on {app}"),
                ));
            }
            other => other?,
        }
        Ok(())
    }
}
