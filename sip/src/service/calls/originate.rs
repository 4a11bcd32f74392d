//! The application's calls of its own ([`CallCommand::Originate`](crate::service::CallCommand::Originate)):
//! admitted under the id it drew, then dialled to a number through the trunk ([`super::trunk`])
//! or rung on every registered phone of an agent, which this module does.
//!
//! The phones are forked as [`CallCommand::DialAgent`](crate::service::CallCommand::DialAgent)
//! forks them for a caller, by the same [`Bridge`](crate::call::bridge::Bridge), placed under the
//! call's id; but there is no caller, so the bridge's inbound side has no leg: the application
//! stands for it, and hears what the bridge would tell it as `Callee…` events. The first phone to
//! answer takes the call's id and leaves the bridge, which leaves its other phones to end by
//! themselves: from then on the call is one leg of the application's with no bridge, as an
//! answered call to a number is, and the same code carries it to its end.

use std::collections::VecDeque;
use std::time::Instant;

use super::{Action, Call, Callee, Calls, EndReason, Event, LegId, Origination, Placement, SessionDescription};
use crate::registrar::LocationStore;
use crate::service::application::{CallEvent, Destination};
use crate::service::{CredentialStore, Service};

/// An originated call that has no leg under its id (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Originating {
    /// Its trunk's next hop or its agent's phones are being looked up; the application's offer
    /// waits for the legs.
    LookingUp(String),
    /// Its agent's phones ring, in the bridge under its id.
    Ringing,
}

impl Calls {
    /// Whether the application is the inbound side of the bridge under `inbound`: one of its
    /// calls, or its own call to an agent's phones, which has no leg until one answers.
    pub(super) fn is_application(&self, inbound: LegId) -> bool {
        self.calls.get(&inbound).is_some_and(|call| call.application) || self.rings_phones(inbound)
    }

    /// Whether `call` is the application's own call to an agent's phones, none of which has
    /// answered.
    pub(super) fn rings_phones(&self, call: LegId) -> bool {
        self.originating.get(&call) == Some(&Originating::Ringing)
    }

    /// Moves leg `from` to the id `to`, where requests within its dialog and responses to its
    /// requests find it. The wheel's entry, under the old id, goes stale, and so does the pure
    /// leg's own id, which the edge does not read.
    fn rename(&mut self, from: LegId, to: LegId) -> Option<&mut Call> {
        let mut call = self.calls.remove(&from)?;
        self.dialogs.insert((call.dialog.call_id.clone(), call.dialog.local_tag.clone()), to);
        // A walk over loket's transactions, once per answer of such a call: a leg just answered
        // has its INVITE's, whose retransmitted 2xx it ACKs.
        for (leg, _) in self.requests.values_mut().filter(|(leg, _)| *leg == from) {
            *leg = to;
        }
        call.scheduled = None;
        Some(self.calls.entry(to).insert_entry(call).into_mut())
    }
}

impl<C: CredentialStore, L: LocationStore> Service<C, L> {
    /// Places the application's own call `call` to `to` with `offer`.
    pub(super) fn originate(&mut self, call: LegId, to: Destination, offer: String) {
        match to {
            Destination::Number(number) => self.dial_number(call, number, offer, true),
            Destination::Agent(user) => {
                if self.may_originate(call) {
                    self.calls.originating.insert(call, Originating::LookingUp(offer));
                    self.look_up_agent(call, &user, true);
                }
            }
        }
    }

    /// Whether the application may originate a call under `id`: an id of its own (else nothing is
    /// reported: one not drawn from `CallIds` would take over another call's state), and room
    /// for one more call (else 503).
    pub(super) fn may_originate(&mut self, id: LegId) -> bool {
        if self.calls.calls.contains_key(&id) || self.calls.originating.contains_key(&id) {
            tracing::warn!(call = id.0, "an originated call must have an id of its own");
            return false;
        }
        if self.calls.is_full() {
            tracing::warn!(max_calls = self.calls.settings.max_calls, "too many calls to originate one");
            self.calls.report(CallEvent::CalleeFailed { call: id, status: 503 });
            return false;
        }
        true
    }

