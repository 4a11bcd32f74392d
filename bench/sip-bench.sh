#!/bin/bash
# loket SIP benchmark: SIPp callers (INVITE, 200, ACK, 1 s, BYE) against several answering servers,
# in the same run so that the ratios hold on a shared machine:
#   kam-stateful   Kamailio 5.6 stateful responder (t_newtran + t_reply, -x tlsf), the anchor
#   rsipstack-uas  sip/examples/bench_rsipstack_uas.rs: rsipstack endpoint + transactions + dialogs
#   rsipstack-1t   the same on Tokio's current-thread runtime (series name rsipstack1)
#   parser-uas     sip/examples/bench_parser_uas.rs: rsipstack's message types on a plain UdpSocket
#   entry-uas      the same, parsing through loket's message entry point (series name entry)
#   loket-uas      sip/examples/bench_loket_uas.rs: loket's entry point, sans-IO transactions and
#                  call legs on one UdpSocket (series name loket)
# Every step is bounded (SIPp -m and -timeout); every server started here is stopped by its pid.
# Everything listens on 127.0.0.1 only.
# Usage: [RATES=500,1000,2000,4000] [DURATION=10] [SERIES="kam rsipstack rsipstack1 parser entry loket"] bench/sip-bench.sh
# QUIET_WAIT (s, default 60) and RETRY (default 1) bound the waits for a quiet machine.
# RESULTS_APPEND=1 keeps earlier results in the same file (e.g. to add a series to a run).
# Results: $OUT/results.jsonl (default OUT=bench/out/sip) and a table on stdout.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=${OUT:-$HERE/out/sip}
RATES=${RATES:-500,1000,2000,4000}
DURATION=${DURATION:-10}
SERIES=${SERIES:-"kam rsipstack rsipstack1 parser entry loket"}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$OUT/kamrun"
RESULTS=$OUT/results.jsonl
[ -n "${RESULTS_APPEND:-}" ] || : > "$RESULTS"

(cd "$ROOT" && nice cargo build --release -p loket-sip --examples -j2) || exit 1
BIN=$CARGO_TARGET_DIR/release/examples

# The machine is shared: wait (bounded) for it to calm down before each step, and repeat a step
# once when other processes used more than 15 % of a core during it (sip-bench.py does both).
sweep() {  # $1 = series name, $2 = port, $3 = pid file
    python3 "$HERE/sip-bench.py" --series "$1" --uac sip-uac-call.xml --target "127.0.0.1:$2" --uac-d 1000 \
        --rates "$RATES" --duration "$DURATION" --sut-pidfile "$3" --workdir "$OUT" --results "$RESULTS" \
        --quiet-pct 50 --quiet-wait "${QUIET_WAIT:-60}" --retry-contaminated "${RETRY:-1}"
}
start_bg() {  # $1 = pid file, rest = command; stops nothing, records the pid
    local pidfile=$1; shift
    "$@" > "$pidfile.log" 2>&1 &
    echo $! > "$pidfile"
    sleep 1
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo "failed to start: $*"; cat "$pidfile.log"; return 1; }
}
stop_pid() {  # $1 = pid file
    local pid
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { echo "pid $pid still running, sending KILL"; kill -9 "$pid"; }
}

for s in $SERIES; do
    echo "=== $s $(date +%T)"
    case $s in
    kam)
        # -x tlsf: Debian's default allocator (qm) costs about 6x the CPU (shared bench README).
        kamailio -f "$HERE/sip-kamailio-anchor.cfg" -A STATEFUL -x tlsf -P "$OUT/kam.pid" -Y "$OUT/kamrun" \
            -w "$OUT" -m 512 -M 16 > "$OUT/kam.out" 2>&1
        sleep 1
        sweep kam-stateful 25070 "$OUT/kam.pid"
        stop_pid "$OUT/kam.pid" ;;
    rsipstack)
        start_bg "$OUT/rsipstack.pid" "$BIN/bench_rsipstack_uas" 127.0.0.1:25071 || continue
        sweep rsipstack-uas 25071 "$OUT/rsipstack.pid"
        stop_pid "$OUT/rsipstack.pid" ;;
    rsipstack1)
        start_bg "$OUT/rsipstack1.pid" "$BIN/bench_rsipstack_uas" 127.0.0.1:25073 current-thread || continue
        sweep rsipstack-1t 25073 "$OUT/rsipstack1.pid"
        stop_pid "$OUT/rsipstack1.pid" ;;
    parser)
        start_bg "$OUT/parser.pid" "$BIN/bench_parser_uas" 127.0.0.1:25072 || continue
        sweep parser-uas 25072 "$OUT/parser.pid"
        stop_pid "$OUT/parser.pid" ;;
    entry)
        start_bg "$OUT/entry.pid" "$BIN/bench_parser_uas" 127.0.0.1:25074 loket-entry || continue
        sweep entry-uas 25074 "$OUT/entry.pid"
        stop_pid "$OUT/entry.pid" ;;
    loket)
        start_bg "$OUT/loket.pid" "$BIN/bench_loket_uas" 127.0.0.1:25075 || continue
        sweep loket-uas 25075 "$OUT/loket.pid"
        stop_pid "$OUT/loket.pid" ;;
    *) echo "unknown series $s" ;;
    esac
done
echo "=== done $(date +%T)"
python3 "$HERE/sip-bench-table.py" "$RESULTS"
