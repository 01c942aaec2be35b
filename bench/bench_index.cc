// bench_index.cc — the in-memory index against its anchors, in one binary.
//
// Workloads (all on the same pre-generated keys, see Data below):
//   insert      N single-valued random keys into a table that starts empty
//               (bytes_per_key counter: RSS delta around that fill / N)
//   lookup      every one of the N keys once, in random order, on a table
//               prefilled (untimed) with them
//   mix90_10    N operations on a prefilled table: 9 of 10 are positive
//               lookups (random order), 1 of 10 inserts a new key
//   insert_seq, lookup_seq
//               insert / lookup with sequential keys {0,0,0,i}, every
//               contender (routing must not trust keys to be random)
//   neg_lookup  N lookups of keys never inserted (the N/10 extra keys,
//               each about 10 times, random order); every one must miss
//   churn50_50  on the prefilled table each thread inserts keys of its own
//               share of the extra keys and deletes each one 1024 pairs
//               later: half inserts, half deletes, table size ~constant
//   lookup_latency
//               T >= 2 only: thread 0 inserts the extra keys (then deletes
//               them, then inserts again...) while T-1 threads look up all
//               N keys; one lookup in 8 is timed (clock_gettime pair):
//               counters p50_ns, p99_ns, p999_ns, writer_ops_per_s
//   multiK_insert, multiK_lookup (K = 1, 2, 3, 16, 1000)
//               N/K keys with K values each (N pairs) inserted one pair at
//               a time, then every key's full value set read once; items =
//               values.  Anchors keep a std::vector per key under their
//               own locking; cds_lfht keeps one node per pair (duplicates)
//   lookup_many16, lookup_many64
//               cidstore only: the lookup workload's keys, same order,
//               through cidstore_lookup_many in batches of 16 / 64 keys
//   insert_many64
//               cidstore only: the insert workload through
//               cidstore_insert_many in batches of 64 pairs
//   one_key, one_key_values
//               cidstore only: N distinct values under ONE key (threads
//               split the values), to compare with insert (N single-valued
//               keys); then (1 thread) all N values read back through
//               cidstore_values.  Items = values
// Contenders: cidstore (expected_keys 0: grows from empty),
// cidstore_presized (expected_keys = the keys the run will insert),
// cidstore_serialized (opts.serialized), cidstore_nometrics (opts.metrics
// false: against cidstore, the cost of recording metrics), cds_lfht
// (urcu-memb; "growing" from one bucket with AUTO_RESIZE|ACCOUNTING and
// "presized" to the next power of two >= N, same flags), libcuckoo
// cuckoohash_map, tbb::concurrent_hash_map, and an open-addressing table
// behind one pthread_rwlock or one pthread_mutex.  Keys and values are 32
// bytes for everyone.
//
// Timing: threads split the index range [0, N) into equal slices.  Every
// thread waits on a barrier, reads the clock, works, waits on a second
// barrier and reads the clock again; each reports that wall interval as its
// manual iteration time, so items_per_second = N / wall time whatever the
// thread count.  Results are checked: every lookup must find its key and
// the sum of the values' first words must match the precomputed sum.
//
// Chains: one process runs insert -> lookup -> (cidstore: lookup_many16 ->
// lookup_many64 ->) neg_lookup -> churn50_50 -> lookup_latency -> mix90_10
// for one contender, N and thread count; each
// reuses the table the previous one left holding exactly keys [0, N)
// (churn and latency delete their extra keys again, untimed; a prefill is
// only done when insert is filtered out), and mix runs last.  Multi-value:
// one process per (contender, K, threads) runs multiK_insert ->
// multiK_lookup; insert_many64 runs alone, one_key -> one_key_values (1
// thread).  Before a timed lookup or mix the harness waits until the process
// stops using CPU, so background work (cds_lfht's lazy resize) is not timed.
//
// Watchdog: some anchors crash or hang on this machine (libcuckoo 0.3.1
// segfaults at 4 threads on 2 cores; cds_lfht growing from one bucket
// sometimes stops growing).  So the binary supervises itself: the parent
// generates the keys once, then forks one child per (chain, repetition).
// A child that crashes or outlives --timeout is killed; the runs it had
// finished are kept (the JSON is flushed run by run) and the rest are
// written as failed ("error_occurred": true, "watchdog: ...") instead of
// stalling the whole run.  A fresh process per repetition also keeps the
// RSS measurement clean.  The parent merges the children's Google Benchmark
// JSON into the file named by --benchmark_out.  Run with --help.
#ifndef _LGPL_SOURCE
#define _LGPL_SOURCE 1 /* inline urcu read-side: use the anchor at its best */
#endif
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#include <benchmark/benchmark.h>
#include <libcuckoo/cuckoohash_map.hh>
#include <tbb/concurrent_hash_map.h>

#include <cidstore.h>

#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>
#include "xoshiro.h"

namespace {

// ---------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------
struct KV {
	cid_t k, v;
};
static_assert(sizeof(KV) == 64, "payload must be 64 bytes");

// rotl, Xoshiro256: bench/xoshiro.h

// The anchors' hash: a mix of all 256 bits (cidstore uses its own seeded one).
inline uint64_t hash_cid(const cid_t &k)
{
	uint64_t h = k.w[0] * 0x9e3779b97f4a7c15ULL ^ k.w[1] * 0xc2b2ae3d27d4eb4fULL ^
		     k.w[2] * 0x165667b19e3779f9ULL ^ k.w[3] * 0xd6e8feb86659fd93ULL;
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ULL;
	h ^= h >> 32;
	return h;
}
inline bool cid_eq(const cid_t &a, const cid_t &b)
{
	return ((a.w[0] ^ b.w[0]) | (a.w[1] ^ b.w[1]) | (a.w[2] ^ b.w[2]) | (a.w[3] ^ b.w[3])) == 0;
}

struct PerN {
	size_t n = 0;
	uint32_t *perm = nullptr; // a random permutation of [0, n)
	cid_t *lk = nullptr;      // lk[i] = kv[perm[i]].k: the lookup stream
	uint64_t sum_lookup = 0;  // sum of kv[i].v.w[0], i < n
	uint64_t sum_mix = 0;     // the same over lookups of the 90/10 mix
};

struct Data {
	uint64_t seed = 0x5eedc1d5;
	size_t nmax = 0;
	KV *kv = nullptr; // nmax + nmax/10 random (key, value) pairs (+ 16 spare)
	// kv[0, nmax) as two arrays (cidstore_insert_many takes keys and values
	// apart); only generated when an insert_many benchmark is selected
	cid_t *keys = nullptr, *vals = nullptr;
	// one_key: the key all N values go under (the first spare key)
	const cid_t &one_key() const { return kv[nmax + nmax / 10].k; }
	std::vector<PerN> per;
	const PerN &of(size_t n) const
	{
		for (auto &p : per)
			if (p.n == n)
				return p;
		std::abort();
	}
};
Data g_data;

void *big_alloc(size_t bytes)
{
	void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		std::exit(2);
	}
	return p;
}

void generate(const std::vector<size_t> &sizes, bool soa)
{
	Data &d = g_data;
	d.nmax = *std::max_element(sizes.begin(), sizes.end());
	size_t total = d.nmax + d.nmax / 10 + 16;
	d.kv = static_cast<KV *>(big_alloc(total * sizeof(KV)));
	Xoshiro256 rng(d.seed);
	for (size_t i = 0; i < total; i++)
		for (int j = 0; j < 4; j++) {
			d.kv[i].k.w[j] = rng.next();
			d.kv[i].v.w[j] = rng.next();
		}
	if (soa) {
		d.keys = static_cast<cid_t *>(big_alloc(d.nmax * sizeof(cid_t)));
		d.vals = static_cast<cid_t *>(big_alloc(d.nmax * sizeof(cid_t)));
		for (size_t i = 0; i < d.nmax; i++) {
			d.keys[i] = d.kv[i].k;
			d.vals[i] = d.kv[i].v;
		}
	}
	for (size_t n : sizes) {
		PerN p;
		p.n = n;
		p.perm = static_cast<uint32_t *>(big_alloc(n * sizeof(uint32_t)));
		p.lk = static_cast<cid_t *>(big_alloc(n * sizeof(cid_t)));
		for (size_t i = 0; i < n; i++)
			p.perm[i] = (uint32_t)i;
		for (size_t i = n - 1; i > 0; i--) /* Fisher-Yates */
			std::swap(p.perm[i], p.perm[rng.next() % (i + 1)]);
		for (size_t i = 0; i < n; i++) {
			p.lk[i] = d.kv[p.perm[i]].k;
			uint64_t w = d.kv[p.perm[i]].v.w[0];
			p.sum_lookup += w;
			if (i % 10 != 9)
				p.sum_mix += w;
		}
		d.per.push_back(p);
	}
}

