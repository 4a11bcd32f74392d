//! The supervisor's board against the router's event log (issue 10): a scripted day of 50 items
//! in two queues — calls, e-mails and web forms; some abandoned, some moved or raised by the
//! supervisor, most answered by two agents, one still in an agent's hands, the rest waiting —
//! and then every figure of `/api/board` must equal what the event log and the router's store
//! say, and the script's own counts. Then the supervisor takes the held item back, and the
//! board and the log must agree again.
//!
//! Run on the in-process store and on Redis, through the real console router and the real desk
//! (`DeskApp`); the time is the real clock, so the board's wait figures are not compared.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use loket_crm::auth::Role;
use loket_crm::db::Backend;
use loket_crm::records::directory;
use loket_crm::testing::{Browser, TEST_START, TestApp, TestDb};
use loket_flows::testing::desk::DeskApp;
use loket_routing::core::{Input, ItemState};
use loket_routing::event::{EventKind, RoutingEvent, TransferReason};
use loket_routing::kpi::{self, Scope, SegmentOutcome};
use loket_routing::model::{AgentId, Channel, NewWorkItem, QueueId, RouterSettings, Skill, WorkItemId};
use loket_routing::store::memory::MemoryStore;
use loket_routing::store::redis::RedisStore;
use loket_routing::store::{EventCursor, QueueStore};
use serde_json::Value;

const NL: &str = "population-nl-l1";
const FR: &str = "population-fr-l1";
/// How long the board may take to show what the log holds (it follows the log every second).
const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_equals_the_event_log_in_process() {
    scripted_day(MemoryStore::new(RouterSettings::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_equals_the_event_log_on_redis() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("loket-test:board:{}:{}", std::process::id(), rand_suffix());
    let store = RedisStore::connect(&url, &prefix, RouterSettings::default()).await.unwrap_or_else(|error| {
        panic!("Redis is needed at {url} for the board's test on Redis: {error} (apt-get install redis-server)")
    });
    let cleanup = store.clone();
    scripted_day(store).await;
    cleanup.delete_everything().await.expect("remove the test's keys");
}

/// Work that concerns no agent — an item that waits, a caller who hangs up — still tells the
/// board to read itself again, within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_changes_without_agents_reach_the_board() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    loket_crm::demo::seed(&test_db.db, TEST_START, 2026).await.expect("demo");
    let desk = DeskApp::start(&test_db.db, MemoryStore::new(RouterSettings::default())).await;
    let mut logged = desk.app.state.desk().expect("the desk").logged();
    let (item, actions) =
        desk.router.enqueue(NewWorkItem::new(Channel::Voice, QueueId::new(NL))).await.expect("enqueue");
    assert!(actions.is_empty(), "no agent is concerned: {actions:?}");
    tokio::time::timeout(Duration::from_secs(1), logged.recv())
        .await
        .expect("the board hears of the new item within a second")
        .expect("the desk is running");
    desk.router.execute(Input::CallerAbandoned { item }).await.expect("abandon");
    tokio::time::timeout(Duration::from_secs(1), logged.recv())
        .await
        .expect("the board hears of the abandon within a second")
        .expect("the desk is running");
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|since| since.as_nanos()).unwrap_or(0)
}

