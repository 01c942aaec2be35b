/*
 * store_internal.h — the store handle and the durable-store glue.  Internal
 * (tests may include it to open a store over a fault-injecting I/O table).
 *
 * Synchronization of struct cidstore:
 *   | field            | how                                               |
 *   |------------------|---------------------------------------------------|
 *   | ix, opts, iopts, | immutable after open                              |
 *   | dir, wal, io,    |                                                   |
 *   | durable          |                                                   |
 *   | gil              | serialized mode only: every operation holds it    |
 *   | ckpt_lock        | serializes checkpoints (manual and automatic);    |
 *   |                  | never taken by insert/delete/lookup               |
 *   | ckpt_wal_bytes   | atomic (relaxed: a statistic and a trigger)       |
 *   | batch_lock       | batches hold it shared; checkpoints exclusive     |
 *   | failed, failure  | failed: atomic (release after failure is written) |
 *   | maint_*          | maint_mu                                          |
 *   | load             | open only: see the field                          |
 *   | next_txn         | not needed: txn ids are the LSN of TXN_START       |
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

struct cidstore {
	idx_t *ix;
	cidstore_options_t opts; /* copy; opts.dir points at dir_path */
	idx_options_t iopts;     /* what the index is created with: the store's
				    own seed, opts' sizing raised to fit the
				    newest checkpoint (durable.c) */
	bool serialized;
	pthread_mutex_t gil;

	/* durable stores (dir != NULL) */
	bool durable;            /* a directory backs the store */
	bool opened;             /* store_durable_open finished (close may then
				    write the final checkpoint of NONE stores) */
	char *dir_path;
	sdir_t *dir;
	wal_t *wal;              /* NULL unless durability is ASYNC or SYNC */
	const struct log_io *io;
	struct recov_result recov; /* what open found */

	pthread_mutex_t ckpt_lock;
	pthread_rwlock_t batch_lock; /* batches: read; checkpoint LSN picks: write */
	_Atomic uint64_t ckpt_wal_bytes; /* wal bytes when the last checkpoint began */
	_Atomic uint64_t checkpoints;

	_Atomic int failed;      /* sticky: an I/O error turned the store read-only */
	char failure[128];       /* written once before failed is set */
	pthread_mutex_t fail_mu;

	pthread_t maint;         /* automatic checkpoints */
	bool maint_running;
	bool maint_stop;         /* Synchronization: maint_mu */
	pthread_mutex_t maint_mu;
	pthread_cond_t maint_cv;
};

/* Opens with an explicit I/O table (NULL: POSIX).  For tests. */
int cidstore_open_io(const cidstore_options_t *o, const struct log_io *io,
		     cidstore_t **out);

/* durable.c */
int store_durable_open(cidstore_t *s);
int store_durable_close(cidstore_t *s);
int store_checkpoint(cidstore_t *s);
void store_fail(cidstore_t *s, int err, const char *why);
int store_log_hook(void *ctx, int op, const cid_t *key, const cid_t *val, uint64_t *lsn);
/* After a successful write (rc >= 0) in SYNC mode: waits until lsn (or, for
 * a write that changed nothing, everything logged so far) is durable. */
int store_after_write(cidstore_t *s, long rc, uint64_t lsn);
int store_apply_logged(cidstore_t *s, const cidstore_op_t *ops, size_t n);
void store_durable_stats(cidstore_t *s, cidstore_stats_t *out);

#endif
