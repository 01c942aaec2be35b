/*
 * demo_measure.c — the demo's workload threads and its clock.
 *
 * A run: `threads` workers are created; each announces itself and waits;
 * when all wait, the main thread reads the clock and releases them at
 * once; the clock stops after the last worker is joined.  So thread
 * creation stays outside the measured time, and the release, every
 * worker's operations and the wait for the slowest are inside it: a run
 * cannot report more than the team did in the wall time it took (a clock
 * started after the release, or one thread's own time, can be off by
 * orders of magnitude when a run lasts microseconds).
 *
 * Fixed-size runs split --ops over the workers; time-bounded runs (the
 * durable part) go until the main thread says stop.  measure_point repeats
 * fixed-size rounds until DEMO_MIN_SECS were measured (see demo.h).
 *
 * Keys are random 256-bit values from splitmix64; the i-th prefilled key is
 * a function of (seed, i), so lookups recompute keys instead of storing
 * them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "demo.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *workload_name(workload_t w)
{
	return w == WL_INSERT ? "insert-heavy" : "lookup-heavy";
}

/* splitmix64: a fast, well-mixed generator; each thread has its own stream. */
static inline uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void prefill_key(uint64_t seed, uint64_t i, cid_t *k)
{
	uint64_t x = seed ^ (i * 0xd1342543de82ef95ull);
	for (int w = 0; w < 4; w++)
		k->w[w] = splitmix64(&x);
}

static inline void random_cid(uint64_t *rng, cid_t *k)
{
	for (int w = 0; w < 4; w++)
		k->w[w] = splitmix64(rng);
}

typedef struct run_shared {
	cidstore_t *s;
	workload_t wl;
	uint64_t seed;
	uint64_t round;     /* rounds on one store draw fresh keys */
	uint64_t prefill;   /* keys 0..prefill-1 are in the store */
	bool timed;         /* run until stop (else each worker's ops) */
	atomic_bool stop;   /* time-bounded runs: set by the main thread */
	atomic_int error;   /* first library error seen by a worker */
	pthread_mutex_t mu; /* guards ready and go */
	pthread_cond_t cv;  /* ready changed, or go was set */
	unsigned ready;     /* workers waiting for go */
	bool go;
} run_shared_t;

typedef struct worker {
	pthread_t tid;
	run_shared_t *sh;
	unsigned id;
	uint64_t ops;          /* fixed-size runs: operations to do */
	uint64_t first, last;  /* prefill: key range [first, last) */
	uint64_t done;         /* operations done */
	uint64_t misses;       /* lookups of prefilled keys that found nothing */
} worker_t;

static void note_error(run_shared_t *sh, long rc)
{
	int expected = 0;
	atomic_compare_exchange_strong(&sh->error, &expected, (int)rc);
}

static void *prefill_worker(void *arg)
{
	worker_t *w = arg;
	cid_t k, v;
	for (uint64_t i = w->first; i < w->last; i++) {
		prefill_key(w->sh->seed, i, &k);
		v = k;
		v.w[0] ^= 1; /* any value works; one per key */
		int rc = cidstore_insert(w->sh->s, &k, &v);
		if (rc < 0) {
			note_error(w->sh, rc);
			break;
		}
		w->done++;
	}
	return NULL;
}

