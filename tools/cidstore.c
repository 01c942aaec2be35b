/*
 * cidstore.c — the `cidstore` command-line tool.
 *
 * One command with git-style subcommands (DESIGN.md §8):
 *
 *   config      what this build and this machine give
 *   demo|bench  the scaling demo: serialized vs free-threaded, 1..N threads
 *   put/get/del one pair or key in a store directory
 *   load        bulk insert from "keyhex valhex" lines
 *   stats       the store's counters
 *   verify      check a store directory's files
 *   checkpoint  write a checkpoint
 *   wal         dump / analyze the write-ahead log
 *
 * The tool uses only the public header <cidstore.h>; everything it knows
 * about the build comes from -D defines set in tools/meson.build.
 *
 * Exit codes: 0 success, 1 runtime error, 2 usage error or "not supported
 * by this build" (CIDSTORE_ENOTSUP).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cidstore.h>

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CIDSTORE_TOOL_BUILDTYPE
#define CIDSTORE_TOOL_BUILDTYPE "unknown"
#endif
#ifndef CIDSTORE_TOOL_SANITIZE
#define CIDSTORE_TOOL_SANITIZE "unknown"
#endif
#ifndef CIDSTORE_TOOL_ALLOCATOR
#define CIDSTORE_TOOL_ALLOCATOR "unknown"
#endif
#ifndef CIDSTORE_TOOL_COMPILER
#define CIDSTORE_TOOL_COMPILER "unknown"
#endif
#ifndef CIDSTORE_TOOL_CK_VERSION
#define CIDSTORE_TOOL_CK_VERSION "unknown"
#endif

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char *prog = "cidstore";

static void die_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void die_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s %s: ", prog, cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s %s --help'.\n", prog, cmd);
	exit(EXIT_USAGE);
}

/* Exit code for a library error: "not supported" is a usage-class answer. */
static int exit_for(int err)
{
	return err == CIDSTORE_ENOTSUP ? EXIT_USAGE : EXIT_RUNTIME;
}

static int report_err(const char *cmd, const char *what, int err)
{
	fprintf(stderr, "%s %s: %s: %s\n", prog, cmd, what, cidstore_strerror(err));
	return exit_for(err);
}

static double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long ncores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

static int parse_ulong(const char *s, unsigned long min, unsigned long max,
		       unsigned long *out)
{
	char *end;
	unsigned long v;
	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0)
		return -1;
	/* optional k / m suffix: --ops 500k */
	if (*end == 'k' || *end == 'K') {
		if (v > ULONG_MAX / 1000)
			return -1;
		v *= 1000, end++;
	} else if (*end == 'm' || *end == 'M') {
		if (v > ULONG_MAX / 1000000)
			return -1;
		v *= 1000000, end++;
	}
	if (*end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* A tiny JSON emitter: objects, arrays, strings, numbers, booleans.        */
/* Keeps a stack of "first element" flags so commas are always right.       */
/* ---------------------------------------------------------------------- */
#define JSON_MAX_DEPTH 16

typedef struct json {
	FILE *f;
	int depth;
	bool first[JSON_MAX_DEPTH];
	bool compact; /* one line per top-level value (JSON Lines) */
} json_t;

static void json_string(json_t *j, const char *s)
{
	FILE *f = j->f;
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f); /* UTF-8 passes through */
		}
	}
	fputc('"', f);
}

/* Comma, newline and indentation before a member; writes "key": if key. */
static void json_sep(json_t *j, const char *key)
{
	if (j->depth > 0) {
		if (!j->first[j->depth])
			fputc(',', j->f);
		j->first[j->depth] = false;
		if (!j->compact) {
			fputc('\n', j->f);
			for (int i = 0; i < j->depth; i++)
				fputs("  ", j->f);
		}
	}
	if (key != NULL) {
		json_string(j, key);
		fputs(j->compact ? ":" : ": ", j->f);
	}
}

static void json_open(json_t *j, const char *key, char c)
{
	json_sep(j, key);
	fputc(c, j->f);
	if (j->depth + 1 < JSON_MAX_DEPTH)
		j->depth++;
	j->first[j->depth] = true;
}

static void json_close(json_t *j, char c)
{
	bool empty = j->first[j->depth];
	if (j->depth > 0)
		j->depth--;
	if (!empty && !j->compact) {
		fputc('\n', j->f);
		for (int i = 0; i < j->depth; i++)
			fputs("  ", j->f);
	}
	fputc(c, j->f);
	if (j->depth == 0)
		fputc('\n', j->f);
}

static void json_obj(json_t *j, const char *key) { json_open(j, key, '{'); }
static void json_end_obj(json_t *j) { json_close(j, '}'); }
static void json_arr(json_t *j, const char *key) { json_open(j, key, '['); }
static void json_end_arr(json_t *j) { json_close(j, ']'); }

static void json_str(json_t *j, const char *key, const char *v)
{
	json_sep(j, key);
	json_string(j, v);
}

static void json_u64(json_t *j, const char *key, uint64_t v)
{
	json_sep(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

static void json_i64(json_t *j, const char *key, int64_t v)
{
	json_sep(j, key);
	fprintf(j->f, "%" PRId64, v);
}

static void json_dbl(json_t *j, const char *key, double v)
{
	json_sep(j, key);
	if (isfinite(v))
		fprintf(j->f, "%.6g", v);
	else
		fputs("null", j->f); /* JSON has no inf / nan */
}

static void json_bool(json_t *j, const char *key, bool v)
{
	json_sep(j, key);
	fputs(v ? "true" : "false", j->f);
}

static void json_null(json_t *j, const char *key)
{
	json_sep(j, key);
	fputs("null", j->f);
}

/* ---------------------------------------------------------------------- */
/* Small helpers shared by subcommands                                     */
/* ---------------------------------------------------------------------- */
static const char *durability_name(cidstore_durability_t d)
{
	switch (d) {
	case CIDSTORE_DURABILITY_NONE: return "none";
	case CIDSTORE_DURABILITY_ASYNC: return "async";
	case CIDSTORE_DURABILITY_SYNC: return "sync";
	}
	return "unknown";
}

static int parse_durability(const char *s, cidstore_durability_t *out)
{
	if (strcmp(s, "none") == 0)
		*out = CIDSTORE_DURABILITY_NONE;
	else if (strcmp(s, "async") == 0)
		*out = CIDSTORE_DURABILITY_ASYNC;
	else if (strcmp(s, "sync") == 0)
		*out = CIDSTORE_DURABILITY_SYNC;
	else
		return -1;
	return 0;
}

/* Human-readable byte counts: 1536 -> "1.5 KiB". */
static const char *fmt_bytes(uint64_t b, char *buf, size_t n)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;
	while (v >= 1024.0 && u < 4)
		v /= 1024.0, u++;
	if (u == 0)
		snprintf(buf, n, "%" PRIu64 " B", b);
	else
		snprintf(buf, n, "%.1f %s", v, unit[u]);
	return buf;
}

/* Human-readable rates: 3210000 -> "3.21 M". */
static const char *fmt_rate(double r, char *buf, size_t n)
{
	if (!isfinite(r) || r < 0)
		snprintf(buf, n, "-");
	else if (r >= 1e9)
		snprintf(buf, n, "%.2f G", r / 1e9);
	else if (r >= 1e6)
		snprintf(buf, n, "%.2f M", r / 1e6);
	else if (r >= 1e3)
		snprintf(buf, n, "%.1f k", r / 1e3);
	else
		snprintf(buf, n, "%.0f", r);
	return buf;
}

/* Prints text word-wrapped at width columns, then a newline. */
static void print_wrapped(const char *text, int width)
{
	int col = 0;
	const char *p = text;
	while (*p) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		int len = (int)strcspn(p, " ");
		if (col > 0 && col + 1 + len > width) {
			putchar('\n');
			col = 0;
		} else if (col > 0) {
			putchar(' ');
			col++;
		}
		fwrite(p, 1, (size_t)len, stdout);
		col += len;
		p += len;
	}
	putchar('\n');
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh temporary directory name in $TMPDIR (or /tmp); NULL on failure. */
static char *make_tempdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *path;
	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&path, "%s/cidstore-%s-XXXXXX", base, tag) < 0)
		return NULL;
	if (mkdtemp(path) == NULL) {
		free(path);
		return NULL;
	}
	return path;
}

/* Is an executable named name on $PATH? */
static bool on_path(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		if (len > 0 && len + strlen(name) + 2 < sizeof buf) {
			memcpy(buf, path, len);
			buf[len] = '/';
			strcpy(buf + len + 1, name);
			if (access(buf, X_OK) == 0)
				return true;
		}
		path += len;
		if (*path == ':')
			path++;
	}
	return false;
}

/* ---------------------------------------------------------------------- */
/* config                                                                  */
/* ---------------------------------------------------------------------- */
typedef struct cpuinfo {
	char model[128];
	bool sse4_2, sha_ni, avx2, pclmulqdq, avx512f, found;
} cpuinfo_t;

static bool has_flag(const char *flags, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = flags; (p = strstr(p, name)) != NULL; p += n) {
		bool start = p == flags || isspace((unsigned char)p[-1]);
		bool end = p[n] == '\0' || isspace((unsigned char)p[n]);
		if (start && end)
			return true;
	}
	return false;
}

static void read_cpuinfo(cpuinfo_t *ci)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char *line = NULL;
	size_t cap = 0;
	bool got_flags = false;
	memset(ci, 0, sizeof *ci);
	snprintf(ci->model, sizeof ci->model, "unknown");
	if (f == NULL)
		return;
	while (getline(&line, &cap, f) > 0) {
		char *colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		char *val = colon + 1;
		while (*val == ' ' || *val == '\t')
			val++;
		val[strcspn(val, "\n")] = '\0';
		if (strncmp(line, "model name", 10) == 0 && strcmp(ci->model, "unknown") == 0) {
			snprintf(ci->model, sizeof ci->model, "%s", val);
		} else if (strncmp(line, "flags", 5) == 0 && !got_flags) {
			got_flags = true;
			ci->found = true;
			ci->sse4_2 = has_flag(val, "sse4_2");
			ci->sha_ni = has_flag(val, "sha_ni");
			ci->avx2 = has_flag(val, "avx2");
			ci->pclmulqdq = has_flag(val, "pclmulqdq");
			ci->avx512f = has_flag(val, "avx512f");
		}
	}
	free(line);
	fclose(f);
}

/* The allocator actually serving malloc in this process: the library that
 * the dynamic linker resolved "malloc" to (a library linked after libc may
 * be loaded without serving anything).  jemalloc also answers its version
 * through mallctl(). */
static void detect_allocator(char *buf, size_t n)
{
	typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);
	void *m = dlsym(RTLD_DEFAULT, "malloc");
	mallctl_fn mallctl = (mallctl_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "mallctl");
	Dl_info info;
	const char *lib = "unknown";
	char ver[96] = "";
	if (m != NULL && dladdr(m, &info) != 0 && info.dli_fname != NULL) {
		lib = strrchr(info.dli_fname, '/');
		lib = lib != NULL ? lib + 1 : info.dli_fname;
	}
	if (mallctl != NULL) {
		const char *v = NULL;
		size_t sz = sizeof v;
		if (mallctl("version", &v, &sz, NULL, 0) == 0 && v != NULL)
			snprintf(ver, sizeof ver, " %.*s", (int)strcspn(v, "-"), v);
	}
	if (strstr(lib, "jemalloc") != NULL)
		snprintf(buf, n, "jemalloc%s (%s)", ver, lib);
	else if (strstr(lib, "libc.so") != NULL)
		snprintf(buf, n, "glibc malloc (%s)%s", lib,
			 mallctl != NULL ? "; jemalloc is loaded but does not serve malloc" : "");
	else
		snprintf(buf, n, "%s", lib);
}

/* Does cidstore_open with a directory work in this build?  Tries it in a
 * throw-away temporary directory and removes it again. */
static int probe_durable(void)
{
	char *dir = make_tempdir("probe");
	cidstore_options_t o;
	cidstore_t *s = NULL;
	int rc;
	if (dir == NULL)
		return CIDSTORE_EIO;
	cidstore_options_init(&o);
	o.dir = dir;
	o.durability = CIDSTORE_DURABILITY_ASYNC;
	rc = cidstore_open(&o, &s);
	if (rc == 0)
		cidstore_close(s);
	rm_tree(dir);
	free(dir);
	return rc;
}

