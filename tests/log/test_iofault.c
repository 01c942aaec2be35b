/*
 * test_iofault.c — the store's answer to I/O faults, through a
 * fault-injecting struct log_io that wraps log_io_posix():
 *
 *   - fail the Nth fdatasync / the Nth pwrite (counted from when the test
 *     arms the fault);
 *   - "drop unsynced data" (SQLite test6.c style): every pwrite saves the
 *     bytes it overwrites (and the file size) in an undo list of its file;
 *     a successful fdatasync / fsync of the file forgets that list.  At a
 *     simulated crash every later operation fails (nothing more reaches the
 *     disk and no sync succeeds, so nothing more is acknowledged); after
 *     the store is closed the undo lists are played backwards, which leaves
 *     each file as its last successful sync saw it.
 *
 * Checked: a failed fdatasync gives the waiting SYNC writer CIDSTORE_EIO,
 * later writers CIDSTORE_EIO, lookups still work, cidstore_stats says
 * failed with a message, and the failed file is never synced again (no
 * retry); the same for a failed pwrite, a failed checkpoint sync, ASYNC
 * mode and a failure during open; after a simulated crash that drops
 * unsynced writes, reopening with the POSIX io shows every acknowledged
 * SYNC write and nothing that was never written.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cidstore.h"
#include "log/io.h"
#include "store/store_internal.h"
#include "test_support.h"

#ifdef CIDSTORE_TSAN
#define SCALE 2u
#else
#define SCALE 1u
#endif

/* ------------------------------------------------------------------ */
/* the fault-injecting io                                              */
/* ------------------------------------------------------------------ */

#define FIO_FDS 1024

struct undo {
	char name[64];
	off_t off;
	size_t n;       /* bytes of old content saved (write within old size) */
	uint8_t *old;
	uint64_t old_size;
};

struct fio {
	pthread_mutex_t mu;
	const struct log_io *px;
	char dir[300];           /* store directory (to restore by name) */
	char *names[FIO_FDS];    /* fd -> file name (NULL: not ours / dir) */
	long fdatasyncs, pwrites, fsyncs;
	long fail_fdatasync_at;  /* 0: never; else fail when fdatasyncs reaches it */
	long fail_pwrite_at;
	long crash_after_pwrite; /* 0: never; else crash once this pwrite is done */
	int failed_fd;           /* the fd whose operation we failed, -1 none */
	long syncs_after_fail;   /* fdatasync/fsync calls on failed_fd after it */
	long syncs_any_after_fail; /* fdatasync/fsync calls on any file after it */
	bool failed_any;
	bool drop;               /* keep undo lists */
	bool crashed;
	struct undo *u;
	size_t nu, capu;
	long dropped;            /* undo entries played at restore */
};

static struct fio F;
static struct log_io FIO;

static void fio_reset(const char *dir, bool drop)
{
	pthread_mutex_lock(&F.mu);
	for (int i = 0; i < FIO_FDS; i++) {
		free(F.names[i]);
		F.names[i] = NULL;
	}
	for (size_t i = 0; i < F.nu; i++)
		free(F.u[i].old);
	free(F.u);
	F.u = NULL;
	F.nu = F.capu = 0;
	F.fdatasyncs = F.pwrites = F.fsyncs = 0;
	F.fail_fdatasync_at = F.fail_pwrite_at = F.crash_after_pwrite = 0;
	F.failed_fd = -1;
	F.syncs_after_fail = F.syncs_any_after_fail = 0;
	F.failed_any = false;
	F.drop = drop;
	F.crashed = false;
	F.dropped = 0;
	snprintf(F.dir, sizeof(F.dir), "%s", dir);
	pthread_mutex_unlock(&F.mu);
}

static int f_open(void *ctx, int dirfd, const char *name, int flags, mode_t mode)
{
	(void)ctx;
	pthread_mutex_lock(&F.mu);
	int fd;
	if (F.crashed) {
		errno = EIO;
		fd = -1;
	} else {
		fd = F.px->open(F.px->ctx, dirfd, name, flags, mode);
	}
	if (fd >= 0 && fd < FIO_FDS) {
		free(F.names[fd]);
		F.names[fd] = strdup(name);
	}
	pthread_mutex_unlock(&F.mu);
	return fd;
}

