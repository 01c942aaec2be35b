/*
 * triples_query.c — `cidstore triples query|count|dump`: the stored
 * triples matching a pattern, printed as N-Triples (or JSON), counted, or
 * all of them.  The store is opened read-only and never created, so these
 * work on a store the user may only read and beside a process writing it.
 *
 * A term given with -s/-p/-o is read as one N-Triples term by serd and
 * written back as `triples load` writes terms (rdf_term_normalize), and
 * its CID is the SHA-256 of that text.  Printed terms come from the term
 * dictionary through a small direct-mapped cache (predicates and classes
 * repeat); a CID without text prints as <urn:cid:HEX> and is counted in a
 * warning.
 */
#include "common.h"
#include "json.h"
#include "rdf_load.h"
#include "triples.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define PATTERN_OPTS                                                                \
	"  -s, --subject T       the subject, an N-Triples term: <http://...> or\n"  \
	"                        _:cs... (as dump prints it)\n"                        \
	"  -p, --predicate T     the predicate: <http://...>\n"                       \
	"  -o, --object T        the object: <http://...>, _:cs..., \"text\",\n"       \
	"                        \"text\"@en, \"5\"^^<http://www.w3.org/2001/\n"          \
	"                        XMLSchema#integer>\n"

#define PATTERN_TEXT                                                                \
	"A missing term is a wildcard.  Each term is read as N-Triples and written\n" \
	"back the way load writes terms (non-ASCII characters as \\uXXXX, the hex\n" \
	"digits of escapes in upper case, needless escapes undone); nothing else is\n" \
	"normalized (no prefixes, no relative IRIs, language tags and numbers as\n"  \
	"written), and its CID is the SHA-256 of that text.  A term the dictionary\n" \
	"does not know gets a note on stderr (nothing can match it).\n"

#define DIR_READ_HELP                                                             \
	"  -D, --dir DIR         the store directory (must exist; opened read-only:\n" \
	"                        read access is enough, and another process may\n"  \
	"                        have the store open)\n"

static void usage_query(FILE *f)
{
	fprintf(f,
		"Usage: %s triples query --dir DIR [-s T] [-p T] [-o T] [--limit N]\n"
		"                        [--nt|--json]\n"
		"\n"
		"Prints the stored triples matching the pattern, one N-Triples line each\n"
		"(--nt, the default), or as one JSON object {\"triples\": [{\"s\": ..., \"p\":\n"
		"..., \"o\": ...}, ...], \"count\": N, \"terms_without_text\": M} with each\n"
		"term's N-Triples text (--json).  The order is the store's.\n"
		"\n" DIR_READ_HELP PATTERN_OPTS
		"      --limit N         print at most N triples\n"
		"      --nt              N-Triples lines (default)\n"
		"  -j, --json            JSON\n"
		"  -h, --help            this help\n"
		"\n" PATTERN_TEXT "\n" EXIT_CODES_HELP,
		prog);
}

static void usage_count(FILE *f)
{
	fprintf(f,
		"Usage: %s triples count --dir DIR [-s T] [-p T] [-o T]\n"
		"\n"
		"Prints the number of stored triples matching the pattern.\n"
		"\n" DIR_READ_HELP PATTERN_OPTS "  -h, --help            this help\n"
		"\n" PATTERN_TEXT "\n" EXIT_CODES_HELP,
		prog);
}

static void usage_dump(FILE *f)
{
	fprintf(f,
		"Usage: %s triples dump --dir DIR\n"
		"\n"
		"Writes every stored triple as an N-Triples line (in the store's order).\n"
		"Blank nodes print as _:cs + 32 hex digits, which 'triples load' keeps,\n"
		"so loading the dump into a store gives the same triples.\n"
		"\n" DIR_READ_HELP "  -h, --help            this help\n"
		"\n" EXIT_CODES_HELP,
		prog);
}

/* ---------------------------------------------------------------------- */
/* Terms' texts                                                            */
/* ---------------------------------------------------------------------- */

#define TCACHE_BITS 12

typedef struct tcache_entry {
	cid_t cid;
	char *text; /* NULL: empty slot */
} tcache_entry_t;

typedef struct printer {
	cidstore_t *s;
	const char *cmd;
	tcache_entry_t cache[1u << TCACHE_BITS];
	char *buf;
	size_t cap;
	bool json;
	json_t j;
	uint64_t printed, limit, missing;
	int err; /* a store error that stopped the match */
} printer_t;

static bool same_cid(const cid_t *a, const cid_t *b)
{
	return memcmp(a, b, sizeof *a) == 0;
}

#define MISSING_LEN (sizeof "<urn:cid:>" + 64)

/* The text of c (NUL-terminated, owned by the cache), or, for a CID the
 * dictionary does not know, <urn:cid:HEX> in miss (counted: once per
 * occurrence, so never cached); NULL with pr->err set on an error. */
