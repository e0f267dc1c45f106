//! Explain: why a principal may or may not do an action on a resource, and who
//! may do it. Principals and resources are named the way people write them:
//! `alice`, `key:<uuid>`; `cluster`, `user:alice`, `org:acme`, `account:acme`,
//! `app:acme/vision`, `team:acme/ml`.

use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{AccountKind, KeyKind};
use crate::policy::{Action, Explanation, Principal, PrincipalKind, Resource, Rule};
use crate::store::StoreError;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ExplainAnswer {
    pub principal: String,
    pub action: String,
    pub resource: String,
    #[serde(flatten)]
    pub explanation: Explanation,
}

#[derive(Debug, Clone, Serialize)]
pub struct WhoCanRow {
    pub username: String,
    pub rule: Rule,
}

super::service! {
    /// Who may do what: explains a decision and lists who can act on a resource.
    pub struct AccessService { store, policy, settings, authz, directory }
}

impl AccessService {
    async fn parse_principal(&self, raw: &str) -> Result<Principal> {
        if let Some(uuid) = raw.strip_prefix("key:") {
            let now = crate::model::now_millis();
            let key = match self.store.get_key_by_uuid(uuid).await {
                Ok(k) if k.revoked_at.is_none() && k.expires_at.is_none_or(|t| t > now) => k,
                Ok(_) | Err(StoreError::NotFound) => {
                    return Err(Error::new(
                        Code::KeyNotFound,
                        format!("no live key {uuid:?}"),
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            let kind = match (key.kind, key.org_id) {
                (KeyKind::User, _) => PrincipalKind::User { user: key.owner_id },
                (KeyKind::Org, _) => PrincipalKind::OrgKey { org: key.owner_id },
                (KeyKind::Member, Some(org)) => PrincipalKind::MemberKey {
                    user: key.owner_id,
                    org,
                },
                (KeyKind::Member, None) => return Err(Error::internal("member key without org")),
            };
            return Ok(Principal {
                kind,
                scopes: key.scopes,
                key: Some(key.id),
                session: None,
                // A key a cluster admin made for someone else acts as an
                // impersonation by that admin.
                impersonator: key.minted_reason.is_some().then_some(key.created_by),
                call: None,
            });
        }
        let name = raw.strip_prefix("user:").unwrap_or(raw);
        let acc = self.directory.user_account(name).await?;
        Ok(Principal::user(acc.id))
    }

    pub async fn parse_resource(&self, raw: &str) -> Result<Resource> {
        let bad = || {
            Error::invalid(format!(
                "invalid resource {raw:?}: use cluster, user:NAME, org:NAME, account:NAME, app:OWNER/NAME, algo:OWNER/NAME or team:ORG/NAME"
            ))
        };
        if raw == "cluster" {
            return Ok(Resource::Cluster);
        }
        let (kind, rest) = raw.split_once(':').ok_or_else(bad)?;
        match kind {
            "user" => Ok(Resource::User(self.directory.user_account(rest).await?.id)),
            "org" => Ok(Resource::Org(self.directory.org_account(rest).await?.id)),
            "account" => Ok(Resource::Account(self.directory.account(rest).await?.id)),
            "app" => {
                let (owner, name) = rest.split_once('/').ok_or_else(bad)?;
                let acc = self.directory.account(owner).await?;
                let app = self
                    .store
                    .get_app(acc.id, &name.to_ascii_lowercase())
                    .await
                    .map_err(|_| Error::new(Code::AppNotFound, format!("app {rest} not found")))?;
                Ok(Resource::App(app.id))
            }
            "algo" | "algorithm" => {
                let (owner, name) = rest.split_once('/').ok_or_else(bad)?;
                let acc = self.directory.account(owner).await?;
                let algo = self
                    .store
                    .get_algorithm(acc.id, &name.to_ascii_lowercase())
                    .await
                    .map_err(|_| {
                        Error::new(
                            Code::AlgorithmNotFound,
                            format!("No such algorithm: {rest}"),
                        )
                    })?;
                Ok(Resource::Algorithm(algo.id))
            }
            "team" => {
                let (org, name) = rest.split_once('/').ok_or_else(bad)?;
                let acc = self.directory.org_account(org).await?;
                let team = self
                    .store
                    .get_team(acc.id, &name.to_ascii_lowercase())
                    .await
                    .map_err(|_| {
                        Error::new(Code::TeamNotFound, format!("team {rest} not found"))
                    })?;
                Ok(Resource::Team(team.id))
            }
            _ => Err(bad()),
        }
    }

    fn parse_action(raw: &str) -> Result<Action> {
        Action::parse(raw).ok_or_else(|| {
            let names: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
            Error::invalid(format!(
                "unknown action {raw:?}; known actions: {}",
                names.join(", ")
            ))
        })
    }

    /// Who may ask: cluster admins, anyone about themself, and org admins about
    /// resources of their org.
    async fn may_explain(
        &self,
        ctx: &RequestCtx,
        subject: Option<&Principal>,
        resource: Resource,
    ) -> Result<()> {
        if self
            .authz
            .can(ctx, Action::AdminUsersRead, Resource::Cluster)
        {
            return Ok(());
        }
        if let Some(s) = subject
            && s.user_id().is_some()
            && s.user_id() == ctx.user_id()
        {
            return Ok(());
        }
        let home = match resource {
            Resource::Org(o) | Resource::Account(o) => Some(o),
            Resource::App(a) => self.store.get_app_by_id(a).await.ok().map(|a| a.owner_id),
            Resource::Team(t) => self.policy.team_org(t),
            Resource::Algorithm(a) => self
                .store
                .get_algorithm_by_id(a)
                .await
                .ok()
                .map(|a| a.owner_id),
            Resource::User(_) | Resource::Cluster => None,
        };
        if let Some(h) = home
            && self.policy.is_org(h)
            && self
                .authz
                .can(ctx, Action::OrgMembersManage, Resource::Org(h))
        {
            return Ok(());
        }
        Err(Error::forbidden(
            "explain is for cluster admins, org admins about their org, and anyone about themself",
        ))
    }

    /// For callers other than cluster admins, a name that does not resolve and a
    /// resource they may not see get the same answer, so explain cannot be used
    /// to learn what exists.
    async fn hidden_unless_admin<T: ResourceOf>(
        &self,
        ctx: &RequestCtx,
        resolve: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let admin = self
            .authz
            .can(ctx, Action::AdminUsersRead, Resource::Cluster);
        let hidden = || Error::new(Code::NotFound, "not found, or not visible to you");
        match resolve.await {
            Ok(v) if admin || self.visible(ctx, v.resource()) => Ok(v),
            Ok(_) => Err(hidden()),
            Err(e) if admin || e.kind() != crate::error::ErrorKind::NotFound => Err(e),
            Err(_) => Err(hidden()),
        }
    }

    /// Whether the caller may know this resource exists.
    fn visible(&self, ctx: &RequestCtx, r: Resource) -> bool {
        match r {
            Resource::Cluster | Resource::Org(_) | Resource::Account(_) => true,
            Resource::User(u) => ctx.user_id() == Some(u),
            Resource::App(_) => self.authz.can(ctx, Action::AppRead, r),
            Resource::Algorithm(_) => self.authz.can(ctx, Action::AlgoRead, r),
            Resource::Team(_) => self.authz.can(ctx, Action::OrgTeamsRead, r),
        }
    }

    /// An action `explain` and `who_can` answer for. With sudo users
    /// disabled the sudo-call action is refused, as sudo calls are, so that
    /// no answer names the role or lists who holds it.
    fn explained_action(&self, raw: &str) -> Result<Action> {
        let action = Self::parse_action(raw)?;
        if action == Action::AlgoCallSudo && !self.settings.sudo_users_enabled {
            return Err(Error::new(
                Code::SudoDisabled,
                "sudo calls are disabled on this cluster, so there is no decision about them to explain",
            ));
        }
        Ok(action)
    }

    pub async fn explain(
        &self,
        ctx: &RequestCtx,
        principal: &str,
        action: &str,
        resource: &str,
    ) -> Result<ExplainAnswer> {
        let action_v = self.explained_action(action)?;
        let (subject, res) = self
            .hidden_unless_admin(ctx, async {
                let subject = self.parse_principal(principal).await?;
                let res = self.parse_resource(resource).await?;
                Ok((subject, res))
            })
            .await?;
        self.may_explain(ctx, Some(&subject), res).await?;
        // Inside an impersonation session, the session's own user is
        // explained as the session acts: with the impersonation's limits.
        let mut subject = subject;
        if ctx.principal.impersonator.is_some() && subject.kind == ctx.principal.kind {
            subject.impersonator = ctx.principal.impersonator;
            subject.session = ctx.principal.session;
        }
        Ok(ExplainAnswer {
            principal: principal.to_string(),
            action: action.to_string(),
            resource: resource.to_string(),
            explanation: self.policy.explain(&subject, action_v, res),
        })
    }

    pub async fn who_can(
        &self,
        ctx: &RequestCtx,
        action: &str,
        resource: &str,
    ) -> Result<Vec<WhoCanRow>> {
        let action_v = self.explained_action(action)?;
        let res = self
            .hidden_unless_admin(ctx, async { self.parse_resource(resource).await })
            .await?;
        self.may_explain(ctx, None, res).await?;
        let mut rows = Vec::new();
        for (user, rule) in self.policy.who_can(action_v, res) {
            let acc = self.store.get_account(user).await?;
            if acc.kind == AccountKind::User {
                rows.push(WhoCanRow {
                    username: acc.name,
                    rule,
                });
            }
        }
        rows.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(rows)
    }
}

/// Something that names a resource (for the visibility check in explain).
trait ResourceOf {
    fn resource(&self) -> Resource;
}

impl ResourceOf for Resource {
    fn resource(&self) -> Resource {
        *self
    }
}

impl ResourceOf for (Principal, Resource) {
    fn resource(&self) -> Resource {
        self.1
    }
}
