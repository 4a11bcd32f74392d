//! Symmetric RTP latching: the first source is followed, a later one only by the rule.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use loket_media::latch::{Latch, LatchConfig, LatchVerdict};

fn address(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], port))
}

const SDP: u16 = 4000;
const NAT: u16 = 50_000;
const OTHER: u16 = 60_000;

struct Leg {
    latch: Latch,
    start: Instant,
}

impl Leg {
    fn new() -> Leg {
        let mut latch = Latch::new(LatchConfig::default());
        latch.set_signalled(address(SDP));
        Leg { latch, start: Instant::now() }
    }

    fn packet(&mut self, at_ms: u64, port: u16) -> LatchVerdict {
        self.latch.on_packet(self.start + Duration::from_millis(at_ms), address(port))
    }
}

#[test]
fn media_goes_to_the_signalled_address_until_a_packet_comes() {
    let leg = Leg::new();
    assert_eq!(leg.latch.target(), Some(address(SDP)));
    assert_eq!(Latch::new(LatchConfig::default()).target(), None);
}

#[test]
fn the_first_packet_latches_to_its_source() {
    let mut leg = Leg::new();
    assert_eq!(leg.packet(0, NAT), LatchVerdict::Latched(address(NAT)));
    assert_eq!(leg.packet(20, NAT), LatchVerdict::Accept);
    assert_eq!(leg.latch.target(), Some(address(NAT)));

    let mut direct = Leg::new();
    assert_eq!(direct.packet(0, SDP), LatchVerdict::Accept);
}

#[test]
fn in_the_window_a_new_source_takes_over_after_three_packets_in_a_row() {
    let mut leg = Leg::new();
    leg.packet(0, NAT);
    assert_eq!(leg.packet(20, OTHER), LatchVerdict::Ignore);
    assert_eq!(leg.packet(40, OTHER), LatchVerdict::Ignore);
    // A packet of the current source in between starts the count over.
    assert_eq!(leg.packet(50, NAT), LatchVerdict::Accept);
    assert_eq!(leg.packet(60, OTHER), LatchVerdict::Ignore);
    assert_eq!(leg.packet(80, OTHER), LatchVerdict::Ignore);
    assert_eq!(leg.packet(100, OTHER), LatchVerdict::Latched(address(OTHER)));
    assert_eq!(leg.latch.target(), Some(address(OTHER)));
}

#[test]
fn after_the_window_a_talking_source_cannot_be_hijacked() {
    let mut leg = Leg::new();
    leg.packet(0, NAT);
    // From 5 s on, an injected stream sends twice as fast as the caller, who keeps talking.
    let mut at = 5_000;
    for _ in 0..200 {
        assert_eq!(leg.packet(at, OTHER), LatchVerdict::Ignore);
        assert_eq!(leg.packet(at + 5, OTHER), LatchVerdict::Ignore);
        assert_eq!(leg.packet(at + 10, NAT), LatchVerdict::Accept);
        at += 20;
    }
    assert_eq!(leg.latch.target(), Some(address(NAT)));
}

#[test]
fn after_the_window_a_silent_source_is_replaced() {
    let mut leg = Leg::new();
    leg.packet(0, NAT);
    leg.packet(5_000, NAT);
    // The NAT rebinds: the old mapping is silent; the new one needs a second of silence behind it.
    assert_eq!(leg.packet(5_500, OTHER), LatchVerdict::Ignore);
    assert_eq!(leg.packet(5_800, OTHER), LatchVerdict::Ignore);
    assert_eq!(leg.packet(5_990, OTHER), LatchVerdict::Ignore);
    assert_eq!(leg.packet(6_000, OTHER), LatchVerdict::Latched(address(OTHER)));
}

#[test]
fn a_new_signalled_address_starts_learning_over() {
    let mut leg = Leg::new();
    leg.packet(0, NAT);
    leg.latch.set_signalled(address(SDP));
    assert_eq!(leg.latch.target(), Some(address(NAT)), "the same SDP again keeps what was learned");
    leg.latch.set_signalled(address(4100));
    assert_eq!(leg.latch.target(), Some(address(4100)));
    assert_eq!(leg.packet(10_000, OTHER), LatchVerdict::Latched(address(OTHER)));
}
