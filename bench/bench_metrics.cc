// bench_metrics.cc — the cost of recording metrics (opts.metrics on vs
// off), measured PAIRED so that the noise of a shared 2-core machine
// (other processes' load changes by the second) cancels out.
//
// Two stores hold the same data, A with metrics on and B with them off.
// Each of R rounds runs the same block of operations on A and then on B
// (odd rounds: B first), T threads, each thread its own slice of the
// block, between barriers.  Per round and store: wall time and the sum of
// the threads' CPU time (CLOCK_THREAD_CPUTIME_ID: time a thread was
// descheduled by other processes is not in it).  The cost is the median
// over rounds of on/off - 1 (cpu_overhead_pct, wall_overhead_pct):
// a change of load between rounds hits both stores of a round alike.
//
// Workloads (Google Benchmark names):
//   lookup/threads:T       N keys prefilled (1 value each, presized index);
//                          each round looks up a block of N/8 of them in
//                          random order
//   insert/threads:T       each round inserts a new block of N/16 keys into
//                          both stores (presized for all of them)
//   sync_insert/threads:T  durable SYNC stores (fresh directories under
//                          --dir); each round inserts 100 new keys per
//                          thread: the SYNC commit (an fdatasync) dominates
// Counters: on_cpu_ns_per_op, off_cpu_ns_per_op, cpu_overhead_pct,
// on_wall_ns_per_op, off_wall_ns_per_op, wall_overhead_pct (medians),
// rounds, load_avg_1m.
//
// --null runs metrics ON in both stores: the method's own spread (what an
// overhead of zero looks like on the machine at that moment).
//
// Run: bench_metrics [--keys=1M] [--rounds=40] [--threads=1,2] [--null]
//      [--dir=/work/tmp-mbench] [Google Benchmark flags]
#include <benchmark/benchmark.h>

#include <cidstore.h>

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "xoshiro.h"

