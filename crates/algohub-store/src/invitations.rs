//! `InvitationStore`: invitations to join an org, by account or by email.
//!
//! Design choice: state changes are conditional updates (`... WHERE status =
//! 'pending'`), so a concurrent second accept or decline finds no row to change and
//! reports `Conflict{"invitation_closed"}` instead of acting twice. Accepting also
//! adds the membership in the same transaction; creating one also queues its outbox
//! messages (the invitation email) in the same transaction.

use crate::SqlStore;
use crate::accounts::require_live;
use crate::db::{WriteTx, col, conflict, db_err, org_role};
use crate::members::{insert_membership, membership_in};
use crate::outbox::withdraw_closed_invitation_emails;
use algohub_core::audit::AuditContext;
use algohub_core::audit::EventKind;
use algohub_core::model::*;
use algohub_core::store::Constraint;
use algohub_core::store::Written;
use algohub_core::store::{InvitationStore, StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::any::AnyRow;

macro_rules! invitation_select {
    () => {
        "SELECT i.id, i.org_id, o.name AS org_name, i.invitee_user_id, u.name AS invitee_username, \
         i.invitee_email, i.role, i.status, i.invited_by, i.created_at, i.expires_at, i.decided_at, \
         i.accepted_tos_version FROM invitations i JOIN accounts o ON o.id = i.org_id \
         LEFT JOIN accounts u ON u.id = i.invitee_user_id"
    };
}

fn invitation_from_row(r: &AnyRow) -> StoreResult<Invitation> {
    Ok(Invitation {
        id: col(r, "id")?,
        org_id: col(r, "org_id")?,
        org_name: col(r, "org_name")?,
        invitee_user_id: col(r, "invitee_user_id")?,
        invitee_username: col(r, "invitee_username")?,
        invitee_email: col(r, "invitee_email")?,
        role: org_role(r, "role")?,
        status: InvitationStatus::parse(&col::<String>(r, "status")?),
        invited_by: col(r, "invited_by")?,
        created_at: col(r, "created_at")?,
        expires_at: col(r, "expires_at")?,
        decided_at: col(r, "decided_at")?,
        accepted_tos_version: col(r, "accepted_tos_version")?,
    })
}

async fn invitation_in(tx: &mut WriteTx<'_>, id: &str) -> StoreResult<Invitation> {
    let row = sqlx::query(concat!(invitation_select!(), " WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(db_err)?;
    invitation_from_row(&row.ok_or(StoreError::NotFound)?)
}

/// Queues outbox messages inside a write transaction.
pub(crate) async fn insert_outbox(
    tx: &mut WriteTx<'_>,
    messages: &[NewOutboxMessage],
    now: Millis,
) -> StoreResult<()> {
    for m in messages {
        // An in-app notification is delivered right here, in the same
        // transaction: the outbox keeps the message, marked delivered.
        let in_app = match (m.kind.strip_prefix("notification."), m.recipient_user_id) {
            (Some(kind), Some(user)) => {
                let text = notification_text(kind, &m.payload);
                crate::notifications::insert_notification(
                    tx, user, kind, &text, None, &m.payload, None, now,
                )
                .await?;
                true
            }
            _ => false,
        };
        sqlx::query(
            "INSERT INTO outbox (kind, recipient_user_id, recipient_email, payload, created_at, delivered_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&m.kind)
        .bind(m.recipient_user_id)
        .bind(&m.recipient_email)
        .bind(m.payload.to_string())
        .bind(now)
        .bind(in_app.then_some(now))
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

impl SqlStore {
    async fn invitations(&self, q: crate::db::AnyQuery<'_>) -> StoreResult<Vec<Invitation>> {
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(invitation_from_row).collect()
    }
}

#[async_trait]
impl InvitationStore for SqlStore {
    async fn create_invitation(
        &self,
        ctx: &AuditContext,
        inv: &NewInvitation,
        outbox: &[NewOutboxMessage],
    ) -> StoreResult<Written<Invitation>> {
        let mut tx = self.write(ctx).await?;
        require_live(&mut tx, inv.org_id, AccountKind::Org).await?;
        if let Some(user) = inv.invitee_user_id {
            require_live(&mut tx, user, AccountKind::User).await?;
        }
        sqlx::query(
            "INSERT INTO invitations (id, org_id, invitee_user_id, invitee_email, role, token_digest, status, \
             invited_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9)",
        )
        .bind(&inv.id)
        .bind(inv.org_id)
        .bind(inv.invitee_user_id)
        .bind(inv.invitee_email.as_ref().map(|e| e.to_lowercase()))
        .bind(inv.role as i64)
        .bind(&inv.token_digest)
        .bind(inv.invited_by)
        .bind(inv.created_at)
        .bind(inv.expires_at)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        insert_outbox(&mut tx, outbox, inv.created_at).await?;
        tx.event(
            EventKind::InvitationCreated,
            Some(inv.invited_by),
            &format!("invitation:{}", inv.id),
            serde_json::json!({ "org_id": inv.org_id, "role": inv.role.as_str() }),
        )
        .await?;
        let created = invitation_in(&mut tx, &inv.id).await?;
        tx.finish(created).await
    }

    async fn get_invitation(&self, id: &str) -> StoreResult<Invitation> {
        let mut found = self
            .invitations(
                sqlx::query(concat!(invitation_select!(), " WHERE i.id = $1")).bind(id.to_string()),
            )
            .await?;
        found.pop().ok_or(StoreError::NotFound)
    }

    async fn find_invitation_by_token(&self, digest: &str) -> StoreResult<Invitation> {
        let q = sqlx::query(concat!(invitation_select!(), " WHERE i.token_digest = $1"))
            .bind(digest.to_string());
        self.invitations(q).await?.pop().ok_or(StoreError::NotFound)
    }

    async fn list_pending_invitations(&self, org: AccountId) -> StoreResult<Vec<Invitation>> {
        self.invitations(
            sqlx::query(concat!(
                invitation_select!(),
                " WHERE i.org_id = $1 AND i.status = 'pending' ORDER BY i.created_at, i.id"
            ))
            .bind(org),
        )
        .await
    }

    async fn list_invitations_for_user(
        &self,
        user: AccountId,
        email: &str,
    ) -> StoreResult<Vec<Invitation>> {
        self.invitations(
            sqlx::query(concat!(
                invitation_select!(),
                " WHERE i.invitee_user_id = $1 OR i.invitee_email = $2 ORDER BY i.created_at DESC, i.id"
            ))
            .bind(user)
            .bind(email.to_lowercase()),
        )
        .await
    }

    async fn find_pending_invitation(
        &self,
        org: AccountId,
        user: Option<AccountId>,
        email: Option<&str>,
    ) -> StoreResult<Option<Invitation>> {
        if user.is_none() && email.is_none() {
            return Ok(None);
        }
        let q = sqlx::query(concat!(
            invitation_select!(),
            " WHERE i.org_id = $1 AND i.status = 'pending' AND (i.invitee_user_id = $2 OR i.invitee_email = $3) \
             ORDER BY i.created_at, i.id LIMIT 1"
        ))
        .bind(org)
        .bind(user)
        .bind(email.map(str::to_lowercase));
        Ok(self.invitations(q).await?.pop())
    }

    async fn accept_invitation(
        &self,
        ctx: &AuditContext,
        id: &str,
        user: AccountId,
        tos_version: i64,
        now: Millis,
    ) -> StoreResult<Written<Membership>> {
        let mut tx = self.write(ctx).await?;
        let inv = invitation_in(&mut tx, id).await?;
        if inv.status != InvitationStatus::Pending {
            return Err(conflict(Constraint::InvitationClosed));
        }
        if inv.expires_at <= now {
            return Err(conflict(Constraint::InvitationExpired));
        }
        require_live(&mut tx, inv.org_id, AccountKind::Org).await?;
        require_live(&mut tx, user, AccountKind::User).await?;
        let updated = sqlx::query(
            "UPDATE invitations SET status = 'accepted', decided_at = $1, accepted_tos_version = $2, accepted_at = $1, \
             invitee_user_id = COALESCE(invitee_user_id, $3) WHERE id = $4 AND status = 'pending'",
        )
        .bind(now)
        .bind(tos_version)
        .bind(user)
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(db_err)?;
        if updated.rows_affected() == 0 {
            return Err(conflict(Constraint::InvitationClosed));
        }
        insert_membership(&mut tx, inv.org_id, user, inv.role, None).await?;
        withdraw_closed_invitation_emails(&mut tx, now).await?;
        tx.event(
            EventKind::InvitationAccepted,
            Some(user),
            &format!("invitation:{id}"),
            serde_json::json!({ "org_id": inv.org_id, "tos_version": tos_version }),
        )
        .await?;
        let m = membership_in(&mut tx, inv.org_id, user)
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.finish(m).await
    }

    async fn close_invitation(
        &self,
        ctx: &AuditContext,
        id: &str,
        status: InvitationStatus,
        now: Millis,
    ) -> StoreResult<Written<Invitation>> {
        if matches!(
            status,
            InvitationStatus::Pending | InvitationStatus::Accepted
        ) {
            return Err(StoreError::Other(format!(
                "close_invitation cannot move an invitation to {}",
                status.as_str()
            )));
        }
        let kind = EventKind::invitation_closed(status)
            .ok_or_else(|| StoreError::Other("an invitation cannot be closed as pending".into()))?;
        let mut tx = self.write(ctx).await?;
        let inv = invitation_in(&mut tx, id).await?;
        let updated = sqlx::query("UPDATE invitations SET status = $1, decided_at = $2 WHERE id = $3 AND status = 'pending'")
            .bind(status.as_str())
            .bind(now)
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        if updated.rows_affected() == 0 {
            return Err(conflict(Constraint::InvitationClosed));
        }
        withdraw_closed_invitation_emails(&mut tx, now).await?;
        tx.event(
            kind,
            None,
            &format!("invitation:{id}"),
            serde_json::json!({ "org_id": inv.org_id }),
        )
        .await?;
        let closed = invitation_in(&mut tx, id).await?;
        tx.finish(closed).await
    }

    async fn expire_invitations(
        &self,
        ctx: &AuditContext,
        now: Millis,
    ) -> StoreResult<Written<u64>> {
        let mut tx = self.write(ctx).await?;
        let done = sqlx::query("UPDATE invitations SET status = 'expired', decided_at = $1 WHERE status = 'pending' AND expires_at <= $1")
            .bind(now)
            .execute(tx.conn())
            .await
            .map_err(db_err)?;
        withdraw_closed_invitation_emails(&mut tx, now).await?;
        tx.finish(done.rows_affected()).await
    }
}
