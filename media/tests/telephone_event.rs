//! RFC 4733 telephone-events: one digit per key press whatever the network does to the packets.

use std::time::{Duration, Instant};

use loket_media::dtmf::Digit;
use loket_media::dtmf::rfc4733::{
    DigitSender, DtmfEvent, DtmfReceiver, EVENT_TIMEOUT, EventPacket, PayloadTooShort, TelephoneEvent,
};
use loket_media::rtp::{RtpHeader, RtpPacket};

struct Peer {
    receiver: DtmfReceiver,
    start: Instant,
    sequence: u16,
}

impl Peer {
    fn new() -> Self {
        Peer { receiver: DtmfReceiver::new(8000), start: Instant::now(), sequence: 0 }
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    /// Delivers one event packet at `ms`.
    fn deliver(&mut self, ms: u64, ssrc: u32, timestamp: u32, marker: bool, event: TelephoneEvent) {
        self.sequence = self.sequence.wrapping_add(1);
        let header = RtpHeader { marker, payload_type: 101, sequence: self.sequence, timestamp, ssrc };
        let mut bytes = [0u8; 16];
        let length = header.write(&event.to_bytes(), &mut bytes).unwrap();
        self.receiver.handle_packet(self.at(ms), &RtpPacket::parse(&bytes[..length]).unwrap());
    }

    /// Delivers the usual packets of one key press: start, updates every 50 ms, three end packets.
    fn press(&mut self, from_ms: u64, ssrc: u32, timestamp: u32, digit: Digit, duration_ms: u16) {
        let mut sent_ms = 0;
        while sent_ms < duration_ms {
            let duration = (sent_ms + 50).min(duration_ms) * 8;
            self.deliver(from_ms + u64::from(sent_ms), ssrc, timestamp, sent_ms == 0, event(digit, false, duration));
            sent_ms += 50;
        }
        for repeat in 0..3 {
            let at = from_ms + u64::from(duration_ms) + 20 * repeat;
            self.deliver(at, ssrc, timestamp, false, event(digit, true, duration_ms * 8));
        }
    }

    fn events(&mut self) -> Vec<DtmfEvent> {
        std::iter::from_fn(|| self.receiver.poll_event()).collect()
    }
}

fn event(digit: Digit, end: bool, duration: u16) -> TelephoneEvent {
    TelephoneEvent { event: digit.event_code(), end, volume: 10, duration }
}

fn began(digit: Digit) -> DtmfEvent {
    DtmfEvent::Began { digit }
}

fn ended(digit: Digit, ms: u64) -> DtmfEvent {
    DtmfEvent::Ended { digit, duration: Duration::from_millis(ms) }
}

#[test]
fn payload_round_trips() {
    let event = TelephoneEvent { event: 11, end: true, volume: 63, duration: 0xABCD };
    assert_eq!(event.to_bytes(), [11, 0xBF, 0xAB, 0xCD]);
    assert_eq!(TelephoneEvent::parse(&event.to_bytes()), Ok(event));
    // The reserved bit is ignored on receipt.
    assert_eq!(TelephoneEvent::parse(&[11, 0xFF, 0xAB, 0xCD, 99]), Ok(event));
    assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), Err(PayloadTooShort(3)));
    for digit in Digit::ALL {
        assert_eq!(Digit::from_event_code(digit.event_code()), Some(digit));
        assert_eq!(Digit::from_char(digit.as_char()), Some(digit));
    }
    assert_eq!(Digit::from_event_code(16), None);
    assert_eq!(Digit::from_char('a'), Some(Digit::A));
}

#[test]
fn one_key_press_is_one_digit() {
    let mut peer = Peer::new();
    peer.press(0, 1, 1000, Digit::D5, 200);
    assert_eq!(peer.events(), [began(Digit::D5), ended(Digit::D5, 200)]);
    assert_eq!(peer.receiver.poll_timeout(), None);
}

