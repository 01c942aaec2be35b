/*
 * test_durable.c — durable stores through the public API (plus
 * cidstore_open_io / the handle's recovery result from store_internal.h):
 *
 *   - reopen gives the identical state (full scans compared) after inserts,
 *     deletes, delete_key and batches; DURABILITY_NONE with a directory is
 *     checkpoint-only and survives a clean close; modes can be mixed;
 *   - the directory lock: a second open in this process and one from a
 *     forked child get CIDSTORE_EBUSY while the first store keeps working;
 *   - ordering proof: 8 threads run conflicting inserts / delete_value /
 *     delete_key (and small batches) on a few hot keys, ASYNC; the state
 *     scanned before close equals the state after reopen (several seeds);
 *   - SYNC group commit (fdatasyncs well below records), cidstore_sync;
 *   - online checkpoints with 4 writers running; automatic checkpoints and
 *     segment trimming;
 *   - files: newer format refused with CIDSTORE_EVERSION and left untouched,
 *     corrupt newest checkpoint falls back (or ECORRUPT, never silent loss),
 *     flipped byte mid-log is CIDSTORE_ECORRUPT, torn tails are cut;
 *   - bad options give CIDSTORE_EINVAL.
 *
 * Sizes shrink under ThreadSanitizer (CIDSTORE_TSAN).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cidstore.h"
#include "log/checkpoint.h"
#include "log/record.h"
#include "store/store_internal.h"
#include "test_support.h"

#ifdef CIDSTORE_TSAN
#define SCALE 2u
#else
#define SCALE 1u
#endif

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static char tdir[256];   /* per-test temporary directory */
static char spath[300];  /* the store directory inside it (created by open) */

static void dir_setup(void)
{
	tmpdir_make(tdir, sizeof(tdir), "cidstore-dur");
	snprintf(spath, sizeof(spath), "%s/store", tdir);
}

static void dir_teardown(void)
{
	tmpdir_remove(tdir);
}

static cid_t K(uint64_t a, uint64_t b)
{
	cid_t c = {{0x6b65790000000000ull ^ a, b, a * 0x9e3779b97f4a7c15ull, ~b}};
	return c;
}

static cid_t V(uint64_t a, uint64_t b)
{
	cid_t c = {{0x76616c0000000000ull ^ a, b * 0xff51afd7ed558ccdull, a, b}};
	return c;
}

static uint64_t rnd(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix64(*s);
}

static void opts_for(cidstore_options_t *o, cidstore_durability_t d)
{
	cidstore_options_init(o);
	o->dir = spath;
	o->durability = d;
	o->seed = 42;
	o->segment_bytes = 64 * 1024; /* 511 records: rotations happen */
	o->ring_records = 1024;
	o->sync_interval_ms = 5;
	o->checkpoint_wal_bytes = 0; /* manual checkpoints unless a test asks */
}

static cidstore_t *open_ok(const cidstore_options_t *o)
{
	cidstore_t *s = NULL;
	int rc = cidstore_open(o, &s);
	ck_assert_msg(rc == 0, "open %s: %d (%s)", o->dir ? o->dir : "(mem)", rc,
		      cidstore_strerror(rc));
	return s;
}

static void snap_expect_store(const struct snap *want, cidstore_t *s, const char *what)
{
	struct snap got = snap_take(s);
	snap_expect_equal(want, &got, what);
	snap_free(&got);
}

static void close_ok(cidstore_t *s)
{
	int rc = cidstore_close(s);
	ck_assert_msg(rc == 0, "close: %d (%s)", rc, cidstore_strerror(rc));
}

/* Reopens with o and compares with want. */
static void reopen_expect(const cidstore_options_t *o, const struct snap *want, const char *what)
{
	cidstore_t *s = open_ok(o);
	snap_expect_store(want, s, what);
	close_ok(s);
}

static int count_files(const char *dir, const char *prefix, const char *suffix)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	int n = 0;
	struct dirent *de;
	size_t pl = strlen(prefix), sl = strlen(suffix);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l >= pl + sl && strncmp(de->d_name, prefix, pl) == 0 &&
		    strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Name of the newest (largest LSN) file with prefix/suffix, "" if none. */
static void newest_file(const char *dir, const char *prefix, const char *suffix,
			char out[SDIR_NAME_MAX], int rank)
{
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	char names[64][SDIR_NAME_MAX];
	int n = 0;
	struct dirent *de;
	size_t pl = strlen(prefix), sl = strlen(suffix);
	while ((de = readdir(d)) != NULL && n < 64) {
		size_t l = strlen(de->d_name);
		if (l >= pl + sl && strncmp(de->d_name, prefix, pl) == 0 &&
		    strcmp(de->d_name + l - sl, suffix) == 0 && l < SDIR_NAME_MAX)
			snprintf(names[n++], SDIR_NAME_MAX, "%s", de->d_name);
	}
	closedir(d);
	/* names have fixed-width hex: lexical order is LSN order */
	qsort(names, (size_t)n, SDIR_NAME_MAX, (int (*)(const void *, const void *))strcmp);
	out[0] = 0;
	if (rank < n)
		snprintf(out, SDIR_NAME_MAX, "%s", names[n - 1 - rank]);
}

static void path_of(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", spath, name);
}

static void file_read(const char *name, uint8_t *buf, size_t n, off_t off)
{
	char p[400];
	path_of(p, sizeof(p), name);
	int fd = open(p, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, buf, n, off), (ssize_t)n);
	close(fd);
}

static void file_write(const char *name, const void *buf, size_t n, off_t off)
{
	char p[400];
	path_of(p, sizeof(p), name);
	int fd = open(p, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, buf, n, off), (ssize_t)n);
	close(fd);
}

static off_t file_size(const char *name)
{
	char p[400];
	path_of(p, sizeof(p), name);
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	return st.st_size;
}

