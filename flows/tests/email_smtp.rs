//! The SMTP listener and the answer about attachments over the limit, against real peers: Python's
//! `smtplib` as the MX (a subprocess), raw TCP clients for what no polite client does, Dovecot for
//! the same message read over IMAP, the router's in-process store, and Python's smtpd receiving
//! the acknowledgements. Tests that store mail run on SQLite and on PostgreSQL. Nothing sleeps:
//! every wait is for an event of the intake or a reply of the server, with a deadline.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use loket_crm::db::{Backend, Db};
use loket_crm::db_test;
use loket_crm::records::outbox::{self, AutoSubmitted};
use loket_crm::records::{cases, documents, timeline};
use loket_crm::testing::TestDb;
use loket_flows::email::config::IntakeSettings;
use loket_flows::email::thread::ThreadedBy;
use loket_flows::email::{IntakeEvent, MailIntake, MailboxConfig, Outcome, SmtpLimits, SmtpListener};
use loket_flows::testing::{Dovecot, IntakeSetup, quick_settings, test_mailbox};
use loket_routing::model::{Channel, QueueId};
use loket_routing::store::QueueStore;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Notify, broadcast};

const DEADLINE: Duration = Duration::from_secs(60);
const MIB: usize = 1024 * 1024;

/// The intake with its listener, and where the listener is.
fn start(setup: &IntakeSetup) -> (MailIntake, broadcast::Receiver<IntakeEvent>, SocketAddr) {
    let (intake, events) = setup.start();
    let address = intake.smtp_addr().expect("the SMTP listener listens");
    (intake, events, address)
}

/// Settings with a listener on a free port and quick retries.
fn settings() -> IntakeSettings {
    IntakeSettings { smtp_listen: Some("127.0.0.1:0".parse().unwrap()), ..quick_settings() }
}

/// A mailbox the MX delivers to and loket does not poll.
fn smtp_only(name: &str) -> MailboxConfig {
    MailboxConfig { host: String::new(), ..test_mailbox(name, 0) }
}

/// Reads events until `done` says the awaited one came (`loket_flows::testing::wait_for`).
async fn wait_for(
    events: &mut broadcast::Receiver<IntakeEvent>,
    what: &str,
    done: impl FnMut(&IntakeEvent) -> bool,
) -> Vec<IntakeEvent> {
    loket_flows::testing::wait_for(events, what, DEADLINE, done).await
}

/// The next `count` processed messages: mailbox, UID (none over SMTP) and outcome.
async fn processed(events: &mut broadcast::Receiver<IntakeEvent>, count: usize) -> Vec<(String, Option<u32>, Outcome)> {
    let mut found = Vec::new();
    wait_for(events, &format!("{count} processed message(s)"), |event| {
        if let IntakeEvent::Processed { mailbox, uid, outcome } = event {
            found.push((mailbox.clone(), *uid, outcome.clone()));
        }
        found.len() == count
    })
    .await;
    found
}

fn mail(from: &str, to: &str, subject: &str, message_id: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n\
         Date: Sat, 28 Nov 2026 10:00:00 +0100\r\n{extra_headers}\r\n{body}\r\n"
    )
    .into_bytes()
}

