/*
 * stress_growth.c — harness 3: growth storm (DESIGN.md §5: "Growth happens
 * online, while other threads read and write, with no stop-the-world
 * pause").
 *
 * The store starts with the smallest table (initial_depth 0: 2^2 groups of
 * 11 slots).  --threads workers (default 16: oversubscribed on purpose on
 * small machines, 2..32 intended) each own --keys/threads keys and insert
 * (60%), delete_value (12%), delete_key (3%) and look up (25%) at random
 * while the table doubles again and again: each doubling allocates the
 * next table and every write then migrates groups into it (its own two
 * groups' parents first, then a chunk from a shared cursor) while readers
 * follow MIGRATED groups into the new table.  Because only the owner writes
 * a key, every return value is predictable.  Before the workers start, the
 * main thread inserts --stable keys that nobody touches afterwards; a
 * scanner thread scans the store continuously while it grows.
 *
 * Statistics printed (cidstore_stats of index v2): table depth (2^depth
 * groups), groups, table doublings (dir_rebuilds), groups migrated
 * (splits), value-set rebuilds (compactions).
 *
 * Invariants reported:
 *   RETURN-VALUE       insert/delete_value/delete_key returned other than the
 *                      owner's model predicts (a lost or doubled update);
 *   OWN-KEY-STATE      a lookup of an own key differs from the model;
 *   STABLE-KEY         a lookup of a stable key differs from its values;
 *   FOREIGN-VALUE      a lookup returned a value of another key or a torn one;
 *   SCAN-EXACTLY-ONCE  a concurrent scan missed a stable key or visited a key
 *                      twice (a key present for the whole scan is visited
 *                      exactly once);
 *   CONSERVATION       at the end, per thread and in total: inserted -
 *                      deleted != values present (from the final scan and
 *                      from cidstore_stats);
 *   SCAN-STATE         the final scan differs from the model, key by key
 *                      (missing, extra or duplicate keys, wrong values);
 *   IDX-VALID          idx_valid() found a structural error at the end;
 *   GROWTH             the table doubled fewer than --min-doublings times:
 *                      the run did not exercise online growth (too few
 *                      keys for the initial table).
 */
#include "common.h"

#include "index/index.h"
#include "store/store_internal.h"

#define NV 6 /* values per key: 0..5 (3 or more spill) */

struct worker {
	pthread_t th;
	unsigned id;
	unsigned first, n;  /* own keys: (id, first .. first+n) */
	uint8_t *mask;      /* model: values present per own key */
	uint64_t inserted, deleted, ops, lookups;
};

static struct {
	cidstore_t *s;
	unsigned nstable;
	unsigned min_doublings;
	_Atomic int stop;
	_Atomic uint64_t scans;
	struct worker *w;
	unsigned nt;
} G;

static void h_opt(int c, const char *arg)
{
	if (c == 's')
		G.nstable = (unsigned)parse_u64("stable", arg);
	else if (c == 'd')
		G.min_doublings = (unsigned)parse_u64("min-doublings", arg);
}
static const struct option extra_opts[] = {
	{"stable", required_argument, 0, 's'},
	{"min-doublings", required_argument, 0, 'd'},
	{0, 0, 0, 0},
};

/* key i of thread t: tag 1; stable key i: tag 9.  Value j of a key carries
 * the key's (tag, t, i) in its words: tag 16+j for workers, 32+j stable. */
static inline cid_t wkey(unsigned t, unsigned i)
{
	return cid_make(1, t, i);
}
static inline cid_t wval(unsigned t, unsigned i, unsigned j)
{
	return cid_make(16 + j, t, i);
}
static inline cid_t skey(unsigned i)
{
	return cid_make(9, 0, i);
}
static inline cid_t sval(unsigned i, unsigned j)
{
	return cid_make(32 + j, 0, i);
}
static inline unsigned stable_mask(unsigned i)
{
	return 1u | ((i % 3) ? 2u : 0) | ((i % 5) ? 4u : 0) | ((i % 7 == 0) ? 8u : 0);
}

