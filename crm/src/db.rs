//! The database handle: one sqlx `AnyPool` over SQLite or PostgreSQL, chosen by the URL.
//!
//! Queries are written once in the SQL both engines share (`$1` placeholders, `BIGINT` times in
//! milliseconds, no booleans) and checked at run time by the one test suite that runs on both.

use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which engine a `Db` talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Failures to reach or prepare the database; query failures are `sqlx::Error`.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unsupported database URL scheme in {0:?}: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot create the directory {path} for the SQLite database: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("cannot connect to the {backend} database at {url}: {source}")]
    Connect { backend: &'static str, url: String, source: sqlx::Error },
    #[error("migrating the {backend} database failed: {source}")]
    Migrate { backend: &'static str, source: sqlx::migrate::MigrateError },
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

impl Db {
    /// Connects without migrating; `migrate` brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        install_default_drivers();
        let backend = backend_of(url)?;
        if backend == Backend::Sqlite {
            ensure_sqlite_dir(url)?;
        }
        let connect_error = |source| DbError::Connect { backend: backend.name(), url: redact_password(url), source };
        let pool = AnyPoolOptions::new()
            // SQLite serialises writers anyway; a small pool avoids needless busy waits.
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets the console read while a writer commits; foreign keys are off
                        // by default in SQLite and the schema relies on them.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(connect_error)?;
        Ok(Db { pool, backend })
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await.map_err(|source| DbError::Migrate { backend: self.backend.name(), source })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn backend_of(url: &str) -> Result<Backend, DbError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(DbError::UnsupportedUrl(redact_password(url)))
    }
}

fn ensure_sqlite_dir(url: &str) -> Result<(), DbError> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    let Some(dir) = std::path::Path::new(path).parent() else { return Ok(()) };
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| DbError::CreateDir { path: dir.display().to_string(), source })
}

/// A LIKE pattern matching `text` literally at the start (`Prefix`) or anywhere (`Contains`);
/// use it with `LIKE $n ESCAPE '\'`, which both engines understand.
pub fn like_pattern(text: &str, position: LikePosition) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    if position == LikePosition::Contains {
        escaped.push('%');
    }
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LikePosition {
    Prefix,
    Contains,
}

/// URLs end up in error messages and logs; a password in them must not.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact_password("postgres://loket:s3cret@db:5432/loket"), "postgres://loket:***@db:5432/loket");
        assert_eq!(redact_password("postgres://loket@db/loket"), "postgres://loket@db/loket");
        assert_eq!(redact_password("sqlite://data/loket.db"), "sqlite://data/loket.db");
    }

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("contact.searched_by", LikePosition::Prefix), "contact.searched\\_by%");
        assert_eq!(like_pattern("50%", LikePosition::Contains), "%50\\%%");
    }

    #[test]
    fn backend_follows_the_scheme() {
        assert_eq!(backend_of("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(backend_of("postgresql://h/d").unwrap(), Backend::Postgres);
        assert!(matches!(backend_of("mysql://h/d"), Err(DbError::UnsupportedUrl(_))));
    }
}
