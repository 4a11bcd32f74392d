//! Call recording, the sans-IO part: the audio of both directions of one leg in, one stereo 8 kHz
//! 16-bit timeline out, the two channels in step.
//!
//! Channel 1 (`Direction::FromLeg`) is what the leg sends to loket, channel 2 (`Direction::ToLeg`)
//! what loket sends to it. Each packet is placed on the recording's timeline, counted in frames
//! (one sample per channel) from the start instant, and written into a ring buffer; frames leave
//! the ring `DELAY` after they were due, so packets up to that late still land in their place.
//! Whatever no packet wrote is silence: loss, a side that sends nothing, a hold.
//!
//! **Placement.** Within one source (SSRC), the RTP timestamp decides: a packet lands
//! `timestamp − anchor` frames after the anchor packet, so jitter, reordering and loss do not move
//! it, and a sender's silence suppression leaves a gap of the right length. The timeline is
//! anchored to the arrival time of the source's first packet, and kept honest against arrivals:
//! - a packet that would land later than it arrived (the anchor packet itself came late, or the
//!   timestamps jumped ahead) lands at its arrival, and the line follows from there;
//! - the newest packet of a source landing where the ring has already been written out (the
//!   sender froze its timestamps during a pause, or restarted its line on the same SSRC) starts a
//!   new line at its arrival, as a new SSRC does;
//! - when every packet of `DRIFT_WINDOW` lands more than `DRIFT_SLACK` before its arrival (a sender
//!   clock slower than ours, a longer route), the line moves that much later, leaving a short gap.
//!
//! So the two channels are aligned on arrival times at loket, to within the network's jitter, and
//! neither drifts away from the other. Where packets overlap, the later one wins.
//!
//! Nothing allocates after `Aligner::new`: payloads are decoded straight into the ring, and frames
//! that are due go to the caller's `emit` callback as interleaved samples (channel 1, channel 2).

use std::time::{Duration, Instant};

use crate::g711::{alaw_decode, ulaw_decode};
use crate::rtp::ts_delta;

/// The recording's sample rate: G.711's.
pub const SAMPLE_RATE: u32 = 8000;
/// Channel 1 from the leg, channel 2 to it.
pub const CHANNELS: u16 = 2;
/// How long a frame stays in the ring before it is written out: packets later than this (after
/// the line's earliest arrivals) are dropped and counted.
pub const DELAY: Duration = Duration::from_millis(200);
/// The most samples one packet contributes; more is cut. An Ethernet MTU holds at most 1,488 bytes
/// of G.711, so only a `Linear` payload can be longer.
pub const MAX_PACKET_FRAMES: usize = 2048;
/// Newest packets per drift check.
pub const DRIFT_WINDOW: u32 = 50;
/// How far every packet of a window may land before its arrival before the line moves later.
pub const DRIFT_SLACK: Duration = Duration::from_millis(30);

const DELAY_FRAMES: i64 = DELAY.as_millis() as i64 * SAMPLE_RATE as i64 / 1000;
const DRIFT_SLACK_FRAMES: i64 = DRIFT_SLACK.as_millis() as i64 * SAMPLE_RATE as i64 / 1000;
/// Frames in the ring: a packet lands at most at its arrival, and the ring holds everything from
/// `DELAY` before the newest arrival, so its last sample still fits.
const CAPACITY: usize = DELAY_FRAMES as usize + MAX_PACKET_FRAMES;

/// Which channel a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Channel 1: what the leg sends to loket (the caller's voice).
    FromLeg,
    /// Channel 2: what loket sends to the leg (prompts, music, the bridged peer's voice).
    ToLeg,
}

impl Direction {
    fn channel(self) -> usize {
        match self {
            Direction::FromLeg => 0,
            Direction::ToLeg => 1,
        }
    }
}

