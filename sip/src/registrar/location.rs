//! Where bindings live: a trait with an in-process implementation ([`MemoryStore`], one node) and
//! a Redis one ([`super::redis::RedisStore`], so that any node finds any agent's phone). Both run
//! the registrar's pure [`super::Register::apply`] against the bindings they hold and store the
//! result as one atomic step, so two REGISTERs for the same address-of-record cannot lose each
//! other's contacts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use thiserror::Error;

use super::{Binding, Refusal};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the location store at {url} is unreachable: {source}")]
    Unreachable { url: String, source: ::redis::RedisError },
    #[error("the location store failed: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("a stored binding is unreadable: {0}")]
    Corrupt(String),
    #[error("the bindings of {0} kept changing under concurrent updates")]
    Contended(String),
}

/// A change the store applies to the unexpired bindings of one address-of-record.
pub type Change<'a> = dyn Fn(Vec<Binding>) -> Result<Vec<Binding>, Refusal> + Send + Sync + 'a;

pub trait LocationStore: Send + Sync + 'static {
    /// Runs `change` on the bindings of `aor` that are unexpired at `now` and stores what it
    /// returns (an empty list removes the address-of-record). A refusal stores nothing.
    fn update(
        &self,
        aor: &str,
        now: SystemTime,
        change: &Change<'_>,
    ) -> impl Future<Output = Result<Result<Vec<Binding>, Refusal>, StoreError>> + Send;

    /// The bindings of `aor` that are unexpired at `now`.
    fn lookup(&self, aor: &str, now: SystemTime) -> impl Future<Output = Result<Vec<Binding>, StoreError>> + Send;
}

/// Bindings in this process. Memory is bounded by the users who can register (only authenticated
/// users write) times the registrar's `max_contacts`, and every update or lookup drops the
/// expired bindings of its address-of-record; [`MemoryStore::purge_expired`] sweeps the rest.
/// Clones share the bindings, so that the sweeper and the service can each hold one.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    bindings: Arc<Mutex<HashMap<String, Vec<Binding>>>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Forgets every address-of-record whose bindings have all expired.
    pub fn purge_expired(&self, now: SystemTime) {
        let mut bindings = self.bindings.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        bindings.retain(|_, list| {
            list.retain(|binding| binding.expires_at > now);
            !list.is_empty()
        });
    }
}

impl LocationStore for MemoryStore {
    async fn update(
        &self,
        aor: &str,
        now: SystemTime,
        change: &Change<'_>,
    ) -> Result<Result<Vec<Binding>, Refusal>, StoreError> {
        // The lock is never held across an await, and `change` is pure, so a panic cannot leave
        // the map half-changed: recovering from poisoning is safe.
        let mut bindings = self.bindings.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut current = bindings.get(aor).cloned().unwrap_or_default();
        current.retain(|binding| binding.expires_at > now);
        let outcome = change(current);
        if let Ok(new) = &outcome {
            if new.is_empty() {
                bindings.remove(aor);
            } else {
                bindings.insert(aor.to_owned(), new.clone());
            }
        }
        Ok(outcome)
    }

    async fn lookup(&self, aor: &str, now: SystemTime) -> Result<Vec<Binding>, StoreError> {
        let bindings = self.bindings.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut current = bindings.get(aor).cloned().unwrap_or_default();
        current.retain(|binding| binding.expires_at > now);
        Ok(current)
    }
}
