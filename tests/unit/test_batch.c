/*
 * test_batch.c — the batched calls (cidstore_lookup_many,
 * cidstore_insert_many), cidstore_values and very large value sets.
 *
 * What is checked (every expectation is taken from include/cidstore.h):
 *   - lookup_many against cidstore_lookup, key by key: present keys with
 *     1, 2, 3, 17 and 1000 values, absent keys, a key repeated in the
 *     batch, cap 0 (out NULL), cap smaller than, equal to and larger than
 *     the set, batch lengths around any internal window; a row's slots past
 *     min(count, cap) are left alone; in serialized mode too;
 *   - insert_many against cidstore_insert on a twin store fed the same
 *     pairs one at a time: each result, the return value, the final state;
 *     duplicates inside one batch (the second answers 0), pairs present
 *     before the batch, a key promoted to a value set inside one batch;
 *     results NULL and non-NULL;
 *   - every CIDSTORE_EINVAL case of the three calls, n == 0, and that a
 *     refused call writes nothing;
 *   - cidstore_values: an absent key (0, fn never called), one value, a
 *     million values each delivered exactly once, fn's non-zero return
 *     passed through as is (also negative) with fewer values delivered, an
 *     fn that writes to the same key while it is being delivered (the
 *     delivery is the set of one instant), serialized mode;
 *   - one key with a million values: insert, exact count, delete half,
 *     exact set; durable (ASYNC): the exact set after reopening from the
 *     WAL alone, from a checkpoint, and from a checkpoint plus WAL;
 *   - durable insert_many: WAL records only for pairs that changed, SYNC
 *     returns with everything durable after about one fdatasync, the pairs
 *     survive a reopen; a WAL that fails in the middle of a batch gives
 *     CIDSTORE_EIO with the pairs before the failure in and the rest out;
 *   - concurrency: a writer grows one key's set v0..vk and shrinks it back
 *     (single inserts and insert_many, in order), so the set is always a
 *     prefix of one sequence, while readers check that every set delivered
 *     by cidstore_values, cidstore_lookup and cidstore_lookup_many is such
 *     a prefix (from one instant: contiguous, no duplicate, count ==
 *     values delivered); two threads insert_many the same pairs in
 *     different orders and each pair is added exactly once.
 */
#include <cidstore.h>
#include "unit_support.h"
#include <check.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/io.h"
#include "log/wal.h"
#include "store/store_internal.h"
#include "../log/test_support.h"

/* ---------------------------------------------------------------------- */
/* helpers                                                                 */
/* ---------------------------------------------------------------------- */

/* An assertion for loops over many values: Check's ck_assert* records its
 * location (a write and a flush) on every call that passes, which over
 * millions of values costs more than the store itself. */
#define EXPECT(cond, ...)                           \
	do {                                        \
		if (!(cond))                        \
			ck_abort_msg(__VA_ARGS__);  \
	} while (0)

/* sm64, mk, mk_decode, cid_eq, SZ (smaller sizes under TSan), tfail /
 * failed_already / assert_no_failures, open_mem_store, close_store:
 * unit_support.h */

static cidstore_t *open_dir(const char *dir, cidstore_durability_t d, uint64_t ckpt_bytes)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = dir;
	o.durability = d;
	o.checkpoint_wal_bytes = ckpt_bytes;
	cidstore_t *s = NULL;
	int rc = cidstore_open(&o, &s);
	EXPECT(rc == 0, "cidstore_open(%s): %d (%s)", dir, rc, cidstore_strerror(rc));
	return s;
}

/* A bitmap of value indices, to check "each exactly once" without a sort. */
struct seen {
	uint8_t *b;
	uint64_t n;
};

static struct seen seen_new(uint64_t n)
{
	struct seen s = {calloc(n ? n : 1, 1), n};
	ck_assert_ptr_nonnull(s.b);
	return s;
}

/* Checks that key holds exactly { mk(tag, i) : keep(i) } for i < lim,
 * through cidstore_lookup (exact count, each value once) and
 * cidstore_values (the same). */
static void check_set(cidstore_t *s, const cid_t *key, uint64_t tag, uint64_t lim,
		      bool (*keep)(uint64_t), const char *what);

/* ---------------------------------------------------------------------- */
/* the key population of the lookup / insert comparisons                   */
/* ---------------------------------------------------------------------- */

static const size_t SIZES[] = {1, 2, 3, 17, 1000};
#define NSIZES (sizeof(SIZES) / sizeof(SIZES[0]))
#define TAG_KEY 0x4b4559ull /* "KEY" */
#define TAG_VAL 0x56414cull /* "VAL" */

/* Key j of the population holds SIZES[j % NSIZES] values mk(TAG_VAL + j, i);
 * keys j >= npresent are absent. */
static void fill_population(cidstore_t *s, size_t npresent)
{
	for (size_t j = 0; j < npresent; j++) {
		cid_t k = mk(TAG_KEY, j);
		for (size_t i = 0; i < SIZES[j % NSIZES]; i++) {
			cid_t v = mk(TAG_VAL + j, i);
			EXPECT(cidstore_insert(s, &k, &v) == 1, "fill key %zu value %zu", j, i);
		}
	}
}

/* ---------------------------------------------------------------------- */
/* lookup_many                                                             */
/* ---------------------------------------------------------------------- */

/* One lookup_many of the keys ks[0..n) with cap, checked key by key
 * against cidstore_lookup. */
