/*
 * triples_test_orphan.c — a helper of tools/test-triples.sh (not part of
 * the tool).
 *
 *   triples_test_orphan DIR
 * stores one triple whose subject has no text in the term dictionary, so
 * the test can check how query and dump print such a CID (<urn:cid:HEX>
 * and a warning).  The subject is cid_sha256("orphan"), never put as a
 * term; the predicate <http://example.org/p> and the object "x" are put.
 * Prints the subject's hex.  Exits 0, or 1 with the failing call's error.
 *
 *   triples_test_orphan --api DIR
 * checks rdf_load.h's calls on bad arguments (NULL pointers, bad options,
 * a missing file, a directory, terms that are not one N-Triples term) and
 * the blank label rule's kept form; a store in DIR is created for it.
 * Prints "ok: ..." per check; exits 1 when one fails.
 */
#include <cidstore.h>

#include "rdf_load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int api_fails;

static void check(int cond, const char *what)
{
	printf("%s: rdf_load API: %s\n", cond ? "ok" : "FAIL", what);
	if (!cond)
		api_fails++;
}

static int api_checks(const char *dir)
{
	cidstore_options_t opt;
	cidstore_t *s;
	rdf_load_result_t r;
	rdf_load_opts_t o = { 0 };
	char *out, msg[256];
	size_t len;
	cidstore_options_init(&opt);
	opt.dir = dir;
	if (cidstore_open(&opt, &s) != 0)
		return 1;
	check(rdf_load_file(NULL, "x.nt", NULL, &r) == RDF_LOAD_EINVAL, "NULL store -> EINVAL");
	check(rdf_load_file(s, NULL, NULL, &r) == RDF_LOAD_EINVAL, "NULL path -> EINVAL");
	check(rdf_load_file(s, "x.nt", NULL, NULL) == RDF_LOAD_EINVAL, "NULL result -> EINVAL");
	o.syntax = (rdf_syntax_t)42;
	check(rdf_load_file(s, "x.nt", &o, &r) == RDF_LOAD_EINVAL, "bad syntax -> EINVAL");
	o.syntax = RDF_SYNTAX_AUTO;
	o.batch = (size_t)1 << 30;
	check(rdf_load_file(s, "x.nt", &o, &r) == RDF_LOAD_EINVAL, "huge batch -> EINVAL");
	o.batch = 0;
	check(rdf_load_file(s, "/nonexistent/x.nt", &o, &r) == RDF_LOAD_EOPEN &&
		      r.sys_errno == ENOENT,
	      "missing file -> EOPEN, ENOENT");
	check(rdf_load_file(s, dir, &o, &r) == RDF_LOAD_EOPEN && r.sys_errno == EISDIR,
	      "a directory -> EOPEN, EISDIR");
	check(cidstore_triple_count(s, NULL, NULL, NULL) == 0, "nothing stored by them");
	check(rdf_term_normalize(NULL, 0, &out, &len, msg, sizeof msg) == RDF_LOAD_EINVAL,
	      "normalize NULL text -> EINVAL");
	check(rdf_term_normalize("<http://a/>", 3, &out, &len, msg, sizeof msg) == RDF_LOAD_EINVAL,
	      "normalize position 3 -> EINVAL");
	check(rdf_term_normalize("<http://a/> <http://b/>", 0, &out, &len, msg, sizeof msg) ==
		      RDF_LOAD_ESYNTAX && msg[0] != '\0',
	      "normalize two terms -> ESYNTAX with a message");
	check(rdf_term_normalize("\"x\"", 1, &out, &len, msg, sizeof msg) == RDF_LOAD_ESYNTAX,
	      "normalize a literal predicate -> ESYNTAX");
	check(rdf_term_normalize("\"x\" .\n<http://a/> <http://b/> \"y\"", 2, &out, &len, msg,
				 sizeof msg) == RDF_LOAD_ESYNTAX,
	      "normalize an injected second statement -> ESYNTAX");
	int rc = rdf_term_normalize("\"caf\xc3\xa9\\u0041\"@fr", 2, &out, &len, msg, sizeof msg);
	check(rc == 0 && strcmp(out, "\"caf\\u00E9A\"@fr") == 0 && len == strlen(out),
	      "normalize \"caf\xc3\xa9\\u0041\"@fr -> \"caf\\u00E9A\"@fr");
	if (rc == 0)
		free(out);
	static const uint8_t scope[16] = { 1 };
	char lab[35];
	rdf_blank_label(scope, "cs0123456789abcdef0123456789abcdef", 34, lab);
	check(strcmp(lab, "cs0123456789abcdef0123456789abcdef") == 0, "a cs+32 hex label is kept");
	rdf_blank_label(scope, "cs0123456789ABCDEF0123456789abcdef", 34, lab);
	check(strcmp(lab, "cs0123456789ABCDEF0123456789abcdef") != 0 && strlen(lab) == 34,
	      "an upper-case cs label is mapped");
	check(strcmp(rdf_load_strerror(RDF_LOAD_ESYNTAX), "syntax error") == 0 &&
		      strcmp(rdf_load_strerror(12345), "unknown error") == 0,
	      "rdf_load_strerror");
	cidstore_close(s);
	return api_fails ? 1 : 0;
}

static int fail(const char *what, long rc)
{
	fprintf(stderr, "triples_test_orphan: %s: %s\n", what, cidstore_strerror((int)rc));
	return 1;
}

int main(int argc, char **argv)
{
	static const char p[] = "<http://example.org/p>", o[] = "\"x\"";
	cidstore_options_t opt;
	cidstore_t *s;
	cidstore_triple_t t;
	char hex[65];
	long rc;
	if (argc == 3 && strcmp(argv[1], "--api") == 0)
		return api_checks(argv[2]);
	if (argc != 2) {
		fprintf(stderr, "usage: triples_test_orphan [--api] DIR\n");
		return 2;
	}
	cidstore_options_init(&opt);
	opt.dir = argv[1];
	if ((rc = cidstore_open(&opt, &s)) != 0)
		return fail("open", rc);
	cid_sha256("orphan", 6, &t.s);
	if ((rc = cidstore_term_put(s, p, strlen(p), &t.p)) < 0)
		return fail("term_put", rc);
	if ((rc = cidstore_term_put(s, o, strlen(o), &t.o)) < 0)
		return fail("term_put", rc);
	if ((rc = cidstore_triple_insert(s, &t)) < 0)
		return fail("triple_insert", rc);
	if ((rc = cidstore_close(s)) != 0)
		return fail("close", rc);
	cid_to_hex(&t.s, hex);
	printf("%s\n", hex);
	return 0;
}
