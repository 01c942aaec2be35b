/*
 * test_metrics.c — the store's metrics (store/metrics.c, prometheus.c):
 *   - the bucket layout of util/lathist.h (every bound in its bucket, the
 *     next nanosecond in the next one);
 *   - exact counts by call, result and error code after a known
 *     single-threaded workload, batch items, histogram counts equal to the
 *     number of sampled calls (1 in MT_SAMPLE_EVERY of each kind),
 *     cumulative buckets;
 *   - durable stores: every SYNC commit timed, WAL lag / ring / group
 *     commit / fdatasync figures consistent with the LSNs, checkpoints,
 *     recovery at reopen; ASYNC: no SYNC commit; an fdatasync failure
 *     counted as EIO with the failed gauge; ERDONLY of a read_only store;
 *   - the buffer contract: the length needed, NUL termination, cap 0 with
 *     a NULL buffer, bad arguments;
 *   - metrics off: nothing recorded, the gauges still there;
 *   - concurrency (run under TSan): threads churning while a reader merges
 *     (totals never go down, exact at the end, blocks reused: no more
 *     blocks than threads alive at once); threads using two stores, one
 *     closed and replaced meanwhile; threads exiting while the store
 *     closes.
 */
#include "metrics_support.h"

#include "util/lathist.h"

#define TAG 0x6d657472ull

/* ------------------------------------------------------------------ */
/* bucket layout                                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_lathist_layout)
{
	ck_assert_uint_eq(lh_bucket(0), 0);
	ck_assert_uint_eq(lh_bucket(1), 0);
	ck_assert_uint_eq(lh_bucket(64), 0);
	ck_assert_uint_eq(lh_upper_ns(0), 64);
	ck_assert_uint_eq(lh_upper_ns(1), 80);
	ck_assert_uint_eq(lh_upper_ns(4), 128);
	ck_assert_uint_eq(lh_upper_ns(LH_FINITE - 1), 1ull << LH_MAX_SHIFT);
	uint64_t prev = 0;
	for (unsigned i = 0; i < LH_FINITE; i++) {
		uint64_t u = lh_upper_ns(i);
		ck_assert_msg(u > prev, "bounds grow: %u", i);
		/* at most 25 % apart (4 buckets per power of two) */
		ck_assert_msg(i == 0 || (u - prev) * 4 <= prev, "bucket %u too wide", i);
		ck_assert_msg(lh_bucket(u) == i, "bound %llu in bucket %u, not %u",
			      (unsigned long long)u, lh_bucket(u), i);
		ck_assert_msg(lh_bucket(u + 1) == i + 1, "bound+1 of %u", i);
		prev = u;
	}
	ck_assert_uint_eq(lh_bucket(UINT64_MAX), LH_FINITE);
	/* ~30 s is covered by a finite bucket */
	ck_assert_uint_lt(lh_bucket(30ull * 1000000000ull), LH_FINITE);
}
END_TEST

/* ------------------------------------------------------------------ */
/* histogram text                                                      */
/* ------------------------------------------------------------------ */

/* Checks one histogram's samples (series: its name with `{` and the
 * labels before le, e.g. `x_bucket{op="lookup",`): cumulative buckets,
 * +Inf == _count; returns the count. */
static uint64_t hist_check(const char *text, const char *name, const char *labels)
{
	char series[256];
	const char *sep = labels[0] ? "," : "";
	uint64_t prev = 0;
	for (unsigned i = 0; i < LH_FINITE; i++) {
		uint64_t ns = lh_upper_ns(i);
		char le[40];
		uint64_t frac = ns % 1000000000ull;
		int len = frac ? snprintf(le, sizeof le, "%llu.%09llu",
					  (unsigned long long)(ns / 1000000000ull),
					  (unsigned long long)frac)
			       : snprintf(le, sizeof le, "%llu",
					  (unsigned long long)(ns / 1000000000ull));
		while (frac && le[len - 1] == '0')
			le[--len] = '\0';
		snprintf(series, sizeof series, "%s_bucket{%s%sle=\"%s\"}", name, labels, sep, le);
		uint64_t c = (uint64_t)sample(text, series);
		ck_assert_msg(c >= prev, "%s: buckets not cumulative", series);
		prev = c;
	}
	snprintf(series, sizeof series, "%s_bucket{%s%sle=\"+Inf\"}", name, labels, sep);
	uint64_t inf = (uint64_t)sample(text, series);
	ck_assert_uint_ge(inf, prev);
	if (labels[0])
		snprintf(series, sizeof series, "%s_count{%s}", name, labels);
	else
		snprintf(series, sizeof series, "%s_count", name);
	ck_assert_uint_eq((uint64_t)sample(text, series), inf);
	return inf;
}

