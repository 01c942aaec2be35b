/*
 * durable.c — a store backed by a directory: open = lock + recovery + WAL,
 * the per-operation log hook, SYNC waits, batches, online checkpoints,
 * automatic checkpoints, close.
 *
 * Ordering (DESIGN §6): the index calls store_log_hook while it holds the
 * key's lock bit and before it publishes the change, so the LSN (the ring
 * ticket) orders operations on one key exactly as memory does.
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
 *      corrupt newest checkpoint can fall back to the previous one).
 *
 * Synchronization table:
 *   | role            | runs with                                        |
 *   |-----------------|--------------------------------------------------|
 *   | operations      | everything; batches hold batch_lock (read)       |
 *   | checkpointer    | operations; one at a time (ckpt_lock)            |
 *   | maint thread    | runs checkpoints; stopped by close               |
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

void store_fail(cidstore_t *s, int err, const char *why)
{
	pthread_mutex_lock(&s->fail_mu);
	if (!atomic_load_explicit(&s->failed, memory_order_relaxed)) {
		snprintf(s->failure, sizeof(s->failure), "%s: %s", why, cidstore_strerror(err));
		/* release: the message is written before failed is seen */
		atomic_store_explicit(&s->failed, 1, memory_order_release);
	}
	pthread_mutex_unlock(&s->fail_mu);
}

/* The store fails with the WAL's own reason when it has one. */
static void fail_from_wal(cidstore_t *s, int err, const char *what)
{
	const char *why = wal_failure(s->wal);
	store_fail(s, err, why ? why : what);
}

int store_log_hook(void *ctx, int op, const cid_t *key, const cid_t *val, uint64_t *lsn)
{
	cidstore_t *s = ctx;
	static const cid_t zero;
	int rc = wal_append(s->wal, op, key, val ? val : &zero, 0, lsn);
	if (rc < 0)
		fail_from_wal(s, rc, "WAL append");
	return rc;
}

struct txn_ctx {
	cidstore_t *s;
	uint64_t txn;
};

static int txn_hook(void *ctx, int op, const cid_t *key, const cid_t *val, uint64_t *lsn)
{
	struct txn_ctx *t = ctx;
	static const cid_t zero;
	int rc = wal_append(t->s->wal, op, key, val ? val : &zero, t->txn, lsn);
	if (rc < 0)
		fail_from_wal(t->s, rc, "WAL append");
	return rc;
}

int store_after_write(cidstore_t *s, long rc, uint64_t lsn)
{
	if (rc < 0 || !s->wal || s->opts.durability != CIDSTORE_DURABILITY_SYNC)
		return 0;
	/* A write that changed nothing observed state that may itself not be
	 * durable yet: wait for everything logged so far. */
	uint64_t target = rc > 0 ? lsn : wal_next_lsn(s->wal) - 1;
	int w = wal_wait(s->wal, target);
	if (w < 0)
		fail_from_wal(s, w, "fdatasync");
	return w;
}

int store_apply_logged(cidstore_t *s, const cidstore_op_t *ops, size_t n)
{
	static const cid_t zero;
	pthread_rwlock_t *bl = &s->batch_lock;
	pthread_rwlock_rdlock(bl);
	uint64_t start;
	int rc = wal_reserve(s->wal, 1, &start);
	if (rc < 0) {
		pthread_rwlock_unlock(bl);
		fail_from_wal(s, rc, "WAL reserve");
		return rc;
	}
	/* The transaction id is the LSN of its TXN_START: unique forever. */
	wal_put(s->wal, start, WAL_OP_TXN_START, WAL_FLAG_TXN, &zero, &zero, start);
	struct txn_ctx t = {s, start};
	idx_hook_t hook = {txn_hook, &t, 0};
	int changed = 0, err = 0;
	for (size_t i = 0; i < n && !err; i++) {
		long r;
		switch (ops[i].op) {
		case CIDSTORE_OP_INSERT:
			r = idx_insert(s->ix, &ops[i].key, &ops[i].value, &hook);
			break;
		case CIDSTORE_OP_DELETE_VALUE:
			r = idx_delete_value(s->ix, &ops[i].key, &ops[i].value, &hook);
			break;
		default:
			r = idx_delete_key(s->ix, &ops[i].key, &hook);
			break;
		}
		if (r < 0)
			err = (int)r;
		else
			changed += r > 0;
	}
	/* Memory already holds the applied prefix, so the log commits exactly
	 * that prefix even when an operation failed (ENOMEM): memory and log
	 * never disagree.  After an I/O failure nothing more reaches the disk. */
	uint64_t commit = 0;
	rc = wal_append(s->wal, WAL_OP_TXN_COMMIT, &zero, &zero, start, &commit);
	pthread_rwlock_unlock(bl);
	if (rc < 0) {
		fail_from_wal(s, rc, "WAL append");
		return rc;
	}
	if (s->opts.durability == CIDSTORE_DURABILITY_SYNC) {
		rc = wal_wait(s->wal, commit);
		if (rc < 0) {
			fail_from_wal(s, rc, "fdatasync");
			return rc;
		}
	}
	return err ? err : changed;
}

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

