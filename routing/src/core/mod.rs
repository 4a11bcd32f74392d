//! The pure routing core: a state machine over work items and agents.
//!
//! [`RouterCore::handle`] takes `now` and one [`Input`], changes the records, and queues
//! [`Action`]s and [`RoutingEvent`]s for the caller to drain; [`RouterCore::next_deadline`] says
//! when to call [`RouterCore::handle_timeout`] (offer leases, relaxation steps, the unroutable
//! check, after-call-work timeouts). It never reads a clock, spawns, locks or does IO.
//!
//! Indices (waiting items per queue by score, routable agents per queue by idle time, deadlines)
//! are derived from the records, so that a core can be built from records ([`RouterCore::from_records`])
//! and kept in step with another core by copying records ([`RouterCore::put_item`],
//! [`RouterCore::put_agent`]): the Redis store keeps a replica this way, and learns which records a
//! step changed from the core's journal ([`RouterCore::keep_journal`]).

pub mod decide;

use std::collections::BTreeSet;

use rustc_hash::FxHashMap as HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::RoutingError;
use crate::event::{EventKind, RoutingEvent, TransferReason};
use crate::model::{
    AWAY_REASON_MISSED, AgentId, AgentProfile, AgentState, Channel, NewWorkItem, Presence, QueueConfig, QueueId,
    RouterSettings, Timestamp, WorkItemId, duration_millis,
};

/// Everything that can happen to the router after an item arrived, in the past tense.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    AgentLoggedIn { profile: AgentProfile, presence: Presence },
    PresenceChanged { agent: AgentId, presence: Presence },
    ProfileChanged { profile: AgentProfile },
    OfferAccepted { agent: AgentId, item: WorkItemId },
    OfferDeclined { agent: AgentId, item: WorkItemId },
    WorkCompleted { agent: AgentId, item: WorkItemId },
    AfterWorkDone { agent: AgentId },
    ItemClaimed { agent: AgentId, item: WorkItemId },
    CallerAbandoned { item: WorkItemId },
    ItemTransferred { agent: AgentId, item: WorkItemId, to: QueueId },
    ItemReassigned { item: WorkItemId, to: AgentId },
    PriorityChanged { item: WorkItemId, priority: i32 },
    ItemBoosted { item: WorkItemId, by: Duration },
    ItemMoved { item: WorkItemId, to: QueueId },
}

/// What the caller must do, in the imperative.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Show the item to the agent; it is theirs until `lease_until` unless they accept.
    OfferItem {
        item: WorkItemId,
        agent: AgentId,
        queue: QueueId,
        channel: Channel,
        lease_until: Timestamp,
    },
    /// Take an offer or an assignment away from the agent's screen (abandon, reassign, move).
    WithdrawItem {
        item: WorkItemId,
        agent: AgentId,
    },
    ShowAgentState {
        agent: AgentId,
        state: AgentState,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    pub id: WorkItemId,
    pub spec: NewWorkItem,
    /// The current queue; `spec.queue` is where it started.
    pub queue: QueueId,
    pub enqueued_at: Timestamp,
    pub queue_entered_at: Timestamp,
    pub boost_millis: i64,
    pub state: ItemState,
    /// Agents who declined or missed this item; they are not offered it again.
    pub excluded: Vec<AgentId>,
    /// Relaxation steps up to this moment have been acted on.
    pub relaxed_until: Timestamp,
    pub unroutable_checked: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemState {
    Waiting,
    Offered { agent: AgentId, lease_until: Timestamp },
    Assigned { agent: AgentId },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub profile: AgentProfile,
    pub presence: Presence,
    /// Offered and accepted items; an offer reserves its capacity until answered.
    pub work: Vec<HeldWork>,
    pub after_work_until: Option<Timestamp>,
    pub missed_offers: u32,
    /// When the agent last became free, accepted work, or came back: longest idle goes first.
    pub idle_since: Timestamp,
    pub shown_state: AgentState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldWork {
    pub item: WorkItemId,
    pub channel: Channel,
    pub cost: u32,
    pub accepted: bool,
}

impl AgentRecord {
    pub fn offered_item(&self) -> Option<WorkItemId> {
        self.work.iter().find(|held| !held.accepted).map(|held| held.item)
    }

    pub fn state(&self) -> AgentState {
        if let Some(item) = self.offered_item() {
            return AgentState::Offered { item };
        }
        if self.work.iter().any(|held| held.accepted) {
            return AgentState::Busy;
        }
        if let Some(until) = self.after_work_until {
            return AgentState::AfterWork { until };
        }
        match &self.presence {
            Presence::Offline => AgentState::Offline,
            Presence::Available => AgentState::Available,
            Presence::Away { reason } => AgentState::Away { reason: reason.clone() },
        }
    }

    pub fn used_capacity(&self) -> u32 {
        self.work.iter().map(|held| held.cost).sum()
    }
}

fn item_event(now: Timestamp, item: &WorkItem, agent: Option<AgentId>, kind: EventKind) -> RoutingEvent {
    RoutingEvent {
        at: now,
        item: Some(item.id),
        agent,
        queue: Some(item.queue.clone()),
        channel: Some(item.spec.channel),
        kind,
    }
}

/// Where an item appears in the indices.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ItemIndex {
    /// The queue, the item's channel (waiting lists are split by channel so that an agent with
    /// room for an email only never scans calls) and the score.
    waiting: Option<(QueueId, Channel, i64)>,
    deadline: Option<Timestamp>,
}

/// Where an agent appears in the indices.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AgentIndex {
    /// Present in the routable set of each of its queues, ordered by this idle time.
    routable_since: Option<Timestamp>,
    queues: Vec<QueueId>,
    deadline: Option<Timestamp>,
}

