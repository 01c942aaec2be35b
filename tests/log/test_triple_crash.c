/*
 * test_triple_crash.c — the triple layer under kill -9.
 *
 * Each round forks a child that opens the store directory (SYNC, small
 * segments, automatic checkpoints, a small ring) and runs CR_THREADS writer
 * threads; thread t owns the triples k of a small universe with
 * k % CR_THREADS == t (all threads share the same subjects, predicates and
 * objects, so they write the same single-term sets) and runs a
 * deterministic sequence op(t, seq): triple insert, triple delete,
 * insert_many of 3 triples, term put.  After a call returns the thread
 * writes an acknowledgement (thread, seq, result) into a MAP_SHARED region
 * and publishes its count (release).  The child's main thread checkpoints
 * every 15 ms.  The parent waits for a random number of acknowledgements
 * (SYNC 16..400) and a random 0..40 ms more (seed printed; CIDSTORE_CRASH_SEED
 * reproduces), sends SIGKILL, reopens and checks:
 *   - each acknowledged result is what the model predicts;
 *   - nothing half-present: every triple of the universe is in all three
 *     pair indexes (SP, OS, PO) or in none;
 *   - per thread, the triples present are exactly the model after its n
 *     acknowledged operations or after n + 1 (the one in flight, an
 *     insert_many all or nothing): every acknowledged triple present,
 *     nothing unacknowledged beyond the one in flight;
 *   - every pattern (8 kinds, every choice of bound terms) delivers exactly
 *     the present triples and counts them, before and after a cleaning
 *     pass (the first after reopen sweeps for stale entries);
 *   - every acknowledged term reads back exactly, texts never put are
 *     unknown.
 * Rounds continue on the same directory with continuing sequence numbers.
 * Then an ASYNC round killed at random: per thread some prefix of its
 * sequence (not necessarily everything acknowledged) survives, whole.
 */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cidstore.h"
#include "test_support.h"
#include "triple/triple.h"

#ifdef CIDSTORE_TSAN
#define CR_ROUNDS 2
#else
#define CR_ROUNDS 6
#endif

#define CR_THREADS 3
#define CR_MAXACK (1u << 18)
#define NS 4
#define NP 3
#define NO 6
#define NT (NS * NP * NO) /* 72: 24 per thread */
#define NTEXT 24          /* term texts per thread */

#define TAG_S 0x5375626aull
#define TAG_P 0x50726564ull
#define TAG_O 0x4f626a65ull

static uint64_t sm(uint64_t x)
{
	return mix64(x + 0x9e3779b97f4a7c15ull);
}

static cid_t term(uint64_t tag, unsigned i)
{
	cid_t c = {{tag, i, sm(tag ^ i), sm(i * 31 + tag)}};
	return c;
}

static cidstore_triple_t TR(unsigned k)
{
	unsigned o = k % NO, p = (k / NO) % NP, s = k / (NO * NP);
	return (cidstore_triple_t){term(TAG_S, s), term(TAG_P, p), term(TAG_O, o)};
}

static long decode_term(const cid_t *c, uint64_t tag, unsigned lim)
{
	if (c->w[0] != tag || c->w[1] >= lim)
		return -1;
	cid_t want = term(tag, (unsigned)c->w[1]);
	return memcmp(&want, c, sizeof(want)) == 0 ? (long)c->w[1] : -1;
}

static long decode(const cidstore_triple_t *t)
{
	long s = decode_term(&t->s, TAG_S, NS), p = decode_term(&t->p, TAG_P, NP),
	     o = decode_term(&t->o, TAG_O, NO);
	if (s < 0 || p < 0 || o < 0)
		return -1;
	return (s * NP + p) * NO + o;
}

/* term text (t, id): deterministic and distinct for every (t, id):
 * lengths 0..4 (the empty text is thread 0's only), 5000 and 30..300 */
