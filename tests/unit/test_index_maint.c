/*
 * test_index_maint.c — idx_maintain (issue 13, index side): entry
 * compaction, table shrink, value-set demotion, and maintenance running
 * while readers, writers and a scanner run, all with exact results.  Uses
 * the internal index API (src/index/index.h), as the stress harnesses do.
 *
 * Sizes shrink under the sanitizers (SZ / scaled, unit_support.h).  The
 * resident-memory check (test_rss_ratio) inserts 10M keys in a release
 * build (CIDSTORE_TEST_SCALE scales it) and prints the figures.
 */
#include "unit_support.h"

#include <inttypes.h>
#include <unistd.h>

#include "cid/hash.h"
#include "index/index.h"

#define KTAG 0x51
#define VTAG 0x200

static idx_t *new_idx(uint64_t seed)
{
	idx_options_t o = {.seed = seed, .initial_depth = 0, .expected_keys = 0};
	idx_t *ix = NULL;
	ck_assert_int_eq(idx_create(&o, &ix), 0);
	return ix;
}

static cid_t key_of(uint64_t tag, uint64_t k)
{
	return mk(KTAG + tag, k);
}

static cid_t val_of(uint64_t k, unsigned j)
{
	return mk(VTAG + j, k);
}

/* Key k holds nv_of(k) values: 3 for k % 7 == 0 (a value set), else 1. */
static unsigned nv_of(uint64_t k)
{
	return k % 7 == 0 ? 3 : 1;
}

static void put_key(idx_t *ix, uint64_t tag, uint64_t k)
{
	cid_t key = key_of(tag, k);
	for (unsigned j = 0; j < nv_of(k); j++) {
		cid_t v = val_of(k, j);
		ck_assert_int_eq(idx_insert(ix, &key, &v, NULL), 1);
	}
}

/* Exact check of key k: present with its nv_of(k) values, or absent. */
static bool key_ok(idx_t *ix, uint64_t tag, uint64_t k, bool present)
{
	cid_t key = key_of(tag, k), out[8];
	long n = idx_lookup(ix, &key, out, 8);
	if (!present)
		return n == 0;
	if (n != (long)nv_of(k))
		return false;
	unsigned seen = 0;
	for (long i = 0; i < n; i++) {
		if (out[i].w[0] < VTAG || out[i].w[0] >= VTAG + nv_of(k))
			return false;
		unsigned j = (unsigned)(out[i].w[0] - VTAG);
		if (mk_decode(&out[i], VTAG + j, UINT64_MAX) != (long)k || (seen & (1u << j)))
			return false;
		seen |= 1u << j;
	}
	return true;
}

static uint64_t mem_of(idx_t *ix)
{
	cidstore_stats_t st;
	idx_stats(ix, &st);
	return st.memory_bytes;
}

static uint64_t depth_of(idx_t *ix)
{
	cidstore_stats_t st;
	idx_stats(ix, &st);
	return st.global_depth;
}

/* Entry compaction: after 90% of the keys are deleted, a pass moves the
 * survivors into dense chunks and gives the rest back; content is exact
 * before and after, a second pass finds nothing to do, and new inserts
 * reuse the released chunks. */
