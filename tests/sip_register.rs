//! A real SIP peer against `loket serve --demo`: SIPp registers as a demo agent with the agent's
//! SIP password (REGISTER, 401, REGISTER with credentials, 200) and with a wrong one (403).
//! SIPp is required: without it the test fails and says how to install it.
//!
//! SIPp 3.6 answers only the first challenge of a 401 and knows only MD5, so loket runs here with
//! `sip.digest_algorithms = "MD5"`; SHA-256 first is covered by loket-sip's own tests.

mod support;

const DOMAIN: &str = "loket.invalid";

/// One SIPp registration as `user` with `password`, to its end.
fn register(scenario: &str, loket: &support::Loket, user: &str, password: &str) {
    let dir = support::TempDir::new();
    let credentials = ["-s", user, "-au", user, "-ap", password, "-key", "domain", DOMAIN];
    let run = support::sipp(&dir, scenario, &credentials)
        // SIPp digests `sip:HOST:PORT` of the server unless told the Request-URI's.
        .args(["-auth_uri", DOMAIN, &loket.sip_udp])
        .status();
    support::check_sipp(&dir, &format!("{scenario} as {user}"), run);
}

#[test]
fn sipp_registers_a_demo_agent_and_a_wrong_password_is_refused() {
    let loket = support::start(&[("LOKET_SIP_DIGEST_ALGORITHMS", "MD5"), ("LOKET_SIP_DOMAIN", DOMAIN)]);
    assert_eq!(loket.sip_credentials.iter().map(|(user, _)| user.as_str()).collect::<Vec<_>>(), ["agent", "agent2"]);
    let password = loket.sip_password("agent").to_owned();
    register("register-auth.xml", &loket, "agent", &password);
    register("register-wrong-password.xml", &loket, "agent2", "not-the-password");
    // The console password is not the SIP password.
    let console_password = loket.password("agent").to_owned();
    register("register-wrong-password.xml", &loket, "agent", &console_password);
    loket.stop();
}
