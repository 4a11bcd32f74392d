//! The in-process store: one [`RouterCore`] behind a mutex, and the event log in a `Vec`.
//!
//! A `std::sync::Mutex`, not Tokio's, because it is never held across an `await`: every method
//! locks, runs the core synchronously and unlocks.

use std::sync::{Mutex, MutexGuard};

use crate::core::{Action, AgentRecord, Input, RouterCore, WorkItem};
use crate::error::StoreError;
use crate::event::RoutingEvent;
use crate::model::{AgentId, NewWorkItem, QueueConfig, QueueId, RouterSettings, Timestamp, WorkItemId};
use crate::store::{EventCursor, QueueStore};

pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

struct MemoryState {
    core: RouterCore,
    next_item: u64,
    log: Vec<RoutingEvent>,
}

impl MemoryStore {
    pub fn new(settings: RouterSettings) -> MemoryStore {
        MemoryStore {
            state: Mutex::new(MemoryState { core: RouterCore::new(settings, []), next_item: 1, log: Vec::new() }),
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
        let MemoryState { core, log, .. } = self;
        log.extend(core.drain_events());
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
        Ok(EventCursor(state.log.partition_point(|event| event.at < at).to_string()))
    }

    async fn read_events(
        &self,
        cursor: EventCursor,
        limit: usize,
    ) -> Result<(Vec<RoutingEvent>, EventCursor), StoreError> {
        let state = self.lock();
        let start = cursor.0.parse::<usize>().unwrap_or(0).min(state.log.len());
        let end = start.saturating_add(limit).min(state.log.len());
        Ok((state.log[start..end].to_vec(), EventCursor(end.to_string())))
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
