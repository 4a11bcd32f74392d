//! The Redis store: every node keeps a replica of the routing state and decides there; Redis holds
//! the committed records and puts the nodes' commits in one order.
//!
//! Each node holds `committed`, the records as of the last version it knows, and `ahead`, a
//! [`RouterCore`] over those records plus the steps this node decided and has not yet committed: a
//! step (an input, an enqueue, the expiry of deadlines, a queue definition) is decided on `ahead`
//! at once, exactly as in process, and the records it changed are read from the core's journal.
//!
//! One committer task per node sends the decided steps in batches (group commit), one batch in
//! flight at a time, through `commit.lua`. The script applies a batch only if `{p}:version` is still
//! the version the batch was decided on; it then writes the changed records, bumps the version,
//! appends the changes to `{p}:changes`, the events to `{p}:events`, and publishes the actions on
//! `{p}:notify`. A batch that finds the version moved (another node committed first) is not
//! written: the node reads the other commits from `{p}:changes` into both cores, copies the
//! records its pending steps changed back from `committed` into `ahead`, decides those steps again
//! on top, and sends them again. So the commits of all nodes form one
//! sequence, every step is decided on the state every earlier step left, and the Redis store
//! decides exactly what the in-process store decides; no item is ever held by two agents.
//!
//! A step's caller gets its result when its batch is committed. Queries read the committed
//! records (`item`, `agent`) or the replica after catching up (`waiting`, `next_deadline`, which
//! the reconciler uses: the leases of a node that died are in every other node's replica, and
//! expired there).
//!
//! Key layout under the prefix `{p}` (braces: one Redis Cluster hash slot): `{p}:items`,
//! `{p}:agents` and `{p}:queues` hashes of JSON records by id; `{p}:version` the number of the
//! last commit that changed a record; `{p}:next-item` the next item id; `{p}:changes` stream, one
//! entry per commit (`v` version, `c` JSON `Changes`), the last `CHANGES_KEPT` kept (a node
//! further behind reloads the hashes); `{p}:events` stream, one entry per commit (`e` JSON array
//! of events), about a million kept; channel `{p}:notify` (JSON [`Notice`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};

use crate::core::{Action, AgentRecord, Input, Journal, RouterCore, WorkItem};
use crate::error::{RoutingError, StoreError};
use crate::event::RoutingEvent;
use crate::model::{AgentId, NewWorkItem, QueueConfig, QueueId, RouterSettings, Timestamp, WorkItemId};
use crate::store::{EventCursor, QueueStore};

/// Steps per commit at most, so that one script call stays short for Redis's single thread.
const MAX_BATCH: usize = 256;
/// Change entries kept: a node that falls further behind reloads the records.
const CHANGES_KEPT: usize = 100_000;
/// Event entries kept (one per commit), as the in-process log keeps a million events.
const EVENTS_KEPT: usize = 1_000_000;
/// Conflicting commits in a row before the pending steps fail instead of being tried again.
const MAX_CONFLICTS: u32 = 1_000;

/// Published on `{p}:notify` after every commit with actions, so that other nodes push offers to
/// the agents connected to them and re-arm their timers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Notice {
    pub node: String,
    pub actions: Vec<Action>,
}

/// The records one commit changed, as they are after it; `None` is a removed record.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Changes {
    queues: Vec<QueueConfig>,
    items: Vec<(WorkItemId, Option<WorkItem>)>,
    agents: Vec<(AgentId, Option<AgentRecord>)>,
    next_item: u64,
}

impl Changes {
    fn apply_to(&self, core: &mut RouterCore) {
        for queue in &self.queues {
            core.configure_queue(queue.clone());
        }
        for (id, item) in &self.items {
            core.put_item(*id, item.clone());
        }
        for (id, agent) in &self.agents {
            core.put_agent(*id, agent.clone());
        }
    }

    fn is_empty(&self) -> bool {
        self.queues.is_empty() && self.items.is_empty() && self.agents.is_empty()
    }
}

/// The records as of one version: what Redis holds, without the indices a core derives from them
/// (keeping those up to date cost a fifth of the committer's time).
#[derive(Default)]
struct Records {
    queues: HashMap<QueueId, QueueConfig>,
    items: HashMap<WorkItemId, WorkItem>,
    agents: HashMap<AgentId, AgentRecord>,
}

