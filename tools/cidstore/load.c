/*
 * load.c — `cidstore load`: bulk insert of "KEYHEX VALHEX" lines.
 *
 * The store is opened (created when missing) with durability async and
 * synced once at the end.  Pairs go in through cidstore_insert_many,
 * LOAD_BATCH at a time, each remembering its line for messages.  At a bad
 * line, every good line before it goes in first (as if each had been
 * inserted when read), so what the message says is in the store is; then
 * the load stops, or with --skip-bad names the line and goes on.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage_load(FILE *f)
{
	fprintf(f,
		"Usage: %s load --dir DIR [--skip-bad] [FILE|-]\n"
		"\n"
		"Inserts every pair read from FILE (or stdin when FILE is absent or -).\n"
		"\n"
		"Format: one pair per line, lines ending in LF (a CR before it is\n"
		"allowed), the last line's LF optional:\n"
		"  KEYHEX VALHEX\n"
		"KEYHEX and VALHEX are exactly 64 hex digits each (either case, no 0x),\n"
		"separated by one or more spaces or tabs; spaces and tabs may also come\n"
		"before KEYHEX and after VALHEX.  A line that is empty, all blanks, or\n"
		"whose first non-blank character is '#' is skipped.  Anything else --\n"
		"one field or three, a field that is not 64 hex digits, a NUL byte --\n"
		"is a bad line.  A pair already in the store counts as \"already there\".\n"
		"\n"
		"At a bad line the load stops (exit 1) with FILE:LINE and the reason on\n"
		"stderr; every pair on the lines before it is in the store and synced,\n"
		"and the message says how many.  With --skip-bad each bad line is\n"
		"reported the same way (FILE:LINE: reason) and skipped, the count of\n"
		"skipped lines comes at the end, and the exit status is 0.\n"
		"\n"
		"The store is opened with durability async and synced once at the end;\n"
		"a progress bar goes to stderr when it is a terminal.  The last line on\n"
		"stdout counts the pairs added and already there.\n"
		"\n"
		"  -D, --dir DIR         the store directory (created when missing)\n"
		"      --durability M    none, async or sync (default: async, with one\n"
		"                        sync at the end)\n"
		"      --skip-bad        report and skip bad lines instead of stopping\n"
		"  -h, --help            this help\n"
		"\n" EXIT_CODES_HELP,
		prog);
}

typedef struct load_state {
	const char *cmd, *dir, *path;
	cidstore_t *s;
	bool tty;
	uint64_t lineno, added, present, bad;
	double t0;
} load_state_t;

static void load_progress(const load_state_t *ls, off_t pos, off_t size)
{
	double dt = now_sec() - ls->t0;
	char r[32];
	if (!ls->tty)
		return;
	fmt_rate(dt > 0 ? (double)ls->lineno / dt : 0, r, sizeof r);
	if (size > 0) {
		const int width = 30;
		int fill = (int)((double)pos / (double)size * width);
		if (fill > width)
			fill = width;
		fprintf(stderr, "\r\033[K[%.*s%*s] %3d%% %" PRIu64 " lines, %s lines/s", fill,
			"##############################", width - fill, "",
			(int)((double)pos * 100.0 / (double)size), ls->lineno, r);
	} else {
		fprintf(stderr, "\r\033[K%" PRIu64 " lines, %s lines/s", ls->lineno, r);
	}
	fflush(stderr);
}

/* Clears the progress bar's line before a message. */
static void clear_bar(const load_state_t *ls)
{
	if (ls->tty)
		fprintf(stderr, "\r\033[K");
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
 * before the failing pair is in and counted, and the message names the
 * failing pair's line: the first result that is not 0 or 1.  When every
 * pair has its result (a SYNC store whose fdatasync failed after the
 * batch) it names the batch's last line, the line whose insert would have
 * waited last.  Returns EXIT_OK or the exit code of the error. */
static int load_flush(load_state_t *ls, load_batch_t *b)
{
	size_t n = b->n;
	if (n == 0)
		return EXIT_OK;
	b->n = 0;
	for (size_t i = 0; i < n; i++)
		b->res[i] = LOAD_UNSET;
	long rc = cidstore_insert_many(ls->s, b->k, b->v, n, b->res);
	size_t i = 0;
	for (; i < n && (b->res[i] == 0 || b->res[i] == 1); i++) {
		if (b->res[i] == 1)
			ls->added++;
		else
			ls->present++;
	}
	if (rc >= 0)
		return EXIT_OK;
	clear_bar(ls);
	char what[64];
	snprintf(what, sizeof what, "insert (line %" PRIu64 ")", b->line[i < n ? i : n - 1]);
	return report_store(ls->cmd, ls->dir, OPEN_CREATE, what, (int)rc);
}

/* Parses one line into *k, *v.  Returns 1 for a pair, 0 for a line to
 * skip (blank or comment), -1 for a bad line with *why set. */
static int parse_line(char *line, size_t len, cid_t *k, cid_t *v, const char **why)
{
	static const char blanks[] = " \t";
	char *p, *f[3];
	int nf = 0;
	if (strlen(line) != len) {
		*why = "the line holds a NUL byte";
		return -1;
	}
	if (len > 0 && line[len - 1] == '\n')
		line[--len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	p = line + strspn(line, blanks);
	if (*p == '\0' || *p == '#')
		return 0;
	while (nf < 3 && (f[nf] = strtok(nf == 0 ? p : NULL, blanks)) != NULL)
		nf++;
	if (nf != 2) {
		*why = nf < 2 ? "one field; want \"KEYHEX VALHEX\""
			      : "more than two fields; want \"KEYHEX VALHEX\"";
		return -1;
	}
	if (cid_from_hex(f[0], k) != 0) {
		*why = "KEYHEX is not 64 hex digits";
		return -1;
	}
	if (cid_from_hex(f[1], v) != 0) {
		*why = "VALHEX is not 64 hex digits";
		return -1;
	}
	return 1;
}

/* Reads and inserts every line.  Returns EXIT_OK; EXIT_RUNTIME at a bad
 * line without --skip-bad (*stopped_at_bad set); or an insert's exit code. */
static int load_lines(load_state_t *ls, FILE *in, off_t size, bool skip_bad,
		      bool *stopped_at_bad)
{
	load_batch_t *b = calloc(1, sizeof(*b));
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	double last = ls->t0;
	int code = EXIT_OK;
	if (b == NULL) {
		fprintf(stderr, "%s %s: out of memory\n", prog, ls->cmd);
		return EXIT_RUNTIME;
	}
	while ((len = getline(&line, &cap, in)) > 0) {
		const char *why = NULL;
		ls->lineno++;
		int r = parse_line(line, (size_t)len, &b->k[b->n], &b->v[b->n], &why);
		if (r < 0) {
			/* The good lines before this one go in first. */
			if ((code = load_flush(ls, b)) != EXIT_OK)
				break;
			clear_bar(ls);
			fprintf(stderr, "%s %s: %s:%" PRIu64 ": %s%s\n", prog, ls->cmd, ls->path,
				ls->lineno, why, skip_bad ? " (skipped)" : "");
			ls->bad++;
			if (!skip_bad) {
				*stopped_at_bad = true;
				code = EXIT_RUNTIME;
				break;
			}
		} else if (r > 0) {
			b->line[b->n++] = ls->lineno;
			if (b->n == LOAD_BATCH && (code = load_flush(ls, b)) != EXIT_OK)
				break;
		}
		if ((ls->lineno & 4095) == 0) {
			double t = now_sec();
			if (t - last >= 0.2) {
				load_progress(ls, ftello(in), size);
				last = t;
			}
		}
	}
	if (code == EXIT_OK)
		code = load_flush(ls, b);
	if (code == EXIT_OK && ferror(in)) {
		clear_bar(ls);
		fprintf(stderr, "%s %s: reading '%s': %s\n", prog, ls->cmd, ls->path,
			strerror(errno));
		code = EXIT_RUNTIME;
	}
	free(b);
	free(line);
	return code;
}

int cmd_load(int argc, char **argv)
{
	store_args_t a;
	load_state_t ls = { .cmd = argv[0], .path = "-" };
	int i = parse_store_args(argc, argv, &a, ARGS_SKIP_BAD, usage_load), rc;
	FILE *in;
	need_dir(ls.cmd, &a);
	if (argc - i > 1)
		die_usage(ls.cmd, "wants at most one FILE");
	if (argc - i == 1)
		ls.path = argv[i];
	ls.dir = a.dir;
	in = strcmp(ls.path, "-") == 0 ? stdin : fopen(ls.path, "r");
	if (in == NULL) {
		fprintf(stderr, "%s %s: cannot open '%s': %s\n", prog, ls.cmd, ls.path,
			strerror(errno));
		return EXIT_RUNTIME;
	}
	struct stat st;
	off_t size = 0;
	if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
		size = st.st_size;
	if ((rc = open_dir(ls.cmd, &a, OPEN_CREATE, CIDSTORE_DURABILITY_ASYNC, &ls.s)) != 0) {
		if (in != stdin)
			fclose(in);
		return rc;
	}
	ls.tty = isatty(STDERR_FILENO) == 1;
	ls.t0 = now_sec();

	bool at_bad = false;
	int code = load_lines(&ls, in, size, a.skip_bad, &at_bad);
	if (in != stdin)
		fclose(in);
	if (code == EXIT_OK)
		load_progress(&ls, size, size);
	clear_bar(&ls);
	/* Stopped at a bad line: the pairs before it are in; make them durable. */
	if (code == EXIT_OK || at_bad) {
		rc = cidstore_sync(ls.s);
		if (rc != 0)
			code = report_store(ls.cmd, ls.dir, OPEN_CREATE, "sync", rc);
	}
	code = close_store(ls.cmd, ls.s, code);
	uint64_t in_store = ls.added + ls.present;
	if (at_bad)
		fprintf(stderr, "%s %s: stopped at line %" PRIu64 "; the %" PRIu64 " %s on the "
				"lines before it %s in the store (use --skip-bad to go on past bad "
				"lines)\n",
			prog, ls.cmd, ls.lineno, in_store, plural(in_store, "pair", "pairs"),
			in_store == 1 ? "is" : "are");
	if (ls.bad > 0 && !at_bad)
		fprintf(stderr, "%s %s: %" PRIu64 " bad %s skipped\n", prog, ls.cmd, ls.bad,
			plural(ls.bad, "line", "lines"));
	double dt = now_sec() - ls.t0;
	char r[32];
	printf("%" PRIu64 " %s added, %" PRIu64 " already there", ls.added,
	       plural(ls.added, "pair", "pairs"), ls.present);
	if (ls.bad > 0 && !at_bad)
		printf(", %" PRIu64 " bad %s skipped", ls.bad, plural(ls.bad, "line", "lines"));
	printf(", %.2f s (%s pairs/s)%s\n", dt,
	       fmt_rate(dt > 0 ? (double)in_store / dt : 0, r, sizeof r),
	       code == EXIT_OK ? "" : " -- stopped early");
	return code;
}
