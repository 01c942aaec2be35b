#!/usr/bin/env bash
# test-triples.sh — `cidstore triples load|query|count|dump` (meson test
# 'triples').
#   test-triples.sh PATH/TO/cidstore PATH/TO/python3 [PATH/TO/triples_test_orphan]
# A hand-written Turtle file (prefixes, @base, blank nodes, lists, language
# tags, datatypes, Turtle numbers and booleans, long literals, escapes,
# non-ASCII): its dump equals serdi's N-Triples with the blank labels mapped
# by the documented rule (--blank-scope fixes the scope); every one of the 8
# patterns of query and count against the expected lines; JSON; terms given
# in other spellings; load -> dump -> load -> dump; blank node scoping per
# file; a syntax error (exit 1, FILE:LINE:COLUMN, the statements before it
# in the store); an undefined prefix; a missing file; read commands on a
# missing store create nothing and work on a store the user may only read.
# Then real-world Turtle written by others (lv2-dev's vocabularies, any
# other .ttl/.nt under /usr/share): all of them loaded into one store, and
# the six with the most blank nodes each into its own; each dump holds
# exactly the lines of `serdi -o ntriples`, blank labels mapped by the rule,
# as many as the count says.  Exits 77 (skip) with a message only when serdi is
# absent (nothing runs) or no real-world files exist (the rest runs first,
# and a failure there still fails the test).
set -uo pipefail
tool=${1:?usage: test-triples.sh CIDSTORE PYTHON3}
py=${2:-python3}
orphan=${3:-}
fails=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cidstore-triples-XXXXXX")
trap 'chmod -R u+rwX "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT

if ! command -v serdi >/dev/null; then
	echo "SKIP: serdi (Debian package serdi) is not installed: the expected N-Triples come from it"
	exit 77
fi

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

fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# check DESCRIPTION COMMAND...: the command must succeed.
check() {
	local what=$1
	shift
	if "$@"; then echo "ok: $what"; else fail "$what"; fi
}

grep_err() {
	if grep -qF -- "$1" "$tmp/err"; then
		echo "ok: $2: stderr says '$1'"
	else
		fail "$2: stderr lacks '$1'"
		sed 's/^/  stderr: /' "$tmp/err" | head -10
	fi
}

# same_lines A B WHAT: the sorted, deduplicated lines of A and B are equal.
same_lines() {
	if diff <(LC_ALL=C sort -u "$1") <(LC_ALL=C sort -u "$2") >"$tmp/diff"; then
		echo "ok: $3 ($(LC_ALL=C sort -u "$1" | wc -l) lines)"
	else
		fail "$3"
		head -20 "$tmp/diff" | sed 's/^/  /'
	fi
}

SCOPE=00112233445566778899aabbccddeeff

# map_blanks SCOPE IN OUT [IN OUT ...]: the N-Triples lines of IN (serdi's
# output) with each blank label L mapped as `triples load` maps it under
# SCOPE: _:cs + the first 32 hex digits of sha256(scope bytes || L), or L
# itself when it is already cs + 32 lowercase hex digits.
map_blanks() {
	"$py" - "$@" <<'PY'
import hashlib, re, sys
scope = bytes.fromhex(sys.argv[1])
kept = re.compile(r'cs[0-9a-f]{32}\Z')
def lab(l):
    if kept.match(l):
        return '_:' + l
    return '_:cs' + hashlib.sha256(scope + l.encode()).hexdigest()[:32]
line_re = re.compile(r'(\S+) (<[^>]*>) (.*) \.\Z')
args = sys.argv[2:]
for src, dst in zip(args[0::2], args[1::2]):
    with open(dst, 'w') as out:
        for line in open(src, encoding='ascii'):
            m = line_re.match(line.rstrip('\n'))
            assert m, line
            s, p, o = m.groups()
            if s.startswith('_:'):
                s = lab(s[2:])
            if o.startswith('_:'):
                o = lab(o[2:])
            out.write(f'{s} {p} {o} .\n')
PY
}

