/*
 * store_cmds.c — the commands that open a store directory for one small
 * job: put, get, del, stats, checkpoint.  How each opens it (common.c,
 * open_dir): get and stats read-only, never creating a store (so they work
 * on a directory the user may only read and beside a process that has the
 * store open); del for writing, never creating one; put and checkpoint for
 * writing, creating the store when it is missing.
 */
#include "common.h"
#include "json.h"

#include <inttypes.h>
#include <stdlib.h>

#define DIR_CREATE_HELP "  -D, --dir DIR         the store directory (created when missing)\n"
#define DIR_EXISTING_HELP "  -D, --dir DIR         the store directory (must exist)\n"
#define DIR_READ_HELP                                                             \
	"  -D, --dir DIR         the store directory (must exist; opened read-only:\n" \
	"                        read access is enough, and another process may\n"  \
	"                        have the store open)\n"
#define DURABILITY_HELP                                                           \
	"      --durability M    none, async or sync (default: sync)\n"
#define HELP_HELP "  -h, --help            this help\n"

static void usage_put(FILE *f)
{
	fprintf(f,
		"Usage: %s put --dir DIR KEYHEX VALHEX\n"
		"\n"
		"Adds VALHEX to the set of values of KEYHEX (both 64 hex digits) and\n"
		"prints \"added\" or \"already there\".\n\n"
		DIR_CREATE_HELP DURABILITY_HELP HELP_HELP "\n" EXIT_CODES_HELP,
		prog);
}

int cmd_put(int argc, char **argv)
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
	if ((rc = open_dir(cmd, &a, OPEN_CREATE, CIDSTORE_DURABILITY_SYNC, &s)) != 0)
		return rc;
	rc = cidstore_insert(s, &k, &v);
	if (rc < 0) {
		int code = report_store(cmd, a.dir, OPEN_CREATE, "insert", rc);
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
		"the pair) is not there.  Never creates or changes a store.\n\n"
		DIR_READ_HELP
		"      --durability M    accepted for compatibility; a read changes nothing\n"
		HELP_HELP "\n" EXIT_CODES_HELP,
		prog);
}

/* Prints every value of k; the set may grow between the count and the
 * copy, so it retries until the copy holds all. */
static int print_values(const char *cmd, cidstore_t *s, const cid_t *k)
{
	size_t cap = 16;
	cid_t *vals = NULL;
	long n;
	int code = EXIT_OK;
	for (;;) {
		cid_t *nv = realloc(vals, cap * sizeof *vals);
		if (nv == NULL) {
			n = CIDSTORE_ENOMEM;
			break;
		}
		vals = nv;
		n = cidstore_lookup(s, k, vals, cap);
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
	return code;
}

/* get and del: --dir and the operands KEYHEX [VALHEX] (exits 2 on anything
 * else).  Returns whether VALHEX was given. */
static bool parse_key_val(const char *cmd, const store_args_t *a, int nargs, char **args,
			  cid_t *k, cid_t *v)
{
	need_dir(cmd, a);
	if (nargs != 1 && nargs != 2)
		die_usage(cmd, "wants KEYHEX [VALHEX]");
	parse_cid_arg(cmd, "KEYHEX", args[0], k);
	if (nargs == 2)
		parse_cid_arg(cmd, "VALHEX", args[1], v);
	return nargs == 2;
}

int cmd_get(int argc, char **argv)
{
	store_args_t a;
	cid_t k, v;
	cidstore_t *s;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, 0, usage_get), rc;
	int code;
	bool with_val = parse_key_val(cmd, &a, argc - i, argv + i, &k, &v);
	if ((rc = open_dir(cmd, &a, OPEN_READ, CIDSTORE_DURABILITY_SYNC, &s)) != 0)
		return rc;
	if (!with_val) {
		code = print_values(cmd, s, &k);
	} else if ((rc = cidstore_contains(s, &k, &v)) < 0) {
		code = report_err(cmd, "contains", rc);
	} else {
		printf("%s\n", rc == 1 ? "yes" : "no");
		code = rc == 1 ? EXIT_OK : EXIT_RUNTIME;
	}
	return close_store(cmd, s, code);
}

