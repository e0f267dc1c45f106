//! Versions: publish the newest build with the next semantic version, list
//! builds as versions (published or not), and org publish approval.
//!
//! Approval: publishing an algorithm owned by an org that requires approval
//! creates a *pending* version; an org admin approves or rejects it with a
//! reason. The approval is bound to the artifact digest (the store refuses to
//! approve if the version's digest is not the one reviewed); nobody approves
//! their own version unless the org allows it.

use super::{AlgorithmService, conflict};
use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{
    Algorithm, Build, NewOutboxMessage, NewVersion, SemVer, Version, VersionStatus,
};
use crate::policy::{Action, Resource};
use crate::roles::OrgRole;
use crate::store::StoreError;
use serde_json::{Value, json};

#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    pub version_type: Option<String>,
    pub release_notes: Option<String>,
    pub sample_input: Option<String>,
    pub sample_output: Option<String>,
    pub details: Value,
    pub settings: Value,
}

/// A build with the version published from it, if any.
#[derive(Debug, Clone)]
pub struct VersionEntry {
    pub build: Build,
    pub version: Option<Version>,
}

pub(crate) fn bump(previous: Option<SemVer>, version_type: &str) -> Result<SemVer> {
    let p = previous.unwrap_or(SemVer {
        major: 0,
        minor: 0,
        patch: 0,
    });
    Ok(match version_type {
        "major" => SemVer {
            major: p.major + 1,
            minor: 0,
            patch: 0,
        },
        "minor" => SemVer {
            major: p.major,
            minor: p.minor + 1,
            patch: 0,
        },
        "revision" | "patch" => SemVer {
            major: p.major,
            minor: p.minor,
            patch: p.patch + 1,
        },
        other => {
            return Err(Error::invalid(format!(
                "unknown version_type {other:?}: use major, minor, revision or patch"
            )));
        }
    })
}

impl AlgorithmService {
    /// Publishes the newest unpublished build. Refused when there is none
    /// (publish again after a new compile).
    pub async fn publish(
        &self,
        ctx: &RequestCtx,
        algo: &Algorithm,
        req: PublishRequest,
    ) -> Result<Version> {
        self.authz
            .authorize(ctx, Action::AlgoPublish, Resource::Algorithm(algo.id))?;
        let version_type = req
            .version_type
            .as_deref()
            .unwrap_or("minor")
            .to_ascii_lowercase();
        let details = super::algorithm_settings::check_details(&algo.details, &req.details, false)?;
        let settings = super::algorithm_settings::check_settings(
            &algo.settings,
            &req.settings,
            false,
            &self.settings,
        )?;
        let newest = self.store.list_builds(algo.id, 1, None).await?;
        let build = match newest.into_iter().next() {
            Some(b) if b.semantic_version.is_none() => b,
            _ => {
                return Err(Error::new(
                    Code::NothingToPublish,
                    "nothing to publish: the newest build is already published; compile first",
                ));
            }
        };
        let previous = self
            .store
            .list_versions(algo.id)
            .await?
            .first()
            .map(|v| v.semver);
        let semver = bump(previous, &version_type)?;
        let callability = settings
            .algorithm_callability
            .unwrap_or(crate::model::Callability::Private);
        let new = NewVersion {
            uuid: uuid::Uuid::new_v4().to_string(),
            algorithm_id: algo.id,
            build_id: build.id,
            semver,
            callability,
            release_notes: req.release_notes.unwrap_or_default(),
            sample_input: req.sample_input,
            sample_output: req.sample_output,
            settings: settings.clone(),
            published_by: self.responsible_person(ctx).await?,
        };
        let version = self
            .index
            .applied(self.store.create_version(&ctx.audit, &new))
            .await
            .map_err(|e| match e {
                StoreError::Conflict { .. } => Error::new(
                    Code::NothingToPublish,
                    "nothing to publish: the newest build is already published; compile first",
                ),
                other => other.into(),
            })?;
        self.index
            .applied(
                self.store
                    .update_algorithm(&ctx.audit, algo.id, &details, &settings, None),
            )
            .await?;
        // Pending or published was decided in the store, by the owner the
        // algorithm had then: an app transfer may have moved it into an org
        // since `algo` was read, and that org's admins are the ones to ask.
        if version.status == VersionStatus::Pending {
            let current = self.store.get_algorithm_by_id(algo.id).await?;
            notify_org_admins(&*self.store, &current, &version).await?;
        }
        Ok(version)
    }

    /// The person accountable for an act: the user, or for an org key the user
    /// who created the key (so an org key cannot launder self-approval).
    async fn responsible_person(&self, ctx: &RequestCtx) -> Result<crate::model::AccountId> {
        if let Some(user) = ctx.user_id() {
            return Ok(user);
        }
        match ctx.principal.key {
            Some(key) => Ok(self.store.get_key(key).await?.created_by),
            None => Ok(ctx.account_id()),
        }
    }

    /// Every build, newest first, with its version if published.
    pub async fn list_versions(
        &self,
        ctx: &RequestCtx,
        algo: &Algorithm,
    ) -> Result<Vec<VersionEntry>> {
        self.authz
            .authorize(ctx, Action::AlgoRead, Resource::Algorithm(algo.id))?;
        let versions = self.store.list_versions(algo.id).await?;
        let builds = self.all_builds(algo.id).await?;
        Ok(builds
            .into_iter()
            .map(|b| {
                let version = versions.iter().find(|v| v.build_id == b.id).cloned();
                VersionEntry { build: b, version }
            })
            .collect())
    }

