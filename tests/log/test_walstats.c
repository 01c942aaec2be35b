/* test_walstats.c — issue 11 (durable path v2) at the store level:
 *   defect 5: stats.wal_bytes counts the live log recovery would replay,
 *             from open on (128 bytes per record since the last checkpoint
 *             began; segment headers and zero fill not counted), and drops
 *             after a checkpoint;
 *   defect 6: a one-key store's log is small (segments start at 1 MiB);
 *   SYNC commits from many threads: every insert acknowledged is there
 *             after reopen and the log was synced at least that far;
 *   the automatic checkpoint's policy (maint.c): due when the live log
 *             reaches max(checkpoint_wal_bytes, the newest checkpoint's
 *             size), that size (stats.checkpoint_bytes) coming from the
 *             last checkpoint written or the one recovery loaded. */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cidstore.h"
#include "log/record.h"
#include "test_support.h"

static char spath[256];

static void dir_setup(void)
{
	tmpdir_make(spath, sizeof spath, "cidstore-test-walstats");
}

static void dir_teardown(void)
{
	tmpdir_remove(spath);
}

static cid_t K(uint64_t i, uint64_t tag)
{
	return (cid_t){{mix64(i * 2 + 1), tag, i, 0x6b6579}};
}

static cid_t V(uint64_t i, uint64_t tag)
{
	return (cid_t){{mix64(i * 2 + 2), tag, i, 0x76616c}};
}

static void opts_for(cidstore_options_t *o, cidstore_durability_t d)
{
	cidstore_options_init(o);
	o->dir = spath;
	o->durability = d;
	o->checkpoint_wal_bytes = 0; /* checkpoints only when asked */
}

static cidstore_t *open_ok(const cidstore_options_t *o)
{
	cidstore_t *s = NULL;
	int rc = cidstore_open(o, &s);
	ck_assert_msg(rc == 0, "open: %d (%s)", rc, cidstore_strerror(rc));
	return s;
}

static void close_ok(cidstore_t *s)
{
	int rc = cidstore_close(s);
	ck_assert_msg(rc == 0, "close: %d (%s)", rc, cidstore_strerror(rc));
}

static uint64_t wal_bytes(cidstore_t *s)
{
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	return st.wal_bytes;
}

/* Total size of the log segments in spath. */
static uint64_t seg_bytes_on_disk(int *nsegs)
{
	DIR *d = opendir(spath);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	uint64_t total = 0;
	int n = 0;
	while ((de = readdir(d)) != NULL) {
		uint64_t first;
		if (rec_seg_parse(de->d_name, &first) != 0)
			continue;
		char p[512];
		snprintf(p, sizeof p, "%s/%s", spath, de->d_name);
		struct stat st;
		ck_assert_int_eq(stat(p, &st), 0);
		total += (uint64_t)st.st_size;
		n++;
	}
	closedir(d);
	if (nsegs)
		*nsegs = n;
	return total;
}

static void insert_n(cidstore_t *s, uint64_t from, uint64_t n)
{
	for (uint64_t i = from; i < from + n; i++) {
		cid_t k = K(i, 1), v = V(i, 1);
		ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	}
}

START_TEST(wal_bytes_survive_reopen)
{
	const uint64_t N = 3000, M = 500;
	for (int d = 0; d < 2; d++) {
		cidstore_options_t o;
		opts_for(&o, d ? CIDSTORE_DURABILITY_SYNC : CIDSTORE_DURABILITY_ASYNC);
		o.segment_bytes = 64 * 1024; /* rotations: headers are not counted */
		cidstore_t *s = open_ok(&o);
		ck_assert_uint_eq(wal_bytes(s), 0);
		insert_n(s, 0, N);
		ck_assert_int_eq(cidstore_sync(s), 0);
		ck_assert_uint_eq(wal_bytes(s), N * WAL_REC_SIZE);
		close_ok(s);

		/* the unreplayed log on disk counts from open on */
		s = open_ok(&o);
		ck_assert_uint_eq(wal_bytes(s), N * WAL_REC_SIZE);
		insert_n(s, N, M);
		ck_assert_int_eq(cidstore_sync(s), 0);
		ck_assert_uint_eq(wal_bytes(s), (N + M) * WAL_REC_SIZE);
		close_ok(s);
		s = open_ok(&o);
		ck_assert_uint_eq(wal_bytes(s), (N + M) * WAL_REC_SIZE);

		/* a checkpoint makes it drop; the next open replays nothing */
		ck_assert_int_eq(cidstore_checkpoint(s), 0);
		ck_assert_uint_eq(wal_bytes(s), 0);
		insert_n(s, N + M, 10);
		ck_assert_int_eq(cidstore_sync(s), 0);
		ck_assert_uint_eq(wal_bytes(s), 10 * WAL_REC_SIZE);
		close_ok(s);
		s = open_ok(&o);
		ck_assert_uint_eq(wal_bytes(s), 10 * WAL_REC_SIZE);
		cidstore_stats_t st;
		ck_assert_int_eq(cidstore_stats(s, &st), 0);
		ck_assert_uint_eq(st.keys, N + M + 10);
		close_ok(s);
		dir_teardown();
		dir_setup();
	}
}
END_TEST

