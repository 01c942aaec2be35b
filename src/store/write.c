/*
 * write.c — the one write path of the store.
 *
 * Every change reaches the index here and only here, through idx_apply (the
 * single switch over the index's opcodes):
 *   store_write        insert / delete_value / delete_key
 *   store_write_many   insert_many
 *   store_write_batch  cidstore_apply (framed TXN_START .. TXN_COMMIT)
 *   store_write_batch_ex  the same for the triple layer: a prefix of
 *                      operations logged on their own before the batch,
 *                      per-operation results, the SYNC wait left to the
 *                      caller
 *   store_replay       recovery's replay of a logged change
 * A logged store (a WAL: durability ASYNC or SYNC) passes the one log hook
 * (log_hook) to the index, which calls it while it holds the key's group
 * lock and before it publishes the change, so the LSN orders operations on
 * one key exactly as memory does (DESIGN §6).  The opcode maps live here
 * and nowhere else: public CIDSTORE_OP_* -> idx_op_t (store_op_from_public),
 * idx_op_t -> WAL record opcode (wal_op_of) and back (idx_op_of_wal).
 *
 * Durability (the one retunable option a write reads) comes from one read
 * of the options snapshot per call (struct write_opts below).
 * Durability SYNC: a change that changed something waits for its own LSN;
 * one that changed nothing observed state whose record may not be durable
 * yet, so it waits for everything logged so far.
 *
 * Failure: the first I/O error makes the store refuse writes for good
 * (failed holds CIDSTORE_EIO or CIDSTORE_ENOSPC; failure says why: the
 * WAL's own reason when it has one).
 */
#include <stdio.h>
#include <string.h>

#include "log/record.h"
#include "store/store_internal.h"

_Static_assert((int)IDX_OP_INSERT == (int)CIDSTORE_OP_INSERT &&
		       (int)IDX_OP_DELETE_VALUE == (int)CIDSTORE_OP_DELETE_VALUE &&
		       (int)IDX_OP_DELETE_KEY == (int)CIDSTORE_OP_DELETE_KEY,
	       "the public opcodes and the index's share values (mapped anyway)");

int store_op_from_public(int op, idx_op_t *out)
{
	switch (op) {
	case CIDSTORE_OP_INSERT:
		*out = IDX_OP_INSERT;
		return 0;
	case CIDSTORE_OP_DELETE_VALUE:
		*out = IDX_OP_DELETE_VALUE;
		return 0;
	case CIDSTORE_OP_DELETE_KEY:
		*out = IDX_OP_DELETE_KEY;
		return 0;
	}
	return CIDSTORE_EINVAL;
}

static int wal_op_of(idx_op_t op)
{
	switch (op) {
	case IDX_OP_INSERT:
		return WAL_OP_INSERT;
	case IDX_OP_DELETE_VALUE:
		return WAL_OP_DELETE_VALUE;
	case IDX_OP_DELETE_KEY:
		return WAL_OP_DELETE_KEY;
	}
	return 0; /* wal_append refuses it: CIDSTORE_EINVAL */
}

static int idx_op_of_wal(int op, idx_op_t *out)
{
	switch (op) {
	case WAL_OP_INSERT:
		*out = IDX_OP_INSERT;
		return 0;
	case WAL_OP_DELETE_VALUE:
		*out = IDX_OP_DELETE_VALUE;
		return 0;
	case WAL_OP_DELETE_KEY:
		*out = IDX_OP_DELETE_KEY;
		return 0;
	}
	return CIDSTORE_EINVAL;
}

/* ---- failure ---- */

void store_fail(cidstore_t *s, int err, const char *why)
{
	int code = err == CIDSTORE_ENOSPC ? CIDSTORE_ENOSPC : CIDSTORE_EIO;
	pthread_mutex_lock(&s->fail_mu);
	if (!atomic_load_explicit(&s->failed, memory_order_relaxed)) {
		snprintf(s->failure, sizeof(s->failure), "%s", why);
		/* release: the message is written before failed is seen */
		atomic_store_explicit(&s->failed, code, memory_order_release);
	}
	pthread_mutex_unlock(&s->fail_mu);
}

/* The store fails with the WAL's own reason (call, file, errno text) when
 * it has one. */
static void fail_from_wal(cidstore_t *s, int err, const char *what)
{
	const char *why = wal_failure(s->wal);
	char buf[96];
	if (!why || !why[0]) {
		snprintf(buf, sizeof(buf), "%s: %s", what, cidstore_strerror(err));
		why = buf;
	}
	store_fail(s, err, why);
}