async fn scripted_day<S: QueueStore>(store: S) {
    let test_db = TestDb::new(Backend::Sqlite).await;
    loket_crm::demo::seed(&test_db.db, TEST_START, 2026).await.expect("demo");
    let desk = DeskApp::start(&test_db.db, store).await;
    let (app, router) = (&desk.app, &desk.router);

    let (anna, mut anna_browser) = agent(app, "anna").await;
    let (bram, mut bram_browser) = agent(app, "bram").await;
    let (_, password) = app.create_user("marc", &[Role::Supervisor]).await;
    let mut marc = app.login("marc", &password).await;
    app.get(&mut marc, "/board").await;

    // 50 items: three in five to the Dutch queue; calls, e-mails and web forms in turn; every
    // fourth one urgent.
    let mut items = Vec::new();
    for i in 0..50 {
        let (queue, language) = if i % 5 < 3 { (NL, "nl") } else { (FR, "fr") };
        let channel = [Channel::Voice, Channel::Email, Channel::WebForm][i % 3];
        let mut spec = NewWorkItem::new(channel, QueueId::new(queue));
        spec.language = Some(Skill::new(language));
        spec.priority = i32::from(i % 4 == 0);
        let (id, actions) = router.enqueue(spec).await.expect("enqueue");
        assert!(actions.is_empty(), "nobody is available yet: {actions:?}");
        items.push((id, channel));
    }
    // Ten callers hang up while they wait.
    let abandoned: Vec<WorkItemId> =
        items.iter().filter(|(_, channel)| *channel == Channel::Voice).map(|(id, _)| *id).take(10).collect();
    for item in &abandoned {
        router.execute(Input::CallerAbandoned { item: *item }).await.expect("abandon");
    }
    // The supervisor moves four Dutch items to the French queue and raises two, on the board.
    let waiting_nl: Vec<u64> = waiting_ids(router.store(), NL).await;
    for item in &waiting_nl[..4] {
        let moved = app.post(&mut marc, &format!("/board/items/{item}/move"), &[("queue", FR)]).await;
        assert!(moved.status.is_redirection(), "move: {} {}", moved.status, moved.body);
    }
    for item in &waiting_nl[4..6] {
        let raised = app.post(&mut marc, &format!("/board/items/{item}/priority"), &[("priority", "3")]).await;
        assert!(raised.status.is_redirection(), "priority: {} {}", raised.status, raised.body);
    }
    let refused = app.post(&mut marc, &format!("/board/items/{}/move", waiting_nl[6]), &[("queue", "nowhere")]).await;
    assert_eq!(refused.status.as_u16(), 400, "an unknown queue is refused: {}", refused.body);

    // Anna answers twelve and keeps the thirteenth in hand; Bram answers eight and goes away.
    presence(app, &mut anna_browser, "available").await;
    answer(router, anna, 12).await;
    let in_hand = offered(router.store(), anna).await;
    router.execute(Input::OfferAccepted { agent: anna, item: in_hand }).await.expect("accept");
    presence(app, &mut bram_browser, "available").await;
    answer(router, bram, 8).await;
    let last = offered(router.store(), bram).await;
    router.execute(Input::OfferAccepted { agent: bram, item: last }).await.expect("accept");
    // Away before finishing, so that nothing more is offered to him.
    presence(app, &mut bram_browser, "away").await;
    router.execute(Input::WorkCompleted { agent: bram, item: last }).await.expect("complete");
    router.execute(Input::AfterWorkDone { agent: bram }).await.expect("wrap-up done");

    let answered = 12 + 1 + 8 + 1;
    let board = settled(app, &mut marc, answered, abandoned.len()).await;
    let waiting: u64 = board["queues"].as_array().expect("queues").iter().map(|queue| number(&queue["waiting"])).sum();
    assert_eq!(waiting, 50 - 10 - answered as u64, "every item not abandoned nor answered waits");
    agrees_with_the_log(&board, router.store(), &desk.targets).await;
    let anna_row = agent_row(&board, anna);
    assert_eq!((anna_row["state"].as_str(), number(&anna_row["items"])), (Some("busy"), 1));
    assert_eq!((number(&anna_row["capacity_used"]), number(&anna_row["capacity"])), (1, 1));
    assert_eq!(agent_row(&board, bram)["state"], "away");
    for code in [NL, FR] {
        let queue =
            board["queues"].as_array().expect("queues").iter().find(|queue| queue["code"] == code).expect("queue");
        assert_eq!(queue["agents"], serde_json::json!({"away": 1, "busy": 1}), "{code}: Anna busy, Bram away");
    }
    let priority =
        app.post(&mut marc, &format!("/board/items/{}/priority", waiting_nl[6]), &[("priority", "10")]).await;
    assert_eq!(priority.status.as_u16(), 400, "a priority out of range is refused: {}", priority.body);
    let held = held_rows(&board);
    assert_eq!(held.len(), 1, "one item in an agent's hands: {held:?}");
    assert_eq!((number(&held[0]["item"]), number(&held[0]["holder_id"])), (in_hand.0, anna.0 as u64));
    assert_eq!(held[0]["holder"], "anna");
    assert_eq!(held[0]["offered"], false);

    // The supervisor takes the held item back into its queue: the item waits again, and Anna,
    // who asked for a break meanwhile, wraps up a call or goes on her break.
    presence(app, &mut anna_browser, "away").await;
    let held_item = router.store().item(in_hand).await.expect("read").expect("held item");
    let (queue, channel) = (held_item.queue, held_item.spec.channel);
    let taken = app.post(&mut marc, &format!("/board/items/{}/move", in_hand.0), &[("queue", queue.as_str())]).await;
    assert!(taken.status.is_redirection(), "take back: {} {}", taken.status, taken.body);
    let item = router.store().item(in_hand).await.expect("read").expect("the item is still there");
    assert_eq!(item.state, ItemState::Waiting);
    let board = until(app, &mut marc, "the item back in its queue", |board| {
        let after = if channel == Channel::Voice { "after_work" } else { "away" };
        held_rows(board).is_empty() && agent_row(board, anna)["state"] == after
    })
    .await;
    agrees_with_the_log(&board, router.store(), &desk.targets).await;
    let log = all_events(router.store()).await;
    assert!(
        log.iter().any(|event| event.item == Some(in_hand)
            && event.agent == Some(anna)
            && matches!(event.kind, EventKind::Transferred { reason: TransferReason::SupervisorMove, .. })),
        "the log says the supervisor took it from Anna"
    );
}

