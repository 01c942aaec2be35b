/*
 * test_recovery.c — recovery from hand-built WAL segments (and checkpoints):
 * clean log, zero-filled tail, torn last record, mid-log corruption, LSN
 * gaps and missing segments, newer formats, transactions, parallel replay
 * versus serial replay, checkpoint fallback, checkpoints loaded by several
 * threads (ap->load_many; a corrupt middle block falls back; the index's
 * idx_insert_sets path stays valid), and the directory lock.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "index/index.h"
#include "log/checkpoint.h"
#include "log/dir.h"
#include "log/record.h"
#include "log/recovery.h"

#define LOG_TEST_TMP_PREFIX "cidstore-recov"
#include "log_test_util.h"

static void file_patch(const char *name, off_t off, const void *p, size_t n)
{
	int fd = openat(tfd, name, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, p, n, off), (ssize_t)n);
	close(fd);
}

static void file_flip(const char *name, off_t off)
{
	uint8_t b;
	int fd = openat(tfd, name, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, off), 1);
	b ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* n random non-transactional ops with LSN first.., applied to model too. */
static struct wal_rec *gen_ops(uint64_t first, size_t n, uint64_t nkeys,
			       uint64_t nvals, struct tmap *model)
{
	struct wal_rec *r = calloc(n, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		uint64_t x = rng();
		r[i].lsn = first + i;
		r[i].key = mk_key(x % nkeys);
		unsigned c = (unsigned)((x >> 32) % 100);
		r[i].opcode = c < 70 ? WAL_OP_INSERT : c < 97 ? WAL_OP_DELETE_VALUE : WAL_OP_DELETE_KEY;
		if (r[i].opcode != WAL_OP_DELETE_KEY)
			r[i].val = mk_val((x >> 16) % nvals);
		r[i].wall_ns = first + i;
		if (model)
			tmap_op(model, r[i].opcode, &r[i].key, &r[i].val);
	}
	return r;
}

static int run(struct tmap *m, unsigned threads, unsigned flags, bool reset,
	       struct recov_result *res)
{
	struct recov_apply ap = {cb_load, cb_apply, reset ? cb_reset : NULL, m, NULL, NULL, NULL};
	return recov_run(tfd, NULL, &ap, threads, flags, res);
}

/* ---- tests ---- */

START_TEST(clean_log)
{
	struct tmap *model = tmap_new(), *got = tmap_new();
	struct wal_rec *r = gen_ops(1, 1000, 50, 8, model);
	seg_write(1, r, 400, 0);             /* exactly full: no zero tail */
	seg_write(401, r + 400, 600, SEG_BYTES); /* zero-filled tail */
	struct recov_result res;
	int rc = run(got, 1, 0, true, &res);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
	ck_assert_uint_eq(res.last_lsn, 1000);
	ck_assert_uint_eq(res.records, 1000);
	ck_assert_uint_eq(res.replayed, 1000);
	ck_assert(!res.torn);
	ck_assert(res.tail_valid);
	ck_assert_uint_eq(res.tail_seg_lsn, 401);
	ck_assert_uint_eq(res.tail_off, 601 * WAL_REC_SIZE);
	ck_assert_uint_eq(res.segments, 2);
	tmap_expect_equal(model, got);
	free(r);
	tmap_free(model);
	tmap_free(got);
}
END_TEST

START_TEST(empty_dir)
{
	struct tmap *got = tmap_new();
	struct recov_result res;
	ck_assert_int_eq(run(got, 1, 0, true, &res), 0);
	ck_assert_uint_eq(res.last_lsn, 0);
	ck_assert(!res.tail_valid);
	ck_assert(!res.have_ckpt);
	tmap_free(got);
}
END_TEST

