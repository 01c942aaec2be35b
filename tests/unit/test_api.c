/*
 * test_api.c — the public store API, single-threaded and deterministic.
 *
 * What is checked (every expectation is taken from include/cidstore.h):
 *   - set semantics: insert answers 1 then 0; a key with no values does not
 *     exist (lookup 0, contains 0, never visited by scan);
 *   - the inline/value-set boundary (2 -> 3 promotion, 3 -> 2 demotion) in
 *     every insert and delete order, and a long random walk on one key
 *     checked after every step against a reference model;
 *   - 10,000 values under one key;
 *   - return values of delete_value / delete_key;
 *   - lookup with cap < count, and lookup(cap 0, out NULL);
 *   - 200k keys grown from a one-bucket table (initial_depth 0), exact stats;
 *   - scan: every key exactly once with its exact values, stop value, a
 *     callback that calls back into the store (also in serialized mode);
 *   - NULL / invalid arguments: an error code, never a crash;
 *   - cidstore_strerror, cidstore_options_init, cidstore_apply (in memory);
 *   - serialized mode and different seeds give identical answers;
 *   - sequential / structured keys behave like random ones.
 */
#include <cidstore.h>
#include "unit_support.h"
#include <check.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* helpers                                                                 */
/* ---------------------------------------------------------------------- */

/* sm64, mk, cid_eq, SZ (smaller sizes under TSan), open_mem_store,
 * close_store: unit_support.h */

static int cid_cmp(const void *pa, const void *pb)
{
	const cid_t *a = pa, *b = pb;
	for (int i = 0; i < 4; i++) {
		if (a->w[i] != b->w[i])
			return a->w[i] < b->w[i] ? -1 : 1;
	}
	return 0;
}

static uint64_t rng_state = 1;
static uint64_t rnd(void)
{
	rng_state = sm64(rng_state);
	return rng_state;
}

/* Asserts that key holds exactly the n values of exp (any order). */
#define CHECK_EXACT(s, key, exp, n) check_exact(s, key, exp, n, __LINE__)
static void check_exact(cidstore_t *s, const cid_t *key, const cid_t *exp,
			size_t n, int line)
{
	size_t cap = n + 8;
	cid_t *got = malloc(cap * sizeof *got);
	cid_t *want = malloc((n + 1) * sizeof *want);
	ck_assert(got && want);
	long c = cidstore_lookup(s, key, got, cap);
	ck_assert_msg(c == (long)n, "line %d: lookup count %ld, expected %zu",
		      line, c, n);
	if (n)
		memcpy(want, exp, n * sizeof *want);
	qsort(got, n, sizeof *got, cid_cmp);
	qsort(want, n, sizeof *want, cid_cmp);
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(cid_eq(&got[i], &want[i]),
			      "line %d: value set differs at sorted index %zu of %zu",
			      line, i, n);
	}
	/* contains agrees with lookup */
	for (size_t i = 0; i < n; i++) {
		ck_assert_msg(cidstore_contains(s, key, &exp[i]) == 1,
			      "line %d: contains(value %zu) != 1", line, i);
	}
	long c0 = cidstore_lookup(s, key, NULL, 0);
	ck_assert_msg(c0 == (long)n, "line %d: lookup(cap 0) %ld, expected %zu",
		      line, c0, n);
	free(got);
	free(want);
}

static void check_stats(cidstore_t *s, uint64_t keys, uint64_t values, int line)
{
	cidstore_stats_t st;
	memset(&st, 0xA5, sizeof st);
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_msg(st.keys == keys, "line %d: stats.keys %" PRIu64 ", expected %" PRIu64,
		      line, st.keys, keys);
	ck_assert_msg(st.values == values,
		      "line %d: stats.values %" PRIu64 ", expected %" PRIu64,
		      line, st.values, values);
}
#define CHECK_STATS(s, k, v) check_stats(s, k, v, __LINE__)

/* ---------------------------------------------------------------------- */
/* options, open, close                                                    */
/* ---------------------------------------------------------------------- */

START_TEST(test_options_defaults)
{
	cidstore_options_t o;
	memset(&o, 0xEE, sizeof o);
	cidstore_options_init(&o);
	ck_assert_ptr_null(o.dir);
	/* header: "default SYNC; ignored when dir == NULL" */
	ck_assert_int_eq(o.durability, CIDSTORE_DURABILITY_SYNC);
	ck_assert(!o.serialized);
	ck_assert_msg(o.ring_records != 0 && (o.ring_records & (o.ring_records - 1)) == 0,
		      "default ring_records %u is not a power of two", o.ring_records);
	ck_assert_msg(o.initial_depth < 32, "default initial_depth %u", o.initial_depth);
	ck_assert_msg(o.segment_bytes > 0, "default segment_bytes is 0");
	ck_assert_msg(o.sync_interval_ms > 0, "default sync_interval_ms is 0");
	cidstore_options_init(NULL); /* ignored, no crash */

	/* the defaults open an in-memory store */
	cidstore_t *s = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	ck_assert_ptr_nonnull(s);
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_int_eq(st.keys, 0);
	ck_assert_int_eq(st.values, 0);
	ck_assert_int_eq(st.spilled_keys, 0);
	ck_assert_int_eq(st.durability, CIDSTORE_DURABILITY_NONE);
	ck_assert(!st.serialized);
	ck_assert(!st.failed);
	ck_assert_msg(st.failure[0] == '\0', "failure text on a healthy store");
	ck_assert_int_eq(st.wal_lsn, 0);
	ck_assert_int_eq(st.wal_records, 0);
	ck_assert_msg(st.buckets >= 1, "no live bucket");
	ck_assert_int_eq(cidstore_sync(s), 0);
	ck_assert_int_eq(cidstore_checkpoint(s), CIDSTORE_ENOTSUP);
	ck_assert(cidstore_version() != NULL);
	ck_assert_str_eq(cidstore_version(), CIDSTORE_VERSION_STRING);
	close_store(s);
}
END_TEST

