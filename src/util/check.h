/*
 * check.h — the two assertion tiers (jemalloc's habit: debug code always
 * compiles, a static const bool decides whether it runs).
 *   CS_ASSERT(c)        cheap, always on: a broken invariant aborts with a
 *                       message naming it, in every build.
 *   CS_DEBUG_ASSERT(c)  expensive (walks a structure): only when built with
 *                       -Ddebug_checks=true, which also poisons freed index
 *                       memory (cs_poison) so a use after reclamation reads
 *                       garbage that the stress harnesses detect.
 */
#ifndef CIDSTORE_UTIL_CHECK_H
#define CIDSTORE_UTIL_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef CIDSTORE_DEBUG_CHECKS
static const bool cs_debug_checks = true;
#else
static const bool cs_debug_checks = false;
#endif

#define CS_CHECK_FAIL(what)                                                        \
	(fprintf(stderr, "cidstore: invariant broken: %s (%s:%d)\n", what, __FILE__, \
		 __LINE__),                                                        \
	 abort())

#define CS_ASSERT(c) ((c) ? (void)0 : CS_CHECK_FAIL(#c))
#define CS_DEBUG_ASSERT(c) ((!cs_debug_checks || (c)) ? (void)0 : CS_CHECK_FAIL(#c))

/* Fills freed memory with 0xdb in debug_checks builds. */
static inline void cs_poison(void *p, size_t n)
{
	if (cs_debug_checks)
		memset(p, 0xdb, n);
}

#endif