static ssize_t f_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	(void)ctx;
	pthread_mutex_lock(&F.mu);
	F.pwrites++;
	ssize_t rc;
	if (F.crashed) {
		errno = EIO;
		rc = -1;
	} else if (F.fail_pwrite_at && F.pwrites == F.fail_pwrite_at) {
		F.failed_fd = fd;
		F.failed_any = true;
		errno = EIO;
		rc = -1;
	} else {
		if (F.drop && fd >= 0 && fd < FIO_FDS && F.names[fd]) {
			struct stat st;
			if (fstat(fd, &st) != 0)
				abort();
			struct undo u = {{0}, off, 0, NULL, (uint64_t)st.st_size};
			snprintf(u.name, sizeof(u.name), "%s", F.names[fd]);
			if ((uint64_t)off < u.old_size) {
				u.n = n;
				if ((uint64_t)off + n > u.old_size)
					u.n = (size_t)(u.old_size - (uint64_t)off);
				u.old = malloc(u.n);
				/* fd may be write-only: read through our own */
				char p[400];
				snprintf(p, sizeof(p), "%s/%s", F.dir, u.name);
				int rfd = open(p, O_RDONLY);
				if (!u.old || rfd < 0 || pread(rfd, u.old, u.n, off) != (ssize_t)u.n)
					abort();
				close(rfd);
			}
			if (F.nu == F.capu) {
				F.capu = F.capu ? 2 * F.capu : 256;
				F.u = realloc(F.u, F.capu * sizeof(*F.u));
				if (!F.u)
					abort();
			}
			F.u[F.nu++] = u;
		}
		rc = F.px->pwrite(F.px->ctx, fd, buf, n, off);
		if (F.crash_after_pwrite && F.pwrites == F.crash_after_pwrite)
			F.crashed = true; /* written, never to be synced */
	}
	pthread_mutex_unlock(&F.mu);
	return rc;
}

static ssize_t f_pread(void *ctx, int fd, void *buf, size_t n, off_t off)
{
	(void)ctx;
	return F.px->pread(F.px->ctx, fd, buf, n, off);
}

/* Forgets the undo list of fd's file (it is on disk now).  F.mu held. */
static void synced(int fd)
{
	if (!F.drop || fd < 0 || fd >= FIO_FDS || !F.names[fd])
		return;
	size_t j = 0;
	for (size_t i = 0; i < F.nu; i++) {
		if (strcmp(F.u[i].name, F.names[fd]) == 0)
			free(F.u[i].old);
		else
			F.u[j++] = F.u[i];
	}
	F.nu = j;
}

static int sync_common(int fd, bool data)
{
	pthread_mutex_lock(&F.mu);
	if (F.failed_any) {
		F.syncs_any_after_fail++;
		if (fd == F.failed_fd)
			F.syncs_after_fail++;
	}
	long nth = data ? ++F.fdatasyncs : ++F.fsyncs;
	int rc;
	if (F.crashed) {
		errno = EIO;
		rc = -1;
	} else if (data && F.fail_fdatasync_at && nth == F.fail_fdatasync_at) {
		F.failed_fd = fd;
		F.failed_any = true;
		errno = EIO;
		rc = -1;
	} else {
		rc = data ? F.px->fdatasync(F.px->ctx, fd) : F.px->fsync(F.px->ctx, fd);
		if (rc == 0)
			synced(fd);
	}
	pthread_mutex_unlock(&F.mu);
	return rc;
}

static int f_fdatasync(void *ctx, int fd)
{
	(void)ctx;
	return sync_common(fd, true);
}

static int f_fsync(void *ctx, int fd)
{
	(void)ctx;
	return sync_common(fd, false);
}

static int f_fallocate(void *ctx, int fd, off_t off, off_t len)
{
	(void)ctx;
	pthread_mutex_lock(&F.mu);
	bool c = F.crashed;
	pthread_mutex_unlock(&F.mu);
	if (c) {
		errno = EIO;
		return -1;
	}
	return F.px->fallocate(F.px->ctx, fd, off, len);
}

static int f_ftruncate(void *ctx, int fd, off_t len)
{
	(void)ctx;
	pthread_mutex_lock(&F.mu);
	bool c = F.crashed;
	pthread_mutex_unlock(&F.mu);
	if (c) {
		errno = EIO;
		return -1;
	}
	return F.px->ftruncate(F.px->ctx, fd, len);
}

