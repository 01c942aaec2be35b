// bench_durable.cc — cidstore's durable path against RocksDB, in one binary.
//
// Public API only (cidstore.h); C++17; Google Benchmark; JSON output.
//
// Workloads (every contender uses the same pre-generated random 32-byte keys
// and 32-byte values, xoshiro256** with a fixed seed):
//
//   insert/<contender>/dur:<d>/threads:<T>
//       T threads insert distinct new keys into a store that starts empty in
//       a fresh directory, for --seconds of wall time (each thread walks its
//       own slice of the key array).  items_per_second = inserts / wall time.
//       cidstore_nometrics: the same with opts.metrics = false (the cost
//       of recording metrics, compared in the same run).
//       cidstore: dur:mem   (opts.dir = NULL: the in-memory store, the
//                           reference dur:none is compared with)
//       cidstore: dur:none  (opts.dir set, DURABILITY_NONE: checkpoint-only;
//                            close writes the checkpoint, counted in close_s)
//                 dur:async (DURABILITY_ASYNC; opts.segment_bytes = --segment-mib,
//                            16 MiB by default, so the run rotates segments)
//                 dur:sync  (DURABILITY_SYNC; group commit)
//       rocksdb:  dur:async = WriteOptions.sync=false, dur:sync = sync=true,
//                 WAL on, default Options (+create_if_missing), one DB per
//                 run in a fresh directory.
//       Counters: fsyncs_per_op (cidstore: cidstore_stats.wal_fsyncs delta;
//       RocksDB: the "syncs" of the Cumulative WAL line of rocksdb.dbstats,
//       which prints counts >= 10000 rounded to thousands ("14K")),
//       sync_s (cidstore_sync / SyncWAL after the timed part), close_s,
//       segments (WAL bytes written / segment size), checkpoints, load_avg_1m.
//
//   recovery/<contender>/n:<N>/log:<L>/cache:<warm|cold>
//       A child process (fork + exec of this binary, so no library thread
//       pool is inherited half-dead) builds the data and signals readiness
//       through a pipe; the parent SIGKILLs it and times the reopen.
//       cidstore: ASYNC store (automatic checkpoints off), N keys inserted by
//       2 threads, cidstore_checkpoint, L more inserts (ASYNC), cidstore_sync.
//       Parent: cidstore_open (timed: open_s), count by cidstore_scan
//       (count_s); then untimed checkpoint + close and a second timed open
//       that loads a checkpoint only (ckpt_open_s), from which
//       log_replay_s = open_s - ckpt_open_s * N / (N + L) and
//       log_records_per_s = L / log_replay_s are estimated.
//       RocksDB: N keys in WriteBatches of 1000, Flush() (the analogue of
//       the checkpoint), L single Puts (sync=false), SyncWAL().  Parent:
//       DB::Open (open_s), full iteration count (count_s).
//       The manual iteration time is open_s + count_s.  cache:cold (--cold)
//       drops the store's files from the page cache (posix_fadvise
//       DONTNEED after SIGKILL; the files are synced) before the open.
//
//   fdatasync/disk/mode:<overwrite|append>/n:<K>
//       K times: pwrite 4 KiB (into a pre-zeroed, fsynced file, or appending
//       so the file grows) + fdatasync; counters p50_us, p99_us, mean_us.
//
// Run with --help for the options.  Data directories go under --dir
// (default /work/tmp-dbench) and are removed after each run.
#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <cidstore.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include "../xoshiro.h"

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------
struct Config {
	std::string dir = "/work/tmp-dbench";
	double seconds = 3.0;
	std::vector<int> threads = {1, 2, 8, 32};
	uint64_t tput_keys = 16u << 20; // key slots for the timed insert runs
	uint64_t rec_n = 16u << 20;     // recovery: keys in the checkpoint
	uint64_t rec_log = 2u << 20;    // recovery: log records after it
	uint64_t segment_mib = 16;
	int fsync_loops = 1000;
	uint64_t store_seed = 0;     // opts.seed of the recovery stores (0: random per open)
	unsigned open_depth = 0;     // opts.initial_depth of the timed reopen
	unsigned insert_depth = 0;   // opts.initial_depth of the insert runs (0: default)
	bool cold = false;
	bool quick = false;
	uint64_t seed = 0x5eed0001;
};
Config cfg;

uint64_t parse_count(const std::string &s)
{
	char *end = nullptr;
	double v = std::strtod(s.c_str(), &end);
	if (end && (*end == 'M' || *end == 'm'))
		v *= 1 << 20;
	else if (end && (*end == 'K' || *end == 'k'))
		v *= 1 << 10;
	return (uint64_t)v;
}

std::string fmt_count(uint64_t n)
{
	if (n % (1u << 20) == 0)
		return std::to_string(n >> 20) + "M";
	if (n % 1024 == 0)
		return std::to_string(n >> 10) + "K";
	return std::to_string(n);
}

double now_s()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double load_avg()
{
	double l = 0;
	if (FILE *f = std::fopen("/proc/loadavg", "r")) {
		if (std::fscanf(f, "%lf", &l) != 1)
			l = 0;
		std::fclose(f);
	}
	return l;
}

