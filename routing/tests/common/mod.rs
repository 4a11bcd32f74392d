//! Builders and the Redis fixture shared by the integration tests.

#![allow(dead_code, reason = "each test binary uses a different subset of these helpers")]

use std::time::Duration;

use loket_routing::core::Action;
use loket_routing::model::{
    AgentId, AgentProfile, Channel, NewWorkItem, QueueConfig, QueueId, RelaxableSkill, RouterSettings, Skill,
    SkillRequirement, Timestamp, WorkItemId,
};
use loket_routing::store::redis::RedisStore;

#[path = "../../../tests/support/private_redis.rs"]
pub mod private_redis;

pub const T0: Timestamp = Timestamp(1_700_000_000_000);

pub fn at(seconds: u64) -> Timestamp {
    T0.plus(Duration::from_secs(seconds))
}

pub fn settings() -> RouterSettings {
    RouterSettings {
        priority_step: Duration::from_secs(60),
        offer_timeout: Duration::from_secs(20),
        max_missed_offers: 2,
        unroutable_after: Duration::from_secs(10),
    }
}

pub fn queue(name: &str) -> QueueConfig {
    QueueConfig::new(QueueId::new(name))
}

pub fn requirement(skill: &str, min_level: u8) -> SkillRequirement {
    SkillRequirement { skill: Skill::new(skill), min_level }
}

/// An agent with capacity 10: a call takes all of it, an email or a comment 5.
pub fn agent(id: i64, skills: &[(&str, u8)], queues: &[&str]) -> AgentProfile {
    let mut profile = AgentProfile::new(AgentId(id));
    profile.skills = skills.iter().map(|(skill, level)| (Skill::new(skill), *level)).collect();
    profile.queues = queues.iter().map(|queue| QueueId::new(queue)).collect();
    profile.capacity = 10;
    profile.channel_weights =
        [(Channel::Voice, 10), (Channel::Email, 5), (Channel::Facebook, 5), (Channel::WebForm, 5)]
            .into_iter()
            .collect();
    profile
}

pub fn item(channel: Channel, queue: &str, language: &str, required: &[(&str, u8)]) -> NewWorkItem {
    let mut spec = NewWorkItem::new(channel, QueueId::new(queue));
    spec.language = Some(Skill::new(language));
    spec.required_skills = required.iter().map(|(skill, level)| requirement(skill, *level)).collect();
    spec
}

pub fn relaxable(skill: &str, level: u8, after_seconds: u64) -> RelaxableSkill {
    RelaxableSkill { requirement: requirement(skill, level), drop_after: Duration::from_secs(after_seconds) }
}

pub fn offers(actions: &[Action]) -> Vec<(WorkItemId, AgentId)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::OfferItem { item, agent, .. } => Some((*item, *agent)),
            _ => None,
        })
        .collect()
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A Redis store under a prefix of its own, deleted again when the fixture drops, also when the
/// test panicked.
pub struct RedisFixture {
    pub store: RedisStore,
    prefix: String,
}

impl RedisFixture {
    pub async fn new(test: &str, settings: RouterSettings) -> RedisFixture {
        let prefix = format!("loket-test:{test}:{}:{}", std::process::id(), unique());
        let url = redis_url();
        let store = match RedisStore::connect(&url, &prefix, settings).await {
            Ok(store) => store,
            Err(error) => {
                panic!("Redis is missing for the routing tests. {error} (or `apt-get install redis-server` first)")
            }
        };
        RedisFixture { store, prefix }
    }

    /// A second node on the same keys, with its own replica.
    pub async fn another_node(&self, settings: RouterSettings) -> RedisStore {
        RedisStore::connect(&redis_url(), &self.prefix, settings).await.expect("a second node connects")
    }
}

impl Drop for RedisFixture {
    fn drop(&mut self) {
        // Drop cannot await, and the test's runtime is busy here, so this uses a blocking
        // connection of its own.
        let Ok(mut connection) = self.store.client().get_connection() else {
            return;
        };
        let mut cursor: u64 = 0;
        loop {
            let scanned: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(self.store.key_pattern())
                .arg("COUNT")
                .arg(1000)
                .query(&mut connection);
            let Ok((next, keys)) = scanned else {
                return;
            };
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut connection);
            }
            if next == 0 {
                return;
            }
            cursor = next;
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos) * 1000 + NEXT.fetch_add(1, Ordering::Relaxed)
}
