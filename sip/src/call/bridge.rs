//! The B2BUA coupling of one inbound leg to the outbound legs placed for it (one per contact of a
//! forked call): what one leg did, as an [`Action`], becomes [`Event`]s for the others. Pure like
//! the legs; the edge feeds each leg's actions here and the resulting events to the legs named.
//!
//! - Ringing and early media of any fork reach the caller while nobody has answered.
//! - The first fork to answer wins (RFC 3261 §16.7 for a forking proxy; the same rule here): the
//!   caller gets its answer and the other forks are abandoned (CANCEL, or ACK and BYE for a 2xx
//!   that arrives late).
//! - Session changes (hold, resume) cross from either side to the other and their answers back.
//!   SDP is passed through unchanged: media anchoring comes with the media engine's edge.
//! - A leg that ends takes the other side down: the caller's hang-up or CANCEL abandons every
//!   fork, the winner's hang-up hangs up the caller, and when every fork has failed the caller
//!   gets the most telling refusal (486 before anything else, else the first final status).

use super::{Action, EndReason, Event, LegId, Status};

#[cfg(test)]
mod tests;

#[derive(Debug, Clone)]
pub struct Bridge {
    inbound: LegId,
    /// Outbound legs still alive.
    forks: Vec<LegId>,
    winner: Option<LegId>,
    refusal: Option<Status>,
    inbound_ended: bool,
}

impl Bridge {
    pub fn new(inbound: LegId, forks: Vec<LegId>) -> Bridge {
        Bridge { inbound, forks, winner: None, refusal: None, inbound_ended: false }
    }

    pub fn inbound(&self) -> LegId {
        self.inbound
    }

    /// The legs of this bridge still alive.
    pub fn legs(&self) -> impl Iterator<Item = LegId> + '_ {
        (!self.inbound_ended).then_some(self.inbound).into_iter().chain(self.forks.iter().copied())
    }

    /// Whether every leg has ended: the edge forgets the bridge.
    pub fn is_over(&self) -> bool {
        self.inbound_ended && self.forks.is_empty()
    }

    /// The outbound legs still alive.
    pub fn forks(&self) -> &[LegId] {
        &self.forks
    }

    /// The answer of the forks' side once one has won.
    pub fn winner(&self) -> Option<LegId> {
        self.winner
    }

    /// The events the other legs get because `from` took `action`.
    pub fn on_action(&mut self, from: LegId, action: &Action) -> Vec<(LegId, Event)> {
        if from == self.inbound {
            self.on_inbound_action(action)
        } else if self.forks.contains(&from) {
            self.on_fork_action(from, action)
        } else {
            Vec::new()
        }
    }

    fn on_inbound_action(&mut self, action: &Action) -> Vec<(LegId, Event)> {
        match action {
            Action::ChangeOffered { offer, .. } => match (self.winner, offer) {
                (Some(winner), Some(offer)) => vec![(winner, Event::ChangeRequested { offer: offer.clone() })],
                // A re-INVITE without an offer would need the answer back in its ACK; not
                // passed through (yet), so it is refused and the session stays as it was.
                _ => vec![(self.inbound, Event::ChangeRefused { status: Status(488) })],
            },
            Action::ChangeAccepted { sdp: Some(sdp) } => self.to_winner(Event::ChangeAnswered { answer: sdp.clone() }),
            Action::ChangeAccepted { sdp: None } => self.to_winner(Event::ChangeRefused { status: Status(488) }),
            Action::ChangeFailed { status } => self.to_winner(Event::ChangeRefused { status: *status }),
            Action::Ended(_) => {
                self.inbound_ended = true;
                self.forks.iter().map(|fork| (*fork, Event::Abandon)).collect()
            }
            _ => Vec::new(),
        }
    }

    fn on_fork_action(&mut self, fork: LegId, action: &Action) -> Vec<(LegId, Event)> {
        let inbound = self.inbound;
        match action {
            Action::Progress { status, sdp } if self.winner.is_none() && !self.inbound_ended => {
                vec![(inbound, Event::Progress { status: *status, sdp: sdp.clone() })]
            }
            Action::Accepted { sdp } => {
                if self.winner.is_some() || self.inbound_ended {
                    return vec![(fork, Event::Abandon)];
                }
                self.winner = Some(fork);
                let mut events: Vec<(LegId, Event)> =
                    self.forks.iter().filter(|other| **other != fork).map(|other| (*other, Event::Abandon)).collect();
                match sdp {
                    Some(sdp) => events.push((inbound, Event::Answered { answer: sdp.clone() })),
                    // A 2xx without SDP to an INVITE with an offer breaks RFC 3264 §4: that fork is
                    // hung up too, and leaves the bridge, so that its end tells the caller nothing.
                    None => {
                        self.forks.retain(|other| *other != fork);
                        events.push((fork, Event::Abandon));
                        events.push((inbound, Event::Rejected { status: Status(502) }));
                    }
                }
                events
            }
            Action::ChangeOffered { offer, .. } if Some(fork) == self.winner && !self.inbound_ended => match offer {
                Some(offer) => vec![(inbound, Event::ChangeRequested { offer: offer.clone() })],
                None => vec![(fork, Event::ChangeRefused { status: Status(488) })],
            },
            Action::ChangeOffered { .. } => vec![(fork, Event::ChangeRefused { status: Status(481) })],
            Action::ChangeAccepted { sdp: Some(sdp) } => vec![(inbound, Event::ChangeAnswered { answer: sdp.clone() })],
            Action::ChangeAccepted { sdp: None } => vec![(inbound, Event::ChangeRefused { status: Status(488) })],
            Action::ChangeFailed { status } => vec![(inbound, Event::ChangeRefused { status: *status })],
            Action::Ended(reason) => {
                self.forks.retain(|other| *other != fork);
                if let EndReason::Refused(status) = reason
                    && (self.refusal.is_none() || status.0 == 486)
                {
                    self.refusal = Some(*status);
                }
                if self.inbound_ended {
                    Vec::new()
                } else if Some(fork) == self.winner {
                    vec![(inbound, Event::HangupRequested)]
                } else if self.winner.is_none() && self.forks.is_empty() {
                    // A redirection's contacts are the phone's business, not the caller's.
                    let status = self.refusal.filter(|status| status.0 >= 400);
                    vec![(inbound, Event::Rejected { status: status.unwrap_or(Status::TEMPORARILY_UNAVAILABLE) })]
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }

    fn to_winner(&self, event: Event) -> Vec<(LegId, Event)> {
        self.winner.map(|winner| (winner, event)).into_iter().collect()
    }
}
