//! Calls with a real SIP peer: SIPp callers (`tests/sipp/call-*.xml`) against `loket serve --demo`
//! with numbers that loket answers itself: a call hung up by the caller and one hung up by loket,
//! CANCEL before the answer, hold and resume by re-INVITE, and an unknown number (404); and a
//! SIPp caller bridged by loket to a SIPp phone registered as the demo agent.
//! SIPp is required: without it the test fails and says how to install it.

mod support;

use std::process::Command;

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
    let password = loket.sip_password("agent").to_owned();
    let free_port =
        || std::net::UdpSocket::bind("127.0.0.1:0").and_then(|socket| socket.local_addr()).expect("a free port").port();
    let dir = support::TempDir::new();
    // No sound devices: aubridge passes audio between baresip's own source and player.
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{}\nnet_interface 127.0.0.1\naudio_player aubridge,nil\n\
         audio_source aubridge,nil\naudio_alert aubridge,nil\naudio_srate 8000\naudio_channels 1\n\
         rtp_ports 20000-20999\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule aubridge.so\n\
         module account.so\nmodule menu.so\nmodule cons.so\ncons_listen 127.0.0.1:{}\n",
        free_port(),
        free_port()
    );
    std::fs::write(dir.0.join("config"), config).expect("baresip config");
    let account = format!(
        "<sip:agent@loket.invalid>;auth_pass={password};outbound=\"sip:{}\";regint=300;answermode=auto;\
         audio_codecs=PCMU,PCMA\n",
        loket.sip_udp
    );
    std::fs::write(dir.0.join("accounts"), account).expect("baresip accounts");
    let mut baresip = Command::new("baresip")
        .args(["-f", &dir.0.to_string_lossy(), "-v"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            panic!("this test needs baresip (`apt-get install baresip`, or run scripts/test): {error}")
        });
    let lines = support::lines_of(baresip.stdout.take().expect("baresip stdout"));
    let mut seen = Vec::new();
    let mut wait_for = |what: &str, matches: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + support::DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let found = matches(&line);
                    seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!("baresip did not report {what} within the deadline:\n{}", seen.join("\n")),
            }
        }
    };
    wait_for("its registration", &|line| line.contains("agent@loket.invalid") && line.contains("200 OK"));
    call("call-caller-hangs-up.xml", &loket, "+3225550103");
    wait_for("the call established", &|line| line.contains("Call established"));
    // libre reports the peer's BYE as "session closed: Connection reset by peer".
    wait_for("the call closed by the BYE", &|line| line.contains("session closed"));
    let _ = baresip.kill();
    let _ = baresip.wait();
    loket.stop();
}
