//! Real peers for the e-mail tests and the benchmark (feature `testing`): a Dovecot IMAP server
//! started on a free port with a throw-away mail store and static users, and Python's standard
//! `smtpd` as the SMTP server acknowledgements go to (`crm/tests/support/smtp_sink.py`).
//!
//! A missing Dovecot or Python fails the test with what to install: the e-mail suite is only
//! proven against a real server.
//!
//! `IntakeSetup` is what the e-mail tests start from; `desk` holds the console over a real desk,
//! in process, for the board's test and the benchmark.

pub mod desk;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_imap::Client;
use tokio::net::TcpStream;
use tokio::sync::broadcast;

use loket_crm::clock::Clock;
use loket_crm::db::Db;
use loket_crm::mail::{Mailer, SmtpSecurity, SmtpSettings, deliver_due};
use loket_crm::records::directory;
use loket_crm::records::documents::DiskStore;
use loket_crm::testing::{SmtpSink, TEST_START, free_port};
use loket_routing::engine::{EngineOptions, Router};
use loket_routing::model::{QueueConfig, QueueId, RouterSettings};
use loket_routing::store::QueueStore;
use loket_routing::store::memory::MemoryStore;

use crate::email::config::{IntakeSettings, MailboxConfig, Security};
use crate::email::{IntakeConfig, IntakeEvent, MailIntake, Processor};

/// Every test user's password.
pub const PASSWORD: &str = "secret";

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

pub struct Dovecot {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Dovecot {
    /// Starts Dovecot with these users (each with an empty INBOX) and waits, with a deadline,
    /// until it accepts connections.
    pub fn start(users: &[&str]) -> Dovecot {
        let binary = ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
            .into_iter()
            .find(|path| Path::new(path).exists())
            .unwrap_or_else(|| {
                panic!(
                    "Dovecot is needed by the e-mail tests and is not installed \
                     (apt-get install dovecot-imapd; scripts/test installs it)"
                )
            });
        let dir = unique_dir("loket-dovecot");
        std::fs::create_dir_all(dir.join("run")).expect("the Dovecot test directory");
        // Dovecot's processes run as other users when started as root: they must reach the store.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let port = free_port();
        let identity = Identity::current();
        let users_file = dir.join("users");
        let lines: String = users
            .iter()
            .map(|user| {
                format!(
                    "{user}:{{PLAIN}}{PASSWORD}:{}:{}::{}\n",
                    identity.mail_uid,
                    identity.mail_gid,
                    dir.join("mail").join(user).display()
                )
            })
            .collect();
        std::fs::write(&users_file, lines).expect("the Dovecot users file");
        let config = dir.join("dovecot.conf");
        std::fs::write(&config, identity.config(&dir, port)).expect("the Dovecot configuration");
        let child = Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {binary}: {error}"));
        let mut dovecot = Dovecot { child, port, dir };
        dovecot.wait_until_listening(Duration::from_secs(20));
        dovecot
    }