static void usage_del(FILE *f)
{
	fprintf(f,
		"Usage: %s del --dir DIR KEYHEX [VALHEX]\n"
		"\n"
		"Removes VALHEX from KEYHEX's set, or with no VALHEX the key and all its\n"
		"values, and prints how many values were removed.  Never creates a\n"
		"store: a missing DIR is an error (exit 3).\n\n"
		DIR_EXISTING_HELP DURABILITY_HELP HELP_HELP "\n" EXIT_CODES_HELP,
		prog);
}

int cmd_del(int argc, char **argv)
{
	store_args_t a;
	cid_t k, v;
	cidstore_t *s;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, 0, usage_del), rc;
	long n;
	bool with_val = parse_key_val(cmd, &a, argc - i, argv + i, &k, &v);
	if ((rc = open_dir(cmd, &a, OPEN_WRITE, CIDSTORE_DURABILITY_SYNC, &s)) != 0)
		return rc;
	n = with_val ? cidstore_delete_value(s, &k, &v) : cidstore_delete_key(s, &k);
	if (n < 0) {
		int code = report_store(cmd, a.dir, OPEN_WRITE, "delete", (int)n);
		cidstore_close(s);
		return code;
	}
	printf("%ld removed\n", n);
	return close_store(cmd, s, EXIT_OK);
}

static void usage_stats(FILE *f)
{
	fprintf(f,
		"Usage: %s stats [--dir DIR] [--json | --prometheus]\n"
		"\n"
		"Prints the store's counters (keys, values, buckets, directory depth,\n"
		"memory, epoch garbage, WAL).  Without --dir it shows a fresh, empty\n"
		"in-memory store: the starting shape of the index.  Never creates or\n"
		"changes a store.\n"
		"\n"
		DIR_READ_HELP
		"  -j, --json            machine-readable JSON\n"
		"      --prometheus      the Prometheus text format (0.0.4) of\n"
		"                        cidstore_metrics_prometheus: the data and\n"
		"                        recovery gauges of the store as this command\n"
		"                        opened it (read-only: no log; call counters\n"
		"                        count this command's own calls only)\n"
		HELP_HELP "\n" EXIT_CODES_HELP,
		prog);
}

static void stats_json(const char *dir, const cidstore_stats_t *st)
{
	json_t j = { .f = stdout };
	json_obj(&j, NULL);
	if (dir)
		json_str(&j, "dir", dir);
	else
		json_null(&j, "dir");
	json_u64(&j, "keys", st->keys);
	json_u64(&j, "values", st->values);
	json_u64(&j, "spilled_keys", st->spilled_keys);
	json_u64(&j, "buckets", st->buckets);
	json_u64(&j, "global_depth", st->global_depth);
	json_u64(&j, "max_local_depth", st->max_local_depth);
	json_u64(&j, "splits", st->splits);
	json_u64(&j, "compactions", st->compactions);
	json_u64(&j, "dir_rebuilds", st->dir_rebuilds);
	json_u64(&j, "retired_pending", st->retired_pending);
	json_u64(&j, "memory_bytes", st->memory_bytes);
	json_u64(&j, "epoch_records", st->epoch_records);
	json_str(&j, "durability", durability_name(st->durability));
	json_u64(&j, "wal_lsn", st->wal_lsn);
	json_u64(&j, "wal_durable_lsn", st->wal_durable_lsn);
	json_u64(&j, "wal_bytes", st->wal_bytes);
	json_u64(&j, "wal_fsyncs", st->wal_fsyncs);
	json_u64(&j, "wal_records", st->wal_records);
	json_u64(&j, "checkpoints", st->checkpoints);
	json_bool(&j, "serialized", st->serialized);
	json_bool(&j, "failed", st->failed);
	json_str(&j, "failure", st->failed ? st->failure : "");
	json_end_obj(&j);
}

