//! RFC 3261 §17.1 client transactions as pure state machines, with RFC 6026's Accepted state for
//! INVITE: one [`ClientTransaction`] per request loket sends. Like the server side it knows no
//! message syntax: the request leaves as bytes, responses arrive as status codes, and the ACK of a
//! non-2xx final response (§17.1.1.3) is asked of the edge with [`ClientAction::SendAck`], since
//! building it needs the response's To tag.
//!
//! Timers: INVITE A (retransmit, T1 doubling, unreliable only), B (64·T1 without a response), D
//! (absorb final-response retransmissions: 32 s unreliable, 0 reliable), M (RFC 6026: further
//! 2xx go to the TU for 64·T1); non-INVITE E (retransmit, doubling to T2; T2 once Proceeding),
//! F (64·T1), K (T4 unreliable, 0 reliable).

use std::time::{Duration, Instant};

use super::{Kind, ResponseBytes, Timers, Transport};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A response matched this transaction (§17.1.3).
    ResponseReceived {
        status: u16,
    },
    /// The transport could not deliver the request (§17.1.4).
    TransportFailed,
    DeadlineReached,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Send the request (again).
    Send(ResponseBytes),
    /// ACK the non-2xx final response just received (§17.1.1.3), again for each retransmission.
    SendAck,
    /// Hand the response to the transaction user.
    Deliver,
    Terminated(ClientEnding),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientEnding {
    Completed,
    /// Timer B or F: no final response in time; the TU treats it as a 408 (§8.1.3.1).
    Timeout,
    TransportError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// INVITE Calling or non-INVITE Trying: retransmitting, Timer B/F running.
    Trying {
        retransmit: Option<(Instant, Duration)>,
        timeout: Instant,
    },
    /// A provisional arrived. INVITE: no timer (the TU bounds ringing, and CANCELs); non-INVITE:
    /// retransmissions every T2 and Timer F still run.
    Proceeding {
        retransmit: Option<(Instant, Duration)>,
        timeout: Option<Instant>,
    },
    /// RFC 6026 §8.4: INVITE after a 2xx; 2xx retransmissions reach the TU until Timer M.
    Accepted {
        timer_m: Instant,
    },
    /// A final response arrived; its retransmissions are absorbed until Timer D or K.
    Completed {
        end: Instant,
    },
    Terminated,
}

#[derive(Debug, Clone)]
pub struct ClientTransaction {
    kind: Kind,
    transport: Transport,
    timers: Timers,
    request: ResponseBytes,
    state: State,
}