/* A deterministic workload of single operations (and a few batches). */
static void workload(cidstore_t *s, uint64_t seed, unsigned nops, unsigned nkeys, unsigned nvals)
{
	uint64_t r = seed;
	for (unsigned i = 0; i < nops; i++) {
		uint64_t x = rnd(&r);
		cid_t k = K(x % nkeys, 7);
		cid_t v = V((x >> 20) % nvals, 3);
		unsigned kind = (unsigned)((x >> 40) % 20);
		if (kind < 12) {
			ck_assert_int_ge(cidstore_insert(s, &k, &v), 0);
		} else if (kind < 17) {
			ck_assert_int_ge(cidstore_delete_value(s, &k, &v), 0);
		} else if (kind < 18) {
			ck_assert_int_ge(cidstore_delete_key(s, &k), 0);
		} else {
			cidstore_op_t ops[3];
			for (int j = 0; j < 3; j++) {
				uint64_t y = rnd(&r);
				ops[j].op = (cidstore_opcode_t)(1 + y % 3);
				ops[j].key = K(y % nkeys, 7);
				ops[j].value = V((y >> 20) % nvals, 3);
			}
			ck_assert_int_ge(cidstore_apply(s, ops, 3), 0);
		}
	}
}

/* ------------------------------------------------------------------ */
/* basic reopen                                                        */
/* ------------------------------------------------------------------ */

START_TEST(reopen_identical)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	struct stat st;
	ck_assert_int_ne(stat(spath, &st), 0); /* open creates it */
	cidstore_t *s = open_ok(&o);
	ck_assert_int_eq(stat(spath, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));

	/* specific results first */
	cid_t k1 = K(1, 1), k2 = K(2, 2);
	cid_t a = V(1, 1), b = V(2, 2), c = V(3, 3), d = V(4, 4);
	ck_assert_int_eq(cidstore_insert(s, &k1, &a), 1);
	ck_assert_int_eq(cidstore_insert(s, &k1, &a), 0);
	ck_assert_int_eq(cidstore_insert(s, &k1, &b), 1);
	ck_assert_int_eq(cidstore_insert(s, &k1, &c), 1); /* spills past 2 */
	ck_assert_int_eq(cidstore_insert(s, &k1, &d), 1);
	ck_assert_int_eq(cidstore_delete_value(s, &k1, &b), 1);
	ck_assert_int_eq(cidstore_delete_value(s, &k1, &b), 0);
	ck_assert_int_eq(cidstore_insert(s, &k2, &a), 1);
	ck_assert_int_eq(cidstore_insert(s, &k2, &b), 1);
	ck_assert_int_eq(cidstore_delete_key(s, &k2), 2);
	ck_assert_int_eq(cidstore_delete_key(s, &k2), 0);
	ck_assert_int_eq(cidstore_insert(s, &k2, &c), 1);

	/* a bulk workload with rotations (> 511 records) */
	workload(s, 1, 3000 / SCALE + 600, 300, 6);
	struct snap want = snap_take(s);
	ck_assert_uint_gt(want.n, 100);
	cidstore_stats_t stt;
	ck_assert_int_eq(cidstore_stats(s, &stt), 0);
	ck_assert_int_eq(stt.durability, CIDSTORE_DURABILITY_SYNC);
	ck_assert_uint_eq(stt.values, want.n);
	ck_assert_uint_ge(stt.wal_durable_lsn, stt.wal_lsn);
	ck_assert(!stt.failed);
	close_ok(s);
	ck_assert_int_gt(count_files(spath, "wal-", ".log"), 1);

	s = open_ok(&o);
	snap_expect_store(&want, s, "after reopen");
	cid_t out[8];
	ck_assert_int_eq(cidstore_lookup(s, &k1, out, 8), 3);
	ck_assert_int_eq(cidstore_contains(s, &k1, &b), 0);
	ck_assert_int_eq(cidstore_contains(s, &k2, &c), 1);
	ck_assert_int_eq(cidstore_contains(s, &k2, &a), 0);
	/* the reopened store goes on logging where it left off */
	workload(s, 2, 500, 300, 6);
	snap_free(&want);
	want = snap_take(s);
	close_ok(s);
	/* ASYNC and parallel/serial replay read the same log */
	opts_for(&o, CIDSTORE_DURABILITY_ASYNC);
	o.recovery_threads = 1;
	reopen_expect(&o, &want, "reopen ASYNC, serial replay");
	o.recovery_threads = 4;
	reopen_expect(&o, &want, "reopen ASYNC, 4 replay threads");
	snap_free(&want);
}
END_TEST

START_TEST(batches_survive)
{
	for (int mode = 0; mode < 2; mode++) {
		cidstore_options_t o;
		opts_for(&o, mode ? CIDSTORE_DURABILITY_ASYNC : CIDSTORE_DURABILITY_SYNC);
		cidstore_t *s = open_ok(&o);
		cid_t k = K(100 + mode, 0), k2 = K(200 + mode, 0);
		cidstore_op_t ops[6] = {
			{CIDSTORE_OP_INSERT, k, V(1, 0)},
			{CIDSTORE_OP_INSERT, k, V(2, 0)},
			{CIDSTORE_OP_INSERT, k, V(3, 0)},
			{CIDSTORE_OP_INSERT, k, V(1, 0)}, /* no change */
			{CIDSTORE_OP_INSERT, k2, V(9, 0)},
			{CIDSTORE_OP_DELETE_VALUE, k, V(2, 0)},
		};
		ck_assert_int_eq(cidstore_apply(s, ops, 6), 5);
		ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 2);
		ck_assert_int_eq(cidstore_contains(s, &k2, &ops[4].value), 1);
		cidstore_op_t bad[2] = {{CIDSTORE_OP_INSERT, k2, V(7, 0)}, {(cidstore_opcode_t)9, k2, V(8, 0)}};
		ck_assert_int_eq(cidstore_apply(s, bad, 2), CIDSTORE_EINVAL);
		ck_assert_int_eq(cidstore_contains(s, &k2, &bad[0].value), 0);
		ck_assert_int_eq(cidstore_apply(s, NULL, 1), CIDSTORE_EINVAL);
		ck_assert_int_eq(cidstore_apply(s, ops, 0), 0);
		cidstore_op_t del[2] = {{CIDSTORE_OP_DELETE_KEY, k2, V(0, 0)},
					{CIDSTORE_OP_INSERT, k2, V(10, 0)}};
		ck_assert_int_eq(cidstore_apply(s, del, 2), 2);
		/* many batches, some large */
		for (int i = 0; i < 200; i++) {
			cidstore_op_t big[40];
			for (int j = 0; j < 40; j++) {
				big[j].op = j % 7 == 6 ? CIDSTORE_OP_DELETE_VALUE : CIDSTORE_OP_INSERT;
				big[j].key = K(1000 + (uint64_t)i % 37, (uint64_t)mode);
				big[j].value = V((uint64_t)j % 11, (uint64_t)i % 3);
			}
			ck_assert_int_ge(cidstore_apply(s, big, 40), 0);
		}
		struct snap want = snap_take(s);
		close_ok(s);
		reopen_expect(&o, &want, "batches after reopen");
		snap_free(&want);
	}
}
END_TEST