static void usage_config(FILE *f)
{
	fprintf(f,
		"Usage: %s config [--json]\n"
		"\n"
		"Print what this build and this machine give: library version, build\n"
		"type, compiler, sanitizer, allocator, Concurrency Kit version, the CPU\n"
		"features behind CRC32C and SHA-256, the number of cores and the default\n"
		"store options.\n"
		"\n"
		"  -j, --json   machine-readable JSON on stdout\n"
		"  -h, --help   this help\n",
		prog);
}

static int cmd_config(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool as_json = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': as_json = true; break;
		case 'h': usage_config(stdout); return EXIT_OK;
		default: die_usage("config", "bad option");
		}
	}
	if (optind < argc)
		die_usage("config", "unexpected argument '%s'", argv[optind]);

	cpuinfo_t ci;
	cidstore_options_t o;
	char alloc[128], b1[32], b2[32];
	long cores = ncores();
	long cores_conf = sysconf(_SC_NPROCESSORS_CONF);
	int durable = probe_durable();
	read_cpuinfo(&ci);
	cidstore_options_init(&o);
	detect_allocator(alloc, sizeof alloc);

	if (as_json) {
		json_t j = { .f = stdout };
		json_obj(&j, NULL);
		json_str(&j, "version", cidstore_version());
		json_str(&j, "header_version", CIDSTORE_VERSION_STRING);
		json_obj(&j, "build");
		json_str(&j, "type", CIDSTORE_TOOL_BUILDTYPE);
		json_str(&j, "compiler", CIDSTORE_TOOL_COMPILER);
		json_str(&j, "sanitizer", CIDSTORE_TOOL_SANITIZE);
		json_str(&j, "allocator_option", CIDSTORE_TOOL_ALLOCATOR);
		json_str(&j, "allocator_in_use", alloc);
		json_str(&j, "ck_version", CIDSTORE_TOOL_CK_VERSION);
		json_bool(&j, "durable_stores", durable == 0);
		if (durable != 0)
			json_str(&j, "durable_stores_error", cidstore_strerror(durable));
		json_end_obj(&j);
		json_obj(&j, "cpu");
		json_str(&j, "model", ci.model);
		json_i64(&j, "cores_online", cores);
		json_i64(&j, "cores_configured", cores_conf);
		if (ci.found) {
			json_obj(&j, "features");
			json_bool(&j, "sse4_2", ci.sse4_2);
			json_bool(&j, "sha_ni", ci.sha_ni);
			json_bool(&j, "avx2", ci.avx2);
			json_bool(&j, "pclmulqdq", ci.pclmulqdq);
			json_bool(&j, "avx512f", ci.avx512f);
			json_end_obj(&j);
			json_str(&j, "crc32c", ci.sse4_2 ? "sse4.2 crc32 instruction"
							 : "table (no SSE4.2)");
			json_str(&j, "sha256", ci.sha_ni ? "sha-ni (libcrypto)"
							 : "software (libcrypto)");
		} else {
			json_null(&j, "features");
		}
		json_end_obj(&j);
		json_obj(&j, "defaults");
		json_str(&j, "durability", durability_name(o.durability));
		json_bool(&j, "serialized", o.serialized);
		json_u64(&j, "seed", o.seed);
		json_u64(&j, "ring_records", o.ring_records);
		json_u64(&j, "ring_bytes", (uint64_t)o.ring_records * 128u);
		json_u64(&j, "sync_interval_ms", o.sync_interval_ms);
		json_u64(&j, "checkpoint_wal_bytes", o.checkpoint_wal_bytes);
		json_u64(&j, "segment_bytes", o.segment_bytes);
		json_u64(&j, "recovery_threads", o.recovery_threads);
		json_u64(&j, "initial_depth", o.initial_depth);
		json_end_obj(&j);
		json_end_obj(&j);
		return EXIT_OK;
	}

	printf("cidstore %s\n\n", cidstore_version());
	printf("Build\n");
	printf("  build type         %s\n", CIDSTORE_TOOL_BUILDTYPE);
	printf("  compiler           %s\n", CIDSTORE_TOOL_COMPILER);
	printf("  sanitizer          %s\n", CIDSTORE_TOOL_SANITIZE);
	printf("  allocator          %s (meson option), in use: %s\n",
	       CIDSTORE_TOOL_ALLOCATOR, alloc);
	printf("  Concurrency Kit    %s\n", CIDSTORE_TOOL_CK_VERSION);
	printf("  durable stores     %s\n",
	       durable == 0 ? "available (dir != NULL)"
			    : durable == CIDSTORE_ENOTSUP
				      ? "not available in this build (in-memory only)"
				      : cidstore_strerror(durable));
	printf("\nMachine\n");
	printf("  CPU                %s\n", ci.model);
	printf("  cores              %ld online, %ld configured\n", cores, cores_conf);
	if (ci.found) {
		printf("  SSE4.2             %-4s -> CRC32C %s\n", ci.sse4_2 ? "yes" : "no",
		       ci.sse4_2 ? "with the crc32 instruction" : "by table lookup");
		printf("  PCLMULQDQ          %-4s -> CRC folding (ISA-L)\n",
		       ci.pclmulqdq ? "yes" : "no");
		printf("  SHA-NI             %-4s -> SHA-256 %s\n", ci.sha_ni ? "yes" : "no",
		       ci.sha_ni ? "in hardware via libcrypto" : "in software via libcrypto");
		printf("  AVX2               %-4s\n", ci.avx2 ? "yes" : "no");
	} else {
		printf("  CPU flags          unknown (/proc/cpuinfo not readable)\n");
	}
	printf("\nDefault options (cidstore_options_init)\n");
	printf("  durability         %s (for stores with a directory; in-memory stores log nothing)\n",
	       durability_name(o.durability));
	printf("  serialized         %s\n", o.serialized ? "yes" : "no");
	printf("  seed               %" PRIu64 "%s\n", o.seed, o.seed == 0 ? " (random per store)" : "");
	printf("  WAL ring           %" PRIu32 " records (%s)\n", o.ring_records,
	       fmt_bytes((uint64_t)o.ring_records * 128u, b1, sizeof b1));
	printf("  sync interval      %" PRIu32 " ms\n", o.sync_interval_ms);
	if (o.checkpoint_wal_bytes == 0)
		printf("  checkpoint after   never (manual checkpoints only)\n");
	else
		printf("  checkpoint after   %s of WAL\n",
		       fmt_bytes(o.checkpoint_wal_bytes, b1, sizeof b1));
	printf("  WAL segment        %s\n", fmt_bytes(o.segment_bytes, b2, sizeof b2));
	printf("  recovery threads   %u%s\n", o.recovery_threads,
	       o.recovery_threads == 0 ? " (one per core)" : "");
	printf("  initial depth      %u\n", o.initial_depth);
	return EXIT_OK;
}

/* ---------------------------------------------------------------------- */
/* demo                                                                    */
/* ---------------------------------------------------------------------- */

/* splitmix64: a fast, well-mixed generator for keys.  Keys are random
 * 256-bit values; each thread has its own stream. */
static inline uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The i-th prefilled key (so lookups can recompute keys without storing
 * them): a random-looking function of (seed, i). */
static inline void prefill_key(uint64_t seed, uint64_t i, cid_t *k)
{
	uint64_t x = seed ^ (i * 0xd1342543de82ef95ull);
	for (int w = 0; w < 4; w++)
		k->w[w] = splitmix64(&x);
}

static inline void random_cid(uint64_t *rng, cid_t *k)
{
	for (int w = 0; w < 4; w++)
		k->w[w] = splitmix64(rng);
}

typedef enum { WL_INSERT, WL_LOOKUP } workload_t;

static const char *workload_name(workload_t w)
{
	return w == WL_INSERT ? "insert-heavy" : "lookup-heavy";
}

typedef struct run_shared {
	cidstore_t *s;
	workload_t wl;
	uint64_t seed;
	uint64_t prefill;          /* keys 0..prefill-1 are in the store */
	pthread_barrier_t start;
	atomic_bool stop;          /* time-bounded runs: set by the main thread */
	bool timed;
	atomic_int error;          /* first library error seen by a worker */
} run_shared_t;

typedef struct worker {
	pthread_t tid;
	run_shared_t *sh;
	unsigned id;
	uint64_t ops;              /* fixed-size runs: operations to do */
	uint64_t first, last;      /* prefill: key range [first, last) */
	uint64_t done;             /* operations done */
	uint64_t misses;           /* lookups of prefilled keys that found nothing */
} worker_t;

static void note_error(run_shared_t *sh, long rc)
{
	int expected = 0;
	atomic_compare_exchange_strong(&sh->error, &expected, (int)rc);
}

static void *prefill_worker(void *arg)
{
	worker_t *w = arg;
	cid_t k, v;
	for (uint64_t i = w->first; i < w->last; i++) {
		prefill_key(w->sh->seed, i, &k);
		v = k;
		v.w[0] ^= 1; /* any value works; one per key */
		int rc = cidstore_insert(w->sh->s, &k, &v);
		if (rc < 0) {
			note_error(w->sh, rc);
			break;
		}
		w->done++;
	}
	return NULL;
}

static void *bench_worker(void *arg)
{
	worker_t *w = arg;
	run_shared_t *sh = w->sh;
	uint64_t rng = sh->seed ^ (0x5851f42d4c957f2dull * (w->id + 1));
	uint64_t done = 0, misses = 0;
	cid_t k, v, out[4];

	pthread_barrier_wait(&sh->start);
	for (;;) {
		if (sh->timed) {
			if ((done & 63) == 0 &&
			    atomic_load_explicit(&sh->stop, memory_order_relaxed))
				break;
		} else if (done >= w->ops) {
			break;
		}
		uint64_t r = splitmix64(&rng);
		long rc;
		if (sh->wl == WL_INSERT || r % 10 == 0 || sh->prefill == 0) {
			/* a fresh random key: 100% of insert-heavy, 10% of lookup-heavy */
			random_cid(&rng, &k);
			v = k;
			v.w[3] ^= 0xff;
			rc = cidstore_insert(sh->s, &k, &v);
		} else {
			prefill_key(sh->seed, (r >> 8) % sh->prefill, &k);
			rc = cidstore_lookup(sh->s, &k, out, 4);
			if (rc == 0)
				misses++;
		}
		if (rc < 0) {
			note_error(sh, rc);
			break;
		}
		done++;
	}
	w->done = done;
	w->misses = misses;
	return NULL;
}

typedef struct result {
	workload_t wl;
	unsigned threads;
	double ops_s[2];      /* [0] serialized, [1] free-threaded */
	double secs[2];
	uint64_t ops[2];
	uint64_t misses[2];
} result_t;

typedef struct demo_cfg {
	unsigned max_threads;
	uint64_t ops;
	uint64_t prefill;
	bool json;
	bool durable;
	const char *plot;
	uint64_t seed;
	unsigned repeat;
} demo_cfg_t;

typedef struct progress {
	bool tty;
	unsigned done, total;
	double t0;
} progress_t;

static void progress_step(progress_t *p, const char *what)
{
	if (p->tty) {
		const int width = 24;
		int fill = p->total ? (int)((uint64_t)p->done * width / p->total) : width;
		fprintf(stderr, "\r\033[K[%.*s%*s] %u/%u %s", fill,
			"########################", width - fill, "", p->done + 1, p->total,
			what);
	} else {
		fprintf(stderr, "demo: [%u/%u] %s\n", p->done + 1, p->total, what);
	}
	fflush(stderr);
}

static void progress_end(progress_t *p)
{
	if (p->tty)
		fprintf(stderr, "\r\033[K");
	fprintf(stderr, "demo: %u runs in %.1f s\n", p->done, now_sec() - p->t0);
}

/* Opens a store for one run.  dir == NULL: in memory. */
static int open_store(bool serialized, const char *dir, cidstore_durability_t d,
		      uint64_t seed, cidstore_t **out)
{
	cidstore_options_t o;
	cidstore_options_init(&o);
	o.serialized = serialized;
	o.dir = dir;
	o.durability = d;
	o.seed = seed;
	return cidstore_open(&o, out);
}

