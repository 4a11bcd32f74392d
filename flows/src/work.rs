//! Where new work goes: the router, behind [`WorkItems`] so that the binary hands over whichever
//! `engine::Router` it runs (in-process or Redis store) and every channel uses the same one.

use std::collections::HashMap;
use std::future::Future;

use loket_crm::db::Db;
use loket_crm::records::directory::{self, Queue};
use loket_routing::core::{Input, ItemState};
use loket_routing::engine::Router;
use loket_routing::error::StoreError;
use loket_routing::model::{
    NewWorkItem, QueueConfig, QueueId, ServiceLevelTarget, Skill, SkillRequirement, WorkItemId,
};
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    #[error("reading the queues: {0}")]
    Directory(#[from] sqlx::Error),
    #[error("configuring the queue {queue}: {source}")]
    Store {
        queue: String,
        #[source]
        source: StoreError,
    },
}

/// Gives the router the CRM's queues with their default skills; returns the queues, and each
/// queue's service-level target as the router has it.
pub async fn configure_queues<S: QueueStore>(
    store: &S,
    db: &Db,
) -> Result<(Vec<Queue>, HashMap<QueueId, ServiceLevelTarget>), ConfigureError> {
    let queues = directory::queues(db).await?;
    let mut targets = HashMap::new();
    for queue in &queues {
        let mut routing = QueueConfig::new(QueueId::new(&queue.code));
        routing.default_skills = queue
            .skills
            .iter()
            .map(|(skill, level)| SkillRequirement {
                skill: Skill(skill.as_str().into()),
                min_level: u8::try_from(*level).unwrap_or(u8::MAX),
            })
            .collect();
        targets.insert(routing.id.clone(), routing.service_level.clone());
        store
            .configure_queue(routing)
            .await
            .map_err(|source| ConfigureError::Store { queue: queue.code.clone(), source })?;
    }
    Ok((queues, targets))
}