static void torn_case(int how)
{
	struct tmap *model = tmap_new(), *got = tmap_new();
	struct wal_rec *r = gen_ops(1, 100, 20, 4, model);
	/* the model without the last record */
	struct tmap *m99 = tmap_new();
	for (int i = 0; i < 99; i++)
		tmap_op(m99, r[i].opcode, &r[i].key, &r[i].val);
	seg_write(1, r, 100, SEG_BYTES);
	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, 1);
	off_t off = 100 * WAL_REC_SIZE;
	if (how == 0) {
		file_flip(name, off + 60); /* bad CRC */
	} else {
		uint8_t z[64] = {0};
		file_patch(name, off + 64, z, sizeof(z)); /* second half never written */
	}
	struct recov_result res;
	int rc = run(got, 1, 0, true, &res);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
	ck_assert(res.torn);
	ck_assert_uint_eq(res.torn_off, (uint64_t)off);
	ck_assert_uint_eq(res.last_lsn, 99);
	ck_assert_uint_eq(res.tail_off, (uint64_t)off);
	ck_assert(res.tail_valid);
	tmap_expect_equal(m99, got);
	/* the torn bytes were zeroed: a second recovery sees a clean tail */
	uint8_t buf[WAL_REC_SIZE], zero[WAL_REC_SIZE] = {0};
	int fd = openat(tfd, name, O_RDONLY);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), off), (ssize_t)sizeof(buf));
	close(fd);
	ck_assert(memcmp(buf, zero, sizeof(buf)) == 0);
	struct tmap *again = tmap_new();
	ck_assert_int_eq(run(again, 1, 0, true, &res), 0);
	ck_assert(!res.torn);
	ck_assert_uint_eq(res.last_lsn, 99);
	tmap_free(again);
	free(r);
	tmap_free(model);
	tmap_free(m99);
	tmap_free(got);
}

START_TEST(torn_last_record)
{
	torn_case(0);
}
END_TEST

START_TEST(torn_half_record)
{
	torn_case(1);
}
END_TEST

START_TEST(torn_readonly_not_cut)
{
	struct wal_rec *r = gen_ops(1, 10, 5, 4, NULL);
	seg_write(1, r, 10, SEG_BYTES);
	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, 1);
	file_flip(name, 10 * WAL_REC_SIZE + 3);
	struct tmap *got = tmap_new();
	struct recov_result res;
	ck_assert_int_eq(run(got, 1, RECOV_READONLY, true, &res), 0);
	ck_assert(res.torn);
	ck_assert_int_eq(run(got, 1, RECOV_READONLY, true, &res), 0);
	ck_assert(res.torn); /* still there */
	ck_assert_int_eq(recov_verify(tfd, NULL, &res), 0);
	ck_assert(res.torn);
	ck_assert_uint_eq(res.last_lsn, 9);
	free(r);
	tmap_free(got);
}
END_TEST

START_TEST(flipped_mid_log)
{
	struct wal_rec *r = gen_ops(1, 100, 20, 4, NULL);
	seg_write(1, r, 100, SEG_BYTES);
	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, 1);
	file_flip(name, 50 * WAL_REC_SIZE + 40);
	struct tmap *got = tmap_new();
	struct recov_result res;
	ck_assert_int_eq(run(got, 1, 0, true, &res), CIDSTORE_ECORRUPT);
	ck_assert_msg(strstr(res.msg, name) && strstr(res.msg, "offset"), "msg: %s", res.msg);
	ck_assert_int_eq(recov_verify(tfd, NULL, &res), CIDSTORE_ECORRUPT);
	free(r);
	tmap_free(got);
}
END_TEST

START_TEST(torn_in_older_segment)
{
	struct wal_rec *r = gen_ops(1, 200, 20, 4, NULL);
	seg_write(1, r, 100, SEG_BYTES);
	seg_write(101, r + 100, 100, SEG_BYTES);
	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, 1);
	file_flip(name, 100 * WAL_REC_SIZE + 5); /* last record of the older segment */
	struct tmap *got = tmap_new();
	struct recov_result res;
	ck_assert_int_eq(run(got, 1, 0, true, &res), CIDSTORE_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(res.msg, name));
	free(r);
	tmap_free(got);
}
END_TEST

START_TEST(missing_segment)
{
	struct wal_rec *r = gen_ops(1, 300, 20, 4, NULL);
	seg_write(1, r, 100, SEG_BYTES);
	seg_write(201, r + 200, 100, SEG_BYTES); /* 101..200 missing */
	struct tmap *got = tmap_new();
	struct recov_result res;
	ck_assert_int_eq(run(got, 1, 0, true, &res), CIDSTORE_ECORRUPT);
	ck_assert_msg(strstr(res.msg, "missing") != NULL, "msg: %s", res.msg);
	/* the log must start at LSN 1 when there is no checkpoint */
	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, 1);
	unlinkat(tfd, name, 0);
	ck_assert_int_eq(run(got, 1, 0, true, &res), CIDSTORE_ECORRUPT);
	free(r);
	tmap_free(got);
}
END_TEST

