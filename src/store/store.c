/*
 * store.c — the public API (layer 4): argument checks, open and close,
 * reads (lock-free through the index), stats.  Every change goes to the one
 * write path (write.c); a directory behind the store: durable.c; the
 * options and retunes: options.c; maintenance: maint.c.
 * The handle and its synchronization table: store_internal.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cidstore.h"
#include "index/index.h"
#include "store/store_internal.h"

static void handle_free(cidstore_t *s)
{
	struct store_ext *ext = atomic_load_explicit(&s->ext, memory_order_acquire);
	if (ext)
		ext->destroy(ext);
	idx_destroy(s->ix);
	mt_fini(&s->metrics);
	store_opts_fini(s);
	pthread_mutex_destroy(&s->gil);
	pthread_mutex_destroy(&s->fail_mu);
	pthread_mutex_destroy(&s->retune_mu);
	pthread_mutex_destroy(&s->pass_mu);
	pthread_mutex_destroy(&s->maint_mu);
	pthread_cond_destroy(&s->maint_cv);
	free(s->dir_path);
	free(s);
}

static void handle_init(cidstore_t *s)
{
	pthread_mutex_init(&s->gil, NULL);
	pthread_mutex_init(&s->fail_mu, NULL);
	pthread_mutex_init(&s->retune_mu, NULL);
	pthread_mutex_init(&s->pass_mu, NULL);
	pthread_mutex_init(&s->maint_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->maint_cv, &ca);
	pthread_condattr_destroy(&ca);
}

/* Open, after the handle exists: the index (and for a dir: lock, recovery,
 * WAL), then the options snapshot, then the maintenance thread. */
static int open_parts(cidstore_t *s, const cidstore_options_t *o)
{
	int rc = store_stripes_init(s);
	if (rc)
		return rc;
	if (o->dir) {
		/* store_durable_open creates the index once it knows the store's
		 * own seed and the size of its newest checkpoint. */
		s->durable = true;
		s->dir_path = strdup(o->dir);
		if (!s->dir_path)
			return CIDSTORE_ENOMEM;
		s->opts.dir = s->dir_path;
		rc = store_durable_open(s);
		if (rc)
			return rc;
	} else {
		s->opts.durability = CIDSTORE_DURABILITY_NONE;
		s->iopts = (idx_options_t){
			.seed = o->seed,
			.initial_depth = o->initial_depth,
			.expected_keys = o->expected_keys,
		};
		rc = idx_create(&s->iopts, &s->ix);
		if (rc) {
			s->ix = NULL;
			return rc;
		}
	}
	rc = store_opts_init(s);
	if (rc)
		return rc;
	return s->read_only ? 0 : store_maint_start(s);
}

