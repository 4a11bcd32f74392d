//! RFC 3261 §17.2 server transactions as pure state machines, with RFC 6026's Accepted state:
//! one [`ServerTransaction`] per received request, driven by [`ServerTransaction::handle`] with the
//! current time and one [`Event`], returning [`Action`]s, and [`ServerTransaction::next_deadline`]
//! for the earliest of its timers (G, H, I, J, L). It knows nothing of message syntax: responses
//! arrive from the transaction user as bytes and leave as bytes.
//!
//! [`ServerTransactions`] holds all of an endpoint's server transactions, matched by
//! [`TransactionKey`] (§17.2.3), with one [`TimerWheel`] for their deadlines.
//!
//! [`ClientTransaction`] and [`ClientTransactions`] are the client side (§17.1), on the same wheel
//! design.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod client;
mod client_table;
mod key;
mod slots;
mod table;
mod wheel;

#[cfg(test)]
mod tests;

pub use client::{ClientAction, ClientEnding, ClientEvent, ClientTransaction};
pub use client_table::{ClientKey, ClientOutput, ClientTransactions};
pub use key::{RequestKind, TransactionKey};
pub use table::{Dispatch, Output, ServerTransactions};
pub use wheel::TimerWheel;

/// RFC 3261 §17.1.1.1 and table 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate.
    pub t1: Duration,
    /// Cap on retransmission intervals of non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// How long a message may stay in the network.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

/// Whether the transport retransmits by itself (TCP, TLS, WebSocket) or not (UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Unreliable,
    Reliable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Invite,
    NonInvite,
}

/// A serialized response; cheap to keep and to send again.
pub type ResponseBytes = Arc<[u8]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The request that created the transaction arrived again.
    RequestRetransmitted,
    /// An ACK matched this INVITE transaction (only a non-2xx final response is ACKed here;
    /// the ACK for a 2xx is a request of its own, §17.1.1.3).
    AckReceived,
    /// The transaction user sends this response.
    Responded {
        status: u16,
        response: ResponseBytes,
    },
    /// The transport could not deliver a response (§17.2.4).
    TransportFailed,
    DeadlineReached,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hand these bytes to the transport, towards the request's source.
    Send(ResponseBytes),
    /// The transaction is over; forget it.
    Terminated(Ending),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The normal end: the final response had its time to be retransmitted or ACKed.
    Completed,
    /// No ACK for a non-2xx final response within 64·T1 (Timer H); the TU should be told.
    AckTimeout,
    /// §17.2.4: the TU should be told.
    TransportError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Non-INVITE before any response.
    Trying,
    /// A provisional response was sent (for INVITE: the state from the start).
    Proceeding {
        last_provisional: Option<ResponseBytes>,
    },
    /// RFC 6026 §7.1: a 2xx to an INVITE was sent; retransmitted INVITEs are absorbed (the TU
    /// retransmits the 2xx itself, §13.3.1.4) until Timer L.
    Accepted {
        timer_l: Instant,
    },
    /// A final response was sent. For INVITE: retransmitted on Timer G until the ACK or Timer H;
    /// for non-INVITE: repeated for retransmitted requests until Timer J.
    Completed {
        response: ResponseBytes,
        retransmit: Option<(Instant, Duration)>,
        end: Instant,
    },
    /// INVITE only: the ACK arrived; stray ACKs are absorbed until Timer I.
    Confirmed {
        timer_i: Instant,
    },
    Terminated,
}

#[derive(Debug, Clone)]
pub struct ServerTransaction {
    kind: Kind,
    transport: Transport,
    timers: Timers,
    state: State,
}