START_TEST(lsn_gap_in_segment)
{
	struct wal_rec *r = gen_ops(1, 100, 20, 4, NULL);
	for (int i = 60; i < 100; i++)
		r[i].lsn += 5; /* 60 valid records, then a jump */
	seg_write(1, r, 100, SEG_BYTES);
	struct tmap *got = tmap_new();
	struct recov_result res;
	ck_assert_int_eq(run(got, 1, 0, true, &res), CIDSTORE_ECORRUPT);
	ck_assert_msg(strstr(res.msg, "gap") != NULL, "msg: %s", res.msg);
	free(r);
	tmap_free(got);
}
END_TEST

START_TEST(newer_version)
{
	struct wal_rec *r = gen_ops(1, 50, 20, 4, NULL);
	r[30].version = 2;
	seg_write(1, r, 50, SEG_BYTES);
	struct tmap *got = tmap_new();
	struct recov_result res;
	ck_assert_int_eq(run(got, 1, 0, true, &res), CIDSTORE_EVERSION);
	/* a segment header of a newer format */
	r[30].version = 0;
	seg_write(1, r, 50, SEG_BYTES);
	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, 1);
	uint8_t h[WAL_REC_SIZE];
	struct wal_rec hr;
	rec_seg_header(&hr, 1, SEG_BYTES, 1);
	hr.version = 3;
	rec_encode(h, &hr);
	file_patch(name, 0, h, sizeof(h));
	ck_assert_int_eq(run(got, 1, 0, true, &res), CIDSTORE_EVERSION);
	free(r);
	tmap_free(got);
}
END_TEST

START_TEST(torn_segment_header_removed)
{
	struct tmap *model = tmap_new(), *got = tmap_new();
	struct wal_rec *r = gen_ops(1, 100, 20, 4, model);
	seg_write(1, r, 100, SEG_BYTES);
	/* a newest segment whose creation was cut short: zeros, half a header */
	seg_write(101, NULL, 0, SEG_BYTES);
	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, 101);
	uint8_t z[64] = {0};
	file_patch(name, 64, z, sizeof(z));
	struct recov_result res;
	int rc = run(got, 1, 0, true, &res);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
	ck_assert_uint_eq(res.last_lsn, 100);
	ck_assert(res.torn);
	ck_assert_uint_eq(res.tail_seg_lsn, 1);
	ck_assert_int_ne(faccessat(tfd, name, F_OK, 0), 0); /* removed */
	tmap_expect_equal(model, got);
	free(r);
	tmap_free(model);
	tmap_free(got);
}
END_TEST

static struct wal_rec rec_op(uint64_t lsn, int op, uint64_t k, uint64_t v, uint64_t txn)
{
	struct wal_rec r;
	memset(&r, 0, sizeof(r));
	r.lsn = lsn;
	r.opcode = (uint8_t)op;
	r.key = op >= WAL_OP_TXN_START ? (cid_t){{0}} : mk_key(k);
	if (op == WAL_OP_INSERT || op == WAL_OP_DELETE_VALUE)
		r.val = mk_val(v);
	r.txn = txn;
	r.flags = txn ? WAL_FLAG_TXN : 0;
	return r;
}