static void lookup_many_check(cidstore_t *s, const cid_t *ks, size_t n, size_t cap)
{
	static const cid_t poison = {{0xdeadbeefdeadbeefull, 1, 2, 3}};
	cid_t *out = NULL;
	if (cap) {
		out = malloc(n * cap * sizeof(*out));
		ck_assert_ptr_nonnull(out);
		for (size_t i = 0; i < n * cap; i++)
			out[i] = poison;
	}
	long *counts = malloc(n * sizeof(*counts));
	ck_assert_ptr_nonnull(counts);
	for (size_t i = 0; i < n; i++)
		counts[i] = -12345;
	ck_assert_int_eq(cidstore_lookup_many(s, ks, n, out, cap, counts), 0);
	size_t maxset = 1000;
	cid_t *one = malloc(maxset * sizeof(*one));
	ck_assert_ptr_nonnull(one);
	for (size_t i = 0; i < n; i++) {
		long c = cidstore_lookup(s, &ks[i], one, maxset);
		EXPECT(counts[i] == c, "n %zu cap %zu: counts[%zu] = %ld, lookup %ld", n,
			      cap, i, counts[i], c);
		if (!cap)
			continue;
		size_t got = (size_t)c < cap ? (size_t)c : cap;
		long j = mk_decode(&ks[i], TAG_KEY, UINT64_MAX);
		EXPECT(j >= 0, "key %zu is not a population key", i);
		const cid_t *row = out + i * cap;
		/* the values are the key's own, each once */
		for (size_t a = 0; a < got; a++) {
			EXPECT(mk_decode(&row[a], TAG_VAL + (uint64_t)j, SIZES[j % NSIZES]) >= 0,
				      "n %zu cap %zu: key %zu slot %zu is not one of its values",
				      n, cap, i, a);
			for (size_t b = 0; b < a; b++)
				EXPECT(!cid_eq(&row[a], &row[b]),
					      "n %zu cap %zu: key %zu: a value twice", n, cap, i);
		}
		/* and the rest of the row is left alone */
		for (size_t a = got; a < cap; a++)
			EXPECT(cid_eq(&row[a], &poison),
				      "n %zu cap %zu: key %zu (count %ld): slot %zu written", n,
				      cap, i, c, a);
	}
	free(one);
	free(counts);
	free(out);
}

START_TEST(test_lookup_many_vs_single)
{
	bool serialized = _i;
	cidstore_t *s = open_mem_store(42, 0, serialized);
	const size_t npresent = 3 * NSIZES; /* three keys of every size */
	fill_population(s, npresent);
	/* present and absent keys interleaved, some present keys repeated */
	const size_t nall = 2 * npresent + 8;
	cid_t *ks = malloc(nall * sizeof(*ks));
	ck_assert_ptr_nonnull(ks);
	for (size_t i = 0; i < nall; i++) {
		size_t j = (i * 7) % (npresent + npresent / 2);
		ks[i] = mk(TAG_KEY, i % 5 == 4 ? 1000 + i : j); /* j >= npresent: absent */
	}
	static const size_t caps[] = {0, 1, 2, 3, 16, 17, 18, 999, 1000, 1001, 1500};
	static const size_t lens[] = {1, 2, 3, 7, 8, 9, 16, 17, 31, 32, 33};
	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++)
		lookup_many_check(s, ks, nall, caps[c]);
	for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++)
		for (size_t off = 0; off + lens[l] <= nall; off += lens[l] + 5)
			lookup_many_check(s, ks + off, lens[l], 20);
	free(ks);

	/* a long batch over many keys: more than any prefetch window */
	cidstore_t *t = open_mem_store(42, 0, serialized);
	const size_t nbig = SZ(20000, 4000);
	for (size_t j = 0; j < nbig; j += 2) {
		cid_t k = mk(TAG_KEY, j), v = mk(TAG_VAL + j, 0);
		EXPECT(cidstore_insert(t, &k, &v) == 1, "insert key %zu", j);
	}
	cid_t *kb = malloc(nbig * sizeof(*kb));
	cid_t *ob = malloc(nbig * sizeof(*ob));
	long *cb = malloc(nbig * sizeof(*cb));
	ck_assert(kb && ob && cb);
	for (size_t j = 0; j < nbig; j++)
		kb[j] = mk(TAG_KEY, j);
	ck_assert_int_eq(cidstore_lookup_many(t, kb, nbig, ob, 1, cb), 0);
	for (size_t j = 0; j < nbig; j++) {
		cid_t v = mk(TAG_VAL + j, 0);
		EXPECT(cb[j] == (j % 2 == 0), "key %zu: count %ld", j, cb[j]);
		if (j % 2 == 0)
			EXPECT(cid_eq(&ob[j], &v), "key %zu: wrong value", j);
	}
	ck_assert_int_eq(cidstore_lookup_many(t, kb, nbig, NULL, 0, cb), 0);
	for (size_t j = 0; j < nbig; j++)
		EXPECT(cb[j] == (j % 2 == 0), "key %zu: count %ld without out", j, cb[j]);
	free(kb);
	free(ob);
	free(cb);
	close_store(t);
	close_store(s);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* insert_many                                                             */
/* ---------------------------------------------------------------------- */

/* Feeds the pairs (k[i], v[i]) to a through insert_many in batches of
 * `batch` and to b one at a time; every result and return must agree. */
static void insert_twin(cidstore_t *a, cidstore_t *b, const cid_t *k, const cid_t *v, size_t n,
			size_t batch, bool with_results)
{
	int *res = malloc((batch ? batch : 1) * sizeof(*res));
	ck_assert_ptr_nonnull(res);
	for (size_t off = 0; off < n; off += batch) {
		size_t m = n - off < batch ? n - off : batch;
		for (size_t i = 0; i < m; i++)
			res[i] = -777;
		long added = cidstore_insert_many(a, k + off, v + off, m,
						  with_results ? res : NULL);
		long want = 0;
		for (size_t i = 0; i < m; i++) {
			int r = cidstore_insert(b, &k[off + i], &v[off + i]);
			EXPECT(r == 0 || r == 1, "insert %zu: %d", off + i, r);
			want += r;
			if (with_results)
				EXPECT(res[i] == r,
					      "batch %zu at %zu: results[%zu] = %d, insert said %d",
					      batch, off, i, res[i], r);
			else
				EXPECT(res[i] == -777, "results written although NULL was passed");
		}
		EXPECT(added == want, "batch %zu at %zu: insert_many %ld, expected %ld",
			      batch, off, added, want);
	}
	free(res);
}