/* Starts nthreads workers that split [0, n) and waits for them. */
static int prefill_store(cidstore_t *s, uint64_t seed, uint64_t n, unsigned nthreads)
{
	run_shared_t sh = { .s = s, .seed = seed };
	worker_t *w = calloc(nthreads, sizeof *w);
	unsigned started = 0;
	if (w == NULL)
		return CIDSTORE_ENOMEM;
	atomic_init(&sh.error, 0);
	for (unsigned i = 0; i < nthreads; i++) {
		w[i].sh = &sh;
		w[i].first = n * i / nthreads;
		w[i].last = n * (i + 1) / nthreads;
		if (pthread_create(&w[i].tid, NULL, prefill_worker, &w[i]) != 0) {
			note_error(&sh, CIDSTORE_ENOMEM);
			break;
		}
		started++;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	free(w);
	return atomic_load(&sh.error);
}

/* One measured run.  duration > 0: time-bounded (each thread runs until
 * the main thread says stop), else fixed total of ops split over threads. */
static int run_once(cidstore_t *s, workload_t wl, uint64_t seed, uint64_t prefill,
		    unsigned nthreads, uint64_t ops, double duration,
		    double *secs, uint64_t *ops_done, uint64_t *misses)
{
	run_shared_t sh = { .s = s, .wl = wl, .seed = seed, .prefill = prefill,
			    .timed = duration > 0 };
	worker_t *w = calloc(nthreads, sizeof *w);
	unsigned started = 0;
	double t0, t1;
	if (w == NULL)
		return CIDSTORE_ENOMEM;
	atomic_init(&sh.stop, false);
	atomic_init(&sh.error, 0);
	if (pthread_barrier_init(&sh.start, NULL, nthreads + 1) != 0) {
		free(w);
		return CIDSTORE_ENOMEM;
	}
	for (unsigned i = 0; i < nthreads; i++) {
		w[i].sh = &sh;
		w[i].id = i;
		w[i].ops = ops / nthreads + (i < ops % nthreads ? 1 : 0);
		if (pthread_create(&w[i].tid, NULL, bench_worker, &w[i]) != 0) {
			fprintf(stderr, "%s demo: pthread_create: %s\n", prog, strerror(errno));
			exit(EXIT_RUNTIME); /* workers wait on the barrier: no way back */
		}
		started++;
	}
	pthread_barrier_wait(&sh.start);
	t0 = now_sec();
	if (duration > 0) {
		struct timespec ts = { .tv_sec = (time_t)duration,
				       .tv_nsec = (long)((duration - (double)(time_t)duration) * 1e9) };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		atomic_store(&sh.stop, true);
	}
	*ops_done = 0;
	*misses = 0;
	for (unsigned i = 0; i < started; i++) {
		pthread_join(w[i].tid, NULL);
		*ops_done += w[i].done;
		*misses += w[i].misses;
	}
	t1 = now_sec();
	*secs = t1 - t0;
	pthread_barrier_destroy(&sh.start);
	free(w);
	return atomic_load(&sh.error);
}

typedef struct durable_result {
	cidstore_durability_t d;
	unsigned threads;
	double ops_s;
	double secs;
	uint64_t ops;
	double close_secs;
} durable_result_t;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* cfg->repeat runs of one (workload, threads, mode) point, each on a fresh
 * in-memory store; keeps the run with the median rate. */
static int measure_point(const demo_cfg_t *cfg, result_t *r, int mode, unsigned cores)
{
	double rates[101], secs[101];
	uint64_t ops[101];
	uint64_t prefill = r->wl == WL_LOOKUP ? cfg->prefill : 0;
	r->misses[mode] = 0;
	for (unsigned rep = 0; rep < cfg->repeat; rep++) {
		cidstore_t *s = NULL;
		uint64_t misses = 0;
		int rc = open_store(mode == 0, NULL, CIDSTORE_DURABILITY_NONE, cfg->seed + rep, &s);
		if (rc != 0)
			return rc;
		/* prefilled with all cores, outside the timed part */
		if (prefill > 0 && (rc = prefill_store(s, cfg->seed + rep, prefill, cores)) != 0) {
			cidstore_close(s);
			return rc;
		}
		rc = run_once(s, r->wl, cfg->seed + rep, prefill, r->threads, cfg->ops, 0,
			      &secs[rep], &ops[rep], &misses);
		cidstore_close(s);
		if (rc != 0)
			return rc;
		rates[rep] = secs[rep] > 0 ? (double)ops[rep] / secs[rep] : 0;
		r->misses[mode] += misses;
	}
	double sorted[101];
	memcpy(sorted, rates, cfg->repeat * sizeof *rates);
	qsort(sorted, cfg->repeat, sizeof *sorted, cmp_double);
	double med = sorted[cfg->repeat / 2];
	for (unsigned rep = 0; rep < cfg->repeat; rep++) {
		if (rates[rep] == med) {
			r->ops_s[mode] = rates[rep];
			r->secs[mode] = secs[rep];
			r->ops[mode] = ops[rep];
			break;
		}
	}
	return 0;
}

static void write_plot(const demo_cfg_t *cfg, const result_t *res, size_t nres,
		       long cores)
{
	char *gp = NULL;
	size_t len = strlen(cfg->plot);
	const char *dot = strrchr(cfg->plot, '.');
	if (dot != NULL && strchr(dot, '/') == NULL)
		len = (size_t)(dot - cfg->plot);
	if (asprintf(&gp, "%.*s.gp", (int)len, cfg->plot) < 0)
		return;
	FILE *f = fopen(gp, "w");
	if (f == NULL) {
		fprintf(stderr, "%s demo: cannot write %s: %s\n", prog, gp, strerror(errno));
		free(gp);
		return;
	}
	fprintf(f, "# cidstore demo: throughput vs threads (generated by `cidstore demo --plot`)\n");
	for (int wl = WL_INSERT; wl <= WL_LOOKUP; wl++) {
		fprintf(f, "$%s << EOD\n# threads serialized_Mops free_threaded_Mops\n",
			wl == WL_INSERT ? "insert" : "lookup");
		for (size_t i = 0; i < nres; i++)
			if (res[i].wl == (workload_t)wl)
				fprintf(f, "%u %.4f %.4f\n", res[i].threads, res[i].ops_s[0] / 1e6,
					res[i].ops_s[1] / 1e6);
		fprintf(f, "EOD\n");
	}
	bool over = cfg->max_threads > (unsigned)cores;
	fprintf(f,
		"if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		"  set terminal pngcairo size 1100,450 noenhanced font ',10'\n"
		"} else {\n"
		"  set terminal png size 1100,450 noenhanced\n"
		"}\n"
		"set output '%s'\n"
		"set multiplot layout 1,2 title 'cidstore %s demo: in-memory store, %ld core%s, "
		"%s%u run%s%s'\n"
		"set xlabel 'threads'\n"
		"set ylabel 'million ops/s'\n"
		"set grid\n"
		"set key bottom right\n"
		"set yrange [0:*]\n"
		"set xrange [0.8:%u.2]\n"
		"set xtics 1\n",
		cfg->plot, cidstore_version(), cores, cores == 1 ? "" : "s",
		cfg->repeat > 1 ? "median of " : "", cfg->repeat, cfg->repeat == 1 ? "" : "s",
		over ? " (right of the dashed line: oversubscribed)" : "", cfg->max_threads);
	if (over)
		fprintf(f, "set arrow from %ld.5, graph 0 to %ld.5, graph 1 nohead dashtype 2 "
			   "lc rgb 'gray'\n",
			cores, cores);
	fprintf(f,
		"set title 'insert-heavy (100%% inserts of fresh keys)'\n"
		"plot $insert using 1:3 with linespoints lw 2 title 'free-threaded', \\\n"
		"     $insert using 1:2 with linespoints lw 2 title 'serialized (one global lock)'\n"
		"set title 'lookup-heavy (90%% lookups / 10%% inserts, prefilled)'\n"
		"plot $lookup using 1:3 with linespoints lw 2 title 'free-threaded', \\\n"
		"     $lookup using 1:2 with linespoints lw 2 title 'serialized (one global lock)'\n"
		"unset multiplot\n");
	fclose(f);
	if (!on_path("gnuplot")) {
		fprintf(stderr,
			"%s demo: gnuplot is not installed, so %s was not drawn.\n"
			"  The script is in %s: install gnuplot (Debian: apt-get install gnuplot-nox,\n"
			"  or bash tools/setup-deps.sh) and run: gnuplot %s\n",
			prog, cfg->plot, gp, gp);
		free(gp);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		execlp("gnuplot", "gnuplot", gp, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "%s demo: gnuplot %s failed; the script is kept\n", prog, gp);
	else
		fprintf(stderr, "%s demo: wrote %s (script: %s)\n", prog, cfg->plot, gp);
	free(gp);
}

static void usage_demo(FILE *f)
{
	fprintf(f,
		"Usage: %s demo [--threads N] [--ops N] [--prefill N] [--repeat R]\n"
		"                     [--seed N] [--json] [--plot FILE.png] [--no-durable]\n"
		"\n"
		"The scaling demo.  For every thread count 1..N it opens a fresh in-memory\n"
		"store twice -- serialized (one global lock, the baseline) and free-threaded\n"
		"(the real thing) -- and runs the same two workloads on each:\n"
		"  insert-heavy  100%% inserts of fresh random 256-bit keys into an empty store\n"
		"  lookup-heavy  90%% lookups of present keys / 10%% inserts of fresh keys on a\n"
		"                store prefilled with --prefill keys\n"
		"Then a short time-bounded insert run (1 s per point) on a store in a\n"
		"temporary directory, durability async and sync, 1..N threads.\n"
		"It prints throughput and speed-ups as a table, then a short summary.\n"
		"\n"
		"  -t, --threads N    highest thread count (default: number of cores)\n"
		"  -n, --ops N        operations per run, split over the threads\n"
		"                     (default 600k; k and m suffixes work)\n"
		"  -p, --prefill N    keys in the store before the lookup-heavy runs\n"
		"                     (default 300k)\n"
		"  -j, --json         machine-readable JSON on stdout instead of the table\n"
		"  -P, --plot FILE    write a chart to FILE (PNG) through gnuplot; the\n"
		"                     gnuplot script is written beside it as FILE.gp\n"
		"  -D, --no-durable   skip the durable runs (in-memory stores only);\n"
		"                     --durable (-d) is accepted and is the default\n"
		"  -r, --repeat R     runs per point; the table shows the median (default 3)\n"
		"  -s, --seed N       key seed (default: fixed, so runs are repeatable)\n"
		"  -h, --help         this help\n"
		"\n"
		"Progress goes to stderr.  Thread counts above the number of cores are\n"
		"oversubscribed and marked with '*'.\n",
		prog);
}

static int cmd_demo(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "threads", required_argument, NULL, 't' },
		{ "ops", required_argument, NULL, 'n' },
		{ "prefill", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "plot", required_argument, NULL, 'P' },
		{ "durable", no_argument, NULL, 'd' },
		{ "no-durable", no_argument, NULL, 'D' },
		{ "seed", required_argument, NULL, 's' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long cores = ncores();
	demo_cfg_t cfg = { .max_threads = (unsigned)cores, .ops = 600000, .prefill = 300000,
			   .seed = 0x243f6a8885a308d3ull, .repeat = 3, .durable = true };
	unsigned long v;
	int c;
	const char *cmd = argv[0];
	optind = 0;
	while ((c = getopt_long(argc, argv, "t:n:p:jP:dDs:r:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_ulong(optarg, 1, 1024, &v) != 0)
				die_usage(cmd, "--threads wants a number from 1 to 1024, not '%s'", optarg);
			cfg.max_threads = (unsigned)v;
			break;
		case 'n':
			if (parse_ulong(optarg, 1, 1000000000000ul, &v) != 0)
				die_usage(cmd, "--ops wants a positive number, not '%s'", optarg);
			cfg.ops = v;
			break;
		case 'p':
			if (parse_ulong(optarg, 1, 1000000000000ul, &v) != 0)
				die_usage(cmd, "--prefill wants a positive number, not '%s'", optarg);
			cfg.prefill = v;
			break;
		case 'j': cfg.json = true; break;
		case 'P': cfg.plot = optarg; break;
		case 'd': cfg.durable = true; break;
		case 'D': cfg.durable = false; break;
		case 's':
			if (parse_ulong(optarg, 0, ULONG_MAX, &v) != 0)
				die_usage(cmd, "--seed wants a number, not '%s'", optarg);
			cfg.seed = v;
			break;
		case 'r':
			if (parse_ulong(optarg, 1, 101, &v) != 0)
				die_usage(cmd, "--repeat wants a number from 1 to 101, not '%s'", optarg);
			cfg.repeat = (unsigned)v;
			break;
		case 'h': usage_demo(stdout); return EXIT_OK;
		default: die_usage(cmd, "bad option");
		}
	}
	if (optind < argc)
		die_usage(cmd, "unexpected argument '%s'", argv[optind]);

	cpuinfo_t ci;
	double load[1] = { -1 };
	read_cpuinfo(&ci);
	if (getloadavg(load, 1) != 1)
		load[0] = -1;
	size_t nres = cfg.max_threads * 2u;
	result_t *res = calloc(nres, sizeof *res);
	durable_result_t dres[8];
	size_t ndres = 0;
	int durable_rc = 0;
	unsigned dthreads[2] = { 1, cfg.max_threads };
	unsigned ndthreads = cfg.max_threads > 1 ? 2 : 1;
	const double durable_secs = 1.0;
	progress_t pg = { .tty = isatty(STDERR_FILENO) == 1, .t0 = now_sec(),
			  .total = (unsigned)nres * 2 + (cfg.durable ? 2 * ndthreads : 0) };
	if (res == NULL) {
		fprintf(stderr, "%s %s: out of memory\n", prog, cmd);
		return EXIT_RUNTIME;
	}

	/* Measure: workload x threads x mode, each on a fresh store. */
	for (int wl = WL_INSERT; wl <= WL_LOOKUP; wl++) {
		for (unsigned t = 1; t <= cfg.max_threads; t++) {
			result_t *r = &res[(size_t)wl * cfg.max_threads + (t - 1)];
			r->wl = (workload_t)wl;
			r->threads = t;
			for (int mode = 0; mode < 2; mode++) {
				char what[160];
				int rc;
				snprintf(what, sizeof what, "%s, %s, %u thread%s%s", workload_name(r->wl),
					 mode ? "free-threaded" : "serialized", t, t == 1 ? "" : "s",
					 t > (unsigned)cores ? " (oversubscribed)" : "");
				progress_step(&pg, what);
				rc = measure_point(&cfg, r, mode, (unsigned)cores);
				if (rc != 0) {
					if (pg.tty)
						fputc('\n', stderr);
					free(res);
					return report_err(cmd, what, rc);
				}
				pg.done++;
			}
		}
	}

	/* The durable runs: time-bounded, since a SYNC insert waits for a disk
	 * flush and its rate depends on the device far more than on us. */
	if (cfg.durable) {
		static const cidstore_durability_t modes[2] = { CIDSTORE_DURABILITY_ASYNC,
								CIDSTORE_DURABILITY_SYNC };
		for (int m = 0; m < 2 && durable_rc == 0; m++) {
			for (unsigned ti = 0; ti < ndthreads; ti++) {
				char what[128];
				char *dir = make_tempdir("demo");
				cidstore_t *s = NULL;
				durable_result_t *d = &dres[ndres];
				uint64_t misses;
				int rc;
				snprintf(what, sizeof what, "durable %s, %u thread%s", durability_name(modes[m]),
					 dthreads[ti], dthreads[ti] == 1 ? "" : "s");
				progress_step(&pg, what);
				if (dir == NULL) {
					durable_rc = CIDSTORE_EIO;
					break;
				}
				rc = open_store(false, dir, modes[m], cfg.seed, &s);
				if (rc != 0) {
					durable_rc = rc;
					rm_tree(dir);
					free(dir);
					break;
				}
				d->d = modes[m];
				d->threads = dthreads[ti];
				rc = run_once(s, WL_INSERT, cfg.seed, 0, d->threads, 0, durable_secs,
					      &d->secs, &d->ops, &misses);
				double tc = now_sec();
				int crc = cidstore_close(s);
				d->close_secs = now_sec() - tc;
				rm_tree(dir);
				free(dir);
				if (rc == 0)
					rc = crc;
				if (rc != 0) {
					durable_rc = rc;
					break;
				}
				d->ops_s = d->secs > 0 ? (double)d->ops / d->secs : 0;
				ndres++;
				pg.done++;
			}
		}
	}
	progress_end(&pg);
	if (durable_rc != 0 && cfg.json) {
		if (durable_rc == CIDSTORE_ENOTSUP)
			fprintf(stderr, "%s %s: durable mode is not available in this build "
				"(cidstore_open with a directory: %s); skipped\n",
				prog, cmd, cidstore_strerror(durable_rc));
		else
			fprintf(stderr, "%s %s: durable run failed: %s; skipped\n", prog, cmd,
				cidstore_strerror(durable_rc));
	}

	/* Headline numbers for the summary: the top thread count within cores. */
	unsigned top = cfg.max_threads < (unsigned)cores ? cfg.max_threads : (unsigned)cores;
	const result_t *ins1 = &res[0], *insT = &res[top - 1];
	const result_t *lk1 = &res[cfg.max_threads], *lkT = &res[cfg.max_threads + top - 1];
	uint64_t total_misses = 0;
	for (size_t i = 0; i < nres; i++)
		total_misses += res[i].misses[0] + res[i].misses[1];

	if (cfg.json) {
		json_t j = { .f = stdout };
		json_obj(&j, NULL);
		json_str(&j, "version", cidstore_version());
		json_str(&j, "build_type", CIDSTORE_TOOL_BUILDTYPE);
		json_str(&j, "sanitizer", CIDSTORE_TOOL_SANITIZE);
		json_str(&j, "cpu", ci.model);
		json_i64(&j, "cores", cores);
		json_dbl(&j, "load_average_1min", load[0]);
		json_u64(&j, "max_threads", cfg.max_threads);
		json_u64(&j, "repeat", cfg.repeat);
		json_u64(&j, "ops_per_run", cfg.ops);
		json_u64(&j, "prefill", cfg.prefill);
		json_u64(&j, "seed", cfg.seed);
		json_u64(&j, "lookup_misses", total_misses);
		json_arr(&j, "results");
		for (size_t i = 0; i < nres; i++) {
			const result_t *r = &res[i];
			const result_t *r1 = &res[(size_t)r->wl * cfg.max_threads];
			json_obj(&j, NULL);
			json_str(&j, "workload", workload_name(r->wl));
			json_u64(&j, "threads", r->threads);
			json_bool(&j, "oversubscribed", r->threads > (unsigned)cores);
			json_dbl(&j, "serialized_ops_per_sec", r->ops_s[0]);
			json_dbl(&j, "free_threaded_ops_per_sec", r->ops_s[1]);
			json_dbl(&j, "serialized_secs", r->secs[0]);
			json_dbl(&j, "free_threaded_secs", r->secs[1]);
			json_u64(&j, "ops", r->ops[1]);
			json_dbl(&j, "speedup_vs_serialized", r->ops_s[1] / r->ops_s[0]);
			json_dbl(&j, "serialized_speedup_vs_1_thread", r->ops_s[0] / r1->ops_s[0]);
			json_dbl(&j, "free_threaded_speedup_vs_1_thread", r->ops_s[1] / r1->ops_s[1]);
			json_end_obj(&j);
		}
		json_end_arr(&j);
		json_obj(&j, "durable");
		json_bool(&j, "requested", cfg.durable);
		json_bool(&j, "available", cfg.durable && durable_rc == 0);
		if (cfg.durable && durable_rc != 0)
			json_str(&j, "error", cidstore_strerror(durable_rc));
		json_arr(&j, "results");
		for (size_t i = 0; i < ndres; i++) {
			json_obj(&j, NULL);
			json_str(&j, "durability", durability_name(dres[i].d));
			json_u64(&j, "threads", dres[i].threads);
			json_dbl(&j, "ops_per_sec", dres[i].ops_s);
			json_u64(&j, "ops", dres[i].ops);
			json_dbl(&j, "secs", dres[i].secs);
			json_dbl(&j, "close_secs", dres[i].close_secs);
			json_end_obj(&j);
		}
		json_end_arr(&j);
		json_end_obj(&j);
		json_end_obj(&j);
	} else {
		char a[32], b[32];
		printf("cidstore %s demo: in-memory store, %ld core%s (%s), %" PRIu64
		       " ops per run\n\n",
		       cidstore_version(), cores, cores == 1 ? "" : "s", ci.model, cfg.ops);
		printf("%-13s %8s %14s %14s %9s %9s %9s\n", "workload", "threads", "serialized",
		       "free-threaded", "free/ser", "ser/1T", "free/1T");
		printf("%-13s %8s %14s %14s %9s %9s %9s\n", "", "", "ops/s", "ops/s", "", "", "");
		for (size_t i = 0; i < nres; i++) {
			const result_t *r = &res[i];
			const result_t *r1 = &res[(size_t)r->wl * cfg.max_threads];
			char th[16];
			if (i > 0 && r->threads == 1)
				printf("\n");
			snprintf(th, sizeof th, "%u%s", r->threads,
				 r->threads > (unsigned)cores ? "*" : "");
			printf("%-13s %8s %14s %14s %8.2fx %8.2fx %8.2fx\n", workload_name(r->wl), th,
			       fmt_rate(r->ops_s[0], a, sizeof a), fmt_rate(r->ops_s[1], b, sizeof b),
			       r->ops_s[1] / r->ops_s[0], r->ops_s[0] / r1->ops_s[0],
			       r->ops_s[1] / r1->ops_s[1]);
		}
		if (cfg.max_threads > (unsigned)cores)
			printf("\n* more threads than cores: oversubscribed\n");
		if (ndres > 0) {
			printf("\ndurable insert-heavy (store in a temporary directory, %.0f s per run)\n",
			       durable_secs);
			printf("%-13s %8s %14s %12s\n", "durability", "threads", "ops/s", "close (s)");
			for (size_t i = 0; i < ndres; i++)
				printf("%-13s %8u %14s %12.3f\n", durability_name(dres[i].d),
				       dres[i].threads, fmt_rate(dres[i].ops_s, a, sizeof a),
				       dres[i].close_secs);
		} else if (cfg.durable) {
			if (durable_rc == CIDSTORE_ENOTSUP)
				printf("\ndurable mode is not available in this build (cidstore_open "
				       "with a directory: %s); durable runs skipped.\n",
				       cidstore_strerror(durable_rc));
			else
				printf("\ndurable run failed: %s; durable runs skipped.\n",
				       cidstore_strerror(durable_rc));
		}

		/* The summary paragraph: built in a buffer, then word-wrapped. */
		char *sum = NULL;
		size_t sumlen = 0;
		FILE *m = open_memstream(&sum, &sumlen);
		if (m == NULL) {
			free(res);
			return EXIT_RUNTIME;
		}
		fprintf(m,
			"Summary: what was measured is %s%u run%s per point, each on a "
			"fresh in-memory store (no durability), on a machine with %ld core%s, at 1 to "
			"%u thread%s. ",
			cfg.repeat == 1 ? "" : "the median of ", cfg.repeat,
			cfg.repeat == 1 ? "" : "s", cores, cores == 1 ? "" : "s",
			cfg.max_threads, cfg.max_threads == 1 ? "" : "s");
		if (cfg.max_threads > (unsigned)cores)
			fprintf(m, "Thread counts above %ld (marked *) are oversubscribed: the extra "
				   "threads only time-share the cores, so those rows show robustness "
				   "under preemption, not speed. ",
				cores);
		fprintf(m,
			"Serialized mode runs every operation under one global lock (the \"GIL on\" "
			"baseline); free-threaded mode is the real store, with no global lock. "
			"At %u thread%s, free-threaded insert-heavy (%" PRIu64 " inserts of fresh "
			"random keys into an empty store) ran at %s ops/s, %.2fx the serialized "
			"store and %.2fx its own 1-thread rate; lookup-heavy (90%% lookups of %" PRIu64
			" prefilled keys, 10%% inserts) ran at %s ops/s, %.2fx serialized and "
			"%.2fx its 1-thread rate. ",
			top, top == 1 ? "" : "s", cfg.ops, fmt_rate(insT->ops_s[1], a, sizeof a),
			insT->ops_s[1] / insT->ops_s[0], insT->ops_s[1] / ins1->ops_s[1], cfg.prefill,
			fmt_rate(lkT->ops_s[1], b, sizeof b), lkT->ops_s[1] / lkT->ops_s[0],
			lkT->ops_s[1] / lk1->ops_s[1]);
		if (load[0] >= 0.5)
			fprintf(m, "The machine was not idle: the 1-minute load average was %.1f "
				   "when the demo started, so other processes competed for the cores "
				   "and the multi-thread figures are lower than on a quiet machine. ",
				load[0]);
		if (cores > 1)
			fprintf(m, "On %ld cores no more than %ld-fold scaling is possible, and "
				   "anything else running on the machine shares those cores. ",
				cores, cores);
		bool super = false;
		for (size_t i = 0; i < nres; i++) {
			const result_t *r1 = &res[(size_t)res[i].wl * cfg.max_threads];
			unsigned ideal = res[i].threads < (unsigned)cores ? res[i].threads
									  : (unsigned)cores;
			if (res[i].ops_s[1] / r1->ops_s[1] > ideal * 1.05 ||
			    res[i].ops_s[0] / r1->ops_s[0] > ideal * 1.05)
				super = true;
		}
		if (super)
			fprintf(m, "Where a row shows more than that against 1 thread, it is not a "
				   "real speed-up: the 1-thread run lost more time to other processes "
				   "(or to a colder cache) than that row did -- noise of this "
				   "measurement. ");
		else if (cores == 1)
			fprintf(m, "With one core, threads can only take turns: no speed-up is "
				   "possible here. ");
		if (strcmp(CIDSTORE_TOOL_SANITIZE, "none") != 0 ||
		    strcmp(CIDSTORE_TOOL_BUILDTYPE, "release") != 0)
			fprintf(m, "This is a %s build (sanitizer: %s): its figures say nothing "
				   "about release performance. ",
				CIDSTORE_TOOL_BUILDTYPE, CIDSTORE_TOOL_SANITIZE);
		if (ndres > 0)
			fprintf(m, "The durable rows insert for %.0f s each into a store in a temporary "
				   "directory; sync calls wait for an fdatasync shared by all waiting "
				   "threads (group commit), async calls only for room in the ring, so "
				   "they depend on the disk more than on cidstore. ",
				durable_secs);
		if (total_misses > 0)
			fprintf(m, "WARNING: %" PRIu64 " lookups of prefilled keys found nothing; "
				   "the store lost keys. ",
				total_misses);
		fclose(m);
		printf("\n");
		print_wrapped(sum, 76);
		free(sum);
	}
	if (cfg.plot != NULL)
		write_plot(&cfg, res, nres, cores);
	free(res);
	return total_misses > 0 ? EXIT_RUNTIME : EXIT_OK;
}

/* ---------------------------------------------------------------------- */
/* Store commands: put, get, del, load, stats, checkpoint, verify, wal     */
/* ---------------------------------------------------------------------- */

/* Options of the commands that work on a store directory (put ... verify,
 * wal dump|analyze). */
typedef struct store_args {
	const char *dir;
	bool have_durability;
	cidstore_durability_t durability;
	bool json;
	bool have_from, have_limit; /* wal dump */
	uint64_t from, limit;
} store_args_t;

enum { OPT_DURABILITY = 0x100, OPT_FROM, OPT_LIMIT };

/* What parse_store_args accepts besides --dir and --help. */
enum {
	ARGS_JSON = 1 << 0, /* --json */
	ARGS_WAL = 1 << 1,  /* wal dump|analyze: --from and --limit, no --durability */
	ARGS_DUMP = 1 << 2, /* wal dump: --from and --limit apply */
};

/* A decimal number, no sign, no leading space: 0, or -1 when s is not one. */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

/* The number of --from or --limit (wal dump only) into *out. */
static void dump_number(const char *cmd, unsigned args, const char *opt, const char *what,
			uint64_t *out)
{
	if (!(args & ARGS_DUMP))
		die_usage(cmd, "%s applies to 'wal dump' only", opt);
	if (parse_u64(optarg, out) != 0)
		die_usage(cmd, "%s wants %s, not '%s'", opt, what, optarg);
}

/* Parses --dir, --help and the options `args` allows.  Returns the index of
 * the first operand. */
static int parse_store_args(int argc, char **argv, store_args_t *a, unsigned args,
			    void (*usage)(FILE *))
{
	static const struct option store_opts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "durability", required_argument, NULL, OPT_DURABILITY },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct option wal_opts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct option *longopts = args & ARGS_WAL ? wal_opts : store_opts;
	const char *cmd = argv[0];
	int c;
	memset(a, 0, sizeof *a);
	optind = 0;
	while ((c = getopt_long(argc, argv, "D:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'D': a->dir = optarg; break;
		case OPT_DURABILITY:
			if (parse_durability(optarg, &a->durability) != 0)
				die_usage(cmd, "--durability wants none, async or sync, not '%s'", optarg);
			a->have_durability = true;
			break;
		case OPT_FROM:
			dump_number(cmd, args, "--from", "an LSN (a decimal number)", &a->from);
			a->have_from = true;
			break;
		case OPT_LIMIT:
			dump_number(cmd, args, "--limit", "a number of lines", &a->limit);
			a->have_limit = true;
			break;
		case 'j':
			if (!(args & ARGS_JSON))
				die_usage(cmd, "unknown option --json");
			a->json = true;
			break;
		case 'h': usage(stdout); exit(EXIT_OK);
		default: die_usage(cmd, "bad option");
		}
	}
	return optind;
}

static void need_dir(const char *cmd, const store_args_t *a)
{
	if (a->dir == NULL || *a->dir == '\0')
		die_usage(cmd, "--dir DIR is required");
}

/* Opens the store in a->dir with durability `def` unless --durability. */
static int open_dir(const char *cmd, const store_args_t *a, cidstore_durability_t def,
		    cidstore_t **s)
{
	cidstore_options_t o;
	int rc;
	cidstore_options_init(&o);
	o.dir = a->dir;
	o.durability = a->have_durability ? a->durability : def;
	rc = cidstore_open(&o, s);
	if (rc != 0) {
		char what[512];
		snprintf(what, sizeof what, "cannot open store '%s'", a->dir);
		return report_err(cmd, what, rc);
	}
	return 0;
}

static void parse_cid_arg(const char *cmd, const char *what, const char *hex, cid_t *out)
{
	if (cid_from_hex(hex, out) != 0)
		die_usage(cmd, "%s must be 64 hex digits, not '%s'", what, hex);
}

static int close_store(const char *cmd, cidstore_t *s, int code)
{
	int rc = cidstore_close(s);
	if (rc != 0 && code == EXIT_OK)
		return report_err(cmd, "close", rc);
	return code;
}

#define STORE_OPTS_HELP                                                           \
	"  -D, --dir DIR         the store directory (created when missing)\n"   \
	"      --durability M    none, async or sync (default: sync; load: async\n" \
	"                        with one sync at the end)\n"                      \
	"  -h, --help            this help\n"

static void usage_put(FILE *f)
{
	fprintf(f,
		"Usage: %s put --dir DIR KEYHEX VALHEX\n"
		"\n"
		"Adds VALHEX to the set of values of KEYHEX (both 64 hex digits) and\n"
		"prints \"added\" or \"already there\".\n\n" STORE_OPTS_HELP,
		prog);
}

static int cmd_put(int argc, char **argv)
{
	store_args_t a;
	cid_t k, v;
	cidstore_t *s;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, 0, usage_put), rc;
	need_dir(cmd, &a);
	if (argc - i != 2)
		die_usage(cmd, "wants KEYHEX VALHEX");
	parse_cid_arg(cmd, "KEYHEX", argv[i], &k);
	parse_cid_arg(cmd, "VALHEX", argv[i + 1], &v);
	if ((rc = open_dir(cmd, &a, CIDSTORE_DURABILITY_SYNC, &s)) != 0)
		return rc;
	rc = cidstore_insert(s, &k, &v);
	if (rc < 0) {
		int code = report_err(cmd, "insert", rc);
		cidstore_close(s);
		return code;
	}
	printf("%s\n", rc == 1 ? "added" : "already there");
	return close_store(cmd, s, EXIT_OK);
}

static void usage_get(FILE *f)
{
	fprintf(f,
		"Usage: %s get --dir DIR KEYHEX [VALHEX]\n"
		"\n"
		"Prints the values of KEYHEX, one per line.  With VALHEX, prints \"yes\"\n"
		"or \"no\": whether the key holds that value.  Exits 1 when the key (or\n"
		"the pair) is not there.\n\n" STORE_OPTS_HELP,
		prog);
}

static int cmd_get(int argc, char **argv)
{
	store_args_t a;
	cid_t k, v;
	cidstore_t *s;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, 0, usage_get), rc;
	int code = EXIT_OK;
	need_dir(cmd, &a);
	if (argc - i != 1 && argc - i != 2)
		die_usage(cmd, "wants KEYHEX [VALHEX]");
	parse_cid_arg(cmd, "KEYHEX", argv[i], &k);
	if (argc - i == 2)
		parse_cid_arg(cmd, "VALHEX", argv[i + 1], &v);
	if ((rc = open_dir(cmd, &a, CIDSTORE_DURABILITY_SYNC, &s)) != 0)
		return rc;
	if (argc - i == 2) {
		rc = cidstore_contains(s, &k, &v);
		if (rc < 0)
			code = report_err(cmd, "contains", rc);
		else
			printf("%s\n", rc == 1 ? "yes" : "no"), code = rc == 1 ? EXIT_OK : EXIT_RUNTIME;
		return close_store(cmd, s, code);
	}
	/* The set may grow between the count and the copy: retry until it fits. */
	size_t cap = 16;
	cid_t *vals = NULL;
	long n;
	for (;;) {
		cid_t *nv = realloc(vals, cap * sizeof *vals);
		if (nv == NULL) {
			n = CIDSTORE_ENOMEM;
			break;
		}
		vals = nv;
		n = cidstore_lookup(s, &k, vals, cap);
		if (n < 0 || (size_t)n <= cap)
			break;
		cap = (size_t)n + (size_t)n / 4 + 1;
	}
	if (n < 0) {
		code = report_err(cmd, "lookup", (int)n);
	} else if (n == 0) {
		fprintf(stderr, "%s %s: key not found\n", prog, cmd);
		code = EXIT_RUNTIME;
	} else {
		char hex[65];
		for (long j = 0; j < n; j++) {
			cid_to_hex(&vals[j], hex);
			printf("%s\n", hex);
		}
	}
	free(vals);
	return close_store(cmd, s, code);
}

static void usage_del(FILE *f)
{
	fprintf(f,
		"Usage: %s del --dir DIR KEYHEX [VALHEX]\n"
		"\n"
		"Removes VALHEX from KEYHEX's set, or with no VALHEX the key and all its\n"
		"values, and prints how many values were removed.\n\n" STORE_OPTS_HELP,
		prog);
}

static int cmd_del(int argc, char **argv)
{
	store_args_t a;
	cid_t k, v;
	cidstore_t *s;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, 0, usage_del), rc;
	long n;
	need_dir(cmd, &a);
	if (argc - i != 1 && argc - i != 2)
		die_usage(cmd, "wants KEYHEX [VALHEX]");
	parse_cid_arg(cmd, "KEYHEX", argv[i], &k);
	if (argc - i == 2)
		parse_cid_arg(cmd, "VALHEX", argv[i + 1], &v);
	if ((rc = open_dir(cmd, &a, CIDSTORE_DURABILITY_SYNC, &s)) != 0)
		return rc;
	n = argc - i == 2 ? cidstore_delete_value(s, &k, &v) : cidstore_delete_key(s, &k);
	if (n < 0) {
		int code = report_err(cmd, "delete", (int)n);
		cidstore_close(s);
		return code;
	}
	printf("%ld removed\n", n);
	return close_store(cmd, s, EXIT_OK);
}

