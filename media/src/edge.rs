//! The UDP edge around the sans-IO core: RTP sessions on a port range, for the SIP layer to drive.
//!
//! `MediaEngine::allocate` binds an RTP/RTCP port pair and starts the session's task; the SIP layer
//! puts `Session::sdp_address` in its SDP, passes the negotiated remote with `set_remote`, and
//! reads `SessionEvent`s (digits, media timeout, playback ends). Prompts and music are played with
//! `play` and `hold`, and `send_digit` keys DTMF to the far end (telephone-events, or tones when
//! it takes none); `bridge` relays two sessions to each other; `start_recording` records the leg
//! to a stereo WAV file (channel 1 what the leg sends, channel 2 what it is sent). A `Conference`
//! mixes three or more sessions on a 20 ms clock, each hearing whom the coaching mode says
//! (`conference`); `WebRtcLeg` puts a browser in front of a session (`webrtc`).
//!
//! **Task model: one Tokio task per session.** The task owns the session's receive path, its
//! timers (playback frames, digits sent, RTCP, media timeout, DTMF end) and its core state (latch,
//! reception statistics, DTMF receivers and sender, player). A bridged packet is forwarded by the
//! task that received it, straight into the peer's socket: one wake-up and two system calls per
//! relayed packet, no channel hop. What both tasks touch — the peer's socket, its send target and
//! its outgoing SSRC/sequence line — sits behind a `std` mutex held for one rewrite and one
//! non-blocking send. Shard tasks owning many sockets would have to poll every socket on each
//! wake-up or add a readiness layer of their own; Tokio already is that layer, and an idle session
//! costs only its task's memory.
//!
//! Bridged peers hold each other weakly, so closing one session releases its ports at once; the
//! other notices on its next packet and stops forwarding.
//!
//! **Recording** (`recorder`) happens where the audio passes: the session's task adds what the leg
//! sends, and whoever sends to the leg (its own task for prompts, the bridged peer's task for the
//! relayed voice) adds what it sends, into a `recording::Aligner` behind a mutex of its own, held
//! for one packet's decoding. The file is written by a writer task, off the packet path.

mod conference;
mod ports;
mod recorder;
mod session;
mod webrtc;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::dtmf::Digit;
use crate::latch::LatchConfig;
use crate::playback::Prompt;
use crate::recording::{Audio, Direction};
use crate::rtcp::ReportBlock;
pub use conference::Conference;
use ports::{BindFailure, PortLease, PortPool};
use recorder::{Recorder, WavFile};
use session::{Command, Outbound};
pub use webrtc::{WebRtcError, WebRtcLeg};

/// The media engine's settings; the binary's `[media]` section maps onto these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// The address RTP sockets bind to.
    pub bind: IpAddr,
    /// The address to put in SDP when `bind` is unspecified (0.0.0.0) or behind a 1:1 NAT.
    pub advertise: Option<IpAddr>,
    /// The port range; RTP takes the even ports, RTCP the odd one above each.
    pub port_min: u16,
    pub port_max: u16,
    /// A session that receives no RTP or RTCP for this long reports `SessionEvent::MediaTimeout`.
    pub media_timeout: Duration,
    /// The mean interval between RTCP reports; each is drawn from 0.5–1.5 times this
    /// (RFC 3550 §6.3.1), so that sessions started together do not report together.
    pub rtcp_interval: Duration,
    pub latch: LatchConfig,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            advertise: None,
            port_min: 16384,
            port_max: 32767,
            media_timeout: Duration::from_secs(30),
            rtcp_interval: Duration::from_secs(5),
            latch: LatchConfig::default(),
        }
    }
}

