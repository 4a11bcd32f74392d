//! Where new work goes: the router, behind [`WorkItems`] so that the binary hands over whichever
//! `engine::Router` it runs (in-process or Redis store) and every channel uses the same one.

use std::future::Future;

use loket_routing::core::{Input, ItemState};
use loket_routing::engine::Router;
use loket_routing::error::StoreError;
use loket_routing::model::{NewWorkItem, WorkItemId};
use loket_routing::store::QueueStore;

/// How far down the queue list a caller's place is looked for; beyond, the place is unknown.
const PLACES_LOOKED_AT: usize = 500;

pub trait WorkItems: Send + Sync + 'static {
    fn submit(&self, item: NewWorkItem) -> impl Future<Output = Result<WorkItemId, StoreError>> + Send;

    /// A router input from a channel's flow: a caller who hung up, a call finished or returned.
    fn execute(&self, input: Input) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The item's place among the waiting items of its queue (1: next), `None` once it waits no
    /// more (offered, assigned, gone) or is beyond the first places.
    fn place(&self, item: WorkItemId) -> impl Future<Output = Result<Option<u32>, StoreError>> + Send;
}

impl<S: QueueStore> WorkItems for Router<S> {
    async fn submit(&self, item: NewWorkItem) -> Result<WorkItemId, StoreError> {
        self.enqueue(item).await.map(|(id, _actions)| id)
    }

    async fn execute(&self, input: Input) -> Result<(), StoreError> {
        Router::execute(self, input).await.map(drop)
    }

    async fn place(&self, id: WorkItemId) -> Result<Option<u32>, StoreError> {
        let Some(item) = self.store().item(id).await? else { return Ok(None) };
        if item.state != ItemState::Waiting {
            return Ok(None);
        }
        let waiting = self.store().waiting(&item.queue, PLACES_LOOKED_AT).await?;
        Ok(waiting.iter().position(|other| other.id == id).and_then(|index| u32::try_from(index + 1).ok()))
    }
}