/// A message with a text part and one attachment of `size` bytes, base64 in lines of 76.
fn with_attachment(
    from: &str,
    subject: &str,
    message_id: &str,
    extra: &str,
    text: &str,
    file: &str,
    size: usize,
) -> Vec<u8> {
    let mut raw = mail(
        from,
        "intake@gemeente.example",
        subject,
        message_id,
        &format!("{extra}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n"),
        &format!(
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n--b1\r\nContent-Type: application/pdf\r\n\
             Content-Disposition: attachment; filename=\"{file}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ),
    );
    // Three zero bytes are "AAAA": the attachment is `size` bytes once decoded.
    assert_eq!(size % 57, 0, "whole lines of 57 bytes");
    let line = "A".repeat(76) + "\r\n";
    raw.extend(line.repeat(size / 57).into_bytes());
    raw.extend_from_slice(b"--b1--\r\n");
    raw
}

fn new_case(outcome: &Outcome) -> (i64, String) {
    match outcome {
        Outcome::NewCase { case_id, number, .. } => (*case_id, number.clone()),
        other => panic!("expected a new case, got {other:?}"),
    }
}

/// How the Python client sends.
#[derive(Clone, Copy)]
enum Send {
    /// `sendmail`: EHLO, MAIL with `SIZE=` (the server offers SIZE), RCPT, DATA.
    Sendmail,
    /// MAIL without `SIZE=`, as a client that does not declare it: the limit is met during DATA.
    Undeclared,
}

const PYTHON_CLIENT: &str = r#"
import json, smtplib, sys
host, port, sender, recipients, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(","), sys.argv[5]
message = sys.stdin.buffer.read()
def text(value):
    return value.decode() if isinstance(value, bytes) else value
try:
    with smtplib.SMTP(host, port, timeout=60) as client:
        if mode == "sendmail":
            refused = client.sendmail(sender, recipients, message)
            print(json.dumps({"result": "sent", "refused": {k: [v[0], text(v[1])] for k, v in refused.items()}}))
        else:
            client.ehlo()
            client.mail(sender)
            for recipient in recipients:
                client.rcpt(recipient)
            code, reply = client.data(message)
            print(json.dumps({"result": "data", "code": code, "message": text(reply)}))
except smtplib.SMTPRecipientsRefused as error:
    refused = {k: [v[0], text(v[1])] for k, v in error.recipients.items()}
    print(json.dumps({"result": "SMTPRecipientsRefused", "refused": refused}))
except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
    print(json.dumps({"result": type(error).__name__, "code": error.smtp_code, "message": text(error.smtp_error)}))
"#;

/// Sends `message` to `server` with Python's smtplib and returns what it reported, as JSON.
async fn python_send(server: SocketAddr, from: &str, to: &[&str], message: &[u8], how: Send) -> Value {
    let mode = match how {
        Send::Sendmail => "sendmail",
        Send::Undeclared => "undeclared",
    };
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", PYTHON_CLIENT, &server.ip().to_string(), &server.port().to_string(), from, &to.join(","), mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| {
            panic!("python3 is needed as the SMTP client of these tests ({error}); apt-get install python3")
        });
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(message).await.expect("the message to python3");
    drop(stdin);
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("smtplib finishes within the deadline")
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "smtplib failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("{error}: {stdout:?}"))
}

db_test!(mail_from_the_mx_becomes_a_routed_and_acknowledged_case, |db: Db| async move {
    let setup = IntakeSetup::new(db.clone(), vec![smtp_only("intake")], settings()).await;
    let (intake, mut events, server) = start(&setup);
    let raw = mail(
        "Jean Dupont <Jean.Dupont@example.be>",
        "intake@gemeente.example",
        "Certificat de résidence",
        "<smtp-first@example.be>",
        "",
        "Bonjour, je voudrais un certificat de résidence pour mon fils. Merci d'avance pour votre aide.\r\n\
         .A line that began with a dot.",
    );
    let sent = python_send(server, "jean.dupont@example.be", &["Intake@Gemeente.Example"], &raw, Send::Sendmail).await;
    assert_eq!(sent, serde_json::json!({"result": "sent", "refused": {}}));
    let found = processed(&mut events, 1).await;
    assert_eq!((found[0].0.as_str(), found[0].1), ("intake", None), "delivered over SMTP, without a UID");
    let (case_id, number) = new_case(&found[0].2);
    wait_for(&mut events, "the case routed", |event| matches!(event, IntakeEvent::Routed { count: 1 })).await;

    let case = cases::get(&db, cases::CaseId(case_id)).await.unwrap().unwrap();
    assert_eq!((case.channel.as_str(), case.queue_code.as_deref()), ("email", Some("population-fr-l1")));
    let waiting = setup.router.store().waiting(&QueueId::new("population-fr-l1"), 10).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!((waiting[0].spec.channel, waiting[0].spec.case_id), (Channel::Email, Some(case_id)));
    let row: (String, i64, String) =
        sqlx::query_as("SELECT mailbox, uid, outcome FROM inbound_mail").fetch_one(db.pool()).await.unwrap();
    assert_eq!(row, ("intake".to_owned(), 0, "case".to_owned()));
    let incoming = timeline::for_case(&db, case_id, 10).await.unwrap();
    let body = incoming.iter().find(|entry| entry.kind == "email_in").and_then(|entry| entry.body.clone());
    assert!(body.as_deref().is_some_and(|body| body.contains("\n.A line that began")), "dot-stuffing undone: {body:?}");

    let received = loket_flows::testing::delivered_mail(&db, 1).await;
    assert!(received[0].contains("To: jean.dupont@example.be"), "{}", received[0]);
    assert!(received[0].contains(&number), "the acknowledgement names the case: {}", received[0]);
    assert!(received[0].contains("Auto-Submitted: auto-replied"), "{}", received[0]);
    intake.stop().await;
});

