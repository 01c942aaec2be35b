/*
 * ring.c — bounded MPSC ring with ticket reservation (see ring.h).
 *
 * STATE
 *   head           next ticket to hand out.  Producers: fetch_add.
 *   tail           first ticket not yet released.  Written by the consumer.
 *   seq[i]         per slot: t + 1 once ticket t (t & mask == i) is
 *                  published; older values mean "not yet".
 *   cons_sleep     futex word: 0 awake; 1 the consumer sleeps (or is about
 *                  to) and wants a publish of the first unreleased slot
 *                  to wake it ("eager"); 2 it sleeps and only kicks,
 *                  failure, the half-full watermark or its timeout wake
 *                  it ("lazy": a publish costs the producer no wake).
 *   kicks          counter bumped by ring_kick (consumer wake-up reasons
 *                  that are not a publish).
 *   space_gen      futex word producers sleep on while the ring is full;
 *   space_waiters  how many producers may be sleeping on it.
 *   err            0, or the sticky failure.
 *
 * INVARIANTS
 *   I1  tail <= head (as unbounded integers; tickets never wrap).
 *   I2  A producer writes slot t only after tail > t + n - 1 - cap holds
 *       for its reservation, so slot t & mask is no longer used by ticket
 *       t - cap: the consumer released it.
 *   I3  seq[t & mask] == t + 1 iff ticket t is published and not yet
 *       overwritten by ticket t + cap (which needs tail > t, I2) — the value
 *       identifies the lap, so a stale publish is never taken for a new one.
 *   I4  The consumer reads ticket t only when seq[t & mask] == t + 1 and
 *       t >= tail, and releases tickets in order: it consumes each published
 *       ticket exactly once, in ticket order.
 *
 * LINEARIZATION POINTS
 *   reserve: the fetch_add on head (the ticket order is the consumption
 *   order, and the WAL's LSN order).  publish: the store to seq.  consume:
 *   the load of seq that sees t + 1.  release: the store to tail.
 *
 * PROGRESS
 *   reserve is wait-free while the ring has room (one fetch_add); when full
 *   it blocks until the consumer releases.  publish and release are
 *   wait-free.  The consumer is blocking: a producer stalled between
 *   reserve and publish holds up every later ticket (by design: the log is
 *   written in LSN order).  No lock is taken anywhere.
 *
 * CONSUMERS: consumer calls (peek, release) may come from several threads
 * when the caller serializes them with a lock of its own (the WAL's
 * log_lock): the lock orders one consumer's store of tail before the next
 * one's load.  Only ONE designated thread sleeps in ring_wait_spsc, and it
 * may call it without that lock (it reads tail only to decide whether to
 * sleep: a stale value makes it return early, a spurious wake-up).
 *
 * SLEEP/WAKE (no lost wake-up), each a Dekker pair on seq_cst accesses:
 *   consumer:  cons_sleep = 1; re-check seq[tail], kicks, err; futex_wait
 *   producer:  seq = t + 1;    if cons_sleep == 1: cas(1 -> 0), wake
 *   In the single total order of seq_cst operations either the producer's
 *   load of cons_sleep follows the consumer's store (it wakes it, and the
 *   exchange to 0 makes a futex_wait that has not started yet return at
 *   once), or the consumer's re-check follows the producer's store (it does
 *   not sleep).  ring_kick and ring_fail use the same pattern on kicks/err
 *   and wake a consumer sleeping in either mode (exchange to 0).  A lazy
 *   sleep (cons_sleep = 2) ignores publishes by design; the producer whose
 *   reservation passes half the capacity wakes it (a hint: load + exchange),
 *   a producer that finds the ring full kicks it before it waits, and the
 *   consumer's timeout bounds the sleep anyway.
 *   producer waiting for space:  space_waiters++; g = space_gen; re-check
 *   tail; futex_wait(space_gen, g).  consumer: tail = x; if space_waiters:
 *   space_gen++, wake all.  Either the consumer sees the waiter, or the
 *   waiter's re-check sees the new tail; a bump after the waiter read g
 *   makes futex_wait return at once.  The futex sleeps also carry a timeout
 *   as a second line of defence.
 *
 * FREEING: the ring is freed only by ring_destroy, when no call runs.
 *
 * ASSERTIONS (util/check.h).  Every load made only for an assertion is
 * relaxed, so no check adds a happens-before edge that could hide a race
 * from ThreadSanitizer or change what the orderings above guarantee.
 *   CS_ASSERT (always, constant time, no extra shared cache line):
 *     reserve   tickets never wrap and never reach RING_FAILED (I1).
 *     publish   the slot's seq word holds exactly the previous lap's value
 *               (ticket - cap + 1, or 0 on the first lap): the consumer
 *               released ticket - cap (I2) and nobody published the slot
 *               since (I3).  This also checks the pairing of has_room's
 *               acquire load of tail with release's store of tail and of
 *               the consumer's acquire load of seq with publish's store:
 *               without them the producer could see an older lap.
 *     peek / release   at most cap tickets (capacity).
 *     wait_for_room    space_waiters never goes below zero.
 *     ring_fail        the stored error is negative (sticky failure).
 *   CS_DEBUG_ASSERT (-Ddebug_checks=true: they load head / tail, cache
 *   lines the other side writes, or walk slots):
 *     reserve   tail <= t: no ticket of ours was released (I1, I4).
 *     ring_slot, publish   tail <= ticket < head and ticket - tail < cap:
 *               the ticket is reserved, not yet released, and its slot is
 *               not the one of a live older ticket (I2, wrap).
 *     peek      each counted slot holds t + 1 for its ticket t, the slot
 *               after them no newer lap than its ticket's (I3), and the
 *               counted tickets were reserved (first + n <= head, I1).
 *     release   every released ticket is still published (seq == t + 1:
 *               the consumer releases only what it peeked, I4), and the
 *               new tail stays <= head (I1).
 *     wait      cons_sleep is 0 on entry (only the consumer sets it, and
 *               it clears it before returning: one consumer at a time).
 *
 * ThreadSanitizer sees every edge: all shared words are C11 atomics (no
 * ck_pr), and futexes only add sleeping on top of them.
 */