/* ------------------------------------------------------------------ */
/* exact counts, single thread                                         */
/* ------------------------------------------------------------------ */

static int count_values(const cid_t *v, size_t n, void *ctx)
{
	(void)v;
	*(size_t *)ctx += n;
	return 0;
}

static int count_keys(const cid_t *k, const cid_t *v, size_t n, void *ctx)
{
	(void)k;
	(void)v;
	(void)n;
	++*(size_t *)ctx;
	return 0;
}

/* Runs the known workload from a fresh thread (its own block, sample
 * counter at its start). */
static void *known_workload(void *arg)
{
	cidstore_t *s = arg;
	cid_t out[4];
	/* 1000 added, 100 exists, 1 EINVAL: 1101 timed inserts */
	for (uint64_t i = 0; i < 1000; i++) {
		cid_t k = mk(TAG, i % 500), v = mk(TAG + 1, i);
		if (cidstore_insert(s, &k, &v) != 1)
			tfail("insert %llu", (unsigned long long)i);
	}
	for (uint64_t i = 0; i < 100; i++) {
		cid_t k = mk(TAG, i % 500), v = mk(TAG + 1, i);
		if (cidstore_insert(s, &k, &v) != 0)
			tfail("re-insert %llu", (unsigned long long)i);
	}
	cid_t k0 = mk(TAG, 0), v0 = mk(TAG + 1, 0);
	if (cidstore_insert(s, NULL, &v0) != CIDSTORE_EINVAL)
		tfail("insert NULL key");
	/* 500 hits, 200 misses, 1 EINVAL: 701 timed lookups */
	for (uint64_t i = 0; i < 500; i++) {
		cid_t k = mk(TAG, i);
		if (cidstore_lookup(s, &k, out, 4) != 2)
			tfail("lookup %llu", (unsigned long long)i);
	}
	for (uint64_t i = 0; i < 200; i++) {
		cid_t k = mk(TAG + 9, i);
		if (cidstore_lookup(s, &k, out, 4) != 0)
			tfail("miss %llu", (unsigned long long)i);
	}
	if (cidstore_lookup(s, &k0, NULL, 1) != CIDSTORE_EINVAL)
		tfail("lookup NULL out");
	/* contains: 10 hit, 5 miss */
	for (uint64_t i = 0; i < 10; i++) {
		cid_t k = mk(TAG, i), v = mk(TAG + 1, i);
		if (cidstore_contains(s, &k, &v) != 1)
			tfail("contains");
	}
	for (uint64_t i = 0; i < 5; i++) {
		cid_t k = mk(TAG, i), v = mk(TAG + 2, i);
		if (cidstore_contains(s, &k, &v) != 0)
			tfail("contains miss");
	}
	/* delete_value: 50 removed (keys 100..149 keep one value), 7 absent */
	for (uint64_t i = 100; i < 150; i++) {
		cid_t k = mk(TAG, i), v = mk(TAG + 1, i);
		if (cidstore_delete_value(s, &k, &v) != 1)
			tfail("delete_value");
	}
	for (uint64_t i = 0; i < 7; i++) {
		cid_t k = mk(TAG, i), v = mk(TAG + 2, i);
		if (cidstore_delete_value(s, &k, &v) != 0)
			tfail("delete_value absent");
	}
	/* delete_key: 20 removed (keys 200..219, 2 values each), 3 absent */
	for (uint64_t i = 200; i < 220; i++) {
		cid_t k = mk(TAG, i);
		if (cidstore_delete_key(s, &k) != 2)
			tfail("delete_key");
	}
	for (uint64_t i = 0; i < 3; i++) {
		cid_t k = mk(TAG + 9, i);
		if (cidstore_delete_key(s, &k) != 0)
			tfail("delete_key absent");
	}
	/* values: 4 hit, 2 miss */
	size_t nv = 0;
	for (uint64_t i = 0; i < 4; i++) {
		cid_t k = mk(TAG, i);
		if (cidstore_values(s, &k, count_values, &nv) != 2)
			tfail("values");
	}
	for (uint64_t i = 0; i < 2; i++) {
		cid_t k = mk(TAG + 9, i);
		if (cidstore_values(s, &k, count_values, &nv) != 0)
			tfail("values miss");
	}
	/* lookup_many: one call of 16 keys */
	cid_t keys[16], vals[10];
	long counts[16];
	for (int i = 0; i < 16; i++)
		keys[i] = mk(TAG, (uint64_t)i);
	if (cidstore_lookup_many(s, keys, 16, NULL, 0, counts) != 0)
		tfail("lookup_many");
	/* insert_many: 10 pairs, 6 new (keys 600..605), 4 there */
	for (int i = 0; i < 10; i++) {
		keys[i] = i < 6 ? mk(TAG, 600 + (uint64_t)i) : mk(TAG, (uint64_t)i);
		vals[i] = i < 6 ? mk(TAG + 1, 600 + (uint64_t)i) : mk(TAG + 1, (uint64_t)i);
	}
	if (cidstore_insert_many(s, keys, vals, 10, NULL) != 6)
		tfail("insert_many");
	/* apply: 5 operations, 3 change; then a bad opcode (EINVAL) */
	cidstore_op_t ops[5] = {
		{CIDSTORE_OP_INSERT, mk(TAG, 700), mk(TAG + 1, 700)},
		{CIDSTORE_OP_INSERT, mk(TAG, 700), mk(TAG + 1, 700)},
		{CIDSTORE_OP_INSERT, mk(TAG, 701), mk(TAG + 1, 701)},
		{CIDSTORE_OP_DELETE_VALUE, mk(TAG, 701), mk(TAG + 1, 701)},
		{CIDSTORE_OP_DELETE_KEY, mk(TAG + 9, 1), mk(TAG, 0)},
	};
	if (cidstore_apply(s, ops, 5) != 3)
		tfail("apply");
	ops[0].op = (cidstore_opcode_t)99;
	if (cidstore_apply(s, ops, 1) != CIDSTORE_EINVAL)
		tfail("apply bad opcode");
	/* sync 2 ok, checkpoint ENOTSUP (in memory), scan 1 ok + 1 EINVAL */
	if (cidstore_sync(s) != 0 || cidstore_sync(s) != 0)
		tfail("sync");
	if (cidstore_checkpoint(s) != CIDSTORE_ENOTSUP)
		tfail("checkpoint");
	size_t nk = 0;
	if (cidstore_scan(s, count_keys, &nk) != 0 || cidstore_scan(s, NULL, NULL) != CIDSTORE_EINVAL)
		tfail("scan");
	return NULL;
}

