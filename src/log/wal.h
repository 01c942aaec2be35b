/*
 * wal.h — the write-ahead log writer (layer 3).
 *
 * Producers (the store's writer threads) append records through an MPSC
 * ring (ring.h).  Whoever holds the log (one thread at a time: a SYNC
 * committer leading its group in wal_wait, or the background flusher for
 * ASYNC records) drains the ring in LSN order, writes batches to
 * preallocated, zero-filled segment files (format in record.h), rotates
 * segments and fdatasyncs.  wal_wait() is leader-based group commit: the
 * first waiter writes and fdatasyncs for everyone published by then, the
 * next group forms meanwhile; every waiter whose record one fdatasync
 * covers is released together, only after that fdatasync has returned.
 * Segments start at min(1 MiB, segment_bytes) and double (up to
 * segment_bytes) while they fill within a second.
 *
 * A failed write or fdatasync is never retried: the log turns failed
 * (sticky), every waiter and every later append gets the failure's code
 * (CIDSTORE_ENOSPC for a full disk, CIDSTORE_EIO for most else; "the log's
 * failure" below), and wal_failure() says why.
 *
 * Synchronization table:
 *
 *   | call                              | may run concurrently with        |
 *   |-----------------------------------|----------------------------------|
 *   | wal_append, wal_reserve, wal_put, | each other and themselves, any   |
 *   | wal_wait, wal_sync, wal_stats,    | number of threads, and the       |
 *   | wal_failure, wal_error, wal_trim, | flusher                          |
 *   | wal_next_lsn, wal_sync_interval,  |                                  |
 *   | wal_set_sync_interval             |                                  |
 *   | wal_open, wal_close               | nothing on the same wal          |
 *
 * LSN order: the LSN is taken by the one fetch_add inside wal_append /
 * wal_reserve; a caller that appends inside the critical section that
 * orders its in-memory change gets WAL order == memory order per key.
 */
#ifndef CIDSTORE_LOG_WAL_H
#define CIDSTORE_LOG_WAL_H

#include <stdbool.h>
#include <stdint.h>

#include "cidstore.h"
#include "log/io.h"
#include "log/record.h"
#include "util/lathist.h"

struct wal_options {
	uint32_t ring_records;     /* ring capacity, power of two; 0: 65536 */
	uint32_t sync_interval_ms; /* the flusher syncs written records at least
				      this often even with no waiter; 0: 10 */
	uint64_t segment_bytes;    /* largest segment size, multiple of 128,
				      >= 4 KiB; 0: 64 MiB.  The first segment of
				      an open is min(1 MiB, this); sizes double
				      while segments fill within 1 s */
	uint64_t live_bytes;       /* wal_stats.bytes at open: the bytes of log
				      records already live on disk (the store:
				      128 * records after the checkpoint) */
	uint16_t shard;            /* hybrid-time shard id in every record */
};

typedef struct wal wal_t;

struct wal_stats {
	uint64_t lsn;         /* last LSN handed out (next_lsn - 1 at open) */
	uint64_t durable_lsn; /* every record <= this is on stable storage */
	uint64_t bytes;       /* live_bytes + 128 * records written since
				 open (segment headers and the zero fill
				 are not counted) */
	uint64_t fsyncs;      /* fdatasync calls of the flusher (all files) */
	uint64_t records;     /* records written since open */
	uint64_t segments;    /* segment files that exist now */
	bool failed;
};

/* Group-commit sizes: bucket i counts the log fdatasyncs (flush_sync: a
 * committer's, the flusher's, a rotation's) that made n new records
 * durable, 2^(i-1) < n <= 2^i (bucket 0: n <= 1); the last bucket: above
 * 2^(WAL_GROUP_BUCKETS - 2). */
#define WAL_GROUP_BUCKETS 22u

static inline unsigned wal_group_bucket(uint64_t n)
{
	if (n <= 1)
		return 0;
	unsigned b = 64u - (unsigned)__builtin_clzll(n - 1); /* ceil(log2 n) */
	return b < WAL_GROUP_BUCKETS - 1 ? b : WAL_GROUP_BUCKETS - 1;
}

/* For the store's metrics (wal_metrics): what wal_stats has not, each
 * value read on its own with a relaxed load (not a snapshot). */
struct wal_metrics {
	uint64_t ring_used;       /* records in the ring (reserved, not yet
				     released by the drainer) */
	uint64_t ring_capacity;   /* the ring's size in records */
	uint64_t group_hist[WAL_GROUP_BUCKETS]; /* see wal_group_bucket */
	uint64_t group_records;   /* records those fdatasyncs made durable */
	uint64_t sync_hist[LH_BUCKETS]; /* their durations (util/lathist.h) */
	uint64_t sync_ns;         /* the sum of their durations */
};

/* Where recovery found the valid log to end (struct recov_result's tail_*):
 * the segment holding record next_lsn - 1 (its first LSN = its name), the
 * size its header declares, and the promise that every byte after that
 * record in the file is zero (recovery validated the records up to it and
 * cut any torn tail). */
struct wal_tail {
	uint64_t seg_first;
	uint64_t seg_bytes;
};