impl Records {
    fn apply(&mut self, changes: Changes) {
        self.queues.extend(changes.queues.into_iter().map(|queue| (queue.id.clone(), queue)));
        for (id, item) in changes.items {
            match item {
                Some(item) => self.items.insert(id, item),
                None => self.items.remove(&id),
            };
        }
        for (id, agent) in changes.agents {
            match agent {
                Some(agent) => self.agents.insert(id, agent),
                None => self.agents.remove(&id),
            };
        }
    }

    /// A core over these records, keeping a journal.
    fn core(&self, settings: &RouterSettings) -> RouterCore {
        let mut core = RouterCore::from_records(
            settings.clone(),
            self.queues.values().cloned(),
            self.items.values().cloned(),
            self.agents.values().cloned(),
        );
        core.keep_journal();
        core
    }
}

#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

struct Shared {
    /// Reconnects by itself after Redis restarts or the network drops.
    connection: ConnectionManager,
    client: redis::Client,
    prefix: String,
    node: String,
    commit_script: Script,
    replica: Mutex<Replica>,
    /// Wakes the committer task; it holds this and a `Weak` of the rest, so that it ends when the
    /// last store handle is dropped.
    wake: Arc<Notify>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

struct Replica {
    settings: RouterSettings,
    /// The records as of `version`.
    committed: Records,
    next_item: u64,
    version: u64,
    /// The `{p}:changes` entry of `version`, where catching up resumes.
    last_change: String,
    /// `committed` plus the steps in `pending`, in order: where new steps are decided.
    ahead: RouterCore,
    ahead_next_item: u64,
    /// Decided, not yet committed, oldest first; the committer sends them from the front.
    pending: VecDeque<Pending>,
}

enum Step {
    Configure(QueueConfig),
    Enqueue(Timestamp, NewWorkItem),
    Input(Timestamp, Input),
    Expire(Timestamp),
    /// Changes nothing; committed only for its version check (see `RedisStore::catch_up`).
    CatchUp,
}

/// What a step gives its caller: the new item's id (for an enqueue) and the actions.
type Decided = (Option<WorkItemId>, Vec<Action>);
type Outcome = Result<Decided, RoutingError>;

struct Decision {
    outcome: Outcome,
    changes: Changes,
    events: Vec<RoutingEvent>,
    /// The records the step changed, kept after `changes` went into a batch, to undo the step.
    touched: Journal,
}

struct Pending {
    step: Step,
    decision: Decision,
    reply: oneshot::Sender<Result<Decided, StoreError>>,
}

/// One commit's worth of pending steps: the first `steps` of the queue, merged.
struct Batch {
    steps: usize,
    expected: u64,
    changes: Changes,
    events: Vec<RoutingEvent>,
    actions: Vec<Action>,
}

enum Committed {
    /// Applied; the new version and its change entry, `None` when the batch changed no record.
    Applied(Option<(u64, String)>),
    /// Not applied: Redis is at this version.
    Conflict(u64),
}

/// What Redis holds, read in one transaction.
struct Snapshot {
    version: u64,
    next_item: u64,
    last_change: String,
    records: Records,
}

struct ChangeEntry {
    id: String,
    version: u64,
    changes: Changes,
}

impl RedisStore {
    /// Connects, loads the routing state into this node's replica and starts its committer.
    /// `prefix` separates deployments (and tests). Must be called within a Tokio runtime.
    pub async fn connect(url: &str, prefix: &str, settings: RouterSettings) -> Result<RedisStore, StoreError> {
        let unreachable = |source| StoreError::RedisUnreachable { url: url.to_owned(), source };
        let client = redis::Client::open(url).map_err(unreachable)?;
        // The default 500 ms response timeout counts time the caller's runtime was busy
        // elsewhere; under load that fails healthy requests, so only a dead server times out.
        let config = ConnectionManagerConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
        let connection = client.get_connection_manager_with_config(config).await.map_err(unreachable)?;
        let prefix = format!("{{{prefix}}}");
        let snapshot = read_snapshot(&mut connection.clone(), &prefix).await?;
        let replica = Replica::new(settings, snapshot);
        let wake = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            connection,
            client,
            prefix,
            node: node_id(),
            commit_script: Script::new(include_str!("lua/commit.lua")),
            replica: Mutex::new(replica),
            wake: wake.clone(),
        });
        tokio::spawn(run_committer(Arc::downgrade(&shared), wake));
        Ok(RedisStore { shared })
    }

    /// The id this node puts in its notices.
    pub fn node(&self) -> &str {
        &self.shared.node
    }

    pub fn notify_channel(&self) -> String {
        format!("{}:notify", self.shared.prefix)
    }

    pub fn client(&self) -> &redis::Client {
        &self.shared.client
    }

    /// The `SCAN MATCH` pattern of every key of this store.
    pub fn key_pattern(&self) -> String {
        format!("{}:*", self.shared.prefix)
    }

    /// Deletes every key under the prefix; for tests and benchmarks.
    pub async fn delete_everything(&self) -> Result<(), StoreError> {
        let mut connection = self.shared.connection.clone();
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

    /// Decides the step on the replica now and returns its result once it is committed.
    async fn submit(&self, step: Step) -> Result<Decided, StoreError> {
        let (reply, result) = oneshot::channel();
        {
            let mut replica = self.shared.lock();
            let Replica { ahead, ahead_next_item, .. } = &mut *replica;
            let decision = decide(ahead, ahead_next_item, &step);
            replica.pending.push_back(Pending { step, decision, reply });
        }
        self.shared.wake.notify_one();
        result.await.map_err(|_| StoreError::CommitUncertain { reason: "the committer stopped".to_owned() })?
    }

    /// Brings the replica up to the newest commit: an empty step goes through the committer,
    /// whose version check makes it follow the other nodes' commits first if there are any.
    async fn catch_up(&self) -> Result<(), StoreError> {
        self.submit(Step::CatchUp).await.map(drop)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Replica> {
        // A panic while holding the lock is a core bug; the replica is still the best we have.
        self.replica.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Commits the pending steps, batch after batch, until none is left.
    async fn commit_pending(&self) {
        let mut conflicts = 0u32;
        loop {
            let Some(batch) = self.lock().next_batch() else {
                return;
            };
            match self.send(&batch).await {
                Ok(Committed::Applied(new_version)) => {
                    conflicts = 0;
                    self.lock().settle(batch, new_version);
                }
                Ok(Committed::Conflict(current)) => {
                    conflicts += 1;
                    if conflicts >= MAX_CONFLICTS {
                        self.lock().fail_pending(|| StoreError::Contended { attempts: conflicts });
                        conflicts = 0;
                    }
                    if let Err(error) = self.follow(Some(current)).await {
                        self.lock().fail_pending(|| StoreError::CommitUncertain { reason: error.to_string() });
                    }
                    if conflicts > 2 {
                        // Another node keeps winning: let it finish rather than race it again.
                        tokio::time::sleep(Duration::from_micros(50 * u64::from(conflicts.min(40)))).await;
                    }
                }
                Err(error) => {
                    // The batch may or may not have been applied: its callers are told so, and
                    // the replica starts again from what Redis holds.
                    let reason = error.to_string();
                    tracing::warn!(%reason, "routing: a commit failed");
                    self.lock().fail_front(batch.steps, || StoreError::CommitUncertain { reason: reason.clone() });
                    if let Err(error) = self.follow(None).await {
                        self.lock().fail_pending(|| StoreError::CommitUncertain { reason: error.to_string() });
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }

    /// Brings `committed` to the `current` version by reading the commits of other nodes, and
    /// decides the pending steps again on top of them. All the records are reloaded instead when
    /// the version is unknown (a commit whose outcome is unknown) or the change entries do not
    /// lead to it (trimmed, or Redis was emptied).
    async fn follow(&self, current: Option<u64>) -> Result<(), StoreError> {
        if let Some(current) = current {
            let after = self.lock().last_change.clone();
            let entries = self.changes_since(&after).await?;
            let mut replica = self.lock();
            // A version below this node's means Redis lost commits: only the records can tell.
            let behind = replica.version < current;
            if behind && replica.absorb(entries) && replica.version >= current {
                return Ok(());
            }
        }
        let snapshot = read_snapshot(&mut self.connection.clone(), &self.prefix).await?;
        self.lock().install(snapshot);
        Ok(())
    }

    async fn send(&self, batch: &Batch) -> Result<Committed, StoreError> {
        let mut invocation = self.commit_script.prepare_invoke();
        let notice = if batch.actions.is_empty() {
            String::new()
        } else {
            encode(&Notice { node: self.node.clone(), actions: batch.actions.clone() })
        };
        let events = if batch.events.is_empty() { String::new() } else { encode(&batch.events) };
        // Each record is encoded once, for its hash and inside the change entry.
        let items: Vec<(WorkItemId, Option<String>)> =
            batch.changes.items.iter().map(|(id, item)| (*id, item.as_ref().map(encode))).collect();
        let agents: Vec<(AgentId, Option<String>)> =
            batch.changes.agents.iter().map(|(id, agent)| (*id, agent.as_ref().map(encode))).collect();
        let queues: Vec<(&QueueId, String)> =
            batch.changes.queues.iter().map(|queue| (&queue.id, encode(queue))).collect();
        let changes = if batch.changes.is_empty() {
            String::new()
        } else {
            changes_json(&queues, &items, &agents, batch.changes.next_item)
        };
        invocation
            .arg(&self.prefix)
            .arg(batch.expected)
            .arg(batch.changes.next_item)
            .arg(changes)
            .arg(events)
            .arg(notice)
            .arg(CHANGES_KEPT)
            .arg(EVENTS_KEPT);
        push_records(&mut invocation, &items);
        push_records(&mut invocation, &agents);
        invocation.arg(queues.len());
        for (id, json) in &queues {
            invocation.arg(id.as_str()).arg(json);
        }
        let reply: Vec<String> = invocation.invoke_async(&mut self.connection.clone()).await?;
        match reply.as_slice() {
            [status] if status == "ok" => Ok(Committed::Applied(None)),
            [status, version, id] if status == "ok" => {
                let version = version.parse().map_err(|_| corrupt("commit.lua reply", version))?;
                Ok(Committed::Applied(Some((version, id.clone()))))
            }
            [status, current] if status == "conflict" => {
                Ok(Committed::Conflict(current.parse().map_err(|_| corrupt("commit.lua reply", current))?))
            }
            _ => Err(corrupt("commit.lua reply", &reply.join(" "))),
        }
    }

    /// The change entries after `after` (an entry id; empty for the start), oldest first.
    async fn changes_since(&self, after: &str) -> Result<Vec<ChangeEntry>, StoreError> {
        const PAGE: usize = 1000;
        let mut connection = self.connection.clone();
        let mut start = if after.is_empty() { "-".to_owned() } else { format!("({after}") };
        let mut entries = Vec::new();
        loop {
            let page: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                .arg(format!("{}:changes", self.prefix))
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(PAGE)
                .query_async(&mut connection)
                .await?;
            let full = page.len() == PAGE;
            for (id, fields) in page {
                let key = format!("change {id}");
                let mut version = None;
                let mut changes = None;
                for (name, value) in fields {
                    match name.as_str() {
                        "v" => version = Some(value.parse::<u64>().map_err(|_| corrupt(&key, "v"))?),
                        "c" => changes = Some(decode::<Changes>(&key, &value)?),
                        _ => {}
                    }
                }
                let (Some(version), Some(changes)) = (version, changes) else {
                    return Err(corrupt(&key, "v or c"));
                };
                start = format!("({id}");
                entries.push(ChangeEntry { id, version, changes });
            }
            if !full {
                return Ok(entries);
            }
        }
    }
}

/// Unique among the nodes on one Redis: the process, the time it connected, and a count, because
/// one process may connect twice within a millisecond (tests do) and a node ignores notices
/// carrying its own id.
fn node_id() -> String {
    static CONNECTED: AtomicU64 = AtomicU64::new(0);
    let count = CONNECTED.fetch_add(1, Ordering::Relaxed);
    format!("{}-{}-{count}", std::process::id(), Timestamp::now().0)
}

async fn run_committer(shared: Weak<Shared>, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.commit_pending().await;
    }
}

impl Replica {
    fn new(settings: RouterSettings, snapshot: Snapshot) -> Replica {
        let ahead = snapshot.records.core(&settings);
        Replica {
            settings,
            committed: snapshot.records,
            next_item: snapshot.next_item,
            version: snapshot.version,
            last_change: snapshot.last_change,
            ahead,
            ahead_next_item: snapshot.next_item,
            pending: VecDeque::new(),
        }
    }

    /// The pending steps not yet sent, merged into one commit.
    fn next_batch(&mut self) -> Option<Batch> {
        if self.pending.is_empty() {
            return None;
        }
        let steps = self.pending.len().min(MAX_BATCH);
        let mut queues: BTreeMap<QueueId, QueueConfig> = BTreeMap::new();
        let mut items = BTreeMap::new();
        let mut agents = BTreeMap::new();
        let mut events = Vec::new();
        let mut actions = Vec::new();
        let mut next_item = self.next_item;
        for pending in self.pending.iter_mut().take(steps) {
            // Taken, not cloned: a batch that is not applied is decided again from the steps.
            let decision = &mut pending.decision;
            let changes = std::mem::take(&mut decision.changes);
            queues.extend(changes.queues.into_iter().map(|queue| (queue.id.clone(), queue)));
            items.extend(changes.items);
            agents.extend(changes.agents);
            next_item = changes.next_item;
            events.append(&mut decision.events);
            if let Ok((_, step_actions)) = &decision.outcome {
                actions.extend(step_actions.iter().cloned());
            }
        }
        let changes = Changes {
            queues: queues.into_values().collect(),
            items: items.into_iter().collect(),
            agents: agents.into_iter().collect(),
            next_item,
        };
        Some(Batch { steps, expected: self.version, changes, events, actions })
    }

    /// The batch was applied: its changes become committed and its callers get their results.
    fn settle(&mut self, batch: Batch, new_version: Option<(u64, String)>) {
        if let Some((version, change)) = new_version {
            self.next_item = batch.changes.next_item;
            self.committed.apply(batch.changes);
            self.version = version;
            self.last_change = change;
        }
        for pending in self.pending.drain(..batch.steps) {
            let _ = pending.reply.send(pending.decision.outcome.map_err(StoreError::from));
        }
    }

    /// Applies other nodes' commits to `committed` and decides the pending steps again on top of
    /// them. False when an entry is missing (trimmed from the stream): the records must be reloaded.
    fn absorb(&mut self, entries: Vec<ChangeEntry>) -> bool {
        let mut applied = false;
        let mut queues_changed = false;
        let mut complete = true;
        for entry in entries {
            if entry.version <= self.version {
                continue;
            }
            if entry.version != self.version + 1 {
                complete = false;
                break;
            }
            // Applied to `ahead` here; `rewind` then undoes this node's pending steps there.
            entry.changes.apply_to(&mut self.ahead);
            queues_changed |= !entry.changes.queues.is_empty();
            self.next_item = entry.changes.next_item;
            self.committed.apply(entry.changes);
            self.version = entry.version;
            self.last_change = entry.id;
            applied = true;
        }
        if applied {
            self.rewind(queues_changed);
            self.decide_pending();
        }
        complete
    }

    /// Replaces the replica by what Redis holds.
    fn install(&mut self, snapshot: Snapshot) {
        let pending = std::mem::take(&mut self.pending);
        *self = Replica { pending, ..Replica::new(self.settings.clone(), snapshot) };
        self.decide_pending();
    }

    fn rebuild_ahead(&mut self) {
        self.ahead = self.committed.core(&self.settings);
        self.ahead_next_item = self.next_item;
    }

    /// Makes `ahead` equal to `committed` again, once other nodes' commits went into both: the
    /// records this node's pending steps changed are copied back from `committed`. Building the
    /// core again instead costs milliseconds with thousands of items; it is left for queue
    /// definitions, which a core does not remove.
    fn rewind(&mut self, queues_changed: bool) {
        if queues_changed || self.pending.iter().any(|pending| matches!(pending.step, Step::Configure(_))) {
            self.rebuild_ahead();
            return;
        }
        for pending in &self.pending {
            for &id in &pending.decision.touched.items {
                self.ahead.put_item(id, self.committed.items.get(&id).cloned());
            }
            for &id in &pending.decision.touched.agents {
                self.ahead.put_agent(id, self.committed.agents.get(&id).cloned());
            }
        }
        self.ahead.take_journal();
        self.ahead_next_item = self.next_item;
    }

    /// Decides every pending step again, in order, on `ahead` (which must equal `committed`).
    fn decide_pending(&mut self) {
        for pending in &mut self.pending {
            pending.decision = decide(&mut self.ahead, &mut self.ahead_next_item, &pending.step);
        }
    }

    /// Fails the first `steps` pending steps (their commit's outcome is unknown).
    fn fail_front(&mut self, steps: usize, error: impl Fn() -> StoreError) {
        for pending in self.pending.drain(..steps.min(self.pending.len())) {
            let _ = pending.reply.send(Err(error()));
        }
    }

    fn fail_pending(&mut self, error: impl Fn() -> StoreError) {
        self.fail_front(self.pending.len(), error);
        // Steps failed earlier may be in `ahead` too, so the core is built again.
        self.rebuild_ahead();
    }
}

/// Decides one step on `core`, as the in-process store does, and lists the records it changed.
fn decide(core: &mut RouterCore, next_item: &mut u64, step: &Step) -> Decision {
    let mut queues = Vec::new();
    let outcome = match step {
        Step::Configure(queue) => {
            core.configure_queue(queue.clone());
            queues.push(queue.clone());
            Ok(None)
        }
        Step::Enqueue(now, spec) => {
            let id = WorkItemId(*next_item);
            core.item_arrived(*now, id, spec.clone()).map(|()| {
                *next_item += 1;
                Some(id)
            })
        }
        Step::Input(now, input) => core.handle(*now, input.clone()).map(|()| None),
        Step::Expire(now) => {
            core.handle_timeout(*now);
            Ok(None)
        }
        Step::CatchUp => Ok(None),
    };
    let actions: Vec<Action> = core.drain_actions().collect();
    let events = core.drain_events().collect();
    let touched = core.take_journal();
    let changes = Changes {
        queues,
        items: touched.items.iter().map(|&id| (id, core.item(id).cloned())).collect(),
        agents: touched.agents.iter().map(|&id| (id, core.agent(id).cloned())).collect(),
        next_item: *next_item,
    };
    Decision { outcome: outcome.map(|item| (item, actions)), changes, events, touched }
}

/// Writes and removals of one hash, as `commit.lua` takes them: the writes counted, then the
/// removals counted.
fn push_records<Id: std::fmt::Display>(invocation: &mut redis::ScriptInvocation<'_>, records: &[(Id, Option<String>)]) {
    invocation.arg(records.iter().filter(|(_, json)| json.is_some()).count());
    for (id, json) in records {
        if let Some(json) = json {
            invocation.arg(id.to_string()).arg(json);
        }
    }
    invocation.arg(records.iter().filter(|(_, json)| json.is_none()).count());
    for (id, json) in records {
        if json.is_none() {
            invocation.arg(id.to_string());
        }
    }
}

/// [`Changes`] as JSON, assembled from the records already encoded for the hashes.
fn changes_json(
    queues: &[(&QueueId, String)],
    items: &[(WorkItemId, Option<String>)],
    agents: &[(AgentId, Option<String>)],
    next_item: u64,
) -> String {
    fn list<Id: std::fmt::Display>(json: &mut String, records: &[(Id, Option<String>)]) {
        for (index, (id, record)) in records.iter().enumerate() {
            let separator = if index == 0 { "" } else { "," };
            let _ = write!(json, "{separator}[{id},{}]", record.as_deref().unwrap_or("null"));
        }
    }
    let mut json = String::from("{\"queues\":[");
    for (index, (_, queue)) in queues.iter().enumerate() {
        json.push_str(if index == 0 { "" } else { "," });
        json.push_str(queue);
    }
    json.push_str("],\"items\":[");
    list(&mut json, items);
    json.push_str("],\"agents\":[");
    list(&mut json, agents);
    let _ = write!(json, "],\"next_item\":{next_item}}}");
    json
}

async fn read_snapshot(connection: &mut ConnectionManager, prefix: &str) -> Result<Snapshot, StoreError> {
    type Reply =
        (Option<u64>, Option<u64>, Vec<String>, Vec<String>, Vec<String>, Vec<(String, HashMap<String, String>)>);
    let (version, next_item, queues, items, agents, last): Reply = redis::pipe()
        .atomic()
        .get(format!("{prefix}:version"))
        .get(format!("{prefix}:next-item"))
        .hvals(format!("{prefix}:queues"))
        .hvals(format!("{prefix}:items"))
        .hvals(format!("{prefix}:agents"))
        .cmd("XREVRANGE")
        .arg(format!("{prefix}:changes"))
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(connection)
        .await?;
    Ok(Snapshot {
        version: version.unwrap_or(0),
        next_item: next_item.unwrap_or(1),
        last_change: last.into_iter().next().map(|(id, _)| id).unwrap_or_default(),
        records: Records {
            queues: queues
                .iter()
                .map(|json| decode::<QueueConfig>("a queue", json).map(|queue| (queue.id.clone(), queue)))
                .collect::<Result<_, _>>()?,
            items: items
                .iter()
                .map(|json| decode::<WorkItem>("an item", json).map(|item| (item.id, item)))
                .collect::<Result<_, _>>()?,
            agents: agents
                .iter()
                .map(|json| decode::<AgentRecord>("an agent", json).map(|agent| (agent.profile.agent, agent)))
                .collect::<Result<_, _>>()?,
        },
    })
}

impl QueueStore for RedisStore {
    async fn follow_other_nodes(&self, mut on_actions: impl FnMut(Vec<Action>) + Send) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        let mut pubsub = self.shared.client.get_async_pubsub().await?;
        pubsub.subscribe(self.notify_channel()).await?;
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            let payload: String = message.get_payload()?;
            let notice: Notice = decode("notice", &payload)?;
            if notice.node != self.shared.node {
                on_actions(notice.actions);
            }
        }
        Ok(())
    }

    async fn configure_queue(&self, queue: QueueConfig) -> Result<(), StoreError> {
        self.submit(Step::Configure(queue)).await.map(drop)
    }

    async fn enqueue(&self, now: Timestamp, spec: NewWorkItem) -> Result<(WorkItemId, Vec<Action>), StoreError> {
        match self.submit(Step::Enqueue(now, spec)).await? {
            (Some(item), actions) => Ok((item, actions)),
            (None, _) => unreachable!("an accepted enqueue step names its item"),
        }
    }

    async fn apply(&self, now: Timestamp, input: Input) -> Result<Vec<Action>, StoreError> {
        Ok(self.submit(Step::Input(now, input)).await?.1)
    }

    async fn expire(&self, now: Timestamp) -> Result<Vec<Action>, StoreError> {
        Ok(self.submit(Step::Expire(now)).await?.1)
    }

    async fn next_deadline(&self) -> Result<Option<Timestamp>, StoreError> {
        self.catch_up().await?;
        Ok(self.shared.lock().ahead.next_deadline())
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
        // A commit's events share one stream entry, so a cursor may point inside an entry:
        // `<entry id>/<events of it already read>`.
        let (start, mut skip) = match cursor.0.split_once('/') {
            Some((id, read)) => (id.to_owned(), read.parse::<usize>().unwrap_or(0)),
            None if cursor.0.is_empty() => ("-".to_owned(), 0),
            None => (format!("({}", cursor.0), 0),
        };
        let mut connection = self.shared.connection.clone();
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(format!("{}:events", self.shared.prefix))
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit.max(1))
            .query_async(&mut connection)
            .await?;
        let mut events = Vec::new();
        let mut next = cursor;
        for (id, fields) in entries {
            let json = fields.into_iter().find(|(name, _)| name == "e").map(|(_, json)| json).unwrap_or_default();
            let logged: Vec<RoutingEvent> = decode(&format!("event entry {id}"), &json)?;
            for (index, event) in logged.into_iter().enumerate().skip(skip) {
                if events.len() == limit {
                    return Ok((events, EventCursor(format!("{id}/{index}"))));
                }
                events.push(event);
            }
            skip = 0;
            next = EventCursor(id);
        }
        Ok((events, next))
    }

    async fn item(&self, item: WorkItemId) -> Result<Option<WorkItem>, StoreError> {
        let json: Option<String> =
            self.shared.connection.clone().hget(format!("{}:items", self.shared.prefix), item.0).await?;
        json.map(|json| decode(&format!("item {item}"), &json)).transpose()
    }

    async fn agent(&self, agent: AgentId) -> Result<Option<AgentRecord>, StoreError> {
        let json: Option<String> =
            self.shared.connection.clone().hget(format!("{}:agents", self.shared.prefix), agent.0).await?;
        json.map(|json| decode(&format!("agent {agent}"), &json)).transpose()
    }

    async fn waiting(&self, queue: &QueueId, limit: usize) -> Result<Vec<WorkItem>, StoreError> {
        self.catch_up().await?;
        Ok(self.shared.lock().ahead.waiting(queue).take(limit).cloned().collect())
    }
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
