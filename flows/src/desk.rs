//! The console's desk (`loket_crm::desk::Desk`) over the router and the voice flows: what an
//! agent does in the workspace goes to the router, and to the call when the work is a call.

use std::sync::Arc;

use loket_crm::desk::{CallError, CallState, Coaching, Desk, DeskFuture, SoftphoneError, TransferTarget};
use loket_routing::core::{Action, AgentRecord, Input, WorkItem};
use loket_routing::engine::Router;
use loket_routing::error::StoreError;
use loket_routing::model::{AgentId, QueueId, WorkItemId};
use loket_routing::store::QueueStore;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::voice::Voice;

pub struct RouterDesk<S: QueueStore> {
    router: Arc<Router<S>>,
    voice: Arc<Voice<Router<S>>>,
    changes: broadcast::Sender<AgentId>,
}

impl<S: QueueStore> RouterDesk<S> {
    /// The desk, and the task that tells it which agents the router's decisions concern.
    pub fn start(router: Arc<Router<S>>, voice: Arc<Voice<Router<S>>>) -> (RouterDesk<S>, JoinHandle<()>) {
        let changes = voice.changes();
        let mut actions = router.subscribe();
        let forward = changes.clone();
        let task = tokio::spawn(async move {
            loop {
                match actions.recv().await {
                    Ok(action) => {
                        let agent = match action {
                            Action::OfferItem { agent, .. }
                            | Action::WithdrawItem { agent, .. }
                            | Action::ShowAgentState { agent, .. } => agent,
                        };
                        // Nobody listening is fine: no console is open.
                        let _ = forward.send(agent);
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(
                            missed,
                            "the desk missed routing decisions; consoles resync on their next change"
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        (RouterDesk { router, voice, changes }, task)
    }
}

impl<S: QueueStore> Desk for RouterDesk<S> {
    fn execute(&self, input: Input) -> DeskFuture<'_, Result<Vec<Action>, StoreError>> {
        Box::pin(self.router.execute(input))
    }

    fn agent(&self, agent: AgentId) -> DeskFuture<'_, Result<Option<AgentRecord>, StoreError>> {
        Box::pin(self.router.store().agent(agent))
    }

    fn item(&self, item: WorkItemId) -> DeskFuture<'_, Result<Option<WorkItem>, StoreError>> {
        Box::pin(self.router.store().item(item))
    }

    fn waiting<'a>(&'a self, queue: &'a QueueId, limit: usize) -> DeskFuture<'a, Result<Vec<WorkItem>, StoreError>> {
        Box::pin(self.router.store().waiting(queue, limit))
    }

    fn changes(&self) -> broadcast::Receiver<AgentId> {
        self.changes.subscribe()
    }

    fn changed(&self, agent: AgentId) {
        // Nobody listening is fine: no console is open.
        let _ = self.changes.send(agent);
    }

    fn connect(&self, item: WorkItemId, agent: AgentId, username: &str) -> Result<(), CallError> {
        self.voice.connect(item, agent, username)
    }

    fn hang_up(&self, item: WorkItemId) -> Result<(), CallError> {
        self.voice.hang_up(item)
    }

    fn transfer(&self, item: WorkItemId, to: TransferTarget) -> Result<(), CallError> {
        self.voice.transfer(item, to)
    }

    fn hold(&self, item: WorkItemId, on: bool) -> Result<(), CallError> {
        self.voice.hold(item, on)
    }

    fn call_state(&self, item: WorkItemId) -> Option<CallState> {
        self.voice.call_state(item)
    }

    fn softphone<'a>(&'a self, agent: AgentId, offer: &'a str) -> DeskFuture<'a, Result<String, SoftphoneError>> {
        Box::pin(
            async move { self.voice.softphone(agent, offer).await.map_err(|error| SoftphoneError(error.to_string())) },
        )
    }

    fn has_softphone(&self, agent: AgentId) -> bool {
        self.voice.has_softphone(agent)
    }

    fn coach(&self, item: WorkItemId, supervisor: AgentId, mode: Option<Coaching>) -> Result<(), CallError> {
        self.voice.coach(item, supervisor, mode)
    }

    fn coaching(&self, item: WorkItemId) -> Option<(AgentId, Coaching)> {
        self.voice.coaching(item)
    }
}
