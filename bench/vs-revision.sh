#!/usr/bin/env bash
# bench/vs-revision.sh — cidstore of another git revision against this one.
#
# Builds the library and bench_index of REV (default 0e142e4: main before
# index v2) in a temporary `git worktree add --detach`, runs that
# bench_index for the cidstore contender only, with the bench_index
# arguments given here, and writes its JSON to OUT with the context field
# "compare_revision" set, so bench/summarize.py labels its contender
# `cidstore@<rev>` and prints new / old per workload.  Benchmarks the old
# revision does not have (new workloads, new contenders) are left out.
#
# With --current BUILD it also runs BUILD/bench/bench_index (this checkout;
# rebuilt first) with the same arguments — every contender the filter
# selects — alternating with the old binary one repetition at a time (so
# drift and other work on the machine hit both alike), and then prints
# bench/summarize.py of both files: "main vs the new index in one run".
#
# usage: bench/vs-revision.sh [options] [--] [bench_index arguments]
#   -r, --rev REV          revision to compare (default 0e142e4)
#   -o, --out FILE         its JSON (default bench-rev-<short>.json)
#   -c, --current BUILD    also run BUILD/bench/bench_index, interleaved
#       --current-out FILE its JSON (default bench-current.json)
#       --contender NAME   the old revision's contender (default cidstore;
#                          e.g. cidstore_serialized)
#   -k, --keep             keep the worktree and its build; a later run of
#                          the same revision reuses them (no rebuild)
#       --workdir DIR      where the worktree goes (default ${TMPDIR:-/tmp})
#   -h, --help
# bench_index arguments: --sizes, --threads, --benchmark_filter,
# --benchmark_repetitions, --timeout, ... (bench/README.md); a
# --benchmark_out among them is ignored (use -o / --current-out).
#
# Example (16M, 1 and 2 threads, one repetition):
#   bench/vs-revision.sh -c build-b -o old.json --current-out new.json -- \
#       --sizes=16M --threads=1,2 --benchmark_repetitions=1 --timeout=300 \
#       --benchmark_filter='^(insert|lookup|neg_lookup)/'
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)

rev=0e142e4
out=
current=
current_out=bench-current.json
contender=cidstore
keep=0
workdir=${TMPDIR:-/tmp}
usage() { sed -n '/^# usage:/,/^# --benchmark_out/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "vs-revision: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	-r|--rev) rev=${2:?}; shift 2 ;;
	--rev=*) rev=${1#*=}; shift ;;
	-o|--out) out=${2:?}; shift 2 ;;
	--out=*) out=${1#*=}; shift ;;
	-c|--current) current=${2:?}; shift 2 ;;
	--current=*) current=${1#*=}; shift ;;
	--current-out) current_out=${2:?}; shift 2 ;;
	--current-out=*) current_out=${1#*=}; shift ;;
	--contender) contender=${2:?}; shift 2 ;;
	--contender=*) contender=${1#*=}; shift ;;
	-k|--keep) keep=1; shift ;;
	--workdir) workdir=${2:?}; shift 2 ;;
	--workdir=*) workdir=${1#*=}; shift ;;
	-h|--help) usage; exit 0 ;;
	--) shift; break ;;
	*) break ;; # the first bench_index argument
	esac
done

full=$(git -C "$repo" rev-parse --verify "$rev^{commit}" 2>/dev/null) || die "unknown revision: $rev"
short=$(git -C "$repo" rev-parse --short "$full")
[ -n "$out" ] || out=bench-rev-$short.json

# bench_index arguments: the filter and repetitions are needed here, the
# output file is ours.
filter=
reps=3 # bench_index's default
args=()
for a in "$@"; do
	case $a in
	--benchmark_out=*) echo "vs-revision: ignoring $a (use -o / --current-out)" >&2 ;;
	--benchmark_out_format=*) ;;
	--benchmark_filter=*) filter=${a#*=} ;;
	--benchmark_repetitions=*) reps=${a#*=} ;;
	--list|--help|-h) die "$a: give it to bench_index directly" ;;
	*) args+=("$a") ;;
	esac
done
[ "$reps" -ge 1 ] 2>/dev/null || die "bad --benchmark_repetitions: $reps"
filt=()
[ -n "$filter" ] && filt=("--benchmark_filter=$filter")

# --- the old revision's worktree and build ---------------------------------
wt=$workdir/cidstore-rev-$short
cleanup() {
	if [ "$keep" = 0 ] && [ -d "$wt" ]; then
		git -C "$repo" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"
		git -C "$repo" worktree prune
	fi
	[ -z "${tmpd:-}" ] || rm -rf "$tmpd"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -d "$wt" ] && [ "$(git -C "$wt" rev-parse HEAD 2>/dev/null)" = "$full" ]; then
	echo "vs-revision: reusing the worktree $wt"
