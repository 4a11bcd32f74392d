//! Server time of the console's list, search and record pages with 50,000 citizens and 100,000
//! cases, on SQLite and on PostgreSQL. Requests go through the real router in process, so the
//! figure is loket's time without the network. Goal (issues 7 and 8): p99 under 100 ms.
//!
//! `cargo bench -p loket-crm --bench pages` (or `bench/crm-pages.sh`); BENCH_CONTACTS,
//! BENCH_CASES and BENCH_REQUESTS change the sizes.

use std::time::{Duration, Instant};

use loket_crm::auth::Role;
use loket_crm::db::Backend;
use loket_crm::testing::{TEST_START, TestApp, TestDb, env_or, percentile};

/// The path of the n-th request to a page.
type PathFor<'a> = Box<dyn Fn(usize) -> String + 'a>;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let contacts = env_or("BENCH_CONTACTS", 50_000);
    let cases = env_or("BENCH_CASES", 100_000);
    let requests = env_or("BENCH_REQUESTS", 200);
    println!("console pages with {contacts} citizens and {cases} cases, {requests} requests per page");
    println!("{:<10} {:<44} {:>9} {:>9} {:>9}  goal p99 < 100 ms", "backend", "page", "p50 ms", "p99 ms", "max ms");
    let mut all_within = true;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        all_within &= runtime.block_on(measure(backend, contacts, cases, requests));
    }
    println!("{}", if all_within { "every page within the goal" } else { "SOME PAGES MISS THE GOAL" });
}

async fn measure(backend: Backend, contacts: usize, cases: usize, requests: usize) -> bool {
    let test_db = TestDb::new(backend).await;
    loket_crm::demo::seed(&test_db.db, TEST_START, 2026).await.expect("demo");
    let started = Instant::now();
    loket_crm::generate::generate(&test_db.db, contacts, cases, TEST_START).await.expect("generate");
    println!("{:<10} generated in {:.1} s", backend.name(), started.elapsed().as_secs_f64());
    if backend == Backend::Postgres {
        // A running database is vacuumed and has statistics; right after a bulk load autovacuum
        // would do both in the middle of the measurement.
        sqlx::query("VACUUM ANALYZE").execute(test_db.db.pool()).await.expect("vacuum analyze");
    }
    let app = TestApp::new(test_db.db.clone());
    let (_, password) = app.create_user("bench.agent", &[Role::Agent]).await;
    let mut browser = app.login("bench.agent", &password).await;
    let case_ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM cases ORDER BY id").fetch_all(test_db.db.pool()).await.expect("ids");
    let contact_ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM contacts ORDER BY id").fetch_all(test_db.db.pool()).await.expect("ids");
    let pages: Vec<(&str, PathFor)> = vec![
        ("case list (newest changes)", Box::new(|_| "/cases".to_owned())),
        ("case list: status new, by priority", Box::new(|_| "/cases?status=new&sort=priority".to_owned())),
        (
            "case list: service, unassigned, page 40",
            Box::new(|_| "/cases?service=population&owner=none&page=40".to_owned()),
        ),
        ("case list: words of the subject", Box::new(|_| "/cases?text=attest".to_owned())),
        ("case list: a rare word", Box::new(|_| "/cases?text=lichtreclame".to_owned())),
        ("case list: by case number", Box::new(|i| format!("/cases?text=2025-{:06}", 1 + i * 37 % 90_000))),
        (
            "citizen search by name",
            Box::new(|i| format!("/contacts?q={}", ["janssens", "el%20amrani", "emma%20d", "wout"][i % 4])),
        ),
        ("global search by phone", Box::new(|i| format!("/search?q=047{:07}", i))),
        ("case page", Box::new(|i| format!("/cases/{}", case_ids[i * 7919 % case_ids.len()]))),
        ("citizen 360° view", Box::new(|i| format!("/contacts/{}", contact_ids[i * 7919 % contact_ids.len()]))),
    ];
    let mut within = true;
    for (name, path) in &pages {
        // A few requests first, so connections and caches are warm as in a running server.
        for i in 0..5 {
            app.get(&mut browser, &path(i)).await;
        }
        let mut times = Vec::with_capacity(requests);
        for i in 0..requests {
            let path = path(i);
            let started = Instant::now();
            let response = app.get(&mut browser, &path).await;
            times.push(started.elapsed());
            assert!(response.status.is_success() || response.status.is_redirection(), "{path}: {}", response.status);
        }
        times.sort();
        let p99 = percentile(&times, 0.99);
        within &= p99 < Duration::from_millis(100);
        println!(
            "{:<10} {:<44} {:>9.1} {:>9.1} {:>9.1}  {}",
            backend.name(),
            name,
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0,
            if p99 < Duration::from_millis(100) { "ok" } else { "MISSED" },
        );
    }
    within
}
