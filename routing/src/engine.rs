//! The async edge: a [`Router`] owns the timers and fans actions out to the console.
//!
//! It reads the wall clock, sleeps until the store's next deadline (offer leases, relaxation
//! steps, after-call-work timeouts), and calls [`QueueStore::expire`]. On Redis the same loop is
//! the reconciler: it also wakes every `reconcile_every`, so a lease left behind by a node that
//! died is expired by the survivors and no agent stays "offered". Retrying a decision after a
//! conflicting write happens inside the Redis store, which knows what conflicted.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use crate::core::{Action, Input};
use crate::error::StoreError;
use crate::model::{NewWorkItem, Timestamp, WorkItemId};
use crate::store::QueueStore;

/// How long the listener for other nodes' actions waits before subscribing again after it lost
/// the channel (Redis restarting, the network gone).
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Upper bound on the timer sleep, so deadlines written by other nodes are seen.
    pub reconcile_every: Duration,
    /// Capacity of the action broadcast; a console that lags further loses the oldest actions.
    pub broadcast_capacity: usize,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions { reconcile_every: Duration::from_secs(1), broadcast_capacity: 4096 }
    }
}

pub struct Router<S: QueueStore> {
    store: Arc<S>,
    actions: broadcast::Sender<Action>,
    wake_timer: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

impl<S: QueueStore> Router<S> {
    /// Starts the timer and the listener for other nodes' actions on the current Tokio runtime.
    pub fn start(store: Arc<S>, options: EngineOptions) -> Router<S> {
        let (actions, _) = broadcast::channel(options.broadcast_capacity);
        let wake_timer = Arc::new(Notify::new());
        let timer =
            tokio::spawn(run_timer(store.clone(), actions.clone(), wake_timer.clone(), options.reconcile_every));
        let follower = {
            let store = store.clone();
            let actions = actions.clone();
            let wake_timer = wake_timer.clone();
            tokio::spawn(async move {
                loop {
                    let forward = |remote: Vec<Action>| {
                        for action in remote {
                            // No subscriber is not an error: nobody is watching yet.
                            let _ = actions.send(action);
                        }
                        wake_timer.notify_one();
                    };
                    match store.follow_other_nodes(forward).await {
                        Ok(()) => tracing::warn!("routing: the other nodes' channel closed; subscribing again"),
                        Err(error) => {
                            tracing::warn!(%error, "routing: following other nodes failed; subscribing again")
                        }
                    }
                    // Other nodes' offers made while this node was not listening are not pushed
                    // again; their leases run out and they are offered anew. The timer catches up.
                    wake_timer.notify_one();
                    tokio::time::sleep(RESUBSCRIBE_AFTER).await;
                }
            })
        };
        Router { store, actions, wake_timer, tasks: vec![timer, follower] }
    }

    /// Every action decided on this node or, with Redis, on any node: offers to push to an
    /// agent's browser, withdrawn items, agent states for the board.
    pub fn subscribe(&self) -> broadcast::Receiver<Action> {
        self.actions.subscribe()
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub async fn enqueue(&self, spec: NewWorkItem) -> Result<(WorkItemId, Vec<Action>), StoreError> {
        let (item, actions) = self.store.enqueue(Timestamp::now(), spec).await?;
        self.publish(&actions);
        Ok((item, actions))
    }

    pub async fn execute(&self, input: Input) -> Result<Vec<Action>, StoreError> {
        let actions = self.store.apply(Timestamp::now(), input).await?;
        self.publish(&actions);
        Ok(actions)
    }

    fn publish(&self, actions: &[Action]) {
        for action in actions {
            // No subscriber is not an error: nobody is watching yet.
            let _ = self.actions.send(action.clone());
        }
        // Any command may have moved the next deadline earlier.
        self.wake_timer.notify_one();
    }
}

impl<S: QueueStore> Drop for Router<S> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn run_timer<S: QueueStore>(
    store: Arc<S>,
    actions: broadcast::Sender<Action>,
    wake_timer: Arc<Notify>,
    reconcile_every: Duration,
) {
    loop {
        let now = Timestamp::now();
        let sleep_for = match store.next_deadline().await {
            Ok(Some(deadline)) if deadline <= now => match store.expire(now).await {
                Ok(expired) => {
                    for action in expired {
                        let _ = actions.send(action);
                    }
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "routing: expiring deadlines failed; retrying");
                    reconcile_every
                }
            },
            Ok(Some(deadline)) => deadline.since(now).min(reconcile_every),
            Ok(None) => reconcile_every,
            Err(error) => {
                tracing::warn!(%error, "routing: reading the next deadline failed; retrying");
                reconcile_every
            }
        };
        tokio::select! {
            () = tokio::time::sleep(sleep_for) => {}
            () = wake_timer.notified() => {}
        }
    }
}
