//! Where new work goes: the router, behind [`WorkItems`] so that the binary hands over whichever
//! `engine::Router` it runs (in-process or Redis store) and every channel uses the same one.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use loket_crm::clock::Clock;
use loket_crm::db::Db;
use loket_crm::records::directory::{self, Queue};
use loket_crm::records::work_requests::{self, Pending, WorkRequest};
use loket_routing::core::{Input, ItemState};
use loket_routing::engine::Router;
use loket_routing::error::StoreError;
use loket_routing::model::{
    Channel, NewWorkItem, QueueConfig, QueueId, ServiceLevelTarget, Skill, SkillRequirement, WorkItemId,
};
use loket_routing::store::QueueStore;
use tokio::sync::Notify;

/// How far down the queue list a caller's place is looked for; beyond, the place is unknown.
const PLACES_LOOKED_AT: usize = 500;

pub trait WorkItems: Send + Sync + 'static {
    fn submit(&self, item: NewWorkItem) -> impl Future<Output = Result<WorkItemId, StoreError>> + Send;

    /// A router input from a channel's flow: a caller who hung up, a call finished or returned.
    fn execute(&self, input: Input) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The item's place among the waiting items of its queue (1: next), `None` once it waits no
    /// more (offered, assigned, gone) or is beyond the first places.
    fn place(&self, item: WorkItemId) -> impl Future<Output = Result<Option<u32>, StoreError>> + Send;

    /// Whether the router still has the item (waiting, offered or in hand).
    fn has(&self, item: WorkItemId) -> impl Future<Output = Result<bool, StoreError>> + Send;
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

    async fn has(&self, id: WorkItemId) -> Result<bool, StoreError> {
        Ok(self.store().item(id).await?.is_some())
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

/// How often the requests are looked at again when nothing rang: a router that refused one
/// gets it again, and so does a router that was down.
const REQUESTS_RETRY: Duration = Duration::from_secs(5);

/// Hands the router the work the console asked for (`records::work_requests`: web forms,
/// Facebook comments) whenever `requested` rings, and every few seconds for what failed before.
/// The first pass, at start, takes what a stopped process left. Runs until the task is dropped.
pub async fn follow_requests<W: WorkItems>(db: Db, clock: Clock, work: Arc<W>, requested: Arc<Notify>) {
    loop {
        if let Err(error) = route_requests(&db, &clock, work.as_ref()).await {
            tracing::warn!(%error, "work the console asked for waits for the router");
        }
        tokio::select! {
            () = requested.notified() => {}
            () = tokio::time::sleep(REQUESTS_RETRY) => {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("reading the work requests: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the router refused the work item of case {case_id}: {source}")]
    Router { case_id: i64, source: StoreError },
}

/// Every pending request to the router, oldest first. One the router refuses stays pending for
/// the next pass and does not hold up the others; the first refusal is returned once all were
/// tried. Returns how many went.
pub async fn route_requests(db: &Db, clock: &Clock, work: &impl WorkItems) -> Result<usize, RequestError> {
    let (mut routed, mut after, mut refused) = (0, 0, None);
    loop {
        let batch = work_requests::pending(db, after, 100).await?;
        let Some(last) = batch.last() else {
            return refused.map_or(Ok(routed), Err);
        };
        after = last.id;
        for Pending { id, request } in batch {
            let case_id = request.case_id;
            match work.submit(work_item(request)).await {
                Ok(item) => {
                    work_requests::mark_routed(db, id, item.0, clock.now()).await?;
                    routed += 1;
                }
                Err(source) => {
                    refused.get_or_insert(RequestError::Router { case_id, source });
                }
            }
        }
    }
}

/// The router's item for a request.
fn work_item(request: WorkRequest) -> NewWorkItem {
    case_item(request.channel, &request.queue_code, &request.skills, &request.language, request.case_id)
}

/// The work item of a case a channel's intake opened: its queue, the skills each at level 1, and
/// the language as the one skill the router never relaxes.
pub fn case_item(channel: Channel, queue: &str, skills: &[String], language: &str, case_id: i64) -> NewWorkItem {
    let mut item = NewWorkItem::new(channel, QueueId::new(queue));
    item.required_skills =
        skills.iter().map(|skill| SkillRequirement { skill: Skill(skill.as_str().into()), min_level: 1 }).collect();
    item.language = Some(Skill(language.into()));
    item.case_id = Some(case_id);
    item
}
