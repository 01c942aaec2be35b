/*
 * epoch.c — per-thread ck_epoch records without a registration call.
 *
 * Invariants:
 *  - A thread holds at most one record per domain, found through the
 *    thread-local table of ep_map (util/tls_map.c, T1-T4) by (domain
 *    pointer, id): the id makes a stale entry for a closed domain whose
 *    memory was reused harmless.  The thread-exit destructor hands a record
 *    back only while its domain's id is listed live, and ep_domain_fini
 *    unlists the id (tm_close) before freeing, so a destructor never
 *    touches freed memory (T2).
 *  - A record leaves its thread only through ck_epoch_unregister after a
 *    ck_epoch_barrier has freed everything it retired; the next thread
 *    takes it with ck_epoch_recycle.  So garbage retired by a thread that
 *    exits is freed at its exit, and garbage never waits on a thread that
 *    left the library: a record outside a section does not hold back the
 *    global epoch (ck_epoch only waits for *active* records).
 *  - Every thread polls after EP_POLL_EVERY retirements, so what one idle thread keeps
 *    pending is bounded by what it retired since its last poll.
 */
#include "index/epoch.h"
#include "util/tls_map.h"

#include <linux/membarrier.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int ep_asym_fence; /* written once in key_init, before any domain exists */

/* The reclaimer's half of the asymmetric fence (epoch.h). */
static inline void asym_fence(void)
{
	if (ep_asym_fence)
		syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
}

static _Thread_local ep_rec_t *dispatching __attribute__((tls_model("initial-exec")));
_Thread_local struct ep_last ep_last __attribute__((tls_model("initial-exec")));

ep_rec_t *ep_dispatching(void)
{
	return dispatching;
}

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static void thread_exit(void *dom, void *rec);
static struct tls_map ep_map = TLS_MAP_INIT(thread_exit);

/* Hands r back to its domain: free what it retired, then unregister. */
static void rec_release(ep_rec_t *r)
{
	/* A grace period, then free everything this record retired (the free
	 * callbacks carry the TSan acquire). */
	asym_fence();
	ck_epoch_synchronize(&r->ck);
	dispatching = r;
	ck_epoch_reclaim(&r->ck);
	dispatching = NULL;
	r->depth = 0;
	r->retired_since_poll = 0;
	/* The next owner (ck_epoch_recycle, inside libck) acquires this. */
	cidstore_tsan_release(r);
	ck_epoch_unregister(&r->ck);
}

/* ep_map's on_exit: runs under its lock with d still open (T2). */
static void thread_exit(void *dom, void *rec)
{
	(void)dom;
	rec_release(rec);
	ep_last = (struct ep_last){NULL, 0, NULL};
}

static void key_init(void)
{
	/* CIDSTORE_EPOCH_FENCE=1 forces the fenced reader entry (comparison). */
	const char *e = getenv("CIDSTORE_EPOCH_FENCE");
	if (!(e && *e == '1') &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
		ep_asym_fence = 1;
}

int ep_domain_init(ep_domain_t *d)
{
	memset(d, 0, sizeof(*d));
	ck_epoch_init(&d->ck);
	pthread_mutex_init(&d->recs_lock, NULL);
	pthread_once(&key_once, key_init);
	if (tm_open(&ep_map, &d->id) != 0) {
		pthread_mutex_destroy(&d->recs_lock);
		return -1;
	}
	return 0;
}

void ep_domain_fini(ep_domain_t *d)
{
	/* No exiting thread touches d from here on (T2); this thread's entry
	 * is dropped, so a new domain at the same address is not confused with
	 * it (the id check would catch it anyway, T1). */
	tm_close(&ep_map, d, d->id);
	/* No thread is inside a section now: dispatch everything pending. */
	cidstore_tsan_acquire(&d->tsan_sync);
	for (ep_rec_t *r = d->all_recs; r; r = r->next_all)
		ck_epoch_reclaim(&r->ck);
	ep_rec_t *r = d->all_recs;
	while (r) {
		ep_rec_t *n = r->next_all;
		free(r);
		r = n;
	}
	d->all_recs = NULL;
	pthread_mutex_destroy(&d->recs_lock);
}

static void *rec_register(void *dom)
{
	ep_domain_t *d = dom;
	ep_rec_t *r = (ep_rec_t *)ck_epoch_recycle(&d->ck, NULL);
	if (r) {
		cidstore_tsan_acquire(r); /* pairs with rec_release's release */
		r->depth = 0;
		r->retired_since_poll = 0;
		r->poll_boost = 0;
		return r;
	}
	r = aligned_alloc(64, (sizeof(*r) + 63) & ~(size_t)63);
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->dom = d;
	ck_epoch_register(&d->ck, &r->ck, NULL);
	pthread_mutex_lock(&d->recs_lock);
	r->next_all = d->all_recs;
	d->all_recs = r;
	pthread_mutex_unlock(&d->recs_lock);
	atomic_fetch_add_explicit(&d->nrecs, 1, memory_order_relaxed);
	return r;
}

ep_rec_t *ep_record_slow(ep_domain_t *d)
{
	ep_rec_t *r = tm_get(&ep_map, d, d->id, rec_register);
	if (r)
		ep_last = (struct ep_last){d, d->id, r};
	return r;
}

void ep_poll(ep_rec_t *r)
{
	r->retired_since_poll = 0;
	/* Readers' section exits (released in ep_exit) happen before the
	 * frees that ck_epoch_poll performs below. */
	cidstore_tsan_acquire(&r->dom->tsan_sync);
	asym_fence();
	dispatching = r;
	ck_epoch_poll(&r->ck);
	dispatching = NULL;
}

void ep_retire(ep_rec_t *r, ck_epoch_entry_t *e, ck_epoch_cb_t *fn)
{
	atomic_fetch_add_explicit(&r->dom->pending, 1, memory_order_relaxed);
	ck_epoch_call(&r->ck, e, fn);
	if (++r->retired_since_poll >= EP_POLL_EVERY && r->depth == 0)
		ep_poll(r);
}

void ep_retire_big(ep_rec_t *r, ck_epoch_entry_t *e, ck_epoch_cb_t *fn)
{
	r->poll_boost = EP_POLL_BOOST;
	ep_retire(r, e, fn);
}

void ep_synchronize(ep_rec_t *r)
{
	asym_fence();
	ck_epoch_synchronize(&r->ck);
	dispatching = r;
	ck_epoch_reclaim(&r->ck); /* everything retired before is now safe */
	dispatching = NULL;
	/* Everything those sections did happens before what the caller does
	 * next (pairs with the release in ep_exit). */
	cidstore_tsan_acquire(&r->dom->tsan_sync);
}
