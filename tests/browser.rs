//! The console in a real browser: headless Chromium (Debian's chromium and chromedriver), driven
//! through the W3C WebDriver protocol, against a `loket serve --demo` process.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{DEADLINE, start};

/// chromedriver on a free port, stopped with the test.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_chromedriver() -> ChromeDriver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver is needed for the browser tests (apt-get install chromium chromium-driver)");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let http = reqwest::Client::new();
    while http.get(format!("{url}/status")).send().await.is_err() {
        assert!(started.elapsed() < DEADLINE, "chromedriver did not answer within the deadline");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ChromeDriver { child, url }
}

/// Replaces the page's microphone with a Web Audio tone of `arguments[0]` Hz.
const TONE_MICROPHONE: &str = r#"
const hz = arguments[0];
navigator.mediaDevices.getUserMedia = async () => {
  const context = new AudioContext();
  const tone = context.createOscillator();
  tone.frequency.value = hz;
  const gain = context.createGain();
  gain.gain.value = 0.25;
  const out = context.createMediaStreamDestination();
  tone.connect(gain).connect(out);
  tone.start();
  return out.stream;
};
"#;

/// The level in dB of each frequency of `arguments[0]` in the softphone's audio, from an analyser
/// on its stream (set up on the first call); null while there is no stream.
const TONE_ANALYSER: &str = r#"
const audio = document.getElementById("softphone-audio");
if (!window.loketTestAnalyser) {
  if (!audio || !audio.srcObject) return null;
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 4096;
  analyser.smoothingTimeConstant = 0;
  context.createMediaStreamSource(audio.srcObject).connect(analyser);
  window.loketTestAnalyser = analyser;
}
const analyser = window.loketTestAnalyser;
const levels = new Float32Array(analyser.frequencyBinCount);
analyser.getFloatFrequencyData(levels);
const width = analyser.context.sampleRate / analyser.fftSize;
return arguments[0].map((hz) => {
  const bin = Math.round(hz / width);
  return Math.max(levels[bin - 1], levels[bin], levels[bin + 1]);
});
"#;

/// A tone louder than this in the softphone's audio is heard. PCMU's quantisation noise and the
/// other parties' tones stay well below it.
const TONE_HEARD_DB: f64 = -60.0;

/// The agent's and the supervisor's tones in the coaching test (the citizen's is
/// `support::CITIZEN_TONE`); none of them is a DTMF frequency.
const AGENT_TONE: f64 = 1_100.0;
const SUPERVISOR_TONE: f64 = 1_800.0;

/// One browser session: the few WebDriver commands the tests need.
struct Browser {
    http: reqwest::Client,
    session: String,
}

