#![allow(dead_code, reason = "each end-to-end test binary uses a part of the shared support")]
//! What the end-to-end tests share: a `loket` process on a free port with the demo loaded, a
//! scratch directory, and a cookie-keeping HTTP client that logs in like a browser.

pub mod browser;
pub mod trunk;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const DEADLINE: Duration = Duration::from_secs(60);

pub struct Loket {
    child: Child,
    pub base: String,
    pub credentials: Vec<(String, String)>,
    /// The demo agents' SIP passwords, printed after the console ones.
    pub sip_credentials: Vec<(String, String)>,
    /// Where the SIP service listens: UDP and TCP (`host:port`).
    pub sip_udp: String,
    pub sip_tcp: String,
    /// SIP over WebSocket (`LOKET_SIP_WS_LISTEN`).
    pub sip_ws: String,
    /// Its working directory (configuration, SQLite database, data), and its extra environment:
    /// what a restart starts again with.
    dir: TempDir,
    env: Vec<(String, String)>,
}

pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("loket-e2e-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64
        % 1_000_000_007
}

pub fn loket(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loket"));
    command.current_dir(dir).env_remove("DATABASE_URL").env_remove("REDIS_URL").env("LOKET_LOG", "warn");
    // Free ports, so that tests run side by side.
    command.env("LOKET_SIP_UDP_LISTEN", "127.0.0.1:0").env("LOKET_SIP_TCP_LISTEN", "127.0.0.1:0");
    command.env("LOKET_SIP_WS_LISTEN", "127.0.0.1:0");
    command
}

/// Starts `loket serve --demo` on a free port and waits, with a deadline, until it says where.
pub fn start(extra_env: &[(&str, &str)]) -> Loket {
    start_with_config("", extra_env)
}

/// [`start`] with `config` as the `loket.toml` it finds in its working directory.
pub fn start_with_config(config: &str, extra_env: &[(&str, &str)]) -> Loket {
    let dir = TempDir::new();
    if !config.is_empty() {
        std::fs::write(dir.0.join("loket.toml"), config).expect("write loket.toml");
    }
    let env = extra_env.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
    start_in(dir, env)
}

