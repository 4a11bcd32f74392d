//! The UDP edge with real RTP on loopback: sessions, bridging, DTMF, latching, the media timeout,
//! RTCP and playback. Every wait has a deadline; nothing sleeps hoping that something happened,
//! only to let a configured interval pass.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use loket_media::dtmf::Digit;
use loket_media::dtmf::rfc4733::DigitSender;
use loket_media::edge::{
    Codec, DigitSource, MediaConfig, MediaEngine, PlayOptions, RemoteParams, Session, SessionError, SessionEvent,
};
use loket_media::g711::{ulaw_encode, ulaw_to_alaw};
use loket_media::latch::LatchConfig;
use loket_media::playback::Prompt;
use loket_media::rtcp::{ReportBlock, RtcpPacket, parse_compound, write_report};
use loket_media::rtp::{RtpHeader, RtpPacket};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(3);
const EVENT_PT: u8 = 101;

/// An engine on its own port range, so that tests running in parallel do not share ports.
fn engine(first_port: u16, adjust: impl FnOnce(&mut MediaConfig)) -> MediaEngine {
    let mut config = MediaConfig {
        bind: [127, 0, 0, 1].into(),
        port_min: first_port,
        port_max: first_port + 39,
        ..MediaConfig::default()
    };
    adjust(&mut config);
    MediaEngine::new(config).unwrap()
}

fn remote(phone: &Phone, codec: Codec) -> RemoteParams {
    RemoteParams {
        rtp: phone.address(),
        rtcp: None,
        rtcp_mux: false,
        codec,
        telephone_event: Some(EVENT_PT),
        inband_dtmf: false,
    }
}

