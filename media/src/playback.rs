//! Prompt playback: prompts encoded to µ-law once, at load, and a player that paces their 20 ms
//! frames on a drift-free schedule.
//!
//! The player is a pure state machine: the caller passes the current time and gets back the frames
//! that are due. Frame k is due at `start + k × 20 ms`, computed from the start and never from the
//! previous send, so late wake-ups do not accumulate into drift and the RTP timestamps (k × 160)
//! always match the wall clock. A wake-up later than `MAX_LATENESS` skips the frames it missed
//! rather than sending them in a burst that the far end's jitter buffer would drop anyway.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::g711::{ULAW_SILENCE, ulaw_encode};

/// Samples per frame: 20 ms at 8 kHz, the packetisation of every G.711 leg.
pub const FRAME_LEN: usize = 160;
/// The time one frame lasts.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);
/// How late a frame may be sent; later ones are skipped.
pub const MAX_LATENESS: Duration = Duration::from_millis(60);

/// A prompt as µ-law frames, shared by every call that plays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// A whole number of frames; the last one padded with silence.
    ulaw: Arc<[u8]>,
}

/// Why a file is not a usable prompt.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("not a readable WAV file: {0}")]
    Wav(#[from] hound::Error),
    #[error("prompts must be 16-bit mono 8000 Hz PCM; this is {bits}-bit, {channels} channel(s), {sample_rate} Hz")]
    Format { bits: u16, channels: u16, sample_rate: u32 },
}

impl Prompt {
    /// Encodes linear 8 kHz samples.
    pub fn from_pcm(samples: &[i16]) -> Prompt {
        let mut ulaw: Vec<u8> = samples.iter().map(|&sample| ulaw_encode(sample)).collect();
        ulaw.resize(samples.len().div_ceil(FRAME_LEN) * FRAME_LEN, ULAW_SILENCE);
        Prompt { ulaw: ulaw.into() }
    }

    /// Reads and encodes a 16-bit mono 8 kHz WAV file. Other formats are refused rather than
    /// resampled: prompts are produced for the telephone, and a wrong one should be seen at load.
    pub fn from_wav(reader: impl Read) -> Result<Prompt, PromptError> {
        let reader = hound::WavReader::new(reader)?;
        let spec = reader.spec();
        if spec.channels != 1
            || spec.sample_rate != 8000
            || spec.bits_per_sample != 16
            || spec.sample_format != hound::SampleFormat::Int
        {
            return Err(PromptError::Format {
                bits: spec.bits_per_sample,
                channels: spec.channels,
                sample_rate: spec.sample_rate,
            });
        }
        let samples = reader.into_samples::<i16>().collect::<Result<Vec<i16>, _>>()?;
        Ok(Prompt::from_pcm(&samples))
    }

    /// The number of 20 ms frames.
    pub fn frames(&self) -> usize {
        self.ulaw.len() / FRAME_LEN
    }

    fn frame(&self, index: usize) -> &[u8] {
        &self.ulaw[index * FRAME_LEN..(index + 1) * FRAME_LEN]
    }
}

/// A frame to send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Frames since the start of the playback, skipped ones included: the RTP timestamp is the
    /// stream's base plus `index × 160`.
    pub index: u64,
    /// Set on the first frame, and on the first after a skip, as the start of a talkspurt (RFC 3551 §4.1).
    pub marker: bool,
    pub ulaw: &'a [u8],
}

/// What the player reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackEvent {
    /// The playlist played to its end.
    Finished,
    /// `stop` cut it short (barge-in, hang-up).
    Stopped,
}

/// Plays a list of prompts back to back (a sentence made of recorded words, a spoken number),
/// once or in a loop (music on hold).
#[derive(Debug)]
pub struct Player {
    playlist: Vec<Prompt>,
    looping: bool,
    start: Instant,
    /// The index of the next frame on the schedule.
    next_index: u64,
    /// Where that frame comes from: the prompt, and the frame within it.
    prompt: usize,
    frame: usize,
    done: bool,
    marker_pending: bool,
    events: VecDeque<PlaybackEvent>,
}

impl Player {
    /// A player whose first frame is due at `start`. Empty prompts are dropped from the playlist;
    /// an empty playlist finishes at once.
    pub fn new(playlist: impl IntoIterator<Item = Prompt>, looping: bool, start: Instant) -> Player {
        let playlist: Vec<Prompt> = playlist.into_iter().filter(|prompt| prompt.frames() > 0).collect();
        let mut player = Player {
            done: false,
            playlist,
            looping,
            start,
            next_index: 0,
            prompt: 0,
            frame: 0,
            marker_pending: true,
            events: VecDeque::with_capacity(1),
        };
        if player.playlist.is_empty() {
            player.finish(PlaybackEvent::Finished);
        }
        player
    }

    /// When the next frame is due, or `None` once playback is over.
    pub fn next_deadline(&self) -> Option<Instant> {
        (!self.done).then(|| self.due(self.next_index))
    }

    /// The next frame due at `now`, if any; call again until `None`. Frames later than
    /// `MAX_LATENESS` are skipped, keeping their place on the schedule.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Frame<'_>> {
        if self.done {
            return None;
        }
        let lateness = now.checked_duration_since(self.due(self.next_index))?;
        if lateness > MAX_LATENESS {
            let behind = (lateness - MAX_LATENESS).as_micros().div_ceil(FRAME_DURATION.as_micros());
            for _ in 0..behind {
                if !self.advance() {
                    return None;
                }
            }
            self.marker_pending = true;
        }
        let (index, prompt, frame) = (self.next_index, self.prompt, self.frame);
        let marker = std::mem::take(&mut self.marker_pending);
        self.advance();
        Some(Frame { index, marker, ulaw: self.playlist[prompt].frame(frame) })
    }

    /// Stops playback now (barge-in): no more frames, and `Stopped` is reported.
    pub fn stop(&mut self) {
        if !self.done {
            self.finish(PlaybackEvent::Stopped);
        }
    }

    /// The next report.
    pub fn poll_event(&mut self) -> Option<PlaybackEvent> {
        self.events.pop_front()
    }

    fn due(&self, index: u64) -> Instant {
        // u32 frames of 20 ms cover 2.7 years; a longer hold saturates rather than wraps.
        self.start + FRAME_DURATION * u32::try_from(index).unwrap_or(u32::MAX)
    }

    /// Moves past the current frame; false once the playlist has ended.
    fn advance(&mut self) -> bool {
        self.next_index += 1;
        self.frame += 1;
        if self.frame == self.playlist[self.prompt].frames() {
            self.frame = 0;
            self.prompt += 1;
            if self.prompt == self.playlist.len() {
                if !self.looping {
                    self.finish(PlaybackEvent::Finished);
                    return false;
                }
                self.prompt = 0;
            }
        }
        true
    }

    fn finish(&mut self, event: PlaybackEvent) {
        self.done = true;
        self.events.push_back(event);
    }
}
