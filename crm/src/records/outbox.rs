//! Mail on its way out. A message is written here in the same transaction as the change that
//! caused it; a sender delivers it and retries with back-off until it leaves. Nothing is dropped:
//! after `MAX_ATTEMPTS` the message is marked failed, shown on its case, and can be retried.

use std::time::Duration;

use rand::RngCore;
use sqlx::{AnyConnection, Row};

use crate::clock::Millis;
use crate::db::Db;
use crate::mail::{TemplateAgent, TemplateCase, TemplateContact, TemplateContext, render};
use crate::records::email_templates::EmailTemplate;
use crate::records::timeline::{self, NewEntry, Summary};

pub const MAX_ATTEMPTS: i64 = 8;

pub struct NewMail<'a> {
    pub case_id: Option<i64>,
    pub to_address: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub created_by: &'a str,
    /// For mail loket writes by itself: the `Auto-Submitted` value (RFC 3834 §5).
    pub auto_submitted: Option<AutoSubmitted>,
}

/// How a mail loket sends by itself was made (RFC 3834 §5), so that other systems' automatic
/// responders leave it unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AutoSubmitted {
    /// An automatic answer to a citizen's message (an e-mail's acknowledgement).
    Replied,
    /// Made by loket without a message to answer (a web form's acknowledgement).
    Generated,
}

impl AutoSubmitted {
    pub fn header_value(self) -> &'static str {
        match self {
            AutoSubmitted::Replied => "auto-replied",
            AutoSubmitted::Generated => "auto-generated",
        }
    }

    fn from_header_value(value: &str) -> Option<AutoSubmitted> {
        [AutoSubmitted::Replied, AutoSubmitted::Generated].into_iter().find(|kind| kind.header_value() == value)
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxMail {
    pub id: i64,
    pub case_id: Option<i64>,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
    pub to_address: String,
    pub subject: String,
    pub body: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub auto_submitted: Option<AutoSubmitted>,
}

/// Queues a message; on a case it threads under the case's previous message (RFC 5322 §3.6.4:
/// In-Reply-To names the parent, References the chain).
pub async fn enqueue(
    conn: &mut AnyConnection,
    mail: &NewMail<'_>,
    domain: &str,
    now: Millis,
) -> Result<OutboxMail, sqlx::Error> {
    let (in_reply_to, references) = match mail.case_id {
        Some(case_id) => {
            let parent = sqlx::query(
                "SELECT message_id, mail_references FROM outbox WHERE case_id = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(case_id)
            .fetch_optional(&mut *conn)
            .await?;
            match parent {
                Some(row) => {
                    let parent_id: String = row.try_get("message_id")?;
                    let chain: Option<String> = row.try_get("mail_references")?;
                    let references = match chain {
                        Some(chain) => format!("{chain} {parent_id}"),
                        None => parent_id.clone(),
                    };
                    (Some(parent_id), Some(references))
                }
                None => (None, None),
            }
        }
        None => (None, None),
    };
    let mut random = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut random);
    let message_id = format!("<{}.{}@{domain}>", now.0, hex::encode(random));
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (case_id, message_id, in_reply_to, mail_references, to_address, subject, body, status,
                             next_attempt_at, created_by, created_at, auto_submitted)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $8, $10) RETURNING id",
    )
    .bind(mail.case_id)
    .bind(&message_id)
    .bind(in_reply_to.as_deref())
    .bind(references.as_deref())
    .bind(mail.to_address)
    .bind(mail.subject)
    .bind(mail.body)
    .bind(now.0)
    .bind(mail.created_by)
    .bind(mail.auto_submitted.map(AutoSubmitted::header_value))
    .fetch_one(conn)
    .await?;
    Ok(OutboxMail {
        id,
        case_id: mail.case_id,
        message_id,
        in_reply_to,
        references,
        to_address: mail.to_address.to_owned(),
        subject: mail.subject.to_owned(),
        body: mail.body.to_owned(),
        status: "pending".to_owned(),
        attempts: 0,
        last_error: None,
        created_at: now.0,
        auto_submitted: mail.auto_submitted,
    })
}

pub async fn due(db: &Db, now: Millis, limit: i64) -> Result<Vec<OutboxMail>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2"
    ))
    .bind(now.0)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(mail_from_row).collect()
}

pub async fn for_case(db: &Db, case_id: i64) -> Result<Vec<OutboxMail>, sqlx::Error> {
    let rows = sqlx::query(&format!("{SELECT} WHERE case_id = $1 ORDER BY id DESC"))
        .bind(case_id)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(mail_from_row).collect()
}

pub async fn mark_sent(db: &Db, id: i64, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2",
    )
    .bind(now.0)
    .bind(id)
    .execute(db.pool())
    .await
    .map(|_| ())
}

