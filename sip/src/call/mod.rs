//! Call control as a pure state machine: one [`Leg`] per SIP dialog side, driven by
//! [`Leg::handle`] with the current time and one [`Event`], returning [`Action`]s, with
//! [`Leg::next_deadline`] saying when it wants [`Event::DeadlineReached`]. It reads no clock,
//! touches no socket and never fails on peer input: an event that makes no sense in the current
//! state is ignored (and answered where RFC 3261 says so).
//!
//! So far: the inbound (UAS) leg from INVITE to the end of the call — provisional and final
//! answers, the ACK wait with 2xx retransmission (RFC 3261 §13.3.1.4), CANCEL before the answer
//! (§9.2), BYE from either side (§15), the guard on an unanswered call, and session changes within
//! the call (re-INVITE, RFC 3261 §14, and UPDATE, RFC 3311) for hold and resume: one at a time
//! (a second is refused 491, §14.2), the 200 to a re-INVITE retransmitted until its ACK.
//!
//! The outbound (UAC) leg ([`Leg::outbound`]): INVITE, provisional answers, the 2xx ACKed (again
//! for each retransmission), CANCEL once a provisional has arrived (§9.1), a 2xx that crosses
//! our CANCEL ACKed and ended with a BYE, a guard on ringing, and one answer to a 401 or 407
//! with credentials (§22.2): the INVITE again, while a second challenge ends the leg. Both roles can send a session
//! change of their own once confirmed. [`bridge`] couples an inbound leg to its outbound ones.

use std::time::{Duration, Instant};

pub mod bridge;
#[cfg(test)]
mod tests;

/// Identifies a leg for the edge, which keeps the mapping to its SIP dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

/// An SDP body as text; [`crate::sdp`] reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription(pub String);

/// A SIP status code the leg sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16);

impl Status {
    pub const TRYING: Status = Status(100);
    pub const RINGING: Status = Status(180);
    pub const OK: Status = Status(200);
    pub const TEMPORARILY_UNAVAILABLE: Status = Status(480);
    pub const REQUEST_TERMINATED: Status = Status(487);
    pub const REQUEST_PENDING: Status = Status(491);
}

/// How a session change arrived: its 200 needs an ACK only for a re-INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Reinvite,
    Update,
}

/// Timer values (RFC 3261 §17.1.1.1) and loket's guard on unanswered calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    /// How long an inbound call may stay unanswered before it is refused with 480, and how long
    /// an outbound one may ring before loket cancels it.
    pub answer_guard: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { t1: Duration::from_millis(500), t2: Duration::from_secs(4), answer_guard: Duration::from_secs(60) }
    }
}

/// Something that happened: on the network (received) or in the application (decided).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    InviteReceived {
        offer: Option<SessionDescription>,
    },
    /// The application lets the caller hear ringing (180) or early media (183 with SDP).
    Progress {
        status: Status,
        sdp: Option<SessionDescription>,
    },
    /// The application takes the call with this SDP answer.
    Answered {
        answer: SessionDescription,
    },
    /// The application refuses the call.
    Rejected {
        status: Status,
    },
    AckReceived,
    CancelReceived,
    ByeReceived,
    /// The application ends an established call.
    HangupRequested,
    /// The peer answered our BYE (any final response ends the dialog, RFC 3261 §15.1.1).
    ByeAnswered,
    /// The peer offers a new session description within the call (hold, resume).
    ChangeReceived {
        change: Change,
        offer: Option<SessionDescription>,
    },
    /// The application accepts the pending change with this answer.
    ChangeAnswered {
        answer: SessionDescription,
    },
    /// The application refuses the pending change (e.g. 488); the session stays as it was.
    ChangeRefused {
        status: Status,
    },
    /// The ACK of the 200 to a re-INVITE.
    ChangeAcked,
    /// The application wants a session change sent to the peer (re-INVITE).
    ChangeRequested {
        offer: SessionDescription,
    },
    /// The peer's final response to that re-INVITE.
    ChangeResponse {
        status: Status,
        sdp: Option<SessionDescription>,
    },
    /// Outbound: the application places the call with this offer.
    Dial {
        offer: Option<SessionDescription>,
    },
    /// Outbound: a response to the INVITE (provisional or final).
    InviteResponse {
        status: Status,
        sdp: Option<SessionDescription>,
    },
    /// Outbound: a 401 or 407 to the INVITE that the edge can answer with credentials (RFC 3261
    /// §22.2); one it cannot answer is an [`Event::InviteResponse`] like any refusal.
    InviteChallenged {
        status: Status,
    },
    /// Outbound: the INVITE's transaction ended without a final response (Timer B, transport).
    InviteFailed,
    /// Outbound: the application no longer wants this leg: cancelled if ringing, hung up if
    /// answered (a 2xx that crossed the CANCEL included).
    Abandon,
    DeadlineReached,
}