impl Browser {
    async fn open(driver: &ChromeDriver) -> Browser {
        let http = reqwest::Client::new();
        // The flags keep Chromium off the network this machine does not have (see the env notes).
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1280,1600",
                         // A fake microphone (a tone) that needs no permission prompt, for the softphone.
                         "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                         "--autoplay-policy=no-user-gesture-required"],
                "prefs": {"intl.accept_languages": "nl-BE,nl"}
            }
        }}});
        let answer: Value = http
            .post(format!("{}/session", driver.url))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("json");
        let session =
            answer["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {answer}")).to_owned();
        Browser { http, session: format!("{}/session/{session}", driver.url) }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.try_command(method, path, body).await.unwrap_or_else(|answer| panic!("webdriver {path}: {answer}"))
    }

    /// The command's value, or WebDriver's error answer.
    async fn try_command(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value, Value> {
        let request = self.http.request(method, format!("{}{path}", self.session));
        let request = if body.is_null() { request } else { request.json(&body) };
        let answer: Value = request.send().await.expect("webdriver").json().await.expect("json");
        if answer["value"].get("error").is_some() { Err(answer) } else { Ok(answer["value"].clone()) }
    }

    async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    async fn find(&self, css: &str) -> String {
        self.try_find(css).await.unwrap_or_else(|answer| panic!("webdriver /element {css}: {answer}"))
    }

    async fn try_find(&self, css: &str) -> Result<String, Value> {
        let element =
            self.try_command(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await?;
        Ok(element.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("element id").to_owned())
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, reqwest::Method::POST, "value", json!({"text": text})).await;
    }

    async fn click(&self, css: &str) {
        self.on_element(css, reqwest::Method::POST, "click", json!({})).await;
    }

    /// Runs the element command `command` on `css`, again if the page replaced the element
    /// between finding it and the command (the workspace and the board re-render on every change
    /// their socket announces).
    async fn on_element(&self, css: &str, method: reqwest::Method, command: &str, body: Value) -> Value {
        let started = Instant::now();
        loop {
            let element = self.find(css).await;
            let path = format!("/element/{element}/{command}");
            match self.try_command(method.clone(), &path, body.clone()).await {
                Ok(value) => return value,
                Err(answer) if answer["value"]["error"] == "stale element reference" => {
                    assert!(started.elapsed() < DEADLINE, "{css} kept being replaced");
                }
                Err(answer) => panic!("webdriver {command} {css}: {answer}"),
            }
        }
    }

    /// Clicks `css` once the page has it: after a navigation the old page may still be showing.
    async fn click_when_present(&self, css: &str) {
        self.wait_for_text(css, css, |_| true).await;
        self.click(css).await;
    }

    async fn text(&self, css: &str) -> String {
        self.on_element(css, reqwest::Method::GET, "text", Value::Null).await.as_str().unwrap_or_default().to_owned()
    }

    /// The element's text, or `None` while the page does not have it (a page still loading after
    /// a form was sent, or an element replaced between finding and reading it).
    async fn text_if_present(&self, css: &str) -> Option<String> {
        let element = self.try_find(css).await.ok()?;
        let text = self.try_command(reqwest::Method::GET, &format!("/element/{element}/text"), Value::Null).await;
        Some(text.ok()?.as_str().unwrap_or_default().to_owned())
    }

    /// Waits, with a deadline, until the element's text satisfies `ready`; returns it.
    async fn wait_for_text(&self, css: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let text = self.text_if_present(css).await;
            if let Some(text) = text.as_deref().filter(|text| ready(text)) {
                return text.to_owned();
            }
            assert!(started.elapsed() < DEADLINE, "{what} within the deadline; {css} shows {text:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn attribute(&self, css: &str, name: &str) -> String {
        let value = self.on_element(css, reqwest::Method::GET, &format!("attribute/{name}"), Value::Null).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Logs `username` in and opens `page` (a link in the menu).
    async fn log_in_to(&self, loket: &support::Loket, username: &str, page: &str) {
        self.goto(&format!("{}/login", loket.base)).await;
        self.type_into("#username", username).await;
        self.type_into("#password", loket.password(username)).await;
        self.click("form[action='/login'] button[type=submit]").await;
        self.wait_for_path("/").await;
        self.click_when_present(&format!("a[href='{page}']")).await;
        self.wait_for_path(page).await;
        self.wait_for_text("#connection", "the live connection", |text| text.contains("(live)")).await;
    }

    /// Connects the page's softphone and waits until it is.
    async fn connect_softphone(&self) {
        self.click("#softphone-connect").await;
        self.wait_for_text("#softphone-state", "the softphone connected", |text| {
            text.starts_with("Softphone verbonden")
        })
        .await;
    }

    /// Runs `script` in the page (WebDriver's synchronous execute) and gives back what it returns.
    async fn script(&self, script: &str, args: Value) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": args})).await
    }

    /// From now on the page's microphone sends a tone of `hz`: connect the softphone after this.
    /// The tone comes from Web Audio, which the browser's echo canceller and noise suppressor
    /// leave alone (they would wear a steady fake-device tone down).
    async fn microphone_tone(&self, hz: f64) {
        self.script(TONE_MICROPHONE, json!([hz])).await;
    }

    /// How loud each of `tones` is, in dB, in what the softphone plays now; `None` before the
    /// softphone has audio to play.
    async fn loudness(&self, tones: &[f64]) -> Option<Vec<f64>> {
        let levels = self.script(TONE_ANALYSER, json!([tones])).await;
        levels.as_array().map(|levels| levels.iter().map(|level| level.as_f64().unwrap_or(f64::NEG_INFINITY)).collect())
    }

    /// Waits, with a deadline, until the softphone plays the tone `hz` (`heard`) or no longer does.
    async fn wait_for_tone(&self, what: &str, hz: f64, heard: bool) {
        let started = Instant::now();
        loop {
            let level = self.loudness(&[hz]).await.map(|levels| levels[0]);
            if level.is_some_and(|level| (level > TONE_HEARD_DB) == heard) {
                return;
            }
            assert!(started.elapsed() < DEADLINE, "{what}: {hz} Hz at {level:?} dB after {DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Listens for `window` and checks that the softphone played the tone `hz` all along
    /// (`heard`), or never.
    async fn keeps_hearing(&self, what: &str, hz: f64, heard: bool, window: Duration) {
        let started = Instant::now();
        while started.elapsed() < window {
            let level = self.loudness(&[hz]).await.expect("the softphone plays audio")[0];
            assert!((level > TONE_HEARD_DB) == heard, "{what}: {hz} Hz at {level:.0} dB");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The packets the softphone has sent and received, as its counters line shows them.
    async fn softphone_packets(&self) -> (u64, u64) {
        packets(&self.text("#softphone-audio-stats").await)
    }

    async fn path(&self) -> String {
        let url = self.command(reqwest::Method::GET, "/url", Value::Null).await;
        let url = url.as_str().unwrap_or_default();
        url.splitn(4, '/').nth(3).map(|path| format!("/{path}")).unwrap_or_default()
    }

    /// Waits, with a deadline, until the page's path starts with `prefix`.
    async fn wait_for_path(&self, prefix: &str) -> String {
        let started = Instant::now();
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                return path;
            }
            assert!(started.elapsed() < DEADLINE, "the browser did not reach {prefix}; it is on {path}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, file: &str) {
        let png = self.command(reqwest::Method::GET, "/screenshot", Value::Null).await;
        if let (Some(data), Ok(dir)) = (png.as_str(), std::env::var("LOKET_SCREENSHOTS")) {
            let _ = std::fs::write(std::path::Path::new(&dir).join(file), base64_decode(data));
        }
    }

    async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// Screenshots are written only when LOKET_SCREENSHOTS names a directory (for people looking).
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in text.bytes().filter(|b| *b != b'=') {
        let Some(value) = ALPHABET.iter().position(|a| *a == byte) else { continue };
        buffer = (buffer << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

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

/// The packets sent and received that the softphone's counters line shows.
fn packets(stats: &str) -> (u64, u64) {
    let numbers: Vec<u64> = stats.split_whitespace().filter_map(|word| word.parse().ok()).collect();
    (numbers.first().copied().unwrap_or(0), numbers.get(1).copied().unwrap_or(0))
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
    agent.log_in_to(&loket, "agent", "/workspace").await;
    agent.microphone_tone(AGENT_TONE).await;
    agent.connect_softphone().await;
    agent.click("button[name=presence][value=available]").await;
    agent.wait_for_text("#agent-state", "the agent available", |text| text == "beschikbaar").await;
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
