//! Sequence-number and timestamp arithmetic modulo 2^16 and 2^32, and the source validation of
//! RFC 3550 Appendix A.1.

/// A forward jump of fewer packets than this is loss, not a restart (RFC 3550 A.1: 3000).
pub const MAX_DROPOUT: u16 = 3000;
/// A backward step of fewer packets than this is reordering, not a restart (RFC 3550 A.1: 100).
pub const MAX_MISORDER: u16 = 100;
/// Sequential packets a new source must send before it is valid (RFC 3550 A.1: 2).
pub const MIN_SEQUENTIAL: u8 = 2;

/// How far `later` is ahead of `earlier` (negative when behind), modulo 2^16.
#[inline]
pub fn seq_delta(later: u16, earlier: u16) -> i16 {
    later.wrapping_sub(earlier) as i16
}

/// How far timestamp `later` is ahead of `earlier` (negative when behind), modulo 2^32.
#[inline]
pub fn ts_delta(later: u32, earlier: u32) -> i32 {
    later.wrapping_sub(earlier) as i32
}

/// What one sequence number means for the source it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceVerdict {
    /// The source is still on probation: not yet valid, not counted.
    Probation,
    /// The newest packet so far (possibly after a gap smaller than `MAX_DROPOUT`).
    InOrder,
    /// A duplicate or a reordered packet within `MAX_MISORDER` of the newest.
    Late,
    /// A jump too large to be loss or reordering; dropped unless the next packet follows it.
    Jumped,
    /// The packet followed a jump, so the source restarted its sequence (RFC 3550 A.1): the
    /// statistics start over from this packet.
    Restarted,
}

/// The per-source state of RFC 3550 A.1: the extended highest sequence number, the count of
/// cycles, and the probation and restart rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceTracker {
    max_seq: u16,
    /// Wrap-arounds of `max_seq`, shifted into the high 16 bits (A.1's `cycles`).
    cycles: u32,
    base_seq: u32,
    /// The sequence number that would confirm a restart: one after the last jump (A.1 `bad_seq`).
    /// Kept 17 bits wide so that "no restart pending" (2^16 + 1) never equals a real number.
    bad_seq: u32,
    probation: u8,
    received: u32,
}

const SEQ_MOD: u32 = 1 << 16;

impl SequenceTracker {
    /// A source first seen with `seq`, on probation as RFC 3550 A.1 prescribes for a receiver:
    /// this first packet is the first of the `MIN_SEQUENTIAL` in a row it needs to be valid.
    pub fn on_probation(seq: u16) -> Self {
        let mut tracker = Self::validated(seq);
        tracker.probation = MIN_SEQUENTIAL - 1;
        tracker.received = 0;
        tracker
    }

    /// A source accepted at once, its first packet `seq` counted: what a relay wants, because it
    /// forwards a new source's first packet instead of waiting for the second.
    pub fn validated(seq: u16) -> Self {
        SequenceTracker {
            max_seq: seq,
            cycles: 0,
            base_seq: u32::from(seq),
            bad_seq: SEQ_MOD + 1,
            probation: 0,
            received: 1,
        }
    }

    /// Updates the state with one packet's sequence number (RFC 3550 A.1 `update_seq`).
    pub fn update(&mut self, seq: u16) -> SequenceVerdict {
        let forward = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    *self = Self::validated(seq);
                    return SequenceVerdict::InOrder;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SequenceVerdict::Probation;
        }
        let verdict = if forward == 0 {
            SequenceVerdict::Late
        } else if forward < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
            SequenceVerdict::InOrder
        } else if u32::from(forward) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                *self = Self::validated(seq);
                return SequenceVerdict::Restarted;
            }
            self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
            return SequenceVerdict::Jumped;
        } else {
            SequenceVerdict::Late
        };
        self.received += 1;
        verdict
    }

    /// The highest sequence number seen, extended with the count of wrap-arounds.
    pub fn extended_max(&self) -> u32 {
        self.cycles | u32::from(self.max_seq)
    }

    /// Packets received and counted since the source became valid (duplicates included, as A.3).
    pub fn received(&self) -> u32 {
        self.received
    }

    /// Packets expected since the source became valid (RFC 3550 A.3).
    pub fn expected(&self) -> u32 {
        self.extended_max().wrapping_sub(self.base_seq).wrapping_add(1)
    }
}
