//! One conformance suite, written once, run against the in-process store and a real Redis.
//!
//! Time is virtual: every call passes its own `now`, so the suite is deterministic on both stores.

mod common;

use std::time::Duration;

use common::*;
use loket_routing::core::{Action, Input, ItemState};
use loket_routing::error::{RoutingError, StoreError};
use loket_routing::event::{EventKind, TransferReason};
use loket_routing::model::{AgentId, AgentState, Channel, Presence, QueueId, Timestamp, WorkItemId};
use loket_routing::store::{EventCursor, QueueStore};

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = loket_routing::store::memory::MemoryStore::new(super::settings());
                    super::$name(&store).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $name() {
                    let fixture = super::RedisFixture::new(stringify!($name), super::settings()).await;
                    super::$name(&fixture.store).await;
                }
            )*
        }
    };
}

conformance!(
    offers_longest_idle_eligible_agent,
    breaks_idle_ties_by_skill_level,
    completing_offers_the_next_waiting_item,
    decline_excludes_the_agent_and_offers_the_next,
    missed_offers_time_out_and_set_the_agent_away,
    priority_orders_across_queues,
    relaxes_skills_step_by_step_but_never_the_language,
    unroutable_items_go_to_the_supervisor_queue,
    capacity_weights_and_interruptions,
    after_work_is_the_agents_and_survives_transfers,
    claim_is_atomic,
    abandon_withdraws_the_offer,
    supervisor_reassigns_moves_and_boosts,
    supervisor_takes_work_back_from_an_agent,
    skill_change_routes_at_once,
    offline_agent_gives_back_the_offer,
    events_are_logged_in_order,
    rejects_invalid_input_without_changes,
);

async fn setup<S: QueueStore>(store: &S, queues: &[&str]) {
    for name in queues {
        store.configure_queue(queue(name)).await.expect("configure queue");
    }
}

async fn login<S: QueueStore>(store: &S, seconds: u64, profile: loket_routing::model::AgentProfile) -> Vec<Action> {
    store.apply(at(seconds), Input::AgentLoggedIn { profile, presence: Presence::Available }).await.expect("login")
}

async fn run<S: QueueStore>(store: &S, seconds: u64, input: Input) -> Vec<Action> {
    store.apply(at(seconds), input).await.expect("input accepted")
}

async fn state<S: QueueStore>(store: &S, agent: i64) -> AgentState {
    store.agent(AgentId(agent)).await.expect("read agent").expect("agent exists").state()
}

async fn offers_longest_idle_eligible_agent<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 2, agent(1, &[("nl", 5), ("population", 3)], &["population"])).await;
    login(store, 1, agent(2, &[("nl", 5), ("population", 3)], &["population"])).await;
    login(store, 0, agent(3, &[("fr", 5), ("population", 3)], &["population"])).await;
    let (item, actions) =
        store.enqueue(at(5), item(Channel::Voice, "population", "nl", &[("population", 2)])).await.expect("enqueue");
    assert_eq!(offers(&actions), vec![(item, AgentId(2))], "agent 3 idles longest but has no NL");
    assert_eq!(state(store, 2).await, AgentState::Offered { item });
}

async fn breaks_idle_ties_by_skill_level<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 1, agent(1, &[("nl", 5), ("population", 2)], &["population"])).await;
    login(store, 1, agent(2, &[("nl", 5), ("population", 7)], &["population"])).await;
    let (item, actions) =
        store.enqueue(at(5), item(Channel::Voice, "population", "nl", &[("population", 2)])).await.expect("enqueue");
    assert_eq!(offers(&actions), vec![(item, AgentId(2))]);
}

async fn completing_offers_the_next_waiting_item<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 0, agent(1, &[("nl", 5)], &["population"])).await;
    let (first, _) = store.enqueue(at(1), item(Channel::Voice, "population", "nl", &[])).await.expect("enqueue");
    let (second, actions) = store.enqueue(at(2), item(Channel::Voice, "population", "nl", &[])).await.expect("enqueue");
    assert!(offers(&actions).is_empty(), "the agent is still being offered the first call");
    let actions = run(store, 3, Input::OfferAccepted { agent: AgentId(1), item: first }).await;
    assert!(offers(&actions).is_empty(), "a call takes the whole capacity");
    assert_eq!(state(store, 1).await, AgentState::Busy);
    let actions = run(store, 60, Input::WorkCompleted { agent: AgentId(1), item: first }).await;
    assert_eq!(offers(&actions), vec![(second, AgentId(1))]);
    assert!(store.item(first).await.expect("read").is_none(), "completed items leave the store");
}

