//! The coupling as a table: one leg's action in, the other legs' events out.

use super::*;
use crate::call::SessionDescription;

const CALLER: LegId = LegId(1);
const PHONE_A: LegId = LegId(2);
const PHONE_B: LegId = LegId(3);

fn sdp(text: &str) -> Option<SessionDescription> {
    Some(SessionDescription(text.into()))
}

#[test]
fn first_answer_wins_and_the_other_forks_are_abandoned() {
    let mut bridge = Bridge::new(CALLER, vec![PHONE_A, PHONE_B]);
    let ringing = bridge.on_action(PHONE_B, &Action::Progress { status: Status::RINGING, sdp: None });
    assert_eq!(ringing, [(CALLER, Event::Progress { status: Status::RINGING, sdp: None })]);
    let answered = bridge.on_action(PHONE_A, &Action::Accepted { sdp: sdp("a") });
    assert_eq!(
        answered,
        [(PHONE_B, Event::Abandon), (CALLER, Event::Answered { answer: SessionDescription("a".into()) })]
    );
    assert_eq!(bridge.winner(), Some(PHONE_A));
    // A late 2xx from the other phone: ACK and BYE (the leg's Abandon when confirmed).
    assert_eq!(bridge.on_action(PHONE_B, &Action::Accepted { sdp: sdp("b") }), [(PHONE_B, Event::Abandon)]);
    assert_eq!(bridge.on_action(PHONE_B, &Action::Progress { status: Status::RINGING, sdp: None }), []);
    assert_eq!(bridge.on_action(PHONE_B, &Action::Ended(EndReason::LocalHangup)), []);
    // Hold from the caller, answered by the phone.
    let offered = Action::ChangeOffered { change: crate::call::Change::Reinvite, offer: sdp("hold") };
    assert_eq!(
        bridge.on_action(CALLER, &offered),
        [(PHONE_A, Event::ChangeRequested { offer: SessionDescription("hold".into()) })]
    );
    assert_eq!(
        bridge.on_action(PHONE_A, &Action::ChangeAccepted { sdp: sdp("held") }),
        [(CALLER, Event::ChangeAnswered { answer: SessionDescription("held".into()) })]
    );
    // And from the phone, refused by the caller.
    let offered = Action::ChangeOffered { change: crate::call::Change::Update, offer: sdp("x") };
    assert_eq!(
        bridge.on_action(PHONE_A, &offered),
        [(CALLER, Event::ChangeRequested { offer: SessionDescription("x".into()) })]
    );
    assert_eq!(
        bridge.on_action(CALLER, &Action::ChangeFailed { status: Status(488) }),
        [(PHONE_A, Event::ChangeRefused { status: Status(488) })]
    );
    // The phone hangs up: the caller is hung up; then the bridge is over.
    assert_eq!(bridge.on_action(PHONE_A, &Action::Ended(EndReason::RemoteHangup)), [(CALLER, Event::HangupRequested)]);
    assert!(!bridge.is_over());
    assert_eq!(bridge.on_action(CALLER, &Action::Ended(EndReason::LocalHangup)), []);
    assert!(bridge.is_over());
    assert_eq!(bridge.legs().count(), 0);
}

#[test]
fn the_caller_leaving_abandons_every_fork() {
    let mut bridge = Bridge::new(CALLER, vec![PHONE_A, PHONE_B]);
    let events = bridge.on_action(CALLER, &Action::Ended(EndReason::CancelledByCaller));
    assert_eq!(events, [(PHONE_A, Event::Abandon), (PHONE_B, Event::Abandon)]);
    // A 2xx after that is ended too.
    assert_eq!(bridge.on_action(PHONE_A, &Action::Accepted { sdp: sdp("a") }), [(PHONE_A, Event::Abandon)]);
    assert_eq!(bridge.legs().collect::<Vec<_>>(), [PHONE_A, PHONE_B]);
}

/// Every fork failed: the caller gets 486 if any phone was busy, else the first refusal, else 480.
#[test]
fn all_forks_failing_refuses_the_caller() {
    let mut bridge = Bridge::new(CALLER, vec![PHONE_A, PHONE_B]);
    assert_eq!(bridge.on_action(PHONE_A, &Action::Ended(EndReason::Refused(Status(603)))), []);
    let events = bridge.on_action(PHONE_B, &Action::Ended(EndReason::Refused(Status(486))));
    assert_eq!(events, [(CALLER, Event::Rejected { status: Status(486) })]);

    let mut silent = Bridge::new(CALLER, vec![PHONE_A]);
    let events = silent.on_action(PHONE_A, &Action::Ended(EndReason::NoAnswer));
    assert_eq!(events, [(CALLER, Event::Rejected { status: Status::TEMPORARILY_UNAVAILABLE })]);

    let mut moved = Bridge::new(CALLER, vec![PHONE_A]);
    let events = moved.on_action(PHONE_A, &Action::Ended(EndReason::Refused(Status(302))));
    assert_eq!(events, [(CALLER, Event::Rejected { status: Status::TEMPORARILY_UNAVAILABLE })]);
}

#[test]
fn offers_that_cannot_cross_are_refused() {
    let mut bridge = Bridge::new(CALLER, vec![PHONE_A]);
    // Before any answer there is nobody to pass a change to.
    let offered = Action::ChangeOffered { change: crate::call::Change::Update, offer: sdp("x") };
    assert_eq!(bridge.on_action(CALLER, &offered), [(CALLER, Event::ChangeRefused { status: Status(488) })]);
    bridge.on_action(PHONE_A, &Action::Accepted { sdp: None });
    assert_eq!(bridge.winner(), Some(PHONE_A));
    assert_eq!(bridge.on_action(LegId(99), &Action::Ended(EndReason::RemoteHangup)), []);
}
