//! In-band DTMF detection: Goertzel filters at the eight ITU-T Q.23 frequencies over 8 kHz PCM.
//! And `generate`, the two tones of a digit, for a far end that takes no telephone-events.
//!
//! Samples are analysed in blocks of `BLOCK_LEN` (102 samples, 12.75 ms: a frequency resolution of
//! 78 Hz, enough to separate the rows, 73–89 Hz apart). Two banks of filters run half a block
//! apart, so a block ends every `HOP` samples (6.4 ms): a block that straddles the start or end of
//! a tone spreads the tone over neighbouring rows and fails the relative-peak check, and with
//! blocks every 6.4 ms a tone of 40 ms still holds enough whole blocks. A block is a *hit* for a
//! digit when all of these hold (the checks of Q.24 and of the classic detectors, spandsp's among
//! them):
//! - both tones are above a minimum level;
//! - the twist (the level difference between the two tones) is within limits: the row tone may be
//!   up to 8 dB stronger (normal twist, the line attenuating the high group) and the column tone up
//!   to 4 dB stronger (reverse twist);
//! - each tone is the strongest of its group by a margin (relative peak), which rejects chords
//!   and the broad spectra of speech;
//! - the two tones hold most of the block's energy, which rejects speech and music whose
//!   harmonics happen to fall on a row and a column frequency.
//!
//! A digit is reported once, after `HITS_TO_START` consecutive hits (255 samples, 32 ms, of whole
//! blocks: tones of 40 ms are detected at any alignment, tones of 20 ms never), and only after
//! `MISSES_TO_END` blocks without it (≈ 32 ms) have ended the previous one, so a key held down or a
//! 10 ms dropout is still one digit while a 40 ms pause separates two.

use std::f32::consts::TAU;

use crate::dtmf::{Digit, digit_at};

/// The low-group (row) frequencies in Hz (ITU-T Q.23).
pub const ROW_FREQUENCIES: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// The high-group (column) frequencies in Hz.
pub const COLUMN_FREQUENCIES: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Samples per analysis block.
pub const BLOCK_LEN: usize = 102;
/// Samples between the ends of two overlapping blocks.
pub const HOP: usize = BLOCK_LEN / 2;
/// Consecutive hits that start a digit.
pub const HITS_TO_START: u8 = 4;
/// Consecutive blocks without the digit that end it.
pub const MISSES_TO_END: u8 = 5;

const SAMPLE_RATE: f32 = 8000.0;

/// Thresholds, in dB where that is how they are specified.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InbandConfig {
    /// The weakest tone accepted, in dBm0 (G.711: a full-scale sine is +3.17 dBm0).
    pub min_level_dbm0: f32,
    /// How much stronger the row tone may be than the column tone (normal twist).
    pub max_normal_twist_db: f32,
    /// How much stronger the column tone may be than the row tone (reverse twist).
    pub max_reverse_twist_db: f32,
    /// How much stronger each tone must be than the others of its group.
    pub min_relative_peak_db: f32,
    /// The share of the block's energy the two tones must hold, 0–1.
    pub min_tone_share: f32,
}

impl Default for InbandConfig {
    fn default() -> Self {
        InbandConfig {
            min_level_dbm0: -30.0,
            max_normal_twist_db: 8.0,
            max_reverse_twist_db: 4.0,
            min_relative_peak_db: 8.0,
            min_tone_share: 0.5,
        }
    }
}

/// A streaming detector for one direction of one call. Feed it any number of samples at a time;
/// it keeps the partial block between calls and allocates nothing.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    thresholds: Thresholds,
    /// 2·cos(2πf/fs) for the four rows then the four columns.
    coefficients: [f32; 8],
    /// Two banks, half a block apart.
    banks: [Bank; 2],
    candidate: Option<Digit>,
    candidate_hits: u8,
    /// The digit reported and not yet released.
    down: Option<Digit>,
    misses: u8,
}

/// One block in progress: the Goertzel state s[n-1], s[n-2] of each filter and the energy.
#[derive(Debug, Clone, Copy, Default)]
struct Bank {
    state: [[f32; 2]; 8],
    energy: f32,
    filled: usize,
    /// Samples to let pass before the first block, which puts the second bank half a block late.
    delay: usize,
}

#[derive(Debug, Clone, Copy)]
struct Thresholds {
    /// Mean square of a tone at the minimum level.
    min_mean_square: f32,
    normal_twist: f32,
    reverse_twist: f32,
    relative_peak: f32,
    tone_share: f32,
}

impl InbandDetector {
    pub fn new(config: InbandConfig) -> Self {
        let power_ratio = |db: f32| 10f32.powf(db / 10.0);
        // A sine's mean square is half the square of its peak.
        let min_peak = peak(config.min_level_dbm0);
        let thresholds = Thresholds {
            min_mean_square: min_peak * min_peak / 2.0,
            normal_twist: power_ratio(config.max_normal_twist_db),
            reverse_twist: power_ratio(config.max_reverse_twist_db),
            relative_peak: power_ratio(config.min_relative_peak_db),
            tone_share: config.min_tone_share,
        };
        let mut coefficients = [0.0; 8];
        for (coefficient, frequency) in coefficients.iter_mut().zip(ROW_FREQUENCIES.iter().chain(&COLUMN_FREQUENCIES)) {
            *coefficient = 2.0 * (2.0 * std::f32::consts::PI * frequency / SAMPLE_RATE).cos();
        }
        InbandDetector {
            thresholds,
            coefficients,
            banks: [Bank::default(), Bank { delay: HOP, ..Bank::default() }],
            candidate: None,
            candidate_hits: 0,
            down: None,
            misses: 0,
        }
    }