// ---------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------
struct KV {
	cid_t k, v;
};
static_assert(sizeof(KV) == 64, "32-byte key + 32-byte value");

// rotl, Xoshiro256: bench/xoshiro.h

std::vector<KV> g_keys;

// Generates keys once (the largest count any registered benchmark needs).
const std::vector<KV> &keys(uint64_t n)
{
	if (g_keys.size() < n) {
		uint64_t from = g_keys.size();
		g_keys.resize(n);
		Xoshiro256 rng(cfg.seed);
		for (uint64_t i = 0; i < from * 8; i++) /* keep earlier keys stable */
			rng.next();
		for (uint64_t i = from; i < n; i++)
			for (int w = 0; w < 4; w++) {
				g_keys[i].k.w[w] = rng.next();
				g_keys[i].v.w[w] = rng.next();
			}
	}
	return g_keys;
}

rocksdb::Slice kslice(const KV &kv) { return rocksdb::Slice((const char *)&kv.k, 32); }
rocksdb::Slice vslice(const KV &kv) { return rocksdb::Slice((const char *)&kv.v, 32); }

// ---------------------------------------------------------------------
// Directories
// ---------------------------------------------------------------------
std::string fresh_dir(const std::string &tag)
{
	fs::create_directories(cfg.dir);
	std::string tmpl = cfg.dir + "/" + tag + "-XXXXXX";
	std::vector<char> buf(tmpl.begin(), tmpl.end());
	buf.push_back(0);
	if (!mkdtemp(buf.data())) {
		std::perror("mkdtemp");
		std::exit(2);
	}
	return buf.data();
}

void remove_dir(const std::string &d)
{
	std::error_code ec;
	fs::remove_all(d, ec);
}

uint64_t dir_bytes(const std::string &d)
{
	uint64_t n = 0;
	std::error_code ec;
	for (auto &e : fs::recursive_directory_iterator(d, ec))
		if (e.is_regular_file(ec))
			n += e.file_size(ec);
	return n;
}

// Drops every file of d from the page cache (they must be clean: synced).
void drop_cache(const std::string &d)
{
	std::error_code ec;
	for (auto &e : fs::recursive_directory_iterator(d, ec)) {
		if (!e.is_regular_file(ec))
			continue;
		int fd = open(e.path().c_str(), O_RDONLY);
		if (fd < 0)
			continue;
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
}

// ---------------------------------------------------------------------
// Timed multi-threaded insert loop
// ---------------------------------------------------------------------
// Thread t of T walks keys [t*K/T, (t+1)*K/T) until the deadline (if
// seconds > 0) or the end of its slice; the clock is read every
// check_mask + 1 operations (every one for SYNC runs).  op(i) returns 1 when
// it inserted, anything else is an error.
struct RunResult {
	uint64_t ops = 0;
	double wall = 0;
	bool error = false;
	bool exhausted = false;
	std::string msg;
};

RunResult run_threads(int T, uint64_t begin, uint64_t end, double seconds,
		      const std::function<int(uint64_t)> &op, uint64_t check_mask = 31)
{
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, nullptr, T + 1);
	std::vector<uint64_t> done(T * 8, 0); // padded per thread
	std::atomic<bool> failed{false};
	std::atomic<bool> exhausted{false};
	std::atomic<int> err_code{0};
	std::vector<std::thread> th;
	uint64_t K = end - begin;
	for (int t = 0; t < T; t++) {
		th.emplace_back([&, t] {
			uint64_t lo = begin + K * t / T, hi = begin + K * (t + 1) / T;
			pthread_barrier_wait(&bar);
			double deadline = seconds > 0 ? now_s() + seconds : 0;
			uint64_t i = lo;
			for (; i < hi; i++) {
				int rc = op(i);
				if (rc != 1) {
					err_code.store(rc);
					failed.store(true);
					break;
				}
				if (deadline > 0 && (i & check_mask) == check_mask && now_s() >= deadline) {
					i++;
					break;
				}
			}
			if (i >= hi && deadline > 0)
				exhausted.store(true);
			done[t * 8] = i - lo;
		});
	}
	pthread_barrier_wait(&bar);
	double t0 = now_s();
	for (auto &x : th)
		x.join();
	RunResult r;
	r.wall = now_s() - t0;
	for (int t = 0; t < T; t++)
		r.ops += done[t * 8];
	r.error = failed.load();
	r.exhausted = exhausted.load();
	if (r.error)
		r.msg = std::string("insert failed: ") + cidstore_strerror(err_code.load()) +
			" (" + std::to_string(err_code.load()) + ")";
	pthread_barrier_destroy(&bar);
	return r;
}

