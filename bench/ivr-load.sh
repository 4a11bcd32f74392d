#!/bin/bash
# loket playing the IVR itself under load (issue #4's benchmark): SIPp citizens call the demo
# number of `loket serve --demo` at a sweep of call rates; loket answers each call with a media
# session of its own, plays the prompts, takes the keys and (profile "queue") puts the caller in a
# queue, writing a case, with music on hold. The goal: 400 new calls/s, 2,080 concurrent, what two
# SIPp instances playing the IVR directly carried here (../shared/bench/README.md).
#
# The caller (bench/ivr-load-caller.xml) streams A-law audio the whole call (rtp_stream, 50
# packets/s), keys 3, 4, # by SIP INFO 4.6 s after the ACK (after the 4.3 s welcome), stays, hangs up:
#   PROFILE=menu  (default) 5.2 s calls, as the anchor's: welcome, language, service and
#                 identification menus, the start of the deflection message; nothing is written.
#   PROFILE=queue 11.5 s calls: the deflection message, then the queue taxes-en-l1 (case draft in
#                 the database, work item in the router, announcements and music), then the
#                 caller hangs up (the abandoned call is noted on the case).
# Per rate it prints: achieved calls/s, calls ok / planned, failed calls (and how many of them loket
# refused with 503, from its /metrics), concurrent calls at the
# plateau, INVITE→200 p50/p99, loket's CPU (utime+stime of all its threads, /proc/PID/stat) in % of
# a core and per call, with the share of its SQLite threads, loket's RSS at the plateau (idle →
# plateau) and per concurrent call, the RTP packets/s loket delivered to the callers (the drop
# counter of SIPp's -mp socket in /proc/net/udp: SIPp never reads it) and per concurrent call
# (50/s = a full stream each; fewer = loket fell behind and skipped frames), receive-buffer drops
# on loket's media and SIP sockets and on SIPp's SIP socket, the cases written, warnings and errors
# in loket's log, SIPp's and the other processes' CPU. Then the highest rate with zero failed calls,
# and the highest with every prompt frame delivered as well.
# loket is started afresh for each rate, with a fresh data directory (SQLite), and stopped after.
# The machine is shared: each step waits (up to QUIET_WAIT s) for it to be fairly idle, and a step
# during which everything but loket and SIPp used more than OTHERS_MAX % of a core (other people's
# work; this script and the kernel's threads take about 10 %) is run once more.
#
# DTMF=rfc4733 sends the keys as RFC 4733 events (bench/ivr-load-caller-rfc4733.xml, SIPp's
# play_dtmf) instead of SIP INFO: for low rates only, see the comment in that scenario.
#
# Usage: [PROFILE=menu|queue] [RATES=25,50,100,200,300,400] [DURATION=seconds of calls per rate]
#        [PERF_RATE=rate to profile with perf record] [IVR_LOAD_DATABASE_URL=postgres://...]
#        [DTMF=info|rfc4733] [QUIET_WAIT=60] [OTHERS_MAX=30] bench/ivr-load.sh
# Bounded: every SIPp run has -m, -timeout and a kill deadline; each step lasts at most ~30 s
# (DURATION + one call); the sweep stops at the first rate with failed calls; loopback only; every
# process started here is stopped by its pid on exit. Results: $OUT/results.jsonl, the table on
# stdout (OUT=bench/out/ivr-load-$PROFILE-$DTMF). Needs sipp (sip-tester), python3, sqlite3 (cases).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PROFILE=${PROFILE:-menu}
case $PROFILE in
menu) HOLD_MS=${HOLD_MS:-200}; DURATION=${DURATION:-20} ;;
queue) HOLD_MS=${HOLD_MS:-6500}; DURATION=${DURATION:-18} ;;
*) echo "PROFILE is menu or queue"; exit 1 ;;
esac
# INVITE..ACK, 4.6 s, three INFOs 200 ms apart, then -d: the call's length from the caller's side.
CALL_MS=$((4600 + 400 + HOLD_MS))
RATES=${RATES:-25,50,100,200,300,400}
OUT=${OUT:-$HERE/out/ivr-load-$PROFILE-${DTMF:-info}}
PERF_RATE=${PERF_RATE:-0}
DTMF=${DTMF:-info}
case $DTMF in
info) SCENARIO=ivr-load-caller.xml ;;
rfc4733) SCENARIO=ivr-load-caller-rfc4733.xml ;;
*) echo "DTMF is info or rfc4733"; exit 1 ;;
esac
QUIET_WAIT=${QUIET_WAIT:-60}
OTHERS_MAX=${OTHERS_MAX:-30}
LOKET_SIP_PORT=15080
# The console's port, for /metrics: the 503s loket answered (loket_sip_calls_refused_total).
LOKET_HTTP_PORT=15088
CALLER_SIP_PORT=15061
CALLER_MEDIA_PORT=16000
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LOKET=$CARGO_TARGET_DIR/release/loket
for tool in sipp python3 curl; do
    command -v $tool >/dev/null || { echo "ivr-load.sh needs $tool (apt-get install sip-tester python3 curl)"; exit 1; }
