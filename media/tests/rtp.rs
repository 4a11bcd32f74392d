//! RTP packets, sequence arithmetic and RFC 3550 A.1 source validation.

use loket_media::rtp::{
    BufferTooSmall, HEADER_LEN, ParseError, RtpHeader, RtpPacket, SequenceTracker, SequenceVerdict, seq_delta, ts_delta,
};

/// SplitMix64: a deterministic generator, so that a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// V=2, P=1, X=1, CC=2; M=1, PT=0; seq 0xBEEF; ts 0xDEADBEEF; SSRC 0x01020304; two CSRCs;
/// a one-word extension of profile 0xBEDE; payload "abc"; 5 bytes of padding.
fn full_packet() -> Vec<u8> {
    let mut bytes = vec![0xB2, 0x80, 0xBE, 0xEF, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3, 4];
    bytes.extend([0, 0, 0, 0x0A, 0, 0, 0, 0x0B]);
    bytes.extend([0xBE, 0xDE, 0, 1, 0x10, 0xFF, 0, 0]);
    bytes.extend(b"abc");
    bytes.extend([0, 0, 0, 0, 5]);
    bytes
}

#[test]
fn parses_every_header_field() {
    let bytes = full_packet();
    let packet = RtpPacket::parse(&bytes).unwrap();
    assert!(packet.marker);
    assert_eq!(packet.payload_type, 0);
    assert_eq!(packet.sequence, 0xBEEF);
    assert_eq!(packet.timestamp, 0xDEAD_BEEF);
    assert_eq!(packet.ssrc, 0x0102_0304);
    assert_eq!(packet.csrcs().collect::<Vec<_>>(), [0x0A, 0x0B]);
    let extension = packet.extension.unwrap();
    assert_eq!((extension.profile, extension.data), (0xBEDE, &[0x10, 0xFF, 0, 0][..]));
    assert_eq!(packet.payload, b"abc");
}

