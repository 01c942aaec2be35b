#!/usr/bin/env bash
# test-cli.sh — smoke test of the `cidstore` tool (meson test 'cli').
#   test-cli.sh PATH/TO/cidstore PATH/TO/python3
# Checks exit codes (0 ok, 1 runtime, 2 usage / not supported, 3 no such
# store directory, 4 not a directory, 5 permission denied / read-only, 6 busy,
# 7 disk full),
# that every subcommand has --help, that --json output parses, that promtool
# accepts stats --prometheus (in memory and of a store directory), tiny demo runs
# (sane rates, --plot failures), verify / wal dump / wal analyze on a valid,
# a corrupt and a torn store, load's bad-line rule and --skip-bad, and that
# read commands never create a store and work read-only: beside a process
# holding the store and, as an unprivileged user, on a store they may only
# read.
set -uo pipefail
tool=${1:?usage: test-cli.sh CIDSTORE PYTHON3}
py=${2:-python3}
fails=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cidstore-cli-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# expect CODE DESCRIPTION -- COMMAND...: runs it, checks the exit code.
expect() {
	local want=$1 what=$2
	shift 3
	"$@" >"$tmp/out" 2>"$tmp/err"
	local got=$?
	if [ "$got" -ne "$want" ]; then
		echo "FAIL: $what: exit $got, want $want: $*"
		sed 's/^/  stdout: /' "$tmp/out" | head -20
		sed 's/^/  stderr: /' "$tmp/err" | head -20
		fails=$((fails + 1))
	else
		echo "ok: $what"
	fi
}

json_ok() {
	if "$py" -c 'import json,sys; json.load(open(sys.argv[1]))' "$1"; then
		echo "ok: $2 is valid JSON"
	else
		echo "FAIL: $2 is not valid JSON"
		head -40 "$1"
		fails=$((fails + 1))
	fi
}

# prom_ok FILE WHAT: promtool (Debian package prometheus) accepts FILE as
# the Prometheus text format with no lint problem.
prom_ok() {
	if ! command -v promtool >/dev/null; then
		echo "skip: $2 checked by promtool (promtool not installed)"
		return
	fi
	if promtool check metrics <"$1" >"$tmp/promtool" 2>&1 && [ ! -s "$tmp/promtool" ]; then
		echo "ok: $2 passes promtool check metrics"
	else
		echo "FAIL: $2: promtool check metrics:"
		head -20 "$tmp/promtool"
		fails=$((fails + 1))
	fi
}

expect 0 "--help" -- "$tool" --help
expect 0 "--version" -- "$tool" --version
expect 2 "no command" -- "$tool"
expect 2 "unknown command" -- "$tool" frobnicate
for c in config demo bench put get del load stats verify checkpoint maintain wal triples; do
	expect 0 "$c --help" -- "$tool" "$c" --help
	grep -q "Usage: " "$tmp/out" || { echo "FAIL: $c --help prints no usage"; fails=$((fails + 1)); }
done
expect 0 "help put" -- "$tool" help put

expect 0 "config" -- "$tool" config
grep -q "cores" "$tmp/out" || { echo "FAIL: config names no cores"; fails=$((fails + 1)); }
expect 0 "config --json" -- "$tool" config --json
json_ok "$tmp/out" "config --json"
expect 2 "config bad option" -- "$tool" config --bogus

expect 2 "demo --threads 0" -- "$tool" demo --threads 0
expect 2 "demo --ops x" -- "$tool" demo --ops x
expect 0 "demo small" -- "$tool" demo --threads 1 --ops 4000 --prefill 2000 --repeat 1
grep -q "Summary" "$tmp/out" || { echo "FAIL: demo prints no summary"; fails=$((fails + 1)); }
grep -q "durable insert-heavy" "$tmp/out" || { echo "FAIL: demo has no durable run by default"; fails=$((fails + 1)); }
expect 0 "demo --no-durable" -- "$tool" demo --threads 1 --ops 2000 --prefill 1000 --repeat 1 --json --no-durable
grep -q '"requested": false' "$tmp/out" || { echo "FAIL: demo --no-durable still runs the durable part"; fails=$((fails + 1)); }
expect 0 "demo --json --durable" -- "$tool" demo --threads 3 --ops 3000 --prefill 1000 --repeat 1 --json --durable
json_ok "$tmp/out" "demo --json"
"$py" - "$tmp/out" <<'PY' || fails=$((fails + 1))
import json, sys
d = json.load(open(sys.argv[1]))
r = d["results"]
assert len(r) == 6, r
assert {x["workload"] for x in r} == {"insert-heavy", "lookup-heavy"}
assert all(x["serialized_ops_per_sec"] > 0 and x["free_threaded_ops_per_sec"] > 0 for x in r)
assert [x["oversubscribed"] for x in r if x["threads"] > d["cores"]] == [True] * sum(1 for x in r if x["threads"] > d["cores"])
assert d["lookup_misses"] == 0
print("ok: demo JSON has the expected rows")
PY