    /// Analyses `samples` (8 kHz, 16-bit) and calls `on_digit` once for each digit that starts.
    pub fn process(&mut self, samples: &[i16], mut on_digit: impl FnMut(Digit)) {
        for &sample in samples {
            let x = f32::from(sample);
            // The banks finish their blocks on different samples, so at most one completes here
            // and hits are judged in time order.
            for bank_index in 0..2 {
                let bank = &mut self.banks[bank_index];
                if bank.delay > 0 {
                    bank.delay -= 1;
                    continue;
                }
                bank.energy += x * x;
                for (state, &coefficient) in bank.state.iter_mut().zip(&self.coefficients) {
                    let next = x + coefficient * state[0] - state[1];
                    state[1] = state[0];
                    state[0] = next;
                }
                bank.filled += 1;
                if bank.filled == BLOCK_LEN {
                    let finished = std::mem::take(bank);
                    let hit = self.classify_block(&finished);
                    if let Some(digit) = self.advance(hit) {
                        on_digit(digit);
                    }
                }
            }
        }
    }

    /// The digit this block holds, if it passes every check.
    fn classify_block(&self, block: &Bank) -> Option<Digit> {
        // Mean square of the component at each frequency: 2|X|²/N² for a Goertzel output X.
        let scale = 2.0 / (BLOCK_LEN * BLOCK_LEN) as f32;
        let mut powers = [0.0f32; 8];
        for ((power, state), &coefficient) in powers.iter_mut().zip(&block.state).zip(&self.coefficients) {
            *power = (state[0] * state[0] + state[1] * state[1] - coefficient * state[0] * state[1]) * scale;
        }
        let (rows, columns) = powers.split_at(4);
        let (row, row_power) = strongest(rows);
        let (column, column_power) = strongest(columns);
        let t = &self.thresholds;
        if row_power < t.min_mean_square || column_power < t.min_mean_square {
            return None;
        }
        if row_power > column_power * t.normal_twist || column_power > row_power * t.reverse_twist {
            return None;
        }
        let peaks_stand_out = |group: &[f32], best: usize, best_power: f32| {
            group.iter().enumerate().all(|(index, &power)| index == best || power * t.relative_peak <= best_power)
        };
        if !peaks_stand_out(rows, row, row_power) || !peaks_stand_out(columns, column, column_power) {
            return None;
        }
        let mean_square = block.energy / BLOCK_LEN as f32;
        if row_power + column_power < t.tone_share * mean_square {
            return None;
        }
        digit_at(row, column)
    }

    /// Whether a digit is sounding: reported, and not yet ended by `MISSES_TO_END` blocks
    /// without it.
    pub fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// Moves the start/stop state by one block; returns a digit that has just started.
    fn advance(&mut self, hit: Option<Digit>) -> Option<Digit> {
        if hit.is_some() && hit == self.candidate {
            self.candidate_hits = self.candidate_hits.saturating_add(1);
        } else {
            self.candidate = hit;
            self.candidate_hits = u8::from(hit.is_some());
        }
        if self.down.is_some() {
            if hit == self.down {
                self.misses = 0;
            } else {
                self.misses += 1;
                if self.misses >= MISSES_TO_END {
                    self.down = None;
                }
            }
        }
        if self.down.is_none() && self.candidate_hits >= HITS_TO_START {
            self.down = self.candidate;
            self.misses = 0;
            return self.candidate;
        }
        None
    }
}

impl Default for InbandDetector {
    fn default() -> Self {
        InbandDetector::new(InbandConfig::default())
    }
}

/// Writes `digit`'s two tones into `samples` (8 kHz), each at `level_dbm0`, both starting at phase
/// zero at the first sample: what loket sends in-band to a far end without telephone-events.
pub fn generate(digit: Digit, level_dbm0: f32, samples: &mut [i16]) {
    let (row, column) = digit.frequencies();
    let amplitude = peak(level_dbm0);
    let (row_step, column_step) = (TAU * row / SAMPLE_RATE, TAU * column / SAMPLE_RATE);
    for (index, sample) in samples.iter_mut().enumerate() {
        // The phase from the sample index, not accumulated, so that f32 rounding cannot drift.
        let n = index as f32;
        // Two tones at a level a G.711 channel carries never exceed full scale; `as` would
        // saturate if they did.
        *sample = (amplitude * ((row_step * n).sin() + (column_step * n).sin())) as i16;
    }
}

/// The peak, in 16-bit units, of a sine at `dbm0`: G.711's full scale (32636 after µ-law's
/// clipping) is +3.17 dBm0.
fn peak(dbm0: f32) -> f32 {
    32636.0 * 10f32.powf((dbm0 - 3.17) / 20.0)
}

/// The index and power of the strongest of a group.
fn strongest(group: &[f32]) -> (usize, f32) {
    group
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::MIN), |best, (index, power)| if power > best.1 { (index, power) } else { best })
}
