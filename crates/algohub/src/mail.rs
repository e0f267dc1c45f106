//! The SMTP mailer (lettre) behind outbox email delivery.
//!
//! `smtp_url` takes lettre's URL form: `smtp://host:25` (plain; add
//! `?tls=required` for STARTTLS), `smtps://user:password@host:465` (TLS from
//! the start). The password never reaches a log (`config::redact_url`).

use algohub_core::services::{Email, MailError, Mailer};
use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("invalid smtp_url {}: {e}", crate::config::redact_url(url)))?
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("invalid smtp_from {from:?}: {e}"))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let refused = |message: String| MailError {
            permanent: true,
            message,
        };
        let to = email
            .to
            .parse::<Mailbox>()
            .map_err(|e| refused(format!("invalid address {:?}: {e}", email.to)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .body(email.body.clone())
            .map_err(|e| refused(format!("could not build the message: {e}")))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError {
                permanent: e.is_permanent(),
                message: e.to_string(),
            })
    }
}
