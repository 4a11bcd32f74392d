//! Recording a session to a WAV file: the `recording::Aligner` fed from the packet path, and a
//! writer task that puts its output on disk, away from that path.
//!
//! The aligner's frames go into batches of `BATCH_FRAMES` (250 ms). A full batch is handed to the
//! writer over a channel without waiting, in exchange for an empty one the writer gave back:
//! `BATCHES` + 1 buffers exist per recording, allocated at the start, and no more. When the
//! writer holds them all (the disk is slower than the call), the newest batch is dropped and
//! counted; the writer fills its place with silence, so the file keeps the call's timeline. The
//! writer writes what has queued up in one blocking call (`spawn_blocking`, per wake-up rather
//! than a thread per recording), through a 64 KiB buffer.
//!
//! The file is written as `<path>.part` and renamed to `<path>` once its header is final and its
//! data synced; a recording that fails is removed. A file at `<path>` is therefore complete.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{RecordingSummary, SessionError};
use crate::recording::{Aligner, Audio, CHANNELS, Direction, SAMPLE_RATE};

/// Frames per batch handed to the writer: 250 ms, 8,000 bytes.
pub const BATCH_FRAMES: usize = 2000;
/// Batches that may wait for the writer: 2 s of audio, 16 KB. Beyond, audio is dropped.
pub const BATCHES: usize = 8;
const BATCH_SAMPLES: usize = BATCH_FRAMES * CHANNELS as usize;
const FILE_BUFFER: usize = 64 * 1024;
/// hound's header for 16-bit stereo PCM (RIFF, `fmt ` as PCMWAVEFORMAT, `data`).
const HEADER_BYTES: u64 = 44;
/// hound counts data bytes in a `u32`: frames beyond this (about 37 hours) are dropped.
const MAX_FRAMES: u64 = (u32::MAX as u64 - 64) / (2 * CHANNELS as u64);

/// A batch of interleaved frames, after `gap` frames that were dropped.
#[derive(Debug)]
struct Batch {
    gap: u64,
    samples: Vec<i16>,
}

#[derive(Debug)]
enum ToWriter {
    Batch(Batch),
    /// The last frames; then the file is finalised.
    Finish {
        tail: Batch,
        dropped: u64,
        late_packets: u64,
    },
}

/// A WAV file being written under its `.part` name. Dropped before `commit`, it is removed.
pub(super) struct WavFile {
    wav: Option<hound::WavWriter<BufWriter<File>>>,
    /// The same file, to sync it once the header is final.
    sync: File,
    part: PathBuf,
    path: PathBuf,
    frames: u64,
    /// Frames not written because the file reached `MAX_FRAMES`.
    overflow: u64,
    committed: bool,
}

impl std::fmt::Debug for WavFile {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("WavFile").field("part", &self.part).field("frames", &self.frames).finish()
    }
}

impl Drop for WavFile {
    fn drop(&mut self) {
        if !self.committed {
            drop(self.wav.take());
            let _ = fs::remove_file(&self.part);
        }
    }
}

