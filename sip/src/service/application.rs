//! The calls an application handles: the numbers whose target is `ivr` reach the binary's voice
//! flows (`flows::voice`) as [`CallEvent`]s, and the application answers, rings, refuses and hangs
//! them up with [`CallCommand`]s. The service keeps the SIP side (transactions, dialog, timers,
//! re-INVITEs); the application owns the media and decides what the caller hears.
//!
//! An answered call can have one callee at a time, dialled by the application for it: an agent's
//! phones ([`CallCommand::DialAgent`]) or a number through the trunk
//! ([`CallCommand::DialNumber`]). Both report through the same `Callee…` events and are hung up
//! with [`CallCommand::HangUpCallee`]: the application knows which one it dialled.
//!
//! The application also places calls of its own, with no caller behind them, under an id from
//! [`CallIds::next`]: [`CallCommand::Originate`] to a [`Destination`], a number through the trunk
//! (a callback, an agent's click-to-dial from the browser) or an agent's registered phones (a
//! desk phone rung first for its agent's click-to-dial, a colleague's for a consultation).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::call::LegId;

/// What the service tells the application about one of its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A new call to a number with the target `ivr`: answer, ring or refuse it.
    Incoming {
        call: LegId,
        /// The user part of the Request-URI.
        dialled: String,
        /// The user part of the caller's From URI (usually a number), as sent.
        caller: String,
        /// The SDP offer of the INVITE; `None` when the INVITE had none (the answer is then
        /// loket's offer, RFC 3261 §13.2.1).
        offer: Option<String>,
    },
    /// A keypad digit sent by SIP INFO (`application/dtmf-relay` or `application/dtmf`).
    Digit { call: LegId, digit: char },
    /// The call is over, whoever ended it; commands for it are ignored from now on.
    Ended { call: LegId },
    /// The callee rings: one of the agent's phones dialled by [`CallCommand::DialAgent`] (each
    /// phone that rings says so), or the number dialled by [`CallCommand::DialNumber`]; or the
    /// destination of [`CallCommand::Originate`], alike.
    CalleeRinging { call: LegId },
    /// The callee answered with this SDP (the first of the agent's phones; the others have been
    /// cancelled).
    CalleeAnswered { call: LegId, sdp: String },
    /// The callee did not answer: no phone of the agent registered (480), busy (486), another
    /// refusal (the trunk's 403 to loket's credentials, 404 …), nobody answering in time (480),
    /// or no trunk to dial a number through (503).
    CalleeFailed { call: LegId, status: u16 },
    /// The callee's side ended after its answer: it hung up, or [`CallCommand::HangUpCallee`]
    /// ended it. The caller's leg stays up until the application decides.
    CalleeHungUp { call: LegId },
}

/// What the application asks of the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCommand {
    /// 180 Ringing.
    Ring { call: LegId },
    /// 200 with this SDP (the answer to the offer, or loket's offer when there was none). Later
    /// offers in the dialog (hold, resume) are answered with the same address and port.
    Answer { call: LegId, sdp: String },
    /// A final refusal before the answer (404, 480, 486, 503 …).
    Refuse { call: LegId, status: u16 },
    /// BYE after the answer, or 480 before it.
    HangUp { call: LegId },
    /// Rings every registered phone of the agent user `agent` for the answered call `call`,
    /// with `offer` (the SDP of the application's media session for the agent); the first to
    /// answer wins. One agent at a time per call: a second dial while one rings fails with 486.
    DialAgent { call: LegId, agent: String, offer: String },
    /// Calls `number` (`+` and digits, as `+3250123456`) through the trunk for the answered call
    /// `call`, with `offer`, as `sip:NUMBER@trunk` from the trunk's caller ID; a challenge of the
    /// trunk's is answered once with its credentials. Reported like [`CallCommand::DialAgent`].
    DialNumber { call: LegId, number: String, offer: String },
    /// Hangs up the callee's side of `call` (CANCEL while it rings, BYE once answered).
    HangUpCallee { call: LegId },
    /// Places a call of loket's own to `to`, with `offer` (the SDP of the application's media
    /// session for it), under the new id `call` (from [`CallIds::next`]; an id in use is ignored).
    /// It reports [`CallEvent::CalleeRinging`], then [`CallEvent::CalleeAnswered`] (from then on
    /// it is one of the application's calls, whatever its destination: digits by INFO, holds
    /// answered with the offer's address, [`CallCommand::HangUp`] as BYE, [`CallEvent::Ended`]
    /// when the callee hangs up, and it may dial a callee, standing for the caller) or
    /// [`CallEvent::CalleeFailed`], after which the id is free: the callee's refusal, 503 without
    /// room for the call, 408 or 480 when nobody answers, 502 for an answer without SDP (hung up
    /// at once), and what [`Destination`] says of each. [`CallCommand::HangUp`] before the answer
    /// cancels it, and nothing more is reported: the application ended it itself.
    Originate { call: LegId, to: Destination, offer: String },
}

