//! The audit log: who did what to which record, when, and why. Rows are only ever appended.

use sqlx::Row;

use crate::clock::Millis;
use crate::db::{Db, LikePosition, like_pattern};
use crate::records::users::UserId;

/// Who acted: a console user, or loket itself (demo seed, background jobs).
#[derive(Debug, Clone)]
pub enum Actor<'a> {
    User { id: UserId, name: &'a str },
    System,
}

#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub actor: Actor<'a>,
    /// A dotted verb such as `login.failed`, `user.created`, `contact.read`.
    pub action: &'a str,
    pub subject_type: &'a str,
    pub subject_id: Option<String>,
    /// Why personal data was read (GDPR purpose limitation); None for plain changes.
    pub purpose: Option<&'a str>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor_name: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: Option<String>,
    pub purpose: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub actor_name: Option<String>,
    pub action_prefix: Option<String>,
    pub subject_type: Option<String>,
    pub from: Option<Millis>,
    pub until: Option<Millis>,
}

pub async fn record<'e, E>(executor: E, entry: &AuditEntry<'_>, now: Millis) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let (actor_id, actor_name) = match entry.actor {
        Actor::User { id, name } => (Some(id.0), name),
        Actor::System => (None, "loket"),
    };
    sqlx::query(
        "INSERT INTO audit_log (at, actor_user_id, actor_name, action, subject_type, subject_id, purpose, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(now.0)
    .bind(actor_id)
    .bind(actor_name)
    .bind(entry.action)
    .bind(entry.subject_type)
    .bind(entry.subject_id.as_deref())
    .bind(entry.purpose)
    .bind(entry.detail.as_deref())
    .execute(executor)
    .await
    .map(|_| ())
}

/// The newest entries first, at most `limit`.
pub async fn list(db: &Db, filter: &AuditFilter, limit: i64) -> Result<Vec<AuditRecord>, sqlx::Error> {
    // Conditions that do not apply compare a NULL parameter, so the statement stays one text.
    let rows = sqlx::query(
        "SELECT id, at, actor_name, action, subject_type, subject_id, purpose, detail FROM audit_log
         WHERE ($1 IS NULL OR actor_name = $1)
           AND ($2 IS NULL OR action LIKE $2 ESCAPE '\\')
           AND ($3 IS NULL OR subject_type = $3)
           AND ($4 IS NULL OR at >= $4)
           AND ($5 IS NULL OR at < $5)
         ORDER BY id DESC LIMIT $6",
    )
    .bind(filter.actor_name.as_deref())
    .bind(filter.action_prefix.as_deref().map(|prefix| like_pattern(prefix, LikePosition::Prefix)))
    .bind(filter.subject_type.as_deref())
    .bind(filter.from.map(|at| at.0))
    .bind(filter.until.map(|at| at.0))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AuditRecord {
                id: row.try_get("id")?,
                at: row.try_get("at")?,
                actor_name: row.try_get("actor_name")?,
                action: row.try_get("action")?,
                subject_type: row.try_get("subject_type")?,
                subject_id: row.try_get("subject_id")?,
                purpose: row.try_get("purpose")?,
                detail: row.try_get("detail")?,
            })
        })
        .collect()
}