impl WavFile {
    /// Creates `<path>.part` with the WAV header. Refuses if `<path>` or `<path>.part` exists:
    /// a recording never replaces another.
    pub(super) async fn create(path: PathBuf) -> Result<WavFile, SessionError> {
        let error_path = path.clone();
        tokio::task::spawn_blocking(move || WavFile::create_blocking(path))
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join)))
            .map_err(|source| SessionError::Recording { path: error_path, source })
    }

    fn create_blocking(path: PathBuf) -> io::Result<WavFile> {
        if fs::symlink_metadata(&path).is_ok() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "a file is there already"));
        }
        let part = part_path(&path);
        let file = OpenOptions::new().write(true).create_new(true).open(&part)?;
        let sync = match file.try_clone() {
            Ok(sync) => sync,
            Err(error) => {
                drop(file);
                let _ = fs::remove_file(&part);
                return Err(error);
            }
        };
        let spec = hound::WavSpec {
            channels: CHANNELS,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut wav_file = WavFile { wav: None, sync, part, path, frames: 0, overflow: 0, committed: false };
        // From here on, a failure removes the part file (Drop).
        wav_file.wav =
            Some(hound::WavWriter::new(BufWriter::with_capacity(FILE_BUFFER, file), spec).map_err(io_error)?);
        Ok(wav_file)
    }

    fn write(&mut self, batches: &[Batch]) -> io::Result<()> {
        const SILENCE: [i16; 1024] = [0; 1024];
        for batch in batches {
            let mut gap = batch.gap.saturating_mul(u64::from(CHANNELS));
            while gap > 0 {
                let length = gap.min(SILENCE.len() as u64) as usize;
                self.write_samples(&SILENCE[..length])?;
                gap -= length as u64;
            }
            self.write_samples(&batch.samples)?;
        }
        Ok(())
    }

    fn write_samples(&mut self, samples: &[i16]) -> io::Result<()> {
        let frames = (samples.len() / CHANNELS as usize) as u64;
        let room = MAX_FRAMES - self.frames;
        if frames > room {
            self.overflow += frames - room;
        }
        let frames = frames.min(room);
        if frames == 0 {
            return Ok(());
        }
        let Some(wav) = &mut self.wav else { return Err(io::Error::other("the WAV file is closed")) };
        let count = frames as usize * CHANNELS as usize;
        let mut writer = wav.get_i16_writer(count as u32);
        for &sample in &samples[..count] {
            writer.write_sample(sample);
        }
        writer.flush().map_err(io_error)?;
        self.frames += frames;
        Ok(())
    }

    /// Finalises the header, syncs, and renames the file to its name; returns its size.
    fn commit(&mut self) -> io::Result<u64> {
        if let Some(wav) = self.wav.take() {
            wav.finalize().map_err(io_error)?;
        }
        self.sync.sync_all()?;
        fs::rename(&self.part, &self.path)?;
        self.committed = true;
        Ok(HEADER_BYTES + self.frames * 2 * u64::from(CHANNELS))
    }
}

fn part_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".part");
    PathBuf::from(name)
}

fn io_error(error: hound::Error) -> io::Error {
    match error {
        hound::Error::IoError(error) => error,
        other => io::Error::other(other),
    }
}

fn frames_duration(frames: u64) -> Duration {
    Duration::from_nanos(frames.saturating_mul(1_000_000_000) / u64::from(SAMPLE_RATE))
}

/// What the writer task returns.
pub(super) type Writer = JoinHandle<Result<RecordingSummary, SessionError>>;

/// A recording in progress, shared by the tasks that send to and receive from the leg.
pub(super) struct Recorder {
    aligner: Aligner,
    sink: Sink,
    path: PathBuf,
    writer: Writer,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Recorder")
            .field("path", &self.path)
            .field("frames", &self.aligner.frames())
            .field("dropped", &self.sink.dropped)
            .finish_non_exhaustive()
    }
}

/// Where the aligner's frames go: batches to the writer.
struct Sink {
    batch: Vec<i16>,
    /// Frames dropped since the last batch that reached the writer.
    gap: u64,
    dropped: u64,
    to_writer: mpsc::Sender<ToWriter>,
    free: mpsc::Receiver<Vec<i16>>,
    /// At the end, the batch grows instead of being handed over: it becomes the tail.
    finishing: bool,
}

impl Recorder {
    /// Starts the writer task on `file`, with the timeline starting at `now`. Must be called
    /// within a Tokio runtime.
    pub(super) fn start(file: WavFile, now: Instant) -> Recorder {
        // The writer's queue holds every batch buffer and the tail, so a send never finds it full.
        let (to_writer, input) = mpsc::channel(BATCHES + 1);
        let (give_back, free) = mpsc::channel(BATCHES);
        for _ in 0..BATCHES {
            // The channel has room for exactly these.
            let _ = give_back.try_send(Vec::with_capacity(BATCH_SAMPLES));
        }
        let path = file.path.clone();
        Recorder {
            aligner: Aligner::new(now),
            sink: Sink {
                batch: Vec::with_capacity(BATCH_SAMPLES),
                gap: 0,
                dropped: 0,
                to_writer,
                free,
                finishing: false,
            },
            path,
            writer: tokio::spawn(write(file, input, give_back)),
        }
    }

