//! The routing event log: one immutable record per transition, from which every KPI is computed.

use serde::{Deserialize, Serialize};

use crate::model::{AgentId, AgentState, Channel, QueueId, Timestamp, WorkItemId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingEvent {
    pub at: Timestamp,
    pub item: Option<WorkItemId>,
    pub agent: Option<AgentId>,
    pub queue: Option<QueueId>,
    pub channel: Option<Channel>,
    pub kind: EventKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Enqueued {
        priority: i32,
    },
    Offered,
    Accepted,
    Declined,
    TimedOut,
    /// The customer left (hung up) while the item waited or was being offered.
    Abandoned,
    /// The item left `queue` for `to` (an agent's transfer, a supervisor move, or unroutable).
    Transferred {
        to: QueueId,
        reason: TransferReason,
    },
    /// A supervisor took the item from its agent or queue and gave it to `agent`.
    Reassigned,
    Completed,
    PriorityChanged {
        priority: i32,
        boost_millis: i64,
    },
    AgentStateChanged {
        state: AgentState,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransferReason {
    AgentTransfer,
    SupervisorMove,
    Unroutable,
}
