#!/usr/bin/env python3
"""loket SIP bench runner (copied from the project's anchor runner; scenarios are looked up beside it).

Runs bounded SIPp load steps on 127.0.0.1 and records, per call rate:
achieved call rate, successful / failed calls, retransmissions (caller and callee side),
INVITE->200 response-time percentiles (from SIPp's -trace_rtt file), CPU use of the system
under test, of both SIPp instances and of every other process on the machine (the test
machine is shared), and UDP datagram counters (for the media cases).

Every step stops by itself: the caller has -m (calls) and -timeout, the callee has -m and
-timeout, and whatever is still alive after the step is ended by its own pid.

Example (Kamailio stateless responder already started with its pid file):
  ./bench.py --series kam-sl --uac uac-call.xml --target 127.0.0.1:25070 \
      --uac-d 1000 --rates 500,1000,2000 --sut-pidfile /tmp/perf-run/kam.pid
"""
import argparse
import glob
import json
import os
import signal
import statistics
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count()
UAC_PORT, UAC_MP, UAC_CP = 25061, 26000, 28888
UAS_PORT, UAS_MP, UAS_CP = 25090, 26100, 28889


def proc_info(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rfind(")") + 2:].split()
    # rest[0]=state, rest[1]=ppid, rest[11]=utime, rest[12]=stime
    return int(rest[11]) + int(rest[12]), int(rest[1]), s[s.find("(") + 1:s.rfind(")")]


def all_procs():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            r = proc_info(int(d))
            if r:
                out[int(d)] = r
    return out


def sys_ticks():
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:]))
    return sum(v[:8]), v[3] + v[4]  # total, idle+iowait


def udp_counters():
    with open("/proc/net/snmp") as f:
        lines = [l.split() for l in f if l.startswith("Udp:")]
    return dict(zip(lines[0][1:], map(int, lines[1][1:])))


class Sampler(threading.Thread):
    """Samples every process's CPU ticks every 0.5 s and keeps cumulative per-group series."""

    def __init__(self, groups):
        super().__init__(daemon=True)
        self.groups = groups  # name -> set of pids (a pid's children count with it)
        self.stop_ev = threading.Event()
        self.last = all_procs()
        self.acc = {}
        self.names = {}
        self.ppid = {}
        self.series = []  # (t, {group: ticks}, sys_total, sys_idle, udp)
        self.me = os.getpid()
        self._snap()

    def classify(self, pid):
        pp = self.ppid.get(pid)
        for g, pids in self.groups.items():
            if pid in pids or pp in pids:
                return g
        if pid == self.me:
            return "bench"
        if pp == 2 or pid == 2:
            return "kernel"
        return "other"

    def _snap(self):
        tot = {}
        for p, t in self.acc.items():
            g = self.classify(p)
            tot[g] = tot.get(g, 0) + t
        st, si = sys_ticks()
        self.series.append((time.time(), tot, st, si, udp_counters()))

    def sample(self):
        cur = all_procs()
        for p, (t, pp, n) in cur.items():
            prev = self.last.get(p)
            d = t if prev is None else t - prev[0]
            if d > 0:
                self.acc[p] = self.acc.get(p, 0) + d
            self.names[p] = n
            self.ppid[p] = pp
        merged = dict(self.last)
        merged.update(cur)
        self.last = merged
        self._snap()

    def run(self):
        while not self.stop_ev.wait(0.5):
            self.sample()

    def finish(self):
        self.stop_ev.set()
        self.join()
        self.sample()

    def window(self, t0, t1):
        """CPU per group in % of one core, system busy %, UDP deltas, between t0 and t1."""
        pts = [s for s in self.series if t0 <= s[0] <= t1]
        if len(pts) < 2:
            pts = self.series[:1] + self.series[-1:]
        a, b = pts[0], pts[-1]
        dt = b[0] - a[0]
        if dt <= 0:
            return {}
        cpu = {}
        for g in set(a[1]) | set(b[1]):
            cpu[g] = round(100.0 * (b[1].get(g, 0) - a[1].get(g, 0)) / CLK / dt, 1)
        # busy = wall-clock capacity minus idle time (idle is accounted precisely on NO_HZ kernels)
        busy = 100.0 * NCPU - 100.0 * (b[3] - a[3]) / CLK / dt
        udp = {k: round((b[4][k] - a[4][k]) / dt) for k in
               ("InDatagrams", "OutDatagrams", "RcvbufErrors", "SndbufErrors", "InErrors", "NoPorts")}
        top_other = {}
        return {"dt": round(dt, 1), "cpu_pct_of_core": cpu, "system_busy_pct": round(busy, 1),
                "udp_per_s": udp, "top_other": top_other}

    def top_others(self, n=3):
        rows = [(t, p, self.names.get(p, "?")) for p, t in self.acc.items()
                if self.classify(p) == "other"]
        rows.sort(reverse=True)
        return [f"{name}({pid}):{round(100.0 * t / CLK / max(0.1, self.series[-1][0] - self.series[0][0]), 1)}%"
                for t, pid, name in rows[:n] if t > 0]


