//! Email delivery from the outbox: invitation emails (to an account's
//! address, or to an invited address with its single-use token).
//!
//! Design: the message is queued in the outbox in the same transaction as the
//! invitation, so none is lost; a node claims a batch for a while (a claim
//! that lapses lets another node take it), sends each through a `Mailer`, and
//! marks it delivered, which also drops the token from the stored payload. A
//! server that refuses a message for good (a 5xx answer) ends its delivery;
//! one that is down or answers 4xx gets it again on the next round.

use super::InvitationService;
use crate::error::Result;
use crate::model::{InvitationStatus, OutboxMessage, format_millis, now_millis};
use async_trait::async_trait;

/// An email ready to send (plain text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Why a message was not sent.
#[derive(Debug, Clone)]
pub struct MailError {
    /// The server refused it for good: do not try again.
    pub permanent: bool,
    pub message: String,
}

/// Sends email (SMTP in service).
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &Email) -> std::result::Result<(), MailError>;
}

/// How long a node holds the messages it claimed.
const CLAIM_MILLIS: i64 = 60_000;
/// Messages claimed per round.
const BATCH: i64 = 50;

/// The email an outbox message stands for (`None` for other kinds).
pub fn render_email(m: &OutboxMessage, base_url: &str) -> Option<Email> {
    let to = m.recipient_email.clone()?;
    let p = &m.payload;
    let text = |k: &str| p[k].as_str().unwrap_or_default().to_string();
    let (org, label, role, id) = (
        text("org"),
        text("org_label"),
        text("role"),
        text("invitation_id"),
    );
    let expires = p["expires_at"]
        .as_i64()
        .map(format_millis)
        .unwrap_or_default();
    let label = if label.is_empty() { org.clone() } else { label };
    let subject = format!("You are invited to join {label} on algohub");
    let body = match m.kind.as_str() {
        "email.invitation" => format!(
            "You are invited to join the organization {label} ({org}) on algohub as {role}.\n\n\
             To accept, open your invitations in algohub, or send with your API key:\n\
             \x20 POST {base_url}/v1/invitations/{id}/accept\n\n\
             The invitation expires at {expires}.\n"
        ),
        "email.invitation_token" => format!(
            "You are invited to join the organization {label} ({org}) on algohub as {role}.\n\n\
             To accept, sign in to algohub (or create an account) and send, with your API key:\n\
             \x20 POST {base_url}/v1/invitation-tokens/accept\n\
             \x20 {{\"token\": \"{}\"}}\n\n\
             The token works once and expires at {expires}. If you did not expect this \
             invitation, ignore this email.\n",
            text("token")
        ),
        _ => return None,
    };
    Some(Email { to, subject, body })
}

impl InvitationService {
    /// Whether the invitation an email is about can still be accepted.
    async fn invitation_still_pending(&self, m: &OutboxMessage) -> Result<bool> {
        let Some(id) = m.payload["invitation_id"].as_str() else {
            return Ok(true);
        };
        match self.store.get_invitation(id).await {
            Ok(inv) => Ok(inv.status == InvitationStatus::Pending && inv.expires_at > now_millis()),
            Err(crate::store::StoreError::NotFound) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// One delivery round: claims queued emails, sends them, marks them
    /// delivered. Returns how many were sent.
    pub async fn deliver_emails(&self, mailer: &dyn Mailer, base_url: &str) -> Result<usize> {
        let now = now_millis();
        let batch = self
            .store
            .claim_outbox("email.", now, now + CLAIM_MILLIS, BATCH)
            .await?;
        let mut sent = 0;
        for m in batch {
            if !self.invitation_still_pending(&m).await? {
                // Rescinded, declined, accepted or expired meanwhile: not sent.
                self.store.mark_delivered(m.id, now_millis()).await?;
                continue;
            }
            let Some(email) = render_email(&m, base_url) else {
                tracing::warn!(id = m.id, kind = %m.kind, "outbox message of an unknown email kind dropped");
                self.store.mark_delivered(m.id, now_millis()).await?;
                continue;
            };
            match mailer.send(&email).await {
                Ok(()) => {
                    self.store.mark_delivered(m.id, now_millis()).await?;
                    metrics::counter!("algohub_emails_total", "outcome" => "sent").increment(1);
                    sent += 1;
                }
                Err(e) if e.permanent => {
                    tracing::warn!(id = m.id, error = %e.message, "email refused for good; not retried");
                    metrics::counter!("algohub_emails_total", "outcome" => "refused").increment(1);
                    self.store.mark_delivered(m.id, now_millis()).await?;
                }
                Err(e) => {
                    // The server is down or busy: the rest would fail alike.
                    tracing::warn!(id = m.id, error = %e.message, "email not sent; retrying later");
                    metrics::counter!("algohub_emails_total", "outcome" => "retry").increment(1);
                    break;
                }
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: &str, payload: serde_json::Value) -> OutboxMessage {
        OutboxMessage {
            id: 1,
            kind: kind.into(),
            recipient_user_id: None,
            recipient_email: Some("eve@example.com".into()),
            payload,
            created_at: 0,
            delivered_at: None,
        }
    }

    #[test]
    fn invitation_emails_say_how_to_accept() {
        let p = serde_json::json!({"invitation_id": "inv-1", "org": "acme", "org_label": "Acme Inc",
            "role": "viewer", "expires_at": 0, "token": "inv_secret"});
        let e = render_email(
            &msg("email.invitation_token", p.clone()),
            "https://hub.example",
        )
        .unwrap();
        assert_eq!(e.to, "eve@example.com");
        assert_eq!(e.subject, "You are invited to join Acme Inc on algohub");
        assert!(
            e.body
                .contains("https://hub.example/v1/invitation-tokens/accept"),
            "{}",
            e.body
        );
        assert!(e.body.contains("{\"token\": \"inv_secret\"}"), "{}", e.body);
        assert!(e.body.contains("as viewer"), "{}", e.body);
        let e = render_email(&msg("email.invitation", p), "https://hub.example").unwrap();
        assert!(
            e.body
                .contains("https://hub.example/v1/invitations/inv-1/accept"),
            "{}",
            e.body
        );
        assert!(!e.body.contains("inv_secret"), "{}", e.body);
        assert!(render_email(&msg("notification.x", serde_json::json!({})), "").is_none());
    }
}
