//! Scripted conversations on a virtual clock: a minute of call time runs in microseconds.

use super::*;

/// Drives a [`Leg`] like the edge would, with a virtual clock, and keeps a readable transcript
/// of the actions with the simulated time at which each was taken.
struct TestLeg {
    leg: Leg,
    start: Instant,
    now: Instant,
    transcript: Vec<String>,
}

impl TestLeg {
    fn new() -> TestLeg {
        let start = Instant::now();
        TestLeg { leg: Leg::inbound(LegId(1), Timers::default()), start, now: start, transcript: Vec::new() }
    }

    /// Lets simulated time pass, firing every deadline the leg asks for on the way.
    fn wait(&mut self, duration: Duration) -> &mut Self {
        let until = self.now + duration;
        while let Some(deadline) = self.leg.next_deadline().filter(|deadline| *deadline <= until) {
            self.now = deadline.max(self.now);
            self.feed(Event::DeadlineReached);
        }
        self.now = until;
        self
    }

    fn event(&mut self, event: Event) -> &mut Self {
        self.feed(event);
        self
    }

    fn feed(&mut self, event: Event) {
        for action in self.leg.handle(self.now, event) {
            let at = self.now - self.start;
            self.transcript.push(format!("{:>6.3}s {action:?}", at.as_secs_f64()));
        }
    }

    fn check(&self, expected: &[&str]) {
        let expected: Vec<String> = expected.iter().map(|line| (*line).to_owned()).collect();
        assert_eq!(self.transcript, expected, "\n{}", self.transcript.join("\n"));
    }
}

fn offer() -> Event {
    Event::InviteReceived { offer: Some(SessionDescription("v=0 offer".into())) }
}

fn answer() -> Event {
    Event::Answered { answer: SessionDescription("v=0 answer".into()) }
}

#[test]
fn answered_call_hung_up_by_the_caller() {
    let mut leg = TestLeg::new();
    leg.event(offer())
        .wait(Duration::from_millis(20))
        .event(Event::RingingStarted)
        .wait(Duration::from_secs(2))
        .event(answer())
        .wait(Duration::from_millis(30))
        .event(Event::AckReceived)
        .wait(Duration::from_secs(90))
        .event(Event::ByeReceived);
    leg.check(&[
        " 0.000s Reply(Status(100))",
        " 0.020s Reply(Status(180))",
        " 2.020s Answer { sdp: SessionDescription(\"v=0 answer\") }",
        " 2.050s Connected",
        "92.050s ConfirmBye",
        "92.050s Ended(RemoteHangup)",
    ]);
    assert!(leg.leg.is_ended());
    assert_eq!(leg.leg.next_deadline(), None);
}

/// RFC 3261 §13.3.1.4: the 200 goes out again at T1, 2·T1, … capped at T2, and the UAS gives
/// up after 64·T1 by sending a BYE.
#[test]
fn unacknowledged_answer_is_retransmitted_then_abandoned() {
    let mut leg = TestLeg::new();
    leg.event(offer()).event(answer()).wait(Duration::from_secs(40));
    leg.check(&[
        " 0.000s Reply(Status(100))",
        " 0.000s Answer { sdp: SessionDescription(\"v=0 answer\") }",
        " 0.500s RetransmitAnswer",
        " 1.500s RetransmitAnswer",
        " 3.500s RetransmitAnswer",
        " 7.500s RetransmitAnswer",
        "11.500s RetransmitAnswer",
        "15.500s RetransmitAnswer",
        "19.500s RetransmitAnswer",
        "23.500s RetransmitAnswer",
        "27.500s RetransmitAnswer",
        "31.500s RetransmitAnswer",
        "32.000s SendBye",
        "32.000s Ended(AckTimeout)",
    ]);
}

#[test]
fn ack_stops_the_retransmissions() {
    let mut leg = TestLeg::new();
    leg.event(offer()).event(answer()).wait(Duration::from_millis(700)).event(Event::AckReceived);
    leg.wait(Duration::from_secs(60));
    leg.check(&[
        " 0.000s Reply(Status(100))",
        " 0.000s Answer { sdp: SessionDescription(\"v=0 answer\") }",
        " 0.500s RetransmitAnswer",
        " 0.700s Connected",
    ]);
}