int store_write_gate(cidstore_t *s)
{
	if (s->read_only)
		return CIDSTORE_ERDONLY;
	/* acquire: pairs with store_fail's release */
	return atomic_load_explicit(&s->failed, memory_order_acquire);
}

/* ---- the log hook ---- */

struct log_ctx {
	cidstore_t *s;
	uint64_t txn; /* 0, or the batch's id (the LSN of its TXN_START) */
};

static int log_hook(void *ctx, idx_op_t op, const cid_t *key, const cid_t *val, uint64_t *lsn)
{
	struct log_ctx *c = ctx;
	int rc = wal_append(c->s->wal, wal_op_of(op), key, val, c->txn, lsn);
	if (rc < 0)
		fail_from_wal(c->s, rc, "WAL append");
	return rc;
}

/* The hook for a change of this store (NULL without a log). */
static idx_hook_t *hook_init(idx_hook_t *h, struct log_ctx *c, cidstore_t *s, uint64_t txn)
{
	if (!s->wal)
		return NULL;
	c->s = s;
	c->txn = txn;
	h->fn = log_hook;
	h->ctx = c;
	h->lsn = 0;
	return h;
}

int store_wait_durable(cidstore_t *s, uint64_t lsn)
{
	int w = wal_wait(s->wal, lsn);
	if (w < 0)
		fail_from_wal(s, w, "fdatasync");
	return w;
}

/* The options a logged write runs under (options.c): durability is the
 * one retunable option a write reads.  The section stays open from before
 * the index change to after the log append, so a retune's grace period
 * ends only once every write under the old options has its record in the
 * log (the ASYNC -> SYNC promise, options.c).  Without a log nothing is
 * read: durability is NONE and cannot change. */
struct write_opts {
	struct opts_ref ref;
	cidstore_durability_t durability;
};

static void wopts_enter(cidstore_t *s, struct write_opts *w)
{
	w->durability = CIDSTORE_DURABILITY_NONE;
	if (s->wal)
		w->durability = store_opts_enter(s, &w->ref)->durability;
}

static void wopts_exit(cidstore_t *s, struct write_opts *w)
{
	if (s->wal)
		store_opts_exit(&w->ref);
}

/* Durability SYNC, after a write: own -> wait for the write's own record
 * lsn; otherwise (it changed nothing: it observed state whose record may
 * not be durable yet; or an error stopped it after changes) for everything
 * logged so far.  Returns 0 or the log's failure. */
static int sync_wait(cidstore_t *s, const struct write_opts *w, bool own, uint64_t lsn)
{
	if (!s->wal || w->durability != CIDSTORE_DURABILITY_SYNC)
		return 0;
	uint64_t t0 = mt_clock(&s->metrics); /* every SYNC commit is timed */
	int rc = store_wait_durable(s, own ? lsn : wal_next_lsn(s->wal) - 1);
	mt_time(&s->metrics, MT_H_SYNC_COMMIT, t0);
	return rc;
}

/* ---- the write calls ---- */

long store_write(cidstore_t *s, idx_op_t op, const cid_t *key, const cid_t *val)
{
	int rc = store_write_gate(s);
	if (rc)
		return rc;
	idx_hook_t h;
	struct log_ctx c;
	struct write_opts wo;
	wopts_enter(s, &wo);
	gil_lock(s);
	long r = idx_apply(s->ix, op, key, val, hook_init(&h, &c, s, 0));
	gil_unlock(s);
	wopts_exit(s, &wo);
	if (r < 0)
		return r; /* nothing changed (ENOMEM, or the log failed) */
	if (r > 0 && op != IDX_OP_INSERT)
		store_count_removals(s, (uint64_t)r);
	int w = sync_wait(s, &wo, r > 0, h.lsn);
	return w < 0 ? w : r;
}

long store_write_many(cidstore_t *s, const cid_t *keys, const cid_t *vals, size_t n,
		      int *results)
{
	int rc = store_write_gate(s);
	if (rc)
		return rc;
	idx_hook_t h;
	struct log_ctx c;
	struct write_opts wo;
	wopts_enter(s, &wo);
	gil_lock(s);
	long r = idx_insert_many(s->ix, keys, vals, n, results, hook_init(&h, &c, s, 0));
	gil_unlock(s);
	wopts_exit(s, &wo);
	/* Every pair added: the batch's last record covers all of it;
	 * otherwise wait for everything logged so far.  The first error is
	 * returned, never masked by the wait. */
	int w = sync_wait(s, &wo, r == (long)n, h.lsn);
	if (r < 0)
		return r;
	return w < 0 ? w : r;
}

/* Applies ops[lo .. hi) in order through idx_apply with hook (NULL: no
 * log), stopping at the first error, which it returns (0 otherwise).
 * results[i] (results may be NULL) gets 1 for an operation that changed
 * the store; *changed counts them, *removed the values they removed. */
