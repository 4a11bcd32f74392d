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
        .event(Event::Progress { status: Status::RINGING, sdp: None })
        .wait(Duration::from_secs(2))
        .event(answer())
        .wait(Duration::from_millis(30))
        .event(Event::AckReceived)
        .wait(Duration::from_secs(90))
        .event(Event::ByeReceived);
    leg.check(&[
        " 0.000s Reply(Status(100))",
        " 0.020s Provisional { status: Status(180), sdp: None }",
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

fn confirmed() -> TestLeg {
    let mut leg = TestLeg::new();
    leg.event(offer()).event(answer()).event(Event::AckReceived);
    leg.transcript.clear();
    leg
}

fn change(change: Change, sdp: &str) -> Event {
    Event::ChangeReceived { change, offer: Some(SessionDescription(sdp.into())) }
}

/// Hold and resume by re-INVITE (RFC 3264 §8.4): the 200 is retransmitted until its ACK.
#[test]
fn hold_and_resume_by_reinvite() {
    let mut leg = confirmed();
    leg.wait(Duration::from_secs(1)).event(change(Change::Reinvite, "hold"));
    leg.event(Event::ChangeAnswered { answer: SessionDescription("held".into()) });
    leg.wait(Duration::from_millis(600)).event(Event::ChangeAcked).wait(Duration::from_secs(10));
    leg.event(change(Change::Reinvite, "resume"))
        .event(Event::ChangeAnswered { answer: SessionDescription("resumed".into()) });
    leg.event(Event::ChangeAcked).wait(Duration::from_secs(60)).event(Event::ByeReceived);
    leg.check(&[
        " 1.000s ChangeOffered { change: Reinvite, offer: Some(SessionDescription(\"hold\")) }",
        " 1.000s AnswerChange { sdp: SessionDescription(\"held\") }",
        " 1.500s RetransmitChangeAnswer",
        "11.600s ChangeOffered { change: Reinvite, offer: Some(SessionDescription(\"resume\")) }",
        "11.600s AnswerChange { sdp: SessionDescription(\"resumed\") }",
        "71.600s ConfirmBye",
        "71.600s Ended(RemoteHangup)",
    ]);
}

/// RFC 3311: an UPDATE's 200 needs no ACK; a second offer while one is pending gets 491; a
/// refused change leaves the call as it was.
#[test]
fn update_glare_and_refusal() {
    let mut leg = confirmed();
    leg.event(change(Change::Update, "hold")).event(change(Change::Reinvite, "other"));
    leg.event(Event::ChangeAnswered { answer: SessionDescription("held".into()) }).wait(Duration::from_secs(40));
    leg.event(change(Change::Reinvite, "video")).event(Event::ChangeRefused { status: Status(488) });
    leg.event(change(Change::Update, "resume"))
        .event(Event::ChangeAnswered { answer: SessionDescription("ok".into()) });
    leg.check(&[
        " 0.000s ChangeOffered { change: Update, offer: Some(SessionDescription(\"hold\")) }",
        " 0.000s ReplyChange(Status(491))",
        " 0.000s AnswerChange { sdp: SessionDescription(\"held\") }",
        "40.000s ChangeOffered { change: Reinvite, offer: Some(SessionDescription(\"video\")) }",
        "40.000s ReplyChange(Status(488))",
        "40.000s ChangeOffered { change: Update, offer: Some(SessionDescription(\"resume\")) }",
        "40.000s AnswerChange { sdp: SessionDescription(\"ok\") }",
    ]);
}

#[test]
fn unacknowledged_reinvite_answer_ends_the_call() {
    let mut leg = confirmed();
    leg.event(change(Change::Reinvite, "hold"))
        .event(Event::ChangeAnswered { answer: SessionDescription("held".into()) });
    leg.wait(Duration::from_secs(40));
    assert_eq!(leg.transcript.iter().filter(|line| line.ends_with("RetransmitChangeAnswer")).count(), 10);
    assert_eq!(leg.transcript[leg.transcript.len() - 2..], ["32.000s SendBye", "32.000s Ended(AckTimeout)"]);
}

fn outbound() -> TestLeg {
    let start = Instant::now();
    let mut leg =
        TestLeg { leg: Leg::outbound(LegId(2), Timers::default()), start, now: start, transcript: Vec::new() };
    leg.event(Event::Dial { offer: Some(SessionDescription("offer".into())) });
    leg
}

fn response(status: u16, sdp: Option<&str>) -> Event {
    Event::InviteResponse { status: Status(status), sdp: sdp.map(|sdp| SessionDescription(sdp.into())) }
}

#[test]
fn outbound_call_answered_then_hung_up_by_the_callee() {
    let mut leg = outbound();
    leg.event(response(100, None)).event(response(180, None)).wait(Duration::from_secs(3));
    leg.event(response(200, Some("answer"))).wait(Duration::from_millis(500)).event(response(200, Some("answer")));
    leg.event(Event::ByeReceived);
    leg.check(&[
        " 0.000s SendInvite { offer: Some(SessionDescription(\"offer\")) }",
        " 0.000s Progress { status: Status(180), sdp: None }",
        " 3.000s SendAck",
        " 3.000s Accepted { sdp: Some(SessionDescription(\"answer\")) }",
        " 3.000s Connected",
        " 3.500s SendAck",
        " 3.500s ConfirmBye",
        " 3.500s Ended(RemoteHangup)",
    ]);
}

/// RFC 3261 §9.1: no CANCEL before a provisional; a 2xx crossing the CANCEL is ACKed and ended
/// with a BYE; a refusal ends the leg.
#[test]
fn outbound_cancel_and_its_races() {
    let mut early = outbound();
    early.event(Event::Abandon).wait(Duration::from_secs(1)).event(response(180, None)).event(response(487, None));
    early.check(&[
        " 0.000s SendInvite { offer: Some(SessionDescription(\"offer\")) }",
        " 1.000s SendCancel",
        " 1.000s Ended(Cancelled)",
    ]);

    let mut crossed = outbound();
    crossed.event(response(180, None)).event(Event::Abandon).event(response(200, Some("late")));
    crossed.wait(Duration::from_millis(20)).event(Event::ByeAnswered);
    crossed.check(&[
        " 0.000s SendInvite { offer: Some(SessionDescription(\"offer\")) }",
        " 0.000s Progress { status: Status(180), sdp: None }",
        " 0.000s SendCancel",
        " 0.000s SendAck",
        " 0.000s SendBye",
        " 0.020s Ended(LocalHangup)",
    ]);

    let mut answered_at_once = outbound();
    answered_at_once.event(Event::Abandon).event(response(200, Some("answer")));
    answered_at_once.check(&[
        " 0.000s SendInvite { offer: Some(SessionDescription(\"offer\")) }",
        " 0.000s SendAck",
        " 0.000s SendBye",
    ]);

    let mut busy = outbound();
    busy.event(response(486, None));
    busy.check(&[
        " 0.000s SendInvite { offer: Some(SessionDescription(\"offer\")) }",
        " 0.000s Ended(Refused(Status(486)))",
    ]);

    let mut silent = outbound();
    silent.event(Event::InviteFailed);
    assert_eq!(silent.transcript.last().map(String::as_str), Some(" 0.000s Ended(NoAnswer)"));
}

/// Ringing is bounded by the answer guard: then the leg is cancelled, and if the 487 never
/// comes it ends after 64·T1 anyway.
#[test]
fn outbound_ringing_is_bounded() {
    let mut leg = outbound();
    leg.event(response(180, None)).wait(Duration::from_secs(120));
    leg.check(&[
        " 0.000s SendInvite { offer: Some(SessionDescription(\"offer\")) }",
        " 0.000s Progress { status: Status(180), sdp: None }",
        "60.000s SendCancel",
        "92.000s Ended(Cancelled)",
    ]);
}

/// loket's own re-INVITE (a hold passed on by the bridge): ACK on 2xx, refusal reported, and
/// one at a time in either direction.
#[test]
fn outbound_session_change() {
    let mut leg = outbound();
    leg.event(response(200, Some("answer")));
    leg.transcript.clear();
    leg.event(Event::ChangeRequested { offer: SessionDescription("hold".into()) });
    leg.event(Event::ChangeRequested { offer: SessionDescription("again".into()) });
    leg.event(change(Change::Reinvite, "theirs"));
    leg.event(Event::ChangeResponse { status: Status(200), sdp: Some(SessionDescription("held".into())) });
    leg.event(Event::ChangeRequested { offer: SessionDescription("resume".into()) });
    leg.event(Event::ChangeResponse { status: Status(488), sdp: None });
    leg.check(&[
        " 0.000s SendChange { offer: SessionDescription(\"hold\") }",
        " 0.000s ChangeFailed { status: Status(491) }",
        " 0.000s ReplyChange(Status(491))",
        " 0.000s SendAck",
        " 0.000s ChangeAccepted { sdp: Some(SessionDescription(\"held\")) }",
        " 0.000s SendChange { offer: SessionDescription(\"resume\") }",
        " 0.000s ChangeFailed { status: Status(488) }",
    ]);
}

/// RFC 3261 §22.2: a challenge is answered once (the transaction layer has ACKed it) with the
/// INVITE again; ringing stays bounded from the first INVITE; a second challenge refuses the
/// credentials and ends the leg.
#[test]
fn outbound_challenge_is_answered_once() {
    let challenged = |status| Event::InviteChallenged { status: Status(status) };
    let mut leg = outbound();
    leg.event(response(100, None)).wait(Duration::from_millis(40)).event(challenged(407));
    leg.event(response(180, None)).wait(Duration::from_secs(2)).event(response(200, Some("answer")));
    leg.check(&[
        " 0.000s SendInvite { offer: Some(SessionDescription(\"offer\")) }",
        " 0.040s Authenticate",
        " 0.040s Progress { status: Status(180), sdp: None }",
        " 2.040s SendAck",
        " 2.040s Accepted { sdp: Some(SessionDescription(\"answer\")) }",
        " 2.040s Connected",
    ]);

    let mut refused = outbound();
    refused.event(challenged(401)).event(response(100, None)).event(challenged(401));
    refused.check(&[
        " 0.000s SendInvite { offer: Some(SessionDescription(\"offer\")) }",
        " 0.000s Authenticate",
        " 0.000s Ended(Refused(Status(401)))",
    ]);

    let mut forbidden = outbound();
    forbidden.event(challenged(407)).event(response(403, None));
    assert_eq!(forbidden.transcript.last().map(String::as_str), Some(" 0.000s Ended(Refused(Status(403)))"));

    // Ringing after the answer to a challenge is still bounded by the first INVITE's guard.
    let mut slow = outbound();
    slow.wait(Duration::from_secs(10)).event(challenged(407)).event(response(180, None));
    slow.wait(Duration::from_secs(60));
    assert!(slow.transcript.contains(&"60.000s SendCancel".to_owned()), "{:?}", slow.transcript);

    // Abandoned before any provisional: the challenge ends the leg instead of a new INVITE.
    let mut abandoned = outbound();
    abandoned.event(Event::Abandon).event(challenged(407));
    abandoned.check(&[
        " 0.000s SendInvite { offer: Some(SessionDescription(\"offer\")) }",
        " 0.000s Ended(Refused(Status(407)))",
    ]);
}