START_TEST(test_open_invalid)
{
	cidstore_options_t o;
	cidstore_t *s = (cidstore_t *)0x1;

	cidstore_options_init(&o);
	ck_assert_int_eq(cidstore_open(NULL, &s), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_open(&o, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_open(NULL, NULL), CIDSTORE_EINVAL);

	/* durability without a directory: the header says it is ignored
	 * ("default SYNC; ignored when dir == NULL"): an in-memory store */
	for (int d = CIDSTORE_DURABILITY_NONE; d <= CIDSTORE_DURABILITY_SYNC; d++) {
		cidstore_options_init(&o);
		o.durability = (cidstore_durability_t)d;
		s = NULL;
		ck_assert_int_eq(cidstore_open(&o, &s), 0);
		cidstore_stats_t st;
		ck_assert_int_eq(cidstore_stats(s, &st), 0);
		ck_assert_int_eq(st.durability, CIDSTORE_DURABILITY_NONE);
		ck_assert_int_eq(st.wal_records, 0);
		ck_assert_int_eq(cidstore_sync(s), 0);
		ck_assert_int_eq(cidstore_close(s), 0);
	}
	/* but a value outside the enum is a bad option */
	cidstore_options_init(&o);
	o.durability = (cidstore_durability_t)7;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);
	o.durability = (cidstore_durability_t)-1;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);

	/* initial_depth > 20 is refused (header) */
	cidstore_options_init(&o);
	o.initial_depth = 21;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);
	o.initial_depth = 20;
	s = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	ck_assert_int_eq(cidstore_close(s), 0);

	/* ring_records must be a power of two */
	cidstore_options_init(&o);
	o.ring_records = 3;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);

	/* an absurd initial depth is refused, not attempted */
	cidstore_options_init(&o);
	o.initial_depth = 1000;
	int rc = cidstore_open(&o, &s);
	ck_assert_msg(rc < 0, "initial_depth 1000 accepted (%d)", rc);

	/* a directory: this build may not support it yet (ENOTSUP) */
	char dir[] = "/tmp/cidstore-test-api-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	cidstore_options_init(&o);
	o.dir = dir;
	s = NULL;
	rc = cidstore_open(&o, &s);
	ck_assert_msg(rc == 0 || rc == CIDSTORE_ENOTSUP,
		      "open with dir: %d (%s)", rc, cidstore_strerror(rc));
	if (rc == 0) {
		ck_assert_ptr_nonnull(s);
		ck_assert_int_eq(cidstore_close(s), 0);
	}
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);

	ck_assert_int_eq(cidstore_close(NULL), CIDSTORE_EINVAL);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* set semantics                                                           */
/* ---------------------------------------------------------------------- */

START_TEST(test_set_semantics)
{
	cidstore_t *s = open_mem_store(11, 0, false);
	cid_t k = mk(1, 1), v = mk(2, 1), w = mk(2, 2), other = mk(1, 2);

	ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 0);
	ck_assert_int_eq(cidstore_contains(s, &k, &v), 0);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 0);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 0);
	CHECK_EXACT(s, &k, &v, 1);
	ck_assert_int_eq(cidstore_contains(s, &k, &w), 0);
	ck_assert_int_eq(cidstore_contains(s, &other, &v), 0);
	ck_assert_int_eq(cidstore_lookup(s, &other, NULL, 0), 0);
	CHECK_STATS(s, 1, 1);

	/* a value equal to the key, and the all-zero cid, are ordinary */
	cid_t zero = {{0, 0, 0, 0}};
	ck_assert_int_eq(cidstore_insert(s, &k, &k), 1);
	ck_assert_int_eq(cidstore_insert(s, &zero, &zero), 1);
	ck_assert_int_eq(cidstore_insert(s, &zero, &zero), 0);
	CHECK_EXACT(s, &zero, &zero, 1);
	cid_t kv[2] = {v, k};
	CHECK_EXACT(s, &k, kv, 2);
	CHECK_STATS(s, 2, 3);

	/* deleting the last value makes the key disappear */
	ck_assert_int_eq(cidstore_delete_value(s, &k, &k), 1);
	ck_assert_int_eq(cidstore_delete_value(s, &k, &v), 1);
	ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 0);
	ck_assert_int_eq(cidstore_contains(s, &k, &v), 0);
	CHECK_STATS(s, 1, 1);
	/* and it comes back as new */
	ck_assert_int_eq(cidstore_insert(s, &k, &w), 1);
	CHECK_EXACT(s, &k, &w, 1);
	ck_assert_int_eq(cidstore_delete_key(s, &zero), 1);
	CHECK_STATS(s, 1, 1);
	close_store(s);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* inline <-> value-set boundary                                           */
/* ---------------------------------------------------------------------- */

static const int perms3[6][3] = {
	{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0},
};