    fn wait_until_listening(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let stderr: String = self
                    .child
                    .stderr
                    .take()
                    .map(|pipe| BufReader::new(pipe).lines().map_while(Result::ok).map(|line| line + "\n").collect())
                    .unwrap_or_default();
                panic!("Dovecot exited ({status}) before listening:\n{stderr}{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "Dovecot did not listen on port {} within {limit:?}:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Dovecot's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dovecot.log")).unwrap_or_default()
    }

    /// Delivers messages into `user`'s INBOX over IMAP APPEND, on one connection.
    pub async fn append(&self, user: &str, messages: &[Vec<u8>]) {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.expect("connect to Dovecot");
        let mut client = Client::new(tcp);
        client.read_response().await.expect("greeting").expect("a greeting");
        let mut session = client.login(user, PASSWORD).await.map_err(|(error, _)| error).expect("login");
        for raw in messages {
            session.append("INBOX", None, None, raw).await.expect("APPEND");
        }
        session.logout().await.expect("logout");
    }

    /// A mailbox of this server for `user`.
    pub fn mailbox(&self, user: &str) -> MailboxConfig {
        test_mailbox(user, self.port)
    }
}

/// A plain-IMAP mailbox on this host for `user`, with the rules of a population mailbox whose
/// language is detected.
pub fn test_mailbox(user: &str, port: u16) -> MailboxConfig {
    MailboxConfig {
        name: user.to_owned(),
        address: format!("{user}@gemeente.example"),
        host: "127.0.0.1".to_owned(),
        port,
        security: Security::Plain,
        username: user.to_owned(),
        password: PASSWORD.to_owned(),
        folder: "INBOX".to_owned(),
        service: "population".to_owned(),
        case_type: "certificates".to_owned(),
        queue: "population-{language}-l1".to_owned(),
        skills: vec!["population".to_owned()],
        language: None,
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its children; SIGKILL would orphan them.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Who Dovecot's processes and the mail store run as.
struct Identity {
    root: bool,
    user: String,
    group: String,
    mail_uid: String,
    mail_gid: String,
}

impl Identity {
    fn current() -> Identity {
        let id = |args: &[&str]| {
            let output = Command::new("id").args(args).output().expect("the `id` command");
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        };
        let uid = id(&["-u"]);
        if uid == "0" {
            // Dovecot refuses root for mail; Debian's package creates `dovenull`.
            Identity {
                root: true,
                user: String::new(),
                group: String::new(),
                mail_uid: id(&["-u", "dovenull"]),
                mail_gid: id(&["-g", "dovenull"]),
            }
        } else {
            Identity { root: false, user: id(&["-un"]), group: id(&["-gn"]), mail_uid: uid, mail_gid: id(&["-g"]) }
        }
    }

    fn config(&self, dir: &Path, port: u16) -> String {
        let dir = dir.display();
        let own_users = if self.root {
            String::new()
        } else {
            format!(
                "default_internal_user = {user}\ndefault_internal_group = {group}\ndefault_login_user = {user}\n",
                user = self.user,
                group = self.group
            )
        };
        format!(
            "base_dir = {dir}/run\nstate_dir = {dir}/run\nlog_path = {dir}/dovecot.log\n\
             protocols = imap\nlisten = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\n\
             auth_mechanisms = plain login\nfirst_valid_uid = 1\nfirst_valid_gid = 1\n\
             mail_location = maildir:~/Maildir\nmail_max_userip_connections = 100\n{own_users}\
             passdb {{\n  driver = passwd-file\n  args = {dir}/users\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = {dir}/users\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
             \x20 inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service anvil {{\n  chroot =\n}}\n"
        )
    }
}

fn unique_dir(prefix: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    ))
}

/// Reads events until `done` says the awaited one came, within `limit`; panics with what was
/// seen when it does not.
pub async fn wait_for(
    events: &mut broadcast::Receiver<IntakeEvent>,
    what: &str,
    limit: Duration,
    mut done: impl FnMut(&IntakeEvent) -> bool,
) -> Vec<IntakeEvent> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) => {
                let finished = done(&event);
                seen.push(event);
                if finished {
                    return seen;
                }
            }
            Ok(Err(error)) => panic!("waiting for {what}: the event channel failed: {error}; seen {seen:#?}"),
            Err(_) => panic!("no {what} within {limit:?}; seen {seen:#?}"),
        }
    }
}

/// The intake's settings with quick retries, for tests that make mailboxes fail.
pub fn quick_settings() -> IntakeSettings {
    IntakeSettings {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        timeout: Duration::from_secs(10),
        ..IntakeSettings::default()
    }
}

/// What the e-mail tests start from: the demo municipality on `db`, a router with its queues, the
/// intake's configuration, and a documents folder removed with it.
pub struct IntakeSetup {
    pub db: Db,
    pub config: Arc<IntakeConfig>,
    pub router: Arc<Router<MemoryStore>>,
    documents_dir: PathBuf,
}

impl IntakeSetup {
    pub async fn new(db: Db, mailboxes: Vec<MailboxConfig>, intake: IntakeSettings) -> IntakeSetup {
        loket_crm::demo::seed(&db, TEST_START, 2026).await.expect("demo seed");
        let config = Arc::new(IntakeConfig { intake, mailboxes });
        let store = Arc::new(MemoryStore::new(RouterSettings::default()));
        for queue in directory::queues(&db).await.expect("the queues") {
            store.configure_queue(QueueConfig::new(QueueId::new(&queue.code))).await.expect("a queue");
        }
        let router = Arc::new(Router::start(store, EngineOptions::default()));
        IntakeSetup { db, config, router, documents_dir: unique_dir("loket-flows-documents") }
    }

    pub fn processor(&self) -> Arc<Processor> {
        Arc::new(Processor::new(
            self.db.clone(),
            Clock::System,
            Arc::new(DiskStore::new(self.documents_dir.clone())),
            self.config.clone(),
            "gemeente.example",
        ))
    }

    /// A fresh processor and intake on the same database: a restart of loket.
    pub fn start(&self) -> (MailIntake, broadcast::Receiver<IntakeEvent>) {
        MailIntake::start(self.processor(), self.router.clone())
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(self.db.pool()).await.expect("a count")
    }
}

impl Drop for IntakeSetup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.documents_dir);
    }
}

/// Delivers the outbox to a real SMTP server and returns what it received, soft line breaks of
/// quoted-printable undone.
pub async fn delivered_mail(db: &Db, count: usize) -> Vec<String> {
    let sink = SmtpSink::start();
    let mailer = Mailer::new(&SmtpSettings {
        host: "127.0.0.1".into(),
        port: sink.port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "Gemeente Loket <loket@gemeente.example>".into(),
    })
    .unwrap();
    assert_eq!(deliver_due(db, &mailer, &Clock::System).await.unwrap(), count);
    sink.messages().into_iter().map(|message| message.replace("=\r\n", "").replace("=\n", "")).collect()
}
