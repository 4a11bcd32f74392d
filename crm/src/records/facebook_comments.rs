//! Comments on the municipality's Facebook Page (migration 0010): each citizen's comment once, by
//! Facebook's comment id, with the case it opened; and each reply the page posted from a case.
//!
//! A comment is claimed (`claim`) as the first write of the transaction that opens its case, so a
//! delivery Facebook retries, or sends twice at once, opens one case: on PostgreSQL a concurrent
//! claim of the same id waits for the first to commit and then finds it taken.

use sqlx::{AnyConnection, Row};

use crate::clock::Millis;
use crate::db::Db;
use crate::facebook::NewComment;

/// The comment a case answers to: where the page's replies on that case go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub comment_id: String,
    pub post_id: String,
}

/// A reply the page posted, as Facebook acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentReply<'a> {
    pub case_id: i64,
    /// Facebook's id of the reply.
    pub reply_id: &'a str,
    pub answered: &'a Incoming,
    pub page_id: &'a str,
}

/// Records that `comment` is being processed; `None` when it was before (a retried delivery),
/// and must be skipped.
pub async fn claim(conn: &mut AnyConnection, comment: &NewComment, now: Millis) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO facebook_comments
             (comment_id, direction, post_id, parent_id, from_id, from_name, created_at, received_at)
         VALUES ($1, 'in', $2, $3, $4, $5, $6, $7) ON CONFLICT (comment_id) DO NOTHING RETURNING id",
    )
    .bind(&comment.comment_id)
    .bind(&comment.post_id)
    .bind(comment.parent_id.as_deref())
    .bind(comment.from_id.as_deref())
    .bind(comment.from_name.as_deref())
    .bind(comment.created_at.map(|at| at.0))
    .bind(now.0)
    .fetch_optional(conn)
    .await
}

/// Ties a claimed comment to the case it opened.
pub async fn set_case(conn: &mut AnyConnection, id: i64, case_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE facebook_comments SET case_id = $1 WHERE id = $2")
        .bind(case_id)
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The citizen's comment that opened the case; `None` for a case that did not come from Facebook.
pub async fn incoming_for_case(db: &Db, case_id: i64) -> Result<Option<Incoming>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT comment_id, post_id FROM facebook_comments
         WHERE case_id = $1 AND direction = 'in' ORDER BY id LIMIT 1",
    )
    .bind(case_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| Ok(Incoming { comment_id: row.try_get("comment_id")?, post_id: row.try_get("post_id")? })).transpose()
}

pub async fn add_reply(conn: &mut AnyConnection, reply: &SentReply<'_>, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO facebook_comments
             (comment_id, direction, post_id, parent_id, case_id, from_id, created_at, received_at)
         VALUES ($1, 'out', $2, $3, $4, $5, $6, $6)",
    )
    .bind(reply.reply_id)
    .bind(&reply.answered.post_id)
    .bind(&reply.answered.comment_id)
    .bind(reply.case_id)
    .bind(reply.page_id)
    .bind(now.0)
    .execute(conn)
    .await
    .map(|_| ())
}
