//! The `loket` binary as a user runs it: a real process, real HTTP, a real database.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use loket_crm::db::Backend;
use loket_crm::testing::TestDb;

const DEADLINE: Duration = Duration::from_secs(60);

struct Loket {
    child: Child,
    base: String,
    credentials: Vec<(String, String)>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("loket-e2e-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
        % 1_000_000_007
}

fn loket(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loket"));
    command.current_dir(dir).env_remove("DATABASE_URL").env_remove("REDIS_URL").env("LOKET_LOG", "warn");
    command
}

/// Starts `loket serve --demo` on a free port and waits, with a deadline, until it says where.
fn start(extra_env: &[(&str, &str)]) -> Loket {
    let dir = TempDir::new();
    let mut command = loket(&dir.0);
    command.args(["serve", "--demo"]).env("LOKET_HTTP_LISTEN", "127.0.0.1:0").stdout(Stdio::piped());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn loket");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut credentials = Vec::new();
    let base = loop {
        let line = lines_rx.recv_timeout(DEADLINE).expect("loket announces its address within the deadline");
        if let Some(url) = line.strip_prefix("loket: console on ") {
            break url.trim_end_matches('/').to_owned();
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("  ") && fields.len() == 2 {
            credentials.push((fields[0].to_owned(), fields[1].to_owned()));
        }
    };
    Loket { child, base, credentials, _dir: dir }
}

impl Loket {
    fn password(&self, username: &str) -> &str {
        &self
            .credentials
            .iter()
            .find(|(name, _)| name == username)
            .unwrap_or_else(|| panic!("no demo user {username}"))
            .1
    }

    /// SIGTERM, then the process must exit by itself, successfully, within the deadline.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(status.success());
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "loket exited with {status} after SIGTERM");
                return;
            }
            assert!(started.elapsed() < DEADLINE, "loket did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Loket {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).timeout(Duration::from_secs(30)).build().expect("client")
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[start..start + html[start..].find('"').expect("end of value")].to_owned()
}

/// Logs in through the login page like a browser; returns the home page's HTML.
async fn login(client: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let page = client.get(format!("{base}/login")).send().await.expect("login page");
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.expect("body"));
    let response = client
        .post(format!("{base}/login"))
        .form(&[("csrf", csrf.as_str()), ("username", username), ("password", password)])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200, "{username} lands on a page after the redirect");
    assert_eq!(response.url().path(), "/", "{username} is sent home after login");
    response.text().await.expect("home")
}

async fn status_of(client: &reqwest::Client, base: &str, path: &str) -> u16 {
    client.get(format!("{base}{path}")).send().await.expect(path).status().as_u16()
}

#[tokio::test]
async fn the_demo_serves_the_login_page_and_every_demo_user_reaches_only_their_pages() {
    let loket = start(&[]);
    assert_eq!(
        loket.credentials.len(),
        10,
        "a password for each demo user: {:?}",
        loket.credentials.iter().map(|c| &c.0).collect::<Vec<_>>()
    );
    let anonymous = client();
    let page = anonymous.get(format!("{}/login", loket.base)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<form method=\"post\" action=\"/login\">"));
    // user → (may see /admin/users, may see /audit)
    let expectations = [
        ("admin", true, false),
        ("agent", false, false),
        ("agent2", false, false),
        ("supervisor", false, false),
        ("expert", false, false),
        ("knowledge", false, false),
        ("teller", false, false),
        ("manager", false, false),
        ("approver", false, false),
        ("dpo", false, true),
    ];
    for (username, admin_pages, audit_page) in expectations {
        let client = client();
        let home = login(&client, &loket.base, username, loket.password(username)).await;
        assert!(home.contains("Welkom") || home.contains("Bienvenue"), "{username}: {home}");
        let expected = |allowed: bool| if allowed { 200 } else { 403 };
        assert_eq!(
            status_of(&client, &loket.base, "/admin/users").await,
            expected(admin_pages),
            "{username} /admin/users"
        );
        assert_eq!(status_of(&client, &loket.base, "/audit").await, expected(audit_page), "{username} /audit");
        assert_eq!(status_of(&client, &loket.base, "/api/me").await, 200);
    }
    assert_eq!(status_of(&anonymous, &loket.base, "/readyz").await, 200);
    loket.stop();
}

#[tokio::test]
async fn the_same_binary_runs_on_postgresql() {
    let database = TestDb::new(Backend::Postgres).await;
    let loket = start(&[("DATABASE_URL", &database.url)]);
    let client = client();
    let home = login(&client, &loket.base, "admin", loket.password("admin")).await;
    assert!(home.contains("Welkom, Sofie Admin"), "{home}");
    let users = loket_crm::records::users::list(&database.db).await.unwrap();
    assert_eq!(users.len(), 10, "the demo landed in PostgreSQL");
    loket.stop();
}

#[test]
fn an_unreachable_postgresql_is_a_clear_error_not_a_panic() {
    let dir = TempDir::new();
    // Port 1 on loopback: nothing listens there, as when PostgreSQL is stopped.
    let output = loket(&dir.0)
        .arg("migrate")
        .env("DATABASE_URL", "postgres://postgres:secret@127.0.0.1:1/test")
        .output()
        .expect("run loket");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the database at postgres://postgres:***@127.0.0.1:1/test"), "{stderr}");
    assert!(stderr.contains("is the server running?"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("secret"), "{stderr}");
}

#[test]
fn config_check_names_the_file_key_and_line_of_a_misspelt_key() {
    let dir = TempDir::new();
    let file = dir.0.join("loket.toml");
    std::fs::write(&file, "[http]\nlisten = \"127.0.0.1:8080\"\n\n[database]\nulr = \"sqlite://x.db\"\n").unwrap();
    let output = loket(&dir.0).args(["config", "check", "loket.toml"]).output().expect("run loket");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.starts_with("loket.toml:5:1: key `database.ulr`: unknown field `ulr`"), "{stderr}");
    // `serve` refuses the same file before touching anything.
    let output = loket(&dir.0).arg("serve").output().expect("run loket");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("database.ulr"));
    assert!(!dir.0.join("data").exists(), "nothing was created");
}

#[test]
fn seeding_twice_changes_nothing_and_keeps_the_passwords() {
    let dir = TempDir::new();
    let first = loket(&dir.0).args(["demo", "seed"]).output().expect("seed");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let second = loket(&dir.0).args(["demo", "seed"]).output().expect("seed again");
    assert!(second.status.success());
    assert_eq!(first.stdout, second.stdout, "the same users and passwords are printed");
    let saved = std::fs::read_to_string(dir.0.join("data/demo-credentials.txt")).unwrap();
    assert_eq!(saved.lines().count(), 10);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.0.join("data/demo-credentials.txt")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "only the owner may read the demo passwords");
    }
}