static void expect_same_state(cidstore_t *a, cidstore_t *b, const char *what)
{
	struct snap sa = snap_take(a), sb = snap_take(b);
	snap_expect_equal(&sb, &sa, what);
	snap_free(&sa);
	snap_free(&sb);
	cidstore_stats_t ta, tb;
	ck_assert_int_eq(cidstore_stats(a, &ta), 0);
	ck_assert_int_eq(cidstore_stats(b, &tb), 0);
	ck_assert_uint_eq(ta.keys, tb.keys);
	ck_assert_uint_eq(ta.values, tb.values);
}

START_TEST(test_insert_many_vs_single)
{
	bool serialized = _i;
	/* A pair sequence: every population key gets its values (a 1000-value
	 * key promoted inside one batch), with duplicates inside a batch, pairs
	 * present from an earlier batch, and keys interleaved. */
	const size_t nkeys = 2 * NSIZES;
	size_t n = 0, capn = 0;
	for (size_t j = 0; j < nkeys; j++)
		capn += SIZES[j % NSIZES];
	capn *= 3;
	cid_t *k = malloc(capn * sizeof(*k)), *v = malloc(capn * sizeof(*v));
	ck_assert(k && v);
	for (size_t round = 0; round < 2; round++) {
		for (size_t j = 0; j < nkeys; j++) {
			size_t sz = SIZES[j % NSIZES];
			for (size_t i = 0; i < sz; i++) {
				/* round 1 repeats every pair of round 0 */
				k[n] = mk(TAG_KEY, j);
				v[n] = mk(TAG_VAL + j, i);
				n++;
				if (round == 0 && i % 3 == 0) { /* an immediate duplicate */
					k[n] = k[n - 1];
					v[n] = v[n - 1];
					n++;
				}
			}
		}
	}
	ck_assert_uint_le(n, capn);
	/* interleave keys: a fixed shuffle of the first round's pairs */
	uint64_t r = 99;
	size_t half = n / 2;
	for (size_t i = half - 1; i > 0; i--) {
		r = sm64(r);
		size_t j = (size_t)(r % (i + 1));
		cid_t tk = k[i], tv = v[i];
		k[i] = k[j];
		v[i] = v[j];
		k[j] = tk;
		v[j] = tv;
	}
	static const size_t batches[] = {1, 2, 3, 16, 256, 100000};
	for (size_t bi = 0; bi < sizeof(batches) / sizeof(batches[0]); bi++) {
		for (int wr = 0; wr < 2; wr++) {
			cidstore_t *a = open_mem_store(42, 0, serialized);
			cidstore_t *b = open_mem_store(42, 0, false);
			insert_twin(a, b, k, v, n, batches[bi], wr);
			expect_same_state(a, b, "insert_many vs insert");
			close_store(a);
			close_store(b);
		}
	}

	/* the same pair many times in one batch: only the first adds it */
	cidstore_t *a = open_mem_store(42, 0, serialized);
	cid_t kk[5], vv[5];
	int res[5];
	for (int i = 0; i < 5; i++) {
		kk[i] = mk(TAG_KEY, 7);
		vv[i] = mk(TAG_VAL, i == 3 ? 1 : 0);
	}
	ck_assert_int_eq(cidstore_insert_many(a, kk, vv, 5, res), 2);
	ck_assert_int_eq(res[0], 1);
	ck_assert_int_eq(res[1], 0);
	ck_assert_int_eq(res[2], 0);
	ck_assert_int_eq(res[3], 1);
	ck_assert_int_eq(res[4], 0);
	ck_assert_int_eq(cidstore_insert_many(a, kk, vv, 5, NULL), 0);
	ck_assert_int_eq(cidstore_lookup(a, &kk[0], NULL, 0), 2);
	close_store(a);
	free(k);
	free(v);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* invalid arguments                                                       */
/* ---------------------------------------------------------------------- */

static atomic_long fn_calls;

static int count_fn(const cid_t *values, size_t n, void *ctx)
{
	(void)values;
	(void)n;
	(void)ctx;
	atomic_fetch_add(&fn_calls, 1);
	return 0;
}

START_TEST(test_batch_einval)
{
	cidstore_t *s = open_mem_store(42, 0, _i);
	cid_t k[2] = {mk(1, 1), mk(1, 2)}, v[2] = {mk(2, 1), mk(2, 2)}, out[4];
	long counts[2] = {-5, -5};
	int res[2] = {-5, -5};

	/* lookup_many */
	ck_assert_int_eq(cidstore_lookup_many(NULL, k, 2, out, 2, counts), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_lookup_many(NULL, NULL, 0, NULL, 0, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_lookup_many(s, NULL, 2, out, 2, counts), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_lookup_many(s, k, 2, out, 2, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_lookup_many(s, k, 2, NULL, 2, counts), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_lookup_many(s, k, 0, NULL, 1, counts), CIDSTORE_EINVAL);
	/* n * cap wraps (or no buffer of that many cids can exist) */
	ck_assert_int_eq(cidstore_lookup_many(s, k, 2, out, SIZE_MAX / 2 + 1, counts),
			 CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_lookup_many(s, k, 2, out, SIZE_MAX, counts), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_lookup_many(s, k, 2, out, SIZE_MAX / sizeof(cid_t), counts),
			 CIDSTORE_EINVAL);
	ck_assert_int_eq(counts[0], -5); /* a refused call writes nothing */
	ck_assert_int_eq(counts[1], -5);
	/* n == 0: nothing to do, keys and counts may be NULL */
	ck_assert_int_eq(cidstore_lookup_many(s, NULL, 0, NULL, 0, NULL), 0);
	ck_assert_int_eq(cidstore_lookup_many(s, k, 0, out, 2, counts), 0);
	ck_assert_int_eq(counts[0], -5);
	/* cap 0 with out NULL is fine */
	ck_assert_int_eq(cidstore_lookup_many(s, k, 2, NULL, 0, counts), 0);
	ck_assert_int_eq(counts[0], 0);
	ck_assert_int_eq(counts[1], 0);

	/* insert_many */
	ck_assert_int_eq(cidstore_insert_many(NULL, k, v, 2, res), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_insert_many(NULL, NULL, NULL, 0, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_insert_many(s, NULL, v, 2, res), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_insert_many(s, k, NULL, 2, res), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_insert_many(s, NULL, NULL, 1, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(res[0], -5);
	ck_assert_int_eq(cidstore_insert_many(s, NULL, NULL, 0, NULL), 0);
	ck_assert_int_eq(cidstore_insert_many(s, k, v, 0, res), 0);
	ck_assert_int_eq(res[0], -5);
	ck_assert_int_eq(cidstore_lookup(s, &k[0], NULL, 0), 0); /* nothing went in */
	ck_assert_int_eq(cidstore_insert_many(s, k, v, 2, NULL), 2);

	/* values */
	atomic_store(&fn_calls, 0);
	ck_assert_int_eq(cidstore_values(NULL, &k[0], count_fn, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_values(s, NULL, count_fn, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_values(s, &k[0], NULL, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(atomic_load(&fn_calls), 0);
	ck_assert_int_eq(cidstore_values(s, &k[0], count_fn, NULL), 1);
	ck_assert_int_eq(atomic_load(&fn_calls), 1);
	close_store(s);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* cidstore_values                                                         */
/* ---------------------------------------------------------------------- */

struct collect {
	uint64_t tag, lim;
	struct seen seen;
	uint64_t delivered;
	uint64_t calls;
	long stop_after_calls; /* > 0: return stop_value on that call */
	int stop_value;
	int bad;               /* a foreign value, a duplicate or an empty chunk */
	/* write into the store from inside fn */
	cidstore_t *s;
	const cid_t *key;
	uint64_t write_index;  /* mk(tag, write_index) goes in on the first call */
};

static int collect_fn(const cid_t *values, size_t n, void *ctx)
{
	struct collect *c = ctx;
	c->calls++;
	if (n == 0)
		c->bad |= 4;
	for (size_t i = 0; i < n; i++) {
		long j = mk_decode(&values[i], c->tag, c->lim);
		if (j < 0) {
			c->bad |= 1;
			continue;
		}
		if (c->seen.b[j])
			c->bad |= 2;
		c->seen.b[j] = 1;
	}
	c->delivered += n;
	if (c->s && c->calls == 1) {
		/* fn may call the store: a write to the very key being delivered
		 * and a read of it.  The delivery stays the set of one instant. */
		cid_t w = mk(c->tag, c->write_index);
		if (cidstore_insert(c->s, c->key, &w) != 1)
			c->bad |= 8;
		if (cidstore_contains(c->s, c->key, &w) != 1)
			c->bad |= 16;
	}
	if (c->stop_after_calls > 0 && (long)c->calls == c->stop_after_calls)
		return c->stop_value;
	return 0;
}

static bool keep_all(uint64_t i)
{
	(void)i;
	return true;
}

static bool keep_odd(uint64_t i)
{
	return i % 2 == 1;
}

static void check_set(cidstore_t *s, const cid_t *key, uint64_t tag, uint64_t lim,
		      bool (*keep)(uint64_t), const char *what)
{
	uint64_t want = 0;
	for (uint64_t i = 0; i < lim; i++)
		want += keep(i);
	/* lookup: exact count, every value once */
	long c0 = cidstore_lookup(s, key, NULL, 0);
	EXPECT(c0 == (long)want, "%s: lookup count %ld, expected %" PRIu64, what, c0, want);
	cid_t *buf = malloc((want + 1) * sizeof(*buf));
	ck_assert_ptr_nonnull(buf);
	long c = cidstore_lookup(s, key, buf, want + 1);
	EXPECT(c == (long)want, "%s: lookup %ld, expected %" PRIu64, what, c, want);
	struct seen sn = seen_new(lim);
	for (uint64_t i = 0; i < want; i++) {
		long j = mk_decode(&buf[i], tag, lim);
		EXPECT(j >= 0 && keep((uint64_t)j), "%s: foreign value at %" PRIu64, what, i);
		EXPECT(!sn.b[j], "%s: value %ld twice", what, j);
		sn.b[j] = 1;
	}
	free(buf);
	free(sn.b);
	/* values: the same set, each once */
	struct collect col = {.tag = tag, .lim = lim, .seen = seen_new(lim)};
	long d = cidstore_values(s, key, collect_fn, &col);
	EXPECT(d == (long)want && col.delivered == want && !col.bad,
		      "%s: values returned %ld, delivered %" PRIu64 " (expected %" PRIu64
		      "), bad %d",
		      what, d, col.delivered, want, col.bad);
	for (uint64_t i = 0; i < lim; i++)
		EXPECT(col.seen.b[i] == keep(i), "%s: value %" PRIu64 " %s", what, i,
			      col.seen.b[i] ? "delivered but deleted" : "not delivered");
	free(col.seen.b);
}

START_TEST(test_values)
{
	bool serialized = _i;
	cidstore_t *s = open_mem_store(42, 0, serialized);
	const uint64_t tag = 0x76616c73; /* "vals" */
	const uint64_t big = SZ(1000000, 200000);

	/* absent: 0, fn never called */
	cid_t absent = mk(1, 1);
	struct collect col = {.tag = tag, .lim = 1, .seen = seen_new(1)};
	ck_assert_int_eq(cidstore_values(s, &absent, collect_fn, &col), 0);
	ck_assert_uint_eq(col.calls, 0);
	free(col.seen.b);

	/* one value; a stop on the only call is still passed through */
	cid_t k1 = mk(1, 2), v = mk(tag, 0);
	ck_assert_int_eq(cidstore_insert(s, &k1, &v), 1);
	check_set(s, &k1, tag, 1, keep_all, "one value");
	col = (struct collect){.tag = tag, .lim = 1, .seen = seen_new(1),
			       .stop_after_calls = 1, .stop_value = 7};
	ck_assert_int_eq(cidstore_values(s, &k1, collect_fn, &col), 7);
	ck_assert_uint_eq(col.delivered, 1);
	free(col.seen.b);

	/* a million values, each delivered exactly once (loaded with
	 * insert_many, so a single key's set grows inside batches too) */
	cid_t kb = mk(1, 3);
	const size_t chunk = 4096;
	cid_t *ks = malloc(chunk * sizeof(*ks)), *vs = malloc(chunk * sizeof(*vs));
	ck_assert(ks && vs);
	for (size_t i = 0; i < chunk; i++)
		ks[i] = kb;
	for (uint64_t off = 0; off < big; off += chunk) {
		size_t m = big - off < chunk ? (size_t)(big - off) : chunk;
		for (size_t i = 0; i < m; i++)
			vs[i] = mk(tag, off + i);
		ck_assert_int_eq(cidstore_insert_many(s, ks, vs, m, NULL), (long)m);
	}
	free(ks);
	free(vs);
	check_set(s, &kb, tag, big, keep_all, "a million values");

	/* fn's non-zero return, as is, with fewer values delivered; the first
	 * chunk must leave some values for later ones for this to mean much */
	static const int stops[] = {1, 7, -42, CIDSTORE_EINVAL};
	for (size_t t = 0; t < sizeof(stops) / sizeof(stops[0]); t++) {
		col = (struct collect){.tag = tag, .lim = big, .seen = seen_new(big),
				       .stop_after_calls = 1, .stop_value = stops[t]};
		long r = cidstore_values(s, &kb, collect_fn, &col);
		EXPECT(r == stops[t], "stop %d: values returned %ld", stops[t], r);
		ck_assert_uint_eq(col.calls, 1);
		EXPECT(col.delivered > 0 && col.delivered < big,
			      "stop: %" PRIu64 " of %" PRIu64 " delivered in the first chunk",
			      col.delivered, big);
		ck_assert_int_eq(col.bad, 0);
		free(col.seen.b);
	}
	/* a stop on a later chunk */
	col = (struct collect){.tag = tag, .lim = big, .seen = seen_new(big),
			       .stop_after_calls = 3, .stop_value = 3};
	ck_assert_int_eq(cidstore_values(s, &kb, collect_fn, &col), 3);
	ck_assert_uint_eq(col.calls, 3);
	ck_assert(col.delivered < big);
	free(col.seen.b);

	/* fn writes to the key being delivered (not in serialized mode: the
	 * header forbids calling the store from fn there): the delivery is the
	 * set before the write, the write is in afterwards */
	if (!serialized) {
		col = (struct collect){.tag = tag, .lim = big + 1, .seen = seen_new(big + 1),
				       .s = s, .key = &kb, .write_index = big};
		long r = cidstore_values(s, &kb, collect_fn, &col);
		EXPECT(r == (long)big && col.delivered == big && col.bad == 0 &&
				      !col.seen.b[big],
			      "values with a write from fn: returned %ld, delivered %" PRIu64
			      ", bad %d, new value %sdelivered",
			      r, col.delivered, col.bad, col.seen.b[big] ? "" : "not ");
		free(col.seen.b);
		check_set(s, &kb, tag, big + 1, keep_all, "after the write from fn");
		/* the small key too: inline values */
		col = (struct collect){.tag = tag, .lim = 2, .seen = seen_new(2), .s = s,
				       .key = &k1, .write_index = 1};
		ck_assert_int_eq(cidstore_values(s, &k1, collect_fn, &col), 1);
		ck_assert_int_eq(col.bad, 0);
		ck_assert_int_eq(col.seen.b[1], 0);
		free(col.seen.b);
		check_set(s, &k1, tag, 2, keep_all, "small key after the write from fn");
	}
	close_store(s);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* a million values under one key                                          */
/* ---------------------------------------------------------------------- */

#define TAG_BIG 0x424947ull /* "BIG" */

static void big_fill(cidstore_t *s, const cid_t *key, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		cid_t v = mk(TAG_BIG, i);
		int rc = cidstore_insert(s, key, &v);
		EXPECT(rc == 1, "insert %" PRIu64 ": %d", i, rc);
	}
}

static void big_delete_even(cidstore_t *s, const cid_t *key, uint64_t n)
{
	for (uint64_t i = 0; i < n; i += 2) {
		cid_t v = mk(TAG_BIG, i);
		int rc = cidstore_delete_value(s, key, &v);
		EXPECT(rc == 1, "delete %" PRIu64 ": %d", i, rc);
	}
}

START_TEST(test_big_set_memory)
{
	const uint64_t n = SZ(1000000, 200000);
	cidstore_t *s = open_mem_store(42, 0, false);
	cid_t key = mk(TAG_KEY, 1);
	big_fill(s, &key, n);
	check_set(s, &key, TAG_BIG, n, keep_all, "filled");
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_uint_eq(st.keys, 1);
	ck_assert_uint_eq(st.values, n);
	big_delete_even(s, &key, n);
	check_set(s, &key, TAG_BIG, n, keep_odd, "half deleted");
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_uint_eq(st.values, n / 2);
	close_store(s);
}
END_TEST

START_TEST(test_big_set_durable)
{
	const uint64_t n = SZ(1000000, 100000);
	char dir[128];
	tmpdir_make(dir, sizeof dir, "cidstore-test-batch");
	cid_t key = mk(TAG_KEY, 2);

	/* the WAL alone: no checkpoint (automatic ones off) */
	cidstore_t *s = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, 0);
	big_fill(s, &key, n);
	big_delete_even(s, &key, n);
	check_set(s, &key, TAG_BIG, n, keep_odd, "before close");
	close_store(s);
	s = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, 0);
	check_set(s, &key, TAG_BIG, n, keep_odd, "reopened from the WAL");

	/* a checkpoint: recovery loads the set from it (in several chunks) */
	ck_assert_int_eq(cidstore_checkpoint(s), 0);
	close_store(s);
	s = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, 0);
	check_set(s, &key, TAG_BIG, n, keep_odd, "reopened from the checkpoint");

	/* a checkpoint plus a WAL tail that changes the big set: the odd values
	 * below n/2 go, the even ones there come back */
	for (uint64_t i = 0; i < n / 2; i++) {
		cid_t v = mk(TAG_BIG, i);
		int rc = i % 2 ? cidstore_delete_value(s, &key, &v) : cidstore_insert(s, &key, &v);
		EXPECT(rc == 1, "WAL tail op %" PRIu64 ": %d", i, rc);
	}
	close_store(s);
	cidstore_verify_result_t vr;
	ck_assert_int_eq(cidstore_verify(dir, &vr), 0);
	ck_assert(vr.have_checkpoint && vr.records > 0);
	s = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, 0);
	uint64_t want = 0;
	for (uint64_t i = 0; i < n; i++)
		want += i < n / 2 ? i % 2 == 0 : i % 2 == 1;
	long c = cidstore_lookup(s, &key, NULL, 0);
	ck_assert_int_eq(c, (long)want);
	/* exact: i < n/2 even, i >= n/2 odd */
	cid_t *buf = malloc((size_t)n * sizeof(*buf));
	ck_assert_ptr_nonnull(buf);
	c = cidstore_lookup(s, &key, buf, n);
	struct seen sn = seen_new(n);
	for (long i = 0; i < c; i++) {
		long j = mk_decode(&buf[i], TAG_BIG, n);
		EXPECT(j >= 0 && !sn.b[j], "checkpoint + WAL: foreign or repeated value at %ld", i);
		sn.b[j] = 1;
	}
	for (uint64_t i = 0; i < n; i++)
		EXPECT(sn.b[i] == (i < n / 2 ? i % 2 == 0 : i % 2 == 1),
			      "checkpoint + WAL: value %" PRIu64 " wrong", i);
	free(sn.b);
	free(buf);
	close_store(s);
	ck_assert_int_eq(tmpdir_remove(dir), 0);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* durable insert_many                                                     */
/* ---------------------------------------------------------------------- */

START_TEST(test_insert_many_durable)
{
	char dir[128];
	tmpdir_make(dir, sizeof dir, "cidstore-test-batch");
	cidstore_t *s = open_dir(dir, CIDSTORE_DURABILITY_SYNC, 0);
	enum { N = 256 };
	cid_t k[N], v[N];
	int res[N];
	for (int i = 0; i < N; i++) {
		/* pairs 2i and 2i + 1 are the same: half the batch changes nothing */
		k[i] = mk(TAG_KEY, (uint64_t)(i / 2) % 40);
		v[i] = mk(TAG_VAL, (uint64_t)i / 2);
	}
	cidstore_stats_t a, b;
	ck_assert_int_eq(cidstore_stats(s, &a), 0);
	ck_assert_int_eq(cidstore_insert_many(s, k, v, N, res), N / 2);
	ck_assert_int_eq(cidstore_stats(s, &b), 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(res[i], i % 2 == 0);
	/* one record per pair that changed the store, all durable on return,
	 * after a few fdatasyncs rather than one per pair */
	ck_assert_uint_eq(b.wal_lsn - a.wal_lsn, N / 2);
	EXPECT(b.wal_durable_lsn >= b.wal_lsn, "durable %" PRIu64 " < last %" PRIu64,
		      b.wal_durable_lsn, b.wal_lsn);
	EXPECT(b.wal_fsyncs - a.wal_fsyncs <= 8, "%" PRIu64 " fdatasyncs for one batch",
		      b.wal_fsyncs - a.wal_fsyncs);
	/* nothing new: no record, returns 0 */
	ck_assert_int_eq(cidstore_insert_many(s, k, v, N, res), 0);
	ck_assert_int_eq(cidstore_stats(s, &a), 0);
	ck_assert_uint_eq(a.wal_lsn, b.wal_lsn);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(res[i], 0);
	struct snap before = snap_take(s);
	close_store(s);

	/* ASYNC too; then both batches survive a reopen */
	s = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, 0);
	for (int i = 0; i < N; i++)
		v[i] = mk(TAG_VAL + 1, (uint64_t)i);
	ck_assert_int_eq(cidstore_insert_many(s, k, v, N, NULL), N);
	struct snap mid = snap_take(s);
	close_store(s);
	s = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, 0);
	struct snap after = snap_take(s);
	snap_expect_equal(&mid, &after, "reopen after insert_many");
	ck_assert_uint_eq(after.n, before.n + N);
	snap_free(&before);
	snap_free(&mid);
	snap_free(&after);
	close_store(s);
	ck_assert_int_eq(tmpdir_remove(dir), 0);
}
END_TEST

/* A WAL whose writes fail once armed: the flusher's next pwrite fails,
 * the WAL turns failed, and an append inside a batch gets CIDSTORE_EIO. */
static atomic_int fail_writes;
static struct log_io failing_io;

static ssize_t failing_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	if (atomic_load(&fail_writes)) {
		errno = EIO;
		return -1;
	}
	return log_io_posix()->pwrite(ctx, fd, buf, n, off);
}

START_TEST(test_insert_many_wal_failure)
{
	char dir[128];
	tmpdir_make(dir, sizeof dir, "cidstore-test-batch");
	failing_io = *log_io_posix();
	failing_io.pwrite = failing_pwrite;
	atomic_store(&fail_writes, 0);
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = dir;
	o.durability = CIDSTORE_DURABILITY_ASYNC;
	o.checkpoint_wal_bytes = 0;
	o.sync_interval_ms = 1;
	cidstore_t *s = NULL;
	ck_assert_int_eq(cidstore_open_io(&o, &failing_io, &s), 0);
	enum { N = 8 };
	cid_t k[N], v[N];
	int res[N];
	for (int i = 0; i < N; i++) {
		k[i] = mk(TAG_KEY, (uint64_t)i % 3);
		v[i] = mk(TAG_VAL, (uint64_t)i);
	}
	/* pairs 0..2 are in before the failure */
	ck_assert_int_eq(cidstore_insert_many(s, k, v, 3, NULL), 3);
	/* one record the flusher cannot write: the WAL fails; wait for that
	 * without asking the store (its stats would mark it failed) */
	atomic_store(&fail_writes, 1);
	cid_t xk = mk(TAG_KEY, 100), xv = mk(TAG_VAL, 100);
	ck_assert_int_eq(cidstore_insert(s, &xk, &xv), 1);
	for (;;) {
		struct wal_stats ws;
		wal_stats(s->wal, &ws);
		if (ws.failed)
			break;
		sched_yield();
	}
	/* the batch: 0..2 change nothing (no record), 3 needs one and stops */
	for (int i = 0; i < N; i++)
		res[i] = -777;
	long rc = cidstore_insert_many(s, k, v, N, res);
	ck_assert_int_eq(rc, CIDSTORE_EIO);
	for (int i = 0; i < 3; i++)
		EXPECT(res[i] == 0, "results[%d] = %d", i, res[i]);
	EXPECT(res[3] == CIDSTORE_EIO || res[3] == -777, "results[3] = %d", res[3]);
	/* pairs before the failure are in, the failing one and the rest are not */
	for (int i = 0; i < N; i++)
		EXPECT(cidstore_contains(s, &k[i], &v[i]) == (i < 3),
			      "pair %d %s after the failed batch", i, i < 3 ? "missing" : "present");
	/* the store is read-only now */
	ck_assert_int_eq(cidstore_insert_many(s, k + 3, v + 3, 1, NULL), CIDSTORE_EIO);
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert(st.failed);
	cidstore_close(s); /* EIO: the log could not be flushed */
	ck_assert_int_eq(tmpdir_remove(dir), 0);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* concurrency                                                             */
/* ---------------------------------------------------------------------- */

#define TAG_PFX 0x504658ull /* "PFX" */

struct prefix_shared {
	cidstore_t *s;
	cid_t key, absent;
	uint64_t k;        /* the set grows to k values */
	unsigned rounds;
	atomic_bool done;
};

static void *prefix_writer(void *arg)
{
	struct prefix_shared *sh = arg;
	const size_t chunk = 64;
	cid_t *ks = malloc(chunk * sizeof(*ks)), *vs = malloc(chunk * sizeof(*vs));
	for (size_t i = 0; i < chunk; i++)
		ks[i] = sh->key;
	for (unsigned r = 0; r < sh->rounds && !failed_already(); r++) {
		/* grow v1..v(k-1): odd rounds one insert at a time, even rounds
		 * insert_many, whose pairs must take effect in order */
		for (uint64_t i = 1; i < sh->k;) {
			if (r % 2) {
				cid_t v = mk(TAG_PFX, i);
				if (cidstore_insert(sh->s, &sh->key, &v) != 1)
					tfail("insert %ld in round %u", (long)i, r);
				i++;
				continue;
			}
			size_t m = sh->k - i < chunk ? (size_t)(sh->k - i) : chunk;
			for (size_t j = 0; j < m; j++)
				vs[j] = mk(TAG_PFX, i + j);
			long a = cidstore_insert_many(sh->s, ks, vs, m, NULL);
			if (a != (long)m)
				tfail("insert_many added %ld of %ld", a, (long)m);
			i += m;
		}
		for (uint64_t i = sh->k - 1; i >= 1; i--) {
			cid_t v = mk(TAG_PFX, i);
			if (cidstore_delete_value(sh->s, &sh->key, &v) != 1)
				tfail("delete %ld in round %u", (long)i, r);
		}
	}
	free(ks);
	free(vs);
	atomic_store(&sh->done, true);
	return NULL;
}

struct prefix_reader {
	struct prefix_shared *sh;
	uint32_t *mark; /* mark[i] == stamp: value i seen in this read */
	uint32_t stamp;
	uint64_t n;     /* values in this read */
	uint64_t max;
	int bad;
	cid_t *buf;
	long *counts;
	uint64_t reads;
};

/* One value of a read: ours, within the sequence, not seen before. */
static void prefix_see(struct prefix_reader *rd, const cid_t *v)
{
	long j = mk_decode(v, TAG_PFX, rd->sh->k);
	if (j < 0) {
		rd->bad = 1;
		return;
	}
	if (rd->mark[j] == rd->stamp) {
		rd->bad = 2;
		return;
	}
	rd->mark[j] = rd->stamp;
	if ((uint64_t)j > rd->max)
		rd->max = (uint64_t)j;
	rd->n++;
}

static void prefix_begin(struct prefix_reader *rd)
{
	rd->stamp++;
	rd->n = 0;
	rd->max = 0;
	rd->bad = 0;
}

/* The read was {v0..v(n-1)}: n distinct values below n, n >= 1 (v0 never
 * leaves), and the call's own count agrees. */
static void prefix_end(struct prefix_reader *rd, long count, const char *how)
{
	rd->reads++;
	if (rd->bad)
		tfail("%s: a foreign or repeated value (%d) at read %ld", how, rd->bad,
		      (long)rd->reads);
	else if (count != (long)rd->n)
		tfail("%s: count %ld but %ld values delivered", how, count, (long)rd->n);
	else if (rd->n == 0 || rd->max != rd->n - 1)
		tfail("%s: not a prefix: %ld values, highest index %ld", how, (long)rd->n,
		      (long)rd->max);
}

static int prefix_values_fn(const cid_t *values, size_t n, void *ctx)
{
	struct prefix_reader *rd = ctx;
	for (size_t i = 0; i < n; i++)
		prefix_see(rd, &values[i]);
	return 0;
}

static void *prefix_reader_main(void *arg)
{
	struct prefix_reader *rd = arg;
	struct prefix_shared *sh = rd->sh;
	size_t cap = (size_t)sh->k;
	cid_t keys[2] = {sh->key, sh->absent};
	unsigned i = 0;
	do {
		switch (i++ % 3) {
		case 0: {
			prefix_begin(rd);
			long r = cidstore_values(sh->s, &sh->key, prefix_values_fn, rd);
			prefix_end(rd, r, "values");
			break;
		}
		case 1: {
			long c = cidstore_lookup(sh->s, &sh->key, rd->buf, cap);
			prefix_begin(rd);
			for (long j = 0; j < c && j < (long)cap; j++)
				prefix_see(rd, &rd->buf[j]);
			prefix_end(rd, c, "lookup");
			break;
		}
		default: {
			long counts[2] = {-1, -1};
			if (cidstore_lookup_many(sh->s, keys, 2, rd->buf, cap, counts) != 0) {
				tfail("lookup_many failed");
				break;
			}
			if (counts[1] != 0)
				tfail("absent key: count %ld", counts[1]);
			prefix_begin(rd);
			for (long j = 0; j < counts[0] && j < (long)cap; j++)
				prefix_see(rd, &rd->buf[j]);
			prefix_end(rd, counts[0], "lookup_many");
			break;
		}
		}
	} while (!atomic_load(&sh->done) && !failed_already());
	return NULL;
}

START_TEST(test_concurrent_prefix)
{
	reset_failures();
	struct prefix_shared sh = {
		.s = open_mem_store(42, 0, false),
		.key = mk(TAG_KEY, 3),
		.absent = mk(TAG_KEY, 4),
		.k = 5000,
		.rounds = SZ(12, 4),
	};
	cid_t v0 = mk(TAG_PFX, 0);
	ck_assert_int_eq(cidstore_insert(sh.s, &sh.key, &v0), 1);
	enum { READERS = 2 };
	struct prefix_reader rd[READERS];
	pthread_t th[READERS + 1];
	for (int i = 0; i < READERS; i++) {
		rd[i] = (struct prefix_reader){.sh = &sh};
		rd[i].mark = calloc(sh.k, sizeof(*rd[i].mark));
		rd[i].buf = malloc(sh.k * 2 * sizeof(*rd[i].buf));
		ck_assert(rd[i].mark && rd[i].buf);
		ck_assert_int_eq(pthread_create(&th[i], NULL, prefix_reader_main, &rd[i]), 0);
	}
	ck_assert_int_eq(pthread_create(&th[READERS], NULL, prefix_writer, &sh), 0);
	for (int i = 0; i <= READERS; i++)
		pthread_join(th[i], NULL);
	assert_no_failures("concurrent_prefix");
	for (int i = 0; i < READERS; i++) {
		ck_assert_uint_gt(rd[i].reads, 0);
		free(rd[i].mark);
		free(rd[i].buf);
	}
	check_set(sh.s, &sh.key, TAG_PFX, 1, keep_all, "after the rounds");
	close_store(sh.s);
}
END_TEST

/* Two threads insert_many the same pairs, in different orders: each pair
 * is added by exactly one of them. */
struct once_arg {
	cidstore_t *s;
	const cid_t *k, *v;
	const size_t *order;
	size_t n;
	int *res; /* by pair index */
	long added;
	long err;
};

static void *once_main(void *arg)
{
	struct once_arg *a = arg;
	enum { B = 100 };
	cid_t kb[B], vb[B];
	int rb[B];
	for (size_t off = 0; off < a->n; off += B) {
		size_t m = a->n - off < B ? a->n - off : B;
		for (size_t i = 0; i < m; i++) {
			kb[i] = a->k[a->order[off + i]];
			vb[i] = a->v[a->order[off + i]];
		}
		long r = cidstore_insert_many(a->s, kb, vb, m, rb);
		if (r < 0) {
			a->err = r;
			return NULL;
		}
		long c = 0;
		for (size_t i = 0; i < m; i++) {
			a->res[a->order[off + i]] = rb[i];
			c += rb[i] == 1;
		}
		if (c != r)
			a->err = -1000;
		a->added += r;
	}
	return NULL;
}

START_TEST(test_concurrent_insert_many_once)
{
	const size_t n = SZ(200000, 40000), nkeys = n / 20;
	cidstore_t *s = open_mem_store(42, 0, false);
	cid_t *k = malloc(n * sizeof(*k)), *v = malloc(n * sizeof(*v));
	size_t *ord[2] = {malloc(n * sizeof(size_t)), malloc(n * sizeof(size_t))};
	int *res[2] = {malloc(n * sizeof(int)), malloc(n * sizeof(int))};
	ck_assert(k && v && ord[0] && ord[1] && res[0] && res[1]);
	for (size_t i = 0; i < n; i++) {
		/* skewed: key 0 gets a large share, so sets spill and grow */
		size_t key = i % 4 == 0 ? 0 : (size_t)(sm64(i) % nkeys);
		k[i] = mk(TAG_KEY, key);
		v[i] = mk(TAG_VAL, i);
		ord[0][i] = i;
		ord[1][i] = n - 1 - i;
	}
	/* thread 1: a shuffled order */
	uint64_t r = 5;
	for (size_t i = n - 1; i > 0; i--) {
		r = sm64(r);
		size_t j = (size_t)(r % (i + 1)), t = ord[1][i];
		ord[1][i] = ord[1][j];
		ord[1][j] = t;
	}
	struct once_arg a[2];
	pthread_t th[2];
	for (int t = 0; t < 2; t++) {
		a[t] = (struct once_arg){.s = s, .k = k, .v = v, .order = ord[t], .n = n,
					 .res = res[t]};
		ck_assert_int_eq(pthread_create(&th[t], NULL, once_main, &a[t]), 0);
	}
	for (int t = 0; t < 2; t++)
		pthread_join(th[t], NULL);
	ck_assert_int_eq(a[0].err, 0);
	ck_assert_int_eq(a[1].err, 0);
	ck_assert_int_eq(a[0].added + a[1].added, (long)n);
	for (size_t i = 0; i < n; i++)
		EXPECT(res[0][i] + res[1][i] == 1, "pair %zu added %d + %d times", i,
			      res[0][i], res[1][i]);
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_uint_eq(st.values, n);
	for (size_t i = 0; i < n; i++)
		EXPECT(cidstore_contains(s, &k[i], &v[i]) == 1, "pair %zu missing", i);
	free(k);
	free(v);
	for (int t = 0; t < 2; t++) {
		free(ord[t]);
		free(res[t]);
	}
	close_store(s);
}
END_TEST

/* ---------------------------------------------------------------------- */

static Suite *batch_suite(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("batch");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_batch_einval, 0, 2);
	tcase_add_loop_test(tc, test_lookup_many_vs_single, 0, 2);
	tcase_add_loop_test(tc, test_insert_many_vs_single, 0, 2);
	tcase_add_loop_test(tc, test_values, 0, 2);
	tcase_add_test(tc, test_big_set_memory);
	tcase_add_test(tc, test_big_set_durable);
	tcase_add_test(tc, test_insert_many_durable);
	tcase_add_test(tc, test_insert_many_wal_failure);
	tcase_add_test(tc, test_concurrent_prefix);
	tcase_add_test(tc, test_concurrent_insert_many_once);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(batch_suite());
}
