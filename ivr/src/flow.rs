//! Validated flows: every reference resolved, every prompt present in NL, FR and EN, every node
//! reachable and no loop that never waits for the caller. A [`Flow`] exists only once all of that
//! holds, so the interpreter needs no checks of its own.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use loket_be::Language;
use loket_be::PhoneNumber;

use crate::config::{self, Check, File, FlowConfig, NodeConfig};
use crate::numbers;
use crate::schedule::Schedule;
use crate::waiting::{Offer, WaitingConfig};

/// A prompt to play: in the caller's language unless the flow pinned one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PromptSpec {
    pub id: Arc<str>,
    pub language: Option<Language>,
}

pub(crate) type NodeId = usize;

#[derive(Debug)]
pub(crate) enum Node {
    Play {
        prompts: Vec<PromptSpec>,
        next: NodeId,
        barge_in: bool,
    },
    Menu {
        prompts: Vec<PromptSpec>,
        choices: Vec<(char, NodeId)>,
        timeout: Duration,
        retries: u32,
        invalid: PromptSpec,
        no_input: PromptSpec,
        on_failure: NodeId,
    },
    Collect(Box<Collect>),
    Set {
        attributes: Vec<(String, String)>,
        next: NodeId,
    },
    Hours {
        schedule: Arc<Schedule>,
        open: NodeId,
        closed: NodeId,
    },
    Queue {
        queue: String,
        skills: BTreeMap<String, u8>,
        priority: i32,
    },
    Transfer {
        number: String,
        failed: Option<NodeId>,
    },
    Hangup {
        prompts: Vec<PromptSpec>,
    },
}

#[derive(Debug)]
pub(crate) struct Collect {
    pub prompts: Vec<PromptSpec>,
    pub into: String,
    pub min_digits: usize,
    pub max_digits: usize,
    pub terminator: char,
    pub first_digit_timeout: Duration,
    pub inter_digit_timeout: Duration,
    pub retries: u32,
    pub check: Check,
    pub invalid: PromptSpec,
    pub no_input: PromptSpec,
    pub next: NodeId,
    pub on_failure: NodeId,
    pub on_skip: NodeId,
}

/// One dialled number's menu tree.
#[derive(Debug)]
pub struct Flow {
    pub(crate) name: String,
    pub(crate) language: Language,
    pub(crate) start: NodeId,
    pub(crate) nodes: Vec<Node>,
    pub(crate) names: Vec<Arc<str>>,
}

impl Flow {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// All flows of a deployment with their prompt catalog.
#[derive(Debug)]
pub struct Ivr {
    prompts: BTreeMap<String, [String; 3]>,
    flows: Vec<Arc<Flow>>,
    /// E.164 dialled number → index in `flows`.
    numbers: HashMap<String, usize>,
    waiting: Option<WaitingConfig>,
}

/// One problem in the IVR configuration, placed as precisely as it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// `flow "main", node "service"`, `prompt "welcome"`, `schedule "population"`, or empty.
    pub place: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.place.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.place, self.message)
        }
    }
}

