//! A SIP trunk for the end-to-end tests: SIPp plays it (`tests/sipp/trunk-*.xml`), reached as
//! loket's outbound proxy, and [`Voice`] is the audio of the party behind it.

use std::net::SocketAddr;
use std::process::Child;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;

use super::TempDir;

/// The voice of the callee behind the trunk, told apart from the citizen's.
pub const TRUNK_TONE: f64 = 1_000.0;

/// `[sip.trunk]`: the trunk `pbx.test` behind the outbound proxy at `proxy`, where SIPp plays it.
pub fn trunk_config(proxy: u16, password: &str) -> String {
    format!(
        "[sip.trunk]\nhost = \"pbx.test\"\nusername = \"loket\"\npassword = \"{password}\"\n\
         caller_id = \"+3225550100\"\noutbound_proxy = \"127.0.0.1:{proxy}\"\n"
    )
}

pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|socket| socket.local_addr()).expect("a free port").port()
}

pub fn spawned(what: &str, run: std::io::Result<Child>, dir: TempDir) -> (Child, TempDir) {
    let child =
        run.unwrap_or_else(|error| panic!("this test needs SIPp (`apt-get install sip-tester`) for {what}: {error}"));
    (child, dir)
}

/// SIPp as the trunk on `port` (`trunk-uas.xml`), whose callee talks at `rtp_port`; it knows
/// loket's credentials.
pub fn trunk(port: u16, rtp_port: u16) -> (Child, TempDir) {
    trunk_playing("trunk-uas.xml", port, rtp_port)
}

/// SIPp as the trunk on `port`, playing `scenario`, as [`trunk`].
pub fn trunk_playing(scenario: &str, port: u16, rtp_port: u16) -> (Child, TempDir) {
    let dir = TempDir::new();
    let (port, rtp_port) = (port.to_string(), rtp_port.to_string());
    let args = ["-p", &port, "-key", "user", "loket", "-key", "password", "s3cret", "-key", "rtp_port", &rtp_port];
    let run = super::sipp(&dir, scenario, &args).args(["-timeout", "150s", "-trace_msg"]).spawn();
    spawned(scenario, run, dir)
}

/// The messages of SIPp's `-trace_msg` log in `dir`, in order: whether SIPp sent it, and its
/// first line.
pub fn sipp_messages(dir: &TempDir) -> Vec<(bool, String)> {
    let log = super::sipp_log(dir, "_messages.log");
    let lines: Vec<&str> = log.lines().collect();
    let first_line = |index: usize| lines.get(index + 2).map(|line| line.trim().to_owned());
    lines
        .iter()
        .enumerate()
        .filter_map(|(index, line)| match line {
            _ if line.starts_with("UDP message sent") => Some((true, first_line(index)?)),
            _ if line.starts_with("UDP message received") => Some((false, first_line(index)?)),
            _ => None,
        })
        .collect()
}

/// Whether SIPp sent (`sent`) or received a message whose first line starts with `start`.
pub fn has(messages: &[(bool, String)], sent: bool, start: &str) -> bool {
    messages.iter().any(|(was_sent, line)| *was_sent == sent && line.starts_with(start))
}

/// Audio heard, decoded, with the time each packet arrived.
type Heard = Arc<Mutex<Vec<(Instant, Vec<i16>)>>>;
/// The RFC 4733 digits heard, once each.
type Keyed = Arc<Mutex<String>>;

/// One side's audio, played and heard by the test: a tone in A-law every 20 ms, sent to whoever
/// sent it RTP first (loket, whose sessions answer with symmetric RTP), and what it hears,
/// decoded, with the time it arrived, and the telephone-events (RFC 4733) it gets.
pub struct Voice {
    pub port: u16,
    heard: Heard,
    keyed: Keyed,
    task: tokio::task::JoinHandle<()>,
}

