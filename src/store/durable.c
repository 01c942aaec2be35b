/*
 * durable.c — a store backed by a directory: open = lock + recovery + WAL,
 * online checkpoints, the automatic checkpoint's test (store_checkpoint_if_due,
 * called by the maintenance thread, maint.c), close, durable stats.  The
 * changes themselves and their logging: write.c.
 *
 * Open reads each file once: META; the checkpoint recovery loads (its
 * header sizes the index on the way: rec_begin); the log segments
 * (recovery validates them and hands the WAL the place where the valid log
 * ends: struct wal_tail).  read_only: no lock, nothing written, created or
 * cut (a torn tail is skipped), no WAL, no threads.
 *
 * Online checkpoint (store_checkpoint), writers keep running:
 *   1. batch_lock (write) held while lsn0 = last LSN handed out: lsn0 is
 *      never inside a batch;
 *   2. idx_quiesce: every operation that took an LSN <= lsn0 was inside an
 *      epoch section when lsn0 was read, so after the grace period its
 *      change is published in memory;
 *   3. scan the index into ckpt-<lsn0>.ckpt.tmp (a fuzzy snapshot: each key
 *      as of some instant after step 2; replay of set operations from
 *      lsn0 + 1 is idempotent on it);
 *   4. batch_lock (write) again: batches that ran during the scan have
 *      finished (their partial effects may be in the snapshot, so their
 *      commit must be covered); end = last LSN handed out; WAL durable up
 *      to end; commit (fsync, rename, fsync dir).  Everything the snapshot
 *      shows is then in the durable log too, so a crash can never surface
 *      an effect whose record was lost;
 *   5. keep two checkpoints; trim segments below the older one (so a
 *      corrupt newest checkpoint can fall back to the previous one);
 *      record the new file's size (ckpt_file_bytes: the automatic
 *      checkpoint's policy, maint.c, scales with it; open records the size
 *      of the checkpoint recovery loaded).
 *
 * Synchronization table:
 *   | role            | runs with                                        |
 *   |-----------------|--------------------------------------------------|
 *   | operations      | everything; batches hold batch_lock (read)       |
 *   | checkpointer    | operations; one at a time (ckpt_lock)            |
 *   | maint thread    | runs automatic checkpoints (maint.c); stopped by |
 *   |                 | close before anything here is torn down          |
 *   | flusher (wal.c) | everything                                       |
 *   | close           | nothing                                          |
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log/checkpoint.h"
#include "log/meta.h"
#include "log/record.h"
#include "store/store_internal.h"

/* ------------------------------------------------------------------ */
/* recovery callbacks                                                  */
/* ------------------------------------------------------------------ */

/* A checkpoint delivers a key with many values in several chunks (one per
 * checkpoint block); each goes into the key's set with one idx_insert_set,
 * which adds in place while the set has room and otherwise rebuilds it once
 * with room for as many again, so a big set loads in O(values). */
static int rec_load(const cid_t *key, const cid_t *values, size_t n, void *ctx)
{
	cidstore_t *s = ctx;
	long rc = idx_insert_set(s->ix, key, values, n);
	return rc < 0 ? (int)rc : 0;
}

/* The same for a batch of entries, from several checkpoint loader threads
 * at once (the index is thread-safe; nobody else uses it yet): one
 * idx_insert_sets per batch, which overlaps the batch's cache misses. */
static int rec_load_many(void *ctx, const struct ckpt_entry *e, size_t n)
{
	cidstore_t *s = ctx;
	idx_set_t sets[CKPT_LOAD_BATCH];
	while (n > 0) {
		size_t m = n < CKPT_LOAD_BATCH ? n : CKPT_LOAD_BATCH;
		for (size_t i = 0; i < m; i++)
			sets[i] = (idx_set_t){e[i].key, e[i].vals, e[i].n};
		long rc = idx_insert_sets(s->ix, sets, m);
		if (rc < 0)
			return (int)rc;
		e += m;
		n -= m;
	}
	return 0;
}

