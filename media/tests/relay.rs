//! The relay rewriter keeps one continuous stream across source changes.

use std::time::{Duration, Instant};

use loket_media::relay::{RelayRewriter, Rewrite};
use loket_media::rtp::{RtpHeader, RtpPacket};

const OUR_SSRC: u32 = 0x1005_1005;

struct Relay {
    rewriter: RelayRewriter,
    start: Instant,
}

impl Relay {
    fn new() -> Self {
        Relay { rewriter: RelayRewriter::new(OUR_SSRC, 60_000, 1_000_000, 8000), start: Instant::now() }
    }

    /// Feeds the packet (ssrc, sequence, timestamp) arriving `at_ms` after the start; returns the
    /// header forwarded, as (marker, sequence, timestamp), or `None` when dropped.
    fn feed(&mut self, at_ms: u64, ssrc: u32, sequence: u16, timestamp: u32) -> Option<(bool, u16, u32)> {
        let header = RtpHeader { marker: false, payload_type: 0, sequence, timestamp, ssrc };
        let mut bytes = [0u8; 172];
        let length = header.write(&[0xFF; 160], &mut bytes).unwrap();
        let packet = RtpPacket::parse(&bytes[..length]).unwrap();
        match self.rewriter.rewrite(self.start + Duration::from_millis(at_ms), &packet) {
            Rewrite::Forward(out) => {
                assert_eq!((out.ssrc, out.payload_type), (OUR_SSRC, 0));
                Some((out.marker, out.sequence, out.timestamp))
            }
            Rewrite::Drop => None,
        }
    }

    /// Feeds `count` back-to-back 20 ms packets of one source.
    fn talk(&mut self, from_ms: u64, ssrc: u32, sequence: u16, timestamp: u32, count: u16) -> Vec<(bool, u16, u32)> {
        (0..count)
            .map(|index| {
                let at = from_ms + 20 * u64::from(index);
                self.feed(at, ssrc, sequence.wrapping_add(index), timestamp.wrapping_add(160 * u32::from(index)))
                    .unwrap()
            })
            .collect()
    }
}

#[test]
fn the_first_source_starts_the_configured_line() {
    let mut relay = Relay::new();
    let out = relay.talk(0, 7, 100, 5000, 3);
    assert_eq!(out, [(true, 60_000, 1_000_000), (false, 60_001, 1_000_160), (false, 60_002, 1_000_320)]);
}

#[test]
fn a_new_source_continues_sequence_and_timestamp() {
    let mut relay = Relay::new();
    relay.talk(0, 7, 100, 5000, 5);
    // The new source's first packet arrives 20 ms after the last one: one packet later.
    let out = relay.talk(100, 8, 31_000, 777, 2);
    assert_eq!(out, [(true, 60_005, 1_000_800), (false, 60_006, 1_000_960)]);
}

#[test]
fn the_timestamp_advances_by_the_silence_between_sources() {
    let mut relay = Relay::new();
    relay.talk(0, 7, 100, 5000, 2);
    // One second and 20 ms after the last packet (at 20 ms): 8160 ticks later.
    assert_eq!(relay.feed(1040, 8, 9, 9), Some((true, 60_002, 1_000_160 + 8160)));
}

#[test]
fn an_immediate_change_advances_by_the_learned_packet_step() {
    let mut relay = Relay::new();
    // 30 ms packets (240 ticks); the new source arrives at the same instant as the last packet.
    for index in 0..3u16 {
        relay.feed(30 * u64::from(index), 7, 100 + index, 5000 + 240 * u32::from(index)).unwrap();
    }
    assert_eq!(relay.feed(60, 8, 1, 1), Some((true, 60_003, 1_000_480 + 240)));
}

#[test]
fn loss_and_reordering_within_a_source_pass_through() {
    let mut relay = Relay::new();
    relay.talk(0, 7, 100, 5000, 1);
    assert_eq!(relay.feed(20, 7, 101, 5160), Some((false, 60_001, 1_000_160)));
    assert_eq!(relay.feed(60, 7, 103, 5480), Some((false, 60_003, 1_000_480)));
    assert_eq!(relay.feed(61, 7, 102, 5320), Some((false, 60_002, 1_000_320)));
    assert_eq!(relay.feed(62, 7, 102, 5320), Some((false, 60_002, 1_000_320)));
    // The next source continues after the highest sequence number, not the last one received.
    assert_eq!(relay.feed(80, 8, 0, 0).map(|(_, sequence, _)| sequence), Some(60_004));
}

#[test]
fn input_and_output_wrap_around() {
    let mut relay = Relay::new();
    let out = relay.talk(0, 7, 65_534, u32::MAX - 159, 3);
    assert_eq!(out, [(true, 60_000, 1_000_000), (false, 60_001, 1_000_160), (false, 60_002, 1_000_320)]);
    let mut relay =
        Relay { rewriter: RelayRewriter::new(OUR_SSRC, 65_535, u32::MAX - 159, 8000), start: Instant::now() };
    assert_eq!(relay.talk(0, 7, 100, 0, 2), [(true, 65_535, u32::MAX - 159), (false, 0, 0)]);
    assert_eq!(relay.feed(60, 8, 5, 5), Some((true, 1, 320)));
}

#[test]
fn a_sequence_jump_is_dropped_until_confirmed_then_re_anchored() {
    let mut relay = Relay::new();
    relay.talk(0, 7, 100, 5000, 2);
    // A stray packet far ahead is dropped; the stream carries on.
    assert_eq!(relay.feed(30, 7, 20_000, 5), None);
    assert_eq!(relay.feed(40, 7, 102, 5320), Some((false, 60_002, 1_000_320)));
    // The same SSRC restarting its numbering (a restarted phone) is confirmed by its second packet,
    // which continues our line 40 ms after the last forwarded packet.
    assert_eq!(relay.feed(60, 7, 9_000, 70), None);
    assert_eq!(relay.feed(80, 7, 9_001, 230), Some((true, 60_003, 1_000_320 + 320)));
}

#[test]
fn returning_to_an_earlier_source_re_anchors_again() {
    let mut relay = Relay::new();
    relay.talk(0, 7, 100, 5000, 2);
    relay.talk(40, 8, 500, 90_000, 2);
    let out = relay.talk(80, 7, 102, 5320, 2);
    assert_eq!(out, [(true, 60_004, 1_000_640), (false, 60_005, 1_000_800)]);
}
