/*
 * test_concurrency.c — the concurrency contract of include/cidstore.h,
 * checked from the outside with pthreads (release and TSan builds).
 *
 * Sizes: release sizes by default; CIDSTORE_TSAN (set by the TSan build)
 * selects the small sizes; the environment variable CIDSTORE_TEST_SCALE
 * (a positive number) multiplies whichever was chosen.
 *
 * Worker threads never call ck_assert (with CK_FORK=no a failing assert
 * longjmps into the test runner from the wrong thread): they record the
 * first failure with tfail(), and the test's own thread asserts at the end.
 *
 * Tests:
 *   growth_with_readers  writers on disjoint key ranges grow a one-bucket
 *                        table to millions of keys; readers check that every
 *                        published key holds exactly its values.
 *   hot_keys_owned       8 threads insert/delete their own values on 4 hot
 *                        keys crossing the inline/value-set boundary; every
 *                        return value is predicted; exact final state.
 *   prefix_suffix        readers of one key see an exact prefix of the
 *                        writer's inserts, then an exact suffix while it
 *                        deletes in order, never going backwards.
 *   delete_key_atomic    lookups racing delete_key see only states made by
 *                        complete operations (see the legality rule there).
 *   scan_during_writes   keys present for a whole scan are visited exactly
 *                        once with a legal value set, while writers grow
 *                        the table.
 */
#include <cidstore.h>
#include "unit_support.h"
#include <check.h>

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------- */
/* helpers                                                                 */
/* ---------------------------------------------------------------------- */

/* sm64, mk, cid_eq, scaled, tfail / reset_failures / assert_no_failures /
 * failed_already, open_mem_store, spawn, now_s: unit_support.h */

/* ---------------------------------------------------------------------- */
/* 1. growth from one bucket to millions of keys, readers checking         */
/* ---------------------------------------------------------------------- */

enum { G_WRITERS = 2, G_READERS = 2, G_KTAG = 0xC000, G_VTAG = 0xD000 };

struct growth {
	cidstore_t *s;
	size_t per_writer;
	_Alignas(64) atomic_size_t progress[G_WRITERS][8]; /* [w][0], padded */
	atomic_bool done;
	atomic_ulong reads;
};

static unsigned growth_nv(size_t i) { return i % 16 == 0 ? 3 : 1; }

static cid_t growth_key(unsigned w, size_t i) { return mk(G_KTAG + w, i); }
static cid_t growth_val(unsigned w, size_t i, unsigned j)
{
	return mk(G_VTAG + w, i * 4 + j);
}

struct growth_arg {
	struct growth *g;
	unsigned id;
};

static void *growth_writer(void *p)
{
	struct growth_arg *a = p;
	struct growth *g = a->g;
	for (size_t i = 0; i < g->per_writer && !failed_already(); i++) {
		cid_t k = growth_key(a->id, i);
		for (unsigned j = 0; j < growth_nv(i); j++) {
			cid_t v = growth_val(a->id, i, j);
			int rc = cidstore_insert(g->s, &k, &v);
			if (rc != 1)
				tfail("writer %u key %zu value %u: insert returned %d", a->id, i, j, rc);
		}
		/* publish: every key < i + 1 is complete (pairs with the readers'
		 * acquire load) */
		atomic_store_explicit(&g->progress[a->id][0], i + 1, memory_order_release);
	}
	return NULL;
}

static void growth_check_key(struct growth *g, unsigned w, size_t i, const char *who)
{
	cid_t k = growth_key(w, i), out[8];
	unsigned nv = growth_nv(i);
	long c = cidstore_lookup(g->s, &k, out, 8);
	if (c != (long)nv) {
		tfail("%s: published key (writer %u, #%zu): lookup %ld, expected %u", who, w, i, c, nv);
		return;
	}
	unsigned seen = 0;
	for (long a = 0; a < c; a++) {
		bool ok = false;
		for (unsigned j = 0; j < nv; j++) {
			cid_t v = growth_val(w, i, j);
			if (cid_eq(&out[a], &v) && !(seen >> j & 1)) {
				seen |= 1u << j;
				ok = true;
			}
		}
		if (!ok)
			tfail("%s: published key (writer %u, #%zu): wrong value in lookup", who, w, i);
	}
	cid_t v0 = growth_val(w, i, nv - 1);
	if (cidstore_contains(g->s, &k, &v0) != 1)
		tfail("%s: published key (writer %u, #%zu): contains != 1", who, w, i);
}