static void usage_load(FILE *f)
{
	fprintf(f,
		"Usage: %s load --dir DIR [FILE|-]\n"
		"\n"
		"Inserts every pair from FILE (or stdin), one \"keyhex valhex\" per line\n"
		"(blank lines and lines starting with '#' are skipped).  Stops at the\n"
		"first malformed line.  The store is opened with durability async and\n"
		"synced once at the end; a progress bar goes to stderr when it is a\n"
		"terminal.\n\n" STORE_OPTS_HELP,
		prog);
}

static void load_progress(bool tty, uint64_t lines, off_t pos, off_t size, double t0)
{
	double dt = now_sec() - t0;
	char r[32];
	fmt_rate(dt > 0 ? (double)lines / dt : 0, r, sizeof r);
	if (!tty)
		return;
	if (size > 0) {
		const int width = 30;
		int fill = (int)((double)pos / (double)size * width);
		if (fill > width)
			fill = width;
		fprintf(stderr, "\r\033[K[%.*s%*s] %3d%% %" PRIu64 " lines, %s lines/s", fill,
			"##############################", width - fill, "",
			(int)((double)pos * 100.0 / (double)size), lines, r);
	} else {
		fprintf(stderr, "\r\033[K%" PRIu64 " lines, %s lines/s", lines, r);
	}
	fflush(stderr);
}

