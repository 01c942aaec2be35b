/*
 * test_crash.c — a crash test that really kills.
 *
 * Each round forks a child that opens the store directory (SYNC, small
 * segments, automatic checkpoints on) and runs 4 writer threads; thread t
 * owns keys K(t, 0..CR_KEYS-1) and runs a deterministic sequence of
 * operations op(t, seq) — inserts (often spilling a key past 2 values),
 * delete_value and delete_key.  After a call returns, the thread writes an
 * acknowledgement record (thread id, seq, result) into a MAP_SHARED
 * anonymous region and then publishes its count with an atomic store
 * (release).  The child's main thread calls cidstore_checkpoint every few
 * milliseconds.  The parent sleeps a random 20..300 ms (seeded; the seed is
 * printed; CIDSTORE_CRASH_SEED overrides it), sends SIGKILL, waits, reopens
 * the directory and checks every thread: with n acknowledged operations
 * the thread's keys hold exactly the state after its operations up to n
 * (every acknowledged insert and delete reflected) or up to n + 1 (the one
 * in flight): never anything beyond it, never less.  The parent keeps a
 * model of each thread's keys (the state it found) and the rounds continue
 * on the SAME directory with continuing sequence numbers.
 *
 * The acknowledged results are checked too: the return value of each
 * acknowledged operation must be what the model predicts (1 / 0 for insert
 * and delete_value, the value count for delete_key).
 *
 * Then an ASYNC round killed at random (a per-thread prefix, not
 * necessarily everything acknowledged), and an ASYNC round that closes
 * cleanly: then nothing is lost.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cidstore.h"
#include "test_support.h"

#ifdef CIDSTORE_TSAN
#define CR_ROUNDS 3
#else
#define CR_ROUNDS 8
#endif

#define CR_THREADS 4
#define CR_KEYS 8
#define CR_VALS 7
#define CR_MAXACK (1u << 20) /* acknowledgement records per thread */

struct ack {
	uint32_t tid;
	uint32_t ret; /* the call's return value (>= 0) */
	uint64_t seq;
};

struct shared {
	_Atomic uint64_t count[CR_THREADS]; /* published acknowledgements */
	_Atomic int child_err;              /* first error in the child */
	_Atomic int opened;                 /* the child's open returned */
	char msg[160];
	struct ack rec[CR_THREADS][CR_MAXACK];
};

static struct shared *SH;
static char tdir[256];
static char spath[300];

/* the parent's model: per thread, which (key, value) pairs exist */
struct tstate {
	uint8_t has[CR_KEYS][CR_VALS];
};
static struct tstate model[CR_THREADS];
static uint64_t next_seq[CR_THREADS]; /* first seq of the next round */
static uint64_t op_seed;

static cid_t K(unsigned t, unsigned k)
{
	cid_t c = {{0x637261736800000ull + t, k, 0x1111 * (uint64_t)t, ~(uint64_t)k}};
	return c;
}

static cid_t V(unsigned v)
{
	cid_t c = {{0x76616c7565ull, v, v * 0x9e3779b97f4a7c15ull, 7}};
	return c;
}

enum { OP_INS, OP_DELV, OP_DELK };

static void op_of(unsigned t, uint64_t seq, int *kind, unsigned *k, unsigned *v)
{
	uint64_t h = mix64(op_seed ^ ((uint64_t)t << 48) ^ (seq * 0x9e3779b97f4a7c15ull));
	*k = (unsigned)(h % CR_KEYS);
	*v = (unsigned)((h >> 8) % CR_VALS);
	unsigned r = (unsigned)((h >> 32) % 20);
	*kind = r < 12 ? OP_INS : r < 19 ? OP_DELV : OP_DELK;
}

