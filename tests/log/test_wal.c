/* test_wal.c — WAL writer: acknowledged records on disk exactly once, in
 * LSN order, across rotations; group commit; fdatasync failure is sticky;
 * no waiter released before the fdatasync covering it completed.
 * WAL_BENCH=1 in the environment also prints throughput figures. */
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
#include <time.h>
#include <unistd.h>

#include "log/io.h"
#include "log/record.h"
#include "log/recovery.h"
#include "log/wal.h"
#include "test_support.h"

#ifdef CIDSTORE_TSAN
#define SCALE 4
#else
#define SCALE 1
#endif

/* ---- a recording / fault-injecting io layer ---- */

#define MAXFD 4096
static struct {
	_Atomic uint64_t written_max[MAXFD]; /* highest record LSN pwritten per fd */
	_Atomic uint64_t synced_max;         /* highest LSN covered by a completed fdatasync */
	_Atomic uint64_t fdatasyncs;
	_Atomic long fail_fdatasync_in;      /* >0: the n-th next fdatasync fails */
	_Atomic long fail_pwrite_in;
	_Atomic uint64_t early_releases;     /* waiter released before its sync */
	_Atomic int sync_delay_us;
} tio;

static ssize_t t_pwrite(void *ctx, int fd, const void *buf, size_t n, off_t off)
{
	(void)ctx;
	if (atomic_load(&tio.fail_pwrite_in) > 0 &&
	    atomic_fetch_sub(&tio.fail_pwrite_in, 1) == 1) {
		errno = EIO;
		return -1;
	}
	ssize_t r = log_io_posix()->pwrite(NULL, fd, buf, n, off);
	/* remember the highest record LSN written to this fd */
	if (r > 0 && fd < MAXFD) {
		for (ssize_t o = (r / WAL_REC_SIZE) * WAL_REC_SIZE; o >= (ssize_t)WAL_REC_SIZE; o -= WAL_REC_SIZE) {
			struct wal_rec rec;
			if (rec_decode((const uint8_t *)buf + o - WAL_REC_SIZE, &rec) == 0 &&
			    rec.opcode != WAL_OP_SEGMENT_HEADER) {
				uint64_t cur = atomic_load(&tio.written_max[fd]);
				while (cur < rec.lsn &&
				       !atomic_compare_exchange_weak(&tio.written_max[fd], &cur, rec.lsn))
					;
				break;
			}
		}
	}
	return r;
}

static int t_fdatasync(void *ctx, int fd)
{
	(void)ctx;
	uint64_t snap = fd < MAXFD ? atomic_load(&tio.written_max[fd]) : 0;
	if (atomic_load(&tio.fail_fdatasync_in) > 0 &&
	    atomic_fetch_sub(&tio.fail_fdatasync_in, 1) == 1) {
		errno = EIO;
		return -1;
	}
	int d = atomic_load(&tio.sync_delay_us);
	if (d)
		usleep((useconds_t)d); /* widen the window for early releases */
	int r = log_io_posix()->fdatasync(NULL, fd);
	if (r == 0) {
		atomic_fetch_add(&tio.fdatasyncs, 1);
		uint64_t cur = atomic_load(&tio.synced_max);
		while (cur < snap && !atomic_compare_exchange_weak(&tio.synced_max, &cur, snap))
			;
	}
	return r;
}

static int t_close(void *ctx, int fd)
{
	(void)ctx;
	if (fd >= 0 && fd < MAXFD)
		atomic_store(&tio.written_max[fd], 0);
	return log_io_posix()->close(NULL, fd);
}

static struct log_io test_io;

static void tio_reset(void)
{
	for (int i = 0; i < MAXFD; i++)
		atomic_store(&tio.written_max[i], 0);
	atomic_store(&tio.synced_max, 0);
	atomic_store(&tio.fdatasyncs, 0);
	atomic_store(&tio.fail_fdatasync_in, 0);
	atomic_store(&tio.fail_pwrite_in, 0);
	atomic_store(&tio.early_releases, 0);
	atomic_store(&tio.sync_delay_us, 0);
	test_io = *log_io_posix();
	test_io.pwrite = t_pwrite;
	test_io.fdatasync = t_fdatasync;
	test_io.close = t_close;
}

/* ---- helpers ---- */

static char dirpath[256];
static int dirfd_;