db_test!(unknown_recipients_and_messages_over_the_limit_are_refused_and_nothing_is_stored, |db: Db| async move {
    let intake_settings = IntakeSettings { smtp_max_message_bytes: MIB, ..settings() };
    let setup = IntakeSetup::new(db.clone(), vec![smtp_only("intake")], intake_settings).await;
    let cases_before = setup.count("cases").await;
    let (intake, _events, server) = start(&setup);
    let small = mail("a@example.be", "x@gemeente.example", "Vraag", "<r1@example.be>", "", "Goedendag.");

    let sent = python_send(server, "a@example.be", &["nobody@gemeente.example"], &small, Send::Sendmail).await;
    assert_eq!(sent["result"], "SMTPRecipientsRefused", "{sent}");
    assert_eq!(sent["refused"]["nobody@gemeente.example"][0], 550, "{sent}");

    let large =
        with_attachment("a@example.be", "Groot", "<r2@example.be>", "", "Zie bijlage.", "scan.pdf", 57 * 20_000);
    assert!(large.len() > MIB);
    let sent = python_send(server, "a@example.be", &["intake@gemeente.example"], &large, Send::Sendmail).await;
    assert_eq!(sent["result"], "SMTPSenderRefused", "the declared SIZE is refused at once: {sent}");
    assert_eq!(sent["code"], 552, "{sent}");
    let limit = "5.3.4 message size exceeds fixed maximum message size (1 MB)";
    assert_eq!(sent["message"], limit, "{sent}");
    let sent = python_send(server, "a@example.be", &["intake@gemeente.example"], &large, Send::Undeclared).await;
    assert_eq!(sent, serde_json::json!({"result": "data", "code": 552, "message": limit}), "refused after its end");

    assert_eq!(setup.count("inbound_mail").await, 0, "nothing is stored");
    assert_eq!(setup.count("cases").await, cases_before);
    assert_eq!(setup.count("outbox").await, 0);
    // The listener goes on serving: a message within the limit to the mailbox is accepted.
    let sent = python_send(server, "a@example.be", &["intake@gemeente.example"], &small, Send::Undeclared).await;
    assert_eq!(sent["code"], 250, "{sent}");
    intake.stop().await;
});

db_test!(the_same_message_id_by_smtp_twice_and_by_imap_makes_one_case, |db: Db| async move {
    let dovecot = Dovecot::start(&["intake"]);
    let setup = IntakeSetup::new(db.clone(), vec![dovecot.mailbox("intake"), smtp_only("paspoort")], settings()).await;
    let cases_before = setup.count("cases").await;
    let (intake, mut events, server) = start(&setup);
    wait_for(&mut events, "the IMAP mailbox caught up", |event| matches!(event, IntakeEvent::CaughtUp { .. })).await;
    let raw = mail("lucas@example.be", "intake@gemeente.example", "Attest", "<once@example.be>", "", "Bonjour.");
    // To both mailboxes in one transaction, then again (the MX retries), then read over IMAP.
    let both = ["intake@gemeente.example", "paspoort@gemeente.example"];
    assert_eq!(python_send(server, "lucas@example.be", &both, &raw, Send::Sendmail).await["result"], "sent");
    assert_eq!(python_send(server, "lucas@example.be", &both[1..], &raw, Send::Sendmail).await["result"], "sent");
    dovecot.append("intake", std::slice::from_ref(&raw)).await;
    let found = processed(&mut events, 4).await;
    let outcomes: Vec<(&str, Option<u32>, bool)> =
        found.iter().map(|(mailbox, uid, outcome)| (mailbox.as_str(), *uid, *outcome == Outcome::Duplicate)).collect();
    assert_eq!(
        outcomes,
        [("intake", None, false), ("paspoort", None, true), ("paspoort", None, true), ("intake", Some(1), true)],
        "{found:?}"
    );
    assert_eq!(setup.count("cases").await, cases_before + 1);
    assert_eq!(setup.count("outbox").await, 1, "one acknowledgement");
    intake.stop().await;
});

