/*
 * triple.c — triples on the store (DESIGN §10): layout, insert, delete and
 * the cleaning of stale single-term entries.  Readers: match.c; the term
 * dictionary: term.c.  Layer 5: everything goes through the store's calls
 * (cidstore_lookup / _contains / _values, and store_write_batch_ex, the
 * batch of cidstore_apply with per-operation results and the SYNC wait
 * left to the caller); nothing of the index or the log.
 *
 * ---- Layout (keys are cid_composite(a, b, r) of the same store) ----
 *   SP(s, p)  = composite(s, p, 0)  -> { o }   pair indexes: every triple
 *   OS(o, s)  = composite(o, s, 1)  -> { p }   is in all three, and every
 *   PO(p, o)  = composite(p, o, 2)  -> { s }   delivered triple is read here
 *   SUBJ(s)   = composite(s, 0, 3)  -> { p : SP(s, p) non-empty }
 *   PRED(p)   = composite(p, 0, 4)  -> { s : SP(s, p) non-empty }
 *   OBJ(o)    = composite(o, 0, 5)  -> { p : PO(p, o) non-empty }
 *   ALLP      = composite(0, 0, 6)  -> { p : PRED(p) non-empty }
 *   TERM(c)   = composite(c, 0, 7)  -> the chunks of a term's text (term.c)
 * The single-term sets may also hold stale entries (their pair emptied by
 * deletes, not cleaned yet): they cost reads, never a wrong answer, since
 * every pattern delivers only what it reads from a pair index.
 *
 * Per stored triple: 3 pair-index values (32 B each, plus the key's entry
 * when the pair is new: <= 80 B resident for a single-valued key), and up
 * to 4 single-term values, shared by every triple with the same (s, p),
 * (p, o) or p: so between 3 and 7 values.
 *
 * ---- Patterns: what each reads (n = values delivered) ----
 *   SPO  contains(SP(s,p), o)                       1 lock-free read
 *   SP?  values(SP(s,p))                            1 read, n values
 *   S?O  values(OS(o,s))                            1 read
 *   ?PO  values(PO(p,o))                            1 read
 *   S??  values(SUBJ(s)); per p: values(SP(s,p))    1 + |SUBJ(s)| reads
 *   ?P?  values(PRED(p)); per s: values(SP(s,p))    1 + |PRED(p)| reads
 *   ??O  values(OBJ(o));  per p: values(PO(p,o))    1 + |OBJ(o)| reads
 *   ???  values(ALLP); per p: values(PRED(p));
 *        per (s, p): values(SP(s,p))                1 + |ALLP| + #(s,p) reads
 * cidstore_triple_count reads the same keys but counts the leaves with
 * cidstore_lookup(key, NULL, 0) (a count, no copy): SP? on a key of a
 * million objects costs one lookup.  Every value set is read at one
 * instant (cidstore_values, in chunks: a big set is never copied whole).
 *
 * ---- Insert (one triple; insert_many: the same for n, in one call) ----
 *   1. enter the writer gate (shared);
 *   2. single-term candidates SUBJ(s)+p, PRED(p)+s, OBJ(o)+p, ALLP+p: each
 *      is skipped when cidstore_contains finds it (a hot key such as ALLP
 *      or PRED(rdf:type) is then only read), insert_many also drops the
 *      repeats within the call;
 *   3. enter the triple's room stripe as an inserter (rooms.c);
 *   4. store_write_batch_ex: the remaining single-term inserts, each logged
 *      on its own ("free" records), then the batch {SP+o, OS+p, PO+s}
 *      framed TXN_START..TXN_COMMIT: crash-atomic;
 *   5. leave the room and the gate; SYNC: wait for the commit's fdatasync
 *      (outside the gate: a waiting committer never holds up a cleaner).
 *   WAL records per new triple: 5 (TXN_START, 3 pairs, TXN_COMMIT) plus one
 *   per single-term entry that is new: 0..4, so 5..9 x 128 B.  insert_many
 *   of n triples: 2 + 3n + the new single-term entries.
 *   Returns 1 iff its SP insert changed SP(s,p): SP is linearizable, so of
 *   two racing inserts of one triple exactly one returns 1.
 * Why single-term inserts are free records and not in the batch: an
 * insert skips an entry it finds present (step 2, or the index's no-op
 * insert, which logs nothing).  If that entry had been written by another
 * thread's batch not yet committed, a crash could drop that batch and
 * leave this committed triple without its single-term entry: S?? would
 * then miss it after recovery.  A free record is replayed whenever it is
 * in the durable log, and any entry this insert observed was logged (its
 * LSN taken while it was applied) before this insert's commit, so the
 * commit being durable implies the entry's record is.  A free record
 * whose batch was lost is only a stale entry.
 *
 * Measured (release, ASYNC store, insert_many of 1000, 1M triples with 8
 * per subject, 20 predicates, 25 % shared objects: 5.45 index values and
 * WAL records per triple; a throwaway program, 3 runs, this 2-core VM
 * shared with other builds at load ~8): 1 thread median 95k triples/s
 * (4.1 s user + 0.9 s sys per 1M triples with the flusher: ~4 us of CPU
 * per triple), 2 threads 108k/s.  The floor of any layout storing three
 * pair entries, cidstore_apply of just SP/OS/PO (3 values per triple),
 * ran 189k/s and 294k/s in the same session: the single-term sets cost
 * about 2x, in index work (1.8 values more per triple), not in this
 * layer's code (insert_triples, contains checks and composite keys: ~5 %
 * of the profile).
 *
 * ---- Delete ----
 *   gate (shared), room stripe as a deleter, one batch {SP-o, OS-p, PO-s}
 *   (5 WAL records, crash-atomic), leave both, SYNC wait.  Returns 1 iff
 *   its SP delete changed SP.  Single-term entries are not touched (doing
 *   so would race with inserts: removing p from SUBJ(s) while another
 *   thread inserts (s,p,o2) could hide a stored triple); instead, when the
 *   delete left SP(s,p) or PO(p,o) empty (a count after the batch), the pair
 *   goes on the stale-candidate queue (a mutex-protected vector: only
 *   emptying deletes touch it).  When the queue passes TRI_CLEAN_AT the
 *   deleting thread runs a cleaning pass (when none is running).
 *
 * ---- Cleaning pass (clean_pass; triple_maintain) ----
 *   take the queue; close the writer gate (exclusive: waits until every
 *   insert and delete inside has left, new ones wait); for each SP
 *   candidate whose SP(s,p) is still empty remove p from SUBJ(s) and s from
 *   PRED(p) (one batch: they stay paired across a crash), then for each
 *   such p whose PRED(p) is now empty remove p from ALLP; for each PO
 *   candidate whose PO(p,o) is empty remove p from OBJ(o); open the gate.
 *   The pass never waits for the disk (stale entries need no durability)
 *   and closes the gate for at most TRI_CLEAN_SLICE (4096) candidates at a
 *   time: one slice costs about 4096 lookups and 8192 removals, ~2 ms.
 *   The store's maintenance reaches it through st->ext->maintain (the
 *   store knows no layer above it), once this layer made its state.
 *
 * ---- Invariants (hold at every instant) ----
 *   I1  SP(s,p) non-empty  =>  p in SUBJ(s), s in PRED(p), p in ALLP
 *   I2  PO(p,o) non-empty  =>  p in OBJ(o)
 *   I3  outside an insert or delete of t in progress, t is in all three
 *       pair indexes or in none.
 *   I1/I2: an insert writes its single-term entries before its pair
 *   entries, and they stay: only a cleaning pass removes them, with the
 *   gate closed (no insert or delete inside) and only after it found the
 *   pair empty — which it stays until the gate opens.  Deletes only
 *   empty pairs.  I3: the three pair operations of one triple are one
 *   batch, and the room stripes keep inserts and deletes of the same
 *   triple apart (two inserts, or two deletes, of one triple leave all
 *   three keys alike whatever their interleaving).
 *   Consequences for readers (match.c): every delivered triple was in a pair
 *   index at the instant that index was read (inside the call); a triple
 *   stored for the whole call is found: by I1/I2 its term is in the
 *   single-term set when the set is read, and it is in the pair index
 *   when that is read.  Each set is read at one instant, so nothing is
 *   delivered twice.
 *
 * ---- Crash ----
 *   The pair entries of a triple are one batch: all or none after recovery
 *   (I3 holds after recovery, as I1/I2 do: see "free records" above).
 *   The cleaning queue lives in memory and is lost at a crash or close:
 *   the stale entries it named stay (harmless).  The first
 *   triple_maintain pass after a durable store is opened sweeps
 *   ALLP -> PRED(p) -> SP(s,p) to find stale SUBJ/PRED/ALLP entries again;
 *   stale OBJ entries are found only by new emptying deletes (weak: a
 *   sweep of OBJ would need every object, i.e. a walk of every triple).
 *   An ENOMEM in the middle of a batch commits its applied prefix (as
 *   cidstore_apply does): the triple may then be half-stored until the same
 *   insert or delete is retried.
 *   Durability of a 0: a call that returned 0 because a concurrent call
 *   was storing the same triple does not wait for that call's commit: the
 *   triple is durable when that call returns (as for cidstore_apply).
 *
 * ---- Synchronization of struct tri_state (per store, in st->ext) ----
 *   | field            | how                                            |
 *   |------------------|------------------------------------------------|
 *   | ext              | immutable; installed by CAS (state_of)         |
 *   | gate             | gate.c (writers shared, cleaning exclusive)    |
 *   | rooms            | rooms.c (inserts vs deletes of one triple)     |
 *   | q, qn, qcap      | q_mu                                           |
 *   | qlen             | atomic relaxed mirror of qn (the trigger test) |
 *   | clean_mu         | one cleaning pass at a time                    |
 *   | sweep_wanted     | atomic (exchange: one sweep)                   |
 * Lock order: clean_mu -> gate (closed) -> q_mu; writers: gate (shared)
 * -> room stripe; nobody waits for the gate while holding a room stripe
 * or q_mu.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "triple/gate.h"
#include "triple/rooms.h"
#include "triple/triple.h"

/* A cleaning pass starts when this many candidates are queued. */
#define TRI_CLEAN_AT 1024
/* ... and closes the gate for at most this many candidates at a time. */
#define TRI_CLEAN_SLICE 4096

