/*
 * options.c — the store's options: defaults and checks, and the snapshot of
 * the options in effect that cidstore_retune replaces while every other
 * call keeps running (DESIGN §11, the copy.replace pattern).
 *
 * THE SNAPSHOT
 *   s->snap points at an immutable struct opts_snap.  A retune builds a new
 *   one (a full copy with the changed fields), publishes it with one store
 *   of s->snap, waits for a grace period and frees the old one.  An
 *   operation that reads retunable options reads s->snap ONCE inside a
 *   reader section and uses that one copy, so it runs under the old or the
 *   new options, never a mix.  Fields marked "retune: no" never differ
 *   between snapshots, so code may also read them from s->opts (the
 *   options at open).
 *
 * READER SECTIONS (SRCU-style counters; no lock, no retry)
 *   Each store has STORE_STRIPES cache lines; a thread uses its own stripe
 *   (store_stripe(): round-robin at the thread's first use, so threads
 *   rarely share one) and each stripe counts open sections per phase:
 *   readers[0] and readers[1].
 *     enter:  p = opts_phase              (seq_cst load)
 *             readers[p] += 1             (seq_cst RMW)
 *             snap = s->snap              (seq_cst load)
 *     exit:   readers[p] -= 1             (release RMW)
 *   A retune (under retune_mu, so one at a time):
 *             old = exchange(s->snap, new)          (seq_cst)
 *             p0 = opts_phase
 *             wait until readers[!p0] was 0 once, on every stripe
 *             opts_phase = !p0                      (seq_cst)
 *             wait until readers[p0] was 0 once, on every stripe
 *             free(old)
 *   (the waits load each counter with acquire, spinning, then yielding).
 *
 * WHY FREEING old IS SAFE
 *   Take a reader R that loaded old.  In the single total order S of the
 *   seq_cst accesses, R's load of s->snap comes before the exchange (it
 *   returned the value the exchange replaced), and R's increment comes
 *   before its load (program order), so before the exchange.  R
 *   incremented readers[q] for the phase q it read, on its stripe.  The
 *   retune reads readers[!p0] and readers[p0] of every stripe only after
 *   the exchange, so each of those reads sees a value at or after R's
 *   increment in that counter's modification order; whichever q is, one
 *   of the two waits reads R's counter.  A count is the number of
 *   increments minus decrements before that point, and every decrement
 *   follows its own increment; so 0 there means R's decrement came before
 *   it.  R's decrement is a release and the counter's later RMWs continue
 *   its release sequence, so the retune's acquire load that reads 0
 *   synchronizes with it: everything R did with old happens before the
 *   free.
 *   Progress: a reader never waits.  The retune's waits end: after the
 *   exchange, readers[!p0] only gains increments from readers that read
 *   the phase before the previous retune's flip (a finite set; a new
 *   reader reads p0), and after the flip readers[p0] only gains
 *   increments from readers that read the phase before it.  So each
 *   counter drains, even when threads sharing a stripe keep entering.
 *
 * WHAT A SECTION COVERS
 *   A logged write (write.c) holds its section from before its index
 *   change to after its log append (not during its fdatasync).  So when a
 *   retune's grace period ends, every write that ran under the old options
 *   has its record in the log; an ASYNC -> SYNC retune then syncs the log
 *   once, and every write that returned before the retune returned is
 *   durable, while every write that starts later reads SYNC.
 *
 * Synchronization table:
 *   | role                      | runs with                                |
 *   |---------------------------|------------------------------------------|
 *   | reader section (writes,   | everything; never waits                  |
 *   |  get_options, maint, stats)|                                         |
 *   | retune                    | readers; other retunes wait (retune_mu)  |
 *   | store_stripes_init,       | nothing (open / close)                   |
 *   |  store_opts_init / _fini  |                                          |
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/check.h"

#define MAINT_BUDGET_DEFAULT 10 /* percent of one core */

/* ------------------------------------------------------------------ */
/* defaults and checks                                                 */
/* ------------------------------------------------------------------ */

