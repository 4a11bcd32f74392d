//! The callbacks waiting callers chose (migration 0011): the number to call and the case of the
//! call, kept beside the router's work item until the call back is over, so that a restart of
//! loket (whose Redis router keeps the item) does not lose them.

use sqlx::Row;

use crate::clock::Millis;
use crate::db::Db;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The router's work item.
    pub item_id: u64,
    /// E.164.
    pub number: String,
    pub case_id: i64,
    pub contact_id: Option<i64>,
    /// Where the item waits.
    pub queue: String,
}

/// Keeps `callback`, replacing what was kept for its item.
pub async fn keep(db: &Db, callback: &Callback, now: Millis) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO callbacks (item_id, number, case_id, contact_id, queue, requested_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (item_id) DO UPDATE SET number = $2, case_id = $3, contact_id = $4, queue = $5",
    )
    .bind(stored_item(callback.item_id))
    .bind(&callback.number)
    .bind(callback.case_id)
    .bind(callback.contact_id)
    .bind(&callback.queue)
    .bind(now.0)
    .execute(db.pool())
    .await
    .map(|_| ())
}

/// The callback of `item` is over (called back, or its item gone).
pub async fn forget(db: &Db, item_id: u64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM callbacks WHERE item_id = $1")
        .bind(stored_item(item_id))
        .execute(db.pool())
        .await
        .map(|_| ())
}

/// Every callback kept, oldest first.
pub async fn all(db: &Db) -> Result<Vec<Callback>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT item_id, number, case_id, contact_id, queue FROM callbacks ORDER BY requested_at, item_id")
            .fetch_all(db.pool())
            .await?;
    rows.iter()
        .map(|row| {
            let item_id: i64 = row.try_get("item_id")?;
            Ok(Callback {
                item_id: u64::try_from(item_id)
                    .map_err(|_| sqlx::Error::Decode(format!("callbacks.item_id: {item_id}").into()))?,
                number: row.try_get("number")?,
                case_id: row.try_get("case_id")?,
                contact_id: row.try_get("contact_id")?,
                queue: row.try_get("queue")?,
            })
        })
        .collect()
}

/// Work item ids are u64 in the router and below 2^63 in practice (a counter).
fn stored_item(item_id: u64) -> i64 {
    i64::try_from(item_id).unwrap_or(i64::MAX)
}
