//! Calls loket places for an agent: the callback a waiting caller chose, once an agent accepts
//! its work item, and the agent's own calls (click-to-dial). The citizen's number is dialled
//! through the SIP trunk with a media session of loket's, bridged to the agent's browser
//! softphone when they answer; an agent without one has their registered phones rung first
//! (loket's own call to them, with a second media session), and the number is dialled once they
//! answer. The call ends on the timeline of its case or contact.
//!
//! An agent's own call is not routed work: the router sees the agent away (`outbound`) while it
//! lasts, so that it offers them nothing, and the desk puts them back afterwards.

use std::collections::hash_map::Entry;
use std::sync::Arc;

use loket_be::PhoneNumber;
use loket_crm::desk::{CallError, CallState, DialControl, DialFor, Dialled};
use loket_crm::records::callbacks;
use loket_crm::records::contacts::ContactId;
use loket_media::edge::{Session, WebRtcLeg};
use loket_routing::core::Input;
use loket_routing::model::{AgentId, Presence, WorkItemId};
use loket_sip::sdp::{self, Direction, LocalMedia};
use loket_sip::service::{CallCommand, Destination};
use tokio::sync::mpsc;

use super::case::{self, Draft};
use super::line::{Heard, Line, Signal};
use super::{Voice, lock};
use crate::work::WorkItems;

/// A caller's request to be called back, kept until an agent accepts its item (and in the
/// database until the call back is over, `records::callbacks`).
#[derive(Debug, Clone)]
pub(super) struct Callback {
    pub number: PhoneNumber,
    pub draft: Draft,
    /// The queue the item waits in, where it goes back should the agent's phone not answer.
    pub queue: String,
}

impl Callback {
    fn stored(&self, item: WorkItemId) -> callbacks::Callback {
        callbacks::Callback {
            item_id: item.0,
            number: self.number.e164().to_owned(),
            case_id: self.draft.case_id,
            contact_id: self.draft.contact_id.map(|id| id.0),
            queue: self.queue.clone(),
        }
    }

    fn of_stored(stored: callbacks::Callback) -> Option<Callback> {
        let number = PhoneNumber::parse(&stored.number).ok()?;
        let draft = Draft { case_id: stored.case_id, contact_id: stored.contact_id.map(ContactId) };
        Some(Callback { number, draft, queue: stored.queue })
    }
}

/// Why loket places a call, and what its end changes.
enum Purpose {
    /// The work item of a callback, accepted by the agent user `by`: the agent wraps up when
    /// the call ends.
    Callback { item: WorkItemId, draft: Draft, by: String, queue: String },
    /// The agent's own call; `restore`: their presence afterwards.
    Dial { on: DialFor, restore: Option<Presence> },
}

impl<W: WorkItems> Voice<W> {
    /// Keeps the callback the caller of `item` chose, until an agent calls them back.
    pub(super) async fn keep_callback(&self, item: WorkItemId, callback: Callback) {
        if let Err(error) = callbacks::keep(&self.parts.db, &callback.stored(item), self.now()).await {
            // Kept in memory all the same: only a restart would lose it.
            tracing::warn!(item = item.0, %error, "a callback was not stored");
        }
        lock(&self.callbacks).insert(item, callback);
    }

