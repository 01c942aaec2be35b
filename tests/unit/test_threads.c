/*
 * test_threads.c — thread churn and parked threads (release and TSan).
 *
 * The contract (DESIGN.md §5, include/cidstore.h): threads need no
 * registration call, a thread that exits leaks nothing, and a thread parked
 * outside the library never blocks reclamation forever; garbage stays
 * bounded.
 *
 *   thread_churn   thousands of short-lived threads (waves of concurrent
 *                  threads, each doing a few checked operations and
 *                  exiting).  After the last wave, compared with after the
 *                  first: RSS grew by at most a generous bound,
 *                  stats.epoch_records does not grow with the number of
 *                  threads that ever ran, the index memory and epoch garbage
 *                  stay bounded, and the store holds exactly what it should.
 *   parked_thread  one thread uses the store, then sleeps (outside the
 *                  library) for seconds while two threads churn inserts and
 *                  deletes on keys that cross the inline/value-set boundary;
 *                  stats.retired_pending stays bounded and does not grow with
 *                  time.  The peak is printed.
 *
 * Sizes: release by default, small under CIDSTORE_TSAN; the environment
 * variable CIDSTORE_TEST_SCALE multiplies them.  Worker threads record
 * failures with tfail(); only the test's thread asserts.
 */
#include <cidstore.h>
#include "unit_support.h"
#include <check.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* sm64, mk, cid_eq, scaled, scale_factor, tfail / reset_failures /
 * assert_no_failures, open_mem_store, now_s, sleep_ms: unit_support.h */

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;
	if (f) {
		if (fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ---------------------------------------------------------------------- */
/* 1. thousands of short-lived threads                                     */
/* ---------------------------------------------------------------------- */

enum { C_KTAG = 0x7000, C_VTAG = 0x7100, C_HOT = 8, C_HOTTAG = 0x7200, C_PERSIST = 1000 };

struct churn {
	cidstore_t *s;
	pthread_barrier_t wave; /* all threads of a wave are alive and registered at once */
};

struct churn_arg {
	struct churn *c;
	uint64_t id; /* unique over the whole test */
};

/* A few operations, every result predicted, and nothing left behind:
 * its own key (1..4 values, so some spill), one owned value on a shared hot
 * key, a lookup of the persistent keys. */
static void *short_lived(void *p)
{
	struct churn_arg *a = p;
	cidstore_t *s = a->c->s;
	uint64_t id = a->id;
	cid_t k = mk(C_KTAG, id), vals[4];
	unsigned nv = (unsigned)(id % 4) + 1;
	for (unsigned j = 0; j < nv; j++) {
		vals[j] = mk(C_VTAG, id * 4 + j);
		int rc = cidstore_insert(s, &k, &vals[j]);
		if (rc != 1)
			tfail("thread %" PRIu64 ": insert returned %d", id, rc);
	}
	pthread_barrier_wait(&a->c->wave);
	cid_t out[8];
	long c = cidstore_lookup(s, &k, out, 8);
	if (c != (long)nv)
		tfail("thread %" PRIu64 ": lookup of own key %ld, expected %u", id, c, nv);
	for (long i = 0; i < c && i < 8; i++) {
		bool ok = false;
		for (unsigned j = 0; j < nv; j++)
			ok |= cid_eq(&out[i], &vals[j]);
		if (!ok)
			tfail("thread %" PRIu64 ": foreign value under own key", id);
	}
	cid_t hk = mk(C_HOTTAG, id % C_HOT), hv = mk(C_VTAG + 1, id);
	if (cidstore_insert(s, &hk, &hv) != 1)
		tfail("thread %" PRIu64 ": insert on hot key failed", id);
	if (cidstore_contains(s, &hk, &hv) != 1)
		tfail("thread %" PRIu64 ": own value on hot key missing", id);
	cid_t pk = mk(C_KTAG + 1, id % C_PERSIST), pv = mk(C_VTAG + 2, id % C_PERSIST);
	if (cidstore_lookup(s, &pk, out, 8) != 1 || !cid_eq(&out[0], &pv))
		tfail("thread %" PRIu64 ": persistent key wrong", id);
	if (cidstore_delete_value(s, &hk, &hv) != 1)
		tfail("thread %" PRIu64 ": delete on hot key failed", id);
	if (id % 2 == 0) {
		long n = cidstore_delete_key(s, &k);
		if (n != (long)nv)
			tfail("thread %" PRIu64 ": delete_key returned %ld, expected %u", id, n, nv);
	} else {
		for (unsigned j = 0; j < nv; j++)
			if (cidstore_delete_value(s, &k, &vals[j]) != 1)
				tfail("thread %" PRIu64 ": delete_value failed", id);
	}
	if (cidstore_lookup(s, &k, NULL, 0) != 0)
		tfail("thread %" PRIu64 ": own key still present after deleting it", id);
	return NULL; /* exits without any unregister call */
}

START_TEST(test_thread_churn)
{
	reset_failures();
	struct churn c;
	memset(&c, 0, sizeof c);
	c.s = open_mem_store(0x61, 0, false);
	const size_t per_wave = scaled(50, 25) < 64 ? scaled(50, 25) : 64;
	pthread_barrier_init(&c.wave, NULL, (unsigned)per_wave);
	const size_t total = scaled(3000, 500);
	const size_t waves = (total + per_wave - 1) / per_wave;
	for (uint64_t i = 0; i < C_PERSIST; i++) {
		cid_t k = mk(C_KTAG + 1, i), v = mk(C_VTAG + 2, i);
		ck_assert_int_eq(cidstore_insert(c.s, &k, &v), 1);
	}
	pthread_t *th = calloc(per_wave, sizeof *th);
	struct churn_arg *args = calloc(per_wave, sizeof *args);
	ck_assert(th && args);
	uint64_t rss_first = 0, next_id = 0, max_records = 0;
	cidstore_stats_t first, st;
	memset(&first, 0, sizeof first);
	double t0 = now_s();
	for (size_t w = 0; w < waves; w++) {
		for (size_t i = 0; i < per_wave; i++) {
			args[i] = (struct churn_arg){&c, next_id++};
			int rc = pthread_create(&th[i], NULL, short_lived, &args[i]);
			ck_assert_msg(rc == 0, "wave %zu: pthread_create %d", w, rc);
		}
		for (size_t i = 0; i < per_wave; i++)
			pthread_join(th[i], NULL);
		ck_assert_int_eq(cidstore_stats(c.s, &st), 0);
		if (st.epoch_records > max_records)
			max_records = st.epoch_records;
		if (w == 0) {
			first = st;
			rss_first = rss_bytes();
		}
	}
	double t1 = now_s();
	uint64_t rss_last = rss_bytes();
	assert_no_failures("thread_churn");
	fprintf(stderr, "thread_churn: %" PRIu64 " threads in %zu waves of %zu, %.2f s; "
		"epoch_records first %" PRIu64 " last %" PRIu64 " max %" PRIu64 "; "
		"RSS first %.1f MiB last %.1f MiB; memory_bytes first %" PRIu64 " last %" PRIu64
		"; retired_pending last %" PRIu64 "\n",
		next_id, waves, per_wave, t1 - t0, first.epoch_records, st.epoch_records,
		max_records, rss_first / 1048576.0, rss_last / 1048576.0, first.memory_bytes,
		st.memory_bytes, st.retired_pending);

	/* the store holds exactly the persistent keys */
	ck_assert_msg(st.keys == C_PERSIST && st.values == C_PERSIST,
		      "after churn: keys %" PRIu64 " values %" PRIu64 ", expected %d", st.keys,
		      st.values, C_PERSIST);
	for (uint64_t h = 0; h < C_HOT; h++) {
		cid_t hk = mk(C_HOTTAG, h);
		ck_assert_int_eq(cidstore_lookup(c.s, &hk, NULL, 0), 0);
	}
	/* epoch records: bounded by the threads alive at once, not by the
	 * number that ever ran */
	ck_assert_msg(max_records <= 2 * per_wave + 16,
		      "epoch_records reached %" PRIu64 " with at most %zu threads alive at once "
		      "(%" PRIu64 " threads ran)", max_records, per_wave + 1, next_id);
	ck_assert_msg(st.epoch_records <= first.epoch_records + per_wave,
		      "epoch_records grew from %" PRIu64 " after the first wave to %" PRIu64
		      " after %zu waves", first.epoch_records, st.epoch_records, waves);
	/* index memory and garbage: no growth with the number of threads */
	ck_assert_msg(st.memory_bytes <= 4 * first.memory_bytes + (4u << 20),
		      "memory_bytes grew from %" PRIu64 " to %" PRIu64, first.memory_bytes,
		      st.memory_bytes);
	ck_assert_msg(st.retired_pending <= 100000, "retired_pending %" PRIu64 " after churn",
		      st.retired_pending);
	/* RSS: generous (thread stacks, allocator caches, sanitizer state) */
#ifdef CIDSTORE_TSAN
	const uint64_t rss_bound = 512ull << 20;
#else
	const uint64_t rss_bound = 64ull << 20;
#endif
	ck_assert_msg(rss_last <= rss_first + rss_bound,
		      "RSS grew from %.1f MiB after the first wave to %.1f MiB after %zu waves",
		      rss_first / 1048576.0, rss_last / 1048576.0, waves);
	free(th);
	free(args);
	pthread_barrier_destroy(&c.wave);
	ck_assert_int_eq(cidstore_close(c.s), 0);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* 2. one parked thread, others churning                                   */
/* ---------------------------------------------------------------------- */

enum { P_CHURNERS = 2, P_KEYS_PER = 8, P_KTAG = 0x8000, P_VTAG = 0x8100, P_VALS = 5 };

struct park {
	cidstore_t *s;
	unsigned park_ms;
	atomic_int parked;   /* 1 while the parked thread sleeps, 2 after */
	atomic_bool stop;
	atomic_ulong ops;
};

static void *parked_thread(void *p)
{
	struct park *x = p;
	cid_t k = mk(P_KTAG + 9, 0), v = mk(P_VTAG + 9, 0), out[2];
	/* use the store (so this thread owns an epoch record) ... */
	if (cidstore_insert(x->s, &k, &v) != 1)
		tfail("parked thread: insert failed");
	if (cidstore_lookup(x->s, &k, out, 2) != 1)
		tfail("parked thread: lookup failed");
	atomic_store(&x->parked, 1);
	/* ... then sleep outside the library */
	sleep_ms(x->park_ms);
	atomic_store(&x->parked, 2);
	if (cidstore_lookup(x->s, &k, out, 2) != 1 || !cid_eq(&out[0], &v))
		tfail("parked thread: its key changed while it slept");
	if (cidstore_delete_key(x->s, &k) != 1)
		tfail("parked thread: delete_key failed");
	return NULL;
}

struct park_arg {
	struct park *x;
	unsigned id;
};

/* Owned keys, values v0..v4: the count moves across 2 <-> 3 constantly;
 * every result is predicted. */
static void *park_churner(void *p)
{
	struct park_arg *a = p;
	struct park *x = a->x;
	unsigned char st[P_KEYS_PER] = {0};
	uint64_t r = 0x9000 + a->id;
	unsigned long ops = 0;
	while (!atomic_load_explicit(&x->stop, memory_order_acquire)) {
		r = sm64(r);
		unsigned k = (unsigned)(r % P_KEYS_PER), j = (unsigned)((r >> 8) % P_VALS);
		cid_t key = mk(P_KTAG + a->id, k), v = mk(P_VTAG + a->id, k * 8 + j);
		if ((r >> 32) % 64 == 0) {
			long want = __builtin_popcount(st[k]);
			long n = cidstore_delete_key(x->s, &key);
			if (n != want)
				tfail("churner %u: delete_key %ld, expected %ld", a->id, n, want);
			st[k] = 0;
		} else if (st[k] >> j & 1) {
			if (cidstore_delete_value(x->s, &key, &v) != 1)
				tfail("churner %u: delete_value of present value failed", a->id);
			st[k] &= (unsigned char)~(1u << j);
		} else {
			if (cidstore_insert(x->s, &key, &v) != 1)
				tfail("churner %u: insert of absent value failed", a->id);
			st[k] |= (unsigned char)(1u << j);
		}
		long c = cidstore_lookup(x->s, &key, NULL, 0);
		if (c != __builtin_popcount(st[k]))
			tfail("churner %u: lookup count %ld, expected %d", a->id, c,
			      __builtin_popcount(st[k]));
		ops += 2;
	}
	/* leave nothing behind, so the next phase starts from empty keys */
	for (unsigned k = 0; k < P_KEYS_PER; k++) {
		cid_t key = mk(P_KTAG + a->id, k);
		long n = cidstore_delete_key(x->s, &key);
		if (n != __builtin_popcount(st[k]))
			tfail("churner %u: final delete_key %ld, expected %d", a->id, n,
			      __builtin_popcount(st[k]));
	}
	atomic_fetch_add(&x->ops, ops);
	return NULL;
}

struct phase {
	unsigned long ops;
	size_t ns;
	uint64_t peak, q1_avg, q4_avg, after;
};

/* Churns for x->park_ms, sampling stats.retired_pending every 10 ms; with
 * a parked thread (registered, then asleep outside the library) or without
 * one (the baseline). */
static void run_phase(struct park *x, bool with_parked, struct phase *ph)
{
	enum { MAXS = 4096 };
	static uint64_t samp[MAXS];
	pthread_t tp, tc[P_CHURNERS];
	struct park_arg pa[P_CHURNERS];
	atomic_store(&x->parked, 0);
	atomic_store(&x->stop, false);
	atomic_store(&x->ops, 0);
	if (with_parked) {
		ck_assert_int_eq(pthread_create(&tp, NULL, parked_thread, x), 0);
		while (atomic_load(&x->parked) == 0)
			sleep_ms(1);
	}
	for (unsigned i = 0; i < P_CHURNERS; i++) {
		pa[i] = (struct park_arg){x, i};
		ck_assert_int_eq(pthread_create(&tc[i], NULL, park_churner, &pa[i]), 0);
	}
	size_t ns = 0;
	uint64_t peak = 0;
	double t_end = now_s() + x->park_ms / 1000.0;
	while (ns < MAXS && (with_parked ? atomic_load(&x->parked) == 1 : now_s() < t_end)) {
		cidstore_stats_t st;
		ck_assert_int_eq(cidstore_stats(x->s, &st), 0);
		samp[ns++] = st.retired_pending;
		if (st.retired_pending > peak)
			peak = st.retired_pending;
		sleep_ms(10);
	}
	atomic_store_explicit(&x->stop, true, memory_order_release);
	for (unsigned i = 0; i < P_CHURNERS; i++)
		pthread_join(tc[i], NULL);
	if (with_parked)
		pthread_join(tp, NULL);
	uint64_t q1 = 0, q4 = 0, nq = ns / 4 ? ns / 4 : 1;
	for (size_t i = 0; i < nq && i < ns; i++)
		q1 += samp[i];
	for (size_t i = ns > nq ? ns - nq : 0; i < ns; i++)
		q4 += samp[i];
	cidstore_stats_t end;
	ck_assert_int_eq(cidstore_stats(x->s, &end), 0);
	*ph = (struct phase){atomic_load(&x->ops), ns, peak, q1 / nq, q4 / nq, end.retired_pending};
}

START_TEST(test_parked_thread)
{
	reset_failures();
	struct park x;
	memset(&x, 0, sizeof x);
	x.s = open_mem_store(0x62, 0, false);
	x.park_ms = (unsigned)(3000 * (scale_factor() < 1 ? scale_factor() : 1));
	if (x.park_ms < 500)
		x.park_ms = 500;
	/* some resident data so buckets are not trivially small */
	for (uint64_t i = 0; i < 20000; i++) {
		cid_t k = mk(P_KTAG + 100, i), v = mk(P_VTAG + 100, i);
		ck_assert_int_eq(cidstore_insert(x.s, &k, &v), 1);
	}
	struct phase base, park;
	run_phase(&x, false, &base);
	run_phase(&x, true, &park);
	assert_no_failures("parked_thread");
	cidstore_stats_t end;
	ck_assert_int_eq(cidstore_stats(x.s, &end), 0);
	fprintf(stderr, "parked_thread: %u ms per phase; retired_pending (peak / mean of first "
		"quarter / mean of last quarter / after):\n"
		"  baseline, no parked thread: %lu ops, %zu samples: %" PRIu64 " / %" PRIu64
		" / %" PRIu64 " / %" PRIu64 "\n"
		"  one thread parked:          %lu ops, %zu samples: %" PRIu64 " / %" PRIu64
		" / %" PRIu64 " / %" PRIu64 "\n  epoch_records %" PRIu64 "\n",
		x.park_ms, base.ops, base.ns, base.peak, base.q1_avg, base.q4_avg, base.after,
		park.ops, park.ns, park.peak, park.q1_avg, park.q4_avg, park.after,
		end.epoch_records);
	ck_assert_msg(park.ns >= 8, "too few samples (%zu)", park.ns);
	ck_assert_msg(park.ops > 10000, "churners made only %lu operations", park.ops);
	/* bounded: the garbage does not scale with the work done while the
	 * thread is parked (unreclaimed, it would be a large fraction of the
	 * operations) ... */
	ck_assert_msg(park.peak <= park.ops / 16 + 4096,
		      "retired_pending peaked at %" PRIu64 " over %lu operations while a thread "
		      "was parked", park.peak, park.ops);
	/* ... and does not grow over the parked stretch */
	ck_assert_msg(park.q4_avg <= 3 * park.q1_avg + 16384,
		      "retired_pending keeps growing while a thread is parked: mean %" PRIu64
		      " in the first quarter, %" PRIu64 " in the last", park.q1_avg, park.q4_avg);
	for (uint64_t i = 0; i < 20000; i++) {
		cid_t k = mk(P_KTAG + 100, i), v = mk(P_VTAG + 100, i);
		ck_assert_int_eq(cidstore_contains(x.s, &k, &v), 1);
	}
	ck_assert_int_eq(cidstore_close(x.s), 0);
}
END_TEST

static Suite *threads_suite(void)
{
	Suite *s = suite_create("threads");
	TCase *tc = tcase_create("threads");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_thread_churn);
	tcase_add_test(tc, test_parked_thread);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(threads_suite());
}
