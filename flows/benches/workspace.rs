//! The agent's workspace under load (issue 7): with 50,000 citizens and 100,000 cases, on SQLite
//! and on PostgreSQL, a voice item whose case is one of them is routed to the agent, and the
//! workspace reads it the way the page does after its socket said `changed`:
//! - **offer → workspace**: from handing the item to the router (its decision included) until
//!   `/api/workspace` has answered with the offer and its screen pop (goal: 200 ms);
//! - **`/api/workspace`** alone, with the offer in it (goal: p99 under 100 ms of server time);
//! - **`/workspace`**, the page's shell.
//!
//! Everything runs in process through the real console router, the real desk (`RouterDesk`
//! over the in-process router and the voice flows) and the real database; only the network is
//! left out. `cargo bench -p loket-flows --bench workspace`; BENCH_CONTACTS, BENCH_CASES and
//! BENCH_REQUESTS change the sizes.

use std::time::{Duration, Instant};

use loket_crm::auth::Role;
use loket_crm::db::Backend;
use loket_crm::records::directory;
use loket_crm::testing::{TEST_START, TestDb, env_or, percentile};
use loket_flows::testing::desk::DeskApp;
use loket_routing::core::Input;
use loket_routing::model::{AgentId, Channel, NewWorkItem, QueueId, RouterSettings};
use loket_routing::store::memory::MemoryStore;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let contacts = env_or("BENCH_CONTACTS", 50_000);
    let cases = env_or("BENCH_CASES", 100_000);
    let requests = env_or("BENCH_REQUESTS", 200);
    println!("the agent's workspace with {contacts} citizens and {cases} cases, {requests} offers");
    println!("{:<10} {:<34} {:>9} {:>9} {:>9}  goal", "backend", "measure", "p50 ms", "p99 ms", "max ms");
    let mut all_within = true;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        all_within &= runtime.block_on(measure(backend, contacts, cases, requests));
    }
    println!("{}", if all_within { "every figure within its goal" } else { "SOME FIGURES MISS THEIR GOAL" });
}

async fn measure(backend: Backend, contacts: usize, cases: usize, requests: usize) -> bool {
    let test_db = TestDb::new(backend).await;
    let db = test_db.db.clone();
    loket_crm::demo::seed(&db, TEST_START, 2026).await.expect("demo");
    let started = Instant::now();
    loket_crm::generate::generate(&db, contacts, cases, TEST_START).await.expect("generate");
    println!("{:<10} generated in {:.1} s", backend.name(), started.elapsed().as_secs_f64());
    if backend == Backend::Postgres {
        sqlx::query("VACUUM ANALYZE").execute(db.pool()).await.expect("vacuum analyze");
    }

    let desk = DeskApp::start(&db, MemoryStore::new(RouterSettings::default())).await;
    let (app, router) = (&desk.app, &desk.router);

    let (agent, password) = app.create_user("bench.agent", &[Role::Agent]).await;
    let mut conn = db.pool().acquire().await.expect("connection");
    directory::add_user_queue(&mut conn, agent.0, "population-nl-l1").await.expect("queue");
    directory::set_user_skill(&mut conn, agent.0, "nl", 5).await.expect("skill");
    directory::set_user_skill(&mut conn, agent.0, "population", 5).await.expect("skill");
    drop(conn);
    let mut browser = app.login("bench.agent", &password).await;
    app.get(&mut browser, "/workspace").await;
    let available = app.post(&mut browser, "/workspace/presence", &[("presence", "available")]).await;
    assert!(available.status.is_redirection(), "available: {}", available.status);
    let case_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM cases WHERE contact_id IS NOT NULL ORDER BY id")
        .fetch_all(db.pool())
        .await
        .expect("ids");

    let (mut offer, mut api, mut page) = (Vec::new(), Vec::new(), Vec::new());
    let agent = AgentId(agent.0);
    for i in 0..requests + 5 {
        let mut item = NewWorkItem::new(Channel::Voice, QueueId::new("population-nl-l1"));
        item.case_id = Some(case_ids[i * 7919 % case_ids.len()]);
        let started = Instant::now();
        let (id, _) = router.enqueue(item).await.expect("enqueue");
        let state = app.get(&mut browser, "/api/workspace").await;
        let offered = started.elapsed();
        assert!(state.body.contains("\"offer\":{"), "the offer in the workspace: {}", state.body);
        let started = Instant::now();
        let again = app.get(&mut browser, "/api/workspace").await;
        let api_time = started.elapsed();
        assert!(again.status.is_success());
        let started = Instant::now();
        let shell = app.get(&mut browser, "/workspace").await;
        let page_time = started.elapsed();
        assert!(shell.status.is_success());
        // Taken and finished at once, so that the agent is free for the next one.
        for input in [
            Input::OfferAccepted { agent, item: id },
            Input::WorkCompleted { agent, item: id },
            Input::AfterWorkDone { agent },
        ] {
            router.execute(input).await.expect("the agent's work");
        }
        // The first few warm connections and caches, as in a running server.
        if i >= 5 {
            offer.push(offered);
            api.push(api_time);
            page.push(page_time);
        }
    }
    let mut within = true;
    for (name, times, goal) in [
        ("offer → workspace with its pop", &mut offer, Duration::from_millis(200)),
        ("/api/workspace (offer and pop)", &mut api, Duration::from_millis(100)),
        ("/workspace (the page)", &mut page, Duration::from_millis(100)),
    ] {
        times.sort();
        let p99 = percentile(times, 0.99);
        within &= p99 < goal;
        println!(
            "{:<10} {:<34} {:>9.1} {:>9.1} {:>9.1}  p99 < {} ms {}",
            backend.name(),
            name,
            percentile(times, 0.5).as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0,
            goal.as_millis(),
            if p99 < goal { "ok" } else { "MISSED" },
        );
    }
    within
}