static void rec_prefetch(void *ctx, const cid_t *key)
{
	cidstore_t *s = ctx;
	idx_prefetch(s->ix, key);
}

static int rec_apply(void *ctx, int op, const cid_t *key, const cid_t *val, uint64_t lsn)
{
	(void)lsn;
	return store_replay(ctx, op, key, val);
}

/* A fresh index sized for keys (the checkpoint about to be loaded, from its
 * header) or opts.expected_keys, whichever is larger: loading then does
 * not grow the index step by step from its smallest size.  The key count,
 * not a depth, is passed on: how many keys a group holds is the index's
 * business.  Whatever an earlier call prepared is discarded (a corrupt
 * checkpoint falls back to the previous one). */
static int rec_begin(void *ctx, uint64_t keys)
{
	cidstore_t *s = ctx;
	s->iopts.expected_keys = keys > s->opts.expected_keys ? keys : s->opts.expected_keys;
	idx_t *nix;
	int rc = idx_create(&s->iopts, &nix);
	if (rc)
		return rc;
	idx_destroy(s->ix); /* NULL before the first call */
	s->ix = nix;
	return 0;
}

static int rec_reset(void *ctx)
{
	cidstore_t *s = ctx;
	return rec_begin(s, 0);
}

/* ------------------------------------------------------------------ */
/* checkpoints                                                         */
/* ------------------------------------------------------------------ */

static uint64_t last_lsn(cidstore_t *s)
{
	return s->wal ? wal_next_lsn(s->wal) - 1 : s->recov.last_lsn;
}

int store_checkpoint(cidstore_t *s)
{
	if (store_write_gate(s))
		return CIDSTORE_ERDONLY;
	pthread_mutex_lock(&s->ckpt_lock);
	pthread_rwlock_t *bl = &s->batch_lock;
	int dirfd = sdir_fd(s->dir);
	struct wal_stats ws = {0};
	if (s->wal)
		wal_stats(s->wal, &ws);
	pthread_rwlock_wrlock(bl);
	uint64_t lsn0 = last_lsn(s);
	pthread_rwlock_unlock(bl);
	int rc = idx_quiesce(s->ix);
	ckpt_writer_t *w = NULL;
	struct ckpt_info info;
	const char *what = ""; /* the failing step, when it has no message */
	info.msg[0] = '\0';
	if (!rc)
		rc = ckpt_begin(dirfd, s->io, lsn0, &w, &info);
	if (!rc) {
		rc = idx_scan(s->ix, ckpt_add_fn, w);
		if (rc)
			snprintf(info.msg, sizeof(info.msg), "%s", ckpt_writer_msg(w));
	}
	if (!rc) {
		pthread_rwlock_wrlock(bl);
		uint64_t end = last_lsn(s);
		pthread_rwlock_unlock(bl);
		if (s->wal)
			rc = store_wait_durable(s, end); /* fails the store with the WAL's reason */
		if (!rc) {
			rc = ckpt_commit(w, end, &info);
			w = NULL; /* freed by ckpt_commit in every case */
		}
	}
	if (w)
		ckpt_abort(w);
	if (!rc) {
		uint64_t oldest = 0;
		rc = ckpt_prune(dirfd, s->io, CKPT_KEEP, &oldest);
		what = "removing old checkpoints";
		if (!rc && s->wal && oldest > 0) {
			int t = wal_trim(s->wal, oldest);
			rc = t < 0 ? t : 0;
			what = "removing old log segments";
		}
		atomic_store_explicit(&s->ckpt_wal_bytes, ws.bytes, memory_order_relaxed);
		atomic_store_explicit(&s->ckpt_file_bytes, info.bytes, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->checkpoints, 1, memory_order_relaxed);
		mt_checkpoint_done(&s->metrics);
	}
	if (rc < 0 && rc != CIDSTORE_ENOMEM && !atomic_load_explicit(&s->failed, memory_order_acquire)) {
		char why[sizeof(s->failure)];
		snprintf(why, sizeof(why), "checkpoint at LSN %llu: %s",
			 (unsigned long long)lsn0,
			 info.msg[0] ? info.msg : what[0] ? what : cidstore_strerror(rc));
		store_fail(s, rc, why);
	}
	if (rc < 0 && rc != CIDSTORE_ENOMEM)
		rc = atomic_load_explicit(&s->failed, memory_order_acquire);
	pthread_mutex_unlock(&s->ckpt_lock);
	return rc;
}

