//! The demo IVR with a real caller: a SIPp citizen (`tests/sipp/ivr-*.xml`) calls the demo number
//! of `loket serve --demo`, keys in digits by RFC 4733, and the case it leaves is checked in the
//! console as a supervisor sees it. The flows are the demo's with opening hours that are always
//! open (or never), so that the test does not depend on the time it runs at.
//! SIPp is required: without it the test fails and says how to install it.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The demo flows with every service open (`open`) or closed all week.
fn demo_flows(open: bool) -> String {
    let hours = if open { r#"["00:00-24:00"]"# } else { "[]" };
    let mut text = String::new();
    for line in loket_ivr::DEMO.lines() {
        let key = line.split(" = ").next().unwrap_or_default();
        match key {
            "monday" | "tuesday" | "wednesday" | "thursday" => text.push_str(&format!("{key} = {hours}\n")),
            "friday" => text.push_str(&format!("friday = {hours}\nsaturday = {hours}\nsunday = {hours}\n")),
            // The schedules' lists of dates, not the prompt and the node also called `closed`.
            "closed" | "exceptions" if line.starts_with(&format!("{key} = [")) => {
                text.push_str(&format!("{key} = []\n"))
            }
            _ => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

fn start(open: bool) -> (support::Loket, support::TempDir) {
    let dir = support::TempDir::new();
    let flows = dir.0.join("ivr.toml");
    std::fs::write(&flows, demo_flows(open)).expect("write ivr.toml");
    let config = format!("[ivr]\nflows = {:?}\n", flows.display().to_string());
    (support::start_with_config(&config, &[]), dir)
}

/// The ids of the cases in a queue, from the console's case list.
async fn cases_in(client: &reqwest::Client, base: &str, queue: &str) -> BTreeSet<i64> {
    let page = client.get(format!("{base}/cases?queue={queue}")).send().await.expect("case list");
    let html = page.text().await.expect("case list body");
    html.split("href=\"/cases/").skip(1).filter_map(|rest| rest.split('"').next()?.parse().ok()).collect()
}

/// Waits, with a deadline, for a case that was not in `queue` before.
async fn new_case(client: &reqwest::Client, base: &str, queue: &str, before: &BTreeSet<i64>) -> i64 {
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        let now = cases_in(client, base, queue).await;
        if let Some(id) = now.difference(before).next() {
            return *id;
        }
        assert!(Instant::now() < deadline, "no new case in {queue} within the deadline");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn case_page(client: &reqwest::Client, base: &str, id: i64) -> String {
    client.get(format!("{base}/cases/{id}")).send().await.expect("case page").text().await.expect("body")
}

/// NL → population → passport → a valid national register number: the caller waits in the
/// population-nl-l1 queue, and the case made for the call shows the contact the register gave,
/// the request type and the way through the IVR; when the caller hangs up while waiting, the
/// case says so.
#[tokio::test]
async fn a_caller_identified_by_keypad_leaves_a_case_in_the_population_queue() {
    let (loket, _flows) = start(true);
    let client = support::client();
    support::login(&client, &loket.base, "supervisor", loket.password("supervisor")).await;
    let before = cases_in(&client, &loket.base, "population-nl-l1").await;

    let dir = support::TempDir::new();
    let caller = support::sipp(&dir, "ivr-passport.xml", &["-s", "+3225550100", "-p", "0", "-timeout", "60s"])
        .arg(&loket.sip_udp)
        .spawn();
    let caller = caller.unwrap_or_else(|error| panic!("this test needs SIPp (`apt-get install sip-tester`): {error}"));

    let id = new_case(&client, &loket.base, "population-nl-l1", &before).await;
    let page = case_page(&client, &loket.base, id).await;
    for expected in ["Vermeulen", "Paspoort", "+32470000001", "population-request 2", "identify ✓"] {
        assert!(page.contains(expected), "the case page shows {expected:?}:\n{page}");
    }
    assert!(!page.contains("85073003328"), "the national number is never shown whole");

    let run = tokio::task::spawn_blocking(move || caller.wait_with_output().map(|output| output.status));
    support::check_sipp(&dir, "ivr-passport.xml", run.await.expect("sipp"));
    let deadline = Instant::now() + support::DEADLINE;
    while !case_page(&client, &loket.base, id).await.contains("hing op na") {
        assert!(Instant::now() < deadline, "the abandoned call is on its case within the deadline");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loket.stop();
}
