/*
 * store.c — the public API (layer 4): argument checks, options, routing an
 * operation through the index (and, for durable stores, the log), the
 * serialized baseline, stats.
 *
 * The handle and its synchronization table: store_internal.h.  Durable
 * stores (a directory): durable.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cidstore.h"
#include "index/index.h"
#include "store/store_internal.h"

CIDSTORE_API const char *cidstore_version(void)
{
	return CIDSTORE_VERSION_STRING;
}

CIDSTORE_API const char *cidstore_strerror(int err)
{
	switch (err) {
	case CIDSTORE_OK:
		return "success";
	case CIDSTORE_EINVAL:
		return "invalid argument (NULL pointer, bad size, malformed hex or bad option)";
	case CIDSTORE_ENOMEM:
		return "out of memory; the store is unchanged";
	case CIDSTORE_EIO:
		return "I/O error; the store is now read-only";
	case CIDSTORE_ECORRUPT:
		return "a store file is corrupt (checksum or structure check failed)";
	case CIDSTORE_EVERSION:
		return "a store file was written by a newer format version";
	case CIDSTORE_EBUSY:
		return "the store directory is already open (in this or another process)";
	case CIDSTORE_ENOTSUP:
		return "operation not supported by this build or store configuration";
	case CIDSTORE_ERDONLY:
		return "the store is read-only (opened read_only, or failed earlier)";
	case CIDSTORE_ERANGE:
		return "value out of range";
	case CIDSTORE_ENOENT:
		return "the store directory does not exist";
	case CIDSTORE_EACCES:
		return "permission denied on the store directory or a file in it";
	case CIDSTORE_ENOTDIR:
		return "the store path is not a directory";
	case CIDSTORE_ENOSPC:
		return "no space left on the device; the store is now read-only";
	default:
		return "unknown cidstore error code";
	}
}

CIDSTORE_API void cidstore_options_init(cidstore_options_t *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof(*o));
	o->dir = NULL;
	o->durability = CIDSTORE_DURABILITY_SYNC;
	o->serialized = false;
	o->seed = 0;
	o->ring_records = 1u << 16;
	o->sync_interval_ms = 10;
	o->checkpoint_wal_bytes = 256ull << 20;
	o->segment_bytes = 64ull << 20;
	o->recovery_threads = 0;
	o->initial_depth = 0;
	o->expected_keys = 0;
	o->read_only = false;
	o->create_if_missing = true;
}

static int check_options(const cidstore_options_t *o)
{
	if (o->durability != CIDSTORE_DURABILITY_NONE &&
	    o->durability != CIDSTORE_DURABILITY_ASYNC &&
	    o->durability != CIDSTORE_DURABILITY_SYNC)
		return CIDSTORE_EINVAL;
	if (o->ring_records < 64 || (o->ring_records & (o->ring_records - 1)))
		return CIDSTORE_EINVAL;
	if (o->initial_depth > 20)
		return CIDSTORE_EINVAL;
	if (o->dir && o->segment_bytes < 4096)
		return CIDSTORE_EINVAL;
	return 0;
}

static void handle_free(cidstore_t *s)
{
	idx_destroy(s->ix);
	pthread_mutex_destroy(&s->gil);
	pthread_mutex_destroy(&s->fail_mu);
	free(s->dir_path);
	free(s);
}

int cidstore_open_io(const cidstore_options_t *o, const struct log_io *io, cidstore_t **out)
{
	if (!o || !out)
		return CIDSTORE_EINVAL;
	int rc = check_options(o);
	if (rc)
		return rc;
	if (o->dir && !o->dir[0])
		return CIDSTORE_EINVAL;
	cidstore_t *s = calloc(1, sizeof(*s));
	if (!s)
		return CIDSTORE_ENOMEM;
	s->opts = *o;
	s->opts.dir = NULL;
	s->serialized = o->serialized;
	s->io = io_or_posix(io);
	pthread_mutex_init(&s->gil, NULL);
	pthread_mutex_init(&s->fail_mu, NULL);
	if (o->dir) {
		/* store_durable_open creates the index once it knows the store's
		 * own seed and the size of its newest checkpoint. */
		s->durable = true;
		s->dir_path = strdup(o->dir);
		if (!s->dir_path) {
			handle_free(s);
			return CIDSTORE_ENOMEM;
		}
		s->opts.dir = s->dir_path;
		rc = store_durable_open(s);
		if (rc) {
			store_durable_close(s);
			handle_free(s);
			return rc;
		}
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
			handle_free(s);
			return rc;
		}
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
	if (s->durable)
		rc = store_durable_close(s);
	handle_free(s);
	return rc;
}

