#!/usr/bin/env python3
"""Summarize bench_index Google Benchmark JSON as markdown tables.

usage: bench/summarize.py RESULT.json [MORE.json ...]
       bench/summarize.py --readme RESULT.json [MORE.json ...]

Benchmark names look like  <workload>/<contender>/n:<N>/.../threads:<T>.
For every workload x contender x threads the median over repetitions (all
files pooled) of items_per_second (printed in Mops/s) and, for inserts, of
bytes_per_key.  Failed repetitions (error_occurred: crashed, hung, failed
verification) are counted and shown; a cell whose every repetition failed
reads FAILED.  Then, per workload at 2 threads, the ratio of cidstore to the
best anchor and to each anchor.  --readme prints only one compact table:
every workload and N at 2 threads, one column per contender, cidstore /
best anchor (for bytes/key: best anchor / cidstore, so > 1 means cidstore
is ahead everywhere).  Standard library only.
"""
import json
import statistics
import sys
from collections import defaultdict

MULTI_VALS = [1, 2, 3, 16, 1000]
WORKLOADS = (["insert", "lookup", "neg_lookup", "mix90_10", "churn50_50", "lookup_latency"]
             + [f"multi{k}_{op}" for k in MULTI_VALS for op in ("insert", "lookup")]
             + ["insert_seq", "lookup_seq"])
CONTENDERS = ["cidstore", "cidstore_serialized", "cds_lfht_growing", "cds_lfht_presized",
              "libcuckoo", "tbb_chm", "rwlock_table", "mutex_table"]
# lookup_latency counters (bench_index: thread 0 writes, the others look up)
LATENCY = ["p50_ns", "p99_ns", "p999_ns", "writer_ops_per_s", "clock_overhead_ns"]


def is_anchor(c):
    return not c.startswith("cidstore")


def parse_name(name, entry):
    parts = name.split("/")
    if len(parts) < 3 or not parts[2].startswith("n:"):
        return None
    threads = entry.get("threads")
    for p in parts:
        if p.startswith("threads:"):
            threads = int(p.split(":")[1])
    return parts[0], parts[1], parts[2][2:], int(threads or 1)


def n_key(n):
    return int(n[:-1]) << 20 if n.endswith("M") else int(n)


def load(paths):
    """Returns cells[(n, workload, contender, threads)] and the core count."""
    cells = defaultdict(lambda: {"ips": [], "bpk": [], "load": [], "failed": 0, "errors": set(),
                                 "agg": {}, "ctr": defaultdict(list)})
    cores = None
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        cores = cores or doc.get("context", {}).get("num_cpus")
        for e in doc.get("benchmarks", []):
            key = parse_name(e.get("run_name") or e["name"], e)
            if key is None:
                continue
            workload, contender, n, threads = key
            cell = cells[(n, workload, contender, threads)]
            if e.get("run_type") == "aggregate":
                if e.get("aggregate_name") == "median":
                    cell["agg"] = e
                continue
            if e.get("error_occurred"):
                cell["failed"] += 1
                cell["errors"].add(e.get("error_message", "?"))
                continue
            if "items_per_second" in e:
                cell["ips"].append(e["items_per_second"] / 1e6)
            if "bytes_per_key" in e:
                cell["bpk"].append(e["bytes_per_key"])
            if "load_avg_1m" in e:
                cell["load"].append(e["load_avg_1m"])
            for c in LATENCY:
                if c in e:
                    cell["ctr"][c].append(e[c])
    return cells, cores


def median(cell, field):
    vals = cell["ips"] if field == "ips" else cell["bpk"]
    if vals:
        return statistics.median(vals)
    agg = cell["agg"]  # only aggregates were written (--benchmark_report_aggregates_only)
    src = {"ips": "items_per_second", "bpk": "bytes_per_key"}[field]
    if src in agg:
        return agg[src] / 1e6 if field == "ips" else agg[src]
    return None


def fmt(cell, field, digits):
    if cell is None:
        return ""
    v = median(cell, field)
    runs = len(cell["ips"]) + cell["failed"]
    if v is None:
        return "FAILED" if cell["failed"] else ""
    s = f"{v:.{digits}f}"
    if cell["failed"]:
        s += f" ({cell['failed']}/{runs} failed)"
    return s


def order(items, known):
    return sorted(items, key=lambda x: (known.index(x) if x in known else len(known), x))