/* Opens the log in the directory dir_fd (borrowed: keep it open until
 * wal_close) so that the next record gets LSN next_lsn (>= 1), and starts
 * the flusher thread.  With tail, appending continues in that segment right
 * after record next_lsn - 1, WITHOUT reading the file (recovery read it
 * once; this call trusts tail and next_lsn).  Without tail (fresh store,
 * everything trimmed, or a log that ends before the checkpoint recovery
 * started from) a new segment named after next_lsn is created.  Segments
 * starting after the end of the log are deleted.  io: the file-operation
 * table (NULL: POSIX).
 * Returns 0; CIDSTORE_EINVAL (bad option or argument, a tail that cannot
 * hold record next_lsn - 1); CIDSTORE_ENOMEM; the io_errcode of a failed
 * file operation (CIDSTORE_ENOSPC, CIDSTORE_EACCES, CIDSTORE_EIO, ...).
 * Waits for: file creation and syncs. */
int wal_open(int dir_fd, const struct wal_options *o, uint64_t next_lsn,
	     const struct wal_tail *tail, const struct log_io *io, wal_t **out);

/* Appends one record (opcode enum wal_opcode; val may be NULL: zero) and
 * stores its LSN in *lsn (may be NULL).  The record is in the ring when this
 * returns; use wal_wait for durability.  Returns 0, CIDSTORE_EINVAL,
 * the log's failure.  Short: one fetch_add, a 128-byte fill, a
 * release store — callers may hold a per-key lock.  Waits for: ring space
 * only when the ring is full (backpressure). */
int wal_append(wal_t *w, int opcode, const cid_t *key, const cid_t *val,
	       uint64_t txn, uint64_t *lsn);

/* Reserves n (1 .. ring_records) consecutive LSNs with one fetch_add and
 * stores the first in *first_lsn.  The caller MUST then wal_put every one
 * of them, promptly (the flusher writes in LSN order and stops at the first
 * reserved but unput record).  Returns 0, CIDSTORE_EINVAL, CIDSTORE_ERANGE
 * (n above the ring size), the log's failure.  Waits for: ring space. */
int wal_reserve(wal_t *w, uint32_t n, uint64_t *first_lsn);

/* Fills and publishes the reserved record lsn.  flags: WAL_FLAG_*.
 * Never waits. */
void wal_put(wal_t *w, uint64_t lsn, int opcode, uint8_t flags,
	     const cid_t *key, const cid_t *val, uint64_t txn);

/* Blocks until an fdatasync that covers lsn has completed (leader-based
 * group commit: the caller either writes and fdatasyncs itself, for every
 * record published by then, or sleeps while another caller does; see
 * wal.c DESIGN).  Returns 0 at once when lsn is already
 * durable (lsn 0 is always); CIDSTORE_EINVAL when lsn was never handed out;
 * the log's failure when it failed before lsn became durable.
 * Memory ordering: on 0, the durable-LSN load is an acquire of the
 * flusher's store after the fdatasync. */
int wal_wait(wal_t *w, uint64_t lsn);

/* Makes every record appended before the call durable (wal_wait on the last
 * LSN handed out).  Returns 0 or the log's failure. */
int wal_sync(wal_t *w);

/* Flushes everything appended, fdatasyncs, stops the flusher, closes the
 * files and frees w.  No other call on w may run or follow; every reserved
 * LSN must have been put.  Returns 0 or the log's failure;
 * w is freed either way.  NULL: CIDSTORE_EINVAL. */
int wal_close(wal_t *w);

/* Changes the flusher's sync interval (opt.sync_interval_ms at open: the
 * longest time an ASYNC record waits for an fdatasync) to ms (0: 10), and
 * wakes the flusher so that a sleep chosen with the old interval ends now.
 * For a retune of the store.  Thread-safe; never waits. */
void wal_set_sync_interval(wal_t *w, uint32_t ms);

/* The sync interval in effect (ms, never 0).  Never waits. */
uint32_t wal_sync_interval(wal_t *w);

/* 0, or the log's failure once it failed.  Never waits. */
int wal_error(wal_t *w);

/* Why the log failed ("" when it did not).  The string lives as long as w
 * and does not change once set.  Never waits. */
const char *wal_failure(wal_t *w);

/* The LSN the next record will get (approximate under concurrency). */
uint64_t wal_next_lsn(wal_t *w);

/* Fills *st.  Values are read one by one (not a snapshot).  Never waits. */
void wal_stats(wal_t *w, struct wal_stats *st);

/* Fills *m (see struct wal_metrics).  Never waits. */
void wal_metrics(wal_t *w, struct wal_metrics *m);

/* Deletes every segment all of whose records are below lsn (segment i goes
 * when segment i + 1 starts at or below lsn; the current segment never
 * goes), then fsyncs the directory.  For the checkpointer, after its
 * checkpoint covering everything below lsn is durable.  Returns the number
 * of segments deleted or CIDSTORE_EIO (an unlink or the directory sync
 * failed; the log itself stays usable).  Waits for: the segment-list mutex
 * (held by the flusher while it rotates). */
int wal_trim(wal_t *w, uint64_t lsn);

#endif
