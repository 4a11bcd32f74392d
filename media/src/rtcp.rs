//! RTCP sender and receiver reports (RFC 3550 §6.4): parsing compound packets into borrowed views,
//! building the compound report a session sends, and the reception statistics a report carries.
//!
//! Parsing never panics: every length read from the wire is checked against the datagram, and a
//! malformed packet inside a compound one ends the walk with an error rather than a guess. Nothing
//! allocates: report blocks are read lazily from the caller's bytes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::rtp::{BufferTooSmall, RtpPacket, SequenceTracker, SequenceVerdict};

/// Sender report (RFC 3550 §6.4.1).
pub const PT_SR: u8 = 200;
/// Receiver report (RFC 3550 §6.4.2).
pub const PT_RR: u8 = 201;
/// Source description (RFC 3550 §6.5).
pub const PT_SDES: u8 = 202;
/// The SDES item that names the endpoint (RFC 3550 §6.5.1).
const SDES_CNAME: u8 = 1;
const REPORT_BLOCK_LEN: usize = 24;
const SENDER_INFO_LEN: usize = 20;
/// Seconds from the NTP era (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// Whether a datagram on a multiplexed port is RTCP rather than RTP (RFC 5761 §4): RTCP packet
/// types 192–223 land on RTP payload types 64–95 with the marker set, which no audio profile uses.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.get(1).is_some_and(|&byte| (192..=223).contains(&byte))
}

/// A 64-bit NTP timestamp (RFC 3550 §4): seconds since 1900 in the high word, the fraction in the
/// low one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NtpTime(pub u64);

impl NtpTime {
    /// The NTP time of a wall-clock instant; the edge reads the clock, the core only converts.
    pub fn from_system_time(time: SystemTime) -> NtpTime {
        let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = since_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET);
        let fraction = (u64::from(since_epoch.subsec_nanos()) << 32) / 1_000_000_000;
        NtpTime((seconds << 32) | fraction)
    }

    /// The middle 32 bits, as the LSR field of a report block carries them (RFC 3550 §6.4.1).
    pub fn middle(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ntp: NtpTime,
    /// The RTP timestamp that corresponds to `ntp` on the sender's media clock.
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// One report block: what a receiver says about one source (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Lost packets since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Packets lost since reception began; negative with duplicates. 24 bits on the wire.
    pub cumulative_lost: i32,
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// The middle 32 bits of the last SR's NTP time from this source, 0 when none was received.
    pub last_sr: u32,
    /// The delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

/// One packet of a compound RTCP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    SenderReport {
        ssrc: u32,
        info: SenderInfo,
        blocks: ReportBlocks<'a>,
    },
    ReceiverReport {
        ssrc: u32,
        blocks: ReportBlocks<'a>,
    },
    /// SDES, BYE, APP, feedback: well formed, not read further.
    Other {
        packet_type: u8,
    },
}

/// The report blocks of an SR or RR, read from the datagram on iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    bytes: &'a [u8],
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        let (block, rest) = self.bytes.split_first_chunk::<REPORT_BLOCK_LEN>()?;
        self.bytes = rest;
        let word = |at: usize| u32::from_be_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]]);
        // The cumulative count is a signed 24-bit number: shift it to the top and back.
        let cumulative_lost = (i32::from_be_bytes([block[5], block[6], block[7], 0])) >> 8;
        Some(ReportBlock {
            ssrc: word(0),
            fraction_lost: block[4],
            cumulative_lost,
            extended_highest_sequence: word(8),
            jitter: word(12),
            last_sr: word(16),
            delay_since_last_sr: word(20),
        })
    }
}

/// Why a datagram is not (entirely) RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    #[error("{0} bytes left, shorter than the 4-byte RTCP header")]
    TooShort(usize),
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    #[error("the packet's length field says {declared} bytes, {available} are left")]
    LengthOverrun { declared: usize, available: usize },
    #[error("{count} report blocks do not fit a {packet_type} packet of {length} bytes")]
    BlocksOverrun { packet_type: u8, count: u8, length: usize },
}

/// The packets of a compound RTCP datagram, in order. After an error the walk stops: the rest of
/// the datagram cannot be framed.
pub fn parse_compound(datagram: &[u8]) -> impl Iterator<Item = Result<RtcpPacket<'_>, RtcpError>> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match parse_one(rest) {
            Ok((packet, after)) => {
                rest = after;
                Some(Ok(packet))
            }
            Err(error) => {
                rest = &[];
                Some(Err(error))
            }
        }
    })
}