    /// The application hung up its call `id` before it had a leg: it is never placed if its
    /// lookup is under way (the result finds it gone), and its agent's phones are cancelled if
    /// they ring. Nothing is reported: the application knows.
    pub(super) fn hang_up_unplaced(&mut self, id: LegId) {
        let now = Instant::now();
        for (leg, event) in self.leave_unplaced(id) {
            self.feed_call(now, leg, event);
        }
    }

    /// Forgets the application's own call `call`, which has no leg; when its agent's phones ring,
    /// its bridge learns that the inbound side is gone and returns the events that abandon
    /// them (CANCEL, or BYE for one that answered without SDP), and says nothing more.
    fn leave_unplaced(&mut self, call: LegId) -> Vec<(LegId, Event)> {
        if self.calls.originating.remove(&call) != Some(Originating::Ringing) {
            return Vec::new();
        }
        let bridge = self.calls.bridges.get_mut(&call);
        bridge.map(|bridge| bridge.on_action(call, &Action::Ended(EndReason::LocalHangup))).unwrap_or_default()
    }

    /// The agent's phones for the application's own call `call` are known: each rings with the
    /// application's offer, from loket; none registered: 480.
    pub(super) fn ring_phones(&mut self, call: LegId, targets: Vec<Callee>) {
        // Hung up while its phones were looked up: it is not placed.
        let Some(Originating::LookingUp(offer)) = self.calls.originating.remove(&call) else { return };
        if targets.is_empty() {
            self.calls.report(CallEvent::CalleeFailed { call, status: 480 });
            return;
        }
        // Before the legs are placed: one may fail at once, which the bridge tells its inbound side.
        self.calls.originating.insert(call, Originating::Ringing);
        let placement = Placement::direct(self.loket_from());
        self.couple(Instant::now(), call, targets, &placement, Some(SessionDescription(offer)), true);
    }

    /// What the bridge of the application's own call `call` to an agent's phones tells its inbound
    /// side, which has no leg, because the phone's leg `from` acted; events for the phones' legs
    /// go to `queue`. Returns the id of `from` from now on: the call's, once it answered.
    pub(super) fn phones_did(
        &mut self,
        call: LegId,
        from: LegId,
        event: Event,
        queue: &mut VecDeque<(LegId, Event)>,
    ) -> LegId {
        match event {
            Event::Progress { .. } => {
                self.calls.report(CallEvent::CalleeRinging { call });
            }
            Event::Answered { answer } => {
                self.calls.report(CallEvent::CalleeAnswered { call, sdp: answer.0 });
                self.take_call(from, call);
                return call;
            }
            // Every phone failed (the bridge's most telling refusal), or the first to answer had
            // no SDP (502) and is hung up with the others.
            Event::Rejected { status } => {
                self.calls.report(CallEvent::CalleeFailed { call, status: status.0 });
                queue.extend(self.leave_unplaced(call));
            }
            // Nothing else reaches the inbound side before an answer.
            _ => {}
        }
        from
    }

    /// The phone's leg `winner` answered the application's own call `call`: it takes the call's
    /// id, as one of the application's legs. The bridge is done with: it has abandoned the other
    /// phones, whose legs end by themselves (CANCEL, or ACK and BYE for a 2xx crossing it, RFC
    /// 3261 §9.1) and are no longer the call's; without it, the id is free for the callee the
    /// application may dial for the call.
    fn take_call(&mut self, winner: LegId, call: LegId) {
        self.calls.originating.remove(&call);
        if let Some(bridge) = self.calls.bridges.remove(&call) {
            for fork in bridge.forks() {
                if let Some(leg) = self.calls.calls.get_mut(fork) {
                    leg.bridge = None;
                }
            }
        }
        if let Some(leg) = self.calls.rename(winner, call) {
            leg.application = true;
            leg.origination = Some(Origination::Answered);
        }
    }
}