/// A packet's audio: G.711 as it came, or samples already decoded.
#[derive(Debug, Clone, Copy)]
pub enum Audio<'a> {
    Pcmu(&'a [u8]),
    Pcma(&'a [u8]),
    Linear(&'a [i16]),
}

impl Audio<'_> {
    /// The number of samples (one per byte for G.711).
    pub fn len(&self) -> usize {
        match self {
            Audio::Pcmu(codes) | Audio::Pcma(codes) => codes.len(),
            Audio::Linear(samples) => samples.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What happened to the packets of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackStats {
    pub packets: u64,
    /// Packets with at least one sample that came after its place had been written out.
    pub late_packets: u64,
    /// The samples those packets lost.
    pub late_samples: u64,
    /// New lines: a new SSRC, a restarted or frozen timeline, a jump ahead of more than
    /// `DRIFT_SLACK`.
    pub reanchors: u64,
    /// Moves of the line by the drift check.
    pub drift_corrections: u64,
}

/// One direction's timeline: where its RTP timestamps land.
#[derive(Debug, Clone, Default)]
struct Track {
    line: Option<Line>,
    stats: TrackStats,
}

#[derive(Debug, Clone, Copy)]
struct Line {
    ssrc: u32,
    /// The newest packet's timestamp and where it landed: the anchor of the mapping.
    timestamp: u32,
    position: i64,
    /// The smallest (arrival − landing) of the newest packets in this window.
    min_lag: i64,
    window: u32,
}

impl Line {
    fn new(ssrc: u32, timestamp: u32, position: i64) -> Line {
        Line { ssrc, timestamp, position, min_lag: i64::MAX, window: 0 }
    }

    fn move_to(&mut self, timestamp: u32, position: i64) {
        self.timestamp = timestamp;
        self.position = position;
        self.min_lag = i64::MAX;
        self.window = 0;
    }
}

impl Track {
    /// Where the packet's first sample lands, `arrival` being its arrival on the timeline and
    /// `written` the first frame not yet written out.
    fn place(&mut self, ssrc: u32, timestamp: u32, arrival: i64, written: i64) -> i64 {
        let line = match &mut self.line {
            Some(line) if line.ssrc == ssrc => line,
            other => {
                if other.is_some() {
                    self.stats.reanchors += 1;
                }
                *other = Some(Line::new(ssrc, timestamp, arrival));
                return arrival;
            }
        };
        let delta = i64::from(ts_delta(timestamp, line.timestamp));
        let predicted = line.position + delta;
        if delta <= 0 {
            if delta > -(CAPACITY as i64) {
                // Reordered or repeated: its place is on the line, written out or not.
                return predicted;
            }
            // Further back than any buffer reaches: the sender restarted its timeline.
            self.stats.reanchors += 1;
            line.move_to(timestamp, arrival);
            return arrival;
        }
        let lag = arrival - predicted;
        if lag < 0 {
            // It would land after its arrival: the line was anchored on a late packet, or the
            // timestamps jumped ahead. Follow the arrival.
            if -lag > DRIFT_SLACK_FRAMES {
                self.stats.reanchors += 1;
            }
            line.move_to(timestamp, arrival);
            return arrival;
        }
        if predicted < written {
            // The newest packet, and its place is already written out: the timestamps stood still
            // while time passed. A new line, from its arrival.
            self.stats.reanchors += 1;
            line.move_to(timestamp, arrival);
            return arrival;
        }
        line.min_lag = line.min_lag.min(lag);
        line.window += 1;
        if line.window >= DRIFT_WINDOW {
            let shift = line.min_lag;
            if shift > DRIFT_SLACK_FRAMES {
                // Every packet of the window came well after its place: move the line later.
                self.stats.drift_corrections += 1;
                line.move_to(timestamp, predicted + shift);
                return predicted + shift;
            }
            line.min_lag = i64::MAX;
            line.window = 0;
        }
        line.timestamp = timestamp;
        line.position = predicted;
        predicted
    }
}

/// Frames in `duration`, rounded down.
fn frames_in(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000).unwrap_or(i64::MAX)
}

/// Turns the packets of both directions into one interleaved stereo timeline. See the module
/// documentation.
pub struct Aligner {
    start: Instant,
    /// `CAPACITY` interleaved frames; frame `p` of the timeline is at `p % CAPACITY`. Zero where
    /// nothing was written: written-out frames are zeroed again.
    ring: Box<[i16]>,
    /// Frames written out so far: the timeline's next frame to leave the ring.
    written: i64,
    /// One past the last frame any packet wrote.
    end: i64,
    tracks: [Track; 2],
}

impl std::fmt::Debug for Aligner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Aligner")
            .field("written", &self.written)
            .field("end", &self.end)
            .field("tracks", &self.tracks)
            .finish_non_exhaustive()
    }
}

impl Aligner {
    /// A timeline starting at `start`. Allocates the ring (14 KiB), once.
    pub fn new(start: Instant) -> Aligner {
        Aligner {
            start,
            ring: vec![0; CAPACITY * CHANNELS as usize].into_boxed_slice(),
            written: 0,
            end: 0,
            tracks: Default::default(),
        }
    }

    /// Takes one packet's audio, arrived (or sent) at `now`; first writes out the frames that are
    /// due (`DELAY` before `now`) through `emit`.
    pub fn push(
        &mut self,
        now: Instant,
        direction: Direction,
        ssrc: u32,
        timestamp: u32,
        audio: Audio<'_>,
        mut emit: impl FnMut(&[i16]),
    ) {
        let arrival = self.position_at(now);
        self.write_out(arrival - DELAY_FRAMES, &mut emit);
        let written = self.written;
        let track = &mut self.tracks[direction.channel()];
        track.stats.packets += 1;
        // A packet lands at most at its arrival (`place` sees to it), so it fits in the ring.
        let position = track.place(ssrc, timestamp, arrival, written).min(arrival);
        let length = audio.len().min(MAX_PACKET_FRAMES) as i64;
        let skip = (written - position).clamp(0, length);
        if skip > 0 {
            track.stats.late_packets += 1;
            track.stats.late_samples += skip as u64;
        }
        let first = position + skip;
        let count = (length - skip) as usize;
        if count == 0 {
            return;
        }
        self.end = self.end.max(first + count as i64);
        // At most two runs: up to the end of the ring, then from its start.
        let index = first as usize % CAPACITY;
        let run = count.min(CAPACITY - index);
        let channel = direction.channel();
        let skip = skip as usize;
        for (at, from, length) in [(index, skip, run), (0, skip + run, count - run)] {
            if length == 0 {
                continue;
            }
            let frames = self.ring[at * CHANNELS as usize..(at + length) * CHANNELS as usize].chunks_exact_mut(2);
            match audio {
                Audio::Pcmu(codes) => frames
                    .zip(&codes[from..from + length])
                    .for_each(|(frame, &code)| frame[channel] = ulaw_decode(code)),
                Audio::Pcma(codes) => frames
                    .zip(&codes[from..from + length])
                    .for_each(|(frame, &code)| frame[channel] = alaw_decode(code)),
                Audio::Linear(samples) => {
                    frames.zip(&samples[from..from + length]).for_each(|(frame, &sample)| frame[channel] = sample)
                }
            }
        }
    }

    /// Writes out the frames due at `now` (those `DELAY` old). Call it now and then when no
    /// packets come, so that silence leaves in small pieces.
    pub fn advance(&mut self, now: Instant, mut emit: impl FnMut(&[i16])) {
        let target = self.position_at(now) - DELAY_FRAMES;
        self.write_out(target, &mut emit);
    }

    /// Writes out everything up to `now`, and whatever packets wrote beyond it: the end of the
    /// recording, meant to be the last call (a packet pushed afterwards would find its place
    /// written out).
    pub fn finish(&mut self, now: Instant, mut emit: impl FnMut(&[i16])) {
        let target = self.position_at(now).max(self.end);
        self.write_out(target, &mut emit);
    }

    /// Silences `direction`'s channel from `lookback` before `now` to the end of what packets have
    /// written: audio that must not be kept (a key's tones), as far back as the ring still holds
    /// it. Frames already written out stay as they were.
    pub fn silence(&mut self, now: Instant, direction: Direction, lookback: Duration) {
        let lookback = frames_in(lookback);
        let from = (self.position_at(now) - lookback).max(self.written);
        let to = self.end.min(self.written + CAPACITY as i64);
        let channel = direction.channel();
        for position in from..to {
            self.ring[(position as usize % CAPACITY) * CHANNELS as usize + channel] = 0;
        }
    }

    /// Frames written out so far.
    pub fn frames(&self) -> u64 {
        self.written as u64
    }

    pub fn stats(&self, direction: Direction) -> TrackStats {
        self.tracks[direction.channel()].stats
    }

    /// The frame of the timeline at `now`.
    fn position_at(&self, now: Instant) -> i64 {
        frames_in(now.saturating_duration_since(self.start))
    }

    fn write_out(&mut self, target: i64, emit: &mut impl FnMut(&[i16])) {
        while self.written < target {
            let index = self.written as usize % CAPACITY;
            let run = usize::try_from(target - self.written).unwrap_or(usize::MAX).min(CAPACITY - index);
            let frames = &mut self.ring[index * CHANNELS as usize..(index + run) * CHANNELS as usize];
            emit(frames);
            frames.fill(0);
            self.written += run as i64;
        }
    }
}
