//! In-band DTMF detection on generated signals: digits, noise, twist, timing, and audio that must
//! not be taken for digits. Everything is synthesised with a seeded generator.

use std::f64::consts::PI;

use loket_media::dtmf::Digit;
use loket_media::dtmf::inband::{self, InbandDetector};
use loket_media::tone;

const RATE: f64 = 8000.0;
/// Peak amplitude of a 0 dBm0 sine in 16-bit units (G.711: full scale is +3.17 dBm0).
const ZERO_DBM0_PEAK: f64 = 22_651.0;

/// SplitMix64, so that every run hears the same noise.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn gaussian(&mut self) -> f64 {
        let radius = (-2.0 * (1.0 - self.unit()).ln()).sqrt();
        radius * (2.0 * PI * self.unit()).cos()
    }
}

fn peak(dbm0: f64) -> f64 {
    ZERO_DBM0_PEAK * 10f64.powf(dbm0 / 20.0)
}

fn samples(ms: f64) -> usize {
    (ms * RATE / 1000.0).round() as usize
}

/// A signal under construction, as floating-point samples.
#[derive(Default)]
struct Signal(Vec<f64>);

impl Signal {
    fn silence(mut self, ms: f64) -> Self {
        self.0.extend(std::iter::repeat_n(0.0, samples(ms)));
        self
    }

    /// A digit's two tones at the given levels per tone, optionally off-frequency by `deviation`
    /// (0.01 = 1 %).
    fn tone(mut self, digit: Digit, ms: f64, row_dbm0: f64, column_dbm0: f64, deviation: f64) -> Self {
        let (row, column) = digit.frequencies();
        let (row, column) = (f64::from(row) * (1.0 + deviation), f64::from(column) * (1.0 + deviation));
        let start = self.0.len();
        self.0.extend((0..samples(ms)).map(|index| {
            let t = (start + index) as f64 / RATE;
            peak(row_dbm0) * (2.0 * PI * row * t).sin() + peak(column_dbm0) * (2.0 * PI * column * t + 1.0).sin()
        }));
        self
    }

    fn digits(mut self, keys: &str, tone_ms: f64, pause_ms: f64, dbm0: f64) -> Self {
        for key in keys.chars() {
            self = self.tone(Digit::from_char(key).unwrap(), tone_ms, dbm0, dbm0, 0.0).silence(pause_ms);
        }
        self
    }

    /// Adds white Gaussian noise at `dbm0` (its mean square relative to a 0 dBm0 sine's).
    fn with_noise(mut self, rng: &mut Rng, dbm0: f64) -> Self {
        let sigma = peak(dbm0) / 2f64.sqrt();
        for sample in &mut self.0 {
            *sample += sigma * rng.gaussian();
        }
        self
    }

    fn pcm(&self) -> Vec<i16> {
        self.0.iter().map(|&sample| sample.round().clamp(-32768.0, 32767.0) as i16).collect()
    }
}

/// The digits detected, feeding the signal in 20 ms frames as the media path will.
fn detect(signal: &Signal) -> String {
    let mut detector = InbandDetector::default();
    let mut keys = String::new();
    for frame in signal.pcm().chunks(160) {
        detector.process(frame, |digit| keys.push(digit.as_char()));
    }
    keys
}

const ALL_KEYS: &str = "0123456789*#ABCD";

#[test]
fn all_sixteen_digits() {
    assert_eq!(detect(&Signal::default().digits(ALL_KEYS, 60.0, 60.0, -10.0)), ALL_KEYS);
    // Loud (−3 dBm0 per tone) and quiet (−25 dBm0), and a detector fed one sample at a time.
    assert_eq!(detect(&Signal::default().digits(ALL_KEYS, 60.0, 60.0, -3.0)), ALL_KEYS);
    assert_eq!(detect(&Signal::default().digits(ALL_KEYS, 60.0, 60.0, -25.0)), ALL_KEYS);
    let mut detector = InbandDetector::default();
    let mut keys = String::new();
    for sample in Signal::default().digits("159#", 60.0, 60.0, -10.0).pcm() {
        detector.process(&[sample], |digit| keys.push(digit.as_char()));
    }
    assert_eq!(keys, "159#");
}

