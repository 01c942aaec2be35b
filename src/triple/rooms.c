/*
 * rooms.c — same-triple exclusion between inserts and deletes.
 *
 * Why: a triple lives in three keys (SP->O, OS->P, PO->S), written by one
 * batch.  Each operation of a batch is linearizable on its own key, but two
 * batches on the same three keys may interleave: an insert and a delete of
 * the same triple running at once could leave SP without o and OS with p —
 * a half-stored triple for good.  Two inserts (or two deletes) of the same
 * triple cannot: every key ends with (without) the value whatever the
 * interleaving.  So inserts must exclude deletes of the same triple, and
 * nothing else: the classic "room" (group mutual exclusion) problem, solved
 * here per stripe: triples hash into TROOM_STRIPES stripes (4096 x 4 bytes),
 * a stripe holds inserters or deleters, never both.
 *
 * Stripe word v: v > 0 inserters inside, v < 0 deleters inside, 0 free.
 *   enter(kind = +1 / -1): CAS v -> v + kind when v == 0 or v has kind's
 *     sign (acquire: pairs with the exit that freed it); otherwise sleep
 *     until the stripe changes (below) and retry.
 *   exit(kind): fetch_sub(v, kind) (seq_cst); when the stripe became 0 and
 *     waiters > 0, wake every sleeper of the stripe.
 *   sleep: fetch_add(waiters, 1) (seq_cst); re-read v (seq_cst); if it is
 *     still of the other kind, futex_wait(stripe, v); fetch_sub(waiters).
 *   No lost wake-up: the sleeper's waiters increment precedes its re-read;
 *   an exit that made the stripe 0 after that re-read comes later in the
 *   seq_cst order, so its load of waiters sees the sleeper and wakes it (or
 *   futex_wait finds the word changed and returns).
 * Deadlock freedom: a delete holds one stripe and waits for nothing while
 * inside (its batch never blocks on the rooms); insert_many enters many
 * stripes in any order and only ever waits for a deleter inside, which
 * leaves.  So every wait ends.  Fairness: none promised — a deleter waits
 * while inserters keep a stripe busy; with 4096 stripes two concurrent
 * insert_many batches of 1000 triples leave a given stripe free most of
 * the time.
 * The stripe is chosen by a mix of words of s, p and o (not secret: a
 * crafted collision costs only waiting, never correctness).
 */
#include "triple/rooms.h"

#include "triple/futex.h"

void trooms_init(trooms_t *r)
{
	for (unsigned i = 0; i < TROOM_STRIPES; i++)
		atomic_init(&r->stripe[i], 0);
	atomic_init(&r->waiters, 0);
}

unsigned troom_of(const cid_t *s, const cid_t *p, const cid_t *o)
{
	uint64_t h = s->w[3] ^ (p->w[2] * 0x9e3779b97f4a7c15ull) ^ (o->w[1] * 0xc2b2ae3d27d4eb4full);
	h ^= s->w[0] + o->w[3];
	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 29;
	return (unsigned)(h & (TROOM_STRIPES - 1));
}

void troom_enter(trooms_t *r, unsigned i, int kind)
{
	_Atomic int32_t *w = &r->stripe[i];
	int32_t v = atomic_load_explicit(w, memory_order_relaxed);
	for (;;) {
		if (v == 0 || (v > 0) == (kind > 0)) {
			if (atomic_compare_exchange_weak_explicit(w, &v, v + kind,
								  memory_order_acquire,
								  memory_order_relaxed))
				return;
			continue; /* v reloaded */
		}
		atomic_fetch_add_explicit(&r->waiters, 1, memory_order_seq_cst);
		v = atomic_load_explicit(w, memory_order_seq_cst);
		if (v != 0 && (v > 0) != (kind > 0))
			tri_futex_wait(w, (uint32_t)v);
		atomic_fetch_sub_explicit(&r->waiters, 1, memory_order_relaxed);
		v = atomic_load_explicit(w, memory_order_relaxed);
	}
}

void troom_exit(trooms_t *r, unsigned i, int kind)
{
	_Atomic int32_t *w = &r->stripe[i];
	int32_t v = atomic_fetch_sub_explicit(w, kind, memory_order_seq_cst) - kind;
	if (v == 0 && atomic_load_explicit(&r->waiters, memory_order_seq_cst))
		tri_futex_wake_all(w);
}
