//! Client transactions on a virtual clock, with a transcript of what they do and when.

use super::*;
use crate::transaction::{ClientKey, ClientOutput, ClientTransactions};

struct Test {
    transaction: ClientTransaction,
    start: Instant,
    now: Instant,
    transcript: Vec<String>,
}

impl Test {
    fn new(kind: Kind, transport: Transport) -> Test {
        let start = Instant::now();
        let (transaction, actions) =
            ClientTransaction::start(start, kind, transport, Timers::default(), b"REQ"[..].into());
        let mut test = Test { transaction, start, now: start, transcript: Vec::new() };
        test.record(actions);
        test
    }

    fn wait(&mut self, duration: Duration) -> &mut Self {
        let until = self.now + duration;
        while let Some(deadline) = self.transaction.next_deadline().filter(|deadline| *deadline <= until) {
            self.now = deadline.max(self.now);
            let actions = self.transaction.handle(self.now, ClientEvent::DeadlineReached);
            self.record(actions);
        }
        self.now = until;
        self
    }

    fn response(&mut self, status: u16) -> &mut Self {
        let actions = self.transaction.handle(self.now, ClientEvent::ResponseReceived { status });
        self.record(actions);
        self
    }

    fn record(&mut self, actions: Vec<ClientAction>) {
        let at = (self.now - self.start).as_secs_f64();
        for action in actions {
            let action = match action {
                ClientAction::Send(_) => "Send".to_owned(),
                other => format!("{other:?}"),
            };
            self.transcript.push(format!("{at:>6.3}s {action}"));
        }
    }

    fn check(&self, expected: &[&str]) {
        assert_eq!(self.transcript, expected, "\n{}", self.transcript.join("\n"));
    }
}

/// §17.1.1.2: Timer A doubles from T1; Timer B ends the transaction at 64·T1.
#[test]
fn unanswered_invite_is_retransmitted_then_times_out() {
    let mut test = Test::new(Kind::Invite, Transport::Unreliable);
    test.wait(Duration::from_secs(40));
    test.check(&[
        " 0.000s Send",
        " 0.500s Send",
        " 1.500s Send",
        " 3.500s Send",
        " 7.500s Send",
        "15.500s Send",
        "31.500s Send",
        "32.000s Terminated(Timeout)",
    ]);
}

#[test]
fn invite_over_tcp_is_not_retransmitted() {
    let mut test = Test::new(Kind::Invite, Transport::Reliable);
    test.wait(Duration::from_secs(40));
    test.check(&[" 0.000s Send", "32.000s Terminated(Timeout)"]);
}

/// A provisional stops Timers A and B; the 2xx goes to the TU, and so do its retransmissions
/// until Timer M (RFC 6026).
#[test]
fn invite_answered_after_ringing() {
    let mut test = Test::new(Kind::Invite, Transport::Unreliable);
    test.wait(Duration::from_millis(100)).response(100).wait(Duration::from_millis(100)).response(180);
    test.wait(Duration::from_secs(60)).response(200).wait(Duration::from_millis(500)).response(200);
    test.wait(Duration::from_secs(40));
    test.check(&[
        " 0.000s Send",
        " 0.100s Deliver",
        " 0.200s Deliver",
        "60.200s Deliver",
        "60.700s Deliver",
        "92.200s Terminated(Completed)",
    ]);
}

/// §17.1.1.3: a non-2xx final is ACKed, and ACKed again when it is retransmitted, until Timer D.
#[test]
fn invite_refused_is_acked_until_timer_d() {
    let mut test = Test::new(Kind::Invite, Transport::Unreliable);
    test.response(486).wait(Duration::from_secs(1)).response(486).wait(Duration::from_secs(40));
    test.check(&[
        " 0.000s Send",
        " 0.000s SendAck",
        " 0.000s Deliver",
        " 1.000s SendAck",
        "32.000s Terminated(Completed)",
    ]);
    let mut tcp = Test::new(Kind::Invite, Transport::Reliable);
    tcp.response(487);
    tcp.check(&[" 0.000s Send", " 0.000s SendAck", " 0.000s Deliver", " 0.000s Terminated(Completed)"]);
}

