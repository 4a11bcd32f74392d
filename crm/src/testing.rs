//! Test support: a fresh database per test on either back end, an in-process app to drive the
//! real router with real sessions and CSRF tokens, and a real SMTP server that keeps what it gets.
//!
//! PostgreSQL comes from `LOKET_TEST_POSTGRES_URL` (default: the local server's `test` database);
//! each test gets its own schema, dropped afterwards. When PostgreSQL is missing the test fails
//! and says so: the storage suite is only proven when it has run on both engines.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::auth::{Role, hash_password};
use crate::clock::{Clock, Millis};
use crate::db::{Backend, Db};
use crate::i18n::Language;
use crate::records::documents::DiskStore;
use crate::records::users::{self, NewUser, UserId};
use crate::web::{AppState, WebConfig, router};

pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Generates `mod $name { sqlite, postgres }`: the same test body on both back ends.
#[macro_export]
macro_rules! db_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            // Multi-threaded: `TestDb::drop` blocks its thread while the pool returns connections
            // (and flushes their rollbacks) on another.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let test_db = $crate::testing::TestDb::new($crate::db::Backend::Sqlite).await;
                ($body)(test_db.db.clone()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let test_db = $crate::testing::TestDb::new($crate::db::Backend::Postgres).await;
                ($body)(test_db.db.clone()).await;
            }
        }
    };
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

pub struct TestDb {
    pub db: Db,
    /// The URL that reaches this database (and, on PostgreSQL, only this test's schema).
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteFile(std::path::PathBuf),
    PostgresSchema { url: String, schema: String },
}

impl TestDb {
    /// A migrated, empty database.
    pub async fn new(backend: Backend) -> TestDb {
        let unique =
            format!("{}_{}_{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed), rand::random::<u32>());
        let (url, cleanup) = match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("loket-test-{unique}.db"));
                (format!("sqlite://{}?mode=rwc", path.display()), Cleanup::SqliteFile(path))
            }
            Backend::Postgres => {
                let base = postgres_url();
                let schema = format!("loket_test_{unique}");
                let admin =
                    Db::connect(&base).await.unwrap_or_else(|error| panic!("{}", postgres_missing(&base, &error)));
                shared_extensions(&admin).await;
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(admin.pool())
                    .await
                    .expect("create test schema");
                admin.close().await;
                let separator = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{separator}options=-c%20search_path%3D{schema}%2Cpublic");
                (url, Cleanup::PostgresSchema { url: base, schema })
            }
        };
        let db = Db::connect(&url).await.expect("connect to the test database");
        db.migrate().await.expect("migrate the test database");
        eprintln!("storage test on {}", backend.name());
        TestDb { db, url, cleanup }
    }
}

/// Extensions exist once per database, not per schema: created in `public` by the first test
/// (tests running at once would race to create them), the migrations of every test schema find
/// them there. Were one created inside a test's schema, dropping that schema would take the other
/// tests' indexes with it.
async fn shared_extensions(admin: &Db) {
    static CREATED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CREATED
        .get_or_init(|| async {
            sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
                .execute(admin.pool())
                .await
                .expect("create the pg_trgm extension (PostgreSQL's contrib modules are needed)");
        })
        .await;
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::PostgresSchema { url, schema } => {
                // Drop cannot await, and the test's runtime may be shutting down: use a thread
                // with a runtime of its own.
                let (url, schema) = (url.clone(), schema.clone());
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                    runtime.block_on(async {
                        let admin = Db::connect(&url).await.ok()?;
                        // A connection the test left in a transaction must not hang the suite:
                        // past the timeout the schema stays behind, and says so.
                        sqlx::query("SET lock_timeout = '10s'").execute(admin.pool()).await.ok()?;
                        if let Err(error) =
                            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(admin.pool()).await
                        {
                            eprintln!("test schema {schema} left behind: {error}");
                        }
                        admin.close().await;
                        Some(())
                    })
                });
                let _ = dropped.join();
            }
        }
    }
}

pub fn postgres_url() -> String {
    std::env::var("LOKET_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

fn postgres_missing(url: &str, error: &dyn std::fmt::Display) -> String {
    format!(
        "PostgreSQL is needed by the storage suite and is not reachable at {url}: {error}\n\
         Start it (e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main start`) or point \
         LOKET_TEST_POSTGRES_URL at a server with trust auth and a `test` database."
    )
}

/// The whole console in process, on a manual clock.
pub struct TestApp {
    pub state: AppState,
    pub clock: Clock,
    router: Router,
    /// Where uploaded documents go; removed with the app.
    pub documents_dir: std::path::PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.documents_dir);
    }
}

/// A browser's cookie jar for one user, reduced to what loket sets: the session cookie and the
/// CSRF token of its last page.
#[derive(Clone, Debug, Default)]
pub struct Browser {
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub body: String,
}

pub const TEST_START: Millis = Millis(1_795_000_000_000);

impl TestApp {
    pub fn new(db: Db) -> TestApp {
        TestApp::with_config(db, WebConfig::default())
    }

