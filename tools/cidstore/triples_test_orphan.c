/*
 * triples_test_orphan.c — a helper of tools/test-triples.sh (not part of
 * the tool): stores one triple whose subject has no text in the term
 * dictionary, so the test can check how query and dump print such a CID
 * (<urn:cid:HEX> and a warning).
 *
 *   triples_test_orphan DIR
 *
 * The subject is cid_sha256("orphan"), never put as a term; the predicate
 * <http://example.org/p> and the object "x" are put.  Prints the
 * subject's hex.  Exits 0, or 1 with the failing call's error.
 */
#include <cidstore.h>

#include <stdio.h>
#include <string.h>

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
	if (argc != 2) {
		fprintf(stderr, "usage: triples_test_orphan DIR\n");
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
