//! What a caller hears while waiting for an agent: music, and every so often their place in the
//! queue and the expected wait in their language; once the expected wait passes a threshold, an
//! offer to be called back instead (the router keeps their place). A pure state machine like
//! [`crate::Session`]: events and time in, actions out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::flow::Language;
use crate::numbers;
use crate::session::PromptRef;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingConfig {
    pub announce_every: Duration,
    /// Said before the caller's place: "your place in the queue:".
    pub position_prompt: Arc<str>,
    /// Said before the minutes: "expected wait in minutes:".
    pub wait_prompt: Arc<str>,
    pub offer: Option<Offer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Offered once the expected wait is longer than this.
    pub after: Duration,
    /// "Press 1 to be called back; stay on the line to keep your place."
    pub prompt: Arc<str>,
    pub key: char,
    /// How long the offer waits for the key once said.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEvent {
    /// The router's latest estimate for this caller.
    Estimate {
        position: u32,
        expected_wait: Duration,
    },
    PromptFinished,
    Digit(char),
    DeadlineReached,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitAction {
    /// Loop the music on hold until told otherwise.
    Music,
    /// Stop the music or the prompt and say these.
    Say(Vec<PromptRef>),
    /// The caller wants to be called back: the edge confirms and ends the call, the router keeps
    /// the item's place.
    CallbackRequested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Music {
        announce_at: Instant,
    },
    Announcing,
    /// The offer is being said, or heard and waiting for the key until `until`.
    Offering {
        until: Option<Instant>,
    },
    CalledBack,
}

#[derive(Debug)]
pub struct Waiting {
    config: WaitingConfig,
    language: Language,
    state: State,
    estimate: Option<(u32, Duration)>,
    offered: bool,
}

impl Waiting {
    /// The first announcement comes as soon as there is an estimate.
    pub fn start(config: WaitingConfig, language: Language, now: Instant) -> (Waiting, Vec<WaitAction>) {
        let waiting =
            Waiting { config, language, state: State::Music { announce_at: now }, estimate: None, offered: false };
        (waiting, vec![WaitAction::Music])
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Music { announce_at } if self.estimate.is_some() => Some(announce_at),
            State::Offering { until } => until,
            _ => None,
        }
    }

    pub fn handle(&mut self, now: Instant, event: WaitEvent) -> Vec<WaitAction> {
        match (self.state, event) {
            (State::CalledBack, _) => Vec::new(),
            (_, WaitEvent::Estimate { position, expected_wait }) => {
                let first = self.estimate.is_none();
                self.estimate = Some((position, expected_wait));
                match self.state {
                    State::Music { announce_at } if first && now >= announce_at => self.announce(),
                    _ => Vec::new(),
                }
            }
            (State::Music { announce_at }, WaitEvent::DeadlineReached) if now >= announce_at => self.announce(),
            (State::Announcing, WaitEvent::PromptFinished) => match &self.config.offer {
                Some(offer) if !self.offered && self.estimate.is_some_and(|(_, wait)| wait > offer.after) => {
                    self.offered = true;
                    self.state = State::Offering { until: None };
                    vec![WaitAction::Say(vec![self.prompt(&offer.prompt)])]
                }
                _ => self.music(now),
            },
            (State::Offering { until: None }, WaitEvent::PromptFinished) => {
                let timeout = self.config.offer.as_ref().map_or(Duration::ZERO, |offer| offer.timeout);
                self.state = State::Offering { until: Some(now + timeout) };
                Vec::new()
            }
            (State::Offering { .. }, WaitEvent::Digit(key)) => {
                if self.config.offer.as_ref().is_some_and(|offer| offer.key == key) {
                    self.state = State::CalledBack;
                    vec![WaitAction::CallbackRequested]
                } else {
                    self.music(now)
                }
            }
            (State::Offering { until: Some(until) }, WaitEvent::DeadlineReached) if now >= until => self.music(now),
            _ => Vec::new(),
        }
    }

    fn announce(&mut self) -> Vec<WaitAction> {
        let Some((position, expected_wait)) = self.estimate else { return Vec::new() };
        let minutes = u32::try_from(expected_wait.as_secs().div_ceil(60)).unwrap_or(u32::MAX);
        let mut prompts = vec![self.prompt(&self.config.position_prompt)];
        prompts.extend(numbers::speak(position).iter().map(|id| self.prompt(id)));
        prompts.push(self.prompt(&self.config.wait_prompt));
        prompts.extend(numbers::speak(minutes).iter().map(|id| self.prompt(id)));
        self.state = State::Announcing;
        vec![WaitAction::Say(prompts)]
    }

    fn music(&mut self, now: Instant) -> Vec<WaitAction> {
        self.state = State::Music { announce_at: now + self.config.announce_every };
        vec![WaitAction::Music]
    }

    fn prompt(&self, id: &str) -> PromptRef {
        PromptRef { id: Arc::from(id), language: self.language }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WaitingConfig {
        WaitingConfig {
            announce_every: Duration::from_secs(45),
            position_prompt: Arc::from("position"),
            wait_prompt: Arc::from("expected-wait"),
            offer: Some(Offer {
                after: Duration::from_secs(300),
                prompt: Arc::from("offer-callback"),
                key: '1',
                timeout: Duration::from_secs(6),
            }),
        }
    }

    fn said(actions: &[WaitAction]) -> Vec<String> {
        match actions {
            [WaitAction::Say(prompts)] => prompts.iter().map(|p| format!("{}@{}", p.id, p.language.code())).collect(),
            other => panic!("expected one Say, got {other:?}"),
        }
    }

    fn estimate(position: u32, secs: u64) -> WaitEvent {
        WaitEvent::Estimate { position, expected_wait: Duration::from_secs(secs) }
    }

    #[test]
    fn announces_place_and_wait_every_interval_between_music() {
        let start = Instant::now();
        let (mut waiting, actions) = Waiting::start(config(), Language::Fr, start);
        assert_eq!(actions, [WaitAction::Music]);
        assert_eq!(waiting.next_deadline(), None, "nothing to announce before an estimate");
        let actions = waiting.handle(start, estimate(3, 130));
        assert_eq!(said(&actions), ["position@fr", "number-3@fr", "expected-wait@fr", "number-3@fr"]);
        let now = start + Duration::from_secs(8);
        assert_eq!(waiting.handle(now, WaitEvent::PromptFinished), [WaitAction::Music]);
        assert_eq!(waiting.next_deadline(), Some(now + Duration::from_secs(45)));
        // A new estimate waits for the next announcement.
        assert!(waiting.handle(now + Duration::from_secs(10), estimate(2, 60)).is_empty());
        assert!(waiting.handle(now + Duration::from_secs(44), WaitEvent::DeadlineReached).is_empty(), "too early");
        let actions = waiting.handle(now + Duration::from_secs(45), WaitEvent::DeadlineReached);
        assert_eq!(said(&actions), ["position@fr", "number-2@fr", "expected-wait@fr", "number-1@fr"]);
    }

    #[test]
    fn a_long_wait_brings_one_callback_offer() {
        let start = Instant::now();
        let (mut waiting, _) = Waiting::start(config(), Language::Nl, start);
        waiting.handle(start, estimate(40, 20 * 60));
        assert_eq!(said(&waiting.handle(start, WaitEvent::PromptFinished)), ["offer-callback@nl"]);
        assert!(waiting.handle(start, WaitEvent::PromptFinished).is_empty());
        let until = waiting.next_deadline().expect("waits for the key");
        assert_eq!(until, start + Duration::from_secs(6));
        assert_eq!(waiting.handle(until, WaitEvent::DeadlineReached), [WaitAction::Music], "no key: keeps waiting");
        // The next announcement does not offer again.
        let next = waiting.next_deadline().unwrap();
        waiting.handle(next, WaitEvent::DeadlineReached);
        assert_eq!(waiting.handle(next, WaitEvent::PromptFinished), [WaitAction::Music]);
    }

    #[test]
    fn pressing_the_key_during_the_offer_asks_for_a_callback() {
        let start = Instant::now();
        let (mut waiting, _) = Waiting::start(config(), Language::En, start);
        waiting.handle(start, estimate(150, 600));
        waiting.handle(start, WaitEvent::PromptFinished);
        assert_eq!(waiting.handle(start, WaitEvent::Digit('1')), [WaitAction::CallbackRequested]);
        assert_eq!(waiting.next_deadline(), None);
        assert!(waiting.handle(start, estimate(1, 0)).is_empty(), "over");
    }

    #[test]
    fn another_key_during_the_offer_keeps_the_caller_waiting() {
        let start = Instant::now();
        let (mut waiting, _) = Waiting::start(config(), Language::En, start);
        waiting.handle(start, estimate(150, 600));
        let said = said(&waiting.handle(start, WaitEvent::PromptFinished));
        assert_eq!(said, ["offer-callback@en"]);
        assert_eq!(waiting.handle(start, WaitEvent::Digit('2')), [WaitAction::Music]);
    }

    #[test]
    fn a_place_beyond_the_spoken_numbers_is_more_than_ninety_nine() {
        let start = Instant::now();
        let config = WaitingConfig { offer: None, ..config() };
        let (mut waiting, _) = Waiting::start(config, Language::Nl, start);
        let actions = waiting.handle(start, estimate(250, 59));
        assert_eq!(said(&actions), ["position@nl", "more-than@nl", "number-99@nl", "expected-wait@nl", "number-1@nl"]);
    }
}
