/*
 * recovery.c — newest valid checkpoint + WAL replay.
 *
 * INPUT: the store directory: checkpoints ckpt-<L>.ckpt (checkpoint.c) and
 * segments wal-<first LSN>.log (format and validity rule in record.h).
 *
 * 1. CHECKPOINT.  Newest first.  A header of a newer format version ->
 *    CIDSTORE_EVERSION (refused, never misread, no fallback).  A corrupt
 *    one (bad magic, CRC, framing, truncated) -> the previous one.  Without
 *    a usable checkpoint the base is the empty state.  A fallback is only
 *    accepted when the WAL proves it loses nothing: the segments must hold
 *    every record from base + 1 (rule 3) up to at least the LSN in the
 *    corrupt newer checkpoint's name (acknowledged writes up to there were
 *    durable in the WAL when it was committed).  Otherwise ECORRUPT.
 *
 * 2. SEGMENTS, in LSN order from the last one whose first LSN <= base + 1
 *    (older ones hold only records the checkpoint covers).  In each: record
 *    0 must be a SEGMENT_HEADER naming the segment's first LSN; then
 *    records with consecutive LSNs (rec_decode_next) up to the END: the
 *    first slot that is not a valid next record (or end of file).  After
 *    the END no slot of the file may hold a record that decodes as valid
 *    by itself: that would be a hole or bad record in the middle of the log.
 *    The END is
 *      - 128 zero bytes (preallocated tail): the segment is finished;
 *      - a record that is valid but has the wrong LSN: ECORRUPT (LSN gap);
 *      - a newer-version record: EVERSION;
 *      - an invalid record (bad CRC, ...) = torn write: allowed only in the
 *        LAST segment (nothing valid after it, no later segment).  It is
 *        cut: the non-zero bytes from the END on are overwritten with zeros
 *        and fdatasync'd (unless RECOV_READONLY), so the writer can go on
 *        at the END.  In an older segment it is ECORRUPT.
 *    A last segment whose header itself is torn or missing (crash while it
 *    was being created) and that holds nothing valid is removed.
 *
 * 3. CONTINUITY.  Each later segment's first LSN must equal the last LSN of
 *    the previous one + 1 (a missing segment or a gap is ECORRUPT); the
 *    first segment read must start at or before base + 1 (ECORRUPT
 *    otherwise: records the checkpoint does not cover are gone); the log
 *    must reach the chosen checkpoint's end LSN (the WAL was durable up to
 *    there when it was committed, so ending earlier means lost records).
 *
 * 4. REPLAY of records with LSN > base.  INSERT / DELETE_VALUE / DELETE_KEY
 *    go to ap->apply.  Records flagged WAL_FLAG_TXN belong to transaction
 *    `txn` (opened by TXN_START or by its first record) and are applied only
 *    once its TXN_COMMIT is read; TXN_ABORT or the end of the log without a
 *    commit drops them.  To keep every key's replay in LSN order — a
 *    non-transactional delete logged after a batch's insert of the same
 *    pair must still win — once any transaction is open, every later
 *    record is held in one FIFO; the FIFO is released from its head as far
 *    as records whose transaction is resolved (or that have none) reach.
 *    So the applied sequence is the LSN-ordered log minus the records of
 *    transactions that did not commit.
 *    (The store must not take a checkpoint whose base falls inside an open
 *    transaction: records <= base are not replayed, whatever their txn.)
 *
 * 5. PARALLEL REPLAY (threads > 1).  The reader (calling thread) decodes
 *    and validates; operations are partitioned over `threads` workers by a
 *    fixed hash of the key, so all operations on one key go to one worker
 *    through one FIFO queue: per-key LSN order is preserved, which is the
 *    only order the result depends on (each operation touches one key).
 *    Operations travel in batches of RECOV_BATCH; each worker queue holds
 *    at most RECOV_QUEUE batches (the reader waits when it is full).  The
 *    first apply error stops the workers (they drain without applying) and
 *    is returned.  Workers are joined before recov_run returns.  A worker
 *    calls ap->prefetch (when set) RECOV_PREFETCH operations ahead of
 *    apply, so the cache misses of its next operations overlap.
 *
 * 6. PARALLEL CHECKPOINT LOAD (ap->load_many set).  The chosen checkpoint
 *    is loaded by `threads` loaders (ckpt_load: each takes the next chunk
 *    of whole blocks in turn, checks and delivers it on its own), before
 *    any replay; the loaders are joined before the log is read.  A corrupt
 *    block anywhere stops them; ap->reset then discards the partial load
 *    (or, without reset, every checkpoint was first verified the same way)
 *    and the previous checkpoint is tried, exactly as with one thread.
 */
#include "log/recovery.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cid/hash.h"
#include "log/checkpoint.h"
#include "log/dir.h"
#include "log/io.h"
#include "log/record.h"

#define RECOV_BATCH 512u
#define RECOV_PREFETCH 8u /* ops a worker's ap->prefetch runs ahead of apply */
#define RECOV_QUEUE 8u
#define RECOV_MAX_THREADS 256u
#define RECOV_READ_BYTES (4u << 20) /* multiple of WAL_REC_SIZE */
#define RECOV_HASH_SEED 0x6369647265636f76ull

static double recov_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define RECOV_FAIL(st, rc, ...) \
	do { \
		snprintf((st)->out->msg, sizeof((st)->out->msg), __VA_ARGS__); \
		return (rc); \
	} while (0)

/* ---------------------------------------------------------------------- */
/* Workers                                                                  */
/* ---------------------------------------------------------------------- */

struct recov_op {
	uint64_t lsn;
	cid_t key;
	cid_t val;
	uint8_t op;
};

struct recov_batch {
	struct recov_batch *next;
	unsigned n;
	struct recov_op ops[RECOV_BATCH];
};