def background_busy(sec=2.0):
    """System busy % (200 = both cores) over `sec` seconds, before a step starts."""
    a = sys_ticks()
    t = time.time()
    time.sleep(sec)
    b = sys_ticks()
    return 100.0 * NCPU - 100.0 * (b[1] - a[1]) / CLK / (time.time() - t)


def wait_quiet(threshold, max_wait):
    """The test machine is shared with other work: wait (bounded) until it is quiet."""
    t0 = time.time()
    while True:
        busy = background_busy()
        if busy <= threshold or time.time() - t0 > max_wait:
            return round(busy, 1), round(time.time() - t0, 1)
        time.sleep(3)


def read_stat(path):
    """SIPp -trace_stat CSV -> list of dict rows."""
    if not os.path.exists(path):
        return []
    with open(path, errors="replace") as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    if not lines:
        return []
    head = lines[0].split(";")
    rows = []
    for l in lines[1:]:
        rows.append(dict(zip(head, l.split(";"))))
    return rows


def epoch(field):
    try:
        return float(field.split("\t")[-1])
    except (ValueError, AttributeError):
        return 0.0


def intf(row, key):
    try:
        return int(row.get(key, "0") or 0)
    except ValueError:
        return 0


def rtt_values(d):
    vals = {}
    for p in glob.glob(os.path.join(d, "*_rtt.csv")):
        with open(p, errors="replace") as f:
            for line in f:
                parts = line.strip().split(";")
                if len(parts) < 3 or not parts[1].replace(".", "").isdigit():
                    continue
                vals.setdefault(parts[2], []).append(float(parts[1]))
    return vals


def pct(v, q):
    if not v:
        return None
    v = sorted(v)
    k = min(len(v) - 1, max(0, int(round(q / 100.0 * (len(v) - 1)))))
    return round(v[k], 3)


def stop_pid(p, grace=5):
    if p.poll() is None:
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()


def sut_pids(pidfile):
    if not pidfile:
        return set()
    main = int(open(pidfile).read().strip())
    kids = {p for p, (t, pp, n) in all_procs().items() if pp == main}
    return {main} | kids


