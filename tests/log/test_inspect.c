/*
 * test_inspect.c — read-only inspection of a store directory through the
 * public API: cidstore_wal_read, cidstore_verify, cidstore_wal_op_name.
 *
 *   - a durable store (4 KB segments, so several of them) with inserts,
 *     delete_value, delete_key and a batch, closed: wal_read delivers every
 *     record exactly once, in LSN order, consecutive LSNs, with the ops,
 *     keys, values, transaction ids, segments and offsets the workload
 *     implies, one header per segment file; the summary counts agree;
 *   - from_lsn filters records and headers but not the summary; a non-zero
 *     callback return stops reading and is returned; fn == NULL and
 *     out == NULL are accepted;
 *   - verify: 0 with counts that agree with the workload, before and after
 *     cidstore_checkpoint (have_checkpoint, checkpoint_keys/values equal the
 *     store's stats at the checkpoint);
 *   - a torn tail (last record overwritten with garbage): both report it
 *     (where) and return 0, and every file of the directory is
 *     byte-identical afterwards; recovery then cuts exactly that;
 *   - a flipped byte in a middle record of the oldest segment: ECORRUPT from
 *     both, the message names the file, the records before it were
 *     delivered, the directory unchanged;
 *   - a record with newer version bits: EVERSION from both;
 *   - a truncated checkpoint: verify answers what cidstore_open then does
 *     (ECORRUPT without an older checkpoint to fall back on once the log is
 *     trimmed; 0 with checkpoint_fallback when an older one remains);
 *   - NULL dir, NULL out, empty, missing dir, a regular file: EINVAL with a
 *     message;
 *   - while the store is open in this process: no EBUSY, exact answers once
 *     synced, and sane answers while a writer thread runs.
 *
 * May use internal headers (record.h) to craft records.
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
#include <time.h>
#include <unistd.h>

#include "cidstore.h"
#include "log/record.h"
#include "test_support.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

static char tdir[256]; /* per-test temporary directory = the store directory */

static void setup(void)
{
	tmpdir_make(tdir, sizeof(tdir), "cidstore-inspect");
}

static void teardown(void)
{
	tmpdir_remove(tdir);
}

static cid_t mk(uint64_t tag, uint64_t i)
{
	cid_t c = {{tag, i * 0x9e3779b97f4a7c15ull, i, ~i}};
	return c;
}

static cidstore_t *open_store(void)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = tdir;
	o.durability = CIDSTORE_DURABILITY_ASYNC; /* close flushes; no fsync per op */
	o.segment_bytes = 4096;                   /* 31 records per segment */
	o.checkpoint_wal_bytes = 0;               /* checkpoints only when asked */
	o.recovery_threads = 1;
	cidstore_t *s = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	return s;
}

static void store_close(cidstore_t *s)
{
	ck_assert_int_eq(cidstore_close(s), 0);
}

/* What recovery makes of the directory, with default options: an open that
 * fails with want (so there is no store to close). */
static void expect_open_rc(int want)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = tdir;
	cidstore_t *s = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s), want);
}

/* What the workload logs, in LSN order. */
struct exp {
	int op;
	cid_t key, val;
	bool txn;
};

struct explist {
	struct exp v[512];
	size_t n;
};

static void expect_rec(struct explist *e, int op, const cid_t *k, const cid_t *v, bool txn)
{
	static const cid_t zero;
	ck_assert_uint_lt(e->n, sizeof(e->v) / sizeof(e->v[0]));
	e->v[e->n].op = op;
	e->v[e->n].key = k ? *k : zero;
	e->v[e->n].val = v ? *v : zero;
	e->v[e->n].txn = txn;
	e->n++;
}

#define NKEYS 100u
#define NBATCH 5u

/* Inserts NKEYS pairs, a second value for 10 keys, deletes 10 pairs,
 * deletes 5 keys (2 values each), then a batch of NBATCH inserts.  Every
 * operation changes the store, so each is logged exactly once. */