/// An agent of both queues, logged in to the workspace and away.
async fn agent(app: &TestApp, name: &str) -> (AgentId, Browser) {
    let (id, password) = app.create_user(name, &[Role::Agent]).await;
    let mut conn = app.state.db.pool().acquire().await.expect("connection");
    for queue in [NL, FR] {
        directory::add_user_queue(&mut conn, id.0, queue).await.expect("queue");
    }
    for skill in ["nl", "fr", "population"] {
        directory::set_user_skill(&mut conn, id.0, skill, 5).await.expect("skill");
    }
    drop(conn);
    let mut browser = app.login(name, &password).await;
    app.get(&mut browser, "/workspace").await;
    presence(app, &mut browser, "away").await;
    (AgentId(id.0), browser)
}

async fn presence(app: &TestApp, browser: &mut Browser, presence: &str) {
    let response = app.post(browser, "/workspace/presence", &[("presence", presence), ("reason", "break")]).await;
    assert!(response.status.is_redirection(), "{presence}: {} {}", response.status, response.body);
}

/// The agent takes `count` offers in turn: accepts, finishes and wraps up each.
async fn answer<S: QueueStore>(router: &loket_routing::engine::Router<S>, agent: AgentId, count: usize) {
    for _ in 0..count {
        let item = offered(router.store(), agent).await;
        for input in
            [Input::OfferAccepted { agent, item }, Input::WorkCompleted { agent, item }, Input::AfterWorkDone { agent }]
        {
            router.execute(input).await.expect("the agent's work");
        }
    }
}

async fn offered<S: QueueStore>(store: &S, agent: AgentId) -> WorkItemId {
    let record = store.agent(agent).await.expect("read").expect("logged in");
    record.offered_item().unwrap_or_else(|| panic!("nothing is offered to agent {}: {record:?}", agent.0))
}

async fn waiting_ids<S: QueueStore>(store: &S, queue: &str) -> Vec<u64> {
    store.waiting(&QueueId::new(queue), 500).await.expect("waiting").iter().map(|item| item.id.0).collect()
}

async fn all_events<S: QueueStore>(store: &S) -> Vec<RoutingEvent> {
    store.read_events(EventCursor::default(), 100_000).await.expect("the event log").0
}

/// The board once its figures count every answer and abandon of the script.
async fn settled(app: &TestApp, browser: &mut Browser, answered: usize, abandoned: usize) -> Value {
    until(app, browser, "the day's answers and abandons", |board| {
        let queues = board["queues"].as_array().expect("queues");
        let sum = |key: &str| queues.iter().map(|queue| number(&queue[key])).sum::<u64>();
        sum("answered_today") == answered as u64 && sum("abandoned_today") == abandoned as u64
    })
    .await
}

