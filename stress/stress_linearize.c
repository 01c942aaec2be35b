/*
 * stress_linearize.c — harness 1: per-key linearizability of the set
 * operations (DESIGN.md §5: "Each operation is linearizable per key. A lookup
 * returns a set of values that the key really held at one instant").
 *
 * Threads run random insert / delete_value / delete_key / lookup / contains
 * on a small key space (--keys, default 4) and value space (--values,
 * default 4, at most 16), so operations really conflict and keys cross the
 * one value (inline in the entry) / two or more (value set) boundary all the
 * time.  Each operation is logged with its invocation time, its response
 * time (CLOCK_MONOTONIC) and its result.  An optional filler thread
 * (--filler-keys) inserts and deletes other keys meanwhile so the table
 * grows and its groups migrate under the readers.
 *
 * The run proceeds in rounds of --round-ops operations.  After each round
 * (all workers quiescent) the main thread looks every key up once more: that
 * is the round's final state and the next round's initial state.
 *
 * HOT PHASE (--hot-ops writer operations per round, 0 turns it off; runs
 * while the main thread checks the round): five hot keys, each written by
 * one thread only (two writers from 4 threads on, else one), read by all
 * the others with lookup, values, lookup_many and contains until the
 * writers are through (bounded by the writers' operations, no sleeps).
 * The writer adds or removes one value per operation, so after its j-th
 * operation the key's set is a known run of a fixed value sequence:
 *   keys 0, 1   1 -> 2 -> 1 -> .. values: every write replaces the entry
 *               (spill, demote)
 *   key 2       1 -> 2 -> .. -> --hot-len (8) -> .. -> 1: appends to and
 *               deletes from a value set, value-set rebuilds
 *   key 3       absent -> {value m % 3} -> absent: incarnation m of the key
 *               (delete_value / delete_key, then an insert into the group)
 *   key 4       248 .. 264 values (--hot-big 256): cidstore_values delivers
 *               a set in chunks of 256
 * Keys 0, 1, 2 and 4 always hold their value 0 (.. 247), the writer
 * appends in order and deletes from the tail: such a set at one instant is
 * a prefix of the sequence.  Each reader loads the writer's count of
 * completed operations before (a) and after (b) its call; the call must
 * return the set the key held after some operation j, a <= j <= b + 1, and
 * j must not be below the j of the same thread's previous read of the key
 * (a thread's reads are ordered in real time).  Checked online, in the
 * reader.
 *
 * CHECKER (Wing & Gong search with memoization, per key — linearizability is
 * local, so the history of each key is checked on its own):
 *   a configuration is (for every thread, how many of its operations on this
 *   key are linearized; the key's value set as a bitmask).  Because a thread's
 *   operations are sequential, the linearized operations of a thread always
 *   form a prefix, so this vector describes the linearized set exactly.  The
 *   next operation of thread t may be linearized next iff its invocation is
 *   not after the response of any not-yet-linearized operation (i.e. iff
 *   inv <= min over threads of the response of their next operation).  It is
 *   applied to the set; its logged result must equal the sequential result:
 *     insert v       1 iff v absent          set |= v
 *     delete_value v 1 iff v present         set &= ~v
 *     delete_key     |set|                   set = {}
 *     lookup         exactly set (values and count)
 *     contains v     1 iff v present
 *   The search succeeds when every operation is linearized and the set
 *   equals the quiescent final state.  Visited configurations are memoized
 *   (a 64-bit hash of the configuration), so each is expanded once.
 *
 * Invariants reported:
 *   LINEARIZABILITY  no linearization of a key's round history exists;
 *   TORN-VALUE       lookup returned a value that is not one of the 256-bit
 *                    values ever inserted (words of two values mixed, or
 *                    garbage), or a duplicate, or a count above --values;
 *   VANISHED         a read of a never-empty hot key found no values (or
 *                    contains said no to a value never deleted) — a reader
 *                    saw an entry being replaced
 *                    (CIDSTORE_BROKEN_TWO_STEP_PUBLISH=1 is caught by this);
 *   NOT-A-PREFIX     a read of a hot key returned a set that is not a prefix
 *                    of the value sequence (values of two instants mixed);
 *   WENT-BACK        a read returned a state older than the one an earlier
 *                    read of the same thread returned;
 *   HOT-STATE        a hot key's read returned a set (or contains answer)
 *                    the key did not hold at any instant of the call, or the
 *                    final state differs from the writer's model;
 *   VALUES-COUNT     cidstore_values returned another count than it
 *                    delivered to its callback;
 *   RETURN-VALUE     a hot writer's insert / delete_value did not return 1;
 *   API-ERROR        an operation returned an error code.
 */
#include "common.h"

#define MAXV 16

enum { OP_INSERT, OP_DELVAL, OP_DELKEY, OP_LOOKUP, OP_CONTAINS, NOPS };
static const char *op_name[NOPS] = {"insert", "delete_value", "delete_key", "lookup",
				    "contains"};

struct ev {
	uint64_t inv, resp;
	int32_t ret;     /* return value (lookup: count) */
	uint16_t mask;   /* lookup: the values returned */
	uint8_t key, op, val;
};