// ---------------------------------------------------------------------
// insert: cidstore
// ---------------------------------------------------------------------
// mem: the in-memory store (opts.dir = NULL), the reference of dur:none.
// metrics false: opts.metrics off (insert/cidstore_nometrics/...), the
// cost of recording metrics against the same run with them on.
void BM_insert_cidstore(benchmark::State &st, cidstore_durability_t dur, int T, bool mem = false,
			bool metrics = true)
{
	const auto &kv = keys(cfg.tput_keys);
	for (auto _ : st) {
		std::string d = fresh_dir("cid");
		cidstore_options_t o;
		cidstore_options_init(&o);
		o.dir = mem ? nullptr : d.c_str();
		o.durability = dur;
		o.segment_bytes = cfg.segment_mib << 20;
		o.initial_depth = cfg.insert_depth;
		o.metrics = metrics;
		cidstore_t *s = nullptr;
		int rc = cidstore_open(&o, &s);
		if (rc < 0) {
			st.SkipWithError((std::string("cidstore_open: ") + cidstore_strerror(rc)).c_str());
			remove_dir(d);
			break;
		}
		cidstore_stats_t s0, s1;
		cidstore_stats(s, &s0);
		double la = load_avg();
		RunResult r = run_threads(T, 0, kv.size(), cfg.seconds, [&](uint64_t i) {
			return cidstore_insert(s, &kv[i].k, &kv[i].v);
		}, dur == CIDSTORE_DURABILITY_SYNC ? 0 : 31);
		st.SetIterationTime(r.wall);
		double t = now_s();
		int src = cidstore_sync(s);
		double sync_s = now_s() - t;
		cidstore_stats(s, &s1);
		t = now_s();
		int crc = cidstore_close(s);
		double close_s = now_s() - t;
		uint64_t bytes = dir_bytes(d);
		remove_dir(d);
		if (r.error) {
			st.SkipWithError(r.msg.c_str());
			break;
		}
		if (src < 0 || crc < 0) {
			st.SkipWithError("cidstore_sync/close failed");
			break;
		}
		if (s1.keys != r.ops) {
			st.SkipWithError(("stats.keys " + std::to_string(s1.keys) + " != inserts " +
					  std::to_string(r.ops)).c_str());
			break;
		}
		st.SetItemsProcessed(r.ops);
		st.counters["ops"] = r.ops;
		st.counters["fsyncs"] = s1.wal_fsyncs - s0.wal_fsyncs;
		st.counters["fsyncs_per_op"] = r.ops ? double(s1.wal_fsyncs - s0.wal_fsyncs) / r.ops : 0;
		st.counters["wal_records"] = s1.wal_records - s0.wal_records;
		st.counters["segments"] =
			double(s1.wal_records - s0.wal_records) * 128.0 / double(cfg.segment_mib << 20);
		st.counters["checkpoints"] = s1.checkpoints - s0.checkpoints;
		st.counters["sync_s"] = sync_s;
		st.counters["close_s"] = close_s;
		st.counters["dir_bytes_after"] = bytes;
		st.counters["threads_n"] = T;
		st.counters["exhausted"] = r.exhausted;
		st.counters["load_avg_1m"] = la;
	}
}

// ---------------------------------------------------------------------
// insert: RocksDB
// ---------------------------------------------------------------------
uint64_t rocks_wal_syncs(rocksdb::DB *db)
{
	std::string s;
	if (!db->GetProperty("rocksdb.dbstats", &s))
		return 0;
	// "Cumulative WAL: 1000 writes, 1000 syncs, 1.00 writes per sync, ..."
	auto p = s.find("Cumulative WAL:");
	if (p == std::string::npos)
		return 0;
	auto q = s.find("writes,", p);
	if (q == std::string::npos)
		return 0;
	// Numbers >= 10000 are printed as "14K" / "3M" (NumberToHumanString):
	// then the count is only good to 3 digits.
	char *end = nullptr;
	double v = std::strtod(s.c_str() + q + 7, &end);
	if (end && *end == 'K')
		v *= 1e3;
	else if (end && *end == 'M')
		v *= 1e6;
	else if (end && *end == 'G')
		v *= 1e9;
	return (uint64_t)v;
}

void BM_insert_rocksdb(benchmark::State &st, bool sync, int T)
{
	const auto &kv = keys(cfg.tput_keys);
	for (auto _ : st) {
		std::string d = fresh_dir("rdb");
		rocksdb::Options opt;
		opt.create_if_missing = true;
		rocksdb::DB *db = nullptr;
		rocksdb::Status s = rocksdb::DB::Open(opt, d, &db);
		if (!s.ok()) {
			st.SkipWithError(("DB::Open: " + s.ToString()).c_str());
			remove_dir(d);
			break;
		}
		rocksdb::WriteOptions wo;
		wo.sync = sync;
		std::atomic<bool> bad{false};
		std::string bad_msg;
		double la = load_avg();
		RunResult r = run_threads(T, 0, kv.size(), cfg.seconds, [&](uint64_t i) {
			rocksdb::Status ps = db->Put(wo, kslice(kv[i]), vslice(kv[i]));
			if (!ps.ok()) {
				if (!bad.exchange(true))
					bad_msg = ps.ToString();
				return -1;
			}
			return 1;
		}, sync ? 0 : 31);
		st.SetIterationTime(r.wall);
		uint64_t syncs = rocks_wal_syncs(db);
		double t = now_s();
		rocksdb::Status ss = db->SyncWAL();
		double sync_s = now_s() - t;
		t = now_s();
		rocksdb::Status cs = db->Close();
		delete db;
		double close_s = now_s() - t;
		uint64_t bytes = dir_bytes(d);
		remove_dir(d);
		if (r.error) {
			st.SkipWithError(("Put: " + bad_msg).c_str());
			break;
		}
		st.SetItemsProcessed(r.ops);
		st.counters["ops"] = r.ops;
		st.counters["fsyncs"] = syncs;
		st.counters["fsyncs_per_op"] = r.ops ? double(syncs) / r.ops : 0;
		st.counters["sync_s"] = sync_s;
		st.counters["close_s"] = close_s;
		st.counters["dir_bytes_after"] = bytes;
		st.counters["threads_n"] = T;
		st.counters["exhausted"] = r.exhausted;
		st.counters["load_avg_1m"] = la;
		(void)ss;
		(void)cs;
	}
}

