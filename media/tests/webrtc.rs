//! The browser's leg over real UDP on loopback, with str0m playing the browser (full ICE,
//! DTLS-SRTP, PCMU): its audio reaches a SIP phone bridged to the leg's session, and the phone's
//! reaches it. Chromium does the same in the end-to-end browser test.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loket_media::edge::{Codec, MediaEngine, WebRtcError};
use loket_media::rtp::{RtpHeader, RtpPacket};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

/// What the browser heard: each packet's payload.
type Heard = mpsc::UnboundedReceiver<Vec<u8>>;

/// A browser: str0m with full ICE as the controlling side, sending one recognisable payload every
/// 20 ms once connected, until the test ends.
async fn browser(engine: &MediaEngine, payload: Vec<u8>) -> (loket_media::edge::WebRtcLeg, Heard) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let mut rtc = RtcConfig::new()
        .clear_codecs()
        .enable_pcmu(true, false)
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().unwrap();
    let (leg, answer) = engine.accept_webrtc(&offer.to_sdp_string()).await.unwrap();
    assert!(answer.contains("PCMU/8000") && !answer.contains("opus"), "PCMU only: {answer}");
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();

    let (heard, hearing) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 2000];
        let mut connected = false;
        let mut next_frame = Instant::now();
        let mut timestamp = 0u64;
        loop {
            let deadline = loop {
                match rtc.poll_output().unwrap() {
                    Output::Timeout(at) => break at,
                    Output::Transmit(transmit) => {
                        let _ = socket.send_to(&transmit.contents, transmit.destination).await;
                    }
                    Output::Event(Event::Connected) => connected = true,
                    Output::Event(Event::MediaData(data)) => {
                        if heard.send(data.data.to_vec()).is_err() {
                            return;
                        }
                    }
                    Output::Event(_) => {}
                }
            };
            let deadline = if connected { deadline.min(next_frame) } else { deadline };
            tokio::select! {
                received = socket.recv_from(&mut buffer) => {
                    let (length, source) = received.unwrap();
                    let contents = buffer[..length].try_into().unwrap();
                    let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination: local, contents });
                    rtc.handle_input(input).unwrap();
                }
                () = tokio::time::sleep_until(deadline.into()) => {
                    let now = Instant::now();
                    if connected && now >= next_frame {
                        let writer = rtc.writer(mid).unwrap();
                        let pt = writer.payload_params().next().unwrap().pt();
                        writer.write(pt, now, MediaTime::new(timestamp, Frequency::EIGHT_KHZ), payload.clone()).unwrap();
                        timestamp += 160;
                        next_frame += Duration::from_millis(20);
                    }
                    rtc.handle_input(Input::Timeout(now)).unwrap();
                }
            }
            if heard.is_closed() {
                return;
            }
        }
    });
    (leg, hearing)
}

async fn phone_socket() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    (socket, address)
}

#[tokio::test]
async fn a_browser_and_a_phone_hear_each_other_through_the_leg() {
    let engine = common::engine(13_500);
    let all = engine.free_port_pairs();
    let (leg, mut heard) = browser(&engine, vec![0x11; 160]).await;
    let (phone, phone_address) = phone_socket().await;
    let sip = engine.allocate().unwrap();
    sip.set_remote(common::remote(phone_address, Codec::Pcma)).await.unwrap();
    sip.bridge(leg.session()).await.unwrap();

    // The browser's µ-law reaches the A-law phone, converted by table.
    let mut buffer = [0u8; 1500];
    let mut expected = [0u8; 160];
    loket_media::g711::ulaw_to_alaw(&[0x11; 160], &mut expected).unwrap();
    let (length, _) = timeout(WAIT, phone.recv_from(&mut buffer)).await.expect("the browser's audio").unwrap();
    let packet = RtpPacket::parse(&buffer[..length]).unwrap();
    assert_eq!((packet.payload_type, packet.payload), (8, &expected[..]));

    // The phone's audio reaches the browser as µ-law.
    let mut alaw = [0u8; 160];
    loket_media::g711::ulaw_to_alaw(&[0x22; 160], &mut alaw).unwrap();
    let deadline = Instant::now() + WAIT;
    let mut sequence = 7u16;
    let got = loop {
        assert!(Instant::now() < deadline, "the phone's audio did not reach the browser");
        let header =
            RtpHeader { marker: false, payload_type: 8, sequence, timestamp: u32::from(sequence) * 160, ssrc: 0xF0E };
        sequence += 1;
        let mut datagram = [0u8; 200];
        let length = header.write(&alaw, &mut datagram).unwrap();
        phone.send_to(&datagram[..length], sip.sdp_address()).await.unwrap();
        match timeout(Duration::from_millis(20), heard.recv()).await {
            Ok(Some(payload)) if payload == vec![0x22; 160] => break payload,
            Ok(None) => panic!("the browser stopped"),
            _ => {}
        }
    };
    assert_eq!(got.len(), 160);
    let stats = leg.session().stats();
    assert!(stats.received_packets > 0 && stats.sent_packets > 0, "{stats:?}");
    assert!(!leg.is_ended());

    // Ended through a shared reference (a newer softphone replaces it), it says so.
    leg.end();
    timeout(WAIT, leg.ended()).await.expect("the leg ends");
    assert!(leg.is_ended());
    // The phone's session goes first: a bridged peer forwarding a packet holds the leg's ports
    // for that moment.
    sip.close().await;
    leg.close().await;
    assert_eq!(engine.free_port_pairs(), all, "the gateway's pair and the sessions' are back");
}

#[tokio::test]
async fn an_unusable_offer_is_refused_and_holds_no_port() {
    let engine = common::engine(13_540);
    let free = engine.free_port_pairs();
    let error = engine.accept_webrtc("v=0\r\nthis is no SDP\r\n").await.unwrap_err();
    assert!(matches!(error, WebRtcError::Offer(_)), "{error:?}");
    assert_eq!(engine.free_port_pairs(), free);
}
