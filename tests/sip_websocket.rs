//! SIP over WebSocket (RFC 7118) with an independent user agent: JsSIP, the browser SIP stack,
//! in headless Chromium (Debian's chromium and chromedriver) against `loket serve --demo`. Two
//! JsSIP user agents in one page, the demo `agent` and `agent2`, each REGISTER with digest
//! authentication over a WebSocket of their own; `agent2` sends an INVITE to a number whose
//! target is `agent:agent`, loket's B2BUA forks it to the agent's phone, reachable only through
//! its connection (its Contact is `…@random.invalid;transport=ws`), the agent's JsSIP answers,
//! ACK and BYE cross both connections, and audio flows between the two user agents' peer
//! connections (the SDP passes through loket unchanged). The UAs un-REGISTER at the end.
//!
//! JsSIP comes from npm (`tests/jssip/package.json`, pinned in its lock file): 3.12.0, the last
//! release whose package still ships the browser bundle `dist/jssip.min.js` (it calls itself
//! 3.11.1; 3.13 ships only CommonJS sources). The test fails, saying so, when
//! `npm ci --prefix tests/jssip` has not been run (`scripts/test` runs it).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::DEADLINE;
use support::browser::{Browser, start_chromedriver};

/// The number that reaches the demo agent's phones through the B2BUA.
const NUMBERS: &str = r#"
[[sip.numbers]]
number = "+3225550103"
target = "agent:agent"
"#;

/// The page's side: the two user agents, what happened to them, and every SIP message on the
/// page's WebSockets, for the test's failure messages.
const PAGE_SCRIPT: &str = r#"
window.sipTrace = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    this.addEventListener("message", (event) => sipTrace.push("<<< received\n" + event.data));
  }
  send(data) {
    sipTrace.push(">>> sent\n" + data);
    super.send(data);
  }
};

window.phones = {};

window.startPhone = (name, password, server) => {
  const ua = new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(server)],
    uri: `sip:${name}@loket.invalid`,
    password,
    register: true,
  });
  const phone = { ua, session: null, state: { registered: false, unregistered: false, confirmed: false,
                                               ended: null, failure: null, incoming: false } };
  const fail = (what) => { phone.state.failure = phone.state.failure || what; };
  ua.on("registered", () => { phone.state.registered = true; });
  ua.on("unregistered", () => { phone.state.unregistered = true; });
  ua.on("registrationFailed", (event) => {
    const response = event.response ? ` (${event.response.status_code} ${event.response.reason_phrase})` : "";
    fail(`registration failed: ${event.cause}${response}`);
  });
  ua.on("newRTCSession", ({ session, originator }) => {
    phone.session = session;
    session.on("confirmed", () => { phone.state.confirmed = true; });
    session.on("ended", ({ originator, cause }) => { phone.state.ended = { originator, cause }; });
    session.on("failed", ({ originator, cause, message }) => {
      const status = message && message.status_code ? ` (${message.status_code} ${message.reason_phrase})` : "";
      fail(`call failed, by the ${originator} side: ${cause}${status}`);
    });
    if (originator === "remote") {
      phone.state.incoming = true;
      session.answer({ mediaConstraints: { audio: true, video: false } });
    }
  });
  ua.start();
  phones[name] = phone;
};

