//! The vocabulary of routing: ids, time, channels, and the plain configuration structs that the CRM
//! loads from its database and hands over (queues, agent profiles, router settings).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Wall-clock milliseconds since the Unix epoch.
///
/// Routing uses wall-clock time rather than `Instant` because the Redis state is shared by several
/// nodes, and a lease written by one node must mean the same moment to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Timestamp {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp(i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
    }

    pub fn plus(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_millis(duration)))
    }

    /// The time from `earlier` to `self`, zero when `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

pub(crate) fn duration_millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WorkItemId(pub u64);

/// The CRM user id of the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AgentId(pub i64);

/// A queue's configuration name, e.g. `population-nl-l1`.
///
/// `Arc<str>` because queue ids are copied into every event and index entry on the hot path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QueueId(pub Arc<str>);

/// A skill name such as `nl`, `population` or `expertise`. Languages are skills too.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Skill(pub Arc<str>);

impl QueueId {
    pub fn new(name: &str) -> QueueId {
        QueueId(Arc::from(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Skill {
    pub fn new(name: &str) -> Skill {
        Skill(Arc::from(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Display for WorkItemId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Voice,
    Email,
    WebForm,
    Facebook,
    Chat,
    Callback,
}

impl Channel {
    /// The name used in keys and JSON, as serde spells it.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Email => "email",
            Channel::WebForm => "web-form",
            Channel::Facebook => "facebook",
            Channel::Chat => "chat",
            Channel::Callback => "callback",
        }
    }

    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|channel| channel.name() == name)
    }

    pub const ALL: [Channel; 6] =
        [Channel::Voice, Channel::Email, Channel::WebForm, Channel::Facebook, Channel::Chat, Channel::Callback];
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillRequirement {
    pub skill: Skill,
    pub min_level: u8,
}

/// A skill that is dropped from the requirements once the item has waited `drop_after`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelaxableSkill {
    pub requirement: SkillRequirement,
    pub drop_after: Duration,
}

/// What the IVR or a channel adapter hands to the router.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWorkItem {
    pub channel: Channel,
    pub queue: QueueId,
    pub required_skills: Vec<SkillRequirement>,
    pub relaxable_skills: Vec<RelaxableSkill>,
    /// Never relaxed: an agent must hold this skill at level 1 or more.
    pub language: Option<Skill>,
    /// Higher is more urgent; each point is worth [`RouterSettings::priority_step`] of waiting.
    pub priority: i32,
    /// Multiplies the agent's channel weight; 1 for an ordinary item.
    pub size: u32,
    pub attributes: BTreeMap<String, String>,
    pub case_id: Option<i64>,
}

impl NewWorkItem {
    pub fn new(channel: Channel, queue: QueueId) -> NewWorkItem {
        NewWorkItem {
            channel,
            queue,
            required_skills: Vec::new(),
            relaxable_skills: Vec::new(),
            language: None,
            priority: 0,
            size: 1,
            attributes: BTreeMap::new(),
            case_id: None,
        }
    }
}

/// Per-queue choice of service-level formula (anchors §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceLevelFormula {
    /// Asterisk SL: answered within the threshold / answered.
    AnsweredWithin,
    /// Asterisk SL2: (answered within + abandoned within) / (answered + abandoned).
    AnsweredOrAbandonedWithin,
    /// Amazon Connect: removed from queue (answered, abandoned or moved out) within / queued.
    RemovedFromQueueWithin,
    /// Genesys: (answered − answered late) / (answered + abandoned [+ flow-outs] [− short abandons]
    /// [− abandons]).
    Genesys { include_flow_outs: bool, exclude_short_abandons: Option<Duration>, exclude_abandons: bool },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLevelTarget {
    pub threshold: Duration,
    pub formula: ServiceLevelFormula,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    pub id: QueueId,
    pub name: String,
    /// Added to every item's required skills when it enters this queue.
    pub default_skills: Vec<SkillRequirement>,
    /// Where items go that no agent of this queue can ever take.
    pub supervisor_queue: Option<QueueId>,
    pub service_level: ServiceLevelTarget,
}

impl QueueConfig {
    pub fn new(id: QueueId) -> QueueConfig {
        QueueConfig {
            name: id.as_str().to_owned(),
            id,
            default_skills: Vec::new(),
            supervisor_queue: None,
            service_level: ServiceLevelTarget {
                threshold: Duration::from_secs(20),
                formula: ServiceLevelFormula::AnsweredWithin,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProfile {
    pub agent: AgentId,
    /// Levels 0–10; a language counts as held from level 1.
    pub skills: BTreeMap<Skill, u8>,
    pub queues: Vec<QueueId>,
    /// Total capacity units, e.g. 10.
    pub capacity: u32,
    /// Units one item of the channel takes; a channel without a weight takes the whole capacity.
    pub channel_weights: BTreeMap<Channel, u32>,
    /// `interruptions[c]` lists the channels whose work does not block an offer on channel `c`,
    /// e.g. a call may interrupt emails (the Genesys "interrupted by" matrix).
    pub interruptions: BTreeMap<Channel, Vec<Channel>>,
    /// After-call work after finishing an item of the channel, ended by the agent or this timeout.
    pub after_work: BTreeMap<Channel, Duration>,
}

impl AgentProfile {
    pub fn new(agent: AgentId) -> AgentProfile {
        AgentProfile {
            agent,
            skills: BTreeMap::new(),
            queues: Vec::new(),
            capacity: 1,
            channel_weights: BTreeMap::new(),
            interruptions: BTreeMap::new(),
            after_work: BTreeMap::new(),
        }
    }

    /// Capacity units an item takes from this agent.
    pub fn cost(&self, channel: Channel, size: u32) -> u32 {
        let weight = self.channel_weights.get(&channel).copied().unwrap_or(self.capacity);
        weight.saturating_mul(size.max(1))
    }

    /// What an item of size 1 of each channel costs, indexed by `Channel as usize`: one walk over
    /// the weights instead of a search per channel.
    pub fn unit_costs(&self) -> [u32; Channel::ALL.len()] {
        let mut costs = [self.capacity; Channel::ALL.len()];
        for (channel, weight) in &self.channel_weights {
            costs[*channel as usize] = *weight;
        }
        costs
    }

    pub fn may_interrupt(&self, incoming: Channel, held: Channel) -> bool {
        self.interruptions.get(&incoming).is_some_and(|interruptible| interruptible.contains(&held))
    }
}

/// What the agent chose; the router derives [`AgentState`] from it and from the agent's work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Presence {
    Offline,
    Available,
    Away { reason: String },
}

/// The reason the router gives when it takes an agent out of routing after missed offers.
pub const AWAY_REASON_MISSED: &str = "missed";

/// The agent state that boards and KPIs see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentState {
    Offline,
    Available,
    Away { reason: String },
    Offered { item: WorkItemId },
    Busy,
    AfterWork { until: Timestamp },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterSettings {
    /// How much waiting one priority point is worth (Genesys uses 60 s).
    pub priority_step: Duration,
    /// How long an agent has to accept an offer.
    pub offer_timeout: Duration,
    /// Consecutive missed offers after which the agent is set away with reason `missed`.
    pub max_missed_offers: u32,
    /// How long after its last relaxation step an item that no logged-in member could ever take
    /// waits before it moves to the supervisor queue.
    pub unroutable_after: Duration,
}

impl Default for RouterSettings {
    fn default() -> RouterSettings {
        RouterSettings {
            priority_step: Duration::from_secs(60),
            offer_timeout: Duration::from_secs(20),
            max_missed_offers: 2,
            unroutable_after: Duration::from_secs(10),
        }
    }
}
