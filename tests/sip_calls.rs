//! Calls with a real SIP peer: SIPp callers (`tests/sipp/call-*.xml`) against `loket serve --demo`
//! with numbers that loket answers itself: a call hung up by the caller and one hung up by loket,
//! CANCEL before the answer, hold and resume by re-INVITE, and an unknown number (404); and a
//! SIPp caller bridged by loket to a SIPp phone registered as the demo agent.
//! SIPp is required: without it the test fails and says how to install it.

mod support;

/// The demo number as in the defaults, one that rings (for CANCEL), one loket hangs up, and one
/// that reaches the demo agent's phones through the B2BUA.
const NUMBERS: &str = r#"
[[sip.numbers]]
number = "+3225550100"
target = "answer"

[[sip.numbers]]
number = "+3225550101"
target = "answer"
ring_seconds = 30

[[sip.numbers]]
number = "+3225550102"
target = "answer"
hangup_seconds = 1

[[sip.numbers]]
number = "+3225550103"
target = "agent:agent"
"#;

/// One SIPp caller of `number` through to its end.
fn call(scenario: &str, loket: &support::Loket, number: &str) {
    let dir = support::TempDir::new();
    let run = support::sipp(&dir, scenario, &["-s", number, "-p", "0", &loket.sip_udp]).status();
    support::check_sipp(&dir, &format!("{scenario} calling {number}"), run);
}

#[test]
fn sipp_calls_answered_by_loket() {
    let loket = support::start_with_config(NUMBERS, &[]);
    call("call-caller-hangs-up.xml", &loket, "+3225550100");
    call("call-loket-hangs-up.xml", &loket, "+3225550102");
    call("call-cancel.xml", &loket, "+3225550101");
    call("call-hold.xml", &loket, "+3225550100");
    call("call-unknown-number.xml", &loket, "+3225550199");
    loket.stop();
}

/// SIPp registers as the demo agent (MD5 digest, as SIPp 3.6 knows only that) from one port,
/// then answers there as the agent's phone; a SIPp caller's call, with a hold and a resume,
/// crosses loket's B2BUA to it and back, and the caller's BYE reaches the phone.
#[test]
fn sipp_caller_reaches_a_sipp_agent_through_the_b2bua() {
    let loket = support::start_with_config(NUMBERS, &[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")]);
    let password = loket.sip_password("agent").to_owned();
    let port =
        std::net::UdpSocket::bind("127.0.0.1:0").and_then(|socket| socket.local_addr()).expect("a free port").port();
    let port = port.to_string();
    let dir = support::TempDir::new();
    let register = ["-s", "agent", "-au", "agent", "-ap", &password, "-key", "domain", "loket.invalid"];
    let run = support::sipp(&dir, "register-auth.xml", &register)
        .args(["-auth_uri", "loket.invalid", "-p", &port, &loket.sip_udp])
        .status();
    support::check_sipp(&dir, "register-auth.xml", run);
    let phone_dir = support::TempDir::new();
    let phone = support::sipp(&phone_dir, "agent-callee.xml", &["-p", &port]).spawn();
    let mut phone =
        phone.unwrap_or_else(|error| panic!("this test needs SIPp (`apt-get install sip-tester`): {error}"));
    call("call-hold.xml", &loket, "+3225550103");
    support::check_sipp(&phone_dir, "agent-callee.xml", phone.wait());
    loket.stop();
}

/// baresip registers as the demo agent's phone and answers automatically; a SIPp caller's call
/// crosses loket to it, and the caller's hang-up ends both legs: baresip reports the call
/// established and then closed by the BYE (SIPp checks the 200 to its BYE). baresip is required
/// (`apt-get install baresip`).
#[test]
fn sipp_caller_reaches_baresip_as_the_agent() {
    let loket = support::start_with_config(NUMBERS, &[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5")]);
    let mut baresip = support::Baresip::register(&loket, "agent");
    call("call-caller-hangs-up.xml", &loket, "+3225550103");
    baresip.wait_for("the call established", |line| line.contains("Call established"));
    // libre reports the peer's BYE as "session closed: Connection reset by peer".
    baresip.wait_for("the call closed by the BYE", |line| line.contains("session closed"));
    loket.stop();
}
