/*
 * match.c — the readers of the triple layer: cidstore_triple_match and
 * cidstore_triple_count.  What each pattern reads, and why every delivered
 * triple was stored at some instant during the call and one stored for the
 * whole call is delivered once: the top comment of triple.c.
 *
 * Lock-free like cidstore_lookup: only cidstore_contains, cidstore_lookup,
 * cidstore_lookup_many and cidstore_values (through tri_read_set), never
 * the writer gate.  Sets are walked nested: the callback of the outer set
 * reads the inner ones, so the user's fn runs inside up to three nested
 * reader sections of the index (a slow fn delays memory reclamation, never
 * another thread; fn may call the store, also to write).  In serialized
 * mode tri_read_set copies each set first (cidstore_values holds the
 * global lock across its callback there).
 *
 * ---- Batched leaf reads (S??, ?P?, ??O, ???) ----
 * The members of a single-term set (SUBJ(s) -> p, PRED(p) -> s,
 * OBJ(o) -> p; for ??? each PRED(p) of ALLP) arrive in chunks (256 from
 * cidstore_values); their pair keys SP(s,p) / PO(p,o) are read
 * LEAF_BATCH (64) at a time by one cidstore_lookup_many, which prefetches
 * every key's group line, then every candidate entry, 16 keys at a time,
 * before resolving any.  Count: cap 0, the counts are the answer.  Match:
 * up to LEAF_CAP (8) values per key come with the batch (an inline buffer
 * for batches of <= 8 keys, one malloc'd 16 KiB buffer per call for bigger
 * ones; if that malloc fails, batches of 8); a key holding more is read
 * again, alone, by tri_read_set (in chunks: never copied whole) and only
 * that read is delivered, the batch's copy of that key dropped.
 * Why the promises of triple.c still hold: every delivered value comes
 * from exactly one read of its pair key (the batch's, or the re-read that
 * replaces it), each read at one instant inside the call, and each key is
 * delivered from one read only, each member once (its outer set is read at
 * one instant): nothing twice.  A triple stored for the whole call has its
 * member in the outer set (I1/I2) and its value in whichever read of the
 * pair key is delivered.  The batch is not one snapshot, nor was the
 * sequence of single reads before.  fn's non-zero return stops at once
 * (the rest of the batch is not delivered); an error of any read stops
 * and is returned.
 *
 * ---- Misses per query (k = members of the single-term set) ----
 * A pair-key read costs ~2 dependent cache misses (group line, then entry;
 * a third for a spilled set's values).  Before batching: 1 + k reads one
 * after another, ~2 + 2k miss latencies in series.  Now: the single-term
 * read, then per 16 keys 2 overlapped rounds (3 when a key's second group
 * is needed): ~2 + 2 * ceil(k / 16) latencies in series, plus, for match,
 * one more read per key over 8 values (its lines are then in cache).  Not
 * batched: the SHA-256 composite of each key (~0.1 us, now the larger
 * part of a ?P?-count: ~0.16 us of CPU per subject at 1M), and, for ???,
 * the |ALLP| reads of PRED(p).  Measured at 1M triples (bench/triples,
 * medians of 3, CPU time per query, before/after run back to back at
 * load 2-6): S?? 4.87 -> 3.26 us (9 results, ~4 keys: the composites and
 * the SUBJ read remain), ?P?-count 31.9 -> 13.8 ms (~80k keys), ??O
 * 10.0 -> 8.6 us; an earlier pair at load 7-11: 5.50 -> 2.29 us,
 * 32.7 -> 12.6 ms, 10.1 -> 9.0 us.
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

/* Keys per cidstore_lookup_many of a batched leaf level, and values per key
 * it copies for match (a key holding more is read again on its own). */
#define LEAF_BATCH 64
#define LEAF_CAP 8
#define LEAF_INLINE 8 /* keys whose values fit the inline buffer */

struct mctx {
	cidstore_t *st;
	cidstore_triple_fn fn; /* NULL: count */
	void *ctx;
	cidstore_triple_t t;   /* the fixed terms, and those set by outer levels */
	enum fill fill;        /* the leaf's */
	long count;
	int user_rc;           /* fn's non-zero return: stop */
	int err;               /* an error of a nested read: stop */
	struct leafbuf *lb;    /* the batch buffers (uninitialized: not zeroed per call) */
	cid_t *vals;           /* LEAF_BATCH * LEAF_CAP values, lazily; NULL: none yet */
	bool vals_failed;      /* its malloc failed: batches of LEAF_INLINE keys */
};

/* One batch of pair keys at a time (batched leaf levels never nest). */
struct leafbuf {
	cid_t keys[LEAF_BATCH];
	long counts[LEAF_BATCH];
	cid_t inl[LEAF_INLINE * LEAF_CAP]; /* values of a batch of <= LEAF_INLINE keys */
};

static bool stopped(const struct mctx *m)
{
	return m->user_rc || m->err;
}