START_TEST(wal_bytes_trigger_checkpoint_after_reopen)
{
	/* the automatic checkpoint sees the unreplayed log: a store reopened
	 * with more log than checkpoint_wal_bytes checkpoints soon after */
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_ASYNC);
	o.segment_bytes = 64 * 1024;
	cidstore_t *s = open_ok(&o);
	insert_n(s, 0, 2000); /* 256000 bytes of records */
	close_ok(s);
	o.checkpoint_wal_bytes = 128 * 1024;
	s = open_ok(&o);
	cidstore_stats_t st;
	for (int i = 0; i < 500; i++) { /* the maintenance thread polls every 100 ms */
		ck_assert_int_eq(cidstore_stats(s, &st), 0);
		if (st.checkpoints > 0)
			break;
		usleep(10 * 1000);
	}
	ck_assert_uint_ge(st.checkpoints, 1);
	ck_assert_uint_lt(st.wal_bytes, 128 * 1024);
	close_ok(s);
}
END_TEST

START_TEST(one_key_store_is_small)
{
	for (int d = 0; d < 2; d++) {
		cidstore_options_t o;
		opts_for(&o, d ? CIDSTORE_DURABILITY_SYNC : CIDSTORE_DURABILITY_ASYNC);
		/* segment_bytes: the default (64 MiB) */
		cidstore_t *s = open_ok(&o);
		insert_n(s, 0, 1);
		close_ok(s);
		int n;
		uint64_t b = seg_bytes_on_disk(&n);
		ck_assert_int_eq(n, 1);
		ck_assert_msg(b < (2u << 20), "one key: %llu bytes of log segments",
			      (unsigned long long)b);
		s = open_ok(&o);
		cid_t k = K(0, 1), v = V(0, 1);
		ck_assert_int_eq(cidstore_contains(s, &k, &v), 1);
		close_ok(s);
		dir_teardown();
		dir_setup();
	}
}
END_TEST

struct th_arg {
	cidstore_t *s;
	unsigned id, n;
	int err;
};

static void *sync_inserter(void *p)
{
	struct th_arg *a = p;
	for (unsigned i = 0; i < a->n; i++) {
		cid_t k = K(a->id * 100000u + i, 2), v = V(i, 2);
		int rc = cidstore_insert(a->s, &k, &v);
		if (rc != 1) {
			a->err = rc < 0 ? rc : -1000;
			return NULL;
		}
	}
	return NULL;
}