# Tiny runs: the clock covers the whole team (release to last join) and a
# point is measured for at least 50 ms (more rounds of --ops), so no
# absurd rates or speed-ups (this once gave 1.13 G ops/s and 1560x).
expect 0 "demo --ops 1k --repeat 1" -- "$tool" demo --ops 1k --repeat 1 --threads 2 --no-durable --json
"$py" - "$tmp/out" <<'PY' || fails=$((fails + 1))
import json, sys
d = json.load(open(sys.argv[1]))
assert d["min_measured_secs"] == 0.05, d["min_measured_secs"]
for r in d["results"]:
    for m in ("serialized", "free_threaded"):
        rate, secs, rounds = r[m + "_ops_per_sec"], r[m + "_secs"], r[m + "_rounds"]
        assert 0 < rate < 1e9, (m, r)
        assert secs >= 0.05 and rounds >= 1, (m, r)
        assert r[m + "_speedup_vs_1_thread"] < 8, (m, r)
assert any(r["free_threaded_rounds"] > 1 for r in d["results"]), "1k ops never needed a second round"
print("ok: demo --ops 1k: sane rates, 50 ms measured per point")
PY
# --plot: an unwritable path fails before anything is measured.
expect 1 "demo --plot /nonexistent-dir/x.png" -- "$tool" demo --ops 1k --repeat 1 --threads 1 --no-durable --plot /nonexistent-dir/x.png
grep -q "cannot write the gnuplot script /nonexistent-dir/x.gp" "$tmp/err" || { echo "FAIL: demo --plot to a missing dir: no reason"; fails=$((fails + 1)); }
grep -q "demo: \[" "$tmp/err" && { echo "FAIL: demo --plot to a missing dir measured first"; fails=$((fails + 1)); }
if command -v gnuplot >/dev/null; then
	# The script can be written, the chart cannot (a directory of that name).
	mkdir "$tmp/chart.png"
	expect 1 "demo --plot where gnuplot cannot write" -- "$tool" demo --ops 1k --repeat 1 --threads 1 --no-durable --plot "$tmp/chart.png"
	grep -q "gnuplot could not write $tmp/chart.png" "$tmp/err" || { echo "FAIL: demo --plot, gnuplot failing: no reason"; fails=$((fails + 1)); }
	expect 0 "demo --plot" -- "$tool" demo --ops 1k --repeat 1 --threads 1 --no-durable --plot "$tmp/ok.png"
	[ -s "$tmp/ok.png" ] && [ -s "$tmp/ok.gp" ] || { echo "FAIL: demo --plot wrote no chart"; fails=$((fails + 1)); }
else
	echo "skip: demo --plot with gnuplot (gnuplot not installed)"
fi

expect 0 "stats (in memory)" -- "$tool" stats
expect 0 "stats --json (in memory)" -- "$tool" stats --json
json_ok "$tmp/out" "stats --json"
expect 0 "stats --prometheus (in memory)" -- "$tool" stats --prometheus
prom_ok "$tmp/out" "stats --prometheus (in memory)"
grep -q '^cidstore_keys 0$' "$tmp/out" || { echo "FAIL: stats --prometheus: no cidstore_keys 0"; fails=$((fails + 1)); }
expect 2 "stats --json --prometheus" -- "$tool" stats --json --prometheus
expect 2 "get --prometheus" -- "$tool" get --prometheus --dir "$tmp/none" "$(printf '%064x' 1)"

