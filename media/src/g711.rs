//! ITU-T G.711 µ-law (PCMU) and A-law (PCMA), bit-exact with the reference encoder and decoder
//! (the Sun `g711.c` that CPython's `audioop`, SoX and most telephony stacks share).
//!
//! Linear samples are 16-bit: µ-law keeps their top 14 bits and A-law their top 13, as G.711 §2
//! specifies. Decoding is a 256-entry table; encoding is the segment formula, because the segment
//! number is one `leading_zeros` away and a 64 K-entry table would evict more useful cache lines.
//!
//! Transcoding between the two laws is one table look-up per byte into a caller's buffer. The
//! tables are the composition of this module's decoder and encoder, computed at compile time, so a
//! transcoded sample equals decoding to linear and re-encoding. G.711's Tables 3 and 4 differ from
//! that composition by one quantisation step in 46 of the 256 µ→A entries (see `media/NOTES.md`).

/// The µ-law code of silence; what a muted or not-yet-playing leg sends.
pub const ULAW_SILENCE: u8 = 0xFF;
/// The A-law code closest to silence (+8; A-law has no zero level).
pub const ALAW_SILENCE: u8 = 0xD5;

/// µ-law adds this bias (in 14-bit units) so that every segment starts at a power of two.
const ULAW_BIAS: i32 = 33;
/// The largest 14-bit magnitude µ-law represents (8159 = 8192 - 33).
const ULAW_CLIP: i32 = 8159;

/// Decodes one µ-law code to a 16-bit linear sample.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TO_LINEAR[code as usize]
}

/// Decodes one A-law code to a 16-bit linear sample.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TO_LINEAR[code as usize]
}

/// Encodes one 16-bit linear sample to µ-law.
#[inline]
pub const fn ulaw_encode(sample: i16) -> u8 {
    // The arithmetic shift floors negative values, as the reference does (-1 stays -1, not 0).
    let mut magnitude = (sample as i32) >> 2;
    // The code is transmitted with all bits inverted (G.711 §3.2); the sign bit is set for positive.
    let mask: u8 = if magnitude < 0 {
        magnitude = -magnitude;
        0x7F
    } else {
        0xFF
    };
    if magnitude > ULAW_CLIP {
        magnitude = ULAW_CLIP;
    }
    magnitude += ULAW_BIAS;
    // Biased magnitudes lie in 33..=8192: segment s holds the values whose bit length is s + 6.
    let bit_length = 32 - magnitude.leading_zeros() as i32;
    let segment = if bit_length > 6 { bit_length - 6 } else { 0 };
    if segment >= 8 {
        // Only 8192 (the clipped maximum) gets here; the reference maps it to the top code.
        return 0x7F ^ mask;
    }
    let step = (magnitude >> (segment + 1)) & 0x0F;
    (((segment << 4) | step) as u8) ^ mask
}

/// Encodes one 16-bit linear sample to A-law.
#[inline]
pub const fn alaw_encode(sample: i16) -> u8 {
    let mut magnitude = (sample as i32) >> 3;
    // Even bits are inverted on the line (G.711 §3.3: 0x55); the sign bit is set for positive.
    let mask: u8 = if magnitude >= 0 {
        0xD5
    } else {
        // A-law is symmetric around zero without a zero level, so -1 pairs with 0, -2 with 1, ...
        magnitude = -magnitude - 1;
        0x55
    };
    // 13-bit magnitudes lie in 0..=4095: segment s ≥ 1 holds the values whose bit length is s + 5.
    let bit_length = 32 - magnitude.leading_zeros() as i32;
    let segment = if bit_length > 5 { bit_length - 5 } else { 0 };
    let step = if segment < 2 { (magnitude >> 1) & 0x0F } else { (magnitude >> segment) & 0x0F };
    (((segment << 4) | step) as u8) ^ mask
}

/// Transcodes a PCMU payload to PCMA into `out`, which must be at least as long as `ulaw`.
/// Returns the number of bytes written (`ulaw.len()`), or `None` when `out` is too short.
#[inline]
pub fn ulaw_to_alaw(ulaw: &[u8], out: &mut [u8]) -> Option<usize> {
    transcode(&ULAW_TO_ALAW, ulaw, out)
}

/// Transcodes a PCMA payload to PCMU into `out`, which must be at least as long as `alaw`.
/// Returns the number of bytes written (`alaw.len()`), or `None` when `out` is too short.
#[inline]
pub fn alaw_to_ulaw(alaw: &[u8], out: &mut [u8]) -> Option<usize> {
    transcode(&ALAW_TO_ULAW, alaw, out)
}

/// Decodes a µ-law payload into `out`; returns the number of samples written, or `None` when
/// `out` is too short.
pub fn decode_ulaw(ulaw: &[u8], out: &mut [i16]) -> Option<usize> {
    let out = out.get_mut(..ulaw.len())?;
    for (sample, &code) in out.iter_mut().zip(ulaw) {
        *sample = ulaw_decode(code);
    }
    Some(ulaw.len())
}

/// Decodes an A-law payload into `out`; returns the number of samples written, or `None` when
/// `out` is too short.
pub fn decode_alaw(alaw: &[u8], out: &mut [i16]) -> Option<usize> {
    let out = out.get_mut(..alaw.len())?;
    for (sample, &code) in out.iter_mut().zip(alaw) {
        *sample = alaw_decode(code);
    }
    Some(alaw.len())
}

/// Encodes linear samples to µ-law into `out`; returns the number of bytes written, or `None`
/// when `out` is too short.
pub fn encode_ulaw(samples: &[i16], out: &mut [u8]) -> Option<usize> {
    let out = out.get_mut(..samples.len())?;
    for (code, &sample) in out.iter_mut().zip(samples) {
        *code = ulaw_encode(sample);
    }
    Some(samples.len())
}

fn transcode(table: &[u8; 256], input: &[u8], out: &mut [u8]) -> Option<usize> {
    let out = out.get_mut(..input.len())?;
    for (to, &from) in out.iter_mut().zip(input) {
        *to = table[from as usize];
    }
    Some(input.len())
}

const fn ulaw_decode_formula(code: u8) -> i16 {
    let code = !code;
    let segment = (code & 0x70) >> 4;
    // In 16-bit units the bias is 33 * 4 = 0x84 and a step of segment 0 is 8.
    let magnitude = ((((code & 0x0F) as i32) << 3) + 0x84) << segment;
    if code & 0x80 != 0 { (0x84 - magnitude) as i16 } else { (magnitude - 0x84) as i16 }
}

const fn alaw_decode_formula(code: u8) -> i16 {
    let code = code ^ 0x55;
    let segment = ((code & 0x70) >> 4) as i32;
    let step = ((code & 0x0F) as i32) << 4;
    // Reconstruction is at the middle of the decision interval: + half a step (8, in 16-bit units).
    let magnitude = match segment {
        0 => step + 8,
        1 => step + 0x108,
        _ => (step + 0x108) << (segment - 1),
    };
    if code & 0x80 != 0 { magnitude as i16 } else { -magnitude as i16 }
}

static ULAW_TO_LINEAR: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = ulaw_decode_formula(code as u8);
        code += 1;
    }
    table
};

static ALAW_TO_LINEAR: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = alaw_decode_formula(code as u8);
        code += 1;
    }
    table
};

static ULAW_TO_ALAW: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = alaw_encode(ulaw_decode_formula(code as u8));
        code += 1;
    }
    table
};

static ALAW_TO_ULAW: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut code = 0;
    while code < 256 {
        table[code] = ulaw_encode(alaw_decode_formula(code as u8));
        code += 1;
    }
    table
};