START_TEST(none_checkpoint_only)
{
	/* NONE with a directory: the checkpoint written at close is the only
	 * copy.  Then modes are mixed on the same directory. */
	cidstore_options_t o;
	struct snap want = {0};
	static const cidstore_durability_t seq[] = {
		CIDSTORE_DURABILITY_NONE, CIDSTORE_DURABILITY_NONE, CIDSTORE_DURABILITY_SYNC,
		CIDSTORE_DURABILITY_NONE, CIDSTORE_DURABILITY_ASYNC, CIDSTORE_DURABILITY_NONE,
		CIDSTORE_DURABILITY_NONE, CIDSTORE_DURABILITY_SYNC,
	};
	for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		opts_for(&o, seq[i]);
		cidstore_t *s = open_ok(&o);
		char what[64];
		snprintf(what, sizeof(what), "phase %zu (durability %d) at open", i, (int)seq[i]);
		snap_expect_store(&want, s, what);
		workload(s, 100 + i, 700, 120, 5);
		if (seq[i] == CIDSTORE_DURABILITY_NONE) {
			cidstore_stats_t st;
			ck_assert_int_eq(cidstore_stats(s, &st), 0);
			ck_assert_int_eq(st.durability, CIDSTORE_DURABILITY_NONE);
			ck_assert_int_eq(cidstore_sync(s), 0);
		}
		snap_free(&want);
		want = snap_take(s);
		close_ok(s);
		if (i == 0) {
			ck_assert_int_eq(count_files(spath, "wal-", ".log"), 0);
			ck_assert_int_eq(count_files(spath, "ckpt-", ".ckpt"), 1);
		}
	}
	opts_for(&o, CIDSTORE_DURABILITY_NONE);
	reopen_expect(&o, &want, "final");
	snap_free(&want);
}
END_TEST

/* ------------------------------------------------------------------ */
/* directory lock                                                      */
/* ------------------------------------------------------------------ */

START_TEST(second_open_busy)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	/* the child is forked before this process opens anything, so its copy
	 * of the in-process registry is empty: only the flock can stop it */
	int go[2], res[2];
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(res), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char c;
		int out[2] = {99, 99};
		for (int i = 0; i < 2; i++) {
			if (read(go[0], &c, 1) != 1)
				_exit(3);
			cidstore_t *x = NULL;
			out[i] = cidstore_open(&o, &x);
			if (out[i] == 0) {
				cid_t k = K(77, 77), v = V(77, 77);
				if (cidstore_insert(x, &k, &v) != 1 || cidstore_close(x) != 0)
					out[i] = 98;
			}
			if (write(res[1], &out[i], sizeof(int)) != sizeof(int))
				_exit(4);
		}
		_exit(0);
	}
	cidstore_t *s = open_ok(&o);
	cid_t k = K(1, 0), v = V(1, 0);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	/* same process: same path and an alias of it */
	cidstore_t *s2 = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s2), CIDSTORE_EBUSY);
	ck_assert_ptr_null(s2);
	char alias[400];
	snprintf(alias, sizeof(alias), "%s/../store/", spath);
	cidstore_options_t oa = o;
	oa.dir = alias;
	ck_assert_int_eq(cidstore_open(&oa, &s2), CIDSTORE_EBUSY);
	oa.durability = CIDSTORE_DURABILITY_NONE;
	ck_assert_int_eq(cidstore_open(&oa, &s2), CIDSTORE_EBUSY);
	/* the failed opens did not drop the lock: another process is refused */
	int crc;
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(read(res[0], &crc, sizeof(crc)), (ssize_t)sizeof(crc));
	ck_assert_msg(crc == CIDSTORE_EBUSY, "open from another process: %d, want EBUSY", crc);
	/* and the first store still works */
	cid_t v2 = V(2, 0);
	ck_assert_int_eq(cidstore_insert(s, &k, &v2), 1);
	ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 2);
	ck_assert_int_eq(cidstore_delete_value(s, &k, &v), 1);
	ck_assert_int_eq(cidstore_sync(s), 0);
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert(!st.failed);
	close_ok(s);
	/* once closed, the other process gets it */
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	ck_assert_int_eq(read(res[0], &crc, sizeof(crc)), (ssize_t)sizeof(crc));
	ck_assert_msg(crc == 0, "open from another process after close: %d", crc);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(go[0]); close(go[1]); close(res[0]); close(res[1]);
	/* and the child's write is in the store */
	s = open_ok(&o);
	cid_t k77 = K(77, 77), v77 = V(77, 77);
	ck_assert_int_eq(cidstore_contains(s, &k77, &v77), 1);
	ck_assert_int_eq(cidstore_contains(s, &k, &v2), 1);
	ck_assert_int_eq(cidstore_contains(s, &k, &v), 0);
	close_ok(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* ordering proof                                                      */
/* ------------------------------------------------------------------ */

#define ORD_THREADS 8
#define ORD_KEYS 5
#define ORD_VALS 7

struct ord_arg {
	cidstore_t *s;
	uint64_t seed;
	unsigned ops;
	unsigned id;
	atomic_int *go;
	int err;
};

static void *ord_main(void *p)
{
	struct ord_arg *a = p;
	uint64_t r = a->seed * 1000 + a->id;
	while (!atomic_load_explicit(a->go, memory_order_acquire))
		;
	for (unsigned i = 0; i < a->ops && !a->err; i++) {
		uint64_t x = rnd(&r);
		cid_t k = K(x % ORD_KEYS, 0);
		cid_t v = V((x >> 16) % ORD_VALS, 0);
		unsigned kind = (unsigned)((x >> 32) % 32);
		long rc;
		if (kind < 16) {
			rc = cidstore_insert(a->s, &k, &v);
		} else if (kind < 27) {
			rc = cidstore_delete_value(a->s, &k, &v);
		} else if (kind < 29) {
			rc = cidstore_delete_key(a->s, &k);
		} else if (kind < 31 || a->id >= 2) {
			cid_t out[ORD_VALS + 2];
			rc = cidstore_lookup(a->s, &k, out, ORD_VALS + 2);
			if (rc > ORD_VALS)
				rc = -100;
		} else {
			/* threads 0 and 1 also run small batches on the hot keys */
			cidstore_op_t ops[3];
			for (int j = 0; j < 3; j++) {
				uint64_t y = rnd(&r);
				ops[j].op = (cidstore_opcode_t)(1 + y % 3);
				ops[j].key = K(y % ORD_KEYS, 0);
				ops[j].value = V((y >> 16) % ORD_VALS, 0);
			}
			rc = cidstore_apply(a->s, ops, 3);
		}
		if (rc < 0)
			a->err = (int)rc;
	}
	return NULL;
}

START_TEST(ordering_proof)
{
	const unsigned rounds = SCALE > 1 ? 2 : 4;
	const unsigned ops = 24000 / SCALE / (SCALE > 1 ? 2 : 1);
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_ASYNC);
	struct snap want = {0};
	for (unsigned round = 0; round < rounds; round++) {
		o.recovery_threads = round % 2 ? 1 : 3;
		cidstore_t *s = open_ok(&o);
		snap_expect_store(&want, s, "ordering: state at open");
		pthread_t th[ORD_THREADS];
		struct ord_arg a[ORD_THREADS];
		atomic_int go = 0;
		for (unsigned t = 0; t < ORD_THREADS; t++) {
			a[t] = (struct ord_arg){s, 0xabc0 + round, ops, t, &go, 0};
			ck_assert_int_eq(pthread_create(&th[t], NULL, ord_main, &a[t]), 0);
		}
		atomic_store_explicit(&go, 1, memory_order_release);
		for (unsigned t = 0; t < ORD_THREADS; t++) {
			pthread_join(th[t], NULL);
			ck_assert_msg(a[t].err == 0, "thread %u: error %d", t, a[t].err);
		}
		snap_free(&want);
		want = snap_take(s);
		cidstore_stats_t st;
		ck_assert_int_eq(cidstore_stats(s, &st), 0);
		ck_assert(!st.failed);
		close_ok(s);
		s = open_ok(&o);
		char what[64];
		snprintf(what, sizeof(what), "ordering round %u after reopen", round);
		snap_expect_store(&want, s, what);
		close_ok(s);
	}
	snap_free(&want);
}
END_TEST

