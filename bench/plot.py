#!/usr/bin/env python3
"""Turn bench_index Google Benchmark JSON into PNG charts.

usage: bench/plot.py [--out DIR] [--prefix index-] [--title-note TEXT] RESULT.json [MORE.json ...]

One chart per (N, workload): median Mops/s (repetitions of all files
pooled, as summarize.py does) against thread count, one line per contender;
thread counts above the core count are shaded as oversubscribed.  Plus one
chart per N of lookup latency under a writer (p50 / p99 / p999 against
threads, log scale).  Files: DIR/<prefix><workload>-<N>.png and
DIR/<prefix>latency-<N>.png (DIR defaults to the first JSON's directory);
with matplotlib also DIR/<prefix>overview-<N>.png, one panel per main
workload (insert, lookup, neg_lookup, mix90_10, churn50_50, lookup_latency).

Uses python3-matplotlib when it can be imported (Debian's package lives in
/usr/lib/python3/dist-packages: run with /usr/bin/python3 if another python3
comes first on PATH); otherwise writes gnuplot scripts next to the PNGs and
runs gnuplot.
"""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from summarize import CONTENDERS, WORKLOADS, load, median, n_key, order  # noqa: E402

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None

MARKERS = ["o", "s", "^", "v", "D", "P", "X", "*"]
UNITS = {"lookup_latency": "lookups, Mops/s (1 writer + T-1 readers)"}


def series(cells):
    """{(n, workload): {contender: [(threads, Mops/s), ...]}} of successful medians."""
    out = {}
    for (n, w, c, t), cell in cells.items():
        v = median(cell, "ips")
        if v is None:
            continue
        out.setdefault((n, w), {}).setdefault(c, []).append((t, v))
    for d in out.values():
        for pts in d.values():
            pts.sort()
    return out


def latency_series(cells):
    out = {}
    for (n, w, c, t), cell in cells.items():
        if w != "lookup_latency" or not cell["ctr"]["p50_ns"]:
            continue
        q = tuple(statistics.median(cell["ctr"][k]) for k in ("p50_ns", "p99_ns", "p999_ns"))
        out.setdefault(n, {}).setdefault(c, []).append((t, q))
    for d in out.values():
        for pts in d.values():
            pts.sort()
    return out


def title(w, n, note):
    return f"{w}, N = {n} keys" + (f" ({note})" if note else "")


def plot_mpl(path, w, n, lines, cores, note, threads):
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for i, c in enumerate(order(lines, CONTENDERS)):
        xs, ys = zip(*lines[c])
        ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], linewidth=2 if c == "cidstore" else 1.2,
                label=c)
    if max(threads) > cores:
        ax.axvspan(cores * 1.41, max(threads) * 1.15, color="0.92", zorder=0)
        ax.text(cores * 1.45, ax.get_ylim()[1] * 0.97, "oversubscribed", va="top", color="0.4")
    ax.set_xscale("log", base=2)
    ax.set_xticks(threads)
    ax.set_xticklabels([str(t) for t in threads])
    ax.set_xlabel(f"threads ({cores} cores)")
    ax.set_ylabel(UNITS.get(w, "Mops/s" if not w.startswith("multi") else "values, Mops/s"))
    ax.set_ylim(bottom=0)
    ax.set_title(title(w, n, note))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


OVERVIEW = ["insert", "lookup", "neg_lookup", "mix90_10", "churn50_50", "lookup_latency"]


