//! The console in a real browser: headless Chromium (Debian's chromium and chromedriver), driven
//! through the W3C WebDriver protocol (`support::browser`), against a `loket serve --demo` process.

mod support;

use std::time::{Duration, Instant};

use support::browser::{AGENT_TONE, Browser, SUPERVISOR_TONE, packets, start_chromedriver};
use support::start;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_finds_a_citizen_and_sees_the_360_view() {
    let loket = start(&[]);
    let driver = start_chromedriver().await;
    let browser = Browser::open(&driver).await;
    browser.goto(&format!("{}/login", loket.base)).await;
    assert_eq!(browser.text("h1").await, "Aanmelden", "Dutch for a visitor with a Dutch browser");
    browser.type_into("#username", "agent").await;
    browser.type_into("#password", loket.password("agent")).await;
    browser.click("form[action='/login'] button[type=submit]").await;
    browser.wait_for_path("/").await;
    assert!(browser.text("h1").await.starts_with("Welkom, Jonas Peeters"));

    browser.click_when_present("a[href='/contacts']").await;
    browser.wait_for_path("/contacts").await;
    browser.type_into("#q", "claes").await;
    browser.click_when_present("form[action='/contacts'][method=get] button").await;
    browser.wait_for_path("/contacts?q=claes").await;
    browser.click_when_present("table a[href^='/contacts/']").await;
    let path = browser.wait_for_path("/contacts/").await;
    assert!(path.trim_start_matches("/contacts/").parse::<i64>().is_ok(), "on the contact's page, not {path}");
    assert_eq!(browser.text("h1").await, "Emma Claes");
    let details = browser.text("#details-heading + dl").await;
    assert!(details.contains("78.02.14-***.**") && !details.contains("123.42"), "masked: {details}");
    assert!(details.contains("+32470123456") && details.contains("emma.claes@example.be"), "{details}");
    let cases = browser.text("section[aria-labelledby=open-heading]").await;
    assert!(cases.contains("2026-000001") && cases.contains("Nieuw paspoort aanvragen"), "{cases}");
    let timeline = browser.text("ol.timeline").await;
    assert!(timeline.contains("Dossier 2026-000001 aangemaakt"), "{timeline}");
    browser.screenshot("contact-360.png").await;

    // From the 360° view to the case and a note that lands on the timeline.
    browser.click("section[aria-labelledby=open-heading] a[href^='/cases/']").await;
    browser.wait_for_path("/cases/").await;
    browser.type_into("#note", "Burger belde over de afhaling").await;
    browser.click("form[action$='/note'] button").await;
    browser
        .wait_for_text("ol.timeline", "the note on the timeline", |text| text.contains("Burger belde over de afhaling"))
        .await;
    browser.screenshot("case.png").await;
    browser.close().await;
    loket.stop();
}

/// The desk phone loket rings when the agent accepts a call.
enum DeskPhone {
    Sipp((std::process::Child, support::TempDir)),
    Baresip(support::Baresip),
}

/// The workspace in the browser: the agent goes available with a click, a SIPp citizen's call
/// through the IVR pops with the contact the register gave and the IVR path, the agent accepts
/// (loket rings the agent's SIPp desk phone and bridges the call), hangs up from the page, wraps
/// up with a disposition and a note, and is available again. Every change reaches the page over
/// its WebSocket; nothing is reloaded by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_takes_a_call_in_the_workspace() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")]);
    let phone = DeskPhone::Sipp(support::agent_phone(&loket));
    take_a_call_in_the_workspace(&loket, phone).await;
    loket.stop();
}

/// The same path with baresip registered as the agent's phone: it rings, answers, and is hung up
/// by loket when the agent hangs up in the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_takes_a_call_on_a_baresip_desk_phone() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")]);
    let phone = tokio::task::block_in_place(|| support::Baresip::register(&loket, "agent"));
    take_a_call_in_the_workspace(&loket, DeskPhone::Baresip(phone)).await;
    loket.stop();
}