/* ------------------------------------------------------------------ */
/* SYNC group commit, cidstore_sync                                    */
/* ------------------------------------------------------------------ */

struct gc_arg {
	cidstore_t *s;
	unsigned id, n;
	int err;
};

static void *gc_main(void *p)
{
	struct gc_arg *a = p;
	for (unsigned i = 0; i < a->n && !a->err; i++) {
		cid_t k = K(5000 + a->id, i), v = V(a->id, i);
		int rc = cidstore_insert(a->s, &k, &v);
		if (rc != 1)
			a->err = rc < 0 ? rc : -100;
	}
	return NULL;
}

START_TEST(sync_group_commit)
{
	const unsigned nth = 16, per = 400 / SCALE;
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	o.segment_bytes = 4 << 20; /* no rotation syncs in the count */
	o.sync_interval_ms = 1000;
	cidstore_t *s = open_ok(&o);
	cidstore_stats_t st0, st;
	ck_assert_int_eq(cidstore_stats(s, &st0), 0);
	pthread_t th[16];
	struct gc_arg a[16];
	for (unsigned t = 0; t < nth; t++) {
		a[t] = (struct gc_arg){s, t, per, 0};
		ck_assert_int_eq(pthread_create(&th[t], NULL, gc_main, &a[t]), 0);
	}
	for (unsigned t = 0; t < nth; t++) {
		pthread_join(th[t], NULL);
		ck_assert_msg(a[t].err == 0, "thread %u: %d", t, a[t].err);
	}
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	uint64_t recs = st.wal_records - st0.wal_records;
	uint64_t syncs = st.wal_fsyncs - st0.wal_fsyncs;
	ck_assert_uint_eq(recs, (uint64_t)nth * per);
	/* every SYNC insert returned after its record was durable */
	ck_assert_uint_eq(st.wal_durable_lsn, st.wal_lsn);
	ck_assert_msg(syncs * 3 <= recs,
		      "group commit: %llu fdatasyncs for %llu records",
		      (unsigned long long)syncs, (unsigned long long)recs);
	fprintf(stderr, "sync_group_commit: %llu records, %llu fdatasyncs (%.1f records each)\n",
		(unsigned long long)recs, (unsigned long long)syncs,
		syncs ? (double)recs / (double)syncs : 0.0);
	struct snap want = snap_take(s);
	ck_assert_uint_eq(want.n, (uint64_t)nth * per);
	close_ok(s);
	reopen_expect(&o, &want, "group commit reopen");
	snap_free(&want);
}
END_TEST