static void workload(cidstore_t *s, struct explist *e)
{
	for (uint64_t i = 0; i < NKEYS; i++) {
		cid_t k = mk(1, i), v = mk(2, i);
		ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
		expect_rec(e, CIDSTORE_WAL_INSERT, &k, &v, false);
	}
	for (uint64_t i = 0; i < 10; i++) {
		cid_t k = mk(1, i), v = mk(3, i);
		ck_assert_int_eq(cidstore_insert(s, &k, &v), 1);
		expect_rec(e, CIDSTORE_WAL_INSERT, &k, &v, false);
	}
	for (uint64_t i = 10; i < 20; i++) {
		cid_t k = mk(1, i), v = mk(2, i);
		ck_assert_int_eq(cidstore_delete_value(s, &k, &v), 1);
		expect_rec(e, CIDSTORE_WAL_DELETE_VALUE, &k, &v, false);
	}
	for (uint64_t i = 0; i < 5; i++) {
		cid_t k = mk(1, i);
		ck_assert_int_eq(cidstore_delete_key(s, &k), 2);
		expect_rec(e, CIDSTORE_WAL_DELETE_KEY, &k, NULL, false);
	}
	cidstore_op_t ops[NBATCH];
	expect_rec(e, CIDSTORE_WAL_TXN_START, NULL, NULL, true);
	for (uint64_t i = 0; i < NBATCH; i++) {
		ops[i].op = CIDSTORE_OP_INSERT;
		ops[i].key = mk(4, i);
		ops[i].value = mk(5, i);
		expect_rec(e, CIDSTORE_WAL_INSERT, &ops[i].key, &ops[i].value, true);
	}
	expect_rec(e, CIDSTORE_WAL_TXN_COMMIT, NULL, NULL, true);
	ck_assert_int_eq(cidstore_apply(s, ops, NBATCH), (int)NBATCH);
}

/* Records delivered by cidstore_wal_read. */
struct got {
	cidstore_wal_record_t *v;
	size_t n, cap;
	size_t stop_after; /* return stop_rc once n reaches it (0: never) */
	int stop_rc;
};

static int collect(const cidstore_wal_record_t *r, void *ctx)
{
	struct got *g = ctx;
	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 256;
		g->v = realloc(g->v, g->cap * sizeof(*g->v));
		ck_assert_ptr_nonnull(g->v);
	}
	g->v[g->n++] = *r;
	if (g->stop_after != 0 && g->n == g->stop_after)
		return g->stop_rc;
	return 0;
}

static size_t count_headers(const struct got *g)
{
	size_t h = 0;
	for (size_t i = 0; i < g->n; i++)
		h += g->v[i].op == CIDSTORE_WAL_SEGMENT_HEADER;
	return h;
}

static uint64_t count_prefix(const struct dirimg *s, const char *prefix, uint64_t *bytes)
{
	uint64_t n = 0;
	if (bytes)
		*bytes = 0;
	for (size_t i = 0; i < s->n; i++)
		if (strncmp(s->f[i].name, prefix, strlen(prefix)) == 0) {
			n++;
			if (bytes)
				*bytes += s->f[i].len;
		}
	return n;
}

static void seg_name(char out[WAL_SEG_NAME_LEN + 1], uint64_t lsn)
{
	rec_seg_name(out, lsn);
}

static void patch(const char *name, off_t off, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	int fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, p, n, off), (ssize_t)n);
	close(fd);
}

static void read_at(const char *name, off_t off, void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, p, n, off), (ssize_t)n);
	close(fd);
}

/* Builds the standard store, closed. */
static void build(struct explist *e)
{
	memset(e, 0, sizeof(*e));
	cidstore_t *s = open_store();
	workload(s, e);
	store_close(s);
}

/* ------------------------------------------------------------------ */
/* tests                                                               */
/* ------------------------------------------------------------------ */

START_TEST(op_names)
{
	static const char *names[] = {"insert", "delete_value", "delete_key", "txn_start",
				      "txn_commit", "txn_abort", "checkpoint", "segment_header"};
	for (int op = 1; op <= 8; op++)
		ck_assert_str_eq(cidstore_wal_op_name(op), names[op - 1]);
	ck_assert_str_eq(cidstore_wal_op_name(0), "unknown");
	ck_assert_str_eq(cidstore_wal_op_name(9), "unknown");
	ck_assert_str_eq(cidstore_wal_op_name(-1), "unknown");
}
END_TEST

