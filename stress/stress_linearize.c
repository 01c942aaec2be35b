/*
 * stress_linearize.c — harness 1: per-key linearizability of the set
 * operations (DESIGN.md §5: "Each operation is linearizable per key. A lookup
 * returns a set of values that the key really held at one instant").
 *
 * Threads run random insert / delete_value / delete_key / lookup / contains
 * on a small key space (--keys, default 4) and value space (--values,
 * default 4, at most 16), so operations really conflict and keys cross the
 * inline (<= 2 values) / value-set (>= 3) boundary all the time.  Each
 * operation is logged with its invocation time, its response time
 * (CLOCK_MONOTONIC) and its result.  An optional filler thread (--filler-keys)
 * inserts and deletes other keys meanwhile so the bucket holding the checked
 * keys is split, compacted and forwarded under the readers.
 *
 * The run proceeds in rounds of --round-ops operations.  After each round
 * (all workers quiescent) the main thread looks every key up once more: that
 * is the round's final state and the next round's initial state.
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
};

static struct {
	cidstore_t *s;
	unsigned nkeys, nvalues;
	unsigned round_ops;     /* per round, all threads together */
	unsigned filler_keys;
	uint64_t max_configs;
	barrier_t start, end;
	_Atomic int stop;       /* set by main between rounds */
	_Atomic int filler_stop;
	struct worker *w;
	cid_t keys[256];
	cid_t vals[MAXV];
} G;

static void h_opt(int c, const char *arg);
static const struct option extra_opts[] = {
	{"values", required_argument, 0, 'v'},
	{"round-ops", required_argument, 0, 'r'},
	{"filler-keys", required_argument, 0, 'f'},
	{"max-configs", required_argument, 0, 'm'},
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

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (;;) {
		barrier_wait(&G.start);
		if (atomic_load_explicit(&G.stop, memory_order_acquire))
			return NULL;
		for (unsigned i = 0; i < G.round_ops; i++)
			do_op(w);
		barrier_wait(&G.end);
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
	G.w = calloc(nt, sizeof(*G.w));
	unsigned saved_round = G.round_ops;
	G.round_ops = G.round_ops / nt ? G.round_ops / nt : 1; /* per thread */
	atomic_store(&G.stop, 0);
	atomic_store(&G.filler_stop, 0);
	barrier_init(&G.start, nt + 1);
	barrier_init(&G.end, nt + 1);
	for (unsigned t = 0; t < nt; t++) {
		G.w[t].id = t;
		rng_init(&G.w[t].rng, o->seed, t + 1);
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
	cidstore_stats_t st;
	cidstore_stats(G.s, &st);
	uint64_t total = 0;
	for (unsigned t = 0; t < nt; t++) {
		for (int i = 0; i < NOPS; i++)
			R.ops[i] += G.w[t].ops[i];
		free(G.w[t].log);
	}
	for (int i = 0; i < NOPS; i++)
		total += R.ops[i];
	printf("%s: %" PRIu64 " rounds, %" PRIu64 " ops (insert %" PRIu64 ", delete_value %" PRIu64
	       ", delete_key %" PRIu64 ", lookup %" PRIu64 ", contains %" PRIu64 "); %" PRIu64
	       " per-key histories linearizable, %" PRIu64 " inconclusive, largest search %" PRIu64
	       " configurations; store: %" PRIu64 " splits, %" PRIu64 " compactions, %" PRIu64
	       " directory rebuilds\n",
	       stress_name, round, total, R.ops[0], R.ops[1], R.ops[2], R.ops[3], R.ops[4],
	       R.keys_checked, R.inconclusive, R.max_configs_seen, st.splits, st.compactions,
	       st.dir_rebuilds);
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
	stress_parse(&o, argc, argv, extra_opts, h_opt,
		     " [--values N<=16] [--round-ops N] [--filler-keys N] [--max-configs N]");
	if (o.keys > 256)
		stress_die("--keys must be <= 256");
	return stress_main_loop(&o, run_one);
}