impl ClientTransaction {
    /// Starts the transaction; the actions send the request.
    pub fn start(
        now: Instant,
        kind: Kind,
        transport: Transport,
        timers: Timers,
        request: ResponseBytes,
    ) -> (ClientTransaction, Vec<ClientAction>) {
        let retransmit = match transport {
            Transport::Unreliable => Some((now + timers.t1, timers.t1)),
            Transport::Reliable => None,
        };
        let state = State::Trying { retransmit, timeout: now + 64 * timers.t1 };
        let actions = vec![ClientAction::Send(request.clone())];
        (ClientTransaction { kind, transport, timers, request, state }, actions)
    }

    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Trying { retransmit, timeout } => Some(retransmit.map_or(*timeout, |(at, _)| at.min(*timeout))),
            State::Proceeding { retransmit, timeout } => {
                [retransmit.map(|(at, _)| at), *timeout].into_iter().flatten().min()
            }
            State::Accepted { timer_m } => Some(*timer_m),
            State::Completed { end } => Some(*end),
            State::Terminated => None,
        }
    }

    pub fn handle(&mut self, now: Instant, event: ClientEvent) -> Vec<ClientAction> {
        let mut actions = Vec::new();
        let next = match (&self.state, event) {
            (State::Terminated, _) => None,
            (_, ClientEvent::TransportFailed) => {
                actions.push(ClientAction::Terminated(ClientEnding::TransportError));
                Some(State::Terminated)
            }
            (
                State::Trying { timeout, .. } | State::Proceeding { timeout: Some(timeout), .. },
                ClientEvent::DeadlineReached,
            ) if now >= *timeout => {
                actions.push(ClientAction::Terminated(ClientEnding::Timeout));
                Some(State::Terminated)
            }
            (State::Trying { retransmit: Some((at, interval)), timeout }, ClientEvent::DeadlineReached)
                if now >= *at =>
            {
                actions.push(ClientAction::Send(self.request.clone()));
                // Timer A doubles without bound (Timer B ends it first); Timer E stops at T2.
                let interval = match self.kind {
                    Kind::Invite => *interval * 2,
                    Kind::NonInvite => (*interval * 2).min(self.timers.t2),
                };
                Some(State::Trying { retransmit: Some((now + interval, interval)), timeout: *timeout })
            }
            (State::Proceeding { retransmit: Some((at, interval)), timeout }, ClientEvent::DeadlineReached)
                if now >= *at =>
            {
                actions.push(ClientAction::Send(self.request.clone()));
                Some(State::Proceeding { retransmit: Some((now + *interval, *interval)), timeout: *timeout })
            }
            (State::Accepted { timer_m }, ClientEvent::DeadlineReached)
            | (State::Completed { end: timer_m }, ClientEvent::DeadlineReached)
                if now >= *timer_m =>
            {
                actions.push(ClientAction::Terminated(ClientEnding::Completed));
                Some(State::Terminated)
            }
            (
                State::Trying { retransmit, timeout } | State::Proceeding { retransmit, timeout: Some(timeout) },
                ClientEvent::ResponseReceived { status: 100..=199 },
            ) if self.kind == Kind::NonInvite => {
                actions.push(ClientAction::Deliver);
                // §17.1.2.2: the pending Timer E still fires; from then on it is reset to T2.
                let retransmit = retransmit.map(|(at, _)| (at, self.timers.t2));
                Some(State::Proceeding { retransmit, timeout: Some(*timeout) })
            }
            (State::Trying { .. } | State::Proceeding { .. }, ClientEvent::ResponseReceived { status: 100..=199 }) => {
                actions.push(ClientAction::Deliver);
                Some(State::Proceeding { retransmit: None, timeout: None })
            }
            (State::Trying { .. } | State::Proceeding { .. }, ClientEvent::ResponseReceived { status }) => {
                match (self.kind, status) {
                    (Kind::Invite, 200..=299) => {
                        actions.push(ClientAction::Deliver);
                        Some(State::Accepted { timer_m: now + 64 * self.timers.t1 })
                    }
                    (Kind::Invite, _) => {
                        actions.extend([ClientAction::SendAck, ClientAction::Deliver]);
                        Some(self.completed(now, Duration::from_secs(32)))
                    }
                    (Kind::NonInvite, _) => {
                        actions.push(ClientAction::Deliver);
                        Some(self.completed(now, self.timers.t4))
                    }
                }
            }
            (State::Accepted { .. }, ClientEvent::ResponseReceived { status: 200..=299 }) => {
                actions.push(ClientAction::Deliver);
                None
            }
            (State::Completed { .. }, ClientEvent::ResponseReceived { status: 300.. }) if self.kind == Kind::Invite => {
                actions.push(ClientAction::SendAck);
                None
            }
            // Late provisionals, retransmitted finals of non-INVITE, early deadlines.
            _ => None,
        };
        if let Some(state) = next {
            self.state = state;
            if self.state == State::Terminated && !actions.iter().any(|a| matches!(a, ClientAction::Terminated(_))) {
                actions.push(ClientAction::Terminated(ClientEnding::Completed));
            }
        }
        actions
    }

    /// Completed with Timer D or K, which are zero on reliable transports.
    fn completed(&self, now: Instant, unreliable: Duration) -> State {
        match self.transport {
            Transport::Unreliable => State::Completed { end: now + unreliable },
            Transport::Reliable => State::Terminated,
        }
    }
}

#[cfg(test)]
mod tests;
