//! Prompt playback: encoding once, the drift-free 20 ms schedule, playlists, loops and barge-in.

use std::io::Cursor;
use std::time::{Duration, Instant};

use loket_media::g711::{ULAW_SILENCE, ulaw_encode};
use loket_media::playback::{FRAME_DURATION, FRAME_LEN, PlaybackEvent, Player, Prompt, PromptError};

/// A prompt of `frames` frames whose every sample in frame k is `base + k`, so that frames can be
/// told apart by their first byte.
fn numbered_prompt(base: i16, frames: usize) -> Prompt {
    let samples: Vec<i16> = (0..frames * FRAME_LEN).map(|index| (base + (index / FRAME_LEN) as i16) * 256).collect();
    Prompt::from_pcm(&samples)
}

fn label(ulaw: &[u8]) -> u8 {
    ulaw[0]
}

fn labels(base: i16, frames: usize) -> Vec<u8> {
    (0..frames).map(|frame| ulaw_encode((base + frame as i16) * 256)).collect()
}

/// Polls at every deadline until the player is done, or `limit` frames; returns (ms, index, label).
fn run(player: &mut Player, start: Instant, limit: usize) -> Vec<(u128, u64, u8)> {
    let mut frames = Vec::new();
    while let Some(deadline) = player.next_deadline() {
        if frames.len() == limit {
            break;
        }
        assert_eq!(player.poll_frame(deadline - Duration::from_micros(1)), None, "a frame before its deadline");
        let frame = player.poll_frame(deadline).unwrap();
        frames.push(((deadline - start).as_millis(), frame.index, label(frame.ulaw)));
    }
    frames
}

#[test]
fn prompts_are_encoded_once_into_whole_frames() {
    let samples: Vec<i16> = (0..400).map(|index| (index * 50) as i16).collect();
    let prompt = Prompt::from_pcm(&samples);
    assert_eq!(prompt.frames(), 3);
    let mut player = Player::new([prompt], false, Instant::now());
    let mut encoded = Vec::new();
    while let Some(deadline) = player.next_deadline() {
        encoded.extend_from_slice(player.poll_frame(deadline).unwrap().ulaw);
    }
    let expected: Vec<u8> = samples.iter().map(|&sample| ulaw_encode(sample)).chain([ULAW_SILENCE; 80]).collect();
    assert_eq!(encoded, expected);
}

#[test]
fn frames_follow_the_20_ms_grid_and_the_end_is_reported() {
    let start = Instant::now();
    let mut player = Player::new([numbered_prompt(1, 4)], false, start);
    let frames = run(&mut player, start, usize::MAX);
    let expected: Vec<(u128, u64, u8)> =
        labels(1, 4).into_iter().enumerate().map(|(k, label)| (20 * k as u128, k as u64, label)).collect();
    assert_eq!(frames, expected);
    assert_eq!(player.poll_event(), Some(PlaybackEvent::Finished));
    assert_eq!(player.next_deadline(), None);
    assert_eq!(player.poll_frame(start + Duration::from_secs(9)), None);
}

#[test]
fn late_wake_ups_do_not_drift() {
    let start = Instant::now();
    let mut player = Player::new([numbered_prompt(0, 3)], true, start);
    // Wake up 0–19 ms late every time, as a loaded timer does, for a minute of hold music.
    let mut jitter = 7u64;
    for k in 0..3000u64 {
        let deadline = player.next_deadline().unwrap();
        assert_eq!(deadline, start + FRAME_DURATION * k as u32, "frame {k} off the grid");
        jitter = (jitter * 31 + 11) % 20;
        let frame = player.poll_frame(deadline + Duration::from_millis(jitter)).unwrap();
        assert_eq!(frame.index, k);
    }
}

#[test]
fn a_very_late_wake_up_skips_instead_of_bursting() {
    let start = Instant::now();
    let mut player = Player::new([numbered_prompt(0, 50)], false, start);
    let late = start + Duration::from_millis(200);
    let sent: Vec<(u64, bool)> =
        std::iter::from_fn(|| player.poll_frame(late).map(|frame| (frame.index, frame.marker))).collect();
    // Frames 0–6 are more than 60 ms late and skipped; 7–10 are due and go out, the first marked.
    assert_eq!(sent, [(7, true), (8, false), (9, false), (10, false)]);
    assert_eq!(player.next_deadline(), Some(start + Duration::from_millis(220)));
}

#[test]
fn prompts_play_back_to_back() {
    let start = Instant::now();
    let mut player = Player::new([numbered_prompt(10, 3), Prompt::from_pcm(&[]), numbered_prompt(40, 2)], false, start);
    let played: Vec<u8> = run(&mut player, start, usize::MAX).into_iter().map(|(_, _, label)| label).collect();
    assert_eq!(played, [labels(10, 3), labels(40, 2)].concat());
    assert_eq!(player.poll_event(), Some(PlaybackEvent::Finished));
}

#[test]
fn music_on_hold_loops_until_stopped() {
    let start = Instant::now();
    let mut player = Player::new([numbered_prompt(5, 2)], true, start);
    let played: Vec<u8> = run(&mut player, start, 7).into_iter().map(|(_, _, label)| label).collect();
    let loop_labels = labels(5, 2);
    assert_eq!(played, [&loop_labels[..], &loop_labels, &loop_labels, &loop_labels[..1]].concat());
    assert_eq!(player.poll_event(), None);
    // A digit arrives: barge-in.
    player.stop();
    assert_eq!(player.poll_event(), Some(PlaybackEvent::Stopped));
    assert_eq!(player.next_deadline(), None);
    assert_eq!(player.poll_frame(start + Duration::from_secs(1)), None);
    player.stop();
    assert_eq!(player.poll_event(), None);
}

#[test]
fn an_empty_playlist_finishes_at_once() {
    let mut player = Player::new([], false, Instant::now());
    assert_eq!(player.poll_event(), Some(PlaybackEvent::Finished));
    assert_eq!(player.next_deadline(), None);
}

fn wav(spec: hound::WavSpec, samples: &[i16]) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut bytes, spec).unwrap();
    for &sample in samples {
        writer.write_sample(sample).unwrap();
    }
    writer.finalize().unwrap();
    bytes.into_inner()
}

#[test]
fn wav_prompts_must_be_16_bit_mono_8_khz() {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let samples: Vec<i16> = (0..320).map(|index| (index * 100) as i16).collect();
    let prompt = Prompt::from_wav(Cursor::new(wav(spec, &samples))).unwrap();
    assert_eq!(prompt, Prompt::from_pcm(&samples));

    let wideband = hound::WavSpec { sample_rate: 16000, ..spec };
    let error = Prompt::from_wav(Cursor::new(wav(wideband, &samples))).unwrap_err();
    assert!(matches!(error, PromptError::Format { bits: 16, channels: 1, sample_rate: 16000 }), "{error}");
    let stereo = hound::WavSpec { channels: 2, ..spec };
    assert!(matches!(
        Prompt::from_wav(Cursor::new(wav(stereo, &samples))),
        Err(PromptError::Format { channels: 2, .. })
    ));
    assert!(matches!(Prompt::from_wav(Cursor::new(b"RIFF, but not really".to_vec())), Err(PromptError::Wav(_))));
}
