//! SIP credentials of agents' phones: HA1 digests per realm, looked up by the SIP service when a
//! phone registers. Nothing here sees a password; the caller hashes it (`loket_sip::digest`).

use sqlx::{AnyConnection, Row};

use crate::clock::Millis;
use crate::db::Db;

/// A phone's HA1 values for one realm: `H(username:realm:password)` in lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ha1 {
    pub md5: String,
    pub sha256: String,
}

/// The HA1 values of `username` in `realm`; `None` for an unknown name or a disabled user, who
/// must not register a phone either.
pub async fn find(db: &Db, username: &str, realm: &str) -> Result<Option<Ha1>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT c.ha1_md5, c.ha1_sha256 FROM sip_credentials c JOIN users u ON u.id = c.user_id
         WHERE c.username = $1 AND c.realm = $2 AND u.disabled_at IS NULL",
    )
    .bind(username)
    .bind(realm)
    .fetch_optional(db.pool())
    .await?;
    row.map(|row| Ok(Ha1 { md5: row.try_get("ha1_md5")?, sha256: row.try_get("ha1_sha256")? })).transpose()
}

/// Gives the console user `username` SIP credentials under the same name in `realm`, unless it
/// has some there; `false` when it had (or the user does not exist).
pub async fn insert_if_absent(
    conn: &mut AnyConnection,
    username: &str,
    realm: &str,
    ha1: &Ha1,
    now: Millis,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO sip_credentials (user_id, username, realm, ha1_md5, ha1_sha256, created_at)
         SELECT id, username, $2, $3, $4, $5 FROM users WHERE username = $1
         ON CONFLICT DO NOTHING",
    )
    .bind(username)
    .bind(realm)
    .bind(&ha1.md5)
    .bind(&ha1.sha256)
    .bind(now.0)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
