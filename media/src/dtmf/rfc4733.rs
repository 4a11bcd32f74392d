//! RFC 4733 telephone-events: the 4-byte payload, a receiver that turns a stream of event packets
//! into one `Began` and one `Ended` per key press, and a sender that schedules the packets of one
//! digit.
//!
//! Both are sans-IO: the caller passes packets and the current time in, drains `poll_event`, and
//! calls `handle_timeout` at `poll_timeout`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::dtmf::Digit;
use crate::rtp::{RtpPacket, ts_delta};

/// The payload of one telephone-event (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    /// Power level in −dBm0, 0–63.
    pub volume: u8,
    /// Timestamp units since the event (or its segment) began.
    pub duration: u16,
}

/// The payload is shorter than one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a telephone-event payload is 4 bytes, got {0}")]
pub struct PayloadTooShort(pub usize);

impl TelephoneEvent {
    /// Reads the first event of a payload. A longer payload carries more events (RFC 4733 §2.5.1.5);
    /// DTMF senders put one per packet, so only the first is read.
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadTooShort> {
        let Some(bytes) = payload.first_chunk::<4>() else { return Err(PayloadTooShort(payload.len())) };
        Ok(TelephoneEvent {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    /// The 4-byte payload. The reserved bit is sent as zero (RFC 4733 §2.3.2).
    pub fn to_bytes(self) -> [u8; 4] {
        let [high, low] = self.duration.to_be_bytes();
        [self.event, (u8::from(self.end) << 7) | (self.volume & 0x3F), high, low]
    }
}

/// What the receiver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfEvent {
    /// A key went down: report at once, so that it can stop a prompt (barge-in).
    Began { digit: Digit },
    /// The key went up, or its end can no longer arrive; `duration` is the total, across the
    /// segments of a long press.
    Ended { digit: Digit, duration: Duration },
}

/// An event still in progress that sees no packet for this long has lost its end packets.
/// Senders update at least every 50 ms to 100 ms, so a second is ten lost updates.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(1);

/// Events ended recently whose retransmitted end packets must still be recognised. The three end
/// packets of RFC 4733 §2.5.1.4 arrive within 100 ms or so; a few events' worth is plenty.
const REMEMBERED_EVENTS: usize = 4;

/// Turns telephone-event packets into one `Began` and one `Ended` per key press.
///
/// An event is identified by its SSRC and RTP timestamp (RFC 4733 §2.5.1.2: all packets of one
/// event share the timestamp of its start). Retransmitted and redundant end packets, reordered
/// updates and packets of events already ended are recognised by that key and ignored. A new SSRC
/// simply brings new keys: SIPp, for one, sends its DTMF from an SSRC other than its audio's.
#[derive(Debug)]
pub struct DtmfReceiver {
    clock_rate: u32,
    current: Option<Current>,
    /// Keys of ended events, the oldest overwritten first.
    ended: [Option<(u32, u32)>; REMEMBERED_EVENTS],
    next_ended_slot: usize,
    events: VecDeque<DtmfEvent>,
}

#[derive(Debug)]
struct Current {
    ssrc: u32,
    digit: Digit,
    /// The timestamp of the current segment; the event's first timestamp until a long press
    /// needs a second segment (RFC 4733 §2.5.1.3).
    segment_timestamp: u32,
    /// Ticks of the segments before the current one.
    earlier_segments: u64,
    segment_duration: u16,
    last_packet: Instant,
}

impl DtmfReceiver {
    /// A receiver for events whose timestamps tick at `clock_rate` Hz (the audio's, 8000 for G.711).
    pub fn new(clock_rate: u32) -> Self {
        DtmfReceiver {
            clock_rate,
            current: None,
            ended: [None; REMEMBERED_EVENTS],
            next_ended_slot: 0,
            events: VecDeque::with_capacity(4),
        }
    }

    /// Handles one packet of the telephone-event payload type, received at `now`. Packets whose
    /// payload is too short or whose event is not a DTMF key are ignored.
    pub fn handle_packet(&mut self, now: Instant, packet: &RtpPacket<'_>) {
        let Ok(event) = TelephoneEvent::parse(packet.payload) else { return };
        let Some(digit) = Digit::from_event_code(event.event) else { return };
        let key = (packet.ssrc, packet.timestamp);

        if let Some(current) = &mut self.current {
            if (current.ssrc, current.segment_timestamp) == key {
                // Updates may arrive out of order; the duration only grows.
                current.segment_duration = current.segment_duration.max(event.duration);
                current.last_packet = now;
                if event.end {
                    self.finish();
                }
                return;
            }
            let ahead = ts_delta(packet.timestamp, current.segment_timestamp);
            // A segment is cut when its duration field is full, so a press of the same key whose
            // first packet was lost (no marker either) is not taken for one: its predecessor's
            // duration is far from full. 200 ms of margin allows for lost updates.
            let segment_full = u32::from(current.segment_duration) + self.clock_rate / 5 >= u32::from(u16::MAX);
            if current.ssrc == packet.ssrc
                && current.digit == digit
                && !packet.marker
                && segment_full
                && ahead >= i32::from(current.segment_duration)
                && ahead <= i32::from(u16::MAX)
            {
                // The next segment of a long press: its timestamp is the previous segment's plus
                // that segment's duration, and only the first segment has the marker (§2.5.1.3).
                current.earlier_segments += ahead as u64;
                current.segment_timestamp = packet.timestamp;
                current.segment_duration = event.duration;
                current.last_packet = now;
                if event.end {
                    self.finish();
                }
                return;
            }
        }
        if self.ended.contains(&Some(key)) {
            return;
        }
        // A new event: the previous one, if its end packets were all lost, is over.
        if self.current.is_some() {
            self.finish();
        }
        self.events.push_back(DtmfEvent::Began { digit });
        self.current = Some(Current {
            ssrc: packet.ssrc,
            digit,
            segment_timestamp: packet.timestamp,
            earlier_segments: 0,
            segment_duration: event.duration,
            last_packet: now,
        });
        if event.end {
            self.finish();
        }
    }

    /// Ends an event whose packets stopped without an end packet.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|deadline| now >= deadline) {
            self.finish();
        }
    }