/// A phone: one RTP socket and its own RTP line.
struct Phone {
    socket: UdpSocket,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl Phone {
    async fn new(ssrc: u32) -> Phone {
        Phone { socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(), ssrc, sequence: 1000, timestamp: 50_000 }
    }

    fn address(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Sends the next 20 ms packet of the line to `to`.
    async fn send(&mut self, to: SocketAddr, payload_type: u8, payload: &[u8]) {
        let header = RtpHeader {
            marker: false,
            payload_type,
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
        };
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(160);
        self.send_header(to, header, payload).await;
    }

    async fn send_header(&self, to: SocketAddr, header: RtpHeader, payload: &[u8]) {
        let mut datagram = [0u8; 1500];
        let length = header.write(payload, &mut datagram).unwrap();
        self.socket.send_to(&datagram[..length], to).await.unwrap();
    }

    /// The next datagram, within `within`.
    async fn receive(&self, within: Duration) -> Option<Vec<u8>> {
        let mut buffer = [0u8; 1500];
        let (length, _) = timeout(within, self.socket.recv_from(&mut buffer)).await.ok()?.unwrap();
        Some(buffer[..length].to_vec())
    }

    /// The next RTP packet's header and payload.
    async fn receive_rtp(&self) -> (RtpHeader, Vec<u8>) {
        let datagram = self.receive(WAIT).await.expect("an RTP packet");
        let packet = RtpPacket::parse(&datagram).unwrap();
        (packet.header(), packet.payload.to_vec())
    }
}

async fn next_event(session: &mut Session) -> SessionEvent {
    timeout(WAIT, session.next_event()).await.expect("an event in time").expect("the session is running")
}

/// Events until one matches, skipping the others (latching reports, mostly).
async fn wait_for(session: &mut Session, wanted: impl Fn(&SessionEvent) -> bool) -> SessionEvent {
    loop {
        let event = next_event(session).await;
        if wanted(&event) {
            return event;
        }
    }
}

/// Polls a condition on a session's counters until it holds, within `WAIT`.
async fn until(session: &Session, condition: impl Fn(&loket_media::edge::SessionStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition(&session.stats()) {
        assert!(Instant::now() < deadline, "condition not met in time: {:?}", session.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn tone_prompt(seconds: f32, code: u8) -> Prompt {
    // A prompt whose every µ-law byte is `code`: recognisable on the wire.
    let sample = loket_media::g711::ulaw_decode(code);
    Prompt::from_pcm(&vec![sample; (8000.0 * seconds) as usize])
}

#[tokio::test]
async fn ports_are_even_pairs_handed_out_once_and_returned() {
    let engine = engine(12_000, |config| config.port_max = 12_007);
    assert_eq!(engine.free_port_pairs(), 4);
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(engine.allocate().unwrap());
    }
    let mut ports: Vec<u16> = sessions.iter().map(|session| session.sdp_address().port()).collect();
    ports.sort_unstable();
    assert_eq!(ports, [12_000, 12_002, 12_004, 12_006]);
    // The RTCP port above each is bound too.
    assert!(std::net::UdpSocket::bind("127.0.0.1:12001").is_err());
    assert!(matches!(engine.allocate(), Err(SessionError::PortsExhausted(4))));
    assert_eq!(engine.free_port_pairs(), 0);

    sessions.pop().unwrap().close().await;
    assert_eq!(engine.free_port_pairs(), 1);
    sessions.push(engine.allocate().unwrap());
    // Closing bridged sessions releases both: peers hold each other weakly.
    sessions[0].bridge(&sessions[1]).await.unwrap();
    for session in sessions {
        session.close().await;
    }
    assert_eq!(engine.free_port_pairs(), 4);
}

#[tokio::test]
async fn bridged_sessions_relay_both_ways_and_transcode() {
    let engine = engine(12_100, |_| {});
    let (mut caller, mut agent) = (Phone::new(0xCA11).await, Phone::new(0xA6E7).await);
    let a = engine.allocate().unwrap();
    let b = engine.allocate().unwrap();
    a.set_remote(remote(&caller, Codec::Pcmu)).await.unwrap();
    b.set_remote(remote(&agent, Codec::Pcma)).await.unwrap();
    a.bridge(&b).await.unwrap();

    let ulaw: Vec<u8> = (0..160).map(|index| ulaw_encode((index * 200 - 16_000) as i16)).collect();
    let mut alaw = [0u8; 160];
    ulaw_to_alaw(&ulaw, &mut alaw).unwrap();
    const PACKETS: usize = 50;
    let mut to_agent = Vec::new();
    let mut to_caller = Vec::new();
    for _ in 0..PACKETS {
        caller.send(a.sdp_address(), 0, &ulaw).await;
        agent.send(b.sdp_address(), 8, &alaw).await;
        to_agent.push(agent.receive_rtp().await);
        to_caller.push(caller.receive_rtp().await);
    }
    // The agent hears the caller's µ-law as A-law, on one line of our own.
    for (index, (header, payload)) in to_agent.iter().enumerate() {
        assert_eq!((header.payload_type, payload.as_slice()), (8, alaw.as_slice()));
        assert_eq!(header.ssrc, to_agent[0].0.ssrc);
        assert_eq!(header.sequence, to_agent[0].0.sequence.wrapping_add(index as u16));
        assert_eq!(header.timestamp, to_agent[0].0.timestamp.wrapping_add(160 * index as u32));
    }
    assert_ne!(to_agent[0].0.ssrc, 0xCA11);
    // And the caller the agent's A-law as µ-law, the table's composition.
    let mut back = [0u8; 160];
    loket_media::g711::alaw_to_ulaw(&alaw, &mut back).unwrap();
    assert!(to_caller.iter().all(|(header, payload)| header.payload_type == 0 && payload == &back));

    let (a_stats, b_stats) = (a.stats(), b.stats());
    assert_eq!((a_stats.received_packets, a_stats.sent_packets), (PACKETS as u64, PACKETS as u64));
    assert_eq!((b_stats.received_packets, b_stats.sent_packets), (PACKETS as u64, PACKETS as u64));
    assert_eq!(a_stats.received_octets, 160 * PACKETS as u64);

    // Unbridged, nothing more passes.
    a.unbridge(&b).await.unwrap();
    caller.send(a.sdp_address(), 0, &ulaw).await;
    until(&a, |stats| stats.received_packets == PACKETS as u64 + 1).await;
    assert_eq!(agent.receive(Duration::from_millis(100)).await, None);
}

#[tokio::test]
async fn rfc4733_digits_from_the_core_sender_are_reported_once() {
    let engine = engine(12_200, |_| {});
    let phone = Phone::new(0xD7F).await;
    let mut session = engine.allocate().unwrap();
    session.set_remote(remote(&phone, Codec::Pcmu)).await.unwrap();
    for (index, digit) in [Digit::D1, Digit::Pound, Digit::D1].into_iter().enumerate() {
        let timestamp = 8000 * index as u32;
        let mut sender = DigitSender::new(digit, Duration::from_millis(120), 10, Instant::now(), 8000);
        let mut sequence = 100 * index as u16;
        while let Some(deadline) = sender.next_deadline() {
            tokio::time::sleep_until(deadline.into()).await;
            while let Some(packet) = sender.poll_packet(Instant::now()) {
                let header =
                    RtpHeader { marker: packet.marker, payload_type: EVENT_PT, sequence, timestamp, ssrc: 0xD7F };
                sequence += 1;
                phone.send_header(session.sdp_address(), header, &packet.event.to_bytes()).await;
            }
        }
        let event = wait_for(&mut session, |event| matches!(event, SessionEvent::Digit { .. })).await;
        assert_eq!(event, SessionEvent::Digit { digit, source: DigitSource::Rfc4733 });
    }
    // The three end packets of each digit did not report it again.
    assert_eq!(timeout(Duration::from_millis(200), session.next_event()).await.ok(), None);
}

#[tokio::test]
async fn inband_digits_are_detected_in_the_audio() {
    let engine = engine(12_300, |_| {});
    let mut phone = Phone::new(0x1BA).await;
    let mut session = engine.allocate().unwrap();
    session.set_remote(RemoteParams { inband_dtmf: true, ..remote(&phone, Codec::Pcmu) }).await.unwrap();
    let (low, high) = Digit::D5.frequencies();
    let mut sample_index = 0u32;
    // 100 ms of the tone pair at about −10 dBm0 each, then 100 ms of silence.
    for frame in 0..10 {
        let payload: Vec<u8> = (0..160)
            .map(|_| {
                let t = sample_index as f32 / 8000.0;
                sample_index += 1;
                let level = if frame < 5 { 3000.0 } else { 0.0 };
                let sample = level
                    * ((2.0 * std::f32::consts::PI * low * t).sin() + (2.0 * std::f32::consts::PI * high * t).sin());
                ulaw_encode(sample as i16)
            })
            .collect();
        phone.send(session.sdp_address(), 0, &payload).await;
    }
    let event = wait_for(&mut session, |event| matches!(event, SessionEvent::Digit { .. })).await;
    assert_eq!(event, SessionEvent::Digit { digit: Digit::D5, source: DigitSource::Inband });
}

#[tokio::test]
async fn latching_follows_the_source_and_refuses_a_hijack() {
    let window = Duration::from_millis(300);
    let engine =
        engine(12_400, |config| config.latch = LatchConfig { window, packets: 3, silence: Duration::from_millis(200) });
    let signalled = Phone::new(1).await;
    let (mut nat, mut intruder) = (Phone::new(2).await, Phone::new(3).await);
    let mut session = engine.allocate().unwrap();
    session.set_remote(remote(&signalled, Codec::Pcmu)).await.unwrap();
    session.play(vec![tone_prompt(10.0, 0x2A)], PlayOptions::default()).await.unwrap();
    // Until a packet comes, the prompt goes to the SDP address.
    assert_eq!(signalled.receive_rtp().await.1[0], 0x2A);

    nat.send(session.sdp_address(), 0, &[0xFF; 160]).await;
    assert_eq!(next_event(&mut session).await, SessionEvent::Latched(nat.address()));
    assert_eq!(nat.receive_rtp().await.1[0], 0x2A);

    // After the window, a stream injected while the caller talks is ignored.
    tokio::time::sleep(window).await;
    for _ in 0..10 {
        intruder.send(session.sdp_address(), 0, &[0xFF; 160]).await;
        intruder.send(session.sdp_address(), 0, &[0xFF; 160]).await;
        nat.send(session.sdp_address(), 0, &[0xFF; 160]).await;
    }
    until(&session, |stats| stats.foreign == 20 && stats.received_packets == 11).await;

    // The NAT rebinds: the old mapping goes silent and the new one takes over.
    let mut rebound = Phone::new(2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        rebound.send(session.sdp_address(), 0, &[0xFF; 160]).await;
    }
    assert_eq!(wait_for(&mut session, |_| true).await, SessionEvent::Latched(rebound.address()));
    assert_eq!(rebound.receive_rtp().await.1[0], 0x2A);
    assert!(intruder.receive(Duration::from_millis(60)).await.is_none());
}

#[tokio::test]
async fn the_media_timeout_fires_when_rtp_stops() {
    let media_timeout = Duration::from_millis(300);
    let engine = engine(12_500, |config| config.media_timeout = media_timeout);
    let mut phone = Phone::new(9).await;
    let mut session = engine.allocate().unwrap();
    session.set_remote(remote(&phone, Codec::Pcmu)).await.unwrap();
    for _ in 0..5 {
        phone.send(session.sdp_address(), 0, &[0xFF; 160]).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    until(&session, |stats| stats.received_packets == 5).await;
    let last_packet = Instant::now();
    assert_eq!(wait_for(&mut session, |_| true).await, SessionEvent::MediaTimeout);
    let after = last_packet.elapsed();
    assert!(after >= media_timeout - Duration::from_millis(30), "fired after {after:?}");
    assert!(after < media_timeout * 3, "fired after {after:?}");
    // Reported once, until media comes back and stops again.
    assert!(timeout(Duration::from_millis(400), session.next_event()).await.is_err());
    phone.send(session.sdp_address(), 0, &[0xFF; 160]).await;
    assert_eq!(wait_for(&mut session, |_| true).await, SessionEvent::MediaTimeout);
}

#[tokio::test]
async fn rtcp_reports_reflect_injected_loss_and_are_read_back() {
    let engine = engine(12_600, |config| config.rtcp_interval = Duration::from_millis(150));
    let mut phone = Phone::new(0x1055).await;
    let rtcp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let session = engine.allocate().unwrap();
    session
        .set_remote(RemoteParams { rtcp: Some(rtcp.local_addr().unwrap()), ..remote(&phone, Codec::Pcmu) })
        .await
        .unwrap();
    // 100 packets; every tenth is never sent.
    for index in 0..100 {
        if index % 10 == 3 {
            phone.sequence = phone.sequence.wrapping_add(1);
            phone.timestamp = phone.timestamp.wrapping_add(160);
            continue;
        }
        phone.send(session.sdp_address(), 0, &[0xFF; 160]).await;
    }
    until(&session, |stats| stats.received_packets == 90).await;
    let mut buffer = [0u8; 1500];
    let block = loop {
        let (length, _) = timeout(WAIT, rtcp.recv_from(&mut buffer)).await.expect("a report").unwrap();
        let report = parse_compound(&buffer[..length]).next().unwrap().unwrap();
        let RtcpPacket::ReceiverReport { blocks, .. } = report else {
            panic!("nothing sent yet, so an RR: {report:?}")
        };
        if let Some(block) = blocks.last().filter(|block| block.extended_highest_sequence == 1099) {
            break block;
        }
    };
    assert_eq!((block.ssrc, block.cumulative_lost), (0x1055, 10));

    // Once the session sends (a prompt), its reports are SRs; the phone's report about that
    // stream ends up in the session's statistics.
    session.play(vec![tone_prompt(5.0, 0x2A)], PlayOptions::default()).await.unwrap();
    let (ours, _) = phone.receive_rtp().await;
    let info = loop {
        let (length, _) = timeout(WAIT, rtcp.recv_from(&mut buffer)).await.expect("a report").unwrap();
        if let Some(Ok(RtcpPacket::SenderReport { ssrc, info, .. })) = parse_compound(&buffer[..length]).next() {
            assert_eq!(ssrc, ours.ssrc);
            break info;
        }
    };
    assert!(info.packet_count >= 1);
    let reported = ReportBlock {
        ssrc: ours.ssrc,
        fraction_lost: 64,
        cumulative_lost: 7,
        extended_highest_sequence: u32::from(ours.sequence),
        jitter: 12,
        last_sr: info.ntp.middle(),
        delay_since_last_sr: 0,
    };
    let length = write_report(0x1055, None, Some(reported), b"phone", &mut buffer).unwrap();
    let session_rtcp = SocketAddr::new(session.sdp_address().ip(), session.sdp_address().port() + 1);
    rtcp.send_to(&buffer[..length], session_rtcp).await.unwrap();
    until(&session, |stats| stats.remote_report == Some(reported)).await;
    let round_trip = session.stats().round_trip.expect("a round trip from LSR");
    assert!(round_trip < Duration::from_secs(2), "{round_trip:?}");
}

#[tokio::test]
async fn garbage_is_counted_and_the_session_goes_on() {
    let engine = engine(12_700, |_| {});
    let mut phone = Phone::new(5).await;
    let session = engine.allocate().unwrap();
    session.set_remote(remote(&phone, Codec::Pcmu)).await.unwrap();
    let rtcp_port = SocketAddr::new(session.sdp_address().ip(), session.sdp_address().port() + 1);
    let mut seed = 11u32;
    for round in 0..200usize {
        let mut datagram = [0u8; 64];
        for byte in &mut datagram {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *byte = (seed >> 24) as u8;
        }
        // Version 1 garbage is never RTP; on the RTCP port, half have version 2.
        datagram[0] = (datagram[0] & 0x3F) | if round % 2 == 0 { 0x40 } else { 0x80 };
        let length = round % 65;
        phone.socket.send_to(&datagram[..length], session.sdp_address()).await.unwrap();
        phone.socket.send_to(&datagram[..length], rtcp_port).await.unwrap();
    }
    phone.send(session.sdp_address(), 0, &[0xFF; 160]).await;
    until(&session, |stats| stats.received_packets == 1 && stats.malformed >= 100).await;
}

#[tokio::test]
async fn hold_plays_music_instead_of_the_peer_on_one_line() {
    let engine = engine(12_800, |_| {});
    let (mut caller, mut agent) = (Phone::new(0xCA11).await, Phone::new(0xA6E7).await);
    let (mut a, b) = (engine.allocate().unwrap(), engine.allocate().unwrap());
    a.set_remote(remote(&caller, Codec::Pcmu)).await.unwrap();
    b.set_remote(remote(&agent, Codec::Pcmu)).await.unwrap();
    a.bridge(&b).await.unwrap();
    agent.send(b.sdp_address(), 0, &[0x11; 160]).await;
    let (first, payload) = caller.receive_rtp().await;
    assert_eq!(payload[0], 0x11);

    a.hold(tone_prompt(60.0, 0x2A)).await.unwrap();
    let (music, payload) = caller.receive_rtp().await;
    assert_eq!(payload[0], 0x2A);
    assert!(music.marker, "the line's timeline moved: the marker says so");
    assert_eq!((music.ssrc, music.sequence), (first.ssrc, first.sequence.wrapping_add(1)));
    // While on hold, the agent's audio does not reach the caller, nor the caller's the agent.
    agent.send(b.sdp_address(), 0, &[0x11; 160]).await;
    caller.send(a.sdp_address(), 0, &[0x22; 160]).await;
    let mut last = music;
    for _ in 0..5 {
        let (header, payload) = caller.receive_rtp().await;
        assert_eq!(payload[0], 0x2A);
        assert_eq!(header.sequence, last.sequence.wrapping_add(1));
        last = header;
    }
    assert!(agent.receive(Duration::from_millis(50)).await.is_none());

    a.resume().await.unwrap();
    assert_eq!(wait_for(&mut a, |_| true).await, SessionEvent::PlaybackStopped);
    // Frames already in flight may still arrive; then the agent's voice, on the same line.
    agent.send(b.sdp_address(), 0, &[0x11; 160]).await;
    let resumed = loop {
        let (header, payload) = caller.receive_rtp().await;
        if payload[0] == 0x11 {
            break header;
        }
    };
    assert_eq!(resumed.ssrc, first.ssrc);
    assert!(resumed.marker);
}

/// A prompt during a hold (an announcement to the held caller) replaces the music, which comes
/// back when the prompt ends; a resume then stops the music only, and a prompt playing when the
/// caller is taken off hold plays to its end.
#[tokio::test]
async fn a_prompt_during_hold_gives_way_to_the_music_and_resume_spares_prompts() {
    let engine = engine(12_960, |_| {});
    let caller = Phone::new(0xCA12).await;
    let mut a = engine.allocate().unwrap();
    a.set_remote(remote(&caller, Codec::Pcmu)).await.unwrap();
    a.hold(tone_prompt(60.0, 0x2A)).await.unwrap();
    assert_eq!(caller.receive_rtp().await.1[0], 0x2A);
    a.play(vec![tone_prompt(0.1, 0x3B)], PlayOptions::default()).await.unwrap();
    assert_eq!(wait_for(&mut a, |_| true).await, SessionEvent::PlaybackStopped, "the music gave way");
    let heard = until_payload(&caller, 0x3B).await;
    assert_eq!(wait_for(&mut a, |_| true).await, SessionEvent::PlaybackFinished);
    assert!(heard < 10, "the prompt came at once");
    until_payload(&caller, 0x2A).await;

    // Off hold while a prompt plays: the prompt goes on to its end.
    a.play(vec![tone_prompt(0.2, 0x3B)], PlayOptions::default()).await.unwrap();
    assert_eq!(wait_for(&mut a, |_| true).await, SessionEvent::PlaybackStopped, "the music gave way again");
    until_payload(&caller, 0x3B).await;
    a.resume().await.unwrap();
    let mut prompt_frames = 0;
    loop {
        let event = timeout(Duration::from_millis(5), a.next_event()).await;
        if let Ok(Some(event)) = event {
            assert_ne!(event, SessionEvent::PlaybackStopped, "resume stopped the prompt");
            if event == SessionEvent::PlaybackFinished {
                break;
            }
        }
        if let Some(datagram) = caller.receive(Duration::from_millis(1)).await {
            let packet = RtpPacket::parse(&datagram).unwrap();
            assert_eq!(packet.payload[0], 0x3B, "nothing but the prompt");
            prompt_frames += 1;
        }
    }
    assert!(prompt_frames >= 3, "the prompt went on after the resume ({prompt_frames} frames)");
    // And the music does not come back after it.
    while let Some(datagram) = caller.receive(Duration::from_millis(100)).await {
        assert_ne!(RtpPacket::parse(&datagram).unwrap().payload[0], 0x2A, "music after the resume");
    }
}

/// Packets until one carries `payload` (frames in flight drain first); how many came before.
async fn until_payload(phone: &Phone, payload: u8) -> usize {
    for before in 0..100 {
        if phone.receive_rtp().await.1[0] == payload {
            return before;
        }
    }
    panic!("no packet of {payload:#x} in 100");
}

#[tokio::test]
async fn prompts_are_paced_at_20_ms_and_a_digit_stops_them() {
    let engine = engine(12_900, |_| {});
    let phone = Phone::new(0xB4).await;
    let mut session = engine.allocate().unwrap();
    session.set_remote(remote(&phone, Codec::Pcma)).await.unwrap();
    session.play(vec![tone_prompt(2.0, 0x2A)], PlayOptions { looping: false, barge_in: true }).await.unwrap();
    let mut arrivals = Vec::new();
    for _ in 0..26 {
        let (header, payload) = phone.receive_rtp().await;
        // A PCMA leg hears the µ-law prompt transcoded.
        let mut alaw = [0u8; 1];
        ulaw_to_alaw(&[0x2A], &mut alaw).unwrap();
        assert_eq!((header.payload_type, payload[0]), (8, alaw[0]));
        arrivals.push(Instant::now());
    }
    // 25 intervals of 20 ms: half a second, give or take a scheduling hiccup at either end.
    let span = arrivals[25] - arrivals[0];
    assert!(span >= Duration::from_millis(460) && span <= Duration::from_millis(560), "{span:?}");

    let mut sender = DigitSender::new(Digit::D0, Duration::from_millis(60), 10, Instant::now(), 8000);
    let packet = sender.poll_packet(Instant::now()).unwrap();
    let header = RtpHeader { marker: true, payload_type: EVENT_PT, sequence: 1, timestamp: 1, ssrc: 0xB4 };
    phone.send_header(session.sdp_address(), header, &packet.event.to_bytes()).await;
    assert_eq!(
        wait_for(&mut session, |event| matches!(event, SessionEvent::Digit { .. })).await,
        SessionEvent::Digit { digit: Digit::D0, source: DigitSource::Rfc4733 }
    );
    assert_eq!(next_event(&mut session).await, SessionEvent::PlaybackStopped);
    // Frames already sent drain; then nothing more comes.
    while phone.receive(Duration::from_millis(100)).await.is_some() {}
}

#[tokio::test]
async fn a_prompt_plays_to_its_end() {
    let engine = engine(12_940, |_| {});
    let phone = Phone::new(0xE).await;
    let mut session = engine.allocate().unwrap();
    session.set_remote(remote(&phone, Codec::Pcmu)).await.unwrap();
    session.play(vec![tone_prompt(0.1, 0x2A), tone_prompt(0.06, 0x3B)], PlayOptions::default()).await.unwrap();
    let mut payloads = Vec::new();
    for _ in 0..8 {
        payloads.push(phone.receive_rtp().await.1[0]);
    }
    assert_eq!(payloads, [0x2A, 0x2A, 0x2A, 0x2A, 0x2A, 0x3B, 0x3B, 0x3B]);
    assert_eq!(next_event(&mut session).await, SessionEvent::PlaybackFinished);
}
