//! KPIs on a scripted day with answers worked out by hand.

mod common;

use std::time::Duration;

use common::*;
use loket_routing::core::Input;
use loket_routing::event::RoutingEvent;
use loket_routing::kpi::{
    Scope, SegmentOutcome, abandonment_rate, average_handle_time, average_speed_of_answer, occupancy, queue_segments,
    service_level,
};
use loket_routing::model::{AgentId, Channel, QueueId, ServiceLevelFormula, ServiceLevelTarget, Timestamp};
use loket_routing::testing::TestRouter;

/// One agent with 30 s of wrap-up after calls, threshold 20 s:
/// A waits 10 s and is answered; B waits 90 s and is answered; C abandons after 2 s; D abandons
/// after 34 s; E is still waiting at the end (t = 200 s).
/// A is handled 60 s plus 20 s wrap-up (ended by hand), B 60 s plus 30 s (timed out).
fn scripted_day() -> (Vec<RoutingEvent>, Timestamp) {
    let mut router = TestRouter::new(settings(), [queue("population")], T0);
    let mut profile = agent(1, &[("nl", 5)], &["population"]);
    profile.after_work.insert(Channel::Voice, Duration::from_secs(30));
    router
        .handle(Input::AgentLoggedIn { profile, presence: loket_routing::model::Presence::Available })
        .expect("login");
    let call = || item(Channel::Voice, "population", "nl", &[]);
    let a = router.enqueue(call()).expect("a");
    router.advance(Duration::from_secs(5));
    let b = router.enqueue(call()).expect("b");
    router.advance(Duration::from_secs(1));
    let c = router.enqueue(call()).expect("c");
    router.advance(Duration::from_secs(2));
    router.handle(Input::CallerAbandoned { item: c }).expect("c abandons at 8");
    router.advance(Duration::from_secs(2));
    router.handle(Input::OfferAccepted { agent: AgentId(1), item: a }).expect("a answered at 10");
    router.advance(Duration::from_secs(60));
    router.handle(Input::WorkCompleted { agent: AgentId(1), item: a }).expect("a done at 70");
    router.advance(Duration::from_secs(20));
    router.handle(Input::AfterWorkDone { agent: AgentId(1) }).expect("wrap-up done at 90");
    router.advance(Duration::from_secs(5));
    router.handle(Input::OfferAccepted { agent: AgentId(1), item: b }).expect("b answered at 95");
    router.advance(Duration::from_secs(1));
    let d = router.enqueue(call()).expect("d at 96");
    router.advance(Duration::from_secs(34));
    router.handle(Input::CallerAbandoned { item: d }).expect("d abandons at 130");
    router.advance(Duration::from_secs(20));
    router.enqueue(call()).expect("e at 150");
    router.advance(Duration::from_secs(5));
    router.handle(Input::WorkCompleted { agent: AgentId(1), item: b }).expect("b done at 155");
    router.advance(Duration::from_secs(45));
    assert_eq!(router.now, at(200));
    (router.events, router.now)
}

fn target(formula: ServiceLevelFormula) -> ServiceLevelTarget {
    ServiceLevelTarget { threshold: Duration::from_secs(20), formula }
}

#[test]
fn segments_follow_the_script() {
    let (events, _) = scripted_day();
    let outcomes: Vec<SegmentOutcome> = queue_segments(&events).into_iter().map(|segment| segment.outcome).collect();
    let seconds = Duration::from_secs;
    assert_eq!(
        outcomes,
        vec![
            SegmentOutcome::Answered { wait: seconds(10) },
            SegmentOutcome::Answered { wait: seconds(90) },
            SegmentOutcome::Abandoned { wait: seconds(2) },
            SegmentOutcome::Abandoned { wait: seconds(34) },
            SegmentOutcome::StillWaiting,
        ]
    );
}

#[test]
fn service_level_variants() {
    let (events, _) = scripted_day();
    let scope = Scope::queue(QueueId::new("population"));
    let level = |formula| service_level(&events, &scope, &target(formula)).expect("defined");
    assert_eq!(level(ServiceLevelFormula::AnsweredWithin), 50.0, "Asterisk SL: 1 of 2 answered");
    assert_eq!(level(ServiceLevelFormula::AnsweredOrAbandonedWithin), 50.0, "SL2: (1 + 1) / (2 + 2)");
    assert_eq!(level(ServiceLevelFormula::RemovedFromQueueWithin), 40.0, "Connect: A and C of 5 queued");
    let genesys = |include_flow_outs, exclude_short_abandons, exclude_abandons| {
        level(ServiceLevelFormula::Genesys { include_flow_outs, exclude_short_abandons, exclude_abandons })
    };
    assert_eq!(genesys(false, None, false), 25.0, "(2 − 1) / (2 + 2)");
    let third = genesys(false, Some(Duration::from_secs(5)), false);
    assert!((third - 100.0 / 3.0).abs() < 1e-9, "C is a short abandon: 1 / 3, got {third}");
    assert_eq!(genesys(false, None, true), 50.0, "abandons excluded: 1 / 2");
}

#[test]
fn genesys_flow_outs_and_connect_count_moves() {
    let mut router = TestRouter::new(settings(), [queue("population"), queue("taxes")], T0);
    let moved = router.enqueue(item(Channel::Email, "population", "nl", &[])).expect("enqueue");
    router.advance(Duration::from_secs(15));
    router.handle(Input::ItemMoved { item: moved, to: QueueId::new("taxes") }).expect("move");
    let scope = Scope::queue(QueueId::new("population"));
    let flow_outs =
        ServiceLevelFormula::Genesys { include_flow_outs: true, exclude_short_abandons: None, exclude_abandons: false };
    assert_eq!(service_level(&router.events, &scope, &target(flow_outs)), Some(0.0));
    let no_flow_outs = ServiceLevelFormula::Genesys {
        include_flow_outs: false,
        exclude_short_abandons: None,
        exclude_abandons: false,
    };
    assert_eq!(service_level(&router.events, &scope, &target(no_flow_outs)), None, "nothing answered or abandoned");
    assert_eq!(
        service_level(&router.events, &scope, &target(ServiceLevelFormula::RemovedFromQueueWithin)),
        Some(100.0)
    );
    let taxes =
        queue_segments(&router.events).into_iter().filter(|segment| segment.queue == QueueId::new("taxes")).count();
    assert_eq!(taxes, 1, "the move starts a segment in the new queue");
}

#[test]
fn speed_of_answer_handle_time_abandonment_and_occupancy() {
    let (events, end) = scripted_day();
    let scope = Scope::default();
    assert_eq!(average_speed_of_answer(&events, &scope), Some(Duration::from_secs(50)));
    assert_eq!(average_handle_time(&events, &scope), Some(Duration::from_secs(85)), "(60 + 20 + 60 + 30) / 2");
    assert_eq!(abandonment_rate(&events, &scope), Some(40.0), "2 of 5 queued");
    assert_eq!(occupancy(&events, Some(AgentId(1)), T0, end), Some(85.0), "170 s handling of 200 s");
    assert_eq!(occupancy(&events, Some(AgentId(1)), at(10), at(70)), Some(100.0));
    assert_eq!(occupancy(&events, Some(AgentId(2)), T0, end), None, "no such agent");
}