static void *growth_reader(void *p)
{
	struct growth_arg *a = p;
	struct growth *g = a->g;
	uint64_t r = 0x1234 + a->id;
	unsigned long n = 0;
	while (!atomic_load_explicit(&g->done, memory_order_acquire) && !failed_already()) {
		r = sm64(r);
		unsigned w = (unsigned)(r % G_WRITERS);
		/* pairs with the writer's release store */
		size_t pub = atomic_load_explicit(&g->progress[w][0], memory_order_acquire);
		if (pub == 0) {
			sched_yield();
			continue;
		}
		/* alternately the newest published key and a random older one */
		size_t i = (n & 1) ? pub - 1 : (size_t)(sm64(r) % pub);
		growth_check_key(g, w, i, "reader");
		if ((n & 15) == 0) {
			/* a key no writer ever inserts */
			cid_t k = growth_key(w, g->per_writer + (r & 0xffff));
			long c = cidstore_lookup(g->s, &k, NULL, 0);
			if (c != 0)
				tfail("reader: never-inserted key found (lookup %ld)", c);
		}
		n++;
	}
	atomic_fetch_add(&g->reads, n);
	return NULL;
}

START_TEST(test_growth_with_readers)
{
	reset_failures();
	struct growth *g = aligned_alloc(64, (sizeof *g + 63) / 64 * 64);
	ck_assert_ptr_nonnull(g);
	memset(g, 0, sizeof *g);
	g->s = open_mem_store(0x51, 0, false);
	g->per_writer = scaled(1200000, 50000);
	pthread_t tw[G_WRITERS], tr[G_READERS];
	struct growth_arg aw[G_WRITERS], ar[G_READERS];
	double t0 = now_s();
	for (unsigned i = 0; i < G_READERS; i++) {
		ar[i] = (struct growth_arg){g, i};
		spawn(&tr[i], growth_reader, &ar[i]);
	}
	for (unsigned i = 0; i < G_WRITERS; i++) {
		aw[i] = (struct growth_arg){g, i};
		spawn(&tw[i], growth_writer, &aw[i]);
	}
	for (unsigned i = 0; i < G_WRITERS; i++)
		pthread_join(tw[i], NULL);
	atomic_store_explicit(&g->done, true, memory_order_release);
	for (unsigned i = 0; i < G_READERS; i++)
		pthread_join(tr[i], NULL);
	double t1 = now_s();
	assert_no_failures("growth_with_readers");

	uint64_t keys = (uint64_t)G_WRITERS * g->per_writer, values = 0;
	for (size_t i = 0; i < g->per_writer; i++)
		values += growth_nv(i);
	values *= G_WRITERS;
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(g->s, &st), 0);
	fprintf(stderr, "growth_with_readers: %" PRIu64 " keys in %.2f s, %lu reader checks, "
		"depth %u, buckets %" PRIu64 ", splits %" PRIu64 ", dir_rebuilds %" PRIu64 "\n",
		keys, t1 - t0, atomic_load(&g->reads), st.global_depth, st.buckets, st.splits,
		st.dir_rebuilds);
	ck_assert_msg(st.keys == keys && st.values == values,
		      "final stats keys %" PRIu64 " values %" PRIu64 ", expected %" PRIu64
		      " %" PRIu64, st.keys, st.values, keys, values);
	ck_assert_msg(st.global_depth > 0 && st.splits > 0, "table did not grow");
	for (unsigned w = 0; w < G_WRITERS; w++)
		for (size_t i = 0; i < g->per_writer; i++)
			growth_check_key(g, w, i, "final check");
	assert_no_failures("growth_with_readers final check");
	ck_assert_int_eq(cidstore_close(g->s), 0);
	free(g);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* 2. hot keys, owned values                                               */
/* ---------------------------------------------------------------------- */

enum { H_THREADS = 8, H_KEYS = 4, H_OWN = 3, H_KTAG = 0xE000, H_VTAG = 0xE100 };

struct hot {
	cidstore_t *s;
	size_t ops;
	pthread_barrier_t start;
	unsigned char state[H_THREADS][H_KEYS][H_OWN]; /* owner thread only, read after join */
	atomic_ulong spill_crossings;
};

static cid_t hot_key(unsigned k) { return mk(H_KTAG, k); }
static cid_t hot_val(unsigned k, unsigned t, unsigned j)
{
	return mk(H_VTAG + k, t * 16 + j);
}

struct hot_arg {
	struct hot *h;
	unsigned id;
};

/* Checks a lookup result of hot key k: no duplicates, only values some
 * thread owns on that key, and thread t's own values exactly as t expects. */
static void hot_check(struct hot *h, unsigned t, unsigned k, const char *when)
{
	enum { CAP = H_THREADS * H_OWN + 8 };
	cid_t key = hot_key(k), out[CAP];
	long c = cidstore_lookup(h->s, &key, out, CAP);
	if (c < 0 || c > H_THREADS * H_OWN) {
		tfail("thread %u key %u (%s): lookup count %ld", t, k, when, c);
		return;
	}
	uint32_t seen[H_THREADS] = {0};
	for (long a = 0; a < c; a++) {
		uint64_t code = out[a].w[1];
		unsigned ot = (unsigned)(code / 16), oj = (unsigned)(code % 16);
		if (out[a].w[0] != H_VTAG + k || ot >= H_THREADS || oj >= H_OWN) {
			tfail("thread %u key %u (%s): foreign value in lookup", t, k, when);
			return;
		}
		cid_t want = hot_val(k, ot, oj);
		if (!cid_eq(&out[a], &want)) {
			tfail("thread %u key %u (%s): torn value in lookup", t, k, when);
			return;
		}
		if (seen[ot] >> oj & 1) {
			tfail("thread %u key %u (%s): duplicate value in lookup", t, k, when);
			return;
		}
		seen[ot] |= 1u << oj;
	}
	for (unsigned j = 0; j < H_OWN; j++) {
		if ((seen[t] >> j & 1) != h->state[t][k][j])
			tfail("thread %u key %u (%s): own value %u %s in lookup but expected %s",
			     t, k, when, j, (seen[t] >> j & 1) ? "present" : "absent",
			     h->state[t][k][j] ? "present" : "absent");
	}
}