static size_t text_of(unsigned t, unsigned id, char *buf)
{
	uint64_t h = sm(((uint64_t)t << 32) ^ id);
	size_t len = id % 6 == 0 ? (id / 6 + t) % 4 : id % 6 == 1 ? 5000 : 30 + h % 271;
	if (id % 6 == 0 && len == 0 && t != 0)
		len = 4;
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)(' ' + sm(h + i) % 90);
	if (len >= 1)
		buf[0] = (char)('A' + t);
	if (len >= 2)
		buf[1] = (char)('a' + id);
	return len;
}

struct ack {
	uint32_t tid;
	int32_t ret;
	uint64_t seq;
};

struct shared {
	_Atomic uint64_t count[CR_THREADS];
	_Atomic int child_err;
	char msg[160];
	struct ack rec[CR_THREADS][CR_MAXACK];
};

static struct shared *SH;
static char tdir[256], spath[300];

struct tstate {
	uint8_t has[NT];
	uint8_t known[NTEXT];
};
static struct tstate model[CR_THREADS];
static uint64_t next_seq[CR_THREADS];
static uint64_t op_seed;

enum { OP_INS, OP_DEL, OP_MANY, OP_TERM };

struct op {
	int kind;
	unsigned k[3]; /* owned triples (OP_MANY: 3 distinct) */
	unsigned text;
};

static unsigned owned(unsigned t, uint64_t x)
{
	return (unsigned)(x % (NT / CR_THREADS)) * CR_THREADS + t;
}

static struct op op_of(unsigned t, uint64_t seq)
{
	uint64_t h = mix64(op_seed ^ ((uint64_t)t << 48) ^ (seq * 0x9e3779b97f4a7c15ull));
	struct op o;
	unsigned r = (unsigned)(h % 100);
	o.kind = r < 45 ? OP_INS : r < 75 ? OP_DEL : r < 90 ? OP_MANY : OP_TERM;
	unsigned base = (unsigned)((h >> 8) % (NT / CR_THREADS));
	for (unsigned j = 0; j < 3; j++)
		o.k[j] = owned(t, base + j * 5);
	o.text = (unsigned)((h >> 40) % NTEXT);
	return o;
}

static long model_apply(struct tstate *st, unsigned t, uint64_t seq)
{
	struct op o = op_of(t, seq);
	long ret = 0;
	switch (o.kind) {
	case OP_INS:
		ret = !st->has[o.k[0]];
		st->has[o.k[0]] = 1;
		break;
	case OP_DEL:
		ret = st->has[o.k[0]];
		st->has[o.k[0]] = 0;
		break;
	case OP_MANY:
		for (unsigned j = 0; j < 3; j++) {
			ret += !st->has[o.k[j]];
			st->has[o.k[j]] = 1;
		}
		break;
	default:
		ret = !st->known[o.text];
		st->known[o.text] = 1;
		break;
	}
	return ret;
}

/* ------------------------------------------------------------------ */
/* the child                                                           */
/* ------------------------------------------------------------------ */

static void child_fail(int rc, const char *what)
{
	int z = 0;
	if (atomic_compare_exchange_strong(&SH->child_err, &z, rc ? rc : -1000))
		snprintf(SH->msg, sizeof(SH->msg), "%s: %d (%s)", what, rc, cidstore_strerror(rc));
}

struct wr_arg {
	cidstore_t *s;
	unsigned t;
	uint64_t first;
};

static void *writer(void *p)
{
	struct wr_arg *a = p;
	static _Thread_local char text[5000];
	uint64_t n = 0;
	for (uint64_t seq = a->first;; seq++) {
		struct op o = op_of(a->t, seq);
		long rc;
		if (o.kind == OP_INS || o.kind == OP_DEL) {
			cidstore_triple_t t = TR(o.k[0]);
			rc = o.kind == OP_INS ? cidstore_triple_insert(a->s, &t)
					      : cidstore_triple_delete(a->s, &t);
		} else if (o.kind == OP_MANY) {
			cidstore_triple_t b[3] = {TR(o.k[0]), TR(o.k[1]), TR(o.k[2])};
			rc = cidstore_triple_insert_many(a->s, b, 3, NULL);
		} else {
			size_t len = text_of(a->t, o.text, text);
			rc = cidstore_term_put(a->s, text, len, NULL);
		}
		if (rc < 0) {
			child_fail((int)rc, "write");
			return NULL;
		}
		if (n >= CR_MAXACK) {
			child_fail(0, "acknowledgement region full");
			return NULL;
		}
		SH->rec[a->t][n] = (struct ack){a->t, (int32_t)rc, seq};
		atomic_store_explicit(&SH->count[a->t], ++n, memory_order_release);
	}
}

