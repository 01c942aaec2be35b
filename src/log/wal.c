/*
 * wal.c — WAL writer: producers -> ring -> one flusher -> segment files.
 *
 * The record and segment format, the CRC and the validity rule are at the
 * top of record.h.  This file adds the order of operations on disk and the
 * protocol between producers, waiters and the flusher.
 *
 * ROLES
 *   producer  wal_append / wal_reserve + wal_put: takes LSNs (ring tickets,
 *             LSN = base + ticket), writes a struct wal_rec into the slot,
 *             publishes.  The flusher stamps hybrid time and the CRC, so
 *             both follow LSN order and cost the producer nothing.
 *   waiter    wal_wait: raises sync_req to its LSN, kicks the flusher,
 *             sleeps on wait_cond until durable_lsn >= its LSN or failure.
 *   flusher   the only thread that touches the current segment: drains the
 *             published prefix of the ring into a batch buffer (stamping,
 *             encoding), releases the slots, pwrites the batch, and
 *             fdatasyncs when a waiter asks for it, when the sync interval
 *             passed, before rotating, and at close.
 *   trimmer   wal_trim (the checkpointer): unlinks old segments under
 *             seg_lock.
 *
 * INVARIANTS
 *   W1  written_lsn: every record <= written_lsn was handed to pwrite with
 *       success, in LSN order, at offset 128 * (lsn - seg_first + 1) of the
 *       segment seg_first names.
 *   W2  durable_lsn <= written_lsn, and durable_lsn is raised only after an
 *       fdatasync that began after every record <= the new value was
 *       written (rotation syncs the old segment before leaving it), and
 *       that returned 0.  So a waiter released by durable_lsn >= lsn is
 *       never released before an fdatasync covering lsn has completed; no
 *       timer ever raises it.
 *   W3  failed is set at most once (by the flusher, or by wal_open); after
 *       it, durable_lsn never moves, the ring is failed (producers get
 *       RING_FAILED), and every waiter is woken.  A failed write or sync is
 *       never retried.
 *   W4  The segment list (seg_first[]) is sorted; its last entry is the
 *       current segment.
 *
 * LINEARIZATION POINTS
 *   append: the ring's fetch_add (LSN order).  durability of lsn: the
 *   flusher's store of durable_lsn >= lsn.  failure: the store of failed.
 *
 * PROGRESS: appends are wait-free unless the ring is full (then they block
 * on the flusher).  wal_wait blocks on the flusher's fdatasync.  The flusher
 * blocks on unpublished records (a producer between reserve and put).
 *
 * WAKE-UPS
 *   waiter -> flusher: sync_req (seq_cst RMW) then ring_kick (seq_cst RMW);
 *   the flusher reads ring_kicks (seq_cst) BEFORE it reads sync_req and
 *   passes that value to ring_wait_spsc, so a raise it missed has a kick it
 *   cannot miss (see ring.c SLEEP/WAKE).
 *   flusher -> waiters: store durable_lsn, then lock wait_lock and
 *   broadcast; waiters check durable_lsn under wait_lock before sleeping.
 */
#include "log/wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log/io.h"
#include "log/ring.h"
#include "util/check.h"

_Static_assert(sizeof(struct wal_rec) <= RING_SLOT_SIZE, "wal_rec fits a slot");

#define BATCH_RECS 8192u /* 1 MiB per pwrite at most */

struct wal {
	/* Synchronization: immutable after wal_open. */
	ring_t *ring;
	uint64_t base; /* LSN of ticket 0 */
	const struct log_io *io;
	int dir_fd; /* borrowed */
	struct wal_options opt;
	pthread_t flusher;

	/* Synchronization: owner thread = flusher (wal_open before start,
	 * wal_close after join). */
	int seg_fd;
	uint64_t seg_first; /* first LSN of the current segment */
	uint64_t seg_recs;  /* record capacity of the current segment */
	uint64_t written_lsn;
	uint64_t last_wall;
	uint32_t hseq;
	uint64_t last_sync_ns; /* CLOCK_MONOTONIC */
	uint8_t *buf;          /* BATCH_RECS * 128 */

	/* Synchronization: atomic. */
	_Atomic uint64_t durable_lsn; /* flusher stores, release */
	_Atomic uint64_t sync_req;    /* waiters raise (seq_cst RMW) */
	_Atomic int failed;           /* 0 or CIDSTORE_EIO; set once */
	_Atomic bool closing;
	_Atomic uint64_t st_bytes, st_fsyncs, st_records; /* statistics */

	/* Synchronization: written once by the failing thread before it
	 * stores failed (release); read after an acquire load of failed. */
	char failure[160];

	/* Synchronization: wait_lock. */
	pthread_mutex_t wait_lock;
	pthread_cond_t wait_cond;
	unsigned nwaiters;