key=$(printf '%064x' 1)
val=$(printf '%064x' 2)
expect 2 "put without --dir" -- "$tool" put "$key" "$val"
expect 2 "put bad hex" -- "$tool" put --dir "$tmp/s" xyz "$val"
expect 2 "put missing value" -- "$tool" put --dir "$tmp/s" "$key"
expect 2 "verify without --dir" -- "$tool" verify
expect 2 "verify --durability" -- "$tool" verify --dir "$tmp/s" --durability sync
expect 2 "wal without subcommand" -- "$tool" wal
expect 2 "wal bogus" -- "$tool" wal bogus --dir "$tmp/s"
expect 2 "wal dump --from x" -- "$tool" wal dump --dir "$tmp/s" --from x
expect 2 "wal dump --limit -1" -- "$tool" wal dump --dir "$tmp/s" --limit -1
expect 2 "wal analyze --limit" -- "$tool" wal analyze --dir "$tmp/s" --limit 3
expect 2 "wal dump without --dir" -- "$tool" wal dump
# verify and wal never create the directory: a missing one exits 3
expect 3 "verify missing dir" -- "$tool" verify --dir "$tmp/s"
grep -q "$tmp/s: no such store directory" "$tmp/err" || { echo "FAIL: verify missing dir: no reason"; fails=$((fails + 1)); }
expect 3 "wal dump missing dir" -- "$tool" wal dump --dir "$tmp/s"
expect 3 "wal analyze missing dir" -- "$tool" wal analyze --dir "$tmp/s"
[ ! -e "$tmp/s" ] || { echo "FAIL: verify/wal created the directory"; fails=$((fails + 1)); }

# check NAME CONDITION...: runs the test command, counts a failure.
check() {
	local what=$1
	shift
	if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}
# flip_byte FILE OFFSET: xor one byte with 0x10, in place.
flip_byte() {
	"$py" - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1); f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0x10]))
PY
}
# tear FILE OFFSET: overwrites the 128-byte record there with garbage of
# this format version (so it reads as a torn write, not a newer format).
tear() {
	"$py" - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(bytes([0x41]) + bytes((0xa5 ^ i) & 0xff for i in range(1, 128)))
PY
}

# grep_err PATTERN WHAT: the last command's stderr holds PATTERN.
grep_err() {
	grep -q -- "$1" "$tmp/err" || { echo "FAIL: $2: stderr lacks '$1'"; sed 's/^/  stderr: /' "$tmp/err" | head -5; fails=$((fails + 1)); }
}

