/*
 * config.c — `cidstore config`: what this build and this machine give.
 *
 * Build facts and the SHA-256 / CRC32C kernels come from the library
 * (cidstore_build_info: it knows what it was built with and which code it
 * chose on this CPU).  Two things are facts about this process and are
 * found here: the allocator actually serving malloc (a library linked after
 * libc may be loaded without serving anything) and whether a store with a
 * directory opens (tried in a throw-away temporary directory).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "common.h"
#include "json.h"

#include <dlfcn.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The allocator serving malloc in this process: the library that the
 * dynamic linker resolved "malloc" to.  jemalloc also answers its version
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
		"Print what this build and this machine give, as the library reports it\n"
		"(cidstore_build_info): version, build type, compiler, sanitizer, debug\n"
		"checks, allocator, Concurrency Kit version, the SHA-256 and CRC32C code\n"
		"chosen on this CPU, the number of cores; then the allocator serving\n"
		"malloc in this process, whether stores with a directory work, and the\n"
		"default store options.\n"
		"\n"
		"  -j, --json   machine-readable JSON on stdout\n"
		"  -h, --help   this help\n",
		prog);
}

typedef struct config_facts {
	cidstore_build_info_t bi;
	cidstore_options_t o;
	char alloc[128], cpu[128];
	long cores_conf;
	int durable; /* probe_durable's answer */
} config_facts_t;

static void config_json(const config_facts_t *c)
{
	const cidstore_build_info_t *bi = &c->bi;
	const cidstore_options_t *o = &c->o;
	json_t j = { .f = stdout };
	json_obj(&j, NULL);
	json_str(&j, "version", bi->version);
	json_str(&j, "header_version", CIDSTORE_VERSION_STRING);
	json_obj(&j, "build");
	json_str(&j, "type", bi->build_type);
	json_str(&j, "compiler", bi->compiler);
	json_str(&j, "sanitizer", bi->sanitizer);
	json_bool(&j, "debug_checks", bi->debug_checks);
	json_bool(&j, "shake", bi->shake);
	json_str(&j, "allocator_option", bi->allocator);
	json_str(&j, "allocator_in_use", c->alloc);
	json_str(&j, "ck_version", bi->ck_version);
	json_bool(&j, "durable_stores", c->durable == 0);
	if (c->durable != 0)
		json_str(&j, "durable_stores_error", cidstore_strerror(c->durable));
	json_end_obj(&j);
	json_obj(&j, "cpu");
	json_str(&j, "model", c->cpu);
	json_u64(&j, "cores_online", bi->cores);
	json_i64(&j, "cores_configured", c->cores_conf);
	json_str(&j, "sha256", bi->sha256);
	json_str(&j, "crc32c", bi->crc32c);
	json_end_obj(&j);
	json_obj(&j, "defaults");
	json_str(&j, "durability", durability_name(o->durability));
	json_bool(&j, "serialized", o->serialized);
	json_u64(&j, "seed", o->seed);
	json_u64(&j, "ring_records", o->ring_records);
	json_u64(&j, "ring_bytes", (uint64_t)o->ring_records * 128u);
	json_u64(&j, "sync_interval_ms", o->sync_interval_ms);
	json_u64(&j, "checkpoint_wal_bytes", o->checkpoint_wal_bytes);
	json_u64(&j, "segment_bytes", o->segment_bytes);
	json_u64(&j, "recovery_threads", o->recovery_threads);
	json_u64(&j, "initial_depth", o->initial_depth);
	json_u64(&j, "expected_keys", o->expected_keys);
	json_bool(&j, "create_if_missing", o->create_if_missing);
	json_end_obj(&j);
	json_end_obj(&j);
}

static void config_text(const config_facts_t *c)
{
	const cidstore_build_info_t *bi = &c->bi;
	const cidstore_options_t *o = &c->o;
	char b1[32], b2[32];
	printf("cidstore %s\n\n", bi->version);
	printf("Build (as the library reports it)\n");
	printf("  build type         %s\n", bi->build_type);
	printf("  compiler           %s\n", bi->compiler);
	printf("  sanitizer          %s\n", bi->sanitizer);
	printf("  debug checks       %s\n", bi->debug_checks ? "yes (expensive invariant checks)" : "no");
	if (bi->shake)
		printf("  shake points       yes (injected yields: a testing build)\n");
	printf("  allocator          %s (built for), in use: %s\n", bi->allocator, c->alloc);
	printf("  Concurrency Kit    %s\n", bi->ck_version);
	printf("  durable stores     %s\n",
	       c->durable == 0 ? "available (dir != NULL)"
	       : c->durable == CIDSTORE_ENOTSUP
		       ? "not available in this build (in-memory only)"
		       : cidstore_strerror(c->durable));
	printf("\nMachine\n");
	printf("  CPU                %s\n", c->cpu);
	printf("  cores              %u online, %ld configured\n", bi->cores, c->cores_conf);
	printf("  SHA-256            %s\n", bi->sha256);
	printf("  CRC32C             %s\n", bi->crc32c);
	printf("\nDefault options (cidstore_options_init)\n");
	printf("  durability         %s (for stores with a directory; in-memory stores log nothing)\n",
	       durability_name(o->durability));
	printf("  serialized         %s\n", o->serialized ? "yes" : "no");
	printf("  seed               %" PRIu64 "%s\n", o->seed,
	       o->seed == 0 ? " (random per store)" : "");
	printf("  WAL ring           %" PRIu32 " records (%s)\n", o->ring_records,
	       fmt_bytes((uint64_t)o->ring_records * 128u, b1, sizeof b1));
	printf("  sync interval      %" PRIu32 " ms\n", o->sync_interval_ms);
	if (o->checkpoint_wal_bytes == 0)
		printf("  checkpoint after   never (manual checkpoints only)\n");
	else
		printf("  checkpoint after   %s of WAL\n",
		       fmt_bytes(o->checkpoint_wal_bytes, b1, sizeof b1));
	printf("  WAL segment        %s\n", fmt_bytes(o->segment_bytes, b2, sizeof b2));
	printf("  recovery threads   %u%s\n", o->recovery_threads,
	       o->recovery_threads == 0 ? " (one per core)" : "");
	printf("  initial depth      %u\n", o->initial_depth);
	printf("  expected keys      %" PRIu64 "%s\n", o->expected_keys,
	       o->expected_keys == 0 ? " (start small, grow online)" : "");
}

int cmd_config(int argc, char **argv)
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

	config_facts_t f;
	memset(&f, 0, sizeof f);
	int rc = cidstore_build_info(&f.bi);
	if (rc != 0)
		return report_err("config", "cidstore_build_info", rc);
	cidstore_options_init(&f.o);
	detect_allocator(f.alloc, sizeof f.alloc);
	cpu_model(f.cpu, sizeof f.cpu);
	f.cores_conf = sysconf(_SC_NPROCESSORS_CONF);
	f.durable = probe_durable();
	if (as_json)
		config_json(&f);
	else
		config_text(&f);
	return EXIT_OK;
}
