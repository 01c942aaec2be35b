/*
 * verify.c — `cidstore verify`: would this store directory recover?  Asks
 * cidstore_verify, which reads the files with recovery's own validation
 * code and changes nothing (no lock either, so it also runs beside a
 * process that has the store open: the answer is then a snapshot).
 */
#include "inspect.h"

#include <inttypes.h>
#include <string.h>

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
		"another process has open the answer is a snapshot.  Read access to DIR\n"
		"and its files is enough.\n"
		"\n"
		"Exit status: 0 the directory would recover; 1 it would not (corrupt,\n"
		"written by a newer format, unreadable: the reason, with file and\n"
		"offset, on stderr); 2 usage error; 3 no such directory; 4 not a\n"
		"directory; 5 permission denied.\n"
		"\n"
		"  -D, --dir DIR   the store directory (never created)\n"
		"  -j, --json      machine-readable JSON on stdout (also on failure)\n"
		"  -h, --help      this help\n",
		prog);
}

static void verify_json(const char *dir, int rc, const cidstore_verify_result_t *v, double dt)
{
	json_t j = { .f = stdout };
	json_obj(&j, NULL);
	json_outcome(&j, dir, rc, v->message);
	json_u64(&j, "checkpoint_files", v->checkpoints);
	json_obj(&j, "checkpoint");
	json_bool(&j, "loaded", v->have_checkpoint);
	json_bool(&j, "fallback", v->checkpoint_fallback);
	json_u64(&j, "lsn", v->checkpoint_lsn);
	json_u64(&j, "keys", v->checkpoint_keys);
	json_u64(&j, "values", v->checkpoint_values);
	json_end_obj(&j);
	json_u64(&j, "segments", v->segments);
	json_u64(&j, "records", v->records);
	json_u64(&j, "last_lsn", v->last_lsn);
	json_torn(&j, v->torn, v->torn_segment, v->torn_offset);
	json_u64(&j, "txn_committed", v->txn_committed);
	json_u64(&j, "txn_dropped", v->txn_dropped);
	json_dbl(&j, "seconds", dt);
	json_end_obj(&j);
}

static void verify_text(const char *dir, const cidstore_verify_result_t *v, double dt)
{
	printf("store            %s\n", dir);
	printf("result           ok: the directory would recover (checked in %.3f s)\n", dt);
	if (v->have_checkpoint)
		printf("checkpoint       LSN %" PRIu64 ", %" PRIu64 " %s, %" PRIu64 " %s%s; %"
		       PRIu64 " checkpoint %s\n",
		       v->checkpoint_lsn, v->checkpoint_keys,
		       plural(v->checkpoint_keys, "key", "keys"), v->checkpoint_values,
		       plural(v->checkpoint_values, "value", "values"),
		       v->checkpoint_fallback ? " (fallback: the newest one is corrupt)" : "",
		       v->checkpoints, plural(v->checkpoints, "file", "files"));
	else
		printf("checkpoint       none%s\n",
		       v->checkpoint_fallback ? " usable (every checkpoint file is corrupt; "
					       "the log holds everything)" : "");
	printf("WAL              %" PRIu64 " %s read, %" PRIu64 " %s, last LSN %" PRIu64 "\n",
	       v->segments, plural(v->segments, "segment", "segments"), v->records,
	       plural(v->records, "record", "records"), v->last_lsn);
	print_torn(v->torn, v->torn_segment, v->torn_offset);
	printf("batches          %" PRIu64 " committed, %" PRIu64
	       " dropped (aborted or never committed)\n", v->txn_committed, v->txn_dropped);
}

int cmd_verify(int argc, char **argv)
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
	memset(&v, 0, sizeof v);
	double t0 = now_sec();
	int rc = cidstore_verify(a.dir, &v);
	double dt = now_sec() - t0;
	if (a.json)
		verify_json(a.dir, rc, &v, dt);
	else if (rc == 0)
		verify_text(a.dir, &v, dt);
	if (rc != 0)
		return report_inspect(cmd, a.dir, rc, v.message);
	return EXIT_OK;
}
