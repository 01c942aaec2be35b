// xoshiro.h — the key generator shared by bench_index and bench_durable:
// xoshiro256** seeded through splitmix64, so both benchmarks draw the same
// keys from the same seed.  Header-only, C++.
#ifndef CIDSTORE_BENCH_XOSHIRO_H
#define CIDSTORE_BENCH_XOSHIRO_H

#include <cstdint>

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

struct Xoshiro256 {
	uint64_t s[4];
	explicit Xoshiro256(uint64_t seed)
	{
		for (auto &w : s) { /* splitmix64 */
			seed += 0x9e3779b97f4a7c15ULL;
			uint64_t z = seed;
			z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
			z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
			w = z ^ (z >> 31);
		}
	}
	uint64_t next()
	{
		uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
		s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
		s[2] ^= t; s[3] = rotl(s[3], 45);
		return r;
	}
};

#endif
