/*
 * triples.c — `cidstore triples load|query|count|dump` (DESIGN.md §10):
 * the group's usage and the dispatch to triples_load.c and
 * triples_query.c.
 */
#include "common.h"
#include "triples.h"

#include <string.h>

typedef struct subcommand {
	const char *name;
	int (*run)(int, char **);
	const char *summary;
} subcommand_t;

static const subcommand_t subs[] = {
	{ "load", triples_load, "load N-Triples or Turtle files (parsed by serd)" },
	{ "query", triples_query, "print the triples matching a pattern" },
	{ "count", triples_count, "count the triples matching a pattern" },
	{ "dump", triples_dump, "write every triple as N-Triples" },
};
#define NSUBS (sizeof subs / sizeof subs[0])

void triples_usage(FILE *f)
{
	fprintf(f,
		"Usage: %s triples COMMAND --dir DIR [ARGS]\n"
		"\n"
		"The store as a triplestore: a triple (S, P, O) is three CIDs, the\n"
		"SHA-256 of each term's N-Triples text, and the term dictionary keeps\n"
		"the texts.\n"
		"\n"
		"Commands:\n",
		prog);
	for (size_t i = 0; i < NSUBS; i++)
		fprintf(f, "  %-6s %s\n", subs[i].name, subs[i].summary);
	fprintf(f,
		"\n"
		"'%s triples COMMAND --help' describes a command.  query, count and\n"
		"dump only read: they never create a store and work on one the user may\n"
		"only read.\n"
		"\n" TRIPLES_TERMS_HELP "\n" EXIT_CODES_HELP,
		prog);
}

int cmd_triples(int argc, char **argv)
{
	if (argc < 2) {
		triples_usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
	    strcmp(name, "help") == 0) {
		triples_usage(stdout);
		return EXIT_OK;
	}
	for (size_t i = 0; i < NSUBS; i++)
		if (strcmp(subs[i].name, name) == 0)
			return subs[i].run(argc - 1, argv + 1);
	fprintf(stderr, "%s triples: '%s' is not a triples command; see '%s triples --help'\n",
		prog, name, prog);
	return EXIT_USAGE;
}
