//! The UDP edge with real RTP on loopback: sessions, bridging, DTMF received and sent, latching,
//! the media timeout, RTCP and playback. Every wait has a deadline; nothing sleeps hoping that
//! something happened, only to let a configured interval pass.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use loket_media::dtmf::Digit;
use loket_media::dtmf::inband::InbandDetector;
use loket_media::dtmf::rfc4733::{DigitSender, DtmfEvent, DtmfReceiver, TelephoneEvent};
use loket_media::edge::{
    Codec, DigitSource, MediaConfig, MediaEngine, PlayOptions, RemoteParams, Session, SessionError, SessionEvent,
};
use loket_media::g711::{alaw_to_ulaw, decode_alaw, decode_ulaw, ulaw_encode, ulaw_to_alaw};
use loket_media::latch::LatchConfig;
use loket_media::playback::Prompt;
use loket_media::rtcp::{ReportBlock, RtcpPacket, parse_compound, write_report};
use loket_media::rtp::{RtpHeader, RtpPacket, ts_delta};
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
    alaw_to_ulaw(&alaw, &mut back).unwrap();
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
    // The session adds its frame ticks to the engine's pace when it ends: one per wake-up that
    // sent frames, and a late wake-up may send two.
    assert_eq!(engine.pace().ticks, 0);
    session.close().await;
    let pace = engine.pace();
    assert!((4..=8).contains(&pace.ticks) && pace.late <= pace.ticks, "{pace:?}");
}

/// Silence on the line for this long: a session has nothing more to send.
const QUIET: Duration = Duration::from_millis(300);

/// Every datagram `phone` receives until none comes for `quiet`.
async fn receive_until_quiet(phone: &Phone, quiet: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + WAIT;
    let mut heard = Vec::new();
    while let Some(datagram) = phone.receive(quiet).await {
        assert!(Instant::now() < deadline, "the line never went quiet");
        heard.push(datagram);
    }
    heard
}

/// `talker` sends `packets` packets of `payload` to `to`, one every 20 ms; what `listener` receives
/// meanwhile, and until it has been quiet for 100 ms, is returned.
async fn talk(
    talker: &mut Phone,
    to: SocketAddr,
    (payload_type, payload): (u8, &[u8]),
    listener: &Phone,
    packets: u32,
) -> Vec<Vec<u8>> {
    let start = Instant::now();
    let mut heard = Vec::new();
    for index in 1..=packets {
        talker.send(to, payload_type, payload).await;
        let next = start + Duration::from_millis(20) * index;
        while let Some(datagram) = listener.receive(next.saturating_duration_since(Instant::now())).await {
            heard.push(datagram);
        }
    }
    heard.extend(receive_until_quiet(listener, Duration::from_millis(100)).await);
    heard
}

fn parse_all(heard: &[Vec<u8>]) -> Vec<RtpPacket<'_>> {
    heard.iter().map(|datagram| RtpPacket::parse(datagram).unwrap()).collect()
}

/// Everything a leg heard came on one line: one SSRC, consecutive sequence numbers (loopback
/// loses and reorders nothing).
fn assert_one_line(packets: &[RtpPacket<'_>]) {
    for pair in packets.windows(2) {
        assert_eq!(pair[1].ssrc, pair[0].ssrc);
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1), "{pair:?}");
    }
}