/* Pairs go to the store in batches (cidstore_insert_many overlaps their
 * cache misses); each remembers its line for the error message. */
#define LOAD_BATCH 256
#define LOAD_UNSET INT_MIN /* a result cidstore_insert_many never writes */
typedef struct load_batch {
	cid_t k[LOAD_BATCH], v[LOAD_BATCH];
	uint64_t line[LOAD_BATCH];
	int res[LOAD_BATCH];
	size_t n;
} load_batch_t;

/* Inserts the pending pairs and counts them.  On an error, everything
 * before the failing pair is in and counted, as it was with one insert per
 * line, and the message names the failing pair's line: the first result
 * that is not 0 or 1.  When every pair has its result (a SYNC store whose
 * fdatasync failed after the batch) it names the batch's last line, the
 * line whose insert would have waited last.  Returns EXIT_OK or the exit
 * code of the error. */
static int load_flush(const char *cmd, cidstore_t *s, load_batch_t *b, bool tty,
		      uint64_t *added, uint64_t *present)
{
	size_t n = b->n;
	if (n == 0)
		return EXIT_OK;
	b->n = 0;
	for (size_t i = 0; i < n; i++)
		b->res[i] = LOAD_UNSET;
	long rc = cidstore_insert_many(s, b->k, b->v, n, b->res);
	size_t i = 0;
	for (; i < n && (b->res[i] == 0 || b->res[i] == 1); i++) {
		if (b->res[i] == 1)
			(*added)++;
		else
			(*present)++;
	}
	if (rc >= 0)
		return EXIT_OK;
	if (tty)
		fputc('\n', stderr);
	char what[64];
	snprintf(what, sizeof what, "insert (line %" PRIu64 ")", b->line[i < n ? i : n - 1]);
	return report_err(cmd, what, (int)rc);
}

