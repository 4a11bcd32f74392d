#!/bin/bash
# loket SIP call benchmark (issue #3, phase 3): SIPp call-rate sweeps against `loket serve`, with
# Kamailio as the anchor in the same run (ratios hold on a shared machine, absolute figures drift):
#   kam-stateful   Kamailio 5.6 stateful responder (t_newtran + t_reply, -x tlsf), anchor of
#   loket-answer   loket answering itself: INVITE, 100, 200 with its SDP answer, ACK, 1 s, BYE
#   kam-proxy      Kamailio stateful proxy (record_route + t_relay) to a SIPp callee, anchor of
#   loket-b2bua    loket as B2BUA to the same SIPp callee (target sip:callee@127.0.0.1:25090),
#                  signalling only (SDP passed through)
# Every call lasts 1 s. Per rate it prints achieved calls/s, failed calls, retransmissions,
# INVITE→200 p50/p99 and CPU; per series the highest rate with zero failed calls and the CPU per
# call at 1,000 calls/s next to its anchor's.
# Bounded: every SIPp step has -m and -timeout (bench/sip-bench.py), a sweep stops after a failed
# step, and every server started here is stopped by its pid. Loopback only. About 8 minutes.
# Usage: [ANSWER_RATES=500,1000,2000,4000] [B2BUA_RATES=500,1000,2000,3000] [DURATION=8]
#        [SERIES="kam-stateful loket-answer kam-proxy loket-b2bua"] bench/sip-calls.sh
# Needs: sipp (sip-tester), kamailio, python3. Results: $OUT/results.jsonl (OUT=bench/out/sip-calls).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$HERE/out/sip-calls}
ANSWER_RATES=${ANSWER_RATES:-500,1000,2000,4000}
B2BUA_RATES=${B2BUA_RATES:-500,1000,2000,3000}
DURATION=${DURATION:-8}
SERIES=${SERIES:-"kam-stateful loket-answer kam-proxy loket-b2bua"}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
for tool in sipp kamailio python3; do
    command -v $tool >/dev/null || { echo "sip-calls.sh needs $tool (apt-get install sip-tester kamailio python3)"; exit 1; }
done
mkdir -p "$OUT/kamrun"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

(cd "$ROOT" && nice cargo build --release -p loket -j2) || exit 1
LOKET=$CARGO_TARGET_DIR/release/loket

