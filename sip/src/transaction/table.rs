//! All server transactions of one SIP endpoint, with one timer wheel for their deadlines. It is
//! sans-IO like the transactions: the edge passes requests, the TU's responses and the time, and
//! sends what comes out to the destination it registered with each transaction.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::key::{RequestKind, TransactionKey};
use super::wheel::TimerWheel;
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

struct Entry<D> {
    transaction: ServerTransaction,
    destination: D,
    /// The deadline the wheel holds for this transaction; wheel entries for other instants are
    /// stale and skipped.
    scheduled: Option<Instant>,
}

pub struct ServerTransactions<D> {
    timers: Timers,
    max_transactions: usize,
    entries: HashMap<TransactionKey, Entry<D>>,
    wheel: TimerWheel<(TransactionKey, Instant)>,
}

impl<D: Clone> ServerTransactions<D> {
    /// `max_transactions` bounds memory: at 1,000 new transactions a second, each living up to
    /// 64·T1 (32 s), about 32,000 are alive at once.
    pub fn new(now: Instant, timers: Timers, max_transactions: usize) -> ServerTransactions<D> {
        // 10 ms ticks: finer than any SIP timer needs; 4,096 slots turn once in 41 s, beyond 64·T1.
        let wheel = TimerWheel::new(now, Duration::from_millis(10), 4_096);
        ServerTransactions { timers, max_transactions, entries: HashMap::new(), wheel }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the transaction `key` is alive: a CANCEL is answered 200 only if its INVITE's is
    /// (RFC 3261 §9.2).
    pub fn contains(&self, key: &TransactionKey) -> bool {
        self.entries.contains_key(key)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.wheel.next_deadline()
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
        if self.entries.contains_key(&key) {
            let event = match kind {
                RequestKind::Ack => Event::AckReceived,
                RequestKind::Invite | RequestKind::Other => Event::RequestRetransmitted,
            };
            return Dispatch::Handled(self.feed(now, &key, event));
        }
        if kind == RequestKind::Ack {
            return Dispatch::ToTransactionUser;
        }
        if self.entries.len() >= self.max_transactions {
            return Dispatch::Overloaded;
        }
        let transaction_kind = if kind == RequestKind::Invite { Kind::Invite } else { Kind::NonInvite };
        let transaction = ServerTransaction::new(transaction_kind, transport, self.timers);
        self.entries.insert(key, Entry { transaction, destination, scheduled: None });
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
        self.feed(now, key, Event::Responded { status, response })
    }

    pub fn transport_failed(&mut self, now: Instant, key: &TransactionKey) -> Vec<Output<D>> {
        self.feed(now, key, Event::TransportFailed)
    }

    /// Fires every transaction timer due at `now`.
    pub fn on_deadline(&mut self, now: Instant) -> Vec<Output<D>> {
        let mut due = Vec::new();
        self.wheel.expire(now, &mut due);
        let mut outputs = Vec::new();
        for (key, at) in due {
            let current = self.entries.get(&key).is_some_and(|entry| entry.scheduled == Some(at));
            if current {
                if let Some(entry) = self.entries.get_mut(&key) {
                    entry.scheduled = None;
                }
                outputs.extend(self.feed(now, &key, Event::DeadlineReached));
            }
        }
        outputs
    }

    fn feed(&mut self, now: Instant, key: &TransactionKey, event: Event) -> Vec<Output<D>> {
        let Some(entry) = self.entries.get_mut(key) else { return Vec::new() };
        let mut outputs = Vec::new();
        for action in entry.transaction.handle(now, event) {
            outputs.push(match action {
                Action::Send(bytes) => Output::Send { to: entry.destination.clone(), bytes },
                Action::Terminated(ending) => Output::Terminated { key: key.clone(), ending },
            });
        }
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
