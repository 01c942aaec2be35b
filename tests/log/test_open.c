/*
 * test_open.c — the front door of a durable store: what cidstore_open says
 * about the directory it is given (ENOENT, ENOTDIR, EACCES), the
 * create_if_missing and read_only options, and a full disk (ENOSPC, both
 * through a byte-budget I/O table and, when this process may mount, a real
 * tmpfs that fills up).
 *
 * Permission checks need a user that permissions apply to: run as root, a
 * forked child drops to nobody (65534) before it opens; run as anyone else,
 * the directory's mode is taken away instead.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cidstore.h"
#include "log/io.h"
#include "store/store_internal.h"
#include "test_support.h"

static char tdir[256];  /* per test, mode 0755 so that nobody can reach it */
static char spath[300]; /* <tdir>/store */

static void setup(void)
{
	tmpdir_make(tdir, sizeof(tdir), "cidstore-open");
	ck_assert_int_eq(chmod(tdir, 0755), 0);
	snprintf(spath, sizeof(spath), "%s/store", tdir);
}

static void teardown(void)
{
	chmod(spath, 0755);
	tmpdir_remove(tdir);
}

static cid_t K(uint64_t i)
{
	return (cid_t){{0x1111, i, mix64(i), mix64(i + 99)}};
}

static cid_t V(uint64_t i)
{
	return (cid_t){{0x2222, i, mix64(i ^ 7), mix64(i + 5)}};
}

static void opts(cidstore_options_t *o, const char *dir, cidstore_durability_t d)
{
	cidstore_options_init(o);
	o->dir = dir;
	o->durability = d;
	o->segment_bytes = 64 * 1024;
	o->checkpoint_wal_bytes = 0;
	o->recovery_threads = 1;
}

/* A store at spath holding keys 0..n-1 (value V(i)), closed. */
static void make_store(unsigned n, cidstore_durability_t d)
{
	cidstore_options_t o;
	opts(&o, spath, d);
	cidstore_t *s;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	for (unsigned i = 0; i < n; i++) {
		cid_t k = K(i), v = V(i);
		ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	}
	ck_assert_int_eq(cidstore_close(s), 0);
}

static bool exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

START_TEST(missing_dir)
{
	cidstore_options_t o;
	cidstore_t *s = NULL;
	opts(&o, spath, CIDSTORE_DURABILITY_SYNC);
	o.create_if_missing = false;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_ENOENT);
	ck_assert_ptr_null(s);
	ck_assert(!exists(spath));
	o.create_if_missing = true;
	o.read_only = true; /* read_only never creates */
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_ENOENT);
	ck_assert(!exists(spath));
	ck_assert_str_eq(cidstore_strerror(CIDSTORE_ENOENT), "the store directory does not exist");

	/* only the last component is created: a missing parent is ENOENT */
	char deep[400];
	snprintf(deep, sizeof(deep), "%s/no/such/parent", tdir);
	o.dir = deep;
	o.read_only = false;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_ENOENT);

	/* the default creates it */
	o.dir = spath;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	ck_assert_int_eq(cidstore_close(s), 0);
	ck_assert(exists(spath));
	/* and an existing store opens with create_if_missing false */
	o.create_if_missing = false;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	ck_assert_int_eq(cidstore_close(s), 0);
}
END_TEST

START_TEST(not_a_directory)
{
	int fd = open(spath, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	cidstore_options_t o;
	cidstore_t *s = NULL;
	opts(&o, spath, CIDSTORE_DURABILITY_ASYNC);
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_ENOTDIR);
	o.read_only = true;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_ENOTDIR);
	char through[400];
	snprintf(through, sizeof(through), "%s/sub", spath); /* a file as a parent */
	o.dir = through;
	o.read_only = false;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_ENOTDIR);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(cidstore_open(NULL, &s), CIDSTORE_EINVAL);
	/* read_only needs a directory */
	opts(&o, NULL, CIDSTORE_DURABILITY_NONE);
	o.read_only = true;
	ck_assert_int_eq(cidstore_open(&o, &s), CIDSTORE_EINVAL);
}
END_TEST

