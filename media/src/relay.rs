//! The relay rewriter: what one leg of a bridge does to every packet it forwards to the other.
//!
//! loket anchors media, so each leg sees loket as one RTP source: one SSRC of ours, one sequence
//! and one timestamp line, whatever happens on the far side. The far side may change its source
//! (a re-INVITE to another media server, a transfer, a prompt replaced by the agent's voice, a
//! restarted phone); the rewriter then re-anchors, so that the output goes on with the next
//! sequence number and a timestamp advanced by the time that really passed. Within one source, the
//! offsets are fixed: gaps and reordering pass through unchanged, because hiding loss from the
//! receiver's jitter buffer would make it play the wrong samples at the wrong time.

use std::time::Instant;

use crate::rtp::{RtpHeader, RtpPacket, SequenceTracker, SequenceVerdict, ts_delta};

/// The timestamp step assumed before two packets of a source have shown the real one: 20 ms of
/// 8 kHz audio, the packetisation of every G.711 trunk loket meets.
const DEFAULT_TS_STEP: u32 = 160;

/// Rewrites the packets of whatever source feeds one side of a bridge into one continuous stream.
#[derive(Debug, Clone)]
pub struct RelayRewriter {
    ssrc: u32,
    clock_rate: u32,
    /// The sequence number and timestamp the next re-anchoring continues from.
    next_sequence: u16,
    last_timestamp: u32,
    source: Option<Source>,
}

#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    tracker: SequenceTracker,
    seq_offset: u16,
    ts_offset: u32,
    /// The input sequence number and timestamp of the newest packet, and when it arrived.
    newest_sequence: u16,
    newest_timestamp: u32,
    newest_arrival: Instant,
    /// The timestamp increment between consecutive packets, learned from the source.
    ts_step: u32,
}

/// What happened to a packet given to `RelayRewriter::rewrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// Forward the packet with this header.
    Forward(RtpHeader),
    /// Drop it: a sequence jump that the next packet has not confirmed (RFC 3550 A.1), most
    /// likely a stray or corrupted packet.
    Drop,
}

impl RelayRewriter {
    /// A rewriter sending as `ssrc`, starting at `sequence` and `timestamp` (RFC 3550 §5.1 wants
    /// both random; the edge draws them), for a payload clock of `clock_rate` Hz.
    pub fn new(ssrc: u32, sequence: u16, timestamp: u32, clock_rate: u32) -> Self {
        RelayRewriter {
            ssrc,
            clock_rate,
            next_sequence: sequence,
            // The first source is anchored at `timestamp` exactly, with no gap before it.
            last_timestamp: timestamp,
            source: None,
        }
    }

    /// The header to forward `packet` with, received at `now`.
    pub fn rewrite(&mut self, now: Instant, packet: &RtpPacket<'_>) -> Rewrite {
        let source = match &mut self.source {
            Some(source) if source.ssrc == packet.ssrc => source,
            _ => return Rewrite::Forward(self.anchor(now, packet)),
        };
        match source.tracker.update(packet.sequence) {
            SequenceVerdict::InOrder => {
                let step = packet.timestamp.wrapping_sub(source.newest_timestamp);
                // Learn the packetisation only from back-to-back packets: after loss or silence
                // suppression the increment spans several packets.
                if packet.sequence == source.newest_sequence.wrapping_add(1) && step > 0 && step <= self.clock_rate / 10
                {
                    source.ts_step = step;
                }
                source.newest_sequence = packet.sequence;
                source.newest_timestamp = packet.timestamp;
                source.newest_arrival = now;
                let header = source.map(packet, self.ssrc);
                self.next_sequence = header.sequence.wrapping_add(1);
                if ts_delta(header.timestamp, self.last_timestamp) > 0 {
                    self.last_timestamp = header.timestamp;
                }
                Rewrite::Forward(header)
            }
            SequenceVerdict::Late => Rewrite::Forward(source.map(packet, self.ssrc)),
            SequenceVerdict::Jumped => Rewrite::Drop,
            SequenceVerdict::Restarted => Rewrite::Forward(self.anchor(now, packet)),
            // `Source` trackers start validated, so they are never on probation.
            SequenceVerdict::Probation => Rewrite::Drop,
        }
    }

    /// Starts mapping a new source (or a restarted one) so that its first packet continues the
    /// output: the next sequence number, and a timestamp advanced by the time since the previous
    /// packet, at least one packet's worth so that the two never overlap.
    fn anchor(&mut self, now: Instant, packet: &RtpPacket<'_>) -> RtpHeader {
        let (timestamp, ts_step) = match &self.source {
            None => (self.last_timestamp, DEFAULT_TS_STEP),
            Some(previous) => {
                let elapsed = now.saturating_duration_since(previous.newest_arrival);
                let elapsed_ticks = elapsed.as_micros().saturating_mul(u128::from(self.clock_rate)) / 1_000_000;
                let elapsed_ticks = u32::try_from(elapsed_ticks).unwrap_or(u32::MAX);
                (self.last_timestamp.wrapping_add(elapsed_ticks.max(previous.ts_step)), previous.ts_step)
            }
        };
        let source = Source {
            ssrc: packet.ssrc,
            tracker: SequenceTracker::validated(packet.sequence),
            seq_offset: self.next_sequence.wrapping_sub(packet.sequence),
            ts_offset: timestamp.wrapping_sub(packet.timestamp),
            newest_sequence: packet.sequence,
            newest_timestamp: packet.timestamp,
            newest_arrival: now,
            ts_step,
        };
        let mut header = source.map(packet, self.ssrc);
        // The marker tells the receiver's jitter buffer that the timeline jumped (RFC 3551 §4.1).
        header.marker = true;
        self.next_sequence = header.sequence.wrapping_add(1);
        self.last_timestamp = header.timestamp;
        self.source = Some(source);
        header
    }
}

impl Source {
    fn map(&self, packet: &RtpPacket<'_>, ssrc: u32) -> RtpHeader {
        RtpHeader {
            marker: packet.marker,
            payload_type: packet.payload_type,
            sequence: packet.sequence.wrapping_add(self.seq_offset),
            timestamp: packet.timestamp.wrapping_add(self.ts_offset),
            ssrc,
        }
    }
}
