//! The console in a real browser for the end-to-end tests: headless Chromium (Debian's chromium
//! and chromedriver), driven through the W3C WebDriver protocol.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{DEADLINE, Loket};

/// chromedriver on a free port, stopped with the test, and with it the browsers it started.
pub struct ChromeDriver {
    child: Child,
    url: String,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The browsers are in chromedriver's process group: a test that failed before closing
        // its browser leaves none behind to run (and use the CPU) through the next tests.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_chromedriver() -> ChromeDriver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
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
pub const TONE_MICROPHONE: &str = r#"
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
pub const TONE_ANALYSER: &str = r#"
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
pub const TONE_HEARD_DB: f64 = -60.0;

/// The agent's and the supervisor's tones in the coaching test (the citizen's is
/// `super::CITIZEN_TONE`); none of them is a DTMF frequency.
pub const AGENT_TONE: f64 = 1_100.0;
pub const SUPERVISOR_TONE: f64 = 1_800.0;

/// One browser session: the few WebDriver commands the tests need.
pub struct Browser {
    http: reqwest::Client,
    session: String,
}

impl Browser {
    pub async fn open(driver: &ChromeDriver) -> Browser {
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

    pub async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.try_command(method, path, body).await.unwrap_or_else(|answer| panic!("webdriver {path}: {answer}"))
    }

    /// The command's value, or WebDriver's error answer.
    pub async fn try_command(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value, Value> {
        let request = self.http.request(method, format!("{}{path}", self.session));
        let request = if body.is_null() { request } else { request.json(&body) };
        let answer: Value = request.send().await.expect("webdriver").json().await.expect("json");
        if answer["value"].get("error").is_some() { Err(answer) } else { Ok(answer["value"].clone()) }
    }

    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    pub async fn find(&self, css: &str) -> String {
        self.try_find(css).await.unwrap_or_else(|answer| panic!("webdriver /element {css}: {answer}"))
    }

    pub async fn try_find(&self, css: &str) -> Result<String, Value> {
        let element =
            self.try_command(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await?;
        Ok(element.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).expect("element id").to_owned())
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, reqwest::Method::POST, "value", json!({"text": text})).await;
    }

    pub async fn click(&self, css: &str) {
        self.on_element(css, reqwest::Method::POST, "click", json!({})).await;
    }

