//! The recording timeline, faster than real time: generated tones on one or both sides, loss,
//! jitter and reordering, late packets, codec and source changes, frozen timestamps, clock drift.
//! Every sample of the output is checked against where it belongs.

use std::time::{Duration, Instant};

use loket_media::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};
use loket_media::recording::{Aligner, Audio, DELAY, DRIFT_SLACK, Direction, TrackStats};

const FRAME: usize = 160;

fn tone(frequency: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|index| (8000.0 * (2.0 * std::f64::consts::PI * frequency * index as f64 / 8000.0).sin()) as i16)
        .collect()
}

fn ulaw(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&sample| ulaw_encode(sample)).collect()
}

fn alaw(samples: &[i16]) -> Vec<u8> {
    samples.iter().map(|&sample| alaw_encode(sample)).collect()
}

/// The samples a PCMU packet of `samples` decodes to.
fn through_ulaw(samples: &[i16]) -> Vec<i16> {
    samples.iter().map(|&sample| ulaw_decode(ulaw_encode(sample))).collect()
}

/// A packet on its way: when it arrives (µs after the start), and what it is.
#[derive(Clone)]
struct Packet {
    arrival_us: u64,
    direction: Direction,
    ssrc: u32,
    timestamp: u32,
    payload: Payload,
}

#[derive(Clone)]
enum Payload {
    Pcmu(Vec<u8>),
    Pcma(Vec<u8>),
    Linear(Vec<i16>),
}

/// A stream of 20 ms packets cut from `samples`, arriving on the 20 ms grid after `offset_us`.
fn stream(direction: Direction, ssrc: u32, first_timestamp: u32, offset_us: u64, samples: &[i16]) -> Vec<Packet> {
    samples
        .chunks(FRAME)
        .enumerate()
        .map(|(index, chunk)| Packet {
            arrival_us: offset_us + 20_000 * index as u64,
            direction,
            ssrc,
            timestamp: first_timestamp.wrapping_add((index * FRAME) as u32),
            payload: Payload::Pcmu(ulaw(chunk)),
        })
        .collect()
}

struct Recording {
    start: Instant,
    aligner: Aligner,
    /// Interleaved output.
    out: Vec<i16>,
}

impl Recording {
    fn new() -> Recording {
        let start = Instant::now();
        Recording { start, aligner: Aligner::new(start), out: Vec::new() }
    }

    fn at(&self, us: u64) -> Instant {
        self.start + Duration::from_micros(us)
    }

    /// Pushes the packets in the order they arrive.
    fn play(&mut self, mut packets: Vec<Packet>) {
        packets.sort_by_key(|packet| packet.arrival_us);
        for packet in packets {
            let now = self.at(packet.arrival_us);
            let audio = match &packet.payload {
                Payload::Pcmu(codes) => Audio::Pcmu(codes),
                Payload::Pcma(codes) => Audio::Pcma(codes),
                Payload::Linear(samples) => Audio::Linear(samples),
            };
            let out = &mut self.out;
            self.aligner.push(now, packet.direction, packet.ssrc, packet.timestamp, audio, |frames| {
                out.extend_from_slice(frames)
            });
        }
    }

    fn finish(&mut self, us: u64) {
        let now = self.at(us);
        let out = &mut self.out;
        self.aligner.finish(now, |frames| out.extend_from_slice(frames));
    }

    fn channel(&self, direction: Direction) -> Vec<i16> {
        let channel = if direction == Direction::FromLeg { 0 } else { 1 };
        self.out.chunks(2).map(|frame| frame[channel]).collect()
    }

    fn stats(&self, direction: Direction) -> TrackStats {
        self.aligner.stats(direction)
    }
}

/// `expected` at `offset` in a channel of `length` frames, silence elsewhere.
fn placed(length: usize, offset: usize, expected: &[i16]) -> Vec<i16> {
    let mut channel = vec![0; length];
    channel[offset..offset + expected.len()].copy_from_slice(expected);
    channel
}

/// Deterministic pseudo-random numbers for jitter.
fn lcg(seed: &mut u32) -> u32 {
    *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
    *seed >> 8
}

#[test]
fn a_tone_on_one_side_and_silence_on_the_other() {
    let mut recording = Recording::new();
    let caller = tone(440.0, 2 * 8000);
    // Timestamps cross the 2^32 wrap half-way through; the first packet arrives 5 ms in.
    recording.play(stream(Direction::FromLeg, 0xCA11, u32::MAX - 8000, 5_000, &caller));
    recording.finish(2_500_000);
    assert_eq!(recording.aligner.frames(), 20_000);
    assert_eq!(recording.channel(Direction::FromLeg), placed(20_000, 40, &through_ulaw(&caller)));
    assert_eq!(recording.channel(Direction::ToLeg), vec![0; 20_000]);
    let stats = recording.stats(Direction::FromLeg);
    assert_eq!((stats.packets, stats.late_packets, stats.reanchors), (100, 0, 0));
}

