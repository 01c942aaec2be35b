/*
 * test_retune.c — the options snapshot: cidstore_get_options and
 * cidstore_retune (include/cidstore.h, src/store/options.c).
 *
 * What is checked:
 *   - get_options gives back every field given at open (an in-memory store
 *     says durability NONE; a store with a dir gives its own copy of the
 *     path and its own seed), and retuning with it unchanged is a no-op;
 *   - every "retune: yes" field changes (durability ASYNC <-> SYNC,
 *     sync_interval_ms — the WAL's flusher gets it —, checkpoint_wal_bytes,
 *     maint_interval_ms, maint_budget_pct) and stats/get_options show it;
 *   - every "retune: no" field, a durability change that would create or
 *     drop the log, and an invalid value give CIDSTORE_EINVAL and change
 *     nothing (also when an allowed field changes in the same call); NULL
 *     arguments give EINVAL; a read_only store gives CIDSTORE_ERDONLY;
 *   - under load: 32 writer threads (ASYNC/SYNC) and 2 get_options readers
 *     while the main thread retunes between two option sets A (SYNC) and B
 *     (ASYNC) many times: every get_options result is exactly A or B (or the
 *     options at open), never a mix; every write that started after a
 *     retune to SYNC returned, and returned before the next retune began,
 *     is durable when it returns (ASYNC writes, with a 1 s sync interval,
 *     mostly are not: the check can tell them apart).  Under TSan this is
 *     also the check that a snapshot is never freed while read.
 */
#include <cidstore.h>
#include "unit_support.h"
#include "log/wal.h"
#include "store/store_internal.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tdir[256];
static char spath[300];

static void setup(void)
{
	tmpdir_make(tdir, sizeof(tdir), "cidstore-retune");
	snprintf(spath, sizeof(spath), "%s/store", tdir);
}

static void teardown(void)
{
	tmpdir_remove(tdir);
}

static cidstore_t *open_dir(cidstore_durability_t d, bool read_only)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = spath;
	o.durability = d;
	o.read_only = read_only;
	o.segment_bytes = 1 << 20;
	cidstore_t *s = NULL;
	int rc = cidstore_open(&o, &s);
	ck_assert_msg(rc == 0, "open %s: %d (%s)", spath, rc, cidstore_strerror(rc));
	return s;
}

/* Every field equal (dir as a string). */
static bool same_options(const cidstore_options_t *a, const cidstore_options_t *b)
{
	bool dir_same = (!a->dir && !b->dir) || (a->dir && b->dir && strcmp(a->dir, b->dir) == 0);
	return dir_same && a->durability == b->durability && a->serialized == b->serialized &&
	       a->seed == b->seed && a->ring_records == b->ring_records &&
	       a->sync_interval_ms == b->sync_interval_ms &&
	       a->checkpoint_wal_bytes == b->checkpoint_wal_bytes &&
	       a->segment_bytes == b->segment_bytes && a->recovery_threads == b->recovery_threads &&
	       a->initial_depth == b->initial_depth && a->expected_keys == b->expected_keys &&
	       a->read_only == b->read_only && a->create_if_missing == b->create_if_missing &&
	       a->maint_interval_ms == b->maint_interval_ms &&
	       a->maint_budget_pct == b->maint_budget_pct;
}

static cidstore_options_t get(cidstore_t *s)
{
	cidstore_options_t o;
	memset(&o, 0xAB, sizeof(o));
	ck_assert_int_eq(cidstore_get_options(s, &o), 0);
	return o;
}

/* ---------------------------------------------------------------------- */