START_TEST(test_compaction_exact)
{
	const uint64_t n = scaled(400000, 200000);
	idx_t *ix = new_idx(11);
	for (uint64_t k = 0; k < n; k++)
		put_key(ix, 0, k);
	for (uint64_t k = 0; k < n; k++)
		if (k % 10 != 0) {
			cid_t key = key_of(0, k);
			ck_assert_int_eq(idx_delete_key(ix, &key, NULL), (long)nv_of(k));
		}
	ck_assert_int_eq(idx_quiesce(ix), 0);
	uint64_t before = mem_of(ix);
	idx_maint_stats_t st;
	ck_assert_int_eq(idx_maintain(ix, 0, &st), 0);
	uint64_t after = mem_of(ix);
	fprintf(stderr, "compaction: %" PRIu64 " keys, 10%% kept: moved %" PRIu64
		", chunks released %" PRIu64 ", tables shrunk %" PRIu64 ", memory %" PRIu64
		" -> %" PRIu64 " KiB\n", n, st.entries_moved, st.chunks_released,
		st.tables_shrunk, before >> 10, after >> 10);
	ck_assert_uint_gt(st.entries_moved, 0);
	ck_assert_uint_gt(st.chunks_released, 0);
	ck_assert_uint_eq(st.bytes_released >= st.chunks_released * (2u << 20), 1);
	ck_assert_msg(after * 2 < before, "memory %" PRIu64 " -> %" PRIu64, before, after);
	ck_assert_int_eq(idx_valid(ix), 0);
	for (uint64_t k = 0; k < n; k++)
		ck_assert_msg(key_ok(ix, 0, k, k % 10 == 0), "key %" PRIu64, k);

	/* nothing left to do */
	idx_maint_stats_t st2;
	ck_assert_int_eq(idx_maintain(ix, 0, &st2), 0);
	ck_assert_uint_eq(st2.entries_moved, 0);
	ck_assert_uint_eq(st2.chunks_released, 0);

	/* released chunks are taken again: the deleted keys come back */
	for (uint64_t k = 0; k < n; k++)
		if (k % 10 != 0)
			put_key(ix, 0, k);
	ck_assert_int_eq(idx_valid(ix), 0);
	for (uint64_t k = 0; k < n; k++)
		ck_assert_msg(key_ok(ix, 0, k, true), "key %" PRIu64 " after refill", k);
	idx_destroy(ix);
}
END_TEST

/* Table shrink: 97% deleted, a pass halves the table (more than once),
 * content exact; the table grows back online afterwards. */
START_TEST(test_shrink_exact)
{
	const uint64_t n = scaled(300000, 100000);
	idx_t *ix = new_idx(16);
	for (uint64_t k = 0; k < n; k++)
		put_key(ix, 0, k);
	uint64_t d0 = depth_of(ix);
	for (uint64_t k = 0; k < n; k++)
		if (k % 32 != 0) {
			cid_t key = key_of(0, k);
			ck_assert_int_eq(idx_delete_key(ix, &key, NULL), (long)nv_of(k));
		}
	idx_maint_stats_t st;
	ck_assert_int_eq(idx_maintain(ix, 0, &st), 0);
	uint64_t d1 = depth_of(ix);
	fprintf(stderr, "shrink: %" PRIu64 " keys, 1/32 kept: depth %" PRIu64 " -> %" PRIu64
		", %" PRIu64 " tables shrunk, %" PRIu64 " bytes released\n", n, d0, d1,
		st.tables_shrunk, st.bytes_released);
	ck_assert_uint_ge(st.tables_shrunk, 2);
	ck_assert_uint_eq(d1 + st.tables_shrunk, d0);
	ck_assert_int_eq(idx_valid(ix), 0);
	for (uint64_t k = 0; k < n; k++)
		ck_assert_msg(key_ok(ix, 0, k, k % 32 == 0), "key %" PRIu64, k);
	/* the load after the last halving is below 50% of the slots */
	cidstore_stats_t s1;
	idx_stats(ix, &s1);
	ck_assert_uint_lt(s1.keys * 2, s1.buckets * 11);
	for (uint64_t k = 0; k < n; k++)
		if (k % 32 != 0)
			put_key(ix, 0, k);
	ck_assert_uint_ge(depth_of(ix), d0 - 1);
	ck_assert_int_eq(idx_valid(ix), 0);
	for (uint64_t k = 0; k < n; k++)
		ck_assert_msg(key_ok(ix, 0, k, true), "key %" PRIu64 " after regrowth", k);
	idx_destroy(ix);
}
END_TEST

/* The pair check: a pair of groups (2s, 2s+1) holding 12 keys cannot be
 * merged into one 11-slot group, so no halving happens while it does;
 * once one of them is deleted, the next pass halves the table. */
