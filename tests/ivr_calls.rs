//! The demo IVR with a real caller: a SIPp citizen (`tests/sipp/ivr-*.xml`) calls the demo number
//! of `loket serve --demo`, keys in digits by RFC 4733 (or none), and the case it leaves is
//! checked in the console as a supervisor sees it. The flows are the demo's with opening hours
//! that are always open (or never), so that the tests do not depend on the time they run at.
//! SIPp is required: without it the tests fail and say how to install it.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// Recordings of 20 ms of silence under every name the demo's have, in `dir`: a call then takes
/// as long as the flow's timeouts and hardly longer.
fn short_prompts(dir: &Path) {
    // A WAV as loket reads it: 8 kHz, 16-bit mono PCM; 160 samples.
    let samples = [0u8; 320];
    let mut wav = Vec::new();
    for part in [
        &b"RIFF"[..],
        &(36 + samples.len() as u32).to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),
        &[1, 0, 1, 0], // PCM, one channel
        &8000u32.to_le_bytes(),
        &16_000u32.to_le_bytes(), // bytes per second
        &[2, 0, 16, 0],           // bytes per sample, bits per sample
        b"data",
        &(samples.len() as u32).to_le_bytes(),
        &samples,
    ] {
        wav.extend_from_slice(part);
    }
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("ivr/prompts");
    for folder in std::fs::read_dir(demo).expect("ivr/prompts").flatten().filter(|entry| entry.path().is_dir()) {
        let target = dir.join(folder.file_name());
        std::fs::create_dir_all(&target).expect("prompt folder");
        for prompt in std::fs::read_dir(folder.path()).expect("prompts").flatten() {
            std::fs::write(target.join(prompt.file_name()), &wav).expect("write prompt");
        }
    }
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

/// A client logged in as the demo supervisor, who reads the console in Dutch.
async fn supervisor(loket: &support::Loket) -> reqwest::Client {
    let client = support::client();
    support::login(&client, &loket.base, "supervisor", loket.password("supervisor")).await;
    client
}

/// A SIPp citizen (`scenario`, with `args`) calls the demo number, and the call runs to its end:
/// SIPp must have gone through the whole scenario.
async fn call(loket: &support::Loket, scenario: &str, args: &[&str]) {
    let dir = support::TempDir::new();
    // What ivr-silent.xml streams: a caller who says nothing still sends audio, and loket hangs
    // up on a line without any after 30 s. Silence in raw A-law.
    std::fs::write(dir.0.join("silence.pcma"), [0xd5; 8000]).expect("write silence.pcma");
    // The longest call, the silent one, lasts a minute.
    let caller = support::sipp(&dir, scenario, &["-s", "+3225550100", "-p", "0", "-timeout", "90s"])
        .args(args)
        .arg(&loket.sip_udp)
        .spawn();
    let run = tokio::task::spawn_blocking(move || caller?.wait_with_output().map(|output| output.status));
    support::check_sipp(&dir, scenario, run.await.expect("sipp"));
}

/// The page of the case that a call (as in [`call`]) leaves in `queue`, once the caller, who hung
/// up while waiting there, has been noted on it.
async fn case_of_call(loket: &support::Loket, queue: &str, scenario: &str, args: &[&str]) -> String {
    let client = supervisor(loket).await;
    let before = cases_in(&client, &loket.base, queue).await;
    call(loket, scenario, args).await;
    let id = new_case(&client, &loket.base, queue, &before).await;
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        let page = case_page(&client, &loket.base, id).await;
        if page.contains("hing op na") {
            return page;
        }
        assert!(Instant::now() < deadline, "the abandoned call is on its case within the deadline");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The keys of [`case_of_call`] with `ivr-keys.xml`, given all at once after the welcome.
async fn case_of_keys(loket: &support::Loket, queue: &str, keys: &str) -> String {
    case_of_call(loket, queue, "ivr-keys.xml", &["-key", "digits", keys]).await
}

/// The timeline entry of a call from the scenarios' caller: the whole way through the IVR.
fn call_entry(path: &str) -> String {
    format!("<div>Oproep van +32470000001, via het keuzemenu: {path}</div>")
}

fn assert_shows(page: &str, expected: &[&str]) {
    for expected in expected {
        assert!(page.contains(expected), "the case page shows {expected:?}:\n{page}");
    }
}

/// The case page of a caller whom the IVR did not identify.
const NO_CONTACT: &str = "Er is geen burger aan dit dossier gekoppeld.";

/// NL → population → passport → a valid national register number: the caller waits in the
/// population-nl-l1 queue, and the case made for the call shows the contact the register gave,
/// the request type and the way through the IVR, and that the caller hung up while waiting.
#[tokio::test]
async fn a_caller_identified_by_keypad_leaves_a_case_in_the_population_queue() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[]);
    let page = case_of_keys(&loket, "population-nl-l1", "11285073003328#").await;
    assert_shows(
        &page,
        &["Vermeulen", "Paspoort", &call_entry("language 1 › service 1 › population-request 2 › identify ✓")],
    );
    assert!(!page.contains("85073003328"), "the national number is never shown whole");
    loket.stop();
}