done
if [ -n "${IVR_LOAD_DATABASE_URL:-}" ]; then
    command -v psql >/dev/null || { echo "IVR_LOAD_DATABASE_URL needs psql to count the cases"; exit 1; }
else
    command -v sqlite3 >/dev/null || { echo "ivr-load.sh needs sqlite3 to count the cases (apt-get install sqlite3)"; exit 1; }
fi
if [ ! -x "$LOKET" ]; then
    echo "# building loket (release)"
    (cd "$ROOT" && nice cargo build --release -p loket -j2) || exit 1
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.jsonl
: > "$RESULTS"
# A media session is two sockets; SIPp keeps one SIP socket.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

LOKET_PID=""
STEP_PID=""
SIPP_PIDFILE=$OUT/sipp.pid
cleanup() {
    [ -n "$STEP_PID" ] && kill "$STEP_PID" 2>/dev/null
    if [ -s "$SIPP_PIDFILE" ]; then kill "$(cat "$SIPP_PIDFILE")" 2>/dev/null; rm -f "$SIPP_PIDFILE"; fi
    [ -n "$LOKET_PID" ] && loket_stop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The demo flows, always open: the opening-hours lines replaced as tests/support/mod.rs::demo_flows
# does, so that the run does not depend on the hour.
python3 - "$ROOT/ivr/demo.toml" "$OUT/ivr.toml" <<'EOF'
import sys
hours = '["00:00-24:00"]'
out = []
for line in open(sys.argv[1], encoding="utf-8").read().splitlines():
    key = line.split(" = ")[0]
    if key in ("monday", "tuesday", "wednesday", "thursday"):
        out.append(f"{key} = {hours}")
    elif key == "friday":
        out += [f"friday = {hours}", f"saturday = {hours}", f"sunday = {hours}"]
    elif key in ("closed", "exceptions") and line.startswith(f"{key} = ["):
        out.append(f"{key} = []")
    else:
        out.append(line)
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(out) + "\n")
EOF
# The caller's voice: a prompt of the demo in raw A-law (G.711 as Sun's reference code), looped.
python3 - "$ROOT/ivr/prompts/en/choose-service.wav" "$OUT/ivr-load-caller.alaw" <<'EOF'
import struct, sys, wave
w = wave.open(sys.argv[1])
assert w.getframerate() == 8000 and w.getsampwidth() == 2 and w.getnchannels() == 1
def alaw(sample):
    pcm = sample >> 3
    mask = 0xD5 if pcm >= 0 else 0x55
    if pcm < 0:
        pcm = -pcm - 1
    for seg, end in enumerate((0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)):
        if pcm <= end:
            value = (seg << 4) | ((pcm >> 1 if seg < 2 else pcm >> seg) & 0xF)
            return value ^ mask
    return 0x7F ^ mask
