/*
 * hash.h — seeded routing hash of a 256-bit key (layer 1, no state).
 *
 * Every bit of the key feeds the result: two 64x64->128 multiplications
 * fold the four words with four secret per-store seed words, and a third
 * folds the two halves.  Sequential or crafted keys cannot pile into one
 * bucket without knowing the seed (HashDoS); the seed comes from
 * getrandom() unless the caller fixes it.
 */
#ifndef CIDSTORE_CID_HASH_H
#define CIDSTORE_CID_HASH_H

#include <stdint.h>
#include "cidstore.h"

typedef struct cid_hash_seed {
	uint64_t k[6];
} cid_hash_seed_t;

static inline uint64_t cid_mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;
	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t cid_splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Expands a 64-bit seed into the six words the hash uses. */
static inline void cid_hash_seed_init(cid_hash_seed_t *s, uint64_t seed)
{
	uint64_t st = seed;
	for (int i = 0; i < 6; i++)
		s->k[i] = cid_splitmix64(&st) | 1; /* odd: never a zero factor */
}

static inline uint64_t cid_hash64(const cid_hash_seed_t *s, const cid_t *c)
{
	uint64_t a = cid_mum(c->w[0] ^ s->k[0], c->w[1] ^ s->k[1]);
	uint64_t b = cid_mum(c->w[2] ^ s->k[2], c->w[3] ^ s->k[3]);
	return cid_mum(a ^ s->k[4], b ^ s->k[5]);
}

#endif
