/*
 * lathist.h — the bucket layout of every latency histogram (the store's
 * operation latencies, the WAL's fdatasync times): log-spaced, 4 buckets
 * per power of two, from 64 ns to 2^35 ns (34.4 s), then an overflow
 * bucket.  Header-only, no state; any layer may use it.
 *
 * Bucket i holds the durations v (integer nanoseconds) with
 * upper(i - 1) < v <= upper(i):
 *   i = 0                upper = 64
 *   i = 1 + 4 (e - 6) + s, e in [6, 34], s in [0, 3]
 *                        upper = 2^e + (s + 1) 2^(e - 2)
 *                        (80, 96, 112, 128, 160, 192, 224, 256, 320, ...)
 *   i = LH_FINITE        v > 2^35 ns (only Prometheus' +Inf bucket)
 * Neighbouring bounds differ by at most 25 %, so a quantile read from the
 * buckets (p50, p99, p999) is within 25 % of the true one.
 *
 * Cost: lh_bucket is a compare, a count-leading-zeros and two shifts.
 */
#ifndef CIDSTORE_UTIL_LATHIST_H
#define CIDSTORE_UTIL_LATHIST_H

#include <stdint.h>

#define LH_MIN_SHIFT 6u  /* first bound: 2^6 = 64 ns */
#define LH_MAX_SHIFT 35u /* last bound: 2^35 ns = 34.4 s */
#define LH_FINITE (1u + 4u * (LH_MAX_SHIFT - LH_MIN_SHIFT)) /* 117 finite buckets */
#define LH_BUCKETS (LH_FINITE + 1u)                         /* + overflow */

/* The bucket of a duration of ns nanoseconds. */
static inline unsigned lh_bucket(uint64_t ns)
{
	if (ns <= (1ull << LH_MIN_SHIFT))
		return 0;
	uint64_t w = ns - 1; /* v <= upper  <=>  v - 1 < upper */
	unsigned e = 63u - (unsigned)__builtin_clzll(w);
	if (e >= LH_MAX_SHIFT)
		return LH_FINITE;
	return 1u + 4u * (e - LH_MIN_SHIFT) + (unsigned)((w >> (e - 2)) & 3u);
}

/* The inclusive upper bound of finite bucket i (< LH_FINITE), in ns. */
static inline uint64_t lh_upper_ns(unsigned i)
{
	if (i == 0)
		return 1ull << LH_MIN_SHIFT;
	unsigned e = LH_MIN_SHIFT + (i - 1) / 4, s = (i - 1) % 4;
	return (1ull << e) + ((uint64_t)(s + 1) << (e - 2));
}

#endif