raw = w.readframes(w.getnframes())
samples = struct.unpack(f"<{len(raw) // 2}h", raw)
data = bytes(alaw(s) for s in samples)
open(sys.argv[2], "wb").write(data[: len(data) // 160 * 160])
EOF

loket_start() {  # $1 run directory; sets LOKET_PID
    local dir=$1 db
    rm -rf "$dir"; mkdir -p "$dir/data"
    db=${IVR_LOAD_DATABASE_URL:-"sqlite://$dir/data/loket.db?mode=rwc"}
    cat > "$dir/loket.toml" <<EOF
[http]
listen = "127.0.0.1:$LOKET_HTTP_PORT"

[database]
url = "$db"

[data]
dir = "$dir/data"

[sip]
udp_listen = "127.0.0.1:$LOKET_SIP_PORT"
tcp_listen = "127.0.0.1:$LOKET_SIP_PORT"
max_calls = 100000
max_calls_per_second = 10000

[media]
bind = "127.0.0.1"
port_min = 20000
port_max = 59999

[ivr]
flows = "$OUT/ivr.toml"
prompts = "$ROOT/ivr/prompts"
EOF
    (cd "$dir" && LOKET_LOG=warn exec "$LOKET" --config "$dir/loket.toml" serve --demo > "$dir/out.log" 2> "$dir/err.log") &
    LOKET_PID=$!
    for _ in $(seq 1 120); do
        grep -q "loket: sip on" "$dir/out.log" 2>/dev/null && return 0
        kill -0 "$LOKET_PID" 2>/dev/null || break
        sleep 0.5
    done
    echo "loket did not start:"; cat "$dir/out.log" "$dir/err.log"; loket_stop; return 1
}
loket_stop() {
    kill "$LOKET_PID" 2>/dev/null
    for _ in $(seq 1 20); do kill -0 "$LOKET_PID" 2>/dev/null || { wait "$LOKET_PID" 2>/dev/null; LOKET_PID=""; return 0; }; sleep 0.5; done
    echo "loket $LOKET_PID still running after 10 s, sending KILL"; kill -9 "$LOKET_PID"; wait "$LOKET_PID" 2>/dev/null
    LOKET_PID=""
}
count_cases() {  # $1 run directory
    if [ -n "${IVR_LOAD_DATABASE_URL:-}" ]; then
        psql -At "$IVR_LOAD_DATABASE_URL" -c "select count(*) from cases" 2>/dev/null
    else
        sqlite3 "$1/data/loket.db" "select count(*) from cases" 2>/dev/null
    fi
}

# One load step: SIPp at a rate for DURATION seconds, sampled every 0.5 s; one JSON line out.
cat > "$OUT/ivr-step.py" <<'EOF'
import glob, json, os, signal, statistics, subprocess, sys, time
a = json.loads(sys.argv[1])
CLK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count()
loket, rate, dur = a["loket_pid"], a["rate"], a["duration"]
call_s = a["call_ms"] / 1000.0

def ticks(pid):
    try:
        s = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    rest = s[s.rfind(")") + 2:].split()
    return int(rest[11]) + int(rest[12])

def thread_ticks(pid):
    """CPU ticks and name (tokio-rt-worker, sqlx-sqlite-wor…) of each thread of one process."""
    out = {}
    for t in glob.glob(f"/proc/{pid}/task/*/stat"):
        try:
            s = open(t).read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        out[t.split("/")[4]] = (s[s.find("(") + 1:s.rfind(")")].rstrip("0123456789-"), int(rest[11]) + int(rest[12]))
    return out

def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None

def procs():
    """CPU ticks and name of every process."""
    out = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                st = open(f"/proc/{pid}/stat").read()
            except OSError:
                continue
            rest = st[st.rfind(")") + 2:].split()
            out[int(pid)] = (int(rest[11]) + int(rest[12]), st[st.find("(") + 1:st.rfind(")")], int(rest[1]))
    return out

def sys_ticks():
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return sum(v[:8]), v[3] + v[4]

def udp():
    lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))

class Drops:
    """Receive-buffer drops of the UDP sockets on 127.0.0.1, by kind: SIPp's -mp socket (never read:
    its drops are the RTP packets loket delivered to the callers), loket's media sockets (the
    [media] range), loket's and SIPp's SIP sockets. Sockets come and go with calls: each one's increase is
    added up while it is seen (what a socket drops between its last look and its close is missed)."""
    def __init__(self, sink, sip_ports, lo, hi):
        self.sink, self.sip_ports, self.lo, self.hi = sink, sip_ports, lo, hi
        self.seen, self.total = {}, {"sink": 0, "media": 0, "loket_sip": 0, "caller_sip": 0}
        self.read(first=True)
    def kind(self, port):
        if port == self.sink:
            return "sink"
        if port == self.sip_ports[0]:
            return "loket_sip"
        if port == self.sip_ports[1]:
            return "caller_sip"
        if self.lo <= port <= self.hi:
            return "media"
        return None
    def read(self, first=False):
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                p = line.split()
                address, port = p[1].split(":")
                if address != "0100007F":
                    continue
                kind = self.kind(int(port, 16))
                if kind is None:
                    continue
                inode, drops = p[9], int(p[-1])
                before = self.seen.get(inode, drops if first else 0)
                self.total[kind] += max(0, drops - before)
                self.seen[inode] = drops
        return dict(self.total)

