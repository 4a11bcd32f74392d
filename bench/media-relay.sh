#!/bin/bash
# loket media relay over UDP against rtpengine, in the same run (issue #4's benchmark).
#
# For each step of N calls: loket's relay_server bridges N pairs of sessions; rtp_load runs two
# phones per call on loopback, each sending 20 ms PCMU (50 packets/s per direction), and measures
# for SECONDS after a one-second warm-up: streams delivered without loss, p50/p99/max interval
# between consecutive packets at the phones, the relay's CPU per relayed packet
# (/proc/PID/stat), and its resident memory. Then the same load through rtpengine in userspace
# mode (Debian's rtpengine-daemon, table = -1 as in ../shared/bench/rtpengine-anchor.conf),
# set up over its ng control protocol (bencode over UDP), offer then answer per call.
# Memory per call = (RSS at the end of the step - RSS of the idle process) / N.
# Then the floor: `floor_relay`, a relay that forwards each datagram unchanged with one epoll set
# and a system call per read and per send, and looks at nothing. Its cost is the kernel's share of
# any relay of this kind; each step ends with the three costs per packet as ratios to rtpengine's.
#
# Usage: bench/media-relay.sh [CALLS ...]   (default: 200 500 1000; SECONDS=15 per step)
# Every process started here is stopped by its pid; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_STEP=${SECONDS_PER_STEP:-15}
STEPS=("$@")
[ ${#STEPS[@]} -eq 0 ] && STEPS=(200 500 1000)
PHONE_BASE=20000
NG_PORT=22223
command -v rtpengine >/dev/null || { echo "rtpengine is not installed (apt-get install rtpengine-daemon)" >&2; exit 1; }

echo "# building relay_server and rtp_load (release)"
cargo build --release -p loket-media --example relay_server --example rtp_load --example floor_relay 2>&1 | tail -1
BIN=${CARGO_TARGET_DIR:-target}/release/examples
R=$(mktemp -d /tmp/media-relay.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# Waits up to 30 s for a file to appear.
wait_file() { for _ in $(seq 1 300); do [ -f "$1" ] && return 0; sleep 0.1; done; echo "timed out waiting for $1" >&2; exit 1; }

cat > "$R/rtpengine.conf" <<EOF
[rtpengine]
table = -1
interface = 127.0.0.1
listen-ng = 127.0.0.1:$NG_PORT
port-min = 30000
port-max = 39999
num-threads = 2
timeout = 60
silent-timeout = 3600
delete-delay = 0
log-level = 3
EOF

# The ng client: offer with phone A's SDP, answer with phone B's; rtpengine's port in the offer's
# answer SDP is where B sends, the one in the answer's is where A sends.
cat > "$R/ng.py" <<'EOF'
import re, socket, sys
def enc(x):
    if isinstance(x, str): x = x.encode()
    if isinstance(x, bytes): return b"%d:%s" % (len(x), x)
    if isinstance(x, list): return b"l" + b"".join(enc(i) for i in x) + b"e"
    return b"d" + b"".join(enc(k) + enc(v) for k, v in sorted(x.items())) + b"e"
def sdp(port):
    return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n" % port)
calls, base, ng_port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
def ng(cookie, message):
    s.sendto(cookie.encode() + b" " + enc(message), ("127.0.0.1", ng_port))
    reply = s.recv(65535)
    assert b"6:result2:ok" in reply, reply
    length = int(re.search(rb"3:sdp(\d+):", reply).group(1))
    body = reply[reply.index(b"3:sdp%d:" % length) + len(b"3:sdp%d:" % length):][:length]
    return int(re.search(rb"m=audio (\d+)", body).group(1))
for i in range(calls):
    common = {"call-id": "bench-%d" % i, "from-tag": "a%d" % i, "replace": ["origin", "session-connection"]}
    b_port = ng("o%d" % i, dict(common, command="offer", sdp=sdp(base + 4 * i)))
    a_port = ng("a%d" % i, dict(common, command="answer", sdp=sdp(base + 4 * i + 2), **{"to-tag": "b%d" % i}))
    print(a_port, b_port)
EOF

echo "# $(nproc) cores, $(uname -r); ${SECONDS_PER_STEP} s per step; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# The idle footprint of each relay, for memory per call.
"$BIN/relay_server" 0 "$PHONE_BASE" 24000 29999 "$R/calls-idle" & pid=$!; PIDS+=("$pid")
wait_file "$R/calls-idle"; LOKET_IDLE=$(rss_kib "$pid"); kill "$pid"; wait "$pid" 2>/dev/null || true

for calls in "${STEPS[@]}"; do
    echo "## $calls calls ($((calls * 2)) streams, $((calls * 100)) packets/s relayed); load $(cut -d' ' -f1-3 /proc/loadavg)"

    rm -f "$R/calls-loket"
    "$BIN/relay_server" "$calls" "$PHONE_BASE" 24000 29999 "$R/calls-loket" & pid=$!; PIDS+=("$pid")
    wait_file "$R/calls-loket"
    line=$(timeout $((SECONDS_PER_STEP + 30)) "$BIN/rtp_load" "$R/calls-loket" "$PHONE_BASE" "$SECONDS_PER_STEP" "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rss=$(sed -E 's/.*relay_rss_kib=([0-9]+).*/\1/' <<<"$line")
    echo "loket     $line kib_per_call=$(( (rss - LOKET_IDLE) / calls ))"
    loket_us=$(sed -E 's/.*cpu_us_per_packet=([0-9.]+).*/\1/' <<<"$line")

    rtpengine --config-file="$R/rtpengine.conf" --foreground > "$R/rtpengine.log" 2>&1 & rp=$!; PIDS+=("$rp")
    for _ in $(seq 1 50); do
        python3 -c "import socket,sys; s=socket.socket(2,2); s.settimeout(0.2); s.sendto(b'p d7:command4:pinge',('127.0.0.1',$NG_PORT)); sys.exit(0 if b'pong' in s.recv(100) else 1)" 2>/dev/null && break
        sleep 0.2
    done
    idle=$(rss_kib "$rp")
    timeout 60 python3 "$R/ng.py" "$calls" "$PHONE_BASE" "$NG_PORT" > "$R/calls-rtpe"
    line=$(timeout $((SECONDS_PER_STEP + 30)) "$BIN/rtp_load" "$R/calls-rtpe" "$PHONE_BASE" "$SECONDS_PER_STEP" "$rp")
    kill "$rp"; wait "$rp" 2>/dev/null || true
    rss=$(sed -E 's/.*relay_rss_kib=([0-9]+).*/\1/' <<<"$line")
    echo "rtpengine $line kib_per_call=$(( (rss - idle) / calls ))"
    rtpengine_us=$(sed -E 's/.*cpu_us_per_packet=([0-9.]+).*/\1/' <<<"$line")

    rm -f "$R/calls-floor"
    "$BIN/floor_relay" "$calls" "$PHONE_BASE" 24000 "$R/calls-floor" & pid=$!; PIDS+=("$pid")
    wait_file "$R/calls-floor"
    line=$(timeout $((SECONDS_PER_STEP + 30)) "$BIN/rtp_load" "$R/calls-floor" "$PHONE_BASE" "$SECONDS_PER_STEP" "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "floor     $line"
    floor_us=$(sed -E 's/.*cpu_us_per_packet=([0-9.]+).*/\1/' <<<"$line")
    awk -v l="$loket_us" -v r="$rtpengine_us" -v f="$floor_us" 'BEGIN {
        printf "CPU per packet against rtpengine: loket %.2f, floor %.2f (goal: loket 0.50 or less)\n", l / r, f / r }'
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$R"