static int cmd_load(int argc, char **argv)
{
	store_args_t a;
	cidstore_t *s;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, 0, usage_load), rc;
	const char *path = "-";
	FILE *in;
	need_dir(cmd, &a);
	if (argc - i > 1)
		die_usage(cmd, "wants at most one FILE");
	if (argc - i == 1)
		path = argv[i];
	in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (in == NULL) {
		fprintf(stderr, "%s %s: cannot open '%s': %s\n", prog, cmd, path, strerror(errno));
		return EXIT_RUNTIME;
	}
	struct stat st;
	off_t size = 0;
	if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
		size = st.st_size;
	if ((rc = open_dir(cmd, &a, CIDSTORE_DURABILITY_ASYNC, &s)) != 0) {
		if (in != stdin)
			fclose(in);
		return rc;
	}

	bool tty = isatty(STDERR_FILENO) == 1;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	uint64_t lineno = 0, added = 0, present = 0;
	double t0 = now_sec(), last = t0;
	int code = EXIT_OK;
	load_batch_t *b = calloc(1, sizeof(*b));
	if (b == NULL) {
		fprintf(stderr, "%s %s: out of memory\n", prog, cmd);
		if (in != stdin)
			fclose(in);
		cidstore_close(s);
		return EXIT_RUNTIME;
	}
	while ((len = getline(&line, &cap, in)) > 0) {
		char *p = line, *key, *val, *extra;
		lineno++;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		key = strtok(p, " \t\r\n");
		val = strtok(NULL, " \t\r\n");
		extra = strtok(NULL, " \t\r\n");
		if (key == NULL || val == NULL || extra != NULL ||
		    cid_from_hex(key, &b->k[b->n]) != 0 || cid_from_hex(val, &b->v[b->n]) != 0) {
			/* Every good line before this one goes in first, as
			 * when each was inserted as it was read; an insert
			 * error there is the one to report. */
			code = load_flush(cmd, s, b, tty, &added, &present);
			if (code != EXIT_OK)
				break;
			if (tty)
				fputc('\n', stderr);
			fprintf(stderr, "%s %s: %s:%" PRIu64 ": want \"keyhex valhex\" (64 hex digits each)\n",
				prog, cmd, path, lineno);
			code = EXIT_RUNTIME;
			break;
		}
		b->line[b->n++] = lineno;
		if (b->n == LOAD_BATCH) {
			code = load_flush(cmd, s, b, tty, &added, &present);
			if (code != EXIT_OK)
				break;
		}
		if ((lineno & 4095) == 0) {
			double t = now_sec();
			if (t - last >= 0.2) {
				load_progress(tty, lineno, ftello(in), size, t0);
				last = t;
			}
		}
	}
	if (code == EXIT_OK)
		code = load_flush(cmd, s, b, tty, &added, &present);
	if (code == EXIT_OK && ferror(in)) {
		fprintf(stderr, "%s %s: reading '%s': %s\n", prog, cmd, path, strerror(errno));
		code = EXIT_RUNTIME;
	}
	free(b);
	free(line);
	if (in != stdin)
		fclose(in);
	if (code == EXIT_OK) {
		load_progress(tty, lineno, size, size, t0);
		if (tty)
			fputc('\n', stderr);
		rc = cidstore_sync(s);
		if (rc != 0)
			code = report_err(cmd, "sync", rc);
	}
	code = close_store(cmd, s, code);
	double dt = now_sec() - t0;
	char r[32];
	printf("%" PRIu64 " pairs added, %" PRIu64 " already there, %.2f s (%s pairs/s)%s\n",
	       added, present, dt, fmt_rate(dt > 0 ? (double)(added + present) / dt : 0, r, sizeof r),
	       code == EXIT_OK ? "" : " -- stopped early");
	return code;
}

static void usage_stats(FILE *f)
{
	fprintf(f,
		"Usage: %s stats [--dir DIR] [--json]\n"
		"\n"
		"Prints the store's counters (keys, values, buckets, directory depth,\n"
		"memory, epoch garbage, WAL).  Without --dir it shows a fresh, empty\n"
		"in-memory store: the starting shape of the index.\n"
		"\n"
		"  -D, --dir DIR   the store directory\n"
		"  -j, --json      machine-readable JSON\n"
		"  -h, --help      this help\n",
		prog);
}

static int cmd_stats(int argc, char **argv)
{
	store_args_t a;
	cidstore_t *s;
	cidstore_stats_t st;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, ARGS_JSON, usage_stats), rc;
	if (argc - i != 0)
		die_usage(cmd, "unexpected argument '%s'", argv[i]);
	if (a.dir != NULL) {
		if ((rc = open_dir(cmd, &a, CIDSTORE_DURABILITY_SYNC, &s)) != 0)
			return rc;
	} else {
		rc = open_store(false, NULL, CIDSTORE_DURABILITY_NONE, 0, &s);
		if (rc != 0)
			return report_err(cmd, "cidstore_open (in memory)", rc);
	}
	rc = cidstore_stats(s, &st);
	if (rc != 0) {
		int code = report_err(cmd, "stats", rc);
		cidstore_close(s);
		return code;
	}
	if (a.json) {
		json_t j = { .f = stdout };
		json_obj(&j, NULL);
		if (a.dir)
			json_str(&j, "dir", a.dir);
		else
			json_null(&j, "dir");
		json_u64(&j, "keys", st.keys);
		json_u64(&j, "values", st.values);
		json_u64(&j, "spilled_keys", st.spilled_keys);
		json_u64(&j, "buckets", st.buckets);
		json_u64(&j, "global_depth", st.global_depth);
		json_u64(&j, "max_local_depth", st.max_local_depth);
		json_u64(&j, "splits", st.splits);
		json_u64(&j, "compactions", st.compactions);
		json_u64(&j, "dir_rebuilds", st.dir_rebuilds);
		json_u64(&j, "retired_pending", st.retired_pending);
		json_u64(&j, "memory_bytes", st.memory_bytes);
		json_u64(&j, "epoch_records", st.epoch_records);
		json_str(&j, "durability", durability_name(st.durability));
		json_u64(&j, "wal_lsn", st.wal_lsn);
		json_u64(&j, "wal_durable_lsn", st.wal_durable_lsn);
		json_u64(&j, "wal_bytes", st.wal_bytes);
		json_u64(&j, "wal_fsyncs", st.wal_fsyncs);
		json_u64(&j, "wal_records", st.wal_records);
		json_u64(&j, "checkpoints", st.checkpoints);
		json_bool(&j, "serialized", st.serialized);
		json_bool(&j, "failed", st.failed);
		json_str(&j, "failure", st.failed ? st.failure : "");
		json_end_obj(&j);
	} else {
		char b[32];
		printf("store            %s\n", a.dir ? a.dir : "(fresh in-memory store)");
		printf("keys             %" PRIu64 "\n", st.keys);
		printf("values           %" PRIu64 "\n", st.values);
		printf("spilled keys     %" PRIu64 " (3 or more values, in a value set)\n",
		       st.spilled_keys);
		printf("buckets          %" PRIu64 "\n", st.buckets);
		printf("directory depth  %u global, %u deepest bucket\n", st.global_depth,
		       st.max_local_depth);
		printf("splits           %" PRIu64 "\n", st.splits);
		printf("compactions      %" PRIu64 "\n", st.compactions);
		printf("dir rebuilds     %" PRIu64 "\n", st.dir_rebuilds);
		printf("memory           %s", fmt_bytes(st.memory_bytes, b, sizeof b));
		if (st.keys > 0)
			printf(" (%.1f bytes per key)", (double)st.memory_bytes / (double)st.keys);
		printf("\n");
		printf("epoch garbage    %" PRIu64 " objects pending, %" PRIu64 " thread records\n",
		       st.retired_pending, st.epoch_records);
		printf("durability       %s%s\n", durability_name(st.durability),
		       st.serialized ? ", serialized" : "");
		if (st.durability != CIDSTORE_DURABILITY_NONE) {
			printf("WAL              lsn %" PRIu64 ", durable up to %" PRIu64 ", %s live\n",
			       st.wal_lsn, st.wal_durable_lsn, fmt_bytes(st.wal_bytes, b, sizeof b));
			printf("                 %" PRIu64 " records, %" PRIu64 " fdatasyncs, %" PRIu64
			       " checkpoints since open\n",
			       st.wal_records, st.wal_fsyncs, st.checkpoints);
		}
		if (st.failed)
			printf("FAILED           %s (the store is read-only)\n", st.failure);
	}
	return close_store(cmd, s, st.failed ? EXIT_RUNTIME : EXIT_OK);
}

static void usage_checkpoint(FILE *f)
{
	fprintf(f,
		"Usage: %s checkpoint --dir DIR\n"
		"\n"
		"Writes a checkpoint of the store in DIR and trims its log.\n\n" STORE_OPTS_HELP,
		prog);
}

static int cmd_checkpoint(int argc, char **argv)
{
	store_args_t a;
	cidstore_t *s;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, 0, usage_checkpoint), rc;
	need_dir(cmd, &a);
	if (argc - i != 0)
		die_usage(cmd, "unexpected argument '%s'", argv[i]);
	if ((rc = open_dir(cmd, &a, CIDSTORE_DURABILITY_SYNC, &s)) != 0)
		return rc;
	double t0 = now_sec();
	rc = cidstore_checkpoint(s);
	if (rc != 0) {
		int code = report_err(cmd, "checkpoint", rc);
		cidstore_close(s);
		return code;
	}
	printf("checkpoint written in %.3f s\n", now_sec() - t0);
	return close_store(cmd, s, EXIT_OK);
}

/* ---------------------------------------------------------------------- */
/* verify, wal dump, wal analyze: read-only, through cidstore_verify and    */
/* cidstore_wal_read (no store is opened, no lock is taken).                */
/* ---------------------------------------------------------------------- */

/* "ECORRUPT" etc. for JSON; NULL for 0. */
static const char *err_name(int err)
{
	switch (err) {
	case 0: return NULL;
	case CIDSTORE_EINVAL: return "EINVAL";
	case CIDSTORE_ENOMEM: return "ENOMEM";
	case CIDSTORE_EIO: return "EIO";
	case CIDSTORE_ECORRUPT: return "ECORRUPT";
	case CIDSTORE_EVERSION: return "EVERSION";
	case CIDSTORE_EBUSY: return "EBUSY";
	case CIDSTORE_ENOTSUP: return "ENOTSUP";
	case CIDSTORE_ERDONLY: return "ERDONLY";
	case CIDSTORE_ERANGE: return "ERANGE";
	default: return "EUNKNOWN";
	}
}

/* "wal-<16 hex>.log": the segment file that starts at lsn. */
static const char *seg_file(uint64_t lsn, char *buf, size_t n)
{
	snprintf(buf, n, "wal-%016" PRIx64 ".log", lsn);
	return buf;
}

