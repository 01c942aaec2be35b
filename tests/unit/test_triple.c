/*
 * test_triple.c — the triple layer and the term dictionary (DESIGN §10,
 * include/cidstore.h "Triples", src/triple/triple.c).
 *
 * What is checked:
 *   - every pattern (the 8 of (s, p, o) with NULL wildcards), match and
 *     count, against a brute-force model (a presence table over a small
 *     alphabet, so patterns hit many triples), for every choice of bound
 *     terms including terms never used: after random inserts (single and
 *     insert_many, with repeats in one call), after deletes that empty pair
 *     keys (before and after cleaning passes), in serialized mode too;
 *     insert/delete return values against the model; fn's non-zero return
 *     stops the walk and is returned as is;
 *   - cleaning: after a pass the single-term sets hold exactly what the
 *     model says (stale entries gone); a stale entry left by a close (the
 *     queue is lost) is found by the sweep of the first pass after reopen,
 *     also more than one cleaning slice of them;
 *   - durable stores (NONE, ASYNC, SYNC): every pattern after close +
 *     reopen and after a read_only reopen (writes there: CIDSTORE_ERDONLY);
 *   - count on a key with 200k values (20k under TSan) equals it; and
 *     count needs no buffer: in a forked child whose address space is
 *     capped a little above what it maps, count still answers while a
 *     lookup into a buffer for the set cannot get its memory (release
 *     build only: sanitizers reserve terabytes of shadow);
 *   - terms: put/get round trip for lengths 0, 1, 23, 24, 25, 51, 52, 53,
 *     1000 and 1 MiB; the CID is sha256(text); a second put -> 0; unknown
 *     -> 0; a small cap truncates and returns the length; put_many with
 *     repeats inside the call and known texts; durable reopen; an
 *     incomplete chunk set -> 0, contradicting chunks -> CIDSTORE_ECORRUPT;
 *   - every CIDSTORE_EINVAL case;
 *   - concurrency (also under TSan): racing inserts of the same triples
 *     return 1 exactly once per triple, racing deletes too; inserts and
 *     deletes of the same triples racing leave each triple in all three
 *     pair indexes or in none; writers inserting and deleting their own
 *     triples (over shared terms) while readers match and count every
 *     pattern and a thread runs cleaning passes: every delivered triple was
 *     stored at some instant during the call, every triple stored for the
 *     whole call is delivered, none twice, counts between the two bounds
 *     (in memory, on a SYNC store, in serialized mode).
 *     Each writer stamps, under the triple's mutex, ticks of a global
 *     clock when it begins and ends each insert and delete; a reader takes
 *     a tick A before its call and B after, and then reads the triple's
 *     history under the same mutex (every event with a tick < B is in it).
 */
#include <cidstore.h>
#include "unit_support.h"
#include <check.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "triple/triple.h"

/* ---------------------------------------------------------------------- */
/* the alphabet and the model                                              */
/* ---------------------------------------------------------------------- */

#define NS 5
#define NP 4
#define NO 6
#define NT (NS * NP * NO)

#define TAG_S 0x53756200ull
#define TAG_P 0x50726500ull
#define TAG_O 0x4f626a00ull

static cid_t S(unsigned i) { return mk(TAG_S, i); }
static cid_t P(unsigned i) { return mk(TAG_P, i); }
static cid_t O(unsigned i) { return mk(TAG_O, i); }

static unsigned tidx(unsigned s, unsigned p, unsigned o) { return (s * NP + p) * NO + o; }

static cidstore_triple_t TR(unsigned k)
{
	unsigned o = k % NO, p = (k / NO) % NP, s = k / (NO * NP);
	return (cidstore_triple_t){S(s), P(p), O(o)};
}

/* the universe index of t, or -1 for a triple outside it */
static long decode(const cidstore_triple_t *t)
{
	long s = mk_decode(&t->s, TAG_S, NS), p = mk_decode(&t->p, TAG_P, NP),
	     o = mk_decode(&t->o, TAG_O, NO);
	if (s < 0 || p < 0 || o < 0)
		return -1;
	return tidx((unsigned)s, (unsigned)p, (unsigned)o);
}

struct model {
	uint8_t has[NT];
};

/* pattern: bound terms as indexes; an index == the alphabet size is a term
 * that is never stored (mk with that index) */
struct pat {
	int s, p, o; /* -1: wildcard */
};

static bool pat_matches(const struct pat *q, unsigned k)
{
	unsigned o = k % NO, p = (k / NO) % NP, s = k / (NO * NP);
	return (q->s < 0 || (unsigned)q->s == s) && (q->p < 0 || (unsigned)q->p == p) &&
	       (q->o < 0 || (unsigned)q->o == o);
}

struct collect {
	uint8_t got[NT];
	unsigned dup, foreign, n;
	long stop_after; /* > 0: return 7 after this many */
};

static int collect_cb(const cidstore_triple_t *t, void *ctx)
{
	struct collect *c = ctx;
	long k = decode(t);
	if (k < 0)
		c->foreign++;
	else if (c->got[k]++)
		c->dup++;
	c->n++;
	if (c->stop_after > 0 && (long)c->n >= c->stop_after)
		return 7;
	return 0;
}

static int run_match(cidstore_t *st, const struct pat *q, cidstore_triple_fn fn, void *ctx)
{
	cid_t s = S((unsigned)q->s), p = P((unsigned)q->p), o = O((unsigned)q->o);
	return cidstore_triple_match(st, q->s < 0 ? NULL : &s, q->p < 0 ? NULL : &p,
				     q->o < 0 ? NULL : &o, fn, ctx);
}

static long run_count(cidstore_t *st, const struct pat *q)
{
	cid_t s = S((unsigned)q->s), p = P((unsigned)q->p), o = O((unsigned)q->o);
	return cidstore_triple_count(st, q->s < 0 ? NULL : &s, q->p < 0 ? NULL : &p,
				     q->o < 0 ? NULL : &o);
}

static const char *pat_name(const struct pat *q, char *buf)
{
	snprintf(buf, 32, "(%s%d %s%d %s%d)", q->s < 0 ? "?" : "s", q->s, q->p < 0 ? "?" : "p",
		 q->p, q->o < 0 ? "?" : "o", q->o);
	return buf;
}

/* Every pattern, every choice of bound terms (one more than the alphabet:
 * a term never stored), match and count, against the model. */
static void check_patterns(cidstore_t *st, const struct model *m, const char *what)
{
	for (int mask = 0; mask < 8; mask++) {
		int ns = mask & 4 ? NS + 1 : 1, np = mask & 2 ? NP + 1 : 1, no = mask & 1 ? NO + 1 : 1;
		for (int a = 0; a < ns; a++)
			for (int b = 0; b < np; b++)
				for (int c = 0; c < no; c++) {
					struct pat q = {mask & 4 ? a : -1, mask & 2 ? b : -1,
							mask & 1 ? c : -1};
					struct collect col = {0};
					char nb[32];
					int rc = run_match(st, &q, collect_cb, &col);
					ck_assert_msg(rc == 0, "%s: match %s: %d", what, pat_name(&q, nb), rc);
					ck_assert_msg(col.dup == 0 && col.foreign == 0,
						      "%s: match %s: %u delivered twice, %u foreign", what,
						      pat_name(&q, nb), col.dup, col.foreign);
					long want = 0;
					for (unsigned k = 0; k < NT; k++) {
						bool exp = m->has[k] && pat_matches(&q, k);
						want += exp;
						ck_assert_msg(col.got[k] == exp,
							      "%s: match %s: triple %u %s", what,
							      pat_name(&q, nb), k,
							      exp ? "missing" : "delivered but not stored");
					}
					long cnt = run_count(st, &q);
					ck_assert_msg(cnt == want, "%s: count %s = %ld, model %ld", what,
						      pat_name(&q, nb), cnt, want);
				}
	}
}