/// RFC 3261 §9.2: CANCEL before the answer gets 200, and the INVITE gets 487.
#[test]
fn cancel_before_the_answer() {
    let mut leg = TestLeg::new();
    leg.event(offer()).wait(Duration::from_secs(3)).event(Event::CancelReceived);
    leg.check(&[
        " 0.000s Reply(Status(100))",
        " 3.000s ConfirmCancel",
        " 3.000s Reply(Status(487))",
        " 3.000s Ended(CancelledByCaller)",
    ]);
}

#[test]
fn cancel_after_the_answer_changes_nothing() {
    let mut leg = TestLeg::new();
    leg.event(offer()).event(answer()).event(Event::CancelReceived).event(Event::AckReceived);
    leg.check(&[
        " 0.000s Reply(Status(100))",
        " 0.000s Answer { sdp: SessionDescription(\"v=0 answer\") }",
        " 0.000s ConfirmCancel",
        " 0.000s Connected",
    ]);
}

#[test]
fn unanswered_call_is_refused_after_the_guard() {
    let mut leg = TestLeg::new();
    leg.event(offer()).wait(Duration::from_secs(120));
    leg.check(&[" 0.000s Reply(Status(100))", "60.000s Reply(Status(480))", "60.000s Ended(NotAnswered)"]);
}

#[test]
fn rejected_call() {
    let mut leg = TestLeg::new();
    leg.event(offer()).event(Event::Rejected { status: Status(486) });
    leg.check(&[" 0.000s Reply(Status(100))", " 0.000s Reply(Status(486))", " 0.000s Ended(Rejected(Status(486)))"]);
}

#[test]
fn local_hangup_ends_at_the_answer_to_the_bye_or_after_64_t1() {
    let mut answered = TestLeg::new();
    answered
        .event(offer())
        .event(answer())
        .event(Event::AckReceived)
        .wait(Duration::from_secs(5))
        .event(Event::HangupRequested)
        .wait(Duration::from_millis(40))
        .event(Event::ByeAnswered);
    answered.check(&[
        " 0.000s Reply(Status(100))",
        " 0.000s Answer { sdp: SessionDescription(\"v=0 answer\") }",
        " 0.000s Connected",
        " 5.000s SendBye",
        " 5.040s Ended(LocalHangup)",
    ]);

    let mut unanswered = TestLeg::new();
    unanswered.event(offer()).event(answer()).event(Event::AckReceived).event(Event::HangupRequested);
    unanswered.wait(Duration::from_secs(40));
    assert_eq!(unanswered.transcript.last().map(String::as_str), Some("32.000s Ended(LocalHangup)"));
}

/// RFC 3261 §15: a BYE may come before the ACK of the 200.
#[test]
fn bye_before_ack_ends_the_call() {
    let mut leg = TestLeg::new();
    leg.event(offer()).event(answer()).event(Event::ByeReceived).wait(Duration::from_secs(40));
    leg.check(&[
        " 0.000s Reply(Status(100))",
        " 0.000s Answer { sdp: SessionDescription(\"v=0 answer\") }",
        " 0.000s ConfirmBye",
        " 0.000s Ended(RemoteHangup)",
    ]);
}

/// Events out of place (peer retransmissions, races with the application) are ignored.
#[test]
fn events_out_of_place_change_nothing() {
    let mut leg = TestLeg::new();
    leg.event(Event::AckReceived).event(Event::ByeReceived).event(answer()).event(Event::DeadlineReached);
    leg.event(offer()).event(offer()).event(Event::AckReceived).event(Event::ByeAnswered);
    leg.event(answer()).event(answer()).event(Event::AckReceived).event(Event::AckReceived);
    leg.check(&[
        " 0.000s Reply(Status(100))",
        " 0.000s Answer { sdp: SessionDescription(\"v=0 answer\") }",
        " 0.000s Connected",
    ]);
}