// The audio packets the phone's peer connection has received so far.
window.packetsReceived = async (name) => {
  const session = phones[name].session;
  if (!session || !session.connection) return 0;
  let packets = 0;
  (await session.connection.getStats()).forEach((report) => {
    if (report.type === "inbound-rtp" && report.kind === "audio") packets += report.packetsReceived;
  });
  return packets;
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jssip_browsers_call_through_loket_over_websocket() {
    let jssip = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/jssip/node_modules/jssip/dist/jssip.min.js");
    assert!(
        jssip.exists(),
        "this test needs JsSIP from npm: run `npm ci --prefix tests/jssip` (or scripts/test); {} is missing",
        jssip.display()
    );
    // loket's default challenges, SHA-256 then MD5, are left as they are: JsSIP answers only MD5
    // and keeps only the last WWW-Authenticate header of a response, which is loket's MD5 one.
    // With MD5 listed first it would give up on registering.
    let loket = support::start_with_config(NUMBERS, &[]);
    let page_dir = support::TempDir::new();
    let page = page_dir.0.join("phones.html");
    let html = format!(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<title>JsSIP through loket</title>\n\
         <script src=\"file://{}\"></script>\n<script>{PAGE_SCRIPT}</script>\n",
        jssip.display()
    );
    std::fs::write(&page, html).expect("write the page");
    let driver = start_chromedriver().await;
    let browser = Browser::open(&driver).await;
    browser.goto(&format!("file://{}", page.display())).await;
    let version = browser.script("return typeof JsSIP === 'undefined' ? null : JsSIP.version;", json!([])).await;
    assert!(version.is_string(), "the page loaded JsSIP from {}", jssip.display());

    let server = format!("ws://{}", loket.sip_ws);
    for name in ["agent", "agent2"] {
        let start = "startPhone(arguments[0], arguments[1], arguments[2]);";
        browser.script(start, json!([name, loket.sip_password(name), server])).await;
    }
    for name in ["agent", "agent2"] {
        wait_for_state(&browser, name, &format!("{name} registered"), |state| state["registered"] == true).await;
    }

    let call = "phones.agent2.ua.call('sip:+3225550103@loket.invalid', \
                {mediaConstraints: {audio: true, video: false}});";
    browser.script(call, json!([])).await;
    let agent =
        wait_for_state(&browser, "agent", "the agent's call confirmed", |state| state["confirmed"] == true).await;
    assert_eq!(agent["incoming"], true, "the agent's JsSIP was called, by loket's fork");
    wait_for_state(&browser, "agent2", "the caller's call confirmed", |state| state["confirmed"] == true).await;

    // Audio both ways, each user agent receiving the other's fake microphone: ICE and DTLS only
    // succeed with the credentials and fingerprints each side put in its SDP, so this also shows
    // that loket passed both bodies through intact.
    for name in ["agent", "agent2"] {
        let started = Instant::now();
        loop {
            let packets = browser.script("return packetsReceived(arguments[0]);", json!([name])).await;
            if packets.as_u64().is_some_and(|packets| packets > 0) {
                break;
            }
            assert!(started.elapsed() < DEADLINE, "{name} received no audio packets:\n{}", trace(&browser).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The agent hangs up: loket sends the caller a BYE over the caller's connection.
    browser.script("phones.agent.session.terminate();", json!([])).await;
    let ended = |state: &Value| !state["ended"].is_null();
    let agent = wait_for_state(&browser, "agent", "the agent's call ended", ended).await;
    assert_eq!(agent["ended"]["originator"], "local", "{agent}");
    let caller = wait_for_state(&browser, "agent2", "the caller's call ended by a BYE", ended).await;
    let bye = browser.script("return JsSIP.C.causes.BYE;", json!([])).await;
    assert_eq!(caller["ended"], json!({"originator": "remote", "cause": bye}), "{caller}");

    // Stopping a UA un-REGISTERs it, with digest again.
    browser.script("phones.agent.ua.stop(); phones.agent2.ua.stop();", json!([])).await;
    for name in ["agent", "agent2"] {
        wait_for_state(&browser, name, &format!("{name} unregistered"), |state| state["unregistered"] == true).await;
    }
    browser.close().await;
    loket.stop();
}

/// Waits, with a deadline, until the state of the page's phone `name` satisfies `ready`, and
/// returns it; fails at once when the phone reports a failure.
async fn wait_for_state(browser: &Browser, name: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let state = browser.script("return phones[arguments[0]].state;", json!([name])).await;
        if let Some(failure) = state["failure"].as_str() {
            panic!("{name}: {failure} (waiting for {what}); SIP on the page:\n{}", trace(browser).await);
        }
        if ready(&state) {
            return state;
        }
        assert!(started.elapsed() < DEADLINE, "{what} within the deadline: {state}; SIP:\n{}", trace(browser).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The SIP messages the page's user agents sent and received, in order.
async fn trace(browser: &Browser) -> String {
    let messages = browser.script("return sipTrace;", json!([])).await;
    let messages = messages.as_array().cloned().unwrap_or_default();
    messages.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n")
}