/* Ops kept on the stack for up to this many triples. */
#define TRI_STACK_TRIPLES 4

enum cand_kind { CAND_SP = 0, CAND_PO = 1, CAND_ALLP = 2 };

struct cand {
	cid_t a, b; /* SP: (s, p); PO: (p, o); ALLP: (p, unused) */
	int kind;
};

struct tri_state {
	struct store_ext ext; /* first: st->ext points here */
	tgate_t gate;
	trooms_t rooms;
	pthread_mutex_t clean_mu;
	pthread_mutex_t q_mu;
	struct cand *q;
	size_t qn, qcap;
	_Atomic size_t qlen;
	_Atomic int sweep_wanted;
};

/* ------------------------------------------------------------------ */
/* per-store state                                                     */
/* ------------------------------------------------------------------ */

static void state_destroy(struct store_ext *ext)
{
	struct tri_state *ts = (struct tri_state *)ext;
	pthread_mutex_destroy(&ts->clean_mu);
	pthread_mutex_destroy(&ts->q_mu);
	free(ts->q);
	free(ts);
}

static int ext_maintain(struct store_ext *ext, cidstore_t *st, uint64_t *done)
{
	(void)ext;
	return triple_maintain(st, done);
}

/* The store's triple state, created on first use (NULL: out of memory). */
static struct tri_state *state_of(cidstore_t *st)
{
	/* acquire: pairs with the installing CAS (the state's fields are
	 * initialized before it is published) */
	struct store_ext *e = atomic_load_explicit(&st->ext, memory_order_acquire);
	if (e)
		return (struct tri_state *)e;
	size_t size = (sizeof(struct tri_state) + 63) & ~(size_t)63;
	struct tri_state *ts = aligned_alloc(64, size);
	if (!ts)
		return NULL;
	memset(ts, 0, sizeof(*ts));
	ts->ext.destroy = state_destroy;
	ts->ext.maintain = ext_maintain;
	tgate_init(&ts->gate);
	trooms_init(&ts->rooms);
	pthread_mutex_init(&ts->clean_mu, NULL);
	pthread_mutex_init(&ts->q_mu, NULL);
	atomic_init(&ts->qlen, 0);
	/* a durable store may hold stale entries whose queue a crash lost */
	atomic_init(&ts->sweep_wanted, st->durable && !st->read_only);
	struct store_ext *expect = NULL;
	if (!atomic_compare_exchange_strong_explicit(&st->ext, &expect, &ts->ext,
						     memory_order_acq_rel, memory_order_acquire)) {
		state_destroy(&ts->ext);
		return (struct tri_state *)expect;
	}
	return ts;
}