struct worker {
	pthread_t th;
	unsigned id;
	rng_t rng;
	struct ev *log;
	size_t n, cap;
	uint64_t ops[NOPS];
	rng_t hrng;          /* hot-key reads (timing-dependent count: own stream) */
	uint64_t hot_reads[4], hot_writes, spills, demotes, blinks;
	uint64_t hot_lo[5];  /* per hot key: the state its last read saw */
	char hot_last[5][160]; /* per hot key: that read, for messages */
	cid_t *hot_out;      /* 2 * (HOT_MAXLEN + 1) values */
	uint64_t hot_seen[16]; /* HOT_MAXLEN bits */
};

static struct {
	cidstore_t *s;
	unsigned nkeys, nvalues;
	unsigned round_ops;     /* per round, all threads together */
	unsigned filler_keys;
	unsigned nt;
	uint64_t max_configs;
	barrier_t start, end;
	_Atomic int stop;       /* set by main between rounds */
	_Atomic int filler_stop;
	struct worker *w;
	cid_t keys[256];
	cid_t vals[MAXV];
} G;

/* The hot keys (see the top comment).  Key k's state after its writer's
 * j-th operation is a run of value indexes [base, base + n) (hot_state);
 * value i of key k is cid_make(5, k, i). */
#define HOTK 5
enum { HOT_SMALL0, HOT_SMALL1, HOT_LONG, HOT_BLINK, HOT_BIG };
#define HOT_MAXLEN 1024   /* largest value index + 1 of any hot key */
_Static_assert(HOTK <= 5 && HOT_MAXLEN <= 16 * 64, "struct worker's hot arrays");
enum { HR_LOOKUP, HR_VALUES, HR_MANY, HR_CONTAINS };

struct hot {
	cid_t key;
	unsigned lo, hi;         /* prefix keys: sizes lo, .., hi, .., lo, .. */
	bool blink;              /* absent / value m % 3 alternately (incarnation m) */
	_Atomic uint64_t done;   /* writer operations completed on this key */
};

static struct {
	struct hot k[HOTK];
	unsigned ops;            /* --hot-ops: writer operations per round */
	unsigned nwriters;
	cid_t absent;            /* a key never inserted */
	_Atomic uint64_t finished; /* writer shares of hot phases finished */
} H;

static void h_opt(int c, const char *arg);
static const struct option extra_opts[] = {
	{"values", required_argument, 0, 'v'},
	{"round-ops", required_argument, 0, 'r'},
	{"filler-keys", required_argument, 0, 'f'},
	{"max-configs", required_argument, 0, 'm'},
	{"hot-ops", required_argument, 0, 'h'},
	{"hot-len", required_argument, 0, 'l'},
	{"hot-big", required_argument, 0, 'b'},
	{0, 0, 0, 0},
};

static void h_opt(int c, const char *arg)
{
	switch (c) {
	case 'v':
		G.nvalues = (unsigned)parse_u64("values", arg);
		if (G.nvalues < 1 || G.nvalues > MAXV)
			stress_die("--values must be 1..16");
		break;
	case 'r':
		G.round_ops = (unsigned)parse_u64("round-ops", arg);
		break;
	case 'f':
		G.filler_keys = (unsigned)parse_u64("filler-keys", arg);
		break;
	case 'm':
		G.max_configs = parse_u64("max-configs", arg);
		break;
	case 'h':
		H.ops = (unsigned)parse_u64("hot-ops", arg);
		break;
	case 'l':
		H.k[HOT_LONG].hi = (unsigned)parse_u64("hot-len", arg);
		if (H.k[HOT_LONG].hi < 2 || H.k[HOT_LONG].hi > HOT_MAXLEN)
			stress_die("--hot-len must be 2..%u", HOT_MAXLEN);
		break;
	case 'b': {
		unsigned c = (unsigned)parse_u64("hot-big", arg);
		if (c < 16 || c + 8 > HOT_MAXLEN)
			stress_die("--hot-big must be 16..%u", HOT_MAXLEN - 8);
		H.k[HOT_BIG].lo = c - 8;
		H.k[HOT_BIG].hi = c + 8;
		break;
	}
	}
}

/* Decodes a lookup result into a mask; TORN-VALUE on anything else. */
static uint16_t lookup_mask(unsigned key, const cid_t *out, long n)
{
	uint16_t m = 0;
	if (n > (long)G.nvalues)
		stress_fail("TORN-VALUE", "lookup of key %u returned %ld values (only %u exist)", key,
			    n, G.nvalues);
	for (long i = 0; i < n; i++) {
		uint32_t tag, a, b;
		if (!cid_decode(&out[i], &tag, &a, &b) || tag != 2 || a >= G.nvalues || b != 0)
			stress_fail("TORN-VALUE",
				    "lookup of key %u returned a value that was never inserted: "
				    "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64,
				    key, out[i].w[0], out[i].w[1], out[i].w[2], out[i].w[3]);
		if (m & (1u << a))
			stress_fail("TORN-VALUE", "lookup of key %u returned value %u twice", key, a);
		m |= (uint16_t)(1u << a);
	}
	return m;
}

static void log_push(struct worker *w, const struct ev *e)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 1024;
		w->log = realloc(w->log, w->cap * sizeof(*w->log));
		if (!w->log)
			stress_die("out of memory");
	}
	w->log[w->n++] = *e;
}