size_t rss_bytes()
{
	FILE *f = std::fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;
	if (f) {
		if (std::fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		std::fclose(f);
	}
	return res * (size_t)sysconf(_SC_PAGESIZE);
}

// Waits (up to 3 s) until the process stops using CPU while this thread
// sleeps: lets a table's background work (cds_lfht's lazy resize worker)
// finish after the untimed prefill, so lookups see the table it settles on.
void settle()
{
	auto cpu = [] {
		timespec ts;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
		return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
	};
	for (int i = 0; i < 150; i++) {
		double c0 = cpu();
		usleep(20000);
		if (cpu() - c0 < 2.0)
			return;
	}
}

std::string allocator_name()
{
	Dl_info info;
	void *m = dlsym(RTLD_DEFAULT, "malloc");
	if (m && dladdr(m, &info) && info.dli_fname) {
		std::string s = info.dli_fname;
		return s.find("jemalloc") != std::string::npos ? "jemalloc (" + s + ")" : "system (" + s + ")";
	}
	return "unknown";
}

std::string read_first_line(const char *path)
{
	std::ifstream f(path);
	std::string s;
	std::getline(f, s);
	return s;
}

// ---------------------------------------------------------------------
// Contenders.  Each: std::string open(size_t n) ("" on success),
// thread_enter/thread_exit, bool insert(k, v) (true: newly added),
// bool lookup(k, out) (true: found).
// ---------------------------------------------------------------------
struct CidstoreTable {
	bool serialized, presized, metrics;
	size_t nkeys = 0; // keys the run will insert (set by bench before open)
	cidstore_t *s = nullptr;
	CidstoreTable(bool ser, bool pre, bool met = true) : serialized(ser), presized(pre), metrics(met) {}
	std::string open(size_t)
	{
		cidstore_options_t o;
		cidstore_options_init(&o);
		o.dir = nullptr;
		o.serialized = serialized;
		o.metrics = metrics; // cidstore_nometrics: the cost of recording metrics
		// growth from empty is what `cidstore` measures; presized only on request
		o.expected_keys = presized ? nkeys : 0;
		int rc = cidstore_open(&o, &s);
		if (rc != 0)
			return std::string("cidstore_open: ") + cidstore_strerror(rc);
		return "";
	}
	void thread_enter() {}
	void thread_exit() {}
	bool insert(const cid_t &k, const cid_t &v) { return cidstore_insert(s, &k, &v) == 1; }
	bool lookup(const cid_t &k, cid_t *out) { return cidstore_lookup(s, &k, out, 1) == 1; }
	bool erase(const cid_t &k) { return cidstore_delete_key(s, &k) == 1; }
	// Multi-value: cidstore's native set per key.
	static constexpr bool has_multi = true;
	bool insert_mv(const cid_t &k, const cid_t &v) { return cidstore_insert(s, &k, &v) == 1; }
	long lookup_mv(const cid_t &k, cid_t *out, size_t cap) { return cidstore_lookup(s, &k, out, cap); }
	// Batched calls (lookup_many*, insert_many*): cidstore only.
	int lookup_many(const cid_t *keys, size_t n, cid_t *out, long *counts)
	{
		return cidstore_lookup_many(s, keys, n, out, 1, counts);
	}
	long insert_many(const cid_t *keys, const cid_t *vals, size_t n, int *results)
	{
		return cidstore_insert_many(s, keys, vals, n, results);
	}
	// one_key_values: every value of k through cidstore_values; *sum gets
	// the sum of their first words.
	static int sum_chunk(const cid_t *v, size_t n, void *ctx)
	{
		uint64_t x = 0;
		for (size_t i = 0; i < n; i++)
			x += v[i].w[0];
		*static_cast<uint64_t *>(ctx) += x;
		return 0;
	}
	long values_sum(const cid_t &k, uint64_t *sum) { return cidstore_values(s, &k, sum_chunk, sum); }
};

struct LfhtNode {
	cds_lfht_node node;
	cid_t k, v;
	rcu_head rcu; // deferred free after cds_lfht_del (churn)
};
void lfht_free_node(rcu_head *h) { std::free(caa_container_of(h, LfhtNode, rcu)); }
int lfht_match(cds_lfht_node *n, const void *key)
{
	return cid_eq(caa_container_of(n, LfhtNode, node)->k, *static_cast<const cid_t *>(key));
}
// key: the LfhtNode being added; equal when key and value both are.
int lfht_match_pair(cds_lfht_node *n, const void *key)
{
	const LfhtNode *a = caa_container_of(n, LfhtNode, node);
	const LfhtNode *b = static_cast<const LfhtNode *>(key);
	return cid_eq(a->k, b->k) && cid_eq(a->v, b->v);
}

struct LfhtTable {
	bool presized;
	unsigned long initial;
	cds_lfht *ht = nullptr;
	LfhtTable(bool pre, unsigned long init) : presized(pre), initial(init) {}
	std::string open(size_t n)
	{
		unsigned long size = initial;
		if (presized)
			for (size = 1; size < n; size <<= 1) {}
		ht = cds_lfht_new_flavor(size, 1, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
					 &urcu_memb_flavor, nullptr);
		return ht ? "" : "cds_lfht_new failed";
	}
	void thread_enter() { urcu_memb_register_thread(); }
	void thread_exit() { urcu_memb_unregister_thread(); }
	bool insert(const cid_t &k, const cid_t &v)
	{
		auto *e = static_cast<LfhtNode *>(std::malloc(sizeof(LfhtNode)));
		cds_lfht_node_init(&e->node);
		e->k = k;
		e->v = v;
		urcu_memb_read_lock();
		cds_lfht_node *r = cds_lfht_add_unique(ht, hash_cid(k), lfht_match, &e->k, &e->node);
		urcu_memb_read_unlock();
		if (r != &e->node) {
			std::free(e);
			return false;
		}
		return true;
	}
	bool lookup(const cid_t &k, cid_t *out)
	{
		cds_lfht_iter it;
		urcu_memb_read_lock();
		cds_lfht_lookup(ht, hash_cid(k), lfht_match, &k, &it);
		cds_lfht_node *n = cds_lfht_iter_get_node(&it);
		if (n)
			*out = caa_container_of(n, LfhtNode, node)->v;
		urcu_memb_read_unlock();
		return n != nullptr;
	}
	bool erase(const cid_t &k)
	{
		cds_lfht_iter it;
		bool ok = false;
		urcu_memb_read_lock();
		cds_lfht_lookup(ht, hash_cid(k), lfht_match, &k, &it);
		cds_lfht_node *n = cds_lfht_iter_get_node(&it);
		if (n && cds_lfht_del(ht, n) == 0) {
			ok = true;
			urcu_memb_call_rcu(&caa_container_of(n, LfhtNode, node)->rcu, lfht_free_node);
		}
		urcu_memb_read_unlock();
		return ok;
	}
	// Multi-value: cds_lfht's own duplicate support.  One node per
	// (key, value) pair under hash(key); add_unique matches the whole pair
	// (set semantics), a lookup walks the key's nodes with
	// cds_lfht_next_duplicate (they share the hash, so they are adjacent in
	// the split-ordered list).
	static constexpr bool has_multi = true;
	bool insert_mv(const cid_t &k, const cid_t &v)
	{
		auto *e = static_cast<LfhtNode *>(std::malloc(sizeof(LfhtNode)));
		cds_lfht_node_init(&e->node);
		e->k = k;
		e->v = v;
		urcu_memb_read_lock();
		cds_lfht_node *r = cds_lfht_add_unique(ht, hash_cid(k), lfht_match_pair, e, &e->node);
		urcu_memb_read_unlock();
		if (r != &e->node) {
			std::free(e);
			return false;
		}
		return true;
	}
	long lookup_mv(const cid_t &k, cid_t *out, size_t cap)
	{
		cds_lfht_iter it;
		long r = 0;
		urcu_memb_read_lock();
		cds_lfht_lookup(ht, hash_cid(k), lfht_match, &k, &it);
		for (cds_lfht_node *n = cds_lfht_iter_get_node(&it); n != nullptr;
		     cds_lfht_next_duplicate(ht, lfht_match, &k, &it), n = cds_lfht_iter_get_node(&it)) {
			if ((size_t)r < cap)
				out[r] = caa_container_of(n, LfhtNode, node)->v;
			r++;
		}
		urcu_memb_read_unlock();
		return r;
	}
};

struct CidHash {
	size_t operator()(const cid_t &k) const noexcept { return hash_cid(k); }
};
struct CidEq {
	bool operator()(const cid_t &a, const cid_t &b) const noexcept { return cid_eq(a, b); }
};

// Multi-value anchors keep a std::vector of values per key; an insert scans
// it for the value first (set semantics, like cidstore's insert).
inline bool vec_add(std::vector<cid_t> &vec, const cid_t &v)
{
	for (const cid_t &x : vec)
		if (cid_eq(x, v))
			return false;
	vec.push_back(v);
	return true;
}
inline long vec_copy(const std::vector<cid_t> &vec, cid_t *out, size_t cap)
{
	size_t c = std::min(cap, vec.size());
	std::memcpy(out, vec.data(), c * sizeof(cid_t));
	return (long)vec.size();
}

struct CuckooTable {
	using Map = libcuckoo::cuckoohash_map<cid_t, cid_t, CidHash, CidEq>;
	using MMap = libcuckoo::cuckoohash_map<cid_t, std::vector<cid_t>, CidHash, CidEq>;
	Map *m = nullptr;
	MMap *mm = nullptr;
	std::string open(size_t)
	{
		m = new Map(4); /* one bucket of 4 slots: grows from (almost) empty */
		mm = new MMap(4);
		return "";
	}
	void thread_enter() {}
	void thread_exit() {}
	bool insert(const cid_t &k, const cid_t &v) { return m->insert(k, v); }
	bool lookup(const cid_t &k, cid_t *out) { return m->find(k, *out); }
	bool erase(const cid_t &k) { return m->erase(k); }
	static constexpr bool has_multi = true;
	bool insert_mv(const cid_t &k, const cid_t &v)
	{
		bool added = true; // uprase_fn's functor runs under the bucket locks
		mm->upsert(k, [&](std::vector<cid_t> &vec) { added = vec_add(vec, v); }, (size_t)1, v);
		return added;
	}
	long lookup_mv(const cid_t &k, cid_t *out, size_t cap)
	{
		long r = 0;
		mm->find_fn(k, [&](const std::vector<cid_t> &vec) { r = vec_copy(vec, out, cap); });
		return r;
	}
};

struct TbbHashCompare {
	size_t hash(const cid_t &k) const { return hash_cid(k); }
	bool equal(const cid_t &a, const cid_t &b) const { return cid_eq(a, b); }
};

struct TbbTable {
	using Map = tbb::concurrent_hash_map<cid_t, cid_t, TbbHashCompare>;
	using MMap = tbb::concurrent_hash_map<cid_t, std::vector<cid_t>, TbbHashCompare>;
	Map *m = nullptr;
	MMap *mm = nullptr;
	std::string open(size_t)
	{
		m = new Map();
		mm = new MMap();
		return "";
	}
	bool erase(const cid_t &k) { return m->erase(k); }
	static constexpr bool has_multi = true;
	bool insert_mv(const cid_t &k, const cid_t &v)
	{
		MMap::accessor a; // write lock on the element
		mm->insert(a, k);
		return vec_add(a->second, v);
	}
	long lookup_mv(const cid_t &k, cid_t *out, size_t cap)
	{
		MMap::const_accessor a; // read lock on the element
		if (!mm->find(a, k))
			return 0;
		return vec_copy(a->second, out, cap);
	}
	void thread_enter() {}
	void thread_exit() {}
	bool insert(const cid_t &k, const cid_t &v) { return m->insert(Map::value_type(k, v)); }
	bool lookup(const cid_t &k, cid_t *out)
	{
		Map::const_accessor a;
		if (!m->find(a, k))
			return false;
		*out = a->second;
		return true;
	}
};

// Linear probing, power-of-two capacity, doubles past 3/4 full; the all-zero
// key marks an empty slot and is kept aside.  Deletion shifts the following
// run back (no tombstones).  V is cid_t (one value) or std::vector<cid_t>
// (multi-value).  Not thread-safe by itself: LockedTable puts one lock on it.
template <class V> struct OpenTable {
	struct Slot {
		cid_t k{};
		V v{};
	};
	Slot *slots = nullptr;
	size_t mask = 0, count = 0;
	bool has_zero = false;
	V zero_v{};
	void init()
	{
		mask = 15;
		slots = new Slot[mask + 1]();
	}
	static bool is_zero(const cid_t &k) { return (k.w[0] | k.w[1] | k.w[2] | k.w[3]) == 0; }
	void grow()
	{
		size_t nmask = mask * 2 + 1;
		Slot *ns = new Slot[nmask + 1]();
		for (size_t i = 0; i <= mask; i++) {
			if (is_zero(slots[i].k))
				continue;
			size_t j = hash_cid(slots[i].k) & nmask;
			while (!is_zero(ns[j].k))
				j = (j + 1) & nmask;
			ns[j].k = slots[i].k;
			ns[j].v = std::move(slots[i].v);
		}
		delete[] slots;
		slots = ns;
		mask = nmask;
	}
	// The value slot of k, created when absent (*added says which).
	V *upsert(const cid_t &k, bool *added)
	{
		if (is_zero(k)) {
			*added = !has_zero;
			has_zero = true;
			return &zero_v;
		}
		if ((count + 1) * 4 > (mask + 1) * 3)
			grow();
		size_t j = hash_cid(k) & mask;
		while (!is_zero(slots[j].k) && !cid_eq(slots[j].k, k))
			j = (j + 1) & mask;
		*added = is_zero(slots[j].k);
		if (*added) {
			slots[j].k = k;
			count++;
		}
		return &slots[j].v;
	}
	const V *find(const cid_t &k) const
	{
		if (is_zero(k))
			return has_zero ? &zero_v : nullptr;
		for (size_t j = hash_cid(k) & mask;; j = (j + 1) & mask) {
			if (is_zero(slots[j].k))
				return nullptr;
			if (cid_eq(slots[j].k, k))
				return &slots[j].v;
		}
	}
	bool erase(const cid_t &k)
	{
		if (is_zero(k)) {
			bool r = has_zero;
			has_zero = false;
			return r;
		}
		size_t j = hash_cid(k) & mask;
		for (;; j = (j + 1) & mask) {
			if (is_zero(slots[j].k))
				return false;
			if (cid_eq(slots[j].k, k))
				break;
		}
		// Backward-shift deletion: move later entries of the run into the hole
		// when their home slot does not lie cyclically in (hole, their slot].
		size_t hole = j;
		for (size_t i = (j + 1) & mask; !is_zero(slots[i].k); i = (i + 1) & mask) {
			size_t home = hash_cid(slots[i].k) & mask;
			if (((i - home) & mask) >= ((i - hole) & mask)) {
				slots[hole].k = slots[i].k;
				slots[hole].v = std::move(slots[i].v);
				hole = i;
			}
		}
		slots[hole].k = cid_t{};
		slots[hole].v = V{};
		count--;
		return true;
	}
};

struct RwLock {
	pthread_rwlock_t l;
	RwLock() { pthread_rwlock_init(&l, nullptr); }
	void lock() { pthread_rwlock_wrlock(&l); }
	void unlock() { pthread_rwlock_unlock(&l); }
	void lock_shared() { pthread_rwlock_rdlock(&l); }
	void unlock_shared() { pthread_rwlock_unlock(&l); }
};
struct MutexLock { // readers take it exclusively too
	pthread_mutex_t l;
	MutexLock() { pthread_mutex_init(&l, nullptr); }
	void lock() { pthread_mutex_lock(&l); }
	void unlock() { pthread_mutex_unlock(&l); }
	void lock_shared() { pthread_mutex_lock(&l); }
	void unlock_shared() { pthread_mutex_unlock(&l); }
};

// A plain table behind one lock: pthread_rwlock (rwlock_table: readers
// share it) or pthread_mutex (mutex_table).  The multi-value table has its
// own lock of the same kind.
template <class L> struct LockedTable {
	L lock, mlock;
	OpenTable<cid_t> t;
	OpenTable<std::vector<cid_t>> mt;
	std::string open(size_t)
	{
		t.init();
		mt.init();
		return "";
	}
	void thread_enter() {}
	void thread_exit() {}
	bool insert(const cid_t &k, const cid_t &v)
	{
		lock.lock();
		bool added;
		cid_t *slot = t.upsert(k, &added);
		if (added)
			*slot = v;
		lock.unlock();
		return added;
	}
	bool lookup(const cid_t &k, cid_t *out)
	{
		lock.lock_shared();
		const cid_t *v = t.find(k);
		if (v)
			*out = *v;
		lock.unlock_shared();
		return v != nullptr;
	}
	bool erase(const cid_t &k)
	{
		lock.lock();
		bool r = t.erase(k);
		lock.unlock();
		return r;
	}
	static constexpr bool has_multi = true;
	bool insert_mv(const cid_t &k, const cid_t &v)
	{
		mlock.lock();
		bool added;
		bool r = vec_add(*mt.upsert(k, &added), v);
		mlock.unlock();
		return r;
	}
	long lookup_mv(const cid_t &k, cid_t *out, size_t cap)
	{
		mlock.lock_shared();
		const std::vector<cid_t> *v = mt.find(k);
		long r = v ? vec_copy(*v, out, cap) : 0;
		mlock.unlock_shared();
		return r;
	}
};
using RwlockTable = LockedTable<RwLock>;
using MutexTable = LockedTable<MutexLock>;

// ---------------------------------------------------------------------
// Benchmarks
// ---------------------------------------------------------------------
enum class Work {
	insert, lookup, mix, insert_seq, lookup_seq, neg_lookup, churn, latency, mv_insert, mv_lookup,
	lookup_many, insert_many, one_key, one_key_values
};
std::string work_name(Work w, int vals)
{
	switch (w) {
	case Work::insert: return "insert";
	case Work::lookup: return "lookup";
	case Work::mix: return "mix90_10";
	case Work::insert_seq: return "insert_seq";
	case Work::lookup_seq: return "lookup_seq";
	case Work::neg_lookup: return "neg_lookup";
	case Work::churn: return "churn50_50";
	case Work::latency: return "lookup_latency";
	case Work::mv_insert: return "multi" + std::to_string(vals) + "_insert";
	case Work::mv_lookup: return "multi" + std::to_string(vals) + "_lookup";
	case Work::lookup_many: return "lookup_many" + std::to_string(vals);
	case Work::insert_many: return "insert_many" + std::to_string(vals);
	case Work::one_key: return "one_key";
	case Work::one_key_values: return "one_key_values";
	}
	return "?";
}

enum class Who { cidstore, cidstore_presized, cidstore_serialized, cidstore_nometrics, lfht_growing, lfht_presized, cuckoo, tbb, rwlock, mutex };
const char *who_name(Who w)
{
	switch (w) {
	case Who::cidstore: return "cidstore";
	case Who::cidstore_presized: return "cidstore_presized";
	case Who::cidstore_serialized: return "cidstore_serialized";
	case Who::cidstore_nometrics: return "cidstore_nometrics";
	case Who::lfht_growing: return "cds_lfht_growing";
	case Who::lfht_presized: return "cds_lfht_presized";
	case Who::cuckoo: return "libcuckoo";
	case Who::tbb: return "tbb_chm";
	case Who::rwlock: return "rwlock_table";
	case Who::mutex: return "mutex_table";
	}
	return "?";
}

struct Spec {
	Work work;
	Who who;
	size_t n;
	int threads;
	int vals = 1; // multi-value: values per key (n = total pairs); *_many: batch size
	std::string base() const
	{
		std::string ns = n % (1u << 20) == 0 ? std::to_string(n >> 20) + "M" : std::to_string(n);
		return work_name(work, vals) + "/" + who_name(who) + "/n:" + ns;
	}
	// The name Google Benchmark gives the run (checked in the child).
	std::string full() const
	{
		return base() + "/iterations:1/manual_time/threads:" + std::to_string(threads);
	}
};

unsigned long g_lfht_initial = 1;

// State shared by the threads of one run; written by thread 0 before the
// loop's start barrier, read by all after it.
struct Shared {
	void *table = nullptr;
	std::string err;
	pthread_barrier_t bar;
	std::atomic<uint64_t> sum{0}, misses{0}, ops{0};
	size_t rss0 = 0, rss1 = 0;
	bool need_fill = false;
	// lookup_latency: sampled lookup latencies of every reader, and the writer
	std::mutex lat_mu;
	std::vector<uint32_t> lat;
	std::atomic<int> readers_left{0};
	uint64_t writer_ops = 0;
	double writer_secs = 0;
} g_run;

// The table a run leaves for the next benchmark of its chain (insert ->
// lookup -> mix in one process): lookup reuses the table the timed insert
// filled instead of filling another.  Only thread 0 touches it, outside the
// timed region.
struct Keep {
	void *table = nullptr;
	Who who{};
	size_t n = 0;
	int kind = 0; // 0 random keys [0, n), 1 sequential keys, K > 1: multi-value with K-1 values a key,
		      // kOneKind: the one key with n values
} g_keep;

constexpr int kOneKind = -1;

template <class T> T *make_table(Who who)
{
	if constexpr (std::is_same_v<T, CidstoreTable>)
		return new T(who == Who::cidstore_serialized, who == Who::cidstore_presized,
			     who != Who::cidstore_nometrics);
	else if constexpr (std::is_same_v<T, LfhtTable>)
		return new T(who == Who::lfht_presized, g_lfht_initial);
	else
		return new T();
}

inline cid_t seq_key(uint64_t i) { return cid_t{{0, 0, 0, i}}; }

template <class T>
void fill(T *t, size_t lo, size_t hi, bool seq, uint64_t *misses)
{
	const KV *kv = g_data.kv;
	for (size_t i = lo; i < hi; i++) {
		bool ok = seq ? t->insert(seq_key(i), kv[i].v) : t->insert(kv[i].k, kv[i].v);
		*misses += !ok;
	}
}

// Multi-value pair i (i < (n / K) * K): key kv[i / K].k, value kv[i].v.
template <class T> void fill_mv(T *t, size_t lo, size_t hi, int k, uint64_t *misses)
{
	const KV *kv = g_data.kv;
	for (size_t i = lo; i < hi; i++)
		*misses += !t->insert_mv(kv[i / k].k, kv[i].v);
}

// one_key: value i (i < n) under the one key.
template <class T> void fill_one(T *t, size_t lo, size_t hi, uint64_t *misses)
{
	const KV *kv = g_data.kv;
	const cid_t &key = g_data.one_key();
	for (size_t i = lo; i < hi; i++)
		*misses += !t->insert_mv(key, kv[i].v);
}

inline uint64_t now_ns()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

constexpr size_t kLatencyEvery = 8; // lookup_latency: time one lookup in 8
constexpr size_t kChurnWindow = 1024; // churn: a key lives this many insert/delete pairs

template <class T> void bench(benchmark::State &st, Spec spec)
{
	constexpr bool is_cid = std::is_same_v<T, CidstoreTable>; // batched calls, one_key
	const int tid = st.thread_index(), nt = st.threads();
	const size_t n = spec.n;
	const PerN &pn = g_data.of(n);
	const KV *kv = g_data.kv;
	const KV *extra = g_data.kv + n; // n/10 keys never in the table at the start of a run
	const size_t nextra = n / 10;
	const bool seq = spec.work == Work::insert_seq || spec.work == Work::lookup_seq;
	const bool multi = spec.work == Work::mv_insert || spec.work == Work::mv_lookup;
	const bool one = spec.work == Work::one_key || spec.work == Work::one_key_values;
	const bool batched = spec.work == Work::lookup_many || spec.work == Work::insert_many;
	const int k = multi ? spec.vals : 1;
	const size_t batch = batched ? (size_t)spec.vals : 1;
	const size_t npairs = multi ? (n / k) * k : n; // multi: n / k keys, k values each
	const size_t nkeys = one ? 1 : npairs / k;   // keys in the table after the fill
	const bool is_insert = spec.work == Work::insert || spec.work == Work::insert_seq ||
			       spec.work == Work::mv_insert || spec.work == Work::insert_many ||
			       spec.work == Work::one_key;
	const int kind = one ? kOneKind : multi ? 1 + k : (seq ? 1 : 0);
	if (tid == 0) {
		pthread_barrier_init(&g_run.bar, nullptr, nt);
		g_run.sum = 0;
		g_run.misses = 0;
		g_run.ops = 0;
		g_run.lat.clear();
		g_run.readers_left = nt - 1;
		g_run.writer_ops = 0;
		g_run.writer_secs = 0;
		if (!is_insert && g_keep.table && g_keep.who == spec.who && g_keep.n == n &&
		    g_keep.kind == kind) {
			g_run.table = g_keep.table; /* holds exactly keys [0, n) (or the n/K multi keys) */
			g_run.err.clear();
			g_run.need_fill = false;
		} else {
			g_run.rss0 = rss_bytes();
			T *t = make_table<T>(spec.who);
			if constexpr (is_cid)
				t->nkeys = nkeys; // cidstore_presized: expected_keys
			g_run.err = t->open(n);
			g_run.table = t;
			g_run.need_fill = !is_insert;
		}
		g_keep.table = nullptr;
	}
	for (auto _ : st) { // one iteration; Google Benchmark's barrier precedes it
		if (!g_run.err.empty()) {
			st.SkipWithError(g_run.err.c_str());
			break;
		}
		T *t = static_cast<T *>(g_run.table);
		t->thread_enter();
		size_t lo = npairs * tid / nt, hi = npairs * (tid + 1) / nt;
		uint64_t misses = 0, sum = 0, items = hi - lo;
		if (g_run.need_fill) {
			if (one)
				fill_one(t, lo, hi, &misses);
			else if (multi)
				fill_mv(t, lo, hi, k, &misses);
			else
				fill(t, lo, hi, seq, &misses);
			pthread_barrier_wait(&g_run.bar);
		}
		if (!is_insert && tid == 0)
			settle();
		// per-workload state prepared before the clock starts
		std::vector<uint32_t> lat;
		std::vector<cid_t> buf;
		size_t elo = nextra * tid / nt, ehi = nextra * (tid + 1) / nt, ne = ehi - elo;
		size_t window = std::min(kChurnWindow, ne / 2), pairs = (hi - lo) / 2;
		if (spec.work == Work::latency && tid > 0) { // readers split [0, n); thread 0 writes
			lo = n * (tid - 1) / (nt - 1);
			hi = n * tid / (nt - 1);
			items = hi - lo;
			lat.reserve((hi - lo) / kLatencyEvery + 2);
		}
		if (spec.work == Work::mv_lookup) { // threads split the keys; items = values
			lo = (n / k) * tid / nt;
			hi = (n / k) * (tid + 1) / nt;
			items = (hi - lo) * k;
			buf.resize(k);
		}
		std::vector<cid_t> bout(batch); // lookup_many: one value a key
		std::vector<long> bcnt(batch);
		// keys[lo, hi) through lookup_many, `batch` at a time: every key
		// must hold exactly one value (summed into sum; others are misses)
		auto lookup_many_range = [&](const cid_t *keys) {
			if constexpr (is_cid) {
				for (size_t i = lo; i < hi; i += batch) {
					size_t m = std::min(batch, hi - i);
					if (t->lookup_many(keys + i, m, bout.data(), bcnt.data()) != 0) {
						misses += m;
						continue;
					}
					for (size_t j = 0; j < m; j++) {
						if (bcnt[j] == 1)
							sum += bout[j].w[0];
						else
							misses++;
					}
				}
			}
		};
		std::vector<int> bres(batch);
		if (spec.work == Work::one_key_values) { // thread 0 reads the whole set
			items = tid == 0 ? n : 0;
		}
		size_t wpos = 0;
		bool wdeleting = false;
		pthread_barrier_wait(&g_run.bar);
		auto t0 = std::chrono::steady_clock::now();
		cid_t out;
		switch (spec.work) {
		case Work::insert:
		case Work::insert_seq:
			fill(t, lo, hi, seq, &misses);
			break;
		case Work::mv_insert:
			fill_mv(t, lo, hi, k, &misses);
			break;
		case Work::insert_many: // pairs [lo, hi) in batches; every pair must be added
			if constexpr (is_cid) {
				for (size_t i = lo; i < hi; i += batch) {
					size_t m = std::min(batch, hi - i);
					long r = t->insert_many(g_data.keys + i, g_data.vals + i, m, bres.data());
					if (r != (long)m) {
						misses += m;
						continue;
					}
					for (size_t j = 0; j < m; j++)
						misses += bres[j] != 1;
				}
			}
			break;
		case Work::lookup_many: // the lookup stream, `batch` keys a call
			lookup_many_range(pn.lk);
			break;
		case Work::one_key:
			fill_one(t, lo, hi, &misses);
			break;
		case Work::one_key_values:
			if constexpr (is_cid) {
				if (tid == 0)
					misses += t->values_sum(g_data.one_key(), &sum) != (long)n;
			}
			break;
		case Work::lookup:
			for (size_t i = lo; i < hi; i++) {
				if (t->lookup(pn.lk[i], &out))
					sum += out.w[0];
				else
					misses++;
			}
			break;
		case Work::lookup_seq:
			for (size_t i = lo; i < hi; i++) {
				if (t->lookup(seq_key(pn.perm[i]), &out))
					sum += out.w[0];
				else
					misses++;
			}
			break;
		case Work::neg_lookup: // each extra key about 10 times, in random order
			for (size_t i = lo; i < hi; i++)
				misses += t->lookup(extra[pn.perm[i] % nextra].k, &out);
			break;
		case Work::mv_lookup:
			for (size_t j = lo; j < hi; j++) {
				long r = t->lookup_mv(kv[j].k, buf.data(), (size_t)k);
				if (r != k) {
					misses++;
					continue;
				}
				for (int m = 0; m < k; m++)
					sum += buf[m].w[0];
			}
			break;
		case Work::churn: // insert an own extra key, delete the one inserted `window` pairs ago
			items = 0;
			for (size_t p = 0; p < pairs; p++) {
				misses += !t->insert(extra[elo + p % ne].k, extra[elo + p % ne].v);
				items++;
				if (p >= window) {
					misses += !t->erase(extra[elo + (p - window) % ne].k);
					items++;
				}
			}
			break;
		case Work::latency:
			if (tid == 0) { // the writer: inserts the extra keys, then deletes them, ... until readers are done
				items = 0;
				while (g_run.readers_left.load(std::memory_order_relaxed) > 0) {
					if (!wdeleting)
						misses += !t->insert(extra[wpos].k, extra[wpos].v);
					else
						misses += !t->erase(extra[wpos].k);
					g_run.writer_ops++;
					if (++wpos == nextra) {
						wpos = 0;
						wdeleting = !wdeleting;
					}
				}
				g_run.writer_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
			} else {
				for (size_t i = lo; i < hi; i++) {
					bool ok;
					if (i % kLatencyEvery == 0) {
						uint64_t a = now_ns();
						ok = t->lookup(pn.lk[i], &out);
						uint64_t b = now_ns();
						lat.push_back((uint32_t)std::min<uint64_t>(b - a, UINT32_MAX));
					} else {
						ok = t->lookup(pn.lk[i], &out);
					}
					if (ok)
						sum += out.w[0];
					else
						misses++;
				}
				g_run.readers_left.fetch_sub(1);
			}
			break;
		case Work::mix: {
			for (size_t i = lo; i < hi; i++) {
				if (i % 10 == 9) {
					misses += !t->insert(extra[i / 10].k, extra[i / 10].v);
				} else if (t->lookup(pn.lk[i], &out)) {
					sum += out.w[0];
				} else {
					misses++;
				}
			}
			break;
		}
		}
		pthread_barrier_wait(&g_run.bar);
		auto t1 = std::chrono::steady_clock::now();
		if (tid == 0)
			g_run.rss1 = rss_bytes();
		// untimed checks of what the batched / one-key inserts stored
		if constexpr (is_cid) {
			if (spec.work == Work::insert_many) { // every own key holds its one value
				lookup_many_range(g_data.keys);
			}
			if (spec.work == Work::one_key && tid == 0) // the key holds exactly the n values
				misses += t->values_sum(g_data.one_key(), &sum) != (long)n;
		}
		// untimed clean-up: leave the table holding exactly keys [0, n) again
		if (spec.work == Work::churn)
			for (size_t p = pairs >= window ? pairs - window : 0; p < pairs; p++)
				misses += !t->erase(extra[elo + p % ne].k);
		if (spec.work == Work::latency && tid == 0) {
			if (!wdeleting)
				for (size_t j = 0; j < wpos; j++)
					misses += !t->erase(extra[j].k);
			else
				for (size_t j = wpos; j < nextra; j++)
					misses += !t->erase(extra[j].k);
		}
		if (!lat.empty()) {
			std::lock_guard<std::mutex> g(g_run.lat_mu);
			g_run.lat.insert(g_run.lat.end(), lat.begin(), lat.end());
		}
		g_run.sum += sum;
		g_run.misses += misses;
		t->thread_exit();
		st.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
		st.SetItemsProcessed((int64_t)items);
	}
	// Google Benchmark's stop barrier: every thread's sums are in, and no
	// thread uses g_run.bar any more.
	if (tid == 0)
		pthread_barrier_destroy(&g_run.bar);
	if (tid == 0 && g_run.err.empty()) {
		uint64_t want = 0;
		if (spec.work == Work::lookup || spec.work == Work::lookup_seq || spec.work == Work::latency ||
		    spec.work == Work::lookup_many || (is_cid && (spec.work == Work::insert_many || one)))
			want = pn.sum_lookup; // sum over all n values (one_key: the key's n values)
		else if (spec.work == Work::mix)
			want = pn.sum_mix;
		else if (spec.work == Work::mv_lookup)
			for (size_t i = 0; i < npairs; i++)
				want += kv[i].v.w[0];
		if (g_run.misses != 0 || g_run.sum != want) {
			static std::string msg;
			msg = "verification failed: " + std::to_string(g_run.misses.load()) +
			      " missing, duplicate or unexpected keys, value checksum " +
			      (g_run.sum == want ? "ok" : "wrong");
			st.SkipWithError(msg.c_str());
		}
		if (is_insert && !one)
			st.counters["bytes_per_key"] = (double)((long)g_run.rss1 - (long)g_run.rss0) / (double)nkeys;
		if (spec.work == Work::one_key)
			st.counters["bytes_per_value"] = (double)((long)g_run.rss1 - (long)g_run.rss0) / (double)n;
		if (multi)
			st.counters["values_per_key"] = k;
		if (one)
			st.counters["values_per_key"] = (double)n;
		if (batched)
			st.counters["batch"] = (double)batch;
		if (spec.work == Work::latency && !g_run.lat.empty()) {
			auto &l = g_run.lat;
			std::sort(l.begin(), l.end());
			auto pct = [&](double q) { return (double)l[std::min(l.size() - 1, (size_t)(q * (double)l.size()))]; };
			st.counters["p50_ns"] = pct(0.50);
			st.counters["p99_ns"] = pct(0.99);
			st.counters["p999_ns"] = pct(0.999);
			st.counters["lat_samples"] = (double)l.size();
			st.counters["writer_ops_per_s"] =
				g_run.writer_secs > 0 ? (double)g_run.writer_ops / g_run.writer_secs : 0;
			std::vector<uint64_t> c(1001); // the clock pair's own cost, included in the samples
			for (auto &x : c) {
				uint64_t a = now_ns();
				x = now_ns() - a;
			}
			std::sort(c.begin(), c.end());
			st.counters["clock_overhead_ns"] = (double)c[500];
		}
		st.counters["n"] = (double)n;
		// Other work on the machine shows up here (2 shared cores).
		st.counters["load_avg_1m"] = std::atof(read_first_line("/proc/loadavg").c_str());
		if (nt > (int)std::thread::hardware_concurrency())
			st.SetLabel("oversubscribed");
		// The table is never freed: the process exits after its chain.
		if (spec.work != Work::mix && !st.error_occurred()) {
			g_keep.table = g_run.table;
			g_keep.who = spec.who;
			g_keep.n = n;
			g_keep.kind = kind;
		}
	}
}

void register_spec(const Spec &s)
{
	benchmark::internal::Benchmark *b = nullptr;
	switch (s.who) {
	case Who::cidstore:
	case Who::cidstore_presized:
	case Who::cidstore_serialized:
	case Who::cidstore_nometrics:
		b = benchmark::RegisterBenchmark(s.base().c_str(), bench<CidstoreTable>, s);
		break;
	case Who::lfht_growing:
	case Who::lfht_presized:
		b = benchmark::RegisterBenchmark(s.base().c_str(), bench<LfhtTable>, s);
		break;
	case Who::cuckoo:
		b = benchmark::RegisterBenchmark(s.base().c_str(), bench<CuckooTable>, s);
		break;
	case Who::tbb:
		b = benchmark::RegisterBenchmark(s.base().c_str(), bench<TbbTable>, s);
		break;
	case Who::rwlock:
		b = benchmark::RegisterBenchmark(s.base().c_str(), bench<RwlockTable>, s);
		break;
	case Who::mutex:
		b = benchmark::RegisterBenchmark(s.base().c_str(), bench<MutexTable>, s);
		break;
	}
	b->Iterations(1)->UseManualTime()->Threads(s.threads)->Unit(benchmark::kMillisecond);
}

// Console output of a child: one compact line per run, no context block.
class LineReporter : public benchmark::BenchmarkReporter {
public:
	bool ReportContext(const Context &) override { return true; }
	void ReportRuns(const std::vector<Run> &runs) override
	{
		for (const Run &r : runs) {
			if (r.error_occurred) {
				std::printf("%-58s FAILED: %s\n", r.benchmark_name().c_str(), r.error_message.c_str());
				continue;
			}
			auto ips = r.counters.find("items_per_second");
			auto bpk = r.counters.find("bytes_per_key");
			if (bpk == r.counters.end())
				bpk = r.counters.find("bytes_per_value");
			std::printf("%-58s %8.3f Mops/s", r.benchmark_name().c_str(),
				    ips != r.counters.end() ? ips->second.value / 1e6 : 0.0);
			if (bpk != r.counters.end())
				std::printf("  %7.1f bytes/%s", bpk->second.value,
					    bpk->first == "bytes_per_value" ? "value" : "key");
			auto p50 = r.counters.find("p50_ns"), p99 = r.counters.find("p99_ns"),
			     p999 = r.counters.find("p999_ns");
			if (p50 != r.counters.end() && p99 != r.counters.end() && p999 != r.counters.end())
				std::printf("  p50/p99/p999 %.0f/%.0f/%.0f ns", p50->second.value, p99->second.value,
					    p999->second.value);
			std::printf("%s\n", r.report_label.empty() ? "" : ("  " + r.report_label).c_str());
		}
		std::fflush(stdout);
	}
};

// ---------------------------------------------------------------------
// Supervisor
// ---------------------------------------------------------------------
struct Options {
	std::vector<size_t> sizes{1u << 20};
	std::vector<int> threads{1, 2, 4, 8};
	int reps = 3;
	double timeout = 0; // 0: derived from N
	std::string out, filter;
	std::vector<std::string> passthrough; // other --benchmark_* flags
	bool list = false;
};

size_t parse_size(const std::string &s)
{
	char *end = nullptr;
	double v = std::strtod(s.c_str(), &end);
	size_t mult = 1;
	if (end && (*end == 'M' || *end == 'm'))
		mult = 1u << 20;
	else if (end && (*end == 'K' || *end == 'k'))
		mult = 1u << 10;
	return (size_t)(v * (double)mult);
}

template <class F> void split_csv(const std::string &s, F f)
{
	std::stringstream ss(s);
	std::string item;
	while (std::getline(ss, item, ','))
		if (!item.empty())
			f(item);
}

void usage()
{
	std::printf(
		"bench_index [options] [--benchmark_* flags]\n"
		"  --sizes=1M[,16M]     key counts (default 1M; env CIDSTORE_BENCH_SIZES)\n"
		"  --threads=1,2,4,8    thread counts (default 1,2,4,8)\n"
		"  --benchmark_repetitions=R  fresh process per repetition (default 3)\n"
		"  --benchmark_filter=REGEX   run only names matching (leading '-' negates)\n"
		"  --benchmark_out=FILE       merged Google Benchmark JSON\n"
		"  --timeout=SECONDS    watchdog per process (default 15 s + 3 s per million keys per benchmark in it)\n"
		"  --lfht-initial=B     initial buckets of cds_lfht_growing (default 1)\n"
		"  --seed=S             key generator seed\n"
		"  --list               print the benchmark names and exit\n");
}

Options parse(int argc, char **argv)
{
	Options o;
	if (const char *e = std::getenv("CIDSTORE_BENCH_SIZES")) {
		o.sizes.clear();
		split_csv(e, [&](const std::string &x) { o.sizes.push_back(parse_size(x)); });
	}
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto val = [&](const char *p) -> const char * {
			size_t l = std::strlen(p);
			return a.compare(0, l, p) == 0 ? a.c_str() + l : nullptr;
		};
		const char *v;
		if ((v = val("--sizes="))) {
			o.sizes.clear();
			split_csv(v, [&](const std::string &x) { o.sizes.push_back(parse_size(x)); });
		} else if ((v = val("--threads="))) {
			o.threads.clear();
			split_csv(v, [&](const std::string &x) { o.threads.push_back(std::atoi(x.c_str())); });
		} else if ((v = val("--benchmark_repetitions="))) {
			o.reps = std::max(1, std::atoi(v));
		} else if ((v = val("--benchmark_filter="))) {
			o.filter = v;
		} else if ((v = val("--benchmark_out="))) {
			o.out = v;
		} else if ((v = val("--benchmark_out_format="))) {
			if (std::string(v) != "json")
				std::fprintf(stderr, "note: output is always JSON\n");
		} else if ((v = val("--timeout="))) {
			o.timeout = std::atof(v);
		} else if ((v = val("--lfht-initial="))) {
			g_lfht_initial = std::strtoul(v, nullptr, 0);
		} else if ((v = val("--seed="))) {
			g_data.seed = std::strtoull(v, nullptr, 0);
		} else if (a == "--list") {
			o.list = true;
		} else if (a == "--help" || a == "-h") {
			usage();
			std::exit(0);
		} else if (a.compare(0, 12, "--benchmark_") == 0 || a.compare(0, 3, "--v") == 0) {
			o.passthrough.push_back(a);
		} else {
			std::fprintf(stderr, "unknown argument: %s\n", a.c_str());
			usage();
			std::exit(2);
		}
	}
	return o;
}