/* Applies op (t, seq) to st; returns what the store call returns. */
static long model_apply(struct tstate *st, unsigned t, uint64_t seq)
{
	int kind;
	unsigned k, v;
	op_of(t, seq, &kind, &k, &v);
	long ret = 0;
	switch (kind) {
	case OP_INS:
		ret = !st->has[k][v];
		st->has[k][v] = 1;
		break;
	case OP_DELV:
		ret = st->has[k][v];
		st->has[k][v] = 0;
		break;
	default:
		for (unsigned i = 0; i < CR_VALS; i++)
			ret += st->has[k][i];
		memset(st->has[k], 0, sizeof(st->has[k]));
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
	uint64_t first, last; /* seqs [first, last) */
};

static void *writer(void *p)
{
	struct wr_arg *a = p;
	uint64_t n = atomic_load_explicit(&SH->count[a->t], memory_order_relaxed);
	for (uint64_t seq = a->first; seq < a->last; seq++) {
		int kind;
		unsigned k, v;
		op_of(a->t, seq, &kind, &k, &v);
		cid_t key = K(a->t, k), val = V(v);
		long rc = kind == OP_INS    ? cidstore_insert(a->s, &key, &val)
			  : kind == OP_DELV ? cidstore_delete_value(a->s, &key, &val)
					    : cidstore_delete_key(a->s, &key);
		if (rc < 0) {
			child_fail((int)rc, "write");
			return NULL;
		}
		if (n >= CR_MAXACK) {
			child_fail(0, "acknowledgement region full");
			return NULL;
		}
		SH->rec[a->t][n] = (struct ack){a->t, (uint32_t)rc, seq};
		/* release: the record above is written before the count says so */
		atomic_store_explicit(&SH->count[a->t], ++n, memory_order_release);
	}
	return NULL;
}

/* Runs in the forked child; never returns. */
static void child_main(cidstore_durability_t d, uint64_t ops_per_thread, bool clean_close)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = spath;
	o.durability = d;
	o.segment_bytes = 32 * 1024;          /* rotations */
	o.checkpoint_wal_bytes = 128 * 1024;  /* automatic checkpoints too */
	o.ring_records = 256;                 /* backpressure happens */
	o.sync_interval_ms = 5;
	o.seed = 99;
	cidstore_t *s = NULL;
	int rc = cidstore_open(&o, &s);
	atomic_store(&SH->opened, 1);
	if (rc) {
		child_fail(rc, "open");
		_exit(2);
	}
	pthread_t th[CR_THREADS];
	struct wr_arg a[CR_THREADS];
	for (unsigned t = 0; t < CR_THREADS; t++) {
		a[t] = (struct wr_arg){s, t, next_seq[t], next_seq[t] + ops_per_thread};
		if (pthread_create(&th[t], NULL, writer, &a[t]) != 0) {
			child_fail(CIDSTORE_ENOMEM, "pthread_create");
			_exit(2);
		}
	}
	if (!clean_close) {
		/* checkpoints until killed */
		for (;;) {
			usleep(15 * 1000);
			rc = cidstore_checkpoint(s);
			if (rc) {
				child_fail(rc, "checkpoint");
				_exit(2);
			}
		}
	}
	for (unsigned t = 0; t < CR_THREADS; t++)
		pthread_join(th[t], NULL);
	rc = cidstore_checkpoint(s);
	if (rc)
		child_fail(rc, "checkpoint");
	/* more writes after the checkpoint: they live only in the log */
	for (unsigned t = 0; t < CR_THREADS; t++) {
		a[t].first = a[t].last;
		a[t].last += ops_per_thread / 4;
		writer(&a[t]);
	}
	rc = cidstore_close(s);
	if (rc)
		child_fail(rc, "close");
	_exit(atomic_load(&SH->child_err) ? 2 : 0);
}

/* ------------------------------------------------------------------ */
/* the parent                                                          */
/* ------------------------------------------------------------------ */