static void setup(void)
{
	tmpdir_make(dirpath, sizeof dirpath, "cidstore-test-wal");
	dirfd_ = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(dirfd_, 0);
	tio_reset();
}

static void teardown(void)
{
	close(dirfd_);
	tmpdir_remove(dirpath);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

typedef void (*rec_fn)(const struct wal_rec *r, void *ctx);

/* Reads every segment in LSN order with the validity rule of record.h;
 * returns the number of records, checks consecutive LSNs from first_lsn and
 * non-decreasing hybrid time. */
static uint64_t read_log(uint64_t first_lsn, rec_fn fn, void *ctx, int *nsegs)
{
	uint64_t firsts[4096];
	int n = 0;
	DIR *d = opendir(dirpath);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t f;
		if (rec_seg_parse(de->d_name, &f) == 0) {
			ck_assert_int_lt(n, 4096);
			firsts[n++] = f;
		}
	}
	closedir(d);
	qsort(firsts, (size_t)n, sizeof firsts[0], cmp_u64);
	uint64_t expect = first_lsn, count = 0, last_wall = 0, last_seq = 0;
	for (int s = 0; s < n; s++) {
		ck_assert_msg(firsts[s] == expect, "segment %d starts at %llu, expected %llu",
			      s, (unsigned long long)firsts[s], (unsigned long long)expect);
		char name[WAL_SEG_NAME_LEN + 1];
		rec_seg_name(name, firsts[s]);
		int fd = openat(dirfd_, name, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		off_t size = lseek(fd, 0, SEEK_END);
		uint8_t *buf = malloc((size_t)size);
		ck_assert_int_eq(pread(fd, buf, (size_t)size, 0), size);
		close(fd);
		struct wal_rec r;
		uint64_t segb, hf;
		ck_assert_int_eq(rec_decode(buf, &r), 0);
		ck_assert_int_eq(rec_seg_header_check(&r, &hf, &segb), 0);
		ck_assert_uint_eq(hf, firsts[s]);
		ck_assert_uint_eq(segb, (uint64_t)size);
		for (off_t o = WAL_REC_SIZE; o < size; o += WAL_REC_SIZE) {
			int rc = rec_decode_next(buf + o, expect, &r);
			if (rc == REC_ZERO)
				break;
			ck_assert_msg(rc == 0, "segment %s offset %lld: %d", name, (long long)o, rc);
			ck_assert_msg(r.wall_ns > last_wall || (r.wall_ns == last_wall && r.seq >= last_seq),
				      "hybrid time went back at LSN %llu", (unsigned long long)r.lsn);
			last_wall = r.wall_ns;
			last_seq = r.seq;
			if (fn)
				fn(&r, ctx);
			expect++;
			count++;
		}
		free(buf);
	}
	if (nsegs)
		*nsegs = n;
	return count;
}

struct worker {
	wal_t *w;
	uint32_t id, n;
	bool wait;
	int err;
};

static void *append_worker(void *arg)
{
	struct worker *k = arg;
	for (uint32_t i = 0; i < k->n; i++) {
		cid_t key = {{k->id, i, 0xabc, 0}}, val = {{i, k->id, 0, 0xdef}};
		uint64_t lsn;
		int rc = wal_append(k->w, WAL_OP_INSERT, &key, &val, 0, &lsn);
		if (rc == 0 && k->wait) {
			rc = wal_wait(k->w, lsn);
			if (rc == 0 && atomic_load(&tio.synced_max) < lsn)
				atomic_fetch_add(&tio.early_releases, 1);
		}
		if (rc) {
			k->err = rc;
			return NULL;
		}
	}
	return NULL;
}

struct seen {
	uint32_t nthreads, per;
	uint8_t *hits;
};

static void count_rec(const struct wal_rec *r, void *ctx)
{
	struct seen *s = ctx;
	ck_assert_uint_eq(r->opcode, WAL_OP_INSERT);
	uint64_t t = r->key.w[0], i = r->key.w[1];
	ck_assert(t < s->nthreads && i < s->per);
	ck_assert(r->val.w[0] == i && r->val.w[1] == t && r->key.w[2] == 0xabc);
	ck_assert_msg(s->hits[t * s->per + i] == 0, "record (%llu,%llu) twice",
		      (unsigned long long)t, (unsigned long long)i);
	s->hits[t * s->per + i] = 1;
}

static void run_threads(wal_t *w, uint32_t nthreads, uint32_t per, bool wait)
{
	pthread_t th[64];
	struct worker k[64];
	for (uint32_t i = 0; i < nthreads; i++) {
		k[i] = (struct worker){w, i, per, wait, 0};
		pthread_create(&th[i], NULL, append_worker, &k[i]);
	}
	for (uint32_t i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(k[i].err, 0);
	}
}

/* ---- tests ---- */

START_TEST(test_append_wait_rotate_read_back)
{
	const uint32_t T = 8, PER = 1000 / SCALE;
	struct wal_options o = {.ring_records = 256, .segment_bytes = 64 * 1024};
	wal_t *w;
	atomic_store(&tio.sync_delay_us, 100);
	ck_assert_int_eq(wal_open(dirfd_, &o, 1, NULL, &test_io, &w), 0);
	run_threads(w, T, PER, true);
	ck_assert_uint_eq(atomic_load(&tio.early_releases), 0);
	struct wal_stats st;
	wal_stats(w, &st);
	ck_assert_uint_eq(st.lsn, (uint64_t)T * PER);
	ck_assert_uint_eq(st.durable_lsn, st.lsn);
	ck_assert_uint_eq(st.records, st.lsn);
	ck_assert_uint_gt(st.segments, 3);
	ck_assert_str_eq(wal_failure(w), "");
	ck_assert_int_eq(wal_close(w), 0);
	struct seen s = {T, PER, calloc((size_t)T * PER, 1)};
	int nsegs;
	ck_assert_uint_eq(read_log(1, count_rec, &s, &nsegs), (uint64_t)T * PER);
	ck_assert_int_gt(nsegs, 3);
	for (uint64_t i = 0; i < (uint64_t)T * PER; i++)
		ck_assert_msg(s.hits[i], "acknowledged record %llu missing", (unsigned long long)i);
	free(s.hits);
}
END_TEST

START_TEST(test_group_commit)
{
	const uint32_t T = 16, PER = 400 / SCALE;
	struct wal_options o = {.ring_records = 1024, .segment_bytes = 1 << 20};
	wal_t *w;
	ck_assert_int_eq(wal_open(dirfd_, &o, 100, NULL, &test_io, &w), 0);
	run_threads(w, T, PER, true);
	struct wal_stats st;
	wal_stats(w, &st);
	uint64_t recs = (uint64_t)T * PER;
	ck_assert_uint_eq(st.records, recs);
	ck_assert_uint_eq(atomic_load(&tio.early_releases), 0);
	fprintf(stderr, "group commit: %llu records, %llu fdatasyncs (%.1f records/sync)\n",
		(unsigned long long)recs, (unsigned long long)st.fsyncs,
		(double)recs / (double)st.fsyncs);
	ck_assert_msg(st.fsyncs * 3 < recs, "no group commit: %llu syncs for %llu records",
		      (unsigned long long)st.fsyncs, (unsigned long long)recs);
	ck_assert_int_eq(wal_close(w), 0);
	struct seen s = {T, PER, calloc(recs, 1)};
	ck_assert_uint_eq(read_log(100, count_rec, &s, NULL), recs);
	free(s.hits);
}
END_TEST

static void *wait_worker(void *arg)
{
	struct worker *k = arg;
	uint64_t lsn;
	cid_t key = {{1, 2, 3, 4}};
	k->err = wal_append(k->w, WAL_OP_DELETE_KEY, &key, NULL, 0, &lsn);
	if (k->err == 0)
		k->err = wal_wait(k->w, lsn);
	return NULL;
}

START_TEST(test_fdatasync_failure_is_sticky)
{
	struct wal_options o = {.ring_records = 64, .segment_bytes = 64 * 1024};
	wal_t *w;
	ck_assert_int_eq(wal_open(dirfd_, &o, 1, NULL, &test_io, &w), 0);
	cid_t key = {{9, 9, 9, 9}};
	uint64_t lsn;
	ck_assert_int_eq(wal_append(w, WAL_OP_INSERT, &key, &key, 0, &lsn), 0);
	ck_assert_int_eq(wal_wait(w, lsn), 0);
	uint64_t synced_before = atomic_load(&tio.fdatasyncs);
	atomic_store(&tio.sync_delay_us, 20000); /* let waiters pile up */
	atomic_store(&tio.fail_fdatasync_in, 1);
	pthread_t th[8];
	struct worker k[8];
	for (int i = 0; i < 8; i++) {
		k[i] = (struct worker){.w = w};
		pthread_create(&th[i], NULL, wait_worker, &k[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(k[i].err, CIDSTORE_EIO);
	}
	ck_assert_int_eq(wal_error(w), CIDSTORE_EIO);
	ck_assert_ptr_nonnull(strstr(wal_failure(w), "fdatasync"));
	ck_assert_int_eq(wal_append(w, WAL_OP_INSERT, &key, &key, 0, &lsn), CIDSTORE_EIO);
	ck_assert_int_eq(wal_sync(w), CIDSTORE_EIO);
	struct wal_stats st;
	wal_stats(w, &st);
	ck_assert(st.failed);
	ck_assert_uint_eq(st.durable_lsn, 1); /* never advanced past the failure */
	/* not retried: no successful fdatasync after the failed one */
	ck_assert_uint_eq(atomic_load(&tio.fdatasyncs), synced_before);
	ck_assert_int_eq(wal_close(w), CIDSTORE_EIO);
}
END_TEST

START_TEST(test_write_failure_is_sticky)
{
	struct wal_options o = {.ring_records = 64, .segment_bytes = 64 * 1024};
	wal_t *w;
	ck_assert_int_eq(wal_open(dirfd_, &o, 1, NULL, &test_io, &w), 0);
	atomic_store(&tio.fail_pwrite_in, 1);
	cid_t key = {{1, 1, 1, 1}};
	uint64_t lsn;
	ck_assert_int_eq(wal_append(w, WAL_OP_INSERT, &key, &key, 0, &lsn), 0);
	ck_assert_int_eq(wal_wait(w, lsn), CIDSTORE_EIO);
	ck_assert_ptr_nonnull(strstr(wal_failure(w), "write"));
	ck_assert_int_eq(wal_append(w, WAL_OP_INSERT, &key, &key, 0, &lsn), CIDSTORE_EIO);
	ck_assert_int_eq(wal_close(w), CIDSTORE_EIO);
}
END_TEST

static void collect_lsn(const struct wal_rec *r, void *ctx)
{
	uint64_t *last = ctx;
	*last = r->lsn;
}

static int discard_load(const cid_t *k, const cid_t *v, size_t n, void *ctx)
{
	(void)k, (void)v, (void)n, (void)ctx;
	return 0;
}

static int discard_apply(void *ctx, int op, const cid_t *k, const cid_t *v, uint64_t lsn)
{
	(void)ctx, (void)op, (void)k, (void)v, (void)lsn;
	return 0;
}

static int discard_reset(void *ctx)
{
	(void)ctx;
	return 0;
}

static const struct recov_apply discard_ap = {.load = discard_load,
					      .apply = discard_apply,
					      .reset = discard_reset};

START_TEST(test_reopen_cut_trim_txn_async)
{
	struct wal_options o = {.ring_records = 64, .segment_bytes = 8192, .sync_interval_ms = 5};
	wal_t *w;
	ck_assert_int_eq(wal_open(dirfd_, &o, 1, NULL, NULL, &w), 0);
	cid_t key = {{5, 6, 7, 8}};
	uint64_t lsn = 0;
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(wal_append(w, WAL_OP_INSERT, &key, &key, 0, &lsn), 0);
	/* ASYNC: no waiter, the interval still makes it durable */
	struct wal_stats st;
	for (int i = 0; i < 200; i++) {
		wal_stats(w, &st);
		if (st.durable_lsn == 40)
			break;
		usleep(5000);
	}
	ck_assert_uint_eq(st.durable_lsn, 40);
	/* a transaction: n records with one reservation */
	uint64_t first;
	ck_assert_int_eq(wal_reserve(w, 4, &first), 0);
	ck_assert_uint_eq(first, 41);
	wal_put(w, first, WAL_OP_TXN_START, WAL_FLAG_TXN, NULL, NULL, 77);
	wal_put(w, first + 1, WAL_OP_INSERT, WAL_FLAG_TXN, &key, &key, 77);
	wal_put(w, first + 2, WAL_OP_DELETE_VALUE, WAL_FLAG_TXN, &key, &key, 77);
	wal_put(w, first + 3, WAL_OP_TXN_COMMIT, WAL_FLAG_TXN, NULL, NULL, 77);
	ck_assert_int_eq(wal_reserve(w, 65, &first), CIDSTORE_ERANGE);
	ck_assert_int_eq(wal_sync(w), 0);
	ck_assert_int_eq(wal_wait(w, 1000), CIDSTORE_EINVAL);
	ck_assert_int_eq(wal_close(w), 0);
	uint64_t last = 0;
	int nsegs;
	ck_assert_uint_eq(read_log(1, collect_lsn, &last, &nsegs), 44);
	ck_assert_uint_eq(last, 44);
	ck_assert_int_eq(nsegs, 1);

	/* torn garbage after the last record: reopening at 45 cuts it */
	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, 1);
	int fd = openat(dirfd_, name, O_RDWR);
	uint8_t junk[WAL_REC_SIZE * 2];
	memset(junk, 0x5a, sizeof junk);
	ck_assert_int_eq(pwrite(fd, junk, sizeof junk, 45 * WAL_REC_SIZE), sizeof junk);
	close(fd);
	/* recovery reads the log once, cuts the torn tail and says where the
	 * valid log ends; the WAL continues there without reading it again */
	struct recov_result rr;
	ck_assert_int_eq(recov_run(dirfd_, NULL, &discard_ap, 1, 0, &rr), 0);
	ck_assert(rr.torn && rr.tail_valid);
	ck_assert_uint_eq(rr.last_lsn, 44);
	ck_assert_uint_eq(rr.tail_seg_lsn, 1);
	ck_assert_uint_eq(rr.tail_seg_bytes, 8192);
	struct wal_tail tail = {rr.tail_seg_lsn, rr.tail_seg_bytes};
	ck_assert_int_eq(wal_open(dirfd_, &o, rr.last_lsn + 1, &tail, NULL, &w), 0);
	/* 8192-byte segments hold 63 records: this rotates */
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(wal_append(w, WAL_OP_INSERT, &key, &key, 0, &lsn), 0);
	ck_assert_uint_eq(lsn, 144);
	ck_assert_int_eq(wal_sync(w), 0);
	wal_stats(w, &st);
	ck_assert_uint_eq(st.segments, 3); /* 1, 64, 127 */
	ck_assert_int_eq(wal_trim(w, 63), 0);  /* segment 64 starts above 63 */
	ck_assert_int_eq(wal_trim(w, 64), 1);  /* records 1..63 all below 64 */
	ck_assert_int_eq(wal_trim(w, 1000), 1); /* never the current segment */
	wal_stats(w, &st);
	ck_assert_uint_eq(st.segments, 1);
	ck_assert_int_eq(wal_close(w), 0);
	ck_assert_uint_eq(read_log(127, collect_lsn, &last, &nsegs), 18);
	ck_assert_uint_eq(last, 144);

	/* a tail that cannot hold record next_lsn - 1 is refused */
	wal_t *bad;
	tail = (struct wal_tail){127, 8192}; /* 63 records: LSN 127..189 */
	ck_assert_int_eq(wal_open(dirfd_, &o, 200, &tail, NULL, &bad), CIDSTORE_EINVAL);
	ck_assert_int_eq(wal_open(dirfd_, &o, 100, &tail, NULL, &bad), CIDSTORE_EINVAL);
	tail.seg_bytes = 1000;
	ck_assert_int_eq(wal_open(dirfd_, &o, 130, &tail, NULL, &bad), CIDSTORE_EINVAL);
	ck_assert_int_eq(wal_open(dirfd_, &o, 0, NULL, NULL, &bad), CIDSTORE_EINVAL);
	o.segment_bytes = 1000;
	ck_assert_int_eq(wal_open(dirfd_, &o, 1, NULL, NULL, &bad), CIDSTORE_EINVAL);
}
END_TEST

/* ---- durable path v2: segment sizes, live bytes, leaders ---- */

/* Sizes of the segment files, in LSN order (n of them). */
static int seg_sizes(uint64_t *sizes, int cap)
{
	uint64_t firsts[256];
	int n = 0;
	DIR *d = opendir(dirpath);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t f;
		if (rec_seg_parse(de->d_name, &f) == 0 && n < 256)
			firsts[n++] = f;
	}
	closedir(d);
	qsort(firsts, (size_t)n, sizeof firsts[0], cmp_u64);
	for (int i = 0; i < n && i < cap; i++) {
		char name[WAL_SEG_NAME_LEN + 1];
		rec_seg_name(name, firsts[i]);
		struct stat st;
		ck_assert_int_eq(fstatat(dirfd_, name, &st, 0), 0);
		sizes[i] = (uint64_t)st.st_size;
	}
	return n;
}

START_TEST(test_segments_start_small_and_grow)
{
	/* defect 6: a one-record log is one 1 MiB segment, not segment_bytes */
	struct wal_options o = {.ring_records = 4096, .segment_bytes = 4ull << 20};
	wal_t *w;
	ck_assert_int_eq(wal_open(dirfd_, &o, 1, NULL, &test_io, &w), 0);
	cid_t key = {{1, 2, 3, 4}};
	uint64_t lsn;
	ck_assert_int_eq(wal_append(w, WAL_OP_INSERT, &key, &key, 0, &lsn), 0);
	ck_assert_int_eq(wal_wait(w, lsn), 0);
	uint64_t sz[256];
	ck_assert_int_eq(seg_sizes(sz, 256), 1);
	ck_assert_uint_eq(sz[0], 1u << 20);
	/* a fast writer: 1 MiB segments fill in far less than a second, so
	 * sizes double up to segment_bytes (1, 2, 4, 4, ... MiB) */
	run_threads(w, 2, 60000, false);
	ck_assert_int_eq(wal_sync(w), 0);
	ck_assert_int_eq(wal_close(w), 0);
	int n = seg_sizes(sz, 256);
	ck_assert_int_ge(n, 3);
	ck_assert_uint_eq(sz[0], 1u << 20);
	for (int i = 1; i < n; i++) {
		ck_assert_msg(sz[i] >= sz[i - 1] && sz[i] <= 2 * sz[i - 1] && sz[i] <= o.segment_bytes,
			      "segment %d: %llu bytes after %llu", i, (unsigned long long)sz[i],
			      (unsigned long long)sz[i - 1]);
	}
	ck_assert_msg(sz[n - 2] == o.segment_bytes, "no full-size segment among %d", n);
	/* every segment's header states its own size (read_log checks it) */
	ck_assert_uint_eq(read_log(1, NULL, NULL, NULL), 1 + 2 * 60000);
	/* segment_bytes below 1 MiB: that is the first size */
	teardown();
	setup();
	o.segment_bytes = 64 * 1024;
	ck_assert_int_eq(wal_open(dirfd_, &o, 1, NULL, &test_io, &w), 0);
	ck_assert_int_eq(seg_sizes(sz, 256), 1);
	ck_assert_uint_eq(sz[0], 64 * 1024);
	ck_assert_int_eq(wal_close(w), 0);
}
END_TEST

START_TEST(test_live_bytes_seed)
{
	/* defect 5: bytes starts at live_bytes and counts 128 per record */
	struct wal_options o = {.ring_records = 64, .segment_bytes = 8192, .live_bytes = 5 * 128};
	wal_t *w;
	ck_assert_int_eq(wal_open(dirfd_, &o, 1, NULL, &test_io, &w), 0);
	struct wal_stats st;
	wal_stats(w, &st);
	ck_assert_uint_eq(st.bytes, 5 * 128);
	cid_t key = {{1, 2, 3, 4}};
	for (int i = 0; i < 100; i++) /* rotates: headers are not counted */
		ck_assert_int_eq(wal_append(w, WAL_OP_INSERT, &key, &key, 0, NULL), 0);
	ck_assert_int_eq(wal_sync(w), 0);
	wal_stats(w, &st);
	ck_assert_uint_ge(st.segments, 2);
	ck_assert_uint_eq(st.bytes, (5 + 100) * 128);
	ck_assert_int_eq(wal_close(w), 0);
}
END_TEST

struct loop_arg {
	wal_t *w;
	uint32_t id;
	long acked;
	int err;
};

/* append + wait until the log fails */
static void *commit_loop(void *p)
{
	struct loop_arg *a = p;
	for (uint32_t i = 0;; i++) {
		cid_t key = {{a->id, i, 7, 7}};
		uint64_t lsn;
		int rc = wal_append(a->w, WAL_OP_INSERT, &key, &key, 0, &lsn);
		if (rc == 0) {
			rc = wal_wait(a->w, lsn);
			if (rc == 0 && atomic_load(&tio.synced_max) < lsn)
				atomic_fetch_add(&tio.early_releases, 1);
		}
		if (rc) {
			a->err = rc;
			return NULL;
		}
		a->acked++;
	}
}

START_TEST(test_leaders_fail_together)
{
	/* many committers leading in turn; the 20th fdatasync fails: every
	 * committer gets the failure, none was released before a sync that
	 * covered it, and no fdatasync is attempted after the failed one */
	struct wal_options o = {.ring_records = 256, .segment_bytes = 1 << 20};
	wal_t *w;
	ck_assert_int_eq(wal_open(dirfd_, &o, 1, NULL, &test_io, &w), 0);
	atomic_store(&tio.fdatasyncs, 0); /* the new segment's own sync */
	atomic_store(&tio.sync_delay_us, 200);
	atomic_store(&tio.fail_fdatasync_in, 20);
	pthread_t th[12];
	struct loop_arg a[12];
	for (uint32_t i = 0; i < 12; i++) {
		a[i] = (struct loop_arg){.w = w, .id = i};
		ck_assert_int_eq(pthread_create(&th[i], NULL, commit_loop, &a[i]), 0);
	}
	long acked = 0;
	for (int i = 0; i < 12; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(a[i].err, CIDSTORE_EIO);
		acked += a[i].acked;
	}
	ck_assert_uint_eq(atomic_load(&tio.early_releases), 0);
	ck_assert_uint_eq(atomic_load(&tio.fdatasyncs), 19); /* never retried */
	struct wal_stats st;
	wal_stats(w, &st);
	ck_assert(st.failed);
	ck_assert_uint_ge(st.durable_lsn, (uint64_t)acked);
	ck_assert_uint_le(st.durable_lsn, atomic_load(&tio.synced_max));
	ck_assert_int_eq(wal_close(w), CIDSTORE_EIO);
}
END_TEST

/* ---- figures (WAL_BENCH=1) ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

START_TEST(test_bench)
{
	if (!getenv("WAL_BENCH"))
		return;
	struct wal_options o = {.ring_records = 65536, .segment_bytes = 64ull << 20,
				.sync_interval_ms = 10};
	wal_t *w;
	ck_assert_int_eq(wal_open(dirfd_, &o, 1, NULL, NULL, &w), 0);
	uint32_t per = 2000000;
	double t0 = now_s();
	run_threads(w, 2, per, false);
	double t1 = now_s();
	ck_assert_int_eq(wal_sync(w), 0);
	double t2 = now_s();
	struct wal_stats st;
	wal_stats(w, &st);
	fprintf(stderr, "ASYNC 2 threads: %.0f records/s into the ring, %.0f records/s to durable (%llu fsyncs)\n",
		2.0 * per / (t1 - t0), 2.0 * per / (t2 - t0), (unsigned long long)st.fsyncs);
	ck_assert_int_eq(wal_close(w), 0);
	teardown();
	setup();
	uint32_t threads[] = {1, 16};
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(wal_open(dirfd_, &o, 1, NULL, NULL, &w), 0);
		uint32_t n = threads[i] == 1 ? 10000 : 4000;
		t0 = now_s();
		run_threads(w, threads[i], n, true);
		t1 = now_s();
		wal_stats(w, &st);
		fprintf(stderr, "SYNC %u threads: %.0f commits/s, %.1f records/fdatasync\n",
			threads[i], threads[i] * (double)n / (t1 - t0),
			(double)st.records / (double)st.fsyncs);
		ck_assert_int_eq(wal_close(w), 0);
		teardown();
		setup();
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wal");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 240);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_append_wait_rotate_read_back);
	tcase_add_test(tc, test_group_commit);
	tcase_add_test(tc, test_fdatasync_failure_is_sticky);
	tcase_add_test(tc, test_write_failure_is_sticky);
	tcase_add_test(tc, test_reopen_cut_trim_txn_async);
	tcase_add_test(tc, test_segments_start_small_and_grow);
	tcase_add_test(tc, test_live_bytes_seed);
	tcase_add_test(tc, test_leaders_fail_together);
	tcase_add_test(tc, test_bench);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