START_TEST(sync_makes_async_durable)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_ASYNC);
	o.sync_interval_ms = 60000; /* the timer never syncs during the test */
	o.segment_bytes = 4 << 20;
	cidstore_t *s = open_ok(&o);
	cidstore_stats_t st;
	for (unsigned i = 0; i < 2000; i++) {
		cid_t k = K(i, 9), v = V(i, 9);
		ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	}
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_uint_eq(st.wal_lsn, 2000);
	ck_assert_msg(st.wal_durable_lsn < st.wal_lsn,
		      "ASYNC with a 60 s interval: durable %llu already at %llu",
		      (unsigned long long)st.wal_durable_lsn, (unsigned long long)st.wal_lsn);
	ck_assert_int_eq(cidstore_sync(s), 0);
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_uint_ge(st.wal_durable_lsn, st.wal_lsn);
	ck_assert_uint_ge(st.wal_durable_lsn, 2000);
	close_ok(s);

	/* the sync interval bounds how long a record stays volatile */
	o.sync_interval_ms = 20;
	s = open_ok(&o);
	cid_t k = K(1, 1), v = V(1, 1);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	uint64_t lsn = 0;
	for (int i = 0; i < 200; i++) {
		ck_assert_int_eq(cidstore_stats(s, &st), 0);
		lsn = st.wal_lsn;
		if (st.wal_durable_lsn >= lsn)
			break;
		usleep(10 * 1000);
	}
	ck_assert_msg(st.wal_durable_lsn >= lsn, "ASYNC record not synced within 2 s (interval 20 ms)");
	close_ok(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* checkpoints                                                         */
/* ------------------------------------------------------------------ */

struct cw_arg {
	cidstore_t *s;
	unsigned id;
	atomic_int *stop;
	unsigned long done;
	int err;
};

static void *cw_main(void *p)
{
	struct cw_arg *a = p;
	uint64_t r = 0x5eed0000ull + a->id;
	while (!atomic_load_explicit(a->stop, memory_order_acquire) && !a->err) {
		uint64_t x = rnd(&r);
		cid_t k = K(x % 400, 11);
		cid_t v = V((x >> 20) % 6, 11);
		unsigned kind = (unsigned)((x >> 40) % 16);
		long rc;
		if (kind < 9)
			rc = cidstore_insert(a->s, &k, &v);
		else if (kind < 13)
			rc = cidstore_delete_value(a->s, &k, &v);
		else if (kind < 14)
			rc = cidstore_delete_key(a->s, &k);
		else {
			cidstore_op_t ops[4];
			for (int j = 0; j < 4; j++) {
				uint64_t y = rnd(&r);
				ops[j].op = (cidstore_opcode_t)(1 + y % 2);
				ops[j].key = K(y % 400, 11);
				ops[j].value = V((y >> 20) % 6, 11);
			}
			rc = cidstore_apply(a->s, ops, 4);
		}
		if (rc < 0)
			a->err = (int)rc;
		a->done++;
	}
	return NULL;
}

START_TEST(checkpoint_online)
{
	for (int mode = 0; mode < 2; mode++) {
		cidstore_options_t o;
		opts_for(&o, mode ? CIDSTORE_DURABILITY_SYNC : CIDSTORE_DURABILITY_ASYNC);
		o.segment_bytes = 16 * 1024;
		cidstore_t *s = open_ok(&o);
		atomic_int stop = 0;
		pthread_t th[4];
		struct cw_arg a[4];
		for (unsigned t = 0; t < 4; t++) {
			a[t] = (struct cw_arg){s, t + 4 * (unsigned)mode, &stop, 0, 0};
			ck_assert_int_eq(pthread_create(&th[t], NULL, cw_main, &a[t]), 0);
		}
		const int nck = SCALE > 1 ? 4 : 8;
		for (int i = 0; i < nck; i++) {
			usleep(40 * 1000);
			int rc = cidstore_checkpoint(s);
			ck_assert_msg(rc == 0, "checkpoint %d: %d (%s)", i, rc, cidstore_strerror(rc));
		}
		usleep(20 * 1000);
		atomic_store_explicit(&stop, 1, memory_order_release);
		unsigned long total = 0;
		for (unsigned t = 0; t < 4; t++) {
			pthread_join(th[t], NULL);
			ck_assert_msg(a[t].err == 0, "writer %u: %d", t, a[t].err);
			total += a[t].done;
		}
		ck_assert_uint_gt(total, 100);
		cidstore_stats_t st;
		ck_assert_int_eq(cidstore_stats(s, &st), 0);
		ck_assert_uint_eq(st.checkpoints, (uint64_t)nck);
		ck_assert(!st.failed);
		struct snap want = snap_take(s);
		close_ok(s);
		ck_assert_int_le(count_files(spath, "ckpt-", ".ckpt"), (int)CKPT_KEEP);
		ck_assert_int_eq(count_files(spath, "ckpt-", ".ckpt.tmp"), 0);
		s = open_ok(&o);
		ck_assert(s->recov.have_ckpt);
		ck_assert(!s->recov.ckpt_fallback);
		snap_expect_store(&want, s, "after online checkpoints");
		/* a checkpoint right at the end, then reopen: nothing to replay */
		ck_assert_int_eq(cidstore_checkpoint(s), 0);
		close_ok(s);
		reopen_expect(&o, &want, "after final checkpoint");
		snap_free(&want);
		dir_teardown();
		dir_setup();
	}
}
END_TEST

START_TEST(checkpoint_auto)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_ASYNC);
	o.segment_bytes = 16 * 1024;          /* 127 records per segment */
	o.checkpoint_wal_bytes = 64 * 1024;   /* about 4 segments */
	cidstore_t *s = open_ok(&o);
	const unsigned chunks = SCALE > 1 ? 30 : 60, per = 500;
	int maxseg = 0;
	unsigned n = 0;
	for (unsigned c = 0; c < chunks; c++) {
		for (unsigned i = 0; i < per; i++, n++) {
			cid_t k = K(n % 3000, 12), v = V(n / 3000, 12);
			ck_assert_int_ge(cidstore_insert(s, &k, &v), 0);
		}
		usleep(50 * 1000);
		int segs = count_files(spath, "wal-", ".log");
		if (segs > maxseg)
			maxseg = segs;
	}
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	/* written: chunks * per records = chunks * 4 segments */
	uint64_t written_segs = st.wal_records / 127;
	ck_assert_uint_ge(written_segs, (uint64_t)chunks * 3);
	ck_assert_msg(st.checkpoints > 0, "no automatic checkpoint");
	/* the live log spans at most the two kept checkpoints' intervals, each
	 * max(checkpoint_wal_bytes, checkpoint size) plus a test's lateness
	 * (maint.c: the automatic checkpoint's policy) */
	uint64_t due = st.checkpoint_bytes > o.checkpoint_wal_bytes ? st.checkpoint_bytes
								     : o.checkpoint_wal_bytes;
	uint64_t seg_bound = 3 * due / o.segment_bytes + 8;
	ck_assert_msg((uint64_t)maxseg <= seg_bound && (uint64_t)maxseg * 2 < written_segs,
		      "segments not trimmed: up to %d live (bound %llu) of %llu written (%llu checkpoints)",
		      maxseg, (unsigned long long)seg_bound, (unsigned long long)written_segs,
		      (unsigned long long)st.checkpoints);
	fprintf(stderr, "checkpoint_auto: %llu checkpoints, at most %d segments live of %llu written\n",
		(unsigned long long)st.checkpoints, maxseg, (unsigned long long)written_segs);
	struct snap want = snap_take(s);
	close_ok(s);
	/* Counted once the automatic checkpointer has stopped: while one runs,
	 * a third file exists between its rename and the pruning after it. */
	ck_assert_int_le(count_files(spath, "ckpt-", ".ckpt"), (int)CKPT_KEEP);
	reopen_expect(&o, &want, "after automatic checkpoints");
	snap_free(&want);
}
END_TEST

