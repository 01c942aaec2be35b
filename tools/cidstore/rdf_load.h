/*
 * rdf_load.h — loading an RDF file (N-Triples or Turtle, parsed by serd)
 * into a store's triple layer: every term through the term dictionary
 * (cidstore_term_put_many) under cid_sha256 of its N-Triples text, every
 * statement through cidstore_triple_insert_many.
 *
 * A reusable unit: it uses only <cidstore.h> and serd, no global state of
 * the `cidstore` tool, so a benchmark can compile rdf_load.c in (link
 * serd-0 and pthreads).  The tool's `triples load` is a thin layer on it.
 *
 * Term texts are exactly what `serdi -o ntriples` writes for the node
 * (the statement goes through a serd writer in N-Triples syntax, ASCII
 * style, relative IRIs resolved against the base): prefixes expanded,
 * datatype IRIs written in full, Turtle numbers and booleans as typed
 * literals, non-ASCII characters as \uXXXX / \UXXXXXXXX.
 *
 * Blank nodes: a label L of the file (serd's label: the file's own, or the
 * b1, b2, ... serd gives anonymous nodes and collections) becomes
 * `_:cs` + 32 lowercase hex digits, the first 128 bits of
 * sha256(scope || L), where scope is 16 random bytes drawn once per call
 * (per load of this file).  A label that already has exactly that form
 * (`cs` followed by 32 of [0-9a-f], as `triples dump` writes) is kept, so
 * load -> dump -> load stores the same terms byte for byte.  Two files (or
 * two loads of one file) thus never share a blank node unless their
 * labels are of the kept form.
 *
 * Pipeline: the caller's thread parses and builds batches of statements
 * (term texts, not yet hashed); o->threads inserter threads take them from
 * a bounded queue, hash the terms, put those not in a small per-thread
 * cache of recently put terms, then insert the batch's triples.  Every
 * term of a triple is put (in an earlier or the same batch call, on the
 * same thread) before the triple, so a store never holds a triple whose
 * term text is missing after a crash.
 */
#ifndef TOOL_RDF_LOAD_H
#define TOOL_RDF_LOAD_H

#include <cidstore.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum rdf_syntax {
	RDF_SYNTAX_AUTO = 0, /* by the file's extension: .nt -> N-Triples,
				anything else (.ttl, stdin, ...) -> Turtle,
				which also reads N-Triples */
	RDF_SYNTAX_NTRIPLES,
	RDF_SYNTAX_TURTLE,
} rdf_syntax_t;

/* Where a load is, for a progress display (called on the parsing thread,
 * about every 0.1 s and once at the end). */
typedef struct rdf_load_progress {
	uint64_t bytes_read;  /* of the input so far */
	uint64_t bytes_total; /* the file's size; 0 when unknown (a pipe) */
	uint64_t statements;  /* parsed so far */
	uint64_t stored;      /* of those, in the store (inserted) */
	double secs;          /* since the load started */
} rdf_load_progress_t;

typedef struct rdf_load_opts {
	rdf_syntax_t syntax;
	const char *base_uri;  /* base for relative IRIs; NULL: the file URI of
				  the file's absolute path (none for stdin) */
	unsigned threads;      /* inserter threads; 0: one per core */
	size_t batch;          /* statements per batch; 0: 1024 */
	const uint8_t *scope;  /* 16 bytes of blank node scope; NULL: random
				  (tests only should fix it) */
	void (*progress)(const rdf_load_progress_t *p, void *ctx); /* may be NULL */
	void *progress_ctx;
} rdf_load_opts_t;

typedef struct rdf_load_result {
	uint64_t statements;   /* parsed, and all in the store when the call
				  returns 0 or RDF_LOAD_ESYNTAX */
	uint64_t added;        /* triples this load added */
	uint64_t present;      /* triples already stored */
	uint64_t terms_new;    /* term texts this load stored */
	uint64_t bytes;        /* input bytes read */
	double secs;
	/* RDF_LOAD_ESYNTAX: where and what (serd's message, no newline) */
	unsigned line, col;
	char message[256];
	int store_err;         /* RDF_LOAD_ESTORE: the CIDSTORE_E* code */
	int sys_errno;         /* RDF_LOAD_EOPEN / RDF_LOAD_EREAD: errno */
} rdf_load_result_t;

enum {
	RDF_LOAD_OK = 0,
	RDF_LOAD_EINVAL = -1, /* NULL store/path/result, bad option */
	RDF_LOAD_EOPEN = -2,  /* the file cannot be opened (r->sys_errno) */
	RDF_LOAD_EREAD = -3,  /* reading failed (r->sys_errno) */
	RDF_LOAD_ESYNTAX = -4,/* a syntax error at r->line:r->col; the
				 r->statements statements before it are in
				 the store */
	RDF_LOAD_ESTORE = -5, /* a store call failed (r->store_err); parsing
				 stopped; r->statements counts the statements
				 of the batches that went in whole (others may
				 be partly in) */
	RDF_LOAD_ENOMEM = -6,
	RDF_LOAD_ETHREAD = -7,/* an inserter thread could not be started */
};

/* path: a file, or "-" for stdin.  o may be NULL (every default).  Fills
 * *r (zeroed first) and returns RDF_LOAD_OK or an error above.  Waits for
 * every batch it queued before returning, whatever the outcome; does not
 * sync the store (the caller decides).  Thread-safe with respect to other
 * calls on the same store. */
int rdf_load_file(cidstore_t *st, const char *path, const rdf_load_opts_t *o,
		  rdf_load_result_t *r);

/* Reads text (NUL-terminated) as one N-Triples term in position pos (0
 * subject, 1 predicate, 2 object) with serd, and writes it back the way
 * rdf_load_file writes terms (serd's N-Triples writer, ASCII): so
 * "caf\xc3\xa9" becomes "caf\u00E9" and "\u00e9" "\u00E9"; a blank node
 * label is kept as it is (no scoping).  *out gets the text (malloc'd,
 * NUL-terminated; *outlen bytes).  Returns 0; RDF_LOAD_ESYNTAX with serd's
 * message in msg (msgcap bytes) when text is not one such term;
 * RDF_LOAD_EINVAL; RDF_LOAD_ENOMEM. */
int rdf_term_normalize(const char *text, int pos, char **out, size_t *outlen, char *msg,
		       size_t msgcap);

/* "syntax error", "cannot open", ... for an RDF_LOAD_* code. */
const char *rdf_load_strerror(int code);

/* The blank node label rule above, for tests and tools: writes the label
 * (without "_:") for serd label `label` under `scope` into out (35 bytes:
 * "cs" + 32 hex + NUL). */
void rdf_blank_label(const uint8_t scope[16], const char *label, size_t len, char out[35]);

#endif /* TOOL_RDF_LOAD_H */
