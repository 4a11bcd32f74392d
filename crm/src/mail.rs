//! Outgoing mail: rendering the municipality's templates, and the sender that empties the outbox
//! over SMTP (lettre) with retries.

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use minijinja::Environment;
use serde::Serialize;

use crate::clock::Clock;
use crate::db::Db;
use crate::records::outbox::{self, OutboxMail};

/// How loket reaches its SMTP relay; from the `[smtp]` section of the configuration.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender of every message, e.g. `Gemeente Loket <loket@gemeente.be>`.
    pub from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP, for a relay on the same host or network.
    None,
    StartTls,
    Tls,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("building the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of Message-IDs.
    pub domain: String,
}

impl Mailer {
    pub fn new(settings: &SmtpSettings) -> Result<Mailer, MailError> {
        let from: Mailbox = settings.from.parse().map_err(|error: lettre::address::AddressError| {
            MailError::Address { address: settings.from.clone(), reason: error.to_string() }
        })?;
        let mut builder = match settings.security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host),
            SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)?,
        }
        .port(settings.port)
        .timeout(Some(Duration::from_secs(30)));
        if let (Some(username), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
        }
        let domain = from.email.domain().to_owned();
        Ok(Mailer { transport: builder.build(), from, domain })
    }

    pub async fn deliver(&self, mail: &OutboxMail) -> Result<(), MailError> {
        let to: Mailbox = mail.to_address.parse().map_err(|error: lettre::address::AddressError| {
            MailError::Address { address: mail.to_address.clone(), reason: error.to_string() }
        })?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .message_id(Some(mail.message_id.clone()))
            .header(ContentType::TEXT_PLAIN);
        if let Some(parent) = &mail.in_reply_to {
            builder = builder.in_reply_to(parent.clone());
        }
        if let Some(references) = &mail.references {
            builder = builder.references(references.clone());
        }
        let mut message = builder.body(mail.body.clone())?;
        let mut header = |name: &'static str, value: String| {
            message.headers_mut().insert_raw(HeaderValue::new(HeaderName::new_from_ascii_str(name), value));
        };
        if let Some(case_id) = mail.case_id {
            header("X-Loket-Case", case_id.to_string());
        }
        if let Some(kind) = mail.auto_submitted {
            header("Auto-Submitted", kind.header_value().to_owned());
            // Exchange and Outlook answer with out-of-office notes unless told not to.
            header("X-Auto-Response-Suppress", "All".to_owned());
        }
        self.transport.send(message).await?;
        Ok(())
    }
}

/// Delivers due mail every few seconds until the process stops. Each failure is recorded on the
/// message; the loop itself never stops on one.
pub async fn run_outbox(db: Db, mailer: Mailer, clock: Clock) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        if let Err(error) = deliver_due(&db, &mailer, &clock).await {
            tracing::warn!(%error, "reading the outbox failed");
        }
    }
}

/// One pass over the due messages; returns how many left.
pub async fn deliver_due(db: &Db, mailer: &Mailer, clock: &Clock) -> Result<usize, sqlx::Error> {
    let mut sent = 0;
    for mail in outbox::due(db, clock.now(), 50).await? {
        match mailer.deliver(&mail).await {
            Ok(()) => {
                outbox::mark_sent(db, mail.id, clock.now()).await?;
                sent += 1;
            }
            Err(error) => {
                tracing::warn!(mail = mail.id, %error, "sending a mail failed; it will be retried");
                outbox::mark_attempt_failed(db, mail.id, &error.to_string(), clock.now()).await?;
            }
        }
    }
    Ok(sent)
}

/// What a template may use: `{{ contact.first_name }}`, `{{ case.number }}`, `{{ agent.name }}`.
#[derive(Debug, Serialize, Default)]
pub struct TemplateContext {
    pub contact: TemplateContact,
    pub case: TemplateCase,
    pub agent: TemplateAgent,
}

#[derive(Debug, Serialize, Default)]
pub struct TemplateContact {
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Serialize, Default)]
pub struct TemplateCase {
    pub number: String,
    pub subject: String,
}

#[derive(Debug, Serialize, Default)]
pub struct TemplateAgent {
    pub name: String,
}

/// Renders a template's subject or body; an error names the line, for the admin who edits it.
pub fn render(text: &str, context: &TemplateContext) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.render_str(text, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_and_name_mistakes() {
        let context = TemplateContext {
            contact: TemplateContact { first_name: "Emma".into(), last_name: "Claes".into() },
            case: TemplateCase { number: "2026-000001".into(), subject: "Paspoort".into() },
            agent: TemplateAgent { name: "Jonas".into() },
        };
        assert_eq!(
            render("Beste {{ contact.first_name }}, dossier {{ case.number }}", &context).unwrap(),
            "Beste Emma, dossier 2026-000001"
        );
        let error = render("Beste {{ contact.nickname }}", &context).unwrap_err();
        assert!(error.to_string().contains("undefined"), "{error}");
        let error = render("line one\n{% if %}", &context).unwrap_err();
        assert_eq!(error.line(), Some(2));
    }
}
