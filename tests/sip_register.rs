//! A real SIP peer against `loket serve --demo`: SIPp registers as a demo agent with the agent's
//! SIP password (REGISTER, 401, REGISTER with credentials, 200) and with a wrong one (403).
//! SIPp is required: without it the test fails and says how to install it.
//!
//! SIPp 3.6 answers only the first challenge of a 401 and knows only MD5, so loket runs here with
//! `sip.digest_algorithms = "MD5"`; SHA-256 first is covered by loket-sip's own tests.

mod support;

use std::process::Command;

const DOMAIN: &str = "loket.invalid";

fn sipp(scenario: &str, loket: &support::Loket, user: &str, password: &str) -> std::process::Output {
    let dir = support::TempDir::new();
    let scenario = format!("{}/tests/sipp/{scenario}", env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new("sipp");
    command
        .current_dir(&dir.0)
        .args(["-sf", &scenario, "-s", user, "-au", user, "-ap", password, "-key", "domain", DOMAIN])
        // SIPp digests `sip:HOST:PORT` of the server unless told the Request-URI's.
        .args(["-auth_uri", DOMAIN])
        .args(["-i", "127.0.0.1", "-m", "1", "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_err"])
        .arg(&loket.sip_udp);
    let output = command.output().unwrap_or_else(|error| {
        panic!("this test needs SIPp (`apt-get install sip-tester`, or run scripts/test): {error}")
    });
    if !output.status.success() {
        let errors: String = std::fs::read_dir(&dir.0)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().ends_with("errors.log"))
            .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
            .collect();
        panic!("sipp {scenario} failed ({}):\n{errors}", output.status);
    }
    output
}

#[test]
fn sipp_registers_a_demo_agent_and_a_wrong_password_is_refused() {
    let loket = support::start(&[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5"), ("LOKET_SIP_DOMAIN", DOMAIN)]);
    assert_eq!(loket.sip_credentials.iter().map(|(user, _)| user.as_str()).collect::<Vec<_>>(), ["agent", "agent2"]);
    let password = loket.sip_password("agent").to_owned();
    sipp("register-auth.xml", &loket, "agent", &password);
    sipp("register-wrong-password.xml", &loket, "agent2", "not-the-password");
    // The console password is not the SIP password.
    let console_password = loket.password("agent").to_owned();
    sipp("register-wrong-password.xml", &loket, "agent", &console_password);
    loket.stop();
}