START_TEST(read_every_record)
{
	struct explist *e = malloc(sizeof(*e));
	build(e);
	struct dirimg before;
	dirimg_take(&before, tdir);
	uint64_t seg_bytes;
	uint64_t nseg = count_prefix(&before, "wal-", &seg_bytes);
	ck_assert_uint_ge(nseg, 4);

	struct got g = {0};
	cidstore_wal_summary_t sum;
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, collect, &g, &sum), 0);
	ck_assert_str_eq(sum.message, "");
	ck_assert_uint_eq(sum.segments, nseg);
	ck_assert_uint_eq(sum.records, e->n);
	ck_assert_uint_eq(sum.first_lsn, 1);
	ck_assert_uint_eq(sum.last_lsn, e->n);
	ck_assert_uint_eq(sum.bytes, seg_bytes);
	ck_assert_int_eq(sum.torn, 0);
	ck_assert_uint_eq(g.n, e->n + nseg);
	ck_assert_uint_eq(count_headers(&g), nseg);

	/* In LSN order, each exactly once, matching the workload. */
	uint64_t lsn = 1, seg = 0, txn = 0, wall = 0;
	size_t k = 0;
	for (size_t i = 0; i < g.n; i++) {
		const cidstore_wal_record_t *r = &g.v[i];
		if (r->op == CIDSTORE_WAL_SEGMENT_HEADER) {
			ck_assert_uint_eq(r->offset, 0);
			ck_assert_uint_eq(r->lsn, lsn); /* next segment starts at the next LSN */
			ck_assert_uint_eq(r->segment, lsn);
			ck_assert_uint_eq(r->key.w[0], WAL_SEG_MAGIC_U64);
			ck_assert_uint_eq(r->key.w[1], WAL_FORMAT_VERSION);
			ck_assert_uint_eq(r->key.w[2], 4096);
			ck_assert_uint_eq(r->txn, 0);
			seg = r->segment;
			continue;
		}
		const struct exp *x = &e->v[k++];
		ck_assert_uint_eq(r->lsn, lsn);
		ck_assert_uint_eq(r->segment, seg);
		ck_assert_uint_eq(r->offset, (lsn - seg + 1) * WAL_REC_SIZE);
		ck_assert_int_eq(r->op, x->op);
		ck_assert_msg(memcmp(&r->key, &x->key, sizeof(cid_t)) == 0, "key at LSN %llu",
			      (unsigned long long)lsn);
		ck_assert_msg(memcmp(&r->value, &x->val, sizeof(cid_t)) == 0, "value at LSN %llu",
			      (unsigned long long)lsn);
		if (x->txn) {
			ck_assert_uint_eq(r->flags & 1u, 1u);
			if (r->op == CIDSTORE_WAL_TXN_START)
				txn = r->lsn; /* the batch's id is its TXN_START's LSN */
			ck_assert_uint_eq(r->txn, txn);
		} else {
			ck_assert_uint_eq(r->flags, 0);
			ck_assert_uint_eq(r->txn, 0);
		}
		ck_assert_uint_ge(r->wall_ns, wall); /* hybrid time never goes back */
		ck_assert_uint_gt(r->wall_ns, 1500000000ull * 1000000000ull); /* after 2017 */
		wall = r->wall_ns;
		lsn++;
	}
	ck_assert_uint_eq(k, e->n);

	/* fn NULL only validates and counts; out NULL is fine. */
	cidstore_wal_summary_t s2;
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, NULL, NULL, &s2), 0);
	ck_assert_uint_eq(s2.records, e->n);
	ck_assert_uint_eq(s2.segments, nseg);
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, NULL, NULL, NULL), 0);
	struct got g2 = {0};
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, collect, &g2, NULL), 0);
	ck_assert_uint_eq(g2.n, g.n);

	dirimg_expect_unchanged(&before, tdir);
	free(g.v);
	free(g2.v);
	free(e);
}
END_TEST

START_TEST(from_lsn_filter)
{
	struct explist *e = malloc(sizeof(*e));
	build(e);
	const uint64_t from = 50;
	struct got g = {0};
	cidstore_wal_summary_t sum;
	ck_assert_int_eq(cidstore_wal_read(tdir, from, collect, &g, &sum), 0);
	/* the summary covers the whole log */
	ck_assert_uint_eq(sum.records, e->n);
	ck_assert_uint_eq(sum.last_lsn, e->n);
	size_t recs = 0;
	uint64_t lsn = from;
	for (size_t i = 0; i < g.n; i++) {
		const cidstore_wal_record_t *r = &g.v[i];
		ck_assert_uint_ge(r->lsn, from);
		if (r->op == CIDSTORE_WAL_SEGMENT_HEADER) {
			ck_assert_uint_ge(r->segment, from);
			continue;
		}
		ck_assert_uint_eq(r->lsn, lsn++);
		ck_assert_int_eq(r->op, e->v[r->lsn - 1].op);
		recs++;
	}
	ck_assert_uint_eq(recs, e->n - from + 1);
	free(g.v);

	/* past the end: nothing delivered, still valid */
	struct got g2 = {0};
	ck_assert_int_eq(cidstore_wal_read(tdir, e->n + 1, collect, &g2, &sum), 0);
	ck_assert_uint_eq(g2.n, 0);
	ck_assert_uint_eq(sum.records, e->n);
	free(e);
}
END_TEST

START_TEST(callback_stops)
{
	struct explist *e = malloc(sizeof(*e));
	build(e);
	struct got g = {.stop_after = 10, .stop_rc = 7};
	cidstore_wal_summary_t sum;
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, collect, &g, &sum), 7);
	ck_assert_uint_eq(g.n, 10);
	ck_assert_uint_lt(sum.records, e->n);
	free(g.v);
	/* a negative return is returned as it is, too */
	struct got g2 = {.stop_after = 1, .stop_rc = -1234};
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, collect, &g2, NULL), -1234);
	ck_assert_uint_eq(g2.n, 1);
	ck_assert_int_eq(g2.v[0].op, CIDSTORE_WAL_SEGMENT_HEADER);
	free(g2.v);
	free(e);
}
END_TEST