/* ------------------------------------------------------------------ */
/* the stale-candidate queue                                           */
/* ------------------------------------------------------------------ */

/* Queues candidates; out of memory drops them (the entries stay stale: a
 * cost, never a wrong answer). */
static void queue_push(struct tri_state *ts, const struct cand *c, size_t n)
{
	pthread_mutex_lock(&ts->q_mu);
	if (ts->qn + n > ts->qcap) {
		size_t cap = ts->qcap ? ts->qcap * 2 : 64;
		while (cap < ts->qn + n)
			cap *= 2;
		struct cand *q = realloc(ts->q, cap * sizeof(*q));
		if (!q) {
			pthread_mutex_unlock(&ts->q_mu);
			return;
		}
		ts->q = q;
		ts->qcap = cap;
	}
	memcpy(ts->q + ts->qn, c, n * sizeof(*c));
	ts->qn += n;
	atomic_store_explicit(&ts->qlen, ts->qn, memory_order_relaxed);
	pthread_mutex_unlock(&ts->q_mu);
}

/* Takes the whole queue (the caller frees *out). */
static size_t queue_take(struct tri_state *ts, struct cand **out)
{
	pthread_mutex_lock(&ts->q_mu);
	*out = ts->q;
	size_t n = ts->qn;
	ts->q = NULL;
	ts->qn = ts->qcap = 0;
	atomic_store_explicit(&ts->qlen, 0, memory_order_relaxed);
	pthread_mutex_unlock(&ts->q_mu);
	return n;
}