/* ------------------------------------------------------------------ */
/* files: versions, corruption, torn tails                             */
/* ------------------------------------------------------------------ */

/* Makes a store with a few hundred records in one segment (64 KiB) and
 * returns its state; *last_off = offset of the last record. */
static struct snap make_log(unsigned nops, off_t *last_off, struct snap *before_last)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	cidstore_t *s = open_ok(&o);
	for (unsigned i = 0; i + 1 < nops; i++) {
		cid_t k = K(i % 50, 13), v = V(i % 7, 13);
		if (i % 5 == 4)
			ck_assert_int_ge(cidstore_delete_value(s, &k, &v), 0);
		else
			ck_assert_int_ge(cidstore_insert(s, &k, &v), 0);
	}
	if (before_last)
		*before_last = snap_take(s);
	cid_t k = K(999, 13), v = V(999, 13);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	struct snap sn = snap_take(s);
	close_ok(s);
	ck_assert_int_eq(count_files(spath, "wal-", ".log"), 1);
	char name[SDIR_NAME_MAX];
	newest_file(spath, "wal-", ".log", name, 0);
	ck_assert_str_eq(name, "wal-0000000000000001.log");
	/* the last record: LSN st.wal_lsn at slot st.wal_lsn (header at 0) */
	*last_off = (off_t)(st.wal_lsn * WAL_REC_SIZE);
	uint8_t rec[WAL_REC_SIZE];
	file_read(name, rec, sizeof(rec), *last_off);
	struct wal_rec r;
	ck_assert_int_eq(rec_decode(rec, &r), 0);
	ck_assert_uint_eq(r.lsn, st.wal_lsn);
	ck_assert(memcmp(&r.key, &k, sizeof(k)) == 0);
	file_read(name, rec, sizeof(rec), *last_off + WAL_REC_SIZE);
	ck_assert_int_eq(rec_decode(rec, &r), REC_ZERO);
	return sn;
}

static void expect_open_fails(int want_rc, const char *what)
{
	struct dirimg before;
	dirimg_take(&before, spath);
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	cidstore_t *s = NULL;
	int rc = cidstore_open(&o, &s);
	ck_assert_msg(rc == want_rc, "%s: open returned %d (%s), want %d", what, rc,
		      cidstore_strerror(rc), want_rc);
	ck_assert_ptr_null(s);
	dirimg_expect_unchanged(&before, spath);
	/* the failed open released the lock: a NONE open... would also fail the
	 * same way, so check the lock directly through the same options */
	rc = cidstore_open(&o, &s);
	ck_assert_msg(rc == want_rc, "%s: second try returned %d", what, rc);
}

START_TEST(newer_segment_version)
{
	for (int how = 0; how < 2; how++) {
		off_t last;
		struct snap sn = make_log(200, &last, NULL);
		const char *name = "wal-0000000000000001.log";
		uint8_t rec[WAL_REC_SIZE];
		if (how == 0) {
			/* segment header: version field (bytes 32..35) = 2, CRC redone */
			file_read(name, rec, sizeof(rec), 0);
			rec[32] = 2;
			uint32_t crc = rec_crc32c(rec, 124);
			for (int i = 0; i < 4; i++)
				rec[124 + i] = (uint8_t)(crc >> (8 * i));
			file_write(name, rec, sizeof(rec), 0);
		} else {
			/* a record in the middle written by a newer writer: version
			 * bits 2 (checked before the CRC) */
			off_t off = 100 * WAL_REC_SIZE;
			file_read(name, rec, sizeof(rec), off);
			rec[0] = (uint8_t)((2u << 6) | (rec[0] & 0x3f));
			uint32_t crc = rec_crc32c(rec, 124);
			for (int i = 0; i < 4; i++)
				rec[124 + i] = (uint8_t)(crc >> (8 * i));
			file_write(name, rec, sizeof(rec), off);
		}
		expect_open_fails(CIDSTORE_EVERSION, how ? "newer record version" : "newer segment header");
		snap_free(&sn);
		dir_teardown();
		dir_setup();
	}
}
END_TEST

static void ckpt_set_version(const char *name, uint32_t version)
{
	uint8_t h[CKPT_HEADER_BYTES];
	file_read(name, h, sizeof(h), 0);
	ck_assert(memcmp(h, CKPT_MAGIC, 8) == 0);
	for (int i = 0; i < 4; i++)
		h[8 + i] = (uint8_t)(version >> (8 * i));
	uint32_t crc = rec_crc32c(h, CKPT_HEADER_BYTES - 4);
	for (int i = 0; i < 4; i++)
		h[60 + i] = (uint8_t)(crc >> (8 * i));
	file_write(name, h, sizeof(h), 0);
}

START_TEST(newer_checkpoint_version)
{
	/* NONE store: the checkpoint is everything */
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_NONE);
	cidstore_t *s = open_ok(&o);
	workload(s, 5, 400, 60, 5);
	close_ok(s);
	char name[SDIR_NAME_MAX];
	newest_file(spath, "ckpt-", ".ckpt", name, 0);
	ck_assert_str_ne(name, "");
	ckpt_set_version(name, 2);
	expect_open_fails(CIDSTORE_EVERSION, "newer checkpoint (NONE store)");

	/* a SYNC store with two checkpoints: the newest one newer -> refused,
	 * never a fallback to the older one */
	dir_teardown();
	dir_setup();
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	s = open_ok(&o);
	workload(s, 6, 400, 60, 5);
	ck_assert_int_eq(cidstore_checkpoint(s), 0);
	workload(s, 7, 400, 60, 5);
	ck_assert_int_eq(cidstore_checkpoint(s), 0);
	workload(s, 8, 100, 60, 5);
	close_ok(s);
	ck_assert_int_eq(count_files(spath, "ckpt-", ".ckpt"), 2);
	newest_file(spath, "ckpt-", ".ckpt", name, 0);
	ckpt_set_version(name, 7);
	expect_open_fails(CIDSTORE_EVERSION, "newer newest checkpoint");
}
END_TEST

/* A refused open must not write anything: after the refusal is undone
 * (the version byte set back), the store opens with all its data. */