START_TEST(test_promotion_demotion)
{
	cidstore_t *s = open_mem_store(12, 0, false);
	cid_t v[4] = {mk(20, 0), mk(20, 1), mk(20, 2), mk(20, 3)};
	int round = 0;

	for (int ip = 0; ip < 6; ip++) {
		for (int dp = 0; dp < 6; dp++, round++) {
			cid_t k = mk(10, (uint64_t)round % 3); /* keys are reused */
			cid_t cur[4];
			size_t n = 0;
			CHECK_EXACT(s, &k, cur, 0);
			for (int j = 0; j < 3; j++) {
				const cid_t *x = &v[perms3[ip][j]];
				ck_assert_int_eq(cidstore_insert(s, &k, x), 1);
				cur[n++] = *x;
				CHECK_EXACT(s, &k, cur, n);
				/* duplicates never change anything, at any size */
				for (size_t d = 0; d < n; d++)
					ck_assert_int_eq(cidstore_insert(s, &k, &cur[d]), 0);
				CHECK_EXACT(s, &k, cur, n);
			}
			cidstore_stats_t st;
			ck_assert_int_eq(cidstore_stats(s, &st), 0);
			ck_assert_msg(st.spilled_keys == 1,
				      "3 values under one key: spilled_keys %" PRIu64,
				      st.spilled_keys);
			/* 3 -> 4 -> 3 */
			ck_assert_int_eq(cidstore_insert(s, &k, &v[3]), 1);
			cid_t four[4] = {v[0], v[1], v[2], v[3]};
			CHECK_EXACT(s, &k, four, 4);
			ck_assert_int_eq(cidstore_delete_value(s, &k, &v[3]), 1);
			ck_assert_int_eq(cidstore_delete_value(s, &k, &v[3]), 0);
			CHECK_EXACT(s, &k, four, 3);

			/* delete down to 2, 1, 0 in order dp, re-inserting at 2 */
			for (int j = 0; j < 3; j++) {
				const cid_t *x = &v[perms3[dp][j]];
				ck_assert_int_eq(cidstore_delete_value(s, &k, x), 1);
				ck_assert_int_eq(cidstore_delete_value(s, &k, x), 0);
				for (size_t d = 0; d < n; d++) {
					if (cid_eq(&cur[d], x)) {
						cur[d] = cur[--n];
						break;
					}
				}
				CHECK_EXACT(s, &k, cur, n);
				ck_assert_int_eq(cidstore_contains(s, &k, x), 0);
				if (j == 0) {
					/* 2 -> 3 -> 2 right after the demotion */
					ck_assert_int_eq(cidstore_insert(s, &k, x), 1);
					cur[n++] = *x;
					CHECK_EXACT(s, &k, cur, n);
					ck_assert_int_eq(cidstore_delete_value(s, &k, x), 1);
					n--;
					CHECK_EXACT(s, &k, cur, n);
				}
			}
			ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 0);
			/* re-insert after emptying */
			ck_assert_int_eq(cidstore_insert(s, &k, &v[perms3[dp][2]]), 1);
			CHECK_EXACT(s, &k, &v[perms3[dp][2]], 1);
			ck_assert_int_eq(cidstore_delete_key(s, &k), 1);
			ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 0);
		}
	}
	CHECK_STATS(s, 0, 0);

	/* delete_key at each size 1..5, then reuse */
	for (size_t n = 1; n <= 5; n++) {
		cid_t k = mk(11, n);
		cid_t vals[5];
		for (size_t j = 0; j < n; j++) {
			vals[j] = mk(21, j);
			ck_assert_int_eq(cidstore_insert(s, &k, &vals[j]), 1);
		}
		CHECK_EXACT(s, &k, vals, n);
		ck_assert_int_eq(cidstore_delete_key(s, &k), (long)n);
		ck_assert_int_eq(cidstore_delete_key(s, &k), 0);
		ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 0);
		for (size_t j = 0; j < n; j++)
			ck_assert_int_eq(cidstore_contains(s, &k, &vals[j]), 0);
		ck_assert_int_eq(cidstore_insert(s, &k, &vals[n - 1]), 1);
		CHECK_EXACT(s, &k, &vals[n - 1], 1);
	}
	CHECK_STATS(s, 5, 5);
	close_store(s);
}
END_TEST

/* A random walk on a few keys over a small value pool, checked against a
 * bitmap model after every step: crosses 2 <-> 3 constantly, in mixed
 * orders, with delete_key thrown in. */
START_TEST(test_random_walk_model)
{
	enum { KEYS = 4, POOL = 7, STEPS = SZ(20000, 5000) };
	cidstore_t *s = open_mem_store(13, 0, false);
	unsigned model[KEYS] = {0};
	cid_t pool[POOL];
	for (int i = 0; i < POOL; i++)
		pool[i] = mk(30, (uint64_t)i);
	rng_state = 99;
	for (int step = 0; step < STEPS; step++) {
		int k = (int)(rnd() % KEYS), j = (int)(rnd() % POOL);
		cid_t key = mk(31, (uint64_t)k);
		unsigned r = (unsigned)(rnd() % 100);
		if (r < 2) {
			long want = __builtin_popcount(model[k]);
			long got = cidstore_delete_key(s, &key);
			ck_assert_msg(got == want, "step %d: delete_key %ld, want %ld",
				      step, got, want);
			model[k] = 0;
		} else if (r < 52) {
			int want = !(model[k] >> j & 1);
			int got = cidstore_insert(s, &key, &pool[j]);
			ck_assert_msg(got == want, "step %d: insert %d, want %d", step, got, want);
			model[k] |= 1u << j;
		} else {
			int want = model[k] >> j & 1;
			int got = cidstore_delete_value(s, &key, &pool[j]);
			ck_assert_msg(got == want, "step %d: delete_value %d, want %d",
				      step, got, want);
			model[k] &= ~(1u << j);
		}
		cid_t exp[POOL];
		size_t n = 0;
		for (int b = 0; b < POOL; b++)
			if (model[k] >> b & 1)
				exp[n++] = pool[b];
		CHECK_EXACT(s, &key, exp, n);
		for (int b = 0; b < POOL; b++)
			ck_assert_int_eq(cidstore_contains(s, &key, &pool[b]),
					 (int)(model[k] >> b & 1));
	}
	uint64_t keys = 0, values = 0;
	for (int k = 0; k < KEYS; k++) {
		keys += model[k] != 0;
		values += (uint64_t)__builtin_popcount(model[k]);
	}
	CHECK_STATS(s, keys, values);
	close_store(s);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* 10,000 values under one key                                             */
/* ---------------------------------------------------------------------- */

START_TEST(test_many_values_one_key)
{
	enum { N = 10000 };
	cidstore_t *s = open_mem_store(14, 0, false);
	cid_t k = mk(40, 0);
	cid_t *v = malloc(N * sizeof *v);
	ck_assert_ptr_nonnull(v);
	for (int i = 0; i < N; i++)
		v[i] = mk(41, sm64((uint64_t)i)); /* unsorted insert order */
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(cidstore_insert(s, &k, &v[i]), 1);
		if (i % 997 == 0)
			CHECK_EXACT(s, &k, v, (size_t)i + 1);
	}
	for (int i = 0; i < N; i += 3)
		ck_assert_int_eq(cidstore_insert(s, &k, &v[i]), 0);
	CHECK_EXACT(s, &k, v, N);
	for (int i = 0; i < N; i++)
		ck_assert_msg(cidstore_contains(s, &k, &v[i]) == 1, "value %d missing", i);
	cid_t absent = mk(42, 0);
	ck_assert_int_eq(cidstore_contains(s, &k, &absent), 0);
	CHECK_STATS(s, 1, N);

	/* delete every odd one (in reverse order), then check the rest */
	for (int i = N - 1; i >= 0; i--)
		if (i & 1)
			ck_assert_int_eq(cidstore_delete_value(s, &k, &v[i]), 1);
	cid_t *half = malloc(N * sizeof *half);
	ck_assert_ptr_nonnull(half);
	size_t h = 0;
	for (int i = 0; i < N; i += 2)
		half[h++] = v[i];
	CHECK_EXACT(s, &k, half, h);
	for (int i = 1; i < N; i += 2) {
		ck_assert_int_eq(cidstore_contains(s, &k, &v[i]), 0);
		ck_assert_int_eq(cidstore_delete_value(s, &k, &v[i]), 0);
	}
	CHECK_STATS(s, 1, h);
	/* re-insert a few deleted ones: they come back once */
	ck_assert_int_eq(cidstore_insert(s, &k, &v[1]), 1);
	ck_assert_int_eq(cidstore_insert(s, &k, &v[1]), 0);
	half[h++] = v[1];
	CHECK_EXACT(s, &k, half, h);
	/* delete the rest one by one down to zero */
	for (size_t i = 0; i < h; i++) {
		ck_assert_int_eq(cidstore_delete_value(s, &k, &half[i]), 1);
		if (h - i - 1 <= 3)
			CHECK_EXACT(s, &k, half + i + 1, h - i - 1);
	}
	ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 0);
	CHECK_STATS(s, 0, 0);

	/* and a big key removed by delete_key */
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(cidstore_insert(s, &k, &v[i]), 1);
	ck_assert_int_eq(cidstore_delete_key(s, &k), N);
	ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 0);
	CHECK_STATS(s, 0, 0);
	free(v);
	free(half);
	close_store(s);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* delete return values, lookup caps                                       */
