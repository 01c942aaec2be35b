/*
 * common.h — shared scaffolding of the stress harnesses (stress/).
 *
 * Every harness:
 *   - takes --threads --seconds --seed --keys (getopt_long) plus its own
 *     options, and --loop (repeat with seed+1, seed+2, ... until a failure);
 *   - prints its seed first, so `--seed N` replays the same random choices
 *     (thread scheduling is not replayable; the shaker build widens the
 *     windows instead — see shake.h);
 *   - exits 0 when every invariant held, 1 with a line
 *         FAIL <harness> [<INVARIANT>] <details> (seed N)
 *     naming the broken invariant, 2 on a usage or setup error.
 *
 * Worker threads report through stress_fail(), which prints and _exits at
 * once: a broken invariant is never "recovered" from.
 */
#ifndef CIDSTORE_STRESS_COMMON_H
#define CIDSTORE_STRESS_COMMON_H

#include <cidstore.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__) || defined(CIDSTORE_TSAN)
#define STRESS_TSAN 1
#endif

struct stress_opts {
	const char *name;  /* harness name, for messages */
	unsigned threads;
	double seconds;
	uint64_t seed;
	unsigned keys;
	bool loop;
	bool verbose;
};

/* The seed of the run in progress, for stress_fail (written before any
 * worker starts; read-only while they run). */
static const char *stress_name = "stress";
static uint64_t stress_seed;

static void stress_fail(const char *invariant, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void stress_fail(const char *invariant, const char *fmt, ...)
{
	/* One FAIL line: a second thread failing at the same moment waits for
	 * the first one's _exit. */
	static _Atomic int failing;
	if (atomic_exchange(&failing, 1))
		for (;;)
			pause();
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stdout, "FAIL %s [%s] %s (seed %" PRIu64 ")\n", stress_name, invariant, buf,
		stress_seed);
	fflush(stdout);
	fflush(stderr);
	_exit(1);
}

/* Setup errors (not an invariant): exit 2. */
static void stress_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void stress_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", stress_name);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* ---- randomness: splitmix64 seeding, xoshiro-style xorshift64* steps ---- */

static inline uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

typedef struct {
	uint64_t s;
} rng_t;

static inline void rng_init(rng_t *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
	r->s = splitmix64(&x) | 1;
}