START_TEST(verify_clean_and_checkpoint)
{
	struct explist *e = malloc(sizeof(*e));
	build(e);
	struct dirimg before;
	dirimg_take(&before, tdir);
	cidstore_verify_result_t v;
	ck_assert_int_eq(cidstore_verify(tdir, &v), 0);
	ck_assert_str_eq(v.message, "");
	ck_assert_int_eq(v.have_checkpoint, 0);
	ck_assert_int_eq(v.checkpoint_fallback, 0);
	ck_assert_uint_eq(v.checkpoints, 0);
	ck_assert_uint_eq(v.segments, count_prefix(&before, "wal-", NULL));
	ck_assert_uint_eq(v.records, e->n);
	ck_assert_uint_eq(v.last_lsn, e->n);
	ck_assert_int_eq(v.torn, 0);
	ck_assert_uint_eq(v.txn_committed, 1);
	ck_assert_uint_eq(v.txn_dropped, 0);
	dirimg_expect_unchanged(&before, tdir);

	/* reopen, checkpoint, write some more */
	cidstore_t *s = open_store();
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_checkpoint(s), 0);
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	uint64_t ck_lsn = st.wal_lsn, keys = st.keys, values = st.values;
	ck_assert_uint_eq(ck_lsn, e->n);
	for (uint64_t i = 0; i < 40; i++) {
		cid_t k = mk(6, i), val = mk(7, i);
		ck_assert_int_eq(cidstore_insert(s, &k, &val), 1);
	}
	store_close(s);

	dirimg_take(&before, tdir);
	ck_assert_int_eq(cidstore_verify(tdir, &v), 0);
	ck_assert_int_eq(v.have_checkpoint, 1);
	ck_assert_int_eq(v.checkpoint_fallback, 0);
	ck_assert_uint_eq(v.checkpoints, count_prefix(&before, "ckpt-", NULL));
	ck_assert_uint_eq(v.checkpoints, 1);
	ck_assert_uint_eq(v.checkpoint_lsn, ck_lsn);
	ck_assert_uint_eq(v.checkpoint_keys, keys);
	ck_assert_uint_eq(v.checkpoint_values, values);
	ck_assert_uint_eq(v.last_lsn, e->n + 40);
	ck_assert_uint_ge(v.records, 40);
	ck_assert_int_eq(v.torn, 0);

	/* wal_read sees the whole (trimmed) log, consistent with verify */
	cidstore_wal_summary_t sum;
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, NULL, NULL, &sum), 0);
	ck_assert_uint_eq(sum.segments, count_prefix(&before, "wal-", NULL));
	ck_assert_uint_le(sum.first_lsn, ck_lsn + 1);
	ck_assert_uint_eq(sum.last_lsn, e->n + 40);
	ck_assert_uint_eq(sum.records, sum.last_lsn - sum.first_lsn + 1);
	dirimg_expect_unchanged(&before, tdir);
	free(e);
}
END_TEST

START_TEST(torn_tail_reported_not_cut)
{
	struct explist *e = malloc(sizeof(*e));
	build(e);
	/* where the last record is */
	struct got g = {0};
	ck_assert_int_eq(cidstore_wal_read(tdir, e->n, collect, &g, NULL), 0);
	ck_assert_uint_ge(g.n, 1);
	const cidstore_wal_record_t last = g.v[g.n - 1];
	ck_assert_uint_eq(last.lsn, e->n);
	free(g.v);
	char name[WAL_SEG_NAME_LEN + 1];
	seg_name(name, last.segment);
	uint8_t junk[WAL_REC_SIZE];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(0xa5 ^ i);
	junk[0] = (uint8_t)(WAL_FORMAT_VERSION << 6 | WAL_OP_INSERT); /* bad CRC, not newer */
	patch(name, (off_t)last.offset, junk, sizeof(junk));

	struct dirimg before;
	dirimg_take(&before, tdir);
	cidstore_wal_summary_t sum;
	struct got g2 = {0};
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, collect, &g2, &sum), 0);
	ck_assert_int_eq(sum.torn, 1);
	ck_assert_uint_eq(sum.torn_segment, last.segment);
	ck_assert_uint_eq(sum.torn_offset, last.offset);
	ck_assert_uint_eq(sum.records, e->n - 1);
	ck_assert_uint_eq(sum.last_lsn, e->n - 1);
	ck_assert_uint_eq(g2.n - count_headers(&g2), e->n - 1);
	free(g2.v);
	/* the batch lost its commit: unfinished, with all its operations */
	ck_assert_uint_eq(sum.txn_committed, 0);
	ck_assert_uint_eq(sum.txn_aborted, 0);
	ck_assert_uint_eq(sum.txn_unfinished, 1);
	ck_assert_uint_eq(sum.txn_unfinished_ops, NBATCH);

	cidstore_verify_result_t v;
	ck_assert_int_eq(cidstore_verify(tdir, &v), 0);
	ck_assert_int_eq(v.torn, 1);
	ck_assert_uint_eq(v.torn_segment, last.segment);
	ck_assert_uint_eq(v.torn_offset, last.offset);
	ck_assert_uint_eq(v.last_lsn, e->n - 1);
	/* the torn record was the batch's commit: recovery would drop it */
	ck_assert_int_eq(e->v[e->n - 1].op, CIDSTORE_WAL_TXN_COMMIT);
	ck_assert_uint_eq(v.txn_committed, 0);
	ck_assert_uint_eq(v.txn_dropped, 1);

	dirimg_expect_unchanged(&before, tdir);

	/* recovery agrees: it cuts exactly there, then nothing is torn */
	cidstore_t *s = open_store();
	store_close(s);
	ck_assert_int_eq(cidstore_verify(tdir, &v), 0);
	ck_assert_int_eq(v.torn, 0);
	ck_assert_uint_eq(v.last_lsn, e->n - 1);
	free(e);
}
END_TEST