struct recov_pool;

struct recov_worker {
	struct recov_pool *pool; /* immutable */
	pthread_t tid;           /* immutable after start */
	pthread_mutex_t mu;
	pthread_cond_t work;     /* signalled: batch queued or stop */
	pthread_cond_t space;    /* signalled: batch taken */
	struct recov_batch *head, *tail; /* guarded by mu */
	unsigned queued;         /* guarded by mu */
	bool stop;               /* guarded by mu */
	struct recov_batch *fill; /* owner: reader */
	uint64_t applied;        /* owner: worker; read by the reader after join */
};

struct recov_pool {
	const struct recov_apply *ap; /* immutable */
	unsigned n;                   /* immutable */
	struct recov_worker *w;
	cid_hash_seed_t seed;         /* immutable */
	/* First apply error, 0 if none.  Written once by CAS (relaxed is
	 * enough for the value itself: the reader reads it again after
	 * pthread_join, which orders everything the worker did). */
	atomic_int err;
};

static void *recov_worker_main(void *arg)
{
	struct recov_worker *w = arg;
	const struct recov_apply *ap = w->pool->ap;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (w->head == NULL && !w->stop)
			pthread_cond_wait(&w->work, &w->mu);
		struct recov_batch *b = w->head;
		if (b == NULL) { /* stop and drained */
			pthread_mutex_unlock(&w->mu);
			break;
		}
		w->head = b->next;
		if (w->head == NULL)
			w->tail = NULL;
		w->queued--;
		pthread_cond_signal(&w->space);
		pthread_mutex_unlock(&w->mu);

		/* relaxed: a stale 0 only means a few more ops are applied
		 * before this worker notices another worker's failure. */
		if (atomic_load_explicit(&w->pool->err, memory_order_relaxed) == 0) {
			if (ap->prefetch != NULL)
				for (unsigned i = 0; i < RECOV_PREFETCH && i < b->n; i++)
					ap->prefetch(ap->ctx, &b->ops[i].key);
			for (unsigned i = 0; i < b->n; i++) {
				const struct recov_op *o = &b->ops[i];
				if (ap->prefetch != NULL && i + RECOV_PREFETCH < b->n)
					ap->prefetch(ap->ctx, &b->ops[i + RECOV_PREFETCH].key);
				int rc = ap->apply(ap->ctx, o->op, &o->key,
						   o->op == WAL_OP_DELETE_KEY ? NULL : &o->val,
						   o->lsn);
				if (rc != 0) {
					int zero = 0;
					atomic_compare_exchange_strong_explicit(
						&w->pool->err, &zero, rc,
						memory_order_relaxed, memory_order_relaxed);
					break;
				}
				w->applied++;
			}
		}
		free(b);
	}
	return NULL;
}

static int recov_pool_start(struct recov_pool *p, const struct recov_apply *ap,
			    unsigned n)
{
	memset(p, 0, sizeof(*p));
	p->ap = ap;
	atomic_init(&p->err, 0);
	cid_hash_seed_init(&p->seed, RECOV_HASH_SEED);
	p->w = calloc(n, sizeof(*p->w));
	if (p->w == NULL)
		return CIDSTORE_ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		struct recov_worker *w = &p->w[i];
		w->pool = p;
		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->work, NULL);
		pthread_cond_init(&w->space, NULL);
		if (pthread_create(&w->tid, NULL, recov_worker_main, w) != 0) {
			pthread_cond_destroy(&w->space);
			pthread_cond_destroy(&w->work);
			pthread_mutex_destroy(&w->mu);
			break;
		}
		p->n++;
	}
	if (p->n == 0) {
		free(p->w);
		p->w = NULL;
		return CIDSTORE_ENOMEM;
	}
	return 0;
}

static void recov_pool_push(struct recov_worker *w, struct recov_batch *b)
{
	pthread_mutex_lock(&w->mu);
	while (w->queued >= RECOV_QUEUE)
		pthread_cond_wait(&w->space, &w->mu);
	b->next = NULL;
	if (w->tail != NULL)
		w->tail->next = b;
	else
		w->head = b;
	w->tail = b;
	w->queued++;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
}

/* Flushes partial batches, stops and joins the workers; returns the first
 * apply error (0 if none) and adds the applied counts to *applied. */
static int recov_pool_finish(struct recov_pool *p, uint64_t *applied)
{
	for (unsigned i = 0; i < p->n; i++) {
		struct recov_worker *w = &p->w[i];
		if (w->fill != NULL) {
			recov_pool_push(w, w->fill);
			w->fill = NULL;
		}
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->work);
		pthread_mutex_unlock(&w->mu);
	}
	for (unsigned i = 0; i < p->n; i++) {
		struct recov_worker *w = &p->w[i];
		pthread_join(w->tid, NULL);
		*applied += w->applied;
		pthread_cond_destroy(&w->space);
		pthread_cond_destroy(&w->work);
		pthread_mutex_destroy(&w->mu);
	}
	free(p->w);
	p->w = NULL;
	return atomic_load_explicit(&p->err, memory_order_relaxed);
}

/* ---------------------------------------------------------------------- */
/* Reader state                                                            */
/* ---------------------------------------------------------------------- */

/* UNFINISHED: still open at the end of the log (dropped like ABORTED). */
enum { RECOV_TXN_OPEN, RECOV_TXN_COMMITTED, RECOV_TXN_ABORTED, RECOV_TXN_UNFINISHED };

struct recov_txn {
	uint64_t serial; /* unique per recov_run; FIFO items refer to it */
	uint64_t id;     /* txn id from the log */
	int state;
	uint64_t pending; /* its records still in the FIFO */
};