/* The single-term sets hold exactly what the model implies (after a
 * cleaning pass with no writer running). */
static void check_single_term_sets(cidstore_t *st, const struct model *m, const char *what)
{
	long allp_want = 0;
	for (unsigned p = 0; p < NP; p++) {
		cid_t pp = P(p);
		cid_t key = tri_key1(&pp, TRI_R_PRED);
		long want = 0;
		for (unsigned s = 0; s < NS; s++) {
			bool any = false;
			for (unsigned o = 0; o < NO; o++)
				any |= m->has[tidx(s, p, o)];
			want += any;
		}
		allp_want += want > 0;
		ck_assert_msg(cidstore_lookup(st, &key, NULL, 0) == want, "%s: PRED(%u)", what, p);
	}
	cid_t allp = tri_key_allp();
	ck_assert_msg(cidstore_lookup(st, &allp, NULL, 0) == allp_want, "%s: ALLP %ld, want %ld",
		      what, cidstore_lookup(st, &allp, NULL, 0), allp_want);
	for (unsigned s = 0; s < NS; s++) {
		cid_t ss = S(s);
		cid_t key = tri_key1(&ss, TRI_R_SUBJ);
		long want = 0;
		for (unsigned p = 0; p < NP; p++) {
			bool any = false;
			for (unsigned o = 0; o < NO; o++)
				any |= m->has[tidx(s, p, o)];
			want += any;
		}
		ck_assert_msg(cidstore_lookup(st, &key, NULL, 0) == want, "%s: SUBJ(%u)", what, s);
	}
	for (unsigned o = 0; o < NO; o++) {
		cid_t oo = O(o);
		cid_t key = tri_key1(&oo, TRI_R_OBJ);
		long want = 0;
		for (unsigned p = 0; p < NP; p++) {
			bool any = false;
			for (unsigned s = 0; s < NS; s++)
				any |= m->has[tidx(s, p, o)];
			want += any;
		}
		ck_assert_msg(cidstore_lookup(st, &key, NULL, 0) == want, "%s: OBJ(%u)", what, o);
	}
}

/* Random inserts (single and insert_many) and deletes, results checked
 * against the model.  del_pct: percentage of deletes. */
static void random_ops(cidstore_t *st, struct model *m, uint64_t *rng, unsigned nops,
		       unsigned del_pct)
{
	for (unsigned i = 0; i < nops; i++) {
		uint64_t r = mix64((*rng)++);
		unsigned kind = (unsigned)(r % 100);
		unsigned k = (unsigned)((r >> 8) % NT);
		cidstore_triple_t t = TR(k);
		if (kind < del_pct) {
			int rc = cidstore_triple_delete(st, &t);
			ck_assert_msg(rc == m->has[k], "delete %u: %d, model %d", k, rc, m->has[k]);
			m->has[k] = 0;
		} else if (kind < del_pct + (100 - del_pct) / 2) {
			int rc = cidstore_triple_insert(st, &t);
			ck_assert_msg(rc == !m->has[k], "insert %u: %d, model %d", k, rc, m->has[k]);
			m->has[k] = 1;
		} else {
			/* insert_many of up to 9 triples, repeats allowed */
			cidstore_triple_t b[9];
			int res[9];
			unsigned n = 1 + (unsigned)((r >> 20) % 9), kk[9];
			for (unsigned j = 0; j < n; j++) {
				kk[j] = (unsigned)(mix64(r + j) % NT);
				b[j] = TR(kk[j]);
			}
			long want = 0;
			int wantr[9];
			for (unsigned j = 0; j < n; j++) {
				wantr[j] = !m->has[kk[j]];
				want += wantr[j];
				m->has[kk[j]] = 1;
			}
			long rc = cidstore_triple_insert_many(st, b, n, (r >> 40) & 1 ? res : NULL);
			ck_assert_msg(rc == want, "insert_many: %ld, model %ld", rc, want);
			if ((r >> 40) & 1)
				for (unsigned j = 0; j < n; j++)
					ck_assert_int_eq(res[j], wantr[j]);
		}
	}
}

static void maintain_all(cidstore_t *st)
{
	uint64_t cleaned = 0;
	int rc = triple_maintain(st, &cleaned);
	ck_assert_msg(rc == 0, "triple_maintain: %d", rc);
	rc = triple_maintain(st, &cleaned);
	ck_assert_msg(rc == 0 && cleaned == 0, "a second pass: %d, cleaned %llu", rc,
		      (unsigned long long)cleaned);
}

/* ---------------------------------------------------------------------- */
/* patterns against the model                                              */
/* ---------------------------------------------------------------------- */

START_TEST(test_patterns_random)
{
	bool serialized = _i == 1;
	cidstore_t *st = open_mem_store(11 + _i, 0, serialized);
	struct model m = {0};
	uint64_t rng = 1234 + _i;
	check_patterns(st, &m, "empty");
	random_ops(st, &m, &rng, 400, 10);
	check_patterns(st, &m, "after inserts");
	/* deletes that empty pair keys; no pass yet (stale entries there) */
	random_ops(st, &m, &rng, 600, 70);
	check_patterns(st, &m, "after deletes, before cleaning");
	maintain_all(st);
	check_patterns(st, &m, "after cleaning");
	check_single_term_sets(st, &m, "after cleaning");
	/* everything out, then back */
	for (unsigned k = 0; k < NT; k++) {
		cidstore_triple_t t = TR(k);
		ck_assert_int_eq(cidstore_triple_delete(st, &t), m.has[k]);
		m.has[k] = 0;
	}
	check_patterns(st, &m, "all deleted");
	maintain_all(st);
	check_single_term_sets(st, &m, "all deleted, cleaned");
	cidstore_stats_t sx;
	ck_assert_int_eq(cidstore_stats(st, &sx), 0);
	ck_assert_msg(sx.keys == 0, "%llu keys left after deleting everything and cleaning",
		      (unsigned long long)sx.keys);
	random_ops(st, &m, &rng, 300, 20);
	check_patterns(st, &m, "refilled");
	/* the store's maintenance reaches the cleaning through its ext slot */
	random_ops(st, &m, &rng, 300, 80);
	struct store_ext *ext = atomic_load(&st->ext);
	ck_assert_ptr_nonnull(ext);
	ck_assert_ptr_nonnull(ext->maintain);
	uint64_t done = 0;
	ck_assert_int_eq(ext->maintain(ext, st, &done), 0);
	check_single_term_sets(st, &m, "cleaned through st->ext");
	check_patterns(st, &m, "cleaned through st->ext");
	close_store(st);
}
END_TEST

START_TEST(test_match_stop)
{
	cidstore_t *st = open_mem_store(3, 0, _i == 1);
	for (unsigned k = 0; k < NT; k++) {
		cidstore_triple_t t = TR(k);
		ck_assert_int_eq(cidstore_triple_insert(st, &t), 1);
	}
	for (int mask = 0; mask < 8; mask++) {
		struct pat q = {mask & 4 ? 1 : -1, mask & 2 ? 2 : -1, mask & 1 ? 3 : -1};
		struct collect col = {.stop_after = 1};
		ck_assert_int_eq(run_match(st, &q, collect_cb, &col), 7);
		ck_assert_uint_eq(col.n, 1);
	}
	/* a negative return is passed through too */
	struct pat q = {-1, -1, -1};
	struct collect col = {.stop_after = 5};
	ck_assert_int_eq(run_match(st, &q, collect_cb, &col), 7);
	ck_assert_uint_eq(col.n, 5);
	ck_assert_int_eq(cidstore_triple_count(st, NULL, NULL, NULL), NT);
	close_store(st);
}
END_TEST