static int cid_cmp(const void *x, const void *y)
{
	return memcmp(x, y, sizeof(cid_t));
}

static int cand_cmp(const void *x, const void *y)
{
	const struct cand *a = x, *b = y;
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	int c = memcmp(&a->a, &b->a, sizeof(a->a));
	return c ? c : memcmp(&a->b, &b->b, sizeof(a->b));
}

/* ------------------------------------------------------------------ */
/* cleaning                                                            */
/* ------------------------------------------------------------------ */

static cidstore_op_t op_make(cidstore_opcode_t op, const cid_t *key, const cid_t *val)
{
	return (cidstore_op_t){.op = op, .key = *key, .value = *val};
}

/* Applies ops as one batch without waiting for the disk; adds the number
 * of changes to *changed. */
static int apply_nowait(cidstore_t *st, const cidstore_op_t *ops, size_t n, uint64_t *changed)
{
	if (n == 0)
		return 0;
	uint64_t wl;
	int rc = store_write_batch_ex(st, ops, 0, n, NULL, &wl);
	if (rc < 0)
		return rc;
	*changed += (uint64_t)rc;
	return 0;
}

/* One slice of a cleaning pass, with the gate closed: rechecks the
 * candidates c[0 .. n) and removes the stale single-term entries (ops and
 * preds: room for 2n and n).  Adds the removals to *changed. */