struct recov_pend {
	struct recov_op o;
	uint64_t serial; /* 0: not in a transaction */
};

struct recov_state {
	int dirfd;
	const struct log_io *io;
	const struct recov_apply *ap;
	unsigned flags;
	struct recov_result *out;
	/* recov_read_log: every segment from the oldest, no checkpoint, no
	 * replay; valid records go to rec_fn (when not NULL) instead. */
	bool log_only;
	recov_rec_fn rec_fn;
	void *rec_ctx;
	bool have_base;   /* records <= base are skipped */
	uint64_t base;
	unsigned threads; /* recov_run's: checkpoint loaders, replay workers */
	struct recov_pool pool;
	bool pooled;
	uint64_t applied_inline;
	int apply_err;    /* inline apply error */
	/* transactions */
	struct recov_txn *txn;  /* active (open, or resolved with pending > 0), by serial */
	size_t ntxn, captxn;
	uint64_t next_serial;
	struct recov_pend *q;   /* FIFO: q[qhead .. qn) */
	size_t qhead, qn, qcap;
	uint8_t *buf;           /* RECOV_READ_BYTES */
};

static int recov_dispatch(struct recov_state *st, const struct recov_op *o)
{
	if (!st->pooled) {
		if (st->apply_err)
			return st->apply_err;
		int rc = st->ap->apply(st->ap->ctx, o->op, &o->key,
				       o->op == WAL_OP_DELETE_KEY ? NULL : &o->val, o->lsn);
		if (rc != 0)
			return st->apply_err = rc;
		st->applied_inline++;
		return 0;
	}
	struct recov_pool *p = &st->pool;
	int err = atomic_load_explicit(&p->err, memory_order_relaxed);
	if (err != 0)
		return err;
	struct recov_worker *w = &p->w[cid_hash64(&p->seed, &o->key) % p->n];
	if (w->fill == NULL) {
		w->fill = malloc(sizeof(*w->fill));
		if (w->fill == NULL)
			return CIDSTORE_ENOMEM;
		w->fill->n = 0;
	}
	w->fill->ops[w->fill->n++] = *o;
	if (w->fill->n == RECOV_BATCH) {
		recov_pool_push(w, w->fill);
		w->fill = NULL;
	}
	return 0;
}

static struct recov_txn *recov_txn_find(struct recov_state *st, uint64_t serial)
{
	size_t lo = 0, hi = st->ntxn;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (st->txn[mid].serial < serial)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < st->ntxn && st->txn[lo].serial == serial ? &st->txn[lo] : NULL;
}

/* The open transaction with log id `id`, created when create is set. */
static struct recov_txn *recov_txn_open(struct recov_state *st, uint64_t id,
					bool create)
{
	for (size_t i = st->ntxn; i-- > 0;)
		if (st->txn[i].id == id && st->txn[i].state == RECOV_TXN_OPEN)
			return &st->txn[i];
	if (!create)
		return NULL;
	if (st->ntxn == st->captxn) {
		size_t nc = st->captxn ? st->captxn * 2 : 16;
		struct recov_txn *nt = realloc(st->txn, nc * sizeof(*nt));
		if (nt == NULL)
			return NULL;
		st->txn = nt;
		st->captxn = nc;
	}
	struct recov_txn *t = &st->txn[st->ntxn++];
	t->serial = ++st->next_serial;
	t->id = id;
	t->state = RECOV_TXN_OPEN;
	t->pending = 0;
	return t;
}

static int recov_enqueue(struct recov_state *st, const struct recov_op *o,
			 uint64_t serial)
{
	if (st->qn == st->qcap) {
		if (st->qhead > 0) { /* compact */
			memmove(st->q, st->q + st->qhead,
				(st->qn - st->qhead) * sizeof(*st->q));
			st->qn -= st->qhead;
			st->qhead = 0;
		}
		if (st->qn == st->qcap) {
			size_t nc = st->qcap ? st->qcap * 2 : 1024;
			struct recov_pend *nq = realloc(st->q, nc * sizeof(*nq));
			if (nq == NULL)
				return CIDSTORE_ENOMEM;
			st->q = nq;
			st->qcap = nc;
		}
	}
	st->q[st->qn].o = *o;
	st->q[st->qn].serial = serial;
	st->qn++;
	return 0;
}

/* Releases the FIFO head as far as resolved records reach, then forgets
 * resolved transactions with nothing left in the FIFO. */
static int recov_release(struct recov_state *st)
{
	int rc = 0;
	while (st->qhead < st->qn) {
		struct recov_pend *pd = &st->q[st->qhead];
		if (pd->serial != 0) {
			struct recov_txn *t = recov_txn_find(st, pd->serial);
			if (t->state == RECOV_TXN_OPEN)
				break;
			t->pending--;
			if (t->state == RECOV_TXN_COMMITTED) {
				st->out->txn_ops_committed++;
				rc = recov_dispatch(st, &pd->o);
			} else {
				st->out->txn_ops_dropped++;
				if (t->state == RECOV_TXN_ABORTED)
					st->out->txn_ops_aborted++;
				else
					st->out->txn_ops_unfinished++;
			}
		} else {
			rc = recov_dispatch(st, &pd->o);
		}
		st->qhead++;
		if (rc != 0)
			return rc;
	}
	if (st->qhead == st->qn)
		st->qhead = st->qn = 0;
	size_t j = 0;
	for (size_t i = 0; i < st->ntxn; i++)
		if (st->txn[i].state == RECOV_TXN_OPEN || st->txn[i].pending > 0)
			st->txn[j++] = st->txn[i];
	st->ntxn = j;
	return 0;
}