/* The automatic checkpoint's policy (why: maint.c's top comment): due
 * when the live log reaches max(ckpt_bytes, CKPT_LOG_RATIO_PCT % of the
 * newest checkpoint file). */
static uint64_t checkpoint_due_bytes(cidstore_t *s, uint64_t ckpt_bytes)
{
	if (ckpt_bytes == 0)
		return 0;
	uint64_t file = atomic_load_explicit(&s->ckpt_file_bytes, memory_order_relaxed);
	uint64_t scaled = file / 100 * CKPT_LOG_RATIO_PCT + file % 100 * CKPT_LOG_RATIO_PCT / 100;
	return scaled > ckpt_bytes ? scaled : ckpt_bytes;
}

int store_checkpoint_if_due(cidstore_t *s, uint64_t ckpt_bytes)
{
	if (!s->wal || ckpt_bytes == 0 || atomic_load_explicit(&s->failed, memory_order_acquire))
		return 0;
	struct wal_stats ws;
	wal_stats(s->wal, &ws);
	uint64_t since = ws.bytes - atomic_load_explicit(&s->ckpt_wal_bytes, memory_order_relaxed);
	return since >= checkpoint_due_bytes(s, ckpt_bytes) ? store_checkpoint(s) : 0;
}

/* ------------------------------------------------------------------ */
/* open / close / stats                                                */
/* ------------------------------------------------------------------ */

/* Before recovery: the store's own routing seed (META; the first open
 * records the caller's or a random one; a read_only open of a store
 * without META uses it without writing it).  The index itself is created
 * by rec_begin, sized from the checkpoint recovery loads. */
static int prepare_seed(cidstore_t *s)
{
	int dirfd = sdir_fd(s->dir);
	uint64_t seed = s->opts.seed;
	while (seed == 0) {
		if (getentropy(&seed, sizeof(seed)) != 0)
			seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
	}
	int rc = s->read_only ? meta_read(dirfd, s->io, &seed) : meta_seed(dirfd, s->io, &seed);
	if (rc == CIDSTORE_ENOENT && s->read_only)
		rc = 0; /* an empty (or pre-META) directory */
	if (rc)
		return rc;
	s->opts.seed = seed;
	s->iopts = (idx_options_t){
		.seed = seed,
		.initial_depth = s->opts.initial_depth,
		.expected_keys = s->opts.expected_keys,
	};
	return 0;
}

/* The size of the checkpoint recovery loaded (its header, read again: one
 * small read), for the automatic checkpoint's policy and stats.  Recovery
 * has just read the whole file, so this fails only if the file vanished
 * meanwhile (another process, against the lock's contract): the size then
 * stays 0 and the plain threshold applies until the next checkpoint. */
static void note_loaded_ckpt_size(cidstore_t *s)
{
	char name[CKPT_NAME_LEN + 1];
	struct ckpt_info info;
	ckpt_name(name, s->recov.ckpt_lsn);
	if (ckpt_read_header(sdir_fd(s->dir), s->io, name, &info) == 0)
		atomic_store_explicit(&s->ckpt_file_bytes, info.bytes, memory_order_relaxed);
}