static void *hot_worker(void *p)
{
	struct hot_arg *a = p;
	struct hot *h = a->h;
	unsigned t = a->id;
	uint64_t r = 0xabc0 + t;
	unsigned long crossings = 0;
	pthread_barrier_wait(&h->start);
	for (size_t i = 0; i < h->ops && !failed_already(); i++) {
		r = sm64(r);
		unsigned k = (unsigned)(r % H_KEYS), j = (unsigned)((r >> 8) % H_OWN);
		unsigned dice = (unsigned)((r >> 16) % 9);
		cid_t key = hot_key(k), v = hot_val(k, t, j);
		if (h->state[t][k][j]) {
			/* present: delete it (owned, so it must report 1) */
			int rc = cidstore_delete_value(h->s, &key, &v);
			if (rc != 1)
				tfail("thread %u key %u: delete_value of own present value returned %d",
				     t, k, rc);
			h->state[t][k][j] = 0;
		} else if (dice == 0) {
			/* absent: insert with probability 1/9 (so ~10% of the 24
			 * values per key are present: the count hovers around 2-3) */
			int rc = cidstore_insert(h->s, &key, &v);
			if (rc != 1)
				tfail("thread %u key %u: insert of own absent value returned %d",
				     t, k, rc);
			h->state[t][k][j] = 1;
		} else if (dice < 3) {
			int rc = cidstore_delete_value(h->s, &key, &v);
			if (rc != 0)
				tfail("thread %u key %u: delete_value of own absent value returned %d",
				     t, k, rc);
		}
		int rc = cidstore_contains(h->s, &key, &v);
		if (rc != h->state[t][k][j])
			tfail("thread %u key %u: contains(own value) %d, expected %d", t, k, rc,
			     h->state[t][k][j]);
		if ((i & 3) == 0)
			hot_check(h, t, k, "during");
		if ((i & 255) == 0) {
			long c = cidstore_lookup(h->s, &key, NULL, 0);
			crossings += c == 2 || c == 3;
		}
	}
	atomic_fetch_add(&h->spill_crossings, crossings);
	return NULL;
}

START_TEST(test_hot_keys_owned)
{
	reset_failures();
	struct hot *h = calloc(1, sizeof *h);
	ck_assert_ptr_nonnull(h);
	h->s = open_mem_store(0x52, 0, false);
	h->ops = scaled(1000000, 15000);
	pthread_barrier_init(&h->start, NULL, H_THREADS);
	pthread_t th[H_THREADS];
	struct hot_arg ha[H_THREADS];
	double t0 = now_s();
	for (unsigned i = 0; i < H_THREADS; i++) {
		ha[i] = (struct hot_arg){h, i};
		spawn(&th[i], hot_worker, &ha[i]);
	}
	for (unsigned i = 0; i < H_THREADS; i++)
		pthread_join(th[i], NULL);
	double t1 = now_s();
	pthread_barrier_destroy(&h->start);
	assert_no_failures("hot_keys_owned");
	fprintf(stderr, "hot_keys_owned: %zu ops/thread x %d threads in %.2f s; "
		"sampled counts of 2 or 3: %lu\n", h->ops, H_THREADS, t1 - t0,
		atomic_load(&h->spill_crossings));

	/* exact final state = union of the owners' expectations */
	uint64_t keys = 0, values = 0;
	for (unsigned k = 0; k < H_KEYS; k++) {
		cid_t key = hot_key(k), out[H_THREADS * H_OWN + 8];
		long want = 0;
		for (unsigned t = 0; t < H_THREADS; t++)
			for (unsigned j = 0; j < H_OWN; j++)
				want += h->state[t][k][j];
		long c = cidstore_lookup(h->s, &key, out, H_THREADS * H_OWN + 8);
		ck_assert_msg(c == want, "key %u: final count %ld, expected %ld", k, c, want);
		for (unsigned t = 0; t < H_THREADS; t++) {
			hot_check(h, t, k, "final");
			for (unsigned j = 0; j < H_OWN; j++) {
				cid_t v = hot_val(k, t, j);
				ck_assert_int_eq(cidstore_contains(h->s, &key, &v), h->state[t][k][j]);
			}
		}
		keys += want > 0;
		values += (uint64_t)want;
	}
	assert_no_failures("hot_keys_owned final state");
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(h->s, &st), 0);
	ck_assert_msg(st.keys == keys && st.values == values,
		      "stats keys %" PRIu64 " values %" PRIu64 ", expected %" PRIu64 " %" PRIu64,
		      st.keys, st.values, keys, values);
	ck_assert_int_eq(cidstore_close(h->s), 0);
	free(h);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* 3. exact prefix while a writer grows a key, exact suffix as it shrinks  */