def run_step(a, rate, out):
    d = os.path.join(a.workdir, a.series, f"r{rate}")
    os.makedirs(d, exist_ok=True)
    for f in glob.glob(os.path.join(d, "*")):
        os.remove(f)
    calls = max(1, int(rate * a.duration))
    hold_s = max(a.uac_d, a.uas_d) / 1000.0
    limit = a.limit or max(50, int(rate * (hold_s + 2) * 3))
    tmo = int(a.duration + hold_s + 25)
    pre_busy, waited = wait_quiet(a.quiet_pct, a.quiet_wait)
    groups = {"sut": sut_pids(a.sut_pidfile)}
    for name, pf in (("rtpengine", a.rtpengine_pidfile),):
        if pf:
            groups[name] = {int(open(pf).read().strip())}
    uas = None
    if a.uas:
        cmd = ["sipp", "-sf", os.path.join(HERE, a.uas), "-i", "127.0.0.1", "-p", str(UAS_PORT),
               "-mi", "127.0.0.1", "-mp", str(UAS_MP), "-cp", str(UAS_CP), "-nostdin",
               "-m", str(calls), "-timeout", f"{tmo + 5}s", "-d", str(a.uas_d),
               "-trace_stat", "-stf", "uas_stat.csv", "-fd", "1", "-trace_screen", "-trace_err"]
        cmd += a.uas_extra.split()
        uas = subprocess.Popen(cmd, cwd=d, stdout=open(os.path.join(d, "uas.out"), "w"),
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        groups["uas"] = {uas.pid}
        time.sleep(0.7)
    smp = Sampler(groups)
    smp.start()
    cmd = ["sipp", a.target, "-sf", os.path.join(HERE, a.uac), "-s", "ivr", "-i", "127.0.0.1",
           "-p", str(UAC_PORT), "-mi", "127.0.0.1", "-mp", str(UAC_MP), "-cp", str(UAC_CP),
           "-nostdin", "-r", str(rate), "-m", str(calls), "-l", str(limit), "-d", str(a.uac_d),
           "-timeout", f"{tmo}s", "-recv_timeout", str(a.recv_timeout),
           "-trace_stat", "-stf", "uac_stat.csv", "-fd", "1", "-trace_rtt", "-rtt_freq", "50", "-trace_screen", "-trace_err"]
    cmd += a.uac_extra.split()
    t0 = time.time()
    uac = subprocess.Popen(cmd, cwd=d, stdout=open(os.path.join(d, "uac.out"), "w"),
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    smp.groups["uac"] = {uac.pid}
    stop_pid(uac, grace=tmo + 15)
    t_end = time.time()
    if uas:
        stop_pid(uas, grace=8)
    smp.finish()

    rows = read_stat(os.path.join(d, "uac_stat.csv"))
    urows = read_stat(os.path.join(d, "uas_stat.csv"))
    last = rows[-1] if rows else {}
    ulast = urows[-1] if urows else {}
    # generation window: skip the ramp (one hold time, at most half the step), end when the
    # last call was created
    gen_end = t0 + a.duration
    for r in rows:
        if intf(r, "OutgoingCall(C)") >= calls:
            gen_end = min(gen_end, epoch(r.get("CurrentTime", "")) or gen_end)
            break
    w0 = t0 + min(hold_s + 1.0, a.duration / 2.0)
    w = smp.window(w0, gen_end)
    # achieved call-creation rate inside the window, from the 1-s stat rows
    inwin = [r for r in rows if w0 <= epoch(r.get("CurrentTime", "")) <= gen_end + 0.6]
    if len(inwin) >= 2:
        dc = intf(inwin[-1], "OutgoingCall(C)") - intf(inwin[0], "OutgoingCall(C)")
        dtc = epoch(inwin[-1]["CurrentTime"]) - epoch(inwin[0]["CurrentTime"])
        achieved = round(dc / dtc, 1) if dtc > 0 else None
    else:
        achieved = None
    peak_calls = max([intf(r, "CurrentCall") for r in rows] or [0])
    rt = rtt_values(d)
    r1 = rt.get("1", [])
    res = {
        "series": a.series, "target_cps": rate, "duration_s": a.duration, "hold_ms": max(a.uac_d, a.uas_d),
        "calls_planned": calls, "limit": limit,
        "achieved_cps": achieved,
        "successful": intf(last, "SuccessfulCall(C)"), "failed": intf(last, "FailedCall(C)"),
        "failed_max_udp_retrans": intf(last, "FailedMaxUDPRetrans(C)"),
        "failed_timeouts": intf(last, "FailedCallTimeout(C)") if "FailedCallTimeout(C)" in last else None,
        "failed_unexpected": intf(last, "FailedUnexpectedMessage(C)"),
        "uac_retrans": intf(last, "Retransmissions(C)"),
        "uas_retrans": intf(ulast, "Retransmissions(C)") if ulast else None,
        "uas_failed": intf(ulast, "FailedCall(C)") if ulast else None,
        "dead_msgs": intf(last, "DeadCallMsgs(C)"), "out_of_call_msgs": intf(last, "OutOfCallMsgs(C)"),
        "peak_concurrent_calls": peak_calls,
        "invite_200_ms": {"n": len(r1), "p50": pct(r1, 50), "p90": pct(r1, 90), "p99": pct(r1, 99),
                          "max": round(max(r1), 3) if r1 else None},
        "bye_200_ms_p99": pct(rt.get("2", []), 99),
        "window": w, "top_other_procs": smp.top_others(),
        "contaminated": w.get("cpu_pct_of_core", {}).get("other", 0) > a.other_max,
        "pre_step_busy_pct": pre_busy, "waited_for_quiet_s": waited,
        "wall_s": round(t_end - t0, 1), "uac_rc": uac.returncode,
        "uas_rc": uas.returncode if uas else None,
    }
    out.write(json.dumps(res) + "\n")
    out.flush()
    cpu = w.get("cpu_pct_of_core", {})
    print(f"{a.series} r={rate}: achieved={achieved} ok={res['successful']} fail={res['failed']} "
          f"retr={res['uac_retrans']}/{res['uas_retrans']} p50/p99={res['invite_200_ms']['p50']}/"
          f"{res['invite_200_ms']['p99']}ms peak={peak_calls} cpu sut={cpu.get('sut')} uac={cpu.get('uac')} "
          f"uas={cpu.get('uas')} rtpe={cpu.get('rtpengine')} other={cpu.get('other')} "
          f"busy={w.get('system_busy_pct')} pre={pre_busy} udp/s={w.get('udp_per_s', {}).get('OutDatagrams')} "
          f"rcvbuferr/s={w.get('udp_per_s', {}).get('RcvbufErrors')}", flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", required=True)
    ap.add_argument("--uac", required=True)
    ap.add_argument("--uas", default="")
    ap.add_argument("--target", default=f"127.0.0.1:{UAS_PORT}")
    ap.add_argument("--uac-d", type=int, default=0)
    ap.add_argument("--uas-d", type=int, default=0)
    ap.add_argument("--rates", required=True)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--recv-timeout", type=int, default=10000)
    ap.add_argument("--sut-pidfile", default="")
    ap.add_argument("--rtpengine-pidfile", default="")
    ap.add_argument("--uac-extra", default="")
    ap.add_argument("--uas-extra", default="")
    ap.add_argument("--quiet-pct", type=float, default=20.0,
                    help="before each step wait until the machine's busy %% (200 = 2 cores) is below this")
    ap.add_argument("--quiet-wait", type=float, default=120.0, help="but wait at most this many seconds")
    ap.add_argument("--other-max", type=float, default=15.0,
                    help="a step is 'contaminated' when other processes used more than this %% of a core")
    ap.add_argument("--retry-contaminated", type=int, default=1)
    ap.add_argument("--workdir", default="/tmp/perf-run")
    ap.add_argument("--results", default="/tmp/perf-run/results.jsonl")
    ap.add_argument("--stop-after-fail", type=int, default=1,
                    help="stop the sweep after this many consecutive steps with failed calls")
    a = ap.parse_args()
    fails = 0
    with open(a.results, "a") as out:
        for rate in [int(x) for x in a.rates.split(",")]:
            r = run_step(a, rate, out)
            for _ in range(a.retry_contaminated):
                if r["window"].get("cpu_pct_of_core", {}).get("other", 0) <= a.other_max:
                    break
                # other processes loaded the machine during the step: run it again
                print(f"  (other processes used {r['window']['cpu_pct_of_core'].get('other')}% "
                      f"of a core during the step: repeating it)", flush=True)
                r = run_step(a, rate, out)
            bad = r["failed"] > 0 or (r["uas_failed"] or 0) > 0 or r["successful"] < r["calls_planned"]
            fails = fails + 1 if bad else 0
            if fails >= a.stop_after_fail:
                break
            time.sleep(2)


if __name__ == "__main__":
    main()
