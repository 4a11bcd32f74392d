//! The task of one session: its receive path, its timers and its core state.
//!
//! The loop waits on four things: a command from the handle, a readable RTP socket, a readable
//! RTCP socket, and the earliest deadline the core state asks for (the next prompt frame, the next
//! packet or frame of a digit being sent, the next RTCP report, the media timeout, the end of a
//! DTMF event whose end packets were lost), and while recording, a tick that writes out the
//! recording's timeline. Every media deadline comes from the core, computed from a start instant,
//! so a late wake-up never shifts the ones after it. While the session only plays to its leg, the
//! RTP socket is read at the frame tick instead (`Task::reads_on_tick`).
//!
//! When the loop ends (the handle closed or dropped), a recording in progress is finished and the
//! task waits for its file before it ends.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::conference::Shared;
use super::recorder::{Recorder, WavFile, Writer};
use super::{
    Codec, Counters, DigitSource, Leg, MediaConfig, Pace, PlayOptions, RemoteParams, SessionError, SessionEvent,
};
use crate::dtmf::Digit;
use crate::dtmf::inband::{self, InbandDetector};
use crate::dtmf::rfc4733::{DigitSender, DtmfEvent, DtmfReceiver};
use crate::g711::{alaw_to_ulaw, decode_alaw, decode_ulaw, ulaw_to_alaw};
use crate::latch::{Latch, LatchVerdict};
use crate::mixer::ParticipantId;
use crate::playback::{FRAME_LEN, Frame, MAX_LATENESS, PlaybackEvent, Player, Prompt};
use crate::recording::Direction;
use crate::relay::{RelayRewriter, Rewrite};
use crate::rtcp::{
    NtpTime, ReceptionStats, ReportBlock, ReportBlocks, RtcpPacket, SenderInfo, is_rtcp, parse_compound, round_trip,
    write_report,
};
use crate::rtp::{HEADER_LEN, RtpHeader, RtpPacket};

/// G.711 and telephone-event/8000 tick at 8 kHz.
const CLOCK_RATE: u32 = 8000;
/// The largest datagram read or written: an Ethernet MTU. A longer one arrives truncated and is
/// then rejected by the RTP parser or forwarded cut, which no G.711 peer provokes.
const MAX_DATAGRAM: usize = 1500;
/// How long the task sleeps when nothing is due; any input wakes it earlier.
const IDLE_WAKE_UP: Duration = Duration::from_secs(3600);
/// Datagrams read per wake-up before the loop looks at its other inputs again.
const BATCH: usize = 32;
/// While recording, how often the timeline is written out when no packet does it: silence on both
/// sides leaves in pieces of this size rather than all at once.
const RECORDING_TICK: Duration = Duration::from_millis(250);
/// How far back a digit's tones are silenced in the recording once the detector reports it: its
/// first whole block starts up to `HOP` samples into the tone and four hits take 255 samples
/// more (38 ms in all), the packet that completes them may end 20 ms later, and the recording
/// may place the leg's audio up to its drift slack (30 ms) before its arrival. Within the
/// recording's delay (200 ms), so still in its ring.
const TONE_LOOKBACK: Duration = Duration::from_millis(100);
/// A prompt-frame tick that wakes later than this is counted late: the player skips the frames
/// it missed, and the caller hears a gap. Less lateness is what jitter buffers are for.
pub(super) const LATE_TICK: Duration = MAX_LATENESS;
/// Ticks a session counts before adding them to the engine's `Pace`: once a second of playing,
/// so that sessions on different threads rarely touch the shared counters.
const PACE_BATCH: u32 = 50;
/// How long a digit loket sends sounds: what phones send, well above the 40 ms detectors need.
const DIGIT_TONE: Duration = Duration::from_millis(100);
/// The time each digit sent takes on the leg: the tone, then a pause that holds the three RFC 4733
/// end packets (at 100, 120 and 140 ms) and separates a repeated digit in-band (detectors need
/// about 40 ms of silence). Eight whole frames, so that an in-band digit is a prompt of its own.
const DIGIT_SLOT: Duration = Duration::from_millis(160);
/// Digits waiting behind the one being sent, at most: five seconds of keying.
const DIGIT_QUEUE: usize = 32;
/// The volume field of the telephone-events sent, in −dBm0 (RFC 4733 §2.3.4): a phone's level.
const EVENT_VOLUME: u8 = 10;
/// The level of each of the two tones sent in-band, the same.
const TONE_LEVEL_DBM0: f32 = -10.0;

#[derive(Debug)]
pub(super) enum Command {
    SetRemote(RemoteParams),
    Play {
        playlist: Vec<Prompt>,
        options: PlayOptions,
    },
    StopPlayback,
    Hold(Prompt),
    Resume,
    Bridge(Weak<Leg>),
    Unbridge,
    // The file is handed back if a recording is in progress already.
    StartRecording {
        file: WavFile,
        reply: oneshot::Sender<Result<(), WavFile>>,
    },
    StopRecording {
        reply: oneshot::Sender<Option<(PathBuf, Writer)>>,
    },
    /// Into a conference as this participant (its audio goes to the mixer), or out of it.
    Conference(Option<(Arc<Shared>, ParticipantId)>),
    /// Refused without a remote, or with a full queue.
    SendDigit {
        digit: Digit,
        reply: oneshot::Sender<Result<(), SessionError>>,
    },
}

