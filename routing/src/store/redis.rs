//! The Redis store: records in hashes, indices in sorted sets, the event log in a stream.
//!
//! Accepting an offer, completing an item (the hot path: two steps per assignment) and becoming
//! available are one round trip each: `step.lua` applies the step and offers the agent its next
//! item, deciding with the core's rules over waiting lists split by requirement signature (see
//! `signature`), so it reads only list heads the agent is eligible for. It leaves the step to the
//! general path when a deadline is due or the input would be rejected.
//!
//! Every other step is an optimistic transaction of two round trips. `load.lua` reads the records
//! the step needs (the item, its agent, the agent's held items, the first `k` waiting items of the
//! agent's queues, the first `k` routable agents of the item's queue) in one call. A partial
//! [`RouterCore`] is built from them and decides, exactly as in process. `commit.lua` then writes
//! the changed records, their index entries, the events and the pub/sub notice, but only if every
//! changed record still has the version it was read at; otherwise the step is decided again on
//! fresh records. `step.lua` bumps the versions of what it changes, so the two paths never
//! overwrite each other. Because the item and the agent of every offer are both version-checked
//! (or changed inside one script), an item is never held by two agents, however many nodes decide
//! at once. Lists are read `k` deep and re-read deeper only when the first unread member could
//! have beaten the decision; see `may_have_missed`.
//!
//! Key layout under the prefix `{p}` (braces: one Redis Cluster hash slot):
//! `{p}:item:<id>` hash (`item_fields`: `rec` JSON, `state`, `queue`, `excl`; and `ver`);
//! `{p}:agent:<id>` hash (`agent_fields`: `profile` and `presence` JSON, `work`, `awu`,
//! `missed`, `idle`, `shown`, links `queues`, `room`; and `ver`);
//! `{p}:queue:<q>:waiting` zset zero-padded item id → score, and the same split by channel in
//! `{p}:queue:<q>:waiting:<channel>` (an agent with room for an email only reads those lists) and
//! by channel and signature in `{p}:queue:<q>:by-sig:<channel>:<signature>` (members
//! `<score as u64>|<id>`, zero-padded), whose first member the hash `{p}:queue:<q>:routing`
//! holds under `<channel>:<signature>`, next to the queue's default skills as `requirements`
//! under `*`;
//! `{p}:queue:<q>:routable` zset agent → idle since;
//! `{p}:queue:<q>:members` set; `{p}:deadlines` zset `i:<id>`/`a:<id>` (zero-padded) → ms;
//! `{p}:queues` hash queue → JSON config, `{p}:queues:version`; `{p}:seq` item ids;
//! `{p}:events` stream (one entry per step, field `e` per event, JSON); channel `{p}:notify`
//! (JSON [`Notice`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};

use crate::core::decide::{active_requirements, room};
use crate::core::{
    Action, AgentRecord, DeadlineOwner, HeldWork, Input, ItemIndex, ItemState, RouterCore, WorkItem, agent_index,
    item_index,
};
use crate::error::StoreError;
use crate::event::RoutingEvent;
use crate::model::{
    AgentId, Channel, NewWorkItem, Presence, QueueConfig, QueueId, RouterSettings, Skill, Timestamp, WorkItemId,
    duration_millis,
};
use crate::store::{EventCursor, QueueStore};

/// Published on `{p}:notify` after every commit, so that other nodes push offers to the agents
/// connected to them and re-arm their timers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Notice {
    pub node: String,
    pub actions: Vec<Action>,
}

#[derive(Clone)]
pub struct RedisStore {
    connection: MultiplexedConnection,
    client: redis::Client,
    prefix: Arc<str>,
    node: Arc<str>,
    settings: RouterSettings,
    queues: Arc<RwLock<QueueCache>>,
    load_script: Arc<Script>,
    commit_script: Arc<Script>,
    step_script: Arc<Script>,
    scripted_steps: Arc<AtomicU64>,
}

impl RedisStore {
    /// Connects and loads the queue definitions. `prefix` separates deployments (and tests).
    pub async fn connect(url: &str, prefix: &str, settings: RouterSettings) -> Result<RedisStore, StoreError> {
        let unreachable = |source| StoreError::RedisUnreachable { url: url.to_owned(), source };
        let client = redis::Client::open(url).map_err(unreachable)?;
        // The default 500 ms response timeout counts time the caller's runtime was busy
        // elsewhere; under load that fails healthy requests, so only a dead server times out.
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
        let connection = client.get_multiplexed_async_connection_with_config(&config).await.map_err(unreachable)?;
        let store = RedisStore {
            connection,
            client,
            prefix: Arc::from(format!("{{{prefix}}}")),
            node: Arc::from(format!("{}-{}", std::process::id(), Timestamp::now().0)),
            settings,
            queues: Arc::new(RwLock::new(QueueCache::default())),
            load_script: Arc::new(Script::new(include_str!("lua/load.lua"))),
            commit_script: Arc::new(Script::new(include_str!("lua/commit.lua"))),
            step_script: Arc::new(Script::new(include_str!("lua/step.lua"))),
            scripted_steps: Arc::new(AtomicU64::new(0)),
        };
        store.refresh_queues().await?;
        Ok(store)
    }

    /// How many steps `step.lua` decided in one round trip, on this store and its clones. An
    /// accept, completion or return to available that falls back to the general path (a due
    /// deadline, a rejected input) does not count; many fallbacks mean the reconciler is lagging.
    pub fn scripted_steps(&self) -> u64 {
        self.scripted_steps.load(Ordering::Relaxed)
    }