/// One digit's telephone-events as `DigitSender` schedules a 100 ms digit at volume 10: five
/// packets with the marker on the first, all with the timestamp of the event's start, the
/// duration growing to 800 ticks, the end bit on the last three.
fn assert_event(packets: &[RtpPacket<'_>], digit: Digit) {
    assert_eq!(packets.len(), 5, "{packets:?}");
    let events: Vec<TelephoneEvent> =
        packets.iter().map(|packet| TelephoneEvent::parse(packet.payload).unwrap()).collect();
    assert!(packets.iter().all(|packet| packet.payload_type == EVENT_PT && packet.timestamp == packets[0].timestamp));
    assert_eq!(packets.iter().map(|packet| packet.marker).collect::<Vec<_>>(), [true, false, false, false, false]);
    assert!(events.iter().all(|event| event.event == digit.event_code() && event.volume == 10), "{events:?}");
    assert_eq!(events.iter().map(|event| event.end).collect::<Vec<_>>(), [false, false, true, true, true]);
    assert!(events.windows(2).all(|pair| pair[0].duration <= pair[1].duration), "{events:?}");
    assert_eq!(events[4].duration, 800);
}

/// What a far end's RFC 4733 receiver makes of the telephone-events among `packets`.
fn received_events(packets: &[RtpPacket<'_>]) -> Vec<DtmfEvent> {
    let mut receiver = DtmfReceiver::new(8000);
    for packet in packets.iter().filter(|packet| packet.payload_type == EVENT_PT) {
        receiver.handle_packet(Instant::now(), packet);
    }
    std::iter::from_fn(|| receiver.poll_event()).collect()
}

/// The digits loket's own in-band detector hears in a leg's G.711 audio.
fn inband_digits(codec: Codec, packets: &[RtpPacket<'_>]) -> Vec<Digit> {
    let mut detector = InbandDetector::default();
    let mut digits = Vec::new();
    for packet in packets {
        let mut samples = [0i16; 1500];
        let length = match codec {
            Codec::Pcmu => decode_ulaw(packet.payload, &mut samples),
            Codec::Pcma => decode_alaw(packet.payload, &mut samples),
        };
        detector.process(&samples[..length.unwrap()], |digit| digits.push(digit));
    }
    digits
}

fn pressed(digit: Digit) -> [DtmfEvent; 2] {
    [DtmfEvent::Began { digit }, DtmfEvent::Ended { digit, duration: Duration::from_millis(100) }]
}

#[tokio::test]
async fn digits_go_as_telephone_events_on_the_sessions_line() {
    let engine = engine(13_700, |_| {});
    let phone = Phone::new(0xD1).await;
    let mut session = engine.allocate().unwrap();
    assert!(matches!(session.send_digit(Digit::D5).await, Err(SessionError::NoRemote)));
    session.set_remote(remote(&phone, Codec::Pcmu)).await.unwrap();

    // A digit while a prompt plays: the prompt gives way to the event and comes back after it,
    // all on the line the prompt started.
    session.play(vec![tone_prompt(0.6, 0x2A)], PlayOptions::default()).await.unwrap();
    let mut heard = Vec::new();
    for _ in 0..3 {
        heard.push(phone.receive(WAIT).await.expect("a prompt frame"));
    }
    session.send_digit(Digit::D5).await.unwrap();
    heard.extend(receive_until_quiet(&phone, QUIET).await);
    assert_eq!(next_event(&mut session).await, SessionEvent::PlaybackFinished);
    let packets = parse_all(&heard);
    assert_one_line(&packets);
    let first = packets.iter().position(|packet| packet.payload_type == EVENT_PT).unwrap();
    let last = packets.iter().rposition(|packet| packet.payload_type == EVENT_PT).unwrap();
    assert_event(&packets[first..=last], Digit::D5);
    assert!(first >= 3 && packets[..first].iter().all(|packet| packet.payload[0] == 0x2A));
    // The event starts after the last frame (by the time that passed, a frame's at least), and
    // the prompt comes back stamped after the event's slot (160 ms), with the marker.
    let (before, event, after) = (&packets[first - 1], &packets[first], &packets[last + 1]);
    let gap = ts_delta(event.timestamp, before.timestamp);
    assert!((160..800).contains(&gap), "the event {gap} ticks after the last frame");
    assert!(after.marker && after.payload[0] == 0x2A);
    assert!(ts_delta(after.timestamp, event.timestamp) >= 1280, "{after:?} after {event:?}");
    assert!(packets[last + 1..].iter().all(|packet| packet.payload_type == 0));
    assert_eq!(received_events(&packets), pressed(Digit::D5));

    // Digits sent back to back go one after another, as two events a slot apart.
    session.send_digit(Digit::D1).await.unwrap();
    session.send_digit(Digit::Pound).await.unwrap();
    let heard_after = receive_until_quiet(&phone, QUIET).await;
    let events = parse_all(&heard_after);
    assert_eq!(events.len(), 10);
    assert_event(&events[..5], Digit::D1);
    assert_event(&events[5..], Digit::Pound);
    assert_one_line(&events);
    assert_eq!(events[0].sequence, packets.last().unwrap().sequence.wrapping_add(1));
    assert_eq!(ts_delta(events[5].timestamp, events[0].timestamp), 1280);
    assert_eq!(received_events(&events), [pressed(Digit::D1), pressed(Digit::Pound)].concat());
}

#[tokio::test]
async fn digits_go_in_band_to_a_far_end_without_telephone_events() {
    let engine = engine(13_740, |_| {});
    let phone = Phone::new(0x1B).await;
    let session = engine.allocate().unwrap();
    let no_events = |codec| RemoteParams { telephone_event: None, ..remote(&phone, codec) };
    session.set_remote(no_events(Codec::Pcmu)).await.unwrap();
    session.send_digit(Digit::D5).await.unwrap();
    let heard = receive_until_quiet(&phone, QUIET).await;
    let packets = parse_all(&heard);
    // 100 ms of the tones and 60 ms of silence, as audio on the session's line.
    assert_eq!(packets.len(), 8);
    assert!(packets.iter().all(|packet| packet.payload_type == 0));
    assert_one_line(&packets);
    assert_eq!(inband_digits(Codec::Pcmu, &packets), [Digit::D5]);
    let mut samples = [0i16; 800];
    for (packet, frame) in packets.iter().zip(samples.chunks_mut(160)) {
        decode_ulaw(packet.payload, frame).unwrap();
    }
    // Each tone at about −10 dBm0 (a peak of 7,160 in 16-bit units).
    let (row, column) = Digit::D5.frequencies();
    for frequency in [row, column] {
        let amplitude = loket_media::tone::amplitude(&samples, f64::from(frequency));
        assert!((6_400.0..8_000.0).contains(&amplitude), "{frequency} Hz at {amplitude}");
    }

    // In the leg's codec after a re-INVITE; a repeated digit is heard twice, the pause between.
    session.set_remote(no_events(Codec::Pcma)).await.unwrap();
    for digit in [Digit::D9, Digit::D9, Digit::Star] {
        session.send_digit(digit).await.unwrap();
    }
    let heard = receive_until_quiet(&phone, QUIET).await;
    let packets = parse_all(&heard);
    assert_eq!(packets.len(), 24);
    assert!(packets.iter().all(|packet| packet.payload_type == 8));
    assert_one_line(&packets);
    assert_eq!(inband_digits(Codec::Pcma, &packets), [Digit::D9, Digit::D9, Digit::Star]);
}

#[tokio::test]
async fn digits_on_a_bridged_leg_take_the_place_of_the_relayed_audio() {
    let engine = engine(13_780, |_| {});
    let (mut caller, mut agent) = (Phone::new(0xCA11).await, Phone::new(0xA6E7).await);
    let (a, b) = (engine.allocate().unwrap(), engine.allocate().unwrap());
    a.set_remote(remote(&caller, Codec::Pcmu)).await.unwrap();
    // The other side (a trunk, say) takes no telephone-events, and speaks A-law.
    b.set_remote(RemoteParams { telephone_event: None, ..remote(&agent, Codec::Pcma) }).await.unwrap();
    a.bridge(&b).await.unwrap();
    // A voice at 400 Hz, far from the DTMF frequencies: 8 whole periods per packet.
    let voice: Vec<u8> = (0..160)
        .map(|n| ulaw_encode((3000.0 * (2.0 * std::f32::consts::PI * 400.0 * n as f32 / 8000.0).sin()) as i16))
        .collect();
    let (mut voice_alaw, mut voice_back) = ([0u8; 160], [0u8; 160]);
    ulaw_to_alaw(&voice, &mut voice_alaw).unwrap();
    // What the caller hears of it: A-law back to µ-law, by the table.
    alaw_to_ulaw(&voice_alaw, &mut voice_back).unwrap();

    // Events to the caller while the other side talks: the relayed audio stops for their slots
    // and comes back after, on one line.
    let mut heard = talk(&mut agent, b.sdp_address(), (8, &voice_alaw), &caller, 5).await;
    a.send_digit(Digit::D7).await.unwrap();
    a.send_digit(Digit::D8).await.unwrap();
    heard.extend(talk(&mut agent, b.sdp_address(), (8, &voice_alaw), &caller, 25).await);
    let packets = parse_all(&heard);
    assert_one_line(&packets);
    let first = packets.iter().position(|packet| packet.payload_type == EVENT_PT).unwrap();
    let last = packets.iter().rposition(|packet| packet.payload_type == EVENT_PT).unwrap();
    assert_eq!(last + 1 - first, 10, "no audio between the events");
    assert_event(&packets[first..first + 5], Digit::D7);
    assert_event(&packets[first + 5..=last], Digit::D8);
    assert_eq!(received_events(&packets), [pressed(Digit::D7), pressed(Digit::D8)].concat());
    let after = &packets[last + 1..];
    assert!(first >= 3 && after.len() >= 3, "audio before ({first}) and after ({})", after.len());
    assert!(after.iter().all(|packet| packet.payload_type == 0 && packet.payload == voice_back.as_slice()));
    assert!(after[0].marker);
    assert!(ts_delta(after[0].timestamp, packets[last].timestamp) >= 1280);

    // Tones to the other side while the caller talks: they replace the caller's voice, which
    // comes back after.
    let mut heard = talk(&mut caller, a.sdp_address(), (0, &voice), &agent, 5).await;
    b.send_digit(Digit::D3).await.unwrap();
    heard.extend(talk(&mut caller, a.sdp_address(), (0, &voice), &agent, 20).await);
    let packets = parse_all(&heard);
    assert_one_line(&packets);
    assert!(packets.iter().all(|packet| packet.payload_type == 8));
    assert_eq!(inband_digits(Codec::Pcma, &packets), [Digit::D3]);
    let is_voice = |packet: &RtpPacket<'_>| packet.payload == voice_alaw.as_slice();
    let tone_start = packets.iter().position(|packet| !is_voice(packet)).unwrap();
    let tone_end = packets.iter().rposition(|packet| !is_voice(packet)).unwrap();
    assert_eq!(tone_end + 1 - tone_start, 8, "the digit's slot, whole");
    assert!(tone_start >= 3 && packets.len() - tone_end > 3, "the voice before and after");
}