START_TEST(get_options_round_trip_memory)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.serialized = true;
	o.seed = 42;
	o.ring_records = 128;
	o.sync_interval_ms = 7;
	o.checkpoint_wal_bytes = 1234;
	o.segment_bytes = 8192;
	o.recovery_threads = 3;
	o.initial_depth = 4;
	o.expected_keys = 1000;
	o.maint_interval_ms = 77;
	o.maint_budget_pct = 33;
	cidstore_t *s = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	cidstore_options_t g = get(s);
	ck_assert_ptr_null(g.dir);
	ck_assert_int_eq(g.durability, CIDSTORE_DURABILITY_NONE);
	ck_assert_msg(g.serialized && g.seed == 42 && g.ring_records == 128 &&
			      g.sync_interval_ms == 7 && g.checkpoint_wal_bytes == 1234 &&
			      g.segment_bytes == 8192 && g.recovery_threads == 3 &&
			      g.initial_depth == 4 && g.expected_keys == 1000 &&
			      g.maint_interval_ms == 77 && g.maint_budget_pct == 33 && !g.read_only &&
			      g.create_if_missing,
		      "get_options differs from what open was given");
	/* retune with what get_options gave: nothing changes */
	ck_assert_int_eq(cidstore_retune(s, &g), 0);
	cidstore_options_t g2 = get(s);
	ck_assert(same_options(&g, &g2));
	/* maintenance settings change on an in-memory store too */
	g.maint_interval_ms = 5;
	g.maint_budget_pct = 0; /* the default */
	ck_assert_int_eq(cidstore_retune(s, &g), 0);
	g2 = get(s);
	ck_assert_uint_eq(g2.maint_interval_ms, 5);
	ck_assert_uint_eq(g2.maint_budget_pct, 10);
	close_store(s);
}
END_TEST

START_TEST(get_options_round_trip_dir)
{
	char given[sizeof(spath)];
	snprintf(given, sizeof(given), "%s", spath);
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = given;
	o.durability = CIDSTORE_DURABILITY_ASYNC;
	o.seed = 0; /* the store picks its own */
	cidstore_t *s = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	memset(given, 'x', sizeof(given) - 1); /* the store keeps its own copy */
	cidstore_options_t g = get(s);
	ck_assert_ptr_nonnull(g.dir);
	ck_assert_ptr_ne(g.dir, given);
	ck_assert_str_eq(g.dir, spath);
	ck_assert_int_eq(g.durability, CIDSTORE_DURABILITY_ASYNC);
	ck_assert_msg(g.seed != 0, "the store's own seed is not reported");
	ck_assert_uint_eq(g.maint_budget_pct, o.maint_budget_pct);
	/* the same dir in another buffer is the same dir */
	char other[sizeof(spath)];
	snprintf(other, sizeof(other), "%s", spath);
	g.dir = other;
	ck_assert_int_eq(cidstore_retune(s, &g), 0);
	uint64_t seed = g.seed;
	close_store(s);
	/* reopened with seed 0: still the store's seed (META) */
	s = open_dir(CIDSTORE_DURABILITY_SYNC, false);
	g = get(s);
	ck_assert_uint_eq(g.seed, seed);
	close_store(s);
}
END_TEST

START_TEST(retune_allowed_fields)
{
	cidstore_t *s = open_dir(CIDSTORE_DURABILITY_ASYNC, false);
	cidstore_options_t o = get(s);
	ck_assert_uint_eq(wal_sync_interval(s->wal), o.sync_interval_ms);
	o.durability = CIDSTORE_DURABILITY_SYNC;
	o.sync_interval_ms = 3;
	o.checkpoint_wal_bytes = 5000;
	o.maint_interval_ms = 5;
	o.maint_budget_pct = 50;
	ck_assert_int_eq(cidstore_retune(s, &o), 0);
	cidstore_options_t g = get(s);
	ck_assert(same_options(&o, &g));
	ck_assert_uint_eq(wal_sync_interval(s->wal), 3);
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_int_eq(st.durability, CIDSTORE_DURABILITY_SYNC);
	/* a SYNC write now returns durable */
	cid_t k = mk(1, 1), v = mk(2, 1);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_uint_eq(st.wal_durable_lsn, st.wal_lsn);
	/* and back; sync_interval_ms 0 is the WAL's default, 10 */
	o.durability = CIDSTORE_DURABILITY_ASYNC;
	o.sync_interval_ms = 0;
	o.checkpoint_wal_bytes = 0;
	ck_assert_int_eq(cidstore_retune(s, &o), 0);
	ck_assert_uint_eq(wal_sync_interval(s->wal), 10);
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_int_eq(st.durability, CIDSTORE_DURABILITY_ASYNC);
	g = get(s);
	ck_assert_uint_eq(g.checkpoint_wal_bytes, 0);
	close_store(s);
}
END_TEST