/* Opens spath read-only and checks every key 0..n-1 and the write refusals. */
static void check_read_only(unsigned n)
{
	cidstore_options_t o;
	opts(&o, spath, CIDSTORE_DURABILITY_SYNC);
	o.read_only = true;
	cidstore_t *s = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	for (unsigned i = 0; i < n; i++) {
		cid_t k = K(i), v = V(i);
		ck_assert_int_eq(cidstore_contains(s, &k, &v), 1);
	}
	cid_t k = K(n + 1), v = V(n + 1);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), CIDSTORE_ERDONLY);
	ck_assert_int_eq(cidstore_delete_value(s, &k, &v), CIDSTORE_ERDONLY);
	ck_assert_int_eq(cidstore_delete_key(s, &k), CIDSTORE_ERDONLY);
	cid_t ks[1] = {k}, vs[1] = {v};
	ck_assert_int_eq(cidstore_insert_many(s, ks, vs, 1, NULL), CIDSTORE_ERDONLY);
	cidstore_op_t op = {CIDSTORE_OP_INSERT, k, v};
	ck_assert_int_eq(cidstore_apply(s, &op, 1), CIDSTORE_ERDONLY);
	ck_assert_int_eq(cidstore_checkpoint(s), CIDSTORE_ERDONLY);
	ck_assert_int_eq(cidstore_sync(s), 0); /* nothing to make durable */
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_uint_eq(st.keys, n);
	ck_assert(!st.failed);
	ck_assert_int_eq(cidstore_close(s), 0);
}

START_TEST(read_only_changes_nothing)
{
	make_store(300, CIDSTORE_DURABILITY_SYNC);
	/* a torn tail: recovery would cut it, a read-only open must not */
	sdir_list_t l;
	int dfd = open(spath, O_RDONLY | O_DIRECTORY);
	ck_assert_int_eq(sdir_list_segments(dfd, &l), 0);
	ck_assert_uint_ge(l.n, 1);
	int fd = openat(dfd, l.v[l.n - 1].name, O_RDWR);
	struct recov_result rr;
	memset(&rr, 0, sizeof(rr));
	ck_assert_int_eq(recov_verify(dfd, NULL, &rr), 0);
	uint8_t junk[64];
	memset(junk, 0x5a, sizeof(junk));
	ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), (off_t)rr.tail_off), (ssize_t)sizeof(junk));
	close(fd);
	sdir_list_free(&l);
	close(dfd);

	struct dirimg before;
	dirimg_take(&before, spath);
	check_read_only(300);
	dirimg_expect_unchanged(&before, spath); /* no LOCK, no cut, no new file */

	/* NONE durability: close writes the final checkpoint -- never read_only */
	dirimg_take(&before, spath);
	cidstore_options_t o;
	opts(&o, spath, CIDSTORE_DURABILITY_NONE);
	o.read_only = true;
	cidstore_t *s;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	ck_assert_int_eq(cidstore_close(s), 0);
	dirimg_expect_unchanged(&before, spath);
}
END_TEST