    /// One packet's audio: received from the leg, or sent to it. Allocates nothing.
    pub(super) fn push(&mut self, now: Instant, direction: Direction, ssrc: u32, timestamp: u32, audio: Audio<'_>) {
        let Recorder { aligner, sink, .. } = self;
        aligner.push(now, direction, ssrc, timestamp, audio, |frames| sink.accept(frames));
    }

    /// Silences `direction` from `lookback` before `now` on (see [`Aligner::silence`]).
    pub(super) fn silence(&mut self, now: Instant, direction: Direction, lookback: Duration) {
        self.aligner.silence(now, direction, lookback);
    }

    /// Writes out the frames that are due, silence included when nothing comes.
    pub(super) fn advance(&mut self, now: Instant) {
        let Recorder { aligner, sink, .. } = self;
        aligner.advance(now, |frames| sink.accept(frames));
    }

    /// Ends the recording at `now`: the last frames go to the writer, which finalises the file.
    /// The returned handle yields the summary; the writer finishes even if nobody waits for it.
    pub(super) fn finish(self, now: Instant) -> (PathBuf, Writer) {
        let Recorder { mut aligner, mut sink, path, writer } = self;
        sink.finishing = true;
        aligner.finish(now, |frames| sink.accept(frames));
        let late_packets =
            aligner.stats(Direction::FromLeg).late_packets + aligner.stats(Direction::ToLeg).late_packets;
        let tail = Batch { gap: sink.gap, samples: std::mem::take(&mut sink.batch) };
        // The queue has room for it (see `start`); this fails only if the writer has stopped on an
        // error, which its handle returns.
        let _ = sink.to_writer.try_send(ToWriter::Finish { tail, dropped: sink.dropped, late_packets });
        (path, writer)
    }
}

impl Sink {
    fn accept(&mut self, mut frames: &[i16]) {
        if self.finishing {
            self.batch.extend_from_slice(frames);
            return;
        }
        while !frames.is_empty() {
            let take = (BATCH_SAMPLES - self.batch.len()).min(frames.len());
            // Within the capacity reserved at the start: no allocation.
            self.batch.extend_from_slice(&frames[..take]);
            frames = &frames[take..];
            if self.batch.len() == BATCH_SAMPLES {
                self.hand_over();
            }
        }
    }

    /// Hands the full batch to the writer for an empty one, or drops it when the writer has
    /// them all.
    fn hand_over(&mut self) {
        let frames = (self.batch.len() / CHANNELS as usize) as u64;
        match self.free.try_recv() {
            Ok(empty) => {
                let samples = std::mem::replace(&mut self.batch, empty);
                let batch = Batch { gap: std::mem::take(&mut self.gap), samples };
                if let Err(error) = self.to_writer.try_send(ToWriter::Batch(batch)) {
                    // The writer has stopped on an error, which it reports at the end.
                    let ToWriter::Batch(batch) = error.into_inner() else { return };
                    self.gap += batch.gap + frames;
                    self.dropped += frames;
                }
            }
            Err(_) => {
                self.gap += frames;
                self.dropped += frames;
                self.batch.clear();
            }
        }
    }
}

