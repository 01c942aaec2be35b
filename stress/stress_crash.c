/*
 * stress_crash.c — harness 5: crash loop (DESIGN.md §6: in SYNC mode a call
 * returns after its record is on disk; recovery restores every acknowledged
 * operation and nothing that was never issued).
 *
 * Each round forks a child that opens the store directory (SYNC, small
 * segments, automatic checkpoints every --ckpt-bytes of log, so kills land
 * in rotations and checkpoints too) and runs --threads writer threads.
 * Thread t owns keys t, t + threads, t + 2*threads, ... (--keys in total,
 * values 0..7 per key) and does insert / delete_value / delete_key at
 * random.  Before each call it writes the operation into an ack log in
 * MAP_SHARED memory and publishes "started"; after the call returns it writes
 * the return value and publishes "acked".  The parent SIGKILLs the child at
 * a random moment (uniform in 0..--kill-ms after the child reported the
 * store open; one round in eight kills at a random moment during open and
 * recovery), reopens the store and checks, key by key, against its model:
 *
 *   ACKED-LOST      an acknowledged operation's effect is missing (or a
 *                   key differs from the model where no operation was in
 *                   flight);
 *   INFLIGHT-STATE  a key with an operation in flight at the kill holds
 *                   neither the state before it nor the state after it;
 *   RETURN-VALUE    an acknowledged call returned other than the model
 *                   predicts (the store lost or invented a change earlier);
 *   STRAY-KEYS      the reopened store holds more keys or values than the
 *                   model (a write that was never issued);
 *   IDX-VALID       the recovered index fails idx_valid;
 *   REOPEN          the store does not reopen after a crash.
 * The model then adopts the recovered state and the next round starts.
 * --rounds N rounds (default 20), or until the first failure with --loop.
 */
#include "common.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "index/index.h"
#include "store/store_internal.h"

#define MAXT 64
#define MAXOPS (1u << 16)
#define NVALS 8

enum { OP_INSERT = 1, OP_DELVAL, OP_DELKEY };

struct entry {
	uint32_t key;
	uint8_t op, val;
	int32_t ret;
};

struct shm {
	_Atomic int ready;           /* child: store open */
	_Atomic uint32_t started[MAXT];
	_Atomic uint32_t acked[MAXT];
	struct entry log[MAXT][MAXOPS];
};

static struct {
	unsigned rounds;
	unsigned kill_ms;
	uint64_t ckpt_bytes;
	const char *base;
	char dir[4096];
	struct shm *shm;
	unsigned nt, nkeys;
	uint8_t *model;
} G;

static void h_opt(int c, const char *arg)
{
	switch (c) {
	case 'r':
		G.rounds = (unsigned)parse_u64("rounds", arg);
		break;
	case 'k':
		G.kill_ms = (unsigned)parse_u64("kill-ms", arg);
		break;
	case 'c':
		G.ckpt_bytes = parse_u64("ckpt-bytes", arg);
		break;
	case 'd':
		G.base = arg;
		break;
	}
}
static const struct option extra_opts[] = {
	{"rounds", required_argument, 0, 'r'},
	{"kill-ms", required_argument, 0, 'k'},
	{"ckpt-bytes", required_argument, 0, 'c'},
	{"dir", required_argument, 0, 'd'},
	{0, 0, 0, 0},
};

static inline cid_t key_of(uint32_t k)
{
	return cid_make(1, 0, k);
}
static inline cid_t val_of(uint32_t k, unsigned v)
{
	return cid_make(2, k, v);
}

static void options(cidstore_options_t *opt, uint64_t seed)
{
	cidstore_options_init(opt);
	opt->dir = G.dir;
	opt->durability = CIDSTORE_DURABILITY_SYNC;
	opt->segment_bytes = 64 << 10;
	opt->checkpoint_wal_bytes = G.ckpt_bytes;
	opt->ring_records = 256;
	opt->recovery_threads = 2;
	opt->seed = seed ? seed : 1;
}

