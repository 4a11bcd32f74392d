//! A supervisor in an agent's call: the caller's leg, the agent's leg and the supervisor's
//! browser softphone in a conference whose mixer follows the coaching mode (listen, whisper,
//! barge). Switching mode changes who hears whom between two frames; leaving puts the caller and
//! the agent back on the direct relay, so the call goes on undisturbed.

use std::sync::Arc;

use loket_crm::desk::Coaching;
use loket_media::edge::{Conference, Session, WebRtcLeg};
use loket_media::mixer::{self, CoachingRoles, ParticipantId};
use loket_routing::model::{AgentId, WorkItemId};

use super::line::Line;
use super::{Voice, lock};
use crate::work::WorkItems;

/// A call being coached.
pub(super) struct Coached {
    conference: Conference,
    roles: CoachingRoles,
    supervisor: AgentId,
    leg: Arc<WebRtcLeg>,
}

/// Resolves with the supervisor when their browser goes; never while nobody coaches.
pub(super) async fn gone(coached: &Option<Coached>) -> AgentId {
    match coached {
        Some(coached) => {
            coached.leg.ended().await;
            coached.supervisor
        }
        None => std::future::pending().await,
    }
}

fn mixer_mode(mode: Coaching) -> mixer::Coaching {
    match mode {
        Coaching::Listen => mixer::Coaching::Listen,
        Coaching::Whisper => mixer::Coaching::Whisper,
        Coaching::Barge => mixer::Coaching::Barge,
    }
}

impl<W: WorkItems> Voice<W> {
    /// A supervisor's request about the call of `item` between `line`'s caller and `agent`
    /// (on `agent_media`); returns the coaching as it now is. One supervisor at a time:
    /// `Voice::coach` refuses a second one, and a request that raced past it is ignored here.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply_coaching(
        &self,
        line: &Line,
        item: WorkItemId,
        agent: AgentId,
        agent_media: &Session,
        coached: Option<Coached>,
        supervisor: AgentId,
        mode: Option<Coaching>,
    ) -> Option<Coached> {
        match (coached, mode) {
            (None, None) => None,
            (None, Some(mode)) => self.start_coaching(line, item, agent, agent_media, supervisor, mode).await,
            (Some(coached), _) if coached.supervisor != supervisor => {
                tracing::info!(item = item.0, "a second supervisor asked to coach a call that is coached already");
                Some(coached)
            }
            (Some(coached), Some(mode)) => {
                coached.conference.set_coaching(coached.roles, mixer_mode(mode));
                self.note_coaching(item, agent, Some((supervisor, mode)));
                Some(coached)
            }
            (Some(coached), None) => {
                self.end_coaching(line, item, agent, agent_media, coached, true).await;
                None
            }
        }
    }

    async fn start_coaching(
        &self,
        line: &Line,
        item: WorkItemId,
        agent: AgentId,
        agent_media: &Session,
        supervisor: AgentId,
        mode: Coaching,
    ) -> Option<Coached> {
        let Some(leg) = self.softphone_of(supervisor) else {
            tracing::info!(item = item.0, "the supervisor's softphone went before the coaching began");
            return None;
        };
        let conference = Conference::start();
        // Off the relay first, so that nobody hears the other twice.
        let _ = line.media.unbridge(agent_media).await;
        let parties = [&line.media, agent_media, leg.session()];
        let mut joined: Vec<ParticipantId> = Vec::with_capacity(parties.len());
        for party in parties {
            match conference.join(party).await {
                Ok(id) => joined.push(id),
                Err(error) => {
                    tracing::warn!(item = item.0, %error, "a call could not be coached");
                    leave_all(&conference, &parties, &joined).await;
                    conference.close().await;
                    let _ = line.media.bridge(agent_media).await;
                    return None;
                }
            }
        }
        let roles = CoachingRoles { citizen: joined[0], agent: joined[1], supervisor: joined[2] };
        conference.set_coaching(roles, mixer_mode(mode));
        self.note_coaching(item, agent, Some((supervisor, mode)));
        tracing::info!(item = item.0, supervisor = supervisor.0, mode = mode.as_str(), "a supervisor coaches a call");
        Some(Coached { conference, roles, supervisor, leg })
    }

    /// The supervisor leaves; with `relay`, the caller and the agent hear each other directly
    /// again (not when the call is ending or moving anyway).
    pub(super) async fn end_coaching(
        &self,
        line: &Line,
        item: WorkItemId,
        agent: AgentId,
        agent_media: &Session,
        coached: Coached,
        relay: bool,
    ) {
        let Coached { conference, roles, leg, .. } = coached;
        let parties = [&line.media, agent_media, leg.session()];
        leave_all(&conference, &parties, &[roles.citizen, roles.agent, roles.supervisor]).await;
        conference.close().await;
        if relay && line.media.bridge(agent_media).await.is_err() {
            tracing::warn!(item = item.0, "the call could not go back to its direct relay after coaching");
        }
        self.note_coaching(item, agent, None);
    }

    fn note_coaching(&self, item: WorkItemId, agent: AgentId, coaching: Option<(AgentId, Coaching)>) {
        match coaching {
            Some(coaching) => lock(&self.coaching).insert(item, coaching),
            None => lock(&self.coaching).remove(&item),
        };
        // The board follows every agent's changes; nobody listening is fine.
        let _ = self.changes.send(agent);
    }
}

async fn leave_all(conference: &Conference, parties: &[&Session], joined: &[ParticipantId]) {
    for (party, id) in parties.iter().zip(joined) {
        conference.leave(party, *id).await;
    }
}