/* A callback that writes (fn may call the store). */
static int writer_cb(const cidstore_triple_t *t, void *ctx)
{
	cidstore_t *st = ctx;
	cidstore_triple_t u = *t;
	u.o = O(NO); /* outside the universe's objects */
	return cidstore_triple_insert(st, &u) < 0;
}

START_TEST(test_match_fn_writes)
{
	cidstore_t *st = open_mem_store(5, 0, _i == 1);
	for (unsigned k = 0; k < NT; k += 3) {
		cidstore_triple_t t = TR(k);
		ck_assert_int_eq(cidstore_triple_insert(st, &t), 1);
	}
	cid_t p0 = P(0);
	ck_assert_int_eq(cidstore_triple_match(st, NULL, &p0, NULL, writer_cb, st), 0);
	cid_t ox = O(NO);
	long n = cidstore_triple_count(st, NULL, &p0, &ox);
	ck_assert_int_gt(n, 0);
	close_store(st);
}
END_TEST

START_TEST(test_einval)
{
	cidstore_t *st = open_mem_store(1, 0, false);
	cidstore_triple_t t = TR(0);
	cid_t c = S(0);
	char buf[4];
	ck_assert_int_eq(cidstore_triple_insert(NULL, &t), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_triple_insert(st, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_triple_insert_many(NULL, &t, 1, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_triple_insert_many(st, NULL, 1, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_triple_insert_many(st, NULL, 0, NULL), 0);
	ck_assert_int_eq(cidstore_triple_delete(NULL, &t), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_triple_delete(st, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_triple_match(NULL, NULL, NULL, NULL, collect_cb, NULL),
			 CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_triple_match(st, NULL, NULL, NULL, NULL, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_triple_count(NULL, NULL, NULL, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_term_put(NULL, "a", 1, &c), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_term_put(st, NULL, 1, &c), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_term_get(NULL, &c, buf, 4), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_term_get(st, NULL, buf, 4), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_term_get(st, &c, NULL, 4), CIDSTORE_EINVAL);
	const void *texts[2] = {"a", NULL};
	size_t lens[2] = {1, 1};
	ck_assert_int_eq(cidstore_term_put_many(NULL, texts, lens, 1, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_term_put_many(st, NULL, lens, 1, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_term_put_many(st, texts, NULL, 1, NULL), CIDSTORE_EINVAL);
	/* the second text is NULL with a length: nothing of the call is stored */
	ck_assert_int_eq(cidstore_term_put_many(st, texts, lens, 2, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cidstore_term_put_many(st, NULL, NULL, 0, NULL), 0);
	/* NULL text with length 0 is the empty text */
	ck_assert_int_eq(cidstore_term_put(st, NULL, 0, &c), 1);
	cidstore_stats_t sx;
	ck_assert_int_eq(cidstore_stats(st, &sx), 0);
	ck_assert_uint_eq(sx.keys, 1); /* only the empty text's key */
	ck_assert_int_eq(cidstore_triple_count(st, NULL, NULL, NULL), 0);
	close_store(st);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* cleaning and the sweep after reopen                                      */
/* ---------------------------------------------------------------------- */

static cidstore_t *open_dir(const char *dir, cidstore_durability_t d, bool ro)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = dir;
	o.durability = d;
	o.read_only = ro;
	o.seed = 77;
	cidstore_t *st = NULL;
	int rc = cidstore_open(&o, &st);
	ck_assert_msg(rc == 0, "open %s: %d (%s)", dir, rc, cidstore_strerror(rc));
	return st;
}

START_TEST(test_sweep_after_reopen)
{
	char tdir[256], dir[300];
	tmpdir_make(tdir, sizeof(tdir), "cidstore-triple-sweep");
	snprintf(dir, sizeof(dir), "%s/s", tdir);
	cidstore_t *st = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, false);
	struct model m = {0};
	for (unsigned k = 0; k < NT; k++) {
		cidstore_triple_t t = TR(k);
		ck_assert_int_eq(cidstore_triple_insert(st, &t), 1);
		m.has[k] = 1;
	}
	/* empty subject 0 entirely and predicate 1 entirely: stale entries */
	for (unsigned k = 0; k < NT; k++) {
		unsigned p = (k / NO) % NP, s = k / (NO * NP);
		if (s == 0 || p == 1) {
			cidstore_triple_t t = TR(k);
			ck_assert_int_eq(cidstore_triple_delete(st, &t), 1);
			m.has[k] = 0;
		}
	}
	cid_t s0 = S(0), p1 = P(1);
	cid_t subj0 = tri_key1(&s0, TRI_R_SUBJ), allp = tri_key_allp();
	ck_assert_int_eq(cidstore_lookup(st, &subj0, NULL, 0), NP); /* stale, queued */
	ck_assert_int_eq(cidstore_contains(st, &allp, &p1), 1);
	check_patterns(st, &m, "stale, before close");
	close_store(st); /* the queue is lost */
	st = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, false);
	ck_assert_int_eq(cidstore_lookup(st, &subj0, NULL, 0), NP);
	check_patterns(st, &m, "stale, reopened");
	uint64_t cleaned = 0;
	ck_assert_int_eq(triple_maintain(st, &cleaned), 0);
	ck_assert_msg(cleaned > 0, "the sweep found nothing");
	ck_assert_int_eq(cidstore_lookup(st, &subj0, NULL, 0), 0);
	ck_assert_int_eq(cidstore_contains(st, &allp, &p1), 0);
	/* OBJ entries of predicate 1 are not found by the sweep (documented);
	 * all other single-term sets are exact */
	check_patterns(st, &m, "swept");
	close_store(st);
	/* the cleaning is durable too */
	st = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, true);
	ck_assert_int_eq(cidstore_lookup(st, &subj0, NULL, 0), 0);
	ck_assert_int_eq(triple_maintain(st, &cleaned), 0); /* read_only: nothing */
	check_patterns(st, &m, "swept, read_only");
	close_store(st);
	tmpdir_remove(tdir);
}
END_TEST

/* Stale entries written by hand (single-term entries without their
 * pairs), more than one cleaning slice (4096 candidates) of them: the sweep
 * of the first pass after reopen finds and removes them all. */
START_TEST(test_sweep_many)
{
	char tdir[256], dir[300];
	tmpdir_make(tdir, sizeof(tdir), "cidstore-triple-sweep2");
	snprintf(dir, sizeof(dir), "%s/s", tdir);
	cidstore_t *st = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, false);
	size_t n = scaled(10000, 5000);
	cid_t p = P(NP + 1), allp = tri_key_allp();
	cid_t pred = tri_key1(&p, TRI_R_PRED);
	ck_assert_int_eq(cidstore_insert(st, &allp, &p), 1);
	for (size_t i = 0; i < n; i++) {
		cid_t s = mk(0x57A1E, i);
		cid_t subj = tri_key1(&s, TRI_R_SUBJ);
		ck_assert_int_eq(cidstore_insert(st, &pred, &s), 1);
		ck_assert_int_eq(cidstore_insert(st, &subj, &p), 1);
	}
	/* and one real triple under the same predicate stays */
	cidstore_triple_t keep = {S(0), p, O(0)};
	ck_assert_int_eq(cidstore_triple_insert(st, &keep), 1);
	close_store(st);
	st = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, false);
	ck_assert_int_eq(cidstore_triple_count(st, NULL, &p, NULL), 1);
	uint64_t cleaned = 0;
	ck_assert_int_eq(triple_maintain(st, &cleaned), 0);
	ck_assert_uint_eq(cleaned, 2 * n);
	ck_assert_int_eq(cidstore_lookup(st, &pred, NULL, 0), 1);
	ck_assert_int_eq(cidstore_contains(st, &allp, &p), 1);
	cid_t s1 = mk(0x57A1E, 1), subj1 = tri_key1(&s1, TRI_R_SUBJ);
	ck_assert_int_eq(cidstore_lookup(st, &subj1, NULL, 0), 0);
	ck_assert_int_eq(cidstore_triple_count(st, NULL, &p, NULL), 1);
	ck_assert_int_eq(cidstore_triple_count(st, NULL, NULL, NULL), 1);
	/* the sweep ran once: a second pass finds nothing */
	ck_assert_int_eq(triple_maintain(st, &cleaned), 0);
	ck_assert_uint_eq(cleaned, 0);
	close_store(st);
	tmpdir_remove(tdir);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* durable stores                                                          */
/* ---------------------------------------------------------------------- */

START_TEST(test_durable_reopen)
{
	static const cidstore_durability_t dur[3] = {
		CIDSTORE_DURABILITY_NONE, CIDSTORE_DURABILITY_ASYNC, CIDSTORE_DURABILITY_SYNC};
	cidstore_durability_t d = dur[_i];
	char tdir[256], dir[300];
	tmpdir_make(tdir, sizeof(tdir), "cidstore-triple-dur");
	snprintf(dir, sizeof(dir), "%s/s", tdir);
	cidstore_t *st = open_dir(dir, d, false);
	struct model m = {0};
	uint64_t rng = 99 + _i;
	random_ops(st, &m, &rng, d == CIDSTORE_DURABILITY_SYNC ? 150 : 400, 15);
	random_ops(st, &m, &rng, d == CIDSTORE_DURABILITY_SYNC ? 100 : 300, 60);
	static const char *texts[] = {"<http://example.org/alice>", "\"x\"", ""};
	cid_t tc[3];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(cidstore_term_put(st, texts[i], strlen(texts[i]), &tc[i]), 1);
	check_patterns(st, &m, "before close");
	close_store(st);
	st = open_dir(dir, d, false);
	check_patterns(st, &m, "reopened");
	random_ops(st, &m, &rng, 50, 30);
	maintain_all(st);
	check_patterns(st, &m, "reopened, changed, cleaned");
	close_store(st);
	st = open_dir(dir, d, true);
	check_patterns(st, &m, "read_only");
	for (int i = 0; i < 3; i++) {
		char buf[64];
		long n = cidstore_term_get(st, &tc[i], buf, sizeof(buf));
		ck_assert_int_eq(n, (long)strlen(texts[i]));
		ck_assert(memcmp(buf, texts[i], (size_t)n) == 0);
	}
	cidstore_triple_t t = TR(0);
	ck_assert_int_eq(cidstore_triple_insert(st, &t), CIDSTORE_ERDONLY);
	ck_assert_int_eq(cidstore_triple_insert_many(st, &t, 1, NULL), CIDSTORE_ERDONLY);
	ck_assert_int_eq(cidstore_triple_delete(st, &t), CIDSTORE_ERDONLY);
	ck_assert_int_eq(cidstore_term_put(st, "new", 3, NULL), CIDSTORE_ERDONLY);
	const void *tx[1] = {"new"};
	size_t tl[1] = {3};
	ck_assert_int_eq(cidstore_term_put_many(st, tx, tl, 1, NULL), CIDSTORE_ERDONLY);
	check_patterns(st, &m, "read_only after refused writes");
	close_store(st);
	tmpdir_remove(tdir);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* a key with many values                                                  */
/* ---------------------------------------------------------------------- */

#if !defined(CIDSTORE_TSAN) && !defined(CIDSTORE_ASAN)
static size_t vm_size(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;
	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return pages * (size_t)sysconf(_SC_PAGESIZE);
}
#endif

struct count_only {
	long n;
};

static int count_only_cb(const cidstore_triple_t *t, void *ctx)
{
	(void)t;
	((struct count_only *)ctx)->n++;
	return 0;
}

START_TEST(test_big_pair)
{
	size_t n = scaled(200000, 20000);
	cidstore_t *st = open_mem_store(8, 0, false);
	cid_t s = S(0), p = P(0);
	size_t batch = 4096;
	cidstore_triple_t *b = malloc(batch * sizeof(*b));
	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < n; i += batch) {
		size_t m = n - i < batch ? n - i : batch;
		for (size_t j = 0; j < m; j++)
			b[j] = (cidstore_triple_t){s, p, mk(0xB16, i + j)};
		ck_assert_int_eq(cidstore_triple_insert_many(st, b, m, NULL), (long)m);
	}
	free(b);
	ck_assert_int_eq(cidstore_triple_count(st, &s, &p, NULL), (long)n);
	ck_assert_int_eq(cidstore_triple_count(st, &s, NULL, NULL), (long)n);
	ck_assert_int_eq(cidstore_triple_count(st, NULL, &p, NULL), (long)n);
	ck_assert_int_eq(cidstore_triple_count(st, NULL, NULL, NULL), (long)n);
	cid_t o7 = mk(0xB16, 7);
	ck_assert_int_eq(cidstore_triple_count(st, NULL, NULL, &o7), 1);
	ck_assert_int_eq(cidstore_triple_count(st, &s, NULL, &o7), 1);
	struct count_only co = {0};
	ck_assert_int_eq(cidstore_triple_match(st, &s, &p, NULL, count_only_cb, &co), 0);
	ck_assert_int_eq(co.n, (long)n);
#if !defined(CIDSTORE_TSAN) && !defined(CIDSTORE_ASAN)
	/* count needs no buffer: a child capped at its current address space
	 * plus 1 MiB still counts; a lookup into a buffer for the whole set
	 * (n * 32 bytes) cannot get its memory there. */
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit rl = {vm_size() + (1u << 20), vm_size() + (1u << 20)};
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(10);
		long c = cidstore_triple_count(st, &s, &p, NULL);
		if (c != (long)n)
			_exit(11);
		void *big = malloc(n * sizeof(cid_t));
		_exit(big ? 12 : 0);
	}
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "capped child: status %d (10 setrlimit, 11 count failed, 12 cap too loose)",
		      status);
#endif
	close_store(st);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* batched leaf reads (match.c): several batches, sets beyond the cap       */
/* ---------------------------------------------------------------------- */

/* A wider universe: BS subjects, BP predicates, BO objects.  Subject 0 has
 * every predicate, predicate j with 1 + j % 12 objects (so pair sets of 1
 * to 12 values: both sides of the 8 values a batch copies per key, exactly
 * 8 and 9 too); predicate 0 has every subject (several batches of 64 keys),
 * 1 + (i % 17 == 0) * 10 objects each; object 0 has every predicate. */
#define BS 150
#define BP 100
#define BO 16
#define BT (BS * BP * BO)
#define TAG_BS 0x42530000ull
#define TAG_BP 0x42500000ull
#define TAG_BO 0x424f0000ull

static unsigned bidx(unsigned s, unsigned p, unsigned o) { return (s * BP + p) * BO + o; }

struct bcollect {
	uint8_t *got;
	unsigned dup, foreign;
	long n, stop_after;
};

static int bcollect_cb(const cidstore_triple_t *t, void *ctx)
{
	struct bcollect *c = ctx;
	long s = mk_decode(&t->s, TAG_BS, BS), p = mk_decode(&t->p, TAG_BP, BP),
	     o = mk_decode(&t->o, TAG_BO, BO);
	if (s < 0 || p < 0 || o < 0)
		c->foreign++;
	else if (c->got[bidx((unsigned)s, (unsigned)p, (unsigned)o)]++)
		c->dup++;
	c->n++;
	return c->stop_after > 0 && c->n >= c->stop_after ? 7 : 0;
}

/* match and count of (s, p, o) (-1: wildcard) against the model has[] */
static void bcheck(cidstore_t *st, const uint8_t *has, int s, int p, int o, const char *what)
{
	cid_t cs = mk(TAG_BS, (uint64_t)s), cp = mk(TAG_BP, (uint64_t)p), co = mk(TAG_BO, (uint64_t)o);
	const cid_t *ps = s < 0 ? NULL : &cs, *pp = p < 0 ? NULL : &cp, *po = o < 0 ? NULL : &co;
	struct bcollect c = {.got = calloc(BT, 1)};
	ck_assert_ptr_nonnull(c.got);
	ck_assert_int_eq(cidstore_triple_match(st, ps, pp, po, bcollect_cb, &c), 0);
	ck_assert_msg(c.dup == 0 && c.foreign == 0, "%s (%d %d %d): %u twice, %u foreign", what,
		      s, p, o, c.dup, c.foreign);
	long want = 0;
	for (unsigned si = 0; si < BS; si++)
		for (unsigned pi = 0; pi < BP; pi++)
			for (unsigned oi = 0; oi < BO; oi++) {
				unsigned k = bidx(si, pi, oi);
				bool exp = has[k] && (s < 0 || (unsigned)s == si) &&
					   (p < 0 || (unsigned)p == pi) && (o < 0 || (unsigned)o == oi);
				want += exp;
				ck_assert_msg(c.got[k] == exp, "%s (%d %d %d): triple (%u %u %u) %s",
					      what, s, p, o, si, pi, oi,
					      exp ? "missing" : "delivered but not stored");
			}
	ck_assert_int_eq(c.n, want);
	ck_assert_msg(cidstore_triple_count(st, ps, pp, po) == want, "%s (%d %d %d): count %ld, want %ld",
		      what, s, p, o, cidstore_triple_count(st, ps, pp, po), want);
	free(c.got);
}

static void bcheck_all(cidstore_t *st, const uint8_t *has, const char *what)
{
	static const int terms[] = {0, 1, 7, 8, 9, 12, 17, 64, 99};
	for (size_t i = 0; i < sizeof(terms) / sizeof(terms[0]); i++) {
		bcheck(st, has, terms[i], -1, -1, what); /* S?? */
		if (terms[i] < BP)
			bcheck(st, has, -1, terms[i], -1, what); /* ?P? */
		if (terms[i] < BO)
			bcheck(st, has, -1, -1, terms[i], what); /* ??O */
	}
	bcheck(st, has, -1, -1, -1, what); /* ??? */
}

START_TEST(test_match_batches)
{
	cidstore_t *st = open_mem_store(31 + _i, 0, _i == 1);
	uint8_t *has = calloc(BT, 1);
	ck_assert_ptr_nonnull(has);
	cidstore_triple_t *b = malloc(BT * sizeof(*b));
	ck_assert_ptr_nonnull(b);
	size_t n = 0;
	for (unsigned p = 0; p < BP; p++)
		for (unsigned o = 0; o < 1 + p % 12; o++)
			has[bidx(0, p, o)] = 1;
	for (unsigned s = 1; s < BS; s++)
		for (unsigned o = 0; o < 1 + (s % 17 == 0) * 10; o++)
			has[bidx(s, 0, (s + o) % BO)] = 1;
	for (unsigned k = 0; k < BT; k++)
		if (has[k])
			b[n++] = (cidstore_triple_t){mk(TAG_BS, k / (BP * BO)),
						     mk(TAG_BP, (k / BO) % BP), mk(TAG_BO, k % BO)};
	ck_assert_int_eq(cidstore_triple_insert_many(st, b, n, NULL), (long)n);
	bcheck_all(st, has, "filled");
	/* fn stops at every position of S?? of subject 0 and ?P? of predicate
	 * 0 (sets come in no particular order, so every stop covers inside a
	 * batch, inside a key read again alone, in a later batch): exactly that
	 * many delivered, none twice, fn's return returned */
	cid_t s0 = mk(TAG_BS, 0), p0 = mk(TAG_BP, 0);
	struct bcollect c = {.got = calloc(BT, 1)};
	ck_assert_ptr_nonnull(c.got);
	for (int pass = 0; pass < 2; pass++) {
		const cid_t *ps = pass ? NULL : &s0, *pp = pass ? &p0 : NULL;
		long total = cidstore_triple_count(st, ps, pp, NULL);
		ck_assert_int_gt(total, 2 * 64);
		for (long stop = 1; stop <= total; stop++) {
			memset(c.got, 0, BT);
			c.n = 0;
			c.stop_after = stop;
			ck_assert_int_eq(cidstore_triple_match(st, ps, pp, NULL, bcollect_cb, &c), 7);
			ck_assert_int_eq(c.n, stop);
			ck_assert_uint_eq(c.dup, 0);
			ck_assert_uint_eq(c.foreign, 0);
		}
	}
	free(c.got);
	/* shrink and grow pair sets across the cap of 8 (stale single-term
	 * entries left: no pass), then clean */
	n = 0;
	for (unsigned p = 0; p < BP; p += 3)
		for (unsigned o = 0; o < BO; o++)
			if (has[bidx(0, p, o)] && (o % 2 || p % 2)) {
				b[n++] = (cidstore_triple_t){s0, mk(TAG_BP, p), mk(TAG_BO, o)};
				has[bidx(0, p, o)] = 0;
			}
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(cidstore_triple_delete(st, &b[i]), 1);
	for (unsigned p = 1; p < BP; p += 5)
		for (unsigned o = 0; o < BO; o++)
			if (!has[bidx(0, p, o)]) {
				cidstore_triple_t t = {s0, mk(TAG_BP, p), mk(TAG_BO, o)};
				ck_assert_int_eq(cidstore_triple_insert(st, &t), 1);
				has[bidx(0, p, o)] = 1;
			}
	bcheck_all(st, has, "changed");
	maintain_all(st);
	bcheck_all(st, has, "cleaned");
	free(b);
	free(has);
	close_store(st);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* terms                                                                   */
/* ---------------------------------------------------------------------- */

static void fill_text(uint8_t *t, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		t[i] = (uint8_t)(mix64(seed + i) >> 13);
}

START_TEST(test_terms)
{
	static const size_t lens[] = {0, 1, 23, 24, 25, 51, 52, 53, 1000, 1u << 20};
	const size_t nl = sizeof(lens) / sizeof(lens[0]);
	cidstore_t *st = open_mem_store(21, 0, _i == 1);
	uint8_t *text = malloc((1u << 20) + 64), *got = malloc((1u << 20) + 64);
	ck_assert(text && got);
	for (size_t i = 0; i < nl; i++) {
		size_t L = lens[i];
		fill_text(text, L, i * 1000);
		cid_t c, want;
		cid_sha256(text, L, &want);
		ck_assert_int_eq(cidstore_term_get(st, &want, NULL, 0), 0); /* unknown */
		ck_assert_int_eq(cidstore_term_put(st, text, L, &c), 1);
		ck_assert(cid_eq(&c, &want));
		ck_assert_int_eq(cidstore_term_put(st, text, L, NULL), 0); /* known */
		memset(got, 0xEE, L + 64);
		ck_assert_int_eq(cidstore_term_get(st, &c, got, L + 64), (long)L);
		ck_assert(memcmp(got, text, L) == 0);
		ck_assert_uint_eq(got[L], 0xEE); /* nothing past the text */
		/* a small cap truncates and returns the length */
		size_t cap = L / 2;
		memset(got, 0xEE, cap + 1);
		ck_assert_int_eq(cidstore_term_get(st, &c, got, cap), (long)L);
		ck_assert(memcmp(got, text, cap) == 0);
		ck_assert_uint_eq(got[cap], 0xEE);
		ck_assert_int_eq(cidstore_term_get(st, &c, NULL, 0), (long)L);
	}
	/* put_many: new texts, a repeat inside the call, a known one */
	const char *tx[5] = {"alpha", "beta-beta-beta-beta-beta-beta-beta", "alpha",
			     "\"a literal\"@en", "x"};
	size_t tl[5];
	for (int i = 0; i < 5; i++)
		tl[i] = strlen(tx[i]);
	ck_assert_int_eq(cidstore_term_put(st, "x", 1, NULL), 1);
	cid_t out[5];
	ck_assert_int_eq(cidstore_term_put_many(st, (const void *const *)tx, tl, 5, out), 3);
	ck_assert_int_eq(cidstore_term_put_many(st, (const void *const *)tx, tl, 5, NULL), 0);
	for (int i = 0; i < 5; i++) {
		cid_t want;
		cid_sha256(tx[i], tl[i], &want);
		ck_assert(cid_eq(&out[i], &want));
		char buf[64];
		ck_assert_int_eq(cidstore_term_get(st, &out[i], buf, sizeof(buf)), (long)tl[i]);
		ck_assert(memcmp(buf, tx[i], tl[i]) == 0);
	}
	free(text);
	free(got);
	close_store(st);
}
END_TEST

/* The chunk value of a text the way term.c lays it out (only the parts a
 * test needs: index and the first text bytes). */
static cid_t raw_chunk(uint32_t idx, uint32_t len, const char *bytes, size_t n)
{
	uint8_t b[32] = {0};
	b[0] = (uint8_t)idx, b[1] = (uint8_t)(idx >> 8), b[2] = (uint8_t)(idx >> 16),
	b[3] = (uint8_t)(idx >> 24);
	size_t off = 4;
	if (idx == 0) {
		b[4] = (uint8_t)len, b[5] = (uint8_t)(len >> 8), b[6] = (uint8_t)(len >> 16),
		b[7] = (uint8_t)(len >> 24);
		off = 8;
	}
	memcpy(b + off, bytes, n);
	cid_t c;
	for (int w = 0; w < 4; w++) {
		uint64_t x = 0;
		for (int i = 0; i < 8; i++)
			x = x << 8 | b[8 * w + i];
		c.w[w] = x;
	}
	return c;
}

START_TEST(test_term_damage)
{
	cidstore_t *st = open_mem_store(22, 0, false);
	const char *text = "0123456789abcdefghijklmnopqrstuvwxyz"; /* 36 bytes: 2 chunks */
	cid_t c;
	ck_assert_int_eq(cidstore_term_put(st, text, 36, &c), 1);
	cid_t key = tri_key1(&c, TRI_R_TERM);
	ck_assert_int_eq(cidstore_lookup(st, &key, NULL, 0), 2);
	/* the layout is what term.c says */
	cid_t c0 = raw_chunk(0, 36, text, 24), c1 = raw_chunk(1, 0, text + 24, 12);
	ck_assert_int_eq(cidstore_contains(st, &key, &c0), 1);
	ck_assert_int_eq(cidstore_contains(st, &key, &c1), 1);
	/* a second chunk 1 contradicts the first */
	cid_t bad = raw_chunk(1, 0, "ZZZZ", 4);
	ck_assert_int_eq(cidstore_insert(st, &key, &bad), 1);
	ck_assert_int_eq(cidstore_term_get(st, &c, NULL, 0), CIDSTORE_ECORRUPT);
	ck_assert_int_eq(cidstore_delete_value(st, &key, &bad), 1);
	ck_assert_int_eq(cidstore_term_get(st, &c, NULL, 0), 36);
	/* chunk 0 without its chunk 1 (chunk 0 is written last): corrupt */
	ck_assert_int_eq(cidstore_delete_value(st, &key, &c1), 1);
	ck_assert_int_eq(cidstore_term_get(st, &c, NULL, 0), CIDSTORE_ECORRUPT);
	/* a chunk past the end */
	ck_assert_int_eq(cidstore_insert(st, &key, &c1), 1);
	cid_t c2 = raw_chunk(2, 0, "x", 1);
	ck_assert_int_eq(cidstore_insert(st, &key, &c2), 1);
	ck_assert_int_eq(cidstore_term_get(st, &c, NULL, 0), CIDSTORE_ECORRUPT);
	ck_assert_int_eq(cidstore_delete_value(st, &key, &c2), 1);
	/* bytes after the text's end */
	cid_t c1pad = raw_chunk(1, 0, "opqrstuvwxyzQ", 13);
	ck_assert_int_eq(cidstore_delete_value(st, &key, &c1), 1);
	ck_assert_int_eq(cidstore_insert(st, &key, &c1pad), 1);
	ck_assert_int_eq(cidstore_term_get(st, &c, NULL, 0), CIDSTORE_ECORRUPT);
	/* only chunk 1 (a put in progress): unknown yet, and a put completes it */
	ck_assert_int_eq(cidstore_delete_key(st, &key), 2);
	ck_assert_int_eq(cidstore_insert(st, &key, &c1), 1);
	char buf[40];
	ck_assert_int_eq(cidstore_term_get(st, &c, buf, sizeof(buf)), 0);
	ck_assert_int_eq(cidstore_term_put(st, text, 36, NULL), 1);
	ck_assert_int_eq(cidstore_term_get(st, &c, buf, sizeof(buf)), 36);
	ck_assert(memcmp(buf, text, 36) == 0);
	close_store(st);
}
END_TEST

START_TEST(test_terms_durable)
{
	char tdir[256], dir[300];
	tmpdir_make(tdir, sizeof(tdir), "cidstore-term-dur");
	snprintf(dir, sizeof(dir), "%s/s", tdir);
	cidstore_t *st = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, false);
	size_t big = 1u << 20;
	uint8_t *text = malloc(big), *got = malloc(big);
	ck_assert(text && got);
	fill_text(text, big, 5);
	cid_t cbig, csmall;
	ck_assert_int_eq(cidstore_term_put(st, text, big, &cbig), 1);
	ck_assert_int_eq(cidstore_term_put(st, "small", 5, &csmall), 1);
	ck_assert_int_eq(cidstore_checkpoint(st), 0);
	cid_t clate;
	ck_assert_int_eq(cidstore_term_put(st, "after the checkpoint", 20, &clate), 1);
	close_store(st);
	st = open_dir(dir, CIDSTORE_DURABILITY_ASYNC, true);
	ck_assert_int_eq(cidstore_term_get(st, &cbig, got, big), (long)big);
	ck_assert(memcmp(got, text, big) == 0);
	ck_assert_int_eq(cidstore_term_get(st, &csmall, got, big), 5);
	ck_assert_int_eq(cidstore_term_get(st, &clate, got, big), 20);
	ck_assert(memcmp(got, "after the checkpoint", 20) == 0);
	close_store(st);
	free(text);
	free(got);
	tmpdir_remove(tdir);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* racing writers of the same triples                                       */
/* ---------------------------------------------------------------------- */

struct race_arg {
	cidstore_t *st;
	unsigned id;
	int mode; /* 0 insert, 1 delete, 2 insert_many, 3 mixed */
	unsigned rounds;
	long total;
	pthread_barrier_t *bar;
};

static void *race_main(void *p)
{
	struct race_arg *a = p;
	pthread_barrier_wait(a->bar);
	for (unsigned r = 0; r < a->rounds; r++) {
		for (unsigned j = 0; j < NT; j++) {
			unsigned k = (j * 7 + a->id * 13 + r) % NT; /* different orders */
			cidstore_triple_t t = TR(k);
			long rc;
			switch (a->mode) {
			case 0:
				rc = cidstore_triple_insert(a->st, &t);
				break;
			case 1:
				rc = cidstore_triple_delete(a->st, &t);
				break;
			case 2:
				rc = cidstore_triple_insert_many(a->st, &t, 1, NULL);
				break;
			default:
				rc = (mix64(r * 1000003u + j * 31 + a->id) & 1)
					     ? cidstore_triple_insert(a->st, &t)
					     : cidstore_triple_delete(a->st, &t);
				break;
			}
			if (rc < 0)
				tfail("thread %u: %ld", a->id, rc);
			a->total += rc;
		}
		if (a->mode != 3)
			break;
	}
	return NULL;
}

static long race(cidstore_t *st, int mode, unsigned threads, unsigned rounds)
{
	pthread_t th[4];
	struct race_arg a[4];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, threads);
	for (unsigned i = 0; i < threads; i++) {
		a[i] = (struct race_arg){st, i, mode, rounds, 0, &bar};
		spawn(&th[i], race_main, &a[i]);
	}
	long total = 0;
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		total += a[i].total;
	}
	pthread_barrier_destroy(&bar);
	return total;
}

/* Every triple of the universe is in all three pair indexes or none. */
static void check_whole(cidstore_t *st, struct model *m)
{
	for (unsigned k = 0; k < NT; k++) {
		cidstore_triple_t t = TR(k);
		cid_t sp = tri_key2(&t.s, &t.p, TRI_R_SP), os = tri_key2(&t.o, &t.s, TRI_R_OS),
		      po = tri_key2(&t.p, &t.o, TRI_R_PO);
		int a = cidstore_contains(st, &sp, &t.o), b = cidstore_contains(st, &os, &t.p),
		    c = cidstore_contains(st, &po, &t.s);
		ck_assert_msg(a == b && b == c, "triple %u half-stored: SP %d OS %d PO %d", k, a, b,
			      c);
		m->has[k] = (uint8_t)a;
	}
}

START_TEST(test_races)
{
	reset_failures();
	cidstore_t *st = open_mem_store(31, 0, false);
	struct model m = {0};
	unsigned rounds = (unsigned)scaled(60, 10);
	for (int rep = 0; rep < 3; rep++) {
		ck_assert_int_eq(race(st, rep == 1 ? 2 : 0, 3, 1), NT); /* added once each */
		assert_no_failures("racing inserts");
		check_whole(st, &m);
		ck_assert_int_eq(race(st, 1, 3, 1), NT); /* removed once each */
		assert_no_failures("racing deletes");
		check_whole(st, &m);
	}
	race(st, 3, 3, rounds);
	assert_no_failures("inserts and deletes of the same triples");
	check_whole(st, &m);
	check_patterns(st, &m, "after the mixed race");
	maintain_all(st);
	check_single_term_sets(st, &m, "after the mixed race, cleaned");
	close_store(st);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* writers, readers and cleaners at once: the exact check                   */
/* ---------------------------------------------------------------------- */

#define CW 2                     /* writers */
#define CR 2                     /* readers */

enum { EV_INS_B, EV_INS_E, EV_DEL_B, EV_DEL_E };

struct hist {
	pthread_mutex_t mu;
	unsigned n, cap;     /* stamps; cycle i = stamps 4i .. 4i+3 */
	uint64_t *ev;
};

static _Atomic uint64_t g_tick;
static struct hist g_hist[NT];

static void stamp(unsigned k, unsigned what)
{
	struct hist *h = &g_hist[k];
	pthread_mutex_lock(&h->mu);
	if (h->n == h->cap) {
		uint64_t *ev = realloc(h->ev, (h->cap * 2 + 64) * sizeof(*ev));
		if (!ev)
			abort();
		h->ev = ev;
		h->cap = h->cap * 2 + 64;
	}
	if (h->n % 4 != what)
		tfail("triple %u: stamp %u at %u", k, what, h->n);
	else
		h->ev[h->n++] = atomic_fetch_add(&g_tick, 1) + 1;
	pthread_mutex_unlock(&h->mu);
}

/* may: t was stored at some instant of [A, B]; must: stored all along */
static void judge(unsigned k, uint64_t A, uint64_t B, bool *may, bool *must)
{
	struct hist *h = &g_hist[k];
	*may = *must = false;
	pthread_mutex_lock(&h->mu);
	for (unsigned i = 0; i < h->n; i += 4) {
		uint64_t ib = h->ev[i];
		uint64_t ie = i + 1 < h->n ? h->ev[i + 1] : UINT64_MAX;
		uint64_t db = i + 2 < h->n ? h->ev[i + 2] : UINT64_MAX;
		uint64_t de = i + 3 < h->n ? h->ev[i + 3] : UINT64_MAX;
		if (ib < B && de > A)
			*may = true;
		if (ie < A && db > B)
			*must = true;
	}
	pthread_mutex_unlock(&h->mu);
}

struct cc_arg {
	cidstore_t *st;
	unsigned id;
	unsigned ops;
	_Atomic int *stop;
	uint64_t calls, delivered;
};

static void *cc_writer(void *p)
{
	struct cc_arg *a = p;
	uint64_t rng = 1000 + a->id;
	bool present[NT] = {0};
	for (unsigned i = 0; i < a->ops && !failed_already(); i++) {
		uint64_t r = mix64(rng++);
		/* an owned triple: k % CW == id */
		unsigned k = (unsigned)((r % (NT / CW)) * CW + a->id);
		cidstore_triple_t t = TR(k);
		if (present[k]) {
			stamp(k, EV_DEL_B);
			int rc = cidstore_triple_delete(a->st, &t);
			stamp(k, EV_DEL_E);
			if (rc != 1)
				tfail("writer %u: delete %u -> %d", a->id, k, rc);
			present[k] = false;
		} else if ((r >> 32) % 3 == 0) {
			/* insert_many of up to 4 absent owned triples */
			cidstore_triple_t b[4];
			unsigned kk[4], n = 0;
			for (unsigned j = 0; j < 4; j++) {
				unsigned x = (unsigned)(((k / CW + j) % (NT / CW)) * CW + a->id);
				if (!present[x]) {
					kk[n] = x;
					b[n++] = TR(x);
				}
			}
			for (unsigned j = 0; j < n; j++)
				stamp(kk[j], EV_INS_B);
			int res[4];
			long rc = cidstore_triple_insert_many(a->st, b, n, res);
			for (unsigned j = 0; j < n; j++)
				stamp(kk[j], EV_INS_E);
			if (rc != (long)n)
				tfail("writer %u: insert_many of %u -> %ld", a->id, n, rc);
			for (unsigned j = 0; j < n; j++) {
				if (res[j] != 1)
					tfail("writer %u: insert_many result %d", a->id, res[j]);
				present[kk[j]] = true;
			}
		} else {
			stamp(k, EV_INS_B);
			int rc = cidstore_triple_insert(a->st, &t);
			stamp(k, EV_INS_E);
			if (rc != 1)
				tfail("writer %u: insert %u -> %d", a->id, k, rc);
			present[k] = true;
		}
	}
	return NULL;
}

static void *cc_reader(void *p)
{
	struct cc_arg *a = p;
	uint64_t rng = 5000 + a->id;
	while (!atomic_load(a->stop) && !failed_already()) {
		uint64_t r = mix64(rng++);
		int mask = (int)(r % 8);
		struct pat q = {mask & 4 ? (int)((r >> 8) % NS) : -1,
				mask & 2 ? (int)((r >> 16) % NP) : -1,
				mask & 1 ? (int)((r >> 24) % NO) : -1};
		bool counting = (r >> 40) % 4 == 0;
		struct collect col = {0};
		uint64_t A = atomic_fetch_add(&g_tick, 1) + 1;
		long cnt = 0;
		int rc = counting ? (int)((cnt = run_count(a->st, &q)) < 0 ? cnt : 0)
				  : run_match(a->st, &q, collect_cb, &col);
		uint64_t B = atomic_fetch_add(&g_tick, 1) + 1;
		char nb[32];
		if (rc != 0) {
			tfail("reader: %s -> %d", pat_name(&q, nb), rc);
			break;
		}
		if (col.dup || col.foreign)
			tfail("reader: %s: %u twice, %u foreign", pat_name(&q, nb), col.dup,
			      col.foreign);
		long lo = 0, hi = 0;
		for (unsigned k = 0; k < NT; k++) {
			if (!pat_matches(&q, k))
				continue;
			bool may, must;
			judge(k, A, B, &may, &must);
			lo += must;
			hi += may;
			if (counting)
				continue;
			if (col.got[k] && !may)
				tfail("reader: %s delivered triple %u, never stored in [%llu, %llu]",
				      pat_name(&q, nb), k, (unsigned long long)A,
				      (unsigned long long)B);
			if (!col.got[k] && must)
				tfail("reader: %s missed triple %u, stored all along [%llu, %llu]",
				      pat_name(&q, nb), k, (unsigned long long)A,
				      (unsigned long long)B);
		}
		if (counting && (cnt < lo || cnt > hi))
			tfail("reader: count %s = %ld, not in [%ld, %ld]", pat_name(&q, nb), cnt, lo,
			      hi);
		a->calls++;
		a->delivered += col.n;
	}
	return NULL;
}

static void *cc_cleaner(void *p)
{
	struct cc_arg *a = p;
	while (!atomic_load(a->stop) && !failed_already()) {
		uint64_t cleaned;
		int rc = triple_maintain(a->st, &cleaned);
		if (rc)
			tfail("triple_maintain: %d", rc);
		a->calls++;
		a->delivered += cleaned;
		sched_yield();
	}
	return NULL;
}

START_TEST(test_concurrent_exact)
{
	reset_failures();
	/* 0: in memory; 1: a SYNC store (writers wait for fdatasync outside
	 * the gate); 2: serialized */
	char tdir[256] = "", dir[300];
	cidstore_t *st;
	unsigned ops = (unsigned)scaled(20000, 3000);
	if (_i == 1) {
		tmpdir_make(tdir, sizeof(tdir), "cidstore-triple-cc");
		snprintf(dir, sizeof(dir), "%s/s", tdir);
		st = open_dir(dir, CIDSTORE_DURABILITY_SYNC, false);
		ops /= 5;
	} else {
		st = open_mem_store(41, 0, _i == 2);
	}
	atomic_store(&g_tick, 0);
	for (unsigned k = 0; k < NT; k++) {
		pthread_mutex_init(&g_hist[k].mu, NULL);
		g_hist[k].n = g_hist[k].cap = 0;
		g_hist[k].ev = NULL;
	}
	_Atomic int stop = 0;
	pthread_t tw[CW], tr[CR], tc;
	struct cc_arg aw[CW], ar[CR], ac = {st, 99, 0, &stop, 0, 0};
	for (unsigned i = 0; i < CW; i++) {
		aw[i] = (struct cc_arg){st, i, ops, &stop, 0, 0};
		spawn(&tw[i], cc_writer, &aw[i]);
	}
	for (unsigned i = 0; i < CR; i++) {
		ar[i] = (struct cc_arg){st, i, 0, &stop, 0, 0};
		spawn(&tr[i], cc_reader, &ar[i]);
	}
	spawn(&tc, cc_cleaner, &ac);
	for (unsigned i = 0; i < CW; i++)
		pthread_join(tw[i], NULL);
	atomic_store(&stop, 1);
	uint64_t calls = 0, delivered = 0;
	for (unsigned i = 0; i < CR; i++) {
		pthread_join(tr[i], NULL);
		calls += ar[i].calls;
		delivered += ar[i].delivered;
	}
	pthread_join(tc, NULL);
	assert_no_failures("concurrent writers, readers, cleaner");
	fprintf(stderr, "concurrent_exact %d: %llu reader calls, %llu triples delivered, "
			"%llu cleaning passes removed %llu entries\n",
		_i, (unsigned long long)calls, (unsigned long long)delivered,
		(unsigned long long)ac.calls, (unsigned long long)ac.delivered);
	ck_assert_msg(calls > 10, "readers ran only %llu calls", (unsigned long long)calls);
	/* the final state: the model from the histories */
	struct model m = {0};
	for (unsigned k = 0; k < NT; k++) {
		m.has[k] = g_hist[k].n % 4 == 2;
		ck_assert_msg(g_hist[k].n % 2 == 0, "triple %u: odd history", k);
	}
	check_patterns(st, &m, "after the concurrent run");
	maintain_all(st);
	check_single_term_sets(st, &m, "after the concurrent run, cleaned");
	for (unsigned k = 0; k < NT; k++) {
		free(g_hist[k].ev);
		pthread_mutex_destroy(&g_hist[k].mu);
	}
	close_store(st);
	if (tdir[0])
		tmpdir_remove(tdir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("triple");
	TCase *tc = tcase_create("triple");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_patterns_random, 0, 2);
	tcase_add_loop_test(tc, test_match_stop, 0, 2);
	tcase_add_loop_test(tc, test_match_fn_writes, 0, 2);
	tcase_add_test(tc, test_einval);
	tcase_add_test(tc, test_sweep_after_reopen);
	tcase_add_test(tc, test_sweep_many);
	tcase_add_loop_test(tc, test_durable_reopen, 0, 3);
	tcase_add_test(tc, test_big_pair);
	tcase_add_loop_test(tc, test_match_batches, 0, 2);
	tcase_add_loop_test(tc, test_terms, 0, 2);
	tcase_add_test(tc, test_term_damage);
	tcase_add_test(tc, test_terms_durable);
	tcase_add_test(tc, test_races);
	tcase_add_loop_test(tc, test_concurrent_exact, 0, 3);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