/* Mask of a value array for key (t, i); vtag 16 (worker) or 32 (stable). */
static unsigned values_mask(const char *who, uint32_t t, uint32_t i, unsigned vtag,
			    const cid_t *v, long n)
{
	unsigned m = 0;
	for (long x = 0; x < n; x++) {
		uint32_t tag, a, b;
		if (!cid_decode(&v[x], &tag, &a, &b) || tag < vtag || tag >= vtag + NV || a != t ||
		    b != i)
			stress_fail("FOREIGN-VALUE", "%s: key (%u, %u) returned a value it never held",
				    who, t, i);
		if (m & (1u << (tag - vtag)))
			stress_fail("FOREIGN-VALUE", "%s: key (%u, %u) returned value %u twice", who,
				    t, i, tag - vtag);
		m |= 1u << (tag - vtag);
	}
	return m;
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	rng_t rng;
	rng_init(&rng, stress_seed, w->id + 1);
	cid_t out[NV + 2];
	while (!atomic_load_explicit(&G.stop, memory_order_relaxed)) {
		unsigned r = rng_below(&rng, 100);
		unsigned i = rng_below(&rng, w->n);
		unsigned j = rng_below(&rng, NV);
		unsigned ki = w->first + i;
		cid_t k = wkey(w->id, ki), v = wval(w->id, ki, j);
		uint8_t m = w->mask[i], bit = (uint8_t)(1u << j);
		w->ops++;
		if (r < 60) {
			int rc = cidstore_insert(G.s, &k, &v);
			stress_check_rc("insert", rc);
			if (rc != !(m & bit))
				stress_fail("RETURN-VALUE", "insert of own key (%u, %u) value %u returned "
					    "%d, model says %d", w->id, ki, j, rc, !(m & bit));
			w->mask[i] |= bit;
			w->inserted += rc;
		} else if (r < 72) {
			int rc = cidstore_delete_value(G.s, &k, &v);
			stress_check_rc("delete_value", rc);
			if (rc != !!(m & bit))
				stress_fail("RETURN-VALUE", "delete_value of own key (%u, %u) value %u "
					    "returned %d, model says %d", w->id, ki, j, rc, !!(m & bit));
			w->mask[i] &= (uint8_t)~bit;
			w->deleted += (uint64_t)rc;
		} else if (r < 75) {
			long rc = cidstore_delete_key(G.s, &k);
			stress_check_rc("delete_key", rc);
			if (rc != __builtin_popcount(m))
				stress_fail("RETURN-VALUE", "delete_key of own key (%u, %u) returned %ld, "
					    "model says %d", w->id, ki, rc, __builtin_popcount(m));
			w->mask[i] = 0;
			w->deleted += (uint64_t)rc;
		} else if (r < 90) {
			long n = cidstore_lookup(G.s, &k, out, NV + 2);
			stress_check_rc("lookup", n);
			unsigned got = values_mask("lookup", w->id, ki, 16, out, n > NV + 2 ? NV + 2 : n);
			if (got != m || n != __builtin_popcount(m))
				stress_fail("OWN-KEY-STATE", "lookup of own key (%u, %u): %ld values, set "
					    "0x%02x; model 0x%02x", w->id, ki, n, got, m);
			w->lookups++;
		} else if (r < 95 && G.nstable) {
			unsigned si = rng_below(&rng, G.nstable);
			cid_t sk = skey(si);
			long n = cidstore_lookup(G.s, &sk, out, NV + 2);
			stress_check_rc("lookup", n);
			unsigned got = values_mask("lookup", 0, si, 32, out, n > NV + 2 ? NV + 2 : n);
			if (got != stable_mask(si))
				stress_fail("STABLE-KEY", "lookup of stable key %u: set 0x%02x, expected "
					    "0x%02x", si, got, stable_mask(si));
			w->lookups++;
		} else {
			/* another thread's key: only well-formedness can be checked */
			unsigned t = rng_below(&rng, G.nt);
			struct worker *o = &G.w[t];
			unsigned oi = o->first + rng_below(&rng, o->n);
			cid_t okey = wkey(t, oi);
			long n = cidstore_lookup(G.s, &okey, out, NV + 2);
			stress_check_rc("lookup", n);
			if (n > NV)
				stress_fail("FOREIGN-VALUE", "key (%u, %u) holds %ld values", t, oi, n);
			values_mask("lookup", t, oi, 16, out, n);
			w->lookups++;
		}
	}
	return NULL;
}

/* ---- scans ---- */

struct scan_ctx {
	uint8_t *stable_seen;
	bool final;
	uint8_t **seen;     /* final scan: per thread, per own key */
	uint64_t keys, values;
};

