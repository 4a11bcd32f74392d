//! Property tests over random sequences of arrivals, answers, presence changes, supervisor
//! operations and time: the core keeps its invariants after every step, and the Redis store
//! decides exactly what the in-process store decides.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use loket_routing::core::{Action, Input, ItemState, RouterCore, WorkItem, decide};
use loket_routing::event::EventKind;
use loket_routing::model::{AgentId, AgentProfile, Channel, NewWorkItem, Presence, QueueId, WorkItemId};
use loket_routing::store::memory::MemoryStore;
use loket_routing::store::{EventCursor, QueueStore};
use loket_routing::testing::TestRouter;
use proptest::prelude::*;

const QUEUES: [&str; 3] = ["population", "taxes", "supervisors"];
const LANGUAGES: [&str; 2] = ["nl", "fr"];
const SKILLS: [&str; 3] = ["population", "taxes", "expertise"];
const AGENTS: i64 = 6;

#[derive(Clone, Debug)]
enum Op {
    Enqueue {
        queue: usize,
        channel: usize,
        language: usize,
        skill: Option<(usize, u8)>,
        relax: Option<(usize, u64)>,
        priority: i32,
        size: u32,
    },
    Login {
        agent: i64,
        seed: u32,
    },
    Presence {
        agent: i64,
        which: u8,
    },
    Accept {
        agent: i64,
    },
    Decline {
        agent: i64,
    },
    Complete {
        agent: i64,
        nth: usize,
    },
    AfterWorkDone {
        agent: i64,
    },
    Claim {
        agent: i64,
        nth: usize,
    },
    Abandon {
        nth: usize,
    },
    Transfer {
        agent: i64,
        nth: usize,
        queue: usize,
    },
    Reassign {
        nth: usize,
        agent: i64,
    },
    Boost {
        nth: usize,
        seconds: u64,
    },
    Prioritise {
        nth: usize,
        priority: i32,
    },
    Move {
        nth: usize,
        queue: usize,
    },
    Advance {
        seconds: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let agent = 1..=AGENTS;
    prop_oneof![
        4 => (
            (0..2usize, 0..6usize, 0..2usize),
            proptest::option::of((0..3usize, 1..6u8)),
            proptest::option::of((0..3usize, 1..60u64)),
            -1..3i32,
            prop_oneof![3 => Just(1u32), 1 => Just(2u32)],
        )
            .prop_map(|((queue, channel, language), skill, relax, priority, size)| {
                Op::Enqueue { queue, channel, language, skill, relax, priority, size }
            }),
        2 => (agent.clone(), any::<u32>()).prop_map(|(agent, seed)| Op::Login { agent, seed }),
        1 => (agent.clone(), 0..3u8).prop_map(|(agent, which)| Op::Presence { agent, which }),
        3 => agent.clone().prop_map(|agent| Op::Accept { agent }),
        1 => agent.clone().prop_map(|agent| Op::Decline { agent }),
        3 => (agent.clone(), 0..3usize).prop_map(|(agent, nth)| Op::Complete { agent, nth }),
        1 => agent.clone().prop_map(|agent| Op::AfterWorkDone { agent }),
        1 => (agent.clone(), 0..4usize).prop_map(|(agent, nth)| Op::Claim { agent, nth }),
        1 => (0..8usize).prop_map(|nth| Op::Abandon { nth }),
        1 => (agent.clone(), 0..3usize, 0..3usize).prop_map(|(agent, nth, queue)| Op::Transfer { agent, nth, queue }),
        1 => (0..8usize, agent.clone()).prop_map(|(nth, agent)| Op::Reassign { nth, agent }),
        1 => (0..8usize, 1..120u64).prop_map(|(nth, seconds)| Op::Boost { nth, seconds }),
        1 => (0..8usize, -1..4i32).prop_map(|(nth, priority)| Op::Prioritise { nth, priority }),
        1 => (0..8usize, 0..3usize).prop_map(|(nth, queue)| Op::Move { nth, queue }),
        3 => (0..45u64).prop_map(|seconds| Op::Advance { seconds }),
    ]
}

fn profile(agent_id: i64, seed: u32) -> AgentProfile {
    let bit = |n: u32| seed >> n & 1 == 1;
    let mut queues = vec![QUEUES[(seed % 2) as usize]];
    if bit(2) {
        queues.push(QUEUES[1 - (seed % 2) as usize]);
    }
    if bit(3) {
        queues.push("supervisors");
    }
    let mut skills: Vec<(&str, u8)> = vec![(LANGUAGES[(seed >> 4 & 1) as usize], 5)];
    if bit(5) {
        skills.push(("nl", 3));
    }
    for (index, skill) in SKILLS.iter().enumerate() {
        if bit(6 + index as u32) {
            skills.push((skill, (seed >> (10 + 2 * index)) as u8 % 6));
        }
    }
    skills.sort();
    skills.dedup_by_key(|(skill, _)| *skill);
    let mut profile = agent(agent_id, &skills, &queues);
    profile.channel_weights.insert(Channel::Chat, 3);
    if bit(16) {
        profile.after_work.insert(Channel::Voice, Duration::from_secs(u64::from(seed >> 17 & 31)));
    }
    // Fixed per agent, so that a new profile never changes what the held work was checked against.
    if agent_id % 2 == 0 {
        profile.interruptions.insert(Channel::Voice, vec![Channel::Email, Channel::Chat]);
    }
    profile
}

fn spec(
    queue: usize,
    channel: usize,
    language: usize,
    skill: Option<(usize, u8)>,
    relax: Option<(usize, u64)>,
    priority: i32,
) -> NewWorkItem {
    let required: Vec<(&str, u8)> = skill.map(|(skill, level)| (SKILLS[skill], level)).into_iter().collect();
    let mut spec = item(Channel::ALL[channel], QUEUES[queue], LANGUAGES[language], &required);
    spec.relaxable_skills = relax.map(|(skill, after)| relaxable(SKILLS[skill], 3, after)).into_iter().collect();
    spec.priority = priority;
    spec
}

/// What to do next, resolved against the reference state so both stores get the same input.
enum Step {
    Enqueue(NewWorkItem),
    Input(Input),
    Advance(Duration),
}

fn resolve(core: &RouterCore, op: &Op) -> Option<Step> {
    let mut items: Vec<&WorkItem> = core.items().collect();
    items.sort_by_key(|item| item.id);
    let nth_item = |nth: usize| items.get(nth % items.len().max(1)).map(|item| item.id);
    let offered_to = |agent: i64| core.agent(AgentId(agent)).and_then(|record| record.offered_item());
    let step = match *op {
        Op::Enqueue { queue, channel, language, skill, relax, priority, size } => {
            let mut spec = spec(queue, channel, language, skill, relax, priority);
            spec.size = size;
            Step::Enqueue(spec)
        }
        Op::Login { agent, seed } => {
            Step::Input(Input::AgentLoggedIn { profile: profile(agent, seed), presence: Presence::Available })
        }
        Op::Presence { agent, which } => Step::Input(Input::PresenceChanged {
            agent: AgentId(agent),
            presence: match which {
                0 => Presence::Available,
                1 => Presence::Away { reason: "break".to_owned() },
                _ => Presence::Offline,
            },
        }),
        Op::Accept { agent } => Step::Input(Input::OfferAccepted { agent: AgentId(agent), item: offered_to(agent)? }),
        Op::Decline { agent } => Step::Input(Input::OfferDeclined { agent: AgentId(agent), item: offered_to(agent)? }),
        Op::Complete { agent, nth } => {
            let record = core.agent(AgentId(agent))?;
            let accepted: Vec<WorkItemId> =
                record.work.iter().filter(|held| held.accepted).map(|held| held.item).collect();
            Step::Input(Input::WorkCompleted {
                agent: AgentId(agent),
                item: *accepted.get(nth % accepted.len().max(1))?,
            })
        }
        Op::AfterWorkDone { agent } => Step::Input(Input::AfterWorkDone { agent: AgentId(agent) }),
        Op::Claim { agent, nth } => Step::Input(Input::ItemClaimed { agent: AgentId(agent), item: nth_item(nth)? }),
        Op::Abandon { nth } => Step::Input(Input::CallerAbandoned { item: nth_item(nth)? }),
        Op::Transfer { agent, nth, queue } => {
            let record = core.agent(AgentId(agent))?;
            let accepted: Vec<WorkItemId> =
                record.work.iter().filter(|held| held.accepted).map(|held| held.item).collect();
            Step::Input(Input::ItemTransferred {
                agent: AgentId(agent),
                item: *accepted.get(nth % accepted.len().max(1))?,
                to: QueueId::new(QUEUES[queue]),
            })
        }
        Op::Reassign { nth, agent } => Step::Input(Input::ItemReassigned { item: nth_item(nth)?, to: AgentId(agent) }),
        Op::Boost { nth, seconds } => {
            Step::Input(Input::ItemBoosted { item: nth_item(nth)?, by: Duration::from_secs(seconds) })
        }
        Op::Prioritise { nth, priority } => Step::Input(Input::PriorityChanged { item: nth_item(nth)?, priority }),
        Op::Move { nth, queue } => {
            Step::Input(Input::ItemMoved { item: nth_item(nth)?, to: QueueId::new(QUEUES[queue]) })
        }
        Op::Advance { seconds } => Step::Advance(Duration::from_secs(seconds)),
    };
    Some(step)
}

fn queues() -> Vec<loket_routing::model::QueueConfig> {
    QUEUES
        .iter()
        .map(|name| {
            let mut config = queue(name);
            if *name != "supervisors" {
                config.supervisor_queue = Some(QueueId::new("supervisors"));
            }
            if *name == "taxes" {
                // Default skills apply to every item of the queue, on top of the item's own.
                config.default_skills = vec![requirement("taxes", 1)];
            }
            config
        })
        .collect()
}

/// Checks every invariant of the issue on the core after a step; `offered` are this step's offers
/// and `before` the items as they were before it.
fn check_invariants(
    router: &TestRouter,
    enqueued: &BTreeSet<WorkItemId>,
    offered: &[(WorkItemId, AgentId)],
    before: &BTreeMap<WorkItemId, WorkItem>,
) -> Result<(), TestCaseError> {
    let core = &router.core;
    let finished: BTreeSet<WorkItemId> = router
        .events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::Completed | EventKind::Abandoned))
        .filter_map(|event| event.item)
        .collect();
    for id in enqueued {
        prop_assert!(core.item(*id).is_some() != finished.contains(id), "item {id} lost or finished twice");
    }
    let mut holders: BTreeMap<WorkItemId, Vec<AgentId>> = BTreeMap::new();
    for agent in core.agents() {
        // Each held item fit when it came: with the work held before it that its channel may not
        // interrupt (all of it, without interruptions) it stays within the capacity.
        for (index, held) in agent.work.iter().enumerate() {
            let blocking: u32 = agent.work[..index]
                .iter()
                .filter(|earlier| !agent.profile.may_interrupt(held.channel, earlier.channel))
                .map(|earlier| earlier.cost)
                .sum();
            prop_assert!(blocking + held.cost <= agent.profile.capacity, "agent {} over capacity", agent.profile.agent);
        }
        prop_assert!(agent.work.iter().filter(|held| !held.accepted).count() <= 1, "two offers at once");
        for held in &agent.work {
            holders.entry(held.item).or_default().push(agent.profile.agent);
            let item = core.item(held.item);
            let expected = match item.map(|item| item.state) {
                Some(ItemState::Offered { agent: offered_to, .. }) => {
                    !held.accepted && offered_to == agent.profile.agent
                }
                Some(ItemState::Assigned { agent: assigned }) => held.accepted && assigned == agent.profile.agent,
                _ => false,
            };
            prop_assert!(expected, "agent {} holds {} in the wrong state", agent.profile.agent, held.item);
        }
    }
    for (item, agents) in &holders {
        prop_assert_eq!(agents.len(), 1, "item {} held by {:?}", item, agents);
    }
    for item in core.items() {
        if let ItemState::Offered { agent, .. } | ItemState::Assigned { agent } = item.state {
            prop_assert_eq!(
                holders.get(&item.id).map(Vec::as_slice),
                Some(&[agent][..]),
                "item {} not held by its agent",
                item.id
            );
        }
    }
    prop_assert_eq!(
        core.missed_match(router.now),
        None,
        "an eligible waiting item was not offered to a free eligible agent"
    );
    for (offered_item, agent_id) in offered {
        let Some(offered_score) = core.item(*offered_item).map(|item| decide::score(core.settings(), item)) else {
            continue;
        };
        let Some(agent) = core.agent(*agent_id) else { continue };
        let mut before_offer = agent.clone();
        before_offer.work.retain(|held| held.item != *offered_item);
        // Only items that waited unchanged through the whole step were there to be chosen; one
        // that moved into the agent's queue after the offer (a timeout, an unroutable move) was not.
        let unchanged = |item: &&WorkItem| before.get(&item.id) == Some(*item);
        for waiting in core.items().filter(|item| item.state == ItemState::Waiting).filter(unchanged) {
            let better = decide::score(core.settings(), waiting) < offered_score;
            let eligible = decide::is_eligible(core.queue(&waiting.queue), waiting, &before_offer, router.now);
            prop_assert!(
                !(better && eligible),
                "agent {} got {} while better-scored {} waited",
                agent_id,
                offered_item,
                waiting.id
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn core_keeps_its_invariants(ops in proptest::collection::vec(op(), 1..80)) {
        let mut router = TestRouter::new(settings(), queues(), T0);
        let mut enqueued = BTreeSet::new();
        for op in &ops {
            let Some(step) = resolve(&router.core, op) else { continue };
            if let Step::Advance(duration) = step {
                // One deadline at a time, so that each offer is checked at the moment it was made.
                let until = router.now.plus(duration);
                while router.core.next_deadline().is_some_and(|deadline| deadline <= until) {
                    let before = snapshot(&router);
                    let from = router.actions.len();
                    router.advance_to_next_deadline();
                    let offered = offers(&router.actions_since(from).cloned().collect::<Vec<Action>>());
                    check_invariants(&router, &enqueued, &offered, &before)?;
                }
                router.advance(until.since(router.now));
                continue;
            }
            let before = snapshot(&router);
            let from = router.actions.len();
            match step {
                Step::Enqueue(spec) => {
                    if let Ok(id) = router.enqueue(spec) {
                        enqueued.insert(id);
                    }
                }
                Step::Input(input) => {
                    let _ = router.handle(input);
                }
                Step::Advance(_) => {}
            }
            let offered: Vec<(WorkItemId, AgentId)> = offers(&router.actions_since(from).cloned().collect::<Vec<Action>>());
            check_invariants(&router, &enqueued, &offered, &before)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The Redis store decides on a replica of the same core and commits the records the core's
    /// journal lists; any difference would be a bug in the journal, the commit or the replication.
    /// Two nodes take the steps in turn, so that each step meets a replica one step behind: its
    /// commit conflicts, and the node catches up from the change stream, undoes its own decision
    /// and decides again. A third node, connected after the last step, loads the records. All
    /// must see the in-process waiting lists and deadlines, and the event log must be the
    /// in-process one. Every agent logs in first, so that offers, accepts and completions make up
    /// much of each sequence.
    #[test]
    fn redis_decides_like_memory(
        seeds in proptest::collection::vec(any::<u32>(), AGENTS as usize),
        ops in proptest::collection::vec(op(), 1..50),
    ) {
        let logins = seeds.iter().zip(1..=AGENTS).map(|(seed, agent)| Op::Login { agent, seed: *seed });
        let ops: Vec<Op> = logins.chain(ops).collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let memory = MemoryStore::new(settings());
            let fixture = RedisFixture::new("differential", settings()).await;
            let second = fixture.another_node(settings()).await;
            let nodes = [&fixture.store, &second];
            let redis = nodes[0];
            for config in queues() {
                memory.configure_queue(config.clone()).await.expect("configure");
                redis.configure_queue(config).await.expect("configure");
            }
            let mut reference = TestRouter::new(settings(), queues(), T0);
            for (turn, op) in ops.iter().enumerate() {
                let Some(step) = resolve(&reference.core, op) else { continue };
                let now = reference.now;
                let redis = nodes[turn % 2];
                let (expected, actual) = match step {
                    Step::Enqueue(spec) => {
                        let _ = reference.enqueue(spec.clone());
                        let expected = memory.enqueue(now, spec.clone()).await.map(|(id, actions)| (id, normalise(actions)));
                        let actual = redis.enqueue(now, spec).await.map(|(id, actions)| (id, normalise(actions)));
                        (format!("{expected:?}"), format!("{actual:?}"))
                    }
                    Step::Input(input) => {
                        let _ = reference.handle(input.clone());
                        let expected = memory.apply(now, input.clone()).await.map(normalise);
                        let actual = redis.apply(now, input).await.map(normalise);
                        (format!("{expected:?}"), format!("{actual:?}"))
                    }
                    Step::Advance(duration) => {
                        let until = now.plus(duration);
                        let mut expected = Vec::new();
                        let mut actual = Vec::new();
                        // Step deadline by deadline, as the engine does, so both act at the same instants.
                        while let Some(deadline) = memory.next_deadline().await.expect("deadline") {
                            if deadline > until {
                                break;
                            }
                            let redis_deadline = redis.next_deadline().await.expect("deadline");
                            prop_assert_eq!(Some(deadline), redis_deadline, "next deadline differs");
                            let at = deadline.max(now);
                            expected.extend(memory.expire(at).await.expect("expire"));
                            actual.extend(redis.expire(at).await.expect("expire"));
                        }
                        reference.advance(duration);
                        (format!("{:?}", normalise(expected)), format!("{:?}", normalise(actual)))
                    }
                };
                prop_assert_eq!(expected, actual, "after {:?}", op);
            }
            for id in 1..=40u64 {
                let expected = memory.item(WorkItemId(id)).await.expect("read");
                let actual = redis.item(WorkItemId(id)).await.expect("read");
                prop_assert_eq!(expected, actual, "item {} differs at the end", id);
            }
            for id in 1..=AGENTS {
                let expected = memory.agent(AgentId(id)).await.expect("read");
                let actual = redis.agent(AgentId(id)).await.expect("read");
                prop_assert_eq!(expected, actual, "agent {} differs at the end", id);
            }
            let latecomer = fixture.another_node(settings()).await;
            let expected_deadline = memory.next_deadline().await.expect("deadline");
            for (name, node) in [("first", nodes[0]), ("second", nodes[1]), ("latecomer", &latecomer)] {
                prop_assert_eq!(expected_deadline, node.next_deadline().await.expect("deadline"), "{} deadline", name);
                for queue in queues() {
                    let expected = memory.waiting(&queue.id, 100).await.expect("waiting");
                    let actual = node.waiting(&queue.id, 100).await.expect("waiting");
                    prop_assert_eq!(expected, actual, "{} waiting in {:?}", name, queue.id);
                }
            }
            let (expected_events, _) = memory.read_events(EventCursor::default(), 100_000).await.expect("events");
            let (actual_events, _) = redis.read_events(EventCursor::default(), 100_000).await.expect("events");
            prop_assert_eq!(expected_events, actual_events, "the event logs differ");
            Ok(())
        })?;
    }
}

fn snapshot(router: &TestRouter) -> BTreeMap<WorkItemId, WorkItem> {
    router.core.items().map(|item| (item.id, item.clone())).collect()
}

/// The order of actions within one step is an implementation detail of each store.
fn normalise(mut actions: Vec<Action>) -> Vec<Action> {
    actions.sort_by_key(|action| format!("{action:?}"));
    actions
}