START_TEST(transactions)
{
	struct wal_rec r[32];
	uint64_t l = 1;
	size_t n = 0;
	r[n++] = rec_op(l++, WAL_OP_INSERT, 1, 1, 0);          /* plain */
	r[n++] = rec_op(l++, WAL_OP_TXN_START, 0, 0, 7);
	r[n++] = rec_op(l++, WAL_OP_TXN_START, 0, 0, 8);
	r[n++] = rec_op(l++, WAL_OP_INSERT, 2, 1, 7);          /* committed */
	r[n++] = rec_op(l++, WAL_OP_INSERT, 3, 1, 8);          /* aborted */
	r[n++] = rec_op(l++, WAL_OP_INSERT, 2, 2, 7);
	r[n++] = rec_op(l++, WAL_OP_DELETE_VALUE, 2, 2, 0);    /* after txn 7's insert: wins */
	r[n++] = rec_op(l++, WAL_OP_INSERT, 4, 1, 0);
	r[n++] = rec_op(l++, WAL_OP_TXN_ABORT, 0, 0, 8);
	r[n++] = rec_op(l++, WAL_OP_TXN_COMMIT, 0, 0, 7);
	r[n++] = rec_op(l++, WAL_OP_TXN_START, 0, 0, 9);
	r[n++] = rec_op(l++, WAL_OP_INSERT, 5, 1, 9);          /* never committed */
	r[n++] = rec_op(l++, WAL_OP_DELETE_KEY, 1, 0, 9);      /* never committed */
	r[n++] = rec_op(l++, WAL_OP_INSERT, 6, 1, 0);          /* plain, after open txn */
	seg_write(1, r, n, SEG_BYTES);

	struct tmap *exp = tmap_new();
	cid_t k, v;
	k = mk_key(1); v = mk_val(1); tmap_op(exp, WAL_OP_INSERT, &k, &v);
	k = mk_key(2); v = mk_val(1); tmap_op(exp, WAL_OP_INSERT, &k, &v);
	k = mk_key(4); v = mk_val(1); tmap_op(exp, WAL_OP_INSERT, &k, &v);
	k = mk_key(6); v = mk_val(1); tmap_op(exp, WAL_OP_INSERT, &k, &v);

	for (unsigned th = 1; th <= 3; th += 2) {
		struct tmap *got = tmap_new();
		struct recov_result res;
		int rc = run(got, th, 0, true, &res);
		ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
		ck_assert_uint_eq(res.last_lsn, n);
		ck_assert_uint_eq(res.txn_committed, 1);
		ck_assert_uint_eq(res.txn_dropped, 2);
		ck_assert_uint_eq(res.txn_ops_dropped, 3);
		tmap_expect_equal(exp, got);
		tmap_free(got);
	}
	tmap_free(exp);
}
END_TEST

START_TEST(parallel_equals_serial)
{
	const size_t N = 200000;
	struct tmap *model = tmap_new();
	struct wal_rec *r = gen_ops(1, N, 5000, 6, model);
	size_t per = 50000;
	for (size_t i = 0; i < N; i += per)
		seg_write(1 + i, r + i, per, 0);
	double rate[3] = {0};
	unsigned ths[3] = {1, 2, 4};
	for (int t = 0; t < 3; t++) {
		struct tmap *got = tmap_new();
		struct recov_result res;
		int rc = run(got, ths[t], 0, true, &res);
		ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
		ck_assert_uint_eq(res.replayed, N);
		ck_assert_uint_eq(res.last_lsn, N);
		tmap_expect_equal(model, got);
		rate[t] = res.replay_rate;
		tmap_free(got);
	}
	printf("replay rate (records/s, mutex-guarded test map): 1 thread %.0f, "
	       "2 threads %.0f, 4 threads %.0f\n", rate[0], rate[1], rate[2]);
	free(r);
	tmap_free(model);
}
END_TEST

/* Replay into the real index (thread-safe, no global lock): the records/s
 * figure that matters.  Informational; the state itself is checked against
 * the model by key count. */
static int idx_load_cb(const cid_t *k, const cid_t *v, size_t n, void *ctx)
{
	for (size_t i = 0; i < n; i++)
		if (idx_insert(ctx, k, &v[i], NULL) < 0)
			return CIDSTORE_ENOMEM;
	return 0;
}

static int idx_apply_cb(void *ctx, int op, const cid_t *k, const cid_t *v, uint64_t lsn)
{
	(void)lsn;
	long rc = op == WAL_OP_INSERT ? idx_insert(ctx, k, v, NULL)
		: op == WAL_OP_DELETE_VALUE ? idx_delete_value(ctx, k, v, NULL)
		: idx_delete_key(ctx, k, NULL);
	return rc < 0 ? (int)rc : 0;
}

static int count_cb(const cid_t *k, const cid_t *v, size_t n, void *ctx)
{
	(void)k;
	(void)v;
	uint64_t *c = ctx;
	c[0]++;
	c[1] += n;
	return 0;
}