db_test!(a_20_mb_attachment_over_imap_is_not_kept_and_the_acknowledgement_says_why, |db: Db| async move {
    let dovecot = Dovecot::start(&["intake"]);
    let intake_settings = IntakeSettings { max_attachment_bytes: MIB, smtp_listen: None, ..settings() };
    let setup = IntakeSetup::new(db.clone(), vec![dovecot.mailbox("intake")], intake_settings).await;
    let (intake, mut events) = MailIntake::start(setup.processor(), setup.router.clone());
    assert_eq!(intake.smtp_addr(), None, "no listener unless configured");
    let raw = with_attachment(
        "Jean Dupont <jean.dupont@example.be>",
        "Certificat de résidence",
        "<big@example.be>",
        "",
        "Bonjour, je voudrais un certificat de résidence. Voici le formulaire rempli, merci pour votre aide.",
        "formulaire.pdf",
        57 * 367_900,
    );
    assert!(raw.len() > 27 * MIB, "20 MB once decoded");
    dovecot.append("intake", &[raw]).await;
    let found = processed(&mut events, 1).await;
    let (case_id, _) = new_case(&found[0].2);
    assert!(matches!(found[0].2, Outcome::NewCase { acknowledged: true, .. }));
    assert!(documents::for_case(&db, case_id).await.unwrap().is_empty(), "the file is not kept");
    let entries = timeline::for_case(&db, case_id, 10).await.unwrap();
    let incoming = entries.iter().find(|entry| entry.kind == "email_in").and_then(|entry| entry.body.clone());
    assert!(incoming.is_some_and(|body| body.contains("formulaire.pdf: 20 MB, over the limit of 1 MB; not kept")));

    let ack = outbox::for_case(&db, case_id).await.unwrap().remove(0);
    assert_eq!(ack.auto_submitted, Some(AutoSubmitted::Replied));
    let note = "La pièce jointe « formulaire.pdf » (20 Mo) n'a pas été conservée : \
                une pièce jointe peut faire au maximum 1 Mo.";
    assert!(ack.body.contains("Nous avons bien reçu votre e-mail"), "the acknowledgement itself: {}", ack.body);
    assert!(ack.body.contains(note), "and, in French, what was not kept and why: {}", ack.body);
    let received = loket_flows::testing::delivered_mail(&db, 1).await;
    assert!(received[0].contains("formulaire.pdf"), "{}", received[0]);
    intake.stop().await;
});

db_test!(a_reply_with_an_attachment_over_the_limit_is_answered_and_machines_are_not, |db: Db| async move {
    let intake_settings = IntakeSettings { max_attachment_bytes: MIB, ..settings() };
    let setup = IntakeSetup::new(db.clone(), vec![smtp_only("intake")], intake_settings).await;
    let (intake, mut events, server) = start(&setup);
    let emma = "emma.claes@example.be";
    let to = ["intake@gemeente.example"];
    let first =
        mail(emma, to[0], "Paspoort", "<p1@example.be>", "", "Goedendag, ik wil een afspraak voor een paspoort.");
    assert_eq!(python_send(server, emma, &to, &first, Send::Sendmail).await["result"], "sent");
    let (case_id, number) = new_case(&processed(&mut events, 1).await[0].2);

    let reply = with_attachment(
        emma,
        &format!("Re: Uw dossier {number}"),
        "<p2@example.be>",
        "",
        "Hierbij de foto.",
        "foto.jpg",
        57 * 36_792,
    );
    let machine = with_attachment(
        emma,
        &format!("Re: Uw dossier {number}"),
        "<p3@example.be>",
        "Auto-Submitted: auto-replied\r\n",
        "Ik ben afwezig.",
        "handtekening.png",
        57 * 36_792,
    );
    assert_eq!(python_send(server, emma, &to, &reply, Send::Sendmail).await["result"], "sent");
    assert_eq!(python_send(server, emma, &to, &machine, Send::Sendmail).await["result"], "sent");
    let found = processed(&mut events, 2).await;
    assert_eq!(found[0].2, Outcome::Reply { case_id, by: ThreadedBy::Number });
    assert!(matches!(found[1].2, Outcome::Noise(_)), "{found:?}");

    let mail_out = outbox::for_case(&db, case_id).await.unwrap();
    assert_eq!(mail_out.len(), 2, "the acknowledgement and one answer, none to the machine: {mail_out:#?}");
    let answer = &mail_out[0];
    assert_eq!(answer.subject, format!("Uw dossier {number}: bijlage niet bewaard"));
    assert_eq!(answer.auto_submitted, Some(AutoSubmitted::Replied));
    assert_eq!(answer.in_reply_to.as_deref(), Some(mail_out[1].message_id.as_str()), "threaded on the case");
    assert!(
        answer
            .body
            .contains("De bijlage \"foto.jpg\" (2 MB) is niet bewaard: een bijlage mag hoogstens 1 MB groot zijn."),
        "{}",
        answer.body
    );
    let entries = timeline::for_case(&db, case_id, 20).await.unwrap();
    assert_eq!(entries.iter().filter(|entry| entry.kind == "email_out").count(), 2, "the answer is on the timeline");
    intake.stop().await;
});