/* Writers of a failed store get CIDSTORE_EIO (the WAL answers the same). */
static inline int write_gate(cidstore_t *s)
{
	/* acquire: pairs with store_fail's release */
	return atomic_load_explicit(&s->failed, memory_order_acquire) ? CIDSTORE_EIO : 0;
}

/* After a write: SYNC durability waits for its record (durable.c). */
static inline long write_done(cidstore_t *s, long rc, const idx_hook_t *h)
{
	int w = s->wal ? store_after_write(s, rc, h->lsn) : 0;
	return w < 0 ? w : rc;
}

static inline idx_hook_t *hook_of(cidstore_t *s, idx_hook_t *h)
{
	if (!s->wal)
		return NULL;
	h->fn = store_log_hook;
	h->ctx = s;
	h->lsn = 0;
	return h;
}

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

CIDSTORE_API int cidstore_insert(cidstore_t *s, const cid_t *key, const cid_t *val)
{
	if (!s || !key || !val)
		return CIDSTORE_EINVAL;
	if (write_gate(s))
		return CIDSTORE_EIO;
	idx_hook_t h;
	gil_lock(s);
	int rc = idx_insert(s->ix, key, val, hook_of(s, &h));
	gil_unlock(s);
	return write_done(s, rc, &h);
}

CIDSTORE_API int cidstore_delete_value(cidstore_t *s, const cid_t *key, const cid_t *val)
{
	if (!s || !key || !val)
		return CIDSTORE_EINVAL;
	if (write_gate(s))
		return CIDSTORE_EIO;
	idx_hook_t h;
	gil_lock(s);
	int rc = idx_delete_value(s->ix, key, val, hook_of(s, &h));
	gil_unlock(s);
	return write_done(s, rc, &h);
}

CIDSTORE_API long cidstore_delete_key(cidstore_t *s, const cid_t *key)
{
	if (!s || !key)
		return CIDSTORE_EINVAL;
	if (write_gate(s))
		return CIDSTORE_EIO;
	idx_hook_t h;
	gil_lock(s);
	long rc = idx_delete_key(s->ix, key, hook_of(s, &h));
	gil_unlock(s);
	return write_done(s, rc, &h);
}

CIDSTORE_API long cidstore_lookup(cidstore_t *s, const cid_t *key, cid_t *out, size_t cap)
{
	if (!s || !key || (!out && cap))
		return CIDSTORE_EINVAL;
	gil_lock(s);
	long rc = idx_lookup(s->ix, key, out, cap);
	gil_unlock(s);
	return rc;
}

CIDSTORE_API int cidstore_contains(cidstore_t *s, const cid_t *key, const cid_t *val)
{
	if (!s || !key || !val)
		return CIDSTORE_EINVAL;
	gil_lock(s);
	int rc = idx_contains(s->ix, key, val);
	gil_unlock(s);
	return rc;
}

CIDSTORE_API int cidstore_lookup_many(cidstore_t *s, const cid_t *keys, size_t n, cid_t *out,
				      size_t cap, long *counts)
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