async fn decline_excludes_the_agent_and_offers_the_next<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 0, agent(1, &[("nl", 5)], &["population"])).await;
    login(store, 1, agent(2, &[("nl", 5)], &["population"])).await;
    let (item, actions) = store.enqueue(at(2), item(Channel::Email, "population", "nl", &[])).await.expect("enqueue");
    assert_eq!(offers(&actions), vec![(item, AgentId(1))]);
    let actions = run(store, 3, Input::OfferDeclined { agent: AgentId(1), item }).await;
    assert_eq!(offers(&actions), vec![(item, AgentId(2))]);
    let actions = run(store, 4, Input::OfferDeclined { agent: AgentId(2), item }).await;
    assert!(offers(&actions).is_empty(), "both agents declined; nobody is offered it again");
    let stored = store.item(item).await.expect("read").expect("item waits");
    assert_eq!(stored.state, ItemState::Waiting);
    assert_eq!(stored.excluded, vec![AgentId(1), AgentId(2)]);
    assert_eq!(state(store, 1).await, AgentState::Available, "a decline is an answer, not a miss");
}

async fn missed_offers_time_out_and_set_the_agent_away<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 0, agent(1, &[("nl", 5)], &["population"])).await;
    login(store, 1, agent(2, &[("nl", 5)], &["population"])).await;
    let (first, _) = store.enqueue(at(2), item(Channel::Chat, "population", "nl", &[])).await.expect("enqueue");
    assert_eq!(store.next_deadline().await.expect("deadline"), Some(at(22)), "the lease runs 20 s");
    let actions = store.expire(at(22)).await.expect("expire");
    assert_eq!(offers(&actions), vec![(first, AgentId(2))], "no answer: the next agent");
    assert_eq!(state(store, 1).await, AgentState::Available, "one miss is not enough for away");
    let (second, actions) = store.enqueue(at(23), item(Channel::Chat, "population", "nl", &[])).await.expect("enqueue");
    assert_eq!(offers(&actions), vec![(second, AgentId(1))]);
    store.expire(at(43)).await.expect("expire");
    assert_eq!(state(store, 1).await, AgentState::Away { reason: "missed".to_owned() });
    let events = all_events(store).await;
    let timed_out = events.iter().filter(|event| event.kind == EventKind::TimedOut).count();
    assert_eq!(timed_out, 3, "agent 1 missed twice, agent 2 missed the first chat once");
}

async fn priority_orders_across_queues<S: QueueStore>(store: &S) {
    setup(store, &["population", "taxes"]).await;
    let (old_low, _) = store.enqueue(at(0), item(Channel::Email, "population", "nl", &[])).await.expect("enqueue");
    let mut urgent = item(Channel::Email, "taxes", "nl", &[]);
    urgent.priority = 1;
    let (young_high, _) = store.enqueue(at(30), urgent).await.expect("enqueue");
    let (young_low, _) = store.enqueue(at(31), item(Channel::Email, "taxes", "nl", &[])).await.expect("enqueue");
    let mut profile = agent(1, &[("nl", 5)], &["population", "taxes"]);
    profile.channel_weights.insert(Channel::Email, 10);
    let actions = login(store, 40, profile).await;
    assert_eq!(offers(&actions), vec![(young_high, AgentId(1))], "one priority point is worth 60 s");
    run(store, 41, Input::OfferAccepted { agent: AgentId(1), item: young_high }).await;
    let actions = run(store, 42, Input::WorkCompleted { agent: AgentId(1), item: young_high }).await;
    assert_eq!(offers(&actions), vec![(old_low, AgentId(1))], "then the oldest, whatever its queue");
    run(store, 43, Input::OfferAccepted { agent: AgentId(1), item: old_low }).await;
    let actions = run(store, 44, Input::WorkCompleted { agent: AgentId(1), item: old_low }).await;
    assert_eq!(offers(&actions), vec![(young_low, AgentId(1))]);
}

