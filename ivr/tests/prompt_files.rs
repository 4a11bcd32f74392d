//! The committed recordings match the demo catalog: a prompt added without its WAV files, or a
//! file in a format the media engine does not play, fails here rather than on a call.

use std::path::Path;

use loket_ivr::{DEMO, Ivr};

#[test]
fn every_prompt_has_a_recording_in_each_language_at_8_khz_16_bit_mono() {
    let ivr = Ivr::parse("demo.toml", DEMO).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
    let mut checked = 0;
    for (id, language, _) in ivr.prompt_texts() {
        let path = root.join(language.code()).join(format!("{id}.wav"));
        let reader = hound::WavReader::open(&path)
            .unwrap_or_else(|error| panic!("{}: {error} (run ivr/prompts/generate.sh)", path.display()));
        let spec = reader.spec();
        assert_eq!(
            (spec.sample_rate, spec.bits_per_sample, spec.channels, spec.sample_format),
            (8000, 16, 1, hound::SampleFormat::Int),
            "{}",
            path.display()
        );
        assert!(reader.duration() > 800, "{}: less than 0.1 s of audio", path.display());
        checked += 1;
    }
    assert!(checked >= 3 * 100);
    let music = hound::WavReader::open(root.join("music/hold.wav")).expect("the music on hold");
    assert_eq!(music.spec().sample_rate, 8000);
}