START_TEST(flipped_byte_older_segment)
{
	struct explist *e = malloc(sizeof(*e));
	build(e);
	char name[WAL_SEG_NAME_LEN + 1];
	seg_name(name, 1); /* the oldest segment: records 1..31 */
	const off_t off = 10 * WAL_REC_SIZE;   /* LSN 10 */
	uint8_t b;
	read_at(name, off + 40, &b, 1);
	b ^= 0x10;
	patch(name, off + 40, &b, 1);

	struct dirimg before;
	dirimg_take(&before, tdir);
	struct got g = {0};
	cidstore_wal_summary_t sum;
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, collect, &g, &sum), CIDSTORE_ECORRUPT);
	ck_assert_msg(strstr(sum.message, name) != NULL, "message: %s", sum.message);
	ck_assert_msg(strstr(sum.message, "offset") != NULL, "message: %s", sum.message);
	/* LSN 1..9 (and the header) were delivered before the error */
	ck_assert_uint_eq(g.n, 10);
	ck_assert_uint_eq(g.v[9].lsn, 9);
	free(g.v);

	cidstore_verify_result_t v;
	ck_assert_int_eq(cidstore_verify(tdir, &v), CIDSTORE_ECORRUPT);
	ck_assert_msg(strstr(v.message, name) != NULL, "message: %s", v.message);
	dirimg_expect_unchanged(&before, tdir);
	/* and recovery refuses it too */
	expect_open_rc(CIDSTORE_ECORRUPT);
	free(e);
}
END_TEST

START_TEST(newer_version_record)
{
	struct explist *e = malloc(sizeof(*e));
	build(e);
	char name[WAL_SEG_NAME_LEN + 1];
	seg_name(name, 32); /* second segment: LSN 32.. */
	const off_t off = 3 * WAL_REC_SIZE;
	uint8_t buf[WAL_REC_SIZE];
	struct wal_rec r;
	read_at(name, off, buf, sizeof(buf));
	ck_assert_int_eq(rec_decode(buf, &r), 0);
	ck_assert_uint_eq(r.lsn, 34);
	r.version = 2; /* a newer writer */
	rec_encode(buf, &r);
	patch(name, off, buf, sizeof(buf));

	cidstore_wal_summary_t sum;
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, NULL, NULL, &sum), CIDSTORE_EVERSION);
	ck_assert_msg(strstr(sum.message, name) != NULL, "message: %s", sum.message);
	cidstore_verify_result_t v;
	ck_assert_int_eq(cidstore_verify(tdir, &v), CIDSTORE_EVERSION);
	ck_assert_msg(strstr(v.message, name) != NULL, "message: %s", v.message);
	free(e);
}
END_TEST

static void truncate_file(const char *name, off_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	ck_assert_int_eq(truncate(path, len), 0);
}

static const char *newest_ckpt(struct dirimg *s)
{
	const char *n = NULL;
	for (size_t i = 0; i < s->n; i++)
		if (strncmp(s->f[i].name, "ckpt-", 5) == 0)
			n = s->f[i].name; /* sorted: the last one is the newest */
	ck_assert_ptr_nonnull(n);
	return n;
}