START_TEST(test_counts_exact)
{
	reset_failures();
	cidstore_t *s = open_mem_store(1, 0, false);
	pthread_t t;
	spawn(&t, known_workload, s);
	pthread_join(t, NULL);
	assert_no_failures("known workload");
	char *m = scrape(s);

	ck_assert_uint_eq(op_count(m, "insert", "added"), 1000);
	ck_assert_uint_eq(op_count(m, "insert", "exists"), 100);
	ck_assert_uint_eq(op_count(m, "insert", "error"), 1);
	ck_assert_uint_eq(op_count(m, "lookup", "hit"), 500);
	ck_assert_uint_eq(op_count(m, "lookup", "miss"), 200);
	ck_assert_uint_eq(op_count(m, "lookup", "error"), 1);
	ck_assert_uint_eq(op_count(m, "contains", "hit"), 10);
	ck_assert_uint_eq(op_count(m, "contains", "miss"), 5);
	ck_assert_uint_eq(op_count(m, "contains", "error"), 0);
	ck_assert_uint_eq(op_count(m, "delete_value", "removed"), 50);
	ck_assert_uint_eq(op_count(m, "delete_value", "absent"), 7);
	ck_assert_uint_eq(op_count(m, "delete_key", "removed"), 20);
	ck_assert_uint_eq(op_count(m, "delete_key", "absent"), 3);
	ck_assert_uint_eq(op_count(m, "values", "hit"), 4);
	ck_assert_uint_eq(op_count(m, "values", "miss"), 2);
	ck_assert_uint_eq(op_count(m, "lookup_many", "ok"), 1);
	ck_assert_uint_eq(op_count(m, "insert_many", "ok"), 1);
	ck_assert_uint_eq(op_count(m, "apply", "ok"), 1);
	ck_assert_uint_eq(op_count(m, "apply", "error"), 1);
	ck_assert_uint_eq(op_count(m, "sync", "ok"), 2);
	ck_assert_uint_eq(op_count(m, "checkpoint", "ok"), 0);
	ck_assert_uint_eq(op_count(m, "checkpoint", "error"), 1);
	ck_assert_uint_eq(op_count(m, "scan", "ok"), 1);
	ck_assert_uint_eq(op_count(m, "scan", "error"), 1);
	/* errors: insert, lookup, apply, scan -> EINVAL; checkpoint ENOTSUP */
	ck_assert_uint_eq(err_count(m, "EINVAL"), 4);
	ck_assert_uint_eq(err_count(m, "ENOTSUP"), 1);
	ck_assert_uint_eq(err_count(m, "EIO"), 0);
	ck_assert_uint_eq(err_count(m, "other"), 0);
	ck_assert_uint_eq(sample(m, "cidstore_batch_items_total{op=\"lookup_many\"}"), 16);
	ck_assert_uint_eq(sample(m, "cidstore_batch_items_total{op=\"insert_many\"}"), 10);
	ck_assert_uint_eq(sample(m, "cidstore_batch_items_total{op=\"apply\"}"), 5);
	ck_assert_uint_eq(sample(m, "cidstore_batch_items_changed_total{op=\"insert_many\"}"), 6);
	ck_assert_uint_eq(sample(m, "cidstore_batch_items_changed_total{op=\"apply\"}"), 3);
	/* gauges: 500 keys, 1000 values; - 50 values, - 20 keys (40 values),
	 * + 6 keys + 1 key (apply) */
	ck_assert_uint_eq(sample(m, "cidstore_keys"), 500 - 20 + 6 + 1);
	ck_assert_uint_eq(sample(m, "cidstore_values"), 1000 - 50 - 40 + 6 + 1);
	ck_assert_uint_eq(sample(m, "cidstore_metrics_thread_blocks"), 1);
	ck_assert_uint_eq(sample(m, "cidstore_metrics_recording"), 1);
	ck_assert_uint_gt(sample(m, "cidstore_index_memory_bytes"), 0);
	/* histograms: one call in MT_SAMPLE_EVERY of each kind is timed (the
	 * block's count of that call decides) */
	uint64_t ni = hist_check(m, "cidstore_operation_duration_seconds", "op=\"insert\"");
	uint64_t nl = hist_check(m, "cidstore_operation_duration_seconds", "op=\"lookup\"");
	ck_assert_uint_eq(ni, 1101 / MT_SAMPLE_EVERY);
	ck_assert_uint_eq(nl, 701 / MT_SAMPLE_EVERY);
	ck_assert_double_gt(sample(m, "cidstore_operation_duration_seconds_sum{op=\"lookup\"}"), 0);
	ck_assert_uint_eq(hist_check(m, "cidstore_sync_commit_duration_seconds", ""), 0);
	/* no log, no directory: no WAL, checkpoint or recovery families */
	ck_assert(!has_line(m, "cidstore_wal_"));
	ck_assert(!has_line(m, "cidstore_checkpoint"));
	ck_assert(!has_line(m, "cidstore_recovery"));
	ck_assert(has_line(m, "cidstore_maintenance_passes_total 0"));
	free(m);
	close_store(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* durable stores                                                      */
/* ------------------------------------------------------------------ */

static cidstore_t *open_dir(const char *dir, cidstore_durability_t d, const struct log_io *io)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = dir;
	o.durability = d;
	o.ring_records = 1024;
	cidstore_t *s = NULL;
	int rc = cidstore_open_io(&o, io, &s);
	ck_assert_msg(rc == 0, "open %s: %s", dir, cidstore_strerror(rc));
	return s;
}

START_TEST(test_durable_sync)
{
	char dir[64];
	tmpdir_make(dir, sizeof dir, "cidstore-metrics");
	cidstore_t *s = open_dir(dir, CIDSTORE_DURABILITY_SYNC, NULL);
	for (uint64_t i = 0; i < 50; i++) {
		cid_t k = mk(TAG, i), v = mk(TAG + 1, i);
		ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	}
	for (uint64_t i = 0; i < 5; i++) {
		cid_t k = mk(TAG, i), v = mk(TAG + 1, i);
		ck_assert_int_eq(cidstore_insert(s, &k, &v), 0);
	}
	cid_t keys[4] = {mk(TAG, 100), mk(TAG, 101), mk(TAG, 102), mk(TAG, 103)};
	ck_assert_int_eq(cidstore_insert_many(s, keys, keys, 4, NULL), 4);
	cidstore_op_t op = {CIDSTORE_OP_DELETE_KEY, mk(TAG, 100), mk(TAG, 0)};
	ck_assert_int_eq(cidstore_apply(s, &op, 1), 1);
	ck_assert_int_eq(cidstore_sync(s), 0);
	char *m = scrape(s);
	/* every SYNC write's commit is timed: 55 inserts, insert_many, apply */
	ck_assert_uint_eq(hist_check(m, "cidstore_sync_commit_duration_seconds", ""), 57);
	/* records: 55 - 5 + 4 + 3 (TXN_START, DELETE_KEY, TXN_COMMIT) = 57 */
	uint64_t lsn = (uint64_t)sample(m, "cidstore_wal_lsn");
	ck_assert_uint_eq(lsn, 57);
	ck_assert_uint_eq(sample(m, "cidstore_wal_durable_lsn"), lsn);
	ck_assert_uint_eq(sample(m, "cidstore_wal_durable_lag_records"), 0);
	ck_assert_uint_eq(sample(m, "cidstore_wal_durable_lag_bytes"), 0);
	ck_assert_uint_eq(sample(m, "cidstore_wal_ring_records"), 0);
	ck_assert_uint_eq(sample(m, "cidstore_wal_ring_capacity_records"), 1024);
	ck_assert_uint_eq(sample(m, "cidstore_wal_records_total"), 57);
	ck_assert_uint_eq(sample(m, "cidstore_wal_written_bytes_total"), 57 * 128);
	/* every record since open was made durable by some log fdatasync */
	ck_assert_uint_eq(sample(m, "cidstore_wal_group_commit_records_sum"), lsn);
	uint64_t nsync = (uint64_t)sample(m, "cidstore_wal_group_commit_records_count");
	ck_assert_uint_eq(sample(m, "cidstore_wal_group_commit_records_bucket{le=\"+Inf\"}"), nsync);
	ck_assert_uint_le(sample(m, "cidstore_wal_group_commit_records_bucket{le=\"1\"}"), nsync);
	ck_assert_uint_ge(nsync, 1);
	ck_assert_uint_le(nsync, lsn);
	ck_assert_uint_eq(sample(m, "cidstore_wal_fdatasync_duration_seconds_count"), nsync);
	ck_assert_uint_ge(sample(m, "cidstore_wal_fdatasyncs_total"), nsync);
	ck_assert_uint_eq(sample(m, "cidstore_checkpoints_total"), 0);
	ck_assert_uint_eq(sample(m, "cidstore_recovery_replayed_records"), 0);
	ck_assert(has_line(m, "cidstore_info{version=\"" CIDSTORE_VERSION_STRING
			      "\",durability=\"sync\""));
	free(m);
	ck_assert_int_eq(cidstore_checkpoint(s), 0);
	m = scrape(s);
	ck_assert_uint_eq(sample(m, "cidstore_checkpoints_total"), 1);
	ck_assert_uint_eq(op_count(m, "checkpoint", "ok"), 1);
	double age = sample(m, "cidstore_checkpoint_age_seconds");
	ck_assert_msg(age >= 0 && age < 3600, "checkpoint age %g", age);
	free(m);
	/* a write after the checkpoint, then reopen: recovery replays it */
	cid_t k = mk(TAG, 999), v = mk(TAG + 1, 999);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	close_store(s);
	s = open_dir(dir, CIDSTORE_DURABILITY_SYNC, NULL);
	m = scrape(s);
	ck_assert_uint_ge(sample(m, "cidstore_recovery_replayed_records"), 1);
	ck_assert_double_ge(sample(m, "cidstore_recovery_duration_seconds"), 0);
	ck_assert_uint_eq(sample(m, "cidstore_keys"), 50 + 3 + 1);
	ck_assert_uint_eq(op_count(m, "insert", "added"), 0); /* since this open */
	free(m);
	close_store(s);
	ck_assert_int_eq(tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_durable_async)
{
	char dir[64];
	tmpdir_make(dir, sizeof dir, "cidstore-metrics");
	cidstore_t *s = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, NULL);
	for (uint64_t i = 0; i < 40; i++) {
		cid_t k = mk(TAG, i), v = mk(TAG + 1, i);
		ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	}
	char *m = scrape(s);
	ck_assert_uint_eq(sample(m, "cidstore_wal_lsn"), 40);
	uint64_t durable = (uint64_t)sample(m, "cidstore_wal_durable_lsn");
	ck_assert_uint_le(durable, 40);
	ck_assert_uint_eq(sample(m, "cidstore_wal_durable_lag_records"), 40 - durable);
	ck_assert_uint_eq(sample(m, "cidstore_wal_durable_lag_bytes"), (40 - durable) * 128);
	ck_assert_uint_le(sample(m, "cidstore_wal_ring_records"), 40);
	/* ASYNC writes never wait for a commit */
	ck_assert_uint_eq(hist_check(m, "cidstore_sync_commit_duration_seconds", ""), 0);
	ck_assert(has_line(m, "cidstore_info{version=\"" CIDSTORE_VERSION_STRING
			      "\",durability=\"async\""));
	free(m);
	ck_assert_int_eq(cidstore_sync(s), 0);
	m = scrape(s);
	ck_assert_uint_eq(sample(m, "cidstore_wal_durable_lag_records"), 0);
	ck_assert_uint_eq(sample(m, "cidstore_wal_group_commit_records_sum"), 40);
	ck_assert_uint_eq(op_count(m, "sync", "ok"), 1);
	free(m);
	close_store(s);
	/* NONE with a directory: checkpoint and recovery, no WAL */
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = dir;
	o.durability = CIDSTORE_DURABILITY_NONE;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	m = scrape(s);
	ck_assert(!has_line(m, "cidstore_wal_"));
	ck_assert(has_line(m, "cidstore_checkpoints_total 0"));
	ck_assert_uint_eq(sample(m, "cidstore_keys"), 40);
	free(m);
	close_store(s);
	ck_assert_int_eq(tmpdir_remove(dir), 0);
}
END_TEST

START_TEST(test_errors_io_and_readonly)
{
	char dir[64];
	tmpdir_make(dir, sizeof dir, "cidstore-metrics");
	cidstore_t *s = open_dir(dir, CIDSTORE_DURABILITY_SYNC, failio());
	cid_t k = mk(TAG, 1), v = mk(TAG + 1, 1);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	atomic_store(&failio_armed, 1);
	v = mk(TAG + 1, 2);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), CIDSTORE_EIO);
	v = mk(TAG + 1, 3);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), CIDSTORE_EIO); /* sticky */
	ck_assert_int_eq(cidstore_delete_key(s, &k), CIDSTORE_EIO);
	ck_assert_int_eq(cidstore_sync(s), CIDSTORE_EIO);
	char *m = scrape(s);
	ck_assert_uint_eq(op_count(m, "insert", "added"), 1);
	ck_assert_uint_eq(op_count(m, "insert", "error"), 2);
	ck_assert_uint_eq(op_count(m, "delete_key", "error"), 1);
	ck_assert_uint_eq(op_count(m, "sync", "error"), 1);
	ck_assert_uint_eq(err_count(m, "EIO"), 4);
	ck_assert_uint_eq(sample(m, "cidstore_failed"), 1);
	free(m);
	cidstore_close(s); /* EIO: the log failed */
	atomic_store(&failio_armed, 0);

	/* read_only: every write ERDONLY */
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = dir;
	o.read_only = true;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), CIDSTORE_ERDONLY);
	ck_assert_int_eq(cidstore_checkpoint(s), CIDSTORE_ERDONLY);
	ck_assert_int_ge(cidstore_lookup(s, &k, NULL, 0), 0);
	m = scrape(s);
	ck_assert_uint_eq(err_count(m, "ERDONLY"), 2);
	ck_assert_uint_eq(op_count(m, "lookup", "hit") + op_count(m, "lookup", "miss"), 1);
	ck_assert(!has_line(m, "cidstore_wal_")); /* read_only: no log */
	ck_assert(has_line(m, "cidstore_info{version=\"" CIDSTORE_VERSION_STRING
			      "\",durability=\"sync\",serialized=\"false\",read_only=\"true\"} 1"));
	free(m);
	close_store(s);
	ck_assert_int_eq(tmpdir_remove(dir), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* the buffer contract                                                 */
/* ------------------------------------------------------------------ */

START_TEST(test_buffer_contract)
{
	cidstore_t *s = open_mem_store(2, 0, false);
	cid_t k = mk(TAG, 1);
	ck_assert_int_eq(cidstore_insert(s, &k, &k), 1); /* this thread's block, epoch record */
	char *full = scrape(s);
	size_t len = strlen(full);
	ck_assert_int_eq(cidstore_metrics_prometheus(s, NULL, 0), (long)len);
	char sentinel = 'x';
	ck_assert_int_eq(cidstore_metrics_prometheus(s, &sentinel, 0), (long)len);
	ck_assert_int_eq(sentinel, 'x'); /* cap 0: nothing written */
	char *buf = malloc(len + 2);
	ck_assert_ptr_nonnull(buf);
	size_t caps[] = {1, 2, 10, 100, len / 2, len - 1, len};
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		size_t cap = caps[i];
		memset(buf, 'x', len + 2);
		ck_assert_int_eq(cidstore_metrics_prometheus(s, buf, cap), (long)len);
		ck_assert_msg(buf[cap - 1] == '\0', "cap %zu: NUL-terminated", cap);
		ck_assert_msg(memcmp(buf, full, cap - 1) == 0, "cap %zu: a prefix", cap);
		ck_assert_msg(buf[cap] == 'x', "cap %zu: nothing past the buffer", cap);
	}
	memset(buf, 'x', len + 2);
	ck_assert_int_eq(cidstore_metrics_prometheus(s, buf, len + 1), (long)len);
	ck_assert_str_eq(buf, full);
	ck_assert_int_eq(buf[len + 1], 'x');
	ck_assert_int_eq(cidstore_metrics_prometheus(NULL, buf, len + 1), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_metrics_prometheus(NULL, NULL, 0), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_metrics_prometheus(s, NULL, 5), CIDSTORE_EINVAL);
	/* the text ends with a newline: every line is whole */
	ck_assert_int_eq(full[len - 1], '\n');
	free(buf);
	free(full);
	close_store(s);
}
END_TEST

