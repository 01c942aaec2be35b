/*
 * test_support.h — small helpers every log-layer test may use: a per-test
 * temporary directory under /tmp, a byte-for-byte image of a directory, a
 * sorted snapshot of a store's (key, value) pairs, a 64-bit mixer, and the
 * Check main().  Header-only; every function is static inline, so a test
 * that uses only some of them compiles without unused-function warnings.
 */
#ifndef CIDSTORE_TEST_SUPPORT_H
#define CIDSTORE_TEST_SUPPORT_H

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cidstore.h"

/* ---- temporary directory ---- */

/* Creates a fresh directory /tmp/<prefix>-XXXXXX; its path goes to dir. */
static inline void tmpdir_make(char *dir, size_t cap, const char *prefix)
{
	snprintf(dir, cap, "/tmp/%s-XXXXXX", prefix);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static inline int tmpdir_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

/* Removes dir and everything below it: 0, or -1 when something stayed. */
static inline int tmpdir_remove(const char *dir)
{
	return nftw(dir, tmpdir_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- every file of a directory, byte for byte, sorted by name ---- */

#define DIRIMG_MAX 64
struct dirimg_file {
	char name[256];
	uint8_t *data;
	size_t len;
};
struct dirimg {
	struct dirimg_file f[DIRIMG_MAX];
	size_t n;
};

static inline int dirimg_file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dirimg_file *)a)->name, ((const struct dirimg_file *)b)->name);
}

static inline void dirimg_take(struct dirimg *im, const char *dir)
{
	memset(im, 0, sizeof(*im));
	DIR *d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		ck_assert_uint_lt(im->n, DIRIMG_MAX);
		struct dirimg_file *f = &im->f[im->n++];
		snprintf(f->name, sizeof(f->name), "%s", de->d_name);
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		int fd = open(p, O_RDONLY);
		ck_assert_int_ge(fd, 0);
		struct stat st;
		ck_assert_int_eq(fstat(fd, &st), 0);
		f->len = (size_t)st.st_size;
		f->data = malloc(f->len + 1);
		ck_assert_int_eq(pread(fd, f->data, f->len, 0), (ssize_t)f->len);
		close(fd);
	}
	closedir(d);
	qsort(im->f, im->n, sizeof(im->f[0]), dirimg_file_cmp);
}

static inline void dirimg_free(struct dirimg *im)
{
	for (size_t i = 0; i < im->n; i++)
		free(im->f[i].data);
	im->n = 0;
}

/* The same files with the same bytes; says which file appeared, disappeared
 * or was modified. */
static inline void dirimg_expect_same(const struct dirimg *a, const struct dirimg *b)
{
	for (size_t j = 0; j < b->n; j++) {
		size_t i = 0;
		while (i < a->n && strcmp(a->f[i].name, b->f[j].name) != 0)
			i++;
		ck_assert_msg(i < a->n, "file %s appeared (%zu files now, %zu before)",
			      b->f[j].name, b->n, a->n);
	}
	ck_assert_msg(a->n == b->n, "directory now has %zu files, had %zu", b->n, a->n);
	for (size_t i = 0; i < a->n; i++) {
		size_t j = 0;
		while (j < b->n && strcmp(a->f[i].name, b->f[j].name) != 0)
			j++;
		ck_assert_msg(j < b->n, "file %s disappeared", a->f[i].name);
		ck_assert_msg(a->f[i].len == b->f[j].len &&
				      memcmp(a->f[i].data, b->f[j].data, a->f[i].len) == 0,
			      "file %s was modified", a->f[i].name);
	}
}

/* Takes a new image of dir, expects it the same as *before, frees both. */
static inline void dirimg_expect_unchanged(struct dirimg *before, const char *dir)
{
	struct dirimg after;
	dirimg_take(&after, dir);
	dirimg_expect_same(before, &after);
	dirimg_free(before);
	dirimg_free(&after);
}

/* ---- a store's state: its sorted (key, value) pairs ---- */

struct snap_pair {
	cid_t k, v;
};
struct snap {
	struct snap_pair *p;
	size_t n, cap;
};

static inline int snap_cb(const cid_t *key, const cid_t *vals, size_t n, void *ctx)
{
	struct snap *sn = ctx;
	for (size_t i = 0; i < n; i++) {
		if (sn->n == sn->cap) {
			sn->cap = sn->cap ? 2 * sn->cap : 1024;
			sn->p = realloc(sn->p, sn->cap * sizeof(*sn->p));
			if (!sn->p)
				abort();
		}
		sn->p[sn->n].k = *key;
		sn->p[sn->n].v = vals[i];
		sn->n++;
	}
	return 0;
}

static inline int snap_pair_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct snap_pair));
}

/* Every pair of s (cidstore_scan), sorted; fails the test if scan returned
 * a pair twice. */
static inline struct snap snap_take(cidstore_t *s)
{
	struct snap sn = {0};
	ck_assert_int_eq(cidstore_scan(s, snap_cb, &sn), 0);
	if (sn.n)
		qsort(sn.p, sn.n, sizeof(*sn.p), snap_pair_cmp);
	for (size_t i = 1; i < sn.n; i++)
		ck_assert_msg(snap_pair_cmp(&sn.p[i - 1], &sn.p[i]) != 0,
			      "scan returned a (key, value) pair twice");
	return sn;
}

static inline void snap_free(struct snap *sn)
{
	free(sn->p);
	sn->p = NULL;
	sn->n = sn->cap = 0;
}

/* Fails unless want and got hold the same pairs (says how many differ). */
static inline void snap_expect_equal(const struct snap *want, const struct snap *got,
				     const char *what)
{
	size_t i = 0, j = 0, missing = 0, extra = 0;
	while (i < want->n || j < got->n) {
		int c = i == want->n ? 1 : j == got->n ? -1 : snap_pair_cmp(&want->p[i], &got->p[j]);
		if (c == 0) {
			i++;
			j++;
		} else if (c < 0) {
			missing++;
			i++;
		} else {
			extra++;
			j++;
		}
	}
	ck_assert_msg(missing == 0 && extra == 0,
		      "%s: state differs: %zu pairs expected, %zu found, %zu missing, %zu extra",
		      what, want->n, got->n, missing, extra);
}

/* ---- a 64-bit mixer (splitmix64's finalizer) for test data ---- */

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* ---- main() ---- */

/* Runs every test of s: EXIT_SUCCESS when none failed. */
static inline int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
