//! Transactions on a virtual clock: each test runs its timers to the end in microseconds.

use super::*;

struct TestTransaction {
    transaction: ServerTransaction,
    start: Instant,
    now: Instant,
    transcript: Vec<String>,
}

impl TestTransaction {
    fn new(kind: Kind, transport: Transport) -> TestTransaction {
        let start = Instant::now();
        let transaction = ServerTransaction::new(kind, transport, Timers::default());
        TestTransaction { transaction, start, now: start, transcript: Vec::new() }
    }

    fn wait(&mut self, duration: Duration) -> &mut Self {
        let until = self.now + duration;
        while let Some(deadline) = self.transaction.next_deadline().filter(|deadline| *deadline <= until) {
            self.now = deadline.max(self.now);
            self.feed(Event::DeadlineReached);
        }
        self.now = until;
        self
    }

    fn respond(&mut self, status: u16) -> &mut Self {
        self.feed(Event::Responded { status, response: format!("SIP/2.0 {status}").into_bytes().into() });
        self
    }

    fn event(&mut self, event: Event) -> &mut Self {
        self.feed(event);
        self
    }

    fn feed(&mut self, event: Event) {
        for action in self.transaction.handle(self.now, event) {
            let text = match action {
                Action::Send(bytes) => format!("Send {}", String::from_utf8_lossy(&bytes)),
                Action::Terminated(ending) => format!("Terminated {ending:?}"),
            };
            self.transcript.push(format!("{:>6.3}s {text}", (self.now - self.start).as_secs_f64()));
        }
    }

    fn check(&self, expected: &[&str]) {
        assert_eq!(self.transcript, expected, "\n{}", self.transcript.join("\n"));
    }
}

/// §17.2.1: over UDP a non-2xx final response is retransmitted on Timer G (T1 doubling to T2)
/// until the ACK; then Timer I (T4) absorbs ACK retransmissions.
#[test]
fn invite_rejected_over_udp_is_retransmitted_until_the_ack() {
    let mut tx = TestTransaction::new(Kind::Invite, Transport::Unreliable);
    tx.respond(100).wait(Duration::from_millis(200)).event(Event::RequestRetransmitted).respond(486);
    tx.wait(Duration::from_millis(3_600)).event(Event::AckReceived).event(Event::AckReceived);
    tx.wait(Duration::from_secs(10));
    tx.check(&[
        " 0.000s Send SIP/2.0 100",
        " 0.200s Send SIP/2.0 100",
        " 0.200s Send SIP/2.0 486",
        " 0.700s Send SIP/2.0 486",
        " 1.700s Send SIP/2.0 486",
        " 3.700s Send SIP/2.0 486",
        " 8.800s Terminated Completed",
    ]);
}

/// §17.2.1 Timer H: without an ACK the transaction gives up after 64·T1, also over TCP, where
/// nothing is retransmitted.
#[test]
fn invite_rejection_without_ack_times_out() {
    let mut udp = TestTransaction::new(Kind::Invite, Transport::Unreliable);
    udp.respond(404).wait(Duration::from_secs(40));
    udp.check(&[
        " 0.000s Send SIP/2.0 404",
        " 0.500s Send SIP/2.0 404",
        " 1.500s Send SIP/2.0 404",
        " 3.500s Send SIP/2.0 404",
        " 7.500s Send SIP/2.0 404",
        "11.500s Send SIP/2.0 404",
        "15.500s Send SIP/2.0 404",
        "19.500s Send SIP/2.0 404",
        "23.500s Send SIP/2.0 404",
        "27.500s Send SIP/2.0 404",
        "31.500s Send SIP/2.0 404",
        "32.000s Terminated AckTimeout",
    ]);
    let mut tcp = TestTransaction::new(Kind::Invite, Transport::Reliable);
    tcp.respond(404).wait(Duration::from_secs(40));
    tcp.check(&[" 0.000s Send SIP/2.0 404", "32.000s Terminated AckTimeout"]);
}

#[test]
fn invite_ack_over_tcp_ends_the_transaction_at_once() {
    let mut tx = TestTransaction::new(Kind::Invite, Transport::Reliable);
    tx.respond(603).wait(Duration::from_millis(10)).event(Event::AckReceived);
    tx.check(&[" 0.000s Send SIP/2.0 603", " 0.010s Terminated Completed"]);
    assert!(tx.transaction.is_terminated());
    assert_eq!(tx.transaction.next_deadline(), None);
}

/// RFC 6026 §7.1: after a 2xx, retransmitted INVITEs are absorbed (the TU retransmits the 2xx),
/// further 2xx from the TU are sent, and Timer L ends the transaction after 64·T1.
#[test]
fn invite_accepted_absorbs_retransmissions_until_timer_l() {
    let mut tx = TestTransaction::new(Kind::Invite, Transport::Unreliable);
    tx.respond(100).respond(200).wait(Duration::from_millis(500)).event(Event::RequestRetransmitted).respond(200);
    tx.wait(Duration::from_secs(40));
    tx.check(&[
        " 0.000s Send SIP/2.0 100",
        " 0.000s Send SIP/2.0 200",
        " 0.500s Send SIP/2.0 200",
        "32.000s Terminated Completed",
    ]);
}

