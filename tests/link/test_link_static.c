/*
 * test_link_static.c — a user program linked against the installed form of
 * libcidstore.a (issue 10).
 *
 * The program defines functions whose names the library uses internally
 * (rec_decode, ep_poll, idx_insert, wal_append, ... — one for each internal
 * prefix), with signatures of its own.  Against an archive that exports
 * those names the link fails ("multiple definition of `rec_decode'"), or,
 * when the member defining a name is not pulled in, the library's calls bind
 * to the user's function.  Against the localized archive (src/meson.build:
 * ld -r, objcopy --localize-hidden) both sides keep their own.
 *
 * Checked at run time: each user function answers its own value when the
 * program calls it, and the store works — in memory, and durable in a fresh
 * directory (insert, close, reopen: the values came back through the WAL
 * reader, rec_decode's internal namesake).  Only include/cidstore.h is
 * used.  Exit 0 and "N passed, 0 failed" when everything holds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cidstore.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- the user's own functions, named like the library's internals ---- */

static int user_calls;

int rec_decode(void) { return 4242; }
void ep_poll(void) { user_calls++; }
int idx_insert(int a, int b) { return a * 100 + b; }
long wal_append(const char *s) { return -(long)strlen(s); }
double sdir_open(double x) { return x / 2; }
int ring_create(void) { return 17; }
void vset_free(int *p) { *p = 99; }
int ckpt_write(int x) { return x + 1; }
int recov_run(void) { return 5; }
int store_fail(void) { return 6; }
int meta_seed(void) { return 7; }
int io_pwrite_all(void) { return 8; }
int log_io_posix(void) { return 9; }

/* ---- a tiny harness ---- */

static int passed, failed;

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (cond) {                                                  \
			passed++;                                            \
		} else {                                                     \
			failed++;                                            \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
				__LINE__, #cond);                            \
		}                                                            \
	} while (0)

static cid_t key_of(unsigned i)
{
	char buf[32];
	int n = snprintf(buf, sizeof buf, "key %u", i);
	cid_t c;
	cid_sha256(buf, (size_t)n, &c);
	return c;
}

static cid_t val_of(unsigned i)
{
	cid_t a = key_of(i), b = key_of(i + 1000);
	return cid_composite(&a, &b, 1);
}

static int has_exactly(cidstore_t *s, unsigned k, unsigned nvals)
{
	cid_t key = key_of(k), out[8];
	long n = cidstore_lookup(s, &key, out, 8);
	if (n != (long)nvals)
		return 0;
	for (unsigned j = 0; j < nvals; j++) {
		cid_t v = val_of(k * 10 + j);
		if (cidstore_contains(s, &key, &v) != 1)
			return 0;
	}
	return 1;
}

static void fill(cidstore_t *s, unsigned nkeys)
{
	for (unsigned k = 0; k < nkeys; k++) {
		cid_t key = key_of(k);
		for (unsigned j = 0; j <= k % 3; j++) {
			cid_t v = val_of(k * 10 + j);
			CHECK(cidstore_insert(s, &key, &v) == 1);
		}
	}
}

static int all_there(cidstore_t *s, unsigned nkeys)
{
	for (unsigned k = 0; k < nkeys; k++)
		if (!has_exactly(s, k, k % 3 + 1))
			return 0;
	return 1;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

int main(void)
{
	/* the user's functions are the user's */
	int x = 0;
	ep_poll();
	vset_free(&x);
	CHECK(rec_decode() == 4242);
	CHECK(user_calls == 1);
	CHECK(idx_insert(3, 4) == 304);
	CHECK(wal_append("abc") == -3);
	CHECK(sdir_open(5.0) == 2.5);
	CHECK(ring_create() == 17);
	CHECK(x == 99);
	CHECK(ckpt_write(1) == 2);
	CHECK(recov_run() + store_fail() + meta_seed() + io_pwrite_all() + log_io_posix() == 35);

	/* the library's are the library's: an in-memory store */
	enum { NKEYS = 2000 };
	cidstore_options_t o;
	cidstore_options_init(&o);
	cidstore_t *s = NULL;
	CHECK(cidstore_open(&o, &s) == 0 && s);
	if (!s)
		return 1;
	fill(s, NKEYS);
	CHECK(all_there(s, NKEYS));
	cid_t k0 = key_of(0), v0 = val_of(0), absent = key_of(NKEYS + 1);
	CHECK(cidstore_insert(s, &k0, &v0) == 0);
	CHECK(cidstore_lookup(s, &absent, NULL, 0) == 0);
	CHECK(cidstore_delete_value(s, &k0, &v0) == 1);
	CHECK(cidstore_lookup(s, &k0, NULL, 0) == 0);
	cidstore_stats_t st;
	CHECK(cidstore_stats(s, &st) == 0 && st.keys == NKEYS - 1);
	CHECK(cidstore_close(s) == 0);

	/* and a durable store: written, closed, recovered from its log */
	const char *tmp = getenv("TMPDIR");
	char dir[512];
	snprintf(dir, sizeof dir, "%s/cidstore-link-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	CHECK(mkdtemp(dir) != NULL);
	cidstore_options_init(&o);
	o.dir = dir;
	o.durability = CIDSTORE_DURABILITY_ASYNC;
	o.ring_records = 1024;
	o.segment_bytes = 1 << 20;
	s = NULL;
	int rc = cidstore_open(&o, &s);
	CHECK(rc == 0 && s);
	if (s) {
		fill(s, 300);
		CHECK(cidstore_close(s) == 0);
		s = NULL;
		o.durability = CIDSTORE_DURABILITY_SYNC;
		rc = cidstore_open(&o, &s);
		CHECK(rc == 0 && s);
		if (s) {
			CHECK(all_there(s, 300));
			cid_t k = key_of(7), v = val_of(70);
			CHECK(cidstore_delete_value(s, &k, &v) == 1);
			CHECK(cidstore_close(s) == 0);
		}
	} else {
		fprintf(stderr, "cidstore_open(%s): %s\n", dir, cidstore_strerror(rc));
	}
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