# The front door: read commands never create a store and open it
# read-only; each class of error has its exit code and names the directory.
front_door_checks() {
	local k1 v1 d=$tmp/fd
	k1=$(printf '%064x' 1)
	v1=$(printf '%064x' 2)
	mkdir "$d"

	# A missing directory: exit 3, nothing created by reads or del.
	for c in get stats del; do
		if [ "$c" = stats ]; then set -- "$tool" stats --dir "$d/nope"; else set -- "$tool" "$c" --dir "$d/nope" "$k1"; fi
		expect 3 "$c on a missing dir: ENOENT" -- "$@"
		grep_err "$d/nope: no such store directory" "$c on a missing dir"
	done
	for c in verify "wal dump" "wal analyze"; do
		# shellcheck disable=SC2086
		expect 3 "$c on a missing dir: ENOENT" -- "$tool" $c --dir "$d/nope"
	done
	expect 3 "verify --json on a missing dir" -- "$tool" verify --json --dir "$d/nope"
	check "verify --json on a missing dir: error ENOENT" "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert not d["ok"] and d["error"] == "ENOENT", d' "$tmp/out"
	check "reads on a missing dir create nothing" [ ! -e "$d/nope" ]
	expect 3 "put below a missing parent: ENOENT" -- "$tool" put --dir "$d/nope/deeper" "$k1" "$v1"
	grep_err "its parent directory does not exist" "put below a missing parent"
	check "put below a missing parent creates nothing" [ ! -e "$d/nope" ]

	# A file as --dir: exit 4.
	: >"$d/file"
	expect 4 "get on a file: ENOTDIR" -- "$tool" get --dir "$d/file" "$k1"
	grep_err "$d/file: not a directory" "get on a file"
	expect 4 "put on a file: ENOTDIR" -- "$tool" put --dir "$d/file" "$k1" "$v1"
	expect 4 "verify on a file: ENOTDIR" -- "$tool" verify --dir "$d/file"
	expect 4 "wal dump below a file: ENOTDIR" -- "$tool" wal dump --dir "$d/file/x"

	# A store held open by another process: a load reading from a fifo
	# that stays open holds it (the LOCK) until the fifo is closed.
	expect 0 "put (held store)" -- "$tool" put --dir "$d/held" "$k1" "$v1"
	mkfifo "$d/fifo"
	"$tool" load --dir "$d/held" "$d/fifo" >"$d/load.out" 2>&1 &
	local lpid=$! i
	exec 3<>"$d/fifo" # read-write: never blocks, even if the load died early
	printf '%064x %064x\n' 7 8 >&3
	for ((i = 0; i < 200; i++)); do # the load has a log segment open: the store is open
		ls -l "/proc/$lpid/fd" 2>/dev/null | grep -q -- "$d/held/wal-" && break
		sleep 0.05
	done
	check "load holds the store open" [ "$i" -lt 200 ]
	expect 0 "get beside a writer" -- "$tool" get --dir "$d/held" "$k1"
	check "get beside a writer: the value" grep -qx "$v1" "$tmp/out"
	expect 0 "get VALHEX beside a writer" -- "$tool" get --dir "$d/held" "$k1" "$v1"
	expect 0 "stats beside a writer" -- "$tool" stats --dir "$d/held" --json
	check "stats beside a writer: 1 value" "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["values"] == 1, d' "$tmp/out"
	expect 0 "verify beside a writer" -- "$tool" verify --dir "$d/held"
	expect 0 "wal dump beside a writer" -- "$tool" wal dump --dir "$d/held"
	expect 6 "put beside a writer: EBUSY" -- "$tool" put --dir "$d/held" "$k1" "$v1"
	grep_err "$d/held: the store is open for writing by another process" "put beside a writer"
	expect 6 "del beside a writer: EBUSY" -- "$tool" del --dir "$d/held" "$k1"
	exec 3>&-
	wait "$lpid"
	check "the held load finished: exit 0" [ $? -eq 0 ]
	check "the held load: 1 pair added" grep -q "^1 pair added, 0 already there" "$d/load.out"
	expect 0 "get the pair loaded through the fifo" -- "$tool" get --dir "$d/held" "$(printf '%064x' 7)"

	front_door_permissions "$d"
	front_door_disk_full "$d"
}

# A full disk: exit 7.  Root only: a 1 MiB tmpfs mounted in a private mount
# namespace (unshare -m), where a store's first 64 MiB segment cannot fit.
front_door_disk_full() {
	local d=$1 k1 v1
	k1=$(printf '%064x' 1)
	v1=$(printf '%064x' 2)
	mkdir -p "$d/full"
	if [ "$(id -u)" -ne 0 ] ||
		! unshare -m sh -c 'mount -t tmpfs -o size=1m tmpfs "$1"' sh "$d/full" 2>/dev/null; then
		echo "skip: disk-full checks (need root and a private tmpfs mount)"
		return
	fi
	expect 7 "put on a full disk: ENOSPC" -- unshare -m sh -c \
		'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" put --dir "$1/s" "$3" "$4"' \
		sh "$d/full" "$tool" "$k1" "$v1"
	grep_err "$d/full/s: no space left on the device" "put on a full disk"
}

