/*
 * wal_cmds.c — `cidstore wal dump` and `cidstore wal analyze`: the write-
 * ahead log of a store directory, read through cidstore_wal_read (recovery's
 * own reader and validation; nothing is changed and no lock is taken).
 * dump prints each record; analyze counts records per operation, distinct
 * keys (in an in-memory store of its own) and the wall-clock span, and
 * takes the batch counts from the library's summary.
 */
#include "inspect.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static void usage_wal(FILE *f)
{
	fprintf(f,
		"Usage: %s wal dump --dir DIR [--from LSN] [--limit N] [--json]\n"
		"       %s wal analyze --dir DIR [--json]\n"
		"\n"
		"Both read every WAL segment of DIR (oldest first, also those a\n"
		"checkpoint already covers) and validate every record as recovery does,\n"
		"without changing anything and without taking the store's lock (read\n"
		"access to DIR and its files is enough).\n"
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
		"         committed / aborted / unfinished and their operations (as\n"
		"         recovery counts them), wall-clock span and records per second\n"
		"         over it, distinct keys, torn tail.\n"
		"\n"
		"A torn tail (a last write cut by a crash) is reported, not an error.\n"
		"Exit status: 0 valid log; 1 corrupt, newer format or unreadable (the\n"
		"records before the error are still printed; the reason, with file and\n"
		"offset, on stderr); 2 usage error; 3 no such directory; 4 not a\n"
		"directory; 5 permission denied.\n"
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

/* ---------------------------------------------------------------------- */
/* wal dump                                                                */
/* ---------------------------------------------------------------------- */
typedef struct dump_ctx {
	bool json;
	uint64_t limit; /* 0: no limit */
	uint64_t shown;
} dump_ctx_t;

#define DUMP_LIMIT_REACHED 1 /* dump_rec's stop value */

static void dump_json(const cidstore_wal_record_t *r, bool key, bool val, const char *file,
		      const char *when)
{
	char hex[65];
	json_t j = { .f = stdout, .compact = true };
	json_obj(&j, NULL);
	json_u64(&j, "segment", r->segment);
	json_str(&j, "file", file);
	json_u64(&j, "offset", r->offset);
	json_u64(&j, "lsn", r->lsn);
	json_str(&j, "op", cidstore_wal_op_name(r->op));
	json_u64(&j, "flags", r->flags);
	if (r->op == CIDSTORE_WAL_SEGMENT_HEADER) {
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
}

static void dump_text(const cidstore_wal_record_t *r, bool key, bool val, const char *file,
		      const char *when)
{
	char hex[65];
	printf("%s %" PRIu64 " %" PRIu64 " %s", file, r->offset, r->lsn,
	       cidstore_wal_op_name(r->op));
	if (r->op == CIDSTORE_WAL_SEGMENT_HEADER)
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

static int dump_rec(const cidstore_wal_record_t *r, void *arg)
{
	dump_ctx_t *d = arg;
	char file[40], when[64];
	bool hdr = r->op == CIDSTORE_WAL_SEGMENT_HEADER;
	/* CHECKPOINT (and any record kind a later format adds) carries no fixed
	 * key/value meaning: shown when non-zero. */
	bool key = op_has_key(r->op) || (!hdr && !cid_is_zero(&r->key) && r->op > 3);
	bool val = op_has_value(r->op) || (!hdr && !cid_is_zero(&r->value) && r->op > 3);
	seg_file(r->segment, file, sizeof file);
	fmt_wall(r->wall_ns, when, sizeof when);
	if (d->json)
		dump_json(r, key, val, file, when);
	else
		dump_text(r, key, val, file, when);
	d->shown++;
	return d->limit != 0 && d->shown >= d->limit ? DUMP_LIMIT_REACHED : 0;
}

static int wal_dump(const char *cmd, const store_args_t *a)
{
	dump_ctx_t d = { .json = a->json, .limit = a->have_limit ? a->limit : 0 };
	cidstore_wal_summary_t sum;
	memset(&sum, 0, sizeof sum);
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
	const char *lines = plural(d.shown, "line", "lines");
	if (rc == DUMP_LIMIT_REACHED) {
		fprintf(stderr, "%s %s: %" PRIu64 " %s shown; stopped at --limit "
				"(the rest of the log was not read)\n", prog, cmd, d.shown, lines);
		return EXIT_OK;
	}
	char file[40];
	fprintf(stderr, "%s %s: %" PRIu64 " %s shown; log: %" PRIu64 " %s, %" PRIu64
			" %s, LSN %" PRIu64 "..%" PRIu64 ", %" PRIu64 " %s; torn tail: ",
		prog, cmd, d.shown, lines, sum.segments, plural(sum.segments, "segment", "segments"),
		sum.records, plural(sum.records, "record", "records"), sum.first_lsn, sum.last_lsn,
		sum.bytes, plural(sum.bytes, "byte", "bytes"));
	if (sum.torn)
		fprintf(stderr, "%s offset %" PRIu64 "\n",
			seg_file(sum.torn_segment, file, sizeof file), sum.torn_offset);
	else
		fprintf(stderr, "no\n");
	return EXIT_OK;
}

/* ---------------------------------------------------------------------- */
/* wal analyze                                                             */
/* ---------------------------------------------------------------------- */
typedef struct analyze_ctx {
	uint64_t ops[CIDSTORE_WAL_SEGMENT_HEADER + 1]; /* [0]: unknown kinds */
	uint64_t wall_min, wall_max, timed;
	cidstore_t *keys; /* in-memory store: distinct keys */
	uint64_t distinct;
	int err;          /* first error of the key store */
} analyze_ctx_t;

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
	}
	return 0;
}

static void analyze_json(const char *dir, int rc, const cidstore_wal_summary_t *sum,
			 const analyze_ctx_t *c, double dt)
{
	uint64_t data = c->ops[CIDSTORE_WAL_INSERT] + c->ops[CIDSTORE_WAL_DELETE_VALUE] +
			c->ops[CIDSTORE_WAL_DELETE_KEY];
	double span = c->timed > 0 ? (double)(c->wall_max - c->wall_min) * 1e-9 : 0;
	char w1[64], w2[64];
	json_t j = { .f = stdout };
	json_obj(&j, NULL);
	json_outcome(&j, dir, rc, rc == 0 ? "" : sum->message);
	json_u64(&j, "segments", sum->segments);
	json_u64(&j, "bytes", sum->bytes);
	json_u64(&j, "first_lsn", sum->first_lsn);
	json_u64(&j, "last_lsn", sum->last_lsn);
	json_u64(&j, "records", sum->records);
	json_obj(&j, "ops");
	for (int op = 1; op < CIDSTORE_WAL_SEGMENT_HEADER; op++)
		json_u64(&j, cidstore_wal_op_name(op), c->ops[op]);
	if (c->ops[0] != 0)
		json_u64(&j, "unknown", c->ops[0]);
	json_end_obj(&j);
	json_obj(&j, "transactions");
	json_u64(&j, "committed", sum->txn_committed);
	json_u64(&j, "committed_ops", sum->txn_committed_ops);
	json_u64(&j, "aborted", sum->txn_aborted);
	json_u64(&j, "aborted_ops", sum->txn_aborted_ops);
	json_u64(&j, "unfinished", sum->txn_unfinished);
	json_u64(&j, "unfinished_ops", sum->txn_unfinished_ops);
	json_end_obj(&j);
	json_obj(&j, "wall");
	if (c->timed > 0) {
		json_str(&j, "first", fmt_wall(c->wall_min, w1, sizeof w1));
		json_str(&j, "last", fmt_wall(c->wall_max, w2, sizeof w2));
		json_u64(&j, "first_ns", c->wall_min);
		json_u64(&j, "last_ns", c->wall_max);
	}
	json_dbl(&j, "span_seconds", span);
	json_dbl(&j, "records_per_second", span > 0 ? (double)sum->records / span : 0);
	json_end_obj(&j);
	json_u64(&j, "distinct_keys", c->distinct);
	json_u64(&j, "data_ops", data);
	json_torn(&j, sum->torn, sum->torn_segment, sum->torn_offset);
	json_dbl(&j, "seconds", dt);
	json_end_obj(&j);
}

static void analyze_text(const char *dir, int rc, const cidstore_wal_summary_t *sum,
			 const analyze_ctx_t *c)
{
	uint64_t data = c->ops[CIDSTORE_WAL_INSERT] + c->ops[CIDSTORE_WAL_DELETE_VALUE] +
			c->ops[CIDSTORE_WAL_DELETE_KEY];
	double span = c->timed > 0 ? (double)(c->wall_max - c->wall_min) * 1e-9 : 0;
	char w1[64], w2[64], b[32], r[32];
	printf("store            %s%s\n", dir,
	       rc == 0 ? "" : "  (INCOMPLETE: the log is not valid, see below)");
	printf("segments         %" PRIu64 ", %s\n", sum->segments,
	       fmt_bytes(sum->bytes, b, sizeof b));
	if (sum->records > 0)
		printf("LSN range        %" PRIu64 "..%" PRIu64 " (%" PRIu64 " %s)\n",
		       sum->first_lsn, sum->last_lsn, sum->records,
		       plural(sum->records, "record", "records"));
	else
		printf("LSN range        empty (0 records)\n");
	printf("records by op   ");
	for (int op = 1; op < CIDSTORE_WAL_SEGMENT_HEADER; op++)
		printf(" %s %" PRIu64 "%s", cidstore_wal_op_name(op), c->ops[op],
		       op + 1 < CIDSTORE_WAL_SEGMENT_HEADER ? "," : "");
	if (c->ops[0] != 0)
		printf(", unknown %" PRIu64, c->ops[0]);
	printf("\n");
	printf("batches          %" PRIu64 " committed (%" PRIu64 " %s), %" PRIu64
	       " aborted (%" PRIu64 " %s), %" PRIu64 " unfinished (%" PRIu64 " %s)\n",
	       sum->txn_committed, sum->txn_committed_ops,
	       plural(sum->txn_committed_ops, "op", "ops"), sum->txn_aborted,
	       sum->txn_aborted_ops, plural(sum->txn_aborted_ops, "op", "ops"),
	       sum->txn_unfinished, sum->txn_unfinished_ops,
	       plural(sum->txn_unfinished_ops, "op", "ops"));
	if (c->timed > 0) {
		printf("wall clock       %s .. %s\n", fmt_wall(c->wall_min, w1, sizeof w1),
		       fmt_wall(c->wall_max, w2, sizeof w2));
		printf("                 %.3f s span, %s records/s over it\n", span,
		       fmt_rate(span > 0 ? (double)sum->records / span : 0, r, sizeof r));
	}
	printf("distinct keys    %" PRIu64 " (in %" PRIu64 " insert/delete %s)\n", c->distinct,
	       data, plural(data, "record", "records"));
	print_torn(sum->torn, sum->torn_segment, sum->torn_offset);
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
	memset(&sum, 0, sizeof sum);
	double t0 = now_sec();
	rc = cidstore_wal_read(a->dir, 0, analyze_rec, &c, &sum);
	double dt = now_sec() - t0;
	if (c.err != 0) {
		snprintf(sum.message, sizeof sum.message, "counting distinct keys failed");
		rc = c.err;
	}
	if (a->json)
		analyze_json(a->dir, rc, &sum, &c, dt);
	else if (rc != CIDSTORE_ENOENT && rc != CIDSTORE_ENOTDIR && rc != CIDSTORE_EACCES)
		analyze_text(a->dir, rc, &sum, &c);
	cidstore_close(c.keys);
	if (rc != 0)
		return report_inspect(cmd, a->dir, rc, sum.message);
	return EXIT_OK;
}

int cmd_wal(int argc, char **argv)
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
	int i = parse_store_args(argc - 1, argv + 1, &a,
				 ARGS_JSON | ARGS_WAL | (dump ? ARGS_DUMP : 0), usage_wal);
	need_dir(name, &a);
	if (argc - 1 - i != 0)
		die_usage(name, "unexpected argument '%s'", argv[1 + i]);
	return dump ? wal_dump(name, &a) : wal_analyze(name, &a);
}
