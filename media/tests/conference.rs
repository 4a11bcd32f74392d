//! The coaching mixer in the edge, with real RTP on loopback: a citizen, an agent and a
//! supervisor, each a socket sending a tone of its own every 20 ms. What each of them receives is
//! decoded and measured at the three tones, through listen, whisper and barge, switched during
//! the call, and after the supervisor leaves.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loket_media::edge::{Codec, Conference, Session};
use loket_media::g711::{decode_ulaw, ulaw_encode};
use loket_media::mixer::{Coaching, CoachingRoles};
use loket_media::rtp::{RtpHeader, RtpPacket};
use tokio::net::UdpSocket;

const CITIZEN_HZ: f64 = 500.0;
const AGENT_HZ: f64 = 1100.0;
const SUPERVISOR_HZ: f64 = 1900.0;

/// What a party received: each packet's arrival, sequence number and decoded audio.
type Received = Arc<Mutex<Vec<(Instant, u16, Vec<i16>)>>>;

/// A party on the phone: sends its tone to `session` every 20 ms and keeps what it receives,
/// until the test ends.
async fn party(session: &Session, hz: f64) -> Received {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    session.set_remote(common::remote(socket.local_addr().unwrap(), Codec::Pcmu)).await.unwrap();
    let to: SocketAddr = session.sdp_address();
    let received: Received = Arc::default();
    let keep = Arc::clone(&received);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        let (mut sequence, mut sample_index) = (0u16, 0u32);
        let mut buffer = [0u8; 1500];
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let frame: Vec<u8> = (0..160)
                        .map(|offset| {
                            let t = f64::from(sample_index + offset) / 8000.0;
                            ulaw_encode((8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
                        })
                        .collect();
                    let header =
                        RtpHeader { marker: false, payload_type: 0, sequence, timestamp: sample_index, ssrc: hz as u32 };
                    let mut datagram = [0u8; 200];
                    let length = header.write(&frame, &mut datagram).unwrap();
                    if socket.send_to(&datagram[..length], to).await.is_err() {
                        return;
                    }
                    sequence = sequence.wrapping_add(1);
                    sample_index += 160;
                }
                got = socket.recv_from(&mut buffer) => {
                    let Ok((length, _)) = got else { return };
                    let Ok(packet) = RtpPacket::parse(&buffer[..length]) else { continue };
                    let mut samples = vec![0i16; packet.payload.len()];
                    decode_ulaw(packet.payload, &mut samples).unwrap();
                    keep.lock().unwrap().push((Instant::now(), packet.sequence, samples));
                }
            }
            if Arc::strong_count(&keep) == 1 {
                return;
            }
        }
    });
    received
}

/// Which of the three tones a party heard in the last `window`: (citizen, agent, supervisor).
fn heard(received: &Received, window: Duration) -> (bool, bool, bool) {
    let since = Instant::now() - window;
    let samples: Vec<i16> =
        received.lock().unwrap().iter().filter(|(at, ..)| *at >= since).flat_map(|(.., s)| s.clone()).collect();
    assert!(samples.len() >= 8000 * window.as_millis() as usize / 1000 / 2, "audio kept coming");
    // Each party sends a tone of amplitude 8,000. Frames lost or skipped under load splice the
    // tones, which spreads a little energy over every frequency; an eighth of a tone's amplitude
    // is far above that and far below a tone.
    let loud = |hz| loket_media::tone::amplitude(&samples, hz) > 1_000.0;
    (loud(CITIZEN_HZ), loud(AGENT_HZ), loud(SUPERVISOR_HZ))
}

/// Lets `time` of the call pass, to be measured.
async fn talk(time: Duration) {
    tokio::time::sleep(time).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_whisper_and_barge_reach_exactly_who_they_should() {
    let engine = common::engine(13_400);
    let (citizen, agent, supervisor) =
        (engine.allocate().unwrap(), engine.allocate().unwrap(), engine.allocate().unwrap());
    let (to_citizen, to_agent, to_supervisor) =
        (party(&citizen, CITIZEN_HZ).await, party(&agent, AGENT_HZ).await, party(&supervisor, SUPERVISOR_HZ).await);

    let conference = Conference::start();
    let roles = CoachingRoles {
        citizen: conference.join(&citizen).await.unwrap(),
        agent: conference.join(&agent).await.unwrap(),
        supervisor: conference.join(&supervisor).await.unwrap(),
    };
    let window = Duration::from_millis(400);

    conference.set_coaching(roles, Coaching::Listen);
    talk(Duration::from_millis(600)).await;
    assert_eq!(heard(&to_supervisor, window), (true, true, false), "listen: the supervisor hears both");
    assert_eq!(heard(&to_agent, window), (true, false, false), "listen: the agent hears the citizen only");
    assert_eq!(heard(&to_citizen, window), (false, true, false), "listen: the citizen hears the agent only");

    conference.set_coaching(roles, Coaching::Whisper);
    talk(Duration::from_millis(600)).await;
    assert_eq!(heard(&to_agent, window), (true, false, true), "whisper: the agent hears the supervisor");
    assert_eq!(heard(&to_citizen, window), (false, true, false), "whisper: the citizen does not");

    conference.set_coaching(roles, Coaching::Barge);
    talk(Duration::from_millis(600)).await;
    assert_eq!(heard(&to_citizen, window), (false, true, true), "barge: the citizen hears the supervisor too");
    assert_eq!(heard(&to_agent, window), (true, false, true));
    assert_eq!(heard(&to_supervisor, window), (true, true, false));

    // The supervisor leaves: the other two go on hearing each other, and nothing of them.
    conference.leave(&supervisor, roles.supervisor).await;
    talk(Duration::from_millis(600)).await;
    assert_eq!(heard(&to_citizen, window), (false, true, false));
    assert_eq!(heard(&to_agent, window), (true, false, false));

    // Switching loses no period: the agent's line runs on without a gap in its numbering.
    let sequences: Vec<u16> = to_agent.lock().unwrap().iter().map(|(_, sequence, _)| *sequence).collect();
    assert!(sequences.len() >= 100, "{} packets", sequences.len());
    let gaps = sequences.windows(2).filter(|pair| pair[1] != pair[0].wrapping_add(1)).count();
    assert_eq!(gaps, 0, "{sequences:?}");
    conference.close().await;
}
