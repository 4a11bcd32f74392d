//! Voice: the calls the SIP service hands to the application (numbers with the target `ivr`).
//! Each call gets a task of its own: a media session answers the caller's offer, the number's IVR
//! flow runs on the caller's digits ([`loket_ivr::Session`]), and a call that ends in a queue
//! becomes a case draft and a work item before the caller starts waiting, so that an abandoned
//! call still leaves a case. While waiting the caller hears music, their place and the expected
//! wait, and a callback offer ([`loket_ivr::Waiting`]). When an agent accepts the item, the
//! call is bridged to the agent's browser softphone when one is connected ([`Voice::softphone`]),
//! and otherwise loket rings the agent's phones with a second media session and bridges the two:
//! loket anchors the audio of every call.
//!
//! [`Voice::run`] reads the service's events and passes each call's later events (digits by
//! INFO, the agent's phone, the end) to that call's task; [`Voice::connect`] and
//! [`Voice::hang_up`] reach a call by its work item.

mod call;
mod case;
mod coach;
mod consult;
mod line;
mod outbound;
mod prompts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use loket_crm::clock::Clock;
use loket_crm::db::Db;
use loket_crm::desk::{CallError, CallState, Coaching, Consultation, Dialled, TransferTarget};
use loket_crm::register::NationalRegister;
use loket_ivr::Ivr;
use loket_media::edge::{MediaEngine, WebRtcError, WebRtcLeg};
use loket_routing::model::{AgentId, WorkItemId};
use loket_sip::call::LegId;
use loket_sip::service::CallCommand;
use loket_sip::service::CallEvent;
use loket_sip::service::application::{ApplicationEnds, CallIds};
use tokio::sync::{broadcast, mpsc};

pub use consult::CONSULTED;
pub use prompts::{Prompts, PromptsError};

use crate::work::WorkItems;
use call::Incoming;
use line::Signal;
use outbound::Callback;

/// What the calls need, shared by their tasks.
pub struct Parts<W> {
    pub db: Db,
    pub ivr: Arc<Ivr>,
    pub prompts: Arc<Prompts>,
    pub media: MediaEngine,
    pub register: Arc<dyn NationalRegister>,
    pub work: Arc<W>,
    /// Queue code → service code, from the CRM's directory: the service of a case whose IVR set
    /// none.
    pub queue_services: HashMap<String, String>,
    /// The time an agent spends per caller ahead, for the expected wait that callers hear.
    pub handle_time: Duration,
    /// The queues whose calls are recorded once an agent has them.
    pub record_queues: std::collections::HashSet<String>,
    /// Where recordings are written while a call lasts, before they join their case.
    pub recordings: std::path::PathBuf,
    /// Where the case's documents live.
    pub documents: Arc<dyn loket_crm::records::documents::DocumentStore>,
}

pub struct Voice<W> {
    parts: Parts<W>,
    /// Each live call's signals.
    calls: Mutex<HashMap<LegId, mpsc::UnboundedSender<Signal>>>,
    /// The calls waiting in or taken from a queue, by their work item.
    items: Mutex<HashMap<WorkItemId, LegId>>,
    /// Where the call of an item stands, and for which agent.
    states: Mutex<HashMap<WorkItemId, (AgentId, CallState)>>,
    /// Agents whose calls changed (the console shows it).
    changes: broadcast::Sender<AgentId>,
    /// Who coaches which call, and how, as the call's task applied it.
    coaching: Mutex<HashMap<WorkItemId, (AgentId, Coaching)>>,
    /// The agents' browser softphones, while connected.
    softphones: Arc<Mutex<HashMap<AgentId, Arc<WebRtcLeg>>>>,
    /// How calls are placed, once [`Voice::run`] serves the SIP service.
    dialer: OnceLock<Dialer>,
    /// The items of callers who chose a callback, until an agent accepts one.
    callbacks: Mutex<HashMap<WorkItemId, Callback>>,
    /// The calls agents placed themselves, by agent (their id once placed).
    dialled: Mutex<HashMap<AgentId, (Option<LegId>, Dialled)>>,
    /// The consultations that ring, or go on, for colleagues, by the colleague.
    consultations: Mutex<HashMap<AgentId, Consultation>>,
}

/// The SIP service's side for calls loket places: their commands, and their ids.
struct Dialer {
    commands: mpsc::UnboundedSender<CallCommand>,
    ids: CallIds,
}

