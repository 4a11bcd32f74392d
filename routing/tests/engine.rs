//! The async edge with real timers and a real Redis: lease expiry, the reconciler after a node
//! dies, and two routers on one Redis that never assign an item twice.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use common::private_redis::PrivateRedis;
use common::*;
use loket_routing::core::{Action, Input};
use loket_routing::engine::{EngineOptions, Router};
use loket_routing::error::{RoutingError, StoreError};
use loket_routing::event::EventKind;
use loket_routing::model::{AgentId, AgentState, Channel, Presence, RouterSettings, Timestamp, WorkItemId};
use loket_routing::store::memory::MemoryStore;
use loket_routing::store::redis::RedisStore;
use loket_routing::store::{EventCursor, QueueStore};
use tokio::sync::broadcast;

fn fast_settings() -> RouterSettings {
    RouterSettings { offer_timeout: Duration::from_millis(300), ..settings() }
}

fn options() -> EngineOptions {
    EngineOptions { reconcile_every: Duration::from_millis(100), ..EngineOptions::default() }
}

/// Waits for the first action that `wanted` accepts, failing the test after `limit`.
async fn wait_for(
    actions: &mut broadcast::Receiver<Action>,
    limit: Duration,
    wanted: impl Fn(&Action) -> bool,
) -> Action {
    let waiting = async {
        loop {
            match actions.recv().await {
                Ok(action) if wanted(&action) => return action,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("action stream closed"),
            }
        }
    };
    tokio::time::timeout(limit, waiting).await.expect("the expected action did not come in time")
}

fn is_offer_to(agent: i64) -> impl Fn(&Action) -> bool {
    move |action| matches!(action, Action::OfferItem { agent: offered, .. } if *offered == AgentId(agent))
}

