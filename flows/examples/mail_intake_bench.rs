//! The e-mail intake benchmark (issue 9): 1,000 messages pushed into eight Dovecot mailboxes by
//! IMAP APPEND, then the time until every one is a case with its contact, timeline entry and
//! acknowledgement in the outbox, and a work item in the router (in-process store). Run by
//! `bench/mail-intake.sh`, on SQLite and on PostgreSQL (`LOKET_TEST_POSTGRES_URL`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use loket_crm::clock::Clock;
use loket_crm::db::Backend;
use loket_crm::records::directory;
use loket_crm::records::documents::DiskStore;
use loket_crm::testing::{TEST_START, TestDb};
use loket_flows::email::config::IntakeSettings;
use loket_flows::email::{IntakeConfig, IntakeEvent, MailIntake, Outcome, Processor};
use loket_flows::testing::Dovecot;
use loket_routing::engine::{EngineOptions, Router};
use loket_routing::model::{QueueConfig, QueueId, RouterSettings};
use loket_routing::store::QueueStore;
use loket_routing::store::memory::MemoryStore;

const MAILBOXES: [&str; 8] =
    ["bevolking", "population", "paspoort", "burgerlijkestand", "etatcivil", "sociaal", "social", "belastingen"];

fn main() {
    let total: usize = std::env::var("MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    println!("mail intake benchmark: {total} messages in {} mailboxes; {} cores", MAILBOXES.len(), cores());
    println!("| database | messages | append (s) | intake (s) | messages/s | ms/message | goal | ratio |");
    println!("|---|---|---|---|---|---|---|---|");
    for backend in [Backend::Sqlite, Backend::Postgres] {
        runtime.block_on(run(backend, total));
    }
}

async fn run(backend: Backend, total: usize) {
    let dovecot = Dovecot::start(&MAILBOXES);
    let test_db = TestDb::new(backend).await;
    let db = test_db.db.clone();
    loket_crm::demo::seed(&db, TEST_START, 2026).await.expect("demo seed");
    let mailboxes = MAILBOXES.iter().map(|name| dovecot.mailbox(name)).collect();
    let config = Arc::new(IntakeConfig { intake: IntakeSettings::default(), mailboxes });
    let store = Arc::new(MemoryStore::new(RouterSettings::default()));
    for queue in directory::queues(&db).await.expect("queues") {
        store.configure_queue(QueueConfig::new(QueueId::new(&queue.code))).await.expect("queue");
    }
    let router = Arc::new(Router::start(store, EngineOptions::default()));

    let appending = Instant::now();
    let per_mailbox = total.div_ceil(MAILBOXES.len());
    let batches: Vec<Vec<Vec<u8>>> = (0..MAILBOXES.len())
        .map(|index| (0..per_mailbox).map(|n| index * per_mailbox + n).filter(|n| *n < total).map(message).collect())
        .collect();
    futures_util::future::join_all(MAILBOXES.iter().zip(&batches).map(|(name, batch)| dovecot.append(name, batch)))
        .await;
    let appended = appending.elapsed();

    let documents = std::env::temp_dir().join(format!("loket-bench-documents-{}", std::process::id()));
    let processor = Arc::new(Processor::new(
        db.clone(),
        Clock::System,
        Arc::new(DiskStore::new(documents.clone())),
        config,
        "gemeente.example",
    ));
    let started = Instant::now();
    let (intake, mut events) = MailIntake::start(processor, router.clone());
    let (mut cases, mut routed) = (0, 0);
    while routed < total {
        let event = tokio::time::timeout(Duration::from_secs(120), events.recv())
            .await
            .expect("progress within 120 s")
            .expect("the event channel");
        match event {
            IntakeEvent::Processed { outcome: Outcome::NewCase { .. }, .. } => cases += 1,
            IntakeEvent::Processed { outcome, .. } => panic!("every message should open a case: {outcome:?}"),
            IntakeEvent::Routed { count } => routed += count,
            IntakeEvent::Failed { error, .. } | IntakeEvent::RoutingFailed { error } => panic!("{error}"),
            IntakeEvent::CaughtUp { .. } => {}
        }
    }
    let elapsed = started.elapsed();
    intake.stop().await;
    assert_eq!(cases, total);
    let _ = std::fs::remove_dir_all(documents);
    let per_second = total as f64 / elapsed.as_secs_f64();
    println!(
        "| {} | {total} | {:.2} | {:.2} | {per_second:.0} | {:.2} | 100/s | {:.2} |",
        backend.name(),
        appended.as_secs_f64(),
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / total as f64,
        per_second / 100.0
    );
}

/// A citizen's first mail, from a new address each time (so each also creates a contact), half in
/// Dutch and half in French (so the language is detected for the mailboxes that detect it).
fn message(n: usize) -> Vec<u8> {
    let (subject, body) = if n.is_multiple_of(2) {
        ("Attest van woonst", "Goedendag, ik heb graag een attest van woonst voor mijn zoon. Met dank, en tot ziens.")
    } else {
        (
            "Certificat de résidence",
            "Bonjour, je voudrais un certificat de résidence pour mon fils. Merci pour votre aide.",
        )
    };
    format!(
        "From: Burger {n} <burger{n}@example.be>\r\nTo: loket@gemeente.example\r\nSubject: {subject} {n}\r\n\
         Message-ID: <bench-{n}@example.be>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0100\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}
