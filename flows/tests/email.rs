//! E-mail to case against real peers: Dovecot (started per test on a free port, messages
//! delivered by IMAP APPEND), loket's pollers, the router's in-process store, and Python's smtpd
//! receiving the acknowledgements. Each test runs on SQLite and on PostgreSQL. Nothing sleeps:
//! every wait is for an event of the intake, with a deadline.

use std::time::Duration;

use loket_crm::auth::Role;
use loket_crm::db::Db;
use loket_crm::db_test;
use loket_crm::records::{documents, inbound_mail, outbox, timeline};
use loket_crm::testing::{TEST_START, TestApp, free_port};
use loket_flows::email::classify::Noise;
use loket_flows::email::thread::ThreadedBy;
use loket_flows::email::{IntakeConfig, IntakeEvent, MailboxConfig, Outcome};
use loket_flows::testing::{Dovecot, IntakeSetup, delivered_mail, quick_settings, test_mailbox};
use loket_routing::model::{Channel, QueueId, Skill};
use loket_routing::store::QueueStore;
use tokio::sync::broadcast;

const DEADLINE: Duration = Duration::from_secs(30);

/// The demo municipality and a router for `mailboxes`, with quick retries.
async fn setup(db: Db, mailboxes: Vec<MailboxConfig>) -> IntakeSetup {
    IntakeSetup::new(db, mailboxes, quick_settings()).await
}

/// Reads events until `done` says the awaited one came (`loket_flows::testing::wait_for`).
async fn wait_for(
    events: &mut broadcast::Receiver<IntakeEvent>,
    what: &str,
    done: impl FnMut(&IntakeEvent) -> bool,
) -> Vec<IntakeEvent> {
    loket_flows::testing::wait_for(events, what, DEADLINE, done).await
}

/// Waits until `count` messages of `mailbox` are processed and returns their outcomes.
async fn processed(events: &mut broadcast::Receiver<IntakeEvent>, mailbox: &str, count: usize) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    if count == 0 {
        return outcomes;
    }
    wait_for(events, &format!("{count} processed message(s) in {mailbox}"), |event| {
        if let IntakeEvent::Processed { mailbox: name, outcome, .. } = event
            && name == mailbox
        {
            outcomes.push(outcome.clone());
        }
        outcomes.len() == count
    })
    .await;
    outcomes
}

async fn routed(events: &mut broadcast::Receiver<IntakeEvent>, count: usize) {
    let mut total = 0;
    wait_for(events, &format!("{count} routed case(s)"), |event| {
        if let IntakeEvent::Routed { count } = event {
            total += count;
        }
        total >= count
    })
    .await;
}

fn mail(from: &str, subject: &str, message_id: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: intake@gemeente.example\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n\
         Date: Sat, 28 Nov 2026 10:00:00 +0100\r\n{extra_headers}\r\n{body}\r\n"
    )
    .into_bytes()
}

fn new_case(outcome: &Outcome) -> (i64, String) {
    match outcome {
        Outcome::NewCase { case_id, number, .. } => (*case_id, number.clone()),
        other => panic!("expected a new case, got {other:?}"),
    }
}