/// §17.2.2: retransmitted requests are discarded in Trying, answered with the last provisional
/// in Proceeding and with the final response in Completed, until Timer J (64·T1 over UDP).
#[test]
fn non_invite_over_udp() {
    let mut tx = TestTransaction::new(Kind::NonInvite, Transport::Unreliable);
    tx.event(Event::RequestRetransmitted).respond(100).event(Event::RequestRetransmitted);
    tx.wait(Duration::from_secs(1)).respond(200).respond(500).wait(Duration::from_secs(4));
    tx.event(Event::RequestRetransmitted).wait(Duration::from_secs(60));
    tx.check(&[
        " 0.000s Send SIP/2.0 100",
        " 0.000s Send SIP/2.0 100",
        " 1.000s Send SIP/2.0 200",
        " 5.000s Send SIP/2.0 200",
        "33.000s Terminated Completed",
    ]);
}

/// Timer J is zero on reliable transports: the final response ends the transaction.
#[test]
fn non_invite_over_tcp_ends_with_its_final_response() {
    let mut tx = TestTransaction::new(Kind::NonInvite, Transport::Reliable);
    tx.respond(200);
    tx.check(&[" 0.000s Send SIP/2.0 200", " 0.000s Terminated Completed"]);
}

/// §17.2.4: a transport error ends the transaction, and nothing afterwards revives it.
#[test]
fn transport_failure_ends_the_transaction() {
    let mut tx = TestTransaction::new(Kind::Invite, Transport::Unreliable);
    tx.respond(486).event(Event::TransportFailed).event(Event::RequestRetransmitted).respond(500);
    tx.wait(Duration::from_secs(40));
    tx.check(&[" 0.000s Send SIP/2.0 486", " 0.000s Terminated TransportError"]);
}

mod wheel {
    use super::super::TimerWheel;
    use std::time::{Duration, Instant};

    fn expire(wheel: &mut TimerWheel<&'static str>, now: Instant) -> Vec<&'static str> {
        let mut expired = Vec::new();
        wheel.expire(now, &mut expired);
        expired.sort_unstable();
        expired
    }

    #[test]
    fn timers_fire_when_due_never_before() {
        let origin = Instant::now();
        let ms = Duration::from_millis;
        let mut wheel = TimerWheel::new(origin, ms(10), 8);
        wheel.insert(origin + ms(25), "a");
        wheel.insert(origin + ms(25), "b");
        wheel.insert(origin + ms(500), "beyond a revolution");
        wheel.insert(origin + ms(31), "c");
        assert_eq!(expire(&mut wheel, origin + ms(24)), Vec::<&str>::new());
        assert_eq!(expire(&mut wheel, origin + ms(25)), ["a", "b"]);
        assert_eq!(expire(&mut wheel, origin + ms(30)), Vec::<&str>::new());
        assert_eq!(expire(&mut wheel, origin + ms(35)), ["c"]);
        assert_eq!(expire(&mut wheel, origin + ms(499)), Vec::<&str>::new());
        assert_eq!(wheel.len(), 1);
        assert_eq!(expire(&mut wheel, origin + ms(10_000)), ["beyond a revolution"]);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_deadline(), None);
    }

    #[test]
    fn a_timer_in_the_past_fires_at_the_next_expiry() {
        let origin = Instant::now();
        let mut wheel = TimerWheel::new(origin, Duration::from_millis(10), 8);
        let _ = expire(&mut wheel, origin + Duration::from_secs(1));
        wheel.insert(origin, "late");
        assert!(wheel.next_deadline().is_some_and(|at| at > origin + Duration::from_secs(1)));
        assert_eq!(expire(&mut wheel, origin + Duration::from_secs(1)), ["late"]);
    }
}

mod table {
    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use rsipstack::sip::Request;

    use super::super::{Dispatch, Ending, Output, RequestKind, ServerTransactions, Timers, TransactionKey, Transport};
    use crate::message::{Inbound, Limits, parse_datagram};

    fn request(text: &str) -> Request {
        let text = text.replace('\n', "\r\n");
        match parse_datagram(text.as_bytes(), &Limits::default()) {
            Ok(Inbound::Request(request)) => request,
            other => panic!("not a request: {other:?}"),
        }
    }

    fn invite(branch: &str, sent_by: &str) -> Request {
        request(&format!(
            "INVITE sip:desk@example.be SIP/2.0\nVia: SIP/2.0/UDP {sent_by};branch={branch}\n\
             From: <sip:a@example.org>;tag=f\nTo: <sip:desk@example.be>\nCall-ID: k1\nCSeq: 1 INVITE\n\
             Content-Length: 0\n\n"
        ))
    }

