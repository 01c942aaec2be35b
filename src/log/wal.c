/*
 * wal.c — WAL writer: producers -> ring -> whoever holds the log -> segments.
 *
 * The record and segment format, the CRC and the validity rule are at the
 * top of record.h.  This file adds the order of operations on disk and the
 * protocol between producers, committers (SYNC waiters) and the flusher.
 *
 * DESIGN (durable path v2: leader-based group commit, no hand-off chain)
 *
 *   The log is a role, not a thread.  log_lock (a mutex) is "the pen":
 *   whoever holds it owns the current segment (fd, offsets, hybrid time,
 *   the batch buffer), is the ring's one consumer, and may pwrite, rotate
 *   and fdatasync.  Two kinds of threads take it:
 *
 *   committer (leader)  a thread in wal_wait(lsn) whose lsn is not durable
 *             and that finds no other committer leading (a CAS of
 *             `leading` from 0 to 1).  It takes log_lock, lets the group form (GATHER
 *             below), drains every published record into the segment
 *             (pwrite, rotating when full), fdatasyncs, stores durable_lsn
 *             and wakes the threads that waited meanwhile.  Those whose
 *             record the sync covered return; of the others the first to
 *             win the CAS leads the next group: the next group forms
 *             while the current fdatasync runs.  Nobody hands a commit to
 *             another thread: the thread that needs durability does the
 *             I/O itself, so 1-thread SYNC is pwrite + fdatasync, like the
 *             disk's own serial loop.
 *   flusher   a background thread for ASYNC records, backpressure and
 *             close.  While producers are active it sleeps "lazily"
 *             (ring_wait_spsc without wake on publish, polling each ms),
 *             so producers never pay a futex wake for it; after 50 ms
 *             without a reservation it sleeps until a publish.  With
 *             records published it sleeps lazily until a write is
 *             due (records published FLUSH_WRITE_NS = 1 ms ago and still
 *             unwritten: a committer usually wrote them long before) or
 *             a sync is due (sync_interval_ms since the last fdatasync),
 *             or until the ring passes half full (producers' watermark),
 *             a full ring (backpressure), close or failure.  Then it takes
 *             log_lock, drains everything, and fdatasyncs if the sync is
 *             due.
 *   producer  wal_append / wal_reserve + wal_put: takes LSNs (ring tickets,
 *             LSN = base + ticket), writes a struct wal_rec into the slot,
 *             publishes.  The drainer stamps hybrid time and the CRC, so
 *             both follow LSN order and cost the producer nothing.
 *   trimmer   wal_trim (the checkpointer): unlinks old segments under
 *             seg_lock.
 *
 *   GATHER (a short adaptive wait, only when others are arriving): the
 *   leader knows the size of the last group (gather_target, records
 *   covered by the previous sync).  When it is > 1 the leader waits,
 *   yielding its CPU to the threads about to publish, until that many
 *   records are published and unwritten, or a deadline of half the recent
 *   fdatasync time (at most 200 us) passes; on the deadline the target
 *   drops to what came.  At 1 thread the target stays 1: no wait, no
 *   clock read.  The wait only delays the START of a sync; it never
 *   acknowledges anything (see W2).
 *
 * ARITHMETIC (per commit; T = one fdatasync of an overwritten, preallocated
 * and zero-filled block: one device write + cache flush, no metadata)
 *   1 thread:  syscalls = pwrite + fdatasync (+ nothing: `leading` and
 *              log_lock uncontended, no waiter to wake, the flusher asleep
 *              until its interval: one futex wake per sync_interval_ms, not
 *              per commit).  fsyncs/commit = 1; wake-ups/commit = 0.
 *              Throughput ~ 1 / (T + pwrite + ~2 us of CPU): >= 90 % of the
 *              disk's pwrite + fdatasync loop.
 *   32 threads: one leader per group; per group 1 pwrite + 1 fdatasync +
 *              one futex wake of all (the leader, on wake_seq) waking the
 *              ~G waiters; each waiter: one futex wait + its share of the
 *              wake.  With G ~ 32 (GATHER): fsyncs/commit ~ 1/32,
 *              syscalls/commit ~ 2/32 + ~2 (futex wait/wake), wake-ups/
 *              commit ~ 1.  Throughput ~ G / (T + t_gather), t_gather =
 *              time for the released threads to insert again on 2 cores
 *              (~30-50 us): ~32 / (140 + 40) us ~ 180k/s at T = 140 us,
 *              ~250k/s at T = 90 us.  Without GATHER the groups alternate
 *              (those that arrive during sync k make group k+1): G ~ 16,
 *              ~110k/s.
 *   Measured (bench/durable/README.md, results/v2-insert.json, disk loop
 *   p50 128 us = 7.9k serial commits/s): 1 thread 7.14k/s (90 %); 32
 *   threads 116k/s at 29 records per fdatasync: t_gather ~120 us, not 40.
 *   Syncs never overlap (one at a time, under log_lock): a writeback error
 *   is reported by Linux to ONE fdatasync of the file description
 *   (errseq), so overlapping syncs could let a later one return 0 for a
 *   page whose error an earlier one swallowed.  Serial syncs see every
 *   error, and the first one fails the log.
 *
 * SEGMENT SIZES (defect 6): the first segment of an open is
 *   min(1 MiB, segment_bytes); each rotation doubles the size when the
 *   segment just left filled within SEG_GROW_NS (1 s), up to
 *   segment_bytes, and keeps it otherwise.  A tiny store stays tiny; a fast
 *   writer reaches segment_bytes after a few rotations.  Every segment's
 *   header states its own size and recovery honours it.
 *
 * BYTES (defect 5): st_bytes counts record bytes (128 per record; headers
 *   and the zero fill excluded) from the seed opt.live_bytes, which the
 *   store sets to what recovery found after its checkpoint: wal_stats.bytes
 *   is the live log since open, including the unreplayed part on disk.
 *
 * INVARIANTS
 *   W1  written_lsn: every record <= written_lsn was handed to pwrite with
 *       success, in LSN order, at offset 128 * (lsn - seg_first + 1) of the
 *       segment seg_first names.  Only a log_lock holder writes.
 *   W2  durable_lsn <= written_lsn, and durable_lsn is raised only by a
 *       log_lock holder, only after an fdatasync that began after every
 *       record <= the new value was written (rotation syncs the old
 *       segment before leaving it) and that returned 0.  So a waiter
 *       released by durable_lsn >= lsn is never released before an
 *       fdatasync covering lsn has completed; no timer ever raises it (the
 *       flusher's interval and GATHER's deadline only START syncs).
 *   W3  failed is set at most once (by a log_lock holder, or by wal_open);
 *       after it, durable_lsn never moves, the ring is failed (producers
 *       get RING_FAILED), and every waiter is woken and returns the
 *       failure's code.  A failed write or sync is never retried: no
 *       log_lock holder writes or syncs once failed is set.
 *   W4  The segment list (seg_first[]) is sorted; its last entry is the
 *       current segment.
 *   W5  At most one committer leads at a time (`leading`, CAS); a
 *       thread in wal_wait either leads, or sleeps on wake_seq while
 *       another leads, or returns: when a leader finishes it clears
 *       `leading` and wakes every waiter, so a waiter whose record was not covered
 *       always finds either a new leader or the role free.
 *
 * ATOMIC FIELDS
 *   durable_lsn  every record <= it is on stable storage.  Stored (release)
 *                by a log_lock holder after its fdatasync returned 0;
 *                loaded with acquire by waiters (pairs with that store: a
 *                waiter that sees its LSN durable also sees everything the
 *                syncing thread did before).
 *   failed       0 or the sticky error; stored once (release) after
 *                failure[] is written; loaded with acquire.
 *   closing      set by wal_close (release), read by the flusher (acquire).
 *   sync_interval_ms  the flusher's sync interval (wal_set_sync_interval,
 *                a retune of the store); relaxed: a setting that carries
 *                no other data.  The setter kicks the ring afterwards and
 *                the flusher reads ring_kicks before it reads the interval,
 *                so a sleep chosen with the old value ends at the kick.
 *   last_sync_ns, written_hint  written by log_lock holders; the flusher
 *                reads them without the lock to choose its sleep (relaxed: a stale value only shortens or
 *                lengthens one sleep, the sync itself is decided under the
 *                lock).
 *   st_*         statistics, relaxed.
 *
 * LINEARIZATION POINTS
 *   append: the ring's fetch_add (LSN order).  durability of lsn: the
 *   store of durable_lsn >= lsn (after the covering fdatasync returned).
 *   failure: the store of failed.
 *
 * PROGRESS: appends are wait-free unless the ring is full (then they block
 * on a drainer).  wal_wait waits for an fdatasync (its own or the current
 * leader's).  A leader never blocks on log_lock: it only tries it, and
 * while the flusher holds it (back-to-back drains under backpressure; a
 * mutex is not fair, so a blocked leader could starve) the flusher sees
 * `leading` and syncs for it; the leader returns once durable_lsn covers
 * its record.  A drainer blocks on unpublished records (a producer between
 * reserve and put).
 *
 * WAKE-UPS
 *   producer -> flusher: only when the flusher sleeps eagerly (nothing
 *   pending) or the ring passes half full (ring.c SLEEP/WAKE); close and
 *   failure kick it (ring_kick: seq_cst RMW; the flusher reads ring_kicks
 *   before it reads closing and passes the value to ring_wait_spsc).
 *   leader -> waiters (no mutex, so woken waiters do not queue on one):
 *     leader:  durable_lsn = x (release); leading = 0 (seq_cst);
 *              wake_seq++ (seq_cst); if waiters (seq_cst load): futex
 *              wake all on wake_seq
 *     waiter:  waiters++ (seq_cst); s = wake_seq (seq_cst); if durable_lsn
 *              < lsn and !failed and leading (seq_cst loads):
 *              futex_wait(wake_seq, s)
 *   A Dekker pair in the single total order of the seq_cst accesses:
 *   either the waiter's load of wake_seq follows the leader's increment
 *   (then its loads of durable_lsn / leading follow the leader's stores:
 *   it returns or takes the role instead of sleeping), or it precedes it
 *   (then the leader's load of waiters follows the waiter's increment and
 *   it wakes; a futex_wait not yet asleep sees wake_seq != s and returns
 *   at once).  The flusher's syncs and wal_fail bump wake_seq the same
 *   way.  futex_wait has a 100 ms timeout as a second line of defence; a
 *   timeout only re-checks durable_lsn, it never acknowledges.
 */
