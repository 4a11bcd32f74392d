//! One conformance suite for every location store: the in-process one and Redis (at `REDIS_URL`,
//! default `redis://127.0.0.1:6379`; a missing Redis fails the test with the reason).

use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use loket_sip::registrar::redis::RedisStore;
use loket_sip::registrar::{Binding, LocationStore, MemoryStore, Refusal};
use loket_sip::transport::Protocol;

#[path = "../../tests/support/private_redis.rs"]
mod private_redis;

/// Whole seconds at the start of the run: Redis expires keys on the real clock, so the simulated
/// times must be near it (and whole milliseconds, which is what Redis stores).
static START: LazyLock<u64> =
    LazyLock::new(|| SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs());

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(*START + seconds)
}

fn binding(contact: &str, expires: u64, cseq: u32) -> Binding {
    Binding {
        contact: contact.to_owned(),
        expires_at: at(expires),
        call_id: format!("call {contact} with spaces"),
        cseq,
        source: "[2001:db8::1]:5062".parse().unwrap(),
        transport: Protocol::Ws,
    }
}

/// Adds `new` to whatever is there, replacing a binding of the same contact.
fn add(new: Binding) -> impl Fn(Vec<Binding>) -> Result<Vec<Binding>, Refusal> + Send + Sync {
    move |mut current| {
        current.retain(|binding| binding.contact != new.contact);
        current.push(new.clone());
        Ok(current)
    }
}

async fn conformance(store: Arc<impl LocationStore>, aor: &str) {
    assert_eq!(store.lookup(aor, at(1_000)).await.unwrap(), Vec::new());
    let first = binding("sip:agent@10.0.0.5", 1_060, 1);
    let stored = store.update(aor, at(1_000), &add(first.clone())).await.unwrap().unwrap();
    assert_eq!(stored, vec![first.clone()]);
    let second = binding("sip:agent@10.0.0.6;transport=tcp", 1_120, 1);
    store.update(aor, at(1_000), &add(second.clone())).await.unwrap().unwrap();
    let mut both = store.lookup(aor, at(1_000)).await.unwrap();
    both.sort_by(|a, b| a.contact.cmp(&b.contact));
    assert_eq!(both, [first.clone(), second.clone()]);

    // The change sees only unexpired bindings, and lookups drop expired ones.
    assert_eq!(store.lookup(aor, at(1_060)).await.unwrap(), vec![second.clone()]);
    let seen = store
        .update(aor, at(1_060), &|current: Vec<Binding>| {
            assert_eq!(current.len(), 1, "expired bindings reach the change");
            Ok(current)
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, vec![second.clone()]);

    // A refusal stores nothing.
    let refused = store.update(aor, at(1_000), &|_| Err(Refusal::OutOfOrder)).await.unwrap();
    assert_eq!(refused, Err(Refusal::OutOfOrder));
    // (The write at 1,060 dropped the expired binding for good.)
    assert_eq!(store.lookup(aor, at(1_000)).await.unwrap(), vec![second.clone()]);

    // An empty result removes the address-of-record; other AORs are untouched.
    let other = format!("{aor}-other");
    store.update(&other, at(1_000), &add(binding("sip:x@10.0.0.9", 2_000, 1))).await.unwrap().unwrap();
    store.update(aor, at(1_000), &|_| Ok(Vec::new())).await.unwrap().unwrap();
    assert_eq!(store.lookup(aor, at(1_000)).await.unwrap(), Vec::new());
    assert_eq!(store.lookup(&other, at(1_000)).await.unwrap().len(), 1);

    // Concurrent updates of one AOR lose nothing.
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let store = store.clone();
            let aor = aor.to_owned();
            tokio::spawn(async move {
                let new = binding(&format!("sip:agent@10.0.1.{n}"), 5_000, 1);
                store.update(&aor, at(1_000), &add(new)).await.unwrap().unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.lookup(aor, at(1_000)).await.unwrap().len(), 20);
}

#[tokio::test]
async fn the_memory_store_conforms() {
    conformance(Arc::new(MemoryStore::new()), "agent@loket.test").await;
}

#[tokio::test]
async fn the_memory_store_purges_expired_aors() {
    let store = MemoryStore::new();
    store.update("a@loket.test", at(0), &add(binding("sip:a@10.0.0.1", 60, 1))).await.unwrap().unwrap();
    store.purge_expired(at(59));
    assert_eq!(store.lookup("a@loket.test", at(59)).await.unwrap().len(), 1);
    store.purge_expired(at(60));
    assert!(!format!("{store:?}").contains("a@loket.test"), "{store:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_conforms() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("loket-test-{}-{}", std::process::id(), *START);
    let store = RedisStore::connect(&url, &prefix)
        .await
        .unwrap_or_else(|error| panic!("this test needs Redis at {url} (set REDIS_URL): {error}"));
    conformance(Arc::new(store.clone()), "agent@loket.test").await;
    // The hash expires with its latest binding: nothing outlives the registrations.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}:location:agent@loket.test");
    let expires_at: i64 = redis::cmd("PEXPIRETIME").arg(&key).query_async(&mut connection).await.unwrap();
    assert_eq!(expires_at as u64, (*START + 5_000) * 1_000);
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut connection).await.unwrap();
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut connection).await.unwrap();
}

/// A Redis restart (empty, without persistence) costs the registrations made before it, not the
/// store: the next REGISTER is stored again once the connection is back.
#[tokio::test]
async fn the_redis_store_carries_on_when_redis_restarts() {
    let mut server = private_redis::PrivateRedis::start();
    let store = RedisStore::connect(&server.url(), "restart").await.expect("connect");
    let aor = "agent@loket.test";
    let first = binding("sip:agent@10.0.0.5", 1_060, 1);
    store.update(aor, at(1_000), &add(first.clone())).await.unwrap().unwrap();
    server.stop();
    assert!(store.lookup(aor, at(1_000)).await.is_err(), "no Redis, no answer");
    server.restart();
    let again = binding("sip:agent@10.0.0.5", 1_060, 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let stored = loop {
        match store.update(aor, at(1_000), &add(again.clone())).await {
            Ok(stored) => break stored.unwrap(),
            Err(error) => {
                assert!(tokio::time::Instant::now() < deadline, "no update 10 s after Redis came back: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(stored, vec![again.clone()], "the binding from before the restart is gone with Redis");
    assert_eq!(store.lookup(aor, at(1_000)).await.unwrap(), vec![again]);
}