/// A client that speaks SMTP by hand, for what smtplib never does.
struct RawClient {
    stream: BufReader<TcpStream>,
}

impl RawClient {
    /// Connects and returns the client with the server's first reply.
    async fn connect(server: SocketAddr) -> (RawClient, (u16, String)) {
        let stream = TcpStream::connect(server).await.expect("connect to the listener");
        let mut client = RawClient { stream: BufReader::new(stream) };
        let greeting = client.reply().await;
        (client, greeting)
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).await.expect("write to the listener");
    }

    /// The next reply: its code and its lines' texts.
    async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(DEADLINE, self.stream.read_line(&mut line)).await.expect("a reply in time");
            assert!(read.expect("read a reply") > 0, "the connection closed before a reply; so far {text:?}");
            text.push_str(&line[4..]);
            if line.as_bytes()[3] == b' ' {
                return (line[..3].parse().expect("a reply code"), text);
            }
        }
    }

    async fn codes(&mut self, count: usize) -> Vec<u16> {
        let mut codes = Vec::new();
        for _ in 0..count {
            codes.push(self.reply().await.0);
        }
        codes
    }

    /// Waits for the server to close the connection.
    async fn closed(&mut self) {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(DEADLINE, tokio::io::AsyncReadExt::read_to_end(&mut self.stream, &mut rest));
        let _ = read.await.expect("the server closes the connection in time");
        assert!(rest.is_empty(), "nothing after the last reply: {:?}", String::from_utf8_lossy(&rest));
    }
}