START_TEST(sync_leaders_many_threads)
{
	/* leader-based group commit: 1, 2 and 24 threads of SYNC inserts;
	 * each insert returns after its record is durable (durable_lsn
	 * reaches every LSN handed out), all of them are there after reopen */
	unsigned threads[] = {1, 2, 24};
	for (int c = 0; c < 3; c++) {
		cidstore_options_t o;
		opts_for(&o, CIDSTORE_DURABILITY_SYNC);
		o.segment_bytes = 256 * 1024;
		o.ring_records = 256;
		cidstore_t *s = open_ok(&o);
		unsigned T = threads[c], per = 2400 / T;
		pthread_t th[24];
		struct th_arg a[24];
		for (unsigned t = 0; t < T; t++) {
			a[t] = (struct th_arg){s, t, per, 0};
			ck_assert_int_eq(pthread_create(&th[t], NULL, sync_inserter, &a[t]), 0);
		}
		for (unsigned t = 0; t < T; t++) {
			pthread_join(th[t], NULL);
			ck_assert_int_eq(a[t].err, 0);
		}
		cidstore_stats_t st;
		ck_assert_int_eq(cidstore_stats(s, &st), 0);
		ck_assert_uint_eq(st.wal_durable_lsn, st.wal_lsn);
		ck_assert_uint_eq(st.wal_lsn, (uint64_t)T * per);
		ck_assert_uint_le(st.wal_fsyncs, (uint64_t)T * per + 64);
		fprintf(stderr, "sync_leaders_many_threads: %u threads, %llu records, %llu fdatasyncs\n",
			T, (unsigned long long)st.wal_lsn, (unsigned long long)st.wal_fsyncs);
		close_ok(s);
		s = open_ok(&o);
		for (unsigned t = 0; t < T; t++)
			for (unsigned i = 0; i < per; i++) {
				cid_t k = K(t * 100000u + i, 2), v = V(i, 2);
				ck_assert_int_eq(cidstore_contains(s, &k, &v), 1);
			}
		close_ok(s);
		dir_teardown();
		dir_setup();
	}
}
END_TEST

/* Size of the newest checkpoint file in spath (0 without one). */
static uint64_t newest_ckpt_size(void)
{
	DIR *d = opendir(spath);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	uint64_t best_lsn = 0, size = 0;
	bool found = false;
	while ((de = readdir(d)) != NULL) {
		unsigned long long lsn;
		char tail[16];
		if (sscanf(de->d_name, "ckpt-%16llx%15s", &lsn, tail) != 2 ||
		    strcmp(tail, ".ckpt") != 0)
			continue;
		if (found && lsn <= best_lsn)
			continue;
		char p[512];
		snprintf(p, sizeof p, "%s/%s", spath, de->d_name);
		struct stat st;
		ck_assert_int_eq(stat(p, &st), 0);
		best_lsn = lsn;
		size = (uint64_t)st.st_size;
		found = true;
	}
	closedir(d);
	return size;
}

static cidstore_stats_t stats_of(cidstore_t *s)
{
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	return st;
}

/* Polls stats.checkpoints until it reaches want (the maintenance thread
 * tests every 100 ms); gives up after 20 s.  Returns the last stats. */
static cidstore_stats_t wait_checkpoints(cidstore_t *s, uint64_t want)
{
	cidstore_stats_t st = stats_of(s);
	for (int i = 0; i < 2000 && st.checkpoints < want; i++) {
		usleep(10 * 1000);
		st = stats_of(s);
	}
	return st;
}

#define SMALL_THRESHOLD (64u * 1024u)

START_TEST(ckpt_policy_scales_with_checkpoint)
{
	/* a store whose checkpoint is ~20x checkpoint_wal_bytes: log beyond
	 * the threshold but below the checkpoint's size takes no automatic
	 * checkpoint; log beyond the checkpoint's size takes one */
	const uint64_t N = 20000;
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_ASYNC);
	cidstore_t *s = open_ok(&o);
	insert_n(s, 0, N);
	ck_assert_uint_eq(stats_of(s).checkpoint_bytes, 0);
	ck_assert_int_eq(cidstore_checkpoint(s), 0);
	uint64_t C = newest_ckpt_size();
	ck_assert_uint_eq(stats_of(s).checkpoint_bytes, C);
	ck_assert_uint_gt(C, 16 * SMALL_THRESHOLD);
	close_ok(s);

	/* the size of the checkpoint recovery loads counts too */
	o.checkpoint_wal_bytes = SMALL_THRESHOLD;
	s = open_ok(&o);
	cidstore_stats_t st = stats_of(s);
	ck_assert_uint_eq(st.checkpoint_bytes, C);
	ck_assert_uint_eq(st.checkpoints, 0);
	ck_assert_uint_eq(st.wal_bytes, 0);

	/* ~C/2 of log: 8x the plain threshold, half the checkpoint */
	uint64_t half = C / 2 / WAL_REC_SIZE;
	insert_n(s, N, half);
	ck_assert_int_eq(cidstore_sync(s), 0);
	/* cidstore_maintain runs the same test as the thread, synchronously:
	 * nothing is due */
	ck_assert_int_eq(cidstore_maintain(s), 0);
	st = stats_of(s);
	ck_assert_uint_eq(st.checkpoints, 0);
	ck_assert_uint_ge(st.wal_bytes, 8 * SMALL_THRESHOLD);
	ck_assert_uint_lt(st.wal_bytes, C);

	/* past C: the thread takes one on its own */
	uint64_t rest = C / WAL_REC_SIZE + 64 - half;
	insert_n(s, N + half, rest);
	ck_assert_int_eq(cidstore_sync(s), 0);
	st = wait_checkpoints(s, 1);
	ck_assert_uint_eq(st.checkpoints, 1);
	/* the new checkpoint holds the new keys: bigger, and the size recorded
	 * is the new file's */
	ck_assert_uint_gt(st.checkpoint_bytes, C);
	ck_assert_uint_eq(st.checkpoint_bytes, newest_ckpt_size());
	ck_assert_uint_lt(st.wal_bytes, C);

	/* the threshold moved with it: the log that was enough before (C + a
	 * little) is not enough now, as cidstore_maintain shows */
	uint64_t C2 = st.checkpoint_bytes;
	uint64_t more = (C + (C2 - C) / 2) / WAL_REC_SIZE - st.wal_bytes / WAL_REC_SIZE;
	insert_n(s, N + half + rest, more);
	ck_assert_int_eq(cidstore_sync(s), 0);
	ck_assert_int_eq(cidstore_maintain(s), 0);
	st = stats_of(s);
	ck_assert_uint_ge(st.wal_bytes, C);
	ck_assert_uint_lt(st.wal_bytes, C2);
	ck_assert_uint_eq(st.checkpoints, 1);
	close_ok(s);
}
END_TEST

