/*
 * index.h — the concurrent in-memory index (layer 2).  Internal.
 *
 * Knows nothing about files or the log.  Only the store layer above calls
 * it: through the idx_log_fn hook below it logs each change (called inside
 * the per-key critical section, so the LSN it takes orders the change
 * exactly as memory does); checkpoints read it with idx_scan(), recovery
 * loads it with the bulk path idx_insert_set() and replays with
 * idx_apply().
 *
 * Every function may be called by any thread at any time, except
 * idx_destroy (no other call may run).  No registration: the first call
 * from a thread registers its epoch record; the record goes back to the
 * index when the thread exits.  The design (layout, arithmetic, invariants)
 * is the top comment of index.c.
 */
#ifndef CIDSTORE_INDEX_H
#define CIDSTORE_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cidstore.h"

typedef struct idx idx_t;

typedef struct idx_options {
	uint64_t seed;          /* routing seed (0: getrandom) */
	unsigned initial_depth; /* at least 2^depth groups at creation (at most 2^22) */
	uint64_t expected_keys; /* presize for about this many keys (0: start small) */
} idx_options_t;

/* The three changes the index makes.  The index's own opcodes: the store
 * maps the public CIDSTORE_OP_* onto them and them onto log records
 * (store/write.c), so no layer passes another layer's codes through. */
typedef enum idx_op {
	IDX_OP_INSERT = 1,       /* add val to key's set */
	IDX_OP_DELETE_VALUE = 2, /* remove val from key's set */
	IDX_OP_DELETE_KEY = 3,   /* remove key and every value */
} idx_op_t;

/* Log hook: called while the key is locked, after the index has decided the
 * operation changes the key and before the change is published.  val is
 * NULL for IDX_OP_DELETE_KEY.  Returns 0 to go on (the change is then
 * published), or a negative error: the change is abandoned and the error
 * returned to the caller.  *lsn is for the hook's own use. */
typedef int (*idx_log_fn)(void *ctx, idx_op_t op, const cid_t *key,
			  const cid_t *val, uint64_t *lsn);

typedef struct idx_hook {
	idx_log_fn fn;
	void *ctx;
	uint64_t lsn; /* set by fn; read by the caller after the operation */
} idx_hook_t;

int idx_create(const idx_options_t *o, idx_t **out);
void idx_destroy(idx_t *ix);

/* Return values as the public cidstore_* functions.  hook may be NULL. */
int idx_insert(idx_t *ix, const cid_t *key, const cid_t *val, idx_hook_t *hook);
int idx_delete_value(idx_t *ix, const cid_t *key, const cid_t *val, idx_hook_t *hook);
long idx_delete_key(idx_t *ix, const cid_t *key, idx_hook_t *hook);

/* One change by opcode (val ignored for IDX_OP_DELETE_KEY): the single
 * switch over idx_op_t, used by every write path of the store and by
 * recovery's replay.  Returns as the function it calls; CIDSTORE_EINVAL
 * for an opcode outside the enum. */
long idx_apply(idx_t *ix, idx_op_t op, const cid_t *key, const cid_t *val, idx_hook_t *hook);
long idx_lookup(idx_t *ix, const cid_t *key, cid_t *out, size_t cap);
int idx_contains(idx_t *ix, const cid_t *key, const cid_t *val);
int idx_scan(idx_t *ix, cidstore_scan_fn fn, void *ctx);
void idx_stats(idx_t *ix, cidstore_stats_t *out);

/* Batched lookups (cidstore_lookup_many): counts[i] as idx_lookup(keys[i]),
 * out + i * cap gets its first min(counts[i], cap) values.  The cache misses
 * of the keys are overlapped (group prefetching).  Returns 0 or
 * CIDSTORE_ENOMEM. */
int idx_lookup_many(idx_t *ix, const cid_t *keys, size_t n, cid_t *out, size_t cap,
		    long *counts);