#[test]
fn both_sides_land_where_they_arrived_whatever_their_timestamps() {
    let mut recording = Recording::new();
    let (caller, agent) = (tone(440.0, 8000), tone(880.0, 8000));
    let mut packets = stream(Direction::FromLeg, 1, 3_000_000_000, 5_000, &caller);
    packets.extend(stream(Direction::ToLeg, 2, 17, 12_000, &agent));
    recording.play(packets);
    recording.finish(1_200_000);
    assert_eq!(recording.channel(Direction::FromLeg), placed(9600, 40, &through_ulaw(&caller)));
    assert_eq!(recording.channel(Direction::ToLeg), placed(9600, 96, &through_ulaw(&agent)));
}

#[test]
fn lost_packets_leave_silence_and_move_nothing() {
    let mut recording = Recording::new();
    let caller = tone(440.0, 8000);
    let packets: Vec<Packet> = stream(Direction::FromLeg, 1, 1000, 0, &caller)
        .into_iter()
        .enumerate()
        .filter(|(index, _)| index % 7 != 3)
        .map(|(_, packet)| packet)
        .collect();
    recording.play(packets);
    recording.finish(1_000_000);
    let mut expected = through_ulaw(&caller);
    for lost in (3..50).step_by(7) {
        expected[lost * FRAME..(lost + 1) * FRAME].fill(0);
    }
    assert_eq!(recording.channel(Direction::FromLeg), expected);
}

#[test]
fn jitter_and_reordering_within_the_delay_change_nothing() {
    let mut recording = Recording::new();
    let (caller, agent) = (tone(440.0, 3 * 8000), tone(880.0, 3 * 8000));
    let mut seed = 7;
    let mut jittered = |mut packets: Vec<Packet>| {
        // The first packet is on time; every other one is 0–150 ms late, which reorders many.
        for packet in packets.iter_mut().skip(1) {
            packet.arrival_us += u64::from(lcg(&mut seed) % 150_000);
        }
        packets
    };
    let mut packets = jittered(stream(Direction::FromLeg, 1, 99, 0, &caller));
    packets.extend(jittered(stream(Direction::ToLeg, 2, 12345, 0, &agent)));
    let arrivals: Vec<u64> = packets
        .iter()
        .filter(|packet| packet.direction == Direction::FromLeg)
        .map(|packet| packet.arrival_us)
        .collect();
    let reordered = arrivals.windows(2).filter(|pair| pair[1] < pair[0]).count();
    assert!(reordered > 30, "{reordered}");
    recording.play(packets);
    recording.finish(3_000_000);
    assert_eq!(recording.channel(Direction::FromLeg), through_ulaw(&caller));
    assert_eq!(recording.channel(Direction::ToLeg), through_ulaw(&agent));
    for direction in [Direction::FromLeg, Direction::ToLeg] {
        let stats = recording.stats(direction);
        assert_eq!((stats.packets, stats.late_packets, stats.reanchors, stats.drift_corrections), (150, 0, 0, 0));
    }
}

#[test]
fn a_packet_later_than_the_delay_is_dropped_and_counted() {
    let mut recording = Recording::new();
    let caller = tone(440.0, 8000);
    let mut packets = stream(Direction::FromLeg, 1, 0, 0, &caller);
    packets[10].arrival_us += DELAY.as_micros() as u64 + 40_000;
    recording.play(packets);
    recording.finish(1_000_000);
    let mut expected = through_ulaw(&caller);
    expected[10 * FRAME..11 * FRAME].fill(0);
    assert_eq!(recording.channel(Direction::FromLeg), expected);
    let stats = recording.stats(Direction::FromLeg);
    assert_eq!((stats.late_packets, stats.late_samples, stats.reanchors), (1, FRAME as u64, 0));
}

