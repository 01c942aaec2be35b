/*
 * test_retune_crash.c — a retune from ASYNC to SYNC under load, then a
 * real SIGKILL: every write acknowledged up to the kill is in the store.
 *
 * Each round forks a child that opens a fresh store directory with
 * durability ASYNC (sync_interval_ms 1000, no automatic checkpoints, no
 * maintenance: nothing else syncs the log) and runs 32 writer threads.
 * Thread t runs a deterministic sequence op(t, seq): an insert of the new
 * pair (K(t, seq % 16), V(t, seq)), and every fifth operation a
 * delete_value of the pair the operation before it inserted.  After each
 * call returns, the thread publishes its count of completed operations in
 * a MAP_SHARED region (release).  The child's main thread lets the
 * writers run under ASYNC for a while, calls cidstore_retune with
 * durability SYNC (the writers keep going: their writes started before,
 * during and after the call), and sets `retuned` once the call returned.
 * The parent waits for `retuned`, lets the writers run a random 5..100 ms
 * longer under SYNC, sends SIGKILL, reopens the directory and checks each
 * thread: with n completed operations its keys hold exactly the state
 * after n operations or after n + 1 (the one in flight).
 *
 * Why this is the promise: cidstore_retune(ASYNC -> SYNC) returns only when
 * every write that ran under ASYNC has its record in the log and one
 * fdatasync covers it, and every later write waits for its own fdatasync.
 * So at the kill, every completed write — before, during or after the
 * retune — is on disk.  Without the retune's sync and SYNC waits, the
 * records still in the ring at the kill (ASYNC acknowledges a write once
 * its record is in the ring; the flusher writes them ~1 ms later) would be
 * missing although acknowledged.  (A SIGKILL keeps what reached the page
 * cache, so this checks the record reached the kernel; the fdatasync
 * itself is pinned by test_retune's durable-LSN check.)
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cidstore.h"
#include "test_support.h"

#ifdef CIDSTORE_TSAN
#define RC_ROUNDS 2
#else
#define RC_ROUNDS 5
#endif

#define RC_THREADS 32
#define RC_KEYS 16
#define RC_MAXOPS (1u << 20) /* per thread and round, far above what runs */

struct shared {
	_Atomic uint64_t count[RC_THREADS]; /* completed operations */
	_Atomic uint64_t at_retune[RC_THREADS]; /* counts when the retune returned */
	_Atomic int retuned;
	_Atomic int child_err;
	char msg[160];
};

static struct shared *SH;
static char tdir[256];
static char spath[300];

static cid_t K(unsigned t, unsigned k)
{
	cid_t c = {{0x72657475ull << 16 | t, k, 0x5151 * (uint64_t)t + 3, ~(uint64_t)k}};
	return c;
}

static cid_t V(unsigned t, uint64_t seq)
{
	cid_t c = {{0x76616cull << 16 | t, seq, mix64(seq ^ ((uint64_t)t << 40)), 11}};
	return c;
}

/* op(t, seq): seq % 5 == 4 deletes the pair op seq - 1 inserted; every other
 * op inserts its own new pair. */
static bool is_delete(uint64_t seq)
{
	return seq % 5 == 4;
}

/* Whether pair seq is present after the first n operations. */
static bool present_after(uint64_t seq, uint64_t n)
{
	if (is_delete(seq) || seq >= n)
		return false;
	return !(is_delete(seq + 1) && seq + 1 < n);
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
};

static void *writer(void *p)
{
	struct wr_arg *a = p;
	for (uint64_t seq = 0; seq < RC_MAXOPS; seq++) {
		long rc;
		if (is_delete(seq)) {
			cid_t k = K(a->t, (unsigned)((seq - 1) % RC_KEYS)), v = V(a->t, seq - 1);
			rc = cidstore_delete_value(a->s, &k, &v);
		} else {
			cid_t k = K(a->t, (unsigned)(seq % RC_KEYS)), v = V(a->t, seq);
			rc = cidstore_insert(a->s, &k, &v);
		}
		if (rc != 1) {
			child_fail((int)rc, is_delete(seq) ? "delete_value" : "insert");
			return NULL;
		}
		/* release: the count says the call returned */
		atomic_store_explicit(&SH->count[a->t], seq + 1, memory_order_release);
	}
	child_fail(0, "RC_MAXOPS reached");
	return NULL;
}

/* Runs in the forked child; never returns. */
static void child_main(unsigned async_ms)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = spath;
	o.durability = CIDSTORE_DURABILITY_ASYNC;
	o.sync_interval_ms = 1000;
	o.checkpoint_wal_bytes = 0;
	o.maint_interval_ms = 0;
	o.segment_bytes = 4 << 20;
	o.seed = 7;
	cidstore_t *s = NULL;
	int rc = cidstore_open(&o, &s);
	if (rc) {
		child_fail(rc, "open");
		_exit(2);
	}
	pthread_t th[RC_THREADS];
	struct wr_arg a[RC_THREADS];
	for (unsigned t = 0; t < RC_THREADS; t++) {
		a[t] = (struct wr_arg){s, t};
		if (pthread_create(&th[t], NULL, writer, &a[t]) != 0) {
			child_fail(CIDSTORE_ENOMEM, "pthread_create");
			_exit(2);
		}
	}
	usleep(async_ms * 1000u);
	cidstore_options_t n;
	rc = cidstore_get_options(s, &n);
	if (rc) {
		child_fail(rc, "get_options");
		_exit(2);
	}
	n.durability = CIDSTORE_DURABILITY_SYNC;
	rc = cidstore_retune(s, &n);
	if (rc) {
		child_fail(rc, "retune");
		_exit(2);
	}
	for (unsigned t = 0; t < RC_THREADS; t++)
		atomic_store(&SH->at_retune[t], atomic_load(&SH->count[t]));
	atomic_store_explicit(&SH->retuned, 1, memory_order_release);
	for (;;)
		pause(); /* until killed */
}

