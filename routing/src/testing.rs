//! [`TestRouter`]: the core with a virtual clock, for deterministic tests here and in the crates
//! that build on routing (flows, the console). Time only moves when the test moves it, and
//! [`TestRouter::advance_to_next_deadline`] jumps straight to the next lease, relaxation step or
//! after-call-work timeout, so minutes of routing run in microseconds.

use std::time::Duration;

use crate::core::{Action, Input, RouterCore};
use crate::error::RoutingError;
use crate::event::RoutingEvent;
use crate::model::{NewWorkItem, QueueConfig, RouterSettings, Timestamp, WorkItemId};

pub struct TestRouter {
    pub core: RouterCore,
    pub now: Timestamp,
    next_item: u64,
    /// Every action so far, with the virtual time it was produced at.
    pub actions: Vec<(Timestamp, Action)>,
    pub events: Vec<RoutingEvent>,
}

impl TestRouter {
    pub fn new(
        settings: RouterSettings,
        queues: impl IntoIterator<Item = QueueConfig>,
        start: Timestamp,
    ) -> TestRouter {
        TestRouter {
            core: RouterCore::new(settings, queues),
            now: start,
            next_item: 1,
            actions: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn enqueue(&mut self, spec: NewWorkItem) -> Result<WorkItemId, RoutingError> {
        let item = WorkItemId(self.next_item);
        self.core.item_arrived(self.now, item, spec)?;
        self.next_item += 1;
        self.collect();
        Ok(item)
    }

    pub fn handle(&mut self, input: Input) -> Result<(), RoutingError> {
        let result = self.core.handle(self.now, input);
        self.collect();
        result
    }

    /// Moves the clock forward by `duration`, acting on every deadline on the way, in order.
    pub fn advance(&mut self, duration: Duration) {
        let until = self.now.plus(duration);
        while let Some(deadline) = self.core.next_deadline() {
            if deadline > until {
                break;
            }
            self.now = self.now.max(deadline);
            self.core.handle_timeout(self.now);
            self.collect();
        }
        self.now = until;
    }

    /// Jumps to the next deadline and acts on it; false when there is none.
    pub fn advance_to_next_deadline(&mut self) -> bool {
        let Some(deadline) = self.core.next_deadline() else {
            return false;
        };
        self.now = self.now.max(deadline);
        self.core.handle_timeout(self.now);
        self.collect();
        true
    }

    /// Actions produced since `from` (an index into [`TestRouter::actions`]).
    pub fn actions_since(&self, from: usize) -> impl Iterator<Item = &Action> {
        self.actions[from.min(self.actions.len())..].iter().map(|(_, action)| action)
    }

    fn collect(&mut self) {
        let now = self.now;
        self.actions.extend(self.core.drain_actions().map(|action| (now, action)));
        self.events.extend(self.core.drain_events());
    }
}