async fn relaxes_skills_step_by_step_but_never_the_language<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 0, agent(1, &[("fr", 9), ("expertise", 9), ("population", 9)], &["population"])).await;
    login(store, 0, agent(2, &[("nl", 5), ("population", 1)], &["population"])).await;
    let mut spec = item(Channel::Voice, "population", "nl", &[]);
    spec.relaxable_skills = vec![relaxable("expertise", 3, 30), relaxable("population", 5, 60)];
    let (item, actions) = store.enqueue(at(1), spec).await.expect("enqueue");
    assert!(offers(&actions).is_empty());
    assert_eq!(store.next_deadline().await.expect("deadline"), Some(at(31)));
    let actions = store.expire(at(31)).await.expect("expire");
    assert!(offers(&actions).is_empty(), "population 5 still required");
    let actions = store.expire(at(61)).await.expect("expire");
    assert_eq!(offers(&actions), vec![(item, AgentId(2))], "the FR expert never gets an NL call");
}

async fn unroutable_items_go_to_the_supervisor_queue<S: QueueStore>(store: &S) {
    let mut population = queue("population");
    population.supervisor_queue = Some(QueueId::new("supervisors"));
    store.configure_queue(population).await.expect("configure");
    setup(store, &["supervisors"]).await;
    login(store, 0, agent(1, &[("nl", 5)], &["population"])).await;
    let (item, _) = store.enqueue(at(1), item(Channel::Email, "population", "de", &[])).await.expect("enqueue");
    store.expire(at(10)).await.expect("expire");
    let stored = store.item(item).await.expect("read").expect("exists");
    assert_eq!(stored.queue, QueueId::new("population"), "not yet: 10 s grace");
    let actions = login(store, 11, agent(9, &[("de", 1)], &["supervisors"])).await;
    assert!(offers(&actions).is_empty());
    let actions = store.expire(at(11)).await.expect("expire");
    assert_eq!(offers(&actions), vec![(item, AgentId(9))]);
    let stored = store.item(item).await.expect("read").expect("exists");
    assert_eq!(stored.queue, QueueId::new("supervisors"));
    let moved = all_events(store).await.into_iter().any(|event| {
        event.kind == EventKind::Transferred { to: QueueId::new("supervisors"), reason: TransferReason::Unroutable }
    });
    assert!(moved);
}

async fn capacity_weights_and_interruptions<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 0, agent(1, &[("nl", 5)], &["population"])).await;
    let mut emails = Vec::new();
    for second in 1..=3 {
        let (email, actions) =
            store.enqueue(at(second), item(Channel::Email, "population", "nl", &[])).await.expect("enqueue");
        emails.push(email);
        if let Some((offered, agent)) = offers(&actions).first() {
            run(store, second, Input::OfferAccepted { agent: *agent, item: *offered }).await;
        }
    }
    let agent_record = store.agent(AgentId(1)).await.expect("read").expect("exists");
    assert_eq!(agent_record.used_capacity(), 10, "two emails of 5 fill a capacity of 10");
    assert_eq!(store.item(emails[2]).await.expect("read").expect("exists").state, ItemState::Waiting);
    let (call, actions) = store.enqueue(at(4), item(Channel::Voice, "population", "nl", &[])).await.expect("enqueue");
    assert!(offers(&actions).is_empty(), "a call needs the whole capacity");
    let mut interruptible = agent(1, &[("nl", 5)], &["population"]);
    interruptible.interruptions.insert(Channel::Voice, vec![Channel::Email]);
    let actions = run(store, 5, Input::ProfileChanged { profile: interruptible }).await;
    assert_eq!(offers(&actions), vec![(call, AgentId(1))], "a call may interrupt emails");
}