/// The writer task: batches to the file, a blocking call per wake-up, until `Finish` (or until
/// the recorder is gone, which finalises what came).
async fn write(
    mut file: WavFile,
    mut input: mpsc::Receiver<ToWriter>,
    give_back: mpsc::Sender<Vec<i16>>,
) -> Result<RecordingSummary, SessionError> {
    let path = file.path.clone();
    let failed = |source: io::Error| SessionError::Recording { path: path.clone(), source };
    let mut work: Vec<Batch> = Vec::with_capacity(BATCHES + 1);
    let mut end = None;
    while end.is_none() {
        let Some(mut message) = input.recv().await else { break };
        loop {
            match message {
                ToWriter::Batch(batch) => work.push(batch),
                ToWriter::Finish { tail, dropped, late_packets } => {
                    work.push(tail);
                    end = Some((dropped, late_packets));
                }
            }
            if end.is_some() {
                break;
            }
            match input.try_recv() {
                Ok(next) => message = next,
                Err(_) => break,
            }
        }
        let result;
        // A panic inside drops the file, which removes it.
        (file, work, result) = tokio::task::spawn_blocking(move || {
            let result = file.write(&work);
            (file, work, result)
        })
        .await
        .map_err(|join| failed(io::Error::other(join)))?;
        result.map_err(&failed)?;
        for batch in work.drain(..) {
            let mut samples = batch.samples;
            samples.clear();
            // The tail and batches after an error find no room; they are simply freed.
            let _ = give_back.try_send(samples);
        }
    }
    let (dropped, late_packets) = end.unwrap_or_default();
    let (file, bytes) = tokio::task::spawn_blocking(move || {
        let bytes = file.commit();
        (file, bytes)
    })
    .await
    .map_err(|join| failed(io::Error::other(join)))?;
    let bytes = bytes.map_err(&failed)?;
    Ok(RecordingSummary {
        path: file.path.clone(),
        duration: frames_duration(file.frames),
        bytes,
        dropped: frames_duration(dropped + file.overflow),
        late_packets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink() -> (Sink, mpsc::Receiver<ToWriter>, mpsc::Sender<Vec<i16>>) {
        let (to_writer, input) = mpsc::channel(BATCHES + 1);
        let (give_back, free) = mpsc::channel(BATCHES);
        for _ in 0..BATCHES {
            give_back.try_send(Vec::with_capacity(BATCH_SAMPLES)).unwrap();
        }
        let sink =
            Sink { batch: Vec::with_capacity(BATCH_SAMPLES), gap: 0, dropped: 0, to_writer, free, finishing: false };
        (sink, input, give_back)
    }

    #[test]
    fn a_stalled_writer_costs_dropped_audio_not_memory() {
        let (mut sink, mut input, give_back) = sink();
        let frame = [7i16; CHANNELS as usize];
        // 20 batches' worth while the writer takes nothing.
        for _ in 0..20 * BATCH_FRAMES {
            sink.accept(&frame);
        }
        let mut queued = Vec::new();
        while let Ok(ToWriter::Batch(batch)) = input.try_recv() {
            assert_eq!(batch.gap, 0);
            assert_eq!(batch.samples.len(), BATCH_SAMPLES);
            queued.push(batch);
        }
        // Eight batches reached the writer, twelve were dropped, and the buffers never grew.
        assert_eq!(queued.len(), BATCHES);
        assert_eq!(sink.dropped, 12 * BATCH_FRAMES as u64);
        assert!(sink.batch.capacity() == BATCH_SAMPLES && sink.batch.is_empty());
        // The writer catches up and gives a buffer back: the next batch carries the gap, so that
        // the file keeps the timeline.
        let mut samples = queued.pop().unwrap().samples;
        samples.clear();
        give_back.try_send(samples).unwrap();
        for _ in 0..BATCH_FRAMES {
            sink.accept(&frame);
        }
        let Ok(ToWriter::Batch(batch)) = input.try_recv() else { panic!("a batch") };
        assert_eq!(batch.gap, 12 * BATCH_FRAMES as u64);
        assert_eq!(sink.gap, 0);
    }

    #[test]
    fn a_writer_that_stopped_turns_batches_into_gaps() {
        let (mut sink, input, _give_back) = sink();
        drop(input);
        for _ in 0..3 * BATCH_FRAMES {
            sink.accept(&[1, 2]);
        }
        assert_eq!(sink.dropped, 3 * BATCH_FRAMES as u64);
        assert_eq!(sink.gap, 3 * BATCH_FRAMES as u64);
    }
}