static const char *term_text(printer_t *pr, const cid_t *c, char miss[MISSING_LEN])
{
	tcache_entry_t *e = &pr->cache[c->w[0] & ((1u << TCACHE_BITS) - 1)];
	if (e->text != NULL && same_cid(&e->cid, c))
		return e->text;
	long n;
	for (;;) {
		n = cidstore_term_get(pr->s, c, pr->buf, pr->cap);
		if (n < 0) {
			pr->err = (int)n;
			return NULL;
		}
		if ((size_t)n < pr->cap)
			break;
		size_t cap = (size_t)n + 1;
		char *nb = realloc(pr->buf, cap);
		if (nb == NULL) {
			pr->err = CIDSTORE_ENOMEM;
			return NULL;
		}
		pr->buf = nb;
		pr->cap = cap;
	}
	if (n == 0) {
		char hex[65];
		cid_to_hex(c, hex);
		pr->missing++;
		snprintf(miss, MISSING_LEN, "<urn:cid:%s>", hex);
		return miss;
	}
	char *t = malloc((size_t)n + 1);
	if (t == NULL) {
		pr->err = CIDSTORE_ENOMEM;
		return NULL;
	}
	memcpy(t, pr->buf, (size_t)n);
	t[n] = '\0';
	free(e->text);
	e->cid = *c;
	e->text = t;
	return t;
}

/* Each text is written as soon as it is looked up (the next lookup may
 * evict it from the cache).  An error stops with part of a line out; the
 * command then fails. */
static int print_triple(const cidstore_triple_t *t, void *ctx)
{
	static const char *const key[3] = { "s", "p", "o" };
	printer_t *pr = ctx;
	const cid_t *c[3] = { &t->s, &t->p, &t->o };
	char miss[MISSING_LEN];
	if (pr->limit > 0 && pr->printed >= pr->limit)
		return 1;
	if (pr->json)
		json_obj(&pr->j, NULL);
	for (int i = 0; i < 3; i++) {
		const char *tx = term_text(pr, c[i], miss);
		if (tx == NULL)
			return 2;
		if (pr->json) {
			json_str(&pr->j, key[i], tx);
		} else {
			fputs(tx, stdout);
			fputs(i < 2 ? " " : " .\n", stdout);
		}
	}
	if (pr->json)
		json_end_obj(&pr->j);
	pr->printed++;
	return pr->limit > 0 && pr->printed >= pr->limit ? 1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Options and the three commands                                          */
/* ---------------------------------------------------------------------- */

enum { ALLOW_PATTERN = 1, ALLOW_OUTPUT = 2 };
enum { OPT_LIMIT = 0x100, OPT_NT };

typedef struct query_args {
	store_args_t a;
	const char *term[3]; /* as given; NULL: wildcard */
	bool json;
	uint64_t limit;
} query_args_t;

static void parse_query(int argc, char **argv, const char *cmd, unsigned allow,
			void (*usage)(FILE *), query_args_t *q)
{
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, 'D' },
		{ "subject", required_argument, NULL, 's' },
		{ "predicate", required_argument, NULL, 'p' },
		{ "object", required_argument, NULL, 'o' },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "nt", no_argument, NULL, OPT_NT },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	memset(q, 0, sizeof *q);
	optind = 0;
	while ((c = getopt_long(argc, argv, "D:s:p:o:jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'D': q->a.dir = optarg; break;
		case 's':
		case 'p':
		case 'o': {
			int i = c == 's' ? 0 : c == 'p' ? 1 : 2;
			if (!(allow & ALLOW_PATTERN))
				die_usage(cmd, "takes no pattern (-%c)", c);
			if (q->term[i] != NULL)
				die_usage(cmd, "-%c given twice", c);
			q->term[i] = optarg;
			break;
		}
		case OPT_LIMIT:
			if (!(allow & ALLOW_OUTPUT))
				die_usage(cmd, "unknown option --limit");
			if (parse_u64(optarg, &q->limit) != 0 || q->limit == 0)
				die_usage(cmd, "--limit wants a number of triples (1 or more), not '%s'",
					  optarg);
			break;
		case OPT_NT:
		case 'j':
			if (!(allow & ALLOW_OUTPUT))
				die_usage(cmd, "unknown option %s", c == 'j' ? "--json" : "--nt");
			q->json = c == 'j';
			break;
		case 'h': usage(stdout); exit(EXIT_OK);
		default: die_usage(cmd, "bad option");
		}
	}
	if (optind < argc)
		die_usage(cmd, "unexpected argument '%s'", argv[optind]);
	need_dir(cmd, &q->a);
}

/* The CIDs of the pattern's terms (NULL pointers for wildcards); exits 2
 * for a term that is not one N-Triples term of its position. */