/* Starts nthreads workers that split [0, n) and waits for them. */
static int prefill_store(cidstore_t *s, uint64_t seed, uint64_t n, unsigned nthreads)
{
	run_shared_t sh = { .s = s, .seed = seed };
	worker_t *w = calloc(nthreads, sizeof *w);
	unsigned started = 0;
	if (w == NULL)
		return CIDSTORE_ENOMEM;
	atomic_init(&sh.error, 0);
	for (unsigned i = 0; i < nthreads; i++) {
		w[i].sh = &sh;
		w[i].first = n * i / nthreads;
		w[i].last = n * (i + 1) / nthreads;
		if (pthread_create(&w[i].tid, NULL, prefill_worker, &w[i]) != 0) {
			note_error(&sh, CIDSTORE_ENOMEM);
			break;
		}
		started++;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	free(w);
	return atomic_load(&sh.error);
}

/* Announces the worker and waits to be released.  False: give up (a
 * sibling could not be started). */
static bool wait_for_go(run_shared_t *sh)
{
	pthread_mutex_lock(&sh->mu);
	sh->ready++;
	pthread_cond_broadcast(&sh->cv);
	while (!sh->go)
		pthread_cond_wait(&sh->cv, &sh->mu);
	pthread_mutex_unlock(&sh->mu);
	return atomic_load(&sh->error) == 0;
}

static void *bench_worker(void *arg)
{
	worker_t *w = arg;
	run_shared_t *sh = w->sh;
	uint64_t rng = sh->seed ^ (0x5851f42d4c957f2dull * (w->id + 1)) ^
		       (0xd1b54a32d192ed03ull * sh->round);
	uint64_t done = 0, misses = 0;
	cid_t k, v, out[4];

	if (!wait_for_go(sh))
		return NULL;
	for (;;) {
		if (sh->timed) {
			if ((done & 63) == 0 &&
			    atomic_load_explicit(&sh->stop, memory_order_relaxed))
				break;
		} else if (done >= w->ops) {
			break;
		}
		uint64_t r = splitmix64(&rng);
		long rc;
		if (sh->wl == WL_INSERT || r % 10 == 0 || sh->prefill == 0) {
			/* a fresh random key: 100% of insert-heavy, 10% of lookup-heavy */
			random_cid(&rng, &k);
			v = k;
			v.w[3] ^= 0xff;
			rc = cidstore_insert(sh->s, &k, &v);
		} else {
			prefill_key(sh->seed, (r >> 8) % sh->prefill, &k);
			rc = cidstore_lookup(sh->s, &k, out, 4);
			if (rc == 0)
				misses++;
		}
		if (rc < 0) {
			note_error(sh, rc);
			break;
		}
		done++;
	}
	w->done = done;
	w->misses = misses;
	return NULL;
}

typedef struct run_out {
	double secs;
	uint64_t ops, misses;
} run_out_t;

/* One measured run with the workload in *sh (s, wl, seed, round, prefill,
 * timed).  duration > 0: time-bounded; else `ops` split over the threads.
 * Adds to *out. */
static int run_once(run_shared_t *sh, unsigned nthreads, uint64_t ops, double duration,
		    run_out_t *out)
{
	worker_t *w = calloc(nthreads, sizeof *w);
	unsigned started = 0;
	double t0, t1;
	if (w == NULL)
		return CIDSTORE_ENOMEM;
	atomic_init(&sh->stop, false);
	atomic_init(&sh->error, 0);
	pthread_mutex_init(&sh->mu, NULL);
	pthread_cond_init(&sh->cv, NULL);
	sh->ready = 0;
	sh->go = false;
	for (unsigned i = 0; i < nthreads; i++) {
		w[i].sh = sh;
		w[i].id = i;
		w[i].ops = ops / nthreads + (i < ops % nthreads ? 1 : 0);
		if (pthread_create(&w[i].tid, NULL, bench_worker, &w[i]) != 0) {
			note_error(sh, CIDSTORE_ENOMEM); /* the started ones give up */
			break;
		}
		started++;
	}
	/* The clock starts with every worker waiting, just before release. */
	pthread_mutex_lock(&sh->mu);
	while (sh->ready < started)
		pthread_cond_wait(&sh->cv, &sh->mu);
	t0 = now_sec();
	sh->go = true;
	pthread_cond_broadcast(&sh->cv);
	pthread_mutex_unlock(&sh->mu);
	if (duration > 0 && started == nthreads) {
		double secs = duration;
		struct timespec ts = { .tv_sec = (time_t)secs,
				       .tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9) };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	atomic_store(&sh->stop, true);
	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].tid, NULL);
		out->ops += w[i].done;
		out->misses += w[i].misses;
	}
	/* ... and stops when the last worker is done. */
	t1 = now_sec();
	out->secs += t1 - t0;
	pthread_cond_destroy(&sh->cv);
	pthread_mutex_destroy(&sh->mu);
	free(w);
	return atomic_load(&sh->error);
}

