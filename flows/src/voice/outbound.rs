//! Calls loket places for an agent, from the agent's browser softphone: the callback a waiting
//! caller chose, once an agent accepts its work item, and the agent's own calls (click-to-dial).
//! The citizen's number is dialled through the SIP trunk with a media session of loket's, bridged
//! to the softphone when they answer; the call ends on the timeline of its case or contact.
//!
//! An agent's own call is not routed work: the router sees the agent away (`outbound`) while it
//! lasts, so that it offers them nothing, and the desk puts them back afterwards.

use std::collections::hash_map::Entry;
use std::sync::Arc;

use loket_be::PhoneNumber;
use loket_crm::desk::{CallError, CallState, DialControl, DialFor, Dialled};
use loket_media::edge::WebRtcLeg;
use loket_routing::core::Input;
use loket_routing::model::{AgentId, Presence, WorkItemId};
use loket_sip::sdp::{self, Direction, LocalMedia};
use loket_sip::service::{CallCommand, Destination};
use tokio::sync::mpsc;

use super::case::{self, Draft};
use super::line::{Heard, Line, Signal};
use super::{Voice, lock};
use crate::work::WorkItems;

/// A caller's request to be called back, kept until an agent accepts its item.
#[derive(Debug, Clone)]
pub(super) struct Callback {
    pub number: PhoneNumber,
    pub draft: Draft,
}

/// Why loket places a call, and what its end changes.
enum Purpose {
    /// The work item of a callback, accepted by the agent user `by`: the agent wraps up when
    /// the call ends.
    Callback { item: WorkItemId, draft: Draft, by: String },
    /// The agent's own call; `restore`: their presence afterwards.
    Dial { on: DialFor, restore: Option<Presence> },
}

impl<W: WorkItems> Voice<W> {
    /// Calls back the caller of `item`, whose callback `agent` (the user `username`) accepted.
    pub(super) fn call_back(
        self: &Arc<Self>,
        item: WorkItemId,
        agent: AgentId,
        username: &str,
        callback: Callback,
    ) -> Result<(), CallError> {
        let Callback { number, draft } = callback;
        self.place(agent, number, Purpose::Callback { item, draft, by: username.to_owned() })
    }

    /// `agent` calls `number` from their softphone, for the case or contact `on`; `restore` is
    /// the presence the router gets back when the call ends.
    pub fn dial(
        self: &Arc<Self>,
        agent: AgentId,
        number: PhoneNumber,
        on: DialFor,
        restore: Option<Presence>,
    ) -> Result<(), CallError> {
        self.place(agent, number, Purpose::Dial { on, restore })
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

    fn place(self: &Arc<Self>, agent: AgentId, number: PhoneNumber, purpose: Purpose) -> Result<(), CallError> {
        let softphone = self.softphone_of(agent).ok_or(CallError::NoSoftphone)?;
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
        let line = match self.originate(&number) {
            Ok(line) => line,
            Err(error) => {
                if let Purpose::Dial { .. } = purpose {
                    lock(&self.dialled).remove(&agent);
                }
                return Err(error);
            }
        };
        match &purpose {
            Purpose::Callback { item, .. } => {
                lock(&self.items).insert(*item, line.call);
                self.set_state(*item, agent, CallState::Ringing);
            }
            Purpose::Dial { .. } => {
                if let Some((call, _)) = lock(&self.dialled).get_mut(&agent) {
                    *call = Some(line.call);
                }
                let _ = self.changes.send(agent);
            }
        }
        tokio::spawn(Arc::clone(self).outbound(line, agent, softphone, number, purpose));
        Ok(())
    }

    /// Dials `number` through the trunk with a media session of its own: the call's line, whose
    /// signals say how the call goes.
    pub(super) fn originate(&self, number: &PhoneNumber) -> Result<Line, CallError> {
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
        line.command(CallCommand::Originate { call, to: Destination::Number(number.e164().to_owned()), offer });
        Ok(line)
    }

    /// The end of a line [`Self::originate`] gave: its media goes, and its call leaves the calls
    /// that signals reach.
    pub(super) async fn let_go(&self, line: Line) {
        lock(&self.calls).remove(&line.call);
        line.media.close().await;
    }

    /// The call from the first ring to its end, then its note on the timeline and, for a
    /// callback, the agent's wrap-up.
    async fn outbound(
        self: Arc<Self>,
        mut line: Line,
        agent: AgentId,
        softphone: Arc<WebRtcLeg>,
        number: PhoneNumber,
        purpose: Purpose,
    ) {
        let answer = loop {
            let heard = tokio::select! {
                heard = line.next(None) => heard,
                () = softphone.ended() => Heard::Other(Signal::HangUp),
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
            Some(answer) => self.answered(&line, &softphone, answer).await,
            None => false,
        };
        let talked = if bridged { Some(self.converse(&mut line, agent, &softphone, &purpose).await) } else { None };
        if answer.is_some() && !bridged {
            line.hang_up();
        }
        self.let_go(line).await;
        self.note_outbound(&number, talked, &purpose).await;
        match purpose {
            Purpose::Callback { item, .. } => {
                self.finished(item, agent).await;
                lock(&self.items).remove(&item);
                lock(&self.states).remove(&item);
            }
            Purpose::Dial { restore, .. } => {
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

    /// The citizen answered: their session gets the far end and is bridged to the softphone.
    async fn answered(&self, line: &Line, softphone: &WebRtcLeg, answer: &str) -> bool {
        let Some(remote) = super::call::far_end(line.call, answer) else { return false };
        line.media.set_remote(remote).await.is_ok() && line.media.bridge(softphone.session()).await.is_ok()
    }

    /// Agent and citizen talk until either hangs up or the browser goes; how long, in seconds.
    async fn converse(&self, line: &mut Line, agent: AgentId, softphone: &WebRtcLeg, purpose: &Purpose) -> u64 {
        let since = self.now().0;
        self.show_outbound(agent, purpose, CallState::Connected { since });
        loop {
            let heard = tokio::select! {
                heard = line.next(None) => heard,
                () = softphone.ended() => Heard::Other(Signal::HangUp),
            };
            match heard {
                Heard::Other(Signal::Hold(on)) => {
                    let done =
                        if on { line.media.hold(self.parts.prompts.music()).await } else { line.media.resume().await };
                    if done.is_ok() {
                        let state = if on { CallState::Held { since } } else { CallState::Connected { since } };
                        self.show_outbound(agent, purpose, state);
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
        let _ = line.media.unbridge(softphone.session()).await;
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
