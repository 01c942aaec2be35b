/*
 * unit_support.h — helpers shared by the unit suites in tests/unit/ (the
 * counterpart of tests/log/test_support.h, which it includes: run_suite for
 * main(), temporary directories, store snapshots).  Header-only; every
 * function is static inline, so a suite that uses only some of them
 * compiles without unused-function warnings.
 *
 *   CIDSTORE_TSAN       defined in a ThreadSanitizer build (meson passes it;
 *                       the compiler's own detection is the fallback)
 *   SZ(release, tsan)   a size for a constant expression: the TSan one under
 *                       CIDSTORE_TSAN, so a suite stays within its timeout
 *   scaled(release, tsan)  the same at run time, times scale_factor(): the
 *                       environment variable CIDSTORE_TEST_SCALE (a
 *                       positive number, default 1)
 *   sm64, mk, mk_decode, cid_eq  decodable test identifiers
 *   open_mem_store, close_store  an in-memory store, asserting success
 *   tfail, reset_failures, assert_no_failures, failed_already
 *                       failures seen by worker threads: they never call
 *                       ck_assert (with CK_FORK=no a failing assert longjmps
 *                       into the runner from the wrong thread); they record
 *                       the first failure, the test's own thread asserts
 *   spawn, now_s, sleep_ms
 */
#ifndef CIDSTORE_TESTS_UNIT_SUPPORT_H
#define CIDSTORE_TESTS_UNIT_SUPPORT_H

#include <check.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cidstore.h"
#include "../log/test_support.h"

/* ---- build flavour and sizes ---- */

#if !defined(CIDSTORE_TSAN)
#if defined(__SANITIZE_THREAD__)
#define CIDSTORE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CIDSTORE_TSAN 1
#endif
#endif
#endif

#ifdef CIDSTORE_TSAN
#define SZ(release, tsan) (tsan)
#else
#define SZ(release, tsan) (release)
#endif

/* CIDSTORE_TEST_SCALE, or 1 when it is unset or not a positive number. */
static inline double scale_factor(void)
{
	const char *e = getenv("CIDSTORE_TEST_SCALE");
	double f = e && *e ? atof(e) : 1.0;
	return f > 0 ? f : 1.0;
}

static inline size_t scaled(size_t release, size_t tsan)
{
	double n = (double)SZ(release, tsan) * scale_factor();
	(void)release;
	(void)tsan;
	return n < 1 ? 1 : (size_t)n;
}

/* ---- decodable identifiers ---- */

static inline uint64_t sm64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* A decodable identifier: w[0] = tag, w[1] = i, the rest pseudo-random
 * (so a torn or foreign value is told apart from a real one). */
static inline cid_t mk(uint64_t tag, uint64_t i)
{
	cid_t c = {{tag, i, sm64(tag * 0x100000001b3ULL ^ i), sm64(i + 7 * tag)}};
	return c;
}

static inline int cid_eq(const cid_t *a, const cid_t *b)
{
	return memcmp(a->w, b->w, sizeof a->w) == 0;
}

/* i when c == mk(tag, i) with i < lim, else -1. */
static inline long mk_decode(const cid_t *c, uint64_t tag, uint64_t lim)
{
	if (c->w[0] != tag || c->w[1] >= lim)
		return -1;
	cid_t want = mk(tag, c->w[1]);
	return cid_eq(c, &want) ? (long)c->w[1] : -1;
}

/* ---- an in-memory store ---- */

static inline cidstore_t *open_mem_store(uint64_t seed, unsigned depth, bool serialized)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.seed = seed;
	o.initial_depth = depth;
	o.serialized = serialized;
	cidstore_t *s = NULL;
	int rc = cidstore_open(&o, &s);
	ck_assert_msg(rc == 0, "cidstore_open: %d (%s)", rc, cidstore_strerror(rc));
	ck_assert_ptr_nonnull(s);
	return s;
}

static inline void close_store(cidstore_t *s)
{
	int rc = cidstore_close(s);
	ck_assert_msg(rc == 0, "cidstore_close: %d (%s)", rc, cidstore_strerror(rc));
}

/* ---- failures seen by worker threads ---- */

struct unit_failures {
	atomic_ulong n;     /* Synchronization: atomic (relaxed: a count) */
	pthread_mutex_t mu; /* guards first */
	char first[512];
};

static inline struct unit_failures *unit_failures(void)
{
	static struct unit_failures f = {.mu = PTHREAD_MUTEX_INITIALIZER};
	return &f;
}

/* Records a failure; the first one's message is kept. */
__attribute__((format(printf, 1, 2)))
static inline void tfail(const char *fmt, ...)
{
	struct unit_failures *f = unit_failures();
	if (atomic_fetch_add_explicit(&f->n, 1, memory_order_relaxed) != 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&f->mu);
	vsnprintf(f->first, sizeof f->first, fmt, ap);
	pthread_mutex_unlock(&f->mu);
	va_end(ap);
}

static inline void reset_failures(void)
{
	struct unit_failures *f = unit_failures();
	atomic_store(&f->n, 0);
	pthread_mutex_lock(&f->mu);
	f->first[0] = '\0';
	pthread_mutex_unlock(&f->mu);
}

/* The test's own thread, after joining the workers. */
static inline void assert_no_failures(const char *test)
{
	struct unit_failures *f = unit_failures();
	unsigned long n = atomic_load(&f->n);
	char msg[512];
	pthread_mutex_lock(&f->mu);
	memcpy(msg, f->first, sizeof msg);
	pthread_mutex_unlock(&f->mu);
	ck_assert_msg(n == 0, "%s: %lu failures; first: %s", test, n, msg);
}

/* True once more than 100 failures were recorded: workers stop early (the
 * count still says whether the first one was a fluke). */
static inline bool failed_already(void)
{
	return atomic_load_explicit(&unit_failures()->n, memory_order_relaxed) > 100;
}

/* ---- threads and time ---- */

static inline void spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int rc = pthread_create(t, NULL, fn, arg);
	ck_assert_msg(rc == 0, "pthread_create: %d", rc);
}

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

#endif