# Permissions: root reads everything, so the checks run the tool as
# nobody (setpriv or runuser); run by another user, as that user with the
# permission bits taken away.
front_door_permissions() {
	local d=$1 k1 v1 asuser=()
	k1=$(printf '%064x' 1)
	v1=$(printf '%064x' 2)
	expect 0 "put (read-only store)" -- "$tool" put --dir "$d/ro" "$k1" "$v1"
	mkdir -p "$d/priv"
	expect 0 "put (private store)" -- "$tool" put --dir "$d/priv/s" "$k1" "$v1"
	if [ "$(id -u)" -eq 0 ]; then
		if setpriv --reuid=65534 --regid=65534 --clear-groups "$tool" --version >/dev/null 2>&1; then
			asuser=(setpriv --reuid=65534 --regid=65534 --clear-groups)
		elif runuser -u nobody -- "$tool" --version >/dev/null 2>&1; then
			asuser=(runuser -u nobody --)
		else
			echo "skip: permission checks (neither setpriv nor runuser can run the tool as nobody)"
			return
		fi
		chmod 755 "$tmp" "$d"
		chmod 700 "$d/priv"
	else
		chmod -R a-w "$d/ro"
		chmod 000 "$d/priv"
	fi
	# A directory the user may not enter: exit 5.
	expect 5 "get in a private dir: EACCES" -- "${asuser[@]}" "$tool" get --dir "$d/priv/s" "$k1"
	grep_err "permission denied" "get in a private dir"
	expect 5 "verify in a private dir: EACCES" -- "${asuser[@]}" "$tool" verify --dir "$d/priv/s"
	expect 5 "put in a private dir: EACCES" -- "${asuser[@]}" "$tool" put --dir "$d/priv/s" "$k1" "$v1"
	# A store the user may only read: reads work, writes exit 5.
	expect 0 "get on a read-only store" -- "${asuser[@]}" "$tool" get --dir "$d/ro" "$k1"
	check "get on a read-only store: the value" grep -qx "$v1" "$tmp/out"
	expect 0 "stats on a read-only store" -- "${asuser[@]}" "$tool" stats --dir "$d/ro"
	expect 0 "verify on a read-only store" -- "${asuser[@]}" "$tool" verify --dir "$d/ro"
	expect 0 "wal analyze on a read-only store" -- "${asuser[@]}" "$tool" wal analyze --dir "$d/ro"
	expect 5 "put on a read-only store: EACCES / ERDONLY" -- "${asuser[@]}" "$tool" put --dir "$d/ro" "$k1" "$(printf '%064x' 3)"
	grep -Eq -- "$d/ro: .*(permission denied|read-only)" "$tmp/err" || { echo "FAIL: put on a read-only store: no clear reason"; cat "$tmp/err"; fails=$((fails + 1)); }
	expect 5 "del on a read-only store: EACCES / ERDONLY" -- "${asuser[@]}" "$tool" del --dir "$d/ro" "$k1"
	chmod -R u+rwX "$d" 2>/dev/null
}

# load: the bad-line rule, --skip-bad, singular and plural.
load_checks() {
	local d=$tmp/ld
	mkdir "$d"
	{
		printf '%064x %064x\n' 1 2
		printf '%064x %064x\r\n' 3 4
		printf '%064x\n' 5
		printf '   \n# comment\n'
		printf '%064x %064x extra\n' 5 6
		printf '\t%064x\t%064x  \n' 7 8
		printf 'xyz %064x\n' 9
	} >"$d/pairs"
	expect 1 "load stops at a bad line" -- "$tool" load --dir "$d/a" "$d/pairs"
	grep_err "$d/pairs:3: one field" "load stops at a bad line"
	grep_err "the 2 pairs on the lines before it are in the store" "load stops at a bad line"
	check "load stops at a bad line: stdout counts 2" grep -q "^2 pairs added, 0 already there" "$tmp/out"
	expect 0 "the pairs before a bad line are in" -- "$tool" get --dir "$d/a" "$(printf '%064x' 3)"
	expect 1 "the pairs after a bad line are not" -- "$tool" get --dir "$d/a" "$(printf '%064x' 7)"
	expect 0 "load --skip-bad" -- "$tool" load --dir "$d/b" --skip-bad "$d/pairs"
	grep_err "$d/pairs:3: one field; want \"KEYHEX VALHEX\" (skipped)" "load --skip-bad"
	grep_err "$d/pairs:6: more than two fields" "load --skip-bad"
	grep_err "$d/pairs:8: KEYHEX is not 64 hex digits" "load --skip-bad"
	grep_err "3 bad lines skipped" "load --skip-bad"
	check "load --skip-bad: 3 pairs, 3 bad lines" grep -q "^3 pairs added, 0 already there, 3 bad lines skipped" "$tmp/out"
	expect 0 "get after load --skip-bad" -- "$tool" get --dir "$d/b" "$(printf '%064x' 7)"
	check "get after load --skip-bad: the value" grep -qx "$(printf '%064x' 8)" "$tmp/out"
	printf '%064x %064x\n' 1 2 >"$d/one"
	expect 0 "load one pair" -- "$tool" load --dir "$d/b" "$d/one"
	check "load one pair: singular" grep -q "^0 pairs added, 1 already there" "$tmp/out"
	expect 2 "--skip-bad is load's only" -- "$tool" get --skip-bad --dir "$d/b" "$(printf '%064x' 1)"
}