/* Applies mutation i (a "retune: no" field or a forbidden value) to o;
 * false when there is no mutation i. */
static bool mutate(cidstore_options_t *o, int i, const char **what)
{
	static char other_dir[] = "/tmp/some-other-store";
	switch (i) {
	case 0: o->dir = other_dir; *what = "dir"; return true;
	case 1: o->dir = NULL; *what = "dir NULL"; return true;
	case 2: o->serialized = !o->serialized; *what = "serialized"; return true;
	case 3: o->seed += 1; *what = "seed"; return true;
	case 4: o->ring_records *= 2; *what = "ring_records"; return true;
	case 5: o->segment_bytes *= 2; *what = "segment_bytes"; return true;
	case 6: o->recovery_threads += 1; *what = "recovery_threads"; return true;
	case 7: o->initial_depth += 1; *what = "initial_depth"; return true;
	case 8: o->expected_keys += 1; *what = "expected_keys"; return true;
	case 9: o->read_only = !o->read_only; *what = "read_only"; return true;
	case 10: o->create_if_missing = !o->create_if_missing; *what = "create_if_missing"; return true;
	case 11: o->durability = CIDSTORE_DURABILITY_NONE; *what = "durability NONE"; return true;
	case 12: o->durability = (cidstore_durability_t)7; *what = "durability 7"; return true;
	case 13: o->maint_budget_pct = 101; *what = "maint_budget_pct 101"; return true;
	case 14: o->ring_records = 100; *what = "ring_records not a power of 2"; return true;
	}
	return false;
}

