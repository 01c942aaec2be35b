/*
 * metrics.h — the store's operation metrics (layer 4, internal): counts of
 * every public call by result, errors by code, latency histograms, all
 * recorded per thread without a shared write and merged when read.  The
 * design, its invariants and its arithmetic: the top of metrics.c.  The
 * Prometheus text built from them (and from the index's and the log's own
 * statistics): prometheus.c.
 *
 * Recording (any thread, never waits, no registration):
 *   mt_span_t sp;
 *   mt_begin(&s->metrics, &sp, MT_INSERT); the call may be timed
 *   rc = ...;                               (1 in MT_SAMPLE_EVERY is)
 *   mt_end(&sp, MT_INSERT, MT_H_INSERT, rc);
 * or, untimed, mt_count(&s->metrics, MT_DELETE_KEY, rc); batch sizes:
 * mt_items; an always-timed interval: t0 = mt_clock(m) ... mt_time(m, h, t0).
 * With opts.metrics false every call returns at its first test.
 */
#ifndef CIDSTORE_STORE_METRICS_H
#define CIDSTORE_STORE_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cidstore.h"
#include "util/lathist.h"

/* The public calls counted, each by result. */
enum mt_op {
	MT_INSERT,
	MT_LOOKUP,
	MT_DELETE_VALUE,
	MT_DELETE_KEY,
	MT_CONTAINS,
	MT_VALUES,
	MT_LOOKUP_MANY,
	MT_INSERT_MANY,
	MT_APPLY,
	MT_SYNC,
	MT_CHECKPOINT,
	MT_SCAN,
	MT_OPS
};

/* A call's result from its return value rc: MT_POS (rc > 0: added,
 * removed, hit; "ok" for calls that only succeed or fail), MT_NEG (rc == 0:
 * exists, absent, miss; "ok" too for those calls), MT_ERR (rc < 0). */
enum mt_result { MT_POS, MT_NEG, MT_ERR, MT_RESULTS };

/* Batched calls whose items are counted. */
enum mt_batch { MT_B_LOOKUP_MANY, MT_B_INSERT_MANY, MT_B_APPLY, MT_BATCHES };

/* Latency histograms (buckets: util/lathist.h). */
enum mt_hist {
	MT_H_LOOKUP,      /* cidstore_lookup, sampled */
	MT_H_INSERT,      /* cidstore_insert (SYNC: its commit included), sampled */
	MT_H_SYNC_COMMIT, /* every SYNC write: its record in the ring -> durable */
	MT_HISTS
};

/* Errors by code: index -code for CIDSTORE_EINVAL .. CIDSTORE_ENOSPC,
 * index 0 for any other negative value (a callback's own, returned as is). */
#define MT_ERRS (1 - CIDSTORE_ENOSPC)

/* One timed call in this many, per thread and kind (lookup, insert).  A
 * clock read (clock_gettime, vDSO) costs ~20-50 ns alone but ~450 ns next
 * to a lookup's outstanding cache misses on this project's VM (it orders
 * them: 4 random misses 164 ns, with a clock read 613 ns), so a timed call
 * costs ~1 us more; 1 in 256 keeps that to ~3.5 ns a call.  At 1M calls/s
 * a thread still gives ~4000 samples/s: p999 from minutes of data. */
#define MT_SAMPLE_EVERY 256u

struct mt_hist_cells {
	_Atomic uint64_t b[LH_BUCKETS];
	_Atomic uint64_t sum_ns;
};

/* One thread's counters for one store (see metrics.c: BLOCKS). */
struct mt_block {
	/* Synchronization: written only by the owner thread (relaxed load +
	 * relaxed store, never a read-modify-write), read by mt_merge with
	 * relaxed loads (a torn-free 64-bit value each). */
	_Atomic uint64_t ops[MT_OPS][MT_RESULTS];
	_Atomic uint64_t items[MT_BATCHES];   /* items submitted */
	_Atomic uint64_t changed[MT_BATCHES]; /* items that changed the store */
	_Atomic uint64_t errors[MT_ERRS];
	struct mt_hist_cells h[MT_HISTS];
	/* Synchronization: written before the block is published on the
	 * store's list (release), immutable after. */
	struct mt_block *next_all;
	/* Synchronization: the store's metrics lock. */
	struct mt_block *next_free;
};

/* The metrics of one store (embedded in struct cidstore). */
struct store_metrics {
	/* Synchronization: immutable after mt_init. */
	bool on;             /* opts.metrics: record anything at all */
	uint64_t id;         /* unique for the process lifetime (never 0) */
	uint64_t open_real_ns; /* CLOCK_REALTIME at open */
	uint64_t open_mono_ns; /* CLOCK_MONOTONIC at open */
	/* Synchronization: push-only list, pushed under lock with a release
	 * store; read with acquire (mt_merge) without the lock. */
	_Atomic(struct mt_block *) all;
	/* Synchronization: lock (the slow path and thread exit only). */
	pthread_mutex_t lock;
	struct mt_block *free; /* blocks of exited threads, to reuse */
	/* Synchronization: atomic, relaxed (a timestamp; 0: none since open). */
	_Atomic uint64_t ckpt_done_mono_ns; /* last checkpoint finished */
};

/* Every counter of a store, merged (plain numbers). */
struct mt_totals {
	uint64_t ops[MT_OPS][MT_RESULTS];
	uint64_t items[MT_BATCHES], changed[MT_BATCHES];
	uint64_t errors[MT_ERRS];
	uint64_t hist[MT_HISTS][LH_BUCKETS];
	uint64_t hist_sum_ns[MT_HISTS];
	uint64_t blocks; /* per-thread blocks allocated */
};

