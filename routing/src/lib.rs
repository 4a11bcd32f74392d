//! loket's router: one set of skill and priority queues for every channel (calls after the IVR,
//! emails, web forms, Facebook comments, later chats and callbacks), one capacity model for the
//! agents, push offers with leases, pull claims, relaxation, supervisor operations, and an event log
//! from which the KPIs are computed.
//!
//! # Modules
//!
//! - [`model`]: ids ([`model::WorkItemId`], [`model::AgentId`] = the CRM user id,
//!   [`model::QueueId`], [`model::Skill`]), [`model::Timestamp`] (wall-clock ms since the epoch,
//!   passed in by the caller), [`model::Channel`], and the plain configuration structs the CRM
//!   hands over: [`model::QueueConfig`], [`model::AgentProfile`], [`model::RouterSettings`].
//! - [`core`]: the pure decision code. [`core::RouterCore`] takes `now` and an [`core::Input`]
//!   and queues [`core::Action`]s and events; [`core::RouterCore::next_deadline`] says when to call
//!   [`core::RouterCore::handle_timeout`]. [`core::decide`] holds the rules as plain functions:
//!   score, relaxation schedule, eligibility, capacity, preference between agents.
//! - [`event`]: [`event::RoutingEvent`], one per transition.
//! - [`kpi`]: service level (Asterisk SL/SL2, Amazon Connect "removed from queue", Genesys with
//!   its switches), ASA, AHT, abandonment rate and occupancy as pure functions over events.
//! - [`store`]: the [`store::QueueStore`] trait, [`store::memory::MemoryStore`] (the default) and
//!   [`store::redis::RedisStore`] (several nodes).
//! - [`engine`]: the async edge. [`engine::Router`] reads the clock, runs the timers (leases,
//!   relaxation, after-call work) and the Redis reconciler, and broadcasts actions to the console.
//! - [`testing`]: [`testing::TestRouter`], the core with a virtual clock.
//! - [`error`]: which error goes where.
//!
//! **Architecture invariants.** `core`, `model`, `event` and `kpi` use no Tokio, no Redis, no clock
//! and no locks; they panic only on a broken internal invariant, never on caller input (that is a
//! [`error::RoutingError`]). Only `store::redis` talks to Redis. The rest of loket (flows, the
//! console) uses [`engine::Router`] or a [`store::QueueStore`], never the Redis keys.
//!
//! # The store contract
//!
//! [`store::QueueStore::enqueue`] and [`store::QueueStore::apply`] (login, presence, profile and
//! skill changes, accept, decline, complete, after-call work done, claim, abandon, transfer,
//! reassign, priority, boost, move) each apply one input atomically, make the follow-up offers at
//! once, append the events, and return the actions: [`core::Action::OfferItem`] (push to the
//! agent's browser; it holds until `lease_until`), [`core::Action::WithdrawItem`],
//! [`core::Action::ShowAgentState`]. [`store::QueueStore::expire`] acts on due deadlines and
//! [`store::QueueStore::next_deadline`] says when. Guarantees, checked by one conformance suite and
//! by property tests on both stores: no item is lost; no item is offered to or held by two agents;
//! an agent's capacity is never exceeded; when an agent can take work, the best-scored eligible
//! waiting item of all its queues is offered at once, and a new item goes at once to the
//! longest-idle eligible agent (ties: higher skill level); an offer not accepted within the
//! timeout goes to the next agent and counts as a miss (after `max_missed_offers` the agent is set
//! away with reason `missed`); a declined or missed item is not offered to that agent again.
//!
//! # Ordering
//!
//! One score across all queues and channels, lower first:
//! `score = enqueued_at_ms − priority × priority_step_ms − boost_ms` with `priority_step` = 60 s by
//! default (Genesys). One priority point is worth a minute of waiting, so priority wins and nothing
//! starves; supervisors and rules boost an item by a duration. Relaxation and moves keep the score.
//!
//! # Capacity
//!
//! An agent has a capacity in units and a weight per channel (a channel without a weight takes the
//! whole capacity: a call). An item costs `weight × size`. An offer reserves capacity until it is
//! declined, missed or finished. `interruptions[c]` lists the channels whose work does not block an
//! offer on channel `c` (a call may interrupt emails). After-call work is agent state with its own
//! timeout; it blocks new offers, is extended by a second finished contact, and nothing else
//! touches it (a transfer elsewhere does not reset it).
//!
//! # Relaxation
//!
//! Relaxable skills drop at `enqueued_at + drop_after`, each on its own; the language never drops;
//! the item keeps its score. When everything relaxable has dropped and `unroutable_after` has
//! passed, an item that no logged-in member of its queue could ever take moves to the queue's
//! supervisor queue.
//!
//! # The Redis store
//!
//! Each node keeps a replica of the routing state (the same [`core::RouterCore`]) and decides
//! every step there; Redis holds the committed records and orders the nodes' commits. A
//! committer task per node sends the decided steps in batches, one at a time, to a Lua script that
//! applies a batch only if no other node committed since the version it was decided on; a node
//! that lost the race reads the other commits from the change stream and decides its steps again.
//! See [`store::redis`]. Under the prefix `{p}` (braces: one Redis Cluster hash slot):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{p}:items`, `{p}:agents`, `{p}:queues` | hash | JSON [`core::WorkItem`], [`core::AgentRecord`], [`model::QueueConfig`] by id |
//! | `{p}:version` | counter | commits that changed a record |
//! | `{p}:next-item` | string | the next item id |
//! | `{p}:changes` | stream | one entry per commit: `v` version, `c` the records it changed (JSON); the last 100,000 |
//! | `{p}:events` | stream | one entry per commit, field `e`: JSON array of [`event::RoutingEvent`]; about a million |
//! | `{p}:notify` | pub/sub channel | JSON [`store::redis::Notice`] after each commit with actions |

pub mod core;
pub mod engine;
pub mod error;
pub mod event;
pub mod kpi;
pub mod model;
pub mod store;
pub mod testing;