static void child_main(cidstore_durability_t d)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = spath;
	o.durability = d;
	o.segment_bytes = 64 * 1024;
	o.checkpoint_wal_bytes = 256 * 1024;
	o.ring_records = 256;
	o.sync_interval_ms = 5;
	o.seed = 7;
	cidstore_t *s = NULL;
	int rc = cidstore_open(&o, &s);
	if (rc) {
		child_fail(rc, "open");
		_exit(2);
	}
	pthread_t th[CR_THREADS];
	struct wr_arg a[CR_THREADS];
	for (unsigned t = 0; t < CR_THREADS; t++) {
		a[t] = (struct wr_arg){s, t, next_seq[t]};
		if (pthread_create(&th[t], NULL, writer, &a[t]) != 0) {
			child_fail(CIDSTORE_ENOMEM, "pthread_create");
			_exit(2);
		}
	}
	for (;;) {
		usleep(15 * 1000);
		rc = cidstore_checkpoint(s);
		if (rc) {
			child_fail(rc, "checkpoint");
			_exit(2);
		}
	}
}

/* ------------------------------------------------------------------ */
/* the parent                                                          */
/* ------------------------------------------------------------------ */

struct collect {
	uint8_t got[NT];
	unsigned dup, foreign;
};

static int collect_cb(const cidstore_triple_t *t, void *ctx)
{
	struct collect *c = ctx;
	long k = decode(t);
	if (k < 0)
		c->foreign++;
	else if (c->got[k]++)
		c->dup++;
	return 0;
}

/* Every pattern, every choice of bound terms (one past the alphabet: a
 * term never stored), match and count, against has[]. */
static void check_patterns(cidstore_t *st, const uint8_t *has, const char *what, unsigned round)
{
	for (int mask = 0; mask < 8; mask++) {
		int ns = mask & 4 ? NS + 1 : 1, np = mask & 2 ? NP + 1 : 1, no = mask & 1 ? NO + 1 : 1;
		for (int a = 0; a < ns; a++)
			for (int b = 0; b < np; b++)
				for (int c = 0; c < no; c++) {
					cid_t s = term(TAG_S, (unsigned)a), p = term(TAG_P, (unsigned)b),
					      o = term(TAG_O, (unsigned)c);
					const cid_t *ps = mask & 4 ? &s : NULL, *pp = mask & 2 ? &p : NULL,
						    *po = mask & 1 ? &o : NULL;
					struct collect col = {0};
					int rc = cidstore_triple_match(st, ps, pp, po, collect_cb, &col);
					ck_assert_msg(rc == 0 && col.dup == 0 && col.foreign == 0,
						      "%s round %u: pattern %d (%d %d %d): rc %d, %u twice, "
						      "%u foreign",
						      what, round, mask, a, b, c, rc, col.dup, col.foreign);
					long want = 0;
					for (unsigned k = 0; k < NT; k++) {
						unsigned ko = k % NO, kp = (k / NO) % NP, ks = k / (NO * NP);
						bool m = (!ps || ks == (unsigned)a) &&
							 (!pp || kp == (unsigned)b) &&
							 (!po || ko == (unsigned)c);
						bool exp = m && has[k];
						want += exp;
						ck_assert_msg(col.got[k] == exp,
							      "%s round %u: pattern %d (%d %d %d): triple %u "
							      "%s",
							      what, round, mask, a, b, c, k,
							      exp ? "missing" : "delivered, not stored");
					}
					long cnt = cidstore_triple_count(st, ps, pp, po);
					ck_assert_msg(cnt == want, "%s round %u: count %d (%d %d %d) = %ld, "
								   "want %ld",
						      what, round, mask, a, b, c, cnt, want);
				}
	}
}