def busy_now(sec=2.0):
    a0, i0 = sys_ticks(); t0 = time.time(); time.sleep(sec); a1, i1 = sys_ticks()
    return 100.0 * NCPU - 100.0 * (i1 - i0) / CLK / (time.time() - t0)

# The machine is shared: wait (bounded) for it to be fairly quiet.
waited = 0.0
pre_busy = busy_now()
while pre_busy > a["quiet_pct"] and waited < a["quiet_wait"]:
    time.sleep(3); waited += 5; pre_busy = busy_now()

d = a["dir"]
for f in glob.glob(os.path.join(d, "*_rtt.csv")) + glob.glob(os.path.join(d, "*.csv")):
    os.remove(f)
calls = int(rate * dur)
limit = max(100, int(rate * (call_s + 3) * 2))
tmo = int(dur + call_s + 20)
idle_rss = rss_kib(loket)
cmd = ["sipp", f"127.0.0.1:{a['loket_port']}", "-sf", a["scenario"], "-s", "+3225550100",
       "-i", "127.0.0.1", "-p", str(a["caller_port"]), "-mi", "127.0.0.1", "-mp", str(a["media_port"]),
       "-r", str(rate), "-m", str(calls), "-l", str(limit), "-d", str(a["hold_ms"]),
       "-key", "key1", "3", "-key", "key2", "4", "-key", "key3", "#",
       "-timeout", f"{tmo}s", "-recv_timeout", "10000", "-nostdin",
       "-trace_stat", "-stf", "stat.csv", "-fd", "1", "-trace_rtt", "-rtt_freq", "10",
       "-trace_err", "-trace_screen"]
series = []  # (t, loket ticks, sipp ticks, unused, sys total, sys idle, rss, udp, drops by kind)
drops = Drops(a["media_port"], (a["loket_port"], a["caller_port"]), 20000, 59999)
def sample(sipp_pid):
    st, si = sys_ticks()
    series.append((time.time(), ticks(loket), ticks(sipp_pid) or 0, None, st, si, rss_kib(loket),
                   udp(), drops.read()))
