/*
 * log_test_util.h — helpers shared by the log-layer tests (test_checkpoint,
 * test_recovery): a small thread-safe key -> value-set model used as the
 * apply target, a temporary store directory per test (made and removed
 * with test_support.h) and writers of hand-made WAL segments.  Header-only
 * (static functions); define LOG_TEST_TMP_PREFIX before including it.
 */
#ifndef CIDSTORE_LOG_TEST_UTIL_H
#define CIDSTORE_LOG_TEST_UTIL_H

#include "test_support.h"

#ifndef LOG_TEST_TMP_PREFIX
#define LOG_TEST_TMP_PREFIX "cidstore-logtest"
#endif

/* ---- a small thread-safe model: key -> set of values ---- */
#define TMAP_B 4096u
struct tmap_ent {
	cid_t key;
	cid_t *v;
	size_t n, cap;
	struct tmap_ent *next;
};
struct tmap {
	pthread_mutex_t mu;
	struct tmap_ent *b[TMAP_B];
};
struct pair {
	cid_t k, v;
};

static struct tmap *tmap_new(void)
{
	struct tmap *m = calloc(1, sizeof(*m));
	pthread_mutex_init(&m->mu, NULL);
	return m;
}

static void tmap_clear(struct tmap *m)
{
	for (size_t i = 0; i < TMAP_B; i++) {
		struct tmap_ent *e = m->b[i];
		while (e) {
			struct tmap_ent *nx = e->next;
			free(e->v);
			free(e);
			e = nx;
		}
		m->b[i] = NULL;
	}
}

static void tmap_free(struct tmap *m)
{
	tmap_clear(m);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static size_t tmap_slot(const cid_t *k)
{
	uint64_t h = k->w[0] * 0x9e3779b97f4a7c15ull ^ k->w[1] ^ (k->w[2] << 7) ^ k->w[3];
	h ^= h >> 29;
	return (size_t)(h % TMAP_B);
}

static struct tmap_ent **tmap_find(struct tmap *m, const cid_t *k)
{
	struct tmap_ent **pp = &m->b[tmap_slot(k)];
	while (*pp && memcmp(&(*pp)->key, k, sizeof(*k)) != 0)
		pp = &(*pp)->next;
	return pp;
}

static void tmap_add_l(struct tmap *m, const cid_t *k, const cid_t *v)
{
	struct tmap_ent **pp = tmap_find(m, k);
	if (*pp == NULL) {
		*pp = calloc(1, sizeof(**pp));
		(*pp)->key = *k;
	}
	struct tmap_ent *e = *pp;
	for (size_t i = 0; i < e->n; i++)
		if (memcmp(&e->v[i], v, sizeof(*v)) == 0)
			return;
	if (e->n == e->cap) {
		e->cap = e->cap ? e->cap * 2 : 4;
		e->v = realloc(e->v, e->cap * sizeof(cid_t));
	}
	e->v[e->n++] = *v;
}

static void tmap_del_l(struct tmap *m, const cid_t *k, const cid_t *v)
{
	struct tmap_ent **pp = tmap_find(m, k);
	struct tmap_ent *e = *pp;
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->n; i++) {
		if (memcmp(&e->v[i], v, sizeof(*v)) == 0) {
			e->v[i] = e->v[--e->n];
			break;
		}
	}
	if (e->n == 0) {
		*pp = e->next;
		free(e->v);
		free(e);
	}
}

static void tmap_delkey_l(struct tmap *m, const cid_t *k)
{
	struct tmap_ent **pp = tmap_find(m, k);
	struct tmap_ent *e = *pp;
	if (e == NULL)
		return;
	*pp = e->next;
	free(e->v);
	free(e);
}

static void tmap_op(struct tmap *m, int op, const cid_t *k, const cid_t *v)
{
	pthread_mutex_lock(&m->mu);
	if (op == WAL_OP_INSERT)
		tmap_add_l(m, k, v);
	else if (op == WAL_OP_DELETE_VALUE)
		tmap_del_l(m, k, v);
	else
		tmap_delkey_l(m, k);
	pthread_mutex_unlock(&m->mu);
}