static int open_store(bool serialized, const char *dir, cidstore_durability_t d,
		      uint64_t seed, cidstore_t **out)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.serialized = serialized;
	o.dir = dir;
	o.durability = d;
	o.seed = seed;
	return cidstore_open(&o, out);
}

/* One repetition of a point: rounds of cfg->ops operations until
 * DEMO_MIN_SECS were measured.  Insert-heavy rounds each get a fresh empty
 * store; lookup-heavy rounds share one store, prefilled with all cores
 * outside the measured time. */
static int measure_rep(const demo_cfg_t *cfg, workload_t wl, int mode, unsigned threads,
		       uint64_t seed, unsigned cores, run_out_t *out, unsigned *rounds)
{
	uint64_t prefill = wl == WL_LOOKUP ? cfg->prefill : 0;
	cidstore_t *s = NULL;
	int rc = 0;
	memset(out, 0, sizeof *out);
	*rounds = 0;
	while (out->secs < DEMO_MIN_SECS && *rounds < DEMO_MAX_ROUNDS) {
		if (s == NULL) {
			rc = open_store(mode == 0, NULL, CIDSTORE_DURABILITY_NONE, seed, &s);
			if (rc != 0)
				return rc;
			if (prefill > 0 && (rc = prefill_store(s, seed, prefill, cores)) != 0)
				break;
		}
		run_shared_t sh = { .s = s, .wl = wl, .seed = seed, .round = *rounds,
				    .prefill = prefill };
		rc = run_once(&sh, threads, cfg->ops, 0, out);
		++*rounds;
		if (rc != 0)
			break;
		if (wl == WL_INSERT) {
			cidstore_close(s);
			s = NULL;
		}
	}
	if (s != NULL)
		cidstore_close(s);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int measure_point(const demo_cfg_t *cfg, result_t *r, int mode, unsigned cores)
{
	double rates[DEMO_MAX_REPEAT], sorted[DEMO_MAX_REPEAT];
	run_out_t reps[DEMO_MAX_REPEAT];
	unsigned rounds[DEMO_MAX_REPEAT];
	r->misses[mode] = 0;
	for (unsigned rep = 0; rep < cfg->repeat; rep++) {
		int rc = measure_rep(cfg, r->wl, mode, r->threads, cfg->seed + rep, cores,
				     &reps[rep], &rounds[rep]);
		if (rc != 0)
			return rc;
		rates[rep] = reps[rep].secs > 0 ? (double)reps[rep].ops / reps[rep].secs : 0;
		r->misses[mode] += reps[rep].misses;
	}
	memcpy(sorted, rates, cfg->repeat * sizeof *rates);
	qsort(sorted, cfg->repeat, sizeof *sorted, cmp_double);
	double med = sorted[cfg->repeat / 2];
	for (unsigned rep = 0; rep < cfg->repeat; rep++) {
		if (rates[rep] == med) {
			r->ops_s[mode] = rates[rep];
			r->secs[mode] = reps[rep].secs;
			r->ops[mode] = reps[rep].ops;
			r->rounds[mode] = rounds[rep];
			break;
		}
	}
	return 0;
}

int measure_durable(const demo_cfg_t *cfg, cidstore_durability_t d, unsigned threads,
		    durable_result_t *out)
{
	char *dir = make_tempdir("demo");
	cidstore_t *s = NULL;
	run_out_t ro = { 0 };
	int rc;
	if (dir == NULL)
		return CIDSTORE_EIO;
	rc = open_store(false, dir, d, cfg->seed, &s);
	if (rc != 0) {
		rm_tree(dir);
		free(dir);
		return rc;
	}
	run_shared_t sh = { .s = s, .wl = WL_INSERT, .seed = cfg->seed, .timed = true };
	rc = run_once(&sh, threads, 0, DEMO_DURABLE_SECS, &ro);
	double tc = now_sec();
	int crc = cidstore_close(s);
	out->close_secs = now_sec() - tc;
	rm_tree(dir);
	free(dir);
	out->d = d;
	out->threads = threads;
	out->secs = ro.secs;
	out->ops = ro.ops;
	out->ops_s = ro.secs > 0 ? (double)ro.ops / ro.secs : 0;
	return rc != 0 ? rc : crc;
}