db_test!(new_mail_opens_a_case_with_a_work_item_and_an_acknowledgement, |db: Db| async move {
    let dovecot = Dovecot::start(&["intake"]);
    let setup = setup(db.clone(), vec![dovecot.mailbox("intake")]).await;
    let (intake, mut events) = setup.start();
    let body = concat!(
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        "Bonjour, je voudrais un certificat de résidence pour mon fils. Merci d'avance pour votre aide.\r\n",
        "--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"carte.pdf\"\r\n",
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b1--"
    );
    let raw = mail(
        "Jean Dupont <Jean.Dupont@example.be>",
        "Certificat de résidence",
        "<first@example.be>",
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n",
        body,
    );
    dovecot.append("intake", &[raw]).await;
    let outcomes = processed(&mut events, "intake", 1).await;
    let (case_id, number) = new_case(&outcomes[0]);
    assert!(matches!(outcomes[0], Outcome::NewCase { acknowledged: true, .. }));
    routed(&mut events, 1).await;

    let case = loket_crm::records::cases::get(&db, loket_crm::records::cases::CaseId(case_id)).await.unwrap().unwrap();
    assert_eq!(
        (case.channel.as_str(), case.service_code.as_str(), case.queue_code.as_deref()),
        ("email", "population", Some("population-fr-l1")),
        "the French text routes to the French queue"
    );
    assert_eq!(case.subject, "Certificat de résidence");
    let contact_id = case.contact_id.expect("a contact");
    let contact: (String, String, String) =
        sqlx::query_as("SELECT first_name, last_name, language FROM contacts WHERE id = $1")
            .bind(contact_id)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!(contact, ("Jean".to_owned(), "Dupont".to_owned(), "fr".to_owned()));
    let email: String = sqlx::query_scalar("SELECT email FROM contact_emails WHERE contact_id = $1")
        .bind(contact_id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(email, "jean.dupont@example.be");

    let entries = timeline::for_case(&db, case_id, 10).await.unwrap();
    let kinds: Vec<&str> = entries.iter().map(|entry| entry.kind.as_str()).collect();
    assert_eq!(kinds, ["email_out", "email_in", "document", "created"]);
    assert!(entries[1].body.as_deref().unwrap().contains("certificat de résidence"));
    let documents = documents::for_case(&db, case_id).await.unwrap();
    assert_eq!(documents.len(), 1);
    assert_eq!((documents[0].file_name.as_str(), documents[0].size_bytes), ("carte.pdf", 9));

    let waiting = setup.router.store().waiting(&QueueId::new("population-fr-l1"), 10).await.unwrap();
    assert_eq!(waiting.len(), 1);
    let item = &waiting[0].spec;
    assert_eq!((item.channel, item.case_id), (Channel::Email, Some(case_id)));
    assert_eq!(item.language, Some(Skill("fr".into())));
    assert!(item.required_skills.iter().any(|requirement| requirement.skill == Skill("population".into())));

    let received = delivered_mail(&db, 1).await;
    assert_eq!(received.len(), 1);
    assert!(received[0].contains("To: jean.dupont@example.be"), "{}", received[0]);
    assert!(received[0].contains(&number), "the acknowledgement names the case: {}", received[0]);
    assert!(received[0].contains("Nous avons bien re"), "in French: {}", received[0]);
    assert!(received[0].contains("Auto-Submitted: auto-replied"), "marked as automatic (RFC 3834): {}", received[0]);
    intake.stop().await;
});

db_test!(replies_join_their_case_by_number_and_by_reference, |db: Db| async move {
    let dovecot = Dovecot::start(&["intake"]);
    let setup = setup(db.clone(), vec![dovecot.mailbox("intake")]).await;
    let (intake, mut events) = setup.start();
    // Emma is a known contact (Dutch); she writes in English.
    let first = mail(
        "Emma Claes <emma.claes@example.be>",
        "Passport appointment",
        "<e1@example.be>",
        "",
        "Hello, I would like an appointment for a passport. Thank you for your help.",
    );
    dovecot.append("intake", &[first]).await;
    let (case_id, number) = new_case(&processed(&mut events, "intake", 1).await[0]);
    let ack = outbox::for_case(&db, case_id).await.unwrap().remove(0);
    assert!(ack.subject.starts_with(&format!("Uw dossier {number}")), "Emma is answered in Dutch: {}", ack.subject);

    let by_number =
        mail("emma.claes@example.be", &format!("Re: Uw dossier {number}"), "<e2@example.be>", "", "Ik kom dinsdag.");
    // Her husband answers the acknowledgement from his own address.
    let by_reference = mail(
        "Tom Claes <tom@example.be>",
        "Re: passport",
        "<t1@example.be>",
        &format!("In-Reply-To: {}\r\nReferences: <e1@example.be> {}\r\n", ack.message_id, ack.message_id),
        "Emma cannot come on Tuesday.",
    );
    // A stranger who types (or guesses) the number opens a case of their own.
    let stranger = mail("someone@example.org", &format!("Question about {number}"), "<s1@example.org>", "", "Hallo.");
    dovecot.append("intake", &[by_number, by_reference, stranger]).await;
    let outcomes = processed(&mut events, "intake", 3).await;
    assert_eq!(outcomes[0], Outcome::Reply { case_id, by: ThreadedBy::Number });
    assert_eq!(outcomes[1], Outcome::Reply { case_id, by: ThreadedBy::Reference });
    let (other_case, _) = new_case(&outcomes[2]);
    assert_ne!(other_case, case_id);

    let incoming = timeline::for_case(&db, case_id, 20).await.unwrap();
    let incoming: Vec<_> = incoming.iter().filter(|entry| entry.kind == "email_in").collect();
    assert_eq!(incoming.len(), 3, "the first mail and both replies are on Emma's case");
    assert_eq!(outbox::for_case(&db, case_id).await.unwrap().len(), 1, "replies get no acknowledgement");
    intake.stop().await;
});

db_test!(the_same_message_in_two_mailboxes_makes_one_case, |db: Db| async move {
    let dovecot = Dovecot::start(&["bevolking", "paspoort"]);
    let setup = setup(db.clone(), vec![dovecot.mailbox("bevolking"), dovecot.mailbox("paspoort")]).await;
    let before = setup.count("cases").await;
    let (intake, mut events) = setup.start();
    let raw =
        mail("Lucas <lucas.lambert@example.be>", "Attest", "<both@example.be>", "", "Bonjour, je voudrais un attest.");
    // Delivered to both at once: the two pollers race for it.
    tokio::join!(
        dovecot.append("bevolking", std::slice::from_ref(&raw)),
        dovecot.append("paspoort", std::slice::from_ref(&raw))
    );
    let mut outcomes = Vec::new();
    wait_for(&mut events, "the message processed in both mailboxes", |event| {
        if let IntakeEvent::Processed { outcome, .. } = event {
            outcomes.push(outcome.clone());
        }
        outcomes.len() == 2
    })
    .await;
    let new_cases = outcomes.iter().filter(|outcome| matches!(outcome, Outcome::NewCase { .. })).count();
    assert_eq!(new_cases, 1, "{outcomes:?}");
    assert!(outcomes.contains(&Outcome::Duplicate), "{outcomes:?}");
    assert_eq!(setup.count("cases").await, before + 1);
    let acks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(db.pool()).await.unwrap();
    assert_eq!(acks, 1, "one acknowledgement");
    intake.stop().await;
});

db_test!(machines_get_no_case_and_no_reply, |db: Db| async move {
    let dovecot = Dovecot::start(&["intake"]);
    let setup = setup(db.clone(), vec![dovecot.mailbox("intake")]).await;
    let before = setup.count("cases").await;
    let (intake, mut events) = setup.start();
    let bounce_body = concat!(
        "--r\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n",
        "--r\r\nContent-Type: message/delivery-status\r\n\r\nStatus: 5.1.1\r\n--r--"
    );
    let messages = vec![
        mail("a@example.be", "Re: Uw dossier", "<n1@x>", "Auto-Submitted: auto-replied\r\n", "Ik ben afwezig."),
        mail("news@example.be", "Nieuwsbrief", "<n2@x>", "Precedence: bulk\r\n", "Nieuws."),
        mail("list@example.be", "Digest", "<n3@x>", "Precedence: list\r\n", "Digest."),
        mail(
            "MAILER-DAEMON@mx.example.be",
            "Undelivered Mail Returned to Sender",
            "<n4@x>",
            "Return-Path: <>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n",
            bounce_body,
        ),
        mail("b@example.be", "Automatisch antwoord: Uw dossier", "<n5@x>", "", "Ik ben met vakantie."),
        mail("intake@gemeente.example", "Uw dossier", "<n6@x>", "", "A loop."),
    ];
    dovecot.append("intake", &messages).await;
    let outcomes = processed(&mut events, "intake", messages.len()).await;
    assert_eq!(
        outcomes,
        [
            Outcome::Noise(Noise::AutoSubmitted),
            Outcome::Noise(Noise::Bulk),
            Outcome::Noise(Noise::Bulk),
            Outcome::Noise(Noise::Bounce),
            Outcome::Noise(Noise::OutOfOffice),
            Outcome::Noise(Noise::OwnMailbox),
        ]
    );
    assert_eq!(setup.count("cases").await, before);
    let mail_out: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(db.pool()).await.unwrap();
    assert_eq!(mail_out, 0, "no auto-reply to an auto-reply");
    intake.stop().await;
});

db_test!(a_restart_reads_nothing_twice_and_loses_nothing, |db: Db| async move {
    let dovecot = Dovecot::start(&["intake"]);
    let setup = setup(db.clone(), vec![dovecot.mailbox("intake")]).await;
    let before = setup.count("cases").await;
    let numbered = |n: u32| {
        mail(
            &format!("c{n}@example.be"),
            &format!("Vraag {n}"),
            &format!("<r{n}@x>"),
            "",
            "Goedendag, ik heb een vraag over mijn adres.",
        )
    };

    let (first_run, mut events) = setup.start();
    dovecot.append("intake", &[numbered(1), numbered(2)]).await;
    processed(&mut events, "intake", 2).await;
    first_run.stop().await;

    // Mail arrives while loket is down…
    dovecot.append("intake", &[numbered(3)]).await;
    let (second_run, mut events) = setup.start();
    let mut outcomes = Vec::new();
    wait_for(&mut events, "the second run to catch up", |event| match event {
        IntakeEvent::Processed { uid, outcome, .. } => {
            outcomes.push((*uid, outcome.clone()));
            false
        }
        IntakeEvent::CaughtUp { .. } => true,
        _ => false,
    })
    .await;
    // …and is read, alone: the two before it are not read again.
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(outcomes[0].0, Some(3));
    assert!(matches!(outcomes[0].1, Outcome::NewCase { .. }));
    second_run.stop().await;
    assert_eq!(setup.count("cases").await, before + 3);

    // The folder was recreated (a new UIDVALIDITY): every message is read again and recognised.
    sqlx::query("UPDATE mailbox_state SET uid_validity = 1").execute(db.pool()).await.unwrap();
    let (third_run, mut events) = setup.start();
    let outcomes = processed(&mut events, "intake", 3).await;
    assert_eq!(outcomes, [Outcome::Duplicate, Outcome::Duplicate, Outcome::Duplicate]);
    third_run.stop().await;
    assert_eq!(setup.count("cases").await, before + 3);
    let state = inbound_mail::states(&db).await.unwrap().remove(0);
    assert_eq!(state.last_uid, 3);
    assert!(state.last_success_at.is_some() && state.last_error.is_none());
});

db_test!(malformed_mime_still_becomes_a_case, |db: Db| async move {
    let dovecot = Dovecot::start(&["intake"]);
    let setup = setup(db.clone(), vec![dovecot.mailbox("intake")]).await;
    let (intake, mut events) = setup.start();
    // No Message-ID, a boundary that never comes, base64 that is not, a raw 8-bit byte.
    let raw = b"From: Noor <noor@example.be>\r\nSubject: Kapotte bijlage\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=\"missing\"\r\n\r\n--wrong\r\n\
        Content-Transfer-Encoding: base64\r\n\r\n!!! not base64 \xe9\xff\r\nGoedendag, zie bijlage.\r\n"
        .to_vec();
    dovecot.append("intake", &[raw]).await;
    let (case_id, _) = new_case(&processed(&mut events, "intake", 1).await[0]);
    let case = loket_crm::records::cases::get(&db, loket_crm::records::cases::CaseId(case_id)).await.unwrap().unwrap();
    assert_eq!(case.subject, "Kapotte bijlage");
    assert!(case.contact_id.is_some(), "the sender could be read");
    intake.stop().await;
});

db_test!(an_unreachable_mailbox_is_retried_with_backoff_and_shows_its_error, |db: Db| async move {
    let mut mailbox = test_mailbox("dead", free_port());
    mailbox.language = Some(loket_crm::i18n::Language::Nl);
    let setup = setup(db.clone(), vec![mailbox]).await;
    let (intake, mut events) = setup.start();
    let mut failures = Vec::new();
    wait_for(&mut events, "three failures", |event| {
        if let IntakeEvent::Failed { failures: count, retry_in, error, .. } = event {
            assert!(error.contains("cannot connect"), "{error}");
            failures.push((*count, retry_in.as_millis()));
        }
        failures.len() == 3
    })
    .await;
    assert_eq!(failures, [(1, 50), (2, 100), (3, 200)], "the wait doubles");
    let state = inbound_mail::states(&db).await.unwrap().remove(0);
    assert_eq!(state.mailbox, "dead");
    assert!(state.failures >= 3);
    assert!(state.last_error.as_deref().is_some_and(|error| error.contains("cannot connect")));
    assert!(state.next_attempt_at.is_some() && state.last_success_at.is_none());
    intake.stop().await;

    // The admin page shows it; only those who configure loket see it.
    let app = TestApp::new(db.clone());
    let (_, password) = app.create_user("beheerder", &[Role::Admin]).await;
    let mut admin = app.login("beheerder", &password).await;
    let page = app.get(&mut admin, "/admin/mailboxes").await;
    assert_eq!(page.status.as_u16(), 200, "{}", page.body);
    assert!(page.body.contains("<th scope=\"row\">dead</th>") && page.body.contains("cannot connect"), "{}", page.body);
    let (_, password) = app.create_user("medewerker", &[Role::Agent]).await;
    let mut agent = app.login("medewerker", &password).await;
    assert_eq!(app.get(&mut agent, "/admin/mailboxes").await.status.as_u16(), 403);
});

db_test!(the_demo_mailboxes_fit_the_demo_municipality, |db: Db| async move {
    loket_crm::demo::seed(&db, TEST_START, 2026).await.unwrap();
    let text = include_str!("../mailboxes.demo.toml");
    let config = IntakeConfig::parse("mailboxes.demo.toml", text).unwrap();
    config.check_against(&db).await.unwrap();
    let mut wrong = config.clone();
    wrong.mailboxes[0].queue = "population-{language}-l9".to_owned();
    let error = wrong.check_against(&db).await.unwrap_err();
    assert!(error.to_string().contains("unknown queue \"population-"), "{error}");
});
