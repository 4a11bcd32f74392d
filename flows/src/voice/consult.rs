//! The agent's consultative transfer: the caller waits on hold (music) while the agent calls a
//! number through the trunk and talks to whoever answers; then the agent completes the transfer
//! (the caller and that party talk, and the agent wraps up) or goes back to the caller.
//!
//! The consulted party is a call loket places ([`super::outbound`]'s `originate`), with a line of
//! its own; the caller's task reads both lines.

use loket_be::PhoneNumber;
use loket_crm::desk::{CallState, ConsultStep};
use loket_media::edge::Session;
use loket_routing::model::{AgentId, WorkItemId};

use super::Voice;
use super::line::{Heard, Line, Signal};
use crate::work::WorkItems;

/// The party the agent consults.
pub(super) struct Consult {
    line: Line,
    pub number: PhoneNumber,
    answered: bool,
}

impl Consult {
    /// The consulted party's answer, or that it is gone: as signals of the caller's call.
    pub async fn next(consult: &mut Option<Consult>) -> Signal {
        let Some(consult) = consult else { return std::future::pending().await };
        loop {
            match consult.line.next(None).await {
                Heard::Other(Signal::CalleeAnswered(sdp)) => return Signal::ConsultAnswered(sdp),
                Heard::Other(Signal::CalleeFailed(_)) => {
                    consult.line.ended_by_service();
                    return Signal::ConsultGone;
                }
                Heard::HungUp => return Signal::ConsultGone,
                _ => {}
            }
        }
    }

    pub async fn send_digit(&self, digit: char) {
        self.line.send_digit(digit).await;
    }
}

/// The call a consultation belongs to: its item, its agent, the agent's side of the media, and
/// since when the agent and the caller talk.
pub(super) struct Held<'a> {
    pub item: WorkItemId,
    pub agent: AgentId,
    pub media: &'a Session,
    pub since: i64,
}

/// What became of a consultation step.
pub(super) enum Consulted {
    /// Going on, or over and the agent back with the caller.
    Going,
    /// The agent completed the transfer: the caller is to talk to this party.
    Completed(Consult),
}

impl<W: WorkItems> Voice<W> {
    /// Carries out the agent's `step`.
    pub(super) async fn consult_step(
        &self,
        line: &Line,
        held: Held<'_>,
        consult: &mut Option<Consult>,
        step: ConsultStep,
    ) -> Consulted {
        let Held { item, agent, media: agent_media, since } = held;
        match step {
            ConsultStep::Start(number) if consult.is_none() => {
                let originated = self.originate(&number);
                let Ok(consulted) = originated else {
                    tracing::warn!(item = item.0, "a consultation could not be placed");
                    return Consulted::Going;
                };
                // The caller waits with music and hears nothing of the consultation.
                let _ = line.media.hold(self.parts.prompts.music()).await;
                let _ = line.media.unbridge(agent_media).await;
                *consult = Some(Consult { line: consulted, number, answered: false });
                self.set_state(item, agent, CallState::Consulting { since, answered: false });
            }
            ConsultStep::Complete if consult.as_ref().is_some_and(|consult| consult.answered) => {
                if let Some(consulted) = consult.take() {
                    let _ = consulted.line.media.unbridge(agent_media).await;
                    return Consulted::Completed(consulted);
                }
            }
            ConsultStep::Cancel => self.back_to_caller(line, held, consult, true).await,
            _ => {}
        }
        Consulted::Going
    }

    /// The consulted party answered: the agent talks to them.
    pub(super) async fn consult_answered(
        &self,
        line: &Line,
        held: Held<'_>,
        consult: &mut Option<Consult>,
        answer: &str,
    ) {
        let Held { item, agent, media: agent_media, since } = held;
        let Some(consulted) = consult.as_mut() else { return };
        let remote = super::call::far_end(consulted.line.call, answer);
        let bridged = match remote {
            Some(remote) => {
                consulted.line.media.set_remote(remote).await.is_ok()
                    && consulted.line.media.bridge(agent_media).await.is_ok()
            }
            None => false,
        };
        if bridged {
            consulted.answered = true;
            self.set_state(item, agent, CallState::Consulting { since, answered: true });
        } else {
            self.back_to_caller(line, held, consult, false).await;
        }
    }

    /// Ends the consultation, if any, and puts the agent back with the caller, who hears them
    /// again when `resume`, else stays on hold until the agent resumes.
    pub(super) async fn back_to_caller(
        &self,
        line: &Line,
        held: Held<'_>,
        consult: &mut Option<Consult>,
        resume: bool,
    ) {
        let Held { item, agent, media: agent_media, since } = held;
        let Some(consulted) = consult.take() else { return };
        let mut other = consulted.line;
        other.hang_up();
        self.let_go(other).await;
        let back = line.media.bridge(agent_media).await.is_ok();
        let resumed = resume && back && line.media.resume().await.is_ok();
        let state = if resumed { CallState::Connected { since } } else { CallState::Held { since } };
        self.set_state(item, agent, state);
    }

    /// The caller and the party the agent consulted talk through loket until either hangs up,
    /// which ends the other.
    pub(super) async fn stay_with_consulted(&self, line: &mut Line, consulted: Consult) {
        let Consult { line: mut other, .. } = consulted;
        let bridged = line.media.resume().await.is_ok() && line.media.bridge(&other.media).await.is_ok();
        if bridged {
            loop {
                tokio::select! {
                    heard = line.next(None) => if heard == Heard::HungUp {
                        other.hang_up();
                        break;
                    },
                    heard = other.next(None) => if heard == Heard::HungUp {
                        line.hang_up();
                        break;
                    },
                }
            }
        } else {
            other.hang_up();
            line.hang_up();
        }
        self.let_go(other).await;
    }
}
