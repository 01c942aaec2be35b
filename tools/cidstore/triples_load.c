/*
 * triples_load.c — `cidstore triples load`: N-Triples and Turtle files into
 * a store through the pipeline of rdf_load.c (serd parser on this thread,
 * inserter threads behind a bounded queue).
 *
 * Every FILE is checked for reading before the store is opened (a missing
 * file creates no store).  The store is opened (created when missing) with
 * durability async and synced once at the end, also after a syntax error,
 * so the statements the message says are in the store are, durably.
 */
#include "common.h"
#include "rdf_load.h"
#include "triples.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage_load(FILE *f)
{
	fprintf(f,
		"Usage: %s triples load --dir DIR [OPTIONS] FILE...\n"
		"\n"
		"Loads every statement of each FILE (- for standard input) into the\n"
		"store: each term into the term dictionary, each triple into the triple\n"
		"indexes.  Files are parsed by serd (strict, as serdi): N-Triples for a\n"
		"name ending in .nt, Turtle (which also reads N-Triples) otherwise, or\n"
		"as --syntax says.  Relative IRIs resolve against --base, by default\n"
		"the file's own URI (file:///absolute/path; none for standard input).\n"
		"\n"
		"At a syntax error the load stops (exit 1) with FILE:LINE:COLUMN and\n"
		"serd's reason on stderr; every statement before it (of this file and\n"
		"the files before) is in the store and synced, and the message says how\n"
		"many.  A FILE that cannot be read stops the command before the store is\n"
		"opened.\n"
		"\n"
		"The store is opened with durability async and synced once at the end.\n"
		"A progress bar (triples/s) goes to stderr when it is a terminal, or\n"
		"with --progress.  stdout gets a line per file: statements, triples\n"
		"added and already there, new terms, time and rate.\n"
		"\n"
		"  -D, --dir DIR         the store directory (created when missing)\n"
		"      --durability M    none, async or sync (default: async, with one\n"
		"                        sync at the end)\n"
		"      --syntax S        turtle or ntriples (default: by extension)\n"
		"      --base URI        base IRI for relative IRIs\n"
		"  -t, --threads N       inserter threads (default: one per core)\n"
		"      --progress        draw the progress bar even when stderr is not a\n"
		"                        terminal\n"
		"      --blank-scope HEX the blank node scope S (32 hex digits) instead of\n"
		"                        random bytes, for tests and reproducible loads:\n"
		"                        loads with the same S share blank nodes\n"
		"  -h, --help            this help\n"
		"\n" TRIPLES_TERMS_HELP "\n" EXIT_CODES_HELP,
		prog);
}

typedef struct bar {
	bool on;
	const char *path;
	bool drawn;
} bar_t;

static void draw_bar(const rdf_load_progress_t *p, void *ctx)
{
	bar_t *b = ctx;
	char r[32];
	if (!b->on)
		return;
	fmt_rate(p->secs > 0 ? (double)p->stored / p->secs : 0, r, sizeof r);
	if (p->bytes_total > 0) {
		const int width = 30;
		double frac = (double)p->bytes_read / (double)p->bytes_total;
		if (frac > 1)
			frac = 1;
		int fill = (int)(frac * width);
		fprintf(stderr, "\r\033[K%s [%.*s%*s] %3d%% %" PRIu64 " triples, %s triples/s",
			b->path, fill, "##############################", width - fill, "",
			(int)(frac * 100.0), p->stored, r);
	} else {
		fprintf(stderr, "\r\033[K%s %" PRIu64 " triples, %s triples/s", b->path, p->stored,
			r);
	}
	fflush(stderr);
	b->drawn = true;
}

static void clear_bar(bar_t *b)
{
	if (b->on && b->drawn) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
		b->drawn = false;
	}
}

enum { OPT_DURABILITY = 0x100, OPT_SYNTAX, OPT_BASE, OPT_PROGRESS, OPT_SCOPE };