static int rec_apply(void *ctx, int op, const cid_t *key, const cid_t *val, uint64_t lsn)
{
	(void)lsn;
	cidstore_t *s = ctx;
	long rc;
	switch (op) {
	case WAL_OP_INSERT:
		rc = idx_insert(s->ix, key, val, NULL);
		break;
	case WAL_OP_DELETE_VALUE:
		rc = idx_delete_value(s->ix, key, val, NULL);
		break;
	case WAL_OP_DELETE_KEY:
		rc = idx_delete_key(s->ix, key, NULL);
		break;
	default:
		return 0;
	}
	return rc < 0 ? (int)rc : 0;
}

static int rec_reset(void *ctx)
{
	cidstore_t *s = ctx;
	idx_t *nix;
	int rc = idx_create(&s->iopts, &nix);
	if (rc)
		return rc;
	idx_destroy(s->ix); /* NULL at open: prepare_index makes the first one */
	s->ix = nix;
	return 0;
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
	if (atomic_load_explicit(&s->failed, memory_order_acquire))
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
	if (!rc)
		rc = ckpt_begin(dirfd, s->io, lsn0, &w);
	if (!rc)
		rc = idx_scan(s->ix, ckpt_add_fn, w);
	if (!rc) {
		pthread_rwlock_wrlock(bl);
		uint64_t end = last_lsn(s);
		pthread_rwlock_unlock(bl);
		if (s->wal)
			rc = wal_wait(s->wal, end);
		if (!rc) {
			struct ckpt_info info;
			rc = ckpt_commit(w, end, &info);
			w = NULL;
		}
	}
	if (w)
		ckpt_abort(w);
	if (!rc) {
		uint64_t oldest = 0;
		rc = ckpt_prune(dirfd, s->io, CKPT_KEEP, &oldest);
		if (!rc && s->wal && oldest > 0) {
			int t = wal_trim(s->wal, oldest);
			rc = t < 0 ? t : 0;
		}
		atomic_store_explicit(&s->ckpt_wal_bytes, ws.bytes, memory_order_relaxed);
		atomic_fetch_add_explicit(&s->checkpoints, 1, memory_order_relaxed);
	}
	if (rc == CIDSTORE_EIO)
		store_fail(s, rc, "checkpoint");
	pthread_mutex_unlock(&s->ckpt_lock);
	return rc;
}

static void *maint_main(void *arg)
{
	cidstore_t *s = arg;
	pthread_mutex_lock(&s->maint_mu);
	while (!s->maint_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->maint_cv, &s->maint_mu, &ts);
		if (s->maint_stop)
			break;
		pthread_mutex_unlock(&s->maint_mu);
		struct wal_stats ws;
		wal_stats(s->wal, &ws);
		uint64_t since = ws.bytes -
			atomic_load_explicit(&s->ckpt_wal_bytes, memory_order_relaxed);
		if (since >= s->opts.checkpoint_wal_bytes &&
		    !atomic_load_explicit(&s->failed, memory_order_acquire))
			store_checkpoint(s);
		pthread_mutex_lock(&s->maint_mu);
	}
	pthread_mutex_unlock(&s->maint_mu);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* open / close / stats                                                */
/* ------------------------------------------------------------------ */

/* Before recovery: the store's own routing seed (META; the first open
 * records the caller's or a random one) and an index presized for the
 * newest checkpoint's keys (or opts.expected_keys, whichever is larger), so
 * that loading it does not grow the index step by step from its smallest
 * size.  The key count, not a depth, is what is passed on: how many keys a
 * group holds is the index's business.  A corrupt newest checkpoint only
 * costs the presizing; recovery finds and reports it. */
