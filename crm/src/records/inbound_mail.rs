//! Inbound e-mail: where each polled mailbox stands (UIDVALIDITY, last UID processed, last
//! success and error for the admin page) and every message once, by Message-ID, with what it
//! became. The orchestration that fills these rows is `loket_flows::email`.
//!
//! A message is claimed (`claim`), turned into a case or a reply, and its UID recorded
//! (`advance`) in one transaction: after a crash either all of it happened or none. A message the
//! MX delivered over SMTP is claimed the same way, in the mailbox of its recipient, without a UID.

use sqlx::{AnyConnection, Row};

use crate::clock::Millis;
use crate::db::Db;
use crate::i18n::Language;
use crate::records::audit::{self, Actor, AuditEntry};
use crate::records::contacts::ContactId;

/// A mailbox's row, as the admin page shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailboxState {
    pub mailbox: String,
    pub uid_validity: Option<i64>,
    pub last_uid: i64,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// Consecutive failures since the last success; the back-off grows with it.
    pub failures: i64,
    pub next_attempt_at: Option<i64>,
    pub processed: i64,
}

/// What a message became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundOutcome {
    Case,
    Reply,
    Noise,
}

impl InboundOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            InboundOutcome::Case => "case",
            InboundOutcome::Reply => "reply",
            InboundOutcome::Noise => "noise",
        }
    }
}

/// Where the poller resumes in `mailbox` whose folder now has `uid_validity`: after the last UID
/// processed, or from the start when the folder's UIDVALIDITY changed (RFC 3501 §2.3.1.1: the old
/// UIDs mean nothing any more; messages seen before are then recognised by their Message-ID).
pub async fn resume_point(db: &Db, mailbox: &str, uid_validity: u32) -> Result<u32, sqlx::Error> {
    sqlx::query("INSERT INTO mailbox_state (mailbox) VALUES ($1) ON CONFLICT (mailbox) DO NOTHING")
        .bind(mailbox)
        .execute(db.pool())
        .await?;
    sqlx::query(
        "UPDATE mailbox_state SET uid_validity = $1, last_uid = 0
         WHERE mailbox = $2 AND (uid_validity IS NULL OR uid_validity <> $1)",
    )
    .bind(i64::from(uid_validity))
    .bind(mailbox)
    .execute(db.pool())
    .await?;
    let last: i64 = sqlx::query_scalar("SELECT last_uid FROM mailbox_state WHERE mailbox = $1")
        .bind(mailbox)
        .fetch_one(db.pool())
        .await?;
    Ok(u32::try_from(last).unwrap_or(0))
}

/// Records that the message with this key is being processed, as the first write of its
/// transaction. `None`: it was processed already, from this or another mailbox or over SMTP, and
/// must be skipped. On PostgreSQL a concurrent claim of the same key waits here for the first to
/// commit. `uid` is the message's IMAP UID; a message delivered over SMTP has none and is stored
/// with 0, which no IMAP message has (UIDs start at 1, RFC 3501 §2.3.1.1).
pub async fn claim(
    conn: &mut AnyConnection,
    message_key: &str,
    mailbox: &str,
    uid: Option<u32>,
    outcome: InboundOutcome,
    case_id: Option<i64>,
    now: Millis,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO inbound_mail (message_id, mailbox, uid, outcome, case_id, received_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING RETURNING id",
    )
    .bind(message_key)
    .bind(mailbox)
    .bind(uid.map_or(0, i64::from))
    .bind(outcome.as_str())
    .bind(case_id)
    .bind(now.0)
    .fetch_optional(conn)
    .await
}

