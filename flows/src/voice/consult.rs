//! The agent's consultative transfer: the caller waits on hold (music) while the agent consults
//! someone; then the agent completes the transfer (the caller talks to them, and the agent wraps
//! up) or goes back to the caller.
//!
//! The consulted party is a number, called by loket through the trunk ([`super::outbound`]'s
//! `originate`, with a line of its own that the caller's task reads too), or a colleague, whose
//! workspace shows the call's case: they answer from it on their browser softphone, or, without
//! one, on their phones, which loket rings the same way. On completion the call becomes theirs,
//! in the router too.

use std::sync::Arc;
use std::time::Duration;

use loket_be::PhoneNumber;
use loket_crm::desk::{CallError, CallState, ConsultStep, Consultation, Consulted};
use loket_media::edge::{Session, WebRtcLeg};
use loket_routing::core::Input;
use loket_routing::model::{AgentId, Presence, WorkItemId};
use loket_sip::service::Destination;

use super::line::{Heard, Line, Signal};
use super::{Voice, lock};
use crate::work::WorkItems;

/// How long a colleague's workspace rings before the agent is back with the caller.
const COLLEAGUE_RINGS_FOR: Duration = Duration::from_secs(30);

/// The router's away reason of a colleague while a consultation rings or goes on for them.
pub const CONSULTED: &str = "consulted";

/// The party the agent consults.
pub(super) struct Consult {
    party: Party,
    answered: bool,
}

pub(super) enum Party {
    /// A number outside, with the line loket placed to it.
    Number { line: Line, number: PhoneNumber },
    /// A colleague, as they are reached.
    Colleague { agent: AgentId, side: ColleagueSide },
}

/// How a consulted colleague takes part.
pub(super) enum ColleagueSide {
    /// On their softphone; their workspace rings until `rings_until`.
    Softphone { softphone: Arc<WebRtcLeg>, rings_until: tokio::time::Instant },
    /// On their phones, with the line of loket's call to them.
    Phone(Line),
}

impl Consult {
    /// The consulted party's answer, or that it is gone: as signals of the caller's call. A
    /// colleague's answer comes from their console, as a signal of the call itself.
    pub async fn next(consult: &mut Option<Consult>) -> Signal {
        let Some(consult) = consult else { return std::future::pending().await };
        match &mut consult.party {
            Party::Number { line, .. } | Party::Colleague { side: ColleagueSide::Phone(line), .. } => loop {
                match line.next(None).await {
                    Heard::Other(Signal::CalleeAnswered(sdp)) => return Signal::ConsultAnswered(sdp),
                    Heard::Other(Signal::CalleeFailed(_)) => {
                        line.ended_by_service();
                        return Signal::ConsultGone;
                    }
                    Heard::HungUp => return Signal::ConsultGone,
                    _ => {}
                }
            },
            Party::Colleague { side: ColleagueSide::Softphone { softphone, rings_until }, .. } => {
                let (answered, rings_until) = (consult.answered, *rings_until);
                let rings = async {
                    match answered {
                        true => std::future::pending().await,
                        false => tokio::time::sleep_until(rings_until).await,
                    }
                };
                tokio::select! {
                    () = rings => {}
                    () = softphone.ended() => {}
                }
                Signal::ConsultGone
            }
        }
    }

    pub async fn send_digit(&self, digit: char) {
        // A colleague hears the agent directly; digits are for numbers outside.
        if let Party::Number { line, .. } = &self.party {
            line.send_digit(digit).await;
        }
    }

    /// The consulted party's side of the media.
    fn media(&self) -> &Session {
        match &self.party {
            Party::Number { line, .. } | Party::Colleague { side: ColleagueSide::Phone(line), .. } => &line.media,
            Party::Colleague { side: ColleagueSide::Softphone { softphone, .. }, .. } => softphone.session(),
        }
    }

    /// The line of the call loket placed to the consulted party: a number, or a colleague's phones.
    fn line(&self) -> Option<&Line> {
        match &self.party {
            Party::Number { line, .. } | Party::Colleague { side: ColleagueSide::Phone(line), .. } => Some(line),
            Party::Colleague { side: ColleagueSide::Softphone { .. }, .. } => None,
        }
    }