#[test]
fn digits_in_white_noise() {
    let mut rng = Rng(4733);
    // Tones at −20 dBm0 each (−17 dBm0 together) over noise at −32 dBm0: 15 dB SNR, a poor line.
    for seed_round in 0..4 {
        let signal = Signal::default().silence(100.0 + 7.0 * f64::from(seed_round)).digits(ALL_KEYS, 70.0, 70.0, -20.0);
        assert_eq!(detect(&signal.with_noise(&mut rng, -32.0)), ALL_KEYS, "round {seed_round}");
    }
    // Noise alone, even loud, is no digit.
    let noise = Signal::default().silence(5000.0).with_noise(&mut rng, -10.0);
    assert_eq!(detect(&noise), "");
}

#[test]
fn tones_off_frequency_by_one_and_a_half_percent_are_accepted() {
    for deviation in [-0.015, 0.015] {
        let mut signal = Signal::default();
        for key in ALL_KEYS.chars() {
            signal = signal.tone(Digit::from_char(key).unwrap(), 60.0, -10.0, -10.0, deviation).silence(60.0);
        }
        assert_eq!(detect(&signal), ALL_KEYS, "deviation {deviation}");
    }
}

#[test]
fn twist_within_limits_is_accepted_and_beyond_is_rejected() {
    let twisted = |row_dbm0, column_dbm0| {
        let mut signal = Signal::default();
        for key in ALL_KEYS.chars() {
            signal = signal.tone(Digit::from_char(key).unwrap(), 60.0, row_dbm0, column_dbm0, 0.0).silence(60.0);
        }
        detect(&signal)
    };
    // Normal twist (row stronger): 6 dB passes, 10 dB does not (limit 8 dB).
    assert_eq!(twisted(-10.0, -16.0), ALL_KEYS);
    assert_eq!(twisted(-10.0, -20.0), "");
    // Reverse twist (column stronger): 3 dB passes, 6 dB does not (limit 4 dB).
    assert_eq!(twisted(-13.0, -10.0), ALL_KEYS);
    assert_eq!(twisted(-16.0, -10.0), "");
}

/// What loket sends in-band: each digit's tones at the level asked for, which its own detector
/// (and so, presumably, the far end's) takes for that digit.
#[test]
fn generated_digits_are_detected_and_at_their_level() {
    let mut detector = InbandDetector::default();
    let mut keys = String::new();
    for key in ALL_KEYS.chars() {
        let digit = Digit::from_char(key).unwrap();
        // 100 ms of tones and 60 ms of pause, as a session sends them.
        let mut samples = [0i16; 1280];
        inband::generate(digit, -10.0, &mut samples[..800]);
        let (row, column) = digit.frequencies();
        for frequency in [row, column] {
            let amplitude = tone::amplitude(&samples[..800], f64::from(frequency));
            assert!((amplitude / peak(-10.0) - 1.0).abs() < 0.03, "{key} at {frequency} Hz: {amplitude}");
        }
        for frame in samples.chunks(160) {
            detector.process(frame, |digit| keys.push(digit.as_char()));
        }
    }
    assert_eq!(keys, ALL_KEYS);
}

#[test]
fn tones_too_weak_are_ignored() {
    assert_eq!(detect(&Signal::default().digits("123", 60.0, 60.0, -36.0)), "");
}

#[test]
fn short_tones_are_rejected_at_every_alignment() {
    // Every offset of the tone against the 102-sample blocks, in steps of 3 samples.
    for offset in (0..102).step_by(3) {
        let lead = offset as f64 / 8.0;
        let short = Signal::default().silence(lead).digits("1593", 20.0, 60.0, -10.0);
        assert_eq!(detect(&short), "", "20 ms tones at offset {offset}");
        let long_enough = Signal::default().silence(lead).digits("1593", 40.0, 60.0, -10.0);
        assert_eq!(detect(&long_enough), "1593", "40 ms tones at offset {offset}");
    }
}

#[test]
fn a_held_key_is_one_digit_and_a_pause_separates_repeats() {
    assert_eq!(detect(&Signal::default().digits("5", 2000.0, 100.0, -10.0)), "5");
    // A 10 ms dropout inside a tone (a codec glitch) does not make a second digit.
    let glitch = Signal::default().tone(Digit::D7, 100.0, -10.0, -10.0, 0.0).silence(10.0).tone(
        Digit::D7,
        100.0,
        -10.0,
        -10.0,
        0.0,
    );
    assert_eq!(detect(&glitch), "7");
    // The same key twice with a 40 ms pause is two digits.
    assert_eq!(detect(&Signal::default().digits("11", 60.0, 40.0, -10.0)), "11");
}

