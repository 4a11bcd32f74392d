//! Which error goes where.
//!
//! - [`RoutingError`] is the core's answer to an input that does not fit the current state (accepting
//!   an item that was not offered to you, an unknown queue). It comes from caller input, never from a
//!   bug, so the console shows it to the user; the core does not change anything when it returns one.
//! - [`StoreError`] is what a [`crate::store::QueueStore`] returns: a rejected input (wrapping
//!   [`RoutingError`]), or a failure of the store itself (Redis unreachable, a record that does not
//!   decode, too many conflicting writers). The engine logs the latter and retries timers; callers
//!   of commands see them as 503-style failures.
//! - Bugs (a broken invariant inside the core) are not errors: the core may panic on them.

use crate::model::{AgentId, QueueId, WorkItemId};

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RoutingError {
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    #[error("unknown work item {0}")]
    UnknownItem(WorkItemId),
    #[error("work item {0} exists already")]
    DuplicateItem(WorkItemId),
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    #[error("work item {item} is not offered to agent {agent}")]
    NotOfferedTo { item: WorkItemId, agent: AgentId },
    #[error("work item {item} is not assigned to agent {agent}")]
    NotAssignedTo { item: WorkItemId, agent: AgentId },
    #[error("work item {0} is not waiting")]
    NotWaiting(WorkItemId),
    #[error("work item {0} is already assigned to an agent")]
    AlreadyAssigned(WorkItemId),
    #[error("agent {agent} is not a member of queue {queue}")]
    NotAMember { agent: AgentId, queue: QueueId },
    #[error("agent {0} is offline or answering another offer")]
    AgentCannotTake(AgentId),
    #[error("agent {0} has no capacity left for this item")]
    NoCapacity(AgentId),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Rejected(#[from] RoutingError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis is not reachable at {url}: {source}; start it with `redis-server --daemonize yes` or set REDIS_URL")]
    RedisUnreachable {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("record {key} does not decode: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("gave up after {attempts} conflicting attempts")]
    Contended { attempts: u32 },
    #[error("the routing commit did not complete ({reason}); the step may or may not have been applied")]
    CommitUncertain { reason: String },
}