static int f_fsize(void *ctx, int fd, uint64_t *size)
{
	(void)ctx;
	return F.px->fsize(F.px->ctx, fd, size);
}

static int f_rename(void *ctx, int dirfd, const char *from, const char *to)
{
	(void)ctx;
	pthread_mutex_lock(&F.mu);
	int rc;
	if (F.crashed) {
		errno = EIO;
		rc = -1;
	} else {
		rc = F.px->rename(F.px->ctx, dirfd, from, to);
	}
	pthread_mutex_unlock(&F.mu);
	return rc;
}

static int f_unlink(void *ctx, int dirfd, const char *name)
{
	(void)ctx;
	pthread_mutex_lock(&F.mu);
	int rc;
	if (F.crashed) {
		errno = EIO;
		rc = -1;
	} else {
		rc = F.px->unlink(F.px->ctx, dirfd, name);
	}
	pthread_mutex_unlock(&F.mu);
	return rc;
}

static int f_close(void *ctx, int fd)
{
	(void)ctx;
	pthread_mutex_lock(&F.mu);
	if (fd >= 0 && fd < FIO_FDS) {
		free(F.names[fd]);
		F.names[fd] = NULL;
	}
	if (fd == F.failed_fd)
		F.failed_fd = -2; /* closed: its number may be reused */
	int rc = F.px->close(F.px->ctx, fd);
	pthread_mutex_unlock(&F.mu);
	return rc;
}

static int f_fsync_dir(void *ctx, int dirfd)
{
	(void)ctx;
	pthread_mutex_lock(&F.mu);
	int rc;
	if (F.crashed) {
		errno = EIO;
		rc = -1;
	} else {
		rc = F.px->fsync_dir(F.px->ctx, dirfd);
	}
	pthread_mutex_unlock(&F.mu);
	return rc;
}

static void fio_init(void)
{
	pthread_mutex_init(&F.mu, NULL);
	F.px = log_io_posix();
	F.failed_fd = -1;
	FIO = (struct log_io){f_open, f_pwrite, f_pread, f_fdatasync, f_fsync, f_fallocate,
			      f_ftruncate, f_fsize, f_rename, f_unlink, f_close, f_fsync_dir, NULL};
}

static void fio_arm_fdatasync(long after)
{
	pthread_mutex_lock(&F.mu);
	F.fail_fdatasync_at = F.fdatasyncs + after;
	pthread_mutex_unlock(&F.mu);
}

static void fio_arm_pwrite(long after)
{
	pthread_mutex_lock(&F.mu);
	F.fail_pwrite_at = F.pwrites + after;
	pthread_mutex_unlock(&F.mu);
}

static void fio_crash(void)
{
	pthread_mutex_lock(&F.mu);
	F.crashed = true;
	pthread_mutex_unlock(&F.mu);
}

/* Plays the undo lists backwards: each file as its last sync left it. */
static long fio_restore(void)
{
	pthread_mutex_lock(&F.mu);
	long n = 0;
	for (size_t i = F.nu; i-- > 0;) {
		struct undo *u = &F.u[i];
		char p[400];
		snprintf(p, sizeof(p), "%s/%s", F.dir, u->name);
		int fd = open(p, O_WRONLY);
		if (fd < 0)
			continue; /* removed since */
		if (u->n && pwrite(fd, u->old, u->n, u->off) != (ssize_t)u->n)
			abort();
		struct stat st;
		if (fstat(fd, &st) != 0)
			abort();
		if ((uint64_t)st.st_size > u->old_size && ftruncate(fd, (off_t)u->old_size) != 0)
			abort();
		close(fd);
		free(u->old);
		n++;
	}
	F.nu = 0;
	F.dropped = n;
	pthread_mutex_unlock(&F.mu);
	return n;
}