/// What everyone who sends to a leg shares: where its media goes, its codec, and the one SSRC,
/// sequence and timestamp line it hears, whether the packets come from the bridged peer or from
/// a prompt.
#[derive(Debug)]
pub(super) struct Outbound {
    target: Option<SocketAddr>,
    codec: Codec,
    telephone_event: Option<u8>,
    ssrc: u32,
    rewriter: RelayRewriter,
    /// A prompt or music is playing to this leg, in place of the bridged peer's audio.
    playing: bool,
    /// A digit is being sent to this leg: nothing else reaches it meanwhile.
    digit: bool,
    /// The SR's counts; they wrap modulo 2^32 as RFC 3550 §6.4.1 allows.
    packets: u32,
    octets: u32,
    last_timestamp: u32,
    last_sent: Option<Instant>,
    sent_since_report: bool,
    pub(super) remote_report: Option<ReportBlock>,
    pub(super) round_trip: Option<Duration>,
}

impl Outbound {
    pub(super) fn new() -> Outbound {
        // RFC 3550 §5.1: the SSRC, the first sequence number and the first timestamp are random.
        let ssrc = rand::random();
        Outbound {
            target: None,
            codec: Codec::Pcmu,
            telephone_event: None,
            ssrc,
            rewriter: RelayRewriter::new(ssrc, rand::random(), rand::random(), CLOCK_RATE),
            playing: false,
            digit: false,
            packets: 0,
            octets: 0,
            last_timestamp: 0,
            last_sent: None,
            sent_since_report: false,
            remote_report: None,
            round_trip: None,
        }
    }

    /// The sender information for a report, if we sent since the last one: the RTP timestamp is
    /// the last one sent, moved on by the time since (RFC 3550 §6.4.1).
    fn take_sender_info(&mut self, now: Instant, ntp: NtpTime) -> Option<SenderInfo> {
        if !std::mem::take(&mut self.sent_since_report) {
            return None;
        }
        let elapsed = self.last_sent.map_or(Duration::ZERO, |sent| now.saturating_duration_since(sent));
        let ticks = (elapsed.as_micros() * u128::from(CLOCK_RATE) / 1_000_000) as u32;
        Some(SenderInfo {
            ntp,
            rtp_timestamp: self.last_timestamp.wrapping_add(ticks),
            packet_count: self.packets,
            octet_count: self.octets,
        })
    }
}

/// What a packet carries, which decides its payload type towards the other leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Payload {
    Audio(Codec),
    Event,
}

/// Who sends a packet to a leg, which decides who gives way to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// The bridged peer's relayed packets, or a conference's mix.
    Peer,
    /// A prompt or music.
    Player,
    /// A digit loket sends. RFC 4733 lets a sender go on with the audio during an event, but a
    /// far end that also listens for tones could then count the digit twice, and in-band the
    /// tones must not be mixed with speech: so nothing else reaches the leg meanwhile.
    Digit,
}

impl Leg {
    /// Sends `packet` to this leg on its outgoing line: rewritten, with this leg's payload type,
    /// transcoded if its codec differs. A relayed packet gives way to a playing prompt, and both
    /// to a digit being sent. Nothing allocates; a send that would block is dropped, as a late
    /// packet would be worthless.
    pub(super) fn send(&self, now: Instant, packet: &RtpPacket<'_>, payload: Payload, origin: Origin) {
        let mut outbound = self.lock_outbound();
        let gives_way = match origin {
            Origin::Peer => outbound.playing || outbound.digit,
            Origin::Player => outbound.digit,
            Origin::Digit => false,
        };
        if gives_way {
            return;
        }
        let Some(target) = outbound.target else { return };
        let payload_type = match payload {
            Payload::Audio(_) => outbound.codec.payload_type(),
            Payload::Event => match outbound.telephone_event {
                Some(payload_type) => payload_type,
                // The leg negotiated no telephone-event: it cannot receive the digit this way.
                None => return,
            },
        };
        let Rewrite::Forward(mut header) = outbound.rewriter.rewrite(now, packet) else { return };
        header.payload_type = payload_type;
        let mut transcoded = [0u8; MAX_DATAGRAM];
        let transcoded_length = match (payload, outbound.codec) {
            (Payload::Audio(Codec::Pcmu), Codec::Pcma) => ulaw_to_alaw(packet.payload, &mut transcoded),
            (Payload::Audio(Codec::Pcma), Codec::Pcmu) => alaw_to_ulaw(packet.payload, &mut transcoded),
            _ => None,
        };
        let body = transcoded_length.map_or(packet.payload, |length| &transcoded[..length]);
        let mut datagram = [0u8; MAX_DATAGRAM];
        // The payload came in a datagram of at most MAX_DATAGRAM bytes with a header of at least
        // HEADER_LEN, so it fits; a failure would only drop this packet.
        let Ok(length) = header.write(body, &mut datagram) else { return };
        match self.rtp.try_send_to(&datagram[..length], target) {
            Ok(_) => {
                Counters::add(&self.counters.sent_packets, 1);
                Counters::add(&self.counters.sent_octets, body.len() as u64);
                outbound.packets = outbound.packets.wrapping_add(1);
                outbound.octets = outbound.octets.wrapping_add(body.len() as u32);
                outbound.last_timestamp = header.timestamp;
                outbound.last_sent = Some(now);
                outbound.sent_since_report = true;
            }
            Err(_) => Counters::add(&self.counters.send_errors, 1),
        }
        if payload != Payload::Event {
            // What the leg was sent, on its own line: the rewritten timestamp is continuous across
            // the peer, prompts and music. Recorded after the lock is released.
            let codec = outbound.codec;
            drop(outbound);
            self.record(now, Direction::ToLeg, header.ssrc, header.timestamp, codec, body);
        }
    }