/* ---- child ---- */

static cidstore_t *child_store;

static void *child_writer(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	rng_t rng;
	rng_init(&rng, stress_seed, 0x1000 + t);
	unsigned own = (G.nkeys - t + G.nt - 1) / G.nt;
	for (uint32_t n = 0; n < MAXOPS; n++) {
		struct entry *e = &G.shm->log[t][n];
		unsigned r = rng_below(&rng, 100);
		e->key = t + G.nt * rng_below(&rng, own);
		e->val = (uint8_t)rng_below(&rng, NVALS);
		e->op = r < 60 ? OP_INSERT : r < 92 ? OP_DELVAL : OP_DELKEY;
		/* release: the entry before "started" (the parent reads after the
		 * child is dead, but keep the protocol honest) */
		atomic_store_explicit(&G.shm->started[t], n + 1, memory_order_release);
		cid_t k = key_of(e->key), v = val_of(e->key, e->val);
		long rc = e->op == OP_INSERT ? cidstore_insert(child_store, &k, &v)
			: e->op == OP_DELVAL ? cidstore_delete_value(child_store, &k, &v)
			: cidstore_delete_key(child_store, &k);
		if (rc < 0) {
			fprintf(stderr, "child: operation failed: %s\n", cidstore_strerror((int)rc));
			_exit(3);
		}
		e->ret = (int32_t)rc;
		atomic_store_explicit(&G.shm->acked[t], n + 1, memory_order_release);
	}
	return NULL;
}

static void child_main(uint64_t seed)
{
	cidstore_options_t opt;
	options(&opt, seed);
	int rc = cidstore_open(&opt, &child_store);
	if (rc) {
		fprintf(stderr, "child: open: %s\n", cidstore_strerror(rc));
		_exit(3);
	}
	atomic_store_explicit(&G.shm->ready, 1, memory_order_release);
	pthread_t th[MAXT];
	for (unsigned t = 0; t < G.nt; t++)
		pthread_create(&th[t], NULL, child_writer, (void *)(uintptr_t)t);
	for (unsigned t = 0; t < G.nt; t++)
		pthread_join(th[t], NULL);
	for (;;)
		pause(); /* wait for the kill */
}

/* ---- parent ---- */

static uint8_t apply_op(uint8_t m, const struct entry *e, int *expect_ret)
{
	uint8_t bit = (uint8_t)(1u << e->val);
	switch (e->op) {
	case OP_INSERT:
		*expect_ret = !(m & bit);
		return m | bit;
	case OP_DELVAL:
		*expect_ret = !!(m & bit);
		return m & (uint8_t)~bit;
	default:
		*expect_ret = __builtin_popcount(m);
		return 0;
	}
}

static uint8_t lookup_mask(cidstore_t *s, uint32_t k)
{
	cid_t out[NVALS + 2], key = key_of(k);
	long n = cidstore_lookup(s, &key, out, NVALS + 2);
	stress_check_rc("lookup", n);
	uint8_t m = 0;
	for (long i = 0; i < n && i < NVALS + 2; i++) {
		uint32_t tag, a, b;
		if (!cid_decode(&out[i], &tag, &a, &b) || tag != 2 || a != k || b >= NVALS)
			stress_fail("STRAY-KEYS", "key %u holds a value never written", k);
		m |= (uint8_t)(1u << b);
	}
	if (n != __builtin_popcount(m))
		stress_fail("STRAY-KEYS", "key %u holds %ld values, %d distinct", k, n,
			    __builtin_popcount(m));
	return m;
}

static struct {
	uint64_t acked, inflight, inflight_applied, early_kills, checkpoints, max_round_ops;
} R;