# The callee: answers at once with a G.711 answer, then answers the caller's BYE.
cat > "$OUT/uas-answer.xml" <<'EOF'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="callee answering at once">
  <recv request="INVITE" crlf="true"/>
  <send>
    <![CDATA[
      SIP/2.0 100 Trying
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_Record-Route:]
      [last_From:]
      [last_To:];tag=[pid]u[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=callee 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=sendrecv
    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <timewait milliseconds="4000"/>
</scenario>
EOF

sweep() {  # $1 series, $2 target port, $3 pid file, $4 rates, [$5 callee scenario]
    local uas=()
    [ -n "${5:-}" ] && uas=(--uas "$5")
    python3 "$HERE/sip-bench.py" --series "$1" --uac sip-uac-call.xml --target "127.0.0.1:$2" --uac-d 1000 \
        "${uas[@]}" --rates "$4" --duration "$DURATION" --sut-pidfile "$3" --workdir "$OUT" --results "$RESULTS" \
        --quiet-pct 50 --quiet-wait "${QUIET_WAIT:-10}" --retry-contaminated 0
}
stop_pid() {  # $1 pid file
    local pid
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    echo "pid $pid still running, sending KILL"; kill -9 "$pid"
}
kam_start() {  # $1 mode define; -x tlsf: Debian's default allocator costs ~6x the CPU
    kamailio -f "$HERE/sip-kamailio-anchor.cfg" -A "$1" -x tlsf -P "$OUT/kam.pid" -Y "$OUT/kamrun" \
        -w "$OUT" -m 512 -M 16 > "$OUT/kam.out" 2>&1
    sleep 1
}
# loket serve in a directory of its own, with the number SIPp calls ("ivr") routed to $3.
loket_start() {  # $1 name, $2 SIP port, $3 target
    local dir=$OUT/$1-run
    rm -rf "$dir"; mkdir -p "$dir"
    cat > "$dir/loket.toml" <<EOF
[http]
listen = "127.0.0.1:0"

[sip]
udp_listen = "127.0.0.1:$2"
tcp_listen = "127.0.0.1:$2"
max_calls = 100000
max_calls_per_second = 10000

[[sip.numbers]]
number = "ivr"
target = "$3"
EOF
    (cd "$dir" && LOKET_LOG=warn exec "$LOKET" serve > "$dir/out.log" 2>&1) &
    echo $! > "$OUT/$1.pid"
    for _ in $(seq 1 120); do grep -q "loket: sip on" "$dir/out.log" 2>/dev/null && return 0; sleep 0.5; done
    echo "loket did not start:"; cat "$dir/out.log"; stop_pid "$OUT/$1.pid"; return 1
}

for s in $SERIES; do
    echo "=== $s $(date +%T)"
    case $s in
    kam-stateful) kam_start STATEFUL; sweep kam-stateful 25070 "$OUT/kam.pid" "$ANSWER_RATES"; stop_pid "$OUT/kam.pid" ;;
    kam-proxy) kam_start PROXY; sweep kam-proxy 25070 "$OUT/kam.pid" "$B2BUA_RATES" "$OUT/uas-answer.xml"; stop_pid "$OUT/kam.pid" ;;
    loket-answer)
        loket_start loket-answer 25076 answer || continue
        sweep loket-answer 25076 "$OUT/loket-answer.pid" "$ANSWER_RATES"
        stop_pid "$OUT/loket-answer.pid" ;;
    loket-b2bua)
        loket_start loket-b2bua 25077 "sip:callee@127.0.0.1:25090" || continue
        sweep loket-b2bua 25077 "$OUT/loket-b2bua.pid" "$B2BUA_RATES" "$OUT/uas-answer.xml"
        stop_pid "$OUT/loket-b2bua.pid" ;;
    *) echo "unknown series $s" ;;
    esac
done
echo "=== done $(date +%T)"

python3 - "$RESULTS" <<'EOF'
import json, sys
from collections import OrderedDict
ANCHOR = {"loket-answer": "kam-stateful", "loket-b2bua": "kam-proxy"}
steps = OrderedDict()
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        steps.setdefault(r["series"], OrderedDict())[r["target_cps"]] = r
def us_per_call(r):
    cpu = (r or {}).get("window", {}).get("cpu_pct_of_core", {}).get("sut")
    return cpu / 100.0 / r["achieved_cps"] * 1e6 if cpu is not None and r.get("achieved_cps") else None
f = lambda v, nd=0: "-" if v is None else f"{v:.{nd}f}"
print("| server | target cps | achieved cps | ok / planned | failed | retrans | INVITE→200 p50 / p99 ms | server CPU % core | CPU µs/call | × anchor | other procs % |")
print("|" + "---|" * 11)
for series, by_rate in steps.items():
    for rate, r in by_rate.items():
        us = us_per_call(r)
        anchor = us_per_call(steps.get(ANCHOR.get(series, series), {}).get(rate))
        cpu = r.get("window", {}).get("cpu_pct_of_core", {})
        rt = r["invite_200_ms"]
        print(f"| {series} | {rate} | {f(r['achieved_cps'], 1)} | {r['successful']} / {r['calls_planned']} | {r['failed']} "
              f"| {r['uac_retrans']} | {rt['p50']} / {rt['p99']} | {cpu.get('sut')} | {f(us)} "
              f"| {f(us / anchor, 2) if us and anchor else '-'} | {cpu.get('other')} |")
print()
for series, by_rate in steps.items():
    clean = [rate for rate, r in by_rate.items() if r["failed"] == 0 and r["successful"] == r["calls_planned"]]
    line = f"{series}: highest rate with zero failed calls {max(clean) if clean else 'none'}"
    if series in ANCHOR:
        us, anchor = us_per_call(by_rate.get(1000)), us_per_call(steps.get(ANCHOR[series], {}).get(1000))
        line += f"; CPU per call at 1,000 calls/s {f(us)} µs, {ANCHOR[series]} {f(anchor)} µs"
        line += f", ratio {f(us / anchor, 2)}" if us and anchor else ""
    print(line)
EOF