#include "log/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log/io.h"
#include "log/ring.h"
#include "util/check.h"

_Static_assert(sizeof(struct wal_rec) <= RING_SLOT_SIZE, "wal_rec fits a slot");

#define BATCH_RECS 8192u                 /* 1 MiB per pwrite at most */
#define SEG_FIRST_BYTES (1ull << 20)     /* first segment of an open */
#define SEG_GROW_NS 1000000000ull        /* filled within 1 s: double */
#define GATHER_MAX_NS 200000ull          /* GATHER never waits longer */
#define FLUSH_WRITE_NS 1000000ull        /* the flusher writes records
					    published this long ago */
#define FLUSH_IDLE_NS 50000000ull        /* no reservation for 50 ms: the
					    flusher sleeps until a publish */

struct wal {
	/* Synchronization: immutable after wal_open. */
	ring_t *ring;
	uint64_t base; /* LSN of ticket 0 */
	const struct log_io *io;
	int dir_fd; /* borrowed */
	struct wal_options opt; /* opt.sync_interval_ms: the value at open;
				   the flusher reads sync_interval_ms */
	pthread_t flusher;

	/* Synchronization: log_lock (wal_open before the flusher starts,
	 * wal_close after it joined). */
	pthread_mutex_t log_lock;
	int seg_fd;
	uint64_t seg_first; /* first LSN of the current segment */
	uint64_t seg_recs;  /* record capacity of the current segment */
	uint64_t seg_bytes; /* its size */
	uint64_t seg_born;  /* CLOCK_MONOTONIC when it was created/opened */
	uint64_t written_lsn;
	uint64_t last_wall;
	uint32_t hseq;
	uint8_t *buf;       /* BATCH_RECS * 128 */
	uint64_t gather_target; /* size of the last group (records) */
	uint64_t sync_ewma_ns;  /* recent fdatasync time */