/// Records a failed attempt: the next one after 1, 2, 4 … minutes (at most an hour), and after
/// `MAX_ATTEMPTS` the message waits, failed, for someone to retry it.
pub async fn mark_attempt_failed(db: &Db, id: i64, error: &str, now: Millis) -> Result<(), sqlx::Error> {
    let attempts: i64 =
        sqlx::query_scalar("SELECT attempts FROM outbox WHERE id = $1").bind(id).fetch_one(db.pool()).await?;
    let attempts = attempts + 1;
    let backoff =
        Duration::from_secs(60 * 2u64.saturating_pow(u32::try_from(attempts - 1).unwrap_or(u32::MAX)).min(60));
    let status = if attempts >= MAX_ATTEMPTS { "failed" } else { "pending" };
    sqlx::query("UPDATE outbox SET status = $1, attempts = $2, last_error = $3, next_attempt_at = $4 WHERE id = $5")
        .bind(status)
        .bind(attempts)
        .bind(error)
        .bind(now.plus(backoff).0)
        .bind(id)
        .execute(db.pool())
        .await
        .map(|_| ())
}

/// Puts a failed message back in line, now.
pub async fn retry(db: &Db, id: i64, now: Millis) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = $1 WHERE id = $2 AND status = 'failed'",
    )
    .bind(now.0)
    .bind(id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

const SELECT: &str = "SELECT id, case_id, message_id, in_reply_to, mail_references, to_address, subject, body, status,
        attempts, last_error, created_at, auto_submitted FROM outbox";

fn mail_from_row(row: &sqlx::any::AnyRow) -> Result<OutboxMail, sqlx::Error> {
    Ok(OutboxMail {
        id: row.try_get("id")?,
        case_id: row.try_get("case_id")?,
        message_id: row.try_get("message_id")?,
        in_reply_to: row.try_get("in_reply_to")?,
        references: row.try_get("mail_references")?,
        to_address: row.try_get("to_address")?,
        subject: row.try_get("subject")?,
        body: row.try_get("body")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        auto_submitted: row
            .try_get::<Option<String>, _>("auto_submitted")?
            .and_then(|value| AutoSubmitted::from_header_value(&value)),
    })
}

/// A new case's acknowledgement to the citizen: what `acknowledge` needs to write it.
pub struct Acknowledgement<'a> {
    pub case_id: i64,
    pub number: &'a str,
    pub subject: &'a str,
    pub to_address: &'a str,
    /// The names the citizen gave in this message or form, never those of a matched contact: the
    /// sender of an unauthenticated request must not learn what the municipality has on file.
    pub first_name: &'a str,
    pub last_name: &'a str,
    /// The `email_ack` template in the citizen's language.
    pub template: &'a EmailTemplate,
    /// `Replied` for an e-mail's acknowledgement, `Generated` for a form's.
    pub auto_submitted: AutoSubmitted,
    pub actor: &'a str,
}

/// Queues the acknowledgement and puts it on the case's timeline, in the caller's transaction.
/// A template that does not render (an admin's mistake) leaves the case unacknowledged (`false`)
/// rather than the intake failed. Shared by every channel that opens cases for citizens.
pub async fn acknowledge(
    conn: &mut AnyConnection,
    ack: &Acknowledgement<'_>,
    domain: &str,
    now: Millis,
) -> Result<bool, sqlx::Error> {
    acknowledge_with_note(conn, ack, None, domain, now).await
}

/// `acknowledge`, with `note` as a last paragraph: what the citizen must know about this request
/// that the template cannot say (an attachment that was not kept). The note is added after the
/// template is rendered, so text from the citizen's message in it is never read as template code.
pub async fn acknowledge_with_note(
    conn: &mut AnyConnection,
    ack: &Acknowledgement<'_>,
    note: Option<&str>,
    domain: &str,
    now: Millis,
) -> Result<bool, sqlx::Error> {
    let context = TemplateContext {
        contact: TemplateContact { first_name: ack.first_name.to_owned(), last_name: ack.last_name.to_owned() },
        case: TemplateCase { number: ack.number.to_owned(), subject: ack.subject.to_owned() },
        agent: TemplateAgent { name: String::new() },
    };
    let template = ack.template;
    let (subject, mut body) = match (render(&template.subject, &context), render(&template.body, &context)) {
        (Ok(subject), Ok(body)) => (subject, body),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(template = %template.code, language = template.language.code(), %error,
                "the acknowledgement template does not render; no acknowledgement sent");
            return Ok(false);
        }
    };
    if let Some(note) = note {
        body = format!("{}\n\n{note}", body.trim_end());
    }
    let mail = NewMail {
        case_id: Some(ack.case_id),
        to_address: ack.to_address,
        subject: &subject,
        body: &body,
        created_by: ack.actor,
        auto_submitted: Some(ack.auto_submitted),
    };
    enqueue_on_timeline(conn, &mail, domain, now).await?;
    Ok(true)
}

/// Queues `mail` and puts it on its case's timeline (`email_out`), in the caller's transaction.
pub async fn enqueue_on_timeline(
    conn: &mut AnyConnection,
    mail: &NewMail<'_>,
    domain: &str,
    now: Millis,
) -> Result<OutboxMail, sqlx::Error> {
    let queued = enqueue(&mut *conn, mail, domain, now).await?;
    let entry = NewEntry {
        case_id: mail.case_id,
        contact_id: None,
        kind: "email_out",
        actor_name: mail.created_by,
        public: true,
        summary: Summary::new("timeline-mail").arg("to", mail.to_address).arg("subject", mail.subject),
        body: Some(mail.body.to_owned()),
    };
    timeline::append(conn, &entry, now).await?;
    Ok(queued)
}
