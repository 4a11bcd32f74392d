//! The routing decisions as plain functions: score, relaxation schedule, eligibility, and the
//! order in which agents and items are preferred. No state, no clock: `now` is an argument.

use std::cmp::Ordering;

use crate::core::{AgentRecord, WorkItem};
use crate::model::{
    AgentProfile, Channel, Presence, QueueConfig, RouterSettings, SkillRequirement, Timestamp, duration_millis,
};

/// `enqueued_at − priority × step − boost`, in milliseconds: lower is served first.
///
/// One priority point is worth `priority_step` of waiting, so priority wins but low-priority work
/// still ages forward and never starves (the Genesys conversation score, anchors §2).
pub fn score(settings: &RouterSettings, item: &WorkItem) -> i64 {
    let priority_millis = i64::from(item.spec.priority).saturating_mul(duration_millis(settings.priority_step));
    item.enqueued_at.0.saturating_sub(priority_millis).saturating_sub(item.boost_millis)
}

/// Whether the requirement still applies at `now`: required skills always, relaxable ones until
/// their `drop_after` has passed since the item was enqueued.
pub fn active_requirements<'item>(
    queue: Option<&'item QueueConfig>,
    item: &'item WorkItem,
    now: Timestamp,
) -> impl Iterator<Item = &'item SkillRequirement> {
    let defaults = queue.map(|queue| queue.default_skills.as_slice()).unwrap_or(&[]);
    let relaxable = item
        .spec
        .relaxable_skills
        .iter()
        .filter(move |relaxable| item.enqueued_at.plus(relaxable.drop_after) > now)
        .map(|relaxable| &relaxable.requirement);
    defaults.iter().chain(item.spec.required_skills.iter()).chain(relaxable)
}

/// The next moment after `after` at which a relaxable skill drops.
pub fn next_relaxation(item: &WorkItem, after: Timestamp) -> Option<Timestamp> {
    item.spec
        .relaxable_skills
        .iter()
        .map(|relaxable| item.enqueued_at.plus(relaxable.drop_after))
        .filter(|drop_at| *drop_at > after)
        .min()
}

/// When every relaxable skill has dropped, plus the grace after which an item that no logged-in
/// member could ever take is sent to the supervisor queue.
pub fn unroutable_check_at(settings: &RouterSettings, item: &WorkItem) -> Timestamp {
    let last_relaxation = item
        .spec
        .relaxable_skills
        .iter()
        .map(|relaxable| item.enqueued_at.plus(relaxable.drop_after))
        .max()
        .unwrap_or(item.enqueued_at);
    last_relaxation.max(item.queue_entered_at).plus(settings.unroutable_after)
}

/// Skills and language only: could this agent ever take the item once everything relaxable has
/// dropped? Used for the unroutable check, so state and capacity don't matter.
pub fn could_ever_take(queue: Option<&QueueConfig>, item: &WorkItem, agent: &AgentProfile) -> bool {
    let never = Timestamp(i64::MAX);
    has_language(item, agent)
        && active_requirements(queue, item, never).all(|requirement| meets(agent, requirement))
        && agent.queues.contains(&item.queue)
}

/// Everything an offer needs: the agent is routable, a member of the item's queue, not excluded,
/// holds the language and the active skills, and has room for the item.
pub fn is_eligible(queue: Option<&QueueConfig>, item: &WorkItem, agent: &AgentRecord, now: Timestamp) -> bool {
    is_routable(agent)
        && agent.profile.queues.contains(&item.queue)
        && !item.excluded.contains(&agent.profile.agent)
        && has_language(item, &agent.profile)
        && active_requirements(queue, item, now).all(|requirement| meets(&agent.profile, requirement))
        && has_room(agent, item)
}

/// Present, not holding an offer, not in after-call work.
pub fn is_routable(agent: &AgentRecord) -> bool {
    agent.presence == Presence::Available && agent.offered_item().is_none() && agent.after_work_until.is_none()
}

/// Whether the agent has room for the item. Work on a channel the item's channel may interrupt
/// does not count against it.
pub fn has_room(agent: &AgentRecord, item: &WorkItem) -> bool {
    fits(agent, item.spec.channel, item.spec.size)
}

/// The channels the agent has room for an item of size 1 of.
pub fn room(agent: &AgentRecord) -> ChannelSet {
    let costs = agent.profile.unit_costs();
    let mut set = ChannelSet::default();
    for channel in Channel::ALL {
        if fits_cost(agent, channel, costs[channel as usize]) {
            set.insert(channel);
        }
    }
    set
}

/// A small set of channels, copied freely on the hot path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelSet(u8);

impl ChannelSet {
    pub fn insert(&mut self, channel: Channel) {
        self.0 |= 1 << channel as u8;
    }

    pub fn contains(self, channel: Channel) -> bool {
        self.0 & (1 << channel as u8) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Channel> {
        Channel::ALL.into_iter().filter(move |channel| self.contains(*channel))
    }
}

fn fits(agent: &AgentRecord, incoming: Channel, size: u32) -> bool {
    fits_cost(agent, incoming, agent.profile.cost(incoming, size))
}

fn fits_cost(agent: &AgentRecord, incoming: Channel, cost: u32) -> bool {
    if agent.profile.interruptions.is_empty() {
        return agent.used_capacity().saturating_add(cost) <= agent.profile.capacity;
    }
    let blocking: u32 = agent
        .work
        .iter()
        .filter(|held| !agent.profile.may_interrupt(incoming, held.channel))
        .map(|held| held.cost)
        .sum();
    blocking.saturating_add(cost) <= agent.profile.capacity
}

/// Longest idle first; on equal idle time the higher summed level on the item's active skills.
pub fn prefer_agent(
    queue: Option<&QueueConfig>,
    item: &WorkItem,
    now: Timestamp,
    left: &AgentRecord,
    right: &AgentRecord,
) -> Ordering {
    left.idle_since
        .cmp(&right.idle_since)
        .then_with(|| {
            let left_level = level_sum(queue, item, now, &left.profile);
            let right_level = level_sum(queue, item, now, &right.profile);
            right_level.cmp(&left_level)
        })
        .then_with(|| left.profile.agent.cmp(&right.profile.agent))
}

fn level_sum(queue: Option<&QueueConfig>, item: &WorkItem, now: Timestamp, agent: &AgentProfile) -> u32 {
    active_requirements(queue, item, now)
        .map(|requirement| u32::from(agent.skills.get(&requirement.skill).copied().unwrap_or(0)))
        .sum()
}

fn has_language(item: &WorkItem, agent: &AgentProfile) -> bool {
    match &item.spec.language {
        Some(language) => agent.skills.get(language).is_some_and(|level| *level >= 1),
        None => true,
    }
}

fn meets(agent: &AgentProfile, requirement: &SkillRequirement) -> bool {
    agent.skills.get(&requirement.skill).is_some_and(|level| *level >= requirement.min_level)
}