impl Ivr {
    /// Reads and validates a configuration; every problem found is returned, not just the first.
    pub fn parse(file: &str, text: &str) -> Result<Ivr, Vec<ConfigError>> {
        let error = |place: String, message: String| ConfigError { file: file.to_owned(), place, message };
        let parsed: File = toml::from_str(text).map_err(|e| vec![error(String::new(), e.to_string())])?;
        if parsed.version != config::VERSION {
            return Err(vec![error(
                "version".to_owned(),
                format!("this loket reads version {}, not {}", config::VERSION, parsed.version),
            )]);
        }
        let mut errors = Vec::new();
        let mut prompts = BTreeMap::new();
        for (id, texts) in &parsed.prompts {
            let mut found: [String; 3] = Default::default();
            for (slot, (language, text)) in
                found.iter_mut().zip([(Language::Nl, &texts.nl), (Language::Fr, &texts.fr), (Language::En, &texts.en)])
            {
                match text.as_deref().map(str::trim).filter(|text| !text.is_empty()) {
                    Some(text) => *slot = text.to_owned(),
                    None => errors.push(error(format!("prompt {id:?}"), format!("no text in {}", language.code()))),
                }
            }
            prompts.insert(id.clone(), found);
        }
        // Numbers are spoken from prompts of their own, written here rather than in every file.
        for n in 0..=numbers::LARGEST {
            prompts
                .entry(numbers::prompt_id(n))
                .or_insert_with(|| Language::ALL.map(|language| numbers::words(n, language)));
        }
        let waiting = parsed.waiting.as_ref().map(|waiting| WaitingConfig {
            announce_every: Duration::from_secs(u64::from(waiting.announce_every_secs)),
            position_prompt: Arc::from(waiting.position_prompt.as_str()),
            wait_prompt: Arc::from(waiting.wait_prompt.as_str()),
            offer: waiting.offer.as_ref().map(|offer| Offer {
                after: Duration::from_secs(u64::from(offer.after_secs)),
                prompt: Arc::from(offer.prompt.as_str()),
                key: single_key(&offer.key).unwrap_or_default(),
                timeout: Duration::from_secs(u64::from(offer.timeout_secs)),
            }),
        });
        if let Some(waiting) = &parsed.waiting {
            let mut fail = |message: String| errors.push(error("waiting".to_owned(), message));
            let offer_prompt = waiting.offer.as_ref().map(|offer| offer.prompt.as_str());
            let used = [waiting.position_prompt.as_str(), waiting.wait_prompt.as_str(), "more-than"];
            for id in used.into_iter().chain(offer_prompt) {
                if !prompts.contains_key(id) {
                    fail(format!("unknown prompt {id:?}"));
                }
            }
            if let Some(offer) = waiting.offer.as_ref().filter(|offer| single_key(&offer.key).is_none()) {
                fail(format!("offer key {:?} is not one key of the keypad", offer.key));
            }
            if !(10..=600).contains(&waiting.announce_every_secs) {
                fail(format!("`announce_every_secs` must be 10 to 600, not {}", waiting.announce_every_secs));
            }
        }
        let mut schedules = HashMap::new();
        for (name, schedule) in &parsed.schedules {
            match Schedule::parse(schedule) {
                Ok(schedule) => {
                    schedules.insert(name.as_str(), Arc::new(schedule));
                }
                Err(message) => errors.push(error(format!("schedule {name:?}"), message)),
            }
        }
        let mut flows = Vec::new();
        let mut numbers = HashMap::new();
        for flow in &parsed.flows {
            let place = |node: &str| match node {
                "" => format!("flow {:?}", flow.name),
                node => format!("flow {:?}, node {node:?}", flow.name),
            };
            let mut report = |node: &str, message: String| errors.push(error(place(node), message));
            if flows.iter().any(|known: &Arc<Flow>| known.name == flow.name) {
                report("", "a second flow with this name".to_owned());
            }
            for number in &flow.numbers {
                match PhoneNumber::parse(number) {
                    Ok(parsed) => {
                        if numbers.insert(parsed.e164().to_owned(), flows.len()).is_some() {
                            report("", format!("the number {number} belongs to another flow too"));
                        }
                    }
                    Err(_) => report("", format!("{number:?} is not a phone number")),
                }
            }
            if let Some(compiled) = compile(flow, &prompts, &schedules, &mut report) {
                flows.push(Arc::new(compiled));
            }
        }
        if errors.is_empty() { Ok(Ivr { prompts, flows, numbers, waiting }) } else { Err(errors) }
    }

    /// The flow answering a dialled number, in any form `PhoneNumber` reads.
    pub fn flow_for(&self, dialled: &str) -> Option<Arc<Flow>> {
        let number = PhoneNumber::parse(dialled).ok()?;
        self.numbers.get(number.e164()).map(|&index| Arc::clone(&self.flows[index]))
    }