# The store commands: durable stores may not be in this build yet; then
# every one of them must answer 2 (not supported) rather than crash.
"$tool" put --dir "$tmp/s" "$key" "$val" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 2 ] && grep -qi "not supported" "$tmp/err"; then
	echo "ok: durable stores not in this build; store commands answer 2"
	expect 2 "get (no durability)" -- "$tool" get --dir "$tmp/s" "$key"
	expect 2 "load (no durability)" -- "$tool" load --dir "$tmp/s" /dev/null
	expect 2 "checkpoint (no durability)" -- "$tool" checkpoint --dir "$tmp/s"
elif [ "$rc" -eq 0 ]; then
	echo "ok: put"
	expect 0 "put again" -- "$tool" put --dir "$tmp/s" "$key" "$val"
	grep -q "already there" "$tmp/out" || { echo "FAIL: second put not 'already there'"; fails=$((fails + 1)); }
	expect 0 "get" -- "$tool" get --dir "$tmp/s" "$key"
	grep -qx "$val" "$tmp/out" || { echo "FAIL: get does not print the value"; fails=$((fails + 1)); }
	{
		echo "# comment"
		for i in $(seq 100 149); do printf '%064x %064x\n' "$i" $((i + 1000)); done
	} >"$tmp/pairs"
	expect 0 "load" -- "$tool" load --dir "$tmp/s" "$tmp/pairs"
	expect 0 "stats --dir --json" -- "$tool" stats --dir "$tmp/s" --json
	json_ok "$tmp/out" "stats --dir --json"
	if "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["values"] == 51, d' "$tmp/out"; then
		echo "ok: 51 values after put + load"
	else
		echo "FAIL: value count"
		fails=$((fails + 1))
	fi
	expect 0 "stats --dir --prometheus" -- "$tool" stats --dir "$tmp/s" --prometheus
	prom_ok "$tmp/out" "stats --dir --prometheus"
	grep -q '^cidstore_values 51$' "$tmp/out" || { echo "FAIL: stats --prometheus: no cidstore_values 51"; fails=$((fails + 1)); }
	grep -q '^cidstore_recovery_duration_seconds ' "$tmp/out" || { echo "FAIL: stats --prometheus: no recovery time"; fails=$((fails + 1)); }
	expect 0 "del value" -- "$tool" del --dir "$tmp/s" "$key" "$val"
	expect 1 "get after del" -- "$tool" get --dir "$tmp/s" "$key"
	echo "not hex" >"$tmp/bad"
	expect 1 "load malformed" -- "$tool" load --dir "$tmp/s" "$tmp/bad"

	# The log now holds 52 records: put, 50 loaded pairs, one delete
	# (the second put and the failed load changed nothing).
	expect 0 "verify" -- "$tool" verify --dir "$tmp/s"
	grep -q "would recover" "$tmp/out" || { echo "FAIL: verify says nothing"; fails=$((fails + 1)); }
	expect 0 "verify --json" -- "$tool" verify --dir "$tmp/s" --json
	json_ok "$tmp/out" "verify --json"
	check "verify --json: ok, 52 records" "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and d["records"] == 52 and d["last_lsn"] == 52 and not d["torn"], d' "$tmp/out"
	expect 0 "wal dump" -- "$tool" wal dump --dir "$tmp/s"
	check "wal dump: 52 record lines" [ "$(grep -vc ' segment_header ' "$tmp/out")" -eq 52 ]
	check "wal dump: one header line" [ "$(grep -c ' segment_header ' "$tmp/out")" -eq 1 ]
	check "wal dump: LSN 52 is the delete" grep -q "^wal-0000000000000001.log 6656 52 delete_value key=$key value=$val 20[0-9-]*T[0-9:]*\.[0-9]\{9\}Z$" "$tmp/out"
	check "wal dump: summary on stderr" grep -q "52 records, LSN 1..52" "$tmp/err"
	expect 0 "wal dump --json" -- "$tool" wal dump --dir "$tmp/s" --json
	check "wal dump --json: JSON Lines, 52 records" "$py" -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