/// §17.1.2.2: Timer E doubles up to T2, Timer F ends at 64·T1.
#[test]
fn unanswered_bye_is_retransmitted_then_times_out() {
    let mut test = Test::new(Kind::NonInvite, Transport::Unreliable);
    test.wait(Duration::from_secs(40));
    let sends = test.transcript.iter().filter(|line| line.ends_with("Send")).count();
    assert_eq!(
        test.transcript[..6],
        [" 0.000s Send", " 0.500s Send", " 1.500s Send", " 3.500s Send", " 7.500s Send", "11.500s Send"]
    );
    assert_eq!(sends, 1 + 4 + 6);
    assert_eq!(test.transcript.last().map(String::as_str), Some("32.000s Terminated(Timeout)"));
}

#[test]
fn bye_answered_then_timer_k() {
    let mut test = Test::new(Kind::NonInvite, Transport::Unreliable);
    test.wait(Duration::from_millis(600)).response(200).response(200).wait(Duration::from_secs(10));
    test.check(&[" 0.000s Send", " 0.500s Send", " 0.600s Deliver", " 5.600s Terminated(Completed)"]);
}

/// §17.1.2.2: after a provisional the request goes out every T2, and Timer F still runs.
#[test]
fn non_invite_proceeding_retransmits_every_t2() {
    let mut test = Test::new(Kind::NonInvite, Transport::Unreliable);
    test.wait(Duration::from_millis(100)).response(100).wait(Duration::from_secs(9)).response(200);
    test.check(&[" 0.000s Send", " 0.100s Deliver", " 0.500s Send", " 4.500s Send", " 8.500s Send", " 9.100s Deliver"]);
    let mut silent = Test::new(Kind::NonInvite, Transport::Unreliable);
    silent.response(180).wait(Duration::from_secs(40));
    assert_eq!(silent.transcript.last().map(String::as_str), Some("32.000s Terminated(Timeout)"));
}

#[test]
fn transport_failure_ends_it() {
    let mut test = Test::new(Kind::NonInvite, Transport::Reliable);
    let actions = test.transaction.handle(test.now, ClientEvent::TransportFailed);
    test.record(actions);
    test.response(200);
    test.check(&[" 0.000s Send", " 0.000s Terminated(TransportError)"]);
    assert!(test.transaction.is_terminated());
    assert_eq!(test.transaction.next_deadline(), None);
}

#[test]
fn the_table_matches_by_branch_and_method_and_bounds_itself() {
    let now = Instant::now();
    let mut table = ClientTransactions::<u8>::new(now, Timers::default(), 2);
    let key = |branch: &str, method: &str| ClientKey { branch: branch.into(), method: method.into() };
    let invite = key("z9hG4bK1", "INVITE");
    let sent = table.start(now, invite.clone(), Kind::Invite, Transport::Unreliable, 7, b"INVITE"[..].into());
    assert!(matches!(sent.as_deref(), Some([ClientOutput::Send { to: 7, .. }])));
    assert!(table.start(now, invite.clone(), Kind::Invite, Transport::Unreliable, 7, b"x"[..].into()).is_none());
    let cancel = key("z9hG4bK1", "CANCEL");
    assert!(
        table.start(now, cancel.clone(), Kind::NonInvite, Transport::Unreliable, 7, b"CANCEL"[..].into()).is_some()
    );
    assert!(
        table.start(now, key("z9hG4bK2", "BYE"), Kind::NonInvite, Transport::Unreliable, 7, b"x"[..].into()).is_none()
    );
    assert_eq!(table.on_response(now, &key("z9hG4bK9", "INVITE"), 200), []);
    assert_eq!(table.on_response(now, &cancel, 200), [ClientOutput::Deliver { key: cancel.clone() }]);
    assert_eq!(
        table.on_response(now, &invite, 487),
        [ClientOutput::SendAck { key: invite.clone(), to: 7 }, ClientOutput::Deliver { key: invite.clone() }]
    );
    let later = now + Duration::from_secs(33);
    let ended = table.on_deadline(later);
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert!(table.is_empty());
    assert_eq!(table.next_deadline(), None);
}
