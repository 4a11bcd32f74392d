//! Per-packet costs of the media core, for the comparison with rtpengine in issue #4 (≈ 13 µs of
//! CPU per relayed packet). Run with `cargo bench -p loket-media`; prints nanoseconds per
//! operation, the best of five rounds so that a neighbour's burst does not count.

use std::hint::black_box;
use std::time::{Duration, Instant};

use loket_media::dtmf::inband::InbandDetector;
use loket_media::g711::{ulaw_encode, ulaw_to_alaw};
use loket_media::mixer::{Coaching, CoachingRoles, Mixer};
use loket_media::relay::{RelayRewriter, Rewrite};
use loket_media::rtp::{RtpHeader, RtpPacket};

fn main() {
    println!("relay parse+rewrite+build, 172-byte packet: {:.1} ns/packet", best_of(5, relay));
    println!("PCMU→PCMA transcoding, 160 bytes: {:.1} ns/packet", best_of(5, transcode));
    println!("in-band DTMF detection, 20 ms frame: {:.1} ns/frame", best_of(5, detect));
    println!("3-party barge mix, 20 ms period: {:.1} ns/period", best_of(5, mix));
}

fn best_of(rounds: usize, run: fn() -> f64) -> f64 {
    (0..rounds).map(|_| run()).fold(f64::INFINITY, f64::min)
}

fn relay() -> f64 {
    const PACKETS: u32 = 2_000_000;
    let mut datagram = [0u8; 172];
    let header = RtpHeader { marker: false, payload_type: 0, sequence: 0, timestamp: 0, ssrc: 0x1234_5678 };
    header.write(&[0x55; 160], &mut datagram).unwrap();
    let mut rewriter = RelayRewriter::new(0xABCD_EF01, 1000, 99_000, 8000);
    let mut out = [0u8; 1500];
    let start = Instant::now();
    let clock = Instant::now();
    for index in 0..PACKETS {
        // What the socket would have delivered: the next packet of the stream, 20 ms later.
        datagram[2..4].copy_from_slice(&(index as u16).to_be_bytes());
        datagram[4..8].copy_from_slice(&(index.wrapping_mul(160)).to_be_bytes());
        let now = clock + Duration::from_millis(20) * index;
        let packet = RtpPacket::parse(black_box(&datagram)).unwrap();
        if let Rewrite::Forward(header) = rewriter.rewrite(now, &packet) {
            black_box(header.write(packet.payload, &mut out).unwrap());
        }
    }
    start.elapsed().as_nanos() as f64 / f64::from(PACKETS)
}

fn transcode() -> f64 {
    const PACKETS: u32 = 2_000_000;
    let payload: Vec<u8> = (0..160).map(|index| ulaw_encode((index * 397 % 65536 - 32768) as i16)).collect();
    let mut out = [0u8; 160];
    let start = Instant::now();
    for _ in 0..PACKETS {
        black_box(ulaw_to_alaw(black_box(&payload), &mut out));
    }
    start.elapsed().as_nanos() as f64 / f64::from(PACKETS)
}

fn detect() -> f64 {
    // One second of a two-harmonic voice-like signal with a little noise: no digit, so every check
    // of the classifier runs on every block.
    let mut seed = 1u32;
    let signal: Vec<i16> = (0..8000)
        .map(|index| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let t = f64::from(index) / 8000.0;
            let voice = 6000.0 * (2.0 * std::f64::consts::PI * 150.0 * t).sin()
                + 3000.0 * (2.0 * std::f64::consts::PI * 750.0 * t).sin();
            (voice + f64::from(seed >> 24) - 128.0) as i16
        })
        .collect();
    let mut detector = InbandDetector::default();
    let mut frames = 0u32;
    let start = Instant::now();
    for _ in 0..100 {
        for frame in signal.chunks(160) {
            detector.process(black_box(frame), |digit| {
                black_box(digit);
            });
            frames += 1;
        }
    }
    start.elapsed().as_nanos() as f64 / f64::from(frames)
}

fn mix() -> f64 {
    const PERIODS: u32 = 200_000;
    let mut mixer = Mixer::new();
    let roles = CoachingRoles {
        citizen: mixer.join().unwrap(),
        agent: mixer.join().unwrap(),
        supervisor: mixer.join().unwrap(),
    };
    mixer.set_coaching(roles, Coaching::Barge);
    let frame: [i16; 160] = std::array::from_fn(|index| (index as i16 - 80) * 300);
    let mut out = [0i16; 160];
    let start = Instant::now();
    for _ in 0..PERIODS {
        for participant in [roles.citizen, roles.agent, roles.supervisor] {
            mixer.put_frame(participant, black_box(&frame));
        }
        for participant in [roles.citizen, roles.agent, roles.supervisor] {
            mixer.mix_for(participant, &mut out);
            black_box(&out);
        }
        mixer.next_period();
    }
    start.elapsed().as_nanos() as f64 / f64::from(PERIODS)
}