// Benchmarks grouped into chains, one process per chain and repetition:
// (contender, N, threads) runs insert -> lookup -> ... -> mix90_10 on one
// table, sequential keys insert_seq -> lookup_seq (see the top of the file).
using Chain = std::vector<Spec>;

std::vector<Chain> all_chains(const Options &o)
{
	const Who contenders[] = {Who::cidstore, Who::cidstore_presized, Who::cidstore_serialized,
				  Who::cidstore_nometrics, Who::lfht_growing, Who::lfht_presized, Who::cuckoo, Who::tbb,
				  Who::rwlock, Who::mutex};
	// the batched calls exist for cidstore only (and are not serialized's point)
	auto batched = [](Who c) { return c == Who::cidstore || c == Who::cidstore_presized; };
	const int lookup_batches[] = {16, 64};
	const int insert_batch = 64;
	const int multi_vals[] = {1, 2, 3, 16, 1000};
	bool neg = !o.filter.empty() && o.filter[0] == '-';
	std::regex re(neg ? o.filter.substr(1) : (o.filter.empty() ? "." : o.filter));
	std::vector<Chain> v;
	auto add = [&](Chain c) {
		Chain kept;
		for (auto &s : c)
			if (std::regex_search(s.full(), re) != neg)
				kept.push_back(s);
		if (!kept.empty())
			v.push_back(kept);
	};
	for (size_t n : o.sizes) {
		for (Who c : contenders)
			for (int t : o.threads) {
				Chain ch{Spec{Work::insert, c, n, t}, Spec{Work::lookup, c, n, t}};
				if (batched(c)) // same keys, same order as lookup, same table
					for (int b : lookup_batches)
						ch.push_back(Spec{Work::lookup_many, c, n, t, b});
				ch.push_back(Spec{Work::neg_lookup, c, n, t});
				ch.push_back(Spec{Work::churn, c, n, t});
				if (t >= 2) // one writer and t - 1 readers
					ch.push_back(Spec{Work::latency, c, n, t});
				ch.push_back(Spec{Work::mix, c, n, t});
				add(ch);
			}
		// multi-value: one process per (contender, values a key, threads)
		for (Who c : contenders) {
			for (int k : multi_vals)
				for (int t : o.threads)
					add({Spec{Work::mv_insert, c, n, t, k}, Spec{Work::mv_lookup, c, n, t, k}});
		}
		for (Who c : contenders)
			for (int t : o.threads)
				add({Spec{Work::insert_seq, c, n, t}, Spec{Work::lookup_seq, c, n, t}});
		// batched inserts into a table that starts empty (presized: expected_keys = N)
		for (Who c : contenders)
			if (batched(c))
				for (int t : o.threads)
					add({Spec{Work::insert_many, c, n, t, insert_batch}});
		// N values under one key (anchors: their multi-value insert scans the
		// key's values, O(N) a value, so N = 1M would take hours)
		for (int t : o.threads) {
			Chain ch{Spec{Work::one_key, Who::cidstore, n, t}};
			if (t == 1) // cidstore_values reads the set in one thread
				ch.push_back(Spec{Work::one_key_values, Who::cidstore, n, t});
			add(ch);
		}
	}
	return v;
}

