#!/usr/bin/env python3
"""Chart bench_durable's insert results: ops/s against threads.

usage: bench/durable/plot.py [--out FILE.png] [--title-note TEXT] RESULT.json [MORE.json ...]

Two panels (log y): ASYNC (cidstore ASYNC and NONE, RocksDB sync=false) and
SYNC (cidstore SYNC, RocksDB sync=true), one line per contender, each point
the median over the repetitions of all files pooled (as summarize.py does).
Needs python3-matplotlib (Debian's lives in /usr/lib/python3/dist-packages:
run with /usr/bin/python3 if another python3 comes first).  Default output:
durable-insert.png next to the first JSON.
"""
import argparse
import json
import os
import statistics
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABEL = {("cidstore", "mem"): "cidstore in memory (no dir)",
         ("cidstore", "none"): "cidstore NONE (dir, checkpoint only)",
         ("cidstore", "async"): "cidstore ASYNC",
         ("rocksdb", "async"): "RocksDB sync=false",
         ("cidstore", "sync"): "cidstore SYNC",
         ("rocksdb", "sync"): "RocksDB sync=true"}
PANELS = [("not waiting for the disk", ["mem", "none", "async"]), ("every write durable before it returns", ["sync"])]


def load(paths):
    cells = defaultdict(list)  # (contender, dur, threads) -> [ops/s]
    for p in paths:
        with open(p) as f:
            data = json.load(f)
        for b in data.get("benchmarks", []):
            if b.get("run_type") != "iteration" or b.get("error_occurred"):
                continue
            parts = b["name"].split("/")
            if parts[0] != "insert":
                continue
            kv = dict(x.split(":", 1) for x in parts[2:] if ":" in x)
            cells[(parts[1], kv["dur"], int(kv["threads"]))].append(b["items_per_second"])
    return {k: statistics.median(v) for k, v in cells.items()}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--out", help="PNG to write (default: durable-insert.png next to the first JSON)")
    ap.add_argument("--title-note", default="", help="text added to the title")
    ap.add_argument("paths", nargs="+", metavar="RESULT.json")
    args = ap.parse_args(argv)
    out, note, paths = args.out, args.title_note, args.paths
    out = out or os.path.join(os.path.dirname(os.path.abspath(paths[0])), "durable-insert.png")
    med = load(paths)
    threads = sorted({t for _, _, t in med})
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), dpi=100)
    for ax, (ttl, durs) in zip(axes, PANELS):
        for (who, dur), label in LABEL.items():
            if dur not in durs:
                continue
            pts = sorted((t, v) for (c, d, t), v in med.items() if c == who and d == dur)
            if not pts:
                continue
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o" if who == "cidstore" else "s",
                    linestyle="-" if who == "cidstore" else "--",
                    linewidth=2.2 if who == "cidstore" else 1.3, label=label)
        ax.axvspan(2 * 1.41, max(threads) * 1.2, color="0.92", zorder=0)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(threads)
        ax.set_xticklabels([str(t) + ("*" if t > 2 else "") for t in threads])
        ax.set_xlabel("writer threads (2 cores; * and grey: more threads than cores)")
        ax.set_ylabel("inserts/s (log)")
        ax.set_title(ttl)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle("Durable inserts, cidstore vs RocksDB 7.8 (same keys, same disk)"
                 + (f" — {note}" if note else ""))
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