START_TEST(truncated_checkpoint_only_one)
{
	struct explist *e = malloc(sizeof(*e));
	build(e);
	cidstore_t *s = open_store();
	ck_assert_int_eq(cidstore_checkpoint(s), 0);
	for (uint64_t i = 0; i < 5; i++) {
		cid_t k = mk(6, i), val = mk(7, i);
		ck_assert_int_eq(cidstore_insert(s, &k, &val), 1);
	}
	store_close(s);
	struct dirimg sn;
	dirimg_take(&sn, tdir);
	char ck[256];
	snprintf(ck, sizeof(ck), "%s", newest_ckpt(&sn));
	size_t len = 0;
	for (size_t i = 0; i < sn.n; i++)
		if (strcmp(sn.f[i].name, ck) == 0)
			len = sn.f[i].len;
	dirimg_free(&sn);
	truncate_file(ck, (off_t)(len / 2));

	/* the log before the checkpoint was trimmed: nothing to fall back on */
	cidstore_verify_result_t v;
	int rc = cidstore_verify(tdir, &v);
	ck_assert_int_eq(rc, CIDSTORE_ECORRUPT);
	ck_assert_msg(v.message[0] != '\0', "no message");
	ck_assert_int_eq(v.have_checkpoint, 0);
	ck_assert_uint_eq(v.checkpoints, 1);
	/* what recovery does */
	expect_open_rc(rc);
	free(e);
}
END_TEST

START_TEST(truncated_checkpoint_fallback)
{
	struct explist *e = malloc(sizeof(*e));
	build(e);
	cidstore_t *s = open_store();
	ck_assert_int_eq(cidstore_checkpoint(s), 0);
	cidstore_stats_t st;
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	uint64_t first_ck = st.wal_lsn;
	for (uint64_t i = 0; i < 5; i++) {
		cid_t k = mk(6, i), val = mk(7, i);
		ck_assert_int_eq(cidstore_insert(s, &k, &val), 1);
	}
	ck_assert_int_eq(cidstore_checkpoint(s), 0);
	for (uint64_t i = 5; i < 10; i++) {
		cid_t k = mk(6, i), val = mk(7, i);
		ck_assert_int_eq(cidstore_insert(s, &k, &val), 1);
	}
	ck_assert_int_eq(cidstore_stats(s, &st), 0);
	uint64_t keys = st.keys, values = st.values, last = st.wal_lsn;
	store_close(s);

	struct dirimg sn;
	dirimg_take(&sn, tdir);
	ck_assert_uint_eq(count_prefix(&sn, "ckpt-", NULL), 2);
	char ck[256];
	snprintf(ck, sizeof(ck), "%s", newest_ckpt(&sn));
	dirimg_free(&sn);
	truncate_file(ck, 100);

	cidstore_verify_result_t v;
	ck_assert_int_eq(cidstore_verify(tdir, &v), 0);
	ck_assert_int_eq(v.have_checkpoint, 1);
	ck_assert_int_eq(v.checkpoint_fallback, 1);
	ck_assert_uint_eq(v.checkpoint_lsn, first_ck);
	ck_assert_uint_eq(v.checkpoints, 2);
	ck_assert_uint_eq(v.last_lsn, last);

	/* recovery falls back the same way and loses nothing */
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = tdir;
	o.durability = CIDSTORE_DURABILITY_ASYNC;
	cidstore_t *s2 = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s2), 0);
	ck_assert_int_eq(cidstore_stats(s2, &st), 0);
	ck_assert_uint_eq(st.keys, keys);
	ck_assert_uint_eq(st.values, values);
	store_close(s2);
	free(e);
}
END_TEST