START_TEST(replay_rate_index)
{
#ifdef CIDSTORE_TSAN
	/* Not run under TSan: the index (another layer, in progress) reports a
	 * race of its own between a thread-exit epoch callback and a reader;
	 * recovery's own threading is covered by the tests on the model. */
	return;
#endif
	const size_t N = 1000000;
	struct tmap *model = tmap_new();
	struct wal_rec *r = gen_ops(1, N, N / 4, 4, model);
	size_t per = N / 4;
	for (size_t i = 0; i < N; i += per)
		seg_write(1 + i, r + i, per, 0);
	uint64_t mv, mk = 0;
	size_t np;
	free(tmap_pairs(model, &np));
	mv = np;
	for (size_t i = 0; i < TMAP_B; i++)
		for (struct tmap_ent *e = model->b[i]; e; e = e->next)
			mk++;
	unsigned ths[2] = {1, 2};
	for (int t = 0; t < 2; t++) {
		idx_t *ix;
		idx_options_t o = {.seed = 1, .initial_depth = 0};
		ck_assert_int_eq(idx_create(&o, &ix), 0);
		struct recov_apply ap = {idx_load_cb, idx_apply_cb, NULL, ix, NULL, NULL, NULL};
		struct recov_result res;
		int rc = recov_run(tfd, NULL, &ap, ths[t], 0, &res);
		ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
		uint64_t cnt[2] = {0, 0};
		ck_assert_int_eq(idx_scan(ix, count_cb, cnt), 0);
		ck_assert_uint_eq(cnt[0], mk);
		ck_assert_uint_eq(cnt[1], mv);
		printf("replay into the index: %zu records, %u worker(s): %.3f s, "
		       "%.2f M records/s\n", N, ths[t], res.replay_seconds,
		       res.replay_rate / 1e6);
		idx_destroy(ix);
	}
	free(r);
	tmap_free(model);
}
END_TEST

START_TEST(checkpoint_then_log)
{
	struct tmap *model = tmap_new();
	struct wal_rec *r = gen_ops(1, 500, 40, 5, model);
	struct ckpt_info ci;
	ck_assert_int_eq(ckpt_write(tfd, NULL, 500, tmap_source, model, &ci), 0);
	struct wal_rec *r2 = gen_ops(501, 500, 40, 5, model);
	seg_write(1, r, 500, 0);
	seg_write(501, r2, 500, SEG_BYTES);
	for (int reset = 0; reset < 2; reset++) {
		struct tmap *got = tmap_new();
		struct recov_result res;
		int rc = run(got, 2, 0, reset, &res);
		ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
		ck_assert(res.have_ckpt && !res.ckpt_fallback);
		ck_assert_uint_eq(res.ckpt_lsn, 500);
		ck_assert_uint_eq(res.replayed, 500);
		ck_assert_uint_eq(res.segments, 1); /* wal-1 not needed */
		ck_assert_uint_eq(res.last_lsn, 1000);
		tmap_expect_equal(model, got);
		tmap_free(got);
	}
	free(r);
	free(r2);
	tmap_free(model);
}
END_TEST