    /// Sends a player's frame (a prompt's, or an in-band digit's) as a packet of the source
    /// `ssrc`, through the leg's rewriter like a relayed packet.
    fn send_frame(&self, now: Instant, ssrc: u32, frame: Frame<'_>, origin: Origin) {
        let header = RtpHeader {
            marker: frame.marker,
            payload_type: Codec::Pcmu.payload_type(),
            sequence: frame.index as u16,
            timestamp: (frame.index as u32).wrapping_mul(FRAME_LEN as u32),
            ssrc,
        };
        let mut datagram = [0u8; HEADER_LEN + FRAME_LEN];
        // Frames are FRAME_LEN bytes, so the packet fits and parses back.
        let Ok(length) = header.write(frame.ulaw, &mut datagram) else { return };
        let Ok(packet) = RtpPacket::parse(&datagram[..length]) else { return };
        self.send(now, &packet, Payload::Audio(Codec::Pcmu), origin);
    }
}

/// A playback in progress towards this leg.
struct Playing {
    player: Player,
    barge_in: bool,
    /// Each playback is a new source to the leg's rewriter, so that it re-anchors the line.
    ssrc: u32,
    /// This is the music of a hold, which `Resume` stops; any other prompt plays to its end.
    music: bool,
}

/// How hold music plays: in a loop, and a digit does not stop it.
const MUSIC: PlayOptions = PlayOptions { looping: true, barge_in: false };

/// A digit being sent to this leg, in its slot of `DIGIT_SLOT`.
struct SendingDigit {
    start: Instant,
    /// Each digit is a new source to the leg's rewriter, like a playback: the line re-anchors on
    /// it (the marker on its first packet) and on whatever follows it.
    ssrc: u32,
    signal: DigitSignal,
}

enum DigitSignal {
    /// RFC 4733 telephone-events; `sequence` numbers them for the rewriter.
    Events { sender: DigitSender, sequence: u16 },
    /// The tones in the audio, paced like a prompt.
    Tones(Player),
}

impl SendingDigit {
    fn new(digit: Digit, start: Instant, ssrc: u32, telephone_event: bool) -> SendingDigit {
        let signal = if telephone_event {
            DigitSignal::Events {
                sender: DigitSender::new(digit, DIGIT_TONE, EVENT_VOLUME, start, CLOCK_RATE),
                sequence: 0,
            }
        } else {
            DigitSignal::Tones(Player::new([inband_digit(digit)], false, start))
        };
        SendingDigit { start, ssrc, signal }
    }

    /// The next packet or frame; once all are sent, the end of the slot.
    fn next_deadline(&self) -> Instant {
        let next = match &self.signal {
            DigitSignal::Events { sender, .. } => sender.next_deadline(),
            DigitSignal::Tones(player) => player.next_deadline(),
        };
        next.unwrap_or(self.start + DIGIT_SLOT)
    }

    /// Sends the packets or frames due at `now`.
    fn send_due(&mut self, leg: &Leg, now: Instant) {
        match &mut self.signal {
            DigitSignal::Events { sender, sequence } => {
                while let Some(event) = sender.poll_packet(now) {
                    // All packets of an event carry the timestamp of its start (RFC 4733
                    // §2.5.1.2); the leg's payload type replaces this one.
                    let header = RtpHeader {
                        marker: event.marker,
                        payload_type: 0,
                        sequence: *sequence,
                        timestamp: 0,
                        ssrc: self.ssrc,
                    };
                    *sequence = sequence.wrapping_add(1);
                    let mut datagram = [0u8; HEADER_LEN + 4];
                    let Ok(length) = header.write(&event.event.to_bytes(), &mut datagram) else { return };
                    let Ok(packet) = RtpPacket::parse(&datagram[..length]) else { return };
                    // Handed over as of the event's start, the instant its timestamp stands for.
                    // The rewriter measures the time to the audio after the event from there, so
                    // that audio is stamped past the event's end (measured from the last end
                    // packet, it would land inside the event), and a sender report extrapolates
                    // the line's clock from there too.
                    leg.send(self.start, &packet, Payload::Event, Origin::Digit);
                }
            }
            DigitSignal::Tones(player) => {
                while let Some(frame) = player.poll_frame(now) {
                    leg.send_frame(now, self.ssrc, frame, Origin::Digit);
                }
            }
        }
    }
}

