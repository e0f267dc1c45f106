//! Cluster administration of accounts (the Users page): search, export, and
//! the per-account role and suspension actions. Cluster admins only; every
//! change records an event naming the admin.

use crate::RequestCtx;
use crate::error::{Code, Error, Result};
use crate::model::{AccountStatus, MillisWriter, Page, User};
use crate::policy::{Action, Resource};
use crate::store::{ExportRender, ExportUser, MakeExportRender};

/// The refusal when a change would leave no active cluster admin.
pub(crate) fn last_admin(e: crate::store::StoreError) -> Error {
    match e {
        crate::store::StoreError::Conflict {
            constraint: crate::store::Constraint::LastClusterAdmin,
        } => Error::new(
            Code::Conflict,
            "this is the only active cluster admin; add another admin first",
        ),
        other => other.into(),
    }
}

/// A running account export.
pub struct UserExport {
    /// CSV chunks, the header first; an `Err` item ends a failed export.
    pub chunks: tokio::sync::mpsc::Receiver<std::result::Result<Vec<u8>, String>>,
    /// How many accounts were exported, once the export ends.
    pub rows: tokio::task::JoinHandle<u64>,
}

/// Export chunks queued between the store and the reader at most.
const EXPORT_QUEUE: usize = 4;

/// A cell as it is safe to open in a spreadsheet: text that would start a
/// formula (`= + - @`, tab, carriage return) gets a leading apostrophe.
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// The export's header row; the sudo role only where it exists.
fn csv_header(sudo_enabled: bool) -> Vec<u8> {
    let mut h = vec![
        "id",
        "username",
        "email",
        "fullname",
        "status",
        "cluster_admin",
    ];
    if sudo_enabled {
        h.push("sudo_user");
    }
    h.extend(["work_limit", "created_at", "last_login_at"]);
    format!("{}\n", h.join(",")).into_bytes()
}

/// Renders accounts as CSV rows, straight into the chunk. The two free-text
/// fields (email, full name) go through csv-core, which quotes them where
/// needed, after the spreadsheet-safety prefix; every other field is an id, a
/// name, a word, a number or a timestamp that never needs quoting.
fn csv_row_writer(sudo_enabled: bool) -> ExportRender {
    let mut w = csv_core::Writer::new();
    let mut times = MillisWriter::default();
    Box::new(move |u: &ExportUser<'_>, out: &mut Vec<u8>| {
        let flag = |b: bool| if b { &b"true,"[..] } else { &b"false,"[..] };
        out.extend_from_slice(u.uuid.as_bytes());
        out.push(b',');
        out.extend_from_slice(u.username.as_bytes());
        out.push(b',');
        for text in [cell(u.email), cell(u.full_name)] {
            // Room for quotes, every byte doubled and the delimiter.
            let start = out.len();
            out.resize(start + 2 * text.len() + 3, 0);
            let mut at = start + w.field(text.as_bytes(), &mut out[start..]).2;
            at += w.delimiter(&mut out[at..]).1;
            out.truncate(at);
        }
        out.extend_from_slice(u.status.as_bytes());
        out.push(b',');
        out.extend_from_slice(flag(u.cluster_admin));
        if sudo_enabled {
            out.extend_from_slice(flag(u.sudo_user));
        }
        if let Some(l) = u.work_limit {
            out.extend_from_slice(l.to_string().as_bytes());
        }
        out.push(b',');
        times.push(out, u.created_at);
        out.push(b',');
        if let Some(t) = u.last_login_at {
            times.push(out, t);
        }
        out.push(b'\n');
    })
}

super::service! {
    /// What cluster admins do to accounts: search, export, roles, suspension, invite codes.
    pub struct AdminService { store, policy, settings, authz, directory, index }
}

impl AdminService {
    /// Users whose username or email starts with `query` (case-insensitive),
    /// ordered by username, paged with `marker` (the last username seen).
    pub async fn search_users(
        &self,
        ctx: &RequestCtx,
        query: &str,
        page: &Page,
    ) -> Result<Vec<User>> {
        self.authz
            .authorize(ctx, Action::AdminUsersRead, Resource::Cluster)?;
        let prefix = query.trim().to_ascii_lowercase();
        if prefix.chars().count() > 254 {
            return Err(Error::invalid("search is at most 254 characters"));
        }
        if prefix.is_empty() {
            return Ok(self.store.list_users(page).await?);
        }
        Ok(self.store.search_users(&prefix, page).await?)
    }