    /// The callbacks a previous run kept whose items the router still has; the others are over.
    pub(super) async fn restore_callbacks(&self) {
        let stored = match callbacks::all(&self.parts.db).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, "the stored callbacks could not be read");
                return;
            }
        };
        for stored in stored {
            let item = WorkItemId(stored.item_id);
            // Should the router not answer, the callback is kept rather than lost.
            match Callback::of_stored(stored) {
                Some(callback) if self.parts.work.has(item).await.unwrap_or(true) => {
                    lock(&self.callbacks).insert(item, callback);
                }
                _ => self.callback_over(item).await,
            }
        }
    }

    async fn callback_over(&self, item: WorkItemId) {
        if let Err(error) = callbacks::forget(&self.parts.db, item.0).await {
            tracing::warn!(item = item.0, %error, "a callback that is over stays stored");
        }
    }

    /// Calls back the caller of `item`, whose callback `agent` (the user `username`) accepted.
    pub(super) fn call_back(
        self: &Arc<Self>,
        item: WorkItemId,
        agent: AgentId,
        username: &str,
        callback: Callback,
    ) -> Result<(), CallError> {
        let Callback { number, draft, queue } = callback;
        self.place(agent, username, number, Purpose::Callback { item, draft, by: username.to_owned(), queue })
    }

    /// `agent` calls `number`, for the case or contact `on`; `restore` is the presence the
    /// router gets back when the call ends.
    pub fn dial(
        self: &Arc<Self>,
        agent: AgentId,
        number: PhoneNumber,
        on: DialFor,
        restore: Option<Presence>,
    ) -> Result<(), CallError> {
        let username = on.username.clone();
        self.place(agent, &username, number, Purpose::Dial { on, restore })
    }

    /// The call `agent` placed, while it lasts.
    pub fn dialled(&self, agent: AgentId) -> Option<Dialled> {
        lock(&self.dialled).get(&agent).map(|(_, dialled)| dialled.clone())
    }

    pub fn dial_control(&self, agent: AgentId, control: DialControl) -> Result<(), CallError> {
        let signal = match control {
            DialControl::HangUp => Signal::HangUp,
            DialControl::Hold(on) => Signal::Hold(on),
        };
        let call = lock(&self.dialled).get(&agent).and_then(|(call, _)| *call).ok_or(CallError::NoCallOfYours)?;
        self.signal_call(call, signal).map_err(|_| CallError::NoCallOfYours)
    }

    /// Places the call: the number at once from the agent's softphone, or first the phones of
    /// the agent user `username`.
    fn place(
        self: &Arc<Self>,
        agent: AgentId,
        username: &str,
        number: PhoneNumber,
        purpose: Purpose,
    ) -> Result<(), CallError> {
        let item = match &purpose {
            Purpose::Callback { item, .. } => Some(*item),
            Purpose::Dial { .. } => None,
        };
        if self.softphone_busy(agent, item) {
            return Err(CallError::SoftphoneBusy);
        }
        if let Purpose::Dial { on, .. } = &purpose {
            // Claimed before anything else, so that two clicks cannot both dial.
            match lock(&self.dialled).entry(agent) {
                Entry::Occupied(_) => return Err(CallError::SoftphoneBusy),
                Entry::Vacant(entry) => {
                    let number = number.e164().to_owned();
                    entry.insert((None, Dialled { number, case_id: on.case_id, call: CallState::Ringing }));
                }
            }
        }
        let first = match self.softphone_of(agent) {
            Some(softphone) => self.originate(&dialled(&number)).map(|line| {
                let call = line.call;
                (Side::Softphone(softphone), Some(line), call)
            }),
            None => self.originate(&Destination::Agent(username.to_owned())).map(|phone| {
                let call = phone.call;
                (Side::Phone(phone), None, call)
            }),
        };
        let (side, citizen, control) = match first {
            Ok(first) => first,
            Err(error) => {
                if let Purpose::Dial { .. } = purpose {
                    lock(&self.dialled).remove(&agent);
                }
                return Err(error);
            }
        };
        // The console's controls reach the call through the line placed first.
        match &purpose {
            Purpose::Callback { item, .. } => {
                lock(&self.items).insert(*item, control);
                self.set_state(*item, agent, CallState::Ringing);
            }
            Purpose::Dial { .. } => {
                if let Some((call, _)) = lock(&self.dialled).get_mut(&agent) {
                    *call = Some(control);
                }
                let _ = self.changes.send(agent);
            }
        }
        let reached = matches!(side, Side::Softphone(_));
        let call = Outbound { agent, side, number, purpose, reached };
        tokio::spawn(Arc::clone(self).outbound(call, citizen));
        Ok(())
    }

    /// Calls `to` with a media session of its own: the call's line, whose signals say how the
    /// call goes.
    pub(super) fn originate(&self, to: &Destination) -> Result<Line, CallError> {
        let Some(dialer) = self.dialer.get() else {
            return Err(CallError::CannotDial("the SIP service is not running".into()));
        };
        let media = self.parts.media.allocate().map_err(|error| CallError::CannotDial(error.to_string()))?;
        let call = dialer.ids.next();
        let address = media.sdp_address();
        let local = LocalMedia { address: address.ip(), port: address.port(), session_id: call.0 };
        let offer = sdp::offer(&local, 1, Direction::SendRecv);
        // Unbounded as for callers: the answer, a few controls, the end.
        let (signals, receiver) = mpsc::unbounded_channel();
        lock(&self.calls).insert(call, signals);
        let line = Line::new(call, media, dialer.commands.clone(), receiver);
        line.command(CallCommand::Originate { call, to: to.clone(), offer });
        Ok(line)
    }

    /// The end of a line [`Self::originate`] gave: its media goes, and its call leaves the calls
    /// that signals reach.
    pub(super) async fn let_go(&self, line: Line) {
        lock(&self.calls).remove(&line.call);
        line.media.close().await;
    }

    /// The call from the first ring to its end (the agent's phone first, for an agent without
    /// a softphone; `citizen`: the citizen's line when already placed), then its note on the
    /// timeline and, for a callback, the agent's wrap-up.
    async fn outbound(self: Arc<Self>, mut call: Outbound, citizen: Option<Line>) {
        let citizen = match citizen {
            Some(line) => Some(line),
            None => self.reach_agent(&mut call).await,
        };
        let talked = match citizen {
            Some(line) => self.reach_citizen(&mut call, line).await,
            None => None,
        };
        let Outbound { agent, side, number, purpose, reached: answered_by_agent } = call;
        if let Side::Phone(mut phone) = side {
            phone.hang_up();
            self.let_go(phone).await;
        }
        match purpose {
            Purpose::Callback { item, queue, draft, .. } if !answered_by_agent => {
                // Nobody called the citizen: the callback waits for the next agent.
                tracing::info!(item = item.0, "the agent's phone did not answer a callback");
                lock(&self.items).remove(&item);
                lock(&self.callbacks).insert(item, Callback { number, draft, queue: queue.clone() });
                self.not_answered(item, agent, &queue).await;
                lock(&self.states).remove(&item);
            }
            Purpose::Callback { item, .. } => {
                self.note_outbound(&number, talked, &purpose).await;
                self.callback_over(item).await;
                self.finished(item, agent).await;
                lock(&self.items).remove(&item);
                lock(&self.states).remove(&item);
            }
            Purpose::Dial { ref restore, .. } => {
                if answered_by_agent {
                    self.note_outbound(&number, talked, &purpose).await;
                }
                let restore = restore.clone();
                lock(&self.dialled).remove(&agent);
                if let Some(presence) = restore
                    && let Err(error) = self.parts.work.execute(Input::PresenceChanged { agent, presence }).await
                {
                    tracing::warn!(agent = agent.0, %error, "an agent's presence was not restored after their call");
                }
                let _ = self.changes.send(agent);
            }
        }
    }

    /// Rings the agent's phones until one answers: then the citizen's line, dialled. `None`
    /// when nobody answered, the console hung up, or the number could not be dialled.
    async fn reach_agent(&self, call: &mut Outbound) -> Option<Line> {
        let Side::Phone(phone) = &mut call.side else { return None };
        let answer = loop {
            match phone.next(None).await {
                Heard::Other(Signal::CalleeAnswered(sdp)) => break sdp,
                Heard::Other(Signal::CalleeFailed(status)) => {
                    tracing::info!(
                        agent = call.agent.0,
                        status,
                        "the agent's phone did not answer a call loket places"
                    );
                    phone.ended_by_service();
                    return None;
                }
                Heard::Other(Signal::HangUp) | Heard::HungUp => return None,
                _ => {}
            }
        };
        let remote = super::call::far_end(phone.call, &answer)?;
        phone.media.set_remote(remote).await.ok()?;
        call.reached = true;
        match self.originate(&dialled(&call.number)) {
            Ok(line) => Some(line),
            Err(error) => {
                tracing::warn!(agent = call.agent.0, %error, "a number could not be dialled for an agent's phone");
                None
            }
        }
    }

    /// Dials the citizen until they answer, then the conversation: how long it lasted, in
    /// seconds, or `None` when they did not answer.
    async fn reach_citizen(&self, call: &mut Outbound, mut line: Line) -> Option<u64> {
        let answer = loop {
            let heard = tokio::select! {
                heard = line.next(None) => heard,
                control = call.side.next() => Heard::Other(control.unwrap_or(Signal::HangUp)),
            };
            match heard {
                Heard::Other(Signal::CalleeAnswered(sdp)) => break Some(sdp),
                Heard::Other(Signal::CalleeFailed(status)) => {
                    tracing::info!(call = line.call.0, status, "a call loket placed was not answered");
                    line.ended_by_service();
                    break None;
                }
                Heard::Other(Signal::HangUp) | Heard::HungUp => {
                    line.hang_up();
                    break None;
                }
                _ => {}
            }
        };
        let bridged = match &answer {
            Some(answer) => self.answered(&line, call.side.media(), answer).await,
            None => false,
        };
        let talked = if bridged { Some(self.converse(&mut line, call).await) } else { None };
        if answer.is_some() && !bridged {
            line.hang_up();
        }
        self.let_go(line).await;
        talked
    }

    /// The citizen answered: their session gets the far end and is bridged to the agent's side.
    async fn answered(&self, line: &Line, agent_media: &Session, answer: &str) -> bool {
        let Some(remote) = super::call::far_end(line.call, answer) else { return false };
        line.media.set_remote(remote).await.is_ok() && line.media.bridge(agent_media).await.is_ok()
    }

    /// Agent and citizen talk until either hangs up or the agent's side goes; how long, in
    /// seconds.
    async fn converse(&self, line: &mut Line, call: &mut Outbound) -> u64 {
        let since = self.now().0;
        self.show_outbound(call.agent, &call.purpose, CallState::Connected { since });
        loop {
            let heard = tokio::select! {
                heard = line.next(None) => heard,
                control = call.side.next() => Heard::Other(control.unwrap_or(Signal::HangUp)),
            };
            match heard {
                Heard::Other(Signal::Hold(on)) => {
                    let done =
                        if on { line.media.hold(self.parts.prompts.music()).await } else { line.media.resume().await };
                    if done.is_ok() {
                        let state = if on { CallState::Held { since } } else { CallState::Connected { since } };
                        self.show_outbound(call.agent, &call.purpose, state);
                    }
                }
                Heard::Other(Signal::SendDigit(digit)) => line.send_digit(digit).await,
                Heard::Other(Signal::HangUp) => {
                    line.hang_up();
                    break;
                }
                Heard::HungUp => break,
                _ => {}
            }
        }
        let _ = line.media.unbridge(call.side.media()).await;
        u64::try_from(self.now().0 - since).unwrap_or(0) / 1_000
    }

    fn show_outbound(&self, agent: AgentId, purpose: &Purpose, state: CallState) {
        match purpose {
            Purpose::Callback { item, .. } => self.set_state(*item, agent, state),
            Purpose::Dial { .. } => {
                if let Some((_, dialled)) = lock(&self.dialled).get_mut(&agent) {
                    dialled.call = state;
                }
                let _ = self.changes.send(agent);
            }
        }
    }

    /// The call on the timeline of its case, else of the contact it was made to.
    async fn note_outbound(&self, number: &PhoneNumber, talked: Option<u64>, purpose: &Purpose) {
        let (case_id, contact_id, by) = match purpose {
            Purpose::Callback { draft, by, .. } => (Some(draft.case_id), draft.contact_id.map(|id| id.0), by),
            Purpose::Dial { on, .. } => (on.case_id, on.contact_id, &on.by),
        };
        let noted = case::call_out(&self.parts.db, case_id, contact_id, by, number, talked, self.now()).await;
        if let Err(error) = noted {
            tracing::warn!(case = ?case_id, %error, "a call loket placed was not noted on the timeline");
        }
    }
}