    /// Runs the element command `command` on `css`, again if the page replaced the element
    /// between finding it and the command (the workspace and the board re-render on every change
    /// their socket announces).
    pub async fn on_element(&self, css: &str, method: reqwest::Method, command: &str, body: Value) -> Value {
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
    pub async fn click_when_present(&self, css: &str) {
        self.wait_for_text(css, css, |_| true).await;
        self.click(css).await;
    }

    pub async fn text(&self, css: &str) -> String {
        self.on_element(css, reqwest::Method::GET, "text", Value::Null).await.as_str().unwrap_or_default().to_owned()
    }

    /// The element's text, or `None` while the page does not have it (a page still loading after
    /// a form was sent, or an element replaced between finding and reading it).
    pub async fn text_if_present(&self, css: &str) -> Option<String> {
        let element = self.try_find(css).await.ok()?;
        let text = self.try_command(reqwest::Method::GET, &format!("/element/{element}/text"), Value::Null).await;
        Some(text.ok()?.as_str().unwrap_or_default().to_owned())
    }

    /// Waits, with a deadline, until the element's text satisfies `ready`; returns it.
    pub async fn wait_for_text(&self, css: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
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

    pub async fn attribute(&self, css: &str, name: &str) -> String {
        let value = self.on_element(css, reqwest::Method::GET, &format!("attribute/{name}"), Value::Null).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Logs `username` in and opens `page` (a link in the menu).
    pub async fn log_in_to(&self, loket: &Loket, username: &str, page: &str) {
        self.goto(&format!("{}/login", loket.base)).await;
        self.type_into("#username", username).await;
        self.type_into("#password", loket.password(username)).await;
        self.click("form[action='/login'] button[type=submit]").await;
        self.wait_for_path("/").await;
        self.click_when_present(&format!("a[href='{page}']")).await;
        self.wait_for_path(page).await;
        self.wait_for_text("#connection", "the live connection", |text| {
            text.contains("(live)") || text.contains("(en direct)")
        })
        .await;
    }

    /// Connects the page's softphone and waits until it is.
    pub async fn connect_softphone(&self) {
        self.click("#softphone-connect").await;
        // In the user's language: the demo's agents work in Dutch or French.
        self.wait_for_text("#softphone-state", "the softphone connected", |text| {
            text.starts_with("Softphone verbonden") || text.starts_with("Softphone connecté")
        })
        .await;
    }

    /// Logs `username` in to the workspace with a microphone that sends a tone of `tone` Hz,
    /// connects the softphone and goes available.
    pub async fn agent_on_softphone(&self, loket: &Loket, username: &str, tone: f64) {
        self.log_in_to(loket, username, "/workspace").await;
        self.microphone_tone(tone).await;
        self.connect_softphone().await;
        self.click("button[name=presence][value=available]").await;
        self.wait_for_text("#agent-state", "the agent available", |text| text == "beschikbaar" || text == "disponible")
            .await;
    }

    /// Runs `script` in the page (WebDriver's synchronous execute) and gives back what it returns.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": args})).await
    }

    /// From now on the page's microphone sends a tone of `hz`: connect the softphone after this.
    /// The tone comes from Web Audio, which the browser's echo canceller and noise suppressor
    /// leave alone (they would wear a steady fake-device tone down).
    pub async fn microphone_tone(&self, hz: f64) {
        self.script(TONE_MICROPHONE, json!([hz])).await;
    }

    /// How loud each of `tones` is, in dB, in what the softphone plays now; `None` before the
    /// softphone has audio to play.
    pub async fn loudness(&self, tones: &[f64]) -> Option<Vec<f64>> {
        let levels = self.script(TONE_ANALYSER, json!([tones])).await;
        levels.as_array().map(|levels| levels.iter().map(|level| level.as_f64().unwrap_or(f64::NEG_INFINITY)).collect())
    }

    /// Waits, with a deadline, until the softphone plays the tone `hz` (`heard`) or no longer does.
    pub async fn wait_for_tone(&self, what: &str, hz: f64, heard: bool) {
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
    pub async fn keeps_hearing(&self, what: &str, hz: f64, heard: bool, window: Duration) {
        let started = Instant::now();
        while started.elapsed() < window {
            let level = self.loudness(&[hz]).await.expect("the softphone plays audio")[0];
            assert!((level > TONE_HEARD_DB) == heard, "{what}: {hz} Hz at {level:.0} dB");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The packets the softphone has sent and received, as its counters line shows them.
    pub async fn softphone_packets(&self) -> (u64, u64) {
        packets(&self.text("#softphone-audio-stats").await)
    }

    pub async fn path(&self) -> String {
        let url = self.command(reqwest::Method::GET, "/url", Value::Null).await;
        let url = url.as_str().unwrap_or_default();
        url.splitn(4, '/').nth(3).map(|path| format!("/{path}")).unwrap_or_default()
    }

    /// Waits, with a deadline, until the page's path starts with `prefix`.
    pub async fn wait_for_path(&self, prefix: &str) -> String {
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

    pub async fn screenshot(&self, file: &str) {
        let png = self.command(reqwest::Method::GET, "/screenshot", Value::Null).await;
        if let (Some(data), Ok(dir)) = (png.as_str(), std::env::var("LOKET_SCREENSHOTS")) {
            let _ = std::fs::write(std::path::Path::new(&dir).join(file), base64_decode(data));
        }
    }

    pub async fn close(self) {
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

/// The packets sent and received that the softphone's counters line shows.
pub fn packets(stats: &str) -> (u64, u64) {
    let numbers: Vec<u64> = stats.split_whitespace().filter_map(|word| word.parse().ok()).collect();
    (numbers.first().copied().unwrap_or(0), numbers.get(1).copied().unwrap_or(0))
}