    /// The id this node puts in its notices.
    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn notify_channel(&self) -> String {
        format!("{}:notify", self.prefix)
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The `SCAN MATCH` pattern of every key of this store.
    pub fn key_pattern(&self) -> String {
        format!("{}:*", self.prefix)
    }

    /// Deletes every key under the prefix; for tests and benchmarks.
    pub async fn delete_everything(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let pattern = self.key_pattern();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut connection)
                .await?;
            if !keys.is_empty() {
                let _: () = connection.del(keys).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    async fn refresh_queues(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        let (version, raw): (Option<String>, HashMap<String, String>) = redis::pipe()
            .get(format!("{}:queues:version", self.prefix))
            .hgetall(format!("{}:queues", self.prefix))
            .query_async(&mut connection)
            .await?;
        let mut queues = HashMap::new();
        for (id, json) in raw {
            let queue: QueueConfig = decode(&format!("queue {id}"), &json)?;
            queues.insert(queue.id.clone(), queue);
        }
        let mut cache = self.queues.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        *cache = QueueCache { version: version.unwrap_or_else(|| "0".to_owned()), queues: Arc::new(queues) };
        Ok(())
    }

    fn cached_queues(&self) -> (String, Arc<HashMap<QueueId, QueueConfig>>) {
        let cache = self.queues.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        (cache.version.clone(), cache.queues.clone())
    }

    /// Loads, decides with `step`, commits; again on a conflict or when a truncated candidate list
    /// may have hidden the right answer.
    ///
    /// Many agents finishing at once all want the head of the same queue. So that they don't all
    /// conflict on it, a decision that took a contested record (a waiting item, a routable agent
    /// the step did not ask about) comes with fallbacks decided without it, and the commit applies
    /// the first alternative whose records are unchanged: the second agent gets the second item
    /// in the same round trip instead of deciding again.
    async fn transact(
        &self,
        request: LoadRequest,
        step: impl Fn(&mut RouterCore, WorkItemId) -> Result<(), StoreError>,
    ) -> Result<(WorkItemId, Vec<Action>), StoreError> {
        const MAX_ATTEMPTS: u32 = 200;
        const MAX_ALTERNATIVES: usize = 4;
        // Past this many candidates per list one step costs too much of Redis's single thread; an
        // eligible item deeper than that waits for the agent's next step (documented gap).
        const MAX_CANDIDATES: usize = 4096;
        // Lists are read this deep at first, and deeper, one list at a time, only when a cut list
        // may have hidden a better match.
        const BASE_CANDIDATES: usize = 2;
        let mut depths: HashMap<String, usize> = HashMap::new();
        let mut attempt = 0;
        // Allocated once: a step decided again keeps its item id, so ids have no gaps.
        let mut new_id: Option<WorkItemId> = None;
        while attempt < MAX_ATTEMPTS {
            attempt += 1;
            let allocate = request.new_id && new_id.is_none();
            let loaded = self.load(&request, allocate, BASE_CANDIDATES, &depths).await?;
            let new_id = *new_id.get_or_insert(loaded.new_id);
            let (queues_version, queues) = self.cached_queues();
            if loaded.queues_version != queues_version {
                self.refresh_queues().await?;
                continue;
            }
            let mut withheld = Withheld::default();
            let mut alternatives: Vec<Alternative> = Vec::new();
            let mut grow = false;
            while alternatives.len() < MAX_ALTERNATIVES {
                let mut core = RouterCore::from_records(
                    self.settings.clone(),
                    queues.values().cloned(),
                    loaded
                        .items
                        .values()
                        .filter(|loaded| !withheld.items.contains(&loaded.record.id))
                        .map(|loaded| loaded.record.clone()),
                    loaded
                        .agents
                        .values()
                        .filter(|loaded| !withheld.agents.contains(&loaded.record.profile.agent))
                        .map(|loaded| loaded.record.clone()),
                );
                match step(&mut core, new_id) {
                    Ok(()) => {}
                    Err(error) if alternatives.is_empty() => return Err(error),
                    // Without the withheld records the step no longer applies; the alternatives
                    // so far are all there is.
                    Err(_) => break,
                }
                if alternatives.is_empty() && !loaded.truncated.is_empty() {
                    for list in self.may_have_missed(&core, &loaded) {
                        let depth = depths.entry(list).or_insert(BASE_CANDIDATES);
                        if *depth < MAX_CANDIDATES {
                            *depth = depth.saturating_mul(8).min(MAX_CANDIDATES);
                            grow = true;
                        }
                    }
                    if grow {
                        break;
                    }
                }
                let contested = self.contested(&core, &loaded, &request);
                alternatives.push(self.alternative(&mut core, &loaded, &request, &withheld));
                if contested.is_empty() {
                    break;
                }
                withheld.items.extend(contested.items);
                withheld.agents.extend(contested.agents);
            }
            if grow {
                attempt -= 1;
                continue;
            }
            if alternatives.first().is_none_or(|first| first.commit.is_empty()) {
                let actions = alternatives.into_iter().next().map(|first| first.actions).unwrap_or_default();
                return Ok((new_id, actions));
            }
            let mut connection = self.connection.clone();
            let applied = Commit::invoke(&alternatives, &self.commit_script, &mut connection).await?;
            if let Some(index) = applied {
                let actions = alternatives.into_iter().nth(index).map(|applied| applied.actions).unwrap_or_default();
                return Ok((new_id, actions));
            }
            tracing::debug!(attempt, "routing commit conflicted; deciding again");
            if attempt > 4 {
                tokio::time::sleep(Duration::from_micros(100 * u64::from(attempt.min(20)))).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        Err(StoreError::Contended { attempts: MAX_ATTEMPTS })
    }

    /// Records the decision took that other deciders may be taking at the same time: items that
    /// waited and were offered, agents that were routable and got an offer, neither asked for.
    fn contested(&self, core: &RouterCore, loaded: &Loaded, request: &LoadRequest) -> Withheld {
        let mut contested = Withheld::default();
        for (id, before) in &loaded.items {
            let taken = before.record.state == crate::core::ItemState::Waiting
                && core.item(*id).is_some_and(|after| after.state != crate::core::ItemState::Waiting);
            if taken && !request.items.contains(id) {
                contested.items.insert(*id);
            }
        }
        for (id, before) in &loaded.agents {
            let taken = before.record.offered_item().is_none()
                && core.agent(*id).is_some_and(|after| after.offered_item().is_some());
            if taken && !request.agents.contains(id) {
                contested.agents.insert(*id);
            }
        }
        contested
    }

    fn alternative(
        &self,
        core: &mut RouterCore,
        loaded: &Loaded,
        request: &LoadRequest,
        withheld: &Withheld,
    ) -> Alternative {
        let events: Vec<RoutingEvent> = core.drain_events().collect();
        let actions: Vec<Action> = core.drain_actions().collect();
        let mut commit = Commit::new();
        self.diff(core, loaded, request, withheld, &mut commit);
        if !events.is_empty() {
            commit.op(&["XADD", &format!("{}:events", self.prefix), &events.len().to_string()]);
            for event in &events {
                commit.op(&[&encode(event)]);
            }
        }
        if !actions.is_empty() {
            let notice = Notice { node: self.node.to_string(), actions: actions.clone() };
            commit.op(&["PUB", &self.notify_channel(), &encode(&notice)]);
        }
        Alternative { commit, actions }
    }

    /// The lists cut at their depth that may have hidden a better match. Nothing left unread in
    /// a waiting list scores lower than the list's boundary, so an agent changed by this step
    /// missed something only if it was offered an item scoring above the boundary of one of its
    /// lists, or nothing although it could take work. An item the step changed missed an agent only
    /// if it got none, or one that idled no longer than the first unread one, while its queue's
    /// routable list was cut. Records the step did not touch were already matched as well as they
    /// can be (the invariant every step keeps).
    fn may_have_missed(&self, core: &RouterCore, loaded: &Loaded) -> Vec<String> {
        let mut lists = Vec::new();
        for agent in core.agents() {
            let before = loaded.agents.get(&agent.profile.agent);
            if before.is_some_and(|before| before.record == *agent) {
                continue;
            }
            let newly_offered = agent
                .offered_item()
                .filter(|item| before.is_none_or(|before| before.record.offered_item() != Some(*item)));
            let chosen = match newly_offered {
                Some(item) => match core.item(item) {
                    Some(work_item) => (crate::core::decide::score(core.settings(), work_item), item.0 as i64),
                    None => continue,
                },
                None if agent_index(agent).routable_since.is_some() => (i64::MAX, i64::MAX),
                None => continue,
            };
            for queue in &agent.profile.queues {
                let all_channels = format!("a:{queue}");
                let one_channel = format!("w:{queue}:");
                for (marker, boundary) in &loaded.truncated {
                    if (*marker == all_channels || marker.starts_with(&one_channel)) && *boundary < chosen {
                        lists.push(marker.clone());
                    }
                }
            }
        }
        for item in core.items() {
            // An item the step changed (new, back from an agent, moved, relaxed, exclusions
            // cleared) may now suit agents it did not suit before.
            let changed = loaded.items.get(&item.id).is_none_or(|before| before.record != *item);
            let marker = format!("r:{}", item.queue);
            let Some((boundary, _)) = loaded.truncated.get(&marker) else {
                continue;
            };
            // Unread agents idled no longer than the boundary; one of them could still win a tie
            // on idle time by skill level.
            let chosen_idle_since = match item.state {
                crate::core::ItemState::Waiting => i64::MAX,
                crate::core::ItemState::Offered { agent, .. } => {
                    core.agent(agent).map_or(i64::MAX, |agent| agent.idle_since.0)
                }
                crate::core::ItemState::Assigned { .. } => continue,
            };
            if changed && *boundary <= chosen_idle_since {
                lists.push(marker);
            }
        }
        lists
    }

    async fn load(
        &self,
        request: &LoadRequest,
        allocate_id: bool,
        candidates: usize,
        depths: &HashMap<String, usize>,
    ) -> Result<Loaded, StoreError> {
        let mut invocation = self.load_script.prepare_invoke();
        invocation
            .arg(&*self.prefix)
            .arg(candidates)
            .arg(u8::from(allocate_id))
            .arg(u8::from(request.members))
            .arg(u8::from(request.freeing))
            .arg(request.items.len())
            .arg(request.agents.len())
            .arg(request.waiting_queues.len())
            .arg(request.routable_queues.len());
        for item in &request.items {
            invocation.arg(item.0);
        }
        for agent in &request.agents {
            invocation.arg(agent.0);
        }
        for queue in &request.waiting_queues {
            invocation.arg(queue.as_str());
        }
        for queue in &request.routable_queues {
            invocation.arg(queue.as_str());
        }
        invocation.arg(depths.len());
        for (list, depth) in depths {
            invocation.arg(list.as_str()).arg(*depth);
        }
        let mut connection = self.connection.clone();
        let flat: Vec<String> = invocation.invoke_async(&mut connection).await?;
        Loaded::parse(&flat)
    }

    /// Turns the difference between the loaded and the decided records into checked writes.
    fn diff(
        &self,
        core: &RouterCore,
        loaded: &Loaded,
        request: &LoadRequest,
        withheld: &Withheld,
        commit: &mut Commit,
    ) {
        let prefix = &*self.prefix;
        let deadlines = format!("{prefix}:deadlines");
        let mut item_ids: Vec<WorkItemId> =
            loaded.items.keys().copied().filter(|id| !withheld.items.contains(id)).collect();
        item_ids.extend(core.items().map(|item| item.id).filter(|id| !loaded.items.contains_key(id)));
        for id in item_ids {
            let key = format!("{prefix}:item:{id}");
            let before = loaded.items.get(&id);
            let after = core.item(id);
            // On the deadline path the index entries are rewritten even when the record did not
            // change, so that an entry that disagrees with its record is repaired, not seen again.
            let force_index = request.repair && request.items.contains(&id);
            let changed = before.map(|loaded| &loaded.record) != after;
            if !changed && !force_index {
                continue;
            }
            if changed {
                commit.check(&key, before.map_or("0", |loaded| loaded.version.as_str()));
                match after {
                    Some(item) => commit.record(&key, &item_fields(item)),
                    None => commit.op(&["DEL", &key]),
                }
            }
            let old_index = before.map(|loaded| item_index(&self.settings, &loaded.record));
            let new_index = after.map(|item| item_index(&self.settings, item));
            // Zero-padded so that equal scores order by id, as in the core.
            let member = format!("{:020}", id.0);
            let old_waiting = before.and_then(|loaded| WaitingEntry::of(prefix, old_index.as_ref(), &loaded.record));
            let new_waiting = after.and_then(|item| WaitingEntry::of(prefix, new_index.as_ref(), item));
            if old_waiting != new_waiting || force_index {
                if let Some(entry) = &old_waiting {
                    commit.op(&["ZREM", &entry.all, &member]);
                    commit.op(&["ZREM", &entry.channel, &member]);
                    commit.op(&["ZREM", &entry.by_signature, &entry.ranked]);
                    commit.op(&["HEAD", &entry.by_signature, &entry.routing, &entry.listed]);
                }
                if let Some(entry) = &new_waiting {
                    let score = entry.score.to_string();
                    commit.op(&["ZADD", &entry.all, &score, &member]);
                    commit.op(&["ZADD", &entry.channel, &score, &member]);
                    commit.op(&["ZADD", &entry.by_signature, &score, &entry.ranked]);
                    commit.op(&["HEAD", &entry.by_signature, &entry.routing, &entry.listed]);
                }
            }
            let old_deadline = old_index.and_then(|index| index.deadline);
            let new_deadline = new_index.and_then(|index| index.deadline);
            if old_deadline != new_deadline || force_index {
                let deadline_member = format!("i:{:020}", id.0);
                match new_deadline {
                    Some(at) => commit.op(&["ZADD", &deadlines, &at.0.to_string(), &deadline_member]),
                    None => commit.op(&["ZREM", &deadlines, &deadline_member]),
                }
            }
        }
        let mut agent_ids: Vec<AgentId> =
            loaded.agents.keys().copied().filter(|id| !withheld.agents.contains(id)).collect();
        agent_ids.extend(core.agents().map(|agent| agent.profile.agent).filter(|id| !loaded.agents.contains_key(id)));
        for id in agent_ids {
            let key = format!("{prefix}:agent:{id}");
            let before = loaded.agents.get(&id);
            let after = core.agent(id);
            let force_index = request.repair && request.agents.contains(&id);
            let changed = before.map(|loaded| &loaded.record) != after;
            if !changed && !force_index {
                continue;
            }
            if changed {
                commit.check(&key, before.map_or("0", |loaded| loaded.version.as_str()));
                if let Some(agent) = after {
                    commit.record(&key, &agent_fields(agent));
                }
            }
            let old_index = before.map(|loaded| agent_index(&loaded.record));
            let new_index = after.map(agent_index);
            if old_index == new_index && !force_index {
                continue;
            }
            let member = id.0.to_string();
            let old_queues: &[QueueId] = old_index.as_ref().map_or(&[], |index| index.queues.as_slice());
            let new_queues: &[QueueId] = new_index.as_ref().map_or(&[], |index| index.queues.as_slice());
            let old_routable = old_index.as_ref().and_then(|index| index.routable_since);
            let new_routable = new_index.as_ref().and_then(|index| index.routable_since);
            for queue in old_queues {
                let stays = new_routable == old_routable && new_queues.contains(queue) && !force_index;
                if old_routable.is_some() && !stays {
                    commit.op(&["ZREM", &format!("{prefix}:queue:{queue}:routable"), &member]);
                }
                if !new_queues.contains(queue) {
                    commit.op(&["SREM", &format!("{prefix}:queue:{queue}:members"), &member]);
                }
            }
            for queue in new_queues {
                let stays = new_routable == old_routable && old_queues.contains(queue) && !force_index;
                if let Some(since) = new_routable
                    && !stays
                {
                    commit.op(&["ZADD", &format!("{prefix}:queue:{queue}:routable"), &since.0.to_string(), &member]);
                }
                if !old_queues.contains(queue) || force_index {
                    commit.op(&["SADD", &format!("{prefix}:queue:{queue}:members"), &member]);
                }
            }
            let deadline_member = format!("a:{:020}", id.0);
            let old_deadline = old_index.as_ref().and_then(|index| index.deadline);
            let new_deadline = new_index.as_ref().and_then(|index| index.deadline);
            if old_deadline != new_deadline || force_index {
                match new_deadline {
                    Some(at) => commit.op(&["ZADD", &deadlines, &at.0.to_string(), &deadline_member]),
                    None => commit.op(&["ZREM", &deadlines, &deadline_member]),
                }
            }
        }
    }

    async fn handle_input(&self, now: Timestamp, input: Input) -> Result<Vec<Action>, StoreError> {
        let request = LoadRequest::for_input(&input);
        let step = |core: &mut RouterCore, _new_id: WorkItemId| -> Result<(), StoreError> {
            core.handle(now, input.clone())?;
            Ok(())
        };
        Ok(self.transact(request, step).await?.1)
    }

    /// Accept, complete or become available in one round trip, decided by `step.lua`; `None` when
    /// the script leaves the step to the general path (see the script's header).
    async fn scripted_step(
        &self,
        now: Timestamp,
        operation: &str,
        agent: AgentId,
        item: Option<WorkItemId>,
    ) -> Result<Option<Vec<Action>>, StoreError> {
        let mut connection = self.connection.clone();
        let reply: Vec<String> = self
            .step_script
            .prepare_invoke()
            .arg(&*self.prefix)
            .arg(operation)
            .arg(agent.0)
            .arg(item.map(|item| item.0.to_string()).unwrap_or_default())
            .arg(now.0)
            .arg(duration_millis(self.settings.offer_timeout))
            .arg(&*self.node)
            .invoke_async(&mut connection)
            .await?;
        match reply.as_slice() {
            [status, actions] if status == "ok" => {
                self.scripted_steps.fetch_add(1, Ordering::Relaxed);
                Ok(Some(decode("step.lua actions", actions)?))
            }
            _ => Ok(None),
        }
    }

    /// The first due deadline entry (owner and due time), in the order the core handles them.
    async fn first_due(&self, now: Timestamp) -> Result<Option<(String, i64)>, StoreError> {
        let mut connection = self.connection.clone();
        let first: Vec<(String, f64)> = redis::cmd("ZRANGEBYSCORE")
            .arg(format!("{}:deadlines", self.prefix))
            .arg("-inf")
            .arg(now.0)
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(1)
            .query_async(&mut connection)
            .await?;
        Ok(first.into_iter().next().map(|(owner, at)| (owner, at as i64)))
    }
}

impl QueueStore for RedisStore {
    async fn follow_other_nodes(&self, mut on_actions: impl FnMut(Vec<Action>) + Send) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.notify_channel()).await?;
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let payload: String = message.get_payload()?;
            let notice: Notice = decode("notice", &payload)?;
            if notice.node != *self.node {
                on_actions(notice.actions);
            }
        }
        Ok(())
    }

    async fn configure_queue(&self, queue: QueueConfig) -> Result<(), StoreError> {
        // `step.lua` reads a queue's default skills next to its list heads, in one call.
        let defaults = requirements(queue.default_skills.iter().map(|required| (&required.skill, required.min_level)));
        let mut connection = self.connection.clone();
        let _: () = redis::pipe()
            .atomic()
            .hset(format!("{}:queues", self.prefix), queue.id.as_str(), encode(&queue))
            .hset(format!("{}:queue:{}:routing", self.prefix, queue.id), "*", defaults)
            .incr(format!("{}:queues:version", self.prefix), 1)
            .query_async(&mut connection)
            .await?;
        self.refresh_queues().await
    }

    async fn enqueue(&self, now: Timestamp, spec: NewWorkItem) -> Result<(WorkItemId, Vec<Action>), StoreError> {
        let request = LoadRequest { new_id: true, routable_queues: vec![spec.queue.clone()], ..LoadRequest::default() };
        let step = |core: &mut RouterCore, new_id: WorkItemId| -> Result<(), StoreError> {
            core.item_arrived(now, new_id, spec.clone())?;
            Ok(())
        };
        self.transact(request, step).await
    }

    async fn apply(&self, now: Timestamp, input: Input) -> Result<Vec<Action>, StoreError> {
        let scripted = match &input {
            Input::OfferAccepted { agent, item } => Some(("accept", *agent, Some(*item))),
            Input::WorkCompleted { agent, item } => Some(("complete", *agent, Some(*item))),
            Input::PresenceChanged { agent, presence: Presence::Available } => Some(("available", *agent, None)),
            _ => None,
        };
        if let Some((operation, agent, item)) = scripted
            && let Some(actions) = self.scripted_step(now, operation, agent, item).await?
        {
            return Ok(actions);
        }
        self.handle_input(now, input).await
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<Action>, StoreError> {
        let mut actions = Vec::new();
        // An owner's deadline can come due again at once (a lease ends and the relaxation step
        // at the same moment), but only a few times; more means an entry its record does not
        // explain (or a malformed one), which is dropped or this loop would never end.
        const MAX_TURNS_PER_OWNER: u32 = 8;
        let mut turns: HashMap<String, u32> = HashMap::new();
        while let Some((owner, _)) = self.first_due(now).await? {
            let turn = turns.entry(owner.clone()).or_default();
            *turn += 1;
            if *turn > MAX_TURNS_PER_OWNER {
                let mut connection = self.connection.clone();
                let _: () = connection.zrem(format!("{}:deadlines", self.prefix), &owner).await?;
                continue;
            }
            // An unroutable item moves to its supervisor queue and is offered there at once,
            // so the routable agents of the supervisor queues are loaded too.
            let (_, queues) = self.cached_queues();
            let mut supervisor_queues: Vec<QueueId> =
                queues.values().filter_map(|queue| queue.supervisor_queue.clone()).collect();
            supervisor_queues.sort();
            supervisor_queues.dedup();
            let mut request = LoadRequest {
                members: true,
                freeing: true,
                repair: true,
                routable_queues: supervisor_queues,
                ..LoadRequest::default()
            };
            let deadline_owner = match owner.split_once(':') {
                Some(("i", id)) => id.parse().ok().map(|id| DeadlineOwner::Item(WorkItemId(id))),
                Some(("a", id)) => id.parse().ok().map(|id| DeadlineOwner::Agent(AgentId(id))),
                _ => None,
            };
            match deadline_owner {
                Some(DeadlineOwner::Item(item)) => request.items.push(item),
                Some(DeadlineOwner::Agent(agent)) => request.agents.push(agent),
                None => {}
            }
            if let Some(deadline_owner) = deadline_owner {
                // Only this owner's deadline: other due records loaded along are handled in their
                // own turn, in the same order as in process.
                let step = |core: &mut RouterCore, _: WorkItemId| -> Result<(), StoreError> {
                    core.handle_timeout_of(now, deadline_owner);
                    Ok(())
                };
                actions.extend(self.transact(request, step).await?.1);
            }
        }
        Ok(actions)
    }

    async fn next_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        let mut connection = self.connection.clone();
        let first: Vec<(String, f64)> =
            connection.zrange_withscores(format!("{}:deadlines", self.prefix), 0, 0).await?;
        Ok(first.first().map(|(_, at)| Timestamp(*at as i64)))
    }

    async fn cursor_at(&self, at: Timestamp) -> Result<EventCursor, StoreError> {
        // Entry ids are the Redis server's milliseconds (`XADD *`): the first entry at or after
        // `at`, none of its events read yet.
        Ok(EventCursor(format!("{}-0/0", at.0.max(0))))
    }

    async fn read_events(
        &self,
        cursor: EventCursor,
        limit: usize,
    ) -> Result<(Vec<RoutingEvent>, EventCursor), StoreError> {
        // A step's events share one stream entry, so a cursor may point inside an entry:
        // `<entry id>/<events of it already read>`.
        let (start, mut skip) = match cursor.0.split_once('/') {
            Some((id, read)) => (id.to_owned(), read.parse::<usize>().unwrap_or(0)),
            None if cursor.0.is_empty() => ("-".to_owned(), 0),
            None => (format!("({}", cursor.0), 0),
        };
        let mut connection = self.connection.clone();
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(format!("{}:events", self.prefix))
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit.max(1))
            .query_async(&mut connection)
            .await?;
        let mut events = Vec::new();
        let mut next = cursor;
        for (id, fields) in entries {
            for (index, (_, json)) in fields.into_iter().enumerate().skip(skip) {
                if events.len() == limit {
                    return Ok((events, EventCursor(format!("{id}/{index}"))));
                }
                events.push(decode(&format!("event {id}"), &json)?);
            }
            skip = 0;
            next = EventCursor(id);
        }
        Ok((events, next))
    }