static int pair_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct pair));
}

static struct pair *tmap_pairs(struct tmap *m, size_t *n)
{
	size_t cnt = 0, cap = 1024;
	struct pair *p = malloc(cap * sizeof(*p));
	for (size_t i = 0; i < TMAP_B; i++)
		for (struct tmap_ent *e = m->b[i]; e; e = e->next)
			for (size_t j = 0; j < e->n; j++) {
				if (cnt == cap)
					p = realloc(p, (cap *= 2) * sizeof(*p));
				p[cnt].k = e->key;
				p[cnt].v = e->v[j];
				cnt++;
			}
	qsort(p, cnt, sizeof(*p), pair_cmp);
	*n = cnt;
	return p;
}

static void tmap_expect_equal(struct tmap *a, struct tmap *b)
{
	size_t na, nb;
	struct pair *pa = tmap_pairs(a, &na), *pb = tmap_pairs(b, &nb);
	ck_assert_uint_eq(na, nb);
	ck_assert_msg(memcmp(pa, pb, na * sizeof(*pa)) == 0, "states differ");
	free(pa);
	free(pb);
}

/* recovery callbacks into a tmap */
static int cb_load(const cid_t *k, const cid_t *v, size_t n, void *ctx)
{
	struct tmap *m = ctx;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < n; i++)
		tmap_add_l(m, k, &v[i]);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

static int cb_apply(void *ctx, int op, const cid_t *k, const cid_t *v, uint64_t lsn)
{
	(void)lsn;
	tmap_op(ctx, op, k, v);
	return 0;
}

static int cb_reset(void *ctx)
{
	struct tmap *m = ctx;
	pthread_mutex_lock(&m->mu);
	tmap_clear(m);
	pthread_mutex_unlock(&m->mu);
	return 0;
}

/* checkpoint source: every key of a tmap */
static int tmap_source(void *src, cidstore_scan_fn emit, void *ectx)
{
	struct tmap *m = src;
	for (size_t i = 0; i < TMAP_B; i++)
		for (struct tmap_ent *e = m->b[i]; e; e = e->next) {
			int rc = emit(&e->key, e->v, e->n, ectx);
			if (rc)
				return rc;
		}
	return 0;
}

/* ---- test directory and segment builder ---- */
static char tdir[256];
static int tfd = -1;

static void dir_setup(void)
{
	tmpdir_make(tdir, sizeof(tdir), LOG_TEST_TMP_PREFIX);
	tfd = open(tdir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(tfd, 0);
}

static void dir_teardown(void)
{
	close(tfd);
	ck_assert_int_eq(tmpdir_remove(tdir), 0);
}

static cid_t mk_key(uint64_t i)
{
	cid_t c = {{i * 0x9e3779b97f4a7c15ull, i, 0x1234, i ^ 0x55}};
	return c;
}

static cid_t mk_val(uint64_t j)
{
	cid_t c = {{0xabcull, j, j * 3, 7}};
	return c;
}

#define SEG_BYTES (64u * 1024u)

/* Writes wal-<first>.log: header, the n records (LSN first..), zeros up to
 * seg_bytes (or just the records when seg_bytes == 0). */
static void seg_write(uint64_t first, const struct wal_rec *recs, size_t n,
		      size_t seg_bytes)
{
	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, first);
	size_t sz = (n + 1) * WAL_REC_SIZE;
	if (seg_bytes > sz)
		sz = seg_bytes;
	uint8_t *buf = calloc(1, sz);
	struct wal_rec h;
	rec_seg_header(&h, first, sz, 1);
	rec_encode(buf, &h);
	for (size_t i = 0; i < n; i++)
		rec_encode(buf + (i + 1) * WAL_REC_SIZE, &recs[i]);
	int fd = openat(tfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, sz), (ssize_t)sz);
	close(fd);
	free(buf);
}

#endif
