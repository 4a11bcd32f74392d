//! Console users (agents, supervisors, tellers, …) and their roles.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::auth::Role;
use crate::clock::Millis;
use crate::db::Db;
use crate::i18n::Language;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub email: Option<String>,
    pub language: Language,
    pub roles: Vec<Role>,
    pub failed_logins: i64,
    pub locked_until: Option<Millis>,
    pub disabled: bool,
}

/// The user and the hash to check a login against; the hash never leaves this pair.
pub struct LoginCandidate {
    pub user: User,
    pub password_hash: String,
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: &'a str,
    pub language: Language,
    pub roles: &'a [Role],
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("the user name {0:?} is taken")]
    UsernameTaken(String),
    #[error("the user name must be 2 to 64 letters, digits, dots, dashes or underscores")]
    InvalidUsername,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub fn valid_username(username: &str) -> bool {
    (2..=64).contains(&username.len())
        && username.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// Inserts the user and its roles; the caller's transaction also carries the audit entry.
pub async fn insert(conn: &mut AnyConnection, new_user: &NewUser<'_>, now: Millis) -> Result<UserId, UserError> {
    if !valid_username(new_user.username) {
        return Err(UserError::InvalidUsername);
    }
    if exists(&mut *conn, new_user.username).await? {
        return Err(UserError::UsernameTaken(new_user.username.to_owned()));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (username, display_name, email, password_hash, language, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(new_user.username)
    .bind(new_user.display_name)
    .bind(new_user.email)
    .bind(new_user.password_hash)
    .bind(new_user.language.code())
    .bind(now.0)
    .fetch_one(&mut *conn)
    .await?;
    insert_roles(conn, UserId(id), new_user.roles).await?;
    Ok(UserId(id))
}

pub async fn exists(conn: &mut AnyConnection, username: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE username = $1").bind(username).fetch_optional(conn).await?;
    Ok(found.is_some())
}

const USER_COLUMNS: &str = "id, username, display_name, email, language, failed_logins, locked_until, disabled_at";

pub async fn get(db: &Db, id: UserId) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(db.pool())
        .await?;
    match row {
        Some(row) => Ok(Some(with_roles(db, user_from_row(&row)?).await?)),
        None => Ok(None),
    }
}

pub async fn find_for_login(db: &Db, username: &str) -> Result<Option<LoginCandidate>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1"))
        .bind(username)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let password_hash = row.try_get("password_hash")?;
    let user = with_roles(db, user_from_row(&row)?).await?;
    Ok(Some(LoginCandidate { user, password_hash }))
}

pub async fn list(db: &Db) -> Result<Vec<User>, sqlx::Error> {
    let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY username")).fetch_all(db.pool()).await?;
    let role_rows = sqlx::query("SELECT user_id, role FROM user_roles").fetch_all(db.pool()).await?;
    let mut users = rows.iter().map(user_from_row).collect::<Result<Vec<_>, _>>()?;
    for role_row in role_rows {
        let user_id: i64 = role_row.try_get("user_id")?;
        let role_name: String = role_row.try_get("role")?;
        if let (Some(user), Ok(role)) = (users.iter_mut().find(|u| u.id.0 == user_id), role_name.parse()) {
            user.roles.push(role);
        }
    }
    for user in &mut users {
        user.roles.sort();
    }
    Ok(users)
}

pub async fn set_roles(conn: &mut AnyConnection, id: UserId, roles: &[Role]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM user_roles WHERE user_id = $1").bind(id.0).execute(&mut *conn).await?;
    insert_roles(conn, id, roles).await
}

async fn insert_roles(conn: &mut AnyConnection, id: UserId, roles: &[Role]) -> Result<(), sqlx::Error> {
    for role in roles {
        sqlx::query("INSERT INTO user_roles (user_id, role) VALUES ($1, $2)")
            .bind(id.0)
            .bind(role.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn set_disabled(
    conn: &mut AnyConnection,
    id: UserId,
    disabled_at: Option<Millis>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
        .bind(disabled_at.map(|at| at.0))
        .bind(id.0)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn set_language(db: &Db, id: UserId, language: Language) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET language = $1 WHERE id = $2")
        .bind(language.code())
        .bind(id.0)
        .execute(db.pool())
        .await
        .map(|_| ())
}

/// Counts a failed login and locks the account once `threshold` failures follow each other.
/// One statement, so that concurrent attempts cannot both slip under the threshold.
pub async fn record_failed_login(
    db: &Db,
    id: UserId,
    threshold: u32,
    locked_until: Millis,
) -> Result<Option<Millis>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE users SET failed_logins = failed_logins + 1,
             locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END
         WHERE id = $1 RETURNING locked_until",
    )
    .bind(id.0)
    .bind(i64::from(threshold))
    .bind(locked_until.0)
    .fetch_one(db.pool())
    .await?;
    Ok(row.try_get::<Option<i64>, _>("locked_until")?.map(Millis))
}

/// A successful login or an admin's unlock starts the count again.
pub async fn clear_failed_logins(db: &Db, id: UserId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1")
        .bind(id.0)
        .execute(db.pool())
        .await
        .map(|_| ())
}

async fn with_roles(db: &Db, mut user: User) -> Result<User, sqlx::Error> {
    let rows = sqlx::query("SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role")
        .bind(user.id.0)
        .fetch_all(db.pool())
        .await?;
    for row in rows {
        let name: String = row.try_get("role")?;
        // A role name this version does not know grants nothing rather than failing the login.
        if let Ok(role) = name.parse() {
            user.roles.push(role);
        }
    }
    user.roles.sort();
    Ok(user)
}

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    let language: String = row.try_get("language")?;
    Ok(User {
        id: UserId(row.try_get("id")?),
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        email: row.try_get("email")?,
        language: Language::from_code(&language).unwrap_or_default(),
        roles: Vec::new(),
        failed_logins: row.try_get("failed_logins")?,
        locked_until: row.try_get::<Option<i64>, _>("locked_until")?.map(Millis),
        disabled: row.try_get::<Option<i64>, _>("disabled_at")?.is_some(),
    })
}