static void setup(void)
{
	tmpdir_make(tdir, sizeof(tdir), "cidstore-crash");
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

static void shared_reset(void)
{
	for (unsigned t = 0; t < CR_THREADS; t++)
		atomic_store(&SH->count[t], 0);
	atomic_store(&SH->child_err, 0);
	atomic_store(&SH->opened, 0);
	SH->msg[0] = 0;
}

/* Reads thread t's keys from the store. */
static void read_state(cidstore_t *s, unsigned t, struct tstate *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned k = 0; k < CR_KEYS; k++) {
		cid_t key = K(t, k), out[CR_VALS + 1];
		long n = cidstore_lookup(s, &key, out, CR_VALS + 1);
		ck_assert_int_ge(n, 0);
		ck_assert_msg(n <= CR_VALS, "thread %u key %u: %ld values", t, k, n);
		for (long i = 0; i < n; i++) {
			unsigned v = 0;
			for (; v < CR_VALS; v++) {
				cid_t want = V(v);
				if (memcmp(&want, &out[i], sizeof(want)) == 0)
					break;
			}
			ck_assert_msg(v < CR_VALS, "thread %u key %u: a value nobody wrote", t, k);
			st->has[k][v] = 1;
		}
	}
}

struct count_ctx {
	uint64_t pairs;
};

static int count_cb(const cid_t *key, const cid_t *vals, size_t n, void *ctx)
{
	(void)vals;
	struct count_ctx *c = ctx;
	bool ours = false;
	for (unsigned t = 0; t < CR_THREADS && !ours; t++)
		for (unsigned k = 0; k < CR_KEYS && !ours; k++) {
			cid_t kk = K(t, k);
			ours = memcmp(&kk, key, sizeof(kk)) == 0;
		}
	if (!ours)
		return 1;
	c->pairs += n;
	return 0;
}

/* After a child ended: reopen, check every thread, update the model.
 * exact: nothing may be missing (clean close).  prefix_any: ASYNC kill —
 * any prefix of the thread's sequence up to n + 1 is acceptable. */
static void verify(const char *what, unsigned round, bool exact, bool prefix_any)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = spath;
	o.durability = CIDSTORE_DURABILITY_SYNC;
	o.segment_bytes = 32 * 1024;
	o.checkpoint_wal_bytes = 0;
	cidstore_t *s = NULL;
	int rc = cidstore_open(&o, &s);
	ck_assert_msg(rc == 0, "%s round %u: reopen after the kill: %d (%s)", what, round, rc,
		      cidstore_strerror(rc));
	uint64_t total_pairs = 0;
	for (unsigned t = 0; t < CR_THREADS; t++) {
		uint64_t n = atomic_load_explicit(&SH->count[t], memory_order_acquire);
		struct tstate st = model[t], got;
		/* the acknowledgement records: in order, results as predicted */
		for (uint64_t i = 0; i < n; i++) {
			const struct ack *a = &SH->rec[t][i];
			ck_assert_msg(a->tid == t && a->seq == next_seq[t] + i,
				      "%s round %u thread %u: ack %llu is (%u, %llu)", what, round, t,
				      (unsigned long long)i, a->tid, (unsigned long long)a->seq);
			long want = model_apply(&st, t, a->seq);
			ck_assert_msg((long)a->ret == want,
				      "%s round %u thread %u seq %llu: returned %u, model says %ld",
				      what, round, t, (unsigned long long)a->seq, a->ret, want);
		}
		read_state(s, t, &got);
		for (unsigned k = 0; k < CR_KEYS; k++) {
			for (unsigned v = 0; v < CR_VALS; v++)
				total_pairs += got.has[k][v];
		}
		struct tstate plus1 = st;
		model_apply(&plus1, t, next_seq[t] + n);
		bool ok_n = memcmp(&got, &st, sizeof(got)) == 0;
		bool ok_n1 = memcmp(&got, &plus1, sizeof(got)) == 0;
		bool ok = exact ? ok_n : ok_n || ok_n1;
		uint64_t matched = n;
		if (!ok && prefix_any) {
			/* ASYNC: some shorter prefix */
			struct tstate p = model[t];
			for (uint64_t i = 0; i <= n && !ok; i++) {
				if (memcmp(&got, &p, sizeof(got)) == 0) {
					ok = true;
					matched = i;
				}
				model_apply(&p, t, next_seq[t] + i);
			}
		}
		ck_assert_msg(ok,
			      "%s round %u thread %u: the recovered keys are not the state after its "
			      "%llu acknowledged operations%s (seqs %llu..)",
			      what, round, t, (unsigned long long)n,
			      exact ? "" : prefix_any ? " nor any prefix" : " nor that plus the one in flight",
			      (unsigned long long)next_seq[t]);
		if (prefix_any && matched < n)
			fprintf(stderr, "  thread %u: %llu of %llu acknowledged ASYNC ops survived\n", t,
				(unsigned long long)matched, (unsigned long long)n);
		model[t] = got;
		/* seqs continue after the one in flight (applied or not) */
		next_seq[t] += n + (exact ? 0 : 1);
	}
	struct count_ctx cc = {0};
	ck_assert_msg(cidstore_scan(s, count_cb, &cc) == 0, "a key no thread owns is in the store");
	ck_assert_uint_eq(cc.pairs, total_pairs);
	ck_assert_int_eq(cidstore_close(s), 0);
}