/* Delivers the values v[0..n) of the leaf (m->fill) with the other terms
 * as set in m->t.  Returns non-zero when fn stopped. */
static int deliver(struct mctx *m, const cid_t *v, size_t n)
{
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

static int leaf_cb(const cid_t *v, size_t n, void *ctx)
{
	return deliver(ctx, v, n);
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

/* Which outer set a batched leaf level walks: its members set t.p (SUBJ,
 * OBJ) or t.s (PRED); the pair key is SP(s, p) (fill o) or PO(p, o)
 * (fill s). */
enum outer { OUT_SUBJ, OUT_PRED, OUT_OBJ };

static cid_t *member_of(struct mctx *m, enum outer k)
{
	return k == OUT_PRED ? &m->t.s : &m->t.p;
}

static cid_t pair_key(const struct mctx *m, enum outer k)
{
	return k == OUT_OBJ ? tri_key2(&m->t.p, &m->t.o, TRI_R_PO)
			    : tri_key2(&m->t.s, &m->t.p, TRI_R_SP);
}

/* The pair sets of the members v[0..n) of an outer set, LEAF_BATCH keys
 * per cidstore_lookup_many (their misses overlapped).  Count: cap 0, the
 * counts are the answer.  Match: up to LEAF_CAP values per key come with
 * the batch and are delivered from there; a key holding more is read
 * again, alone, by tri_read_set, and only that read is delivered (the
 * batch's copy of it is dropped): every delivered value comes from one
 * read of its key, at one instant, and no key is delivered twice. */
static void leaf_batch(struct mctx *m, const cid_t *v, size_t n, enum outer k)
{
	struct leafbuf *lb = m->lb;
	cid_t *member = member_of(m, k);
	enum fill fill = k == OUT_OBJ ? FILL_S : FILL_O;
	size_t cap = m->fn ? LEAF_CAP : 0;
	for (size_t base = 0; base < n && !stopped(m);) {
		size_t nb = n - base < LEAF_BATCH ? n - base : LEAF_BATCH;
		cid_t *out = NULL;
		if (m->fn) {
			if (nb > LEAF_INLINE && !m->vals && !m->vals_failed) {
				m->vals = malloc(sizeof(cid_t) * LEAF_BATCH * LEAF_CAP);
				m->vals_failed = !m->vals;
			}
			if (nb > LEAF_INLINE && m->vals) {
				out = m->vals;
			} else {
				/* a small batch, or no memory for a big one */
				nb = nb < LEAF_INLINE ? nb : LEAF_INLINE;
				out = lb->inl;
			}
		}
		for (size_t j = 0; j < nb; j++) {
			*member = v[base + j];
			lb->keys[j] = pair_key(m, k);
		}
		int rc = cidstore_lookup_many(m->st, lb->keys, nb, out, cap, lb->counts);
		if (rc) {
			m->err = rc;
			return;
		}
		for (size_t j = 0; j < nb && !stopped(m); j++) {
			long c = lb->counts[j];
			if (c < 0) {
				m->err = (int)c;
				return;
			}
			if (!m->fn) {
				m->count += c;
				continue;
			}
			if (c == 0)
				continue;
			*member = v[base + j];
			if ((size_t)c <= cap) {
				m->fill = fill;
				deliver(m, out + j * cap, (size_t)c);
			} else {
				pair_leaf(m, &lb->keys[j], fill); /* replaces the batch's read */
			}
		}
		base += nb;
	}
}

/* SUBJ(s) -> p: SP(s, p) -> o */
static int subj_cb(const cid_t *v, size_t n, void *ctx)
{
	struct mctx *m = ctx;
	leaf_batch(m, v, n, OUT_SUBJ);
	return stopped(m);
}

/* PRED(p) -> s: SP(s, p) -> o */
static int pred_cb(const cid_t *v, size_t n, void *ctx)
{
	struct mctx *m = ctx;
	leaf_batch(m, v, n, OUT_PRED);
	return stopped(m);
}

/* OBJ(o) -> p: PO(p, o) -> s */
static int obj_cb(const cid_t *v, size_t n, void *ctx)
{
	struct mctx *m = ctx;
	leaf_batch(m, v, n, OUT_OBJ);
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
	struct leafbuf lb;
	struct mctx m = {.st = st, .fn = fn, .ctx = ctx, .lb = &lb};
	int rc = walk(&m, s, p, o);
	free(m.vals);
	if (rc < 0)
		return rc;
	return m.user_rc;
}

CIDSTORE_API long cidstore_triple_count(cidstore_t *st, const cid_t *s, const cid_t *p,
					const cid_t *o)
{
	if (!st)
		return CIDSTORE_EINVAL;
	struct leafbuf lb;
	struct mctx m = {.st = st, .lb = &lb};
	int rc = walk(&m, s, p, o);
	return rc < 0 ? rc : m.count;
}