/// A digit's tones and the pause after them, as a prompt: generated once per process and shared,
/// like any prompt, and encoded (or transcoded to A-law) where a prompt is.
fn inband_digit(digit: Digit) -> Prompt {
    const TONE_SAMPLES: usize = DIGIT_TONE.as_millis() as usize * CLOCK_RATE as usize / 1000;
    const SLOT_SAMPLES: usize = DIGIT_SLOT.as_millis() as usize * CLOCK_RATE as usize / 1000;
    static PROMPTS: OnceLock<Vec<Prompt>> = OnceLock::new();
    let prompts = PROMPTS.get_or_init(|| {
        Digit::ALL
            .iter()
            .map(|&digit| {
                let mut samples = [0i16; SLOT_SAMPLES];
                inband::generate(digit, TONE_LEVEL_DBM0, &mut samples[..TONE_SAMPLES]);
                Prompt::from_pcm(&samples)
            })
            .collect()
    });
    prompts[usize::from(digit.event_code())].clone()
}

/// This session's prompt-frame ticks not yet added to the engine's `Pace`.
#[derive(Default)]
struct PaceCount {
    ticks: u32,
    late: u32,
}

impl PaceCount {
    fn flush(&mut self, pace: &Pace) {
        if self.ticks > 0 {
            pace.ticks.fetch_add(u64::from(self.ticks), Ordering::Relaxed);
            pace.late.fetch_add(u64::from(self.late), Ordering::Relaxed);
            *self = PaceCount::default();
        }
    }
}

struct Task {
    leg: Arc<Leg>,
    config: Arc<MediaConfig>,
    pace: Arc<Pace>,
    pace_count: PaceCount,
    events: mpsc::Sender<SessionEvent>,
    remote: Option<RemoteParams>,
    latch: Latch,
    /// Where RTCP came from, when not multiplexed: NATs map the RTCP port separately.
    rtcp_source: Option<SocketAddr>,
    stats: ReceptionStats,
    dtmf: DtmfReceiver,
    /// Listens for DTMF tones in the leg's audio while they are reported (the far end has no
    /// telephone-events) or recorded (they are kept out of the recording).
    inband: Option<InbandDetector>,
    report_inband: bool,
    peer: Option<Weak<Leg>>,
    /// The conference this leg's audio goes to, in place of a peer.
    conference: Option<(Arc<Shared>, ParticipantId)>,
    /// On hold: this leg's audio does not reach the peer, nor the recording.
    muted: bool,
    /// The music of the hold in progress: it comes back after a prompt played during the hold.
    hold_music: Option<Prompt>,
    playing: Option<Playing>,
    /// The digit being sent, and those waiting behind it.
    sending: Option<SendingDigit>,
    digits: VecDeque<Digit>,
    /// Playbacks and digits sent so far: each is a source of its own to the leg's rewriter.
    sources: u32,
    source_ssrc_base: u32,
    /// The last RTP or RTCP from the leg, or when the remote was set.
    last_activity: Instant,
    timed_out: bool,
    next_report: Instant,
    cname: String,
    /// A recorder is installed in the leg; it is written out at `next_recording_tick`.
    recording: bool,
    next_recording_tick: Instant,
}