/// Whom a call loket places ([`CallCommand::Originate`]) reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A number (`+` and digits, as `+3250123456`), called through the trunk as
    /// [`CallCommand::DialNumber`] calls it for a caller (one challenge answered, the trunk's ring
    /// timeout): 484 for a number that is not one, 503 without a trunk or its host's address.
    Number(String),
    /// Every registered phone of this agent user, rung at once from `sip:loket@DOMAIN` as
    /// [`CallCommand::DialAgent`] rings them for a caller: the first to answer wins and the others
    /// are cancelled; 480 when none is registered, 486 when all are busy.
    Agent(String),
}

/// The ids of call legs, shared by the service (its legs) and the application (the calls it
/// originates), so that both draw from one sequence.
#[derive(Debug, Clone, Default)]
pub struct CallIds(Arc<AtomicU64>);

impl CallIds {
    pub fn next(&self) -> LegId {
        LegId(self.0.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

/// The application's ends of the two channels, given to [`super::Sockets::serve`].
pub struct Application {
    /// Unbounded so that the service task never waits on the application; each event belongs
    /// to one of at most `max_calls` calls.
    pub events: mpsc::UnboundedSender<CallEvent>,
    pub commands: mpsc::UnboundedReceiver<CallCommand>,
    pub ids: CallIds,
}

/// The service's ends and the application's: (application side, service side).
pub fn channels() -> (ApplicationEnds, Application) {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let ids = CallIds::default();
    (
        ApplicationEnds { events: events_rx, commands: commands_tx, ids: ids.clone() },
        Application { events: events_tx, commands: commands_rx, ids },
    )
}

/// What the application holds: the events to read and the command sender.
pub struct ApplicationEnds {
    pub events: mpsc::UnboundedReceiver<CallEvent>,
    pub commands: mpsc::UnboundedSender<CallCommand>,
    pub ids: CallIds,
}

/// The digit of an INFO body: `Signal=5` (application/dtmf-relay) or `5` (application/dtmf).
pub fn info_digit(content_type: &str, body: &str) -> Option<char> {
    let content_type = content_type.split(';').next().unwrap_or_default().trim();
    let value = if content_type.eq_ignore_ascii_case("application/dtmf-relay") {
        body.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            name.trim().eq_ignore_ascii_case("signal").then_some(value.trim())
        })?
    } else if content_type.eq_ignore_ascii_case("application/dtmf") {
        body.trim()
    } else {
        return None;
    };
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(digit @ ('0'..='9' | '*' | '#')), None) => Some(digit),
        // RFC 4733 event numbers 10 and 11, which some phones send by number.
        _ if value == "10" => Some('*'),
        _ if value == "11" => Some('#'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::info_digit;

    #[test]
    fn info_bodies_give_their_digit() {
        assert_eq!(info_digit("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n"), Some('5'));
        assert_eq!(info_digit("Application/DTMF-Relay; charset=x", "signal= #\r\n"), Some('#'));
        assert_eq!(info_digit("application/dtmf", "*"), Some('*'));
        assert_eq!(info_digit("application/dtmf-relay", "Signal=11\r\n"), Some('#'));
        assert_eq!(info_digit("application/dtmf-relay", "Signal=A\r\n"), None);
        assert_eq!(info_digit("application/dtmf-relay", "Duration=160\r\n"), None);
        assert_eq!(info_digit("text/plain", "5"), None);
        assert_eq!(info_digit("application/dtmf", "55"), None);
    }
}