/// A vowel: harmonics of a fundamental gliding between `f0_from` and `f0_to` Hz, shaped by three
/// formant resonances and a −12 dB/octave glottal tilt, at about −10 dBm0.
fn vowel(rng: &mut Rng, ms: f64, f0_from: f64, f0_to: f64, formants: [f64; 3]) -> Vec<f64> {
    let count = samples(ms);
    let bandwidths = [90.0, 110.0, 170.0];
    // The gain of the three resonances at frequency f (a second-order resonance's magnitude).
    let gain = |f: f64| -> f64 {
        formants
            .iter()
            .zip(bandwidths)
            .map(|(&formant, bandwidth)| {
                let detune = (formant * formant - f * f) / (f * bandwidth);
                1.0 / (1.0 + detune * detune).sqrt()
            })
            .product::<f64>()
            * (100.0 / f).powi(2).min(1.0)
            + 1e-3
    };
    let mut phases = [0.0f64; 40];
    let mut gains = [0.0f64; 40];
    let mut out = Vec::with_capacity(count);
    for index in 0..count {
        let progress = index as f64 / count as f64;
        let glide = f0_from + (f0_to - f0_from) * progress;
        // The vocal tract moves slowly: its gains are recomputed every 10 ms.
        if index % 80 == 0 {
            for (harmonic, harmonic_gain) in gains.iter_mut().enumerate() {
                *harmonic_gain = gain(glide * (harmonic + 1) as f64);
            }
        }
        // Jitter of a fraction of a percent, as a real voice has.
        let f0 = glide * (1.0 + 0.003 * rng.gaussian());
        let mut sample = 0.0;
        for (harmonic, (phase, harmonic_gain)) in phases.iter_mut().zip(&gains).enumerate() {
            let frequency = f0 * (harmonic + 1) as f64;
            if frequency > 3600.0 {
                break;
            }
            *phase += 2.0 * PI * frequency / RATE;
            sample += harmonic_gain * phase.sin();
        }
        out.push(sample);
    }
    // Normalise to an RMS of −10 dBm0.
    let rms = (out.iter().map(|sample| sample * sample).sum::<f64>() / count as f64).sqrt();
    let target = peak(-10.0) / 2f64.sqrt();
    out.iter().map(|sample| sample * target / rms).collect()
}

#[test]
fn speech_like_vowels_do_not_trigger_digits() {
    let mut rng = Rng(2833);
    // Formants of /a/, /e/, /i/, /o/, /u/ (Peterson & Barney, male) and two placed on DTMF rows
    // and columns on purpose, each sung on a glide from 100 to 200 Hz and back.
    let vowels = [
        [730.0, 1090.0, 2440.0],
        [530.0, 1840.0, 2480.0],
        [270.0, 2290.0, 3010.0],
        [570.0, 840.0, 2410.0],
        [300.0, 870.0, 2240.0],
        [697.0, 1209.0, 2500.0],
        [852.0, 1477.0, 2500.0],
    ];
    let mut speech = Signal::default();
    for formants in vowels {
        speech.0.extend(vowel(&mut rng, 1500.0, 100.0, 200.0, formants));
        speech.0.extend(vowel(&mut rng, 1500.0, 200.0, 100.0, formants));
        speech.0.extend(vowel(&mut rng, 1000.0, 120.0, 120.0, formants));
    }
    assert_eq!(detect(&speech), "");
    // Speech under noise, too.
    assert_eq!(detect(&speech.with_noise(&mut rng, -35.0)), "");
}

#[test]
fn a_chirp_does_not_trigger_digits() {
    // A linear sweep from 300 to 3400 Hz in one second, then back down in half a second.
    let mut chirp = Signal::default();
    let mut phase = 0.0f64;
    for (from, to, ms) in [(300.0, 3400.0, 1000.0), (3400.0, 300.0, 500.0)] {
        let count = samples(ms);
        for index in 0..count {
            let frequency = from + (to - from) * index as f64 / count as f64;
            phase += 2.0 * PI * frequency / RATE;
            chirp.0.push(peak(-6.0) * phase.sin());
        }
    }
    assert_eq!(detect(&chirp), "");
}