/* ---------------------------------------------------------------------- */

/*
 * The writer runs R rounds on one key; round r inserts v(r,0), v(r,1), ...,
 * v(r,M-1) in order, then deletes them in the same order.  The states the
 * key passes through, in order, are
 *     {}  {v0}  {v0,v1} ... {v0..v(M-1)}  {v1..v(M-1)} ... {v(M-1)}  {}
 * numbered r*2M + k for the prefix of length k and r*2M + M + d for the
 * suffix starting at d.  A lookup must return one of these states exactly,
 * and for one reader the number never decreases.
 */
enum { P_READERS = 2, P_KTAG = 0xF000, P_VTAG = 0xF100 };

struct prefix {
	cidstore_t *s;
	size_t m, rounds;
	atomic_bool done;
	atomic_ulong samples, distinct;
	atomic_ulong tick; /* lookups completed by readers (pacing only) */
};

/* Pacing: after each change the writer waits (briefly) until some reader
 * has completed a lookup, so readers observe many intermediate states. */
static void prefix_pace(struct prefix *x)
{
	unsigned long t = atomic_load_explicit(&x->tick, memory_order_relaxed);
	for (int spin = 0; spin < 200 &&
	     atomic_load_explicit(&x->tick, memory_order_relaxed) == t; spin++)
		sched_yield();
}

static cid_t prefix_val(size_t m, size_t r, size_t i) { return mk(P_VTAG, r * m + i); }

static void *prefix_writer(void *p)
{
	struct prefix *x = p;
	cid_t key = mk(P_KTAG, 0);
	for (size_t r = 0; r < x->rounds && !failed_already(); r++) {
		for (size_t i = 0; i < x->m; i++) {
			cid_t v = prefix_val(x->m, r, i);
			int rc = cidstore_insert(x->s, &key, &v);
			if (rc != 1)
				tfail("prefix writer: round %zu insert %zu returned %d", r, i, rc);
			prefix_pace(x);
		}
		for (size_t i = 0; i < x->m; i++) {
			cid_t v = prefix_val(x->m, r, i);
			int rc = cidstore_delete_value(x->s, &key, &v);
			if (rc != 1)
				tfail("prefix writer: round %zu delete %zu returned %d", r, i, rc);
			prefix_pace(x);
		}
	}
	atomic_store_explicit(&x->done, true, memory_order_release);
	return NULL;
}

static void *prefix_reader(void *p)
{
	struct prefix *x = p;
	const size_t m = x->m, cap = m + 8;
	cid_t key = mk(P_KTAG, 0);
	cid_t *out = malloc(cap * sizeof *out);
	uint64_t *stamp = calloc(m, sizeof *stamp);
	uint64_t last = 0, sample = 0;
	unsigned long distinct = 0;
	while (!atomic_load_explicit(&x->done, memory_order_acquire) && !failed_already()) {
		sample++;
		long c = cidstore_lookup(x->s, &key, out, cap);
		atomic_fetch_add_explicit(&x->tick, 1, memory_order_relaxed);
		uint64_t pos;
		if (c < 0 || (size_t)c > m) {
			tfail("prefix reader: lookup count %ld (max %zu)", c, m);
			break;
		}
		if (c == 0) {
			/* {} ends round r and starts round r+1: the same state */
			pos = last % (2 * m) == 0 ? last : (last / (2 * m) + 1) * 2 * m;
		} else {
			size_t r = out[0].w[1] / m, lo = m, hi = 0;
			bool bad = false;
			for (long a = 0; a < c; a++) {
				uint64_t code = out[a].w[1];
				size_t i = (size_t)(code - r * m);
				if (code / m != r || out[a].w[0] != P_VTAG) {
					tfail("prefix reader: values of two rounds (or foreign) in one lookup "
					     "(count %ld)", c);
					bad = true;
					break;
				}
				cid_t want = prefix_val(m, r, i);
				if (!cid_eq(&out[a], &want)) {
					tfail("prefix reader: torn value");
					bad = true;
					break;
				}
				if (stamp[i] == sample) {
					tfail("prefix reader: duplicate value %zu in one lookup", i);
					bad = true;
					break;
				}
				stamp[i] = sample;
				lo = i < lo ? i : lo;
				hi = i > hi ? i : hi;
			}
			if (bad)
				break;
			if (hi - lo + 1 != (size_t)c) {
				tfail("prefix reader: round %zu: %ld values spanning v%zu..v%zu: not "
				     "contiguous", r, c, lo, hi);
				break;
			}
			if (lo == 0) {
				pos = r * 2 * m + (size_t)c;
			} else if (hi == m - 1) {
				pos = r * 2 * m + m + lo;
			} else {
				tfail("prefix reader: round %zu: v%zu..v%zu is neither a prefix nor a "
				     "suffix", r, lo, hi);
				break;
			}
		}
		if (pos < last) {
			tfail("prefix reader: went backwards from state %" PRIu64 " to %" PRIu64
			     " (round %" PRIu64 ", k %" PRIu64 " -> round %" PRIu64 ", k %" PRIu64 ")",
			     last, pos, last / (2 * m), last % (2 * m), pos / (2 * m), pos % (2 * m));
			break;
		}
		distinct += pos != last;
		last = pos;
	}
	atomic_fetch_add(&x->samples, sample);
	atomic_fetch_add(&x->distinct, distinct);
	free(out);
	free(stamp);
	return NULL;
}

