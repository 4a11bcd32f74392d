//! G.711 against the reference implementation and the properties of the standard.

use loket_media::g711::{
    ALAW_SILENCE, ULAW_SILENCE, alaw_decode, alaw_encode, alaw_to_ulaw, decode_ulaw, encode_ulaw, ulaw_decode,
    ulaw_encode, ulaw_to_alaw,
};

/// FNV-1a, to compare 65,536 encodings with a reference in one constant.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

// The reference fingerprints were computed with CPython 3.11's `audioop` (the Sun reference
// G.711 code): `lin2ulaw`/`lin2alaw` over every 16-bit sample from -32768 to 32767, and
// `ulaw2lin`/`alaw2lin` over the codes 0..=255 as little-endian 16-bit samples.
#[test]
fn encoders_match_the_reference_for_every_16_bit_sample() {
    let all_samples = || i16::MIN..=i16::MAX;
    assert_eq!(fnv1a(all_samples().map(ulaw_encode)), 0xd5ee_23f7_d0ff_ae91);
    assert_eq!(fnv1a(all_samples().map(alaw_encode)), 0xf030_666e_b780_cf25);
}

#[test]
fn decoders_match_the_reference_for_every_code() {
    let ulaw = (0..=255u8).flat_map(|code| ulaw_decode(code).to_le_bytes());
    let alaw = (0..=255u8).flat_map(|code| alaw_decode(code).to_le_bytes());
    assert_eq!(fnv1a(ulaw), 0xb91e_65d6_8481_a1a8);
    assert_eq!(fnv1a(alaw), 0x693a_40ca_62a3_d2a5);
}

#[test]
fn known_values() {
    // Extremes, the two zeros of µ-law, the smallest A-law levels.
    assert_eq!(ulaw_decode(0x00), -32124);
    assert_eq!(ulaw_decode(0x80), 32124);
    assert_eq!(ulaw_decode(0xFF), 0);
    assert_eq!(ulaw_decode(0x7F), 0);
    assert_eq!(ulaw_decode(0xFE), 8);
    assert_eq!(ulaw_decode(0xF0), 120);
    assert_eq!(ulaw_decode(0xEF), 132);
    assert_eq!(alaw_decode(0xD5), 8);
    assert_eq!(alaw_decode(0x55), -8);
    assert_eq!(alaw_decode(0xAA), 32256);
    assert_eq!(alaw_decode(0x2A), -32256);
    assert_eq!(alaw_decode(0xC5), 264);
    assert_eq!(alaw_decode(0xF5), 528);
    assert_eq!(ulaw_encode(0), ULAW_SILENCE);
    assert_eq!(alaw_encode(0), ALAW_SILENCE);
    for (sample, code) in
        [(1, 0xFF), (-1, 0x7E), (123, 0xF0), (124, 0xEF), (132, 0xEF), (32767, 0x80), (-32768, 0x00), (1000, 0xCE)]
    {
        assert_eq!(ulaw_encode(sample), code, "µ-law of {sample}");
    }
    for (sample, code) in [(255, 0xDA), (256, 0xC5), (-256, 0x5A), (512, 0xF5), (32767, 0xAA), (-32768, 0x2A)] {
        assert_eq!(alaw_encode(sample), code, "A-law of {sample}");
    }
}

#[test]
fn every_code_survives_decode_then_encode() {
    for code in 0..=255u8 {
        // µ-law has a negative zero (0x7F) that decodes to 0 and comes back as the positive zero.
        let expected = if code == 0x7F { 0xFF } else { code };
        assert_eq!(ulaw_encode(ulaw_decode(code)), expected, "µ-law {code:#04x}");
        assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
    }
}

/// The reconstruction levels of one sign, from the smallest magnitude to the largest.
fn positive_levels(decode: fn(u8) -> i16, sign_and_mask: fn(u8) -> u8) -> Vec<i32> {
    (0..128u8).map(|magnitude_code| i32::from(decode(sign_and_mask(magnitude_code)))).collect()
}

#[test]
fn segments_double_their_step() {
    // µ-law: positive codes are 0xFF (smallest) down to 0x80; 8 segments of 16 steps, the step
    // doubling from 8 (in 16-bit units) in segment 0 to 1024 in segment 7.
    let ulaw = positive_levels(ulaw_decode, |magnitude| 0xFF - magnitude);
    for segment in 0..8 {
        let levels = &ulaw[segment * 16..segment * 16 + 16];
        let step = 8 << segment;
        assert!(levels.windows(2).all(|pair| pair[1] - pair[0] == step), "µ-law segment {segment}: {levels:?}");
    }
    // Segment boundaries: the first level of each segment (G.711 Table 2a, scaled by 4).
    let starts: Vec<i32> = (0..8).map(|segment| ulaw[segment * 16]).collect();
    assert_eq!(starts, [0, 132, 396, 924, 1980, 4092, 8316, 16764]);

    // A-law: segments 0 and 1 share the step 16; it doubles after that up to 1024.
    let alaw = positive_levels(alaw_decode, |magnitude| magnitude ^ 0xD5);
    for segment in 0..8 {
        let levels = &alaw[segment * 16..segment * 16 + 16];
        let step = if segment < 2 { 16 } else { 16 << (segment - 1) };
        assert!(levels.windows(2).all(|pair| pair[1] - pair[0] == step), "A-law segment {segment}: {levels:?}");
    }
    let starts: Vec<i32> = (0..8).map(|segment| alaw[segment * 16]).collect();
    assert_eq!(starts, [8, 264, 528, 1056, 2112, 4224, 8448, 16896]);
}