START_TEST(retune_forbidden_fields)
{
	cidstore_t *s = open_dir(CIDSTORE_DURABILITY_ASYNC, false);
	cidstore_options_t before = get(s);
	const char *what = "";
	for (int i = 0;; i++) {
		for (int with_allowed = 0; with_allowed < 2; with_allowed++) {
			cidstore_options_t o = before;
			if (!mutate(&o, i, &what))
				goto done;
			if (with_allowed) { /* an allowed change in the same call */
				o.sync_interval_ms = 1;
				o.maint_interval_ms = 1;
				if (i != 11 && i != 12)
					o.durability = CIDSTORE_DURABILITY_SYNC;
			}
			int rc = cidstore_retune(s, &o);
			ck_assert_msg(rc == CIDSTORE_EINVAL, "retune of %s%s: %d, not EINVAL", what,
				      with_allowed ? " (with allowed changes)" : "", rc);
			cidstore_options_t after = get(s);
			ck_assert_msg(same_options(&before, &after), "a refused retune of %s changed the options",
				      what);
			ck_assert_uint_eq(wal_sync_interval(s->wal), before.sync_interval_ms);
		}
	}
done:
	ck_assert_int_eq(cidstore_retune(NULL, &before), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_retune(s, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_get_options(NULL, &before), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_get_options(s, NULL), CIDSTORE_EINVAL);
	close_store(s);

	/* a store with a dir but no log (NONE): no durability change */
	s = open_dir(CIDSTORE_DURABILITY_NONE, false);
	cidstore_options_t o = get(s);
	ck_assert_int_eq(o.durability, CIDSTORE_DURABILITY_NONE);
	o.durability = CIDSTORE_DURABILITY_ASYNC;
	ck_assert_int_eq(cidstore_retune(s, &o), CIDSTORE_EINVAL);
	ck_assert_int_eq(get(s).durability, CIDSTORE_DURABILITY_NONE);
	close_store(s);

	/* in memory: durability stays NONE */
	s = open_mem_store(5, 0, false);
	o = get(s);
	o.durability = CIDSTORE_DURABILITY_SYNC;
	ck_assert_int_eq(cidstore_retune(s, &o), CIDSTORE_EINVAL);
	o.durability = CIDSTORE_DURABILITY_NONE;
	o.dir = spath;
	ck_assert_int_eq(cidstore_retune(s, &o), CIDSTORE_EINVAL);
	close_store(s);

	/* read_only: ERDONLY, even for an unchanged snapshot */
	s = open_dir(CIDSTORE_DURABILITY_SYNC, true);
	o = get(s);
	ck_assert(o.read_only);
	ck_assert_int_eq(cidstore_retune(s, &o), CIDSTORE_ERDONLY);
	close_store(s);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* under load                                                              */
/* ---------------------------------------------------------------------- */

#define LOAD_WRITERS 32
#define LOAD_READERS 2

static cidstore_options_t opt_a, opt_b, opt_open;
static _Atomic uint64_t gen;  /* odd while a retune runs */
static _Atomic int mode;      /* durability since the last retune returned */
static _Atomic bool stop;
static _Atomic uint64_t sync_checked, async_undurable, writes_total;

struct lw {
	cidstore_t *s;
	unsigned t;
};

static uint64_t durable_lsn(cidstore_t *s)
{
	struct wal_stats ws;
	wal_stats(s->wal, &ws);
	return ws.durable_lsn;
}

static void *load_writer(void *p)
{
	struct lw *a = p;
	cidstore_t *s = a->s;
	uint64_t i = 0, checked = 0, undurable = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed) && !failed_already()) {
		uint64_t g0 = atomic_load_explicit(&gen, memory_order_acquire);
		int m = atomic_load_explicit(&mode, memory_order_acquire);
		uint64_t l0 = wal_next_lsn(s->wal) - 1;
		cid_t k = mk(100 + a->t, i % 64), v = mk(200 + a->t, i);
		long r = (i % 4 == 3) ? cidstore_delete_value(s, &k, &v) : cidstore_insert(s, &k, &v);
		if (r < 0) {
			tfail("writer %u: write %llu: %ld (%s)", a->t, (unsigned long long)i, r,
			      cidstore_strerror((int)r));
			break;
		}
		uint64_t d = durable_lsn(s);
		uint64_t g1 = atomic_load_explicit(&gen, memory_order_acquire);
		if (g0 == g1 && !(g0 & 1)) {
			/* no retune began during the write: it ran under mode */
			if (m == CIDSTORE_DURABILITY_SYNC) {
				checked++;
				if (d < l0 + (r > 0))
					tfail("writer %u: a write under SYNC returned with durable LSN %llu "
					      "< %llu",
					      a->t, (unsigned long long)d,
					      (unsigned long long)(l0 + (r > 0)));
			} else if (d < l0 + (r > 0)) {
				undurable++;
			}
		}
		i++;
	}
	atomic_fetch_add(&sync_checked, checked);
	atomic_fetch_add(&async_undurable, undurable);
	atomic_fetch_add(&writes_total, i);
	return NULL;
}

static void *load_reader(void *p)
{
	cidstore_t *s = p;
	uint64_t n = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed) && !failed_already()) {
		cidstore_options_t g;
		memset(&g, 0, sizeof(g));
		if (cidstore_get_options(s, &g) != 0) {
			tfail("get_options failed");
			break;
		}
		if (!same_options(&g, &opt_a) && !same_options(&g, &opt_b) &&
		    !same_options(&g, &opt_open))
			tfail("get_options gave a mix: durability %d interval %u ckpt %llu maint %u/%u",
			      g.durability, g.sync_interval_ms, (unsigned long long)g.checkpoint_wal_bytes,
			      g.maint_interval_ms, g.maint_budget_pct);
		n++;
	}
	return NULL;
}