    async fn item(&self, item: WorkItemId) -> Result<Option<WorkItem>, StoreError> {
        let key = format!("{}:item:{item}", self.prefix);
        let mut connection = self.connection.clone();
        let (rec, state): (Option<String>, Option<String>) =
            redis::cmd("HMGET").arg(&key).arg("rec").arg("state").query_async(&mut connection).await?;
        match (rec, state) {
            (Some(rec), Some(state)) => decode_item(&key, &rec, &state).map(Some),
            _ => Ok(None),
        }
    }

    async fn agent(&self, agent: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        let key = format!("{}:agent:{agent}", self.prefix);
        let mut connection = self.connection.clone();
        let fields: Vec<Option<String>> =
            redis::cmd("HMGET").arg(&key).arg(&AGENT_FIELDS[..]).query_async(&mut connection).await?;
        if fields.iter().any(Option::is_none) {
            return Ok(None);
        }
        let fields: [&str; AGENT_FIELDS.len()] = std::array::from_fn(|index| fields[index].as_deref().unwrap_or(""));
        decode_agent(&key, &fields).map(Some)
    }

    async fn waiting(&self, queue: &QueueId, limit: usize) -> Result<Vec<WorkItem>, StoreError> {
        let mut connection = self.connection.clone();
        let stop = isize::try_from(limit).unwrap_or(isize::MAX).saturating_sub(1);
        let ids: Vec<u64> = connection.zrange(format!("{}:queue:{queue}:waiting", self.prefix), 0, stop).await?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(item) = self.item(WorkItemId(id)).await? {
                items.push(item);
            }
        }
        Ok(items)
    }
}

