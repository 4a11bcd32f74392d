//! The in-process store: one [`RouterCore`] behind a mutex, and the event log in memory.
//!
//! A `std::sync::Mutex`, not Tokio's, because it is never held across an `await`: every method
//! locks, runs the core synchronously and unlocks.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use crate::core::{Action, AgentRecord, Input, RouterCore, WorkItem};
use crate::error::StoreError;
use crate::event::RoutingEvent;
use crate::model::{AgentId, NewWorkItem, QueueConfig, QueueId, RouterSettings, Timestamp, WorkItemId};
use crate::store::{EventCursor, QueueStore};

/// The newest events the log keeps, as the Redis stream keeps about a million entries: a process
/// that runs for months must not grow with every call it routed. Readers that keep up (the desk
/// reads every second) never notice; one that falls a million events behind resumes at the
/// oldest kept.
const EVENTS_KEPT: usize = 1_000_000;

pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

struct MemoryState {
    core: RouterCore,
    next_item: u64,
    log: VecDeque<RoutingEvent>,
    /// Events dropped from the front of `log`: cursors count from the first event ever logged,
    /// so that they stay valid while the log is trimmed.
    dropped: usize,
    kept: usize,
}

impl MemoryStore {
    pub fn new(settings: RouterSettings) -> MemoryStore {
        MemoryStore::keeping_events(settings, EVENTS_KEPT)
    }

    fn keeping_events(settings: RouterSettings, kept: usize) -> MemoryStore {
        MemoryStore {
            state: Mutex::new(MemoryState {
                core: RouterCore::new(settings, []),
                next_item: 1,
                log: VecDeque::new(),
                dropped: 0,
                kept,
            }),
        }
    }

    /// Synchronous enqueue, for callers (and the benchmark) that are not async.
    pub fn enqueue_now(&self, now: Timestamp, spec: NewWorkItem) -> Result<(WorkItemId, Vec<Action>), StoreError> {
        let mut state = self.lock();
        let item = WorkItemId(state.next_item);
        state.core.item_arrived(now, item, spec)?;
        state.next_item += 1;
        Ok((item, state.finish()))
    }

    /// Synchronous [`QueueStore::apply`].
    pub fn apply_now(&self, now: Timestamp, input: Input) -> Result<Vec<Action>, StoreError> {
        let mut state = self.lock();
        state.core.handle(now, input)?;
        Ok(state.finish())
    }

    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        // A panic while holding the lock is a core bug; the state is still the best we have.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MemoryState {
    fn finish(&mut self) -> Vec<Action> {
        let MemoryState { core, log, dropped, kept, .. } = self;
        log.extend(core.drain_events());
        // Trimmed an eighth at a time, not on every step.
        if log.len() > *kept + *kept / 8 {
            let excess = log.len() - *kept;
            log.drain(..excess);
            *dropped += excess;
        }
        core.drain_actions().collect()
    }
}

impl QueueStore for MemoryStore {
    async fn configure_queue(&self, queue: QueueConfig) -> Result<(), StoreError> {
        self.lock().core.configure_queue(queue);
        Ok(())
    }

    async fn enqueue(&self, now: Timestamp, spec: NewWorkItem) -> Result<(WorkItemId, Vec<Action>), StoreError> {
        self.enqueue_now(now, spec)
    }

    async fn apply(&self, now: Timestamp, input: Input) -> Result<Vec<Action>, StoreError> {
        self.apply_now(now, input)
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<Action>, StoreError> {
        let mut state = self.lock();
        state.core.handle_timeout(now);
        Ok(state.finish())
    }

    async fn next_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.lock().core.next_deadline())
    }

    async fn cursor_at(&self, at: Timestamp) -> Result<EventCursor, StoreError> {
        let state = self.lock();
        Ok(EventCursor((state.dropped + state.log.partition_point(|event| event.at < at)).to_string()))
    }

    async fn read_events(
        &self,
        cursor: EventCursor,
        limit: usize,
    ) -> Result<(Vec<RoutingEvent>, EventCursor), StoreError> {
        let state = self.lock();
        let logged = state.dropped + state.log.len();
        let start = cursor.0.parse::<usize>().unwrap_or(0).clamp(state.dropped, logged);
        let end = start.saturating_add(limit).min(logged);
        let events = state.log.range(start - state.dropped..end - state.dropped).cloned().collect();
        Ok((events, EventCursor(end.to_string())))
    }

    async fn item(&self, item: WorkItemId) -> Result<Option<WorkItem>, StoreError> {
        Ok(self.lock().core.item(item).cloned())
    }

    async fn agent(&self, agent: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        Ok(self.lock().core.agent(agent).cloned())
    }

    async fn waiting(&self, queue: &QueueId, limit: usize) -> Result<Vec<WorkItem>, StoreError> {
        Ok(self.lock().core.waiting(queue).take(limit).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, QueueId};

    async fn store_keeping(kept: usize) -> MemoryStore {
        let store = MemoryStore::keeping_events(RouterSettings::default(), kept);
        store.configure_queue(QueueConfig::new(QueueId::new("general"))).await.expect("configure");
        store
    }

    /// Each enqueue logs one event (`Enqueued`): nobody is logged in to be offered the item.
    fn enqueue(store: &MemoryStore, at: i64) {
        store.enqueue_now(Timestamp(at), NewWorkItem::new(Channel::Email, QueueId::new("general"))).expect("enqueue");
    }

    async fn read_all(store: &MemoryStore, mut cursor: EventCursor) -> (Vec<i64>, EventCursor) {
        let mut times = Vec::new();
        loop {
            let (events, next) = store.read_events(cursor, 3).await.expect("read");
            cursor = next;
            if events.is_empty() {
                return (times, cursor);
            }
            times.extend(events.iter().map(|event| event.at.0));
        }
    }

    #[tokio::test]
    async fn the_log_keeps_the_newest_events_and_cursors_survive_trimming() {
        let store = store_keeping(8).await;
        for at in 0..9 {
            enqueue(&store, at);
        }
        // Not trimmed yet: an eighth more than kept is allowed.
        let (all, reader) = read_all(&store, EventCursor::default()).await;
        assert_eq!(all, (0..9).collect::<Vec<_>>());

        enqueue(&store, 9);
        // Trimmed to the newest 8; the reader that kept up goes on without a gap or a repeat.
        let (next, reader) = read_all(&store, reader).await;
        assert_eq!(next, vec![9]);
        let (from_start, _) = read_all(&store, EventCursor::default()).await;
        assert_eq!(from_start, (2..10).collect::<Vec<_>>(), "a cursor from before the oldest kept starts there");
        let (none, _) = read_all(&store, reader).await;
        assert!(none.is_empty());

        let at_five = store.cursor_at(Timestamp(5)).await.expect("cursor");
        assert_eq!(read_all(&store, at_five).await.0, (5..10).collect::<Vec<_>>());
        let before_kept = store.cursor_at(Timestamp(0)).await.expect("cursor");
        assert_eq!(read_all(&store, before_kept).await.0, (2..10).collect::<Vec<_>>());
        // A cursor beyond the end (another store's, or corrupt) reads nothing rather than failing.
        assert!(read_all(&store, EventCursor("99".to_owned())).await.0.is_empty());
    }
}
