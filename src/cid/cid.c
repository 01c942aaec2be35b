/*
 * cid.c — layer 1: identifiers.  Hex text form, SHA-256 of content, and
 * composite keys.  No threads, no I/O, no shared mutable state: every
 * function here is pure, thread-safe, and never waits.
 *
 * Word order.  A cid_t holds a 256-bit number as four uint64_t words, w[0]
 * most significant.  Its byte form (hex text, SHA-256 digests, the composite
 * hash input) is big-endian: byte 0 is the top byte of w[0], byte 31 the
 * bottom byte of w[3].  So cid_to_hex(cid_sha256(x)) is `sha256sum x`.
 *
 * SHA-256.  Computed by OpenSSL libcrypto, which picks its block routine at
 * run time (SHA-NI, AVX2, ...; cid_sha256_impl() names it).  We call the
 * one-shot low-level SHA256_Init/Update/Final on a stack context: no heap,
 * no provider fetch, cannot fail.  Measured on OpenSSL 3.0 with SHA-NI, for
 * 32 bytes: low-level ~56 ns, EVP_Digest with a pre-fetched EVP_MD ~127 ns
 * (it mallocs a context per call), SHA256() ~326 ns (it fetches the
 * algorithm by name per call).  The low-level calls are deprecated in 3.0
 * but present; a libcrypto built without them (OPENSSL_NO_DEPRECATED_3_0),
 * or -DCIDSTORE_SHA256_EVP, switches to the EVP path below, which fetches
 * the EVP_MD once.  EVP can only fail on allocation failure; since the
 * contract gives cid_sha256 no error return and a wrong digest would
 * silently mis-file content, that path aborts with a message instead.
 *
 * Composite keys.  cid_composite(a, b, r) is
 *
 *     SHA-256( "cidstore composite v1"      21 ASCII bytes, no NUL
 *              || a as 32 big-endian bytes
 *              || b as 32 big-endian bytes
 *              || r as 4 big-endian bytes )  = 89 bytes, two SHA blocks
 *
 * read big-endian into w[0..3] like any digest.  Order-sensitivity (a,b vs
 * b,a), r-sensitivity, determinism and avalanche (each output bit flips
 * with probability 1/2 when any input bit flips) all follow from SHA-256
 * being a good pseudo-random function on distinct inputs; the fixed-length
 * layout makes the encoding injective, and the tag keeps composite keys
 * apart from the digest of the 68-byte concatenation a||b||r as ordinary
 * content.  Cost: ~100 ns with SHA-NI (two compressions), under the
 * ~150 ns budget, so no weaker custom mix is used.  This format is part of
 * what is stored on disk: changing it changes every composite key, hence
 * the "v1" in the tag.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1 /* see "SHA-256" above */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/opensslconf.h>
#include <openssl/opensslv.h>

#if defined(OPENSSL_NO_DEPRECATED_3_0) && !defined(CIDSTORE_SHA256_EVP)
#define CIDSTORE_SHA256_EVP 1
#endif

#ifdef CIDSTORE_SHA256_EVP
#include <openssl/evp.h>
#include <pthread.h>
#else
#include <openssl/sha.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#include "cidstore.h"
#include "cid/cid_internal.h"

_Static_assert(sizeof(cid_t) == 32, "cid_t must be exactly 256 bits");
_Static_assert(sizeof(unsigned) == 4, "composite encodes r as 4 bytes");

#define CID_BYTES 32
#define CID_HEX 64

/* ---------------------------------------------------------------------- */
/* Byte form                                                               */
/* ---------------------------------------------------------------------- */

static inline void cid_store_be(const cid_t *c, unsigned char *p)
{
	for (int i = 0; i < 4; i++) {
		uint64_t w = c->w[i];
		for (int j = 7; j >= 0; j--) {
			p[i * 8 + j] = (unsigned char)w;
			w >>= 8;
		}
	}
}

static inline void cid_load_be(const unsigned char *p, cid_t *c)
{
	for (int i = 0; i < 4; i++) {
		uint64_t w = 0;
		for (int j = 0; j < 8; j++)
			w = (w << 8) | p[i * 8 + j];
		c->w[i] = w;
	}
}

/* ---------------------------------------------------------------------- */
/* Hex                                                                     */
/* ---------------------------------------------------------------------- */