    pub fn into_party(self) -> Party {
        self.party
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
pub(super) enum Stepped {
    /// Going on, or over and the agent back with the caller.
    Going,
    /// The agent completed the transfer: the caller is to talk to this party.
    Completed(Consult),
}

impl<W: WorkItems> Voice<W> {
    /// A step of the agent's consultative transfer of the call of `item`. Starting one with a
    /// colleague is refused here, where the console hears why, when they cannot take it.
    pub fn consult(&self, item: WorkItemId, step: ConsultStep) -> Result<(), CallError> {
        if let ConsultStep::Start(Consulted::Agent { agent: colleague, .. }) = &step
            && self.softphone_busy(*colleague, None)
        {
            return Err(CallError::ColleagueUnavailable);
        }
        self.signal(item, Signal::Consult(step))
    }

    /// The consultation that rings, or goes on, for the colleague `agent`.
    pub fn consultation(&self, agent: AgentId) -> Option<Consultation> {
        lock(&self.consultations).get(&agent).copied()
    }

    /// The colleague consulted about the call of `item`.
    pub fn consulted(&self, item: WorkItemId) -> Option<AgentId> {
        lock(&self.consultations).iter().find(|(_, consultation)| consultation.item == item).map(|(agent, _)| *agent)
    }

    /// The colleague `agent` answers the consultation that rings for them, or declines or
    /// leaves it.
    pub fn answer_consultation(&self, agent: AgentId, answer: bool) -> Result<(), CallError> {
        let consultation = self.consultation(agent).ok_or(CallError::NoCallOfYours)?;
        // A phone answers by itself.
        if answer && (consultation.answered || consultation.on_phone) {
            return Ok(());
        }
        self.signal(consultation.item, Signal::ColleagueAnswer { agent, answer })
    }

    /// Carries out the agent's `step`.
    pub(super) async fn consult_step(
        &self,
        line: &Line,
        held: Held<'_>,
        consult: &mut Option<Consult>,
        step: ConsultStep,
    ) -> Stepped {
        let Held { item, agent, media: agent_media, since } = held;
        match step {
            ConsultStep::Start(target) if consult.is_none() => {
                let Some(party) = self.reach(item, agent, target).await else { return Stepped::Going };
                // The caller waits with music and hears nothing of the consultation.
                let _ = line.media.hold(self.parts.prompts.music()).await;
                let _ = line.media.unbridge(agent_media).await;
                *consult = Some(Consult { party, answered: false });
                self.set_state(item, agent, CallState::Consulting { since, answered: false });
            }
            ConsultStep::Complete if consult.as_ref().is_some_and(|consult| consult.answered) => {
                if let Some(consulted) = consult.take() {
                    let _ = consulted.media().unbridge(agent_media).await;
                    return Stepped::Completed(consulted);
                }
            }
            ConsultStep::Cancel => self.back_to_caller(line, held, consult, true).await,
            _ => {}
        }
        Stepped::Going
    }

    /// Calls the number, or rings the colleague's workspace: the party consulted, unless they
    /// cannot be reached.
    async fn reach(&self, item: WorkItemId, agent: AgentId, target: Consulted) -> Option<Party> {
        match target {
            Consulted::Number(number) => match self.originate(&super::outbound::dialled(&number)) {
                Ok(line) => Some(Party::Number { line, number }),
                Err(error) => {
                    tracing::warn!(item = item.0, %error, "a consultation could not be placed");
                    None
                }
            },
            Consulted::Agent { agent: colleague, username } => {
                if colleague == agent {
                    return None;
                }
                // Away for the router while it lasts, so that nothing is offered to them.
                let away = Presence::Away { reason: CONSULTED.to_owned() };
                if let Err(error) =
                    self.parts.work.execute(Input::PresenceChanged { agent: colleague, presence: away }).await
                {
                    tracing::warn!(item = item.0, %error, "a colleague could not be consulted");
                    return None;
                }
                let side = match self.softphone_of(colleague) {
                    Some(softphone) => {
                        let rings_until = tokio::time::Instant::now() + COLLEAGUE_RINGS_FOR;
                        Ok(ColleagueSide::Softphone { softphone, rings_until })
                    }
                    None => self.originate(&Destination::Agent(username)).map(ColleagueSide::Phone),
                };
                let side = match side {
                    Ok(side) => side,
                    Err(error) => {
                        tracing::warn!(item = item.0, %error, "a colleague's phone could not be rung");
                        self.colleague_released(colleague).await;
                        return None;
                    }
                };
                let on_phone = matches!(side, ColleagueSide::Phone(_));
                let consultation = Consultation { item, from: agent, answered: false, on_phone };
                lock(&self.consultations).insert(colleague, consultation);
                let _ = self.changes.send(colleague);
                Some(Party::Colleague { agent: colleague, side })
            }
        }
    }

    /// The consulted number, or colleague's phone, answered with `answer`: the agent talks to
    /// them.
    pub(super) async fn consult_answered(
        &self,
        line: &Line,
        held: Held<'_>,
        consult: &mut Option<Consult>,
        answer: &str,
    ) {
        let Some(consulted) = consult.as_ref().and_then(Consult::line) else { return };
        let remote = super::call::far_end(consulted.call, answer);
        let set = match remote {
            Some(remote) => consulted.media.set_remote(remote).await.is_ok(),
            None => false,
        };
        self.talk_to_consulted(line, held, consult, set).await;
    }

    /// The colleague `colleague` answered (`true`) or declined or left.
    pub(super) async fn colleague_answered(
        &self,
        line: &Line,
        held: Held<'_>,
        consult: &mut Option<Consult>,
        colleague: AgentId,
        answer: bool,
    ) {
        let theirs =
            matches!(consult, Some(Consult { party: Party::Colleague { agent, .. }, .. }) if *agent == colleague);
        if !theirs {
            return;
        }
        match answer {
            true => self.talk_to_consulted(line, held, consult, true).await,
            false => self.back_to_caller(line, held, consult, false).await,
        }
    }

    /// The consulted party answered: the agent talks to them when `usable`, else is back with
    /// the caller.
    async fn talk_to_consulted(&self, line: &Line, held: Held<'_>, consult: &mut Option<Consult>, usable: bool) {
        let Held { item, agent, media: agent_media, since } = held;
        let Some(consulted) = consult.as_mut() else { return };
        if consulted.answered {
            return;
        }
        if usable && consulted.media().bridge(agent_media).await.is_ok() {
            consulted.answered = true;
            if let Party::Colleague { agent: colleague, .. } = &consulted.party {
                if let Some(consultation) = lock(&self.consultations).get_mut(colleague) {
                    consultation.answered = true;
                }
                let _ = self.changes.send(*colleague);
            }
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
        let _ = consulted.media().unbridge(agent_media).await;
        match consulted.party {
            Party::Number { mut line, .. } => {
                line.hang_up();
                self.let_go(line).await;
            }
            Party::Colleague { agent: colleague, side } => {
                if let ColleagueSide::Phone(mut phone) = side {
                    phone.hang_up();
                    self.let_go(phone).await;
                }
                self.colleague_released(colleague).await;
            }
        }
        let back = line.media.bridge(agent_media).await.is_ok();
        let resumed = resume && back && line.media.resume().await.is_ok();
        let state = if resumed { CallState::Connected { since } } else { CallState::Held { since } };
        self.set_state(item, agent, state);
    }

    /// The consultation is over for the colleague: their workspace stops showing it and the
    /// router may offer them work again (a call handed to them keeps them busy).
    pub(super) async fn colleague_released(&self, colleague: AgentId) {
        lock(&self.consultations).remove(&colleague);
        let _ = self.changes.send(colleague);
        let presence = Presence::Available;
        if let Err(error) = self.parts.work.execute(Input::PresenceChanged { agent: colleague, presence }).await {
            tracing::warn!(agent = colleague.0, %error, "a consulted colleague was not made available again");
        }
    }

    /// The caller and the number the agent consulted talk through loket until either hangs up,
    /// which ends the other.
    pub(super) async fn stay_with_consulted(&self, line: &mut Line, mut other: Line) {
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