/* After an insert_many (SYNC durability).  When every pair was added, the
 * batch's own last record covers all of it.  Otherwise some pair was found
 * present -- it observed state whose record may not be durable yet, as
 * cidstore_insert answering 0 -- or an error stopped the batch after pairs
 * went in: wait for everything logged so far, as a single call that
 * changed nothing does.  The first error is returned, never masked by the
 * wait. */
static long write_done_many(cidstore_t *s, long rc, size_t n, const idx_hook_t *h)
{
	if (!s->wal)
		return rc;
	int w = rc == (long)n ? store_after_write(s, 1, h->lsn) : store_after_write(s, 0, 0);
	if (rc < 0)
		return rc;
	return w < 0 ? w : rc;
}

CIDSTORE_API long cidstore_insert_many(cidstore_t *s, const cid_t *keys, const cid_t *vals,
				       size_t n, int *results)
{
	if (!s || (n && (!keys || !vals)))
		return CIDSTORE_EINVAL;
	if (n > LONG_MAX)
		return CIDSTORE_EINVAL; /* the count of pairs added must fit the return */
	if (write_gate(s))
		return CIDSTORE_EIO;
	if (n == 0)
		return 0;
	idx_hook_t h;
	gil_lock(s);
	long rc = idx_insert_many(s->ix, keys, vals, n, results, hook_of(s, &h));
	gil_unlock(s);
	return write_done_many(s, rc, n, &h);
}

CIDSTORE_API long cidstore_values(cidstore_t *s, const cid_t *key, cidstore_values_fn fn,
				  void *ctx)
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

CIDSTORE_API int cidstore_apply(cidstore_t *s, const cidstore_op_t *ops, size_t n)
{
	if (!s || (!ops && n))
		return CIDSTORE_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (ops[i].op != CIDSTORE_OP_INSERT && ops[i].op != CIDSTORE_OP_DELETE_VALUE &&
		    ops[i].op != CIDSTORE_OP_DELETE_KEY)
			return CIDSTORE_EINVAL;
	if (n > INT32_MAX)
		return CIDSTORE_ERANGE;
	if (write_gate(s))
		return CIDSTORE_EIO;
	if (s->wal) {
		gil_lock(s);
		int rc = store_apply_logged(s, ops, n);
		gil_unlock(s);
		return rc;
	}
	int changed = 0;
	gil_lock(s);
	for (size_t i = 0; i < n; i++) {
		long rc;
		switch (ops[i].op) {
		case CIDSTORE_OP_INSERT:
			rc = idx_insert(s->ix, &ops[i].key, &ops[i].value, NULL);
			break;
		case CIDSTORE_OP_DELETE_VALUE:
			rc = idx_delete_value(s->ix, &ops[i].key, &ops[i].value, NULL);
			break;
		default:
			rc = idx_delete_key(s->ix, &ops[i].key, NULL);
			break;
		}
		if (rc < 0) {
			gil_unlock(s);
			return (int)rc;
		}
		changed += rc > 0;
	}
	gil_unlock(s);
	return changed;
}

CIDSTORE_API int cidstore_sync(cidstore_t *s)
{
	if (!s)
		return CIDSTORE_EINVAL;
	if (!s->wal)
		return 0; /* in-memory or checkpoint-only: no log to flush */
	int rc = wal_sync(s->wal);
	if (rc < 0)
		store_fail(s, rc, "fdatasync");
	return rc;
}

CIDSTORE_API int cidstore_checkpoint(cidstore_t *s)
{
	if (!s)
		return CIDSTORE_EINVAL;
	if (!s->durable)
		return CIDSTORE_ENOTSUP;
	return store_checkpoint(s);
}

CIDSTORE_API int cidstore_scan(cidstore_t *s, cidstore_scan_fn fn, void *ctx)
{
	if (!s || !fn)
		return CIDSTORE_EINVAL;
	/* Serialized mode: the scan itself is lock-free; holding the global lock
	 * across user callbacks would deadlock a callback that calls back in. */
	return idx_scan(s->ix, fn, ctx);
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
	out->serialized = s->serialized;
	return 0;
}
