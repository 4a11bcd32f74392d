//! The location store in Redis: one hash per address-of-record, `<prefix>:location:<aor>`, whose
//! fields are the contacts and whose values are the rest of each binding; a `#version` field (no
//! contact URI starts with `#`) makes updates compare-and-set. The hash expires with its latest
//! binding, so an abandoned address-of-record leaves nothing behind.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::location::{Change, LocationStore, StoreError};
use super::{Binding, Refusal};
use crate::transport::Protocol;

const VERSION_FIELD: &str = "#version";
/// Attempts before an update gives up. Each failed attempt means another writer committed in
/// between, so with fewer than this many concurrent writers on one AOR every update succeeds
/// (the conformance test runs 20); a phone sends one REGISTER at a time.
const MAX_ATTEMPTS: usize = 32;

#[derive(Clone)]
pub struct RedisStore {
    /// Reconnects by itself after Redis restarts or the network drops.
    connection: ConnectionManager,
    prefix: String,
    commit: Script,
}

impl RedisStore {
    /// Connects to `url`; `prefix` separates deployments (and tests) sharing one Redis.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let unreachable = |source| StoreError::Unreachable { url: url.to_owned(), source };
        let client = redis::Client::open(url).map_err(unreachable)?;
        // As in loket-routing: the default 500 ms response timeout fails healthy requests when the
        // runtime is busy, so only a dead server should time out.
        let config = ConnectionManagerConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
        let connection = client.get_connection_manager_with_config(config).await.map_err(unreachable)?;
        Ok(RedisStore { connection, prefix: prefix.to_owned(), commit: Script::new(include_str!("commit.lua")) })
    }

    fn key(&self, aor: &str) -> String {
        format!("{}:location:{aor}", self.prefix)
    }

    /// The version and the unexpired bindings of `key`.
    async fn read(&self, key: &str, now: SystemTime) -> Result<(String, Vec<Binding>), StoreError> {
        let fields: Vec<(String, String)> = self.connection.clone().hgetall(key).await?;
        let mut version = String::new();
        let mut bindings = Vec::with_capacity(fields.len());
        for (field, value) in fields {
            if field == VERSION_FIELD {
                version = value;
            } else {
                let binding = decode(field, &value).ok_or_else(|| StoreError::Corrupt(format!("{key}: {value}")))?;
                if binding.expires_at > now {
                    bindings.push(binding);
                }
            }
        }
        Ok((version, bindings))
    }
}

impl LocationStore for RedisStore {
    async fn update(
        &self,
        aor: &str,
        now: SystemTime,
        change: &Change<'_>,
    ) -> Result<Result<Vec<Binding>, Refusal>, StoreError> {
        let key = self.key(aor);
        for _ in 0..MAX_ATTEMPTS {
            let (version, current) = self.read(&key, now).await?;
            let new = match change(current) {
                Ok(new) => new,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let expires_at = new.iter().map(|binding| millis(binding.expires_at)).max().unwrap_or(0);
            let mut invocation = self.commit.key(&key);
            invocation.arg(&version).arg(rand::random::<u64>().to_string()).arg(expires_at);
            for binding in &new {
                invocation.arg(&binding.contact).arg(encode(binding));
            }
            let committed: i64 = invocation.invoke_async(&mut self.connection.clone()).await?;
            if committed == 1 {
                return Ok(Ok(new));
            }
        }
        Err(StoreError::Contended(aor.to_owned()))
    }

    async fn lookup(&self, aor: &str, now: SystemTime) -> Result<Vec<Binding>, StoreError> {
        Ok(self.read(&self.key(aor), now).await?.1)
    }
}

fn millis(time: SystemTime) -> u64 {
    u64::try_from(time.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(u64::MAX)
}

/// `expires_ms cseq transport source call-id`: the Call-ID goes last because it is the only
/// part that may hold any character but a space in front of it.
fn encode(binding: &Binding) -> String {
    let transport = match binding.transport {
        Protocol::Udp => "U",
        // "R" from when TCP was the only reliable transport, so that stored bindings still read.
        Protocol::Tcp => "R",
        Protocol::Ws => "W",
    };
    format!("{} {} {transport} {} {}", millis(binding.expires_at), binding.cseq, binding.source, binding.call_id)
}

fn decode(contact: String, value: &str) -> Option<Binding> {
    let mut parts = value.splitn(5, ' ');
    let expires_at = UNIX_EPOCH + Duration::from_millis(parts.next()?.parse().ok()?);
    let cseq = parts.next()?.parse().ok()?;
    let transport = match parts.next()? {
        "U" => Protocol::Udp,
        "R" => Protocol::Tcp,
        "W" => Protocol::Ws,
        _ => return None,
    };
    let source: SocketAddr = parts.next()?.parse().ok()?;
    let call_id = parts.next()?.to_owned();
    Some(Binding { contact, expires_at, call_id, cseq, source, transport })
}
