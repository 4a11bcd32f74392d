//! Work the console asks the router for: a case opened by a web form or a Facebook comment
//! becomes a work item in the same queues as calls (migration 0009). The request is written in
//! the case's own transaction; `flows::work::follow_requests` hands it to the router after the
//! commit, and again after a restart for any the process left, so no case waits unrouted.

use sqlx::{AnyConnection, Row};

use loket_routing::model::Channel;

use crate::clock::Millis;
use crate::db::Db;
use crate::records::directory::Queue;

/// A work item to be, as the console describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkRequest {
    pub case_id: i64,
    pub channel: Channel,
    pub queue_code: String,
    /// Skill codes the item requires, each at level 1.
    pub skills: Vec<String>,
    /// The language code, the one skill the router never relaxes.
    pub language: String,
}

/// A request the router does not have yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: i64,
    pub request: WorkRequest,
}

pub async fn add(conn: &mut AnyConnection, request: &WorkRequest, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO work_requests (case_id, channel, queue_code, skills, language, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(request.case_id)
    .bind(stored_channel(request.channel))
    .bind(&request.queue_code)
    .bind(request.skills.join(","))
    .bind(&request.language)
    .bind(now.0)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Requests not yet handed to the router after the one with id `after`, oldest first.
pub async fn pending(db: &Db, after: i64, limit: i64) -> Result<Vec<Pending>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, case_id, channel, queue_code, skills, language FROM work_requests
         WHERE routed_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let skills: String = row.try_get("skills")?;
            let channel: String = row.try_get("channel")?;
            Ok(Pending {
                id: row.try_get("id")?,
                request: WorkRequest {
                    case_id: row.try_get("case_id")?,
                    channel: channel_of(&channel)?,
                    queue_code: row.try_get("queue_code")?,
                    skills: skills.split(',').filter(|skill| !skill.is_empty()).map(str::to_owned).collect(),
                    language: row.try_get("language")?,
                },
            })
        })
        .collect()
}

/// Channels are stored as cases name them (`web_form`); the router spells them `web-form`.
fn stored_channel(channel: Channel) -> String {
    channel.name().replace('-', "_")
}

fn channel_of(stored: &str) -> Result<Channel, sqlx::Error> {
    Channel::from_name(&stored.replace('_', "-"))
        .ok_or_else(|| sqlx::Error::Decode(format!("work_requests.channel: unknown channel {stored:?}").into()))
}

pub async fn mark_routed(db: &Db, id: i64, work_item: u64, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE work_requests SET work_item = $1, routed_at = $2 WHERE id = $3")
        .bind(i64::try_from(work_item).unwrap_or(i64::MAX))
        .bind(now.0)
        .bind(id)
        .execute(db.pool())
        .await
        .map(|_| ())
}

/// The first-line queue of `service` for `language`: the queue of that language, else one for
/// every language, else any first-line queue of the service.
pub fn first_line_queue<'a>(queues: &'a [Queue], service: &str, language: &str) -> Option<&'a Queue> {
    let first_line = || queues.iter().filter(|queue| queue.service_code == service && queue.support_line == 1);
    first_line()
        .find(|queue| queue.language.as_deref() == Some(language))
        .or_else(|| first_line().find(|queue| queue.language.is_none()))
        .or_else(|| first_line().next())
}