static int clean_slice(cidstore_t *st, struct tri_state *ts, const struct cand *c, size_t n,
		       cidstore_op_t *ops, cid_t *preds, uint64_t *changed)
{
	int rc = 0;
	size_t nops = 0, np = 0;
	tgate_close(&ts->gate);
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct cand *k = &c[i];
		if (k->kind == CAND_ALLP) {
			preds[np++] = k->a;
			continue;
		}
		cid_t key = k->kind == CAND_SP ? tri_key2(&k->a, &k->b, TRI_R_SP)
					       : tri_key2(&k->a, &k->b, TRI_R_PO);
		long cnt = cidstore_lookup(st, &key, NULL, 0);
		if (cnt < 0) {
			rc = (int)cnt;
			break;
		}
		if (cnt > 0)
			continue; /* refilled: not stale */
		if (k->kind == CAND_SP) {
			cid_t subj = tri_key1(&k->a, TRI_R_SUBJ), pred = tri_key1(&k->b, TRI_R_PRED);
			ops[nops++] = op_make(CIDSTORE_OP_DELETE_VALUE, &subj, &k->b);
			ops[nops++] = op_make(CIDSTORE_OP_DELETE_VALUE, &pred, &k->a);
			preds[np++] = k->b;
		} else {
			cid_t obj = tri_key1(&k->b, TRI_R_OBJ);
			ops[nops++] = op_make(CIDSTORE_OP_DELETE_VALUE, &obj, &k->a);
		}
	}
	if (rc == 0)
		rc = apply_nowait(st, ops, nops, changed);
	if (rc == 0) {
		/* then ALLP: a predicate whose PRED set is now empty */
		qsort(preds, np, sizeof(*preds), cid_cmp);
		cid_t allp = tri_key_allp();
		nops = 0;
		for (size_t i = 0; i < np && rc == 0; i++) {
			if (i > 0 && memcmp(&preds[i - 1], &preds[i], sizeof(cid_t)) == 0)
				continue;
			cid_t pred = tri_key1(&preds[i], TRI_R_PRED);
			long cnt = cidstore_lookup(st, &pred, NULL, 0);
			if (cnt < 0)
				rc = (int)cnt;
			else if (cnt == 0)
				ops[nops++] = op_make(CIDSTORE_OP_DELETE_VALUE, &allp, &preds[i]);
		}
		if (rc == 0)
			rc = apply_nowait(st, ops, nops, changed);
	}
	tgate_open(&ts->gate);
	return rc;
}

/* The cleaning pass (top comment): the queue in slices of TRI_CLEAN_SLICE
 * candidates, the gate closed for one slice at a time (so a big queue, e.g.
 * after a sweep, never stalls writers for long).  wait: wait for a running
 * pass (else return at once when one runs).  Candidates an ENOMEM left
 * unprocessed go back on the queue. */
static int clean_pass(cidstore_t *st, struct tri_state *ts, bool wait, uint64_t *cleaned)
{
	if (cleaned)
		*cleaned = 0;
	if (wait)
		pthread_mutex_lock(&ts->clean_mu);
	else if (pthread_mutex_trylock(&ts->clean_mu) != 0)
		return 0;
	struct cand *c = NULL;
	size_t n = queue_take(ts, &c);
	if (n == 0) {
		pthread_mutex_unlock(&ts->clean_mu);
		free(c);
		return 0;
	}
	qsort(c, n, sizeof(*c), cand_cmp);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (m == 0 || cand_cmp(&c[m - 1], &c[i]) != 0)
			c[m++] = c[i];
	n = m;
	size_t slice = n < TRI_CLEAN_SLICE ? n : TRI_CLEAN_SLICE;
	cidstore_op_t *ops = malloc(2 * slice * sizeof(*ops));
	cid_t *preds = malloc(slice * sizeof(*preds));
	uint64_t changed = 0;
	int rc = ops && preds ? 0 : CIDSTORE_ENOMEM;
	size_t done = 0;
	while (rc == 0 && done < n) {
		size_t k = n - done < slice ? n - done : slice;
		rc = clean_slice(st, ts, c + done, k, ops, preds, &changed);
		if (rc == 0)
			done += k;
	}
	if (rc == CIDSTORE_ENOMEM)
		queue_push(ts, c + done, n - done); /* try again later */
	pthread_mutex_unlock(&ts->clean_mu);
	free(ops);
	free(preds);
	free(c);
	if (cleaned)
		*cleaned = changed;
	return rc;
}