    pub fn flows(&self) -> &[Arc<Flow>] {
        &self.flows
    }

    pub fn waiting(&self) -> Option<&WaitingConfig> {
        self.waiting.as_ref()
    }

    /// Prompt id → its text in NL, FR and EN (what the recording script speaks).
    pub fn prompt_texts(&self) -> impl Iterator<Item = (&str, Language, &str)> {
        self.prompts.iter().flat_map(|(id, texts)| {
            Language::ALL.into_iter().zip(texts).map(move |(language, text)| (id.as_str(), language, text.as_str()))
        })
    }
}

fn compile(
    flow: &FlowConfig,
    prompts: &BTreeMap<String, [String; 3]>,
    schedules: &HashMap<&str, Arc<Schedule>>,
    report: &mut dyn FnMut(&str, String),
) -> Option<Flow> {
    let names: Vec<Arc<str>> = flow.nodes.keys().map(|name| Arc::from(name.as_str())).collect();
    let index: HashMap<&str, NodeId> = flow.nodes.keys().enumerate().map(|(i, name)| (name.as_str(), i)).collect();
    let mut failed = false;
    let mut fail = |node: &str, message: String| {
        failed = true;
        report(node, message);
    };
    let language = Language::from_code(&flow.language).unwrap_or_else(|| {
        fail("", format!("unknown language {:?} (nl, fr or en)", flow.language));
        Language::Nl
    });
    let start = index.get(flow.start.as_str()).copied().unwrap_or_else(|| {
        fail("", format!("the start node {:?} does not exist", flow.start));
        0
    });
    // Attributes some node sets, for the placeholders of queue nodes.
    let attributes: Vec<&str> = flow
        .nodes
        .values()
        .flat_map(|node| match node {
            NodeConfig::Set { attributes, .. } => attributes.keys().map(String::as_str).collect(),
            NodeConfig::Collect { into, check: Check::None, .. } => vec![into.as_str()],
            _ => Vec::new(),
        })
        .collect();
    let mut nodes = Vec::with_capacity(flow.nodes.len());
    for (name, node) in &flow.nodes {
        // The closures below share this list; its messages are reported after the node.
        let problems = RefCell::new(Vec::<String>::new());
        let problem = |message: String| problems.borrow_mut().push(message);
        let link = |field: &str, target: &str| -> NodeId {
            index.get(target).copied().unwrap_or_else(|| {
                problem(format!("`{field}` names {target:?}, which is not a node of this flow"));
                0
            })
        };
        let prompt = |reference: &String| -> PromptSpec {
            let (id, language) = match reference.split_once('@') {
                Some((id, code)) => {
                    let language = Language::from_code(code);
                    if language.is_none() {
                        problem(format!("prompt {reference:?}: unknown language {code:?}"));
                    }
                    (id, language)
                }
                None => (reference.as_str(), None),
            };
            if !prompts.contains_key(id) {
                problem(format!("unknown prompt {id:?}"));
            }
            PromptSpec { id: Arc::from(id), language }
        };
        let seconds = |value: u32, field: &str| -> Duration {
            if value == 0 || value > 60 {
                problem(format!("`{field}` must be 1 to 60 seconds, not {value}"));
            }
            Duration::from_secs(u64::from(value))
        };
        let compiled = match node {
            NodeConfig::Play { prompts, next, barge_in } => Node::Play {
                prompts: prompts.iter().map(prompt).collect(),
                next: link("next", next),
                barge_in: *barge_in,
            },
            NodeConfig::Menu {
                prompts,
                choices,
                timeout_secs,
                retries,
                invalid_prompt,
                no_input_prompt,
                on_failure,
            } => {
                let mut compiled_choices = Vec::with_capacity(choices.len());
                for (key, target) in choices {
                    match single_key(key) {
                        Some(digit) => compiled_choices.push((digit, link(&format!("choices.{key}"), target))),
                        None => problem(format!("choice {key:?} is not one key of the keypad")),
                    }
                }
                if compiled_choices.is_empty() {
                    problem("a menu needs at least one choice".to_owned());
                }
                Node::Menu {
                    prompts: prompts.iter().map(prompt).collect(),
                    choices: compiled_choices,
                    timeout: seconds(*timeout_secs, "timeout_secs"),
                    retries: *retries,
                    invalid: prompt(invalid_prompt),
                    no_input: prompt(no_input_prompt),
                    on_failure: link("on_failure", on_failure),
                }
            }
            NodeConfig::Collect {
                prompts,
                into,
                min_digits,
                max_digits,
                terminator,
                first_digit_timeout_secs,
                inter_digit_timeout_secs,
                retries,
                check,
                invalid_prompt,
                no_input_prompt,
                next,
                on_failure,
                on_skip,
            } => {
                if *max_digits == 0 || *max_digits > 32 || min_digits > max_digits {
                    problem(format!(
                        "digits must be 1 to 32 with min_digits ≤ max_digits, not {min_digits}..{max_digits}"
                    ));
                }
                if *check == Check::NationalNumber && *max_digits < 11 {
                    problem("a national register number has 11 digits: max_digits must allow them".to_owned());
                }
                let terminator = match single_key(terminator) {
                    Some(key @ ('#' | '*')) => key,
                    _ => {
                        problem(format!("terminator {terminator:?} must be # or *"));
                        '#'
                    }
                };
                if into.trim().is_empty() {
                    problem("`into` names no attribute".to_owned());
                }
                let on_failure = link("on_failure", on_failure);
                Node::Collect(Box::new(Collect {
                    prompts: prompts.iter().map(prompt).collect(),
                    into: into.clone(),
                    min_digits: *min_digits as usize,
                    max_digits: *max_digits as usize,
                    terminator,
                    first_digit_timeout: seconds(*first_digit_timeout_secs, "first_digit_timeout_secs"),
                    inter_digit_timeout: seconds(*inter_digit_timeout_secs, "inter_digit_timeout_secs"),
                    retries: *retries,
                    check: *check,
                    invalid: prompt(invalid_prompt),
                    no_input: prompt(no_input_prompt),
                    next: link("next", next),
                    on_failure,
                    on_skip: on_skip.as_deref().map_or(on_failure, |target| link("on_skip", target)),
                }))
            }
            NodeConfig::Set { attributes, next } => {
                if let Some(code) = attributes.get("language").filter(|code| Language::from_code(code).is_none()) {
                    problem(format!("unknown language {code:?} (nl, fr or en)"));
                }
                Node::Set { attributes: attributes.clone().into_iter().collect(), next: link("next", next) }
            }
            NodeConfig::Hours { schedule, open, closed } => {
                let found = schedules.get(schedule.as_str()).cloned();
                if found.is_none() {
                    problem(format!("unknown schedule {schedule:?}"));
                }
                Node::Hours {
                    schedule: found.unwrap_or_default(),
                    open: link("open", open),
                    closed: link("closed", closed),
                }
            }
            NodeConfig::Queue { queue, skills, priority } => {
                if queue.trim().is_empty() {
                    problem("`queue` is empty".to_owned());
                }
                for name in skills.keys().chain([queue]).flat_map(|text| placeholders(text)) {
                    if name != "language" && !attributes.contains(&name) {
                        problem(format!("{{{name}}} names no attribute that this flow sets"));
                    }
                }
                Node::Queue { queue: queue.clone(), skills: skills.clone(), priority: *priority }
            }
            NodeConfig::Transfer { number, failed } => {
                let failed = failed.as_deref().map(|target| link("failed", target));
                match PhoneNumber::parse(number) {
                    Ok(parsed) => Node::Transfer { number: parsed.e164().to_owned(), failed },
                    Err(_) => {
                        problem(format!("{number:?} is not a phone number"));
                        Node::Transfer { number: String::new(), failed }
                    }
                }
            }
            NodeConfig::Hangup { prompts } => Node::Hangup { prompts: prompts.iter().map(prompt).collect() },
        };
        for message in problems.take() {
            fail(name, message);
        }
        nodes.push(compiled);
    }
    if failed {
        return None;
    }
    let flow = Flow { name: flow.name.clone(), language, start, nodes, names };
    check_graph(&flow, &mut |node, message| report(node, message));
    Some(flow)
}

