/*
 * match.c — the readers of the triple layer: cidstore_triple_match and
 * cidstore_triple_count.  What each pattern reads, and why every delivered
 * triple was stored at some instant during the call and one stored for the
 * whole call is delivered once: the top comment of triple.c.
 *
 * Lock-free like cidstore_lookup: only cidstore_contains, cidstore_lookup
 * and cidstore_values (through tri_read_set), never the writer gate.  Sets
 * are walked nested: the callback of the outer set reads the inner ones,
 * so the user's fn runs inside up to three nested reader sections of the
 * index (a slow fn delays memory reclamation, never another thread; fn may
 * call the store, also to write).  In serialized mode tri_read_set copies
 * each set first (cidstore_values holds the global lock across its
 * callback there).
 */
#include <stdlib.h>

#include "store/store_internal.h"
#include "triple/triple.h"

long tri_read_set(cidstore_t *st, const cid_t *key, cidstore_values_fn fn, void *ctx)
{
	if (!st->serialized)
		return cidstore_values(st, key, fn, ctx);
	size_t cap = 64;
	cid_t *buf = NULL;
	for (;;) {
		cid_t *nb = realloc(buf, cap * sizeof(*buf));
		if (!nb) {
			free(buf);
			return CIDSTORE_ENOMEM;
		}
		buf = nb;
		long n = cidstore_lookup(st, key, buf, cap);
		if (n < 0 || (size_t)n <= cap) {
			int rc = n > 0 ? fn(buf, (size_t)n, ctx) : 0;
			free(buf);
			return rc ? rc : n;
		}
		cap = (size_t)n + (size_t)n / 4 + 16; /* it grew since the count */
	}
}

/* Which term the values of a pair index fill. */
enum fill { FILL_S, FILL_P, FILL_O };

struct mctx {
	cidstore_t *st;
	cidstore_triple_fn fn; /* NULL: count */
	void *ctx;
	cidstore_triple_t t;   /* the fixed terms, and those set by outer levels */
	enum fill fill;        /* the leaf's */
	long count;
	int user_rc;           /* fn's non-zero return: stop */
	int err;               /* an error of a nested read: stop */
};

static bool stopped(const struct mctx *m)
{
	return m->user_rc || m->err;
}

static int leaf_cb(const cid_t *v, size_t n, void *ctx)
{
	struct mctx *m = ctx;
	cid_t *dst = m->fill == FILL_S ? &m->t.s : m->fill == FILL_P ? &m->t.p : &m->t.o;
	for (size_t i = 0; i < n; i++) {
		*dst = v[i];
		int rc = m->fn(&m->t, m->ctx);
		if (rc) {
			m->user_rc = rc;
			return 1;
		}
	}
	return 0;
}

/* Delivers (or counts) the values of one pair index key. */
static void pair_leaf(struct mctx *m, const cid_t *key, enum fill fill)
{
	if (!m->fn) {
		long n = cidstore_lookup(m->st, key, NULL, 0);
		if (n < 0)
			m->err = (int)n;
		else
			m->count += n;
		return;
	}
	m->fill = fill;
	long r = tri_read_set(m->st, key, leaf_cb, m);
	if (r < 0 && !m->err)
		m->err = (int)r;
}

/* SUBJ(s) -> p: SP(s, p) -> o */
static int subj_cb(const cid_t *v, size_t n, void *ctx)
{
	struct mctx *m = ctx;
	for (size_t i = 0; i < n && !stopped(m); i++) {
		m->t.p = v[i];
		cid_t sp = tri_key2(&m->t.s, &m->t.p, TRI_R_SP);
		pair_leaf(m, &sp, FILL_O);
	}
	return stopped(m);
}