/* One valid record with LSN > base. */
static int recov_record(struct recov_state *st, const struct wal_rec *r,
			const char *file, uint64_t off)
{
	struct recov_op o;
	switch (r->opcode) {
	case WAL_OP_INSERT:
	case WAL_OP_DELETE_VALUE:
	case WAL_OP_DELETE_KEY:
		o.lsn = r->lsn;
		o.key = r->key;
		o.val = r->val;
		o.op = r->opcode;
		if (r->flags & WAL_FLAG_TXN) {
			struct recov_txn *t = recov_txn_open(st, r->txn, true);
			if (t == NULL)
				return CIDSTORE_ENOMEM;
			t->pending++;
			return recov_enqueue(st, &o, t->serial);
		}
		if (st->qn > st->qhead)
			return recov_enqueue(st, &o, 0);
		return recov_dispatch(st, &o);
	case WAL_OP_TXN_START:
		return recov_txn_open(st, r->txn, true) != NULL ? 0 : CIDSTORE_ENOMEM;
	case WAL_OP_TXN_COMMIT:
	case WAL_OP_TXN_ABORT: {
		struct recov_txn *t = recov_txn_open(st, r->txn, false);
		bool commit = r->opcode == WAL_OP_TXN_COMMIT;
		if (commit) {
			st->out->txn_committed++;
		} else {
			st->out->txn_dropped++;
			st->out->txn_aborted++;
		}
		if (t == NULL) /* no records after the base: nothing to do */
			return 0;
		t->state = commit ? RECOV_TXN_COMMITTED : RECOV_TXN_ABORTED;
		return recov_release(st);
	}
	case WAL_OP_CHECKPOINT:
		return 0;
	default:
		RECOV_FAIL(st, CIDSTORE_ECORRUPT,
			   "%s: unexpected opcode %u at offset %llu", file,
			   r->opcode, (unsigned long long)off);
	}
}

/* ---------------------------------------------------------------------- */
/* Segments                                                                 */
/* ---------------------------------------------------------------------- */

static bool recov_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* Scans [from, size) of a segment after its END: *nz_end = offset just
 * past the last non-zero byte (from if none); *valid_at = offset of the
 * first slot that decodes as a valid record (UINT64_MAX if none).  The
 * caller decides what a valid record there means (damage, or on a live
 * store read RECOV_READONLY, a record appended meanwhile).  Returns 0 or
 * CIDSTORE_EIO. */
static int recov_scan_after(struct recov_state *st, int fd, const char *file,
			    uint64_t from, uint64_t size, uint64_t *nz_end, uint64_t *valid_at)
{
	*nz_end = from;
	*valid_at = UINT64_MAX;
	uint64_t off = from;
	while (off < size) {
		size_t want = size - off < RECOV_READ_BYTES ? (size_t)(size - off)
							     : RECOV_READ_BYTES;
		ssize_t got = io_pread_all(st->io, fd, st->buf, want, (off_t)off);
		if (got < 0)
			RECOV_FAIL(st, CIDSTORE_EIO, "%s: read failed at offset %llu",
				   file, (unsigned long long)off);
		if (got == 0)
			break;
		for (size_t i = 0; i < (size_t)got; i += WAL_REC_SIZE) {
			size_t n = (size_t)got - i < WAL_REC_SIZE ? (size_t)got - i : WAL_REC_SIZE;
			const uint8_t *p = st->buf + i;
			if (recov_zero(p, n))
				continue;
			*nz_end = off + i + n;
			struct wal_rec r;
			if (*valid_at == UINT64_MAX && n == WAL_REC_SIZE && rec_decode(p, &r) == 0)
				*valid_at = off + i;
		}
		off += (uint64_t)got;
	}
	return 0;
}

/* RECOV_READONLY on a store that may be open: did the slot at end_off (the
 * END: zero or invalid when it was read) since become record `expect`?
 * Then the writer appended while we read; reading goes on from there. */
static bool recov_grew(struct recov_state *st, int fd, uint64_t end_off, uint64_t expect)
{
	uint8_t rec[WAL_REC_SIZE];
	struct wal_rec r;
	return io_pread_all(st->io, fd, rec, sizeof(rec), (off_t)end_off) == WAL_REC_SIZE &&
	       rec_decode_next(rec, expect, &r) == 0;
}

/* End of the log: transactions still open never committed; their queued
 * operations are dropped and everything behind them released. */
static int recov_end_txns(struct recov_state *st)
{
	for (size_t i = 0; i < st->ntxn; i++) {
		if (st->txn[i].state == RECOV_TXN_OPEN) {
			st->txn[i].state = RECOV_TXN_UNFINISHED;
			st->out->txn_dropped++;
			st->out->txn_unfinished++;
		}
	}
	return recov_release(st);
}

/* Overwrites [from, to) with zeros and fdatasyncs. */
static int recov_cut(struct recov_state *st, const char *file, uint64_t from,
		     uint64_t to)
{
	int fd = st->io->open(st->io->ctx, st->dirfd, file, O_RDWR, 0);
	if (fd < 0)
		RECOV_FAIL(st, io_errcode(errno), "%s: cannot open to cut the torn tail (%s)",
			   file, strerror(errno));
	memset(st->buf, 0, RECOV_READ_BYTES);
	int rc = 0;
	for (uint64_t off = from; off < to && rc == 0;) {
		size_t n = to - off < RECOV_READ_BYTES ? (size_t)(to - off) : RECOV_READ_BYTES;
		rc = io_pwrite_all(st->io, fd, st->buf, n, (off_t)off);
		off += n;
	}
	if (rc == 0 && st->io->fdatasync(st->io->ctx, fd) != 0)
		rc = -1;
	st->io->close(st->io->ctx, fd);
	if (rc != 0)
		RECOV_FAIL(st, CIDSTORE_EIO, "%s: cutting the torn tail at offset %llu failed",
			   file, (unsigned long long)from);
	return 0;
}

