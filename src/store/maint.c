/*
 * maint.c — maintenance: the pass (cidstore_maintain) and the store's one
 * background thread.
 *
 * A PASS (one at a time: pass_mu), concurrent with every reader and writer:
 *   1. idx_maintain: the index moves live entries out of sparse entry
 *      chunks and gives the chunks back, replaces a table that deletes left
 *      sparse by a smaller one, compacts value sets (index.c states how
 *      readers and writers stay exact meanwhile).  Bounded by a budget (ns)
 *      in the background; unbounded for cidstore_maintain.
 *   2. the layer above's cleaning (ext->maintain: the triple layer's stale
 *      entries), when one is registered;
 *   3. when 1 or 2 freed something: an epoch grace period (idx_quiesce:
 *      what this thread retired is freed), then the allocator gives free
 *      memory back to the OS — jemalloc: mallctl("arena.<ALL>.purge"); the
 *      system allocator: malloc_trim(0);
 *   4. cidstore_maintain only: the automatic checkpoint's test (the thread
 *      tests it on its own schedule, below).
 *   A pass is COMPLETE when idx_maintain returned before its budget was
 *   used up (its wall time below the budget: whichever clock the index
 *   measures, it cannot have run out); a cut pass resumes at the next one.
 *
 * WHEN THE THREAD RUNS A PASS
 *   Only deletes leave memory to give back, so writers count the values
 *   they remove on their own stripe (store_count_removals: a relaxed add
 *   on a cache line the thread rarely shares).  A pass is due when the sum
 *   differs from the sum taken when the last complete pass began, and no
 *   sooner than maint_interval_ms after the previous pass began.  An idle
 *   or insert-only store costs no passes.
 *
 * CPU BUDGET (maint_budget_pct = b, interval = T)
 *   A background pass gets idx_maintain budget T * b / 100 and measures its
 *   own CPU time c (CLOCK_THREAD_CPUTIME_ID, the whole pass: steps 1-3).
 *   The next pass begins no sooner than max(T, c * 100 / b) after this one
 *   began, so over every pass-and-sleep cycle c / wall <= b / 100 of one
 *   core.  Checkpoints are not maintenance: they run when the log demands
 *   them, whatever the budget.
 *
 * THE AUTOMATIC CHECKPOINT (store_checkpoint_if_due, durable.c)
 *   Due when the live log L (wal bytes since the last checkpoint began)
 *   reaches max(checkpoint_wal_bytes, r * C), where C is the size of the
 *   newest checkpoint file (ckpt_file_bytes: the last one written, or the
 *   one recovery loaded at open) and r = CKPT_LOG_RATIO_PCT / 100 = 1.
 *   Tested every 100 ms by the thread, and by cidstore_maintain.
 *   Why r * C: a fixed threshold T writes the whole store every T bytes of
 *   log, so a load of n bytes of log writes ~n/T checkpoints of size up to
 *   ~n: O(n^2) (measured at 10M triples with T = 256 MiB: 12-16
 *   checkpoints, 3.1 of 3.9 kB written per triple; bench/triples/README.md).
 *   With the rule:
 *   - checkpoints 1..m of sizes C_1..C_m: checkpoint k + 1 is taken only
 *     after L_{k+1} >= C_k bytes of log since checkpoint k began, so
 *     C_1 + ... + C_{m-1} <= L_2 + ... + L_m <= the log written, and all
 *     checkpoints together write at most the log plus the newest
 *     checkpoint: linear in the data written.  E.g. a load whose
 *     checkpoint holds g bytes per byte of log so far (triples: g ~ 0.42,
 *     331 B of checkpoint against 792 B of log per triple) takes them at
 *     log positions growing by a factor 1 + g: O(log n) checkpoints,
 *     about (1 + g) x the final log written by them in all;
 *   - recovery loads one checkpoint and replays at most max(T, C) of log
 *     (plus what was written while that checkpoint ran), records that are
 *     no costlier per byte than checkpoint entries: recovery time stays
 *     within ~2x of loading the checkpoint alone, or of replaying T;
 *   - a small store (C < T) checkpoints every T bytes, as before.
 *   Manual checkpoints (cidstore_checkpoint) ignore the rule; they reset
 *   L and C like any checkpoint.
 *
 * THE THREAD (one per store, in-memory stores too; not for read_only)
 *   Sleeps on maint_cv (CLOCK_MONOTONIC) until the earliest of: the next
 *   checkpoint test (every 100 ms while the store has a log and
 *   checkpoint_wal_bytes > 0), the next pass (maint_interval_ms > 0), a
 *   kick (a retune: the options are read again), close.  Without either
 *   it sleeps until a kick or close.  It reads the options snapshot once
 *   per wake-up.
 *
 * Synchronization table:
 *   | role                  | runs with                                   |
 *   |-----------------------|---------------------------------------------|
 *   | pass (thread or       | readers, writers, checkpoints, retunes;     |
 *   |  cidstore_maintain)   | other passes wait (pass_mu)                 |
 *   | store_count_removals  | everything (relaxed add, own stripe)        |
 *   | stats                 | everything (relaxed loads of mc)            |
 *   | start / stop          | nothing (open / close)                      |
 */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifdef CIDSTORE_USE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "store/store_internal.h"