def plot_overview_mpl(path, n, series_n, cores, note, threads):
    """One figure, one panel per main workload: what the README shows."""
    ws = [w for w in OVERVIEW if w in series_n]
    cols = 3
    rows = (len(ws) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(15, 4.2 * rows), dpi=100, squeeze=False)
    handles = {}
    for k, w in enumerate(ws):
        ax = axes[k // cols][k % cols]
        lines = series_n[w]
        for i, c in enumerate(order(lines, CONTENDERS)):
            xs, ys = zip(*lines[c])
            h, = ax.plot(xs, ys, marker=MARKERS[CONTENDERS.index(c) % len(MARKERS)]
                         if c in CONTENDERS else "o",
                         linewidth=2.4 if c == "cidstore" else 1.1, label=c)
            handles.setdefault(c, h)
        if max(threads) > cores:
            ax.axvspan(cores * 1.41, max(threads) * 1.15, color="0.92", zorder=0)
        ax.set_xscale("log", base=2)
        ax.set_xticks(threads)
        ax.set_xticklabels([str(t) + ("*" if t > cores else "") for t in threads])
        ax.set_ylim(bottom=0)
        ax.set_title(w if w != "lookup_latency" else "lookups while 1 thread writes")
        ax.set_ylabel("Mops/s")
        ax.grid(True, alpha=0.3)
    for k in range(len(ws), rows * cols):
        axes[k // cols][k % cols].axis("off")
    names = [c for c in CONTENDERS if c in handles]
    fig.legend([handles[c] for c in names], names, loc="lower center", ncol=len(names), fontsize=9)
    fig.suptitle(f"N = {n} keys: throughput against threads ({cores} cores; "
                 f"* and grey = oversubscribed)" + (f" — {note}" if note else ""))
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    fig.savefig(path)
    plt.close(fig)


def plot_latency_mpl(path, n, lines, cores, note, threads):
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.8), dpi=110, sharey=True)
    for j, q in enumerate(("p50", "p99", "p999")):
        ax = axes[j]
        for i, c in enumerate(order(lines, CONTENDERS)):
            xs = [t for t, _ in lines[c]]
            ys = [v[j] for _, v in lines[c]]
            ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], linewidth=2 if c == "cidstore" else 1.2,
                    label=c)
        ax.set_yscale("log")
        ax.set_xscale("log", base=2)
        ax.set_xticks(threads)
        ax.set_xticklabels([str(t) for t in threads])
        ax.set_xlabel(f"threads (1 writer + T-1 readers; {cores} cores)")
        ax.set_title(f"lookup {q}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ns (log)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title("lookup latency while a writer inserts/deletes", n, note))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def gnuplot(path, ttl, ylabel, lines, cores, log_y=False):
    """Fallback: one .dat block per contender, a .gp script, run gnuplot."""
    base = os.path.splitext(path)[0]
    with open(base + ".dat", "w") as f:
        for c in order(lines, CONTENDERS):
            f.write(f'"{c}"\n')
            for t, v in lines[c]:
                f.write(f"{t} {v}\n")
            f.write("\n\n")
    names = order(lines, CONTENDERS)
    plots = ", ".join(f"'{base}.dat' index {i} using 1:2 with linespoints title '{c}'"
                      for i, c in enumerate(names))
    with open(base + ".gp", "w") as f:
        f.write(f"set terminal pngcairo noenhanced size 880,550\nset output '{path}'\n"
                f"set title \"{ttl}\"\nset xlabel 'threads ({cores} cores)'\nset ylabel '{ylabel}'\n"
                f"set logscale x 2\nset grid\nset key outside right\n"
                + ("set logscale y\n" if log_y else "set yrange [0:*]\n")
                + f"plot {plots}\n")
    subprocess.run(["gnuplot", base + ".gp"], check=True)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="directory for the PNGs (default: the first JSON's)")
    ap.add_argument("--prefix", default="index-", help="file name prefix (default index-)")
    ap.add_argument("--title-note", default="", help="text added to every title")
    ap.add_argument("paths", nargs="+", metavar="RESULT.json")
    args = ap.parse_args(argv)
    out, prefix, note, paths = args.out, args.prefix, args.title_note, args.paths
    out = out or os.path.dirname(os.path.abspath(paths[0]))
    os.makedirs(out, exist_ok=True)
    cells, cores = load(paths)
    cores = cores or 2
    threads = sorted({k[3] for k in cells})
    written = []
    for (n, w), lines in sorted(series(cells).items(), key=lambda x: (n_key(x[0][0]), WORKLOADS.index(x[0][1]) if x[0][1] in WORKLOADS else 99, x[0][1])):
        path = os.path.join(out, f"{prefix}{w}-{n}.png")
        if plt:
            plot_mpl(path, w, n, lines, cores, note, threads)
        else:
            gnuplot(path, title(w, n, note), "Mops/s", lines, cores)
        written.append(path)
    if plt:
        by_n = {}
        for (n, w), lines in series(cells).items():
            by_n.setdefault(n, {})[w] = lines
        for n, series_n in sorted(by_n.items(), key=lambda x: n_key(x[0])):
            path = os.path.join(out, f"{prefix}overview-{n}.png")
            plot_overview_mpl(path, n, series_n, cores, note, threads)
            written.append(path)
    for n, lines in latency_series(cells).items():
        path = os.path.join(out, f"{prefix}latency-{n}.png")
        lthreads = sorted({t for pts in lines.values() for t, _ in pts})
        if plt:
            plot_latency_mpl(path, n, lines, cores, note, lthreads)
        else:
            p99 = {c: [(t, q[1]) for t, q in pts] for c, pts in lines.items()}
            gnuplot(path, title("lookup p99 latency while a writer inserts/deletes", n, note),
                    "p99 ns", p99, cores, log_y=True)
        written.append(path)
    print(f"{'matplotlib' if plt else 'gnuplot'}: wrote {len(written)} charts to {out}")
    for p in written:
        print(f"  {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