/* 32 hex digits into 16 bytes: 0 or -1. */
static int parse_scope(const char *s, uint8_t out[16])
{
	if (strlen(s) != 32)
		return -1;
	for (int i = 0; i < 32; i++) {
		int c = s[i], v;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return 0;
}

/* Exits 1 unless path ("-" is stdin) can be opened for reading as a
 * file. */
static void check_file(const char *cmd, const char *path)
{
	struct stat sb;
	FILE *f;
	if (strcmp(path, "-") == 0)
		return;
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "%s %s: cannot read '%s': %s\n", prog, cmd, path, strerror(EISDIR));
		exit(EXIT_RUNTIME);
	}
	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s %s: cannot read '%s': %s\n", prog, cmd, path, strerror(errno));
		exit(EXIT_RUNTIME);
	}
	fclose(f);
}

int triples_load(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "durability", required_argument, NULL, OPT_DURABILITY },
		{ "syntax", required_argument, NULL, OPT_SYNTAX },
		{ "base", required_argument, NULL, OPT_BASE },
		{ "threads", required_argument, NULL, 't' },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "blank-scope", required_argument, NULL, OPT_SCOPE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "triples load";
	store_args_t a = { 0 };
	rdf_load_opts_t o = { 0 };
	bool force_bar = false;
	unsigned long threads = 0;
	uint8_t scope[16];
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "D:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'D': a.dir = optarg; break;
		case OPT_DURABILITY:
			if (parse_durability(optarg, &a.durability) != 0)
				die_usage(cmd, "--durability wants none, async or sync, not '%s'", optarg);
			a.have_durability = true;
			break;
		case OPT_SYNTAX:
			if (strcmp(optarg, "turtle") == 0 || strcmp(optarg, "ttl") == 0)
				o.syntax = RDF_SYNTAX_TURTLE;
			else if (strcmp(optarg, "ntriples") == 0 || strcmp(optarg, "nt") == 0)
				o.syntax = RDF_SYNTAX_NTRIPLES;
			else
				die_usage(cmd, "--syntax wants turtle or ntriples, not '%s'", optarg);
			break;
		case OPT_BASE:
			if (*optarg == '\0')
				die_usage(cmd, "--base wants an IRI");
			o.base_uri = optarg;
			break;
		case 't':
			if (parse_ulong(optarg, 1, 1024, &threads) != 0)
				die_usage(cmd, "--threads wants a number from 1 to 1024, not '%s'", optarg);
			o.threads = (unsigned)threads;
			break;
		case OPT_PROGRESS: force_bar = true; break;
		case OPT_SCOPE:
			if (parse_scope(optarg, scope) != 0)
				die_usage(cmd, "--blank-scope wants 32 hex digits, not '%s'", optarg);
			o.scope = scope;
			break;
		case 'h': usage_load(stdout); exit(EXIT_OK);
		default: die_usage(cmd, "bad option");
		}
	}
	need_dir(cmd, &a);
	int nfiles = argc - optind;
	char **files = argv + optind;
	if (nfiles < 1)
		die_usage(cmd, "wants at least one FILE (- for standard input)");
	int nstdin = 0;
	for (int i = 0; i < nfiles; i++) {
		if (strcmp(files[i], "-") == 0 && ++nstdin > 1)
			die_usage(cmd, "standard input (-) can be read once only");
		check_file(cmd, files[i]);
	}

	cidstore_t *s;
	int rc = open_dir(cmd, &a, OPEN_CREATE, CIDSTORE_DURABILITY_ASYNC, &s);
	if (rc != 0)
		return rc;
	bar_t bar = { .on = force_bar || isatty(STDERR_FILENO) == 1 };
	o.progress = draw_bar;
	o.progress_ctx = &bar;

	uint64_t tot_st = 0, tot_add = 0, tot_terms = 0;
	double tot_secs = 0;
	int code = EXIT_OK;
	bool synced_worth = true; /* statements in the store want a sync */
	for (int i = 0; i < nfiles && code == EXIT_OK; i++) {
		const char *path = files[i];
		rdf_load_result_t r;
		bar.path = strcmp(path, "-") == 0 ? "<stdin>" : path;
		int lrc = rdf_load_file(s, path, &o, &r);
		clear_bar(&bar);
		tot_st += r.statements;
		tot_add += r.added;
		tot_terms += r.terms_new;
		tot_secs += r.secs;
		char rate[32];
		fmt_rate(r.secs > 0 ? (double)r.statements / r.secs : 0, rate, sizeof rate);
		if (lrc == RDF_LOAD_OK || lrc == RDF_LOAD_ESYNTAX)
			printf("%s: %" PRIu64 " %s, %" PRIu64 " added, %" PRIu64
			       " already there, %" PRIu64 " new %s, %.2f s (%s triples/s)%s\n",
			       bar.path, r.statements, plural(r.statements, "statement", "statements"),
			       r.added, r.present, r.terms_new, plural(r.terms_new, "term", "terms"),
			       r.secs, rate, lrc == RDF_LOAD_OK ? "" : " -- stopped at a syntax error");
		switch (lrc) {
		case RDF_LOAD_OK: break;
		case RDF_LOAD_ESYNTAX:
			if (r.line > 0)
				fprintf(stderr, "%s %s: %s:%u:%u: %s\n", prog, cmd, bar.path, r.line, r.col,
					r.message);
			else
				fprintf(stderr, "%s %s: %s: %s\n", prog, cmd, bar.path, r.message);
			fprintf(stderr,
				"%s %s: stopped at a syntax error in %s; the %" PRIu64 " %s before it "
				"%s in the store",
				prog, cmd, bar.path, r.statements,
				plural(r.statements, "statement", "statements"),
				r.statements == 1 ? "is" : "are");
			if (tot_st > r.statements)
				fprintf(stderr, " (%" PRIu64 " in all, with the files before it)", tot_st);
			fprintf(stderr, "\n");
			code = EXIT_RUNTIME;
			break;
		case RDF_LOAD_EOPEN:
		case RDF_LOAD_EREAD:
			fprintf(stderr, "%s %s: %s '%s': %s\n", prog, cmd,
				lrc == RDF_LOAD_EOPEN ? "cannot open" : "reading", bar.path,
				strerror(r.sys_errno));
			code = EXIT_RUNTIME;
			break;
		case RDF_LOAD_ESTORE: {
			char what[600];
			snprintf(what, sizeof what,
				 "loading %s, after %" PRIu64 " statements inserted (those not yet "
				 "synced may be lost)",
				 bar.path, r.statements);
			code = report_store(cmd, a.dir, OPEN_CREATE, what, r.store_err);
			synced_worth = false;
			break;
		}
		default:
			fprintf(stderr, "%s %s: %s: %s\n", prog, cmd, bar.path, rdf_load_strerror(lrc));
			code = EXIT_RUNTIME;
		}
	}
	if (synced_worth) {
		rc = cidstore_sync(s);
		if (rc != 0 && code == EXIT_OK)
			code = report_store(cmd, a.dir, OPEN_CREATE, "sync", rc);
		else if (rc != 0)
			report_store(cmd, a.dir, OPEN_CREATE, "sync", rc);
	}
	code = close_store(cmd, s, code);
	if (nfiles > 1) {
		char rate[32];
		fmt_rate(tot_secs > 0 ? (double)tot_st / tot_secs : 0, rate, sizeof rate);
		printf("total: %" PRIu64 " %s, %" PRIu64 " added, %" PRIu64 " already there, %" PRIu64
		       " new %s, %.2f s (%s triples/s)\n",
		       tot_st, plural(tot_st, "statement", "statements"), tot_add, tot_st - tot_add,
		       tot_terms, plural(tot_terms, "term", "terms"), tot_secs, rate);
	}
	return code;
}