START_TEST(test_shrink_blocked_by_full_pair)
{
	const uint64_t seed = 17;
	idx_t *ix = new_idx(seed);
	cid_hash_seed_t hs;
	cid_hash_seed_init(&hs, seed);
	const uint64_t n = 40000;
	for (uint64_t k = 0; k < n; k++)
		put_key(ix, 0, k);
	unsigned d = (unsigned)depth_of(ix);
	for (uint64_t k = 0; k < n; k++) {
		cid_t key = key_of(0, k);
		ck_assert_int_eq(idx_delete_key(ix, &key, NULL), (long)nv_of(k));
	}
	ck_assert_uint_eq(depth_of(ix), d);
	/* 6 keys whose first choice is group 0, 6 whose first is group 1:
	 * below PREF_FIRST keys a group takes every key of its own */
	uint64_t pk[12];
	unsigned c0 = 0, c1 = 0, np = 0;
	for (uint64_t k = 0; np < 12; k++) {
		cid_t key = key_of(1, k);
		uint64_t g = cid_hash64(&hs, &key) >> (64 - d);
		if ((g == 0 && c0 < 6) || (g == 1 && c1 < 6)) {
			*(g ? &c1 : &c0) += 1;
			pk[np++] = k;
			put_key(ix, 1, k);
		}
	}
	idx_maint_stats_t st;
	ck_assert_int_eq(idx_maintain(ix, 0, &st), 0);
	ck_assert_uint_eq(st.tables_shrunk, 0);
	ck_assert_uint_eq(depth_of(ix), d);
	for (unsigned i = 0; i < 12; i++)
		ck_assert(key_ok(ix, 1, pk[i], true));
	cid_t key = key_of(1, pk[0]);
	ck_assert_int_eq(idx_delete_key(ix, &key, NULL), (long)nv_of(pk[0]));
	ck_assert_int_eq(idx_maintain(ix, 0, &st), 0);
	fprintf(stderr, "pair check: depth %u, 12 keys in pair 0 block; one deleted: %" PRIu64
		" halvings\n", d, st.tables_shrunk);
	ck_assert_uint_ge(st.tables_shrunk, 1);
	ck_assert_int_eq(idx_valid(ix), 0);
	for (unsigned i = 0; i < 12; i++)
		ck_assert(key_ok(ix, 1, pk[i], i != 0));
	idx_destroy(ix);
}
END_TEST

/* A table never shrinks below options.initial_depth (an explicit size). */
START_TEST(test_shrink_floor)
{
	idx_options_t o = {.seed = 18, .initial_depth = 9, .expected_keys = 0};
	idx_t *ix = NULL;
	ck_assert_int_eq(idx_create(&o, &ix), 0);
	const uint64_t n = 60000;
	for (uint64_t k = 0; k < n; k++)
		put_key(ix, 0, k);
	ck_assert_uint_gt(depth_of(ix), 10);
	for (uint64_t k = 0; k < n; k++) {
		cid_t key = key_of(0, k);
		ck_assert_int_eq(idx_delete_key(ix, &key, NULL), (long)nv_of(k));
	}
	idx_maint_stats_t st;
	ck_assert_int_eq(idx_maintain(ix, 0, &st), 0);
	ck_assert_uint_ge(st.tables_shrunk, 1);
	ck_assert_uint_eq(depth_of(ix), 9);
	ck_assert_int_eq(idx_valid(ix), 0);
	cidstore_stats_t s;
	idx_stats(ix, &s);
	ck_assert_uint_eq(s.keys, 0);
	idx_destroy(ix);
}
END_TEST

/* A pass cut short by its budget resumes where it stopped: passes of a
 * 1 ns budget (each does one step) finish the same work, exactly. */