fn item_index(settings: &RouterSettings, item: &WorkItem) -> ItemIndex {
    match item.state {
        ItemState::Waiting => {
            let relaxation = decide::next_relaxation(item, item.relaxed_until);
            let unroutable_check = (!item.unroutable_checked).then(|| decide::unroutable_check_at(settings, item));
            ItemIndex {
                waiting: Some((item.queue.clone(), item.spec.channel, decide::score(settings, item))),
                deadline: relaxation.into_iter().chain(unroutable_check).min(),
            }
        }
        ItemState::Offered { lease_until, .. } => ItemIndex { waiting: None, deadline: Some(lease_until) },
        ItemState::Assigned { .. } => ItemIndex { waiting: None, deadline: None },
    }
}

/// The agent's place in its queues' routable sets, if any. An agent without room for any channel
/// is left out of the routable sets, so that offering a new item scans only agents that could take
/// it.
fn routable_slot(agent: &AgentRecord) -> Option<Timestamp> {
    let routable = decide::is_routable(agent) && !decide::room(agent).is_empty();
    routable.then_some(agent.idle_since)
}

/// Deadlines due at the same moment are handled agents first, then items, each by id: the same
/// order as the Redis store's `a:<id>`/`i:<id>` members with zero-padded ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeadlineOwner {
    Agent(AgentId),
    Item(WorkItemId),
}

pub struct RouterCore {
    settings: RouterSettings,
    queues: HashMap<QueueId, QueueConfig>,
    items: HashMap<WorkItemId, WorkItem>,
    agents: HashMap<AgentId, AgentRecord>,
    /// Per queue, one list per channel (indexed by `Channel as usize`), best score first.
    waiting: HashMap<QueueId, [BTreeSet<(i64, WorkItemId)>; Channel::ALL.len()]>,
    routable: HashMap<QueueId, BTreeSet<(Timestamp, AgentId)>>,
    members: HashMap<QueueId, BTreeSet<AgentId>>,
    deadlines: BTreeSet<(Timestamp, DeadlineOwner)>,
    item_indices: HashMap<WorkItemId, ItemIndex>,
    agent_indices: HashMap<AgentId, AgentIndex>,
    actions: Vec<Action>,
    events: Vec<RoutingEvent>,
    changed_agents: Vec<AgentId>,
    /// Records changed since the last [`RouterCore::take_journal`], kept only when asked for.
    journal: Option<Journal>,
}

/// The items and agents whose records a step changed (or may have: a record rewritten with the
/// same value is listed too).
#[derive(Debug, Default)]
pub struct Journal {
    pub items: Vec<WorkItemId>,
    pub agents: Vec<AgentId>,
}

impl RouterCore {
    pub fn new(settings: RouterSettings, queues: impl IntoIterator<Item = QueueConfig>) -> RouterCore {
        RouterCore {
            settings,
            queues: queues.into_iter().map(|queue| (queue.id.clone(), queue)).collect(),
            items: HashMap::default(),
            agents: HashMap::default(),
            waiting: HashMap::default(),
            routable: HashMap::default(),
            members: HashMap::default(),
            deadlines: BTreeSet::new(),
            item_indices: HashMap::default(),
            agent_indices: HashMap::default(),
            actions: Vec::new(),
            events: Vec::new(),
            changed_agents: Vec::new(),
            journal: None,
        }
    }

    /// A core over some of the records, as a store loaded them; indices are derived from them.
    pub fn from_records(
        settings: RouterSettings,
        queues: impl IntoIterator<Item = QueueConfig>,
        items: impl IntoIterator<Item = WorkItem>,
        agents: impl IntoIterator<Item = AgentRecord>,
    ) -> RouterCore {
        let mut core = RouterCore::new(settings, queues);
        for item in items {
            core.put_item(item.id, Some(item));
        }
        for agent in agents {
            core.put_agent(agent.profile.agent, Some(agent));
        }
        core
    }

    /// Replaces (or with `None` removes) an item's record as another core decided it, and
    /// re-derives its index entries. No routing decision is made.
    pub fn put_item(&mut self, id: WorkItemId, item: Option<WorkItem>) {
        match item {
            Some(item) => self.items.insert(id, item),
            None => self.items.remove(&id),
        };
        self.reindex_item(id);
    }

    /// [`RouterCore::put_item`] for an agent.
    pub fn put_agent(&mut self, id: AgentId, agent: Option<AgentRecord>) {
        match agent {
            Some(agent) => self.agents.insert(id, agent),
            None => self.agents.remove(&id),
        };
        self.reindex_agent_quietly(id);
    }