	/* Synchronization: atomic (see ATOMIC FIELDS). */
	_Atomic uint64_t durable_lsn;
	_Atomic uint64_t written_hint; /* written_lsn, for the flusher's sleep */
	_Atomic uint64_t last_sync_ns; /* CLOCK_MONOTONIC */
	_Atomic int failed;            /* 0 or CIDSTORE_EIO/ENOSPC; set once */
	_Atomic bool closing;
	_Atomic uint32_t sync_interval_ms; /* wal_set_sync_interval; never 0 */
	_Atomic uint64_t st_bytes, st_fsyncs, st_records; /* statistics */
	/* metrics of flush_sync (wal_metrics): written by log_lock holders */
	_Atomic uint64_t st_group[WAL_GROUP_BUCKETS], st_group_records;
	_Atomic uint64_t st_sync_hist[LH_BUCKETS], st_sync_ns;

	/* Synchronization: written once by the failing thread before it
	 * stores failed (release); read after an acquire load of failed. */
	char failure[160];

	/* Synchronization: atomic (see WAKE-UPS). */
	_Atomic uint32_t leading;  /* W5: 1 while a committer leads */
	_Atomic uint32_t wake_seq; /* futex word waiters sleep on */
	_Atomic uint32_t waiters;  /* threads that may sleep on it */

