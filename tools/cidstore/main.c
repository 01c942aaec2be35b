/*
 * main.c — the `cidstore` command: git-style subcommands (DESIGN.md §8),
 * one source file per subcommand or group:
 *
 *   config       config.c        what this build and this machine give
 *   demo|bench   demo*.c         the scaling demo
 *   put/get/del  store_cmds.c    one pair or key in a store directory
 *   stats        store_cmds.c    the store's counters
 *   checkpoint   store_cmds.c    write a checkpoint
 *   maintain     store_cmds.c    run one maintenance pass
 *   load         load.c          bulk insert from "KEYHEX VALHEX" lines
 *   verify       verify.c        would a store directory recover?
 *   wal          wal_cmds.c      dump / analyze the write-ahead log
 *   triples      triples*.c      load / query / count / dump RDF triples
 *                rdf_load.c      (the loading pipeline, serd)
 *
 * Shared helpers are in common.c (errors, exit codes, options of the store
 * commands, opening a store), json.c and inspect.c.  This file holds the
 * command table, the top-level usage and the dispatch.
 */
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

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
	{ "maintain", cmd_maintain, "run one maintenance pass (give memory back)" },
	{ "wal", cmd_wal, "dump or analyze the write-ahead log" },
	{ "triples", cmd_triples, "load, query, count or dump RDF triples" },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage_main(FILE *f)
{
	fprintf(f,
		"Usage: %s [--version] [--help] COMMAND [ARGS]\n"
		"\n"
		"cidstore maps 256-bit content identifiers to sets of 256-bit values.\n"
		"\n"
		"Commands:\n",
		prog);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"'%s COMMAND --help' describes a command.  Keys and values are written\n"
		"as 64 hex digits.  Commands that only read (get, stats, verify, wal,\n"
		"triples query|count|dump) never create a store and work on one the\n"
		"user may only read.\n"
		"\n" EXIT_CODES_HELP,
		prog);
}

static const command_t *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	fprintf(stderr, "%s: '%s' is not a command; see '%s --help'\n", prog, name, prog);
	return NULL;
}

/* Output that could not be written (a full disk, a closed stdout) is an
 * error, not a silent success. */
static int finish(int code)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: writing the output failed: %s\n", prog, strerror(errno));
		return code == EXIT_OK ? EXIT_RUNTIME : code;
	}
	return code;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const command_t *c;
	int opt;
	/* '+': stop at the first non-option, the subcommand. */
	while ((opt = getopt_long(argc, argv, "+hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'h': usage_main(stdout); return finish(EXIT_OK);
		case 'V': printf("cidstore %s\n", cidstore_version()); return finish(EXIT_OK);
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
			if ((c = find_command(hargv[0])) == NULL)
				return EXIT_USAGE;
			return finish(c->run(2, hargv));
		}
		usage_main(stdout);
		return finish(EXIT_OK);
	}
	if ((c = find_command(name)) == NULL)
		return EXIT_USAGE;
	return finish(c->run(argc - optind, argv + optind));
}