    /// From now on, lists the records each step changes, for [`RouterCore::take_journal`].
    pub fn keep_journal(&mut self) {
        self.journal.get_or_insert_with(Journal::default);
    }

    /// The records changed since the last call, each once, in id order.
    pub fn take_journal(&mut self) -> Journal {
        let Some(journal) = self.journal.as_mut() else {
            return Journal::default();
        };
        let mut taken = std::mem::take(journal);
        taken.items.sort_unstable();
        taken.items.dedup();
        taken.agents.sort_unstable();
        taken.agents.dedup();
        taken
    }

    pub fn settings(&self) -> &RouterSettings {
        &self.settings
    }

    pub fn configure_queue(&mut self, queue: QueueConfig) {
        self.queues.insert(queue.id.clone(), queue);
    }

    pub fn queue(&self, queue: &QueueId) -> Option<&QueueConfig> {
        self.queues.get(queue)
    }

    pub fn item(&self, item: WorkItemId) -> Option<&WorkItem> {
        self.items.get(&item)
    }

    pub fn agent(&self, agent: AgentId) -> Option<&AgentRecord> {
        self.agents.get(&agent)
    }

    pub fn items(&self) -> impl Iterator<Item = &WorkItem> {
        self.items.values()
    }

    pub fn agents(&self) -> impl Iterator<Item = &AgentRecord> {
        self.agents.values()
    }

    /// Waiting items of the queue, best score first.
    pub fn waiting(&self, queue: &QueueId) -> impl Iterator<Item = &WorkItem> {
        let mut entries: Vec<(i64, WorkItemId)> =
            self.waiting.get(queue).into_iter().flatten().flatten().copied().collect();
        entries.sort_unstable();
        entries.into_iter().filter_map(|(_, item)| self.items.get(&item))
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    pub fn drain_actions(&mut self) -> std::vec::Drain<'_, Action> {
        self.actions.drain(..)
    }