#[derive(Default)]
struct QueueCache {
    version: String,
    queues: Arc<HashMap<QueueId, QueueConfig>>,
}

/// What one step asks `load.lua` for; linked records are followed by the script.
#[derive(Default)]
struct LoadRequest {
    new_id: bool,
    members: bool,
    items: Vec<WorkItemId>,
    agents: Vec<AgentId>,
    /// The step may free capacity, so the agents' waiting lists are read across all channels.
    freeing: bool,
    /// Rewrite the index entries of the requested records even if unchanged (deadline path).
    repair: bool,
    waiting_queues: Vec<QueueId>,
    routable_queues: Vec<QueueId>,
}

impl LoadRequest {
    fn for_input(input: &Input) -> LoadRequest {
        let freeing = !matches!(
            input,
            Input::OfferAccepted { .. }
                | Input::ItemClaimed { .. }
                | Input::PriorityChanged { .. }
                | Input::ItemBoosted { .. }
        );
        let mut request = LoadRequest { freeing, ..LoadRequest::default() };
        match input {
            Input::AgentLoggedIn { profile, .. } | Input::ProfileChanged { profile } => {
                request.agents.push(profile.agent);
                request.waiting_queues.extend(profile.queues.iter().cloned());
            }
            Input::PresenceChanged { agent, .. } | Input::AfterWorkDone { agent } => {
                request.agents.push(*agent);
            }
            Input::OfferAccepted { agent, item }
            | Input::OfferDeclined { agent, item }
            | Input::WorkCompleted { agent, item }
            | Input::ItemClaimed { agent, item } => {
                request.agents.push(*agent);
                request.items.push(*item);
            }
            Input::ItemTransferred { agent, item, to } => {
                request.agents.push(*agent);
                request.items.push(*item);
                request.routable_queues.push(to.clone());
            }
            Input::ItemReassigned { item, to } => {
                request.items.push(*item);
                request.agents.push(*to);
            }
            Input::CallerAbandoned { item } | Input::PriorityChanged { item, .. } | Input::ItemBoosted { item, .. } => {
                request.items.push(*item)
            }
            Input::ItemMoved { item, to } => {
                request.items.push(*item);
                request.routable_queues.push(to.clone());
            }
        }
        request
    }
}