static void do_op(struct worker *w)
{
	struct ev e = {0};
	unsigned r = rng_below(&w->rng, 100);
	/* writes 55%, reads 45%; delete_key rare so sets grow past 2 values */
	e.op = r < 30 ? OP_INSERT : r < 50 ? OP_DELVAL : r < 55 ? OP_DELKEY
	     : r < 85 ? OP_LOOKUP : OP_CONTAINS;
	e.key = (uint8_t)rng_below(&w->rng, G.nkeys);
	e.val = (uint8_t)rng_below(&w->rng, G.nvalues);
	const cid_t *k = &G.keys[e.key], *v = &G.vals[e.val];
	cid_t out[MAXV + 1];
	long rc;
	e.inv = now_ns();
	switch (e.op) {
	case OP_INSERT:
		rc = cidstore_insert(G.s, k, v);
		break;
	case OP_DELVAL:
		rc = cidstore_delete_value(G.s, k, v);
		break;
	case OP_DELKEY:
		rc = cidstore_delete_key(G.s, k);
		break;
	case OP_LOOKUP:
		rc = cidstore_lookup(G.s, k, out, MAXV + 1);
		break;
	default:
		rc = cidstore_contains(G.s, k, v);
		break;
	}
	e.resp = now_ns();
	stress_check_rc(op_name[e.op], rc);
	e.ret = (int32_t)rc;
	if (e.op == OP_LOOKUP)
		e.mask = lookup_mask(e.key, out, rc);
	w->ops[e.op]++;
	log_push(w, &e);
}

/* ------------------------------------------------------------------ */
/* hot keys: one writer per key, readers checked online                */
/* ------------------------------------------------------------------ */

static inline cid_t hot_val(unsigned k, unsigned i)
{
	return cid_make(5, k, i);
}

static uint64_t hot_period(const struct hot *h)
{
	return h->blink ? 6 : 2 * (uint64_t)(h->hi - h->lo);
}

/* Value indexes of key h are below this. */
static unsigned hot_nvals(const struct hot *h)
{
	return h->blink ? 3 : h->hi;
}

struct hot_state {
	unsigned base, n;        /* values base .. base + n - 1; n == 0: absent */
};

static struct hot_state hot_state(const struct hot *h, uint64_t j)
{
	if (h->blink)
		return (j & 1) ? (struct hot_state){(unsigned)(((j - 1) / 2) % 3), 1}
			       : (struct hot_state){0, 0};
	uint64_t p = j % hot_period(h), up = h->hi - h->lo;
	return (struct hot_state){0, h->lo + (unsigned)(p <= up ? p : 2 * up - p)};
}

static const char *hot_change(unsigned f, unsigned t)
{
	return f == 0 ? "an insert of an absent key"
	     : t == 0 ? "a delete of the last value"
	     : f == 1 && t == 2 ? "a spill: inline value -> value set"
	     : f == 2 && t == 1 ? "a demote: value set -> inline value"
	     : t > f ? "an add to the value set" : "a delete from the value set";
}

/* What a read may have seen: the state after writer op j for a <= j <= b + 1
 * (it loaded done == a before the call, done == b after), and no earlier
 * than what this thread's previous read of the key saw (lo). */
static void hot_window(const struct hot *h, uint64_t a, uint64_t b, uint64_t lo,
		       const char *last, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "the writer had completed op %" PRIu64 " before the call and op %"
			 PRIu64 " after it", a, b);
	if (b + 1 - a <= 2 && n > 0 && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, " (op %" PRIu64 ", in flight, is %s)", b + 1,
			      hot_change(hot_state(h, b).n, hot_state(h, b + 1).n));
	if (lo > a && n > 0 && (size_t)n < cap)
		snprintf(buf + n, cap - (size_t)n, "; an earlier read of this thread saw the state "
			 "after op %" PRIu64 " (%s)", lo, last);
}

/* A read's result: a set (run of value indexes, or not a run) or
 * contains(value vi) == c. */
struct hot_res {
	bool is_set, run;
	struct hot_state s;
	unsigned vi;
	int c;
};

static bool hot_fits(const struct hot *h, uint64_t j, const struct hot_res *r)
{
	struct hot_state s = hot_state(h, j);
	if (!r->is_set)
		return (r->vi >= s.base && r->vi < s.base + s.n) == (r->c == 1);
	return r->run && r->s.n == s.n && (s.n == 0 || r->s.base == s.base);
}

/* A set result of n values in out: TORN-VALUE unless every value is one of
 * the key's, once. */
static struct hot_res hot_decode(struct worker *w, const char *what, unsigned k, const cid_t *out,
				 long n)
{
	const struct hot *h = &H.k[k];
	if (n > (long)hot_nvals(h))
		stress_fail("TORN-VALUE", "%s of hot key %u returned %ld values (at most %u exist)",
			    what, k, n, hot_nvals(h));
	memset(w->hot_seen, 0, sizeof(w->hot_seen));
	unsigned min = UINT32_MAX, max = 0;
	for (long i = 0; i < n; i++) {
		uint32_t tag, x, y;
		if (!cid_decode(&out[i], &tag, &x, &y) || tag != 5 || x != k || y >= hot_nvals(h))
			stress_fail("TORN-VALUE",
				    "%s of hot key %u returned a value that was never inserted "
				    "under it: %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64,
				    what, k, out[i].w[0], out[i].w[1], out[i].w[2], out[i].w[3]);
		if (w->hot_seen[y / 64] & (1ull << (y % 64)))
			stress_fail("TORN-VALUE", "%s of hot key %u returned value %u twice", what, k, y);
		w->hot_seen[y / 64] |= 1ull << (y % 64);
		min = y < min ? y : min;
		max = y > max ? y : max;
	}
	struct hot_res r = {.is_set = true, .run = true};
	if (n > 0) {
		r.s = (struct hot_state){min, (unsigned)n};
		r.run = max - min + 1 == (unsigned)n;
	}
	return r;
}

