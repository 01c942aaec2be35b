/*
 * backoff.h — bounded waiting: spin with the CPU's pause hint, then yield,
 * then sleep.  Used only where a thread waits for another thread's short,
 * bounded critical step (a key being written, a per-key lock bit).
 */
#ifndef CIDSTORE_UTIL_BACKOFF_H
#define CIDSTORE_UTIL_BACKOFF_H

#include <sched.h>
#include <time.h>

static inline void cidstore_backoff(unsigned *n)
{
	unsigned i = (*n)++;
	if (i < 64) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	} else if (i < 128) {
		sched_yield();
	} else {
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
}

#endif