struct LoadedRecord<T> {
    record: T,
    version: String,
}

struct Loaded {
    new_id: WorkItemId,
    queues_version: String,
    items: HashMap<WorkItemId, LoadedRecord<WorkItem>>,
    agents: HashMap<AgentId, LoadedRecord<AgentRecord>>,
    /// Lists read only in part, with the score and id of the first member left out.
    truncated: HashMap<String, (i64, i64)>,
}

impl Loaded {
    fn parse(flat: &[String]) -> Result<Loaded, StoreError> {
        let mut fields = flat.iter();
        let mut next = || fields.next().map(String::as_str).unwrap_or("");
        let new_id = WorkItemId(next().parse().unwrap_or(0));
        let queues_version = next().to_owned();
        let item_count: usize = next().parse().unwrap_or(0);
        let mut items = HashMap::with_capacity(item_count);
        for _ in 0..item_count {
            let id = WorkItemId(next().parse().unwrap_or(0));
            let (rec, state) = (next(), next());
            let record = decode_item(&format!("item {id}"), rec, state)?;
            let version = next().to_owned();
            items.insert(id, LoadedRecord { record, version });
        }
        let agent_count: usize = next().parse().unwrap_or(0);
        let mut agents = HashMap::with_capacity(agent_count);
        for _ in 0..agent_count {
            let id = AgentId(next().parse().unwrap_or(0));
            let fields: [&str; AGENT_FIELDS.len()] = std::array::from_fn(|_| next());
            let record = decode_agent(&format!("agent {id}"), &fields)?;
            let version = next().to_owned();
            agents.insert(id, LoadedRecord { record, version });
        }
        let truncated_count: usize = next().parse().unwrap_or(0);
        let mut truncated = HashMap::with_capacity(truncated_count);
        for _ in 0..truncated_count {
            let marker = next().to_owned();
            let score = next().parse::<f64>().map_or(i64::MIN, |score| score as i64);
            let member = next().parse::<i64>().unwrap_or(i64::MIN);
            truncated.insert(marker, (score, member));
        }
        Ok(Loaded { new_id, queues_version, items, agents, truncated })
    }
}