START_TEST(test_budget_resumes)
{
	const uint64_t n = scaled(200000, 40000);
	idx_t *ix = new_idx(12);
	for (uint64_t k = 0; k < n; k++)
		put_key(ix, 0, k);
	for (uint64_t k = 0; k < n; k++)
		if (k % 8 != 0) {
			cid_t key = key_of(0, k);
			ck_assert_int_eq(idx_delete_key(ix, &key, NULL), (long)nv_of(k));
		}
	uint64_t moved = 0, released = 0, passes = 0, idle = 0;
	/* Done when two passes in a row did nothing (the walk is over) */
	while (idle < 2) {
		idx_maint_stats_t st;
		ck_assert_int_eq(idx_maintain(ix, 1, &st), 0);
		moved += st.entries_moved;
		released += st.chunks_released;
		passes++;
		idle = (st.entries_moved || st.chunks_released || st.tables_shrunk ||
			st.groups_visited) ? 0 : idle + 1;
		ck_assert_uint_lt(passes, 10000000);
		/* content stays exact at every step */
		if (passes % 64 == 0)
			for (uint64_t k = 0; k < n; k += 97)
				ck_assert(key_ok(ix, 0, k, k % 8 == 0));
	}
	fprintf(stderr, "budget 1 ns: %" PRIu64 " passes, moved %" PRIu64 ", released %" PRIu64
		"\n", passes, moved, released);
	ck_assert_uint_gt(passes, 2);
	ck_assert_uint_gt(moved, 0);
	ck_assert_uint_gt(released, 0);
	ck_assert_int_eq(idx_valid(ix), 0);
	for (uint64_t k = 0; k < n; k++)
		ck_assert_msg(key_ok(ix, 0, k, k % 8 == 0), "key %" PRIu64, k);
	idx_destroy(ix);
}
END_TEST

/* A key that had 100k values and lost all but one is back inline: its
 * value set is gone (memory returns exactly to what the index held with
 * the key's first value), and idx_valid (a SPILLED key must hold >= 2
 * values) passes. */
START_TEST(test_vset_demotes_to_inline)
{
	const uint64_t nv = scaled(100000, 20000);
	idx_t *ix = new_idx(13);
	cid_t key = key_of(3, 1);
	cid_t v0 = val_of(1, 0);
	ck_assert_int_eq(idx_insert(ix, &key, &v0, NULL), 1);
	ck_assert_int_eq(idx_quiesce(ix), 0);
	uint64_t m0 = mem_of(ix);
	for (uint64_t i = 1; i < nv; i++) {
		cid_t v = mk(VTAG + 1, i);
		ck_assert_int_eq(idx_insert(ix, &key, &v, NULL), 1);
	}
	ck_assert_int_eq(idx_lookup(ix, &key, NULL, 0), (long)nv);
	uint64_t mbig = mem_of(ix);
	ck_assert_uint_gt(mbig, m0 + nv * 32);
	for (uint64_t i = 1; i < nv; i++) {
		cid_t v = mk(VTAG + 1, i);
		ck_assert_int_eq(idx_delete_value(ix, &key, &v, NULL), 1);
		if (i == nv / 2)
			ck_assert_int_eq(idx_valid(ix), 0);
	}
	cid_t out[2];
	ck_assert_int_eq(idx_lookup(ix, &key, out, 2), 1);
	ck_assert(cid_eq(&out[0], &v0));
	ck_assert_int_eq(idx_quiesce(ix), 0);
	uint64_t m1 = mem_of(ix);
	fprintf(stderr, "vset: 1 value %" PRIu64 " B, %" PRIu64 " values %" PRIu64
		" B, back to 1 value %" PRIu64 " B\n", m0, nv, mbig, m1);
	ck_assert_uint_eq(m1, m0);
	/* the pass may move the entry out of its now sparse chunk: a chunk's
	 * 4 KiB bitmap stays accounted after the chunk is given back */
	idx_maint_stats_t st;
	ck_assert_int_eq(idx_maintain(ix, 0, &st), 0);
	ck_assert_uint_le(mem_of(ix), m0 + 8192);
	ck_assert_int_eq(idx_valid(ix), 0);
	cidstore_stats_t s;
	idx_stats(ix, &s);
	ck_assert_uint_eq(s.keys, 1);
	ck_assert_uint_eq(s.values, 1);
	ck_assert_uint_eq(s.spilled_keys, 0);
	idx_destroy(ix);
}
END_TEST

struct cb_ctx {
	idx_t *ix;
	int rc;
};

static int maintain_from_values(const cid_t *v, size_t n, void *ctx)
{
	(void)v;
	(void)n;
	struct cb_ctx *c = ctx;
	c->rc = idx_maintain(c->ix, 0, NULL);
	return 0;
}

/* An empty index: nothing to do.  From inside an operation (a values
 * callback): CIDSTORE_EINVAL, nothing changed. */