/// The maps hold ids only: consistent after every insert and remove, so a panic elsewhere
/// cannot leave them half-written.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<W: WorkItems> Voice<W> {
    pub fn new(parts: Parts<W>) -> Voice<W> {
        Voice {
            parts,
            calls: Mutex::default(),
            items: Mutex::default(),
            states: Mutex::default(),
            // Consoles that lag re-read their whole state; 1,024 covers bursts.
            changes: broadcast::channel(1_024).0,
            coaching: Mutex::default(),
            softphones: Arc::default(),
            dialer: OnceLock::new(),
            callbacks: Mutex::default(),
            dialled: Mutex::default(),
            consultations: Mutex::default(),
        }
    }

    /// The agents whose calls changed.
    pub fn changes(&self) -> broadcast::Sender<AgentId> {
        self.changes.clone()
    }

    /// Serves the calls until the SIP service stops.
    pub async fn run(self: Arc<Self>, mut ends: ApplicationEnds) {
        let dialer = Dialer { commands: ends.commands.clone(), ids: ends.ids.clone() };
        if self.dialer.set(dialer).is_err() {
            tracing::error!("the voice flows serve one SIP service only");
            return;
        }
        self.restore_callbacks().await;
        while let Some(event) = ends.events.recv().await {
            let (call, signal) = match event {
                CallEvent::Incoming { call, dialled, caller, offer } => {
                    // Unbounded: a call's signals are a few digits, its agent's phone and its end.
                    let (signals, receiver) = mpsc::unbounded_channel();
                    lock(&self.calls).insert(call, signals);
                    let incoming = Incoming { call, dialled, caller, offer };
                    tokio::spawn(Arc::clone(&self).handle(incoming, ends.commands.clone(), receiver));
                    continue;
                }
                CallEvent::Digit { call, digit } => (call, Signal::Digit(digit)),
                CallEvent::Ended { call } => (call, Signal::Ended),
                CallEvent::CalleeRinging { call } => (call, Signal::CalleeRinging),
                CallEvent::CalleeAnswered { call, sdp } => (call, Signal::CalleeAnswered(sdp)),
                CallEvent::CalleeFailed { call, status } => (call, Signal::CalleeFailed(status)),
                CallEvent::CalleeHungUp { call } => (call, Signal::CalleeHungUp),
            };
            let mut calls = lock(&self.calls);
            let sent = calls.get(&call).is_some_and(|signals| signals.send(signal.clone()).is_ok());
            if signal == Signal::Ended || !sent {
                calls.remove(&call);
            }
        }
    }

    /// Puts the caller of `item` through to `agent`'s phones, or calls back the caller who
    /// chose a callback.
    pub fn connect(self: &Arc<Self>, item: WorkItemId, agent: AgentId, username: &str) -> Result<(), CallError> {
        let callback = lock(&self.callbacks).remove(&item);
        match callback {
            Some(callback) => self.call_back(item, agent, username, callback.clone()).inspect_err(|_| {
                lock(&self.callbacks).insert(item, callback);
            }),
            None => self.signal(item, Signal::Connect { agent, username: username.to_owned() }),
        }
    }

    /// The number a callback item calls.
    pub fn callback(&self, item: WorkItemId) -> Option<String> {
        lock(&self.callbacks).get(&item).map(|callback| callback.number.e164().to_owned())
    }

    /// Sends a keypad digit to the other party of `agent`'s call: the one they placed, else the
    /// caller they talk to.
    pub fn send_digit(&self, agent: AgentId, digit: char) -> Result<(), CallError> {
        if let Some(call) = lock(&self.dialled).get(&agent).and_then(|(call, _)| *call) {
            return self.signal_call(call, Signal::SendDigit(digit)).map_err(|_| CallError::NoCallOfYours);
        }
        let talking = lock(&self.states)
            .iter()
            .find(|(_, (holder, state))| *holder == agent && (state.is_talking() || state.is_consulting()))
            .map(|(item, _)| *item)
            .ok_or(CallError::NoCallOfYours)?;
        self.signal(talking, Signal::SendDigit(digit))
    }

    pub fn hang_up(&self, item: WorkItemId) -> Result<(), CallError> {
        self.signal(item, Signal::HangUp)
    }

    pub fn transfer(&self, item: WorkItemId, to: TransferTarget) -> Result<(), CallError> {
        self.signal(item, Signal::Transfer(to))
    }

    pub fn hold(&self, item: WorkItemId, on: bool) -> Result<(), CallError> {
        self.signal(item, Signal::Hold(on))
    }

    pub fn call_state(&self, item: WorkItemId) -> Option<CallState> {
        lock(&self.states).get(&item).map(|(_, state)| *state)
    }

    /// Connects `agent`'s browser softphone from its SDP offer; loket's answer comes back. A
    /// softphone the agent had is ended: a call on it moves to the new one.
    pub async fn softphone(&self, agent: AgentId, offer: &str) -> Result<String, WebRtcError> {
        let (leg, answer) = self.parts.media.accept_webrtc(offer).await?;
        let leg = Arc::new(leg);
        if let Some(old) = lock(&self.softphones).insert(agent, Arc::clone(&leg)) {
            old.end();
        }
        let _ = self.changes.send(agent);
        // The softphone leaves the map when its browser goes, unless a newer one took its place.
        let (softphones, changes) = (Arc::clone(&self.softphones), self.changes.clone());
        tokio::spawn(async move {
            leg.ended().await;
            let mut map = lock(&softphones);
            if map.get(&agent).is_some_and(|current| Arc::ptr_eq(current, &leg)) {
                map.remove(&agent);
                drop(map);
                let _ = changes.send(agent);
            }
        });
        Ok(answer)
    }

    /// `supervisor` coaches the call of `item` in `mode` through their softphone, or leaves it.
    pub fn coach(&self, item: WorkItemId, supervisor: AgentId, mode: Option<Coaching>) -> Result<(), CallError> {
        if !self.call_state(item).is_some_and(CallState::is_talking) {
            return Err(CallError::NotTalking(item.0 as i64));
        }
        // Refused here rather than ignored by the call, so that the board writes nothing false
        // on the audit log and the timeline.
        match (self.coaching(item), mode) {
            (Some((coach, _)), _) if coach != supervisor => return Err(CallError::CoachedByAnother),
            (None, None) => return Err(CallError::NotCoaching),
            _ => {}
        }
        if mode.is_some() && self.softphone_of(supervisor).is_none() {
            return Err(CallError::NoSoftphone);
        }
        if mode.is_some() && self.softphone_busy(supervisor, Some(item)) {
            return Err(CallError::SoftphoneBusy);
        }
        self.signal(item, Signal::Coach { supervisor, mode })
    }

    /// The agent's one softphone carries a call other than that of `item`: their own, one
    /// they placed, one they coach, or a colleague's consultation.
    fn softphone_busy(&self, agent: AgentId, item: Option<WorkItemId>) -> bool {
        let other = |other: &WorkItemId| Some(*other) != item;
        let coaches_another = lock(&self.coaching).iter().any(|(item, (coach, _))| *coach == agent && other(item));
        coaches_another
            || lock(&self.dialled).contains_key(&agent)
            || lock(&self.consultations).contains_key(&agent)
            || lock(&self.states).iter().any(|(item, (holder, state))| {
                *holder == agent
                    && other(item)
                    && matches!(
                        state,
                        CallState::Ringing
                            | CallState::Connected { .. }
                            | CallState::Held { .. }
                            | CallState::Consulting { .. }
                    )
            })
    }

    pub fn coaching(&self, item: WorkItemId) -> Option<(AgentId, Coaching)> {
        lock(&self.coaching).get(&item).copied()
    }

    pub fn has_softphone(&self, agent: AgentId) -> bool {
        self.softphone_of(agent).is_some()
    }

    /// The agent's connected softphone.
    fn softphone_of(&self, agent: AgentId) -> Option<Arc<WebRtcLeg>> {
        lock(&self.softphones).get(&agent).filter(|leg| !leg.is_ended()).cloned()
    }

    fn signal(&self, item: WorkItemId, signal: Signal) -> Result<(), CallError> {
        let call = lock(&self.items).get(&item).copied().ok_or(CallError::NoCall(item.0 as i64))?;
        self.signal_call(call, signal).map_err(|()| CallError::NoCall(item.0 as i64))
    }

    fn signal_call(&self, call: LegId, signal: Signal) -> Result<(), ()> {
        let calls = lock(&self.calls);
        let sent = calls.get(&call).is_some_and(|signals| signals.send(signal).is_ok());
        if sent { Ok(()) } else { Err(()) }
    }

    fn set_state(&self, item: WorkItemId, agent: AgentId, state: CallState) {
        lock(&self.states).insert(item, (agent, state));
        // Nobody listening is fine: no console is open.
        let _ = self.changes.send(agent);
    }

    fn now(&self) -> loket_crm::clock::Millis {
        Clock::System.now()
    }
}