static long fio_get(long *field)
{
	pthread_mutex_lock(&F.mu);
	long v = *field;
	pthread_mutex_unlock(&F.mu);
	return v;
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static char tdir[256];
static char spath[300];

static void dir_setup(void)
{
	tmpdir_make(tdir, sizeof(tdir), "cidstore-iof");
	snprintf(spath, sizeof(spath), "%s/store", tdir);
	fio_reset(spath, false);
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

/* Inserts (K(i, tag), V(i, tag)) for i < n; each must be new. */
static void insert_n(cidstore_t *s, unsigned n, uint64_t tag)
{
	for (unsigned i = 0; i < n; i++) {
		cid_t k = K(i, tag), v = V(i, tag);
		int rc = cidstore_insert(s, &k, &v);
		ck_assert_msg(rc == 1, "insert %u (tag %" PRIu64 "): %d", i, tag, rc);
	}
}

/* Expects (K(i, tag), V(i, tag)) present for every i < n. */
static void expect_present(cidstore_t *s, unsigned n, uint64_t tag)
{
	for (unsigned i = 0; i < n; i++) {
		cid_t k = K(i, tag), v = V(i, tag);
		int rc = cidstore_contains(s, &k, &v);
		ck_assert_msg(rc == 1, "pair %u (tag %" PRIu64 ") missing: %d", i, tag, rc);
	}
}

static void opts_for(cidstore_options_t *o, cidstore_durability_t d)
{
	cidstore_options_init(o);
	o->dir = spath;
	o->durability = d;
	o->seed = 7;
	o->segment_bytes = 64 * 1024;
	o->ring_records = 1024;
	o->sync_interval_ms = 5;
	o->checkpoint_wal_bytes = 0;
}

static cidstore_t *open_with(const cidstore_options_t *o, const struct log_io *io)
{
	cidstore_t *s = NULL;
	int rc = cidstore_open_io(o, io, &s);
	ck_assert_msg(rc == 0, "open: %d (%s)", rc, cidstore_strerror(rc));
	return s;
}

static void expect_failed_stats(cidstore_t *s)
{
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_msg(st.failed, "stats do not say failed");
	ck_assert_msg(st.failure[0] != 0, "failed without a message");
	fprintf(stderr, "  failure: %s\n", st.failure);
}

/* Every write entry point answers CIDSTORE_EIO on a failed store. */
static void expect_writes_refused(cidstore_t *s, bool log_failed)
{
	cid_t k = K(0xdead, 0), v = V(0xdead, 0);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), CIDSTORE_EIO);
	ck_assert_int_eq(cidstore_delete_value(s, &k, &v), CIDSTORE_EIO);
	ck_assert_int_eq(cidstore_delete_key(s, &k), CIDSTORE_EIO);
	cidstore_op_t op = {CIDSTORE_OP_INSERT, k, v};
	ck_assert_int_eq(cidstore_apply(s, &op, 1), CIDSTORE_EIO);
	/* after a checkpoint failure the log itself is fine: everything
	 * logged is durable, so sync may truthfully answer 0 */
	if (log_failed)
		ck_assert_int_eq(cidstore_sync(s), CIDSTORE_EIO);
	else
		ck_assert_int_le(cidstore_sync(s), 0);
	ck_assert_int_lt(cidstore_checkpoint(s), 0);
	ck_assert_int_eq(cidstore_contains(s, &k, &v), 0);
}

/* ------------------------------------------------------------------ */
/* fdatasync / pwrite failures                                         */
/* ------------------------------------------------------------------ */

START_TEST(fdatasync_fails_sync_writer)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	cidstore_t *s = open_with(&o, &FIO);
	insert_n(s, 100, 1);
	fio_arm_fdatasync(1);
	cid_t k = K(1000, 1), v = V(1000, 1);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), CIDSTORE_EIO);
	long total_at_fail = fio_get(&F.fdatasyncs);
	expect_writes_refused(s, true);
	/* lookups still work */
	for (unsigned i = 0; i < 100; i++) {
		cid_t kk = K(i, 1), vv = V(i, 1), out[2];
		ck_assert_int_eq(cidstore_lookup(s, &kk, out, 2), 1);
		ck_assert(memcmp(&out[0], &vv, sizeof(vv)) == 0);
	}
	expect_failed_stats(s);
	usleep(100 * 1000); /* 20 sync intervals: a retrying flusher would show */
	ck_assert_int_eq(cidstore_insert(s, &k, &v), CIDSTORE_EIO);
	ck_assert_int_eq(fio_get(&F.syncs_after_fail), 0);
	ck_assert_int_eq(fio_get(&F.fdatasyncs), total_at_fail);
	ck_assert_int_eq(cidstore_close(s), CIDSTORE_EIO);
	ck_assert_int_eq(fio_get(&F.syncs_after_fail), 0);
	/* the acknowledged writes are there after a reopen */
	s = open_with(&o, NULL);
	expect_present(s, 100, 1);
	ck_assert_int_eq(cidstore_close(s), 0);
}
END_TEST