/// Why the engine cannot start with a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("the media port range {min}–{max} holds no even port with its odd neighbour")]
    EmptyPortRange { min: u16, max: u16 },
    #[error("media sockets bind to {0}, which cannot go in SDP: configure the address to advertise")]
    NoAdvertisedAddress(IpAddr),
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("every media port pair is in use ({0} pairs)")]
    PortsExhausted(usize),
    #[error("cannot bind a media socket: {0}")]
    Bind(#[source] std::io::Error),
    #[error("the session has ended")]
    Closed,
    #[error("the session is being recorded already")]
    AlreadyRecording,
    #[error("the conference is full")]
    ConferenceFull,
    /// `send_digit` before `set_remote`: there is nowhere to send the digit yet.
    #[error("the session has no remote yet")]
    NoRemote,
    #[error("{0} digits are waiting to be sent already")]
    TooManyDigits(usize),
    /// The recording file could not be created or written; a failed recording leaves no file.
    #[error("recording to {path}: {source}")]
    Recording {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A finished recording: a stereo WAV file, 8 kHz, 16-bit, channel 1 what the leg sent, channel 2
/// what it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    pub path: PathBuf,
    /// From `start_recording` to the end: the file's length.
    pub duration: Duration,
    /// The file's size, header included.
    pub bytes: u64,
    /// Audio lost because the disk did not keep up (more than 2 s of audio waiting for it); the
    /// file holds silence in its place, so its timeline stays the call's.
    pub dropped: Duration,
    /// Packets that came too late for their place (more than `recording::DELAY` after the
    /// stream's earliest arrivals), in either direction.
    pub late_packets: u64,
}

/// The audio codecs a leg can negotiate: G.711, with their static payload types (RFC 3551).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
}

/// The far end of a session, from the negotiated SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteParams {
    /// The `c=` address and `m=` port.
    pub rtp: SocketAddr,
    /// `a=rtcp` when present; otherwise RTCP goes to the RTP port + 1 (or the RTP port with mux).
    pub rtcp: Option<SocketAddr>,
    /// `a=rtcp-mux` was agreed: RTCP shares the RTP port (RFC 5761).
    pub rtcp_mux: bool,
    pub codec: Codec,
    /// The dynamic payload type of telephone-event/8000, when negotiated.
    pub telephone_event: Option<u8>,
    /// Detect DTMF tones in the audio: for trunks that send no telephone-events. It costs 1–2 µs
    /// per 20 ms frame, so it is off unless asked for.
    pub inband_dtmf: bool,
}

/// How a prompt is played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlayOptions {
    /// Start over at the end (music on hold).
    pub looping: bool,
    /// A digit from this leg stops the playback.
    pub barge_in: bool,
}

/// How a digit arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    Rfc4733,
    Inband,
}

/// What a session reports to the SIP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent {
    /// A key was pressed; reported when it goes down, so that a prompt stops at once.
    Digit { digit: Digit, source: DigitSource },
    /// Media is now sent to this address: the leg's packets come from there (symmetric RTP).
    Latched(SocketAddr),
    /// No RTP or RTCP for `MediaConfig::media_timeout`: the call should end. Reported once; again
    /// only if media comes back and stops once more.
    MediaTimeout,
    /// The playback played to its end.
    PlaybackFinished,
    /// The playback was cut short: barge-in, another `play`, or `stop_playback`.
    PlaybackStopped,
}

/// A snapshot of a session's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStats {
    pub received_packets: u64,
    pub received_octets: u64,
    pub sent_packets: u64,
    pub sent_octets: u64,
    /// Datagrams that were neither RTP nor RTCP.
    pub malformed: u64,
    /// Packets from an address the leg is not latched to.
    pub foreign: u64,
    /// RTP with a payload type that was not negotiated.
    pub unexpected_payload: u64,
    pub send_errors: u64,
    /// Events the SIP layer did not read in time (the queue holds `EVENT_QUEUE`).
    pub events_dropped: u64,
    /// What the far end said about our stream in its last RTCP report.
    pub remote_report: Option<ReportBlock>,
    /// The round-trip time that report implies.
    pub round_trip: Option<Duration>,
}

/// Events waiting for the SIP layer; beyond this a session drops events rather than grow.
pub const EVENT_QUEUE: usize = 64;