    fn with_method(request: &Request, method: &str) -> Request {
        let text = String::from_utf8_lossy(&request.to_bytes())
            .replacen("INVITE sip:", &format!("{method} sip:"), 1)
            .replace("CSeq: 1 INVITE", &format!("CSeq: 1 {method}"));
        self::request(&text.replace("\r\n", "\n"))
    }

    #[test]
    fn keys_match_ack_and_cancel_to_their_invite() {
        let invite = invite("z9hG4bK-k1", "192.0.2.1:5060");
        let key = TransactionKey::of(&invite).expect("key");
        assert_eq!(TransactionKey::of(&with_method(&invite, "ACK")), Some(key.clone()));
        let cancel = TransactionKey::of(&with_method(&invite, "CANCEL")).expect("key");
        assert_ne!(cancel, key);
        assert_eq!(cancel.cancelled_invite(), key);
        assert_ne!(TransactionKey::of(&self::invite("z9hG4bK-k1", "192.0.2.2:5060")), Some(key.clone()));
        assert_ne!(TransactionKey::of(&self::invite("z9hG4bK-k2", "192.0.2.1:5060")), Some(key));
    }

    /// RFC 3261 §17.2.3: without the magic cookie the key falls back to RFC 2543's fields.
    #[test]
    fn legacy_keys_match_the_ack() {
        let invite = invite("1234", "192.0.2.1");
        let key = TransactionKey::of(&invite).expect("key");
        assert!(matches!(key, TransactionKey::Legacy { .. }));
        assert_eq!(TransactionKey::of(&with_method(&invite, "ACK")), Some(key));
    }

    type Table = ServerTransactions<SocketAddr>;

    fn run_until(table: &mut Table, now: &mut Instant, until: Instant, outputs: &mut Vec<Output<SocketAddr>>) {
        while let Some(deadline) = table.next_deadline().filter(|deadline| *deadline <= until) {
            *now = deadline.max(*now);
            outputs.extend(table.on_deadline(*now));
        }
        *now = until;
    }

    #[test]
    fn retransmissions_are_answered_and_acks_absorbed() {
        let start = Instant::now();
        let mut now = start;
        let peer: SocketAddr = "192.0.2.1:5060".parse().expect("address");
        let mut table = Table::new(start, Timers::default(), 10);
        let key = TransactionKey::of(&invite("z9hG4bK-t1", "192.0.2.1:5060")).expect("key");
        let first = table.on_request(now, key.clone(), RequestKind::Invite, Transport::Unreliable, peer);
        assert_eq!(first, Dispatch::ToTransactionUser);
        let busy: super::super::ResponseBytes = b"SIP/2.0 486".to_vec().into();
        assert_eq!(table.respond(now, &key, 486, busy.clone()), [Output::Send { to: peer, bytes: busy.clone() }]);
        let again = table.on_request(now, key.clone(), RequestKind::Invite, Transport::Unreliable, peer);
        assert_eq!(again, Dispatch::Handled(vec![Output::Send { to: peer, bytes: busy.clone() }]));

        let mut outputs = Vec::new();
        run_until(&mut table, &mut now, start + Duration::from_millis(600), &mut outputs);
        assert_eq!(outputs, [Output::Send { to: peer, bytes: busy }], "Timer G at T1");
        let ack = table.on_request(now, key.clone(), RequestKind::Ack, Transport::Unreliable, peer);
        assert_eq!(ack, Dispatch::Handled(Vec::new()));

        outputs.clear();
        run_until(&mut table, &mut now, start + Duration::from_secs(60), &mut outputs);
        assert_eq!(outputs, [Output::Terminated { key, ending: Ending::Completed }], "Timer I");
        assert!(table.is_empty());
        assert_eq!(table.next_deadline(), None);
    }

    #[test]
    fn an_ack_without_transaction_goes_to_the_tu_and_a_full_table_refuses() {
        let now = Instant::now();
        let peer: SocketAddr = "192.0.2.1:5060".parse().expect("address");
        let mut table = Table::new(now, Timers::default(), 1);
        let key = |branch: &str| TransactionKey::of(&invite(branch, "192.0.2.1")).expect("key");
        let ack = table.on_request(now, key("z9hG4bK-a"), RequestKind::Ack, Transport::Reliable, peer);
        assert_eq!(ack, Dispatch::ToTransactionUser);
        assert!(table.is_empty());
        let first = table.on_request(now, key("z9hG4bK-b"), RequestKind::Other, Transport::Reliable, peer);
        assert_eq!(first, Dispatch::ToTransactionUser);
        let second = table.on_request(now, key("z9hG4bK-c"), RequestKind::Other, Transport::Reliable, peer);
        assert_eq!(second, Dispatch::Overloaded);
        assert_eq!(table.len(), 1);
    }
}