/// What the edge must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this response to the INVITE.
    Reply(Status),
    /// Send this provisional response to the INVITE, with SDP for early media.
    Provisional { status: Status, sdp: Option<SessionDescription> },
    /// Send a 200 to the INVITE with this SDP answer.
    Answer { sdp: SessionDescription },
    /// Send the 200 to the INVITE again (RFC 3261 §13.3.1.4).
    RetransmitAnswer,
    /// Answer the CANCEL with 200 (RFC 3261 §9.2).
    ConfirmCancel,
    /// Answer the BYE with 200 (RFC 3261 §15.1.2).
    ConfirmBye,
    /// Send a BYE.
    SendBye,
    /// The call is established: media may flow.
    Connected,
    /// A session change for the application to answer ([`Event::ChangeAnswered`] or
    /// [`Event::ChangeRefused`]).
    ChangeOffered { change: Change, offer: Option<SessionDescription> },
    /// Answer the pending change's request with this status (a refusal, or 491 to a second one
    /// that arrived while one was pending; the edge answers that request, not the pending one).
    ReplyChange(Status),
    /// Send a 200 with this SDP answer to the pending change's request.
    AnswerChange { sdp: SessionDescription },
    /// Send that 200 to the re-INVITE again (RFC 3261 §13.3.1.4, as for the first INVITE).
    RetransmitChangeAnswer,
    /// Send a re-INVITE with this offer.
    SendChange { offer: SessionDescription },
    /// The peer accepted loket's re-INVITE with this answer.
    ChangeAccepted { sdp: Option<SessionDescription> },
    /// The peer refused loket's re-INVITE; the session stays as it was.
    ChangeFailed { status: Status },
    /// Outbound: send the INVITE.
    SendInvite { offer: Option<SessionDescription> },
    /// Outbound: send the INVITE again, with the same offer and the next CSeq, and credentials
    /// for the challenge just received; the transaction layer has ACKed the challenge.
    Authenticate,
    /// Outbound: the callee is ringing or sends early media.
    Progress { status: Status, sdp: Option<SessionDescription> },
    /// ACK the 2xx just received (to the INVITE or to loket's re-INVITE; RFC 3261 §13.2.2.4).
    SendAck,
    /// Outbound: send a CANCEL for the INVITE (§9.1).
    SendCancel,
    /// Outbound: the callee answered with this SDP.
    Accepted { sdp: Option<SessionDescription> },
    /// The leg is over; the edge forgets it.
    Ended(EndReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Rejected(Status),
    CancelledByCaller,
    NotAnswered,
    /// No ACK for the 200 within 64·T1 (RFC 3261 §13.3.1.4).
    AckTimeout,
    RemoteHangup,
    LocalHangup,
    /// Outbound: the callee refused the INVITE with this status.
    Refused(Status),
    /// Outbound: loket cancelled the INVITE.
    Cancelled,
    /// Outbound: no final response to the INVITE (Timer B or a transport error).
    NoAnswer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Idle,
    /// INVITE received, no final answer yet.
    Offered {
        guard: Instant,
    },
    /// 200 sent, waiting for the ACK.
    AwaitingAck {
        answered_at: Instant,
        retransmit_at: Instant,
        interval: Duration,
    },
    Confirmed {
        change: Option<Pending>,
    },
    /// Outbound: INVITE sent, no final response yet. A CANCEL waits for a provisional (§9.1).
    /// `challenged`: this INVITE already carries credentials, so another challenge refuses them.
    Calling {
        provisional: bool,
        cancel: bool,
        guard: Instant,
        challenged: bool,
    },
    /// Outbound: CANCEL sent; the INVITE ends with its 487, or after 64·T1 (§9.1).
    Cancelling {
        give_up: Instant,
    },
    /// Our BYE is out; the dialog ends at its answer or after 64·T1 (RFC 3261 §17.1.2.2, Timer F).
    Closing {
        give_up: Instant,
    },
    Ended,
}

/// A session change in progress within a confirmed call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// Waiting for the application's answer.
    Deciding(Change),
    /// 200 sent to a re-INVITE, waiting for its ACK.
    AwaitingAck { answered_at: Instant, retransmit_at: Instant, interval: Duration },
    /// loket's own re-INVITE is out, waiting for its final response.
    Sent,
}

