#!/usr/bin/env python3
"""Summarize bench_durable Google Benchmark JSON as markdown tables.

usage: bench/durable/summarize.py RESULT.json [MORE.json ...]

Names: insert/<contender>/dur:<d>/threads:<T>/...,
       recovery/<contender>/n:<N>/log:<L>/cache:<c>/...,
       fdatasync/disk/mode:<m>/n:<K>/...
Every cell is the median over the repetitions of all files pooled (failed
repetitions are counted, not used).  Ratios are cidstore / RocksDB of the
medians.  Standard library only.
"""
import json
import statistics
import sys
from collections import defaultdict


def fields(name):
    parts = name.split("/")
    kv = {}
    for p in parts[2:]:
        if ":" in p:
            k, v = p.split(":", 1)
            kv[k] = v
    return parts[0], parts[1], kv


def load(paths):
    cells = defaultdict(lambda: defaultdict(list))
    failed = defaultdict(int)
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        for e in doc.get("benchmarks", []):
            if e.get("run_type") == "aggregate":
                continue
            work, cont, kv = fields(e.get("run_name") or e["name"])
            if work == "insert":
                key = (work, kv.get("dur"), int(kv.get("threads", 1)), cont)
            elif work == "recovery":
                key = (work, kv.get("n") + "+" + kv.get("log"), kv.get("cache"), cont)
            else:
                key = (work, kv.get("mode"), kv.get("n"), cont)
            if e.get("error_occurred"):
                failed[key] += 1
                continue
            for k, v in e.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    cells[key][k].append(v)
    return cells, failed


def med(cells, key, field):
    v = cells.get(key, {}).get(field)
    return statistics.median(v) if v else None


def fmt(x, digits=3):
    if x is None:
        return "—"
    if abs(x) >= 1e6:
        return f"{x / 1e6:.2f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.1f}k"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def ratio(a, b):
    return f"{a / b:.2f}x" if a and b else "—"


def main(paths):
    cells, failed = load(paths)
    reps = lambda k: len(cells.get(k, {}).get("items_per_second", [])) or len(
        cells.get(k, {}).get("real_time", []))

    fs = sorted(k for k in cells if k[0] == "fdatasync")
    if fs:
        print("### fdatasync latency (4 KiB pwrite + fdatasync)\n")
        print("| mode | n | p50 µs | p99 µs | mean µs | serial commits/s | reps |")
        print("|---|---|---|---|---|---|---|")
        for k in fs:
            print(f"| {k[1]} | {k[2]} | {fmt(med(cells, k, 'p50_us'))} | {fmt(med(cells, k, 'p99_us'))} "
                  f"| {fmt(med(cells, k, 'mean_us'))} | {fmt(med(cells, k, 'items_per_second'))} | {reps(k)} |")
        print()

    ins = sorted({(k[1], k[2]) for k in cells if k[0] == "insert"},
                 key=lambda x: (["mem", "none", "async", "sync"].index(x[0]) if x[0] in ("mem", "none", "async", "sync") else 9, x[1]))
    if ins:
        print("### Inserts (32-byte key + 32-byte value), medians\n")
        print("| durability | threads | cidstore ops/s | RocksDB ops/s | cidstore / RocksDB "
              "| cidstore fsyncs/op | RocksDB syncs/op | reps (c/r) | load avg |")
        print("|---|---|---|---|---|---|---|---|---|")
        for d, t in ins:
            kc, kr = ("insert", d, t, "cidstore"), ("insert", d, t, "rocksdb")
            c, r = med(cells, kc, "items_per_second"), med(cells, kr, "items_per_second")
            fc, fr = med(cells, kc, "fsyncs_per_op"), med(cells, kr, "fsyncs_per_op")
            la = [x for k in (kc, kr) for x in cells.get(k, {}).get("load_avg_1m", [])]
            fails = failed.get(kc, 0) + failed.get(kr, 0)
            rd = "sync=false" if d == "async" else ("sync=true" if d == "sync" else "")
            print(f"| {d} | {t} | {fmt(c)} | {fmt(r)}{' (' + rd + ')' if rd and r else ''} | {ratio(c, r)} "
                  f"| {fmt(fc, 3) if fc is not None else '—'} | {fmt(fr, 3) if fr is not None else '—'} "
                  f"| {reps(kc)}/{reps(kr)}{' FAILED ' + str(fails) if fails else ''} "
                  f"| {statistics.median(la):.1f} |" if la else "| — |")
        print()
        print("cidstore extras (medians): segments rotated, automatic checkpoints, close_s\n")
        print("| durability | threads | segments | checkpoints | sync_s | close_s |")
        print("|---|---|---|---|---|---|")
        for d, t in ins:
            k = ("insert", d, t, "cidstore")
            print(f"| {d} | {t} | {fmt(med(cells, k, 'segments'))} | {fmt(med(cells, k, 'checkpoints'))} "
                  f"| {fmt(med(cells, k, 'sync_s'))} | {fmt(med(cells, k, 'close_s'))} |")
        print()

    rec = sorted({(k[1], k[2]) for k in cells if k[0] == "recovery"})
    for size, cache in rec:
        kc, kr = ("recovery", size, cache, "cidstore"), ("recovery", size, cache, "rocksdb")
        print(f"### Recovery after SIGKILL, {size} keys (checkpoint/flush + log), {cache} cache, medians\n")
        print("| metric | cidstore | RocksDB | cidstore / RocksDB |")
        print("|---|---|---|---|")
        for f, label in [("open_s", "open (s)"), ("count_s", "full count (s)"),
                         ("open_count_s", "open + count (s)"),
                         ("ckpt_open_s", "cidstore: reopen from a checkpoint alone (s)"),
                         ("log_replay_s", "cidstore: est. log replay part of open (s)"),
                         ("log_records_per_s", "cidstore: est. log records replayed / s"),
                         ("keys_per_s_open", "keys recovered / s of open"),
                         ("build_s", "build in the child (s, untimed)"),
                         ("dir_bytes", "directory bytes at the kill"),
                         ("load_avg_1m", "load avg")]:
            c, r = med(cells, kc, f), med(cells, kr, f)
            rr = ratio(c, r) if f in ("open_s", "count_s", "open_count_s", "keys_per_s_open") else ""
            print(f"| {label} | {fmt(c)} | {fmt(r)} | {rr} |")
        print(f"\nrepetitions: cidstore {reps(kc)}, RocksDB {reps(kr)}"
              f"{'; failed: ' + str(failed.get(kc, 0) + failed.get(kr, 0)) if failed.get(kc) or failed.get(kr) else ''}\n")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    main(sys.argv[1:])
