/*
 * shake.h — harness 6: the interleaving shaker (issue 4), after liburcu's
 * tests/common/debug-yield.h.
 *
 * CIDSTORE_SHAKE_POINT(name) marks the named points of src/index/index.c
 * (listed in stress/README.md, "Shake points").  Built with -Dshake=true the
 * top-level meson.build defines CIDSTORE_SHAKE=1; otherwise the macro is
 * ((void)0) and costs nothing.
 *
 * With CIDSTORE_SHAKE=1 each point, at random, does nothing (most of the
 * time), sched_yield() (1 in 8), or sleeps 1..50 us (1 in 128), so that the
 * windows between a load and its validation, between a reserve and its
 * publish, or between freezing a bucket and installing its children are
 * stretched across other threads' operations.  The environment variable
 * CIDSTORE_SHAKE=off disables it at run time; CIDSTORE_SHAKE_SEED=N seeds the
 * per-thread generators (thread k gets N + k), so a run prints the seed it
 * used ("shake seed N" on stderr, once) and can be rerun with the same
 * decision streams (the OS scheduler still varies).
 *
 * Cost when enabled: one thread-local xorshift step per point.  Never use a
 * shaker build for benchmarks.
 */
#ifndef CIDSTORE_UTIL_SHAKE_H
#define CIDSTORE_UTIL_SHAKE_H

#if defined(CIDSTORE_SHAKE) && CIDSTORE_SHAKE

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Global state of the shaker: -1 unknown, 0 off, 1 on; base seed.
 * Synchronization: atomic (relaxed: idempotent lazy initialization). */
static _Atomic int cidstore_shake_on = -1;
static _Atomic uint64_t cidstore_shake_seed;
static _Atomic uint64_t cidstore_shake_threads;
static _Thread_local uint64_t cidstore_shake_state; /* owner thread only */

static __attribute__((noinline, cold, unused)) int cidstore_shake_init(void)
{
	int on = atomic_load_explicit(&cidstore_shake_on, memory_order_relaxed);
	if (on < 0) {
		const char *e = getenv("CIDSTORE_SHAKE");
		on = !(e && (!strcmp(e, "off") || !strcmp(e, "0")));
		const char *s = getenv("CIDSTORE_SHAKE_SEED");
		uint64_t seed = s ? strtoull(s, NULL, 0) : 0;
		if (!seed) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec;
		}
		int expect = -1;
		if (atomic_compare_exchange_strong_explicit(&cidstore_shake_on, &expect, on,
				memory_order_relaxed, memory_order_relaxed)) {
			atomic_store_explicit(&cidstore_shake_seed, seed, memory_order_relaxed);
			if (on)
				fprintf(stderr, "cidstore: shake seed %llu\n", (unsigned long long)seed);
		}
		on = atomic_load_explicit(&cidstore_shake_on, memory_order_relaxed);
	}
	if (on && !cidstore_shake_state) {
		uint64_t k = atomic_fetch_add_explicit(&cidstore_shake_threads, 1,
						       memory_order_relaxed);
		uint64_t x = atomic_load_explicit(&cidstore_shake_seed, memory_order_relaxed) + k;
		x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
		x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
		cidstore_shake_state = (x ^ (x >> 31)) | 1;
	}
	return on;
}

static inline void cidstore_shake(const char *name)
{
	(void)name;
	if (__builtin_expect(!cidstore_shake_state, 0) && !cidstore_shake_init())
		return;
	uint64_t x = cidstore_shake_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	cidstore_shake_state = x;
	unsigned r = (unsigned)((x * 0x2545f4914f6cdd1dULL) >> 56); /* 0..255 */
	if (r < 2) {
		struct timespec ts = {0, 1000L * (long)(1 + (x >> 8) % 50)};
		nanosleep(&ts, NULL);
	} else if (r < 34) {
		sched_yield();
	}
}

#define CIDSTORE_SHAKE_POINT(name) cidstore_shake(name)

#else
#define CIDSTORE_SHAKE_POINT(name) ((void)0)
#endif

#endif