/// An inbound leg: the callee side of one INVITE dialog.
#[derive(Debug, Clone)]
pub struct Leg {
    id: LegId,
    timers: Timers,
    state: State,
}

impl Leg {
    /// The callee side of an INVITE loket received; starts with [`Event::InviteReceived`].
    pub fn inbound(id: LegId, timers: Timers) -> Leg {
        Leg { id, timers, state: State::Idle }
    }

    /// The caller side of an INVITE loket sends; starts with [`Event::Dial`].
    pub fn outbound(id: LegId, timers: Timers) -> Leg {
        Leg { id, timers, state: State::Idle }
    }

    /// Whether the call is set up (ACK received or sent).
    pub fn is_confirmed(&self) -> bool {
        matches!(self.state, State::Confirmed { .. })
    }

    pub fn id(&self) -> LegId {
        self.id
    }

    pub fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    /// When the leg wants [`Event::DeadlineReached`]; `None` when it waits only for events.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Offered { guard } => Some(*guard),
            State::AwaitingAck { answered_at, retransmit_at, .. } => {
                Some((*retransmit_at).min(*answered_at + 64 * self.timers.t1))
            }
            State::Closing { give_up } | State::Cancelling { give_up } => Some(*give_up),
            State::Calling { guard, .. } => Some(*guard),
            State::Confirmed { change: Some(Pending::AwaitingAck { answered_at, retransmit_at, .. }) } => {
                Some((*retransmit_at).min(*answered_at + 64 * self.timers.t1))
            }
            State::Idle | State::Confirmed { .. } | State::Ended => None,
        }
    }

    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        let next = match (&self.state, event) {
            (State::Idle, Event::InviteReceived { .. }) => {
                // RFC 3261 §17.2.1: a 100 at once, so the caller stops retransmitting the INVITE.
                actions.push(Action::Reply(Status::TRYING));
                Some(State::Offered { guard: now + self.timers.answer_guard })
            }
            (State::Offered { .. }, Event::Progress { status, sdp }) => {
                actions.push(Action::Provisional { status, sdp });
                None
            }
            (State::Idle, Event::Dial { offer }) => {
                actions.push(Action::SendInvite { offer });
                let guard = now + self.timers.answer_guard;
                Some(State::Calling { provisional: false, cancel: false, guard, challenged: false })
            }
            (State::Calling { cancel, guard, challenged, .. }, Event::InviteResponse { status, sdp })
                if status.0 < 200 =>
            {
                if *cancel {
                    actions.push(Action::SendCancel);
                    return self.then(actions, State::Cancelling { give_up: now + 64 * self.timers.t1 });
                }
                // 100 is hop-by-hop (RFC 3261 §21.1.1): nothing to pass on.
                if status.0 > 100 {
                    actions.push(Action::Progress { status, sdp });
                }
                Some(State::Calling { provisional: true, cancel: false, guard: *guard, challenged: *challenged })
            }
            // Abandoned before any provisional, then answered: set up only to be ended (§9.1).
            (State::Calling { cancel: true, .. }, Event::InviteResponse { status, .. }) if status.0 < 300 => {
                actions.extend([Action::SendAck, Action::SendBye]);
                Some(State::Closing { give_up: now + 64 * self.timers.t1 })
            }
            (State::Calling { .. }, Event::InviteResponse { status, sdp }) if status.0 < 300 => {
                actions.extend([Action::SendAck, Action::Accepted { sdp }, Action::Connected]);
                Some(State::Confirmed { change: None })
            }
            // RFC 3261 §9.1: the CANCEL and the 2xx crossed; the call is set up, so it is ended.
            (State::Cancelling { .. }, Event::InviteResponse { status, .. }) if (200..300).contains(&status.0) => {
                actions.extend([Action::SendAck, Action::SendBye]);
                Some(State::Closing { give_up: now + 64 * self.timers.t1 })
            }
            (State::Calling { .. }, Event::InviteResponse { status, .. }) if status.0 >= 300 => {
                actions.push(Action::Ended(EndReason::Refused(status)));
                Some(State::Ended)
            }
            (State::Cancelling { .. }, Event::InviteResponse { status, .. }) if status.0 >= 300 => {
                actions.push(Action::Ended(EndReason::Cancelled));
                Some(State::Ended)
            }
            // The challenge ended the INVITE's transaction: a new one carries the credentials, and
            // ringing stays bounded by the first INVITE's guard.
            (State::Calling { cancel: false, challenged: false, guard, .. }, Event::InviteChallenged { .. }) => {
                actions.push(Action::Authenticate);
                Some(State::Calling { provisional: false, cancel: false, guard: *guard, challenged: true })
            }
            (State::Calling { .. }, Event::InviteChallenged { status }) => {
                actions.push(Action::Ended(EndReason::Refused(status)));
                Some(State::Ended)
            }
            (State::Cancelling { .. }, Event::InviteChallenged { .. }) => {
                actions.push(Action::Ended(EndReason::Cancelled));
                Some(State::Ended)
            }
            (State::Calling { .. } | State::Cancelling { .. }, Event::InviteFailed) => {
                actions.push(Action::Ended(EndReason::NoAnswer));
                Some(State::Ended)
            }
            (State::Calling { provisional: true, .. }, Event::Abandon) => {
                actions.push(Action::SendCancel);
                Some(State::Cancelling { give_up: now + 64 * self.timers.t1 })
            }
            (State::Calling { provisional: false, guard, challenged, .. }, Event::Abandon) => {
                Some(State::Calling { provisional: false, cancel: true, guard: *guard, challenged: *challenged })
            }
            (State::Calling { provisional, guard, .. }, Event::DeadlineReached) if now >= *guard => {
                if *provisional {
                    actions.push(Action::SendCancel);
                    Some(State::Cancelling { give_up: now + 64 * self.timers.t1 })
                } else {
                    // Nothing has answered at all: Timer B ended it long ago, or will.
                    actions.push(Action::Ended(EndReason::NoAnswer));
                    Some(State::Ended)
                }
            }
            (State::Cancelling { give_up }, Event::DeadlineReached) if now >= *give_up => {
                actions.push(Action::Ended(EndReason::Cancelled));
                Some(State::Ended)
            }
            // A retransmitted 2xx: the ACK is lost, send it again (RFC 3261 §13.2.2.4).
            (State::Confirmed { .. } | State::Closing { .. }, Event::InviteResponse { status, .. })
                if (200..300).contains(&status.0) =>
            {
                actions.push(Action::SendAck);
                None
            }
            (State::Confirmed { change: None }, Event::ChangeRequested { offer }) => {
                actions.push(Action::SendChange { offer });
                Some(State::Confirmed { change: Some(Pending::Sent) })
            }
            (State::Confirmed { change: Some(Pending::Sent) }, Event::ChangeResponse { status, sdp }) => {
                if (200..300).contains(&status.0) {
                    actions.extend([Action::SendAck, Action::ChangeAccepted { sdp }]);
                } else {
                    actions.push(Action::ChangeFailed { status });
                }
                Some(State::Confirmed { change: None })
            }
            // One change at a time in either direction (RFC 3261 §14.1): the application hears
            // that this one cannot go out now.
            (State::Confirmed { change: Some(_) }, Event::ChangeRequested { .. }) => {
                actions.push(Action::ChangeFailed { status: Status::REQUEST_PENDING });
                None
            }
            (State::Confirmed { .. }, Event::Abandon) => {
                actions.push(Action::SendBye);
                Some(State::Closing { give_up: now + 64 * self.timers.t1 })
            }
            (State::Offered { .. }, Event::Answered { answer }) => {
                actions.push(Action::Answer { sdp: answer });
                let interval = self.timers.t1;
                Some(State::AwaitingAck { answered_at: now, retransmit_at: now + interval, interval })
            }
            (State::Offered { .. }, Event::Rejected { status }) => {
                actions.extend([Action::Reply(status), Action::Ended(EndReason::Rejected(status))]);
                Some(State::Ended)
            }
            (State::Offered { .. }, Event::CancelReceived) => {
                actions.extend([
                    Action::ConfirmCancel,
                    Action::Reply(Status::REQUEST_TERMINATED),
                    Action::Ended(EndReason::CancelledByCaller),
                ]);
                Some(State::Ended)
            }
            (State::Offered { guard }, Event::DeadlineReached) if now >= *guard => {
                actions.extend([Action::Reply(Status::TEMPORARILY_UNAVAILABLE), Action::Ended(EndReason::NotAnswered)]);
                Some(State::Ended)
            }
            (State::AwaitingAck { .. }, Event::AckReceived) => {
                actions.push(Action::Connected);
                Some(State::Confirmed { change: None })
            }
            (State::Confirmed { change: None }, Event::ChangeReceived { change, offer }) => {
                actions.push(Action::ChangeOffered { change, offer });
                Some(State::Confirmed { change: Some(Pending::Deciding(change)) })
            }
            // RFC 3261 §14.2, RFC 3311 §5.2: one offer at a time.
            (State::Confirmed { change: Some(_) }, Event::ChangeReceived { .. }) => {
                actions.push(Action::ReplyChange(Status::REQUEST_PENDING));
                None
            }
            (State::Confirmed { change: Some(Pending::Deciding(change)) }, Event::ChangeAnswered { answer }) => {
                actions.push(Action::AnswerChange { sdp: answer });
                let pending = (*change == Change::Reinvite).then(|| {
                    let interval = self.timers.t1;
                    Pending::AwaitingAck { answered_at: now, retransmit_at: now + interval, interval }
                });
                Some(State::Confirmed { change: pending })
            }
            (State::Confirmed { change: Some(Pending::Deciding(_)) }, Event::ChangeRefused { status }) => {
                actions.push(Action::ReplyChange(status));
                Some(State::Confirmed { change: None })
            }
            (State::Confirmed { change: Some(Pending::AwaitingAck { .. }) }, Event::ChangeAcked) => {
                Some(State::Confirmed { change: None })
            }
            (
                State::Confirmed { change: Some(Pending::AwaitingAck { answered_at, retransmit_at, interval }) },
                Event::DeadlineReached,
            ) => {
                if now >= *answered_at + 64 * self.timers.t1 {
                    // RFC 3261 §14.2 refers to §13.3.1.4: no ACK means the dialog is over.
                    actions.extend([Action::SendBye, Action::Ended(EndReason::AckTimeout)]);
                    Some(State::Ended)
                } else if now >= *retransmit_at {
                    actions.push(Action::RetransmitChangeAnswer);
                    let interval = (*interval * 2).min(self.timers.t2);
                    let pending =
                        Pending::AwaitingAck { answered_at: *answered_at, retransmit_at: now + interval, interval };
                    Some(State::Confirmed { change: Some(pending) })
                } else {
                    None
                }
            }
            (State::AwaitingAck { answered_at, retransmit_at, interval }, Event::DeadlineReached) => {
                if now >= *answered_at + 64 * self.timers.t1 {
                    // RFC 3261 §13.3.1.4: without an ACK the UAS confirms and then ends the dialog.
                    actions.extend([Action::SendBye, Action::Ended(EndReason::AckTimeout)]);
                    Some(State::Ended)
                } else if now >= *retransmit_at {
                    actions.push(Action::RetransmitAnswer);
                    let interval = (*interval * 2).min(self.timers.t2);
                    Some(State::AwaitingAck { answered_at: *answered_at, retransmit_at: now + interval, interval })
                } else {
                    None
                }
            }
            // RFC 3261 §15: a BYE may arrive before the ACK; it ends the call either way.
            (State::AwaitingAck { .. } | State::Confirmed { .. }, Event::ByeReceived) => {
                actions.extend([Action::ConfirmBye, Action::Ended(EndReason::RemoteHangup)]);
                Some(State::Ended)
            }
            (State::AwaitingAck { .. } | State::Confirmed { .. }, Event::HangupRequested) => {
                actions.push(Action::SendBye);
                Some(State::Closing { give_up: now + 64 * self.timers.t1 })
            }
            (State::Closing { .. }, Event::ByeAnswered) => {
                actions.push(Action::Ended(EndReason::LocalHangup));
                Some(State::Ended)
            }
            // Both sides hung up at once: answer theirs, ours is done too.
            (State::Closing { .. }, Event::ByeReceived) => {
                actions.extend([Action::ConfirmBye, Action::Ended(EndReason::LocalHangup)]);
                Some(State::Ended)
            }
            (State::Closing { give_up }, Event::DeadlineReached) if now >= *give_up => {
                actions.push(Action::Ended(EndReason::LocalHangup));
                Some(State::Ended)
            }
            // RFC 3261 §9.2: a CANCEL after the final answer is still answered, and changes nothing.
            (_, Event::CancelReceived) => {
                actions.push(Action::ConfirmCancel);
                None
            }
            // Anything else is out of place here (a late ACK, a second INVITE the transaction
            // layer already absorbs, an early deadline): ignored.
            _ => None,
        };
        if let Some(state) = next {
            self.state = state;
        }
        actions
    }

    fn then(&mut self, actions: Vec<Action>, state: State) -> Vec<Action> {
        self.state = state;
        actions
    }
}
