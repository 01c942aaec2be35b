/*
 * triples.h — the `cidstore triples` group (DESIGN.md §10): load
 * (triples_load.c), query / count / dump (triples_query.c); triples.c
 * dispatches and holds the group's usage.
 */
#ifndef TOOL_TRIPLES_H
#define TOOL_TRIPLES_H

#include <stdio.h>

/* argv[0] is the subcommand's name ("load", ...). */
int triples_load(int argc, char **argv);
int triples_query(int argc, char **argv);
int triples_count(int argc, char **argv);
int triples_dump(int argc, char **argv);

/* How terms are written and read, for every subcommand's help. */
#define TRIPLES_TERMS_HELP                                                          \
	"Terms.  A term is stored in the store's term dictionary under its CID,\n"    \
	"the SHA-256 of its N-Triples text exactly as 'serdi -o ntriples' writes\n"  \
	"it (serd's writer, ASCII style): IRIs in full (prefixes expanded,\n"         \
	"relative IRIs resolved against the base), literals with their language\n"   \
	"tag or datatype IRI (Turtle numbers and booleans become typed literals),\n" \
	"non-ASCII characters as \\uXXXX or \\UXXXXXXXX.\n"                             \
	"\n"                                                                            \
	"Blank nodes.  A blank node label L of a loaded file (its own label, or\n"    \
	"the one serd gives an anonymous node or a list) becomes _:cs followed by\n"  \
	"32 hex digits: the first 128 bits of sha256(S || L), where S is 16 random\n" \
	"bytes drawn for each file each time it is loaded.  So two files, or two\n"   \
	"loads of one file, never share a blank node.  A label that already has\n"   \
	"that form (cs and 32 lowercase hex digits, as dump writes them) is kept,\n"  \
	"so load -> dump -> load gives the same triples, term for term.\n"

void triples_usage(FILE *f);

#endif /* TOOL_TRIPLES_H */