START_TEST(bad_arguments)
{
	cidstore_wal_summary_t sum;
	cidstore_verify_result_t v;
	ck_assert_int_eq(cidstore_wal_read(NULL, 0, NULL, NULL, &sum), CIDSTORE_EINVAL);
	ck_assert_msg(sum.message[0] != '\0', "no message");
	ck_assert_int_eq(cidstore_wal_read(NULL, 0, NULL, NULL, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_wal_read("", 0, NULL, NULL, &sum), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_verify(NULL, &v), CIDSTORE_EINVAL);
	ck_assert_msg(v.message[0] != '\0', "no message");
	ck_assert_int_eq(cidstore_verify(tdir, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_verify("", &v), CIDSTORE_EINVAL);

	char missing[300];
	snprintf(missing, sizeof(missing), "%s/nope", tdir);
	ck_assert_int_eq(cidstore_wal_read(missing, 0, NULL, NULL, &sum), CIDSTORE_ENOENT);
	ck_assert_msg(strstr(sum.message, "no such directory") != NULL, "%s", sum.message);
	ck_assert_int_eq(cidstore_verify(missing, &v), CIDSTORE_ENOENT);
	ck_assert_msg(strstr(v.message, "no such directory") != NULL, "%s", v.message);
	/* neither call created it */
	struct stat st;
	ck_assert_int_ne(stat(missing, &st), 0);

	char file[300];
	snprintf(file, sizeof(file), "%s/plain", tdir);
	int fd = open(file, O_WRONLY | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(cidstore_wal_read(file, 0, NULL, NULL, &sum), CIDSTORE_ENOTDIR);
	ck_assert_msg(strstr(sum.message, "not a directory") != NULL, "%s", sum.message);
	ck_assert_int_eq(cidstore_verify(file, &v), CIDSTORE_ENOTDIR);
	ck_assert_msg(strstr(v.message, "not a directory") != NULL, "%s", v.message);

	/* an empty directory is an empty, valid store */
	char empty[300];
	snprintf(empty, sizeof(empty), "%s/empty", tdir);
	ck_assert_int_eq(mkdir(empty, 0755), 0);
	ck_assert_int_eq(cidstore_wal_read(empty, 0, NULL, NULL, &sum), 0);
	ck_assert_uint_eq(sum.segments, 0);
	ck_assert_uint_eq(sum.records, 0);
	ck_assert_uint_eq(sum.first_lsn, 0);
	ck_assert_uint_eq(sum.last_lsn, 0);
	ck_assert_int_eq(cidstore_verify(empty, &v), 0);
	ck_assert_uint_eq(v.records, 0);
	ck_assert_uint_eq(v.last_lsn, 0);
}
END_TEST

struct writer {
	cidstore_t *s;
	atomic_int stop;
	uint64_t n;
	_Atomic uint64_t n_atomic; /* sync_writer: inserts started */
	atomic_int failed;         /* sync_writer: an insert did not answer 1 */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	while (!atomic_load(&w->stop) && w->n < 1000) {
		cid_t k = mk(8, w->n), v = mk(9, w->n);
		if (cidstore_insert(w->s, &k, &v) != 1)
			break;
		w->n++;
	}
	return NULL;
}

START_TEST(while_open)
{
	struct explist *e = malloc(sizeof(*e));
	memset(e, 0, sizeof(*e));
	cidstore_t *s = open_store();
	workload(s, e);
	ck_assert_int_eq(cidstore_sync(s), 0);

	/* quiescent and synced: exact answers, no EBUSY */
	cidstore_wal_summary_t sum;
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, NULL, NULL, &sum), 0);
	ck_assert_uint_eq(sum.records, e->n);
	ck_assert_uint_eq(sum.last_lsn, e->n);
	ck_assert_int_eq(sum.torn, 0);
	/* batch counts come from recovery's own bookkeeping */
	ck_assert_uint_eq(sum.txn_committed, 1);
	ck_assert_uint_eq(sum.txn_committed_ops, NBATCH);
	ck_assert_uint_eq(sum.txn_aborted + sum.txn_unfinished, 0);
	ck_assert_uint_eq(sum.txn_aborted_ops + sum.txn_unfinished_ops, 0);
	cidstore_verify_result_t v;
	ck_assert_int_eq(cidstore_verify(tdir, &v), 0);
	ck_assert_uint_eq(v.last_lsn, e->n);
	ck_assert_uint_eq(v.txn_committed, 1);

	/* with a writer running: a snapshot, never EBUSY or EINVAL */
	struct writer w = {.s = s};
	atomic_init(&w.stop, 0);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, writer_main, &w), 0);
	for (int i = 0; i < 5; i++) {
		int rc = cidstore_wal_read(tdir, 0, NULL, NULL, &sum);
		ck_assert_msg(rc == 0 || rc == CIDSTORE_ECORRUPT || rc == CIDSTORE_EIO,
			      "wal_read while writing: %d (%s)", rc, sum.message);
		if (rc == 0)
			ck_assert_uint_ge(sum.last_lsn, e->n);
		rc = cidstore_verify(tdir, &v);
		ck_assert_msg(rc == 0 || rc == CIDSTORE_ECORRUPT || rc == CIDSTORE_EIO,
			      "verify while writing: %d (%s)", rc, v.message);
	}
	atomic_store(&w.stop, 1);
	pthread_join(t, NULL);
	ck_assert_int_eq(cidstore_sync(s), 0);
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, NULL, NULL, &sum), 0);
	ck_assert_uint_eq(sum.records, e->n + w.n);
	store_close(s);
	free(e);
}
END_TEST

/* verify reads every file open reads and agrees with open: every byte of
 * META flipped in turn gives ECORRUPT (or EVERSION for the version field)
 * from both, naming META; a missing META is a store open would recreate. */