static int apply_ops(cidstore_t *s, const cidstore_op_t *ops, size_t lo, size_t hi,
		     idx_hook_t *hook, int *results, int *changed, uint64_t *removed)
{
	for (size_t i = lo; i < hi; i++) {
		idx_op_t op;
		long r = store_op_from_public(ops[i].op, &op);
		if (r == 0)
			r = idx_apply(s->ix, op, &ops[i].key, &ops[i].value, hook);
		if (r < 0)
			return (int)r;
		if (r > 0) {
			++*changed;
			if (results)
				results[i] = 1;
			if (op != IDX_OP_INSERT)
				*removed += (uint64_t)r;
		}
	}
	return 0;
}

int store_write_batch(cidstore_t *s, const cidstore_op_t *ops, size_t n)
{
	return store_write_batch_ex(s, ops, 0, n, NULL, NULL);
}

int store_write_batch_ex(cidstore_t *s, const cidstore_op_t *ops, size_t nfree, size_t n,
			 int *results, uint64_t *wait_lsn)
{
	static const cid_t zero;
	if (wait_lsn)
		*wait_lsn = 0;
	if (results)
		memset(results, 0, n * sizeof(*results));
	int rc = store_write_gate(s);
	if (rc)
		return rc;
	idx_hook_t h;
	struct log_ctx c;
	idx_hook_t *hook = NULL;
	uint64_t start = 0;
	int changed = 0, err = 0;
	uint64_t removed = 0;
	struct write_opts wo;
	wopts_enter(s, &wo);
	bool sync = s->wal && wo.durability == CIDSTORE_DURABILITY_SYNC;
	gil_lock(s);
	/* ops[0 .. nfree): each logged on its own (txn 0), before the batch,
	 * so the batch's commit LSN covers their records too. */
	err = apply_ops(s, ops, 0, nfree, hook_init(&h, &c, s, 0), results, &changed, &removed);
	if (err) {
		gil_unlock(s);
		wopts_exit(s, &wo);
		if (removed)
			store_count_removals(s, removed);
		if (wait_lsn) {
			if (sync)
				*wait_lsn = wal_next_lsn(s->wal) - 1;
			return err;
		}
		int w = sync_wait(s, &wo, false, 0);
		return w < 0 ? w : err;
	}
	if (s->wal) {
		/* batch_lock (shared): a checkpoint never picks its LSN inside
		 * a batch.  The transaction id is the LSN of its TXN_START:
		 * unique forever. */
		pthread_rwlock_rdlock(&s->batch_lock);
		rc = wal_reserve(s->wal, 1, &start);
		if (rc < 0) {
			pthread_rwlock_unlock(&s->batch_lock);
			gil_unlock(s);
			wopts_exit(s, &wo);
			fail_from_wal(s, rc, "WAL reserve");
			return rc;
		}
		wal_put(s->wal, start, WAL_OP_TXN_START, WAL_FLAG_TXN, &zero, &zero, start);
		hook = hook_init(&h, &c, s, start);
	}
	err = apply_ops(s, ops, nfree, n, hook, results, &changed, &removed);
	uint64_t commit = 0;
	if (s->wal) {
		/* Memory holds the applied prefix, so the log commits exactly
		 * that prefix even when an operation failed (ENOMEM): memory
		 * and log never disagree.  After an I/O failure nothing more
		 * reaches the disk. */
		rc = wal_append(s->wal, WAL_OP_TXN_COMMIT, &zero, &zero, start, &commit);
		pthread_rwlock_unlock(&s->batch_lock);
		if (rc < 0) {
			gil_unlock(s);
			wopts_exit(s, &wo);
			fail_from_wal(s, rc, "WAL append");
			return rc;
		}
	}
	gil_unlock(s);
	wopts_exit(s, &wo);
	if (removed)
		store_count_removals(s, removed);
	if (wait_lsn) {
		if (sync)
			*wait_lsn = commit;
		return err ? err : changed;
	}
	rc = sync_wait(s, &wo, true, commit);
	if (rc < 0)
		return rc;
	return err ? err : changed;
}

int store_replay(cidstore_t *s, int wal_op, const cid_t *key, const cid_t *val)
{
	idx_op_t op;
	if (idx_op_of_wal(wal_op, &op) != 0)
		return 0; /* not a change of the index */
	long rc = idx_apply(s->ix, op, key, val, NULL);
	if (rc > 0 && op != IDX_OP_INSERT)
		store_count_removals(s, (uint64_t)rc);
	return rc < 0 ? (int)rc : 0;
}