static void verify_round(unsigned round, uint64_t seed)
{
	/* model after every acknowledged operation; the in-flight one aside */
	uint8_t *inflight_after = calloc(G.nkeys, 1);
	uint8_t *has_inflight = calloc(G.nkeys, 1);
	uint64_t round_ops = 0;
	for (unsigned t = 0; t < G.nt; t++) {
		uint32_t a = atomic_load(&G.shm->acked[t]), s = atomic_load(&G.shm->started[t]);
		for (uint32_t i = 0; i < a; i++) {
			const struct entry *e = &G.shm->log[t][i];
			int exp;
			uint8_t nm = apply_op(G.model[e->key], e, &exp);
			if (e->ret != exp)
				stress_fail("RETURN-VALUE", "round %u thread %u op #%u on key %u returned "
					    "%d, model predicts %d", round, t, i, e->key, e->ret, exp);
			G.model[e->key] = nm;
		}
		R.acked += a;
		round_ops += a;
		if (s > a) { /* at most one: the call in progress at the kill */
			const struct entry *e = &G.shm->log[t][a];
			int exp;
			has_inflight[e->key] = 1;
			inflight_after[e->key] = apply_op(G.model[e->key], e, &exp);
			R.inflight++;
		}
	}
	if (round_ops > R.max_round_ops)
		R.max_round_ops = round_ops;
	cidstore_options_t opt;
	options(&opt, seed);
	cidstore_t *s;
	int rc = cidstore_open(&opt, &s);
	if (rc)
		stress_fail("REOPEN", "round %u: reopening %s after the kill failed: %s", round,
			    G.dir, cidstore_strerror(rc));
	uint64_t keys = 0, values = 0;
	for (uint32_t k = 0; k < G.nkeys; k++) {
		uint8_t got = lookup_mask(s, k);
		if (has_inflight[k]) {
			if (got != G.model[k] && got != inflight_after[k])
				stress_fail("INFLIGHT-STATE", "round %u key %u: set 0x%02x after the crash; "
					    "before the in-flight operation 0x%02x, after it 0x%02x",
					    round, k, got, G.model[k], inflight_after[k]);
			if (inflight_after[k] != G.model[k] && got == inflight_after[k])
				R.inflight_applied++;
			G.model[k] = got;
		} else if (got != G.model[k]) {
			stress_fail("ACKED-LOST", "round %u key %u: set 0x%02x after the crash, the "
				    "acknowledged operations leave 0x%02x", round, k, got, G.model[k]);
		}
		keys += got != 0;
		values += (uint64_t)__builtin_popcount(got);
	}
	cidstore_stats_t st;
	cidstore_stats(s, &st);
	if (st.keys != keys || st.values != values)
		stress_fail("STRAY-KEYS", "round %u: store holds %" PRIu64 " keys / %" PRIu64
			    " values, the model %" PRIu64 " / %" PRIu64, round, st.keys, st.values,
			    keys, values);
	rc = idx_valid(s->ix);
	if (rc)
		stress_fail("IDX-VALID", "round %u: idx_valid returned %d", round, rc);
	rc = cidstore_close(s);
	if (rc)
		stress_fail("REOPEN", "round %u: close after verification: %s", round,
			    cidstore_strerror(rc));
	free(inflight_after);
	free(has_inflight);
}

static void rm_dir(const char *dir)
{
	char cmd[4200];
	if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) < (int)sizeof(cmd))
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
}

static int count_ckpts(const char *dir)
{
	char cmd[4200];
	if (snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '^ckpt-.*\\.ckpt$'", dir) >=
	    (int)sizeof(cmd))
		return 0;
	FILE *f = popen(cmd, "r");
	int n = 0;
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = 0;
		pclose(f);
	}
	return n;
}