/// A number as the SIP service dials it, through the trunk.
pub(super) fn dialled(number: &PhoneNumber) -> Destination {
    Destination::Number(number.e164().to_owned())
}

/// A call loket places for an agent.
struct Outbound {
    agent: AgentId,
    side: Side,
    /// The citizen's.
    number: PhoneNumber,
    purpose: Purpose,
    /// The agent is on the call: on their softphone, or on a phone that answered.
    reached: bool,
}

/// The agent's side of a call loket places for them.
enum Side {
    /// Their browser softphone, which outlives the call.
    Softphone(Arc<WebRtcLeg>),
    /// Their phones, rung by loket's own call to them, whose line the console's controls reach.
    Phone(Line),
}

impl Side {
    fn media(&self) -> &Session {
        match self {
            Side::Softphone(softphone) => softphone.session(),
            Side::Phone(phone) => &phone.media,
        }
    }

    /// The next control of the console that reached this side (a phone's line carries them),
    /// or `None` once the side is gone: the browser closed, or the phone hung up.
    async fn next(&mut self) -> Option<Signal> {
        match self {
            Side::Softphone(softphone) => {
                softphone.ended().await;
                None
            }
            Side::Phone(phone) => loop {
                match phone.next(None).await {
                    Heard::HungUp => return None,
                    Heard::Other(signal @ (Signal::HangUp | Signal::Hold(_) | Signal::SendDigit(_))) => {
                        return Some(signal);
                    }
                    _ => {}
                }
            },
        }
    }
}
