/*
 * term.c — the term dictionary: a term's text (any byte string) under its
 * CID c = cid_sha256(text), kept in the store itself, so logging,
 * checkpoints, recovery, read_only opens and cidstore_verify hold for it as
 * for every other key.
 *
 * Layout: key TERM(c) = cid_composite(c, 0, 7) holds the text in chunks,
 * one 32-byte value each.  A value's bytes (the order cid_to_hex prints
 * them: w[0] most significant byte first) are
 *   chunk 0:        [u32 LE 0][u32 LE total length L][text 0 .. 23]
 *   chunk i >= 1:   [u32 LE i][text 24 + 28 (i - 1) .. + 27]
 * zero-padded after the text's end.  Values are a set: their order in the
 * index does not matter, the chunk index puts them back in place.
 * Arithmetic: a text of L bytes takes k = 1 + ceil(max(0, L - 24) / 28)
 * values: 32 B for L <= 24, then 32 B per 28 B of text (87.5 %), plus the
 * key's entry; k + 2 WAL records of 128 B when put (a 100-byte literal:
 * 4 values, 6 records).  L < 2^32 (ERANGE beyond).
 *
 * Put: if TERM(c) holds chunk 0 the text is known (0).  Otherwise one
 * crash-atomic batch inserts chunks 1 .. k-1 and then chunk 0, last: the
 * batch's operations on the one key are applied in order, so a reader who
 * sees chunk 0 sees every other chunk (cidstore_values reads the set at one
 * instant).  The call returns 1 iff its chunk-0 insert changed the set:
 * of two racing puts of one text exactly one returns 1.
 * Get: reads the set at one instant.  No chunk 0 (a put in progress, or the
 * prefix of a batch an ENOMEM stopped: the next put completes it) with
 * chunks that agree so far: unknown (0).  Chunk 0 present: exactly chunks
 * 0 .. k-1, each once, zero padding, else CIDSTORE_ECORRUPT (the chunks
 * contradict each other).  Lock-free: only cidstore_contains and
 * cidstore_values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "triple/triple.h"

#define HEAD_TEXT 24 /* text bytes in chunk 0 */
#define BODY_TEXT 28 /* text bytes in chunk i >= 1 */

static size_t chunks_of(size_t len)
{
	return len <= HEAD_TEXT ? 1 : 1 + (len - HEAD_TEXT + BODY_TEXT - 1) / BODY_TEXT;
}