static int scan_cb(const cid_t *key, const cid_t *values, size_t n, void *p)
{
	struct scan_ctx *c = p;
	uint32_t tag, a, b;
	if (!cid_decode(key, &tag, &a, &b) || (tag != 1 && tag != 9))
		stress_fail("SCAN-STATE", "scan visited a key that was never inserted");
	c->keys++;
	c->values += n;
	if (tag == 9) {
		if (b >= G.nstable)
			stress_fail("SCAN-STATE", "scan visited stable key %u of %u", b, G.nstable);
		unsigned got = values_mask("scan", 0, b, 32, values, (long)n);
		if (got != stable_mask(b))
			stress_fail("STABLE-KEY", "scan: stable key %u has set 0x%02x, expected 0x%02x",
				    b, got, stable_mask(b));
		if (c->stable_seen[b]++)
			stress_fail("SCAN-EXACTLY-ONCE", "scan visited stable key %u twice", b);
		return 0;
	}
	if (a >= G.nt)
		stress_fail("SCAN-STATE", "scan visited a key of thread %u of %u", a, G.nt);
	struct worker *w = &G.w[a];
	if (b < w->first || b >= w->first + w->n)
		stress_fail("SCAN-STATE", "scan visited key (%u, %u) outside its range", a, b);
	unsigned got = values_mask("scan", a, b, 16, values, (long)n);
	if (c->final) {
		unsigned i = b - w->first;
		if (c->seen[a][i]++)
			stress_fail("SCAN-STATE", "final scan visited key (%u, %u) twice", a, b);
		if (got != w->mask[i])
			stress_fail("SCAN-STATE", "final scan: key (%u, %u) has set 0x%02x, model "
				    "0x%02x", a, b, got, w->mask[i]);
	}
	return 0;
}

static void *scanner_main(void *p)
{
	(void)p;
	struct scan_ctx c = {0};
	c.stable_seen = calloc(G.nstable + 1, 1);
	while (!atomic_load_explicit(&G.stop, memory_order_relaxed)) {
		memset(c.stable_seen, 0, G.nstable + 1);
		stress_check_rc("scan", cidstore_scan(G.s, scan_cb, &c));
		for (unsigned i = 0; i < G.nstable; i++)
			if (c.stable_seen[i] != 1)
				stress_fail("SCAN-EXACTLY-ONCE", "a scan visited stable key %u %u times "
					    "(present for the whole scan: exactly once)", i,
					    c.stable_seen[i]);
		atomic_fetch_add_explicit(&G.scans, 1, memory_order_relaxed);
	}
	free(c.stable_seen);
	return NULL;
}

