//! Mail from a case leaves over SMTP to a real server (Python's standard smtpd as a sink), with
//! its threading headers; when the server is down the message waits, is retried, and is not lost.

use std::time::Duration;

use loket_crm::clock::Clock;
use loket_crm::db::Backend;
use loket_crm::mail::{Mailer, SmtpSecurity, SmtpSettings, deliver_due};
use loket_crm::records::outbox::{self, MAX_ATTEMPTS, NewMail};
use loket_crm::testing::{SmtpSink, TEST_START, TestDb, free_port};

fn mailer(port: u16) -> Mailer {
    Mailer::new(&SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "Gemeente Loket <loket@gemeente.example>".into(),
    })
    .expect("mailer")
}

async fn queue(db: &loket_crm::db::Db, case_id: Option<i64>, subject: &str) -> outbox::OutboxMail {
    let mut conn = db.pool().acquire().await.unwrap();
    let mail = NewMail {
        case_id,
        to_address: "emma.claes@example.be",
        subject,
        body: "Beste Emma,\n\nTot ziens.",
        created_by: "agent",
        auto_submitted: None,
    };
    outbox::enqueue(&mut conn, &mail, "gemeente.example", TEST_START).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_mail_reaches_a_real_smtp_server_with_its_thread() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let db = &test_db.db;
    loket_crm::demo::seed(db, TEST_START, 2026).await.unwrap();
    let sink = SmtpSink::start();
    let first = queue(db, Some(1), "Uw dossier 2026-000001").await;
    let second = queue(db, Some(1), "Re: Uw dossier 2026-000001").await;
    let clock = Clock::manual(TEST_START);
    assert_eq!(deliver_due(db, &mailer(sink.port), &clock).await.unwrap(), 2);
    let mut received = sink.messages();
    received.sort_by_key(|message| message.contains("Re: "));
    assert_eq!(received.len(), 2);
    assert!(received[0].contains(&format!("Message-ID: {}", first.message_id)), "{}", received[0]);
    assert!(
        received[0].contains("From: \"Gemeente Loket\" <loket@gemeente.example>")
            || received[0].contains("From: Gemeente Loket <loket@gemeente.example>")
    );
    assert!(received[0].contains("X-Loket-Case: 1"));
    assert!(!received[0].contains("Auto-Submitted"), "an agent's mail is not automatic");
    assert!(received[1].contains(&format!("In-Reply-To: {}", first.message_id)), "{}", received[1]);
    assert!(received[1].contains(&format!("References: {}", first.message_id)));
    assert!(received[1].contains(&second.message_id));
    let statuses: Vec<String> = outbox::for_case(db, 1).await.unwrap().into_iter().map(|mail| mail.status).collect();
    assert_eq!(statuses, ["sent", "sent"]);
    assert!(outbox::due(db, clock.now(), 10).await.unwrap().is_empty(), "nothing is sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_waits_while_the_server_is_down_and_is_never_dropped() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let db = &test_db.db;
    loket_crm::demo::seed(db, TEST_START, 2026).await.unwrap();
    let mail = queue(db, Some(1), "Uw dossier").await;
    let clock = Clock::manual(TEST_START);
    // Nothing listens on this port.
    let down = mailer(free_port());
    assert_eq!(deliver_due(db, &down, &clock).await.unwrap(), 0);
    let after_one = &outbox::for_case(db, 1).await.unwrap()[0];
    assert_eq!((after_one.status.as_str(), after_one.attempts), ("pending", 1));
    assert!(after_one.last_error.is_some(), "the failure is shown on the case");
    // Not retried before its back-off (one minute)…
    assert_eq!(deliver_due(db, &down, &clock).await.unwrap(), 0);
    assert_eq!(outbox::for_case(db, 1).await.unwrap()[0].attempts, 1);
    // …then again and again, until it is marked failed and waits for a person.
    for _ in 1..MAX_ATTEMPTS {
        clock.advance(Duration::from_secs(3600));
        deliver_due(db, &down, &clock).await.unwrap();
    }
    let failed = &outbox::for_case(db, 1).await.unwrap()[0];
    assert_eq!((failed.status.as_str(), failed.attempts), ("failed", MAX_ATTEMPTS));
    clock.advance(Duration::from_secs(3600));
    assert_eq!(deliver_due(db, &down, &clock).await.unwrap(), 0);
    // Retried by hand once the server is back, it leaves.
    assert!(outbox::retry(db, mail.id, clock.now()).await.unwrap());
    let sink = SmtpSink::start();
    assert_eq!(deliver_due(db, &mailer(sink.port), &clock).await.unwrap(), 1);
    assert_eq!(outbox::for_case(db, 1).await.unwrap()[0].status, "sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_loket_writes_by_itself_is_marked_automatic() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let db = &test_db.db;
    loket_crm::demo::seed(db, TEST_START, 2026).await.unwrap();
    let sink = SmtpSink::start();
    let mut conn = db.pool().acquire().await.unwrap();
    let mail = NewMail {
        case_id: Some(1),
        to_address: "emma.claes@example.be",
        subject: "Uw dossier 2026-000001",
        body: "We hebben uw bericht ontvangen.",
        created_by: "loket",
        auto_submitted: Some(outbox::AutoSubmitted::Generated),
    };
    outbox::enqueue(&mut conn, &mail, "gemeente.example", TEST_START).await.unwrap();
    drop(conn);
    assert_eq!(outbox::for_case(db, 1).await.unwrap()[0].auto_submitted, Some(outbox::AutoSubmitted::Generated));
    assert_eq!(deliver_due(db, &mailer(sink.port), &Clock::manual(TEST_START)).await.unwrap(), 1);
    let received = sink.messages();
    assert!(received[0].contains("Auto-Submitted: auto-generated"), "{}", received[0]);
    assert!(received[0].contains("X-Auto-Response-Suppress: All"), "{}", received[0]);
}