#define CKPT_POLL_NS 100000000ull /* the automatic checkpoint's test: 100 ms */

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Values removed by writes since open (a sum of relaxed loads: exact when
 * no writer runs, a lower bound of some recent moment otherwise). */
static uint64_t removals_now(cidstore_t *s)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < STORE_STRIPES; i++)
		n += atomic_load_explicit(&s->stripes[i].removals, memory_order_relaxed);
	return n;
}

/* Asks the allocator to give free memory back to the OS. */
static void give_back_memory(void)
{
#ifdef CIDSTORE_USE_JEMALLOC
	char name[48];
	snprintf(name, sizeof(name), "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
	mallctl(name, NULL, NULL, NULL, 0);
#else
	malloc_trim(0);
#endif
}

static void count(_Atomic uint64_t *c, uint64_t n)
{
	/* relaxed: statistics; only the pass holding pass_mu writes */
	if (n)
		atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* One pass (steps 1-3).  budget_ns 0: unbounded.  only_if_due: skip it
 * (*ran = false) unless values were removed since the last complete pass.
 * *cpu_ns gets the pass's thread CPU time.  Returns 0 or an error. */
static int pass(cidstore_t *s, uint64_t budget_ns, bool only_if_due, bool *ran,
		uint64_t *cpu_ns)
{
	pthread_mutex_lock(&s->pass_mu);
	uint64_t removals = removals_now(s);
	*ran = false;
	*cpu_ns = 0;
	if (only_if_due && removals == s->removals_done) {
		pthread_mutex_unlock(&s->pass_mu);
		return 0;
	}
	*ran = true;
	uint64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t w0 = clock_ns(CLOCK_MONOTONIC);
	idx_maint_stats_t st;
	memset(&st, 0, sizeof(st));
	int rc = idx_maintain(s->ix, budget_ns, &st);
	bool complete = rc == 0 && (budget_ns == 0 || clock_ns(CLOCK_MONOTONIC) - w0 < budget_ns);
	uint64_t cleaned = 0;
	/* acquire: pairs with the CAS that installed the layer's state (its
	 * fields are visible) */
	struct store_ext *ext = atomic_load_explicit(&s->ext, memory_order_acquire);
	if (ext && ext->maintain) {
		int e = ext->maintain(ext, s, &cleaned);
		if (e < 0 && rc == 0)
			rc = e;
		if (e < 0)
			complete = false;
	}
	struct store_maint_counters *m = &s->mc;
	if (st.entries_moved || st.chunks_released || st.bytes_released || st.tables_shrunk ||
	    cleaned) {
		/* what this thread retired is freed after the grace period;
		 * then the allocator's free pages go back to the OS */
		int q = idx_quiesce(s->ix);
		if (q < 0 && rc == 0)
			rc = q;
		give_back_memory();
		count(&m->purges, 1);
	}
	if (complete)
		s->removals_done = removals;
	*cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
	count(&m->passes, 1);
	count(&m->entries_moved, st.entries_moved);
	count(&m->chunks_released, st.chunks_released);
	count(&m->bytes_released, st.bytes_released);
	count(&m->tables_shrunk, st.tables_shrunk);
	count(&m->groups_visited, st.groups_visited);
	count(&m->stale_cleaned, cleaned);
	count(&m->cpu_ns, *cpu_ns);
	pthread_mutex_unlock(&s->pass_mu);
	return rc;
}

CIDSTORE_API int cidstore_maintain(cidstore_t *s)
{
	if (!s)
		return CIDSTORE_EINVAL;
	if (s->read_only)
		return CIDSTORE_ERDONLY;
	bool ran;
	uint64_t cpu;
	int rc = pass(s, 0, false, &ran, &cpu);
	struct opts_ref ref;
	uint64_t ckpt_bytes = store_opts_enter(s, &ref)->checkpoint_wal_bytes;
	store_opts_exit(&ref);
	int c = store_checkpoint_if_due(s, ckpt_bytes);
	return rc ? rc : c;
}

/* ------------------------------------------------------------------ */
/* the thread                                                          */
/* ------------------------------------------------------------------ */

/* What the thread reads from one snapshot per wake-up. */
struct maint_opts {
	uint64_t interval_ns; /* 0: no automatic passes */
	uint32_t budget_pct;
	uint64_t ckpt_bytes;  /* 0: no automatic checkpoints */
};

static struct maint_opts read_opts(cidstore_t *s)
{
	struct opts_ref ref;
	const cidstore_options_t *o = store_opts_enter(s, &ref);
	struct maint_opts m = {
		(uint64_t)o->maint_interval_ms * 1000000ull,
		o->maint_budget_pct,
		s->wal ? o->checkpoint_wal_bytes : 0,
	};
	store_opts_exit(&ref);
	return m;
}

static void *maint_main(void *arg)
{
	cidstore_t *s = arg;
	uint64_t start = clock_ns(CLOCK_MONOTONIC);
	uint64_t last_pass = start, last_cpu = 0; /* the previous pass: its start, CPU */
	uint64_t next_ckpt = start + CKPT_POLL_NS;
	pthread_mutex_lock(&s->maint_mu);
	while (!s->maint_stop) {
		struct maint_opts mo = read_opts(s);
		uint64_t now = clock_ns(CLOCK_MONOTONIC);
		uint64_t wake = UINT64_MAX, next_pass = UINT64_MAX;
		if (mo.ckpt_bytes)
			wake = next_ckpt;
		if (mo.interval_ns) {
			uint64_t gap = last_cpu * 100 / mo.budget_pct;
			next_pass = last_pass + (gap > mo.interval_ns ? gap : mo.interval_ns);
			if (next_pass < wake)
				wake = next_pass;
		}
		if (wake > now) {
			if (wake == UINT64_MAX) {
				pthread_cond_wait(&s->maint_cv, &s->maint_mu);
			} else {
				struct timespec ts = {(time_t)(wake / 1000000000ull),
						      (long)(wake % 1000000000ull)};
				pthread_cond_timedwait(&s->maint_cv, &s->maint_mu, &ts);
			}
			continue; /* stop, a kick (new options) or the time: look again */
		}
		pthread_mutex_unlock(&s->maint_mu);
		if (mo.ckpt_bytes && now >= next_ckpt) {
			/* an error fails the store (store_checkpoint); the next
			 * test then sees it failed and takes none */
			store_checkpoint_if_due(s, mo.ckpt_bytes);
			next_ckpt = clock_ns(CLOCK_MONOTONIC) + CKPT_POLL_NS;
		}
		if (mo.interval_ns && now >= next_pass) {
			bool ran;
			uint64_t cpu;
			/* ENOMEM leaves the store as it was: the next pass retries */
			pass(s, mo.interval_ns * mo.budget_pct / 100, true, &ran, &cpu);
			last_pass = now;
			last_cpu = cpu;
		}
		pthread_mutex_lock(&s->maint_mu);
	}
	pthread_mutex_unlock(&s->maint_mu);
	return NULL;
}

int store_maint_start(cidstore_t *s)
{
	s->maint_stop = false;
	if (pthread_create(&s->maint, NULL, maint_main, s) != 0)
		return CIDSTORE_ENOMEM;
	s->maint_running = true;
	return 0;
}

void store_maint_stop(cidstore_t *s)
{
	if (!s->maint_running)
		return;
	pthread_mutex_lock(&s->maint_mu);
	s->maint_stop = true;
	pthread_cond_broadcast(&s->maint_cv);
	pthread_mutex_unlock(&s->maint_mu);
	pthread_join(s->maint, NULL);
	s->maint_running = false;
}

void store_maint_kick(cidstore_t *s)
{
	pthread_mutex_lock(&s->maint_mu);
	pthread_cond_broadcast(&s->maint_cv);
	pthread_mutex_unlock(&s->maint_mu);
}

void store_maint_stats(cidstore_t *s, cidstore_stats_t *out)
{
	struct store_maint_counters *m = &s->mc;
	/* relaxed: statistics (see count()) */
	out->maint_passes = atomic_load_explicit(&m->passes, memory_order_relaxed);
	out->maint_entries_moved = atomic_load_explicit(&m->entries_moved, memory_order_relaxed);
	out->maint_chunks_released =
		atomic_load_explicit(&m->chunks_released, memory_order_relaxed);
	out->maint_bytes_released = atomic_load_explicit(&m->bytes_released, memory_order_relaxed);
	out->maint_tables_shrunk = atomic_load_explicit(&m->tables_shrunk, memory_order_relaxed);
	out->maint_groups_visited = atomic_load_explicit(&m->groups_visited, memory_order_relaxed);
	out->maint_stale_cleaned = atomic_load_explicit(&m->stale_cleaned, memory_order_relaxed);
	out->maint_purges = atomic_load_explicit(&m->purges, memory_order_relaxed);
	out->maint_cpu_ns = atomic_load_explicit(&m->cpu_ns, memory_order_relaxed);
}