/* ---------------------------------------------------------------------- */

START_TEST(test_delete_returns)
{
	cidstore_t *s = open_mem_store(15, 0, false);
	cid_t k = mk(50, 0), a = mk(51, 0), b = mk(51, 1), c = mk(51, 2);
	ck_assert_int_eq(cidstore_delete_value(s, &k, &a), 0); /* absent key */
	ck_assert_int_eq(cidstore_delete_key(s, &k), 0);
	ck_assert_int_eq(cidstore_insert(s, &k, &a), 1);
	ck_assert_int_eq(cidstore_delete_value(s, &k, &b), 0); /* absent value */
	ck_assert_int_eq(cidstore_insert(s, &k, &b), 1);
	ck_assert_int_eq(cidstore_insert(s, &k, &c), 1);
	ck_assert_int_eq(cidstore_delete_value(s, &k, &b), 1);
	ck_assert_int_eq(cidstore_delete_value(s, &k, &b), 0);
	ck_assert_int_eq(cidstore_delete_key(s, &k), 2);
	ck_assert_int_eq(cidstore_delete_key(s, &k), 0);
	ck_assert_int_eq(cidstore_delete_value(s, &k, &a), 0);
	/* other keys are untouched by delete_key */
	cid_t k2 = mk(50, 1);
	ck_assert_int_eq(cidstore_insert(s, &k, &a), 1);
	ck_assert_int_eq(cidstore_insert(s, &k2, &a), 1);
	ck_assert_int_eq(cidstore_insert(s, &k2, &b), 1);
	ck_assert_int_eq(cidstore_insert(s, &k2, &c), 1);
	ck_assert_int_eq(cidstore_delete_key(s, &k), 1);
	cid_t abc[3] = {a, b, c};
	CHECK_EXACT(s, &k2, abc, 3);
	CHECK_STATS(s, 1, 3);
	close_store(s);
}
END_TEST

START_TEST(test_lookup_cap)
{
	cidstore_t *s = open_mem_store(16, 0, false);
	for (size_t n = 1; n <= 7; n++) {
		cid_t k = mk(60, n), vals[7];
		for (size_t j = 0; j < n; j++) {
			vals[j] = mk(61, n * 10 + j);
			ck_assert_int_eq(cidstore_insert(s, &k, &vals[j]), 1);
		}
		ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), (long)n);
		for (size_t cap = 0; cap <= n + 1; cap++) {
			cid_t out[12];
			memset(out, 0xEE, sizeof out);
			long c = cidstore_lookup(s, &k, out, cap);
			ck_assert_msg(c == (long)n, "n=%zu cap=%zu: lookup %ld", n, cap, c);
			size_t filled = cap < n ? cap : n;
			for (size_t i = 0; i < filled; i++) {
				int member = 0;
				for (size_t j = 0; j < n; j++)
					member |= cid_eq(&out[i], &vals[j]);
				ck_assert_msg(member, "n=%zu cap=%zu: out[%zu] not a value", n, cap, i);
				for (size_t i2 = 0; i2 < i; i2++)
					ck_assert_msg(!cid_eq(&out[i], &out[i2]),
						      "n=%zu cap=%zu: duplicate in out", n, cap);
			}
			const unsigned char *tail = (const unsigned char *)&out[filled];
			for (size_t b = 0; b < (12 - filled) * sizeof(cid_t); b++)
				ck_assert_msg(tail[b] == 0xEE,
					      "n=%zu cap=%zu: lookup wrote past min(count, cap)", n, cap);
		}
	}
	cid_t absent = mk(60, 99), out[2];
	ck_assert_int_eq(cidstore_lookup(s, &absent, NULL, 0), 0);
	ck_assert_int_eq(cidstore_lookup(s, &absent, out, 2), 0);
	close_store(s);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* many keys from a one-bucket table                                       */
/* ---------------------------------------------------------------------- */