START_TEST(failed_open_keeps_data)
{
	for (int mode = 0; mode < 2; mode++) {
		cidstore_options_t o;
		opts_for(&o, mode ? CIDSTORE_DURABILITY_SYNC : CIDSTORE_DURABILITY_NONE);
		cidstore_t *s = open_ok(&o);
		workload(s, 40 + (uint64_t)mode, 500, 60, 5);
		if (mode)
			ck_assert_int_eq(cidstore_checkpoint(s), 0);
		workload(s, 50 + (uint64_t)mode, 100, 60, 5);
		struct snap want = snap_take(s);
		ck_assert_uint_gt(want.n, 20);
		close_ok(s);
		char name[SDIR_NAME_MAX];
		newest_file(spath, "ckpt-", ".ckpt", name, 0);
		ck_assert_str_ne(name, "");
		ckpt_set_version(name, 2);
		s = NULL;
		ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EVERSION);
		ckpt_set_version(name, CKPT_FORMAT_VERSION);
		s = open_ok(&o);
		snap_expect_store(&want, s, mode ? "SYNC store after a refused open"
						 : "NONE store after a refused open");
		close_ok(s);
		snap_free(&want);
		dir_teardown();
		dir_setup();
	}
}
END_TEST

static void flip_byte(const char *name, off_t off)
{
	uint8_t b;
	file_read(name, &b, 1, off);
	b ^= 0x5a;
	file_write(name, &b, 1, off);
}

START_TEST(corrupt_newest_checkpoint)
{
	for (int how = 0; how < 3; how++) {
		cidstore_options_t o;
		opts_for(&o, CIDSTORE_DURABILITY_SYNC);
		o.segment_bytes = 4096; /* 31 records: old segments get trimmed */
		cidstore_t *s = open_ok(&o);
		workload(s, 20, 600, 80, 5);
		ck_assert_int_eq(cidstore_checkpoint(s), 0);
		workload(s, 21, 600, 80, 5);
		ck_assert_int_eq(cidstore_checkpoint(s), 0);
		workload(s, 22, 300, 80, 5);
		struct snap want = snap_take(s);
		close_ok(s);
		ck_assert_int_eq(count_files(spath, "ckpt-", ".ckpt"), 2);
		char newest[SDIR_NAME_MAX], older[SDIR_NAME_MAX];
		newest_file(spath, "ckpt-", ".ckpt", newest, 0);
		newest_file(spath, "ckpt-", ".ckpt", older, 1);
		off_t sz = file_size(newest);
		if (how == 0) {
			flip_byte(newest, CKPT_HEADER_BYTES + 100); /* inside the first block */
		} else if (how == 1) {
			char p[400];
			path_of(p, sizeof(p), newest);
			ck_assert_int_eq(truncate(p, sz - 70), 0); /* trailer gone */
		} else {
			flip_byte(newest, CKPT_HEADER_BYTES + 100);
			flip_byte(older, 20); /* header of the older one too */
		}
		s = NULL;
		int rc = cidstore_open(&o, &s);
		if (how < 2) {
			ck_assert_msg(rc == 0 || rc == CIDSTORE_ECORRUPT, "case %d: open %d", how, rc);
			if (rc == 0) {
				ck_assert(s->recov.ckpt_fallback);
				snap_expect_store(&want, s, "after checkpoint fallback");
				close_ok(s);
			}
			fprintf(stderr, "corrupt_newest_checkpoint case %d: %s\n", how,
				rc == 0 ? "fell back to the older checkpoint" : "ECORRUPT");
		} else {
			/* both corrupt and the log before the older one trimmed:
			 * no base that loses nothing */
			ck_assert_msg(rc == CIDSTORE_ECORRUPT, "both checkpoints corrupt: open %d", rc);
		}
		snap_free(&want);
		dir_teardown();
		dir_setup();
	}
}
END_TEST

START_TEST(flipped_mid_log)
{
	off_t last;
	struct snap sn = make_log(300, &last, NULL);
	flip_byte("wal-0000000000000001.log", 150 * WAL_REC_SIZE + 40); /* key of LSN 150 */
	expect_open_fails(CIDSTORE_ECORRUPT, "flipped byte mid-log");
	snap_free(&sn);
	/* and a flipped CRC byte of an early record */
	dir_teardown();
	dir_setup();
	sn = make_log(300, &last, NULL);
	flip_byte("wal-0000000000000001.log", 2 * WAL_REC_SIZE + 125);
	expect_open_fails(CIDSTORE_ECORRUPT, "flipped CRC byte early in the log");
	snap_free(&sn);
}
END_TEST

/* A segment shorter than its header says is damage, never a torn tail: a
 * crash cannot make one (segments are preallocated before the header is
 * written), and cutting there would lose synced records without a word.
 * The case: 10 SYNC inserts, close, truncate to 768 bytes. */
START_TEST(truncated_segment)
{
	const off_t cuts[] = {768, 11 * WAL_REC_SIZE, 11 * WAL_REC_SIZE + 64, 4096, 128};
	for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
		dir_teardown();
		dir_setup();
		cidstore_options_t o;
		opts_for(&o, CIDSTORE_DURABILITY_SYNC);
		cidstore_t *s = NULL;
		ck_assert_int_eq(cidstore_open(&o, &s), 0);
		for (uint64_t i = 0; i < 10; i++) {
			cid_t k = K(i, 60), v = V(i, 60);
			ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
		}
		close_ok(s);
		char p[400];
		path_of(p, sizeof(p), "wal-0000000000000001.log");
		ck_assert_int_eq(truncate(p, cuts[c]), 0);
		char what[64];
		snprintf(what, sizeof(what), "segment truncated to %lld bytes", (long long)cuts[c]);
		expect_open_fails(CIDSTORE_ECORRUPT, what);
		cidstore_verify_result_t v;
		ck_assert_int_eq(cidstore_verify(spath, &v), CIDSTORE_ECORRUPT);
		ck_assert_msg(strstr(v.message, "wal-0000000000000001.log") &&
				      strstr(v.message, "truncated"),
			      "%s: verify says %s", what, v.message);
		cidstore_wal_summary_t sum;
		ck_assert_int_eq(cidstore_wal_read(spath, 0, NULL, NULL, &sum), CIDSTORE_ECORRUPT);
	}
}
END_TEST