/// FR → civil status → marriage → identified: the French line-1 queue, and the subject in the
/// caller's language.
#[tokio::test]
async fn a_french_caller_waits_in_the_french_queue_of_the_service() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[]);
    let page = case_of_keys(&loket, "civil_status-fr-l1", "22285073003328#").await;
    assert_shows(
        &page,
        &[
            "civil_status-fr-l1",
            "Mariage",
            "Vermeulen",
            &call_entry("language 2 › service 2 › civil_status-request 2 › identify ✓"),
        ],
    );
    loket.stop();
}

/// The first call over IPv6 end to end: loket's SIP and media on ::1, the caller's signalling and
/// RTP (its keys as telephone-events) too; it reaches the queue identified, as over IPv4.
#[tokio::test]
async fn a_caller_over_ipv6_is_identified_and_queued() {
    let ipv6 = [
        ("LOKET_SIP_UDP_LISTEN", "[::1]:0"),
        ("LOKET_SIP_TCP_LISTEN", "[::1]:0"),
        ("LOKET_SIP_WS_LISTEN", "[::1]:0"),
        ("LOKET_MEDIA_BIND", "::1"),
    ];
    let (loket, _flows) = support::start_with_ivr(true, "", &ipv6);
    assert!(loket.sip_udp.starts_with("[::1]:"), "loket listens on {}", loket.sip_udp);
    let args = ["-key", "digits", "11285073003328#", "-i", "::1"];
    let page = case_of_call(&loket, "population-nl-l1", "ivr-keys.xml", &args).await;
    assert_shows(&page, &["Vermeulen", &call_entry("language 1 › service 1 › population-request 2 › identify ✓")]);
    loket.stop();
}

/// EN → social affairs → certified copies → # instead of a national number: a case without a
/// contact (no demo contact has the caller's number either).
#[tokio::test]
async fn an_english_caller_who_skips_identification_leaves_a_case_without_a_contact() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[]);
    let page = case_of_keys(&loket, "social_affairs-en-l1", "331#").await;
    assert_shows(
        &page,
        &[
            "social_affairs-en-l1",
            "Certified copies",
            NO_CONTACT,
            &call_entry("language 3 › service 3 › social_affairs-request 1 › identify #"),
        ],
    );
    loket.stop();
}

/// NL → taxes (no request-type menu) → twice a number that fails the mod-97 check, each followed
/// by the `#` the prompt asks for: the call goes on unidentified and still becomes a case.
#[tokio::test]
async fn two_invalid_national_numbers_leave_an_unidentified_case() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[]);
    let page = case_of_keys(&loket, "taxes-nl-l1", "1412345678901#12345678901#").await;
    assert_shows(&page, &[NO_CONTACT, &call_entry("language 1 › service 4 › identify ✗ › identify ✗")]);
    loket.stop();
}

/// Silence at every menu: each asks as often as its retries allow, then takes its failure branch
/// (language → service → population → identify → deflection), so the caller still reaches a
/// queue. The waits alone add up to 55 s (5 s after each of the 3 prompts of the three menus and
/// the 2 of the identification); with the demo's recordings the call would take 166 s, so they
/// are 20 ms ones here.
#[tokio::test]
async fn a_caller_who_presses_nothing_still_reaches_the_population_queue() {
    let prompts = support::TempDir::new();
    short_prompts(&prompts.0);
    let (loket, _flows) =
        support::start_with_ivr(true, &format!("prompts = {:?}\n", prompts.0.display().to_string()), &[]);
    let page = case_of_call(&loket, "population-nl-l1", "ivr-silent.xml", &[]).await;
    let path =
        ["language", "service", "population-request"].map(|menu| format!("{menu} ∅ › {menu} ∅ › {menu} ∅ › ")).concat();
    assert_shows(&page, &[NO_CONTACT, &call_entry(&format!("{path}identify ∅ › identify ∅"))]);
    loket.stop();
}

/// Out of hours: after the service menu the flow says so and hangs up itself (the scenario waits
/// for loket's BYE), and the call leaves no case.
#[tokio::test]
async fn out_of_hours_loket_says_so_and_hangs_up_without_a_case() {
    let (loket, _flows) = support::start_with_ivr(false, "", &[]);
    let client = supervisor(&loket).await;
    let before = cases_in(&client, &loket.base, "population-nl-l1").await;
    let started = Instant::now();
    call(&loket, "ivr-closed.xml", &[]).await;
    // The welcome (4.3 s) and the closed message (6.3 s) are heard out before the BYE.
    assert!(started.elapsed() > Duration::from_secs(10), "loket hung up after {:?}", started.elapsed());
    // The IVR was over before the BYE: a case would have been made by then.
    assert_eq!(cases_in(&client, &loket.base, "population-nl-l1").await, before);
    loket.stop();
}