struct recov_seg_end {
	bool empty_removed; /* last segment without a valid header */
	uint64_t tail_off;  /* offset after the last valid record */
	uint64_t seg_bytes; /* the size the header declares */
};

/* Reads one segment; *expect is the next LSN (in: the segment's first LSN). */
static int recov_segment(struct recov_state *st, const char *file, uint64_t seg_lsn,
			 bool is_last, uint64_t *expect, struct recov_seg_end *se)
{
	struct recov_result *out = st->out;
	memset(se, 0, sizeof(*se));
	int fd = st->io->open(st->io->ctx, st->dirfd, file, O_RDONLY, 0);
	if (fd < 0)
		RECOV_FAIL(st, io_errcode(errno), "%s: cannot open (%s)", file, strerror(errno));
	uint64_t size;
	int rc = 0;
	if (st->io->fsize(st->io->ctx, fd, &size) != 0) {
		st->io->close(st->io->ctx, fd);
		RECOV_FAIL(st, CIDSTORE_EIO, "%s: cannot stat", file);
	}
	out->segments++;
	out->seg_bytes += size;

	/* Header. */
	struct wal_rec r;
	bool header_ok = false;
	if (size >= WAL_REC_SIZE) {
		ssize_t got = io_pread_all(st->io, fd, st->buf, WAL_REC_SIZE, 0);
		if (got != WAL_REC_SIZE) {
			rc = CIDSTORE_EIO;
			snprintf(out->msg, sizeof(out->msg), "%s: read failed at offset 0", file);
			goto done;
		}
		int d = rec_decode(st->buf, &r);
		uint64_t first = 0;
		int h = d == 0 ? rec_seg_header_check(&r, &first, &se->seg_bytes) : d;
		if (d == CIDSTORE_EVERSION || h == CIDSTORE_EVERSION) {
			rc = CIDSTORE_EVERSION;
			snprintf(out->msg, sizeof(out->msg),
				 "%s: segment written by a newer format (offset 0)", file);
			goto done;
		}
		if (h == 0 && first != seg_lsn) {
			rc = CIDSTORE_ECORRUPT;
			snprintf(out->msg, sizeof(out->msg),
				 "%s: header says first LSN %llu, the name %llu",
				 file, (unsigned long long)first, (unsigned long long)seg_lsn);
			goto done;
		}
		header_ok = h == 0;
		if (header_ok && st->rec_fn != NULL &&
		    (rc = st->rec_fn(&r, seg_lsn, 0, st->rec_ctx)) != 0)
			goto done;
	}
	if (!header_ok) {
		/* Torn creation of the newest segment, or corruption. */
		uint64_t nz;
		if (!is_last) {
			rc = CIDSTORE_ECORRUPT;
			snprintf(out->msg, sizeof(out->msg),
				 "%s: bad segment header at offset 0 (a later segment exists)",
				 file);
			goto done;
		}
		uint64_t valid_at;
		if ((rc = recov_scan_after(st, fd, file, WAL_REC_SIZE, size, &nz, &valid_at)) != 0)
			goto done;
		if (valid_at != UINT64_MAX) {
			rc = CIDSTORE_ECORRUPT;
			snprintf(out->msg, sizeof(out->msg),
				 "%s: bad segment header at offset 0 but a valid record at offset %llu",
				 file, (unsigned long long)valid_at);
			goto done;
		}
		out->torn = true;
		out->torn_seg_lsn = seg_lsn;
		out->torn_off = 0;
		se->empty_removed = true;
		st->io->close(st->io->ctx, fd);
		fd = -1;
		if (!(st->flags & RECOV_READONLY)) {
			if (st->io->unlink(st->io->ctx, st->dirfd, file) != 0 ||
			    sdir_sync_fd(st->dirfd, st->io) != 0)
				RECOV_FAIL(st, CIDSTORE_EIO,
					   "%s: cannot remove the torn empty segment", file);
		}
		return 0;
	}

	/* The header states the segment's size and segments are preallocated
	 * to it before the header is written: a crash cannot leave a shorter
	 * file, so one is damage (records after the cut would be lost without
	 * a word), never the end of the log.  Bytes past the stated size are
	 * not part of the segment. */
	if (size < se->seg_bytes) {
		rc = CIDSTORE_ECORRUPT;
		snprintf(out->msg, sizeof(out->msg),
			 "%s: the file is %llu bytes but its header says %llu: truncated "
			 "(damage, not a torn write)", file, (unsigned long long)size,
			 (unsigned long long)se->seg_bytes);
		goto done;
	}
	size = se->seg_bytes;

	/* Records. */
	uint64_t off = WAL_REC_SIZE, end_off = 0;
	int end_kind = 0; /* 0: end of file, REC_ZERO, or CIDSTORE_ECORRUPT (torn) */
	se->tail_off = WAL_REC_SIZE;
more:
	while (off + WAL_REC_SIZE <= size && end_kind == 0) {
		uint64_t left = (size - off) / WAL_REC_SIZE * WAL_REC_SIZE;
		size_t want = left < RECOV_READ_BYTES ? (size_t)left : RECOV_READ_BYTES;
		ssize_t got = io_pread_all(st->io, fd, st->buf, want, (off_t)off);
		if (got < (ssize_t)WAL_REC_SIZE) {
			rc = CIDSTORE_EIO;
			snprintf(out->msg, sizeof(out->msg), "%s: read failed at offset %llu",
				 file, (unsigned long long)off);
			goto done;
		}
		size_t nrec = (size_t)got / WAL_REC_SIZE;
		for (size_t i = 0; i < nrec; i++, off += WAL_REC_SIZE) {
			const uint8_t *p = st->buf + i * WAL_REC_SIZE;
			int d = rec_decode_next(p, *expect, &r);
			if (d == 0) {
				if (r.opcode == WAL_OP_SEGMENT_HEADER) {
					rc = CIDSTORE_ECORRUPT;
					snprintf(out->msg, sizeof(out->msg),
						 "%s: segment header inside the segment at offset %llu",
						 file, (unsigned long long)off);
					goto done;
				}
				out->records++;
				(*expect)++;
				se->tail_off = off + WAL_REC_SIZE;
				if (st->log_only) {
					/* every record: the callback, then the
					 * transaction bookkeeping (its applies
					 * discard) for the batch counts */
					if (st->rec_fn != NULL &&
					    (rc = st->rec_fn(&r, seg_lsn, off, st->rec_ctx)) != 0)
						goto done;
					if ((rc = recov_record(st, &r, file, off)) != 0)
						goto done;
					continue;
				}
				if (st->have_base && r.lsn <= st->base) {
					out->skipped++;
					continue;
				}
				if ((rc = recov_record(st, &r, file, off)) != 0)
					goto done;
				continue;
			}
			if (d == CIDSTORE_EVERSION) {
				rc = CIDSTORE_EVERSION;
				snprintf(out->msg, sizeof(out->msg),
					 "%s: record of a newer format version at offset %llu",
					 file, (unsigned long long)off);
				goto done;
			}
			if (d != REC_ZERO && rec_decode(p, &r) == 0) {
				rc = CIDSTORE_ECORRUPT;
				snprintf(out->msg, sizeof(out->msg),
					 "%s: LSN gap at offset %llu: expected %llu, found %llu",
					 file, (unsigned long long)off,
					 (unsigned long long)*expect, (unsigned long long)r.lsn);
				goto done;
			}
			end_kind = d == REC_ZERO ? REC_ZERO : CIDSTORE_ECORRUPT;
			end_off = off;
			break;
		}
	}
	if (end_kind == 0)
		end_off = off; /* end of file; a partial trailing record is checked below */

	uint64_t nz_end, valid_at;
	rc = recov_scan_after(st, fd, file,
			      end_kind == CIDSTORE_ECORRUPT ? end_off + WAL_REC_SIZE : end_off,
			      size, &nz_end, &valid_at);
	if (rc != 0)
		goto done;
	if (valid_at != UINT64_MAX) {
		/* A valid record after the END.  Read-only on the newest
		 * segment of a store that may be open, the writer may have
		 * filled the END slot after it was read: if it now holds the
		 * next record, the log grew -- read on.  Otherwise (and always
		 * when the END slot stays bad) it is a hole in the log. */
		if ((st->flags & RECOV_READONLY) && is_last && recov_grew(st, fd, end_off, *expect)) {
			off = end_off;
			end_kind = 0;
			goto more;
		}
		rc = CIDSTORE_ECORRUPT;
		snprintf(out->msg, sizeof(out->msg),
			 "%s: valid record at offset %llu after the end of the valid log "
			 "at offset %llu (%s)", file, (unsigned long long)valid_at,
			 (unsigned long long)end_off,
			 end_kind == REC_ZERO ? "a zero slot before it" : "an invalid record before it");
		goto done;
	}
	if (end_kind == CIDSTORE_ECORRUPT)
		nz_end = nz_end > end_off + WAL_REC_SIZE ? nz_end : end_off + WAL_REC_SIZE;
	if (nz_end > end_off) {
		/* Non-zero bytes that are not valid records: a torn write. */
		if (!is_last) {
			rc = CIDSTORE_ECORRUPT;
			snprintf(out->msg, sizeof(out->msg),
				 "%s: invalid record at offset %llu in the middle of the log "
				 "(a later segment exists)", file, (unsigned long long)end_off);
			goto done;
		}
		out->torn = true;
		out->torn_seg_lsn = seg_lsn;
		out->torn_off = end_off;
		if (!(st->flags & RECOV_READONLY)) {
			st->io->close(st->io->ctx, fd);
			fd = -1;
			if ((rc = recov_cut(st, file, end_off, nz_end)) != 0)
				return rc;
		}
	}
done:
	if (fd >= 0)
		st->io->close(st->io->ctx, fd);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Checkpoint choice                                                        */
/* ---------------------------------------------------------------------- */

/* ckpt_load callbacks: the header to ap->begin, entries to ap->load_many
 * (thread-safe, batches) or, without it, to ap->load one by one. */
static int recov_ckpt_begin(const struct ckpt_info *info, void *ctx)
{
	struct recov_state *st = ctx;
	return st->ap->begin(st->ap->ctx, info->keys);
}

static int recov_ckpt_load_many(void *ctx, const struct ckpt_entry *e, size_t n)
{
	struct recov_state *st = ctx;
	if (st->ap->load_many != NULL)
		return st->ap->load_many(st->ap->ctx, e, n);
	for (size_t i = 0; i < n; i++) {
		int r = st->ap->load(e[i].key, e[i].vals, e[i].n, st->ap->ctx);
		if (r != 0)
			return r;
	}
	return 0;
}

/* Loads (apply set) or verifies checkpoint `name` with ckpt_load: by
 * st->threads loaders at once when ap->load_many can take them (or when
 * only verifying), else on this thread.  One open, one header read: the
 * header goes to ap->begin (sizing) on its way to the load. */
static int recov_ckpt_read(struct recov_state *st, const char *name, bool apply,
			   struct ckpt_info *info)
{
	struct ckpt_load_args a = {
		.threads = apply && st->ap->load_many == NULL ? 1 : st->threads,
		.on_header = apply && st->ap->begin ? recov_ckpt_begin : NULL,
		.apply = apply ? recov_ckpt_load_many : NULL,
		.ctx = st,
	};
	return ckpt_load(st->dirfd, st->io, name, &a, info);
}

/* Loads the newest usable checkpoint.  *newest_lsn = LSN in the name of the
 * newest checkpoint file (0 if none); *end_lsn = the chosen one's end LSN. */
static int recov_checkpoint(struct recov_state *st, uint64_t *newest_lsn,
			    uint64_t *end_lsn, char *why, size_t whycap)
{
	struct recov_result *out = st->out;
	sdir_list_t l;
	int rc = sdir_list_checkpoints(st->dirfd, &l);
	if (rc != 0)
		RECOV_FAIL(st, rc, "cannot list the store directory");
	*newest_lsn = l.n > 0 ? l.v[l.n - 1].lsn : 0;
	*end_lsn = 0;
	why[0] = '\0';
	for (size_t i = l.n; i-- > 0;) {
		const char *name = l.v[i].name;
		struct ckpt_info info;
		rc = 0;
		if (st->ap->reset == NULL) /* verify before anything is loaded */
			rc = recov_ckpt_read(st, name, false, &info);
		if (rc == 0) {
			rc = recov_ckpt_read(st, name, true, &info);
			if (rc == CIDSTORE_ECORRUPT && st->ap->reset != NULL) {
				int r2 = st->ap->reset(st->ap->ctx);
				if (r2 != 0) {
					rc = r2;
					snprintf(out->msg, sizeof(out->msg), "%s", info.msg);
					break;
				}
			}
		}
		if (rc == 0) {
			out->have_ckpt = true;
			out->ckpt_fallback = i + 1 != l.n;
			out->ckpt_lsn = info.lsn;
			out->ckpt_keys = info.keys;
			out->ckpt_values = info.values;
			*end_lsn = info.end_lsn;
			break;
		}
		if (why[0] == '\0')
			snprintf(why, whycap, "%s", info.msg);
		if (rc != CIDSTORE_ECORRUPT) { /* EVERSION, EIO, ENOMEM, callback */
			snprintf(out->msg, sizeof(out->msg), "%s", info.msg[0] ? info.msg : name);
			break;
		}
		rc = 0; /* corrupt: try the previous one */
	}
	if (rc == 0 && l.n > 0 && !out->have_ckpt)
		out->ckpt_fallback = true; /* every checkpoint corrupt: empty base */
	sdir_list_free(&l);
	if (rc == 0 && !out->have_ckpt && st->ap->begin != NULL &&
	    (rc = st->ap->begin(st->ap->ctx, 0)) != 0)
		snprintf(out->msg, sizeof(out->msg), "preparing the empty base failed");
	return rc;
}

/* ---------------------------------------------------------------------- */
/* recov_run                                                                */
/* ---------------------------------------------------------------------- */

static int recov_log(struct recov_state *st, uint64_t newest_ckpt,
		     uint64_t end_lsn, const char *why)
{
	struct recov_result *out = st->out;
	sdir_list_t segs;
	int rc = sdir_list_segments(st->dirfd, &segs);
	if (rc != 0)
		RECOV_FAIL(st, rc, "cannot list the store directory");
	uint64_t need = st->base + 1; /* first LSN the log must hold */
	uint64_t last = st->base;     /* last valid LSN so far */
	bool any = false;
	size_t s0 = segs.n;
	for (size_t i = 0; i < segs.n; i++)
		if (segs.v[i].lsn <= need)
			s0 = i;
	if (st->log_only) /* the whole log, whatever a checkpoint covers */
		s0 = 0;
	if (segs.n > 0 && s0 == segs.n) {
		rc = CIDSTORE_ECORRUPT;
		snprintf(out->msg, sizeof(out->msg),
			 "missing WAL: the oldest segment %s starts at LSN %llu, "
			 "records from %llu are needed%s%s", segs.v[0].name,
			 (unsigned long long)segs.v[0].lsn, (unsigned long long)need,
			 why[0] ? "; newest checkpoint unusable: " : "", why);
		goto out;
	}
	uint64_t expect = s0 < segs.n ? segs.v[s0].lsn : need;
	unsigned relists = 0;
	for (size_t i = s0; i < segs.n; i++) {
		const sdir_entry_t *e = &segs.v[i];
		if (e->lsn > expect && (st->flags & RECOV_READONLY) && relists < 8) {
			/* Read-only beside a writer: readdir is not a snapshot,
			 * and a segment the writer created during the listing
			 * can be missing while a later one is listed.  List
			 * again; go on only if the missing one is there now. */
			sdir_list_t again;
			relists++;
			if (sdir_list_segments(st->dirfd, &again) == 0) {
				size_t j = 0;
				while (j < again.n && again.v[j].lsn != expect)
					j++;
				if (j < again.n) {
					sdir_list_free(&segs);
					segs = again;
					i = j - 1; /* the loop's i++ lands on it */
					continue;
				}
				sdir_list_free(&again);
			}
		}
		if (e->lsn != expect) {
			rc = CIDSTORE_ECORRUPT;
			snprintf(out->msg, sizeof(out->msg),
				 "%s: starts at LSN %llu but the log before it ends at %llu "
				 "(%s after %s)", e->name, (unsigned long long)e->lsn,
				 (unsigned long long)(expect - 1),
				 e->lsn > expect ? "missing segment or records" : "overlap",
				 segs.v[i - 1].name);
			goto out;
		}
		struct recov_seg_end se;
		rc = recov_segment(st, e->name, e->lsn, i + 1 == segs.n, &expect, &se);
		if (rc != 0)
			goto out;
		relists = 0; /* the bound is per gap */
		if (se.empty_removed)
			break;
		any = true;
		out->tail_seg_lsn = e->lsn;
		out->tail_off = se.tail_off;
		out->tail_seg_bytes = se.seg_bytes;
	}
	if (expect - 1 > last)
		last = expect - 1;
	/* Every acknowledged record the checkpoints promise must be here. */
	uint64_t must = end_lsn > newest_ckpt ? end_lsn : newest_ckpt;
	if (last < must) {
		rc = CIDSTORE_ECORRUPT;
		snprintf(out->msg, sizeof(out->msg),
			 "the WAL ends at LSN %llu but records up to %llu must exist "
			 "(%s)%s%s", (unsigned long long)last, (unsigned long long)must,
			 out->ckpt_fallback ? "fallback from a corrupt checkpoint"
					    : "checkpoint end LSN",
			 why[0] ? ": " : "", why);
		goto out;
	}
	out->last_lsn = last;
	out->tail_valid = any && expect - 1 == last;
	rc = 0;
out:
	sdir_list_free(&segs);
	return rc;
}

int recov_run(int dirfd, const struct log_io *io, const struct recov_apply *ap,
	      unsigned threads, unsigned flags, struct recov_result *out)
{
	if (out == NULL)
		return CIDSTORE_EINVAL;
	memset(out, 0, sizeof(*out));
	if (dirfd < 0 || ap == NULL || ap->load == NULL || ap->apply == NULL) {
		snprintf(out->msg, sizeof(out->msg), "invalid argument");
		return CIDSTORE_EINVAL;
	}
	if (threads > RECOV_MAX_THREADS)
		threads = RECOV_MAX_THREADS;
	struct recov_state st;
	memset(&st, 0, sizeof(st));
	st.dirfd = dirfd;
	st.io = io_or_posix(io);
	st.ap = ap;
	st.flags = flags;
	st.out = out;
	st.threads = threads;
	st.buf = malloc(RECOV_READ_BYTES);
	if (st.buf == NULL)
		return CIDSTORE_ENOMEM;

	double t0 = recov_now();
	uint64_t newest_ckpt, end_lsn;
	char why[192];
	int rc = recov_checkpoint(&st, &newest_ckpt, &end_lsn, why, sizeof(why));
	double t1 = recov_now();
	out->ckpt_seconds = t1 - t0;
	if (rc != 0)
		goto out;
	st.have_base = out->have_ckpt;
	st.base = out->ckpt_lsn;
	if (!out->have_ckpt)
		end_lsn = 0;

	if (threads > 1) {
		if ((rc = recov_pool_start(&st.pool, ap, threads)) != 0)
			goto out;
		st.pooled = true;
	}
	out->threads = st.pooled ? st.pool.n : 1;
	rc = recov_log(&st, out->ckpt_fallback ? newest_ckpt : 0, end_lsn, why);
	if (rc == 0)
		rc = recov_end_txns(&st);
	if (st.pooled) {
		uint64_t applied = 0;
		int perr = recov_pool_finish(&st.pool, &applied);
		out->replayed += applied;
		if (rc == 0)
			rc = perr;
	}
	out->replayed += st.applied_inline;
	if (rc == 0 && st.apply_err)
		rc = st.apply_err;
	double t2 = recov_now();
	out->replay_seconds = t2 - t1;
	out->total_seconds = t2 - t0;
	out->replay_rate = out->replay_seconds > 0 ? (double)out->records / out->replay_seconds : 0;
	if (rc != 0 && out->msg[0] == '\0')
		snprintf(out->msg, sizeof(out->msg), "recovery stopped by error %d", rc);
out:
	free(st.txn);
	free(st.q);
	free(st.buf);
	return rc;
}

static int recov_discard_load(const cid_t *k, const cid_t *v, size_t n, void *ctx)
{
	(void)k;
	(void)v;
	(void)n;
	(void)ctx;
	return 0;
}

static int recov_discard_apply(void *ctx, int op, const cid_t *k, const cid_t *v,
			       uint64_t lsn)
{
	(void)ctx;
	(void)op;
	(void)k;
	(void)v;
	(void)lsn;
	return 0;
}

static int recov_discard_reset(void *ctx)
{
	(void)ctx;
	return 0;
}

static const struct recov_apply recov_discard_ap = {recov_discard_load, recov_discard_apply,
						    recov_discard_reset, NULL, NULL, NULL, NULL};

int recov_verify(int dirfd, const struct log_io *io, struct recov_result *out)
{
	return recov_run(dirfd, io, &recov_discard_ap, 1, RECOV_READONLY, out);
}

int recov_read_log(int dirfd, const struct log_io *io, recov_rec_fn fn,
		   void *ctx, struct recov_result *out)
{
	if (out == NULL)
		return CIDSTORE_EINVAL;
	memset(out, 0, sizeof(*out));
	if (dirfd < 0) {
		snprintf(out->msg, sizeof(out->msg), "invalid argument");
		return CIDSTORE_EINVAL;
	}
	struct recov_state st;
	memset(&st, 0, sizeof(st));
	st.dirfd = dirfd;
	st.io = io_or_posix(io);
	st.flags = RECOV_READONLY;
	st.out = out;
	st.log_only = true;
	st.rec_fn = fn;
	st.rec_ctx = ctx;
	st.buf = malloc(RECOV_READ_BYTES);
	if (st.buf == NULL) {
		snprintf(out->msg, sizeof(out->msg), "out of memory");
		return CIDSTORE_ENOMEM;
	}
	out->threads = 1;
	st.ap = &recov_discard_ap;
	double t0 = recov_now();
	int rc = recov_log(&st, 0, 0, "");
	if (rc == 0)
		rc = recov_end_txns(&st);
	out->total_seconds = out->replay_seconds = recov_now() - t0;
	out->replayed = 0; /* nothing was applied: the bookkeeping discards */
	free(st.buf);
	free(st.txn);
	free(st.q);
	return rc;
}