/// Every node reachable from the start, and no cycle through nodes that do not wait for the
/// caller (play, set, hours): such a loop would spin or talk forever.
fn check_graph(flow: &Flow, report: &mut dyn FnMut(&str, String)) {
    let mut reached = vec![false; flow.nodes.len()];
    let mut stack = vec![flow.start];
    while let Some(node) = stack.pop() {
        if !std::mem::replace(&mut reached[node], true) {
            stack.extend(successors(&flow.nodes[node]));
        }
    }
    for (node, reached) in reached.iter().enumerate() {
        if !reached {
            report(&flow.names[node], "no path from the start reaches this node".to_owned());
        }
    }
    // Depth-first search over the non-waiting nodes; grey = on the current path.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        White,
        Grey,
        Black,
    }
    let waits = |node: &Node| matches!(node, Node::Menu { .. } | Node::Collect(_));
    let mut marks = vec![Mark::White; flow.nodes.len()];
    for root in 0..flow.nodes.len() {
        if marks[root] != Mark::White || waits(&flow.nodes[root]) {
            continue;
        }
        let mut path: Vec<(NodeId, Vec<NodeId>)> = vec![(root, successors(&flow.nodes[root]))];
        marks[root] = Mark::Grey;
        while let Some((node, pending)) = path.last_mut() {
            let node = *node;
            match pending.pop() {
                Some(next) if waits(&flow.nodes[next]) => {}
                Some(next) => match marks[next] {
                    Mark::Grey => {
                        report(&flow.names[next], "a loop through this node never waits for the caller".to_owned());
                        return;
                    }
                    Mark::White => {
                        marks[next] = Mark::Grey;
                        path.push((next, successors(&flow.nodes[next])));
                    }
                    Mark::Black => {}
                },
                None => {
                    marks[node] = Mark::Black;
                    path.pop();
                }
            }
        }
    }
}