#include "log/ring.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ck_backoff.h>

#include "cidstore.h"
#include "util/check.h"

#define CACHE_LINE 64

struct ring {
	/* Synchronization: atomic (producers' fetch_add). */
	_Alignas(CACHE_LINE) _Atomic uint64_t head;
	/* Synchronization: atomic; written only by the consumer. */
	_Alignas(CACHE_LINE) _Atomic uint64_t tail;
	/* Synchronization: atomic (futex words and counters, see above). */
	_Alignas(CACHE_LINE) _Atomic uint32_t space_gen;
	_Atomic uint32_t space_waiters;
	_Alignas(CACHE_LINE) _Atomic uint32_t cons_sleep;
	_Atomic uint32_t kicks;
	_Atomic int err;
	/* Synchronization: immutable after ring_create. */
	_Alignas(CACHE_LINE) uint32_t cap;
	uint32_t mask;
	_Atomic uint64_t *seq;  /* cap words, atomic */
	unsigned char *slots;   /* cap * 128 bytes; owned per I2/I4 */
};

static void futex_wait(_Atomic uint32_t *w, uint32_t val, int timeout_ms)
{
	struct timespec ts, *tp = NULL;
	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
		tp = &ts;
	}
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, val, tp, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w, int n)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* ---- checks for CS_DEBUG_ASSERT: relaxed loads only (see ASSERTIONS) ---- */

static inline uint64_t seq_now(ring_t *r, uint64_t t)
{
	return atomic_load_explicit(&r->seq[t & r->mask], memory_order_relaxed);
}

/* ticket is reserved and not yet released, and its slot is its own. */
static bool in_window(ring_t *r, uint64_t ticket)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	return tail <= ticket && ticket < head && ticket - tail < r->cap;
}

/* Tickets first .. first + n - 1 are published (I3) and were reserved. */
static bool published_run(ring_t *r, uint64_t first, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (seq_now(r, first + i) != first + i + 1)
			return false;
	return first + n <= atomic_load_explicit(&r->head, memory_order_relaxed);
}