static void stats_text(const char *dir, const cidstore_stats_t *st)
{
	char b[32];
	printf("store            %s\n", dir ? dir : "(fresh in-memory store)");
	printf("keys             %" PRIu64 "\n", st->keys);
	printf("values           %" PRIu64 "\n", st->values);
	printf("spilled keys     %" PRIu64 " (3 or more values, in a value set)\n",
	       st->spilled_keys);
	printf("buckets          %" PRIu64 "\n", st->buckets);
	printf("directory depth  %u global, %u deepest bucket\n", st->global_depth,
	       st->max_local_depth);
	printf("splits           %" PRIu64 "\n", st->splits);
	printf("compactions      %" PRIu64 "\n", st->compactions);
	printf("dir rebuilds     %" PRIu64 "\n", st->dir_rebuilds);
	printf("memory           %s", fmt_bytes(st->memory_bytes, b, sizeof b));
	if (st->keys > 0)
		printf(" (%.1f bytes per key)", (double)st->memory_bytes / (double)st->keys);
	printf("\n");
	printf("epoch garbage    %" PRIu64 " %s pending, %" PRIu64 " thread %s\n",
	       st->retired_pending, plural(st->retired_pending, "object", "objects"),
	       st->epoch_records, plural(st->epoch_records, "record", "records"));
	printf("durability       %s%s\n", durability_name(st->durability),
	       st->serialized ? ", serialized" : "");
	if (st->durability != CIDSTORE_DURABILITY_NONE) {
		printf("WAL              lsn %" PRIu64 ", durable up to %" PRIu64 ", %s live\n",
		       st->wal_lsn, st->wal_durable_lsn, fmt_bytes(st->wal_bytes, b, sizeof b));
		printf("                 %" PRIu64 " %s, %" PRIu64 " %s, %" PRIu64
		       " %s since open\n",
		       st->wal_records, plural(st->wal_records, "record", "records"),
		       st->wal_fsyncs, plural(st->wal_fsyncs, "fdatasync", "fdatasyncs"),
		       st->checkpoints, plural(st->checkpoints, "checkpoint", "checkpoints"));
	}
	if (st->failed)
		printf("FAILED           %s (the store is read-only)\n", st->failure);
}

/* Prints cidstore_metrics_prometheus, growing the buffer until it fits
 * (the text may grow between two calls while the store changes). */
static int stats_prometheus(const char *cmd, cidstore_t *s)
{
	size_t cap = 64 * 1024;
	char *buf = NULL;
	for (;;) {
		char *nb = realloc(buf, cap);
		if (nb == NULL) {
			free(buf);
			return report_err(cmd, "metrics", CIDSTORE_ENOMEM);
		}
		buf = nb;
		long n = cidstore_metrics_prometheus(s, buf, cap);
		if (n < 0) {
			free(buf);
			return report_err(cmd, "metrics", (int)n);
		}
		if ((size_t)n < cap) {
			fwrite(buf, 1, (size_t)n, stdout);
			free(buf);
			return EXIT_OK;
		}
		cap = (size_t)n + (size_t)n / 4 + 1;
	}
}

int cmd_stats(int argc, char **argv)
{
	store_args_t a;
	cidstore_t *s;
	cidstore_stats_t st;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, ARGS_JSON | ARGS_PROMETHEUS, usage_stats), rc;
	if (argc - i != 0)
		die_usage(cmd, "unexpected argument '%s'", argv[i]);
	if (a.json && a.prometheus)
		die_usage(cmd, "--json and --prometheus exclude each other");
	if (a.dir != NULL) {
		if ((rc = open_dir(cmd, &a, OPEN_READ, CIDSTORE_DURABILITY_SYNC, &s)) != 0)
			return rc;
	} else {
		cidstore_options_t o;
		cidstore_options_init(&o);
		o.durability = CIDSTORE_DURABILITY_NONE;
		if ((rc = cidstore_open(&o, &s)) != 0)
			return report_err(cmd, "cidstore_open (in memory)", rc);
	}
	rc = cidstore_stats(s, &st);
	if (rc != 0) {
		int code = report_err(cmd, "stats", rc);
		cidstore_close(s);
		return code;
	}
	if (a.prometheus) {
		int code = stats_prometheus(cmd, s);
		if (code != EXIT_OK) {
			cidstore_close(s);
			return code;
		}
	} else if (a.json)
		stats_json(a.dir, &st);
	else
		stats_text(a.dir, &st);
	return close_store(cmd, s, st.failed ? EXIT_RUNTIME : EXIT_OK);
}

