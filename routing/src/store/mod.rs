//! The store contract that the rest of loket uses, with the in-process and the Redis back ends.
//!
//! Every mutating method applies one input atomically (a mutex in process, a compare-and-set Lua
//! script on Redis), runs the follow-up routing decisions, appends the events to the log and
//! returns the actions for the caller to carry out. An item is never offered or assigned to two
//! agents, whatever the number of callers or nodes.

pub mod memory;
pub mod redis;

use std::future::Future;

use crate::core::{Action, AgentRecord, Input, WorkItem};
use crate::error::StoreError;
use crate::event::RoutingEvent;
use crate::model::{AgentId, NewWorkItem, QueueConfig, QueueId, Timestamp, WorkItemId};

/// A position in the event log; [`EventCursor::default`] is its start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventCursor(pub String);

pub trait QueueStore: Send + Sync + 'static {
    /// Adds or replaces a queue definition.
    fn configure_queue(&self, queue: QueueConfig) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn enqueue(
        &self,
        now: Timestamp,
        spec: NewWorkItem,
    ) -> impl Future<Output = Result<(WorkItemId, Vec<Action>), StoreError>> + Send;

    fn apply(&self, now: Timestamp, input: Input) -> impl Future<Output = Result<Vec<Action>, StoreError>> + Send;

    /// Acts on every deadline up to `now`: offer leases, relaxation steps, unroutable checks,
    /// after-call-work timeouts. On Redis this is also the reconciler: a lease written by a node
    /// that died is expired by whichever node calls this.
    fn expire(&self, now: Timestamp) -> impl Future<Output = Result<Vec<Action>, StoreError>> + Send;

    fn next_deadline(&self) -> impl Future<Output = Result<Option<Timestamp>, StoreError>> + Send;

    /// A cursor before the first event logged at `at` or later, so that a reader need not go
    /// through the whole log. Nodes' clocks differ: read from a little earlier to be sure.
    fn cursor_at(&self, at: Timestamp) -> impl Future<Output = Result<EventCursor, StoreError>> + Send;

    /// Events after `cursor`, oldest first, at most `limit`, and the cursor to continue from.
    fn read_events(
        &self,
        cursor: EventCursor,
        limit: usize,
    ) -> impl Future<Output = Result<(Vec<RoutingEvent>, EventCursor), StoreError>> + Send;

    fn item(&self, item: WorkItemId) -> impl Future<Output = Result<Option<WorkItem>, StoreError>> + Send;

    fn agent(&self, agent: AgentId) -> impl Future<Output = Result<Option<AgentRecord>, StoreError>> + Send;

    /// The queue list agents pull from: waiting items, best score first.
    fn waiting(&self, queue: &QueueId, limit: usize) -> impl Future<Output = Result<Vec<WorkItem>, StoreError>> + Send;

    /// Calls `on_actions` with the actions other nodes decided, until the future is dropped or
    /// the store fails. A single-process store has no other nodes and never returns.
    fn follow_other_nodes(
        &self,
        on_actions: impl FnMut(Vec<Action>) + Send,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        drop(on_actions);
        std::future::pending()
    }
}