#[test]
fn a_late_first_packet_is_overtaken_by_the_next_ones() {
    let mut recording = Recording::new();
    let caller = tone(440.0, 8000);
    let mut packets = stream(Direction::FromLeg, 1, 0, 0, &caller);
    // 15 ms late: it still arrives first, and anchors the line 120 frames late. The second is on
    // time, and the others up to 100 ms late: they must land by their timestamps, not arrivals.
    packets[0].arrival_us += 15_000;
    let mut seed = 3;
    for packet in packets.iter_mut().skip(2) {
        packet.arrival_us += u64::from(lcg(&mut seed) % 100_000);
    }
    recording.play(packets);
    recording.finish(1_000_000);
    let channel = recording.channel(Direction::FromLeg);
    let expected = through_ulaw(&caller);
    // The second packet pulls the line back to its arrival; from there on, every sample is in place.
    assert_eq!(channel[FRAME..], expected[FRAME..]);
    assert_eq!(channel[..120], [0; 120]);
    assert_eq!(channel[120..FRAME], expected[..40]);
    assert_eq!(recording.stats(Direction::FromLeg).reanchors, 0);
}

#[test]
fn a_codec_change_and_a_new_source_continue_the_channel() {
    let mut recording = Recording::new();
    let caller = tone(440.0, 3 * 8000);
    let (first, rest) = caller.split_at(8000);
    let (second, third) = rest.split_at(8000);
    // One second of PCMU, then the same line switches to PCMA (a re-INVITE keeping the SSRC),
    // then a new source with its own timestamps, still PCMA.
    let mut packets = stream(Direction::FromLeg, 1, 5000, 0, first);
    let mut switched = stream(Direction::FromLeg, 1, 5000 + 8000, 1_000_000, second);
    switched.extend(stream(Direction::FromLeg, 2, 777_777, 2_000_000, third));
    for packet in &mut switched {
        let Payload::Pcmu(codes) = &packet.payload else { unreachable!() };
        let samples: Vec<i16> = codes.iter().map(|&code| ulaw_decode(code)).collect();
        packet.payload = Payload::Pcma(alaw(&samples));
    }
    packets.extend(switched);
    recording.play(packets);
    recording.finish(3_000_000);
    let channel = recording.channel(Direction::FromLeg);
    let expected_pcma: Vec<i16> = through_ulaw(rest).iter().map(|&sample| alaw_decode(alaw_encode(sample))).collect();
    assert_eq!(channel[..8000], through_ulaw(first)[..]);
    assert_eq!(channel[8000..], expected_pcma[..]);
    assert_eq!(recording.stats(Direction::FromLeg).reanchors, 1);
}

#[test]
fn timestamps_frozen_during_a_pause_start_a_new_line() {
    let mut recording = Recording::new();
    let caller = tone(440.0, 2 * 8000);
    let (before, after) = caller.split_at(8000);
    let mut packets = stream(Direction::FromLeg, 1, 0, 0, before);
    // Two seconds without packets; then the phone goes on where its timestamps stood.
    packets.extend(stream(Direction::FromLeg, 1, 8000, 3_000_000, after));
    recording.play(packets);
    recording.finish(4_000_000);
    let mut expected = vec![0; 32_000];
    expected[..8000].copy_from_slice(&through_ulaw(before));
    expected[24_000..].copy_from_slice(&through_ulaw(after));
    assert_eq!(recording.channel(Direction::FromLeg), expected);
    let stats = recording.stats(Direction::FromLeg);
    assert_eq!((stats.late_packets, stats.reanchors), (0, 1));

    // A phone whose timestamps go on through the pause (silence suppression) keeps its line.
    let mut recording = Recording::new();
    let mut packets = stream(Direction::FromLeg, 1, 0, 0, before);
    packets.extend(stream(Direction::FromLeg, 1, 24_000, 3_000_000, after));
    recording.play(packets);
    recording.finish(4_000_000);
    assert_eq!(recording.channel(Direction::FromLeg), expected);
    assert_eq!(recording.stats(Direction::FromLeg).reanchors, 0);
}

/// Packets of 160 samples whose every sample is the packet's number, so that the output shows
/// where each one landed; sent every `interval_us` by our clock.
fn numbered(count: usize, interval_us: u64) -> Vec<Packet> {
    (0..count)
        .map(|index| Packet {
            arrival_us: interval_us * index as u64,
            direction: Direction::FromLeg,
            ssrc: 1,
            timestamp: (index * FRAME) as u32,
            payload: Payload::Linear(vec![index as i16 + 1; FRAME]),
        })
        .collect()
}

/// Where each numbered packet's first sample is in the channel (`None` if overwritten).
fn landings(channel: &[i16], count: usize) -> Vec<Option<usize>> {
    let mut first = vec![None; count];
    for (index, &sample) in channel.iter().enumerate() {
        if let Some(slot @ None) = usize::try_from(sample - 1).ok().and_then(|number| first.get_mut(number)) {
            *slot = Some(index);
        }
    }
    first
}