def main(paths):
    cells, cores = load(paths)
    if not cells:
        print("no bench_index results found", file=sys.stderr)
        return 1
    cores = cores or 2
    reps = max((len(c["ips"]) + c["failed"]) for c in cells.values())
    print(f"Files: {', '.join(paths)}. Medians over up to {reps} repetitions; "
          f"threads > {cores} are oversubscribed (marked *).\n")
    failures = []
    for n in sorted({k[0] for k in cells}, key=n_key):
        ks = [k for k in cells if k[0] == n]
        threads = sorted({k[3] for k in ks})
        tcols = [f"{t}*" if t > cores else str(t) for t in threads]
        workloads = order({k[1] for k in ks}, WORKLOADS)
        contenders = order({k[2] for k in ks}, CONTENDERS)

        print(f"## N = {n} keys\n")
        loads = [x for k in ks for x in cells[k]["load"]]
        if loads:
            print(f"1-minute load average at the end of the runs: median {statistics.median(loads):.1f}, "
                  f"max {max(loads):.1f} on {cores} cores (above {cores}: other work shared the CPUs).\n")
        print("### Throughput, Mops/s\n")
        print("| workload | contender | " + " | ".join(f"{c} thr" for c in tcols) + " |")
        print("|---|---|" + "---:|" * len(threads))
        for w in workloads:
            for c in contenders:
                row = [fmt(cells.get((n, w, c, t)), "ips", 2) for t in threads]
                if any(row):
                    print(f"| {w} | {c} | " + " | ".join(row) + " |")
        print()

        print("### Resident bytes per key after the insert fill (payload is 64)\n")
        print("| contender | " + " | ".join(f"{c} thr" for c in tcols) + " |")
        print("|---|" + "---:|" * len(threads))
        for w in ("insert", "insert_seq"):
            for c in contenders:
                row = [fmt(cells.get((n, w, c, t)), "bpk", 1) for t in threads]
                if any(row):
                    label = c if w == "insert" else f"{c} (sequential keys)"
                    print(f"| {label} | " + " | ".join(row) + " |")
        print()

        mv = [k for k in MULTI_VALS if any(x[1] == f"multi{k}_insert" for x in ks)]
        if mv:
            print("### Multi-value: resident bytes per key after the fill "
                  "(K values a key; payload 32 + 32 K)\n")
            print("| contender | " + " | ".join(f"K={k}, {c} thr" for k in mv for c in tcols[:2]) + " |")
            print("|---|" + "---:|" * (len(mv) * len(tcols[:2])))
            for c in contenders:
                row = [fmt(cells.get((n, f"multi{k}_insert", c, t)), "bpk", 0) for k in mv for t in threads[:2]]
                if any(row):
                    print(f"| {c} | " + " | ".join(row) + " |")
            print()

        lat = [k for k in ks if k[1] == "lookup_latency"]
        if lat:
            lthreads = sorted({k[3] for k in lat})
            print("### Lookup latency while one writer inserts/deletes (ns; p50 / p99 / p999; "
                  "threads = 1 writer + T-1 readers)\n")
            print("| contender | " + " | ".join(f"{t}{'*' if t > cores else ''} thr" for t in lthreads)
                  + " | writer Mops/s at " + str(lthreads[0]) + " thr |")
            print("|---|" + "---:|" * (len(lthreads) + 1))
            for c in contenders:
                row = []
                for t in lthreads:
                    cell = cells.get((n, "lookup_latency", c, t))
                    if not cell or not cell["ctr"]["p50_ns"]:
                        row.append("FAILED" if cell and cell["failed"] else "")
                        continue
                    row.append(" / ".join(f"{statistics.median(cell['ctr'][q]):.0f}"
                                          for q in ("p50_ns", "p99_ns", "p999_ns")))
                cell = cells.get((n, "lookup_latency", c, lthreads[0]))
                wr = cell["ctr"]["writer_ops_per_s"] if cell else []
                row.append(f"{statistics.median(wr) / 1e6:.2f}" if wr else "")
                if any(row):
                    print(f"| {c} | " + " | ".join(row) + " |")
            ov = [x for k in lat for x in cells[k]["ctr"]["clock_overhead_ns"]]
            if ov:
                print(f"\nOne lookup in 8 is timed with two clock_gettime(CLOCK_MONOTONIC) calls; "
                      f"the pair itself costs ~{statistics.median(ov):.0f} ns (included).")
            print()

        t = 2 if 2 in threads else threads[-1]
        print(f"### cidstore against the anchors at {t} threads (ratio > 1: cidstore ahead)\n")
        anchors = [c for c in contenders if is_anchor(c)]
        print("| workload | cidstore | best anchor | ratio to best | "
              + " | ".join(f"vs {a}" for a in anchors) + " |")
        print("|---|---:|---|---:|" + "---:|" * len(anchors))
        for w in [w for w in workloads if not w.endswith("_seq")]:
            cs = cells.get((n, w, "cidstore", t))
            mine = median(cs, "ips") if cs else None
            vals = {a: median(cells[(n, w, a, t)], "ips") for a in anchors if (n, w, a, t) in cells}
            vals = {a: v for a, v in vals.items() if v is not None}
            if not vals:
                continue
            best = max(vals, key=vals.get)
            ratio = f"{mine / vals[best]:.2f}x" if mine else "n/a"
            each = [f"{mine / vals[a]:.2f}x" if mine and a in vals else "n/a" for a in anchors]
            print(f"| {w} | {f'{mine:.2f}' if mine else 'n/a'} | {best} {vals[best]:.2f} | {ratio} | "
                  + " | ".join(each) + " |")
        cs = cells.get((n, "insert", "cidstore", t))
        mine = median(cs, "bpk") if cs else None
        vals = {a: median(cells[(n, "insert", a, t)], "bpk") for a in anchors
                if (n, "insert", a, t) in cells}
        vals = {a: v for a, v in vals.items() if v is not None}
        if vals:
            best = min(vals, key=vals.get)
            ratio = f"{vals[best] / mine:.2f}x" if mine else "n/a"
            each = [f"{vals[a] / mine:.2f}x" if mine and a in vals else "n/a" for a in anchors]
            print(f"| bytes/key (lower wins; ratio = anchor/cidstore) | "
                  f"{f'{mine:.1f}' if mine else 'n/a'} | {best} {vals[best]:.1f} | {ratio} | "
                  + " | ".join(each) + " |")
        print()

        notes = []
        def ips(w, c, th):
            cell = cells.get((n, w, c, th))
            return median(cell, "ips") if cell else None
        for c in ("cidstore", "cidstore_serialized"):
            one, two = ips("lookup", c, 1), ips("lookup", c, 2)
            if one and two:
                notes.append(f"{c} lookup scaling 2 thr / 1 thr: {two / one:.2f}x")
        for w, ws in (("insert", "insert_seq"), ("lookup", "lookup_seq")):
            for th in threads:
                r, s = ips(w, "cidstore", th), ips(ws, "cidstore", th)
                if r and s:
                    notes.append(f"cidstore {w} sequential/random keys at {th} thr: {s / r:.2f}")
        if notes:
            print("Notes:\n")
            for line in notes:
                print(f"- {line}")
            print()
        for k in ks:
            if cells[k]["failed"]:
                failures.append((k, cells[k]))

    if failures:
        print("### Failed runs\n")
        for (n, w, c, t), cell in sorted(failures, key=lambda x: (n_key(x[0][0]),) + x[0][1:]):
            print(f"- {w}/{c}/n:{n} at {t} threads: {cell['failed']} failed — "
                  + "; ".join(sorted(cell["errors"])))
        print()
    return 0