/// Ties a claimed message to the case it opened and the language its work item is routed by.
pub async fn set_case(
    conn: &mut AnyConnection,
    inbound_id: i64,
    case_id: i64,
    language: Language,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE inbound_mail SET case_id = $1, language = $2 WHERE id = $3")
        .bind(case_id)
        .bind(language.code())
        .bind(inbound_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Moves the mailbox past `uid`, in the message's transaction. The UIDVALIDITY guard keeps a
/// poller that still works on an old folder generation from moving the new one.
pub async fn advance(conn: &mut AnyConnection, mailbox: &str, uid_validity: u32, uid: u32) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE mailbox_state SET last_uid = $1, processed = processed + 1
         WHERE mailbox = $2 AND uid_validity = $3 AND last_uid < $1",
    )
    .bind(i64::from(uid))
    .bind(mailbox)
    .bind(i64::from(uid_validity))
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn record_success(db: &Db, mailbox: &str, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mailbox_state (mailbox, last_success_at) VALUES ($1, $2)
         ON CONFLICT (mailbox) DO UPDATE SET last_success_at = $2, failures = 0, next_attempt_at = NULL",
    )
    .bind(mailbox)
    .bind(now.0)
    .execute(db.pool())
    .await
    .map(|_| ())
}

/// Counts a failure and when the next attempt is due; returns the failures in a row.
pub async fn record_failure(
    db: &Db,
    mailbox: &str,
    error: &str,
    next_attempt_at: Millis,
    now: Millis,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO mailbox_state (mailbox, last_error, last_error_at, failures, next_attempt_at)
         VALUES ($1, $2, $3, 1, $4)
         ON CONFLICT (mailbox) DO UPDATE SET last_error = $2, last_error_at = $3,
             failures = mailbox_state.failures + 1, next_attempt_at = $4
         RETURNING failures",
    )
    .bind(mailbox)
    .bind(error)
    .bind(now.0)
    .bind(next_attempt_at.0)
    .fetch_one(db.pool())
    .await
}

/// The consecutive failures of a mailbox so far, to pick the back-off after a restart.
pub async fn failures(db: &Db, mailbox: &str) -> Result<i64, sqlx::Error> {
    let failures: Option<i64> = sqlx::query_scalar("SELECT failures FROM mailbox_state WHERE mailbox = $1")
        .bind(mailbox)
        .fetch_optional(db.pool())
        .await?;
    Ok(failures.unwrap_or(0))
}

pub async fn states(db: &Db) -> Result<Vec<MailboxState>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT mailbox, uid_validity, last_uid, last_success_at, last_error, last_error_at, failures,
                next_attempt_at, processed
         FROM mailbox_state ORDER BY mailbox",
    )
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(MailboxState {
                mailbox: row.try_get("mailbox")?,
                uid_validity: row.try_get("uid_validity")?,
                last_uid: row.try_get("last_uid")?,
                last_success_at: row.try_get("last_success_at")?,
                last_error: row.try_get("last_error")?,
                last_error_at: row.try_get("last_error_at")?,
                failures: row.try_get("failures")?,
                next_attempt_at: row.try_get("next_attempt_at")?,
                processed: row.try_get("processed")?,
            })
        })
        .collect()
}

/// The case a Message-ID belongs to: a mail loket sent from a case (the outbox) or one it
/// received on a case.
pub async fn case_of_message(db: &Db, message_key: &str) -> Result<Option<i64>, sqlx::Error> {
    let sent: Option<Option<i64>> = sqlx::query_scalar("SELECT case_id FROM outbox WHERE message_id = $1")
        .bind(message_key)
        .fetch_optional(db.pool())
        .await?;
    if let Some(Some(case_id)) = sent {
        return Ok(Some(case_id));
    }
    let received: Option<Option<i64>> = sqlx::query_scalar("SELECT case_id FROM inbound_mail WHERE message_id = $1")
        .bind(message_key)
        .fetch_optional(db.pool())
        .await?;
    Ok(received.flatten())
}