START_TEST(test_prefix_suffix)
{
	reset_failures();
	struct prefix x;
	memset(&x, 0, sizeof x);
	x.s = open_mem_store(0x53, 0, false);
	x.m = scaled(1000, 200);
	x.rounds = scaled(4, 3);
	/* some unrelated keys so the hot key shares a real table */
	for (uint64_t i = 0; i < 1000; i++) {
		cid_t k = mk(P_KTAG, i + 1), v = mk(P_VTAG + 1, i);
		ck_assert_int_eq(cidstore_insert(x.s, &k, &v), 1);
	}
	pthread_t tw, tr[P_READERS];
	double t0 = now_s();
	for (int i = 0; i < P_READERS; i++)
		spawn(&tr[i], prefix_reader, &x);
	spawn(&tw, prefix_writer, &x);
	pthread_join(tw, NULL);
	for (int i = 0; i < P_READERS; i++)
		pthread_join(tr[i], NULL);
	assert_no_failures("prefix_suffix");
	fprintf(stderr, "prefix_suffix: m %zu, %zu rounds, %.2f s, %lu lookups, %lu state changes "
		"seen\n", x.m, x.rounds, now_s() - t0, atomic_load(&x.samples),
		atomic_load(&x.distinct));
	cid_t key = mk(P_KTAG, 0);
	ck_assert_int_eq(cidstore_lookup(x.s, &key, NULL, 0), 0);
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(x.s, &st), 0);
	ck_assert_int_eq(st.keys, 1000);
	ck_assert_int_eq(st.values, 1000);
	ck_assert_int_eq(cidstore_close(x.s), 0);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* 4. lookups racing delete_key                                            */
/* ---------------------------------------------------------------------- */

/*
 * The writer runs rounds on one key.  Round r: insert v(r,0), ..., v(r,m-1)
 * in this order (individual inserts on even rounds, one cidstore_apply batch
 * on odd rounds — apply is per-operation linearizable, so the same states
 * appear), then remove the whole key with ONE delete_key (odd rounds: an
 * apply holding one DELETE_KEY op).  m cycles through sizes that stay inline
 * and sizes that spill.
 *
 * Legal states, in order: {}, {v(r,0)}, {v(r,0),v(r,1)}, ..., the full set
 * of round r, then {} (delete_key is one operation), then round r+1's.  So a
 * lookup must return an exact prefix of one round's values, and for one
 * reader the (round, length) pair never decreases, and after it saw round r
 * non-empty, {} means round r is gone for good: a later non-empty state must
 * come from a later round.  A partial delete_key shows up as a non-prefix
 * set, a shrinking prefix, or round r's values after {}.
 */
enum { D_READERS = 2, D_KTAG = 0xA000, D_VTAG = 0xA100, D_MAXM = 64, D_SLOT = D_MAXM + 2 };
static const size_t d_sizes[] = {1, 2, 3, 4, 5, 8, 2, 17, 3, 64};
#define D_NSIZES (sizeof d_sizes / sizeof d_sizes[0])

struct delkey {
	cidstore_t *s;
	size_t rounds;
	atomic_bool done;
	atomic_ulong samples, full_seen, partial_seen;
	bool apply_unsupported;
};

static cid_t delkey_val(size_t r, size_t i) { return mk(D_VTAG, r * D_SLOT + i); }

