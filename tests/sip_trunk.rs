//! Calls to numbers through a SIP trunk, with real peers: `loket serve --demo` with a flow whose
//! language menu transfers Dutch speakers to +3250123456, a SIPp citizen (`tests/sipp/trunk-caller*.xml`)
//! who keys 1 by INFO, and SIPp as the trunk (`trunk-uas.xml`), reached as loket's outbound
//! proxy, which challenges the INVITE and checks loket's credentials with `<verifyauth>`. The audio
//! of both sides is the test's own (`support::trunk::Voice`): each sends a tone of its own and measures what it
//! hears, so the test knows that each side hears the other through loket's two media sessions.
//! And loket's registration at the trunk (`trunk-register.xml`). SIPp is required: without it the
//! tests fail and say how to install it.

mod support;

use std::process::Child;
use std::time::{Duration, Instant};

use support::trunk::{TRUNK_TONE, Voice, free_port, has, sipp_messages, spawned, trunk, trunk_config};

/// The number the flow transfers to, which the trunk scenario expects.
const NUMBER: &str = "+3250123456";

/// The demo flows, with Dutch (1 at the language menu) transferred to [`NUMBER`].
fn transfer_flows() -> String {
    let flows = support::demo_flows(true);
    let dutch = r#"language-nl = { type = "set", attributes = { language = "nl" }, next = "service" }"#;
    assert!(flows.contains(dutch), "the demo's language menu has its Dutch choice");
    let transfer = format!(
        "language-nl = {{ type = \"set\", attributes = {{ language = \"nl\" }}, next = \"transfer\" }}\n\
         transfer = {{ type = \"transfer\", number = \"{NUMBER}\" }}"
    );
    flows.replace(dutch, &transfer)
}

/// A SIPp citizen (`scenario`) calling the demo number, whose audio is at `rtp_port`.
fn citizen(loket: &support::Loket, scenario: &str, rtp_port: u16) -> (Child, support::TempDir) {
    let dir = support::TempDir::new();
    let rtp_port = rtp_port.to_string();
    let args = ["-s", "+3225550100", "-p", "0", "-key", "rtp_port", &rtp_port, "-timeout", "90s"];
    let run = support::sipp(&dir, scenario, &args).arg(&loket.sip_udp).spawn();
    spawned(scenario, run, dir)
}

/// Both sides hear each other through loket once the trunk answered: at least a second of the
/// other's tone each.
fn assert_both_ways(citizen: &Voice, callee: &Voice) {
    let bridged = callee.first_heard().expect("loket sent the trunk's callee audio");
    let citizen_heard = callee.tenths_with(support::CITIZEN_TONE, bridged);
    let callee_heard = citizen.tenths_with(TRUNK_TONE, bridged);
    assert!(citizen_heard >= 10, "the callee heard the citizen for {citizen_heard} tenths of a second");
    assert!(callee_heard >= 10, "the citizen heard the callee for {callee_heard} tenths of a second");
}

/// The citizen keys 1 and is transferred: the trunk gets the INVITE for the number from the
/// municipality's number through its proxy, challenges it and finds loket's credentials right,
/// answers; both sides hear each other through loket; the trunk hangs up after 8 s, and loket
/// hangs up the citizen (whose scenario waits for that BYE).
#[tokio::test]
async fn a_transferred_caller_talks_to_the_number_until_the_trunk_hangs_up() {
    let port = free_port();
    let callee = Voice::start(TRUNK_TONE).await;
    let trunk = trunk(port, callee.port);
    let (loket, _flows) = support::start_with_flows(&transfer_flows(), &trunk_config(port, "s3cret"), &[]);
    let voice = Voice::start(support::CITIZEN_TONE).await;
    support::finish_sipp("trunk-caller.xml", citizen(&loket, "trunk-caller.xml", voice.port)).await;
    let trunk_dir = support::finished_sipp("trunk-uas.xml", trunk).await;
    let messages = sipp_messages(&trunk_dir);
    assert!(
        has(&messages, true, "SIP/2.0 200 OK") && has(&messages, true, "BYE "),
        "the trunk answered, then hung up: {messages:?}"
    );
    assert!(!has(&messages, true, "SIP/2.0 403"), "loket's credentials are right: {messages:?}");
    assert_both_ways(&voice, &callee);
    loket.stop();
}