/// The case with this number, and whether `sender` is known to it: the address of its contact,
/// or one loket mailed from the case. A number in a subject is easy to type or guess; only a
/// known sender may thread by it.
pub async fn case_by_number(db: &Db, number: &str, sender: &str) -> Result<Option<(i64, bool)>, sqlx::Error> {
    let row = sqlx::query("SELECT id, contact_id FROM cases WHERE number = $1")
        .bind(number)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let case_id: i64 = row.try_get("id")?;
    let contact_id: Option<i64> = row.try_get("contact_id")?;
    let sender = sender.to_lowercase();
    let known: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM contact_emails WHERE contact_id = $1 AND email = $2
         UNION ALL SELECT 1 FROM outbox WHERE case_id = $3 AND lower(to_address) = $2",
    )
    .bind(contact_id)
    .bind(&sender)
    .bind(case_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(Some((case_id, known.is_some())))
}

/// The live contact with this e-mail address and their language. Matching a sender reads
/// personal data, so it is audited like `contacts::read`, as loket's own read for `purpose`.
pub async fn contact_by_email(
    conn: &mut AnyConnection,
    email: &str,
    purpose: &str,
    now: Millis,
) -> Result<Option<(ContactId, Language)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT c.id, c.language FROM contact_emails e JOIN contacts c ON c.id = e.contact_id
         WHERE e.email = $1 AND c.merged_into IS NULL ORDER BY c.id LIMIT 1",
    )
    .bind(email.trim().to_lowercase())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let id = ContactId(row.try_get("id")?);
    let language: String = row.try_get("language")?;
    let entry = AuditEntry {
        actor: Actor::System,
        action: "contact.matched_by_email",
        subject_type: "contact",
        subject_id: Some(id.0.to_string()),
        purpose: Some(purpose),
        detail: None,
    };
    audit::record(&mut *conn, &entry, now).await?;
    Ok(Some((id, Language::from_code(&language).unwrap_or_default())))
}

/// The number of a case and the language its e-mail was routed by, when an e-mail opened it: what
/// an automatic answer on the case needs.
pub async fn case_number_and_language(
    conn: &mut AnyConnection,
    case_id: i64,
) -> Result<Option<(String, Option<Language>)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT c.number, i.language FROM cases c
         LEFT JOIN inbound_mail i ON i.case_id = c.id AND i.outcome = 'case'
         WHERE c.id = $1 ORDER BY i.id LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let language: Option<String> = row.try_get("language")?;
    Ok(Some((row.try_get("number")?, language.as_deref().and_then(Language::from_code))))
}

/// Moves a case that received a message up in the lists sorted by last change.
pub async fn touch_case(conn: &mut AnyConnection, case_id: i64, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE cases SET updated_at = $1 WHERE id = $2")
        .bind(now.0)
        .bind(case_id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// A new case whose work item the router does not have yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrouted {
    pub inbound_id: i64,
    pub mailbox: String,
    pub case_id: i64,
    pub queue_code: Option<String>,
    pub language: Option<Language>,
}

/// New cases not yet handed to the router (the process stopped between the commit and the
/// router), oldest first.
pub async fn unrouted(db: &Db, limit: i64) -> Result<Vec<Unrouted>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT i.id, i.mailbox, i.case_id, c.queue_code, i.language
         FROM inbound_mail i JOIN cases c ON c.id = i.case_id
         WHERE i.outcome = 'case' AND i.routed_at IS NULL ORDER BY i.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Unrouted {
                inbound_id: row.try_get("id")?,
                mailbox: row.try_get("mailbox")?,
                case_id: row.try_get("case_id")?,
                queue_code: row.try_get("queue_code")?,
                language: row.try_get::<Option<String>, _>("language")?.as_deref().and_then(Language::from_code),
            })
        })
        .collect()
}

pub async fn mark_routed(db: &Db, inbound_id: i64, work_item: u64, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE inbound_mail SET work_item = $1, routed_at = $2 WHERE id = $3")
        .bind(i64::try_from(work_item).unwrap_or(i64::MAX))
        .bind(now.0)
        .bind(inbound_id)
        .execute(db.pool())
        .await
        .map(|_| ())
}
