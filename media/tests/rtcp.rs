//! RTCP reports: built and parsed back, garbage refused without panic, and the reception
//! statistics of RFC 3550 A.3 and A.8 on generated streams.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use loket_media::rtcp::{
    NtpTime, ReceptionStats, ReportBlock, RtcpError, RtcpPacket, SenderInfo, is_rtcp, parse_compound, round_trip,
    write_report,
};
use loket_media::rtp::{RtpHeader, RtpPacket};

const BLOCK: ReportBlock = ReportBlock {
    ssrc: 0xDEAD_BEEF,
    fraction_lost: 25,
    cumulative_lost: -3,
    extended_highest_sequence: 0x0001_0010,
    jitter: 42,
    last_sr: 0x1234_5678,
    delay_since_last_sr: 65_536,
};

fn report(sender: Option<SenderInfo>, block: Option<ReportBlock>) -> Vec<u8> {
    let mut out = [0u8; 256];
    let length = write_report(0x0102_0304, sender, block, b"abc@loket", &mut out).unwrap();
    assert_eq!(length % 4, 0, "RTCP packets are whole 32-bit words");
    out[..length].to_vec()
}

#[test]
fn a_sender_report_round_trips_with_its_block_and_cname() {
    let info =
        SenderInfo { ntp: NtpTime(0xE000_0000_8000_0000), rtp_timestamp: 160, packet_count: 7, octet_count: 1120 };
    let bytes = report(Some(info), Some(BLOCK));
    assert!(is_rtcp(&bytes));
    let packets: Vec<_> = parse_compound(&bytes).collect::<Result<_, _>>().unwrap();
    let [RtcpPacket::SenderReport { ssrc, info: parsed, blocks }, RtcpPacket::Other { packet_type: 202 }] =
        packets.as_slice()
    else {
        panic!("expected SR + SDES, got {packets:?}");
    };
    assert_eq!((*ssrc, *parsed), (0x0102_0304, info));
    assert_eq!(blocks.collect::<Vec<_>>(), [BLOCK]);
}

#[test]
fn a_receiver_report_without_blocks_round_trips() {
    let bytes = report(None, None);
    let packets: Vec<_> = parse_compound(&bytes).collect::<Result<_, _>>().unwrap();
    let [RtcpPacket::ReceiverReport { ssrc: 0x0102_0304, blocks }, RtcpPacket::Other { .. }] = packets.as_slice()
    else {
        panic!("expected RR + SDES, got {packets:?}");
    };
    assert_eq!(blocks.count(), 0);
}

#[test]
fn truncated_and_random_datagrams_are_errors_not_panics() {
    let bytes =
        report(Some(SenderInfo { ntp: NtpTime(1), rtp_timestamp: 2, packet_count: 3, octet_count: 4 }), Some(BLOCK));
    for cut in 0..bytes.len() {
        let results: Vec<_> = parse_compound(&bytes[..cut]).collect();
        if cut % 4 != 0 || cut < 52 {
            assert!(results.last().is_some_and(Result::is_err) || cut == 0, "cut at {cut}: {results:?}");
        }
    }
    // A report count larger than the packet holds.
    let mut lying = report(None, Some(BLOCK));
    lying[0] = (2 << 6) | 5;
    assert!(matches!(parse_compound(&lying).next(), Some(Err(RtcpError::BlocksOverrun { count: 5, .. }))));
    // Pseudo-random bytes, with the version bits forced half of the time.
    let mut seed = 7u32;
    for round in 0..20_000 {
        let mut datagram = [0u8; 64];
        for byte in &mut datagram {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *byte = (seed >> 24) as u8;
        }
        if round % 2 == 0 {
            datagram[0] = (datagram[0] & 0x3F) | 0x80;
        }
        let length = (seed % 65) as usize;
        for packet in parse_compound(&datagram[..length]) {
            if let Ok(RtcpPacket::SenderReport { blocks, .. } | RtcpPacket::ReceiverReport { blocks, .. }) = packet {
                blocks.for_each(drop);
            }
        }
    }
}