int store_durable_open(cidstore_t *s)
{
	pthread_rwlock_init(&s->batch_lock, NULL);
	pthread_mutex_init(&s->ckpt_lock, NULL);
	unsigned dflags = s->read_only ? SDIR_READONLY
				       : s->opts.create_if_missing ? SDIR_CREATE : 0;
	int rc = sdir_open(s->dir_path, dflags, &s->dir);
	if (rc)
		return rc;
	rc = prepare_seed(s);
	if (rc)
		return rc;
	struct recov_apply ap = {rec_load, rec_apply, rec_reset, s, rec_begin, rec_load_many,
				 rec_prefetch};
	unsigned threads = s->opts.recovery_threads;
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 1;
	}
	rc = recov_run(sdir_fd(s->dir), s->io, &ap, threads,
		       s->read_only ? RECOV_READONLY : 0, &s->recov);
	if (rc)
		return rc;
	if (s->recov.have_ckpt)
		note_loaded_ckpt_size(s);
	if (s->opts.durability != CIDSTORE_DURABILITY_NONE && !s->read_only) {
		struct wal_options wo = {
			.ring_records = s->opts.ring_records,
			.sync_interval_ms = s->opts.sync_interval_ms,
			.segment_bytes = s->opts.segment_bytes,
			/* the live log recovery found after its checkpoint (what
			 * the next open would replay) counts from open on:
			 * stats.wal_bytes and the automatic checkpoint see it */
			.live_bytes = (s->recov.last_lsn - s->recov.ckpt_lsn) * WAL_REC_SIZE,
		};
		struct wal_tail tail = {s->recov.tail_seg_lsn, s->recov.tail_seg_bytes};
		rc = wal_open(sdir_fd(s->dir), &wo, s->recov.last_lsn + 1,
			      s->recov.tail_valid ? &tail : NULL, s->io, &s->wal);
		if (rc)
			return rc;
	}
	s->opened = true;
	return 0;
}

int store_durable_close(cidstore_t *s)
{
	int rc = 0;
	/* NONE: the checkpoint is the only copy.  Never after a refused or
	 * failed open: memory then holds nothing (or half a replay) and writing
	 * it would replace good files. */
	if (s->opened && s->opts.durability == CIDSTORE_DURABILITY_NONE &&
	    store_write_gate(s) == 0)
		rc = store_checkpoint(s);
	if (s->wal) {
		int w = wal_close(s->wal);
		if (w < 0 && !rc)
			rc = w;
		s->wal = NULL;
	}
	if (s->dir)
		sdir_close(s->dir);
	s->dir = NULL;
	pthread_rwlock_destroy(&s->batch_lock);
	pthread_mutex_destroy(&s->ckpt_lock);
	return rc;
}

void store_durable_stats(cidstore_t *s, cidstore_stats_t *out)
{
	struct opts_ref ref;
	out->durability = store_opts_enter(s, &ref)->durability;
	store_opts_exit(&ref);
	if (s->wal) {
		struct wal_stats ws;
		wal_stats(s->wal, &ws);
		out->wal_lsn = ws.lsn;
		out->wal_durable_lsn = ws.durable_lsn;
		out->wal_bytes = ws.bytes -
			atomic_load_explicit(&s->ckpt_wal_bytes, memory_order_relaxed);
		out->wal_fsyncs = ws.fsyncs;
		out->wal_records = ws.records;
		int werr = wal_error(s->wal);
		if (werr && !atomic_load_explicit(&s->failed, memory_order_acquire))
			store_fail(s, werr, wal_failure(s->wal));
	}
	out->checkpoints = atomic_load_explicit(&s->checkpoints, memory_order_relaxed);
	out->checkpoint_bytes = atomic_load_explicit(&s->ckpt_file_bytes, memory_order_relaxed);
	if (atomic_load_explicit(&s->failed, memory_order_acquire)) {
		out->failed = true;
		snprintf(out->failure, sizeof(out->failure), "%s", s->failure);
	}
}