/* PRED(p) -> s: SP(s, p) -> o */
static int pred_cb(const cid_t *v, size_t n, void *ctx)
{
	struct mctx *m = ctx;
	for (size_t i = 0; i < n && !stopped(m); i++) {
		m->t.s = v[i];
		cid_t sp = tri_key2(&m->t.s, &m->t.p, TRI_R_SP);
		pair_leaf(m, &sp, FILL_O);
	}
	return stopped(m);
}

/* OBJ(o) -> p: PO(p, o) -> s */
static int obj_cb(const cid_t *v, size_t n, void *ctx)
{
	struct mctx *m = ctx;
	for (size_t i = 0; i < n && !stopped(m); i++) {
		m->t.p = v[i];
		cid_t po = tri_key2(&m->t.p, &m->t.o, TRI_R_PO);
		pair_leaf(m, &po, FILL_S);
	}
	return stopped(m);
}

/* ALLP -> p: PRED(p) -> s: SP(s, p) -> o */
static int allp_cb(const cid_t *v, size_t n, void *ctx)
{
	struct mctx *m = ctx;
	for (size_t i = 0; i < n && !stopped(m); i++) {
		m->t.p = v[i];
		cid_t pred = tri_key1(&m->t.p, TRI_R_PRED);
		long r = tri_read_set(m->st, &pred, pred_cb, m);
		if (r < 0 && !m->err)
			m->err = (int)r;
	}
	return stopped(m);
}

/* Walks the keys of pattern (s, p, o) (NULL: wildcard) for m: delivers to
 * m->fn, or counts when m->fn is NULL.  Returns 0 or an error (m->user_rc
 * says whether fn stopped it). */
static int walk(struct mctx *m, const cid_t *s, const cid_t *p, const cid_t *o)
{
	if (s)
		m->t.s = *s;
	if (p)
		m->t.p = *p;
	if (o)
		m->t.o = *o;
	cid_t key;
	cidstore_values_fn outer;
	if (s && p && o) {
		key = tri_key2(s, p, TRI_R_SP);
		int c = cidstore_contains(m->st, &key, o);
		if (c < 0)
			return c;
		if (c == 1) {
			if (m->fn)
				m->user_rc = m->fn(&m->t, m->ctx);
			else
				m->count = 1;
		}
		return 0;
	} else if (s && p) {
		key = tri_key2(s, p, TRI_R_SP);
		pair_leaf(m, &key, FILL_O);
		return m->err;
	} else if (s && o) {
		key = tri_key2(o, s, TRI_R_OS);
		pair_leaf(m, &key, FILL_P);
		return m->err;
	} else if (p && o) {
		key = tri_key2(p, o, TRI_R_PO);
		pair_leaf(m, &key, FILL_S);
		return m->err;
	} else if (s) {
		key = tri_key1(s, TRI_R_SUBJ);
		outer = subj_cb;
	} else if (p) {
		key = tri_key1(p, TRI_R_PRED);
		outer = pred_cb;
	} else if (o) {
		key = tri_key1(o, TRI_R_OBJ);
		outer = obj_cb;
	} else {
		key = tri_key_allp();
		outer = allp_cb;
	}
	long r = tri_read_set(m->st, &key, outer, m);
	if (m->err)
		return m->err;
	return r < 0 ? (int)r : 0;
}

CIDSTORE_API int cidstore_triple_match(cidstore_t *st, const cid_t *s, const cid_t *p,
				       const cid_t *o, cidstore_triple_fn fn, void *ctx)
{
	if (!st || !fn)
		return CIDSTORE_EINVAL;
	struct mctx m = {.st = st, .fn = fn, .ctx = ctx};
	int rc = walk(&m, s, p, o);
	if (rc < 0)
		return rc;
	return m.user_rc;
}

CIDSTORE_API long cidstore_triple_count(cidstore_t *st, const cid_t *s, const cid_t *p,
					const cid_t *o)
{
	if (!st)
		return CIDSTORE_EINVAL;
	struct mctx m = {.st = st};
	int rc = walk(&m, s, p, o);
	return rc < 0 ? rc : m.count;
}