fn parse_one(bytes: &[u8]) -> Result<(RtcpPacket<'_>, &[u8]), RtcpError> {
    let Some(header) = bytes.first_chunk::<4>() else { return Err(RtcpError::TooShort(bytes.len())) };
    let version = header[0] >> 6;
    if version != 2 {
        return Err(RtcpError::BadVersion(version));
    }
    let count = header[0] & 0x1F;
    let packet_type = header[1];
    // The length counts 32-bit words minus one, header included (RFC 3550 §6.4.1).
    let length = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
    let (packet, after) =
        bytes.split_at_checked(length).ok_or(RtcpError::LengthOverrun { declared: length, available: bytes.len() })?;
    // Padding (the P bit) only follows the report blocks, which are read by count, so it needs no
    // handling here.
    let body = &packet[4..];
    let blocks_overrun = RtcpError::BlocksOverrun { packet_type, count, length };
    let parsed = match packet_type {
        PT_SR => {
            let (fixed, blocks) = body.split_at_checked(4 + SENDER_INFO_LEN).ok_or(blocks_overrun)?;
            let word = |at: usize| u32::from_be_bytes([fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]]);
            let info = SenderInfo {
                ntp: NtpTime((u64::from(word(4)) << 32) | u64::from(word(8))),
                rtp_timestamp: word(12),
                packet_count: word(16),
                octet_count: word(20),
            };
            RtcpPacket::SenderReport {
                ssrc: word(0),
                info,
                blocks: report_blocks(blocks, count).ok_or(blocks_overrun)?,
            }
        }
        PT_RR => {
            let (ssrc, blocks) = body.split_first_chunk::<4>().ok_or(blocks_overrun)?;
            RtcpPacket::ReceiverReport {
                ssrc: u32::from_be_bytes(*ssrc),
                blocks: report_blocks(blocks, count).ok_or(blocks_overrun)?,
            }
        }
        _ => RtcpPacket::Other { packet_type },
    };
    Ok((parsed, after))
}

fn report_blocks(bytes: &[u8], count: u8) -> Option<ReportBlocks<'_>> {
    bytes.get(..usize::from(count) * REPORT_BLOCK_LEN).map(|bytes| ReportBlocks { bytes })
}

/// Writes a compound report into `out`: an SR when `sender` is given (we sent RTP since the last
/// report), an RR otherwise, with at most one report block, followed by the SDES CNAME that every
/// compound packet must carry (RFC 3550 §6.1). Returns the length written.
pub fn write_report(
    ssrc: u32,
    sender: Option<SenderInfo>,
    block: Option<ReportBlock>,
    cname: &[u8],
    out: &mut [u8],
) -> Result<usize, BufferTooSmall> {
    // CNAMEs are short; the SDES item length is one byte.
    let cname = &cname[..cname.len().min(255)];
    let report_len = 8 + if sender.is_some() { SENDER_INFO_LEN } else { 0 } + block.map_or(0, |_| REPORT_BLOCK_LEN);
    // SDES: header, SSRC, item type and length, the name, at least one null octet, to a word.
    let sdes_len = (8 + 2 + cname.len() + 1).div_ceil(4) * 4;
    let needed = report_len + sdes_len;
    let Some(out) = out.get_mut(..needed) else { return Err(BufferTooSmall { needed, available: out.len() }) };
    out.fill(0);
    let (report, sdes) = out.split_at_mut(report_len);

    let packet_type = if sender.is_some() { PT_SR } else { PT_RR };
    write_header(report, u8::from(block.is_some()), packet_type);
    report[4..8].copy_from_slice(&ssrc.to_be_bytes());
    let mut at = 8;
    if let Some(info) = sender {
        report[at..at + 8].copy_from_slice(&info.ntp.0.to_be_bytes());
        report[at + 8..at + 12].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
        report[at + 12..at + 16].copy_from_slice(&info.packet_count.to_be_bytes());
        report[at + 16..at + 20].copy_from_slice(&info.octet_count.to_be_bytes());
        at += SENDER_INFO_LEN;
    }
    if let Some(block) = block {
        let out = &mut report[at..at + REPORT_BLOCK_LEN];
        out[0..4].copy_from_slice(&block.ssrc.to_be_bytes());
        let lost = block.cumulative_lost.clamp(-0x80_0000, 0x7F_FFFF).to_be_bytes();
        out[4] = block.fraction_lost;
        out[5..8].copy_from_slice(&lost[1..4]);
        out[8..12].copy_from_slice(&block.extended_highest_sequence.to_be_bytes());
        out[12..16].copy_from_slice(&block.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&block.last_sr.to_be_bytes());
        out[20..24].copy_from_slice(&block.delay_since_last_sr.to_be_bytes());
    }

    write_header(sdes, 1, PT_SDES);
    sdes[4..8].copy_from_slice(&ssrc.to_be_bytes());
    sdes[8] = SDES_CNAME;
    sdes[9] = cname.len() as u8;
    sdes[10..10 + cname.len()].copy_from_slice(cname);
    Ok(needed)
}

fn write_header(packet: &mut [u8], count: u8, packet_type: u8) {
    let words = u16::try_from(packet.len() / 4 - 1).unwrap_or(u16::MAX);
    packet[0] = (2 << 6) | (count & 0x1F);
    packet[1] = packet_type;
    packet[2..4].copy_from_slice(&words.to_be_bytes());
}