impl Voice {
    pub async fn start(tone: f64) -> Voice {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("an RTP port");
        let port = socket.local_addr().expect("its address").port();
        let (heard, keyed) = (Arc::default(), Arc::default());
        let task = tokio::spawn(talk(socket, tone, Arc::clone(&heard), Arc::clone(&keyed)));
        Voice { port, heard, keyed, task }
    }

    /// The digits received as telephone-events, in order.
    pub fn keyed(&self) -> String {
        self.keyed.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// When the first audio arrived.
    pub fn first_heard(&self) -> Option<Instant> {
        self.heard.lock().unwrap_or_else(PoisonError::into_inner).first().map(|(at, _)| *at)
    }

    /// The tenths of a second of audio heard since `since` in which `tone` sounds.
    pub fn tenths_with(&self, tone: f64, since: Instant) -> usize {
        let heard = self.heard.lock().unwrap_or_else(PoisonError::into_inner);
        let samples: Vec<i16> =
            heard.iter().filter(|(at, _)| *at >= since).flat_map(|(_, samples)| samples.iter().copied()).collect();
        samples.chunks_exact(800).filter(|tenth| loket_media::tone::amplitude(tenth, tone) > 2_000.0).count()
    }
}

impl Drop for Voice {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn talk(socket: UdpSocket, tone: f64, heard: Heard, keyed: Keyed) {
    let mut peer: Option<SocketAddr> = None;
    // The RTP timestamp of the last event whose end was seen: its repeated end packets are one key.
    let mut ended: Option<u32> = None;
    let mut every = tokio::time::interval(Duration::from_millis(20));
    let (mut sequence, mut timestamp) = (0u16, 0u32);
    let mut buffer = [0u8; 2_048];
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buffer) => {
                let Ok((len, from)) = received else { return };
                peer.get_or_insert(from);
                // RTP version 2, its CSRCs skipped; PCMU (0) or PCMA (8).
                let packet = &buffer[..len];
                let start = 12 + 4 * usize::from(packet.first().copied().unwrap_or_default() & 0x0f);
                if len <= start || packet[0] >> 6 != 2 {
                    continue;
                }
                let samples: Vec<i16> = match packet[1] & 0x7f {
                    0 => packet[start..].iter().map(|&code| loket_media::g711::ulaw_decode(code)).collect(),
                    8 => packet[start..].iter().map(|&code| loket_media::g711::alaw_decode(code)).collect(),
                    // telephone-event, as the trunk scenarios answer: event, end bit, volume, duration.
                    101 if len >= start + 4 && packet[start + 1] & 0x80 != 0 => {
                        let timestamp = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
                        let digit = loket_media::dtmf::Digit::from_event_code(packet[start]);
                        if let Some(digit) = digit.filter(|_| ended != Some(timestamp)) {
                            ended = Some(timestamp);
                            keyed.lock().unwrap_or_else(PoisonError::into_inner).push(digit.as_char());
                        }
                        continue;
                    }
                    _ => continue,
                };
                heard.lock().unwrap_or_else(PoisonError::into_inner).push((Instant::now(), samples));
            }
            _ = every.tick() => {
                let Some(peer) = peer else { continue };
                let mut packet = vec![0x80, 8];
                packet.extend_from_slice(&sequence.to_be_bytes());
                packet.extend_from_slice(&timestamp.to_be_bytes());
                packet.extend_from_slice(&0x7e57_u32.to_be_bytes());
                packet.extend((0..160u32).map(|n| {
                    let phase = 2.0 * std::f64::consts::PI * tone * f64::from(timestamp.wrapping_add(n)) / 8_000.0;
                    loket_media::g711::alaw_encode((8_000.0 * phase.sin()) as i16)
                }));
                // A lost packet is a gap in the tone, which the measure allows for.
                let _ = socket.send_to(&packet, peer).await;
                sequence = sequence.wrapping_add(1);
                timestamp = timestamp.wrapping_add(160);
            }
        }
    }
}