/* Checks a read of hot key k against the states a..b+1 (and this thread's
 * lower bound w->hot_lo[k], which it then raises). */
static void hot_check(struct worker *w, const char *what, unsigned k, uint64_t a, uint64_t b,
		      const struct hot_res *r)
{
	const struct hot *h = &H.k[k];
	uint64_t period = hot_period(h), lo = w->hot_lo[k];
	uint64_t start = a > lo ? a : lo;
	char res[64], win[480];
	if (!r->is_set)
		snprintf(res, sizeof(res), "%d for value %u", r->c, r->vi);
	else if (r->s.n == 0)
		snprintf(res, sizeof(res), "no values");
	else if (r->run)
		snprintf(res, sizeof(res), "%u values (%u..%u)", r->s.n, r->s.base,
			 r->s.base + r->s.n - 1);
	else
		snprintf(res, sizeof(res), "%u values, not a run", r->s.n);
	for (uint64_t j = start; j <= b + 1 && j < start + period; j++)
		if (hot_fits(h, j, r)) {
			if (j > w->hot_lo[k])
				snprintf(w->hot_last[k], sizeof(w->hot_last[k]), "%s -> %s, done %" PRIu64
					 " before and %" PRIu64 " after", what, res, a, b);
			w->hot_lo[k] = j;
			return;
		}
	hot_window(h, a, b, lo, w->hot_last[k], win, sizeof(win));
	if (!h->blink && (r->is_set ? r->s.n == 0 : r->vi < h->lo && r->c == 0))
		stress_fail("VANISHED", "%s of hot key %u returned %s, but the key held %u..%u values "
			    "at every instant (%s %u %s never deleted); %s", what, k, res, h->lo, h->hi,
			    h->lo == 1 ? "value" : "values 0 ..", h->lo - 1,
			    h->lo == 1 ? "is" : "are", win);
	bool ever = false;
	for (uint64_t j = 0; j < period && !ever; j++)
		ever = hot_fits(h, j, r);
	if (!ever)
		stress_fail(h->blink ? "HOT-STATE" : "NOT-A-PREFIX", "%s of hot key %u returned %s: "
			    "the key never held that set%s; %s", what, k, res,
			    h->blink ? "" : " (its values are appended in order and deleted from "
			    "the tail)", win);
	for (uint64_t j = a; j < start; j++)
		if (hot_fits(h, j, r))
			stress_fail("WENT-BACK", "%s of hot key %u returned %s, the state after op %"
				    PRIu64 ", older than what an earlier read of this thread saw; %s",
				    what, k, res, j, win);
	stress_fail("HOT-STATE", "%s of hot key %u returned %s; the key did not hold that at any "
		    "instant of the call; %s", what, k, res, win);
}

struct vals_ctx {
	cid_t *out;              /* HOT_MAXLEN + 1 */
	long n;
};

static int vals_cb(const cid_t *values, size_t n, void *p)
{
	struct vals_ctx *c = p;
	for (size_t i = 0; i < n; i++) {
		if (c->n <= HOT_MAXLEN)
			c->out[c->n] = values[i];
		c->n++;
	}
	return 0;
}

static void hot_read(struct worker *w)
{
	/* the big key (a read decodes hundreds of values, ~30 times the
	 * others' cost) is read 1 time in 64 */
	unsigned k = rng_below(&w->hrng, 64);
	k = k < 63 ? k % HOT_BIG : HOT_BIG;
	struct hot *h = &H.k[k];
	unsigned r = rng_below(&w->hrng, 100);
	unsigned kind = r < 40 ? HR_LOOKUP : r < 70 ? HR_VALUES : r < 85 ? HR_MANY : HR_CONTAINS;
	unsigned vi = rng_below(&w->hrng, hot_nvals(h));
	cid_t *out = w->hot_out, val = hot_val(k, vi);
	struct vals_ctx vc = {out, 0};
	long n = 0, counts[2] = {0, 0};
	/* acquire: operations 1..a took effect before the read began */
	uint64_t a = atomic_load_explicit(&h->done, memory_order_acquire);
	switch (kind) {
	case HR_LOOKUP:
		n = cidstore_lookup(G.s, &h->key, out, HOT_MAXLEN + 1);
		break;
	case HR_VALUES:
		n = cidstore_values(G.s, &h->key, vals_cb, &vc);
		break;
	case HR_MANY: {
		cid_t keys[2] = {h->key, H.absent};
		n = cidstore_lookup_many(G.s, keys, 2, out, HOT_MAXLEN + 1, counts);
		break;
	}
	default:
		n = cidstore_contains(G.s, &h->key, &val);
		break;
	}
	/* The read saw nothing of operation b + 2: that operation starts after
	 * the writer's release store done = b + 1, and had the read acquired
	 * one of its stores (slot word, tag word or value-set pub), this load
	 * could not return b any more.  So it saw the state after some
	 * operation in [a, b + 1]. */
	uint64_t b = atomic_load_explicit(&h->done, memory_order_acquire);
	static const char *const name[] = {"lookup", "values", "lookup_many", "contains"};
	stress_check_rc(name[kind], n);
	w->hot_reads[kind]++;
	struct hot_res res;
	switch (kind) {
	case HR_LOOKUP:
		res = hot_decode(w, "lookup", k, out, n);
		break;
	case HR_VALUES:
		if (n != vc.n)
			stress_fail("VALUES-COUNT", "values of hot key %u returned %ld but delivered %ld "
				    "values", k, n, vc.n);
		res = hot_decode(w, "values", k, out, n);
		break;
	case HR_MANY:
		if (counts[1] != 0)
			stress_fail("HOT-STATE", "lookup_many: a key never inserted has %ld values",
				    counts[1]);
		res = hot_decode(w, "lookup_many", k, out, counts[0]);
		break;
	default:
		res = (struct hot_res){.is_set = false, .vi = vi, .c = (int)n};
		break;
	}
	hot_check(w, name[kind], k, a, b, &res);
}

