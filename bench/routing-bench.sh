#!/bin/bash
# loket routing benchmark. In one run, against one throw-away redis-server on loopback (no RDB/AOF,
# stopped again by its pid):
#   1. the anchor: redis-benchmark EVALSHA of the queue-claim script (ZPOPMIN + HSET), 50 clients,
#      pipeline 1, exactly as shared/bench/run-redis.sh drives it;
#   2. loket's routing stores (in-process and Redis): 10,000 items, 200 agents, printed as a table
#      with the ratio to the goals (in-process 200,000 assignments/s; Redis a third of the anchor).
#      Also Redis's main-thread CPU per assignment (INFO cpu) against three times the anchor's per
#      claim: the same goal, steadier than the rates when other processes load the machine.
# Everything is bounded: fixed counts and a timeout on each step.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-6391}
N=${N:-200000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
RUN=$(mktemp -d /tmp/loket-routing-bench.XXXXXX)

echo "# building the benchmark (release)"
cargo bench -p loket-routing --bench assign --no-run 2>&1 | tail -1

if ss -ltn | grep -q ":$PORT "; then echo "port $PORT busy; set PORT" >&2; exit 1; fi
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log" --dir "$RUN"
for _ in $(seq 1 50); do [ -s "$RUN/redis.pid" ] && redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
RPID=$(cat "$RUN/redis.pid")
stop_redis() {
    kill "$RPID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$RPID" 2>/dev/null || break; sleep 0.25; done
    rm -rf "$RUN"
}
trap stop_redis EXIT
echo "# redis-server $(redis-server --version | cut -d' ' -f3) on 127.0.0.1:$PORT, pid $RPID; $(nproc) cores"

C="redis-cli -h 127.0.0.1 -p $PORT"
SHA_CLAIM=$($C SCRIPT LOAD "local r = redis.call('ZPOPMIN', KEYS[1]) if r[1] then redis.call('HSET', KEYS[2], r[1], ARGV[1]) end return r")
timeout 120 redis-benchmark -h 127.0.0.1 -p "$PORT" -n $((N * 2)) -c 50 -P 64 -r 10000000 \
    zadd q:nl:general __rand_int__ m:__rand_int__ > /dev/null
echo "# anchor queue size before claims: $($C ZCARD q:nl:general)"
cpu_seconds() { $C INFO cpu | awk -F: '/_main_thread/ {s += $2} END {printf "%.6f", s}'; }
ANCHOR_CPU_BEFORE=$(cpu_seconds)
ANCHOR_CSV=$(timeout 120 redis-benchmark -h 127.0.0.1 -p "$PORT" --csv -n "$N" -c 50 -P 1 -r 1000 \
    EVALSHA "$SHA_CLAIM" 2 q:nl:general assigned:nl agent:__rand_int__)
ANCHOR_CPU_US=$(awk -v a="$ANCHOR_CPU_BEFORE" -v b="$(cpu_seconds)" -v n="$N" 'BEGIN {printf "%.2f", (b - a) * 1e6 / n}')
$C DEL q:nl:general assigned:nl > /dev/null
ANCHOR_RPS=$(echo "$ANCHOR_CSV" | tail -1 | cut -d, -f2 | tr -d '"')
echo "# anchor: EVALSHA claim (ZPOPMIN+HSET), 50 clients, pipeline 1: $ANCHOR_RPS requests/s, redis CPU $ANCHOR_CPU_US µs per claim"

ROUTING_BENCH_REDIS_URL="redis://127.0.0.1:$PORT" ROUTING_ANCHOR_RPS="$ANCHOR_RPS" ROUTING_ANCHOR_CPU_US="$ANCHOR_CPU_US" \
    timeout 600 cargo bench -q -p loket-routing --bench assign 2>&1 | grep -v '^$'
echo "# redis commands left behind by the run: $($C DBSIZE)"
