/*
 * futex.h — sleeping on a 32-bit word until another thread changes it
 * (Linux futex, process-private).  Internal to the triple layer: the writer
 * gate and the triple rooms sleep here; every decision is made on the C11
 * atomics around these calls, the futex only parks a thread that would
 * otherwise spin (so ThreadSanitizer sees all synchronization it needs).
 */
#ifndef CIDSTORE_TRIPLE_FUTEX_H
#define CIDSTORE_TRIPLE_FUTEX_H

#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

/* word: a 4-byte aligned 32-bit atomic.  Sleeps while *word == expect (checked atomically by the kernel); may
 * return spuriously: callers re-check their condition in a loop. */
static inline void tri_futex_wait(void *word, uint32_t expect)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expect, NULL, NULL, 0);
}

/* Wakes every thread sleeping on word. */
static inline void tri_futex_wake_all(void *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

#endif