// ---------------------------------------------------------------------
// recovery: the child builders (run in a fresh exec'd process)
// ---------------------------------------------------------------------
void child_ready(int fd)
{
	if (fd < 0)
		_exit(0); /* --build-only: exit without close (as good as a crash) */
	char c = 'R';
	if (write(fd, &c, 1) != 1)
		_exit(3);
	for (;;)
		pause(); /* until SIGKILL */
}

[[noreturn]] void child_fail(const char *what, const std::string &why)
{
	std::fprintf(stderr, "bench_durable child: %s: %s\n", what, why.c_str());
	_exit(4);
}

int child_cidstore(const std::string &d, uint64_t N, uint64_t L, int fd)
{
	const auto &kv = keys(N + L);
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = d.c_str();
	o.durability = CIDSTORE_DURABILITY_ASYNC;
	o.checkpoint_wal_bytes = 0; /* exactly one checkpoint, where we say */
	o.seed = cfg.store_seed;
	cidstore_t *s = nullptr;
	int rc = cidstore_open(&o, &s);
	if (rc < 0)
		child_fail("cidstore_open", cidstore_strerror(rc));
	auto ins = [&](uint64_t i) { return cidstore_insert(s, &kv[i].k, &kv[i].v); };
	RunResult r = run_threads(2, 0, N, 0, ins);
	if (r.error)
		child_fail("insert", r.msg);
	if ((rc = cidstore_checkpoint(s)) < 0)
		child_fail("cidstore_checkpoint", cidstore_strerror(rc));
	r = run_threads(2, N, N + L, 0, ins);
	if (r.error)
		child_fail("insert (log)", r.msg);
	if ((rc = cidstore_sync(s)) < 0)
		child_fail("cidstore_sync", cidstore_strerror(rc));
	child_ready(fd);
	return 0;
}

int child_rocksdb(const std::string &d, uint64_t N, uint64_t L, int fd)
{
	const auto &kv = keys(N + L);
	rocksdb::Options opt;
	opt.create_if_missing = true;
	rocksdb::DB *db = nullptr;
	rocksdb::Status s = rocksdb::DB::Open(opt, d, &db);
	if (!s.ok())
		child_fail("DB::Open", s.ToString());
	rocksdb::WriteOptions wo;
	for (uint64_t i = 0; i < N;) {
		rocksdb::WriteBatch b;
		for (uint64_t e = std::min(N, i + 1000); i < e; i++)
			b.Put(kslice(kv[i]), vslice(kv[i]));
		if (!(s = db->Write(wo, &b)).ok())
			child_fail("Write", s.ToString());
	}
	if (!(s = db->Flush(rocksdb::FlushOptions())).ok())
		child_fail("Flush", s.ToString());
	RunResult r = run_threads(2, N, N + L, 0, [&](uint64_t i) {
		return db->Put(wo, kslice(kv[i]), vslice(kv[i])).ok() ? 1 : -1;
	});
	if (r.error)
		child_fail("Put", "failed");
	if (!(s = db->SyncWAL()).ok())
		child_fail("SyncWAL", s.ToString());
	child_ready(fd);
	return 0;
}