# expected FILE SYNTAX SCOPE OUT: serdi's N-Triples of FILE, blank labels
# mapped.
expected() {
	serdi -i "$2" -o ntriples "$1" >"$tmp/serdi.nt" 2>"$tmp/serdi.err" || {
		echo "  (serdi failed on $1)"
		cat "$tmp/serdi.err"
		return 1
	}
	map_blanks "$3" "$tmp/serdi.nt" "$4"
}

# ---------------------------------------------------------------------------
# A hand-written Turtle file
# ---------------------------------------------------------------------------
long=$(head -c 6000 /dev/zero | tr '\0' 'x')
cat >"$tmp/people.ttl" <<EOF
@prefix ex: <http://example.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix : <http://example.org/default#> .
# a comment
ex:alice a ex:Person ;
    ex:name "Alice" , "Alicia"@es , "Алиса"@ru , "Alice"@en-GB ;
    ex:age 42 ;
    ex:height 1.68 ;
    ex:weight 6.5e1 ;
    ex:member true ;
    ex:born "1990-01-01"^^xsd:date ;
    ex:knows ex:bob , _:carol ;
    ex:address [ ex:city "Paris" ; ex:zip "75001" ] ;
    ex:likes ( ex:tea ex:cake ) ;
    ex:home <home/alice> ;
    :local "default prefix" .
_:carol ex:name "Carol \"C\" O'Neil\n\ttab\\\\back" ;
    ex:knows _:b1 .
_:b1 ex:name "a label serd renames (b + digit)" .
ex:bob ex:bio """A long
multi-line literal with "quotes", a backslash \\\\ and é ✓ 😀 $long""" ;
    ex:note "x"^^<http://example.org/custom#type> ;
    ex:empty "" ;
    ex:neg -7 ;
    ex:ctl "bell\u0007 and \U0001F600" .
@base <http://example.org/base/> .
<rel> <#frag> <../up> .
[] ex:anon "anonymous subject" .
EOF
tool_load() { "$tool" triples load --blank-scope "$SCOPE" "$@"; }

d=$tmp/s1
expect 0 "load people.ttl" -- tool_load --dir "$d" "$tmp/people.ttl"
grep -q "people.ttl: 3[0-9] statements" "$tmp/out" || fail "load prints no statement count: $(cat "$tmp/out")"
expected "$tmp/people.ttl" turtle "$SCOPE" "$tmp/people.exp" || fail "serdi on people.ttl"
nexp=$(LC_ALL=C sort -u "$tmp/people.exp" | wc -l)
[ "$nexp" -ge 30 ] || fail "people.ttl: only $nexp expected triples"
expect 0 "dump" -- "$tool" triples dump --dir "$d"
cp "$tmp/out" "$tmp/people.dump"
same_lines "$tmp/people.dump" "$tmp/people.exp" "dump == serdi -o ntriples (blank labels mapped)"
[ "$(wc -l <"$tmp/people.dump")" -eq "$nexp" ] || fail "dump printed $(wc -l <"$tmp/people.dump") lines, want $nexp (each triple once)"
grep -q '"\\u0410\\u043B\\u0438\\u0441\\u0430"@ru' "$tmp/people.dump" || fail "non-ASCII not written as \\uXXXX"
grep -q "\"42\"^^<http://www.w3.org/2001/XMLSchema#integer>" "$tmp/people.dump" || fail "42 is not a typed literal"
grep -q "\"true\"^^<http://www.w3.org/2001/XMLSchema#boolean>" "$tmp/people.dump" || fail "true is not a typed literal"
grep -q "x\{6000\}" "$tmp/people.dump" || fail "the long literal is not whole"
expect 0 "count (all)" -- "$tool" triples count --dir "$d"
[ "$(cat "$tmp/out")" = "$nexp" ] || fail "count says $(cat "$tmp/out"), want $nexp"

# Every pattern, for several triples of the file: query and count against
# the expected lines filtered the same way.
"$py" - "$tmp/people.exp" "$tmp/patterns" <<'PY'
import re, sys, random
line_re = re.compile(r'(\S+) (<[^>]*>) (.*) \.\Z')
lines = sorted(set(l.rstrip('\n') for l in open(sys.argv[1])))
trip = [line_re.match(l).groups() for l in lines]
pick = [t for t in trip if t[0].startswith('_:')][:2] + \
       [t for t in trip if '"Alice"' in t[2]] + \
       [t for t in trip if 'xxxxxxxx' in t[2]] + \
       [t for t in trip if t[2].startswith('_:')][:1] + \
       [t for t in trip if '@ru' in t[2]] + \
       [t for t in trip if '^^' in t[2]][:2]
