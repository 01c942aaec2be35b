/*
 * store_internal.h — the store handle and the store layer's internal calls.
 * Internal (tests may include it to open a store over a fault-injecting I/O
 * table).
 *
 * The store layer (layer 4), each file calling only downward:
 *   store.c    the public API: argument checks, open/close, reads, stats;
 *              hands every change to write.c
 *   options.c  defaults and checks of the options; the snapshot of the
 *              options in effect, cidstore_get_options, cidstore_retune
 *   maint.c    the maintenance pass (cidstore_maintain) and the store's
 *              one background thread (passes within a CPU budget, the
 *              automatic checkpoint)
 *   durable.c  a directory behind the store: open = lock + recovery + WAL,
 *              online and automatic checkpoints, close, durable stats
 *   write.c    the one write path: every change of every caller (single
 *              calls, insert_many, batches, recovery's replay) goes through
 *              idx_apply with the one log hook; the opcode maps (public ->
 *              index -> WAL and back) live there and nowhere else; SYNC
 *              waits; the sticky failure
 * store.c -> maint.c -> durable.c -> write.c -> options.c -> index/, log/.
 *
 * Synchronization of struct cidstore:
 *   | field              | how                                             |
 *   |--------------------|-------------------------------------------------|
 *   | ix                 | set during open (recovery may replace it before |
 *   |                    | open returns), immutable after                  |
 *   | opts, iopts, dir,  | immutable after open.  opts holds the options   |
 *   | wal, io, durable,  | given at open: its "retune: yes" fields are the |
 *   | read_only, recov,  | values at open only — operations read those     |
 *   | dir_path, opened,  | from the snapshot (options.c)                   |
 *   | stripes            |                                                 |
 *   | snap, opts_phase,  | options.c: the snapshot, replaced by retunes    |
 *   | stripes[].readers  | (RCU with reader counters, see its top comment) |
 *   | retune_mu          | serializes retunes                              |
 *   | stripes[].removals | atomic, relaxed: values removed, counted by the |
 *   |                    | removing thread on its own stripe (maint.c      |
 *   |                    | sums them to see whether a pass is due)         |
 *   | gil                | serialized mode only: every operation holds it  |
 *   | ckpt_lock          | serializes checkpoints (manual and automatic);  |
 *   |                    | never taken by insert/delete/lookup             |
 *   | batch_lock         | batches hold it shared; a checkpoint choosing   |
 *   |                    | its LSN exclusive                               |
 *   | ckpt_wal_bytes,    | atomic, relaxed (statistics and the automatic   |
 *   | ckpt_file_bytes,   | checkpoint's trigger); written by checkpoints   |
 *   | checkpoints        | (under ckpt_lock) and open                      |
 *   | failed, failure    | failed: atomic error code, set once under       |
 *   |                    | fail_mu after failure is written (release);     |
 *   |                    | read with acquire                               |
 *   | pass_mu            | one maintenance pass at a time; guards          |
 *   |                    | removals_done                                   |
 *   | mc (counters)      | atomic, relaxed: written by the pass holding    |
 *   |                    | pass_mu, read by stats and metrics              |
 *   | maint_stop         | maint_mu (+ maint_cv, kicked by retunes);       |
 *   |                    | maint, maint_running: open and close only       |
 *   | ext                | atomic: NULL until a layer above the store (the |
 *   |                    | triple layer) installs its state with a CAS     |
 *   |                    | (acq_rel; readers acquire); the maintenance     |
 *   |                    | pass calls ext->maintain; destroyed by close    |
 *   | metrics            | its own (store/metrics.h, metrics.c)            |
 */
#ifndef CIDSTORE_STORE_INTERNAL_H
#define CIDSTORE_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cidstore.h"
#include "index/index.h"
#include "log/dir.h"
#include "log/io.h"
#include "log/recovery.h"
#include "log/wal.h"
#include "store/metrics.h"

/* Per-store state of a layer above the store (the triple layer, src/triple/):
 * the store keeps it, destroys it at close and may run its maintenance
 * step (a maintenance pass: without knowing the layer, no upward call). */
struct store_ext {
	void (*destroy)(struct store_ext *ext);
	/* one maintenance step of the layer now (may be NULL); *done (may be
	 * NULL) gets the number of entries it removed.  Returns 0 or an error
	 * code.  Thread-safe. */
	int (*maintain)(struct store_ext *ext, cidstore_t *s, uint64_t *done);
};

/* The snapshot of the options in effect (options.c): immutable once
 * published. */
struct opts_snap {
	cidstore_options_t o; /* o.dir points at the store's dir_path */
};

/* Per-thread counters of the store, one cache line per stripe; a thread
 * uses the stripe store_stripe() gives it (threads rarely share one). */
