/*
 * test_checkpoint.c — checkpoint files: round trip (many keys, multi-value
 * keys, keys spanning blocks), every corruption kind detected (truncation,
 * flipped byte in header / block / trailer, bytes after the trailer, wrong
 * name), newer format refused, retention of two, I/O failure while
 * committing, recovery falling back to the previous checkpoint, and the
 * parallel loader (ckpt_load: 1..4 threads, one-block chunks, a key
 * spanning blocks, corrupt blocks in the middle reported at the same
 * lowest offset as a one-thread read, an apply error stopping the load).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/checkpoint.h"
#include "log/dir.h"
#include "log/io.h"
#include "log/record.h"
#include "log/recovery.h"

#define LOG_TEST_TMP_PREFIX "cidstore-ckpt"
#include "log_test_util.h"

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

/* ---- tests ---- */

/* 20000 keys with 1..3 values, one with 5000 values (spans 3 blocks), one
 * with exactly as many as fill one block. */
static struct tmap *build_state(void)
{
	struct tmap *m = tmap_new();
	for (uint64_t i = 0; i < 20000; i++) {
		cid_t k = mk_key(i);
		for (uint64_t j = 0; j <= i % 3; j++) {
			cid_t v = mk_val(j + i);
			tmap_op(m, WAL_OP_INSERT, &k, &v);
		}
	}
	cid_t big = mk_key(1000000);
	for (uint64_t j = 0; j < 5000; j++) {
		cid_t v = mk_val(j);
		tmap_op(m, WAL_OP_INSERT, &big, &v);
	}
	cid_t exact = mk_key(1000001);
	for (uint64_t j = 0; j < (CKPT_BLOCK_BYTES - CKPT_BLOCK_HDR_BYTES - 40) / 32; j++) {
		cid_t v = mk_val(j);
		tmap_op(m, WAL_OP_INSERT, &exact, &v);
	}
	return m;
}

static uint64_t tmap_count(struct tmap *m, uint64_t *values)
{
	uint64_t k = 0, v = 0;
	for (size_t i = 0; i < TMAP_B; i++)
		for (struct tmap_ent *e = m->b[i]; e; e = e->next) {
			k++;
			v += e->n;
		}
	*values = v;
	return k;
}

START_TEST(round_trip)
{
	struct tmap *m = build_state();
	uint64_t nv, nk = tmap_count(m, &nv);
	struct ckpt_info wi, ri;
	ck_assert_int_eq(ckpt_write(tfd, NULL, 777, tmap_source, m, &wi), 0);
	ck_assert_uint_eq(wi.keys, nk);
	ck_assert_uint_eq(wi.values, nv);
	ck_assert_uint_eq(wi.lsn, 777);
	char name[CKPT_NAME_LEN + 1];
	ckpt_name(name, 777);
	ck_assert_str_eq(name, "ckpt-0000000000000309.ckpt");
	ck_assert_int_eq(ckpt_read_header(tfd, NULL, name, &ri), 0);
	ck_assert_uint_eq(ri.keys, nk);
	ck_assert_uint_eq(ri.values, nv);
	ck_assert_uint_eq(ri.end_lsn, 777);
	ck_assert_uint_eq(ri.version, CKPT_FORMAT_VERSION);
	struct tmap *got = tmap_new();
	int rc = ckpt_read(tfd, NULL, name, cb_load, got, &ri);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, ri.msg);
	ck_assert_uint_eq(ri.blocks, wi.blocks);
	ck_assert_uint_eq(ri.bytes, wi.bytes);
	tmap_expect_equal(m, got);
	/* verify-only read */
	ck_assert_int_eq(ckpt_read(tfd, NULL, name, NULL, NULL, NULL), 0);
	/* empty checkpoint */
	struct tmap *empty = tmap_new();
	ck_assert_int_eq(ckpt_write(tfd, NULL, 778, tmap_source, empty, &wi), 0);
	ckpt_name(name, 778);
	ck_assert_int_eq(ckpt_read(tfd, NULL, name, cb_load, empty, &ri), 0);
	ck_assert_uint_eq(ri.keys, 0);
	ck_assert_uint_eq(ri.blocks, 0);
	tmap_free(empty);
	tmap_free(got);
	tmap_free(m);
}
END_TEST