with open(sys.argv[2], 'w') as f:
    n = 0
    for t in pick:
        for mask in range(8):
            pat = [t[i] if mask >> i & 1 else None for i in range(3)]
            exp = [l for l, u in zip(lines, trip)
                   if all(p is None or p == u[i] for i, p in enumerate(pat))]
            n += 1
            name = f'{sys.argv[2]}.{n}'
            open(name + '.exp', 'w').write(''.join(l + '\n' for l in exp))
            args = []
            for i, opt in enumerate(('-s', '-p', '-o')):
                if pat[i] is not None:
                    args += [opt, pat[i]]
            open(name + '.args', 'wb').write(b'\0'.join(a.encode() for a in args))
            f.write(f'{name} {"".join("SPO"[i] if pat[i] else "?" for i in range(3))}\n')
PY
npat=0
while read -r name shape; do
	mapfile -d '' args <"$name.args"
	npat=$((npat + 1))
	if ! "$tool" triples query --dir "$d" "${args[@]}" >"$tmp/q" 2>"$tmp/qerr"; then
		fail "query $shape ${args[*]:0:4}: exit $?"
		cat "$tmp/qerr"
		continue
	fi
	if ! diff <(LC_ALL=C sort "$tmp/q") <(LC_ALL=C sort "$name.exp") >/dev/null; then
		fail "query $shape (${args[*]}): wrong triples"
		diff <(LC_ALL=C sort "$tmp/q") <(LC_ALL=C sort "$name.exp") | head -5
	fi
	c=$("$tool" triples count --dir "$d" "${args[@]}" 2>/dev/null)
	[ "$c" = "$(wc -l <"$name.exp")" ] || fail "count $shape (${args[*]}): $c, want $(wc -l <"$name.exp")"
done <"$tmp/patterns"
echo "ok: query and count of $npat patterns (all 8 shapes) checked"

# Terms in other spellings: raw UTF-8 and lower-case escapes read as the
# loader wrote them; a term the store does not know gets a note.
expect 0 "query -o with raw UTF-8" -- "$tool" triples query --dir "$d" -o '"Алиса"@ru'
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "query -o '\"Алиса\"@ru' found $(wc -l <"$tmp/out") triples, want 1"
expect 0 "query -o with \\u escapes in lower case" -- "$tool" triples query --dir "$d" -o '"\u0410\u043b\u0438\u0441\u0430"@ru'
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "query -o with \\u0410...: $(wc -l <"$tmp/out") triples, want 1"
expect 0 "query an unknown term" -- "$tool" triples query --dir "$d" -s '<http://example.org/nobody>'
grep_err "knows no term <http://example.org/nobody>" "query an unknown term"
[ -s "$tmp/out" ] && fail "query of an unknown term printed triples"
expect 2 "query -s with a prefixed name" -- "$tool" triples query --dir "$d" -s 'ex:alice'
expect 2 "query -p with a literal" -- "$tool" triples query --dir "$d" -p '"x"'
expect 2 "query -o with two terms" -- "$tool" triples query --dir "$d" -o '<http://a/> . <http://b/> <http://c/> <http://d/>'
expect 2 "query -o unterminated" -- "$tool" triples query --dir "$d" -o '"abc'
expect 2 "query --limit 0" -- "$tool" triples query --dir "$d" --limit 0
expect 2 "dump -s" -- "$tool" triples dump --dir "$d" -s '<http://a/>'
expect 2 "query without --dir" -- "$tool" triples query
expect 2 "triples without a command" -- "$tool" triples
expect 2 "triples frobnicate" -- "$tool" triples frobnicate
for c in load query count dump; do
	expect 0 "triples $c --help" -- "$tool" triples "$c" --help
	grep -q "Usage: " "$tmp/out" || fail "triples $c --help prints no usage"