std::string json_escape(const std::string &s)
{
	std::string r;
	for (char c : s) {
		if (c == '"' || c == '\\')
			r += '\\';
		r += c;
	}
	return r;
}

// Writes each run to the file as soon as it is reported, so the runs a
// chain finished survive a later crash or hang of the same process.
class FlushingJSONReporter : public benchmark::JSONReporter {
public:
	void ReportRuns(const std::vector<Run> &runs) override
	{
		benchmark::JSONReporter::ReportRuns(runs);
		GetOutputStream().flush();
	}
};

[[noreturn]] void child_main(const Options &o, const Chain &chain, double timeout, const std::string &tmp)
{
	setpgid(0, 0);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	std::vector<std::string> args{"bench_index", "--benchmark_out=" + tmp, "--benchmark_out_format=json",
				      "--benchmark_repetitions=1"};
	for (auto &p : o.passthrough)
		args.push_back(p);
	std::vector<char *> av;
	for (auto &a : args)
		av.push_back(const_cast<char *>(a.c_str()));
	av.push_back(nullptr);
	int ac = (int)args.size();
	benchmark::Initialize(&ac, av.data());
	benchmark::AddCustomContext("allocator", allocator_name());
	benchmark::AddCustomContext("keys", "random 256-bit keys and values, xoshiro256** seed " +
						    std::to_string(g_data.seed));
	benchmark::AddCustomContext("transparent_hugepage",
				    read_first_line("/sys/kernel/mm/transparent_hugepage/enabled"));
	benchmark::AddCustomContext("watchdog", "one process per chain and repetition, killed after " +
							std::to_string((int)timeout) + " s");
	benchmark::AddCustomContext("cidstore_version", cidstore_version());
	benchmark::AddCustomContext("lfht_growing_initial_buckets", std::to_string(g_lfht_initial));
	for (const Spec &s : chain)
		register_spec(s);
	LineReporter line;
	FlushingJSONReporter json;
	benchmark::RunSpecifiedBenchmarks(&line, &json);
	std::fflush(stdout);
	_exit(0); // skip destructors: the tables are deliberately left alone
}