#[test]
fn encoding_is_monotonic_and_symmetric() {
    let mut previous_ulaw = i16::MIN;
    let mut previous_alaw = i16::MIN;
    for sample in i16::MIN..=i16::MAX {
        let ulaw = ulaw_decode(ulaw_encode(sample));
        let alaw = alaw_decode(alaw_encode(sample));
        assert!(ulaw >= previous_ulaw && alaw >= previous_alaw, "not monotonic at {sample}");
        previous_ulaw = ulaw;
        previous_alaw = alaw;
    }
    for code in 0..128u8 {
        assert_eq!(ulaw_decode(code), -ulaw_decode(code | 0x80));
        assert_eq!(alaw_decode(code), -alaw_decode(code | 0x80));
    }
}

#[test]
fn transcoding_equals_decode_then_encode_and_stays_within_one_step() {
    let all_codes: Vec<u8> = (0..=255).collect();
    let mut alaw = [0u8; 256];
    let mut ulaw = [0u8; 256];
    assert_eq!(ulaw_to_alaw(&all_codes, &mut alaw), Some(256));
    assert_eq!(alaw_to_ulaw(&all_codes, &mut ulaw), Some(256));
    for code in 0..=255u8 {
        let index = usize::from(code);
        assert_eq!(alaw[index], alaw_encode(ulaw_decode(code)));
        assert_eq!(ulaw[index], ulaw_encode(alaw_decode(code)));
        // The error of a transcoded sample is below the coarser law's step at that level.
        let linear = i32::from(ulaw_decode(code));
        let error = (i32::from(alaw_decode(alaw[index])) - linear).abs();
        assert!(error <= 1024.max(linear.abs() / 16), "µ {code:#04x}: {linear} → error {error}");
    }
    // Silence stays silence; the maxima stay maxima.
    assert_eq!(alaw[usize::from(ULAW_SILENCE)], ALAW_SILENCE);
    // A-law's quietest level (+8) exists in µ-law too.
    assert_eq!(ulaw_decode(ulaw[usize::from(ALAW_SILENCE)]), 8);
    assert_eq!(alaw[0x80], 0xAA);
    assert_eq!(ulaw[0xAA], 0x80);
}

#[test]
fn transcoding_a_packet_writes_into_the_callers_buffer() {
    let payload: Vec<u8> = (0..160).map(|index| (index * 7 % 256) as u8).collect();
    let mut alaw = [0u8; 172];
    let mut back = [0u8; 160];
    assert_eq!(ulaw_to_alaw(&payload, &mut alaw), Some(160));
    assert_eq!(alaw_to_ulaw(&alaw[..160], &mut back), Some(160));
    // A round trip through A-law moves a µ-law code by at most one step at low levels.
    for (original, returned) in payload.iter().zip(back) {
        let difference = (i32::from(ulaw_decode(*original)) - i32::from(ulaw_decode(returned))).abs();
        assert!(
            difference <= 1024.max(i32::from(ulaw_decode(*original)).abs() / 8),
            "{original:#04x} → {returned:#04x}"
        );
    }
    let mut short = [0u8; 159];
    assert_eq!(ulaw_to_alaw(&payload, &mut short), None);
}

#[test]
fn linear_buffers_round_trip() {
    let samples: Vec<i16> = (0..160).map(|index| ((index as f64 / 10.0).sin() * 12000.0) as i16).collect();
    let mut encoded = [0u8; 160];
    let mut decoded = [0i16; 160];
    assert_eq!(encode_ulaw(&samples, &mut encoded), Some(160));
    assert_eq!(decode_ulaw(&encoded, &mut decoded), Some(160));
    for (sample, back) in samples.iter().zip(decoded) {
        // µ-law keeps about 1/32 relative precision: half a step of the top segment is 512.
        assert!((i32::from(*sample) - i32::from(back)).abs() <= 512.max(i32::from(*sample).abs() / 16));
    }
    assert_eq!(decode_ulaw(&encoded, &mut [0i16; 10]), None);
}
