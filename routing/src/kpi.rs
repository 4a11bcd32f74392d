//! Contact-center KPIs as pure functions over the event log, with the published formulas of the
//! anchors (§4), so that boards, reports and exports compute the same numbers.
//!
//! A *queue segment* is one stay of an item in one queue: it starts when the item is enqueued or
//! transferred into the queue and ends when an agent accepts it (answered), the customer leaves
//! (abandoned), or it is moved to another queue unanswered (flow-out). Waits are measured per
//! segment, so a transferred call counts in each queue for its own wait there.

use std::collections::HashMap;
use std::time::Duration;

use crate::event::{EventKind, RoutingEvent};
use crate::model::{
    AgentId, AgentState, Channel, QueueId, ServiceLevelFormula, ServiceLevelTarget, Timestamp, WorkItemId,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSegment {
    pub item: WorkItemId,
    pub queue: QueueId,
    pub channel: Option<Channel>,
    pub entered_at: Timestamp,
    pub outcome: SegmentOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentOutcome {
    Answered { wait: Duration },
    Abandoned { wait: Duration },
    FlowedOut { wait: Duration },
    StillWaiting,
}

/// Which segments a KPI looks at; `None` means all.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub queue: Option<QueueId>,
    pub channel: Option<Channel>,
}

impl Scope {
    pub fn queue(queue: QueueId) -> Scope {
        Scope { queue: Some(queue), channel: None }
    }

    fn contains(&self, segment: &QueueSegment) -> bool {
        self.queue.as_ref().is_none_or(|queue| *queue == segment.queue)
            && self.channel.is_none_or(|channel| segment.channel == Some(channel))
    }
}

/// Splits the log into queue segments, in the order the segments started.
pub fn queue_segments(events: &[RoutingEvent]) -> Vec<QueueSegment> {
    let mut segments: Vec<QueueSegment> = Vec::new();
    let mut open: HashMap<WorkItemId, usize> = HashMap::new();
    for event in events {
        let Some(item) = event.item else { continue };
        let close = |segments: &mut Vec<QueueSegment>,
                     open: &mut HashMap<WorkItemId, usize>,
                     outcome: fn(Duration) -> SegmentOutcome| {
            if let Some(index) = open.remove(&item) {
                let segment = &mut segments[index];
                segment.outcome = outcome(event.at.since(segment.entered_at));
            }
        };
        match &event.kind {
            EventKind::Enqueued { .. } => {
                if let Some(queue) = &event.queue {
                    open.insert(item, segments.len());
                    segments.push(QueueSegment {
                        item,
                        queue: queue.clone(),
                        channel: event.channel,
                        entered_at: event.at,
                        outcome: SegmentOutcome::StillWaiting,
                    });
                }
            }
            EventKind::Accepted => close(&mut segments, &mut open, |wait| SegmentOutcome::Answered { wait }),
            EventKind::Abandoned => close(&mut segments, &mut open, |wait| SegmentOutcome::Abandoned { wait }),
            EventKind::Transferred { to, .. } => {
                close(&mut segments, &mut open, |wait| SegmentOutcome::FlowedOut { wait });
                open.insert(item, segments.len());
                segments.push(QueueSegment {
                    item,
                    queue: to.clone(),
                    channel: event.channel,
                    entered_at: event.at,
                    outcome: SegmentOutcome::StillWaiting,
                });
            }
            _ => {}
        }
    }
    segments
}

/// Service level in percent under the queue's formula; `None` when the denominator is zero.
pub fn service_level(events: &[RoutingEvent], scope: &Scope, target: &ServiceLevelTarget) -> Option<f64> {
    let threshold = target.threshold;
    let mut answered = 0u64;
    let mut answered_within = 0u64;
    let mut abandoned = 0u64;
    let mut abandoned_within = 0u64;
    let mut flowed_out = 0u64;
    let mut flowed_out_within = 0u64;
    let mut queued = 0u64;
    let mut short_abandons = 0u64;
    let short_abandon_limit = match &target.formula {
        ServiceLevelFormula::Genesys { exclude_short_abandons, .. } => *exclude_short_abandons,
        _ => None,
    };
    for segment in queue_segments(events).iter().filter(|segment| scope.contains(segment)) {
        queued += 1;
        match segment.outcome {
            SegmentOutcome::Answered { wait } => {
                answered += 1;
                answered_within += u64::from(wait <= threshold);
            }
            SegmentOutcome::Abandoned { wait } => {
                abandoned += 1;
                abandoned_within += u64::from(wait <= threshold);
                short_abandons += u64::from(short_abandon_limit.is_some_and(|limit| wait <= limit));
            }
            SegmentOutcome::FlowedOut { wait } => {
                flowed_out += 1;
                flowed_out_within += u64::from(wait <= threshold);
            }
            SegmentOutcome::StillWaiting => {}
        }
    }
    let (numerator, denominator) = match &target.formula {
        ServiceLevelFormula::AnsweredWithin => (answered_within, answered),
        ServiceLevelFormula::AnsweredOrAbandonedWithin => (answered_within + abandoned_within, answered + abandoned),
        ServiceLevelFormula::RemovedFromQueueWithin => (answered_within + abandoned_within + flowed_out_within, queued),
        ServiceLevelFormula::Genesys { include_flow_outs, exclude_abandons, .. } => {
            let counted_abandons = if *exclude_abandons { 0 } else { abandoned - short_abandons };
            let counted_flow_outs = if *include_flow_outs { flowed_out } else { 0 };
            (answered_within, answered + counted_abandons + counted_flow_outs)
        }
    };
    percent(numerator, denominator)
}

/// Average speed of answer: the mean queue wait of answered segments.
pub fn average_speed_of_answer(events: &[RoutingEvent], scope: &Scope) -> Option<Duration> {
    let waits =
        queue_segments(events).into_iter().filter(|segment| scope.contains(segment)).filter_map(
            |segment| match segment.outcome {
                SegmentOutcome::Answered { wait } => Some(wait),
                _ => None,
            },
        );
    mean(waits)
}

/// Abandoned segments over queued segments, in percent.
pub fn abandonment_rate(events: &[RoutingEvent], scope: &Scope) -> Option<f64> {
    let segments: Vec<QueueSegment> =
        queue_segments(events).into_iter().filter(|segment| scope.contains(segment)).collect();
    let abandoned =
        segments.iter().filter(|segment| matches!(segment.outcome, SegmentOutcome::Abandoned { .. })).count();
    percent(abandoned as u64, segments.len() as u64)
}

/// Average handle time: from accept to completion or transfer by the agent (hold included, since
/// hold happens in between), plus the after-call work that followed, per handled contact.
pub fn average_handle_time(events: &[RoutingEvent], scope: &Scope) -> Option<Duration> {
    let mut accepted: HashMap<(WorkItemId, AgentId), (Timestamp, QueueId, Option<Channel>)> = HashMap::new();
    let mut handled: Vec<Duration> = Vec::new();
    let mut last_handled: HashMap<AgentId, usize> = HashMap::new();
    let mut after_work_since: HashMap<AgentId, (Timestamp, usize)> = HashMap::new();
    for event in events {
        match (&event.kind, event.item, event.agent) {
            (EventKind::Accepted, Some(item), Some(agent)) => {
                if let Some(queue) = &event.queue {
                    accepted.insert((item, agent), (event.at, queue.clone(), event.channel));
                }
            }
            (
                // A transfer ends the holder's handling, whether the agent sent the item on or a
                // supervisor took it back.
                EventKind::Completed | EventKind::Transferred { .. },
                Some(item),
                Some(agent),
            ) => {
                if let Some((since, queue, channel)) = accepted.remove(&(item, agent)) {
                    let in_scope = scope.queue.as_ref().is_none_or(|scoped| *scoped == queue)
                        && scope.channel.is_none_or(|scoped| Some(scoped) == channel);
                    if in_scope {
                        last_handled.insert(agent, handled.len());
                        handled.push(event.at.since(since));
                    } else {
                        last_handled.remove(&agent);
                    }
                }
            }
            (EventKind::AgentStateChanged { state }, _, Some(agent)) => {
                if let Some((since, index)) = after_work_since.remove(&agent) {
                    handled[index] += event.at.since(since);
                }
                if matches!(state, AgentState::AfterWork { .. })
                    && let Some(index) = last_handled.get(&agent)
                {
                    after_work_since.insert(agent, (event.at, *index));
                }
            }
            _ => {}
        }
    }
    mean(handled.into_iter())
}

/// Occupancy in percent over `[from, to)`: time busy or in after-call work over that plus time
/// available or being offered. Like Amazon Connect's, it ignores concurrency: an agent with one
/// email is fully occupied. Time before an agent's first state event is not counted.
pub fn occupancy(events: &[RoutingEvent], agent: Option<AgentId>, from: Timestamp, to: Timestamp) -> Option<f64> {
    let mut current: HashMap<AgentId, (Timestamp, AgentState)> = HashMap::new();
    let mut handling = Duration::ZERO;
    let mut idle = Duration::ZERO;
    let mut account = |since: Timestamp, until: Timestamp, state: &AgentState| {
        let start = since.max(from);
        let end = until.min(to);
        if end <= start {
            return;
        }
        let span = end.since(start);
        match state {
            AgentState::Busy | AgentState::AfterWork { .. } => handling += span,
            AgentState::Available | AgentState::Offered { .. } => idle += span,
            AgentState::Offline | AgentState::Away { .. } => {}
        }
    };
    for event in events {
        let (EventKind::AgentStateChanged { state }, Some(event_agent)) = (&event.kind, event.agent) else {
            continue;
        };
        if agent.is_some_and(|agent| agent != event_agent) {
            continue;
        }
        if let Some((since, previous)) = current.insert(event_agent, (event.at, state.clone())) {
            account(since, event.at, &previous);
        }
    }
    for (since, state) in current.values() {
        account(*since, to, state);
    }
    let total = handling + idle;
    (!total.is_zero()).then(|| handling.as_secs_f64() * 100.0 / total.as_secs_f64())
}

fn percent(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 * 100.0 / denominator as f64)
}

fn mean(durations: impl Iterator<Item = Duration>) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut count = 0u32;
    for duration in durations {
        total += duration;
        count += 1;
    }
    (count > 0).then(|| total / count)
}
