#!/usr/bin/env bash
# setup-deps.sh — install every Debian package cidstore needs, when missing.
#
#   bash tools/setup-deps.sh          install what is missing
#   bash tools/setup-deps.sh --check  only list what is missing (exit 1 if any)
#
# Works as root (CI) or as a user with sudo.  Debian 12 (bookworm) or newer.
set -euo pipefail

packages=(
	build-essential   # gcc, g++, make, libc headers
	meson
	ninja-build
	pkg-config
	libck-dev         # Concurrency Kit: epochs, backoff, spinlocks
	libjemalloc-dev   # default allocator of release builds
	check             # unit tests
	libssl-dev        # libcrypto: SHA-256
	libisal-dev       # ISA-L: CRC32C
	libbenchmark-dev  # bench/: Google Benchmark
	liburcu-dev       # bench/ anchor: cds_lfht
	libcuckoo-dev     # bench/ anchor: cuckoohash_map
	libtbb-dev        # bench/ anchor: tbb::concurrent_hash_map
	librocksdb-dev    # bench/ anchor: durable path
	gnuplot-nox       # cidstore demo --plot, bench charts
	python3           # build helpers
	libserd-dev       # triples: N-Triples / Turtle parser
	libsord-dev       # bench/ anchor: in-memory triplestore
	serdi             # tests: canonical N-Triples of real Turtle files
	lv2-dev           # tests: real-world Turtle (the LV2 vocabularies)
	prometheus        # tests: promtool check metrics
)

check_only=false
case "${1:-}" in
	--check) check_only=true ;;
	"") ;;
	-h | --help)
		sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "setup-deps.sh: unknown argument '$1' (try --help)" >&2
		exit 2
		;;
esac

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "setup-deps.sh: this script needs a Debian-style system (dpkg, apt-get)." >&2
	echo "Install these packages (or your system's equivalents) by hand:" >&2
	printf '  %s\n' "${packages[@]}" >&2
	exit 1
fi

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "setup-deps.sh: all ${#packages[@]} packages are installed."
	exit 0
fi
echo "setup-deps.sh: missing: ${missing[*]}"
if $check_only; then
	exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
	as_root=(env)
elif command -v sudo >/dev/null 2>&1; then
	as_root=(sudo env)
else
	echo "setup-deps.sh: not root and sudo is not installed; run as root:" >&2
	echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi

"${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
echo "setup-deps.sh: installed ${missing[*]}"
