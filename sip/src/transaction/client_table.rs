//! All client transactions of one endpoint on one timer wheel, matched by the top Via's branch
//! and the CSeq method (RFC 3261 §17.1.3). Sans-IO like the server table.

use std::time::Instant;

use super::client::{ClientAction, ClientEnding, ClientEvent, ClientTransaction};
use super::slots::{Machine, Slots};
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

/// The transaction `key`'s action as the edge carries it out.
fn output<D: Clone>(key: &ClientKey, destination: &D, action: ClientAction) -> ClientOutput<D> {
    match action {
        ClientAction::Send(bytes) => ClientOutput::Send { to: destination.clone(), bytes },
        ClientAction::SendAck => ClientOutput::SendAck { key: key.clone(), to: destination.clone() },
        ClientAction::Deliver => ClientOutput::Deliver { key: key.clone() },
        ClientAction::Terminated(ending) => ClientOutput::Terminated { key: key.clone(), ending },
    }
}

impl Machine for ClientTransaction {
    type Event = ClientEvent;
    type Action = ClientAction;

    fn handle(&mut self, now: Instant, event: ClientEvent) -> Vec<ClientAction> {
        ClientTransaction::handle(self, now, event)
    }

    fn is_terminated(&self) -> bool {
        ClientTransaction::is_terminated(self)
    }

    fn next_deadline(&self) -> Option<Instant> {
        ClientTransaction::next_deadline(self)
    }

    fn deadline_reached() -> ClientEvent {
        ClientEvent::DeadlineReached
    }
}

pub struct ClientTransactions<D> {
    timers: Timers,
    slots: Slots<ClientKey, ClientTransaction, D>,
}

impl<D: Clone> ClientTransactions<D> {
    pub fn new(now: Instant, timers: Timers, max_transactions: usize) -> ClientTransactions<D> {
        ClientTransactions { timers, slots: Slots::new(now, max_transactions) }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.len() == 0
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots.next_deadline()
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
        if self.slots.is_full() || self.slots.contains(&key) {
            return None;
        }
        let (transaction, actions) = ClientTransaction::start(now, kind, transport, self.timers, request);
        self.slots.insert(key.clone(), transaction, destination);
        Some(self.slots.apply(&key, actions, output))
    }

    /// A response to the request of `key`; nothing for a response that matches no transaction
    /// (§17.1.3: it goes to the core, which for loket means a stray 2xx, see the service).
    pub fn on_response(&mut self, now: Instant, key: &ClientKey, status: u16) -> Vec<ClientOutput<D>> {
        self.slots.feed(now, key, ClientEvent::ResponseReceived { status }, output)
    }

    pub fn contains(&self, key: &ClientKey) -> bool {
        self.slots.contains(key)
    }

    pub fn on_deadline(&mut self, now: Instant) -> Vec<ClientOutput<D>> {
        self.slots.on_deadline(now, output)
    }
}