static int prepare_index(cidstore_t *s)
{
	int dirfd = sdir_fd(s->dir);
	uint64_t seed = s->opts.seed;
	while (seed == 0) {
		if (getentropy(&seed, sizeof(seed)) != 0)
			seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
	}
	int rc = meta_seed(dirfd, s->io, &seed);
	if (rc)
		return rc;
	uint64_t keys = s->opts.expected_keys;
	sdir_list_t l = {0};
	if (sdir_list_checkpoints(dirfd, &l) == 0 && l.n > 0) {
		struct ckpt_info info;
		if (ckpt_read_header(dirfd, s->io, l.v[l.n - 1].name, &info) == 0 &&
		    info.keys > keys)
			keys = info.keys;
	}
	sdir_list_free(&l);
	s->opts.seed = seed;
	s->iopts = (idx_options_t){
		.seed = seed,
		.initial_depth = s->opts.initial_depth,
		.expected_keys = keys,
	};
	return rec_reset(s);
}

int store_durable_open(cidstore_t *s)
{
	pthread_rwlock_init(&s->batch_lock, NULL);
	pthread_mutex_init(&s->ckpt_lock, NULL);
	pthread_mutex_init(&s->maint_mu, NULL);
	pthread_cond_init(&s->maint_cv, NULL);
	int rc = sdir_open(s->dir_path, SDIR_CREATE, &s->dir);
	if (rc)
		return rc;
	rc = prepare_index(s);
	if (rc)
		return rc;
	struct recov_apply ap = {rec_load, rec_apply, rec_reset, s};
	unsigned threads = s->opts.recovery_threads;
	if (threads == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		threads = n > 0 ? (unsigned)n : 1;
	}
	rc = recov_run(sdir_fd(s->dir), s->io, &ap, threads, 0, &s->recov);
	if (rc)
		return rc;
	if (s->opts.durability != CIDSTORE_DURABILITY_NONE) {
		struct wal_options wo = {
			.ring_records = s->opts.ring_records,
			.sync_interval_ms = s->opts.sync_interval_ms,
			.segment_bytes = s->opts.segment_bytes,
		};
		rc = wal_open(sdir_fd(s->dir), &wo, s->recov.last_lsn + 1, s->io, &s->wal);
		if (rc)
			return rc;
		if (s->opts.checkpoint_wal_bytes) {
			if (pthread_create(&s->maint, NULL, maint_main, s) == 0)
				s->maint_running = true;
		}
	}
	s->opened = true;
	return 0;
}

int store_durable_close(cidstore_t *s)
{
	int rc = 0;
	if (s->maint_running) {
		pthread_mutex_lock(&s->maint_mu);
		s->maint_stop = true;
		pthread_cond_broadcast(&s->maint_cv);
		pthread_mutex_unlock(&s->maint_mu);
		pthread_join(s->maint, NULL);
	}
	/* NONE: the checkpoint is the only copy.  Never after a refused or
	 * failed open: memory then holds nothing (or half a replay) and writing
	 * it would replace good files. */
	if (s->opened && s->opts.durability == CIDSTORE_DURABILITY_NONE &&
	    !atomic_load_explicit(&s->failed, memory_order_acquire))
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
	pthread_mutex_destroy(&s->maint_mu);
	pthread_cond_destroy(&s->maint_cv);
	return rc;
}

void store_durable_stats(cidstore_t *s, cidstore_stats_t *out)
{
	out->durability = s->opts.durability;
	if (s->wal) {
		struct wal_stats ws;
		wal_stats(s->wal, &ws);
		out->wal_lsn = ws.lsn;
		out->wal_durable_lsn = ws.durable_lsn;
		out->wal_bytes = ws.bytes -
			atomic_load_explicit(&s->ckpt_wal_bytes, memory_order_relaxed);
		out->wal_fsyncs = ws.fsyncs;
		out->wal_records = ws.records;
		if (ws.failed && !atomic_load_explicit(&s->failed, memory_order_acquire))
			fail_from_wal(s, CIDSTORE_EIO, "WAL");
	}
	out->checkpoints = atomic_load_explicit(&s->checkpoints, memory_order_relaxed);
	if (atomic_load_explicit(&s->failed, memory_order_acquire)) {
		out->failed = true;
		snprintf(out->failure, sizeof(out->failure), "%s", s->failure);
	}
}
