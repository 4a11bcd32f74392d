//! Work the console asks for (a web form's case, a Facebook comment's) reaches the router: what a
//! stopped process left is routed at start, what the console commits is routed when it rings, and
//! a request the router refuses waits for the next pass without blocking the ones before it.

use std::time::{Duration, Instant};

use loket_crm::clock::Millis;
use loket_crm::db::{Backend, Db};
use loket_crm::records::cases::{self, CaseInput};
use loket_crm::records::work_requests::{self, WorkRequest};
use loket_crm::testing::{TEST_START, TestDb};
use loket_flows::testing::desk::DeskApp;
use loket_routing::model::{Channel, QueueId, RouterSettings, Skill};
use loket_routing::store::QueueStore;
use loket_routing::store::memory::MemoryStore;

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_the_router_at_start_and_when_rung() {
    let test_db = TestDb::new(Backend::Sqlite).await;
    let db = test_db.db.clone();
    loket_crm::demo::seed(&db, TEST_START, 2026).await.expect("demo");
    // A form committed just before the process stopped: its request was never routed.
    let left = request(&db, "population-fr-l1", "fr").await;

    let desk = DeskApp::start(&db, MemoryStore::new(RouterSettings::default())).await;
    let store = desk.router.store();
    let item = waiting_case(store, "population-fr-l1", left).await;
    assert_eq!(item.spec.channel, Channel::WebForm);
    assert_eq!(item.spec.language, Some(Skill::new("fr")));
    assert_eq!(
        item.spec.required_skills.iter().map(|skill| skill.skill.clone()).collect::<Vec<_>>(),
        [Skill::new("population")]
    );

    // A queue the router does not know is refused and stays pending; the next request, rung
    // in by the console, still goes.
    let refused = request(&db, "nowhere", "nl").await;
    let rung = request(&db, "population-nl-l1", "nl").await;
    desk.app.state.work_requests().notify_one();
    waiting_case(store, "population-nl-l1", rung).await;
    let pending: Vec<i64> =
        work_requests::pending(&db, 0, 10).await.expect("pending").iter().map(|p| p.request.case_id).collect();
    assert_eq!(pending, [refused], "only the refused request waits");
}

/// A web form's case and its work request, committed together as the form does.
async fn request(db: &Db, queue: &str, language: &str) -> i64 {
    let now = Millis(TEST_START.0 + 1_000);
    let mut tx = db.pool().begin().await.expect("transaction");
    let input = CaseInput {
        contact_id: None,
        account_id: None,
        service_code: "population".into(),
        case_type: "passport".into(),
        channel: "web_form".into(),
        support_line: 1,
        priority: 0,
        owner_id: None,
        queue_code: None,
        subject: "Paspoort".into(),
        custom_fields: Default::default(),
    };
    let (case_id, _) = cases::insert(&mut tx, &input, 2026, "test", now).await.expect("case");
    let request = WorkRequest {
        case_id: case_id.0,
        channel: Channel::WebForm,
        queue_code: queue.into(),
        skills: vec!["population".into()],
        language: language.into(),
    };
    work_requests::add(&mut tx, &request, now).await.expect("request");
    tx.commit().await.expect("commit");
    case_id.0
}

/// The item of `case_id` once it waits in `queue`, with a deadline.
async fn waiting_case<S: QueueStore>(store: &S, queue: &str, case_id: i64) -> loket_routing::core::WorkItem {
    let started = Instant::now();
    loop {
        let waiting = store.waiting(&QueueId::new(queue), 100).await.expect("waiting");
        if let Some(item) = waiting.into_iter().find(|item| item.spec.case_id == Some(case_id)) {
            return item;
        }
        assert!(started.elapsed() < DEADLINE, "case {case_id} did not reach {queue} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