static void put_le32(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* A value's 32 bytes, most significant first (as cid_to_hex prints). */
static cid_t cid_of_bytes(const uint8_t b[32])
{
	cid_t c;
	for (int w = 0; w < 4; w++) {
		uint64_t x = 0;
		for (int i = 0; i < 8; i++)
			x = x << 8 | b[8 * w + i];
		c.w[w] = x;
	}
	return c;
}

static void bytes_of_cid(const cid_t *c, uint8_t b[32])
{
	for (int w = 0; w < 4; w++)
		for (int i = 0; i < 8; i++)
			b[8 * w + i] = (uint8_t)(c->w[w] >> (56 - 8 * i));
}

/* Offset and size of chunk i's text in a text of len bytes. */
static void chunk_span(size_t len, size_t i, size_t *off, size_t *n)
{
	size_t o = i == 0 ? 0 : HEAD_TEXT + BODY_TEXT * (i - 1);
	size_t cap = i == 0 ? HEAD_TEXT : BODY_TEXT;
	*off = o;
	*n = o >= len ? 0 : len - o < cap ? len - o : cap;
}

static cid_t chunk_value(const uint8_t *text, size_t len, size_t i)
{
	uint8_t b[32] = {0};
	size_t off, n;
	chunk_span(len, i, &off, &n);
	put_le32(b, (uint32_t)i);
	if (i == 0)
		put_le32(b + 4, (uint32_t)len);
	if (n) /* text may be NULL when len == 0 */
		memcpy(b + (i == 0 ? 8 : 4), text + off, n);
	return cid_of_bytes(b);
}

/* Appends the put batch of one text to ops (chunk 0 last).  Returns the
 * number of operations. */
static size_t term_ops(const void *text, size_t len, const cid_t *c, cidstore_op_t *ops)
{
	cid_t key = tri_key1(c, TRI_R_TERM);
	size_t k = chunks_of(len);
	for (size_t i = 1; i <= k; i++)
		ops[i - 1] = (cidstore_op_t){
			.op = CIDSTORE_OP_INSERT,
			.key = key,
			.value = chunk_value(text, len, i % k), /* 1 .. k-1, then 0 */
		};
	return k;
}

/* 1 when TERM(c) holds chunk 0 of this text, 0 when not, or an error. */
static int term_known(cidstore_t *st, const void *text, size_t len, const cid_t *c)
{
	cid_t key = tri_key1(c, TRI_R_TERM);
	cid_t v0 = chunk_value(text, len, 0);
	return cidstore_contains(st, &key, &v0);
}

CIDSTORE_API int cidstore_term_put(cidstore_t *st, const void *text, size_t len, cid_t *out)
{
	if (!st || (!text && len))
		return CIDSTORE_EINVAL;
	if (len > UINT32_MAX)
		return CIDSTORE_ERANGE;
	cid_t c;
	cid_sha256(text, len, &c);
	if (out)
		*out = c;
	int known = term_known(st, text, len, &c);
	if (known != 0)
		return known < 0 ? known : 0;
	size_t k = chunks_of(len);
	cidstore_op_t op1[1];
	int res1[1];
	cidstore_op_t *ops = k == 1 ? op1 : malloc(k * sizeof(*ops));
	int *res = k == 1 ? res1 : malloc(k * sizeof(*res));
	if (!ops || !res) {
		if (k != 1) {
			free(ops);
			free(res);
		}
		return CIDSTORE_ENOMEM;
	}
	term_ops(text, len, &c, ops);
	int rc = store_write_batch_ex(st, ops, 0, k, res, NULL);
	int added = res[k - 1];
	if (k != 1) {
		free(ops);
		free(res);
	}
	return rc < 0 ? rc : added;
}

struct put_item {
	cid_t c;
	size_t i; /* index in the caller's arrays */
};

static int item_cmp(const void *x, const void *y)
{
	const struct put_item *a = x, *b = y;
	int r = memcmp(&a->c, &b->c, sizeof(a->c));
	return r ? r : (a->i > b->i) - (a->i < b->i);
}

CIDSTORE_API long cidstore_term_put_many(cidstore_t *st, const void *const *texts,
					 const size_t *lens, size_t n, cid_t *out)
{
	if (!st || (n && (!texts || !lens)))
		return CIDSTORE_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!texts[i] && lens[i])
			return CIDSTORE_EINVAL;
		if (lens[i] > UINT32_MAX)
			return CIDSTORE_ERANGE;
	}
	if (n == 0)
		return 0;
	struct put_item *it = malloc(n * sizeof(*it));
	if (!it)
		return CIDSTORE_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		cid_sha256(texts[i], lens[i], &it[i].c);
		it[i].i = i;
		if (out)
			out[i] = it[i].c;
	}
	/* the distinct texts not known yet (the first of equal CIDs) */
	qsort(it, n, sizeof(*it), item_cmp);
	size_t m = 0, total = 0;
	int rc = 0;
	for (size_t j = 0; j < n; j++) {
		if (j > 0 && memcmp(&it[j].c, &it[j - 1].c, sizeof(cid_t)) == 0)
			continue;
		size_t i = it[j].i;
		int known = term_known(st, texts[i], lens[i], &it[j].c);
		if (known < 0) {
			rc = known;
			break;
		}
		if (known)
			continue;
		it[m++] = it[j];
		total += chunks_of(lens[i]);
	}
	if (rc || m == 0) {
		free(it);
		return rc;
	}
	if (total > INT32_MAX) {
		free(it);
		return CIDSTORE_ERANGE; /* one batch holds at most INT32_MAX operations */
	}
	cidstore_op_t *ops = malloc(total * sizeof(*ops));
	int *res = malloc(total * sizeof(*res));
	size_t *last = malloc(m * sizeof(*last)); /* each text's chunk-0 op */
	if (!ops || !res || !last) {
		free(ops);
		free(res);
		free(last);
		free(it);
		return CIDSTORE_ENOMEM;
	}
	size_t nops = 0;
	for (size_t j = 0; j < m; j++) {
		size_t i = it[j].i;
		nops += term_ops(texts[i], lens[i], &it[j].c, ops + nops);
		last[j] = nops - 1;
	}
	rc = store_write_batch_ex(st, ops, 0, nops, res, NULL);
	long added = 0;
	for (size_t j = 0; j < m; j++)
		added += res[last[j]];
	free(ops);
	free(res);
	free(last);
	free(it);
	return rc < 0 ? rc : added;
}