#define STORE_STRIPES 64
struct store_stripe {
	_Atomic uint64_t readers[2]; /* options.c: sections open, per phase */
	_Atomic uint64_t removals;   /* values removed by writes (maint.c) */
} __attribute__((aligned(64)));

/* What the maintenance passes did since open (cidstore_stats maint_*). */
struct store_maint_counters {
	_Atomic uint64_t passes;
	_Atomic uint64_t entries_moved;
	_Atomic uint64_t chunks_released;
	_Atomic uint64_t bytes_released;
	_Atomic uint64_t tables_shrunk;
	_Atomic uint64_t groups_visited;
	_Atomic uint64_t stale_cleaned;
	_Atomic uint64_t purges;
	_Atomic uint64_t cpu_ns;
};

struct cidstore {
	idx_t *ix;
	cidstore_options_t opts; /* as given at open (see the table above);
				    opts.dir points at dir_path */
	idx_options_t iopts;     /* what the index is created with: the store's
				    own seed, opts' sizing raised to fit the
				    checkpoint recovery loads (durable.c) */
	bool serialized;
	bool read_only;          /* opts.read_only: writes get CIDSTORE_ERDONLY */
	pthread_mutex_t gil;

	/* options in effect (options.c) */
	_Atomic(const struct opts_snap *) snap;
	_Atomic unsigned opts_phase;
	pthread_mutex_t retune_mu;
	struct store_stripe *stripes; /* STORE_STRIPES */

	/* durable stores (dir != NULL) */
	bool durable;            /* a directory backs the store */
	bool opened;             /* store_durable_open finished (close may then
				    write the final checkpoint of NONE stores) */
	char *dir_path;
	sdir_t *dir;
	wal_t *wal;              /* NULL unless durability is ASYNC or SYNC
				    and the store is not read_only */
	const struct log_io *io;
	struct recov_result recov; /* what open found */

	pthread_mutex_t ckpt_lock;
	pthread_rwlock_t batch_lock;
	_Atomic uint64_t ckpt_wal_bytes; /* wal bytes when the last checkpoint began */
	_Atomic uint64_t ckpt_file_bytes; /* size of the newest checkpoint file:
					     the last one written, or the one
					     recovery loaded (0: none yet) */
	_Atomic uint64_t checkpoints;

	_Atomic int failed;      /* 0, or the sticky error (CIDSTORE_EIO or
				    CIDSTORE_ENOSPC): the store refuses writes */
	char failure[128];       /* why; written once before failed is set */
	pthread_mutex_t fail_mu;

	struct store_metrics metrics; /* metrics.h: per-thread blocks (its own
					 synchronization); set up first, freed last */

	/* maintenance (maint.c) */
	pthread_mutex_t pass_mu;
	uint64_t removals_done;  /* pass_mu: removals counted when the last
				    complete pass began */
	struct store_maint_counters mc;
	pthread_t maint;         /* the store's one background thread */
	bool maint_running;
	bool maint_stop;
	pthread_mutex_t maint_mu;
	pthread_cond_t maint_cv; /* CLOCK_MONOTONIC */

	_Atomic(struct store_ext *) ext; /* see struct store_ext */
};

static inline void gil_lock(cidstore_t *s)
{
	if (s->serialized)
		pthread_mutex_lock(&s->gil);
}

static inline void gil_unlock(cidstore_t *s)
{
	if (s->serialized)
		pthread_mutex_unlock(&s->gil);
}

/* Opens with an explicit I/O table (NULL: POSIX).  For tests. */
int cidstore_open_io(const cidstore_options_t *o, const struct log_io *io,
		     cidstore_t **out);

/* ---- options.c ---- */

/* The stripe of the calling thread (0 .. STORE_STRIPES - 1; threads get
 * them round-robin on first use).  Never waits. */
unsigned store_stripe(void);

/* A reader section of the options snapshot: store_opts_enter returns the
 * options in effect, valid until store_opts_exit(ref).  Keep the section
 * short (it delays retunes, never another operation).  Never waits. */
struct opts_ref {
	_Atomic uint64_t *cnt;
};
const cidstore_options_t *store_opts_enter(cidstore_t *s, struct opts_ref *ref);
void store_opts_exit(struct opts_ref *ref);

/* Checks the values of *o (not whether they may change): 0 or
 * CIDSTORE_EINVAL. */
int store_check_options(const cidstore_options_t *o);

/* Allocates s->stripes (first thing at open: recovery's replay counts
 * removals).  0 or CIDSTORE_ENOMEM. */
int store_stripes_init(cidstore_t *s);

/* Publishes the first snapshot from s->opts (after open set the store's own
 * seed and dir).  0 or CIDSTORE_ENOMEM. */
int store_opts_init(cidstore_t *s);

/* Frees the snapshot and the stripes (close: no reader is left; either may
 * be NULL after a failed open). */