/* ISO-8601 UTC with nanoseconds: 2025-01-31T12:34:56.123456789Z. */
static const char *fmt_wall(uint64_t ns, char *buf, size_t n)
{
	time_t sec = (time_t)(ns / 1000000000u);
	struct tm tm;
	size_t k = 0;
	if (gmtime_r(&sec, &tm) != NULL)
		k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	if (k == 0) {
		snprintf(buf, n, "%" PRIu64 "ns", ns);
		return buf;
	}
	snprintf(buf + k, n - k, ".%09" PRIu64 "Z", ns % 1000000000u);
	return buf;
}

/* The message of a failed verify / wal_read, on stderr. */
static int report_inspect(const char *cmd, const char *dir, int rc, const char *msg)
{
	if (rc == CIDSTORE_EINVAL && msg[0] != '\0') { /* "DIR: not a directory", ... */
		fprintf(stderr, "%s %s: %s\n", prog, cmd, msg);
		return EXIT_RUNTIME;
	}
	fprintf(stderr, "%s %s: %s: %s%s%s\n", prog, cmd, dir, cidstore_strerror(rc),
		msg[0] ? ": " : "", msg);
	return EXIT_RUNTIME;
}

/* dir, ok, error and message: the first members of verify's and wal
 * analyze's JSON. */
static void json_outcome(json_t *j, const char *dir, int rc, const char *message)
{
	json_str(j, "dir", dir);
	json_bool(j, "ok", rc == 0);
	if (rc == 0)
		json_null(j, "error");
	else
		json_str(j, "error", err_name(rc));
	json_str(j, "message", message);
}

/* The torn tail (verify, wal analyze): in JSON, or as a line of the report. */
static void json_torn(json_t *j, bool torn, uint64_t segment, uint64_t offset)
{
	char file[40];
	json_bool(j, "torn", torn);
	if (torn) {
		json_str(j, "torn_file", seg_file(segment, file, sizeof file));
		json_u64(j, "torn_offset", offset);
	}
}

static void print_torn(bool torn, uint64_t segment, uint64_t offset)
{
	char file[40];
	if (torn)
		printf("torn tail        yes: %s offset %" PRIu64 " (recovery cuts it there)\n",
		       seg_file(segment, file, sizeof file), offset);
	else
		printf("torn tail        no\n");
}

static void usage_verify(FILE *f)
{
	fprintf(f,
		"Usage: %s verify --dir DIR [--json]\n"
		"\n"
		"Checks that the store in DIR would recover, without changing anything\n"
		"and without taking its lock: the checkpoints recovery would try are\n"
		"read and CRC-checked (newest first, falling back from a corrupt one as\n"
		"recovery does), every WAL segment recovery needs is validated record\n"
		"by record (format version, CRC, LSN sequence, segment continuity), and\n"
		"batches are counted as replay would.  A torn tail (a last write cut by\n"
		"a crash) is reported but is not an error: recovery cuts it.  On a store\n"
		"another process has open the answer is a snapshot.\n"
		"\n"
		"Exit status: 0 the directory would recover; 1 it would not (corrupt,\n"
		"written by a newer format, unreadable, not a directory: the reason,\n"
		"with file and offset, on stderr); 2 usage error.\n"
		"\n"
		"  -D, --dir DIR   the store directory (never created)\n"
		"  -j, --json      machine-readable JSON on stdout (also on failure)\n"
		"  -h, --help      this help\n",
		prog);
}

static int cmd_verify(int argc, char **argv)
{
	store_args_t a;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, ARGS_JSON, usage_verify);
	need_dir(cmd, &a);
	if (a.have_durability)
		die_usage(cmd, "--durability does not apply: verify opens no store");
	if (argc - i != 0)
		die_usage(cmd, "unexpected argument '%s'", argv[i]);
	cidstore_verify_result_t v;
	double t0 = now_sec();
	int rc = cidstore_verify(a.dir, &v);
	double dt = now_sec() - t0;
	if (a.json) {
		json_t j = { .f = stdout };
		json_obj(&j, NULL);
		json_outcome(&j, a.dir, rc, v.message);
		json_u64(&j, "checkpoint_files", v.checkpoints);
		json_obj(&j, "checkpoint");
		json_bool(&j, "loaded", v.have_checkpoint);
		json_bool(&j, "fallback", v.checkpoint_fallback);
		json_u64(&j, "lsn", v.checkpoint_lsn);
		json_u64(&j, "keys", v.checkpoint_keys);
		json_u64(&j, "values", v.checkpoint_values);
		json_end_obj(&j);
		json_u64(&j, "segments", v.segments);
		json_u64(&j, "records", v.records);
		json_u64(&j, "last_lsn", v.last_lsn);
		json_torn(&j, v.torn, v.torn_segment, v.torn_offset);
		json_u64(&j, "txn_committed", v.txn_committed);
		json_u64(&j, "txn_dropped", v.txn_dropped);
		json_dbl(&j, "seconds", dt);
		json_end_obj(&j);
	} else if (rc == 0) {
		printf("store            %s\n", a.dir);
		printf("result           ok: the directory would recover (checked in %.3f s)\n", dt);
		if (v.have_checkpoint)
			printf("checkpoint       LSN %" PRIu64 ", %" PRIu64 " keys, %" PRIu64
			       " values%s; %" PRIu64 " checkpoint file(s)\n",
			       v.checkpoint_lsn, v.checkpoint_keys, v.checkpoint_values,
			       v.checkpoint_fallback ? " (fallback: the newest one is corrupt)" : "",
			       v.checkpoints);
		else
			printf("checkpoint       none%s\n",
			       v.checkpoint_fallback ? " usable (every checkpoint file is corrupt; "
						       "the log holds everything)" : "");
		printf("WAL              %" PRIu64 " segment(s) read, %" PRIu64
		       " records, last LSN %" PRIu64 "\n", v.segments, v.records, v.last_lsn);
		print_torn(v.torn, v.torn_segment, v.torn_offset);
		printf("batches          %" PRIu64 " committed, %" PRIu64
		       " dropped (aborted or never committed)\n", v.txn_committed, v.txn_dropped);
	}
	if (rc != 0)
		return report_inspect(cmd, a.dir, rc, v.message);
	return EXIT_OK;
}

static void usage_wal(FILE *f)
{
	fprintf(f,
		"Usage: %s wal dump --dir DIR [--from LSN] [--limit N] [--json]\n"
		"       %s wal analyze --dir DIR [--json]\n"
		"\n"
		"Both read every WAL segment of DIR (oldest first, also those a\n"
		"checkpoint already covers) and validate every record as recovery does,\n"
		"without changing anything and without taking the store's lock.\n"
		"\n"
		"dump     one line per valid record, in LSN order:\n"
		"           SEGMENT-FILE OFFSET LSN OP [key=HEX] [value=HEX] [txn=ID] TIME\n"
		"         key for insert / delete_value / delete_key, value for insert /\n"
		"         delete_value, txn for records of a batch, TIME the record's\n"
		"         hybrid wall time in ISO-8601 UTC with nanoseconds; a segment\n"
		"         header shows version=V size=BYTES instead.  --json: JSON Lines,\n"
		"         one object per record.  A summary line (records shown, segments,\n"
		"         LSN range, torn tail) goes to stderr, so stdout holds records only.\n"
		"analyze  segments and bytes, LSN range, records per operation, batches\n"
		"         committed / aborted / unfinished and their operations, wall-clock\n"
		"         span and records per second over it, distinct keys, torn tail.\n"
		"\n"
		"A torn tail (a last write cut by a crash) is reported, not an error.\n"
		"Exit status: 0 valid log; 1 corrupt, newer format or unreadable (the\n"
		"records before the error are still printed; the reason, with file and\n"
		"offset, on stderr); 2 usage error.\n"
		"\n"
		"  -D, --dir DIR     the store directory (never created)\n"
		"      --from LSN    dump: start at this LSN (segment headers of later\n"
		"                    segments included)\n"
		"      --limit N     dump: stop after N lines\n"
		"  -j, --json        dump: JSON Lines; analyze: one JSON object\n"
		"  -h, --help        this help\n",
		prog, prog);
}

static bool op_has_key(int op)
{
	return op == CIDSTORE_WAL_INSERT || op == CIDSTORE_WAL_DELETE_VALUE ||
	       op == CIDSTORE_WAL_DELETE_KEY;
}

static bool op_has_value(int op)
{
	return op == CIDSTORE_WAL_INSERT || op == CIDSTORE_WAL_DELETE_VALUE;
}

static bool cid_is_zero(const cid_t *c)
{
	return (c->w[0] | c->w[1] | c->w[2] | c->w[3]) == 0;
}

typedef struct dump_ctx {
	bool json;
	uint64_t limit; /* 0: no limit */
	uint64_t shown;
} dump_ctx_t;

#define DUMP_LIMIT_REACHED 1 /* dump_rec's stop value */

static int dump_rec(const cidstore_wal_record_t *r, void *arg)
{
	dump_ctx_t *d = arg;
	char file[40], when[64], hex[65];
	bool hdr = r->op == CIDSTORE_WAL_SEGMENT_HEADER;
	/* CHECKPOINT (and any record kind a later format adds) carries no fixed
	 * key/value meaning: shown when non-zero. */
	bool key = op_has_key(r->op) || (!hdr && !cid_is_zero(&r->key) && r->op > 3);
	bool val = op_has_value(r->op) || (!hdr && !cid_is_zero(&r->value) && r->op > 3);
	seg_file(r->segment, file, sizeof file);
	fmt_wall(r->wall_ns, when, sizeof when);
	if (d->json) {
		json_t j = { .f = stdout, .compact = true };
		json_obj(&j, NULL);
		json_u64(&j, "segment", r->segment);
		json_str(&j, "file", file);
		json_u64(&j, "offset", r->offset);
		json_u64(&j, "lsn", r->lsn);
		json_str(&j, "op", cidstore_wal_op_name(r->op));
		json_u64(&j, "flags", r->flags);
		if (hdr) {
			json_u64(&j, "version", r->key.w[1]);
			json_u64(&j, "segment_bytes", r->key.w[2]);
		}
		if (key) {
			cid_to_hex(&r->key, hex);
			json_str(&j, "key", hex);
		}
		if (val) {
			cid_to_hex(&r->value, hex);
			json_str(&j, "value", hex);
		}
		json_u64(&j, "txn", r->txn);
		json_u64(&j, "wall_ns", r->wall_ns);
		json_str(&j, "time", when);
		json_u64(&j, "shard", r->shard);
		json_u64(&j, "seq", r->seq);
		json_end_obj(&j);
	} else {
		printf("%s %" PRIu64 " %" PRIu64 " %s", file, r->offset, r->lsn,
		       cidstore_wal_op_name(r->op));
		if (hdr)
			printf(" version=%" PRIu64 " size=%" PRIu64, r->key.w[1], r->key.w[2]);
		if (key) {
			cid_to_hex(&r->key, hex);
			printf(" key=%s", hex);
		}
		if (val) {
			cid_to_hex(&r->value, hex);
			printf(" value=%s", hex);
		}
		if (r->txn != 0)
			printf(" txn=%" PRIu64, r->txn);
		printf(" %s\n", when);
	}
	d->shown++;
	return d->limit != 0 && d->shown >= d->limit ? DUMP_LIMIT_REACHED : 0;
}

static int wal_dump(const char *cmd, const store_args_t *a)
{
	dump_ctx_t d = { .json = a->json, .limit = a->have_limit ? a->limit : 0 };
	cidstore_wal_summary_t sum;
	if (a->have_limit && a->limit == 0) {
		fprintf(stderr, "%s %s: 0 lines shown (--limit 0)\n", prog, cmd);
		return EXIT_OK;
	}
	int rc = cidstore_wal_read(a->dir, a->from, dump_rec, &d, &sum);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "%s %s: writing the output failed: %s\n", prog, cmd, strerror(errno));
		return EXIT_RUNTIME;
	}
	if (rc < 0)
		return report_inspect(cmd, a->dir, rc, sum.message);
	char file[40];
	if (rc == DUMP_LIMIT_REACHED) {
		fprintf(stderr, "%s %s: %" PRIu64 " lines shown; stopped at --limit "
				"(the rest of the log was not read)\n", prog, cmd, d.shown);
		return EXIT_OK;
	}
	fprintf(stderr, "%s %s: %" PRIu64 " lines shown; log: %" PRIu64 " segment(s), %" PRIu64
			" records, LSN %" PRIu64 "..%" PRIu64 ", %" PRIu64 " bytes; torn tail: ",
		prog, cmd, d.shown, sum.segments, sum.records, sum.first_lsn, sum.last_lsn,
		sum.bytes);
	if (sum.torn)
		fprintf(stderr, "%s offset %" PRIu64 "\n",
			seg_file(sum.torn_segment, file, sizeof file), sum.torn_offset);
	else
		fprintf(stderr, "no\n");
	return EXIT_OK;
}

