/*
 * epoch.h — safe memory reclamation for the index, over ck_epoch.  Internal.
 *
 * One ep_domain per index.  A thread gets its ck_epoch record the first time
 * it enters a section of a domain (no registration call); the record is kept
 * in a thread-local table and handed back to the domain (after a barrier
 * that frees everything it retired) when the thread exits.  Records are
 * recycled, so the number of records is bounded by the peak number of
 * threads alive at once, not by how many threads ever ran.  The table, the
 * registry of open domains and the exit hook: util/tls_map.h.
 *
 * Synchronization table:
 *   | role                     | may run with                              |
 *   |--------------------------|-------------------------------------------|
 *   | ep_enter/ep_exit (reader)| everything                                |
 *   | ep_retire (owner thread) | everything; frees only in its own poll    |
 *   | thread-exit destructor   | everything (ep_domain_fini waits for it:  |
 *   |                          | util/tls_map.c T2)                        |
 *   | ep_domain_fini           | nothing on the same domain but thread exit|
 *
 * ThreadSanitizer: the happens-before edge "reader leaves its section ->
 * reclaimer frees" is created inside libck.so (uninstrumented), so it is
 * annotated: every ep_exit releases the domain's sync address, every poll
 * acquires it before objects are freed; record hand-over through
 * ck_epoch_unregister/ck_epoch_recycle is annotated on the record.
 */
#ifndef CIDSTORE_INDEX_EPOCH_H
#define CIDSTORE_INDEX_EPOCH_H

#include <ck_epoch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "util/tsan.h"

typedef struct ep_rec ep_rec_t;

/* A thread polls its record (frees what is two epochs old) after this many
 * retirements.  A poll costs a membarrier() (an IPI to every CPU running
 * one of our threads: tens of microseconds in a VM, and it interrupts
 * them: 13% of a 16-value insert workload at 64), so not after every few
 * value-set rebuilds; entries retire in batches of 250 that weigh 4, large
 * objects through ep_retire_big, so what waits stays small. */
#define EP_POLL_EVERY 256

typedef struct ep_domain {
	ck_epoch_t ck;
	uint64_t id;                 /* unique for the process lifetime; immutable */
	pthread_mutex_t recs_lock;   /* protects all_recs (register / fini only) */
	ep_rec_t *all_recs;          /* Synchronization: recs_lock */
	_Atomic uint64_t nrecs;      /* Synchronization: atomic (stats) */
	_Atomic int64_t pending;     /* retired, not yet freed.  atomic (stats) */
	char tsan_sync;              /* address used by the TSan annotations only */
} ep_domain_t;

struct ep_rec {
	ck_epoch_record_t ck;        /* first: CK_CC_CACHELINE aligned */
	ep_rec_t *next_all;          /* Synchronization: domain recs_lock */
	ep_domain_t *dom;            /* immutable */
	unsigned retired_since_poll; /* owner thread only */
	unsigned depth;              /* owner thread only: section nesting */
	unsigned poll_boost;         /* owner thread only: poll at this many more exits */
	/* Owned by the index's entry allocator; owner thread only (handed on
	 * with the record when a thread exits and another recycles it). */
	uint64_t ent_mask;           /* free entries taken from one bitmap word ... */
	uint32_t ent_base;           /* ... bit 0 of ent_mask is this entry index */
	uint32_t ent_chunk;          /* chunk it allocates from + 1 (0: none); C_OWNED */
	uint32_t ent_scan;           /* next bitmap word of that chunk to take */
	void *ent_retired;           /* entries retired, not yet handed to the epoch */
};

int ep_domain_init(ep_domain_t *d);
/* Frees every pending object and every record.  No other thread may use d. */
void ep_domain_fini(ep_domain_t *d);

/* The calling thread's record for d (registering it on first use), or NULL
 * when out of memory.  Never waits except on d->recs_lock at first use.
 * The domain used last is cached (initial-exec TLS: a %fs-relative load,
 * no __tls_get_addr call on every operation); the id tells a closed domain
 * whose memory was reused from the one cached. */