#[tokio::test]
async fn unanswered_offer_moves_on_when_the_lease_expires() {
    let store = Arc::new(MemoryStore::new(fast_settings()));
    store.configure_queue(queue("population")).await.expect("configure");
    let router = Router::start(store, options());
    let mut actions = router.subscribe();
    for (id, profile) in [(1, agent(1, &[("nl", 5)], &["population"])), (2, agent(2, &[("nl", 5)], &["population"]))] {
        router.execute(Input::AgentLoggedIn { profile, presence: Presence::Available }).await.expect("login");
        // Distinct idle times make the first offer go to agent 1.
        wait_for(&mut actions, Duration::from_secs(1), move |action| {
            matches!(action, Action::ShowAgentState { agent, state: AgentState::Available } if *agent == AgentId(id))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (item, first) = router.enqueue(item(Channel::Voice, "population", "nl", &[])).await.expect("enqueue");
    assert_eq!(offers(&first), vec![(item, AgentId(1))]);
    wait_for(&mut actions, Duration::from_secs(3), is_offer_to(2)).await;
    let record = router.store().agent(AgentId(1)).await.expect("read").expect("exists");
    assert_eq!(record.missed_offers, 1);
}

#[tokio::test]
async fn a_surviving_node_expires_the_leases_of_a_dead_one() {
    let dead = RedisFixture::new("dead-node", fast_settings()).await;
    dead.store.configure_queue(queue("population")).await.expect("configure");
    let now = Timestamp::now();
    dead.store
        .apply(
            now,
            Input::AgentLoggedIn { profile: agent(1, &[("nl", 5)], &["population"]), presence: Presence::Available },
        )
        .await
        .expect("login");
    let (item, actions) =
        dead.store.enqueue(now, item(Channel::Voice, "population", "nl", &[])).await.expect("enqueue");
    assert_eq!(offers(&actions), vec![(item, AgentId(1))]);
    // The deciding node has no engine: it "crashed" right after offering.
    let survivor = dead.another_node(fast_settings()).await;
    let router = Router::start(Arc::new(survivor), options());
    let mut actions = router.subscribe();
    wait_for(&mut actions, Duration::from_secs(3), |action| {
        matches!(action, Action::ShowAgentState { agent, state: AgentState::Available } if *agent == AgentId(1))
    })
    .await;
    let (events, _) = router.store().read_events(EventCursor::default(), 1000).await.expect("events");
    assert!(events.iter().any(|event| event.kind == EventKind::TimedOut && event.item == Some(item)));
}

/// The queue "population", agent 1 logged in to it, and an email offered to the agent.
async fn an_offer_to_agent_1(store: &RedisStore, now: Timestamp) -> WorkItemId {
    store.configure_queue(queue("population")).await.expect("configure");
    let profile = agent(1, &[("nl", 5)], &["population"]);
    store.apply(now, Input::AgentLoggedIn { profile, presence: Presence::Available }).await.expect("login");
    let (item, actions) = store.enqueue(now, item(Channel::Email, "population", "nl", &[])).await.expect("enqueue");
    assert_eq!(offers(&actions), vec![(item, AgentId(1))]);
    item
}

#[tokio::test]
async fn a_node_starts_again_from_what_redis_holds_when_redis_lost_its_keys() {
    let fixture = RedisFixture::new("emptied", fast_settings()).await;
    let store = &fixture.store;
    let population = queue("population");
    let now = Timestamp::now();
    let first = an_offer_to_agent_1(store, now).await;
    store.delete_everything().await.expect("Redis emptied");
    // The replica still has agent 1; its commit finds Redis at version 0, so the node reloads
    // the (now empty) records and decides again, at once, instead of trying the stale version.
    let away = Input::PresenceChanged { agent: AgentId(1), presence: Presence::Away { reason: "break".to_owned() } };
    let answer = tokio::time::timeout(Duration::from_secs(5), store.apply(now, away)).await.expect("answered in time");
    assert!(
        matches!(answer, Err(StoreError::Rejected(RoutingError::UnknownAgent(AgentId(1))))),
        "the agent is gone with the keys: {answer:?}"
    );
    store.configure_queue(population.clone()).await.expect("configure again");
    let (again, _) = store.enqueue(now, item(Channel::Email, "population", "nl", &[])).await.expect("enqueue");
    assert_eq!(again, first, "item ids start again with the records");
    assert_eq!(store.waiting(&population.id, 10).await.expect("waiting").len(), 1);
}

#[tokio::test]
async fn a_node_carries_on_when_its_redis_restarts() {
    let mut server = PrivateRedis::start();
    let store = RedisStore::connect(&server.url(), "restart", fast_settings()).await.expect("connect");
    let population = queue("population");
    let now = Timestamp::now();
    let item_id = an_offer_to_agent_1(&store, now).await;
    server.stop();
    let accept = Input::OfferAccepted { agent: AgentId(1), item: item_id };
    let during = tokio::time::timeout(Duration::from_secs(15), store.apply(now, accept)).await.expect("answered");
    assert!(matches!(during, Err(StoreError::CommitUncertain { .. })), "no Redis, no commit: {during:?}");
    // The server comes back empty: the connection is made again by itself, and the node starts
    // again from the empty records (as when Redis lost its keys).
    server.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Err(error) = store.configure_queue(population.clone()).await {
        assert!(tokio::time::Instant::now() < deadline, "no commit 10 s after Redis came back: {error}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (again, _) = store.enqueue(now, item(Channel::Email, "population", "nl", &[])).await.expect("enqueue");
    assert_eq!(again, WorkItemId(1), "item ids start again with the records");
    assert_eq!(store.waiting(&population.id, 10).await.expect("waiting").len(), 1);
}

#[tokio::test]
async fn other_nodes_are_heard_again_after_redis_restarts() {
    let mut server = PrivateRedis::start();
    let deciding = RedisStore::connect(&server.url(), "resubscribe", fast_settings()).await.expect("connect");
    let listening = RedisStore::connect(&server.url(), "resubscribe", fast_settings()).await.expect("connect");
    let router = Router::start(Arc::new(listening), options());
    let mut heard = router.subscribe();
    deciding.configure_queue(queue("population")).await.expect("configure");
    hear_the_other_node(&deciding, &mut heard, Duration::from_secs(5), "before the restart").await;
    server.stop();
    server.restart();
    // The listener lost its channel with the server and subscribes again a second later; until
    // then the other node's actions are not heard.
    hear_the_other_node(&deciding, &mut heard, Duration::from_secs(10), "after the restart").await;
}

/// Has `deciding` change agent 1's presence until the listener hears it, for at most `within`.
async fn hear_the_other_node(
    deciding: &RedisStore,
    heard: &mut broadcast::Receiver<Action>,
    within: Duration,
    when: &str,
) {
    let profile = agent(1, &[("nl", 5)], &["population"]);
    let deadline = tokio::time::Instant::now() + within;
    let mut presence = Presence::Available;
    loop {
        let input = Input::AgentLoggedIn { profile: profile.clone(), presence: presence.clone() };
        // A commit may fail while the connection is made again: then the next turn tries again.
        if deciding.apply(Timestamp::now(), input).await.is_ok() {
            let listened = tokio::time::timeout(Duration::from_millis(200), async {
                loop {
                    match heard.recv().await {
                        Ok(Action::ShowAgentState { agent: AgentId(1), .. }) => return,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => panic!("action stream closed"),
                    }
                }
            });
            if listened.await.is_ok() {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the other node was not heard {when}, within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        presence = match presence {
            Presence::Available => Presence::Away { reason: "break".to_owned() },
            _ => Presence::Available,
        };
    }
}

/// A node ignores notices that carry its own id, so two nodes with one id would not hear each
/// other. Connections made within one millisecond, in one process, must still differ.
#[tokio::test]
async fn every_node_has_its_own_id() {
    let fixture = RedisFixture::new("node-ids", fast_settings()).await;
    let mut ids = BTreeSet::from([fixture.store.node().to_owned()]);
    for _ in 0..20 {
        ids.insert(fixture.another_node(fast_settings()).await.node().to_owned());
    }
    assert_eq!(ids.len(), 21, "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_on_one_redis_never_double_assign() {
    const AGENTS: i64 = 12;
    const ITEMS: usize = 240;
    let fixture = RedisFixture::new("two-routers", fast_settings()).await;
    fixture.store.configure_queue(queue("population")).await.expect("configure");
    let other = fixture.another_node(fast_settings()).await;
    let routers = [
        Arc::new(Router::start(Arc::new(fixture.store.clone()), options())),
        Arc::new(Router::start(Arc::new(other), options())),
    ];
    // Agents with an odd id answer on router 0, even ones on router 1; offers decided by the
    // other router reach them through pub/sub.
    let mut workers = Vec::new();
    for (home, router) in routers.iter().enumerate() {
        let mut actions = router.subscribe();
        let router = router.clone();
        workers.push(tokio::spawn(async move {
            let mut completed = 0usize;
            loop {
                let action = match actions.recv().await {
                    Ok(action) => action,
                    Err(broadcast::error::RecvError::Lagged(missed)) => panic!("worker lagged by {missed}"),
                    Err(broadcast::error::RecvError::Closed) => return completed,
                };
                let Action::OfferItem { item, agent, .. } = action else { continue };
                if agent.0 as usize % 2 != home {
                    continue;
                }
                if router.execute(Input::OfferAccepted { agent, item }).await.is_ok() {
                    router.execute(Input::WorkCompleted { agent, item }).await.expect("complete");
                    completed += 1;
                }
            }
        }));
    }
    for id in 1..=AGENTS {
        let router = &routers[id as usize % 2];
        router
            .execute(Input::AgentLoggedIn {
                profile: agent(id, &[("nl", 5)], &["population"]),
                presence: Presence::Available,
            })
            .await
            .expect("login");
    }
    let mut enqueuers = Vec::new();
    for (index, router) in routers.iter().enumerate() {
        let router = router.clone();
        enqueuers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..ITEMS / 2 {
                let channel = if index == 0 { Channel::Voice } else { Channel::Email };
                ids.push(router.enqueue(item(channel, "population", "nl", &[])).await.expect("enqueue").0);
            }
            ids
        }));
    }
    let mut enqueued = BTreeSet::new();
    for enqueuer in enqueuers {
        enqueued.extend(enqueuer.await.expect("enqueuer"));
    }
    assert_eq!(enqueued.len(), ITEMS, "item ids are unique across nodes");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut cursor = EventCursor::default();
    let mut completed: BTreeSet<WorkItemId> = BTreeSet::new();
    let mut holder: BTreeMap<WorkItemId, AgentId> = BTreeMap::new();
    let mut load: BTreeMap<AgentId, u32> = BTreeMap::new();
    let mut accepted_twice = Vec::new();
    let mut accepted: BTreeSet<WorkItemId> = BTreeSet::new();
    while completed.len() < ITEMS {
        assert!(tokio::time::Instant::now() < deadline, "only {} of {ITEMS} items completed in time", completed.len());
        let (events, next) = fixture.store.read_events(cursor, 10_000).await.expect("events");
        cursor = next;
        if events.is_empty() {
            // The log is read as it grows; a short pause between reads of an idle stream.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for event in events {
            let (Some(item), Some(agent)) = (event.item, event.agent) else { continue };
            match event.kind {
                EventKind::Offered => {
                    assert_eq!(holder.insert(item, agent), None, "item {item} offered to {agent} while held");
                    let units = load.entry(agent).or_default();
                    *units += if event.channel == Some(Channel::Voice) { 10 } else { 5 };
                    assert!(*units <= 10, "agent {agent} over capacity");
                }
                EventKind::Declined | EventKind::TimedOut | EventKind::Completed => {
                    assert_eq!(
                        holder.remove(&item),
                        Some(agent),
                        "item {item} released by {agent} who did not hold it"
                    );
                    *load.entry(agent).or_default() -= if event.channel == Some(Channel::Voice) { 10 } else { 5 };
                    if event.kind == EventKind::Completed {
                        completed.insert(item);
                    }
                }
                EventKind::Accepted if !accepted.insert(item) => accepted_twice.push(item),
                _ => {}
            }
        }
    }
    assert!(accepted_twice.is_empty(), "accepted twice: {accepted_twice:?}");
    assert_eq!(completed, enqueued);
    drop(routers);
    for worker in workers {
        worker.abort();
    }
}