int ring_create(uint32_t nslots, ring_t **out)
{
	if (!out || nslots < 2 || nslots > (1u << 30) || (nslots & (nslots - 1)))
		return CIDSTORE_EINVAL;
	ring_t *r = aligned_alloc(CACHE_LINE, sizeof *r);
	if (!r)
		return CIDSTORE_ENOMEM;
	memset(r, 0, sizeof *r);
	r->cap = nslots;
	r->mask = nslots - 1;
	r->seq = malloc(sizeof(*r->seq) * nslots);
	r->slots = aligned_alloc(CACHE_LINE, (size_t)nslots * RING_SLOT_SIZE);
	if (!r->seq || !r->slots) {
		free(r->seq);
		free(r->slots);
		free(r);
		return CIDSTORE_ENOMEM;
	}
	for (uint32_t i = 0; i < nslots; i++)
		atomic_init(&r->seq[i], 0); /* no ticket t has t + 1 == 0 */
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	atomic_init(&r->space_gen, 0);
	atomic_init(&r->space_waiters, 0);
	atomic_init(&r->cons_sleep, 0);
	atomic_init(&r->kicks, 0);
	atomic_init(&r->err, 0);
	CS_ASSERT(r->mask == r->cap - 1 && (r->cap & r->mask) == 0);
	*out = r;
	return 0;
}

void ring_destroy(ring_t *r)
{
	if (!r)
		return;
	free(r->seq);
	free(r->slots);
	free(r);
}

uint32_t ring_capacity(const ring_t *r)
{
	return r->cap;
}

/* Wakes the consumer if it sleeps or is about to, in either mode (kicks,
 * failure, watermark; see SLEEP/WAKE). */
static void wake_consumer(ring_t *r)
{
	/* seq_cst load: pairs with the consumer's seq_cst store of 1 / 2 in
	 * ring_wait_spsc (Dekker), ordered after the caller's seq_cst store
	 * of kicks / err. */
	if (atomic_load_explicit(&r->cons_sleep, memory_order_seq_cst) &&
	    atomic_exchange_explicit(&r->cons_sleep, 0, memory_order_seq_cst))
		futex_wake(&r->cons_sleep, 1);
}

/* A publish wakes only an eager sleeper (cons_sleep == 1). */
static void wake_consumer_on_publish(ring_t *r)
{
	uint32_t one = 1;
	/* seq_cst load / CAS: the producer half of the Dekker pair with the
	 * consumer's seq_cst store of 1, after our seq_cst store of seq. */
	if (atomic_load_explicit(&r->cons_sleep, memory_order_seq_cst) == 1 &&
	    atomic_compare_exchange_strong_explicit(&r->cons_sleep, &one, 0,
						    memory_order_seq_cst,
						    memory_order_relaxed))
		futex_wake(&r->cons_sleep, 1);
}

/* True when tickets up to last fit: tail + cap > last. */
static inline int has_room(ring_t *r, uint64_t last, memory_order mo)
{
	/* acquire (or seq_cst): pairs with the consumer's seq_cst store of
	 * tail in ring_release_spsc, so its reads of the slots happen before
	 * our writes to them (I2). */
	return atomic_load_explicit(&r->tail, mo) + r->cap > last;
}

static int wait_for_room(ring_t *r, uint64_t last)
{
	ck_backoff_t backoff = CK_BACKOFF_INITIALIZER;
	for (unsigned round = 0;; round++) {
		if (has_room(r, last, memory_order_acquire))
			return 0;
		/* acquire: pairs with the seq_cst store in ring_fail. */
		if (atomic_load_explicit(&r->err, memory_order_acquire))
			return -1;
		if (round == 0)
			wake_consumer(r); /* full: whatever mode it sleeps in */
		if (round < 6) {
			ck_backoff_eb(&backoff);
		} else if (round < 22) {
			sched_yield();
		} else {
			/* seq_cst RMW / loads: the producer half of the
			 * space Dekker pair (see SLEEP/WAKE). */
			atomic_fetch_add_explicit(&r->space_waiters, 1,
						  memory_order_seq_cst);
			uint32_t g = atomic_load_explicit(&r->space_gen,
							  memory_order_seq_cst);
			if (!has_room(r, last, memory_order_seq_cst) &&
			    !atomic_load_explicit(&r->err, memory_order_seq_cst))
				futex_wait(&r->space_gen, g, 10);
			/* relaxed: the count only decides whether the
			 * consumer bothers to wake; an extra wake is harmless. */
			uint32_t was = atomic_fetch_sub_explicit(&r->space_waiters, 1,
								 memory_order_relaxed);
			CS_ASSERT(was > 0);
		}
	}
}