static int run_one(const struct stress_opts *o)
{
	G.nt = o->threads;
	atomic_store(&G.stop, 0);
	atomic_store(&G.scans, 0);
	cidstore_options_t opt;
	cidstore_options_init(&opt);
	opt.seed = o->seed ? o->seed : 1;
	opt.initial_depth = 0;
	if (cidstore_open(&opt, &G.s))
		stress_die("cidstore_open failed");
	cidstore_stats_t st0;
	cidstore_stats(G.s, &st0);
	uint64_t stable_values = 0;
	for (unsigned i = 0; i < G.nstable; i++) {
		cid_t k = skey(i);
		for (unsigned j = 0; j < NV; j++)
			if (stable_mask(i) & (1u << j)) {
				cid_t v = sval(i, j);
				stress_check_rc("insert", cidstore_insert(G.s, &k, &v));
				stable_values++;
			}
	}
	G.w = calloc(G.nt, sizeof(*G.w));
	unsigned per = o->keys / G.nt ? o->keys / G.nt : 1;
	for (unsigned t = 0; t < G.nt; t++) {
		G.w[t].id = t;
		G.w[t].first = 0;
		G.w[t].n = per;
		G.w[t].mask = calloc(per, 1);
	}
	uint64_t t0 = now_ns();
	for (unsigned t = 0; t < G.nt; t++)
		if (pthread_create(&G.w[t].th, NULL, worker_main, &G.w[t]))
			stress_die("pthread_create failed");
	pthread_t sc;
	if (pthread_create(&sc, NULL, scanner_main, NULL))
		stress_die("pthread_create failed");
	sleep_ms((unsigned)(o->seconds * 1000));
	atomic_store(&G.stop, 1);
	for (unsigned t = 0; t < G.nt; t++)
		pthread_join(G.w[t].th, NULL);
	pthread_join(sc, NULL);
	double secs = (double)(now_ns() - t0) / 1e9;

	/* conservation per thread, then totals */
	uint64_t ins = 0, del = 0, present = 0, keys_present = 0, ops = 0, lookups = 0;
	for (unsigned t = 0; t < G.nt; t++) {
		struct worker *w = &G.w[t];
		uint64_t p = 0, kp = 0;
		for (unsigned i = 0; i < w->n; i++) {
			p += (uint64_t)__builtin_popcount(w->mask[i]);
			kp += w->mask[i] != 0;
		}
		if (w->inserted - w->deleted != p)
			stress_fail("CONSERVATION", "thread %u: inserted %" PRIu64 " - deleted %" PRIu64
				    " != present %" PRIu64, t, w->inserted, w->deleted, p);
		ins += w->inserted;
		del += w->deleted;
		present += p;
		keys_present += kp;
		ops += w->ops;
		lookups += w->lookups;
	}
	/* final scan against the model, key by key */
	struct scan_ctx c = {0};
	c.final = true;
	c.stable_seen = calloc(G.nstable + 1, 1);
	c.seen = calloc(G.nt, sizeof(*c.seen));
	for (unsigned t = 0; t < G.nt; t++)
		c.seen[t] = calloc(G.w[t].n, 1);
	stress_check_rc("scan", cidstore_scan(G.s, scan_cb, &c));
	for (unsigned t = 0; t < G.nt; t++)
		for (unsigned i = 0; i < G.w[t].n; i++)
			if (G.w[t].mask[i] && !c.seen[t][i])
				stress_fail("SCAN-STATE", "final scan missed key (%u, %u) holding 0x%02x",
					    t, i, G.w[t].mask[i]);
	for (unsigned i = 0; i < G.nstable; i++)
		if (c.stable_seen[i] != 1)
			stress_fail("SCAN-EXACTLY-ONCE", "final scan visited stable key %u %u times", i,
				    c.stable_seen[i]);
	if (c.values != present + stable_values || c.keys != keys_present + G.nstable)
		stress_fail("CONSERVATION", "final scan: %" PRIu64 " keys / %" PRIu64 " values, "
			    "model %" PRIu64 " / %" PRIu64 " (inserted %" PRIu64 " - deleted %" PRIu64
			    " + stable %" PRIu64 ")", c.keys, c.values, keys_present + G.nstable,
			    present + stable_values, ins, del, stable_values);
	cidstore_stats_t st;
	cidstore_stats(G.s, &st);
	if (st.values != present + stable_values || st.keys != keys_present + G.nstable)
		stress_fail("CONSERVATION", "stats: %" PRIu64 " keys / %" PRIu64 " values, model %"
			    PRIu64 " / %" PRIu64, st.keys, st.values, keys_present + G.nstable,
			    present + stable_values);
	int v = idx_valid(G.s->ix);
	if (v)
		stress_fail("IDX-VALID", "idx_valid returned %d (%s)", v, cidstore_strerror(v));
	printf("%s: %u threads, %.2f s: %" PRIu64 " ops (%" PRIu64 " lookups), inserted %" PRIu64
	       " - deleted %" PRIu64 " = present %" PRIu64 " values in %" PRIu64 " keys (+%u "
	       "stable keys); %" PRIu64 " concurrent scans; idx_valid ok\n",
	       stress_name, G.nt, secs, ops, lookups, ins, del, present, keys_present, G.nstable,
	       atomic_load(&G.scans));
	printf("%s: growth while the workers and the scanner ran: %" PRIu64 " table doublings "
	       "(depth %u -> %u, %" PRIu64 " groups), %" PRIu64 " groups migrated, %" PRIu64
	       " value-set rebuilds\n",
	       stress_name, st.dir_rebuilds, st0.global_depth, st.global_depth, st.buckets,
	       st.splits, st.compactions);
	if (st.dir_rebuilds < G.min_doublings)
		stress_fail("GROWTH", "the table doubled %" PRIu64 " times, fewer than --min-doublings "
			    "%u: use more --keys", st.dir_rebuilds, G.min_doublings);
	for (unsigned t = 0; t < G.nt; t++) {
		free(G.w[t].mask);
		free(c.seen[t]);
	}
	free(c.seen);
	free(c.stable_seen);
	free(G.w);
	cidstore_close(G.s);
	return 0;
}

int main(int argc, char **argv)
{
	struct stress_opts o = {.name = "stress_growth", .threads = 16, .seconds = 5,
				.keys = 100000};
	G.nstable = 256;
	stress_parse(&o, argc, argv, extra_opts, h_opt, " [--stable N] [--min-doublings N]");
	if (o.threads > 1024)
		stress_die("--threads must be <= 1024");
	return stress_main_loop(&o, run_one);
}