    /// Every account as CSV, streamed: chunks arrive on `chunks` as the
    /// store reads them (constant memory). A failure midway arrives as an
    /// `Err` item, and the stream ends. `rows` tells how many accounts went out.
    /// The export is on record (`users.export`) before it starts.
    pub async fn export_users_csv(&self, ctx: &RequestCtx) -> Result<UserExport> {
        self.authz
            .authorize(ctx, Action::AdminUsersRead, Resource::Cluster)?;
        let actor = ctx.user_id().unwrap_or_else(|| ctx.account_id());
        self.store
            .record_audit(
                &ctx.audit,
                crate::audit::EventKind::UsersExport,
                Some(actor),
                "cluster",
                serde_json::json!({"format": "csv"}),
                "ok",
            )
            .await?;
        Ok(self.export_users_csv_unchecked())
    }

    /// For the CLI export (direct database access, no ctx): on record as
    /// `users.export` with no actor, `via: cli`.
    pub async fn export_users_csv_cli(&self) -> Result<UserExport> {
        self.store
            .record_audit(
                &crate::audit::AuditContext::cli(),
                crate::audit::EventKind::UsersExport,
                None,
                "cluster",
                serde_json::json!({"format": "csv", "via": "cli"}),
                "ok",
            )
            .await?;
        Ok(self.export_users_csv_unchecked())
    }

    fn export_users_csv_unchecked(&self) -> UserExport {
        let (tx, rx) = tokio::sync::mpsc::channel(EXPORT_QUEUE);
        let sudo = self.settings.sudo_users_enabled;
        let store = self.store.clone();
        let rows = tokio::spawn(async move {
            if tx.send(Ok(csv_header(sudo))).await.is_err() {
                return 0;
            }
            let render: MakeExportRender = std::sync::Arc::new(move || csv_row_writer(sudo));
            match store.export_users(render, tx.clone()).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "the account export failed midway");
                    let _ = tx.send(Err(format!("the export failed: {e}"))).await;
                    0
                }
            }
        });
        UserExport { chunks: rx, rows }
    }

    async fn admin_target(
        &self,
        ctx: &RequestCtx,
        username: &str,
    ) -> Result<(crate::model::AccountId, crate::model::AccountId)> {
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        let actor = super::require_user(ctx)?;
        let target = self.directory.user_account(username).await?;
        Ok((actor, target.id))
    }

    /// Adds a user to (or removes them from) the cluster admins. Admins cannot
    /// remove themselves (another admin must), and the store refuses to remove
    /// the last active one, so a cluster keeps one.
    pub async fn set_cluster_admin(
        &self,
        ctx: &RequestCtx,
        username: &str,
        admin: bool,
    ) -> Result<User> {
        let (actor, target) = self.admin_target(ctx, username).await?;
        if !admin && actor == target {
            return Err(Error::new(
                Code::Conflict,
                "you cannot remove yourself from the cluster admins; ask another admin",
            ));
        }
        let user = self
            .index
            .applied(
                self.store
                    .set_user_flags(&ctx.audit, Some(actor), target, Some(admin), None),
            )
            .await
            .map_err(last_admin)?;
        Ok(user)
    }

    /// Adds a user to (or removes them from) the sudo users; refused when the
    /// role is disabled on this cluster.
    pub async fn set_sudo_user(
        &self,
        ctx: &RequestCtx,
        username: &str,
        sudo: bool,
    ) -> Result<User> {
        if !self.settings.sudo_users_enabled {
            return Err(Error::new(
                Code::SudoDisabled,
                "the sudo user role is disabled on this cluster",
            ));
        }
        let (actor, target) = self.admin_target(ctx, username).await?;
        let user = self
            .index
            .applied(
                self.store
                    .set_user_flags(&ctx.audit, Some(actor), target, None, Some(sudo)),
            )
            .await?;
        Ok(user)
    }

    /// Suspends or reinstates a user: a suspended user's keys answer 401 on
    /// every node within the policy poll interval (at once on this one).
    pub async fn set_suspended(
        &self,
        ctx: &RequestCtx,
        username: &str,
        suspended: bool,
    ) -> Result<User> {
        let (actor, target) = self.admin_target(ctx, username).await?;
        if suspended && actor == target {
            return Err(Error::new(Code::Conflict, "you cannot suspend yourself"));
        }
        let status = if suspended {
            AccountStatus::Suspended
        } else {
            AccountStatus::Active
        };
        self.index
            .applied(
                self.store
                    .set_account_status(&ctx.audit, actor, target, status),
            )
            .await
            .map_err(last_admin)?;
        if suspended {
            self.notice_orgs_left_without_admin(ctx, actor, target, username)
                .await;
        }
        Ok(self.store.get_user(target).await?)
    }

    /// After a suspension: the orgs whose last active admin it was have
    /// their keys suspended (policy) until a cluster admin names a new
    /// admin; every active cluster admin is told which (best effort: the
    /// suspension stands whatever happens here).
    async fn notice_orgs_left_without_admin(
        &self,
        ctx: &RequestCtx,
        actor: crate::model::AccountId,
        target: crate::model::AccountId,
        username: &str,
    ) {
        let orphaned: Vec<_> = self
            .policy
            .user_orgs(target)
            .into_iter()
            .filter(|org| {
                self.policy.org_role(target, *org) == Some(crate::roles::OrgRole::Admin)
                    && !self.policy.org_has_active_admin(*org)
            })
            .collect();
        let admins = self.policy.active_cluster_admins();
        for org in orphaned {
            let Ok(account) = self.store.get_account(org).await else {
                continue;
            };
            let text = format!(
                "{} has no active admin since {username} was suspended: its organization keys \
                 are suspended until a cluster admin names a new admin (or reinstates {username})",
                account.name
            );
            let url = format!("/v1/organizations/{}/members", account.name);
            let sent = self
                .index
                .applied(self.store.send_notifications(
                    &ctx.audit,
                    actor,
                    &admins,
                    &text,
                    Some(&url),
                ))
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, org = %account.name, "could not tell the cluster admins that an org has no active admin");
            }
        }
    }
}