static uint8_t *slurp(const char *name, size_t *n)
{
	int fd = openat(tfd, name, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	struct stat st;
	fstat(fd, &st);
	uint8_t *b = malloc((size_t)st.st_size + 1);
	ck_assert_int_eq(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*n = (size_t)st.st_size;
	return b;
}

static void spit(const char *name, const uint8_t *b, size_t n)
{
	int fd = openat(tfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, b, n), (ssize_t)n);
	close(fd);
}

START_TEST(corruption_detected)
{
	struct tmap *m = tmap_new();
	for (uint64_t i = 0; i < 5000; i++) { /* about 6 blocks */
		cid_t k = mk_key(i), v = mk_val(i);
		tmap_op(m, WAL_OP_INSERT, &k, &v);
	}
	ck_assert_int_eq(ckpt_write(tfd, NULL, 42, tmap_source, m, NULL), 0);
	char name[CKPT_NAME_LEN + 1];
	ckpt_name(name, 42);
	size_t n;
	uint8_t *orig = slurp(name, &n);
	uint8_t *b = malloc(n + 1);
	size_t blk2 = CKPT_HEADER_BYTES + CKPT_BLOCK_BYTES; /* second block */
	struct {
		const char *what;
		long flip;     /* offset to flip, or -1 */
		long size;     /* new size (negative: n + size), or 0 */
	} cases[] = {
		{"empty file", -1, -(long)n},
		{"truncated header", -1, 10 - (long)n},
		{"header only", -1, CKPT_HEADER_BYTES - (long)n},
		{"truncated mid-block", -1, -(long)(n / 2)},
		{"truncated trailer", -1, -1},
		{"no trailer", -1, -(long)CKPT_TRAILER_BYTES},
		{"magic", 2, 0},
		{"version", 8, 0},
		{"header size", 12, 0},
		{"start lsn", 17, 0},
		{"key count", 33, 0},
		{"header crc", 61, 0},
		{"block tag", CKPT_HEADER_BYTES + 1, 0},
		{"block length", CKPT_HEADER_BYTES + 5, 0},
		{"block seq", (long)blk2 + 8, 0},
		{"block crc", CKPT_HEADER_BYTES + 13, 0},
		{"block payload", CKPT_HEADER_BYTES + 16 + 100, 0},
		{"block payload 2", (long)blk2 + 5000, 0},
		{"trailer magic", (long)n - CKPT_TRAILER_BYTES + 3, 0},
		{"trailer count", (long)n - CKPT_TRAILER_BYTES + 25, 0},
		{"trailer crc", (long)n - 2, 0},
		{"extra byte", -1, 1},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		memcpy(b, orig, n);
		size_t sz = n;
		if (cases[c].flip >= 0)
			b[cases[c].flip] ^= 0x10;
		if (cases[c].size != 0)
			sz = (size_t)((long)n + cases[c].size);
		if (sz > n)
			b[n] = 0;
		spit(name, b, sz);
		struct ckpt_info ri;
		struct tmap *got = tmap_new();
		int rc = ckpt_read(tfd, NULL, name, cb_load, got, &ri);
		ck_assert_msg(rc == CIDSTORE_ECORRUPT, "%s: rc %d", cases[c].what, rc);
		ck_assert_msg(strstr(ri.msg, name) != NULL, "%s: msg '%s'", cases[c].what, ri.msg);
		tmap_free(got);
	}
	/* intact again: fine; under another name: LSN mismatch */
	spit(name, orig, n);
	ck_assert_int_eq(ckpt_read(tfd, NULL, name, NULL, NULL, NULL), 0);
	char other[CKPT_NAME_LEN + 1];
	ckpt_name(other, 43);
	spit(other, orig, n);
	ck_assert_int_eq(ckpt_read_header(tfd, NULL, other, NULL), CIDSTORE_ECORRUPT);
	free(b);
	free(orig);
	tmap_free(m);
}
END_TEST

START_TEST(newer_version)
{
	struct tmap *m = build_state();
	ck_assert_int_eq(ckpt_write(tfd, NULL, 5, tmap_source, m, NULL), 0);
	char name[CKPT_NAME_LEN + 1];
	ckpt_name(name, 5);
	size_t n;
	uint8_t *b = slurp(name, &n);
	b[8] = 2; /* version 2, CRC fixed: a well-formed newer header */
	uint32_t crc = rec_crc32c(b, 60);
	for (int i = 0; i < 4; i++)
		b[60 + i] = (uint8_t)(crc >> (8 * i));
	spit(name, b, n);
	struct ckpt_info ri;
	ck_assert_int_eq(ckpt_read_header(tfd, NULL, name, &ri), CIDSTORE_EVERSION);
	ck_assert_uint_eq(ri.version, 2);
	ck_assert_int_eq(ckpt_read(tfd, NULL, name, NULL, NULL, &ri), CIDSTORE_EVERSION);
	/* a newer version with a larger header is still recognized as newer */
	uint8_t big[128];
	memset(big, 0, sizeof(big));
	memcpy(big, b, 60);
	big[12] = 128;
	crc = rec_crc32c(big, 124);
	for (int i = 0; i < 4; i++)
		big[124 + i] = (uint8_t)(crc >> (8 * i));
	spit(name, big, sizeof(big));
	ck_assert_int_eq(ckpt_read_header(tfd, NULL, name, &ri), CIDSTORE_EVERSION);
	free(b);
	tmap_free(m);
}
END_TEST

START_TEST(keeps_two)
{
	struct tmap *m = tmap_new();
	cid_t k = mk_key(1), v = mk_val(1);
	tmap_op(m, WAL_OP_INSERT, &k, &v);
	int fd = openat(tfd, "ckpt-0000000000000001.ckpt.tmp", O_CREAT | O_WRONLY, 0644);
	close(fd);
	for (uint64_t l = 10; l <= 40; l += 10)
		ck_assert_int_eq(ckpt_write(tfd, NULL, l, tmap_source, m, NULL), 0);
	sdir_list_t l;
	ck_assert_int_eq(sdir_list_checkpoints(tfd, &l), 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_uint_eq(l.v[0].lsn, 30);
	ck_assert_uint_eq(l.v[1].lsn, 40);
	sdir_list_free(&l);
	ck_assert_int_eq(sdir_list_tmp(tfd, &l), 0);
	ck_assert_uint_eq(l.n, 0);
	sdir_list_free(&l);
	uint64_t oldest;
	ck_assert_int_eq(ckpt_prune(tfd, NULL, 2, &oldest), 0);
	ck_assert_uint_eq(oldest, 30);
	tmap_free(m);
}
END_TEST

/* I/O fault: fdatasync fails */
static const struct log_io *posix;
static int bad_fdatasync(void *ctx, int fd)
{
	(void)ctx;
	(void)fd;
	errno = EIO;
	return -1;
}

START_TEST(sync_failure)
{
	posix = log_io_posix();
	struct log_io io = *posix;
	io.fdatasync = bad_fdatasync;
	struct tmap *m = build_state();
	ck_assert_int_eq(ckpt_write(tfd, &io, 9, tmap_source, m, NULL), CIDSTORE_EIO);
	sdir_list_t l;
	ck_assert_int_eq(sdir_list_checkpoints(tfd, &l), 0);
	ck_assert_uint_eq(l.n, 0);
	sdir_list_free(&l);
	ck_assert_int_eq(sdir_list_tmp(tfd, &l), 0);
	ck_assert_uint_eq(l.n, 0);
	sdir_list_free(&l);
	tmap_free(m);
}
END_TEST

START_TEST(fallback_to_previous)
{
	/* ckpt 100 (state A), WAL 101..200, ckpt 200 (state B) corrupt:
	 * recovery = A + replay of 101..200 = B. */
	struct tmap *m = tmap_new();
	for (uint64_t i = 0; i < 300; i++) {
		cid_t k = mk_key(i % 37), v = mk_val(i);
		tmap_op(m, WAL_OP_INSERT, &k, &v);
	}
	ck_assert_int_eq(ckpt_write(tfd, NULL, 100, tmap_source, m, NULL), 0);
	struct wal_rec *r = gen_ops(101, 100, 37, 9, m);
	seg_write(101, r, 100, 0);
	ck_assert_int_eq(ckpt_write(tfd, NULL, 200, tmap_source, m, NULL), 0);
	char name[CKPT_NAME_LEN + 1];
	ckpt_name(name, 200);
	size_t n;
	uint8_t *b = slurp(name, &n);
	spit(name, b, n - 7); /* truncated */
	struct tmap *got = tmap_new();
	struct recov_result res;
	struct recov_apply ap = {cb_load, cb_apply, cb_reset, got, NULL, NULL, NULL};
	int rc = recov_run(tfd, NULL, &ap, 2, 0, &res);
	ck_assert_msg(rc == 0, "rc %d: %s", rc, res.msg);
	ck_assert(res.ckpt_fallback);
	ck_assert_uint_eq(res.ckpt_lsn, 100);
	tmap_expect_equal(m, got);
	/* without the WAL the previous checkpoint is not enough */
	char seg[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(seg, 101);
	unlinkat(tfd, seg, 0);
	cb_reset(got);
	ck_assert_int_eq(recov_run(tfd, NULL, &ap, 1, 0, &res), CIDSTORE_ECORRUPT);
	/* both corrupt and no WAL from LSN 1: nothing usable */
	ckpt_name(name, 100);
	spit(name, b, 30);
	ck_assert_int_eq(recov_run(tfd, NULL, &ap, 1, 0, &res), CIDSTORE_ECORRUPT);
	free(b);
	free(r);
	tmap_free(got);
	tmap_free(m);
}
END_TEST

/* ---- parallel load (ckpt_load) ---- */

/* batch callback into a tmap; checks the entry flags against the key's
 * first appearance is not possible across threads, so it only counts */
struct pl_ctx {
	struct tmap *m;
	pthread_mutex_t mu;
	uint64_t cont, calls;
	pthread_t threads[8];
	unsigned nthreads;
	int fail_after; /* > 0: the fail_after-th call returns CIDSTORE_ENOMEM */
};

static int pl_batch(void *ctx, const struct ckpt_entry *e, size_t n)
{
	struct pl_ctx *c = ctx;
	ck_assert_uint_ge(n, 1);
	ck_assert_uint_le(n, CKPT_LOAD_BATCH);
	pthread_mutex_lock(&c->mu);
	c->calls++;
	bool fail = c->fail_after > 0 && c->calls == (uint64_t)c->fail_after;
	pthread_t self = pthread_self();
	unsigned t;
	for (t = 0; t < c->nthreads; t++)
		if (pthread_equal(c->threads[t], self))
			break;
	if (t == c->nthreads && t < 8)
		c->threads[c->nthreads++] = self;
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_ge(e[i].n, 1);
		ck_assert_uint_eq((uintptr_t)e[i].key % 8, 0); /* aligned for cid_t */
		c->cont += e[i].cont;
		for (uint32_t j = 0; j < e[i].n; j++)
			tmap_add_l(c->m, e[i].key, &e[i].vals[j]);
	}
	pthread_mutex_unlock(&c->mu);
	return fail ? CIDSTORE_ENOMEM : 0;
}

static int pl_load(const char *name, unsigned threads, uint32_t chunk, struct pl_ctx *c,
		   struct ckpt_info *ri)
{
	memset(c, 0, sizeof(*c));
	c->m = tmap_new();
	pthread_mutex_init(&c->mu, NULL);
	struct ckpt_load_args a = {threads, chunk, NULL, pl_batch, c};
	return ckpt_load(tfd, NULL, name, &a, ri);
}

static void pl_free(struct pl_ctx *c)
{
	tmap_free(c->m);
	pthread_mutex_destroy(&c->mu);
}

/* Loading with 1..4 threads, chunks of one block (the most interleaving)
 * or the default, gives the state written: a key spanning 3 blocks (its
 * continuations possibly loaded by other threads first) ends with all its
 * values, counted once. */
START_TEST(parallel_load)
{
	struct tmap *m = build_state();
	uint64_t nv, nk = tmap_count(m, &nv);
	struct ckpt_info wi;
	ck_assert_int_eq(ckpt_write(tfd, NULL, 31, tmap_source, m, &wi), 0);
	ck_assert_uint_gt(wi.blocks, 8);
	char name[CKPT_NAME_LEN + 1];
	ckpt_name(name, 31);
	unsigned ths[] = {1, 2, 3, 4};
	uint32_t chunks[] = {CKPT_BLOCK_BYTES, 3 * CKPT_BLOCK_BYTES + 100, 0};
	for (size_t t = 0; t < 4; t++)
		for (size_t k = 0; k < 3; k++) {
			struct pl_ctx c;
			struct ckpt_info ri;
			int rc = pl_load(name, ths[t], chunks[k], &c, &ri);
			ck_assert_msg(rc == 0, "threads %u chunk %u: rc %d: %s", ths[t], chunks[k],
				      rc, ri.msg);
			ck_assert_uint_eq(ri.keys, nk);
			ck_assert_uint_eq(ri.values, nv);
			ck_assert_uint_eq(ri.blocks, wi.blocks);
			ck_assert_uint_ge(c.cont, 3); /* the big key's and the exact one's */
			ck_assert_uint_le(c.nthreads, ths[t]);
			tmap_expect_equal(m, c.m);
			pl_free(&c);
		}
	/* verify only, several threads */
	struct ckpt_load_args v = {4, CKPT_BLOCK_BYTES, NULL, NULL, NULL};
	ck_assert_int_eq(ckpt_load(tfd, NULL, name, &v, NULL), 0);
	/* a chunk smaller than a block is refused */
	v.chunk_bytes = CKPT_BLOCK_BYTES - 1;
	ck_assert_int_eq(ckpt_load(tfd, NULL, name, &v, NULL), CIDSTORE_EINVAL);
	tmap_free(m);
}
END_TEST

/* A corrupt block in the middle (or two), found by several threads while
 * others load the blocks around it: ECORRUPT, and the message names the
 * same (lowest) offset as a one-thread read; an apply error stops the
 * load and is returned. */
START_TEST(parallel_corrupt)
{
	struct tmap *m = build_state();
	struct ckpt_info wi;
	ck_assert_int_eq(ckpt_write(tfd, NULL, 32, tmap_source, m, &wi), 0);
	char name[CKPT_NAME_LEN + 1];
	ckpt_name(name, 32);
	size_t n;
	uint8_t *orig = slurp(name, &n);
	uint8_t *b = malloc(n);
	/* offsets of the blocks */
	size_t off[64], nb = 0;
	for (size_t o = CKPT_HEADER_BYTES; o + CKPT_TRAILER_BYTES < n && nb < 64;) {
		uint32_t len = (uint32_t)orig[o + 4] | (uint32_t)orig[o + 5] << 8 |
			       (uint32_t)orig[o + 6] << 16 | (uint32_t)orig[o + 7] << 24;
		off[nb++] = o;
		o += CKPT_BLOCK_HDR_BYTES + len;
	}
	ck_assert_uint_eq(nb, wi.blocks);
	size_t mid = nb / 2;
	struct {
		const char *what;
		size_t at1, at2; /* bytes to flip (at2 0: one) */
		long cut;        /* > 0: file cut to this size */
	} cases[] = {
		{"payload of a middle block", off[mid] + 16 + 300, 0, 0},
		{"tag of a middle block", off[mid] + 1, 0, 0},
		{"length of a middle block", off[mid] + 5, 0, 0},
		{"sequence of a middle block", off[mid] + 8, 0, 0},
		{"two blocks: the earlier wins", off[mid + 2] + 16 + 8, off[mid] + 16 + 8, 0},
		{"two blocks, reversed", off[mid] + 16 + 8, off[nb - 1] + 16 + 8, 0},
		{"first block", off[0] + 16 + 50, 0, 0},
		{"last block", off[nb - 1] + 16 + 50, 0, 0},
		{"cut in a middle block", 0, 0, (long)(off[mid] + 1000)},
		{"cut at a block boundary", 0, 0, (long)off[mid]},
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		memcpy(b, orig, n);
		size_t sz = cases[k].cut > 0 ? (size_t)cases[k].cut : n;
		if (cases[k].at1)
			b[cases[k].at1] ^= 0x20;
		if (cases[k].at2)
			b[cases[k].at2] ^= 0x20;
		spit(name, b, sz);
		char first_msg[sizeof(wi.msg)] = "";
		for (unsigned th = 1; th <= 4; th++) {
			for (int ch = 0; ch < 2; ch++) {
				struct pl_ctx c;
				struct ckpt_info ri;
				int rc = pl_load(name, th, ch ? 0 : CKPT_BLOCK_BYTES, &c, &ri);
				ck_assert_msg(rc == CIDSTORE_ECORRUPT, "%s, %u threads: rc %d",
					      cases[k].what, th, rc);
				if (first_msg[0] == '\0')
					snprintf(first_msg, sizeof(first_msg), "%s", ri.msg);
				ck_assert_msg(strcmp(ri.msg, first_msg) == 0,
					      "%s, %u threads: '%s' vs one thread '%s'",
					      cases[k].what, th, ri.msg, first_msg);
				pl_free(&c);
			}
		}
		ck_assert_msg(strstr(first_msg, name) != NULL, "%s: msg '%s'", cases[k].what,
			      first_msg);
		/* the sequential reader agrees */
		struct ckpt_info ri;
		ck_assert_int_eq(ckpt_read(tfd, NULL, name, NULL, NULL, &ri), CIDSTORE_ECORRUPT);
		ck_assert_str_eq(ri.msg, first_msg);
	}
	/* an apply error in the middle stops every loader */
	spit(name, orig, n);
	for (unsigned th = 1; th <= 4; th++) {
		struct pl_ctx c;
		memset(&c, 0, sizeof(c));
		c.m = tmap_new();
		pthread_mutex_init(&c.mu, NULL);
		c.fail_after = 40;
		struct ckpt_load_args a = {th, CKPT_BLOCK_BYTES, NULL, pl_batch, &c};
		ck_assert_int_eq(ckpt_load(tfd, NULL, name, &a, NULL), CIDSTORE_ENOMEM);
		pl_free(&c);
	}
	free(b);
	free(orig);
	tmap_free(m);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *tc = tcase_create("checkpoint");
	tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, corruption_detected);
	tcase_add_test(tc, newer_version);
	tcase_add_test(tc, keeps_two);
	tcase_add_test(tc, sync_failure);
	tcase_add_test(tc, fallback_to_previous);
	tcase_add_test(tc, parallel_load);
	tcase_add_test(tc, parallel_corrupt);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