uint64_t ring_reserve_mpsc(ring_t *r, uint32_t n)
{
	if (n == 0 || n > r->cap)
		return RING_FAILED;
	/* acquire: pairs with the seq_cst store in ring_fail. */
	if (atomic_load_explicit(&r->err, memory_order_acquire))
		return RING_FAILED;
	/* seq_cst: the linearization point; the ticket order is the log
	 * order.  (relaxed would do for the counter itself; seq_cst costs
	 * nothing more on x86 and keeps the reasoning simple.) */
	uint64_t t = atomic_fetch_add_explicit(&r->head, n, memory_order_seq_cst);
	CS_ASSERT(t <= RING_FAILED - n); /* I1: tickets never wrap */
	uint64_t last = t + n - 1;
	/* acquire: pairs with the consumer's seq_cst store of tail (I2). */
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (tail + r->cap <= last) {
		if (wait_for_room(r, last))
			return RING_FAILED;
	} else if (last - tail >= r->cap / 2 && t - tail < r->cap / 2) {
		/* this reservation passes half full: wake a lazy sleeper (a
		 * hint; relaxed load first so the common case costs nothing) */
		if (atomic_load_explicit(&r->cons_sleep, memory_order_relaxed) == 2)
			wake_consumer(r);
	}
	/* I1, I4: our tickets are unpublished, so none was released. */
	CS_DEBUG_ASSERT(atomic_load_explicit(&r->tail, memory_order_relaxed) <= t);
	return t;
}

void *ring_slot(ring_t *r, uint64_t ticket)
{
	CS_DEBUG_ASSERT(in_window(r, ticket));
	return r->slots + (size_t)(ticket & r->mask) * RING_SLOT_SIZE;
}

void ring_publish_mpsc(ring_t *r, uint64_t ticket)
{
	CS_DEBUG_ASSERT(in_window(r, ticket));
	/* I2, I3: the slot holds the previous lap's publish.  relaxed: the
	 * acquire load of tail that let ring_reserve_mpsc return already
	 * ordered that publish before us, and nothing can store here since. */
	CS_ASSERT(seq_now(r, ticket) == (ticket >= r->cap ? ticket - r->cap + 1 : 0));
	/* seq_cst store (a release, too): pairs with the consumer's acquire
	 * load in ring_peek_spsc (the slot's bytes), and is the producer half
	 * of the cons_sleep Dekker pair with wake_consumer's load. */
	atomic_store_explicit(&r->seq[ticket & r->mask], ticket + 1,
			      memory_order_seq_cst);
	wake_consumer_on_publish(r);
}

uint64_t ring_reserved(const ring_t *r)
{
	/* relaxed: a statistic. */
	return atomic_load_explicit(&((ring_t *)r)->head, memory_order_relaxed);
}

uint64_t ring_used(const ring_t *r)
{
	ring_t *m = (ring_t *)r;
	/* relaxed: a statistic.  Two loads at different instants: the
	 * difference is clamped to [0, cap] (tickets of producers still
	 * waiting for room are not in the ring yet). */
	uint64_t t = atomic_load_explicit(&m->tail, memory_order_relaxed);
	uint64_t h = atomic_load_explicit(&m->head, memory_order_relaxed);
	uint64_t used = h > t ? h - t : 0;
	return used < m->cap ? used : m->cap;
}

static inline int is_published(ring_t *r, uint64_t t, memory_order mo)
{
	/* acquire (or seq_cst): pairs with the store in ring_publish_mpsc. */
	return atomic_load_explicit(&r->seq[t & r->mask], mo) == t + 1;
}

uint32_t ring_peek_spsc(ring_t *r, uint64_t *first, uint32_t max)
{
	/* relaxed: tail is written only by this (the consumer) thread. */
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t n = 0;
	if (max > r->cap)
		max = r->cap;
	while (n < max && is_published(r, t + n, memory_order_acquire))
		n++;
	CS_ASSERT(n <= r->cap);
	/* I3: the counted run stays published, the next slot holds no newer
	 * lap than ticket t + n's (it may have been published meanwhile). */
	CS_DEBUG_ASSERT(published_run(r, t, n) && seq_now(r, t + n) <= t + n + 1);
	*first = t;
	return n;
}

void ring_release_spsc(ring_t *r, uint32_t n)
{
	if (n == 0)
		return;
	/* relaxed load: own variable. */
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	CS_ASSERT(n <= r->cap);
	/* I4: only peeked (so published) tickets are released; I1: tail <= head. */
	CS_DEBUG_ASSERT(published_run(r, t, n));
	/* seq_cst store (a release): pairs with the producers' acquire loads
	 * in has_room, and is the consumer half of the space Dekker pair. */
	atomic_store_explicit(&r->tail, t + n, memory_order_seq_cst);
	if (atomic_load_explicit(&r->space_waiters, memory_order_seq_cst)) {
		atomic_fetch_add_explicit(&r->space_gen, 1, memory_order_seq_cst);
		futex_wake(&r->space_gen, INT_MAX);
	}
}