/* Batched inserts (cidstore_insert_many): results[i] (results may be NULL)
 * as idx_insert(keys[i], vals[i]); the hook is called for every pair that
 * changes the store and hook->lsn ends as the last LSN it set.  Returns the
 * number of pairs added, or the first error (pairs before it are in). */
long idx_insert_many(idx_t *ix, const cid_t *keys, const cid_t *vals, size_t n, int *results,
		     idx_hook_t *hook);

/* All values of key from one instant, in chunks (cidstore_values): fn runs
 * inside the reader's epoch section (a slow fn delays memory reclamation,
 * never another thread's operation).  Returns the number of values
 * delivered, fn's non-zero return as is, or CIDSTORE_ENOMEM. */
long idx_values(idx_t *ix, const cid_t *key, cidstore_values_fn fn, void *ctx);

/* Bulk path for recovery (no hook, no log): adds the n values vals (any
 * order, duplicates and values already present allowed) to key in one
 * operation, building a large value set at once instead of one insert per
 * value.  Returns the number of values added or CIDSTORE_ENOMEM. */
long idx_insert_set(idx_t *ix, const cid_t *key, const cid_t *vals, size_t n);

/* One key's values for idx_insert_sets. */
typedef struct idx_set {
	const cid_t *key;
	const cid_t *vals;
	size_t n;
} idx_set_t;

/* idx_insert_set for n keys (recovery's checkpoint load, several loader
 * threads at once: thread-safe like every write).  The group lines of a
 * batch of keys are prefetched before any of them is written, so their
 * cache misses overlap.  Returns the number of values added, or the first
 * error (the keys before it are in). */
long idx_insert_sets(idx_t *ix, const idx_set_t *s, size_t n);

/* A hint: a write of key comes soon (recovery's replay workers call it a
 * few operations ahead).  Prefetches the key's first group line for
 * writing; reads nothing else, changes nothing. */
void idx_prefetch(idx_t *ix, const cid_t *key);

/* Waits until every operation that had started when it was called has
 * finished (an epoch grace period).  Used by checkpoints: an operation that
 * took its LSN before the call has published its change after it.
 * Waits for: other threads' operations in progress. */
int idx_quiesce(idx_t *ix); /* 0 or CIDSTORE_ENOMEM */

/* Background maintenance (DESIGN §11; the design is maint.c's top
 * comment).  One bounded pass, concurrent with readers and writers (they
 * never wait for it, except a writer for one group the pass holds for a
 * few entry copies, or a writer placing a new key for the locks of a
 * group's sibling while a halving is prepared): finishes a migration in
 * progress, replaces a table that deletes left sparse by one of half the
 * size (repeatedly, while the keys fill under half of the smaller table's
 * slots, never below options.initial_depth), moves live entries out of
 * sparse entry chunks and gives empty chunks back to the OS.
 * Returns early, resuming at the next call, when budget_ns (0: unbounded)
 * of wall time is used up.  *out (may be NULL) gets what this pass did.
 * One pass runs at a time (a second caller waits).  Returns 0,
 * CIDSTORE_ENOMEM, or CIDSTORE_EINVAL when called from inside an index
 * operation (a callback).  Waits for: another pass, epoch grace periods. */
typedef struct idx_maint_stats { uint64_t entries_moved, chunks_released, bytes_released, tables_shrunk, groups_visited; } idx_maint_stats_t;
int idx_maintain(idx_t *ix, uint64_t budget_ns, idx_maint_stats_t *out); /* one bounded pass, concurrent with readers and writers; 0 or CIDSTORE_ENOMEM; returns early when budget_ns (0 = unbounded) is used up */

/* Expensive structural check (tests, recovery): every key sits in one of
 * the two groups its hash routes to, no key appears twice, value sets are
 * well-formed, counts agree.  Returns 0 or a negative code; only call while
 * no writer runs. */
int idx_valid(idx_t *ix);

#endif