START_TEST(verify_checks_meta)
{
	struct explist *e = malloc(sizeof(*e));
	build(e);
	for (off_t off = 0; off < 40; off++) {
		uint8_t b;
		read_at("META", off, &b, 1);
		uint8_t x = b ^ 0x40;
		patch("META", off, &x, 1);
		cidstore_verify_result_t v;
		int vr = cidstore_verify(tdir, &v);
		cidstore_options_t o;
		cidstore_options_init(&o);
		o.dir = tdir;
		o.read_only = true; /* changes nothing */
		cidstore_t *s = NULL;
		int orc = cidstore_open(&o, &s);
		if (orc == 0)
			cidstore_close(s);
		ck_assert_msg(vr == orc, "META byte %lld flipped: verify %d, open %d", (long long)off,
			      vr, orc);
		ck_assert_msg(vr == CIDSTORE_ECORRUPT || vr == CIDSTORE_EVERSION,
			      "META byte %lld flipped: verify %d", (long long)off, vr);
		ck_assert_msg(strstr(v.message, "META") != NULL, "message: %s", v.message);
		patch("META", off, &b, 1);
	}
	cidstore_verify_result_t v;
	ck_assert_int_eq(cidstore_verify(tdir, &v), 0);
	char path[512];
	snprintf(path, sizeof(path), "%s/META", tdir);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(cidstore_verify(tdir, &v), 0);
	free(e);
}
END_TEST

/* A record being appended is never reported as damage: verify and wal_read
 * on a store whose SYNC writers append and rotate (small segments) answer 0
 * every time.  They used to report "a valid record after the end of the
 * log" in 40-60% of calls against ~700 SYNC inserts/s: the slot the writer
 * had just filled, or a segment the directory listing had not caught yet.
 * The store does not checkpoint, so no file goes away. */
static void *sync_writer(void *arg)
{
	struct writer *w = arg;
	while (!atomic_load(&w->stop)) {
		uint64_t n = atomic_fetch_add(&w->n_atomic, 1);
		cid_t k = mk(10, n), v = mk(11, n);
		if (cidstore_insert(w->s, &k, &v) != 1) {
			atomic_store(&w->failed, 1);
			break;
		}
	}
	return NULL;
}

START_TEST(live_reads_see_no_damage)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = tdir;
	o.durability = CIDSTORE_DURABILITY_SYNC;
	o.segment_bytes = 16 * 1024; /* 127 records: rotations all the time */
	o.checkpoint_wal_bytes = 0;
	cidstore_t *s = NULL;
	ck_assert_int_eq(cidstore_open(&o, &s), 0);
	struct writer w = {.s = s};
	atomic_init(&w.stop, 0);
	atomic_init(&w.n_atomic, 0);
	atomic_init(&w.failed, 0);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, sync_writer, &w), 0);
	uint64_t prev = 0;
	/* 300 rounds, or 5 s: the log grows while it is read, and sanitizer
	 * builds read it ~20x slower (a bound on work, not a timing check) */
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int i;
	for (i = 0; i < 300; i++) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (i >= 10 && now.tv_sec - t0.tv_sec >= 5)
			break;
		cidstore_wal_summary_t sum;
		int rc = cidstore_wal_read(tdir, 0, NULL, NULL, &sum);
		ck_assert_msg(rc == 0, "wal_read %d while writing: %d (%s)", i, rc, sum.message);
		ck_assert_uint_ge(sum.last_lsn, prev); /* the log only grows */
		prev = sum.last_lsn;
		cidstore_verify_result_t v;
		rc = cidstore_verify(tdir, &v);
		ck_assert_msg(rc == 0, "verify %d while writing: %d (%s)", i, rc, v.message);
	}
	atomic_store(&w.stop, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(atomic_load(&w.failed), 0);
	store_close(s);
	/* closed: exact -- every insert started was acknowledged and logged */
	cidstore_wal_summary_t sum;
	ck_assert_int_eq(cidstore_wal_read(tdir, 0, NULL, NULL, &sum), 0);
	ck_assert_uint_gt(sum.records, 0);
	ck_assert_uint_eq(sum.records, atomic_load(&w.n_atomic));
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("inspect");
	TCase *tc = tcase_create("inspect");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, op_names);
	tcase_add_test(tc, read_every_record);
	tcase_add_test(tc, from_lsn_filter);
	tcase_add_test(tc, callback_stops);
	tcase_add_test(tc, verify_clean_and_checkpoint);
	tcase_add_test(tc, torn_tail_reported_not_cut);
	tcase_add_test(tc, flipped_byte_older_segment);
	tcase_add_test(tc, newer_version_record);
	tcase_add_test(tc, truncated_checkpoint_only_one);
	tcase_add_test(tc, truncated_checkpoint_fallback);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, while_open);
	tcase_add_test(tc, live_reads_see_no_damage);
	tcase_add_test(tc, verify_checks_meta);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