#[test]
fn retransmitted_and_late_end_packets_are_ignored() {
    let mut peer = Peer::new();
    peer.press(0, 1, 1000, Digit::D1, 100);
    peer.press(300, 1, 3400, Digit::D1, 100);
    // An end packet of the first press retransmitted late, after the second began and ended, and
    // a reordered update of the second.
    peer.deliver(500, 1, 1000, false, event(Digit::D1, true, 800));
    peer.deliver(501, 1, 3400, false, event(Digit::D1, false, 400));
    let expected = [began(Digit::D1), ended(Digit::D1, 100), began(Digit::D1), ended(Digit::D1, 100)];
    assert_eq!(peer.events(), expected);
}

#[test]
fn end_packets_alone_still_make_one_digit() {
    let mut peer = Peer::new();
    for repeat in 0..3 {
        peer.deliver(100 + 20 * repeat, 1, 1000, false, event(Digit::Pound, true, 960));
    }
    assert_eq!(peer.events(), [began(Digit::Pound), ended(Digit::Pound, 120)]);
}

#[test]
fn a_lost_end_is_inferred_from_the_next_event_or_the_timeout() {
    let mut peer = Peer::new();
    peer.deliver(0, 1, 1000, true, event(Digit::D2, false, 400));
    peer.deliver(50, 1, 1000, false, event(Digit::D2, false, 800));
    assert_eq!(peer.events(), [began(Digit::D2)]);
    // The next event ends the previous one with the duration last reported.
    peer.deliver(300, 1, 4000, true, event(Digit::D3, false, 400));
    assert_eq!(peer.events(), [ended(Digit::D2, 100), began(Digit::D3)]);
    // Without a next event, the timeout does.
    assert_eq!(peer.receiver.poll_timeout(), Some(peer.at(300) + EVENT_TIMEOUT));
    peer.receiver.handle_timeout(peer.at(1299));
    assert_eq!(peer.events(), []);
    peer.receiver.handle_timeout(peer.at(1300));
    assert_eq!(peer.events(), [ended(Digit::D3, 50)]);
    // Its end packets arriving after all change nothing.
    peer.deliver(1400, 1, 4000, false, event(Digit::D3, true, 800));
    assert_eq!(peer.events(), []);
}

#[test]
fn a_new_ssrc_is_tolerated() {
    let mut peer = Peer::new();
    peer.press(0, 1, 1000, Digit::D7, 100);
    // Another SSRC (a transfer, SIPp's DTMF pcaps) with a timestamp that happens to be the same.
    peer.press(200, 2, 1000, Digit::D7, 100);
    peer.press(400, 2, 9000, Digit::D8, 100);
    let expected = [
        began(Digit::D7),
        ended(Digit::D7, 100),
        began(Digit::D7),
        ended(Digit::D7, 100),
        began(Digit::D8),
        ended(Digit::D8, 100),
    ];
    assert_eq!(peer.events(), expected);
}

#[test]
fn the_same_ssrc_and_timestamp_is_the_same_event() {
    // This is the de-duplication working as RFC 4733 defines it. SIPp's packaged DTMF pcaps replay
    // one fixed timestamp per digit, so the same digit twice from them is one event; real phones
    // give every press its own timestamp.
    let mut peer = Peer::new();
    peer.press(0, 1, 1000, Digit::D9, 100);
    peer.press(300, 1, 1000, Digit::D9, 100);
    assert_eq!(peer.events(), [began(Digit::D9), ended(Digit::D9, 100)]);
}

#[test]
fn a_long_press_spans_segments() {
    let mut peer = Peer::new();
    // RFC 4733 §2.5.1.3: the first segment fills the 16-bit duration (8.19 s at 8 kHz), the
    // second starts at its timestamp plus that duration, without the marker.
    let mut ms = 0;
    for duration in (400..=65_535u32).step_by(400).chain([65_535]) {
        peer.deliver(ms, 1, 1000, ms == 0, event(Digit::D0, false, duration as u16));
        ms += 50;
    }
    for duration in [400, 800, 1200, 1600] {
        peer.deliver(ms, 1, 1000 + 65_535, false, event(Digit::D0, false, duration));
        ms += 50;
    }
    peer.deliver(ms, 1, 1000 + 65_535, false, event(Digit::D0, true, 1600));
    // 67,135 ticks of 125 µs: 8.39 s.
    let total = Duration::from_micros((65_535 + 1600) * 125);
    assert_eq!(peer.events(), [began(Digit::D0), DtmfEvent::Ended { digit: Digit::D0, duration: total }]);
}