// The running child is in its own process group (so the watchdog can kill
// all of it); Ctrl-C or a kill of the parent takes it down too.
volatile sig_atomic_t g_child_pid = 0;
extern "C" void on_stop_signal(int sig)
{
	if (g_child_pid > 0)
		kill(-(pid_t)g_child_pid, SIGKILL);
	_exit(128 + sig);
}

// Runs one repetition of a chain in a forked child.  Returns its JSON
// "benchmarks" entries (without brackets); a benchmark of the chain with
// no entry (the child crashed or hung before reporting it) gets a failed
// entry.  Fills *context with the first child's JSON context block.
std::string run_chain(const Options &o, const Chain &chain, int rep, double timeout,
		      const std::string &tmp, std::string *context, std::vector<std::string> *failures)
{
	std::fflush(stdout);
	std::fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		std::exit(2);
	}
	if (pid == 0)
		child_main(o, chain, timeout, tmp);
	setpgid(pid, pid);
	g_child_pid = pid;
	auto start = std::chrono::steady_clock::now();
	int status = 0;
	std::string why;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
		if (el > timeout) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			char b[128];
			std::snprintf(b, sizeof b, "watchdog: no result after %g s, killed (hung)", timeout);
			why = b;
			break;
		}
		usleep(20000);
	}
	g_child_pid = 0;
	if (why.empty() && WIFSIGNALED(status))
		why = std::string("watchdog: crashed with signal ") + std::to_string(WTERMSIG(status)) +
		      " (" + strsignal(WTERMSIG(status)) + ")";
	else if (why.empty() && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		why = "watchdog: exited with status " + std::to_string(WEXITSTATUS(status));

	std::ifstream f(tmp);
	std::stringstream ss;
	ss << f.rdbuf();
	std::string j = ss.str();
	std::remove(tmp.c_str());
	std::string body;
	size_t b = j.find("\"benchmarks\": [");
	size_t e = j.rfind("\n    }"); // end of the last complete entry
	if (b != std::string::npos && e != std::string::npos && e > b) {
		if (context->empty())
			*context = j.substr(0, b);
		body = j.substr(b + 15, e + 6 - b - 15);
		while (!body.empty() && (body[0] == '\n' || body[0] == '\r'))
			body.erase(0, 1);
		auto replace_all = [&](const std::string &from, const std::string &to) {
			for (size_t p = body.find(from); p != std::string::npos; p = body.find(from, p + to.size()))
				body.replace(p, from.size(), to);
		};
		replace_all("\"repetitions\": 1,", "\"repetitions\": " + std::to_string(o.reps) + ",");
		replace_all("\"repetition_index\": 0,", "\"repetition_index\": " + std::to_string(rep) + ",");
	}
	if (why.empty())
		why = "watchdog: the process ended without reporting this run";
	for (const Spec &s : chain) {
		std::string tag = "\"name\": \"" + s.full() + "\"";
		size_t at = body.find(tag);
		bool failed = at == std::string::npos;
		if (!failed) {
			size_t end = body.find("\n    }", at);
			failed = body.substr(at, end - at).find("\"error_occurred\": true") != std::string::npos;
		} else {
			std::printf("%-58s FAILED: %s\n", s.full().c_str(), why.c_str());
			char buf[1024];
			std::snprintf(buf, sizeof buf,
				      "    {\n      \"name\": \"%s\",\n      \"run_name\": \"%s\",\n"
				      "      \"run_type\": \"iteration\",\n      \"repetitions\": %d,\n"
				      "      \"repetition_index\": %d,\n      \"threads\": %d,\n"
				      "      \"error_occurred\": true,\n      \"error_message\": \"%s\"\n    }",
				      s.full().c_str(), s.full().c_str(), o.reps, rep, s.threads,
				      json_escape(why).c_str());
			body += (body.empty() ? "" : ",\n") + std::string(buf);
		}
		if (failed)
			failures->push_back(s.full() + " (repetition " + std::to_string(rep) + ")");
	}
	return body;
}

} // namespace