/// `loket serve --demo` in `dir` with `env`, as [`start_with_config`] prepared them.
fn start_in(dir: TempDir, env: Vec<(String, String)>) -> Loket {
    let mut command = loket(&dir.0);
    command.args(["serve", "--demo"]).env("LOKET_HTTP_LISTEN", "127.0.0.1:0").stdout(Stdio::piped());
    for (name, value) in &env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn loket");
    let lines_rx = lines_of(child.stdout.take().expect("stdout"));
    let (mut credentials, mut sip_credentials, mut sip) = (Vec::new(), Vec::new(), None);
    let mut in_sip_section = false;
    let base = loop {
        let line = lines_rx.recv_timeout(DEADLINE).expect("loket announces its address within the deadline");
        if let Some(url) = line.strip_prefix("loket: console on ") {
            break url.trim_end_matches('/').to_owned();
        }
        if let Some(addresses) = line.strip_prefix("loket: sip on udp ") {
            let (udp, rest) = addresses.split_once(" tcp ").expect("udp ADDR tcp ADDR ws ADDR");
            let (tcp, ws) = rest.split_once(" ws ").expect("udp ADDR tcp ADDR ws ADDR");
            sip = Some((udp.to_owned(), tcp.to_owned(), ws.to_owned()));
        }
        if line.starts_with("Demo ") {
            in_sip_section = line.starts_with("Demo SIP ");
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("  ") && fields.len() == 2 {
            let pair = (fields[0].to_owned(), fields[1].to_owned());
            if in_sip_section { sip_credentials.push(pair) } else { credentials.push(pair) }
        }
    };
    let (sip_udp, sip_tcp, sip_ws) = sip.expect("loket prints its SIP addresses before the console's");
    Loket { child, base, credentials, sip_credentials, sip_udp, sip_tcp, sip_ws, dir, env }
}

/// The demo IVR flows with every service open all week (`open`) or never, so that a test does not
/// depend on the hour it runs at.
pub fn demo_flows(open: bool) -> String {
    let hours = if open { r#"["00:00-24:00"]"# } else { "[]" };
    let mut text = String::new();
    for line in loket_ivr::DEMO.lines() {
        let key = line.split(" = ").next().unwrap_or_default();
        match key {
            "monday" | "tuesday" | "wednesday" | "thursday" => text.push_str(&format!("{key} = {hours}\n")),
            "friday" => text.push_str(&format!("friday = {hours}\nsaturday = {hours}\nsunday = {hours}\n")),
            // The schedules' lists of dates, not the prompt and the node also called `closed`.
            "closed" | "exceptions" if line.starts_with(&format!("{key} = [")) => {
                text.push_str(&format!("{key} = []\n"))
            }
            _ => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text
}

/// `loket serve --demo` with [`demo_flows`], more configuration (`config`, after the `[ivr]`
/// section's flows) and environment; the returned directory holds the flows.
pub fn start_with_ivr(open: bool, config: &str, extra_env: &[(&str, &str)]) -> (Loket, TempDir) {
    start_with_flows(&demo_flows(open), config, extra_env)
}

/// `loket serve --demo` with the IVR flows `flows` (a TOML text), and `config` after them.
pub fn start_with_flows(flows: &str, config: &str, extra_env: &[(&str, &str)]) -> (Loket, TempDir) {
    let dir = TempDir::new();
    let flows_file = dir.0.join("ivr.toml");
    std::fs::write(&flows_file, flows).expect("write ivr.toml");
    let flows = flows_file;
    let config = format!("[ivr]\nflows = {:?}\n{config}", flows.display().to_string());
    (start_with_config(&config, extra_env), dir)
}

/// The lines a child process writes, as they come, read by a thread of their own.
pub fn lines_of(output: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    lines_rx
}

impl Loket {
    pub fn password(&self, username: &str) -> &str {
        &self
            .credentials
            .iter()
            .find(|(name, _)| name == username)
            .unwrap_or_else(|| panic!("no demo user {username}"))
            .1
    }

    pub fn sip_password(&self, username: &str) -> &str {
        &self
            .sip_credentials
            .iter()
            .find(|(name, _)| name == username)
            .unwrap_or_else(|| panic!("no demo SIP phone {username}"))
            .1
    }

    /// Stops loket as [`Self::stop`] does and starts it again on the same directory (its database
    /// and data) and environment; its addresses are new.
    pub fn restart(mut self) -> Loket {
        self.terminate();
        let dir = std::mem::replace(&mut self.dir, TempDir(std::path::PathBuf::new()));
        start_in(dir, std::mem::take(&mut self.env))
    }

    /// SIGTERM, then the process must exit by itself, successfully, within the deadline.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(status.success());
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "loket exited with {status} after SIGTERM");
                return;
            }
            assert!(started.elapsed() < DEADLINE, "loket did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Loket {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Redis the tests use (`REDIS_URL`, else 127.0.0.1:6379); a test that needs it fails here,
/// saying so, when nothing listens there.
pub fn redis_url() -> String {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let address = url.trim_start_matches("redis://").split('/').next().unwrap_or_default().to_owned();
    let address = address.rsplit('@').next().unwrap_or_default();
    if let Err(error) = std::net::TcpStream::connect(address) {
        panic!("this test needs Redis at {url} (apt-get install redis-server, or set REDIS_URL): {error}");
    }
    url
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).timeout(Duration::from_secs(30)).build().expect("client")
}

pub fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[start..start + html[start..].find('"').expect("end of value")].to_owned()
}

/// Logs in through the login page like a browser; returns the home page's HTML.
pub async fn login(client: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let page = client.get(format!("{base}/login")).send().await.expect("login page");
    assert_eq!(page.status(), 200);
    let csrf = csrf_of(&page.text().await.expect("body"));
    let response = client
        .post(format!("{base}/login"))
        .form(&[("csrf", csrf.as_str()), ("username", username), ("password", password)])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200, "{username} lands on a page after the redirect");
    assert_eq!(response.url().path(), "/", "{username} is sent home after login");
    response.text().await.expect("home")
}

pub async fn status_of(client: &reqwest::Client, base: &str, path: &str) -> u16 {
    client.get(format!("{base}{path}")).send().await.expect(path).status().as_u16()
}

/// A SIPp command for `scenario`, bounded by `-timeout`, working in `dir`.
pub fn sipp(dir: &TempDir, scenario: &str, args: &[&str]) -> Command {
    let scenario = format!("{}/tests/sipp/{scenario}", env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new("sipp");
    command
        .current_dir(&dir.0)
        .args(["-sf", &scenario, "-i", "127.0.0.1", "-mp", "0"])
        .args(["-m", "1", "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_err"])
        .args(args)
        // SIPp's screen is noise here; its errors go to the log `check_sipp` reads.
        .stdout(std::process::Stdio::null());
    command
}

/// Waits for a SIPp run; panics with its error log when it failed, or when SIPp is missing.
pub fn check_sipp(dir: &TempDir, what: &str, run: std::io::Result<std::process::ExitStatus>) {
    let status = run.unwrap_or_else(|error| {
        panic!("this test needs SIPp (`apt-get install sip-tester`, or run scripts/test): {error}")
    });
    if !status.success() {
        panic!("sipp {what} failed ({status}):\n{}", sipp_log(dir, "errors.log"));
    }
}

/// The SIPp logs in `dir` whose names end with `suffix` (`errors.log`, `_messages.log`), one after
/// the other.
pub fn sipp_log(dir: &TempDir, suffix: &str) -> String {
    std::fs::read_dir(&dir.0)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(suffix))
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .collect()
}

/// The demo agent's desk phone: SIPp registers as `agent` (MD5: start loket with
/// `LOKET_SIP_DIGEST_ALGORITHMS=MD5`, SIPp 3.6 knows no other), then answers one call on the same
/// port with `agent-phone.xml`, echoing its audio, until loket hangs it up.
pub fn agent_phone(loket: &Loket) -> (Child, TempDir) {
    phone_of(loket, "agent")
}

/// The desk phone of the demo user `username`, as `agent_phone`.
pub fn phone_of(loket: &Loket, username: &str) -> (Child, TempDir) {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|socket| socket.local_addr()).expect("a free port");
    let port = port.port().to_string();
    let register_dir = TempDir::new();
    let password = loket.sip_password(username);
    let register = ["-s", username, "-au", username, "-ap", password, "-key", "domain", "loket.invalid"];
    let run = sipp(&register_dir, "register-auth.xml", &register)
        .args(["-auth_uri", "loket.invalid", "-p", &port, &loket.sip_udp])
        .status();
    check_sipp(&register_dir, "register-auth.xml", run);
    let dir = TempDir::new();
    let phone = sipp(&dir, "agent-phone.xml", &["-p", &port, "-timeout", "150s", "-rtp_echo"]).spawn();
    (phone.unwrap_or_else(|error| panic!("this test needs SIPp (`apt-get install sip-tester`): {error}")), dir)
}