START_TEST(read_only_beside_a_writer)
{
	make_store(100, CIDSTORE_DURABILITY_SYNC);
	/* in this process: the writer holds the directory */
	cidstore_options_t o;
	opts(&o, spath, CIDSTORE_DURABILITY_SYNC);
	cidstore_t *w;
	ck_assert_int_eq(cidstore_open(&o, &w), 0);
	cidstore_t *again;
	ck_assert_int_eq(cidstore_open(&o, &again), CIDSTORE_EBUSY);
	for (unsigned i = 100; i < 200; i++) {
		cid_t k = K(i), v = V(i);
		ck_assert_int_eq(cidstore_insert(w, &k, &v), 1); /* SYNC: on disk */
	}
	check_read_only(200); /* a snapshot of the files at open */
	ck_assert_int_eq(cidstore_close(w), 0);

	/* another process holds it */
	int go[2], done[2];
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		cidstore_t *c;
		char b = cidstore_open(&o, &c) == 0 ? 'y' : 'n';
		if (write(go[1], &b, 1) != 1 || read(done[0], &b, 1) != 1)
			_exit(2);
		_exit(0); /* holds the store until the parent is done */
	}
	char b;
	ck_assert_int_eq(read(go[0], &b, 1), 1);
	ck_assert_int_eq(b, 'y');
	ck_assert_int_eq(cidstore_open(&o, &again), CIDSTORE_EBUSY);
	check_read_only(200);
	ck_assert_int_eq(write(done[1], "x", 1), 1);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(go[0]), close(go[1]), close(done[0]), close(done[1]);
}
END_TEST

/* Runs fn in a child as user nobody (when root) and returns its exit code. */
static int as_nobody(int (*fn)(void))
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0))
			_exit(100);
		_exit(fn());
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* Exit codes of the children: 0 = as expected, else which check failed. */
static int child_writer_refused(void)
{
	cidstore_options_t o;
	opts(&o, spath, CIDSTORE_DURABILITY_SYNC);
	cidstore_t *s;
	return cidstore_open(&o, &s) == CIDSTORE_EACCES ? 0 : 1;
}

static int child_reader(void)
{
	cidstore_options_t o;
	opts(&o, spath, CIDSTORE_DURABILITY_SYNC);
	o.read_only = true;
	cidstore_t *s;
	if (cidstore_open(&o, &s) != 0)
		return 1;
	cid_t k = K(7), v = V(7);
	int rc = cidstore_contains(s, &k, &v) == 1 ? 0 : 2;
	if (rc == 0 && cidstore_insert(s, &k, &v) != CIDSTORE_ERDONLY)
		rc = 3;
	cidstore_close(s);
	return rc;
}

static int child_reader_refused(void)
{
	cidstore_options_t o;
	opts(&o, spath, CIDSTORE_DURABILITY_SYNC);
	o.read_only = true;
	cidstore_t *s;
	return cidstore_open(&o, &s) == CIDSTORE_EACCES ? 0 : 1;
}

START_TEST(permission_denied)
{
	make_store(50, CIDSTORE_DURABILITY_SYNC);
	bool root = geteuid() == 0;
	if (!root)
		ck_assert_int_eq(chmod(spath, 0555), 0); /* readable, not writable */
	/* root's store (0755, files 0644): nobody may read it, not write it */
	struct dirimg before;
	dirimg_take(&before, spath);
	ck_assert_int_eq(as_nobody(child_writer_refused), 0);
	ck_assert_int_eq(as_nobody(child_reader), 0);
	dirimg_expect_unchanged(&before, spath);
	ck_assert_int_eq(chmod(spath, 0), 0);
	ck_assert_int_eq(as_nobody(child_reader_refused), 0);
	ck_assert_int_eq(as_nobody(child_writer_refused), 0);
	ck_assert_int_eq(chmod(spath, 0755), 0);
	ck_assert_str_eq(cidstore_strerror(CIDSTORE_EACCES),
			 "permission denied on the store directory or a file in it");
}
END_TEST

/* ---- a full disk ---- */

/* An I/O table over POSIX whose "disk" holds D.left more bytes: a pwrite
 * or fallocate that would grow a file past what is left fails with ENOSPC
 * (writes inside a file's current size, such as a preallocated segment's
 * records, take no new space, as on a real filesystem). */
static struct {
	const struct log_io *px;
	_Atomic long long left;
} D;

/* Takes the space [off, off + n) needs beyond fd's size; false: no room. */
static bool d_take(int fd, off_t off, size_t n)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return true;
	long long grow = (long long)off + (long long)n - (long long)st.st_size;
	if (grow <= 0)
		return true;
	if (atomic_fetch_sub(&D.left, grow) < grow) {
		atomic_fetch_add(&D.left, grow);
		errno = ENOSPC;
		return false;
	}
	return true;
}