/// The RTP sessions of one process, over one port range.
#[derive(Debug, Clone)]
pub struct MediaEngine {
    config: Arc<MediaConfig>,
    pool: Arc<PortPool>,
    sdp_ip: IpAddr,
    pace: Arc<Pace>,
}

/// How punctually the sessions' prompt frames go out, summed over the engine: whether the
/// machine keeps up with its calls. Sessions add their counts in batches (`session::PaceCount`).
#[derive(Debug, Default)]
struct Pace {
    ticks: AtomicU64,
    late: AtomicU64,
}

/// Prompt-frame ticks since the engine started, and those that woke so late that frames were
/// skipped (`session::LATE_TICK`). Two readings a while apart give the share of late ticks meanwhile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaceReading {
    pub ticks: u64,
    pub late: u64,
}

impl MediaEngine {
    pub fn new(config: MediaConfig) -> Result<MediaEngine, EngineError> {
        let pool = PortPool::new(config.port_min, config.port_max);
        if pool.total() == 0 {
            return Err(EngineError::EmptyPortRange { min: config.port_min, max: config.port_max });
        }
        let sdp_ip = match config.advertise {
            Some(ip) => ip,
            None if config.bind.is_unspecified() => return Err(EngineError::NoAdvertisedAddress(config.bind)),
            None => config.bind,
        };
        Ok(MediaEngine { config: Arc::new(config), pool, sdp_ip, pace: Arc::default() })
    }

    /// The prompt-frame ticks of every session so far; a session reports its own every second
    /// of playing and when it ends.
    pub fn pace(&self) -> PaceReading {
        PaceReading { ticks: self.pace.ticks.load(Ordering::Relaxed), late: self.pace.late.load(Ordering::Relaxed) }
    }

    /// Binds a port pair and starts its session. Must be called within a Tokio runtime.
    pub fn allocate(&self) -> Result<Session, SessionError> {
        let (rtp, rtcp, lease) = self.bind_pair()?;
        let port = lease.port();
        let leg = Arc::new(Leg {
            rtp,
            rtcp,
            outbound: Mutex::new(Outbound::new()),
            counters: Counters::default(),
            recording: AtomicBool::new(false),
            recorder: Mutex::new(None),
            _lease: lease,
        });
        let (command_sender, command_receiver) = mpsc::channel(16);
        let (event_sender, event_receiver) = mpsc::channel(EVENT_QUEUE);
        let task = tokio::spawn(session::run(
            Arc::clone(&leg),
            Arc::clone(&self.config),
            Arc::clone(&self.pace),
            command_receiver,
            event_sender,
        ));
        Ok(Session {
            sdp_address: SocketAddr::new(self.sdp_ip, port),
            leg,
            commands: command_sender,
            events: event_receiver,
            task,
        })
    }

    /// An RTP/RTCP port pair from the range, as Tokio sockets.
    fn bind_pair(&self) -> Result<(UdpSocket, UdpSocket, PortLease), SessionError> {
        let (rtp, rtcp, lease) = self.pool.bind(self.config.bind).map_err(|failure| match failure {
            BindFailure::Exhausted => SessionError::PortsExhausted(self.pool.total()),
            BindFailure::Io(error) => SessionError::Bind(error),
        })?;
        let tokio_socket = |socket: std::net::UdpSocket| {
            socket.set_nonblocking(true)?;
            UdpSocket::from_std(socket)
        };
        Ok((tokio_socket(rtp).map_err(SessionError::Bind)?, tokio_socket(rtcp).map_err(SessionError::Bind)?, lease))
    }

    /// Port pairs not held by a session.
    pub fn free_port_pairs(&self) -> usize {
        self.pool.free()
    }
}

/// One RTP session: the SIP layer's handle. Dropping it ends the session; `close` also waits
/// for the ports to be released.
#[derive(Debug)]
pub struct Session {
    sdp_address: SocketAddr,
    leg: Arc<Leg>,
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<SessionEvent>,
    task: JoinHandle<()>,
}

impl Session {
    /// The address for the `c=` line and the port for the `m=` line (RTCP is on the port + 1).
    pub fn sdp_address(&self) -> SocketAddr {
        self.sdp_address
    }

