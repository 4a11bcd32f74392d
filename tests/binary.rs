//! The `loket` binary as a user runs it: a real process, real HTTP, a real database.

mod support;

use loket_crm::db::Backend;
use loket_crm::testing::TestDb;
use support::{TempDir, client, login, loket, start, status_of};

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
fn config_check_validates_the_ivr_flows_and_serve_refuses_a_broken_one() {
    let dir = TempDir::new();
    std::fs::write(dir.0.join("loket.toml"), "[ivr]\nflows = \"ivr.toml\"\n").unwrap();
    std::fs::write(dir.0.join("ivr.toml"), loket_ivr::DEMO).unwrap();
    let output = loket(&dir.0).args(["config", "check", "loket.toml"]).output().expect("run loket");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "loket.toml: valid (1 IVR flows)\n");
    let broken = loket_ivr::DEMO.replace(r#"next = "deflection", on_failure"#, r#"next = "deflektion", on_failure"#);
    std::fs::write(dir.0.join("ivr.toml"), broken).unwrap();
    let output = loket(&dir.0).args(["config", "check", "loket.toml"]).output().expect("run loket");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains(r#"ivr.toml: flow "main", node "identify": `next` names "deflektion", which is not a node"#),
        "{stderr}"
    );
    let output = loket(&dir.0).arg("serve").output().expect("run loket");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("deflektion"));
    assert!(!dir.0.join("data").exists(), "nothing was created");
}

/// The files other sections name are read by `config check` too, and a broken one is named with
/// its key: the mailboxes (a queue template with an unknown placeholder) and the register.
#[test]
fn config_check_reads_the_mailboxes_and_the_register_files() {
    let dir = TempDir::new();
    let config = "[mail]\nmailboxes = \"mailboxes.toml\"\n[register]\nfile = \"people.toml\"\n";
    std::fs::write(dir.0.join("loket.toml"), config).unwrap();
    let mailbox = "[[mailboxes]]\nname = \"paspoort\"\naddress = \"paspoort@gemeente.example\"\nhost = \"127.0.0.1\"\n\
                   port = 143\nsecurity = \"plain\"\nusername = \"p\"\npassword = \"p\"\nservice = \"population\"\n\
                   case_type = \"passport\"\nqueue = \"population-{lang}-l1\"\n";
    std::fs::write(dir.0.join("mailboxes.toml"), mailbox).unwrap();
    let output = loket(&dir.0).args(["config", "check", "loket.toml"]).output().expect("run loket");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("mailboxes.toml: mailbox \"paspoort\": queue knows only the placeholder {language}"),
        "{stderr}"
    );
    std::fs::write(dir.0.join("mailboxes.toml"), mailbox.replace("{lang}", "{language}")).unwrap();
    let output = loket(&dir.0).args(["config", "check", "loket.toml"]).output().expect("run loket");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("people.toml (register.file): "), "{stderr}");
    let person = "[[person]]\nnumber = \"12345678901\"\nfirst_name = \"A\"\nlast_name = \"B\"\n";
    std::fs::write(dir.0.join("people.toml"), person).unwrap();
    let output = loket(&dir.0).args(["config", "check", "loket.toml"]).output().expect("run loket");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("people.toml: person 1: the number is not valid"), "{stderr}");
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