static void *delkey_writer(void *p)
{
	struct delkey *d = p;
	cid_t key = mk(D_KTAG, 0);
	cidstore_op_t ops[D_MAXM];
	for (size_t r = 0; r < d->rounds && !failed_already(); r++) {
		size_t m = d_sizes[r % D_NSIZES];
		bool use_apply = (r & 1) && !d->apply_unsupported;
		if (use_apply) {
			for (size_t i = 0; i < m; i++)
				ops[i] = (cidstore_op_t){CIDSTORE_OP_INSERT, key, delkey_val(r, i)};
			int rc = cidstore_apply(d->s, ops, m);
			if (rc == CIDSTORE_ENOTSUP && r == 1) {
				d->apply_unsupported = true; /* reported by the test */
				use_apply = false;
			} else if (rc != (int)m) {
				tfail("delete_key writer: round %zu apply(%zu inserts) returned %d", r, m, rc);
			}
		}
		if (!use_apply) {
			for (size_t i = 0; i < m; i++) {
				cid_t v = delkey_val(r, i);
				int rc = cidstore_insert(d->s, &key, &v);
				if (rc != 1)
					tfail("delete_key writer: round %zu insert %zu returned %d", r, i, rc);
			}
		}
		sched_yield(); /* let readers see the full set now and then */
		long n;
		if (use_apply) {
			ops[0] = (cidstore_op_t){CIDSTORE_OP_DELETE_KEY, key, key};
			n = cidstore_apply(d->s, ops, 1);
			if (n != 1)
				tfail("delete_key writer: round %zu apply(DELETE_KEY) returned %ld", r, n);
		} else {
			n = cidstore_delete_key(d->s, &key);
			if (n != (long)m)
				tfail("delete_key writer: round %zu delete_key returned %ld, expected %zu",
				     r, n, m);
		}
	}
	atomic_store_explicit(&d->done, true, memory_order_release);
	return NULL;
}

static void *delkey_reader(void *p)
{
	struct delkey *d = p;
	cid_t key = mk(D_KTAG, 0), out[D_MAXM + 8];
	/* position: round * D_SLOT + length; D_SLOT - 1 = "round emptied" */
	uint64_t last = 0;
	unsigned long samples = 0, full = 0, partial = 0;
	while (!atomic_load_explicit(&d->done, memory_order_acquire) && !failed_already()) {
		samples++;
		long c = cidstore_lookup(d->s, &key, out, D_MAXM + 8);
		uint64_t pos;
		if (c < 0 || c > D_MAXM) {
			tfail("delete_key reader: lookup count %ld", c);
			break;
		}
		if (c == 0) {
			uint64_t k = last % D_SLOT;
			pos = (k == 0 || k == D_SLOT - 1) ? last : last - k + D_SLOT - 1;
		} else {
			size_t r = out[0].w[1] / D_SLOT, m = d_sizes[r % D_NSIZES];
			uint64_t seen = 0;
			bool bad = false;
			for (long a = 0; a < c; a++) {
				uint64_t code = out[a].w[1];
				size_t i = (size_t)(code % D_SLOT);
				cid_t want = delkey_val(r, i);
				if (code / D_SLOT != r || i >= m || !cid_eq(&out[a], &want)) {
					tfail("delete_key reader: value from another round or foreign "
					     "(round %zu, count %ld)", r, c);
					bad = true;
					break;
				}
				if (seen >> i & 1) {
					tfail("delete_key reader: duplicate value");
					bad = true;
					break;
				}
				seen |= 1ULL << i;
			}
			if (bad)
				break;
			uint64_t prefix = c == 64 ? ~0ULL : (1ULL << c) - 1;
			if (seen != prefix) {
				tfail("delete_key reader: round %zu (m %zu): %ld values that are not "
				     "v0..v%ld: a partial set (mask %#" PRIx64 ")", r, m, c, c - 1, seen);
				break;
			}
			pos = (uint64_t)r * D_SLOT + (uint64_t)c;
			full += (size_t)c == m;
			partial += (size_t)c < m;
		}
		if (pos < last) {
			tfail("delete_key reader: went backwards: round %" PRIu64 " length %" PRIu64
			     " after round %" PRIu64 " %s %" PRIu64,
			     pos / D_SLOT, pos % D_SLOT, last / D_SLOT,
			     last % D_SLOT == D_SLOT - 1 ? "emptied, was" : "length",
			     last % D_SLOT);
			break;
		}
		last = pos;
		if ((samples & 63) == 0)
			sched_yield(); /* 3 threads on 2 cores: let the writer run */
	}
	atomic_fetch_add(&d->samples, samples);
	atomic_fetch_add(&d->full_seen, full);
	atomic_fetch_add(&d->partial_seen, partial);
	return NULL;
}