/* The writer's next operation on key k: one value added or removed. */
static void hot_write(struct worker *w, unsigned k)
{
	struct hot *h = &H.k[k];
	uint64_t j = atomic_load_explicit(&h->done, memory_order_relaxed); /* own counter */
	struct hot_state from = hot_state(h, j), to = hot_state(h, j + 1);
	const char *op;
	long rc;
	if (to.n > from.n) {
		op = "insert";
		cid_t v = hot_val(k, to.base + to.n - 1);
		rc = cidstore_insert(G.s, &h->key, &v);
	} else if (to.n == 0 && (j / 2) % 2) {
		op = "delete_key"; /* every other removal of the blinking key */
		rc = cidstore_delete_key(G.s, &h->key);
	} else {
		op = "delete_value";
		cid_t v = hot_val(k, from.base + from.n - 1);
		rc = cidstore_delete_value(G.s, &h->key, &v);
	}
	stress_check_rc(op, rc);
	if (rc != 1)
		stress_fail("RETURN-VALUE", "hot key %u, writer op %" PRIu64 " (%s): %s returned %ld, "
			    "expected 1", k, j + 1, hot_change(from.n, to.n), op, rc);
	w->hot_writes++;
	w->spills += from.n == 1 && to.n == 2;
	w->demotes += from.n == 2 && to.n == 1;
	w->blinks += to.n == 0;
	atomic_store_explicit(&h->done, j + 1, memory_order_release);
}

/* One round's hot phase: writers run --hot-ops operations, the others read
 * until every writer is through (bounded by the writers, no sleeps). */