pub(super) async fn run(
    leg: Arc<Leg>,
    config: Arc<MediaConfig>,
    pace: Arc<Pace>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<SessionEvent>,
) {
    let now = Instant::now();
    let mut task = Task {
        leg: Arc::clone(&leg),
        latch: Latch::new(config.latch),
        config,
        pace,
        pace_count: PaceCount::default(),
        events,
        remote: None,
        rtcp_source: None,
        stats: ReceptionStats::new(CLOCK_RATE, now),
        dtmf: DtmfReceiver::new(CLOCK_RATE),
        inband: None,
        report_inband: false,
        peer: None,
        conference: None,
        muted: false,
        hold_music: None,
        playing: None,
        sending: None,
        digits: VecDeque::new(),
        sources: 0,
        source_ssrc_base: rand::random(),
        last_activity: now,
        timed_out: false,
        next_report: now,
        cname: format!("{:016x}@loket", rand::random::<u64>()),
        recording: false,
        next_recording_tick: now,
    };
    let mut rtp_buffer = [0u8; MAX_DATAGRAM];
    let mut rtcp_buffer = [0u8; MAX_DATAGRAM];
    // One timer for every deadline. It is moved only when the next deadline comes earlier, or
    // after it fired: every packet pushes the media timeout back, and re-arming a Tokio timer on
    // each one would cost more than relaying the packet. A wake-up before the real deadline only
    // finds nothing due and re-arms.
    let sleep = tokio::time::sleep(IDLE_WAKE_UP);
    tokio::pin!(sleep);
    let mut armed = sleep.deadline();
    loop {
        let deadline = task.next_deadline().unwrap_or_else(|| Instant::now() + IDLE_WAKE_UP);
        let deadline = tokio::time::Instant::from_std(deadline);
        if deadline < armed || sleep.is_elapsed() {
            sleep.as_mut().reset(deadline);
            armed = deadline;
        }
        let read_on_tick = task.reads_on_tick();
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                Some(command) => task.handle_command(Instant::now(), command),
                None => break,
            },
            // Polled rather than awaited with `readable()`: that future enters the socket's waiter
            // list under a lock each time it is made and leaves it when another branch wins, once
            // or twice per packet; the poll keeps one waker, and only this task waits here.
            ready = poll_fn(|context| leg.rtp.poll_recv_ready(context)), if !read_on_tick => {
                if ready.is_err() {
                    break;
                }
                task.read_rtp(&mut rtp_buffer, None);
            },
            ready = poll_fn(|context| leg.rtcp.poll_recv_ready(context)) => {
                if ready.is_err() {
                    break;
                }
                for _ in 0..BATCH {
                    match leg.rtcp.try_recv_from(&mut rtcp_buffer) {
                        Ok((length, from)) => task.on_rtcp(Instant::now(), from, &rtcp_buffer[..length]),
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {}
                    }
                }
            },
            () = &mut sleep => {
                let now = Instant::now();
                if read_on_tick {
                    // Before the frame: a key that arrived since the last one may stop the prompt.
                    task.read_rtp(&mut rtp_buffer, Some(now));
                }
                task.handle_timeout(now);
            },
        }
    }
    task.pace_count.flush(&task.pace);
    // The recording ends with the session: its file is finished before the task ends, so that
    // `Session::close` returns with it complete. Its summary has no reader; an error has already
    // removed the file.
    if let Some((_, writer)) = task.finish_recording(Instant::now()) {
        drop((task, leg));
        let _ = writer.await;
    }
}

impl Task {
    /// While the session only plays to its leg (a prompt or music, nothing relayed, mixed or
    /// recorded), the leg's packets are read at the prompt's frame tick instead of as they arrive:
    /// one wake-up per frame instead of two, which is most of a waiting caller's cost. Nobody
    /// hears those packets; a key in them is seen at most one frame later, and their arrival
    /// times are the tick's, so they are kept out of the jitter estimate.
    fn reads_on_tick(&self) -> bool {
        self.playing.is_some() && self.peer.is_none() && self.conference.is_none() && !self.recording
    }

