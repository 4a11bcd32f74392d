#!/usr/bin/env bash
# Speaks the prompt catalog with espeak-ng into prompts/<language>/<id>.wav (8 kHz, 16-bit mono,
# silence trimmed) and writes the music on hold. The files are committed so that a fresh machine
# has them; a municipality replaces them with its own recordings under the same names.
# Needs: espeak-ng, sox (Debian packages of the same names). Usage: ivr/prompts/generate.sh [config.toml]
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || { echo "generate.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
out=ivr/prompts
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run -q -p loket-ivr --example prompt_texts -- "$@" > "$work/texts.tsv"
declare -A voice=([nl]=nl [fr]=fr-be [en]=en-gb)
count=0
while IFS=$'\t' read -r id language text; do
    mkdir -p "$out/$language"
    espeak-ng -v "${voice[$language]}" -s 150 -w "$work/raw.wav" "$text"
    # Trim silence at both ends, then 8 kHz mono 16-bit, as the media engine plays it.
    sox "$work/raw.wav" -r 8000 -c 1 -b 16 "$out/$language/$id.wav" \
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse
    count=$((count + 1))
done < "$work/texts.tsv"

# Music on hold: a slow, quiet plucked arpeggio, 12 seconds, looped by the player.
mkdir -p "$out/music"
notes=(A3 C#4 E4 A4 G3 B3 D4 G4)
for i in "${!notes[@]}"; do
    sox -n -r 8000 -c 1 -b 16 "$work/note$i.wav" synth 0.5 pluck "${notes[$i]}" vol 0.3 fade 0.01 0.5 0.2
done
sox "$work"/note{0..7}.wav "$work/phrase.wav"
sox "$work/phrase.wav" "$out/music/hold.wav" repeat 2
echo "generate.sh: $count prompts and the music on hold written under $out"