static ssize_t d_pwrite(void *c, int fd, const void *b, size_t n, off_t off)
{
	(void)c;
	if (!d_take(fd, off, n))
		return -1;
	return D.px->pwrite(D.px->ctx, fd, b, n, off);
}

static int d_fallocate(void *c, int fd, off_t off, off_t len)
{
	(void)c;
	if (!d_take(fd, off, (size_t)len))
		return -1;
	return D.px->fallocate(D.px->ctx, fd, off, len);
}

/* POSIX with the two calls that take space replaced. */
static struct log_io disk_io(long long bytes)
{
	D.px = log_io_posix();
	atomic_store(&D.left, bytes);
	struct log_io io = *D.px;
	io.pwrite = d_pwrite;
	io.fallocate = d_fallocate;
	return io;
}

/* Inserts K(i) -> V(i) from i = 0 until an insert does not answer 1;
 * returns that answer, *acked = the inserts acknowledged before it. */
static int fill(cidstore_t *s, unsigned *acked)
{
	int rc = 1;
	unsigned i;
	for (i = 0; i < 100000 && rc == 1; i++) {
		cid_t k = K(i), v = V(i);
		rc = cidstore_insert(s, &k, &v);
	}
	*acked = rc == 1 ? i : i - 1;
	return rc;
}

/* Writes SYNC until the disk is full: the error is ENOSPC, the reason names
 * it, every later write gets ENOSPC, and every acknowledged pair survives a
 * reopen. */
static void fill_until_full(cidstore_t *s, unsigned *acked)
{
	int rc = fill(s, acked);
	ck_assert_msg(rc == CIDSTORE_ENOSPC, "insert %u on a full disk: %d", *acked, rc);
	cid_t k = K(*acked + 1), v = V(*acked + 1);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), CIDSTORE_ENOSPC);
	ck_assert_int_eq(cidstore_checkpoint(s), CIDSTORE_ERDONLY);
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert(st.failed);
	ck_assert_msg(strstr(st.failure, "No space left on device") != NULL, "failure: %s",
		      st.failure);
}

static void expect_survivors(unsigned acked)
{
	cidstore_options_t o;
	opts(&o, spath, CIDSTORE_DURABILITY_SYNC);
	o.read_only = true;
	cidstore_t *s;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	for (unsigned i = 0; i < acked; i++) {
		cid_t k = K(i), v = V(i);
		ck_assert_msg(cidstore_contains(s, &k, &v) == 1, "acknowledged pair %u lost", i);
	}
	ck_assert_int_eq(cidstore_close(s), 0);
}

START_TEST(disk_full_budget)
{
	/* room for META and two 64 KiB segments, not a third */
	struct log_io disk = disk_io(150 * 1024);
	cidstore_options_t o;
	opts(&o, spath, CIDSTORE_DURABILITY_SYNC);
	cidstore_t *s;
	ck_assert_int_eq(cidstore_open_io(&o, &disk, &s), 0);
	unsigned acked;
	fill_until_full(s, &acked);
	ck_assert_uint_gt(acked, 500); /* the first segment held ~511 records */
	cidstore_close(s);
	expect_survivors(acked);

	/* a store that cannot even create its first segment */
	tmpdir_remove(spath);
	disk = disk_io(4096);
	ck_assert_int_eq(cidstore_open_io(&o, &disk, &s), CIDSTORE_ENOSPC);
	ck_assert_str_eq(cidstore_strerror(CIDSTORE_ENOSPC),
			 "no space left on the device; the store is now read-only");
}
END_TEST

/* Defect: the reason of a full disk was lost.  A checkpoint that hits
 * ENOSPC and an ASYNC log whose rotation hits it (found first by
 * cidstore_sync) both leave the call, the file and the errno text. */