impl ServerTransaction {
    pub fn new(kind: Kind, transport: Transport, timers: Timers) -> ServerTransaction {
        let state = match kind {
            Kind::Invite => State::Proceeding { last_provisional: None },
            Kind::NonInvite => State::Trying,
        };
        ServerTransaction { kind, transport, timers, state }
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Accepted { timer_l } => Some(*timer_l),
            State::Completed { retransmit, end, .. } => Some(retransmit.map_or(*end, |(at, _)| at.min(*end))),
            State::Confirmed { timer_i } => Some(*timer_i),
            State::Trying | State::Proceeding { .. } | State::Terminated => None,
        }
    }

    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        let next = match (&self.state, event) {
            (State::Terminated, _) => None,
            (_, Event::TransportFailed) => {
                actions.push(Action::Terminated(Ending::TransportError));
                Some(State::Terminated)
            }
            // §17.2.2: retransmissions in Trying are discarded; §17.2.1/§17.2.2: in Proceeding the
            // last provisional response goes out again.
            (State::Trying, Event::RequestRetransmitted) => None,
            (State::Proceeding { last_provisional }, Event::RequestRetransmitted) => {
                actions.extend(last_provisional.clone().map(Action::Send));
                None
            }
            (State::Trying | State::Proceeding { .. }, Event::Responded { status, response }) => {
                actions.push(Action::Send(response.clone()));
                Some(self.after_response(now, status, response))
            }
            (State::Accepted { .. }, Event::Responded { status: 200..=299, response }) => {
                actions.push(Action::Send(response));
                None
            }
            (State::Accepted { timer_l }, Event::DeadlineReached) if now >= *timer_l => {
                actions.push(Action::Terminated(Ending::Completed));
                Some(State::Terminated)
            }
            (State::Completed { response, .. }, Event::RequestRetransmitted) => {
                actions.push(Action::Send(response.clone()));
                None
            }
            (State::Completed { .. }, Event::AckReceived) if self.kind == Kind::Invite => {
                // §17.2.1: Timer I absorbs further ACK retransmissions; zero on reliable transports.
                Some(self.end_after(now, State::Confirmed { timer_i: now + self.unreliable_only(self.timers.t4) }))
            }
            (State::Completed { response, retransmit, end }, Event::DeadlineReached) => {
                if now >= *end {
                    let ending = if self.kind == Kind::Invite { Ending::AckTimeout } else { Ending::Completed };
                    actions.push(Action::Terminated(ending));
                    Some(State::Terminated)
                } else if let Some((_, interval)) = retransmit.filter(|(at, _)| now >= *at) {
                    // §17.2.1 Timer G: double the interval up to T2.
                    actions.push(Action::Send(response.clone()));
                    let interval = (interval * 2).min(self.timers.t2);
                    Some(State::Completed {
                        response: response.clone(),
                        retransmit: Some((now + interval, interval)),
                        end: *end,
                    })
                } else {
                    None
                }
            }
            (State::Confirmed { timer_i }, Event::DeadlineReached) if now >= *timer_i => {
                actions.push(Action::Terminated(Ending::Completed));
                Some(State::Terminated)
            }
            // Anything else changes nothing: late ACKs, early deadlines, a second final response.
            _ => None,
        };
        if let Some(state) = next {
            // A transition straight to Terminated (a zero Timer I or J on a reliable transport)
            // still tells the caller the transaction is over.
            self.state = state;
            if let State::Terminated = self.state
                && !actions.iter().any(|action| matches!(action, Action::Terminated(_)))
            {
                actions.push(Action::Terminated(Ending::Completed));
            }
        }
        actions
    }

    /// The state after the TU's response with `status` in Trying or Proceeding.
    fn after_response(&self, now: Instant, status: u16, response: ResponseBytes) -> State {
        let sixty_four_t1 = 64 * self.timers.t1;
        match (self.kind, status) {
            (_, 100..=199) => State::Proceeding { last_provisional: Some(response) },
            (Kind::Invite, 200..=299) => State::Accepted { timer_l: now + sixty_four_t1 },
            (Kind::Invite, _) => {
                let retransmit = match self.transport {
                    Transport::Unreliable => Some((now + self.timers.t1, self.timers.t1)),
                    Transport::Reliable => None,
                };
                // Timer H runs on every transport: it waits for the ACK, not for the network.
                State::Completed { response, retransmit, end: now + sixty_four_t1 }
            }
            (Kind::NonInvite, _) => {
                let end = now + self.unreliable_only(sixty_four_t1);
                self.end_after(now, State::Completed { response, retransmit: None, end })
            }
        }
    }

    /// A timer that is zero on reliable transports (Timers I and J).
    fn unreliable_only(&self, duration: Duration) -> Duration {
        match self.transport {
            Transport::Unreliable => duration,
            Transport::Reliable => Duration::ZERO,
        }
    }

    /// A state whose timer is already due ends the transaction at once.
    fn end_after(&self, now: Instant, state: State) -> State {
        let due = match &state {
            State::Confirmed { timer_i } => *timer_i <= now,
            State::Completed { end, .. } => *end <= now,
            _ => false,
        };
        if due { State::Terminated } else { state }
    }
}