done
expect 0 "triples --help" -- "$tool" triples --help
grep -q "_:cs" "$tmp/out" || fail "triples --help does not state the blank node rule"
expect 0 "query --limit 3" -- "$tool" triples query --dir "$d" -p '<http://example.org/name>' --limit 3
[ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "--limit 3 printed $(wc -l <"$tmp/out") lines"
expect 0 "query --json" -- "$tool" triples query --dir "$d" --json
"$py" - "$tmp/out" "$tmp/people.exp" <<'PY' && echo "ok: query --json == the expected triples" || fail "query --json"
import json, sys
d = json.load(open(sys.argv[1]))
got = sorted(f'{t["s"]} {t["p"]} {t["o"]} .' for t in d["triples"])
exp = sorted(set(l.rstrip('\n') for l in open(sys.argv[2])))
assert got == exp, (len(got), len(exp))
assert d["count"] == len(exp) and d["terms_without_text"] == 0, d
PY

# A CID without text prints as <urn:cid:HEX>, counted in a warning.
if [ -n "$orphan" ]; then
	if ohex=$("$orphan" "$tmp/so"); then
		expect 0 "query a triple whose subject has no text" -- "$tool" triples query --dir "$tmp/so"
		grep -qx "<urn:cid:$ohex> <http://example.org/p> \"x\" \." "$tmp/out" ||
			fail "no <urn:cid:HEX> line: $(cat "$tmp/out")"
		grep_err "warning: 1 term had no text in the term dictionary" "term without text"
		expect 0 "query --json (term without text)" -- "$tool" triples query --dir "$tmp/so" --json
		"$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["terms_without_text"] == 1 and d["triples"][0]["s"] == "<urn:cid:" + sys.argv[2] + ">", d' \
			"$tmp/out" "$ohex" && echo "ok: JSON counts the term without text" || fail "JSON of a term without text"
	else
		fail "triples_test_orphan"
	fi
	# rdf_load.h's calls on bad arguments.
	if "$orphan" --api "$tmp/sapi" >"$tmp/out" 2>&1; then
		echo "ok: rdf_load API checks ($(grep -c '^ok:' "$tmp/out"))"
	else
		fail "rdf_load API checks"
		grep -v '^ok:' "$tmp/out"
	fi
else
	echo "skip: terms without text and rdf_load API checks (no triples_test_orphan given)"
fi

# load -> dump -> load into a fresh store -> dump: the same lines.
expect 0 "load the dump into a fresh store (random scope)" -- "$tool" triples load --dir "$tmp/s2" "$tmp/people.dump" --syntax ntriples
expect 0 "dump the second store" -- "$tool" triples dump --dir "$tmp/s2"
same_lines "$tmp/out" "$tmp/people.dump" "load -> dump -> load -> dump"
# The dump again into the same store: nothing new (its labels are kept).
expect 0 "load the dump again" -- "$tool" triples load --dir "$tmp/s2" "$tmp/people.dump"
grep -q " 0 added, $nexp already there, 0 new terms" "$tmp/out" || fail "reloading the dump added something: $(cat "$tmp/out")"
# From stdin, Turtle by default.
expect 0 "load from stdin" -- sh -c '"$1" triples load --dir "$2" - <"$3"' sh "$tool" "$tmp/s3" "$tmp/people.dump"
expect 0 "dump (stdin store)" -- "$tool" triples dump --dir "$tmp/s3"
same_lines "$tmp/out" "$tmp/people.dump" "load from stdin"
# Several inserter threads and tiny batches give the same store.
expect 0 "load with 4 threads" -- tool_load --dir "$tmp/s4" --threads 4 "$tmp/people.ttl"
expect 0 "dump (4 threads)" -- "$tool" triples dump --dir "$tmp/s4"
same_lines "$tmp/out" "$tmp/people.dump" "4 inserter threads"

# Blank nodes are scoped per file and per load.
printf '_:x <http://example.org/p> "a" .\n_:x <http://example.org/q> _:y .\n' >"$tmp/a.nt"
printf '_:x <http://example.org/p> "b" .\n' >"$tmp/b.nt"
expect 0 "load two files with the same blank label" -- "$tool" triples load --dir "$tmp/s5" "$tmp/a.nt" "$tmp/b.nt"
grep -q "^total: 3 statements" "$tmp/out" || fail "no total line: $(cat "$tmp/out")"
expect 0 "query -p p" -- "$tool" triples query --dir "$tmp/s5" -p '<http://example.org/p>'
[ "$(cut -d' ' -f1 "$tmp/out" | sort -u | wc -l)" -eq 2 ] || fail "_:x of two files is one node: $(cat "$tmp/out")"
xa=$(grep '"a"' "$tmp/out" | cut -d' ' -f1)
expect 0 "query -s (a blank node of a.nt)" -- "$tool" triples query --dir "$tmp/s5" -s "$xa"
[ "$(wc -l <"$tmp/out")" -eq 2 ] || fail "_:x within a.nt is not one node: $(cat "$tmp/out")"
expect 0 "load a.nt again" -- "$tool" triples load --dir "$tmp/s5" "$tmp/a.nt"
grep -q "2 added, 0 already there" "$tmp/out" || fail "a second load of a.nt shares its blank nodes: $(cat "$tmp/out")"
expect 0 "count after the reload" -- "$tool" triples count --dir "$tmp/s5"
[ "$(cat "$tmp/out")" = 5 ] || fail "count after the reload: $(cat "$tmp/out"), want 5"

# A syntax error: exit 1, FILE:LINE:COLUMN, the statements before it in.
cat >"$tmp/bad.ttl" <<'EOF'
@prefix ex: <http://example.org/> .
ex:a ex:p "one" .
ex:a ex:p "two" ;
     ex:q "three" .
ex:a ex:p "four" ex:oops .
ex:a ex:p "never" .
EOF
expect 1 "load a file with a syntax error" -- "$tool" triples load --dir "$tmp/s6" "$tmp/bad.ttl"
grep -Eq "bad.ttl:5:[0-9]+: " "$tmp/err" || fail "no FILE:LINE:COLUMN in: $(cat "$tmp/err")"
# serd delivers ex:a ex:p "four" before it meets ex:oops: 4 statements.
grep_err "the 4 statements before it are in the store" "syntax error"
expect 0 "count after the syntax error" -- "$tool" triples count --dir "$tmp/s6"
[ "$(cat "$tmp/out")" = 4 ] || fail "count after the syntax error: $(cat "$tmp/out"), want 4"
expect 0 "query the statements before the error" -- "$tool" triples query --dir "$tmp/s6" -s '<http://example.org/a>'
printf '%s\n' '<http://example.org/a> <http://example.org/p> "one" .' \
	'<http://example.org/a> <http://example.org/p> "two" .' \
	'<http://example.org/a> <http://example.org/q> "three" .' \
	'<http://example.org/a> <http://example.org/p> "four" .' >"$tmp/bad.exp"
same_lines "$tmp/out" "$tmp/bad.exp" "the statements before the error"
# An error in the second file: the first file's statements count too.
expect 1 "load good + bad" -- "$tool" triples load --dir "$tmp/s7" "$tmp/a.nt" "$tmp/bad.ttl"
grep_err "(6 in all, with the files before it)" "error in the second file"
# An undefined prefix (serd's writer refuses it; the place is found again).
printf '<http://a/> <http://b/> "1" .\n<http://a/> <http://b/>\n   nope:x .\n' >"$tmp/prefix.ttl"
expect 1 "load a file with an undefined prefix" -- "$tool" triples load --dir "$tmp/s8" "$tmp/prefix.ttl"
grep -Eq "prefix.ttl:3:[0-9]+: .*nope" "$tmp/err" || fail "undefined prefix: no FILE:3:COL: $(cat "$tmp/err")"
grep_err "the 1 statement before it is in the store" "undefined prefix"
# Missing file, directory: exit 1, and no store is created.
expect 1 "load a missing file" -- "$tool" triples load --dir "$tmp/s9" "$tmp/nonexistent.ttl"
grep_err "nonexistent.ttl" "missing file"
[ -e "$tmp/s9" ] && fail "a missing file created the store"
expect 1 "load a directory" -- "$tool" triples load --dir "$tmp/s9" "$tmp"
expect 2 "load without a file" -- "$tool" triples load --dir "$tmp/s9"
expect 2 "load --syntax rdfxml" -- "$tool" triples load --dir "$tmp/s9" --syntax rdfxml "$tmp/a.nt"
expect 2 "load --threads 0" -- "$tool" triples load --dir "$tmp/s9" --threads 0 "$tmp/a.nt"
expect 2 "load --blank-scope xyz" -- "$tool" triples load --dir "$tmp/s9" --blank-scope xyz "$tmp/a.nt"

# A store that fails mid-load (a full disk): exit 7, the reason, and the
# store holds at most the statements the message counts.  Root only: a
# 40 MiB tmpfs in a private mount namespace fills after about 30 MiB of log.
mkdir -p "$tmp/full"
if [ "$(id -u)" -eq 0 ] && unshare -m sh -c 'mount -t tmpfs -o size=40m tmpfs "$1"' sh "$tmp/full" 2>/dev/null; then
	"$py" -c '
for i in range(60000):
    print(f"<http://example.org/s{i}> <http://example.org/p{i % 7}> \"literal number {i} with some text\" .")
' >"$tmp/big.nt"
	unshare -m sh -c 'mount -t tmpfs -o size=40m tmpfs "$1" || exit 99
		"$2" triples load --dir "$1/s" "$3" >"$4/full.out" 2>"$4/full.err"
		echo $? >"$4/full.rc"
		"$2" triples count --dir "$1/s" >"$4/full.count" 2>>"$4/full.err"' \
		sh "$tmp/full" "$tool" "$tmp/big.nt" "$tmp"
	[ "$(cat "$tmp/full.rc" 2>/dev/null)" = 7 ] && echo "ok: load on a full disk: exit 7" ||
		fail "load on a full disk: exit $(cat "$tmp/full.rc" 2>/dev/null), want 7: $(cat "$tmp/full.err")"
	cp "$tmp/full.err" "$tmp/err"
	grep_err "no space left on the device" "load on a full disk"
	n=$(sed -n 's/.*after \([0-9]*\) statements inserted.*/\1/p' "$tmp/full.err")
	c=$(cat "$tmp/full.count" 2>/dev/null)
	if [ -n "$n" ] && [ -n "$c" ] && [ "$c" -gt 0 ] && [ "$c" -le "$n" ] && [ "$n" -lt 60000 ]; then
		echo "ok: full disk: $c triples recovered of the $n the message counts"
	else
		fail "full disk: message counts '${n}', the store holds '${c}'"
	fi
else
	echo "skip: full-disk load (needs root and a private tmpfs mount)"
fi

# Read commands never create a store.
for c in query count dump; do
	expect 3 "triples $c on a missing store" -- "$tool" triples "$c" --dir "$tmp/missing"
	[ -e "$tmp/missing" ] && fail "triples $c created the store"
done

# A store the user may only read: query, count and dump work.
if [ "$(id -u)" -eq 0 ]; then
	asuser=()
	if setpriv --reuid=65534 --regid=65534 --clear-groups "$tool" --version >/dev/null 2>&1; then
		asuser=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	elif runuser -u nobody -- "$tool" --version >/dev/null 2>&1; then
		asuser=(runuser -u nobody --)
	fi
	if [ ${#asuser[@]} -gt 0 ]; then
		chmod 755 "$tmp"
		chmod -R a+rX "$d"
		expect 0 "dump as nobody on a store it may only read" -- "${asuser[@]}" "$tool" triples dump --dir "$d"
		same_lines "$tmp/out" "$tmp/people.dump" "dump as nobody"
		expect 0 "count as nobody" -- "${asuser[@]}" "$tool" triples count --dir "$d"
		expect 5 "load as nobody: permission denied" -- "${asuser[@]}" "$tool" triples load --dir "$d" "$tmp/a.nt"
	else
		echo "skip: read-only store checks (cannot run as nobody)"
	fi
else
	chmod -R a-w "$d"
	expect 0 "dump on a store the user may only read" -- "$tool" triples dump --dir "$d"
	same_lines "$tmp/out" "$tmp/people.dump" "dump on a read-only store"
	expect 5 "load on a read-only store" -- "$tool" triples load --dir "$d" "$tmp/a.nt"
	chmod -R u+w "$d"
fi

# ---------------------------------------------------------------------------
# Real-world Turtle written by others
# ---------------------------------------------------------------------------
mapfile -t real < <(find /usr/lib/lv2 /usr/share -xdev \( -name '*.ttl' -o -name '*.nt' \) -type f 2>/dev/null | LC_ALL=C sort)
real_skipped=0
if [ ${#real[@]} -eq 0 ]; then
	echo "skip: real-world Turtle: no .ttl or .nt files under /usr/lib/lv2 or /usr/share (Debian package lv2-dev ships some)"
	real_skipped=1
else
	# serdi's N-Triples of each file (files serdi itself rejects are not
	# ours to judge), blank labels mapped under SCOPE.
	mkdir "$tmp/real"
	files=() maps=() nreal=0
	for f in "${real[@]}"; do
		case "$f" in *.nt) syn=ntriples ;; *) syn=turtle ;; esac
		if ! serdi -i "$syn" -o ntriples "$f" >"$tmp/real/$nreal.nt" 2>/dev/null; then
			echo "skip: $f (serdi rejects it)"
			continue
		fi
		files+=("$f")
		maps+=("$tmp/real/$nreal.nt" "$tmp/real/$nreal.exp")
		nreal=$((nreal + 1))
	done
	map_blanks "$SCOPE" "${maps[@]}" || fail "mapping serdi's output"
	# All of them into one store, in one load (one scope for all: a label
	# maps to the same node in every file on both sides, so the union must
	# be equal as a set).
	cat "$tmp"/real/*.exp >"$tmp/real/all.exp"
	nall=$(LC_ALL=C sort -u "$tmp/real/all.exp" | wc -l)
	expect 0 "load $nreal real-world files" -- tool_load --dir "$tmp/rall" "${files[@]}"
	grep -q "^total: " "$tmp/out" || [ "$nreal" -eq 1 ] || fail "no total line for $nreal files"
	expect 0 "dump (real-world files)" -- "$tool" triples dump --dir "$tmp/rall"
	same_lines "$tmp/out" "$tmp/real/all.exp" "$nreal real-world files: dump == serdi -o ntriples"
	[ "$(wc -l <"$tmp/out")" -eq "$nall" ] || fail "real-world dump: $(wc -l <"$tmp/out") lines, want $nall"
	[ "$("$tool" triples count --dir "$tmp/rall")" = "$nall" ] || fail "real-world count != $nall"
	# The six files with the most blank nodes, each into its own store.
	mapfile -t most < <(for i in $(seq 0 $((nreal - 1))); do
		echo "$(grep -c '_:' "$tmp/real/$i.exp") $i"; done | sort -rn | head -6 | cut -d' ' -f2)
	for i in "${most[@]}"; do
		f=${files[$i]}
		n=$(LC_ALL=C sort -u "$tmp/real/$i.exp" | wc -l)
		expect 0 "load $f alone" -- tool_load --dir "$tmp/r$i" "$f"
		expect 0 "dump $f alone" -- "$tool" triples dump --dir "$tmp/r$i"
		same_lines "$tmp/out" "$tmp/real/$i.exp" "$f: dump == serdi -o ntriples ($(grep -c '_:' "$tmp/real/$i.exp") lines with blank nodes)"
		[ "$(wc -l <"$tmp/out")" -eq "$n" ] || fail "$f: dump has $(wc -l <"$tmp/out") lines, want $n"
		[ "$("$tool" triples count --dir "$tmp/r$i")" = "$n" ] || fail "$f: count != $n"
	done
	# One of them through the N-Triples path: serdi's output loaded as .nt.
	i=${most[0]}
	cp "$tmp/real/$i.nt" "$tmp/one.nt"
	expect 0 "load serdi's N-Triples of ${files[$i]}" -- tool_load --dir "$tmp/rnt" "$tmp/one.nt"
	expect 0 "dump (as N-Triples)" -- "$tool" triples dump --dir "$tmp/rnt"
	same_lines "$tmp/out" "$tmp/real/$i.exp" "${files[$i]} through N-Triples"
fi

if [ "$fails" -ne 0 ]; then
	echo "$fails check(s) failed"
	exit 1
fi
if [ "$real_skipped" -ne 0 ] || [ "${nreal:-0}" -eq 0 ]; then
	echo "SKIP: every other check passed, but no real-world Turtle was compared (install lv2-dev)"
	exit 77
fi
echo "all triples checks passed"