    pub fn with_config(db: Db, config: WebConfig) -> TestApp {
        let clock = Clock::manual(TEST_START);
        let unique =
            format!("{}_{}_{}", std::process::id(), NEXT_ID.fetch_add(1, Ordering::Relaxed), rand::random::<u32>());
        let documents_dir = std::env::temp_dir().join(format!("loket-test-documents-{unique}"));
        let documents = Arc::new(DiskStore::new(documents_dir.clone()));
        let state = AppState::new(db, clock.clone(), config, None, documents);
        let router = router(state.clone());
        TestApp { state, clock, router, documents_dir }
    }

    pub async fn create_user(&self, username: &str, roles: &[Role]) -> (UserId, String) {
        let password = format!("{username}-password-123");
        let password_hash = hash_password(&password).expect("hash");
        let mut conn = self.state.db.pool().acquire().await.expect("connection");
        let new_user = NewUser {
            username,
            display_name: username,
            email: None,
            password_hash: &password_hash,
            language: Language::En,
            roles,
        };
        let id = users::insert(&mut conn, &new_user, self.clock.now()).await.expect("insert user");
        (id, password)
    }

    /// Opens the login page and signs in; the browser then holds the user's session.
    pub async fn login(&self, username: &str, password: &str) -> Browser {
        let mut browser = Browser::default();
        let response = self.get(&mut browser, "/login").await;
        assert_eq!(response.status, StatusCode::OK, "login page: {}", response.body);
        let response = self.post(&mut browser, "/login", &[("username", username), ("password", password)]).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "login of {username} failed: {}", response.body);
        browser.csrf = None;
        let home = self.get(&mut browser, "/").await;
        assert_eq!(home.status, StatusCode::OK, "home after login: {}", home.body);
        browser
    }

    pub async fn get(&self, browser: &mut Browser, path: &str) -> TestResponse {
        let mut request = Request::get(path);
        if let Some(cookie) = &browser.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(browser, request.body(Body::empty()).expect("request")).await
    }

    /// Posts a form with the browser's current CSRF token added.
    pub async fn post(&self, browser: &mut Browser, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        let csrf = browser.csrf.clone().unwrap_or_default();
        all.push(("csrf", &csrf));
        self.post_raw(browser, path, &all).await
    }

    /// Posts exactly these fields, for tests of a missing or forged token.
    pub async fn post_raw(&self, browser: &mut Browser, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let body = serde_html_form::to_string(fields).expect("form encoding");
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = &browser.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(browser, request.body(Body::from(body)).expect("request")).await
    }

    /// Uploads one file as a browser's multipart form does, with the CSRF token first.
    pub async fn upload(&self, browser: &mut Browser, path: &str, file_name: &str, bytes: &[u8]) -> TestResponse {
        let csrf = browser.csrf.clone().unwrap_or_default();
        let (content_type, body) = multipart(&[("csrf", &csrf)], "file", &[(file_name, bytes)]);
        let mut request = Request::post(path).header(header::CONTENT_TYPE, content_type);
        if let Some(cookie) = &browser.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(browser, request.body(Body::from(body)).expect("request")).await
    }

    async fn send(&self, browser: &mut Browser, request: Request<Body>) -> TestResponse {
        let response = tokio::time::timeout(Duration::from_secs(30), self.router.clone().oneshot(request))
            .await
            .expect("the router answers within 30 s")
            .expect("the router is infallible");
        let status = response.status();
        let header_text = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let location = header_text(header::LOCATION);
        let set_cookie = header_text(header::SET_COOKIE);
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(cookie) = &set_cookie {
            let pair = cookie.split(';').next().unwrap_or_default();
            browser.cookie = if pair.ends_with('=') { None } else { Some(pair.to_owned()) };
        }
        if let Some(token) = csrf_in(&body) {
            browser.csrf = Some(token);
        }
        TestResponse { status, location, set_cookie, body }
    }
}

fn csrf_in(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// Python's standard smtpd writing each message it receives to a file.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "loket-smtp-sink-{}-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).expect("sink dir");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .args(["-W", "ignore", script, &port.to_string()])
            .arg(&dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the SMTP sink (Python's standard smtpd, Python ≤ 3.11)");
        let stdout = child.stdout.take().expect("stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let first = BufReader::new(stdout).lines().next();
            let _ = ready_tx.send(first.and_then(Result::ok));
        });
        let line = ready_rx.recv_timeout(Duration::from_secs(20)).expect("the SMTP sink starts within 20 s");
        assert_eq!(line.as_deref(), Some("ready"), "the SMTP sink did not start (smtpd needs Python ≤ 3.11)");
        SmtpSink { child, port, dir }
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<String> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .expect("sink dir")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        paths.sort();
        paths.iter().map(|path| std::fs::read_to_string(path).expect("a received message")).collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a free port").port()
}

/// A multipart form body as a browser sends it: the fields in order, then each file under
/// `file_field`. Returns the Content-Type (with its boundary) and the body.
pub fn multipart(fields: &[(&str, &str)], file_field: &str, files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "loket-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    for (file_name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{file_name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A benchmark's size from the environment variable `name`, else `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

/// The `p`-th quantile (0–1) of durations sorted in ascending order.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
