/*
 * test_cid.c — layer 1 (cid): hex form, SHA-256, composite keys, and the
 * seeded routing hash in src/cid/hash.h.  Deterministic: every random input
 * comes from a fixed-seed splitmix64 stream.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cidstore.h"
#include "unit_support.h"
#include "cid/cid_internal.h"
#include "cid/hash.h"

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */
/* ---------------------------------------------------------------------- */

static uint64_t rng_state = 0x5eed5eed12345678ULL;

static uint64_t rnd(void)
{
	return cid_splitmix64(&rng_state);
}

static cid_t rnd_cid(void)
{
	cid_t c = { { rnd(), rnd(), rnd(), rnd() } };
	return c;
}

/* cid_eq, run_suite: unit_support.h */

static int popcount256_xor(const cid_t *a, const cid_t *b)
{
	int n = 0;
	for (int i = 0; i < 4; i++)
		n += __builtin_popcountll(a->w[i] ^ b->w[i]);
	return n;
}

static const cid_t sentinel = { { 0x1111111111111111ULL, 0x2222222222222222ULL,
				  0x3333333333333333ULL, 0x4444444444444444ULL } };

/* Reference SHA-256 through a different libcrypto path (EVP, streamed in
 * uneven chunks) than the library's. */
static void ref_sha256(const void *data, size_t len, unsigned char md[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int mdlen = 0;
	const unsigned char *p = data;
	size_t chunk = 1;

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
	while (len > 0) {
		size_t n = chunk < len ? chunk : len;
		ck_assert_int_eq(EVP_DigestUpdate(ctx, p, n), 1);
		p += n;
		len -= n;
		chunk = chunk * 3 + 7;
	}
	ck_assert_int_eq(EVP_DigestFinal_ex(ctx, md, &mdlen), 1);
	ck_assert_uint_eq(mdlen, 32);
	EVP_MD_CTX_free(ctx);
}

static void bytes_to_cid(const unsigned char md[32], cid_t *c)
{
	for (int i = 0; i < 4; i++) {
		uint64_t w = 0;
		for (int j = 0; j < 8; j++)
			w = (w << 8) | md[i * 8 + j];
		c->w[i] = w;
	}
}

static void check_sha_hex(const void *data, size_t len, const char *want)
{
	cid_t c;
	char hex[65];

	cid_sha256(data, len, &c);
	cid_to_hex(&c, hex);
	ck_assert_str_eq(hex, want);
}

/* ---------------------------------------------------------------------- */
/* Hex                                                                     */
/* ---------------------------------------------------------------------- */

START_TEST(test_hex_known)
{
	const char *hex = "0123456789abcdeffedcba98765432100011223344556677"
			  "8899aabbccddeeff";
	cid_t c;
	char out[65];

	ck_assert_int_eq(cid_from_hex(hex, &c), 0);
	ck_assert_uint_eq(c.w[0], 0x0123456789abcdefULL);
	ck_assert_uint_eq(c.w[1], 0xfedcba9876543210ULL);
	ck_assert_uint_eq(c.w[2], 0x0011223344556677ULL);
	ck_assert_uint_eq(c.w[3], 0x8899aabbccddeeffULL);
	cid_to_hex(&c, out);
	ck_assert_str_eq(out, hex);

	cid_t zero = { { 0, 0, 0, 0 } }, ones = { { ~0ULL, ~0ULL, ~0ULL, ~0ULL } };
	cid_to_hex(&zero, out);
	ck_assert_str_eq(out, "0000000000000000000000000000000000000000000000000000000000000000");
	cid_to_hex(&ones, out);
	ck_assert_str_eq(out, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
}
END_TEST

START_TEST(test_hex_round_trip)
{
	for (int t = 0; t < 10000; t++) {
		cid_t c = rnd_cid(), d = sentinel;
		char hex[66];
		memset(hex, 'Z', sizeof(hex));
		cid_to_hex(&c, hex);
		ck_assert_uint_eq(strlen(hex), 64);
		ck_assert_int_eq(cid_from_hex(hex, &d), 0);
		ck_assert(cid_eq(&c, &d));
	}
}
END_TEST

START_TEST(test_hex_uppercase_and_lowercase_output)
{
	const char *lower = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	const char *upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
	const char *mixed = "Ba7816bF8f01CFea414140dE5DAe2223B00361A396177a9cB410Ff61F20015aD";
	cid_t a, b, c;
	char out[65];

	ck_assert_int_eq(cid_from_hex(lower, &a), 0);
	ck_assert_int_eq(cid_from_hex(upper, &b), 0);
	ck_assert_int_eq(cid_from_hex(mixed, &c), 0);
	ck_assert(cid_eq(&a, &b));
	ck_assert(cid_eq(&a, &c));
	cid_to_hex(&b, out);
	ck_assert_str_eq(out, lower);
	for (int i = 0; i < 64; i++)
		ck_assert_msg((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f'),
			      "to_hex wrote non-lowercase-hex char %d at %d", out[i], i);
}
END_TEST

static void expect_einval(const char *hex, const char *what)
{
	cid_t out = sentinel;
	ck_assert_msg(cid_from_hex(hex, &out) == CIDSTORE_EINVAL, "accepted %s", what);
	ck_assert_msg(cid_eq(&out, &sentinel), "output changed on error (%s)", what);
}

START_TEST(test_hex_errors)
{
	const char *good = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char buf[80];
	cid_t out = sentinel;

	ck_assert_int_eq(cid_from_hex(NULL, &out), CIDSTORE_EINVAL);
	ck_assert(cid_eq(&out, &sentinel));
	ck_assert_int_eq(cid_from_hex(good, NULL), CIDSTORE_EINVAL);
	ck_assert_int_eq(cid_from_hex(NULL, NULL), CIDSTORE_EINVAL);

	expect_einval("", "empty string");
	memcpy(buf, good, 63);
	buf[63] = '\0';
	expect_einval(buf, "63 digits");
	memcpy(buf, good, 64);
	buf[64] = '0';
	buf[65] = '\0';
	expect_einval(buf, "65 digits");
	memcpy(buf, good, 64);
	buf[64] = '\n';
	buf[65] = '\0';
	expect_einval(buf, "trailing newline");
	memcpy(buf, good, 64);
	buf[64] = ' ';
	buf[65] = '\0';
	expect_einval(buf, "trailing space");

	/* "0x" prefix: both with 64 digits after it and as 64 characters. */
	snprintf(buf, sizeof(buf), "0x%s", good);
	expect_einval(buf, "0x + 64 digits");
	snprintf(buf, sizeof(buf), "0x%.62s", good);
	ck_assert_uint_eq(strlen(buf), 64);
	expect_einval(buf, "0x + 62 digits");
	snprintf(buf, sizeof(buf), " %.63s", good);
	expect_einval(buf, "leading space");

	/* A bad character at every position. */
	const char bad[] = { 'g', 'G', 'x', ' ', '-', '+', '\t', ':', '/', '@', '`', '[', '\x80', '\xff' };
	for (int pos = 0; pos < 64; pos++) {
		for (size_t k = 0; k < sizeof(bad); k++) {
			char what[64];
			memcpy(buf, good, 65);
			buf[pos] = bad[k];
			snprintf(what, sizeof(what), "char 0x%02x at %d", (unsigned char)bad[k], pos);
			expect_einval(buf, what);
		}
		/* Embedded NUL: a shorter string. */
		memcpy(buf, good, 65);
		buf[pos] = '\0';
		expect_einval(buf, "embedded NUL");
	}
	/* Embedded space in the middle, length still 64. */
	memcpy(buf, good, 65);
	buf[32] = ' ';
	expect_einval(buf, "embedded space");
}
END_TEST

START_TEST(test_hex_null_to_hex)
{
	char out[65];
	cid_t c = sentinel;

	memset(out, 'Q', sizeof(out));
	cid_to_hex(NULL, out);
	for (int i = 0; i < 65; i++)
		ck_assert_int_eq(out[i], 'Q');
	cid_to_hex(&c, NULL);
	cid_to_hex(NULL, NULL);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* SHA-256                                                                 */
/* ---------------------------------------------------------------------- */

START_TEST(test_sha_vectors)
{
	const char *e = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	check_sha_hex("", 0, e);
	check_sha_hex(NULL, 0, e);
	check_sha_hex("abc", 3,
		      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_sha_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
		      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

	/* Word order: digest bytes big-endian into w[0..3]. */
	cid_t c;
	cid_sha256("abc", 3, &c);
	ck_assert_uint_eq(c.w[0], 0xba7816bf8f01cfeaULL);
	ck_assert_uint_eq(c.w[3], 0xb410ff61f20015adULL);
}
END_TEST

START_TEST(test_sha_one_megabyte)
{
	const size_t mb = 1000000, cap = (1u << 20) + 1024;
	unsigned char *buf = malloc(cap);
	unsigned char md[32];
	cid_t c, want;

	ck_assert_ptr_nonnull(buf);
	/* FIPS 180-2 vector: one million 'a'. */
	memset(buf, 'a', mb);
	check_sha_hex(buf, mb,
		      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

	/* Pseudo-random ~1 MB (several lengths near it) against a second,
	 * streamed computation. */
	for (size_t i = 0; i < cap; i++)
		buf[i] = (unsigned char)(rnd() >> 56);
	const size_t lens[] = { 1u << 20, (1u << 20) + 1023, mb, mb + 1, mb + 63, mb + 64 };
	for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		size_t len = lens[k];
		cid_sha256(buf, len, &c);
		ref_sha256(buf, len, md);
		bytes_to_cid(md, &want);
		ck_assert_msg(cid_eq(&c, &want), "digest mismatch at length %zu", len);
	}
	/* Every short length and alignment (block-boundary padding paths). */
	for (size_t len = 0; len <= 200; len++) {
		for (size_t off = 0; off < 8; off += 3) {
			cid_sha256(buf + off, len, &c);
			ref_sha256(buf + off, len, md);
			bytes_to_cid(md, &want);
			ck_assert_msg(cid_eq(&c, &want), "digest mismatch len %zu off %zu", len, off);
		}
	}
	free(buf);
}
END_TEST

START_TEST(test_sha_null)
{
	cid_t out = sentinel;

	cid_sha256(NULL, 5, &out);
	ck_assert(cid_eq(&out, &sentinel));
	cid_sha256("abc", 3, NULL);
	cid_sha256(NULL, 0, NULL);
	cid_sha256(NULL, 1, NULL);
}
END_TEST

START_TEST(test_sha_impl_name)
{
	const char *impl = cid_sha256_impl();
	static const char *known[] = { "SHA-NI", "AVX2", "AVX", "SSSE3", "x86_64", "ARMv8-CE", "generic" };
	int found = 0;

	ck_assert_ptr_nonnull(impl);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		found |= strcmp(impl, known[i]) == 0;
	ck_assert_msg(found, "unknown implementation name '%s'", impl);

	/* With the CPU's sha_ni flag and no override, libcrypto uses SHA-NI. */
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f != NULL && getenv("OPENSSL_ia32cap") == NULL) {
		char line[4096];
		int sha_ni = 0;
		while (fgets(line, sizeof(line), f) != NULL)
			if (strncmp(line, "flags", 5) == 0 && strstr(line, " sha_ni") != NULL)
				sha_ni = 1;
		if (sha_ni)
			ck_assert_str_eq(impl, "SHA-NI");
	}
	if (f != NULL)
		fclose(f);
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Composite keys                                                          */
/* ---------------------------------------------------------------------- */

/* The documented v1 layout, rebuilt independently of the library. */
START_TEST(test_composite_layout)
{
	for (int t = 0; t < 200; t++) {
		cid_t a = rnd_cid(), b = rnd_cid(), want;
		unsigned r = t < 100 ? (unsigned)(t % 3) : (unsigned)rnd();
		unsigned char buf[21 + 64 + 4], md[32];
		memcpy(buf, "cidstore composite v1", 21);
		for (int i = 0; i < 32; i++) {
			buf[21 + i] = (unsigned char)(a.w[i / 8] >> (56 - 8 * (i % 8)));
			buf[53 + i] = (unsigned char)(b.w[i / 8] >> (56 - 8 * (i % 8)));
		}
		for (int i = 0; i < 4; i++)
			buf[85 + i] = (unsigned char)(r >> (24 - 8 * i));
		ref_sha256(buf, sizeof(buf), md);
		bytes_to_cid(md, &want);
		cid_t got = cid_composite(&a, &b, r);
		ck_assert(cid_eq(&got, &want));
	}
}
END_TEST

START_TEST(test_composite_properties)
{
	for (int t = 0; t < 1000; t++) {
		cid_t a = rnd_cid(), b = rnd_cid();
		if (t == 0)
			b = a; /* (a, a): still r-sensitive */
		cid_t ab0 = cid_composite(&a, &b, 0), ab0b = cid_composite(&a, &b, 0);
		cid_t ab1 = cid_composite(&a, &b, 1), ab2 = cid_composite(&a, &b, 2);
		cid_t ba0 = cid_composite(&b, &a, 0);
		ck_assert(cid_eq(&ab0, &ab0b));
		if (t != 0)
			ck_assert(!cid_eq(&ab0, &ba0));
		ck_assert(!cid_eq(&ab0, &ab1));
		ck_assert(!cid_eq(&ab0, &ab2));
		ck_assert(!cid_eq(&ab1, &ab2));
		/* Not the identity, not a simple combination of the inputs. */
		ck_assert(!cid_eq(&ab0, &a) && !cid_eq(&ab0, &b));
	}
	/* Small structured inputs are mixed too. */
	cid_t z = { { 0, 0, 0, 0 } }, one = { { 0, 0, 0, 1 } };
	cid_t z00 = cid_composite(&z, &z, 0), z01 = cid_composite(&z, &one, 0);
	cid_t z10 = cid_composite(&one, &z, 0);
	ck_assert(!cid_eq(&z00, &z));
	ck_assert(!cid_eq(&z01, &z10));
	ck_assert_int_ge(popcount256_xor(&z00, &z01), 64);
}
END_TEST

START_TEST(test_composite_null)
{
	cid_t a = rnd_cid(), zero = { { 0, 0, 0, 0 } };
	cid_t x = cid_composite(NULL, &a, 0), y = cid_composite(&a, NULL, 1);
	cid_t z = cid_composite(NULL, NULL, 2);
	ck_assert(cid_eq(&x, &zero));
	ck_assert(cid_eq(&y, &zero));
	ck_assert(cid_eq(&z, &zero));
}
END_TEST

/* 10,000 one-bit flips, cycling through a and b and each word position
 * (random bit within the word), plus flips of r: mean flipped output bits
 * must be close to 128, no trial may be weak, every output bit must flip
 * about half the time. */
START_TEST(test_composite_avalanche)
{
	enum { TRIALS = 10000 };
	static unsigned outbit_flips[256];
	long total = 0;
	int min = 256, max = 0;

	memset(outbit_flips, 0, sizeof(outbit_flips));
	for (int t = 0; t < TRIALS; t++) {
		cid_t a = rnd_cid(), b = rnd_cid(), a2 = a, b2 = b;
		unsigned r = (unsigned)(rnd() % 3), r2 = r;
		int slot = t % 9; /* 0-3: a.w[slot], 4-7: b.w[slot-4], 8: r */
		int bit = (int)(rnd() % 64);
		if (slot < 4)
			a2.w[slot] ^= 1ULL << bit;
		else if (slot < 8)
			b2.w[slot - 4] ^= 1ULL << bit;
		else
			r2 ^= 1u << (bit % 32);
		cid_t x = cid_composite(&a, &b, r), y = cid_composite(&a2, &b2, r2);
		int n = popcount256_xor(&x, &y);
		total += n;
		if (n < min)
			min = n;
		if (n > max)
			max = n;
		for (int i = 0; i < 256; i++)
			outbit_flips[i] += (unsigned)((x.w[i / 64] ^ y.w[i / 64]) >> (63 - i % 64)) & 1;
	}
	double mean = (double)total / TRIALS;
	ck_assert_msg(mean >= 124.0 && mean <= 132.0, "avalanche mean %.2f outside 124..132", mean);
	ck_assert_msg(min >= 64, "a one-bit flip changed only %d output bits", min);
	ck_assert_msg(max <= 192, "a one-bit flip changed %d output bits", max);
	for (int i = 0; i < 256; i++) {
		double p = (double)outbit_flips[i] / TRIALS;
		ck_assert_msg(p > 0.45 && p < 0.55, "output bit %d flips with p=%.3f", i, p);
	}
}
END_TEST

/* ---------------------------------------------------------------------- */
/* Routing hash (src/cid/hash.h)                                           */
/* ---------------------------------------------------------------------- */

START_TEST(test_hash_seeds_differ)
{
	cid_hash_seed_t s1, s2, s1b;
	int same = 0;

	cid_hash_seed_init(&s1, 1);
	cid_hash_seed_init(&s1b, 1);
	cid_hash_seed_init(&s2, 2);
	ck_assert(memcmp(&s1, &s1b, sizeof(s1)) == 0);
	for (int i = 0; i < 6; i++)
		ck_assert_uint_eq(s1.k[i] & 1, 1);
	for (int t = 0; t < 10000; t++) {
		cid_t c = rnd_cid();
		if (t < 100) { /* structured keys too */
			cid_t z = { { 0, 0, 0, (uint64_t)t } };
			c = z;
		}
		ck_assert_uint_eq(cid_hash64(&s1, &c), cid_hash64(&s1b, &c));
		same += cid_hash64(&s1, &c) == cid_hash64(&s2, &c);
	}
	ck_assert_msg(same == 0, "%d keys hash equal under two seeds", same);

	/* Same key set, different seeds: different bucket of key 0..99 mostly. */
	int same_bucket = 0;
	for (uint64_t i = 0; i < 1000; i++) {
		cid_t c = { { 0, 0, 0, i } };
		same_bucket += (cid_hash64(&s1, &c) >> 52) == (cid_hash64(&s2, &c) >> 52);
	}
	ck_assert_msg(same_bucket < 10, "%d of 1000 keys keep their bucket across seeds",
		      same_bucket);
}
END_TEST

/* Sequential keys in one word (word position and shift vary with the loop
 * index) over 2^12 buckets by the top 12 bits.  Expected 244.1 per bucket;
 * chi-square with 4095 degrees of freedom has mean 4095 and sd 90.5: the
 * bound 4095 + 8 sd is generous, and max/min must stay under 1.8. */
static void check_spread(uint64_t seed, int word, int shift)
{
	enum { N = 1000000, B = 4096 };
	static unsigned counts[B];
	cid_hash_seed_t s;

	cid_hash_seed_init(&s, seed);
	memset(counts, 0, sizeof(counts));
	for (uint64_t i = 0; i < N; i++) {
		cid_t c = { { 0, 0, 0, 0 } };
		c.w[word] = i << shift;
		counts[cid_hash64(&s, &c) >> 52]++;
	}
	double e = (double)N / B, chi = 0;
	unsigned mn = N, mx = 0;
	for (int b = 0; b < B; b++) {
		double d = counts[b] - e;
		chi += d * d / e;
		if (counts[b] < mn)
			mn = counts[b];
		if (counts[b] > mx)
			mx = counts[b];
	}
	ck_assert_msg(chi < 4095 + 8 * 90.5 && mn > 0 && (double)mx / mn < 1.8,
		      "seed %llu word %d shift %d: chi2 %.0f min %u max %u",
		      (unsigned long long)seed, word, shift, chi, mn, mx);
}

START_TEST(test_hash_sequential_spread)
{
	/* The case the brief names: {0,0,0,i}, several seeds. */
	check_spread(0, 3, 0);
	check_spread(1, 3, 0);
	check_spread(0xdeadbeefcafef00dULL, 3, 0);
	/* Counters in the other words, and in high bits. */
	check_spread(7, 0, 0);
	check_spread(7, 1, 0);
	check_spread(7, 2, 0);
	check_spread(7, 3, 20);
	check_spread(7, 3, 44);
}
END_TEST

/* One flipped key bit: the 12-bit bucket changes almost always and each of
 * the top 12 bits flips about half the time, for every input bit. */
START_TEST(test_hash_top_bits_avalanche)
{
	enum { PER_BIT = 200 };
	cid_hash_seed_t s;
	unsigned topbit[12] = { 0 };
	long total64 = 0;

	cid_hash_seed_init(&s, 0x0123456789abcdefULL);
	for (int inbit = 0; inbit < 256; inbit++) {
		int flipped_top = 0, same_bucket = 0;
		for (int t = 0; t < PER_BIT; t++) {
			cid_t c = rnd_cid(), d = c;
			d.w[inbit / 64] ^= 1ULL << (inbit % 64);
			uint64_t x = cid_hash64(&s, &c) ^ cid_hash64(&s, &d);
			flipped_top += __builtin_popcountll(x >> 52);
			same_bucket += (x >> 52) == 0;
			total64 += __builtin_popcountll(x);
			for (int j = 0; j < 12; j++)
				topbit[j] += (unsigned)(x >> (52 + j)) & 1;
		}
		double mean = (double)flipped_top / PER_BIT;
		ck_assert_msg(mean > 5.0 && mean < 7.0,
			      "input bit %d flips %.2f of the top 12 bits on average", inbit, mean);
		ck_assert_msg(same_bucket <= 3, "input bit %d kept the bucket %d/%d times",
			      inbit, same_bucket, PER_BIT);
	}
	for (int j = 0; j < 12; j++) {
		double p = (double)topbit[j] / (256.0 * PER_BIT);
		ck_assert_msg(p > 0.47 && p < 0.53, "top bit %d flips with p=%.3f", j, p);
	}
	double mean64 = (double)total64 / (256.0 * PER_BIT);
	ck_assert_msg(mean64 > 31.0 && mean64 < 33.0, "64-bit avalanche mean %.2f", mean64);
}
END_TEST

/* ---------------------------------------------------------------------- */

static Suite *cid_suite(void)
{
	Suite *s = suite_create("cid");
	TCase *hex = tcase_create("hex");
	tcase_add_test(hex, test_hex_known);
	tcase_add_test(hex, test_hex_round_trip);
	tcase_add_test(hex, test_hex_uppercase_and_lowercase_output);
	tcase_add_test(hex, test_hex_errors);
	tcase_add_test(hex, test_hex_null_to_hex);
	suite_add_tcase(s, hex);

	TCase *sha = tcase_create("sha256");
	tcase_set_timeout(sha, 30);
	tcase_add_test(sha, test_sha_vectors);
	tcase_add_test(sha, test_sha_one_megabyte);
	tcase_add_test(sha, test_sha_null);
	tcase_add_test(sha, test_sha_impl_name);
	suite_add_tcase(s, sha);

	TCase *comp = tcase_create("composite");
	tcase_set_timeout(comp, 30);
	tcase_add_test(comp, test_composite_layout);
	tcase_add_test(comp, test_composite_properties);
	tcase_add_test(comp, test_composite_null);
	tcase_add_test(comp, test_composite_avalanche);
	suite_add_tcase(s, comp);

	TCase *hash = tcase_create("routing_hash");
	tcase_set_timeout(hash, 30);
	tcase_add_test(hash, test_hash_seeds_differ);
	tcase_add_test(hash, test_hash_sequential_spread);
	tcase_add_test(hash, test_hash_top_bits_avalanche);
	suite_add_tcase(s, hash);
	return s;
}

int main(void)
{
	return run_suite(cid_suite());
}