START_TEST(test_many_keys_growth)
{
	enum { N = SZ(200000, 100000) };
	cidstore_t *s = open_mem_store(17, 0, false);
	cidstore_stats_t st0;
	ck_assert_int_eq(cidstore_stats(s, &st0), 0);
	ck_assert_int_eq(st0.global_depth, 2); /* the smallest table: 4 groups */

	uint64_t values = 0, spilled = 0;
	for (uint64_t i = 0; i < N; i++) {
		cid_t k = mk(70, i);
		unsigned nv = (unsigned)(i % 4) + 1;
		for (unsigned j = 0; j < nv; j++) {
			cid_t v = mk(71, i * 4 + j);
			int rc = cidstore_insert(s, &k, &v);
			ck_assert_msg(rc == 1, "key %" PRIu64 " value %u: insert %d", i, j, rc);
		}
		values += nv;
		spilled += nv >= 2; /* one value lives inline, more in a value set */
	}
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_msg(st.keys == N && st.values == values,
		      "stats keys %" PRIu64 " values %" PRIu64 ", expected %d %" PRIu64,
		      st.keys, st.values, N, values);
	ck_assert_msg(st.spilled_keys == spilled, "spilled_keys %" PRIu64 ", expected %" PRIu64,
		      st.spilled_keys, spilled);
	ck_assert_msg(st.global_depth > 0 && st.splits > 0 && st.buckets > 1 && st.dir_rebuilds > 0,
		      "no growth: depth %u splits %" PRIu64 " buckets %" PRIu64 " rebuilds %" PRIu64,
		      st.global_depth, st.splits, st.buckets, st.dir_rebuilds);
	ck_assert_msg(st.max_local_depth <= st.global_depth,
		      "max_local_depth %u > global_depth %u", st.max_local_depth, st.global_depth);
	ck_assert_msg(st.memory_bytes > 0, "memory_bytes 0");

	for (uint64_t i = 0; i < N; i++) {
		cid_t k = mk(70, i), exp[4];
		unsigned nv = (unsigned)(i % 4) + 1;
		for (unsigned j = 0; j < nv; j++)
			exp[j] = mk(71, i * 4 + j);
		if (i % 50 == 0) {
			CHECK_EXACT(s, &k, exp, nv);
		} else {
			cid_t out[8];
			long c = cidstore_lookup(s, &k, out, 8);
			ck_assert_msg(c == (long)nv, "key %" PRIu64 ": lookup %ld, want %u", i, c, nv);
			ck_assert_int_eq(cidstore_contains(s, &k, &exp[nv - 1]), 1);
		}
		cid_t absent = mk(72, i);
		ck_assert_int_eq(cidstore_lookup(s, &absent, NULL, 0), 0);
	}

	/* delete every even key; the odd ones stay intact */
	uint64_t left_keys = 0, left_values = 0;
	for (uint64_t i = 0; i < N; i++) {
		cid_t k = mk(70, i);
		long nv = (long)(i % 4) + 1;
		if (i % 2 == 0) {
			ck_assert_int_eq(cidstore_delete_key(s, &k), nv);
		} else {
			left_keys++;
			left_values += (uint64_t)nv;
		}
	}
	CHECK_STATS(s, left_keys, left_values);
	for (uint64_t i = 0; i < N; i++) {
		cid_t k = mk(70, i);
		long want = i % 2 ? (long)(i % 4) + 1 : 0;
		ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), want);
	}
	close_store(s);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* scan                                                                    */
/* ---------------------------------------------------------------------- */

enum { SCAN_KEYS = 5000, SCAN_TAG = 0x5CA7, SCAN_VTAG = 0x5CA8, SCAN_NEWTAG = 0x5CA9 };

struct scan_ctx {
	cidstore_t *s;
	unsigned char *visits;
	unsigned long calls, bad, foreign, added;
	unsigned long stop_at; /* 0: never */
	int stop_value;
	int reenter;           /* call lookup/contains/insert from the callback */
	uint64_t next_new;
	char first_error[160];
};

static unsigned scan_nvals(uint64_t i) { return (unsigned)(i % 5) + 1; }

static void scan_populate(cidstore_t *s)
{
	for (uint64_t i = 0; i < SCAN_KEYS; i++) {
		cid_t k = mk(SCAN_TAG, i);
		for (unsigned j = 0; j < scan_nvals(i); j++) {
			cid_t v = mk(SCAN_VTAG, i * 8 + j);
			ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
		}
	}
}

static void scan_err(struct scan_ctx *c, const char *msg, uint64_t i)
{
	if (c->bad++ == 0)
		snprintf(c->first_error, sizeof c->first_error, "%s (key %" PRIu64 ")", msg, i);
}

static int scan_cb(const cid_t *key, const cid_t *values, size_t n, void *p)
{
	struct scan_ctx *c = p;
	c->calls++;
	if (n == 0)
		scan_err(c, "callback with nvalues == 0", 0);
	if (key->w[0] == SCAN_TAG && key->w[1] < SCAN_KEYS) {
		uint64_t i = key->w[1];
		cid_t want = mk(SCAN_TAG, i);
		if (!cid_eq(key, &want)) {
			scan_err(c, "mangled key", i);
			return 0;
		}
		c->visits[i]++;
		if (n != scan_nvals(i)) {
			scan_err(c, "wrong nvalues", i);
		} else {
			unsigned seen = 0;
			for (size_t a = 0; a < n; a++) {
				uint64_t j = values[a].w[1] - i * 8;
				cid_t wv = mk(SCAN_VTAG, i * 8 + j);
				if (j >= scan_nvals(i) || !cid_eq(&values[a], &wv) || (seen >> j & 1))
					scan_err(c, "wrong value set", i);
				else
					seen |= 1u << j;
			}
		}
		if (c->reenter) {
			long cnt = cidstore_lookup(c->s, key, NULL, 0);
			if (cnt != (long)n)
				scan_err(c, "lookup from callback disagrees", i);
			if (cidstore_contains(c->s, key, &values[0]) != 1)
				scan_err(c, "contains from callback disagrees", i);
			/* new keys force splits while the scan runs */
			for (int r = 0; r < 4; r++) {
				cid_t nk = mk(SCAN_NEWTAG, c->next_new++);
				if (cidstore_insert(c->s, &nk, &values[0]) != 1)
					scan_err(c, "insert from callback failed", i);
			}
		}
	} else if (key->w[0] == SCAN_NEWTAG) {
		c->added++;
	} else {
		c->foreign++;
	}
	if (c->stop_at && c->calls == c->stop_at)
		return c->stop_value;
	return 0;
}