struct ep_last {
	ep_domain_t *dom;
	uint64_t id;
	ep_rec_t *rec;
};
extern _Thread_local struct ep_last ep_last __attribute__((tls_model("initial-exec")));
ep_rec_t *ep_record_slow(ep_domain_t *d);

static inline ep_rec_t *ep_record(ep_domain_t *d)
{
	if (__builtin_expect(ep_last.dom == d && ep_last.id == d->id, 1))
		return ep_last.rec;
	return ep_record_slow(d);
}

/*
 * Asymmetric fence.  ck_epoch_begin needs store-load ordering (its "active"
 * store must be visible before the section's loads): on x86 an xchg, which
 * also stops the core from overlapping one lookup's cache misses with the
 * next one's.  Where the kernel offers membarrier(PRIVATE_EXPEDITED), the
 * reader side does the same two stores with a compiler barrier only, and
 * every reclaimer (ep_poll, ep_synchronize, a thread's exit) first calls
 * membarrier(), which runs a full barrier on every CPU running one of our
 * threads — liburcu's urcu-memb scheme.  Either a reader's "active" store
 * was globally visible before that barrier, and the reclaimer sees it, or
 * the reader's later loads come after the barrier, which follows every
 * unlink the reclaimer's objects went through, so they cannot reach them.
 * ep_asym_fence is set once, before any domain exists; TSan builds always
 * take ck_epoch_begin (TSan models neither membarrier nor fences).
 */
extern int ep_asym_fence;

static inline void ep_enter(ep_rec_t *r)
{
	if (r->depth++ == 0) {
#if !defined(CIDSTORE_TSAN)
		if (__builtin_expect(ep_asym_fence, 1)) {
			ck_epoch_record_t *c = &r->ck;
			ck_pr_store_uint(&c->active, 1);
			ck_pr_barrier(); /* compiler barrier: the CPU barrier is the reclaimer's membarrier() */
			ck_pr_store_uint(&c->epoch, ck_pr_load_uint(&c->global->epoch));
			return;
		}
#endif
		ck_epoch_begin(&r->ck, NULL);
	}
}

void ep_poll(ep_rec_t *r);

/* The record whose retired objects are being freed right now by this
 * thread (inside ep_poll, ep_synchronize or a thread's exit), or NULL
 * (ep_domain_fini).  Free callbacks use it to recycle memory per thread. */
ep_rec_t *ep_dispatching(void);

static inline void ep_exit(ep_rec_t *r)
{
	if (--r->depth == 0) {
		/* Everything this thread read inside the section happens before
		 * any free that the reclaimer does after seeing it leave. */
		cidstore_tsan_release(&r->dom->tsan_sync);
		ck_epoch_end(&r->ck, NULL);
		if (r->retired_since_poll >= EP_POLL_EVERY || r->poll_boost) {
			if (r->poll_boost)
				r->poll_boost--;
			ep_poll(r);
		}
	}
}

/* Defers fn(e) until every thread that might hold a reference has left its
 * section.  Call from inside or outside a section. */
/* ep_retire_big: the same for a large object (a whole table): the thread
 * polls at its next EP_POLL_BOOST section exits, so the memory goes back
 * within a few operations instead of after EP_POLL_EVERY more retirements. */
#define EP_POLL_BOOST 16
void ep_retire_big(ep_rec_t *r, ck_epoch_entry_t *e, ck_epoch_cb_t *fn);
void ep_retire(ep_rec_t *r, ck_epoch_entry_t *e, ck_epoch_cb_t *fn);

/* Waits until every thread that was inside a section of the domain when
 * this was called has left it (a grace period).  r must be outside a
 * section.  Waits for: other threads' sections. */
void ep_synchronize(ep_rec_t *r);

/* Called by every free callback after freeing one object. */
static inline void ep_freed(ep_domain_t *d)
{
	atomic_fetch_sub_explicit(&d->pending, 1, memory_order_relaxed);
}

#endif