SHORT = {"cidstore_serialized": "serialized", "cds_lfht_growing": "lfht grow",
         "cds_lfht_presized": "lfht presized", "libcuckoo": "libcuckoo", "tbb_chm": "tbb",
         "rwlock_table": "rwlock", "mutex_table": "mutex"}


def readme(paths, threads=2):
    """One compact table: every workload and N at `threads` threads, one
    column per contender, the best anchor in bold, cidstore / best."""
    cells, _ = load(paths)
    ns = sorted({k[0] for k in cells}, key=n_key)
    contenders = order({k[2] for k in cells}, CONTENDERS)
    anchors = [c for c in contenders if is_anchor(c)]
    head = ["workload", "N"] + [SHORT.get(c, c) for c in contenders] + ["cidstore / best anchor"]
    print("| " + " | ".join(head) + " |")
    print("|---|---|" + "---:|" * (len(contenders) + 1))
    for w in WORKLOADS + ["bytes/key"]:
        for n in ns:
            field, wl = ("bpk", "insert") if w == "bytes/key" else ("ips", w)
            vals = {}
            for c in contenders:
                cell = cells.get((n, wl, c, threads))
                if cell is not None:
                    vals[c] = median(cell, field) if (cell["ips"] or cell["bpk"] or cell["agg"]) else "FAILED"
            if not any(isinstance(v, float) for v in vals.values()):
                continue
            ok = {c: v for c, v in vals.items() if isinstance(v, float) and is_anchor(c)}
            best = (min if field == "bpk" else max)(ok, key=ok.get) if ok else None
            row = [w, n]
            for c in contenders:
                v = vals.get(c)
                if v is None:
                    row.append("")
                elif not isinstance(v, float):
                    row.append(v)
                else:
                    t = f"{v:.0f}" if field == "bpk" else f"{v:.2f}"
                    row.append(f"**{t}**" if c == best else t)
            me = vals.get("cidstore")
            if best and isinstance(me, float):
                r = ok[best] / me if field == "bpk" else me / ok[best]
                row.append(f"{r:.2f}x")
            else:
                row.append("")
            print("| " + " | ".join(str(x) for x in row) + " |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    if sys.argv[1] == "--readme":
        sys.exit(readme(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