static void scan_check_once(cidstore_t *s, int reenter)
{
	struct scan_ctx c;
	memset(&c, 0, sizeof c);
	c.s = s;
	c.reenter = reenter;
	c.visits = calloc(SCAN_KEYS, 1);
	ck_assert_ptr_nonnull(c.visits);
	int rc = cidstore_scan(s, scan_cb, &c);
	ck_assert_msg(rc == 0, "scan returned %d", rc);
	ck_assert_msg(c.bad == 0, "%lu scan errors, first: %s", c.bad, c.first_error);
	ck_assert_msg(c.foreign == 0, "scan visited %lu keys never inserted", c.foreign);
	for (uint64_t i = 0; i < SCAN_KEYS; i++)
		ck_assert_msg(c.visits[i] == 1, "key %" PRIu64 " visited %u times", i, c.visits[i]);
	if (!reenter)
		ck_assert_int_eq(c.calls - c.added, SCAN_KEYS);
	free(c.visits);
}

static void scan_suite_body(bool serialized)
{
	cidstore_t *s = open_mem_store(18, 0, serialized);
	struct scan_ctx c;
	memset(&c, 0, sizeof c);
	c.visits = calloc(SCAN_KEYS, 1);
	ck_assert_int_eq(cidstore_scan(s, scan_cb, &c), 0); /* empty store */
	ck_assert_int_eq(c.calls, 0);
	free(c.visits);

	scan_populate(s);
	/* keys emptied by delete_value / delete_key are not visited */
	cid_t gone1 = mk(0xD1, 1), gone2 = mk(0xD1, 2);
	for (uint64_t j = 0; j < 4; j++) {
		cid_t v = mk(0xD2, j);
		ck_assert_int_eq(cidstore_insert(s, &gone1, &v), 1);
		ck_assert_int_eq(cidstore_insert(s, &gone2, &v), 1);
	}
	for (uint64_t j = 0; j < 4; j++) {
		cid_t v = mk(0xD2, j);
		ck_assert_int_eq(cidstore_delete_value(s, &gone1, &v), 1);
	}
	ck_assert_int_eq(cidstore_delete_key(s, &gone2), 4);
	scan_check_once(s, 0);

	/* stop value is returned; no more calls after it */
	memset(&c, 0, sizeof c);
	c.visits = calloc(SCAN_KEYS, 1);
	c.stop_at = 10;
	c.stop_value = 42;
	ck_assert_int_eq(cidstore_scan(s, scan_cb, &c), 42);
	ck_assert_int_eq(c.calls, 10);
	memset(c.visits, 0, SCAN_KEYS);
	c.calls = 0;
	c.stop_at = 1;
	c.stop_value = 7;
	ck_assert_int_eq(cidstore_scan(s, scan_cb, &c), 7);
	ck_assert_int_eq(c.calls, 1);
	free(c.visits);

	/* the callback may call back into the store, including writes that
	 * split buckets under the scan */
	scan_check_once(s, 1);
	/* and the store is intact afterwards */
	scan_check_once(s, 0);
	close_store(s);
}

START_TEST(test_scan)
{
	scan_suite_body(false);
}
END_TEST

