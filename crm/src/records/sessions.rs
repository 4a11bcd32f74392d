//! Server-side sessions. The cookie carries a random token; the table keeps only its SHA-256, so
//! a leaked database cannot be replayed as cookies.

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::clock::Millis;
use crate::db::Db;
use crate::i18n::Language;
use crate::records::users::UserId;

#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub user_id: Option<UserId>,
    pub csrf_token: String,
    pub language: Option<Language>,
    pub expires_at: Millis,
}

/// A new session's cookie value; it exists only in the response that sets the cookie.
pub struct NewSession {
    pub token: String,
    pub session: Session,
}

pub async fn create(
    db: &Db,
    user_id: Option<UserId>,
    language: Option<Language>,
    now: Millis,
    expires_at: Millis,
) -> Result<NewSession, sqlx::Error> {
    let token = random_token();
    let session = Session { token_hash: hash_token(&token), user_id, csrf_token: random_token(), language, expires_at };
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, language, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&session.token_hash)
    .bind(user_id.map(|id| id.0))
    .bind(&session.csrf_token)
    .bind(language.map(Language::code))
    .bind(now.0)
    .bind(expires_at.0)
    .execute(db.pool())
    .await?;
    Ok(NewSession { token, session })
}

pub async fn find(db: &Db, token: &str, now: Millis) -> Result<Option<Session>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT token_hash, user_id, csrf_token, language, expires_at FROM sessions
         WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(hash_token(token))
    .bind(now.0)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let language: Option<String> = row.try_get("language")?;
    Ok(Some(Session {
        token_hash: row.try_get("token_hash")?,
        user_id: row.try_get::<Option<i64>, _>("user_id")?.map(UserId),
        csrf_token: row.try_get("csrf_token")?,
        language: language.as_deref().and_then(Language::from_code),
        expires_at: Millis(row.try_get("expires_at")?),
    }))
}

pub async fn set_language(db: &Db, token_hash: &str, language: Language) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET language = $1 WHERE token_hash = $2")
        .bind(language.code())
        .bind(token_hash)
        .execute(db.pool())
        .await
        .map(|_| ())
}

pub async fn delete(db: &Db, token_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(db.pool()).await.map(|_| ())
}

/// Ends every session of a user, e.g. when an admin changes the user's roles or disables them.
pub async fn delete_for_user(db: &Db, user_id: UserId) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id.0).execute(db.pool()).await.map(|_| ())
}

pub async fn purge_expired(db: &Db, now: Millis) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now.0).execute(db.pool()).await?;
    Ok(done.rows_affected())
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