namespace {

struct Config {
	size_t keys = 1u << 20;
	int rounds = 40;
	std::vector<int> threads{1, 2};
	std::string dir = "/work/tmp-mbench";
	bool null_test = false; // --null: metrics on in both stores
} cfg;

struct KV {
	cid_t k, v;
};
std::vector<KV> g_kv;   // lookup data: keys [0, N)
std::vector<KV> g_new;  // insert data: N/16 * rounds new keys
std::vector<uint32_t> g_perm;

double now_ns(clockid_t c)
{
	timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

double load_avg()
{
	std::ifstream f("/proc/loadavg");
	double x = 0;
	f >> x;
	return x;
}

cid_t rnd(Xoshiro256 &x)
{
	return cid_t{{x.next(), x.next(), x.next(), x.next()}};
}

void generate()
{
	if (!g_kv.empty())
		return;
	Xoshiro256 x(20240601);
	g_kv.resize(cfg.keys);
	for (auto &e : g_kv)
		e = {rnd(x), rnd(x)};
	g_new.resize(cfg.keys / 16 * (size_t)cfg.rounds);
	for (auto &e : g_new)
		e = {rnd(x), rnd(x)};
	g_perm.resize(cfg.keys);
	for (size_t i = 0; i < g_perm.size(); i++)
		g_perm[i] = (uint32_t)i;
	for (size_t i = g_perm.size() - 1; i > 0; i--)
		std::swap(g_perm[i], g_perm[x.next() % (i + 1)]);
}

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	size_t n = v.size();
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// One round's block for one store: fn(store, tid, round) returns the
// number of operations it did (or < 0 on a wrong result).
using Work = long (*)(cidstore_t *, int tid, int nthreads, int round);

struct Sample {
	double wall, cpu; // ns for the whole block (cpu: summed over threads)
	long ops;
};

// Runs cfg.rounds rounds on stores s[0] (metrics on) and s[1] (off).
bool run_paired(cidstore_t *s[2], int T, Work fn, std::vector<Sample> out[2], std::string *err)
{
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, nullptr, (unsigned)T);
	std::vector<std::vector<double>> cpu(T, std::vector<double>(2 * cfg.rounds));
	std::vector<std::vector<long>> ops(T, std::vector<long>(2 * cfg.rounds));
	std::vector<double> wall(2 * cfg.rounds);
	auto body = [&](int tid) {
		for (int r = 0; r < cfg.rounds; r++)
			for (int j = 0; j < 2; j++) {
				int which = r % 2 ? 1 - j : j;
				pthread_barrier_wait(&bar);
				double w0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
				long n = fn(s[which], tid, T, r);
				double c1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
				pthread_barrier_wait(&bar);
				if (tid == 0)
					wall[2 * r + which] = now_ns(CLOCK_MONOTONIC) - w0;
				cpu[tid][2 * r + which] = c1 - c0;
				ops[tid][2 * r + which] = n;
			}
	};
	std::vector<std::thread> th;
	for (int t = 1; t < T; t++)
		th.emplace_back(body, t);
	body(0);
	for (auto &t : th)
		t.join();
	pthread_barrier_destroy(&bar);
	for (int r = 0; r < cfg.rounds; r++)
		for (int which = 0; which < 2; which++) {
			Sample x{wall[2 * r + which], 0, 0};
			for (int t = 0; t < T; t++) {
				x.cpu += cpu[t][2 * r + which];
				if (ops[t][2 * r + which] < 0) {
					*err = "a call returned a wrong result";
					return false;
				}
				x.ops += ops[t][2 * r + which];
			}
			out[which].push_back(x);
		}
	return true;
}

void report(benchmark::State &st, std::vector<Sample> smp[2])
{
	std::vector<double> cpu_ratio, wall_ratio, on_cpu, off_cpu, on_wall, off_wall;
	double total_wall = 0;
	long total_ops = 0;
	for (size_t r = 0; r < smp[0].size(); r++) {
		const Sample &a = smp[0][r], &b = smp[1][r];
		cpu_ratio.push_back(a.cpu / b.cpu);
		wall_ratio.push_back(a.wall / b.wall);
		on_cpu.push_back(a.cpu / a.ops);
		off_cpu.push_back(b.cpu / b.ops);
		on_wall.push_back(a.wall / a.ops);
		off_wall.push_back(b.wall / b.ops);
		total_wall += a.wall + b.wall;
		total_ops += a.ops + b.ops;
	}
	st.SetIterationTime(total_wall / 1e9);
	st.SetItemsProcessed(total_ops);
	st.counters["on_cpu_ns_per_op"] = median(on_cpu);
	st.counters["off_cpu_ns_per_op"] = median(off_cpu);
	st.counters["cpu_overhead_pct"] = (median(cpu_ratio) - 1) * 100;
	st.counters["on_wall_ns_per_op"] = median(on_wall);
	st.counters["off_wall_ns_per_op"] = median(off_wall);
	st.counters["wall_overhead_pct"] = (median(wall_ratio) - 1) * 100;
	st.counters["rounds"] = (double)smp[0].size();
	st.counters["load_avg_1m"] = load_avg();
}

cidstore_t *open_store(bool metrics, const char *dir, uint64_t expected)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = dir;
	o.durability = dir ? CIDSTORE_DURABILITY_SYNC : CIDSTORE_DURABILITY_NONE;
	o.metrics = metrics;
	o.expected_keys = expected;
	o.checkpoint_wal_bytes = 0; // no automatic checkpoint inside a round
	cidstore_t *s = nullptr;
	int rc = cidstore_open(&o, &s);
	return rc == 0 ? s : nullptr;
}

long lookup_block(cidstore_t *s, int tid, int T, int r)
{
	size_t block = cfg.keys / 8, start = (size_t)(r % 8) * block;
	size_t lo = start + block * tid / T, hi = start + block * (tid + 1) / T;
	cid_t out;
	long bad = 0;
	for (size_t i = lo; i < hi; i++)
		bad += cidstore_lookup(s, &g_kv[g_perm[i]].k, &out, 1) != 1;
	return bad ? -1 : (long)(hi - lo);
}

long insert_block(cidstore_t *s, int tid, int T, int r)
{
	size_t block = cfg.keys / 16, start = (size_t)r * block;
	size_t lo = start + block * tid / T, hi = start + block * (tid + 1) / T;
	long bad = 0;
	for (size_t i = lo; i < hi; i++)
		bad += cidstore_insert(s, &g_new[i].k, &g_new[i].v) != 1;
	return bad ? -1 : (long)(hi - lo);
}

constexpr size_t kSyncPerThread = 100;

