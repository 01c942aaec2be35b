#!/usr/bin/env bash
# test-cli.sh — smoke test of the `cidstore` tool (meson test 'cli').
#   test-cli.sh PATH/TO/cidstore PATH/TO/python3
# Checks exit codes (0 ok, 1 runtime, 2 usage / not supported), that every
# subcommand has --help, that --json output parses, and a tiny demo run.
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

expect 0 "--help" -- "$tool" --help
expect 0 "--version" -- "$tool" --version
expect 2 "no command" -- "$tool"
expect 2 "unknown command" -- "$tool" frobnicate
for c in config demo bench put get del load stats verify checkpoint wal; do
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
expect 0 "demo small" -- "$tool" demo --threads 2 --ops 4000 --prefill 2000 --repeat 1
grep -q "Summary" "$tmp/out" || { echo "FAIL: demo prints no summary"; fails=$((fails + 1)); }
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

expect 0 "stats (in memory)" -- "$tool" stats
expect 0 "stats --json (in memory)" -- "$tool" stats --json
json_ok "$tmp/out" "stats --json"

key=$(printf '%064x' 1)
val=$(printf '%064x' 2)
expect 2 "put without --dir" -- "$tool" put "$key" "$val"
expect 2 "put bad hex" -- "$tool" put --dir "$tmp/s" xyz "$val"
expect 2 "put missing value" -- "$tool" put --dir "$tmp/s" "$key"
expect 2 "verify" -- "$tool" verify --dir "$tmp/s"
expect 2 "wal dump" -- "$tool" wal dump --dir "$tmp/s"
expect 2 "wal analyze" -- "$tool" wal analyze --dir "$tmp/s"
expect 2 "wal bogus" -- "$tool" wal bogus --dir "$tmp/s"

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
	expect 0 "del value" -- "$tool" del --dir "$tmp/s" "$key" "$val"
	expect 1 "get after del" -- "$tool" get --dir "$tmp/s" "$key"
	echo "not hex" >"$tmp/bad"
	expect 1 "load malformed" -- "$tool" load --dir "$tmp/s" "$tmp/bad"
	expect 0 "checkpoint" -- "$tool" checkpoint --dir "$tmp/s"
	expect 0 "get after checkpoint" -- "$tool" get --dir "$tmp/s" "$(printf '%064x' 100)"
	grep -qx "$(printf '%064x' 1100)" "$tmp/out" || { echo "FAIL: loaded pair lost after checkpoint"; fails=$((fails + 1)); }
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