static void hot_phase(struct worker *w, uint64_t round)
{
	unsigned nw = H.nwriters;
	if (w->id < nw) {
		/* key k belongs to writer k % nw; the keys whose every write
		 * replaces or removes their entry are written 3 times as often
		 * as the others */
		unsigned sched[3 * HOTK], ns = 0;
		for (unsigned k = w->id; k < HOTK; k += nw)
			for (unsigned x = 0; x < (k == HOT_LONG || k == HOT_BIG ? 1u : 3u); x++)
				sched[ns++] = k;
		for (unsigned i = 0; i < H.ops; i++) {
			hot_write(w, sched[i % ns]);
			if (G.nt == 1)
				hot_read(w); /* nobody else reads */
		}
		atomic_fetch_add_explicit(&H.finished, 1, memory_order_release);
		return;
	}
	uint64_t target = (round + 1) * nw;
	while (atomic_load_explicit(&H.finished, memory_order_acquire) < target)
		hot_read(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (uint64_t round = 0;; round++) {
		barrier_wait(&G.start);
		if (atomic_load_explicit(&G.stop, memory_order_acquire))
			return NULL;
		for (unsigned i = 0; i < G.round_ops; i++)
			do_op(w);
		barrier_wait(&G.end);
		/* while the main thread checks the round */
		if (H.ops)
			hot_phase(w, round);
	}
}

/* Churns other keys so the checked keys' bucket splits and compacts. */
static void *filler_main(void *arg)
{
	rng_t rng;
	rng_init(&rng, stress_seed, 0xf111e5);
	(void)arg;
	while (!atomic_load_explicit(&G.filler_stop, memory_order_relaxed)) {
		cid_t k = cid_make(3, rng_below(&rng, G.filler_keys), 0);
		cid_t v = cid_make(4, rng_below(&rng, 3), 0);
		long rc = rng_below(&rng, 3) ? cidstore_insert(G.s, &k, &v)
					     : cidstore_delete_key(G.s, &k);
		stress_check_rc("filler", rc);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* checker                                                             */
/* ------------------------------------------------------------------ */

struct hist {
	unsigned nt;
	struct ev **e;      /* e[t][0..n[t]): thread t's operations on the key, in order */
	size_t *n;
};

struct search {
	const struct hist *h;
	uint16_t final;
	uint16_t *idx;      /* current configuration */
	uint64_t *seen;     /* open-addressing set of configuration hashes */
	size_t seen_cap, seen_n;
	uint64_t configs;
	uint64_t budget;
	bool over_budget;
};

static uint64_t config_hash(const struct search *S, uint16_t state)
{
	uint64_t h = 0x243f6a8885a308d3ULL ^ state;
	for (unsigned t = 0; t < S->h->nt; t++)
		h = mix64(h ^ ((uint64_t)S->idx[t] << 17) ^ t) + 0x9e3779b97f4a7c15ULL;
	return h | 1; /* 0 marks an empty cell */
}

/* true when newly inserted */
static bool seen_add(struct search *S, uint64_t h)
{
	if (S->seen_n * 2 >= S->seen_cap) {
		size_t nc = S->seen_cap ? S->seen_cap * 2 : 1 << 16;
		uint64_t *ns = calloc(nc, sizeof(*ns));
		if (!ns)
			stress_die("out of memory");
		for (size_t i = 0; i < S->seen_cap; i++)
			if (S->seen[i]) {
				size_t j = S->seen[i] & (nc - 1);
				while (ns[j])
					j = (j + 1) & (nc - 1);
				ns[j] = S->seen[i];
			}
		free(S->seen);
		S->seen = ns;
		S->seen_cap = nc;
	}
	size_t j = h & (S->seen_cap - 1);
	while (S->seen[j]) {
		if (S->seen[j] == h)
			return false;
		j = (j + 1) & (S->seen_cap - 1);
	}
	S->seen[j] = h;
	S->seen_n++;
	return true;
}

/* Applies e to state; false when its logged result is impossible there. */
static bool apply(const struct ev *e, uint16_t *state)
{
	uint16_t s = *state, bit = (uint16_t)(1u << e->val);
	switch (e->op) {
	case OP_INSERT:
		if (e->ret != !(s & bit))
			return false;
		*state = s | bit;
		return true;
	case OP_DELVAL:
		if (e->ret != !!(s & bit))
			return false;
		*state = s & (uint16_t)~bit;
		return true;
	case OP_DELKEY:
		if (e->ret != __builtin_popcount(s))
			return false;
		*state = 0;
		return true;
	case OP_LOOKUP:
		return e->mask == s && e->ret == __builtin_popcount(s);
	default:
		return e->ret == !!(s & bit);
	}
}

static bool dfs(struct search *S, uint16_t state)
{
	const struct hist *h = S->h;
	if (!seen_add(S, config_hash(S, state)))
		return false;
	if (++S->configs > S->budget) {
		S->over_budget = true;
		return false;
	}
	uint64_t minresp = UINT64_MAX;
	bool done = true;
	for (unsigned t = 0; t < h->nt; t++)
		if (S->idx[t] < h->n[t]) {
			done = false;
			if (h->e[t][S->idx[t]].resp < minresp)
				minresp = h->e[t][S->idx[t]].resp;
		}
	if (done)
		return state == S->final;
	for (unsigned t = 0; t < h->nt; t++) {
		if (S->idx[t] >= h->n[t])
			continue;
		const struct ev *e = &h->e[t][S->idx[t]];
		if (e->inv > minresp)
			continue; /* some pending operation finished before e began */
		uint16_t ns = state;
		if (!apply(e, &ns))
			continue;
		S->idx[t]++;
		bool ok = dfs(S, ns);
		S->idx[t]--;
		if (ok || S->over_budget)
			return ok;
	}
	return false;
}

static int ev_cmp_inv(const void *a, const void *b)
{
	const struct ev *x = *(const struct ev *const *)a, *y = *(const struct ev *const *)b;
	return x->inv < y->inv ? -1 : x->inv > y->inv;
}

static void dump_history(const struct hist *h, unsigned key, uint16_t initial, uint16_t final)
{
	size_t total = 0;
	for (unsigned t = 0; t < h->nt; t++)
		total += h->n[t];
	const struct ev **all = malloc(total * sizeof(*all));
	unsigned *who = malloc(total * sizeof(*who));
	size_t k = 0;
	for (unsigned t = 0; t < h->nt; t++)
		for (size_t i = 0; i < h->n[t]; i++)
			all[k++] = &h->e[t][i];
	qsort(all, total, sizeof(*all), ev_cmp_inv);
	for (size_t i = 0; i < total; i++) {
		who[i] = 0;
		for (unsigned t = 0; t < h->nt; t++)
			if (all[i] >= h->e[t] && all[i] < h->e[t] + h->n[t])
				who[i] = t;
	}
	uint64_t t0 = total ? all[0]->inv : 0;
	fprintf(stderr, "history of key %u: initial set 0x%04x, final set 0x%04x, %zu ops "
		"(thread, [inv, resp] ns from the first invocation, op, value, result)\n",
		key, initial, final, total);
	size_t lim = total > 400 ? 400 : total;
	for (size_t i = 0; i < lim; i++)
		if (all[i]->op == OP_LOOKUP)
			fprintf(stderr, "  t%-2u [%9" PRIu64 ", %9" PRIu64 "] %-12s    -> %d set 0x%04x\n",
				who[i], all[i]->inv - t0, all[i]->resp - t0, op_name[all[i]->op],
				all[i]->ret, all[i]->mask);
		else
			fprintf(stderr, "  t%-2u [%9" PRIu64 ", %9" PRIu64 "] %-12s v%u -> %d\n",
				who[i], all[i]->inv - t0, all[i]->resp - t0, op_name[all[i]->op],
				all[i]->val, all[i]->ret);
	if (lim < total)
		fprintf(stderr, "  ... %zu more\n", total - lim);
	free(all);
	free(who);
}

static struct {
	uint64_t rounds, keys_checked, max_configs_seen, inconclusive, ops[NOPS];
} R;

/* Checks every key of the round.  initial[k] in, final[k] = observed. */
static void check_round(unsigned nt, const uint16_t *initial, const uint16_t *final,
			uint64_t round)
{
	struct hist h = {.nt = nt};
	h.e = calloc(nt, sizeof(*h.e));
	h.n = calloc(nt, sizeof(*h.n));
	struct search S = {0};
	S.idx = calloc(nt, sizeof(*S.idx));
	for (unsigned t = 0; t < nt; t++)
		h.e[t] = malloc((G.w[t].n + 1) * sizeof(struct ev));
	for (unsigned k = 0; k < G.nkeys; k++) {
		for (unsigned t = 0; t < nt; t++) {
			h.n[t] = 0;
			for (size_t i = 0; i < G.w[t].n; i++)
				if (G.w[t].log[i].key == k)
					h.e[t][h.n[t]++] = G.w[t].log[i];
		}
		S.h = &h;
		S.final = final[k];
		S.configs = 0;
		S.over_budget = false;
		S.budget = G.max_configs;
		if (S.seen)
			memset(S.seen, 0, S.seen_cap * sizeof(*S.seen));
		S.seen_n = 0;
		memset(S.idx, 0, nt * sizeof(*S.idx));
		bool ok = dfs(&S, initial[k]);
		if (S.configs > R.max_configs_seen)
			R.max_configs_seen = S.configs;
		if (S.over_budget) {
			R.inconclusive++;
			fprintf(stderr, "%s: round %" PRIu64 " key %u: search budget of %" PRIu64
				" configurations exhausted; history skipped (inconclusive)\n",
				stress_name, round, k, G.max_configs);
			continue;
		}
		if (!ok) {
			dump_history(&h, k, initial[k], final[k]);
			stress_fail("LINEARIZABILITY",
				    "round %" PRIu64 ": the history of key %u has no linearization "
				    "for set semantics (%" PRIu64 " configurations searched; history "
				    "on stderr)", round, k, S.configs);
		}
		R.keys_checked++;
	}
	for (unsigned t = 0; t < nt; t++)
		free(h.e[t]);
	free(h.e);
	free(h.n);
	free(S.idx);
	free(S.seen);
}

static uint16_t quiescent_state(unsigned k)
{
	cid_t out[MAXV + 1];
	long n = cidstore_lookup(G.s, &G.keys[k], out, MAXV + 1);
	stress_check_rc("lookup", n);
	return lookup_mask(k, out, n);
}

static int run_one(const struct stress_opts *o)
{
	memset(&R, 0, sizeof(R));
	G.nkeys = o->keys > 256 ? 256 : o->keys;
	for (unsigned k = 0; k < G.nkeys; k++)
		G.keys[k] = cid_make(1, k, 0);
	for (unsigned v = 0; v < G.nvalues; v++)
		G.vals[v] = cid_make(2, v, 0);
	cidstore_options_t opt;
	cidstore_options_init(&opt);
	opt.seed = o->seed ? o->seed : 1;
	if (cidstore_open(&opt, &G.s))
		stress_die("cidstore_open failed");
	unsigned nt = o->threads;
	G.nt = nt;
	/* hot keys in state 0: values 0 .. lo - 1 (never deleted); the
	 * blinking key absent */
	H.nwriters = nt >= 4 ? 2 : 1;
	H.absent = cid_make(7, 0, 0);
	atomic_store(&H.finished, 0);
	for (unsigned k = 0; k < HOTK; k++) {
		struct hot *h = &H.k[k];
		h->key = cid_make(6, k, 0);
		atomic_store(&h->done, 0);
		for (unsigned i = 0; H.ops && i < hot_state(h, 0).n; i++) {
			cid_t v = hot_val(k, i);
			stress_check_rc("insert", cidstore_insert(G.s, &h->key, &v));
		}
	}
	G.w = calloc(nt, sizeof(*G.w));
	for (unsigned t = 0; t < nt; t++) {
		G.w[t].hot_out = malloc(2 * (HOT_MAXLEN + 1) * sizeof(cid_t));
		if (!G.w[t].hot_out)
			stress_die("out of memory");
	}
	unsigned saved_round = G.round_ops;
	G.round_ops = G.round_ops / nt ? G.round_ops / nt : 1; /* per thread */
	atomic_store(&G.stop, 0);
	atomic_store(&G.filler_stop, 0);
	barrier_init(&G.start, nt + 1);
	barrier_init(&G.end, nt + 1);
	for (unsigned t = 0; t < nt; t++) {
		G.w[t].id = t;
		rng_init(&G.w[t].rng, o->seed, t + 1);
		rng_init(&G.w[t].hrng, o->seed, 0x40700 + t);
		if (pthread_create(&G.w[t].th, NULL, worker_main, &G.w[t]))
			stress_die("pthread_create failed");
	}
	pthread_t filler;
	bool have_filler = G.filler_keys > 0;
	if (have_filler && pthread_create(&filler, NULL, filler_main, NULL))
		stress_die("pthread_create failed");

	uint16_t initial[256] = {0}, final[256];
	uint64_t t_end = now_ns() + (uint64_t)(o->seconds * 1e9);
	uint64_t round = 0;
	do {
		for (unsigned t = 0; t < nt; t++)
			G.w[t].n = 0;
		barrier_wait(&G.start);
		barrier_wait(&G.end);
		for (unsigned k = 0; k < G.nkeys; k++)
			final[k] = quiescent_state(k);
		check_round(nt, initial, final, round);
		memcpy(initial, final, sizeof(initial));
		round++;
	} while (now_ns() < t_end);
	atomic_store_explicit(&G.stop, 1, memory_order_release);
	barrier_wait(&G.start);
	for (unsigned t = 0; t < nt; t++)
		pthread_join(G.w[t].th, NULL);
	if (have_filler) {
		atomic_store_explicit(&G.filler_stop, 1, memory_order_relaxed);
		pthread_join(filler, NULL);
	}
	/* the hot keys' quiescent state is the model's */
	for (unsigned k = 0; H.ops && k < HOTK; k++) {
		uint64_t j = atomic_load(&H.k[k].done);
		long n = cidstore_lookup(G.s, &H.k[k].key, G.w[0].hot_out, HOT_MAXLEN + 1);
		stress_check_rc("lookup", n);
		struct hot_res r = hot_decode(&G.w[0], "final lookup", k, G.w[0].hot_out, n);
		if (!hot_fits(&H.k[k], j, &r))
			stress_fail("HOT-STATE", "hot key %u holds %ld values after %" PRIu64 " writer "
				    "ops; the model says %u", k, n, j, hot_state(&H.k[k], j).n);
	}
	cidstore_stats_t st;
	cidstore_stats(G.s, &st);
	uint64_t total = 0, hr[4] = {0}, hw = 0, spills = 0, demotes = 0, blinks = 0;
	for (unsigned t = 0; t < nt; t++) {
		for (int i = 0; i < NOPS; i++)
			R.ops[i] += G.w[t].ops[i];
		for (int i = 0; i < 4; i++)
			hr[i] += G.w[t].hot_reads[i];
		hw += G.w[t].hot_writes;
		spills += G.w[t].spills;
		demotes += G.w[t].demotes;
		blinks += G.w[t].blinks;
		free(G.w[t].log);
		free(G.w[t].hot_out);
	}
	for (int i = 0; i < NOPS; i++)
		total += R.ops[i];
	printf("%s: %" PRIu64 " rounds, %" PRIu64 " ops (insert %" PRIu64 ", delete_value %" PRIu64
	       ", delete_key %" PRIu64 ", lookup %" PRIu64 ", contains %" PRIu64 "); %" PRIu64
	       " per-key histories linearizable, %" PRIu64 " inconclusive, largest search %" PRIu64
	       " configurations\n",
	       stress_name, round, total, R.ops[0], R.ops[1], R.ops[2], R.ops[3], R.ops[4],
	       R.keys_checked, R.inconclusive, R.max_configs_seen);
	printf("%s: hot keys (sizes 1..2, 1..2, 1..%u, 0..1, %u..%u): %" PRIu64 " writer ops (%" PRIu64
	       " spills, %" PRIu64 " demotes, %" PRIu64 " removals of a key), %" PRIu64 " reads "
	       "checked online (lookup %" PRIu64 ", values %" PRIu64 ", lookup_many %" PRIu64
	       ", contains %" PRIu64 ")\n",
	       stress_name, H.k[HOT_LONG].hi, H.k[HOT_BIG].lo, H.k[HOT_BIG].hi, hw, spills, demotes,
	       blinks,
	       hr[0] + hr[1] + hr[2] + hr[3], hr[0], hr[1], hr[2], hr[3]);
	printf("%s: store: %" PRIu64 " value-set rebuilds, %" PRIu64 " table doublings, %" PRIu64
	       " groups migrated\n", stress_name, st.compactions, st.dir_rebuilds, st.splits);
	free(G.w);
	barrier_destroy(&G.start);
	barrier_destroy(&G.end);
	cidstore_close(G.s);
	G.round_ops = saved_round;
	if (R.inconclusive * 10 > R.keys_checked + R.inconclusive)
		stress_fail("CHECKER-BUDGET", "%" PRIu64 " of %" PRIu64 " histories inconclusive: "
			    "use a smaller --round-ops", R.inconclusive,
			    R.keys_checked + R.inconclusive);
	return 0;
}

int main(int argc, char **argv)
{
	struct stress_opts o = {.name = "stress_linearize", .threads = 4, .seconds = 5, .keys = 4};
	G.nvalues = 4;
	G.round_ops = 2000;
	G.filler_keys = 2000;
	G.max_configs = 2000000;
	H.ops = 1000;
	H.k[HOT_SMALL0] = (struct hot){.lo = 1, .hi = 2};
	H.k[HOT_SMALL1] = (struct hot){.lo = 1, .hi = 2};
	H.k[HOT_LONG] = (struct hot){.lo = 1, .hi = 8};
	H.k[HOT_BLINK] = (struct hot){.blink = true};
	/* 248..264: cidstore_values delivers in chunks of 256 values today */
	H.k[HOT_BIG] = (struct hot){.lo = 248, .hi = 264};
	stress_parse(&o, argc, argv, extra_opts, h_opt,
		     " [--values N<=16] [--round-ops N] [--filler-keys N] [--max-configs N]"
		     " [--hot-ops N] [--hot-len N] [--hot-big N]");
	if (o.keys > 256)
		stress_die("--keys must be <= 256");
	return stress_main_loop(&o, run_one);
}