/* ---- the sweep: ALLP -> PRED(p) -> SP(s, p) ---- */

struct sweep_ctx {
	cidstore_t *st;
	struct tri_state *ts;
	cid_t p;
	int err;
	struct cand buf[64];
	size_t nbuf;
};

static void sweep_add(struct sweep_ctx *w, const struct cand *c)
{
	w->buf[w->nbuf++] = *c;
	if (w->nbuf == sizeof(w->buf) / sizeof(w->buf[0])) {
		queue_push(w->ts, w->buf, w->nbuf);
		w->nbuf = 0;
	}
}

static int sweep_pred_cb(const cid_t *subjects, size_t n, void *ctx)
{
	struct sweep_ctx *w = ctx;
	for (size_t i = 0; i < n; i++) {
		cid_t sp = tri_key2(&subjects[i], &w->p, TRI_R_SP);
		long cnt = cidstore_lookup(w->st, &sp, NULL, 0);
		if (cnt < 0) {
			w->err = (int)cnt;
			return 1;
		}
		if (cnt == 0)
			sweep_add(w, &(struct cand){.a = subjects[i], .b = w->p, .kind = CAND_SP});
	}
	return 0;
}

static int sweep_allp_cb(const cid_t *preds, size_t n, void *ctx)
{
	struct sweep_ctx *w = ctx;
	for (size_t i = 0; i < n; i++) {
		w->p = preds[i];
		cid_t pred = tri_key1(&preds[i], TRI_R_PRED);
		long r = tri_read_set(w->st, &pred, sweep_pred_cb, w);
		if (r < 0 && !w->err)
			w->err = (int)r;
		if (w->err)
			return 1;
		if (r == 0)
			sweep_add(w, &(struct cand){.a = preds[i], .kind = CAND_ALLP});
	}
	return 0;
}

static int sweep(cidstore_t *st, struct tri_state *ts)
{
	struct sweep_ctx w = {.st = st, .ts = ts};
	cid_t allp = tri_key_allp();
	long r = tri_read_set(st, &allp, sweep_allp_cb, &w);
	if (w.nbuf)
		queue_push(ts, w.buf, w.nbuf);
	if (w.err)
		return w.err;
	return r < 0 ? (int)r : 0;
}

int triple_maintain(cidstore_t *st, uint64_t *cleaned)
{
	if (cleaned)
		*cleaned = 0;
	if (!st)
		return CIDSTORE_EINVAL;
	if (st->read_only)
		return 0; /* nothing may change; no deletes queue anything */
	struct tri_state *ts = state_of(st);
	if (!ts)
		return CIDSTORE_ENOMEM;
	if (atomic_load_explicit(&ts->qlen, memory_order_relaxed) == 0 &&
	    atomic_exchange_explicit(&ts->sweep_wanted, 0, memory_order_relaxed)) {
		int rc = sweep(st, ts);
		if (rc < 0) {
			atomic_store_explicit(&ts->sweep_wanted, 1, memory_order_relaxed);
			return rc;
		}
	}
	return clean_pass(st, ts, true, cleaned);
}

/* ------------------------------------------------------------------ */
/* insert                                                              */
/* ------------------------------------------------------------------ */

/* Drops repeated single-term candidates within one insert_many: an
 * open-addressing set of candidate indexes (0: empty, else index + 1). */
struct cand_set {
	uint32_t *slot;
	size_t mask;
};

static uint64_t op_hash(const cidstore_op_t *op)
{
	/* keys are composite (well mixed); fold the value in */
	uint64_t h = op->key.w[0] ^ (op->value.w[3] * 0x9e3779b97f4a7c15ull) ^ op->value.w[0];
	h ^= h >> 32;
	return h * 0xd6e8feb86659fd93ull;
}

/* True when ops[i] equals an op already in the set (else adds it). */
static bool cand_seen(struct cand_set *cs, const cidstore_op_t *ops, uint32_t i)
{
	size_t j = (size_t)(op_hash(&ops[i]) >> 20) & cs->mask;
	for (;; j = (j + 1) & cs->mask) {
		uint32_t e = cs->slot[j];
		if (e == 0) {
			cs->slot[j] = i + 1;
			return false;
		}
		const cidstore_op_t *o = &ops[e - 1];
		if (memcmp(&o->key, &ops[i].key, sizeof(cid_t)) == 0 &&
		    memcmp(&o->value, &ops[i].value, sizeof(cid_t)) == 0)
			return true;
	}
}

