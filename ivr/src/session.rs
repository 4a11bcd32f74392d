//! The interpreter: one caller's way through a [`Flow`], as a pure state machine. The edge feeds
//! it [`Event`]s with the current time, carries out the [`Action`]s in order and calls
//! [`Session::handle`] with [`Event::DeadlineReached`] at [`Session::next_deadline`]. It reads no
//! clock and cannot fail: input that means nothing in the current state is ignored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use loket_be::NationalRegisterNumber;
use time::PrimitiveDateTime;

use crate::config::Check;
use crate::flow::{Collect, Flow, Language, Node, NodeId, PromptSpec, fill};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A keypad digit (RFC 4733 or in-band), `0`–`9`, `*` or `#`.
    Digit(char),
    /// The prompts of the last [`Action::Play`] have all been played (not sent for a playback
    /// that [`Action::StopPlayback`] ended).
    PromptFinished,
    HangUp,
    DeadlineReached,
    /// The number of [`Action::Transfer`] answered: the caller talks to it, and the IVR is over.
    TransferAnswered,
    /// The number of [`Action::Transfer`] could not be reached; the caller is still there.
    TransferFailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Play these in order; a digit may interrupt them when `barge_in`.
    Play { prompts: Vec<PromptRef>, barge_in: bool },
    /// A digit interrupted the prompt.
    StopPlayback,
    /// Put the caller through to this number (E.164), then say whether it answered.
    Transfer { number: String },
    /// The IVR is over; the session takes no more events.
    Finished(Box<Outcome>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptRef {
    pub id: Arc<str>,
    pub language: Language,
}

/// What the IVR learned, for the routing request and the case draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub end: End,
    pub language: Language,
    pub attributes: BTreeMap<String, String>,
    /// Kept apart from the attributes, which get shown and logged; it masks itself.
    pub national_number: Option<NationalRegisterNumber>,
    pub path: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Queue {
        queue: String,
        skills: BTreeMap<String, u8>,
        priority: i32,
    },
    Transfer {
        number: String,
    },
    /// The flow hung up (closed hours, for example).
    Hangup,
    /// The caller hung up during the IVR.
    CallerHungUp,
}

/// One node passed, and what the caller did there. Never the digits of an identification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub node: Arc<str>,
    pub input: Input,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A node that asks nothing (play, set, queue …).
    Passed,
    Choice(char),
    /// Digits collected into an attribute.
    Entered,
    /// A valid national register number.
    Identified,
    Skipped,
    NoInput,
    Invalid,
    /// The last attempt failed: on to the failure branch.
    GaveUp,
    Open,
    Closed,
}

#[derive(Debug)]
enum State {
    /// Playing a `play` or `hangup` node's prompts.
    Playing {
        node: NodeId,
        barge_in: bool,
    },
    /// A menu or a collection: prompting, then waiting for digits.
    Asking {
        node: NodeId,
        attempt: u32,
        digits: String,
        prompting: bool,
        deadline: Option<Instant>,
    },
    /// A `transfer` node's number is being dialled.
    Transferring {
        node: NodeId,
    },
    Finished,
}

#[derive(Debug)]
pub struct Session {
    flow: Arc<Flow>,
    state: State,
    language: Language,
    attributes: BTreeMap<String, String>,
    national_number: Option<NationalRegisterNumber>,
    path: Vec<Step>,
    /// Arrival in local time: opening hours are judged by it, and the 2000+ rule of national
    /// numbers by its year.
    arrived: PrimitiveDateTime,
    /// A collection ended at its maximum length: the terminator the caller was asked to type
    /// after it, if it comes before this deadline, belongs to it and not to the next node.
    trailing_terminator: Option<(char, Instant)>,
}