t0 = time.time()
sipp = subprocess.Popen(cmd, cwd=d, stdout=open(os.path.join(d, "sipp.out"), "w"), stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL)
open(a["pidfile"], "w").write(str(sipp.pid))
sample(sipp.pid)
w0, w1 = t0 + min(call_s + 1.0, dur / 2.0), t0 + dur
threads0 = threads1 = None
procs0 = procs1 = None
perf = None
while sipp.poll() is None:
    time.sleep(0.5)
    sample(sipp.pid)
    now = time.time()
    if threads0 is None and now >= w0:
        threads0 = (now, thread_ticks(loket))
        procs0 = (now, procs())
        if a["perf"]:
            # A flat profile of loket over the plateau (perf's own CPU is not loket's).
            perf = subprocess.Popen(["perf", "record", "-F", "499", "-p", str(loket), "-o",
                                     os.path.join(d, "perf.data"), "--", "sleep", str(max(2, int(w1 - now - 1)))],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if threads1 is None and now >= w1:
        threads1 = (now, thread_ticks(loket))
        procs1 = (now, procs())
    if now > t0 + tmo + 15:
        sipp.send_signal(signal.SIGTERM)
        try:
            sipp.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sipp.kill(); sipp.wait()
        break
sipp.wait()
t_end = time.time()
if perf:
    perf.wait()
os.remove(a["pidfile"])
if threads1 is None:
    threads1 = (t_end, thread_ticks(loket))

def stat_rows():
    try:
        lines = [l.rstrip("\n") for l in open(os.path.join(d, "stat.csv"), errors="replace") if l.strip()]
    except OSError:
        return []
    head = lines[0].split(";")
    return [dict(zip(head, l.split(";"))) for l in lines[1:]]
def num(row, key):
    try:
        return int(row.get(key, "0") or 0)
    except ValueError:
        return 0
def epoch(row):
    try:
        return float(row.get("CurrentTime", "").split("\t")[-1])
    except ValueError:
        return 0.0
rows = stat_rows()
last = rows[-1] if rows else {}
inwin = [r for r in rows if w0 <= epoch(r) <= w1 + 0.6]
achieved = None
if len(inwin) >= 2:
    dt = epoch(inwin[-1]) - epoch(inwin[0])
    if dt > 0:
        achieved = (num(inwin[-1], "OutgoingCall(C)") - num(inwin[0], "OutgoingCall(C)")) / dt
concurrent = int(statistics.median([num(r, "CurrentCall") for r in inwin])) if inwin else None
rtt = []
for p in glob.glob(os.path.join(d, "*_rtt.csv")):
    for line in open(p, errors="replace"):
        parts = line.strip().split(";")
        if len(parts) >= 3 and parts[2] == "1":
            try:
                rtt.append(float(parts[1]))
            except ValueError:
                pass
rtt.sort()
pct = lambda q: round(rtt[min(len(rtt) - 1, int(round(q / 100 * (len(rtt) - 1))))], 1) if rtt else None

pts = [s for s in series if w0 <= s[0] <= w1] or series
s0, s1 = pts[0], pts[-1]
wdt = s1[0] - s0[0]
cpu = lambda i: round(100.0 * (s1[i] - s0[i]) / CLK / wdt, 1) if wdt > 0 and s1[i] is not None and s0[i] is not None else None
loket_pct, sipp_pct = cpu(1), cpu(2)
busy = round(100.0 * NCPU - 100.0 * (s1[5] - s0[5]) / CLK / wdt, 1) if wdt > 0 else None
# Everything else, kernel threads and this script included: the machine is shared.
other_pct = round(busy - loket_pct - sipp_pct, 1) if None not in (busy, loket_pct, sipp_pct) else None
per_s = lambda kind: (s1[8][kind] - s0[8][kind]) / wdt if wdt > 0 else None
sink = per_s("sink")
rss_peak = max((s[6] for s in pts if s[6]), default=None)
(tt0, th0), (tt1, th1) = threads0 or (t0, {}), threads1
by_thread = {}
for tid, (name, t) in th1.items():  # threads started inside the window count from zero
    by_thread[name] = by_thread.get(name, 0) + t - th0.get(tid, (name, 0))[1]
by_thread = {n: round(100.0 * v / CLK / max(0.1, tt1 - tt0), 1) for n, v in sorted(by_thread.items(), key=lambda kv: -kv[1]) if v > 0}
whole = (series[-1][1] - series[0][1]) / CLK if series[-1][1] is not None else None
# Who else used the machine during the plateau (other work, ksoftirqd doing loopback deliveries …).
# (Processes that start and end inside the window, such as a neighbour's compiler runs, are not
# in it; "others" below, the machine's busy time minus loket's and SIPp's, has them.)
others_top = {}
if procs0 and procs1:
    span = max(0.1, procs1[0] - procs0[0])
    for pid, (t, name, ppid) in procs1[1].items():
        if pid in (loket, sipp.pid, os.getpid()):
            continue
        dt_ = t - procs0[1].get(pid, (0,))[0]
        if dt_ > 0:
            name = name.rstrip("0123456789/:-")
            others_top[name] = others_top.get(name, 0) + dt_
    others_top = {n: round(100.0 * t / CLK / span, 1) for n, t in sorted(others_top.items(), key=lambda kv: -kv[1])[:5]}
ok = num(last, "SuccessfulCall(C)")
res = {
    "profile": a["profile"], "rate": rate, "duration_s": dur, "call_ms": a["call_ms"], "calls_planned": calls,
    "achieved_cps": round(achieved, 1) if achieved else None, "successful": ok, "failed": num(last, "FailedCall(C)"),
    "failed_unexpected": num(last, "FailedUnexpectedMessage(C)"), "failed_max_udp_retrans": num(last, "FailedMaxUDPRetrans(C)"),
    "failed_timeouts": num(last, "FailedCallTimeout(C)"), "refused": num(last, "FailedCallRejected(C)"),
    "retransmissions": num(last, "Retransmissions(C)"), "dead_msgs": num(last, "DeadCallMsgs(C)"),
    "concurrent": concurrent, "peak_concurrent": max([num(r, "CurrentCall") for r in rows] or [0]),
    "invite_200_ms": {"p50": pct(50), "p99": pct(99), "max": round(rtt[-1], 1) if rtt else None, "n": len(rtt)},
    "window_s": round(wdt, 1), "loket_cpu_pct": loket_pct,
    "loket_ms_per_call": round(10.0 * loket_pct / achieved, 2) if loket_pct is not None and achieved else None,
    "loket_ms_per_call_whole_step": round(1000.0 * whole / ok, 2) if whole is not None and ok else None,
    "loket_cpu_by_thread_pct": by_thread,
    "rss_idle_kib": idle_rss, "rss_plateau_kib": rss_peak,
    "kib_per_concurrent_call": round((rss_peak - idle_rss) / concurrent, 1) if rss_peak and idle_rss and concurrent else None,
    "rtp_to_callers_pps": round(sink) if sink is not None else None,
    "rtp_per_concurrent_call_pps": round(sink / concurrent, 1) if sink is not None and concurrent else None,
    "loket_sip_drops_step": series[-1][8]["loket_sip"] - series[0][8]["loket_sip"],
    "caller_sip_drops_step": series[-1][8]["caller_sip"] - series[0][8]["caller_sip"],
    "media_drops_step": series[-1][8]["media"] - series[0][8]["media"],
    "udp_in_per_s": round((s1[7]["InDatagrams"] - s0[7]["InDatagrams"]) / wdt) if wdt > 0 else None,
    "sipp_cpu_pct": sipp_pct, "other_cpu_pct": other_pct, "others_top_pct": others_top, "system_busy_pct": busy,
    "pre_step_busy_pct": round(pre_busy, 1), "waited_for_quiet_s": waited, "wall_s": round(t_end - t0, 1),
    "sipp_rc": sipp.returncode, "perf": bool(perf),
}
print(json.dumps(res))
EOF

# A step's figures merged with what the shell learned after it, its summary line, the failure test
# and the final table.
cat > "$OUT/ivr-report.py" <<'EOF'
import json, sys
f = lambda v, nd=0: "-" if v is None else f"{v:,.{nd}f}"
def bad(r):
    return r["failed"] > 0 or r["successful"] < r["calls_planned"] or not r["loket_alive"]
def full_audio(r):
    # Every call hears a prompt the whole time: 50 packets/s each; loket skips the frames of a
    # wake-up more than 60 ms late, so fewer means that it fell behind.
    return (r["rtp_per_concurrent_call_pps"] or 0) >= 47.5
def sqlite(r):
    return sum(v for k, v in r["loket_cpu_by_thread_pct"].items() if "sqlite" in k)
cmd = sys.argv[1]
if cmd == "merge":
    r = json.loads(sys.argv[2])
    r.update(cases=int(sys.argv[3] or 0), log_warn=int(sys.argv[4]), log_error=int(sys.argv[5]),
             loket_alive=sys.argv[6] == "true", refused=int(float(sys.argv[7])) if sys.argv[7] else None)
    print(json.dumps(r))
elif cmd == "others":
    # (perf record's own CPU counts among the others: a profiled step is not repeated.)
    r = json.loads(sys.argv[2])
    print(int(not r["perf"] and (r.get("other_cpu_pct") or 0) > float(sys.argv[3])))
elif cmd == "bad":
    print(int(bad(json.loads(sys.argv[2]))))
elif cmd == "line":
    r = json.loads(sys.argv[2])
    rt = r["invite_200_ms"]
    print(f"r={r['rate']}: achieved={r['achieved_cps']} ok={r['successful']}/{r['calls_planned']} failed={r['failed']} "
          f"(refused with 503 by loket: {f(r.get('refused'))}) "
          f"concurrent={r['concurrent']} INVITE->200 p50/p99={rt['p50']}/{rt['p99']} ms loket={r['loket_cpu_pct']}% "
          f"({r['loket_ms_per_call']} ms/call, sqlite {sqlite(r):.1f}%) rss={r['rss_idle_kib']}->{r['rss_plateau_kib']} KiB "
          f"rtp->callers={r['rtp_to_callers_pps']}/s ({r['rtp_per_concurrent_call_pps']}/call) UDP drops loket media/loket SIP/SIPp SIP="
          f"{r['media_drops_step']}/{r['loket_sip_drops_step']}/{r['caller_sip_drops_step']} cases={r['cases']} warn/err={r['log_warn']}/{r['log_error']} "
          f"sipp={r['sipp_cpu_pct']}% others={r['other_cpu_pct']}% (top of those alive across the window: "
          f"{r['others_top_pct']}) busy={r['system_busy_pct']}% (before {r['pre_step_busy_pct']}%)",
          flush=True)
elif cmd == "table":
    rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
    print()
    print("| target cps | achieved cps | ok / planned | failed (of which 503) | concurrent | INVITE→200 p50 / p99 ms | loket CPU % core "
          "| CPU ms / call | SQLite threads % core | RSS MiB idle → plateau | KiB / concurrent call | RTP pkts/s to callers "
          "| per call | UDP drops: loket media / loket SIP / SIPp SIP | cases | log warn / error | SIPp % core | others % core |")
    print("|" + "---|" * 18)
    for r in rows:
        rt = r["invite_200_ms"]
        print(f"| {r['rate']} | {f(r['achieved_cps'], 1)} | {r['successful']:,} / {r['calls_planned']:,} | {r['failed']} ({f(r.get('refused'))}) "
              f"| {f(r['concurrent'])} | {f(rt['p50'], 1)} / {f(rt['p99'], 1)} | {f(r['loket_cpu_pct'], 1)} "
              f"| {f(r['loket_ms_per_call'], 2)} | {f(sqlite(r), 1)} "
              f"| {f((r['rss_idle_kib'] or 0) / 1024)} → {f((r['rss_plateau_kib'] or 0) / 1024)} "
              f"| {f(r['kib_per_concurrent_call'], 1)} | {f(r['rtp_to_callers_pps'])} | {f(r['rtp_per_concurrent_call_pps'], 1)} "
              f"| {r['media_drops_step']:,} / {r['loket_sip_drops_step']:,} / {r['caller_sip_drops_step']:,} | {r['cases']:,} | {r['log_warn']} / {r['log_error']} "
              f"| {f(r['sipp_cpu_pct'], 1)} | {f(r['other_cpu_pct'], 1)} |")
    clean = [r["rate"] for r in rows if not bad(r)]
    full = [r["rate"] for r in rows if not bad(r) and full_audio(r)]
    print()
    print(f"highest rate with zero failed calls: {max(clean) if clean else 'none'} calls/s"
          + (f" ({rows[0]['call_ms'] / 1000:.1f} s calls, profile {rows[0]['profile']})" if rows else "")
          + f"; with every prompt frame sent as well (≥ 47.5 packets/s per call): {max(full) if full else 'none'} calls/s")
    for r in rows:
        top = ", ".join(f"{k} {v}%" for k, v in list(r["loket_cpu_by_thread_pct"].items())[:4])
        print(f"  {r['rate']} calls/s: loket's CPU by thread {top}; CPU per call over the whole step "
              f"{f(r['loket_ms_per_call_whole_step'], 2)} ms; INVITE→200 max {r['invite_200_ms']['max']} ms; "
              f"retransmissions {r['retransmissions']}; system busy {r['system_busy_pct']}% of 200")
EOF

echo "# profile $PROFILE, keys by $DTMF: ${CALL_MS} ms calls, ${DURATION} s of calls per rate, rates $RATES"
echo "# $(nproc) cores, $(uname -r), $(sipp -v 2>/dev/null | grep -o 'SIPp v[^ ]*'); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# One rate: loket afresh, the load, the figures; sets $line.
step() {  # $1 rate
    local rate=$1 perf=false args cases0 log0 cases alive refused
    RUN=$OUT/r$rate
    loket_start "$RUN" || return 1
    sleep 1
    cp "$HERE/$SCENARIO" "$OUT/ivr-load-caller.alaw" "$RUN/"
    [ "$rate" = "$PERF_RATE" ] && command -v perf >/dev/null && perf=true
    args=$(printf '{"profile":"%s","rate":%s,"duration":%s,"call_ms":%s,"hold_ms":%s,"loket_pid":%s,"loket_port":%s,"caller_port":%s,"media_port":%s,"dir":"%s","scenario":"%s","pidfile":"%s","perf":%s,"quiet_pct":60,"quiet_wait":%s}' \
        "$PROFILE" "$rate" "$DURATION" "$CALL_MS" "$HOLD_MS" "$LOKET_PID" "$LOKET_SIP_PORT" "$CALLER_SIP_PORT" \
        "$CALLER_MEDIA_PORT" "$RUN" "$RUN/$SCENARIO" "$SIPP_PIDFILE" "$perf" "$QUIET_WAIT")
    cases0=$(count_cases "$RUN"); log0=$(wc -l < "$RUN/err.log")
    # In the background, so that a signal reaches the traps at once rather than after the step.
    python3 "$OUT/ivr-step.py" "$args" > "$RUN/step.json" &
    STEP_PID=$!
    wait "$STEP_PID"
    STEP_PID=""
    line=$(cat "$RUN/step.json")
    [ -n "$line" ] || { echo "the step at $rate calls/s gave no figures"; loket_stop; return 1; }
    sleep 1  # the last calls' hang-ups reach the database, and the metrics their second's figures
    # A fresh loket per step: its count is the step's.
    refused=$(curl -s --max-time 5 "http://127.0.0.1:$LOKET_HTTP_PORT/metrics" | awk '$1 == "loket_sip_calls_refused_total" {print $2}')
    cases=$(( $(count_cases "$RUN" || echo 0) - ${cases0:-0} ))
    # The step's log lines, without colours.
    tail -n +$((log0 + 1)) "$RUN/err.log" | sed -E 's/\x1b\[[0-9;]*m//g' > "$RUN/step.log"
    alive=true; kill -0 "$LOKET_PID" 2>/dev/null || alive=false
    line=$(python3 "$OUT/ivr-report.py" merge "$line" "$cases" "$(grep -c ' WARN ' "$RUN/step.log")" \
        "$(grep -c ' ERROR ' "$RUN/step.log")" "$alive" "$refused")
    python3 "$OUT/ivr-report.py" line "$line"
    if grep -q -E ' (WARN|ERROR) ' "$RUN/step.log"; then
        echo "  loket's log during the step, distinct warnings and errors (numbers as N):"
        sed -E 's/^[^ ]+ +//; s/[0-9]+/N/g' "$RUN/step.log" | sort | uniq -c | sort -rn | head -8 | sed 's/^/    /'
    fi
    if [ "$perf" = true ] && [ -f "$RUN/perf.data" ]; then
        perf report -i "$RUN/perf.data" --no-children --sort dso,sym --percent-limit 0.5 --stdio 2>/dev/null \
            | grep '%' | grep -v '^#' > "$RUN/perf-top.txt"
        perf report -i "$RUN/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep '%' | grep -v '^#' | head -12 > "$RUN/perf-dso.txt"
        echo "  perf record of loket over the plateau, by object:"; sed 's/^/    /' "$RUN/perf-dso.txt"
        echo "  top symbols (all in $RUN/perf-top.txt):"; head -30 "$RUN/perf-top.txt" | sed 's/^/    /'
    fi
    loket_stop
}

for rate in ${RATES//,/ }; do
    step "$rate" || break
    # Other processes took more than OTHERS_MAX % of a core during the plateau: once more.
    if [ "$(python3 "$OUT/ivr-report.py" others "$line" "$OTHERS_MAX")" = 1 ]; then
        echo "  (other processes used more than $OTHERS_MAX % of a core during the step: repeating it)"
        sleep 5
        step "$rate" || break
    fi
    echo "$line" >> "$RESULTS"
    if [ "$(python3 "$OUT/ivr-report.py" bad "$line")" = 1 ]; then
        echo "# failed calls at $rate calls/s: the sweep stops"
        break
    fi
    sleep 2
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 "$OUT/ivr-report.py" table "$RESULTS"
