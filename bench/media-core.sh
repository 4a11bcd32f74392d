#!/bin/bash
# loket media core micro-benchmark (phase 1 of issue #4): CPU per packet of the sans-IO core,
# without sockets. Prints ns per relayed 172-byte RTP packet (parse + rewrite + build), per
# PCMU→PCMA transcoding of 160 bytes, per 20 ms frame of in-band DTMF detection and per 3-party
# mixing period, each the best of five rounds, with the load average before and after, since the
# machine is shared. The figure to compare with rtpengine (≈ 13 µs of CPU per relayed packet in
# userspace, ../shared/bench/README.md) is the relay line; the full comparison over UDP is the
# later bench of the issue.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# building the benchmark (release)"
cargo bench -p loket-media --bench media --no-run 2>&1 | tail -1
echo "# $(nproc) cores; before: $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 300 cargo bench -p loket-media --bench media 2>/dev/null | grep 'ns/'
echo "# after: $(cut -d' ' -f1-3 /proc/loadavg)"
