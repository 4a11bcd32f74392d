//! Calls loket places, with real peers: an agent's click-to-dial from the workspace (from the
//! browser softphone, and from a desk phone, baresip), the callback a waiting citizen chose, and
//! the consultation of a transfer, from the agent's browser softphone (headless Chromium)
//! through the SIP trunk, which SIPp plays
//! (`tests/sipp/trunk-callee*.xml`, reached as loket's outbound proxy: it challenges the INVITE
//! and checks loket's credentials). The party behind the trunk is the test's own audio
//! (`support::trunk::Voice`): a tone, what it hears, and the digits that reach it as
//! telephone-events. SIPp and Chromium are required: without them the tests fail and say how to
//! install them.

mod support;

use std::time::{Duration, Instant};

use support::browser::{AGENT_TONE, Browser, start_chromedriver};
use support::trunk::{TRUNK_TONE, Voice, free_port, has, sipp_messages, trunk_config, trunk_playing};

/// The number the agent dials.
const NUMBER: &str = "+3250123456";

/// Waits, with a deadline, until the party behind the trunk has heard `tone` for a second since
/// `since`.
async fn wait_until_heard(voice: &Voice, tone: f64, since: Instant, what: &str) {
    while voice.tenths_with(tone, since) < 10 {
        assert!(since.elapsed() < support::DEADLINE, "{what} within the deadline");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits, with a deadline, until the party behind the trunk got the digits `keys`.
async fn wait_until_keyed(voice: &Voice, keys: &str) {
    let started = Instant::now();
    while voice.keyed() != keys {
        assert!(started.elapsed() < support::DEADLINE, "the keys {keys} within the deadline; got {:?}", voice.keyed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The agent connects the softphone and types a number in the workspace: loket dials it through
/// the trunk from the municipality's number and the router offers the agent nothing meanwhile.
/// Agent and callee hear each other; the keypad's digits reach the callee as telephone-events
/// (an IVR at the other end would act on them); hold plays music to the callee and resume
/// brings the agent back; the agent hangs up from the page, the trunk gets loket's BYE, and the
/// agent is available again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_calls_a_number_from_the_workspace() {
    let port = free_port();
    let callee = Voice::start(TRUNK_TONE).await;
    let trunk = trunk_playing("trunk-callee.xml", port, callee.port);
    let loket = support::start_with_config(&trunk_config(port, "s3cret"), &[]);
    let driver = start_chromedriver().await;
    let browser = Browser::open(&driver).await;
    browser.agent_on_softphone(&loket, "agent", AGENT_TONE).await;

    let dialled = Instant::now();
    browser.type_into("#dial-number", NUMBER).await;
    browser.click("#dial-form button").await;
    browser.wait_for_text("#dialled-state", "the call answered", |text| text == "verbonden").await;
    browser.wait_for_text("#agent-state", "the agent away while calling", |text| text == "afwezig").await;
    browser.wait_for_tone("the agent hears the callee", TRUNK_TONE, true).await;
    wait_until_heard(&callee, AGENT_TONE, dialled, "the callee hears the agent").await;
    browser.screenshot("workspace-dialled.png").await;

    for key in ["4", "2", "#"] {
        browser.click(&format!("#keypad button[value='{key}']")).await;
    }
    wait_until_keyed(&callee, "42#").await;

    browser.click("#dialled .dial-hold button").await;
    browser.wait_for_text("#dialled-state", "the callee on hold", |text| text == "in wacht").await;
    browser.wait_for_tone("the agent no longer hears the callee", TRUNK_TONE, false).await;
    browser.click("#dialled .dial-resume button").await;
    browser.wait_for_text("#dialled-state", "the call resumed", |text| text == "verbonden").await;
    browser.wait_for_tone("the agent hears the callee again", TRUNK_TONE, true).await;

    browser.click("#dialled .dial-hangup button").await;
    let trunk_dir = support::finished_sipp("trunk-callee.xml", trunk).await;
    let messages = sipp_messages(&trunk_dir);
    assert!(has(&messages, false, &format!("INVITE sip:{NUMBER}@pbx.test")), "the number dialled: {messages:?}");
    assert!(has(&messages, false, "BYE "), "loket hung up the trunk's side: {messages:?}");
    assert!(!has(&messages, true, "SIP/2.0 403"), "loket's credentials are right: {messages:?}");
    browser.wait_for_text("#agent-state", "the agent available again", |text| text == "beschikbaar").await;
    assert!(browser.attribute("#dialled", "hidden").await == "true", "the call is gone from the page");
    browser.close().await;
    loket.stop();
}

/// An agent without the browser softphone, on a desk phone (baresip, which answers by itself and
/// plays back what it hears): the workspace's call rings the phone first, and once it answers
/// loket dials the number through the trunk. The callee hears itself come back through the
/// agent's phone, so audio crossed loket both ways; the keypad's digits reach the callee; hold and
/// resume work from the page; the page's hang-up ends both the phone's call and the trunk's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_a_desk_phone_calls_a_number() {
    let port = free_port();
    let callee = Voice::start(TRUNK_TONE).await;
    let trunk = trunk_playing("trunk-callee.xml", port, callee.port);
    let digest = [("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")];
    let loket = support::start_with_config(&trunk_config(port, "s3cret"), &digest);
    let mut phone = tokio::task::block_in_place(|| support::Baresip::register(&loket, "agent"));
    let driver = start_chromedriver().await;
    let browser = Browser::open(&driver).await;
    browser.log_in_to(&loket, "agent", "/workspace").await;
    browser.click("button[name=presence][value=available]").await;
    browser.wait_for_text("#agent-state", "the agent available", |text| text == "beschikbaar").await;
    assert!(browser.attribute("#dial-phone-first", "hidden").await != "true", "the page says the phone rings first");

    let dialled = Instant::now();
    browser.type_into("#dial-number", NUMBER).await;
    browser.click("#dial-form button").await;
    tokio::task::block_in_place(|| {
        phone.wait_for("the phone answered", |line| line.contains("Call established"));
    });
    browser.wait_for_text("#dialled-state", "the callee answered", |text| text == "verbonden").await;
    browser.wait_for_text("#agent-state", "the agent away while calling", |text| text == "afwezig").await;
    wait_until_heard(&callee, TRUNK_TONE, dialled, "the callee hears itself through the agent's phone").await;
    for key in ["7", "#"] {
        browser.click(&format!("#keypad button[value='{key}']")).await;
    }
    wait_until_keyed(&callee, "7#").await;
    browser.click("#dialled .dial-hold button").await;
    browser.wait_for_text("#dialled-state", "the callee on hold", |text| text == "in wacht").await;
    browser.click("#dialled .dial-resume button").await;
    browser.wait_for_text("#dialled-state", "the call resumed", |text| text == "verbonden").await;

    browser.click("#dialled .dial-hangup button").await;
    tokio::task::block_in_place(|| {
        phone.wait_for("the phone's call ended by loket", |line| line.contains("session closed"));
    });
    let trunk_dir = support::finished_sipp("trunk-callee.xml", trunk).await;
    let messages = sipp_messages(&trunk_dir);
    assert!(has(&messages, false, &format!("INVITE sip:{NUMBER}@pbx.test")), "the number dialled: {messages:?}");
    assert!(has(&messages, false, "BYE "), "loket hung up the trunk's side: {messages:?}");
    browser.wait_for_text("#agent-state", "the agent available again", |text| text == "beschikbaar").await;
    browser.close().await;
    loket.stop();
}

/// The demo flows with the callback offered at the first announcement, whatever the expected wait.
fn callback_at_once() -> String {
    let flows = support::demo_flows(true);
    let offer = r#"offer = { after_secs = 300, prompt = "offer-callback" }"#;
    assert!(flows.contains(offer), "the demo offers callbacks");
    flows.replace(offer, r#"offer = { after_secs = 0, prompt = "offer-callback" }"#)
}

/// The demo agent on the softphone but away, and a SIPp citizen who goes through the IVR and
/// chooses the callback offered while they wait: the agent's browser. The agent logged in keeps
/// the item waiting for them (were nobody logged in who could take it, the router would hand it
/// to the supervisors).
async fn callback_chosen(loket: &support::Loket, driver: &support::browser::ChromeDriver) -> Browser {
    let browser = Browser::open(driver).await;
    browser.agent_on_softphone(loket, "agent", AGENT_TONE).await;
    browser.click("button[name=presence][value=away]").await;
    browser.wait_for_text("#agent-state", "the agent away", |text| text == "afwezig").await;
    let caller = support::ivr_caller_playing(loket, "ivr-caller-callback.xml", "11285073003328#");
    support::finish_sipp("ivr-caller-callback.xml", caller).await;
    browser
}

/// A callback outlives a restart of loket: with the router on Redis the item keeps its place, and
/// the number to call and the case come back from the database. The citizen chooses a callback
/// while the agent is away; loket restarts; the agent comes back on the new process, accepts the
/// callback, and the citizen is called and heard. Redis is required (`REDIS_URL`, else
/// 127.0.0.1:6379); the test's keys have a prefix of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_outlives_a_restart() {
    let port = free_port();
    let citizen = Voice::start(support::CITIZEN_TONE).await;
    let trunk = trunk_playing("trunk-callee.xml", port, citizen.port);
    let redis = support::redis_url();
    let prefix = format!("loket-test:restart:{}:{}", std::process::id(), free_port());
    let config = format!("{}[redis]\nurl = {redis:?}\nprefix = {prefix:?}\n", trunk_config(port, "s3cret"));
    let (loket, _flows) = support::start_with_flows(&callback_at_once(), &config, &[]);
    let driver = start_chromedriver().await;
    let browser = callback_chosen(&loket, &driver).await;

    // The session outlives the restart too: the page reloads from the new address.
    let loket = loket.restart();
    browser.goto(&format!("{}/workspace", loket.base)).await;
    browser.microphone_tone(AGENT_TONE).await;
    browser.connect_softphone().await;
    browser.click("button[name=presence][value=available]").await;
    let pop = browser
        .wait_for_text("#offer-pop", "the callback, after the restart", |text| text.contains("Lotte Vermeulen"))
        .await;
    assert!(pop.contains("Terugbellen naar") && pop.contains("+32470000001"), "a callback to the caller: {pop}");
    let accepted = Instant::now();
    browser.click("#accept-form button").await;
    browser.wait_for_text("#work-list .call-state", "the citizen answered", |text| text == "verbonden").await;
    wait_until_heard(&citizen, AGENT_TONE, accepted, "the citizen hears the agent").await;
    browser.click("#work-list .call-hangup button").await;
    let trunk_dir = support::finished_sipp("trunk-callee.xml", trunk).await;
    let messages = sipp_messages(&trunk_dir);
    assert!(has(&messages, false, "INVITE sip:+32470000001@pbx.test"), "the caller's number dialled: {messages:?}");
    browser.wait_for_text("#wrap-up-pop", "the wrap-up", |text| text.contains("Lotte Vermeulen")).await;
    browser.close().await;
    loket.stop();
    let settings = loket_routing::model::RouterSettings::default();
    let store = loket_routing::store::redis::RedisStore::connect(&redis, &prefix, settings).await.expect("Redis");
    store.delete_everything().await.expect("the test's keys removed");
}

/// A citizen waits in the queue with no agent available, hears the callback offer and presses 1;
/// loket notes it on the case and hangs up, and the item keeps its place. The agent, away with
/// the softphone connected, comes back: the offer pops as a callback to the citizen's number; the agent
/// accepts, loket calls the citizen through the trunk, and they hear each other. The agent hangs
/// up and wraps up; the case's timeline has the request and the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_who_chose_a_callback_is_called_back() {
    let port = free_port();
    let citizen = Voice::start(support::CITIZEN_TONE).await;
    let trunk = trunk_playing("trunk-callee.xml", port, citizen.port);
    let (loket, _flows) = support::start_with_flows(&callback_at_once(), &trunk_config(port, "s3cret"), &[]);
    let driver = start_chromedriver().await;
    let browser = callback_chosen(&loket, &driver).await;
    browser.click("button[name=presence][value=available]").await;
    let pop =
        browser.wait_for_text("#offer-pop", "the callback's offer", |text| text.contains("Lotte Vermeulen")).await;
    assert!(pop.contains("Terugbellen naar") && pop.contains("+32470000001"), "a callback to the caller: {pop}");
    let case = browser.attribute("#offer-pop a[href*='/cases/']", "href").await;
    let case = if case.starts_with("http") { case } else { format!("{}{case}", loket.base) };
    let accepted = Instant::now();
    browser.click("#accept-form button").await;
    browser.wait_for_text("#work-list .call-state", "the citizen answered", |text| text == "verbonden").await;
    browser.wait_for_tone("the agent hears the citizen", support::CITIZEN_TONE, true).await;
    wait_until_heard(&citizen, AGENT_TONE, accepted, "the citizen hears the agent").await;

    browser.click("#work-list .call-hangup button").await;
    let trunk_dir = support::finished_sipp("trunk-callee.xml", trunk).await;
    let messages = sipp_messages(&trunk_dir);
    assert!(has(&messages, false, "INVITE sip:+32470000001@pbx.test"), "the caller's number dialled: {messages:?}");
    browser.wait_for_text("#wrap-up-pop", "the wrap-up", |text| text.contains("Lotte Vermeulen")).await;
    browser.click("#wrap-up-form button").await;
    browser.wait_for_text("#agent-state", "the agent available again", |text| text == "beschikbaar").await;
    browser.close().await;

    let client = support::client();
    support::login(&client, &loket.base, "agent", loket.password("agent")).await;
    let page = client.get(&case).send().await.expect("the case").text().await.expect("its page");
    for expected in ["teruggebeld te worden op +32470000001", "Uitgaande oproep naar +32470000001"] {
        assert!(page.contains(expected), "the timeline says {expected:?}");
    }
    loket.stop();
}

/// A consultative transfer: the agent takes a citizen's call on the softphone and consults a
/// number through the trunk while the citizen waits on hold (the consulted party hears the agent,
/// not the citizen), then completes the transfer: the citizen and the consulted party hear each
/// other, the agent wraps up, and when the consulted party hangs up, loket hangs up the citizen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_consults_a_number_then_transfers_the_caller() {
    let port = free_port();
    let consulted = Voice::start(TRUNK_TONE).await;
    let trunk = trunk_playing("trunk-callee-hangs-up.xml", port, consulted.port);
    let (loket, _flows) = support::start_with_ivr(true, &trunk_config(port, "s3cret"), &[]);
    let driver = start_chromedriver().await;
    let browser = Browser::open(&driver).await;
    browser.agent_on_softphone(&loket, "agent", AGENT_TONE).await;
    let caller = support::ivr_caller(&loket, "11285073003328#");
    browser.wait_for_text("#offer-pop", "the offer's pop", |text| text.contains("Lotte Vermeulen")).await;
    browser.click("#accept-form button").await;
    browser.wait_for_text("#work-list .call-state", "the call connected", |text| text == "verbonden").await;
    browser.wait_for_tone("the agent hears the citizen", support::CITIZEN_TONE, true).await;

    let consulting = Instant::now();
    browser.type_into("#work-list .call-consult input[name=number]", NUMBER).await;
    browser.click("#work-list .call-consult button").await;
    browser.wait_for_text("#work-list .call-state", "the consultation", |text| text == "in overleg").await;
    browser.wait_for_tone("the agent hears the consulted party", TRUNK_TONE, true).await;
    wait_until_heard(&consulted, AGENT_TONE, consulting, "the consulted party hears the agent").await;
    assert!(
        consulted.tenths_with(support::CITIZEN_TONE, consulting) <= 1,
        "the citizen, on hold, is not heard in the consultation"
    );

    let completed = Instant::now();
    browser.click("#work-list .consult-complete button").await;
    browser.wait_for_text("#wrap-up-pop", "the agent's wrap-up", |text| text.contains("Lotte Vermeulen")).await;
    wait_until_heard(&consulted, support::CITIZEN_TONE, completed, "the consulted party hears the citizen").await;
    let trunk_dir = support::finished_sipp("trunk-callee-hangs-up.xml", trunk).await;
    support::finish_sipp("ivr-caller-until-bye.xml", caller).await;
    let messages = sipp_messages(&trunk_dir);
    assert!(has(&messages, false, &format!("INVITE sip:{NUMBER}@pbx.test")), "the number consulted: {messages:?}");
    assert!(has(&messages, true, "BYE "), "the consulted party hung up: {messages:?}");
    browser.close().await;
    loket.stop();
}