START_TEST(torn_tail)
{
	for (int how = 0; how < 4; how++) {
		off_t last;
		struct snap before_last;
		struct snap all = make_log(300, &last, &before_last);
		const char *name = "wal-0000000000000001.log";
		const struct snap *want = &before_last;
		uint8_t g[WAL_REC_SIZE];
		uint64_t r = 77 + (uint64_t)how;
		for (size_t i = 0; i < sizeof(g); i += 8) {
			uint64_t x = rnd(&r);
			memcpy(g + i, &x, 8);
		}
		switch (how) {
		case 0: { /* last record's second half never reached the disk */
			uint8_t z[64] = {0};
			file_write(name, z, sizeof(z), last + 64);
			break;
		}
		case 1: /* the middle of the last record is garbage (a torn sector) */
			file_write(name, g, 48, last + 40);
			break;
		case 2: /* garbage in the 128 bytes after the last valid record */
			file_write(name, g, sizeof(g), last + WAL_REC_SIZE);
			want = &all;
			break;
		default: /* garbage over the last record itself */
			file_write(name, g, sizeof(g), last);
			break;
		}
		cidstore_options_t o;
		opts_for(&o, CIDSTORE_DURABILITY_SYNC);
		cidstore_t *s = NULL;
		int rc = cidstore_open(&o, &s);
		ck_assert_msg(rc == 0, "torn case %d: open %d (%s)", how, rc, cidstore_strerror(rc));
		ck_assert(s->recov.torn);
		char what[64];
		snprintf(what, sizeof(what), "torn tail case %d", how);
		snap_expect_store(want, s, what);
		/* go on writing over the cut tail, then reopen */
		workload(s, 30 + (uint64_t)how, 400, 40, 5);
		struct snap now = snap_take(s);
		close_ok(s);
		s = open_ok(&o);
		ck_assert(!s->recov.torn);
		snprintf(what, sizeof(what), "torn tail case %d, written after the cut", how);
		snap_expect_store(&now, s, what);
		close_ok(s);
		snap_free(&now);
		snap_free(&all);
		snap_free(&before_last);
		dir_teardown();
		dir_setup();
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* bad options                                                         */
/* ------------------------------------------------------------------ */

/* META keeps the store's routing seed: a newer version is refused, a
 * damaged one is reported, and the data files are left alone either way. */
START_TEST(meta_file)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	cidstore_t *s = open_ok(&o);
	cid_t k = K(1, 30), v = V(1, 30);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	close_ok(s);
	uint8_t m[40], orig[40];
	file_read("META", m, sizeof(m), 0);
	memcpy(orig, m, sizeof(m));
	ck_assert(memcmp(m, "CIDSMETA", 8) == 0);
	uint64_t seed = 0;
	for (int i = 0; i < 8; i++)
		seed |= (uint64_t)m[16 + i] << (8 * i);
	ck_assert_uint_eq(seed, 42);
	/* a different seed in the options: the store keeps its own */
	o.seed = 7;
	s = open_ok(&o);
	ck_assert_int_eq(cidstore_contains(s, &k, &v), 1);
	close_ok(s);
	file_read("META", m, sizeof(m), 0);
	ck_assert(memcmp(m, orig, sizeof(m)) == 0);
	/* flipped byte in the seed */
	m[17] ^= 0x10;
	file_write("META", m, sizeof(m), 0);
	expect_open_fails(CIDSTORE_ECORRUPT, "damaged META");
	/* newer version with a valid CRC */
	memcpy(m, orig, sizeof(m));
	m[8] = 2;
	uint32_t crc = rec_crc32c(m, 36);
	for (int i = 0; i < 4; i++)
		m[36 + i] = (uint8_t)(crc >> (8 * i));
	file_write("META", m, sizeof(m), 0);
	expect_open_fails(CIDSTORE_EVERSION, "newer META");
	/* restored: the data is all there */
	file_write("META", orig, sizeof(orig), 0);
	s = open_ok(&o);
	ck_assert_int_eq(cidstore_contains(s, &k, &v), 1);
	close_ok(s);
}
END_TEST

START_TEST(bad_options)
{
	cidstore_options_t o;
	cidstore_t *s = NULL;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	o.dir = "";
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	o.segment_bytes = 512;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);
	o.segment_bytes = 0;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	o.ring_records = 1000;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);
	o.ring_records = 0;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	o.durability = (cidstore_durability_t)7;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_open(NULL, &s), CIDSTORE_EINVAL);
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	ck_assert_int_eq(cidstore_open(&o, NULL), CIDSTORE_EINVAL);
	/* a segment size that is not a multiple of the record size */
	o.segment_bytes = 5000;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);
	ck_assert_ptr_null(s);
	/* a file where the directory should be */
	char p[400];
	snprintf(p, sizeof(p), "%s/plainfile", tdir);
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	o.dir = p;
	ck_assert_int_lt(cidstore_open(&o, &s), 0);
	/* nothing stayed locked by the failed opens */
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	s = open_ok(&o);
	ck_assert_int_eq(cidstore_checkpoint(NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_sync(NULL), CIDSTORE_EINVAL);
	close_ok(s);
	/* in-memory store: checkpoint is not supported, sync is a no-op */
	cidstore_options_init(&o);
	s = open_ok(&o);
	ck_assert_int_eq(cidstore_checkpoint(s), CIDSTORE_ENOTSUP);
	ck_assert_int_eq(cidstore_sync(s), 0);
	close_ok(s);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("durable");
	TCase *tc = tcase_create("durable");
	tcase_set_timeout(tc, 600);
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_test(tc, reopen_identical);
	tcase_add_test(tc, batches_survive);
	tcase_add_test(tc, none_checkpoint_only);
	tcase_add_test(tc, second_open_busy);
	tcase_add_test(tc, ordering_proof);
	tcase_add_test(tc, sync_group_commit);
	tcase_add_test(tc, sync_makes_async_durable);
	tcase_add_test(tc, checkpoint_online);
	tcase_add_test(tc, checkpoint_auto);
	tcase_add_test(tc, newer_segment_version);
	tcase_add_test(tc, newer_checkpoint_version);
	tcase_add_test(tc, failed_open_keeps_data);
	tcase_add_test(tc, corrupt_newest_checkpoint);
	tcase_add_test(tc, flipped_mid_log);
	tcase_add_test(tc, torn_tail);
	tcase_add_test(tc, truncated_segment);
	tcase_add_test(tc, bad_options);
	tcase_add_test(tc, meta_file);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