    /// When `handle_timeout` should be called next, if an event is in progress.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.as_ref().map(|current| current.last_packet + EVENT_TIMEOUT)
    }

    /// The next report, oldest first.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    fn finish(&mut self) {
        let Some(current) = self.current.take() else { return };
        let ticks = current.earlier_segments + u64::from(current.segment_duration);
        let duration = Duration::from_micros(ticks * 1_000_000 / u64::from(self.clock_rate.max(1)));
        self.events.push_back(DtmfEvent::Ended { digit: current.digit, duration });
        self.ended[self.next_ended_slot] = Some((current.ssrc, current.segment_timestamp));
        self.next_ended_slot = (self.next_ended_slot + 1) % REMEMBERED_EVENTS;
    }
}

/// How often the sender updates an event in progress (RFC 4733 §2.5.1.2 suggests 50 ms).
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(50);
/// The spacing of the three end packets: one audio packet's time, so that one burst of loss
/// does not take all three.
pub const END_SPACING: Duration = Duration::from_millis(20);
/// End packets sent per event (RFC 4733 §2.5.1.4: "retransmitted, e.g. three times").
pub const END_PACKETS: u32 = 3;

/// One packet the sender wants sent now: the marker bit and the payload. Every packet of the
/// event carries the RTP timestamp of its start, which the caller's session owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub marker: bool,
    pub event: TelephoneEvent,
}

/// The packets of one digit of a given duration: a first packet with the marker, an update every
/// `UPDATE_INTERVAL` with the duration so far, and `END_PACKETS` end packets.
///
/// Every deadline is computed from the start instant, not from the previous send, so that late
/// polls do not accumulate drift. The duration is capped below 2^16 ticks (8 s at 8 kHz): long
/// enough for any key press loket itself sends, and it keeps the event in one segment.
#[derive(Debug, Clone)]
pub struct DigitSender {
    digit: Digit,
    volume: u8,
    start: Instant,
    duration: Duration,
    duration_ticks: u16,
    clock_rate: u32,
    /// Packets sent so far: the updates first, then the end packets.
    sent: u32,
    updates: u32,
}

impl DigitSender {
    /// A digit lasting `duration`, starting at `start`, at `volume` −dBm0 (typically 10).
    pub fn new(digit: Digit, duration: Duration, volume: u8, start: Instant, clock_rate: u32) -> Self {
        let ticks = duration.as_micros() * u128::from(clock_rate) / 1_000_000;
        let duration_ticks = u16::try_from(ticks).unwrap_or(u16::MAX);
        let duration = Duration::from_micros(u64::from(duration_ticks) * 1_000_000 / u64::from(clock_rate.max(1)));
        // Updates at 0, 50, 100, ... ms while the tone lasts; at least the first.
        let updates = duration.as_micros().div_ceil(UPDATE_INTERVAL.as_micros()).max(1);
        DigitSender {
            digit,
            volume: volume & 0x3F,
            start,
            duration,
            duration_ticks,
            clock_rate,
            sent: 0,
            updates: u32::try_from(updates).unwrap_or(u32::MAX),
        }
    }

    /// When the next packet is due, or `None` once the last end packet has gone.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.sent < self.updates {
            Some(self.start + UPDATE_INTERVAL * self.sent)
        } else if self.sent < self.updates + END_PACKETS {
            Some(self.start + self.duration + END_SPACING * (self.sent - self.updates))
        } else {
            None
        }
    }

    /// The packet due at `now`, if one is. A caller that polled late gets the packets it missed
    /// one by one, each with the duration it would have carried on time.
    pub fn poll_packet(&mut self, now: Instant) -> Option<EventPacket> {
        if self.next_deadline()? > now {
            return None;
        }
        let is_update = self.sent < self.updates;
        // An update reports the tone up to the end of the interval it starts, as a receiver
        // playing it out needs that much; the end packets report the whole duration.
        let duration = if is_update {
            let covered = UPDATE_INTERVAL * (self.sent + 1);
            let ticks = covered.as_micros() * u128::from(self.clock_rate) / 1_000_000;
            u16::try_from(ticks).unwrap_or(u16::MAX).min(self.duration_ticks)
        } else {
            self.duration_ticks
        };
        let packet = EventPacket {
            marker: self.sent == 0,
            event: TelephoneEvent { event: self.digit.event_code(), end: !is_update, volume: self.volume, duration },
        };
        self.sent += 1;
        Some(packet)
    }
}