START_TEST(test_metrics_off)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	ck_assert(o.metrics); /* default on */
	o.metrics = false;
	cidstore_t *s = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	for (uint64_t i = 0; i < 100; i++) {
		cid_t k = mk(TAG, i);
		ck_assert_int_eq(cidstore_insert(s, &k, &k), 1);
		ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 1);
	}
	ck_assert_int_eq(cidstore_insert(s, NULL, NULL), CIDSTORE_EINVAL);
	char *m = scrape(s);
	ck_assert_uint_eq(sample(m, "cidstore_metrics_recording"), 0);
	ck_assert_uint_eq(op_count(m, "insert", "added"), 0);
	ck_assert_uint_eq(op_count(m, "lookup", "hit"), 0);
	ck_assert_uint_eq(err_count(m, "EINVAL"), 0);
	ck_assert_uint_eq(sample(m, "cidstore_metrics_thread_blocks"), 0);
	ck_assert_uint_eq(hist_check(m, "cidstore_operation_duration_seconds", "op=\"insert\""), 0);
	ck_assert_uint_eq(sample(m, "cidstore_keys"), 100); /* gauges still read */
	free(m);
	close_store(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* concurrency                                                         */
/* ------------------------------------------------------------------ */

struct churn {
	cidstore_t *s;
	uint64_t base;
	size_t k;
};

static void *churn_worker(void *arg)
{
	struct churn *c = arg;
	for (size_t i = 0; i < c->k; i++) {
		cid_t key = mk(TAG, c->base + i);
		if (cidstore_insert(c->s, &key, &key) != 1)
			tfail("churn insert");
		if (cidstore_lookup(c->s, &key, NULL, 0) != 1)
			tfail("churn lookup");
	}
	return NULL;
}

struct reader {
	cidstore_t *s;
	atomic_bool stop;
	unsigned long scrapes;
};

static void *churn_reader(void *arg)
{
	struct reader *r = arg;
	uint64_t last_added = 0, last_hit = 0, last_count = 0;
	while (!atomic_load(&r->stop) && !failed_already()) {
		long need = cidstore_metrics_prometheus(r->s, NULL, 0);
		size_t cap = (size_t)(need > 0 ? need : 0) + 8192;
		char *buf = malloc(cap);
		long n = buf ? cidstore_metrics_prometheus(r->s, buf, cap) : -1;
		if (n <= 0 || (size_t)n >= cap) {
			tfail("scrape: %ld of %zu", n, cap);
			free(buf);
			break;
		}
		const char *a = strstr(buf, "cidstore_operations_total{op=\"insert\",result=\"added\"} ");
		const char *h = strstr(buf, "cidstore_operations_total{op=\"lookup\",result=\"hit\"} ");
		const char *c = strstr(buf, "cidstore_operation_duration_seconds_count{op=\"insert\"} ");
		if (!a || !h || !c) {
			tfail("scrape lacks a series");
			free(buf);
			break;
		}
		uint64_t added = strtoull(strchr(a, '}') + 2, NULL, 10);
		uint64_t hit = strtoull(strchr(h, '}') + 2, NULL, 10);
		uint64_t cnt = strtoull(strchr(c, '}') + 2, NULL, 10);
		if (added < last_added || hit < last_hit || cnt < last_count)
			tfail("a total went down: added %llu after %llu, hit %llu after %llu",
			      (unsigned long long)added, (unsigned long long)last_added,
			      (unsigned long long)hit, (unsigned long long)last_hit);
		last_added = added;
		last_hit = hit;
		last_count = cnt;
		r->scrapes++;
		free(buf);
	}
	return NULL;
}

START_TEST(test_churn_merge)
{
	reset_failures();
	enum { T = 4 };
	const size_t rounds = scaled(100, 30), k = scaled(1000, 300);
	cidstore_t *s = open_mem_store(3, 0, false);
	struct reader r = {.s = s};
	pthread_t rt;
	spawn(&rt, churn_reader, &r);
	struct churn c[T];
	for (size_t round = 0; round < rounds && !failed_already(); round++) {
		pthread_t t[T];
		for (int i = 0; i < T; i++) {
			c[i] = (struct churn){s, (round * T + (size_t)i) * k, k};
			spawn(&t[i], churn_worker, &c[i]);
		}
		for (int i = 0; i < T; i++)
			pthread_join(t[i], NULL);
	}
	atomic_store(&r.stop, true);
	pthread_join(rt, NULL);
	assert_no_failures("churn");
	char *m = scrape(s);
	const uint64_t total = rounds * T * k;
	ck_assert_uint_eq(op_count(m, "insert", "added"), total);
	ck_assert_uint_eq(op_count(m, "lookup", "hit"), total);
	ck_assert_uint_eq(op_count(m, "insert", "error") + op_count(m, "lookup", "miss"), 0);
	/* every thread exited before the next round began: its block went
	 * back and was reused, so no more blocks than threads alive at once */
	ck_assert_uint_le(sample(m, "cidstore_metrics_thread_blocks"), T);
	ck_assert_uint_ge(sample(m, "cidstore_metrics_thread_blocks"), 1);
	/* blocks carry their counts across owners: of the total calls of
	 * each kind in a block, every MT_SAMPLE_EVERY-th was timed */
	uint64_t timed = hist_check(m, "cidstore_operation_duration_seconds", "op=\"insert\"") +
			 hist_check(m, "cidstore_operation_duration_seconds", "op=\"lookup\"");
	ck_assert_uint_le(timed * MT_SAMPLE_EVERY, 2 * total);
	ck_assert_uint_ge(timed * MT_SAMPLE_EVERY + 2 * T * (MT_SAMPLE_EVERY - 1), 2 * total);
	ck_assert_uint_ge(r.scrapes, 1);
	free(m);
	close_store(s);
}
END_TEST

/* Threads that use two stores in turn while the main thread closes one
 * and opens another (its memory may be the closed one's): each store's
 * counts are its own, exact. */
struct two {
	cidstore_t *a, *b;
	uint64_t base;
	size_t k;
};

static void *two_worker(void *arg)
{
	struct two *w = arg;
	for (size_t i = 0; i < w->k; i++) {
		cid_t key = mk(TAG, w->base + i);
		if (cidstore_insert(w->a, &key, &key) != 1 || cidstore_insert(w->b, &key, &key) != 1 ||
		    cidstore_lookup(w->b, &key, NULL, 0) != 1)
			tfail("two stores");
	}
	return NULL;
}

START_TEST(test_two_stores)
{
	reset_failures();
	enum { T = 3 };
	const size_t k = scaled(2000, 300);
	cidstore_t *a = open_mem_store(4, 0, false);
	for (int gen = 0; gen < 3; gen++) {
		cidstore_t *b = open_mem_store(5 + (uint64_t)gen, 0, false);
		pthread_t t[T];
		struct two w[T];
		for (int i = 0; i < T; i++) {
			w[i] = (struct two){a, b, ((uint64_t)gen * T + (uint64_t)i) * k, k};
			spawn(&t[i], two_worker, &w[i]);
		}
		for (int i = 0; i < T; i++)
			pthread_join(t[i], NULL);
		/* this thread uses b too, then b closes with the block cached */
		cid_t key = mk(TAG + 5, 0);
		ck_assert_int_eq(cidstore_insert(b, &key, &key), 1);
		char *m = scrape(b);
		ck_assert_uint_eq(op_count(m, "insert", "added"), T * k + 1);
		ck_assert_uint_eq(op_count(m, "lookup", "hit"), T * k);
		free(m);
		close_store(b);
	}
	assert_no_failures("two stores");
	char *m = scrape(a);
	ck_assert_uint_eq(op_count(m, "insert", "added"), 3 * T * k);
	ck_assert_uint_eq(op_count(m, "lookup", "hit"), 0);
	free(m);
	close_store(a);
}
END_TEST

/* Threads exit while the store closes (the contract forbids calls during
 * close, not thread exits): the exit hand-back and close's free must not
 * race (TSan, ASan). */
struct exiting {
	cidstore_t *s;
	pthread_barrier_t *bar;
	uint64_t base;
};

static void *exiting_worker(void *arg)
{
	struct exiting *e = arg;
	for (uint64_t i = 0; i < 64; i++) {
		cid_t key = mk(TAG, e->base + i);
		if (cidstore_insert(e->s, &key, &key) != 1)
			tfail("exiting insert");
	}
	pthread_barrier_wait(e->bar); /* last call done: close may begin */
	return NULL;                  /* ... while this thread exits */
}

START_TEST(test_exit_during_close)
{
	reset_failures();
	enum { T = 4 };
	const size_t reps = scaled(100, 40);
	for (size_t rep = 0; rep < reps; rep++) {
		cidstore_t *s = open_mem_store(6, 0, false);
		pthread_barrier_t bar;
		pthread_barrier_init(&bar, NULL, T + 1);
		pthread_t t[T];
		struct exiting e[T];
		for (int i = 0; i < T; i++) {
			e[i] = (struct exiting){s, &bar, (uint64_t)i * 64};
			spawn(&t[i], exiting_worker, &e[i]);
		}
		pthread_barrier_wait(&bar);
		close_store(s);
		for (int i = 0; i < T; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&bar);
	}
	assert_no_failures("exit during close");
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_lathist_layout);
	tcase_add_test(tc, test_counts_exact);
	tcase_add_test(tc, test_durable_sync);
	tcase_add_test(tc, test_durable_async);
	tcase_add_test(tc, test_errors_io_and_readonly);
	tcase_add_test(tc, test_buffer_contract);
	tcase_add_test(tc, test_metrics_off);
	tcase_add_test(tc, test_churn_merge);
	tcase_add_test(tc, test_two_stores);
	tcase_add_test(tc, test_exit_during_close);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(metrics_suite());
}