START_TEST(checkpoint_fallback)
{
	struct tmap *model = tmap_new();
	struct wal_rec *r = gen_ops(1, 300, 40, 5, model);
	ck_assert_int_eq(ckpt_write(tfd, NULL, 300, tmap_source, model, NULL), 0);
	struct wal_rec *r2 = gen_ops(301, 300, 40, 5, model);
	ck_assert_int_eq(ckpt_write(tfd, NULL, 600, tmap_source, model, NULL), 0);
	struct wal_rec *r3 = gen_ops(601, 100, 40, 5, model);
	seg_write(301, r2, 300, 0);
	seg_write(601, r3, 100, SEG_BYTES);
	char newest[CKPT_NAME_LEN + 1];
	ckpt_name(newest, 600);
	file_flip(newest, 200); /* a data block of the newest checkpoint */
	for (int reset = 0; reset < 2; reset++) {
		struct tmap *got = tmap_new();
		struct recov_result res;
		int rc = run(got, 1, 0, reset, &res);
		ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
		ck_assert(res.have_ckpt && res.ckpt_fallback);
		ck_assert_uint_eq(res.ckpt_lsn, 300);
		ck_assert_uint_eq(res.replayed, 400);
		tmap_expect_equal(model, got);
		tmap_free(got);
	}
	/* WAL trimmed past the older checkpoint: the fallback would lose
	 * records 301..600, so it must fail, not pretend. */
	char seg[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(seg, 301);
	unlinkat(tfd, seg, 0);
	struct tmap *got = tmap_new();
	struct recov_result res;
	ck_assert_int_eq(run(got, 1, 0, true, &res), CIDSTORE_ECORRUPT);
	ck_assert_msg(strstr(res.msg, "ckpt-0000000000000258.ckpt") != NULL, "msg: %s", res.msg);
	tmap_free(got);
	free(r);
	free(r2);
	free(r3);
	tmap_free(model);
}
END_TEST

/* ---- checkpoints loaded by several threads (ap->load_many) ---- */

static int cb_load_many(void *ctx, const struct ckpt_entry *e, size_t n)
{
	struct tmap *m = ctx;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < e[i].n; j++)
			tmap_add_l(m, e[i].key, &e[i].vals[j]);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static int run_many(struct tmap *m, unsigned threads, bool reset, struct recov_result *res)
{
	struct recov_apply ap = {cb_load, cb_apply, reset ? cb_reset : NULL, m, NULL,
				 cb_load_many, NULL};
	return recov_run(tfd, NULL, &ap, threads, 0, res);
}

/* nkeys keys with 1..3 values each and 3 keys with 2500 values (each spans
 * two blocks), into model. */
static void big_state(struct tmap *model, uint64_t nkeys, uint64_t salt)
{
	for (uint64_t i = 0; i < nkeys; i++) {
		cid_t k = mk_key(i);
		for (uint64_t j = 0; j <= (i + salt) % 3; j++) {
			cid_t v = mk_val(j + salt);
			tmap_op(model, WAL_OP_INSERT, &k, &v);
		}
	}
	for (uint64_t b = 0; b < 3; b++) {
		cid_t k = mk_key(5000000 + b);
		for (uint64_t j = 0; j < 2500; j++) {
			cid_t v = mk_val(j * 7 + salt);
			tmap_op(model, WAL_OP_INSERT, &k, &v);
		}
	}
}

/* ckpt 10 (state A), WAL 11..610 (ops on the same keys), ckpt 610 (state
 * B): recovery with 1..4 loader threads gives B; with a corrupt block in
 * the middle of ckpt 610 (found while other threads load the blocks around
 * it) it falls back to A + replay, with reset (the partial load is
 * discarded) or without (every checkpoint verified first, in parallel). */
START_TEST(checkpoint_parallel_load)
{
	struct tmap *model = tmap_new();
	big_state(model, 6000, 0);
	ck_assert_int_eq(ckpt_write(tfd, NULL, 10, tmap_source, model, NULL), 0);
	struct wal_rec *r = gen_ops(11, 600, 6000, 5, model);
	seg_write(11, r, 600, 0);
	big_state(model, 6000, 1);
	struct ckpt_info ci;
	ck_assert_int_eq(ckpt_write(tfd, NULL, 610, tmap_source, model, &ci), 0);
	ck_assert_uint_gt(ci.blocks, 10);
	for (unsigned th = 1; th <= 4; th++) {
		for (int reset = 0; reset < 2; reset++) {
			struct tmap *got = tmap_new();
			struct recov_result res;
			int rc = run_many(got, th, reset, &res);
			ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
			ck_assert(res.have_ckpt && !res.ckpt_fallback);
			ck_assert_uint_eq(res.ckpt_lsn, 610);
			ck_assert_uint_eq(res.ckpt_keys, ci.keys);
			ck_assert_uint_eq(res.ckpt_values, ci.values);
			tmap_expect_equal(model, got);
			tmap_free(got);
		}
	}
	/* a middle block of the newest checkpoint goes bad */
	char newest[CKPT_NAME_LEN + 1];
	ckpt_name(newest, 610);
	file_flip(newest, (off_t)(ci.bytes / 2));
	for (unsigned th = 1; th <= 4; th++) {
		for (int reset = 0; reset < 2; reset++) {
			struct tmap *got = tmap_new();
			struct recov_result res;
			int rc = run_many(got, th, reset, &res);
			ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
			ck_assert(res.have_ckpt && res.ckpt_fallback);
			ck_assert_uint_eq(res.ckpt_lsn, 10);
			ck_assert_uint_eq(res.replayed, 600);
			/* state A + WAL: the model before big_state(.., 1) was
			 * applied on top, i.e. the same pairs minus those only B's
			 * checkpoint holds: compare with a fresh model */
			struct tmap *want = tmap_new();
			big_state(want, 6000, 0);
			for (size_t i = 0; i < 600; i++)
				tmap_op(want, r[i].opcode, &r[i].key, &r[i].val);
			tmap_expect_equal(want, got);
			tmap_free(want);
			tmap_free(got);
		}
	}
	free(r);
	tmap_free(model);
}
END_TEST

static int idx_load_many_cb(void *ctx, const struct ckpt_entry *e, size_t n)
{
	idx_set_t s[CKPT_LOAD_BATCH];
	ck_assert_uint_le(n, CKPT_LOAD_BATCH);
	for (size_t i = 0; i < n; i++)
		s[i] = (idx_set_t){e[i].key, e[i].vals, e[i].n};
	long rc = idx_insert_sets(ctx, s, n);
	return rc < 0 ? (int)rc : 0;
}

static void idx_prefetch_cb(void *ctx, const cid_t *key)
{
	idx_prefetch(ctx, key);
}

/* The store's path: a checkpoint with big sets loaded into the index by
 * 1..4 threads through idx_insert_sets (the continuations of a key may
 * race with its first entry), then replay: a valid index equal to the
 * model. */
START_TEST(checkpoint_into_index)
{
	struct tmap *model = tmap_new();
	big_state(model, 20000, 2);
	ck_assert_int_eq(ckpt_write(tfd, NULL, 50, tmap_source, model, NULL), 0);
	struct wal_rec *r = gen_ops(51, 2000, 20000, 5, model);
	seg_write(51, r, 2000, 0);
	for (unsigned th = 1; th <= 4; th++) {
		idx_t *ix;
		idx_options_t o = {.seed = th, .expected_keys = 0};
		ck_assert_int_eq(idx_create(&o, &ix), 0);
		struct recov_apply ap = {idx_load_cb, idx_apply_cb, NULL, ix, NULL,
					 idx_load_many_cb, idx_prefetch_cb};
		struct recov_result res;
		int rc = recov_run(tfd, NULL, &ap, th, 0, &res);
		ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
		ck_assert_int_eq(idx_valid(ix), 0);
		struct tmap *got = tmap_new();
		ck_assert_int_eq(idx_scan(ix, cb_load, got), 0);
		tmap_expect_equal(model, got);
		tmap_free(got);
		idx_destroy(ix);
	}
	free(r);
	tmap_free(model);
}
END_TEST

START_TEST(checkpoint_newer_version_refused)
{
	struct tmap *model = tmap_new();
	struct wal_rec *r = gen_ops(1, 10, 5, 5, model);
	ck_assert_int_eq(ckpt_write(tfd, NULL, 10, tmap_source, model, NULL), 0);
	char name[CKPT_NAME_LEN + 1];
	ckpt_name(name, 10);
	uint8_t h[CKPT_HEADER_BYTES];
	int fd = openat(tfd, name, O_RDWR);
	ck_assert_int_eq(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	h[8] = 2;
	uint32_t crc = rec_crc32c(h, 60);
	memcpy(h + 60, &crc, 4); /* little-endian host */
	ck_assert_int_eq(pwrite(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);
	seg_write(1, r, 10, SEG_BYTES);
	struct tmap *got = tmap_new();
	struct recov_result res;
	ck_assert_int_eq(run(got, 1, 0, true, &res), CIDSTORE_EVERSION);
	free(r);
	tmap_free(got);
	tmap_free(model);
}
END_TEST

static int fail_apply(void *ctx, int op, const cid_t *k, const cid_t *v, uint64_t lsn)
{
	(void)ctx; (void)op; (void)k; (void)v;
	return lsn >= 1234 ? CIDSTORE_ENOMEM : 0;
}

START_TEST(apply_error_stops)
{
	struct wal_rec *r = gen_ops(1, 5000, 100, 5, NULL);
	seg_write(1, r, 5000, 0);
	struct tmap *got = tmap_new();
	for (unsigned th = 1; th <= 4; th += 3) {
		struct recov_apply ap = {cb_load, fail_apply, NULL, got, NULL, NULL, NULL};
		struct recov_result res;
		ck_assert_int_eq(recov_run(tfd, NULL, &ap, th, 0, &res), CIDSTORE_ENOMEM);
	}
	free(r);
	tmap_free(got);
}
END_TEST

START_TEST(dir_lock)
{
	char path[300];
	snprintf(path, sizeof(path), "%s/store", tdir);
	sdir_t *a, *b;
	ck_assert_int_eq(sdir_open(path, 0, &a), CIDSTORE_ENOENT); /* missing */
	ck_assert_int_eq(sdir_open(path, SDIR_CREATE, &a), 0);
	ck_assert_int_eq(sdir_open(path, SDIR_CREATE, &b), CIDSTORE_EBUSY);
	char alias[320];
	snprintf(alias, sizeof(alias), "%s/../store/", path);
	ck_assert_int_eq(sdir_open(alias, 0, &b), CIDSTORE_EBUSY);
	ck_assert_int_eq(sdir_sync(a, NULL), 0);
	sdir_close(a);
	ck_assert_int_eq(sdir_open(path, 0, &a), 0);

	/* another process: fork, then let the child try (it has no registry
	 * entry for the directory: only the flock can stop it) */
	sdir_close(a);
	int go[2], done[2];
	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(done), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		sdir_t *x;
		int rc = sdir_open(path, 0, &x);
		if (write(done[1], "x", 1) != 1)
			_exit(4);
		if (read(go[0], &c, 1) != 1) /* parent closed */
			_exit(5);
		sdir_t *y;
		int rc2 = sdir_open(path, 0, &y);
		_exit(rc == CIDSTORE_EBUSY && rc2 == 0 ? 0 : 1);
	}
	ck_assert_int_eq(sdir_open(path, 0, &a), 0);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	char c;
	ck_assert_int_eq(read(done[0], &c, 1), 1);
	sdir_close(a);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	close(go[0]); close(go[1]); close(done[0]); close(done[1]);
}
END_TEST

START_TEST(listing_sorted)
{
	seg_write(0x300, NULL, 0, 0);
	seg_write(0x10, NULL, 0, 0);
	seg_write(0x2000, NULL, 0, 0);
	int fd = openat(tfd, "wal-zz.log", O_CREAT | O_WRONLY, 0644);
	close(fd);
	sdir_list_t l;
	ck_assert_int_eq(sdir_list_segments(tfd, &l), 0);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_uint_eq(l.v[0].lsn, 0x10);
	ck_assert_uint_eq(l.v[1].lsn, 0x300);
	ck_assert_uint_eq(l.v[2].lsn, 0x2000);
	sdir_list_free(&l);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("recovery");
	TCase *tc = tcase_create("recovery");
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, clean_log);
	tcase_add_test(tc, empty_dir);
	tcase_add_test(tc, torn_last_record);
	tcase_add_test(tc, torn_half_record);
	tcase_add_test(tc, torn_readonly_not_cut);
	tcase_add_test(tc, flipped_mid_log);
	tcase_add_test(tc, torn_in_older_segment);
	tcase_add_test(tc, missing_segment);
	tcase_add_test(tc, lsn_gap_in_segment);
	tcase_add_test(tc, newer_version);
	tcase_add_test(tc, torn_segment_header_removed);
	tcase_add_test(tc, transactions);
	tcase_add_test(tc, parallel_equals_serial);
	tcase_add_test(tc, replay_rate_index);
	tcase_add_test(tc, checkpoint_then_log);
	tcase_add_test(tc, checkpoint_fallback);
	tcase_add_test(tc, checkpoint_newer_version_refused);
	tcase_add_test(tc, checkpoint_parallel_load);
	tcase_add_test(tc, checkpoint_into_index);
	tcase_add_test(tc, apply_error_stops);
	tcase_add_test(tc, dir_lock);
	tcase_add_test(tc, listing_sorted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