START_TEST(test_delete_key_atomic)
{
	reset_failures();
	struct delkey d;
	memset(&d, 0, sizeof d);
	d.s = open_mem_store(0x54, 0, false);
	d.rounds = scaled(40000, 2000);
	pthread_t tw, tr[D_READERS];
	double t0 = now_s();
	for (int i = 0; i < D_READERS; i++)
		spawn(&tr[i], delkey_reader, &d);
	spawn(&tw, delkey_writer, &d);
	pthread_join(tw, NULL);
	for (int i = 0; i < D_READERS; i++)
		pthread_join(tr[i], NULL);
	assert_no_failures("delete_key_atomic");
	fprintf(stderr, "delete_key_atomic: %.2f s, %zu rounds, %lu lookups (%lu full sets, %lu "
		"insert-prefixes)%s\n", now_s() - t0, d.rounds, atomic_load(&d.samples),
		atomic_load(&d.full_seen), atomic_load(&d.partial_seen),
		d.apply_unsupported ? "; NOTE: cidstore_apply returned ENOTSUP in memory" : "");
	cid_t key = mk(D_KTAG, 0);
	ck_assert_int_eq(cidstore_lookup(d.s, &key, NULL, 0), 0);
	ck_assert_int_eq(cidstore_close(d.s), 0);
	ck_assert_msg(!d.apply_unsupported,
		      "cidstore_apply returned CIDSTORE_ENOTSUP on an in-memory store; the header "
		      "says in-memory stores apply the batch directly (the rest of the test passed)");
}
END_TEST

/* ---------------------------------------------------------------------- */
/* 5. scan during writes                                                   */
/* ---------------------------------------------------------------------- */

enum {
	S_STABLE = 0x5000, S_STABLE_V = 0x5100, /* fixed keys, fixed values */
	S_SEMI = 0x5200, S_SEMI_V = 0x5300,     /* fixed key, values A + toggled B,C,D */
	S_CHURN = 0x5400, S_CHURN_V = 0x5500,   /* inserted / deleted while scanning */
	S_CHURNERS = 2,
};

struct scanw {
	cidstore_t *s;
	size_t nstable, nsemi, nchurn;
	atomic_bool done;
	atomic_ulong scans;
};

static unsigned stable_nv(size_t i) { return (unsigned)(i % 4) + 1; }

struct scan_visit {
	struct scanw *w;
	unsigned char *vs, *vm; /* visits of stable / semi keys in this scan */
	unsigned long other;
	bool bad;
};

static int scanw_cb(const cid_t *key, const cid_t *values, size_t n, void *p)
{
	struct scan_visit *v = p;
	struct scanw *w = v->w;
	if (n == 0) {
		tfail("scan: callback with nvalues 0");
		return 1;
	}
	uint64_t tag = key->w[0], i = key->w[1];
	cid_t want = mk(tag, i);
	if (!cid_eq(key, &want)) {
		tfail("scan: mangled key");
		return 1;
	}
	if (tag == S_STABLE && i < w->nstable) {
		v->vs[i]++;
		if (n != stable_nv(i)) {
			tfail("scan: stable key %" PRIu64 ": %zu values, expected %u", i, n, stable_nv(i));
			return 1;
		}
		unsigned seen = 0;
		for (size_t a = 0; a < n; a++) {
			uint64_t j = values[a].w[1] - i * 4;
			cid_t wv = mk(S_STABLE_V, i * 4 + j);
			if (j >= n || !cid_eq(&values[a], &wv) || (seen >> j & 1)) {
				tfail("scan: stable key %" PRIu64 ": wrong value set", i);
				return 1;
			}
			seen |= 1u << j;
		}
	} else if (tag == S_SEMI && i < w->nsemi) {
		v->vm[i]++;
		unsigned seen = 0;
		if (n > 4) {
			tfail("scan: semi-stable key %" PRIu64 ": %zu values", i, n);
			return 1;
		}
		for (size_t a = 0; a < n; a++) {
			uint64_t j = values[a].w[1] - i * 4;
			cid_t wv = mk(S_SEMI_V, i * 4 + j);
			if (j >= 4 || !cid_eq(&values[a], &wv) || (seen >> j & 1)) {
				tfail("scan: semi-stable key %" PRIu64 ": wrong or duplicate value", i);
				return 1;
			}
			seen |= 1u << j;
		}
		if (!(seen & 1)) {
			tfail("scan: semi-stable key %" PRIu64 ": its permanent value is missing", i);
			return 1;
		}
	} else if (tag == S_CHURN) {
		cid_t wv = mk(S_CHURN_V, i);
		if (n != 1 || !cid_eq(&values[0], &wv)) {
			tfail("scan: churn key %" PRIu64 ": %zu values / wrong value", i, n);
			return 1;
		}
		v->other++;
	} else {
		tfail("scan: a key that was never inserted (tag %#" PRIx64 ")", tag);
		return 1;
	}
	return 0;
}

static void *scanw_scanner(void *p)
{
	struct scanw *w = p;
	struct scan_visit v = {w, calloc(w->nstable, 1), calloc(w->nsemi, 1), 0, false};
	unsigned long scans = 0;
	/* at least 2 scans, and keep scanning while the writers run */
	while ((scans < 2 || !atomic_load_explicit(&w->done, memory_order_acquire)) &&
	       !failed_already()) {
		memset(v.vs, 0, w->nstable);
		memset(v.vm, 0, w->nsemi);
		v.other = 0;
		int rc = cidstore_scan(w->s, scanw_cb, &v);
		if (rc != 0) {
			tfail("scan %lu returned %d", scans, rc);
			break;
		}
		for (size_t i = 0; i < w->nstable; i++)
			if (v.vs[i] != 1) {
				tfail("scan %lu: stable key %zu visited %u times", scans, i, v.vs[i]);
				break;
			}
		for (size_t i = 0; i < w->nsemi; i++)
			if (v.vm[i] != 1) {
				tfail("scan %lu: semi-stable key %zu visited %u times", scans, i, v.vm[i]);
				break;
			}
		cidstore_stats_t st;
		if (cidstore_stats(w->s, &st) != 0)
			tfail("stats during writes failed");
		scans++;
	}
	atomic_fetch_add(&w->scans, scans);
	free(v.vs);
	free(v.vm);
	return NULL;
}