/* ---- get ---- */

struct gather {
	cid_t *v;
	size_t n, cap;
	int err;
};

static int gather_cb(const cid_t *v, size_t n, void *ctx)
{
	struct gather *g = ctx;
	if (g->n + n > g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		while (cap < g->n + n)
			cap *= 2;
		cid_t *nv = realloc(g->v, cap * sizeof(*nv));
		if (!nv) {
			g->err = CIDSTORE_ENOMEM;
			return 1;
		}
		g->v = nv;
		g->cap = cap;
	}
	memcpy(g->v + g->n, v, n * sizeof(*v));
	g->n += n;
	return 0;
}

/* Sorts by chunk index (the value's first four bytes, little-endian). */
static uint32_t chunk_index(const cid_t *v)
{
	uint8_t b[32];
	bytes_of_cid(v, b);
	return get_le32(b);
}

static int chunk_cmp(const void *x, const void *y)
{
	uint32_t a = chunk_index(x), b = chunk_index(y);
	return (a > b) - (a < b);
}

static bool zero_bytes(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

CIDSTORE_API long cidstore_term_get(cidstore_t *st, const cid_t *cid, void *buf, size_t cap)
{
	if (!st || !cid || (!buf && cap))
		return CIDSTORE_EINVAL;
	cid_t key = tri_key1(cid, TRI_R_TERM);
	struct gather g = {0};
	long r = tri_read_set(st, &key, gather_cb, &g);
	if (g.err || r < 0) {
		free(g.v);
		return g.err ? g.err : r;
	}
	if (g.n == 0)
		return 0; /* unknown */
	qsort(g.v, g.n, sizeof(*g.v), chunk_cmp);
	long ret;
	for (size_t i = 1; i < g.n; i++) {
		if (chunk_index(&g.v[i]) == chunk_index(&g.v[i - 1])) {
			ret = CIDSTORE_ECORRUPT; /* two different chunks with one index */
			goto out;
		}
	}
	if (chunk_index(&g.v[0]) != 0) {
		ret = 0; /* a put in progress (chunk 0 comes last): unknown yet */
		goto out;
	}
	uint8_t b[32];
	bytes_of_cid(&g.v[0], b);
	size_t len = get_le32(b + 4);
	size_t k = chunks_of(len);
	if (g.n != k || chunk_index(&g.v[k - 1]) != k - 1) {
		ret = CIDSTORE_ECORRUPT; /* chunk 0 is written last: all must be there */
		goto out;
	}
	/* check every chunk before buf is written */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < k; i++) {
			size_t off, n;
			chunk_span(len, i, &off, &n);
			bytes_of_cid(&g.v[i], b);
			const uint8_t *src = i == 0 ? b + 8 : b + 4;
			size_t room = i == 0 ? HEAD_TEXT : BODY_TEXT;
			if (pass == 0 && !zero_bytes(src + n, room - n)) {
				ret = CIDSTORE_ECORRUPT; /* bytes after the text's end */
				goto out;
			}
			if (pass == 1 && off < cap)
				memcpy((uint8_t *)buf + off, src, n < cap - off ? n : cap - off);
		}
	}
	ret = (long)len;
out:
	free(g.v);
	return ret;
}