/* Sets m up (recording when on).  Returns 0 or CIDSTORE_ENOMEM. */
int mt_init(struct store_metrics *m, bool on);

/* Frees every block.  No other call on m may run; exiting threads may
 * (they find m gone).  A zeroed m (mt_init never ran) is fine. */
void mt_fini(struct store_metrics *m);

/* Sums every thread's block into *out (relaxed loads: each counter as of
 * some instant during the call; see metrics.c READING).  Never waits. */
void mt_merge(struct store_metrics *m, struct mt_totals *out);

/* ---- recording (inline: the hot path) ---- */

/* The calling thread's block for m: the last one used is cached in
 * initial-exec TLS (a %fs-relative load, no __tls_get_addr); the id tells
 * a closed store whose memory was reused from the one cached. */
struct mt_last {
	const struct store_metrics *m;
	uint64_t id;
	struct mt_block *b;
};
extern _Thread_local struct mt_last mt_last __attribute__((tls_model("initial-exec")));

/* The slow path: this thread's block for m from its table, or a free or
 * new one.  NULL when out of memory (the call is then not recorded). */
struct mt_block *mt_block_slow(struct store_metrics *m);

static inline struct mt_block *mt_block(struct store_metrics *m)
{
	if (__builtin_expect(mt_last.m == m && mt_last.id == m->id, 1))
		return mt_last.b;
	return mt_block_slow(m);
}

static inline uint64_t mt_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Adds n to a counter of the caller's own block: one writer, so a relaxed
 * load and a relaxed store (plain mov/add/mov on x86), no locked RMW. */
static inline void mt_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void mt_hist_add(struct mt_hist_cells *h, uint64_t ns)
{
	mt_add(&h->b[lh_bucket(ns)], 1);
	mt_add(&h->sum_ns, ns);
}

/* Counts a call's result: a (predicted) branch on rc picks the counter,
 * which gets a constant 1, so neither the address nor the value stored
 * waits for rc (the call's cache misses); the next call's load of the
 * counter (mt_begin) is then forwarded from a store whose data is ready. */
static inline void mt_result(struct mt_block *b, enum mt_op op, long rc)
{
	if (__builtin_expect(rc > 0, 1)) {
		mt_add(&b->ops[op][MT_POS], 1);
	} else if (rc == 0) {
		mt_add(&b->ops[op][MT_NEG], 1);
	} else {
		mt_add(&b->ops[op][MT_ERR], 1);
		mt_add(&b->errors[rc >= CIDSTORE_ENOSPC ? -rc : 0], 1);
	}
}

typedef struct mt_span {
	struct mt_block *b; /* NULL: not recording */
	uint64_t t0;        /* 0: not timed */
} mt_span_t;

/* Starts recording one call of op that may be timed (sampled for its
 * histogram): the calls of op this thread's block has counted so far
 * decide, 1 in MT_SAMPLE_EVERY.  Only loads (its own counters, in the line
 * mt_end stores to): a call stores one word, no countdown besides. */
static inline void mt_begin(struct store_metrics *m, mt_span_t *sp, enum mt_op op)
{
	sp->b = NULL;
	sp->t0 = 0;
	if (!m->on)
		return;
	struct mt_block *b = mt_block(m);
	if (__builtin_expect(b == NULL, 0))
		return;
	sp->b = b;
	/* relaxed loads: own counters */
	uint64_t n = atomic_load_explicit(&b->ops[op][MT_POS], memory_order_relaxed) +
		     atomic_load_explicit(&b->ops[op][MT_NEG], memory_order_relaxed) +
		     atomic_load_explicit(&b->ops[op][MT_ERR], memory_order_relaxed);
	if (__builtin_expect(n % MT_SAMPLE_EVERY == MT_SAMPLE_EVERY - 1, 0))
		sp->t0 = mt_now_ns();
}

/* Ends it: counts op's result (rc as the call returns it) and, when the
 * call was sampled, its duration in histogram h. */
static inline void mt_end(const mt_span_t *sp, enum mt_op op, enum mt_hist h, long rc)
{
	struct mt_block *b = sp->b;
	if (!b)
		return;
	if (__builtin_expect(sp->t0 != 0, 0))
		mt_hist_add(&b->h[h], mt_now_ns() - sp->t0);
	mt_result(b, op, rc);
}

/* Counts one untimed call. */
static inline void mt_count(struct store_metrics *m, enum mt_op op, long rc)
{
	if (!m->on)
		return;
	struct mt_block *b = mt_block(m);
	if (b)
		mt_result(b, op, rc);
}

/* A batched call's n items, of which changed changed the store. */
static inline void mt_items(struct store_metrics *m, enum mt_batch k, uint64_t n,
			    uint64_t changed)
{
	if (!m->on)
		return;
	struct mt_block *b = mt_block(m);
	if (b) {
		mt_add(&b->items[k], n);
		mt_add(&b->changed[k], changed);
	}
}

/* Always-timed intervals: t0 = mt_clock(m) (0 when not recording), then
 * mt_time(m, h, t0) records now - t0 in histogram h. */
static inline uint64_t mt_clock(const struct store_metrics *m)
{
	return m->on ? mt_now_ns() : 0;
}

static inline void mt_time(struct store_metrics *m, enum mt_hist h, uint64_t t0)
{
	if (!t0)
		return;
	struct mt_block *b = mt_block(m);
	if (b)
		mt_hist_add(&b->h[h], mt_now_ns() - t0);
}

/* A checkpoint finished now (durable.c). */
static inline void mt_checkpoint_done(struct store_metrics *m)
{
	atomic_store_explicit(&m->ckpt_done_mono_ns, mt_now_ns(), memory_order_relaxed);
}

#endif
