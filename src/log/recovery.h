/*
 * recovery.h — crash recovery: newest valid checkpoint + replay of the WAL
 * after it, optionally in parallel (layer 3).  Internal.
 *
 * The rules (what is cut, what is corruption, how transactions and
 * parallel replay are handled) are documented at the top of recovery.c.
 *
 * Synchronization table (one recov_run call):
 *
 *   | role            | threads      | touches                                 |
 *   |-----------------|--------------|-----------------------------------------|
 *   | reader          | the caller   | files (through io), txn buffers, load   |
 *   | replay workers  | threads - 1  | ap->apply only, one key -> one worker   |
 *   |  (threads > 1)  | (>= 2)       | (hash partition), each in LSN order     |
 *   | checkpoint      | the caller + | the checkpoint file (each its own      |
 *   |  loaders        | threads - 1  | chunks of blocks), ap->load_many        |
 *   |  (load_many set)| helpers      | (before any replay; joined first)       |
 *
 * ap->load and ap->reset run on the caller's thread, never concurrently
 * with apply; ap->load_many runs on the loaders, concurrently with itself
 * only.  ap->apply runs on the caller's thread when threads <= 1,
 * otherwise on the workers, concurrently for different keys: it must be
 * thread-safe (the index is).  Everything recov_run started has stopped
 * when it returns.
 */
#ifndef CIDSTORE_LOG_RECOVERY_H
#define CIDSTORE_LOG_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cidstore.h"

struct log_io;
struct ckpt_entry;

/* What recovery feeds the in-memory state with. */
struct recov_apply {
	/* A checkpoint entry: add these values to key (a key with many values
	 * may come in several calls).  Non-zero return stops recovery with
	 * that value.  Required. */
	cidstore_scan_fn load;
	/* One replayed WAL operation: op is WAL_OP_INSERT, WAL_OP_DELETE_VALUE
	 * or WAL_OP_DELETE_KEY (val NULL for DELETE_KEY).  Must accept ops that
	 * change nothing (insert of a present pair, delete of an absent one):
	 * replay on top of a fuzzy checkpoint repeats some.  Returns 0 or a
	 * negative error that stops recovery.  Required. */
	int (*apply)(void *ctx, int op, const cid_t *key, const cid_t *val,
		     uint64_t lsn);
	/* Discards everything load has added (called before falling back from a
	 * checkpoint found corrupt while loading).  NULL: recovery reads every
	 * checkpoint twice — verify, then load — so load never sees a corrupt
	 * one. */
	int (*reset)(void *ctx);
	void *ctx;
	/* Optional (NULL: not called).  Called on the caller's thread before
	 * anything is loaded into the state: with the key count of a
	 * checkpoint whose header passed its checks, before its entries (so
	 * the state can be sized for it from the one read of that header), and
	 * with 0 before replay when no checkpoint was loaded.  It may be called
	 * more than once (a corrupt checkpoint falls back to the previous one);
	 * each call discards whatever an earlier one prepared.  Non-zero
	 * return stops recovery with that value. */
	int (*begin)(void *ctx, uint64_t ckpt_keys);
	/* Optional (NULL: load is used).  Checkpoint entries in batches
	 * (checkpoint.h: struct ckpt_entry, valid during the call; a key with
	 * many values comes as several entries, in any order), called by
	 * recov_run's `threads` loader threads at once: must be thread-safe.
	 * Replaces load.  Non-zero return stops recovery with that value. */
	int (*load_many)(void *ctx, const struct ckpt_entry *e, size_t n);
	/* Optional: a hint that apply will soon be called for key (replay
	 * workers call it a few operations ahead, so the cache misses of
	 * consecutive operations overlap).  Thread-safe; changes nothing. */
	void (*prefetch)(void *ctx, const cid_t *key);
};

#define RECOV_READONLY 0x1u /* do not cut a torn tail (verify / dump tools) */