impl Session {
    pub fn start(flow: Arc<Flow>, arrived: PrimitiveDateTime) -> (Session, Vec<Action>) {
        let start = flow.start;
        let mut session = Session {
            language: flow.language,
            flow,
            state: State::Finished,
            attributes: BTreeMap::new(),
            national_number: None,
            path: Vec::new(),
            arrived,
            trailing_terminator: None,
        };
        let mut actions = Vec::new();
        session.enter(start, &mut actions);
        (session, actions)
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Asking { deadline, .. } => deadline,
            _ => None,
        }
    }

    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        let mut actions = Vec::new();
        if event == Event::HangUp {
            if !self.is_finished() {
                self.finish(End::CallerHungUp, &mut actions);
            }
            return actions;
        }
        if let Event::Digit(key) = event
            && let Some((terminator, until)) = self.trailing_terminator.take()
            && key == terminator
            && now <= until
        {
            return actions;
        }
        match self.state {
            State::Finished => {}
            State::Playing { node, barge_in } => match event {
                Event::PromptFinished => self.after_playing(node, &mut actions),
                Event::Digit(_) if barge_in => {
                    actions.push(Action::StopPlayback);
                    self.after_playing(node, &mut actions);
                }
                _ => {}
            },
            State::Asking { node, .. } => match event {
                Event::PromptFinished => self.prompt_finished(node, now),
                Event::Digit(key) => self.digit(node, key, now, &mut actions),
                Event::DeadlineReached if self.next_deadline().is_some_and(|deadline| now >= deadline) => {
                    self.timed_out(node, &mut actions)
                }
                _ => {}
            },
            State::Transferring { node } => match (event, &self.flow.nodes[node]) {
                (Event::TransferAnswered, Node::Transfer { number, .. }) => {
                    let end = End::Transfer { number: number.clone() };
                    self.finish(end, &mut actions);
                }
                (Event::TransferFailed, Node::Transfer { failed: Some(next), .. }) => {
                    let next = *next;
                    self.enter(next, &mut actions);
                }
                (Event::TransferFailed, _) => self.finish(End::Hangup, &mut actions),
                _ => {}
            },
        }
        actions
    }

    /// Runs nodes that ask nothing until one waits for the caller or the flow ends. Validation
    /// guarantees that this loop meets a waiting node or an end.
    fn enter(&mut self, mut node: NodeId, actions: &mut Vec<Action>) {
        let flow = Arc::clone(&self.flow);
        loop {
            match &flow.nodes[node] {
                Node::Play { prompts, barge_in, .. } => {
                    self.step(node, Input::Passed);
                    actions.push(Action::Play { prompts: self.resolve(prompts), barge_in: *barge_in });
                    self.state = State::Playing { node, barge_in: *barge_in };
                    return;
                }
                Node::Menu { prompts, .. } => return self.ask(node, 0, prompts, None, actions),
                Node::Collect(collect) => return self.ask(node, 0, &collect.prompts, None, actions),
                Node::Set { attributes, next } => {
                    for (name, value) in attributes {
                        if name == "language" {
                            self.language = Language::from_code(value).unwrap_or(self.language);
                        }
                        self.attributes.insert(name.clone(), value.clone());
                    }
                    self.step(node, Input::Passed);
                    node = *next;
                }
                Node::Hours { schedule, open, closed } => {
                    let is_open = schedule.is_open(self.arrived);
                    self.step(node, if is_open { Input::Open } else { Input::Closed });
                    node = if is_open { *open } else { *closed };
                }
                Node::Queue { queue, skills, priority } => {
                    self.step(node, Input::Passed);
                    let fill = |template: &str| fill(template, self.language, &self.attributes);
                    let skills = skills.iter().map(|(skill, level)| (fill(skill), *level)).collect();
                    let end = End::Queue { queue: fill(queue), skills, priority: *priority };
                    return self.finish(end, actions);
                }
                Node::Transfer { number, .. } => {
                    self.step(node, Input::Passed);
                    actions.push(Action::Transfer { number: number.clone() });
                    self.state = State::Transferring { node };
                    return;
                }
                Node::Hangup { prompts } => {
                    self.step(node, Input::Passed);
                    if prompts.is_empty() {
                        return self.finish(End::Hangup, actions);
                    }
                    actions.push(Action::Play { prompts: self.resolve(prompts), barge_in: false });
                    self.state = State::Playing { node, barge_in: false };
                    return;
                }
            }
        }
    }

    fn after_playing(&mut self, node: NodeId, actions: &mut Vec<Action>) {
        match &self.flow.nodes[node] {
            Node::Play { next, .. } => {
                let next = *next;
                self.enter(next, actions);
            }
            _ => self.finish(End::Hangup, actions),
        }
    }

    /// Plays a question (after `before`, the reason for asking again) and waits for its answer.
    fn ask(
        &mut self,
        node: NodeId,
        attempt: u32,
        prompts: &[PromptSpec],
        before: Option<&PromptSpec>,
        actions: &mut Vec<Action>,
    ) {
        let mut refs = before.map(|spec| self.resolve(std::slice::from_ref(spec))).unwrap_or_default();
        refs.extend(self.resolve(prompts));
        actions.push(Action::Play { prompts: refs, barge_in: true });
        self.state = State::Asking { node, attempt, digits: String::new(), prompting: true, deadline: None };
    }

    fn prompt_finished(&mut self, node: NodeId, now: Instant) {
        let wait = match &self.flow.nodes[node] {
            Node::Menu { timeout, .. } => *timeout,
            Node::Collect(collect) => collect.first_digit_timeout,
            _ => return,
        };
        if let State::Asking { prompting, deadline, digits, .. } = &mut self.state {
            if *prompting && digits.is_empty() {
                *deadline = Some(now + wait);
            }
            *prompting = false;
        }
    }

    fn digit(&mut self, node: NodeId, key: char, now: Instant, actions: &mut Vec<Action>) {
        let State::Asking { prompting, .. } = &mut self.state else { return };
        if std::mem::replace(prompting, false) {
            actions.push(Action::StopPlayback);
        }
        let flow = Arc::clone(&self.flow);
        match &flow.nodes[node] {
            Node::Menu { choices, .. } => match choices.iter().find(|(choice, _)| *choice == key) {
                Some(&(_, next)) => {
                    self.step(node, Input::Choice(key));
                    self.enter(next, actions);
                }
                None => self.failed(node, Input::Invalid, actions),
            },
            Node::Collect(collect) => {
                if key == collect.terminator {
                    return self.collected(node, collect, true, actions);
                }
                let State::Asking { digits, deadline, .. } = &mut self.state else { return };
                digits.push(key);
                if digits.len() >= collect.max_digits {
                    self.trailing_terminator = Some((collect.terminator, now + collect.inter_digit_timeout));
                    return self.collected(node, collect, false, actions);
                }
                *deadline = Some(now + collect.inter_digit_timeout);
            }
            _ => {}
        }
    }

    fn timed_out(&mut self, node: NodeId, actions: &mut Vec<Action>) {
        let flow = Arc::clone(&self.flow);
        let entered = matches!(&self.state, State::Asking { digits, .. } if !digits.is_empty());
        match &flow.nodes[node] {
            // Digits then silence: the caller is done typing.
            Node::Collect(collect) if entered => self.collected(node, collect, false, actions),
            _ => self.failed(node, Input::NoInput, actions),
        }
    }

    /// The entry of a collection is complete: check it and move on, or ask again.
    fn collected(&mut self, node: NodeId, collect: &Collect, terminated: bool, actions: &mut Vec<Action>) {
        let State::Asking { digits, .. } = &mut self.state else { return };
        let digits = std::mem::take(digits);
        if digits.is_empty() && terminated {
            self.step(node, Input::Skipped);
            return self.enter(collect.on_skip, actions);
        }
        if digits.len() < collect.min_digits || digits.chars().any(|key| !key.is_ascii_digit()) {
            return self.failed(node, Input::Invalid, actions);
        }
        match collect.check {
            Check::NationalNumber => match NationalRegisterNumber::parse(&digits, self.arrived.year() as u16) {
                Ok(number) => {
                    self.national_number = Some(number);
                    self.step(node, Input::Identified);
                }
                Err(_) => return self.failed(node, Input::Invalid, actions),
            },
            Check::None => {
                self.attributes.insert(collect.into.clone(), digits);
                self.step(node, Input::Entered);
            }
        }
        self.enter(collect.next, actions);
    }

    /// No input or a wrong one: ask again with the reason, or take the failure branch.
    fn failed(&mut self, node: NodeId, input: Input, actions: &mut Vec<Action>) {
        let State::Asking { attempt, .. } = self.state else { return };
        self.step(node, input);
        let flow = Arc::clone(&self.flow);
        let (prompts, retries, invalid, no_input, on_failure) = match &flow.nodes[node] {
            Node::Menu { prompts, retries, invalid, no_input, on_failure, .. } => {
                (prompts, *retries, invalid, no_input, *on_failure)
            }
            Node::Collect(collect) => {
                (&collect.prompts, collect.retries, &collect.invalid, &collect.no_input, collect.on_failure)
            }
            _ => return,
        };
        if attempt >= retries {
            self.step(node, Input::GaveUp);
            return self.enter(on_failure, actions);
        }
        let reason = if input == Input::NoInput { no_input } else { invalid };
        self.ask(node, attempt + 1, prompts, Some(reason), actions);
    }

    fn finish(&mut self, end: End, actions: &mut Vec<Action>) {
        self.state = State::Finished;
        actions.push(Action::Finished(Box::new(Outcome {
            end,
            language: self.language,
            attributes: std::mem::take(&mut self.attributes),
            national_number: self.national_number.take(),
            path: std::mem::take(&mut self.path),
        })));
    }

    fn step(&mut self, node: NodeId, input: Input) {
        self.path.push(Step { node: Arc::clone(&self.flow.names[node]), input });
    }

    fn resolve(&self, prompts: &[PromptSpec]) -> Vec<PromptRef> {
        prompts
            .iter()
            .map(|spec| PromptRef { id: Arc::clone(&spec.id), language: spec.language.unwrap_or(self.language) })
            .collect()
    }
}
