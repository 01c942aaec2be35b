/*
 * triple.h — internal calls of the triple layer (layer 5, src/triple/):
 * the composite keys it writes, the set reader shared by match.c and
 * term.c, and the cleaning pass the store's maintenance calls.  The layout
 * and its arithmetic: the top comment of triple.c.
 */
#ifndef CIDSTORE_TRIPLE_TRIPLE_H
#define CIDSTORE_TRIPLE_TRIPLE_H

#include <stdint.h>

#include "cidstore.h"

/* Index roles of cid_composite (r).  0..2 are the pair indexes of DESIGN
 * §4; the others are this layer's. */
enum {
	TRI_R_SP = 0,   /* cid_composite(s, p, 0) -> o */
	TRI_R_OS = 1,   /* cid_composite(o, s, 1) -> p */
	TRI_R_PO = 2,   /* cid_composite(p, o, 2) -> s */
	TRI_R_SUBJ = 3, /* cid_composite(s, 0, 3) -> p with SP(s, p) non-empty */
	TRI_R_PRED = 4, /* cid_composite(p, 0, 4) -> s with SP(s, p) non-empty */
	TRI_R_OBJ = 5,  /* cid_composite(o, 0, 5) -> p with PO(p, o) non-empty */
	TRI_R_ALLP = 6, /* cid_composite(0, 0, 6) -> p with PRED(p) non-empty */
	TRI_R_TERM = 7, /* cid_composite(c, 0, 7) -> the chunks of c's text */
};

static inline cid_t tri_key2(const cid_t *a, const cid_t *b, unsigned r)
{
	return cid_composite(a, b, r);
}

static inline cid_t tri_key1(const cid_t *a, unsigned r)
{
	static const cid_t zero;
	return cid_composite(a, &zero, r);
}

static inline cid_t tri_key_allp(void)
{
	static const cid_t zero;
	return cid_composite(&zero, &zero, TRI_R_ALLP);
}

/* cidstore_values for this layer: fn gets key's values in chunks from one
 * instant.  In serialized mode (where fn may not call the store inside
 * cidstore_values) the set is copied first and fn runs outside the lock.
 * Returns the number delivered, fn's non-zero return as is, or an error. */
long tri_read_set(cidstore_t *st, const cid_t *key, cidstore_values_fn fn, void *ctx);

/* One stale-entry cleaning pass now (the store's maintenance calls it):
 * takes the queued candidates (pairs whose SP or PO key a delete emptied),
 * closes the writer gate, removes the single-term entries whose pair is
 * still empty, opens the gate.  When the queue is empty and a full sweep
 * was asked for (the first pass after a durable store is opened: a crash
 * loses the queue), walks ALLP -> PRED -> SP first to find candidates.
 * *cleaned (may be NULL) gets the number of entries removed.  Returns 0,
 * CIDSTORE_EINVAL, CIDSTORE_ENOMEM, or an error of the store's write path
 * (CIDSTORE_ERDONLY on a read_only store with candidates: none there).
 * Waits for: another cleaning pass, the triple writers inside the gate. */
int triple_maintain(cidstore_t *st, uint64_t *cleaned);

#endif