int cidstore_open_io(const cidstore_options_t *o, const struct log_io *io, cidstore_t **out)
{
	if (!o || !out)
		return CIDSTORE_EINVAL;
	int rc = store_check_options(o);
	if (rc)
		return rc;
	if (o->dir && !o->dir[0])
		return CIDSTORE_EINVAL;
	cidstore_t *s = calloc(1, sizeof(*s));
	if (!s)
		return CIDSTORE_ENOMEM;
	if (mt_init(&s->metrics, o->metrics) != 0) {
		free(s);
		return CIDSTORE_ENOMEM;
	}
	s->opts = *o;
	s->opts.dir = NULL;
	s->serialized = o->serialized;
	s->read_only = o->read_only;
	s->io = io_or_posix(io);
	handle_init(s);
	rc = open_parts(s, o);
	if (rc) {
		if (s->durable)
			store_durable_close(s);
		handle_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

CIDSTORE_API int cidstore_open(const cidstore_options_t *o, cidstore_t **out)
{
	return cidstore_open_io(o, NULL, out);
}

CIDSTORE_API int cidstore_close(cidstore_t *s)
{
	if (!s)
		return CIDSTORE_EINVAL;
	int rc = 0;
	store_maint_stop(s); /* first: it checkpoints and uses the index */
	if (s->durable)
		rc = store_durable_close(s);
	handle_free(s);
	return rc;
}

/* Metrics (metrics.h): every call on a handle is counted by result, bad
 * arguments (CIDSTORE_EINVAL) included; lookups and inserts are sampled for
 * their latency.  A NULL handle has no metrics. */

CIDSTORE_API int cidstore_insert(cidstore_t *s, const cid_t *key, const cid_t *val)
{
	if (!s)
		return CIDSTORE_EINVAL;
	mt_span_t sp;
	mt_begin(&s->metrics, &sp, MT_INSERT);
	int rc = key && val ? (int)store_write(s, IDX_OP_INSERT, key, val) : CIDSTORE_EINVAL;
	mt_end(&sp, MT_INSERT, MT_H_INSERT, rc);
	return rc;
}

CIDSTORE_API int cidstore_delete_value(cidstore_t *s, const cid_t *key, const cid_t *val)
{
	if (!s)
		return CIDSTORE_EINVAL;
	int rc = key && val ? (int)store_write(s, IDX_OP_DELETE_VALUE, key, val)
			    : CIDSTORE_EINVAL;
	mt_count(&s->metrics, MT_DELETE_VALUE, rc);
	return rc;
}

CIDSTORE_API long cidstore_delete_key(cidstore_t *s, const cid_t *key)
{
	if (!s)
		return CIDSTORE_EINVAL;
	long rc = key ? store_write(s, IDX_OP_DELETE_KEY, key, NULL) : CIDSTORE_EINVAL;
	mt_count(&s->metrics, MT_DELETE_KEY, rc);
	return rc;
}

CIDSTORE_API long cidstore_lookup(cidstore_t *s, const cid_t *key, cid_t *out, size_t cap)
{
	if (!s)
		return CIDSTORE_EINVAL;
	mt_span_t sp;
	mt_begin(&s->metrics, &sp, MT_LOOKUP);
	long rc = CIDSTORE_EINVAL;
	if (key && (out || !cap)) {
		gil_lock(s);
		rc = idx_lookup(s->ix, key, out, cap);
		gil_unlock(s);
	}
	mt_end(&sp, MT_LOOKUP, MT_H_LOOKUP, rc);
	return rc;
}

CIDSTORE_API int cidstore_contains(cidstore_t *s, const cid_t *key, const cid_t *val)
{
	if (!s)
		return CIDSTORE_EINVAL;
	int rc = CIDSTORE_EINVAL;
	if (key && val) {
		gil_lock(s);
		rc = idx_contains(s->ix, key, val);
		gil_unlock(s);
	}
	mt_count(&s->metrics, MT_CONTAINS, rc);
	return rc;
}

static int lookup_many(cidstore_t *s, const cid_t *keys, size_t n, cid_t *out, size_t cap,
		       long *counts)
{
	if (!s || (n && (!keys || !counts)) || (!out && cap))
		return CIDSTORE_EINVAL;
	/* The index addresses out + i * cap: refuse a product that wraps (no
	 * caller can have such a buffer, and a wrapped one would be written
	 * past its end). */
	size_t total;
	if (__builtin_mul_overflow(n, cap, &total) || total > SIZE_MAX / sizeof(cid_t))
		return CIDSTORE_EINVAL;
	if (n == 0)
		return 0;
	gil_lock(s);
	int rc = idx_lookup_many(s->ix, keys, n, out, cap, counts);
	gil_unlock(s);
	return rc;
}

CIDSTORE_API int cidstore_lookup_many(cidstore_t *s, const cid_t *keys, size_t n, cid_t *out,
				      size_t cap, long *counts)
{
	int rc = lookup_many(s, keys, n, out, cap, counts);
	if (s) {
		mt_count(&s->metrics, MT_LOOKUP_MANY, rc);
		mt_items(&s->metrics, MT_B_LOOKUP_MANY, rc == 0 ? n : 0, 0);
	}
	return rc;
}

static long insert_many(cidstore_t *s, const cid_t *keys, const cid_t *vals, size_t n,
			int *results)
{
	if (!s || (n && (!keys || !vals)))
		return CIDSTORE_EINVAL;
	if (n > LONG_MAX)
		return CIDSTORE_EINVAL; /* the count of pairs added must fit the return */
	if (n == 0)
		return store_write_gate(s);
	return store_write_many(s, keys, vals, n, results);
}

CIDSTORE_API long cidstore_insert_many(cidstore_t *s, const cid_t *keys, const cid_t *vals,
				       size_t n, int *results)
{
	long rc = insert_many(s, keys, vals, n, results);
	if (s) {
		mt_count(&s->metrics, MT_INSERT_MANY, rc);
		mt_items(&s->metrics, MT_B_INSERT_MANY, rc == CIDSTORE_EINVAL ? 0 : n,
			 rc > 0 ? (uint64_t)rc : 0);
	}
	return rc;
}

static long values(cidstore_t *s, const cid_t *key, cidstore_values_fn fn, void *ctx)
{
	if (!s || !key || !fn)
		return CIDSTORE_EINVAL;
	/* Serialized mode holds the global lock across fn (the header tells fn
	 * not to call the store then): the baseline runs every operation,
	 * delivery included, under the one lock. */
	gil_lock(s);
	long rc = idx_values(s->ix, key, fn, ctx);
	gil_unlock(s);
	return rc;
}

CIDSTORE_API long cidstore_values(cidstore_t *s, const cid_t *key, cidstore_values_fn fn,
				  void *ctx)
{
	long rc = values(s, key, fn, ctx);
	if (s)
		mt_count(&s->metrics, MT_VALUES, rc);
	return rc;
}

static int apply(cidstore_t *s, const cidstore_op_t *ops, size_t n)
{
	if (!s || (!ops && n))
		return CIDSTORE_EINVAL;
	for (size_t i = 0; i < n; i++) {
		idx_op_t op;
		if (store_op_from_public(ops[i].op, &op) != 0)
			return CIDSTORE_EINVAL;
	}
	if (n > INT32_MAX)
		return CIDSTORE_ERANGE;
	return store_write_batch(s, ops, n);
}

CIDSTORE_API int cidstore_apply(cidstore_t *s, const cidstore_op_t *ops, size_t n)
{
	int rc = apply(s, ops, n);
	if (s) {
		mt_count(&s->metrics, MT_APPLY, rc);
		mt_items(&s->metrics, MT_B_APPLY, rc == CIDSTORE_EINVAL ? 0 : n,
			 rc > 0 ? (uint64_t)rc : 0);
	}
	return rc;
}

static int sync_all(cidstore_t *s)
{
	if (!s->wal)
		return 0; /* in-memory, read-only or checkpoint-only: no log */
	return store_wait_durable(s, wal_next_lsn(s->wal) - 1);
}

CIDSTORE_API int cidstore_sync(cidstore_t *s)
{
	if (!s)
		return CIDSTORE_EINVAL;
	int rc = sync_all(s);
	mt_count(&s->metrics, MT_SYNC, rc);
	return rc;
}

CIDSTORE_API int cidstore_checkpoint(cidstore_t *s)
{
	if (!s)
		return CIDSTORE_EINVAL;
	int rc = s->durable ? store_checkpoint(s) : CIDSTORE_ENOTSUP;
	mt_count(&s->metrics, MT_CHECKPOINT, rc);
	return rc;
}

CIDSTORE_API int cidstore_scan(cidstore_t *s, cidstore_scan_fn fn, void *ctx)
{
	if (!s)
		return CIDSTORE_EINVAL;
	/* Serialized mode: the scan itself is lock-free; holding the global lock
	 * across user callbacks would deadlock a callback that calls back in. */
	int rc = fn ? idx_scan(s->ix, fn, ctx) : CIDSTORE_EINVAL;
	mt_count(&s->metrics, MT_SCAN, rc);
	return rc;
}

CIDSTORE_API int cidstore_stats(cidstore_t *s, cidstore_stats_t *out)
{
	if (!s || !out)
		return CIDSTORE_EINVAL;
	memset(out, 0, sizeof(*out));
	idx_stats(s->ix, out);
	out->durability = CIDSTORE_DURABILITY_NONE;
	if (s->durable)
		store_durable_stats(s, out);
	store_maint_stats(s, out);
	out->serialized = s->serialized;
	return 0;
}