static void setup(void)
{
	tmpdir_make(tdir, sizeof(tdir), "cidstore-triple-crash");
	snprintf(spath, sizeof(spath), "%s/store", tdir);
	SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(SH != MAP_FAILED);
	memset(model, 0, sizeof(model));
	memset(next_seq, 0, sizeof(next_seq));
}

static void teardown(void)
{
	munmap(SH, sizeof(*SH));
	tmpdir_remove(tdir);
}

static void verify(const char *what, unsigned round, bool prefix_any)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = spath;
	o.durability = CIDSTORE_DURABILITY_SYNC;
	o.segment_bytes = 64 * 1024;
	o.checkpoint_wal_bytes = 0;
	cidstore_t *s = NULL;
	int rc = cidstore_open(&o, &s);
	ck_assert_msg(rc == 0, "%s round %u: reopen: %d (%s)", what, round, rc,
		      cidstore_strerror(rc));
	/* nothing half-present; what is there */
	uint8_t has[NT];
	for (unsigned k = 0; k < NT; k++) {
		cidstore_triple_t t = TR(k);
		cid_t sp = tri_key2(&t.s, &t.p, TRI_R_SP), os = tri_key2(&t.o, &t.s, TRI_R_OS),
		      po = tri_key2(&t.p, &t.o, TRI_R_PO);
		int a = cidstore_contains(s, &sp, &t.o), b = cidstore_contains(s, &os, &t.p),
		    c = cidstore_contains(s, &po, &t.s);
		ck_assert_msg(a == b && b == c, "%s round %u: triple %u half-present: SP %d OS %d PO %d",
			      what, round, k, a, b, c);
		has[k] = (uint8_t)a;
	}
	static char text[5000], got[5000];
	for (unsigned t = 0; t < CR_THREADS; t++) {
		uint64_t n = atomic_load_explicit(&SH->count[t], memory_order_acquire);
		struct tstate st = model[t];
		for (uint64_t i = 0; i < n; i++) {
			const struct ack *a = &SH->rec[t][i];
			ck_assert_msg(a->tid == t && a->seq == next_seq[t] + i,
				      "%s round %u thread %u: ack %llu out of order", what, round, t,
				      (unsigned long long)i);
			long want = model_apply(&st, t, a->seq);
			ck_assert_msg(a->ret == want,
				      "%s round %u thread %u seq %llu: returned %d, model %ld", what,
				      round, t, (unsigned long long)a->seq, a->ret, want);
		}
		struct tstate plus1 = st;
		model_apply(&plus1, t, next_seq[t] + n);
		struct tstate gotst = {0};
		for (unsigned k = t; k < NT; k += CR_THREADS)
			gotst.has[k] = has[k];
		/* terms: present with the exact text, or unknown */
		for (unsigned id = 0; id < NTEXT; id++) {
			size_t len = text_of(t, id, text);
			cid_t c;
			cid_sha256(text, len, &c);
			long r = cidstore_term_get(s, &c, got, sizeof(got));
			ck_assert_msg(r == 0 || r == (long)len,
				      "%s round %u thread %u text %u: %ld (length %zu)", what, round, t,
				      id, r, len);
			if (r == (long)len && len > 0)
				ck_assert_msg(memcmp(got, text, len) == 0,
					      "%s round %u: text %u/%u differs", what, round, t, id);
			/* an empty text is known iff its chunk 0 is stored */
			cid_t key = tri_key1(&c, TRI_R_TERM);
			gotst.known[id] = cidstore_lookup(s, &key, NULL, 0) > 0;
		}
		bool ok = memcmp(&gotst, &st, sizeof(st)) == 0 ||
			  memcmp(&gotst, &plus1, sizeof(st)) == 0;
		uint64_t matched = n;
		if (!ok && prefix_any) {
			struct tstate p = model[t];
			for (uint64_t i = 0; i <= n && !ok; i++) {
				if (memcmp(&gotst, &p, sizeof(p)) == 0) {
					ok = true;
					matched = i;
				}
				model_apply(&p, t, next_seq[t] + i);
			}
		}
		ck_assert_msg(ok,
			      "%s round %u thread %u: the store is not the state after its %llu "
			      "acknowledged operations%s",
			      what, round, t, (unsigned long long)n,
			      prefix_any ? " nor any prefix" : " nor that plus the one in flight");
		if (prefix_any && matched < n)
			fprintf(stderr, "  thread %u: %llu of %llu acknowledged ASYNC ops survived\n", t,
				(unsigned long long)matched, (unsigned long long)n);
		model[t] = gotst;
		next_seq[t] += n + 1; /* after the one in flight, applied or not */
	}
	check_patterns(s, has, what, round);
	uint64_t cleaned = 0;
	rc = triple_maintain(s, &cleaned);
	ck_assert_msg(rc == 0, "%s round %u: triple_maintain: %d", what, round, rc);
	check_patterns(s, has, "after the sweep", round);
	ck_assert_int_eq(cidstore_close(s), 0);
}