/* A batch seen by analyze and not yet resolved. */
typedef struct open_txn {
	uint64_t id;
	uint64_t ops;
} open_txn_t;

typedef struct analyze_ctx {
	uint64_t ops[CIDSTORE_WAL_SEGMENT_HEADER + 1]; /* [0]: unknown kinds */
	uint64_t wall_min, wall_max, timed;
	uint64_t committed, committed_ops, aborted, aborted_ops;
	open_txn_t *open;
	size_t nopen, capopen;
	cidstore_t *keys; /* in-memory store: distinct keys */
	uint64_t distinct;
	int err;          /* first error of the key store */
} analyze_ctx_t;

static open_txn_t *analyze_txn(analyze_ctx_t *c, uint64_t id, bool create)
{
	for (size_t i = 0; i < c->nopen; i++)
		if (c->open[i].id == id)
			return &c->open[i];
	if (!create)
		return NULL;
	if (c->nopen == c->capopen) {
		size_t nc = c->capopen ? c->capopen * 2 : 16;
		open_txn_t *n = realloc(c->open, nc * sizeof *n);
		if (n == NULL)
			return NULL;
		c->open = n;
		c->capopen = nc;
	}
	open_txn_t *t = &c->open[c->nopen++];
	t->id = id;
	t->ops = 0;
	return t;
}

static int analyze_rec(const cidstore_wal_record_t *r, void *arg)
{
	analyze_ctx_t *c = arg;
	int op = r->op >= 1 && r->op <= CIDSTORE_WAL_SEGMENT_HEADER ? r->op : 0;
	c->ops[op]++;
	if (op == CIDSTORE_WAL_SEGMENT_HEADER)
		return 0;
	if (c->timed++ == 0 || r->wall_ns < c->wall_min)
		c->wall_min = r->wall_ns;
	if (r->wall_ns > c->wall_max)
		c->wall_max = r->wall_ns;
	if (op_has_key(op)) {
		static const cid_t one = { { 0, 0, 0, 1 } };
		int rc = cidstore_insert(c->keys, &r->key, &one);
		if (rc < 0)
			return c->err = rc;
		c->distinct += (uint64_t)rc;
		if (r->flags & 1u) { /* part of a batch: opened by its first record too */
			open_txn_t *t = analyze_txn(c, r->txn, true);
			if (t == NULL)
				return c->err = CIDSTORE_ENOMEM;
			t->ops++;
		}
	} else if (op == CIDSTORE_WAL_TXN_START) {
		if (analyze_txn(c, r->txn, true) == NULL)
			return c->err = CIDSTORE_ENOMEM;
	} else if (op == CIDSTORE_WAL_TXN_COMMIT || op == CIDSTORE_WAL_TXN_ABORT) {
		/* A batch whose start lies in a segment removed after a checkpoint
		 * counts with the operations still in the log. */
		open_txn_t *t = analyze_txn(c, r->txn, false);
		uint64_t n = t ? t->ops : 0;
		if (op == CIDSTORE_WAL_TXN_COMMIT) {
			c->committed++;
			c->committed_ops += n;
		} else {
			c->aborted++;
			c->aborted_ops += n;
		}
		if (t != NULL)
			*t = c->open[--c->nopen];
	}
	return 0;
}

static int wal_analyze(const char *cmd, const store_args_t *a)
{
	analyze_ctx_t c;
	memset(&c, 0, sizeof c);
	cidstore_options_t o;
	cidstore_options_init(&o); /* dir NULL: in memory */
	int rc = cidstore_open(&o, &c.keys);
	if (rc != 0)
		return report_err(cmd, "cidstore_open (in memory, for distinct keys)", rc);
	cidstore_wal_summary_t sum;
	double t0 = now_sec();
	rc = cidstore_wal_read(a->dir, 0, analyze_rec, &c, &sum);
	double dt = now_sec() - t0;
	if (c.err != 0) {
		snprintf(sum.message, sizeof sum.message, "counting distinct keys failed");
		rc = c.err;
	}
	uint64_t unfinished_ops = 0;
	for (size_t i = 0; i < c.nopen; i++)
		unfinished_ops += c.open[i].ops;
	uint64_t data = c.ops[CIDSTORE_WAL_INSERT] + c.ops[CIDSTORE_WAL_DELETE_VALUE] +
			c.ops[CIDSTORE_WAL_DELETE_KEY];
	double span = c.timed > 0 ? (double)(c.wall_max - c.wall_min) * 1e-9 : 0;
	double rate = span > 0 ? (double)sum.records / span : 0;
	char w1[64], w2[64], b[32], r[32];
	if (a->json) {
		json_t j = { .f = stdout };
		json_obj(&j, NULL);
		json_outcome(&j, a->dir, rc, rc == 0 ? "" : sum.message);
		json_u64(&j, "segments", sum.segments);
		json_u64(&j, "bytes", sum.bytes);
		json_u64(&j, "first_lsn", sum.first_lsn);
		json_u64(&j, "last_lsn", sum.last_lsn);
		json_u64(&j, "records", sum.records);
		json_obj(&j, "ops");
		for (int op = 1; op < CIDSTORE_WAL_SEGMENT_HEADER; op++)
			json_u64(&j, cidstore_wal_op_name(op), c.ops[op]);
		if (c.ops[0] != 0)
			json_u64(&j, "unknown", c.ops[0]);
		json_end_obj(&j);
		json_obj(&j, "transactions");
		json_u64(&j, "committed", c.committed);
		json_u64(&j, "committed_ops", c.committed_ops);
		json_u64(&j, "aborted", c.aborted);
		json_u64(&j, "aborted_ops", c.aborted_ops);
		json_u64(&j, "unfinished", c.nopen);
		json_u64(&j, "unfinished_ops", unfinished_ops);
		json_end_obj(&j);
		json_obj(&j, "wall");
		if (c.timed > 0) {
			json_str(&j, "first", fmt_wall(c.wall_min, w1, sizeof w1));
			json_str(&j, "last", fmt_wall(c.wall_max, w2, sizeof w2));
			json_u64(&j, "first_ns", c.wall_min);
			json_u64(&j, "last_ns", c.wall_max);
		}
		json_dbl(&j, "span_seconds", span);
		json_dbl(&j, "records_per_second", rate);
		json_end_obj(&j);
		json_u64(&j, "distinct_keys", c.distinct);
		json_u64(&j, "data_ops", data);
		json_torn(&j, sum.torn, sum.torn_segment, sum.torn_offset);
		json_dbl(&j, "seconds", dt);
		json_end_obj(&j);
	} else {
		printf("store            %s%s\n", a->dir,
		       rc == 0 ? "" : "  (INCOMPLETE: the log is not valid, see below)");
		printf("segments         %" PRIu64 ", %s\n", sum.segments,
		       fmt_bytes(sum.bytes, b, sizeof b));
		if (sum.records > 0)
			printf("LSN range        %" PRIu64 "..%" PRIu64 " (%" PRIu64 " records)\n",
			       sum.first_lsn, sum.last_lsn, sum.records);
		else
			printf("LSN range        empty (%" PRIu64 " records)\n", sum.records);
		printf("records by op   ");
		for (int op = 1; op < CIDSTORE_WAL_SEGMENT_HEADER; op++)
			printf(" %s %" PRIu64 "%s", cidstore_wal_op_name(op), c.ops[op],
			       op + 1 < CIDSTORE_WAL_SEGMENT_HEADER ? "," : "");
		if (c.ops[0] != 0)
			printf(", unknown %" PRIu64, c.ops[0]);
		printf("\n");
		printf("batches          %" PRIu64 " committed (%" PRIu64 " ops), %" PRIu64
		       " aborted (%" PRIu64 " ops), %zu unfinished (%" PRIu64 " ops)\n",
		       c.committed, c.committed_ops, c.aborted, c.aborted_ops, c.nopen,
		       unfinished_ops);
		if (c.timed > 0) {
			printf("wall clock       %s .. %s\n", fmt_wall(c.wall_min, w1, sizeof w1),
			       fmt_wall(c.wall_max, w2, sizeof w2));
			printf("                 %.3f s span, %s records/s over it\n", span,
			       fmt_rate(rate, r, sizeof r));
		}
		printf("distinct keys    %" PRIu64 " (in %" PRIu64 " insert/delete records)\n",
		       c.distinct, data);
		print_torn(sum.torn, sum.torn_segment, sum.torn_offset);
	}
	free(c.open);
	cidstore_close(c.keys);
	if (rc != 0)
		return report_inspect(cmd, a->dir, rc, sum.message);
	return EXIT_OK;
}

static int cmd_wal(int argc, char **argv)
{
	store_args_t a;
	const char *cmd = "wal";
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage_wal(stdout);
		return EXIT_OK;
	}
	if (argc < 2 || (strcmp(argv[1], "dump") != 0 && strcmp(argv[1], "analyze") != 0))
		die_usage(cmd, "wants 'dump' or 'analyze'");
	bool dump = strcmp(argv[1], "dump") == 0;
	char name[32];
	snprintf(name, sizeof name, "wal %s", argv[1]);
	argv[1] = name;
	int i = parse_store_args(argc - 1, argv + 1, &a, ARGS_JSON | ARGS_WAL | (dump ? ARGS_DUMP : 0),
				 usage_wal);
	need_dir(name, &a);
	if (argc - 1 - i != 0)
		die_usage(name, "unexpected argument '%s'", argv[1 + i]);
	return dump ? wal_dump(name, &a) : wal_analyze(name, &a);
}

/* ---------------------------------------------------------------------- */
/* main                                                                    */
/* ---------------------------------------------------------------------- */
typedef struct command {
	const char *name;
	int (*run)(int, char **);
	const char *summary;
} command_t;

static const command_t commands[] = {
	{ "config", cmd_config, "what this build and this machine give" },
	{ "demo", cmd_demo, "scaling demo: serialized vs free-threaded, 1..N threads" },
	{ "bench", cmd_demo, "same as demo" },
	{ "put", cmd_put, "add a value to a key's set" },
	{ "get", cmd_get, "print a key's values (or test one pair)" },
	{ "del", cmd_del, "remove a value, or a key with all its values" },
	{ "load", cmd_load, "bulk insert \"keyhex valhex\" lines" },
	{ "stats", cmd_stats, "print a store's counters" },
	{ "verify", cmd_verify, "check a store directory's files" },
	{ "checkpoint", cmd_checkpoint, "write a checkpoint and trim the log" },
	{ "wal", cmd_wal, "dump or analyze the write-ahead log" },
};

static void usage_main(FILE *f)
{
	fprintf(f,
		"Usage: %s [--version] [--help] COMMAND [ARGS]\n"
		"\n"
		"cidstore maps 256-bit content identifiers to sets of 256-bit values.\n"
		"\n"
		"Commands:\n",
		prog);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"'%s COMMAND --help' describes a command.  Keys and values are written\n"
		"as 64 hex digits.  Exit status: 0 success, 1 runtime error, 2 usage\n"
		"error or not supported by this build.\n",
		prog);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	/* '+': stop at the first non-option, the subcommand. */
	while ((c = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': usage_main(stdout); return EXIT_OK;
		case 'V': printf("cidstore %s\n", cidstore_version()); return EXIT_OK;
		default: usage_main(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage_main(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (strcmp(name, "help") == 0) {
		if (optind + 1 < argc) {
			/* `cidstore help put` == `cidstore put --help` */
			char *hargv[] = { argv[optind + 1], "--help", NULL };
			for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
				if (strcmp(commands[i].name, hargv[0]) == 0)
					return commands[i].run(2, hargv);
			fprintf(stderr, "%s: '%s' is not a command; see '%s --help'\n", prog, hargv[0], prog);
			return EXIT_USAGE;
		}
		usage_main(stdout);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return commands[i].run(argc - optind, argv + optind);
	fprintf(stderr, "%s: '%s' is not a command; see '%s --help'\n", prog, name, prog);
	return EXIT_USAGE;
}
