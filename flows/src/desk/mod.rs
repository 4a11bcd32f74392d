//! The console's desk (`loket_crm::desk::Desk`) over the router and the voice flows: what an
//! agent does in the workspace goes to the router, and to the call when the work is a call.

mod today;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use loket_be::PhoneNumber;
use loket_crm::desk::{
    CallError, CallState, Coaching, ConsultStep, Consultation, Desk, DeskFuture, DialControl, DialFor, Dialled,
    SoftphoneError, TransferTarget,
};
use loket_routing::core::{Action, AgentRecord, Input, WorkItem};
use loket_routing::engine::Router;
use loket_routing::error::StoreError;
use loket_routing::event::RoutingEvent;
use loket_routing::model::{AgentId, Presence, QueueId, ServiceLevelTarget, Timestamp, WorkItemId};
use loket_routing::store::{EventCursor, QueueStore};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::voice::Voice;
use today::Today;

/// How often the desk reads the router's event log for today's figures: the board shows a
/// change within a second, this and its own debounce included.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// Events read from the log at a time.
const READ_BATCH: usize = 1_000;
/// The away reason of an agent on a call they placed, while the router offers them nothing.
pub const OUTBOUND: &str = "outbound";

pub struct RouterDesk<S: QueueStore> {
    router: Arc<Router<S>>,
    voice: Arc<Voice<Router<S>>>,
    changes: broadcast::Sender<AgentId>,
    /// Each queue's service-level target, as the router was configured.
    targets: HashMap<QueueId, ServiceLevelTarget>,
    today: Arc<Mutex<Today>>,
    logged: broadcast::Sender<()>,
}

impl<S: QueueStore> RouterDesk<S> {
    /// The desk, and its tasks: one tells it which agents the router's decisions concern, one
    /// follows the event log for today's figures.
    pub fn start(
        router: Arc<Router<S>>,
        voice: Arc<Voice<Router<S>>>,
        targets: HashMap<QueueId, ServiceLevelTarget>,
    ) -> (RouterDesk<S>, Vec<JoinHandle<()>>) {
        let today = Arc::new(Mutex::new(Today::default()));
        let (logged, _) = broadcast::channel(16);
        let follower = tokio::spawn(follow_events(Arc::clone(&router), Arc::clone(&today), logged.clone()));
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
        (RouterDesk { router, voice, changes, targets, today, logged }, vec![task, follower])
    }
}

/// Reads the event log into `today`, from a day ago, then as it grows, and says when it grew.
async fn follow_events<S: QueueStore>(router: Arc<Router<S>>, today: Arc<Mutex<Today>>, logged: broadcast::Sender<()>) {
    // Brussels' day began at most 25 hours ago; an hour more for the nodes' clocks.
    let day_ago = Timestamp(Timestamp::now().0 - 26 * 3_600_000);
    let mut cursor = match router.store().cursor_at(day_ago).await {
        Ok(cursor) => cursor,
        Err(error) => {
            tracing::warn!(%error, "the desk reads the event log from its start");
            EventCursor::default()
        }
    };
    let mut ticks = tokio::time::interval(FOLLOW_EVERY);
    loop {
        ticks.tick().await;
        loop {
            match router.store().read_events(cursor.clone(), READ_BATCH).await {
                Ok((events, next)) => {
                    let full = events.len() == READ_BATCH;
                    if !events.is_empty() {
                        // Nobody listening is fine: no board is open.
                        let _ = logged.send(());
                    }
                    lock(&today).add(Timestamp::now(), events);
                    cursor = next;
                    if !full {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the desk could not read the event log; the board's figures wait");
                    break;
                }
            }
        }
    }
}

/// Today holds whole events only: a panic elsewhere leaves it consistent.
fn lock(today: &Mutex<Today>) -> std::sync::MutexGuard<'_, Today> {
    today.lock().unwrap_or_else(PoisonError::into_inner)
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

    fn logged(&self) -> broadcast::Receiver<()> {
        self.logged.subscribe()
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

    fn consult(&self, item: WorkItemId, step: ConsultStep) -> Result<(), CallError> {
        self.voice.consult(item, step)
    }

    fn consultation(&self, agent: AgentId) -> Option<Consultation> {
        self.voice.consultation(agent)
    }

    fn consulted(&self, item: WorkItemId) -> Option<AgentId> {
        self.voice.consulted(item)
    }

    fn answer_consultation(&self, agent: AgentId, answer: bool) -> Result<(), CallError> {
        self.voice.answer_consultation(agent, answer)
    }

    fn call_state(&self, item: WorkItemId) -> Option<CallState> {
        self.voice.call_state(item)
    }

    fn callback(&self, item: WorkItemId) -> Option<String> {
        self.voice.callback(item)
    }

    fn dial<'a>(&'a self, agent: AgentId, number: PhoneNumber, on: DialFor) -> DeskFuture<'a, Result<(), CallError>> {
        Box::pin(async move {
            let router = |error: StoreError| CallError::Router(error.to_string());
            let record = self.router.store().agent(agent).await.map_err(router)?;
            if record.as_ref().and_then(AgentRecord::offered_item).is_some() {
                return Err(CallError::OfferPending);
            }
            // Away while the call lasts, so that nothing is offered; back afterwards.
            let restore = match record.map(|record| record.presence) {
                Some(Presence::Available) => {
                    let away = Presence::Away { reason: OUTBOUND.to_owned() };
                    self.router.execute(Input::PresenceChanged { agent, presence: away }).await.map_err(router)?;
                    Some(Presence::Available)
                }
                _ => None,
            };
            let placed = self.voice.dial(agent, number, on, restore.clone());
            if let (Err(_), Some(presence)) = (&placed, restore) {
                self.router.execute(Input::PresenceChanged { agent, presence }).await.map_err(router)?;
            }
            placed
        })
    }

    fn dialled(&self, agent: AgentId) -> Option<Dialled> {
        self.voice.dialled(agent)
    }

    fn dial_control(&self, agent: AgentId, control: DialControl) -> Result<(), CallError> {
        self.voice.dial_control(agent, control)
    }

    fn send_digit(&self, agent: AgentId, digit: char) -> Result<(), CallError> {
        self.voice.send_digit(agent, digit)
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

    fn today(&self) -> Vec<RoutingEvent> {
        lock(&self.today).events(Timestamp::now())
    }

    fn service_level_target(&self, queue: &QueueId) -> Option<ServiceLevelTarget> {
        self.targets.get(queue).cloned()
    }
}