#[test]
fn rejects_malformed_datagrams() {
    let bytes = full_packet();
    assert_eq!(RtpPacket::parse(&bytes[..11]), Err(ParseError::TooShort(11)));
    let mut version_1 = bytes.clone();
    version_1[0] = 0x40 | (bytes[0] & 0x3F);
    assert_eq!(RtpPacket::parse(&version_1), Err(ParseError::BadVersion(1)));
    // The CSRC list claims 15 entries in a 35-byte datagram.
    let mut many_csrcs = bytes.clone();
    many_csrcs[0] |= 0x0F;
    assert_eq!(RtpPacket::parse(&many_csrcs), Err(ParseError::CsrcOverrun));
    // The extension's length word claims more than is left, or its header is cut.
    let mut long_extension = bytes.clone();
    long_extension[23] = 9;
    assert_eq!(RtpPacket::parse(&long_extension), Err(ParseError::ExtensionOverrun));
    assert_eq!(RtpPacket::parse(&bytes[..22]), Err(ParseError::ExtensionOverrun));
    // Padding of zero, and padding longer than what follows the header.
    let mut zero_padding = bytes.clone();
    *zero_padding.last_mut().unwrap() = 0;
    assert_eq!(RtpPacket::parse(&zero_padding), Err(ParseError::BadPadding { count: 0, available: 8 }));
    let mut long_padding = bytes.clone();
    *long_padding.last_mut().unwrap() = 9;
    assert_eq!(RtpPacket::parse(&long_padding), Err(ParseError::BadPadding { count: 9, available: 8 }));
    // A padded packet with nothing after the header at all.
    assert_eq!(
        RtpPacket::parse(&[0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(ParseError::BadPadding { count: 0, available: 0 })
    );
}

#[test]
fn builds_into_the_callers_buffer_and_parses_back() {
    let header = RtpHeader { marker: true, payload_type: 8, sequence: 65535, timestamp: u32::MAX, ssrc: 0xCAFE_F00D };
    let payload = [0xD5u8; 160];
    let mut out = [0u8; 200];
    let length = header.write(&payload, &mut out).unwrap();
    assert_eq!(length, HEADER_LEN + 160);
    assert_eq!(&out[..12], &[0x80, 0x88, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xCA, 0xFE, 0xF0, 0x0D]);
    let packet = RtpPacket::parse(&out[..length]).unwrap();
    assert_eq!(packet.header(), header);
    assert_eq!(packet.payload, &payload[..]);
    assert_eq!(packet.csrcs().len(), 0);
    assert_eq!(packet.extension, None);
    assert_eq!(header.write(&payload, &mut [0u8; 171]), Err(BufferTooSmall { needed: 172, available: 171 }));
}

/// Random datagrams and bit-flipped valid packets never panic, and whatever parses holds
/// together: its payload lies inside the datagram and its header rebuilds to the same values.
#[test]
fn garbage_never_panics() {
    let mut rng = Rng(0x5EED);
    let valid = full_packet();
    let mut parsed = 0;
    for round in 0..200_000 {
        let datagram: Vec<u8> = if round % 2 == 0 {
            (0..rng.below(300)).map(|_| rng.next() as u8).collect()
        } else {
            let mut mutated = valid.clone();
            for _ in 0..1 + rng.below(4) {
                let index = rng.below(mutated.len());
                mutated[index] ^= 1 << rng.below(8);
            }
            mutated.truncate(rng.below(mutated.len() + 1).max(rng.below(mutated.len() + 1)));
            mutated
        };
        let Ok(packet) = RtpPacket::parse(&datagram) else { continue };
        parsed += 1;
        let range = datagram.as_ptr_range();
        assert!(range.contains(&packet.payload.as_ptr()) || packet.payload.is_empty());
        assert!(packet.payload.len() + HEADER_LEN + packet.csrcs().len() * 4 <= datagram.len());
        let mut out = vec![0u8; HEADER_LEN + packet.payload.len()];
        packet.header().write(packet.payload, &mut out).unwrap();
        assert_eq!(RtpPacket::parse(&out).unwrap().header(), packet.header());
    }
    // Half the inputs are near-valid, so a good share must parse for the test to mean anything.
    assert!(parsed > 10_000, "only {parsed} parsed");
}

#[test]
fn sequence_and_timestamp_deltas_wrap() {
    assert_eq!(seq_delta(2, 65534), 4);
    assert_eq!(seq_delta(65534, 2), -4);
    assert_eq!(seq_delta(100, 100), 0);
    assert_eq!(ts_delta(80, u32::MAX - 79), 160);
    assert_eq!(ts_delta(u32::MAX - 79, 80), -160);
}

fn verdicts(tracker: &mut SequenceTracker, sequence: &[u16]) -> Vec<SequenceVerdict> {
    sequence.iter().map(|&seq| tracker.update(seq)).collect()
}

#[test]
fn a_new_source_needs_two_sequential_packets() {
    use SequenceVerdict::*;
    let mut tracker = SequenceTracker::on_probation(1000);
    assert_eq!(tracker.received(), 0);
    // A non-sequential packet restarts the probation; two in a row validate the source.
    assert_eq!(verdicts(&mut tracker, &[1005, 1006, 1007]), [Probation, InOrder, InOrder]);
    assert_eq!(tracker.received(), 2);
    assert_eq!(tracker.extended_max(), 1007);
    assert_eq!(tracker.expected(), 2);
}

#[test]
fn extended_sequence_counts_wrap_arounds() {
    use SequenceVerdict::*;
    let mut tracker = SequenceTracker::validated(65534);
    assert_eq!(verdicts(&mut tracker, &[65535, 0, 1, 65535, 3]), [InOrder, InOrder, InOrder, Late, InOrder]);
    assert_eq!(tracker.extended_max(), 65536 + 3);
    // 65534..=3 is six numbers; 2 was lost and 65535 came twice.
    assert_eq!(tracker.expected(), 6);
    assert_eq!(tracker.received(), 6);
}

#[test]
fn dropout_misorder_and_restart_follow_rfc_3550_a1() {
    use SequenceVerdict::*;
    let mut tracker = SequenceTracker::validated(10_000);
    // Loss just under MAX_DROPOUT is in order; reordering under MAX_MISORDER is late, and a step
    // back of MAX_MISORDER is a jump.
    assert_eq!(verdicts(&mut tracker, &[12_999, 12_900, 12_899]), [InOrder, Late, Jumped]);
    // A jump of MAX_DROPOUT is suspicious: dropped, and dropped again unless the next follows it.
    assert_eq!(verdicts(&mut tracker, &[15_999, 13_000, 40_000]), [Jumped, InOrder, Jumped]);
    // The packet after the jump confirms a restart; the statistics begin again there.
    assert_eq!(verdicts(&mut tracker, &[40_001, 40_002]), [Restarted, InOrder]);
    assert_eq!(tracker.extended_max(), 40_002);
    assert_eq!(tracker.expected(), 2);
    // A backward jump beyond MAX_MISORDER is a jump too.
    assert_eq!(verdicts(&mut tracker, &[39_000, 39_001]), [Jumped, Restarted]);
}