uint32_t ring_kicks(const ring_t *r)
{
	/* seq_cst: the consumer reads it before checking the conditions a
	 * kick announces (see wal.c); pairs with the RMW in ring_kick. */
	return atomic_load_explicit(&((ring_t *)r)->kicks, memory_order_seq_cst);
}

uint32_t ring_published(ring_t *r, uint32_t max)
{
	/* acquire: pairs with the consumers' seq_cst stores of tail (a hint:
	 * another consumer may move it right after). */
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint32_t n = 0;
	if (max > r->cap)
		max = r->cap;
	while (n < max && is_published(r, t + n, memory_order_acquire))
		n++;
	return n;
}

int ring_wait_spsc(ring_t *r, int timeout_ms, uint32_t kicks_seen, bool on_publish)
{
	/* one sleeper: nobody else is asleep on cons_sleep */
	CS_DEBUG_ASSERT(atomic_load_explicit(&r->cons_sleep, memory_order_relaxed) == 0);
	/* acquire: another consumer (serialized by the caller's lock) may
	 * have moved tail; pairs with its seq_cst store. */
	uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
	int e;
	if (!on_publish)
		goto sleep_lazy;
	ck_backoff_t backoff = CK_BACKOFF_INITIALIZER;
	/* a short spin first: a producer between reserve and publish is
	 * usually a few hundred instructions away from publishing */
	for (int i = 0; i < 4; i++) {
		if (is_published(r, t, memory_order_acquire))
			return 0;
		ck_backoff_eb(&backoff);
	}
	/* seq_cst store then seq_cst loads: the consumer half of the
	 * Dekker pairs with ring_publish_mpsc, ring_kick and ring_fail. */
	atomic_store_explicit(&r->cons_sleep, 1, memory_order_seq_cst);
	e = atomic_load_explicit(&r->err, memory_order_seq_cst);
	if (!e && !is_published(r, t, memory_order_seq_cst) &&
	    atomic_load_explicit(&r->kicks, memory_order_seq_cst) == kicks_seen)
		futex_wait(&r->cons_sleep, 1, timeout_ms);
	goto awake;
sleep_lazy:
	/* seq_cst store then seq_cst loads: the consumer half of the Dekker
	 * pairs with ring_kick and ring_fail (publishes do not wake us). */
	atomic_store_explicit(&r->cons_sleep, 2, memory_order_seq_cst);
	e = atomic_load_explicit(&r->err, memory_order_seq_cst);
	if (!e && atomic_load_explicit(&r->kicks, memory_order_seq_cst) == kicks_seen)
		futex_wait(&r->cons_sleep, 2, timeout_ms);
awake:
	/* relaxed: only this thread sets it to 1; producers only clear it. */
	atomic_store_explicit(&r->cons_sleep, 0, memory_order_relaxed);
	/* acquire: pairs with the seq_cst store in ring_fail. */
	e = atomic_load_explicit(&r->err, memory_order_acquire);
	return e;
}

void ring_kick(ring_t *r)
{
	/* seq_cst RMW: the kicker half of the Dekker pair with the consumer's
	 * store of cons_sleep and load of kicks in ring_wait_spsc. */
	atomic_fetch_add_explicit(&r->kicks, 1, memory_order_seq_cst);
	wake_consumer(r);
}

void ring_fail(ring_t *r, int err)
{
	int expected = 0;
	if (err >= 0)
		err = CIDSTORE_EIO;
	/* seq_cst: first error wins; pairs with the acquire loads of err in
	 * the waiting producers and the consumer. */
	atomic_compare_exchange_strong_explicit(&r->err, &expected, err,
						memory_order_seq_cst,
						memory_order_seq_cst);
	/* sticky: ours or an earlier failure's error, negative either way */
	CS_ASSERT(atomic_load_explicit(&r->err, memory_order_relaxed) < 0);
	atomic_fetch_add_explicit(&r->space_gen, 1, memory_order_seq_cst);
	futex_wake(&r->space_gen, INT_MAX);
	wake_consumer(r);
}

int ring_error(const ring_t *r)
{
	/* acquire: pairs with the seq_cst CAS in ring_fail. */
	return atomic_load_explicit(&((ring_t *)r)->err, memory_order_acquire);
}