impl AdminService {
    /// Creates a sign-up invite code (cluster admins): 4 to 64 characters of
    /// letters, digits, `-` and `_`; credits of 0 or more; an optional expiry
    /// in the future.
    pub async fn create_invite_code(
        &self,
        ctx: &RequestCtx,
        code: &str,
        signup_credits: i64,
        comments: &str,
        expires_at: Option<&str>,
    ) -> Result<()> {
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        let actor = super::require_user(ctx)?;
        let code = code.trim();
        if !(4..=64).contains(&code.len())
            || !code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(Error::invalid(
                "inviteCode must be 4 to 64 letters, digits, - or _",
            ));
        }
        if signup_credits < 0 {
            return Err(Error::invalid("signupCredits must be 0 or more"));
        }
        if comments.chars().count() > 1000 {
            return Err(Error::invalid("comments are at most 1000 characters"));
        }
        let expires_at = super::parse_expiry(expires_at)?;
        self.index
            .applied(self.store.create_invite_code(
                &ctx.audit,
                actor,
                code,
                signup_credits,
                comments,
                expires_at,
            ))
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict { .. } => Error::new(
                    Code::Conflict,
                    format!("invite code {code:?} already exists"),
                ),
                other => other.into(),
            })
    }

    pub async fn list_invite_codes(
        &self,
        ctx: &RequestCtx,
    ) -> Result<Vec<crate::model::InviteCode>> {
        self.authz
            .authorize(ctx, Action::AdminUsersRead, Resource::Cluster)?;
        Ok(self.store.list_invite_codes().await?)
    }

    pub async fn delete_invite_code(&self, ctx: &RequestCtx, code: &str) -> Result<()> {
        self.authz
            .authorize(ctx, Action::AdminUsersManage, Resource::Cluster)?;
        let actor = super::require_user(ctx)?;
        self.index
            .applied(self.store.delete_invite_code(&ctx.audit, actor, code))
            .await
            .map_err(|e| match e {
                crate::store::StoreError::NotFound => {
                    Error::new(Code::NotFound, format!("invite code {code:?} not found"))
                }
                other => other.into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_quote_free_text_and_defuse_formulas() {
        let mut render = csv_row_writer(true);
        let mut out = Vec::new();
        let mut u = ExportUser {
            uuid: "u-1",
            username: "ann",
            email: "=cmd@example.com",
            full_name: "Ann \"A\", Smith",
            status: "active",
            cluster_admin: true,
            sudo_user: false,
            work_limit: Some(5),
            created_at: 0,
            last_login_at: None,
        };
        render(&u, &mut out);
        u.full_name = "plain";
        u.email = "ann@example.com";
        u.work_limit = None;
        u.last_login_at = Some(1_000);
        render(&u, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "u-1,ann,'=cmd@example.com,\"Ann \"\"A\"\", Smith\",active,true,false,5,1970-01-01T00:00:00.000Z,\n\
             u-1,ann,ann@example.com,plain,active,true,false,,1970-01-01T00:00:00.000Z,1970-01-01T00:00:01.000Z\n"
        );
        let mut render = csv_row_writer(false);
        let mut out = Vec::new();
        render(&u, &mut out);
        assert_eq!(
            out.iter().filter(|b| **b == b',').count(),
            8,
            "no sudo column"
        );
        assert_eq!(
            String::from_utf8(csv_header(false))
                .unwrap()
                .matches(',')
                .count(),
            8
        );
    }
}