struct recov_result {
	/* checkpoint */
	bool have_ckpt;            /* a checkpoint was loaded */
	bool ckpt_fallback;        /* ... but not the newest (that one is corrupt) */
	uint64_t ckpt_lsn;         /* its start LSN (0 without checkpoint) */
	uint64_t ckpt_keys, ckpt_values;
	/* log */
	uint64_t last_lsn;         /* last valid LSN (>= ckpt_lsn); the writer goes on at last_lsn + 1 */
	bool tail_valid;           /* the writer may append to tail_seg_lsn at tail_off */
	uint64_t tail_seg_lsn;     /* first LSN (name) of the segment holding last_lsn */
	uint64_t tail_off;         /* byte offset just after the last valid record there */
	uint64_t tail_seg_bytes;   /* that segment's size as its header declares it
				      (with tail_seg_lsn: the struct wal_tail that
				      wal_open continues from without re-reading) */
	bool torn;                 /* an invalid tail was found (and cut unless READONLY) */
	uint64_t torn_seg_lsn, torn_off; /* where */
	uint64_t segments;         /* segment files read */
	uint64_t seg_bytes;        /* their total size in bytes */
	uint64_t records;          /* valid records read (headers excluded) */
	uint64_t replayed;         /* operations passed to apply */
	uint64_t skipped;          /* records <= ckpt_lsn */
	uint64_t txn_committed;    /* transactions applied (TXN_COMMIT read) */
	uint64_t txn_dropped;      /* aborted or never committed: */
	uint64_t txn_aborted;      /*   TXN_ABORT read */
	uint64_t txn_unfinished;   /*   still open at the end of the log */
	uint64_t txn_ops_dropped;  /* operations of dropped transactions: */
	uint64_t txn_ops_aborted, txn_ops_unfinished; /* by cause */
	uint64_t txn_ops_committed; /* operations of applied transactions (those
				       after the checkpoint: the records the
				       replay reads) */
	unsigned threads;          /* replay workers used (1: inline) */
	/* time, seconds (CLOCK_MONOTONIC) */
	double ckpt_seconds, replay_seconds, total_seconds;
	double replay_rate;        /* records read and replayed per second of the log phase */
	char msg[256];             /* on error: the file and offset, and why */
};

/* Recovers the store in the directory dirfd (the caller holds its lock).
 *   1. checkpoints, newest first: a newer format -> CIDSTORE_EVERSION; a
 *      corrupt one falls back to the previous, which is allowed only if the
 *      WAL still holds every record after it up to at least the corrupt
 *      one's LSN; no usable checkpoint -> the WAL must start at LSN <= 1;
 *   2. every segment from the one holding ckpt_lsn + 1, in LSN order:
 *      records validated (rec_decode_next), those with LSN > ckpt_lsn
 *      replayed through ap->apply; transaction operations only when their
 *      TXN_COMMIT is in the log;
 *   3. a torn tail of the last segment is cut (zeroed and fdatasync'd,
 *      unless RECOV_READONLY): out->last_lsn / tail_* say where to go on.
 * threads: replay workers (0 or 1: replay on the calling thread).
 * Returns 0; CIDSTORE_ECORRUPT (a bad record followed by valid ones, a bad
 * record or end in an older segment, an LSN gap inside or between
 * segments, no checkpoint usable, the WAL ends before a checkpoint's
 * end LSN); CIDSTORE_EVERSION; CIDSTORE_EIO; CIDSTORE_ENOMEM;
 * CIDSTORE_EINVAL; or the error a callback returned.  out->msg names the
 * file and offset.  out must not be NULL.
 * Waits for: the disk, its own workers. */
int recov_run(int dirfd, const struct log_io *io, const struct recov_apply *ap,
	      unsigned threads, unsigned flags, struct recov_result *out);

/* Checks a store directory without changing it or loading anything:
 * recov_run with RECOV_READONLY, one thread and callbacks that discard
 * (every checkpoint is read and CRC-checked, every needed segment record
 * validated).  For `cidstore verify` and tests.  Returns as recov_run; a
 * torn tail is reported in out->torn, not an error. */
int recov_verify(int dirfd, const struct log_io *io, struct recov_result *out);

struct wal_rec;

/* One valid record met by recov_read_log: seg_lsn is the first LSN of its
 * segment (the one in the file name), off its byte offset in that file.
 * The segment header comes first (opcode WAL_OP_SEGMENT_HEADER, off 0).
 * A non-zero return stops reading; recov_read_log returns it. */
typedef int (*recov_rec_fn)(const struct wal_rec *r, uint64_t seg_lsn,
			    uint64_t off, void *ctx);

/* Reads every WAL segment of dirfd in LSN order, from the oldest one
 * whatever the checkpoints say, with exactly the segment and continuity
 * rules of recov_run (steps 2 and 3, the same code), read-only (nothing is
 * cut or removed, like RECOV_READONLY), without checkpoints and without
 * replay.  fn (may be NULL: validate and count only) is called for every
 * valid record as it is read, so the records before an error have been
 * delivered.  out: segments, seg_bytes, records, last_lsn (the first
 * segment's first LSN - 1 when it holds no record; 0 without segments),
 * torn / torn_seg_lsn / torn_off, msg, and the txn_* counts by the same
 * transaction bookkeeping as replay (a batch whose TXN_START lies in a
 * removed segment counts with the operations still in the log); the
 * checkpoint and replay fields stay zero.  Returns 0 (a torn tail of the newest segment included);
 * CIDSTORE_ECORRUPT (bad record followed by valid ones, bad record or
 * header in an older segment, LSN gap inside or between segments);
 * CIDSTORE_EVERSION; CIDSTORE_EIO; CIDSTORE_ENOMEM; CIDSTORE_EINVAL; or
 * fn's non-zero return.  out must not be NULL.
 * Thread-safe (no shared state).  Waits for: the disk. */
int recov_read_log(int dirfd, const struct log_io *io, recov_rec_fn fn,
		   void *ctx, struct recov_result *out);

#endif