static long insert_triples(cidstore_t *st, const cidstore_triple_t *t, size_t n, int *results)
{
	if (n > (size_t)INT32_MAX / 7)
		return CIDSTORE_ERANGE; /* the batch's operation count must fit */
	struct tri_state *ts = state_of(st);
	if (!ts)
		return CIDSTORE_ENOMEM;
	cidstore_op_t ops_stack[7 * TRI_STACK_TRIPLES];
	int res_stack[7 * TRI_STACK_TRIPLES];
	unsigned room_stack[TRI_STACK_TRIPLES];
	cidstore_op_t *ops = ops_stack;
	int *res = res_stack;
	unsigned *room = room_stack;
	struct cand_set cs = {NULL, 0};
	bool heap = n > TRI_STACK_TRIPLES;
	if (heap) {
		ops = malloc(7 * n * sizeof(*ops));
		res = malloc(7 * n * sizeof(*res));
		room = malloc(n * sizeof(*room));
		size_t sz = 16;
		while (sz < 8 * n)
			sz *= 2;
		cs.slot = calloc(sz, sizeof(*cs.slot));
		cs.mask = sz - 1;
		if (!ops || !res || !room || !cs.slot) {
			free(ops);
			free(res);
			free(room);
			free(cs.slot);
			return CIDSTORE_ENOMEM;
		}
	}
	cid_t allp = tri_key_allp();
	/* single-term candidates first (4 per triple at ops[4i .. 4i+3]);
	 * res[c] marks those kept (new), then they are packed to the front */
	size_t ncand = 4 * n;
	for (size_t i = 0; i < n; i++) {
		cid_t subj = tri_key1(&t[i].s, TRI_R_SUBJ), pred = tri_key1(&t[i].p, TRI_R_PRED);
		cid_t obj = tri_key1(&t[i].o, TRI_R_OBJ);
		ops[4 * i + 0] = op_make(CIDSTORE_OP_INSERT, &subj, &t[i].p);
		ops[4 * i + 1] = op_make(CIDSTORE_OP_INSERT, &pred, &t[i].s);
		ops[4 * i + 2] = op_make(CIDSTORE_OP_INSERT, &obj, &t[i].p);
		ops[4 * i + 3] = op_make(CIDSTORE_OP_INSERT, &allp, &t[i].p);
		cid_t sp = tri_key2(&t[i].s, &t[i].p, TRI_R_SP);
		cid_t os = tri_key2(&t[i].o, &t[i].s, TRI_R_OS);
		cid_t po = tri_key2(&t[i].p, &t[i].o, TRI_R_PO);
		ops[ncand + 3 * i + 0] = op_make(CIDSTORE_OP_INSERT, &sp, &t[i].o);
		ops[ncand + 3 * i + 1] = op_make(CIDSTORE_OP_INSERT, &os, &t[i].p);
		ops[ncand + 3 * i + 2] = op_make(CIDSTORE_OP_INSERT, &po, &t[i].s);
		room[i] = troom_of(&t[i].s, &t[i].p, &t[i].o);
	}
	unsigned slot = tgate_enter(&ts->gate);
	for (size_t c = 0; c < ncand; c++) {
		/* present (1): stays until we leave the gate (only a cleaning
		 * pass removes); an error: insert anyway (idempotent) */
		res[c] = !(heap && cand_seen(&cs, ops, (uint32_t)c)) &&
			 cidstore_contains(st, &ops[c].key, &ops[c].value) != 1;
	}
	size_t nfree = 0;
	for (size_t c = 0; c < ncand; c++)
		if (res[c])
			ops[nfree++] = ops[c];
	/* then the pairs, 3 per triple, computed before the gate at
	 * ops[4n ..] and moved down: SP first (its result is the answer) */
	size_t nops = nfree + 3 * n;
	memmove(ops + nfree, ops + ncand, 3 * n * sizeof(*ops));
	for (size_t i = 0; i < n; i++)
		troom_enter(&ts->rooms, room[i], TROOM_INSERT);
	uint64_t wait_lsn = 0;
	long rc = store_write_batch_ex(st, ops, nfree, nops, res, &wait_lsn);
	for (size_t i = 0; i < n; i++)
		troom_exit(&ts->rooms, room[i], TROOM_INSERT);
	tgate_exit(&ts->gate, slot);
	if (wait_lsn) {
		int w = store_wait_durable(st, wait_lsn);
		if (w < 0 && rc >= 0)
			rc = w;
	}
	long added = 0;
	for (size_t i = 0; i < n; i++) {
		int r = res[nfree + 3 * i]; /* per operation, also after an error */
		added += r;
		if (results)
			results[i] = r;
	}
	if (heap) {
		free(ops);
		free(res);
		free(room);
		free(cs.slot);
	}
	return rc < 0 ? rc : added;
}