else
	[ ! -e "$wt" ] || die "$wt exists and is not a worktree at $short: remove it (git worktree remove --force $wt)"
	git -C "$repo" worktree add --detach "$wt" "$full" >/dev/null
	echo "vs-revision: worktree $wt at $short ($(git -C "$repo" log -1 --format=%s "$full"))"
fi
bdir=$wt/build-bench
if [ ! -f "$bdir/build.ninja" ]; then
	echo "vs-revision: configuring $bdir"
	meson setup --buildtype=release -Dstress=false "$bdir" "$wt" >"$wt/meson-setup.log" 2>&1 ||
		meson setup --wipe --buildtype=release "$bdir" "$wt" >"$wt/meson-setup.log" 2>&1 ||
		{ tail -20 "$wt/meson-setup.log" >&2; die "meson setup failed for $short (log: $wt/meson-setup.log)"; }
fi
echo "vs-revision: building bench_index of $short"
ninja -C "$bdir" bench/bench_index >"$wt/ninja.log" 2>&1 ||
	{ tail -30 "$wt/ninja.log" >&2; die "build of $short failed (log: $wt/ninja.log)"; }
old_bin=$bdir/bench/bench_index

# Which of the requested benchmarks the old binary has, for its contender:
# its own --list applies the user's filter (with its regex semantics, a
# leading '-' included); the names kept become one exact alternation.
mapfile -t names < <("$old_bin" --list "${args[@]}" "${filt[@]}" | grep -F "/$contender/n:" || true)
[ "${#names[@]}" -gt 0 ] ||
	die "revision $short has none of the requested benchmarks for contender $contender"
old_filter="^($(IFS='|'; echo "${names[*]}"))\$"
echo "vs-revision: $short runs ${#names[@]} benchmark(s) of $contender"

new_bin=
if [ -n "$current" ]; then
	[ -f "$current/build.ninja" ] || die "--current $current: not a meson build directory"
	echo "vs-revision: building $current/bench/bench_index"
	ninja -C "$current" bench/bench_index >/dev/null || die "build of $current failed"
	new_bin=$current/bench/bench_index
fi

# --- runs -------------------------------------------------------------------
tmpd=$(mktemp -d "${TMPDIR:-/tmp}/vs-revision.XXXXXX")
run_old() { # repetitions, output
	"$old_bin" "${args[@]}" "--benchmark_filter=$old_filter" "--benchmark_repetitions=$1" \
		"--benchmark_out=$2"
}
run_new() {
	"$new_bin" "${args[@]}" "${filt[@]}" "--benchmark_repetitions=$1" "--benchmark_out=$2"
}
if [ -z "$new_bin" ]; then
	echo "=== $short ($contender) ==="
	run_old "$reps" "$tmpd/old-0.json"
	reps=1 # one file holds every repetition
else
	for ((r = 0; r < reps; r++)); do # alternate which binary goes first
		if ((r % 2 == 0)); then order="old new"; else order="new old"; fi
		for which in $order; do
			if [ "$which" = old ]; then
				echo "=== repetition $((r + 1))/$reps: $short ($contender) ==="
				run_old 1 "$tmpd/old-$r.json"
			else
				echo "=== repetition $((r + 1))/$reps: current ($current) ==="
				run_new 1 "$tmpd/new-$r.json"
			fi
		done
	done
fi

# --- JSON: merge the repetitions, mark the old revision ---------------------
merge() { # revision|"" full-hash contender output files...
	python3 - "$@" <<'EOF'
import json, sys
rev, full, contender, out, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
doc, benches = None, []
for rep, path in enumerate(files):
    with open(path) as f:
        d = json.load(f)
    doc = doc or d
    for e in d.get("benchmarks", []):
        if len(files) > 1:
            e["repetitions"] = len(files)
            e["repetition_index"] = rep
        benches.append(e)
doc["benchmarks"] = benches
if rev:
    # bench/summarize.py renames this file's cidstore* contenders to <name>@<rev>
    doc["context"]["compare_revision"] = rev
    doc["context"]["compare_revision_full"] = full
    doc["context"]["compare_contender"] = contender
with open(out + ".tmp", "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
import os
os.replace(out + ".tmp", out)
print(f"wrote {out} ({len(benches)} runs)")
EOF
}
list() { # prefix: the repetitions' files that exist, in order
	local r
	for ((r = 0; r < reps; r++)); do
		[ ! -s "$tmpd/$1-$r.json" ] || echo "$tmpd/$1-$r.json"
	done
}
mapfile -t files < <(list old)
[ "${#files[@]}" -gt 0 ] || die "the old bench_index wrote no JSON"
merge "$short" "$full" "$contender" "$out" "${files[@]}"
if [ -n "$new_bin" ]; then
	mapfile -t files < <(list new)
	[ "${#files[@]}" -gt 0 ] || die "the current bench_index wrote no JSON"
	merge "" "" "" "$current_out" "${files[@]}"
	echo
	python3 "$here/summarize.py" "$current_out" "$out"
fi