static void kill_round(cidstore_durability_t d, unsigned round, uint64_t *rng, const char *what)
{
	for (unsigned t = 0; t < CR_THREADS; t++)
		atomic_store(&SH->count[t], 0);
	atomic_store(&SH->child_err, 0);
	SH->msg[0] = 0;
	/* the moment: after a random number of acknowledgements (SYNC 16..400,
	 * ASYNC 0..400: maybe during open; a slow sanitizer build gets as far
	 * as a release one), then a random 0..40 ms more */
	uint64_t r = mix64((*rng)++);
	uint64_t target = d == CIDSTORE_DURABILITY_SYNC ? 16 + r % 385 : r % 401;
	unsigned ms = (unsigned)((r >> 32) % 41);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		child_main(d);
	for (unsigned waited = 0; waited < 30000; waited++) {
		uint64_t acked = 0;
		for (unsigned t = 0; t < CR_THREADS; t++)
			acked += atomic_load(&SH->count[t]);
		if (acked >= target || atomic_load(&SH->child_err))
			break;
		usleep(1000);
	}
	usleep(ms * 1000u);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		      "%s round %u: child ended on its own (status %d): %s", what, round, status,
		      SH->msg);
	ck_assert_msg(atomic_load(&SH->child_err) == 0, "%s round %u: child error: %s", what,
		      round, SH->msg);
	uint64_t acked = 0;
	for (unsigned t = 0; t < CR_THREADS; t++)
		acked += atomic_load(&SH->count[t]);
	fprintf(stderr, "%s round %u: SIGKILL %u ms after %llu acknowledgements: %llu acknowledged\n",
		what, round, ms, (unsigned long long)target, (unsigned long long)acked);
	verify(what, round, d == CIDSTORE_DURABILITY_ASYNC);
}

START_TEST(triple_kill_rounds)
{
	const char *e = getenv("CIDSTORE_CRASH_SEED");
	uint64_t rng = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	fprintf(stderr, "test_triple_crash: seed %llu (CIDSTORE_CRASH_SEED=%llu reproduces)\n",
		(unsigned long long)rng, (unsigned long long)rng);
	op_seed = mix64(rng);
	for (unsigned r = 0; r < CR_ROUNDS; r++)
		kill_round(CIDSTORE_DURABILITY_SYNC, r, &rng, "SYNC");
	uint64_t total = 0;
	for (unsigned t = 0; t < CR_THREADS; t++)
		total += next_seq[t];
	ck_assert_msg(total > 4 * CR_THREADS * (uint64_t)CR_ROUNDS,
		      "the children acknowledged almost nothing (%llu ops)", (unsigned long long)total);
	kill_round(CIDSTORE_DURABILITY_ASYNC, 0, &rng, "ASYNC");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("triple_crash");
	TCase *tc = tcase_create("kill");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, triple_kill_rounds);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
