/*
 * unit_support.h — helpers shared by the unit suites in tests/unit/ (the
 * counterpart of tests/log/test_support.h): decodable test identifiers.
 */
#ifndef CIDSTORE_TESTS_UNIT_SUPPORT_H
#define CIDSTORE_TESTS_UNIT_SUPPORT_H

#include <stdint.h>
#include <string.h>

#include "cidstore.h"

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

#endif