/* ------------------------------------------------------------------ */
/* the parent                                                          */
/* ------------------------------------------------------------------ */

static void setup(void)
{
	tmpdir_make(tdir, sizeof(tdir), "cidstore-retune-crash");
	SH = mmap(NULL, sizeof(*SH), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(SH != MAP_FAILED);
}

static void teardown(void)
{
	munmap(SH, sizeof(*SH));
	tmpdir_remove(tdir);
}

/* present[t][seq]: what the reopened store holds */
struct found {
	uint8_t *present[RC_THREADS];
	uint64_t lim;
	uint64_t foreign;
};

static int scan_cb(const cid_t *key, const cid_t *vals, size_t n, void *ctx)
{
	struct found *f = ctx;
	unsigned t = (unsigned)(key->w[0] & 0xffff);
	if ((key->w[0] >> 16) != 0x72657475ull || t >= RC_THREADS) {
		f->foreign++;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t seq = vals[i].w[1];
		cid_t want = V(t, seq);
		if (seq >= f->lim || memcmp(&want, &vals[i], sizeof(want)) != 0 ||
		    key->w[1] != seq % RC_KEYS) {
			f->foreign++;
			continue;
		}
		f->present[t][seq] = 1;
	}
	return 0;
}

static void verify(unsigned round)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.dir = spath;
	o.maint_interval_ms = 0;
	cidstore_t *s = NULL;
	int rc = cidstore_open(&o, &s);
	ck_assert_msg(rc == 0, "round %u: reopen after the kill: %d (%s)", round, rc,
		      cidstore_strerror(rc));
	struct found f = {.lim = 0};
	for (unsigned t = 0; t < RC_THREADS; t++) {
		uint64_t n = atomic_load_explicit(&SH->count[t], memory_order_acquire);
		if (n + 2 > f.lim)
			f.lim = n + 2;
	}
	for (unsigned t = 0; t < RC_THREADS; t++) {
		f.present[t] = calloc(f.lim, 1);
		ck_assert_ptr_nonnull(f.present[t]);
	}
	ck_assert_int_eq(cidstore_scan(s, scan_cb, &f), 0);
	ck_assert_msg(f.foreign == 0, "round %u: %llu pairs nobody wrote", round,
		      (unsigned long long)f.foreign);
	uint64_t acked = 0, before = 0;
	for (unsigned t = 0; t < RC_THREADS; t++) {
		uint64_t n = atomic_load_explicit(&SH->count[t], memory_order_acquire);
		acked += n;
		before += atomic_load(&SH->at_retune[t]);
		bool ok[2] = {true, true}; /* after n, after n + 1 */
		uint64_t first_bad = UINT64_MAX;
		for (uint64_t seq = 0; seq < f.lim; seq++) {
			bool got = f.present[t][seq];
			for (int j = 0; j < 2; j++) {
				if (got != present_after(seq, n + (uint64_t)j)) {
					if (ok[j] && j == 0 && first_bad == UINT64_MAX)
						first_bad = seq;
					ok[j] = false;
				}
			}
		}
		ck_assert_msg(ok[0] || ok[1],
			      "round %u thread %u: the store is not the state after its %llu "
			      "acknowledged operations (nor + the one in flight): pair %llu is %s",
			      round, t, (unsigned long long)n, (unsigned long long)first_bad,
			      first_bad < f.lim && f.present[t][first_bad] ? "there" : "missing");
		free(f.present[t]);
	}
	fprintf(stderr,
		"round %u: %llu operations acknowledged, %llu of them by the time the retune "
		"returned; all there\n",
		round, (unsigned long long)acked, (unsigned long long)before);
	ck_assert_msg(acked > before, "round %u: no write after the retune", round);
	ck_assert_int_eq(cidstore_close(s), 0);
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t get_seed(void)
{
	const char *e = getenv("CIDSTORE_CRASH_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	fprintf(stderr, "test_retune_crash: seed %llu (CIDSTORE_CRASH_SEED=%llu reproduces)\n",
		(unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

START_TEST(async_to_sync_then_kill)
{
	uint64_t rng = get_seed();
	for (unsigned round = 0; round < RC_ROUNDS; round++) {
		snprintf(spath, sizeof(spath), "%s/store%u", tdir, round);
		memset(SH, 0, sizeof(*SH));
		unsigned async_ms = 20 + (unsigned)(mix64(rng++) % 80);
		unsigned sync_ms = 5 + (unsigned)(mix64(rng++) % 96);
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			child_main(async_ms);
		/* wait for the retune to return (or the child to fail) */
		double t0 = mono_s();
		while (!atomic_load_explicit(&SH->retuned, memory_order_acquire) &&
		       !atomic_load(&SH->child_err) && mono_s() - t0 < 60)
			usleep(1000);
		ck_assert_msg(atomic_load(&SH->retuned), "round %u: the retune did not return: %s",
			      round, SH->msg);
		usleep(sync_ms * 1000u);
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		int status;
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			      "round %u: child ended on its own (status %d): %s", round, status,
			      SH->msg);
		ck_assert_msg(atomic_load(&SH->child_err) == 0, "round %u: child error: %s", round,
			      SH->msg);
		fprintf(stderr, "round %u: ASYNC %u ms, retune, SYNC %u ms, SIGKILL\n", round,
			async_ms, sync_ms);
		verify(round);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("retune_crash");
	TCase *tc = tcase_create("retune_crash");
	tcase_set_timeout(tc, 300);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, async_to_sync_then_kill);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(suite());
}