// Forks + execs this binary as a builder; returns when it signalled
// readiness and has been SIGKILLed.  Returns "" or an error message.
std::string build_and_kill(const char *which, const std::string &d, uint64_t N, uint64_t L,
			   double *build_s)
{
	int p[2];
	if (pipe(p) < 0)
		return "pipe failed";
	double t0 = now_s();
	pid_t pid = fork();
	if (pid < 0)
		return "fork failed";
	if (pid == 0) {
		close(p[0]);
		std::string a0 = "bench_durable", a1 = std::string("--child=") + which,
			    a2 = "--child-dir=" + d, a3 = "--child-n=" + std::to_string(N),
			    a4 = "--child-log=" + std::to_string(L),
			    a5 = "--child-fd=" + std::to_string(p[1]),
			    a6 = "--seed=" + std::to_string(cfg.seed),
			    a7 = "--store-seed=" + std::to_string(cfg.store_seed);
		char *argv[] = {a0.data(), a1.data(), a2.data(), a3.data(),
				a4.data(), a5.data(), a6.data(), a7.data(), nullptr};
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(p[1]);
	struct pollfd pf = {p[0], POLLIN, 0};
	int pr = poll(&pf, 1, 1800 * 1000);
	char c = 0;
	bool ok = pr == 1 && read(p[0], &c, 1) == 1 && c == 'R';
	*build_s = now_s() - t0;
	close(p[0]);
	kill(pid, SIGKILL);
	int status = 0;
	waitpid(pid, &status, 0);
	if (!ok)
		return "builder child failed or timed out";
	if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		return "builder child did not die by SIGKILL";
	return "";
}

// ---------------------------------------------------------------------
// recovery: the measurements
// ---------------------------------------------------------------------
int count_cb(const cid_t *, const cid_t *, size_t n, void *ctx)
{
	*(uint64_t *)ctx += n ? 1 : 0;
	return 0;
}

void BM_recovery_cidstore(benchmark::State &st, uint64_t N, uint64_t L)
{
	for (auto _ : st) {
		std::string d = fresh_dir("rcid");
		double build_s = 0;
		std::string err = build_and_kill("cidstore", d, N, L, &build_s);
		if (!err.empty()) {
			st.SkipWithError(err.c_str());
			remove_dir(d);
			break;
		}
		uint64_t bytes = dir_bytes(d);
		if (cfg.cold)
			drop_cache(d);
		double la = load_avg();
		cidstore_options_t o;
		cidstore_options_init(&o);
		o.dir = d.c_str();
		o.durability = CIDSTORE_DURABILITY_ASYNC;
		o.checkpoint_wal_bytes = 0;
		o.initial_depth = cfg.open_depth;
		o.seed = cfg.store_seed;
		cidstore_t *s = nullptr;
		double t = now_s();
		int rc = cidstore_open(&o, &s);
		double open_s = now_s() - t;
		if (rc < 0) {
			st.SkipWithError((std::string("cidstore_open: ") + cidstore_strerror(rc)).c_str());
			remove_dir(d);
			break;
		}
		uint64_t cnt = 0;
		t = now_s();
		cidstore_scan(s, count_cb, &cnt);
		double count_s = now_s() - t;
		st.SetIterationTime(open_s + count_s);
		cidstore_stats_t ss;
		cidstore_stats(s, &ss);
		// Second open from a checkpoint alone, to split open_s.
		rc = cidstore_checkpoint(s);
		cidstore_close(s);
		s = nullptr;
		if (cfg.cold)
			drop_cache(d);
		t = now_s();
		int rc2 = cidstore_open(&o, &s);
		double ckpt_open_s = now_s() - t;
		if (rc2 == 0)
			cidstore_close(s);
		remove_dir(d);
		if (cnt != N + L || ss.keys != N + L) {
			st.SkipWithError(("recovered " + std::to_string(cnt) + " keys (stats " +
					  std::to_string(ss.keys) + "), expected " +
					  std::to_string(N + L)).c_str());
			break;
		}
		if (rc < 0 || rc2 < 0) {
			st.SkipWithError("checkpoint / second open failed");
			break;
		}
		double replay_s = open_s - ckpt_open_s * double(N) / double(N + L);
		st.SetItemsProcessed(N + L);
		st.counters["open_s"] = open_s;
		st.counters["count_s"] = count_s;
		st.counters["open_count_s"] = open_s + count_s;
		st.counters["ckpt_open_s"] = ckpt_open_s;
		st.counters["log_replay_s"] = replay_s;
		st.counters["log_records_per_s"] = replay_s > 0 ? L / replay_s : 0;
		st.counters["keys_per_s_open"] = (N + L) / open_s;
		st.counters["build_s"] = build_s;
		st.counters["dir_bytes"] = bytes;
		st.counters["load_avg_1m"] = la;
	}
}

void BM_recovery_rocksdb(benchmark::State &st, uint64_t N, uint64_t L)
{
	for (auto _ : st) {
		std::string d = fresh_dir("rrdb");
		double build_s = 0;
		std::string err = build_and_kill("rocksdb", d, N, L, &build_s);
		if (!err.empty()) {
			st.SkipWithError(err.c_str());
			remove_dir(d);
			break;
		}
		uint64_t bytes = dir_bytes(d);
		if (cfg.cold)
			drop_cache(d);
		double la = load_avg();
		rocksdb::Options opt;
		rocksdb::DB *db = nullptr;
		double t = now_s();
		rocksdb::Status s = rocksdb::DB::Open(opt, d, &db);
		double open_s = now_s() - t;
		if (!s.ok()) {
			st.SkipWithError(("DB::Open: " + s.ToString()).c_str());
			remove_dir(d);
			break;
		}
		uint64_t cnt = 0;
		t = now_s();
		{
			std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
			for (it->SeekToFirst(); it->Valid(); it->Next())
				cnt++;
		}
		double count_s = now_s() - t;
		st.SetIterationTime(open_s + count_s);
		db->Close();
		delete db;
		remove_dir(d);
		if (cnt != N + L) {
			st.SkipWithError(("recovered " + std::to_string(cnt) + " keys, expected " +
					  std::to_string(N + L)).c_str());
			break;
		}
		st.SetItemsProcessed(N + L);
		st.counters["open_s"] = open_s;
		st.counters["count_s"] = count_s;
		st.counters["open_count_s"] = open_s + count_s;
		st.counters["keys_per_s_open"] = (N + L) / open_s;
		st.counters["build_s"] = build_s;
		st.counters["dir_bytes"] = bytes;
		st.counters["load_avg_1m"] = la;
	}
}

// ---------------------------------------------------------------------
// fdatasync latency of this disk
// ---------------------------------------------------------------------
// The disk's serial commit rate measured the way the WAL commits at 1
// thread: one small (128-byte, a record) overwrite at the next offset of a
// preallocated, pre-zeroed, fsynced file + fdatasync, in a loop of K;
// items_per_second is the serial rate the SYNC 1-thread target is against.
void BM_fdatasync_small(benchmark::State &st, int K)
{
	for (auto _ : st) {
		std::string d = fresh_dir("fsync128");
		std::string f = d + "/f";
		int fd = open(f.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) {
			st.SkipWithError("open failed");
			remove_dir(d);
			break;
		}
		size_t bytes = ((size_t)K * 128 + 4095) / 4096 * 4096;
		std::vector<char> zero(bytes, 0);
		if (posix_fallocate(fd, 0, (off_t)bytes) != 0 ||
		    pwrite(fd, zero.data(), bytes, 0) != (ssize_t)bytes)
			st.SkipWithError("preallocate failed");
		fsync(fd);
		int dfd = open(d.c_str(), O_RDONLY | O_DIRECTORY);
		fsync(dfd);
		close(dfd);
		char rec[128];
		std::vector<double> lat(K);
		double la = load_avg();
		double t0 = now_s();
		for (int i = 0; i < K; i++) {
			std::memset(rec, (i & 0xff) | 1, sizeof rec);
			double t = now_s();
			if (pwrite(fd, rec, sizeof rec, (off_t)i * 128) != (ssize_t)sizeof rec ||
			    fdatasync(fd) != 0) {
				st.SkipWithError("pwrite/fdatasync failed");
				break;
			}
			lat[i] = now_s() - t;
		}
		double total = now_s() - t0;
		close(fd);
		remove_dir(d);
		st.SetIterationTime(total);
		std::sort(lat.begin(), lat.end());
		st.SetItemsProcessed(K);
		st.counters["p50_us"] = lat[K / 2] * 1e6;
		st.counters["p99_us"] = lat[std::min(K - 1, K * 99 / 100)] * 1e6;
		st.counters["mean_us"] = total / K * 1e6;
		st.counters["load_avg_1m"] = la;
	}
}

void BM_fdatasync(benchmark::State &st, bool append, int K)
{
	for (auto _ : st) {
		std::string d = fresh_dir("fsync");
		std::string f = d + "/f";
		int fd = open(f.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0) {
			st.SkipWithError("open failed");
			remove_dir(d);
			break;
		}
		alignas(4096) static char buf[4096];
		std::memset(buf, 0, sizeof buf);
		if (!append) {
			for (int i = 0; i < K; i++)
				if (pwrite(fd, buf, 4096, (off_t)i * 4096) != 4096)
					st.SkipWithError("pwrite failed");
			fsync(fd);
			int dfd = open(d.c_str(), O_RDONLY | O_DIRECTORY);
			fsync(dfd);
			close(dfd);
		}
		std::vector<double> lat(K);
		double la = load_avg();
		double t0 = now_s();
		for (int i = 0; i < K; i++) {
			std::memset(buf, i & 0xff, 64);
			double t = now_s();
			if (pwrite(fd, buf, 4096, (off_t)i * 4096) != 4096 || fdatasync(fd) != 0) {
				st.SkipWithError("pwrite/fdatasync failed");
				break;
			}
			lat[i] = now_s() - t;
		}
		double total = now_s() - t0;
		close(fd);
		remove_dir(d);
		st.SetIterationTime(total);
		std::vector<double> v = lat;
		std::sort(v.begin(), v.end());
		st.SetItemsProcessed(K);
		st.counters["p50_us"] = v[K / 2] * 1e6;
		st.counters["p99_us"] = v[std::min(K - 1, K * 99 / 100)] * 1e6;
		st.counters["max_us"] = v[K - 1] * 1e6;
		st.counters["mean_us"] = total / K * 1e6;
		st.counters["load_avg_1m"] = la;
	}
}

// ---------------------------------------------------------------------
// Registration and main
// ---------------------------------------------------------------------
void register_all()
{
	auto reg = [](const std::string &name, auto fn) {
		benchmark::RegisterBenchmark(name.c_str(), fn)
			->Iterations(1)
			->UseManualTime()
			->Unit(benchmark::kMillisecond);
	};
	reg("fdatasync/disk/mode:overwrite128/n:" + std::to_string(cfg.fsync_loops),
	    [](benchmark::State &st) { BM_fdatasync_small(st, cfg.fsync_loops); });
	for (bool append : {false, true})
		reg(std::string("fdatasync/disk/mode:") + (append ? "append" : "overwrite") +
			    "/n:" + std::to_string(cfg.fsync_loops),
		    [append](benchmark::State &st) { BM_fdatasync(st, append, cfg.fsync_loops); });
	struct D {
		const char *name;
		cidstore_durability_t cid;
		int rocks; // -1: no RocksDB counterpart, 0: sync=false, 1: sync=true
	} durs[] = {{"none", CIDSTORE_DURABILITY_NONE, -1},
		    {"async", CIDSTORE_DURABILITY_ASYNC, 0},
		    {"sync", CIDSTORE_DURABILITY_SYNC, 1}};
	for (int T : cfg.threads)
		reg("insert/cidstore/dur:mem/threads:" + std::to_string(T),
		    [T](benchmark::State &st) {
			    BM_insert_cidstore(st, CIDSTORE_DURABILITY_NONE, T, true);
		    });
	for (int T : cfg.threads)
		reg("insert/cidstore_nometrics/dur:mem/threads:" + std::to_string(T),
		    [T](benchmark::State &st) {
			    BM_insert_cidstore(st, CIDSTORE_DURABILITY_NONE, T, true, false);
		    });
	for (const D &dd : durs)
		for (int T : cfg.threads) {
			cidstore_durability_t dur = dd.cid;
			reg(std::string("insert/cidstore/dur:") + dd.name + "/threads:" + std::to_string(T),
			    [dur, T](benchmark::State &st) { BM_insert_cidstore(st, dur, T); });
			reg(std::string("insert/cidstore_nometrics/dur:") + dd.name + "/threads:" +
				    std::to_string(T),
			    [dur, T](benchmark::State &st) {
				    BM_insert_cidstore(st, dur, T, false, false);
			    });
			if (dd.rocks >= 0) {
				bool sync = dd.rocks == 1;
				reg(std::string("insert/rocksdb/dur:") + dd.name + "/threads:" +
					    std::to_string(T),
				    [sync, T](benchmark::State &st) { BM_insert_rocksdb(st, sync, T); });
			}
		}
	std::string tail = "/n:" + fmt_count(cfg.rec_n) + "/log:" + fmt_count(cfg.rec_log) +
			   "/cache:" + (cfg.cold ? "cold" : "warm");
	uint64_t N = cfg.rec_n, L = cfg.rec_log;
	reg("recovery/cidstore" + tail, [N, L](benchmark::State &st) { BM_recovery_cidstore(st, N, L); });
	reg("recovery/rocksdb" + tail, [N, L](benchmark::State &st) { BM_recovery_rocksdb(st, N, L); });
}

void usage()
{
	std::printf(
		"bench_durable [options] [Google Benchmark options]\n"
		"  --quick              1 s runs, recovery N=1M + 256K log (env CIDSTORE_DBENCH_QUICK=1)\n"
		"  --seconds=S          wall time of each insert run (default 3; quick 1)\n"
		"  --threads=1,2,8,32   thread counts of the insert runs\n"
		"  --tput-keys=16M      key slots for the insert runs (a thread stops early at the end of its slice)\n"
		"  --recovery-keys=16M  keys in the checkpoint (env CIDSTORE_DBENCH_N; quick 1M)\n"
		"  --recovery-log=2M    log records after the checkpoint (quick 256K)\n"
		"  --segment-mib=16     cidstore opts.segment_bytes in MiB for the insert runs\n"
		"  --fsync-loops=1000   iterations of the fdatasync latency loop\n"
		"  --insert-depth=D     opts.initial_depth of the cidstore insert runs (default 0 = library default)\n"
		"  --open-depth=D       opts.initial_depth of the recovery reopen (default 0)\n"
		"  --store-seed=S       opts.seed of the recovery stores, build and reopen (default 0 = random per open)\n"
		"  --cold               drop the store files from the page cache before the timed reopen\n"
		"  --dir=/work/tmp-dbench  where the data directories go (removed after each run)\n"
		"  --seed=S             key generator seed\n"
		"Profiling aids (no benchmark runs):\n"
		"  --build-only=cidstore|rocksdb --child-dir=D --child-n=N --child-log=L\n"
		"                       build the recovery data set in D and _exit without closing\n"
		"  --open-only=D        time one cidstore_open of D (ASYNC) and _exit\n"
		"Names: insert/<cidstore|cidstore_nometrics|rocksdb>/dur:<mem|none|async|sync>/threads:<T>\n"
		"       (cidstore_nometrics: opts.metrics = false),\n"
		"       recovery/<contender>/n:<N>/log:<L>/cache:<warm|cold>,\n"
		"       fdatasync/disk/mode:<overwrite|append>/n:<K>.\n"
		"rocksdb dur:async = WriteOptions.sync=false, dur:sync = sync=true.\n");
}

} // namespace