START_TEST(test_maintain_edges)
{
	idx_t *ix = new_idx(14);
	idx_maint_stats_t st;
	ck_assert_int_eq(idx_maintain(ix, 0, &st), 0);
	ck_assert_uint_eq(st.entries_moved, 0);
	ck_assert_uint_eq(st.chunks_released, 0);
	ck_assert_uint_eq(st.tables_shrunk, 0);
	ck_assert_int_eq(idx_maintain(ix, 0, NULL), 0);
	cid_t key = key_of(4, 1), v = val_of(1, 0);
	ck_assert_int_eq(idx_insert(ix, &key, &v, NULL), 1);
	struct cb_ctx c = {ix, 1};
	ck_assert_int_eq(idx_values(ix, &key, maintain_from_values, &c), 1);
	ck_assert_int_eq(c.rc, CIDSTORE_EINVAL);
	ck_assert(key_ok(ix, 4, 1, true));
	ck_assert_int_eq(idx_valid(ix), 0);
	idx_destroy(ix);
}
END_TEST

/* ---- maintenance under concurrent readers, writers and a scanner ---- */

#define CW 2 /* writers */
#define CR 2 /* readers */
#define STABLE_TAG 7

struct cworker {
	pthread_t th;
	unsigned id;
	uint64_t nkeys;
	uint8_t *mask; /* model: values present per own key (bits 0..2) */
	uint64_t ops;
};

static struct {
	idx_t *ix;
	pthread_barrier_t phase; /* the writers move from phase to phase together */
	uint64_t nstable, rounds;
	_Atomic int writers_left;
	_Atomic uint64_t lookups, scans, passes;
	idx_maint_stats_t total; /* maintainer only until joined */
} C;

static cid_t wval(unsigned id, uint64_t k, unsigned j)
{
	return mk(VTAG + 16 + j, (uint64_t)id << 40 | k);
}

