#!/usr/bin/env python3
"""loket SIP benchmark: one Markdown table from sip-bench.py's results.jsonl.

Per series and rate (the last attempt of a repeated step wins): achieved calls/s, failed calls,
retransmissions seen by the caller, INVITE->200 p50/p99, the server's CPU per call in µs
(server CPU over the generation window divided by the achieved rate) and its ratio to the
Kamailio anchor at the same rate in the same run. "clean" is "no" when other processes used more
than 15 % of a core during the step (the machine is shared): the rate and failure columns are then
suspect, the CPU per call (the server's own CPU time) much less so.
Usage: sip-bench-table.py results.jsonl
"""
import json
import sys
from collections import OrderedDict

ANCHOR = "kam-stateful"
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
steps = OrderedDict()
for r in rows:
    steps.setdefault(r["series"], OrderedDict())[r["target_cps"]] = r


def cpu_us_per_call(r):
    cpu = r.get("window", {}).get("cpu_pct_of_core", {}).get("sut")
    if cpu is None or not r.get("achieved_cps"):
        return None
    return cpu / 100.0 / r["achieved_cps"] * 1e6


def fmt(v, nd=0):
    return "-" if v is None else f"{v:.{nd}f}"


print("| server | target cps | achieved cps | ok / planned | failed | retrans | INVITE→200 p50 / p99 ms "
      "| server CPU % core | CPU µs/call | × Kamailio | other procs % | clean |")
print("|" + "---|" * 12)
for series, by_rate in steps.items():
    for rate, r in by_rate.items():
        us = cpu_us_per_call(r)
        anchor = steps.get(ANCHOR, {}).get(rate)
        kam_us = cpu_us_per_call(anchor) if anchor else None
        ratio = us / kam_us if us and kam_us else None
        rt = r["invite_200_ms"]
        cpu = r.get("window", {}).get("cpu_pct_of_core", {})
        print(f"| {series} | {rate} | {fmt(r['achieved_cps'], 1)} | {r['successful']} / {r['calls_planned']} "
              f"| {r['failed']} | {r['uac_retrans']} | {rt['p50']} / {rt['p99']} | {cpu.get('sut')} "
              f"| {fmt(us)} | {fmt(ratio, 2)} | {cpu.get('other')} | {'no' if r.get('contaminated') else 'yes'} |")