static void usage_checkpoint(FILE *f)
{
	fprintf(f,
		"Usage: %s checkpoint --dir DIR\n"
		"\n"
		"Writes a checkpoint of the store in DIR and trims its log.\n\n"
		DIR_CREATE_HELP DURABILITY_HELP HELP_HELP "\n" EXIT_CODES_HELP,
		prog);
}

int cmd_checkpoint(int argc, char **argv)
{
	store_args_t a;
	cidstore_t *s;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, 0, usage_checkpoint), rc;
	need_dir(cmd, &a);
	if (argc - i != 0)
		die_usage(cmd, "unexpected argument '%s'", argv[i]);
	if ((rc = open_dir(cmd, &a, OPEN_CREATE, CIDSTORE_DURABILITY_SYNC, &s)) != 0)
		return rc;
	double t0 = now_sec();
	rc = cidstore_checkpoint(s);
	if (rc != 0) {
		int code = report_store(cmd, a.dir, OPEN_CREATE, "checkpoint", rc);
		cidstore_close(s);
		return code;
	}
	printf("checkpoint written in %.3f s\n", now_sec() - t0);
	return close_store(cmd, s, EXIT_OK);
}

static void usage_maintain(FILE *f)
{
	fprintf(f,
		"Usage: %s maintain --dir DIR\n"
		"\n"
		"Runs one maintenance pass on the store in DIR (cidstore_maintain): the\n"
		"index gives back memory that deletes left behind, a checkpoint is taken\n"
		"when one is due, and prints what the pass did.  Never creates a store:\n"
		"a missing DIR is an error (exit 3).\n\n"
		DIR_EXISTING_HELP DURABILITY_HELP HELP_HELP "\n" EXIT_CODES_HELP,
		prog);
}

int cmd_maintain(int argc, char **argv)
{
	store_args_t a;
	cidstore_t *s;
	const char *cmd = argv[0];
	int i = parse_store_args(argc, argv, &a, 0, usage_maintain), rc;
	need_dir(cmd, &a);
	if (argc - i != 0)
		die_usage(cmd, "unexpected argument '%s'", argv[i]);
	if ((rc = open_dir(cmd, &a, OPEN_WRITE, CIDSTORE_DURABILITY_SYNC, &s)) != 0)
		return rc;
	cidstore_stats_t b, e;
	cidstore_stats(s, &b);
	double t0 = now_sec();
	rc = cidstore_maintain(s);
	if (rc != 0) {
		int code = report_store(cmd, a.dir, OPEN_WRITE, "maintain", rc);
		cidstore_close(s);
		return code;
	}
	double dt = now_sec() - t0;
	cidstore_stats(s, &e);
	printf("maintenance pass in %.3f s: %llu entries moved, %llu chunks (%llu bytes) "
	       "released, %llu tables shrunk, %llu checkpoints; index memory %llu -> %llu bytes\n",
	       dt, (unsigned long long)(e.maint_entries_moved - b.maint_entries_moved),
	       (unsigned long long)(e.maint_chunks_released - b.maint_chunks_released),
	       (unsigned long long)(e.maint_bytes_released - b.maint_bytes_released),
	       (unsigned long long)(e.maint_tables_shrunk - b.maint_tables_shrunk),
	       (unsigned long long)(e.checkpoints - b.checkpoints),
	       (unsigned long long)b.memory_bytes, (unsigned long long)e.memory_bytes);
	return close_store(cmd, s, EXIT_OK);
}