async fn until(app: &TestApp, browser: &mut Browser, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let response = app.get(browser, "/api/board").await;
        assert!(response.status.is_success(), "/api/board: {} {}", response.status, response.body);
        let board: Value = serde_json::from_str(&response.body).expect("the board's JSON");
        if done(&board) {
            return board;
        }
        assert!(started.elapsed() < DEADLINE, "the board did not show {what} within {DEADLINE:?}: {board:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every queue's figures on the board are the event log's (`kpi`, under the queue's target), its
/// waiting count is the store's, and the items it lists as held are those the agents hold.
async fn agrees_with_the_log<S: QueueStore>(
    board: &Value,
    store: &S,
    targets: &HashMap<QueueId, loket_routing::model::ServiceLevelTarget>,
) {
    let log = all_events(store).await;
    let segments = kpi::queue_segments(&log);
    let queues = board["queues"].as_array().expect("queues");
    assert_eq!(queues.len(), targets.len(), "every queue is on the board");
    for row in queues {
        let id = QueueId::new(row["code"].as_str().expect("code"));
        let count = |wanted: fn(&SegmentOutcome) -> bool| {
            segments.iter().filter(|segment| segment.queue == id && wanted(&segment.outcome)).count() as u64
        };
        let answered = count(|outcome| matches!(outcome, SegmentOutcome::Answered { .. }));
        let abandoned = count(|outcome| matches!(outcome, SegmentOutcome::Abandoned { .. }));
        assert_eq!(number(&row["answered_today"]), answered, "answered in {id:?}");
        assert_eq!(number(&row["abandoned_today"]), abandoned, "abandoned in {id:?}");
        let level = kpi::service_level(&log, &Scope::queue(id.clone()), &targets[&id]);
        assert_eq!(row["service_level"].as_f64(), level, "service level of {id:?}");
        let waiting = store.waiting(&id, 500).await.expect("waiting");
        assert_eq!(number(&row["waiting"]), waiting.len() as u64, "waiting in {id:?}");
        for (channel, count) in row["waiting_by_channel"].as_object().expect("per channel") {
            let expected = waiting.iter().filter(|item| item.spec.channel.name() == channel).count() as u64;
            assert_eq!(number(count), expected, "{channel} waiting in {id:?}");
        }
        let counted: u64 = row["waiting_by_channel"].as_object().expect("per channel").values().map(number).sum();
        assert_eq!(counted, waiting.len() as u64, "every waiting item has its channel counted in {id:?}");
        let mut held: Vec<u64> =
            row["held"].as_array().expect("held").iter().map(|item| number(&item["item"])).collect();
        held.sort_unstable();
        let mut holding = Vec::new();
        for agent in board["agents"].as_array().expect("agents") {
            let Some(record) = store.agent(AgentId(number(&agent["id"]) as i64)).await.expect("agent") else {
                assert_eq!(agent["state"], "offline");
                continue;
            };
            assert_eq!(number(&agent["items"]), record.work.len() as u64, "items of agent {}", agent["id"]);
            assert_eq!(number(&agent["capacity_used"]), u64::from(record.used_capacity()));
            for work in &record.work {
                let item = store.item(work.item).await.expect("item").expect("held item");
                if item.queue == id {
                    holding.push(work.item.0);
                }
            }
        }
        holding.sort_unstable();
        assert_eq!(held, holding, "held items of {id:?}");
    }
    // The figures are not all trivially zero: the script's day is in them.
    let answered: u64 = queues.iter().map(|queue| number(&queue["answered_today"])).sum();
    assert!(answered > 0);
}

fn agent_row(board: &Value, agent: AgentId) -> &Value {
    board["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|row| number(&row["id"]) == agent.0 as u64)
        .unwrap_or_else(|| panic!("agent {} is not on the board", agent.0))
}

fn held_rows(board: &Value) -> Vec<Value> {
    board["queues"]
        .as_array()
        .expect("queues")
        .iter()
        .flat_map(|queue| queue["held"].as_array().cloned())
        .flatten()
        .collect()
}

fn number(value: &Value) -> u64 {
    value.as_u64().unwrap_or_else(|| panic!("not a count: {value}"))
}