void store_opts_fini(cidstore_t *s);

/* ---- maint.c ---- */

/* Starts the maintenance thread (not for read_only stores).  0 or
 * CIDSTORE_ENOMEM. */
int store_maint_start(cidstore_t *s);

/* Stops and joins it (nothing when it is not running). */
void store_maint_stop(cidstore_t *s);

/* Wakes the maintenance thread so it re-reads the options (a retune). */
void store_maint_kick(cidstore_t *s);

/* Counts n values removed by a write of the calling thread (relaxed, on its
 * own stripe).  Never waits. */
static inline void store_count_removals(cidstore_t *s, uint64_t n)
{
	atomic_fetch_add_explicit(&s->stripes[store_stripe()].removals, n,
				  memory_order_relaxed);
}

/* Fills the maint_* fields of *out.  Never waits. */
void store_maint_stats(cidstore_t *s, cidstore_stats_t *out);

/* ---- durable.c ---- */
int store_durable_open(cidstore_t *s);
int store_durable_close(cidstore_t *s);
int store_checkpoint(cidstore_t *s);
/* The automatic checkpoint's log-to-checkpoint ratio, in percent: one is
 * due when the live log reaches max(checkpoint_wal_bytes, this % of the
 * newest checkpoint file).  100 makes checkpoint writes at most the log's
 * and recovery's replay at most one checkpoint's worth (maint.c's top
 * comment).  A constant, not an option: below 100 the linear bound is
 * lost, above it recovery replays more than a checkpoint's worth; and a
 * retunable option would reach options.c, the tool's config and
 * docs/operations.md for a knob nobody has needed yet. */
#define CKPT_LOG_RATIO_PCT 100u

/* The automatic checkpoint: takes one when the live log since the last one
 * began has reached max(ckpt_bytes, CKPT_LOG_RATIO_PCT % of the newest
 * checkpoint file); ckpt_bytes is checkpoint_wal_bytes from the caller's
 * options snapshot, 0: never.  Returns 0 (also when none was due) or
 * store_checkpoint's error. */
int store_checkpoint_if_due(cidstore_t *s, uint64_t ckpt_bytes);
void store_durable_stats(cidstore_t *s, cidstore_stats_t *out);

/* ---- write.c ---- */

/* Public opcode -> index opcode.  Returns 0, or CIDSTORE_EINVAL for a value
 * outside cidstore_opcode_t. */
int store_op_from_public(int op, idx_op_t *out);

/* 0 when writes may proceed; CIDSTORE_ERDONLY (read_only) or the sticky
 * failure (CIDSTORE_EIO / CIDSTORE_ENOSPC).  Never waits. */
int store_write_gate(cidstore_t *s);

/* Makes the store refuse writes from now on with err (CIDSTORE_ENOSPC stays
 * ENOSPC, any other code becomes CIDSTORE_EIO), remembering why (the first
 * call wins).  Thread-safe. */
void store_fail(cidstore_t *s, int err, const char *why);

/* One change (insert, delete_value, delete_key): gate, index + log hook,
 * SYNC wait.  Returns what the public call returns. */
long store_write(cidstore_t *s, idx_op_t op, const cid_t *key, const cid_t *val);

/* cidstore_insert_many after its argument checks. */
long store_write_many(cidstore_t *s, const cid_t *keys, const cid_t *vals, size_t n,
		      int *results);

/* cidstore_apply after its argument checks (opcodes already valid). */
int store_write_batch(cidstore_t *s, const cidstore_op_t *ops, size_t n);

/* store_write_batch for the triple layer (src/triple/), with what the
 * public call does not give:
 *   - ops[0 .. nfree) are applied and logged first, each on its own (no
 *     transaction: recovery replays each whose record is durable), then
 *     ops[nfree .. n) as one crash-atomic batch;
 *   - results (may be NULL) gets 1 (the operation changed the store) or 0
 *     per operation (0 too for those an error left unapplied);
 *   - wait_lsn NULL: waits as cidstore_apply; otherwise never waits for
 *     the disk: *wait_lsn gets the LSN a SYNC caller must pass to
 *     store_wait_durable before it answers (0: nothing to wait for).
 * Returns as cidstore_apply. */
int store_write_batch_ex(cidstore_t *s, const cidstore_op_t *ops, size_t nfree, size_t n,
			 int *results, uint64_t *wait_lsn);

/* Recovery's replay of one logged change (op: a WAL opcode; others are
 * ignored).  Returns 0 or a negative error. */
int store_replay(cidstore_t *s, int wal_op, const cid_t *key, const cid_t *val);

/* Waits until everything logged so far is durable (cidstore_sync; a
 * checkpoint through lsn).  Returns 0 or the log's failure (the store then
 * fails with it). */
int store_wait_durable(cidstore_t *s, uint64_t lsn);

#endif