/* Value of one hex digit, or -1.  Locale-independent on purpose. */
static inline int cid_hexval(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

CIDSTORE_API int cid_from_hex(const char *hex, cid_t *out)
{
	if (hex == NULL || out == NULL)
		return CIDSTORE_EINVAL;

	/* Reads at most 65 bytes and never past the terminating NUL: a NUL is
	 * not a hex digit, so a short string stops the loop at its end. */
	cid_t c;
	for (int i = 0; i < 4; i++) {
		uint64_t w = 0;
		for (int j = 0; j < 16; j++) {
			int v = cid_hexval((unsigned char)hex[i * 16 + j]);
			if (v < 0)
				return CIDSTORE_EINVAL;
			w = (w << 4) | (uint64_t)v;
		}
		c.w[i] = w;
	}
	if (hex[CID_HEX] != '\0')
		return CIDSTORE_EINVAL;
	*out = c;
	return CIDSTORE_OK;
}

CIDSTORE_API void cid_to_hex(const cid_t *c, char out[65])
{
	static const char digits[16] = "0123456789abcdef";

	if (c == NULL || out == NULL)
		return;
	for (int i = 0; i < 4; i++) {
		uint64_t w = c->w[i];
		for (int j = 15; j >= 0; j--) {
			out[i * 16 + j] = digits[w & 0xf];
			w >>= 4;
		}
	}
	out[CID_HEX] = '\0';
}

/* ---------------------------------------------------------------------- */
/* SHA-256                                                                 */
/* ---------------------------------------------------------------------- */

#ifdef CIDSTORE_SHA256_EVP

static const EVP_MD *cid_md;             /* Synchronization: cid_md_once. */
static pthread_once_t cid_md_once = PTHREAD_ONCE_INIT;

static void cid_md_init(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	cid_md = EVP_MD_fetch(NULL, "SHA256", NULL); /* held for the process */
#else
	cid_md = EVP_sha256();
#endif
}

static void cid_sha256_raw(const void *data, size_t len, unsigned char md[32])
{
	unsigned int mdlen = 0;

	pthread_once(&cid_md_once, cid_md_init);
	if (cid_md == NULL || !EVP_Digest(data, len, md, &mdlen, cid_md, NULL) ||
	    mdlen != 32) {
		fputs("cidstore: libcrypto SHA-256 failed (out of memory?)\n", stderr);
		abort();
	}
}

#else

static void cid_sha256_raw(const void *data, size_t len, unsigned char md[32])
{
	SHA256_CTX ctx;

	/* For SHA-256 these only return 1: no allocation, nothing to fail. */
	SHA256_Init(&ctx);
	SHA256_Update(&ctx, data, len);
	SHA256_Final(md, &ctx);
}

#endif

CIDSTORE_API void cid_sha256(const void *data, size_t len, cid_t *out)
{
	static const unsigned char empty[1];
	unsigned char md[32];

	if (out == NULL || (data == NULL && len > 0))
		return;
	cid_sha256_raw(data != NULL ? data : empty, len, md);
	cid_load_be(md, out);
}

/* ---------------------------------------------------------------------- */
/* Composite keys                                                          */
/* ---------------------------------------------------------------------- */

static const char cid_composite_tag[] = "cidstore composite v1";
#define CID_TAG_LEN (sizeof(cid_composite_tag) - 1) /* no NUL */

CIDSTORE_API cid_t cid_composite(const cid_t *a, const cid_t *b, unsigned r)
{
	unsigned char buf[CID_TAG_LEN + 2 * CID_BYTES + 4];
	unsigned char md[32];
	cid_t out = { { 0, 0, 0, 0 } };

	if (a == NULL || b == NULL)
		return out;
	memcpy(buf, cid_composite_tag, CID_TAG_LEN);
	cid_store_be(a, buf + CID_TAG_LEN);
	cid_store_be(b, buf + CID_TAG_LEN + CID_BYTES);
	unsigned char *rp = buf + CID_TAG_LEN + 2 * CID_BYTES;
	rp[0] = (unsigned char)(r >> 24);
	rp[1] = (unsigned char)(r >> 16);
	rp[2] = (unsigned char)(r >> 8);
	rp[3] = (unsigned char)r;
	cid_sha256_raw(buf, sizeof(buf), md);
	cid_load_be(md, &out);
	return out;
}

/* ---------------------------------------------------------------------- */
/* Which SHA-256 routine libcrypto uses                                    */
/* ---------------------------------------------------------------------- */

#if defined(__x86_64__)

/*
 * Mirrors OpenSSL's x86_64 capability vector (OPENSSL_ia32cap_P, which
 * libcrypto does not export): cap[0] = CPUID.1:EDX (bit 30 set for Intel
 * CPUs), cap[1] = CPUID.1:ECX, cap[2] = CPUID.(7,0):EBX, with the AVX/AVX2
 * bits cleared when the OS does not save YMM state.  The sha256 block
 * routine (sha512-x86_64.pl) then dispatches in this order:
 *   cap[2] bit 29 (SHA)                        -> SHA-NI
 *   cap[2] bits 3, 5, 8 (BMI1, AVX2, BMI2)     -> AVX2
 *   cap[0] bit 30 + cap[1] bits 28, 9 (Intel, AVX, SSSE3) -> AVX
 *   cap[1] bit 9 (SSSE3)                       -> SSSE3
 *   otherwise                                  -> plain x86_64 assembly
 * The OPENSSL_ia32cap environment variable ("[~]v0[:[~]v1]", v0 covering
 * cap[0..1], v1 cap[2..3]) is applied as OPENSSL_cpuid_setup() in 3.0
 * applies it: "~v" clears bits of the CPUID words, a plain v replaces them
 * (and then CPUID is not consulted at all), and when the variable has no
 * ":" part cap[2..3] become zero.
 */
static void cid_apply_ia32cap_env(uint32_t cap[4])
{
	const char *env = getenv("OPENSSL_ia32cap");

	if (env == NULL)
		return;
	if (env[0] == '~') {
		uint64_t v = strtoull(env + 1, NULL, 0);
		cap[0] &= ~(uint32_t)v;
		cap[1] &= ~(uint32_t)(v >> 32);
		if (v & (1u << 24)) /* FXSR off: libcrypto also drops AVX et al. */
			cap[1] &= ~((1u << 1) | (1u << 11) | (1u << 25) | (1u << 28));
	} else if (env[0] != ':') {
		uint64_t v = strtoull(env, NULL, 0);
		cap[0] = (uint32_t)v;
		cap[1] = (uint32_t)(v >> 32);
		cap[2] = cap[3] = 0; /* CPUID never ran in libcrypto */
	}
	const char *colon = strchr(env, ':');
	if (colon == NULL) {
		cap[2] = cap[3] = 0;
		return;
	}
	int inv = colon[1] == '~';
	uint64_t v = strtoull(colon + 1 + inv, NULL, 0);
	if (inv) {
		cap[2] &= ~(uint32_t)v;
		cap[3] &= ~(uint32_t)(v >> 32);
	} else {
		cap[2] = (uint32_t)v;
		cap[3] = (uint32_t)(v >> 32);
	}
}

const char *cid_sha256_impl(void)
{
	unsigned int eax, ebx, ecx, edx;
	uint32_t cap[4] = { 0, 0, 0, 0 };

	if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0)
		return "x86_64";
	unsigned int max_leaf = eax;
	int intel = ebx == 0x756e6547 && edx == 0x49656e69 && ecx == 0x6c65746e;

	__cpuid(1, eax, ebx, ecx, edx);
	cap[0] = edx | (intel ? 1u << 30 : 0);
	cap[1] = ecx;
	if (max_leaf >= 7) {
		__cpuid_count(7, 0, eax, ebx, ecx, edx);
		cap[2] = ebx;
		cap[3] = ecx;
	}
	/* AVX needs the OS to save XMM+YMM state (OSXSAVE, XCR0 bits 1-2). */
	int ymm_ok = 0;
	if (cap[1] & (1u << 27)) {
		uint32_t lo, hi;
		__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
		ymm_ok = (lo & 6) == 6;
	}
	if (!ymm_ok) {
		cap[1] &= ~(1u << 28);  /* AVX */
		cap[2] &= ~(1u << 5);   /* AVX2 */
	}
	cid_apply_ia32cap_env(cap);

	const uint32_t avx2 = (1u << 3) | (1u << 5) | (1u << 8);
	const uint32_t avx = (1u << 28) | (1u << 9);
	if (cap[2] & (1u << 29))
		return "SHA-NI";
	if ((cap[2] & avx2) == avx2)
		return "AVX2";
	if ((cap[0] & (1u << 30)) && (cap[1] & avx) == avx)
		return "AVX";
	if (cap[1] & (1u << 9))
		return "SSSE3";
	return "x86_64";
}

#elif defined(__aarch64__) && defined(__linux__)

const char *cid_sha256_impl(void)
{
#ifdef HWCAP_SHA2
	if (getauxval(AT_HWCAP) & HWCAP_SHA2)
		return "ARMv8-CE";
#endif
	return "generic";
}

#else

const char *cid_sha256_impl(void)
{
	return "generic";
}

#endif
