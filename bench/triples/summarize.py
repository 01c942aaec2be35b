#!/usr/bin/env python3
"""Summarize bench_triples Google Benchmark JSON as markdown tables.

usage: bench/triples/summarize.py RESULT.json [MORE.json ...]

Names: serd_parse_only/n:N, serd_parse_write/n:N, sord_load/n:N,
       cidstore_load/dur:<async|mem>/inserters:<T>/n:N,
       query/<pattern>/<sord|cidstore>/n:N (+ Google Benchmark suffixes).
Every cell is the median over the repetitions of all files pooled; a file
run with --benchmark_report_aggregates_only contributes its "median"
aggregate as one value.  Ratios are cidstore / sord (loads: also against
serd's parse rate).  Query rates are given from wall-clock time (what
items_per_second reports) and from CPU time (less sensitive to a loaded
machine).  Standard library only.
"""
import json
import statistics
import sys
from collections import defaultdict


def split(name):
    parts = [p for p in name.split("/") if not p.startswith(("min_time:", "iterations:", "repeats:"))
             and p not in ("manual_time", "real_time")]
    kv, plain = {}, []
    for p in parts:
        if ":" in p:
            k, v = p.split(":", 1)
            kv[k] = v
        else:
            plain.append(p)
    return plain, kv


def load(paths):
    runs = defaultdict(lambda: defaultdict(list))   # per-repetition entries
    aggs = defaultdict(lambda: defaultdict(list))   # "median" aggregates
    failed = defaultdict(int)
    ctx = {}
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        ctx.update(doc.get("context", {}))
        for e in doc.get("benchmarks", []):
            plain, kv = split(e.get("run_name") or e["name"])
            if plain[0] == "query":
                key = ("query", plain[1], plain[2], kv.get("n"))
            elif plain[0] == "cidstore_load":
                key = ("load", f"cidstore dur:{kv.get('dur')} inserters:{kv.get('inserters')}", kv.get("n"))
            else:
                key = ("load", plain[0], kv.get("n"))
            if e.get("error_occurred"):
                failed[key] += 1
                continue
            target = runs
            if e.get("run_type") == "aggregate":
                if e.get("aggregate_name") != "median":
                    continue
                target = aggs
            for k, v in e.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    target[key][k].append(v)
            target[key]["_reps"].append(e.get("repetitions", 1) if target is aggs else 1)
            if e.get("time_unit"):
                target[key]["_unit_" + e["time_unit"]].append(1)
    cells = {}
    for key in set(runs) | set(aggs):
        cells[key] = {}
        for src in (aggs.get(key, {}), runs.get(key, {})):
            for k, v in src.items():
                cells[key].setdefault(k, []).extend(v)
    return cells, failed, ctx


def med(cells, key, field):
    v = cells.get(key, {}).get(field)
    return statistics.median(v) if v else None


def reps(cells, key):
    return sum(cells.get(key, {}).get("_reps", []))


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


UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def per_sec(cells, key, field):
    t = med(cells, key, field)
    unit = next((u for u in UNIT if cells.get(key, {}).get("_unit_" + u)), "ns")
    return 1.0 / (t * UNIT[unit]) if t else None


def main(paths):
    cells, failed, ctx = load(paths)
    sizes = sorted({k[-1] for k in cells}, key=lambda s: (len(s or ""), s or ""))
    for n in sizes:
        loads = [k for k in cells if k[0] == "load" and k[-1] == n]
        if loads:
            order = ["serd_parse_only", "serd_parse_write", "sord_load"]
            loads.sort(key=lambda k: (order.index(k[1]) if k[1] in order else 9, k[1]))
            sord = med(cells, ("load", "sord_load", n), "items_per_second")
            serd = med(cells, ("load", "serd_parse_only", n), "items_per_second")
            print(f"### Loads, {n} triples (medians)\n")
            print("| run | triples/s | / sord | / serd parse | CPU µs/triple | RSS B/triple | index B/triple "
                  "| disk B/triple (WAL + ckpt) | WAL records/triple | checkpoints | reps | load avg |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for k in loads:
                r = med(cells, k, "items_per_second")
                disk = med(cells, k, "disk_bytes_per_triple")
                dw, dc = med(cells, k, "disk_wal_bytes_per_triple"), med(cells, k, "disk_ckpt_bytes_per_triple")
                dtxt = f"{fmt(disk)} ({fmt(dw)} + {fmt(dc)})" if disk is not None else "—"
                bad = f" FAILED {failed[k]}" if failed.get(k) else ""
                print(f"| {k[1]} | {fmt(r)} | {ratio(r, sord) if 'cidstore' in k[1] else '—'} "
                      f"| {ratio(r, serd)} | {fmt(med(cells, k, 'cpu_us_per_triple'))} "
                      f"| {fmt(med(cells, k, 'rss_bytes_per_triple'))} "
                      f"| {fmt(med(cells, k, 'mem_bytes_per_triple'))} | {dtxt} "
                      f"| {fmt(med(cells, k, 'wal_records_per_triple'))} | {fmt(med(cells, k, 'checkpoints'))} "
                      f"| {reps(cells, k)}{bad} | {fmt(med(cells, k, 'load_avg_1m'))} |")
            print()
        pats = sorted({k[1] for k in cells if k[0] == "query" and k[-1] == n},
                      key=lambda p: ["SP?", "?PO", "S??", "?P?-count", "??O"].index(p)
                      if p in ("SP?", "?PO", "S??", "?P?-count", "??O") else 9)
        if pats:
            print(f"### Queries, {n} triples, same sampled terms for both (medians)\n")
            print("| pattern | results/query | sord q/s | cidstore q/s | cidstore / sord "
                  "| sord q/s (CPU) | cidstore q/s (CPU) | cidstore / sord (CPU) | reps |")
            print("|---|---|---|---|---|---|---|---|---|")
            for p in pats:
                ks, kc = ("query", p, "sord", n), ("query", p, "cidstore", n)
                s, c = med(cells, ks, "items_per_second"), med(cells, kc, "items_per_second")
                sc, cc = per_sec(cells, ks, "cpu_time"), per_sec(cells, kc, "cpu_time")
                bad = failed.get(ks, 0) + failed.get(kc, 0)
                print(f"| {p} | {fmt(med(cells, kc, 'results_per_query') or med(cells, ks, 'results_per_query'))} "
                      f"| {fmt(s)} | {fmt(c)} | {ratio(c, s)} | {fmt(sc)} | {fmt(cc)} | {ratio(cc, sc)} "
                      f"| {reps(cells, ks)}/{reps(cells, kc)}{' FAILED ' + str(bad) if bad else ''} |")
            print()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    main(sys.argv[1:])