CIDSTORE_API void cidstore_options_init(cidstore_options_t *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof(*o));
	o->dir = NULL;
	o->durability = CIDSTORE_DURABILITY_SYNC;
	o->serialized = false;
	o->seed = 0;
	o->ring_records = 1u << 16;
	o->sync_interval_ms = 10;
	o->checkpoint_wal_bytes = 256ull << 20;
	o->segment_bytes = 64ull << 20;
	o->recovery_threads = 0;
	o->initial_depth = 0;
	o->expected_keys = 0;
	o->read_only = false;
	o->create_if_missing = true;
	o->metrics = true;
	o->maint_interval_ms = 1000;
	o->maint_budget_pct = MAINT_BUDGET_DEFAULT;
}

int store_check_options(const cidstore_options_t *o)
{
	if (o->durability != CIDSTORE_DURABILITY_NONE &&
	    o->durability != CIDSTORE_DURABILITY_ASYNC &&
	    o->durability != CIDSTORE_DURABILITY_SYNC)
		return CIDSTORE_EINVAL;
	if (o->ring_records < 64 || (o->ring_records & (o->ring_records - 1)))
		return CIDSTORE_EINVAL;
	if (o->initial_depth > 20)
		return CIDSTORE_EINVAL;
	if (o->dir && o->segment_bytes < 4096)
		return CIDSTORE_EINVAL;
	if (o->read_only && !o->dir)
		return CIDSTORE_EINVAL; /* nothing to read */
	if (o->maint_budget_pct > 100)
		return CIDSTORE_EINVAL; /* 0: the default */

	return 0;
}

/* ------------------------------------------------------------------ */
/* stripes and reader sections                                         */
/* ------------------------------------------------------------------ */

static _Atomic unsigned next_stripe;
static _Thread_local unsigned my_stripe; /* stripe + 1; 0: not chosen yet */

unsigned store_stripe(void)
{
	unsigned i = my_stripe;
	if (__builtin_expect(i == 0, 0)) {
		/* relaxed: only spreads threads over stripes */
		i = atomic_fetch_add_explicit(&next_stripe, 1, memory_order_relaxed) %
			    STORE_STRIPES + 1;
		my_stripe = i;
	}
	return i - 1;
}

const cidstore_options_t *store_opts_enter(cidstore_t *s, struct opts_ref *ref)
{
	struct store_stripe *st = &s->stripes[store_stripe()];
	/* seq_cst, all three: the argument at the top needs the increment
	 * before the load of snap in the total order the retune's exchange
	 * and counter loads are part of. */
	unsigned p = atomic_load_explicit(&s->opts_phase, memory_order_seq_cst) & 1;
	ref->cnt = &st->readers[p];
	atomic_fetch_add_explicit(ref->cnt, 1, memory_order_seq_cst);
	const struct opts_snap *o = atomic_load_explicit(&s->snap, memory_order_seq_cst);
	return &o->o;
}

void store_opts_exit(struct opts_ref *ref)
{
	/* release: the section's reads of the snapshot happen before a
	 * retune's acquire load that sees the counter drained */
	uint64_t was = atomic_fetch_sub_explicit(ref->cnt, 1, memory_order_release);
	CS_ASSERT(was != 0); /* every exit follows its own enter */
}

/* Waits until readers[p] of every stripe has been 0 once. */
static void drain(cidstore_t *s, unsigned p)
{
	for (unsigned i = 0; i < STORE_STRIPES; i++) {
		unsigned spins = 0;
		/* acquire: pairs with store_opts_exit's release (through the
		 * counter's release sequence) */
		while (atomic_load_explicit(&s->stripes[i].readers[p], memory_order_acquire) != 0) {
			if (++spins > 100)
				sched_yield();
		}
	}
}

/* A grace period: every section that may have read the snapshot replaced
 * before the call has ended (see WHY FREEING old IS SAFE).  retune_mu. */
static void grace_period(cidstore_t *s)
{
	unsigned p0 = atomic_load_explicit(&s->opts_phase, memory_order_seq_cst) & 1;
	drain(s, !p0);
	atomic_store_explicit(&s->opts_phase, !p0, memory_order_seq_cst);
	drain(s, p0);
}

int store_stripes_init(cidstore_t *s)
{
	s->stripes = aligned_alloc(64, STORE_STRIPES * sizeof(struct store_stripe));
	if (!s->stripes)
		return CIDSTORE_ENOMEM;
	for (unsigned i = 0; i < STORE_STRIPES; i++) {
		atomic_init(&s->stripes[i].readers[0], 0);
		atomic_init(&s->stripes[i].readers[1], 0);
		atomic_init(&s->stripes[i].removals, 0);
	}
	return 0;
}