/// A listener of its own on SQLite, with `limits`, for the edge's tests.
async fn edge(limits: SmtpLimits) -> (TestDb, IntakeSetup, SmtpListener, broadcast::Receiver<IntakeEvent>) {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let setup = IntakeSetup::new(test_db.db.clone(), vec![smtp_only("intake")], settings()).await;
    let (events, receiver) = broadcast::channel(64);
    let address = "127.0.0.1:0".parse().unwrap();
    let listener = SmtpListener::start(address, setup.processor(), limits, Arc::new(Notify::new()), events).unwrap();
    (test_db, setup, listener, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_are_answered_in_order_and_bad_clients_do_no_harm() {
    let (_db, _setup, listener, mut events) = edge(SmtpLimits::new(MIB)).await;
    let server = listener.local_addr();
    let (mut client, greeting) = RawClient::connect(server).await;
    assert_eq!(greeting, (220, "gemeente.example ESMTP loket\r\n".to_owned()));
    client
        .send(
            b"EHLO mx\r\nMAIL FROM:<a@example.be>\r\nRCPT TO:<nobody@gemeente.example>\r\n\
              RCPT TO:<INTAKE@gemeente.example>\r\nDATA\r\n",
        )
        .await;
    let (code, ehlo) = client.reply().await;
    assert_eq!(code, 250);
    assert!(ehlo.contains("SIZE 1048576\r\n") && ehlo.contains("PIPELINING"), "{ehlo}");
    assert_eq!(client.codes(4).await, [250, 550, 250, 354]);
    let message = mail("a@example.be", "intake@gemeente.example", "Vraag", "<pipe@example.be>", "", "Goedendag.");
    client.send(&message).await;
    client.send(b".\r\nNOOP\r\nQUIT\r\n").await;
    assert_eq!(client.codes(3).await, [250, 250, 221]);
    client.closed().await;
    let delivered = wait_for(&mut events, "the message", |event| matches!(event, IntakeEvent::Processed { .. })).await;
    assert!(matches!(delivered.last(), Some(IntakeEvent::Processed { outcome: Outcome::NewCase { .. }, .. })));

    // Ten megabytes without a line end, then garbage: answered, and the server stays up.
    let (mut client, _) = RawClient::connect(server).await;
    let chunk = vec![b'x'; MIB];
    for _ in 0..10 {
        client.send(&chunk).await;
    }
    client.send(b"\r\n\x00\xff\xfe garbage\r\nNOOP\r\n").await;
    let (code, text) = client.reply().await;
    assert_eq!((code, text.as_str()), (500, "5.5.2 line too long (at most 1000 octets with CRLF)\r\n"));
    assert_eq!(client.codes(2).await, [500, 250]);
    // One at a time: lines the server never reads would make its close a reset.
    let mut last = (500, String::new());
    for _ in 0..30 {
        client.send(b"BOGUS\r\n").await;
        last = client.reply().await;
        if last.0 != 500 {
            break;
        }
    }
    assert_eq!(last, (421, "4.7.0 gemeente.example too many errors\r\n".to_owned()));
    client.closed().await;
    let (mut client, greeting) = RawClient::connect(server).await;
    assert_eq!(greeting.0, 220, "a new connection is served");
    client.send(b"QUIT\r\n").await;
    assert_eq!(client.reply().await.0, 221);
    listener.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_refused_and_stop_closes_the_rest() {
    let (_db, _setup, listener, _events) = edge(SmtpLimits { max_connections: 2, ..SmtpLimits::new(MIB) }).await;
    let server = listener.local_addr();
    let (mut first, greeting) = RawClient::connect(server).await;
    assert_eq!(greeting.0, 220);
    let (mut second, greeting) = RawClient::connect(server).await;
    assert_eq!(greeting.0, 220);
    let (mut third, refused) = RawClient::connect(server).await;
    assert_eq!(refused, (421, "4.3.2 gemeente.example has too many connections; try again later\r\n".to_owned()));
    third.closed().await;

    // A client that leaves frees its slot.
    first.send(b"QUIT\r\n").await;
    assert_eq!(first.reply().await.0, 221);
    first.closed().await;
    let (mut fourth, greeting) = RawClient::connect(server).await;
    assert_eq!(greeting.0, 220, "the slot was freed");
    second.send(b"EHLO mx\r\n").await;
    assert_eq!(second.reply().await.0, 250);

    let stopping = tokio::spawn(listener.stop());
    for client in [&mut second, &mut fourth] {
        let reply = client.reply().await;
        assert_eq!(reply, (421, "4.3.2 gemeente.example is shutting down; try again later\r\n".to_owned()));
        client.closed().await;
    }
    tokio::time::timeout(DEADLINE, stopping).await.expect("stop returns").unwrap();
    assert!(TcpStream::connect(server).await.is_err(), "nothing listens any more");
}

/// A client that keeps the connection busy with a command now and then is still closed when the
/// connection has lasted its maximum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_client_is_closed_after_the_longest_session() {
    let limits = SmtpLimits { max_session: Duration::from_millis(1_500), ..SmtpLimits::new(MIB) };
    let (_db, _setup, listener, _events) = edge(limits).await;
    let (mut client, _) = RawClient::connect(listener.local_addr()).await;
    for _ in 0..2 {
        client.send(b"NOOP\r\n").await;
        assert_eq!(client.reply().await.0, 250, "busy, not idle");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Well within the idle timeout (five minutes): what closes it is the session's length.
    let reply = client.reply().await;
    assert_eq!(reply, (421, "4.4.2 gemeente.example connection open too long; closing it, connect again\r\n".into()));
    client.closed().await;
    listener.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_timed_out() {
    let limits = SmtpLimits { idle_timeout: Duration::from_millis(300), ..SmtpLimits::new(MIB) };
    let (_db, _setup, listener, _events) = edge(limits).await;
    let (mut client, _) = RawClient::connect(listener.local_addr()).await;
    client.send(b"EHLO mx\r\n").await;
    assert_eq!(client.reply().await.0, 250);
    // Half a command, then silence.
    client.send(b"NO").await;
    let reply = client.reply().await;
    assert_eq!(reply, (421, "4.4.2 gemeente.example idle too long; closing the connection\r\n".to_owned()));
    client.closed().await;
    listener.stop().await;
}
