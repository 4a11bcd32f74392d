//! All client transactions of one endpoint on one timer wheel, matched by the top Via's branch
//! and the CSeq method (RFC 3261 §17.1.3). Sans-IO like the server table.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::client::{ClientAction, ClientEnding, ClientEvent, ClientTransaction};
use super::wheel::TimerWheel;
use super::{Kind, ResponseBytes, Timers, Transport};

/// A client transaction's identity: the branch loket put in its Via, and the method (a CANCEL
/// shares its INVITE's branch, §9.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub branch: String,
    pub method: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOutput<D> {
    Send {
        to: D,
        bytes: ResponseBytes,
    },
    /// Build and send the ACK for the response that caused this (non-2xx to an INVITE).
    SendAck {
        key: ClientKey,
        to: D,
    },
    /// Give the response that caused this to the transaction user.
    Deliver {
        key: ClientKey,
    },
    Terminated {
        key: ClientKey,
        ending: ClientEnding,
    },
}

struct Entry<D> {
    transaction: ClientTransaction,
    destination: D,
    scheduled: Option<Instant>,
}

pub struct ClientTransactions<D> {
    timers: Timers,
    max_transactions: usize,
    entries: HashMap<ClientKey, Entry<D>>,
    wheel: TimerWheel<(ClientKey, Instant)>,
}

impl<D: Clone> ClientTransactions<D> {
    pub fn new(now: Instant, timers: Timers, max_transactions: usize) -> ClientTransactions<D> {
        // The same wheel as the server table's: 10 ms ticks, a revolution beyond 64·T1.
        let wheel = TimerWheel::new(now, Duration::from_millis(10), 4_096);
        ClientTransactions { timers, max_transactions, entries: HashMap::new(), wheel }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.wheel.next_deadline()
    }

    /// Sends `request` to `destination` in a new transaction; `None` when the table is full or
    /// the key is in use (then nothing was sent).
    pub fn start(
        &mut self,
        now: Instant,
        key: ClientKey,
        kind: Kind,
        transport: Transport,
        destination: D,
        request: ResponseBytes,
    ) -> Option<Vec<ClientOutput<D>>> {
        if self.entries.len() >= self.max_transactions || self.entries.contains_key(&key) {
            return None;
        }
        let (transaction, actions) = ClientTransaction::start(now, kind, transport, self.timers, request);
        self.entries.insert(key.clone(), Entry { transaction, destination, scheduled: None });
        Some(self.after(&key, actions))
    }

    /// A response to the request of `key`; nothing for a response that matches no transaction
    /// (§17.1.3: it goes to the core, which for loket means a stray 2xx, see the service).
    pub fn on_response(&mut self, now: Instant, key: &ClientKey, status: u16) -> Vec<ClientOutput<D>> {
        self.feed(now, key, ClientEvent::ResponseReceived { status })
    }

    pub fn contains(&self, key: &ClientKey) -> bool {
        self.entries.contains_key(key)
    }

    pub fn on_deadline(&mut self, now: Instant) -> Vec<ClientOutput<D>> {
        let mut due = Vec::new();
        self.wheel.expire(now, &mut due);
        let mut outputs = Vec::new();
        for (key, at) in due {
            if self.entries.get(&key).is_some_and(|entry| entry.scheduled == Some(at)) {
                if let Some(entry) = self.entries.get_mut(&key) {
                    entry.scheduled = None;
                }
                outputs.extend(self.feed(now, &key, ClientEvent::DeadlineReached));
            }
        }
        outputs
    }

    fn feed(&mut self, now: Instant, key: &ClientKey, event: ClientEvent) -> Vec<ClientOutput<D>> {
        let Some(entry) = self.entries.get_mut(key) else { return Vec::new() };
        let actions = entry.transaction.handle(now, event);
        self.after(key, actions)
    }

    fn after(&mut self, key: &ClientKey, actions: Vec<ClientAction>) -> Vec<ClientOutput<D>> {
        let Some(entry) = self.entries.get_mut(key) else { return Vec::new() };
        let outputs = actions
            .into_iter()
            .map(|action| match action {
                ClientAction::Send(bytes) => ClientOutput::Send { to: entry.destination.clone(), bytes },
                ClientAction::SendAck => ClientOutput::SendAck { key: key.clone(), to: entry.destination.clone() },
                ClientAction::Deliver => ClientOutput::Deliver { key: key.clone() },
                ClientAction::Terminated(ending) => ClientOutput::Terminated { key: key.clone(), ending },
            })
            .collect();
        if entry.transaction.is_terminated() {
            self.entries.remove(key);
            return outputs;
        }
        let deadline = entry.transaction.next_deadline();
        if let Some(at) = deadline.filter(|at| entry.scheduled != Some(*at)) {
            self.wheel.insert(at, (key.clone(), at));
        }
        entry.scheduled = deadline;
        outputs
    }
}
