//! Recording over real RTP on loopback: a bridged call recorded to WAV and read back with hound,
//! a prompt recorded when the session closes, and the refusals. Every wait has a deadline; the
//! only sleeps pace the phones' packets or let a recording last.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use loket_media::dtmf::Digit;
use loket_media::dtmf::inband::{self, InbandDetector};
use loket_media::edge::{Codec, PlayOptions, RemoteParams, Session, SessionError, SessionEvent, SessionStats};
use loket_media::g711::{alaw_encode, ulaw_encode};
use loket_media::playback::Prompt;
use loket_media::rtp::RtpHeader;
use loket_media::tone::power;
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn remote(phone: &Phone, codec: Codec) -> RemoteParams {
    common::remote(phone.address(), codec)
}

/// A folder of this test's own, emptied first.
fn folder(name: &str) -> PathBuf {
    let folder = std::env::temp_dir().join(format!("loket-media-recording-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

fn part(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

/// A phone sending a sine tone in 20 ms packets.
struct Phone {
    socket: UdpSocket,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    sample: usize,
}

impl Phone {
    async fn new(ssrc: u32) -> Phone {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Phone { socket, ssrc, sequence: 7, timestamp: 4_000_000_000, sample: 0 }
    }

    fn address(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// The next 20 ms of a `frequency` tone, encoded in `codec`, to `to`.
    async fn send_tone(&mut self, to: SocketAddr, codec: Codec, frequency: f64) {
        let samples: Vec<i16> = (0..160)
            .map(|index| {
                let t = (self.sample + index) as f64 / 8000.0;
                (10_000.0 * (2.0 * std::f64::consts::PI * frequency * t).sin()) as i16
            })
            .collect();
        self.send_samples(to, codec, &samples).await;
    }

    /// One packet of `samples`, encoded in `codec`, to `to`.
    async fn send_samples(&mut self, to: SocketAddr, codec: Codec, samples: &[i16]) {
        let payload: Vec<u8> = samples
            .iter()
            .map(|&sample| match codec {
                Codec::Pcmu => ulaw_encode(sample),
                Codec::Pcma => alaw_encode(sample),
            })
            .collect();
        let header = RtpHeader {
            marker: false,
            payload_type: codec.payload_type(),
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
        };
        self.sample += samples.len();
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(samples.len() as u32);
        let mut datagram = [0u8; 1500];
        let length = header.write(&payload, &mut datagram).unwrap();
        self.socket.send_to(&datagram[..length], to).await.unwrap();
    }
}

/// `samples` of a tone at `frequency`, amplitude 8,000, at 8 kHz.
fn sine(frequency: f64, samples: u32) -> Vec<i16> {
    (0..samples)
        .map(|index| (8000.0 * (2.0 * std::f64::consts::PI * frequency * f64::from(index) / 8000.0).sin()) as i16)
        .collect()
}

/// Polls a session's counters until `condition` holds, within `WAIT`.
async fn until(session: &Session, condition: impl Fn(&SessionStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition(&session.stats()) {
        assert!(Instant::now() < deadline, "condition not met in time: {:?}", session.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The two channels of a recording, checked to be 8 kHz 16-bit stereo.
fn read_channels(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample, spec.sample_format),
        (2, 8000, 16, hound::SampleFormat::Int)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    assert_eq!(samples.len() as u32, reader.duration() * 2);
    (samples.iter().step_by(2).copied().collect(), samples.iter().skip(1).step_by(2).copied().collect())
}

/// The span from the first to the last sample that is not silence.
fn sound(channel: &[i16]) -> std::ops::Range<usize> {
    let first = channel.iter().position(|&sample| sample.unsigned_abs() > 100).unwrap_or(0);
    let last = channel.iter().rposition(|&sample| sample.unsigned_abs() > 100).map_or(0, |last| last + 1);
    first..last.max(first)
}

#[tokio::test]
async fn a_bridged_call_is_recorded_one_side_per_channel() {
    let engine = common::engine(13_000);
    let folder = folder("bridged");
    let path = folder.join("call.wav");
    let (mut caller, mut agent) = (Phone::new(0xCA11).await, Phone::new(0xA6E7).await);
    let (a, b) = (engine.allocate().unwrap(), engine.allocate().unwrap());
    // The agent's leg is A-law: the caller hears it transcoded, and channel 2 holds what it heard.
    a.set_remote(remote(&caller, Codec::Pcmu)).await.unwrap();
    b.set_remote(remote(&agent, Codec::Pcma)).await.unwrap();
    a.bridge(&b).await.unwrap();
    a.start_recording(path.clone()).await.unwrap();
    assert!(part(&path).exists() && !path.exists());

    // One second of 440 Hz from the caller and 880 Hz from the agent, paced at 20 ms.
    const PACKETS: u64 = 50;
    let start = tokio::time::Instant::now();
    for index in 0..PACKETS as u32 {
        tokio::time::sleep_until(start + Duration::from_millis(20) * index).await;
        caller.send_tone(a.sdp_address(), Codec::Pcmu, 440.0).await;
        agent.send_tone(b.sdp_address(), Codec::Pcma, 880.0).await;
    }
    until(&a, |stats| stats.received_packets == PACKETS && stats.sent_packets == PACKETS).await;
    let summary = a.stop_recording().await.unwrap().expect("a recording");

    assert_eq!(summary.path, path);
    assert!(path.exists() && !part(&path).exists());
    assert_eq!((summary.dropped, summary.late_packets), (Duration::ZERO, 0));
    assert!(summary.duration >= Duration::from_millis(980) && summary.duration < Duration::from_secs(3), "{summary:?}");
    let frames = (summary.duration.as_micros() * 8 / 1000) as u64;
    assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(summary.bytes, 44 + 4 * frames);

    let (caller_channel, agent_channel) = read_channels(&path);
    assert_eq!(caller_channel.len() as u64, frames);
    let (caller_sound, agent_sound) = (sound(&caller_channel), sound(&agent_channel));
    // Each side's second is there, whole: 8,000 samples give or take a packet at the edges.
    for span in [&caller_sound, &agent_sound] {
        assert!(span.len() >= 7840 && span.len() <= 8160, "{caller_sound:?} {agent_sound:?}");
    }
    // Both phones started together: their channels start together.
    let apart = caller_sound.start.abs_diff(agent_sound.start);
    assert!(apart <= 640, "channels {apart} samples apart: {caller_sound:?} {agent_sound:?}");
    let caller_voice = &caller_channel[caller_sound];
    let agent_voice = &agent_channel[agent_sound];
    assert!(power(caller_voice, 440.0) > 100.0 * power(caller_voice, 880.0));
    assert!(power(agent_voice, 880.0) > 100.0 * power(agent_voice, 440.0));

    a.close().await;
    b.close().await;
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test]
async fn closing_the_session_finishes_a_recording_with_the_prompt_on_channel_2() {
    let engine = common::engine(13_100);
    let folder = folder("prompt");
    let path = folder.join("ivr.wav");
    let phone = Phone::new(0xB0).await;
    let mut session = engine.allocate().unwrap();
    session.set_remote(remote(&phone, Codec::Pcma)).await.unwrap();
    session.start_recording(path.clone()).await.unwrap();
    session.play(vec![Prompt::from_pcm(&sine(880.0, 4000))], PlayOptions::default()).await.unwrap();
    let finished = timeout(WAIT, session.next_event()).await.expect("the prompt ends in time");
    assert_eq!(finished, Some(SessionEvent::PlaybackFinished));
    // No stop_recording: closing the session finishes the file before `close` returns.
    session.close().await;
    assert!(path.exists() && !part(&path).exists());

    let (from_phone, to_phone) = read_channels(&path);
    assert!(from_phone.iter().all(|&sample| sample == 0), "the phone sent nothing");
    let played = sound(&to_phone);
    // Half a second of prompt, as the phone heard it (A-law, transcoded from the µ-law prompt).
    assert!(played.len() >= 3840 && played.len() <= 4000, "{played:?}");
    let heard = &to_phone[played];
    assert!(power(heard, 880.0) > 100.0 * power(heard, 440.0));
    let _ = std::fs::remove_dir_all(folder);
}

/// On hold nobody hears the caller, so what they say then is not recorded; the music they hear is.
#[tokio::test]
async fn a_held_caller_is_not_recorded_but_their_music_is() {
    let engine = common::engine(13_600);
    let folder = folder("hold");
    let path = folder.join("held.wav");
    let mut caller = Phone::new(0xB1).await;
    let session = engine.allocate().unwrap();
    session.set_remote(remote(&caller, Codec::Pcmu)).await.unwrap();
    session.start_recording(path.clone()).await.unwrap();
    session.hold(Prompt::from_pcm(&sine(880.0, 80_000))).await.unwrap();
    const PACKETS: u64 = 25;
    let start = tokio::time::Instant::now();
    for index in 0..PACKETS as u32 {
        tokio::time::sleep_until(start + Duration::from_millis(20) * index).await;
        caller.send_tone(session.sdp_address(), Codec::Pcmu, 440.0).await;
    }
    until(&session, |stats| stats.received_packets == PACKETS).await;
    session.stop_recording().await.unwrap().expect("a recording");
    let (from_caller, to_caller) = read_channels(&path);
    assert!(from_caller.iter().all(|&sample| sample == 0), "the held caller was recorded");
    let heard = &to_caller[sound(&to_caller)];
    assert!(heard.len() >= 3_200, "the music is in the recording: {} samples", heard.len());
    assert!(power(heard, 880.0) > 100.0 * power(heard, 440.0));
    session.close().await;
    let _ = std::fs::remove_dir_all(folder);
}

/// A caller keys a digit by its tones during a recorded call whose far end signals digits by
/// telephone-events: the tones are silenced in the recording, from before the detector knew them,
/// while what the caller says around them is kept; no digit is reported for them.
#[tokio::test]
async fn a_callers_key_tones_are_kept_out_of_the_recording() {
    let engine = common::engine(13_640);
    let folder = folder("tones");
    let path = folder.join("tones.wav");
    let mut caller = Phone::new(0xD7).await;
    let mut session = engine.allocate().unwrap();
    session.set_remote(remote(&caller, Codec::Pcmu)).await.unwrap();
    session.start_recording(path.clone()).await.unwrap();
    let mut key = [0i16; 800];
    inband::generate(Digit::D5, -10.0, &mut key);
    // 400 ms of voice, 100 ms of the key, 400 ms of voice: 45 packets on the 20 ms grid.
    let start = tokio::time::Instant::now();
    for index in 0..45u32 {
        tokio::time::sleep_until(start + Duration::from_millis(20) * index).await;
        match index {
            20..25 => {
                let at = (index as usize - 20) * 160;
                caller.send_samples(session.sdp_address(), Codec::Pcmu, &key[at..at + 160]).await;
            }
            _ => caller.send_tone(session.sdp_address(), Codec::Pcmu, 440.0).await,
        }
    }
    until(&session, |stats| stats.received_packets == 45).await;
    session.stop_recording().await.unwrap().expect("a recording");
    let (from_caller, _) = read_channels(&path);
    let mut detector = InbandDetector::default();
    let mut digits = Vec::new();
    detector.process(&from_caller, |digit| digits.push(digit));
    assert_eq!(digits, [], "the key's tones are in the recording");
    let voice = sound(&from_caller);
    let kept = from_caller[voice].iter().filter(|&&sample| sample != 0).count();
    // 6,400 samples of voice, less the 100 ms looked back over before the key and the 32 ms the
    // detector takes to release it after.
    assert!(kept >= 5_000, "the voice around the key is kept: {kept} samples");
    // What the session has said so far: its latching, and no digit.
    while let Ok(Some(event)) = timeout(Duration::from_millis(200), session.next_event()).await {
        assert!(!matches!(event, SessionEvent::Digit { .. }), "a digit reported from the audio: {event:?}");
    }
    session.close().await;
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test]
async fn a_dropped_session_finishes_its_recording_too() {
    let engine = common::engine(13_200);
    let folder = folder("dropped");
    let path = folder.join("dropped.wav");
    let session = engine.allocate().unwrap();
    session.start_recording(path.clone()).await.unwrap();
    drop(session);
    let deadline = Instant::now() + WAIT;
    while !path.exists() {
        assert!(Instant::now() < deadline, "the recording was not finished");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(!part(&path).exists());
    read_channels(&path);
    let _ = std::fs::remove_dir_all(folder);
}

#[tokio::test]
async fn recordings_are_refused_twice_over_a_file_and_where_no_folder_is() {
    let engine = common::engine(13_300);
    let folder = folder("refusals");
    let (first, second) = (folder.join("first.wav"), folder.join("second.wav"));
    let session = engine.allocate().unwrap();
    assert_eq!(session.stop_recording().await.unwrap(), None);

    // The recording starts when the session's task takes the command: between these two instants.
    let before = Instant::now();
    session.start_recording(first.clone()).await.unwrap();
    let started = Instant::now();
    assert!(matches!(session.start_recording(second.clone()).await, Err(SessionError::AlreadyRecording)));
    assert!(!part(&second).exists(), "the refused recording left its file behind");

    // Both sides silent for a while: the file is silence, as long as the recording lasted.
    tokio::time::sleep_until((started + Duration::from_millis(600)).into()).await;
    let summary = session.stop_recording().await.unwrap().expect("a recording");
    let at_most = before.elapsed();
    assert!(summary.duration >= Duration::from_millis(599) && summary.duration <= at_most, "{summary:?} {at_most:?}");
    let (one, two) = read_channels(&first);
    assert!(one.iter().chain(&two).all(|&sample| sample == 0));
    assert_eq!(session.stop_recording().await.unwrap(), None);

    let refused = |result: Result<(), SessionError>, kind: std::io::ErrorKind| match result {
        Err(SessionError::Recording { source, .. }) => assert_eq!(source.kind(), kind),
        other => panic!("{other:?}"),
    };
    refused(session.start_recording(first.clone()).await, std::io::ErrorKind::AlreadyExists);
    refused(session.start_recording(folder.join("nowhere").join("x.wav")).await, std::io::ErrorKind::NotFound);
    // The first file was left as it was.
    assert_eq!(read_channels(&first).0.len(), one.len());

    session.close().await;
    let _ = std::fs::remove_dir_all(folder);
}
