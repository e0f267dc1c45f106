//! Notifications: cluster admins message one or several users; every user
//! reads their own (newest first), counts the unread and marks them read.

use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{AccountId, Millis, Notification};
use crate::policy::{Action, Resource};

/// The longest message text, in characters.
pub const MAX_NOTIFICATION_CHARS: usize = 2000;
/// Recipients of one message at most.
pub const MAX_RECIPIENTS: usize = 1000;

super::service! {
    /// Notifications: admins message users; users read theirs.
    pub struct NotificationService { store, authz, directory, index }
}

impl NotificationService {
    /// Sends `text` (and an optional link) to every username in the
    /// comma-separated `usernames`. Every name is checked first: unknown ones
    /// are all reported and nothing is sent.
    pub async fn send_notification(
        &self,
        ctx: &RequestCtx,
        usernames: &str,
        text: &str,
        url: Option<&str>,
    ) -> Result<Vec<(String, Notification)>> {
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        let sender = super::require_user(ctx)?;
        let text = text.trim();
        if text.is_empty() || text.chars().count() > MAX_NOTIFICATION_CHARS {
            return Err(Error::invalid(format!(
                "text must be 1 to {MAX_NOTIFICATION_CHARS} characters"
            )));
        }
        let url = url.map(str::trim).filter(|u| !u.is_empty());
        if let Some(u) = url {
            let ok = (u.starts_with("https://") || u.starts_with("http://") || u.starts_with('/'))
                && u.len() <= 2000
                && !u.chars().any(char::is_whitespace);
            if !ok {
                return Err(Error::invalid(format!(
                    "invalid url {u:?}: use an http(s) address or a path starting with /"
                )));
            }
        }
        let mut names: Vec<String> = usernames
            .split(',')
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err(Error::new(
                Code::MissingField,
                "usernames must name at least one user",
            ));
        }
        if names.len() > MAX_RECIPIENTS {
            return Err(Error::invalid(format!(
                "at most {MAX_RECIPIENTS} recipients per message"
            )));
        }
        let mut ids = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for n in &names {
            match self.directory.user_account(n).await {
                Ok(a) => ids.push(a.id),
                Err(e) if e.code == Code::UserNotFound => unknown.push(n.clone()),
                Err(e) => return Err(e),
            }
        }
        if !unknown.is_empty() {
            return Err(Error::new(
                Code::UserNotFound,
                format!("no such users: {}; nothing was sent", unknown.join(", ")),
            ));
        }
        let sent = self
            .index
            .applied(
                self.store
                    .send_notifications(&ctx.audit, sender, &ids, text, url),
            )
            .await?;
        Ok(names.into_iter().zip(sent).collect())
    }

    /// The user whose notifications `caller` may read and mark (themself, or
    /// a cluster admin); `name` may be the username or the user's UUID.
    async fn notification_owner(&self, ctx: &RequestCtx, name: &str) -> Result<AccountId> {
        let id = self.directory.user_account_by_uuid_or_name(name).await?.id;
        self.authz
            .authorize(ctx, Action::UserRead, Resource::User(id))?;
        Ok(id)
    }

    pub async fn list_notifications(
        &self,
        ctx: &RequestCtx,
        user: &str,
        before_id: Option<i64>,
        since: Option<Millis>,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let id = self.notification_owner(ctx, user).await?;
        Ok(self
            .store
            .list_notifications(id, before_id, since, limit)
            .await?)
    }

    pub async fn unread_notifications(&self, ctx: &RequestCtx, user: &str) -> Result<i64> {
        let id = self.notification_owner(ctx, user).await?;
        Ok(self.store.count_unread_notifications(id).await?)
    }

    /// Marks one notification (by id) or all of them read; returns how many changed.
    pub async fn mark_notifications_read(
        &self,
        ctx: &RequestCtx,
        user: &str,
        id: Option<i64>,
    ) -> Result<u64> {
        if ctx.principal.impersonator.is_some() {
            return Err(Error::forbidden(
                "notifications are left for the user to read while you impersonate them",
            ));
        }
        let owner = self.notification_owner(ctx, user).await?;
        self.store
            .mark_notifications_read(owner, id, crate::model::now_millis())
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound => {
                    Error::new(Code::NotFound, "no such notification")
                }
                other => other.into(),
            })
    }
}