START_TEST(retune_under_load)
{
	reset_failures();
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = spath;
	o.durability = CIDSTORE_DURABILITY_ASYNC;
	o.sync_interval_ms = 1000;   /* ASYNC writes stay undurable for a while */
	o.checkpoint_wal_bytes = 0;  /* no checkpoint syncs the log meanwhile */
	o.segment_bytes = 4 << 20;
	o.maint_interval_ms = 0;
	cidstore_t *s = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	memset(&opt_open, 0, sizeof(opt_open));
	opt_open = get(s);
	opt_a = opt_open;
	opt_a.durability = CIDSTORE_DURABILITY_SYNC;
	opt_a.sync_interval_ms = 999;
	opt_a.checkpoint_wal_bytes = 0;
	opt_a.maint_interval_ms = 0;
	opt_a.maint_budget_pct = 11;
	opt_b = opt_open;
	opt_b.durability = CIDSTORE_DURABILITY_ASYNC;
	opt_b.sync_interval_ms = 1000;
	opt_b.checkpoint_wal_bytes = 0;
	opt_b.maint_interval_ms = 0;
	opt_b.maint_budget_pct = 22;
	atomic_store(&gen, 0);
	atomic_store(&mode, CIDSTORE_DURABILITY_ASYNC);
	atomic_store(&stop, false);
	atomic_store(&sync_checked, 0);
	atomic_store(&async_undurable, 0);
	atomic_store(&writes_total, 0);
	pthread_t w[LOAD_WRITERS], r[LOAD_READERS];
	struct lw a[LOAD_WRITERS];
	for (unsigned t = 0; t < LOAD_WRITERS; t++) {
		a[t] = (struct lw){s, t};
		spawn(&w[t], load_writer, &a[t]);
	}
	for (unsigned t = 0; t < LOAD_READERS; t++)
		spawn(&r[t], load_reader, s);
	unsigned rounds = SZ(40, 16);
	for (unsigned i = 0; i < rounds && !failed_already(); i++) {
		const cidstore_options_t *n = (i % 2 == 0) ? &opt_a : &opt_b;
		atomic_fetch_add_explicit(&gen, 1, memory_order_acq_rel); /* odd: retuning */
		int rc = cidstore_retune(s, n);
		if (rc) {
			tfail("retune %u: %d", i, rc);
			break;
		}
		atomic_store_explicit(&mode, n->durability, memory_order_release);
		atomic_fetch_add_explicit(&gen, 1, memory_order_acq_rel); /* even: settled */
		sleep_ms(i % 2 == 0 ? 30 : 15);
	}
	atomic_store(&stop, true);
	for (unsigned t = 0; t < LOAD_WRITERS; t++)
		pthread_join(w[t], NULL);
	for (unsigned t = 0; t < LOAD_READERS; t++)
		pthread_join(r[t], NULL);
	assert_no_failures("retune_under_load");
	fprintf(stderr,
		"retune_under_load: %u retunes, %llu writes, %llu checked durable under SYNC, "
		"%llu returned undurable under ASYNC\n",
		rounds, (unsigned long long)atomic_load(&writes_total),
		(unsigned long long)atomic_load(&sync_checked),
		(unsigned long long)atomic_load(&async_undurable));
	ck_assert_msg(atomic_load(&sync_checked) > 0, "no write was checked under SYNC");
	close_store(s);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("retune");
	TCase *tc = tcase_create("retune");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, get_options_round_trip_memory);
	tcase_add_test(tc, get_options_round_trip_dir);
	tcase_add_test(tc, retune_allowed_fields);
	tcase_add_test(tc, retune_forbidden_fields);
	tcase_add_test(tc, retune_under_load);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
