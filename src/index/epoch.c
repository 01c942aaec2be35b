/*
 * epoch.c — per-thread ck_epoch records without a registration call.
 *
 * Invariants:
 *  - A thread holds at most one record per domain; it is found through the
 *    thread-local table `tls` (owner thread only) by (domain pointer, id):
 *    the id makes a stale entry for a closed domain whose memory was reused
 *    harmless.
 *  - `live` (global, under live_lock) lists the ids of open domains.  The
 *    thread-exit destructor touches a domain only while its id is listed,
 *    and ep_domain_fini removes the id under the same lock before freeing,
 *    so a destructor never touches freed memory.
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

#include <linux/membarrier.h>
#include <stdbool.h>
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

struct tls_ent {
	ep_domain_t *dom;
	uint64_t id;
	ep_rec_t *rec;
};

struct tls_table {
	unsigned n, cap;
	struct tls_ent *ent;
};

static _Thread_local struct tls_table *tls __attribute__((tls_model("initial-exec")));
static _Thread_local ep_rec_t *dispatching __attribute__((tls_model("initial-exec")));
_Thread_local struct ep_last ep_last __attribute__((tls_model("initial-exec")));

ep_rec_t *ep_dispatching(void)
{
	return dispatching;
}

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t tls_key;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *live_ids; /* Synchronization: live_lock */
static size_t nlive, caplive;
static _Atomic uint64_t next_id = 1;

static bool live_has(uint64_t id)
{
	for (size_t i = 0; i < nlive; i++)
		if (live_ids[i] == id)
			return true;
	return false;
}

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

static void thread_exit(void *arg)
{
	struct tls_table *t = arg;
	pthread_mutex_lock(&live_lock);
	for (unsigned i = 0; i < t->n; i++)
		if (live_has(t->ent[i].id))
			rec_release(t->ent[i].rec);
	pthread_mutex_unlock(&live_lock);
	free(t->ent);
	free(t);
	tls = NULL;
	ep_last = (struct ep_last){NULL, 0, NULL};
}

static void key_init(void)
{
	pthread_key_create(&tls_key, thread_exit);
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
	d->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
	pthread_once(&key_once, key_init);
	pthread_mutex_lock(&live_lock);
	if (nlive == caplive) {
		size_t nc = caplive ? caplive * 2 : 16;
		uint64_t *p = realloc(live_ids, nc * sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&live_lock);
			return -1;
		}
		live_ids = p;
		caplive = nc;
	}
	live_ids[nlive++] = d->id;
	pthread_mutex_unlock(&live_lock);
	return 0;
}

void ep_domain_fini(ep_domain_t *d)
{
	pthread_mutex_lock(&live_lock);
	for (size_t i = 0; i < nlive; i++)
		if (live_ids[i] == d->id) {
			live_ids[i] = live_ids[--nlive];
			break;
		}
	pthread_mutex_unlock(&live_lock);
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
	/* Drop this thread's cached entry so a new domain at the same address
	 * is not confused with it (the id check would catch it anyway). */
	if (tls)
		for (unsigned i = 0; i < tls->n; i++)
			if (tls->ent[i].dom == d) {
				tls->ent[i] = tls->ent[--tls->n];
				break;
			}
	pthread_mutex_destroy(&d->recs_lock);
}

static ep_rec_t *rec_register(ep_domain_t *d)
{
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
	struct tls_table *t = tls;
	if (t) {
		for (unsigned i = 0; i < t->n; i++)
			if (t->ent[i].dom == d && t->ent[i].id == d->id) {
				ep_last = (struct ep_last){d, d->id, t->ent[i].rec};
				return t->ent[i].rec;
			}
	} else {
		t = calloc(1, sizeof(*t));
		if (!t)
			return NULL;
		tls = t;
		pthread_setspecific(tls_key, t);
	}
	/* Drop entries of domains that were closed (their id is gone). */
	pthread_mutex_lock(&live_lock);
	for (unsigned i = 0; i < t->n;)
		if (!live_has(t->ent[i].id))
			t->ent[i] = t->ent[--t->n];
		else
			i++;
	pthread_mutex_unlock(&live_lock);
	if (t->n == t->cap) {
		unsigned nc = t->cap ? t->cap * 2 : 4;
		struct tls_ent *e = realloc(t->ent, nc * sizeof(*e));
		if (!e)
			return NULL;
		t->ent = e;
		t->cap = nc;
	}
	ep_rec_t *r = rec_register(d);
	if (!r)
		return NULL;
	t->ent[t->n++] = (struct tls_ent){d, d->id, r};
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