static void kill_round(cidstore_durability_t d, unsigned round, uint64_t *rng, const char *what)
{
	shared_reset();
	unsigned ms = 20 + (unsigned)(mix64((*rng)++) % 281); /* 20..300 */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		child_main(d, UINT64_MAX / 4, false);
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
	fprintf(stderr, "%s round %u: SIGKILL after %u ms (open done: %d), %llu ops acknowledged\n",
		what, round, ms, atomic_load(&SH->opened), (unsigned long long)acked);
	verify(what, round, false, d == CIDSTORE_DURABILITY_ASYNC);
}

static uint64_t get_seed(void)
{
	const char *e = getenv("CIDSTORE_CRASH_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	fprintf(stderr, "test_crash: seed %llu (CIDSTORE_CRASH_SEED=%llu reproduces)\n",
		(unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

START_TEST(sync_kill_rounds)
{
	uint64_t rng = get_seed();
	op_seed = mix64(rng);
	for (unsigned r = 0; r < CR_ROUNDS; r++)
		kill_round(CIDSTORE_DURABILITY_SYNC, r, &rng, "SYNC");
	uint64_t total = 0;
	for (unsigned t = 0; t < CR_THREADS; t++)
		total += next_seq[t];
	ck_assert_msg(total > CR_THREADS * (uint64_t)CR_ROUNDS,
		      "the children acknowledged almost nothing (%llu ops)", (unsigned long long)total);
	/* then ASYNC on the same directory: killed, then a clean close */
	kill_round(CIDSTORE_DURABILITY_ASYNC, 0, &rng, "ASYNC kill");
	shared_reset();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		child_main(CIDSTORE_DURABILITY_ASYNC, 1500, true);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "ASYNC clean child: status %d: %s", status, SH->msg);
	uint64_t acked = 0;
	for (unsigned t = 0; t < CR_THREADS; t++)
		acked += atomic_load(&SH->count[t]);
	ck_assert_uint_eq(acked, CR_THREADS * (1500 + 1500 / 4));
	fprintf(stderr, "ASYNC clean close: %llu ops, all must be there\n", (unsigned long long)acked);
	verify("ASYNC clean close", 0, true, false);
	/* and one more SYNC kill on top of it */
	kill_round(CIDSTORE_DURABILITY_SYNC, CR_ROUNDS, &rng, "SYNC");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("crash");
	TCase *tc = tcase_create("crash");
	tcase_set_timeout(tc, 600);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, sync_kill_rounds);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