async fn after_work_is_the_agents_and_survives_transfers<S: QueueStore>(store: &S) {
    setup(store, &["population", "taxes"]).await;
    let mut first = agent(1, &[("nl", 5)], &["population"]);
    first.after_work.insert(Channel::Voice, Duration::from_secs(30));
    login(store, 0, first).await;
    login(store, 5, agent(2, &[("nl", 5)], &["taxes"])).await;
    let (call, _) = store.enqueue(at(1), item(Channel::Voice, "population", "nl", &[])).await.expect("enqueue");
    run(store, 2, Input::OfferAccepted { agent: AgentId(1), item: call }).await;
    let actions =
        run(store, 10, Input::ItemTransferred { agent: AgentId(1), item: call, to: QueueId::new("taxes") }).await;
    assert_eq!(offers(&actions), vec![(call, AgentId(2))]);
    assert_eq!(state(store, 1).await, AgentState::AfterWork { until: at(40) });
    let (next_call, actions) =
        store.enqueue(at(11), item(Channel::Voice, "population", "nl", &[])).await.expect("enqueue");
    assert!(offers(&actions).is_empty(), "wrap-up blocks new work");
    run(store, 12, Input::OfferAccepted { agent: AgentId(2), item: call }).await;
    run(store, 20, Input::WorkCompleted { agent: AgentId(2), item: call }).await;
    assert_eq!(state(store, 1).await, AgentState::AfterWork { until: at(40) }, "agent 2 finishing does not touch it");
    assert_eq!(store.next_deadline().await.expect("deadline"), Some(at(21)), "the unroutable check");
    store.expire(at(21)).await.expect("expire");
    assert_eq!(store.next_deadline().await.expect("deadline"), Some(at(40)));
    let actions = store.expire(at(40)).await.expect("expire");
    assert_eq!(offers(&actions), vec![(next_call, AgentId(1))], "wrap-up timed out");
}

async fn claim_is_atomic<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    let (item, _) = store.enqueue(at(0), item(Channel::WebForm, "population", "nl", &[])).await.expect("enqueue");
    store
        .apply(
            at(1),
            Input::AgentLoggedIn {
                profile: agent(1, &[("nl", 5)], &["population"]),
                presence: Presence::Away { reason: "backoffice".to_owned() },
            },
        )
        .await
        .expect("login");
    store
        .apply(
            at(1),
            Input::AgentLoggedIn {
                profile: agent(2, &[("nl", 5)], &["population"]),
                presence: Presence::Away { reason: "backoffice".to_owned() },
            },
        )
        .await
        .expect("login");
    let listed = store.waiting(&QueueId::new("population"), 10).await.expect("list");
    assert_eq!(listed.iter().map(|listed| listed.id).collect::<Vec<_>>(), vec![item]);
    let (first, second) = tokio::join!(
        store.apply(at(2), Input::ItemClaimed { agent: AgentId(1), item }),
        store.apply(at(2), Input::ItemClaimed { agent: AgentId(2), item }),
    );
    let winners = [first.is_ok(), second.is_ok()].into_iter().filter(|won| *won).count();
    assert_eq!(winners, 1, "exactly one claim wins: {first:?} {second:?}");
    let loser = if first.is_ok() { second } else { first };
    assert!(matches!(loser, Err(StoreError::Rejected(RoutingError::NotWaiting(_)))), "{loser:?}");
    assert!(matches!(store.item(item).await.expect("read").expect("exists").state, ItemState::Assigned { .. }));
}

async fn abandon_withdraws_the_offer<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 0, agent(1, &[("nl", 5)], &["population"])).await;
    let (item, _) = store.enqueue(at(1), item(Channel::Voice, "population", "nl", &[])).await.expect("enqueue");
    let actions = run(store, 3, Input::CallerAbandoned { item }).await;
    assert!(actions.contains(&Action::WithdrawItem { item, agent: AgentId(1) }));
    assert_eq!(state(store, 1).await, AgentState::Available);
    assert!(store.item(item).await.expect("read").is_none());
    assert_eq!(store.next_deadline().await.expect("deadline"), None, "the lease went with the item");
}