	/* Synchronization: seg_lock (a log_lock holder appends, the trimmer
	 * removes). */
	pthread_mutex_t seg_lock;
	uint64_t *segs;
	size_t nsegs, segs_cap;
};

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void futex_wait32(_Atomic uint32_t *a, uint32_t val, int timeout_ms)
{
	struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
	syscall(SYS_futex, (uint32_t *)a, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

/* Wakes every thread sleeping in wal_wait so it re-checks (see WAKE-UPS).
 * Called after durable_lsn, failed or leading changed. */
static void wake_waiters(wal_t *w)
{
	/* seq_cst RMW and load: the waker half of the Dekker pair. */
	atomic_fetch_add_explicit(&w->wake_seq, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&w->waiters, memory_order_seq_cst))
		syscall(SYS_futex, (uint32_t *)&w->wake_seq, FUTEX_WAKE_PRIVATE, INT_MAX,
			NULL, NULL, 0);
}

/* Makes the log failed (W3) with error code err (CIDSTORE_EIO, or what the
 * failed call's errno says: CIDSTORE_ENOSPC, ...).  Called with log_lock
 * held (or by wal_open). */
static void wal_fail(wal_t *w, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void wal_fail(wal_t *w, int err, const char *fmt, ...)
{
	CS_ASSERT(err < 0);
	/* relaxed: only a log_lock holder fails the log, so no race on the
	 * text. */
	if (atomic_load_explicit(&w->failed, memory_order_relaxed))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->failure, sizeof w->failure, fmt, ap);
	va_end(ap);
	/* release: pairs with the acquire loads in wal_failure / wal_error /
	 * wal_wait, publishing failure[]. */
	atomic_store_explicit(&w->failed, err, memory_order_release);
	ring_fail(w->ring, err);
	wake_waiters(w);
}

static int seg_list_add(wal_t *w, uint64_t first)
{
	pthread_mutex_lock(&w->seg_lock);
	if (w->nsegs == w->segs_cap) {
		size_t cap = w->segs_cap ? 2 * w->segs_cap : 16;
		uint64_t *n = realloc(w->segs, cap * sizeof *n);
		if (!n) {
			pthread_mutex_unlock(&w->seg_lock);
			return CIDSTORE_ENOMEM;
		}
		w->segs = n;
		w->segs_cap = cap;
	}
	size_t i = w->nsegs++;
	while (i > 0 && w->segs[i - 1] > first) { /* keep sorted (W4) */
		w->segs[i] = w->segs[i - 1];
		i--;
	}
	w->segs[i] = first;
	/* W4: sorted; the current segment is the last entry */
	for (size_t j = 1; cs_debug_checks && j < w->nsegs; j++)
		CS_DEBUG_ASSERT(w->segs[j - 1] < w->segs[j]);
	pthread_mutex_unlock(&w->seg_lock);
	return 0;
}

/* fdatasync of the current segment; raises durable_lsn to written_lsn.
 * With wake, wakes sleeping waiters (the flusher; a leader wakes
 * them itself when it gives up the role).  Caller holds log_lock.
 * Returns 0 or -1 (log failed). */
static int flush_sync(wal_t *w, bool wake)
{
	uint64_t upto = w->written_lsn; /* everything here was written (W1) */
	/* relaxed: durable_lsn is written only under log_lock, which we hold */
	uint64_t before = atomic_load_explicit(&w->durable_lsn, memory_order_relaxed);
	/* W2: durable_lsn only follows written_lsn */
	CS_ASSERT(before <= upto);
	/* W3: nothing is written or synced after a failure */
	CS_ASSERT(!atomic_load_explicit(&w->failed, memory_order_relaxed));
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	if (w->io->fdatasync(w->io->ctx, w->seg_fd) != 0) {
		int e = errno;
		char name[WAL_SEG_NAME_LEN + 1];
		rec_seg_name(name, w->seg_first);
		wal_fail(w, io_errcode(e),
			 "fdatasync of %s failed: %s (records up to LSN %llu may be lost; not retried)",
			 name, strerror(e), (unsigned long long)upto);
		return -1;
	}
	uint64_t t1 = now_ns(CLOCK_MONOTONIC);
	w->sync_ewma_ns = w->sync_ewma_ns ? (3 * w->sync_ewma_ns + (t1 - t0)) / 4 : t1 - t0;
	/* relaxed: statistic / the flusher's sleep hint (see ATOMIC FIELDS). */
	atomic_fetch_add_explicit(&w->st_fsyncs, 1, memory_order_relaxed);
	/* relaxed: metrics, one RMW each per fdatasync (tens of us), by the
	 * log_lock holder only: no contended line */
	atomic_fetch_add_explicit(&w->st_group[wal_group_bucket(upto - before)], 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&w->st_group_records, upto - before, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->st_sync_hist[lh_bucket(t1 - t0)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->st_sync_ns, t1 - t0, memory_order_relaxed);
	atomic_store_explicit(&w->last_sync_ns, t1, memory_order_relaxed);
	/* release: pairs with the acquire loads in wal_wait (W2).  The
	 * linearization point of the durability of every LSN <= upto. */
	atomic_store_explicit(&w->durable_lsn, upto, memory_order_release);
	if (wake)
		wake_waiters(w);
	return 0;
}

/* Creates, preallocates, zero-fills and syncs segment `first`, writes its
 * header, makes the directory entry durable.  Returns fd or -1 (errno). */
static int seg_create(wal_t *w, uint64_t first, uint64_t bytes, const char **what)
{
	const struct log_io *io = w->io;
	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, first);
	int fd = io->open(io->ctx, w->dir_fd, name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		*what = "create";
		return -1;
	}
	int rc = io_prezero(io, fd, 0, (off_t)bytes);
	if (rc) {
		errno = -rc;
		*what = "preallocate/zero-fill";
		goto fail;
	}
	struct wal_rec h;
	uint8_t rec[WAL_REC_SIZE];
	rec_seg_header(&h, first, bytes, now_ns(CLOCK_REALTIME));
	h.shard = w->opt.shard;
	rec_encode(rec, &h);
	rc = io_pwrite_all(io, fd, rec, sizeof rec, 0);
	if (rc) {
		errno = -rc;
		*what = "write header of";
		goto fail;
	}
	if (io->fdatasync(io->ctx, fd) != 0) {
		*what = "fdatasync new";
		goto fail;
	}
	atomic_fetch_add_explicit(&w->st_fsyncs, 1, memory_order_relaxed);
	if (io->fsync_dir(io->ctx, w->dir_fd) != 0) {
		*what = "fsync directory after creating";
		goto fail;
	}
	return fd;
fail:;
	int e = errno;
	io->close(io->ctx, fd);
	errno = e;
	return -1;
}

/* Makes segment `first` of `bytes` the current one (log_lock held). */
static void seg_enter(wal_t *w, int fd, uint64_t first, uint64_t bytes)
{
	w->seg_fd = fd;
	w->seg_first = first;
	w->seg_bytes = bytes;
	w->seg_recs = bytes / WAL_REC_SIZE - 1;
	w->seg_born = now_ns(CLOCK_MONOTONIC);
}

/* The size of the segment after the current one (SEGMENT SIZES). */
static uint64_t next_seg_bytes(const wal_t *w)
{
	uint64_t b = w->seg_bytes;
	if (now_ns(CLOCK_MONOTONIC) - w->seg_born < SEG_GROW_NS && b < w->opt.segment_bytes)
		b = b > w->opt.segment_bytes / 2 ? w->opt.segment_bytes : 2 * b;
	if (b > w->opt.segment_bytes) /* segment_bytes lowered since (reopen) */
		b = w->opt.segment_bytes;
	return b;
}

/* Leaves the full current segment: syncs it (W2), opens the next one.
 * log_lock held. */
static int rotate(wal_t *w)
{
	if (w->written_lsn > atomic_load_explicit(&w->durable_lsn, memory_order_relaxed) &&
	    flush_sync(w, true))
		return -1;
	uint64_t bytes = next_seg_bytes(w);
	w->io->close(w->io->ctx, w->seg_fd);
	w->seg_fd = -1;
	uint64_t first = w->written_lsn + 1;
	const char *what = "";
	int fd = seg_create(w, first, bytes, &what);
	if (fd < 0) {
		int e = errno;
		char name[WAL_SEG_NAME_LEN + 1];
		rec_seg_name(name, first);
		wal_fail(w, io_errcode(e), "%s segment %s failed: %s", what, name, strerror(e));
		return -1;
	}
	seg_enter(w, fd, first, bytes);
	if (seg_list_add(w, first)) {
		wal_fail(w, CIDSTORE_EIO, "out of memory tracking segments");
		return -1;
	}
	return 0;
}

/* Drains one batch (log_lock held): returns records written (0: none
 * published), -1 on failure. */
static long drain(wal_t *w)
{
	uint64_t used = w->written_lsn + 1 - w->seg_first; /* records in segment */
	if (used >= w->seg_recs) {
		uint64_t first;
		if (ring_peek_spsc(w->ring, &first, 1) == 0)
			return 0; /* rotate only when there is something to write */
		if (rotate(w))
			return -1;
		used = 0;
	}
	uint64_t room = w->seg_recs - used;
	uint32_t max = room < BATCH_RECS ? (uint32_t)room : BATCH_RECS;
	uint64_t first;
	uint32_t n = ring_peek_spsc(w->ring, &first, max);
	if (n == 0)
		return 0;
	/* W1: the batch continues the log in LSN order and fits the segment */
	CS_ASSERT(w->base + first == w->written_lsn + 1);
	CS_ASSERT(used + n <= w->seg_recs);
	uint64_t now = now_ns(CLOCK_REALTIME);
	if (now > w->last_wall) { /* hybrid time: monotonic per log */
		w->last_wall = now;
		w->hseq = 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct wal_rec r;
		memcpy(&r, ring_slot(w->ring, first + i), sizeof r);
		if (w->hseq == UINT32_MAX) {
			w->last_wall++;
			w->hseq = 0;
		}
		r.shard = w->opt.shard;
		r.wall_ns = w->last_wall;
		r.seq = w->hseq++;
		rec_encode(w->buf + (size_t)i * WAL_REC_SIZE, &r);
	}
	/* the bytes are copied: free the slots before the (slow) write */
	ring_release_spsc(w->ring, n);
	off_t off = (off_t)((used + 1) * WAL_REC_SIZE);
	int rc = io_pwrite_all(w->io, w->seg_fd, w->buf, (size_t)n * WAL_REC_SIZE, off);
	if (rc) {
		char name[WAL_SEG_NAME_LEN + 1];
		rec_seg_name(name, w->seg_first);
		wal_fail(w, io_errcode(-rc), "write of %u records (LSN %llu..) to %s failed: %s", n,
			 (unsigned long long)(w->written_lsn + 1), name, strerror(-rc));
		return -1;
	}
	w->written_lsn += n;
	atomic_store_explicit(&w->written_hint, w->written_lsn, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->st_records, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->st_bytes, (uint64_t)n * WAL_REC_SIZE,
				  memory_order_relaxed);
	return n;
}

/* Drains everything published (log_lock held).  Returns records written or
 * -1 (log failed). */
static long drain_all(wal_t *w)
{
	long total = 0;
	for (;;) {
		long n = drain(w);
		if (n < 0)
			return -1;
		if (n == 0)
			return total;
		total += n;
	}
}

/* GATHER (see the top): wait, yielding, until gather_target records are
 * published and unwritten or the deadline passes.  log_lock held. */
static void gather(wal_t *w)
{
	uint64_t target = w->gather_target;
	if (target <= 1)
		return;
	if (target > ring_capacity(w->ring) / 2)
		target = ring_capacity(w->ring) / 2;
	uint64_t budget = w->sync_ewma_ns / 2;
	if (budget > GATHER_MAX_NS)
		budget = GATHER_MAX_NS;
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	for (;;) {
		uint64_t first;
		uint32_t n = ring_peek_spsc(w->ring, &first, (uint32_t)target);
		if (n >= target)
			return;
		if (now_ns(CLOCK_MONOTONIC) - t0 >= budget) {
			w->gather_target = n; /* fewer came: expect fewer */
			return;
		}
		sched_yield();
	}
}

/* The leader's work (log_lock NOT held on entry): make lsn durable with
 * one fdatasync covering everything published by then. */
static void lead(wal_t *w, uint64_t lsn)
{
	/* The flusher may hold log_lock for back-to-back drains while
	 * producers keep the ring at its watermark, and a mutex is not fair:
	 * a leader blocked in pthread_mutex_lock could starve.  So the leader
	 * only tries the lock; while the flusher holds it, the flusher sees
	 * `leading` and syncs for us (flusher_main), and we return as soon as
	 * durable_lsn covers lsn.  acquire loads: pair with flush_sync's
	 * release store of durable_lsn and wal_fail's of failed. */
	while (pthread_mutex_trylock(&w->log_lock) != 0) {
		if (atomic_load_explicit(&w->durable_lsn, memory_order_acquire) >= lsn ||
		    atomic_load_explicit(&w->failed, memory_order_acquire))
			return;
		sched_yield();
	}
	if (atomic_load_explicit(&w->durable_lsn, memory_order_acquire) >= lsn ||
	    atomic_load_explicit(&w->failed, memory_order_acquire)) {
		pthread_mutex_unlock(&w->log_lock);
		return;
	}
	gather(w);
	unsigned spins = 0;
	while (w->written_lsn < lsn) {
		long n = drain_all(w);
		if (n < 0)
			goto out;
		if (n == 0) { /* a producer between reserve and publish */
			if (++spins > 64)
				sched_yield();
		}
	}
	uint64_t before = atomic_load_explicit(&w->durable_lsn, memory_order_relaxed);
	if (flush_sync(w, false) == 0)
		w->gather_target = w->written_lsn - before;
out:
	pthread_mutex_unlock(&w->log_lock);
}

static void *flusher_main(void *arg)
{
	wal_t *w = arg;
	const uint32_t pressure = ring_capacity(w->ring) / 2;
	uint64_t seen_since = 0; /* when we first saw published records unwritten */
	uint64_t last_head = ring_reserved(w->ring), active_at = 0;
	for (;;) {
		/* read kicks before closing and the ring (see WAKE-UPS) */
		uint32_t kicks = ring_kicks(w->ring);
		/* acquire: pairs with the release store in wal_close. */
		bool closing = atomic_load_explicit(&w->closing, memory_order_acquire);
		/* relaxed: a setting; the kick that follows a change makes the
		 * flusher look again (it read kicks above). */
		const uint64_t interval = (uint64_t)atomic_load_explicit(
			&w->sync_interval_ms, memory_order_relaxed) * 1000000ull;
		uint32_t published = ring_published(w->ring, pressure);
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		if (published == 0)
			seen_since = 0;
		else if (seen_since == 0)
			seen_since = now;
		/* relaxed: hints (see ATOMIC FIELDS); the decision to sync is
		 * taken again under log_lock. */
		uint64_t last = atomic_load_explicit(&w->last_sync_ns, memory_order_relaxed);
		bool unsynced = atomic_load_explicit(&w->written_hint, memory_order_relaxed) >
				atomic_load_explicit(&w->durable_lsn, memory_order_relaxed);
		bool sync_due = now - last >= interval;
		bool write_due = published > 0 && now - seen_since >= FLUSH_WRITE_NS;
		if (closing || published >= pressure || write_due ||
		    (sync_due && (published > 0 || unsynced))) {
			pthread_mutex_lock(&w->log_lock);
			if (atomic_load_explicit(&w->failed, memory_order_acquire) ||
			    drain_all(w) < 0) {
				pthread_mutex_unlock(&w->log_lock);
				return NULL;
			}
			seen_since = 0;
			now = now_ns(CLOCK_MONOTONIC);
			last = atomic_load_explicit(&w->last_sync_ns, memory_order_relaxed);
			unsynced = w->written_lsn >
				   atomic_load_explicit(&w->durable_lsn, memory_order_relaxed);
			/* a committer waiting for the lock we hold (see lead):
			 * sync for it.  relaxed: a hint; a stale 0 only leaves
			 * the sync to the committer once it has the lock. */
			bool committer = atomic_load_explicit(&w->leading, memory_order_relaxed) != 0;
			if (unsynced && (closing || committer || now - last >= interval)) {
				if (flush_sync(w, true)) {
					pthread_mutex_unlock(&w->log_lock);
					return NULL;
				}
				unsynced = false;
			}
			bool done = closing && !unsynced &&
				    w->base + ring_reserved(w->ring) - 1 == w->written_lsn;
			pthread_mutex_unlock(&w->log_lock);
			if (done)
				return NULL; /* everything appended is written and synced */
			if (closing) {
				sched_yield(); /* a producer between reserve and put */
				continue;
			}
			continue; /* look again: more may have come meanwhile */
		}
		/* nothing published: sleep until a publish (eager) or the sync
		 * of written records is due; published records waiting: until
		 * their write or sync is due (lazy: publishing does not wake
		 * us, the half-full watermark and kicks do). */
		/* While producers are active (a reservation within the last
		 * FLUSH_IDLE_NS) we poll every ms instead of sleeping eagerly,
		 * so no producer pays a futex wake for us. */
		uint64_t head = ring_reserved(w->ring);
		if (head != last_head) {
			last_head = head;
			active_at = now;
		}
		bool eager = published == 0 && now - active_at >= FLUSH_IDLE_NS;
		int timeout = published == 0 && !eager ? 1 : 1000;
		if (published > 0 || unsynced) {
			uint64_t left = now - last >= interval ? 0 : interval - (now - last);
			if (published > 0 && seen_since + FLUSH_WRITE_NS - now < left)
				left = seen_since + FLUSH_WRITE_NS - now;
			if (left < 1000000000ull && (int)(left / 1000000ull) + 1 < timeout)
				timeout = (int)(left / 1000000ull) + 1;
		}
		if (ring_wait_spsc(w->ring, timeout, kicks, eager) != 0)
			return NULL; /* ring failed: only wal_fail does that */
	}
}

/* ---- open: continue where recovery found the log to end ---- */

static int list_segments(wal_t *w)
{
	int fd = fcntl(w->dir_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return CIDSTORE_EIO;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return CIDSTORE_EIO;
	}
	rewinddir(d);
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d)) != NULL) {
		uint64_t first;
		if (rec_seg_parse(de->d_name, &first) == 0 && (rc = seg_list_add(w, first)))
			break;
	}
	closedir(d);
	return rc;
}