/// One way to carry out a step: its checked writes and the actions to return if it is applied.
struct Alternative {
    commit: Commit,
    actions: Vec<Action>,
}

#[derive(Default)]
struct Withheld {
    items: std::collections::HashSet<WorkItemId>,
    agents: std::collections::HashSet<AgentId>,
}

impl Withheld {
    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.agents.is_empty()
    }
}

/// The writes of one alternative: version checks first, then operations.
struct Commit {
    checks: Vec<String>,
    operations: Vec<String>,
}

impl Commit {
    fn new() -> Commit {
        Commit { checks: Vec::new(), operations: Vec::new() }
    }

    fn check(&mut self, key: &str, version: &str) {
        self.checks.push(key.to_owned());
        self.checks.push(version.to_owned());
    }

    fn op(&mut self, parts: &[&str]) {
        self.operations.extend(parts.iter().map(|part| (*part).to_owned()));
    }

    fn record(&mut self, key: &str, fields: &[(&str, String)]) {
        self.op(&["REC", key, &fields.len().to_string()]);
        for (field, value) in fields {
            self.op(&[field, value]);
        }
    }

    fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// Applies the first alternative whose checks pass; `None` when every one conflicted.
    async fn invoke(
        alternatives: &[Alternative],
        script: &Script,
        connection: &mut MultiplexedConnection,
    ) -> Result<Option<usize>, StoreError> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(alternatives.len());
        for alternative in alternatives {
            let commit = &alternative.commit;
            invocation.arg(commit.checks.len() / 2);
            for part in &commit.checks {
                invocation.arg(part.as_str());
            }
            invocation.arg(commit.operations.len());
            for part in &commit.operations {
                invocation.arg(part.as_str());
            }
        }
        let applied: i64 = invocation.invoke_async(connection).await?;
        Ok(usize::try_from(applied).ok().and_then(|index| index.checked_sub(1)))
    }
}

