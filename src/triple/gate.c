/*
 * gate.c — the writer gate of the triple layer (a distributed shared lock).
 *
 * Who holds it: every cidstore_triple_insert / _insert_many / _delete holds
 * it shared for the duration of its index change (store_write_batch_ex:
 * memory and log records, never the SYNC wait for the disk); a stale-entry
 * cleaning pass (triple.c) holds it exclusively while it rechecks its
 * candidates and removes single-term entries.  Readers (match, count,
 * terms) never touch it.
 *
 * Layout: 64 counters, one cache line each, so writers on different cores
 * do not bounce one line; a thread uses slot (its id % 64), the id taken
 * once per thread from a global counter.  `closed` and `drained` share a
 * line of their own, read-mostly.
 *
 * Algorithm (Dekker-style, every access below is seq_cst):
 *   enter:  fetch_add(slot, 1); if load(closed) == 0: inside.  Else undo
 *           (leave, as below), sleep on closed while it is 1, retry.
 *   leave:  fetch_sub(slot, 1); if load(closed): fetch_add(drained, 1) and
 *           wake the closer.
 *   close:  store(closed, 1); loop { d = load(drained); if every slot is 0:
 *           done; sleep on drained while it equals d }.
 *   open:   store(closed, 0); wake every sleeping writer.
 * Invariant (mutual exclusion): once close returned, no writer is inside
 * until open.  Proof: in the single total order of seq_cst operations, a
 * writer's fetch_add precedes its load of closed.  If it read 0, that load
 * precedes the closer's store of 1, so the closer's later slot loads see
 * the increment and close waits for the matching fetch_sub.  If it read 1,
 * it undoes and does not enter.
 * No lost wake-up for the closer: a leaver that read closed == 1 bumps
 * drained after its fetch_sub; the closer read drained before it read the
 * slots, so either its slot read saw the fetch_sub or drained differs from
 * d and futex_wait returns at once (or is woken).  A leaver that read
 * closed == 0 made its fetch_sub visible before the closer's slot loads.
 * For writers: futex_wait(closed, 1) returns at once when open already
 * stored 0, and open wakes everyone after its store.
 * Progress: writers never wait for each other (blocking only while a
 * cleaning pass runs); the closer waits for the writers inside, each of
 * which finishes its bounded batch (they never wait for the closer while
 * inside).  A writer must not re-enter while inside (no nesting).
 */
#include "triple/gate.h"

#include <stdbool.h>

#include "triple/futex.h"

static _Atomic unsigned next_thread_id;
static _Thread_local unsigned thread_slot = ~0u;

static unsigned my_slot(void)
{
	if (thread_slot == ~0u)
		thread_slot = atomic_fetch_add_explicit(&next_thread_id, 1, memory_order_relaxed) %
			      TGATE_SLOTS;
	return thread_slot;
}

void tgate_init(tgate_t *g)
{
	for (unsigned i = 0; i < TGATE_SLOTS; i++)
		atomic_init(&g->slot[i].n, 0);
	atomic_init(&g->closed, 0);
	atomic_init(&g->drained, 0);
}

void tgate_exit(tgate_t *g, unsigned slot)
{
	atomic_fetch_sub_explicit(&g->slot[slot].n, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&g->closed, memory_order_seq_cst)) {
		atomic_fetch_add_explicit(&g->drained, 1, memory_order_seq_cst);
		tri_futex_wake_all(&g->drained);
	}
}

unsigned tgate_enter(tgate_t *g)
{
	unsigned slot = my_slot();
	for (;;) {
		atomic_fetch_add_explicit(&g->slot[slot].n, 1, memory_order_seq_cst);
		if (!atomic_load_explicit(&g->closed, memory_order_seq_cst))
			return slot;
		tgate_exit(g, slot);
		while (atomic_load_explicit(&g->closed, memory_order_seq_cst))
			tri_futex_wait(&g->closed, 1);
	}
}

static bool drained_now(tgate_t *g)
{
	for (unsigned i = 0; i < TGATE_SLOTS; i++)
		if (atomic_load_explicit(&g->slot[i].n, memory_order_seq_cst) != 0)
			return false;
	return true;
}

void tgate_close(tgate_t *g)
{
	atomic_store_explicit(&g->closed, 1, memory_order_seq_cst);
	for (;;) {
		uint32_t d = atomic_load_explicit(&g->drained, memory_order_seq_cst);
		if (drained_now(g))
			return;
		tri_futex_wait(&g->drained, d);
	}
}

void tgate_open(tgate_t *g)
{
	atomic_store_explicit(&g->closed, 0, memory_order_seq_cst);
	tri_futex_wake_all(&g->closed);
}
