//! A user's saved list views: a name and the query string of the case list's filters.

use sqlx::Row;

use crate::db::Db;
use crate::records::users::UserId;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SavedView {
    pub id: i64,
    pub name: String,
    pub query: String,
}

/// Saves under `name`, replacing the user's view of that name.
pub async fn save(db: &Db, user: UserId, name: &str, query: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO saved_views (user_id, name, query) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, name) DO UPDATE SET query = excluded.query",
    )
    .bind(user.0)
    .bind(name.trim())
    .bind(query)
    .execute(db.pool())
    .await
    .map(|_| ())
}

pub async fn for_user(db: &Db, user: UserId) -> Result<Vec<SavedView>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, name, query FROM saved_views WHERE user_id = $1 ORDER BY name")
        .bind(user.0)
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|row| Ok(SavedView { id: row.try_get("id")?, name: row.try_get("name")?, query: row.try_get("query")? }))
        .collect()
}

pub async fn delete(db: &Db, user: UserId, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM saved_views WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user.0)
        .execute(db.pool())
        .await
        .map(|_| ())
}