    /// The far end from the negotiated SDP; again after a re-INVITE.
    pub async fn set_remote(&self, remote: RemoteParams) -> Result<(), SessionError> {
        self.command(Command::SetRemote(remote)).await
    }

    /// Plays prompts back to back to this leg, replacing any playback in progress. While it
    /// plays, a bridged peer's audio does not reach this leg.
    pub async fn play(&self, playlist: Vec<Prompt>, options: PlayOptions) -> Result<(), SessionError> {
        self.command(Command::Play { playlist, options }).await
    }

    /// Stops what plays, a hold's music included (it does not come back; the leg stays held).
    pub async fn stop_playback(&self) -> Result<(), SessionError> {
        self.command(Command::StopPlayback).await
    }

    /// Puts the leg on hold: it hears `music` in a loop, and its own audio no longer reaches a
    /// bridged peer, a conference or the recording. A prompt played during the hold replaces the
    /// music, which comes back when the prompt ends.
    pub async fn hold(&self, music: Prompt) -> Result<(), SessionError> {
        self.command(Command::Hold(music)).await
    }

    /// Takes the leg off hold: the music stops (a prompt in progress plays on) and the bridge
    /// carries audio both ways again.
    pub async fn resume(&self) -> Result<(), SessionError> {
        self.command(Command::Resume).await
    }

    /// Keys `digit` to the far end: as RFC 4733 telephone-events (100 ms, volume 10) when it
    /// negotiated them, otherwise as the digit's two tones in its audio (100 ms at −10 dBm0
    /// each). Each digit takes 160 ms of the leg's line, a pause included; meanwhile the bridged
    /// peer, a conference and prompts do not reach the leg (a prompt goes on in time and is heard
    /// again after). Digits go out one after another, in the order sent. Returns once the digit
    /// is queued; refused before `set_remote` (`NoRemote`) and when 32 digits wait already.
    pub async fn send_digit(&self, digit: Digit) -> Result<(), SessionError> {
        let (reply, replied) = oneshot::channel();
        self.command(Command::SendDigit { digit, reply }).await?;
        replied.await.map_err(|_| SessionError::Closed)?
    }

    /// Relays this session's media to `other` and back, transcoding when the codecs differ. When
    /// `other` has ended, this session relays to nobody rather than to a leg nobody reads.
    pub async fn bridge(&self, other: &Session) -> Result<(), SessionError> {
        self.command(Command::Bridge(Arc::downgrade(&other.leg))).await?;
        let bridged = other.command(Command::Bridge(Arc::downgrade(&self.leg))).await;
        if bridged.is_err() {
            // Best effort: should this session have ended meanwhile, there is nothing to undo.
            let _ = self.command(Command::Unbridge).await;
        }
        bridged
    }

    /// Ends the relay between this session and `other`.
    pub async fn unbridge(&self, other: &Session) -> Result<(), SessionError> {
        self.command(Command::Unbridge).await?;
        other.command(Command::Unbridge).await
    }