START_TEST(disk_full_reasons)
{
	/* META + the first 64 KiB segment + 8 KiB: 200 keys fit in the log,
	 * their checkpoint (~15 KB) does not */
	struct log_io disk = disk_io(64 * 1024 + 40 + 8192);
	cidstore_options_t o;
	opts(&o, spath, CIDSTORE_DURABILITY_SYNC);
	cidstore_t *s;
	ck_assert_int_eq(cidstore_open_io(&o, &disk, &s), 0);
	for (unsigned i = 0; i < 200; i++) {
		cid_t k = K(i), v = V(i);
		ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
	}
	ck_assert_int_eq(cidstore_checkpoint(s), CIDSTORE_ENOSPC);
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert(st.failed);
	ck_assert_msg(strstr(st.failure, "checkpoint") && strstr(st.failure, "ckpt-") &&
			      strstr(st.failure, "No space left on device"),
		      "failure: %s", st.failure);
	cid_t k = K(999), v = V(999);
	ck_assert_int_eq(cidstore_insert(s, &k, &v), CIDSTORE_ENOSPC);
	cidstore_close(s);
	expect_survivors(200);

	/* ASYNC: the flusher meets the full disk when it rotates; sync is the
	 * first call to hear of it */
	tmpdir_remove(spath);
	disk = disk_io(64 * 1024 + 40 + 1024);
	opts(&o, spath, CIDSTORE_DURABILITY_ASYNC);
	ck_assert_int_eq(cidstore_open_io(&o, &disk, &s), 0);
	for (unsigned i = 0; i < 700; i++) {
		cid_t kk = K(i), vv = V(i);
		int rc = cidstore_insert(s, &kk, &vv);
		ck_assert_msg(rc == 1 || rc == CIDSTORE_ENOSPC, "insert %u: %d", i, rc);
	}
	ck_assert_int_eq(cidstore_sync(s), CIDSTORE_ENOSPC);
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	ck_assert_msg(strstr(st.failure, "segment") && strstr(st.failure, "wal-") &&
			      strstr(st.failure, "No space left on device"),
		      "failure: %s", st.failure);
	cidstore_close(s);
}
END_TEST

/* The same on a real filesystem that fills up: a 256 KiB tmpfs, mounted in
 * a private mount namespace of a child (root only; skipped otherwise). */
static int child_real_disk(void)
{
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return 77;
	if (mount("tmpfs", tdir, "tmpfs", 0, "size=256k") != 0)
		return 77;
	cidstore_options_t o;
	opts(&o, spath, CIDSTORE_DURABILITY_SYNC);
	cidstore_t *s;
	if (cidstore_open(&o, &s) != 0)
		return 1;
	unsigned i;
	int rc = fill(s, &i);
	cidstore_close(s);
	if (rc != CIDSTORE_ENOSPC) {
		fprintf(stderr, "real full disk: insert %u returned %d\n", i, rc);
		return 2;
	}
	o.read_only = true;
	if (cidstore_open(&o, &s) != 0)
		return 3;
	for (unsigned j = 0; j < i; j++) {
		cid_t k = K(j), v = V(j);
		if (cidstore_contains(s, &k, &v) != 1)
			return 4;
	}
	cidstore_close(s);
	return 0;
}

START_TEST(disk_full_real)
{
	if (geteuid() != 0) {
		fprintf(stderr, "disk_full_real: skipped (needs root to mount a tmpfs)\n");
		return;
	}
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child_real_disk());
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		fprintf(stderr, "disk_full_real: skipped (cannot mount a tmpfs here)\n");
		return;
	}
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("open");
	TCase *tc = tcase_create("open");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, missing_dir);
	tcase_add_test(tc, not_a_directory);
	tcase_add_test(tc, read_only_changes_nothing);
	tcase_add_test(tc, read_only_beside_a_writer);
	tcase_add_test(tc, permission_denied);
	tcase_add_test(tc, disk_full_budget);
	tcase_add_test(tc, disk_full_reasons);
	tcase_add_test(tc, disk_full_real);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