#[test]
fn a_repeated_key_whose_start_was_lost_is_not_a_segment() {
    let mut peer = Peer::new();
    peer.press(0, 1, 1000, Digit::D4, 100);
    // The previous press never ended (all its end packets lost), then the next press of the same
    // key lost its first packet: still two digits.
    peer.deliver(0, 1, 5000, true, event(Digit::D4, false, 400));
    peer.deliver(300, 1, 5000 + 2400, false, event(Digit::D4, false, 800));
    assert_eq!(
        peer.events(),
        [began(Digit::D4), ended(Digit::D4, 100), began(Digit::D4), ended(Digit::D4, 50), began(Digit::D4)]
    );
}

#[test]
fn other_events_and_short_payloads_are_ignored() {
    let mut peer = Peer::new();
    peer.deliver(0, 1, 1000, true, TelephoneEvent { event: 16, end: false, volume: 10, duration: 400 });
    let header = RtpHeader { marker: true, payload_type: 101, sequence: 9, timestamp: 2000, ssrc: 1 };
    let mut bytes = [0u8; 15];
    let length = header.write(&[5, 0x0A, 1], &mut bytes).unwrap();
    peer.receiver.handle_packet(peer.at(10), &RtpPacket::parse(&bytes[..length]).unwrap());
    assert_eq!(peer.events(), []);
}

fn schedule(sender: &mut DigitSender, start: Instant) -> Vec<(u64, EventPacket)> {
    let mut packets = Vec::new();
    while let Some(deadline) = sender.next_deadline() {
        assert_eq!(sender.poll_packet(deadline - Duration::from_micros(1)), None, "sent before its deadline");
        packets.push(((deadline - start).as_millis() as u64, sender.poll_packet(deadline).unwrap()));
    }
    packets
}

#[test]
fn the_sender_schedules_start_updates_and_three_ends() {
    let start = Instant::now();
    let mut sender = DigitSender::new(Digit::D1, Duration::from_millis(120), 10, start, 8000);
    let packets: Vec<(u64, bool, bool, u16)> = schedule(&mut sender, start)
        .into_iter()
        .map(|(ms, packet)| (ms, packet.marker, packet.event.end, packet.event.duration))
        .collect();
    let expected = [
        (0, true, false, 400),
        (50, false, false, 800),
        (100, false, false, 960),
        (120, false, true, 960),
        (140, false, true, 960),
        (160, false, true, 960),
    ];
    assert_eq!(packets, expected);
    assert_eq!(sender.poll_packet(start + Duration::from_secs(10)), None);
}

#[test]
fn a_late_sender_catches_up_without_drifting() {
    let start = Instant::now();
    let mut sender = DigitSender::new(Digit::Star, Duration::from_millis(200), 10, start, 8000);
    // Polled 130 ms late: the three missed updates come out at once, then the schedule resumes
    // on the start's grid.
    let late = start + Duration::from_millis(130);
    let caught_up: Vec<u16> =
        std::iter::from_fn(|| sender.poll_packet(late)).map(|packet| packet.event.duration).collect();
    assert_eq!(caught_up, [400, 800, 1200]);
    assert_eq!(sender.next_deadline(), Some(start + Duration::from_millis(150)));
}

#[test]
fn every_digit_survives_sender_to_receiver() {
    let mut peer = Peer::new();
    for (index, digit) in Digit::ALL.into_iter().enumerate() {
        let start = peer.at(index as u64 * 1000);
        let timestamp = 8000 * index as u32;
        let mut sender = DigitSender::new(digit, Duration::from_millis(90), 10, start, 8000);
        for (ms, packet) in schedule(&mut sender, peer.start) {
            peer.deliver(ms, 7, timestamp, packet.marker, packet.event);
        }
    }
    let expected: Vec<DtmfEvent> = Digit::ALL.into_iter().flat_map(|digit| [began(digit), ended(digit, 90)]).collect();
    assert_eq!(peer.events(), expected);
}