#[test]
fn ntp_time_counts_from_1900() {
    let ntp = NtpTime::from_system_time(UNIX_EPOCH + Duration::from_millis(1500));
    assert_eq!(ntp.0 >> 32, 2_208_988_801);
    assert_eq!(ntp.0 & 0xFFFF_FFFF, 1 << 31);
    assert_eq!(ntp.middle(), (2_208_988_801u32 << 16) | 0x8000);
    assert!(NtpTime::from_system_time(SystemTime::now()) > ntp);
}

struct Stream {
    stats: ReceptionStats,
    epoch: Instant,
}

impl Stream {
    fn new() -> Stream {
        let epoch = Instant::now();
        Stream { stats: ReceptionStats::new(8000, epoch), epoch }
    }

    /// Packet `sequence` (timestamp 160 per packet) arriving `arrival_us` after the epoch.
    fn receive(&mut self, sequence: u16, timestamp: u32, arrival_us: u64) {
        let header = RtpHeader { marker: false, payload_type: 0, sequence, timestamp, ssrc: 99 };
        let mut bytes = [0u8; 172];
        let length = header.write(&[0xFF; 160], &mut bytes).unwrap();
        let packet = RtpPacket::parse(&bytes[..length]).unwrap();
        self.stats.on_rtp(self.epoch + Duration::from_micros(arrival_us), &packet, true);
    }

    fn block(&mut self, at_us: u64) -> ReportBlock {
        self.stats.report_block(self.epoch + Duration::from_micros(at_us)).unwrap()
    }
}

#[test]
fn loss_is_counted_cumulatively_and_per_interval() {
    let mut stream = Stream::new();
    assert_eq!(stream.stats.report_block(stream.epoch), None);
    // 100 packets across the sequence wrap, every tenth lost.
    let first = 65_500u16;
    for index in 0..100u16 {
        if index % 10 != 5 {
            stream.receive(first.wrapping_add(index), u32::from(index) * 160, u64::from(index) * 20_000);
        }
    }
    let block = stream.block(2_000_000);
    assert_eq!(block.ssrc, 99);
    assert_eq!(block.cumulative_lost, 10);
    assert_eq!(block.fraction_lost, (10 * 256 / 100) as u8);
    assert_eq!(block.extended_highest_sequence, 0x1_0000 + u32::from(first.wrapping_add(99)));
    assert_eq!(block.jitter, 0, "perfectly paced packets have no jitter");
    // The next interval has no loss: the fraction starts over, the cumulative count stays.
    for index in 100..150u16 {
        stream.receive(first.wrapping_add(index), u32::from(index) * 160, u64::from(index) * 20_000);
    }
    let block = stream.block(3_000_000);
    assert_eq!((block.fraction_lost, block.cumulative_lost), (0, 10));
}

#[test]
fn jitter_follows_the_arrival_variation() {
    let mut stream = Stream::new();
    // Arrivals alternate 5 ms early and 5 ms late: |D| is 10 ms = 80 ticks for every packet, so
    // the estimate converges on 80.
    for index in 0..500u16 {
        let offset: i64 = if index % 2 == 0 { -5_000 } else { 5_000 };
        let arrival = (i64::from(index) * 20_000 + 10_000 + offset) as u64;
        stream.receive(index, u32::from(index) * 160, arrival);
    }
    let jitter = stream.block(11_000_000).jitter;
    assert!((76..=80).contains(&jitter), "jitter {jitter}");
}

#[test]
fn the_last_sender_report_gives_lsr_and_dlsr_and_the_round_trip() {
    let mut stream = Stream::new();
    stream.receive(1, 160, 0);
    let ntp = NtpTime(0x0000_1234_5678_0000);
    stream.stats.on_sender_report(stream.epoch + Duration::from_millis(100), 99, ntp);
    // A report about another source is not ours.
    stream.stats.on_sender_report(stream.epoch + Duration::from_millis(150), 98, NtpTime(7));
    let block = stream.block(600_000);
    assert_eq!(block.last_sr, 0x1234_5678);
    assert_eq!(block.delay_since_last_sr, 32_768, "half a second in 1/65536 s");
    // The sender gets the block back 0.75 s after its SR: 0.25 s of round trip.
    let arrival = NtpTime(ntp.0 + (3 << 30));
    assert_eq!(round_trip(&block, arrival), Some(Duration::from_millis(250)));
    assert_eq!(round_trip(&ReportBlock { last_sr: 0, ..block }, arrival), None);
}