async fn take_a_call_in_the_workspace(loket: &support::Loket, phone: DeskPhone) {
    let driver = start_chromedriver().await;
    let browser = Browser::open(&driver).await;
    browser.log_in_to(loket, "agent", "/workspace").await;
    browser.wait_for_text("#agent-state", "the agent offline", |text| text == "offline").await;
    browser.click("button[name=presence][value=available]").await;
    browser.wait_for_text("#agent-state", "the agent available", |text| text == "beschikbaar").await;

    let caller = support::ivr_caller(loket, "11285073003328#");
    let pop = browser.wait_for_text("#offer-pop", "the offer's pop", |text| text.contains("Lotte Vermeulen")).await;
    for expected in
        ["Bevolking · Paspoort", "population-nl-l1", "+32470000001", "population-request 2", "85.07.30-***.**"]
    {
        assert!(pop.contains(expected), "the pop shows {expected:?}: {pop}");
    }
    browser.screenshot("workspace-offer.png").await;
    browser.click("#accept-form button").await;
    browser.wait_for_text("#work-list .call-state", "the call connected", |text| text == "verbonden").await;
    browser.wait_for_text("#agent-state", "the agent busy", |text| text == "bezet").await;
    browser.screenshot("workspace-call.png").await;

    browser.click("#work-list .call-hold button").await;
    browser.wait_for_text("#work-list .call-state", "the caller on hold", |text| text == "in wacht").await;
    browser.click("#work-list .call-resume button").await;
    browser.wait_for_text("#work-list .call-state", "the call resumed", |text| text == "verbonden").await;
    browser.click("#work-list .call-hangup button").await;
    match phone {
        DeskPhone::Sipp(phone) => support::finish_sipp("agent-phone.xml", phone).await,
        DeskPhone::Baresip(mut phone) => tokio::task::block_in_place(|| {
            phone.wait_for("the call established", |line| line.contains("Call established"));
            phone.wait_for("the call closed by loket", |line| line.contains("session closed"));
        }),
    }
    support::finish_sipp("ivr-caller-until-bye.xml", caller).await;
    browser.wait_for_text("#wrap-up-pop", "the wrap-up", |text| text.contains("Lotte Vermeulen")).await;
    browser.type_into("#wrap-up-note", "Paspoort: afspraak gemaakt").await;
    browser.click("#wrap-up-form button").await;
    browser.wait_for_text("#agent-state", "the agent available again", |text| text == "beschikbaar").await;
    browser.close().await;
}

/// The browser softphone: the agent connects it (WebRTC to loket's media engine, Chromium's fake
/// microphone), goes available, and a SIPp citizen's call through the IVR is bridged to the
/// browser when the agent accepts: no phone rings. Audio flows both ways (the browser's own
/// counters, which the page shows), through hold and resume; the agent hangs up from the page and
/// the softphone stays connected for the next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_talks_through_the_browser_softphone() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[]);
    let driver = start_chromedriver().await;
    let browser = Browser::open(&driver).await;
    browser.log_in_to(&loket, "agent", "/workspace").await;
    browser.connect_softphone().await;
    browser.click("button[name=presence][value=available]").await;
    browser.wait_for_text("#agent-state", "the agent available", |text| text == "beschikbaar").await;

    let caller = support::ivr_caller(&loket, "11285073003328#");
    browser.wait_for_text("#offer-pop", "the offer's pop", |text| text.contains("Lotte Vermeulen")).await;
    let received_before = browser.softphone_packets().await.1;
    browser.click("#accept-form button").await;
    browser.wait_for_text("#work-list .call-state", "the call connected", |text| text == "verbonden").await;
    // The citizen talks from 12.5 s into the call: their voice reaches the browser through the
    // bridge, and the browser's microphone has been sending all along.
    let stats = browser
        .wait_for_text("#softphone-audio-stats", "the caller's audio in the browser", |text| {
            packets(text).1 > received_before + 50
        })
        .await;
    assert!(packets(&stats).0 > 50, "the browser sends its microphone: {stats}");
    browser.screenshot("workspace-softphone.png").await;

    browser.click("#work-list .call-hold button").await;
    browser.wait_for_text("#work-list .call-state", "the caller on hold", |text| text == "in wacht").await;
    browser.click("#work-list .call-resume button").await;
    browser.wait_for_text("#work-list .call-state", "the call resumed", |text| text == "verbonden").await;
    browser.click("#work-list .call-hangup button").await;
    support::finish_sipp("ivr-caller-until-bye.xml", caller).await;
    browser.wait_for_text("#wrap-up-pop", "the wrap-up", |text| text.contains("Lotte Vermeulen")).await;
    browser.click("#wrap-up-form button").await;
    browser.wait_for_text("#agent-state", "the agent available again", |text| text == "beschikbaar").await;
    assert!(browser.text("#softphone-state").await.starts_with("Softphone verbonden"), "ready for the next call");
    browser.close().await;
    loket.stop();
}

