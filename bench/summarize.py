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
is ahead everywhere).

cidstore's own batched calls and big sets: lookup_many16/64 against its
plain lookup, insert_many64 against insert, and one_key (N values under one
key) against insert (N single-valued keys), per contender and thread count;
against the anchors the batched workloads are compared with the anchors'
plain lookup / insert.

A file written by bench/vs-revision.sh carries "compare_revision" in its
context: its cidstore contenders are renamed <name>@<rev> while loading
(e.g. cidstore@0e142e4), and a table gives new / old per workload, N and
threads.  Standard library only.
"""
import json
import statistics
import sys
from collections import defaultdict

MULTI_VALS = [1, 2, 3, 16, 1000]
LOOKUP_BATCHES = [16, 64]
INSERT_BATCHES = [64]
WORKLOADS = (["insert"] + [f"insert_many{b}" for b in INSERT_BATCHES]
             + ["lookup"] + [f"lookup_many{b}" for b in LOOKUP_BATCHES]
             + ["neg_lookup", "mix90_10", "churn50_50", "lookup_latency"]
             + [f"multi{k}_{op}" for k in MULTI_VALS for op in ("insert", "lookup")]
             + ["insert_seq", "lookup_seq", "one_key", "one_key_values"])
CONTENDERS = ["cidstore", "cidstore_presized", "cidstore_serialized", "cds_lfht_growing",
              "cds_lfht_presized", "libcuckoo", "tbb_chm", "rwlock_table", "mutex_table"]
# cidstore-only workloads compared with the anchors' plain counterpart
ANCHOR_BASE = {**{f"lookup_many{b}": "lookup" for b in LOOKUP_BATCHES},
               **{f"insert_many{b}": "insert" for b in INSERT_BATCHES}}
ONE_KEY_TARGET = 2.0  # one key with N values: at most 2x the time of N single-valued keys
# lookup_latency counters (bench_index: thread 0 writes, the others look up)
LATENCY = ["p50_ns", "p99_ns", "p999_ns", "writer_ops_per_s", "clock_overhead_ns"]


def is_anchor(c):
    return not c.startswith("cidstore")


def revision_of(c):
    """'cidstore@0e142e4' -> ('cidstore', '0e142e4'); 'cidstore' -> ('cidstore', '')."""
    base, _, rev = c.partition("@")
    return base, rev


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
        rev = doc.get("context", {}).get("compare_revision")  # bench/vs-revision.sh
        for e in doc.get("benchmarks", []):
            key = parse_name(e.get("run_name") or e["name"], e)
            if key is None:
                continue
            workload, contender, n, threads = key
            if rev and not is_anchor(contender):
                contender = f"{contender}@{rev}"
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
            elif "bytes_per_value" in e:  # one_key
                cell["bpk"].append(e["bytes_per_value"])
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
    """Known names first, in their order; name@rev right after name."""
    def key(x):
        base, rev = revision_of(x)
        return (known.index(base) if base in known else len(known), base, rev)
    return sorted(items, key=key)


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
        for w in ["insert", "insert_seq"] + [f"insert_many{b}" for b in INSERT_BATCHES] + ["one_key"]:
            for c in contenders:
                row = [fmt(cells.get((n, w, c, t)), "bpk", 1) for t in threads]
                if any(row):
                    label = {"insert": c, "insert_seq": f"{c} (sequential keys)",
                             "one_key": f"{c} (one key: bytes per value)"}.get(w, f"{c} ({w})")
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
        anchors = [c for c in contenders if is_anchor(c)]
        if anchors:
            print(f"### cidstore against the anchors at {t} threads (ratio > 1: cidstore ahead)\n")
            print("| workload | cidstore | best anchor | ratio to best | "
                  + " | ".join(f"vs {a}" for a in anchors) + " |")
            print("|---|---:|---|---:|" + "---:|" * len(anchors))
            for w in [w for w in workloads if not w.endswith("_seq")]:
                cs = cells.get((n, w, "cidstore", t))
                mine = median(cs, "ips") if cs else None
                aw = ANCHOR_BASE.get(w, w)  # lookup_many16: against the anchors' lookup
                vals = {a: median(cells[(n, aw, a, t)], "ips") for a in anchors if (n, aw, a, t) in cells}
                vals = {a: v for a, v in vals.items() if v is not None}
                if not vals:
                    continue
                best = max(vals, key=vals.get)
                ratio = f"{mine / vals[best]:.2f}x" if mine else "n/a"
                each = [f"{mine / vals[a]:.2f}x" if mine and a in vals else "n/a" for a in anchors]
                label = w if aw == w else f"{w} (anchors: {aw})"
                print(f"| {label} | {f'{mine:.2f}' if mine else 'n/a'} | {best} {vals[best]:.2f} | {ratio} | "
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

        def ips(w, c, th):
            cell = cells.get((n, w, c, th))
            return median(cell, "ips") if cell else None

        def vs(w, c, th, base):
            """'Mops/s (ratio to base)' or '' when w did not run."""
            v = ips(w, c, th)
            if v is None:
                cell = cells.get((n, w, c, th))
                return "FAILED" if cell and cell["failed"] else ""
            return f"{v:.2f} ({v / base:.2f}x)" if base else f"{v:.2f}"

        def tlabel(th):
            return f"{th}*" if th > cores else str(th)

        own = [c for c in contenders if not is_anchor(c)]
        rows = [(c, th) for c in own for th in threads
                if any((n, w, c, th) in cells for w in ANCHOR_BASE)]
        if rows:
            lb = [f"lookup_many{b}" for b in LOOKUP_BATCHES]
            ib = [f"insert_many{b}" for b in INSERT_BATCHES]
            print("### cidstore's batched calls against its own per-key calls, Mops/s "
                  "(ratio > 1: the batch is faster; same keys, same order)\n")
            print("| contender | threads | lookup | " + " | ".join(lb) + " | insert | "
                  + " | ".join(ib) + " |")
            print("|---|---|" + "---:|" * (2 + len(lb) + len(ib)))
            for c, th in rows:
                lk, ins = ips("lookup", c, th), ips("insert", c, th)
                print(f"| {c} | {tlabel(th)} | {f'{lk:.2f}' if lk else ''} | "
                      + " | ".join(vs(w, c, th, lk) for w in lb)
                      + f" | {f'{ins:.2f}' if ins else ''} | "
                      + " | ".join(vs(w, c, th, ins) for w in ib) + " |")
            print()

        rows = [(c, th) for c in own for th in threads if (n, "one_key", c, th) in cells]
        if rows:
            print(f"### One key with {n} values against {n} single-valued keys (insert); "
                  f"target: at most {ONE_KEY_TARGET:g}x the time\n")
            print("| contender | threads | insert Mops/s | one_key Mvalues/s | time one_key / insert "
                  "| target | bytes/value | one_key_values Mvalues/s (1 thr) |")
            print("|---|---|---:|---:|---:|---|---:|---:|")
            for c, th in rows:
                ins, one = ips("insert", c, th), ips("one_key", c, th)
                cell = cells[(n, "one_key", c, th)]
                tr = ins / one if ins and one else None
                verdict = "" if tr is None else ("met" if tr <= ONE_KEY_TARGET else "MISSED")
                rd = ips("one_key_values", c, th)
                print(f"| {c} | {tlabel(th)} | {f'{ins:.2f}' if ins else ''} | "
                      f"{f'{one:.3f}' if one else fmt(cell, 'ips', 3)} | "
                      f"{f'{tr:.2f}x' if tr else 'n/a'} | {verdict} | {fmt(cell, 'bpk', 1)} | "
                      f"{f'{rd:.1f}' if rd else ''} |")
            print()

        for old in [c for c in contenders if revision_of(c)[1]]:
            new = revision_of(old)[0]
            pairs = [(w, th) for w in workloads for th in threads
                     if (n, w, old, th) in cells and (n, w, new, th) in cells]
            if not pairs:
                continue
            print(f"### {new} against {old} (new / old; > 1: the new one is faster)\n")
            print(f"| workload | threads | {new} Mops/s | {old} Mops/s | new / old |")
            print("|---|---|---:|---:|---:|")
            for w, th in pairs:
                a, b = ips(w, new, th), ips(w, old, th)
                r = f"{a / b:.2f}x" if a and b else "n/a"
                print(f"| {w} | {tlabel(th)} | {fmt(cells[(n, w, new, th)], 'ips', 2)} | "
                      f"{fmt(cells[(n, w, old, th)], 'ips', 2)} | {r} |")
            for w, th in pairs:
                if not w.startswith("insert") and not w.endswith("_insert"):
                    continue
                a = median(cells[(n, w, new, th)], "bpk")
                b = median(cells[(n, w, old, th)], "bpk")
                if a and b:
                    print(f"| {w} bytes/key (lower wins; old / new) | {tlabel(th)} | {a:.1f} | {b:.1f} | "
                          f"{b / a:.2f}x |")
            print()

        notes = []
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


SHORT = {"cidstore_presized": "cidstore presized", "cidstore_serialized": "serialized", "cds_lfht_growing": "lfht grow",
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
                # cidstore-only workloads (lookup_many16, ...): the anchors' plain counterpart
                cell = cells.get((n, wl if not is_anchor(c) else ANCHOR_BASE.get(wl, wl), c, threads))
                if cell is not None:
                    vals[c] = median(cell, field) if (cell["ips"] or cell["bpk"] or cell["agg"]) else "FAILED"
            if not any(isinstance(v, float) for v in vals.values()):
                continue
            if wl in ANCHOR_BASE and not any(isinstance(v, float) for c, v in vals.items() if not is_anchor(c)):
                continue  # only the anchors' plain numbers: the plain workload's row has them
            ok = {c: v for c, v in vals.items() if isinstance(v, float) and is_anchor(c)}
            best = (min if field == "bpk" else max)(ok, key=ok.get) if ok else None
            row = [w if wl not in ANCHOR_BASE else f"{w} (anchors: {ANCHOR_BASE[wl]})", n]
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
