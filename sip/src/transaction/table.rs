//! All server transactions of one SIP endpoint, with one timer wheel for their deadlines. It is
//! sans-IO like the transactions: the edge passes requests, the TU's responses and the time, and
//! sends what comes out to the destination it registered with each transaction.

use std::time::Instant;

use super::key::{RequestKind, TransactionKey};
use super::slots::{Machine, Slots};
use super::{Action, Ending, Event, Kind, ResponseBytes, ServerTransaction, Timers, Transport};

/// What the edge does with a received request.
#[derive(Debug, PartialEq, Eq)]
pub enum Dispatch<D> {
    /// A new transaction (or an ACK for a 2xx, which has none): the TU handles the request.
    ToTransactionUser,
    /// A retransmission or a non-2xx ACK, handled here.
    Handled(Vec<Output<D>>),
    /// The table is full: answer 503 statelessly (issue #3, overload) and keep nothing.
    Overloaded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<D> {
    Send { to: D, bytes: ResponseBytes },
    Terminated { key: TransactionKey, ending: Ending },
}

/// The transaction `key`'s action as the edge carries it out.
fn output<D: Clone>(key: &TransactionKey, destination: &D, action: Action) -> Output<D> {
    match action {
        Action::Send(bytes) => Output::Send { to: destination.clone(), bytes },
        Action::Terminated(ending) => Output::Terminated { key: key.clone(), ending },
    }
}

impl Machine for ServerTransaction {
    type Event = Event;
    type Action = Action;

    fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        ServerTransaction::handle(self, now, event)
    }

    fn is_terminated(&self) -> bool {
        ServerTransaction::is_terminated(self)
    }

    fn next_deadline(&self) -> Option<Instant> {
        ServerTransaction::next_deadline(self)
    }

    fn deadline_reached() -> Event {
        Event::DeadlineReached
    }
}

pub struct ServerTransactions<D> {
    timers: Timers,
    slots: Slots<TransactionKey, ServerTransaction, D>,
}

impl<D: Clone> ServerTransactions<D> {
    /// `max_transactions` bounds memory (see `Slots::new`).
    pub fn new(now: Instant, timers: Timers, max_transactions: usize) -> ServerTransactions<D> {
        ServerTransactions { timers, slots: Slots::new(now, max_transactions) }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.len() == 0
    }

    /// Whether the transaction `key` is alive: a CANCEL is answered 200 only if its INVITE's is
    /// (RFC 3261 §9.2).
    pub fn contains(&self, key: &TransactionKey) -> bool {
        self.slots.contains(key)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots.next_deadline()
    }

    /// A request arrived from `destination` (where its responses go) over `transport`.
    pub fn on_request(
        &mut self,
        now: Instant,
        key: TransactionKey,
        kind: RequestKind,
        transport: Transport,
        destination: D,
    ) -> Dispatch<D> {
        if self.slots.contains(&key) {
            let event = match kind {
                RequestKind::Ack => Event::AckReceived,
                RequestKind::Invite | RequestKind::Other => Event::RequestRetransmitted,
            };
            return Dispatch::Handled(self.slots.feed(now, &key, event, output));
        }
        if kind == RequestKind::Ack {
            return Dispatch::ToTransactionUser;
        }
        if self.slots.is_full() {
            return Dispatch::Overloaded;
        }
        let transaction_kind = if kind == RequestKind::Invite { Kind::Invite } else { Kind::NonInvite };
        self.slots.insert(key, ServerTransaction::new(transaction_kind, transport, self.timers), destination);
        Dispatch::ToTransactionUser
    }

    /// The TU responds within the transaction `key`; nothing happens if it has ended.
    pub fn respond(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        status: u16,
        response: ResponseBytes,
    ) -> Vec<Output<D>> {
        self.slots.feed(now, key, Event::Responded { status, response }, output)
    }

    pub fn transport_failed(&mut self, now: Instant, key: &TransactionKey) -> Vec<Output<D>> {
        self.slots.feed(now, key, Event::TransportFailed, output)
    }

    /// Fires every transaction timer due at `now`.
    pub fn on_deadline(&mut self, now: Instant) -> Vec<Output<D>> {
        self.slots.on_deadline(now, output)
    }
}