static int run_one(const struct stress_opts *o)
{
	memset(&R, 0, sizeof(R));
	G.nt = o->threads > MAXT ? MAXT : o->threads;
	G.nkeys = o->keys < G.nt ? G.nt : o->keys;
	G.model = calloc(G.nkeys, 1);
	snprintf(G.dir, sizeof(G.dir), "%s/stress_crash.XXXXXX", G.base);
	if (!mkdtemp(G.dir))
		stress_die("mkdtemp failed");
	printf("%s: store in %s\n", stress_name, G.dir);
	rng_t rng;
	rng_init(&rng, o->seed, 0xc4a5);
	uint64_t t0 = now_ns();
	for (unsigned round = 0; round < G.rounds; round++) {
		atomic_store(&G.shm->ready, 0);
		for (unsigned t = 0; t < MAXT; t++) {
			atomic_store(&G.shm->started[t], 0);
			atomic_store(&G.shm->acked[t], 0);
		}
		bool early = rng_below(&rng, 8) == 0;
		unsigned delay_us = rng_below(&rng, G.kill_ms * 1000 + 1);
		stress_seed = o->seed; /* the child's rng streams derive from it */
		uint64_t child_seed = o->seed + round;
		fflush(stdout);
		fflush(stderr);
		pid_t pid = fork();
		if (pid < 0)
			stress_die("fork failed");
		if (pid == 0) {
			stress_seed = child_seed;
			child_main(o->seed);
		}
		if (early) {
			usleep(delay_us / 20);
			R.early_kills++;
		} else {
			/* wait for the store to be open (or the child to die) */
			for (;;) {
				if (atomic_load(&G.shm->ready))
					break;
				int st;
				if (waitpid(pid, &st, WNOHANG) == pid)
					stress_fail("REOPEN", "round %u: the writer child exited (status "
						    "0x%x) before opening the store", round, st);
				usleep(1000);
			}
			usleep(delay_us);
		}
		kill(pid, SIGKILL);
		int st;
		waitpid(pid, &st, 0);
		if (!WIFSIGNALED(st))
			stress_fail("REOPEN", "round %u: the writer child exited with status 0x%x "
				    "before the kill (an operation failed)", round, st);
		verify_round(round, o->seed);
		if (o->verbose) {
			printf("  round %u: killed after %u us%s\n", round,
			       early ? delay_us / 20 : delay_us, early ? " (during open)" : "");
			fflush(stdout);
		}
		if (o->seconds > 0 && now_ns() - t0 > (uint64_t)(o->seconds * 1e9) &&
		    !o->loop) {
			G.rounds = round + 1;
			break;
		}
	}
	int ck = count_ckpts(G.dir);
	uint64_t keys = 0, values = 0;
	for (uint32_t k = 0; k < G.nkeys; k++) {
		keys += G.model[k] != 0;
		values += (uint64_t)__builtin_popcount(G.model[k]);
	}
	printf("%s: %u rounds with %u writer threads on %u keys: %" PRIu64 " acknowledged "
	       "operations verified after SIGKILL (largest round %" PRIu64 "), %" PRIu64
	       " in flight at the kill (%" PRIu64 " of them found applied), %" PRIu64
	       " kills during open/recovery; final store %" PRIu64 " keys / %" PRIu64
	       " values, %d checkpoint files\n",
	       stress_name, G.rounds, G.nt, G.nkeys, R.acked, R.max_round_ops, R.inflight,
	       R.inflight_applied, R.early_kills, keys, values, ck);
	rm_dir(G.dir);
	free(G.model);
	return 0;
}

int main(int argc, char **argv)
{
	struct stress_opts o = {.name = "stress_crash", .threads = 4, .seconds = 0, .keys = 1024};
	const char *tmp = getenv("TMPDIR");
	G.base = tmp && *tmp ? tmp : "/tmp";
	G.rounds = 20;
	G.kill_ms = 300;
	G.ckpt_bytes = 32 << 10;
	stress_parse(&o, argc, argv, extra_opts, h_opt,
		     " [--rounds N] [--kill-ms N] [--ckpt-bytes N] [--dir PATH]\n"
		     "  (--seconds, when > 0, stops after the round that passes it)");
	G.shm = mmap(NULL, sizeof(struct shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	if (G.shm == MAP_FAILED)
		stress_die("mmap failed");
	return stress_main_loop(&o, run_one);
}