long sync_insert_block(cidstore_t *s, int tid, int, int r)
{
	size_t lo = ((size_t)r * 64 + (size_t)tid) * kSyncPerThread;
	long bad = 0;
	for (size_t i = lo; i < lo + kSyncPerThread; i++)
		bad += cidstore_insert(s, &g_new[i].k, &g_new[i].v) != 1;
	return bad ? -1 : (long)kSyncPerThread;
}

void BM_paired(benchmark::State &st, int kind, int T)
{
	generate();
	for (auto _ : st) {
		std::string d[2];
		cidstore_t *s[2] = {nullptr, nullptr};
		for (int i = 0; i < 2; i++) {
			if (kind == 2) {
				std::filesystem::create_directories(cfg.dir);
				char tmpl[512];
				std::snprintf(tmpl, sizeof tmpl, "%s/m%d-XXXXXX", cfg.dir.c_str(), i);
				if (!mkdtemp(tmpl)) {
					st.SkipWithError("mkdtemp failed");
					return;
				}
				d[i] = tmpl;
			}
			uint64_t expected = kind == 0 ? cfg.keys : kind == 1 ? g_new.size() : 0;
			s[i] = open_store(i == 0 || cfg.null_test, kind == 2 ? d[i].c_str() : nullptr, expected);
			if (!s[i]) {
				st.SkipWithError("cidstore_open failed");
				return;
			}
		}
		if (kind == 0) // prefill, untimed
			for (int i = 0; i < 2; i++)
				for (auto &e : g_kv)
					cidstore_insert(s[i], &e.k, &e.v);
		std::vector<Sample> smp[2];
		std::string err;
		Work fn = kind == 0 ? lookup_block : kind == 1 ? insert_block : sync_insert_block;
		bool ok = run_paired(s, T, fn, smp, &err);
		for (int i = 0; i < 2; i++) {
			cidstore_close(s[i]);
			if (!d[i].empty())
				std::filesystem::remove_all(d[i]);
		}
		if (!ok) {
			st.SkipWithError(err.c_str());
			return;
		}
		report(st, smp);
	}
}

std::vector<int> parse_list(const char *s)
{
	std::vector<int> v;
	for (const char *p = s; *p;) {
		v.push_back(std::atoi(p));
		const char *c = std::strchr(p, ',');
		if (!c)
			break;
		p = c + 1;
	}
	return v;
}

size_t parse_count(const char *s)
{
	char *end;
	double x = std::strtod(s, &end);
	if (*end == 'M' || *end == 'm')
		x *= 1 << 20;
	else if (*end == 'K' || *end == 'k')
		x *= 1 << 10;
	return (size_t)x;
}

} // namespace

int main(int argc, char **argv)
{
	std::vector<char *> rest{argv[0]};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!std::strncmp(a, "--keys=", 7))
			cfg.keys = parse_count(a + 7);
		else if (!std::strncmp(a, "--rounds=", 9))
			cfg.rounds = std::max(1, std::atoi(a + 9));
		else if (!std::strncmp(a, "--threads=", 10))
			cfg.threads = parse_list(a + 10);
		else if (!std::strncmp(a, "--dir=", 6))
			cfg.dir = a + 6;
		else if (!std::strcmp(a, "--null"))
			cfg.null_test = true;
		else
			rest.push_back(argv[i]);
	}
	if (cfg.rounds > 64) // sync_insert's key blocks: 64 threads a round at most
		cfg.rounds = 64;
	const char *kinds[] = {"lookup", "insert", "sync_insert"};
	for (int kind = 0; kind < 3; kind++)
		for (int T : cfg.threads) {
			std::string name = std::string(kinds[kind]) + "/threads:" + std::to_string(T);
			benchmark::RegisterBenchmark(name.c_str(),
						     [kind, T](benchmark::State &st) { BM_paired(st, kind, T); })
				->Iterations(1)
				->UseManualTime()
				->Unit(benchmark::kMillisecond);
		}
	int ac = (int)rest.size();
	benchmark::Initialize(&ac, rest.data());
	benchmark::AddCustomContext("cidstore_version", cidstore_version());
	benchmark::AddCustomContext("keys", std::to_string(cfg.keys));
	benchmark::AddCustomContext("rounds", std::to_string(cfg.rounds));
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