    /// Reads what waits on the RTP socket. `tick` is the frame tick the packets are read at, or
    /// `None` when they are read as they arrive.
    fn read_rtp(&mut self, buffer: &mut [u8; MAX_DATAGRAM], tick: Option<Instant>) {
        for _ in 0..BATCH {
            match self.leg.rtp.try_recv_from(buffer) {
                Ok((length, from)) => {
                    let now = tick.unwrap_or_else(Instant::now);
                    self.on_rtp_socket(now, tick.is_none(), from, &buffer[..length]);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                // ICMP errors from an earlier send surface here on some systems; the next read
                // goes on.
                Err(_) => {}
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let remote_set = self.remote.is_some();
        [
            self.playing.as_ref().and_then(|playing| playing.player.next_deadline()),
            self.sending.as_ref().map(SendingDigit::next_deadline),
            self.dtmf.poll_timeout(),
            (remote_set && !self.timed_out).then(|| self.last_activity + self.config.media_timeout),
            remote_set.then_some(self.next_report),
            self.recording.then_some(self.next_recording_tick),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.dtmf.handle_timeout(now);
        self.drain_dtmf(now);
        // Before the prompt's frames: a digit whose slot ends now lets this wake-up's frame pass.
        self.send_due_digits(now);
        self.play_due_frames(now);
        if self.remote.is_some() {
            if !self.timed_out && now >= self.last_activity + self.config.media_timeout {
                self.timed_out = true;
                self.emit(SessionEvent::MediaTimeout);
            }
            if now >= self.next_report {
                self.send_report(now);
                self.next_report = now + self.config.rtcp_interval.mul_f64(0.5 + rand::random::<f64>());
            }
        }
        if self.recording && now >= self.next_recording_tick {
            if let Some(recorder) = self.leg.lock_recorder().as_mut() {
                recorder.advance(now);
            }
            // A tick's deadline is no media timing: it may slip with a late wake-up.
            self.next_recording_tick = now + RECORDING_TICK;
        }
    }

    fn handle_command(&mut self, now: Instant, command: Command) {
        match command {
            Command::SetRemote(remote) => {
                self.latch.set_signalled(remote.rtp);
                {
                    let mut outbound = self.leg.lock_outbound();
                    outbound.target = self.latch.target();
                    outbound.codec = remote.codec;
                    outbound.telephone_event = remote.telephone_event;
                }
                self.report_inband = remote.inband_dtmf;
                self.keep_tone_detector();
                if self.remote.is_none() {
                    // The media timeout and the reports start with the call, not the allocation.
                    self.last_activity = now;
                    self.next_report = now + self.config.rtcp_interval.mul_f64(0.5 + rand::random::<f64>());
                }
                self.remote = Some(remote);
            }
            Command::Play { playlist, options } => self.start_playback(now, playlist, options, false),
            Command::StopPlayback => {
                // Silence asked for: a hold's music does not come back either.
                self.hold_music = None;
                self.stop_playback(now);
            }
            Command::Hold(music) => {
                self.hold_music = None;
                self.start_playback(now, vec![music.clone()], MUSIC, true);
                self.hold_music = Some(music);
                self.muted = true;
            }
            Command::Resume => {
                self.hold_music = None;
                if self.playing.as_ref().is_some_and(|playing| playing.music) {
                    self.stop_playback(now);
                }
                self.muted = false;
            }
            Command::Bridge(peer) => self.peer = Some(peer),
            Command::Unbridge => self.peer = None,
            Command::StartRecording { file, reply } => {
                let outcome = if self.recording {
                    Err(file)
                } else {
                    *self.leg.lock_recorder() = Some(Recorder::start(file, now));
                    self.leg.recording.store(true, Ordering::Relaxed);
                    self.recording = true;
                    self.next_recording_tick = now + RECORDING_TICK;
                    self.keep_tone_detector();
                    Ok(())
                };
                // A handle that stopped waiting drops the file it got back, which removes it.
                let _ = reply.send(outcome);
            }
            Command::StopRecording { reply } => {
                let _ = reply.send(self.finish_recording(now));
            }
            Command::Conference(conference) => self.conference = conference,
            Command::SendDigit { digit, reply } => {
                let _ = reply.send(self.queue_digit(now, digit));
            }
        }
    }

    /// Sends `digit` now, or after the digits before it.
    fn queue_digit(&mut self, now: Instant, digit: Digit) -> Result<(), SessionError> {
        let Some(remote) = self.remote else { return Err(SessionError::NoRemote) };
        if self.sending.is_some() {
            if self.digits.len() == DIGIT_QUEUE {
                return Err(SessionError::TooManyDigits(DIGIT_QUEUE));
            }
            self.digits.push_back(digit);
            return Ok(());
        }
        let ssrc = self.new_source();
        self.sending = Some(SendingDigit::new(digit, now, ssrc, remote.telephone_event.is_some()));
        self.leg.lock_outbound().digit = true;
        // Its first packet is due now, and goes when the timer fires, as a prompt's first frame
        // does. Not from here: on a session that has sent nothing yet, Tokio marks the socket
        // writable only once its driver has run, and `try_send_to` would refuse the packet.
        Ok(())
    }

    /// Sends what is due of the digit in progress. At the end of its slot the next digit starts
    /// where the slot ends, so that a late wake-up does not stretch the pause; after the last,
    /// the peer and the prompts reach the leg again.
    fn send_due_digits(&mut self, now: Instant) {
        loop {
            let Some(sending) = &mut self.sending else { return };
            sending.send_due(&self.leg, now);
            if now < sending.next_deadline() {
                return;
            }
            let slot_end = sending.start + DIGIT_SLOT;
            // The far end's telephone-event may have come or gone with a re-INVITE meanwhile.
            let telephone_event = self.remote.is_some_and(|remote| remote.telephone_event.is_some());
            match self.digits.pop_front() {
                Some(digit) => {
                    let ssrc = self.new_source();
                    self.sending = Some(SendingDigit::new(digit, slot_end, ssrc, telephone_event));
                }
                None => {
                    self.sending = None;
                    self.leg.lock_outbound().digit = false;
                }
            }
        }
    }

    fn new_source(&mut self) -> u32 {
        self.sources = self.sources.wrapping_add(1);
        self.source_ssrc_base.wrapping_add(self.sources)
    }

    /// Takes the recorder out of the leg, so that no more packets reach it, and ends it.
    fn finish_recording(&mut self, now: Instant) -> Option<(PathBuf, Writer)> {
        if !std::mem::take(&mut self.recording) {
            return None;
        }
        self.leg.recording.store(false, Ordering::Relaxed);
        self.keep_tone_detector();
        let recorder = self.leg.lock_recorder().take()?;
        Some(recorder.finish(now))
    }

    /// A datagram on the RTP port: RTP, or RTCP when multiplexed. `timed`: `now` is its arrival.
    fn on_rtp_socket(&mut self, now: Instant, timed: bool, from: SocketAddr, datagram: &[u8]) {
        let Some(remote) = self.remote else {
            // No SDP yet: nobody to latch to, nowhere to forward.
            Counters::add(&self.leg.counters.foreign, 1);
            return;
        };
        if remote.rtcp_mux && is_rtcp(datagram) {
            self.on_rtcp(now, from, datagram);
            return;
        }
        let counters = &self.leg.counters;
        let Ok(packet) = RtpPacket::parse(datagram) else {
            Counters::add(&counters.malformed, 1);
            return;
        };
        let payload = if packet.payload_type == remote.codec.payload_type() {
            Payload::Audio(remote.codec)
        } else if Some(packet.payload_type) == remote.telephone_event {
            Payload::Event
        } else {
            Counters::add(&counters.unexpected_payload, 1);
            return;
        };
        match self.latch.on_packet(now, from) {
            LatchVerdict::Accept => {}
            LatchVerdict::Latched(address) => {
                self.leg.lock_outbound().target = Some(address);
                self.rtcp_source = None;
                self.emit(SessionEvent::Latched(address));
            }
            LatchVerdict::Ignore => {
                Counters::add(&counters.foreign, 1);
                return;
            }
        }
        self.last_activity = now;
        self.timed_out = false;
        Counters::add(&counters.received_packets, 1);
        Counters::add(&counters.received_octets, packet.payload.len() as u64);
        self.stats.on_rtp(now, &packet, timed && payload != Payload::Event);
        match payload {
            Payload::Event => {
                self.dtmf.handle_packet(now, &packet);
                self.drain_dtmf(now);
            }
            Payload::Audio(codec) => {
                let tone = self.detect_inband(now, codec, packet.payload);
                // On hold nobody hears the leg: what it says then is not recorded either.
                if !self.muted {
                    self.leg.record(now, Direction::FromLeg, packet.ssrc, packet.timestamp, codec, packet.payload);
                    if tone && self.recording {
                        // A key's tones (a national register number, a PIN) stay out of the
                        // recording, back to before the detector could tell them.
                        self.leg.mask_recording(now, Direction::FromLeg, TONE_LOOKBACK);
                    }
                    self.to_conference(codec, packet.payload);
                }
            }
        }
        if let Some(weak) = &self.peer {
            match weak.upgrade() {
                Some(peer) if !self.muted => peer.send(now, &packet, payload, Origin::Peer),
                Some(_) => {}
                // The peer session has ended.
                None => self.peer = None,
            }
        }
    }

    /// The leg's audio, decoded, to the conference it is in.
    fn to_conference(&self, codec: Codec, payload: &[u8]) {
        let Some((conference, participant)) = &self.conference else { return };
        let mut samples = [0i16; MAX_DATAGRAM];
        let decoded = match codec {
            Codec::Pcmu => decode_ulaw(payload, &mut samples),
            Codec::Pcma => decode_alaw(payload, &mut samples),
        };
        if let Some(length) = decoded {
            conference.push(*participant, &samples[..length]);
        }
    }

    /// The tone detector is kept while it has a use, with its state across changes of remote.
    fn keep_tone_detector(&mut self) {
        if self.report_inband || self.recording {
            self.inband.get_or_insert_with(InbandDetector::default);
        } else {
            self.inband = None;
        }
    }

    /// Runs the tone detector on one packet's audio: a digit that starts is reported when the
    /// far end signals digits in-band. Returns whether a digit is sounding.
    fn detect_inband(&mut self, now: Instant, codec: Codec, payload: &[u8]) -> bool {
        let Some(detector) = &mut self.inband else { return false };
        let mut samples = [0i16; MAX_DATAGRAM];
        let decoded = match codec {
            Codec::Pcmu => decode_ulaw(payload, &mut samples),
            Codec::Pcma => decode_alaw(payload, &mut samples),
        };
        let Some(length) = decoded else { return false };
        // A digit takes at least four 6.4 ms blocks to start, so one 20 ms frame starts at most
        // one.
        let mut started = None;
        detector.process(&samples[..length], |digit| started = Some(digit));
        let sounding = detector.is_down();
        if let Some(digit) = started.filter(|_| self.report_inband) {
            self.on_digit(now, digit, DigitSource::Inband);
        }
        sounding
    }

    fn on_rtcp(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        // Reports are taken only from the host the leg's RTP comes from: anyone else's would
        // poison the statistics, or keep a dead call alive.
        if self.latch.target().is_none_or(|target| target.ip() != from.ip()) {
            Counters::add(&self.leg.counters.foreign, 1);
            return;
        }
        let mut valid = false;
        for packet in parse_compound(datagram) {
            match packet {
                Ok(RtcpPacket::SenderReport { ssrc, info, blocks }) => {
                    self.stats.on_sender_report(now, ssrc, info.ntp);
                    self.note_report_blocks(blocks);
                }
                Ok(RtcpPacket::ReceiverReport { blocks, .. }) => self.note_report_blocks(blocks),
                Ok(RtcpPacket::Other { .. }) => {}
                Err(_) => {
                    Counters::add(&self.leg.counters.malformed, 1);
                    break;
                }
            }
            valid = true;
        }
        if valid {
            // A phone that holds the call (a=inactive) sends no RTP but goes on reporting.
            self.last_activity = now;
            self.timed_out = false;
            if !self.remote.is_some_and(|remote| remote.rtcp_mux) {
                self.rtcp_source = Some(from);
            }
        }
    }

    fn note_report_blocks(&mut self, blocks: ReportBlocks<'_>) {
        let mut outbound = self.leg.lock_outbound();
        let ours = outbound.ssrc;
        if let Some(block) = blocks.filter(|block| block.ssrc == ours).last() {
            outbound.remote_report = Some(block);
            outbound.round_trip = round_trip(&block, NtpTime::from_system_time(SystemTime::now()));
        }
    }

    fn send_report(&mut self, now: Instant) {
        let Some(target) = self.rtcp_target() else { return };
        let block = self.stats.report_block(now);
        let (ssrc, sender) = {
            let mut outbound = self.leg.lock_outbound();
            (outbound.ssrc, outbound.take_sender_info(now, NtpTime::from_system_time(SystemTime::now())))
        };
        let mut datagram = [0u8; 256];
        let Ok(length) = write_report(ssrc, sender, block, self.cname.as_bytes(), &mut datagram) else { return };
        let socket = if self.remote.is_some_and(|remote| remote.rtcp_mux) { &self.leg.rtp } else { &self.leg.rtcp };
        if socket.try_send_to(&datagram[..length], target).is_err() {
            Counters::add(&self.leg.counters.send_errors, 1);
        }
    }

    fn rtcp_target(&self) -> Option<SocketAddr> {
        let remote = self.remote?;
        let rtp = self.latch.target()?;
        if remote.rtcp_mux {
            return Some(rtp);
        }
        if let Some(source) = self.rtcp_source {
            return Some(source);
        }
        let next_port = SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1));
        if rtp != remote.rtp {
            // Latched behind a NAT: its RTCP mapping is unknown until a report arrives, and the
            // port above the RTP mapping is the usual one.
            return Some(next_port);
        }
        Some(remote.rtcp.unwrap_or(next_port))
    }

    fn start_playback(&mut self, now: Instant, playlist: Vec<Prompt>, options: PlayOptions, music: bool) {
        // The music a prompt replaces is not resumed here: the prompt's end brings it back.
        let hold_music = self.hold_music.take();
        self.stop_playback(now);
        self.hold_music = hold_music;
        let ssrc = self.new_source();
        self.playing = Some(Playing {
            player: Player::new(playlist, options.looping, now),
            barge_in: options.barge_in,
            ssrc,
            music,
        });
        self.leg.lock_outbound().playing = true;
        // An empty playlist finishes at once.
        self.drain_playback(now);
    }

    fn stop_playback(&mut self, now: Instant) {
        if let Some(playing) = &mut self.playing {
            playing.player.stop();
        }
        self.drain_playback(now);
    }

    /// Sends the frames due at `now`, each as a packet of the playback's own source. While a
    /// digit is being sent they are dropped, so the prompt goes on in time and resumes after it.
    fn play_due_frames(&mut self, now: Instant) {
        let Some(playing) = &mut self.playing else { return };
        let late = playing.player.next_deadline().filter(|due| *due <= now).map(|due| now - due > LATE_TICK);
        while let Some(frame) = playing.player.poll_frame(now) {
            self.leg.send_frame(now, playing.ssrc, frame, Origin::Player);
        }
        if let Some(late) = late {
            self.pace_count.ticks += 1;
            self.pace_count.late += u32::from(late);
            if self.pace_count.ticks >= PACE_BATCH {
                self.pace_count.flush(&self.pace);
            }
        }
        self.drain_playback(now);
    }

    fn drain_playback(&mut self, now: Instant) {
        // A player reports once, when it ends.
        while let Some(event) = self.playing.as_mut().and_then(|playing| playing.player.poll_event()) {
            self.emit(match event {
                PlaybackEvent::Finished => SessionEvent::PlaybackFinished,
                PlaybackEvent::Stopped => SessionEvent::PlaybackStopped,
            });
        }
        if self.playing.as_ref().is_some_and(|playing| playing.player.next_deadline().is_none()) {
            self.playing = None;
            self.leg.lock_outbound().playing = false;
            // A prompt played during a hold ended: the caller, still held, hears the music again.
            if let Some(music) = self.hold_music.clone().filter(|music| music.frames() > 0) {
                self.start_playback(now, vec![music], MUSIC, true);
            }
        }
    }

    fn drain_dtmf(&mut self, now: Instant) {
        while let Some(event) = self.dtmf.poll_event() {
            if let DtmfEvent::Began { digit } = event {
                self.on_digit(now, digit, DigitSource::Rfc4733);
            }
        }
    }

    fn on_digit(&mut self, now: Instant, digit: Digit, source: DigitSource) {
        self.emit(SessionEvent::Digit { digit, source });
        if self.playing.as_ref().is_some_and(|playing| playing.barge_in) {
            self.stop_playback(now);
        }
    }

    /// Queues an event for the handle; a full queue drops it (counted) rather than stall the
    /// media or grow.
    fn emit(&self, event: SessionEvent) {
        if let Err(TrySendError::Full(_)) = self.events.try_send(event) {
            Counters::add(&self.leg.counters.events_dropped, 1);
        }
    }
}