async fn supervisor_reassigns_moves_and_boosts<S: QueueStore>(store: &S) {
    setup(store, &["population", "taxes"]).await;
    let (first, _) = store.enqueue(at(0), item(Channel::Email, "population", "nl", &[])).await.expect("enqueue");
    let (second, _) = store.enqueue(at(10), item(Channel::Email, "population", "nl", &[])).await.expect("enqueue");
    run(store, 11, Input::ItemBoosted { item: second, by: Duration::from_secs(20) }).await;
    let order: Vec<WorkItemId> =
        store.waiting(&QueueId::new("population"), 10).await.expect("list").iter().map(|item| item.id).collect();
    assert_eq!(order, vec![second, first], "a 20 s boost puts the younger item first");
    run(store, 12, Input::PriorityChanged { item: first, priority: 2 }).await;
    let order: Vec<WorkItemId> =
        store.waiting(&QueueId::new("population"), 10).await.expect("list").iter().map(|item| item.id).collect();
    assert_eq!(order, vec![first, second]);
    login(store, 13, agent(7, &[("nl", 5)], &["taxes"])).await;
    let actions = run(store, 14, Input::ItemMoved { item: second, to: QueueId::new("taxes") }).await;
    assert_eq!(offers(&actions), vec![(second, AgentId(7))]);
    login(store, 15, agent(8, &[("nl", 5)], &["taxes"])).await;
    let actions = run(store, 16, Input::ItemReassigned { item: second, to: AgentId(8) }).await;
    assert!(actions.contains(&Action::WithdrawItem { item: second, agent: AgentId(7) }));
    assert_eq!(offers(&actions), vec![(second, AgentId(8))]);
    let actions = run(store, 17, Input::ItemReassigned { item: second, to: AgentId(8) }).await;
    assert!(actions.is_empty(), "offered to that agent already, nothing changes: {actions:?}");
    let actions = run(store, 17, Input::ItemReassigned { item: first, to: AgentId(7) }).await;
    assert_eq!(offers(&actions), vec![(first, AgentId(7))], "a supervisor may hand over across queues");
}

async fn supervisor_takes_work_back_from_an_agent<S: QueueStore>(store: &S) {
    setup(store, &["population", "taxes"]).await;
    let mut holder = agent(1, &[("nl", 5)], &["population"]);
    holder.after_work.insert(Channel::Email, Duration::from_secs(30));
    login(store, 0, holder).await;
    let (email, _) = store.enqueue(at(1), item(Channel::Email, "population", "nl", &[])).await.expect("enqueue");
    run(store, 2, Input::OfferAccepted { agent: AgentId(1), item: email }).await;
    let actions = run(store, 10, Input::ItemMoved { item: email, to: QueueId::new("population") }).await;
    assert!(actions.contains(&Action::WithdrawItem { item: email, agent: AgentId(1) }), "{actions:?}");
    assert!(offers(&actions).is_empty(), "the agent wraps up first: {actions:?}");
    assert_eq!(state(store, 1).await, AgentState::AfterWork { until: at(40) });
    let taken = store.item(email).await.expect("read").expect("the item waits again");
    assert_eq!(taken.state, ItemState::Waiting);
    assert_eq!(taken.queue_entered_at, at(10));
    let waiting = store.waiting(&QueueId::new("population"), 10).await.expect("list");
    assert_eq!(waiting.iter().map(|item| item.id).collect::<Vec<_>>(), vec![email]);
    let moved = all_events(store).await.into_iter().any(|event| {
        event.item == Some(email)
            && event.agent == Some(AgentId(1))
            && matches!(event.kind, EventKind::Transferred { reason: TransferReason::SupervisorMove, .. })
    });
    assert!(moved, "the log says who the item was taken from");
    // Taken from the agent's hands: once free, they are not offered it again; a colleague is.
    let actions = store.expire(at(40)).await.expect("expire");
    assert!(offers(&actions).is_empty(), "{actions:?}");
    assert_eq!(state(store, 1).await, AgentState::Available);
    let actions = login(store, 41, agent(2, &[("nl", 5)], &["population"])).await;
    assert_eq!(offers(&actions), vec![(email, AgentId(2))]);
    let actions = run(store, 42, Input::ItemMoved { item: email, to: QueueId::new("taxes") }).await;
    assert!(actions.contains(&Action::WithdrawItem { item: email, agent: AgentId(2) }));
    assert_eq!(state(store, 2).await, AgentState::Available, "an offer taken back leaves no wrap-up");
}