START_TEST(pwrite_fails_sync_writer)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	cidstore_t *s = open_with(&o, &FIO);
	insert_n(s, 50, 2);
	fio_arm_pwrite(1);
	cid_t k = K(1000, 2), v = V(1000, 2);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), CIDSTORE_EIO);
	expect_writes_refused(s, true);
	cid_t k0 = K(0, 2), v0 = V(0, 2);
	ck_assert_int_eq(cidstore_contains(s, &k0, &v0), 1);
	expect_failed_stats(s);
	usleep(50 * 1000);
	ck_assert_int_eq(fio_get(&F.syncs_after_fail), 0);
	ck_assert_int_eq(cidstore_close(s), CIDSTORE_EIO);
	ck_assert_int_eq(fio_get(&F.syncs_after_fail), 0);
	s = open_with(&o, NULL);
	expect_present(s, 50, 2);
	/* its record never reached the file: it is not there */
	ck_assert_int_eq(cidstore_contains(s, &k, &v), 0);
	ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 0);
	ck_assert_int_eq(cidstore_close(s), 0);
}
END_TEST

START_TEST(fdatasync_fails_async)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_ASYNC);
	cidstore_t *s = open_with(&o, &FIO);
	cid_t k = K(1, 3), v = V(1, 3);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	ck_assert_int_eq(cidstore_sync(s), 0);
	fio_arm_fdatasync(1);
	cid_t k2 = K(2, 3), v2 = V(2, 3);
	ck_assert_int_eq(cidstore_insert(s, &k2, &v2), 1); /* ASYNC: in the ring */
	cidstore_stats_t st;
	for (int i = 0; i < 400; i++) {
		ck_assert_int_eq(cidstore_stats(s, &st), 0);
		if (st.failed)
			break;
		usleep(5 * 1000);
	}
	ck_assert_msg(st.failed, "the flusher's failed fdatasync is not in the stats");
	expect_writes_refused(s, true);
	ck_assert_int_eq(cidstore_contains(s, &k, &v), 1);
	expect_failed_stats(s);
	usleep(50 * 1000);
	ck_assert_int_eq(fio_get(&F.syncs_after_fail), 0);
	ck_assert_int_eq(cidstore_close(s), CIDSTORE_EIO);
	s = open_with(&o, NULL);
	ck_assert_int_eq(cidstore_contains(s, &k, &v), 1);
	ck_assert_int_eq(cidstore_close(s), 0);
}
END_TEST

START_TEST(checkpoint_sync_fails)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	cidstore_t *s = open_with(&o, &FIO);
	for (unsigned i = 0; i < 300; i++) {
		cid_t k = K(i % 40, 4), v = V(i, 4);
		ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	}
	/* the log is durable: the next fdatasync is the checkpoint file's */
	fio_arm_fdatasync(1);
	int rc = cidstore_checkpoint(s);
	ck_assert_msg(rc == CIDSTORE_EIO, "checkpoint with a failing fdatasync: %d", rc);
	expect_failed_stats(s);
	expect_writes_refused(s, false);
	ck_assert_int_eq(fio_get(&F.syncs_after_fail), 0);
	cidstore_close(s);
	s = open_with(&o, NULL);
	ck_assert_int_eq(s->recov.have_ckpt, false);
	for (unsigned i = 0; i < 300; i++) {
		cid_t k = K(i % 40, 4), v = V(i, 4);
		ck_assert_int_eq(cidstore_contains(s, &k, &v), 1);
	}
	ck_assert_int_eq(cidstore_close(s), 0);
}
END_TEST

START_TEST(open_fails_cleanly)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	fio_arm_fdatasync(1); /* the new segment's first sync */
	cidstore_t *s = NULL;
	ck_assert_int_eq(cidstore_open_io(&o, &FIO, &s), CIDSTORE_EIO);
	ck_assert_ptr_null(s);
	/* a fresh directory again (the failed open left a segment whose header
	 * reached the page cache: reopening would continue it, not write) */
	ck_assert_int_eq(tmpdir_remove(spath), 0);
	fio_reset(spath, false);
	fio_arm_pwrite(1); /* the new segment's zero-fill */
	ck_assert_int_eq(cidstore_open_io(&o, &FIO, &s), CIDSTORE_EIO);
	/* nothing stays locked */
	s = open_with(&o, NULL);
	cid_t k = K(1, 5), v = V(1, 5);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	ck_assert_int_eq(cidstore_close(s), 0);
}
END_TEST