    /// Starts recording this leg to `path`: a WAV file, 8 kHz 16-bit stereo, channel 1 what the
    /// leg sends to loket, channel 2 what loket sends to it (prompts, music, the bridged peer).
    /// The file is written as `<path>.part` and gets its name when the recording ends
    /// (`stop_recording`, `close`, or the session being dropped). Refused when `path` or its
    /// `.part` exists, or when a recording is in progress.
    pub async fn start_recording(&self, path: PathBuf) -> Result<(), SessionError> {
        let file = WavFile::create(path).await?;
        let (reply, replied) = oneshot::channel();
        // Should the session have ended, the file goes with the command, and is removed.
        self.command(Command::StartRecording { file, reply }).await?;
        match replied.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_file)) => Err(SessionError::AlreadyRecording),
            Err(_) => Err(SessionError::Closed),
        }
    }

    /// Ends the recording and waits until the file is complete under its name; `None` when
    /// nothing was being recorded. Should this future be dropped, the file is finished all the
    /// same. To attach the file to a case, call this before `close`, which would finish it too
    /// but without a summary.
    pub async fn stop_recording(&self) -> Result<Option<RecordingSummary>, SessionError> {
        let (reply, replied) = oneshot::channel();
        self.command(Command::StopRecording { reply }).await?;
        let Some((path, writer)) = replied.await.map_err(|_| SessionError::Closed)? else { return Ok(None) };
        match writer.await {
            Ok(result) => result.map(Some),
            Err(join) => Err(SessionError::Recording { path, source: std::io::Error::other(join) }),
        }
    }

    /// The next event; `None` once the session's task has ended.
    pub async fn next_event(&mut self) -> Option<SessionEvent> {
        self.events.recv().await
    }

    pub fn stats(&self) -> SessionStats {
        let counters = &self.leg.counters;
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let outbound = self.leg.lock_outbound();
        SessionStats {
            received_packets: read(&counters.received_packets),
            received_octets: read(&counters.received_octets),
            sent_packets: read(&counters.sent_packets),
            sent_octets: read(&counters.sent_octets),
            malformed: read(&counters.malformed),
            foreign: read(&counters.foreign),
            unexpected_payload: read(&counters.unexpected_payload),
            send_errors: read(&counters.send_errors),
            events_dropped: read(&counters.events_dropped),
            remote_report: outbound.remote_report,
            round_trip: outbound.round_trip,
        }
    }

    /// Ends the session and waits until its task has stopped, so that its ports are free unless a
    /// bridged peer is forwarding a packet this very moment, and a recording in progress is
    /// complete under its name.
    pub async fn close(self) {
        let Session { leg, commands, task, .. } = self;
        drop((leg, commands));
        // The task ends when its command channel closes; a panic in it has been reported already.
        let _ = task.await;
    }

    async fn command(&self, command: Command) -> Result<(), SessionError> {
        self.commands.send(command).await.map_err(|_| SessionError::Closed)
    }
}

/// What a session's task shares with its handle and with a bridged peer's task.
#[derive(Debug)]
struct Leg {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    outbound: Mutex<Outbound>,
    counters: Counters,
    /// A recorder is in `recorder`: the packet paths look here before taking its lock.
    recording: AtomicBool,
    /// Never locked while `outbound` is, nor the other way round.
    recorder: Mutex<Option<Recorder>>,
    /// Declared last, so dropped last: the sockets close before the ports go back to the pool.
    _lease: PortLease,
}

impl Leg {
    fn lock_outbound(&self) -> std::sync::MutexGuard<'_, Outbound> {
        // Outbound holds counters and the rewriter, each consistent between statements; a panic
        // while sending loses at most that packet.
        self.outbound.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_recorder(&self) -> std::sync::MutexGuard<'_, Option<Recorder>> {
        // A panic while recording leaves at most one packet half written into the timeline.
        self.recorder.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Silences what the recording holds of `direction` from `lookback` before `now` on.
    fn mask_recording(&self, now: Instant, direction: Direction, lookback: Duration) {
        if let Some(recorder) = self.lock_recorder().as_mut() {
            recorder.silence(now, direction, lookback);
        }
    }

    /// Adds one packet's G.711 audio to the recording, if one is in progress.
    fn record(&self, now: Instant, direction: Direction, ssrc: u32, timestamp: u32, codec: Codec, payload: &[u8]) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let audio = match codec {
            Codec::Pcmu => Audio::Pcmu(payload),
            Codec::Pcma => Audio::Pcma(payload),
        };
        if let Some(recorder) = self.lock_recorder().as_mut() {
            recorder.push(now, direction, ssrc, timestamp, audio);
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    received_packets: AtomicU64,
    received_octets: AtomicU64,
    sent_packets: AtomicU64,
    sent_octets: AtomicU64,
    malformed: AtomicU64,
    foreign: AtomicU64,
    unexpected_payload: AtomicU64,
    send_errors: AtomicU64,
    events_dropped: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }
}
