//! Routing benchmark: 10,000 items and 200 agents with mixed skills, languages and channels, on
//! the in-process store and on Redis. Run by `bench/routing-bench.sh`, which also measures the
//! anchor (redis-benchmark EVALSHA ZPOPMIN + HSET, 50 clients) and passes its rate in
//! `ROUTING_ANCHOR_RPS`.
//!
//! Two phases per store:
//! - throughput: all items wait, then all agents become available and work them off, each
//!   accepting and completing its offer at once; assignments/s = accepted items / elapsed.
//! - latency: agents are free and items arrive from 50 concurrent producers (one on the in-process
//!   store, which has no concurrency to offer); enqueue→offer is the time from the enqueue call to
//!   the offer it returns.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use loket_routing::core::{Action, Input};
use loket_routing::model::{
    AgentId, AgentProfile, Channel, NewWorkItem, Presence, QueueConfig, QueueId, RouterSettings, Skill,
    SkillRequirement, Timestamp, WorkItemId,
};
use loket_routing::store::QueueStore;
use loket_routing::store::memory::MemoryStore;
use loket_routing::store::redis::RedisStore;

const SERVICES: [&str; 3] = ["population", "taxes", "social"];
const LANGUAGES: [&str; 2] = ["nl", "fr"];
const PRODUCERS: usize = 50;