/* Many SYNC writers when an fdatasync fails: every writer that got 0 has
 * its write on disk; every writer sees EIO afterwards. */
struct mw_arg {
	cidstore_t *s;
	unsigned id;
	_Atomic long acked;
	int first_err, second_err;
};

static void *mw_main(void *p)
{
	struct mw_arg *a = p;
	for (long i = 0; i < 1000000; i++) {
		cid_t k = K(10000 + a->id, (uint64_t)i), v = V(a->id, (uint64_t)i);
		int rc = cidstore_insert(a->s, &k, &v);
		if (rc < 0) {
			a->first_err = rc;
			cid_t k2 = K(20000 + a->id, 0);
			a->second_err = cidstore_insert(a->s, &k2, &v);
			return NULL;
		}
		atomic_store_explicit(&a->acked, i + 1, memory_order_release);
	}
	return NULL;
}

START_TEST(fdatasync_fails_many_waiters)
{
	cidstore_options_t o;
	opts_for(&o, CIDSTORE_DURABILITY_SYNC);
	fio_reset(spath, true); /* and drop what was not synced at the end */
	cidstore_t *s = open_with(&o, &FIO);
	fio_arm_fdatasync(40);
	enum { NT = 8 };
	pthread_t th[NT];
	struct mw_arg a[NT];
	for (unsigned t = 0; t < NT; t++) {
		a[t].s = s;
		a[t].id = t;
		atomic_init(&a[t].acked, 0);
		a[t].first_err = a[t].second_err = 0;
		ck_assert_int_eq(pthread_create(&th[t], NULL, mw_main, &a[t]), 0);
	}
	long total = 0;
	for (unsigned t = 0; t < NT; t++) {
		pthread_join(th[t], NULL);
		ck_assert_int_eq(a[t].first_err, CIDSTORE_EIO);
		ck_assert_int_eq(a[t].second_err, CIDSTORE_EIO);
		total += atomic_load(&a[t].acked);
	}
	ck_assert_int_gt(total, 0);
	expect_failed_stats(s);
	ck_assert_int_eq(fio_get(&F.syncs_after_fail), 0);
	ck_assert_int_eq(fio_get(&F.syncs_any_after_fail), 0);
	ck_assert_int_eq(cidstore_close(s), CIDSTORE_EIO);
	fio_crash();
	long dropped = fio_restore();
	fprintf(stderr, "fdatasync_fails_many_waiters: %ld acknowledged, %ld unsynced writes dropped\n",
		total, dropped);
	s = open_with(&o, NULL);
	for (unsigned t = 0; t < NT; t++) {
		long n = atomic_load(&a[t].acked);
		for (long i = 0; i < n; i++) {
			cid_t k = K(10000 + t, (uint64_t)i), v = V(t, (uint64_t)i);
			ck_assert_msg(cidstore_contains(s, &k, &v) == 1,
				      "thread %u: acknowledged insert %ld of %ld lost", t, i, n);
		}
		/* beyond the one in flight nothing was ever written */
		cid_t k = K(10000 + t, (uint64_t)n + 1);
		ck_assert_int_eq(cidstore_lookup(s, &k, NULL, 0), 0);
		cid_t k2 = K(20000 + t, 0);
		ck_assert_int_eq(cidstore_lookup(s, &k2, NULL, 0), 0);
	}
	ck_assert_int_eq(cidstore_close(s), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* dropped unsynced data                                               */
/* ------------------------------------------------------------------ */

START_TEST(drop_unsynced_async)
{
	for (int with_ckpt = 0; with_ckpt < 2; with_ckpt++) {
		cidstore_options_t o;
		opts_for(&o, CIDSTORE_DURABILITY_ASYNC);
		o.sync_interval_ms = 60000; /* only cidstore_sync syncs */
		o.segment_bytes = 4 << 20;  /* and no rotation (it syncs) */
		fio_reset(spath, true);
		cidstore_t *s = open_with(&o, &FIO);
		for (unsigned i = 0; i < 700; i++) {
			cid_t k = K(i % 90, 6), v = V(i, 6);
			ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
		}
		if (with_ckpt) {
			ck_assert_int_eq(cidstore_checkpoint(s), 0);
			for (unsigned i = 0; i < 100; i++) {
				cid_t k = K(i % 90, 6), v = V(i, 6);
				ck_assert_int_eq(cidstore_delete_value(s, &k, &v), 1);
			}
		}
		ck_assert_int_eq(cidstore_sync(s), 0);
		struct snap durable = snap_take(s);
		/* B: written to the segment by the flusher, never synced */
		for (unsigned i = 0; i < 300; i++) {
			cid_t k = K(500 + i % 30, 6), v = V(i, 7);
			ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
			cid_t k0 = K((100 + i) % 90, 6), v0 = V(100 + i, 6);
			ck_assert_int_eq(cidstore_delete_value(s, &k0, &v0), 1);
		}
		cidstore_stats_t st;
		for (int i = 0; i < 400; i++) {
			ck_assert_int_eq(cidstore_stats(s, &st), 0);
			/* every record handed out is written (records count
			 * since open; the store started empty) */
			if (st.wal_records >= st.wal_lsn)
				break;
			usleep(5 * 1000);
		}
		ck_assert_uint_lt(st.wal_durable_lsn, st.wal_lsn);
		fio_crash();
		ck_assert_int_eq(cidstore_close(s), CIDSTORE_EIO);
		long dropped = fio_restore();
		ck_assert_int_gt(dropped, 0);
		fprintf(stderr, "drop_unsynced_async(%d): %ld unsynced writes dropped\n",
			with_ckpt, dropped);
		s = open_with(&o, NULL);
		struct snap got = snap_take(s);
		snap_expect_equal(&durable, &got, "after a crash that dropped unsynced writes");
		ck_assert_int_eq(cidstore_close(s), 0);
		snap_free(&durable);
		snap_free(&got);
		dir_teardown();
		dir_setup();
	}
}
END_TEST

/* SYNC writers, each on its own keys, with a deterministic sequence of
 * inserts and deletes; a crash at a random moment drops unsynced writes;
 * each thread's keys must then hold the state after its acknowledged
 * operations, or after those plus the one in flight. */
#define DT_THREADS 4
#define DT_KEYS 6
#define DT_VALS 6
#define DT_MAXOPS 200000

struct dt_state {
	uint8_t has[DT_KEYS][DT_VALS];
};

static void dt_op(unsigned t, long seq, int *kind, unsigned *key, unsigned *val)
{
	uint64_t h = mix64(((uint64_t)t << 40) ^ (uint64_t)seq ^ 0x1234567ull);
	*key = (unsigned)(h % DT_KEYS);
	*val = (unsigned)((h >> 16) % DT_VALS);
	unsigned r = (unsigned)((h >> 32) % 10);
	*kind = r < 6 ? 0 : r < 9 ? 1 : 2;
}

static void dt_apply(struct dt_state *st, unsigned t, long seq)
{
	int kind;
	unsigned k, v;
	dt_op(t, seq, &kind, &k, &v);
	if (kind == 0)
		st->has[k][v] = 1;
	else if (kind == 1)
		st->has[k][v] = 0;
	else
		memset(st->has[k], 0, sizeof(st->has[k]));
}

struct dt_arg {
	cidstore_t *s;
	unsigned id;
	_Atomic long acked;
	int err;
};

static void *dt_main(void *p)
{
	struct dt_arg *a = p;
	for (long i = 0; i < DT_MAXOPS; i++) {
		int kind;
		unsigned k, v;
		dt_op(a->id, i, &kind, &k, &v);
		cid_t key = K(100 * a->id + k, 8), val = V(v, 8);
		long rc = kind == 0   ? cidstore_insert(a->s, &key, &val)
			  : kind == 1 ? cidstore_delete_value(a->s, &key, &val)
				      : cidstore_delete_key(a->s, &key);
		if (rc < 0) {
			a->err = (int)rc;
			return NULL;
		}
		atomic_store_explicit(&a->acked, i + 1, memory_order_release);
	}
	return NULL;
}

static void dt_read(cidstore_t *s, unsigned t, struct dt_state *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned k = 0; k < DT_KEYS; k++) {
		cid_t key = K(100 * t + k, 8), out[DT_VALS + 1];
		long n = cidstore_lookup(s, &key, out, DT_VALS + 1);
		ck_assert_int_ge(n, 0);
		ck_assert_int_le(n, DT_VALS);
		for (long i = 0; i < n; i++) {
			unsigned v = 0;
			for (; v < DT_VALS; v++) {
				cid_t want = V(v, 8);
				if (memcmp(&out[i], &want, sizeof(want)) == 0)
					break;
			}
			ck_assert_msg(v < DT_VALS, "thread %u key %u: a value never written", t, k);
			st->has[k][v] = 1;
		}
	}
}

START_TEST(drop_unsynced_sync_threads)
{
	const int rounds = SCALE > 1 ? 2 : 4;
	uint64_t seed = (uint64_t)time(NULL);
	fprintf(stderr, "drop_unsynced_sync_threads: seed %llu\n", (unsigned long long)seed);
	for (int round = 0; round < rounds; round++) {
		cidstore_options_t o;
		opts_for(&o, CIDSTORE_DURABILITY_SYNC);
		o.segment_bytes = 16 * 1024;
		fio_reset(spath, true);
		cidstore_t *s = open_with(&o, &FIO);
		pthread_t th[DT_THREADS];
		struct dt_arg a[DT_THREADS];
		for (unsigned t = 0; t < DT_THREADS; t++) {
			a[t].s = s;
			a[t].id = t;
			a[t].err = 0;
			atomic_init(&a[t].acked, 0);
			ck_assert_int_eq(pthread_create(&th[t], NULL, dt_main, &a[t]), 0);
		}
		/* the crash comes right after a random pwrite returned (its
		 * data is in the file, unsynced) */
		long ms = 20 + (long)(mix64(seed + (uint64_t)round) % 150);
		pthread_mutex_lock(&F.mu);
		F.crash_after_pwrite = F.pwrites + ms;
		pthread_mutex_unlock(&F.mu);
		if (round % 2) {
			usleep(10 * 1000);
			int rc = cidstore_checkpoint(s);
			ck_assert_msg(rc == 0 || rc == CIDSTORE_EIO || rc == CIDSTORE_ERDONLY,
				      "checkpoint: %d", rc);
		}
		for (unsigned t = 0; t < DT_THREADS; t++) {
			pthread_join(th[t], NULL);
			ck_assert_msg(a[t].err == CIDSTORE_EIO, "thread %u ended with %d", t, a[t].err);
		}
		ck_assert_int_eq(cidstore_close(s), CIDSTORE_EIO);
		long dropped = fio_restore();
		s = open_with(&o, NULL);
		long total = 0;
		for (unsigned t = 0; t < DT_THREADS; t++) {
			long n = atomic_load(&a[t].acked);
			total += n;
			struct dt_state want = {{{0}}}, got;
			for (long i = 0; i < n; i++)
				dt_apply(&want, t, i);
			struct dt_state want1 = want;
			dt_apply(&want1, t, n);
			dt_read(s, t, &got);
			ck_assert_msg(memcmp(&got, &want, sizeof(got)) == 0 ||
					      memcmp(&got, &want1, sizeof(got)) == 0,
				      "round %d thread %u: state after %ld acknowledged ops is neither "
				      "that prefix nor it plus the op in flight",
				      round, t, n);
		}
		/* nothing else is in the store */
		struct snap all = snap_take(s);
		for (size_t i = 0; i < all.n; i++) {
			uint64_t kid = all.p[i].k.w[0] ^ 0x6b65790000000000ull;
			ck_assert_msg(kid < 100 * DT_THREADS && kid % 100 < DT_KEYS &&
					      all.p[i].k.w[1] == 8,
				      "a key nobody wrote");
		}
		snap_free(&all);
		ck_assert_int_gt(dropped, 0);
		fprintf(stderr, "  round %d: crash after pwrite %ld, %ld ops acknowledged, %ld unsynced writes dropped\n",
			round, ms, total, dropped);
		ck_assert_int_eq(cidstore_close(s), 0);
		dir_teardown();
		dir_setup();
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("iofault");
	TCase *tc = tcase_create("iofault");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_test(tc, fdatasync_fails_sync_writer);
	tcase_add_test(tc, pwrite_fails_sync_writer);
	tcase_add_test(tc, fdatasync_fails_async);
	tcase_add_test(tc, checkpoint_sync_fails);
	tcase_add_test(tc, open_fails_cleanly);
	tcase_add_test(tc, fdatasync_fails_many_waiters);
	tcase_add_test(tc, drop_unsynced_async);
	tcase_add_test(tc, drop_unsynced_sync_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	fio_init();
	return run_suite(suite());
}