    pub fn drain_events(&mut self) -> std::vec::Drain<'_, RoutingEvent> {
        self.events.drain(..)
    }

    pub fn handle(&mut self, now: Timestamp, input: Input) -> Result<(), RoutingError> {
        let result = self.dispatch(now, input);
        self.show_states(now);
        result
    }

    fn dispatch(&mut self, now: Timestamp, input: Input) -> Result<(), RoutingError> {
        match input {
            Input::AgentLoggedIn { profile, presence } => {
                self.agent_logged_in(now, profile, presence);
                Ok(())
            }
            Input::PresenceChanged { agent, presence } => self.presence_changed(now, agent, presence),
            Input::ProfileChanged { profile } => self.profile_changed(now, profile),
            Input::OfferAccepted { agent, item } => self.offer_accepted(now, agent, item),
            Input::OfferDeclined { agent, item } => self.offer_refused(now, agent, item, EventKind::Declined),
            Input::WorkCompleted { agent, item } => self.work_completed(now, agent, item),
            Input::AfterWorkDone { agent } => self.after_work_done(now, agent),
            Input::ItemClaimed { agent, item } => self.item_claimed(now, agent, item),
            Input::CallerAbandoned { item } => self.caller_abandoned(now, item),
            Input::ItemTransferred { agent, item, to } => self.item_transferred(now, agent, item, to),
            Input::ItemReassigned { item, to } => self.item_reassigned(now, item, to),
            Input::PriorityChanged { item, priority } => self.reprioritised(now, item, Some(priority), Duration::ZERO),
            Input::ItemBoosted { item, by } => self.reprioritised(now, item, None, by),
            Input::ItemMoved { item, to } => self.item_moved(now, item, to),
        }
    }

    /// Acts on every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        while let Some(&(at, owner)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            match owner {
                DeadlineOwner::Item(item) => self.item_deadline(now, item),
                DeadlineOwner::Agent(agent) => self.agent_deadline(now, agent),
            }
            // Each deadline is an input of its own, as if it had been handled alone.
            self.show_states(now);
        }
    }

    /// Acts on one owner's deadline if it is due. Handling due deadlines one owner at a time in
    /// (time, owner) order is the same as [`RouterCore::handle_timeout`]; the Redis store does that,
    /// one transaction per owner.
    pub fn handle_timeout_of(&mut self, now: Timestamp, owner: DeadlineOwner) {
        let due = self.deadlines.iter().find(|(_, candidate)| *candidate == owner).copied();
        let Some((at, owner)) = due.filter(|(at, _)| *at <= now) else {
            return;
        };
        self.deadlines.remove(&(at, owner));
        match owner {
            DeadlineOwner::Item(item) => self.item_deadline(now, item),
            DeadlineOwner::Agent(agent) => self.agent_deadline(now, agent),
        }
        self.show_states(now);
    }

    /// A waiting item and a routable agent that should have been matched, if any: the invariant
    /// the property tests check after every input.
    pub fn missed_match(&self, now: Timestamp) -> Option<(WorkItemId, AgentId)> {
        for item in self.items.values() {
            if item.state != ItemState::Waiting {
                continue;
            }
            let queue = self.queues.get(&item.queue);
            for agent in self.agents.values() {
                if decide::is_eligible(queue, item, agent, now) {
                    return Some((item.id, agent.profile.agent));
                }
            }
        }
        None
    }

    /// A new item with an id the store chose; kept out of [`Input`] so that commands carry no ids
    /// the caller could invent.
    pub fn item_arrived(&mut self, now: Timestamp, id: WorkItemId, spec: NewWorkItem) -> Result<(), RoutingError> {
        if !self.queues.contains_key(&spec.queue) {
            return Err(RoutingError::UnknownQueue(spec.queue));
        }
        if self.items.contains_key(&id) {
            return Err(RoutingError::DuplicateItem(id));
        }
        let item = WorkItem {
            id,
            queue: spec.queue.clone(),
            enqueued_at: now,
            queue_entered_at: now,
            boost_millis: 0,
            state: ItemState::Waiting,
            excluded: Vec::new(),
            relaxed_until: now,
            unroutable_checked: false,
            spec,
        };
        self.record(now, &item, None, EventKind::Enqueued { priority: item.spec.priority });
        self.items.insert(id, item);
        self.reindex_item(id);
        self.route_item(now, id);
        self.show_states(now);
        Ok(())
    }

    fn agent_logged_in(&mut self, now: Timestamp, profile: AgentProfile, presence: Presence) {
        let agent = profile.agent;
        match self.agents.get_mut(&agent) {
            Some(record) => {
                record.profile = profile;
            }
            None => {
                self.agents.insert(
                    agent,
                    AgentRecord {
                        profile,
                        presence: Presence::Offline,
                        work: Vec::new(),
                        after_work_until: None,
                        missed_offers: 0,
                        idle_since: now,
                        shown_state: AgentState::Offline,
                    },
                );
            }
        }
        self.set_presence(now, agent, presence);
    }

    fn presence_changed(&mut self, now: Timestamp, agent: AgentId, presence: Presence) -> Result<(), RoutingError> {
        if !self.agents.contains_key(&agent) {
            return Err(RoutingError::UnknownAgent(agent));
        }
        self.set_presence(now, agent, presence);
        Ok(())
    }

    fn set_presence(&mut self, now: Timestamp, agent: AgentId, presence: Presence) {
        let Some(record) = self.agents.get_mut(&agent) else {
            return;
        };
        let coming_back = presence == Presence::Available && record.presence != Presence::Available;
        record.presence = presence;
        if coming_back {
            record.idle_since = now;
            record.missed_offers = 0;
        }
        let leaving = record.presence != Presence::Available;
        let pending_offer = record.offered_item();
        if leaving && let Some(item) = pending_offer {
            // The agent is not there to answer: the offer goes back without excluding them.
            self.withdraw_offer(now, agent, item, None);
            self.route_item(now, item);
        }
        self.reindex_agent(agent);
        self.route_agent(now, agent);
    }

    fn profile_changed(&mut self, now: Timestamp, profile: AgentProfile) -> Result<(), RoutingError> {
        let agent = profile.agent;
        let Some(record) = self.agents.get_mut(&agent) else {
            return Err(RoutingError::UnknownAgent(agent));
        };
        record.profile = profile;
        self.reindex_agent(agent);
        self.route_agent(now, agent);
        Ok(())
    }

    fn offer_accepted(&mut self, now: Timestamp, agent: AgentId, item: WorkItemId) -> Result<(), RoutingError> {
        self.check_offered(agent, item)?;
        let record = self.agents.get_mut(&agent).ok_or(RoutingError::UnknownAgent(agent))?;
        for held in record.work.iter_mut().filter(|held| held.item == item) {
            held.accepted = true;
        }
        record.missed_offers = 0;
        record.idle_since = now;
        let work_item = self.items.get_mut(&item).ok_or(RoutingError::UnknownItem(item))?;
        work_item.state = ItemState::Assigned { agent };
        self.events.push(item_event(now, work_item, Some(agent), EventKind::Accepted));
        self.reindex_item(item);
        self.reindex_agent(agent);
        self.route_agent(now, agent);
        Ok(())
    }

    fn offer_refused(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        item: WorkItemId,
        kind: EventKind,
    ) -> Result<(), RoutingError> {
        self.check_offered(agent, item)?;
        let missed = kind == EventKind::TimedOut;
        self.withdraw_offer(now, agent, item, Some(kind));
        if let Some(work_item) = self.items.get_mut(&item) {
            work_item.excluded.push(agent);
        }
        self.reindex_item(item);
        if let Some(record) = self.agents.get_mut(&agent) {
            if missed {
                record.missed_offers += 1;
                if record.missed_offers >= self.settings.max_missed_offers {
                    record.missed_offers = 0;
                    record.presence = Presence::Away { reason: AWAY_REASON_MISSED.to_owned() };
                }
            } else {
                record.missed_offers = 0;
            }
        }
        self.reindex_agent(agent);
        self.route_item(now, item);
        self.route_agent(now, agent);
        Ok(())
    }

    fn work_completed(&mut self, now: Timestamp, agent: AgentId, item: WorkItemId) -> Result<(), RoutingError> {
        self.check_assigned(agent, item)?;
        let work_item = self.items.remove(&item).ok_or(RoutingError::UnknownItem(item))?;
        self.reindex_item(item);
        self.record(now, &work_item, Some(agent), EventKind::Completed);
        self.release(now, agent, item, work_item.spec.channel);
        self.reindex_agent(agent);
        self.route_agent(now, agent);
        Ok(())
    }

    fn after_work_done(&mut self, now: Timestamp, agent: AgentId) -> Result<(), RoutingError> {
        let record = self.agents.get_mut(&agent).ok_or(RoutingError::UnknownAgent(agent))?;
        if record.after_work_until.take().is_some() {
            record.idle_since = now;
        }
        self.reindex_agent(agent);
        self.route_agent(now, agent);
        Ok(())
    }

    fn item_claimed(&mut self, now: Timestamp, agent: AgentId, item: WorkItemId) -> Result<(), RoutingError> {
        let work_item = self.items.get(&item).ok_or(RoutingError::UnknownItem(item))?;
        if work_item.state != ItemState::Waiting {
            return Err(RoutingError::NotWaiting(item));
        }
        let record = self.agents.get(&agent).ok_or(RoutingError::UnknownAgent(agent))?;
        if !record.profile.queues.contains(&work_item.queue) {
            return Err(RoutingError::NotAMember { agent, queue: work_item.queue.clone() });
        }
        if record.presence == Presence::Offline || record.offered_item().is_some() {
            return Err(RoutingError::AgentCannotTake(agent));
        }
        if !decide::has_room(record, work_item) {
            return Err(RoutingError::NoCapacity(agent));
        }
        self.offer(now, item, agent);
        self.offer_accepted(now, agent, item)
    }

    fn caller_abandoned(&mut self, now: Timestamp, item: WorkItemId) -> Result<(), RoutingError> {
        let work_item = self.items.get(&item).ok_or(RoutingError::UnknownItem(item))?;
        let offered_to = match work_item.state {
            ItemState::Waiting => None,
            ItemState::Offered { agent, .. } => Some(agent),
            ItemState::Assigned { .. } => return Err(RoutingError::AlreadyAssigned(item)),
        };
        if let Some(agent) = offered_to {
            self.withdraw_offer(now, agent, item, None);
        }
        let work_item = self.items.remove(&item).ok_or(RoutingError::UnknownItem(item))?;
        self.reindex_item(item);
        self.record(now, &work_item, offered_to, EventKind::Abandoned);
        if let Some(agent) = offered_to {
            self.reindex_agent(agent);
            self.route_agent(now, agent);
        }
        Ok(())
    }

    fn item_transferred(
        &mut self,
        now: Timestamp,
        agent: AgentId,
        item: WorkItemId,
        to: QueueId,
    ) -> Result<(), RoutingError> {
        self.check_assigned(agent, item)?;
        if !self.queues.contains_key(&to) {
            return Err(RoutingError::UnknownQueue(to));
        }
        let channel = self.items.get(&item).map(|work_item| work_item.spec.channel);
        if let Some(channel) = channel {
            self.release(now, agent, item, channel);
        }
        self.requeue(now, item, to, Some(agent), TransferReason::AgentTransfer);
        self.reindex_agent(agent);
        self.route_item(now, item);
        self.route_agent(now, agent);
        Ok(())
    }

    fn item_reassigned(&mut self, now: Timestamp, item: WorkItemId, to: AgentId) -> Result<(), RoutingError> {
        let work_item = self.items.get(&item).ok_or(RoutingError::UnknownItem(item))?;
        let previous = match work_item.state {
            // Offered to that agent already (the router got there first): nothing to do.
            ItemState::Offered { agent, .. } if agent == to => return Ok(()),
            ItemState::Waiting => None,
            ItemState::Offered { agent, .. } | ItemState::Assigned { agent } => Some(agent),
        };
        let target = self.agents.get(&to).ok_or(RoutingError::UnknownAgent(to))?;
        if target.presence == Presence::Offline || target.offered_item().is_some() || previous == Some(to) {
            return Err(RoutingError::AgentCannotTake(to));
        }
        if !decide::has_room(target, work_item) {
            return Err(RoutingError::NoCapacity(to));
        }
        if let Some(agent) = previous {
            self.withdraw_offer(now, agent, item, None);
        }
        if let Some(work_item) = self.items.get_mut(&item) {
            work_item.state = ItemState::Waiting;
            self.events.push(item_event(now, work_item, Some(to), EventKind::Reassigned));
        }
        self.offer(now, item, to);
        if let Some(agent) = previous {
            self.reindex_agent(agent);
            self.route_agent(now, agent);
        }
        Ok(())
    }

    fn reprioritised(
        &mut self,
        now: Timestamp,
        item: WorkItemId,
        priority: Option<i32>,
        boost: Duration,
    ) -> Result<(), RoutingError> {
        let work_item = self.items.get_mut(&item).ok_or(RoutingError::UnknownItem(item))?;
        if let Some(priority) = priority {
            work_item.spec.priority = priority;
        }
        work_item.boost_millis = work_item.boost_millis.saturating_add(duration_millis(boost));
        let kind =
            EventKind::PriorityChanged { priority: work_item.spec.priority, boost_millis: work_item.boost_millis };
        self.events.push(item_event(now, work_item, None, kind));
        self.reindex_item(item);
        Ok(())
    }

    fn item_moved(&mut self, now: Timestamp, item: WorkItemId, to: QueueId) -> Result<(), RoutingError> {
        if !self.queues.contains_key(&to) {
            return Err(RoutingError::UnknownQueue(to));
        }
        let work_item = self.items.get(&item).ok_or(RoutingError::UnknownItem(item))?;
        let taken_from = match work_item.state {
            ItemState::Assigned { agent } => Some(agent),
            _ => None,
        };
        let holder = match work_item.state {
            ItemState::Waiting => None,
            ItemState::Offered { agent, .. } => {
                self.withdraw_offer(now, agent, item, None);
                Some(agent)
            }
            // The supervisor takes it back from the agent, who wraps up what they did on it.
            ItemState::Assigned { agent } => {
                let channel = work_item.spec.channel;
                self.release(now, agent, item, channel);
                self.actions.push(Action::WithdrawItem { item, agent });
                Some(agent)
            }
        };
        self.requeue(now, item, to, holder, TransferReason::SupervisorMove);
        // Work taken from an agent's hands is not offered back to them.
        if let (Some(agent), Some(work_item)) = (taken_from, self.items.get_mut(&item)) {
            work_item.excluded.push(agent);
            self.reindex_item(item);
        }
        // The freed agent chooses first: the moved item competes on score with everything else
        // waiting in the agent's queues, instead of going back to the agent just because it moved.
        if let Some(agent) = holder {
            self.reindex_agent(agent);
            self.route_agent(now, agent);
        }
        self.route_item(now, item);
        Ok(())
    }

    fn item_deadline(&mut self, now: Timestamp, item: WorkItemId) {
        let Some(work_item) = self.items.get(&item) else {
            return;
        };
        match work_item.state {
            ItemState::Offered { agent, lease_until } if lease_until <= now => {
                // Checked just above that the item is offered to this agent, so this cannot fail.
                let _ = self.offer_refused(now, agent, item, EventKind::TimedOut);
            }
            ItemState::Waiting => {
                let check_unroutable =
                    !work_item.unroutable_checked && decide::unroutable_check_at(&self.settings, work_item) <= now;
                if let Some(work_item) = self.items.get_mut(&item) {
                    work_item.relaxed_until = now;
                }
                if check_unroutable {
                    self.check_unroutable(now, item);
                }
                self.reindex_item(item);
                self.route_item(now, item);
            }
            _ => self.reindex_item(item),
        }
    }

    fn check_unroutable(&mut self, now: Timestamp, item: WorkItemId) {
        let Some(work_item) = self.items.get_mut(&item) else {
            return;
        };
        work_item.unroutable_checked = true;
        let queue = self.queues.get(&work_item.queue);
        let someone_could = self
            .members
            .get(&work_item.queue)
            .into_iter()
            .flatten()
            .filter_map(|agent| self.agents.get(agent))
            .filter(|agent| agent.presence != Presence::Offline)
            .any(|agent| decide::could_ever_take(queue, work_item, &agent.profile));
        let supervisor_queue = queue.and_then(|queue| queue.supervisor_queue.clone());
        if someone_could {
            return;
        }
        if let Some(supervisor_queue) = supervisor_queue
            && supervisor_queue != work_item.queue
            && self.queues.contains_key(&supervisor_queue)
        {
            self.requeue(now, item, supervisor_queue, None, TransferReason::Unroutable);
        }
    }

    fn agent_deadline(&mut self, now: Timestamp, agent: AgentId) {
        let Some(record) = self.agents.get_mut(&agent) else {
            return;
        };
        if record.after_work_until.is_some_and(|until| until <= now) {
            record.after_work_until = None;
            record.idle_since = now;
        }
        self.reindex_agent(agent);
        self.route_agent(now, agent);
    }

    /// Offers the waiting item to the best eligible routable agent of its queue, if there is one.
    fn route_item(&mut self, now: Timestamp, item: WorkItemId) {
        let Some(work_item) = self.items.get(&item) else {
            return;
        };
        if work_item.state != ItemState::Waiting {
            return;
        }
        let queue = self.queues.get(&work_item.queue);
        let mut best: Option<&AgentRecord> = None;
        for (idle_since, agent) in self.routable.get(&work_item.queue).into_iter().flatten() {
            if best.is_some_and(|best| best.idle_since < *idle_since) {
                // Candidates come in idle order; only equal idle times can still win on skill.
                break;
            }
            let Some(record) = self.agents.get(agent) else {
                continue;
            };
            if !decide::is_eligible(queue, work_item, record, now) {
                continue;
            }
            let better = match best {
                None => true,
                Some(best) => decide::prefer_agent(queue, work_item, now, record, best).is_lt(),
            };
            if better {
                best = Some(record);
            }
        }
        if let Some(agent) = best.map(|record| record.profile.agent) {
            self.offer(now, item, agent);
        }
    }

    /// Offers the agent the best-scored eligible waiting item across all of its queues.
    fn route_agent(&mut self, now: Timestamp, agent: AgentId) {
        let Some(record) = self.agents.get(&agent) else {
            return;
        };
        if !decide::is_routable(record) {
            return;
        }
        let mut best: Option<(i64, WorkItemId)> = None;
        let room = decide::room(record);
        for queue_id in &record.profile.queues {
            let queue = self.queues.get(queue_id);
            let Some(lists) = self.waiting.get(queue_id) else {
                continue;
            };
            for channel in room.iter() {
                for &(score, item) in &lists[channel as usize] {
                    if best.is_some_and(|best| best <= (score, item)) {
                        break;
                    }
                    let Some(work_item) = self.items.get(&item) else {
                        continue;
                    };
                    if decide::is_eligible(queue, work_item, record, now) {
                        best = Some((score, item));
                        break;
                    }
                }
            }
        }
        if let Some((_, item)) = best {
            self.offer(now, item, agent);
        }
    }

    fn offer(&mut self, now: Timestamp, item: WorkItemId, agent: AgentId) {
        let lease_until = now.plus(self.settings.offer_timeout);
        let (Some(work_item), Some(record)) = (self.items.get_mut(&item), self.agents.get_mut(&agent)) else {
            return;
        };
        work_item.state = ItemState::Offered { agent, lease_until };
        record.work.push(HeldWork {
            item,
            channel: work_item.spec.channel,
            cost: record.profile.cost(work_item.spec.channel, work_item.spec.size),
            accepted: false,
        });
        self.actions.push(Action::OfferItem {
            item,
            agent,
            queue: work_item.queue.clone(),
            channel: work_item.spec.channel,
            lease_until,
        });
        self.events.push(item_event(now, work_item, Some(agent), EventKind::Offered));
        self.reindex_item(item);
        self.reindex_agent(agent);
    }

    /// Takes the item off the agent and puts it back to waiting; `kind` is the event to log when
    /// the agent answered or missed the offer, `None` when the router withdrew it.
    fn withdraw_offer(&mut self, now: Timestamp, agent: AgentId, item: WorkItemId, kind: Option<EventKind>) {
        if let Some(record) = self.agents.get_mut(&agent) {
            record.work.retain(|held| held.item != item);
        }
        if kind.is_none() {
            self.actions.push(Action::WithdrawItem { item, agent });
        }
        if let Some(work_item) = self.items.get_mut(&item) {
            work_item.state = ItemState::Waiting;
            if let Some(kind) = kind {
                self.events.push(item_event(now, work_item, Some(agent), kind));
            }
        }
        self.reindex_item(item);
        self.reindex_agent(agent);
    }

    /// Frees the agent's capacity for a finished or transferred item and starts after-call work.
    fn release(&mut self, now: Timestamp, agent: AgentId, item: WorkItemId, channel: Channel) {
        let Some(record) = self.agents.get_mut(&agent) else {
            return;
        };
        record.work.retain(|held| held.item != item);
        record.idle_since = now;
        if let Some(after_work) = record.profile.after_work.get(&channel) {
            let until = now.plus(*after_work);
            // A second finished contact extends wrap-up; nothing else (a transfer elsewhere, a
            // queue change) shortens it, because it belongs to the agent (anchors §3 #10).
            record.after_work_until = Some(record.after_work_until.map_or(until, |current| current.max(until)));
        }
    }

    fn requeue(
        &mut self,
        now: Timestamp,
        item: WorkItemId,
        to: QueueId,
        agent: Option<AgentId>,
        reason: TransferReason,
    ) {
        let Some(work_item) = self.items.get_mut(&item) else {
            return;
        };
        self.events.push(item_event(now, work_item, agent, EventKind::Transferred { to: to.clone(), reason }));
        work_item.queue = to;
        work_item.queue_entered_at = now;
        work_item.state = ItemState::Waiting;
        work_item.excluded.clear();
        if reason == TransferReason::AgentTransfer {
            // An agent who transfers an item away is not offered it back.
            work_item.excluded.extend(agent);
        }
        work_item.unroutable_checked = reason == TransferReason::Unroutable;
        self.reindex_item(item);
    }

    fn check_offered(&self, agent: AgentId, item: WorkItemId) -> Result<(), RoutingError> {
        let work_item = self.items.get(&item).ok_or(RoutingError::UnknownItem(item))?;
        match work_item.state {
            ItemState::Offered { agent: offered_to, .. } if offered_to == agent => Ok(()),
            _ => Err(RoutingError::NotOfferedTo { item, agent }),
        }
    }

    fn check_assigned(&self, agent: AgentId, item: WorkItemId) -> Result<(), RoutingError> {
        let work_item = self.items.get(&item).ok_or(RoutingError::UnknownItem(item))?;
        match work_item.state {
            ItemState::Assigned { agent: assigned_to } if assigned_to == agent => Ok(()),
            _ => Err(RoutingError::NotAssignedTo { item, agent }),
        }
    }

    fn record(&mut self, now: Timestamp, item: &WorkItem, agent: Option<AgentId>, kind: EventKind) {
        self.events.push(item_event(now, item, agent, kind));
    }

    fn reindex_item(&mut self, item: WorkItemId) {
        if let Some(journal) = &mut self.journal {
            journal.items.push(item);
        }
        let new_index = self.items.get(&item).map(|work_item| item_index(&self.settings, work_item));
        let old_index = match &new_index {
            Some(index) => self.item_indices.insert(item, index.clone()),
            None => self.item_indices.remove(&item),
        };
        if old_index == new_index {
            return;
        }
        if let Some(old_index) = old_index {
            if let Some((queue, channel, score)) = old_index.waiting
                && let Some(lists) = self.waiting.get_mut(&queue)
            {
                lists[channel as usize].remove(&(score, item));
            }
            if let Some(at) = old_index.deadline {
                self.deadlines.remove(&(at, DeadlineOwner::Item(item)));
            }
        }
        if let Some(new_index) = new_index {
            if let Some((queue, channel, score)) = new_index.waiting {
                self.waiting.entry(queue).or_default()[channel as usize].insert((score, item));
            }
            if let Some(at) = new_index.deadline {
                self.deadlines.insert((at, DeadlineOwner::Item(item)));
            }
        }
    }

    fn reindex_agent(&mut self, agent: AgentId) {
        self.reindex_agent_quietly(agent);
        if !self.changed_agents.contains(&agent) {
            self.changed_agents.push(agent);
        }
    }

    /// Shows each changed agent's state once per input, so that boards and the log see
    /// Busy → Offered rather than Busy → Available → Offered within the same millisecond.
    fn show_states(&mut self, now: Timestamp) {
        // Walked by index and cleared after, so that the list keeps its allocation.
        for index in 0..self.changed_agents.len() {
            let agent = self.changed_agents[index];
            let Some(record) = self.agents.get_mut(&agent) else {
                continue;
            };
            let state = record.state();
            if state != record.shown_state {
                record.shown_state = state.clone();
                self.actions.push(Action::ShowAgentState { agent, state: state.clone() });
                self.events.push(RoutingEvent {
                    at: now,
                    item: None,
                    agent: Some(agent),
                    queue: None,
                    channel: None,
                    kind: EventKind::AgentStateChanged { state },
                });
            }
        }
        self.changed_agents.clear();
    }

    /// Brings the agent's index entries in line with its record, touching only the parts that
    /// changed: on the hot path (accept, complete) that is its routable entries, not its
    /// memberships.
    fn reindex_agent_quietly(&mut self, agent: AgentId) {
        if let Some(journal) = &mut self.journal {
            journal.agents.push(agent);
        }
        let old = self.agent_indices.remove(&agent);
        let Some(record) = self.agents.get(&agent) else {
            if let Some(old) = old {
                self.move_routable(agent, &old.queues, old.routable_since, &[], None);
                self.move_memberships(agent, &old.queues, &[]);
                self.move_deadline(agent, old.deadline, None);
            }
            return;
        };
        let routable_since = routable_slot(record);
        let deadline = record.after_work_until;
        let (old_queues, old_since, old_deadline) = match old {
            Some(old) => (old.queues, old.routable_since, old.deadline),
            None => (Vec::new(), None, None),
        };
        let queues = if old_queues == record.profile.queues {
            if old_since != routable_since {
                self.move_routable(agent, &old_queues, old_since, &old_queues, routable_since);
            }
            old_queues
        } else {
            let queues = record.profile.queues.clone();
            self.move_routable(agent, &old_queues, old_since, &queues, routable_since);
            self.move_memberships(agent, &old_queues, &queues);
            queues
        };
        if old_deadline != deadline {
            self.move_deadline(agent, old_deadline, deadline);
        }
        self.agent_indices.insert(agent, AgentIndex { routable_since, queues, deadline });
    }

    fn move_routable(
        &mut self,
        agent: AgentId,
        old_queues: &[QueueId],
        old_since: Option<Timestamp>,
        new_queues: &[QueueId],
        new_since: Option<Timestamp>,
    ) {
        if let Some(since) = old_since {
            for queue in old_queues {
                if let Some(routable) = self.routable.get_mut(queue) {
                    routable.remove(&(since, agent));
                }
            }
        }
        if let Some(since) = new_since {
            for queue in new_queues {
                // Looked up first, so that the hot path does not clone the queue id for `entry`.
                if let Some(routable) = self.routable.get_mut(queue) {
                    routable.insert((since, agent));
                } else {
                    self.routable.entry(queue.clone()).or_default().insert((since, agent));
                }
            }
        }
    }

    fn move_memberships(&mut self, agent: AgentId, old_queues: &[QueueId], new_queues: &[QueueId]) {
        for queue in old_queues {
            if let Some(members) = self.members.get_mut(queue) {
                members.remove(&agent);
            }
        }
        for queue in new_queues {
            self.members.entry(queue.clone()).or_default().insert(agent);
        }
    }

    fn move_deadline(&mut self, agent: AgentId, old: Option<Timestamp>, new: Option<Timestamp>) {
        if let Some(at) = old {
            self.deadlines.remove(&(at, DeadlineOwner::Agent(agent)));
        }
        if let Some(at) = new {
            self.deadlines.insert((at, DeadlineOwner::Agent(agent)));
        }
    }
}