START_TEST(test_scan_serialized)
{
	scan_suite_body(true);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* NULL and invalid arguments                                              */
/* ---------------------------------------------------------------------- */

static int noop_cb(const cid_t *k, const cid_t *v, size_t n, void *c)
{
	(void)k; (void)v; (void)n; (void)c;
	return 0;
}

START_TEST(test_null_args)
{
	cidstore_t *s = open_mem_store(19, 0, (bool)_i);
	cid_t k = mk(80, 0), v = mk(81, 0), out[4];
	cidstore_stats_t st;
	cidstore_op_t op = {CIDSTORE_OP_INSERT, k, v};

	ck_assert_int_eq(cidstore_insert(NULL, &k, &v), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_insert(s, NULL, &v), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_insert(s, &k, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_delete_value(NULL, &k, &v), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_delete_value(s, NULL, &v), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_delete_value(s, &k, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_delete_key(NULL, &k), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_delete_key(s, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_lookup(NULL, &k, out, 4), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_lookup(s, NULL, out, 4), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 4), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 1), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_contains(NULL, &k, &v), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_contains(s, NULL, &v), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_contains(s, &k, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_apply(NULL, &op, 1), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_apply(s, NULL, 1), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_apply(s, NULL, 5), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_sync(NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_checkpoint(NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_scan(NULL, noop_cb, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_scan(s, NULL, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_stats(NULL, &st), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_stats(s, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_close(NULL), CIDSTORE_EINVAL);

	/* the same with a key present */
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 2), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_delete_value(s, &k, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_insert(s, &k, NULL), CIDSTORE_EINVAL);

	/* bad opcode in a batch */
	cidstore_op_t bad = {(cidstore_opcode_t)0, k, v};
	ck_assert_int_eq(cidstore_apply(s, &bad, 1), CIDSTORE_EINVAL);
	bad.op = (cidstore_opcode_t)99;
	ck_assert_int_eq(cidstore_apply(s, &bad, 1), CIDSTORE_EINVAL);

	/* nothing above changed the store */
	CHECK_EXACT(s, &k, &v, 1);
	CHECK_STATS(s, 1, 1);
	close_store(s);
}
END_TEST

START_TEST(test_strerror)
{
	const int codes[] = {CIDSTORE_OK, CIDSTORE_EINVAL, CIDSTORE_ENOMEM,
			     CIDSTORE_EIO, CIDSTORE_ECORRUPT, CIDSTORE_EVERSION,
			     CIDSTORE_EBUSY, CIDSTORE_ENOTSUP, CIDSTORE_ERDONLY,
			     CIDSTORE_ERANGE, -12345};
	enum { NC = sizeof codes / sizeof codes[0] };
	const char *m[NC];
	for (int i = 0; i < NC; i++) {
		m[i] = cidstore_strerror(codes[i]);
		ck_assert_msg(m[i] != NULL, "strerror(%d) is NULL", codes[i]);
		ck_assert_msg(m[i][0] != '\0', "strerror(%d) is empty", codes[i]);
	}
	for (int i = 0; i < NC; i++)
		for (int j = 0; j < i; j++)
			ck_assert_msg(strcmp(m[i], m[j]) != 0,
				      "strerror(%d) == strerror(%d): \"%s\"", codes[i], codes[j], m[i]);
	/* other unknown codes: non-NULL, and not mistaken for a known one */
	const int unknown[] = {1, 12345, -10, -1000, (int)0x80000000};
	for (size_t u = 0; u < sizeof unknown / sizeof unknown[0]; u++) {
		const char *x = cidstore_strerror(unknown[u]);
		ck_assert_msg(x != NULL && x[0] != '\0', "strerror(%d)", unknown[u]);
		for (int i = 0; i < NC - 1; i++)
			ck_assert_msg(strcmp(x, m[i]) != 0, "strerror(%d) == strerror(%d)",
				      unknown[u], codes[i]);
	}
}
END_TEST

/* ---------------------------------------------------------------------- */
/* apply (in memory: applied directly, per the header)                     */
/* ---------------------------------------------------------------------- */

START_TEST(test_apply_in_memory)
{
	cidstore_t *s = open_mem_store(20, 0, (bool)_i);
	cid_t k1 = mk(90, 1), k2 = mk(90, 2);
	cid_t v1 = mk(91, 1), v2 = mk(91, 2), v3 = mk(91, 3), v9 = mk(91, 9);
	cidstore_op_t ops[] = {
		{CIDSTORE_OP_INSERT, k1, v1},       /* changes */
		{CIDSTORE_OP_INSERT, k1, v1},       /* duplicate: no change */
		{CIDSTORE_OP_INSERT, k1, v2},       /* changes */
		{CIDSTORE_OP_INSERT, k1, v3},       /* changes (spills) */
		{CIDSTORE_OP_DELETE_VALUE, k1, v2}, /* changes */
		{CIDSTORE_OP_DELETE_VALUE, k1, v9}, /* absent: no change */
		{CIDSTORE_OP_INSERT, k2, v1},       /* changes */
		{CIDSTORE_OP_DELETE_KEY, k2, v9},   /* changes (value ignored) */
		{CIDSTORE_OP_DELETE_KEY, k2, v9},   /* absent: no change */
	};
	int rc = cidstore_apply(s, ops, sizeof ops / sizeof ops[0]);
	ck_assert_msg(rc == 6, "apply returned %d (%s), expected 6 changes", rc,
		      rc < 0 ? cidstore_strerror(rc) : "");
	cid_t want[2] = {v1, v3};
	CHECK_EXACT(s, &k1, want, 2);
	ck_assert_int_eq(cidstore_lookup(s, &k2, NULL, 0), 0);
	CHECK_STATS(s, 1, 2);
	ck_assert_int_eq(cidstore_apply(s, ops, 0), 0);
	ck_assert_int_eq(cidstore_apply(s, NULL, 0), 0);
	close_store(s);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* serialized mode and seeds do not change answers                         */
/* ---------------------------------------------------------------------- */

struct collect {
	cid_t *pairs; /* key, value, key, value, ... */
	size_t n, cap;
};

static int collect_cb(const cid_t *k, const cid_t *v, size_t n, void *p)
{
	struct collect *c = p;
	for (size_t i = 0; i < n; i++) {
		if (c->n + 2 > c->cap) {
			c->cap = c->cap ? c->cap * 2 : 1024;
			c->pairs = realloc(c->pairs, c->cap * sizeof *c->pairs);
			if (!c->pairs)
				abort();
		}
		c->pairs[c->n++] = *k;
		c->pairs[c->n++] = v[i];
	}
	return 0;
}

static int pair_cmp(const void *a, const void *b)
{
	int r = cid_cmp(a, b);
	return r ? r : cid_cmp((const cid_t *)a + 1, (const cid_t *)b + 1);
}

/* Runs a fixed random workload; returns every operation's result and the
 * final content (sorted key/value pairs). */
static long *run_workload(cidstore_t *s, size_t steps, struct collect *content)
{
	long *res = malloc(steps * sizeof *res);
	ck_assert_ptr_nonnull(res);
	rng_state = 4242;
	for (size_t i = 0; i < steps; i++) {
		cid_t k = mk(100, rnd() % 3000), v = mk(101, rnd() % 6);
		unsigned r = (unsigned)(rnd() % 100);
		if (r < 55)
			res[i] = cidstore_insert(s, &k, &v);
		else if (r < 80)
			res[i] = cidstore_delete_value(s, &k, &v);
		else if (r < 83)
			res[i] = cidstore_delete_key(s, &k);
		else if (r < 93)
			res[i] = cidstore_lookup(s, &k, NULL, 0);
		else
			res[i] = cidstore_contains(s, &k, &v);
	}
	memset(content, 0, sizeof *content);
	ck_assert_int_eq(cidstore_scan(s, collect_cb, content), 0);
	qsort(content->pairs, content->n / 2, 2 * sizeof(cid_t), pair_cmp);
	return res;
}

START_TEST(test_serialized_and_seeds_identical)
{
	enum { STEPS = SZ(200000, 50000) };
	struct {
		uint64_t seed;
		unsigned depth;
		bool serialized;
	} cfg[] = {{1, 0, false}, {1, 0, true}, {0xdeadbeef, 0, false}, {7, 4, true}, {0, 2, false}};
	enum { NCFG = sizeof cfg / sizeof cfg[0] };
	long *res[NCFG];
	struct collect content[NCFG];
	cidstore_stats_t st[NCFG];
	for (int c = 0; c < NCFG; c++) {
		cidstore_t *s = open_mem_store(cfg[c].seed, cfg[c].depth, cfg[c].serialized);
		res[c] = run_workload(s, STEPS, &content[c]);
		ck_assert_int_eq(cidstore_stats(s, &st[c]), 0);
		ck_assert_msg(st[c].serialized == cfg[c].serialized, "stats.serialized wrong");
		close_store(s);
	}
	for (int c = 1; c < NCFG; c++) {
		for (size_t i = 0; i < STEPS; i++)
			ck_assert_msg(res[c][i] == res[0][i],
				      "config %d differs at step %zu: %ld vs %ld", c, i,
				      res[c][i], res[0][i]);
		ck_assert_int_eq(content[c].n, content[0].n);
		ck_assert_msg(memcmp(content[c].pairs, content[0].pairs,
				     content[0].n * sizeof(cid_t)) == 0,
			      "config %d: final content differs", c);
		ck_assert_int_eq(st[c].keys, st[0].keys);
		ck_assert_int_eq(st[c].values, st[0].values);
		ck_assert_int_eq(st[c].spilled_keys, st[0].spilled_keys);
	}
	ck_assert_int_eq(st[0].values, content[0].n / 2);
	for (int c = 0; c < NCFG; c++) {
		free(res[c]);
		free(content[c].pairs);
	}
}
END_TEST

START_TEST(test_two_stores_independent)
{
	cidstore_t *a = open_mem_store(111, 0, false), *b = open_mem_store(222, 0, false);
	enum { N = 20000 };
	for (uint64_t i = 0; i < N; i++) {
		cid_t k = mk(110, i), va = mk(111, i), vb = mk(112, i);
		ck_assert_int_eq(cidstore_insert(a, &k, &va), 1);
		if (i % 2)
			ck_assert_int_eq(cidstore_insert(b, &k, &vb), 1);
	}
	CHECK_STATS(a, N, N);
	CHECK_STATS(b, N / 2, N / 2);
	for (uint64_t i = 0; i < N; i++) {
		cid_t k = mk(110, i), va = mk(111, i), vb = mk(112, i);
		CHECK_EXACT(a, &k, &va, 1);
		if (i % 2)
			CHECK_EXACT(b, &k, &vb, 1);
		else
			ck_assert_int_eq(cidstore_lookup(b, &k, NULL, 0), 0);
		ck_assert_int_eq(cidstore_contains(b, &k, &va), 0);
	}
	for (uint64_t i = 0; i < N; i++) {
		cid_t k = mk(110, i);
		ck_assert_int_eq(cidstore_delete_key(a, &k), 1);
	}
	CHECK_STATS(a, 0, 0);
	CHECK_STATS(b, N / 2, N / 2);
	close_store(a);
	/* b survives a's close */
	cid_t k = mk(110, 1), vb = mk(112, 1);
	CHECK_EXACT(b, &k, &vb, 1);
	close_store(b);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* sequential and structured keys                                          */
/* ---------------------------------------------------------------------- */

static cid_t pattern_key(int pattern, uint64_t i)
{
	cid_t c = {{0, 0, 0, 0}};
	switch (pattern) {
	case 0: /* random */
		c = (cid_t){{sm64(i), sm64(i ^ 0xabcdef), sm64(i + 3), sm64(i * 7 + 1)}};
		break;
	case 1: c.w[3] = i; break;                 /* {0,0,0,i} */
	case 2: c.w[0] = i; break;                 /* {i,0,0,0} */
	case 3: c.w[1] = i; break;                 /* {0,i,0,0} */
	case 4: c.w[2] = i; break;                 /* {0,0,i,0} */
	case 5: c.w[3] = i << 32; break;           /* sequential in high bits of low word */
	case 6: c.w[0] = c.w[1] = c.w[2] = c.w[3] = i; break;
	}
	return c;
}

START_TEST(test_sequential_keys)
{
	enum { N = SZ(100000, 30000), NPAT = 7 };
	static const char *names[NPAT] = {"random", "{0,0,0,i}", "{i,0,0,0}", "{0,i,0,0}",
					  "{0,0,i,0}", "{0,0,0,i<<32}", "{i,i,i,i}"};
	cidstore_stats_t st[NPAT];
	for (int p = 0; p < NPAT; p++) {
		cidstore_t *s = open_mem_store(31337, 0, false);
		for (uint64_t i = 0; i < N; i++) {
			cid_t k = pattern_key(p, i), v = mk(120, i);
			ck_assert_msg(cidstore_insert(s, &k, &v) == 1, "%s: insert %" PRIu64,
				      names[p], i);
		}
		for (uint64_t i = 0; i < N; i++) {
			cid_t k = pattern_key(p, i), v = mk(120, i), out[2];
			long c = cidstore_lookup(s, &k, out, 2);
			ck_assert_msg(c == 1 && cid_eq(&out[0], &v), "%s: key %" PRIu64 " lookup %ld",
				      names[p], i, c);
		}
		ck_assert_int_eq(cidstore_stats(s, &st[p]), 0);
		ck_assert_int_eq(st[p].keys, N);
		ck_assert_int_eq(st[p].values, N);
		fprintf(stderr, "test_sequential_keys: %-14s buckets %" PRIu64
			" global_depth %u max_local_depth %u splits %" PRIu64 "\n",
			names[p], st[p].buckets, st[p].global_depth, st[p].max_local_depth,
			st[p].splits);
		close_store(s);
	}
	for (int p = 1; p < NPAT; p++) {
		ck_assert_msg(st[p].max_local_depth <= st[0].max_local_depth + 2,
			      "%s: max_local_depth %u vs %u for random keys", names[p],
			      st[p].max_local_depth, st[0].max_local_depth);
		ck_assert_msg(st[p].global_depth <= st[0].global_depth + 2,
			      "%s: global_depth %u vs %u for random keys", names[p],
			      st[p].global_depth, st[0].global_depth);
		ck_assert_msg(st[p].buckets * 2 <= st[0].buckets * 3 + 16,
			      "%s: %" PRIu64 " buckets vs %" PRIu64 " for random keys", names[p],
			      st[p].buckets, st[0].buckets);
	}
}
END_TEST

static Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = tcase_create("api");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_options_defaults);
	tcase_add_test(tc, test_open_invalid);
	tcase_add_test(tc, test_set_semantics);
	tcase_add_test(tc, test_promotion_demotion);
	tcase_add_test(tc, test_random_walk_model);
	tcase_add_test(tc, test_many_values_one_key);
	tcase_add_test(tc, test_delete_returns);
	tcase_add_test(tc, test_lookup_cap);
	tcase_add_test(tc, test_many_keys_growth);
	tcase_add_test(tc, test_scan);
	tcase_add_test(tc, test_scan_serialized);
	tcase_add_loop_test(tc, test_null_args, 0, 2);
	tcase_add_test(tc, test_strerror);
	tcase_add_loop_test(tc, test_apply_in_memory, 0, 2);
	tcase_add_test(tc, test_serialized_and_seeds_identical);
	tcase_add_test(tc, test_two_stores_independent);
	tcase_add_test(tc, test_sequential_keys);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(api_suite());
}