    /// The newest build with this version hash, with its version if any.
    pub async fn get_version_by_hash(
        &self,
        ctx: &RequestCtx,
        algo: &Algorithm,
        hash: &str,
    ) -> Result<VersionEntry> {
        let entries = self.list_versions(ctx, algo).await?;
        entries
            .into_iter()
            .find(|e| e.build.commit_sha == hash)
            .ok_or_else(|| {
                Error::new(
                    Code::VersionNotFound,
                    format!("no version with hash {hash:?}"),
                )
            })
    }

    /// Approves or rejects a pending version (org admins; not one's own unless allowed).
    pub async fn decide_version(
        &self,
        ctx: &RequestCtx,
        algo: &Algorithm,
        semver: &str,
        approve: bool,
        reason: &str,
    ) -> Result<Version> {
        self.authz
            .authorize(ctx, Action::VersionApprove, Resource::Algorithm(algo.id))?;
        if reason.trim().is_empty() && !approve {
            return Err(Error::new(
                Code::MissingField,
                "a reason is required to reject a version",
            ));
        }
        let version = self
            .store
            .list_versions(algo.id)
            .await?
            .into_iter()
            .find(|v| v.semver.to_string() == semver)
            .ok_or_else(|| {
                Error::new(
                    Code::VersionNotFound,
                    format!("no version {semver} of {}/{}", algo.owner_name, algo.name),
                )
            })?;
        if version.status != VersionStatus::Pending {
            return Err(Error::new(
                Code::NotPending,
                format!(
                    "version {semver} is {}, not pending",
                    version.status.as_str()
                ),
            ));
        }
        let org = self.store.get_org(algo.owner_id).await?;
        let me = self.responsible_person(ctx).await?;
        let build_author = self
            .all_builds(algo.id)
            .await?
            .into_iter()
            .find(|b| b.id == version.build_id)
            .map(|b| b.created_by);
        let own = me == version.published_by || Some(me) == build_author;
        if own && !org.allow_self_approval {
            return Err(Error::new(
                Code::SelfApproval,
                "you cannot approve or reject your own version in this organization",
            ));
        }
        let decided = self
            .index
            .applied(self.store.decide_version(
                &ctx.audit,
                version.id,
                approve,
                ctx.account_id(),
                reason,
                &version.artifact_digest,
            ))
            .await
            .map_err(|e| conflict(e, "version"))?;
        self.store
            .enqueue(&[NewOutboxMessage {
                kind: if approve { "notification.version_approved".into() } else { "notification.version_rejected".into() },
                recipient_user_id: Some(version.published_by),
                recipient_email: None,
                payload: json!({"algorithm": format!("{}/{}", algo.owner_name, algo.name), "version": semver, "reason": reason}),
            }])
            .await?;
        Ok(decided)
    }

    /// Pending versions of an org's algorithms (org admins).
    pub async fn list_pending_versions(
        &self,
        ctx: &RequestCtx,
        org: &str,
    ) -> Result<Vec<(Algorithm, Version)>> {
        let org_acc = self.directory.org_account(org).await?;
        self.authz
            .authorize(ctx, Action::VersionApprove, Resource::Org(org_acc.id))?;
        Ok(self.store.list_pending_versions(org_acc.id).await?)
    }
}

/// Tells the org's admins that a version waits for approval (through the outbox).
pub(crate) async fn notify_org_admins(
    store: &dyn crate::store::Store,
    algo: &Algorithm,
    version: &Version,
) -> Result<()> {
    let page = crate::model::Page {
        limit: 1000,
        marker: None,
    };
    let admins: Vec<_> = store
        .list_members(algo.owner_id, &page)
        .await?
        .into_iter()
        .filter(|m| m.role == OrgRole::Admin)
        .collect();
    let payload = json!({"algorithm": format!("{}/{}", algo.owner_name, algo.name), "algorithm_id": algo.uuid, "version": version.semver.to_string()});
    let messages: Vec<NewOutboxMessage> = admins
        .iter()
        .map(|m| NewOutboxMessage {
            kind: "notification.approval_requested".into(),
            recipient_user_id: Some(m.user_id),
            recipient_email: None,
            payload: payload.clone(),
        })
        .collect();
    store.enqueue(&messages).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semantic_versions_bump() {
        let v = |major, minor, patch| SemVer {
            major,
            minor,
            patch,
        };
        assert_eq!(bump(None, "minor").unwrap(), v(0, 1, 0));
        assert_eq!(bump(None, "major").unwrap(), v(1, 0, 0));
        assert_eq!(bump(Some(v(1, 2, 3)), "revision").unwrap(), v(1, 2, 4));
        assert_eq!(bump(Some(v(1, 2, 3)), "patch").unwrap(), v(1, 2, 4));
        assert_eq!(bump(Some(v(1, 2, 3)), "minor").unwrap(), v(1, 3, 0));
        assert_eq!(bump(Some(v(1, 2, 3)), "major").unwrap(), v(2, 0, 0));
        assert!(bump(None, "huge").is_err());
    }
}