fn successors(node: &Node) -> Vec<NodeId> {
    match node {
        Node::Play { next, .. } | Node::Set { next, .. } => vec![*next],
        Node::Menu { choices, on_failure, .. } => choices.iter().map(|(_, next)| *next).chain([*on_failure]).collect(),
        Node::Collect(collect) => vec![collect.next, collect.on_failure, collect.on_skip],
        Node::Hours { open, closed, .. } => vec![*open, *closed],
        Node::Transfer { failed, .. } => failed.iter().copied().collect(),
        Node::Queue { .. } | Node::Hangup { .. } => Vec::new(),
    }
}

/// The `{name}`s in a queue or skill name.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split('{').skip(1).filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
}

/// A queue or skill name with its `{name}`s replaced: `{language}` by the caller's language, the
/// others by attributes (empty when the caller's path did not set them).
pub(crate) fn fill(template: &str, language: Language, attributes: &BTreeMap<String, String>) -> String {
    let mut filled = String::with_capacity(template.len());
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('{') {
        filled.push_str(before);
        match after.split_once('}') {
            Some((name, tail)) => {
                filled.push_str(if name == "language" {
                    language.code()
                } else {
                    attributes.get(name).map_or("", String::as_str)
                });
                rest = tail;
            }
            None => {
                filled.push('{');
                rest = after;
            }
        }
    }
    filled.push_str(rest);
    filled
}

fn single_key(text: &str) -> Option<char> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(key @ ('0'..='9' | '*' | '#')), None) => Some(key),
        _ => None,
    }
}