/// The lists a waiting item sits in: all channels (the pull list), its channel (the general path
/// reads these), and the list of its channel and requirement signature, whose head the queue's
/// routing hash holds under `<channel>:<signature>` (`step.lua` reads these). Members of that list
/// are `ranked`: `<score, order-preserving, 20 digits>|<zero-padded id>`, so that the script
/// compares heads as strings, in the core's (score, id) order.
#[derive(PartialEq)]
struct WaitingEntry {
    all: String,
    channel: String,
    by_signature: String,
    routing: String,
    listed: String,
    ranked: String,
    score: i64,
}

impl WaitingEntry {
    fn of(prefix: &str, index: Option<&ItemIndex>, item: &WorkItem) -> Option<WaitingEntry> {
        let (queue, channel, score) = index?.waiting.as_ref()?;
        let channel = channel.name();
        let listed = format!("{channel}:{}", signature(item));
        Some(WaitingEntry {
            all: format!("{prefix}:queue:{queue}:waiting"),
            channel: format!("{prefix}:queue:{queue}:waiting:{channel}"),
            by_signature: format!("{prefix}:queue:{queue}:by-sig:{listed}"),
            routing: format!("{prefix}:queue:{queue}:routing"),
            listed,
            // Flipping the sign bit maps i64 onto u64 in order.
            ranked: format!("{:020}|{:020}", (*score as u64) ^ (1 << 63), item.id.0),
            score: *score,
        })
    }
}