struct churn_arg {
	struct scanw *w;
	unsigned id;
};

static void *scanw_churner(void *p)
{
	struct churn_arg *a = p;
	struct scanw *w = a->w;
	for (size_t n = 0; n < w->nchurn && !failed_already(); n++) {
		uint64_t i = n * S_CHURNERS + a->id;
		cid_t k = mk(S_CHURN, i), v = mk(S_CHURN_V, i);
		if (cidstore_insert(w->s, &k, &v) != 1)
			tfail("churn: insert %" PRIu64 " failed", i);
		if (n % 3 == 2) { /* delete an older one */
			uint64_t o = (n / 2) * S_CHURNERS + a->id;
			cid_t ko = mk(S_CHURN, o);
			long rc = cidstore_delete_key(w->s, &ko);
			if (rc != 1 && rc != 0)
				tfail("churn: delete_key returned %ld", rc);
		}
	}
	return NULL;
}

static void *scanw_toggler(void *p)
{
	struct scanw *w = p;
	unsigned char *st = calloc(w->nsemi, 1); /* bits of B, C, D present */
	uint64_t r = 77;
	while (!atomic_load_explicit(&w->done, memory_order_acquire) && !failed_already()) {
		r = sm64(r);
		size_t i = (size_t)(r % w->nsemi);
		unsigned j = 1 + (unsigned)((r >> 20) % 3);
		cid_t k = mk(S_SEMI, i), v = mk(S_SEMI_V, i * 4 + j);
		if (st[i] >> j & 1) {
			if (cidstore_delete_value(w->s, &k, &v) != 1)
				tfail("toggler: delete_value failed");
		} else if (cidstore_insert(w->s, &k, &v) != 1) {
			tfail("toggler: insert failed");
		}
		st[i] ^= (unsigned char)(1u << j);
	}
	free(st);
	return NULL;
}

START_TEST(test_scan_during_writes)
{
	reset_failures();
	struct scanw w;
	memset(&w, 0, sizeof w);
	w.s = open_mem_store(0x55, 0, false);
	w.nstable = scaled(50000, 3000);
	w.nsemi = scaled(2000, 200);
	w.nchurn = scaled(500000, 20000);
	for (size_t i = 0; i < w.nstable; i++) {
		cid_t k = mk(S_STABLE, i);
		for (unsigned j = 0; j < stable_nv(i); j++) {
			cid_t v = mk(S_STABLE_V, i * 4 + j);
			ck_assert_int_eq(cidstore_insert(w.s, &k, &v), 1);
		}
	}
	for (size_t i = 0; i < w.nsemi; i++) {
		cid_t k = mk(S_SEMI, i), v = mk(S_SEMI_V, i * 4);
		ck_assert_int_eq(cidstore_insert(w.s, &k, &v), 1);
	}
	pthread_t ts, tt, tc[S_CHURNERS];
	struct churn_arg ca[S_CHURNERS];
	double t0 = now_s();
	spawn(&ts, scanw_scanner, &w);
	spawn(&tt, scanw_toggler, &w);
	for (unsigned i = 0; i < S_CHURNERS; i++) {
		ca[i] = (struct churn_arg){&w, i};
		spawn(&tc[i], scanw_churner, &ca[i]);
	}
	for (unsigned i = 0; i < S_CHURNERS; i++)
		pthread_join(tc[i], NULL);
	atomic_store_explicit(&w.done, true, memory_order_release);
	pthread_join(tt, NULL);
	pthread_join(ts, NULL);
	assert_no_failures("scan_during_writes");
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(w.s, &st), 0);
	fprintf(stderr, "scan_during_writes: %.2f s, %lu scans; table now %" PRIu64 " keys, depth %u, "
		"%" PRIu64 " splits\n", now_s() - t0, atomic_load(&w.scans), st.keys, st.global_depth, st.splits);
	ck_assert_int_eq(cidstore_close(w.s), 0);
}
END_TEST

static Suite *concurrency_suite(void)
{
	Suite *s = suite_create("concurrency");
	TCase *tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_growth_with_readers);
	tcase_add_test(tc, test_hot_keys_owned);
	tcase_add_test(tc, test_prefix_suffix);
	tcase_add_test(tc, test_delete_key_atomic);
	tcase_add_test(tc, test_scan_during_writes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(concurrency_suite());
}