/// The citizen's voice in the call tests, in Hz: a tone, told apart from the agents' and the
/// supervisors' test tones.
pub const CITIZEN_TONE: f64 = 450.0;

/// A citizen who calls the demo number, keys in `digits` after the welcome, then talks (a tone
/// of `CITIZEN_TONE` in A-law) and stays on the line until loket hangs up
/// (`ivr-caller-until-bye.xml`).
pub fn ivr_caller(loket: &Loket, digits: &str) -> (Child, TempDir) {
    ivr_caller_playing(loket, "ivr-caller-until-bye.xml", digits)
}

/// A citizen as [`ivr_caller`] who plays `scenario` (`voice.pcma`, the tone, is in its folder).
pub fn ivr_caller_playing(loket: &Loket, scenario: &str, digits: &str) -> (Child, TempDir) {
    let dir = TempDir::new();
    // A second of the tone, a whole number of periods, so that it loops without a click.
    let voice: Vec<u8> = (0..8_000)
        .map(|n| {
            let phase = 2.0 * std::f64::consts::PI * CITIZEN_TONE * f64::from(n) / 8_000.0;
            loket_media::g711::alaw_encode((8_000.0 * phase.sin()) as i16)
        })
        .collect();
    std::fs::write(dir.0.join("voice.pcma"), voice).expect("write voice.pcma");
    let args = ["-key", "digits", digits, "-s", "+3225550100", "-p", "0", "-timeout", "150s"];
    let caller = sipp(&dir, scenario, &args).arg(&loket.sip_udp).spawn();
    (caller.unwrap_or_else(|error| panic!("this test needs SIPp (`apt-get install sip-tester`): {error}")), dir)
}

/// Waits for a SIPp process started with `spawn`, without holding up the async runtime.
pub async fn finish_sipp(what: &str, run: (Child, TempDir)) {
    finished_sipp(what, run).await;
}

/// [`finish_sipp`], keeping SIPp's directory for the logs it wrote there (`-trace_msg`).
pub async fn finished_sipp(what: &str, (child, dir): (Child, TempDir)) -> TempDir {
    let run = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await
    .expect("waiting for sipp");
    check_sipp(&dir, what, run);
    dir
}

/// baresip registered as the desk phone of a demo user, answering automatically; no sound
/// devices (aubridge passes audio between its own source and player). Killed with the test.
pub struct Baresip {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    _dir: TempDir,
}

impl Baresip {
    /// Starts baresip as `username`'s phone and waits until loket accepted its registration.
    pub fn register(loket: &Loket, username: &str) -> Baresip {
        // baresip's SIP listens on UDP and TCP at the same port: both must be free.
        let free_port = || loop {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|socket| socket.local_addr());
            let port = udp.expect("a free port").port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        };
        let dir = TempDir::new();
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
            "<sip:{username}@loket.invalid>;auth_pass={};outbound=\"sip:{}\";regint=300;answermode=auto;\
             audio_codecs=PCMU,PCMA\n",
            loket.sip_password(username),
            loket.sip_udp
        );
        std::fs::write(dir.0.join("accounts"), account).expect("baresip accounts");
        let mut child = Command::new("baresip")
            .args(["-f", &dir.0.to_string_lossy(), "-v"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("this test needs baresip (`apt-get install baresip`, or run scripts/test): {error}")
            });
        let lines = lines_of(child.stdout.take().expect("baresip stdout"));
        let mut baresip = Baresip { child, lines, seen: Vec::new(), _dir: dir };
        let account = format!("{username}@loket.invalid");
        baresip.wait_for("its registration", |line| line.contains(&account) && line.contains("200 OK"));
        baresip
    }

    /// Waits, with a deadline, until baresip prints a line that `matches`; blocks the thread.
    pub fn wait_for(&mut self, what: &str, matches: impl Fn(&str) -> bool) {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = matches(&line);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!("baresip did not report {what} within the deadline:\n{}", self.seen.join("\n")),
            }
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