fn main() {
    let items: usize = env_number("ROUTING_BENCH_ITEMS", 10_000);
    let agents: usize = env_number("ROUTING_BENCH_AGENTS", 200);
    let redis_url = std::env::var("ROUTING_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let anchor: Option<f64> = std::env::var("ROUTING_ANCHOR_RPS").ok().and_then(|rps| rps.parse().ok());
    let workload = Workload::new(items, agents);

    let stores = std::env::var("ROUTING_BENCH_STORES").unwrap_or_default();
    let memory_runs_wanted = if stores == "redis" { 1 } else { 5 };
    // A run takes tens of milliseconds, so the median of five is reported.
    let mut memory_runs: Vec<Throughput> = (0..memory_runs_wanted).map(|_| memory_throughput(&workload)).collect();
    memory_runs.sort_by(|left, right| left.assignments_per_second.total_cmp(&right.assignments_per_second));
    let memory_throughput = memory_runs.swap_remove(memory_runs_wanted / 2);
    let memory_latency = memory_latency(&workload);
    if stores == "memory" {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    // One node is the goal's figure; two show what their conflicts cost (each node's losing
    // commits are decided again on the other's changes).
    let [(redis_throughput, redis_latency), (two_throughput, two_latency)] = [1, 2].map(|nodes| {
        runtime.block_on(async {
            let throughput = redis_throughput(&workload, &redis_url, nodes).await;
            let latency = redis_latency(&workload, &redis_url, nodes).await;
            (throughput, latency)
        })
    });

    println!(
        "routing benchmark: {items} items, {agents} agents, {} queues, mixed channels and NL/FR",
        SERVICES.len() * LANGUAGES.len()
    );
    println!("| store | assignments/s | enqueue/s | enqueue→offer p50 | p99 | goal | ratio to goal |");
    println!("|---|---|---|---|---|---|---|");
    let memory_goal = 200_000.0;
    println!(
        "| in-process | {:.0} | {:.0} | {} | {} | {:.0}/s | {:.2} |",
        memory_throughput.assignments_per_second,
        memory_throughput.enqueues_per_second,
        micros(memory_latency.p50),
        micros(memory_latency.p99),
        memory_goal,
        memory_throughput.assignments_per_second / memory_goal
    );
    let redis_goal = anchor.map(|anchor| anchor / 3.0);
    println!(
        "| redis | {:.0} | {:.0} | {} | {} | {} | {} |",
        redis_throughput.assignments_per_second,
        redis_throughput.enqueues_per_second,
        micros(redis_latency.p50),
        micros(redis_latency.p99),
        redis_goal.map_or("anchor/3 (no anchor given)".to_owned(), |goal| format!("{goal:.0}/s (anchor/3)")),
        redis_goal.map_or("-".to_owned(), |goal| format!("{:.2}", redis_throughput.assignments_per_second / goal)),
    );
    println!(
        "| redis, 2 nodes | {:.0} | {:.0} | {} | {} | | |",
        two_throughput.assignments_per_second,
        two_throughput.enqueues_per_second,
        micros(two_latency.p50),
        micros(two_latency.p99),
    );
    if let Some(anchor) = anchor {
        println!(
            "anchor: redis-benchmark EVALSHA ZPOPMIN+HSET, 50 clients: {anchor:.0}/s; redis store reaches {:.1} % of it",
            redis_throughput.assignments_per_second * 100.0 / anchor
        );
    }
    let anchor_cpu: Option<f64> = std::env::var("ROUTING_ANCHOR_CPU_US").ok().and_then(|micros| micros.parse().ok());
    let cpu = redis_throughput.redis_cpu_per_assignment.as_secs_f64() * 1e6;
    println!(
        "redis CPU per assignment: {cpu:.1} µs (redis busy {:.0} % of the phase){}",
        redis_throughput.redis_busy * 100.0,
        anchor_cpu.map_or(String::new(), |anchor| format!(
            "; anchor {anchor:.1} µs per claim, so a third of its rate allows {:.1} µs: ratio {:.2}",
            anchor * 3.0,
            anchor * 3.0 / cpu
        ))
    );
    println!(
        "redis round trips per assignment: {:.2} (script calls; steps decided at once share one commit)",
        redis_throughput.round_trips_per_assignment
    );
    println!(
        "2 nodes: redis CPU per assignment {:.1} µs, {:.2} round trips per assignment (with the commits that conflicted)",
        two_throughput.redis_cpu_per_assignment.as_secs_f64() * 1e6,
        two_throughput.round_trips_per_assignment
    );
}

struct Throughput {
    assignments_per_second: f64,
    enqueues_per_second: f64,
    round_trips_per_assignment: f64,
    /// Redis main-thread CPU per assignment, and the share of the elapsed time it was busy.
    redis_cpu_per_assignment: Duration,
    redis_busy: f64,
}

struct Latency {
    p50: Duration,
    p99: Duration,
}

struct Workload {
    agents: Vec<AgentProfile>,
    items: Vec<NewWorkItem>,
}

impl Workload {
    /// Deterministic: the same agents and items on every run and for every store.
    fn new(item_count: usize, agent_count: usize) -> Workload {
        let mut random = XorShift(0x5eed_1234_abcd_ef01);
        let mut agents = Vec::with_capacity(agent_count);
        for index in 0..agent_count {
            let id = AgentId(index as i64 + 1);
            let mut profile = AgentProfile::new(id);
            profile.capacity = 10;
            profile.channel_weights = [
                (Channel::Voice, 10),
                (Channel::Email, 5),
                (Channel::WebForm, 5),
                (Channel::Facebook, 5),
                (Channel::Chat, 3),
            ]
            .into_iter()
            .collect();
            // The first six cover every service and language at the top level, so every item can
            // be routed; the rest are random.
            let (languages, services): (Vec<&str>, Vec<usize>) = if index < 6 {
                (vec![["nl", "fr"][index % 2]], vec![index / 2])
            } else {
                let languages = match random.below(10) {
                    0..=6 => vec!["nl"],
                    7..=8 => vec!["fr"],
                    _ => vec!["nl", "fr"],
                };
                let first = random.below(3) as usize;
                let mut services = vec![first];
                if random.below(2) == 0 {
                    services.push((first + 1) % 3);
                }
                (languages, services)
            };
            for language in &languages {
                profile.skills.insert(Skill::new(language), 5);
            }
            for service in services {
                let level = if index < 6 { 5 } else { 1 + random.below(5) as u8 };
                profile.skills.insert(Skill::new(SERVICES[service]), level);
                for language in &languages {
                    profile.queues.push(queue_id(SERVICES[service], language));
                }
            }
            agents.push(profile);
        }
        let mut items = Vec::with_capacity(item_count);
        for _ in 0..item_count {
            let service = SERVICES[random.below(3) as usize];
            let channel = match random.below(20) {
                0..=9 => Channel::Voice,
                10..=14 => Channel::Email,
                15..=17 => Channel::WebForm,
                _ => Channel::Facebook,
            };
            let language = if random.below(10) < 7 { "nl" } else { "fr" };
            let mut spec = NewWorkItem::new(channel, queue_id(service, language));
            spec.language = Some(Skill::new(language));
            spec.required_skills =
                vec![SkillRequirement { skill: Skill::new(service), min_level: 1 + random.below(3) as u8 }];
            spec.priority = i32::from(random.below(10) == 0);
            items.push(spec);
        }
        Workload { agents, items }
    }

    fn queues(&self) -> Vec<QueueConfig> {
        SERVICES
            .iter()
            .flat_map(|service| LANGUAGES.iter().map(|language| QueueConfig::new(queue_id(service, language))))
            .collect()
    }
}

/// Queues per service and language, as loket names them (`population-nl`).
fn queue_id(service: &str, language: &str) -> QueueId {
    QueueId::new(&format!("{service}-{language}"))
}

fn settings() -> RouterSettings {
    RouterSettings {
        // Nothing in the benchmark should time out or be judged unroutable while it runs.
        offer_timeout: Duration::from_secs(600),
        unroutable_after: Duration::from_secs(3600),
        ..RouterSettings::default()
    }
}

fn memory_store(workload: &Workload, presence: Presence, now: Timestamp) -> MemoryStore {
    let store = MemoryStore::new(settings());
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime");
    runtime.block_on(async {
        for queue in workload.queues() {
            store.configure_queue(queue).await.expect("configure");
        }
    });
    for profile in &workload.agents {
        store
            .apply_now(now, Input::AgentLoggedIn { profile: profile.clone(), presence: presence.clone() })
            .expect("login");
    }
    store
}

fn memory_throughput(workload: &Workload) -> Throughput {
    let mut now = Timestamp(1_700_000_000_000);
    let store = memory_store(workload, Presence::Away { reason: "bench".to_owned() }, now);
    let enqueue_start = Instant::now();
    for spec in &workload.items {
        store.enqueue_now(now, spec.clone()).expect("enqueue");
    }
    let enqueue_elapsed = enqueue_start.elapsed();
    let start = Instant::now();
    let mut pending: VecDeque<(WorkItemId, AgentId)> = VecDeque::new();
    for profile in &workload.agents {
        let actions = store
            .apply_now(now, Input::PresenceChanged { agent: profile.agent, presence: Presence::Available })
            .expect("available");
        pending.extend(offers(&actions));
    }
    let mut assignments = 0usize;
    while let Some((item, agent)) = pending.pop_front() {
        // Virtual time: one millisecond per assignment keeps idle times distinct.
        now = Timestamp(now.0 + 1);
        pending.extend(offers(&store.apply_now(now, Input::OfferAccepted { agent, item }).expect("accept")));
        pending.extend(offers(&store.apply_now(now, Input::WorkCompleted { agent, item }).expect("complete")));
        assignments += 1;
    }
    let elapsed = start.elapsed();
    assert_eq!(assignments, workload.items.len(), "every item must be assigned");
    Throughput {
        assignments_per_second: assignments as f64 / elapsed.as_secs_f64(),
        enqueues_per_second: workload.items.len() as f64 / enqueue_elapsed.as_secs_f64(),
        round_trips_per_assignment: 0.0,
        redis_cpu_per_assignment: Duration::ZERO,
        redis_busy: 0.0,
    }
}

fn memory_latency(workload: &Workload) -> Latency {
    let mut now = Timestamp(1_700_000_000_000);
    let store = memory_store(workload, Presence::Available, now);
    let mut latencies = Vec::with_capacity(workload.items.len());
    for spec in &workload.items {
        now = Timestamp(now.0 + 1);
        let start = Instant::now();
        let (_, actions) = store.enqueue_now(now, spec.clone()).expect("enqueue");
        latencies.push(start.elapsed());
        for (item, agent) in offers(&actions) {
            store.apply_now(now, Input::OfferAccepted { agent, item }).expect("accept");
            store.apply_now(now, Input::WorkCompleted { agent, item }).expect("complete");
        }
    }
    percentiles(latencies)
}

/// `nodes` stores on one prefix, each with its own replica, as separate loket processes would be.
async fn redis_nodes(workload: &Workload, url: &str, presence: Presence, nodes: usize) -> Vec<RedisStore> {
    let prefix = format!("loket-bench:{}:{}", std::process::id(), Timestamp::now().0);
    let first = RedisStore::connect(url, &prefix, settings()).await.unwrap_or_else(|error| panic!("{error}"));
    for queue in workload.queues() {
        first.configure_queue(queue).await.expect("configure");
    }
    let now = Timestamp::now();
    let logins = workload.agents.iter().map(|profile| {
        let store = first.clone();
        let input = Input::AgentLoggedIn { profile: profile.clone(), presence: presence.clone() };
        async move { store.apply(now, input).await.expect("login") }
    });
    futures_util::future::join_all(logins).await;
    let mut stores = vec![first];
    for _ in 1..nodes {
        stores.push(RedisStore::connect(url, &prefix, settings()).await.unwrap_or_else(|error| panic!("{error}")));
    }
    stores
}

async fn redis_throughput(workload: &Workload, url: &str, nodes: usize) -> Throughput {
    let stores = redis_nodes(workload, url, Presence::Away { reason: "bench".to_owned() }, nodes).await;
    let enqueue_start = Instant::now();
    let chunks: Vec<Vec<NewWorkItem>> =
        workload.items.chunks(workload.items.len().div_ceil(PRODUCERS)).map(<[NewWorkItem]>::to_vec).collect();
    let producers = chunks.into_iter().enumerate().map(|(index, chunk)| {
        let store = stores[index % nodes].clone();
        async move {
            for spec in chunk {
                store.enqueue(Timestamp::now(), spec).await.expect("enqueue");
            }
        }
    });
    futures_util::future::join_all(producers).await;
    let enqueue_elapsed = enqueue_start.elapsed();
    let before = RedisCounters::read(url).await;
    let start = Instant::now();
    let workers = workload.agents.iter().enumerate().map(|(index, profile)| {
        let store = stores[index % nodes].clone();
        let agent = profile.agent;
        async move {
            let mut pending: VecDeque<WorkItemId> = VecDeque::new();
            let actions = store
                .apply(Timestamp::now(), Input::PresenceChanged { agent, presence: Presence::Available })
                .await
                .expect("available");
            pending.extend(offers_to(&actions, agent));
            let mut assignments = 0usize;
            while let Some(item) = pending.pop_front() {
                let accepted =
                    store.apply(Timestamp::now(), Input::OfferAccepted { agent, item }).await.expect("accept");
                pending.extend(offers_to(&accepted, agent));
                let completed =
                    store.apply(Timestamp::now(), Input::WorkCompleted { agent, item }).await.expect("complete");
                pending.extend(offers_to(&completed, agent));
                assignments += 1;
            }
            assignments
        }
    });
    let assignments: usize = futures_util::future::join_all(workers).await.into_iter().sum();
    let elapsed = start.elapsed();
    let after = RedisCounters::read(url).await;
    assert_eq!(assignments, workload.items.len(), "every item must be assigned");
    stores[0].delete_everything().await.expect("clean up");
    Throughput {
        assignments_per_second: assignments as f64 / elapsed.as_secs_f64(),
        enqueues_per_second: workload.items.len() as f64 / enqueue_elapsed.as_secs_f64(),
        round_trips_per_assignment: after.script_calls.saturating_sub(before.script_calls) as f64 / assignments as f64,
        redis_cpu_per_assignment: Duration::from_secs_f64(
            (after.cpu_seconds - before.cpu_seconds) / assignments as f64,
        ),
        redis_busy: (after.cpu_seconds - before.cpu_seconds) / elapsed.as_secs_f64(),
    }
}

async fn redis_latency(workload: &Workload, url: &str, nodes: usize) -> Latency {
    let stores = redis_nodes(workload, url, Presence::Available, nodes).await;
    let chunks: Vec<Vec<NewWorkItem>> =
        workload.items.chunks(workload.items.len().div_ceil(PRODUCERS)).map(<[NewWorkItem]>::to_vec).collect();
    let producers = chunks.into_iter().enumerate().map(|(index, chunk)| {
        let store = stores[index % nodes].clone();
        async move {
            let mut latencies = Vec::with_capacity(chunk.len());
            for spec in chunk {
                let start = Instant::now();
                let (_, actions) = store.enqueue(Timestamp::now(), spec).await.expect("enqueue");
                latencies.push(start.elapsed());
                for (item, agent) in offers(&actions) {
                    store.apply(Timestamp::now(), Input::OfferAccepted { agent, item }).await.expect("accept");
                    store.apply(Timestamp::now(), Input::WorkCompleted { agent, item }).await.expect("complete");
                }
            }
            latencies
        }
    });
    let latencies: Vec<Duration> = futures_util::future::join_all(producers).await.into_iter().flatten().collect();
    stores[0].delete_everything().await.expect("clean up");
    percentiles(latencies)
}

/// What the server counts about itself: script calls (`EVALSHA`/`EVAL`), to count round trips per
/// assignment, and its main thread's CPU time, which is what bounds its throughput.
struct RedisCounters {
    script_calls: u64,
    cpu_seconds: f64,
}

impl RedisCounters {
    async fn read(url: &str) -> RedisCounters {
        let client = redis::Client::open(url).expect("redis url");
        let mut connection = client.get_multiplexed_async_connection().await.expect("redis connection");
        let info: String =
            redis::cmd("INFO").arg("commandstats").arg("cpu").query_async(&mut connection).await.expect("info");
        let script_calls = info
            .lines()
            .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
            .filter_map(|line| line.split("calls=").nth(1))
            .filter_map(|rest| rest.split(',').next())
            .filter_map(|calls| calls.parse::<u64>().ok())
            .sum();
        let cpu_seconds = info
            .lines()
            .filter_map(|line| {
                line.strip_prefix("used_cpu_user_main_thread:")
                    .or_else(|| line.strip_prefix("used_cpu_sys_main_thread:"))
            })
            .filter_map(|seconds| seconds.trim().parse::<f64>().ok())
            .sum();
        RedisCounters { script_calls, cpu_seconds }
    }
}

fn offers(actions: &[Action]) -> Vec<(WorkItemId, AgentId)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::OfferItem { item, agent, .. } => Some((*item, *agent)),
            _ => None,
        })
        .collect()
}

fn offers_to(actions: &[Action], agent: AgentId) -> impl Iterator<Item = WorkItemId> + '_ {
    offers(actions).into_iter().filter(move |(_, offered_to)| *offered_to == agent).map(|(item, _)| item)
}

fn percentiles(mut latencies: Vec<Duration>) -> Latency {
    latencies.sort();
    let at = |fraction: f64| {
        latencies
            .get(((latencies.len() as f64 * fraction) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Latency { p50: at(0.50), p99: at(0.99) }
}

fn micros(duration: Duration) -> String {
    format!("{:.0} µs", duration.as_secs_f64() * 1e6)
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

struct XorShift(u64);

impl XorShift {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}