START_TEST(ckpt_policy_small_store_plain_threshold)
{
	/* a checkpoint far below checkpoint_wal_bytes: the threshold alone
	 * decides, after a checkpoint written and after one loaded */
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_ASYNC);
	o.checkpoint_wal_bytes = SMALL_THRESHOLD;
	cidstore_t *s = open_ok(&o);
	insert_n(s, 0, 10);
	ck_assert_int_eq(cidstore_checkpoint(s), 0);
	cidstore_stats_t st = stats_of(s);
	uint64_t C = st.checkpoint_bytes;
	ck_assert_uint_eq(C, newest_ckpt_size());
	ck_assert_uint_gt(C, 0);
	ck_assert_uint_lt(C, SMALL_THRESHOLD / 16);

	/* below the threshold (but far above C): none */
	const uint64_t below = SMALL_THRESHOLD / WAL_REC_SIZE - 64;
	insert_n(s, 10, below);
	ck_assert_int_eq(cidstore_sync(s), 0);
	ck_assert_int_eq(cidstore_maintain(s), 0);
	st = stats_of(s);
	ck_assert_uint_eq(st.checkpoints, 1);
	ck_assert_uint_gt(st.wal_bytes, 16 * C);

	/* past it: the thread takes one */
	insert_n(s, 10 + below, 128);
	ck_assert_int_eq(cidstore_sync(s), 0);
	st = wait_checkpoints(s, 2);
	ck_assert_uint_eq(st.checkpoints, 2);
	uint64_t C2 = st.checkpoint_bytes;
	ck_assert_uint_lt(C2, SMALL_THRESHOLD);
	close_ok(s);

	/* reopened over that checkpoint: still the plain threshold */
	s = open_ok(&o);
	st = stats_of(s);
	ck_assert_uint_eq(st.checkpoint_bytes, C2);
	uint64_t live = st.wal_bytes / WAL_REC_SIZE;
	ck_assert_uint_lt(live, SMALL_THRESHOLD / WAL_REC_SIZE);
	insert_n(s, 20 + below + 128, SMALL_THRESHOLD / WAL_REC_SIZE + 8 - live);
	ck_assert_int_eq(cidstore_sync(s), 0);
	st = wait_checkpoints(s, 1);
	ck_assert_uint_eq(st.checkpoints, 1);
	close_ok(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("walstats");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 240);
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_test(tc, wal_bytes_survive_reopen);
	tcase_add_test(tc, wal_bytes_trigger_checkpoint_after_reopen);
	tcase_add_test(tc, one_key_store_is_small);
	tcase_add_test(tc, sync_leaders_many_threads);
	tcase_add_test(tc, ckpt_policy_scales_with_checkpoint);
	tcase_add_test(tc, ckpt_policy_small_store_plain_threshold);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