int main(int argc, char **argv)
{
	std::vector<char *> rest = {argv[0]};
	std::string child, child_dir, open_dir;
	uint64_t child_n = 0, child_log = 0;
	int child_fd = -1;
	bool set_n = false, set_log = false, set_secs = false;
	if (const char *e = std::getenv("CIDSTORE_DBENCH_QUICK"))
		cfg.quick = std::atoi(e) != 0;
	if (const char *e = std::getenv("CIDSTORE_DBENCH_N")) {
		cfg.rec_n = parse_count(e);
		set_n = true;
	}
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto val = [&](const char *pfx) -> const char * {
			size_t n = std::strlen(pfx);
			return a.compare(0, n, pfx) == 0 ? argv[i] + n : nullptr;
		};
		const char *v;
		if (a == "--help" || a == "-h") {
			usage();
			rest.push_back(argv[i]);
		} else if (a == "--quick") {
			cfg.quick = true;
		} else if (a == "--cold") {
			cfg.cold = true;
		} else if ((v = val("--seconds="))) {
			cfg.seconds = std::atof(v);
			set_secs = true;
		} else if ((v = val("--threads="))) {
			cfg.threads.clear();
			std::stringstream ss(v);
			std::string x;
			while (std::getline(ss, x, ','))
				cfg.threads.push_back(std::atoi(x.c_str()));
		} else if ((v = val("--tput-keys="))) {
			cfg.tput_keys = parse_count(v);
		} else if ((v = val("--recovery-keys="))) {
			cfg.rec_n = parse_count(v);
			set_n = true;
		} else if ((v = val("--recovery-log="))) {
			cfg.rec_log = parse_count(v);
			set_log = true;
		} else if ((v = val("--segment-mib="))) {
			cfg.segment_mib = parse_count(v);
		} else if ((v = val("--fsync-loops="))) {
			cfg.fsync_loops = std::max(1, std::atoi(v));
		} else if ((v = val("--dir="))) {
			cfg.dir = v;
		} else if ((v = val("--seed="))) {
			cfg.seed = std::strtoull(v, nullptr, 0);
		} else if ((v = val("--build-only="))) { /* profiling aid */
			child = v;
		} else if ((v = val("--store-seed="))) {
			cfg.store_seed = std::strtoull(v, nullptr, 0);
		} else if ((v = val("--insert-depth="))) {
			cfg.insert_depth = std::atoi(v);
		} else if ((v = val("--open-depth="))) {
			cfg.open_depth = std::atoi(v);
		} else if ((v = val("--open-only="))) { /* profiling aid */
			open_dir = v;
		} else if ((v = val("--child="))) {
			child = v;
		} else if ((v = val("--child-dir="))) {
			child_dir = v;
		} else if ((v = val("--child-n="))) {
			child_n = std::strtoull(v, nullptr, 10);
		} else if ((v = val("--child-log="))) {
			child_log = std::strtoull(v, nullptr, 10);
		} else if ((v = val("--child-fd="))) {
			child_fd = std::atoi(v);
		} else {
			rest.push_back(argv[i]);
		}
	}
	if (!open_dir.empty()) { /* profiling aid: time one reopen of DIR */
		cidstore_options_t o;
		cidstore_options_init(&o);
		o.dir = open_dir.c_str();
		o.durability = CIDSTORE_DURABILITY_ASYNC;
		o.checkpoint_wal_bytes = 0;
		o.initial_depth = cfg.open_depth;
		o.seed = cfg.store_seed;
		cidstore_t *s = nullptr;
		double t = now_s();
		int rc = cidstore_open(&o, &s);
		double open_s = now_s() - t;
		if (rc < 0) {
			std::fprintf(stderr, "cidstore_open: %s\n", cidstore_strerror(rc));
			return 1;
		}
		cidstore_stats_t ss;
		cidstore_stats(s, &ss);
		std::printf("open %.3f s, %" PRIu64 " keys, last LSN %" PRIu64 "\n", open_s, ss.keys,
			    ss.wal_lsn);
		std::fflush(stdout);
		_exit(0); /* leave the directory exactly as it is */
	}
	if (!child.empty()) {
		if (child == "cidstore")
			return child_cidstore(child_dir, child_n, child_log, child_fd);
		if (child == "rocksdb")
			return child_rocksdb(child_dir, child_n, child_log, child_fd);
		return 2;
	}
	if (cfg.quick) {
		if (!set_n)
			cfg.rec_n = 1u << 20;
		if (!set_log)
			cfg.rec_log = 256u << 10;
		if (!set_secs)
			cfg.seconds = 1.0;
	}
	register_all();
	int rargc = (int)rest.size();
	rest.push_back(nullptr);
	benchmark::Initialize(&rargc, rest.data());
	if (benchmark::ReportUnrecognizedArguments(rargc, rest.data()))
		return 1;
	benchmark::AddCustomContext("recovery_keys", std::to_string(cfg.rec_n));
	benchmark::AddCustomContext("recovery_log", std::to_string(cfg.rec_log));
	benchmark::AddCustomContext("insert_seconds", std::to_string(cfg.seconds));
	benchmark::AddCustomContext("segment_mib", std::to_string(cfg.segment_mib));
	benchmark::AddCustomContext("cidstore_version", cidstore_version());
	benchmark::AddCustomContext("data_dir", cfg.dir);
	benchmark::AddCustomContext("insert_depth", std::to_string(cfg.insert_depth));
	benchmark::AddCustomContext("open_depth", std::to_string(cfg.open_depth));
	benchmark::AddCustomContext("store_seed", std::to_string(cfg.store_seed));
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	std::error_code ec;
	fs::remove(cfg.dir, ec); /* only if empty */
	return 0;
}