/// What a receiver knows about the source it listens to: the RFC 3550 A.1 sequence state, the A.3
/// loss counts and the A.8 interarrival jitter, and the last SR for the round-trip fields.
#[derive(Debug, Clone)]
pub struct ReceptionStats {
    clock_rate: u32,
    /// Arrival times are measured in timestamp units from this instant.
    epoch: Instant,
    source: Option<Source>,
}

#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    tracker: SequenceTracker,
    expected_prior: u32,
    received_prior: u32,
    /// The relative transit time of the previous timed packet (A.8), if any.
    transit: Option<u32>,
    /// Jitter × 16, as A.8 keeps it to avoid rounding.
    jitter_scaled: u32,
    last_sr: Option<(NtpTime, Instant)>,
}

impl ReceptionStats {
    /// Statistics for a stream whose timestamps tick at `clock_rate` Hz, starting at `epoch`.
    pub fn new(clock_rate: u32, epoch: Instant) -> Self {
        ReceptionStats { clock_rate, epoch, source: None }
    }

    /// Counts one packet received at `now`. `timed` says its timestamp is the sampling instant of
    /// its payload (audio); telephone-event packets repeat the event's start and would count as
    /// jitter. A new SSRC, or a restart of the sequence, starts the statistics over.
    pub fn on_rtp(&mut self, now: Instant, packet: &RtpPacket<'_>, timed: bool) {
        let verdict = match &mut self.source {
            Some(source) if source.ssrc == packet.ssrc => source.tracker.update(packet.sequence),
            _ => {
                self.source = Some(Source::new(packet.ssrc, packet.sequence));
                SequenceVerdict::InOrder
            }
        };
        // Just set above or matched, so present.
        let Some(source) = self.source.as_mut() else { return };
        match verdict {
            SequenceVerdict::Restarted => *source = Source::new(packet.ssrc, packet.sequence),
            SequenceVerdict::InOrder if timed => {
                let elapsed = now.saturating_duration_since(self.epoch);
                let arrival = (elapsed.as_micros() * u128::from(self.clock_rate) / 1_000_000) as u32;
                let transit = arrival.wrapping_sub(packet.timestamp);
                if let Some(previous) = source.transit {
                    let difference = (transit.wrapping_sub(previous) as i32).unsigned_abs();
                    // J += (|D| - J) / 16, in the scaled form of A.8.
                    source.jitter_scaled =
                        source.jitter_scaled.wrapping_add(difference).wrapping_sub((source.jitter_scaled + 8) >> 4);
                }
                source.transit = Some(transit);
            }
            _ => {}
        }
    }

    /// Records an SR from the source, for the LSR and DLSR fields of our next report.
    pub fn on_sender_report(&mut self, now: Instant, ssrc: u32, ntp: NtpTime) {
        if let Some(source) = self.source.as_mut().filter(|source| source.ssrc == ssrc) {
            source.last_sr = Some((ntp, now));
        }
    }

    /// The report block for our next report, or `None` before any packet; the fraction lost
    /// counts from the previous call (A.3), so call this once per report sent.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        let source = self.source.as_mut()?;
        let expected = source.tracker.expected();
        let received = source.tracker.received();
        let expected_interval = expected.wrapping_sub(source.expected_prior);
        let received_interval = received.wrapping_sub(source.received_prior);
        source.expected_prior = expected;
        source.received_prior = received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match source.last_sr {
            None => (0, 0),
            Some((ntp, at)) => {
                let delay = now.saturating_duration_since(at);
                (ntp.middle(), u32::try_from(delay.as_micros() * 65_536 / 1_000_000).unwrap_or(u32::MAX))
            }
        };
        Some(ReportBlock {
            ssrc: source.ssrc,
            fraction_lost,
            cumulative_lost: (i64::from(expected) - i64::from(received)).clamp(-0x80_0000, 0x7F_FFFF) as i32,
            extended_highest_sequence: source.tracker.extended_max(),
            jitter: source.jitter_scaled >> 4,
            last_sr,
            delay_since_last_sr,
        })
    }
}

impl Source {
    fn new(ssrc: u32, sequence: u16) -> Source {
        Source {
            ssrc,
            // A receiver counts the first packet: the edge has already validated the source by
            // latching to it.
            tracker: SequenceTracker::validated(sequence),
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_scaled: 0,
            last_sr: None,
        }
    }
}

/// The round-trip time a report block implies, received at NTP time `now` (RFC 3550 §6.4.1:
/// A − LSR − DLSR), or `None` when the block carries no LSR.
pub fn round_trip(block: &ReportBlock, now: NtpTime) -> Option<Duration> {
    if block.last_sr == 0 {
        return None;
    }
    let ticks = now.middle().wrapping_sub(block.last_sr).wrapping_sub(block.delay_since_last_sr);
    // A negative result (clock skew, a forged block) wraps to a huge value: refuse it.
    (ticks < 0x8000_0000).then(|| Duration::from_micros(u64::from(ticks) * 1_000_000 / 65_536))
}
