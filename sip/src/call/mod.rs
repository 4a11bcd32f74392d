//! Call control as a pure state machine: one [`Leg`] per SIP dialog side, driven by
//! [`Leg::handle`] with the current time and one [`Event`], returning [`Action`]s, with
//! [`Leg::next_deadline`] saying when it wants [`Event::DeadlineReached`]. It reads no clock,
//! touches no socket and never fails on peer input: an event that makes no sense in the current
//! state is ignored (and answered where RFC 3261 says so).
//!
//! So far: the inbound (UAS) leg from INVITE to the end of the call — provisional and final
//! answers, the ACK wait with 2xx retransmission (RFC 3261 §13.3.1.4), CANCEL before the answer
//! (§9.2), BYE from either side (§15), and the guard on an unanswered call.
//! Still to come: outbound legs, re-INVITE/UPDATE, and the B2BUA coupling of two legs.

use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// Identifies a leg for the edge, which keeps the mapping to its SIP dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

/// An SDP body, kept opaque until the offer/answer module exists.
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
}

/// Timer values (RFC 3261 §17.1.1.1) and loket's guard on unanswered calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
    /// How long an inbound call may stay unanswered before it is refused with 480.
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
    /// The application lets the caller hear ringing.
    RingingStarted,
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
    DeadlineReached,
}

/// What the edge must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this response to the INVITE.
    Reply(Status),
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
    Confirmed,
    /// Our BYE is out; the dialog ends at its answer or after 64·T1 (RFC 3261 §17.1.2.2, Timer F).
    Closing {
        give_up: Instant,
    },
    Ended,
}

/// An inbound leg: the callee side of one INVITE dialog.
#[derive(Debug, Clone)]
pub struct Leg {
    id: LegId,
    timers: Timers,
    state: State,
}

impl Leg {
    pub fn inbound(id: LegId, timers: Timers) -> Leg {
        Leg { id, timers, state: State::Idle }
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
            State::Closing { give_up } => Some(*give_up),
            State::Idle | State::Confirmed | State::Ended => None,
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
            (State::Offered { .. }, Event::RingingStarted) => {
                actions.push(Action::Reply(Status::RINGING));
                None
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
                Some(State::Confirmed)
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
            (State::AwaitingAck { .. } | State::Confirmed, Event::ByeReceived) => {
                actions.extend([Action::ConfirmBye, Action::Ended(EndReason::RemoteHangup)]);
                Some(State::Ended)
            }
            (State::AwaitingAck { .. } | State::Confirmed, Event::HangupRequested) => {
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
}