/// A consultative transfer to a colleague: the agent, on a call, consults a colleague who is
/// available (Camille, whose console is in French). The colleague's workspace rings with the
/// call's case; a first time she declines and the agent is back with the caller, a second time
/// she answers and the two hear each other while the citizen, on hold, hears neither. The agent
/// completes the transfer and wraps up; the call is now the colleague's, who hears the citizen,
/// hangs up and wraps up in her turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_consults_a_colleague_then_hands_the_call_over() {
    const COLLEAGUE_TONE: f64 = SUPERVISOR_TONE;
    let (loket, _flows) = support::start_with_ivr(true, "", &[]);
    let driver = start_chromedriver().await;
    let (agent, caller) = agent_in_a_call(&loket, &driver).await;
    // Only now is the colleague available, so that the router offered the call to the agent.
    let colleague = Browser::open(&driver).await;
    colleague.agent_on_softphone(&loket, "agent2", COLLEAGUE_TONE).await;

    agent
        .wait_for_text("#work-list .call-consult-agent", "the colleague to consult", |text| {
            text.contains("Camille Dubois")
        })
        .await;
    agent.click("#work-list .call-consult-agent button").await;
    agent.wait_for_text("#work-list .call-state", "the consultation", |text| text == "in overleg").await;
    colleague
        .wait_for_text("#consultation-from", "the consultation rings", |text| text.contains("Jonas Peeters"))
        .await;
    colleague.click("#consultation-hangup button").await;
    agent.wait_for_text("#work-list .call-state", "declined: back with the caller", |text| text == "in wacht").await;
    colleague.wait_for_text("#agent-state", "the colleague available again", |text| text == "disponible").await;

    agent
        .wait_for_text("#work-list .call-consult-agent", "the colleague to consult", |text| {
            text.contains("Camille Dubois")
        })
        .await;
    agent.click("#work-list .call-consult-agent button").await;
    colleague.wait_for_text("#consultation-pop", "the call's case", |text| text.contains("Lotte Vermeulen")).await;
    colleague.click("#consultation-answer button").await;
    colleague
        .wait_for_text("#consultation-from", "the consultation answered", |text| text.starts_with("En consultation"))
        .await;
    colleague.wait_for_tone("the colleague hears the agent", AGENT_TONE, true).await;
    agent.wait_for_tone("the agent hears the colleague", COLLEAGUE_TONE, true).await;
    colleague
        .keeps_hearing("the citizen, on hold, is not in the consultation", support::CITIZEN_TONE, false, PHASE)
        .await;

    agent.click("#work-list .consult-complete button").await;
    agent.wait_for_text("#wrap-up-pop", "the agent's wrap-up", |text| text.contains("Lotte Vermeulen")).await;
    colleague
        .wait_for_text("#work-list .call-state", "the call is the colleague's", |text| text == "en communication")
        .await;
    assert!(colleague.text("#consultation").await.is_empty(), "the consultation is over");
    colleague.wait_for_tone("the colleague hears the citizen", support::CITIZEN_TONE, true).await;
    colleague.wait_for_tone("the agent is gone from the call", AGENT_TONE, false).await;
    colleague.click("#work-list .call-hangup button").await;
    support::finish_sipp("ivr-caller-until-bye.xml", caller).await;
    colleague.wait_for_text("#wrap-up-pop", "the colleague's wrap-up", |text| text.contains("Lotte Vermeulen")).await;
    colleague.click("#wrap-up-form button").await;
    colleague.wait_for_text("#agent-state", "the colleague available again", |text| text == "disponible").await;
    agent.close().await;
    colleague.close().await;
    loket.stop();
}