async fn skill_change_routes_at_once<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 0, agent(1, &[("nl", 5)], &["population"])).await;
    let (item, _) =
        store.enqueue(at(1), item(Channel::Voice, "population", "nl", &[("expertise", 4)])).await.expect("enqueue");
    let actions =
        run(store, 2, Input::ProfileChanged { profile: agent(1, &[("nl", 5), ("expertise", 4)], &["population"]) })
            .await;
    assert_eq!(offers(&actions), vec![(item, AgentId(1))]);
}

async fn offline_agent_gives_back_the_offer<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 0, agent(1, &[("nl", 5)], &["population"])).await;
    login(store, 1, agent(2, &[("nl", 5)], &["population"])).await;
    let (item, _) = store.enqueue(at(2), item(Channel::Voice, "population", "nl", &[])).await.expect("enqueue");
    let actions = run(store, 3, Input::PresenceChanged { agent: AgentId(1), presence: Presence::Offline }).await;
    assert!(actions.contains(&Action::WithdrawItem { item, agent: AgentId(1) }));
    assert_eq!(offers(&actions), vec![(item, AgentId(2))]);
    assert_eq!(state(store, 1).await, AgentState::Offline);
}

async fn events_are_logged_in_order<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 0, agent(1, &[("nl", 5)], &["population"])).await;
    let (item, _) = store.enqueue(at(1), item(Channel::Voice, "population", "nl", &[])).await.expect("enqueue");
    run(store, 2, Input::OfferAccepted { agent: AgentId(1), item }).await;
    run(store, 9, Input::WorkCompleted { agent: AgentId(1), item }).await;
    let kinds: Vec<(EventKind, i64)> = all_events(store)
        .await
        .into_iter()
        .filter(|event| event.item == Some(item))
        .map(|event| (event.kind, event.at.0 - common::T0.0))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::Enqueued { priority: 0 }, 1000),
            (EventKind::Offered, 1000),
            (EventKind::Accepted, 2000),
            (EventKind::Completed, 9000),
        ]
    );
    // Two events end inside a step's events (one stream entry per step on Redis).
    let (mut read, mut cursor) = store.read_events(EventCursor::default(), 2).await.expect("read");
    assert_eq!(read.len(), 2);
    loop {
        let (more, next) = store.read_events(cursor, 2).await.expect("read");
        if more.is_empty() {
            break;
        }
        read.extend(more);
        cursor = next;
    }
    assert_eq!(read, all_events(store).await, "cursors neither skip nor repeat");
    // A cursor at a time: from the start of time, everything; from far ahead, nothing.
    let from_start = store.cursor_at(Timestamp(0)).await.expect("cursor");
    assert_eq!(store.read_events(from_start, 100).await.expect("read").0, read);
    let ahead = store.cursor_at(Timestamp(i64::MAX / 2)).await.expect("cursor");
    assert!(store.read_events(ahead, 100).await.expect("read").0.is_empty());
}

async fn rejects_invalid_input_without_changes<S: QueueStore>(store: &S) {
    setup(store, &["population"]).await;
    login(store, 0, agent(1, &[("nl", 5)], &["population"])).await;
    let unknown = store.enqueue(at(1), item(Channel::Voice, "nowhere", "nl", &[])).await;
    assert!(matches!(unknown, Err(StoreError::Rejected(RoutingError::UnknownQueue(_)))));
    let (item, _) = store.enqueue(at(1), item(Channel::Voice, "population", "nl", &[])).await.expect("enqueue");
    let wrong_agent = store.apply(at(2), Input::OfferAccepted { agent: AgentId(2), item }).await;
    assert!(matches!(wrong_agent, Err(StoreError::Rejected(RoutingError::NotOfferedTo { .. }))));
    let not_assigned = store.apply(at(2), Input::WorkCompleted { agent: AgentId(1), item }).await;
    assert!(matches!(not_assigned, Err(StoreError::Rejected(RoutingError::NotAssignedTo { .. }))));
    assert_eq!(state(store, 1).await, AgentState::Offered { item });
}

async fn all_events<S: QueueStore>(store: &S) -> Vec<loket_routing::event::RoutingEvent> {
    store.read_events(EventCursor::default(), 100_000).await.expect("read events").0
}
