//! How strongly one frequency sounds in 8 kHz audio (Goertzel): for tests and tools that check
//! who hears whom. The in-band DTMF detector keeps its own bank of filters, tuned for speed.

use crate::recording::SAMPLE_RATE;

/// The Goertzel power of `frequency` in `samples`.
pub fn power(samples: &[i16], frequency: f64) -> f64 {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * frequency / f64::from(SAMPLE_RATE)).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &sample in samples {
        let s = f64::from(sample) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coefficient * s1 * s2
}

/// The amplitude (in sample units) of a tone at `frequency` in `samples`: a sine of amplitude A
/// over N samples has a power of about (A·N/2)².
pub fn amplitude(samples: &[i16], frequency: f64) -> f64 {
    let n = samples.len().max(1) as f64;
    (4.0 * power(samples, frequency) / (n * n)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_is_measured_at_its_frequency_only() {
        let tone: Vec<i16> = (0..800)
            .map(|n| (4_000.0 * (2.0 * std::f64::consts::PI * 450.0 * f64::from(n) / 8_000.0).sin()) as i16)
            .collect();
        assert!((amplitude(&tone, 450.0) - 4_000.0).abs() < 100.0, "{}", amplitude(&tone, 450.0));
        assert!(amplitude(&tone, 1_100.0) < 100.0, "{}", amplitude(&tone, 1_100.0));
    }
}