CIDSTORE_API int cidstore_triple_insert(cidstore_t *st, const cidstore_triple_t *t)
{
	if (!st || !t)
		return CIDSTORE_EINVAL;
	return (int)insert_triples(st, t, 1, NULL);
}

CIDSTORE_API long cidstore_triple_insert_many(cidstore_t *st, const cidstore_triple_t *t,
					      size_t n, int *results)
{
	if (!st || (n && !t))
		return CIDSTORE_EINVAL;
	if (n == 0)
		return 0;
	return insert_triples(st, t, n, results);
}

/* ------------------------------------------------------------------ */
/* delete                                                              */
/* ------------------------------------------------------------------ */

CIDSTORE_API int cidstore_triple_delete(cidstore_t *st, const cidstore_triple_t *t)
{
	if (!st || !t)
		return CIDSTORE_EINVAL;
	struct tri_state *ts = state_of(st);
	if (!ts)
		return CIDSTORE_ENOMEM;
	cid_t sp = tri_key2(&t->s, &t->p, TRI_R_SP);
	cid_t os = tri_key2(&t->o, &t->s, TRI_R_OS);
	cid_t po = tri_key2(&t->p, &t->o, TRI_R_PO);
	cidstore_op_t ops[3] = {
		op_make(CIDSTORE_OP_DELETE_VALUE, &sp, &t->o),
		op_make(CIDSTORE_OP_DELETE_VALUE, &os, &t->p),
		op_make(CIDSTORE_OP_DELETE_VALUE, &po, &t->s),
	};
	int res[3];
	unsigned room = troom_of(&t->s, &t->p, &t->o);
	unsigned slot = tgate_enter(&ts->gate);
	troom_enter(&ts->rooms, room, TROOM_DELETE);
	uint64_t wait_lsn = 0;
	int rc = store_write_batch_ex(st, ops, 0, 3, res, &wait_lsn);
	troom_exit(&ts->rooms, room, TROOM_DELETE);
	tgate_exit(&ts->gate, slot);
	if (rc >= 0 && res[0]) {
		/* did this delete empty a pair?  (if a concurrent insert refilled
		 * it, the entry is not stale; a later emptying delete queues it) */
		struct cand c[2];
		size_t nc = 0;
		if (cidstore_lookup(st, &sp, NULL, 0) == 0)
			c[nc++] = (struct cand){.a = t->s, .b = t->p, .kind = CAND_SP};
		if (cidstore_lookup(st, &po, NULL, 0) == 0)
			c[nc++] = (struct cand){.a = t->p, .b = t->o, .kind = CAND_PO};
		if (nc)
			queue_push(ts, c, nc);
	}
	if (wait_lsn) {
		int w = store_wait_durable(st, wait_lsn);
		if (w < 0 && rc >= 0)
			rc = w;
	}
	if (rc < 0)
		return rc;
	if (atomic_load_explicit(&ts->qlen, memory_order_relaxed) >= TRI_CLEAN_AT)
		(void)clean_pass(st, ts, false, NULL); /* a failure stays for the next pass */
	return res[0];
}