/* Appends to the segment recovery ended in (tail), after record
 * next_lsn - 1, without reading it: recovery validated every record up to
 * there and left only zeros after it (it cuts a torn tail). */
static int seg_continue(wal_t *w, const struct wal_tail *tail, uint64_t next_lsn)
{
	const struct log_io *io = w->io;
	char name[WAL_SEG_NAME_LEN + 1];
	rec_seg_name(name, tail->seg_first);
	int fd = io->open(io->ctx, w->dir_fd, name, O_RDWR, 0);
	if (fd < 0) {
		int e = errno;
		wal_fail(w, io_errcode(e), "open %s: %s", name, strerror(e));
		return io_errcode(e);
	}
	seg_enter(w, fd, tail->seg_first, tail->seg_bytes);
	/* W1 at open: the record before next_lsn is inside this segment. */
	CS_ASSERT(next_lsn - w->seg_first <= w->seg_recs);
	return 0;
}

static int wal_start(wal_t *w, uint64_t next_lsn, const struct wal_tail *tail)
{
	int rc = list_segments(w);
	if (rc)
		return rc;
	/* delete segments that start after the end of the valid log (a
	 * segment recovery did not reach; none after a successful recovery) */
	bool deleted = false;
	uint64_t keep_below = tail ? next_lsn : next_lsn + 1;
	while (w->nsegs > 0 && w->segs[w->nsegs - 1] >= keep_below &&
	       !(tail && w->segs[w->nsegs - 1] == tail->seg_first)) {
		char name[WAL_SEG_NAME_LEN + 1];
		rec_seg_name(name, w->segs[w->nsegs - 1]);
		if (w->io->unlink(w->io->ctx, w->dir_fd, name) != 0 && errno != ENOENT)
			return io_errcode(errno);
		w->nsegs--;
		deleted = true;
	}
	if (deleted && w->io->fsync_dir(w->io->ctx, w->dir_fd) != 0)
		return io_errcode(errno);
	if (tail)
		return seg_continue(w, tail, next_lsn);
	if (w->nsegs > 0 && w->segs[w->nsegs - 1] == next_lsn)
		w->nsegs--; /* recreated below (O_TRUNC) */
	const char *what = "";
	uint64_t bytes = w->opt.segment_bytes < SEG_FIRST_BYTES ? w->opt.segment_bytes
								 : SEG_FIRST_BYTES;
	int fd = seg_create(w, next_lsn, bytes, &what);
	if (fd < 0) {
		int e = errno;
		char name[WAL_SEG_NAME_LEN + 1];
		rec_seg_name(name, next_lsn);
		wal_fail(w, io_errcode(e), "%s segment %s failed: %s", what, name, strerror(e));
		return io_errcode(e);
	}
	seg_enter(w, fd, next_lsn, bytes);
	return seg_list_add(w, next_lsn);
}