data = [r for r in recs if r["op"] != "segment_header"]
assert len(data) == 52 and [r["lsn"] for r in data] == list(range(1, 53)), len(data)
assert data[0]["op"] == "insert" and data[-1]["op"] == "delete_value"' "$tmp/out"
	expect 0 "wal dump --from 50 --limit 2" -- "$tool" wal dump --dir "$tmp/s" --from 50 --limit 2
	check "wal dump --from --limit: LSN 50, 51" [ "$(cut -d' ' -f3 "$tmp/out" | tr '\n' ' ')" = "50 51 " ]
	expect 0 "wal analyze" -- "$tool" wal analyze --dir "$tmp/s"
	grep -q "distinct keys    51" "$tmp/out" || { echo "FAIL: wal analyze: distinct keys"; fails=$((fails + 1)); }
	expect 0 "wal analyze --json" -- "$tool" wal analyze --dir "$tmp/s" --json
	json_ok "$tmp/out" "wal analyze --json"
	check "wal analyze --json: counts" "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and d["records"] == 52 and d["ops"]["insert"] == 51 and d["ops"]["delete_value"] == 1 and d["distinct_keys"] == 51 and d["segments"] == 1 and not d["torn"], d' "$tmp/out"
	check "wal analyze --json: batch counts from the library" "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["transactions"]; assert t == dict(committed=0, committed_ops=0, aborted=0, aborted_ops=0, unfinished=0, unfinished_ops=0), t' "$tmp/out"

	# A flipped byte in a record followed by valid ones: corrupt.
	cp -r --sparse=always "$tmp/s" "$tmp/c"
	flip_byte "$tmp/c/wal-0000000000000001.log" $((10 * 128 + 40))
	expect 1 "verify corrupt copy" -- "$tool" verify --dir "$tmp/c"
	check "verify corrupt copy: file named on stderr" grep -q "wal-0000000000000001.log" "$tmp/err"
	expect 1 "verify --json corrupt copy" -- "$tool" verify --dir "$tmp/c" --json
	check "verify --json corrupt copy: error" "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert not d["ok"] and d["error"] == "ECORRUPT", d' "$tmp/out"
	expect 1 "wal dump corrupt copy" -- "$tool" wal dump --dir "$tmp/c"
	check "wal dump corrupt copy: records before the error" [ "$(grep -vc ' segment_header ' "$tmp/out")" -eq 9 ]
	expect 1 "wal analyze corrupt copy" -- "$tool" wal analyze --dir "$tmp/c"
	rm -rf "$tmp/c"
	# A torn last record: reported, not an error, and left in place.
	cp -r --sparse=always "$tmp/s" "$tmp/c"
	tear "$tmp/c/wal-0000000000000001.log" $((52 * 128))
	sum_before=$(cat "$tmp/c"/wal-* | cksum)
	expect 0 "verify torn copy" -- "$tool" verify --dir "$tmp/c"
	check "verify torn copy: torn tail reported" grep -q "torn tail        yes: wal-0000000000000001.log offset 6656" "$tmp/out"
	expect 0 "wal dump torn copy" -- "$tool" wal dump --dir "$tmp/c"
	check "wal dump torn copy: 51 records" [ "$(grep -vc ' segment_header ' "$tmp/out")" -eq 51 ]
	check "verify / wal dump changed nothing" [ "$(cat "$tmp/c"/wal-* | cksum)" = "$sum_before" ]
	rm -rf "$tmp/c"
	expect 3 "maintain missing dir" -- "$tool" maintain --dir "$tmp/nostore"
	check "maintain missing dir: nothing created" [ ! -e "$tmp/nostore" ]
	expect 0 "maintain" -- "$tool" maintain --dir "$tmp/s"
	check "maintain: reports the pass" grep -q "^maintenance pass in " "$tmp/out"
	expect 0 "checkpoint" -- "$tool" checkpoint --dir "$tmp/s"
	expect 0 "verify --json after checkpoint" -- "$tool" verify --dir "$tmp/s" --json
	check "verify after checkpoint: loaded, 50 values" "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["checkpoint"]; assert d["ok"] and c["loaded"] and c["values"] == 50 and d["checkpoint_files"] == 1, d' "$tmp/out"
	expect 0 "get after checkpoint" -- "$tool" get --dir "$tmp/s" "$(printf '%064x' 100)"
	grep -qx "$(printf '%064x' 1100)" "$tmp/out" || { echo "FAIL: loaded pair lost after checkpoint"; fails=$((fails + 1)); }
	load_checks
	front_door_checks
else
	echo "FAIL: put exit $rc"
	cat "$tmp/err"
	fails=$((fails + 1))
fi

if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
echo "all checks passed"