static void pattern_cids(const char *cmd, const query_args_t *q, cid_t cids[3],
			 const cid_t *pat[3], char *norm[3])
{
	static const char *const opt[3] = { "-s", "-p", "-o" };
	for (int i = 0; i < 3; i++) {
		pat[i] = NULL;
		norm[i] = NULL;
		if (q->term[i] == NULL)
			continue;
		char msg[256];
		size_t len;
		int rc = rdf_term_normalize(q->term[i], i, &norm[i], &len, msg, sizeof msg);
		if (rc == RDF_LOAD_ENOMEM) {
			fprintf(stderr, "%s %s: out of memory\n", prog, cmd);
			exit(EXIT_RUNTIME);
		}
		if (rc != 0)
			die_usage(cmd, "%s '%s' is not an N-Triples %s: %s", opt[i], q->term[i],
				  i == 1 ? "predicate (an IRI)" : i == 0 ? "subject" : "term", msg);
		cid_sha256(norm[i], len, &cids[i]);
		pat[i] = &cids[i];
	}
}

/* Notes on stderr the terms the dictionary does not know. */
static int note_unknown(const char *cmd, cidstore_t *s, const cid_t *pat[3], char *norm[3])
{
	for (int i = 0; i < 3; i++) {
		if (pat[i] == NULL)
			continue;
		long n = cidstore_term_get(s, pat[i], NULL, 0);
		if (n < 0)
			return report_err(cmd, "term_get", (int)n);
		if (n == 0)
			fprintf(stderr, "%s %s: note: the store knows no term %s (nothing matches it)\n",
				prog, cmd, norm[i]);
	}
	return EXIT_OK;
}

static int run_match(const char *cmd, const query_args_t *q, bool count_only)
{
	cid_t cids[3];
	const cid_t *pat[3];
	char *norm[3];
	cidstore_t *s;
	pattern_cids(cmd, q, cids, pat, norm);
	int code = open_dir(cmd, &q->a, OPEN_READ, CIDSTORE_DURABILITY_SYNC, &s);
	if (code != 0)
		goto out_free;
	if ((code = note_unknown(cmd, s, pat, norm)) != EXIT_OK) {
		code = close_store(cmd, s, code);
		goto out_free;
	}
	if (count_only) {
		long n = cidstore_triple_count(s, pat[0], pat[1], pat[2]);
		if (n < 0)
			code = report_err(cmd, "count", (int)n);
		else
			printf("%ld\n", n);
		code = close_store(cmd, s, code);
		goto out_free;
	}
	printer_t *pr = calloc(1, sizeof *pr);
	if (pr == NULL) {
		fprintf(stderr, "%s %s: out of memory\n", prog, cmd);
		code = close_store(cmd, s, EXIT_RUNTIME);
		goto out_free;
	}
	pr->s = s;
	pr->cmd = cmd;
	pr->json = q->json;
	pr->limit = q->limit;
	pr->cap = 256;
	pr->buf = malloc(pr->cap);
	pr->j.f = stdout;
	if (pr->json) {
		json_obj(&pr->j, NULL);
		json_arr(&pr->j, "triples");
	}
	int rc = pr->buf == NULL ? CIDSTORE_ENOMEM
				 : cidstore_triple_match(s, pat[0], pat[1], pat[2], print_triple, pr);
	if (pr->json) {
		json_end_arr(&pr->j);
		json_u64(&pr->j, "count", pr->printed);
		json_u64(&pr->j, "terms_without_text", pr->missing);
		json_end_obj(&pr->j);
	}
	if (rc < 0)
		code = report_err(cmd, "match", rc);
	else if (rc == 2 && pr->err != 0)
		code = report_err(cmd, "term_get", pr->err);
	if (pr->missing > 0)
		fprintf(stderr,
			"%s %s: warning: %" PRIu64 " %s had no text in the term dictionary "
			"(printed as <urn:cid:HEX>)\n",
			prog, cmd, pr->missing, plural(pr->missing, "term", "terms"));
	for (size_t i = 0; i < (1u << TCACHE_BITS); i++)
		free(pr->cache[i].text);
	free(pr->buf);
	free(pr);
	code = close_store(cmd, s, code);
out_free:
	for (int i = 0; i < 3; i++)
		free(norm[i]);
	return code;
}

int triples_query(int argc, char **argv)
{
	query_args_t q;
	parse_query(argc, argv, "triples query", ALLOW_PATTERN | ALLOW_OUTPUT, usage_query, &q);
	return run_match("triples query", &q, false);
}

int triples_count(int argc, char **argv)
{
	query_args_t q;
	parse_query(argc, argv, "triples count", ALLOW_PATTERN, usage_count, &q);
	return run_match("triples count", &q, true);
}

int triples_dump(int argc, char **argv)
{
	query_args_t q;
	parse_query(argc, argv, "triples dump", 0, usage_dump, &q);
	return run_match("triples dump", &q, false);
}
