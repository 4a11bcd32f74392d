//! What the server and the client transaction tables share: transactions by key, each with the
//! destination of its messages, and one timer wheel for all their deadlines. Each table turns its
//! machine's actions into its own outputs.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use super::wheel::TimerWheel;

/// A transaction state machine as a table drives it.
pub(crate) trait Machine {
    type Event;
    type Action;
    fn handle(&mut self, now: Instant, event: Self::Event) -> Vec<Self::Action>;
    fn is_terminated(&self) -> bool;
    fn next_deadline(&self) -> Option<Instant>;
    fn deadline_reached() -> Self::Event;
}

struct Entry<M, D> {
    machine: M,
    destination: D,
    /// The deadline the wheel holds for this transaction; wheel entries for other instants are
    /// stale and skipped.
    scheduled: Option<Instant>,
}

pub(crate) struct Slots<K, M, D> {
    max: usize,
    entries: HashMap<K, Entry<M, D>>,
    wheel: TimerWheel<(K, Instant)>,
}

impl<K: Clone + Eq + Hash, M: Machine, D> Slots<K, M, D> {
    /// `max` bounds memory: at 1,000 new transactions a second, each living up to 64·T1 (32 s),
    /// about 32,000 are alive at once.
    pub(crate) fn new(now: Instant, max: usize) -> Slots<K, M, D> {
        // 10 ms ticks: finer than any SIP timer needs; 4,096 slots turn once in 41 s, beyond 64·T1.
        let wheel = TimerWheel::new(now, Duration::from_millis(10), 4_096);
        Slots { max, entries: HashMap::new(), wheel }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.max
    }

    pub(crate) fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.wheel.next_deadline()
    }

    /// The caller has checked that the key is free and the table not full.
    pub(crate) fn insert(&mut self, key: K, machine: M, destination: D) {
        self.entries.insert(key, Entry { machine, destination, scheduled: None });
    }

    /// Feeds `event` to the transaction `key` (nothing if it has ended); `output` turns each of
    /// its actions into the table's output.
    pub(crate) fn feed<O>(
        &mut self,
        now: Instant,
        key: &K,
        event: M::Event,
        output: impl FnMut(&K, &D, M::Action) -> O,
    ) -> Vec<O> {
        let Some(entry) = self.entries.get_mut(key) else { return Vec::new() };
        let actions = entry.machine.handle(now, event);
        self.apply(key, actions, output)
    }

    /// Turns `actions` of the transaction `key` into outputs, then forgets the transaction if it
    /// ended or schedules its next deadline.
    pub(crate) fn apply<O>(
        &mut self,
        key: &K,
        actions: Vec<M::Action>,
        mut output: impl FnMut(&K, &D, M::Action) -> O,
    ) -> Vec<O> {
        let Some(entry) = self.entries.get_mut(key) else { return Vec::new() };
        let outputs = actions.into_iter().map(|action| output(key, &entry.destination, action)).collect();
        if entry.machine.is_terminated() {
            self.entries.remove(key);
            return outputs;
        }
        let deadline = entry.machine.next_deadline();
        if let Some(at) = deadline.filter(|at| entry.scheduled != Some(*at)) {
            self.wheel.insert(at, (key.clone(), at));
        }
        entry.scheduled = deadline;
        outputs
    }

    /// Fires every transaction timer due at `now`.
    pub(crate) fn on_deadline<O>(&mut self, now: Instant, mut output: impl FnMut(&K, &D, M::Action) -> O) -> Vec<O> {
        let mut due = Vec::new();
        self.wheel.expire(now, &mut due);
        let mut outputs = Vec::new();
        for (key, at) in due {
            let Some(entry) = self.entries.get_mut(&key) else { continue };
            if entry.scheduled == Some(at) {
                entry.scheduled = None;
                outputs.extend(self.feed(now, &key, M::deadline_reached(), &mut output));
            }
        }
        outputs
    }
}