#[test]
fn a_slow_sender_clock_is_followed_without_losing_packets() {
    // The sender's 20 ms last 20.1 ms here (0.5 % slow, far worse than a real phone).
    let count = 3000;
    let mut recording = Recording::new();
    recording.play(numbered(count, 20_100));
    recording.finish(61_000_000);
    let stats = recording.stats(Direction::FromLeg);
    assert_eq!((stats.late_packets, stats.reanchors), (0, 0));
    assert!(stats.drift_corrections >= 5, "{stats:?}");
    let slack = (DRIFT_SLACK.as_micros() as usize * 8 / 1000) + 2 * FRAME;
    for (index, landing) in landings(&recording.channel(Direction::FromLeg), count).into_iter().enumerate() {
        let arrival = index * 20_100 * 8 / 1000;
        let landing = landing.expect("every packet is heard");
        assert!(landing <= arrival && arrival - landing <= slack, "packet {index} at {landing}, arrived at {arrival}");
    }
}

#[test]
fn a_fast_sender_clock_is_followed_without_drifting_ahead() {
    // 19.9 ms per packet: each lands at its arrival, overlapping its predecessor by a sample.
    let count = 3000;
    let mut recording = Recording::new();
    recording.play(numbered(count, 19_900));
    recording.finish(61_000_000);
    let stats = recording.stats(Direction::FromLeg);
    assert_eq!((stats.late_packets, stats.reanchors, stats.drift_corrections), (0, 0, 0));
    for (index, landing) in landings(&recording.channel(Direction::FromLeg), count).into_iter().enumerate() {
        assert_eq!(landing, Some(index * 19_900 * 8 / 1000), "packet {index}");
    }
}

#[test]
fn silence_on_both_sides_is_written_out_as_time_passes() {
    let start = Instant::now();
    let mut aligner = Aligner::new(start);
    let mut frames = 0;
    for tick in 1..=40 {
        aligner.advance(start + Duration::from_millis(250 * tick), |samples| {
            assert!(samples.iter().all(|&sample| sample == 0));
            frames += samples.len() / 2;
        });
    }
    // Ten seconds, less the delay still held back.
    assert_eq!(frames, 80_000 - 1600);
    aligner.finish(start + Duration::from_secs(10), |samples| frames += samples.len() / 2);
    assert_eq!((frames, aligner.frames()), (80_000, 80_000));
}

#[test]
fn frames_leave_the_ring_once_the_delay_has_passed() {
    let start = Instant::now();
    let mut aligner = Aligner::new(start);
    let mut out = Vec::new();
    for index in 0..20u32 {
        let now = start + Duration::from_millis(20 * u64::from(index));
        aligner.push(now, Direction::ToLeg, 9, index * 160, Audio::Linear(&[1000; FRAME]), |frames| {
            out.extend_from_slice(frames)
        });
        // Only what is older than the delay has left.
        let due = (20 * u64::from(index)).saturating_sub(DELAY.as_millis() as u64) * 8;
        assert_eq!(out.len() as u64, 2 * due);
    }
    assert!(out.chunks(2).all(|frame| frame == [0, 1000]));
}

/// A stretch silenced on one channel (a key's tones) is written out as silence, from the lookback
/// before the moment it was asked to what packets had written; the rest of both channels is kept.
#[test]
fn a_silenced_stretch_leaves_silence_on_its_channel_only() {
    let mut recording = Recording::new();
    let caller = tone(440.0, 8000);
    let agent = tone(880.0, 8000);
    let (from, to) = (stream(Direction::FromLeg, 1, 0, 5_000, &caller), stream(Direction::ToLeg, 2, 0, 5_000, &agent));
    let mut packets: Vec<Packet> = from.into_iter().chain(to).collect();
    packets.sort_by_key(|packet| packet.arrival_us);
    let later = packets.split_off(packets.iter().position(|packet| packet.arrival_us >= 490_000).unwrap());
    recording.play(packets);
    // At 490 ms, 100 ms back: frame 3,120 up to the end of the packet that arrived at 485 ms
    // (frame 3,880 and its 160).
    recording.aligner.silence(recording.at(490_000), Direction::FromLeg, Duration::from_millis(100));
    recording.play(later);
    recording.finish(1_500_000);
    let mut expected = placed(12_000, 40, &through_ulaw(&caller));
    expected[3_120..4_040].fill(0);
    assert_eq!(recording.channel(Direction::FromLeg), expected);
    assert_eq!(recording.channel(Direction::ToLeg), placed(12_000, 40, &through_ulaw(&agent)));
}