static inline uint64_t rng_next(rng_t *r)
{
	uint64_t x = r->s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static inline unsigned rng_below(rng_t *r, unsigned n)
{
	return (unsigned)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* ---- time ---- */

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* ---- identifiers ----
 * A value or key is a cid whose four words are all derived from (tag, a, b)
 * through a mixing function, so a torn read (words of two different cids)
 * or a read of freed/poisoned memory is recognised: cid_decode fails. */

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static inline cid_t cid_make(uint32_t tag, uint32_t a, uint32_t b)
{
	cid_t c;
	uint64_t id = ((uint64_t)tag << 56) ^ ((uint64_t)a << 24) ^ (uint64_t)b;
	c.w[0] = ((uint64_t)tag << 56) | ((uint64_t)a << 24) | (b & 0xffffffULL);
	c.w[1] = mix64(id + 1);
	c.w[2] = mix64(id + 2);
	c.w[3] = mix64(id + 3);
	return c;
}

/* Inverse of cid_make: true (and *tag, *a, *b) when c is well-formed. */
static inline bool cid_decode(const cid_t *c, uint32_t *tag, uint32_t *a, uint32_t *b)
{
	uint32_t t = (uint32_t)(c->w[0] >> 56);
	uint32_t x = (uint32_t)((c->w[0] >> 24) & 0xffffffffULL);
	uint32_t y = (uint32_t)(c->w[0] & 0xffffffULL);
	cid_t e = cid_make(t, x, y);
	if (memcmp(&e, c, sizeof(e)) != 0)
		return false;
	if (tag)
		*tag = t;
	if (a)
		*a = x;
	if (b)
		*b = y;
	return true;
}

/* ---- a reusable barrier that also works under TSan ---- */

typedef struct {
	pthread_barrier_t b;
} barrier_t;

static inline void barrier_init(barrier_t *b, unsigned n)
{
	pthread_barrier_init(&b->b, NULL, n);
}
static inline void barrier_wait(barrier_t *b)
{
	pthread_barrier_wait(&b->b);
}
static inline void barrier_destroy(barrier_t *b)
{
	pthread_barrier_destroy(&b->b);
}

/* ---- options ----
 * The harness passes its own long options (terminated by a zero entry) and
 * a handler; the common ones are handled here.  Values of the harness's own
 * options arrive in handle(opt, optarg) with opt = the option's val. */

enum { OPT_THREADS = 0x1000, OPT_SECONDS, OPT_SEED, OPT_KEYS, OPT_LOOP, OPT_VERBOSE, OPT_HELP };

static inline uint64_t parse_u64(const char *name, const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end || end == s)
		stress_die("bad number for --%s: %s", name, s);
	return v;
}

static inline double parse_double(const char *name, const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (*end || end == s || v < 0)
		stress_die("bad number for --%s: %s", name, s);
	return v;
}

typedef void (*stress_opt_fn)(int opt, const char *arg);

static void stress_parse(struct stress_opts *o, int argc, char **argv,
			 const struct option *extra, stress_opt_fn handle, const char *usage)
{
	struct option all[48];
	static const struct option common[] = {
		{"threads", required_argument, 0, OPT_THREADS},
		{"seconds", required_argument, 0, OPT_SECONDS},
		{"seed", required_argument, 0, OPT_SEED},
		{"keys", required_argument, 0, OPT_KEYS},
		{"loop", no_argument, 0, OPT_LOOP},
		{"verbose", no_argument, 0, OPT_VERBOSE},
		{"help", no_argument, 0, OPT_HELP},
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		all[n++] = common[i];
	for (size_t i = 0; extra && extra[i].name && n < 47; i++)
		all[n++] = extra[i];
	memset(&all[n], 0, sizeof(all[n]));
	stress_name = o->name;
	bool seeded = false;
	int c;
	while ((c = getopt_long(argc, argv, "", all, NULL)) != -1) {
		switch (c) {
		case OPT_THREADS:
			o->threads = (unsigned)parse_u64("threads", optarg);
			if (o->threads == 0)
				stress_die("--threads must be >= 1");
			break;
		case OPT_SECONDS:
			o->seconds = parse_double("seconds", optarg);
			break;
		case OPT_SEED:
			o->seed = parse_u64("seed", optarg);
			seeded = true;
			break;
		case OPT_KEYS:
			o->keys = (unsigned)parse_u64("keys", optarg);
			if (o->keys == 0)
				stress_die("--keys must be >= 1");
			break;
		case OPT_LOOP:
			o->loop = true;
			break;
		case OPT_VERBOSE:
			o->verbose = true;
			break;
		case OPT_HELP:
			printf("usage: %s [--threads N] [--seconds S] [--seed N] [--keys N] "
			       "[--loop] [--verbose]%s\n", o->name, usage ? usage : "");
			exit(0);
		case '?':
			exit(2);
		default:
			if (handle)
				handle(c, optarg);
			else
				exit(2);
		}
	}
	if (optind < argc)
		stress_die("unexpected argument: %s", argv[optind]);
	if (!seeded) {
		uint64_t x = now_ns() ^ ((uint64_t)getpid() << 32);
		o->seed = splitmix64(&x) & 0xffffffffffffULL; /* short enough to retype */
	}
}

/* Runs one(o) once, or with --loop again and again with seed+1, ... until
 * one returns (a failure _exits from inside).  Prints each seed. */
static int stress_main_loop(struct stress_opts *o, int (*one)(const struct stress_opts *o))
{
	for (unsigned iter = 1;; iter++) {
		stress_seed = o->seed;
		printf("%s: seed %" PRIu64 " threads %u seconds %.3g keys %u%s\n", o->name, o->seed,
		       o->threads, o->seconds, o->keys, o->loop ? " (loop)" : "");
		fflush(stdout);
		int rc = one(o);
		if (rc)
			return rc;
		printf("%s: PASS seed %" PRIu64 "\n", o->name, o->seed);
		fflush(stdout);
		if (!o->loop)
			return 0;
		o->seed++;
	}
}

static inline void stress_check_rc(const char *what, long rc)
{
	if (rc < 0)
		stress_fail("API-ERROR", "%s returned %ld (%s)", what, rc,
			    cidstore_strerror((int)rc));
}

#endif