int wal_open(int dir_fd, const struct wal_options *o, uint64_t next_lsn,
	     const struct wal_tail *tail, const struct log_io *io, wal_t **out)
{
	if (!o || !out || dir_fd < 0 || next_lsn == 0 || next_lsn == UINT64_MAX)
		return CIDSTORE_EINVAL;
	if (tail && (tail->seg_first == 0 || tail->seg_first > next_lsn ||
		     tail->seg_bytes % WAL_REC_SIZE || tail->seg_bytes < 2 * WAL_REC_SIZE ||
		     next_lsn - tail->seg_first > tail->seg_bytes / WAL_REC_SIZE - 1))
		return CIDSTORE_EINVAL;
	struct wal_options opt = *o;
	if (!opt.ring_records)
		opt.ring_records = 65536;
	if (!opt.sync_interval_ms)
		opt.sync_interval_ms = 10;
	if (!opt.segment_bytes)
		opt.segment_bytes = 64ull << 20;
	if (opt.segment_bytes % WAL_REC_SIZE || opt.segment_bytes < 4096 ||
	    (opt.ring_records & (opt.ring_records - 1)) || opt.ring_records < 2)
		return CIDSTORE_EINVAL;
	wal_t *w = calloc(1, sizeof *w);
	if (!w)
		return CIDSTORE_ENOMEM;
	w->opt = opt;
	w->io = io_or_posix(io);
	w->dir_fd = dir_fd;
	w->base = next_lsn;
	w->written_lsn = next_lsn - 1;
	w->seg_fd = -1;
	atomic_init(&w->durable_lsn, next_lsn - 1);
	atomic_init(&w->written_hint, next_lsn - 1);
	atomic_init(&w->last_sync_ns, 0);
	atomic_init(&w->failed, 0);
	atomic_init(&w->closing, false);
	atomic_init(&w->sync_interval_ms, opt.sync_interval_ms);
	atomic_init(&w->st_bytes, opt.live_bytes);
	atomic_init(&w->st_fsyncs, 0);
	atomic_init(&w->st_records, 0);
	pthread_mutex_init(&w->log_lock, NULL);
	atomic_init(&w->leading, 0);
	atomic_init(&w->wake_seq, 0);
	atomic_init(&w->waiters, 0);
	pthread_mutex_init(&w->seg_lock, NULL);
	int rc = ring_create(opt.ring_records, &w->ring);
	if (rc == 0) {
		w->buf = malloc((size_t)BATCH_RECS * WAL_REC_SIZE);
		rc = w->buf ? 0 : CIDSTORE_ENOMEM;
	}
	if (rc == 0)
		rc = wal_start(w, next_lsn, tail);
	if (rc == 0) {
		atomic_store_explicit(&w->last_sync_ns, now_ns(CLOCK_MONOTONIC),
				      memory_order_relaxed);
		if (pthread_create(&w->flusher, NULL, flusher_main, w) != 0)
			rc = CIDSTORE_ENOMEM;
	}
	if (rc) {
		if (w->seg_fd >= 0)
			w->io->close(w->io->ctx, w->seg_fd);
		ring_destroy(w->ring);
		free(w->buf);
		free(w->segs);
		pthread_mutex_destroy(&w->seg_lock);
		pthread_mutex_destroy(&w->log_lock);
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* ---- producers ---- */

static inline void fill(wal_t *w, uint64_t lsn, int opcode, uint8_t flags,
			const cid_t *key, const cid_t *val, uint64_t txn)
{
	struct wal_rec *r = ring_slot(w->ring, lsn - w->base);
	r->version = WAL_FORMAT_VERSION;
	r->opcode = (uint8_t)opcode;
	r->flags = flags;
	r->lsn = lsn;
	if (key)
		r->key = *key;
	else
		memset(&r->key, 0, sizeof r->key);
	if (val)
		r->val = *val;
	else
		memset(&r->val, 0, sizeof r->val);
	r->txn = txn;
	/* shard, seq, wall_ns: stamped by the flusher */
}

int wal_append(wal_t *w, int opcode, const cid_t *key, const cid_t *val,
	       uint64_t txn, uint64_t *lsn)
{
	if (!w || opcode < 1 || opcode > WAL_OP_MAX || opcode == WAL_OP_SEGMENT_HEADER)
		return CIDSTORE_EINVAL;
	/* acquire: pairs with the release store in wal_fail. */
	int err = atomic_load_explicit(&w->failed, memory_order_acquire);
	if (err)
		return err;
	uint64_t t = ring_reserve_mpsc(w->ring, 1);
	if (t == RING_FAILED)
		return wal_error(w);
	uint64_t l = w->base + t;
	fill(w, l, opcode, txn ? WAL_FLAG_TXN : 0, key, val, txn);
	ring_publish_mpsc(w->ring, t);
	if (lsn)
		*lsn = l;
	return 0;
}

int wal_reserve(wal_t *w, uint32_t n, uint64_t *first_lsn)
{
	if (!w || !first_lsn || n == 0)
		return CIDSTORE_EINVAL;
	if (n > ring_capacity(w->ring))
		return CIDSTORE_ERANGE;
	int err = atomic_load_explicit(&w->failed, memory_order_acquire);
	if (err)
		return err;
	uint64_t t = ring_reserve_mpsc(w->ring, n);
	if (t == RING_FAILED)
		return wal_error(w);
	*first_lsn = w->base + t;
	return 0;
}

void wal_put(wal_t *w, uint64_t lsn, int opcode, uint8_t flags,
	     const cid_t *key, const cid_t *val, uint64_t txn)
{
	fill(w, lsn, opcode, flags, key, val, txn);
	ring_publish_mpsc(w->ring, lsn - w->base);
}

/* ---- waiters ---- */

int wal_wait(wal_t *w, uint64_t lsn)
{
	if (!w)
		return CIDSTORE_EINVAL;
	if (lsn >= w->base + ring_reserved(w->ring) &&
	    atomic_load_explicit(&w->durable_lsn, memory_order_relaxed) < lsn)
		return CIDSTORE_EINVAL; /* never handed out */
	for (;;) {
		/* acquire: pairs with flush_sync's release store (W2) */
		if (atomic_load_explicit(&w->durable_lsn, memory_order_acquire) >= lsn)
			return 0;
		/* acquire: pairs with wal_fail's release store */
		int err = atomic_load_explicit(&w->failed, memory_order_acquire);
		if (err)
			return err;
		uint32_t idle = 0;
		/* seq_cst CAS: W5; the relaxed load first keeps a waiting crowd
		 * from bouncing the line with failed CASes. */
		if (atomic_load_explicit(&w->leading, memory_order_relaxed) == 0 &&
		    atomic_compare_exchange_strong_explicit(&w->leading, &idle, 1,
							    memory_order_seq_cst,
							    memory_order_relaxed)) {
			lead(w, lsn);
			/* seq_cst: the waker half of WAKE-UPS */
			atomic_store_explicit(&w->leading, 0, memory_order_seq_cst);
			wake_waiters(w);
			continue;
		}
		/* seq_cst: the waiter half of the Dekker pair (WAKE-UPS) */
		atomic_fetch_add_explicit(&w->waiters, 1, memory_order_seq_cst);
		uint32_t seen = atomic_load_explicit(&w->wake_seq, memory_order_seq_cst);
		if (atomic_load_explicit(&w->durable_lsn, memory_order_seq_cst) < lsn &&
		    !atomic_load_explicit(&w->failed, memory_order_seq_cst) &&
		    atomic_load_explicit(&w->leading, memory_order_seq_cst))
			futex_wait32(&w->wake_seq, seen, 100);
		/* relaxed: only decides whether a waker bothers to wake */
		atomic_fetch_sub_explicit(&w->waiters, 1, memory_order_relaxed);
	}
}

int wal_sync(wal_t *w)
{
	if (!w)
		return CIDSTORE_EINVAL;
	uint64_t last = w->base + ring_reserved(w->ring) - 1;
	return wal_wait(w, last);
}

int wal_close(wal_t *w)
{
	if (!w)
		return CIDSTORE_EINVAL;
	/* release: pairs with the flusher's acquire load. */
	atomic_store_explicit(&w->closing, true, memory_order_release);
	ring_kick(w->ring);
	pthread_join(w->flusher, NULL);
	int rc = atomic_load_explicit(&w->failed, memory_order_acquire);
	/* the flusher leaves only when everything appended is written and
	 * synced (W1, W2), or the log failed (W3) */
	CS_ASSERT(rc != 0 || (w->written_lsn == w->base + ring_reserved(w->ring) - 1 &&
			      atomic_load_explicit(&w->durable_lsn, memory_order_relaxed) ==
				      w->written_lsn));
	if (w->seg_fd >= 0 && w->io->close(w->io->ctx, w->seg_fd) != 0 && !rc)
		rc = CIDSTORE_EIO;
	ring_destroy(w->ring);
	free(w->buf);
	free(w->segs);
	pthread_mutex_destroy(&w->seg_lock);
	pthread_mutex_destroy(&w->log_lock);
	free(w);
	return rc;
}

/* ---- inspection, trimming ---- */

void wal_set_sync_interval(wal_t *w, uint32_t ms)
{
	atomic_store_explicit(&w->sync_interval_ms, ms ? ms : 10, memory_order_relaxed);
	/* The flusher may sleep for up to the old interval: wake it so it
	 * chooses its next sleep with the new one (see ATOMIC FIELDS). */
	ring_kick(w->ring);
}

uint32_t wal_sync_interval(wal_t *w)
{
	return atomic_load_explicit(&w->sync_interval_ms, memory_order_relaxed);
}

int wal_error(wal_t *w)
{
	/* acquire: pairs with the release store in wal_fail. */
	return w ? atomic_load_explicit(&w->failed, memory_order_acquire) : CIDSTORE_EINVAL;
}

const char *wal_failure(wal_t *w)
{
	if (!w || !atomic_load_explicit(&w->failed, memory_order_acquire))
		return "";
	return w->failure;
}

uint64_t wal_next_lsn(wal_t *w)
{
	return w->base + ring_reserved(w->ring);
}

void wal_stats(wal_t *w, struct wal_stats *st)
{
	if (!w || !st)
		return;
	/* relaxed loads: statistics, no ordering promised. */
	st->lsn = w->base + ring_reserved(w->ring) - 1;
	st->durable_lsn = atomic_load_explicit(&w->durable_lsn, memory_order_relaxed);
	st->bytes = atomic_load_explicit(&w->st_bytes, memory_order_relaxed);
	st->fsyncs = atomic_load_explicit(&w->st_fsyncs, memory_order_relaxed);
	st->records = atomic_load_explicit(&w->st_records, memory_order_relaxed);
	st->failed = atomic_load_explicit(&w->failed, memory_order_relaxed) != 0;
	pthread_mutex_lock(&w->seg_lock);
	st->segments = w->nsegs;
	pthread_mutex_unlock(&w->seg_lock);
}

void wal_metrics(wal_t *w, struct wal_metrics *m)
{
	if (!w || !m)
		return;
	m->ring_used = ring_used(w->ring);
	m->ring_capacity = ring_capacity(w->ring);
	/* relaxed loads: metrics, no ordering promised */
	for (unsigned i = 0; i < WAL_GROUP_BUCKETS; i++)
		m->group_hist[i] = atomic_load_explicit(&w->st_group[i], memory_order_relaxed);
	m->group_records = atomic_load_explicit(&w->st_group_records, memory_order_relaxed);
	for (unsigned i = 0; i < LH_BUCKETS; i++)
		m->sync_hist[i] = atomic_load_explicit(&w->st_sync_hist[i], memory_order_relaxed);
	m->sync_ns = atomic_load_explicit(&w->st_sync_ns, memory_order_relaxed);
}

int wal_trim(wal_t *w, uint64_t lsn)
{
	if (!w)
		return CIDSTORE_EINVAL;
	int deleted = 0, rc = 0;
	pthread_mutex_lock(&w->seg_lock);
	/* segment 0 goes while segment 1 starts at or below lsn; the last
	 * (current) segment never goes (W4) */
	while (w->nsegs >= 2 && w->segs[1] <= lsn) {
		char name[WAL_SEG_NAME_LEN + 1];
		rec_seg_name(name, w->segs[0]);
		if (w->io->unlink(w->io->ctx, w->dir_fd, name) != 0 && errno != ENOENT) {
			rc = io_errcode(errno);
			break;
		}
		memmove(w->segs, w->segs + 1, (w->nsegs - 1) * sizeof *w->segs);
		w->nsegs--;
		deleted++;
	}
	if (deleted && w->io->fsync_dir(w->io->ctx, w->dir_fd) != 0)
		rc = CIDSTORE_EIO;
	CS_ASSERT(w->nsegs >= 1); /* W4: the current segment never goes */
	pthread_mutex_unlock(&w->seg_lock);
	return rc ? rc : deleted;
}