/* Checks own key k against the model. */
static void wcheck(struct cworker *w, uint64_t k)
{
	cid_t key = key_of(16 + w->id, k), out[4];
	long n = idx_lookup(C.ix, &key, out, 4);
	unsigned m = w->mask[k];
	if (n != __builtin_popcount(m)) {
		tfail("writer %u key %" PRIu64 ": %ld values, model %d", w->id, k, n,
		      __builtin_popcount(m));
		return;
	}
	for (long i = 0; i < n; i++) {
		unsigned j = (unsigned)(out[i].w[0] - (VTAG + 16));
		cid_t want = wval(w->id, k, j);
		if (j > 2 || !(m & (1u << j)) || !cid_eq(&out[i], &want))
			tfail("writer %u key %" PRIu64 ": foreign or torn value", w->id, k);
	}
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Each round: fill the own range (the table grows), then empty 95% of it
 * (sparse chunks, a sparse table: the maintainer shrinks and compacts),
 * with random single operations in between; every return value checked. */
static void *cwriter(void *arg)
{
	struct cworker *w = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (w->id + 1);
	for (uint64_t round = 0; round < C.rounds; round++) {
		pthread_barrier_wait(&C.phase);
		for (uint64_t k = 0; k < w->nkeys; k++) {
			cid_t key = key_of(16 + w->id, k);
			unsigned nv = 1 + (unsigned)(k % 3 == 0) * 2;
			for (unsigned j = 0; j < nv; j++) {
				cid_t v = wval(w->id, k, j);
				int want = !(w->mask[k] & (1u << j));
				int rc = idx_insert(C.ix, &key, &v, NULL);
				if (rc != want)
					tfail("writer %u insert key %" PRIu64 ": %d, want %d", w->id, k, rc, want);
				w->mask[k] |= (uint8_t)(1u << j);
			}
			w->ops++;
		}
		for (uint64_t k = 0; k < w->nkeys; k++) {
			if (k % 20 == 0)
				continue;
			cid_t key = key_of(16 + w->id, k);
			long want = __builtin_popcount(w->mask[k]);
			long rc = idx_delete_key(C.ix, &key, NULL);
			if (rc != want)
				tfail("writer %u delete key %" PRIu64 ": %ld, want %ld", w->id, k, rc, want);
			w->mask[k] = 0;
			w->ops++;
		}
		/* random operations on the sparse range, until the maintainer has
		 * finished two passes over it (or enough operations were done) */
		pthread_barrier_wait(&C.phase);
		uint64_t p0 = atomic_load(&C.passes);
		for (uint64_t i = 0; i < w->nkeys * 4 && (i < w->nkeys / 4 || atomic_load(&C.passes) < p0 + 2); i++) {
			uint64_t k = xs(&seed) % w->nkeys;
			unsigned j = (unsigned)(xs(&seed) % 3);
			cid_t key = key_of(16 + w->id, k), v = wval(w->id, k, j);
			switch (xs(&seed) % 4) {
			case 0: {
				int want = !(w->mask[k] & (1u << j));
				int rc = idx_insert(C.ix, &key, &v, NULL);
				if (rc != want)
					tfail("writer %u insert: %d, want %d", w->id, rc, want);
				w->mask[k] |= (uint8_t)(1u << j);
				break;
			}
			case 1: {
				int want = !!(w->mask[k] & (1u << j));
				int rc = idx_delete_value(C.ix, &key, &v, NULL);
				if (rc != want)
					tfail("writer %u delete_value: %d, want %d", w->id, rc, want);
				w->mask[k] &= (uint8_t)~(1u << j);
				break;
			}
			default:
				wcheck(w, k);
			}
			w->ops++;
		}
	}
	for (uint64_t k = 0; k < w->nkeys; k++)
		wcheck(w, k);
	atomic_fetch_sub(&C.writers_left, 1);
	return NULL;
}

static bool stable_ok(uint64_t k)
{
	return key_ok(C.ix, STABLE_TAG, k, true);
}

static void *creader(void *arg)
{
	uint64_t seed = (uintptr_t)arg * 7919 + 1;
	while (atomic_load(&C.writers_left) > 0 && !failed_already()) {
		for (int i = 0; i < 256; i++) {
			uint64_t k = xs(&seed) % C.nstable;
			if (!stable_ok(k))
				tfail("reader: stable key %" PRIu64 " wrong", k);
		}
		atomic_fetch_add(&C.lookups, 256);
	}
	return NULL;
}

struct scan_state {
	uint32_t *seen;
	uint64_t bad;
};

static int scan_cb(const cid_t *key, const cid_t *vals, size_t n, void *ctx)
{
	(void)vals;
	struct scan_state *s = ctx;
	long k = mk_decode(key, KTAG + STABLE_TAG, C.nstable);
	if (k >= 0) {
		s->seen[k]++;
		if (n != nv_of((uint64_t)k))
			s->bad++;
	}
	return 0;
}

/* A key present during the whole scan is visited exactly once. */
static void *cscanner(void *arg)
{
	(void)arg;
	struct scan_state s = {calloc(C.nstable, sizeof(uint32_t)), 0};
	while (atomic_load(&C.writers_left) > 0 && !failed_already()) {
		memset(s.seen, 0, C.nstable * sizeof(uint32_t));
		if (idx_scan(C.ix, scan_cb, &s) != 0)
			tfail("scan failed");
		for (uint64_t k = 0; k < C.nstable; k++)
			if (s.seen[k] != 1) {
				tfail("scan visited stable key %" PRIu64 " %u times", k, s.seen[k]);
				break;
			}
		if (s.bad)
			tfail("scan: %" PRIu64 " stable keys with wrong value counts", s.bad);
		atomic_fetch_add(&C.scans, 1);
	}
	free(s.seen);
	return NULL;
}

static void *cmaint(void *arg)
{
	(void)arg;
	uint64_t seed = 77;
	while (atomic_load(&C.writers_left) > 0 && !failed_already()) {
		idx_maint_stats_t st;
		/* budgets from one step to unbounded */
		uint64_t budget = (uint64_t[]){1, 20000, 200000, 0}[xs(&seed) % 4];
		int rc = idx_maintain(C.ix, budget, &st);
		if (rc != 0)
			tfail("idx_maintain: %d", rc);
		C.total.entries_moved += st.entries_moved;
		C.total.chunks_released += st.chunks_released;
		C.total.tables_shrunk += st.tables_shrunk;
		C.total.groups_visited += st.groups_visited;
		atomic_fetch_add(&C.passes, 1);
	}
	return NULL;
}

START_TEST(test_concurrent_exact)
{
	reset_failures();
	memset(&C, 0, sizeof(C));
	C.ix = new_idx(15);
	C.nstable = scaled(5000, 2000);
	C.rounds = scaled(6, 3);
	uint64_t nkeys = scaled(60000, 30000);
	for (uint64_t k = 0; k < C.nstable; k++)
		put_key(C.ix, STABLE_TAG, k);
	struct cworker w[CW];
	pthread_t rd[CR], sc, mt;
	atomic_store(&C.writers_left, CW);
	pthread_barrier_init(&C.phase, NULL, CW);
	for (unsigned i = 0; i < CW; i++) {
		w[i] = (struct cworker){.id = i, .nkeys = nkeys, .mask = calloc(nkeys, 1)};
		spawn(&w[i].th, cwriter, &w[i]);
	}
	for (uintptr_t i = 0; i < CR; i++)
		spawn(&rd[i], creader, (void *)(i + 1));
	spawn(&sc, cscanner, NULL);
	spawn(&mt, cmaint, NULL);
	for (unsigned i = 0; i < CW; i++)
		pthread_join(w[i].th, NULL);
	for (unsigned i = 0; i < CR; i++)
		pthread_join(rd[i], NULL);
	pthread_join(sc, NULL);
	pthread_join(mt, NULL);
	pthread_barrier_destroy(&C.phase);
	assert_no_failures("concurrent maintenance");
	/* a last pass with everyone gone, then the exact state */
	idx_maint_stats_t st;
	ck_assert_int_eq(idx_maintain(C.ix, 0, &st), 0);
	ck_assert_int_eq(idx_valid(C.ix), 0);
	for (uint64_t k = 0; k < C.nstable; k++)
		ck_assert(stable_ok(k));
	for (unsigned i = 0; i < CW; i++) {
		for (uint64_t k = 0; k < nkeys; k++)
			wcheck(&w[i], k);
		free(w[i].mask);
	}
	assert_no_failures("final state");
	fprintf(stderr, "concurrent: %" PRIu64 " passes, moved %" PRIu64 ", chunks released %"
		PRIu64 ", tables shrunk %" PRIu64 ", groups visited %" PRIu64 "; %" PRIu64
		" lookups, %" PRIu64 " scans; final depth %" PRIu64 "\n",
		atomic_load(&C.passes), C.total.entries_moved, C.total.chunks_released,
		C.total.tables_shrunk, C.total.groups_visited, atomic_load(&C.lookups),
		atomic_load(&C.scans), depth_of(C.ix));
	ck_assert_uint_gt(atomic_load(&C.passes), 0);
	ck_assert_uint_gt(C.total.entries_moved + st.entries_moved, 0);
	ck_assert_uint_gt(C.total.tables_shrunk + st.tables_shrunk, 0);
	idx_destroy(C.ix);
}
END_TEST

/* ---- resident memory (issue 13's target) ---- */

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%lu %lu", &size, &res), 2);
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static cid_t rkey(uint64_t k)
{
	return mk(KTAG + 9, k);
}

/* N single-valued keys inserted, 90% deleted, one pass: resident memory
 * of the index within 2x of a fresh index holding only the survivors.
 * N = 1M in the unit suite (100k under the sanitizers, which compare the
 * index's own accounting instead of RSS); the figure is N = 10M:
 *   CIDSTORE_TEST_SCALE=10 CK_RUN_CASE=rss build/tests/unit/test_index_maint */
START_TEST(test_rss_ratio)
{
	const uint64_t n = scaled(1000000, 100000);
	cid_t v = val_of(0, 0);
	/* the fresh index of the survivors first (its memory is unmapped at
	 * destroy, so it does not pad the second measurement) */
	uint64_t r0 = rss_bytes();
	idx_t *fresh = new_idx(21);
	for (uint64_t k = 0; k < n; k += 10) {
		cid_t key = rkey(k);
		ck_assert_int_eq(idx_insert(fresh, &key, &v, NULL), 1);
	}
	uint64_t r1 = rss_bytes();
	uint64_t fresh_mem = mem_of(fresh);
	uint64_t fresh_depth = depth_of(fresh);
	idx_destroy(fresh);

	uint64_t r2 = rss_bytes();
	idx_t *ix = new_idx(21);
	for (uint64_t k = 0; k < n; k++) {
		cid_t key = rkey(k);
		ck_assert_int_eq(idx_insert(ix, &key, &v, NULL), 1);
	}
	uint64_t r3 = rss_bytes(), full_depth = depth_of(ix);
	for (uint64_t k = 0; k < n; k++)
		if (k % 10 != 0) {
			cid_t key = rkey(k);
			ck_assert_int_eq(idx_delete_key(ix, &key, NULL), 1);
		}
	ck_assert_int_eq(idx_quiesce(ix), 0);
	uint64_t r4 = rss_bytes(), mem4 = mem_of(ix);
	double t0 = now_s();
	idx_maint_stats_t st;
	ck_assert_int_eq(idx_maintain(ix, 0, &st), 0);
	double pass_s = now_s() - t0;
	uint64_t r5 = rss_bytes(), mem5 = mem_of(ix);
	double fresh_rss = (double)(r1 - r0), rss = (double)(r5 > r2 ? r5 - r2 : 0);
	fprintf(stderr,
		"rss: %" PRIu64 " keys, 90%% deleted, one pass (%.2f s: %" PRIu64 " moved, %"
		PRIu64 " chunks released, %" PRIu64 " halvings, depth %" PRIu64 " -> %" PRIu64
		")\n  index RSS: full %.1f MiB, after deletes %.1f MiB, after the pass %.1f MiB"
		"\n  fresh index of the %" PRIu64 " survivors (depth %" PRIu64 "): %.1f MiB\n"
		"  ratio %.2f (RSS), %.2f (accounting: %.1f vs %.1f MiB)\n",
		n, pass_s, st.entries_moved, st.chunks_released, st.tables_shrunk, full_depth,
		depth_of(ix), (r3 - r2) / 1048576.0, (r4 - r2) / 1048576.0, rss / 1048576.0,
		n / 10, fresh_depth, fresh_rss / 1048576.0, rss / fresh_rss,
		(double)mem5 / (double)fresh_mem, mem5 / 1048576.0, fresh_mem / 1048576.0);
	ck_assert_uint_lt(mem5, mem4);
	for (uint64_t k = 0; k < n; k += 7) {
		cid_t key = rkey(k);
		ck_assert_int_eq(idx_lookup(ix, &key, NULL, 0), k % 10 == 0);
	}
	ck_assert_msg(mem5 <= 2 * fresh_mem, "accounting: %" PRIu64 " > 2 x %" PRIu64, mem5,
		      fresh_mem);
#if !defined(CIDSTORE_TSAN) && !defined(CIDSTORE_ASAN)
	ck_assert_msg(rss <= 2 * fresh_rss, "RSS %.0f > 2 x %.0f", rss, fresh_rss);
#endif
	idx_destroy(ix);
}
END_TEST

static Suite *maint_suite(void)
{
	Suite *s = suite_create("index_maint");
	/* first, while the process holds nothing else: it compares RSS */
	TCase *rss = tcase_create("rss");
	tcase_set_timeout(rss, 600);
	tcase_add_test(rss, test_rss_ratio);
	suite_add_tcase(s, rss);
	TCase *tc = tcase_create("maint");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_maintain_edges);
	tcase_add_test(tc, test_compaction_exact);
	tcase_add_test(tc, test_shrink_exact);
	tcase_add_test(tc, test_shrink_blocked_by_full_pair);
	tcase_add_test(tc, test_shrink_floor);
	tcase_add_test(tc, test_budget_resumes);
	tcase_add_test(tc, test_vset_demotes_to_inline);
	tcase_add_test(tc, test_concurrent_exact);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(maint_suite());
}