/// The same transfer, and the citizen hangs up: loket hangs up the trunk's side (the trunk
/// scenario receives loket's BYE before it would hang up itself).
#[tokio::test]
async fn a_transferred_caller_who_hangs_up_ends_the_trunks_side() {
    let port = free_port();
    let callee = Voice::start(TRUNK_TONE).await;
    let trunk = trunk(port, callee.port);
    let (loket, _flows) = support::start_with_flows(&transfer_flows(), &trunk_config(port, "s3cret"), &[]);
    let voice = Voice::start(support::CITIZEN_TONE).await;
    let scenario = "trunk-caller-hangs-up.xml";
    support::finish_sipp(scenario, citizen(&loket, scenario, voice.port)).await;
    let trunk_dir = support::finished_sipp("trunk-uas.xml", trunk).await;
    let messages = sipp_messages(&trunk_dir);
    assert!(has(&messages, false, "BYE ") && !has(&messages, true, "BYE "), "loket hung up the trunk: {messages:?}");
    assert_both_ways(&voice, &callee);
    loket.stop();
}

/// A wrong trunk password: the trunk refuses the credentials (403), and the citizen is hung up.
#[tokio::test]
async fn a_transfer_the_trunk_refuses_hangs_up_the_caller() {
    let port = free_port();
    let trunk = trunk(port, free_port());
    let (loket, _flows) = support::start_with_flows(&transfer_flows(), &trunk_config(port, "wrong"), &[]);
    let voice = Voice::start(support::CITIZEN_TONE).await;
    support::finish_sipp("trunk-caller.xml", citizen(&loket, "trunk-caller.xml", voice.port)).await;
    let trunk_dir = support::finished_sipp("trunk-uas.xml", trunk).await;
    let messages = sipp_messages(&trunk_dir);
    assert!(has(&messages, true, "SIP/2.0 403 Forbidden"), "the trunk refused the credentials: {messages:?}");
    assert!(!has(&messages, true, "SIP/2.0 200 OK"), "{messages:?}");
    loket.stop();
}

/// Without a trunk, a transfer to a number fails at once and the citizen is hung up.
#[tokio::test]
async fn without_a_trunk_a_transfer_hangs_up_the_caller() {
    let (loket, _flows) = support::start_with_flows(&transfer_flows(), "", &[]);
    let voice = Voice::start(support::CITIZEN_TONE).await;
    let started = Instant::now();
    support::finish_sipp("trunk-caller.xml", citizen(&loket, "trunk-caller.xml", voice.port)).await;
    // The key at 5.5 s; the BYE follows it, not the scenario's 60 s wait.
    assert!(started.elapsed() < Duration::from_secs(30), "hung up after {:?}", started.elapsed());
    loket.stop();
}

/// loket registers at the trunk: challenged, its credentials checked by SIPp, renewed after half
/// of the 2 s granted (the nonce reused with the next count), and removed when loket stops.
#[test]
fn loket_registers_at_the_trunk_and_unregisters_when_it_stops() {
    let port = free_port();
    let dir = support::TempDir::new();
    let port_text = port.to_string();
    let args = ["-p", &port_text, "-key", "user", "loket", "-key", "password", "s3cret"];
    let run = support::sipp(&dir, "trunk-register.xml", &args).args(["-timeout", "60s", "-trace_msg"]).spawn();
    let (mut registrar, dir) = spawned("trunk-register.xml", run, dir);
    let config = format!(
        "[sip.trunk]\nhost = \"127.0.0.1:{port}\"\nusername = \"loket\"\npassword = \"s3cret\"\n\
         caller_id = \"+3225550100\"\nregister = true\n"
    );
    let loket = support::start_with_config(&config, &[]);
    let deadline = Instant::now() + support::DEADLINE;
    loop {
        let accepted =
            sipp_messages(&dir).iter().filter(|(sent, line)| *sent && line.starts_with("SIP/2.0 200")).count();
        if accepted >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "registered and renewed within the deadline: {:?}", sipp_messages(&dir));
        std::thread::sleep(Duration::from_millis(100));
    }
    loket.stop();
    support::check_sipp(&dir, "trunk-register.xml", registrar.wait());
    let messages = sipp_messages(&dir);
    let registers = messages.iter().filter(|(sent, line)| !sent && line.starts_with("REGISTER ")).count();
    assert_eq!(registers, 4, "challenged, answered, renewed, removed: {messages:?}");
    assert!(!has(&messages, true, "SIP/2.0 403"), "loket's credentials are right: {messages:?}");
}