int main(int argc, char **argv)
{
	Options o = parse(argc, argv);
	std::vector<Chain> chains = all_chains(o);
	size_t nbench = 0;
	for (auto &c : chains)
		nbench += c.size();
	if (o.list) {
		for (auto &c : chains)
			for (auto &s : c)
				std::printf("%s\n", s.full().c_str());
		return 0;
	}
	if (chains.empty()) {
		std::fprintf(stderr, "no benchmark matches\n");
		return 1;
	}
	auto g0 = std::chrono::steady_clock::now();
	signal(SIGINT, on_stop_signal);
	signal(SIGTERM, on_stop_signal);
	signal(SIGHUP, on_stop_signal);
	bool soa = false; // insert_many needs keys and values as two arrays
	for (auto &c : chains)
		for (auto &s : c)
			soa |= s.work == Work::insert_many;
	generate(o.sizes, soa);
	std::printf("keys: %zu (+10%% for the mix) generated in %.1f s; %zu benchmarks in %zu processes x %d "
		    "repetitions; allocator %s; %u cores\n",
		    g_data.nmax, std::chrono::duration<double>(std::chrono::steady_clock::now() - g0).count(),
		    nbench, chains.size(), o.reps, allocator_name().c_str(), std::thread::hardware_concurrency());
	char tmpl[] = "/tmp/bench_index.XXXXXX";
	if (!mkdtemp(tmpl)) {
		perror("mkdtemp");
		return 2;
	}
	std::string context, entries;
	std::vector<std::string> failures;
	int k = 0;
	for (int rep = 0; rep < o.reps; rep++) { // repetitions outermost: spreads drift
		for (const Chain &c : chains) {
			double timeout = o.timeout;
			if (timeout <= 0)
				timeout = 15.0 + 3.0 * (double)c[0].n / (1 << 20) * (double)c.size();
			std::string tmp = std::string(tmpl) + "/run" + std::to_string(k++) + ".json";
			std::string body = run_chain(o, c, rep, timeout, tmp, &context, &failures);
			if (!body.empty())
				entries += (entries.empty() ? "" : ",\n") + body;
			if (!o.out.empty()) { // rewritten after every process: an interrupted run keeps its results
				std::ofstream f(o.out + ".tmp");
				f << (context.empty() ? "{\n  \"context\": {},\n  " : context) << "\"benchmarks\": [\n"
				  << entries << "\n  ]\n}\n";
				f.close();
				std::rename((o.out + ".tmp").c_str(), o.out.c_str());
			}
		}
	}
	rmdir(tmpl);
	if (!o.out.empty())
		std::printf("wrote %s\n", o.out.c_str());
	std::printf("%zu of %zu runs failed%s\n", failures.size(), nbench * (size_t)o.reps,
		    failures.empty() ? "" : " (see FAILED lines; the JSON marks them error_occurred):");
	for (auto &f : failures)
		std::printf("  %s\n", f.c_str());
	std::printf("total %.0f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - g0).count());
	return 0;
}