	/* Synchronization: seg_lock (flusher appends, trimmer removes). */
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

/* Makes the log failed (W3) with error code err (CIDSTORE_EIO, or what the
 * failed call's errno says: CIDSTORE_ENOSPC, ...).  Called by the flusher
 * (or wal_open). */
static void wal_fail(wal_t *w, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void wal_fail(wal_t *w, int err, const char *fmt, ...)
{
	CS_ASSERT(err < 0);
	/* relaxed: only the flusher fails the log, so no race on the text. */
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
	pthread_mutex_lock(&w->wait_lock);
	pthread_cond_broadcast(&w->wait_cond);
	pthread_mutex_unlock(&w->wait_lock);
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

/* fdatasync of the current segment; raises durable_lsn to written_lsn and
 * releases the waiters it covers.  Returns 0 or -1 (log failed). */
static int flush_sync(wal_t *w)
{
	uint64_t upto = w->written_lsn; /* everything here was written (W1) */
	/* W2: durable_lsn only follows written_lsn (only this thread moves it) */
	CS_ASSERT(atomic_load_explicit(&w->durable_lsn, memory_order_relaxed) <= upto);
	if (w->io->fdatasync(w->io->ctx, w->seg_fd) != 0) {
		int e = errno;
		char name[WAL_SEG_NAME_LEN + 1];
		rec_seg_name(name, w->seg_first);
		wal_fail(w, io_errcode(e),
			 "fdatasync of %s failed: %s (records up to LSN %llu may be lost; not retried)",
			 name, strerror(e), (unsigned long long)upto);
		return -1;
	}
	/* relaxed: statistic. */
	atomic_fetch_add_explicit(&w->st_fsyncs, 1, memory_order_relaxed);
	w->last_sync_ns = now_ns(CLOCK_MONOTONIC);
	/* release: pairs with the acquire loads in wal_wait (W2). */
	atomic_store_explicit(&w->durable_lsn, upto, memory_order_release);
	pthread_mutex_lock(&w->wait_lock);
	if (w->nwaiters)
		pthread_cond_broadcast(&w->wait_cond);
	pthread_mutex_unlock(&w->wait_lock);
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
	atomic_fetch_add_explicit(&w->st_bytes, WAL_REC_SIZE, memory_order_relaxed);
	return fd;
fail:;
	int e = errno;
	io->close(io->ctx, fd);
	errno = e;
	return -1;
}

/* Leaves the full current segment: syncs it (W2), opens the next one. */
static int rotate(wal_t *w)
{
	if (w->written_lsn > atomic_load_explicit(&w->durable_lsn, memory_order_relaxed) &&
	    flush_sync(w))
		return -1;
	w->io->close(w->io->ctx, w->seg_fd);
	w->seg_fd = -1;
	uint64_t first = w->written_lsn + 1;
	const char *what = "";
	int fd = seg_create(w, first, w->opt.segment_bytes, &what);
	if (fd < 0) {
		int e = errno;
		char name[WAL_SEG_NAME_LEN + 1];
		rec_seg_name(name, first);
		wal_fail(w, io_errcode(e), "%s segment %s failed: %s", what, name, strerror(e));
		return -1;
	}
	w->seg_fd = fd;
	w->seg_first = first;
	w->seg_recs = w->opt.segment_bytes / WAL_REC_SIZE - 1;
	if (seg_list_add(w, first)) {
		wal_fail(w, CIDSTORE_EIO, "out of memory tracking segments");
		return -1;
	}
	return 0;
}

/* Drains one batch: returns records written (0: none published), -1 on
 * failure. */
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
	atomic_fetch_add_explicit(&w->st_records, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&w->st_bytes, (uint64_t)n * WAL_REC_SIZE,
				  memory_order_relaxed);
	return n;
}

static void *flusher_main(void *arg)
{
	wal_t *w = arg;
	const uint64_t interval = (uint64_t)w->opt.sync_interval_ms * 1000000ull;
	for (;;) {
		/* read kicks before sync_req / closing (see WAKE-UPS) */
		uint32_t kicks = ring_kicks(w->ring);
		long n = drain(w);
		if (n < 0)
			return NULL;
		uint64_t durable = atomic_load_explicit(&w->durable_lsn, memory_order_relaxed);
		/* seq_cst: pairs with the RMWs in wal_wait (see WAKE-UPS). */
		uint64_t want = atomic_load_explicit(&w->sync_req, memory_order_seq_cst);
		/* a full batch: more is likely waiting, write it first — unless
		 * a waiter's record is already written (do not starve it) */
		if (n == BATCH_RECS && !(want > durable && want <= w->written_lsn))
			continue;
		/* acquire: pairs with the release store in wal_close. */
		bool closing = atomic_load_explicit(&w->closing, memory_order_acquire);
		uint64_t now = now_ns(CLOCK_MONOTONIC);
		bool unsynced = w->written_lsn > durable;
		if (unsynced && (want > durable || closing ||
				 now - w->last_sync_ns >= interval)) {
			if (flush_sync(w))
				return NULL;
			continue; /* group commit: whatever came meanwhile */
		}
		if (n > 0)
			continue;
		if (closing && w->base + ring_reserved(w->ring) - 1 == w->written_lsn)
			return NULL; /* everything appended is written and synced */
		int timeout = 1000;
		if (unsynced) {
			uint64_t left = interval - (now - w->last_sync_ns);
			timeout = (int)(left / 1000000ull) + 1;
		}
		if (ring_wait_spsc(w->ring, timeout, kicks) != 0)
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
	w->seg_fd = fd;
	w->seg_first = tail->seg_first;
	w->seg_recs = tail->seg_bytes / WAL_REC_SIZE - 1;
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
	int fd = seg_create(w, next_lsn, w->opt.segment_bytes, &what);
	if (fd < 0) {
		int e = errno;
		char name[WAL_SEG_NAME_LEN + 1];
		rec_seg_name(name, next_lsn);
		wal_fail(w, io_errcode(e), "%s segment %s failed: %s", what, name, strerror(e));
		return io_errcode(e);
	}
	w->seg_fd = fd;
	w->seg_first = next_lsn;
	w->seg_recs = w->opt.segment_bytes / WAL_REC_SIZE - 1;
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
	atomic_init(&w->sync_req, 0);
	atomic_init(&w->failed, 0);
	atomic_init(&w->closing, false);
	atomic_init(&w->st_bytes, 0);
	atomic_init(&w->st_fsyncs, 0);
	atomic_init(&w->st_records, 0);
	pthread_mutex_init(&w->wait_lock, NULL);
	pthread_cond_init(&w->wait_cond, NULL);
	pthread_mutex_init(&w->seg_lock, NULL);
	int rc = ring_create(opt.ring_records, &w->ring);
	if (rc == 0) {
		w->buf = malloc((size_t)BATCH_RECS * WAL_REC_SIZE);
		rc = w->buf ? 0 : CIDSTORE_ENOMEM;
	}
	if (rc == 0)
		rc = wal_start(w, next_lsn, tail);
	if (rc == 0) {
		w->last_sync_ns = now_ns(CLOCK_MONOTONIC);
		if (pthread_create(&w->flusher, NULL, flusher_main, w) != 0)
			rc = CIDSTORE_ENOMEM;
	}
	if (rc) {
		if (w->seg_fd >= 0)
			w->io->close(w->io->ctx, w->seg_fd);
		ring_destroy(w->ring);
		free(w->buf);
		free(w->segs);
		pthread_mutex_destroy(&w->wait_lock);
		pthread_cond_destroy(&w->wait_cond);
		pthread_mutex_destroy(&w->seg_lock);
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
	/* acquire: pairs with the release store in flush_sync (W2). */
	if (atomic_load_explicit(&w->durable_lsn, memory_order_acquire) >= lsn)
		return 0;
	if (lsn >= w->base + ring_reserved(w->ring))
		return CIDSTORE_EINVAL;
	int err = atomic_load_explicit(&w->failed, memory_order_acquire);
	if (err)
		return err;
	/* seq_cst RMW: raise sync_req to lsn; pairs with the flusher's
	 * seq_cst load (see WAKE-UPS). */
	uint64_t cur = atomic_load_explicit(&w->sync_req, memory_order_relaxed);
	while (cur < lsn &&
	       !atomic_compare_exchange_weak_explicit(&w->sync_req, &cur, lsn,
						      memory_order_seq_cst,
						      memory_order_relaxed))
		;
	ring_kick(w->ring);
	pthread_mutex_lock(&w->wait_lock);
	w->nwaiters++;
	/* acquire loads: pair with flush_sync's release store of durable_lsn
	 * and wal_fail's release store of failed; both writers broadcast
	 * under wait_lock after their store, so no wake-up is lost. */
	while (atomic_load_explicit(&w->durable_lsn, memory_order_acquire) < lsn &&
	       !atomic_load_explicit(&w->failed, memory_order_acquire))
		pthread_cond_wait(&w->wait_cond, &w->wait_lock);
	w->nwaiters--;
	pthread_mutex_unlock(&w->wait_lock);
	return atomic_load_explicit(&w->durable_lsn, memory_order_acquire) >= lsn
		       ? 0
		       : atomic_load_explicit(&w->failed, memory_order_acquire);
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
	pthread_mutex_destroy(&w->wait_lock);
	pthread_cond_destroy(&w->wait_cond);
	pthread_mutex_destroy(&w->seg_lock);
	free(w);
	return rc;
}

/* ---- inspection, trimming ---- */

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
