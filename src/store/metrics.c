/*
 * metrics.c — per-thread metric blocks, found without registration,
 * recycled when threads exit, merged when read.
 *
 * DESIGN
 *   Every thread that calls a store gets its own block of counters for
 *   that store (struct mt_block, metrics.h): call counts by result,
 *   errors by code, batch item counts and three latency histograms.  A
 *   block is written by one thread only, so recording is a relaxed load
 *   and a relaxed store of a 64-bit word in a line no other thread writes
 *   (no locked read-modify-write, no shared cache line).  A reader sums
 *   every block (mt_merge).  Nothing is registered: the first call of a
 *   thread on a store takes the slow path (mt_block_slow), later calls
 *   find the block through a one-entry TLS cache (mt_last) or, when the
 *   thread alternates between stores, through its TLS table.
 *
 * BLOCKS
 *   A store keeps every block it ever allocated on a push-only list
 *   (`all`), so a reader never misses the counts of a thread that
 *   exited.  A thread's exit hands its blocks back to their stores' free
 *   lists (the destructor of one process-wide pthread key); the next new
 *   thread of that store takes one and goes on adding to its counters
 *   (they are totals since open: who adds does not matter).  So the
 *   number of blocks is the peak number of threads that used the store at
 *   once, not the number that ever did: thread churn leaks nothing.
 *   Blocks are freed only by mt_fini (cidstore_close).
 *
 * INVARIANTS
 *   M1  A block has at most one owner thread at a time; only the owner
 *       writes its counters.  Ownership passes only
 *       through the store's free list under its lock (the old owner's
 *       exit pushes, the new owner pops), so the old owner's stores happen
 *       before the new owner's loads and no count is lost.
 *   M2  `all` only grows until mt_fini; a block's next_all is written
 *       before the release store that publishes it and never changes, so a
 *       reader that loads `all` with acquire walks a stable list.
 *   M3  Blocks are found through mt_map (util/tls_map.c): a thread's
 *       table of (store pointer, id) -> block, entries trusted only while
 *       the id matches the store's, so a closed store's memory reused by a
 *       new store (new id) is never taken for the old one (T1).  A thread's
 *       exit hands a block back only while its store's id is listed live,
 *       under the map's lock; mt_fini unlists the id (tm_close) before it
 *       frees anything, so an exiting thread never touches a closed store
 *       (T2: close and thread exit may race; the contract forbids calls
 *       during close, not thread exits).
 *
 * READING (mt_merge)
 *   Each counter is read with one relaxed load: a value it really held
 *   (64-bit atomics are never torn), as of some instant during the merge.
 *   Counters only grow, so two merges in a row never see a total go down;
 *   with no call running the totals are exact.  A histogram's buckets and
 *   its sum are read at slightly different instants (the count is the
 *   sum of the buckets, so count and +Inf always agree).
 *
 * ARITHMETIC
 *   Block: 12 calls x 3 results x 8 B = 288 B; items and changed 2 x 3 x 8
 *   = 48 B; 14 error codes x 8 = 112 B; 3 histograms x (118 buckets + sum)
 *   x 8 = 2856 B; list fields 16 B: 3320 B = 52 cache lines per thread per
 *   store (_Static_assert below).  64 threads: 212 KB.
 *   Per call: the TLS cache check (three %fs-relative loads, two
 *   compares), for lookup and insert three loads of the call's own
 *   counters (the sampling decision), then ONE store: a load and a store
 *   of the result's counter, in the thread's own line, no locked
 *   instruction, nothing shared: ~1-3 ns of instructions.
 *   Timing: a sampled call reads the clock twice.  clock_gettime costs
 *   20-50 ns in a loop, but next to a call's outstanding cache misses it
 *   waits for them (~450 ns each on this project's VM: metrics.h), so
 *   lookups and inserts are timed 1 in MT_SAMPLE_EVERY = 256 per thread
 *   and kind: ~3.5 ns a call on average.  Counts are exact always; a
 *   histogram's count is the number of sampled calls.  SYNC commits (an
 *   fdatasync: tens of us and more) are always timed: 2 x 450 ns on
 *   >= 20 us is < 5 %, on the usual ~100 us fdatasync < 1 %.
 *   Measured (bench/bench_metrics.cc, paired on vs off; bench/README.md
 *   "metrics on/off"): more than this arithmetic says.  1M keys: lookups
 *   +4-5 % CPU, inserts +15 % (1 thread) and +30 % (2 threads); bench_index
 *   inserts +-1 %, lookups -13 %.  A store placed before the index call is
 *   free, one after it (the result's counter) is not, on this VM: the
 *   < 3 % target is not met yet.
 *   A merge reads 3.3 KB per block: ~1 us per thread that ever ran at
 *   once.
 */
#include "store/metrics.h"
#include "util/tls_map.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(struct mt_block) == 3320, "block size as the ARITHMETIC above says");