/// What an agent must hold to take a waiting item, as `step.lua` reads it: the item's size, then
/// its requirements as they stand at `relaxed_until`, the language as level 1. The queue's
/// default skills are left out (the script reads them per queue, so a queue change applies at
/// once). Items of one signature are all eligible or all not for a given agent and queue, up to
/// exclusions, so the script never reads a list past an ineligible head.
fn signature(item: &WorkItem) -> String {
    let language = item.spec.language.iter().map(|language| (language, 1));
    let active = active_requirements(None, item, item.relaxed_until)
        .map(|requirement| (&requirement.skill, requirement.min_level));
    format!("{}{}", item.spec.size.max(1), requirements(language.chain(active)))
}

/// `/<level>:<skill>` per skill, sorted, the highest level of a skill required twice (both must be
/// met); `%` and `/` in names are escaped so the script can split on `/`.
fn requirements<'skill>(requirements: impl IntoIterator<Item = (&'skill Skill, u8)>) -> String {
    let mut levels: BTreeMap<&str, u8> = BTreeMap::new();
    for (skill, level) in requirements {
        let entry = levels.entry(skill.as_str()).or_insert(level);
        *entry = (*entry).max(level);
    }
    levels
        .into_iter()
        .map(|(skill, level)| format!("/{level}:{}", skill.replace('%', "%25").replace('/', "%2F")))
        .collect()
}

/// An item's hash fields. `step.lua` changes an item's state without decoding JSON, so the
/// `state` field, not the state inside `rec`, is the one that counts; `queue` and `excl` are
/// what the scripts read of the rest.
fn item_fields(item: &WorkItem) -> [(&'static str, String); 4] {
    let state = match item.state {
        ItemState::Waiting => "w".to_owned(),
        ItemState::Offered { agent, lease_until } => format!("o:{agent}:{}", lease_until.0),
        ItemState::Assigned { agent } => format!("a:{agent}"),
    };
    let excluded: String = item.excluded.iter().map(|agent| format!(",{agent}")).collect();
    let excluded = if excluded.is_empty() { excluded } else { excluded + "," };
    [("rec", encode(item)), ("state", state), ("queue", item.queue.to_string()), ("excl", excluded)]
}

fn decode_item(key: &str, rec: &str, state: &str) -> Result<WorkItem, StoreError> {
    let mut item: WorkItem = decode(key, rec)?;
    let mut parts = state.split(':');
    let tag = parts.next();
    let mut number = || parts.next().and_then(|part| part.parse::<i64>().ok());
    item.state = match tag {
        Some("w") => ItemState::Waiting,
        Some("o") => {
            let (agent, lease_until) = number().zip(number()).ok_or_else(|| corrupt(key, "state"))?;
            ItemState::Offered { agent: AgentId(agent), lease_until: Timestamp(lease_until) }
        }
        Some("a") => ItemState::Assigned { agent: AgentId(number().ok_or_else(|| corrupt(key, "state"))?) },
        _ => return Err(corrupt(key, "state")),
    };
    Ok(item)
}

/// The agent's fields in the order `load.lua` returns them. `step.lua` reads and writes `work`,
/// `awu`, `missed`, `idle`, `shown` (and `room`) without decoding JSON; `profile` and `presence`
/// are JSON because only the general path changes them.
const AGENT_FIELDS: [&str; 7] = ["profile", "presence", "work", "awu", "missed", "idle", "shown"];

fn agent_fields(agent: &AgentRecord) -> [(&'static str, String); 9] {
    let work: Vec<String> = agent
        .work
        .iter()
        .map(|held| format!("{}:{}:{}:{}", held.item, held.channel.name(), held.cost, u8::from(held.accepted)))
        .collect();
    let queues: Vec<&str> = agent.profile.queues.iter().map(QueueId::as_str).collect();
    let room: Vec<&str> = room(agent).iter().map(Channel::name).collect();
    [
        ("profile", encode(&agent.profile)),
        ("presence", encode(&agent.presence)),
        ("work", work.join(";")),
        ("awu", agent.after_work_until.map(|until| until.0.to_string()).unwrap_or_default()),
        ("missed", agent.missed_offers.to_string()),
        ("idle", agent.idle_since.0.to_string()),
        ("shown", encode(&agent.shown_state)),
        // Links for `load.lua`.
        ("queues", encode(&queues)),
        ("room", encode(&room)),
    ]
}

fn decode_agent(key: &str, fields: &[&str; AGENT_FIELDS.len()]) -> Result<AgentRecord, StoreError> {
    let [profile, presence, work, after_work_until, missed, idle, shown] = *fields;
    let held = |entry: &str| {
        let mut parts = entry.split(':');
        let item = WorkItemId(parts.next()?.parse().ok()?);
        let channel = Channel::from_name(parts.next()?)?;
        let cost = parts.next()?.parse().ok()?;
        let accepted = parts.next()? == "1";
        Some(HeldWork { item, channel, cost, accepted })
    };
    let work = work.split(';').filter(|entry| !entry.is_empty()).map(held).collect::<Option<Vec<HeldWork>>>();
    let after_work_until = match after_work_until {
        "" => Some(None),
        until => until.parse().ok().map(|until| Some(Timestamp(until))),
    };
    Ok(AgentRecord {
        profile: decode(key, profile)?,
        presence: decode(key, presence)?,
        work: work.ok_or_else(|| corrupt(key, "work"))?,
        after_work_until: after_work_until.ok_or_else(|| corrupt(key, "awu"))?,
        missed_offers: missed.parse().map_err(|_| corrupt(key, "missed"))?,
        idle_since: Timestamp(idle.parse().map_err(|_| corrupt(key, "idle"))?),
        shown_state: decode(key, shown)?,
    })
}

fn corrupt(key: &str, field: &str) -> StoreError {
    StoreError::Corrupt { key: key.to_owned(), source: serde::de::Error::custom(format!("field {field} is malformed")) }
}

fn encode<T: Serialize>(value: &T) -> String {
    // Records are plain data with string keys; serialising them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(key: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::Corrupt { key: key.to_owned(), source })
}