int store_opts_init(cidstore_t *s)
{
	struct opts_snap *o = malloc(sizeof(*o));
	if (!o)
		return CIDSTORE_ENOMEM;
	o->o = s->opts;
	o->o.dir = s->dir_path;
	if (!o->o.maint_budget_pct)
		o->o.maint_budget_pct = MAINT_BUDGET_DEFAULT;
	atomic_init(&s->opts_phase, 0);
	atomic_init(&s->snap, o);
	return 0;
}

void store_opts_fini(cidstore_t *s)
{
	free((void *)atomic_load_explicit(&s->snap, memory_order_relaxed));
	atomic_store_explicit(&s->snap, NULL, memory_order_relaxed);
	free(s->stripes);
	s->stripes = NULL;
}

/* ------------------------------------------------------------------ */
/* the public calls                                                    */
/* ------------------------------------------------------------------ */

CIDSTORE_API int cidstore_get_options(cidstore_t *s, cidstore_options_t *out)
{
	if (!s || !out)
		return CIDSTORE_EINVAL;
	struct opts_ref ref;
	*out = *store_opts_enter(s, &ref);
	store_opts_exit(&ref);
	return 0;
}

static bool same_dir(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* 0 when n differs from c only in fields that may change on this store. */
static int retune_allowed(const cidstore_t *s, const cidstore_options_t *c,
			  const cidstore_options_t *n)
{
	if (!same_dir(c->dir, n->dir) || c->serialized != n->serialized || c->seed != n->seed ||
	    c->ring_records != n->ring_records || c->segment_bytes != n->segment_bytes ||
	    c->recovery_threads != n->recovery_threads || c->initial_depth != n->initial_depth ||
	    c->expected_keys != n->expected_keys || c->read_only != n->read_only ||
	    c->create_if_missing != n->create_if_missing || c->metrics != n->metrics)
		return CIDSTORE_EINVAL;
	if (n->durability != c->durability) {
		/* only between ASYNC and SYNC: the log exists and stays */
		if (!s->wal || n->durability == CIDSTORE_DURABILITY_NONE)
			return CIDSTORE_EINVAL;
	}
	return 0;
}

CIDSTORE_API int cidstore_retune(cidstore_t *s, const cidstore_options_t *o)
{
	if (!s || !o)
		return CIDSTORE_EINVAL;
	if (s->read_only)
		return CIDSTORE_ERDONLY;
	int rc = store_check_options(o);
	if (rc)
		return rc;
	pthread_mutex_lock(&s->retune_mu);
	/* relaxed: only retunes store snap, and they hold retune_mu */
	const struct opts_snap *old = atomic_load_explicit(&s->snap, memory_order_relaxed);
	rc = retune_allowed(s, &old->o, o);
	struct opts_snap *n = NULL;
	if (!rc && !(n = malloc(sizeof(*n))))
		rc = CIDSTORE_ENOMEM;
	if (rc) {
		pthread_mutex_unlock(&s->retune_mu);
		return rc;
	}
	n->o = *o;
	n->o.dir = s->dir_path;
	if (!n->o.maint_budget_pct)
		n->o.maint_budget_pct = MAINT_BUDGET_DEFAULT;
	bool to_sync = old->o.durability == CIDSTORE_DURABILITY_ASYNC &&
		       n->o.durability == CIDSTORE_DURABILITY_SYNC;
	bool new_interval = old->o.sync_interval_ms != n->o.sync_interval_ms;
	/* the linearization point of the retune: from here on every section
	 * reads n */
	atomic_exchange_explicit(&s->snap, n, memory_order_seq_cst);
	grace_period(s);
	/* debug_checks builds poison it: a reader that still used it would
	 * see garbage options (test_retune's readers report any mix) */
	cs_poison((void *)old, sizeof(*old));
	free((void *)old);
	if (s->wal && new_interval)
		wal_set_sync_interval(s->wal, n->o.sync_interval_ms);
	store_maint_kick(s);
	/* Every write that ran under ASYNC has appended its record (its
	 * section ended); one sync covers them all. */
	if (to_sync)
		rc = store_wait_durable(s, wal_next_lsn(s->wal) - 1);
	pthread_mutex_unlock(&s->retune_mu);
	return rc;
}