/// The demo agent on the softphone (a tone of `AGENT_TONE`) in a call with a SIPp citizen who
/// went through the IVR: the agent's browser and the caller.
async fn agent_in_a_call(
    loket: &support::Loket,
    driver: &support::browser::ChromeDriver,
) -> (Browser, (std::process::Child, support::TempDir)) {
    let agent = Browser::open(driver).await;
    agent.agent_on_softphone(loket, "agent", AGENT_TONE).await;
    let caller = support::ivr_caller(loket, "11285073003328#");
    agent.wait_for_text("#offer-pop", "the offer's pop", |text| text.contains("Lotte Vermeulen")).await;
    agent.click("#accept-form button").await;
    agent.wait_for_text("#work-list .call-state", "the call connected", |text| text == "verbonden").await;
    (agent, caller)
}

/// The same with a colleague who has no browser softphone but a desk phone (baresip, which
/// answers by itself and plays back what it hears): loket rings the phone, the agent hears
/// themselves come back through it, and the colleague's workspace shows the consultation without
/// an answer button. Completed, the call is the colleague's: they hang up from their page, which
/// ends the phone's call and the citizen's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_consults_a_colleague_on_a_desk_phone() {
    let (loket, _flows) = support::start_with_ivr(true, "", &[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")]);
    let mut phone = tokio::task::block_in_place(|| support::Baresip::register(&loket, "agent2"));
    let driver = start_chromedriver().await;
    let (agent, caller) = agent_in_a_call(&loket, &driver).await;
    let colleague = Browser::open(&driver).await;
    colleague.log_in_to(&loket, "agent2", "/workspace").await;
    colleague.click("button[name=presence][value=available]").await;
    colleague.wait_for_text("#agent-state", "the colleague available", |text| text == "disponible").await;

    agent
        .wait_for_text("#work-list .call-consult-agent", "the colleague to consult", |text| {
            text.contains("Camille Dubois")
        })
        .await;
    agent.click("#work-list .call-consult-agent button").await;
    tokio::task::block_in_place(|| phone.wait_for("the phone answered", |line| line.contains("Call established")));
    agent.wait_for_text("#work-list .consult-complete", "the colleague answered", |text| !text.is_empty()).await;
    agent.wait_for_tone("the agent hears themselves through the colleague's phone", AGENT_TONE, true).await;
    colleague
        .wait_for_text("#consultation-from", "the consultation on the page", |text| text.contains("Jonas Peeters"))
        .await;
    assert_eq!(colleague.attribute("#consultation-answer", "hidden").await, "true", "the phone answers, not the page");

    agent.click("#work-list .consult-complete button").await;
    agent.wait_for_text("#wrap-up-pop", "the agent's wrap-up", |text| text.contains("Lotte Vermeulen")).await;
    colleague
        .wait_for_text("#work-list .call-state", "the call is the colleague's", |text| text == "en communication")
        .await;
    colleague.click("#work-list .call-hangup button").await;
    tokio::task::block_in_place(|| phone.wait_for("the phone's call ended", |line| line.contains("session closed")));
    support::finish_sipp("ivr-caller-until-bye.xml", caller).await;
    colleague.wait_for_text("#wrap-up-pop", "the colleague's wrap-up", |text| text.contains("Lotte Vermeulen")).await;
    agent.close().await;
    colleague.close().await;
    loket.stop();
}

/// How long each coaching mode is listened to.
const PHASE: Duration = Duration::from_secs(2);

/// What the citizen heard in the first recording of the call's case (`case` is its path): the
/// second channel of the WAV, at 8 kHz.
async fn citizen_heard(loket: &support::Loket, case: &str) -> Vec<i16> {
    let client = support::client();
    support::login(&client, &loket.base, "supervisor", loket.password("supervisor")).await;
    let page = client.get(format!("{}{case}", loket.base)).send().await.expect("case").text().await.expect("body");
    let link = format!("href=\"{case}/documents/");
    let first = page
        .split(&link)
        .skip(1)
        .filter_map(|rest| rest.split('"').next()?.parse::<u64>().ok())
        .min()
        .unwrap_or_else(|| panic!("no recording on the case: {page}"));
    let wav = client.get(format!("{}{case}/documents/{first}", loket.base)).send().await.expect("recording");
    let wav = wav.bytes().await.expect("recording bytes");
    assert!(wav.starts_with(b"RIFF") && u16::from_le_bytes([wav[22], wav[23]]) == 2, "a two-channel WAV");
    wav[44..].chunks_exact(4).map(|frame| i16::from_le_bytes([frame[2], frame[3]])).collect()
}

/// The supervisor's board in the browser: live over its WebSocket, every agent listed with their
/// state, and an agent who goes available shows up as such without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_supervisor_watches_the_live_board() {
    let loket = start(&[]);
    let driver = start_chromedriver().await;
    let browser = Browser::open(&driver).await;
    browser.log_in_to(&loket, "supervisor", "/board").await;
    browser.wait_for_text("#agent-rows", "the agents", |text| text.contains("Jonas Peeters offline")).await;
    browser
        .wait_for_text("#queue-rows", "the queues", |text| text.contains("population-nl-l1") || !text.is_empty())
        .await;

    let agent = support::client();
    support::login(&agent, &loket.base, "agent", loket.password("agent")).await;
    let page =
        agent.get(format!("{}/workspace", loket.base)).send().await.expect("workspace").text().await.expect("page");
    let csrf = support::csrf_of(&page);
    let form = [("csrf", csrf.as_str()), ("presence", "available")];
    agent.post(format!("{}/workspace/presence", loket.base)).form(&form).send().await.expect("available");
    browser
        .wait_for_text("#agent-rows", "the agent available", |text| text.contains("Jonas Peeters beschikbaar"))
        .await;
    // The filters narrow the board on the page: offline agents only, then everyone again.
    browser.click("#board-filters select[name=state] option[value=offline]").await;
    browser
        .wait_for_text("#agent-rows", "offline agents only", |text| {
            !text.contains("Jonas Peeters") && text.contains("Camille Dubois")
        })
        .await;
    browser.click("#board-filters select[name=state] option[value='']").await;
    browser.wait_for_text("#agent-rows", "everyone again", |text| text.contains("Jonas Peeters")).await;
    // Sorted by name, Camille comes first; by state, the one available agent does.
    browser
        .wait_for_text("#agent-rows tr:first-child", "sorted by name", |text| text.starts_with("Camille Dubois"))
        .await;
    browser.click("#board-filters select[name=sort_agents] option[value=state]").await;
    browser
        .wait_for_text("#agent-rows tr:first-child", "sorted by state", |text| text.starts_with("Jonas Peeters"))
        .await;
    let ask = [("csrf", csrf.as_str()), ("ask", "1"), ("message", "Mag een burger zonder afspraak komen?")];
    agent.post(format!("{}/workspace/help", loket.base)).form(&ask).send().await.expect("ask for help");
    browser
        .wait_for_text("#agent-rows", "the agent's hand up", |text| {
            text.contains("vraagt hulp sinds") && text.contains("Mag een burger zonder afspraak komen?")
        })
        .await;
    browser.screenshot("board.png").await;
    // The supervisor answers; only the agent's workspace shows it.
    browser.type_into("#agent-rows .board-reply input[name=text]", "Ja, tot 11 uur.").await;
    browser.click("#agent-rows .board-reply button").await;
    let workspace = || async {
        let state = agent.get(format!("{}/api/workspace", loket.base)).send().await.expect("state");
        state.json::<serde_json::Value>().await.expect("json")
    };
    let started = Instant::now();
    while !workspace().await["help"]["messages"].to_string().contains("Ja, tot 11 uur.") {
        assert!(started.elapsed() < support::DEADLINE, "the answer reaches the agent within the deadline");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.click("#agent-rows .board-helped button").await;
    browser.wait_for_text("#agent-rows", "the hand down", |text| !text.contains("vraagt hulp")).await;
    assert!(workspace().await["help"].is_null(), "the agent sees that help came");
    browser.close().await;
    loket.stop();
}

/// Live coaching from the board: a SIPp citizen talks to an agent on the browser softphone; the
/// supervisor, on the board with a softphone of their own, listens, whispers, barges in and
/// leaves, and the call goes on; each step shows on the board and lands on the case's timeline.
/// Each party sends a tone of its own, and who hears whom is measured on every audio path: in
/// the agent's and the supervisor's browsers (Web Audio), and in the call's recording, whose
/// second channel is what the citizen heard. Then the supervisor takes the call back into its
/// queue and hands it to the agent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_coaches_a_call_from_the_board() {
    let media = "[media]\nrecord_queues = [\"population-nl-l1\"]\n";
    let (loket, _flows) = support::start_with_ivr(true, media, &[]);
    let driver = start_chromedriver().await;
    let agent = Browser::open(&driver).await;
    agent.agent_on_softphone(&loket, "agent", AGENT_TONE).await;
    let supervisor = Browser::open(&driver).await;
    supervisor.log_in_to(&loket, "supervisor", "/board").await;
    supervisor.microphone_tone(SUPERVISOR_TONE).await;
    supervisor.connect_softphone().await;

    let caller = support::ivr_caller(&loket, "11285073003328#");
    agent.wait_for_text("#offer-pop", "the offer's pop", |text| text.contains("Lotte Vermeulen")).await;
    let case = agent.attribute("#offer-pop a[href^='/cases/']", "href").await;
    agent.click("#accept-form button").await;
    agent.wait_for_text("#work-list .call-state", "the call connected", |text| text == "verbonden").await;
    agent.wait_for_tone("the agent hears the citizen", support::CITIZEN_TONE, true).await;

    // Listen: the supervisor hears both sides; nobody hears the supervisor.
    supervisor.wait_for_text("#agent-rows", "the call on the board", |text| text.contains("verbonden")).await;
    supervisor.click("#agent-rows .board-coach button[value=listen]").await;
    supervisor.wait_for_text("#agent-rows", "listening", |text| text.contains("meegeluisterd")).await;
    supervisor.wait_for_tone("listening, the supervisor hears the citizen", support::CITIZEN_TONE, true).await;
    supervisor.wait_for_tone("listening, the supervisor hears the agent", AGENT_TONE, true).await;
    agent.keeps_hearing("listening, the agent hears the supervisor", SUPERVISOR_TONE, false, PHASE).await;

    // Whisper: the agent hears the supervisor too; the citizen does not (see the recording).
    supervisor.click("#agent-rows .board-coach button[value=whisper]").await;
    supervisor.wait_for_text("#agent-rows", "whispering", |text| text.contains("ingefluisterd")).await;
    agent.wait_for_tone("whispering, the agent hears the supervisor", SUPERVISOR_TONE, true).await;
    agent.keeps_hearing("whispering, the agent hears the citizen", support::CITIZEN_TONE, true, PHASE).await;

    // Barge: everyone hears everyone, the citizen the supervisor too.
    supervisor.click("#agent-rows .board-coach button[value=barge]").await;
    supervisor.wait_for_text("#agent-rows", "a three-way call", |text| text.contains("driegesprek")).await;
    let barged = Instant::now();
    supervisor.screenshot("board-coaching.png").await;
    agent.keeps_hearing("in a three-way call, the agent hears the supervisor", SUPERVISOR_TONE, true, PHASE).await;
    supervisor
        .keeps_hearing("in a three-way call, the supervisor hears the citizen", support::CITIZEN_TONE, true, PHASE)
        .await;
    supervisor.click("#agent-rows .board-coach button[value=leave]").await;
    supervisor.wait_for_text("#agent-rows", "the supervisor gone", |text| !text.contains("driegesprek")).await;
    let barge = barged.elapsed();
    agent.wait_for_tone("the supervisor gone, the agent no longer hears them", SUPERVISOR_TONE, false).await;

    // The call goes on between the citizen and the agent.
    agent.keeps_hearing("the supervisor gone, the agent hears the citizen", support::CITIZEN_TONE, true, PHASE).await;
    assert_eq!(agent.text("#work-list .call-state").await, "verbonden");

    // The supervisor takes the call back into its queue: the citizen waits again, the agent
    // wraps up. The board then hands it to the agent again, who takes it and hangs up.
    supervisor
        .wait_for_text("#item-rows", "the call in the agent's hands", |text| text.contains("Jonas Peeters"))
        .await;
    supervisor.click("#item-rows .board-take-back button").await;
    agent
        .wait_for_text("#wrap-up-pop", "the wrap-up after the take-back", |text| text.contains("Lotte Vermeulen"))
        .await;
    supervisor
        .wait_for_text("#item-rows", "the call waiting again", |text| {
            !text.is_empty() && !text.contains("Jonas Peeters")
        })
        .await;
    agent.click("#wrap-up-form button").await;
    agent.wait_for_text("#agent-state", "the agent available again", |text| text == "beschikbaar").await;
    supervisor
        .wait_for_text("#item-rows .board-assign", "the agent to hand the call to", |text| {
            text.contains("Jonas Peeters")
        })
        .await;
    supervisor.click("#item-rows .board-assign button").await;
    agent.wait_for_text("#offer-pop", "the call offered again", |text| text.contains("Lotte Vermeulen")).await;
    agent.click("#accept-form button").await;
    agent.wait_for_text("#work-list .call-state", "the call connected again", |text| text == "verbonden").await;
    agent.click("#work-list .call-hangup button").await;
    support::finish_sipp("ivr-caller-until-bye.xml", caller).await;

    supervisor.goto(&format!("{}{case}", loket.base)).await;
    let timeline = supervisor
        .wait_for_text("ol.timeline", "the coaching on the timeline", |text| text.contains("verliet het gesprek"))
        .await;
    for step in ["luisterde mee met de oproep", "fluisterde de medewerker in", "nam deel aan het gesprek"] {
        assert!(timeline.contains(step), "{step:?} on the timeline: {timeline}");
    }

    // What the citizen heard, from the recording of the coached part of the call: the agent
    // throughout, the supervisor only for as long as the three-way call lasted (listening and
    // whispering took longer than the margin).
    let heard = citizen_heard(&loket, &case).await;
    let tenths = heard.chunks_exact(800).collect::<Vec<_>>();
    let with = |hz: f64| tenths.iter().filter(|tenth| loket_media::tone::amplitude(tenth, hz) > 1_000.0).count();
    let supervisor_heard = Duration::from_millis(100 * with(SUPERVISOR_TONE) as u64);
    assert!(
        supervisor_heard.abs_diff(barge) < Duration::from_secs(1),
        "the citizen heard the supervisor for {supervisor_heard:?}; the three-way call lasted {barge:?}"
    );
    assert!(
        with(AGENT_TONE) > tenths.len() * 3 / 4,
        "the citizen heard the agent ({} of {})",
        with(AGENT_TONE),
        tenths.len()
    );
    agent.close().await;
    supervisor.close().await;
    loket.stop();
}