_Thread_local struct mt_last mt_last __attribute__((tls_model("initial-exec")));

static void thread_exit(void *store, void *block);
static struct tls_map mt_map = TLS_MAP_INIT(thread_exit);

/* mt_map's on_exit: hand the block back to its store, still open, for
 * reuse (M1, M3). */
static void thread_exit(void *store, void *block)
{
	struct store_metrics *m = store;
	struct mt_block *b = block;
	pthread_mutex_lock(&m->lock);
	b->next_free = m->free;
	m->free = b;
	pthread_mutex_unlock(&m->lock);
	mt_last = (struct mt_last){NULL, 0, NULL};
}

int mt_init(struct store_metrics *m, bool on)
{
	memset(m, 0, sizeof(*m));
	/* lists m->id live: from here on an exiting thread may touch m's
	 * lock and free list (M3), so they are set up first */
	m->on = on;
	atomic_init(&m->all, NULL);
	atomic_init(&m->ckpt_done_mono_ns, 0);
	pthread_mutex_init(&m->lock, NULL);
	if (tm_open(&mt_map, &m->id) != 0) {
		pthread_mutex_destroy(&m->lock);
		return CIDSTORE_ENOMEM;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	m->open_real_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	m->open_mono_ns = mt_now_ns();
	return 0;
}

void mt_fini(struct store_metrics *m)
{
	if (m->id == 0)
		return; /* mt_init never ran */
	/* this thread's table entry for m goes too (the id check would
	 * catch it anyway, M3) */
	tm_close(&mt_map, m, m->id);
	/* M3: no exiting thread touches m from here on; M2: nobody else walks
	 * the list (no call runs during close). */
	struct mt_block *b = atomic_load_explicit(&m->all, memory_order_acquire);
	while (b) {
		struct mt_block *n = b->next_all;
		free(b);
		b = n;
	}
	atomic_store_explicit(&m->all, NULL, memory_order_relaxed);
	/* this thread's cached entry for m (the id check would catch it
	 * anyway, M3) */
	if (mt_last.m == m)
		mt_last = (struct mt_last){NULL, 0, NULL};
	pthread_mutex_destroy(&m->lock);
	m->id = 0;
}

/* A block for the calling thread: a free one (M1) or a new one (M2). */
static void *block_take(void *store)
{
	struct store_metrics *m = store;
	pthread_mutex_lock(&m->lock);
	struct mt_block *b = m->free;
	if (b) {
		m->free = b->next_free;
		b->next_free = NULL;
		pthread_mutex_unlock(&m->lock);
		return b;
	}
	pthread_mutex_unlock(&m->lock);
	size_t sz = (sizeof(*b) + 63) & ~(size_t)63;
	b = aligned_alloc(64, sz);
	if (!b)
		return NULL;
	memset(b, 0, sz);
	pthread_mutex_lock(&m->lock);
	b->next_all = atomic_load_explicit(&m->all, memory_order_relaxed);
	/* release: next_all and the zeroed counters before the block is
	 * reachable (M2); pairs with mt_merge's acquire load */
	atomic_store_explicit(&m->all, b, memory_order_release);
	pthread_mutex_unlock(&m->lock);
	return b;
}

struct mt_block *mt_block_slow(struct store_metrics *m)
{
	struct mt_block *b = tm_get(&mt_map, m, m->id, block_take);
	if (b)
		mt_last = (struct mt_last){m, m->id, b};
	return b;
}

static inline uint64_t ld(const _Atomic uint64_t *c)
{
	/* relaxed: a statistic; the owner's single store is never torn */
	return atomic_load_explicit((_Atomic uint64_t *)c, memory_order_relaxed);
}

void mt_merge(struct store_metrics *m, struct mt_totals *out)
{
	memset(out, 0, sizeof(*out));
	/* acquire: pairs with block_take's release store (M2) */
	for (struct mt_block *b = atomic_load_explicit(&m->all, memory_order_acquire); b;
	     b = b->next_all) {
		for (unsigned o = 0; o < MT_OPS; o++)
			for (unsigned r = 0; r < MT_RESULTS; r++)
				out->ops[o][r] += ld(&b->ops[o][r]);
		for (unsigned k = 0; k < MT_BATCHES; k++) {
			out->items[k] += ld(&b->items[k]);
			out->changed[k] += ld(&b->changed[k]);
		}
		for (unsigned e = 0; e < MT_ERRS; e++)
			out->errors[e] += ld(&b->errors[e]);
		for (unsigned h = 0; h < MT_HISTS; h++) {
			for (unsigned i = 0; i < LH_BUCKETS; i++)
				out->hist[h][i] += ld(&b->h[h].b[i]);
			out->hist_sum_ns[h] += ld(&b->h[h].sum_ns);
		}
		out->blocks++;
	}
}
